//! Shared by the fuzz targets: a webhook request for an adapter, signed the way its platform
//! signs, so the fuzzer's bytes get past the signature check and reach the parser (a target
//! that only ever hits "bad signature" would test nothing).

use hmac::{Hmac, Mac};
use sha2::Sha256;
use switchboard_gateway::{ChannelAdapter, ChannelConfig, WebhookRequest};

pub const SECRET: &str = "fuzz-secret";

pub fn hmac_sha256(key: &[u8], body: &[u8]) -> Vec<u8> {
    // HMAC accepts any key length; `new_from_slice` cannot fail for it.
    let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    mac.update(body);
    mac.finalize().into_bytes().to_vec()
}

/// Runs the adapter on one request; a parser may refuse the input, never panic.
pub fn run(
    adapter: &dyn ChannelAdapter,
    config: &ChannelConfig,
    method: &str,
    query: &str,
    headers: &http::HeaderMap,
    body: &[u8],
) {
    let request = WebhookRequest { method, query, headers, body };
    if let Ok(outcome) = adapter.handle_webhook(config, &request) {
        // What the server does next with the events: serialize them for storage and clients.
        let _ = serde_json::to_string(&format!("{:?}", outcome.events));
    }
}

pub fn header(headers: &mut http::HeaderMap, name: &'static str, value: &str) {
    if let Ok(v) = http::HeaderValue::from_str(value) {
        headers.insert(name, v);
    }
}
