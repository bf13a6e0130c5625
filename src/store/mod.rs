//! The revisioned object store.
//!
//! Every write gets the next global revision, which is the object's `resourceVersion`. The
//! current state lives in the `objects` table and the history of writes in `events`, from which
//! a watch can resume at any retained revision. All writes go through one writer task that
//! batches concurrent requests into a single SQLite transaction (group commit), so a write is
//! acknowledged only once it is durable (WAL, `synchronous=FULL`) and throughput comes from
//! batching rather than from weaker durability.
//!
//! # Guarantees
//! - `resourceVersion`s are strictly increasing across all objects and never reused, even after
//!   compaction or a restart.
//! - An acknowledged write survives `kill -9`.
//! - A watch started at revision `R` sees every event after `R` exactly once, in order, or fails
//!   with [`StoreError::Compacted`] when `R` is older than the compacted revision.

pub mod compact;
mod watch;
mod writer;

use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use serde_json::Value;
use sqlx::Row;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use tokio::sync::{broadcast, mpsc, oneshot};

pub use watch::WatchStream;
pub use writer::CompactStep;
use writer::{Request, WriteOp};

/// The most of the database file each connection maps into memory.
const MMAP_BYTES: u64 = 256 << 20;

/// The writer connection's page cache, in KiB (SQLite's default is 2 MiB).
const WRITER_CACHE_KIB: u64 = 32 << 10;

/// WAL pages after which a commit copies the WAL back into the database (SQLite's default is
/// 1,000, i.e. 4 MiB).
const WAL_CHECKPOINT_PAGES: u64 = 8192;

/// How many events the live broadcast keeps for slow watchers before they fall back to
/// replaying from the database.
const BROADCAST_CAPACITY: usize = 16 * 1024;

/// Identifies one object: its resource (`pods`, `deployments.apps`), namespace (empty for
/// cluster-scoped kinds) and name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectKey {
    /// `plural` for the core group, `plural.group` otherwise.
    pub resource: String,
    /// The namespace, or `""` for cluster-scoped objects.
    pub namespace: String,
    /// The object's name.
    pub name: String,
}

impl ObjectKey {
    /// Builds a key from its three parts.
    pub fn new(resource: &str, namespace: &str, name: &str) -> Self {
        Self {
            resource: resource.to_string(),
            namespace: namespace.to_string(),
            name: name.to_string(),
        }
    }
}

/// An object as stored, with the revision it was last written at.
#[derive(Debug, Clone)]
pub struct Stored {
    /// The object's `resourceVersion`.
    pub revision: i64,
    /// The object, with `metadata.resourceVersion` set.
    pub object: Arc<Value>,
}

/// What a write did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    /// The object was created.
    Added,
    /// The object was replaced.
    Modified,
    /// The object was removed.
    Deleted,
}

impl EventType {
    fn code(self) -> i64 {
        match self {
            EventType::Added => 0,
            EventType::Modified => 1,
            EventType::Deleted => 2,
        }
    }

    fn from_code(code: i64) -> Self {
        match code {
            0 => EventType::Added,
            1 => EventType::Modified,
            _ => EventType::Deleted,
        }
    }
}

/// One committed write, as watches see it.
#[derive(Debug, Clone)]
pub struct Event {
    /// The revision the write got.
    pub revision: i64,
    /// The object written.
    pub key: ObjectKey,
    /// Added, modified or deleted.
    pub kind: EventType,
    /// The object after the write; for a delete, the last state with the delete's revision.
    pub object: Arc<Value>,
    /// The object before the write, for watches that filter by labels or fields.
    pub prev: Option<Arc<Value>>,
}

/// A page of a list.
#[derive(Debug)]
pub struct ListPage {
    /// The objects, ordered by namespace then name.
    pub items: Vec<Stored>,
    /// The store's revision when the page was read.
    pub revision: i64,
    /// Whether more objects follow the last one returned.
    pub more: bool,
}

