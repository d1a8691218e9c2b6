//! End-to-end tests of the auto-responder through [`step`]: every step type, the flow-wide
//! handoff rules, the decision hook, validation paths, and a property test that arbitrary input
//! never panics and never runs away.

use proptest::prelude::*;
use serde_json::{json, Value};

use super::*;
use crate::autoresponder::flow::FieldScope;
use crate::routing::{SkillId, SkillRequirement};

/// Monday 31 March 2025, 10:00 in Berlin (CEST, UTC+2).
const MONDAY_10_BERLIN: i64 = 1_743_408_000_000;
/// Sunday 30 March 2025, 20:00 in Berlin (CEST): closed.
const SUNDAY_20_BERLIN: i64 = 1_743_357_600_000;

/// The worked example in docs/auto-responder.md, so the docs cannot drift from the engine.
fn example_json() -> String {
    let doc = include_str!("../../../docs/auto-responder.md");
    let after = doc.split("<!-- example-flow -->").nth(1).expect("docs mark the example flow");
    let body = after.split("```json").nth(1).expect("a json block follows the marker");
    body.split("```").next().expect("the block ends").to_string()
}

fn example() -> CompiledFlow {
    CompiledFlow::parse(&example_json()).expect("the documented example is valid")
}

fn compile(value: Value) -> CompiledFlow {
    Flow::from_value(value).and_then(Flow::compile).expect("test flow is valid")
}

fn say(flow: &CompiledFlow, state: FlowState, text: &str, now: i64) -> (FlowState, Vec<Action>) {
    step(flow, state, Input::CustomerMessage { text: text.into() }, now)
}

fn replies(actions: &[Action]) -> Vec<String> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Reply { text } => Some(text.clone()),
            _ => None,
        })
        .collect()
}

fn handoff_reason(actions: &[Action]) -> Option<HandoffReason> {
    actions.iter().find_map(|a| match a {
        Action::Handoff { reason } => Some(*reason),
        _ => None,
    })
}

fn close_reason(actions: &[Action]) -> Option<BotCloseReason> {
    actions.iter().find_map(|a| match a {
        Action::Close { reason } => Some(*reason),
        _ => None,
    })
}

fn hook_call(actions: &[Action]) -> Option<u32> {
    actions.iter().find_map(|a| match a {
        Action::CallDecisionHook { call_id, .. } => Some(*call_id),
        _ => None,
    })
}

fn error_paths(result: Result<Flow, Vec<FlowError>>) -> Vec<String> {
    let mut paths: Vec<String> = result.expect_err("must be refused").into_iter().map(|e| e.path).collect();
    paths.sort();
    paths
}

// ---- the worked example, end to end ----

/// Runs the example in hours up to the decision hook call.
fn example_until_hook(flow: &CompiledFlow) -> (FlowState, u32) {
    let (state, actions) = say(flow, FlowState::default(), "hi", MONDAY_10_BERLIN);
    assert_eq!(replies(&actions), ["Hi! I'm the Acme assistant.", "How can we help?\n1 Sales\n2 Support\n3 Questions"]);
    assert_eq!(state.waiting, Some(Waiting::MenuAnswer));

    let (state, actions) = say(flow, state, "2", MONDAY_10_BERLIN);
    assert_eq!(
        actions,
        [
            Action::Route {
                team: Some(TeamRef::Name("Support".into())),
                queue: None,
                agent: None,
                skills: vec![SkillRequirement { skill: SkillId::new("tech"), min_proficiency: 1 }],
                priority: Some(3),
                tags: vec![],
            },
            Action::Reply { text: "What's your name?".into() },
        ]
    );

    let (state, actions) = say(flow, state, "  Ada ", MONDAY_10_BERLIN);
    assert_eq!(actions[0], Action::SetField { scope: FieldScope::Contact, name: "name".into(), value: json!("Ada") });
    assert_eq!(replies(&actions), ["Your order number? (two letters, six digits)"]);

    let (state, actions) = say(flow, state, "12345", MONDAY_10_BERLIN);
    assert_eq!(replies(&actions), ["Order numbers look like AB123456. Please try again."]);
    assert_eq!(state.invalid, 1);

    let (state, actions) = say(flow, state, "AB123456", MONDAY_10_BERLIN);
    assert_eq!(
        actions,
        [
            Action::SetField { scope: FieldScope::Conversation, name: "order_number".into(), value: json!("AB123456") },
            Action::CallDecisionHook { call_id: 1, step: StepId::new("crm"), timeout_ms: 2000 },
            Action::Reply { text: "One moment…".into() },
        ]
    );
    assert_eq!(state.waiting, Some(Waiting::DecisionHook { call_id: 1 }));
    (state, 1)
}

