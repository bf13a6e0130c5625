//! CronJob schedules: parsing and time arithmetic (pure).
//!
//! The syntax is the one Kubernetes accepts (robfig/cron's standard parser): five fields
//! `minute hour day-of-month month day-of-week`, each a comma list of `*`, `?`, `N`, `N-M`,
//! optionally `/step` (`N/step` means `N-max/step`), with month names `jan`..`dec` and day
//! names `sun`..`sat`; the descriptors `@yearly` (`@annually`), `@monthly`, `@weekly`,
//! `@daily` (`@midnight`), `@hourly` and `@every <duration>`; and an optional `CRON_TZ=Zone `
//! or `TZ=Zone ` prefix. Day of week 0 is Sunday; 7 is Sunday too (as in Vixie cron; the API
//! rejects it, as Kubernetes does, so only schedules stored by other means can carry it).
//!
//! # Semantics
//!
//! * **Day of month and day of week.** When both are restricted (neither starts with `*` or
//!   `?`, a step of 2 or more counting as restricted), a day matches if *either* matches, as
//!   in every cron; otherwise both must match.
//! * **Time zones.** A time matches when its wall-clock reading in the schedule's zone
//!   matches (robfig/cron's rule, so Kubernetes'): a wall time skipped by a spring-forward
//!   transition never fires, and one repeated by a fall-back transition fires at both of its
//!   instants. The zone is the `CRON_TZ=`/`TZ=` prefix, else the CronJob's `spec.timeZone`,
//!   else UTC (Kubernetes uses the controller manager's local zone; skiff uses UTC so a
//!   schedule means the same on every host; `Local` means UTC too).
//!
//! The calendar search is done by the `cron` crate, which wants a seconds field first and
//! numbers days of the week 1 (Sunday) to 7, and requires both day fields to match. Each
//! field is therefore parsed here into the set of values it denotes and handed to the crate
//! as an explicit list, and the either-day rule becomes two crate schedules whose times are
//! merged.

use std::collections::BTreeSet;
use std::fmt;

use chrono::{DateTime, Duration, NaiveDateTime, Offset, TimeZone, Utc};
use chrono_tz::Tz;

/// A field of a five-field schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    /// 0-59.
    Minute,
    /// 0-23.
    Hour,
    /// 1-31.
    DayOfMonth,
    /// 1-12 or `jan`..`dec`.
    Month,
    /// 0-6 (7 is Sunday too) or `sun`..`sat`.
    DayOfWeek,
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Field::Minute => "minute",
            Field::Hour => "hour",
            Field::DayOfMonth => "day of month",
            Field::Month => "month",
            Field::DayOfWeek => "day of week",
        })
    }
}

const FIELDS: [Field; 5] = [
    Field::Minute,
    Field::Hour,
    Field::DayOfMonth,
    Field::Month,
    Field::DayOfWeek,
];

const MONTH_NAMES: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];
const DAY_NAMES: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

impl Field {
    /// The range `*` stands for.
    fn bounds(self) -> (u32, u32) {
        match self {
            Field::Minute => (0, 59),
            Field::Hour => (0, 23),
            Field::DayOfMonth => (1, 31),
            Field::Month => (1, 12),
            Field::DayOfWeek => (0, 6),
        }
    }

    /// The largest value accepted (7 is Sunday again in the day of week).
    fn limit(self) -> u32 {
        match self {
            Field::DayOfWeek => 7,
            other => other.bounds().1,
        }
    }

    fn name_value(self, name: &str) -> Option<u32> {
        let lower = name.to_ascii_lowercase();
        let (names, first): (&[&str], u32) = match self {
            Field::Month => (&MONTH_NAMES, 1),
            Field::DayOfWeek => (&DAY_NAMES, 0),
            _ => return None,
        };
        names
            .iter()
            .position(|n| *n == lower)
            .map(|i| i as u32 + first)
    }
}

