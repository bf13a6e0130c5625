//! Reconcile loops. Each reads state through the object service's store and writes through
//! the object service, never around it.
//!
//! The workload controllers share one set of informers ([`informer`]) and the runner
//! ([`runner`]); they start once this server holds the controller Lease ([`leader`]).

pub mod cronjob;
pub mod daemonset;
pub mod deployment;
pub mod endpoints;
pub mod event_filter;
pub mod events;
pub mod garbage_collector;
pub mod informer;
pub mod job;
pub mod leader;
pub mod namespace;
pub mod pods;
pub mod queue;
pub mod replicaset;
pub mod runner;
pub mod statefulset;
pub mod volumes;
pub mod writes;

use crate::api::objects::Objects;

/// Starts every controller; local persistent volumes live under `data_dir`.
pub async fn spawn_all(objects: Objects, data_dir: std::path::PathBuf) {
    garbage_collector::spawn(objects.clone());
    namespace::spawn(objects.clone());
    tokio::spawn(async move {
        leader::acquire(&objects).await;
        let mut informers = informer::Informers::new(objects.clone());
        replicaset::register(&objects, &mut informers);
        deployment::register(&objects, &mut informers);
        daemonset::register(&objects, &mut informers);
        statefulset::register(&objects, &mut informers);
        job::register(&objects, &mut informers);
        cronjob::register(&objects, &mut informers);
        volumes::register(&objects, &mut informers, data_dir);
        endpoints::register(&objects, &mut informers);
        informers.start().await;
    });
}
