//! Input checks shared by the REST handlers: lengths, emails, webhook URLs, JSON-object
//! settings and merge-patching. Pure functions, so they are unit-tested without a database.
//! Every failure is a 422 `invalid_body` naming the offending field; nothing here reads storage.

use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};

use crate::error::{ApiError, ApiResult};

/// Longest name (of a user, team, inbox, API token) in characters.
pub const MAX_NAME_CHARS: usize = 200;
/// Longest email address (RFC 5321 path limit).
pub const MAX_EMAIL_CHARS: usize = 254;
/// Longest password accepted; argon2 is fed at most this much.
pub const MAX_PASSWORD_CHARS: usize = 1024;
/// Largest `capacity` an agent may be given.
pub const MAX_CAPACITY: i64 = 1000;
/// Default and largest page sizes for listings.
pub const DEFAULT_LIMIT: i64 = 50;
pub const MAX_LIMIT: i64 = 500;

/// `value` trimmed, refused when empty or longer than `max` characters.
pub fn required_text(field: &str, value: &str, max: usize) -> ApiResult<String> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err(ApiError::Unprocessable(format!("{field} must not be empty")));
    }
    if trimmed.chars().count() > max {
        return Err(ApiError::Unprocessable(format!("{field} must be at most {max} characters")));
    }
    Ok(trimmed.to_string())
}

/// Like [`required_text`] for an optional field; a blank value counts as absent.
pub fn optional_text(field: &str, value: Option<&str>, max: usize) -> ApiResult<Option<String>> {
    match value.map(str::trim) {
        None | Some("") => Ok(None),
        Some(v) => required_text(field, v, max).map(Some),
    }
}

/// The spelling emails are stored and looked up in: trimmed and lower-cased.
pub fn normalize_email(email: &str) -> String {
    email.trim().to_lowercase()
}

/// A plausible email address: `local@domain`, no whitespace, within length limits. Deliverability
/// is not our concern; catching typos such as a missing `@` is.
pub fn check_email(email: &str) -> ApiResult<String> {
    let email = normalize_email(email);
    let invalid = || ApiError::Unprocessable("email must be an address like name@example.com".into());
    if email.chars().count() > MAX_EMAIL_CHARS || email.chars().any(char::is_whitespace) {
        return Err(invalid());
    }
    match email.split_once('@') {
        Some((local, domain)) if !local.is_empty() && !domain.is_empty() && !domain.contains('@') => Ok(email),
        _ => Err(invalid()),
    }
}

pub fn check_capacity(capacity: i64) -> ApiResult<i64> {
    if (0..=MAX_CAPACITY).contains(&capacity) {
        Ok(capacity)
    } else {
        Err(ApiError::Unprocessable(format!("capacity must be between 0 and {MAX_CAPACITY}")))
    }
}

/// A page size: default when absent, refused outside `1..=max`.
pub fn limit(value: Option<i64>, default: i64, max: i64) -> ApiResult<i64> {
    match value {
        None => Ok(default),
        Some(n) if (1..=max).contains(&n) => Ok(n),
        Some(_) => Err(ApiError::Unprocessable(format!("limit must be between 1 and {max}"))),
    }
}

/// Parses an enum spelled as on the wire, answering with the accepted spellings on a miss.
pub fn parse_enum<T: Copy + std::fmt::Display>(field: &str, value: &str, all: &[T], parse: fn(&str) -> Option<T>) -> ApiResult<T> {
    parse(value).ok_or_else(|| {
        let accepted: Vec<String> = all.iter().map(ToString::to_string).collect();
        ApiError::Unprocessable(format!("unknown {field} '{value}'; expected one of: {}", accepted.join(", ")))
    })
}

/// The JSON object in `value` (absent = empty object); anything but an object is refused.
pub fn json_object(field: &str, value: Option<Value>) -> ApiResult<Map<String, Value>> {
    match value {
        None | Some(Value::Null) => Ok(Map::new()),
        Some(Value::Object(map)) => Ok(map),
        Some(_) => Err(ApiError::Unprocessable(format!("{field} must be a JSON object"))),
    }
}

/// Shallow JSON merge patch (RFC 7386 at the top level): keys in `patch` replace those in
/// `target`, a `null` removes the key.
pub fn merge_object(target: &mut Map<String, Value>, patch: Map<String, Value>) {
    for (key, value) in patch {
        if value.is_null() {
            target.remove(&key);
        } else {
            target.insert(key, value);
        }
    }
}

