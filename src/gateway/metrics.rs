//! Per-tenant (per-namespace) request metrics of the gateway, rendered in the Prometheus text
//! format with the functions' resource usage.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Duration;

use crate::node::functions::TenantUsage;

/// Upper bounds of the latency histogram's buckets, in seconds.
pub const BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// One tenant's requests.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TenantRequests {
    /// Requests by response status.
    pub by_code: BTreeMap<u16, u64>,
    /// Requests per latency bucket (not cumulative; the last is +Inf).
    pub buckets: [u64; BUCKETS.len() + 1],
    /// Sum of latencies, in seconds.
    pub seconds: f64,
}

impl TenantRequests {
    /// Counts one request (pure).
    pub fn add(&mut self, code: u16, latency: Duration) {
        *self.by_code.entry(code).or_default() += 1;
        let s = latency.as_secs_f64();
        let bucket = BUCKETS
            .iter()
            .position(|b| s <= *b)
            .unwrap_or(BUCKETS.len());
        self.buckets[bucket] += 1;
        self.seconds += s;
    }

    /// Requests counted.
    pub fn count(&self) -> u64 {
        self.by_code.values().sum()
    }
}

/// The gateway's metrics.
#[derive(Debug, Default)]
pub struct Metrics {
    tenants: Mutex<BTreeMap<String, TenantRequests>>,
    unrouted: Mutex<BTreeMap<u16, u64>>,
}

impl Metrics {
    /// Counts a request answered for `namespace`'s Service.
    pub fn record(&self, namespace: &str, code: u16, latency: Duration) {
        let mut tenants = self.tenants.lock().unwrap_or_else(|p| p.into_inner());
        match tenants.get_mut(namespace) {
            Some(t) => t.add(code, latency),
            None => {
                let mut t = TenantRequests::default();
                t.add(code, latency);
                tenants.insert(namespace.to_string(), t);
            }
        }
    }

    /// Counts a request no Ingress rule matched (or refused before routing).
    pub fn record_unrouted(&self, code: u16) {
        *self
            .unrouted
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(code)
            .or_default() += 1;
    }

    /// The Prometheus text exposition of everything, with `usage` of the functions.
    pub fn render(&self, usage: &BTreeMap<String, TenantUsage>) -> String {
        let tenants = self
            .tenants
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let unrouted = self
            .unrouted
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        render(&tenants, &unrouted, usage)
    }
}

