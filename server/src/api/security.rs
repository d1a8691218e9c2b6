//! Response headers every `/api/v1` answer carries, and the API's cross-origin policy.
//!
//! - `X-Content-Type-Options: nosniff`: a browser must not guess a JSON answer is HTML or script.
//! - `Referrer-Policy: no-referrer`: nothing from an API URL leaks to a third party.
//! - `X-Frame-Options: DENY`: no answer is ever rendered in a frame.
//! - `Cache-Control: no-store`: answers carry tenant data and credentials shown once (login
//!   tokens, API keys, inbox secrets); no browser or proxy cache may keep them. A handler that
//!   sets its own `Cache-Control` keeps it.
//!
//! CORS: the API allows no cross-origin caller. No `Access-Control-Allow-*` header is sent, so a
//! browser refuses a page from another origin both its preflight and its reading of the answer;
//! the bearer-token scheme (no cookies) means a cross-site request carries no credentials either.
//! The agent console is served from the same origin. The one exception is the widget's upload
//! (`POST /widget/uploads`, `crate::media`): the widget runs on customers' sites, and that route
//! is authenticated by the public widget key and the customer's session, never by a bearer
//! token, so it mirrors the caller's `Origin` (never `*`, never credentials). Allowing named origins later is one
//! `tower_http::cors::CorsLayer` (with an explicit origin list, never `*` with credentials) added
//! in [`apply`] behind a setting; this module must not answer `Access-Control-Allow-Origin: *`.

use axum::http::header::{CACHE_CONTROL, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS};
use axum::http::HeaderValue;
use axum::response::Response;
use axum::Router;

use crate::state::AppState;

/// Adds the headers to every answer of `router`, including its 404 / 405 fallbacks.
pub fn apply(router: Router<AppState>) -> Router<AppState> {
    router.layer(axum::middleware::map_response(add_headers))
}

async fn add_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.entry(CACHE_CONTROL).or_insert(HeaderValue::from_static("no-store"));
    response
}
