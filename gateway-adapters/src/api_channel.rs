//! The API channel: a business system posts customer messages to Switchboard's REST endpoint,
//! and Switchboard delivers agent replies to the inbox's webhook URL.
//!
//! Each delivery is a POST of a JSON event with three headers:
//! - `X-Switchboard-Delivery`: the delivery id, stable across retries, so the receiver can
//!   drop a delivery it already processed;
//! - `X-Switchboard-Timestamp`: Unix seconds when this attempt was signed;
//! - `X-Switchboard-Signature`: `v1=` + hex HMAC-SHA256(secret, timestamp + "." + body).
//!
//! A 2xx answer acknowledges the delivery; anything else is classified for retry or dead letter.

use std::time::Duration;

use crate::signature::{constant_time_eq, hmac_sha256};
use crate::{classify_status, DeliveryError};

pub const HEADER_DELIVERY: &str = "x-switchboard-delivery";
pub const HEADER_TIMESTAMP: &str = "x-switchboard-timestamp";
pub const HEADER_SIGNATURE: &str = "x-switchboard-signature";

/// The signature header value for a body signed at `timestamp` (Unix seconds).
pub fn sign(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let ts = timestamp.to_string();
    format!("v1={}", hex::encode(hmac_sha256(secret.as_bytes(), &[ts.as_bytes(), b".", body])))
}

/// Checks a signature header the way a receiver should: right secret, and a timestamp within
/// `tolerance_secs` of `now` (replay window).
pub fn verify(secret: &str, timestamp: i64, body: &[u8], header: &str, now: i64, tolerance_secs: i64) -> bool {
    if (now - timestamp).abs() > tolerance_secs {
        return false;
    }
    constant_time_eq(sign(secret, timestamp, body).as_bytes(), header.as_bytes())
}

/// One signed webhook delivery.
pub struct WebhookDelivery<'a> {
    pub url: &'a str,
    pub secret: &'a str,
    pub delivery_id: &'a str,
    pub body: Vec<u8>,
    pub timestamp: i64,
}

/// Posts the delivery; `Ok` only on a 2xx answer.
pub async fn deliver(client: &reqwest::Client, d: WebhookDelivery<'_>, timeout: Duration) -> Result<(), DeliveryError> {
    let signature = sign(d.secret, d.timestamp, &d.body);
    let response = client
        .post(d.url)
        .timeout(timeout)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(HEADER_DELIVERY, d.delivery_id)
        .header(HEADER_TIMESTAMP, d.timestamp.to_string())
        .header(HEADER_SIGNATURE, signature)
        .body(d.body)
        .send()
        .await;
    match response {
        Ok(r) if r.status().is_success() => Ok(()),
        Ok(r) => {
            let status = r.status().as_u16();
            let text = r.text().await.unwrap_or_default();
            let snippet: String = text.chars().take(200).collect();
            Err(classify_status(status, format!("HTTP {status}: {snippet}")))
        }
        Err(e) if e.is_builder() => Err(DeliveryError::Permanent(format!("invalid webhook URL: {e}"))),
        Err(e) => Err(DeliveryError::Transient(format!("request failed: {e}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_verifies_and_rejects_tampering_and_replays() {
        let body = br#"{"event":"message.created"}"#;
        let sig = sign("s3cret", 1_700_000_000, body);
        assert!(verify("s3cret", 1_700_000_000, body, &sig, 1_700_000_010, 300));
        assert!(!verify("other", 1_700_000_000, body, &sig, 1_700_000_010, 300));
        assert!(!verify("s3cret", 1_700_000_000, b"{}", &sig, 1_700_000_010, 300));
        assert!(!verify("s3cret", 1_700_000_000, body, &sig, 1_700_009_999, 300));
    }

    #[test]
    fn statuses_are_classified() {
        assert!(matches!(classify_status(503, String::new()), DeliveryError::Transient(_)));
        assert!(matches!(classify_status(429, String::new()), DeliveryError::Transient(_)));
        assert!(matches!(classify_status(404, String::new()), DeliveryError::Permanent(_)));
    }
}