/// Errors from the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A create found an object with the same key.
    #[error("the object already exists")]
    AlreadyExists,
    /// An update or delete found no object with the key.
    #[error("the object was not found")]
    NotFound,
    /// An update or delete carried a revision other than the current one.
    #[error("the object has been modified: expected revision {expected}, current {current}")]
    Conflict {
        /// The revision the caller based its write on.
        expected: i64,
        /// The object's current revision.
        current: i64,
    },
    /// A watch asked for history that compaction has removed.
    #[error("revision {requested} is older than the compacted revision {compacted}")]
    Compacted {
        /// The revision asked for.
        requested: i64,
        /// The oldest revision a watch can start from.
        compacted: i64,
    },
    /// The database failed.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// The group-commit transaction this write was part of failed and was rolled back.
    #[error("database error, write rolled back: {0}")]
    BatchFailed(Arc<sqlx::Error>),
    /// Applying the schema failed.
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A stored value is not valid JSON (the database was edited by hand or is damaged).
    #[error("stored object {key} is not valid JSON: {source}")]
    Corrupt {
        /// `resource/namespace/name` of the damaged row.
        key: String,
        /// The parse error.
        source: serde_json::Error,
    },
    /// The writer task has stopped (the server is shutting down).
    #[error("the store is shut down")]
    Closed,
    /// The datastore URL names a backend this build does not support.
    #[error("unsupported datastore URL {0:?}: expected sqlite://PATH")]
    UnsupportedUrl(String),
}

/// The store: a writer task for group commits, a pool of readers, and a broadcast of events.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    writes: mpsc::Sender<Request>,
    readers: SqlitePool,
    events: broadcast::Sender<Arc<Event>>,
    revision: Arc<AtomicI64>,
    compacted: Arc<AtomicI64>,
    namespaces: Namespaces,
}

/// Every Namespace object by name, kept by the writer as it commits (before it answers), so
/// the check every namespaced create makes (does the namespace exist, is it terminating)
/// needs no read and sees every acknowledged write.
pub(crate) type Namespaces = Arc<std::sync::RwLock<std::collections::HashMap<String, Arc<Value>>>>;

/// The store key of Namespaces.
const NAMESPACES: &str = "namespaces";

impl Store {
    /// Opens (creating if needed) the datastore at `url` (`sqlite://PATH`), applies migrations
    /// and starts the writer task.
    ///
    /// # Errors
    /// [`StoreError::UnsupportedUrl`] for other schemes; database and migration errors.
    pub async fn open(url: &str) -> Result<Store, StoreError> {
        let path = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
            .ok_or_else(|| StoreError::UnsupportedUrl(url.to_string()))?;
        let options = SqliteConnectOptions::from_str("sqlite:")?
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(10))
            // Sorts and statement journals in memory rather than in temp files.
            .pragma("temp_store", "memory")
            // Pages read through a mapping rather than a read call each.
            .pragma("mmap_size", MMAP_BYTES.to_string());

        // The writer touches the index of live objects at random (pods are named at random):
        // a page cache that holds it saves reading pages back on every update. A longer WAL
        // between checkpoints copies a page written several times (an index page, the tail
        // of the history) back to the database once rather than once per checkpoint.
        let writer_options = options
            .clone()
            .pragma("cache_size", format!("-{WRITER_CACHE_KIB}"))
            .pragma("wal_autocheckpoint", WAL_CHECKPOINT_PAGES.to_string());
        let mut writer_conn = sqlx::ConnectOptions::connect(&writer_options).await?;
        sqlx::migrate!("./migrations").run(&mut writer_conn).await?;
        let readers = SqlitePoolOptions::new()
            .max_connections(4)
            .min_connections(1)
            .connect_with(options.read_only(true))
            .await?;

        let row = sqlx::query(
            "SELECT (SELECT value FROM meta WHERE key = 'compact_revision'),
                    MAX((SELECT value FROM meta WHERE key = 'revision'),
                        COALESCE((SELECT MAX(revision) FROM events), 0),
                        COALESCE((SELECT MAX(revision) FROM objects), 0))",
        )
        .fetch_one(&readers)
        .await?;
        let compacted: i64 = row.try_get(0)?;
        let revision: i64 = row.try_get(1)?;

