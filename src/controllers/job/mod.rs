//! The Job controller (batch/v1): runs pods until `completions` succeed (NonIndexed) or every
//! index `0..completions` has succeeded once (Indexed), never more than `parallelism` at a
//! time. It fails the Job past `backoffLimit` failures (in-place restarts count under
//! `restartPolicy: OnFailure`), `backoffLimitPerIndex`/`maxFailedIndexes`,
//! `activeDeadlineSeconds`, or a `podFailurePolicy` rule; it completes it early on a
//! `successPolicy`; and it handles `suspend`, `ttlSecondsAfterFinished` and skiff's
//! `skiff.dev/after` dependencies ([`dependencies`]). The rules are pure functions in
//! [`policy`].
//!
//! # Counting every pod exactly once
//!
//! As in Kubernetes, each pod carries the `batch.kubernetes.io/job-tracking` finalizer and a
//! finished pod is recorded in `status.uncountedTerminatedPods` before its finalizer goes and
//! it moves into the counters ([`tracking`]), so a pod is never counted twice nor lost, across
//! server restarts too.
//!
//! # Finishing
//!
//! Also as in Kubernetes (1.31 on), the decision comes first: `SuccessCriteriaMet` or
//! `FailureTarget` is set and the remaining pods are terminated; `Complete` or `Failed` (with
//! the same reason) follows once no pod of the Job is still running.

pub mod dependencies;
mod indexes;
pub mod policy;
pub mod tracking;

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use self::dependencies::Gate;
use self::policy::FailureAction;
use self::tracking::{Counts, has_finalizer};
use super::events::{EventType, Recorder};
use super::informer::{
    Cache, Informers, controller_ref, controller_uid, is_deleting, is_settled, key_of, uid,
};
use super::pods::{is_ready, is_terminal};
use super::replicaset::pod_from_template;
use super::runner::{self, Action, Queue};
use super::writes;
use crate::api::error::{ApiError, Reason};
use crate::api::objects::{Objects, Propagation, WriteOptions, name_of, timestamp};
use crate::api::resources::by_plural;
use crate::store::ObjectKey;

const MANAGER: &str = "job-controller";
/// The finalizer that keeps a Job's pod until the Job has counted it.
pub const TRACKING_FINALIZER: &str = "batch.kubernetes.io/job-tracking";
/// Annotation and label carrying an Indexed Job pod's index.
pub const INDEX_KEY: &str = "batch.kubernetes.io/job-completion-index";

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
    // A Job that changes may open (or fail) the Jobs that run after it.
    {
        let jobs = jobs.clone();
        let queue = queue.clone();
        informers.on(job_resource, move |change| {
            let name = name_of(change.object);
            let ns = change.object["metadata"]["namespace"].as_str();
            for job in jobs.list(ns) {
                if dependencies::after(&job).iter().any(|n| n == name) {
                    queue.add(key_of(job_resource, &job));
                }
            }
        });
    }
    let pods = informers.cache(pod_resource);
    let ctx = Arc::new(Ctx {
        recorder: Recorder::new(objects.clone(), MANAGER, None),
        objects: objects.clone(),
        jobs: jobs.clone(),
        pods,
        last_failure: Mutex::new(HashMap::new()),
    });
    runner::start(MANAGER, queue, 4, ctx, jobs, |ctx, key| async move {
        reconcile(&ctx, &key).await
    });
}

fn index_of(pod: &Value) -> Option<i64> {
    pod["metadata"]["annotations"][INDEX_KEY]
        .as_str()
        .and_then(|i| i.parse().ok())
}

