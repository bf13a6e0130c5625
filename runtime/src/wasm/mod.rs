//! The Wasm sandbox: WASI command modules and components run in-process by wasmtime.
//!
//! # Shape
//!
//! * One [`WasmRuntime`] per process owns one wasmtime `Engine` (pooling instance allocator,
//!   fuel consumption, epoch interruption, async support), the preview 1 and preview 2 WASI
//!   linkers, and a thread that advances the engine's epoch every 10 ms.
//! * [`WasmRuntime::load`] turns bytes into a [`Program`]: compiled code comes from the
//!   in-memory table (by digest), else from the on-disk cache (by digest and engine
//!   fingerprint), else from compiling (and is then written to the cache). A `Program` holds
//!   the pre-linked `InstancePre`, so a run only allocates a `Store` and instantiates.
//! * [`WasmRuntime::run`] runs a program once in a fresh `Store` and always ends in an
//!   [`Outcome`]: an [`Exit`] and the [`Usage`] of the run.
//!
//! # Resource mapping
//!
//! * **Memory** ([`RunSpec::memory_limit`]): one byte budget for all linear memories and tables
//!   of the store (table elements count 8 bytes), enforced by a `ResourceLimiter` wrapping
//!   wasmtime's `StoreLimits`. A refused grow makes `memory.grow` return -1 (guests see an
//!   allocation failure); if the guest then traps, aborts or exits non-zero the run is
//!   [`Exit::OomKilled`].
//! * **CPU** ([`RunSpec::cpu_millis`]): at start-up the runtime measures how much fuel this
//!   machine burns per CPU-second ([`WasmRuntime::fuel_per_cpu_second`]). A run limited to `m`
//!   millicores may burn `fuel_per_cpu_second * m / 1000` fuel per wall second: at every epoch
//!   tick a token bucket is charged with the fuel burnt, or with the CPU time the run used
//!   (thread CPU clock around every poll, converted to fuel at the calibrated rate) when that
//!   is more, and when it is in debt the guest is suspended (an async sleep, the worker thread
//!   is free) until the debt is repaid. So neither an instruction mix dearer than the
//!   calibration kernel's nor CPU spent in WASI calls escapes the limit. The bucket banks at
//!   most 100 ms of quota, like a CFS period. Guests also yield to the executor every
//!   millisecond or so of CPU (`fuel_async_yield_interval`), so many guests share few threads.
//!   A throttled guest is slowed, never killed.
//! * **Wall time** ([`RunSpec::deadline`]) and **kill** ([`RunSpec::cancel`]): the run future
//!   races the deadline and the cancel signal. A spinning guest yields at every epoch tick and
//!   every fuel interval, and a guest blocked in a WASI call (sleep, poll) is waiting on an
//!   async host future, so either way the race is decided within about one tick; the guest's
//!   `Store` is then dropped, which unwinds it.
//! * **Filesystem** ([`RunSpec::preopens`]): the guest sees only the preopened directories;
//!   there is no network, and stdin is empty.
//!
//! # Working directory
//!
//! WASI has no process-level current directory that the host can set. When
//! [`RunSpec::working_dir`] is set, the guest gets `PWD=<dir>` (unless the spec's environment
//! sets `PWD` itself) and, for components, `wasi:cli/environment.initial-cwd`; preopens with a
//! relative guest path (`.`, `data`) are mounted relative to it (`/app` and `/app/data` for
//! working dir `/app`; relative to `/` when there is none). wasi-libc starts in `/`, so a guest
//! that wants relative paths to resolve inside its working dir changes into `$PWD` first
//! (Rust: `std::env::set_current_dir`).

#![warn(missing_docs)]

mod cache;
mod cpu;
mod engine;
mod error;
mod executor;
mod http;
mod limits;
mod run;
mod stdio;
mod throttle;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use wasmtime::Engine;
use wasmtime::component::Component;
use wasmtime::{ExternType, Module};

pub use error::{ProgramKind, WasmError};
pub use http::{Egress, HttpBody, HttpFailure, HttpSpec, OnFinish};
pub use stdio::{DiscardSink, MemorySink, OutputSink};
pub use throttle::CpuBudget;

use error::error_chain;
use run::{P1Linker, P2Linker, Pre};

