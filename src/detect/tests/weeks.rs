//! Six weeks of a synthetic organisation through the whole default pack: ordinary behaviour
//! (weekly seasonality, a heavy user, a new user, confidential work on the Monday mornings
//! around the Europe/Berlin daylight-saving change) fires nothing; each planted anomaly fires
//! exactly once.

use super::*;
use crate::detect::Calendars;
use crate::record::Classification;
use chrono::{Datelike, NaiveDate, Weekday};
use serde_json::json;

/// Deterministic pseudo-random numbers (Knuth's MMIX LCG), so the stream is the same on
/// every run without a `rand` dependency.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }

    /// Uniform in `[lo, hi)`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo)
    }

    /// True with probability `percent` / 100.
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

/// Engineering and legal work in Berlin; sales falls back to the shipped UTC default.
const BERLIN: &str = r#"
[engineering]
departments = ["legal"]
timezone = "Europe/Berlin"
workdays = ["mon", "tue", "wed", "thu", "fri"]
hours = "08:00-18:00"
"#;

const ENTITLEMENTS: &str = "[restricted]\ndepartments = [\"legal\"]\n";

/// Day `d` counted from 2026-03-01 (`day(32)` is 1 April). The stream runs six weeks from
/// Monday `day(2)`, with the switch to CEST on Sunday `day(29)`.
fn day(d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 3, 1).unwrap() + chrono::Days::new(u64::from(d) - 1)
}

fn department(user: &str) -> &'static str {
    match user.split('-').next().unwrap() {
        "eng" => "engineering",
        "legal" => "legal",
        _ => "sales",
    }
}

/// UTC time of `hh:mm` local time on `date` in the user's department. The offset is worked
/// out here by hand, independently of the engine's time-zone code, so the test can catch it.
fn local(user: &str, date: NaiveDate, hh: u32, mm: u32) -> DateTime<Utc> {
    let offset_hours = match department(user) {
        "sales" => 0,
        // CET (+1) until the last Sunday of March, CEST (+2) from then on.
        _ if date < NaiveDate::from_ymd_opt(2026, 3, 29).unwrap() => 1,
        _ => 2,
    };
    let naive = date.and_hms_opt(hh, mm, 0).unwrap() - chrono::Duration::hours(offset_hours);
    naive.and_utc()
}

/// One session per user and day; the mcp-volume and off-hours alerts name it.
fn session(user: &str, date: NaiveDate) -> String {
    format!("{user}/{date}")
}

/// The stream being built, with ids that stay unique.
struct Stream {
    records: Vec<AuditRecord>,
}

impl Stream {
    fn push(
        &mut self,
        user: &str,
        ts: DateTime<Utc>,
        kind: EventType,
        tokens: u64,
    ) -> &mut AuditRecord {
        let id = format!("e{}", self.records.len());
        let date = ts.date_naive();
        let mut r = AuditRecord::new(id, ts, kind, user, session(user, date));
        r.department = Some(department(user).to_string());
        if tokens > 0 {
            r.prompt_tokens = Some(tokens * 3 / 4);
            r.completion_tokens = Some(tokens - tokens * 3 / 4);
        }
        self.records.push(r);
        self.records.last_mut().unwrap()
    }

    /// An ordinary working day of `user`: `n` requests of about `per_request` tokens (±40 %)
    /// between 08:30 and 17:30 local time, a few MCP calls, some confidential data.
    fn workday(&mut self, rng: &mut Lcg, user: &str, date: NaiveDate, n: u64, per_request: u64) {
        let legal = department(user) == "legal";
        for i in 0..n {
            // The first request of a Monday is confidential at exactly 08:30 local: 07:30 UTC
            // before the DST switch, 06:30 UTC after it. A zone handled as a fixed +1 would
            // read 07:30 and call it off hours.
            let minute = if i == 0 { 0 } else { rng.range(1, 540) };
            let ts = local(
                user,
                date,
                8 + (30 + minute as u32) / 60,
                (30 + minute as u32) % 60,
            );
            let tokens = per_request * rng.range(60, 141) / 100;
            let monday_first = i == 0 && date.weekday() == Weekday::Mon;
            let r = self.push(user, ts, EventType::ApiRequest, tokens);
            r.data_classification = Some(if monday_first || rng.chance(10) {
                Classification::Confidential
            } else if legal && rng.chance(5) {
                // Legal is cleared for restricted data: never an alert.
                Classification::Restricted
            } else {
                Classification::Internal
            });
            if rng.chance(3) {
                r.policy_flags = vec!["pii".into()];
            }
            if rng.chance(3) {
                // Reading one's own data, spelled differently, is not cross-user access.
                r.extra.insert(
                    "resource_owner".into(),
                    json!(format!(" {} ", user.to_uppercase())),
                );
            }
        }
        // A few MCP calls, well apart: never a burst.
        for _ in 0..rng.range(0, 4) {
            let minute = rng.range(0, 540) as u32;
            let ts = local(user, date, 8 + (30 + minute) / 60, (30 + minute) % 60);
            self.push(user, ts, EventType::McpCall, 0).mcp_calls = Some(1);
        }
        // Now and then one expired token: a single failure.
        if rng.chance(4) {
            self.push(user, local(user, date, 11, 0), EventType::McpAuthFailure, 0);
        }
    }
}

