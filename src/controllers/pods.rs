//! Pod facts the workload controllers share: activity, readiness, availability, and which pod
//! to give up first when scaling down. Pure functions over pod JSON.

use std::cmp::Reverse;

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::informer::is_deleting;

/// A pod that has finished (phase Succeeded or Failed).
pub fn is_terminal(pod: &Value) -> bool {
    matches!(
        pod["status"]["phase"].as_str(),
        Some("Succeeded" | "Failed")
    )
}

/// A pod that counts toward a controller's replicas: not finished and not being deleted.
pub fn is_active(pod: &Value) -> bool {
    !is_terminal(pod) && !is_deleting(pod)
}

fn ready_condition(pod: &Value) -> Option<&Value> {
    pod.pointer("/status/conditions")
        .and_then(Value::as_array)?
        .iter()
        .find(|c| c["type"] == "Ready")
}

/// Whether the pod's Ready condition is True.
pub fn is_ready(pod: &Value) -> bool {
    ready_condition(pod).is_some_and(|c| c["status"] == "True")
}

/// When the pod last became Ready, if it is.
pub fn ready_since(pod: &Value) -> Option<DateTime<Utc>> {
    let condition = ready_condition(pod).filter(|c| c["status"] == "True")?;
    condition["lastTransitionTime"]
        .as_str()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc))
}

/// Whether the pod has been Ready for at least `min_ready_seconds` at `now`. With a minimum,
/// also how long until it will be, if it is Ready but not yet available.
pub fn availability(
    pod: &Value,
    min_ready_seconds: i64,
    now: DateTime<Utc>,
) -> (bool, Option<std::time::Duration>) {
    if !is_ready(pod) {
        return (false, None);
    }
    if min_ready_seconds <= 0 {
        return (true, None);
    }
    let Some(since) = ready_since(pod) else {
        return (true, None);
    };
    let available_at = since + chrono::Duration::seconds(min_ready_seconds);
    if available_at <= now {
        (true, None)
    } else {
        (false, (available_at - now).to_std().ok())
    }
}

fn restarts(pod: &Value) -> i64 {
    pod.pointer("/status/containerStatuses")
        .and_then(Value::as_array)
        .map(|cs| cs.iter().filter_map(|c| c["restartCount"].as_i64()).sum())
        .unwrap_or(0)
}

/// Sort key for scale-down: smaller goes first. Kubernetes' order: unscheduled before
/// scheduled; Pending before Unknown before Running; not ready before ready; ready for less
/// time before more; more restarts before fewer; newer before older.
pub fn deletion_rank(pod: &Value) -> impl Ord + use<> {
    let scheduled = pod
        .pointer("/spec/nodeName")
        .and_then(Value::as_str)
        .is_some_and(|n| !n.is_empty());
    let phase = match pod.pointer("/status/phase").and_then(Value::as_str) {
        Some("Pending") | None => 0,
        Some("Unknown") => 1,
        _ => 2,
    };
    let ready = is_ready(pod);
    let ready_since = ready_since(pod).map(|t| t.timestamp_millis());
    let created = pod
        .pointer("/metadata/creationTimestamp")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    (
        scheduled,
        phase,
        ready,
        Reverse(ready_since),
        Reverse(restarts(pod)),
        Reverse(created),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(name: &str, node: bool, phase: &str, ready: Option<&str>, restarts: i64) -> Value {
        let mut p = json!({"metadata": {"name": name, "creationTimestamp": "2026-01-01T00:00:00Z"},
            "spec": {}, "status": {"phase": phase,
            "containerStatuses": [{"restartCount": restarts}]}});
        if node {
            p["spec"]["nodeName"] = json!("n1");
        }
        if let Some(since) = ready {
            p["status"]["conditions"] =
                json!([{"type": "Ready", "status": "True", "lastTransitionTime": since}]);
        }
        p
    }

    #[test]
    fn scale_down_gives_up_the_least_valuable_pods_first() {
        let mut pods = [
            pod(
                "ready-long",
                true,
                "Running",
                Some("2026-01-01T00:00:00Z"),
                0,
            ),
            pod(
                "ready-recent",
                true,
                "Running",
                Some("2026-01-01T01:00:00Z"),
                0,
            ),
            pod("running-not-ready", true, "Running", None, 0),
            pod("crashy", true, "Running", None, 5),
            pod("pending", true, "Pending", None, 0),
            pod("unscheduled", false, "Pending", None, 0),
        ];
        pods.sort_by_key(deletion_rank);
        let order: Vec<&str> = pods
            .iter()
            .map(|p| p["metadata"]["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            order,
            [
                "unscheduled",
                "pending",
                "crashy",
                "running-not-ready",
                "ready-recent",
                "ready-long"
            ]
        );
    }

    #[test]
    fn availability_waits_for_min_ready_seconds() {
        let now = DateTime::parse_from_rfc3339("2026-01-01T00:00:10Z")
            .unwrap()
            .with_timezone(&Utc);
        let p = pod("p", true, "Running", Some("2026-01-01T00:00:05Z"), 0);
        assert_eq!(availability(&p, 0, now), (true, None));
        assert_eq!(availability(&p, 5, now), (true, None));
        assert_eq!(
            availability(&p, 8, now),
            (false, Some(std::time::Duration::from_secs(3)))
        );
        let not_ready = pod("q", true, "Running", None, 0);
        assert_eq!(availability(&not_ready, 0, now), (false, None));
        assert!(is_active(&p) && !is_terminal(&p));
    }
}