/// Configuration of the process-wide [`WasmRuntime`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeConfig {
    /// Directory for compiled code, created if missing. Safe to share between processes
    /// running the same skiff build.
    pub cache_dir: PathBuf,
    /// How many programs may run at once: the number of pooling-allocator slots (linear
    /// memories, async stacks, component instances; core instances and tables get a few per
    /// slot). Default 10 000.
    pub max_instances: u32,
    /// The most linear memory any one program may have, in bytes: the size of a pooling slot
    /// and the cap for runs without a [`RunSpec::memory_limit`]. Default 4 GiB (the whole
    /// 32-bit space, which lets wasmtime elide bounds checks); every slot reserves this much
    /// virtual address space, so `max_instances * max_memory_bytes` must fit in the address
    /// space (10 000 × 4 GiB ≈ 40 TiB of the 128 TiB on x86-64).
    pub max_memory_bytes: u64,
    /// Run guests on a pool of this many threads of their own, at a lower CPU priority (nice
    /// [`GUEST_NICE`]), instead of on the caller's executor. A server sets this so that guests
    /// spinning on every core never delay its own tasks: the kernel shares the CPU between the
    /// pools and favours the server's. `None` (the default) runs guests where `run` is awaited.
    pub guest_threads: Option<usize>,
}

impl RuntimeConfig {
    /// The default configuration with compiled code cached in `cache_dir`.
    pub fn new(cache_dir: impl Into<PathBuf>) -> Self {
        RuntimeConfig {
            cache_dir: cache_dir.into(),
            max_instances: 10_000,
            max_memory_bytes: 4 << 30,
            guest_threads: None,
        }
    }
}

/// The nice value of guest threads when [`RuntimeConfig::guest_threads`] is set: the kernel
/// gives a thread at nice 0 about ten times the CPU share of one at nice 10.
pub const GUEST_NICE: i32 = 10;

/// A host directory made visible to the guest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preopen {
    /// The directory on the host. It must exist when the run starts.
    pub host: PathBuf,
    /// Where the guest sees it, e.g. `/data`. Relative paths are relative to
    /// [`RunSpec::working_dir`] (see the [module docs](self#working-directory)).
    pub guest: String,
    /// When true the guest can read but not create, write, rename or delete anything in it.
    pub read_only: bool,
}

/// A cancellation signal for a run: [`cancel`](CancelToken::cancel) interrupts the guest,
/// which ends as [`Exit::Killed`]. Clones share the signal; a token can be cancelled before the
/// run starts (the guest then never runs).
#[derive(Debug, Clone)]
pub struct CancelToken {
    tx: Arc<tokio::sync::watch::Sender<bool>>,
}

impl CancelToken {
    /// A token that is not cancelled.
    pub fn new() -> Self {
        CancelToken {
            tx: Arc::new(tokio::sync::watch::Sender::new(false)),
        }
    }

    /// Signals cancellation to every run holding a clone of this token. Idempotent.
    pub fn cancel(&self) {
        self.tx.send_replace(true);
    }

    /// Whether [`cancel`](CancelToken::cancel) was called.
    pub fn is_cancelled(&self) -> bool {
        *self.tx.borrow()
    }

    /// Resolves once the token is cancelled.
    pub async fn cancelled(&self) {
        let mut rx = self.tx.subscribe();
        // The sender lives in `self`, so `wait_for` cannot fail with a closed channel.
        let _ = rx.wait_for(|cancelled| *cancelled).await;
    }
}

impl Default for CancelToken {
    fn default() -> Self {
        CancelToken::new()
    }
}

/// Everything about one run of a [`Program`].
#[derive(Clone)]
pub struct RunSpec {
    /// The guest's argv, `argv[0]` included.
    pub args: Vec<String>,
    /// The guest's environment, in order. Nothing of the host's environment is passed.
    pub env: Vec<(String, String)>,
    /// The guest's working directory (a guest path): see the
    /// [module docs](self#working-directory) for what WASI can and cannot do with it.
    pub working_dir: Option<String>,
    /// The host directories the guest sees; it sees nothing else of the host filesystem.
    pub preopens: Vec<Preopen>,
    /// Receives the guest's stdout. Stdin is always empty.
    pub stdout: Arc<dyn OutputSink>,
    /// Receives the guest's stderr.
    pub stderr: Arc<dyn OutputSink>,
    /// Cap in bytes on linear memory plus tables. `None` means the pool slot size
    /// ([`RuntimeConfig::max_memory_bytes`]); larger values are clamped to it.
    pub memory_limit: Option<u64>,
    /// CPU limit in millicores (1000 = one core): the guest is throttled to this share of a
    /// core, measured in fuel. `None` means unthrottled.
    pub cpu_millis: Option<u64>,
    /// Wall-clock deadline: past it the guest is stopped with [`Exit::DeadlineExceeded`].
    pub deadline: Option<Instant>,
    /// Cancelling this token stops the guest with [`Exit::Killed`].
    pub cancel: CancelToken,
}

