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