/// Escapes a label value.
fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Renders the exposition (pure).
pub fn render(
    tenants: &BTreeMap<String, TenantRequests>,
    unrouted: &BTreeMap<u16, u64>,
    usage: &BTreeMap<String, TenantUsage>,
) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# HELP skiff_gateway_requests_total Requests the gateway answered, by namespace and status code.\n# TYPE skiff_gateway_requests_total counter"
    );
    for (ns, t) in tenants {
        for (code, n) in &t.by_code {
            let _ = writeln!(
                out,
                "skiff_gateway_requests_total{{namespace=\"{}\",code=\"{code}\"}} {n}",
                label(ns)
            );
        }
    }
    let _ = writeln!(
        out,
        "# HELP skiff_gateway_unrouted_requests_total Requests no Ingress rule or Service took, by status code.\n# TYPE skiff_gateway_unrouted_requests_total counter"
    );
    for (code, n) in unrouted {
        let _ = writeln!(
            out,
            "skiff_gateway_unrouted_requests_total{{code=\"{code}\"}} {n}"
        );
    }
    let _ = writeln!(
        out,
        "# HELP skiff_gateway_request_duration_seconds Time from a request's arrival to its response headers, by namespace.\n# TYPE skiff_gateway_request_duration_seconds histogram"
    );
    for (ns, t) in tenants {
        let ns = label(ns);
        let mut cumulative = 0;
        for (i, bound) in BUCKETS.iter().enumerate() {
            cumulative += t.buckets[i];
            let _ = writeln!(
                out,
                "skiff_gateway_request_duration_seconds_bucket{{namespace=\"{ns}\",le=\"{bound}\"}} {cumulative}"
            );
        }
        cumulative += t.buckets[BUCKETS.len()];
        let _ = writeln!(
            out,
            "skiff_gateway_request_duration_seconds_bucket{{namespace=\"{ns}\",le=\"+Inf\"}} {cumulative}\nskiff_gateway_request_duration_seconds_sum{{namespace=\"{ns}\"}} {}\nskiff_gateway_request_duration_seconds_count{{namespace=\"{ns}\"}} {cumulative}",
            t.seconds
        );
    }
    let counter = |out: &mut String, name: &str, help: &str| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
    };
    counter(
        &mut out,
        "skiff_function_sandboxes_total",
        "Function sandboxes (one per request) that have ended, by namespace.",
    );
    for (ns, u) in usage {
        let _ = writeln!(
            out,
            "skiff_function_sandboxes_total{{namespace=\"{}\"}} {}",
            label(ns),
            u.requests
        );
    }
    counter(
        &mut out,
        "skiff_function_fuel_consumed_total",
        "Fuel (about one unit per Wasm instruction) burnt by functions, by namespace.",
    );
    for (ns, u) in usage {
        let _ = writeln!(
            out,
            "skiff_function_fuel_consumed_total{{namespace=\"{}\"}} {}",
            label(ns),
            u.fuel
        );
    }
    counter(
        &mut out,
        "skiff_function_cpu_seconds_total",
        "CPU time functions used, by namespace.",
    );
    for (ns, u) in usage {
        let _ = writeln!(
            out,
            "skiff_function_cpu_seconds_total{{namespace=\"{}\"}} {}",
            label(ns),
            u.cpu_seconds
        );
    }
    counter(
        &mut out,
        "skiff_function_errors_total",
        "Function sandboxes stopped by a trap, the memory limit or the request timeout.",
    );
    for (ns, u) in usage {
        for (reason, n) in [
            ("trap", u.traps),
            ("oom", u.oom_kills),
            ("timeout", u.timeouts),
        ] {
            let _ = writeln!(
                out,
                "skiff_function_errors_total{{namespace=\"{}\",reason=\"{reason}\"}} {n}",
                label(ns)
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative() {
        let metrics = Metrics::default();
        metrics.record("a", 200, Duration::from_micros(300));
        metrics.record("a", 200, Duration::from_millis(3));
        metrics.record("a", 504, Duration::from_secs(30));
        metrics.record("b\"x", 500, Duration::from_millis(1));
        metrics.record_unrouted(404);
        let usage = BTreeMap::from([(
            "a".to_string(),
            TenantUsage {
                requests: 3,
                fuel: 1234,
                cpu_seconds: 0.25,
                traps: 0,
                oom_kills: 0,
                timeouts: 1,
            },
        )]);
        let text = metrics.render(&usage);
        assert!(text.contains("skiff_gateway_requests_total{namespace=\"a\",code=\"200\"} 2"));
        assert!(text.contains("skiff_gateway_requests_total{namespace=\"a\",code=\"504\"} 1"));
        assert!(text.contains("namespace=\"b\\\"x\""));
        assert!(text.contains(
            "skiff_gateway_request_duration_seconds_bucket{namespace=\"a\",le=\"0.0005\"} 1"
        ));
        assert!(text.contains(
            "skiff_gateway_request_duration_seconds_bucket{namespace=\"a\",le=\"0.005\"} 2"
        ));
        assert!(text.contains(
            "skiff_gateway_request_duration_seconds_bucket{namespace=\"a\",le=\"10\"} 2"
        ));
        assert!(text.contains(
            "skiff_gateway_request_duration_seconds_bucket{namespace=\"a\",le=\"+Inf\"} 3"
        ));
        assert!(text.contains("skiff_gateway_request_duration_seconds_count{namespace=\"a\"} 3"));
        assert!(text.contains("skiff_gateway_unrouted_requests_total{code=\"404\"} 1"));
        assert!(text.contains("skiff_function_fuel_consumed_total{namespace=\"a\"} 1234"));
        assert!(text.contains("skiff_function_errors_total{namespace=\"a\",reason=\"timeout\"} 1"));
    }
}