impl RunSpec {
    /// A spec with these arguments and defaults for the rest: empty environment, no working
    /// directory, no preopens, output discarded, no limits, a fresh cancel token.
    pub fn new<I, S>(args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        RunSpec {
            args: args.into_iter().map(Into::into).collect(),
            ..RunSpec::default()
        }
    }
}

impl Default for RunSpec {
    fn default() -> Self {
        RunSpec {
            args: Vec::new(),
            env: Vec::new(),
            working_dir: None,
            preopens: Vec::new(),
            stdout: Arc::new(DiscardSink),
            stderr: Arc::new(DiscardSink),
            memory_limit: None,
            cpu_millis: None,
            deadline: None,
            cancel: CancelToken::new(),
        }
    }
}

impl std::fmt::Debug for RunSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunSpec")
            .field("args", &self.args)
            .field("env", &self.env)
            .field("working_dir", &self.working_dir)
            .field("preopens", &self.preopens)
            .field("memory_limit", &self.memory_limit)
            .field("cpu_millis", &self.cpu_millis)
            .field("deadline", &self.deadline)
            .field("cancelled", &self.cancel.is_cancelled())
            .finish_non_exhaustive()
    }
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exit {
    /// The guest exited with this code: the argument of `proc_exit`/`exit`, 0 when `_start`
    /// returned normally. WASI 0.2 components can only report success or failure (through
    /// `wasi:cli/exit` or `run`'s result), so their non-zero exits are all 1.
    Code(i32),
    /// A memory or table grow was refused by the memory limit and the guest then trapped,
    /// aborted or exited non-zero (or could not even be instantiated).
    OomKilled,
    /// The guest trapped (unreachable, out-of-bounds access, stack overflow, ...).
    Trap {
        /// wasmtime's description of the trap, with the guest backtrace when known.
        message: String,
    },
    /// [`RunSpec::deadline`] passed before the guest finished.
    DeadlineExceeded,
    /// [`RunSpec::cancel`] was signalled before the guest finished.
    Killed,
    /// The guest could not be started: a preopen could not be opened, the program was loaded
    /// by another runtime, or every pooling slot is in use.
    StartFailed {
        /// Why.
        reason: String,
    },
    /// An OCI container could not be created: its root filesystem or `config.json` could not
    /// be prepared, or its command is not in the image (Kubernetes' `CreateContainerError`,
    /// which the kubelet retries with a backoff).
    CreateFailed {
        /// Why.
        reason: String,
    },
}

/// What a run consumed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Usage {
    /// Fuel burnt (roughly one unit per Wasm instruction). For a run that was stopped from
    /// outside this is as of the last epoch tick.
    pub fuel_consumed: u64,
    /// CPU time spent running the guest and its WASI calls on the runtime's threads, measured
    /// with the thread CPU clock around every poll of the run.
    pub cpu_seconds: f64,
    /// Highest linear memory plus table bytes the guest held at once.
    pub peak_memory_bytes: u64,
    /// Wall time from the call to [`WasmRuntime::run`] to the outcome.
    pub wall: Duration,
}

/// The end of a run.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// How it ended.
    pub exit: Exit,
    /// What it consumed.
    pub usage: Usage,
}

/// Where the compiled code of a [`Program`] came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoadSource {
    /// Deserialized from the on-disk cache.
    DiskCache,
    /// Compiled from the bytes (and then written to the cache).
    Compiled,
}

/// A loaded program: compiled, checked for its entry point, linked against WASI and ready to
/// instantiate. Cheap to run many times and from many tasks at once.
pub struct Program {
    digest: String,
    kind: ProgramKind,
    source: LoadSource,
    engine: Engine,
    pre: Pre,
}

