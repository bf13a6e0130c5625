//! Wasm pods end to end: images imported with `skiff image import`, pods created with real
//! kubectl, run by the embedded node, observed through status and `kubectl logs`.

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

use common::{Server, eventually};
use serde_json::Value;

/// Builds the example guests once per test run and returns their directory.
fn guests() -> &'static PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/guests");
        let status = Command::new("bash")
            .arg(dir.join("build.sh"))
            .status()
            .expect("run build.sh");
        assert!(status.success(), "building the example guests failed");
        dir.join("target/wasm32-wasip1/release")
    })
}

fn start() -> Server {
    Server::start_with(
        tempfile::tempdir().unwrap(),
        &[
            "--restart-backoff-seconds",
            "0.2",
            "--restart-backoff-max-seconds",
            "1",
            "--node-name",
            "test-node",
        ],
    )
}

fn import(server: &Server, guest: &str, reference: &str) {
    let file = guests().join(format!("{guest}.wasm"));
    let out = Command::new(env!("CARGO_BIN_EXE_skiff"))
        .args(["image", "import", "--data-dir"])
        .arg(server.dir.path())
        .arg(&file)
        .arg(reference)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "import failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn pod(server: &Server, name: &str) -> Value {
    serde_json::from_str(&server.kubectl_ok(&["get", "pod", name, "-o", "json"])).unwrap()
}

fn wait_phase(server: &Server, name: &str, phase: &str) -> Value {
    eventually(30, || {
        let p = pod(server, name);
        (p["status"]["phase"] == phase).then_some(p)
    })
}

