//! Workload controllers end to end with real kubectl: ReplicaSets (and, through them,
//! Deployments) on the embedded node running Wasm pods.

mod common;

use common::{Server, eventually, example_guests, import_image};
use serde_json::Value;

fn start() -> Server {
    let server = Server::start_with(tempfile::tempdir().unwrap(), &["--node-name", "test-node"]);
    import_image(
        &server,
        &example_guests().join("sleeper.wasm"),
        "sleeper:v1",
    );
    server
}

fn apply_file(server: &Server, path: &str) {
    let file = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(path);
    server.kubectl_ok(&["apply", "-f", file.to_str().unwrap()]);
}

/// Active (not terminating, not finished) pods with `selector`.
fn active_pods(server: &Server, selector: &str) -> Vec<Value> {
    server.kubectl_json(&["get", "pods", "-l", selector])["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
        .collect()
}

fn owner_uid(pod: &Value) -> Option<String> {
    pod["metadata"]["ownerReferences"]
        .as_array()?
        .iter()
        .find(|r| r["controller"] == true)
        .and_then(|r| r["uid"].as_str())
        .map(String::from)
}

#[test]
fn a_replicaset_keeps_its_replicas_adopts_releases_and_scales() {
    let server = start();
    apply_file(&server, "examples/workloads/replicaset.yaml");
    let rs = eventually(30, || {
        let rs = server.kubectl_json(&["get", "rs", "web"]);
        (rs["status"]["readyReplicas"] == 3).then_some(rs)
    });
    let rs_uid = rs["metadata"]["uid"].as_str().unwrap().to_string();
    assert_eq!(rs["status"]["replicas"], 3);
    assert_eq!(rs["status"]["availableReplicas"], 3);
    assert_eq!(rs["status"]["observedGeneration"], 1);
    let pods = active_pods(&server, "app=web");
    assert_eq!(pods.len(), 3);
    for pod in &pods {
        let name = pod["metadata"]["name"].as_str().unwrap();
        assert!(
            name.starts_with("web-") && name.len() == "web-".len() + 5,
            "{name}"
        );
        assert_eq!(owner_uid(pod).as_deref(), Some(rs_uid.as_str()));
        assert_eq!(pod["status"]["phase"], "Running");
    }
    let table = server.kubectl_ok(&["get", "rs", "web"]);
    assert!(table.contains("web") && table.contains('3'), "{table}");

    // A deleted pod is replaced.
    let victim = pods[0]["metadata"]["name"].as_str().unwrap().to_string();
    server.kubectl_ok(&["delete", "pod", &victim, "--wait=false"]);
    eventually(30, || {
        let now = active_pods(&server, "app=web");
        (now.len() == 3 && now.iter().all(|p| p["metadata"]["name"] != victim.as_str()))
            .then_some(())
    });

    // kubectl scale, up and down (the least valuable pods go first).
    server.kubectl_ok(&["scale", "rs", "web", "--replicas=5"]);
    eventually(30, || {
        let rs = server.kubectl_json(&["get", "rs", "web"]);
        (rs["status"]["readyReplicas"] == 5 && active_pods(&server, "app=web").len() == 5)
            .then_some(())
    });
    server.kubectl_ok(&["scale", "rs", "web", "--replicas=2"]);
    eventually(30, || {
        (active_pods(&server, "app=web").len() == 2).then_some(())
    });

    // A matching orphan is adopted (and, being one too many, the least valuable goes).
    server.kubectl_ok(&[
        "run",
        "stray",
        "--image=sleeper:v1",
        "--labels=app=web",
        "--restart=Always",
        "--",
        "3600",
    ]);
    eventually(30, || {
        let now = active_pods(&server, "app=web");
        (now.len() == 2 && now.iter().all(|p| owner_uid(p).as_deref() == Some(&rs_uid)))
            .then_some(())
    });

    // A pod relabelled out of the selector is released and replaced.
    let kept = active_pods(&server, "app=web")[0]["metadata"]["name"]
        .as_str()
        .unwrap()
        .to_string();
    server.kubectl_ok(&["label", "pod", &kept, "app=debug", "--overwrite"]);
    eventually(30, || {
        let released = server.kubectl_json(&["get", "pod", &kept]);
        (owner_uid(&released).is_none() && active_pods(&server, "app=web").len() == 2).then_some(())
    });

    // Deleting the ReplicaSet deletes its pods, not the released one.
    server.kubectl_ok(&["delete", "rs", "web"]);
    eventually(60, || {
        active_pods(&server, "app=web").is_empty().then_some(())
    });
    assert_eq!(active_pods(&server, "app=debug").len(), 1);
    let events = server.kubectl_ok(&[
        "get",
        "events",
        "--field-selector",
        "reason=SuccessfulCreate",
    ]);
    assert!(events.contains("Created pod: web-"), "{events}");
}

/// Watches the pods matching `selector` through the API (initial list, then changes) and
/// checks, at every event after the initial list, that the non-terminating pods never exceed
/// `max_total` and the ready ones never drop below `min_ready`.
struct Invariants {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    reader: Option<std::thread::JoinHandle<Result<usize, String>>>,
}

impl Invariants {
    fn watch(server: &Server, selector: &str, max_total: usize, min_ready: usize) -> Self {
        let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
        let request = server.request(
            reqwest::Method::GET,
            &format!(
                "/api/v1/namespaces/default/pods?watch=true&labelSelector={selector}&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true"
            ),
        );
        let reader = std::thread::spawn(move || {
            let runtime = tokio::runtime::Runtime::new().unwrap();
            runtime.block_on(async move {
                use futures::StreamExt;
                let response = request.send().await.map_err(|e| e.to_string())?;
                let mut stream = response.bytes_stream();
                let mut buffer = Vec::new();
                let mut pods: std::collections::HashMap<String, Value> = Default::default();
                let mut listed = false;
                let mut events = 0;
                loop {
                    let chunk = tokio::select! {
                        _ = &mut stopped => return Ok(events),
                        chunk = stream.next() => chunk,
                    };
                    let Some(Ok(chunk)) = chunk else {
                        return Ok(events);
                    };
                    buffer.extend_from_slice(&chunk);
                    while let Some(at) = buffer.iter().position(|b| *b == b'\n') {
                        let line: Vec<u8> = buffer.drain(..=at).collect();
                        let Ok(event) = serde_json::from_slice::<Value>(&line) else {
                            continue;
                        };
                        let object = &event["object"];
                        let name = object["metadata"]["name"]
                            .as_str()
                            .unwrap_or_default()
                            .to_string();
                        match event["type"].as_str() {
                            Some("BOOKMARK") => {
                                if object["metadata"]["annotations"]["k8s.io/initial-events-end"]
                                    == "true"
                                {
                                    listed = true;
                                }
                                continue;
                            }
                            Some("DELETED") => {
                                pods.remove(&name);
                            }
                            _ => {
                                pods.insert(name, object.clone());
                            }
                        }
                        events += 1;
                        if !listed {
                            continue;
                        }
                        let live: Vec<&Value> = pods
                            .values()
                            .filter(|p| {
                                p["metadata"]["deletionTimestamp"].is_null()
                                    && !matches!(
                                        p["status"]["phase"].as_str(),
                                        Some("Succeeded" | "Failed")
                                    )
                            })
                            .collect();
                        let ready = live
                            .iter()
                            .filter(|p| {
                                p["status"]["conditions"].as_array().is_some_and(|cs| {
                                    cs.iter()
                                        .any(|c| c["type"] == "Ready" && c["status"] == "True")
                                })
                            })
                            .count();
                        if live.len() > max_total {
                            let mut groups: std::collections::BTreeMap<String, usize> =
                                Default::default();
                            for p in &live {
                                *groups
                                    .entry(format!(
                                        "{}/{}",
                                        p["metadata"]["labels"]["pod-template-hash"],
                                        p["status"]["phase"]
                                    ))
                                    .or_default() += 1;
                            }
                            return Err(format!(
                                "{} pods at once (max {max_total}): {groups:?}",
                                live.len()
                            ));
                        }
                        if ready < min_ready {
                            return Err(format!("only {ready} ready pods (min {min_ready})"));
                        }
                    }
                }
            })
        });
        Invariants {
            stop: Some(stop),
            reader: Some(reader),
        }
    }

    /// Stops watching; panics if an invariant broke. Returns the events seen.
    fn check(mut self) -> usize {
        let _ = self.stop.take().unwrap().send(());
        self.reader.take().unwrap().join().unwrap().unwrap()
    }
}

fn replicasets(server: &Server) -> Vec<Value> {
    server.kubectl_json(&["get", "rs", "-l", "app=web"])["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn image_of(server: &Server) -> String {
    server.kubectl_json(&["get", "deployment", "web"])["spec"]["template"]["spec"]["containers"][0]
        ["image"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn a_deployment_rolls_out_rolls_back_scales_pauses_and_restarts_with_kubectl() {
    let server = start();
    for (guest, reference) in [("sleeper", "sleeper:v2"), ("exit-code", "crasher:v1")] {
        import_image(
            &server,
            &example_guests().join(format!("{guest}.wasm")),
            reference,
        );
    }
    apply_file(&server, "examples/workloads/deployment.yaml");
    server.kubectl_ok(&["rollout", "status", "deployment/web", "--timeout=60s"]);
    let first = replicasets(&server);
    assert_eq!(first.len(), 1);
    let hash = first[0]["metadata"]["labels"]["pod-template-hash"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(first[0]["metadata"]["name"], format!("web-{hash}").as_str());
    assert_eq!(
        active_pods(&server, &format!("pod-template-hash={hash}")).len(),
        3
    );

    // A new image rolls out one pod at a time: never more than 4 pods, never fewer than 3
    // ready, as seen through a watch.
    let watch = Invariants::watch(&server, "app=web", 4, 3);
    server.kubectl_ok(&["set", "image", "deployment/web", "web=sleeper:v2"]);
    server.kubectl_ok(&["rollout", "status", "deployment/web", "--timeout=60s"]);
    let d = server.kubectl_json(&["get", "deployment", "web"]);
    assert_eq!(
        d["metadata"]["annotations"]["deployment.kubernetes.io/revision"],
        "2"
    );
    assert_eq!(d["status"]["updatedReplicas"], 3);
    assert_eq!(d["status"]["availableReplicas"], 3);
    let rss = replicasets(&server);
    assert_eq!(rss.len(), 2);
    let old = rss
        .iter()
        .find(|rs| rs["metadata"]["name"] == first[0]["metadata"]["name"])
        .unwrap();
    assert_eq!(old["spec"]["replicas"], 0);

    // Undo goes back to revision 1's template, which becomes revision 3.
    let history = server.kubectl_ok(&["rollout", "history", "deployment/web"]);
    assert!(history.contains('1') && history.contains('2'), "{history}");
    server.kubectl_ok(&["rollout", "undo", "deployment/web"]);
    server.kubectl_ok(&["rollout", "status", "deployment/web", "--timeout=60s"]);
    assert_eq!(image_of(&server), "sleeper:v1");
    assert_eq!(
        replicasets(&server).len(),
        2,
        "the old ReplicaSet is reused"
    );
    server.kubectl_ok(&["rollout", "undo", "deployment/web", "--to-revision=2"]);
    server.kubectl_ok(&["rollout", "status", "deployment/web", "--timeout=60s"]);
    assert_eq!(image_of(&server), "sleeper:v2");
    let events = watch.check();
    assert!(events > 10, "the watch saw the rollouts ({events} events)");

    // Scale.
    server.kubectl_ok(&["scale", "deployment/web", "--replicas=5"]);
    server.kubectl_ok(&["rollout", "status", "deployment/web", "--timeout=60s"]);
    assert_eq!(active_pods(&server, "app=web").len(), 5);

    // Paused: a template change waits; resumed: it rolls.
    server.kubectl_ok(&["rollout", "pause", "deployment/web"]);
    server.kubectl_ok(&["set", "image", "deployment/web", "web=sleeper:v1"]);
    std::thread::sleep(std::time::Duration::from_secs(1));
    let d = server.kubectl_json(&["get", "deployment", "web"]);
    let progressing = d["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Progressing")
        .unwrap()
        .clone();
    assert_eq!(progressing["reason"], "DeploymentPaused", "{d}");
    assert!(
        active_pods(&server, "app=web")
            .iter()
            .all(|p| p["spec"]["containers"][0]["image"] == "sleeper:v2")
    );
    server.kubectl_ok(&["rollout", "resume", "deployment/web"]);
    server.kubectl_ok(&["rollout", "status", "deployment/web", "--timeout=60s"]);
    assert!(
        active_pods(&server, "app=web")
            .iter()
            .all(|p| p["spec"]["containers"][0]["image"] == "sleeper:v1")
    );

    // Restart makes a new ReplicaSet with the same image.
    let before = replicasets(&server).len();
    server.kubectl_ok(&["rollout", "restart", "deployment/web"]);
    server.kubectl_ok(&["rollout", "status", "deployment/web", "--timeout=60s"]);
    assert_eq!(replicasets(&server).len(), before + 1);

    // A version that crash-loops stalls the rollout instead of taking the service down, and
    // times out against its progress deadline.
    server.kubectl_ok(&[
        "patch",
        "deployment/web",
        "-p",
        r#"{"spec":{"progressDeadlineSeconds":3,"template":{"spec":{"containers":[{"name":"web","image":"crasher:v1"}]}}}}"#,
    ]);
    let stalled = server.kubectl(&["rollout", "status", "deployment/web", "--timeout=30s"]);
    assert!(!stalled.status.success());
    let message = String::from_utf8_lossy(&stalled.stderr);
    assert!(
        message.contains("exceeded its progress deadline"),
        "{message}"
    );
    let ready_old = active_pods(&server, "app=web")
        .iter()
        .filter(|p| p["spec"]["containers"][0]["image"] == "sleeper:v1")
        .count();
    assert_eq!(
        ready_old,
        5,
        "maxUnavailable 0 keeps every old pod: {}",
        server.kubectl_ok(&["get", "pods,rs", "-o", "wide"])
    );
}

#[test]
fn a_rolling_update_survives_kill_9_of_the_server() {
    let server = start();
    import_image(
        &server,
        &example_guests().join("sleeper.wasm"),
        "sleeper:v2",
    );
    let manifest = r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: big, labels: {app: big}}
spec:
  replicas: 100
  strategy: {type: RollingUpdate, rollingUpdate: {maxSurge: 10, maxUnavailable: 0}}
  selector: {matchLabels: {app: big}}
  template:
    metadata: {labels: {app: big}}
    spec:
      terminationGracePeriodSeconds: 0
      containers: [{name: main, image: "sleeper:v1", args: ["3600"]}]
"#;
    server.apply(manifest);
    server.kubectl_ok(&["rollout", "status", "deployment/big", "--timeout=120s"]);

    let watch = Invariants::watch(&server, "app=big", 110, 100);
    server.kubectl_ok(&["set", "image", "deployment/big", "main=sleeper:v2"]);
    // Let the rollout get under way, then crash the server in the middle of it.
    eventually(30, || {
        let d = server.kubectl_json(&["get", "deployment", "big"]);
        (d["status"]["updatedReplicas"].as_i64().unwrap_or(0) >= 10).then_some(())
    });
    let mid = server.kubectl_json(&["get", "deployment", "big"]);
    let mut server = server;
    server.kill();
    let events = watch.check();
    assert!(events > 100, "{events}");
    assert!(
        mid["status"]["updatedReplicas"].as_i64().unwrap_or(0) < 100,
        "the rollout was still under way when the server was killed: {}",
        mid["status"]
    );

    let server = Server::start_with(server.into_dir(), &["--node-name", "test-node"]);
    let watch = Invariants::watch(&server, "app=big", 110, 100);
    server.kubectl_ok(&["rollout", "status", "deployment/big", "--timeout=120s"]);
    watch.check();

    // Nothing orphaned: every ReplicaSet belongs to the Deployment, every pod to a ReplicaSet,
    // and the pods are exactly the new template's 100.
    let d = server.kubectl_json(&["get", "deployment", "big"]);
    let rss = server.kubectl_json(&["get", "rs", "-l", "app=big"])["items"]
        .as_array()
        .cloned()
        .unwrap();
    assert!(
        rss.iter()
            .all(|rs| owner_uid(rs).as_deref() == d["metadata"]["uid"].as_str())
    );
    let rs_uids: Vec<&str> = rss
        .iter()
        .filter_map(|rs| rs["metadata"]["uid"].as_str())
        .collect();
    let pods = active_pods(&server, "app=big");
    assert_eq!(pods.len(), 100);
    assert!(pods.iter().all(
        |p| owner_uid(p).is_some_and(|u| rs_uids.contains(&u.as_str()))
            && p["spec"]["containers"][0]["image"] == "sleeper:v2"
    ));
}

#[test]
fn a_daemonset_runs_one_pod_per_node_follows_new_nodes_and_rolls() {
    let server = start();
    import_image(
        &server,
        &example_guests().join("sleeper.wasm"),
        "sleeper:v2",
    );
    apply_file(&server, "examples/workloads/daemonset.yaml");
    server.kubectl_ok(&["rollout", "status", "ds/node-agent", "--timeout=60s"]);
    let pods = active_pods(&server, "app=node-agent");
    assert_eq!(pods.len(), 1);
    assert_eq!(pods[0]["spec"]["nodeName"], "test-node");
    let tolerations = pods[0]["spec"]["tolerations"].to_string();
    assert!(
        tolerations.contains("node.kubernetes.io/unschedulable"),
        "{tolerations}"
    );

    // A node joining later gets its own daemon pod, pinned to it.
    let node = r#"{"apiVersion": "v1", "kind": "Node", "metadata": {"name": "late-node",
        "labels": {"kubernetes.io/hostname": "late-node"}}}"#;
    let out = server.kubectl_stdin(&["create", "-f", "-"], Some(node));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let on_late = eventually(30, || {
        active_pods(&server, "app=node-agent")
            .into_iter()
            .find(|p| p.to_string().contains("late-node"))
    });
    assert_eq!(owner_uid(&on_late), owner_uid(&pods[0]));
    let ds = eventually(30, || {
        let ds = server.kubectl_json(&["get", "ds", "node-agent"]);
        (ds["status"]["desiredNumberScheduled"] == 2).then_some(ds)
    });
    assert_eq!(ds["status"]["currentNumberScheduled"], 2);

    // The node goes away: so does its pod. Then a new template rolls onto the remaining node.
    server.kubectl_ok(&["delete", "node", "late-node"]);
    eventually(30, || {
        (active_pods(&server, "app=node-agent").len() == 1).then_some(())
    });
    server.kubectl_ok(&["set", "image", "ds/node-agent", "agent=sleeper:v2"]);
    server.kubectl_ok(&["rollout", "status", "ds/node-agent", "--timeout=60s"]);
    let pods = active_pods(&server, "app=node-agent");
    assert_eq!(pods.len(), 1);
    assert_eq!(pods[0]["spec"]["containers"][0]["image"], "sleeper:v2");
}

#[test]
fn a_statefulset_keeps_names_order_and_volumes() {
    let server = start();
    import_image(&server, &example_guests().join("hello.wasm"), "hello:v1");
    apply_file(&server, "examples/workloads/statefulset.yaml");
    server.kubectl_ok(&["rollout", "status", "sts/web", "--timeout=60s"]);
    let pods = active_pods(&server, "app=web-db");
    let mut names: Vec<&str> = pods
        .iter()
        .map(|p| p["metadata"]["name"].as_str().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["web-0", "web-1", "web-2"]);
    // Ordered: each pod started after the previous one was ready.
    let started = |name: &str| {
        pods.iter().find(|p| p["metadata"]["name"] == name).unwrap()["status"]["startTime"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert!(started("web-0") <= started("web-1") && started("web-1") <= started("web-2"));
    let claims = server.kubectl_json(&["get", "pvc"]);
    let bound: Vec<&str> = claims["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["status"]["phase"] == "Bound")
        .map(|c| c["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(bound.len(), 3, "{claims}");
    assert!(bound.contains(&"data-web-1"));
    assert!(
        server
            .kubectl_ok(&["logs", "web-1"])
            .contains("/data/starts has 1 lines")
    );

    // A deleted pod comes back under the same name with the same volume.
    server.kubectl_ok(&["delete", "pod", "web-1"]);
    eventually(60, || {
        let logs = server.kubectl(&["logs", "web-1"]);
        String::from_utf8_lossy(&logs.stdout)
            .contains("/data/starts has 2 lines")
            .then_some(())
    });

    // Scale down removes the highest ordinal; its claim stays (Retain) and is reattached
    // when scaling up again.
    server.kubectl_ok(&["scale", "sts/web", "--replicas=2"]);
    eventually(60, || {
        let names: Vec<String> = active_pods(&server, "app=web-db")
            .iter()
            .map(|p| p["metadata"]["name"].as_str().unwrap().to_string())
            .collect();
        (names.len() == 2 && !names.contains(&"web-2".to_string())).then_some(())
    });
    assert!(
        server
            .kubectl(&["get", "pvc", "data-web-2"])
            .status
            .success()
    );
    server.kubectl_ok(&["scale", "sts/web", "--replicas=3"]);
    server.kubectl_ok(&["rollout", "status", "sts/web", "--timeout=60s"]);
    eventually(30, || {
        let logs = server.kubectl(&["logs", "web-2"]);
        String::from_utf8_lossy(&logs.stdout)
            .contains("/data/starts has 2 lines")
            .then_some(())
    });

    // A template change rolls from the highest ordinal down.
    server.kubectl_ok(&["set", "env", "sts/web", "EXTRA=1"]);
    server.kubectl_ok(&["rollout", "status", "sts/web", "--timeout=90s"]);
    let sts = server.kubectl_json(&["get", "sts", "web"]);
    assert_eq!(sts["status"]["updatedReplicas"], 3);
    assert_eq!(
        sts["status"]["currentRevision"],
        sts["status"]["updateRevision"]
    );
}

#[test]
fn recreate_history_limits_parallel_sets_and_claim_retention() {
    let server = start();
    import_image(
        &server,
        &example_guests().join("sleeper.wasm"),
        "sleeper:v2",
    );
    import_image(&server, &example_guests().join("hello.wasm"), "hello:v1");

    // Recreate: the old pods are gone before any new one exists, as seen through a watch.
    let manifest = r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: batch, labels: {app: batch}}
spec:
  replicas: 2
  revisionHistoryLimit: 1
  strategy: {type: Recreate}
  selector: {matchLabels: {app: batch}}
  template:
    metadata: {labels: {app: batch}}
    spec:
      terminationGracePeriodSeconds: 0
      containers: [{name: main, image: "sleeper:v1", args: ["3600"]}]
"#;
    server.apply(manifest);
    server.kubectl_ok(&["rollout", "status", "deployment/batch", "--timeout=60s"]);
    let watch = Invariants::watch(&server, "app=batch", 2, 0);
    server.kubectl_ok(&["set", "image", "deployment/batch", "main=sleeper:v2"]);
    server.kubectl_ok(&["rollout", "status", "deployment/batch", "--timeout=60s"]);
    watch.check();
    // Two more revisions; revisionHistoryLimit 1 keeps one old ReplicaSet.
    server.kubectl_ok(&["set", "image", "deployment/batch", "main=sleeper:v1"]);
    server.kubectl_ok(&["rollout", "status", "deployment/batch", "--timeout=60s"]);
    server.kubectl_ok(&["rollout", "restart", "deployment/batch"]);
    server.kubectl_ok(&["rollout", "status", "deployment/batch", "--timeout=60s"]);
    eventually(30, || {
        let rss = server.kubectl_json(&["get", "rs", "-l", "app=batch"])["items"]
            .as_array()
            .map(Vec::len);
        (rss == Some(2)).then_some(())
    });

    // A Parallel StatefulSet starts every ordinal at once; whenScaled: Delete removes the
    // claims of ordinals scaled away.
    let set = r#"
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: cache}
spec:
  serviceName: cache
  replicas: 3
  podManagementPolicy: Parallel
  persistentVolumeClaimRetentionPolicy: {whenDeleted: Delete, whenScaled: Delete}
  selector: {matchLabels: {app: cache}}
  template:
    metadata: {labels: {app: cache}}
    spec:
      terminationGracePeriodSeconds: 0
      containers:
      - name: main
        image: hello:v1
        env: [{name: HELLO_APPEND, value: /data/starts}, {name: HELLO_SLEEP, value: "3600"}]
        volumeMounts: [{name: data, mountPath: /data}]
  volumeClaimTemplates:
  - metadata: {name: data}
    spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 8Mi}}}
"#;
    server.apply(set);
    server.kubectl_ok(&["rollout", "status", "sts/cache", "--timeout=60s"]);
    server.kubectl_ok(&["scale", "sts/cache", "--replicas=1"]);
    eventually(60, || {
        let gone = !server
            .kubectl(&["get", "pvc", "data-cache-2"])
            .status
            .success()
            && !server
                .kubectl(&["get", "pvc", "data-cache-1"])
                .status
                .success();
        (gone && active_pods(&server, "app=cache").len() == 1).then_some(())
    });
    // whenDeleted: Delete: the last claim goes with the set.
    server.kubectl_ok(&["delete", "sts", "cache"]);
    eventually(60, || {
        (!server
            .kubectl(&["get", "pvc", "data-cache-0"])
            .status
            .success())
        .then_some(())
    });
}
