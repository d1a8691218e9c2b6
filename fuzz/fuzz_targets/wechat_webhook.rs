//! WeChat Official Account pushes, with a valid query signature:
//! - first byte even: the rest is a plain-mode XML body;
//! - first byte odd: the rest is the *plaintext* of a safe-mode message (16 random bytes, a
//!   big-endian length, the XML, the AppID — or anything else), encrypted here with the inbox's
//!   EncodingAESKey so the adapter's decryption, length and AppID checks and the XML parser all
//!   see fuzzer-chosen bytes.
#![no_main]
use aes::cipher::{BlockEncryptMut, KeyIvInit};
use base64::Engine;
use libfuzzer_sys::fuzz_target;
use switchboard_fuzz::run;
use switchboard_gateway::{wechat, ChannelConfig};

const TOKEN: &str = "fuzztoken";
/// 43 characters of base64: 32 bytes of key.
const AES_KEY: &str = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";
const TIMESTAMP: &str = "1700000000";
const NONCE: &str = "nonce";

fn seal(plain: &[u8]) -> String {
    let key = base64::engine::general_purpose::STANDARD_NO_PAD.decode(AES_KEY).unwrap_or_default();
    let key = if key.len() == 32 { key } else { return String::new() };
    let pad = 32 - plain.len() % 32;
    let mut buf = plain.to_vec();
    buf.extend(std::iter::repeat_n(pad as u8, pad));
    let len = buf.len();
    let enc = cbc::Encryptor::<aes::Aes256>::new(key[..].into(), key[..16].into());
    match enc.encrypt_padded_mut::<aes::cipher::block_padding::NoPadding>(&mut buf, len) {
        Ok(sealed) => base64::engine::general_purpose::STANDARD.encode(sealed),
        Err(_) => String::new(),
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    let signature = wechat::signature(&[TOKEN, TIMESTAMP, NONCE]);
    let headers = http::HeaderMap::new();
    if mode % 2 == 0 {
        let config = ChannelConfig {
            settings: serde_json::json!({"app_id": "wxfuzz"}),
            secrets: serde_json::json!({"token": TOKEN}),
        };
        let query = format!("signature={signature}&timestamp={TIMESTAMP}&nonce={NONCE}");
        run(&wechat::WechatAdapter, &config, "POST", &query, &headers, rest);
    } else {
        let config = ChannelConfig {
            settings: serde_json::json!({"app_id": "wxfuzz"}),
            secrets: serde_json::json!({"token": TOKEN, "encoding_aes_key": AES_KEY}),
        };
        let encrypt = seal(rest);
        let msg_signature = wechat::signature(&[TOKEN, TIMESTAMP, NONCE, &encrypt]);
        let query = format!(
            "signature={signature}&timestamp={TIMESTAMP}&nonce={NONCE}&encrypt_type=aes&msg_signature={msg_signature}"
        );
        let body =
            format!("<xml><ToUserName><![CDATA[gh_1]]></ToUserName><Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>");
        run(&wechat::WechatAdapter, &config, "POST", &query, &headers, body.as_bytes());
    }
});
