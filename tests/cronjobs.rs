//! CronJobs end to end with real kubectl on the embedded node running Wasm pods. The tests
//! wait for real minute boundaries (at most about two each) and run in parallel.

mod common;

use std::time::Duration;

use chrono::{DateTime, Timelike, Utc};
use common::{Server, eventually, import_guests};
use serde_json::Value;

const NODE: &[&str] = &["--node-name", "test-node"];

fn start_on(dir: tempfile::TempDir) -> Server {
    let fresh = !dir.path().join("kubeconfig").exists();
    let server = Server::start_with(dir, NODE);
    if fresh {
        import_guests(
            &server,
            &[
                ("hello", "hello:v1"),
                ("exit-code", "exit:v1"),
                ("sleeper", "sleeper:v1"),
            ],
        );
    }
    server
}

fn start() -> Server {
    start_on(tempfile::tempdir().unwrap())
}

/// The first minute boundary after `t`.
fn boundary_after(t: DateTime<Utc>) -> DateTime<Utc> {
    let floor = t.with_second(0).unwrap().with_nanosecond(0).unwrap();
    floor + chrono::Duration::minutes(1)
}

fn minutes(t: DateTime<Utc>) -> i64 {
    t.timestamp().div_euclid(60)
}

fn job_name(cronjob: &str, t: DateTime<Utc>) -> String {
    format!("{cronjob}-{}", minutes(t))
}

fn sleep_until(t: DateTime<Utc>) {
    if let Ok(wait) = (t - Utc::now()).to_std() {
        std::thread::sleep(wait);
    }
}

fn time(value: &Value) -> Option<DateTime<Utc>> {
    value
        .as_str()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc))
}

