//! Business-hours calendars: local time across daylight saving, holidays, lookups, errors.

use super::*;
use crate::detect::Calendars;

/// Calendars used by most tests: Berlin and New York offices, 08:00-18:00 local.
const OFFICES: &str = r#"
[default]
timezone = "UTC"
hours = "08:00-18:00"

[legal]
departments = ["Compliance"]
timezone = "Europe/Berlin"
hours = "08:00-18:00"
holidays = ["2025-12-25", 2025-12-26]

[sales-us]
timezone = "America/New_York"
workdays = ["Mon", "tuesday", "wed", "thu", "fri", "sat"]
hours = "08:00-18:00"

[night-owls]
timezone = "UTC"
workdays = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
hours = "00:00-24:00"
holidays = ["2025-12-25"]
"#;

fn offices() -> Calendars {
    Calendars::parse("calendars.toml", OFFICES).unwrap()
}

fn utc(text: &str) -> DateTime<Utc> {
    text.parse().unwrap()
}

/// `(department, UTC instant, inside business hours)` against [`OFFICES`].
fn check(cases: &[(Option<&str>, &str, bool)]) {
    let calendars = offices();
    for (department, at, expected) in cases {
        assert_eq!(
            calendars.is_business_hours(*department, utc(at)),
            *expected,
            "{department:?} at {at}"
        );
    }
}

#[test]
fn berlin_monday_morning_on_both_sides_of_daylight_saving() {
    check(&[
        // Spring: CET (UTC+1) until Sunday 2025-03-30, CEST (UTC+2) after.
        // Monday 2025-03-24 08:30 CET is 07:30 UTC; 07:59 CET is 06:59 UTC.
        (Some("legal"), "2025-03-24T07:30:00Z", true),
        (Some("legal"), "2025-03-24T06:59:00Z", false),
        // Monday 2025-03-31 08:30 CEST is 06:30 UTC; 07:30 UTC is 09:30 local.
        (Some("legal"), "2025-03-31T06:30:00Z", true),
        (Some("legal"), "2025-03-31T05:59:00Z", false),
        // Autumn: CEST until Sunday 2025-10-26, CET after.
        (Some("legal"), "2025-10-20T06:30:00Z", true),
        (Some("legal"), "2025-10-20T05:59:00Z", false),
        (Some("legal"), "2025-10-27T07:30:00Z", true),
        (Some("legal"), "2025-10-27T06:30:00Z", false),
        // The end is exclusive: 18:00 CEST (16:00 UTC) is after hours.
        (Some("legal"), "2025-03-31T15:59:59Z", true),
        (Some("legal"), "2025-03-31T16:00:00Z", false),
    ]);
}

#[test]
fn new_york_monday_morning_on_both_sides_of_daylight_saving() {
    check(&[
        // EST (UTC-5) until Sunday 2025-03-09, EDT (UTC-4) after.
        // Monday 2025-03-03 08:30 EST is 13:30 UTC; 12:30 UTC is 07:30 local.
        (Some("sales-us"), "2025-03-03T13:30:00Z", true),
        (Some("sales-us"), "2025-03-03T12:30:00Z", false),
        // Monday 2025-03-10 08:30 EDT is 12:30 UTC.
        (Some("sales-us"), "2025-03-10T12:30:00Z", true),
        (Some("sales-us"), "2025-03-10T11:59:00Z", false),
        // Back to EST on Sunday 2025-11-02: Monday 2025-11-03 08:30 EST is 13:30 UTC.
        (Some("sales-us"), "2025-11-03T13:30:00Z", true),
        (Some("sales-us"), "2025-11-03T12:30:00Z", false),
        // The local day decides the weekday: Friday 2025-03-07 23:30 UTC is 18:30 EST
        // (after hours), Saturday 00:30 UTC is still Friday evening in New York.
        (Some("sales-us"), "2025-03-07T22:30:00Z", true),
        (Some("sales-us"), "2025-03-08T00:30:00Z", false),
        // Saturdays are working days here, Sundays are not.
        (Some("sales-us"), "2025-03-08T15:00:00Z", true),
        (Some("sales-us"), "2025-03-09T15:00:00Z", false),
    ]);
}