fn annotation_count(pod: &Value, key: &str) -> i64 {
    pod["metadata"]["annotations"][key]
        .as_str()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
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

fn condition_true(job: &Value, kind: &str) -> bool {
    job["status"]["conditions"].as_array().is_some_and(|cs| {
        cs.iter()
            .any(|c| c["type"] == kind && c["status"] == "True")
    })
}

/// The reason and message of a True condition.
fn condition_reason(job: &Value, kind: &str) -> Option<(String, String)> {
    job["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == kind && c["status"] == "True")
        .map(|c| {
            (
                c["reason"].as_str().unwrap_or_default().to_string(),
                c["message"].as_str().unwrap_or_default().to_string(),
            )
        })
}

/// What the Job's `podFailurePolicy` does with a failed pod (Count without a policy).
fn failure_action(job: &Value, pod: &Value) -> (FailureAction, Option<String>) {
    match policy::match_failure_policy(&job["spec"]["podFailurePolicy"], pod) {
        Some((action, message)) => (action, Some(message)),
        None => (FailureAction::Count, None),
    }
}

/// When a failed pod finished: the latest container finish time.
fn finished_at(pod: &Value) -> Option<DateTime<Utc>> {
    ["containerStatuses", "initContainerStatuses"]
        .iter()
        .filter_map(|kind| pod["status"][*kind].as_array())
        .flatten()
        .filter_map(|c| c["state"]["terminated"]["finishedAt"].as_str())
        .filter_map(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc))
        .max()
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

async fn write_status(ctx: &Ctx, job: &Arc<Value>, status: &Value) -> Result<Arc<Value>, ApiError> {
    writes::write_status(&ctx.objects, &ctx.jobs, job, status, MANAGER).await
}

async fn remove_finalizer(ctx: &Ctx, pod: &Arc<Value>) -> Result<(), ApiError> {
    let pod_uid = uid(pod).to_string();
    match ctx
        .objects
        .modify_cached(ctx.pods.resource(), pod, None, MANAGER, |p| {
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
    let deletes = pods
        .iter()
        .map(|pod| writes::delete(&ctx.objects, &ctx.pods, pod));
    futures::future::try_join_all(deletes).await?;
    Ok(())
}

/// Updates the Job's retry record: a success resets it, failures add to it.
fn note_failures(ctx: &Ctx, job: &Value, successes: usize, failures: i64) {
    let mut record = ctx.last_failure.lock().unwrap_or_else(|p| p.into_inner());
    let id = uid(job).to_string();
    if successes > 0 {
        record.remove(&id);
    }
    if failures > 0 {
        let before = record.get(&id).map_or(0, |(n, _)| *n);
        record.insert(id, (before + failures, tokio::time::Instant::now()));
    }
}

/// Per index of an Indexed Job: failures counted so far, failures ignored so far, and when
/// the last counted one happened (for the per-index retry delay).
#[derive(Default, Clone, Copy)]
struct IndexFailures {
    counted: i64,
    ignored: i64,
    last: Option<DateTime<Utc>>,
}

fn index_failures(job: &Value, pods: &[Arc<Value>]) -> HashMap<i64, IndexFailures> {
    let mut by_index: HashMap<i64, IndexFailures> = HashMap::new();
    for pod in pods {
        let Some(index) = index_of(pod) else { continue };
        let mut counted = annotation_count(pod, policy::INDEX_FAILURE_COUNT);
        let mut ignored = annotation_count(pod, policy::INDEX_IGNORED_FAILURE_COUNT);
        let failed = pod["status"]["phase"] == "Failed";
        if failed {
            match failure_action(job, pod).0 {
                FailureAction::Ignore => ignored += 1,
                _ => counted += 1,
            }
        }
        let entry = by_index.entry(index).or_default();
        entry.counted = entry.counted.max(counted);
        entry.ignored = entry.ignored.max(ignored);
        if failed && let Some(at) = finished_at(pod) {
            entry.last = Some(entry.last.map_or(at, |l| l.max(at)));
        }
    }
    by_index
}

/// Why the Job must end now, if it must: the condition to aim for (`SuccessCriteriaMet` or
/// `FailureTarget`), its reason and message.
fn decide(
    job: &Value,
    active: &[Arc<Value>],
    counts: &Counts,
    gate: &Gate,
    deadline: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Option<(&'static str, &'static str, String)> {
    let spec = &job["spec"];
    let indexed = spec["completionMode"] == "Indexed";
    let completions = spec["completions"].as_i64();
    let (succeeded, failed) = (counts.succeeded, counts.failed);
    let (completed, failed_indexes) = (&counts.completed, &counts.failed_indexes);
    let backoff_limit = spec["backoffLimit"].as_i64().unwrap_or(6);
    let success = |reason, message: &str| Some(("SuccessCriteriaMet", reason, message.to_string()));
    let failure = |reason, message: &str| Some(("FailureTarget", reason, message.to_string()));
    match gate {
        Gate::Failed(message) => return failure("DependencyFailed", message),
        Gate::Cycle(message) => return failure("DependencyCycle", message),
        Gate::Open | Gate::Waiting(_) => {}
    }
    if indexed && let Some(rule) = policy::met_success_rule(&spec["successPolicy"], completed) {
        return success("SuccessPolicy", &format!("Matched rules at index {rule}"));
    }
    let total = completions.unwrap_or(1);
    if indexed && failed_indexes.is_empty() && completed.len() as i64 >= total {
        return success(
            "CompletionsReached",
            "Reached expected number of succeeded pods",
        );
    }
    if !indexed
        && match completions {
            Some(c) => succeeded >= c,
            None => succeeded > 0 && active.is_empty(),
        }
    {
        return success(
            "CompletionsReached",
            "Reached expected number of succeeded pods",
        );
    }
    let in_place_restarts = spec["template"]["spec"]["restartPolicy"] == "OnFailure" && {
        let pods: Vec<&Value> = active.iter().map(|p| p.as_ref()).collect();
        policy::past_restart_limit(policy::restarts(&pods), backoff_limit)
    };
    if failed > backoff_limit || in_place_restarts {
        return failure(
            "BackoffLimitExceeded",
            "Job has reached the specified backoff limit",
        );
    }
    if let Some(max) = spec["maxFailedIndexes"].as_i64()
        && failed_indexes.len() as i64 > max
    {
        return failure(
            "MaxFailedIndexesExceeded",
            "Job has exceeded the specified maximal number of failed indexes",
        );
    }
    if indexed
        && !failed_indexes.is_empty()
        && (completed.len() + failed_indexes.len()) as i64 >= total
    {
        return failure("FailedIndexes", "Job has failed indexes");
    }
    if deadline.is_some_and(|d| d <= now) {
        return failure(
            "DeadlineExceeded",
            "Job was active longer than specified deadline",
        );
    }
    None
}

async fn reconcile(ctx: &Arc<Ctx>, key: &ObjectKey) -> Result<Action, ApiError> {
    let Some(job) = ctx.jobs.get(&key.namespace, &key.name) else {
        // The Job is gone: its pods must not keep the tracking finalizer.
        let orphans: Vec<Arc<Value>> = ctx
            .pods
            .list(Some(&key.namespace))
            .into_iter()
            .filter(|pod| {
                has_finalizer(pod)
                    && controller_ref(pod)
                        .is_some_and(|r| r["kind"] == "Job" && r["name"] == key.name.as_str())
            })
            .collect();
        release(ctx, orphans.iter()).await?;
        return Ok(Action::AwaitChange);
    };
    let ns = key.namespace.as_str();
    // Finished pods already counted and released play no further part (but for per-index
    // failure counts): a Job of 10,000 completions need not look at them on every pass.
    let recorded = tracking::recorded(&job);
    let mut pods = ctx.pods.unsettled_controlled_by(uid(&job));
    // Settled pods (finished, no finalizer) matter only while the status still lists them.
    pods.extend(
        recorded
            .iter()
            .filter_map(|u| ctx.pods.by_uid(u))
            .filter(|p| is_settled(p) && controller_uid(p) == Some(uid(&job))),
    );
    pods.retain(|p| !is_terminal(p) || has_finalizer(p) || recorded.contains(uid(p)));
    let by_uid: HashMap<&str, &Arc<Value>> = pods.iter().map(|p| (uid(p), p)).collect();
    let mut status = job["status"].clone();
    let tally = tracking::tally(&job, &by_uid);
    let counts = tracking::apply(&job, &mut status, &tally, &by_uid);
    let own_failures = tally
        .new_failures
        .iter()
        .filter(|p| !lost_with_the_server(p))
        .count() as i64;
    note_failures(ctx, &job, tally.new_successes, own_failures);
    // Pods being deleted that never finished: nothing to count, just release them.
    let mut releases: Vec<&Arc<Value>> = tally.release.clone();
    releases.extend(
        pods.iter()
            .filter(|p| is_deleting(p) && !is_terminal(p) && has_finalizer(p)),
    );
    let active: Vec<Arc<Value>> = pods
        .iter()
        .filter(|p| !is_terminal(p) && !is_deleting(p))
        .cloned()
        .collect();
    let terminating = pods
        .iter()
        .filter(|p| is_deleting(p) && !is_terminal(p))
        .count();

    if condition_true(&job, "Complete") || condition_true(&job, "Failed") || is_deleting(&job) {
        if !active.is_empty() {
            delete_pods(ctx, &active).await?;
        }
        let job = write_status(ctx, &job, &status).await?;
        release(ctx, releases.into_iter()).await?;
        return ttl(ctx, &job).await;
    }

    let spec = &job["spec"];
    let indexed = spec["completionMode"] == "Indexed";
    let parallelism = spec["parallelism"].as_i64().unwrap_or(1).max(0);
    let completions = spec["completions"].as_i64();
    let now = Utc::now();
    let gate = dependencies::gate(&job, |name| ctx.jobs.get(ns, name));
    let started = status["startTime"]
        .as_str()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc));
    let deadline = spec["activeDeadlineSeconds"]
        .as_i64()
        .zip(started)
        .map(|(secs, start)| start + chrono::Duration::seconds(secs));

    // The decision to finish: already taken, or taken now.
    let target = if let Some((reason, message)) = condition_reason(&job, "SuccessCriteriaMet") {
        Some(("SuccessCriteriaMet", reason, message))
    } else if let Some((reason, message)) = condition_reason(&job, "FailureTarget") {
        Some(("FailureTarget", reason, message))
    } else {
        let decision = match &tally.fail_job {
            Some(message) => Some(("FailureTarget", "PodFailurePolicy", message.clone())),
            None => decide(&job, &active, &counts, &gate, deadline, now),
        };
        decision.map(|(kind, reason, message)| {
            set_condition(&mut status, kind, "True", reason, &message);
            (kind, reason.to_string(), message)
        })
    };
    if let Some((kind, reason, message)) = target {
        if !active.is_empty() {
            delete_pods(ctx, &active).await?;
        }
        let remaining = terminating + active.len();
        let all_counted = tally.uncounted_succeeded.is_empty() && tally.uncounted_failed.is_empty();
        let finished = remaining == 0 && all_counted;
        if finished {
            if kind == "SuccessCriteriaMet" {
                set_condition(&mut status, "Complete", "True", &reason, &message);
                status["completionTime"] = json!(timestamp(now));
                ctx.recorder
                    .record(&job, EventType::Normal, "Completed", "Job completed");
            } else {
                set_condition(&mut status, "Failed", "True", &reason, &message);
                ctx.recorder
                    .record(&job, EventType::Warning, &reason, &message);
            }
        }
        status["active"] = json!(0);
        status["ready"] = json!(0);
        status["terminating"] = json!(remaining);
        let job = write_status(ctx, &job, &status).await?;
        release(ctx, releases.into_iter()).await?;
        return if finished {
            ttl(ctx, &job).await
        } else {
            Ok(Action::AwaitChange)
        };
    }

    // Suspended (by spec, or waiting for the Jobs it runs after): no pods; the clock stops.
    let waiting_for = match &gate {
        Gate::Waiting(names) => Some(names.join(", ")),
        _ => None,
    };
    if spec["suspend"].as_bool().unwrap_or(false) || waiting_for.is_some() {
        if !active.is_empty() {
            delete_pods(ctx, &active).await?;
        }
        let (reason, message) = match &waiting_for {
            Some(names) => (
                "AwaitingDependencies",
                format!("Waiting for Jobs to complete: {names}"),
            ),
            None => ("JobSuspended", "Job suspended".to_string()),
        };
        if condition_reason(&job, "Suspended").is_none_or(|(r, m)| r != reason || m != message) {
            set_condition(&mut status, "Suspended", "True", reason, &message);
            ctx.recorder
                .record(&job, EventType::Normal, "Suspended", &message);
        }
        status["active"] = json!(0);
        status["ready"] = json!(0);
        status["terminating"] = json!(terminating + active.len());
        if let Some(o) = status.as_object_mut() {
            o.remove("startTime");
        }
        write_status(ctx, &job, &status).await?;
        release(ctx, releases.into_iter()).await?;
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
    let per_index = spec["backoffLimitPerIndex"].is_i64();
    let wait = if per_index {
        None
    } else {
        let last = ctx
            .last_failure
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(uid(&job))
            .copied();
        last.map(|(failures, at)| {
            (at + policy::failure_backoff(failures))
                .saturating_duration_since(tokio::time::Instant::now())
        })
        .filter(|d| !d.is_zero())
    };
    let mut created: Vec<(Option<i64>, IndexFailures)> = Vec::new();
    let mut index_wait: Option<Duration> = None;
    if indexed {
        let total = completions.unwrap_or(1);
        let running: BTreeSet<i64> = active.iter().filter_map(|p| index_of(p)).collect();
        let room = (parallelism - active.len() as i64).max(0) as usize;
        let failures = if per_index {
            index_failures(&job, &ctx.pods.controlled_by(uid(&job)))
        } else {
            HashMap::new()
        };
        if wait.is_none() {
            let open = counts
                .completed
                .missing_below(total)
                .filter(|i| !running.contains(i) && !counts.failed_indexes.contains(*i));
            for index in open {
                if created.len() >= room {
                    break;
                }
                let record = failures.get(&index).copied().unwrap_or_default();
                if let Some(last) = record.last {
                    let due = last
                        + chrono::Duration::from_std(policy::failure_backoff(record.counted))
                            .unwrap_or_default();
                    if due > now {
                        let left = (due - now).to_std().unwrap_or_default();
                        index_wait = Some(index_wait.map_or(left, |w| w.min(left)));
                        continue;
                    }
                }
                created.push((Some(index), record));
            }
        }
    } else {
        let want = match completions {
            Some(c) => parallelism.min(c - counts.succeeded).max(0),
            None if counts.succeeded > 0 => 0,
            None => parallelism,
        };
        let have = active.len() as i64;
        if have > want {
            let mut extra = active.clone();
            extra.sort_by_key(|p| is_ready(p));
            delete_pods(ctx, &extra[..(have - want) as usize]).await?;
        } else if wait.is_none() {
            created.extend(std::iter::repeat_n(
                (None, IndexFailures::default()),
                (want - have) as usize,
            ));
        }
    }
    // The new pods and the status (which counts them as active) are written together; a
    // create that fails is corrected by the next reconcile.
    status["active"] = json!(active.len() + created.len());
    status["ready"] = json!(active.iter().filter(|p| is_ready(p)).count());
    status["terminating"] = json!(terminating);
    if status["uncountedTerminatedPods"].is_null() {
        status["uncountedTerminatedPods"] = json!({});
    }
    let (written, ()) = futures::join!(
        write_status(ctx, &job, &status),
        create_pods(ctx, &job, &created, per_index)
    );
    written?;
    release(ctx, releases.into_iter()).await?;
    let mut next = wait.or(index_wait);
    if let Some(d) = deadline {
        let left = (d - now).to_std().unwrap_or_default();
        next = Some(next.map_or(left, |n| n.min(left)));
    }
    Ok(match next {
        Some(d) => Action::Requeue(d + Duration::from_millis(20)),
        None => Action::AwaitChange,
    })
}

/// Removes the tracking finalizer from the pods, in one round of concurrent writes (they
/// share the store's group commit).
async fn release<'a>(
    ctx: &Arc<Ctx>,
    pods: impl Iterator<Item = &'a Arc<Value>>,
) -> Result<(), ApiError> {
    let removals = pods.map(|pod| {
        let (ctx, pod) = (ctx.clone(), pod.clone());
        async move { remove_finalizer(&ctx, &pod).await }
    });
    writes::in_parallel(removals)
        .await
        .into_iter()
        .collect::<Result<(), ApiError>>()
}

/// Creates the Job's new pods (Indexed: one per index, with its failure counts).
async fn create_pods(
    ctx: &Arc<Ctx>,
    job: &Value,
    created: &[(Option<i64>, IndexFailures)],
    per_index: bool,
) {
    let ns = job["metadata"]["namespace"].as_str().unwrap_or_default();
    let creates = created.iter().map(|(index, failures)| {
        let mut pod = job_pod(job, *index);
        if per_index {
            let annotations = &mut pod["metadata"]["annotations"];
            annotations[policy::INDEX_FAILURE_COUNT] = json!(failures.counted.to_string());
            if failures.ignored > 0 {
                annotations[policy::INDEX_IGNORED_FAILURE_COUNT] =
                    json!(failures.ignored.to_string());
            }
        }
        let (ctx, ns) = (ctx.clone(), ns.to_string());
        async move {
            let options = WriteOptions::controller(MANAGER);
            ctx.objects
                .create(ctx.pods.resource(), &ns, pod, &options)
                .await
        }
    });
    for result in writes::in_parallel(creates).await {
        // A failed create is retried by the next reconcile, which counts the pods again.
        let _ = writes::note_create(&ctx.recorder, &ctx.pods, job, result);
    }
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
    writes::delete_with(&ctx.objects, &ctx.jobs, job, Some(Propagation::Background)).await?;
    Ok(Action::AwaitChange)
}

#[cfg(test)]
mod tests {
    use super::*;

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
