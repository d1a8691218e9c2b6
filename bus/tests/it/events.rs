//! The event wire format: what one node writes, another (maybe of another version) must read.

use serde_json::{json, Value};
use switchboard_bus::BusEvent;

use crate::common::sample_events;

#[test]
fn every_variant_round_trips_through_json() {
    for event in sample_events() {
        let text = serde_json::to_string(&event).expect("serialize");
        let back: BusEvent = serde_json::from_str(&text).expect("deserialize");
        assert_eq!(back, event, "round trip changed {text}");
    }
}

#[test]
fn wire_format_is_tagged_snake_case() {
    let tags: Vec<Value> =
        sample_events().iter().map(|event| serde_json::to_value(event).expect("serialize")["type"].clone()).collect();
    assert_eq!(
        tags,
        [
            json!("message_created"),
            json!("conversation_updated"),
            json!("agent_updated"),
            json!("queue_changed"),
            json!("dispatch_needed"),
            json!("typing"),
            json!("resync"),
            json!("access_changed")
        ]
    );

    let decoded: BusEvent = serde_json::from_value(json!({"type": "dispatch_needed", "tenant_id": 3})).expect("decode");
    assert_eq!(decoded, BusEvent::DispatchNeeded { tenant_id: switchboard_core::ids::TenantId(3) });
}

#[test]
fn typing_names_who_types_in_words() {
    let event = BusEvent::Typing {
        tenant_id: switchboard_core::ids::TenantId(2),
        conversation_id: switchboard_core::ids::ConversationId(9),
        assignee_id: None,
        sender: switchboard_core::domain::SenderKind::Agent,
    };
    assert_eq!(
        serde_json::to_value(&event).expect("serialize"),
        json!({"type": "typing", "tenant_id": 2, "conversation_id": 9, "assignee_id": null, "sender": "agent"})
    );
}

#[test]
fn unknown_event_types_are_rejected() {
    assert!(serde_json::from_value::<BusEvent>(json!({"type": "something_new", "tenant_id": 3})).is_err());
}
