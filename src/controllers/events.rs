//! Records core/v1 Events about objects, as Kubernetes components do (`kubectl describe` shows
//! them). Repeats of the same reason and message on the same object bump `count` instead of
//! creating new Events, and Kubernetes' correlation ([`super::event_filter`]) combines many
//! similar events and drops spam.

use std::sync::{Arc, Mutex};

use chrono::Utc;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::api::error::Reason;
use crate::api::objects::{Objects, WriteOptions, timestamp};
use crate::api::resources::by_plural;

use super::event_filter::{Correlator, RateLimit};

/// `Normal` or `Warning`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    /// Routine progress.
    Normal,
    /// Something needs attention.
    Warning,
}

impl EventType {
    fn as_str(self) -> &'static str {
        match self {
            EventType::Normal => "Normal",
            EventType::Warning => "Warning",
        }
    }
}

/// Records events on behalf of one component (`default-scheduler`, `kubelet`...).
///
/// Recording never waits for the store, as in Kubernetes' event broadcaster: events go into a
/// bounded queue (dropped, with a debug log, when it is full) and a background task writes
/// them in batches, all distinct events of a batch at once so that they share commits.
///
/// A component writes `Normal` events at most at its [`EventRate`](crate::api::objects::EventRate)
/// (the kubelet's 50 per second after a burst of 100, by default); the rest are dropped, as
/// Kubernetes drops what its throttled event client cannot send. `Warning` events are never
/// dropped for the rate: they are what someone debugging a failure looks for (the spam filter
/// per object still applies to them).
#[derive(Clone)]
pub struct Recorder {
    queue: mpsc::Sender<Pending>,
    component: &'static str,
    host: Option<String>,
    correlator: Arc<Mutex<Correlator>>,
    rate: Arc<Mutex<RateLimit>>,
}

/// Events waiting to be written per recorder; beyond this new events are dropped.
const QUEUE: usize = 4096;
/// Most events written at once.
const BATCH: usize = 256;

/// One event to write: its stable name and the Event body to create if it does not exist.
struct Pending {
    name: String,
    namespace: String,
    event: Value,
    /// How many times it was recorded (repeats within one batch are merged).
    repeats: i64,
}

/// A stable event name for (object, reason, message), so repeats update one Event.
fn event_name(object_name: &str, uid: &str, reason: &str, message: &str) -> String {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    (uid, reason, message).hash(&mut hasher);
    format!("{object_name}.{:016x}", hasher.finish())
}

impl Recorder {
    /// A recorder for `component`, optionally on a host (a node name). Starts its writer
    /// task, so it must be called within a tokio runtime.
    pub fn new(objects: Objects, component: &'static str, host: Option<String>) -> Self {
        let (queue, rx) = mpsc::channel(QUEUE);
        let rate = Arc::new(Mutex::new(RateLimit::new(objects.event_rate())));
        tokio::spawn(write_events(objects, component, rx));
        Recorder {
            queue,
            component,
            host,
            correlator: Arc::default(),
            rate,
        }
    }

