//! The flow model: the JSON an admin saves for an inbox, as Rust types ([`Flow`], [`Step`] and
//! the per-type step structs), how it is parsed with errors that carry a JSON path
//! ([`Flow::parse`]), every rule a saved flow must satisfy ([`Flow::validate`]), and the
//! [`CompiledFlow`] (validated, regexes built) that the engine runs.
//!
//! This module describes and checks; it does not run anything. See `docs/auto-responder.md` for
//! the JSON reference.

use std::collections::{BTreeMap, HashMap, HashSet};

use regex::{Regex, RegexBuilder};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::hours::BusinessHours;
use super::text;
use crate::ids::UserId;
use crate::routing::policy::{MAX_PRIORITY, MAX_PROFICIENCY, MIN_PRIORITY, MIN_PROFICIENCY};
use crate::routing::{QueueId, SkillId, SkillRequirement};

/// Longest regex source accepted in a flow or from the decision hook.
pub const MAX_REGEX_LEN: usize = 1_000;
/// Compiled-size cap per regex, so a pathological pattern is refused at save time.
const REGEX_SIZE_LIMIT: usize = 1 << 20;
/// The most steps a flow may have.
pub const MAX_STEPS: usize = 500;
/// Bounds on a decision hook's time budget.
pub const MIN_HOOK_TIMEOUT_MS: u32 = 100;
pub const MAX_HOOK_TIMEOUT_MS: u32 = 30_000;
pub const DEFAULT_HOOK_TIMEOUT_MS: u32 = 2_000;

/// A step's id, unique within its flow: 1–64 of `A-Z a-z 0-9 _ - .`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct StepId(pub String);

impl StepId {
    pub fn new(id: impl Into<String>) -> Self {
        StepId(id.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    fn is_well_formed(&self) -> bool {
        (1..=64).contains(&self.0.len())
            && self.0.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
    }
}

impl std::fmt::Display for StepId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// One problem in a flow: where (`steps[3].options[1].next`; empty for the document itself) and
/// what.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{path}: {message}")]
pub struct FlowError {
    pub path: String,
    pub message: String,
}

impl FlowError {
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        FlowError { path: path.into(), message: message.into() }
    }
}

/// An inbox's auto-responder. Every key but `steps` is optional.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Flow {
    /// The step a new conversation starts at. Default: the first step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<StepId>,
    /// Escape hatches to a human that apply at every step.
    #[serde(default)]
    pub handoff: HandoffRules,
    /// Named calendars that `business_hours` steps refer to.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub calendars: BTreeMap<String, BusinessHours>,
    pub steps: Vec<Step>,
}

/// Flow-wide handoff rules, checked on every customer message before the current step sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HandoffRules {
    /// Any of these in a customer message hands the conversation to a human at once. Matched
    /// case-insensitively, on word boundaries in spaced scripts and anywhere in Chinese,
    /// Japanese, Korean and Thai. `[]` turns keyword handoff off.
    pub keywords: Vec<String>,
    /// Sent before a keyword or turn-limit handoff.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reply: Option<String>,
    /// The customer message after this many is handed off instead of answered. `null`: no limit.
    pub max_bot_turns: Option<u32>,
}

/// Handoff keywords used when a flow does not list its own.
pub const DEFAULT_HANDOFF_KEYWORDS: &[&str] = &[
    "agent",
    "human",
    "operator",
    "representative",
    "real person", // en
    "人工",
    "转人工",
    "人工客服",
    "真人",
    "轉人工",
    "真人客服", // zh
    "オペレーター",
    "担当者", // ja
    "상담원", // ko
    "agente",
    "humano",
    "asesor", // es / pt / it
    "mitarbeiter",
    "mensch", // de
    "conseiller",
    "opérateur", // fr
];

impl Default for HandoffRules {
    fn default() -> Self {
        HandoffRules {
            keywords: DEFAULT_HANDOFF_KEYWORDS.iter().map(|k| k.to_string()).collect(),
            reply: None,
            max_bot_turns: Some(10),
        }
    }
}

/// One step. JSON: an object with `"type"` naming the variant and `"id"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Step {
    Greeting(GreetingStep),
    BusinessHours(BusinessHoursStep),
    Faq(FaqStep),
    Menu(MenuStep),
    Collect(CollectStep),
    Handoff(HandoffStep),
    DecisionHook(DecisionHookStep),
    Message(MessageStep),
    Close(CloseStep),
}

/// The `type` names, in the order the docs list them.
pub const STEP_TYPES: &[&str] =
    &["greeting", "business_hours", "faq", "menu", "collect", "handoff", "decision_hook", "message", "close"];

