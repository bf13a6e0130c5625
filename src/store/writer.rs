//! The single writer: drains queued writes into one transaction per batch (group commit),
//! assigns revisions, and publishes events only after the commit is durable.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use serde_json::Value;
use sqlx::sqlite::SqliteConnection;
use sqlx::{Connection, Row};
use tokio::sync::{broadcast, mpsc, oneshot};

use super::{Event, EventType, ObjectKey, StoreError, Stored};

/// The most writes committed in one transaction.
const MAX_BATCH: usize = 512;

/// A queued request for the writer.
pub(super) enum Request {
    Write {
        op: WriteOp,
        reply: oneshot::Sender<Result<Stored, StoreError>>,
    },
    Compact {
        upto: i64,
        batch: i64,
        reply: oneshot::Sender<Result<u64, StoreError>>,
    },
}

/// One write.
pub(super) enum WriteOp {
    Create {
        key: ObjectKey,
        object: Value,
    },
    Update {
        key: ObjectKey,
        object: Value,
        expected: Option<i64>,
    },
    Delete {
        key: ObjectKey,
        expected: Option<i64>,
    },
}

/// Starts the writer task; it ends when every sender is dropped.
pub(super) fn spawn(
    conn: SqliteConnection,
    events: broadcast::Sender<Arc<Event>>,
    revision: Arc<AtomicI64>,
    compacted: Arc<AtomicI64>,
) -> mpsc::Sender<Request> {
    let (tx, rx) = mpsc::channel(4096);
    let writer = Writer {
        conn,
        events,
        revision,
        compacted,
    };
    tokio::spawn(writer.run(rx));
    tx
}

struct Writer {
    conn: SqliteConnection,
    events: broadcast::Sender<Arc<Event>>,
    revision: Arc<AtomicI64>,
    compacted: Arc<AtomicI64>,
}

/// The outcome of one write inside a batch, before the commit.
struct Pending {
    reply: oneshot::Sender<Result<Stored, StoreError>>,
    result: Result<(Stored, Event), StoreError>,
}

impl Writer {
    async fn run(mut self, mut rx: mpsc::Receiver<Request>) {
        let mut writes = Vec::with_capacity(MAX_BATCH);
        while let Some(first) = rx.recv().await {
            let mut next = Some(first);
            while let Some(request) = next.take() {
                match request {
                    Request::Write { op, reply } => writes.push((op, reply)),
                    Request::Compact { upto, batch, reply } => {
                        // Commit what came before, so compaction sees a settled history.
                        self.commit_batch(&mut writes).await;
                        let _ = reply.send(self.compact(upto, batch).await);
                    }
                }
                if writes.len() < MAX_BATCH {
                    next = rx.try_recv().ok();
                }
            }
            self.commit_batch(&mut writes).await;
        }
    }

    async fn commit_batch(
        &mut self,
        writes: &mut Vec<(WriteOp, oneshot::Sender<Result<Stored, StoreError>>)>,
    ) {
        if writes.is_empty() {
            return;
        }
        let start = self.revision.load(Ordering::Acquire);
        match self.apply_batch(writes.drain(..), start).await {
            Ok((pending, last)) => {
                self.revision.store(last, Ordering::Release);
                for p in pending {
                    let answer = p.result.map(|(stored, event)| {
                        // No receivers is fine: nobody is watching.
                        let _ = self.events.send(Arc::new(event));
                        stored
                    });
                    let _ = p.reply.send(answer);
                }
            }
            Err((replies, error)) => {
                tracing::error!(%error, "store batch failed; rolled back");
                let error = Arc::new(error);
                for reply in replies {
                    let _ = reply.send(Err(StoreError::BatchFailed(error.clone())));
                }
            }
        }
    }

    /// Applies the writes in one transaction. On a database error the whole batch is rolled
    /// back and every caller gets the error.
    #[allow(clippy::type_complexity)]
    async fn apply_batch(
        &mut self,
        writes: impl Iterator<Item = (WriteOp, oneshot::Sender<Result<Stored, StoreError>>)>,
        start: i64,
    ) -> Result<
        (Vec<Pending>, i64),
        (
            Vec<oneshot::Sender<Result<Stored, StoreError>>>,
            sqlx::Error,
        ),
    > {
        let writes: Vec<_> = writes.collect();
        let mut pending = Vec::with_capacity(writes.len());
        let mut revision = start;
        let outcome: Result<(), sqlx::Error> = async {
            let mut tx = self.conn.begin().await?;
            for (op, reply) in writes {
                let result = apply_one(&mut tx, op, &mut revision).await?;
                pending.push(Pending { reply, result });
            }
            sqlx::query("UPDATE meta SET value = ?1 WHERE key = 'revision'")
                .bind(revision)
                .execute(&mut *tx)
                .await?;
            tx.commit().await
        }
        .await;
        match outcome {
            Ok(()) => Ok((pending, revision)),
            Err(error) => Err((pending.into_iter().map(|p| p.reply).collect(), error)),
        }
    }

