//! The node's HTTP functions: containers whose Wasm image is a `wasi:http/proxy` component.
//! A function is served, not run: while its pod runs it sits in the [`Functions`] table,
//! pre-instantiated, and each request gets a fresh store (see `skiff_runtime::wasm::http`).
//!
//! The gateway finds a function by its pod's uid and a port; the table also keeps each
//! namespace's (tenant's) resource usage for the gateway's metrics.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use bytes::Bytes;
use serde_json::Value;
use skiff_runtime::wasm::{
    Egress, Exit, HttpBody, HttpFailure, HttpSpec, Outcome, Program, WasmRuntime,
};
use tokio::sync::watch;

/// The annotation giving a function's per-request timeout (`30s`, `500ms`, `2m`, or seconds).
pub const TIMEOUT_ANNOTATION: &str = "skiff.dev/request-timeout";
/// The annotation listing the hosts a function may call (comma-separated; see
/// `skiff_runtime::wasm::Egress`).
pub const EGRESS_ANNOTATION: &str = "skiff.dev/egress";
/// The annotation capping how many requests a function serves at once (more get 503).
pub const CONCURRENCY_ANNOTATION: &str = "skiff.dev/max-concurrency";
/// Requests a function serves at once when its pod does not say.
pub const DEFAULT_CONCURRENCY: usize = 100;
/// A function's request timeout when its pod does not set one.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// One served container.
pub struct Function {
    /// The pod's namespace (the tenant).
    pub namespace: String,
    /// The pod's uid.
    pub uid: String,
    /// The container's name.
    pub container: String,
    /// The pod's labels (for scale-from-zero, which waits for a pod a Service selects).
    pub labels: Value,
    /// The declared `containerPort`s; empty means the function answers on any port.
    pub ports: Vec<u16>,
    runtime: WasmRuntime,
    program: Arc<Program>,
    spec: HttpSpec,
    max_concurrency: usize,
    in_flight: AtomicUsize,
}

impl Function {
    /// A function serving `program` with `spec`; its usage is recorded in `usage`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        namespace: &str,
        uid: &str,
        container: &str,
        labels: Value,
        ports: Vec<u16>,
        runtime: WasmRuntime,
        program: Arc<Program>,
        mut spec: HttpSpec,
        max_concurrency: usize,
        usage: Arc<UsageTable>,
    ) -> Self {
        let tenant = namespace.to_string();
        spec.on_finish = Some(Arc::new(move |outcome: &Outcome| {
            usage.record(&tenant, outcome)
        }));
        Function {
            namespace: namespace.into(),
            uid: uid.into(),
            container: container.into(),
            labels,
            ports,
            runtime,
            program,
            spec,
            max_concurrency,
            in_flight: AtomicUsize::new(0),
        }
    }

    /// Whether the function answers on `port`.
    pub fn serves_port(&self, port: u16) -> bool {
        self.ports.is_empty() || self.ports.contains(&port)
    }

    /// Requests that have not had their response yet.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::SeqCst)
    }

    /// Serves one request in a fresh sandbox.
    ///
    /// # Errors
    ///
    /// The guest's failure; its `status()` is the answer to give. With
    /// [`CONCURRENCY_ANNOTATION`] requests already in flight, a 503 at once: one tenant's
    /// flood cannot take every sandbox slot of the node.
    pub async fn call(
        &self,
        request: http::Request<Bytes>,
    ) -> Result<http::Response<HttpBody>, HttpFailure> {
        // Counted down when the call ends, or when its caller goes away mid-request (a
        // client that disconnects drops this future).
        let guard = InFlight::enter(&self.in_flight);
        if guard.count > self.max_concurrency {
            return Err(HttpFailure::Unavailable {
                reason: format!(
                    "{} requests are already in flight (annotation {CONCURRENCY_ANNOTATION})",
                    self.max_concurrency
                ),
            });
        }
        self.runtime
            .serve_http(&self.program, &self.spec, request)
            .await
    }
}

/// One request counted in a function's in-flight number while it lives.
struct InFlight<'a> {
    counter: &'a AtomicUsize,
    /// The number in flight, this one included.
    count: usize,
}