impl Step {
    pub fn id(&self) -> &StepId {
        match self {
            Step::Greeting(s) => &s.id,
            Step::BusinessHours(s) => &s.id,
            Step::Faq(s) => &s.id,
            Step::Menu(s) => &s.id,
            Step::Collect(s) => &s.id,
            Step::Handoff(s) => &s.id,
            Step::DecisionHook(s) => &s.id,
            Step::Message(s) => &s.id,
            Step::Close(s) => &s.id,
        }
    }

    /// Every step id this step may lead to, with the key (relative to the step) naming it.
    pub fn references(&self) -> Vec<(String, &StepId)> {
        let mut refs: Vec<(String, &StepId)> = Vec::new();
        match self {
            Step::Greeting(s) => refs.push(("next".into(), &s.next)),
            Step::Message(s) => refs.push(("next".into(), &s.next)),
            Step::BusinessHours(s) => {
                refs.push(("next".into(), &s.next));
                if let Some(n) = &s.closed_next {
                    refs.push(("closed_next".into(), n));
                }
            }
            Step::Faq(s) => {
                for (key, id) in [
                    ("resolved_next", &s.resolved_next),
                    ("unresolved_next", &s.unresolved_next),
                    ("no_match_next", &s.no_match_next),
                ] {
                    if let Some(id) = id {
                        refs.push((key.into(), id));
                    }
                }
            }
            Step::Menu(s) => {
                for (i, option) in s.options.iter().enumerate() {
                    if let Some(n) = &option.next {
                        refs.push((format!("options[{i}].next"), n));
                    }
                }
            }
            Step::Collect(s) => refs.push(("next".into(), &s.next)),
            Step::DecisionHook(s) => {
                refs.push(("next".into(), &s.next));
                refs.push(("fallback".into(), &s.fallback));
            }
            Step::Handoff(_) | Step::Close(_) => {}
        }
        refs
    }

    /// The steps this one moves to without waiting for the customer (used to refuse loops that
    /// would never stop for input).
    fn immediate_successors(&self) -> Vec<(String, &StepId)> {
        match self {
            Step::Greeting(_) | Step::Message(_) | Step::BusinessHours(_) => self.references(),
            _ => Vec::new(),
        }
    }
}

/// `greeting`: sent once per conversation (a flow that comes back to it skips the text).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GreetingStep {
    pub id: StepId,
    pub text: String,
    pub next: StepId,
}

/// `message`: a reply, then on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MessageStep {
    pub id: StepId,
    pub text: String,
    pub next: StepId,
}

/// `business_hours`: on to `next` when `calendar` is open; otherwise `out_of_office` is sent and
/// `when_closed` decides.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BusinessHoursStep {
    pub id: StepId,
    /// A key of the flow's `calendars`.
    pub calendar: String,
    pub next: StepId,
    /// Sent when closed. `{next_opening}` becomes the next opening as `YYYY-MM-DD HH:MM` in the
    /// calendar's zone.
    pub out_of_office: String,
    #[serde(default)]
    pub when_closed: WhenClosed,
    /// Where `when_closed: "continue"` goes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closed_next: Option<StepId>,
    /// Sent after `out_of_office` when `when_closed` is `callback`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callback_text: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WhenClosed {
    /// Queue for a human anyway (picked up when agents come in).
    #[default]
    Queue,
    /// Close the conversation, marked `callback_requested`, with a promise to call back.
    Callback,
    /// Go on at `closed_next` (e.g. collect a phone number, then close).
    Continue,
}

/// `faq`: answers questions by keyword or regex, asks "did that help?", hands off when not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaqStep {
    pub id: StepId,
    /// Sent when the step is entered without a question to answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt: Option<String>,
    pub entries: Vec<FaqEntry>,
    #[serde(default = "default_confirm")]
    pub confirm: String,
    #[serde(default = "default_yes_words")]
    pub yes_words: Vec<String>,
    #[serde(default = "default_no_words")]
    pub no_words: Vec<String>,
    /// Sent when the answer helped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_text: Option<String>,
    /// After "yes". Default: close the conversation as resolved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_next: Option<StepId>,
    /// After "no". Default: hand off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unresolved_next: Option<StepId>,
    /// When a question matches no entry. Default: hand off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub no_match_next: Option<StepId>,
    /// Answers to "did that help?" that are neither yes, no nor another question, before handing
    /// off.
    #[serde(default = "default_faq_max_invalid")]
    pub max_invalid: u32,
}

/// One question the FAQ answers: any keyword, or the regex, matching the customer's message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaqEntry {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keywords: Vec<String>,
    /// Rust `regex` syntax, matched against the message as typed (add `(?i)` for any case).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regex: Option<String>,
    pub answer: String,
}

