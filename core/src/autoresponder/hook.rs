//! The decision hook's contract: what the server sends ([`DecisionHookRequest`]), what the
//! business system answers ([`Instructions`]), and how a call can fail ([`HookFailure`]).
//!
//! The server does the HTTP (POST, HMAC signature, timeout); this module only defines and checks
//! the shapes, so the server, the engine and `docs/auto-responder.md` agree on them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::flow::{is_field_name, FlowError, RouteSpec, StepId};
use crate::domain::ChannelKind;
use crate::ids::{ContactId, ConversationId, InboxId};
use crate::time::Millis;

/// The longest `reply` a hook may send.
pub const MAX_HOOK_REPLY_CHARS: usize = 4_096;
/// The most attributes (conversation and contact together) one answer may set.
pub const MAX_HOOK_ATTRIBUTES: usize = 50;
/// The largest serialized attribute value.
pub const MAX_ATTRIBUTE_BYTES: usize = 4_096;

/// The JSON body the server POSTs to the decision hook.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DecisionHookRequest {
    /// Always `"decision.requested"`.
    pub event: String,
    /// Matches the `call_id` of [`super::Action::CallDecisionHook`].
    pub call_id: u32,
    /// The `decision_hook` step asking.
    pub step: StepId,
    pub conversation_id: ConversationId,
    pub inbox: HookInbox,
    pub contact: HookContact,
    /// The message that opened the conversation.
    pub first_message: Option<String>,
    /// The customer's most recent message.
    pub last_message: Option<String>,
    /// What the flow has collected so far (`FlowState::fields`).
    pub fields: BTreeMap<String, Value>,
    /// The conversation's `biz_data`.
    pub biz_data: Value,
    /// When the request was made (Unix ms).
    pub sent_at: Millis,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HookInbox {
    pub id: InboxId,
    pub name: String,
    pub channel: ChannelKind,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HookContact {
    pub id: ContactId,
    /// The platform's id for the customer (phone, chat id, widget session).
    pub external_id: String,
    pub name: Option<String>,
}

/// The decision hook's answer. Every key is optional; they are applied in this order: `reply`,
/// `attributes`, `contact_attributes`, `route`, then `then`.
///
/// ```json
/// {"reply": "Welcome back, Ada!", "attributes": {"tier": "gold"},
///  "route": {"team": "VIP", "priority": 4, "tags": ["gold"]}, "then": "handoff"}
/// ```
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Instructions {
    /// Sent to the customer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reply: Option<String>,
    /// Saved on the conversation (and into the flow's collected fields).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub attributes: BTreeMap<String, Value>,
    /// Saved on the contact (and into the flow's collected fields).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub contact_attributes: BTreeMap<String, Value>,
    /// Queue, team, preferred agent, skills, priority, tags for the handoff.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub route: Option<RouteSpec>,
    /// What the flow does afterwards. Default: `handoff` when `route` is given, else `continue`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub then: Option<Then>,
    /// With `continue`: the step to go to instead of the hook step's `next`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<StepId>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Then {
    /// Hand the conversation to a human now.
    Handoff,
    /// Close the conversation.
    Close,
    /// Go on with the flow (at `next`, or the hook step's `next`).
    Continue,
}

impl Instructions {
    /// Parses and checks a hook's response body.
    pub fn parse(body: &str) -> Result<Instructions, HookFailure> {
        let instructions: Instructions =
            serde_json::from_str(body).map_err(|e| HookFailure::InvalidResponse { message: e.to_string() })?;
        instructions.validate().map_err(|errors| HookFailure::InvalidResponse {
            message: errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "),
        })?;
        Ok(instructions)
    }

    /// What the flow does after applying these.
    pub fn effective_then(&self) -> Then {
        self.then.unwrap_or(if self.route.is_some() { Then::Handoff } else { Then::Continue })
    }

    /// Every problem, with paths into the response body.
    pub fn validate(&self) -> Result<(), Vec<FlowError>> {
        let mut errors = Vec::new();
        if let Some(reply) = &self.reply {
            if reply.trim().is_empty() {
                errors.push(FlowError::new("reply", "must not be blank (leave it out instead)"));
            } else if reply.chars().count() > MAX_HOOK_REPLY_CHARS {
                errors.push(FlowError::new("reply", format!("at most {MAX_HOOK_REPLY_CHARS} characters")));
            }
        }
        if self.attributes.len() + self.contact_attributes.len() > MAX_HOOK_ATTRIBUTES {
            errors.push(FlowError::new("attributes", format!("at most {MAX_HOOK_ATTRIBUTES} attributes in all")));
        }
        for (key, map) in [("attributes", &self.attributes), ("contact_attributes", &self.contact_attributes)] {
            for (name, value) in map {
                if !is_field_name(name) {
                    errors
                        .push(FlowError::new(format!("{key}.{name}"), "not an attribute name: use 1–64 of a-z 0-9 _"));
                } else if value.to_string().len() > MAX_ATTRIBUTE_BYTES {
                    errors
                        .push(FlowError::new(format!("{key}.{name}"), format!("at most {MAX_ATTRIBUTE_BYTES} bytes")));
                }
            }
        }
        if let Some(route) = &self.route {
            errors.extend(route.validate("route"));
        }
        if self.next.is_some() && self.effective_then() != Then::Continue {
            errors.push(FlowError::new("next", "only used when the flow continues (then: \"continue\")"));
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }
}

/// Why a decision hook call produced no instructions. The flow goes to the step's `fallback` for
/// every one of them; the kind is for the server's logs and metrics.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum HookFailure {
    /// No answer within the step's `timeout_ms`.
    #[error("the decision hook did not answer in time")]
    Timeout,
    /// Answered with a non-2xx status.
    #[error("the decision hook answered HTTP {status}")]
    Status { status: u16 },
    /// Connection refused, DNS, TLS …
    #[error("the decision hook could not be reached: {message}")]
    Transport { message: String },
    /// A 2xx whose body is not valid [`Instructions`] (or names a step the flow lacks).
    #[error("the decision hook's answer is invalid: {message}")]
    InvalidResponse { message: String },
    /// The inbox has no decision hook configured.
    #[error("no decision hook is configured")]
    NotConfigured,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::autoresponder::flow::TeamRef;

    #[test]
    fn a_full_answer_parses_and_defaults_to_handoff_when_routed() {
        let ins = Instructions::parse(
            r#"{"reply":"Hi","attributes":{"tier":"gold"},"contact_attributes":{"crm_id":42},
                "route":{"team":"VIP","queue":3,"agent":12,"skills":["billing",{"skill":"spanish","min_proficiency":3}],
                         "priority":4,"tags":["gold"]}}"#,
        )
        .expect("valid");
        assert_eq!(ins.effective_then(), Then::Handoff);
        assert_eq!(ins.route.as_ref().and_then(|r| r.team.clone()), Some(TeamRef::Name("VIP".into())));
        assert_eq!(Instructions::parse("{}").expect("empty is valid").effective_then(), Then::Continue);
    }

    #[test]
    fn bad_answers_are_invalid_responses() {
        for body in [
            "not json",
            r#"{"reply":"x","unknown":1}"#,
            r#"{"route":{"priority":9}}"#,
            r#"{"attributes":{"Bad Name":1}}"#,
            r#"{"reply":"  "}"#,
            r#"{"then":"close","next":"menu"}"#,
            r#"{"then":"explode"}"#,
            r#"{"route":{"skills":[{"skill":"x","min_proficiency":2,"level":9}]}}"#,
        ] {
            assert!(
                matches!(Instructions::parse(body), Err(HookFailure::InvalidResponse { .. })),
                "{body} must be refused"
            );
        }
    }
}
