//! Watches: replay retained history from the database, then follow the live broadcast.
//!
//! The task subscribes to the broadcast before reading history, so no commit can fall between
//! the two; events it already sent are skipped by revision. A watcher too slow for the
//! broadcast replays the gap from the database instead of losing events.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::task::{Context, Poll};

use futures::Stream;
use sqlx::Row;
use sqlx::sqlite::SqlitePool;
use tokio::sync::{broadcast, mpsc};

use super::{Event, EventType, ObjectKey, StoreError, parse_value};

/// Rows read per history query.
const REPLAY_PAGE: i64 = 1000;

/// The events of one watch, in revision order.
pub struct WatchStream {
    rx: mpsc::Receiver<Result<Arc<Event>, StoreError>>,
    progress: Arc<AtomicI64>,
}

impl WatchStream {
    /// A revision through which every matching event has been received by the caller, for
    /// bookmarks; None while events are still queued.
    ///
    /// The task stores progress only after sending the events it covers, and this reads the
    /// progress before checking the queue is empty, so the answer is never ahead of delivery.
    pub fn progress(&self) -> Option<i64> {
        let progress = self.progress.load(Ordering::Acquire);
        self.rx.is_empty().then_some(progress)
    }
}

impl Stream for WatchStream {
    type Item = Result<Arc<Event>, StoreError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.rx.poll_recv(cx)
    }
}

struct Filter {
    resource: String,
    namespace: Option<String>,
}

impl Filter {
    fn matches(&self, event: &Event) -> bool {
        event.key.resource == self.resource
            && self
                .namespace
                .as_ref()
                .is_none_or(|ns| *ns == event.key.namespace)
    }
}

pub(super) fn start(
    readers: SqlitePool,
    mut live: broadcast::Receiver<Arc<Event>>,
    resource: String,
    namespace: Option<String>,
    since: i64,
) -> WatchStream {
    let (tx, rx) = mpsc::channel(1024);
    let progress = Arc::new(AtomicI64::new(since));
    let marker = progress.clone();
    let filter = Filter {
        resource,
        namespace,
    };
    tokio::spawn(async move {
        let mut last = since;
        if replay(&readers, &filter, &tx, &mut last).await.is_err() {
            return;
        }
        marker.fetch_max(last, Ordering::Release);
        loop {
            let received = tokio::select! {
                _ = tx.closed() => return,
                received = live.recv() => received,
            };
            match received {
                Ok(event) => {
                    let revision = event.revision;
                    if revision > last && filter.matches(&event) {
                        last = revision;
                        if tx.send(Ok(event)).await.is_err() {
                            return;
                        }
                    }
                    marker.fetch_max(revision, Ordering::Release);
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    if replay(&readers, &filter, &tx, &mut last).await.is_err() {
                        return;
                    }
                    marker.fetch_max(last, Ordering::Release);
                }
                Err(broadcast::error::RecvError::Closed) => return,
            }
        }
    });
    WatchStream { rx, progress }
}

/// Sends every retained event after `last`; stops early (Err) if the receiver is gone or the
/// database fails (the error is sent first).
async fn replay(
    readers: &SqlitePool,
    filter: &Filter,
    tx: &mpsc::Sender<Result<Arc<Event>, StoreError>>,
    last: &mut i64,
) -> Result<(), ()> {
    loop {
        let rows = match read_page(readers, filter, *last).await {
            Ok(rows) => rows,
            Err(error) => {
                let _ = tx.send(Err(error)).await;
                return Err(());
            }
        };
        if rows.is_empty() {
            return Ok(());
        }
        for event in rows {
            *last = event.revision;
            if tx.send(Ok(Arc::new(event))).await.is_err() {
                return Err(());
            }
        }
    }
}