fn default_confirm() -> String {
    "Did that help? (yes / no)".into()
}
fn default_yes_words() -> Vec<String> {
    ["yes", "y", "yeah", "yep", "ok", "thanks", "是", "是的", "有", "好", "はい", "네", "sí", "si", "ja", "oui"]
        .map(String::from)
        .to_vec()
}
fn default_no_words() -> Vec<String> {
    ["no", "n", "nope", "not really", "否", "不", "没有", "不是", "いいえ", "아니요", "nein", "non"]
        .map(String::from)
        .to_vec()
}
fn default_faq_max_invalid() -> u32 {
    2
}

/// `menu`: numbered (or named) options; an answer that matches none re-prompts, and
/// `max_invalid` of them hand off.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MenuStep {
    pub id: StepId,
    pub prompt: String,
    pub options: Vec<MenuOption>,
    /// Append one `key label` line per option to the prompt.
    #[serde(default = "default_true")]
    pub show_options: bool,
    #[serde(default = "default_menu_invalid_reply")]
    pub invalid_reply: String,
    #[serde(default = "default_max_invalid")]
    pub max_invalid: u32,
}

/// One menu choice. The customer picks it by `key`, `label` or any alias (any case; a trailing
/// `.` or `)` is ignored).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MenuOption {
    pub key: String,
    pub label: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply: Option<String>,
    /// Routing for the eventual handoff (team, skills, priority, tags).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route: Option<RouteSpec>,
    /// Where to go next. Default: hand off now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<StepId>,
}

fn default_true() -> bool {
    true
}
fn default_menu_invalid_reply() -> String {
    "Sorry, I didn't get that. Please answer with one of the options.".into()
}
fn default_max_invalid() -> u32 {
    3
}

/// `collect`: asks for each field in turn, validates the answer and saves it. A field already
/// known in this conversation (collected earlier or set by the decision hook) is not asked again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CollectStep {
    pub id: StepId,
    pub fields: Vec<CollectField>,
    /// Invalid answers to one field before handing off.
    #[serde(default = "default_max_invalid")]
    pub max_invalid: u32,
    pub next: StepId,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CollectField {
    /// The attribute name: 1–64 of `a-z 0-9 _`.
    pub name: String,
    pub prompt: String,
    #[serde(default)]
    pub validate: Validator,
    /// Sent for an answer that fails validation. Default: a sentence per validator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invalid_reply: Option<String>,
    #[serde(default)]
    pub scope: FieldScope,
}

/// How a collected answer is checked. JSON: `"text"`, `"email"`, `"phone"`, `"number"` or
/// `{"regex": "^[A-Z]{2}[0-9]{6}$"}`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Validator {
    /// Any non-blank answer up to 500 characters.
    #[default]
    Text,
    /// `local@domain.tld`; saved lower-cased.
    Email,
    /// 6–15 digits with an optional `+` and separators; saved as `+` and digits.
    Phone,
    /// An integer or decimal; saved as typed.
    Number,
    /// The answer (trimmed) must match; saved as typed.
    Regex(String),
}

/// Where a collected value or attribute is saved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldScope {
    /// On the customer: kept for their next conversations.
    Contact,
    /// On this conversation only.
    #[default]
    Conversation,
}

/// `handoff`: optional text and routing, then hand the conversation to a human.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HandoffStep {
    pub id: StepId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route: Option<RouteSpec>,
}

/// `close`: optional text, then close the conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CloseStep {
    pub id: StepId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

/// `decision_hook`: the server POSTs the conversation's context to the inbox's decision hook and
/// feeds the answer back; the flow applies it, or goes to `fallback` if the call failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecisionHookStep {
    pub id: StepId,
    /// How long the server waits for the answer before treating the call as failed.
    #[serde(default = "default_hook_timeout")]
    pub timeout_ms: u32,
    /// Sent while waiting (e.g. "One moment…").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting_text: Option<String>,
    /// Where the flow goes after instructions that neither hand off nor close.
    pub next: StepId,
    /// Where the flow goes when the hook times out, fails, or answers something invalid.
    pub fallback: StepId,
}

fn default_hook_timeout() -> u32 {
    DEFAULT_HOOK_TIMEOUT_MS
}

/// A team by id (`5`) or by name (`"Sales"`; the server resolves names within the tenant).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum TeamRef {
    Id(i64),
    Name(String),
}

/// A required skill: `"billing"` (any proficiency) or `{"skill": "spanish", "min_proficiency": 3}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged, deny_unknown_fields)]
pub enum SkillSpec {
    Name(String),
    Level { skill: String, min_proficiency: u8 },
}

impl SkillSpec {
    pub fn requirement(&self) -> SkillRequirement {
        match self {
            SkillSpec::Name(name) => SkillRequirement { skill: SkillId::new(name), min_proficiency: MIN_PROFICIENCY },
            SkillSpec::Level { skill, min_proficiency } => {
                SkillRequirement { skill: SkillId::new(skill), min_proficiency: *min_proficiency }
            }
        }
    }
}

