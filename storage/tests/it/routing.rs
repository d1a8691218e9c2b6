//! Team routing policies: stored as given, cleared with `None`, scoped to the tenant.

use crate::harness::*;
use switchboard_core::store::Store;

async fn check_team_policy(store: &dyn Store) {
    let a = tenant(store, "a").await;
    let b = tenant(store, "b").await;
    let team = store.create_team(a.id, "Support", T0).await.unwrap();
    assert_eq!(team.routing_policy, None, "no policy until one is set");
    let policy = serde_json::json!({"strategy": "round_robin", "priority_aging_ms": 30000});
    let updated = store.set_team_policy(a.id, team.id, Some(policy.clone()), T0 + 1).await.unwrap();
    assert_eq!(updated.routing_policy, Some(policy.clone()));
    let listed = store.list_teams(a.id).await.unwrap();
    assert_eq!(listed[0].routing_policy, Some(policy), "read back from the list");
    assert_not_found(store.set_team_policy(b.id, team.id, None, T0 + 2).await, "another tenant's team");
    let cleared = store.set_team_policy(a.id, team.id, None, T0 + 3).await.unwrap();
    assert_eq!(cleared.routing_policy, None);
}

conformance!(check_team_policy);
