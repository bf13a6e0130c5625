//! The Job controller (batch/v1): runs pods until `completions` succeed (NonIndexed) or every
//! index `0..completions` has succeeded once (Indexed), never more than `parallelism` at a
//! time; fails the Job past `backoffLimit` failures or `activeDeadlineSeconds`; `suspend`;
//! `ttlSecondsAfterFinished`.
//!
//! # Counting every pod exactly once
//!
//! As in Kubernetes, each pod carries the `batch.kubernetes.io/job-tracking` finalizer. A
//! finished pod is first recorded by uid in `status.uncountedTerminatedPods`, then its
//! finalizer is removed, then it is moved into `succeeded`/`failed` (and
//! `completedIndexes`). A crash between any two steps is repaired by the next reconcile, so a
//! pod is never counted twice nor lost, across server restarts too.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::events::{EventType, Recorder};
use super::informer::{Cache, Informers, controller_ref, is_deleting, uid};
use super::pods::{is_ready, is_terminal};
use super::replicaset::pod_from_template;
use super::runner::{self, Action, Queue};
use super::writes;
use crate::api::error::{ApiError, Reason};
use crate::api::objects::{DeleteOptions, Objects, Propagation, WriteOptions, name_of, timestamp};
use crate::api::resources::by_plural;
use crate::store::ObjectKey;

const MANAGER: &str = "job-controller";
const RESYNC: Duration = Duration::from_secs(300);
/// The finalizer that keeps a Job's pod until the Job has counted it.
pub const TRACKING_FINALIZER: &str = "batch.kubernetes.io/job-tracking";
/// Annotation and label carrying an Indexed Job pod's index.
pub const INDEX_KEY: &str = "batch.kubernetes.io/job-completion-index";
/// First delay before recreating a pod after a failure (Kubernetes: 10 s, doubling to 6 min).
const FAILURE_BACKOFF: Duration = Duration::from_secs(10);
const FAILURE_BACKOFF_MAX: Duration = Duration::from_secs(360);

struct Ctx {
    objects: Objects,
    jobs: Arc<Cache>,
    pods: Arc<Cache>,
    recorder: Recorder,
    /// Per Job (by uid): failures since its last success and when the last one was counted,
    /// for the retry delay (as Kubernetes' backoff record; it resets on success).
    last_failure: Mutex<HashMap<String, (i64, tokio::time::Instant)>>,
}

/// Registers the controller and starts its workers.
pub fn register(objects: &Objects, informers: &mut Informers) {
    let job_resource = by_plural("batch", "v1", "jobs").expect("jobs are served");
    let pod_resource = by_plural("", "v1", "pods").expect("pods are served");
    let queue = Queue::default();
    let jobs = informers.queue_changes(job_resource, &queue);
    informers.queue_owners(pod_resource, "Job", job_resource, &queue);
    let pods = informers.cache(pod_resource);
    let ctx = Arc::new(Ctx {
        recorder: Recorder::new(objects.clone(), MANAGER, None),
        objects: objects.clone(),
        jobs: jobs.clone(),
        pods,
        last_failure: Mutex::new(HashMap::new()),
    });
    runner::run(
        MANAGER,
        queue,
        4,
        move |key| {
            let ctx = ctx.clone();
            async move { reconcile(&ctx, &key).await }
        },
        RESYNC,
        move || jobs.keys(),
    );
}

/// Parses `completedIndexes` ("1,3-5,7") into a set.
pub fn parse_indexes(text: &str) -> BTreeSet<i64> {
    let mut set = BTreeSet::new();
    for part in text.split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                if let (Ok(a), Ok(b)) = (a.parse::<i64>(), b.parse::<i64>()) {
                    set.extend(a..=b);
                }
            }
            None => {
                if let Ok(n) = part.parse() {
                    set.insert(n);
                }
            }
        }
    }
    set
}

