//! HTTP functions: skiff's gateway against `wasmtime serve` on the same component, side by
//! side in one run, plus density and scale-from-zero figures.
//!
//! `FUNCTION_PARTS` picks parts (default `throughput,noisy,scale,tenants`).
//!
//! `cargo bench --bench functions` needs `wrk` (Debian package `wrk`) and `wasmtime`
//! 48.0.8 (`cargo install wasmtime-cli --version 48.0.8 --locked`) on the PATH; set
//! `WASMTIME` to use another binary. It measures:
//!
//! 1. **Throughput** of the hello component (`examples/guests/hello-http`): `wrk -t1 -c32
//!    -d10s --latency` against `wasmtime serve -S cli=y` and against skiff's gateway (an
//!    Ingress default backend to a one-replica Deployment), alternated `FUNCTION_ROUNDS`
//!    times (default 2). Target: skiff ≥ 0.9× wasmtime serve.
//! 2. **Noisy neighbour**: the hello tenant's p99 under wrk alone, then while another
//!    tenant's function is flooded with requests that spin and allocate. Target: ≤ 2×.
//! 3. **1,000 tenants** (`FUNCTION_TENANTS`): a namespace each, with one function pod, a
//!    Service and an Ingress host. Resident memory of the server per idle function, and the
//!    first-request latency of functions never called before.
//! 4. **Scale from zero** (`SCALE_RUNS`, default 5): a Deployment at zero replicas with
//!    `skiff.dev/scale-from-zero`; time from sending the first request to its response, the
//!    compiled component being cached. Target: < 10 ms.

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "support/measure.rs"]
mod measure;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Server, eventually, example_components, exposed, import_image};

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// What wrk reported.
#[derive(Debug, Clone, Copy)]
struct Load {
    rps: f64,
    p50_ms: f64,
    p99_ms: f64,
    errors: u64,
}

/// Parses a latency such as `1.23ms`, `850.00us` or `1.02s` into milliseconds.
fn latency_ms(text: &str) -> Option<f64> {
    let text = text.trim();
    let (number, scale) = if let Some(n) = text.strip_suffix("us") {
        (n, 0.001)
    } else if let Some(n) = text.strip_suffix("ms") {
        (n, 1.0)
    } else if let Some(n) = text.strip_suffix('s') {
        (n, 1000.0)
    } else {
        return None;
    };
    number.parse::<f64>().ok().map(|n| n * scale)
}

fn wrk(url: &str, host: &str) -> Load {
    let out = Command::new("wrk")
        .args(["-t1", "-c32", "-d10s", "--latency", "-H"])
        .arg(format!("Host: {host}"))
        .arg(url)
        .output()
        .expect("wrk is installed (apt-get install wrk)");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let field = |prefix: &str| {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(prefix).map(|r| r.trim().to_string()))
    };
    let errors = text
        .lines()
        .find(|l| l.contains("Non-2xx or 3xx responses"))
        .and_then(|l| l.split(':').nth(1)?.trim().parse().ok())
        .unwrap_or(0)
        + text
            .lines()
            .find(|l| l.contains("Socket errors"))
            .map(|l| {
                l.split(',')
                    .filter_map(|p| p.split_whitespace().last()?.parse::<u64>().ok())
                    .sum()
            })
            .unwrap_or(0);
    Load {
        rps: field("Requests/sec:")
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("wrk output: {text}")),
        p50_ms: field("50%")
            .and_then(|v| latency_ms(&v))
            .unwrap_or(f64::NAN),
        p99_ms: field("99%")
            .and_then(|v| latency_ms(&v))
            .unwrap_or(f64::NAN),
        errors,
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_answers(url: &str, host: &str) {
    eventually(60, || {
        let out = Command::new("curl")
            .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "-H"])
            .arg(format!("Host: {host}"))
            .arg(url)
            .output()
            .ok()?;
        (String::from_utf8_lossy(&out.stdout) == "200").then_some(())
    });
}