/// Routing for the eventual handoff, set by a menu option, a handoff step or the decision hook.
/// The server merges successive routes: `team`, `queue`, `agent` and `priority` replace earlier
/// values, `skills` and `tags` add to them.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RouteSpec {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub team: Option<TeamRef>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queue: Option<QueueId>,
    /// A preferred agent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent: Option<UserId>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub skills: Vec<SkillSpec>,
    /// 1 (lowest) – 5.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub priority: Option<u8>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
}

impl RouteSpec {
    /// Problems with this route, paths under `path`.
    pub fn validate(&self, path: &str) -> Vec<FlowError> {
        let mut errors = Vec::new();
        if let Some(TeamRef::Name(name)) = &self.team {
            if name.trim().is_empty() {
                errors.push(FlowError::new(format!("{path}.team"), "a team name must not be blank"));
            }
        }
        if let Some(p) = self.priority {
            if !(MIN_PRIORITY..=MAX_PRIORITY).contains(&p) {
                errors.push(FlowError::new(
                    format!("{path}.priority"),
                    format!("priority must be {MIN_PRIORITY}–{MAX_PRIORITY}, not {p}"),
                ));
            }
        }
        for (i, skill) in self.skills.iter().enumerate() {
            let req = skill.requirement();
            if req.skill.0.trim().is_empty() {
                errors.push(FlowError::new(format!("{path}.skills[{i}]"), "a skill name must not be blank"));
            }
            if !(MIN_PROFICIENCY..=MAX_PROFICIENCY).contains(&req.min_proficiency) {
                errors.push(FlowError::new(
                    format!("{path}.skills[{i}].min_proficiency"),
                    format!("min_proficiency must be {MIN_PROFICIENCY}–{MAX_PROFICIENCY}"),
                ));
            }
        }
        for (i, tag) in self.tags.iter().enumerate() {
            if tag.trim().is_empty() || tag.len() > 64 {
                errors.push(FlowError::new(format!("{path}.tags[{i}]"), "a tag must be 1–64 characters"));
            }
        }
        errors
    }
}

