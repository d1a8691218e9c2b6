//! Opens a fresh backend for one check: a scratch directory, or the shared test bucket on the
//! S3-compatible server (every check uses its own random tenants, so checks never see each
//! other's objects there).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use switchboard_media::{BackendConfig, BlobStore, S3Config};

#[derive(Debug, Clone, Copy)]
pub enum Kind {
    Local,
    S3,
}

const BUCKET: &str = "switchboard-media-it";

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).ok().filter(|v| !v.is_empty()).unwrap_or_else(|| default.to_string())
}

fn require_all() -> bool {
    std::env::var("SWITCHBOARD_TEST_REQUIRE_ALL").is_ok_and(|v| v == "1")
}

/// The S3 test server's configuration, after making sure its bucket exists. `None` (a skip)
/// when the server does not answer and skipping is allowed.
pub async fn s3_config() -> Option<S3Config> {
    let endpoint = env_or("SWITCHBOARD_TEST_S3_ENDPOINT", "http://127.0.0.1:9000");
    // moto accepts unsigned bucket creation; on a real service the bucket must already exist
    // (the answer is ignored, the checks will tell).
    let client = reqwest::Client::new();
    match client.put(format!("{endpoint}/{BUCKET}")).timeout(std::time::Duration::from_secs(5)).send().await {
        Ok(_) => {}
        Err(e) => {
            assert!(!require_all(), "S3 test server at {endpoint} is unreachable and SWITCHBOARD_TEST_REQUIRE_ALL is set: {e}");
            eprintln!("skipping: S3 test server at {endpoint} is unreachable ({e}); run scripts/services.sh");
            return None;
        }
    }
    Some(S3Config {
        endpoint: Some(endpoint),
        bucket: BUCKET.into(),
        region: env_or("SWITCHBOARD_TEST_S3_REGION", "us-east-1"),
        access_key_id: env_or("SWITCHBOARD_TEST_S3_ACCESS_KEY", "test"),
        secret_access_key: env_or("SWITCHBOARD_TEST_S3_SECRET_KEY", "test"),
        path_style: true,
    })
}

pub async fn run<F>(kind: Kind, check: F)
where
    F: FnOnce(Arc<dyn BlobStore>) -> Pin<Box<dyn Future<Output = ()> + Send>>,
{
    match kind {
        Kind::Local => {
            let dir = std::env::temp_dir().join(format!("switchboard-media-it-{}-{}", std::process::id(), rand::random::<u64>()));
            let store = switchboard_media::open(&BackendConfig::Local { path: dir.clone() }).expect("local store");
            assert_eq!(store.backend(), "local");
            check(store).await;
            let _ = std::fs::remove_dir_all(&dir);
        }
        Kind::S3 => {
            let Some(config) = s3_config().await else { return };
            let store = switchboard_media::open(&BackendConfig::S3(config)).expect("s3 store");
            assert_eq!(store.backend(), "s3");
            check(store).await;
        }
    }
}

/// A tenant id no other check uses.
pub fn tenant() -> i64 {
    (rand::random::<u32>() as i64) + 1
}
