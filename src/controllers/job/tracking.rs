//! Exact counting of a Job's finished pods, pipelined over reconciles as in Kubernetes.
//!
//! Each pod carries the `batch.kubernetes.io/job-tracking` finalizer. A reconcile
//! 1. records each finished pod that still holds the finalizer, by uid, in
//!    `status.uncountedTerminatedPods` (in the reconcile's one status write);
//! 2. after that write, removes those pods' finalizers;
//! 3. and moves each recorded pod whose finalizer is gone (or that is gone) out of
//!    `uncountedTerminatedPods` into `succeeded`/`failed` (and `completedIndexes`/
//!    `failedIndexes`), in the same status write as step 1 of the next batch.
//!
//! A crash between any two steps is repaired by the next reconcile: a pod is never counted
//! twice nor lost. Decisions use the effective counts (counted plus recorded), so the
//! pipeline adds no delay to them. Pure functions over the Job and its pods.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use serde_json::{Value, json};

use super::indexes::IndexSet;
use super::policy::{self, FailureAction};
use super::{TRACKING_FINALIZER, failure_action, index_of};
use crate::controllers::informer::uid;
use crate::controllers::pods::is_terminal;

/// What one reconcile does about the Job's finished pods.
#[derive(Debug, Default)]
pub struct Tally<'a> {
    /// `uncountedTerminatedPods.succeeded` after this reconcile's write.
    pub uncounted_succeeded: Vec<String>,
    /// `uncountedTerminatedPods.failed` after this reconcile's write.
    pub uncounted_failed: Vec<String>,
    /// Recorded pods moved into the counters by this write (step 3).
    pub counted_succeeded: Vec<String>,
    /// Recorded failed pods moved into the counters by this write (step 3).
    pub counted_failed: Vec<String>,
    /// Pods whose finalizer is removed once the write is done: the recorded ones that still
    /// hold it, and the failures a rule ignores (never counted).
    pub release: Vec<&'a Arc<Value>>,
    /// Pods newly recorded as succeeded in this write.
    pub new_successes: usize,
    /// Pods newly recorded as failed (or ignored) in this write, for the retry delay.
    pub new_failures: Vec<&'a Arc<Value>>,
    /// The message of a `FailJob` rule a newly recorded pod matched.
    pub fail_job: Option<String>,
}

/// Whether the pod holds the tracking finalizer.
pub fn has_finalizer(pod: &Value) -> bool {
    pod["metadata"]["finalizers"]
        .as_array()
        .is_some_and(|f| f.iter().any(|v| v == TRACKING_FINALIZER))
}

fn uncounted(job: &Value, which: &str) -> Vec<String> {
    job["status"]["uncountedTerminatedPods"][which]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(String::from)
                .collect()
        })
        .unwrap_or_default()
}

/// The uids the Job's status records as finished but not yet counted.
pub fn recorded(job: &Value) -> HashSet<String> {
    uncounted(job, "succeeded")
        .into_iter()
        .chain(uncounted(job, "failed"))
        .collect()
}

/// Works out steps 1-3 for the Job's pods (by uid).
pub fn tally<'a>(job: &Value, pods: &HashMap<&str, &'a Arc<Value>>) -> Tally<'a> {
    let mut tally = Tally::default();
    let recorded_succeeded = uncounted(job, "succeeded");
    let recorded_failed = uncounted(job, "failed");
    for (recorded, uncounted, counted) in [
        (
            &recorded_succeeded,
            &mut tally.uncounted_succeeded,
            &mut tally.counted_succeeded,
        ),
        (
            &recorded_failed,
            &mut tally.uncounted_failed,
            &mut tally.counted_failed,
        ),
    ] {
        for id in recorded {
            match pods.get(id.as_str()) {
                Some(pod) if has_finalizer(pod) => {
                    uncounted.push(id.clone());
                    tally.release.push(pod);
                }
                _ => counted.push(id.clone()),
            }
        }
    }
    let recorded: BTreeSet<&str> = recorded_succeeded
        .iter()
        .chain(&recorded_failed)
        .map(String::as_str)
        .collect();
    for pod in pods.values() {
        if !is_terminal(pod) || !has_finalizer(pod) || recorded.contains(uid(pod)) {
            continue;
        }
        tally.release.push(pod);
        if pod["status"]["phase"] == "Succeeded" {
            tally.uncounted_succeeded.push(uid(pod).to_string());
            tally.new_successes += 1;
            continue;
        }
        tally.new_failures.push(pod);
        match failure_action(job, pod) {
            (FailureAction::Ignore, _) => continue,
            (FailureAction::FailJob, Some(message)) if tally.fail_job.is_none() => {
                tally.fail_job = Some(message);
            }
            _ => {}
        }
        tally.uncounted_failed.push(uid(pod).to_string());
    }
    tally
}

