//! Connecting: file-backed SQLite survives a restart, migrations are idempotent (also when
//! several nodes start at once), and unknown URLs are refused.

use crate::harness::*;
use futures::future::join_all;
use switchboard_core::store::Store;
use switchboard_core::StoreError;
use switchboard_storage::{testkit, Dialect};

#[tokio::test]
async fn sqlite_file_database_is_created_and_survives_reconnect() {
    let dir = std::env::temp_dir().join(format!("sb-storage-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("switchboard.db");
    let _ = std::fs::remove_file(&path);
    // Both spellings the server may produce: with and without an explicit mode.
    for url in [format!("sqlite://{}", path.display()), format!("sqlite://{}?mode=rwc", path.display())] {
        let store = switchboard_storage::connect(&url).await.unwrap();
        if store.count_tenants().await.unwrap() == 0 {
            tenant(&store, "kept").await;
        }
        store.close().await;
    }
    let store = switchboard_storage::connect(&format!("sqlite://{}", path.display())).await.unwrap();
    assert_eq!(store.count_tenants().await.unwrap(), 1);
    assert!(store.find_tenant_by_slug_unscoped("kept").await.unwrap().is_some());
    store.close().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn unknown_url_is_refused() {
    match switchboard_storage::connect("redis://127.0.0.1").await {
        Err(StoreError::Unavailable(_)) => {}
        other => panic!("expected Unavailable, got {:?}", other.map(|s| s.backend())),
    }
}

async fn concurrent_startup(kind: Dialect) {
    if !testkit::server_reachable(kind).await {
        assert!(!testkit::require_all(), "{kind} unreachable");
        eprintln!("note: skipping {kind}: unreachable");
        return;
    }
    let url = testkit::scratch_database_url(kind).await;
    // Three nodes starting against an empty database at once: the migration lock lets one
    // create the schema and the others find it applied.
    let stores = join_all((0..3).map(|_| switchboard_storage::connect(&url))).await;
    for store in stores {
        let store = store.unwrap();
        store.migrate().await.unwrap();
        store.ping().await.unwrap();
        store.close().await;
    }
    testkit::drop_scratch_database(&url).await;
}

#[tokio::test]
async fn postgres_concurrent_startup_migrates_once() {
    concurrent_startup(Dialect::Postgres).await;
}

#[tokio::test]
async fn mysql_concurrent_startup_migrates_once() {
    concurrent_startup(Dialect::Mysql).await;
}
