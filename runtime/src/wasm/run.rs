//! One run of a program: WASI context, store limits, fuel and epoch set-up, and the race
//! between the guest, its deadline and its cancel token.

use std::future::{Future, poll_fn};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use wasmtime::component::{Component, ResourceTable};
use wasmtime::{Engine, Module, ModuleExport, Store, StoreContextMut, UpdateDeadline};
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::p2::bindings::CommandPre;
use wasmtime_wasi::{FsPerms, I32Exit, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use super::cpu::thread_cpu_time;
use super::error::{ProgramKind, WasmError, error_chain};
use super::http::{HttpCtx, HttpLinker};
use super::limits::{Limiter, RunStats};
use super::stdio::SinkStream;
use super::throttle::{CpuBudget, FuelBucket};
use super::{Exit, Inner, Outcome, Program, RunSpec, Usage};
use wasmtime_wasi_http::p2::bindings::ProxyPre;

/// Fuel a store starts with: effectively unlimited, CPU limits are a rate, not a budget.
const FUEL_BUDGET: u64 = u64::MAX;

/// How often, in CPU time, a running command guest yields to the executor.
pub(crate) const YIELD_EVERY_CPU: Duration = Duration::from_millis(1);

/// Longest trap message kept (the guest backtrace can be long).
const MAX_TRAP_MESSAGE: usize = 4096;

/// The data of every store: the WASI context and the memory limiter.
pub(crate) struct HostState<W> {
    pub(super) wasi: W,
    pub(super) limiter: Limiter,
}

/// WASI preview 2 state: the context and the resource table.
pub(crate) struct P2Ctx {
    ctx: WasiCtx,
    table: ResourceTable,
}

impl WasiView for HostState<P2Ctx> {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi.ctx,
            table: &mut self.wasi.table,
        }
    }
}

pub(crate) type P1Linker = wasmtime::Linker<HostState<WasiP1Ctx>>;
pub(crate) type P2Linker = wasmtime::component::Linker<HostState<P2Ctx>>;

/// A program ready to instantiate.
pub(crate) enum Pre {
    Module {
        pre: wasmtime::InstancePre<HostState<WasiP1Ctx>>,
        start: ModuleExport,
    },
    Component(CommandPre<HostState<P2Ctx>>),
    /// A component exporting `wasi:http/incoming-handler`: served, one store per request.
    Proxy(ProxyPre<HostState<HttpCtx>>),
}

/// The preview 1, preview 2 and HTTP linkers, built once per engine.
pub(crate) fn linkers(engine: &Engine) -> Result<(P1Linker, P2Linker, HttpLinker), WasmError> {
    let fail = |e: wasmtime::Error| WasmError::Engine {
        reason: format!("cannot build the WASI linker: {}", error_chain(&e)),
    };
    let mut p1 = P1Linker::new(engine);
    wasmtime_wasi::p1::add_to_linker_async(&mut p1, |s: &mut HostState<WasiP1Ctx>| &mut s.wasi)
        .map_err(fail)?;
    let mut p2 = P2Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut p2).map_err(fail)?;
    let mut http = HttpLinker::new(engine);
    // The whole of WASI 0.2 (Rust's std imports wasi:cli/environment even in a proxy
    // component), then wasi:http; sockets stay denied by the WASI context.
    wasmtime_wasi::p2::add_to_linker_async(&mut http).map_err(fail)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut http).map_err(fail)?;
    Ok((p1, p2, http))
}

/// Links a module that exports `_start`.
pub(crate) fn pre_module(linker: &P1Linker, module: &Module) -> Result<Pre, WasmError> {
    let start = module
        .get_export_index("_start")
        .ok_or(WasmError::MissingEntryPoint {
            kind: ProgramKind::Module,
            expected: "_start",
            detail: None,
        })?;
    let pre = linker
        .instantiate_pre(module)
        .map_err(|e| WasmError::Link {
            kind: ProgramKind::Module,
            reason: error_chain(&e),
        })?;
    Ok(Pre::Module { pre, start })
}

