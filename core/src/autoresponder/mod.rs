//! The auto-responder: per-inbox bot flows (greeting, business hours, FAQ, menus, field
//! collection, handoff, decision hook) as data, and the pure engine that runs them.
//!
//! - [`flow`]: the JSON model an admin saves ([`Flow`]), parsing with path-carrying errors and
//!   validation ([`Flow::parse`], [`Flow::validate`]), and [`CompiledFlow`] for the engine.
//! - [`hours`]: business hours in an IANA time zone ([`BusinessHours::is_open`],
//!   [`BusinessHours::next_opening`]).
//! - [`engine`]: [`step`], the state machine from ([`FlowState`], [`Input`]) to
//!   ([`FlowState`], [`Action`]s).
//! - [`hook`]: the decision hook's request and answer ([`Instructions`]).
//! - [`records`]: what the server stores for it (flows, bot sessions, turns, the hook call log).
//!
//! Like all of core this does no IO and reads no clock: the server stores flows and states,
//! calls [`step`] with `now`, sends replies, applies routing and makes the hook's HTTP call.
//! The JSON reference with a worked example is `docs/auto-responder.md`.

pub mod engine;
pub mod flow;
pub mod hook;
pub mod hours;
pub mod records;
pub mod text;

#[cfg(test)]
mod tests;

pub use engine::{step, Action, BotCloseReason, FlowState, FlowStatus, HandoffReason, Input, Waiting};
pub use flow::{CompiledFlow, FieldScope, Flow, FlowError, RouteSpec, SkillSpec, Step, StepId, TeamRef};
pub use hook::{DecisionHookRequest, HookContact, HookFailure, HookInbox, Instructions, Then};
pub use hours::BusinessHours;
pub use records::{BotEnd, BotRouting, BotSession, BotTurn, BotTurnOutcome, HookCall, InboxFlow, NewHookCall};
