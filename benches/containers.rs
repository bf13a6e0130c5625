//! OCI container pods against a bare `runc run` of the same image, side by side in one run.
//!
//! `cargo bench --bench containers` pushes a busybox image to a local `docker-registry`, lets
//! skiff pull it once, then measures (medians of `CONTAINER_RUNS`, default 15):
//!
//! * a bare `runc run` of a bundle holding the same image (process `true`), start to exit;
//! * a pod created over the API until its container is running (`sleep`), against the
//!   target of 1.5x the bare run;
//! * a pod created over the API until it has Succeeded (`true`), the like-for-like whole.
//!
//! Finally it stops the registry and runs a pod with `imagePullPolicy: IfNotPresent`: the
//! image being present, it runs without any network round trip.

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "../tests/common/oci.rs"]
mod oci;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::Server;
use reqwest::Method;
use serde_json::{Value, json};
use skiff_runtime::oci::{ContainerConfig, spec};

fn runs() -> usize {
    std::env::var("CONTAINER_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(15)
}

fn median(mut v: Vec<Duration>) -> (f64, f64, f64) {
    v.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    (ms(v[0]), ms(v[v.len() / 2]), ms(v[v.len() - 1]))
}

/// `runc run` of a bundle of the image's layer, process `true`.
fn bare_runc(runs: usize) -> Vec<Duration> {
    let dir = tempfile::tempdir().unwrap();
    let rootfs = dir.path().join("rootfs");
    std::fs::create_dir_all(&rootfs).unwrap();
    let (layer, _) = oci::busybox_layer();
    skiff_runtime::image::unpack_layer(&layer[..], &rootfs).unwrap();
    let config = ContainerConfig {
        rootfs: rootfs.clone(),
        args: vec!["/bin/true".into()],
        env: vec!["PATH=/bin".into()],
        cwd: "/".into(),
        hostname: "bare".into(),
        cgroups_path: format!("/skiff-bench/{}", std::process::id()),
        ..Default::default()
    };
    spec::build(&config)
        .unwrap()
        .save(dir.path().join("config.json"))
        .unwrap();
    let state = dir.path().join("state");
    (0..runs)
        .map(|i| {
            let start = Instant::now();
            let status = Command::new("runc")
                .arg("--root")
                .arg(&state)
                .args(["run", "--bundle"])
                .arg(dir.path())
                .arg(format!("bench-{i}"))
                .stdin(Stdio::null())
                .status()
                .expect("runc");
            let took = start.elapsed();
            assert!(status.success());
            took
        })
        .collect()
}

async fn pod(server: &Server, name: &str) -> Value {
    let (_, body) = server
        .call(server.request(
            Method::GET,
            &format!("/api/v1/namespaces/default/pods/{name}"),
        ))
        .await;
    body
}

/// Creates a pod and returns how long until `done` holds of it; then deletes it and waits
/// for it to go (not timed).
async fn time_pod(server: &Server, manifest: Value, done: impl Fn(&Value) -> bool) -> Duration {
    let name = manifest["metadata"]["name"].as_str().unwrap().to_string();
    let start = Instant::now();
    let (code, body) = server
        .call(
            server
                .request(Method::POST, "/api/v1/namespaces/default/pods")
                .json(&manifest),
        )
        .await;
    assert_eq!(code, 201, "{body}");
    let took = loop {
        let p = pod(server, &name).await;
        if done(&p) {
            break start.elapsed();
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "stuck: {}",
            p["status"]
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    };
    server
        .call(server.request(
            Method::DELETE,
            &format!("/api/v1/namespaces/default/pods/{name}?gracePeriodSeconds=0"),
        ))
        .await;
    while pod(server, &name).await["kind"] == "Pod" {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    took
}

fn container_pod(name: &str, image: &str, command: &[&str], policy: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
        "spec": {"restartPolicy": "Never", "terminationGracePeriodSeconds": 0,
            "containers": [{"name": "main", "image": image, "command": command,
                "imagePullPolicy": policy}]}})
}

fn main() {
    let runs = runs();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let registry = oci::start_registry();
    let image = format!("{}/skiff/bb:v1", registry.addr);
    runtime.block_on(oci::push(
        &registry,
        "skiff/bb:v1",
        vec![oci::busybox_layer()],
        json!({"Env": ["PATH=/bin"]}),
        "amd64",
    ));
    let server = Server::start_with(tempfile::tempdir().unwrap(), &["--node-name", "bench-node"]);
    runtime.block_on(async {
        let running = |p: &Value| p["status"]["containerStatuses"][0]["state"]["running"].is_object();
        let succeeded = |p: &Value| p["status"]["phase"] == "Succeeded";
        // The first pod pulls the image (not measured).
        time_pod(&server, container_pod("warm", &image, &["true"], "IfNotPresent"), succeeded).await;

        let mut bare = Vec::new();
        let mut to_running = Vec::new();
        let mut to_succeeded = Vec::new();
        // Interleaved, so the machine's noise falls on all three alike.
        for i in 0..runs {
            bare.extend(bare_runc(1));
            to_running.push(
                time_pod(&server, container_pod(&format!("run-{i}"), &image, &["sleep", "100"], "IfNotPresent"), running).await,
            );
            to_succeeded.push(
                time_pod(&server, container_pod(&format!("done-{i}"), &image, &["true"], "IfNotPresent"), succeeded).await,
            );
        }
        let (bmin, bmed, bmax) = median(bare);
        let (rmin, rmed, rmax) = median(to_running);
        let (smin, smed, smax) = median(to_succeeded);
        let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
        println!("skiff OCI container pods (busybox from a local registry, runc), one node ({cores} cores), {runs} runs each");
        println!("bare `runc run` (true), start to exit:      median {bmed:>6.1} ms  (min {bmin:.1}, max {bmax:.1})");
        println!(
            "pod created over the API -> Running:        median {rmed:>6.1} ms  (min {rmin:.1}, max {rmax:.1})  {:.2}x bare   target <= 1.5x",
            rmed / bmed
        );
        println!(
            "pod created over the API -> Succeeded:      median {smed:>6.1} ms  (min {smin:.1}, max {smax:.1})  {:.2}x bare",
            smed / bmed
        );
        drop(registry);
        let offline = time_pod(&server, container_pod("offline", &image, &["true"], "IfNotPresent"), succeeded).await;
        println!(
            "IfNotPresent with the image present, registry stopped: Succeeded in {:.1} ms (no network round trip)",
            offline.as_secs_f64() * 1000.0
        );
    });
}
