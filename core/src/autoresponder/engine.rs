//! The auto-responder's state machine: given a flow, a conversation's [`FlowState`] and one
//! [`Input`], [`step`] returns the next state and the [`Action`]s to carry out.
//!
//! Deterministic and pure: no clock (callers pass `now`), no IO, no randomness. The server
//! stores the state per conversation, runs `step` for each inbound message (and for each
//! decision hook result), sends the replies through the outbox and applies the routing.
//!
//! Termination: one call follows at most `steps + 1` transitions (validation already refuses
//! loops that never wait for the customer; the budget is the backstop for a flow that changed
//! under a stored state), so the actions returned per call are bounded by the flow's size.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::flow::{
    CollectField, CollectStep, CompiledFlow, FaqStep, FieldScope, MenuOption, MenuStep, RouteSpec, Step, StepId,
    TeamRef, Validator, WhenClosed,
};
use super::hook::{HookFailure, Instructions, Then};
use super::text;
use crate::domain::CloseReason;
use crate::ids::UserId;
use crate::routing::{QueueId, SkillRequirement};
use crate::time::Millis;

/// The longest answer the `text` validator accepts.
pub const MAX_TEXT_FIELD_CHARS: usize = 500;

/// A conversation's progress through its inbox's flow. Stored by the server as JSON; every key
/// has a default, so `{}` is a conversation the bot has not started.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct FlowState {
    pub status: FlowStatus,
    /// The step the flow is at (the one waiting, while `status` is `running`).
    pub current: Option<StepId>,
    /// What the current step is waiting for.
    pub waiting: Option<Waiting>,
    /// Customer messages the bot has taken (for `handoff.max_bot_turns`).
    pub turns: u32,
    /// Invalid answers at the current step (or current field).
    pub invalid: u32,
    /// Everything collected or set by the decision hook, by name.
    pub fields: BTreeMap<String, Value>,
    /// Whether the greeting was sent.
    pub greeted: bool,
    /// Decision hook calls made; the last one is the `call_id` being waited for.
    pub hook_calls: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FlowStatus {
    /// The bot has not spoken yet.
    #[default]
    NotStarted,
    /// The bot is handling the conversation.
    Running,
    /// Given to a human; the bot takes no further input.
    HandedOff,
    /// Closed by the bot.
    Closed,
}

impl FlowStatus {
    /// Whether the bot is done with the conversation (the server stops calling [`step`]).
    pub fn is_finished(self) -> bool {
        matches!(self, FlowStatus::HandedOff | FlowStatus::Closed)
    }
}

/// What the current step waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Waiting {
    /// A menu choice.
    MenuAnswer,
    /// The answer for the `index`-th field of a collect step.
    Field { index: usize },
    /// A question for the FAQ.
    FaqQuestion,
    /// The answer to "did that help?".
    FaqConfirm,
    /// The decision hook's result for this call.
    DecisionHook { call_id: u32 },
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Input {
    /// A conversation opened without a message yet (e.g. the web widget was opened). Starts the
    /// flow; ignored once it has started.
    ConversationStarted,
    /// A customer message (the text; empty for an attachment without caption). The first one
    /// also starts the flow, and an FAQ reached before any waiting step tries to answer it.
    CustomerMessage { text: String },
    /// The outcome of the [`Action::CallDecisionHook`] with this `call_id`. Results for any other
    /// call (a late answer after a timeout was reported) are ignored.
    DecisionHookResult { call_id: u32, result: Result<Instructions, HookFailure> },
}

