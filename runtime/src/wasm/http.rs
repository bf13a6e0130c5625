//! HTTP functions: components exporting `wasi:http/incoming-handler` (the `wasi:http/proxy`
//! world), served one fresh `Store` per request from the program's pre-instantiated
//! `ProxyPre`.
//!
//! A request runs under the same limits as a command run ([`RunSpec`]'s memory and CPU,
//! its preopens, environment and output sinks) plus a wall-clock timeout that covers the
//! whole exchange, response body included. The guest may make outgoing requests
//! (`wasi:http/outgoing-handler`) only to the hosts its [`Egress`] allows; it has no
//! sockets.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use tokio::sync::oneshot;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::p2::bindings::http::types::{ErrorCode, Scheme};
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpHooks, WasiHttpView};

use super::error::ProgramKind;
use super::limits::RunStats;
use super::run::{self, Failure, HostState, Pre};
use super::throttle::CpuBudget;
use super::{Exit, Inner, Outcome, Program, RunSpec, WasmRuntime};

/// The body of a function's response, streamed while the guest writes it.
pub type HttpBody = HyperOutgoingBody;

pub(crate) type HttpLinker = wasmtime::component::Linker<HostState<HttpCtx>>;

/// The hosts a function may call with `wasi:http/outgoing-handler`.
///
/// Patterns are host names (`api.example.com`), `*.`-prefixed suffixes (`*.example.com`
/// matches `a.example.com` but not `example.com`), either with an optional `:port`, or `*` for
/// any host. Anything not matched is refused with `HTTP-request-denied`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Egress {
    patterns: Vec<String>,
}

impl Egress {
    /// Refuses every outgoing request.
    pub fn deny_all() -> Self {
        Egress::default()
    }

    /// Allows the hosts matched by `patterns` (see the type's docs); blanks are ignored.
    pub fn allow<I, S>(patterns: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        Egress {
            patterns: patterns
                .into_iter()
                .map(|p| p.as_ref().trim().to_ascii_lowercase())
                .filter(|p| !p.is_empty())
                .collect(),
        }
    }

    /// Whether a request to `host` on `port` is allowed.
    pub fn permits(&self, host: &str, port: u16) -> bool {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        self.patterns.iter().any(|pattern| {
            let (name, want_port) = match pattern.rsplit_once(':') {
                Some((name, p)) if !name.is_empty() => (name, p.parse::<u16>().ok()),
                _ => (pattern.as_str(), None),
            };
            if want_port.is_some_and(|p| p != port) {
                return false;
            }
            match name {
                "*" => true,
                _ => match name.strip_prefix("*.") {
                    Some(suffix) => host
                        .strip_suffix(suffix)
                        .is_some_and(|rest| rest.ends_with('.') && rest.len() > 1),
                    None => host == name,
                },
            }
        })
    }
}

/// How often, in CPU time, a request's guest yields to the executor: more often than a
/// command's, so that a spinning function delays other tenants' requests sharing its thread
/// by a fraction of a millisecond, not a whole one.
const YIELD_EVERY_CPU: Duration = Duration::from_micros(200);

/// A callback told how each request's sandbox ended.
pub type OnFinish = Arc<dyn Fn(&Outcome) + Send + Sync>;

/// Everything about how one function serves its requests.
#[derive(Clone)]
pub struct HttpSpec {
    /// Environment, working directory, preopens, output sinks, memory and CPU limits and the
    /// cancel token, as for a command run. `args` are the guest's argv; `deadline` is ignored
    /// (each request gets `timeout` from its start).
    pub run: RunSpec,
    /// Wall-clock limit of one request, from instantiation to the end of the response body.
    pub timeout: Duration,
    /// A CPU limit all requests share (from [`WasmRuntime::cpu_budget`]): a function's
    /// concurrent requests together get its container's CPU, as a container's processes
    /// share its quota. `None` throttles each request alone to `run.cpu_millis`.
    pub cpu_budget: Option<CpuBudget>,
    /// Where outgoing requests may go.
    pub egress: Arc<Egress>,
    /// Called with the outcome of every request once its guest is gone (for metrics: fuel,
    /// CPU, memory, wall time). Must be quick; it runs on the guest's thread.
    pub on_finish: Option<OnFinish>,
}