#[test]
fn example_in_hours_hook_routes_and_hands_off() {
    let flow = example();
    let (state, call_id) = example_until_hook(&flow);
    let instructions = Instructions::parse(r#"{"route":{"team":"VIP","priority":5}}"#).expect("valid answer");
    let (state, actions) =
        step(&flow, state, Input::DecisionHookResult { call_id, result: Ok(instructions) }, MONDAY_10_BERLIN);
    assert!(matches!(&actions[0], Action::Route { team: Some(TeamRef::Name(t)), priority: Some(5), .. } if t == "VIP"));
    assert_eq!(handoff_reason(&actions), Some(HandoffReason::DecisionHook));
    assert_eq!(actions.len(), 2);
    assert_eq!(state.status, FlowStatus::HandedOff);
    // Finished: nothing more from the bot.
    let (_, actions) = say(&flow, state, "hello?", MONDAY_10_BERLIN);
    assert!(actions.is_empty());
}

#[test]
fn example_hook_failure_goes_to_the_fallback_step() {
    let flow = example();
    for failure in [
        HookFailure::Timeout,
        HookFailure::Status { status: 503 },
        HookFailure::Transport { message: "refused".into() },
        HookFailure::InvalidResponse { message: "x".into() },
        HookFailure::NotConfigured,
    ] {
        let (state, call_id) = example_until_hook(&flow);
        let (state, actions) =
            step(&flow, state, Input::DecisionHookResult { call_id, result: Err(failure) }, MONDAY_10_BERLIN);
        assert_eq!(
            replies(&actions),
            ["I couldn't look up your order, but a person can.", "Thanks Ada, an agent will be with you shortly."]
        );
        assert_eq!(handoff_reason(&actions), Some(HandoffReason::Step));
        assert_eq!(state.current, Some(StepId::new("to_agent")));
    }
}

#[test]
fn example_hook_that_only_replies_continues_at_next() {
    let flow = example();
    let (state, call_id) = example_until_hook(&flow);
    let instructions = Instructions::parse(r#"{"reply": "Your parcel left today."}"#).expect("valid");
    let (_, actions) =
        step(&flow, state, Input::DecisionHookResult { call_id, result: Ok(instructions) }, MONDAY_10_BERLIN);
    assert_eq!(replies(&actions), ["Your parcel left today.", "Thanks Ada, an agent will be with you shortly."]);
    assert_eq!(handoff_reason(&actions), Some(HandoffReason::Step));
}

#[test]
fn hook_results_for_other_calls_and_messages_while_waiting_are_ignored() {
    let flow = example();
    let (state, call_id) = example_until_hook(&flow);
    let (state, actions) = say(&flow, state, "are you there?", MONDAY_10_BERLIN);
    assert!(actions.is_empty());
    assert_eq!(state.waiting, Some(Waiting::DecisionHook { call_id }));
    let stale = Input::DecisionHookResult { call_id: call_id + 7, result: Err(HookFailure::Timeout) };
    let (state, actions) = step(&flow, state, stale, MONDAY_10_BERLIN);
    assert!(actions.is_empty());
    assert_eq!(state.waiting, Some(Waiting::DecisionHook { call_id }));
    // Handoff keywords still work while waiting.
    let (state, actions) = say(&flow, state, "转人工", MONDAY_10_BERLIN);
    assert_eq!(handoff_reason(&actions), Some(HandoffReason::Keyword));
    // And the late real answer no longer does anything.
    let (_, actions) =
        step(&flow, state, Input::DecisionHookResult { call_id, result: Err(HookFailure::Timeout) }, MONDAY_10_BERLIN);
    assert!(actions.is_empty());
}

#[test]
fn an_invalid_hook_answer_is_a_failure() {
    let flow = example();
    let (state, call_id) = example_until_hook(&flow);
    // Built by hand (not through `Instructions::parse`): the engine checks again, including
    // that `next` names a step of this flow.
    let bad = Instructions { next: Some(StepId::new("nowhere")), ..Default::default() };
    let (_, actions) = step(&flow, state, Input::DecisionHookResult { call_id, result: Ok(bad) }, MONDAY_10_BERLIN);
    assert_eq!(replies(&actions)[0], "I couldn't look up your order, but a person can.", "fallback");
    let (state, call_id) = example_until_hook(&flow);
    let bad = Instructions { route: Some(RouteSpec { priority: Some(0), ..Default::default() }), ..Default::default() };
    let (_, actions) = step(&flow, state, Input::DecisionHookResult { call_id, result: Ok(bad) }, MONDAY_10_BERLIN);
    assert_eq!(handoff_reason(&actions), Some(HandoffReason::Step), "fallback, not the hook's route");
    assert!(!actions.iter().any(|a| matches!(a, Action::Route { .. })));
}

#[test]
fn hook_instructions_apply_in_order_and_can_continue_elsewhere() {
    let flow = compile(json!({
        "steps": [
            {"type": "decision_hook", "id": "crm", "next": "ask", "fallback": "bye"},
            {"type": "collect", "id": "ask", "next": "done", "fields": [
                {"name": "tier", "prompt": "Tier?"}, {"name": "email", "prompt": "Email?", "validate": "email"}]},
            {"type": "message", "id": "menu_like", "text": "Elsewhere, {tier}.", "next": "done"},
            {"type": "handoff", "id": "done"},
            {"type": "close", "id": "bye"}
        ]
    }));
    let (state, actions) = step(&flow, FlowState::default(), Input::ConversationStarted, 0);
    assert_eq!(hook_call(&actions), Some(1));
    let instructions = Instructions::parse(
        r#"{"reply":"Hi gold member","attributes":{"tier":"gold"},"contact_attributes":{"crm_id":7},"then":"continue"}"#,
    )
    .expect("valid");
    let (state, actions) =
        step(&flow, state.clone(), Input::DecisionHookResult { call_id: 1, result: Ok(instructions) }, 0);
    assert_eq!(
        actions,
        [
            Action::Reply { text: "Hi gold member".into() },
            Action::SetField { scope: FieldScope::Conversation, name: "tier".into(), value: json!("gold") },
            Action::SetField { scope: FieldScope::Contact, name: "crm_id".into(), value: json!(7) },
            // `tier` is known now, so collect skips it and asks for the email.
            Action::Reply { text: "Email?".into() },
        ]
    );
    let (_, actions) = say(&flow, state, "ADA@Example.com", 0);
    assert_eq!(
        actions[0],
        Action::SetField { scope: FieldScope::Conversation, name: "email".into(), value: json!("ada@example.com") }
    );
    assert_eq!(handoff_reason(&actions), Some(HandoffReason::Step));

    // `next` sends the flow elsewhere; placeholders see the hook's attributes.
    let (state, _) = step(&flow, FlowState::default(), Input::ConversationStarted, 0);
    let instructions = Instructions::parse(r#"{"attributes":{"tier":"gold"},"next":"menu_like"}"#).expect("valid");
    let (_, actions) = step(&flow, state, Input::DecisionHookResult { call_id: 1, result: Ok(instructions) }, 0);
    assert_eq!(replies(&actions), ["Elsewhere, gold."]);
    // `then: close`.
    let (state, _) = step(&flow, FlowState::default(), Input::ConversationStarted, 0);
    let instructions = Instructions::parse(r#"{"then":"close"}"#).expect("valid");
    let (state, actions) = step(&flow, state, Input::DecisionHookResult { call_id: 1, result: Ok(instructions) }, 0);
    assert_eq!(close_reason(&actions), Some(BotCloseReason::DecisionHook));
    assert_eq!(state.status, FlowStatus::Closed);
}

#[test]
fn example_out_of_hours_collects_a_number_and_closes() {
    let flow = example();
    let (state, actions) = say(&flow, FlowState::default(), "hello", SUNDAY_20_BERLIN);
    assert_eq!(
        replies(&actions),
        [
            "Hi! I'm the Acme assistant.",
            "We're closed right now and open again 2025-03-31 09:00 (Berlin time).",
            "Leave your number and we'll call you back.",
        ]
    );
    let (state, actions) = say(&flow, state, "not a number", SUNDAY_20_BERLIN);
    assert_eq!(replies(&actions), ["That doesn't look like a phone number. Please try again."]);
    let (state, actions) = say(&flow, state, "+49 30 1234-5678", SUNDAY_20_BERLIN);
    assert_eq!(
        actions[0],
        Action::SetField { scope: FieldScope::Contact, name: "phone".into(), value: json!("+493012345678") }
    );
    assert_eq!(replies(&actions), ["Thanks! We'll call you at +493012345678 once we're open."]);
    assert_eq!(close_reason(&actions), Some(BotCloseReason::Step));
    assert_eq!(state.status, FlowStatus::Closed);
}

// ---- step types one by one ----

#[test]
fn greeting_is_sent_once_even_when_the_flow_comes_back() {
    let flow = compile(json!({"steps": [
        {"type": "greeting", "id": "hi", "text": "Welcome!", "next": "m"},
        {"type": "menu", "id": "m", "prompt": "Pick", "show_options": false, "options": [
            {"key": "1", "label": "Again", "next": "hi"}, {"key": "2", "label": "Done", "next": "end"}]},
        {"type": "close", "id": "end", "text": "Bye"}
    ]}));
    let (state, actions) = step(&flow, FlowState::default(), Input::ConversationStarted, 0);
    assert_eq!(replies(&actions), ["Welcome!", "Pick"]);
    assert!(state.greeted);
    // A second ConversationStarted does nothing.
    let (state, actions) = step(&flow, state, Input::ConversationStarted, 0);
    assert!(actions.is_empty());
    let (state, actions) = say(&flow, state, "1", 0);
    assert_eq!(replies(&actions), ["Pick"], "the greeting is skipped the second time");
    let (state, actions) = say(&flow, state, "done", 0);
    assert_eq!(replies(&actions), ["Bye"]);
    assert_eq!(close_reason(&actions), Some(BotCloseReason::Step));
    assert_eq!(BotCloseReason::Step.close_reason(), crate::domain::CloseReason::Resolved);
    assert!(state.status.is_finished());
}

fn hours_flow(when_closed: &str) -> CompiledFlow {
    let mut hours = json!({"type": "business_hours", "id": "h", "calendar": "ny", "next": "open",
        "out_of_office": "Closed until {next_opening}.", "when_closed": when_closed,
        "callback_text": "We'll call you back."});
    if when_closed == "continue" {
        hours["closed_next"] = json!("later");
    } else if when_closed != "callback" {
        hours.as_object_mut().expect("object").remove("callback_text");
    }
    compile(json!({
        "calendars": {"ny": {"time_zone": "America/New_York",
            "weekly": [{"days": ["mon","tue","wed","thu","fri"], "from": "09:00", "to": "17:00"}],
            "holidays": [{"date": "2025-07-04", "name": "Independence Day"}]}},
        "steps": [hours,
            {"type": "handoff", "id": "open", "text": "Open!"},
            {"type": "close", "id": "later", "text": "Later then."}]
    }))
}

#[test]
fn business_hours_open_queue_callback_and_continue() {
    // Thursday 3 July 2025, 10:00 EDT = 14:00 UTC: open.
    let thursday = 1_751_551_200_000;
    // Friday 4 July 2025 10:00 EDT: a holiday.
    let holiday = thursday + 86_400_000;
    let (_, actions) = say(&hours_flow("queue"), FlowState::default(), "hi", thursday);
    assert_eq!(replies(&actions), ["Open!"]);

    let (state, actions) = say(&hours_flow("queue"), FlowState::default(), "hi", holiday);
    // Next opening: Monday 7 July 09:00 New York time.
    assert_eq!(replies(&actions), ["Closed until 2025-07-07 09:00."]);
    assert_eq!(handoff_reason(&actions), Some(HandoffReason::OutOfHours));
    assert_eq!(state.status, FlowStatus::HandedOff);

    let (state, actions) = say(&hours_flow("callback"), FlowState::default(), "hi", holiday);
    assert_eq!(replies(&actions), ["Closed until 2025-07-07 09:00.", "We'll call you back."]);
    assert!(actions.contains(&Action::SetField {
        scope: FieldScope::Conversation,
        name: "callback_requested".into(),
        value: json!(true)
    }));
    assert_eq!(close_reason(&actions), Some(BotCloseReason::Callback));
    assert_eq!(state.status, FlowStatus::Closed);

    let (_, actions) = say(&hours_flow("continue"), FlowState::default(), "hi", holiday);
    assert_eq!(replies(&actions), ["Closed until 2025-07-07 09:00.", "Later then."]);
}

fn faq_flow() -> CompiledFlow {
    compile(json!({"steps": [
        {"type": "faq", "id": "faq", "prompt": "Ask away.",
         "entries": [
            {"keywords": ["opening hours", "营业时间"], "answer": "9 to 5."},
            {"regex": "(?i)\\brefunds?\\b", "answer": "Refunds take 5 days."}]}
    ]}))
}

#[test]
fn faq_answers_the_first_message_then_closes_on_yes() {
    let flow = faq_flow();
    let (state, actions) = say(&flow, FlowState::default(), "What are your opening hours?", 0);
    assert_eq!(replies(&actions), ["9 to 5.", "Did that help? (yes / no)"]);
    assert_eq!(state.waiting, Some(Waiting::FaqConfirm));
    let (state, actions) = say(&flow, state, "Yes!", 0);
    assert_eq!(close_reason(&actions), Some(BotCloseReason::FaqResolved));
    assert_eq!(state.status, FlowStatus::Closed);
}

#[test]
fn faq_did_that_help_no_hands_off() {
    let flow = faq_flow();
    // A greeting-like first message is not a failed question: the prompt is sent.
    let (state, actions) = say(&flow, FlowState::default(), "hello", 0);
    assert_eq!(replies(&actions), ["Ask away."]);
    let (state, actions) = say(&flow, state, "how do REFUNDS work", 0);
    assert_eq!(replies(&actions), ["Refunds take 5 days.", "Did that help? (yes / no)"]);
    // Another question instead of yes/no is answered.
    let (state, actions) = say(&flow, state, "营业时间是几点", 0);
    assert_eq!(replies(&actions), ["9 to 5.", "Did that help? (yes / no)"]);
    let (state, actions) = say(&flow, state, "不", 0);
    assert_eq!(handoff_reason(&actions), Some(HandoffReason::FaqUnhelpful));
    assert_eq!(state.status, FlowStatus::HandedOff);
}

#[test]
fn faq_unmatched_question_and_unclear_confirmations_hand_off() {
    let flow = faq_flow();
    let (state, _) = say(&flow, FlowState::default(), "hello", 0);
    let (_, actions) = say(&flow, state, "do you sell boats", 0);
    assert_eq!(handoff_reason(&actions), Some(HandoffReason::FaqNoMatch));

    let (state, _) = say(&flow, FlowState::default(), "refund?", 0);
    let (state, actions) = say(&flow, state, "hmm", 0);
    assert_eq!(replies(&actions), ["Did that help? (yes / no)"]);
    let (_, actions) = say(&flow, state, "maybe", 0);
    assert_eq!(handoff_reason(&actions), Some(HandoffReason::InvalidAnswers), "max_invalid defaults to 2");
}

fn menu_flow() -> CompiledFlow {
    compile(json!({"steps": [
        {"type": "menu", "id": "m", "prompt": "Choose:", "max_invalid": 3, "options": [
            {"key": "1", "label": "Sales", "aliases": ["ventas"], "reply": "Sales it is.",
             "route": {"team": 5, "skills": [{"skill": "spanish", "min_proficiency": 3}], "priority": 2, "tags": ["sales"]},
             "next": "bye"},
            {"key": "2", "label": "Support", "route": {"team": "Support"}}]},
        {"type": "message", "id": "bye", "text": "Thanks.", "next": "end"},
        {"type": "handoff", "id": "end"}
    ]}))
}

#[test]
fn menu_picks_by_key_label_alias_and_full_width_digit() {
    let flow = menu_flow();
    for answer in ["1", "1.", "１", "sales", "SALES", "Ventas", " 1) "] {
        let (state, _) = step(&flow, FlowState::default(), Input::ConversationStarted, 0);
        let (_, actions) = say(&flow, state, answer, 0);
        assert_eq!(replies(&actions), ["Sales it is.", "Thanks."], "answer {answer:?}");
        assert!(actions.contains(&Action::Route {
            team: Some(TeamRef::Id(5)),
            queue: None,
            agent: None,
            skills: vec![SkillRequirement { skill: SkillId::new("spanish"), min_proficiency: 3 }],
            priority: Some(2),
            tags: vec!["sales".into()],
        }));
        assert_eq!(handoff_reason(&actions), Some(HandoffReason::Step));
    }
    // An option without `next` hands off at once.
    let (state, _) = step(&flow, FlowState::default(), Input::ConversationStarted, 0);
    let (_, actions) = say(&flow, state, "2", 0);
    assert_eq!(handoff_reason(&actions), Some(HandoffReason::MenuChoice));
}

#[test]
fn menu_reprompts_then_hands_off_after_n_invalid_answers() {
    let flow = menu_flow();
    let (state, actions) = step(&flow, FlowState::default(), Input::ConversationStarted, 0);
    assert_eq!(replies(&actions), ["Choose:\n1 Sales\n2 Support"]);
    let (state, actions) = say(&flow, state, "7", 0);
    assert_eq!(
        replies(&actions),
        ["Sorry, I didn't get that. Please answer with one of the options.\n\nChoose:\n1 Sales\n2 Support"]
    );
    let (state, actions) = say(&flow, state, "what?", 0);
    assert_eq!(replies(&actions).len(), 1);
    assert_eq!(state.invalid, 2);
    assert_eq!(state.status, FlowStatus::Running);
    let (state, actions) = say(&flow, state, "", 0);
    assert_eq!(handoff_reason(&actions), Some(HandoffReason::InvalidAnswers));
    assert!(replies(&actions).is_empty());
    assert_eq!(state.status, FlowStatus::HandedOff);
}

#[test]
fn collect_validates_each_built_in() {
    let flow = compile(json!({"steps": [
        {"type": "collect", "id": "c", "next": "end", "max_invalid": 2, "fields": [
            {"name": "email", "prompt": "Email?", "validate": "email", "scope": "contact"},
            {"name": "phone", "prompt": "Phone?", "validate": "phone"},
            {"name": "qty", "prompt": "How many?", "validate": "number", "invalid_reply": "Digits please."},
            {"name": "code", "prompt": "Code?", "validate": {"regex": "^[A-Z]{3}$"}},
            {"name": "note", "prompt": "Anything else?"}]},
        {"type": "handoff", "id": "end", "text": "Noted: {email} {phone} {qty} {code} {note}"}
    ]}));
    let (mut state, _) = step(&flow, FlowState::default(), Input::ConversationStarted, 0);
    let mut all = Vec::new();
    for answer in ["nope", "Ada@Example.COM", "+1 (212) 555-0100", "lots", "００７", "abc", "XYZ", "Fragile!"] {
        let (next, actions) = say(&flow, state, answer, 0);
        state = next;
        all.extend(actions);
    }
    let set: Vec<(FieldScope, String, Value)> = all
        .iter()
        .filter_map(|a| match a {
            Action::SetField { scope, name, value } => Some((*scope, name.clone(), value.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(
        set,
        [
            (FieldScope::Contact, "email".into(), json!("ada@example.com")),
            (FieldScope::Conversation, "phone".into(), json!("+12125550100")),
            (FieldScope::Conversation, "qty".into(), json!("007")),
            (FieldScope::Conversation, "code".into(), json!("XYZ")),
            (FieldScope::Conversation, "note".into(), json!("Fragile!")),
        ]
    );
    let texts = replies(&all);
    assert!(texts.contains(&"That doesn't look like an email address. Please try again.".to_string()));
    assert!(texts.contains(&"Digits please.".to_string()));
    assert_eq!(texts.last().map(String::as_str), Some("Noted: ada@example.com +12125550100 007 XYZ Fragile!"));
    assert_eq!(state.status, FlowStatus::HandedOff);

    // max_invalid: 2 wrong answers to one field hand off.
    let (state, _) = step(&flow, FlowState::default(), Input::ConversationStarted, 0);
    let (state, _) = say(&flow, state, "x", 0);
    let (_, actions) = say(&flow, state, "y", 0);
    assert_eq!(handoff_reason(&actions), Some(HandoffReason::InvalidAnswers));
}

// ---- flow-wide handoff rules ----

#[test]
fn handoff_keywords_in_several_languages_at_any_point() {
    let flow = example();
    for text in ["I want a human", "AGENT!", "转人工", "我要人工服务", "オペレーターをお願いします"]
    {
        // As the first message: straight to a human, no greeting.
        let (state, actions) = say(&flow, FlowState::default(), text, MONDAY_10_BERLIN);
        assert_eq!(replies(&actions), ["Connecting you with a person…"], "{text}");
        assert_eq!(handoff_reason(&actions), Some(HandoffReason::Keyword), "{text}");
        assert_eq!(state.status, FlowStatus::HandedOff);
        // Mid-flow, at the menu.
        let (state, _) = say(&flow, FlowState::default(), "hi", MONDAY_10_BERLIN);
        let (_, actions) = say(&flow, state, text, MONDAY_10_BERLIN);
        assert_eq!(handoff_reason(&actions), Some(HandoffReason::Keyword), "{text}");
    }
    // Not inside other words.
    let (state, _) = say(&flow, FlowState::default(), "hi", MONDAY_10_BERLIN);
    let (state, actions) = say(&flow, state, "change management", MONDAY_10_BERLIN);
    assert_eq!(handoff_reason(&actions), None);
    assert_eq!(state.status, FlowStatus::Running);
}

#[test]
fn default_keywords_apply_when_the_flow_lists_none() {
    let flow = menu_flow();
    let (_, actions) = say(&flow, FlowState::default(), "상담원 연결해 주세요", 0);
    assert_eq!(handoff_reason(&actions), Some(HandoffReason::Keyword));
    let off = compile(json!({"handoff": {"keywords": []}, "steps": [
        {"type": "menu", "id": "m", "prompt": "?", "options": [{"key": "1", "label": "x"}]}]}));
    let (state, _) = say(&off, FlowState::default(), "agent", 0);
    assert_eq!(state.status, FlowStatus::Running);
}

#[test]
fn n_bot_turns_hand_off() {
    let flow = compile(json!({"handoff": {"max_bot_turns": 3, "reply": "Let me get someone."}, "steps": [
        {"type": "faq", "id": "faq", "no_match_next": "faq", "entries": [{"keywords": ["price"], "answer": "$5."}]}
    ]}));
    let mut state = FlowState::default();
    for turn in 1..=3 {
        let (next, actions) = say(&flow, state, "something", 0);
        assert_eq!(handoff_reason(&actions), None, "turn {turn}");
        assert_eq!(next.turns, turn);
        state = next;
    }
    let (state, actions) = say(&flow, state, "something", 0);
    assert_eq!(replies(&actions), ["Let me get someone."]);
    assert_eq!(handoff_reason(&actions), Some(HandoffReason::MaxBotTurns));
    assert_eq!(state.status, FlowStatus::HandedOff);
}

// ---- robustness ----

#[test]
fn state_is_plain_json_and_an_empty_object_is_a_fresh_conversation() {
    let fresh: FlowState = serde_json::from_str("{}").expect("parses");
    assert_eq!(fresh, FlowState::default());
    let flow = example();
    let (state, _) = example_until_hook(&flow);
    let stored = serde_json::to_string(&state).expect("serializes");
    assert!(stored.contains(r#""waiting":{"kind":"decision_hook","call_id":1}"#), "{stored}");
    let back: FlowState = serde_json::from_str(&stored).expect("round trips");
    assert_eq!(back, state);
}

#[test]
fn a_state_that_no_longer_fits_the_flow_hands_off() {
    let flow = menu_flow();
    let stale = FlowState {
        status: FlowStatus::Running,
        current: Some(StepId::new("deleted_step")),
        waiting: Some(Waiting::MenuAnswer),
        ..Default::default()
    };
    let (state, actions) = say(&flow, stale, "1", 0);
    assert_eq!(handoff_reason(&actions), Some(HandoffReason::FlowError));
    assert_eq!(state.status, FlowStatus::HandedOff);
    // Waiting for a field at a menu step (the step changed type).
    let mismatched = FlowState {
        status: FlowStatus::Running,
        current: Some(StepId::new("m")),
        waiting: Some(Waiting::Field { index: 3 }),
        ..Default::default()
    };
    let (_, actions) = say(&flow, mismatched, "1", 0);
    assert_eq!(handoff_reason(&actions), Some(HandoffReason::FlowError));
}

#[test]
fn actions_serialize_with_snake_case_tags() {
    let action = Action::Handoff { reason: HandoffReason::MaxBotTurns };
    assert_eq!(serde_json::to_value(&action).expect("json"), json!({"type": "handoff", "reason": "max_bot_turns"}));
    let action = Action::CallDecisionHook { call_id: 2, step: StepId::new("crm"), timeout_ms: 2000 };
    assert_eq!(
        serde_json::to_value(&action).expect("json"),
        json!({"type": "call_decision_hook", "call_id": 2, "step": "crm", "timeout_ms": 2000})
    );
}

// ---- validation ----

#[test]
fn validation_reports_every_problem_with_its_path() {
    let paths = error_paths(Flow::from_value(json!({
        "start": "missing",
        "steps": [
            {"type": "greeting", "id": "hi", "text": "Hi", "next": "menu"},
            {"type": "faq", "id": "faq", "entries": [{"regex": "(unclosed", "answer": "x"}]},
            {"type": "menu", "id": "menu", "prompt": "Pick", "options": []},
            {"type": "menu", "id": "menu2", "prompt": "Pick", "options": [
                {"key": "1", "label": "A", "next": "hi"},
                {"key": "2", "label": "B", "next": "nowhere"},
                {"key": "3", "label": "a"}]},
            {"type": "message", "id": "hi", "text": "dup", "next": "hi"},
            {"type": "collect", "id": "c", "next": "hi", "fields": [
                {"name": "Order No", "prompt": "?", "validate": {"regex": "[z-a]"}}]},
            {"type": "decision_hook", "id": "hook", "timeout_ms": 10, "next": "hi", "fallback": "gone"},
            {"type": "business_hours", "id": "bh", "calendar": "nope", "next": "hi", "out_of_office": "x",
             "when_closed": "continue"}
        ]
    })));
    assert_eq!(
        paths,
        [
            "start",
            "steps[1].entries[0].regex",
            "steps[2].options",
            "steps[3].options[1].next",
            "steps[3].options[2].label",
            "steps[4].id",
            "steps[5].fields[0].name",
            "steps[5].fields[0].validate.regex",
            "steps[6].fallback",
            "steps[6].timeout_ms",
            "steps[7].calendar",
            "steps[7].closed_next",
        ]
    );
}

#[test]
fn duplicate_ids_name_both_places() {
    let errors = Flow::from_value(json!({"steps": [
        {"type": "close", "id": "a"}, {"type": "close", "id": "b"}, {"type": "close", "id": "a"}]}))
    .expect_err("duplicate");
    assert_eq!(errors, [FlowError::new("steps[2].id", "duplicate step id `a` (first used by steps[0])")]);
}

#[test]
fn parse_errors_carry_paths_too() {
    let paths = error_paths(Flow::from_value(json!({"steps": [
        {"type": "close", "id": "ok"},
        {"type": "carousel", "id": "x"},
        {"id": "no_type"},
        {"type": "menu", "id": "m", "prompt": "?", "options": [
            {"key": "1", "label": "A"}, {"key": "2", "label": "B", "nxt": "ok"}]},
        {"type": "collect", "id": "c", "next": "ok", "fields": [{"name": "a", "prompt": "?", "validate": "postcode"}]},
        {"type": "handoff", "id": "h", "route": {"team": "x", "prio": 3}},
        {"type": "message", "id": "m2", "text": "x"}
    ]})));
    assert_eq!(
        paths,
        [
            "steps[1].type",
            "steps[2].type",
            "steps[3].options[1].nxt",
            "steps[4].fields[0].validate",
            "steps[5].route.prio",
            "steps[6].next",
        ]
    );
    let paths = error_paths(Flow::from_value(json!({"steps": [], "greeting": "hi",
        "calendars": {"main": {"time_zone": "UTC", "weekly": [{"days": ["mon"], "from": "09:00", "until": "17:00"}]}}})));
    assert_eq!(paths, ["calendars.main.weekly[0].until"]);
    let paths = error_paths(Flow::from_value(json!({"steps": [], "greeting": "hi"})));
    assert_eq!(paths, ["greeting"]);
    let errors = Flow::parse("{\"steps\": [}").expect_err("syntax");
    assert_eq!(errors[0].path, "");
    assert!(errors[0].message.contains("line 1"), "{}", errors[0].message);
}

#[test]
fn loops_that_never_wait_are_refused_but_waiting_loops_are_fine() {
    let errors = Flow::from_value(json!({"steps": [
        {"type": "greeting", "id": "a", "text": "x", "next": "b"},
        {"type": "message", "id": "b", "text": "y", "next": "a"}]}))
    .expect_err("loop");
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].path, "steps[1].next");
    assert!(errors[0].message.contains("without waiting"));
    // The same loop through a menu is a normal "back to the menu".
    Flow::from_value(json!({"steps": [
        {"type": "message", "id": "a", "text": "x", "next": "m"},
        {"type": "menu", "id": "m", "prompt": "?", "options": [{"key": "1", "label": "again", "next": "a"}]}]}))
    .expect("valid");
}

#[test]
fn empty_flow_and_blank_texts_are_refused() {
    assert_eq!(error_paths(Flow::from_value(json!({"steps": []}))), ["steps"]);
    assert_eq!(
        error_paths(Flow::from_value(json!({"handoff": {"keywords": ["agent", " "], "max_bot_turns": 0},
            "steps": [{"type": "message", "id": "a", "text": " ", "next": "b"}, {"type": "close", "id": "b"}]}))),
        ["handoff.keywords[1]", "handoff.max_bot_turns", "steps[0].text"]
    );
}

// ---- properties ----

/// Inputs a customer (or the server) might send: menu answers, keywords, field answers, noise.
fn arbitrary_input() -> impl Strategy<Value = Input> {
    let text = prop_oneof![
        Just("1".to_string()),
        Just("2".to_string()),
        Just("3".to_string()),
        Just("yes".to_string()),
        Just("no".to_string()),
        Just("agent".to_string()),
        Just("AB123456".to_string()),
        Just("+49 30 123456".to_string()),
        Just("delivery".to_string()),
        Just(String::new()),
        "\\PC{0,40}",
        "[0-9a-z ]{0,12}",
    ];
    prop_oneof![
        8 => text.prop_map(|text| Input::CustomerMessage { text }),
        1 => Just(Input::ConversationStarted),
        1 => (0u32..4, any::<bool>()).prop_map(|(call_id, ok)| Input::DecisionHookResult {
            call_id,
            result: if ok {
                Ok(Instructions { reply: Some("ok".into()), ..Default::default() })
            } else {
                Err(HookFailure::Timeout)
            },
        }),
    ]
}

/// The most actions one call may produce for `flow`: a few per step visited, plus a hook answer.
fn action_bound(flow: &CompiledFlow) -> usize {
    4 * (flow.flow().steps.len() + 2) + hook::MAX_HOOK_ATTRIBUTES + 4
}

/// Small random flows of every step type with random links; only valid ones are run.
fn arbitrary_flow() -> impl Strategy<Value = Value> {
    let kinds = prop::collection::vec((0usize..9, 0usize..6, 0usize..6), 1..6);
    kinds.prop_map(|specs| {
        let n = specs.len();
        let id = |i: usize| format!("s{}", i % n);
        let steps: Vec<Value> = specs
            .iter()
            .enumerate()
            .map(|(i, &(kind, a, b))| match kind {
                0 => json!({"type": "greeting", "id": id(i), "text": "hi", "next": id(a)}),
                1 => json!({"type": "message", "id": id(i), "text": "m {name}", "next": id(a)}),
                2 => json!({"type": "menu", "id": id(i), "prompt": "?", "max_invalid": 2, "options": [
                        {"key": "1", "label": "one", "next": id(a)}, {"key": "2", "label": "two", "next": id(b)},
                        {"key": "3", "label": "three"}]}),
                3 => json!({"type": "collect", "id": id(i), "next": id(a), "fields": [
                        {"name": "name", "prompt": "name?"}, {"name": "code", "prompt": "code?", "validate": {"regex": "^AB"}}]}),
                4 => json!({"type": "faq", "id": id(i), "no_match_next": id(a), "unresolved_next": id(b),
                        "entries": [{"keywords": ["delivery"], "answer": "soon"}]}),
                5 => json!({"type": "decision_hook", "id": id(i), "next": id(a), "fallback": id(b)}),
                6 => json!({"type": "business_hours", "id": id(i), "calendar": "c", "next": id(a),
                        "out_of_office": "closed", "when_closed": "continue", "closed_next": id(b)}),
                7 => json!({"type": "handoff", "id": id(i)}),
                _ => json!({"type": "close", "id": id(i)}),
            })
            .collect();
        json!({"handoff": {"max_bot_turns": 20},
               "calendars": {"c": {"time_zone": "Europe/Berlin",
                   "weekly": [{"days": ["mon","tue","wed","thu","fri"], "from": "09:00", "to": "17:00"}]}},
               "steps": steps})
    })
}

fn drive(flow: &CompiledFlow, inputs: Vec<Input>, now: i64) -> Result<(), TestCaseError> {
    let mut state = FlowState::default();
    let bound = action_bound(flow);
    for input in inputs {
        let was_finished = state.status.is_finished();
        let (next, actions) = step(flow, state, input, now);
        prop_assert!(actions.len() <= bound, "{} actions > bound {bound}", actions.len());
        if was_finished {
            prop_assert!(actions.is_empty(), "a finished flow said something");
        }
        let ends = actions.iter().filter(|a| matches!(a, Action::Handoff { .. } | Action::Close { .. })).count();
        prop_assert!(ends <= 1, "handed off or closed twice in one step");
        prop_assert_eq!(ends == 1, next.status.is_finished() && !was_finished);
        if next.status == FlowStatus::Running {
            prop_assert!(next.waiting.is_some(), "a running flow must be waiting for something");
        }
        state = next;
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_inputs_on_the_example_never_panic_or_run_away(
        inputs in prop::collection::vec(arbitrary_input(), 0..40),
        at in prop_oneof![
            4 => prop_oneof![Just(MONDAY_10_BERLIN), Just(SUNDAY_20_BERLIN)],
            4 => 0i64..4_102_444_800_000,
            1 => any::<i64>(),
        ],
    ) {
        drive(&example(), inputs, at)?;
    }

    #[test]
    fn arbitrary_inputs_on_random_valid_flows_never_panic_or_run_away(
        flow in arbitrary_flow(),
        inputs in prop::collection::vec(arbitrary_input(), 0..30),
        open in any::<bool>(),
    ) {
        let compiled = Flow::from_value(flow).and_then(Flow::compile);
        prop_assume!(compiled.is_ok());
        let compiled = compiled.expect("checked");
        drive(&compiled, inputs, if open { MONDAY_10_BERLIN } else { SUNDAY_20_BERLIN })?;
    }

    #[test]
    fn next_opening_is_open_and_nothing_earlier_is(
        start in 1_700_000_000_000i64..1_800_000_000_000,
        zone in prop_oneof![Just("Europe/Berlin"), Just("America/New_York"), Just("Australia/Sydney"), Just("Asia/Shanghai")],
    ) {
        let hours: BusinessHours = serde_json::from_value(json!({"time_zone": zone,
            "weekly": [{"days": ["mon","wed","fri"], "from": "02:30", "to": "03:15"},
                       {"days": ["tue","sun"], "from": "09:00", "to": "17:00"}]})).expect("calendar");
        let opening = hours.next_opening(start);
        prop_assert!(opening.is_some());
        let opening = opening.expect("checked");
        prop_assert!(opening >= start);
        prop_assert!(hours.is_open(opening));
        // Sampled every 5 minutes, nothing between start and the opening is open.
        let mut at = start;
        while at + 300_000 < opening {
            at += 300_000;
            prop_assert!(!hours.is_open(at), "open at {at} before the reported opening {opening}");
        }
    }
}

#[test]
fn a_flow_round_trips_through_its_own_json() {
    let flow = Flow::parse(&example_json()).expect("valid");
    let again = Flow::parse(&serde_json::to_string(&flow).expect("serializes")).expect("still valid");
    assert_eq!(again, flow);
}