fn apply(server: &Server, yaml: &str) {
    let out = server.kubectl_stdin(&["apply", "-f", "-"], Some(yaml));
    assert!(
        out.status.success(),
        "apply failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_wasm_pod_runs_to_completion_and_its_logs_show() {
    let server = start();
    import(&server, "hello", "hello:v1");
    let node = server.kubectl_ok(&["get", "nodes", "-o", "name"]);
    assert_eq!(node.trim(), "node/test-node");
    apply(
        &server,
        r#"
apiVersion: v1
kind: ConfigMap
metadata: {name: greeting}
data: {word: ahoy}
---
apiVersion: v1
kind: Pod
metadata: {name: hello}
spec:
  restartPolicy: Never
  containers:
  - name: hello
    image: hello:v1
    args: ["one", "two"]
    env:
    - {name: HELLO_NAME, valueFrom: {fieldRef: {fieldPath: metadata.name}}}
    - {name: HELLO_WORD, valueFrom: {configMapKeyRef: {name: greeting, key: word}}}
"#,
    );
    let done = wait_phase(&server, "hello", "Succeeded");
    let state = &done["status"]["containerStatuses"][0]["state"]["terminated"];
    assert_eq!(state["exitCode"], 0);
    assert_eq!(state["reason"], "Completed");
    assert_eq!(done["spec"]["nodeName"], "test-node");
    let logs = server.kubectl_ok(&["logs", "hello"]);
    assert!(logs.contains("hello from a skiff wasm guest"), "{logs}");
    assert!(
        logs.contains("argv[1]=one") && logs.contains("argv[2]=two"),
        "{logs}"
    );
    assert!(
        logs.contains("HELLO_NAME=hello") && logs.contains("HELLO_WORD=ahoy"),
        "{logs}"
    );
    let tail = server.kubectl_ok(&["logs", "hello", "--tail=1"]);
    assert_eq!(tail.lines().count(), 1, "{tail}");
    let stamped = server.kubectl_ok(&["logs", "hello", "--timestamps"]);
    assert!(
        stamped
            .lines()
            .all(|l| l.split(' ').next().unwrap().contains('T')),
        "{stamped}"
    );
    let table = server.kubectl_ok(&["get", "pods"]);
    assert!(table.contains("Completed"), "{table}");
    let described = server.kubectl_ok(&["describe", "pod", "hello"]);
    assert!(
        described.contains("Scheduled") && described.contains("Started"),
        "{described}"
    );
}

#[test]
fn memory_limits_end_in_oom_killed() {
    let server = start();
    import(&server, "memory-hog", "hog:v1");
    apply(
        &server,
        r#"
apiVersion: v1
kind: Pod
metadata: {name: hog}
spec:
  restartPolicy: Never
  containers:
  - name: hog
    image: hog:v1
    args: ["256"]
    resources: {limits: {memory: 16Mi}}
"#,
    );
    let failed = wait_phase(&server, "hog", "Failed");
    let state = &failed["status"]["containerStatuses"][0]["state"]["terminated"];
    assert_eq!(state["reason"], "OOMKilled", "{failed}");
    assert_eq!(state["exitCode"], 137);
}

#[test]
fn failing_containers_restart_with_backoff() {
    let server = start();
    import(&server, "exit-code", "exit:v1");
    apply(
        &server,
        r#"
apiVersion: v1
kind: Pod
metadata: {name: crasher}
spec:
  restartPolicy: OnFailure
  containers:
  - {name: crasher, image: "exit:v1", args: ["3"]}
"#,
    );
    let restarted = eventually(30, || {
        let p = pod(&server, "crasher");
        (p["status"]["containerStatuses"][0]["restartCount"].as_u64() >= Some(2)).then_some(p)
    });
    assert_eq!(restarted["status"]["phase"], "Running");
    assert_eq!(
        restarted["status"]["containerStatuses"][0]["lastState"]["terminated"]["exitCode"],
        3
    );
    let previous = server.kubectl_ok(&["logs", "crasher", "--previous"]);
    let _ = previous;
    let events = server.kubectl_ok(&[
        "get",
        "events",
        "--field-selector",
        "involvedObject.name=crasher",
    ]);
    assert!(events.contains("BackOff"), "{events}");
}

#[test]
fn active_deadline_fails_the_pod_and_deletion_stops_it() {
    let server = start();
    import(&server, "spinner", "spin:v1");
    import(&server, "sleeper", "sleep:v1");
    apply(
        &server,
        r#"
apiVersion: v1
kind: Pod
metadata: {name: spin}
spec:
  restartPolicy: Never
  activeDeadlineSeconds: 2
  containers:
  - {name: spin, image: "spin:v1", resources: {limits: {cpu: 100m}}}
---
apiVersion: v1
kind: Pod
metadata: {name: sleepy}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - {name: sleepy, image: "sleep:v1", args: ["3600"]}
"#,
    );
    let failed = wait_phase(&server, "spin", "Failed");
    assert_eq!(failed["status"]["reason"], "DeadlineExceeded", "{failed}");
    wait_phase(&server, "sleepy", "Running");
    let started = std::time::Instant::now();
    server.kubectl_ok(&["delete", "pod", "sleepy", "--timeout=20s"]);
    assert!(started.elapsed() < std::time::Duration::from_secs(15));
    let gone = server.kubectl(&["get", "pod", "sleepy"]);
    assert!(!gone.status.success());
}

#[test]
fn a_restart_of_the_server_loses_nothing_and_reruns_nothing() {
    let server = start();
    import(&server, "hello", "hello:v1");
    apply(
        &server,
        "apiVersion: v1\nkind: Pod\nmetadata: {name: once}\nspec:\n  restartPolicy: Never\n  containers:\n  - {name: once, image: \"hello:v1\"}\n",
    );
    let before = wait_phase(&server, "once", "Succeeded");
    let finished =
        before["status"]["containerStatuses"][0]["state"]["terminated"]["finishedAt"].clone();
    let dir = server.into_dir();
    let server = Server::start_with(dir, &["--node-name", "test-node"]);
    std::thread::sleep(std::time::Duration::from_secs(2));
    let after = pod(&server, "once");
    assert_eq!(after["status"]["phase"], "Succeeded");
    assert_eq!(
        after["status"]["containerStatuses"][0]["state"]["terminated"]["finishedAt"], finished,
        "not run twice"
    );
    let logs = server.kubectl_ok(&["logs", "once"]);
    assert!(logs.contains("hello from a skiff wasm guest"));
}

#[test]
fn unknown_images_report_a_pull_error() {
    let server = start();
    apply(
        &server,
        "apiVersion: v1\nkind: Pod\nmetadata: {name: ghost}\nspec:\n  containers:\n  - {name: ghost, image: \"127.0.0.1:1/nothing:v1\"}\n",
    );
    let waiting = eventually(30, || {
        let p = pod(&server, "ghost");
        let reason = p["status"]["containerStatuses"][0]["state"]["waiting"]["reason"]
            .as_str()
            .map(String::from);
        reason.filter(|r| r == "ErrImagePull" || r == "ImagePullBackOff")
    });
    assert!(!waiting.is_empty());
}