/// Why a schedule was refused.
#[derive(Debug, thiserror::Error)]
pub enum ScheduleError {
    /// Nothing but spaces.
    #[error("empty schedule")]
    Empty,
    /// Not five fields.
    #[error(
        "expected 5 fields (minute hour day-of-month month day-of-week), found {found}: {schedule:?}"
    )]
    FieldCount {
        /// How many there were.
        found: usize,
        /// The schedule without its zone prefix.
        schedule: String,
    },
    /// An `@` word that is not a known descriptor.
    #[error(
        "unknown descriptor {0:?} (expected @yearly, @annually, @monthly, @weekly, @daily, @midnight, @hourly or @every <duration>)"
    )]
    UnknownDescriptor(String),
    /// `@every` with a duration that does not parse.
    #[error("invalid duration {0:?} in @every (expected for example 90s, 5m or 1h30m)")]
    InvalidDuration(String),
    /// A zone chrono-tz does not know.
    #[error("unknown time zone {0:?}")]
    UnknownTimeZone(String),
    /// A field with no values.
    #[error("the {0} field is empty")]
    EmptyField(Field),
    /// A value that is neither a number nor a name of the field.
    #[error("{field}: {value:?} is not a number or a name")]
    NotANumber {
        /// The field.
        field: Field,
        /// The offending text.
        value: String,
    },
    /// A value outside the field's range.
    #[error("{field}: {value} is outside {min}-{max}")]
    OutOfRange {
        /// The field.
        field: Field,
        /// The value.
        value: u32,
        /// Smallest allowed.
        min: u32,
        /// Largest allowed.
        max: u32,
    },
    /// `N-M` with `N > M`.
    #[error("{field}: range {start}-{end} runs backwards")]
    Backwards {
        /// The field.
        field: Field,
        /// Start of the range.
        start: u32,
        /// End of the range.
        end: u32,
    },
    /// `/0`.
    #[error("{field}: the step in {expr:?} must be at least 1")]
    ZeroStep {
        /// The field.
        field: Field,
        /// The list element.
        expr: String,
    },
    /// More than one `-` or `/` in a list element.
    #[error("{field}: {expr:?} is malformed")]
    Malformed {
        /// The field.
        field: Field,
        /// The list element.
        expr: String,
    },
    /// The translated expression was refused by the `cron` crate (a bug if it happens).
    #[error("the cron library refused {expression:?}: {source}")]
    Library {
        /// The crate expression.
        expression: String,
        /// The crate's error.
        source: cron::error::Error,
    },
}

/// A parsed schedule in its time zone.
#[derive(Debug, Clone)]
pub struct Schedule {
    zone: Tz,
    rule: Rule,
}

#[derive(Debug, Clone)]
enum Rule {
    /// Times matching any of these (two when either day field may match).
    Calendar(Vec<cron::Schedule>),
    /// `@every`: a fixed delay, whole seconds, at least one.
    Every(Duration),
}

/// The scheduled times missed in a window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Missed {
    /// The most recent of them.
    pub latest: DateTime<Utc>,
    /// How many there were, estimated from the gap between the first two (exact for evenly
    /// spaced schedules such as `*/5 * * * *`), so that it is cheap however long the window.
    pub count: i64,
}

/// Parses a time zone name (IANA, as `spec.timeZone`); `UTC` and `Local` are UTC.
pub fn parse_zone(name: &str) -> Result<Tz, ScheduleError> {
    if name == "UTC" || name.eq_ignore_ascii_case("local") {
        return Ok(Tz::UTC);
    }
    name.parse::<Tz>()
        .map_err(|_| ScheduleError::UnknownTimeZone(name.to_string()))
}

