//! Wasm pods end to end: images imported with `skiff image import`, pods created with real
//! kubectl, run by the embedded node, observed through status and `kubectl logs`.

mod common;

use common::{Server, eventually, example_guests};
use serde_json::Value;

fn start() -> Server {
    start_with(&[])
}

/// Held by tests that load every core (the hostile storm) or that compare CPU shares, so
/// that they do not run at the same time as each other.
static CPU_HEAVY: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn cpu_heavy() -> std::sync::MutexGuard<'static, ()> {
    CPU_HEAVY
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A server with fast restart backoff, node `test-node`, and `extra` serve arguments.
fn start_with(extra: &[&str]) -> Server {
    let mut args = vec![
        "--restart-backoff-seconds",
        "0.2",
        "--restart-backoff-max-seconds",
        "1",
        "--node-name",
        "test-node",
    ];
    args.extend_from_slice(extra);
    Server::start_with(tempfile::tempdir().unwrap(), &args)
}

/// Imports one of `examples/wasm/hostile/*.wat` as `hostile/NAME:v1`.
fn import_hostile(server: &Server, name: &str) {
    let file = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join(format!("examples/wasm/hostile/{name}.wat"));
    common::import_image(server, &file, &format!("hostile/{name}:v1"));
}

fn import(server: &Server, guest: &str, reference: &str) {
    common::import_image(
        server,
        &example_guests().join(format!("{guest}.wasm")),
        reference,
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

#[test]
fn a_wasm_pod_runs_to_completion_and_its_logs_show() {
    let server = start();
    import(&server, "hello", "hello:v1");
    let node = server.kubectl_ok(&["get", "nodes", "-o", "name"]);
    assert_eq!(node.trim(), "node/test-node");
    server.apply(
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
    server.apply(
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
    server.apply(
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
    assert!(previous.contains("exiting with 3"), "{previous}");
    let events = server.kubectl_ok(&[
        "get",
        "events",
        "--field-selector",
        "involvedObject.name=crasher",
    ]);
    assert!(events.contains("BackOff"), "{events}");
}

/// Each component writes Normal events within its rate (here 4 at once, then one per 10 s);
/// the rest are dropped, as Kubernetes' throttled event clients drop them. A Warning is
/// written however many Normal events came before it.
#[test]
fn normal_events_keep_to_the_event_rate_and_warnings_always_get_through() {
    let server = start_with(&["--event-qps", "0.1", "--event-burst", "4"]);
    import(&server, "exit-code", "exit:v1");
    let pods: String = (0..10)
        .map(|i| {
            format!(
                "apiVersion: v1\nkind: Pod\nmetadata: {{name: quick-{i}}}\nspec:\n  restartPolicy: Never\n  containers:\n  - {{name: c, image: \"exit:v1\", args: [\"0\"]}}\n---\n"
            )
        })
        .collect();
    server.apply(&pods);
    for i in 0..10 {
        wait_phase(&server, &format!("quick-{i}"), "Succeeded");
    }
    server.apply(
        r#"
apiVersion: v1
kind: Pod
metadata: {name: missing}
spec:
  restartPolicy: Never
  containers:
  - {name: c, image: "not-here:v1", imagePullPolicy: Never}
"#,
    );
    let warnings = eventually(30, || {
        let events = server.kubectl_json(&[
            "get",
            "events",
            "--field-selector",
            "involvedObject.name=missing,type=Warning",
        ]);
        let items = events["items"].as_array().cloned().unwrap_or_default();
        (!items.is_empty()).then_some(items)
    });
    assert!(
        warnings[0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("not-here")),
        "{warnings:?}"
    );
    let normal = server.kubectl_json(&["get", "events", "--field-selector", "type=Normal"]);
    let from = |component: &str| {
        normal["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["source"]["component"] == component)
            .count()
    };
    // Unlimited, the kubelet would have written 20 (Created, Started) and the scheduler 11.
    let (kubelet, scheduler) = (from("kubelet"), from("default-scheduler"));
    assert!((1..=8).contains(&kubelet), "kubelet wrote {kubelet}");
    assert!((1..=8).contains(&scheduler), "scheduler wrote {scheduler}");
}

#[test]
fn active_deadline_fails_the_pod_and_deletion_stops_it() {
    let server = start();
    import(&server, "spinner", "spin:v1");
    import(&server, "sleeper", "sleep:v1");
    server.apply(
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
    server.apply(
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
    server.apply(
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

#[test]
fn logs_rotate_by_size_and_honour_limit_bytes_since_and_follow() {
    let server = start_with(&[
        "--container-log-max-size",
        "4Ki",
        "--container-log-max-files",
        "2",
    ]);
    import(&server, "chatter", "chatter:v1");
    server.apply(
        r#"
apiVersion: v1
kind: Pod
metadata: {name: flood}
spec:
  restartPolicy: Never
  containers:
  - {name: main, image: "chatter:v1", args: ["3000"]}
---
apiVersion: v1
kind: Pod
metadata: {name: ticker}
spec:
  restartPolicy: Never
  containers:
  - {name: main, image: "chatter:v1", args: ["8", "400"]}
"#,
    );
    // Follow the ticker from while it runs: the stream ends when the container does.
    wait_phase(&server, "ticker", "Running");
    let started = std::time::Instant::now();
    let followed = server.kubectl_ok(&["logs", "-f", "ticker"]);
    let followed_for = started.elapsed();
    assert!(followed.contains("line 8 of 8"), "{followed}");
    assert!(
        followed_for >= std::time::Duration::from_millis(800),
        "follow returned after {followed_for:?}, before the guest finished"
    );
    assert_eq!(pod(&server, "ticker")["status"]["phase"], "Succeeded");

    // 3,000 lines of about 70 bytes went through a 4 KiB, 2-file rotation: only the tail
    // is kept, and kubectl logs reads across the rotated file.
    wait_phase(&server, "flood", "Succeeded");
    let logs = server.kubectl_ok(&["logs", "flood"]);
    assert!(logs.contains("line 3000 of 3000"), "{logs}");
    assert!(
        !logs.contains("line 1 of 3000:"),
        "rotation dropped nothing"
    );
    assert!(logs.len() <= 2 * 4096 + 200, "{} bytes kept", logs.len());
    assert!(
        logs.lines().count() > 4096 / 80,
        "only the live file was read"
    );
    assert!(logs.contains("to stderr"), "stderr is captured too");

    let limited = server.kubectl_ok(&["logs", "flood", "--limit-bytes=100"]);
    assert!(!limited.is_empty() && limited.len() <= 100, "{limited:?}");
    let recent = server.kubectl_ok(&["logs", "flood", "--since=1h"]);
    assert_eq!(recent, logs);
    std::thread::sleep(std::time::Duration::from_secs(2));
    let none = server.kubectl_ok(&["logs", "flood", "--since=1s"]);
    assert_eq!(none, "", "nothing was written in the last second");
}

#[test]
fn a_thousand_hostile_pods_end_clearly_while_the_server_keeps_serving() {
    const EACH: usize = 200;
    let _heavy = cpu_heavy();
    let server = start_with(&["--container-log-max-size", "64Ki"]);
    import(&server, "hello", "hello:v1");
    import(&server, "chatter", "chatter:v1");
    for name in [
        "infinite-loop",
        "memory-bomb",
        "deep-recursion",
        "missing-export",
    ] {
        import_hostile(&server, name);
    }
    let garbage = common::write_file(&server, "garbage.wasm", "\0asm\x01\0\0\0 this is not wasm");
    common::import_image(&server, &garbage, "hostile/garbage:v1");

    let kinds: [(&str, &str); 5] = [
        (
            "loop",
            r#"activeDeadlineSeconds: 3
  containers: [{name: main, image: "hostile/infinite-loop:v1"}]"#,
        ),
        (
            "bomb",
            r#"containers: [{name: main, image: "hostile/memory-bomb:v1", resources: {limits: {memory: 16Mi}}}]"#,
        ),
        (
            "recursion",
            r#"containers: [{name: main, image: "hostile/deep-recursion:v1"}]"#,
        ),
        (
            "noexport",
            r#"containers: [{name: main, image: "hostile/missing-export:v1"}]"#,
        ),
        (
            "garbage",
            r#"containers: [{name: main, image: "hostile/garbage:v1"}]"#,
        ),
    ];
    let mut stream = String::new();
    for i in 0..EACH {
        for (kind, spec) in &kinds {
            stream.push_str(&format!(
                "---\napiVersion: v1\nkind: Pod\nmetadata: {{name: {kind}-{i}, labels: {{kind: {kind}}}}}\nspec:\n  restartPolicy: Never\n  {spec}\n"
            ));
        }
    }
    for i in 0..10 {
        stream.push_str(&format!(
            "---\napiVersion: v1\nkind: Pod\nmetadata: {{name: flood-{i}, labels: {{kind: flood}}}}\nspec:\n  restartPolicy: Never\n  activeDeadlineSeconds: 3\n  containers: [{{name: main, image: \"chatter:v1\", args: [\"0\"]}}]\n"
        ));
    }
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (code, body) = runtime.block_on(
        server.call(
            server
                .request(reqwest::Method::POST, "/apply")
                .header("Content-Type", "application/yaml")
                .body(stream),
        ),
    );
    assert_eq!(code, 200, "{body}");

    // While they run, the API answers and a well-behaved pod still completes.
    server.kubectl_ok(&["get", "--raw", "/readyz"]);
    server.apply(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: bystander}\nspec:\n  restartPolicy: Never\n  containers:\n  - {name: main, image: \"hello:v1\"}\n",
    );
    wait_phase(&server, "bystander", "Succeeded");
    let logs = server.kubectl_ok(&["logs", "bystander"]);
    assert!(logs.contains("hello from a skiff wasm guest"), "{logs}");

    let settled = |kind: &str, ok: &dyn Fn(&Value) -> bool| -> Vec<Value> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(240);
        loop {
            let list: Value = serde_json::from_str(&server.kubectl_ok(&[
                "get",
                "pods",
                "-l",
                &format!("kind={kind}"),
                "-o",
                "json",
            ]))
            .unwrap();
            let items = list["items"].as_array().cloned().unwrap_or_default();
            let pending: Vec<&Value> = items.iter().filter(|p| !ok(p)).collect();
            if !items.is_empty() && pending.is_empty() {
                return items;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{} of {} {kind} pods not settled, e.g. {}",
                pending.len(),
                items.len(),
                pending
                    .first()
                    .map(|p| p["status"].to_string())
                    .unwrap_or_default()
            );
            std::thread::sleep(std::time::Duration::from_millis(500));
        }
    };
    let terminated = |p: &Value| p["status"]["containerStatuses"][0]["state"]["terminated"].clone();
    let loops = settled("loop", &|p| p["status"]["phase"] == "Failed");
    assert_eq!(loops.len(), EACH);
    assert!(
        loops
            .iter()
            .all(|p| p["status"]["reason"] == "DeadlineExceeded")
    );
    let bombs = settled("bomb", &|p| p["status"]["phase"] == "Failed");
    for p in &bombs {
        assert_eq!(terminated(p)["reason"], "OOMKilled", "{p}");
        assert_eq!(terminated(p)["exitCode"], 137, "{p}");
    }
    for p in settled("recursion", &|p| p["status"]["phase"] == "Failed") {
        let t = terminated(&p);
        assert_eq!(t["reason"], "Error", "{p}");
        assert!(t["message"].as_str().is_some_and(|m| !m.is_empty()), "{p}");
    }
    let create_error = |p: &Value, needle: &str| {
        let waiting = &p["status"]["containerStatuses"][0]["state"]["waiting"];
        waiting["reason"] == "CreateContainerError"
            && waiting["message"]
                .as_str()
                .is_some_and(|m| m.contains(needle))
    };
    settled("noexport", &|p| create_error(p, "`_start`"));
    settled("garbage", &|p| create_error(p, "invalid WebAssembly"));
    for p in settled("flood", &|p| p["status"]["phase"] == "Failed") {
        assert_eq!(p["status"]["reason"], "DeadlineExceeded", "{p}");
        let name = p["metadata"]["name"].as_str().unwrap();
        let kept = server.kubectl_ok(&["logs", name]);
        assert!(
            kept.len() <= 5 * 64 * 1024 + 200,
            "{} bytes kept",
            kept.len()
        );
        assert!(
            kept.contains(" of 0: the quick brown fox"),
            "{name} logged nothing"
        );
    }
    server.kubectl_ok(&["get", "--raw", "/readyz"]);
}

#[test]
fn init_containers_volumes_mounts_and_working_dir_behave_as_in_kubernetes() {
    let server = start();
    import(&server, "hello", "hello:v1");
    server.apply(
        r#"
apiVersion: v1
kind: ConfigMap
metadata: {name: settings}
data: {greeting: ahoy}
---
apiVersion: v1
kind: Secret
metadata: {name: creds}
stringData: {token: s3cret}
---
apiVersion: v1
kind: Pod
metadata: {name: volumes}
spec:
  restartPolicy: Never
  volumes:
  - {name: shared, emptyDir: {}}
  - {name: work, emptyDir: {}}
  - {name: settings, configMap: {name: settings}}
  - {name: creds, secret: {secretName: creds}}
  initContainers:
  - name: producer
    image: hello:v1
    env: [{name: HELLO_WRITE, value: /shared/from-init.txt}]
    volumeMounts: [{name: shared, mountPath: /shared}]
  containers:
  - name: consumer
    image: hello:v1
    env: [{name: HELLO_READ, value: /shared/from-init.txt}]
    volumeMounts: [{name: shared, mountPath: /shared, readOnly: true}]
  - name: workdir
    image: hello:v1
    workingDir: /work
    volumeMounts: [{name: work, mountPath: /work}]
  - name: config
    image: hello:v1
    env: [{name: HELLO_READ, value: /etc/app/greeting}]
    volumeMounts: [{name: settings, mountPath: /etc/app}]
  - name: secret
    image: hello:v1
    env: [{name: HELLO_READ, value: /var/run/creds/token}]
    volumeMounts: [{name: creds, mountPath: /var/run/creds}]
---
apiVersion: v1
kind: Pod
metadata: {name: confined}
spec:
  restartPolicy: Never
  volumes:
  - {name: shared, emptyDir: {}}
  containers:
  - name: readonly
    image: hello:v1
    env: [{name: HELLO_WRITE, value: /shared/nope.txt}]
    volumeMounts: [{name: shared, mountPath: /shared, readOnly: true}]
  - name: host
    image: hello:v1
    env: [{name: HELLO_READ, value: /etc/hostname}]
"#,
    );
    let done = wait_phase(&server, "volumes", "Succeeded");
    let init = &done["status"]["initContainerStatuses"][0];
    assert_eq!(init["name"], "producer");
    assert_eq!(init["state"]["terminated"]["reason"], "Completed", "{done}");
    let logs = |container: &str| server.kubectl_ok(&["logs", "volumes", "-c", container]);
    assert!(logs("producer").contains("wrote /shared/from-init.txt"));
    assert!(
        logs("consumer").contains("read /shared/from-init.txt: written by hello"),
        "the init container's file is in the shared volume"
    );
    let workdir = logs("workdir");
    assert!(workdir.contains("env PWD=/work"), "{workdir}");
    assert!(workdir.contains("wrote /work/hello.txt"), "{workdir}");
    assert!(logs("config").contains("read /etc/app/greeting: ahoy"));
    assert!(logs("secret").contains("read /var/run/creds/token: s3cret"));

    let confined = wait_phase(&server, "confined", "Failed");
    let statuses = confined["status"]["containerStatuses"].as_array().unwrap();
    let exit_of = |name: &str| {
        statuses.iter().find(|c| c["name"] == name).unwrap()["state"]["terminated"]["exitCode"]
            .as_i64()
    };
    assert_eq!(
        exit_of("readonly"),
        Some(10),
        "a readOnly mount refuses writes"
    );
    assert_eq!(
        exit_of("host"),
        Some(11),
        "the host filesystem is invisible"
    );
}

#[test]
fn cpu_limits_throttle_a_spinning_pod() {
    let _heavy = cpu_heavy();
    let server = start();
    import(&server, "spinner", "spin:v1");
    server.apply(
        r#"
apiVersion: v1
kind: Pod
metadata: {name: full}
spec:
  restartPolicy: Never
  containers:
  - {name: spin, image: "spin:v1", args: ["2"], resources: {limits: {cpu: 1000m}}}
---
apiVersion: v1
kind: Pod
metadata: {name: tenth}
spec:
  restartPolicy: Never
  containers:
  - {name: spin, image: "spin:v1", args: ["2"], resources: {limits: {cpu: 100m}}}
"#,
    );
    let rounds = |name: &str| -> f64 {
        wait_phase(&server, name, "Succeeded");
        let logs = server.kubectl_ok(&["logs", name]);
        logs.split_whitespace()
            .nth(1)
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no round count in {logs:?}"))
    };
    let (full, tenth) = (rounds("full"), rounds("tenth"));
    // Same wall time; a tenth of a core does far less work (the exact share is measured by
    // the runtime's throttling test and benchmark, on a quiet machine).
    assert!(
        tenth * 2.0 < full,
        "100m did {tenth} rounds, 1000m did {full}"
    );
}