/// Links a component: one exporting `wasi:http/incoming-handler` against the HTTP linker
/// (it is served), else one exporting `wasi:cli/run` against the preview 2 linker.
pub(crate) fn pre_component(
    engine: &Engine,
    linker: &P2Linker,
    http_linker: &HttpLinker,
    component: &Component,
) -> Result<Pre, WasmError> {
    let ty = component.component_type();
    let exports = |prefix: &str| ty.exports(engine).any(|(name, _)| name.starts_with(prefix));
    let link = |e: wasmtime::Error| WasmError::Link {
        kind: ProgramKind::Component,
        reason: error_chain(&e),
    };
    let entry = |expected: &'static str| {
        move |e: wasmtime::Error| WasmError::MissingEntryPoint {
            kind: ProgramKind::Component,
            expected,
            detail: Some(error_chain(&e)),
        }
    };
    if exports("wasi:http/incoming-handler@") {
        let pre = http_linker.instantiate_pre(component).map_err(link)?;
        let pre = ProxyPre::new(pre).map_err(entry("wasi:http/incoming-handler"))?;
        return Ok(Pre::Proxy(pre));
    }
    if !exports("wasi:cli/run@") {
        return Err(WasmError::MissingEntryPoint {
            kind: ProgramKind::Component,
            expected: "wasi:cli/run or wasi:http/incoming-handler",
            detail: None,
        });
    }
    let pre = linker.instantiate_pre(component).map_err(link)?;
    let pre = CommandPre::new(pre).map_err(entry("wasi:cli/run"))?;
    Ok(Pre::Component(pre))
}

/// Runs `program` as described by `spec`; see [`super::WasmRuntime::run`].
pub(crate) async fn run(inner: &Inner, program: &Program, spec: RunSpec) -> Outcome {
    let started = Instant::now();
    let stats = Arc::new(RunStats::default());
    let exit = if !Engine::same(&program.engine, &inner.engine) {
        Exit::StartFailed {
            reason: "the program was loaded by a different WasmRuntime".into(),
        }
    } else {
        let cancel = spec.cancel.clone();
        let deadline = spec.deadline;
        let guest = execute(inner, program, spec, stats.clone());
        race(guest, &cancel, deadline, &stats).await
    };
    outcome(exit, &stats, started)
}

/// The [`Outcome`] of a run that ended with `exit`.
pub(crate) fn outcome(exit: Exit, stats: &RunStats, started: Instant) -> Outcome {
    Outcome {
        exit,
        usage: Usage {
            fuel_consumed: stats.fuel_consumed.load(Ordering::Relaxed),
            cpu_seconds: stats.cpu_time().as_secs_f64(),
            peak_memory_bytes: stats.peak_memory_bytes.load(Ordering::Relaxed),
            wall: started.elapsed(),
        },
    }
}

/// Drives `guest` until it ends, `cancel` fires or `deadline` passes, charging the CPU time of
/// every poll (instantiation, Wasm, WASI calls) to `stats`. An unfinished guest is dropped
/// before this returns, which unwinds it and frees its pooling slot.
pub(crate) async fn race(
    guest: impl Future<Output = Exit>,
    cancel: &super::CancelToken,
    deadline: Option<Instant>,
    stats: &RunStats,
) -> Exit {
    let mut guest = Box::pin(guest);
    let metered = poll_fn(|cx| {
        let before = thread_cpu_time();
        let poll = guest.as_mut().poll(cx);
        let spent = thread_cpu_time().saturating_sub(before);
        stats
            .cpu_nanos
            .fetch_add(spent.as_nanos() as u64, Ordering::Relaxed);
        poll
    });
    let deadline_passed = async {
        match deadline {
            Some(at) => tokio::time::sleep_until(at.into()).await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        biased;
        () = cancel.cancelled() => Exit::Killed,
        () = deadline_passed => Exit::DeadlineExceeded,
        exit = metered => exit,
    }
}

/// Instantiates and runs the guest to its end.
async fn execute(inner: &Inner, program: &Program, spec: RunSpec, stats: Arc<RunStats>) -> Exit {
    let limiter = limiter(inner, &spec, &stats);
    let wasi = match wasi_builder(&spec, program.kind) {
        Ok(builder) => builder,
        Err(reason) => return Exit::StartFailed { reason },
    };
    match &program.pre {
        Pre::Module { pre, start } => {
            let mut wasi = wasi;
            let state = HostState {
                wasi: wasi.build_p1(),
                limiter,
            };
            let mut store = new_store(
                inner,
                state,
                bucket(inner, &spec, None),
                YIELD_EVERY_CPU,
                &stats,
            );
            let result = async {
                let instance = pre
                    .instantiate_async(&mut store)
                    .await
                    .map_err(Failure::Start)?;
                let start = instance
                    .get_module_export(&mut store, start)
                    .and_then(|e| e.into_func())
                    .ok_or_else(|| Failure::Start(wasmtime::Error::msg("`_start` vanished")))?;
                let start = start.typed::<(), ()>(&store).map_err(Failure::Start)?;
                start
                    .call_async(&mut store, ())
                    .await
                    .map_err(Failure::Run)?;
                Ok(0)
            }
            .await;
            finish(&store, &stats);
            classify(result, &stats)
        }
        Pre::Component(pre) => {
            let mut wasi = wasi;
            let state = HostState {
                wasi: P2Ctx {
                    ctx: wasi.build(),
                    table: ResourceTable::new(),
                },
                limiter,
            };
            let mut store = new_store(
                inner,
                state,
                bucket(inner, &spec, None),
                YIELD_EVERY_CPU,
                &stats,
            );
            let result = async {
                let command = pre
                    .instantiate_async(&mut store)
                    .await
                    .map_err(Failure::Start)?;
                match command.wasi_cli_run().call_run(&mut store).await {
                    Ok(Ok(())) => Ok(0),
                    Ok(Err(())) => Ok(1),
                    Err(e) => Err(Failure::Run(e)),
                }
            }
            .await;
            finish(&store, &stats);
            classify(result, &stats)
        }
        Pre::Proxy(_) => Exit::StartFailed {
            reason: "the component serves HTTP (wasi:http/incoming-handler); it has no \
                     wasi:cli/run to run as a command"
                .into(),
        },
    }
}

/// An error while instantiating or while running.
pub(crate) enum Failure {
    Start(wasmtime::Error),
    Run(wasmtime::Error),
}

/// The WASI context of a run, or why it cannot be built.
pub(crate) fn wasi_builder(spec: &RunSpec, kind: ProgramKind) -> Result<WasiCtxBuilder, String> {
    let mut b = WasiCtxBuilder::new();
    b.args(&spec.args);
    b.envs(&spec.env);
    b.stdout(SinkStream(spec.stdout.clone()));
    b.stderr(SinkStream(spec.stderr.clone()));
    let cwd = spec.working_dir.as_deref().map(|dir| normalize(dir, "/"));
    if let Some(cwd) = &cwd {
        if !spec.env.iter().any(|(k, _)| k == "PWD") {
            b.env("PWD", cwd);
        }
        if kind == ProgramKind::Component {
            b.initial_cwd(cwd);
        }
    }
    for preopen in &spec.preopens {
        let guest = normalize(&preopen.guest, cwd.as_deref().unwrap_or("/"));
        let perms = if preopen.read_only {
            FsPerms::ReadOnly
        } else {
            FsPerms::ReadWrite
        };
        b.preopened_dir(&preopen.host, &guest, perms).map_err(|e| {
            format!(
                "cannot preopen {} as {guest}: {}",
                preopen.host.display(),
                error_chain(&e)
            )
        })?;
    }
    Ok(b)
}

/// Makes a guest path absolute against `base` and removes `.`, `..` and empty components.
fn normalize(path: &str, base: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    let joined = if path.starts_with('/') {
        path.to_owned()
    } else {
        format!("{base}/{path}")
    };
    for part in joined.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            other => parts.push(other),
        }
    }
    format!("/{}", parts.join("/"))
}

