//! Memory limits: wasmtime's `StoreLimits` plus a byte budget shared by all linear memories and
//! tables of a store, recording refusals and the peak so a run can be reported as OOM-killed.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use wasmtime::{ResourceLimiter, StoreLimits, StoreLimitsBuilder};

/// Bytes charged per table element (a pointer-sized slot in wasmtime's tables).
pub(crate) const TABLE_ELEMENT_BYTES: u64 = 8;

/// Facts about one run that outlive its `Store` (a killed run drops the store mid-flight).
#[derive(Debug, Default)]
pub(crate) struct RunStats {
    /// Fuel consumed, updated at every epoch tick and at the end of the run.
    pub(crate) fuel_consumed: AtomicU64,
    /// Highest total of linear-memory and table bytes seen.
    pub(crate) peak_memory_bytes: AtomicU64,
    /// Whether a memory or table grow was refused by the limit.
    pub(crate) grow_denied: AtomicBool,
    /// CPU time spent polling the run, in nanoseconds (updated after every poll).
    pub(crate) cpu_nanos: AtomicU64,
}

impl RunStats {
    pub(crate) fn grow_denied(&self) -> bool {
        self.grow_denied.load(Ordering::Relaxed)
    }

    pub(crate) fn cpu_time(&self) -> std::time::Duration {
        std::time::Duration::from_nanos(self.cpu_nanos.load(Ordering::Relaxed))
    }
}

/// The store's `ResourceLimiter`.
///
/// * Every grow of a linear memory or table (including the initial allocation at
///   instantiation) is charged against one budget of `limit` bytes for the whole store.
/// * Within that budget wasmtime's [`StoreLimits`] applies its per-memory/per-table and
///   instance-count limits.
/// * A refused grow sets [`RunStats::grow_denied`]; a grow that wasmtime fails afterwards (for
///   example the pooling slot is smaller) counts as refused too.
pub(crate) struct Limiter {
    inner: StoreLimits,
    limit: u64,
    used: u64,
    /// The last granted grow, undone if wasmtime then reports the grow failed.
    pending: u64,
    stats: Arc<RunStats>,
}

impl Limiter {
    /// A limiter allowing `limit` bytes of linear memory plus tables in total.
    pub(crate) fn new(limit: u64, stats: Arc<RunStats>) -> Self {
        let per_item = usize::try_from(limit).unwrap_or(usize::MAX);
        let inner = StoreLimitsBuilder::new()
            .memory_size(per_item)
            .table_elements(per_item / TABLE_ELEMENT_BYTES as usize)
            .build();
        Limiter {
            inner,
            limit,
            used: 0,
            pending: 0,
            stats,
        }
    }

    fn deny(&self) -> wasmtime::Result<bool> {
        self.stats.grow_denied.store(true, Ordering::Relaxed);
        Ok(false)
    }

    /// Charges `delta` more bytes if they fit in the budget.
    fn charge(&mut self, delta: u64) -> bool {
        match self.used.checked_add(delta) {
            Some(total) if total <= self.limit => {
                self.used = total;
                self.pending = delta;
                self.stats
                    .peak_memory_bytes
                    .fetch_max(total, Ordering::Relaxed);
                true
            }
            _ => false,
        }
    }

    fn undo_pending(&mut self) {
        self.used = self.used.saturating_sub(self.pending);
        self.pending = 0;
        self.stats.grow_denied.store(true, Ordering::Relaxed);
    }
}

impl ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if !self.inner.memory_growing(current, desired, maximum)? {
            return self.deny();
        }
        let delta = desired.saturating_sub(current) as u64;
        if !self.charge(delta) {
            return self.deny();
        }
        Ok(true)
    }

    fn memory_grow_failed(&mut self, _error: wasmtime::Error) -> wasmtime::Result<()> {
        self.undo_pending();
        Ok(())
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if !self.inner.table_growing(current, desired, maximum)? {
            return self.deny();
        }
        let delta = (desired.saturating_sub(current) as u64).saturating_mul(TABLE_ELEMENT_BYTES);
        if !self.charge(delta) {
            return self.deny();
        }
        Ok(true)
    }

    fn table_grow_failed(&mut self, _error: wasmtime::Error) -> wasmtime::Result<()> {
        self.undo_pending();
        Ok(())
    }

    fn instances(&self) -> usize {
        self.inner.instances()
    }

    fn tables(&self) -> usize {
        self.inner.tables()
    }

    fn memories(&self) -> usize {
        self.inner.memories()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: usize = 1 << 20;

    #[test]
    fn memories_and_tables_share_one_budget() {
        let stats = Arc::new(RunStats::default());
        let mut l = Limiter::new(4 * MIB as u64, stats.clone());
        assert!(l.memory_growing(0, 3 * MIB, None).unwrap());
        // 3 MiB used: a table of 128 Ki elements (1 MiB) still fits, one more element does not.
        assert!(l.table_growing(0, MIB / 8, None).unwrap());
        assert!(!stats.grow_denied());
        assert!(!l.table_growing(MIB / 8, MIB / 8 + 1, None).unwrap());
        assert!(stats.grow_denied());
        assert_eq!(
            stats.peak_memory_bytes.load(Ordering::Relaxed),
            4 * MIB as u64
        );
    }

    #[test]
    fn refused_grow_is_recorded_and_failed_grow_is_refunded() {
        let stats = Arc::new(RunStats::default());
        let mut l = Limiter::new(2 * MIB as u64, stats.clone());
        assert!(l.memory_growing(0, MIB, None).unwrap());
        assert!(l.memory_growing(MIB, 2 * MIB, None).unwrap());
        l.memory_grow_failed(wasmtime::Error::msg("pool slot too small"))
            .unwrap();
        assert!(stats.grow_denied());
        // The failed MiB was refunded, so growing again to 2 MiB fits.
        assert!(l.memory_growing(MIB, 2 * MIB, None).unwrap());
        assert!(!l.memory_growing(2 * MIB, 3 * MIB, None).unwrap());
    }

    #[test]
    fn memory_maximum_is_respected() {
        let stats = Arc::new(RunStats::default());
        let mut l = Limiter::new(8 * MIB as u64, stats.clone());
        assert!(!l.memory_growing(0, 2 * MIB, Some(MIB)).unwrap());
        assert!(stats.grow_denied());
    }
}