/// A field / attribute name: 1–64 of `a-z 0-9 _`, so it is safe as a placeholder and a column.
pub fn is_field_name(name: &str) -> bool {
    (1..=64).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// Builds a regex with the flow's limits; the error is the message to show.
pub fn build_regex(source: &str) -> Result<Regex, String> {
    if source.len() > MAX_REGEX_LEN {
        return Err(format!("a regex may be at most {MAX_REGEX_LEN} characters"));
    }
    RegexBuilder::new(source).size_limit(REGEX_SIZE_LIMIT).build().map_err(|e| format!("invalid regex: {e}"))
}

impl Flow {
    /// Parses a flow from JSON and validates it, reporting every problem found with its path.
    /// A syntax error in the JSON is reported alone (path `""`, with line and column).
    pub fn parse(json: &str) -> Result<Flow, Vec<FlowError>> {
        let value: Value = serde_json::from_str(json).map_err(|e| vec![FlowError::new("", e.to_string())])?;
        Flow::from_value(value)
    }

    /// Every route in the flow with its path (`steps[2].options[0].route`), for checks the
    /// engine cannot make itself, such as whether a named team exists.
    pub fn routes(&self) -> Vec<(String, &RouteSpec)> {
        let mut found = Vec::new();
        for (i, step) in self.steps.iter().enumerate() {
            match step {
                Step::Menu(menu) => {
                    for (j, option) in menu.options.iter().enumerate() {
                        if let Some(route) = &option.route {
                            found.push((format!("steps[{i}].options[{j}].route"), route));
                        }
                    }
                }
                Step::Handoff(handoff) => {
                    if let Some(route) = &handoff.route {
                        found.push((format!("steps[{i}].route"), route));
                    }
                }
                _ => {}
            }
        }
        found
    }

    /// [`Flow::parse`] for an already-parsed JSON value.
    pub fn from_value(value: Value) -> Result<Flow, Vec<FlowError>> {
        let flow = match serde_json::from_value::<Flow>(value.clone()) {
            Ok(flow) => flow,
            Err(e) => return Err(locate_flow_errors(&value, e)),
        };
        flow.validate()?;
        Ok(flow)
    }

    pub fn step(&self, id: &StepId) -> Option<&Step> {
        self.steps.iter().find(|s| s.id() == id)
    }

    /// The step a new conversation starts at.
    pub fn start_id(&self) -> Option<&StepId> {
        self.start.as_ref().or_else(|| self.steps.first().map(Step::id))
    }

    /// Every rule a saved flow must satisfy; all problems, not just the first.
    pub fn validate(&self) -> Result<(), Vec<FlowError>> {
        let mut errors = Vec::new();
        if self.steps.is_empty() {
            errors.push(FlowError::new("steps", "a flow needs at least one step"));
        }
        if self.steps.len() > MAX_STEPS {
            errors.push(FlowError::new("steps", format!("a flow may have at most {MAX_STEPS} steps")));
        }

        let mut index: HashMap<&StepId, usize> = HashMap::new();
        for (i, step) in self.steps.iter().enumerate() {
            let id = step.id();
            if !id.is_well_formed() {
                errors.push(FlowError::new(
                    format!("steps[{i}].id"),
                    format!("`{id}` is not a step id: use 1–64 of A-Z a-z 0-9 _ - ."),
                ));
            }
            if let Some(first) = index.get(id) {
                errors.push(FlowError::new(
                    format!("steps[{i}].id"),
                    format!("duplicate step id `{id}` (first used by steps[{first}])"),
                ));
            } else {
                index.insert(id, i);
            }
        }

        if let Some(start) = &self.start {
            if !index.contains_key(start) {
                errors.push(FlowError::new("start", format!("no step has id `{start}`")));
            }
        }
        for (i, step) in self.steps.iter().enumerate() {
            for (key, target) in step.references() {
                if !index.contains_key(target) {
                    errors.push(FlowError::new(format!("steps[{i}].{key}"), format!("no step has id `{target}`")));
                }
            }
        }

        for (i, keyword) in self.handoff.keywords.iter().enumerate() {
            if text::normalize(keyword).is_empty() {
                errors.push(FlowError::new(format!("handoff.keywords[{i}]"), "a keyword must not be blank"));
            }
        }
        if self.handoff.reply.as_deref().is_some_and(|r| r.trim().is_empty()) {
            errors.push(FlowError::new("handoff.reply", "must not be blank (leave it out instead)"));
        }
        if self.handoff.max_bot_turns == Some(0) {
            errors.push(FlowError::new("handoff.max_bot_turns", "must be at least 1 (or null for no limit)"));
        }
        for (name, calendar) in &self.calendars {
            errors.extend(calendar.validate(&format!("calendars.{name}")));
        }

        for (i, step) in self.steps.iter().enumerate() {
            self.validate_step(i, step, &mut errors);
        }
        errors.extend(self.find_instant_loops(&index));

        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }

    fn validate_step(&self, i: usize, step: &Step, errors: &mut Vec<FlowError>) {
        let at = format!("steps[{i}]");
        let mut non_blank = |key: &str, value: &str| {
            if value.trim().is_empty() {
                errors.push(FlowError::new(format!("{at}.{key}"), "must not be blank"));
            }
        };
        match step {
            Step::Greeting(s) => non_blank("text", &s.text),
            Step::Message(s) => non_blank("text", &s.text),
            Step::Close(s) => {
                if let Some(t) = &s.text {
                    non_blank("text", t);
                }
            }
            Step::Handoff(s) => {
                if let Some(t) = &s.text {
                    non_blank("text", t);
                }
                if let Some(route) = &s.route {
                    errors.extend(route.validate(&format!("{at}.route")));
                }
            }
            Step::BusinessHours(s) => {
                non_blank("out_of_office", &s.out_of_office);
                if !self.calendars.contains_key(&s.calendar) {
                    errors
                        .push(FlowError::new(format!("{at}.calendar"), format!("no calendar named `{}`", s.calendar)));
                }
                match (s.when_closed, &s.closed_next) {
                    (WhenClosed::Continue, None) => errors
                        .push(FlowError::new(format!("{at}.closed_next"), "required when when_closed is \"continue\"")),
                    (WhenClosed::Queue | WhenClosed::Callback, Some(_)) => errors.push(FlowError::new(
                        format!("{at}.closed_next"),
                        "only used when when_closed is \"continue\"",
                    )),
                    _ => {}
                }
            }
            Step::Faq(s) => {
                non_blank("confirm", &s.confirm);
                if s.entries.is_empty() {
                    errors.push(FlowError::new(format!("{at}.entries"), "an FAQ needs at least one entry"));
                }
                for (j, entry) in s.entries.iter().enumerate() {
                    let entry_at = format!("{at}.entries[{j}]");
                    if entry.keywords.is_empty() && entry.regex.is_none() {
                        errors.push(FlowError::new(entry_at.clone(), "give keywords, a regex, or both"));
                    }
                    for (k, keyword) in entry.keywords.iter().enumerate() {
                        if text::normalize(keyword).is_empty() {
                            errors.push(FlowError::new(format!("{entry_at}.keywords[{k}]"), "must not be blank"));
                        }
                    }
                    if let Some(source) = &entry.regex {
                        if let Err(message) = build_regex(source) {
                            errors.push(FlowError::new(format!("{entry_at}.regex"), message));
                        }
                    }
                    if entry.answer.trim().is_empty() {
                        errors.push(FlowError::new(format!("{entry_at}.answer"), "must not be blank"));
                    }
                }
                for (key, words) in [("yes_words", &s.yes_words), ("no_words", &s.no_words)] {
                    if words.iter().all(|w| text::normalize(w).is_empty()) {
                        errors.push(FlowError::new(format!("{at}.{key}"), "list at least one word"));
                    }
                }
                let yes: HashSet<String> = s.yes_words.iter().map(|w| text::normalize(w)).collect();
                for (k, word) in s.no_words.iter().enumerate() {
                    if yes.contains(&text::normalize(word)) {
                        errors.push(FlowError::new(
                            format!("{at}.no_words[{k}]"),
                            format!("`{word}` is also a yes word"),
                        ));
                    }
                }
                if s.max_invalid == 0 {
                    errors.push(FlowError::new(format!("{at}.max_invalid"), "must be at least 1"));
                }
            }
            Step::Menu(s) => {
                non_blank("prompt", &s.prompt);
                non_blank("invalid_reply", &s.invalid_reply);
                if s.options.is_empty() {
                    errors.push(FlowError::new(format!("{at}.options"), "a menu needs at least one option"));
                }
                if s.max_invalid == 0 {
                    errors.push(FlowError::new(format!("{at}.max_invalid"), "must be at least 1"));
                }
                // Every way of picking an option must pick exactly one.
                let mut answers: HashMap<String, usize> = HashMap::new();
                for (j, option) in s.options.iter().enumerate() {
                    let option_at = format!("{at}.options[{j}]");
                    let mut claim = |key: String, answer: &str, errors: &mut Vec<FlowError>| {
                        let normalized = text::normalize(answer);
                        let normalized = text::strip_trailing_punctuation(&normalized).to_string();
                        if normalized.is_empty() {
                            errors.push(FlowError::new(format!("{option_at}.{key}"), "must not be blank"));
                        } else if let Some(&other) = answers.get(&normalized) {
                            if other != j {
                                errors.push(FlowError::new(
                                    format!("{option_at}.{key}"),
                                    format!("`{answer}` already picks {at}.options[{other}]"),
                                ));
                            }
                        } else {
                            answers.insert(normalized, j);
                        }
                    };
                    claim("key".into(), &option.key, errors);
                    claim("label".into(), &option.label, errors);
                    for (k, alias) in option.aliases.iter().enumerate() {
                        claim(format!("aliases[{k}]"), alias, errors);
                    }
                    if let Some(reply) = &option.reply {
                        if reply.trim().is_empty() {
                            errors.push(FlowError::new(format!("{option_at}.reply"), "must not be blank"));
                        }
                    }
                    if let Some(route) = &option.route {
                        errors.extend(route.validate(&format!("{option_at}.route")));
                    }
                }
            }
            Step::Collect(s) => {
                if s.fields.is_empty() {
                    errors.push(FlowError::new(format!("{at}.fields"), "list at least one field"));
                }
                if s.max_invalid == 0 {
                    errors.push(FlowError::new(format!("{at}.max_invalid"), "must be at least 1"));
                }
                let mut names: HashMap<&str, usize> = HashMap::new();
                for (j, field) in s.fields.iter().enumerate() {
                    let field_at = format!("{at}.fields[{j}]");
                    if !is_field_name(&field.name) {
                        errors.push(FlowError::new(
                            format!("{field_at}.name"),
                            format!("`{}` is not a field name: use 1–64 of a-z 0-9 _", field.name),
                        ));
                    } else if let Some(first) = names.insert(&field.name, j) {
                        errors.push(FlowError::new(
                            format!("{field_at}.name"),
                            format!("`{}` is already collected by {at}.fields[{first}]", field.name),
                        ));
                    }
                    if field.prompt.trim().is_empty() {
                        errors.push(FlowError::new(format!("{field_at}.prompt"), "must not be blank"));
                    }
                    if let Validator::Regex(source) = &field.validate {
                        if let Err(message) = build_regex(source) {
                            errors.push(FlowError::new(format!("{field_at}.validate.regex"), message));
                        }
                    }
                    if field.invalid_reply.as_deref().is_some_and(|r| r.trim().is_empty()) {
                        errors.push(FlowError::new(format!("{field_at}.invalid_reply"), "must not be blank"));
                    }
                }
            }
            Step::DecisionHook(s) => {
                if !(MIN_HOOK_TIMEOUT_MS..=MAX_HOOK_TIMEOUT_MS).contains(&s.timeout_ms) {
                    errors.push(FlowError::new(
                        format!("{at}.timeout_ms"),
                        format!("must be {MIN_HOOK_TIMEOUT_MS}–{MAX_HOOK_TIMEOUT_MS}"),
                    ));
                }
                if s.waiting_text.as_deref().is_some_and(|t| t.trim().is_empty()) {
                    errors.push(FlowError::new(format!("{at}.waiting_text"), "must not be blank"));
                }
            }
        }
    }

    /// Steps that move on without waiting (greeting, message, business_hours) must not form a
    /// cycle among themselves: such a flow would talk to itself forever. Reported once per cycle,
    /// at the reference that closes it.
    fn find_instant_loops(&self, index: &HashMap<&StepId, usize>) -> Vec<FlowError> {
        // Iterative three-colour DFS over the immediate edges.
        #[derive(Clone, Copy, PartialEq)]
        enum Mark {
            New,
            OnPath,
            Done,
        }
        /// A step on the DFS path: its immediate edges (key, target index) and the next to visit.
        type Frame = (usize, Vec<(String, usize)>, usize);
        let mut errors = Vec::new();
        let mut mark = vec![Mark::New; self.steps.len()];
        for root in 0..self.steps.len() {
            if mark[root] != Mark::New {
                continue;
            }
            let mut stack: Vec<Frame> = Vec::new();
            let edges = |i: usize| -> Vec<(String, usize)> {
                self.steps[i]
                    .immediate_successors()
                    .into_iter()
                    .filter_map(|(key, id)| index.get(id).map(|&j| (key, j)))
                    .collect()
            };
            mark[root] = Mark::OnPath;
            stack.push((root, edges(root), 0));
            while let Some((node, out, next)) = stack.last_mut() {
                if let Some((key, target)) = out.get(*next).cloned() {
                    *next += 1;
                    match mark[target] {
                        Mark::New => {
                            mark[target] = Mark::OnPath;
                            let e = edges(target);
                            stack.push((target, e, 0));
                        }
                        Mark::OnPath => errors.push(FlowError::new(
                            format!("steps[{node}].{key}"),
                            format!(
                                "leads back to `{}` without waiting for the customer (add a menu, collect, faq or \
                                 decision_hook step to the loop)",
                                self.steps[target].id()
                            ),
                        )),
                        Mark::Done => {}
                    }
                } else {
                    mark[*node] = Mark::Done;
                    stack.pop();
                }
            }
        }
        errors
    }

    /// Validates and builds the regexes once, for the engine.
    pub fn compile(self) -> Result<CompiledFlow, Vec<FlowError>> {
        self.validate()?;
        let mut faq = HashMap::new();
        let mut fields = HashMap::new();
        for (i, step) in self.steps.iter().enumerate() {
            match step {
                Step::Faq(s) => {
                    for (j, entry) in s.entries.iter().enumerate() {
                        if let Some(source) = &entry.regex {
                            let regex = build_regex(source)
                                .map_err(|m| vec![FlowError::new(format!("steps[{i}].entries[{j}].regex"), m)])?;
                            faq.insert((i, j), regex);
                        }
                    }
                }
                Step::Collect(s) => {
                    for (j, field) in s.fields.iter().enumerate() {
                        if let Validator::Regex(source) = &field.validate {
                            let regex = build_regex(source).map_err(|m| {
                                vec![FlowError::new(format!("steps[{i}].fields[{j}].validate.regex"), m)]
                            })?;
                            fields.insert((i, j), regex);
                        }
                    }
                }
                _ => {}
            }
        }
        let index = self.steps.iter().enumerate().map(|(i, s)| (s.id().clone(), i)).collect();
        Ok(CompiledFlow { flow: self, index, faq_regexes: faq, field_regexes: fields })
    }
}

/// A validated flow with its regexes built: what [`super::step`] runs. Build one per saved flow
/// and keep it (building compiles every regex).
#[derive(Debug, Clone)]
pub struct CompiledFlow {
    flow: Flow,
    index: HashMap<StepId, usize>,
    /// (step index, entry index) → regex.
    faq_regexes: HashMap<(usize, usize), Regex>,
    /// (step index, field index) → regex.
    field_regexes: HashMap<(usize, usize), Regex>,
}

impl CompiledFlow {
    /// Parses, validates and compiles in one go.
    pub fn parse(json: &str) -> Result<CompiledFlow, Vec<FlowError>> {
        Flow::parse(json)?.compile()
    }

    pub fn flow(&self) -> &Flow {
        &self.flow
    }

    pub fn position(&self, id: &StepId) -> Option<usize> {
        self.index.get(id).copied()
    }

    pub(crate) fn step_at(&self, i: usize) -> &Step {
        &self.flow.steps[i]
    }

    pub(crate) fn faq_regex(&self, step: usize, entry: usize) -> Option<&Regex> {
        self.faq_regexes.get(&(step, entry))
    }

    pub(crate) fn field_regex(&self, step: usize, field: usize) -> Option<&Regex> {
        self.field_regexes.get(&(step, field))
    }
}

// ---- turning serde's errors into paths ----

/// serde reports `unknown field `x`` / `missing field `x`` without saying where; this finds the
/// innermost part of the document that fails on its own and names it.
fn locate_flow_errors(value: &Value, whole: serde_json::Error) -> Vec<FlowError> {
    let mut errors = Vec::new();
    let Some(object) = value.as_object() else {
        return vec![FlowError::new("", "a flow is a JSON object")];
    };
    if let Some(steps) = object.get("steps") {
        match steps.as_array() {
            Some(steps) => {
                for (i, step) in steps.iter().enumerate() {
                    locate_step_error(step, &format!("steps[{i}]"), &mut errors);
                }
            }
            None => errors.push(FlowError::new("steps", "must be an array of steps")),
        }
    }
    if let Some(calendars) = object.get("calendars").and_then(Value::as_object) {
        for (name, calendar) in calendars {
            let at = format!("calendars.{name}");
            check_node::<BusinessHours>(calendar, &at, &mut errors, |v, at, errors| {
                check_each::<super::hours::WeeklyHours>(v, "weekly", at, errors);
                check_each::<super::hours::Holiday>(v, "holidays", at, errors);
            });
        }
    }
    if let Some(handoff) = object.get("handoff") {
        check_node::<HandoffRules>(handoff, "handoff", &mut errors, |_, _, _| {});
    }
    if errors.is_empty() {
        errors.push(refine("", &whole.to_string()));
    }
    errors
}

fn locate_step_error(step: &Value, at: &str, errors: &mut Vec<FlowError>) {
    let Some(object) = step.as_object() else {
        errors.push(FlowError::new(at, "a step is a JSON object"));
        return;
    };
    let kind = match object.get("type") {
        None => {
            errors.push(FlowError::new(format!("{at}.type"), format!("missing; one of {}", STEP_TYPES.join(", "))));
            return;
        }
        Some(Value::String(kind)) if STEP_TYPES.contains(&kind.as_str()) => kind.as_str(),
        Some(other) => {
            errors.push(FlowError::new(
                format!("{at}.type"),
                format!("unknown step type {other}; expected one of {}", STEP_TYPES.join(", ")),
            ));
            return;
        }
    };
    check_node::<Step>(step, at, errors, |v, at, errors| match kind {
        "menu" => {
            check_each_with::<MenuOption>(v, "options", at, errors, |option, at, errors| {
                check_child::<RouteSpec>(option, "route", at, errors);
            });
        }
        "faq" => check_each::<FaqEntry>(v, "entries", at, errors),
        "collect" => check_each_with::<CollectField>(v, "fields", at, errors, |field, at, errors| {
            check_child::<Validator>(field, "validate", at, errors);
        }),
        "handoff" => check_child::<RouteSpec>(v, "route", at, errors),
        _ => {}
    });
}

/// Deserializes `value` as `T`; on failure first lets `children` look for a more precise
/// culprit, and reports the failure here only if none was found.
fn check_node<T: DeserializeOwned>(
    value: &Value,
    at: &str,
    errors: &mut Vec<FlowError>,
    children: impl FnOnce(&Value, &str, &mut Vec<FlowError>),
) {
    if let Err(e) = serde_json::from_value::<T>(value.clone()) {
        let before = errors.len();
        children(value, at, errors);
        if errors.len() == before {
            errors.push(refine(at, &e.to_string()));
        }
    }
}

fn check_child<T: DeserializeOwned>(parent: &Value, key: &str, at: &str, errors: &mut Vec<FlowError>) {
    if let Some(child) = parent.get(key) {
        check_node::<T>(child, &format!("{at}.{key}"), errors, |_, _, _| {});
    }
}

fn check_each<T: DeserializeOwned>(parent: &Value, key: &str, at: &str, errors: &mut Vec<FlowError>) {
    check_each_with::<T>(parent, key, at, errors, |_, _, _| {});
}

fn check_each_with<T: DeserializeOwned>(
    parent: &Value,
    key: &str,
    at: &str,
    errors: &mut Vec<FlowError>,
    children: impl Fn(&Value, &str, &mut Vec<FlowError>),
) {
    if let Some(items) = parent.get(key).and_then(Value::as_array) {
        for (i, item) in items.iter().enumerate() {
            check_node::<T>(item, &format!("{at}.{key}[{i}]"), errors, &children);
        }
    }
}

/// `unknown field `x`, expected …` at `steps[2]` → path `steps[2].x`.
fn refine(at: &str, message: &str) -> FlowError {
    for prefix in ["unknown field `", "missing field `"] {
        if let Some(rest) = message.strip_prefix(prefix) {
            if let Some(name) = rest.split('`').next() {
                let path = if at.is_empty() { name.to_string() } else { format!("{at}.{name}") };
                return FlowError::new(path, message);
            }
        }
    }
    FlowError::new(at, message)
}