impl<'a> InFlight<'a> {
    fn enter(counter: &'a AtomicUsize) -> Self {
        let count = counter.fetch_add(1, Ordering::SeqCst) + 1;
        InFlight { counter, count }
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.counter.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Resource usage of one tenant's functions.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TenantUsage {
    /// Requests whose sandbox has ended.
    pub requests: u64,
    /// Fuel burnt by them.
    pub fuel: u64,
    /// CPU seconds they used.
    pub cpu_seconds: f64,
    /// Sandboxes that trapped (panics included).
    pub traps: u64,
    /// Sandboxes stopped by their memory limit.
    pub oom_kills: u64,
    /// Sandboxes stopped by their request timeout.
    pub timeouts: u64,
}

impl TenantUsage {
    /// Adds one finished sandbox (pure).
    pub fn add(&mut self, outcome: &Outcome) {
        self.requests += 1;
        self.fuel += outcome.usage.fuel_consumed;
        self.cpu_seconds += outcome.usage.cpu_seconds;
        match outcome.exit {
            Exit::Trap { .. } => self.traps += 1,
            Exit::OomKilled => self.oom_kills += 1,
            Exit::DeadlineExceeded => self.timeouts += 1,
            _ => {}
        }
    }
}

/// Usage per namespace, since the process started.
#[derive(Debug, Default)]
pub struct UsageTable {
    tenants: Mutex<BTreeMap<String, TenantUsage>>,
}

impl UsageTable {
    fn record(&self, namespace: &str, outcome: &Outcome) {
        let mut tenants = self.tenants.lock().unwrap_or_else(|p| p.into_inner());
        match tenants.get_mut(namespace) {
            Some(usage) => usage.add(outcome),
            None => {
                let mut usage = TenantUsage::default();
                usage.add(outcome);
                tenants.insert(namespace.to_string(), usage);
            }
        }
    }