impl std::fmt::Debug for HttpSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpSpec")
            .field("run", &self.run)
            .field("timeout", &self.timeout)
            .field("egress", &self.egress)
            .finish_non_exhaustive()
    }
}

/// Why a request got no response from its function. [`status`](HttpFailure::status) is
/// what the caller should be answered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HttpFailure {
    /// The guest trapped (or panicked) before it set a response.
    #[error("the function trapped: {message}")]
    Trap {
        /// wasmtime's description of the trap.
        message: String,
    },
    /// The guest hit its memory limit before it set a response.
    #[error("the function exceeded its memory limit")]
    OomKilled,
    /// The request's timeout passed before the guest set a response.
    #[error("the function did not answer within {0:?}")]
    Timeout(Duration),
    /// The guest returned without setting a response.
    #[error("the function returned without a response")]
    NoResponse,
    /// The guest answered with a `wasi:http` error code instead of a response.
    #[error("the function answered with an error: {code}")]
    Guest {
        /// The error code, as WASI names it.
        code: String,
    },
    /// The request could not be started (no free pooling slot, a preopen is missing, the
    /// program does not serve HTTP) or was cancelled.
    #[error("the function could not be started: {reason}")]
    Unavailable {
        /// Why.
        reason: String,
    },
}

impl HttpFailure {
    /// The HTTP status to answer with: 504 for a timeout, 503 when the function could not be
    /// started, 502 for a guest error code, 500 otherwise.
    pub fn status(&self) -> u16 {
        match self {
            HttpFailure::Timeout(_) => 504,
            HttpFailure::Unavailable { .. } => 503,
            HttpFailure::Guest { .. } => 502,
            HttpFailure::Trap { .. } | HttpFailure::OomKilled | HttpFailure::NoResponse => 500,
        }
    }

    fn from_exit(exit: Exit, timeout: Duration) -> Self {
        match exit {
            Exit::Trap { message } => HttpFailure::Trap {
                // The first line; the backtrace goes to the container's log.
                message: message.lines().next().unwrap_or_default().to_string(),
            },
            Exit::OomKilled => HttpFailure::OomKilled,
            Exit::DeadlineExceeded => HttpFailure::Timeout(timeout),
            Exit::Code(_) => HttpFailure::NoResponse,
            Exit::Killed => HttpFailure::Unavailable {
                reason: "the function is stopping".into(),
            },
            Exit::StartFailed { reason } | Exit::CreateFailed { reason } => {
                HttpFailure::Unavailable { reason }
            }
        }
    }
}

/// The store data of a request: WASI, `wasi:http` and the egress check.
pub(crate) struct HttpCtx {
    ctx: WasiCtx,
    table: ResourceTable,
    http: WasiHttpCtx,
    hooks: EgressHooks,
}

impl WasiView for HostState<HttpCtx> {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi.ctx,
            table: &mut self.wasi.table,
        }
    }
}

impl WasiHttpView for HostState<HttpCtx> {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.wasi.http,
            table: &mut self.wasi.table,
            hooks: &mut self.wasi.hooks,
        }
    }
}

/// Sends a guest's outgoing request only where its [`Egress`] allows.
struct EgressHooks(Arc<Egress>);

type SendResult = wasmtime_wasi_http::Result<(
    http::Response<wasmtime_wasi_http::WasiBody>,
    Box<dyn Future<Output = wasmtime_wasi_http::Result<()>> + Send>,
)>;

