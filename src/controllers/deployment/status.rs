//! A Deployment's status from its ReplicaSets, and its Available and Progressing conditions.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::api::objects::timestamp;

/// Totals over a Deployment's ReplicaSets.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Totals {
    /// Pods of every ReplicaSet.
    pub replicas: i64,
    /// Pods of the new ReplicaSet.
    pub updated: i64,
    /// Ready pods.
    pub ready: i64,
    /// Available pods.
    pub available: i64,
}

/// Sums the status counts of `replicasets`, `new` being the one matching the template.
pub fn totals(replicasets: &[&Value], new: Option<&Value>) -> Totals {
    let count = |rs: &Value, field: &str| rs["status"][field].as_i64().unwrap_or(0);
    let mut t = Totals::default();
    for rs in replicasets {
        t.replicas += count(rs, "replicas");
        t.ready += count(rs, "readyReplicas");
        t.available += count(rs, "availableReplicas");
    }
    t.updated = new.map_or(0, |rs| count(rs, "replicas"));
    t
}

/// Whether the rollout is finished: every pod updated and available, none extra.
pub fn complete(replicas: i64, t: &Totals) -> bool {
    t.updated == replicas && t.replicas == replicas && t.available == replicas
}

/// What moved the Progressing condition this time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// A new ReplicaSet was created.
    Created(String),
    /// The new ReplicaSet was found (for example after a restart or rollback).
    Found(String),
    /// Pods were updated or became available, or old ones went.
    Updated(String),
    /// Nothing changed.
    Still(String),
}

fn condition(
    previous: Option<&Value>,
    kind: &str,
    status: &str,
    reason: &str,
    message: &str,
    now: &str,
    touch: bool,
) -> Value {
    let transition = match previous {
        Some(p) if p["status"] == status => p["lastTransitionTime"].clone(),
        _ => json!(now),
    };
    let update = match previous {
        Some(p) if !touch && p["reason"] == reason => p["lastUpdateTime"].clone(),
        _ => json!(now),
    };
    json!({"type": kind, "status": status, "reason": reason, "message": message,
        "lastUpdateTime": update, "lastTransitionTime": transition})
}

