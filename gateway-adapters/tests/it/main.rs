//! Adapter tests: each platform's adapter against recorded / SDK-produced payloads and a local
//! fake of the platform's HTTP API.

mod fake;
mod telegram;
mod whatsapp;
mod messenger;
mod line;
mod wechat;
mod media_out;
