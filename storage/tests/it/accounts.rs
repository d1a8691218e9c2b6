//! Tenants, users, sessions, API tokens, teams.

use crate::harness::*;
use switchboard_core::domain::*;
use switchboard_core::ids::*;
use switchboard_core::store::Store;

async fn check_tenants(store: &dyn Store) {
    assert_eq!(store.count_tenants().await.unwrap(), 0);
    let acme = tenant(store, "acme").await;
    assert_eq!(acme.slug, "acme");
    assert_eq!(acme.created_at, T0);
    assert_eq!(store.get_tenant(acme.id).await.unwrap().name, "Tenant acme");
    assert_eq!(store.find_tenant_by_slug_unscoped("acme").await.unwrap().map(|t| t.id), Some(acme.id));
    assert!(store.find_tenant_by_slug_unscoped("nope").await.unwrap().is_none());
    assert_conflict(store.create_tenant("Other", "acme", T0).await, "duplicate slug");
    tenant(store, "globex").await;
    assert_eq!(store.count_tenants().await.unwrap(), 2);
    assert_not_found(store.get_tenant(TenantId(987_654)).await, "unknown tenant");
    store.ping().await.unwrap();
}

async fn check_users(store: &dyn Store) {
    let a = tenant(store, "a").await;
    let b = tenant(store, "b").await;
    let ann = store.create_user(new_user(a.id, "ann@example.com", 3), T0).await.unwrap();
    assert_eq!(ann.tenant_id, a.id);
    assert_eq!(ann.role, Role::Agent);
    assert_eq!(ann.status, AgentStatus::Offline, "new users start offline");
    assert_eq!((ann.capacity, ann.active_load, ann.last_assigned_at), (3, 0, None));
    assert_eq!(ann.password_hash, "$argon2id$fake");
    assert_eq!((ann.created_at, ann.updated_at), (T0, T0));

    assert_conflict(store.create_user(new_user(a.id, "ann@example.com", 1), T0).await, "same email, same tenant");
    // The same email in another tenant is a different user.
    let ann_b = store.create_user(new_user(b.id, "ann@example.com", 1), T0).await.unwrap();
    let both = store.find_users_by_email_unscoped("ann@example.com").await.unwrap();
    assert_eq!(both.iter().map(|u| u.id).collect::<Vec<_>>(), vec![ann.id, ann_b.id]);
    assert!(store.find_users_by_email_unscoped("nobody@example.com").await.unwrap().is_empty());
    // Emails are compared exactly, on every backend.
    assert!(store.find_users_by_email_unscoped("ANN@example.com").await.unwrap().is_empty());

    let bob = store.create_user(new_user(a.id, "bob@example.com", 2), T0).await.unwrap();
    let listed = store.list_users(a.id).await.unwrap();
    assert_eq!(listed.iter().map(|u| u.id).collect::<Vec<_>>(), vec![ann.id, bob.id]);

    let patched = store
        .update_user(
            a.id,
            bob.id,
            UserPatch {
                name: Some("Robert".into()),
                role: Some(Role::Supervisor),
                capacity: Some(5),
                password_hash: Some("h2".into()),
                skills: Some([("billing".to_string(), 4u8), ("spanish".to_string(), 2u8)].into_iter().collect()),
            },
            T0 + 10,
        )
        .await
        .unwrap();
    assert_eq!(patched.name, "Robert");
    assert_eq!(patched.role, Role::Supervisor);
    assert_eq!(patched.capacity, 5);
    assert_eq!(patched.password_hash, "h2");
    assert_eq!(patched.updated_at, T0 + 10);
    assert_eq!(patched.skills.get("billing"), Some(&4));
    assert_eq!(store.get_user(a.id, bob.id).await.unwrap().skills.len(), 2, "skills are stored");
    assert_eq!(patched.email, "bob@example.com");
    let untouched = store.update_user(a.id, bob.id, UserPatch::default(), T0 + 11).await.unwrap();
    assert_eq!(untouched.name, "Robert");

    let away = store.set_agent_status(a.id, ann.id, AgentStatus::Away, T0 + 20).await.unwrap();
    assert_eq!(away.status, AgentStatus::Away);
    assert_eq!(store.get_user(a.id, ann.id).await.unwrap().status, AgentStatus::Away);
    // The absence sweep's view: everyone not offline, across tenants, by id, limited.
    store.set_agent_status(b.id, ann_b.id, AgentStatus::Available, T0 + 21).await.unwrap();
    let present = store.users_not_offline(100).await.unwrap();
    assert_eq!(present.iter().map(|u| (u.tenant_id, u.id, u.status)).collect::<Vec<_>>(), vec![
        (a.id, ann.id, AgentStatus::Away),
        (b.id, ann_b.id, AgentStatus::Available),
    ]);
    assert_eq!(store.users_not_offline(1).await.unwrap().len(), 1);
    store.set_agent_status(b.id, ann_b.id, AgentStatus::Offline, T0 + 22).await.unwrap();
    assert_eq!(store.users_not_offline(100).await.unwrap().iter().map(|u| u.id).collect::<Vec<_>>(), vec![ann.id]);
    assert_not_found(store.get_user(a.id, UserId(999_999)).await, "unknown user");
    assert_not_found(store.update_user(a.id, UserId(999_999), UserPatch::default(), T0).await, "update unknown user");
}

