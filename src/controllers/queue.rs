//! A deduplicating work queue with delayed requeue, shared by the controllers.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::hash::Hash;
use std::time::Duration;

use tokio::time::Instant;

/// Keys waiting to be reconciled. A key queued twice is reconciled once.
pub struct WorkQueue<K> {
    ready: VecDeque<K>,
    queued: HashSet<K>,
    delayed: BTreeMap<(Instant, u64), K>,
    seq: u64,
}

impl<K: Clone + Eq + Hash> Default for WorkQueue<K> {
    fn default() -> Self {
        WorkQueue {
            ready: VecDeque::new(),
            queued: HashSet::new(),
            delayed: BTreeMap::new(),
            seq: 0,
        }
    }
}

impl<K: Clone + Eq + Hash> WorkQueue<K> {
    /// Queues a key now, unless it is already queued.
    pub fn add(&mut self, key: K) {
        if self.queued.insert(key.clone()) {
            self.ready.push_back(key);
        }
    }

    /// Queues a key after `delay`.
    pub fn add_after(&mut self, key: K, delay: Duration) {
        self.seq += 1;
        self.delayed.insert((Instant::now() + delay, self.seq), key);
    }

    /// The next key due now, if any.
    pub fn pop(&mut self) -> Option<K> {
        let now = Instant::now();
        while let Some(entry) = self.delayed.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let key = entry.remove();
            self.add(key);
        }
        let key = self.ready.pop_front()?;
        self.queued.remove(&key);
        Some(key)
    }

    /// When the next delayed key falls due (None: nothing delayed).
    pub fn next_due(&self) -> Option<Instant> {
        self.delayed.keys().next().map(|(at, _)| *at)
    }

    /// Whether a key is ready now.
    pub fn has_ready(&self) -> bool {
        !self.ready.is_empty() || self.next_due().is_some_and(|at| at <= Instant::now())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn dedupes_and_delays() {
        let mut q = WorkQueue::default();
        q.add("a");
        q.add("a");
        q.add("b");
        assert_eq!(q.pop(), Some("a"));
        assert_eq!(q.pop(), Some("b"));
        assert_eq!(q.pop(), None);
        q.add_after("c", Duration::from_millis(20));
        assert!(!q.has_ready());
        tokio::time::sleep(Duration::from_millis(30)).await;
        assert!(q.has_ready());
        assert_eq!(q.pop(), Some("c"));
    }
}