impl Program {
    /// The digest the program was loaded under.
    pub fn digest(&self) -> &str {
        &self.digest
    }

    /// Whether it is a core module (WASI preview 1) or a component (WASI preview 2).
    pub fn kind(&self) -> ProgramKind {
        self.kind
    }

    /// Where its compiled code came from when it was first loaded.
    pub fn source(&self) -> LoadSource {
        self.source
    }

    /// Whether it is a component exporting `wasi:http/incoming-handler`: served with
    /// [`WasmRuntime::serve_http`], one fresh store per request, rather than run to its exit.
    pub fn serves_http(&self) -> bool {
        matches!(self.pre, Pre::Proxy(_))
    }
}

impl std::fmt::Debug for Program {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Program")
            .field("digest", &self.digest)
            .field("kind", &self.kind)
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

struct Inner {
    config: RuntimeConfig,
    engine: Engine,
    fingerprint: String,
    fuel_per_cpu_second: u64,
    p1_linker: P1Linker,
    p2_linker: P2Linker,
    http_linker: http::HttpLinker,
    programs: Mutex<HashMap<String, Arc<Program>>>,
    guests: Option<executor::GuestExecutor>,
}

/// The Wasm sandbox of one process. Clones share everything (it is an `Arc` inside).
///
/// # Guarantees
///
/// * One wasmtime `Engine` per `WasmRuntime`; create one per process.
/// * [`run`](WasmRuntime::run) never panics on guest behaviour and always returns: a spinning
///   guest is interruptible by its deadline or cancel token within about 10 ms.
#[derive(Clone)]
pub struct WasmRuntime {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for WasmRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WasmRuntime")
            .field("config", &self.inner.config)
            .field("fuel_per_cpu_second", &self.inner.fuel_per_cpu_second)
            .finish_non_exhaustive()
    }
}

impl WasmRuntime {
    /// Creates the engine and its pools, starts the epoch ticker and calibrates fuel per
    /// CPU-second (about 60–100 ms of CPU on the calling thread: call it at start-up or from
    /// a blocking context).
    ///
    /// # Errors
    ///
    /// [`WasmError::Engine`] when wasmtime rejects the configuration (for example the pools do
    /// not fit in the address space), [`WasmError::CacheDir`] when the cache directory cannot
    /// be created, [`WasmError::Calibration`] when the calibration kernel fails.
    pub fn new(config: RuntimeConfig) -> Result<Self, WasmError> {
        std::fs::create_dir_all(&config.cache_dir).map_err(|source| WasmError::CacheDir {
            path: config.cache_dir.clone(),
            source,
        })?;
        let engine = engine::build_engine(&config)?;
        engine::start_epoch_ticker(&engine)?;
        let fuel_per_cpu_second = engine::calibrate_fuel(&engine)?;
        let (p1_linker, p2_linker, http_linker) = run::linkers(&engine)?;
        let guests = config
            .guest_threads
            .map(executor::GuestExecutor::new)
            .transpose()
            .map_err(|e| WasmError::Engine {
                reason: format!("cannot start the guest threads: {e}"),
            })?;
        Ok(WasmRuntime {
            inner: Arc::new(Inner {
                fingerprint: cache::engine_fingerprint(&engine),
                config,
                engine,
                fuel_per_cpu_second,
                p1_linker,
                p2_linker,
                http_linker,
                programs: Mutex::new(HashMap::new()),
                guests,
            }),
        })
    }

    /// The configuration this runtime was created with.
    pub fn config(&self) -> &RuntimeConfig {
        &self.inner.config
    }

    /// Fuel this machine burns per CPU-second, as calibrated at start-up.
    pub fn fuel_per_cpu_second(&self) -> u64 {
        self.inner.fuel_per_cpu_second
    }

    /// Where the compiled code for `digest` of the given kind is (or would be) cached.
    pub fn cache_path(&self, digest: &str, kind: ProgramKind) -> PathBuf {
        cache::cache_path(
            &self.inner.config.cache_dir,
            digest,
            kind,
            &self.inner.fingerprint,
        )
    }

