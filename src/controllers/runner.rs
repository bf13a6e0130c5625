//! The controller runner shared by the workload controllers, in the style of kube-runtime: a
//! reconcile function from a key to `Result<Action, Error>`, fed by a work queue that
//! dedupes keys, never hands the same key to two workers at once, requeues failures with
//! per-key exponential backoff, and resyncs every key periodically.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;

use super::queue::WorkQueue;
use crate::store::ObjectKey;

/// What to do after a successful reconcile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Nothing until something changes.
    AwaitChange,
    /// Look again after this long (for example when a pod becomes available by time alone).
    Requeue(Duration),
}

/// First retry delay of a failing key.
const BACKOFF_BASE: Duration = Duration::from_millis(10);
/// Longest retry delay of a failing key.
const BACKOFF_MAX: Duration = Duration::from_secs(60);

/// Delay before retry number `failures` (1-based): 10 ms doubling up to 60 s.
pub fn backoff(failures: u32) -> Duration {
    let exp = failures.saturating_sub(1).min(16);
    BACKOFF_BASE.saturating_mul(1 << exp).min(BACKOFF_MAX)
}

#[derive(Default)]
struct State {
    queue: WorkQueue<ObjectKey>,
    /// Keys a worker holds now.
    active: HashSet<ObjectKey>,
    /// Keys queued again while a worker held them: requeued when it lets go.
    dirty: HashSet<ObjectKey>,
    /// Consecutive failures per key.
    failures: HashMap<ObjectKey, u32>,
}

/// The queue of one controller; clones share it.
#[derive(Clone, Default)]
pub struct Queue {
    state: Arc<Mutex<State>>,
    wake: Arc<Notify>,
}

impl Queue {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues `key` now (once, however often it is added before a worker takes it).
    pub fn add(&self, key: ObjectKey) {
        let mut state = self.lock();
        if state.active.contains(&key) {
            state.dirty.insert(key);
        } else {
            state.queue.add(key);
        }
        drop(state);
        self.wake.notify_one();
    }

    /// Queues `key` after `delay`.
    pub fn add_after(&self, key: ObjectKey, delay: Duration) {
        self.lock().queue.add_after(key, delay);
        self.wake.notify_one();
    }

    /// Takes the next key no other worker holds, waiting for one.
    async fn take(&self) -> ObjectKey {
        loop {
            let notified = self.wake.notified();
            let due = {
                let mut state = self.lock();
                while let Some(key) = state.queue.pop() {
                    if state.active.contains(&key) {
                        state.dirty.insert(key);
                        continue;
                    }
                    state.active.insert(key.clone());
                    return key;
                }
                state.queue.next_due()
            };
            match due {
                Some(at) => {
                    tokio::select! {
                        () = notified => {}
                        () = tokio::time::sleep_until(at) => {}
                    }
                }
                None => notified.await,
            }
        }
    }

    /// Lets go of `key` after a reconcile and schedules what follows.
    fn done<E>(&self, key: ObjectKey, result: &Result<Action, E>) {
        let mut state = self.lock();
        state.active.remove(&key);
        match result {
            Ok(action) => {
                state.failures.remove(&key);
                if let Action::Requeue(delay) = action {
                    state.queue.add_after(key.clone(), *delay);
                }
            }
            Err(_) => {
                let failures = state.failures.entry(key.clone()).or_insert(0);
                *failures += 1;
                let delay = backoff(*failures);
                state.queue.add_after(key.clone(), delay);
            }
        }
        if state.dirty.remove(&key) {
            state.queue.add(key);
        }
        drop(state);
        self.wake.notify_one();
    }
}