        let mut known = std::collections::HashMap::new();
        for row in sqlx::query("SELECT name, value FROM current_objects WHERE resource = ?1")
            .bind(NAMESPACES)
            .fetch_all(&readers)
            .await?
        {
            let name: String = row.try_get(0)?;
            let key = ObjectKey::new(NAMESPACES, "", &name);
            let object = parse_value(row.try_get(1)?, &key)?;
            known.insert(name, Arc::new(object));
        }
        let namespaces: Namespaces = Arc::new(std::sync::RwLock::new(known));

        let (events, _) = broadcast::channel(BROADCAST_CAPACITY);
        let revision = Arc::new(AtomicI64::new(revision));
        let compacted = Arc::new(AtomicI64::new(compacted));
        let writes = writer::spawn(
            writer_conn,
            events.clone(),
            revision.clone(),
            compacted.clone(),
            namespaces.clone(),
        );
        Ok(Store {
            inner: Arc::new(Inner {
                writes,
                readers,
                events,
                revision,
                compacted,
                namespaces,
            }),
        })
    }

    /// The Namespace `name` as of the last commit, without a read.
    pub fn namespace(&self, name: &str) -> Option<Arc<Value>> {
        self.inner
            .namespaces
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(name)
            .cloned()
    }

    /// The newest committed revision.
    pub fn revision(&self) -> i64 {
        self.inner.revision.load(Ordering::Acquire)
    }

    /// The oldest revision a watch may start from.
    pub fn compacted_revision(&self) -> i64 {
        self.inner.compacted.load(Ordering::Acquire)
    }

    /// Creates an object; fails with [`StoreError::AlreadyExists`] if the key is taken.
    pub async fn create(&self, key: ObjectKey, object: Value) -> Result<Stored, StoreError> {
        self.write(WriteOp::Create { key, object }).await
    }

    /// Replaces an object. With `expected`, fails with [`StoreError::Conflict`] unless the
    /// object is still at that revision.
    pub async fn update(
        &self,
        key: ObjectKey,
        object: Value,
        expected: Option<i64>,
    ) -> Result<Stored, StoreError> {
        self.write(WriteOp::Update {
            key,
            object,
            expected,
        })
        .await
    }

    /// Removes an object and returns its last state, stamped with the delete's revision.
    pub async fn delete(
        &self,
        key: ObjectKey,
        expected: Option<i64>,
    ) -> Result<Stored, StoreError> {
        self.write(WriteOp::Delete { key, expected }).await
    }

    async fn write(&self, op: WriteOp) -> Result<Stored, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.inner
            .writes
            .send(Request::Write { op, reply })
            .await
            .map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }

    /// Compacts history towards `upto`, looking at most `batch` events past the compacted
    /// revision: the versions they replaced and the rows of deletions go (current versions
    /// stay, they hold the live objects), and the compacted revision moves to the last event
    /// looked at. Runs through the writer, so it never blocks writers for longer than one
    /// small batch; call again until the step says it is done.
    pub async fn compact_step(&self, upto: i64, batch: i64) -> Result<CompactStep, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.inner
            .writes
            .send(Request::Compact { upto, batch, reply })
            .await
            .map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }

    /// Reads one object.
    pub async fn get(&self, key: &ObjectKey) -> Result<Option<Stored>, StoreError> {
        let row = sqlx::query(
            "SELECT revision, value FROM current_objects
             WHERE resource = ?1 AND namespace = ?2 AND name = ?3",
        )
        .bind(&key.resource)
        .bind(&key.namespace)
        .bind(&key.name)
        .fetch_optional(&self.inner.readers)
        .await?;
        row.map(|row| stored_from_row(&row, key)).transpose()
    }

    /// Lists objects of a resource, optionally in one namespace, in (namespace, name) order,
    /// starting after `after` and returning at most `limit` (all when `None`).
    pub async fn list(
        &self,
        resource: &str,
        namespace: Option<&str>,
        after: Option<(&str, &str)>,
        limit: Option<usize>,
    ) -> Result<ListPage, StoreError> {
        let mut tx = self.inner.readers.begin().await?;
        let (after_ns, after_name) = after.unwrap_or(("", ""));
        let fetch = limit.map(|l| l as i64 + 1).unwrap_or(-1);
        let rows = match namespace {
            Some(ns) => {
                sqlx::query(
                    "SELECT namespace, name, revision, value FROM current_objects
                     WHERE resource = ?1 AND namespace = ?2 AND name > ?3
                     ORDER BY name LIMIT ?4",
                )
                .bind(resource)
                .bind(ns)
                .bind(after_name)
                .bind(fetch)
                .fetch_all(&mut *tx)
                .await?
            }
            None => {
                sqlx::query(
                    "SELECT namespace, name, revision, value FROM current_objects
                     WHERE resource = ?1 AND (namespace, name) > (?2, ?3)
                     ORDER BY namespace, name LIMIT ?4",
                )
                .bind(resource)
                .bind(after_ns)
                .bind(after_name)
                .bind(fetch)
                .fetch_all(&mut *tx)
                .await?
            }
        };
        let revision: i64 =
            sqlx::query_scalar("SELECT MAX((SELECT value FROM meta WHERE key = 'revision'), COALESCE((SELECT MAX(revision) FROM events), 0))")
                .fetch_one(&mut *tx)
                .await?;
        tx.commit().await?;

        let mut items = Vec::with_capacity(rows.len());
        for row in &rows {
            let key = ObjectKey {
                resource: resource.to_string(),
                namespace: row.try_get("namespace")?,
                name: row.try_get("name")?,
            };
            items.push(stored_from_row(row, &key)?);
        }
        let more = limit.is_some_and(|l| items.len() > l);
        if let Some(l) = limit {
            items.truncate(l);
        }
        Ok(ListPage {
            items,
            revision,
            more,
        })
    }

    /// Watches a resource (optionally one namespace) for events after revision `since`.
    ///
    /// # Errors
    /// [`StoreError::Compacted`] when `since` is older than the retained history.
    pub fn watch(
        &self,
        resource: &str,
        namespace: Option<&str>,
        since: i64,
    ) -> Result<WatchStream, StoreError> {
        let compacted = self.compacted_revision();
        if since < compacted {
            return Err(StoreError::Compacted {
                requested: since,
                compacted,
            });
        }
        Ok(watch::start(
            self.inner.readers.clone(),
            self.inner.events.subscribe(),
            resource.to_string(),
            namespace.map(str::to_string),
            since,
        ))
    }

    /// Every committed event from now on, for in-process controllers.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.inner.events.subscribe()
    }
}

