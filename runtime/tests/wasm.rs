//! The Wasm sandbox end to end: real example guests (built by `examples/guests/build.sh`) and
//! small WAT programs for hostile cases.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::{guest, load_guest, load_wat, runtime, sink, small_config};
use skiff_runtime::wasm::{
    CancelToken, Exit, LoadSource, OutputSink, Preopen, ProgramKind, RunSpec, WasmError,
    WasmRuntime,
};

fn run_spec(args: &[&str]) -> RunSpec {
    RunSpec::new(args.iter().copied())
}

// ---------------------------------------------------------------------------------------------
// Real guests
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn hello_prints_args_and_selected_env_and_exits_0() {
    let program = load_guest("hello");
    assert_eq!(program.kind(), ProgramKind::Module);
    let out = sink();
    let mut spec = run_spec(&["hello", "first arg", "second"]);
    spec.env = vec![
        ("HELLO_NAME".into(), "skiff".into()),
        ("SECRET".into(), "not printed".into()),
    ];
    spec.stdout = out.clone();
    let outcome = runtime().run(&program, spec).await;
    assert_eq!(outcome.exit, Exit::Code(0), "{outcome:?}");
    let text = out.text();
    assert!(text.contains("hello from a skiff wasm guest"), "{text}");
    assert!(text.contains("argv[0]=hello\n"), "{text}");
    assert!(text.contains("argv[1]=first arg\n"), "{text}");
    assert!(text.contains("argv[2]=second\n"), "{text}");
    assert!(text.contains("env HELLO_NAME=skiff\n"), "{text}");
    assert!(!text.contains("SECRET"), "{text}");
    assert!(outcome.usage.fuel_consumed > 0);
    assert!(outcome.usage.peak_memory_bytes >= 64 * 1024);
    assert!(outcome.usage.cpu_seconds > 0.0);
}

#[tokio::test]
async fn exit_code_is_reported() {
    let program = load_guest("exit-code");
    let outcome = runtime().run(&program, run_spec(&["exit-code", "3"])).await;
    assert_eq!(outcome.exit, Exit::Code(3));
    let outcome = runtime().run(&program, run_spec(&["exit-code", "0"])).await;
    assert_eq!(outcome.exit, Exit::Code(0));
}

#[tokio::test]
async fn memory_hog_over_its_limit_is_oom_killed() {
    let program = load_guest("memory-hog");
    let err = sink();
    let mut spec = run_spec(&["memory-hog", "64"]);
    spec.memory_limit = Some(16 << 20);
    spec.stderr = err.clone();
    let outcome = runtime().run(&program, spec).await;
    assert_eq!(outcome.exit, Exit::OomKilled, "stderr: {}", err.text());
    assert!(outcome.usage.peak_memory_bytes <= 16 << 20);
    assert!(outcome.usage.peak_memory_bytes > 8 << 20);

    // The same guest within its limit is fine.
    let mut spec = run_spec(&["memory-hog", "4"]);
    spec.memory_limit = Some(16 << 20);
    let outcome = runtime().run(&program, spec).await;
    assert_eq!(outcome.exit, Exit::Code(0));
}

#[tokio::test]
async fn spinner_past_its_deadline_is_stopped() {
    let program = load_guest("spinner");
    let mut spec = run_spec(&["spinner"]);
    spec.deadline = Some(Instant::now() + Duration::from_millis(300));
    let started = Instant::now();
    let outcome = runtime().run(&program, spec).await;
    assert_eq!(outcome.exit, Exit::DeadlineExceeded);
    let wall = started.elapsed();
    assert!(wall >= Duration::from_millis(290), "{wall:?}");
    assert!(wall < Duration::from_millis(800), "{wall:?}");
    assert!(outcome.usage.fuel_consumed > 0);
}

