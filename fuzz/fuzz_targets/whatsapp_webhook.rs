//! WhatsApp Cloud API webhooks: the body is the fuzzer's, signed with the app secret
//! (X-Hub-Signature-256), so the Graph payload parser sees it.
#![no_main]
use libfuzzer_sys::fuzz_target;
use switchboard_fuzz::{header, hmac_sha256, run, SECRET};
use switchboard_gateway::ChannelConfig;

fuzz_target!(|body: &[u8]| {
    let config = ChannelConfig {
        settings: serde_json::json!({"phone_number_id": "123", "page_id": "456", "verify_token": "v"}),
        secrets: serde_json::json!({"app_secret": SECRET, "access_token": "t"}),
    };
    let mut headers = http::HeaderMap::new();
    header(
        &mut headers,
        "x-hub-signature-256",
        &format!("sha256={}", hex::encode(hmac_sha256(SECRET.as_bytes(), body))),
    );
    run(&switchboard_gateway::whatsapp::WhatsappAdapter, &config, "POST", "", &headers, body);
    // The subscription handshake reads the query string: fuzz it too.
    if let Ok(query) = std::str::from_utf8(body) {
        run(&switchboard_gateway::whatsapp::WhatsappAdapter, &config, "GET", query, &http::HeaderMap::new(), b"");
    }
});