impl Schedule {
    /// Parses `schedule` (the CronJob's `spec.schedule`), in `time_zone` (its `spec.timeZone`)
    /// unless the schedule names a zone itself.
    ///
    /// # Errors
    ///
    /// A [`ScheduleError`] saying what is wrong, and where.
    pub fn parse(schedule: &str, time_zone: Option<&str>) -> Result<Self, ScheduleError> {
        let mut text = schedule.trim();
        let mut zone = match time_zone {
            Some(name) => parse_zone(name)?,
            None => Tz::UTC,
        };
        if let Some(rest) = text
            .strip_prefix("CRON_TZ=")
            .or_else(|| text.strip_prefix("TZ="))
        {
            let (name, after) = rest.split_once(' ').unwrap_or((rest, ""));
            zone = parse_zone(name)?;
            text = after.trim();
        }
        if text.is_empty() {
            return Err(ScheduleError::Empty);
        }
        let standard = match text {
            "@yearly" | "@annually" => "0 0 1 1 *",
            "@monthly" => "0 0 1 * *",
            "@weekly" => "0 0 * * 0",
            "@daily" | "@midnight" => "0 0 * * *",
            "@hourly" => "0 * * * *",
            every if every.starts_with("@every ") => {
                let delay = parse_go_duration(every["@every ".len()..].trim())?;
                return Ok(Schedule {
                    zone,
                    rule: Rule::Every(delay),
                });
            }
            other if other.starts_with('@') => {
                return Err(ScheduleError::UnknownDescriptor(other.to_string()));
            }
            other => other,
        };
        let parts: Vec<&str> = standard.split_whitespace().collect();
        if parts.len() != FIELDS.len() {
            return Err(ScheduleError::FieldCount {
                found: parts.len(),
                schedule: standard.to_string(),
            });
        }
        let mut sets = Vec::with_capacity(FIELDS.len());
        for (field, text) in FIELDS.iter().zip(&parts) {
            sets.push(parse_field(*field, text)?);
        }
        let [minute, hour, dom, month, dow] = <[(BTreeSet<u32>, bool); 5]>::try_from(sets)
            .unwrap_or_else(|_| unreachable!("five fields were parsed"));
        let all_dom = (1..=31).collect();
        let all_dow = (0..=6).collect();
        // Both day fields restricted: a day matching either one matches.
        let day_pairs: Vec<(&BTreeSet<u32>, &BTreeSet<u32>)> = if !dom.1 && !dow.1 {
            vec![(&dom.0, &all_dow), (&all_dom, &dow.0)]
        } else {
            vec![(&dom.0, &dow.0)]
        };
        let mut schedules = Vec::new();
        for (days, weekdays) in day_pairs {
            let expression = format!(
                "0 {} {} {} {} {}",
                render(&minute.0, Field::Minute, 0),
                render(&hour.0, Field::Hour, 0),
                render(days, Field::DayOfMonth, 0),
                render(&month.0, Field::Month, 0),
                // The crate numbers days of the week from 1 (Sunday).
                render(weekdays, Field::DayOfWeek, 1),
            );
            let parsed =
                expression
                    .parse::<cron::Schedule>()
                    .map_err(|source| ScheduleError::Library {
                        expression: expression.clone(),
                        source,
                    })?;
            schedules.push(parsed);
        }
        Ok(Schedule {
            zone,
            rule: Rule::Calendar(schedules),
        })
    }

    /// The zone the schedule is read in.
    pub fn zone(&self) -> Tz {
        self.zone
    }

    /// The first scheduled time strictly after `after`, or None if there is none (a schedule
    /// such as `0 0 30 2 *` never fires; the search ends in 2100).
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match &self.rule {
            Rule::Every(delay) => Some(whole_second(after) + *delay),
            Rule::Calendar(schedules) => schedules
                .iter()
                .filter_map(|s| next_in_zone(s, self.zone, after))
                .min(),
        }
    }

    /// The scheduled times in `(earliest, now]`: the latest and how many, or None if none.
    /// Only the latest is computed exactly; nothing enumerates the window, so a window of
    /// years costs the same as one of minutes.
    pub fn missed(&self, earliest: DateTime<Utc>, now: DateTime<Utc>) -> Option<Missed> {
        let first = self.next_after(earliest)?;
        if first > now {
            return None;
        }
        match &self.rule {
            Rule::Every(delay) => {
                let step = delay.num_seconds().max(1);
                let count = (now - first).num_seconds().div_euclid(step) + 1;
                Some(Missed {
                    latest: first + Duration::seconds(step * (count - 1)),
                    count,
                })
            }
            Rule::Calendar(schedules) => {
                let latest = schedules
                    .iter()
                    .filter_map(|s| latest_in_zone(s, self.zone, now))
                    .max()
                    .filter(|l| *l >= first)
                    .unwrap_or(first);
                let count = if latest == first {
                    1
                } else {
                    let gap = self
                        .next_after(first)
                        .map_or(1, |second| (second - first).num_seconds().max(1));
                    ((now - first).num_seconds() / gap + 1).max(2)
                };
                Some(Missed { latest, count })
            }
        }
    }
}

