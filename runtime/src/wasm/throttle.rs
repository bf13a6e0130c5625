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

use std::time::{Duration, Instant};

/// The refill period the bucket may bank, like CFS's 100 ms period: an idle guest may burst
/// for at most this long at full speed.
const BURST_PERIOD: Duration = Duration::from_millis(100);

/// A fuel token bucket for one run.
#[derive(Debug, Clone)]
pub(crate) struct FuelBucket {
    /// Fuel per wall-clock second the guest may use.
    rate: f64,
    /// Most fuel that may be banked.
    burst: f64,
    /// Fuel available now; negative when the guest ran ahead of its allowance.
    tokens: f64,
    last_refill: Instant,
    last_consumed: u64,
    /// Calibrated fuel per CPU-second, to convert CPU time into fuel.
    fuel_per_cpu_second: f64,
    last_cpu: Duration,
}

impl FuelBucket {
    /// A bucket allowing `millicores` thousandths of a core, given the machine's calibrated
    /// `fuel_per_cpu_second`. It starts empty, so a new guest gets its share from the first
    /// period on rather than a burst on top of it.
    pub(crate) fn new(fuel_per_cpu_second: u64, millicores: u64, now: Instant) -> Self {
        let rate = fuel_per_cpu_second as f64 * millicores.max(1) as f64 / 1000.0;
        let burst = rate * BURST_PERIOD.as_secs_f64();
        FuelBucket {
            rate,
            burst,
            tokens: 0.0,
            last_refill: now,
            last_consumed: 0,
            fuel_per_cpu_second: fuel_per_cpu_second as f64,
            last_cpu: Duration::ZERO,
        }
    }

    /// Accounts for the guest having consumed `consumed_total` fuel and `cpu_total` CPU time
    /// since the run started, at time `now`; returns how long the guest must sleep to stay
    /// within its rate, if at all.
    pub(crate) fn charge(
        &mut self,
        now: Instant,
        consumed_total: u64,
        cpu_total: Duration,
    ) -> Option<Duration> {
        let elapsed = now
            .saturating_duration_since(self.last_refill)
            .as_secs_f64();
        self.last_refill = now;
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        let fuel_used = consumed_total.saturating_sub(self.last_consumed) as f64;
        self.last_consumed = consumed_total;
        let cpu_used = cpu_total.saturating_sub(self.last_cpu).as_secs_f64();
        self.last_cpu = self.last_cpu.max(cpu_total);
        self.tokens -= fuel_used.max(cpu_used * self.fuel_per_cpu_second);
        // Sleeping this long refills the bucket back to zero. Debts under a millisecond (the
        // timer's resolution) are carried over to the next tick rather than slept off.
        let secs = -self.tokens / self.rate;
        if secs < 0.001 {
            return None;
        }
        Some(Duration::from_secs_f64(secs.min(3600.0)))
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
