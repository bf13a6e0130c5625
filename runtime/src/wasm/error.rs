//! Errors of the Wasm sandbox.

use std::fmt;
use std::path::PathBuf;

/// What kind of WebAssembly program a binary is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProgramKind {
    /// A core WebAssembly module run as a WASI preview 1 command (entry point `_start`).
    Module,
    /// A WebAssembly component: a WASI preview 2 command (export `wasi:cli/run`) or an HTTP
    /// function (export `wasi:http/incoming-handler`).
    Component,
}

impl ProgramKind {
    /// The entry point a program of this kind must export.
    pub fn entry_point(self) -> &'static str {
        match self {
            ProgramKind::Module => "_start",
            ProgramKind::Component => "wasi:cli/run",
        }
    }
}

impl fmt::Display for ProgramKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ProgramKind::Module => "core module",
            ProgramKind::Component => "component",
        })
    }
}

/// Why the Wasm runtime could not be created or a program could not be loaded.
///
/// Running a loaded program never fails with this type: every run ends in an
/// [`Outcome`](super::Outcome).
#[derive(Debug, thiserror::Error)]
pub enum WasmError {
    /// wasmtime rejected the engine configuration derived from [`RuntimeConfig`](super::RuntimeConfig)
    /// (for example a pool larger than the address space allows).
    #[error("cannot configure the wasmtime engine: {reason}")]
    Engine {
        /// wasmtime's explanation.
        reason: String,
    },
    /// The compiled-code cache directory cannot be created.
    #[error("cannot use the compile cache directory {}: {source}", path.display())]
    CacheDir {
        /// The configured cache directory.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },
    /// Measuring fuel per CPU-second at start-up failed.
    #[error("fuel calibration failed: {reason}")]
    Calibration {
        /// What went wrong.
        reason: String,
    },
    /// The bytes do not start with the WebAssembly magic number.
    #[error("not a WebAssembly binary (bad magic number)")]
    NotWasm,
    /// The bytes are WebAssembly but cannot be validated or compiled.
    #[error("invalid WebAssembly: {reason}")]
    Invalid {
        /// The validator's or compiler's explanation.
        reason: String,
    },
    /// The program does not export the entry point its kind requires.
    #[error("{kind} does not export its entry point `{expected}`{}", detail.as_deref().map(|d| format!(": {d}")).unwrap_or_default())]
    MissingEntryPoint {
        /// What the program is.
        kind: ProgramKind,
        /// The export that is missing (`_start` or `wasi:cli/run`).
        expected: &'static str,
        /// More detail, for example when the export exists with the wrong type.
        detail: Option<String>,
    },
    /// The program imports something that skiff's WASI host does not provide.
    #[error("{kind} has imports skiff's WASI host does not provide: {reason}")]
    Link {
        /// What the program is.
        kind: ProgramKind,
        /// wasmtime's explanation, naming the import.
        reason: String,
    },
    /// The digest passed to [`load`](super::WasmRuntime::load) is a `sha256:` digest that does
    /// not match the bytes.
    #[error("digest mismatch: expected {expected}, the bytes hash to {actual}")]
    DigestMismatch {
        /// The digest the caller claimed.
        expected: String,
        /// The digest of the bytes.
        actual: String,
    },
}

/// Renders a wasmtime error with its causes, `outer: inner: root`.
pub(crate) fn error_chain(e: &wasmtime::Error) -> String {
    let mut out = String::new();
    for (i, cause) in e.chain().enumerate() {
        if i > 0 {
            out.push_str(": ");
        }
        out.push_str(&cause.to_string());
    }
    out
}
