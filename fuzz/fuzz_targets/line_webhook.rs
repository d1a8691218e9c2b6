//! LINE webhooks: the body is the fuzzer's, signed with the channel secret (x-line-signature).
#![no_main]
use libfuzzer_sys::fuzz_target;
use switchboard_fuzz::{header, run, SECRET};
use switchboard_gateway::{line, ChannelConfig};

fuzz_target!(|body: &[u8]| {
    let config = ChannelConfig {
        settings: serde_json::json!({}),
        secrets: serde_json::json!({"channel_secret": SECRET, "channel_access_token": "t"}),
    };
    let mut headers = http::HeaderMap::new();
    header(&mut headers, "x-line-signature", &line::sign(SECRET, body));
    run(&line::LineAdapter, &config, "POST", "", &headers, body);
});
