//! A local fake of a platform's HTTP API: an axum server on 127.0.0.1:0 whose handlers check
//! requests the way the platform would and record them for assertions.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;

/// A request the fake received.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// Shared log of requests, cloned into handlers.
#[derive(Clone, Default)]
pub struct Log(pub Arc<Mutex<Vec<Recorded>>>);

impl Log {
    pub fn push(&self, r: Recorded) {
        self.0.lock().expect("log lock").push(r);
    }

    pub fn all(&self) -> Vec<Recorded> {
        self.0.lock().expect("log lock").clone()
    }
}

/// Serves `router` on an ephemeral loopback port until the test ends; returns its base URL.
pub async fn serve(router: Router) -> (String, SocketAddr) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind fake platform");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    (format!("http://{addr}"), addr)
}

/// Arbitrary JSON for the parsers' never-panic proptests: nested arrays and objects whose keys
/// are drawn mostly from the platform's own field names (so the parser gets past its first
/// checks) and whose strings include the platform's type names.
pub fn arbitrary_json(
    keys: &'static [&'static str],
    strings: &'static [&'static str],
) -> impl proptest::strategy::Strategy<Value = serde_json::Value> {
    use proptest::prelude::*;
    use serde_json::Value;
    let text: BoxedStrategy<String> = if strings.is_empty() {
        ".{0,12}".boxed()
    } else {
        prop_oneof![prop::sample::select(strings).prop_map(str::to_owned), ".{0,12}"].boxed()
    };
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        text.prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, move |inner| {
        let key = prop_oneof![3 => prop::sample::select(keys).prop_map(str::to_owned), 1 => "[a-z_]{1,10}"];
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(key, inner, 0..6).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}
