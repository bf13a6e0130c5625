//! CPU limits as a fuel rate: a token bucket refilled with fuel at the pod's share of the
//! calibrated fuel-per-CPU-second, charged with what the guest burnt. When the bucket is in
//! debt the guest sleeps until the refill has paid it back, like a CFS quota: a throttled guest
//! is slowed down, never killed.
//!
//! What the guest burnt is the larger of the fuel it consumed and the CPU time it used,
//! converted to fuel at the calibrated rate. Fuel alone under-counts code whose instructions
//! are dearer than the calibration kernel's (and WASI calls, which cost CPU but no fuel); CPU
//! time alone would make a fuel rate meaningless. Charging the maximum keeps both promises: a
//! guest never burns more than its fuel rate, and never more than its share of a core.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The refill period the bucket may bank, like CFS's 100 ms period: an idle guest may burst
/// for at most this long at full speed.
const BURST_PERIOD: Duration = Duration::from_millis(100);

/// The tokens of a CPU limit, which one run or many (the requests of one HTTP function)
/// draw on.
#[derive(Debug)]
struct Tokens {
    /// Fuel refilled per second: the limit's share of the calibrated rate.
    rate: f64,
    /// Most fuel banked.
    burst: f64,
    /// Fuel available now; negative is debt.
    tokens: f64,
    last_refill: Instant,
}

impl Tokens {
    /// Refills for the time since the last call, spends `fuel`, and says how long to sleep
    /// to pay back the debt (none below a millisecond: tiny debts are carried).
    fn spend(&mut self, now: Instant, fuel: f64) -> Option<Duration> {
        let elapsed = now
            .saturating_duration_since(self.last_refill)
            .as_secs_f64();
        self.last_refill = self.last_refill.max(now);
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        self.tokens -= fuel;
        let secs = -self.tokens / self.rate;
        if secs < 0.001 {
            return None;
        }
        Some(Duration::from_secs_f64(secs.min(3600.0)))
    }
}

/// A CPU limit that several runs share: every HTTP request of one function draws on its
/// container's `limits.cpu`, as the processes of a container share its cgroup's quota.
#[derive(Debug, Clone)]
pub struct CpuBudget {
    tokens: Arc<Mutex<Tokens>>,
}

impl CpuBudget {
    /// A budget of `millicores` at `fuel_per_cpu_second` (the runtime's calibration).
    pub(crate) fn new(fuel_per_cpu_second: u64, millicores: u64, now: Instant) -> Self {
        let rate = fuel_per_cpu_second as f64 * millicores.max(1) as f64 / 1000.0;
        CpuBudget {
            tokens: Arc::new(Mutex::new(Tokens {
                rate,
                burst: rate * BURST_PERIOD.as_secs_f64(),
                tokens: 0.0,
                last_refill: now,
            })),
        }
    }
}

impl CpuBudget {
    /// How long to wait before starting more work, if the budget is in debt.
    pub(crate) fn pause(&self, now: Instant) -> Option<Duration> {
        self.tokens
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .spend(now, 0.0)
    }
}

/// What one run charges to its budget: the fuel and CPU time it used since the last charge.
#[derive(Debug, Clone)]
pub(crate) struct FuelBucket {
    budget: CpuBudget,
    /// Fuel consumed by the run as of the last charge.
    last_consumed: u64,
    /// Calibrated fuel per CPU-second, to convert CPU time.
    fuel_per_cpu_second: f64,
    /// The run's CPU time as of the last charge.
    last_cpu: Duration,
}

impl FuelBucket {
    /// A bucket for one run limited to `millicores`, empty at `now`.
    pub(crate) fn new(fuel_per_cpu_second: u64, millicores: u64, now: Instant) -> Self {
        Self::sharing(
            fuel_per_cpu_second,
            CpuBudget::new(fuel_per_cpu_second, millicores, now),
        )
    }

    /// A run drawing on a shared budget.
    pub(crate) fn sharing(fuel_per_cpu_second: u64, budget: CpuBudget) -> Self {
        FuelBucket {
            budget,
            last_consumed: 0,
            fuel_per_cpu_second: fuel_per_cpu_second as f64,
            last_cpu: Duration::ZERO,
        }
    }