/// Whether a failed pod fails its index for good: a `FailIndex` rule, or more failures
/// than `backoffLimitPerIndex`.
pub fn fails_index(job: &Value, pod: &Value) -> bool {
    let Some(limit) = job["spec"]["backoffLimitPerIndex"].as_i64() else {
        return false;
    };
    let failures = pod["metadata"]["annotations"][policy::INDEX_FAILURE_COUNT]
        .as_str()
        .and_then(|n| n.parse::<i64>().ok())
        .unwrap_or(0)
        + 1;
    failure_action(job, pod).0 == FailureAction::FailIndex || failures > limit
}

/// The Job's counts: counted so far, or counted plus recorded ("effective").
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
    /// Succeeded pods (Indexed: completed indexes).
    pub succeeded: i64,
    /// Failed pods, ignored ones aside.
    pub failed: i64,
    /// Indexes that succeeded (Indexed).
    pub completed: IndexSet,
    /// Indexes that failed for good (with `backoffLimitPerIndex`).
    pub failed_indexes: IndexSet,
}

impl Counts {
    /// The counts in a Job's status.
    pub fn of(status: &Value) -> Counts {
        Counts {
            succeeded: status["succeeded"].as_i64().unwrap_or(0),
            failed: status["failed"].as_i64().unwrap_or(0),
            completed: IndexSet::parse(status["completedIndexes"].as_str().unwrap_or_default()),
            failed_indexes: IndexSet::parse(status["failedIndexes"].as_str().unwrap_or_default()),
        }
    }

    /// Adds finished pods (by uid) to the counts.
    fn add(
        &mut self,
        job: &Value,
        succeeded: &[String],
        failed: &[String],
        pods: &HashMap<&str, &Arc<Value>>,
    ) {
        let indexed = job["spec"]["completionMode"] == "Indexed";
        for id in succeeded {
            match pods.get(id.as_str()).and_then(|p| index_of(p)) {
                Some(index) if indexed => {
                    self.completed.insert(index);
                }
                _ if indexed => {}
                _ => self.succeeded += 1,
            }
        }
        for id in failed {
            self.failed += 1;
            if let Some(pod) = pods.get(id.as_str())
                && let Some(index) = index_of(pod)
                && fails_index(job, pod)
            {
                self.failed_indexes.insert(index);
            }
        }
        if indexed {
            self.failed_indexes = self.failed_indexes.without(&self.completed);
            self.succeeded = self.completed.len() as i64;
        }
    }

    /// Writes the counts into a status.
    fn write(&self, job: &Value, status: &mut Value) {
        status["succeeded"] = json!(self.succeeded);
        status["failed"] = json!(self.failed);
        // Kubernetes omits an empty `completedIndexes` (omitempty).
        match status.as_object_mut() {
            Some(fields) if self.completed.is_empty() => {
                fields.remove("completedIndexes");
            }
            _ if job["spec"]["completionMode"] == "Indexed" => {
                status["completedIndexes"] = json!(self.completed.to_string());
            }
            _ => {}
        }
        if job["spec"]["backoffLimitPerIndex"].is_i64() {
            status["failedIndexes"] = json!(self.failed_indexes.to_string());
        }
    }
}