fn throughput(server: &Server, component: &std::path::Path) {
    let wasmtime = std::env::var("WASMTIME").unwrap_or_else(|_| "wasmtime".into());
    let port = free_port();
    let serve = Command::new(&wasmtime)
        .args(["serve", "-S", "cli=y", "--addr"])
        .arg(format!("127.0.0.1:{port}"))
        .arg(component)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    let mut serve = match serve {
        Ok(child) => Some(child),
        Err(e) => {
            println!(
                "`{wasmtime}` cannot run ({e}): only skiff is measured. Install wasmtime 48 with \
                 `cargo install wasmtime-cli --version 48.0.8 --locked`."
            );
            None
        }
    };
    server.apply(
        &(r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: hello}
spec:
  replicas: 1
  selector: {matchLabels: {app: hello}}
  template:
    metadata: {labels: {app: hello}}
    spec:
      containers: [{name: hello, image: hello-http:v1, ports: [{containerPort: 8080}]}]
"#
        .to_string()
            + &exposed("default", "hello", Some("hello.localhost"))),
    );
    let wasmtime_url = format!("http://127.0.0.1:{port}/");
    let skiff_url = format!("{}/", server.gateway());
    if serve.is_some() {
        wait_answers(&wasmtime_url, "hello.localhost");
    }
    wait_answers(&skiff_url, "hello.localhost");
    // Warm both up.
    for url in [&wasmtime_url, &skiff_url] {
        let _ = Command::new("wrk")
            .args(["-t1", "-c8", "-d2s", "-H", "Host: hello.localhost", url])
            .output();
    }
    let rounds = env_usize("FUNCTION_ROUNDS", 2);
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        if serve.is_some() {
            theirs.push(wrk(&wasmtime_url, "hello.localhost"));
        }
        ours.push(wrk(&skiff_url, "hello.localhost"));
    }
    if let Some(mut serve) = serve.take() {
        let _ = serve.kill();
        let _ = serve.wait();
    }
    let best = |v: &[Load]| {
        *v.iter()
            .max_by(|a, b| a.rps.total_cmp(&b.rps))
            .expect("a round")
    };
    let ours = best(&ours);
    println!("hello component, wrk -t1 -c32 -d10s, best of {rounds} alternated rounds:");
    if !theirs.is_empty() {
        let theirs = best(&theirs);
        println!(
            "  wasmtime serve -S cli=y : {:>8.0} req/s  p50 {:.2} ms  p99 {:.2} ms  errors {}",
            theirs.rps, theirs.p50_ms, theirs.p99_ms, theirs.errors
        );
    }
    println!(
        "  skiff gateway (Ingress) : {:>8.0} req/s  p50 {:.2} ms  p99 {:.2} ms  errors {}",
        ours.rps, ours.p50_ms, ours.p99_ms, ours.errors
    );
    if !theirs.is_empty() {
        println!(
            "  ratio skiff/wasmtime    : {:.2}x (target >= 0.90x)",
            ours.rps / best(&theirs).rps
        );
    }
}

/// A victim tenant's latency under wrk, alone and while a hostile tenant's function spins
/// and allocates under its own load (its pod: 500m CPU, 16Mi, 1 s timeout).
fn noisy_neighbour(server: &Server) {
    server.apply(
        &(r#"
apiVersion: v1
kind: Namespace
metadata: {name: evil}
---
apiVersion: v1
kind: Pod
metadata:
  name: lab
  namespace: evil
  labels: {app: lab}
  annotations: {skiff.dev/request-timeout: 1s}
spec:
  containers:
  - name: lab
    image: http-lab:v1
    ports: [{containerPort: 8080}]
    resources: {limits: {cpu: 500m, memory: 16Mi}}
"#
        .to_string()
            + &exposed("evil", "lab", Some("evil.localhost"))),
    );
    let gateway = server.gateway();
    wait_answers(&format!("{gateway}/"), "evil.localhost");
    let victim = |label: &str| {
        let load = wrk(&format!("{gateway}/"), "hello.localhost");
        println!(
            "  victim {label:<28}: {:>8.0} req/s  p50 {:.2} ms  p99 {:.2} ms  errors {}",
            load.rps, load.p50_ms, load.p99_ms, load.errors
        );
        load
    };
    println!("noisy neighbour (victim: hello, wrk -t1 -c32 -d10s):");
    let alone = victim("alone");
    let paths = std::env::var("NOISY_PATHS").unwrap_or_else(|_| "/spin,/alloc".into());
    let hostile: Vec<_> = paths
        .split(',')
        .map(|path| {
            Command::new("wrk")
                .args(["-t1", "-c8", "-d14s", "-H", "Host: evil.localhost"])
                .arg(format!("{gateway}{path}"))
                .stdout(Stdio::null())
                .spawn()
                .expect("wrk")
        })
        .collect();
    std::thread::sleep(Duration::from_secs(2));
    let noisy = victim(&format!("with {paths} flood"));
    for mut h in hostile {
        let _ = h.wait();
    }
    println!(
        "  victim p99 ratio noisy/alone: {:.2}x (target <= 2x)",
        noisy.p99_ms / alone.p99_ms
    );
}

