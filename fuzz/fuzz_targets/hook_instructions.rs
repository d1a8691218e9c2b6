//! A decision hook's response body (an HTTP server the tenant runs answers it): parsed and
//! validated before the bot acts on it.
#![no_main]
use libfuzzer_sys::fuzz_target;
use switchboard_core::autoresponder::hook::Instructions;

fuzz_target!(|data: &[u8]| {
    let Ok(body) = std::str::from_utf8(data) else { return };
    if let Ok(instructions) = Instructions::parse(body) {
        let _ = instructions.effective_then();
    }
});