/// Parses one field into its values and whether it counts as unrestricted (`*` or `?`
/// without a step of 2 or more, as robfig/cron decides for the day rule).
fn parse_field(field: Field, text: &str) -> Result<(BTreeSet<u32>, bool), ScheduleError> {
    let mut values = BTreeSet::new();
    let mut star = false;
    let mut any = false;
    for expr in text.split(',').filter(|e| !e.is_empty()) {
        any = true;
        let (range, step) = match expr.split_once('/') {
            Some((_, step)) if step.contains('/') => {
                return Err(ScheduleError::Malformed {
                    field,
                    expr: expr.to_string(),
                });
            }
            Some((range, step)) => (range, Some(number(field, step)?)),
            None => (expr, None),
        };
        let (min, max) = field.bounds();
        let (start, end, whole) = if range == "*" || range == "?" {
            (min, max, true)
        } else {
            match range.split_once('-') {
                Some((_, b)) if b.contains('-') => {
                    return Err(ScheduleError::Malformed {
                        field,
                        expr: expr.to_string(),
                    });
                }
                Some((a, b)) => (value(field, a)?, value(field, b)?, false),
                None => {
                    let v = value(field, range)?;
                    (v, if step.is_some() { max.max(v) } else { v }, false)
                }
            }
        };
        if start > end {
            return Err(ScheduleError::Backwards { field, start, end });
        }
        let step = step.unwrap_or(1);
        if step == 0 {
            return Err(ScheduleError::ZeroStep {
                field,
                expr: expr.to_string(),
            });
        }
        star |= whole && step == 1;
        for v in (start..=end).step_by(step as usize) {
            values.insert(if field == Field::DayOfWeek { v % 7 } else { v });
        }
    }
    if !any {
        return Err(ScheduleError::EmptyField(field));
    }
    Ok((values, star))
}

fn number(field: Field, text: &str) -> Result<u32, ScheduleError> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ScheduleError::NotANumber {
            field,
            value: text.to_string(),
        });
    }
    text.parse().map_err(|_| ScheduleError::OutOfRange {
        field,
        value: u32::MAX,
        min: field.bounds().0,
        max: field.limit(),
    })
}

fn value(field: Field, text: &str) -> Result<u32, ScheduleError> {
    let v = match field.name_value(text) {
        Some(v) => v,
        None => number(field, text)?,
    };
    let (min, _) = field.bounds();
    if v < min || v > field.limit() {
        return Err(ScheduleError::OutOfRange {
            field,
            value: v,
            min,
            max: field.limit(),
        });
    }
    Ok(v)
}

/// A set as the crate reads it: `*` when it is the whole range, else a list (shifted by
/// `shift`, for the crate's day-of-week numbering).
fn render(values: &BTreeSet<u32>, field: Field, shift: u32) -> String {
    let (min, max) = field.bounds();
    if values.len() as u32 == max - min + 1 {
        return "*".to_string();
    }
    values
        .iter()
        .map(|v| (v + shift).to_string())
        .collect::<Vec<_>>()
        .join(",")
}

/// Go's `time.ParseDuration`, then robfig/cron's `Every`: at least a second, whole seconds.
fn parse_go_duration(text: &str) -> Result<Duration, ScheduleError> {
    let bad = || ScheduleError::InvalidDuration(text.to_string());
    let mut rest = text.strip_prefix('+').unwrap_or(text);
    if rest.is_empty() || rest.starts_with('-') {
        return Err(bad());
    }
    let mut nanos: f64 = 0.0;
    if rest != "0" {
        while !rest.is_empty() {
            let digits = rest
                .find(|c: char| !c.is_ascii_digit() && c != '.')
                .unwrap_or(rest.len());
            let amount: f64 = rest[..digits].parse().map_err(|_| bad())?;
            rest = &rest[digits..];
            let unit_len = rest
                .find(|c: char| c.is_ascii_digit() || c == '.')
                .unwrap_or(rest.len());
            let scale = match &rest[..unit_len] {
                "ns" => 1.0,
                "us" | "µs" | "μs" => 1e3,
                "ms" => 1e6,
                "s" => 1e9,
                "m" => 60e9,
                "h" => 3600e9,
                _ => return Err(bad()),
            };
            nanos += amount * scale;
            rest = &rest[unit_len..];
        }
    }
    let seconds = (nanos / 1e9).floor().max(1.0);
    if seconds > i64::MAX as f64 / 2.0 {
        return Err(bad());
    }
    Ok(Duration::seconds(seconds as i64))
}

