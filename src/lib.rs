//! skiff: a lightweight, Kubernetes-compatible workload orchestrator in one binary.
//!
//! - [`store`]: the revisioned object store (SQLite, group commit, watch, compaction);
//! - [`api`]: the Kubernetes REST API over that store;
//! - [`controllers`]: reconcile loops (garbage collection, namespaces);
//! - [`scheduler`]: binds pending pods to nodes;
//! - [`node`]: the node agent that runs pods' containers as Wasm guests;
//! - [`server`]: `skiff serve`, TLS, credentials and the kubeconfig;
//! - [`cli`]: the `skiff apply|get|delete` client commands.

pub mod api;
pub mod cli;
pub mod controllers;
pub mod gateway;
pub mod node;
pub mod scheduler;
pub mod server;
pub mod store;