#[tokio::test]
async fn spinner_finishing_in_time_exits_0() {
    let program = load_guest("spinner");
    let out = sink();
    let mut spec = run_spec(&["spinner", "0.1"]);
    spec.stdout = out.clone();
    spec.deadline = Some(Instant::now() + Duration::from_secs(10));
    let outcome = runtime().run(&program, spec).await;
    assert_eq!(outcome.exit, Exit::Code(0));
    assert!(out.text().starts_with("spun "), "{}", out.text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_kills_a_spinning_guest() {
    let program = load_guest("spinner");
    let cancel = CancelToken::new();
    let mut spec = run_spec(&["spinner"]);
    spec.cancel = cancel.clone();
    let killer = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(200)).await;
        cancel.cancel();
        Instant::now()
    });
    let outcome = runtime().run(&program, spec).await;
    let ended = Instant::now();
    let cancelled_at = killer.await.unwrap();
    assert_eq!(outcome.exit, Exit::Killed);
    let lag = ended.duration_since(cancelled_at);
    assert!(
        lag < Duration::from_millis(100),
        "stopped {lag:?} after cancel"
    );
}

#[tokio::test]
async fn cancel_kills_a_sleeping_guest_and_a_cancelled_token_never_starts() {
    let program = load_guest("sleeper");
    let cancel = CancelToken::new();
    let mut spec = run_spec(&["sleeper", "3600"]);
    spec.cancel = cancel.clone();
    let run = tokio::spawn(async move { runtime().run(&program, spec).await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!run.is_finished());
    cancel.cancel();
    let outcome = tokio::time::timeout(Duration::from_secs(2), run)
        .await
        .expect("a sleeping guest stops when cancelled")
        .unwrap();
    assert_eq!(outcome.exit, Exit::Killed);

    let program = load_guest("hello");
    let out = sink();
    let mut spec = run_spec(&["hello"]);
    spec.cancel = cancel;
    spec.stdout = out.clone();
    let outcome = runtime().run(&program, spec).await;
    assert_eq!(outcome.exit, Exit::Killed);
    assert_eq!(out.text(), "");
}

#[tokio::test]
async fn sleeper_sleeps_without_burning_cpu() {
    let program = load_guest("sleeper");
    let outcome = runtime().run(&program, run_spec(&["sleeper", "0.3"])).await;
    assert_eq!(outcome.exit, Exit::Code(0));
    assert!(outcome.usage.wall >= Duration::from_millis(300));
    assert!(
        outcome.usage.cpu_seconds < 0.1,
        "cpu {}",
        outcome.usage.cpu_seconds
    );
}

#[tokio::test]
async fn read_only_preopen_can_be_read_but_not_written() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("in.txt"), "from the host\n").unwrap();
    let program = load_guest("hello");
    let preopen = Preopen {
        host: dir.path().to_owned(),
        guest: "/data".into(),
        read_only: true,
    };

    let out = sink();
    let mut spec = run_spec(&["hello"]);
    spec.preopens = vec![preopen.clone()];
    spec.env = vec![("HELLO_READ".into(), "/data/in.txt".into())];
    spec.stdout = out.clone();
    let outcome = runtime().run(&program, spec).await;
    assert_eq!(outcome.exit, Exit::Code(0));
    assert!(
        out.text().contains("read /data/in.txt: from the host"),
        "{}",
        out.text()
    );

    let err = sink();
    let mut spec = run_spec(&["hello"]);
    spec.preopens = vec![preopen];
    spec.env = vec![("HELLO_WRITE".into(), "/data/out.txt".into())];
    spec.stderr = err.clone();
    let outcome = runtime().run(&program, spec).await;
    assert_eq!(outcome.exit, Exit::Code(10), "stderr: {}", err.text());
    assert!(err.text().contains("write /data/out.txt failed"));
    assert!(!dir.path().join("out.txt").exists());
}

#[tokio::test]
async fn writable_preopen_is_written_through() {
    let dir = tempfile::tempdir().unwrap();
    let program = load_guest("hello");
    let mut spec = run_spec(&["hello"]);
    spec.preopens = vec![Preopen {
        host: dir.path().to_owned(),
        guest: "/data".into(),
        read_only: false,
    }];
    spec.env = vec![("HELLO_WRITE".into(), "/data/out.txt".into())];
    let outcome = runtime().run(&program, spec).await;
    assert_eq!(outcome.exit, Exit::Code(0));
    assert_eq!(
        std::fs::read_to_string(dir.path().join("out.txt")).unwrap(),
        "written by hello\n"
    );
}

