//! Job controller benchmark against the real `skiff serve` and its embedded node.
//!
//! `cargo bench --bench jobs` runs an Indexed Job of 10,000 completions of a trivial Wasm task
//! (`exit-code 0`) with parallelism 100, from create to the `Complete` condition, and prints
//! the time and rate beside the target (< 10 s, i.e. >= 1,000 completions/s). For scale:
//! Kubernetes' own integration test of the same shape took ~225 s.
//!
//! It also prints where the server's time went (CPU of the whole process and the rate of
//! store writes), which is what bounds the rate.
//!
//! `JOB_COMPLETIONS=N` and `JOB_PARALLELISM=P` change the shape; `JOB_EVENT_QPS=R` starts the
//! server with `--event-qps R` (`0`: every Normal Event written, none dropped for the rate).

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "support/measure.rs"]
mod measure;

use std::time::{Duration, Instant};

use common::{Server, example_guests, import_image};
use reqwest::Method;
use serde_json::{Value, json};

fn env_or(name: &str, default: i64) -> i64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

async fn job(server: &Server, name: &str) -> Value {
    let (code, body) = server
        .call(server.request(
            Method::GET,
            &format!("/apis/batch/v1/namespaces/default/jobs/{name}"),
        ))
        .await;
    assert_eq!(code, 200, "{body}");
    body
}

fn condition(job: &Value, kind: &str) -> bool {
    job["status"]["conditions"].as_array().is_some_and(|cs| {
        cs.iter()
            .any(|c| c["type"] == kind && c["status"] == "True")
    })
}

/// The store's latest resource version: every write adds one.
async fn revision(server: &Server) -> i64 {
    let (_, body) = server
        .call(server.request(Method::GET, "/api/v1/namespaces?limit=1"))
        .await;
    body["metadata"]["resourceVersion"]
        .as_str()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn main() {
    let completions = env_or("JOB_COMPLETIONS", 10_000);
    let parallelism = env_or("JOB_PARALLELISM", 100);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let event_qps = std::env::var("JOB_EVENT_QPS").ok();
    let mut args = vec!["--node-name", "bench-node"];
    if let Some(qps) = &event_qps {
        args.extend(["--event-qps", qps.as_str()]);
    }
    let server = Server::start_with(tempfile::tempdir().unwrap(), &args);
    import_image(&server, &example_guests().join("exit-code.wasm"), "exit:v1");

    runtime.block_on(async {
        let manifest = json!({"apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": "fan"},
            "spec": {"completions": completions, "parallelism": parallelism,
                "completionMode": "Indexed", "backoffLimit": 100,
                "template": {"spec": {"restartPolicy": "Never",
                    "containers": [{"name": "task", "image": "exit:v1", "args": ["0"]}]}}}});
        let pid = server.pid();
        let ticks_before = measure::cpu_ticks(pid);
        let revision_before = revision(&server).await;
        let start = Instant::now();
        let (code, body) = server
            .call(
                server
                    .request(Method::POST, "/apis/batch/v1/namespaces/default/jobs")
                    .json(&manifest),
            )
            .await;
        assert_eq!(code, 201, "{body}");
        let mut progress = Vec::new();
        let mut next_report = Duration::from_secs(1);
        let finished = loop {
            let j = job(&server, "fan").await;
            if condition(&j, "Complete") || condition(&j, "Failed") {
                break j;
            }
            if start.elapsed() >= next_report {
                progress.push((start.elapsed(), j["status"]["succeeded"].as_i64().unwrap_or(0)));
                next_report += Duration::from_secs(1);
            }
            assert!(start.elapsed() < Duration::from_secs(600), "stuck: {}", j["status"]);
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        let took = start.elapsed();
        let cpu = (measure::cpu_ticks(pid) - ticks_before) as f64 / measure::ticks_per_second();
        let writes = revision(&server).await - revision_before;
        let (_, events) = server
            .call(server.request(Method::GET, "/api/v1/namespaces/default/events"))
            .await;
        let events = events["items"].as_array().map_or(0, Vec::len);
        assert!(condition(&finished, "Complete"), "{}", finished["status"]);
        assert_eq!(finished["status"]["succeeded"], completions);

        let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
        println!(
            "skiff Job controller, Indexed Job of {completions} Wasm tasks, parallelism {parallelism}, one node ({cores} cores)"
        );
        let rate = completions as f64 / took.as_secs_f64();
        println!(
            "create -> Complete:      {:>7.2} s   {rate:>7.0} completions/s   target < 10 s (>= 1000/s)",
            took.as_secs_f64()
        );
        println!("  progress (s: succeeded): {}", progress
            .iter()
            .map(|(t, n)| format!("{:.0}: {n}", t.as_secs_f64()))
            .collect::<Vec<_>>()
            .join(", "));
        println!(
            "  server CPU {cpu:.1} s ({:.0}% of {cores} cores), {writes} store writes ({:.1} per completion, {:.0}/s)",
            100.0 * cpu / took.as_secs_f64() / cores as f64,
            writes as f64 / completions as f64,
            writes as f64 / took.as_secs_f64()
        );
        println!(
            "  {events} Events written (event rate: {}; Normal events past it are dropped)",
            event_qps.map_or("--event-qps 50, --event-burst 100".to_string(), |q| format!("--event-qps {q}"))
        );
    });
}
