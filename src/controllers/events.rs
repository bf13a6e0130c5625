//! Records core/v1 Events about objects, as Kubernetes components do (`kubectl describe` shows
//! them). Repeats of the same reason and message on the same object bump `count` instead of
//! creating new Events.

use chrono::Utc;
use serde_json::{Value, json};

use crate::api::error::Reason;
use crate::api::objects::{Objects, WriteOptions, timestamp};
use crate::api::resources::by_plural;

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
#[derive(Clone)]
pub struct Recorder {
    objects: Objects,
    component: &'static str,
    host: Option<String>,
}

/// A stable event name for (object, reason, message), so repeats update one Event.
fn event_name(object_name: &str, uid: &str, reason: &str, message: &str) -> String {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    (uid, reason, message).hash(&mut hasher);
    format!("{object_name}.{:016x}", hasher.finish())
}

impl Recorder {
    /// A recorder for `component`, optionally on a host (a node name).
    pub fn new(objects: Objects, component: &'static str, host: Option<String>) -> Self {
        Recorder {
            objects,
            component,
            host,
        }
    }

    /// Records an event about `object` (any stored object with kind, metadata.name, uid).
    /// Failures are logged, never returned: events are best effort, as in Kubernetes.
    pub async fn record(&self, object: &Value, kind: EventType, reason: &str, message: &str) {
        if let Err(error) = self.try_record(object, kind, reason, message).await {
            tracing::debug!(%error, reason, "event not recorded");
        }
    }

    async fn try_record(
        &self,
        object: &Value,
        kind: EventType,
        reason: &str,
        message: &str,
    ) -> Result<(), crate::api::error::ApiError> {
        let events = by_plural("", "v1", "events").expect("events are served");
        let meta = &object["metadata"];
        let name = meta["name"].as_str().unwrap_or_default();
        let uid = meta["uid"].as_str().unwrap_or_default();
        let namespace = meta["namespace"].as_str().unwrap_or("default");
        let namespace = if namespace.is_empty() {
            "default"
        } else {
            namespace
        };
        let event_name = event_name(name, uid, reason, message);
        let now = timestamp(Utc::now());
        let bumped = self
            .objects
            .modify(
                events,
                namespace,
                &event_name,
                None,
                self.component,
                |event| {
                    let count = event["count"].as_i64().unwrap_or(1) + 1;
                    event["count"] = json!(count);
                    event["lastTimestamp"] = json!(now);
                    true
                },
            )
            .await;
        match bumped {
            Ok(_) => return Ok(()),
            Err(e) if e.reason == Reason::NotFound => {}
            Err(e) => return Err(e),
        }
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
        match self
            .objects
            .create(
                events,
                namespace,
                event,
                &WriteOptions::controller(self.component),
            )
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.reason == Reason::AlreadyExists => Ok(()),
            Err(e) => Err(e),
        }
    }
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
