//! Jobs end to end with real kubectl on the embedded node running Wasm pods.

mod common;

use common::{Server, eventually, example_guests, import_image};
use serde_json::Value;

fn start() -> Server {
    let server = Server::start_with(tempfile::tempdir().unwrap(), &["--node-name", "test-node"]);
    for (guest, reference) in [
        ("hello", "hello:v1"),
        ("exit-code", "exit:v1"),
        ("sleeper", "sleeper:v1"),
    ] {
        import_image(
            &server,
            &example_guests().join(format!("{guest}.wasm")),
            reference,
        );
    }
    server
}

fn job_pods(server: &Server, job: &str) -> Vec<Value> {
    server.kubectl_json(&[
        "get",
        "pods",
        "-l",
        &format!("batch.kubernetes.io/job-name={job}"),
    ])["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

#[test]
fn jobs_complete_in_parallel_indexed_and_count_every_pod_once() {
    let server = start();
    server.apply(
        r#"
apiVersion: batch/v1
kind: Job
metadata: {name: batch}
spec:
  completions: 5
  parallelism: 2
  template:
    spec:
      restartPolicy: Never
      containers: [{name: main, image: "hello:v1", args: ["task"]}]
---
apiVersion: batch/v1
kind: Job
metadata: {name: fan}
spec:
  completions: 4
  parallelism: 2
  completionMode: Indexed
  template:
    spec:
      restartPolicy: Never
      containers:
      - name: main
        image: "hello:v1"
        args: ["$(JOB_COMPLETION_INDEX)"]
"#,
    );
    server.kubectl_ok(&[
        "wait",
        "--for=condition=complete",
        "job/batch",
        "job/fan",
        "--timeout=60s",
    ]);
    let batch = server.kubectl_json(&["get", "job", "batch"]);
    assert_eq!(batch["status"]["succeeded"], 5, "{batch}");
    assert_eq!(batch["status"]["failed"], 0);
    assert!(batch["status"]["completionTime"].is_string());
    let pods = job_pods(&server, "batch");
    assert_eq!(pods.len(), 5);
    assert!(pods.iter().all(|p| {
        p["status"]["phase"] == "Succeeded"
            && p["metadata"]["finalizers"]
                .as_array()
                .is_none_or(|f| f.is_empty())
    }));
    let table = server.kubectl_ok(&["get", "jobs"]);
    assert!(
        table.contains("5/5") && table.contains("Complete"),
        "{table}"
    );
    let logs = server.kubectl_ok(&["logs", "job/batch"]);
    assert!(logs.contains("hello from a skiff wasm guest"), "{logs}");

    let fan = server.kubectl_json(&["get", "job", "fan"]);
    assert_eq!(fan["status"]["completedIndexes"], "0-3", "{fan}");
    assert_eq!(fan["status"]["succeeded"], 4);
    let mut indexes: Vec<String> = job_pods(&server, "fan")
        .iter()
        .map(|p| {
            let name = p["metadata"]["name"].as_str().unwrap().to_string();
            let logs = server.kubectl_ok(&["logs", &name]);
            let index = p["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"]
                .as_str()
                .unwrap()
                .to_string();
            assert!(name.starts_with(&format!("fan-{index}-")), "{name}");
            assert!(logs.contains(&format!("argv[1]={index}")), "{logs}");
            index
        })
        .collect();
    indexes.sort();
    assert_eq!(indexes, ["0", "1", "2", "3"]);
}

#[test]
fn jobs_fail_on_backoff_limit_and_deadline_suspend_resume_and_expire() {
    let server = start();
    server.apply(
        r#"
apiVersion: batch/v1
kind: Job
metadata: {name: broken}
spec:
  backoffLimit: 0
  template:
    spec:
      restartPolicy: Never
      containers: [{name: main, image: "exit:v1", args: ["3"]}]
---
apiVersion: batch/v1
kind: Job
metadata: {name: slow}
spec:
  activeDeadlineSeconds: 2
  template:
    spec:
      restartPolicy: Never
      terminationGracePeriodSeconds: 0
      containers: [{name: main, image: "sleeper:v1", args: ["3600"]}]
---
apiVersion: batch/v1
kind: Job
metadata: {name: later}
spec:
  suspend: true
  ttlSecondsAfterFinished: 2
  template:
    spec:
      restartPolicy: Never
      containers: [{name: main, image: "hello:v1"}]
"#,
    );
    server.kubectl_ok(&[
        "wait",
        "--for=condition=failed",
        "job/broken",
        "--timeout=60s",
    ]);
    let broken = server.kubectl_json(&["get", "job", "broken"]);
    let reason = |job: &Value, kind: &str| {
        job["status"]["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["type"] == kind)
            .map(|c| c["reason"].as_str().unwrap_or_default().to_string())
    };
    assert_eq!(
        reason(&broken, "Failed").as_deref(),
        Some("BackoffLimitExceeded")
    );
    assert_eq!(broken["status"]["failed"], 1);

    server.kubectl_ok(&[
        "wait",
        "--for=condition=failed",
        "job/slow",
        "--timeout=60s",
    ]);
    let slow = server.kubectl_json(&["get", "job", "slow"]);
    assert_eq!(reason(&slow, "Failed").as_deref(), Some("DeadlineExceeded"));
    eventually(30, || {
        job_pods(&server, "slow")
            .iter()
            .all(|p| {
                !p["metadata"]["deletionTimestamp"].is_null() || p["status"]["phase"] != "Running"
            })
            .then_some(())
    });

    // Suspended: no pods until resumed; then it completes and expires after its TTL.
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert!(job_pods(&server, "later").is_empty());
    let later = server.kubectl_json(&["get", "job", "later"]);
    assert_eq!(reason(&later, "Suspended").as_deref(), Some("JobSuspended"));
    server.kubectl_ok(&[
        "patch",
        "job",
        "later",
        "-p",
        r#"{"spec":{"suspend":false}}"#,
    ]);
    server.kubectl_ok(&[
        "wait",
        "--for=condition=complete",
        "job/later",
        "--timeout=60s",
    ]);
    eventually(30, || {
        (!server.kubectl(&["get", "job", "later"]).status.success()).then_some(())
    });
}

#[test]
fn a_server_killed_mid_job_loses_no_completion_and_runs_no_index_twice() {
    let server = start();
    server.apply(
        r#"
apiVersion: batch/v1
kind: Job
metadata: {name: steady}
spec:
  completions: 40
  parallelism: 4
  completionMode: Indexed
  backoffLimit: 100
  template:
    spec:
      restartPolicy: Never
      containers: [{name: main, image: "sleeper:v1", args: ["0.2"]}]
"#,
    );
    eventually(60, || {
        let job = server.kubectl_json(&["get", "job", "steady"]);
        (job["status"]["succeeded"].as_i64().unwrap_or(0) >= 8).then_some(())
    });
    let mut server = server;
    server.kill();
    let server = Server::start_with(server.into_dir(), &["--node-name", "test-node"]);
    server.kubectl_ok(&[
        "wait",
        "--for=condition=complete",
        "job/steady",
        "--timeout=120s",
    ]);
    let job = server.kubectl_json(&["get", "job", "steady"]);
    assert_eq!(job["status"]["completedIndexes"], "0-39", "{job}");
    assert_eq!(job["status"]["succeeded"], 40);
    let mut per_index = std::collections::HashMap::<String, usize>::new();
    for pod in job_pods(&server, "steady") {
        if pod["status"]["phase"] == "Succeeded" {
            let index = pod["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"]
                .as_str()
                .unwrap()
                .to_string();
            *per_index.entry(index).or_default() += 1;
        }
    }
    assert_eq!(per_index.len(), 40);
    assert!(
        per_index.values().all(|n| *n == 1),
        "an index succeeded twice: {per_index:?}"
    );
}
