//! The CronJob controller (batch/v1): creates a Job for each scheduled time, as Kubernetes'
//! cronjob controller v2 does. Schedules and their arithmetic are in [`schedule`].
//!
//! Each reconcile of a CronJob:
//!
//! 1. trims its history: the oldest finished Jobs beyond `successfulJobsHistoryLimit` and
//!    `failedJobsHistoryLimit` are deleted (background propagation, so their pods go too);
//! 2. brings `status.active` in line with its Jobs: finished ones leave (`SawCompletedJob`),
//!    vanished ones leave (`MissingJob`), and `lastSuccessfulTime` follows the newest
//!    completion. As in Kubernetes, a running Job the controller did not schedule (for
//!    example one made by `kubectl create job --from=cronjob/NAME`) is not listed, so it
//!    does not hold back a `Forbid` CronJob; it earns an `UnexpectedJob` warning unless it
//!    carries kubectl's `cronjob.kubernetes.io/instantiate: manual` (Kubernetes warns about
//!    those too, at every sync while they run);
//! 3. unless the CronJob is suspended or being deleted, finds the most recent scheduled time
//!    since `status.lastScheduleTime` (or its creation): only that one, however many were
//!    missed while the server was down, so a long outage means one catch-up run, not a
//!    stall. A time older than `startingDeadlineSeconds` is skipped (`MissSchedule`).
//!    `Forbid` leaves the time pending while a Job is active (it runs when that Job
//!    finishes, if still within the deadline); `Replace` deletes the active Jobs first;
//! 4. writes the status once and asks to be woken just after the next scheduled time.
//!
//! # One Job per scheduled time
//!
//! A Job is named `<cronjob>-<scheduled time in minutes since the epoch>`, so its name is a
//! lock: whatever crashed between creating it and recording it, the next attempt finds it
//! (in the cache, or as `AlreadyExists` from the create) and records it instead of creating
//! another. A running Job carrying this controller's name and
//! `batch.kubernetes.io/cronjob-scheduled-timestamp` annotation that is missing from
//! `status.active` (the crash fell between the create and the status write) is listed
//! again.

pub mod schedule;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use chrono_tz::Tz;
use serde_json::{Value, json};

use self::schedule::{Schedule, ScheduleError};
use super::events::{EventType, Recorder};
use super::informer::{Cache, Informers, controller_uid, is_deleting, namespace, uid};
use super::runner::{self, Action, Queue};
use super::writes;
use crate::api::error::{ApiError, Reason};
use crate::api::objects::{Objects, Propagation, WriteOptions, name_of, timestamp};
use crate::api::resources::by_plural;
use crate::store::ObjectKey;

const MANAGER: &str = "cronjob-controller";
/// The annotation on a scheduled Job holding its scheduled time (RFC 3339, in the schedule's
/// zone).
pub const SCHEDULED_TIMESTAMP: &str = "batch.kubernetes.io/cronjob-scheduled-timestamp";
/// The annotation kubectl puts on a Job made by `kubectl create job --from=cronjob/NAME`.
pub const INSTANTIATE: &str = "cronjob.kubernetes.io/instantiate";
/// More missed times than this since the last run earn a `TooManyMissedTimes` warning (the
/// most recent one still runs).
const TOO_MANY_MISSED: i64 = 100;
/// How long after a scheduled time the controller is woken. Timers never fire early; this
/// only covers the wall clock (which schedules use) running a hair behind the monotonic clock
/// (which timers use). Waking early costs a second, short wait, never a missed run.
const WAKE_PAD: Duration = Duration::from_millis(2);

struct Ctx {
    objects: Objects,
    cronjobs: Arc<Cache>,
    jobs: Arc<Cache>,
    recorder: Recorder,
}

