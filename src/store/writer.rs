//! The single writer: drains queued writes into one transaction per batch (group commit),
//! assigns revisions, and publishes events only after the commit is durable.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use serde_json::Value;
use sqlx::Connection;
use sqlx::Row as _;
use sqlx::sqlite::SqliteConnection;
use tokio::sync::{broadcast, mpsc, oneshot};

use super::{Event, EventType, NAMESPACES, Namespaces, ObjectKey, StoreError, Stored};

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
        reply: oneshot::Sender<Result<CompactStep, StoreError>>,
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
    namespaces: Namespaces,
) -> mpsc::Sender<Request> {
    let (tx, rx) = mpsc::channel(4096);
    let writer = Writer {
        conn,
        events,
        revision,
        compacted,
        rows: RowCache::default(),
        namespaces,
    };
    tokio::spawn(writer.run(rx));
    tx
}

struct Writer {
    conn: SqliteConnection,
    events: broadcast::Sender<Arc<Event>>,
    revision: Arc<AtomicI64>,
    compacted: Arc<AtomicI64>,
    rows: RowCache,
    namespaces: Namespaces,
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
                self.note_namespaces(&pending);
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

    /// Applies the writes in one transaction: the objects' current rows come from the row
    /// cache or one read, each write is decided in memory in order, and the batch is written
    /// with a few multi-row statements. On a database error the whole batch is rolled back
    /// and every caller gets the error.
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
        let mut replies = Vec::with_capacity(writes.len());
        let mut ops = Vec::with_capacity(writes.len());
        for (op, reply) in writes {
            ops.push(op);
            replies.push(reply);
        }
        let mut tx = match self.conn.begin().await {
            Ok(tx) => tx,
            Err(error) => return Err((replies, error)),
        };
        let outcome: Result<(Batch, Vec<Result<(Stored, Event), StoreError>>), sqlx::Error> =
            async {
                let missing: Vec<&ObjectKey> = {
                    let mut seen = HashSet::new();
                    ops.iter()
                        .map(WriteOp::key)
                        .filter(|k| self.rows.get(k).is_none() && seen.insert(*k))
                        .collect()
                };
                let fetched = fetch_rows(&mut tx, &missing).await?;
                let mut batch = Batch::default();
                let mut revision = start;
                let results = ops
                    .into_iter()
                    .map(|op| {
                        let key = op.key().clone();
                        if !batch.state.contains_key(&key) {
                            let before = self
                                .rows
                                .get(&key)
                                .cloned()
                                .or_else(|| fetched.get(&key).cloned());
                            if before.is_some() {
                                batch.existed.insert(key.clone());
                            }
                            batch.state.insert(key.clone(), before);
                        }
                        batch.apply(op, &mut revision)
                    })
                    .collect::<Vec<_>>();
                batch.last = revision;
                write_batch(&mut tx, &batch).await?;
                Ok((batch, results))
            }
            .await;
        let (batch, results) = match outcome {
            Ok(done) => done,
            Err(error) => {
                // The transaction rolls back when dropped; the cache may hold its rows.
                self.rows.clear();
                return Err((replies, error));
            }
        };
        if let Err(error) = tx.commit().await {
            self.rows.clear();
            return Err((replies, error));
        }
        for (key, row) in batch.state {
            match row {
                Some(row) => self.rows.put(key, row),
                None => self.rows.remove(&key),
            }
        }
        let pending = replies
            .into_iter()
            .zip(results)
            .map(|(reply, result)| Pending { reply, result })
            .collect();
        Ok((pending, batch.last))
    }

    /// Keeps the shared Namespaces map true to the batch just committed.
    fn note_namespaces(&self, pending: &[Pending]) {
        let changes: Vec<&Event> = pending
            .iter()
            .filter_map(|p| p.result.as_ref().ok())
            .map(|(_, event)| event)
            .filter(|event| event.key.resource == NAMESPACES)
            .collect();
        if changes.is_empty() {
            return;
        }
        let mut namespaces = self.namespaces.write().unwrap_or_else(|p| p.into_inner());
        for event in changes {
            match event.kind {
                EventType::Deleted => {
                    namespaces.remove(&event.key.name);
                }
                _ => {
                    namespaces.insert(event.key.name.clone(), event.object.clone());
                }
            }
        }
    }

    /// Compacts the next stretch of history above the compacted revision, at most `batch`
    /// events of it and no further than `upto`: each of those events makes the version it
    /// replaced unneeded (no watch may start below the new compacted revision, so none needs
    /// it as an event or as the previous state of a later one), and a deletion's own row goes
    /// with it. Current versions stay: their rows hold the live objects.
    async fn compact(&mut self, upto: i64, batch: i64) -> Result<CompactStep, StoreError> {
        let from = self.compacted.load(Ordering::Acquire);
        let upto = upto.min(self.revision.load(Ordering::Acquire));
        if upto <= from {
            return Ok(CompactStep {
                removed: 0,
                done: true,
            });
        }
        let mut tx = self.conn.begin().await?;
        let cut: Option<i64> = sqlx::query_scalar(
            "SELECT revision FROM events WHERE revision > ?1 AND revision <= ?2
             ORDER BY revision LIMIT 1 OFFSET ?3",
        )
        .bind(from)
        .bind(upto)
        .bind(batch - 1)
        .fetch_optional(&mut *tx)
        .await?;
        let to = cut.unwrap_or(upto);
        let replaced = sqlx::query(
            "DELETE FROM events WHERE revision IN
               (SELECT prev_revision FROM events
                WHERE revision > ?1 AND revision <= ?2 AND prev_revision IS NOT NULL)",
        )
        .bind(from)
        .bind(to)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        let deletions =
            sqlx::query("DELETE FROM events WHERE revision > ?1 AND revision <= ?2 AND type = ?3")
                .bind(from)
                .bind(to)
                .bind(EventType::Deleted.code())
                .execute(&mut *tx)
                .await?
                .rows_affected();
        sqlx::query("UPDATE meta SET value = ?1 WHERE key = 'compact_revision'")
            .bind(to)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        self.compacted.store(to, Ordering::Release);
        Ok(CompactStep {
            removed: replaced + deletions,
            done: to == upto,
        })
    }
}

