//! Business-hours calendars per department, for `business_hours` conditions.
//!
//! ```toml
//! [default]                      # any department without a calendar of its own
//! timezone = "UTC"
//! workdays = ["mon", "tue", "wed", "thu", "fri"]
//! hours = "08:00-18:00"
//!
//! [legal]                        # the calendar of department `legal` ...
//! departments = ["compliance"]   # ... and of these departments
//! timezone = "Europe/Berlin"     # IANA name: daylight saving follows the zone's rules
//! hours = "07:30-19:00"          # start inclusive, end exclusive; "24:00" ends at midnight
//! holidays = ["2025-12-25", 2025-12-26]   # local dates, as text or TOML dates
//! ```
//!
//! Every table is a calendar named after a department. The event time is converted to the
//! calendar's zone and judged there: a local working day, not a holiday, and a local time in
//! `hours`. A Monday 08:30 in Berlin is inside business hours in winter (07:30 UTC) and in
//! summer (06:30 UTC) alike. Department names compare case-insensitively. Without a
//! `[default]` table (or with no calendars file at all) the default is Monday to Friday,
//! 08:00 to 18:00 UTC.

use super::RuleError;
use chrono::{DateTime, Datelike, NaiveDate, Timelike, Utc, Weekday};
use chrono_tz::Tz;
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap, HashSet};

/// Business hours per department, with a default.
#[derive(Debug, Clone)]
pub struct Calendars {
    default: Calendar,
    /// Lowercased department name to index in `named`.
    by_department: HashMap<String, usize>,
    named: Vec<Calendar>,
}

/// One calendar.
#[derive(Debug, Clone)]
struct Calendar {
    name: String,
    zone: Tz,
    /// Indexed by `Weekday::num_days_from_monday`.
    workdays: [bool; 7],
    /// Seconds after local midnight: `[start, end)`.
    start: u32,
    end: u32,
    holidays: HashSet<NaiveDate>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CalendarDoc {
    timezone: String,
    #[serde(default = "weekdays")]
    workdays: Vec<String>,
    hours: String,
    #[serde(default)]
    holidays: Vec<toml::Value>,
    #[serde(default)]
    departments: Vec<String>,
}

fn weekdays() -> Vec<String> {
    ["mon", "tue", "wed", "thu", "fri"]
        .map(str::to_string)
        .to_vec()
}

/// The name of the fallback calendar.
const DEFAULT: &str = "default";

impl Default for Calendars {
    /// Monday to Friday, 08:00 to 18:00 UTC, no holidays, for every department.
    fn default() -> Calendars {
        Calendars {
            default: Calendar {
                name: DEFAULT.to_string(),
                zone: Tz::UTC,
                workdays: [true, true, true, true, true, false, false],
                start: 8 * 3600,
                end: 18 * 3600,
                holidays: HashSet::new(),
            },
            by_department: HashMap::new(),
            named: Vec::new(),
        }
    }
}

impl Calendars {
    /// Parse a calendars file; errors name the file, the calendar and the field.
    pub fn parse(name: &str, text: &str) -> Result<Calendars, RuleError> {
        let fail = |message: String| RuleError {
            file: name.to_string(),
            message,
        };
        let docs: BTreeMap<String, CalendarDoc> = super::rules::parse_toml(text).map_err(&fail)?;
        let mut calendars = Calendars::default();
        // Which calendar claimed each department first, to report a department claimed twice.
        let mut claimed: HashMap<String, String> = HashMap::new();
        for (calendar_name, doc) in docs {
            let at = |field: &str, message: String| {
                fail(format!(
                    "calendar `{calendar_name}`, field `{field}`: {message}"
                ))
            };
            let departments = doc.departments.clone();
            let calendar = Calendar::compile(&calendar_name, doc).map_err(|(f, m)| at(&f, m))?;
            let key = calendar_name.trim().to_lowercase();
            if key == DEFAULT {
                calendars.default = calendar;
                continue;
            }
            if key.is_empty() {
                return Err(at("name", "a calendar needs a name".into()));
            }
            let index = calendars.named.len();
            calendars.named.push(calendar);
            let aliases = departments.iter().map(|d| d.trim().to_lowercase());
            for (i, department) in std::iter::once(key).chain(aliases).enumerate() {
                let field = if i == 0 {
                    "name".to_string()
                } else {
                    format!("departments[{}]", i - 1)
                };
                if department.is_empty() {
                    return Err(at(&field, "empty department name".into()));
                }
                if let Some(first) = claimed.get(&department) {
                    if *first != calendar_name {
                        return Err(at(
                            &field,
                            format!("department `{department}` already has calendar `{first}`"),
                        ));
                    }
                }
                claimed.insert(department.clone(), calendar_name.clone());
                calendars.by_department.insert(department, index);
            }
        }
        Ok(calendars)
    }