fn whole_second(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp(t.timestamp(), 0).unwrap_or(t)
}

/// How far ahead a transition may repeat wall-clock times (no zone moves its clocks back by
/// more than this).
const FOLD_HORIZON: i64 = 3 * 3600;
/// Most candidates looked at in one search (a search crossing a one-hour fold of a
/// `* * * * *` schedule looks at about 120).
const SEARCH_LIMIT: usize = 4096;

fn offset_seconds(zone: Tz, at: DateTime<Utc>) -> i64 {
    i64::from(
        zone.offset_from_utc_datetime(&at.naive_utc())
            .fix()
            .local_minus_utc(),
    )
}

fn wall(zone: Tz, at: DateTime<Utc>) -> NaiveDateTime {
    at.with_timezone(&zone).naive_local()
}

/// The first time after `after` whose wall-clock reading in `zone` matches `schedule`.
///
/// The crate searches wall-clock time forward from `after`'s reading, which misses the
/// second pass of a wall time repeated by a fall-back transition still ahead (for example
/// 01:30 EST after 01:45 EDT). So when the clocks go back within the horizon, the search
/// starts that much earlier, and every candidate later than `after` is considered until one
/// also reads later than `after`: wall-clock order and instant order agree from there on.
fn next_in_zone(
    schedule: &cron::Schedule,
    zone: Tz,
    after: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let back = (offset_seconds(zone, after)
        - offset_seconds(zone, after + Duration::seconds(FOLD_HORIZON)))
    .max(0);
    let start = (after - Duration::seconds(back)).with_timezone(&zone);
    let wall_after = wall(zone, after);
    let mut best: Option<DateTime<Utc>> = None;
    for candidate in schedule.after(&start).take(SEARCH_LIMIT) {
        let instant = candidate.with_timezone(&Utc);
        if instant <= after {
            continue;
        }
        best = Some(best.map_or(instant, |b| b.min(instant)));
        if candidate.naive_local() > wall_after {
            break;
        }
    }
    best
}

