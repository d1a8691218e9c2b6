//! The server's in-process integration tests: the real server (`launch`) on port 0 with an
//! in-memory SQLite database and the in-process bus, driven over HTTP.

mod api;
mod autoresponder;
mod authz;
mod console;
mod gateway;
mod gateway_delivery;
mod helpers;
mod media;
mod offers;
mod ops;
mod queue;
mod routing;
mod security;
mod transfer;
