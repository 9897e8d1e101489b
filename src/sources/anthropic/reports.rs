//! Polling the usage and cost reports from each report's cursor to the last final bucket.

use super::cursor::CursorStore;
use super::usage::{buckets, claude_code_lines, final_prefix, Bucket, Report};
use super::{PollError, Poller};
use chrono::{DateTime, DurationRound, SecondsFormat, TimeDelta, Utc};
use serde_json::Value;
use std::sync::Arc;

/// Most pages read per report and poll: a guard against a server that always says `has_more`.
const MAX_PAGES: usize = 1000;

/// Most time one messages or cost poll covers (a long back-fill proceeds over several polls).
const MAX_SPAN: TimeDelta = TimeDelta::days(31);

/// Poll every enabled report once.
pub(crate) async fn poll(
    poller: &mut Poller<'_>,
    store: &mut CursorStore,
) -> Result<(), PollError> {
    let usage = &poller.config.usage;
    let enabled = [
        (Report::Messages, usage.messages),
        (Report::Cost, usage.cost),
        (Report::ClaudeCode, usage.claude_code),
    ];
    for (report, on) in enabled {
        if on {
            poll_report(poller, store, report).await?;
        }
    }
    Ok(())
}

/// Where a report starts: its cursor, or `backfill` ago aligned to its bucket width.
fn start_of(
    poller: &Poller<'_>,
    store: &CursorStore,
    report: Report,
    now: DateTime<Utc>,
) -> DateTime<Utc> {
    if let Some(end) = store.cursor.reports.get(report.name()) {
        return *end;
    }
    let width = match report {
        Report::Messages => TimeDelta::seconds(poller.config.usage.bucket_width.seconds()),
        Report::Cost | Report::ClaudeCode => TimeDelta::days(1),
    };
    let backfill = TimeDelta::from_std(poller.config.usage.backfill).unwrap_or(TimeDelta::days(7));
    let start = now - backfill;
    start.duration_trunc(width).unwrap_or(start)
}

async fn poll_report(
    poller: &mut Poller<'_>,
    store: &mut CursorStore,
    report: Report,
) -> Result<(), PollError> {
    let now = Utc::now();
    let settle = TimeDelta::from_std(poller.config.usage.settle).unwrap_or(TimeDelta::hours(1));
    let final_before = now - settle;
    let start = start_of(poller, store, report, now);
    let stream: Arc<str> = Arc::from(format!("anthropic:{}", report.name()));
    match report {
        Report::ClaudeCode => {
            // One day per request; a day is final once it ended `settle` ago.
            let mut day = start;
            while day + TimeDelta::days(1) <= final_before {
                let query = vec![(
                    "starting_at".to_string(),
                    day.format("%Y-%m-%d").to_string(),
                )];
                let mut lines = Vec::new();
                for page in pages(poller, report, query).await? {
                    let (page_lines, unreadable) = claude_code_lines(&page);
                    warn_unreadable(poller, report, unreadable);
                    lines.extend(page_lines);
                }
                let end = day + TimeDelta::days(1);
                commit(poller, store, report, &stream, lines, end).await?;
                day = end;
            }
        }
        Report::Messages | Report::Cost => {
            if start >= final_before {
                return Ok(());
            }
            let end = now.min(start + MAX_SPAN);
            let width = match report {
                Report::Messages => poller.config.usage.bucket_width.as_str(),
                _ => "1d",
            };
            let mut query = vec![
                ("starting_at".to_string(), rfc3339(start)),
                ("ending_at".to_string(), rfc3339(end)),
                ("bucket_width".to_string(), width.to_string()),
            ];
            let group_by = match report {
                Report::Messages => &poller.config.usage.group_by,
                _ => &poller.config.usage.cost_group_by,
            };
            query.extend(
                group_by
                    .iter()
                    .map(|g| ("group_by[]".to_string(), g.clone())),
            );
            let mut all: Vec<Bucket> = Vec::new();
            for page in pages(poller, report, query).await? {
                let (page_buckets, unreadable) = buckets(report, &page, width);
                warn_unreadable(poller, report, unreadable);
                all.extend(page_buckets);
            }
            all.sort_by_key(|bucket| bucket.starting_at);
            all.retain(|bucket| bucket.starting_at >= start);
            let done = final_prefix(&all, final_before);
            let Some(last) = done.last() else {
                return Ok(());
            };
            let end = last.ending_at;
            let lines = done.iter().flat_map(|b| b.lines.iter().cloned()).collect();
            commit(poller, store, report, &stream, lines, end).await?;
        }
    }
    Ok(())
}

/// Deliver a report's lines, then move its cursor to `end`.
async fn commit(
    poller: &Poller<'_>,
    store: &mut CursorStore,
    report: Report,
    stream: &Arc<str>,
    lines: Vec<Vec<u8>>,
    end: DateTime<Utc>,
) -> Result<(), PollError> {
    let count = lines.len();
    poller.deliver(stream, lines).await?;
    store.cursor.reports.insert(report.name().to_string(), end);
    store.persist().map_err(PollError::Cursor)?;
    tracing::debug!(source = %poller.context.name, report = report.name(), records = count, until = %rfc3339(end), "Report buckets delivered; cursor committed.");
    Ok(())
}

/// Every page of one report query (`has_more` / `next_page`, sent back as `page`).
async fn pages(
    poller: &Poller<'_>,
    report: Report,
    query: Vec<(String, String)>,
) -> Result<Vec<Value>, PollError> {
    let mut out = Vec::new();
    let mut next: Option<String> = None;
    for _ in 0..MAX_PAGES {
        let mut request = query.clone();
        if let Some(page) = &next {
            request.push(("page".to_string(), page.clone()));
        }
        let body = poller
            .reports
            .get_with_retry(
                &poller.context.name,
                report.path(),
                &request,
                &poller.backoff,
                &poller.context.shutdown,
            )
            .await?;
        let more = body
            .get("has_more")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        next = body
            .get("next_page")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string);
        out.push(body);
        if !more || next.is_none() {
            return Ok(out);
        }
    }
    Err(PollError::Api(super::ApiError::Unexpected(format!(
        "{}: more than {MAX_PAGES} pages",
        report.name()
    ))))
}

fn warn_unreadable(poller: &Poller<'_>, report: Report, unreadable: usize) {
    if unreadable > 0 {
        tracing::warn!(source = %poller.context.name, report = report.name(), unreadable, "Report entries without a readable time were skipped.");
    }
}

fn rfc3339(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Secs, true)
}