/// The shipped rule files (excluding `calendars.toml`), checked against `rules/` so a rule
/// added to the pack cannot be silently left out of this test.
fn default_pack() -> Vec<(&'static str, &'static str)> {
    let mut pack = ANTHROPIC_RULES.to_vec();
    pack.extend([
        ("cross-user-access.toml", CROSS_USER),
        ("mcp-auth-failures.toml", MCP_AUTH),
        ("mcp-volume.toml", MCP_VOLUME),
        ("off-hours-sensitive.toml", OFF_HOURS),
        ("prompt-injection.toml", PROMPT_INJECTION),
        ("request-volume.toml", REQUEST_VOLUME),
        ("restricted-unauthorised.toml", RESTRICTED),
        ("system-prompt-leak.toml", PROMPT_LEAK),
        ("token-spike.toml", TOKEN_SPIKE),
    ]);
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/rules");
    let mut shipped: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".toml") && n != "calendars.toml")
        .collect();
    shipped.sort();
    let names: Vec<&str> = pack.iter().map(|(n, _)| *n).collect();
    assert_eq!(shipped, names);
    pack
}

#[test]
fn six_weeks_fire_only_the_planted_anomalies() {
    let mut rng = Lcg(0x5eed);
    let mut stream = Stream {
        records: Vec::new(),
    };
    let mut users: Vec<String> = Vec::new();
    for dept in ["eng", "legal", "sales"] {
        users.extend((0..10).map(|i| format!("{dept}-{i:02}")));
    }
    // Each user's own typical tokens per request.
    let typical: Vec<u64> = users.iter().map(|_| rng.range(800, 1200)).collect();
    let new_user_from = day(30); // Monday of week 5

    for d in 0..42 {
        let date = day(2 + d);
        // Busy Monday to Thursday, quieter Friday, almost nothing at weekends.
        let (lo, hi) = match date.weekday() {
            Weekday::Fri => (6, 11),
            Weekday::Sat | Weekday::Sun => (0, 0),
            _ => (15, 26),
        };
        for (user, &per_request) in users.iter().zip(&typical) {
            if hi > 0 {
                let n = rng.range(lo, hi);
                stream.workday(&mut rng, user, date, n, per_request);
            } else if rng.chance(5) {
                // A stray weekend question, internal data only.
                let ts = local(user, date, 11, rng.range(0, 60) as u32);
                stream.push(user, ts, EventType::ApiRequest, per_request);
            }
        }
        if hi > 0 {
            // The heavy user: ten times everyone's tokens, every working day, from day one.
            let n = rng.range(lo, hi);
            stream.workday(&mut rng, "eng-heavy", date, n, 10_000);
            if date >= new_user_from {
                // A new user whose first day is huge (600 requests, ~600k tokens) and who
                // then settles down: no history, so no baseline alert.
                let n = if date == new_user_from { 600 } else { n };
                stream.workday(&mut rng, "sales-new", date, n, 1_000);
            }
        }
    }

    // The planted anomalies, in event-time order, each with the alert it must raise.
    let mut planted: Vec<(&str, String)> = Vec::new();

    // Week 2: sales-05's session reads sales-06's data.
    let (u, date) = ("sales-05", day(11));
    let r = stream.push(u, local(u, date, 14, 0), EventType::ApiRequest, 900);
    r.extra.insert("resource_owner".into(), json!("sales-06"));
    planted.push(("cross-user-access", u.into()));

    // Week 3: 60 MCP calls in five minutes (over 50 in 10 min, under 100 in 5 min).
    let (u, date) = ("eng-04", day(18));
    for i in 0..60 {
        let ts = local(u, date, 13, 0) + chrono::Duration::seconds(i * 5);
        stream.push(u, ts, EventType::McpCall, 0).mcp_calls = Some(1);
    }
    planted.push(("mcp-volume", session(u, date)));

    // Week 4: a script drives sales-03's account, 600 tiny requests (no token spike).
    let (u, date) = ("sales-03", day(24));
    for i in 0..600 {
        let ts = local(u, date, 10, 0) + chrono::Duration::seconds(i * 20);
        stream.push(u, ts, EventType::ApiRequest, 10);
    }
    planted.push(("request-volume", u.into()));

    // Week 4, in business hours: restricted data from engineering (not cleared) and from
    // legal (cleared, silent).
    let date = day(26);
    for u in ["eng-05", "legal-01"] {
        let r = stream.push(u, local(u, date, 11, 0), EventType::ApiRequest, 900);
        r.data_classification = Some(Classification::Restricted);
    }
    planted.push(("restricted-unauthorised", "eng-05".into()));

    // Week 5: six MCP authentication failures in ten minutes.
    let (u, date) = ("legal-02", day(32));
    for i in 0..6 {
        let ts = local(u, date, 14, 0) + chrono::Duration::seconds(i * 100);
        stream.push(u, ts, EventType::McpAuthFailure, 0);
    }
    planted.push(("mcp-auth-failures", u.into()));

    // Week 5: confidential data on Saturday 23:00 Berlin time (21:00 UTC, CEST).
    let (u, date) = ("eng-02", day(35));
    let ts = local(u, date, 23, 0);
    let r = stream.push(u, ts, EventType::ApiRequest, 900);
    r.data_classification = Some(Classification::Confidential);
    planted.push(("off-hours-sensitive", session(u, ts.date_naive())));

    // Week 6: legal-07 burns 100k tokens on a Wednesday afternoon, over 3x their normal day.
    let (u, date) = ("legal-07", day(39));
    for i in 0..10 {
        let ts = local(u, date, 15, 0) + chrono::Duration::minutes(i * 5);
        stream.push(u, ts, EventType::ApiRequest, 10_000);
    }
    planted.push(("token-spike", u.into()));

    // Week 6: a gateway flags a prompt injection.
    let (u, date) = ("eng-07", day(40));
    let r = stream.push(u, local(u, date, 10, 0), EventType::ApiRequest, 900);
    r.security_flags = vec!["prompt_injection".into()];
    planted.push(("prompt-injection", session(u, date)));

    let mut records = stream.records;
    // Event-time order; the sort is stable, so ties keep their order of creation.
    records.sort_by_key(|r| r.timestamp);

    let rules = RuleSet::parse(&files(&default_pack())).unwrap();
    let entitlements = Entitlements::parse("entitlements.toml", ENTITLEMENTS).unwrap();
    let calendars = Calendars::parse("calendars.toml", &format!("{CALENDARS}{BERLIN}")).unwrap();
    let mut engine = Engine::new(rules, entitlements, settings()).with_calendars(calendars);
    let started = std::time::Instant::now();
    let alerts = run(&mut engine, &records);
    eprintln!(
        "weeks: {} events, {} alerts in {:?}",
        records.len(),
        alerts.len(),
        started.elapsed()
    );

    let fired: Vec<(&str, &str)> = alerts
        .iter()
        .map(|a| (a.rule_id.as_str(), a.entity.entity_key.as_str()))
        .collect();
    let expected: Vec<(&str, &str)> = planted.iter().map(|(r, e)| (*r, e.as_str())).collect();
    assert_eq!(fired, expected, "{alerts:#?}");
    // The planted MCP burst is the medium tier only.
    let burst = alerts.iter().find(|a| a.rule_id == "mcp-volume").unwrap();
    assert_eq!(burst.severity, crate::record::Severity::Medium);
    // No entity was refused for lack of room, so silence is not an artefact of the caps.
    for rule in engine.stats().rules {
        assert_eq!(rule.refused_entities, 0, "{}", rule.rule_id);
    }
}