    /// Charges what the run burnt since the last charge (`consumed_total` fuel and
    /// `cpu_total` CPU time so far, whichever is more) and returns how long the guest must
    /// sleep, if it is in debt.
    pub(crate) fn charge(
        &mut self,
        now: Instant,
        consumed_total: u64,
        cpu_total: Duration,
    ) -> Option<Duration> {
        let fuel_used = consumed_total.saturating_sub(self.last_consumed) as f64;
        self.last_consumed = consumed_total;
        let cpu_used = cpu_total.saturating_sub(self.last_cpu).as_secs_f64();
        self.last_cpu = self.last_cpu.max(cpu_total);
        let burnt = fuel_used.max(cpu_used * self.fuel_per_cpu_second);
        self.budget
            .tokens
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .spend(now, burnt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FPS: u64 = 1_000_000_000; // fuel per CPU-second

    #[test]
    fn within_budget_never_sleeps() {
        let t0 = Instant::now();
        let mut b = FuelBucket::new(FPS, 500, t0);
        // 500m = 5e8 fuel/s; 10 ms at half speed is 5e6 fuel per tick.
        for i in 1..=100u64 {
            let now = t0 + Duration::from_millis(10 * i);
            let cpu = Duration::from_millis(5 * i);
            assert_eq!(b.charge(now, 5_000_000 * i, cpu), None);
        }
    }

    #[test]
    fn full_speed_at_100m_sleeps_nine_tenths() {
        let t0 = Instant::now();
        let mut b = FuelBucket::new(FPS, 100, t0);
        // 100m refills 1e8 fuel/s. Each 10 ms tick at full speed burns 1e7 fuel: 1e6 was
        // refilled meanwhile, the 9e6 debt takes 90 ms of refill.
        let ms = Duration::from_millis;
        let sleep = b.charge(t0 + ms(10), 10_000_000, ms(10)).unwrap();
        let slept = sleep.as_secs_f64() * 1000.0;
        assert!((slept - 90.0).abs() < 1.0, "slept {slept} ms");
        // After sleeping, another 10 ms burst again costs ~90 ms of sleep.
        let after = t0 + ms(10) + sleep + ms(10);
        let sleep2 = b.charge(after, 20_000_000, ms(20)).unwrap();
        let ms2 = sleep2.as_secs_f64() * 1000.0;
        assert!((ms2 - 90.0).abs() < 1.0, "slept {ms2} ms");
    }

    #[test]
    fn idle_time_banks_at_most_one_period() {
        let t0 = Instant::now();
        let mut b = FuelBucket::new(FPS, 1000, t0);
        // Idle for 10 s, then burn 1 s worth of fuel in one go: only 100 ms was banked, so the
        // guest owes 900 ms.
        let sleep = b
            .charge(t0 + Duration::from_secs(10), FPS, Duration::from_secs(1))
            .unwrap();
        assert!((sleep.as_secs_f64() - 0.9).abs() < 0.001, "{sleep:?}");
    }

    #[test]
    fn cpu_time_is_charged_when_it_exceeds_the_fuel() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        // 100m: in 10 ms the guest burns little fuel (as in a loop of WASI calls) but a full
        // 10 ms of CPU, so it is throttled by its CPU time.
        let mut b = FuelBucket::new(FPS, 100, t0);
        let sleep = b.charge(t0 + ms(10), 1_000, ms(10)).unwrap();
        assert!((sleep.as_secs_f64() - 0.09).abs() < 0.001, "{sleep:?}");
        // And by its fuel when that is the larger.
        let mut b = FuelBucket::new(FPS, 100, t0);
        let sleep = b.charge(t0 + ms(10), 10_000_000, ms(1)).unwrap();
        assert!((sleep.as_secs_f64() - 0.09).abs() < 0.001, "{sleep:?}");
    }

    #[test]
    fn runs_sharing_a_budget_share_its_rate() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        // Two runs at full speed on one 100m budget: each 10 ms tick of each burns 1e7 fuel,
        // so together they owe twice what one would (~190 ms of refill after both charged).
        let budget = CpuBudget::new(FPS, 100, t0);
        let mut a = FuelBucket::sharing(FPS, budget.clone());
        let mut b = FuelBucket::sharing(FPS, budget);
        let first = a.charge(t0 + ms(10), 10_000_000, ms(10)).unwrap();
        let second = b.charge(t0 + ms(10), 10_000_000, ms(10)).unwrap();
        assert!((first.as_secs_f64() - 0.09).abs() < 0.001, "{first:?}");
        assert!((second.as_secs_f64() - 0.19).abs() < 0.001, "{second:?}");
    }

    #[test]
    fn tiny_debts_are_carried_not_slept() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut b = FuelBucket::new(FPS, 1000, t0);
        // 0.5 ms over: no sleep yet, but the debt stays and is slept off with the next one.
        assert_eq!(b.charge(t0 + ms(10), 10_500_000, ms(10)), None);
        let sleep = b.charge(t0 + ms(20), 21_000_000, ms(20)).unwrap();
        assert!((sleep.as_secs_f64() - 0.001).abs() < 0.0001, "{sleep:?}");
    }
}
