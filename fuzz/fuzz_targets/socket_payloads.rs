//! Socket.IO event payloads of `/agent` and `/widget`, as a client sends them in an event frame:
//! the JSON array `["event", payload]` (the part of a socket.io packet after `42/ns,id`). Each is
//! decoded for both namespaces with the server's payload types (`switchboard_core::realtime`).
#![no_main]
use libfuzzer_sys::fuzz_target;
use switchboard_core::realtime::decode;

fuzz_target!(|data: &[u8]| {
    let Ok(frame) = serde_json::from_slice::<serde_json::Value>(data) else { return };
    let Some(items) = frame.as_array() else { return };
    let Some(event) = items.first().and_then(|e| e.as_str()) else { return };
    let payload = items.get(1).cloned().unwrap_or(serde_json::Value::Null);
    let event = if items.len() == 1 { "connect" } else { event };
    for namespace in ["agent", "widget"] {
        let _ = decode(namespace, event, payload.clone());
    }
});
