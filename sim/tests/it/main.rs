//! One integration-test binary for `switchboard-sim` (see STYLE.md, habit 8).
mod agreement;