/// The last time at or before `at` whose wall-clock reading in `zone` matches `schedule`:
/// the mirror image of [`next_in_zone`] (a fall-back transition just behind `at` repeats
/// wall times that read later than `at` but happened before it).
fn latest_in_zone(schedule: &cron::Schedule, zone: Tz, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let ahead = (offset_seconds(zone, at - Duration::seconds(FOLD_HORIZON))
        - offset_seconds(zone, at))
    .max(0);
    // The crate searches backwards from a time with a fraction of a second inclusively.
    let start = (at + Duration::seconds(ahead) + Duration::nanoseconds(1)).with_timezone(&zone);
    let wall_at = wall(zone, at);
    let mut best: Option<DateTime<Utc>> = None;
    for candidate in schedule.after(&start).rev().take(SEARCH_LIMIT) {
        let instant = candidate.with_timezone(&Utc);
        if instant > at {
            continue;
        }
        best = Some(best.map_or(instant, |b| b.max(instant)));
        if candidate.naive_local() < wall_at {
            break;
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap_or_else(|e| panic!("{text}: {e}"))
            .with_timezone(&Utc)
    }

    fn next(schedule: &str, zone: Option<&str>, after: &str) -> String {
        Schedule::parse(schedule, zone)
            .unwrap_or_else(|e| panic!("{schedule}: {e}"))
            .next_after(utc(after))
            .map(|t| t.to_rfc3339())
            .unwrap_or_default()
    }

    /// The first `n` times after `after`, in RFC 3339 (UTC).
    fn upcoming(schedule: &str, zone: Option<&str>, after: &str, n: usize) -> Vec<String> {
        let s = Schedule::parse(schedule, zone).unwrap();
        let mut t = utc(after);
        (0..n)
            .map(|_| {
                t = s.next_after(t).unwrap();
                t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
            })
            .collect()
    }

    #[test]
    fn steps_ranges_lists_and_names() {
        assert_eq!(
            upcoming("*/20 * * * *", None, "2024-05-01T10:05:00Z", 3),
            [
                "2024-05-01T10:20:00Z",
                "2024-05-01T10:40:00Z",
                "2024-05-01T11:00:00Z"
            ]
        );
        // N/step runs from N to the end of the range.
        assert_eq!(
            upcoming("50/5 9 * * *", None, "2024-05-01T09:00:00Z", 3),
            [
                "2024-05-01T09:50:00Z",
                "2024-05-01T09:55:00Z",
                "2024-05-02T09:50:00Z"
            ]
        );
        assert_eq!(
            upcoming("0 8-10/2,23 * * *", None, "2024-05-01T09:00:00Z", 3),
            [
                "2024-05-01T10:00:00Z",
                "2024-05-01T23:00:00Z",
                "2024-05-02T08:00:00Z"
            ]
        );
        // 2024-05-01 is a Wednesday.
        assert_eq!(
            next("30 6 * JUN mon-fri", None, "2024-05-01T00:00:00Z"),
            "2024-06-03T06:30:00+00:00"
        );
        assert_eq!(
            next("0 0 * * SAT", None, "2024-05-01T00:00:00Z"),
            "2024-05-04T00:00:00+00:00"
        );
        // A step larger than the range is just its start.
        assert_eq!(
            next("*/90 * * * *", None, "2024-05-01T10:05:00Z"),
            "2024-05-01T11:00:00+00:00"
        );
    }

    #[test]
    fn descriptors() {
        let after = "2024-05-15T12:34:56Z";
        assert_eq!(next("@yearly", None, after), "2025-01-01T00:00:00+00:00");
        assert_eq!(next("@annually", None, after), "2025-01-01T00:00:00+00:00");
        assert_eq!(next("@monthly", None, after), "2024-06-01T00:00:00+00:00");
        // 2024-05-19 is a Sunday.
        assert_eq!(next("@weekly", None, after), "2024-05-19T00:00:00+00:00");
        assert_eq!(next("@daily", None, after), "2024-05-16T00:00:00+00:00");
        assert_eq!(next("@midnight", None, after), "2024-05-16T00:00:00+00:00");
        assert_eq!(next("@hourly", None, after), "2024-05-15T13:00:00+00:00");
        assert_eq!(next("@every 90s", None, after), "2024-05-15T12:36:26+00:00");
        assert_eq!(
            next("@every 1h30m", None, after),
            "2024-05-15T14:04:56+00:00"
        );
    }

    #[test]
    fn sunday_is_zero_and_seven_and_question_mark_is_any() {
        // 2024-05-01 is a Wednesday; the next Sunday is 2024-05-05.
        for dow in ["0", "7", "sun", "SUN"] {
            assert_eq!(
                next(&format!("0 12 * * {dow}"), None, "2024-05-01T00:00:00Z"),
                "2024-05-05T12:00:00+00:00",
                "{dow}"
            );
        }
        // Friday to Sunday written with 7.
        assert_eq!(
            upcoming("0 0 * * 5-7", None, "2024-05-01T00:00:00Z", 4),
            [
                "2024-05-03T00:00:00Z",
                "2024-05-04T00:00:00Z",
                "2024-05-05T00:00:00Z",
                "2024-05-10T00:00:00Z"
            ]
        );
        // Monday is 1.
        assert_eq!(
            next("0 0 ? * 1", None, "2024-05-01T00:00:00Z"),
            "2024-05-06T00:00:00+00:00"
        );
    }

    #[test]
    fn either_day_field_matches_when_both_are_restricted() {
        // The 13th, or any Friday: 2024-09-06 (Fri), 2024-09-13 (Fri and the 13th),
        // 2024-09-20 (Fri), 2024-09-27 (Fri), 2024-10-04 (Fri), 2024-10-11 (Fri), 2024-10-13.
        assert_eq!(
            upcoming("0 0 13 * 5", None, "2024-09-01T00:00:00Z", 7),
            [
                "2024-09-06T00:00:00Z",
                "2024-09-13T00:00:00Z",
                "2024-09-20T00:00:00Z",
                "2024-09-27T00:00:00Z",
                "2024-10-04T00:00:00Z",
                "2024-10-11T00:00:00Z",
                "2024-10-13T00:00:00Z"
            ]
        );
        // With `*` in one field, the other alone decides.
        assert_eq!(
            next("0 0 13 * *", None, "2024-09-01T00:00:00Z"),
            "2024-09-13T00:00:00+00:00"
        );
        assert_eq!(
            next("0 0 * * 5", None, "2024-09-01T00:00:00Z"),
            "2024-09-06T00:00:00+00:00"
        );
        // A stepped `*` is a restriction (robfig/cron): odd days or Mondays.
        assert_eq!(
            upcoming("0 0 */2 * 1", None, "2024-09-01T00:00:00Z", 3),
            [
                "2024-09-02T00:00:00Z",
                "2024-09-03T00:00:00Z",
                "2024-09-05T00:00:00Z"
            ]
        );
    }

    #[test]
    fn time_zones_from_the_field_or_the_prefix() {
        // 09:00 in Kolkata (UTC+05:30) is 03:30 UTC.
        assert_eq!(
            next("0 9 * * *", Some("Asia/Kolkata"), "2024-05-01T00:00:00Z"),
            "2024-05-01T03:30:00+00:00"
        );
        assert_eq!(
            next(
                "CRON_TZ=Asia/Kolkata 0 9 * * *",
                None,
                "2024-05-01T00:00:00Z"
            ),
            "2024-05-01T03:30:00+00:00"
        );
        assert_eq!(
            next("TZ=Europe/Paris 0 9 * * *", None, "2024-05-01T00:00:00Z"),
            "2024-05-01T07:00:00+00:00"
        );
        assert_eq!(
            Schedule::parse("0 9 * * *", Some("Local")).unwrap().zone(),
            Tz::UTC
        );
    }

    #[test]
    fn daylight_saving_transitions() {
        let ny = Some("America/New_York");
        // Spring forward (2024-03-10 02:00 EST -> 03:00 EDT): 02:30 does not exist that day.
        assert_eq!(
            upcoming("30 2 * * *", ny, "2024-03-09T00:00:00Z", 2),
            ["2024-03-09T07:30:00Z", "2024-03-11T06:30:00Z"]
        );
        // Hourly stays hourly in absolute time across the gap.
        assert_eq!(
            upcoming("0 * * * *", ny, "2024-03-10T05:30:00Z", 3),
            [
                "2024-03-10T06:00:00Z",
                "2024-03-10T07:00:00Z",
                "2024-03-10T08:00:00Z"
            ]
        );
        // Fall back (2024-11-03 02:00 EDT -> 01:00 EST): 01:30 happens twice.
        assert_eq!(
            upcoming("30 1 * * *", ny, "2024-11-03T00:00:00Z", 3),
            [
                "2024-11-03T05:30:00Z",
                "2024-11-03T06:30:00Z",
                "2024-11-04T06:30:00Z"
            ]
        );
        // Every 20 minutes through the repeated hour, in instant order.
        assert_eq!(
            upcoming("*/20 * * * *", ny, "2024-11-03T05:00:00Z", 6),
            [
                "2024-11-03T05:20:00Z",
                "2024-11-03T05:40:00Z",
                "2024-11-03T06:00:00Z",
                "2024-11-03T06:20:00Z",
                "2024-11-03T06:40:00Z",
                "2024-11-03T07:00:00Z"
            ]
        );
        // Daily at 09:00 local moves by an hour in UTC after the change.
        assert_eq!(
            upcoming("0 9 * * *", ny, "2024-11-02T14:00:00Z", 2),
            ["2024-11-03T14:00:00Z", "2024-11-04T14:00:00Z"]
        );
    }

    #[test]
    fn the_latest_missed_time_without_enumerating() {
        let every_minute = Schedule::parse("* * * * *", None).unwrap();
        // Three years down: one answer, at once.
        let missed = every_minute
            .missed(utc("2021-01-01T00:00:30Z"), utc("2024-01-01T00:00:30Z"))
            .unwrap();
        assert_eq!(missed.latest, utc("2024-01-01T00:00:00Z"));
        assert_eq!(missed.count, 1_576_800);
        // The window is (earliest, now]: earliest itself is not missed, now is.
        assert_eq!(
            every_minute.missed(utc("2024-01-01T00:00:00Z"), utc("2024-01-01T00:00:59Z")),
            None
        );
        let one = every_minute
            .missed(utc("2024-01-01T00:00:00Z"), utc("2024-01-01T00:01:00Z"))
            .unwrap();
        assert_eq!((one.latest, one.count), (utc("2024-01-01T00:01:00Z"), 1));

        // Weekdays at 09:00: over a weekend the latest is Friday's.
        let weekdays = Schedule::parse("0 9 * * 1-5", None).unwrap();
        let missed = weekdays
            .missed(utc("2024-05-01T10:00:00Z"), utc("2024-05-05T20:00:00Z"))
            .unwrap();
        assert_eq!(missed.latest, utc("2024-05-03T09:00:00Z"));
        assert!(missed.count >= 2);

        // In a zone, across the repeated hour: 01:30 EST (06:30 UTC) is the latest.
        let ny = Schedule::parse("30 1 * * *", Some("America/New_York")).unwrap();
        let missed = ny
            .missed(utc("2024-11-03T05:30:00Z"), utc("2024-11-03T06:45:00Z"))
            .unwrap();
        assert_eq!(missed.latest, utc("2024-11-03T06:30:00Z"));

        let every = Schedule::parse("@every 10m", None).unwrap();
        let missed = every
            .missed(utc("2024-01-01T00:00:00Z"), utc("2024-01-01T00:35:00Z"))
            .unwrap();
        assert_eq!(
            (missed.latest, missed.count),
            (utc("2024-01-01T00:30:00Z"), 3)
        );
    }

    #[test]
    fn a_schedule_that_never_fires_has_no_next_time() {
        let never = Schedule::parse("0 0 30 2 *", None).unwrap();
        assert_eq!(never.next_after(utc("2024-01-01T00:00:00Z")), None);
        assert_eq!(
            never.missed(utc("2024-01-01T00:00:00Z"), utc("2024-06-01T00:00:00Z")),
            None
        );
    }

    #[test]
    fn invalid_schedules_are_refused_with_the_reason() {
        let error = |s: &str| Schedule::parse(s, None).unwrap_err().to_string();
        assert_eq!(error(""), "empty schedule");
        assert!(
            error("* * * *").starts_with("expected 5 fields"),
            "{}",
            error("* * * *")
        );
        assert!(error("0 0 0 * * *").contains("found 6"));
        assert_eq!(error("60 * * * *"), "minute: 60 is outside 0-59");
        assert_eq!(error("* 24 * * *"), "hour: 24 is outside 0-23");
        assert_eq!(error("* * 0 * *"), "day of month: 0 is outside 1-31");
        assert_eq!(error("* * * 13 *"), "month: 13 is outside 1-12");
        assert_eq!(error("* * * * 8"), "day of week: 8 is outside 0-7");
        assert_eq!(
            error("* * * * funday"),
            "day of week: \"funday\" is not a number or a name"
        );
        assert_eq!(error("5-1 * * * *"), "minute: range 5-1 runs backwards");
        assert_eq!(
            error("*/0 * * * *"),
            "minute: the step in \"*/0\" must be at least 1"
        );
        assert_eq!(error("1-2-3 * * * *"), "minute: \"1-2-3\" is malformed");
        assert_eq!(error("1/2/3 * * * *"), "minute: \"1/2/3\" is malformed");
        assert!(error("@fortnightly").starts_with("unknown descriptor \"@fortnightly\""));
        assert!(error("@every soon").starts_with("invalid duration \"soon\""));
        assert_eq!(
            error("CRON_TZ=Mars/Olympus 0 0 * * *"),
            "unknown time zone \"Mars/Olympus\""
        );
        assert!(matches!(
            Schedule::parse("0 0 * * *", Some("Nowhere/Town")),
            Err(ScheduleError::UnknownTimeZone(_))
        ));
        assert_eq!(error(", * * * *"), "the minute field is empty");
    }
}
