//! Reconcile loops. Each reads state through the object service's store and writes through
//! the object service, never around it.

pub mod events;
pub mod garbage_collector;
pub mod namespace;
pub mod queue;

use crate::api::objects::Objects;

/// Starts every controller.
pub async fn spawn_all(objects: Objects) {
    garbage_collector::spawn(objects.clone());
    namespace::spawn(objects);
}
