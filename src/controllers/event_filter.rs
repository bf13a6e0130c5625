//! Kubernetes' event correlation (client-go's `EventCorrelator`), which keeps a component
//! that acts on many objects from flooding the store with Events:
//!
//! - **aggregation**: once more than 10 events with the same source, object, type and reason
//!   but different messages arrive within 10 minutes, further ones become one Event,
//!   "(combined from similar events): MESSAGE", whose count grows;
//! - **spam filter**: each (source, object) pair has a token bucket of 25 events refilled at
//!   one per 5 minutes; an event without a token is dropped.
//!
//! A Job creating 10,000 pods thus records a few dozen Events about itself, not 10,000.
//!
//! Beside correlation, each component has a rate limit on the Events it writes
//! ([`EventRate`]), as each Kubernetes component's client has (the kubelet's `--event-qps` and
//! `--event-burst`). Pure state over an injected clock.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use crate::api::objects::EventRate;

/// Distinct messages of similar events before they are combined (client-go: 10).
const MAX_SIMILAR: usize = 10;
/// How long similar events are remembered (client-go: 10 minutes).
const SIMILAR_WINDOW: Duration = Duration::from_secs(600);
/// Events per (source, object) before the spam filter applies (client-go: 25).
const BURST: f64 = 25.0;
/// Seconds per refilled token (client-go: 1/300 events per second).
const REFILL_SECONDS: f64 = 300.0;
/// Objects remembered before the oldest state is dropped (client-go's LRU: 4096).
const REMEMBERED: usize = 4096;
/// The prefix of a combined event's message.
pub const COMBINED: &str = "(combined from similar events): ";

/// What to record for an event that got through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admitted {
    /// The message to record (prefixed when combined).
    pub message: String,
    /// Whether it joins the combined Event of its kind instead of being its own.
    pub combined: bool,
}

struct Similar {
    messages: HashSet<String>,
    since: Instant,
}

struct Bucket {
    tokens: f64,
    at: Instant,
}

/// The correlator state of one recorder.
#[derive(Default)]
pub struct Correlator {
    similar: HashMap<String, Similar>,
    buckets: HashMap<String, Bucket>,
}

impl Correlator {
    /// Decides about one event: `object` identifies the involved object (and source),
    /// `kind` its type and reason. `None` means the spam filter dropped it.
    pub fn admit(
        &mut self,
        now: Instant,
        object: &str,
        kind: &str,
        message: &str,
    ) -> Option<Admitted> {
        if self.similar.len() > REMEMBERED {
            self.similar.clear();
        }
        if self.buckets.len() > REMEMBERED {
            self.buckets.clear();
        }
        let similar = self
            .similar
            .entry(format!("{object}\u{0}{kind}"))
            .or_insert_with(|| Similar {
                messages: HashSet::new(),
                since: now,
            });
        if now.duration_since(similar.since) > SIMILAR_WINDOW {
            similar.messages.clear();
            similar.since = now;
        }
        similar.messages.insert(message.to_string());
        let combined = similar.messages.len() > MAX_SIMILAR;

        let bucket = self.buckets.entry(object.to_string()).or_insert(Bucket {
            tokens: BURST,
            at: now,
        });
        let refill = now.duration_since(bucket.at).as_secs_f64() / REFILL_SECONDS;
        bucket.tokens = (bucket.tokens + refill).min(BURST);
        bucket.at = now;
        if bucket.tokens < 1.0 {
            return None;
        }
        bucket.tokens -= 1.0;
        Some(Admitted {
            message: if combined {
                format!("{COMBINED}{message}")
            } else {
                message.to_string()
            },
            combined,
        })
    }
}

/// The token bucket of one component's [`EventRate`].
#[derive(Debug)]
pub struct RateLimit {
    /// Tokens per second; 0 for no limit.
    qps: f64,
    burst: f64,
    tokens: f64,
    at: Option<Instant>,
}

impl RateLimit {
    /// A full bucket.
    pub fn new(rate: EventRate) -> Self {
        let burst = f64::from(rate.burst.max(1));
        RateLimit {
            qps: rate.qps,
            burst,
            tokens: burst,
            at: None,
        }
    }

    /// Whether an event may be written at `now` (taking a token if so).
    pub fn admit(&mut self, now: Instant) -> bool {
        if self.qps <= 0.0 {
            return true;
        }
        if let Some(at) = self.at {
            let refill = now.saturating_duration_since(at).as_secs_f64() * self.qps;
            self.tokens = (self.tokens + refill).min(self.burst);
        }
        self.at = Some(now);
        if self.tokens < 1.0 {
            return false;
        }
        self.tokens -= 1.0;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rate_limit_allows_its_burst_then_its_rate() {
        let mut limit = RateLimit::new(EventRate {
            qps: 50.0,
            burst: 100,
        });
        let now = Instant::now();
        assert_eq!((0..150).filter(|_| limit.admit(now)).count(), 100);
        // A tenth of a second later: five more.
        let later = now + Duration::from_millis(100);
        assert_eq!((0..20).filter(|_| limit.admit(later)).count(), 5);
        // Idle for a minute: the bucket is full again, not fuller.
        let idle = later + Duration::from_secs(60);
        assert_eq!((0..150).filter(|_| limit.admit(idle)).count(), 100);
        // No limit at all with a rate of 0.
        let mut unlimited = RateLimit::new(EventRate { qps: 0.0, burst: 1 });
        assert!((0..10_000).all(|_| unlimited.admit(now)));
    }

    #[test]
    fn similar_events_are_combined_after_ten_messages() {
        let mut c = Correlator::default();
        let now = Instant::now();
        for i in 0..10 {
            let a = c.admit(now, "job/a", "Normal/SuccessfulCreate", &format!("pod {i}"));
            assert!(!a.unwrap().combined);
        }
        let a = c
            .admit(now, "job/a", "Normal/SuccessfulCreate", "pod 10")
            .unwrap();
        assert!(a.combined);
        assert_eq!(a.message, "(combined from similar events): pod 10");
        // Another reason or object is counted apart.
        assert!(
            !c.admit(now, "job/a", "Warning/Failed", "x")
                .unwrap()
                .combined
        );
        assert!(
            !c.admit(now, "job/b", "Normal/SuccessfulCreate", "pod 11")
                .unwrap()
                .combined
        );
        // After the window, messages start over.
        let later = now + SIMILAR_WINDOW + Duration::from_secs(1);
        assert!(
            !c.admit(later, "job/a", "Normal/SuccessfulCreate", "pod 12")
                .unwrap()
                .combined
        );
    }

    #[test]
    fn the_spam_filter_allows_a_burst_of_25_then_one_per_five_minutes() {
        let mut c = Correlator::default();
        let now = Instant::now();
        let admitted = (0..40)
            .filter(|i| {
                c.admit(now, "pod/p", "Normal/Pulled", &i.to_string())
                    .is_some()
            })
            .count();
        assert_eq!(admitted, 25);
        assert!(
            c.admit(now + Duration::from_secs(60), "pod/p", "Normal/Pulled", "x")
                .is_none()
        );
        assert!(
            c.admit(
                now + Duration::from_secs(301),
                "pod/p",
                "Normal/Pulled",
                "x"
            )
            .is_some()
        );
        // Other objects have their own bucket.
        assert!(c.admit(now, "pod/q", "Normal/Pulled", "x").is_some());
    }
}