/// What one compaction step did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompactStep {
    /// History rows removed.
    pub removed: u64,
    /// Whether history is now compacted up to the revision asked for.
    pub done: bool,
}

fn set_resource_version(object: &mut Value, revision: i64) {
    if let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.insert(
            "resourceVersion".to_string(),
            Value::String(revision.to_string()),
        );
    }
}

impl WriteOp {
    fn key(&self) -> &ObjectKey {
        match self {
            WriteOp::Create { key, .. }
            | WriteOp::Update { key, .. }
            | WriteOp::Delete { key, .. } => key,
        }
    }
}

/// An object's current version as the writer knows it.
#[derive(Clone)]
struct Row {
    revision: i64,
    /// The revision it was created at.
    created: i64,
    object: Arc<Value>,
}

/// How many recently written rows the writer remembers, so that most writes (a pod's status
/// updates right after its creation, say) need no read before them.
const CACHED_ROWS: usize = 2048;

/// The writer's cache of current rows. Only the writer changes the objects table, so a row
/// it wrote stays true until it writes that key again; a failed batch clears the cache.
#[derive(Default)]
struct RowCache {
    rows: HashMap<ObjectKey, Row>,
    order: VecDeque<ObjectKey>,
}

impl RowCache {
    fn get(&self, key: &ObjectKey) -> Option<&Row> {
        self.rows.get(key)
    }

    fn put(&mut self, key: ObjectKey, row: Row) {
        if self.rows.insert(key.clone(), row).is_none() {
            self.order.push_back(key);
        }
        while self.rows.len() > CACHED_ROWS {
            match self.order.pop_front() {
                Some(old) => {
                    self.rows.remove(&old);
                }
                None => break,
            }
        }
    }

    fn remove(&mut self, key: &ObjectKey) {
        self.rows.remove(key);
    }

    fn clear(&mut self) {
        self.rows.clear();
        self.order.clear();
    }
}

