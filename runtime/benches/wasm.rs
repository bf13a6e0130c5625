//! Wasm sandbox benchmark: `cargo bench -p skiff-runtime --bench wasm`.
//!
//! (a) Instantiate + run + exit of the `hello` example guest loaded from the on-disk cache,
//!     through `WasmRuntime::run`, next to a bare wasmtime loop (Engine with the pooling
//!     allocator, `InstancePre`, a fresh `Store` and `_start` per run) measured in the same
//!     process. Target: p50 ≤ 40 µs and ≤ 2× the bare loop. Also shown: the same run handed
//!     to the runtime's guest threads (`RuntimeConfig::guest_threads`), as the node runs pods.
//! (b) CPU throttling accuracy: the `spinner` guest for ~2 s at 100m, 500m and 1000m, its CPU
//!     share measured with the process CPU clock (`getrusage`). Target: within ±20% of the
//!     limit.
//!
//! The example guests are built first with `examples/guests/build.sh`. Set `SKIFF_BENCH_RUNS`
//! to change the number of timed runs in (a) (default 10 000).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use skiff_runtime::wasm::{DiscardSink, Exit, LoadSource, RunSpec, RuntimeConfig, WasmRuntime};
use wasmtime::{
    Config, Enabled, Engine, InstanceAllocationStrategy, Linker, Module, PoolingAllocationConfig,
    Store,
};
use wasmtime_wasi::WasiCtxBuilder;
use wasmtime_wasi::p1::WasiP1Ctx;

const WARMUP: usize = 500;