/// A store with fuel, the limiter, the epoch callback (throttle + yield) and fuel yields.
pub(crate) fn new_store<W: Send + 'static>(
    inner: &Inner,
    state: HostState<W>,
    bucket: Option<SharedBucket>,
    yield_every: Duration,
    stats: &Arc<RunStats>,
) -> Store<HostState<W>> {
    let mut store = Store::new(&inner.engine, state);
    store.limiter(|s| &mut s.limiter);
    // Both only fail when fuel is disabled, and the engine always enables it.
    let _ = store.set_fuel(FUEL_BUDGET);
    let yield_fuel =
        (inner.fuel_per_cpu_second as f64 * yield_every.as_secs_f64()).max(10_000.0) as u64;
    let _ = store.fuel_async_yield_interval(Some(yield_fuel));

    let stats = stats.clone();
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(move |ctx: StoreContextMut<'_, HostState<W>>| {
        let consumed = FUEL_BUDGET - ctx.get_fuel().unwrap_or(FUEL_BUDGET);
        stats.fuel_consumed.store(consumed, Ordering::Relaxed);
        if let Some(bucket) = &bucket
            && let Some(pause) = bucket.lock().unwrap_or_else(|p| p.into_inner()).charge(
                Instant::now(),
                consumed,
                stats.cpu_time(),
            )
        {
            return Ok(UpdateDeadline::YieldCustom(
                1,
                Box::pin(tokio::time::sleep(pause)),
            ));
        }
        // Yield at every tick so deadlines and cancellation are noticed.
        Ok(UpdateDeadline::Yield(1))
    });
    store
}

/// The memory limiter of a run: [`RunSpec::memory_limit`], at most the pool's slot size.
pub(crate) fn limiter(inner: &Inner, spec: &RunSpec, stats: &Arc<RunStats>) -> Limiter {
    let limit = spec
        .memory_limit
        .unwrap_or(inner.config.max_memory_bytes)
        .min(inner.config.max_memory_bytes);
    Limiter::new(limit, stats.clone())
}

