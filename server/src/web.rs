//! What a browser loads from a node: the console and the customer widget built from `web-agent/`
//! (`npm run build` → `web-agent/dist`, read from disk at request time), and the minimal demo
//! pages, compiled into the binary so `switchboard serve` works without any asset folder.
//!
//! The built folder is `./web-agent/dist` relative to the working directory, or
//! `SWITCHBOARD_WEB_DIR`. Routes: `/` (the console's index.html; a redirect to the demo agent page
//! while nothing is built), `/console/*` (the console again, any path falling back to index.html),
//! `/assets/*` (the console's hashed scripts and styles) and `/widget.js` (the embeddable widget).
//! This module serves files only; it must not grow API behaviour.

use std::path::PathBuf;

use axum::http::header;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;
use tower_http::services::{ServeDir, ServeFile};

use crate::state::AppState;

const WIDGET: &str = include_str!("../../web-agent/demo/widget.html");
const AGENT: &str = include_str!("../../web-agent/demo/agent.html");
const SOCKET_IO_JS: &str = include_str!("../../web-agent/demo/vendor/socket.io.min.js");

/// Where `npm run build` leaves the console when the server runs from the repository root.
const DEFAULT_WEB_DIR: &str = "./web-agent/dist";
/// Overrides [`DEFAULT_WEB_DIR`] (e.g. in a container image or in tests).
const WEB_DIR_ENV: &str = "SWITCHBOARD_WEB_DIR";

/// The folder holding the built console and widget.
pub fn web_dir() -> PathBuf {
    std::env::var_os(WEB_DIR_ENV)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_WEB_DIR))
}

pub fn router() -> Router<AppState> {
    let dir = web_dir();
    let index = dir.join("index.html");
    if index.is_file() {
        tracing::debug!(dir = %dir.display(), "serving the built console");
    } else {
        tracing::info!(dir = %dir.display(), "no built console found (npm run build in web-agent/); / shows the demo page");
    }
    let console = ServeDir::new(&dir).fallback(ServeFile::new(&index));
    Router::new()
        .route("/", get(move || console_index(index.clone())))
        .nest_service("/console", console)
        .nest_service("/assets", ServeDir::new(dir.join("assets")))
        .route_service("/widget.js", ServeFile::new(dir.join("widget.js")))
        .route("/demo/widget.html", get(|| async { Html(WIDGET) }))
        .route("/demo/agent.html", get(|| async { Html(AGENT) }))
        .route(
            "/demo/vendor/socket.io.min.js",
            get(|| async {
                (
                    [
                        (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
                        (header::CACHE_CONTROL, "public, max-age=86400"),
                    ],
                    SOCKET_IO_JS,
                )
                    .into_response()
            }),
        )
}

/// The console's entry page, looked up on each request so a console built after the server
/// started is picked up; the demo page until one is built.
async fn console_index(index: PathBuf) -> Response {
    match tokio::fs::read_to_string(&index).await {
        Ok(html) => ([(header::CACHE_CONTROL, "no-cache")], Html(html)).into_response(),
        Err(_) => Redirect::temporary("/demo/agent.html").into_response(),
    }
}