#[test]
fn holidays_are_local_dates() {
    check(&[
        // Thursday 2025-12-25 is a holiday in legal, a working day for the default calendar.
        (Some("legal"), "2025-12-25T10:00:00Z", false),
        (None, "2025-12-25T10:00:00Z", true),
        // A TOML date works as well as a string.
        (Some("legal"), "2025-12-26T10:00:00Z", false),
        (Some("legal"), "2025-12-24T10:00:00Z", true),
        // Round the clock, every day, except the holiday: 23:30 UTC on the 24th is already
        // the 25th in Berlin but not in UTC.
        (Some("night-owls"), "2025-12-24T23:30:00Z", true),
        (Some("night-owls"), "2025-12-25T00:30:00Z", false),
        (Some("night-owls"), "2025-12-27T03:00:00Z", true),
    ]);
}

#[test]
fn departments_find_their_calendar() {
    check(&[
        // Case-insensitive, aliases through `departments`, unknown ones use the default.
        (Some("LEGAL"), "2025-03-31T06:30:00Z", true),
        (Some("compliance"), "2025-03-31T06:30:00Z", true),
        (Some("marketing"), "2025-03-31T06:30:00Z", false),
        (None, "2025-03-31T08:00:00Z", true),
        (None, "2025-03-29T12:00:00Z", false),
    ]);
    let calendars = offices();
    let (name, local) = calendars.local_time(Some("Compliance"), utc("2025-03-31T06:30:00Z"));
    assert_eq!(name, "legal");
    assert_eq!(local, "Mon 2025-03-31 08:30 Europe/Berlin");
}

#[test]
fn the_shipped_file_and_no_file_mean_weekdays_eight_to_six_utc() {
    let shipped = Calendars::parse("calendars.toml", CALENDARS).unwrap();
    let none = Calendars::default();
    // No `[default]` table: the built-in default.
    let other = Calendars::parse(
        "c.toml",
        "[x]\ntimezone = \"Asia/Tokyo\"\nhours = \"09:00-17:00\"",
    )
    .unwrap();
    for (at, expected) in [
        ("2025-06-02T08:00:00Z", true),
        ("2025-06-02T07:59:59Z", false),
        ("2025-06-06T17:59:59Z", true),
        ("2025-06-06T18:00:00Z", false),
        ("2025-06-07T12:00:00Z", false),
        ("2025-06-08T12:00:00Z", false),
    ] {
        for calendars in [&shipped, &none, &other] {
            assert_eq!(
                calendars.is_business_hours(Some("engineering"), utc(at)),
                expected,
                "{at}"
            );
        }
    }
    // Tokyo (UTC+9, no daylight saving): Monday 09:00 local is Monday 00:00 UTC.
    assert!(other.is_business_hours(Some("x"), utc("2025-06-02T00:00:00Z")));
}

