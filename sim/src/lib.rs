//! Queueing mathematics and a router simulator for Switchboard.
//!
//! Switchboard's router is event-driven: a new conversation takes a free agent slot at once, and
//! the moment a slot frees (a conversation resolves, an agent comes online) the oldest queued
//! conversation takes it. With Poisson arrivals and exponential handle times that rule turns a
//! queue into the textbook M/M/c system (Erlang C), or M/M/c+M (Erlang A) when customers give
//! up. This crate holds both sides of that claim:
//!
//! * [`erlang`] — Erlang B, C and A: probability of waiting, average speed of answer (ASA),
//!   service level P(answered within t), abandonment, plus Erlang C staffing. Numerically stable
//!   for pools of thousands of slots.
//! * [`des`] — a seeded discrete-event simulator of that dispatch rule with warm-up, patience
//!   and per-position waits, deterministic for a seed.
//! * [`eta`] — the head-of-line wait estimator the server can show a waiting customer:
//!   position k (0-based) with c slots busy and mean handle h waits about (k + 1)·h / c.
//!
//! # The model
//! Agents × slots-per-agent become c = agents·m identical servers: an agent allowed m
//! concurrent chats counts as m servers. This ignores that agents slow down when multitasking
//! (handle time per chat grows with the number held); measured per-chat handle times absorb
//! part of that, and the simulator makes the same assumption so that any disagreement it shows
//! is about dispatch, not about the assumption.
//!
//! # What it proves
//! The simulator implements only the dispatch rule — no formula — and its long-run ASA,
//! service level and abandonment agree with Erlang C / Erlang A within sampling error
//! (`tests/it` asserts 5 %; `erlang-compare` prints the table, reproduced in
//! `docs/routing-eta.md`). So for a router that dispatches this way, the Erlang formulas are a
//! sound basis for staffing advice and for queue ETAs; a dispatcher that leaves slots idle while
//! people wait (polling, batching) would show up as a systematic gap. It proves nothing about
//! non-exponential handle times, time-varying arrivals or skills-based routing.
//!
//! No IO and no async: the crate depends on `rand`, `serde` and `thiserror` only.
#![forbid(unsafe_code)]

pub mod des;
pub mod erlang;
pub mod eta;

pub use des::{simulate, SimConfig, SimReport};
pub use erlang::{erlang_a, erlang_b, erlang_c, servers, servers_for_service_level, ErlangA, ErlangC, ModelError};
pub use eta::{estimated_wait_secs, estimated_wait_with_patience_secs};
