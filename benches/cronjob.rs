//! CronJob timing benchmark against the real `skiff serve` and its embedded node.
//!
//! `cargo bench --bench cronjob` creates a `* * * * *` CronJob, watches Jobs, and for each of
//! the next minutes (2 by default, `CRONJOB_MINUTES=N` for more) takes the moment the Job's
//! ADDED event arrives here minus the minute it was scheduled for (from its
//! `batch.kubernetes.io/cronjob-scheduled-timestamp` annotation). `creationTimestamp` only
//! has whole seconds, hence the watch; the server and this process share the clock. The
//! figure includes the controller's wake-up, the Job's create (an fsynced write) and the
//! watch's delivery.
//!
//! Target: fires less than 1 s after the scheduled minute.

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "support/measure.rs"]
mod measure;

use std::time::Duration;

use chrono::{DateTime, Utc};
use common::{Server, example_guests, import_image};
use futures::StreamExt;
use measure::ms;
use reqwest::Method;
use serde_json::{Value, json};

const SCHEDULED: &str = "batch.kubernetes.io/cronjob-scheduled-timestamp";

/// The lateness of each Job the CronJob `name` creates, as the watch sees it, until `n`.
async fn watch_lateness(server: &Server, name: &str, n: usize) -> Vec<(String, Duration)> {
    let response = server
        .request(
            Method::GET,
            "/apis/batch/v1/namespaces/default/jobs?watch=true",
        )
        .send()
        .await
        .expect("watch");
    assert_eq!(response.status().as_u16(), 200);
    let mut stream = response.bytes_stream();
    let mut buffer = Vec::new();
    let mut samples = Vec::new();
    while let Some(Ok(chunk)) = stream.next().await {
        let arrived = Utc::now();
        buffer.extend_from_slice(&chunk);
        while let Some(pos) = buffer.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = buffer.drain(..=pos).collect();
            let Ok(event) = serde_json::from_slice::<Value>(&line) else {
                continue;
            };
            let job = &event["object"];
            let ours = job["metadata"]["ownerReferences"][0]["name"] == name;
            let scheduled = job["metadata"]["annotations"][SCHEDULED]
                .as_str()
                .and_then(|t| DateTime::parse_from_rfc3339(t).ok());
            if event["type"] == "ADDED"
                && ours
                && let Some(scheduled) = scheduled
            {
                let late = (arrived - scheduled.with_timezone(&Utc))
                    .to_std()
                    .unwrap_or_default();
                let job_name = job["metadata"]["name"].as_str().unwrap_or_default();
                samples.push((job_name.to_string(), late));
                if samples.len() == n {
                    return samples;
                }
            }
        }
    }
    panic!("the watch ended after {} Jobs", samples.len());
}

fn main() {
    let minutes: usize = std::env::var("CRONJOB_MINUTES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let server = Server::start_with(tempfile::tempdir().unwrap(), &["--node-name", "bench-node"]);
    import_image(&server, &example_guests().join("hello.wasm"), "hello:v1");
    runtime.block_on(async {
        let watch = watch_lateness(&server, "tick", minutes);
        let manifest = json!({"apiVersion": "batch/v1", "kind": "CronJob",
            "metadata": {"name": "tick"},
            "spec": {"schedule": "* * * * *", "jobTemplate": {"spec": {"template": {"spec": {
                "restartPolicy": "Never",
                "containers": [{"name": "main", "image": "hello:v1"}]}}}}}});
        let create = async {
            // Let the watch open first.
            tokio::time::sleep(Duration::from_millis(200)).await;
            let (code, body) = server
                .call(
                    server
                        .request(Method::POST, "/apis/batch/v1/namespaces/default/cronjobs")
                        .json(&manifest),
                )
                .await;
            assert_eq!(code, 201, "{body}");
        };
        let (samples, ()) = tokio::join!(watch, create);
        let cores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0);
        println!("skiff CronJob timing, one `* * * * *` CronJob, {minutes} minutes ({cores} cores)");
        for (job, late) in &samples {
            println!("  {job}: created {:>7.1} ms after its minute", ms(*late));
        }
        let worst = samples.iter().map(|(_, l)| *l).max().unwrap_or_default();
        let mean = samples.iter().map(|(_, l)| ms(*l)).sum::<f64>() / samples.len().max(1) as f64;
        println!(
            "fires {:>7.1} ms after the scheduled minute (mean {mean:.1} ms, worst of {})   target < 1000 ms",
            ms(worst),
            samples.len()
        );
    });
}
