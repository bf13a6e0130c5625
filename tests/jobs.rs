//! Jobs end to end with real kubectl on the embedded node running Wasm pods.

mod common;

use common::{Server, eventually, import_guests};
use serde_json::Value;

fn start() -> Server {
    let server = Server::start_with(tempfile::tempdir().unwrap(), &["--node-name", "test-node"]);
    import_guests(
        &server,
        &[
            ("hello", "hello:v1"),
            ("exit-code", "exit:v1"),
            ("exit-code", "exit-code:v1"),
            ("sleeper", "sleeper:v1"),
        ],
    );
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
    let server = killed_and_restarted_mid_job(server, "steady", 8);
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

/// Kills the server with SIGKILL once the Job has `succeeded` completions, restarts it on the
/// same data, and waits for the Job to complete.
fn killed_and_restarted_mid_job(server: Server, job: &str, succeeded: i64) -> Server {
    eventually(60, || {
        let status = server.kubectl_json(&["get", "job", job]);
        (status["status"]["succeeded"].as_i64().unwrap_or(0) >= succeeded).then_some(())
    });
    let mut server = server;
    server.kill();
    let server = Server::start_with(server.into_dir(), &["--node-name", "test-node"]);
    server.kubectl_ok(&[
        "wait",
        "--for=condition=complete",
        &format!("job/{job}"),
        "--timeout=120s",
    ]);
    server
}

/// The reason of a Job's condition `kind`, if it has one.
fn reason(job: &Value, kind: &str) -> Option<String> {
    job["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == kind && c["status"] == "True")
        .map(|c| c["reason"].as_str().unwrap_or_default().to_string())
}

#[test]
fn failure_and_success_policies_per_index_limits_restarts_and_manual_selectors() {
    let server = start();
    // Each index exits with its own number: index 0 succeeds, the others fail.
    let indexed = |name: &str, completions: u32, extra: &str| {
        format!(
            r#"
apiVersion: batch/v1
kind: Job
metadata: {{name: {name}}}
spec:
  completions: {completions}
  parallelism: {completions}
  completionMode: Indexed
{extra}
  template:
    spec:
      restartPolicy: Never
      containers: [{{name: main, image: "exit:v1", args: ["$(JOB_COMPLETION_INDEX)"]}}]
"#
        )
    };
    let mut manifests = vec![
        r#"
apiVersion: batch/v1
kind: Job
metadata: {name: fatal}
spec:
  backoffLimit: 6
  podFailurePolicy:
    rules:
    - action: Ignore
      onPodConditions: [{type: DisruptionTarget}]
    - action: FailJob
      onExitCodes: {containerName: main, operator: In, values: [42]}
  template:
    spec:
      restartPolicy: Never
      containers: [{name: main, image: "exit:v1", args: ["42"]}]
---
apiVersion: batch/v1
kind: Job
metadata: {name: ignored}
spec:
  backoffLimit: 0
  podFailurePolicy:
    rules:
    - action: Ignore
      onExitCodes: {operator: In, values: [3]}
  template:
    spec:
      restartPolicy: Never
      containers: [{name: main, image: "exit:v1", args: ["3"]}]
---
apiVersion: batch/v1
kind: Job
metadata: {name: restarts}
spec:
  backoffLimit: 1
  template:
    spec:
      restartPolicy: OnFailure
      containers: [{name: main, image: "exit:v1", args: ["1"]}]
---
apiVersion: batch/v1
kind: Job
metadata: {name: manual}
spec:
  manualSelector: true
  selector: {matchLabels: {app: manual-job}}
  template:
    metadata: {labels: {app: manual-job}}
    spec:
      restartPolicy: Never
      containers: [{name: main, image: "hello:v1"}]
"#
        .to_string(),
    ];
    manifests.push(indexed(
        "first-wins",
        3,
        "  successPolicy:\n    rules: [{succeededIndexes: \"0\"}]",
    ));
    manifests.push(indexed("per-index", 3, "  backoffLimitPerIndex: 0"));
    manifests.push(indexed(
        "max-failed",
        3,
        "  backoffLimitPerIndex: 0\n  maxFailedIndexes: 0",
    ));
    manifests.push(indexed(
        "fail-index",
        2,
        "  backoffLimitPerIndex: 3\n  podFailurePolicy:\n    rules:\n    - action: FailIndex\n      onExitCodes: {operator: In, values: [1]}",
    ));
    server.apply(&manifests.join("\n---\n"));

    let wait = |condition: &str, jobs: &[&str]| {
        let mut args = vec!["wait".to_string(), format!("--for=condition={condition}")];
        args.extend(jobs.iter().map(|j| format!("job/{j}")));
        args.push("--timeout=90s".into());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        server.kubectl_ok(&args);
    };
    wait("complete", &["first-wins", "manual"]);
    wait(
        "failed",
        &["fatal", "restarts", "per-index", "max-failed", "fail-index"],
    );
    let get = |name: &str| server.kubectl_json(&["get", "job", name]);

    // FailJob at the first matching exit code, without using up the backoff limit.
    let fatal = get("fatal");
    assert_eq!(
        reason(&fatal, "Failed").as_deref(),
        Some("PodFailurePolicy")
    );
    assert_eq!(
        reason(&fatal, "FailureTarget").as_deref(),
        Some("PodFailurePolicy")
    );
    assert_eq!(fatal["status"]["failed"], 1);
    let message = fatal["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Failed")
        .unwrap()["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        message.contains("failed with exit code 42 matching FailJob rule at index 1"),
        "{message}"
    );

    // A success policy ends the Job when index 0 succeeds, whatever the others do.
    let first = get("first-wins");
    assert_eq!(reason(&first, "Complete").as_deref(), Some("SuccessPolicy"));
    assert_eq!(
        reason(&first, "SuccessCriteriaMet").as_deref(),
        Some("SuccessPolicy")
    );
    assert_eq!(first["status"]["completedIndexes"], "0");
    assert_eq!(first["status"]["active"], 0);

    // Per-index limits: failed indexes are not retried.
    let per_index = get("per-index");
    assert_eq!(
        reason(&per_index, "Failed").as_deref(),
        Some("FailedIndexes")
    );
    assert_eq!(per_index["status"]["failedIndexes"], "1-2");
    assert_eq!(per_index["status"]["completedIndexes"], "0");
    assert_eq!(per_index["status"]["failed"], 2);
    assert_eq!(job_pods(&server, "per-index").len(), 3);
    let max_failed = get("max-failed");
    assert_eq!(
        reason(&max_failed, "Failed").as_deref(),
        Some("MaxFailedIndexesExceeded")
    );
    let fail_index = get("fail-index");
    assert_eq!(
        reason(&fail_index, "Failed").as_deref(),
        Some("FailedIndexes")
    );
    assert_eq!(fail_index["status"]["failedIndexes"], "1");
    assert_eq!(fail_index["status"]["failed"], 1);
    assert!(job_pods(&server, "fail-index").iter().all(|p| {
        p["metadata"]["annotations"]["batch.kubernetes.io/job-index-failure-count"] == "0"
    }));

    // OnFailure restarts in place; the restarts use up the backoff limit.
    let restarts = get("restarts");
    assert_eq!(
        reason(&restarts, "Failed").as_deref(),
        Some("BackoffLimitExceeded")
    );
    let creates = server.kubectl_json(&[
        "get",
        "events",
        "--field-selector",
        "involvedObject.name=restarts,reason=SuccessfulCreate",
    ]);
    assert_eq!(
        creates["items"].as_array().unwrap().len(),
        1,
        "OnFailure restarts the same pod: {creates}"
    );

    // A manual selector is kept as written.
    let manual = get("manual");
    assert_eq!(
        manual["spec"]["selector"]["matchLabels"],
        serde_json::json!({"app": "manual-job"})
    );
    assert_eq!(manual["status"]["succeeded"], 1);

    // Ignored failures are replaced without counting toward backoffLimit: 0.
    eventually(60, || {
        let failed_pods = job_pods(&server, "ignored")
            .iter()
            .filter(|p| p["status"]["phase"] == "Failed")
            .count();
        (failed_pods >= 2).then_some(())
    });
    let ignored = get("ignored");
    assert_eq!(ignored["status"]["failed"], 0, "{ignored}");
    assert_eq!(reason(&ignored, "Failed"), None);
}

#[test]
fn jobs_run_after_the_jobs_they_name_and_fail_with_them() {
    let server = start();
    // The dependent Job comes first: it waits, suspended, for Jobs that do not exist yet.
    server.apply(
        r#"
apiVersion: batch/v1
kind: Job
metadata:
  name: report
  annotations: {skiff.dev/after: "build, lint"}
spec:
  template:
    spec:
      restartPolicy: Never
      containers: [{name: main, image: "hello:v1"}]
---
apiVersion: batch/v1
kind: Job
metadata:
  name: deploy
  annotations: {skiff.dev/after: broken}
spec:
  template:
    spec:
      restartPolicy: Never
      containers: [{name: main, image: "hello:v1"}]
"#,
    );
    eventually(30, || {
        let report = server.kubectl_json(&["get", "job", "report"]);
        (reason(&report, "Suspended").as_deref() == Some("AwaitingDependencies")).then_some(())
    });
    assert!(job_pods(&server, "report").is_empty());
    let table = server.kubectl_ok(&["get", "job", "report"]);
    assert!(table.contains("Suspended"), "{table}");
    server.apply(
        r#"
apiVersion: batch/v1
kind: Job
metadata: {name: build}
spec:
  template:
    spec:
      restartPolicy: Never
      containers: [{name: main, image: "sleeper:v1", args: ["0.5"]}]
---
apiVersion: batch/v1
kind: Job
metadata: {name: lint}
spec:
  template:
    spec:
      restartPolicy: Never
      containers: [{name: main, image: "hello:v1"}]
---
apiVersion: batch/v1
kind: Job
metadata: {name: broken}
spec:
  backoffLimit: 0
  template:
    spec:
      restartPolicy: Never
      containers: [{name: main, image: "exit:v1", args: ["1"]}]
"#,
    );
    server.kubectl_ok(&[
        "wait",
        "--for=condition=complete",
        "job/report",
        "--timeout=60s",
    ]);
    server.kubectl_ok(&[
        "wait",
        "--for=condition=failed",
        "job/deploy",
        "--timeout=60s",
    ]);
    let time = |job: &Value, field: &str| {
        chrono::DateTime::parse_from_rfc3339(job["status"][field].as_str().unwrap()).unwrap()
    };
    let build = server.kubectl_json(&["get", "job", "build"]);
    let report = server.kubectl_json(&["get", "job", "report"]);
    assert!(
        time(&report, "startTime") >= time(&build, "completionTime"),
        "report started before build completed: {report} {build}"
    );
    let deploy = server.kubectl_json(&["get", "job", "deploy"]);
    assert_eq!(
        reason(&deploy, "Failed").as_deref(),
        Some("DependencyFailed")
    );
    assert!(job_pods(&server, "deploy").is_empty());

    // The example manifests run as their comments say.
    let examples = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/workloads/jobs.yaml");
    server.kubectl_ok(&["apply", "-f", examples]);
    server.kubectl_ok(&[
        "wait",
        "--for=condition=complete",
        "job/shards",
        "job/summary",
        "job/first-of-three",
        "--timeout=60s",
    ]);
    let shards = server.kubectl_json(&["get", "job", "shards"]);
    assert_eq!(shards["status"]["completedIndexes"], "0-3");
    let first = server.kubectl_json(&["get", "job", "first-of-three"]);
    assert_eq!(reason(&first, "Complete").as_deref(), Some("SuccessPolicy"));
    let summary = server.kubectl_json(&["get", "job", "summary"]);
    assert!(time(&summary, "startTime") >= time(&shards, "completionTime"));
}

#[test]
fn a_server_killed_mid_non_indexed_job_loses_no_completion() {
    let server = start();
    server.apply(
        r#"
apiVersion: batch/v1
kind: Job
metadata: {name: plain}
spec:
  completions: 30
  parallelism: 5
  backoffLimit: 100
  template:
    spec:
      restartPolicy: Never
      containers: [{name: main, image: "sleeper:v1", args: ["0.2"]}]
"#,
    );
    let server = killed_and_restarted_mid_job(server, "plain", 6);
    let job = server.kubectl_json(&["get", "job", "plain"]);
    let succeeded_pods = job_pods(&server, "plain")
        .iter()
        .filter(|p| p["status"]["phase"] == "Succeeded")
        .count();
    assert_eq!(job["status"]["succeeded"], 30, "{job}");
    // Kubernetes allows a NonIndexed Job to run extra pods only when one that was running
    // when the controller lost track succeeds too; every success is counted, none twice.
    assert!(
        (30..=35).contains(&succeeded_pods),
        "{succeeded_pods} pods succeeded for 30 completions"
    );
    assert_eq!(
        job["status"]["failed"].as_i64().unwrap_or(0) + succeeded_pods as i64,
        job_pods(&server, "plain").len() as i64
    );
}