    /// Records an event about `object` (any stored object with kind, metadata.name, uid).
    /// Returns at once; the write happens in the background. Failures are logged, never
    /// returned: events are best effort, as in Kubernetes.
    pub fn record(&self, object: &Value, kind: EventType, reason: &str, message: &str) {
        let now = std::time::Instant::now();
        if kind == EventType::Normal
            && !self
                .rate
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .admit(now)
        {
            tracing::debug!(reason, "event dropped by the component's event rate limit");
            return;
        }
        let meta = &object["metadata"];
        let name = meta["name"].as_str().unwrap_or_default();
        let uid = meta["uid"].as_str().unwrap_or_default();
        let namespace = match meta["namespace"].as_str() {
            Some(ns) if !ns.is_empty() => ns,
            _ => "default",
        };
        let admitted = {
            let mut correlator = self.correlator.lock().unwrap_or_else(|p| p.into_inner());
            let involved = format!("{}/{namespace}/{name}/{uid}", object["kind"]);
            correlator.admit(
                now,
                &involved,
                &format!("{}/{reason}", kind.as_str()),
                message,
            )
        };
        let Some(admitted) = admitted else {
            tracing::debug!(reason, name, "event dropped by the spam filter");
            return;
        };
        // Combined events share one Event per object, type and reason.
        let event_name = if admitted.combined {
            event_name(name, uid, reason, super::event_filter::COMBINED)
        } else {
            event_name(name, uid, reason, message)
        };
        let message = admitted.message.as_str();
        let now = timestamp(Utc::now());
        let mut source = json!({"component": self.component});
        if let Some(host) = &self.host {
            source["host"] = json!(host);
        }
        let event = json!({
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": event_name, "namespace": namespace},
            "involvedObject": {
                "apiVersion": object["apiVersion"],
                "kind": object["kind"],
                "name": name,
                "namespace": meta["namespace"],
                "uid": uid,
                "resourceVersion": meta["resourceVersion"],
            },
            "reason": reason,
            "message": message,
            "type": kind.as_str(),
            "source": source,
            "count": 1,
            "firstTimestamp": now,
            "lastTimestamp": now,
            "reportingComponent": self.component,
            "reportingInstance": self.host.clone().unwrap_or_default(),
        });
        let pending = Pending {
            name: event_name,
            namespace: namespace.to_string(),
            event,
            repeats: 1,
        };
        if self.queue.try_send(pending).is_err() {
            tracing::debug!(reason, "event queue full or closed; event dropped");
        }
    }
}

/// The writer task of one recorder: takes what is queued (up to [`BATCH`]), merges repeats,
/// and writes the distinct events concurrently. Ends when every recorder clone is gone.
async fn write_events(objects: Objects, component: &'static str, mut rx: mpsc::Receiver<Pending>) {
    let mut batch = Vec::with_capacity(BATCH);
    while rx.recv_many(&mut batch, BATCH).await > 0 {
        let mut merged: Vec<Pending> = Vec::with_capacity(batch.len());
        for pending in batch.drain(..) {
            match merged
                .iter_mut()
                .find(|m| m.name == pending.name && m.namespace == pending.namespace)
            {
                Some(first) => {
                    first.repeats += 1;
                    first.event["lastTimestamp"] = pending.event["lastTimestamp"].clone();
                    first.event["message"] = pending.event["message"].clone();
                }
                None => merged.push(pending),
            }
        }
        let writes = merged.into_iter().map(|pending| {
            let objects = &objects;
            async move {
                if let Err(error) = write_event(objects, component, pending).await {
                    tracing::debug!(%error, "event not recorded");
                }
            }
        });
        futures::future::join_all(writes).await;
    }
}

/// Creates the Event, or bumps the count of the existing one of the same name. Most events
/// are new, so the create comes first and costs no read.
async fn write_event(
    objects: &Objects,
    component: &'static str,
    mut pending: Pending,
) -> Result<(), crate::api::error::ApiError> {
    let events = by_plural("", "v1", "events").expect("events are served");
    let last = pending.event["lastTimestamp"].clone();
    let message = pending.event["message"].clone();
    let repeats = pending.repeats;
    pending.event["count"] = json!(repeats);
    match objects
        .create(
            events,
            &pending.namespace,
            pending.event,
            &WriteOptions::controller(component),
        )
        .await
    {
        Ok(_) => return Ok(()),
        Err(e) if e.reason == Reason::AlreadyExists => {}
        Err(e) => return Err(e),
    }
    objects
        .modify(
            events,
            &pending.namespace,
            &pending.name,
            None,
            component,
            |event| {
                let count = event["count"].as_i64().unwrap_or(1) + repeats;
                event["count"] = json!(count);
                event["lastTimestamp"] = last.clone();
                event["message"] = message.clone();
                true
            },
        )
        .await
        .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::event_name;

    #[test]
    fn event_names_are_stable_per_reason_and_message() {
        let a = event_name("web", "u1", "Scheduled", "assigned");
        assert_eq!(a, event_name("web", "u1", "Scheduled", "assigned"));
        assert_ne!(a, event_name("web", "u1", "Pulled", "assigned"));
        assert!(a.starts_with("web."));
    }
}
