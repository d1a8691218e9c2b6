//! The audit log: entries round trip, filters combine, the id cursor pages newest first, and a
//! tenant never sees another's entries.

use crate::harness::*;
use serde_json::json;
use switchboard_core::domain::*;
use switchboard_core::ids::*;
use switchboard_core::store::Store;

fn entry(tenant: TenantId, actor: Option<UserId>, action: &str, target: &str, id: i64) -> NewAuditEntry {
    NewAuditEntry {
        tenant_id: tenant,
        actor_user_id: actor,
        actor_api_token_id: if actor.is_none() { Some(9) } else { None },
        actor_label: actor.map_or("api-key:ci".into(), |u| format!("user-{}", u.0)),
        action: action.into(),
        target_type: target.into(),
        target_id: Some(id.to_string()),
        detail: json!({"fields": ["name"], "n": id}),
    }
}

async fn check_audit_log(store: &dyn Store) {
    let a = tenant(store, "a").await;
    let b = tenant(store, "b").await;
    let admin = store.create_user(new_user(a.id, "admin@a", 1), T0).await.unwrap();

    let first = store.record_audit(entry(a.id, Some(admin.id), "inbox.update", "inbox", 1), T0).await.unwrap();
    assert_eq!(first.detail, json!({"fields": ["name"], "n": 1}));
    assert_eq!((first.tenant_id, first.created_at, first.actor_user_id), (a.id, T0, Some(admin.id)));
    for i in 2..=5 {
        store.record_audit(entry(a.id, Some(admin.id), "user.create", "user", i), T0 + i).await.unwrap();
    }
    store.record_audit(entry(a.id, None, "api_token.delete", "api_token", 6), T0 + 6).await.unwrap();
    store.record_audit(entry(b.id, None, "user.create", "user", 7), T0 + 7).await.unwrap();

    // Newest first, tenant-scoped.
    let all = store.list_audit(a.id, AuditFilter::default()).await.unwrap();
    assert_eq!(all.iter().map(|e| e.target_id.clone().unwrap()).collect::<Vec<_>>(), ["6", "5", "4", "3", "2", "1"]);
    assert_eq!(all[0].actor_api_token_id, Some(9));
    assert_eq!(all[0].actor_label, "api-key:ci");
    let others = store.list_audit(b.id, AuditFilter::default()).await.unwrap();
    assert_eq!(others.len(), 1, "tenant b sees only its own");

    // Cursor pages of two.
    let page1 = store.list_audit(a.id, AuditFilter { limit: 2, ..Default::default() }).await.unwrap();
    let page2 = store
        .list_audit(a.id, AuditFilter { limit: 2, before: Some(page1[1].id), ..Default::default() })
        .await
        .unwrap();
    assert_eq!(page2.iter().map(|e| e.target_id.clone().unwrap()).collect::<Vec<_>>(), ["4", "3"]);

    // Filters combine.
    let creates = AuditFilter {
        action: Some("user.create".into()),
        since: Some(T0 + 3),
        until: Some(T0 + 5),
        ..Default::default()
    };
    let found = store.list_audit(a.id, creates).await.unwrap();
    assert_eq!(found.iter().map(|e| e.target_id.clone().unwrap()).collect::<Vec<_>>(), ["4", "3"]);
    let by_target =
        AuditFilter { target_type: Some("inbox".into()), target_id: Some("1".into()), ..Default::default() };
    assert_eq!(store.list_audit(a.id, by_target).await.unwrap().len(), 1);
    let by_actor = AuditFilter { actor_user_id: Some(admin.id), ..Default::default() };
    assert_eq!(store.list_audit(a.id, by_actor.clone()).await.unwrap().len(), 5);
    assert!(store.list_audit(b.id, by_actor).await.unwrap().is_empty(), "another tenant's actor finds nothing");

    // An unknown tenant cannot be written to.
    assert_not_found(store.record_audit(entry(TenantId(999_999), None, "x", "y", 1), T0).await, "unknown tenant");
}

conformance!(check_audit_log);