/// Something for the server to do, in order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Action {
    /// Send this text to the customer as the bot.
    Reply { text: String },
    /// Save an attribute on the contact or the conversation.
    SetField { scope: FieldScope, name: String, value: Value },
    /// Routing for the handoff. Merge into what earlier `Route`s set: `team`, `queue`, `agent`,
    /// `priority` replace; `skills`, `tags` add.
    Route {
        team: Option<TeamRef>,
        queue: Option<QueueId>,
        agent: Option<UserId>,
        skills: Vec<SkillRequirement>,
        priority: Option<u8>,
        tags: Vec<String>,
    },
    /// Queue the conversation for a human with the routing gathered so far. The bot is done.
    Handoff { reason: HandoffReason },
    /// Close the conversation. The bot is done.
    Close { reason: BotCloseReason },
    /// POST the conversation's context to the decision hook, waiting at most `timeout_ms`, and
    /// feed back [`Input::DecisionHookResult`] with this `call_id`.
    CallDecisionHook { call_id: u32, step: StepId, timeout_ms: u32 },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HandoffReason {
    /// The customer asked for a human (a handoff keyword).
    Keyword,
    /// `handoff.max_bot_turns` reached.
    MaxBotTurns,
    /// Too many invalid answers to a menu, field or "did that help?".
    InvalidAnswers,
    /// A `handoff` step.
    Step,
    /// A menu option without `next`.
    MenuChoice,
    /// Outside business hours with `when_closed: "queue"`.
    OutOfHours,
    /// The FAQ had no answer.
    FaqNoMatch,
    /// The FAQ's answer did not help.
    FaqUnhelpful,
    /// The decision hook said so.
    DecisionHook,
    /// The stored state does not fit the flow (edited since) or the flow ran away: a human
    /// takes over rather than the bot guessing.
    FlowError,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BotCloseReason {
    /// A `close` step.
    Step,
    /// The FAQ answer helped.
    FaqResolved,
    /// Outside business hours with `when_closed: "callback"`.
    Callback,
    /// The decision hook said so.
    DecisionHook,
}

impl BotCloseReason {
    /// The conversation's close reason to store.
    pub fn close_reason(self) -> CloseReason {
        match self {
            BotCloseReason::Step | BotCloseReason::FaqResolved | BotCloseReason::DecisionHook => CloseReason::Resolved,
            BotCloseReason::Callback => CloseReason::Other,
        }
    }
}

/// Runs one input through the flow. Never panics; a state that does not fit the flow hands off
/// with [`HandoffReason::FlowError`]. Once the state is finished every input returns no actions.
pub fn step(flow: &CompiledFlow, state: FlowState, input: Input, now: Millis) -> (FlowState, Vec<Action>) {
    let mut run = Run { flow, state, actions: Vec::new(), now };
    run.apply(input);
    (run.state, run.actions)
}

/// Where a step leads.
enum Next {
    Goto(usize),
    Wait(Waiting),
    Done,
}

struct Run<'a> {
    flow: &'a CompiledFlow,
    state: FlowState,
    actions: Vec<Action>,
    now: Millis,
}