/// The Jobs controlled by the CronJob `cronjob`, sorted by name.
fn jobs_of(server: &Server, cronjob: &str) -> Vec<Value> {
    let list = server.kubectl_json(&["get", "jobs"]);
    let mut jobs: Vec<Value> = list["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|j| {
            j["metadata"]["ownerReferences"]
                .as_array()
                .is_some_and(|refs| {
                    refs.iter().any(|r| {
                        r["kind"] == "CronJob" && r["name"] == cronjob && r["controller"] == true
                    })
                })
        })
        .collect();
    jobs.sort_by_key(|j| {
        j["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    });
    jobs
}

fn names(jobs: &[Value]) -> Vec<String> {
    jobs.iter()
        .map(|j| {
            j["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect()
}

/// The reasons of the events recorded about the CronJob `cronjob`.
fn reasons(server: &Server, cronjob: &str) -> Vec<String> {
    let selector = format!("involvedObject.kind=CronJob,involvedObject.name={cronjob}");
    server.kubectl_json(&["get", "events", "--field-selector", &selector])["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|e| e["reason"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// Like `eventually`, but the panic shows `context()`.
fn within<T>(secs: u64, mut f: impl FnMut() -> Option<T>, context: impl Fn() -> String) -> T {
    let deadline = std::time::Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return v;
        }
        if std::time::Instant::now() > deadline {
            panic!(
                "condition not met within {secs}s at {}\n{}",
                Utc::now(),
                context()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Jobs, pods, CronJobs and events, for a failure message.
fn state(server: &Server) -> String {
    let get = |what: &str| {
        String::from_utf8_lossy(&server.kubectl(&["get", what, "-o", "wide"]).stdout).into_owned()
    };
    let statuses = server.kubectl_ok(&[
        "get",
        "cronjobs",
        "-o",
        "custom-columns=NAME:.metadata.name,STATUS:.status",
    ]);
    format!(
        "{}\n{}\n{statuses}\n{}",
        get("jobs"),
        get("pods"),
        get("events")
    )
}

fn cronjob(server: &Server, name: &str) -> Value {
    server.kubectl_json(&["get", "cronjob", name])
}

fn finished(job: &Value) -> bool {
    job["status"]["conditions"].as_array().is_some_and(|cs| {
        cs.iter()
            .any(|c| (c["type"] == "Complete" || c["type"] == "Failed") && c["status"] == "True")
    })
}

fn active_names(cj: &Value) -> Vec<String> {
    cj["status"]["active"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|r| r["name"].as_str().unwrap_or_default().to_string())
                .collect()
        })
        .unwrap_or_default()
}

const MANIFESTS: &str = r#"
apiVersion: batch/v1
kind: CronJob
metadata: {name: tick}
spec:
  schedule: "* * * * *"
  timeZone: Asia/Kolkata
  successfulJobsHistoryLimit: 1
  jobTemplate:
    metadata:
      labels: {app: tick}
    spec:
      template:
        spec:
          restartPolicy: Never
          containers: [{name: main, image: "hello:v1"}]
---
apiVersion: batch/v1
kind: CronJob
metadata: {name: broken}
spec:
  schedule: "*/1 * * * *"
  failedJobsHistoryLimit: 1
  jobTemplate:
    spec:
      backoffLimit: 0
      template:
        spec:
          restartPolicy: Never
          containers: [{name: main, image: "exit:v1", args: ["3"]}]
---
apiVersion: batch/v1
kind: CronJob
metadata: {name: forbid}
spec:
  schedule: "* * * * *"
  concurrencyPolicy: Forbid
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: Never
          terminationGracePeriodSeconds: 0
          containers: [{name: main, image: "sleeper:v1", args: ["80"]}]
---
apiVersion: batch/v1
kind: CronJob
metadata: {name: strict}
spec:
  schedule: "* * * * *"
  concurrencyPolicy: Forbid
  startingDeadlineSeconds: 10
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: Never
          terminationGracePeriodSeconds: 0
          containers: [{name: main, image: "sleeper:v1", args: ["80"]}]
---
apiVersion: batch/v1
kind: CronJob
metadata: {name: replace}
spec:
  schedule: "* * * * *"
  concurrencyPolicy: Replace
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: Never
          terminationGracePeriodSeconds: 0
          containers: [{name: main, image: "sleeper:v1", args: ["3600"]}]
---
apiVersion: batch/v1
kind: CronJob
metadata: {name: paused}
spec:
  schedule: "* * * * *"
  suspend: true
  jobTemplate:
    metadata:
      annotations: {owner: ops}
    spec:
      template:
        spec:
          restartPolicy: Never
          containers: [{name: main, image: "hello:v1"}]
---
apiVersion: batch/v1
kind: CronJob
metadata: {name: catchup}
spec:
  schedule: "* * * * *"
  suspend: true
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: Never
          containers: [{name: main, image: "hello:v1"}]
"#;

#[test]
fn cronjobs_fire_on_the_minute_with_policies_history_suspend_and_manual_runs() {
    let server = start();
    server.apply(MANIFESTS);
    let created = Utc::now();
    let first = boundary_after(created);
    let second = first + chrono::Duration::minutes(1);

    // Defaults are applied as Kubernetes applies them.
    let tick = cronjob(&server, "tick");
    assert_eq!(tick["spec"]["concurrencyPolicy"], "Allow", "{tick}");
    assert_eq!(tick["spec"]["suspend"], false);
    assert_eq!(tick["spec"]["failedJobsHistoryLimit"], 1);
    assert_eq!(
        cronjob(&server, "forbid")["spec"]["successfulJobsHistoryLimit"],
        3
    );

    // Downtime catch-up: with the last run three hours back (180 missed minutes) exactly one
    // Job runs, for the latest minute, and the controller warns instead of stalling. (Not in
    // the last seconds of a minute, so that the next one does not join in.)
    if Utc::now().second() >= 55 {
        sleep_until(boundary_after(Utc::now()) + chrono::Duration::seconds(1));
    }
    let three_hours_ago = (Utc::now() - chrono::Duration::hours(3))
        .with_second(0)
        .unwrap()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    server.kubectl_ok(&[
        "patch",
        "cronjob",
        "catchup",
        "--subresource=status",
        "--type=merge",
        "-p",
        &format!(r#"{{"status":{{"lastScheduleTime":"{three_hours_ago}"}}}}"#),
    ]);
    let resumed = Utc::now();
    server.kubectl_ok(&[
        "patch",
        "cronjob",
        "catchup",
        "--type=merge",
        "-p",
        r#"{"spec":{"suspend":false}}"#,
    ]);
    let caught_up = eventually(10, || {
        let jobs = jobs_of(&server, "catchup");
        (!jobs.is_empty()).then_some(jobs)
    });
    server.kubectl_ok(&[
        "patch",
        "cronjob",
        "catchup",
        "--type=merge",
        "-p",
        r#"{"spec":{"suspend":true}}"#,
    ]);
    std::thread::sleep(Duration::from_millis(500));
    let after = jobs_of(&server, "catchup");
    let latest = boundary_after(resumed) - chrono::Duration::minutes(1);
    assert!(
        names(&after) == [job_name("catchup", latest)]
            || names(&after) == [job_name("catchup", latest + chrono::Duration::minutes(1))],
        "one catch-up run for the latest minute, got {:?} (first seen {:?})",
        names(&after),
        names(&caught_up)
    );
    eventually(10, || {
        reasons(&server, "catchup")
            .contains(&"TooManyMissedTimes".to_string())
            .then_some(())
    });

    // A manual run from a suspended CronJob (kubectl builds the Job client-side).
    let out = server.kubectl_ok(&["create", "job", "by-hand", "--from=cronjob/paused"]);
    assert!(out.contains("job.batch/by-hand created"), "{out}");
    server.kubectl_ok(&[
        "wait",
        "--for=condition=complete",
        "job/by-hand",
        "--timeout=60s",
    ]);
    let manual = server.kubectl_json(&["get", "job", "by-hand"]);
    assert_eq!(
        manual["metadata"]["annotations"]["cronjob.kubernetes.io/instantiate"],
        "manual"
    );
    assert_eq!(manual["metadata"]["annotations"]["owner"], "ops");
    let paused = cronjob(&server, "paused");
    assert_eq!(
        manual["metadata"]["ownerReferences"][0]["uid"],
        paused["metadata"]["uid"]
    );
    let paused = eventually(10, || {
        let cj = cronjob(&server, "paused");
        cj["status"]["lastSuccessfulTime"].is_string().then_some(cj)
    });
    assert!(active_names(&paused).is_empty(), "{paused}");
    assert!(paused["status"]["lastScheduleTime"].is_null(), "{paused}");

    // The first minute: every unsuspended CronJob fires within a second or two of it.
    sleep_until(first);
    let tick_first = job_name("tick", first);
    let job = eventually(10, || {
        server
            .kubectl(&["get", "job", &tick_first, "-o", "json"])
            .status
            .success()
            .then(|| server.kubectl_json(&["get", "job", &tick_first]))
    });
    let created_at = time(&job["metadata"]["creationTimestamp"]).unwrap();
    assert!(
        created_at >= first && created_at <= first + chrono::Duration::seconds(2),
        "created at {created_at}, scheduled for {first}"
    );
    let scheduled =
        &job["metadata"]["annotations"]["batch.kubernetes.io/cronjob-scheduled-timestamp"];
    assert_eq!(
        time(scheduled),
        Some(first),
        "the scheduled time, read in the CronJob's zone: {scheduled}"
    );
    assert!(
        scheduled.as_str().unwrap().ends_with("+05:30"),
        "{scheduled}"
    );
    assert_eq!(job["metadata"]["labels"]["app"], "tick");
    server.kubectl_ok(&[
        "wait",
        "--for=condition=complete",
        &format!("job/{tick_first}"),
        "--timeout=60s",
    ]);
    let tick = eventually(10, || {
        let cj = cronjob(&server, "tick");
        (active_names(&cj).is_empty() && cj["status"]["lastSuccessfulTime"].is_string())
            .then_some(cj)
    });
    assert_eq!(time(&tick["status"]["lastScheduleTime"]), Some(first));
    assert!(time(&tick["status"]["lastSuccessfulTime"]).unwrap() >= first);

    let forbid_first = job_name("forbid", first);
    let replace_first = job_name("replace", first);
    eventually(10, || {
        (names(&jobs_of(&server, "forbid")) == [forbid_first.clone()]
            && names(&jobs_of(&server, "replace")) == [replace_first.clone()]
            && active_names(&cronjob(&server, "forbid")) == [forbid_first.clone()]
            && active_names(&cronjob(&server, "replace")) == [replace_first.clone()])
        .then_some(())
    });
    let broken_first = job_name("broken", first);
    server.kubectl_ok(&[
        "wait",
        "--for=condition=failed",
        &format!("job/{broken_first}"),
        "--timeout=60s",
    ]);

    // The second minute.
    sleep_until(second);
    // Forbid: the first Job (80 s long) is still running, so nothing else starts yet.
    eventually(10, || {
        reasons(&server, "forbid")
            .contains(&"JobAlreadyActive".to_string())
            .then_some(())
    });
    for name in ["forbid", "strict"] {
        let first_job = job_name(name, first);
        assert_eq!(
            names(&jobs_of(&server, name)),
            std::slice::from_ref(&first_job)
        );
        let cj = cronjob(&server, name);
        assert_eq!(active_names(&cj), [first_job]);
        assert_eq!(time(&cj["status"]["lastScheduleTime"]), Some(first));
    }
    let tick_second = job_name("tick", second);
    // History: one successful tick Job is kept, one failed broken Job.
    eventually(30, || {
        let jobs = jobs_of(&server, "tick");
        (names(&jobs) == [tick_second.clone()] && jobs.iter().all(finished)).then_some(())
    });
    let broken_second = job_name("broken", second);
    eventually(30, || {
        let jobs = jobs_of(&server, "broken");
        (names(&jobs) == [broken_second.clone()] && jobs.iter().all(finished)).then_some(())
    });
    assert!(reasons(&server, "tick").contains(&"SuccessfulDelete".to_string()));
    assert!(reasons(&server, "tick").contains(&"SawCompletedJob".to_string()));
    let tick = cronjob(&server, "tick");
    assert_eq!(time(&tick["status"]["lastScheduleTime"]), Some(second));

    // Replace: the running Job is deleted and the new one takes its place.
    let replace_second = job_name("replace", second);
    eventually(30, || {
        (names(&jobs_of(&server, "replace")) == [replace_second.clone()]
            && active_names(&cronjob(&server, "replace")) == [replace_second.clone()])
        .then_some(())
    });
    assert!(reasons(&server, "replace").contains(&"SuccessfulDelete".to_string()));

    // Forbid kept the second minute pending: it runs once the first Job finishes (as in
    // Kubernetes), unless that is past the starting deadline.
    let forbid_second = job_name("forbid", second);
    within(
        60,
        || {
            names(&jobs_of(&server, "forbid"))
                .contains(&forbid_second)
                .then_some(())
        },
        || state(&server),
    );
    let forbid = cronjob(&server, "forbid");
    assert_eq!(time(&forbid["status"]["lastScheduleTime"]), Some(second));
    assert_eq!(active_names(&forbid), [forbid_second]);
    eventually(10, || {
        reasons(&server, "strict")
            .contains(&"MissSchedule".to_string())
            .then_some(())
    });
    let strict_first = job_name("strict", first);
    let strict = eventually(20, || {
        let cj = cronjob(&server, "strict");
        let jobs = jobs_of(&server, "strict");
        (jobs.iter().all(finished) && active_names(&cj).is_empty()).then_some(jobs)
    });
    assert_eq!(names(&strict), std::slice::from_ref(&strict_first));
    let strict = cronjob(&server, "strict");
    assert_eq!(time(&strict["status"]["lastScheduleTime"]), Some(first));

    // Suspended: only the manual run, ever.
    assert_eq!(names(&jobs_of(&server, "paused")), ["by-hand"]);
    let table = server.kubectl_ok(&["get", "cronjobs"]);
    assert!(table.contains("Asia/Kolkata"), "{table}");
}

#[test]
fn a_server_killed_across_minute_boundaries_catches_up_once_and_never_twice() {
    let server = start();
    server.apply(
        r#"
apiVersion: batch/v1
kind: CronJob
metadata: {name: nightly}
spec:
  schedule: "* * * * *"
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: Never
          containers: [{name: main, image: "hello:v1"}]
"#,
    );
    let created = Utc::now();
    let mut server = server;
    server.kill();
    // Down across two scheduled minutes.
    let missed = boundary_after(created) + chrono::Duration::minutes(1);
    sleep_until(missed + chrono::Duration::seconds(2));
    let server = start_on(server.into_dir());
    let caught_up = job_name("nightly", missed);
    eventually(20, || {
        (names(&jobs_of(&server, "nightly")) == [caught_up.clone()]).then_some(())
    });
    server.kubectl_ok(&[
        "wait",
        "--for=condition=complete",
        &format!("job/{caught_up}"),
        "--timeout=60s",
    ]);
    let cj = eventually(10, || {
        let cj = cronjob(&server, "nightly");
        cj["status"]["lastSuccessfulTime"].is_string().then_some(cj)
    });
    assert_eq!(
        time(&cj["status"]["lastScheduleTime"]),
        Some(missed),
        "{cj}"
    );

    // Killed again within the same minute: the restart must not run that minute again.
    let mut server = server;
    server.kill();
    let server = start_on(server.into_dir());
    std::thread::sleep(Duration::from_secs(3));
    if Utc::now() < missed + chrono::Duration::seconds(58) {
        assert_eq!(names(&jobs_of(&server, "nightly")), [caught_up]);
    }
}