/// One row of the `events` table.
struct EventRow {
    revision: i64,
    key: ObjectKey,
    kind: EventType,
    /// The object after the write (for a delete: as deleted), as JSON.
    text: String,
    /// The revision of the version it replaces (None for a creation).
    prev: Option<i64>,
}

/// One batch decided in memory: each key's state as the writes go, and what must be written.
#[derive(Default)]
struct Batch {
    /// Each key's current row (None: absent) as of the writes applied so far.
    state: HashMap<ObjectKey, Option<Row>>,
    /// Keys that had a row before the batch.
    existed: HashSet<ObjectKey>,
    /// Keys deleted at some point in the batch.
    deleted: HashSet<ObjectKey>,
    /// Keys written in the batch.
    touched: HashSet<ObjectKey>,
    /// The events rows, in revision order.
    events: Vec<EventRow>,
    /// The last revision assigned.
    last: i64,
}

impl Batch {
    /// Applies one write to the in-memory state. Logical failures (exists, not found,
    /// conflict) leave the state as it was.
    fn apply(&mut self, op: WriteOp, revision: &mut i64) -> Result<(Stored, Event), StoreError> {
        let key = op.key().clone();
        let current = self.state.get(&key).cloned().flatten();
        let (kind, mut object, created) = match (op, &current) {
            (WriteOp::Create { .. }, Some(_)) => return Err(StoreError::AlreadyExists),
            (WriteOp::Create { object, .. }, None) => (EventType::Added, object, None),
            (WriteOp::Update { .. } | WriteOp::Delete { .. }, None) => {
                return Err(StoreError::NotFound);
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
                Some(row),
            ) if expected != row.revision => {
                return Err(StoreError::Conflict {
                    expected,
                    current: row.revision,
                });
            }
            (WriteOp::Update { object, .. }, Some(row)) => {
                (EventType::Modified, object, Some(row.created))
            }
            (WriteOp::Delete { .. }, Some(row)) => {
                (EventType::Deleted, row.object.as_ref().clone(), None)
            }
        };
        *revision += 1;
        let rev = *revision;
        set_resource_version(&mut object, rev);
        // Straight into a buffer (a `Value`'s `Display` goes through the formatter, slower on
        // this single writer's path); serialising a `Value` cannot fail.
        let text = serde_json::to_string(&object).unwrap_or_default();
        let object = Arc::new(object);
        let prev = current.as_ref();
        self.events.push(EventRow {
            revision: rev,
            key: key.clone(),
            kind,
            text,
            prev: prev.map(|row| row.revision),
        });
        self.touched.insert(key.clone());
        let next = match kind {
            EventType::Deleted => {
                self.deleted.insert(key.clone());
                None
            }
            _ => Some(Row {
                revision: rev,
                created: created.unwrap_or(rev),
                object: object.clone(),
            }),
        };
        let event = Event {
            revision: rev,
            key: key.clone(),
            kind,
            object: object.clone(),
            prev: prev.map(|row| row.object.clone()),
        };
        self.state.insert(key, next);
        Ok((
            Stored {
                revision: rev,
                object,
            },
            event,
        ))
    }
}

/// Rows per multi-row statement (SQLite allows 32,766 parameters; 7 columns x 128 rows stays
/// well inside it).
const ROWS_PER_STATEMENT: usize = 128;

/// `rows` groups of `columns` placeholders: the only part of the writer's statements built at
/// run time (hence `AssertSqlSafe`); every value is bound.
fn placeholders(rows: usize, columns: usize) -> String {
    let row = format!("({})", vec!["?"; columns].join(","));
    vec![row; rows].join(",")
}

/// The condition "the key is one of `rows` bound keys". The keys are selected from the VALUES
/// list rather than compared with it directly, which SQLite would answer by scanning the whole
/// table; this way each key is a primary-key lookup.
fn keys_in(rows: usize) -> String {
    format!(
        "(resource, namespace, name) IN (SELECT column1, column2, column3 FROM (VALUES {}))",
        placeholders(rows, 3)
    )
}