/// Applies the tally to `status` (steps 1 and 3) and returns the effective counts: what the
/// status counts plus what it has recorded as uncounted.
pub fn apply(
    job: &Value,
    status: &mut Value,
    tally: &Tally<'_>,
    pods: &HashMap<&str, &Arc<Value>>,
) -> Counts {
    let mut counts = Counts::of(status);
    counts.add(job, &tally.counted_succeeded, &tally.counted_failed, pods);
    counts.write(job, status);
    status["uncountedTerminatedPods"] =
        if tally.uncounted_succeeded.is_empty() && tally.uncounted_failed.is_empty() {
            json!({})
        } else {
            json!({"succeeded": tally.uncounted_succeeded, "failed": tally.uncounted_failed})
        };
    let mut effective = counts;
    effective.add(
        job,
        &tally.uncounted_succeeded,
        &tally.uncounted_failed,
        pods,
    );
    effective
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(id: &str, phase: &str, finalizer: bool, index: Option<i64>) -> Arc<Value> {
        let finalizers: Vec<&str> = if finalizer {
            vec![TRACKING_FINALIZER]
        } else {
            vec![]
        };
        let mut p = json!({"metadata": {"uid": id, "name": id, "namespace": "ns",
            "finalizers": finalizers, "annotations": {}}, "status": {"phase": phase}});
        if let Some(i) = index {
            p["metadata"]["annotations"][super::super::INDEX_KEY] = json!(i.to_string());
        }
        Arc::new(p)
    }

    fn by_uid(pods: &[Arc<Value>]) -> HashMap<&str, &Arc<Value>> {
        pods.iter().map(|p| (uid(p), p)).collect()
    }

    #[test]
    fn finished_pods_are_recorded_then_released_then_counted() {
        let job = json!({"spec": {"completionMode": "Indexed", "completions": 4},
            "status": {"succeeded": 1, "completedIndexes": "0",
                "uncountedTerminatedPods": {"succeeded": ["b", "c"]}}});
        let pods = [
            pod("a", "Succeeded", false, Some(0)),
            pod("b", "Succeeded", false, Some(1)),
            pod("c", "Succeeded", true, Some(2)),
            pod("d", "Succeeded", true, Some(3)),
            pod("e", "Running", true, Some(3)),
        ];
        let pods = by_uid(&pods);
        let t = tally(&job, &pods);
        // b lost its finalizer: counted now. c still holds it: stays recorded, released again.
        assert_eq!(t.counted_succeeded, ["b"]);
        let mut recorded = t.uncounted_succeeded.clone();
        recorded.sort();
        assert_eq!(recorded, ["c", "d"]);
        let mut released: Vec<&str> = t.release.iter().map(|p| uid(p)).collect();
        released.sort();
        assert_eq!(released, ["c", "d"]);
        assert_eq!(t.new_successes, 1);
        let mut status = job["status"].clone();
        let effective = apply(&job, &mut status, &t, &pods);
        assert_eq!(status["completedIndexes"], "0-1");
        assert_eq!(status["succeeded"], 2);
        assert_eq!(effective.completed.len(), 4);
        // A second pass over the same state changes nothing more.
        let job2 = json!({"spec": job["spec"], "status": status});
        let t2 = tally(&job2, &pods);
        assert!(t2.counted_succeeded.is_empty());
        assert_eq!(t2.new_successes, 0);
    }

    #[test]
    fn ignored_failures_are_released_without_being_recorded() {
        let job = json!({"spec": {"podFailurePolicy": {"rules": [
            {"action": "Ignore", "onExitCodes": {"operator": "In", "values": [3]}},
            {"action": "FailJob", "onExitCodes": {"operator": "In", "values": [4]}}]}},
            "status": {}});
        let mut ignored = (*pod("i", "Failed", true, None)).clone();
        ignored["status"]["containerStatuses"] =
            json!([{"name": "c", "state": {"terminated": {"exitCode": 3}}}]);
        let mut fatal = (*pod("f", "Failed", true, None)).clone();
        fatal["status"]["containerStatuses"] =
            json!([{"name": "c", "state": {"terminated": {"exitCode": 4}}}]);
        let pods = [Arc::new(ignored), Arc::new(fatal)];
        let pods = by_uid(&pods);
        let t = tally(&job, &pods);
        assert_eq!(t.uncounted_failed, ["f"]);
        assert_eq!(t.release.len(), 2);
        assert_eq!(t.new_failures.len(), 2);
        assert!(
            t.fail_job
                .as_deref()
                .unwrap()
                .contains("FailJob rule at index 1")
        );
    }

    #[test]
    fn per_index_limits_fail_indexes() {
        let job = json!({"spec": {"completionMode": "Indexed", "backoffLimitPerIndex": 1},
            "status": {"uncountedTerminatedPods": {"failed": ["x", "y"]}}});
        let mut first = (*pod("x", "Failed", false, Some(2))).clone();
        first["metadata"]["annotations"][policy::INDEX_FAILURE_COUNT] = json!("0");
        let mut second = (*pod("y", "Failed", false, Some(3))).clone();
        second["metadata"]["annotations"][policy::INDEX_FAILURE_COUNT] = json!("1");
        let pods = [Arc::new(first), Arc::new(second)];
        let pods = by_uid(&pods);
        let mut status = job["status"].clone();
        let counts = apply(&job, &mut status, &tally(&job, &pods), &pods);
        assert_eq!(counts.failed, 2);
        assert_eq!(status["failedIndexes"], "3");
    }
}