impl WasiHttpHooks for EgressHooks {
    fn send_request(
        &mut self,
        request: http::Request<wasmtime_wasi_http::WasiBody>,
        options: Option<wasmtime_wasi_http::RequestOptions>,
        fut: Box<dyn Future<Output = wasmtime_wasi_http::Result<()>> + Send>,
    ) -> Box<dyn Future<Output = SendResult> + Send> {
        drop(fut);
        let uri = request.uri();
        let https = uri.scheme() == Some(&http::uri::Scheme::HTTPS);
        let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
        let allowed = uri.host().is_some_and(|host| self.0.permits(host, port));
        Box::new(async move {
            if !allowed {
                return Err(wasmtime_wasi_http::Error::HttpRequestDenied);
            }
            use http_body_util::BodyExt;
            let (response, io) = wasmtime_wasi_http::default_send_request(request, options).await?;
            Ok((
                response.map(BodyExt::boxed_unsync),
                Box::new(io) as Box<dyn Future<Output = _> + Send>,
            ))
        })
    }
}

impl WasmRuntime {
    /// A CPU budget of `millicores` for runs to share (see [`HttpSpec::cpu_budget`]).
    pub fn cpu_budget(&self, millicores: u64) -> CpuBudget {
        CpuBudget::new(self.inner.fuel_per_cpu_second, millicores, Instant::now())
    }

    /// Serves one HTTP request with `program` (which must [serve HTTP](Program::serves_http))
    /// in a fresh store, and returns the guest's response as soon as it sets one; the body
    /// streams while the guest writes it. The request's `Host` header (or URI authority)
    /// becomes the guest's authority.
    ///
    /// # Errors
    ///
    /// An [`HttpFailure`] when the guest traps, runs out of memory or time, or returns before
    /// it sets a response; its [`status`](HttpFailure::status) is the answer to give.
    pub async fn serve_http(
        &self,
        program: &Arc<Program>,
        spec: &HttpSpec,
        request: http::Request<Bytes>,
    ) -> Result<http::Response<HttpBody>, HttpFailure> {
        let (response_tx, response_rx) = oneshot::channel();
        let (exit_tx, exit_rx) = oneshot::channel();
        let task = handle(
            self.inner.clone(),
            program.clone(),
            spec.clone(),
            request,
            response_tx,
            exit_tx,
        );
        match &self.inner.guests {
            Some(guests) => guests.spawn(task),
            None => {
                tokio::spawn(task);
            }
        }
        match response_rx.await {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(code)) => Err(HttpFailure::Guest {
                code: format!("{code:?}"),
            }),
            Err(_) => {
                let exit = exit_rx.await.unwrap_or_else(|_| Exit::Trap {
                    message: "the sandbox task ended abnormally".into(),
                });
                Err(HttpFailure::from_exit(exit, spec.timeout))
            }
        }
    }
}

type ResponseSender = oneshot::Sender<Result<http::Response<HyperOutgoingBody>, ErrorCode>>;