/// An outgoing webhook URL must be absolute `http` or `https` with a host.
pub fn check_webhook_url(value: &Value) -> ApiResult<()> {
    let invalid = || ApiError::Unprocessable("settings.webhook_url must be an absolute http(s) URL".into());
    let text = value.as_str().ok_or_else(invalid)?;
    let url = reqwest::Url::parse(text).map_err(|_| invalid())?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none_or(str::is_empty) {
        return Err(invalid());
    }
    Ok(())
}

/// For PATCH bodies: tells "field absent" (`None`) from "field set to null" (`Some(None)`).
/// Use with `#[serde(default, deserialize_with = "double_option")]`.
pub fn double_option<'de, T: Deserialize<'de>, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(deserializer).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn text_is_trimmed_and_bounded() {
        assert_eq!(required_text("name", "  Sales ", 10).ok(), Some("Sales".to_string()));
        assert!(required_text("name", "   ", 10).is_err());
        assert!(required_text("name", &"x".repeat(11), 10).is_err());
        assert!(required_text("name", &"é".repeat(10), 10).is_ok(), "counts characters, not bytes");
        assert_eq!(optional_text("name", Some(" "), 10).ok(), Some(None));
        assert_eq!(optional_text("name", None, 10).ok(), Some(None));
    }

    #[test]
    fn emails_are_normalized_and_checked() {
        assert_eq!(check_email(" Ann@Example.COM ").ok(), Some("ann@example.com".to_string()));
        for bad in ["", "ann", "@example.com", "ann@", "a b@example.com", "a@b@c"] {
            assert!(check_email(bad).is_err(), "{bad:?} must be refused");
        }
    }

    #[test]
    fn limits_default_and_bound() {
        assert_eq!(limit(None, 50, 500).ok(), Some(50));
        assert_eq!(limit(Some(500), 50, 500).ok(), Some(500));
        assert!(limit(Some(0), 50, 500).is_err());
        assert!(limit(Some(501), 50, 500).is_err());
        assert!(check_capacity(-1).is_err());
        assert!(check_capacity(MAX_CAPACITY + 1).is_err());
        assert_eq!(check_capacity(5).ok(), Some(5));
    }

    #[test]
    fn enums_parse_with_a_helpful_error() {
        use switchboard_core::domain::CloseReason;
        assert_eq!(parse_enum("reason", "spam", CloseReason::ALL, CloseReason::parse).ok(), Some(CloseReason::Spam));
        let err = parse_enum("reason", "bored", CloseReason::ALL, CloseReason::parse).err().map(|e| e.to_string());
        let err = err.unwrap_or_default();
        assert!(err.contains("bored") && err.contains("no_response"), "{err}");
    }

    #[test]
    fn webhook_urls_must_be_http() {
        assert!(check_webhook_url(&json!("https://crm.example.com/hooks/sb")).is_ok());
        assert!(check_webhook_url(&json!("http://127.0.0.1:9000/x")).is_ok());
        for bad in [json!("ftp://example.com"), json!("not a url"), json!("/relative"), json!(42), json!("file:///etc/passwd")] {
            assert!(check_webhook_url(&bad).is_err(), "{bad} must be refused");
        }
    }

    #[test]
    fn objects_merge_shallowly() {
        let mut target = json_object("settings", Some(json!({"a": 1, "b": 2}))).unwrap_or_default();
        let patch = json_object("settings", Some(json!({"b": null, "c": 3}))).unwrap_or_default();
        merge_object(&mut target, patch);
        assert_eq!(Value::Object(target), json!({"a": 1, "c": 3}));
        assert!(json_object("settings", Some(json!([1]))).is_err());
        assert!(json_object("settings", None).is_ok_and(|m| m.is_empty()));
    }

    #[test]
    fn double_option_tells_null_from_absent() {
        #[derive(Deserialize)]
        struct Patch {
            #[serde(default, deserialize_with = "double_option")]
            team_id: Option<Option<i64>>,
        }
        let parse = |s: &str| serde_json::from_str::<Patch>(s).map(|p| p.team_id).ok();
        assert_eq!(parse("{}"), Some(None));
        assert_eq!(parse(r#"{"team_id": null}"#), Some(Some(None)));
        assert_eq!(parse(r#"{"team_id": 7}"#), Some(Some(Some(7))));
    }
}
