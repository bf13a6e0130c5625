//! Control-plane benchmark against the real `skiff serve` over HTTPS.
//!
//! `cargo bench --bench api` prints each figure beside its target:
//! - durable creates per second from 64 concurrent HTTPS clients (target >= 2,000/s);
//! - p99 latency of a single create while 200 writes/s run (target < 50 ms);
//! - p99 delay from a write's acknowledgement to its watch event, 100 watchers open (< 10 ms);
//! - idle server RSS (target < 60 MB).

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "support/measure.rs"]
mod measure;

use std::time::{Duration, Instant};

use common::Server;
use futures::StreamExt;
use measure::{ms, percentile, rss_mb};
use reqwest::Method;
use serde_json::json;

const CLIENTS: usize = 64;
const CREATE_SECONDS: u64 = 8;

fn configmap(name: &str) -> serde_json::Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "labels": {"bench": "yes"}},
        "data": {"key": "value", "other": "a slightly longer value to look like real configuration"}})
}

async fn create(server: &Server, client: &reqwest::Client, ns: &str, name: &str) -> bool {
    client
        .post(format!("{}/api/v1/namespaces/{ns}/configmaps", server.base))
        .bearer_auth(&server.token)
        .json(&configmap(name))
        .send()
        .await
        .map(|r| r.status().as_u16() == 201)
        .unwrap_or(false)
}

async fn throughput(server: &'static Server) -> f64 {
    let deadline = Instant::now() + Duration::from_secs(CREATE_SECONDS);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..CLIENTS {
        let client = server.http();
        tasks.push(tokio::spawn(async move {
            let mut done = 0u64;
            let mut i = 0u64;
            while Instant::now() < deadline {
                if create(server, &client, "default", &format!("tp-{c}-{i}")).await {
                    done += 1;
                }
                i += 1;
            }
            done
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += t.await.unwrap();
    }
    total as f64 / start.elapsed().as_secs_f64()
}

async fn latency_under_load(server: &'static Server) -> (Duration, Duration) {
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let background = {
        let stop = stop.clone();
        let client = server.http();
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(Duration::from_millis(5)); // 200/s
            let mut i = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                ticker.tick().await;
                let client = client.clone();
                tokio::spawn(async move {
                    create(server, &client, "load", &format!("bg-{i}")).await;
                });
                i += 1;
            }
        })
    };
    let client = server.http();
    let mut samples = Vec::new();
    for i in 0..400 {
        let start = Instant::now();
        assert!(create(server, &client, "default", &format!("lat-{i}")).await);
        samples.push(start.elapsed());
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let _ = background.await;
    samples.sort();
    (percentile(&samples, 50.0), percentile(&samples, 99.0))
}

async fn watch_latency(server: &'static Server) -> (Duration, Duration, usize) {
    const WATCHERS: usize = 100;
    const WRITES: usize = 200;
    let acked: std::sync::Arc<std::sync::Mutex<std::collections::HashMap<String, Instant>>> =
        Default::default();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(String, Instant)>();
    for _ in 0..WATCHERS {
        let client = server.http();
        let tx = tx.clone();
        let response = client
            .get(format!(
                "{}/api/v1/namespaces/watched/configmaps?watch=true&resourceVersion=0",
                server.base
            ))
            .bearer_auth(&server.token)
            .send()
            .await
            .unwrap();
        tokio::spawn(async move {
            let mut stream = response.bytes_stream();
            let mut buffer = Vec::new();
            while let Some(Ok(chunk)) = stream.next().await {
                let now = Instant::now();
                buffer.extend_from_slice(&chunk);
                while let Some(pos) = buffer.iter().position(|b| *b == b'\n') {
                    let line: Vec<u8> = buffer.drain(..=pos).collect();
                    if let Ok(event) = serde_json::from_slice::<serde_json::Value>(&line)
                        && let Some(name) = event["object"]["metadata"]["name"].as_str()
                    {
                        let _ = tx.send((name.to_string(), now));
                    }
                }
            }
        });
    }
    drop(tx);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let client = server.http();
    for i in 0..WRITES {
        let name = format!("w-{i}");
        assert!(create(server, &client, "watched", &name).await);
        acked.lock().unwrap().insert(name, Instant::now());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let acked = acked.lock().unwrap().clone();
    let mut samples = Vec::new();
    while let Ok((name, at)) = rx.try_recv() {
        if let Some(ack) = acked.get(&name) {
            samples.push(at.saturating_duration_since(*ack));
        }
    }
    samples.sort();
    let delivered = samples.len();
    (
        percentile(&samples, 50.0),
        percentile(&samples, 99.0),
        delivered,
    )
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let server: &'static Server = Box::leak(Box::new(Server::start()));
    let pid = server.pid();
    std::thread::sleep(Duration::from_secs(2));
    let idle = rss_mb(pid);

    runtime.block_on(async {
        for ns in ["load", "watched"] {
            let (code, _) = server
                .call(server.request(Method::POST, "/api/v1/namespaces").json(&json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})))
                .await;
            assert_eq!(code, 201);
        }
        let rate = throughput(server).await;
        let (p50, p99) = latency_under_load(server).await;
        let (w50, w99, delivered) = watch_latency(server).await;
        println!("skiff control plane ({} cores)", std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0));
        println!("durable creates, {CLIENTS} HTTPS clients:   {rate:>9.0} /s      target >= 2000 /s");
        println!("create latency at 200 writes/s:    p50 {:>6.2} ms  p99 {:>6.2} ms  target p99 < 50 ms", ms(p50), ms(p99));
        println!("watch delivery, 100 watchers:      p50 {:>6.2} ms  p99 {:>6.2} ms  target p99 < 10 ms ({delivered} events)", ms(w50), ms(w99));
        println!("idle server RSS:                   {idle:>9.1} MB      target < 60 MB");
        println!("server RSS after the run:          {:>9.1} MB", rss_mb(pid));
    });
}