    async fn compact(&mut self, upto: i64, batch: i64) -> Result<u64, StoreError> {
        let upto = upto.min(self.revision.load(Ordering::Acquire));
        let mut tx = self.conn.begin().await?;
        let removed = sqlx::query(
            "DELETE FROM events WHERE revision IN
               (SELECT revision FROM events WHERE revision <= ?1 ORDER BY revision LIMIT ?2)",
        )
        .bind(upto)
        .bind(batch)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        // The compacted revision moves only as far as the rows actually removed.
        let oldest_left: Option<i64> =
            sqlx::query_scalar("SELECT MIN(revision) FROM events WHERE revision <= ?1")
                .bind(upto)
                .fetch_one(&mut *tx)
                .await?;
        let compacted = match oldest_left {
            Some(rev) => rev - 1,
            None => upto,
        }
        .max(self.compacted.load(Ordering::Acquire));
        sqlx::query("UPDATE meta SET value = ?1 WHERE key = 'compact_revision'")
            .bind(compacted)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        self.compacted.store(compacted, Ordering::Release);
        Ok(removed)
    }
}

fn set_resource_version(object: &mut Value, revision: i64) {
    if let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.insert(
            "resourceVersion".to_string(),
            Value::String(revision.to_string()),
        );
    }
}

/// Applies one write inside the batch's transaction. Logical failures (exists, not found,
/// conflict) are returned inside `Ok`; only database errors abort the batch.
async fn apply_one(
    tx: &mut SqliteConnection,
    op: WriteOp,
    revision: &mut i64,
) -> Result<Result<(Stored, Event), StoreError>, sqlx::Error> {
    let key = match &op {
        WriteOp::Create { key, .. } | WriteOp::Update { key, .. } | WriteOp::Delete { key, .. } => {
            key.clone()
        }
    };
    let current = sqlx::query(
        "SELECT revision, value FROM objects WHERE resource = ?1 AND namespace = ?2 AND name = ?3",
    )
    .bind(&key.resource)
    .bind(&key.namespace)
    .bind(&key.name)
    .fetch_optional(&mut *tx)
    .await?;
    let current: Option<(i64, String)> = match current {
        Some(row) => Some((row.try_get(0)?, row.try_get(1)?)),
        None => None,
    };

    let (kind, mut object, prev_text) = match (op, &current) {
        (WriteOp::Create { .. }, Some(_)) => return Ok(Err(StoreError::AlreadyExists)),
        (WriteOp::Create { object, .. }, None) => (EventType::Added, object, None),
        (WriteOp::Update { .. } | WriteOp::Delete { .. }, None) => {
            return Ok(Err(StoreError::NotFound));
        }
        (
            WriteOp::Update {
                expected: Some(expected),
                ..
            }
            | WriteOp::Delete {
                expected: Some(expected),
                ..
            },
            Some((current_rev, _)),
        ) if expected != *current_rev => {
            return Ok(Err(StoreError::Conflict {
                expected,
                current: *current_rev,
            }));
        }
        (WriteOp::Update { object, .. }, Some((_, prev))) => {
            (EventType::Modified, object, Some(prev.clone()))
        }
        (WriteOp::Delete { .. }, Some((_, prev))) => match serde_json::from_str(prev) {
            Ok(object) => (EventType::Deleted, object, Some(prev.clone())),
            Err(source) => {
                return Ok(Err(StoreError::Corrupt {
                    key: format!("{}/{}/{}", key.resource, key.namespace, key.name),
                    source,
                }));
            }
        },
    };

    *revision += 1;
    let rev = *revision;
    set_resource_version(&mut object, rev);
    let text = object.to_string();

    match kind {
        EventType::Added => {
            sqlx::query(
                "INSERT INTO objects (resource, namespace, name, revision, created_revision, value)
                 VALUES (?1, ?2, ?3, ?4, ?4, ?5)",
            )
            .bind(&key.resource)
            .bind(&key.namespace)
            .bind(&key.name)
            .bind(rev)
            .bind(&text)
            .execute(&mut *tx)
            .await?;
        }
        EventType::Modified => {
            sqlx::query(
                "UPDATE objects SET revision = ?4, value = ?5
                 WHERE resource = ?1 AND namespace = ?2 AND name = ?3",
            )
            .bind(&key.resource)
            .bind(&key.namespace)
            .bind(&key.name)
            .bind(rev)
            .bind(&text)
            .execute(&mut *tx)
            .await?;
        }
        EventType::Deleted => {
            sqlx::query("DELETE FROM objects WHERE resource = ?1 AND namespace = ?2 AND name = ?3")
                .bind(&key.resource)
                .bind(&key.namespace)
                .bind(&key.name)
                .execute(&mut *tx)
                .await?;
        }
    }
    sqlx::query(
        "INSERT INTO events (revision, resource, namespace, name, type, value, prev_value)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )
    .bind(rev)
    .bind(&key.resource)
    .bind(&key.namespace)
    .bind(&key.name)
    .bind(kind.code())
    .bind(&text)
    .bind(prev_text.as_deref())
    .execute(&mut *tx)
    .await?;

    let prev = prev_text.and_then(|t| serde_json::from_str(&t).ok().map(Arc::new));
    let object = Arc::new(object);
    Ok(Ok((
        Stored {
            revision: rev,
            object: object.clone(),
        },
        Event {
            revision: rev,
            key,
            kind,
            object,
            prev,
        },
    )))
}
