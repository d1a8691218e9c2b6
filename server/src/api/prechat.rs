//! The web widget's pre-chat form: a web inbox's `settings.prechat` says whether it is shown,
//! whether the email is required and which teams the customer may choose from ("departments");
//! the customer's answers name the contact, are stored as the conversation's
//! `attributes.prechat` and send the new conversation to the chosen team's queue.
//!
//! `settings.prechat`: `{"enabled": bool, "require_email": bool, "departments": [team id, …]}`.
//! Checked for shape when an inbox is saved ([`check_settings`]); team ids that are not (or no
//! longer) the tenant's are left out when the form is built ([`config`]).

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use switchboard_core::domain::Inbox;
use switchboard_core::ids::TeamId;

use crate::api::validate::{check_email, required_text, MAX_NAME_CHARS};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// The settings key.
pub const PRECHAT: &str = "prechat";
const MAX_DEPARTMENTS: usize = 20;

/// What the widget shows: sent with its `session` event (`null` when the form is off).
#[derive(Debug, Clone, Serialize)]
pub struct PrechatConfig {
    pub require_email: bool,
    pub departments: Vec<Department>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Department {
    pub id: TeamId,
    pub name: String,
}

/// The customer's answers as submitted (`prechat` socket event).
#[derive(Debug, Deserialize)]
pub struct PrechatForm {
    pub name: String,
    pub email: Option<String>,
    pub team_id: Option<TeamId>,
}

/// The answers once checked against the form.
#[derive(Debug, Clone, PartialEq)]
pub struct Prechat {
    pub name: String,
    pub email: Option<String>,
    pub department: Option<Department>,
}

impl Prechat {
    /// As stored in the conversation's `attributes.prechat` (and shown in the customer panel).
    pub fn attribute(&self) -> Value {
        json!({
            "name": self.name,
            "email": self.email,
            "department": self.department.as_ref().map(|d| json!({"id": d.id, "name": d.name})),
        })
    }
}

/// Refuses a malformed `settings.prechat` (422 naming the field); absent or `null` is fine.
pub fn check_settings(settings: &Map<String, Value>) -> ApiResult<()> {
    let Some(prechat) = settings.get(PRECHAT).filter(|v| !v.is_null()) else { return Ok(()) };
    let bad = |what: &str| Err(ApiError::Unprocessable(format!("settings.prechat.{what}")));
    let Some(object) = prechat.as_object() else {
        return Err(ApiError::Unprocessable("settings.prechat must be an object {enabled, require_email, departments}".into()));
    };
    for (key, value) in object {
        match key.as_str() {
            "enabled" | "require_email" if !value.is_boolean() => return bad(&format!("{key} must be true or false")),
            "enabled" | "require_email" => {}
            "departments" => {
                let ids = value.as_array().filter(|a| a.len() <= MAX_DEPARTMENTS && a.iter().all(|v| v.as_i64().is_some_and(|id| id > 0)));
                if ids.is_none() {
                    return bad(&format!("departments must be a list of at most {MAX_DEPARTMENTS} team ids"));
                }
            }
            other => return bad(&format!("{other} is not a setting (enabled, require_email, departments)")),
        }
    }
    Ok(())
}

/// The form of a web inbox, if it has one switched on; departments in the order configured,
/// only the tenant's teams.
pub async fn config(state: &AppState, inbox: &Inbox) -> ApiResult<Option<PrechatConfig>> {
    let Some(settings) = inbox.settings.get(PRECHAT).and_then(Value::as_object) else { return Ok(None) };
    if settings.get("enabled").and_then(Value::as_bool) != Some(true) {
        return Ok(None);
    }
    let wanted: Vec<i64> = settings.get("departments").and_then(Value::as_array).map(|a| a.iter().filter_map(Value::as_i64).collect()).unwrap_or_default();
    let teams = if wanted.is_empty() { Vec::new() } else { state.store.list_teams(inbox.tenant_id).await? };
    let departments = wanted
        .iter()
        .filter_map(|id| teams.iter().find(|t| t.id.0 == *id))
        .map(|t| Department { id: t.id, name: t.name.clone() })
        .collect();
    Ok(Some(PrechatConfig { require_email: settings.get("require_email").and_then(Value::as_bool).unwrap_or(false), departments }))
}

/// Checks the customer's answers: a name, an email when required (and well-formed when given),
/// one of the offered departments when there are any.
pub fn check_form(config: &PrechatConfig, form: PrechatForm) -> ApiResult<Prechat> {
    let name = required_text("name", &form.name, MAX_NAME_CHARS)?;
    let email = match form.email.as_deref().map(str::trim).filter(|e| !e.is_empty()) {
        Some(e) => Some(check_email(e)?),
        None if config.require_email => return Err(ApiError::Unprocessable("email must not be empty".into())),
        None => None,
    };
    let department = match (form.team_id, config.departments.is_empty()) {
        (_, true) => None,
        (None, false) => return Err(ApiError::Unprocessable("team_id: choose one of the departments".into())),
        (Some(id), false) => Some(
            config.departments.iter().find(|d| d.id == id).cloned().ok_or_else(|| ApiError::Unprocessable("team_id is not one of the departments".into()))?,
        ),
    };
    Ok(Prechat { name, email, department })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(v: Value) -> Map<String, Value> {
        json!({ "widget_key": "wk", "prechat": v }).as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn settings_shape() {
        assert!(check_settings(&settings(Value::Null)).is_ok());
        assert!(check_settings(&settings(json!({"enabled": true, "require_email": false, "departments": [1, 2]}))).is_ok());
        for bad in [json!(true), json!({"enabled": "yes"}), json!({"departments": [0]}), json!({"departments": "1"}), json!({"colour": 1})] {
            assert!(check_settings(&settings(bad.clone())).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn forms() {
        let sales = Department { id: TeamId(7), name: "Sales".into() };
        let config = PrechatConfig { require_email: true, departments: vec![sales.clone()] };
        let form = |name: &str, email: Option<&str>, team: Option<i64>| PrechatForm { name: name.into(), email: email.map(Into::into), team_id: team.map(TeamId) };
        let ok = check_form(&config, form(" Ada ", Some("Ada@Example.com"), Some(7))).expect("valid");
        assert_eq!(ok, Prechat { name: "Ada".into(), email: Some("ada@example.com".into()), department: Some(sales) });
        assert!(check_form(&config, form("", Some("a@b.c"), Some(7))).is_err());
        assert!(check_form(&config, form("Ada", None, Some(7))).is_err(), "email required");
        assert!(check_form(&config, form("Ada", Some("not-an-email"), Some(7))).is_err());
        assert!(check_form(&config, form("Ada", Some("a@b.c"), None)).is_err(), "department required");
        assert!(check_form(&config, form("Ada", Some("a@b.c"), Some(8))).is_err(), "not offered");
        let open = PrechatConfig { require_email: false, departments: vec![] };
        assert_eq!(check_form(&open, form("Ada", None, Some(8))).expect("valid").department, None);
    }
}
