//! Business hours: a weekly schedule in a named IANA time zone plus holidays, and the two
//! questions the flow asks of it — is the business open at this instant ([`BusinessHours::is_open`]),
//! and when does it open next ([`BusinessHours::next_opening`]).
//!
//! Schedules are wall-clock times in the calendar's zone, so "09:00–17:00" means nine to five
//! local time on both sides of a daylight-saving change. On the spring-forward day a range that
//! starts inside the skipped hour opens when the clock jumps; on the fall-back day local times in
//! the repeated hour are open (or closed) both times round. Instants come in as Unix
//! milliseconds; this module reads no clock.

use std::collections::HashMap;
use std::str::FromStr;

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, Offset, TimeZone, Timelike, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use super::flow::FlowError;
use crate::time::Millis;

/// How far ahead [`BusinessHours::next_opening`] looks before answering `None`. Two years covers
/// any holiday list a tenant keeps.
const SEARCH_DAYS: u64 = 732;

/// 0001-01-01T00:00:00Z and 9999-12-31T23:59:59.999Z: the instants this module answers for.
const MIN_SUPPORTED_MS: Millis = -62_135_596_800_000;
const MAX_SUPPORTED_MS: Millis = 253_402_300_799_999;

const MINUTE_MS: i64 = 60_000;
const DAY_MS: i64 = 86_400_000;

/// One calendar. JSON:
///
/// ```json
/// {"time_zone": "Europe/Berlin",
///  "weekly": [{"days": ["mon","tue","wed","thu","fri"], "from": "09:00", "to": "17:30"}],
///  "holidays": [{"date": "2025-12-24", "open": [{"from": "09:00", "to": "12:00"}]},
///               {"date": "12-25", "name": "Christmas"}]}
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BusinessHours {
    /// An IANA zone name (`Europe/Berlin`, `America/New_York`, `Asia/Shanghai`, `UTC`).
    pub time_zone: String,
    /// Opening ranges per weekday. Several entries may name the same day (split shifts).
    #[serde(default)]
    pub weekly: Vec<WeeklyHours>,
    /// Dates whose schedule replaces the weekly one.
    #[serde(default)]
    pub holidays: Vec<Holiday>,
}

/// `{"days": ["mon", "fri"], "from": "09:00", "to": "17:00"}`: open from `from` (inclusive) to
/// `to` (exclusive) on each listed day. `to` may be `24:00`; a range may not cross midnight
/// (write `22:00–24:00` and `00:00–02:00` instead).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WeeklyHours {
    pub days: Vec<Weekday>,
    pub from: String,
    pub to: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Weekday {
    Mon,
    Tue,
    Wed,
    Thu,
    Fri,
    Sat,
    Sun,
}

impl Weekday {
    fn index(self) -> usize {
        self as usize
    }
}

/// A date with its own schedule. `date` is `YYYY-MM-DD` (that day only) or `MM-DD` (every year;
/// a dated entry for the same day wins). Without `open` the business is closed all day; with it,
/// those ranges are the day's only opening hours (a partial-day holiday such as Christmas Eve
/// morning).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Holiday {
    pub date: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub open: Vec<TimeRange>,
}

/// `{"from": "09:00", "to": "12:00"}`, same rules as [`WeeklyHours`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimeRange {
    pub from: String,
    pub to: String,
}

/// Minutes since local midnight, `from` inclusive, `to` exclusive.
type Range = (u32, u32);

/// `HH:MM` → minutes after midnight; `24:00` is accepted as the end of the day.
fn parse_clock(s: &str) -> Option<u32> {
    let (h, m) = s.split_once(':')?;
    if h.len() != 2 || m.len() != 2 || !h.bytes().chain(m.bytes()).all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    match (h, m) {
        (24, 0) => Some(24 * 60),
        (0..=23, 0..=59) => Some(h * 60 + m),
        _ => None,
    }
}

fn parse_range(from: &str, to: &str) -> Option<Range> {
    let (f, t) = (parse_clock(from)?, parse_clock(to)?);
    (f < t).then_some((f, t))
}

/// The two spellings of a holiday date.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum HolidayDate {
    Once(NaiveDate),
    Yearly { month: u32, day: u32 },
}

