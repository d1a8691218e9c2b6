//! Wrap-up templates: the form a team's agents fill in when they resolve a conversation (seed
//! 003's summary template). Admins set a team's template; anyone in the tenant may read it (the
//! console renders it in the resolve dialog). The resolve endpoints check submitted values
//! against it with [`check_values`]; this module stores nothing on conversations itself.
//!
//! A template: `{"fields": [{"key", "label", "kind": "text"|"select"|"checkbox", "options"?,
//! "required"?}]}`. Values: `{"<key>": string | bool}`.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use switchboard_core::ids::TeamId;
use utoipa::ToSchema;

use crate::api::teams::ensure_team;
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult, ErrorBody, ErrorItem};
use crate::extract::{ApiJson, ApiPath};
use crate::state::AppState;
use crate::time::now_ms;

const MAX_FIELDS: usize = 30;
const MAX_OPTIONS: usize = 50;
const MAX_KEY_CHARS: usize = 40;
const MAX_LABEL_CHARS: usize = 200;
/// Longest text answer, in characters.
pub const MAX_TEXT_CHARS: usize = 2000;

pub fn router() -> Router<AppState> {
    Router::new().route("/teams/{id}/wrap-up-template", get(get_template).put(put_template))
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct WrapUpTemplate {
    pub fields: Vec<WrapUpField>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct WrapUpField {
    /// `[a-z0-9_]`, 1–40 characters, unique in the template; the key of the stored value.
    pub key: String,
    pub label: String,
    /// `text`, `select` or `checkbox`.
    pub kind: String,
    /// For `select` only: the choices (1–50, unique).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<String>,
    /// Text: not blank; select: chosen; checkbox: ticked.
    #[serde(default)]
    pub required: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TemplateDocument {
    pub team_id: TeamId,
    /// `null` when the team has no wrap-up form.
    pub template: Option<WrapUpTemplate>,
}

fn item(path: impl Into<String>, message: impl Into<String>) -> ErrorItem {
    ErrorItem { path: path.into(), message: message.into() }
}

fn invalid(code: &'static str, what: &str, errors: Vec<ErrorItem>) -> ApiError {
    let message = match errors.as_slice() {
        [one] => format!("{what} is invalid at {}: {}", one.path, one.message),
        many => format!("{what} is invalid ({} problems)", many.len()),
    };
    ApiError::InvalidDocument { code, message, errors }
}

fn valid_key(key: &str) -> bool {
    !key.is_empty()
        && key.chars().count() <= MAX_KEY_CHARS
        && key.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

fn check_label(errors: &mut Vec<ErrorItem>, path: String, label: &str) {
    if label.trim().is_empty() || label.chars().count() > MAX_LABEL_CHARS {
        errors.push(item(path, format!("must be 1 to {MAX_LABEL_CHARS} characters")));
    }
}

/// Checks a submitted template, collecting every problem with its path (`fields[2].options`).
pub fn check_template(doc: &Value) -> Result<WrapUpTemplate, Vec<ErrorItem>> {
    let Some(object) = doc.as_object() else { return Err(vec![item("", "must be an object {\"fields\": [...]}")]) };
    let mut errors = Vec::new();
    for key in object.keys().filter(|k| *k != "fields") {
        errors.push(item(key.clone(), "unknown property"));
    }
    let Some(fields) = object.get("fields").and_then(Value::as_array) else {
        errors.push(item("fields", "must be an array"));
        return Err(errors);
    };
    if fields.len() > MAX_FIELDS {
        errors.push(item("fields", format!("at most {MAX_FIELDS} fields")));
    }
    let mut parsed = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (i, raw) in fields.iter().enumerate() {
        let at = |p: &str| format!("fields[{i}].{p}");
        let field: WrapUpField = match serde_json::from_value(raw.clone()) {
            Ok(f) => f,
            Err(e) => {
                errors.push(item(format!("fields[{i}]"), e.to_string()));
                continue;
            }
        };
        if let Some(extra) = raw.as_object().and_then(|o| o.keys().find(|k| !["key", "label", "kind", "options", "required"].contains(&k.as_str()))) {
            errors.push(item(at(extra), "unknown property"));
        }
        if !valid_key(&field.key) {
            errors.push(item(at("key"), format!("must be 1 to {MAX_KEY_CHARS} of a-z, 0-9 and _")));
        } else if !seen.insert(field.key.clone()) {
            errors.push(item(at("key"), "used by another field"));
        }
        check_label(&mut errors, at("label"), &field.label);
        match field.kind.as_str() {
            "select" => {
                if field.options.is_empty() || field.options.len() > MAX_OPTIONS {
                    errors.push(item(at("options"), format!("a select needs 1 to {MAX_OPTIONS} options")));
                }
                let mut distinct = std::collections::HashSet::new();
                for (j, option) in field.options.iter().enumerate() {
                    check_label(&mut errors, format!("fields[{i}].options[{j}]"), option);
                    if !distinct.insert(option) {
                        errors.push(item(format!("fields[{i}].options[{j}]"), "repeated option"));
                    }
                }
            }
            "text" | "checkbox" => {
                if !field.options.is_empty() {
                    errors.push(item(at("options"), "only a select has options"));
                }
            }
            other => errors.push(item(at("kind"), format!("unknown kind {other:?}: use text, select or checkbox"))),
        }
        parsed.push(field);
    }
    if errors.is_empty() {
        Ok(WrapUpTemplate { fields: parsed })
    } else {
        Err(errors)
    }
}

/// Checks a resolve's wrap-up values against the team's template: every key a field of it, each
/// value of the field's kind (a select's one of its options) and, with `require`, every required
/// field filled in. `values = None` counts as an empty form. Paths are `wrap_up.<key>`.
pub fn check_values(template: Option<&WrapUpTemplate>, values: Option<&Value>, require: bool) -> ApiResult<Map<String, Value>> {
    let empty = Map::new();
    let object = match values {
        None | Some(Value::Null) => &empty,
        Some(Value::Object(o)) => o,
        Some(_) => return Err(invalid("invalid_wrap_up", "wrap_up", vec![item("wrap_up", "must be an object")])),
    };
    let fields: &[WrapUpField] = template.map(|t| t.fields.as_slice()).unwrap_or_default();
    let mut errors = Vec::new();
    for key in object.keys() {
        if !fields.iter().any(|f| &f.key == key) {
            errors.push(item(format!("wrap_up.{key}"), "not a field of the team's wrap-up form"));
        }
    }
    let mut clean = Map::new();
    for field in fields {
        let path = format!("wrap_up.{}", field.key);
        let required = field.required && require;
        let value = object.get(&field.key).filter(|v| !v.is_null());
        match (field.kind.as_str(), value) {
            ("text", Some(Value::String(s))) => {
                let s = s.trim();
                if s.chars().count() > MAX_TEXT_CHARS {
                    errors.push(item(path, format!("at most {MAX_TEXT_CHARS} characters")));
                } else if s.is_empty() && required {
                    errors.push(item(path, "required"));
                } else if !s.is_empty() {
                    clean.insert(field.key.clone(), Value::String(s.to_owned()));
                }
            }
            ("select", Some(Value::String(s))) => {
                if field.options.iter().any(|o| o == s) {
                    clean.insert(field.key.clone(), Value::String(s.clone()));
                } else if s.is_empty() && required {
                    errors.push(item(path, "required"));
                } else if !s.is_empty() {
                    errors.push(item(path, format!("must be one of {}", field.options.join(", "))));
                }
            }
            ("checkbox", Some(Value::Bool(b))) => {
                if !b && required {
                    errors.push(item(path, "required"));
                } else {
                    clean.insert(field.key.clone(), Value::Bool(*b));
                }
            }
            (_, None) if required => errors.push(item(path, "required")),
            (_, None) => {}
            ("checkbox", Some(_)) => errors.push(item(path, "must be true or false")),
            (_, Some(_)) => errors.push(item(path, "must be a string")),
        }
    }
    if errors.is_empty() {
        Ok(clean)
    } else {
        Err(invalid("invalid_wrap_up", "the wrap-up form", errors))
    }
}

/// The stored template of a team (`None`: no form). A stored template is validated when it is
/// saved; one that no longer parses counts as none rather than blocking every resolve.
pub async fn team_template(state: &AppState, tenant: switchboard_core::ids::TenantId, team: TeamId) -> ApiResult<Option<WrapUpTemplate>> {
    let stored = state.store.get_team_wrap_up_template(tenant, team).await?;
    Ok(stored.and_then(|t| check_template(&t).ok()))
}

/// A team's wrap-up form (anyone in the tenant: the console shows it when resolving).
#[utoipa::path(
    get, path = "/teams/{id}/wrap-up-template", tag = "teams",
    params(("id" = i64, Path, description = "Team id")),
    responses(
        (status = 200, body = TemplateDocument),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn get_template(State(state): State<AppState>, principal: Principal, ApiPath(id): ApiPath<TeamId>) -> ApiResult<Json<TemplateDocument>> {
    let template = team_template(&state, principal.tenant_id, id).await?;
    Ok(Json(TemplateDocument { team_id: id, template }))
}

/// Set a team's wrap-up form (admin); `{"fields": []}` removes it. Every problem is reported
/// with its path (422 `invalid_wrap_up_template`).
#[utoipa::path(
    put, path = "/teams/{id}/wrap-up-template", tag = "teams",
    params(("id" = i64, Path, description = "Team id")),
    request_body = WrapUpTemplate,
    responses(
        (status = 200, body = TemplateDocument),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 422, description = "The template is invalid; `errors` lists each problem with its path", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn put_template(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(id): ApiPath<TeamId>,
    ApiJson(body): ApiJson<Value>,
) -> ApiResult<Json<TemplateDocument>> {
    principal.require_admin()?;
    ensure_team(&state, &principal, id).await?;
    let template = check_template(&body).map_err(|errors| invalid("invalid_wrap_up_template", "the wrap-up template", errors))?;
    let stored = if template.fields.is_empty() { None } else { Some(serde_json::to_value(&template).map_err(anyhow::Error::from)?) };
    state.store.set_team_wrap_up_template(principal.tenant_id, id, stored, now_ms()).await?;
    let detail = serde_json::json!({"fields": template.fields.len()});
    crate::api::audit::record(&state, &principal, "team.wrap_up_template.set", "team", id, detail).await;
    let template = (!template.fields.is_empty()).then_some(template);
    Ok(Json(TemplateDocument { team_id: id, template }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn template() -> WrapUpTemplate {
        check_template(&json!({"fields": [
            {"key": "topic", "label": "Topic", "kind": "select", "options": ["billing", "other"], "required": true},
            {"key": "summary", "label": "Summary", "kind": "text", "required": true},
            {"key": "follow_up", "label": "Follow up", "kind": "checkbox"},
        ]}))
        .expect("valid")
    }

    #[test]
    fn templates_report_every_problem_with_its_path() {
        let errors = check_template(&json!({"fields": [
            {"key": "Bad Key", "label": "", "kind": "text"},
            {"key": "a", "label": "A", "kind": "select", "options": []},
            {"key": "a", "label": "A", "kind": "radio"},
            {"key": "b", "label": "B", "kind": "text", "options": ["x"], "colour": 1},
        ], "x": 1}))
        .expect_err("invalid");
        let paths: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
        for expected in ["x", "fields[0].key", "fields[0].label", "fields[1].options", "fields[2].key", "fields[2].kind", "fields[3].options", "fields[3].colour"] {
            assert!(paths.contains(&expected), "{expected} missing from {paths:?}");
        }
        assert!(check_template(&json!([])).is_err());
        assert!(check_template(&json!({"fields": "no"})).is_err());
    }

    #[test]
    fn values_are_checked_against_the_template() {
        let t = template();
        let ok = check_values(Some(&t), Some(&json!({"topic": "billing", "summary": " refund ", "follow_up": false})), true).expect("valid");
        assert_eq!(Value::Object(ok), json!({"topic": "billing", "summary": "refund", "follow_up": false}));
        for bad in [
            json!({"summary": "x"}),
            json!({"topic": "billing", "summary": "  "}),
            json!({"topic": "nope", "summary": "x"}),
            json!({"topic": "billing", "summary": "x", "follow_up": "yes"}),
            json!({"topic": "billing", "summary": "x", "extra": 1}),
            json!("text"),
        ] {
            assert!(check_values(Some(&t), Some(&bad), true).is_err(), "{bad} accepted");
        }
        assert!(check_values(Some(&t), None, true).is_err(), "required fields missing");
        // Not required (e.g. closing as spam), but still checked.
        assert!(check_values(Some(&t), None, false).expect("optional").is_empty());
        assert!(check_values(Some(&t), Some(&json!({"topic": "nope"})), false).is_err());
        // Without a template only an empty form is accepted.
        assert!(check_values(None, None, true).expect("empty").is_empty());
        assert!(check_values(None, Some(&json!({"a": 1})), true).is_err());
    }
}
