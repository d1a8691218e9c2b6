//! Rules applied to the whole OpenAPI document after the derive has built it, so the contract
//! says what the server really answers without repeating the same lines on every handler:
//!
//! - [`StandardErrors`]: the error answers every operation of a given shape can give (a JSON
//!   body can be malformed, oversize, of the wrong media type or invalid; a path id can fail to
//!   parse or name nothing; a bearer can be missing; storage can be unavailable). Responses an
//!   operation declares itself are kept as they are.
//! - [`WireEnums`]: the domain's string enums listed in their wire spelling (`"admin"`, not
//!   `"Admin"`), taken from the same `ALL` / `as_str` the serializer uses.
//!
//! This module only edits the document; it must not change what a handler does.

use serde_json::Value;
use switchboard_core::domain::{
    AgentStatus, ChannelKind, CloseReason, ConversationState, DeliveryStatus, MessageDirection, OutboxStatus, Role,
    SenderKind,
};
use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::schema::{Object, SchemaType, Type};
use utoipa::openapi::security::SecurityRequirement;
use utoipa::openapi::{Content, HeaderBuilder, Ref, RefOr, Response, ResponseBuilder, Schema};
use utoipa::Modify;

/// Declares the error answers an operation can give, by what it takes.
pub struct StandardErrors;

impl Modify for StandardErrors {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for item in openapi.paths.paths.values_mut() {
            let operations = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.options,
                &mut item.head,
                &mut item.patch,
                &mut item.trace,
            ];
            for operation in operations.into_iter().flatten() {
                add_standard_errors(operation);
            }
        }
    }
}

fn add_standard_errors(operation: &mut Operation) {
    let parameters = operation.parameters.as_deref().unwrap_or_default();
    let in_path = parameters.iter().any(|p| p.parameter_in == ParameterIn::Path);
    let in_query = parameters.iter().any(|p| p.parameter_in == ParameterIn::Query);
    let has_body = operation.request_body.is_some();
    // `security(())` (login) is one empty requirement: anyone may call it.
    let authenticated = operation.security.as_ref().is_some_and(|s| s.iter().any(|r| *r != SecurityRequirement::default()));

    let mut bad_request = Vec::new();
    if has_body {
        bad_request.push("`malformed_json` (the body is not JSON)");
    }
    if in_path {
        bad_request.push("`invalid_path` (e.g. an id that is not a 64-bit integer)");
    }
    if in_query {
        bad_request.push("`invalid_query` (a query parameter of the wrong type)");
    }

    let responses = &mut operation.responses.responses;
    let mut add = |status: &str, response: Response| {
        responses.entry(status.to_string()).or_insert(RefOr::T(response));
    };
    if !bad_request.is_empty() {
        add("400", error_response(&format!("Bad request: {}", bad_request.join("; "))));
    }
    if authenticated {
        add("401", error_response("`unauthorized`: no bearer token, or an unknown or expired one"));
    }
    if in_path {
        add("404", error_response("`not_found`: nothing with this id in the caller's tenant"));
    }
    if has_body {
        add("413", error_response("`payload_too_large`: the body is over the server's limit"));
        add("415", error_response("`unsupported_media_type`: send `Content-Type: application/json`"));
    }
    if has_body || in_query {
        add("422", error_response("`invalid_body`: well-formed but invalid input"));
    }
    add("503", unavailable_response());
}

fn error_response(description: &str) -> Response {
    ResponseBuilder::new()
        .description(description)
        .content("application/json", Content::new(Some(Ref::from_schema_name("ErrorBody"))))
        .build()
}

fn unavailable_response() -> Response {
    let retry_after = HeaderBuilder::new()
        .schema(Object::with_type(Type::Integer))
        .description(Some("Seconds to wait before retrying"))
        .build();
    ResponseBuilder::new()
        .description("`unavailable`: a dependency (storage) is unavailable; retry after `Retry-After` seconds")
        .content("application/json", Content::new(Some(Ref::from_schema_name("ErrorBody"))))
        .header("Retry-After", retry_after)
        .build()
}

/// Lists each domain enum's values as they are serialized.
pub struct WireEnums;

impl Modify for WireEnums {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let Some(components) = openapi.components.as_mut() else { return };
        for (name, values) in wire_enums() {
            if let Some(RefOr::T(Schema::Object(object))) = components.schemas.get_mut(name) {
                object.schema_type = SchemaType::Type(Type::String);
                object.enum_values = Some(values);
            }
        }
    }
}

fn spellings<T: std::fmt::Display>(all: &[T]) -> Vec<Value> {
    all.iter().map(|v| Value::String(v.to_string())).collect()
}

/// Every string enum of the domain that the API shows, by schema name.
pub fn wire_enums() -> [(&'static str, Vec<Value>); 9] {
    [
        ("Role", spellings(Role::ALL)),
        ("ChannelKind", spellings(ChannelKind::ALL)),
        ("AgentStatus", spellings(AgentStatus::ALL)),
        ("ConversationState", spellings(ConversationState::ALL)),
        ("CloseReason", spellings(CloseReason::ALL)),
        ("MessageDirection", spellings(MessageDirection::ALL)),
        ("SenderKind", spellings(SenderKind::ALL)),
        ("DeliveryStatus", spellings(DeliveryStatus::ALL)),
        ("OutboxStatus", spellings(OutboxStatus::ALL)),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn serialized<T: serde::Serialize>(all: &[T]) -> Vec<Value> {
        all.iter().map(|v| serde_json::to_value(v).unwrap_or(Value::Null)).collect()
    }

    #[test]
    fn wire_spellings_are_what_serde_writes() {
        let expected = [
            serialized(Role::ALL),
            serialized(ChannelKind::ALL),
            serialized(AgentStatus::ALL),
            serialized(ConversationState::ALL),
            serialized(CloseReason::ALL),
            serialized(MessageDirection::ALL),
            serialized(SenderKind::ALL),
            serialized(DeliveryStatus::ALL),
            serialized(OutboxStatus::ALL),
        ];
        for ((name, values), expected) in wire_enums().into_iter().zip(expected) {
            assert_eq!(values, expected, "{name}");
        }
    }
}