/// Registers the controller and starts its workers.
pub fn register(objects: &Objects, informers: &mut Informers) {
    let cronjob_resource = by_plural("batch", "v1", "cronjobs").expect("cronjobs are served");
    let job_resource = by_plural("batch", "v1", "jobs").expect("jobs are served");
    let queue = Queue::default();
    let cronjobs = informers.queue_changes(cronjob_resource, &queue);
    informers.queue_owners(job_resource, "CronJob", cronjob_resource, &queue);
    let jobs = informers.cache(job_resource);
    let ctx = Arc::new(Ctx {
        recorder: Recorder::new(objects.clone(), MANAGER, None),
        objects: objects.clone(),
        cronjobs: cronjobs.clone(),
        jobs,
    });
    runner::start(MANAGER, queue, 2, ctx, cronjobs, |ctx, key| async move {
        reconcile(&ctx, &key).await
    });
}

/// The name of the Job for `scheduled`: the CronJob's name and the scheduled time in minutes
/// since the epoch (Kubernetes' `getJobName`).
pub fn job_name(cronjob: &str, scheduled: DateTime<Utc>) -> String {
    format!("{cronjob}-{}", scheduled.timestamp().div_euclid(60))
}

/// `Complete` or `Failed` once the Job has finished.
pub fn finished(job: &Value) -> Option<&'static str> {
    let conditions = job["status"]["conditions"].as_array()?;
    ["Complete", "Failed"].into_iter().find(|kind| {
        conditions
            .iter()
            .any(|c| c["type"] == *kind && c["status"] == "True")
    })
}

fn parse_time(value: &Value) -> Option<DateTime<Utc>> {
    value
        .as_str()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc))
}

/// The ObjectReference to a Job that `status.active` holds.
pub fn job_reference(job: &Value) -> Value {
    let meta = &job["metadata"];
    json!({"kind": "Job", "namespace": meta["namespace"], "name": meta["name"],
        "uid": meta["uid"], "apiVersion": "batch/v1", "resourceVersion": meta["resourceVersion"]})
}

/// The Job a CronJob runs for `scheduled`: its job template, named after the time, owned by
/// the CronJob, annotated with the time as read in `zone`.
pub fn job_for(cronjob: &Value, scheduled: DateTime<Utc>, zone: Tz) -> Value {
    let template = &cronjob["spec"]["jobTemplate"];
    let mut metadata = json!({
        "name": job_name(name_of(cronjob), scheduled),
        "namespace": cronjob["metadata"]["namespace"],
        "ownerReferences": [writes::controller_reference(cronjob, "CronJob")],
    });
    if let Some(labels) = template["metadata"]["labels"].as_object() {
        metadata["labels"] = json!(labels);
    }
    let mut annotations = template["metadata"]["annotations"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    annotations.insert(
        SCHEDULED_TIMESTAMP.to_string(),
        json!(
            scheduled
                .with_timezone(&zone)
                .to_rfc3339_opts(SecondsFormat::Secs, true)
        ),
    );
    metadata["annotations"] = json!(annotations);
    json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": metadata,
        "spec": template["spec"]})
}

/// The scheduled time of a Job this controller created for the CronJob named `cronjob`:
/// its annotation, provided the Job also carries the name made from it.
fn scheduled_time_of(cronjob: &str, job: &Value) -> Option<DateTime<Utc>> {
    let time = parse_time(&job["metadata"]["annotations"][SCHEDULED_TIMESTAMP])?;
    (job_name(cronjob, time) == name_of(job)).then_some(time)
}

/// The finished Jobs to delete: the oldest (by `status.startTime`, unstarted last, then by
/// name) beyond each limit. No limit keeps every Job; Jobs being deleted are not counted.
pub fn beyond_history(
    jobs: &[Arc<Value>],
    successful_limit: Option<i64>,
    failed_limit: Option<i64>,
) -> Vec<Arc<Value>> {
    let mut doomed = Vec::new();
    for (kind, limit) in [("Complete", successful_limit), ("Failed", failed_limit)] {
        let Some(limit) = limit else { continue };
        let mut done: Vec<&Arc<Value>> = jobs
            .iter()
            .filter(|j| finished(j) == Some(kind) && !is_deleting(j))
            .collect();
        let excess = done.len().saturating_sub(limit.max(0) as usize);
        done.sort_by_key(|j| {
            let start = parse_time(&j["status"]["startTime"]);
            (start.is_none(), start, name_of(j).to_string())
        });
        doomed.extend(done.into_iter().take(excess).cloned());
    }
    doomed
}