    /// Loads a program: a WASI preview 1 command module (must export `_start`), a WASI
    /// preview 2 command component (must export `wasi:cli/run`) or an HTTP function (a
    /// component exporting `wasi:http/incoming-handler`, the `wasi:http/proxy` world).
    ///
    /// Programs are memoised by `digest`: a second `load` of the same digest returns the same
    /// `Program` without looking at `bytes`. If `digest` is `sha256:<hex>` the bytes are
    /// checked against it before anything is compiled or cached; other strings are used as
    /// opaque cache keys, and the caller is responsible for them naming the content.
    ///
    /// Compiling is CPU-bound (tens of milliseconds to seconds): from async code call this
    /// through `spawn_blocking`. A cache file that cannot be written is not an error.
    ///
    /// # Errors
    ///
    /// [`WasmError::NotWasm`], [`WasmError::Invalid`], [`WasmError::MissingEntryPoint`],
    /// [`WasmError::Link`] (imports other than WASI), [`WasmError::DigestMismatch`].
    pub fn load(&self, digest: &str, bytes: &[u8]) -> Result<Arc<Program>, WasmError> {
        if let Some(program) = self.programs().get(digest) {
            return Ok(program.clone());
        }
        let kind = detect_kind(bytes)?;
        if digest.starts_with("sha256:") {
            let actual = cache::sha256_digest(bytes);
            if !actual.eq_ignore_ascii_case(digest) {
                return Err(WasmError::DigestMismatch {
                    expected: digest.to_owned(),
                    actual,
                });
            }
        }
        let path = self.cache_path(digest, kind);
        let program = match self.load_cached(digest, kind, &path) {
            Some(program) => program,
            None => self.compile(digest, kind, bytes, &path)?,
        };
        let program = Arc::new(program);
        let mut programs = self.programs();
        Ok(programs.entry(digest.to_owned()).or_insert(program).clone())
    }

    /// The program already loaded for `digest`, if any: what [`load`](Self::load) would
    /// return without reading the bytes, so a caller can skip reading them.
    pub fn loaded(&self, digest: &str) -> Option<Arc<Program>> {
        self.programs().get(digest).cloned()
    }

    /// Forgets the in-memory program for `digest` (the disk cache is kept). Runs in flight
    /// keep their `Arc<Program>`.
    pub fn evict(&self, digest: &str) -> bool {
        self.programs().remove(digest).is_some()
    }

    /// Runs `program` once in a fresh store with the limits, I/O and signals of `spec`.
    ///
    /// Never fails: every way a run can end is an [`Exit`]. The future is `Send`; run many
    /// at once by spawning them. With [`RuntimeConfig::guest_threads`] the guest runs on the
    /// guest threads and this future only waits for it; dropping the future stops the guest
    /// either way.
    pub async fn run(&self, program: &Arc<Program>, spec: RunSpec) -> Outcome {
        match &self.inner.guests {
            None => run::run(&self.inner, program, spec).await,
            Some(guests) => {
                let inner = self.inner.clone();
                let program = program.clone();
                guests
                    .run(async move { run::run(&inner, &program, spec).await })
                    .await
            }
        }
    }