#[tokio::test]
async fn host_paths_outside_the_preopens_are_invisible() {
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("secret.txt");
    std::fs::write(&secret, "host secret").unwrap();
    let other = tempfile::tempdir().unwrap();
    let program = load_guest("hello");

    for target in [
        secret.to_str().unwrap().to_owned(),
        "/etc/passwd".to_owned(),
        "/data/../secret.txt".to_owned(),
    ] {
        let err = sink();
        let mut spec = run_spec(&["hello"]);
        spec.preopens = vec![Preopen {
            host: other.path().to_owned(),
            guest: "/data".into(),
            read_only: false,
        }];
        spec.env = vec![("HELLO_READ".into(), target.clone())];
        spec.stderr = err.clone();
        let outcome = runtime().run(&program, spec).await;
        assert_eq!(outcome.exit, Exit::Code(11), "{target}: {}", err.text());
    }
}

#[tokio::test]
async fn working_dir_sets_pwd_and_anchors_relative_preopens() {
    let dir = tempfile::tempdir().unwrap();
    let program = load_guest("hello");
    let out = sink();
    let mut spec = run_spec(&["hello"]);
    spec.working_dir = Some("/app".into());
    spec.preopens = vec![Preopen {
        host: dir.path().to_owned(),
        guest: ".".into(),
        read_only: false,
    }];
    spec.stdout = out.clone();
    let outcome = runtime().run(&program, spec).await;
    assert_eq!(outcome.exit, Exit::Code(0), "{}", out.text());
    assert!(out.text().contains("env PWD=/app\n"), "{}", out.text());
    assert!(
        out.text().contains("wrote /app/hello.txt"),
        "{}",
        out.text()
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("hello.txt")).unwrap(),
        "hello\n"
    );
}

