//! OCI container pods through kubectl, with the real parts: images built by test code and
//! pushed to Debian's `docker-registry` on loopback, pulled by skiff, run by `runc`.
//!
//! These need root, `runc`, `docker-registry` and `busybox-static` (`.ci/run` installs them).

mod common;
#[path = "common/oci.rs"]
mod oci;

use std::path::Path;
use std::process::Command;

use base64::Engine as _;
use common::{Server, eventually, import_guests};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

fn pod(server: &Server, name: &str) -> Value {
    server.kubectl_json(&["get", "pod", name, "-o", "json"])
}

fn terminated(server: &Server, name: &str) -> Value {
    eventually(60, || {
        let p = pod(server, name);
        let state = p["status"]["containerStatuses"][0]["state"]["terminated"].clone();
        (!state.is_null()).then_some(state)
    })
}

fn waiting_reason(server: &Server, name: &str) -> (String, String) {
    let p = pod(server, name);
    let w = &p["status"]["containerStatuses"][0]["state"]["waiting"];
    (
        w["reason"].as_str().unwrap_or_default().to_string(),
        w["message"].as_str().unwrap_or_default().to_string(),
    )
}

fn logs(server: &Server, args: &[&str]) -> String {
    let mut all = vec!["logs"];
    all.extend_from_slice(args);
    server
        .kubectl(&all)
        .stdout
        .iter()
        .map(|b| *b as char)
        .collect()
}