impl Run<'_> {
    fn apply(&mut self, input: Input) {
        if self.state.status.is_finished() {
            return;
        }
        match input {
            Input::ConversationStarted => {
                if self.state.status == FlowStatus::NotStarted {
                    self.start(None);
                }
            }
            Input::CustomerMessage { text } => self.customer_message(&text),
            Input::DecisionHookResult { call_id, result } => self.hook_result(call_id, result),
        }
    }

    fn start(&mut self, first_message: Option<&str>) {
        self.state.status = FlowStatus::Running;
        let next = match self.flow.flow().start_id() {
            Some(id) => self.goto(&id.clone()),
            None => self.handoff(HandoffReason::FlowError),
        };
        self.follow(next, first_message);
    }

    fn customer_message(&mut self, raw: &str) {
        let normalized = text::normalize(raw);
        let rules = &self.flow.flow().handoff;
        if text::contains_any(&normalized, &rules.keywords) {
            self.reply_opt(rules.reply.as_deref());
            self.handoff(HandoffReason::Keyword);
            return;
        }
        if rules.max_bot_turns.is_some_and(|max| self.state.turns >= max) {
            self.reply_opt(rules.reply.as_deref());
            self.handoff(HandoffReason::MaxBotTurns);
            return;
        }
        self.state.turns = self.state.turns.saturating_add(1);
        if self.state.status == FlowStatus::NotStarted {
            self.start(Some(raw));
            return;
        }
        let next = match (self.current_position(), self.state.waiting) {
            (Some(at), Some(waiting)) => self.answer(at, waiting, raw, &normalized),
            _ => self.handoff(HandoffReason::FlowError),
        };
        self.follow(next, None);
    }

    fn hook_result(&mut self, call_id: u32, result: Result<Instructions, HookFailure>) {
        if self.state.waiting != Some(Waiting::DecisionHook { call_id }) {
            return; // stale: not the call being waited for
        }
        let Some(at) = self.current_position() else {
            let next = self.handoff(HandoffReason::FlowError);
            return self.follow(next, None);
        };
        let Step::DecisionHook(hook) = self.flow.step_at(at) else {
            let next = self.handoff(HandoffReason::FlowError);
            return self.follow(next, None);
        };
        let checked = result.and_then(|instructions| {
            instructions.validate().map_err(|errors| HookFailure::InvalidResponse {
                message: errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "),
            })?;
            match &instructions.next {
                Some(next) if self.flow.position(next).is_none() => {
                    Err(HookFailure::InvalidResponse { message: format!("next: no step has id `{next}`") })
                }
                _ => Ok(instructions),
            }
        });
        let next = match checked {
            Ok(instructions) => {
                self.reply_opt(instructions.reply.as_deref());
                for (scope, map) in [
                    (FieldScope::Conversation, &instructions.attributes),
                    (FieldScope::Contact, &instructions.contact_attributes),
                ] {
                    for (name, value) in map {
                        self.set_field(scope, name, value.clone());
                    }
                }
                if let Some(route) = &instructions.route {
                    self.route(route);
                }
                match instructions.effective_then() {
                    Then::Handoff => self.handoff(HandoffReason::DecisionHook),
                    Then::Close => self.close(BotCloseReason::DecisionHook),
                    Then::Continue => self.goto(instructions.next.as_ref().unwrap_or(&hook.next)),
                }
            }
            Err(_) => self.goto(&hook.fallback),
        };
        self.follow(next, None);
    }

    /// Follows transitions until a step waits or the bot is done. `pending` is the message that
    /// started the flow, offered to an FAQ reached before anything waited.
    fn follow(&mut self, mut next: Next, mut pending: Option<&str>) {
        let mut budget = self.flow.flow().steps.len() + 1;
        loop {
            match next {
                Next::Goto(at) => {
                    if budget == 0 {
                        next = self.handoff(HandoffReason::FlowError);
                        continue;
                    }
                    budget -= 1;
                    next = self.enter(at, pending.take());
                }
                Next::Wait(waiting) => {
                    self.state.waiting = Some(waiting);
                    return;
                }
                Next::Done => {
                    self.state.waiting = None;
                    return;
                }
            }
        }
    }

    fn enter(&mut self, at: usize, pending: Option<&str>) -> Next {
        let flow = self.flow;
        let step = flow.step_at(at);
        self.state.current = Some(step.id().clone());
        self.state.invalid = 0;
        self.state.waiting = None;
        match step {
            Step::Greeting(s) => {
                if !self.state.greeted {
                    self.state.greeted = true;
                    self.reply(&s.text);
                }
                self.goto(&s.next)
            }
            Step::Message(s) => {
                self.reply(&s.text);
                self.goto(&s.next)
            }
            Step::BusinessHours(s) => {
                let Some(calendar) = flow.flow().calendars.get(&s.calendar) else {
                    return self.handoff(HandoffReason::FlowError);
                };
                if calendar.is_open(self.now) {
                    return self.goto(&s.next);
                }
                let mut values = self.state.fields.clone();
                let opening = calendar.next_opening(self.now).and_then(|at| calendar.format_local(at));
                values.insert("next_opening".into(), Value::from(opening.unwrap_or_default()));
                self.actions.push(Action::Reply { text: text::render(&s.out_of_office, &values) });
                match s.when_closed {
                    WhenClosed::Queue => self.handoff(HandoffReason::OutOfHours),
                    WhenClosed::Callback => {
                        self.reply_opt(s.callback_text.as_deref());
                        self.set_field(FieldScope::Conversation, "callback_requested", Value::Bool(true));
                        self.close(BotCloseReason::Callback)
                    }
                    WhenClosed::Continue => match &s.closed_next {
                        Some(next) => self.goto(next),
                        None => self.handoff(HandoffReason::FlowError),
                    },
                }
            }
            Step::Faq(s) => {
                if let Some(j) = pending.and_then(|q| self.faq_match(at, s, q)) {
                    return self.faq_answer(s, j);
                }
                self.reply_opt(s.prompt.as_deref());
                Next::Wait(Waiting::FaqQuestion)
            }
            Step::Menu(s) => {
                self.reply(&menu_prompt(s));
                Next::Wait(Waiting::MenuAnswer)
            }
            Step::Collect(s) => self.ask_field(s, 0),
            Step::Handoff(s) => {
                self.reply_opt(s.text.as_deref());
                if let Some(route) = &s.route {
                    self.route(route);
                }
                self.handoff(HandoffReason::Step)
            }
            Step::Close(s) => {
                self.reply_opt(s.text.as_deref());
                self.close(BotCloseReason::Step)
            }
            Step::DecisionHook(s) => {
                let call_id = self.state.hook_calls.wrapping_add(1);
                self.state.hook_calls = call_id;
                self.actions.push(Action::CallDecisionHook { call_id, step: s.id.clone(), timeout_ms: s.timeout_ms });
                self.reply_opt(s.waiting_text.as_deref());
                Next::Wait(Waiting::DecisionHook { call_id })
            }
        }
    }

    /// A customer message for the step at `at`, which waits for `waiting`.
    fn answer(&mut self, at: usize, waiting: Waiting, raw: &str, normalized: &str) -> Next {
        match (self.flow.step_at(at), waiting) {
            (Step::Menu(s), Waiting::MenuAnswer) => {
                let answer = text::strip_trailing_punctuation(normalized);
                match s.options.iter().find(|o| option_matches(o, answer)) {
                    Some(option) => {
                        self.reply_opt(option.reply.as_deref());
                        if let Some(route) = &option.route {
                            self.route(route);
                        }
                        match &option.next {
                            Some(next) => self.goto(next),
                            None => self.handoff(HandoffReason::MenuChoice),
                        }
                    }
                    None => {
                        let again = format!("{}\n\n{}", s.invalid_reply, menu_prompt(s));
                        self.invalid_answer(s.max_invalid, again, waiting)
                    }
                }
            }
            (Step::Collect(s), Waiting::Field { index }) => {
                let Some(field) = s.fields.get(index) else {
                    return self.handoff(HandoffReason::FlowError);
                };
                match self.check_field(at, index, field, raw, normalized) {
                    Some(value) => {
                        self.set_field(field.scope, &field.name, value);
                        self.state.invalid = 0;
                        self.ask_field(s, index + 1)
                    }
                    None => {
                        let again =
                            field.invalid_reply.clone().unwrap_or_else(|| default_invalid_field(&field.validate));
                        self.invalid_answer(s.max_invalid, again, waiting)
                    }
                }
            }
            (Step::Faq(s), Waiting::FaqQuestion) => match self.faq_match(at, s, raw) {
                Some(j) => self.faq_answer(s, j),
                None => match &s.no_match_next {
                    Some(next) => self.goto(next),
                    None => self.handoff(HandoffReason::FaqNoMatch),
                },
            },
            (Step::Faq(s), Waiting::FaqConfirm) => {
                if text::is_one_of(normalized, &s.yes_words) {
                    self.reply_opt(s.resolved_text.as_deref());
                    match &s.resolved_next {
                        Some(next) => self.goto(next),
                        None => self.close(BotCloseReason::FaqResolved),
                    }
                } else if text::is_one_of(normalized, &s.no_words) {
                    match &s.unresolved_next {
                        Some(next) => self.goto(next),
                        None => self.handoff(HandoffReason::FaqUnhelpful),
                    }
                } else if let Some(j) = self.faq_match(at, s, raw) {
                    // Another question instead of yes / no: answer it.
                    self.state.invalid = 0;
                    self.faq_answer(s, j)
                } else {
                    self.invalid_answer(s.max_invalid, s.confirm.clone(), waiting)
                }
            }
            // Messages while the hook is pending wait with it.
            (Step::DecisionHook(_), Waiting::DecisionHook { .. }) => Next::Wait(waiting),
            _ => self.handoff(HandoffReason::FlowError),
        }
    }

    fn invalid_answer(&mut self, max_invalid: u32, again: String, waiting: Waiting) -> Next {
        self.state.invalid = self.state.invalid.saturating_add(1);
        if self.state.invalid >= max_invalid {
            return self.handoff(HandoffReason::InvalidAnswers);
        }
        self.actions.push(Action::Reply { text: again });
        Next::Wait(waiting)
    }

    /// Asks the first field from `from` on that is not known yet, or moves on.
    fn ask_field(&mut self, s: &CollectStep, from: usize) -> Next {
        match s.fields.iter().enumerate().skip(from).find(|(_, f)| !self.state.fields.contains_key(&f.name)) {
            Some((index, field)) => {
                self.reply(&field.prompt);
                Next::Wait(Waiting::Field { index })
            }
            None => self.goto(&s.next),
        }
    }

    /// The value to save, or `None` if the answer fails the field's validator.
    fn check_field(&self, at: usize, index: usize, field: &CollectField, raw: &str, normalized: &str) -> Option<Value> {
        let trimmed: String = raw.trim().chars().take(text::MAX_MATCHED_CHARS).collect();
        let value = match &field.validate {
            Validator::Text => {
                (!trimmed.is_empty() && trimmed.chars().count() <= MAX_TEXT_FIELD_CHARS).then_some(trimmed)?
            }
            Validator::Email => text::valid_email(normalized).then(|| normalized.to_string())?,
            Validator::Phone => text::normalize_phone(normalized)?,
            Validator::Number => text::valid_number(normalized).then(|| normalized.to_string())?,
            Validator::Regex(_) => self.flow.field_regex(at, index)?.is_match(&trimmed).then_some(trimmed)?,
        };
        Some(Value::String(value))
    }

    fn faq_match(&self, at: usize, s: &FaqStep, raw: &str) -> Option<usize> {
        let normalized = text::normalize(raw);
        let capped: String = raw.chars().take(text::MAX_MATCHED_CHARS).collect();
        s.entries.iter().enumerate().position(|(j, entry)| {
            text::contains_any(&normalized, &entry.keywords)
                || self.flow.faq_regex(at, j).is_some_and(|regex| regex.is_match(&capped))
        })
    }

    fn faq_answer(&mut self, s: &FaqStep, entry: usize) -> Next {
        match s.entries.get(entry) {
            Some(e) => {
                self.reply(&e.answer);
                self.reply(&s.confirm);
                Next::Wait(Waiting::FaqConfirm)
            }
            None => self.handoff(HandoffReason::FlowError),
        }
    }

    fn current_position(&self) -> Option<usize> {
        self.state.current.as_ref().and_then(|id| self.flow.position(id))
    }

    fn goto(&mut self, id: &StepId) -> Next {
        match self.flow.position(id) {
            Some(at) => Next::Goto(at),
            None => self.handoff(HandoffReason::FlowError),
        }
    }

    /// Sends `template` with `{field}` placeholders filled from the collected fields.
    fn reply(&mut self, template: &str) {
        let text = text::render(template, &self.state.fields);
        self.actions.push(Action::Reply { text });
    }

    fn reply_opt(&mut self, template: Option<&str>) {
        if let Some(t) = template {
            self.reply(t);
        }
    }

    fn set_field(&mut self, scope: FieldScope, name: &str, value: Value) {
        self.state.fields.insert(name.to_string(), value.clone());
        self.actions.push(Action::SetField { scope, name: name.to_string(), value });
    }

    fn route(&mut self, route: &RouteSpec) {
        self.actions.push(Action::Route {
            team: route.team.clone(),
            queue: route.queue,
            agent: route.agent,
            skills: route.skills.iter().map(|s| s.requirement()).collect(),
            priority: route.priority,
            tags: route.tags.clone(),
        });
    }

    fn handoff(&mut self, reason: HandoffReason) -> Next {
        self.state.status = FlowStatus::HandedOff;
        self.actions.push(Action::Handoff { reason });
        Next::Done
    }

    fn close(&mut self, reason: BotCloseReason) -> Next {
        self.state.status = FlowStatus::Closed;
        self.actions.push(Action::Close { reason });
        Next::Done
    }
}

/// The menu's prompt, with one `key label` line per option when `show_options` is set.
fn menu_prompt(s: &MenuStep) -> String {
    if !s.show_options {
        return s.prompt.clone();
    }
    let mut prompt = s.prompt.clone();
    for option in &s.options {
        prompt.push('\n');
        prompt.push_str(&option.key);
        prompt.push(' ');
        prompt.push_str(&option.label);
    }
    prompt
}

fn option_matches(option: &MenuOption, answer: &str) -> bool {
    std::iter::once(&option.key)
        .chain(std::iter::once(&option.label))
        .chain(option.aliases.iter())
        .any(|candidate| text::strip_trailing_punctuation(&text::normalize(candidate)) == answer)
}

fn default_invalid_field(validator: &Validator) -> String {
    match validator {
        Validator::Text => "Please type a short answer.",
        Validator::Email => "That doesn't look like an email address. Please try again.",
        Validator::Phone => "That doesn't look like a phone number. Please try again.",
        Validator::Number => "Please answer with a number.",
        Validator::Regex(_) => "That doesn't look right. Please try again.",
    }
    .to_string()
}