    fn calendar(&self, department: Option<&str>) -> &Calendar {
        department
            .and_then(|d| self.by_department.get(&d.trim().to_lowercase()))
            .and_then(|&i| self.named.get(i))
            .unwrap_or(&self.default)
    }

    /// Whether `at` falls in the business hours of `department`'s calendar (the default one
    /// when the department is unknown or absent).
    pub fn is_business_hours(&self, department: Option<&str>, at: DateTime<Utc>) -> bool {
        self.calendar(department).is_open(at)
    }

    /// The calendar that judges `department`, and `at` as its local time (for alert details:
    /// `Mon 2025-03-31 08:30 Europe/Berlin`).
    pub fn local_time(&self, department: Option<&str>, at: DateTime<Utc>) -> (&str, String) {
        let calendar = self.calendar(department);
        let local = at.with_timezone(&calendar.zone);
        (
            &calendar.name,
            format!(
                "{} {}",
                local.format("%a %Y-%m-%d %H:%M"),
                calendar.zone.name()
            ),
        )
    }
}

impl Calendar {
    /// Validate one table; errors are `(field, message)`.
    fn compile(name: &str, doc: CalendarDoc) -> Result<Calendar, (String, String)> {
        let zone: Tz = doc.timezone.trim().parse().map_err(|_| {
            (
                "timezone".to_string(),
                format!(
                    "unknown time zone `{}` (write an IANA name such as \"Europe/Berlin\" or \
                     \"UTC\")",
                    doc.timezone
                ),
            )
        })?;
        let mut workdays = [false; 7];
        for (i, day) in doc.workdays.iter().enumerate() {
            let day: Weekday = day.trim().parse().map_err(|_| {
                (
                    format!("workdays[{i}]"),
                    format!("`{day}` is not a day of the week (write \"mon\" .. \"sun\")"),
                )
            })?;
            workdays[day.num_days_from_monday() as usize] = true;
        }
        if !workdays.contains(&true) {
            return Err((
                "workdays".into(),
                "must list at least one day (an empty list would make every event off-hours)"
                    .into(),
            ));
        }
        let (start, end) = hours(&doc.hours).map_err(|m| ("hours".to_string(), m))?;
        let mut holidays = HashSet::new();
        for (i, value) in doc.holidays.into_iter().enumerate() {
            holidays.insert(holiday(value).map_err(|m| (format!("holidays[{i}]"), m))?);
        }
        Ok(Calendar {
            name: name.trim().to_string(),
            zone,
            workdays,
            start,
            end,
            holidays,
        })
    }

    fn is_open(&self, at: DateTime<Utc>) -> bool {
        // Converting the instant to the zone applies the offset in force at that instant, so
        // daylight-saving changes need no special case.
        let local = at.with_timezone(&self.zone);
        let second = local.num_seconds_from_midnight();
        self.workdays[local.weekday().num_days_from_monday() as usize]
            && !self.holidays.contains(&local.date_naive())
            && (self.start..self.end).contains(&second)
    }
}

/// `"08:00-18:00"` as seconds after midnight; the end may be `24:00`.
fn hours(text: &str) -> Result<(u32, u32), String> {
    let wrong = || format!("`{text}` is not a time range like \"08:00-18:00\"");
    let (start, end) = text.split_once('-').ok_or_else(wrong)?;
    let (start, end) = (
        clock(start).ok_or_else(wrong)?,
        clock(end).ok_or_else(wrong)?,
    );
    if start >= end {
        return Err(format!(
            "`{text}` ends before it starts (ranges across midnight are not supported; the \
             latest end is \"24:00\")"
        ));
    }
    Ok((start, end))
}

/// `"HH:MM"` as seconds after midnight, `24:00` included.
fn clock(text: &str) -> Option<u32> {
    let (h, m) = text.trim().split_once(':')?;
    let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    match (h, m) {
        (24, 0) => Some(24 * 3600),
        (0..=23, 0..=59) => Some(h * 3600 + m * 60),
        _ => None,
    }
}

/// A holiday written as `"2025-12-25"` or as a bare TOML date `2025-12-25`.
fn holiday(value: toml::Value) -> Result<NaiveDate, String> {
    let text = match value {
        toml::Value::String(s) => s,
        toml::Value::Datetime(dt) if dt.time.is_none() && dt.offset.is_none() => dt.to_string(),
        other => {
            return Err(format!(
                "expected a date like \"2025-12-25\", found {}",
                other.type_str()
            ))
        }
    };
    NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d")
        .map_err(|_| format!("`{text}` is not a date like \"2025-12-25\""))
}
