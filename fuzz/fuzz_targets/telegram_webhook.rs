//! Telegram updates: the body is the fuzzer's, the secret-token header is right.
#![no_main]
use libfuzzer_sys::fuzz_target;
use switchboard_fuzz::{header, run, SECRET};
use switchboard_gateway::{telegram::TelegramAdapter, ChannelConfig};

fuzz_target!(|body: &[u8]| {
    let config = ChannelConfig {
        settings: serde_json::json!({}),
        secrets: serde_json::json!({"bot_token": "1:x", "webhook_secret_token": SECRET}),
    };
    let mut headers = http::HeaderMap::new();
    header(&mut headers, "x-telegram-bot-api-secret-token", SECRET);
    run(&TelegramAdapter, &config, "POST", "", &headers, body);
});