fn parse_holiday_date(s: &str) -> Option<HolidayDate> {
    match s.len() {
        10 => NaiveDate::parse_from_str(s, "%Y-%m-%d").ok().map(HolidayDate::Once),
        5 => {
            let (m, d) = s.split_once('-')?;
            if !m.bytes().chain(d.bytes()).all(|b| b.is_ascii_digit()) {
                return None;
            }
            let (month, day): (u32, u32) = (m.parse().ok()?, d.parse().ok()?);
            // 2000 is a leap year, so 02-29 is accepted (and applies in leap years only).
            NaiveDate::from_ymd_opt(2000, month, day).map(|_| HolidayDate::Yearly { month, day })
        }
        _ => None,
    }
}

/// A calendar with its strings parsed, built per call (calendars are small).
struct Schedule {
    tz: Tz,
    weekly: [Vec<Range>; 7],
    once: HashMap<NaiveDate, Vec<Range>>,
    yearly: HashMap<(u32, u32), Vec<Range>>,
}

impl Schedule {
    fn ranges_on(&self, date: NaiveDate) -> &[Range] {
        if let Some(r) = self.once.get(&date) {
            return r;
        }
        if let Some(r) = self.yearly.get(&(date.month(), date.day())) {
            return r;
        }
        &self.weekly[date.weekday().num_days_from_monday() as usize]
    }

    /// The wall-clock time at `at`; `None` outside years 1–9999 (chrono's conversions panic near
    /// the ends of their range, and no business hours are asked about there).
    fn local(&self, at: Millis) -> Option<NaiveDateTime> {
        if !(MIN_SUPPORTED_MS..=MAX_SUPPORTED_MS).contains(&at) {
            return None;
        }
        let utc = DateTime::<Utc>::from_timestamp_millis(at)?.naive_utc();
        let offset = self.tz.offset_from_utc_datetime(&utc).fix();
        utc.checked_add_signed(chrono::Duration::seconds(i64::from(offset.local_minus_utc())))
    }

    fn is_open(&self, at: Millis) -> bool {
        let Some(local) = self.local(at) else {
            return false;
        };
        let minute = local.hour() * 60 + local.minute();
        self.ranges_on(local.date()).iter().any(|&(from, to)| from <= minute && minute < to)
    }

    /// The first instant whose local wall-clock time is `local` or later: the earlier of two
    /// instants in a fall-back hour, the end of the gap in a spring-forward hour.
    fn earliest_instant(&self, local: NaiveDateTime) -> Option<Millis> {
        // Gaps are at most a few hours in every zone; scan a day to be safe.
        for minutes in 0..=24 * 60 {
            let candidate = local.checked_add_signed(chrono::Duration::minutes(minutes))?;
            if let Some(t) = self.tz.from_local_datetime(&candidate).earliest() {
                return Some(t.timestamp_millis());
            }
        }
        None
    }
}

impl BusinessHours {
    fn schedule(&self) -> Option<Schedule> {
        let tz = Tz::from_str(&self.time_zone).ok()?;
        let mut weekly: [Vec<Range>; 7] = Default::default();
        for entry in &self.weekly {
            if let Some(range) = parse_range(&entry.from, &entry.to) {
                for day in &entry.days {
                    weekly[day.index()].push(range);
                }
            }
        }
        let mut once = HashMap::new();
        let mut yearly = HashMap::new();
        for holiday in &self.holidays {
            let ranges: Vec<Range> = holiday.open.iter().filter_map(|r| parse_range(&r.from, &r.to)).collect();
            match parse_holiday_date(&holiday.date) {
                Some(HolidayDate::Once(date)) => {
                    once.insert(date, ranges);
                }
                Some(HolidayDate::Yearly { month, day }) => {
                    yearly.insert((month, day), ranges);
                }
                None => {}
            }
        }
        Some(Schedule { tz, weekly, once, yearly })
    }

    /// Whether the business is open at `now` (Unix ms). A calendar that does not validate (an
    /// unknown zone) is always closed; [`BusinessHours::validate`] keeps such calendars out of
    /// saved flows.
    pub fn is_open(&self, now: Millis) -> bool {
        self.schedule().is_some_and(|s| s.is_open(now))
    }