/// One request, from instantiation to the end of the guest; reports how it ended.
async fn handle(
    inner: Arc<Inner>,
    program: Arc<Program>,
    spec: HttpSpec,
    request: http::Request<Bytes>,
    response: ResponseSender,
    exit_tx: oneshot::Sender<Exit>,
) {
    let started = Instant::now();
    let stats = Arc::new(RunStats::default());
    let bucket = run::bucket(&inner, &spec.run, spec.cpu_budget.as_ref());
    let exit = match &program.pre {
        Pre::Proxy(pre) if wasmtime::Engine::same(&program.engine, &inner.engine) => {
            let guest = async {
                // A function whose requests have spent its CPU budget starts no new one
                // until the budget has refilled: a flood of short requests is throttled
                // like a long one.
                if let Some(budget) = &spec.cpu_budget {
                    while let Some(pause) = budget.pause(Instant::now()) {
                        tokio::time::sleep(pause).await;
                    }
                }
                let mut wasi = match run::wasi_builder(&spec.run, ProgramKind::Component) {
                    Ok(builder) => builder,
                    Err(reason) => return Exit::StartFailed { reason },
                };
                let state = HostState {
                    wasi: HttpCtx {
                        ctx: wasi.build(),
                        table: ResourceTable::new(),
                        http: WasiHttpCtx::new(),
                        hooks: EgressHooks(spec.egress.clone()),
                    },
                    limiter: run::limiter(&inner, &spec.run, &stats),
                };
                let mut store =
                    run::new_store(&inner, state, bucket.clone(), YIELD_EVERY_CPU, &stats);
                let result = async {
                    let proxy = pre
                        .instantiate_async(&mut store)
                        .await
                        .map_err(Failure::Start)?;
                    let mut view = store.data_mut().http();
                    let request = view
                        .new_incoming_request(Scheme::Http, request.map(Full::new))
                        .map_err(Failure::Start)?;
                    let out = view
                        .new_response_outparam(response)
                        .map_err(Failure::Start)?;
                    proxy
                        .wasi_http_incoming_handler()
                        .call_handle(&mut store, request, out)
                        .await
                        .map_err(Failure::Run)?;
                    Ok(0)
                }
                .await;
                run::finish(&store, &stats);
                run::classify(result, &stats)
            };
            let deadline = Instant::now() + spec.timeout;
            run::race(guest, &spec.run.cancel, Some(deadline), &stats).await
        }
        Pre::Proxy(_) => Exit::StartFailed {
            reason: "the program was loaded by a different WasmRuntime".into(),
        },
        _ => Exit::StartFailed {
            reason: "the program does not export wasi:http/incoming-handler".into(),
        },
    };
    // What the request burnt since the last epoch tick (all of it, for one shorter than a
    // tick) is charged too, so the next requests pay for it.
    if spec.cpu_budget.is_some()
        && let Some(bucket) = &bucket
    {
        let fuel = stats
            .fuel_consumed
            .load(std::sync::atomic::Ordering::Relaxed);
        let _ = bucket.lock().unwrap_or_else(|p| p.into_inner()).charge(
            Instant::now(),
            fuel,
            stats.cpu_time(),
        );
    }
    // The caller gets a short answer; the container's log gets the whole story.
    let note = match &exit {
        Exit::Trap { message } => {
            Some(format!("request failed: the function trapped: {message}\n"))
        }
        Exit::OomKilled => Some("request failed: the function exceeded its memory limit\n".into()),
        Exit::DeadlineExceeded => Some(format!(
            "request failed: the function did not finish within {:?}\n",
            spec.timeout
        )),
        _ => None,
    };
    if let Some(note) = note {
        spec.run.stderr.write(note.as_bytes());
    }
    if let Some(on_finish) = &spec.on_finish {
        on_finish(&run::outcome(exit.clone(), &stats, started));
    }
    let _ = exit_tx.send(exit);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn egress_patterns() {
        let none = Egress::deny_all();
        assert!(!none.permits("example.com", 443));

        let egress = Egress::allow(["api.example.com", "*.svc.local:8080", " ", "Other.ORG"]);
        assert!(egress.permits("api.example.com", 443));
        assert!(egress.permits("API.example.com.", 80));
        assert!(!egress.permits("example.com", 443));
        assert!(!egress.permits("evil-api.example.com", 443));
        assert!(egress.permits("a.svc.local", 8080));
        assert!(egress.permits("a.b.svc.local", 8080));
        assert!(!egress.permits("a.svc.local", 80));
        assert!(!egress.permits("svc.local", 8080));
        assert!(!egress.permits("xsvc.local", 8080));
        assert!(egress.permits("other.org", 1));

        assert!(Egress::allow(["*"]).permits("anything.at.all", 9));
        assert!(Egress::allow(["*:443"]).permits("a.b", 443));
        assert!(!Egress::allow(["*:443"]).permits("a.b", 80));
    }

    #[test]
    fn failure_statuses() {
        let t = Duration::from_secs(1);
        assert_eq!(
            HttpFailure::from_exit(Exit::DeadlineExceeded, t).status(),
            504
        );
        assert_eq!(HttpFailure::from_exit(Exit::OomKilled, t).status(), 500);
        assert_eq!(HttpFailure::from_exit(Exit::Code(0), t).status(), 500);
        assert_eq!(
            HttpFailure::from_exit(
                Exit::Trap {
                    message: "unreachable".into()
                },
                t
            )
            .status(),
            500
        );
        assert_eq!(HttpFailure::from_exit(Exit::Killed, t).status(), 503);
        assert_eq!(
            HttpFailure::Guest {
                code: "InternalError".into()
            }
            .status(),
            502
        );
    }
}