    /// A copy of every tenant's usage, by namespace.
    pub fn snapshot(&self) -> BTreeMap<String, TenantUsage> {
        self.tenants
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

/// The functions this node serves, by pod uid.
pub struct Functions {
    by_pod: RwLock<HashMap<String, Vec<Arc<Function>>>>,
    /// Bumped at every register/unregister, so waiters (scale from zero) can watch.
    version: watch::Sender<u64>,
    /// Per-tenant usage of every function.
    pub usage: Arc<UsageTable>,
}

impl Default for Functions {
    fn default() -> Self {
        Functions {
            by_pod: RwLock::new(HashMap::new()),
            version: watch::Sender::new(0),
            usage: Arc::new(UsageTable::default()),
        }
    }
}

impl Functions {
    /// Adds a function (its pod's container now serves).
    pub fn register(&self, function: Arc<Function>) {
        self.write()
            .entry(function.uid.clone())
            .or_default()
            .push(function);
        self.version.send_modify(|v| *v += 1);
    }

    /// Removes the function of this pod and container.
    pub fn unregister(&self, uid: &str, container: &str) {
        {
            let mut by_pod = self.write();
            if let Some(list) = by_pod.get_mut(uid) {
                list.retain(|f| f.container != container);
                if list.is_empty() {
                    by_pod.remove(uid);
                }
            }
        }
        self.version.send_modify(|v| *v += 1);
    }

    /// The function of pod `uid` answering on `port`.
    pub fn get(&self, uid: &str, port: u16) -> Option<Arc<Function>> {
        let by_pod = self.by_pod.read().unwrap_or_else(|p| p.into_inner());
        let list = by_pod.get(uid)?;
        // A declared port wins over a function that takes any port.
        list.iter()
            .find(|f| f.ports.contains(&port))
            .or_else(|| list.iter().find(|f| f.serves_port(port)))
            .cloned()
    }

    /// A function of `namespace` for which `keep` holds.
    pub fn find(&self, namespace: &str, keep: impl Fn(&Function) -> bool) -> Option<Arc<Function>> {
        let by_pod = self.by_pod.read().unwrap_or_else(|p| p.into_inner());
        by_pod
            .values()
            .flatten()
            .find(|f| f.namespace == namespace && keep(f))
            .cloned()
    }

    /// A receiver that changes whenever a function comes or goes.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.version.subscribe()
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<String, Vec<Arc<Function>>>> {
        self.by_pod.write().unwrap_or_else(|p| p.into_inner())
    }
}

/// A function's settings from its pod's annotations.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// [`TIMEOUT_ANNOTATION`], else [`DEFAULT_TIMEOUT`].
    pub timeout: Duration,
    /// [`CONCURRENCY_ANNOTATION`], else [`DEFAULT_CONCURRENCY`].
    pub max_concurrency: usize,
    /// [`EGRESS_ANNOTATION`], else nothing is allowed.
    pub egress: Egress,
}

impl Settings {
    /// Reads the annotations (pure).
    ///
    /// # Errors
    ///
    /// Which annotation is not valid, and why.
    pub fn from_annotations(annotations: &Value) -> Result<Settings, String> {
        let timeout = match annotations[TIMEOUT_ANNOTATION].as_str() {
            None => DEFAULT_TIMEOUT,
            Some(text) => parse_duration(text).filter(|d| !d.is_zero()).ok_or_else(|| {
                format!(
                    "annotation {TIMEOUT_ANNOTATION}: {text:?} is not a duration such as 30s or 500ms"
                )
            })?,
        };
        let max_concurrency = match annotations[CONCURRENCY_ANNOTATION].as_str() {
            None => DEFAULT_CONCURRENCY,
            Some(text) => text
                .trim()
                .parse::<usize>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| {
                    format!(
                        "annotation {CONCURRENCY_ANNOTATION}: {text:?} is not a positive number"
                    )
                })?,
        };
        let egress = Egress::allow(
            annotations[EGRESS_ANNOTATION]
                .as_str()
                .unwrap_or_default()
                .split(','),
        );
        Ok(Settings {
            timeout,
            max_concurrency,
            egress,
        })
    }
}

/// Parses a duration annotation: `30s`, `500ms`, `2m`, `1h`, or a bare number of seconds.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number
        .parse()
        .ok()
        .filter(|n: &f64| n.is_finite() && *n >= 0.0)?;
    let seconds = match unit.trim() {
        "" | "s" => number,
        "ms" => number / 1000.0,
        "m" => number * 60.0,
        "h" => number * 3600.0,
        _ => return None,
    };
    Some(Duration::from_secs_f64(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;
    use skiff_runtime::wasm::Usage;

    #[test]
    fn in_flight_requests_are_counted_down_even_when_abandoned() {
        let counter = AtomicUsize::new(0);
        let first = InFlight::enter(&counter);
        let second = InFlight::enter(&counter);
        assert_eq!((first.count, second.count), (1, 2));
        drop(first);
        // A future dropped mid-await drops its guard too.
        drop(second);
        assert_eq!(counter.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn settings_from_annotations() {
        let defaults = Settings::from_annotations(&Value::Null).unwrap();
        assert_eq!(defaults.timeout, DEFAULT_TIMEOUT);
        assert_eq!(defaults.max_concurrency, DEFAULT_CONCURRENCY);
        assert!(!defaults.egress.permits("example.com", 443));
        let set = Settings::from_annotations(&serde_json::json!({
            TIMEOUT_ANNOTATION: "250ms",
            CONCURRENCY_ANNOTATION: " 8 ",
            EGRESS_ANNOTATION: "api.example.com, *.svc:8080",
        }))
        .unwrap();
        assert_eq!(set.timeout, Duration::from_millis(250));
        assert_eq!(set.max_concurrency, 8);
        assert!(set.egress.permits("api.example.com", 443));
        assert!(set.egress.permits("a.svc", 8080));
        for (key, bad) in [
            (TIMEOUT_ANNOTATION, "soon"),
            (TIMEOUT_ANNOTATION, "0s"),
            (CONCURRENCY_ANNOTATION, "0"),
            (CONCURRENCY_ANNOTATION, "many"),
        ] {
            let err = Settings::from_annotations(&serde_json::json!({key: bad})).unwrap_err();
            assert!(err.contains(key) && err.contains(bad), "{err}");
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s"), Some(Duration::from_secs(30)));
        assert_eq!(parse_duration("30"), Some(Duration::from_secs(30)));
        assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_duration("2m"), Some(Duration::from_secs(120)));
        assert_eq!(parse_duration("1.5s"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_duration("1h"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_duration("soon"), None);
        assert_eq!(parse_duration("5 days"), None);
        assert_eq!(parse_duration(""), None);
    }

    #[test]
    fn tenant_usage_adds_up() {
        let mut usage = TenantUsage::default();
        let outcome = |exit| Outcome {
            exit,
            usage: Usage {
                fuel_consumed: 100,
                cpu_seconds: 0.5,
                ..Usage::default()
            },
        };
        usage.add(&outcome(Exit::Code(0)));
        usage.add(&outcome(Exit::OomKilled));
        usage.add(&outcome(Exit::DeadlineExceeded));
        usage.add(&outcome(Exit::Trap {
            message: "x".into(),
        }));
        assert_eq!(usage.requests, 4);
        assert_eq!(usage.fuel, 400);
        assert_eq!(usage.cpu_seconds, 2.0);
        assert_eq!((usage.traps, usage.oom_kills, usage.timeouts), (1, 1, 1));
    }
}