    /// The earliest instant at or after `now` at which the business is open: `now` itself when
    /// open, `None` when it does not open within two years (an empty schedule).
    pub fn next_opening(&self, now: Millis) -> Option<Millis> {
        let schedule = self.schedule()?;
        if schedule.is_open(now) {
            return Some(now);
        }
        let today = schedule.local(now)?.date();
        for offset in 0..SEARCH_DAYS {
            // Checked: near chrono's last representable date there is no "next day".
            let date = today.checked_add_days(chrono::Days::new(offset))?;
            let day_start = schedule.earliest_instant(date.and_hms_opt(0, 0, 0)?)?;
            let next_day_start = schedule.earliest_instant(date.succ_opt()?.and_hms_opt(0, 0, 0)?)?;
            if next_day_start - day_start != DAY_MS {
                // A day with a clock change: the mapping from wall clock to instants is not a
                // shift, and a range can even reopen when the clock falls back. Walk the day a
                // minute at a time (every zone changes offset on whole minutes).
                let mut at = day_start.max((now.div_euclid(MINUTE_MS) + 1) * MINUTE_MS);
                while at < next_day_start {
                    if schedule.is_open(at) {
                        return Some(at);
                    }
                    at += MINUTE_MS;
                }
                continue;
            }
            let mut starts: Vec<u32> = schedule.ranges_on(date).iter().map(|r| r.0).collect();
            starts.sort_unstable();
            for from in starts {
                let candidate = day_start + i64::from(from) * MINUTE_MS;
                if candidate > now && schedule.is_open(candidate) {
                    return Some(candidate);
                }
            }
        }
        None
    }

    /// `at` as wall-clock `YYYY-MM-DD HH:MM` in the calendar's zone (for `{next_opening}` in
    /// replies).
    pub fn format_local(&self, at: Millis) -> Option<String> {
        let local = self.schedule()?.local(at)?;
        Some(local.format("%Y-%m-%d %H:%M").to_string())
    }

    /// Every problem in this calendar, with paths under `path` (e.g. `calendars.support`).
    pub fn validate(&self, path: &str) -> Vec<FlowError> {
        let mut errors = Vec::new();
        if Tz::from_str(&self.time_zone).is_err() {
            errors.push(FlowError::new(
                format!("{path}.time_zone"),
                format!("unknown time zone `{}`; use an IANA name such as Europe/Berlin", self.time_zone),
            ));
        }
        for (i, entry) in self.weekly.iter().enumerate() {
            let at = format!("{path}.weekly[{i}]");
            if entry.days.is_empty() {
                errors.push(FlowError::new(format!("{at}.days"), "list at least one day"));
            }
            check_range(&entry.from, &entry.to, &at, &mut errors);
        }
        let mut seen: HashMap<HolidayDate, usize> = HashMap::new();
        for (i, holiday) in self.holidays.iter().enumerate() {
            let at = format!("{path}.holidays[{i}]");
            match parse_holiday_date(&holiday.date) {
                None => errors.push(FlowError::new(
                    format!("{at}.date"),
                    format!("`{}` is not a date; use YYYY-MM-DD, or MM-DD for every year", holiday.date),
                )),
                Some(date) => {
                    if let Some(first) = seen.insert(date, i) {
                        errors.push(FlowError::new(
                            format!("{at}.date"),
                            format!("`{}` is already listed at {path}.holidays[{first}]", holiday.date),
                        ));
                    }
                }
            }
            for (j, range) in holiday.open.iter().enumerate() {
                check_range(&range.from, &range.to, &format!("{at}.open[{j}]"), &mut errors);
            }
        }
        errors
    }
}