fn runc_list(data: &Path) -> String {
    let out = Command::new("runc")
        .arg("--root")
        .arg(data.join("runc"))
        .arg("list")
        .arg("-q")
        .output()
        .expect("runc");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn cgroup_file(uid: &str, container: &str, controller: &str, file: &str) -> String {
    std::fs::read_to_string(format!(
        "/sys/fs/cgroup/{controller}/skiff/{uid}/{container}/{file}"
    ))
    .unwrap_or_default()
    .trim()
    .to_string()
}

/// Nothing left of the pods: no mounts under the data dir, no runc containers, no cgroups.
fn assert_clean(data: &Path, uids: &[String]) {
    eventually(30, || {
        (oci::mounts_under(data).is_empty() && runc_list(data).is_empty()).then_some(())
    });
    for uid in uids {
        for controller in ["memory", "cpu", "pids"] {
            let dir = format!("/sys/fs/cgroup/{controller}/skiff/{uid}");
            assert!(!Path::new(&dir).exists(), "{dir} was left behind");
        }
    }
}

/// A registry holding the busybox image, and that image's reference.
async fn busybox_registry() -> (oci::Registry, String) {
    let registry = oci::start_registry();
    push_busybox(&registry).await;
    let image = format!("{}/skiff/bb:v1", registry.addr);
    (registry, image)
}

/// A server on a fresh data dir (started off the async workers).
async fn start_server() -> Server {
    tokio::task::spawn_blocking(|| Server::start_with(tempfile::tempdir().unwrap(), &[]))
        .await
        .unwrap()
}

async fn push_busybox(registry: &oci::Registry) {
    oci::push(
        registry,
        "skiff/bb:v1",
        vec![oci::busybox_layer()],
        json!({"Entrypoint": ["/bin/sh", "-c"], "Cmd": ["echo from-image-cmd"],
               "Env": ["PATH=/bin", "GREETING=image"], "WorkingDir": "/tmp"}),
        "amd64",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn container_pods_pull_run_log_and_keep_their_limits() {
    let (registry, image) = busybox_registry().await;
    let server = tokio::task::spawn_blocking(|| {
        Server::start_with(
            tempfile::tempdir().unwrap(),
            &["--container-pids-limit", "40"],
        )
    })
    .await
    .unwrap();
    let host_dir = server.dir().join("host-volume");
    std::fs::create_dir_all(&host_dir).unwrap();
    std::fs::write(host_dir.join("note.txt"), "from-host-path").unwrap();
    let host_dir = host_dir.display();
    let manifest = format!(
        r#"
apiVersion: v1
kind: Pod
metadata: {{name: hello}}
spec:
  restartPolicy: Never
  containers: [{{name: main, image: "{image}"}}]
---
apiVersion: v1
kind: Pod
metadata: {{name: env}}
spec:
  restartPolicy: Never
  securityContext: {{runAsUser: 1000}}
  containers:
  - name: main
    image: "{image}"
    args: ["echo $GREETING $EXTRA `pwd` `id -u` $(EXTRA) $HOSTNAME"]
    env: [{{name: GREETING, value: pod}}, {{name: EXTRA, value: extra}}]
---
apiVersion: v1
kind: Pod
metadata: {{name: limited}}
spec:
  restartPolicy: Never
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: "{image}"
    command: ["sleep", "300"]
    resources:
      limits: {{memory: 32Mi, cpu: 500m}}
      requests: {{memory: 16Mi, cpu: 250m}}
---
apiVersion: v1
kind: Pod
metadata: {{name: oom}}
spec:
  restartPolicy: Never
  containers:
  - name: main
    image: "{image}"
    command: ["dd", "if=/dev/zero", "of=/dev/null", "bs=100M", "count=1"]
    resources: {{limits: {{memory: 20Mi}}}}
---
apiVersion: v1
kind: Pod
metadata: {{name: nocmd}}
spec:
  restartPolicy: Never
  containers: [{{name: main, image: "{image}", command: ["/no/such/thing"]}}]
---
apiVersion: v1
kind: Pod
metadata: {{name: nopath}}
spec:
  restartPolicy: Never
  containers: [{{name: main, image: "{image}", command: ["nosuchcmd"]}}]
---
apiVersion: v1
kind: Pod
metadata: {{name: missing}}
spec:
  restartPolicy: Never
  containers: [{{name: main, image: "{}/skiff/nothing:v1"}}]
---
apiVersion: v1
kind: ConfigMap
metadata: {{name: settings}}
data: {{greeting: from-configmap}}
---
apiVersion: v1
kind: Secret
metadata: {{name: token}}
stringData: {{token: from-secret}}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {{name: scratch}}
spec:
  accessModes: [ReadWriteOnce]
  resources: {{requests: {{storage: 8Mi}}}}
---
apiVersion: v1
kind: Pod
metadata: {{name: files}}
spec:
  restartPolicy: Never
  hostname: box
  volumes:
  - {{name: cfg, configMap: {{name: settings}}}}
  - {{name: sec, secret: {{secretName: token}}}}
  - {{name: host, hostPath: {{path: "{host_dir}", type: Directory}}}}
  - {{name: data, persistentVolumeClaim: {{claimName: scratch}}}}
  containers:
  - name: main
    image: "{image}"
    command:
    - sh
    - -c
    - >-
      echo "$(cat /etc/hostname) $(hostname) $(grep -c box /etc/hosts)";
      test -f /etc/resolv.conf && echo resolv-ok;
      cat /cfg/greeting /sec/token /host/note.txt; echo;
      echo to-pvc > /data/out.txt && cat /data/out.txt;
      echo to-host > /host/written.txt
    volumeMounts:
    - {{name: cfg, mountPath: /cfg}}
    - {{name: sec, mountPath: /sec, readOnly: true}}
    - {{name: host, mountPath: /host}}
    - {{name: data, mountPath: /data}}
---
apiVersion: v1
kind: Pod
metadata: {{name: forkbomb}}
spec:
  restartPolicy: Never
  terminationGracePeriodSeconds: 0
  containers:
  - name: main
    image: "{image}"
    command: ["sh", "-c", "i=0; while [ $i -lt 100 ]; do sleep 3 & i=$((i+1)); done; wait"]
---
apiVersion: v1
kind: Pod
metadata: {{name: pair}}
spec:
  terminationGracePeriodSeconds: 2
  volumes: [{{name: www, emptyDir: {{}}}}]
  containers:
  - name: server
    image: "{image}"
    command: ["sh", "-c", "echo hi-from-server > /www/index.html; exec httpd -f -p 8080 -h /www"]
    volumeMounts: [{{name: www, mountPath: /www}}]
  - name: client
    image: "{image}"
    command: ["sh", "-c", "trap 'echo got-term; exit 0' TERM; while true; do wget -qO- http://127.0.0.1:8080/index.html; sleep 1; done"]
"#,
        registry.addr
    );
    server.apply(&manifest);

    // The image's Entrypoint and Cmd; its Env and WorkingDir under the pod's env and user.
    assert_eq!(terminated(&server, "hello")["reason"], "Completed");
    assert_eq!(logs(&server, &["hello"]).trim(), "from-image-cmd");
    let hello = pod(&server, "hello");
    let status = &hello["status"]["containerStatuses"][0];
    assert!(
        status["imageID"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{}/skiff/bb@sha256:", registry.addr)),
        "{status}"
    );
    assert!(
        status["containerID"]
            .as_str()
            .unwrap()
            .starts_with("runc://"),
        "{status}"
    );
    assert_eq!(terminated(&server, "env")["exitCode"], 0);
    assert_eq!(
        logs(&server, &["env"]).trim(),
        "pod extra /tmp 1000 extra env"
    );

    // Limits land in the container's cgroup.
    let limited = eventually(60, || {
        let p = pod(&server, "limited");
        (p["status"]["phase"] == "Running").then_some(p)
    });
    let uid = limited["metadata"]["uid"].as_str().unwrap().to_string();
    assert_eq!(
        cgroup_file(&uid, "main", "memory", "memory.limit_in_bytes"),
        (32u64 << 20).to_string()
    );
    assert_eq!(
        cgroup_file(&uid, "main", "cpu", "cpu.cfs_quota_us"),
        "50000"
    );
    assert_eq!(
        cgroup_file(&uid, "main", "cpu", "cpu.cfs_period_us"),
        "100000"
    );
    assert_eq!(cgroup_file(&uid, "main", "cpu", "cpu.shares"), "256");
    assert_eq!(cgroup_file(&uid, "main", "pids", "pids.max"), "40");

    // Bad inputs: each with Kubernetes' reason and a message that says why.
    let oom = terminated(&server, "oom");
    assert_eq!(
        (oom["reason"].as_str(), oom["exitCode"].as_i64()),
        (Some("OOMKilled"), Some(137)),
        "{oom}"
    );
    // A command the image lacks: the container cannot be created (it waits and is retried).
    let (_, message) = eventually(60, || {
        let (r, m) = waiting_reason(&server, "nocmd");
        (r == "CreateContainerError").then_some((r, m))
    });
    assert_eq!(
        message,
        "exec: \"/no/such/thing\": stat /no/such/thing: no such file or directory"
    );
    let (_, message) = eventually(60, || {
        let (r, m) = waiting_reason(&server, "nopath");
        (r == "CreateContainerError").then_some((r, m))
    });
    assert!(
        message.contains("executable file not found in $PATH"),
        "{message}"
    );
    assert_eq!(pod(&server, "nocmd")["status"]["phase"], "Pending");
    let refused = server.kubectl_err(&["logs", "nocmd"]);
    assert!(
        refused.contains("is waiting to start: CreateContainerError"),
        "{refused}"
    );
    // A missing image: ErrImagePull, then ImagePullBackOff between attempts.
    let (reason, message) = eventually(60, || {
        let (r, m) = waiting_reason(&server, "missing");
        (r == "ImagePullBackOff").then_some((r, m))
    });
    assert!(
        message.contains("not found") || message.contains("unknown"),
        "{reason}: {message}"
    );
    let events = server.kubectl_ok(&[
        "get",
        "events",
        "--field-selector",
        "involvedObject.name=missing",
    ]);
    assert!(events.contains("Failed to pull image"), "{events}");

    // The pod's /etc files and its volumes of every kind.
    assert_eq!(terminated(&server, "files")["exitCode"], 0);
    assert_eq!(
        logs(&server, &["files"]).trim(),
        "box box 1\nresolv-ok\nfrom-configmapfrom-secretfrom-host-path\nto-pvc"
    );
    assert_eq!(
        std::fs::read_to_string(server.dir().join("host-volume/written.txt")).unwrap(),
        "to-host\n"
    );
    // A fork bomb meets the pids limit inside its own container.
    let bomb = terminated(&server, "forkbomb");
    let bomb_log = logs(&server, &["forkbomb"]);
    assert!(bomb_log.contains("can't fork"), "{bomb}: {bomb_log}");

    // Two containers of a pod share its network namespace and its volumes.
    eventually(60, || {
        logs(&server, &["pair", "-c", "client"])
            .contains("hi-from-server")
            .then_some(())
    });

    // The node still works, and deleting everything leaves nothing behind.
    let uids: Vec<String> = [
        "hello", "env", "limited", "oom", "nocmd", "nopath", "missing", "forkbomb", "pair", "files",
    ]
    .iter()
    .map(|n| {
        pod(&server, n)["metadata"]["uid"]
            .as_str()
            .unwrap()
            .to_string()
    })
    .collect();
    server.kubectl_ok(&["delete", "pods", "--all", "--wait=true", "--timeout=60s"]);
    assert_clean(server.dir(), &uids);
}

#[tokio::test(flavor = "multi_thread")]
async fn mixed_pods_share_volumes_and_restarts_leak_nothing() {
    let (_registry, image) = busybox_registry().await;
    let mut server = start_server().await;
    import_guests(&server, &[("ci-check", "ci-check:v1")]);
    // The reading container's image comes from an OCI archive (air-gapped), never pulled.
    let archive = server.dir().join("reader.tar");
    oci::oci_archive(
        &archive,
        vec![oci::busybox_layer()],
        json!({"Env": ["PATH=/bin"]}),
        "v1",
    );
    common::import_image(&server, &archive, "offline/reader:v1");
    // A container init container writes a tree, a Wasm init container lints it into another
    // volume, a container reads the Wasm guest's artifact.
    server.apply(&format!(
        r#"
apiVersion: v1
kind: Pod
metadata: {{name: mixed}}
spec:
  restartPolicy: Never
  volumes: [{{name: src, emptyDir: {{}}}}, {{name: out, emptyDir: {{}}}}]
  initContainers:
  - name: write
    image: "{image}"
    command: ["sh", "-c", "printf 'tab\tend   \n' > /src/notes.txt"]
    volumeMounts: [{{name: src, mountPath: /src}}]
  - name: lint
    image: ci-check:v1
    args: ["lint", "/src", "/out", "1"]
    volumeMounts: [{{name: src, mountPath: /src, readOnly: true}}, {{name: out, mountPath: /out}}]
  containers:
  - name: read
    image: offline/reader:v1
    imagePullPolicy: Never
    command: ["cat", "/out/lint-0.txt"]
    volumeMounts: [{{name: out, mountPath: /out}}]
---
apiVersion: v1
kind: Pod
metadata: {{name: long}}
spec:
  containers:
  - name: main
    image: "{image}"
    command: ["sh", "-c", "echo started; exec sleep 1000"]
"#
    ));
    assert_eq!(terminated(&server, "mixed")["exitCode"], 0);
    let artifact = logs(&server, &["mixed", "-c", "read"]);
    assert!(artifact.contains("notes.txt:1"), "{artifact}");

    let long = eventually(60, || {
        let p = pod(&server, "long");
        (p["status"]["containerStatuses"][0]["ready"] == true).then_some(p)
    });
    let uid = long["metadata"]["uid"].as_str().unwrap().to_string();
    let before = runc_list(server.dir());
    assert!(before.contains(&uid), "{before}");

    // SIGKILL the server: the container outlives it; the next server removes it and runs
    // the pod's container again.
    server.kill();
    let dir = server.into_dir();
    assert!(runc_list(dir.path()).contains(&uid));
    let server = tokio::task::spawn_blocking(move || Server::start_with(dir, &[]))
        .await
        .unwrap();
    let restarted = eventually(60, || {
        let p = pod(&server, "long");
        let s = &p["status"]["containerStatuses"][0];
        (s["restartCount"].as_i64() >= Some(1) && s["state"]["running"].is_object()).then_some(p)
    });
    assert_eq!(restarted["metadata"]["uid"], uid.as_str());
    // One container: the new one (runc's list can miss one mid-creation, so look again).
    eventually(30, || {
        (runc_list(server.dir()).lines().count() == 1).then_some(())
    });
    server.kubectl_ok(&[
        "delete",
        "pods",
        "--all",
        "--wait=true",
        "--timeout=60s",
        "--grace-period=1",
    ]);
    assert_clean(server.dir(), &[uid]);
}

fn container_status(server: &Server, name: &str, container: &str) -> Value {
    let p = pod(server, name);
    p["status"]["containerStatuses"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["name"] == container).cloned())
        .unwrap_or(Value::Null)
}

#[tokio::test(flavor = "multi_thread")]
async fn probes_gate_readiness_and_restart_both_kinds() {
    let (_registry, image) = busybox_registry().await;
    let server = start_server().await;
    import_guests(&server, &[("sleeper", "sleeper:v1")]);
    server.apply(&format!(
        r#"
apiVersion: v1
kind: Pod
metadata: {{name: probed}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: web
    image: "{image}"
    command: ["sh", "-c", "mkdir -p /www; echo ok > /www/index.html; httpd -p 8080 -h /www; sleep 3; touch /tmp/ready; sleep 3; rm /www/index.html; exec sleep 1000"]
    ports: [{{name: http, containerPort: 8080}}]
    startupProbe: {{tcpSocket: {{port: http}}, periodSeconds: 1, failureThreshold: 10}}
    readinessProbe: {{exec: {{command: ["cat", "/tmp/ready"]}}, periodSeconds: 1}}
    livenessProbe: {{httpGet: {{path: /index.html, port: 8080}}, periodSeconds: 1, failureThreshold: 2}}
  - name: guest
    image: sleeper:v1
    args: ["600"]
    readinessProbe: {{exec: {{command: ["sleeper", "0"]}}, periodSeconds: 1}}
    livenessProbe: {{exec: {{command: ["sleeper", "5"]}}, timeoutSeconds: 1, periodSeconds: 1, failureThreshold: 2, initialDelaySeconds: 4}}
"#
    ));
    // The container is running but not ready until its readiness command succeeds.
    let early = eventually(60, || {
        let s = container_status(&server, "probed", "web");
        (s["state"]["running"].is_object() && s["started"] == true).then_some(s)
    });
    assert_eq!(early["ready"], false, "{early}");
    eventually(30, || {
        (container_status(&server, "probed", "web")["ready"] == true).then_some(())
    });
    eventually(30, || {
        (container_status(&server, "probed", "guest")["ready"] == true).then_some(())
    });
    // Then its page goes away: the liveness probe fails and the container is restarted; the
    // Wasm guest's liveness command runs past its timeout, so it is restarted too.
    eventually(60, || {
        (container_status(&server, "probed", "web")["restartCount"].as_i64() >= Some(1))
            .then_some(())
    });
    eventually(60, || {
        (container_status(&server, "probed", "guest")["restartCount"].as_i64() >= Some(1))
            .then_some(())
    });
    let events = server.kubectl_ok(&[
        "get",
        "events",
        "--field-selector",
        "involvedObject.name=probed",
    ]);
    assert!(events.contains("Liveness probe failed"), "{events}");
    assert!(
        events.contains("failed liveness probe, will be restarted"),
        "{events}"
    );
    let uid = pod(&server, "probed")["metadata"]["uid"]
        .as_str()
        .unwrap()
        .to_string();
    server.kubectl_ok(&["delete", "pod", "probed", "--wait=true", "--timeout=60s"]);
    assert_clean(server.dir(), &[uid]);
}

/// Whole seconds from one RFC 3339 timestamp to another.
fn seconds_between(from: &Value, to: &Value) -> i64 {
    let at = |v: &Value| chrono::DateTime::parse_from_rfc3339(v.as_str().unwrap()).unwrap();
    (at(to) - at(from)).num_seconds()
}

#[tokio::test(flavor = "multi_thread")]
async fn startup_probes_hold_the_others_and_restarts_stop_gracefully() {
    let (_registry, image) = busybox_registry().await;
    let server = start_server().await;
    // `slow` starts after 8 s; until then neither its readiness probe (which would pass) nor
    // its liveness probe (which fails) runs. After it, liveness restarts it with SIGTERM,
    // which it handles. `stubborn` ignores SIGTERM: it is killed after the grace period.
    server.apply(&format!(
        r#"
apiVersion: v1
kind: Pod
metadata: {{name: graceful}}
spec:
  terminationGracePeriodSeconds: 2
  containers:
  - name: slow
    image: "{image}"
    command: ["sh", "-c", "trap 'echo got-term; exit 3' TERM; sleep 8; touch /tmp/started; while true; do sleep 1; done"]
    startupProbe: {{exec: {{command: ["cat", "/tmp/started"]}}, periodSeconds: 1, failureThreshold: 60}}
    readinessProbe: {{exec: {{command: ["true"]}}, periodSeconds: 1}}
    livenessProbe: {{exec: {{command: ["cat", "/tmp/alive"]}}, periodSeconds: 1, failureThreshold: 1}}
  - name: stubborn
    image: "{image}"
    command: ["sh", "-c", "trap '' TERM; touch /tmp/alive; sleep 2; rm /tmp/alive; while true; do sleep 1; done"]
    livenessProbe: {{exec: {{command: ["cat", "/tmp/alive"]}}, periodSeconds: 1, failureThreshold: 1}}
"#
    ));
    let early = eventually(60, || {
        let s = container_status(&server, "graceful", "slow");
        s["state"]["running"].is_object().then_some(s)
    });
    assert_eq!(
        (&early["started"], &early["ready"]),
        (&json!(false), &json!(false)),
        "{early}"
    );
    // Until it has started it is never ready.
    eventually(60, || {
        let s = container_status(&server, "graceful", "slow");
        let first_attempt = s["restartCount"] == 0;
        if first_attempt && s["started"] != true {
            assert_eq!(s["ready"], false, "{s}");
        }
        (!first_attempt || s["started"] == true).then_some(())
    });
    // Then its liveness probe fails; SIGTERM ends it through its handler. It lived through
    // its 8 s start: liveness did not run before the startup probe passed.
    let restarted = eventually(60, || {
        let s = container_status(&server, "graceful", "slow");
        (s["restartCount"].as_i64() >= Some(1)).then_some(s)
    });
    let last = &restarted["lastState"]["terminated"];
    assert_eq!(last["exitCode"], 3, "{restarted}");
    assert!(
        seconds_between(&last["startedAt"], &last["finishedAt"]) >= 8,
        "{restarted}"
    );
    let previous = logs(&server, &["graceful", "-c", "slow", "--previous"]);
    assert!(previous.contains("got-term"), "{previous}");
    // The container that ignores SIGTERM is killed once the grace period is over.
    let killed = eventually(60, || {
        let s = container_status(&server, "graceful", "stubborn");
        (s["restartCount"].as_i64() >= Some(1)).then_some(s)
    });
    let last = &killed["lastState"]["terminated"];
    assert_eq!(last["exitCode"], 137, "{killed}");
    // Up 2 s, probed within 1 s, then 2 s of grace (timestamps have whole seconds).
    assert!(
        seconds_between(&last["startedAt"], &last["finishedAt"]) >= 3,
        "{killed}"
    );
    let uid = pod(&server, "graceful")["metadata"]["uid"]
        .as_str()
        .unwrap()
        .to_string();
    server.kubectl_ok(&["delete", "pod", "graceful", "--wait=true", "--timeout=60s"]);
    assert_clean(server.dir(), &[uid]);
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_images_are_refused_with_kubernetes_reasons() {
    let registry = oci::start_registry();
    // An image built for another architecture, and one whose layer is not a tarball (its
    // digest is right: the registry checks digests on push, skiff checks them on pull).
    oci::push(
        &registry,
        "skiff/arm:v1",
        vec![oci::busybox_layer()],
        json!({"Cmd": ["/bin/true"]}),
        "arm64",
    )
    .await;
    let garbage = (b"not a tarball at all".repeat(40), "sha256:00".into());
    oci::push(
        &registry,
        "skiff/broken:v1",
        vec![garbage],
        json!({"Cmd": ["/bin/true"]}),
        "amd64",
    )
    .await;
    // A good image whose layer the registry's storage then corrupts: what it serves no
    // longer has the digest the manifest names.
    let (tampered_layer, tampered_diff) = oci::busybox_layer();
    let tampered_digest = format!("sha256:{}", hex::encode(Sha256::digest(&tampered_layer)));
    oci::push(
        &registry,
        "skiff/tampered:v1",
        vec![(tampered_layer.clone(), tampered_diff)],
        json!({"Cmd": ["/bin/true"]}),
        "amd64",
    )
    .await;
    let stored = registry.blob_file(&tampered_digest);
    let mut corrupt = std::fs::read(&stored).unwrap();
    assert_eq!(corrupt.len(), tampered_layer.len());
    let middle = corrupt.len() / 2;
    corrupt[middle] ^= 0xff;
    std::fs::write(&stored, corrupt).unwrap();
    let server = start_server().await;
    server.apply(&format!(
        r#"
apiVersion: v1
kind: Pod
metadata: {{name: tampered}}
spec:
  containers: [{{name: main, image: "{0}/skiff/tampered:v1"}}]
---
apiVersion: v1
kind: Pod
metadata: {{name: arm}}
spec:
  containers: [{{name: main, image: "{0}/skiff/arm:v1"}}]
---
apiVersion: v1
kind: Pod
metadata: {{name: broken}}
spec:
  containers: [{{name: main, image: "{0}/skiff/broken:v1"}}]
---
apiVersion: v1
kind: Pod
metadata: {{name: unreachable}}
spec:
  containers: [{{name: main, image: "127.0.0.1:1/skiff/bb:v1"}}]
"#,
        registry.addr
    ));
    // Another architecture is refused at the pull, before any layer is fetched.
    let (reason, message) = eventually(60, || {
        let (r, m) = waiting_reason(&server, "arm");
        (r == "ErrImagePull" || r == "ImagePullBackOff").then_some((r, m))
    });
    assert!(message.contains("linux/arm64"), "{reason}: {message}");
    let (reason, message) = eventually(60, || {
        let (r, m) = waiting_reason(&server, "tampered");
        (r == "ErrImagePull" || r == "ImagePullBackOff").then_some((r, m))
    });
    assert!(message.contains("digest mismatch"), "{reason}: {message}");
    assert!(message.contains(&tampered_digest), "{reason}: {message}");
    let (_, message) = eventually(60, || {
        let (r, m) = waiting_reason(&server, "broken");
        (r == "CreateContainerError").then_some((r, m))
    });
    assert!(message.contains("layer"), "{message}");
    let (_, message) = eventually(60, || {
        let (r, m) = waiting_reason(&server, "unreachable");
        (r == "ErrImagePull" || r == "ImagePullBackOff").then_some((r, m))
    });
    assert!(message.contains("reach"), "{message}");
    server.kubectl_ok(&["delete", "pods", "--all", "--wait=true", "--timeout=60s"]);
    assert!(oci::mounts_under(server.dir()).is_empty());
    assert!(runc_list(server.dir()).is_empty());
    // Nothing half-downloaded is kept, and the bad content was never stored.
    let tmp: Vec<_> = std::fs::read_dir(server.dir().join("images/tmp"))
        .unwrap()
        .collect();
    assert!(tmp.is_empty(), "{tmp:?}");
    let hex = tampered_digest.trim_start_matches("sha256:");
    assert!(!server.dir().join("images/blobs/sha256").join(hex).exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn private_registries_take_pull_secrets_and_docker_config() {
    let registry = oci::start_registry_with_auth();
    for tag in ["v1", "v2"] {
        oci::push(
            &registry,
            &format!("private/bb:{tag}"),
            vec![oci::busybox_layer()],
            json!({"Entrypoint": ["/bin/sh", "-c"], "Cmd": [format!("echo pulled-{tag}")],
                   "Env": ["PATH=/bin"]}),
            "amd64",
        )
        .await;
    }
    // The server's docker config directory; its config.json is written later.
    let docker_config = tempfile::tempdir().unwrap();
    let config_dir = docker_config.path().display().to_string();
    let server = tokio::task::spawn_blocking(move || {
        Server::start_with_env(
            tempfile::tempdir().unwrap(),
            &[],
            &[("DOCKER_CONFIG", &config_dir)],
        )
    })
    .await
    .unwrap();
    let (user, password) = oci::PULLER;
    let addr = &registry.addr;

    // Without credentials the registry says no.
    server.apply(&format!(
        r#"
apiVersion: v1
kind: Pod
metadata: {{name: anonymous}}
spec:
  restartPolicy: Never
  containers: [{{name: main, image: "{addr}/private/bb:v1"}}]
"#
    ));
    let (reason, message) = eventually(60, || {
        let (r, m) = waiting_reason(&server, "anonymous");
        (r == "ErrImagePull" || r == "ImagePullBackOff").then_some((r, m))
    });
    assert!(message.contains("unauthorized"), "{reason}: {message}");
    server.kubectl_ok(&["delete", "pod", "anonymous", "--wait=true"]);

    // A kubernetes.io/dockerconfigjson Secret named in imagePullSecrets, made by kubectl.
    server.kubectl_ok(&[
        "create",
        "secret",
        "docker-registry",
        "regcred",
        &format!("--docker-server={addr}"),
        &format!("--docker-username={user}"),
        &format!("--docker-password={password}"),
    ]);
    server.apply(&format!(
        r#"
apiVersion: v1
kind: Pod
metadata: {{name: with-secret}}
spec:
  restartPolicy: Never
  imagePullSecrets: [{{name: regcred}}]
  containers: [{{name: main, image: "{addr}/private/bb:v1"}}]
"#
    ));
    assert_eq!(terminated(&server, "with-secret")["exitCode"], 0);
    assert_eq!(logs(&server, &["with-secret"]).trim(), "pulled-v1");

    // The node's own docker config (`$DOCKER_CONFIG/config.json`, as `docker login` writes).
    let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    std::fs::write(
        docker_config.path().join("config.json"),
        json!({"auths": {(addr.as_str()): {"auth": token}}}).to_string(),
    )
    .unwrap();
    server.apply(&format!(
        r#"
apiVersion: v1
kind: Pod
metadata: {{name: from-config}}
spec:
  restartPolicy: Never
  containers: [{{name: main, image: "{addr}/private/bb:v2"}}]
"#
    ));
    assert_eq!(terminated(&server, "from-config")["exitCode"], 0);
    assert_eq!(logs(&server, &["from-config"]).trim(), "pulled-v2");
    server.kubectl_ok(&["delete", "pods", "--all", "--wait=true", "--timeout=60s"]);
    assert!(runc_list(server.dir()).is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn containers_and_functions_share_services_and_ingress() {
    let (_registry, image) = busybox_registry().await;
    let server = start_server().await;
    common::import_image(
        &server,
        &common::example_components().join("hello_http.wasm"),
        "hello-http:v1",
    );
    server.apply(&format!(
        r#"
apiVersion: apps/v1
kind: Deployment
metadata: {{name: static}}
spec:
  replicas: 2
  selector: {{matchLabels: {{app: static}}}}
  template:
    metadata: {{labels: {{app: static}}}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: httpd
        image: "{image}"
        command: ["sh", "-c", "mkdir -p /www; echo from $HOSTNAME > /www/index.html; exec httpd -f -p 8080 -h /www"]
        ports: [{{name: web, containerPort: 8080}}]
        readinessProbe: {{httpGet: {{path: /index.html, port: web}}, periodSeconds: 1}}
---
apiVersion: v1
kind: Service
metadata: {{name: static}}
spec:
  selector: {{app: static}}
  ports: [{{name: http, port: 80, targetPort: web}}]
---
apiVersion: v1
kind: Pod
metadata: {{name: fn, labels: {{app: fn}}}}
spec:
  containers: [{{name: hello, image: hello-http:v1, ports: [{{containerPort: 8080}}]}}]
---
apiVersion: v1
kind: Service
metadata: {{name: fn}}
spec:
  selector: {{app: fn}}
  ports: [{{port: 80, targetPort: 8080}}]
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {{name: site}}
spec:
  ingressClassName: skiff
  rules:
  - host: site.localhost
    http:
      paths:
      - {{path: /, pathType: Prefix, backend: {{service: {{name: static, port: {{name: http}}}}}}}}
      - {{path: /fn, pathType: Prefix, backend: {{service: {{name: fn, port: {{number: 80}}}}}}}}
"#
    ));
    eventually(90, || {
        let ep = server.kubectl_json(&["get", "endpoints", "static", "-o", "json"]);
        (ep["subsets"][0]["addresses"].as_array().map_or(0, Vec::len) == 2).then_some(())
    });
    eventually(60, || {
        let ep = server.kubectl_json(&["get", "endpoints", "fn", "-o", "json"]);
        ep["subsets"][0]["addresses"].is_array().then_some(())
    });
    let http = reqwest::Client::new();
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..6 {
        let response = http
            .get(format!("{}/index.html", server.gateway()))
            .header("host", "site.localhost")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 200);
        let body = response.text().await.unwrap();
        assert!(body.starts_with("from static-"), "{body}");
        seen.insert(body);
    }
    assert_eq!(seen.len(), 2, "both container replicas answer: {seen:?}");
    let body = common::body_of(
        http.get(format!("{}/fn/x", server.gateway()))
            .header("host", "site.localhost"),
    )
    .await;
    assert_eq!(body.trim(), "hello from fn at /fn/x");
    // The API server's service proxy reaches the containers too.
    let body = server.kubectl_ok(&[
        "get",
        "--raw",
        "/api/v1/namespaces/default/services/static:http/proxy/index.html",
    ]);
    assert!(body.starts_with("from static-"), "{body}");
    // `kubectl port-forward` reaches a container's port inside its pod's network namespace,
    // by Deployment (kubectl picks one of its pods) and by Service port (80 -> web).
    for (target, remote) in [("deploy/static", "8080"), ("svc/static", "80")] {
        let forward = server.port_forward(target, remote, &[]);
        let body =
            common::body_of(http.get(format!("http://127.0.0.1:{}/index.html", forward.port)))
                .await;
        assert!(
            body.starts_with("from static-"),
            "{target}: {body} {}",
            forward.stderr()
        );
    }
    server.kubectl_ok(&["delete", "deployment", "static"]);
    let dir = server.dir().to_path_buf();
    tokio::task::spawn_blocking(move || assert_clean(&dir, &[]))
        .await
        .unwrap();
}