fn main() {
    let runs: usize = std::env::var("SKIFF_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let guests = build_guests();
    let hello = std::fs::read(guests.join("wasm32-wasip1/release/hello.wasm")).expect("hello.wasm");
    let spinner =
        std::fs::read(guests.join("wasm32-wasip1/release/spinner.wasm")).expect("spinner.wasm");

    let cache = tempfile::tempdir().expect("tempdir");
    // Compile once (and fill the cache) in a first runtime, then measure a second runtime that
    // loads from the cache, as a restarted node would.
    {
        let first = WasmRuntime::new(RuntimeConfig::new(cache.path())).expect("runtime");
        first.load("bench:hello", &hello).expect("load hello");
    }
    let runtime = WasmRuntime::new(RuntimeConfig::new(cache.path())).expect("runtime");
    let t = Instant::now();
    let program = runtime.load("bench:hello", &hello).expect("load hello");
    let load_time = t.elapsed();
    assert_eq!(program.source(), LoadSource::DiskCache);

    let tokio = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio");

    println!("skiff wasm benchmark ({runs} runs each, one thread)");
    println!(
        "fuel calibration: {:.3e} fuel per CPU-second",
        runtime.fuel_per_cpu_second() as f64
    );
    println!(
        "hello.wasm: {} bytes, loaded from the disk cache in {load_time:?}",
        hello.len()
    );
    println!();

    // (a) skiff: WasmRuntime::run.
    let spec = RunSpec {
        stdout: Arc::new(DiscardSink),
        stderr: Arc::new(DiscardSink),
        ..RunSpec::new(["hello"])
    };
    let skiff = tokio.block_on(async {
        for _ in 0..WARMUP {
            let outcome = runtime.run(&program, spec.clone()).await;
            assert_eq!(outcome.exit, Exit::Code(0));
        }
        let mut samples = Vec::with_capacity(runs);
        for _ in 0..runs {
            let t = Instant::now();
            let outcome = runtime.run(&program, spec.clone()).await;
            samples.push(t.elapsed());
            assert_eq!(outcome.exit, Exit::Code(0));
        }
        samples
    });

    // (a) the same through the guest threads, as the node runs pods: each run is handed to
    // the guest pool and awaited from the caller's executor.
    let node = WasmRuntime::new(RuntimeConfig {
        max_instances: 1000,
        guest_threads: Some(
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
        ),
        ..RuntimeConfig::new(cache.path())
    })
    .expect("node runtime");
    let node_program = node.load("bench:hello", &hello).expect("load hello");
    let via_guest_threads = tokio.block_on(async {
        for _ in 0..WARMUP {
            node.run(&node_program, spec.clone()).await;
        }
        let mut samples = Vec::with_capacity(runs);
        for _ in 0..runs {
            let t = Instant::now();
            let outcome = node.run(&node_program, spec.clone()).await;
            samples.push(t.elapsed());
            assert_eq!(outcome.exit, Exit::Code(0));
        }
        samples
    });
    drop(node_program);
    drop(node);

    // (a) bare wasmtime: same guest, pooling allocator with default settings, synchronous
    // WASI p1; and the same loop with the pool tuned as skiff tunes it (linear memory kept
    // resident and reset by PAGEMAP_SCAN), to show what the wrapper itself costs.
    let bare = bare_loop(&hello, runs, false);
    let tuned = bare_loop(&hello, runs, true);

    let (s50, s99) = percentiles(skiff);
    let (b50, b99) = percentiles(bare);
    let (t50, t99) = percentiles(tuned);
    let (g50, g99) = percentiles(via_guest_threads);
    println!("(a) instantiate + run + exit of hello, from the cache");
    println!(
        "    skiff WasmRuntime::run   p50 {:>7.1} µs   p99 {:>7.1} µs",
        us(s50),
        us(s99)
    );
    println!(
        "    via the guest threads    p50 {:>7.1} µs   p99 {:>7.1} µs   (as the node runs pods)",
        us(g50),
        us(g99)
    );
    println!(
        "    bare wasmtime loop       p50 {:>7.1} µs   p99 {:>7.1} µs",
        us(b50),
        us(b99)
    );
    println!(
        "    bare, pool tuned         p50 {:>7.1} µs   p99 {:>7.1} µs   (skiff wrapper + fuel/epoch/async: {:+.1} µs at p50)",
        us(t50),
        us(t99),
        us(s50) - us(t50)
    );
    let ratio = s50.as_secs_f64() / b50.as_secs_f64();
    let met = us(s50) <= 40.0 && ratio <= 2.0;
    println!(
        "    ratio {ratio:.2}×   target p50 ≤ 40 µs and ≤ 2× bare: {}",
        if met { "MET" } else { "NOT MET" }
    );
    println!();

    // (b) CPU throttling accuracy.
    let spinner = runtime
        .load("bench:spinner", &spinner)
        .expect("load spinner");
    println!("(b) CPU throttling: spinner for 2 s of wall time");
    let mut all_met = true;
    for millis in [100u64, 500, 1000] {
        let spec = RunSpec {
            cpu_millis: Some(millis),
            ..RunSpec::new(["spinner", "2"])
        };
        let cpu_before = process_cpu_time();
        let t = Instant::now();
        let outcome = tokio.block_on(runtime.run(&spinner, spec));
        let wall = t.elapsed();
        let cpu = process_cpu_time() - cpu_before;
        assert_eq!(outcome.exit, Exit::Code(0));
        let share = cpu.as_secs_f64() / wall.as_secs_f64();
        let want = millis as f64 / 1000.0;
        let error = (share - want) / want;
        let met = error.abs() <= 0.20;
        all_met &= met;
        println!(
            "    {millis:>4}m: wall {:.2} s, process CPU {:.3} s, share {:>5.1}% of a core (want {:>5.1}%), error {:>+6.1}%  {}   [guest cpu {:.3} s, fuel {:.3e}]",
            wall.as_secs_f64(),
            cpu.as_secs_f64(),
            share * 100.0,
            want * 100.0,
            error * 100.0,
            if met { "MET" } else { "NOT MET" },
            outcome.usage.cpu_seconds,
            outcome.usage.fuel_consumed as f64,
        );
    }
    println!(
        "    target ±20%: {}",
        if all_met { "MET" } else { "NOT MET" }
    );
}

/// The bare wasmtime loop the sandbox is compared with.
fn bare_loop(wasm: &[u8], runs: usize, tuned: bool) -> Vec<Duration> {
    let mut pool = PoolingAllocationConfig::default();
    if tuned {
        pool.linear_memory_keep_resident(1 << 20)
            .table_keep_resident(64 << 10)
            .pagemap_scan(Enabled::Auto);
    }
    let mut config = Config::new();
    config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    let engine = Engine::new(&config).expect("engine");
    let module = Module::from_binary(&engine, wasm).expect("compile");
    let mut linker: Linker<WasiP1Ctx> = Linker::new(&engine);
    wasmtime_wasi::p1::add_to_linker_sync(&mut linker, |ctx| ctx).expect("link");
    let pre = linker.instantiate_pre(&module).expect("pre");
    let once = || {
        let wasi = WasiCtxBuilder::new().args(&["hello"]).build_p1();
        let mut store = Store::new(&engine, wasi);
        let instance = pre.instantiate(&mut store).expect("instantiate");
        let start = instance
            .get_typed_func::<(), ()>(&mut store, "_start")
            .expect("_start");
        start.call(&mut store, ()).expect("run");
    };
    for _ in 0..WARMUP {
        once();
    }
    (0..runs)
        .map(|_| {
            let t = Instant::now();
            once();
            t.elapsed()
        })
        .collect()
}

fn percentiles(mut samples: Vec<Duration>) -> (Duration, Duration) {
    samples.sort();
    let at = |q: f64| samples[((samples.len() as f64 * q) as usize).min(samples.len() - 1)];
    (at(0.50), at(0.99))
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// User + system CPU time of this process.
fn process_cpu_time() -> Duration {
    // SAFETY: `usage` is a valid, writable rusage struct.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: as above; RUSAGE_SELF is always valid.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

/// Builds the example guests and returns their `target/` directory.
fn build_guests() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/guests");
    let status = Command::new("bash")
        .arg(dir.join("build.sh"))
        .stdout(std::process::Stdio::null())
        .status()
        .expect("run examples/guests/build.sh");
    assert!(status.success(), "building the example guests failed");
    dir.join("target")
}