async fn check_sessions(store: &dyn Store) {
    let a = tenant(store, "a").await;
    let ann = store.create_user(new_user(a.id, "ann@example.com", 1), T0).await.unwrap();
    let hash = "f".repeat(64);
    store.create_session(&ann, &hash, T0 + 1000, T0).await.unwrap();
    let (session, user) = store.find_session_unscoped(&hash, T0 + 999).await.unwrap().expect("valid session");
    assert_eq!((session.user_id, session.tenant_id, session.expires_at), (ann.id, a.id, T0 + 1000));
    assert_eq!(user.id, ann.id);
    assert!(store.find_session_unscoped(&hash, T0 + 1000).await.unwrap().is_none(), "expired at expires_at");
    assert!(store.find_session_unscoped(&"0".repeat(64), T0).await.unwrap().is_none(), "unknown token");
    store.delete_session(&hash).await.unwrap();
    assert!(store.find_session_unscoped(&hash, T0).await.unwrap().is_none(), "deleted");
    store.delete_session(&hash).await.unwrap();
}

async fn check_api_tokens(store: &dyn Store) {
    let a = tenant(store, "a").await;
    let b = tenant(store, "b").await;
    let token = store.create_api_token(a.id, "crm", Role::Admin, &"1".repeat(64), T0).await.unwrap();
    assert_eq!((token.tenant_id, token.name.as_str(), token.role, token.created_at), (a.id, "crm", Role::Admin, T0));
    let found = store.find_api_token_unscoped(&"1".repeat(64)).await.unwrap().expect("token");
    assert_eq!(found.id, token.id);
    assert!(store.find_api_token_unscoped(&"2".repeat(64)).await.unwrap().is_none());
    assert_conflict(store.create_api_token(b.id, "dup", Role::Agent, &"1".repeat(64), T0).await, "duplicate hash");
    let second = store.create_api_token(a.id, "bi", Role::Supervisor, &"3".repeat(64), T0).await.unwrap();
    let listed = store.list_api_tokens(a.id).await.unwrap();
    assert_eq!(listed.iter().map(|t| t.id).collect::<Vec<_>>(), vec![token.id, second.id]);
    assert!(store.list_api_tokens(b.id).await.unwrap().is_empty());
    assert_not_found(store.delete_api_token(b.id, token.id).await, "other tenant deletes");
    store.delete_api_token(a.id, token.id).await.unwrap();
    assert!(store.find_api_token_unscoped(&"1".repeat(64)).await.unwrap().is_none());
    assert_not_found(store.delete_api_token(a.id, token.id).await, "deleted twice");
}

async fn check_teams(store: &dyn Store) {
    let a = tenant(store, "a").await;
    let b = tenant(store, "b").await;
    let sales = store.create_team(a.id, "Sales", T0).await.unwrap();
    let support = store.create_team(a.id, "Support", T0).await.unwrap();
    assert_eq!((sales.tenant_id, sales.name.as_str(), sales.created_at), (a.id, "Sales", T0));
    let teams = store.list_teams(a.id).await.unwrap();
    assert_eq!(teams.iter().map(|t| t.id).collect::<Vec<_>>(), vec![sales.id, support.id]);
    assert!(store.list_teams(b.id).await.unwrap().is_empty());

    let ann = agent(store, a.id, "ann@example.com", 2).await;
    let bob = agent(store, a.id, "bob@example.com", 2).await;
    store.add_team_member(a.id, sales.id, ann.id, T0).await.unwrap();
    store.add_team_member(a.id, sales.id, bob.id, T0).await.unwrap();
    store.add_team_member(a.id, sales.id, ann.id, T0 + 1).await.unwrap(); // idempotent
    assert_eq!(store.list_team_members(a.id, sales.id).await.unwrap(), vec![ann.id, bob.id]);
    assert!(store.list_team_members(a.id, support.id).await.unwrap().is_empty());

    let carl = agent(store, b.id, "carl@example.com", 2).await;
    assert_not_found(store.add_team_member(a.id, sales.id, carl.id, T0).await, "user of another tenant");
    assert_not_found(store.add_team_member(b.id, sales.id, carl.id, T0).await, "team of another tenant");
    assert_not_found(store.list_team_members(b.id, sales.id).await, "members of another tenant's team");
    assert_not_found(store.add_team_member(a.id, TeamId(777_777), ann.id, T0).await, "unknown team");
}

conformance!(check_tenants, check_users, check_sessions, check_api_tokens, check_teams);
