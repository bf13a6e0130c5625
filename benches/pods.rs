//! Wasm pod benchmark against the real `skiff serve` and its embedded node.
//!
//! `cargo bench --bench pods` prints each figure beside its target:
//! - end to end: a pod created over the API until a watch sees it `Succeeded` (a hello-world
//!   guest), for 1,000 pods created one after another (target p99 < 20 ms);
//! - density: 10,000 idle pods (a guest blocked in a sleep) running at once on one node, the
//!   server's RSS and the overhead per pod (target < 2 GiB in all).
//!
//! `PODS_E2E=N` and `PODS_DENSITY=N` change the counts.

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "support/measure.rs"]
mod measure;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use common::{Server, example_guests, import_image};
use futures::StreamExt;
use measure::{ms, percentile, rss_mb};
use reqwest::Method;
use serde_json::json;
use tokio::sync::mpsc;

fn count(var: &str, default: usize) -> usize {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn start_server() -> Server {
    Server::start_with(
        tempfile::tempdir().expect("tempdir"),
        &["--node-name", "bench-node"],
    )
}

async fn create_namespace(server: &Server, name: &str) {
    let (code, body) =
        server
            .call(server.request(Method::POST, "/api/v1/namespaces").json(
                &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}),
            ))
            .await;
    assert_eq!(code, 201, "{body}");
}

fn pod(name: &str, image: &str, args: &[&str]) -> serde_json::Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
        "spec": {"restartPolicy": "Never", "terminationGracePeriodSeconds": 0,
            "containers": [{"name": "main", "image": image, "args": args}]}})
}

/// Opens a watch on the pods of `ns` and sends (name, when) the first time a pod is seen in
/// `phase`.
async fn watch_phase(
    server: &Server,
    ns: &str,
    phase: &'static str,
) -> mpsc::UnboundedReceiver<(String, Instant)> {
    let response = server
        .request(
            Method::GET,
            &format!("/api/v1/namespaces/{ns}/pods?watch=true"),
        )
        .send()
        .await
        .expect("watch");
    assert_eq!(response.status().as_u16(), 200);
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut stream = response.bytes_stream();
        let mut buffer = Vec::new();
        let mut seen = std::collections::HashSet::new();
        while let Some(Ok(chunk)) = stream.next().await {
            let now = Instant::now();
            buffer.extend_from_slice(&chunk);
            while let Some(pos) = buffer.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = buffer.drain(..=pos).collect();
                let Ok(event) = serde_json::from_slice::<serde_json::Value>(&line) else {
                    continue;
                };
                let object = &event["object"];
                if object["status"]["phase"] == phase
                    && let Some(name) = object["metadata"]["name"].as_str()
                    && seen.insert(name.to_string())
                    && tx.send((name.to_string(), now)).is_err()
                {
                    return;
                }
            }
        }
    });
    rx
}

/// Creates `n` hello pods one after another; each is timed from the create request until the
/// watch reports it `Succeeded`, and the next is created only then.
async fn end_to_end(server: &Server, n: usize) -> Vec<Duration> {
    create_namespace(server, "e2e").await;
    let mut seen = watch_phase(server, "e2e", "Succeeded").await;
    let client = server.http();
    let url = format!("{}/api/v1/namespaces/e2e/pods", server.base);
    let mut samples = Vec::with_capacity(n);
    for i in 0..n {
        let name = format!("hello-{i}");
        let start = Instant::now();
        let response = client
            .post(&url)
            .bearer_auth(&server.token)
            .json(&pod(&name, "hello:bench", &[]))
            .send()
            .await
            .expect("create");
        assert_eq!(response.status().as_u16(), 201);
        loop {
            let (seen_name, at) = tokio::time::timeout(Duration::from_secs(30), seen.recv())
                .await
                .expect("pod did not succeed within 30 s")
                .expect("watch ended");
            if seen_name == name {
                samples.push(at.duration_since(start));
                break;
            }
        }
    }
    samples.sort();
    samples
}

struct Density {
    pods: usize,
    all_running: Duration,
    rss_before: f64,
    rss_after: f64,
}

/// Creates `n` sleeper pods from 32 concurrent clients and waits until a watch has seen every
/// one `Running`, then reads the server's RSS.
async fn density(server: &'static Server, n: usize) -> Density {
    create_namespace(server, "density").await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_before = rss_mb(server.pid());
    let mut running = watch_phase(server, "density", "Running").await;
    let start = Instant::now();
    let clients = 32;
    let mut tasks = Vec::new();
    for c in 0..clients {
        let client = server.http();
        tasks.push(tokio::spawn(async move {
            let url = format!("{}/api/v1/namespaces/density/pods", server.base);
            for i in (c..n).step_by(clients) {
                let response = client
                    .post(&url)
                    .bearer_auth(&server.token)
                    .json(&pod(&format!("idle-{i}"), "sleeper:bench", &["36000"]))
                    .send()
                    .await
                    .expect("create");
                assert_eq!(response.status().as_u16(), 201);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let mut seen: HashMap<String, Instant> = HashMap::new();
    while seen.len() < n {
        let (name, at) = tokio::time::timeout(Duration::from_secs(120), running.recv())
            .await
            .unwrap_or_else(|_| panic!("only {} of {n} pods running after 120 s", seen.len()))
            .expect("watch ended");
        seen.insert(name, at);
    }
    let all_running = seen
        .values()
        .max()
        .map(|t| t.duration_since(start))
        .unwrap_or_default();
    // Let the status writes settle before reading the resident set.
    tokio::time::sleep(Duration::from_secs(3)).await;
    Density {
        pods: n,
        all_running,
        rss_before,
        rss_after: rss_mb(server.pid()),
    }
}

fn main() {
    let e2e_pods = count("PODS_E2E", 1000);
    let density_pods = count("PODS_DENSITY", 10_000);
    let guests = example_guests();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();

    let server = start_server();
    import_image(&server, &guests.join("hello.wasm"), "hello:bench");
    let samples = runtime.block_on(end_to_end(&server, e2e_pods));
    drop(server);

    let server: &'static Server = Box::leak(Box::new(start_server()));
    import_image(server, &guests.join("sleeper.wasm"), "sleeper:bench");
    let d = runtime.block_on(density(server, density_pods));

    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    println!("skiff Wasm pods, one embedded node ({cores} cores)");
    println!(
        "create -> Succeeded seen by a watch, {} pods one after another:",
        samples.len()
    );
    println!(
        "    p50 {:>6.2} ms  p90 {:>6.2} ms  p99 {:>6.2} ms  max {:>6.2} ms   target p99 < 20 ms",
        ms(percentile(&samples, 50.0)),
        ms(percentile(&samples, 90.0)),
        ms(percentile(&samples, 99.0)),
        ms(percentile(&samples, 100.0)),
    );
    let per_pod_kb = (d.rss_after - d.rss_before) * 1024.0 / d.pods as f64;
    println!("{} idle pods running at once:", d.pods);
    println!(
        "    all Running after {:.1} s ({:.0} pods/s)",
        d.all_running.as_secs_f64(),
        d.pods as f64 / d.all_running.as_secs_f64()
    );
    println!(
        "    server RSS {:.0} MB (idle {:.0} MB), {per_pod_kb:.0} KB per pod   target < 2048 MB",
        d.rss_after, d.rss_before
    );
}