/// An event to record about the CronJob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    /// Normal or Warning.
    pub kind: EventType,
    /// The event's reason.
    pub reason: &'static str,
    /// The event's message.
    pub message: String,
}

impl Note {
    fn normal(reason: &'static str, message: String) -> Self {
        Note {
            kind: EventType::Normal,
            reason,
            message,
        }
    }

    fn warning(reason: &'static str, message: String) -> Self {
        Note {
            kind: EventType::Warning,
            reason,
            message,
        }
    }
}

fn active_refs(status: &Value) -> Vec<Value> {
    status["active"].as_array().cloned().unwrap_or_default()
}

fn set_active(status: &mut Value, active: Vec<Value>) {
    match status.as_object_mut() {
        Some(fields) if active.is_empty() => {
            fields.remove("active");
        }
        _ => status["active"] = json!(active),
    }
}

/// Raises `status.lastScheduleTime` to `time` unless it is already as late.
fn record_scheduled(status: &mut Value, time: DateTime<Utc>) {
    if parse_time(&status["lastScheduleTime"]).is_none_or(|last| last < time) {
        status["lastScheduleTime"] = json!(timestamp(time));
    }
}

/// Brings `status` in line with the CronJob's Jobs (step 2 of the module docs). Pure.
pub fn track(status: &Value, cronjob: &str, jobs: &[Arc<Value>]) -> (Value, Vec<Note>) {
    let mut status = if status.is_object() {
        status.clone()
    } else {
        json!({})
    };
    let mut active = active_refs(&status);
    let mut notes = Vec::new();
    let mut last_success = parse_time(&status["lastSuccessfulTime"]);
    for job in jobs {
        let id = uid(job);
        let listed = active.iter().any(|r| r["uid"] == id);
        match (finished(job), listed) {
            (Some(condition), true) => {
                active.retain(|r| r["uid"] != id);
                notes.push(Note::normal(
                    "SawCompletedJob",
                    format!(
                        "Saw completed job: {}, condition: {condition}",
                        name_of(job)
                    ),
                ));
            }
            (None, false) => match scheduled_time_of(cronjob, job) {
                Some(time) => {
                    active.push(job_reference(job));
                    record_scheduled(&mut status, time);
                }
                // Asked for (`kubectl create job --from`): not listed, and no warning.
                None if job["metadata"]["annotations"][INSTANTIATE] == "manual" => {}
                None => notes.push(Note::warning(
                    "UnexpectedJob",
                    format!(
                        "Saw a job that the controller did not create or forgot: {}",
                        name_of(job)
                    ),
                )),
            },
            _ => {}
        }
        if finished(job) == Some("Complete")
            && let Some(done) = parse_time(&job["status"]["completionTime"])
            && last_success.is_none_or(|t| t < done)
        {
            last_success = Some(done);
        }
    }
    active.retain(|r| {
        let present = jobs.iter().any(|j| r["uid"] == uid(j));
        if !present {
            notes.push(Note::normal(
                "MissingJob",
                format!(
                    "Active job went missing: {}",
                    r["name"].as_str().unwrap_or_default()
                ),
            ));
        }
        present
    });
    set_active(&mut status, active);
    if let Some(t) = last_success {
        status["lastSuccessfulTime"] = json!(timestamp(t));
    }
    (status, notes)
}