/// Runs `workers` tasks reconciling keys from `queue`, and queues every key `resync` returns
/// every `resync_every`. Errors are logged at debug level and retried with backoff.
pub fn run<F, Fut, E>(
    name: &'static str,
    queue: Queue,
    workers: usize,
    reconcile: F,
    resync_every: Duration,
    resync: impl Fn() -> Vec<ObjectKey> + Send + Sync + 'static,
) where
    F: Fn(ObjectKey) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Action, E>> + Send,
    E: std::fmt::Display + Send,
{
    let reconcile = Arc::new(reconcile);
    for _ in 0..workers.max(1) {
        let queue = queue.clone();
        let reconcile = reconcile.clone();
        tokio::spawn(async move {
            loop {
                let key = queue.take().await;
                let started = std::time::Instant::now();
                let result = reconcile(key.clone()).await;
                let took = started.elapsed();
                match &result {
                    Err(error) => {
                        tracing::debug!(controller = name, key = %key.name, namespace = %key.namespace, ?took, %error, "reconcile failed; will retry");
                    }
                    Ok(_) => {
                        tracing::trace!(controller = name, key = %key.name, namespace = %key.namespace, ?took, "reconciled");
                    }
                }
                queue.done(key, &result);
            }
        });
    }
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(resync_every);
        ticker.tick().await;
        loop {
            ticker.tick().await;
            for key in resync() {
                queue.add(key);
            }
        }
    });
}

/// How often a controller looks at every object of its kind even without events
/// (Kubernetes' informers resync on a similar period).
pub const RESYNC: Duration = Duration::from_secs(300);

/// Starts a controller: `workers` tasks reconcile keys from `queue` with `reconcile(ctx, key)`,
/// and every object in `own` (the cache of the controller's kind) is queued every
/// [`RESYNC`].
pub fn start<C, F, Fut, E>(
    name: &'static str,
    queue: Queue,
    workers: usize,
    ctx: Arc<C>,
    own: Arc<super::informer::Cache>,
    reconcile: F,
) where
    C: Send + Sync + 'static,
    F: Fn(Arc<C>, ObjectKey) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Action, E>> + Send,
    E: std::fmt::Display + Send,
{
    run(
        name,
        queue,
        workers,
        move |key| reconcile(ctx.clone(), key),
        RESYNC,
        move || own.keys(),
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn backoff_doubles_to_a_cap() {
        assert_eq!(backoff(1), Duration::from_millis(10));
        assert_eq!(backoff(2), Duration::from_millis(20));
        assert_eq!(backoff(5), Duration::from_millis(160));
        assert_eq!(backoff(40), BACKOFF_MAX);
    }

    #[tokio::test]
    async fn a_key_is_never_reconciled_twice_at_once_and_failures_retry() {
        let queue = Queue::default();
        let running = Arc::new(AtomicUsize::new(0));
        let overlap = Arc::new(AtomicUsize::new(0));
        let calls = Arc::new(AtomicUsize::new(0));
        {
            let (running, overlap, calls) = (running.clone(), overlap.clone(), calls.clone());
            run(
                "test",
                queue.clone(),
                4,
                move |_key| {
                    let (running, overlap, calls) =
                        (running.clone(), overlap.clone(), calls.clone());
                    async move {
                        if running.fetch_add(1, Ordering::SeqCst) > 0 {
                            overlap.fetch_add(1, Ordering::SeqCst);
                        }
                        tokio::time::sleep(Duration::from_millis(5)).await;
                        running.fetch_sub(1, Ordering::SeqCst);
                        // The first two calls fail, then it succeeds.
                        if calls.fetch_add(1, Ordering::SeqCst) < 2 {
                            Err("not yet")
                        } else {
                            Ok(Action::AwaitChange)
                        }
                    }
                },
                Duration::from_secs(3600),
                Vec::new,
            );
        }
        let key = ObjectKey::new("replicasets.apps", "ns", "web");
        for _ in 0..20 {
            queue.add(key.clone());
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(
            overlap.load(Ordering::SeqCst),
            0,
            "one key, one worker at a time"
        );
        let n = calls.load(Ordering::SeqCst);
        assert!(n >= 3, "failures were retried ({n} calls)");
        assert!(n < 20, "queued keys were deduplicated ({n} calls)");
        assert!(queue.lock().failures.is_empty());
    }
}
