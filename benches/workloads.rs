//! Workload controller benchmark against the real `skiff serve` and its embedded node.
//!
//! `cargo bench --bench workloads` prints each figure beside its target:
//! - a 1,000-replica Wasm Deployment from create to every pod available (target < 5 s);
//! - a rolling update of it with maxSurge 25% / maxUnavailable 25% (target < 10 s);
//! - the server's CPU at steady state with those 1,000 pods (target < 2% of a core for the
//!   controllers; the figure is the whole process, node and API server included).
//!
//! `WORKLOAD_REPLICAS=N` changes the size.

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "support/measure.rs"]
mod measure;

use std::time::{Duration, Instant};

use common::{Server, example_guests, import_image};
use reqwest::Method;
use serde_json::{Value, json};

async fn deployment(server: &Server) -> Value {
    let (code, body) = server
        .call(server.request(
            Method::GET,
            "/apis/apps/v1/namespaces/default/deployments/web",
        ))
        .await;
    assert_eq!(code, 200, "{body}");
    body
}

/// Waits until the Deployment's status shows generation `generation` fully rolled out.
async fn rolled_out(server: &Server, replicas: i64, generation: i64) {
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let d = deployment(server).await;
        let s = &d["status"];
        if s["observedGeneration"].as_i64() >= Some(generation)
            && s["updatedReplicas"] == replicas
            && s["availableReplicas"] == replicas
            && s["replicas"] == replicas
        {
            return;
        }
        assert!(Instant::now() < deadline, "not rolled out: {s}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn main() {
    let replicas: i64 = std::env::var("WORKLOAD_REPLICAS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let server = Server::start_with(tempfile::tempdir().unwrap(), &["--node-name", "bench-node"]);
    let sleeper = example_guests().join("sleeper.wasm");
    import_image(&server, &sleeper, "sleeper:v1");
    import_image(&server, &sleeper, "sleeper:v2");

    runtime.block_on(async {
        let manifest = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web"},
            "spec": {"replicas": replicas,
                "strategy": {"type": "RollingUpdate",
                    "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
                "selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web"}},
                    "spec": {"terminationGracePeriodSeconds": 0,
                        "containers": [{"name": "web", "image": "sleeper:v1", "args": ["36000"]}]}}}});
        let start = Instant::now();
        let (code, body) = server
            .call(
                server
                    .request(Method::POST, "/apis/apps/v1/namespaces/default/deployments")
                    .json(&manifest),
            )
            .await;
        assert_eq!(code, 201, "{body}");
        rolled_out(&server, replicas, 1).await;
        let create = start.elapsed();

        let start = Instant::now();
        let (code, body) = server
            .call(
                server
                    .request(
                        Method::PATCH,
                        "/apis/apps/v1/namespaces/default/deployments/web",
                    )
                    .header("Content-Type", "application/strategic-merge-patch+json")
                    .body(
                        json!({"spec": {"template": {"spec": {"containers": [
                            {"name": "web", "image": "sleeper:v2"}]}}}})
                        .to_string(),
                    ),
            )
            .await;
        assert_eq!(code, 200, "{body}");
        rolled_out(&server, replicas, 2).await;
        let update = start.elapsed();

        tokio::time::sleep(Duration::from_secs(3)).await;
        let pid = server.pid();
        let window = Duration::from_secs(10);
        let before = measure::cpu_ticks(pid);
        tokio::time::sleep(window).await;
        let used = (measure::cpu_ticks(pid) - before) as f64 / measure::ticks_per_second();
        let percent = 100.0 * used / window.as_secs_f64();

        let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
        println!("skiff workload controllers, {replicas} Wasm replicas, one node ({cores} cores)");
        println!(
            "Deployment create -> all available:  {:>7.2} s   target < 5 s",
            create.as_secs_f64()
        );
        println!(
            "rolling update (25% / 25%):          {:>7.2} s   target < 10 s",
            update.as_secs_f64()
        );
        println!(
            "server CPU at steady state:          {percent:>7.2} % of a core   target < 2% (controllers)"
        );
    });
}