fn tenants(server: &Server) {
    let n = env_usize("FUNCTION_TENANTS", 1000);
    let pid = server.pid();
    let before = measure::rss_mb(pid);
    let mut yaml = String::new();
    for i in 0..n {
        yaml.push_str(&format!(
            r#"---
apiVersion: v1
kind: Namespace
metadata: {{name: t{i}}}
---
apiVersion: v1
kind: Pod
metadata: {{name: fn, namespace: t{i}, labels: {{app: fn}}}}
spec:
  containers: [{{name: fn, image: hello-http:v1, ports: [{{containerPort: 8080}}], resources: {{limits: {{memory: 8Mi, cpu: 100m}}, requests: {{memory: 1Mi, cpu: 1m}}}}}}]
"#
        ));
        yaml.push_str(&exposed(
            &format!("t{i}"),
            "fn",
            Some(&format!("t{i}.localhost")),
        ));
    }
    let started = Instant::now();
    let path = common::write_file(server, "tenants.yaml", &yaml);
    server.kubectl_ok(&["apply", "-f", path.to_str().unwrap()]);
    let applied = started.elapsed();
    eventually(600, || {
        let out = server.kubectl_ok(&[
            "get",
            "pods",
            "-A",
            "--field-selector=status.phase=Running",
            "--no-headers",
        ]);
        (out.lines().filter(|l| l.contains(" fn ")).count() >= n).then_some(())
    });
    let running = started.elapsed();
    // Wait for the last Endpoints, then let the process settle.
    wait_answers(
        &format!("{}/", server.gateway()),
        &format!("t{}.localhost", n - 1),
    );
    std::thread::sleep(Duration::from_secs(3));
    let after = measure::rss_mb(pid);
    println!("{n} tenants, one function each (namespace, pod, Service, Ingress):");
    println!(
        "  applied in {:.1} s, all Running after {:.1} s",
        applied.as_secs_f64(),
        running.as_secs_f64()
    );
    println!(
        "  server RSS {before:.0} MB -> {after:.0} MB: {:.1} KB per idle function (the compiled component is shared)",
        (after - before) * 1024.0 / n as f64
    );
    // Cold functions: never called before (the last one above was called once), over one
    // kept-alive connection.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let client = reqwest::Client::new();
    let url = format!("{}/", server.gateway());
    let mut cold = Vec::new();
    for i in (0..n - 1).step_by((n / 25).max(1)).take(25) {
        let took = runtime.block_on(async {
            let t = Instant::now();
            let response = client
                .get(&url)
                .header("host", format!("t{i}.localhost"))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status().as_u16(), 200);
            let _ = response.bytes().await;
            t.elapsed()
        });
        cold.push(took);
    }
    cold.sort();
    println!(
        "  first request to a never-called function: p50 {:.2} ms, max {:.2} ms over {}",
        measure::ms(measure::percentile(&cold, 50.0)),
        measure::ms(*cold.last().unwrap()),
        cold.len()
    );
}

fn scale_from_zero(server: &Server) {
    server.apply(
        &(r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: lazy, annotations: {skiff.dev/scale-from-zero: "true", skiff.dev/idle-timeout: 1h}}
spec:
  replicas: 0
  selector: {matchLabels: {app: lazy}}
  template:
    metadata: {labels: {app: lazy}}
    spec:
      containers: [{name: hello, image: hello-http:v1, ports: [{containerPort: 8080}]}]
"#
        .to_string()
            + &exposed("default", "lazy", Some("lazy.localhost"))),
    );
    let runs = env_usize("SCALE_RUNS", 5);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let client = reqwest::Client::new();
    let url = format!("{}/", server.gateway());
    let mut times = Vec::new();
    for _ in 0..runs {
        // At zero, with no pod left.
        server.kubectl_ok(&["scale", "deployment", "lazy", "--replicas=0"]);
        eventually(60, || {
            let out = server.kubectl_ok(&["get", "pods", "-l", "app=lazy", "--no-headers"]);
            out.trim().is_empty().then_some(())
        });
        std::thread::sleep(Duration::from_millis(300));
        let took = runtime.block_on(async {
            let t = Instant::now();
            let response = client
                .get(&url)
                .header("host", "lazy.localhost")
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            let _ = response.bytes().await;
            assert_eq!(status, 200);
            t.elapsed()
        });
        times.push(took);
    }
    times.sort();
    println!(
        "scale from zero, first response after the request (compiled code cached), {runs} runs:"
    );
    println!(
        "  min {:.1} ms  median {:.1} ms  max {:.1} ms (target < 10 ms)",
        measure::ms(times[0]),
        measure::ms(measure::percentile(&times, 50.0)),
        measure::ms(*times.last().unwrap())
    );
}

fn main() {
    // `cargo bench` passes --bench; nothing else to parse.
    let component = example_components().join("hello_http.wasm");
    let server = Server::start();
    import_image(&server, &component, "hello-http:v1");
    import_image(
        &server,
        &example_components().join("http_lab.wasm"),
        "http-lab:v1",
    );
    let parts =
        std::env::var("FUNCTION_PARTS").unwrap_or_else(|_| "throughput,noisy,scale,tenants".into());
    let run = |part: &str| parts.split(',').any(|p| p.trim() == part);
    if run("throughput") || run("noisy") {
        throughput(&server, &component);
    }
    if run("noisy") {
        noisy_neighbour(&server);
    }
    if run("scale") {
        scale_from_zero(&server);
    }
    if run("tenants") {
        tenants(&server);
    }
}
