//! skiff's sandboxes, independent of the API server.
//!
//! This crate will hold the Wasm sandbox (wasmtime), the OCI container driver (runc) and the
//! content-addressed image store. The control plane does not depend on anything here yet.

pub mod image;
pub mod oci;
pub mod wasm;

/// The runtime classes skiff knows how to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuntimeKind {
    /// A WebAssembly module or component run in-process.
    Wasm,
    /// An OCI container image run by runc.
    Oci,
}