/// A statement over `(resource, namespace, name)` rows with the keys bound in order.
fn keys_query<'q>(
    sql: String,
    keys: &[&'q ObjectKey],
) -> sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments> {
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
    for key in keys {
        query = query
            .bind(key.resource.as_str())
            .bind(key.namespace.as_str())
            .bind(key.name.as_str());
    }
    query
}

/// Reads the current versions of `keys` (those not cached) in as few statements as possible.
async fn fetch_rows(
    tx: &mut SqliteConnection,
    keys: &[&ObjectKey],
) -> Result<HashMap<ObjectKey, Row>, sqlx::Error> {
    let mut rows = HashMap::with_capacity(keys.len());
    for chunk in keys.chunks(ROWS_PER_STATEMENT) {
        let sql = format!(
            "SELECT resource, namespace, name, revision, created_revision, value
             FROM current_objects WHERE {}",
            keys_in(chunk.len())
        );
        let query = keys_query(sql, chunk);
        for row in query.fetch_all(&mut *tx).await? {
            let key = ObjectKey {
                resource: row.try_get(0)?,
                namespace: row.try_get(1)?,
                name: row.try_get(2)?,
            };
            let text: &str = row.try_get(5)?;
            let object: Value = serde_json::from_str(text).map_err(|source| {
                sqlx::Error::Decode(Box::new(StoreError::Corrupt {
                    key: format!("{}/{}/{}", key.resource, key.namespace, key.name),
                    source,
                }))
            })?;
            rows.insert(
                key,
                Row {
                    revision: row.try_get(3)?,
                    created: row.try_get(4)?,
                    object: Arc::new(object),
                },
            );
        }
    }
    Ok(rows)
}

/// Writes a decided batch: every write's event row (which holds the object) and the index
/// of live keys: keys that went (or were replaced by a new object of the same name) are deleted,
/// the rest point at their new current revision.
async fn write_batch(tx: &mut SqliteConnection, batch: &Batch) -> Result<(), sqlx::Error> {
    let gone: Vec<&ObjectKey> = batch
        .touched
        .iter()
        .filter(|k| batch.existed.contains(*k) && batch.deleted.contains(*k))
        .collect();
    for chunk in gone.chunks(ROWS_PER_STATEMENT) {
        let sql = format!("DELETE FROM objects WHERE {}", keys_in(chunk.len()));
        let query = keys_query(sql, chunk);
        query.execute(&mut *tx).await?;
    }
    let present: Vec<(&ObjectKey, &Row)> = batch
        .touched
        .iter()
        .filter_map(|k| {
            batch
                .state
                .get(k)
                .and_then(Option::as_ref)
                .map(|row| (k, row))
        })
        .collect();
    for chunk in present.chunks(ROWS_PER_STATEMENT) {
        let sql = format!(
            "INSERT INTO objects (resource, namespace, name, revision, created_revision)
             VALUES {}
             ON CONFLICT (resource, namespace, name)
             DO UPDATE SET revision = excluded.revision",
            placeholders(chunk.len(), 5)
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for (key, row) in chunk {
            query = query
                .bind(key.resource.as_str())
                .bind(key.namespace.as_str())
                .bind(key.name.as_str())
                .bind(row.revision)
                .bind(row.created);
        }
        query.execute(&mut *tx).await?;
    }
    for chunk in batch.events.chunks(ROWS_PER_STATEMENT) {
        let sql = format!(
            "INSERT INTO events (revision, resource, namespace, name, type, value, prev_revision)
             VALUES {}",
            placeholders(chunk.len(), 7)
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for row in chunk {
            query = query
                .bind(row.revision)
                .bind(row.key.resource.as_str())
                .bind(row.key.namespace.as_str())
                .bind(row.key.name.as_str())
                .bind(row.kind.code())
                .bind(row.text.as_str())
                .bind(row.prev);
        }
        query.execute(&mut *tx).await?;
    }
    sqlx::query("UPDATE meta SET value = ?1 WHERE key = 'revision'")
        .bind(batch.last)
        .execute(&mut *tx)
        .await?;
    Ok(())
}