/// Records that the Job `existing` (named for `scheduled`) already exists: a Job of this
/// CronJob is recorded as run (and listed while it runs); anyone else's is skipped with a
/// warning, since the time cannot run under its name.
fn already_created(
    status: &mut Value,
    cronjob: &Value,
    existing: &Value,
    scheduled: DateTime<Utc>,
) -> Option<Note> {
    record_scheduled(status, scheduled);
    if controller_uid(existing) != Some(uid(cronjob)) {
        return Some(Note::warning(
            "FailedCreate",
            format!(
                "Error creating job: {} already exists and is not controlled by this CronJob",
                name_of(existing)
            ),
        ));
    }
    let mut active = active_refs(status);
    if finished(existing).is_none() && !active.iter().any(|r| r["uid"] == uid(existing)) {
        active.push(job_reference(existing));
        set_active(status, active);
    }
    None
}

/// Requeue just after `next` (now, if it has passed); nothing when there is no next time.
fn wake_at(next: Option<DateTime<Utc>>) -> Action {
    match next {
        Some(t) => Action::Requeue((t - Utc::now()).to_std().unwrap_or_default() + WAKE_PAD),
        None => Action::AwaitChange,
    }
}

async fn reconcile(ctx: &Ctx, key: &ObjectKey) -> Result<Action, ApiError> {
    let Some(cronjob) = ctx.cronjobs.get(&key.namespace, &key.name) else {
        return Ok(Action::AwaitChange);
    };
    let mut jobs = ctx.jobs.controlled_by(uid(&cronjob));
    let mut status = if cronjob["status"].is_object() {
        cronjob["status"].clone()
    } else {
        json!({})
    };
    trim_history(ctx, &cronjob, &mut jobs, &mut status).await;
    let (mut status, notes) = track(&status, name_of(&cronjob), &jobs);
    for note in notes {
        note_on(ctx, &cronjob, note);
    }
    let spec = &cronjob["spec"];
    let action = if is_deleting(&cronjob) || spec["suspend"] == true {
        Action::AwaitChange
    } else {
        let time_zone = spec["timeZone"].as_str();
        let text = spec["schedule"].as_str().unwrap_or_default();
        match Schedule::parse(text, time_zone) {
            Ok(schedule) => start_due(ctx, &cronjob, &schedule, &jobs, &mut status).await?,
            Err(ScheduleError::UnknownTimeZone(zone)) => {
                note_on(
                    ctx,
                    &cronjob,
                    Note::warning("UnknownTimeZone", format!("invalid timeZone: {zone:?}")),
                );
                Action::AwaitChange
            }
            Err(error) => {
                note_on(
                    ctx,
                    &cronjob,
                    Note::warning(
                        "UnparseableSchedule",
                        format!("unparseable schedule: {text:?} : {error}"),
                    ),
                );
                Action::AwaitChange
            }
        }
    };
    writes::write_status(&ctx.objects, &ctx.cronjobs, &cronjob, &status, MANAGER).await?;
    Ok(action)
}

fn note_on(ctx: &Ctx, cronjob: &Value, note: Note) {
    ctx.recorder
        .record(cronjob, note.kind, note.reason, &note.message);
}

/// Step 1: deletes finished Jobs beyond the history limits, and forgets them. A failed
/// delete is reported (`FailedDelete`) and retried at the next reconcile.
async fn trim_history(ctx: &Ctx, cronjob: &Value, jobs: &mut Vec<Arc<Value>>, status: &mut Value) {
    let spec = &cronjob["spec"];
    let doomed = beyond_history(
        jobs,
        spec["successfulJobsHistoryLimit"].as_i64(),
        spec["failedJobsHistoryLimit"].as_i64(),
    );
    for job in doomed {
        match writes::delete_with(&ctx.objects, &ctx.jobs, &job, Some(Propagation::Background))
            .await
        {
            Ok(_) => {
                note_on(
                    ctx,
                    cronjob,
                    Note::normal("SuccessfulDelete", format!("Deleted job {}", name_of(&job))),
                );
                jobs.retain(|j| uid(j) != uid(&job));
                let mut active = active_refs(status);
                active.retain(|r| r["uid"] != uid(&job));
                set_active(status, active);
            }
            Err(error) => note_on(
                ctx,
                cronjob,
                Note::warning("FailedDelete", format!("Deleted job: {}", error.message)),
            ),
        }
    }
}