#[tokio::test]
async fn missing_preopen_directory_fails_to_start() {
    let program = load_guest("hello");
    let mut spec = run_spec(&["hello"]);
    spec.preopens = vec![Preopen {
        host: "/nonexistent/skiff/dir".into(),
        guest: "/data".into(),
        read_only: true,
    }];
    let outcome = runtime().run(&program, spec).await;
    assert!(
        matches!(&outcome.exit, Exit::StartFailed { reason } if reason.contains("/nonexistent/skiff/dir")),
        "{outcome:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_concurrent_runs_share_the_pool() {
    let program = load_guest("hello");
    let mut runs = Vec::new();
    for i in 0..100 {
        let program = program.clone();
        runs.push(tokio::spawn(async move {
            let out = sink();
            let mut spec = run_spec(&["hello", &i.to_string()]);
            spec.stdout = out.clone();
            let outcome = runtime().run(&program, spec).await;
            (outcome, out.text(), i)
        }));
    }
    for run in runs {
        let (outcome, text, i) = run.await.unwrap();
        assert_eq!(outcome.exit, Exit::Code(0));
        assert!(text.contains(&format!("argv[1]={i}\n")));
    }
}

#[tokio::test]
async fn sleeping_guests_do_not_hold_threads() {
    // 100 guests sleeping 300 ms each on one thread finish together, not one after another.
    let program = load_guest("sleeper");
    let started = Instant::now();
    let runs = (0..100).map(|_| runtime().run(&program, run_spec(&["sleeper", "0.3"])));
    let outcomes = futures_join_all(runs).await;
    assert!(outcomes.iter().all(|o| o.exit == Exit::Code(0)));
    let wall = started.elapsed();
    assert!(wall < Duration::from_secs(2), "{wall:?}");
}

/// Awaits futures concurrently on the current task (no extra dependency for `join_all`).
async fn futures_join_all<F: std::future::Future>(
    futures: impl Iterator<Item = F>,
) -> Vec<F::Output> {
    let mut set = Vec::new();
    for f in futures {
        set.push(Box::pin(f));
    }
    let mut outputs: Vec<Option<F::Output>> = (0..set.len()).map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (i, f) in set.iter_mut().enumerate() {
            if outputs[i].is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => outputs[i] = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    outputs.into_iter().map(|o| o.expect("ready")).collect()
}

#[tokio::test]
async fn a_full_pool_refuses_to_start_more_guests() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = small_config(dir.path());
    config.max_instances = 2;
    let rt = WasmRuntime::new(config).unwrap();
    let bytes = std::fs::read(guest("sleeper")).unwrap();
    let program = rt.load("guest:sleeper", &bytes).unwrap();
    let cancel = CancelToken::new();
    let mut sleepers = Vec::new();
    for _ in 0..2 {
        let (rt, program) = (rt.clone(), program.clone());
        let mut spec = run_spec(&["sleeper", "60"]);
        spec.cancel = cancel.clone();
        sleepers.push(tokio::spawn(async move { rt.run(&program, spec).await }));
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let outcome = rt.run(&program, run_spec(&["sleeper", "0"])).await;
    assert!(
        matches!(&outcome.exit, Exit::StartFailed { .. }),
        "{outcome:?}"
    );
    cancel.cancel();
    for sleeper in sleepers {
        assert_eq!(sleeper.await.unwrap().exit, Exit::Killed);
    }
    // The slots are free again.
    let outcome = rt.run(&program, run_spec(&["sleeper", "0"])).await;
    assert_eq!(outcome.exit, Exit::Code(0));
}

#[tokio::test]
async fn p2_component_runs_with_args_env_and_exit_code() {
    let program = load_guest("hello-p2");
    assert_eq!(program.kind(), ProgramKind::Component);
    let out = sink();
    let mut spec = run_spec(&["hello-p2", "x"]);
    spec.env = vec![("HELLO_WHO".into(), "p2".into())];
    spec.stdout = out.clone();
    let outcome = runtime().run(&program, spec).await;
    assert_eq!(outcome.exit, Exit::Code(0), "{outcome:?}");
    let text = out.text();
    assert!(text.contains("hello from a skiff wasm component"), "{text}");
    assert!(text.contains("argv[1]=x\n"), "{text}");
    assert!(text.contains("env HELLO_WHO=p2\n"), "{text}");

    // WASI 0.2's `wasi:cli/exit` carries only success or failure: any non-zero code is 1.
    let mut spec = run_spec(&["hello-p2"]);
    spec.env = vec![("HELLO_EXIT".into(), "4".into())];
    let outcome = runtime().run(&program, spec).await;
    assert_eq!(outcome.exit, Exit::Code(1));
}

// ---------------------------------------------------------------------------------------------
// The on-disk cache
// ---------------------------------------------------------------------------------------------

#[test]
fn compiled_code_is_cached_on_disk_and_reused_by_a_new_runtime() {
    let bytes = std::fs::read(guest("hello")).unwrap();
    let digest = format!("sha256:{}", sha256_hex(&bytes));
    let dir = tempfile::tempdir().unwrap();

    let first = WasmRuntime::new(small_config(dir.path())).unwrap();
    let path = first.cache_path(&digest, ProgramKind::Module);
    assert!(!path.exists());
    let t = Instant::now();
    let compiled = first.load(&digest, &bytes).unwrap();
    let compile_time = t.elapsed();
    assert_eq!(compiled.source(), LoadSource::Compiled);
    assert!(path.is_file(), "{} not written", path.display());
    // The file name carries the digest and the engine fingerprint.
    let name = path.file_name().unwrap().to_str().unwrap();
    assert!(name.starts_with(&digest.replace(':', "-")), "{name}");

    // Memoised in memory: the same Program.
    let again = first.load(&digest, &bytes).unwrap();
    assert!(Arc::ptr_eq(&compiled, &again));

    let second = WasmRuntime::new(small_config(dir.path())).unwrap();
    assert_eq!(second.cache_path(&digest, ProgramKind::Module), path);
    let t = Instant::now();
    let cached = second.load(&digest, &bytes).unwrap();
    let cached_time = t.elapsed();
    assert_eq!(cached.source(), LoadSource::DiskCache);
    assert!(
        cached_time * 3 < compile_time,
        "cache hit {cached_time:?} vs compile {compile_time:?}"
    );

    // A program only runs on the runtime that loaded it.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let outcome = rt.block_on(second.run(&compiled, run_spec(&["hello"])));
    assert!(matches!(outcome.exit, Exit::StartFailed { .. }));
    let outcome = rt.block_on(second.run(&cached, run_spec(&["hello"])));
    assert_eq!(outcome.exit, Exit::Code(0));
}

#[test]
fn a_corrupt_cache_file_is_recompiled() {
    let bytes = std::fs::read(guest("exit-code")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let rt = WasmRuntime::new(small_config(dir.path())).unwrap();
    let path = rt.cache_path("key:corrupt", ProgramKind::Module);
    std::fs::write(&path, b"definitely not compiled code").unwrap();
    let program = rt.load("key:corrupt", &bytes).unwrap();
    assert_eq!(program.source(), LoadSource::Compiled);
    assert!(std::fs::metadata(&path).unwrap().len() > 1000);
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Bad programs and hostile guests (WAT)
// ---------------------------------------------------------------------------------------------

#[test]
fn load_rejects_bad_programs_with_structured_errors() {
    let rt = runtime();
    assert!(matches!(
        rt.load("bad:text", b"#!/bin/sh\necho hi\n"),
        Err(WasmError::NotWasm)
    ));
    assert!(matches!(
        rt.load("bad:garbage", b"\0asm\x01\0\0\0\xff\xff\xff"),
        Err(WasmError::Invalid { .. })
    ));
    let no_start = wat::parse_str(r#"(module (func (export "main")))"#).unwrap();
    assert!(matches!(
        rt.load("bad:no-start", &no_start),
        Err(WasmError::MissingEntryPoint {
            kind: ProgramKind::Module,
            expected: "_start",
            ..
        })
    ));
    let start_with_params =
        wat::parse_str(r#"(module (func (export "_start") (param i32)))"#).unwrap();
    assert!(matches!(
        rt.load("bad:start-params", &start_with_params),
        Err(WasmError::MissingEntryPoint {
            detail: Some(_),
            ..
        })
    ));
    let foreign_import = wat::parse_str(
        r#"(module (import "env" "launch_missiles" (func)) (func (export "_start")))"#,
    )
    .unwrap();
    match rt.load("bad:import", &foreign_import) {
        Err(WasmError::Link { kind, reason }) => {
            assert_eq!(kind, ProgramKind::Module);
            assert!(reason.contains("launch_missiles"), "{reason}");
        }
        other => panic!("expected a link error, got {other:?}"),
    }
    let component_without_run = wat::parse_str("(component)").unwrap();
    assert!(matches!(
        rt.load("bad:component", &component_without_run),
        Err(WasmError::MissingEntryPoint {
            kind: ProgramKind::Component,
            ..
        })
    ));
    let ok = wat::parse_str(r#"(module (func (export "_start")))"#).unwrap();
    assert!(matches!(
        rt.load(
            "sha256:0000000000000000000000000000000000000000000000000000000000000000",
            &ok
        ),
        Err(WasmError::DigestMismatch { .. })
    ));
}

#[tokio::test]
async fn returning_from_start_is_exit_0_and_unreachable_is_a_trap() {
    let ok = load_wat("wat:empty", r#"(module (func (export "_start")))"#);
    let outcome = runtime().run(&ok, run_spec(&["empty"])).await;
    assert_eq!(outcome.exit, Exit::Code(0));

    let trap = load_wat(
        "wat:unreachable",
        r#"(module (func (export "_start") unreachable))"#,
    );
    let outcome = runtime().run(&trap, run_spec(&["trap"])).await;
    match outcome.exit {
        Exit::Trap { message } => assert!(message.contains("unreachable"), "{message}"),
        other => panic!("expected a trap, got {other:?}"),
    }
}

#[tokio::test]
async fn deep_recursion_is_a_stack_overflow_trap() {
    let program = load_wat(
        "wat:recursion",
        r#"(module
            (func $down (param i32) (result i32)
              (i32.add (call $down (i32.add (local.get 0) (i32.const 1))) (i32.const 1)))
            (func (export "_start") (drop (call $down (i32.const 0)))))"#,
    );
    let outcome = runtime().run(&program, run_spec(&["recursion"])).await;
    match outcome.exit {
        Exit::Trap { message } => assert!(message.contains("stack"), "{message}"),
        other => panic!("expected a stack overflow trap, got {other:?}"),
    }
}

#[tokio::test]
async fn memory_bomb_is_oom_killed() {
    // Grows memory until refused, then traps, like an allocator that gives up.
    let program = load_wat(
        "wat:bomb",
        r#"(module (memory 1)
            (func (export "_start")
              (loop $more (br_if $more (i32.ne (memory.grow (i32.const 16)) (i32.const -1))))
              unreachable))"#,
    );
    let mut spec = run_spec(&["bomb"]);
    spec.memory_limit = Some(8 << 20);
    let outcome = runtime().run(&program, spec).await;
    assert_eq!(outcome.exit, Exit::OomKilled);
    assert!(outcome.usage.peak_memory_bytes <= 8 << 20);

    // Without a per-run limit the pool slot (256 MiB here) is the limit.
    let outcome = runtime().run(&program, run_spec(&["bomb"])).await;
    assert_eq!(outcome.exit, Exit::OomKilled);
    assert!(outcome.usage.peak_memory_bytes > 200 << 20);

    // A memory whose initial size is over the limit cannot even be instantiated.
    let big = load_wat(
        "wat:big-initial",
        r#"(module (memory 512) (func (export "_start")))"#,
    );
    let mut spec = run_spec(&["big"]);
    spec.memory_limit = Some(16 << 20);
    let outcome = runtime().run(&big, spec).await;
    assert_eq!(outcome.exit, Exit::OomKilled);
}

/// Counts bytes without keeping them.
#[derive(Default)]
struct CountingSink(AtomicU64);

impl OutputSink for CountingSink {
    fn write(&self, bytes: &[u8]) {
        self.0.fetch_add(bytes.len() as u64, Ordering::Relaxed);
    }
}

#[tokio::test]
async fn endless_stdout_goes_to_the_sink_unbuffered_until_the_deadline() {
    let program = load_wat(
        "wat:firehose",
        r#"(module
            (import "wasi_snapshot_preview1" "fd_write"
              (func $fd_write (param i32 i32 i32 i32) (result i32)))
            (memory (export "memory") 2)
            (func (export "_start")
              (i32.store (i32.const 0) (i32.const 1024))
              (i32.store (i32.const 4) (i32.const 65536))
              (loop $again
                (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))
                (br $again))))"#,
    );
    let counter = Arc::new(CountingSink::default());
    let mut spec = run_spec(&["firehose"]);
    spec.stdout = counter.clone();
    spec.deadline = Some(Instant::now() + Duration::from_millis(300));
    let outcome = runtime().run(&program, spec).await;
    assert_eq!(outcome.exit, Exit::DeadlineExceeded);
    let written = counter.0.load(Ordering::Relaxed);
    assert!(written > 16 << 20, "only {written} bytes reached the sink");
}

#[tokio::test]
async fn wat_component_exporting_run_is_a_command() {
    let component = |result: i32| {
        format!(
            r#"(component
                (core module $m (func (export "run") (result i32) (i32.const {result})))
                (core instance $i (instantiate $m))
                (func $run (result (result)) (canon lift (core func $i "run")))
                (instance $cli (export "run" (func $run)))
                (export "wasi:cli/run@0.2.0" (instance $cli)))"#
        )
    };
    let ok = load_wat("wat:component-ok", &component(0));
    assert_eq!(ok.kind(), ProgramKind::Component);
    let outcome = runtime().run(&ok, run_spec(&["c"])).await;
    assert_eq!(outcome.exit, Exit::Code(0));
    let err = load_wat("wat:component-err", &component(1));
    let outcome = runtime().run(&err, run_spec(&["c"])).await;
    assert_eq!(outcome.exit, Exit::Code(1));
}
