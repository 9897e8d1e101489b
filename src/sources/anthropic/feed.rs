//! Paging through the Activity Feed from the committed cursor to the newest activity.

use super::activity::activity_line;
use super::cursor::CursorStore;
use super::{PollError, Poller};
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::Value;
use std::sync::Arc;

/// The feed's endpoint.
pub(crate) const PATH: &str = "/v1/compliance/activities";

/// The stream name of activity batches (dead letters name it).
const STREAM: &str = "anthropic:activities";

/// One page of the feed.
#[derive(Debug)]
pub(crate) struct Page {
    /// The activities, newest first, as the API sent them.
    pub(crate) data: Vec<Value>,
    /// Whether more pages exist in the direction asked.
    pub(crate) has_more: bool,
    /// The id of the newest activity on the page.
    pub(crate) first_id: Option<String>,
    /// The id of the oldest activity on the page.
    pub(crate) last_id: Option<String>,
}

impl Page {
    /// Read a page; a body without a `data` array is not a page.
    pub(crate) fn parse(body: Value) -> Result<Page, PollError> {
        let Value::Object(mut body) = body else {
            return Err(unexpected("the body is not an object"));
        };
        let Some(Value::Array(data)) = body.remove("data") else {
            return Err(unexpected("the body has no `data` array"));
        };
        let id_of = |value: &Value| value.get("id").and_then(Value::as_str).map(str::to_string);
        let text = |value: Option<Value>| match value {
            Some(Value::String(s)) if !s.is_empty() => Some(s),
            _ => None,
        };
        // The ids in the body win; the items' own ids stand in when they are absent (an item
        // without an id, dead-lettered downstream, must not stall the cursor).
        let first_id = text(body.remove("first_id")).or_else(|| data.iter().find_map(id_of));
        let last_id = text(body.remove("last_id")).or_else(|| data.iter().rev().find_map(id_of));
        let has_more = body
            .get("has_more")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        Ok(Page {
            data,
            has_more,
            first_id,
            last_id,
        })
    }
}

fn unexpected(what: &str) -> PollError {
    PollError::Api(super::ApiError::Unexpected(format!(
        "activity page: {what}"
    )))
}

/// Read the feed from the cursor to the newest activity, committing after every page.
pub(crate) async fn poll(
    poller: &mut Poller<'_>,
    store: &mut CursorStore,
) -> Result<(), PollError> {
    let stream: Arc<str> = Arc::from(STREAM);
    loop {
        let (page, bootstrap) = match store.cursor.activities.last_id.clone() {
            Some(cursor) => {
                let mut query = filters(poller);
                query.push(("before_id".into(), cursor));
                (fetch(poller, &query).await?, false)
            }
            None => match oldest_page(poller, store.cursor.activities.start_from).await? {
                Some(page) => (page, true),
                None => return Ok(()),
            },
        };
        let Some(newest) = page.first_id.clone() else {
            return Ok(());
        };
        let newest_time = page
            .data
            .iter()
            .find_map(|a| a.get("created_at").and_then(Value::as_str))
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.with_timezone(&Utc));
        let count = page.data.len();
        // The API sends newest first; the pipeline gets them in the order they happened.
        let lines = page.data.iter().rev().map(activity_line).collect();
        poller.deliver(&stream, lines).await?;
        store.cursor.activities.last_id = Some(newest);
        store.cursor.activities.last_created_at = newest_time;
        store.persist().map_err(PollError::Cursor)?;
        tracing::debug!(source = %poller.context.name, activities = count, "Activity page delivered; cursor committed.");
        // After the first-start page, newer pages may follow whatever its `has_more` said
        // (it spoke of older ones).
        if !bootstrap && !page.has_more {
            return Ok(());
        }
    }
}

/// The oldest page of the first-start window, walking from the newest towards older pages;
/// `None` when the window is still empty.
async fn oldest_page(
    poller: &Poller<'_>,
    start_from: Option<DateTime<Utc>>,
) -> Result<Option<Page>, PollError> {
    let mut base = filters(poller);
    if let Some(start) = start_from {
        base.push((
            "created_at.gte".into(),
            start.to_rfc3339_opts(SecondsFormat::Secs, true),
        ));
    }
    let mut after: Option<String> = None;
    let mut oldest: Option<Page> = None;
    loop {
        let mut query = base.clone();
        if let Some(after) = &after {
            query.push(("after_id".into(), after.clone()));
        }
        let page = fetch(poller, &query).await?;
        if page.data.is_empty() {
            return Ok(oldest);
        }
        let more = page.has_more;
        after = page.last_id.clone();
        oldest = Some(page);
        if !more || after.is_none() {
            return Ok(oldest);
        }
    }
}

/// The filters and page size every feed request carries.
fn filters(poller: &Poller<'_>) -> Vec<(String, String)> {
    let config = poller.config;
    let mut query = vec![("limit".to_string(), config.page_limit.to_string())];
    for (name, values) in [
        ("activity_types[]", &config.activity_types),
        ("actor_ids[]", &config.actor_ids),
        ("organization_ids[]", &config.organization_ids),
    ] {
        query.extend(values.iter().map(|v| (name.to_string(), v.clone())));
    }
    query
}

async fn fetch(poller: &Poller<'_>, query: &[(String, String)]) -> Result<Page, PollError> {
    let body = poller
        .feed
        .get_with_retry(
            &poller.context.name,
            PATH,
            query,
            &poller.backoff,
            &poller.context.shutdown,
        )
        .await?;
    Page::parse(body)
}
