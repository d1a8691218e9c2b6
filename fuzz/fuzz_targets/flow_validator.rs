//! Auto-responder flows as admins upload them (`PUT /inboxes/{id}/flow`): parse, validate, list
//! routes, compile (regexes included). Refusing is fine; panicking is not.
#![no_main]
use libfuzzer_sys::fuzz_target;
use switchboard_core::autoresponder::flow::Flow;

fuzz_target!(|data: &[u8]| {
    let Ok(json) = std::str::from_utf8(data) else { return };
    let Ok(flow) = Flow::parse(json) else { return };
    let _ = flow.routes();
    let _ = flow.start_id();
    let _ = flow.compile();
});
