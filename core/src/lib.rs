//! Switchboard's domain core: the types every other crate speaks (tenants, users, inboxes,
//! conversations, messages, the outbox), the rules for how a conversation may change state, and
//! the ports — [`store::Store`] and [`bus::Bus`] — that storage backends and the coordination bus
//! implement.
//!
//! This crate must not do IO: no sockets, no SQL, no clocks read implicitly (callers pass `now`).
//! That keeps it fast to compile and property-testable.
#![forbid(unsafe_code)]

pub mod autoresponder;
pub mod bus;
pub mod domain;
pub mod error;
pub mod ids;
pub mod realtime;
pub mod routing;
pub mod store;
pub mod time;
pub mod transfer;

pub use error::StoreError;