/// Reads the next page of retained events after `after`. An event's previous state is the
/// row its `prev_revision` names (compaction keeps that row while any event after the
/// compacted revision names it); rows written before migration 0002 carry a copy of their own
/// in `prev_value`. A replay that compaction has overtaken (a watcher far behind) fails with
/// [`StoreError::Compacted`] rather than skipping what was removed; the check reads the same
/// snapshot as the page.
async fn read_page(
    readers: &SqlitePool,
    filter: &Filter,
    after: i64,
) -> Result<Vec<Event>, StoreError> {
    let mut tx = readers.begin().await?;
    let compacted: i64 =
        sqlx::query_scalar("SELECT value FROM meta WHERE key = 'compact_revision'")
            .fetch_one(&mut *tx)
            .await?;
    if compacted > after {
        return Err(StoreError::Compacted {
            requested: after,
            compacted,
        });
    }
    let rows = match &filter.namespace {
        Some(ns) => {
            sqlx::query(
                "SELECT e.revision, e.namespace, e.name, e.type, e.value,
                        COALESCE(p.value, e.prev_value) AS prev_value
                 FROM events e LEFT JOIN events p ON p.revision = e.prev_revision
                 WHERE e.resource = ?1 AND e.revision > ?2 AND e.namespace = ?3
                 ORDER BY e.revision LIMIT ?4",
            )
            .bind(&filter.resource)
            .bind(after)
            .bind(ns)
            .bind(REPLAY_PAGE)
            .fetch_all(&mut *tx)
            .await?
        }
        None => {
            sqlx::query(
                "SELECT e.revision, e.namespace, e.name, e.type, e.value,
                        COALESCE(p.value, e.prev_value) AS prev_value
                 FROM events e LEFT JOIN events p ON p.revision = e.prev_revision
                 WHERE e.resource = ?1 AND e.revision > ?2
                 ORDER BY e.revision LIMIT ?3",
            )
            .bind(&filter.resource)
            .bind(after)
            .bind(REPLAY_PAGE)
            .fetch_all(&mut *tx)
            .await?
        }
    };
    tx.commit().await?;
    let mut events = Vec::with_capacity(rows.len());
    for row in rows {
        let key = ObjectKey {
            resource: filter.resource.clone(),
            namespace: row.try_get("namespace")?,
            name: row.try_get("name")?,
        };
        let value: &str = row.try_get("value")?;
        let prev: Option<&str> = row.try_get("prev_value")?;
        let object = Arc::new(parse_value(value, &key)?);
        let prev = match prev {
            Some(text) => Some(Arc::new(parse_value(text, &key)?)),
            None => None,
        };
        events.push(Event {
            revision: row.try_get("revision")?,
            kind: EventType::from_code(row.try_get("type")?),
            key,
            object,
            prev,
        });
    }
    Ok(events)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;
    use serde_json::json;

    /// A replay that starts below what compaction has removed fails, rather than skipping it.
    #[tokio::test]
    async fn a_replay_overtaken_by_compaction_fails_with_compacted() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("skiff.db").display());
        let store = Store::open(&url).await.unwrap();
        let cm = |name: &str| {
            json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": "default"}})
        };
        let key = |name: &str| ObjectKey::new("configmaps", "default", name);
        let first = store.create(key("a"), cm("a")).await.unwrap().revision;
        let second = store
            .update(key("a"), cm("a"), None)
            .await
            .unwrap()
            .revision;
        let third = store.create(key("b"), cm("b")).await.unwrap().revision;
        assert!(store.compact_step(second, 1000).await.unwrap().done);
        let filter = Filter {
            resource: "configmaps".into(),
            namespace: None,
        };
        match read_page(&store.inner.readers, &filter, first).await {
            Err(StoreError::Compacted {
                requested,
                compacted,
            }) => assert_eq!((requested, compacted), (first, second)),
            other => panic!("expected Compacted, got {:?}", other.map(|p| p.len())),
        }
        let page = read_page(&store.inner.readers, &filter, second)
            .await
            .unwrap();
        let revisions: Vec<i64> = page.iter().map(|e| e.revision).collect();
        assert_eq!(revisions, [third]);
    }
}
