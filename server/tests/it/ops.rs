//! Health, readiness, metrics and the OpenAPI document.

use serde_json::Value;

use crate::helpers::spawn_app;

#[tokio::test]
async fn health_readiness_metrics_and_openapi_are_served() {
    let app = spawn_app().await;

    let r = app.client.get(app.url("/healthz")).send().await.expect("healthz");
    assert_eq!(r.status(), 200);

    let r = app.client.get(app.url("/readyz")).send().await.expect("readyz");
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["database"]["backend"], "sqlite");
    assert_eq!(body["database"]["ok"], true);
    assert_eq!(body["bus"]["ok"], true);

    let r = app.client.get(app.url("/metrics")).send().await.expect("metrics");
    assert_eq!(r.status(), 200);
    let text = r.text().await.expect("text");
    assert!(text.contains("switchboard_http_requests_total"), "metrics lack the HTTP counter: {text}");

    let r = app.client.get(app.url("/api/openapi.json")).send().await.expect("openapi");
    assert_eq!(r.status(), 200);
    let doc: Value = r.json().await.expect("openapi json");
    assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")));
    let paths = doc["paths"].as_object().expect("paths");
    for expected in ["/api/v1/auth/login", "/api/v1/channels/api/{inbox_id}/messages", "/api/v1/conversations/{id}/messages"] {
        assert!(paths.contains_key(expected), "OpenAPI lacks {expected}; has {:?}", paths.keys().collect::<Vec<_>>());
    }
    app.stop().await;
}

#[tokio::test]
async fn login_works_for_the_bootstrap_admin_and_refuses_a_wrong_password() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    assert!(token.starts_with("sbs_"));
    let r = app
        .client
        .post(app.url("/api/v1/auth/login"))
        .json(&serde_json::json!({"email": crate::helpers::ADMIN_EMAIL, "password": "wrong-password-123"}))
        .send()
        .await
        .expect("login");
    assert_eq!(r.status(), 401);
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["error"]["code"], "invalid_credentials");
    app.stop().await;
}