/// Formats indexes as Kubernetes does: ascending, consecutive runs as `a-b`.
pub fn format_indexes(set: &BTreeSet<i64>) -> String {
    let mut parts = Vec::new();
    let mut iter = set.iter().copied().peekable();
    while let Some(start) = iter.next() {
        let mut end = start;
        while iter.peek() == Some(&(end + 1)) {
            end = iter.next().expect("peeked");
        }
        parts.push(if start == end {
            start.to_string()
        } else {
            format!("{start}-{end}")
        });
    }
    parts.join(",")
}

/// The retry delay after `failures` consecutive failures: 10 s doubling, at most 6 min.
pub fn failure_backoff(failures: i64) -> Duration {
    if failures <= 0 {
        return Duration::ZERO;
    }
    let exp = (failures - 1).min(10) as u32;
    FAILURE_BACKOFF
        .saturating_mul(1 << exp)
        .min(FAILURE_BACKOFF_MAX)
}

fn index_of(pod: &Value) -> Option<i64> {
    pod["metadata"]["annotations"][INDEX_KEY]
        .as_str()
        .and_then(|i| i.parse().ok())
}

/// Whether the pod failed only because its guest died with a previous server process.
fn lost_with_the_server(pod: &Value) -> bool {
    pod["status"]["containerStatuses"]
        .as_array()
        .is_some_and(|cs| {
            cs.iter()
                .any(|c| c["state"]["terminated"]["reason"] == "ContainerStatusUnknown")
        })
}

fn has_finalizer(pod: &Value) -> bool {
    pod["metadata"]["finalizers"]
        .as_array()
        .is_some_and(|f| f.iter().any(|v| v == TRACKING_FINALIZER))
}

fn condition_true(job: &Value, kind: &str) -> bool {
    job["status"]["conditions"].as_array().is_some_and(|cs| {
        cs.iter()
            .any(|c| c["type"] == kind && c["status"] == "True")
    })
}

fn succeeded_pod(pod: &Value) -> bool {
    pod["status"]["phase"] == "Succeeded"
}

fn set_condition(status: &mut Value, kind: &str, state: &str, reason: &str, message: &str) {
    let now = timestamp(Utc::now());
    let mut conditions: Vec<Value> = status["conditions"].as_array().cloned().unwrap_or_default();
    match conditions.iter_mut().find(|c| c["type"] == kind) {
        Some(c) if c["status"] == state => {
            c["reason"] = json!(reason);
            c["message"] = json!(message);
            c["lastProbeTime"] = json!(now);
        }
        Some(c) => {
            *c = json!({"type": kind, "status": state, "reason": reason, "message": message,
                "lastProbeTime": now, "lastTransitionTime": now});
        }
        None => conditions.push(json!({"type": kind, "status": state, "reason": reason,
            "message": message, "lastProbeTime": now, "lastTransitionTime": now})),
    }
    status["conditions"] = json!(conditions);
}

async fn write_status(ctx: &Ctx, job: &Value, status: &Value) -> Result<Arc<Value>, ApiError> {
    writes::write_status(&ctx.objects, &ctx.jobs, job, status, MANAGER).await
}