/// The Deployment's new status, and how long until the progress deadline should be
/// checked again (when a rollout is under way).
pub fn compute(
    deployment: &Value,
    t: &Totals,
    max_unavailable: i64,
    progress: &Progress,
    now: DateTime<Utc>,
) -> (Value, Option<std::time::Duration>) {
    let spec = &deployment["spec"];
    let replicas = spec["replicas"].as_i64().unwrap_or(1);
    let old = &deployment["status"];
    let find = |kind: &str| {
        old["conditions"]
            .as_array()
            .and_then(|cs| cs.iter().find(|c| c["type"] == kind))
    };
    let stamp = timestamp(now);
    let available_ok = t.available >= replicas - max_unavailable;
    let available = if available_ok {
        condition(
            find("Available"),
            "Available",
            "True",
            "MinimumReplicasAvailable",
            "Deployment has minimum availability.",
            &stamp,
            false,
        )
    } else {
        condition(
            find("Available"),
            "Available",
            "False",
            "MinimumReplicasUnavailable",
            "Deployment does not have minimum availability.",
            &stamp,
            false,
        )
    };

    let previous = find("Progressing");
    let deadline = spec["progressDeadlineSeconds"].as_i64().unwrap_or(600);
    let paused = spec["paused"].as_bool().unwrap_or(false);
    let mut recheck = None;
    let progressing = if paused {
        condition(
            previous,
            "Progressing",
            "Unknown",
            "DeploymentPaused",
            "Deployment is paused",
            &stamp,
            false,
        )
    } else {
        match progress {
            _ if complete(replicas, t) => {
                let name = match progress {
                    Progress::Created(n)
                    | Progress::Found(n)
                    | Progress::Updated(n)
                    | Progress::Still(n) => n,
                };
                condition(
                    previous,
                    "Progressing",
                    "True",
                    "NewReplicaSetAvailable",
                    &format!("ReplicaSet \"{name}\" has successfully progressed."),
                    &stamp,
                    false,
                )
            }
            Progress::Created(name) => condition(
                previous,
                "Progressing",
                "True",
                "NewReplicaSetCreated",
                &format!("Created new replica set \"{name}\""),
                &stamp,
                true,
            ),
            Progress::Found(name) if previous.is_none_or(|p| p["reason"] == "DeploymentPaused") => {
                condition(
                    previous,
                    "Progressing",
                    "True",
                    if previous.is_some() {
                        "DeploymentResumed"
                    } else {
                        "FoundNewReplicaSet"
                    },
                    &format!("Found new replica set \"{name}\""),
                    &stamp,
                    true,
                )
            }
            Progress::Updated(name) => condition(
                previous,
                "Progressing",
                "True",
                "ReplicaSetUpdated",
                &format!("ReplicaSet \"{name}\" is progressing."),
                &stamp,
                true,
            ),
            Progress::Found(name) | Progress::Still(name) => {
                let last = previous
                    .and_then(|p| p["lastUpdateTime"].as_str())
                    .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
                    .map(|t| t.with_timezone(&Utc))
                    .unwrap_or(now);
                let expires = last + chrono::Duration::seconds(deadline);
                if previous.is_some_and(|p| p["reason"] == "ProgressDeadlineExceeded")
                    || expires <= now
                {
                    condition(
                        previous,
                        "Progressing",
                        "False",
                        "ProgressDeadlineExceeded",
                        &format!("ReplicaSet \"{name}\" has timed out progressing."),
                        &stamp,
                        false,
                    )
                } else {
                    recheck = (expires - now).to_std().ok();
                    match previous {
                        Some(p) => p.clone(),
                        None => condition(
                            None,
                            "Progressing",
                            "True",
                            "ReplicaSetUpdated",
                            &format!("ReplicaSet \"{name}\" is progressing."),
                            &stamp,
                            true,
                        ),
                    }
                }
            }
        }
    };

    let mut status = json!({
        "observedGeneration": deployment["metadata"]["generation"].as_i64().unwrap_or(1),
        "replicas": t.replicas,
        "updatedReplicas": t.updated,
        "readyReplicas": t.ready,
        "availableReplicas": t.available,
        "unavailableReplicas": (replicas - t.available).max(0),
        "conditions": [available, progressing],
    });
    if let Some(n) = old["collisionCount"].as_i64() {
        status["collisionCount"] = json!(n);
    }
    let object = status.as_object_mut().expect("object");
    for field in [
        "replicas",
        "updatedReplicas",
        "readyReplicas",
        "availableReplicas",
        "unavailableReplicas",
    ] {
        if object[field] == 0 {
            object.remove(field);
        }
    }
    (status, recheck)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn deployment(status: Value) -> Value {
        json!({"metadata": {"generation": 2},
            "spec": {"replicas": 3, "progressDeadlineSeconds": 60}, "status": status})
    }

    fn reason(status: &Value, kind: &str) -> String {
        status["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["type"] == kind)
            .unwrap()["reason"]
            .as_str()
            .unwrap()
            .to_string()
    }

    #[test]
    fn a_finished_rollout_is_available_and_progressed() {
        let t = Totals {
            replicas: 3,
            updated: 3,
            ready: 3,
            available: 3,
        };
        let (status, recheck) = compute(
            &deployment(json!({})),
            &t,
            0,
            &Progress::Still("web-abc".into()),
            at("2026-01-01T00:00:00Z"),
        );
        assert_eq!(reason(&status, "Available"), "MinimumReplicasAvailable");
        assert_eq!(reason(&status, "Progressing"), "NewReplicaSetAvailable");
        assert_eq!(status["observedGeneration"], 2);
        assert!(status.get("unavailableReplicas").is_none());
        assert!(recheck.is_none());
    }

    #[test]
    fn a_stalled_rollout_times_out_after_the_progress_deadline() {
        let t = Totals {
            replicas: 4,
            updated: 1,
            ready: 3,
            available: 3,
        };
        let started = deployment(
            json!({"conditions": [{"type": "Progressing", "status": "True",
            "reason": "ReplicaSetUpdated", "lastUpdateTime": "2026-01-01T00:00:00Z",
            "lastTransitionTime": "2026-01-01T00:00:00Z"}]}),
        );
        let (status, recheck) = compute(
            &started,
            &t,
            0,
            &Progress::Still("web-new".into()),
            at("2026-01-01T00:00:30Z"),
        );
        assert_eq!(reason(&status, "Progressing"), "ReplicaSetUpdated");
        assert_eq!(recheck, Some(std::time::Duration::from_secs(30)));
        let (status, _) = compute(
            &started,
            &t,
            0,
            &Progress::Still("web-new".into()),
            at("2026-01-01T00:01:01Z"),
        );
        assert_eq!(reason(&status, "Progressing"), "ProgressDeadlineExceeded");
    }
}