/// The CPU throttle of a run: drawing on `budget` when it shares one, else limited alone to
/// [`RunSpec::cpu_millis`], if it is.
pub(crate) fn bucket(
    inner: &Inner,
    spec: &RunSpec,
    budget: Option<&CpuBudget>,
) -> Option<SharedBucket> {
    let fps = inner.fuel_per_cpu_second;
    let bucket = match budget {
        Some(budget) => FuelBucket::sharing(fps, budget.clone()),
        None => FuelBucket::new(fps, spec.cpu_millis?, Instant::now()),
    };
    Some(Arc::new(std::sync::Mutex::new(bucket)))
}

/// A run's throttle, shared by its store's epoch callback and whoever charges the run's
/// last slice when it ends.
pub(crate) type SharedBucket = Arc<std::sync::Mutex<FuelBucket>>;

/// Records the final fuel count of a run that ended by itself.
pub(crate) fn finish<T>(store: &Store<T>, stats: &RunStats) {
    if let Ok(left) = store.get_fuel() {
        stats
            .fuel_consumed
            .store(FUEL_BUDGET - left, Ordering::Relaxed);
    }
}

/// Maps the end of a run to an [`Exit`].
pub(crate) fn classify(result: Result<i32, Failure>, stats: &RunStats) -> Exit {
    let oom = stats.grow_denied();
    let (error, starting) = match result {
        Ok(0) => return Exit::Code(0),
        Ok(code) => {
            return if oom {
                Exit::OomKilled
            } else {
                Exit::Code(code)
            };
        }
        Err(Failure::Start(e)) => (e, true),
        Err(Failure::Run(e)) => (e, false),
    };
    if let Some(code) = exit_code(&error) {
        return if code != 0 && oom {
            Exit::OomKilled
        } else {
            Exit::Code(code)
        };
    }
    if oom {
        return Exit::OomKilled;
    }
    match error.downcast_ref::<wasmtime::Trap>() {
        Some(trap) => Exit::Trap {
            message: trap_message(*trap, &error),
        },
        None if starting => Exit::StartFailed {
            reason: error_chain(&error),
        },
        None => Exit::Trap {
            message: truncate(error_chain(&error)),
        },
    }
}

/// The exit code carried by a WASI `proc_exit` / `wasi:cli/exit`.
fn exit_code(error: &wasmtime::Error) -> Option<i32> {
    error.downcast_ref::<I32Exit>().map(|e| e.0).or_else(|| {
        error
            .chain()
            .find_map(|c| c.downcast_ref::<I32Exit>().map(|e| e.0))
    })
}

fn trap_message(trap: wasmtime::Trap, error: &wasmtime::Error) -> String {
    let mut message = trap.to_string();
    if let Some(backtrace) = error.downcast_ref::<wasmtime::WasmBacktrace>() {
        let text = backtrace.to_string();
        if !text.trim().is_empty() {
            message.push('\n');
            message.push_str(text.trim_end());
        }
    }
    truncate(message)
}

fn truncate(mut s: String) -> String {
    if s.len() > MAX_TRAP_MESSAGE {
        let mut end = MAX_TRAP_MESSAGE;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
        s.push_str(" ...");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guest_paths_are_normalized_against_the_working_dir() {
        assert_eq!(normalize("/data", "/"), "/data");
        assert_eq!(normalize(".", "/app"), "/app");
        assert_eq!(normalize("cache", "/app"), "/app/cache");
        assert_eq!(normalize("./a/../b//c/", "/app"), "/app/b/c");
        assert_eq!(normalize("../../..", "/app"), "/");
        assert_eq!(normalize("x", "/"), "/x");
    }

    #[test]
    fn exit_classification() {
        let stats = RunStats::default();
        assert_eq!(classify(Ok(0), &stats), Exit::Code(0));
        assert_eq!(classify(Ok(1), &stats), Exit::Code(1));
        let exit = wasmtime::Error::new(I32Exit(3));
        assert_eq!(classify(Err(Failure::Run(exit)), &stats), Exit::Code(3));
        let trap = wasmtime::Error::new(wasmtime::Trap::UnreachableCodeReached);
        assert!(matches!(
            classify(Err(Failure::Run(trap)), &stats),
            Exit::Trap { .. }
        ));
        let other = wasmtime::Error::msg("no slot");
        assert!(matches!(
            classify(Err(Failure::Start(other)), &stats),
            Exit::StartFailed { .. }
        ));

        stats.grow_denied.store(true, Ordering::Relaxed);
        assert_eq!(classify(Ok(0), &stats), Exit::Code(0));
        assert_eq!(classify(Ok(1), &stats), Exit::OomKilled);
        let trap = wasmtime::Error::new(wasmtime::Trap::UnreachableCodeReached);
        assert_eq!(classify(Err(Failure::Run(trap)), &stats), Exit::OomKilled);
        let exit0 = wasmtime::Error::new(I32Exit(0));
        assert_eq!(classify(Err(Failure::Run(exit0)), &stats), Exit::Code(0));
    }
}