#[test]
fn calendar_errors_name_file_calendar_and_field() {
    let cases: &[(&str, &[&str])] = &[
        (
            "[legal]\ntimezone = \"Europe/Berln\"\nhours = \"08:00-18:00\"",
            &["calendar `legal`", "field `timezone`", "Europe/Berln"],
        ),
        (
            "[legal]\ntimezone = \"UTC\"\nhours = \"08:00-18:00\"\nworkdays = [\"mon\", \"fri-day\"]",
            &["calendar `legal`", "field `workdays[1]`", "fri-day"],
        ),
        (
            "[legal]\ntimezone = \"UTC\"\nhours = \"08:00-18:00\"\nworkdays = []",
            &["field `workdays`", "at least one day"],
        ),
        (
            "[legal]\ntimezone = \"UTC\"\nhours = \"8-18\"",
            &["calendar `legal`", "field `hours`", "8-18"],
        ),
        (
            "[legal]\ntimezone = \"UTC\"\nhours = \"18:00-08:00\"",
            &["field `hours`", "across midnight"],
        ),
        (
            "[legal]\ntimezone = \"UTC\"\nhours = \"08:00-24:01\"",
            &["field `hours`"],
        ),
        (
            "[legal]\ntimezone = \"UTC\"\nhours = \"08:00-18:00\"\nholidays = [\"2025-02-30\"]",
            &["field `holidays[0]`", "2025-02-30"],
        ),
        (
            "[legal]\ntimezone = \"UTC\"\nhours = \"08:00-18:00\"\nholidays = [20251225]",
            &["field `holidays[0]`", "integer"],
        ),
        (
            "[legal]\ntimezone = \"UTC\"\nhours = \"08:00-18:00\"\nhoildays = []",
            &["legal", "hoildays", "line 4"],
        ),
        ("[legal]\nhours = \"08:00-18:00\"", &["legal", "timezone"]),
        (
            "[legal]\ntimezone = \"UTC\"\nhours = \"08:00-18:00\"\n\
             [hr]\ndepartments = [\"Legal\"]\ntimezone = \"UTC\"\nhours = \"08:00-18:00\"",
            &["calendar `legal`", "field `name`", "already has calendar `hr`"],
        ),
        (
            "[legal]\ntimezone = \"UTC\"\nhours = \"08:00-18:00\"\ndepartments = [\" \"]",
            &["field `departments[0]`", "empty"],
        ),
    ];
    for (text, needles) in cases {
        let error = match Calendars::parse("cal.toml", text) {
            Ok(_) => panic!("expected an error for:\n{text}"),
            Err(error) => error.to_string(),
        };
        assert!(error.starts_with("cal.toml: "), "{error}");
        for needle in *needles {
            assert!(error.contains(needle), "`{needle}` missing from: {error}");
        }
    }
}

#[test]
fn business_hours_conditions_use_the_department_calendar() {
    let rule = "id = \"o\"\ntitle = \"O\"\nseverity = \"low\"\nsuppress = \"1ms\"\n\
                kind = \"match\"\ngroup_by = \"session_id\"\n[[conditions]]\nbusiness_hours = false\n";
    let inside = "id = \"i\"\ntitle = \"I\"\nseverity = \"low\"\nsuppress = \"1ms\"\n\
                  kind = \"match\"\ngroup_by = \"session_id\"\n[[conditions]]\n\
                  business_hours = true\n";
    let mut engine = engine_with(
        &[("o.toml", rule), ("i.toml", inside)],
        Entitlements::default(),
        settings(),
    )
    .with_calendars(offices());
    let event = |id: &str, at: &str, department: Option<&str>| {
        let mut r = AuditRecord::new(id, utc(at), EventType::ApiRequest, "u", id);
        r.department = department.map(str::to_string);
        r
    };
    let alerts = run(
        &mut engine,
        &[
            // 06:30 UTC Monday after the spring change: 08:30 in Berlin, 06:30 by default.
            event("e1", "2025-03-31T06:30:00Z", Some("legal")),
            event("e2", "2025-03-31T06:31:00Z", Some("marketing")),
            event("e3", "2025-03-31T06:32:00Z", None),
        ],
    );
    let fired: Vec<(&str, &str)> = alerts
        .iter()
        .map(|a| (a.rule_id.as_str(), a.entity.entity_key.as_str()))
        .collect();
    assert_eq!(fired, [("i", "e1"), ("o", "e2"), ("o", "e3")]);
    assert!(
        alerts[1].details.contains(
            "outside business hours of calendar `default` (local time Mon 2025-03-31 06:31 UTC)"
        ),
        "{}",
        alerts[1].details
    );
}
