//! Helpers shared by the Wasm sandbox tests: the example guests (built once per test binary
//! with `examples/guests/build.sh`) and a small runtime.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, OnceLock};

use skiff_runtime::wasm::{MemorySink, Program, RuntimeConfig, WasmRuntime};

/// `examples/guests` of the repository.
pub fn guests_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/guests")
}

/// Builds the example guests once per test binary and returns the path of guest `name`
/// (`hello`, `memory-hog`, `spinner`, `exit-code`, `sleeper`, or `hello-p2`).
pub fn guest(name: &str) -> PathBuf {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let script = guests_dir().join("build.sh");
        let out = Command::new("bash")
            .arg(&script)
            .output()
            .expect("run examples/guests/build.sh");
        assert!(
            out.status.success(),
            "building the example guests failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    });
    let target = if name == "hello-p2" {
        "wasm32-wasip2"
    } else {
        "wasm32-wasip1"
    };
    let path = guests_dir()
        .join("target")
        .join(target)
        .join("release")
        .join(format!("{name}.wasm"));
    assert!(path.is_file(), "{} missing after build", path.display());
    path
}

/// A runtime with a small pool, for tests.
pub fn small_config(cache_dir: &Path) -> RuntimeConfig {
    RuntimeConfig {
        cache_dir: cache_dir.to_owned(),
        max_instances: 128,
        max_memory_bytes: 256 << 20,
        guest_threads: None,
    }
}

/// One runtime per test binary, with its cache in a temporary directory.
pub fn runtime() -> &'static WasmRuntime {
    static RT: OnceLock<(tempfile::TempDir, WasmRuntime)> = OnceLock::new();
    let (_, rt) = RT.get_or_init(|| {
        let dir = tempfile::tempdir().expect("tempdir");
        let rt = WasmRuntime::new(small_config(dir.path())).expect("create runtime");
        (dir, rt)
    });
    rt
}

/// Loads an example guest into the shared runtime.
pub fn load_guest(name: &str) -> Arc<Program> {
    let bytes = std::fs::read(guest(name)).expect("read guest");
    runtime()
        .load(&format!("guest:{name}"), &bytes)
        .expect("load guest")
}

/// Loads WAT text (module or component) into the shared runtime.
pub fn load_wat(key: &str, text: &str) -> Arc<Program> {
    let bytes = wat::parse_str(text).expect("valid wat");
    runtime().load(key, &bytes).expect("load wat")
}

/// A capturing sink.
pub fn sink() -> Arc<MemorySink> {
    Arc::new(MemorySink::new(1 << 20))
}