fn check_range(from: &str, to: &str, at: &str, errors: &mut Vec<FlowError>) {
    let (f, t) = (parse_clock(from), parse_clock(to));
    if f.is_none() || f == Some(24 * 60) {
        errors
            .push(FlowError::new(format!("{at}.from"), format!("`{from}` is not a time of day (HH:MM, 00:00–23:59)")));
    }
    match t {
        None => {
            errors.push(FlowError::new(format!("{at}.to"), format!("`{to}` is not a time of day (HH:MM, up to 24:00)")))
        }
        Some(t) if f.is_some_and(|f| f >= t) => errors.push(FlowError::new(
            format!("{at}.to"),
            format!("`{to}` is not after `{from}`; split ranges that cross midnight in two"),
        )),
        Some(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Unix ms of a wall-clock time in `zone` (the earlier one if ambiguous).
    fn local_ms(zone: &str, y: i32, mo: u32, d: u32, h: u32, mi: u32) -> Millis {
        let tz = Tz::from_str(zone).expect("zone");
        tz.with_ymd_and_hms(y, mo, d, h, mi, 0).earliest().expect("exists").timestamp_millis()
    }

    fn utc_ms(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> Millis {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).single().expect("valid").timestamp_millis()
    }

    fn calendar(json: &str) -> BusinessHours {
        let hours: BusinessHours = serde_json::from_str(json).expect("calendar parses");
        assert_eq!(hours.validate("cal"), vec![]);
        hours
    }

    fn berlin_nine_to_five() -> BusinessHours {
        calendar(
            r#"{"time_zone":"Europe/Berlin","weekly":[
                {"days":["mon","tue","wed","thu","fri","sat","sun"],"from":"09:00","to":"17:00"}]}"#,
        )
    }

    #[test]
    fn berlin_hours_follow_the_wall_clock_across_both_dst_changes() {
        let hours = berlin_nine_to_five();
        // Winter (CET, UTC+1): 09:00 local is 08:00 UTC.
        assert!(!hours.is_open(utc_ms(2025, 3, 29, 7, 59)));
        assert!(hours.is_open(utc_ms(2025, 3, 29, 8, 0)));
        // Sunday 30 March 2025 clocks go forward at 02:00; 09:00 CEST is 07:00 UTC.
        assert!(hours.is_open(utc_ms(2025, 3, 30, 7, 0)));
        assert!(!hours.is_open(utc_ms(2025, 3, 30, 6, 59)));
        assert!(!hours.is_open(utc_ms(2025, 3, 30, 15, 0)), "17:00 CEST is 15:00 UTC: closed");
        // Sunday 26 October 2025 clocks go back at 03:00; 09:00 CET is 08:00 UTC again.
        assert!(!hours.is_open(utc_ms(2025, 10, 26, 7, 30)));
        assert!(hours.is_open(utc_ms(2025, 10, 26, 8, 0)));
        assert!(hours.is_open(utc_ms(2025, 10, 26, 15, 59)));
        assert!(!hours.is_open(utc_ms(2025, 10, 26, 16, 0)));
        // The day before, still summer time.
        assert!(hours.is_open(utc_ms(2025, 10, 25, 7, 0)));
    }

    #[test]
    fn next_opening_lands_on_local_nine_across_dst() {
        let hours = berlin_nine_to_five();
        // Saturday 29 March, 20:00 CET → Sunday 30 March 09:00 CEST = 07:00 UTC (23 h later, not 24).
        let evening = local_ms("Europe/Berlin", 2025, 3, 29, 20, 0);
        assert_eq!(hours.next_opening(evening), Some(utc_ms(2025, 3, 30, 7, 0)));
        // Saturday 25 October, 20:00 CEST → Sunday 26 October 09:00 CET = 08:00 UTC.
        let evening = local_ms("Europe/Berlin", 2025, 10, 25, 20, 0);
        assert_eq!(hours.next_opening(evening), Some(utc_ms(2025, 10, 26, 8, 0)));
        // Open now → now.
        let noon = local_ms("Europe/Berlin", 2025, 10, 26, 12, 0);
        assert_eq!(hours.next_opening(noon), Some(noon));
        assert_eq!(hours.format_local(utc_ms(2025, 3, 30, 7, 0)).as_deref(), Some("2025-03-30 09:00"));
    }

    #[test]
    fn new_york_weekdays_across_the_march_change() {
        let hours = calendar(
            r#"{"time_zone":"America/New_York","weekly":[
                {"days":["mon","tue","wed","thu","fri"],"from":"08:00","to":"12:00"},
                {"days":["mon","tue","wed","thu","fri"],"from":"13:00","to":"18:00"}]}"#,
        );
        // Friday 7 March 2025 (EST, UTC-5) 18:30 → Monday 10 March 08:00 EDT (UTC-4) = 12:00 UTC.
        let friday_evening = local_ms("America/New_York", 2025, 3, 7, 18, 30);
        assert!(!hours.is_open(friday_evening));
        assert_eq!(hours.next_opening(friday_evening), Some(utc_ms(2025, 3, 10, 12, 0)));
        // Lunch break, then the afternoon range.
        let lunch = local_ms("America/New_York", 2025, 3, 10, 12, 15);
        assert!(!hours.is_open(lunch));
        assert_eq!(hours.next_opening(lunch), Some(utc_ms(2025, 3, 10, 17, 0)));
    }

    #[test]
    fn a_range_starting_in_the_skipped_hour_opens_when_the_clock_jumps() {
        let hours =
            calendar(r#"{"time_zone":"Europe/Berlin","weekly":[{"days":["sun"],"from":"02:30","to":"04:00"}]}"#);
        // 30 March 2025: 02:00 CET jumps to 03:00 CEST at 01:00 UTC. 03:00 CEST is in the range.
        let before = utc_ms(2025, 3, 30, 0, 0);
        assert_eq!(hours.next_opening(before), Some(utc_ms(2025, 3, 30, 1, 0)));
        assert!(hours.is_open(utc_ms(2025, 3, 30, 1, 0)));
    }

    #[test]
    fn holidays_close_the_day_or_replace_its_hours() {
        let hours = calendar(
            r#"{"time_zone":"Europe/Berlin",
                "weekly":[{"days":["mon","tue","wed","thu","fri"],"from":"09:00","to":"17:00"}],
                "holidays":[{"date":"2025-12-24","name":"Christmas Eve","open":[{"from":"09:00","to":"12:00"}]},
                            {"date":"12-25"},{"date":"12-26"}]}"#,
        );
        // Wednesday 24 December: open in the morning only.
        assert!(hours.is_open(local_ms("Europe/Berlin", 2025, 12, 24, 10, 0)));
        assert!(!hours.is_open(local_ms("Europe/Berlin", 2025, 12, 24, 13, 0)));
        // Thursday 25 and Friday 26 (yearly entries) closed; next opening Monday 29 December 09:00.
        let xmas = local_ms("Europe/Berlin", 2025, 12, 25, 10, 0);
        assert!(!hours.is_open(xmas));
        assert_eq!(hours.next_opening(xmas), Some(local_ms("Europe/Berlin", 2025, 12, 29, 9, 0)));
        // The yearly entry applies in other years too: Friday 25 December 2026.
        assert!(!hours.is_open(local_ms("Europe/Berlin", 2026, 12, 25, 10, 0)));
        assert!(hours.is_open(local_ms("Europe/Berlin", 2026, 12, 28, 10, 0)));
    }

    #[test]
    fn instants_at_the_edge_of_time_do_not_panic() {
        let hours = berlin_nine_to_five();
        for at in
            [i64::MIN, i64::MAX, -8_334_601_228_800_000, 8_210_266_876_799_999, MAX_SUPPORTED_MS, MIN_SUPPORTED_MS]
        {
            let _ = hours.is_open(at);
            let _ = hours.next_opening(at);
            let _ = hours.format_local(at);
        }
    }

    #[test]
    fn an_empty_schedule_never_opens() {
        let hours = calendar(r#"{"time_zone":"UTC"}"#);
        assert!(!hours.is_open(0));
        assert_eq!(hours.next_opening(0), None);
    }

    #[test]
    fn validation_names_each_bad_value() {
        let hours: BusinessHours = serde_json::from_str(
            r#"{"time_zone":"Mars/Olympus","weekly":[{"days":[],"from":"9:00","to":"17:00"},
                {"days":["mon"],"from":"18:00","to":"02:00"}],
                "holidays":[{"date":"2025-02-30"},{"date":"12-25"},{"date":"12-25"}]}"#,
        )
        .expect("parses");
        let paths: Vec<String> = hours.validate("calendars.main").into_iter().map(|e| e.path).collect();
        assert_eq!(
            paths,
            [
                "calendars.main.time_zone",
                "calendars.main.weekly[0].days",
                "calendars.main.weekly[0].from",
                "calendars.main.weekly[1].to",
                "calendars.main.holidays[0].date",
                "calendars.main.holidays[2].date",
            ]
        );
        assert!(!hours.is_open(0), "an unknown zone is always closed");
    }

    #[test]
    fn clock_parsing() {
        assert_eq!(parse_clock("00:00"), Some(0));
        assert_eq!(parse_clock("24:00"), Some(1440));
        assert_eq!(parse_clock("23:59"), Some(1439));
        assert_eq!(parse_clock("24:01"), None);
        assert_eq!(parse_clock("9:00"), None);
        assert_eq!(parse_holiday_date("02-29"), Some(HolidayDate::Yearly { month: 2, day: 29 }));
        assert_eq!(parse_holiday_date("13-01"), None);
    }
}