/// Step 3: starts the most recent unmet scheduled time, if any and if allowed; returns when
/// to look again.
async fn start_due(
    ctx: &Ctx,
    cronjob: &Value,
    schedule: &Schedule,
    jobs: &[Arc<Value>],
    status: &mut Value,
) -> Result<Action, ApiError> {
    let now = Utc::now();
    let spec = &cronjob["spec"];
    let earliest = parse_time(&status["lastScheduleTime"])
        .or_else(|| parse_time(&cronjob["metadata"]["creationTimestamp"]))
        .unwrap_or(now);
    let Some(missed) = schedule.missed(earliest, now) else {
        return Ok(wake_at(schedule.next_after(earliest.max(now))));
    };
    let scheduled = missed.latest;
    let then = wake_at(schedule.next_after(scheduled));
    let deadline = spec["startingDeadlineSeconds"]
        .as_i64()
        .map(chrono::Duration::seconds);
    if let Some(deadline) = deadline
        && scheduled + deadline < now
    {
        note_on(
            ctx,
            cronjob,
            Note::warning(
                "MissSchedule",
                format!(
                    "Missed scheduled time to start a job: {}",
                    scheduled.format("%a, %d %b %Y %H:%M:%S %z")
                ),
            ),
        );
        return Ok(then);
    }
    // As Kubernetes counts them: only the times still within the deadline.
    let counted = match deadline {
        Some(d) if missed.count > TOO_MANY_MISSED => schedule
            .missed(earliest.max(now - d), now)
            .map_or(0, |m| m.count),
        _ => missed.count,
    };
    if counted > TOO_MANY_MISSED {
        note_on(
            ctx,
            cronjob,
            Note::warning(
                "TooManyMissedTimes",
                "too many missed start times. Set or decrease .spec.startingDeadlineSeconds or check clock skew".to_string(),
            ),
        );
    }

    let ns = namespace(cronjob);
    let name = job_name(name_of(cronjob), scheduled);
    if let Some(existing) = ctx.jobs.get(ns, &name) {
        if let Some(note) = already_created(status, cronjob, &existing, scheduled) {
            note_on(ctx, cronjob, note);
        }
        return Ok(then);
    }
    let active = active_refs(status);
    match spec["concurrencyPolicy"].as_str() {
        Some("Forbid") if !active.is_empty() => {
            note_on(
                ctx,
                cronjob,
                Note::normal(
                    "JobAlreadyActive",
                    "Not starting job because prior execution is running and concurrency policy is Forbid".to_string(),
                ),
            );
            return Ok(then);
        }
        Some("Replace") => {
            for job in jobs
                .iter()
                .filter(|j| active.iter().any(|r| r["uid"] == uid(j)))
            {
                if let Err(error) =
                    writes::delete_with(&ctx.objects, &ctx.jobs, job, Some(Propagation::Background))
                        .await
                {
                    note_on(
                        ctx,
                        cronjob,
                        Note::warning("FailedDelete", format!("Deleted job: {}", error.message)),
                    );
                    return Err(error);
                }
                note_on(
                    ctx,
                    cronjob,
                    Note::normal("SuccessfulDelete", format!("Deleted job {}", name_of(job))),
                );
                let mut left = active_refs(status);
                left.retain(|r| r["uid"] != uid(job));
                set_active(status, left);
            }
        }
        _ => {}
    }

    let job = job_for(cronjob, scheduled, schedule.zone());
    let options = WriteOptions::controller(MANAGER);
    match ctx
        .objects
        .create(ctx.jobs.resource(), ns, job, &options)
        .await
    {
        Ok(written) => {
            note_on(
                ctx,
                cronjob,
                Note::normal("SuccessfulCreate", format!("Created job {name}")),
            );
            let mut active = active_refs(status);
            active.push(job_reference(&written.object));
            set_active(status, active);
            record_scheduled(status, scheduled);
            ctx.jobs.observe(written.object);
        }
        Err(error) if error.reason == Reason::AlreadyExists => {
            // Created earlier, and the cache has not seen it yet.
            let existing = ctx
                .objects
                .get(ctx.jobs.resource(), ns, &name)
                .await?
                .object;
            ctx.jobs.observe(existing.clone());
            if let Some(note) = already_created(status, cronjob, &existing, scheduled) {
                note_on(ctx, cronjob, note);
            }
        }
        Err(error) => {
            note_on(
                ctx,
                cronjob,
                Note::warning(
                    "FailedCreate",
                    format!("Error creating job: {}", error.message),
                ),
            );
            return Err(error);
        }
    }
    Ok(then)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cronjob() -> Value {
        json!({"apiVersion": "batch/v1", "kind": "CronJob",
            "metadata": {"name": "backup", "namespace": "ops", "uid": "cj-uid",
                "creationTimestamp": "2024-05-01T00:00:00Z"},
            "spec": {"schedule": "*/5 * * * *", "jobTemplate": {
                "metadata": {"labels": {"team": "ops"}, "annotations": {"note": "nightly"}},
                "spec": {"template": {"spec": {"restartPolicy": "Never",
                    "containers": [{"name": "c", "image": "hello:v1"}]}}}}}})
    }

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    fn job(
        name: &str,
        condition: Option<&str>,
        start: Option<&str>,
        done: Option<&str>,
    ) -> Arc<Value> {
        let mut job = json!({"metadata": {"name": name, "namespace": "ops", "uid": format!("uid-{name}"),
            "resourceVersion": "7",
            "ownerReferences": [{"kind": "CronJob", "name": "backup", "uid": "cj-uid", "controller": true}]},
            "status": {}});
        if let Some(c) = condition {
            job["status"]["conditions"] = json!([{"type": c, "status": "True"}]);
        }
        if let Some(s) = start {
            job["status"]["startTime"] = json!(s);
        }
        if let Some(d) = done {
            job["status"]["completionTime"] = json!(d);
        }
        Arc::new(job)
    }

    fn scheduled_job(time: &str) -> Arc<Value> {
        let t = utc(time);
        let mut j = (*job(&job_name("backup", t), None, Some(time), None)).clone();
        j["metadata"]["annotations"] = json!({SCHEDULED_TIMESTAMP: time});
        Arc::new(j)
    }

    #[test]
    fn jobs_are_named_by_the_minute_and_carry_the_template() {
        let t = utc("2024-05-01T10:05:00Z");
        assert_eq!(job_name("backup", t), "backup-28575965");
        let job = job_for(&cronjob(), t, "Asia/Kolkata".parse().unwrap());
        assert_eq!(job["metadata"]["name"], "backup-28575965");
        assert_eq!(job["metadata"]["namespace"], "ops");
        assert_eq!(job["metadata"]["labels"]["team"], "ops");
        assert_eq!(job["metadata"]["annotations"]["note"], "nightly");
        assert_eq!(
            job["metadata"]["annotations"][SCHEDULED_TIMESTAMP],
            "2024-05-01T15:35:00+05:30"
        );
        let owner = &job["metadata"]["ownerReferences"][0];
        assert_eq!(owner["kind"], "CronJob");
        assert_eq!(owner["uid"], "cj-uid");
        assert_eq!(owner["controller"], true);
        assert_eq!(job["spec"]["template"]["spec"]["restartPolicy"], "Never");
        let utc_job = job_for(&cronjob(), t, Tz::UTC);
        assert_eq!(
            utc_job["metadata"]["annotations"][SCHEDULED_TIMESTAMP],
            "2024-05-01T10:05:00Z"
        );
        assert_eq!(
            scheduled_time_of("backup", &utc_job),
            Some(t),
            "the controller recognises its own Job"
        );
        assert_eq!(scheduled_time_of("other", &utc_job), None);
    }

    #[test]
    fn history_keeps_the_newest_finished_jobs() {
        let jobs = vec![
            job("a", Some("Complete"), Some("2024-05-01T10:00:00Z"), None),
            job("b", Some("Complete"), Some("2024-05-01T10:05:00Z"), None),
            job("c", Some("Complete"), Some("2024-05-01T10:10:00Z"), None),
            job("d", Some("Failed"), Some("2024-05-01T10:01:00Z"), None),
            job("e", Some("Failed"), Some("2024-05-01T10:06:00Z"), None),
            job("f", None, Some("2024-05-01T09:00:00Z"), None),
        ];
        let names = |doomed: Vec<Arc<Value>>| -> Vec<String> {
            doomed.iter().map(|j| name_of(j).to_string()).collect()
        };
        assert_eq!(
            names(beyond_history(&jobs, Some(1), Some(1))),
            ["a", "b", "d"]
        );
        assert_eq!(names(beyond_history(&jobs, Some(3), Some(0))), ["d", "e"]);
        assert!(beyond_history(&jobs, None, None).is_empty());
    }

    #[test]
    fn tracking_lists_running_jobs_and_drops_finished_and_missing_ones() {
        let running = scheduled_job("2024-05-01T10:10:00Z");
        let done = job(
            "backup-1",
            Some("Complete"),
            Some("2024-05-01T10:00:00Z"),
            Some("2024-05-01T10:00:07Z"),
        );
        let stray = job("backup-stray", None, None, None);
        let mut manual = (*job("backup-manual", None, None, None)).clone();
        manual["metadata"]["annotations"] = json!({INSTANTIATE: "manual"});
        let status = json!({
            "active": [job_reference(&done), {"kind": "Job", "name": "gone", "uid": "uid-gone"}],
            "lastScheduleTime": "2024-05-01T10:05:00Z",
        });
        let (status, notes) = track(
            &status,
            "backup",
            &[running.clone(), done, stray, Arc::new(manual)],
        );
        assert_eq!(status["active"], json!([job_reference(&running)]));
        assert_eq!(status["lastScheduleTime"], "2024-05-01T10:10:00Z");
        assert_eq!(status["lastSuccessfulTime"], "2024-05-01T10:00:07Z");
        let reasons: Vec<&str> = notes.iter().map(|n| n.reason).collect();
        assert_eq!(reasons, ["SawCompletedJob", "UnexpectedJob", "MissingJob"]);
        assert_eq!(
            notes[0].message,
            "Saw completed job: backup-1, condition: Complete"
        );

        // Nothing running: no `active` key at all, as Kubernetes writes it.
        let (status, _) = track(&status, "backup", &[]);
        assert!(status.get("active").is_none(), "{status}");
    }

    #[test]
    fn an_existing_job_is_recorded_not_created_again() {
        let cj = cronjob();
        let t = utc("2024-05-01T10:10:00Z");
        let ours = scheduled_job("2024-05-01T10:10:00Z");
        let mut status = json!({});
        assert_eq!(already_created(&mut status, &cj, &ours, t), None);
        assert_eq!(status["lastScheduleTime"], "2024-05-01T10:10:00Z");
        assert_eq!(status["active"][0]["uid"], uid(&ours));

        let mut foreign = (*ours).clone();
        foreign["metadata"]["ownerReferences"] = json!([]);
        let mut status = json!({});
        let note = already_created(&mut status, &cj, &foreign, t).unwrap();
        assert_eq!(note.reason, "FailedCreate");
        assert!(status.get("active").is_none());
        assert_eq!(status["lastScheduleTime"], "2024-05-01T10:10:00Z");
    }
}
