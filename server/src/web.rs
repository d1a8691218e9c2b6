//! The demo pages served by every node: a minimal customer widget and agent page for trying the
//! spine in a browser. Compiled into the binary so `switchboard serve` needs no asset folder.
//! The real console lives in `web-agent/` as its own application.

use axum::http::header;
use axum::response::{Html, IntoResponse, Redirect};
use axum::routing::get;
use axum::Router;

use crate::state::AppState;

const WIDGET: &str = include_str!("../../web-agent/demo/widget.html");
const AGENT: &str = include_str!("../../web-agent/demo/agent.html");
const SOCKET_IO_JS: &str = include_str!("../../web-agent/demo/vendor/socket.io.min.js");

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(|| async { Redirect::temporary("/demo/agent.html") }))
        .route("/demo/widget.html", get(|| async { Html(WIDGET) }))
        .route("/demo/agent.html", get(|| async { Html(AGENT) }))
        .route(
            "/demo/vendor/socket.io.min.js",
            get(|| async { ([(header::CONTENT_TYPE, "text/javascript; charset=utf-8"), (header::CACHE_CONTROL, "public, max-age=86400")], SOCKET_IO_JS).into_response() }),
        )
}