fn stored_from_row(row: &sqlx::sqlite::SqliteRow, key: &ObjectKey) -> Result<Stored, StoreError> {
    let revision: i64 = row.try_get("revision")?;
    let text: &str = row.try_get("value")?;
    let object = parse_value(text, key)?;
    Ok(Stored {
        revision,
        object: Arc::new(object),
    })
}

fn parse_value(text: &str, key: &ObjectKey) -> Result<Value, StoreError> {
    serde_json::from_str(text).map_err(|source| StoreError::Corrupt {
        key: format!("{}/{}/{}", key.resource, key.namespace, key.name),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;
    use serde_json::json;

    async fn temp_store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("skiff.db").display());
        let store = Store::open(&url).await.unwrap();
        (dir, store)
    }

    fn cm(name: &str) -> Value {
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": "default"}})
    }

    #[tokio::test]
    async fn revisions_increase_and_conflicts_are_detected() {
        let (_dir, store) = temp_store().await;
        let key = ObjectKey::new("configmaps", "default", "a");
        let a = store.create(key.clone(), cm("a")).await.unwrap();
        assert_eq!(
            a.object["metadata"]["resourceVersion"],
            json!(a.revision.to_string())
        );
        assert!(matches!(
            store.create(key.clone(), cm("a")).await,
            Err(StoreError::AlreadyExists)
        ));
        let b = store
            .update(key.clone(), cm("a"), Some(a.revision))
            .await
            .unwrap();
        assert!(b.revision > a.revision);
        match store.update(key.clone(), cm("a"), Some(a.revision)).await {
            Err(StoreError::Conflict { expected, current }) => {
                assert_eq!((expected, current), (a.revision, b.revision));
            }
            other => panic!("expected conflict, got {other:?}"),
        }
        let gone = store.delete(key.clone(), None).await.unwrap();
        assert!(gone.revision > b.revision);
        assert!(store.get(&key).await.unwrap().is_none());
        assert!(matches!(
            store.delete(key, None).await,
            Err(StoreError::NotFound)
        ));
    }

    #[tokio::test]
    async fn concurrent_creates_are_batched_and_all_acknowledged() {
        let (_dir, store) = temp_store().await;
        let mut tasks = Vec::new();
        for i in 0..200 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                let name = format!("cm-{i}");
                store
                    .create(ObjectKey::new("configmaps", "default", &name), cm(&name))
                    .await
            }));
        }
        let mut revisions = Vec::new();
        for t in tasks {
            revisions.push(t.await.unwrap().unwrap().revision);
        }
        revisions.sort();
        revisions.dedup();
        assert_eq!(revisions.len(), 200, "every write got its own revision");
        let page = store
            .list("configmaps", Some("default"), None, None)
            .await
            .unwrap();
        assert_eq!(page.items.len(), 200);
        assert_eq!(page.revision, store.revision());
    }

    #[tokio::test]
    async fn one_batch_can_create_change_delete_and_recreate_a_key() {
        let (dir, store) = temp_store().await;
        let key = ObjectKey::new("configmaps", "default", "x");
        let mut events = store.watch("configmaps", None, store.revision()).unwrap();
        // Issued together, these land in one batch and are decided in order.
        let with = |v: &str| {
            let mut o = cm("x");
            o["data"] = json!({"v": v});
            o
        };
        let (a, b, c, d, e) = tokio::join!(
            store.create(key.clone(), with("1")),
            store.update(key.clone(), with("2"), None),
            store.delete(key.clone(), None),
            store.create(key.clone(), with("3")),
            store.create(key.clone(), with("4")),
        );
        let (a, b, c, d) = (a.unwrap(), b.unwrap(), c.unwrap(), d.unwrap());
        assert!(matches!(e, Err(StoreError::AlreadyExists)));
        assert!(a.revision < b.revision && b.revision < c.revision && c.revision < d.revision);
        assert_eq!(
            c.object["data"]["v"], "2",
            "a delete answers with the last state"
        );
        let now = store.get(&key).await.unwrap().unwrap();
        assert_eq!(
            (now.revision, now.object["data"]["v"].clone()),
            (d.revision, json!("3"))
        );
        let mut kinds = Vec::new();
        for _ in 0..4 {
            kinds.push(events.next().await.unwrap().unwrap().kind);
        }
        assert_eq!(
            kinds,
            [
                EventType::Added,
                EventType::Modified,
                EventType::Deleted,
                EventType::Added
            ]
        );
        // A reopened store (no row cache) sees the same.
        drop(store);
        let url = format!("sqlite://{}", dir.path().join("skiff.db").display());
        let store = Store::open(&url).await.unwrap();
        let again = store.get(&key).await.unwrap().unwrap();
        assert_eq!(again.revision, d.revision);
        let f = store
            .update(key.clone(), with("5"), Some(d.revision))
            .await
            .unwrap();
        assert_eq!(f.object["data"]["v"], "5");
    }

    #[tokio::test]
    async fn list_pages_in_key_order() {
        let (_dir, store) = temp_store().await;
        for name in ["c", "a", "b", "d"] {
            store
                .create(ObjectKey::new("configmaps", "default", name), cm(name))
                .await
                .unwrap();
        }
        let first = store.list("configmaps", None, None, Some(3)).await.unwrap();
        let names: Vec<_> = first
            .items
            .iter()
            .map(|s| s.object["metadata"]["name"].clone())
            .collect();
        assert_eq!(names, vec![json!("a"), json!("b"), json!("c")]);
        assert!(first.more);
        let rest = store
            .list("configmaps", None, Some(("default", "c")), Some(3))
            .await
            .unwrap();
        assert_eq!(rest.items.len(), 1);
        assert!(!rest.more);
    }

    #[tokio::test]
    async fn watch_replays_history_then_follows_live_writes() {
        let (_dir, store) = temp_store().await;
        let first = store
            .create(ObjectKey::new("configmaps", "default", "a"), cm("a"))
            .await
            .unwrap();
        store
            .create(ObjectKey::new("configmaps", "default", "b"), cm("b"))
            .await
            .unwrap();
        let mut watch = store
            .watch("configmaps", Some("default"), first.revision)
            .unwrap();
        let replayed = watch.next().await.unwrap().unwrap();
        assert_eq!(replayed.key.name, "b");
        assert_eq!(replayed.kind, EventType::Added);
        store
            .delete(ObjectKey::new("configmaps", "default", "a"), None)
            .await
            .unwrap();
        let live = watch.next().await.unwrap().unwrap();
        assert_eq!(
            (live.key.name.as_str(), live.kind),
            ("a", EventType::Deleted)
        );
    }

    #[tokio::test]
    async fn compaction_makes_old_revisions_gone_and_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("skiff.db").display());
        let store = Store::open(&url).await.unwrap();
        let key = |i: usize| ObjectKey::new("configmaps", "default", &format!("cm-{i}"));
        for i in 0..10 {
            store.create(key(i), cm(&format!("cm-{i}"))).await.unwrap();
        }
        // Versions 2 of cm-0..cm-4, then cm-9 deleted: 6 rows become history.
        for i in 0..5 {
            store
                .update(key(i), cm(&format!("cm-{i}")), None)
                .await
                .unwrap();
        }
        let deleted = store.delete(key(9), None).await.unwrap().revision;
        let mut last = 0;
        for i in 10..12 {
            last = store
                .create(key(i), cm(&format!("cm-{i}")))
                .await
                .unwrap()
                .revision;
        }
        assert_eq!(history_rows(&store).await, 18);
        // Small steps until done; the compacted revision moves with each.
        let mut removed = 0;
        let mut steps = 0;
        loop {
            let step = store.compact_step(deleted, 4).await.unwrap();
            removed += step.removed;
            steps += 1;
            if step.done {
                break;
            }
            assert!(store.compacted_revision() < deleted);
        }
        assert!(steps >= 4, "{steps} steps of 4 events");
        // cm-0..cm-4's first versions, cm-9's creation and its deletion.
        assert_eq!(removed, 7);
        assert_eq!(history_rows(&store).await, 11);
        assert!(matches!(
            store.watch("configmaps", None, 1),
            Err(StoreError::Compacted { .. })
        ));
        // Every live object still reads, the compacted ones included.
        let page = store.list("configmaps", None, None, None).await.unwrap();
        assert_eq!(page.items.len(), 11);
        assert_eq!(
            store.get(&key(0)).await.unwrap().unwrap().object["metadata"]["name"],
            "cm-0"
        );
        assert!(store.get(&key(9)).await.unwrap().is_none());
        // A later change of a compacted object replays with its previous state.
        let mut watch = store.watch("configmaps", None, deleted).unwrap();
        let mut changed = cm("cm-5");
        changed["data"] = json!({"k": "v"});
        store.update(key(5), changed, None).await.unwrap();
        let mut seen = Vec::new();
        for _ in 0..3 {
            seen.push(watch.next().await.unwrap().unwrap());
        }
        assert_eq!(seen[2].key.name, "cm-5");
        let prev = seen[2].prev.as_ref().expect("the previous state");
        assert_eq!(prev["metadata"]["name"], "cm-5");
        assert!(prev.get("data").is_none());
        drop(watch);
        drop(store);
        let reopened = Store::open(&url).await.unwrap();
        assert_eq!(reopened.revision(), last + 1);
        assert_eq!(reopened.compacted_revision(), deleted);
        let next = reopened.create(key(20), cm("cm-20")).await.unwrap();
        assert_eq!(next.revision, last + 2);
        // Compacting past the change removes the version it replaced.
        let step = reopened.compact_step(next.revision, 1000).await.unwrap();
        assert_eq!((step.removed, step.done), (1, true));
    }

    async fn history_rows(store: &Store) -> i64 {
        sqlx::query_scalar("SELECT COUNT(*) FROM events")
            .fetch_one(&store.inner.readers)
            .await
            .unwrap()
    }

    /// A database written by the first schema (an object's value in both tables, the previous
    /// state copied into each event) opens with every object and its history intact.
    #[tokio::test]
    async fn a_database_of_the_first_schema_is_migrated() {
        let dir = tempfile::tempdir().unwrap();
        let first = dir.path().join("first");
        std::fs::create_dir(&first).unwrap();
        let source = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
        std::fs::copy(
            source.join("0001_objects.sql"),
            first.join("0001_objects.sql"),
        )
        .unwrap();
        let path = dir.path().join("skiff.db");
        let url = format!("sqlite://{}", path.display());
        {
            let options = SqliteConnectOptions::from_str("sqlite:")
                .unwrap()
                .filename(&path)
                .create_if_missing(true);
            let mut conn = sqlx::ConnectOptions::connect(&options).await.unwrap();
            sqlx::migrate::Migrator::new(first.as_path())
                .await
                .unwrap()
                .run(&mut conn)
                .await
                .unwrap();
            let v = |name: &str, rev: i64, data: &str| {
                json!({"apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": name, "namespace": "default",
                        "resourceVersion": rev.to_string()},
                    "data": {"v": data}})
                .to_string()
            };
            // History compacted at 2: a's creation (1) and b's (2) are gone; a changed at 3
            // (its previous state only in prev_value) and at 4; c created at 5.
            let statements = [
                format!(
                    "INSERT INTO objects VALUES ('configmaps','default','a',4,1,'{}')",
                    v("a", 4, "4")
                ),
                format!(
                    "INSERT INTO objects VALUES ('configmaps','default','b',2,2,'{}')",
                    v("b", 2, "2")
                ),
                format!(
                    "INSERT INTO objects VALUES ('configmaps','default','c',5,5,'{}')",
                    v("c", 5, "5")
                ),
                format!(
                    "INSERT INTO events VALUES (3,'configmaps','default','a',1,'{}','{}')",
                    v("a", 3, "3"),
                    v("a", 1, "1")
                ),
                format!(
                    "INSERT INTO events VALUES (4,'configmaps','default','a',1,'{}','{}')",
                    v("a", 4, "4"),
                    v("a", 3, "3")
                ),
                format!(
                    "INSERT INTO events VALUES (5,'configmaps','default','c',0,'{}',NULL)",
                    v("c", 5, "5")
                ),
                "UPDATE meta SET value = 2 WHERE key = 'compact_revision'".to_string(),
                "UPDATE meta SET value = 5 WHERE key = 'revision'".to_string(),
            ];
            for statement in statements {
                sqlx::query(sqlx::AssertSqlSafe(statement))
                    .execute(&mut conn)
                    .await
                    .unwrap();
            }
        }
        let store = Store::open(&url).await.unwrap();
        assert_eq!((store.revision(), store.compacted_revision()), (5, 2));
        let page = store.list("configmaps", None, None, None).await.unwrap();
        let values: Vec<_> = page
            .items
            .iter()
            .map(|s| (s.revision, s.object["data"]["v"].clone()))
            .collect();
        assert_eq!(values, [(4, json!("4")), (2, json!("2")), (5, json!("5"))]);
        // The replay carries each change's previous state, from either schema.
        let mut watch = store.watch("configmaps", None, 2).unwrap();
        let mut prevs = Vec::new();
        for _ in 0..3 {
            let event = watch.next().await.unwrap().unwrap();
            prevs.push(event.prev.as_ref().map(|p| p["data"]["v"].clone()));
        }
        assert_eq!(prevs, [Some(json!("1")), Some(json!("3")), None]);
        // Writes go on from there, and compaction keeps what live objects need.
        let b = ObjectKey::new("configmaps", "default", "b");
        let updated = store.update(b.clone(), cm("b"), Some(2)).await.unwrap();
        assert_eq!(updated.revision, 6);
        let step = store.compact_step(6, 1000).await.unwrap();
        assert!(step.done);
        assert_eq!(
            store
                .list("configmaps", None, None, None)
                .await
                .unwrap()
                .items
                .len(),
            3
        );
        assert_eq!(store.get(&b).await.unwrap().unwrap().revision, 6);
    }
}
