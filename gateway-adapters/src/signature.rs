//! HMAC-SHA256 signatures, computed and checked in constant time. Shared by every adapter that
//! signs or verifies request bodies.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

type HmacSha256 = Hmac<Sha256>;

/// HMAC-SHA256 of `parts` concatenated, keyed by `secret`.
pub fn hmac_sha256(secret: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    // `new_from_slice` accepts keys of any length for HMAC, so this cannot fail.
    let mut mac = match HmacSha256::new_from_slice(secret) {
        Ok(m) => m,
        Err(_) => unreachable!("HMAC accepts keys of any length"),
    };
    for p in parts {
        mac.update(p);
    }
    mac.finalize().into_bytes().into()
}

/// Compares two byte strings in constant time (for the same length).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_rfc4231_test_case_2() {
        let mac = hmac_sha256(b"Jefe", &[b"what do ya want ", b"for nothing?"]);
        assert_eq!(hex::encode(mac), "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    }

    #[test]
    fn constant_time_eq_checks_length_and_content() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
    }
}

/// Whether a signed timestamp (Unix seconds, as text) is within `max_age_secs` of `now_secs`,
/// either way (a clock ahead is as suspicious as one behind). Unparseable is never fresh.
pub fn timestamp_is_fresh(timestamp: &str, now_secs: i64, max_age_secs: i64) -> bool {
    timestamp.trim().parse::<i64>().is_ok_and(|ts| now_secs.checked_sub(ts).is_some_and(|age| age.abs() <= max_age_secs))
}

#[cfg(test)]
mod freshness_tests {
    use super::timestamp_is_fresh;

    #[test]
    fn only_timestamps_inside_the_window_are_fresh() {
        assert!(timestamp_is_fresh("1700000000", 1_700_000_000, 300));
        assert!(timestamp_is_fresh("1700000000", 1_700_000_300, 300));
        assert!(timestamp_is_fresh(" 1700000300 ", 1_700_000_000, 300), "a little ahead");
        assert!(!timestamp_is_fresh("1700000000", 1_700_000_301, 300));
        assert!(!timestamp_is_fresh("1700000400", 1_700_000_000, 300), "far ahead");
        assert!(!timestamp_is_fresh("", 1_700_000_000, 300));
        assert!(!timestamp_is_fresh("17e8", 1_700_000_000, 300));
        assert!(!timestamp_is_fresh("-9223372036854775808", 1_700_000_000, 300), "no overflow");
    }
}