async fn remove_finalizer(ctx: &Ctx, pod: &Value) -> Result<(), ApiError> {
    let ns = pod["metadata"]["namespace"].as_str().unwrap_or_default();
    let pod_uid = uid(pod).to_string();
    match ctx
        .objects
        .modify(ctx.pods.resource(), ns, name_of(pod), None, MANAGER, |p| {
            if uid(p) != pod_uid || !has_finalizer(p) {
                return false;
            }
            let kept: Vec<Value> = p["metadata"]["finalizers"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .filter(|f| f != TRACKING_FINALIZER)
                .collect();
            p["metadata"]["finalizers"] = json!(kept);
            true
        })
        .await
    {
        Ok(Some(updated)) => {
            ctx.pods.observe(updated);
            Ok(())
        }
        Ok(None) => Ok(()),
        Err(e) if e.reason == Reason::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

async fn delete_pods(ctx: &Ctx, pods: &[Arc<Value>]) -> Result<(), ApiError> {
    for pod in pods {
        writes::delete(&ctx.objects, &ctx.pods, pod).await?;
    }
    Ok(())
}

/// Step 1-3 of exact counting (see the module docs). Returns the Job as it now stands.
async fn count_finished(
    ctx: &Ctx,
    job: Arc<Value>,
    pods: &[Arc<Value>],
) -> Result<Arc<Value>, ApiError> {
    let uncounted = |job: &Value, which: &str| -> Vec<String> {
        job["status"]["uncountedTerminatedPods"][which]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut succeeded = uncounted(&job, "succeeded");
    let mut failed = uncounted(&job, "failed");
    let finished: Vec<&Arc<Value>> = pods
        .iter()
        .filter(|p| is_terminal(p) && has_finalizer(p))
        .collect();
    let mut added = false;
    for pod in &finished {
        let id = uid(pod).to_string();
        if succeeded.contains(&id) || failed.contains(&id) {
            continue;
        }
        if succeeded_pod(pod) {
            succeeded.push(id);
        } else {
            failed.push(id);
        }
        added = true;
    }
    let mut job = job;
    if added {
        let mut status = job["status"].clone();
        status["uncountedTerminatedPods"] = json!({"succeeded": succeeded, "failed": failed});
        job = write_status(ctx, &job, &status).await?;
    }
    if succeeded.is_empty() && failed.is_empty() {
        return Ok(job);
    }
    // Step 2: let the recorded pods go.
    for pod in &finished {
        remove_finalizer(ctx, pod).await?;
    }
    // Step 3: move them into the counters.
    let mut status = job["status"].clone();
    let indexed = job["spec"]["completionMode"] == "Indexed";
    let mut completed = parse_indexes(status["completedIndexes"].as_str().unwrap_or_default());
    let mut new_successes = 0;
    for id in &succeeded {
        if indexed
            && let Some(index) = pods
                .iter()
                .find(|p| uid(p) == id.as_str())
                .and_then(|p| index_of(p))
        {
            completed.insert(index);
        }
        new_successes += 1;
    }
    let counted_succeeded = status["succeeded"].as_i64().unwrap_or(0) + new_successes;
    status["succeeded"] = json!(if indexed {
        completed.len() as i64
    } else {
        counted_succeeded
    });
    status["failed"] = json!(status["failed"].as_i64().unwrap_or(0) + failed.len() as i64);
    if indexed {
        status["completedIndexes"] = json!(format_indexes(&completed));
    }
    status["uncountedTerminatedPods"] = json!({});
    {
        let mut record = ctx.last_failure.lock().unwrap_or_else(|p| p.into_inner());
        let id = uid(&job).to_string();
        if new_successes > 0 {
            record.remove(&id);
        }
        // Pods whose guests died with a previous server process count as failed, but they
        // did not fail on their own, so they do not delay the retries.
        let own_failures = failed
            .iter()
            .filter(|id| {
                pods.iter()
                    .find(|p| uid(p) == id.as_str())
                    .is_none_or(|p| !lost_with_the_server(p))
            })
            .count() as i64;
        if own_failures > 0 {
            let before = record.get(&id).map_or(0, |(n, _)| *n);
            record.insert(id, (before + own_failures, tokio::time::Instant::now()));
        }
    }
    write_status(ctx, &job, &status).await
}

async fn reconcile(ctx: &Ctx, key: &ObjectKey) -> Result<Action, ApiError> {
    let Some(job) = ctx.jobs.get(&key.namespace, &key.name) else {
        // The Job is gone: its pods must not keep the tracking finalizer.
        for pod in ctx.pods.list(Some(&key.namespace)) {
            let orphaned = controller_ref(&pod)
                .is_some_and(|r| r["kind"] == "Job" && r["name"] == key.name.as_str());
            if orphaned && has_finalizer(&pod) {
                remove_finalizer(ctx, &pod).await?;
            }
        }
        return Ok(Action::AwaitChange);
    };
    let ns = key.namespace.as_str();
    let pods: Vec<Arc<Value>> = ctx.pods.controlled_by(uid(&job));
    let job = count_finished(ctx, job, &pods).await?;
    let finished = condition_true(&job, "Complete") || condition_true(&job, "Failed");
    // Pods being deleted that never finished: nothing to count, just release them.
    for pod in pods
        .iter()
        .filter(|p| is_deleting(p) && !is_terminal(p) && has_finalizer(p))
    {
        remove_finalizer(ctx, pod).await?;
    }
    let active: Vec<Arc<Value>> = pods
        .iter()
        .filter(|p| !is_terminal(p) && !is_deleting(p))
        .cloned()
        .collect();
    let terminating = pods
        .iter()
        .filter(|p| is_deleting(p) && !is_terminal(p))
        .count();

    if finished || is_deleting(&job) {
        if !active.is_empty() {
            delete_pods(ctx, &active).await?;
        }
        return ttl(ctx, &job).await;
    }

    let spec = &job["spec"];
    let mut status = job["status"].clone();
    let indexed = spec["completionMode"] == "Indexed";
    let parallelism = spec["parallelism"].as_i64().unwrap_or(1).max(0);
    let completions = spec["completions"].as_i64();
    let succeeded = status["succeeded"].as_i64().unwrap_or(0);
    let failed = status["failed"].as_i64().unwrap_or(0);
    let backoff_limit = spec["backoffLimit"].as_i64().unwrap_or(6);
    let now = Utc::now();
    let completed = parse_indexes(status["completedIndexes"].as_str().unwrap_or_default());

    // Finished?
    let complete = match completions {
        Some(c) if indexed => completed.len() as i64 >= c,
        Some(c) => succeeded >= c,
        None => succeeded > 0 && active.is_empty(),
    };
    let started = status["startTime"]
        .as_str()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc));
    let deadline = spec["activeDeadlineSeconds"]
        .as_i64()
        .zip(started)
        .map(|(secs, start)| start + chrono::Duration::seconds(secs));
    let failure = if failed > backoff_limit {
        Some((
            "BackoffLimitExceeded",
            "Job has reached the specified backoff limit",
        ))
    } else if deadline.is_some_and(|d| d <= now) {
        Some((
            "DeadlineExceeded",
            "Job was active longer than specified deadline",
        ))
    } else {
        None
    };
    if complete || failure.is_some() {
        if !active.is_empty() {
            delete_pods(ctx, &active).await?;
        }
        match failure.filter(|_| !complete) {
            Some((reason, message)) => {
                set_condition(&mut status, "FailureTarget", "True", reason, message);
                set_condition(&mut status, "Failed", "True", reason, message);
                ctx.recorder
                    .record(&job, EventType::Warning, reason, message);
            }
            None => {
                set_condition(
                    &mut status,
                    "SuccessCriteriaMet",
                    "True",
                    "CompletionsReached",
                    "Reached expected number of succeeded pods",
                );
                set_condition(
                    &mut status,
                    "Complete",
                    "True",
                    "CompletionsReached",
                    "Reached expected number of succeeded pods",
                );
                status["completionTime"] = json!(timestamp(now));
                ctx.recorder
                    .record(&job, EventType::Normal, "Completed", "Job completed");
            }
        }
        status["active"] = json!(0);
        status["ready"] = json!(0);
        status["terminating"] = json!(terminating + active.len());
        let job = write_status(ctx, &job, &status).await?;
        return ttl(ctx, &job).await;
    }

    // Suspended: no pods; the clock stops.
    if spec["suspend"].as_bool().unwrap_or(false) {
        if !active.is_empty() {
            delete_pods(ctx, &active).await?;
        }
        if !condition_true(&job, "Suspended") {
            set_condition(
                &mut status,
                "Suspended",
                "True",
                "JobSuspended",
                "Job suspended",
            );
            ctx.recorder
                .record(&job, EventType::Normal, "Suspended", "Job suspended");
        }
        status["active"] = json!(0);
        status["ready"] = json!(0);
        status["terminating"] = json!(terminating + active.len());
        if let Some(o) = status.as_object_mut() {
            o.remove("startTime");
        }
        write_status(ctx, &job, &status).await?;
        return Ok(Action::AwaitChange);
    }
    if condition_true(&job, "Suspended") {
        set_condition(
            &mut status,
            "Suspended",
            "False",
            "JobResumed",
            "Job resumed",
        );
        ctx.recorder
            .record(&job, EventType::Normal, "Resumed", "Job resumed");
    }
    if status["startTime"].is_null() {
        status["startTime"] = json!(timestamp(now));
    }

    // How many pods to add (after the failure backoff), or which to remove.
    let wait = {
        let last = ctx
            .last_failure
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(uid(&job))
            .copied();
        last.map(|(failures, at)| {
            (at + failure_backoff(failures)).saturating_duration_since(tokio::time::Instant::now())
        })
        .filter(|d| !d.is_zero())
    };
    let mut created = Vec::new();
    if indexed {
        let total = completions.unwrap_or(1);
        let running: BTreeSet<i64> = active.iter().filter_map(|p| index_of(p)).collect();
        let room = (parallelism - active.len() as i64).max(0);
        if wait.is_none() {
            for index in (0..total)
                .filter(|i| !completed.contains(i) && !running.contains(i))
                .take(room as usize)
            {
                created.push(Some(index));
            }
        }
    } else {
        let want = match completions {
            Some(c) => parallelism.min(c - succeeded).max(0),
            None if succeeded > 0 => 0,
            None => parallelism,
        };
        let have = active.len() as i64;
        if have > want {
            let mut extra = active.clone();
            extra.sort_by_key(|p| is_ready(p));
            delete_pods(ctx, &extra[..(have - want) as usize]).await?;
        } else if wait.is_none() {
            created.extend(std::iter::repeat_n(None, (want - have) as usize));
        }
    }
    let options = WriteOptions::controller(MANAGER);
    let creates = created.iter().map(|index| {
        let pod = job_pod(&job, *index);
        ctx.objects.create(ctx.pods.resource(), ns, pod, &options)
    });
    let mut new_active = active.len();
    for result in futures::future::join_all(creates).await {
        match result {
            Ok(written) => {
                ctx.recorder.record(
                    &job,
                    EventType::Normal,
                    "SuccessfulCreate",
                    &format!("Created pod: {}", name_of(&written.object)),
                );
                ctx.pods.observe(written.object);
                new_active += 1;
            }
            Err(error) => {
                ctx.recorder.record(
                    &job,
                    EventType::Warning,
                    "FailedCreate",
                    &format!("Error creating: {}", error.message),
                );
            }
        }
    }
    status["active"] = json!(new_active);
    status["ready"] = json!(active.iter().filter(|p| is_ready(p)).count());
    status["terminating"] = json!(terminating);
    if status["succeeded"].is_null() {
        status["succeeded"] = json!(0);
    }
    if status["failed"].is_null() {
        status["failed"] = json!(0);
    }
    if status["uncountedTerminatedPods"].is_null() {
        status["uncountedTerminatedPods"] = json!({});
    }
    write_status(ctx, &job, &status).await?;
    let mut next = wait;
    if let Some(d) = deadline {
        let left = (d - now).to_std().unwrap_or_default();
        next = Some(next.map_or(left, |n| n.min(left)));
    }
    Ok(match next {
        Some(d) => Action::Requeue(d + Duration::from_millis(20)),
        None => Action::AwaitChange,
    })
}

/// A pod for the Job; Indexed Jobs' pods carry their index.
fn job_pod(job: &Value, index: Option<i64>) -> Value {
    let name = name_of(job);
    let mut pod = pod_from_template(job, "Job", &job["spec"]["template"]);
    pod["metadata"]["finalizers"] = json!([TRACKING_FINALIZER]);
    if let Some(i) = index {
        pod["metadata"]["generateName"] = json!(format!("{name}-{i}-"));
        pod["metadata"]["annotations"][INDEX_KEY] = json!(i.to_string());
        pod["metadata"]["labels"][INDEX_KEY] = json!(i.to_string());
        pod["spec"]["hostname"] = json!(format!("{name}-{i}"));
        for kind in ["containers", "initContainers"] {
            if let Some(containers) = pod["spec"][kind].as_array_mut() {
                for c in containers {
                    let mut env = c["env"].as_array().cloned().unwrap_or_default();
                    env.retain(|e| e["name"] != "JOB_COMPLETION_INDEX");
                    env.push(json!({"name": "JOB_COMPLETION_INDEX", "value": i.to_string()}));
                    c["env"] = json!(env);
                }
            }
        }
    }
    pod
}

/// Deletes a finished Job once `ttlSecondsAfterFinished` has passed.
async fn ttl(ctx: &Ctx, job: &Value) -> Result<Action, ApiError> {
    let Some(ttl) = job["spec"]["ttlSecondsAfterFinished"].as_i64() else {
        return Ok(Action::AwaitChange);
    };
    if is_deleting(job) {
        return Ok(Action::AwaitChange);
    }
    let finished_at = job["status"]["conditions"]
        .as_array()
        .and_then(|cs| {
            cs.iter()
                .filter(|c| {
                    (c["type"] == "Complete" || c["type"] == "Failed") && c["status"] == "True"
                })
                .filter_map(|c| c["lastTransitionTime"].as_str())
                .next()
        })
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_else(Utc::now);
    let due = finished_at + chrono::Duration::seconds(ttl);
    let now = Utc::now();
    if due > now {
        return Ok(Action::Requeue((due - now).to_std().unwrap_or_default()));
    }
    let options = DeleteOptions {
        uid: Some(uid(job).to_string()),
        propagation: Some(Propagation::Background),
        ..DeleteOptions::default()
    };
    let ns = job["metadata"]["namespace"].as_str().unwrap_or_default();
    match ctx
        .objects
        .delete(ctx.jobs.resource(), ns, name_of(job), &options)
        .await
    {
        Ok(_) => Ok(Action::AwaitChange),
        Err(e) if e.reason == Reason::NotFound => Ok(Action::AwaitChange),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completed_indexes_round_trip_in_kubernetes_format() {
        let set = parse_indexes("0-2,5,7-8");
        assert_eq!(set.iter().copied().collect::<Vec<_>>(), [0, 1, 2, 5, 7, 8]);
        assert_eq!(format_indexes(&set), "0-2,5,7-8");
        assert_eq!(format_indexes(&BTreeSet::new()), "");
        assert_eq!(format_indexes(&parse_indexes("3")), "3");
    }

    #[test]
    fn failure_backoff_doubles_from_ten_seconds_to_six_minutes() {
        assert_eq!(failure_backoff(0), Duration::ZERO);
        assert_eq!(failure_backoff(1), Duration::from_secs(10));
        assert_eq!(failure_backoff(3), Duration::from_secs(40));
        assert_eq!(failure_backoff(20), Duration::from_secs(360));
    }

    #[test]
    fn indexed_pods_carry_their_index() {
        let job = json!({"apiVersion": "batch/v1", "metadata": {"name": "fan", "namespace": "ci", "uid": "u"},
            "spec": {"template": {"metadata": {"labels": {"job-name": "fan"}},
                "spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "i"}]}}}});
        let pod = job_pod(&job, Some(4));
        assert_eq!(pod["metadata"]["generateName"], "fan-4-");
        assert_eq!(pod["metadata"]["annotations"][INDEX_KEY], "4");
        assert_eq!(pod["spec"]["containers"][0]["env"][0]["value"], "4");
        assert_eq!(pod["metadata"]["finalizers"][0], TRACKING_FINALIZER);
    }
}
