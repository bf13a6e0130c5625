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

fn json(server: &Server, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.extend(["-o", "json"]);
    serde_json::from_str(&server.kubectl_ok(&all)).unwrap()
}

/// Active (not terminating, not finished) pods with `selector`.
fn active_pods(server: &Server, selector: &str) -> Vec<Value> {
    json(server, &["get", "pods", "-l", selector])["items"]
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
        let rs = json(&server, &["get", "rs", "web"]);
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
        let rs = json(&server, &["get", "rs", "web"]);
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
        let released = json(&server, &["get", "pod", &kept]);
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
