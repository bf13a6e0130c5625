//! Periodic compaction of the event history.
//!
//! As Kubernetes does with etcd, each tick compacts history up to the revision that was current
//! at the previous tick, so a watch can always resume from any revision at most one interval
//! old. It goes in small steps through the writer, so writers wait at most one step.

use std::time::Duration;

use super::Store;

/// Events looked at per writer turn.
const STEP: i64 = 2000;

/// Which revision a tick should compact to: the previous tick's revision, if it is newer than
/// what is already compacted.
pub fn target(previous_tick: i64, compacted: i64) -> Option<i64> {
    (previous_tick > compacted).then_some(previous_tick)
}

/// Runs compaction every `interval` until the store shuts down.
pub fn spawn(store: Store, interval: Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut previous = store.revision();
        loop {
            tokio::time::sleep(interval).await;
            let upto = target(previous, store.compacted_revision());
            previous = store.revision();
            let Some(upto) = upto else { continue };
            loop {
                match store.compact_step(upto, STEP).await {
                    Ok(step) if !step.done => tokio::task::yield_now().await,
                    Ok(_) => break,
                    Err(error) => {
                        tracing::warn!(%error, "compaction failed");
                        break;
                    }
                }
            }
            tracing::debug!(upto, "compacted history");
        }
    })
}

#[cfg(test)]
mod tests {
    use super::target;

    #[test]
    fn compacts_to_the_previous_tick_only_when_it_moved() {
        assert_eq!(target(10, 0), Some(10));
        assert_eq!(target(10, 10), None);
        assert_eq!(target(5, 10), None);
    }
}