    fn programs(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Program>>> {
        // The map stays consistent even if a holder panicked.
        self.inner
            .programs
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The program from the disk cache, if there is a usable file.
    fn load_cached(&self, digest: &str, kind: ProgramKind, path: &Path) -> Option<Program> {
        if !path.is_file() {
            return None;
        }
        let engine = &self.inner.engine;
        // SAFETY: cache files are written only by this module, atomically (temporary file +
        // rename) into the operator's cache directory, from `serialize` of the same wasmtime
        // build and engine settings (the engine fingerprint is in the file name); wasmtime
        // also checks the header and compatibility hash before using the code.
        let compiled = match kind {
            ProgramKind::Module => {
                unsafe { Module::deserialize_file(engine, path) }.map(Compiled::Module)
            }
            ProgramKind::Component => {
                unsafe { Component::deserialize_file(engine, path) }.map(Compiled::Component)
            }
        };
        // An unusable file is recompiled (and overwritten) rather than reported.
        let compiled = compiled.ok()?;
        self.prepare(digest, kind, compiled, LoadSource::DiskCache)
            .ok()
    }

    fn compile(
        &self,
        digest: &str,
        kind: ProgramKind,
        bytes: &[u8],
        path: &Path,
    ) -> Result<Program, WasmError> {
        let engine = &self.inner.engine;
        let invalid = |e: wasmtime::Error| WasmError::Invalid {
            reason: error_chain(&e),
        };
        let compiled = match kind {
            ProgramKind::Module => {
                Compiled::Module(Module::from_binary(engine, bytes).map_err(invalid)?)
            }
            ProgramKind::Component => {
                Compiled::Component(Component::from_binary(engine, bytes).map_err(invalid)?)
            }
        };
        let serialized = match &compiled {
            Compiled::Module(m) => m.serialize(),
            Compiled::Component(c) => c.serialize(),
        };
        let program = self.prepare(digest, kind, compiled, LoadSource::Compiled)?;
        if let Ok(serialized) = serialized {
            // Best effort: a full disk only costs a recompilation next time.
            let _ = cache::write_atomically(path, &serialized);
        }
        Ok(program)
    }

    /// Checks the entry point and links against WASI.
    fn prepare(
        &self,
        digest: &str,
        kind: ProgramKind,
        compiled: Compiled,
        source: LoadSource,
    ) -> Result<Program, WasmError> {
        let pre = match compiled {
            Compiled::Module(module) => {
                check_start_export(&module)?;
                run::pre_module(&self.inner.p1_linker, &module)?
            }
            Compiled::Component(component) => run::pre_component(
                &self.inner.engine,
                &self.inner.p2_linker,
                &self.inner.http_linker,
                &component,
            )?,
        };
        Ok(Program {
            digest: digest.to_owned(),
            kind,
            source,
            engine: self.inner.engine.clone(),
            pre,
        })
    }
}

enum Compiled {
    Module(Module),
    Component(Component),
}

/// Tells a core module from a component by the preamble (magic, version, layer).
fn detect_kind(bytes: &[u8]) -> Result<ProgramKind, WasmError> {
    if bytes.len() < 8 || &bytes[..4] != b"\0asm" {
        return Err(WasmError::NotWasm);
    }
    match (&bytes[4..6], &bytes[6..8]) {
        ([1, 0], [0, 0]) => Ok(ProgramKind::Module),
        (_, [1, 0]) => Ok(ProgramKind::Component),
        (version, layer) => Err(WasmError::Invalid {
            reason: format!(
                "unsupported binary version {} layer {}",
                u16::from_le_bytes([version[0], version[1]]),
                u16::from_le_bytes([layer[0], layer[1]])
            ),
        }),
    }
}

/// A WASI preview 1 command must export `_start: func()`.
fn check_start_export(module: &Module) -> Result<(), WasmError> {
    let missing = |detail: Option<String>| WasmError::MissingEntryPoint {
        kind: ProgramKind::Module,
        expected: "_start",
        detail,
    };
    match module.get_export("_start") {
        Some(ExternType::Func(ty)) if ty.params().len() == 0 && ty.results().len() == 0 => Ok(()),
        Some(ExternType::Func(ty)) => Err(missing(Some(format!(
            "`_start` takes {} parameters and returns {} results, expected none",
            ty.params().len(),
            ty.results().len()
        )))),
        Some(_) => Err(missing(Some("`_start` is not a function".into()))),
        None => Err(missing(None)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preamble_detection() {
        assert!(matches!(
            detect_kind(b"hello world"),
            Err(WasmError::NotWasm)
        ));
        assert!(matches!(detect_kind(b"\0asm"), Err(WasmError::NotWasm)));
        assert_eq!(
            detect_kind(b"\0asm\x01\0\0\0").unwrap(),
            ProgramKind::Module
        );
        assert_eq!(
            detect_kind(b"\0asm\x0d\0\x01\0").unwrap(),
            ProgramKind::Component
        );
        assert!(matches!(
            detect_kind(b"\0asm\x02\0\0\0"),
            Err(WasmError::Invalid { .. })
        ));
    }

    #[tokio::test]
    async fn cancel_token_wakes_waiters_and_is_sticky() {
        let token = CancelToken::new();
        let waiter = tokio::spawn({
            let token = token.clone();
            async move { token.cancelled().await }
        });
        tokio::task::yield_now().await;
        assert!(!token.is_cancelled());
        token.cancel();
        waiter.await.unwrap();
        // Already cancelled: resolves at once.
        token.cancelled().await;
        assert!(token.is_cancelled());
    }
}
