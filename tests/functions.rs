//! HTTP functions end to end: `wasi:http` components run by the real server, reached with real
//! HTTP through the gateway (Ingress rules) and through the API server's service proxy
//! (kubectl), with Services and Endpoints kept by the endpoints controller.

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::{Server, eventually, example_components, exposed, import_image};
use serde_json::Value;

/// A server with the example functions imported as hello-http:v1, echo-json:v1, http-lab:v1.
fn start() -> Server {
    let server = Server::start();
    for (file, reference) in [
        ("hello_http", "hello-http:v1"),
        ("echo_json", "echo-json:v1"),
        ("http_lab", "http-lab:v1"),
    ] {
        import_image(
            &server,
            &example_components().join(format!("{file}.wasm")),
            reference,
        );
    }
    server
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap()
}

/// GET through the gateway with a Host header: (status, body).
async fn get(client: &reqwest::Client, server: &Server, host: &str, path: &str) -> (u16, String) {
    let response = client
        .get(format!("{}{path}", server.gateway()))
        .header("host", host)
        .send()
        .await
        .expect("gateway answers");
    let status = response.status().as_u16();
    (status, response.text().await.unwrap_or_default())
}

/// Waits until the Service's Endpoints list `n` ready addresses.
fn wait_ready_endpoints(server: &Server, namespace: &str, service: &str, n: usize) {
    eventually(60, || {
        let ep = server.kubectl_json(&["get", "endpoints", service, "-n", namespace, "-o", "json"]);
        let ready: usize = ep["subsets"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|s| s["addresses"].as_array().map_or(0, Vec::len))
            .sum();
        (ready == n).then_some(())
    });
}

fn example(name: &str) -> String {
    std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("examples/functions")
            .join(name),
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_tenants_behind_ingress_services_and_the_service_proxy() {
    let server = start();
    server.apply(&example("two-tenants.yaml"));
    wait_ready_endpoints(&server, "tenant-a", "hello", 2);
    wait_ready_endpoints(&server, "tenant-b", "echo", 1);
    let http = client();

    // Endpoints and EndpointSlices name the pods, with the named targetPort resolved.
    let ep = server.kubectl_json(&["get", "endpoints", "hello", "-n", "tenant-a", "-o", "json"]);
    assert_eq!(ep["subsets"][0]["ports"][0]["port"], 8080, "{ep}");
    assert_eq!(ep["subsets"][0]["addresses"][0]["targetRef"]["kind"], "Pod");
    let slices = server.kubectl_json(&[
        "get",
        "endpointslices",
        "-n",
        "tenant-a",
        "-l",
        "kubernetes.io/service-name=hello",
        "-o",
        "json",
    ]);
    assert_eq!(slices["items"][0]["endpoints"].as_array().unwrap().len(), 2);
    assert_eq!(
        slices["items"][0]["endpoints"][0]["conditions"]["ready"],
        true
    );

    // Host rules, load balanced over both pods.
    let mut pods = BTreeSet::new();
    for _ in 0..6 {
        let (status, body) = get(&http, &server, "hello.tenant-a.localhost", "/hi?x=1").await;
        assert_eq!(status, 200, "{body}");
        assert!(body.contains(" at /hi?x=1"), "{body}");
        pods.insert(body.split_whitespace().nth(2).unwrap().to_string());
    }
    assert_eq!(pods.len(), 2, "requests reach both replicas: {pods:?}");

    // The JSON function gets the body; bad JSON is its own 400; a path outside the Ingress
    // rule matches nothing.
    let response = http
        .post(format!("{}/echo/items", server.gateway()))
        .header("host", "api.tenant-b.localhost:8080")
        .header("content-type", "application/json")
        .body(r#"{"name": "skiff", "n": [1, 2]}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let echoed: Value = response.json().await.unwrap();
    assert_eq!(echoed["method"], "POST");
    assert_eq!(echoed["path"], "/echo/items");
    assert_eq!(echoed["body"]["n"][1], 2);
    let response = http
        .post(format!("{}/echo", server.gateway()))
        .header("host", "api.tenant-b.localhost")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 400);
    let (status, _) = get(&http, &server, "api.tenant-b.localhost", "/other").await;
    assert_eq!(status, 404);
    let (status, _) = get(&http, &server, "nobody.localhost", "/").await;
    assert_eq!(status, 404);

    // The API server's service proxy (what kubectl proxy uses), by port name and number,
    // and the pod proxy.
    let body = server.kubectl_ok(&[
        "get",
        "--raw",
        "/api/v1/namespaces/tenant-a/services/hello:http/proxy/via-api",
    ]);
    assert!(body.starts_with("hello from hello-"), "{body}");
    let body = server.kubectl_ok(&[
        "get",
        "--raw",
        "/api/v1/namespaces/tenant-b/services/echo:80/proxy/echo?q=1",
    ]);
    let echoed: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(echoed["path"], "/echo?q=1");
    let pod = server.kubectl_ok(&[
        "get",
        "pods",
        "-n",
        "tenant-a",
        "-o",
        "jsonpath={.items[0].metadata.name}",
    ]);
    let body = server.kubectl_ok(&[
        "get",
        "--raw",
        &format!("/api/v1/namespaces/tenant-a/pods/{pod}:8080/proxy/"),
    ]);
    assert_eq!(body.trim(), format!("hello from {pod} at /"));
    let err = server.kubectl_err(&[
        "get",
        "--raw",
        "/api/v1/namespaces/tenant-a/services/missing/proxy/",
    ]);
    assert!(
        err.contains("NotFound") || err.contains("not found"),
        "{err}"
    );

    // Limits: a body over the gateway's limit is 413, a header block over 64 KiB is 431.
    let response = http
        .post(format!("{}/echo", server.gateway()))
        .header("host", "api.tenant-b.localhost")
        .body(vec![b'x'; 17 << 20])
        .send()
        .await;
    match response {
        Ok(r) => assert_eq!(r.status().as_u16(), 413),
        // The gateway may close the connection before the client has sent everything.
        Err(e) => assert!(e.is_request() || e.is_body(), "{e}"),
    }
    let response = client()
        .get(format!("{}/", server.gateway()))
        .header("host", "hello.tenant-a.localhost")
        .header("x-huge", "y".repeat(70 * 1024))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    assert_eq!(status, 431, "{}", response.text().await.unwrap_or_default());

    // Per-tenant metrics in the Prometheus format.
    let (_, metrics) = get(&http, &server, "localhost", "/metrics").await;
    assert!(
        metrics.contains("skiff_gateway_requests_total{namespace=\"tenant-a\",code=\"200\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains("skiff_gateway_requests_total{namespace=\"tenant-b\",code=\"400\"} 1")
    );
    assert!(
        metrics.contains("skiff_gateway_request_duration_seconds_count{namespace=\"tenant-a\"}")
    );
    assert!(metrics.contains("skiff_function_fuel_consumed_total{namespace=\"tenant-b\"}"));
    // A host an Ingress names is its tenant's, /metrics included.
    let (status, body) = get(&http, &server, "hello.tenant-a.localhost", "/metrics").await;
    assert_eq!((status, body.starts_with("hello from")), (200, true));

    // skiff's Ingresses show the gateway as their address.
    eventually(10, || {
        let ing = server.kubectl_json(&["get", "ingress", "hello", "-n", "tenant-a", "-o", "json"]);
        (ing["status"]["loadBalancer"]["ingress"][0]["ip"] == "127.0.0.1").then_some(())
    });

    // Deleting the Service removes its Endpoints and slices.
    server.kubectl_ok(&["delete", "service", "echo", "-n", "tenant-b"]);
    eventually(30, || {
        let out = server.kubectl(&["get", "endpoints", "echo", "-n", "tenant-b"]);
        let slices =
            server.kubectl_json(&["get", "endpointslices", "-n", "tenant-b", "-o", "json"]);
        (!out.status.success() && slices["items"].as_array().is_some_and(Vec::is_empty))
            .then_some(())
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_tenant_only_hurts_its_own_callers() {
    let server = start();
    let gateway_host = server.gateway().trim_start_matches("http://").to_string();
    server.apply(
        &(format!(
            r#"
apiVersion: v1
kind: Namespace
metadata: {{name: good}}
---
apiVersion: v1
kind: Namespace
metadata: {{name: evil}}
---
apiVersion: v1
kind: Secret
metadata: {{name: token, namespace: good}}
stringData: {{token: s3cr3t}}
---
apiVersion: v1
kind: Pod
metadata:
  name: hello
  namespace: good
  labels: {{app: hello}}
spec:
  containers:
    - name: hello
      image: http-lab:v1
      ports: [{{containerPort: 8080}}]
      volumeMounts: [{{name: token, mountPath: /secret}}]
  volumes: [{{name: token, secret: {{secretName: token}}}}]
---
apiVersion: v1
kind: Pod
metadata:
  name: lab
  namespace: evil
  labels: {{app: lab}}
  annotations:
    skiff.dev/request-timeout: 1s
    skiff.dev/egress: "{gateway_host}"
spec:
  containers:
    - name: lab
      image: http-lab:v1
      ports: [{{containerPort: 8080}}]
      resources: {{limits: {{memory: 16Mi, cpu: 500m}}}}
"#
        ) + &exposed("good", "hello", Some("good.localhost"))
            + &exposed("evil", "lab", Some("evil.localhost"))),
    );
    wait_ready_endpoints(&server, "good", "hello", 1);
    wait_ready_endpoints(&server, "evil", "lab", 1);
    let http = client();

    // The good tenant reads its own secret; the evil one cannot see it (no such file in its
    // sandbox), nor the good tenant's environment.
    let (status, body) = get(&http, &server, "good.localhost", "/read?path=/secret/token").await;
    assert_eq!((status, body.as_str()), (200, "s3cr3t"));
    let (status, _) = get(&http, &server, "evil.localhost", "/read?path=/secret/token").await;
    assert_eq!(status, 404);

    // Spinning, allocating and panicking answer the evil caller with 504/500 while the good
    // tenant keeps answering.
    let spin = {
        let (http, url) = (http.clone(), server.gateway());
        tokio::spawn(async move {
            http.get(format!("{url}/spin"))
                .header("host", "evil.localhost")
                .send()
                .await
                .map(|r| r.status().as_u16())
        })
    };
    for _ in 0..5 {
        let (status, _) = get(&http, &server, "good.localhost", "/").await;
        assert_eq!(status, 200);
    }
    assert_eq!(spin.await.unwrap().unwrap(), 504);
    let (status, body) = get(&http, &server, "evil.localhost", "/alloc").await;
    assert_eq!(status, 500, "{body}");
    assert!(body.contains("memory limit"), "{body}");
    let (status, body) = get(&http, &server, "evil.localhost", "/panic").await;
    assert_eq!(status, 500);
    assert!(body.contains("trapped"), "{body}");

    // Egress: only the allowed host; anything else is refused inside the guest.
    let (status, body) = get(
        &http,
        &server,
        "evil.localhost",
        "/fetch?url=http://example.invalid/",
    )
    .await;
    assert_eq!(status, 502, "{body}");
    assert!(body.contains("HttpRequestDenied"), "{body}");
    let (status, body) = get(
        &http,
        &server,
        "evil.localhost",
        &format!("/fetch?url=http://{gateway_host}/metrics"),
    )
    .await;
    assert_eq!((status, body.trim()), (200, "200"));

    // The pod keeps serving: nothing restarted; its log tells what happened.
    let pod = server.kubectl_json(&["get", "pod", "lab", "-n", "evil", "-o", "json"]);
    assert_eq!(pod["status"]["containerStatuses"][0]["restartCount"], 0);
    assert_eq!(pod["status"]["containerStatuses"][0]["ready"], true);
    let logs = server.kubectl_ok(&["logs", "lab", "-n", "evil"]);
    assert!(logs.contains("did not finish within 1s"), "{logs}");
    assert!(logs.contains("exceeded its memory limit"), "{logs}");
    assert!(
        logs.contains("panicked") || logs.contains("trapped"),
        "{logs}"
    );

    let (_, metrics) = get(&http, &server, "localhost", "/metrics").await;
    assert!(
        metrics.contains("skiff_function_errors_total{namespace=\"evil\",reason=\"timeout\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("skiff_function_errors_total{namespace=\"evil\",reason=\"oom\"} 1"));
    assert!(metrics.contains("skiff_function_errors_total{namespace=\"good\",reason=\"trap\"} 0"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_update_under_load_drops_no_request() {
    let server = start();
    server.apply(
        &(r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 2
  strategy: {rollingUpdate: {maxUnavailable: 0, maxSurge: 1}}
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}, annotations: {version: "1"}}
    spec:
      containers:
        - name: web
          image: hello-http:v1
          ports: [{containerPort: 8080}]
"#
        .to_string()
            + &exposed("default", "web", None)),
    );
    wait_ready_endpoints(&server, "default", "web", 2);
    let stop = Arc::new(AtomicBool::new(false));
    let mut load = Vec::new();
    for _ in 0..4 {
        let (http, url, stop) = (client(), server.gateway(), stop.clone());
        load.push(tokio::spawn(async move {
            let (mut ok, mut failed) = (0u32, Vec::new());
            while !stop.load(Ordering::Relaxed) {
                match http.get(format!("{url}/")).send().await {
                    Ok(r) if r.status().as_u16() == 200 => ok += 1,
                    Ok(r) => failed.push(format!(
                        "{}: {}",
                        r.status(),
                        r.text().await.unwrap_or_default()
                    )),
                    Err(e) => failed.push(e.to_string()),
                }
            }
            (ok, failed)
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    server.kubectl_ok(&[
        "patch",
        "deployment",
        "web",
        "-p",
        r#"{"spec":{"template":{"metadata":{"annotations":{"version":"2"}}}}}"#,
    ]);
    server.kubectl_ok(&["rollout", "status", "deployment/web", "--timeout=60s"]);
    // Until the old pods are gone.
    eventually(60, || {
        let pods = server.kubectl_json(&["get", "pods", "-l", "app=web", "-o", "json"]);
        (pods["items"].as_array().map_or(0, Vec::len) == 2).then_some(())
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    let (mut ok, mut failed) = (0, Vec::new());
    for task in load {
        let (o, f) = task.await.unwrap();
        ok += o;
        failed.extend(f);
    }
    assert!(
        failed.is_empty(),
        "{} of {} requests failed: {:?}",
        failed.len(),
        ok as usize + failed.len(),
        &failed[..failed.len().min(5)]
    );
    assert!(ok > 50, "the load ran ({ok} requests)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deployment_scales_from_zero_on_a_request_and_back_when_idle() {
    let server = start();
    server.apply(&example("scale-from-zero.yaml").replace("idle-timeout: 60s", "idle-timeout: 2s"));
    let http = client();
    let deployment =
        |server: &Server| server.kubectl_json(&["get", "deployment", "lazy", "-o", "json"]);
    assert_eq!(deployment(&server)["spec"]["replicas"], 0);
    let (status, body) = get(&http, &server, "lazy.localhost", "/first").await;
    assert_eq!(status, 200, "{body}");
    assert!(body.starts_with("hello from lazy-"), "{body}");
    assert_eq!(deployment(&server)["spec"]["replicas"], 1);
    // Requests keep it up; idleness brings it back to zero, and a request wakes it again.
    for _ in 0..3 {
        assert_eq!(get(&http, &server, "lazy.localhost", "/").await.0, 200);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    eventually(30, || {
        (deployment(&server)["spec"]["replicas"] == 0).then_some(())
    });
    eventually(30, || {
        let pods = server.kubectl_json(&["get", "pods", "-l", "app=lazy", "-o", "json"]);
        pods["items"]
            .as_array()
            .is_some_and(Vec::is_empty)
            .then_some(())
    });
    let (status, _) = get(&http, &server, "lazy.localhost", "/again").await;
    assert_eq!(status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_and_slow_clients_get_clean_errors() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = start();
    let addr = server.gateway().trim_start_matches("http://").to_string();

    // Not HTTP at all: 400, and the gateway keeps serving.
    let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
    stream.write_all(b"HELLO THERE\r\n\r\n").await.unwrap();
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer).await;
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer:?}");

    // A client that never finishes its headers is cut off (408) after the header timeout.
    let mut slow = tokio::net::TcpStream::connect(&addr).await.unwrap();
    slow.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let mut answer = String::new();
    let read =
        tokio::time::timeout(Duration::from_secs(30), slow.read_to_string(&mut answer)).await;
    assert!(read.is_ok(), "the slow client was not cut off");
    assert!(started.elapsed() < Duration::from_secs(20));
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 408"),
        "{answer:?}"
    );

    // Meanwhile and after, a well-formed request is answered.
    let response = client()
        .get(format!("{}/metrics", server.gateway()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
}

/// Pod `fn` (hello-http, port 8080) behind Service `fn` (port 80, named `web`).
const FN_POD_AND_SERVICE: &str = r#"
apiVersion: v1
kind: Pod
metadata: {name: fn, labels: {app: fn}}
spec:
  containers: [{name: hello, image: hello-http:v1, ports: [{containerPort: 8080}]}]
---
apiVersion: v1
kind: Service
metadata: {name: fn}
spec:
  selector: {app: fn}
  ports: [{name: web, port: 80, targetPort: 8080}]
"#;

/// This host's address on its default route (Kubernetes refuses loopback Endpoints).
fn host_address() -> Option<std::net::IpAddr> {
    let socket = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    socket.connect("198.51.100.1:9").ok()?;
    let ip = socket.local_addr().ok()?.ip();
    (!ip.is_loopback() && !ip.is_unspecified()).then_some(ip)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn selector_less_services_and_kubectl_proxy() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = start();
    let http = client();

    // `kubectl proxy` reaches a function's Service through the API server's proxy.
    server.apply(FN_POD_AND_SERVICE);
    wait_ready_endpoints(&server, "default", "fn", 1);
    let mut proxy = std::process::Command::new(common::kubectl())
        .args(["proxy", "--port=0"])
        .env("KUBECONFIG", server.kubeconfig())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    {
        use std::io::BufRead;
        let stdout = proxy.stdout.take().unwrap();
        std::io::BufReader::new(stdout)
            .read_line(&mut line)
            .unwrap();
    }
    // "Starting to serve on 127.0.0.1:PORT"
    let address = line.trim().rsplit(' ').next().unwrap().to_string();
    let body = common::body_of(http.get(format!(
        "http://{address}/api/v1/namespaces/default/services/fn:web/proxy/via-kubectl"
    )))
    .await;
    let _ = proxy.kill();
    let _ = proxy.wait();
    assert_eq!(body.trim(), "hello from fn at /via-kubectl");

    // A plain HTTP server on the host, behind a Service without a selector whose Endpoints
    // the user writes.
    let Some(ip) = host_address() else {
        eprintln!("no non-loopback address: the selector-less Service part is skipped");
        return;
    };
    let listener = tokio::net::TcpListener::bind((ip, 0)).await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let n = stream.read(&mut buf).await.unwrap_or(0);
                let head = String::from_utf8_lossy(&buf[..n]).to_string();
                let path = head.split_whitespace().nth(1).unwrap_or("?").to_string();
                let body = format!("host server saw {path}");
                let answer = format!(
                    "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(answer.as_bytes()).await;
            });
        }
    });
    server.apply(&format!(
        r#"
apiVersion: v1
kind: Service
metadata: {{name: outside}}
spec:
  ports: [{{name: web, port: 80}}]
---
apiVersion: v1
kind: Endpoints
metadata: {{name: outside}}
subsets:
- addresses: [{{ip: "{ip}"}}]
  ports: [{{name: web, port: {port}}}]
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {{name: outside}}
spec:
  rules:
  - host: outside.localhost
    http:
      paths: [{{path: /, pathType: Prefix, backend: {{service: {{name: outside, port: {{name: web}}}}}}}}]
"#
    ));
    let (status, body) =
        eventually_async(|| get(&http, &server, "outside.localhost", "/x?y=1")).await;
    assert_eq!((status, body.as_str()), (200, "host server saw /x?y=1"));
    // The controller left the user's Endpoints alone.
    let ep = server.kubectl_json(&["get", "endpoints", "outside", "-o", "json"]);
    assert_eq!(ep["subsets"][0]["addresses"][0]["ip"], ip.to_string());
}

/// Retries `f` until it answers 200 (the gateway's caches follow the store's events).
async fn eventually_async<F, Fut>(f: F) -> (u16, String)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = (u16, String)>,
{
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let (status, body) = f().await;
        if status == 200 || std::time::Instant::now() > deadline {
            return (status, body);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_concurrency_cap_refuses_the_excess_and_forgets_abandoned_requests() {
    let server = start();
    server.apply(
        &(r#"
apiVersion: v1
kind: Pod
metadata:
  name: lab
  labels: {app: lab}
  annotations: {skiff.dev/max-concurrency: "2"}
spec:
  containers: [{name: lab, image: http-lab:v1, ports: [{containerPort: 8080}]}]
"#
        .to_string()
            + &exposed("default", "lab", None)),
    );
    wait_ready_endpoints(&server, "default", "lab", 1);
    let http = client();
    // Three at once against a cap of two: one is refused.
    let slow = |http: reqwest::Client, url: String| async move {
        http.get(format!("{url}/sleep?ms=700"))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    };
    let calls: Vec<_> = (0..3)
        .map(|_| tokio::spawn(slow(http.clone(), server.gateway())))
        .collect();
    let mut statuses = Vec::new();
    for call in calls {
        statuses.push(call.await.unwrap());
    }
    statuses.sort();
    assert_eq!(statuses, vec![200, 200, 503]);

    // Callers that give up are not counted any more: after five abandoned requests the
    // function still takes new ones.
    let impatient = reqwest::Client::builder()
        .timeout(Duration::from_millis(100))
        .build()
        .unwrap();
    for _ in 0..5 {
        let result = impatient
            .get(format!("{}/sleep?ms=300", server.gateway()))
            .send()
            .await;
        assert!(result.is_err(), "the impatient client gave up");
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (status, body) = get(&http, &server, "any.localhost", "/").await;
    assert_eq!(status, 200, "{body}");
}

/// GET `path` from a local port (what a port-forward listens on): (status, body).
async fn get_local(http: &reqwest::Client, port: u16, path: &str) -> (u16, String) {
    match http
        .get(format!("http://127.0.0.1:{port}{path}"))
        .send()
        .await
    {
        Ok(response) => {
            let status = response.status().as_u16();
            (status, response.text().await.unwrap_or_default())
        }
        Err(e) => (0, e.to_string()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_port_forward_reaches_functions_through_both_transports() {
    let server = start();
    let http = client();
    server.apply(
        r#"
apiVersion: v1
kind: Pod
metadata: {name: echo, labels: {app: echo}}
spec:
  containers: [{name: echo, image: echo-json:v1, ports: [{containerPort: 8080}]}]
"#,
    );
    server.apply(FN_POD_AND_SERVICE);
    wait_ready_endpoints(&server, "default", "fn", 1);
    server.kubectl_ok(&["wait", "--for=condition=Ready", "pod/echo", "--timeout=60s"]);

    // kubectl's default (SPDY tunnelled in a WebSocket) and its fallback (plain SPDY), to a
    // pod and to a Service (kubectl picks the pod and maps the Service port to 8080).
    for (target, remote) in [("pod/fn", "8080"), ("svc/fn", "80")] {
        for env in [&[][..], &[("KUBECTL_PORT_FORWARD_WEBSOCKETS", "false")][..]] {
            let forward = server.port_forward(target, remote, env);
            // Sequential connections, then concurrent ones (one stream pair each).
            for i in 0..3 {
                let (status, body) = get_local(&http, forward.port, &format!("/seq/{i}")).await;
                assert_eq!(
                    (status, body.trim()),
                    (200, format!("hello from fn at /seq/{i}").as_str()),
                    "{target} {env:?}: {}",
                    forward.stderr()
                );
            }
            let calls = (0..8).map(|i| {
                let http = http.clone();
                let port = forward.port;
                async move { get_local(&http, port, &format!("/par/{i}")).await }
            });
            for (i, (status, body)) in futures::future::join_all(calls)
                .await
                .into_iter()
                .enumerate()
            {
                assert_eq!(
                    (status, body.trim()),
                    (200, format!("hello from fn at /par/{i}").as_str())
                );
            }
        }
    }

    // Bodies larger than one frame, both ways.
    let forward = server.port_forward("pod/echo", "8080", &[]);
    let big = "x".repeat(300_000);
    let response = http
        .post(format!("http://127.0.0.1:{}/big", forward.port))
        .json(&serde_json::json!({"data": big}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let echoed: Value = response.json().await.unwrap();
    assert_eq!(echoed["body"]["data"].as_str().map(str::len), Some(300_000));
    drop(forward);

    // A port nothing serves: the connection fails, and kubectl says why.
    let mut forward = server.port_forward("pod/echo", "9999", &[]);
    let (status, _) = get_local(&http, forward.port, "/").await;
    assert_eq!(status, 0, "nothing answers on 9999");
    let said = eventually(30, || {
        let said = forward.stderr();
        said.contains("9999").then_some(said)
    });
    assert!(said.contains("serves nothing on port 9999"), "{said}");
    let _ = forward.running();

    // An unknown pod is a NotFound from the API.
    let out = server.kubectl(&["port-forward", "pod/nope", ":80"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not found"));
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>;

/// Opens a WebSocket to the API server at `path` offering `protocol` (as the Python client
/// does for port forwarding).
async fn websocket(server: &Server, path: &str, protocol: &str) -> Socket {
    use rustls_pki_types::pem::PemObject;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let address = server.base.trim_start_matches("https://").to_string();
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pki_types::CertificateDer::pem_slice_iter(&server.ca_pem) {
        roots.add(cert.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(&address).await.unwrap();
    let name = rustls_pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .unwrap();
    let mut request = format!("wss://{address}{path}")
        .into_client_request()
        .unwrap();
    let headers = request.headers_mut();
    headers.insert(
        "authorization",
        format!("Bearer {}", server.token).parse().unwrap(),
    );
    headers.insert("sec-websocket-protocol", protocol.parse().unwrap());
    let (socket, response) = tokio_tungstenite::client_async(request, tls).await.unwrap();
    assert_eq!(
        response.headers()["sec-websocket-protocol"],
        protocol,
        "the server picks the offered protocol"
    );
    socket
}

/// Every (channel, payload) the server sends until it closes the socket.
async fn channel_messages(socket: &mut Socket, base64: bool) -> Vec<(u8, Vec<u8>)> {
    use base64::Engine;
    use futures::StreamExt;
    use tokio_tungstenite::tungstenite::Message;
    let mut seen = Vec::new();
    while let Ok(Some(Ok(message))) =
        tokio::time::timeout(Duration::from_secs(30), socket.next()).await
    {
        match message {
            Message::Binary(bytes) if !base64 => seen.push((bytes[0], bytes[1..].to_vec())),
            Message::Text(text) if base64 => seen.push((
                text.as_bytes()[0] - b'0',
                base64::engine::general_purpose::STANDARD
                    .decode(&text.as_bytes()[1..])
                    .unwrap(),
            )),
            Message::Close(_) => break,
            _ => {}
        }
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_channel_port_forwarding_as_the_python_client_does() {
    use base64::Engine;
    use futures::SinkExt;
    use tokio_tungstenite::tungstenite::Message;
    let server = start();
    server.apply(
        r#"
apiVersion: v1
kind: Pod
metadata: {name: fn}
spec:
  containers: [{name: hello, image: hello-http:v1, ports: [{containerPort: 8080}]}]
"#,
    );
    server.kubectl_ok(&["wait", "--for=condition=Ready", "pod/fn", "--timeout=60s"]);
    let path = "/api/v1/namespaces/default/pods/fn/portforward";
    let request = b"GET /ws HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";

    // Binary: channel 0 is port 8080's data, channel 1 its errors; each opens with the port.
    let mut socket = websocket(&server, &format!("{path}?ports=8080"), "v4.channel.k8s.io").await;
    socket
        .send(Message::Binary([&[0u8][..], request].concat().into()))
        .await
        .unwrap();
    let seen = channel_messages(&mut socket, false).await;
    assert_eq!(seen[0], (0, vec![0x90, 0x1f]));
    assert_eq!(seen[1], (1, vec![0x90, 0x1f]));
    let data: Vec<u8> = seen[2..]
        .iter()
        .filter(|(c, _)| *c == 0)
        .flat_map(|(_, d)| d.clone())
        .collect();
    let data = String::from_utf8_lossy(&data);
    assert!(data.starts_with("HTTP/1.1 200"), "{data}");
    assert!(data.contains("hello from fn at /ws"), "{data}");

    // Base64 text messages, with a second port nothing serves: its error channel says why.
    let mut socket = websocket(
        &server,
        &format!("{path}?ports=8080,9999"),
        "v4.base64.channel.k8s.io",
    )
    .await;
    let framed = format!(
        "0{}",
        base64::engine::general_purpose::STANDARD.encode(request)
    );
    socket.send(Message::Text(framed.into())).await.unwrap();
    let seen = channel_messages(&mut socket, true).await;
    let on = |channel: u8| -> String {
        let bytes: Vec<u8> = seen
            .iter()
            .filter(|(c, _)| *c == channel)
            .skip(1)
            .flat_map(|(_, d)| d.clone())
            .collect();
        String::from_utf8_lossy(&bytes).into_owned()
    };
    assert!(on(0).contains("hello from fn at /ws"), "{seen:?}");
    assert!(on(3).contains("serves nothing on port 9999"), "{seen:?}");
    assert_eq!(on(1), "");

    // No ports: a Status, not an upgrade.
    let (status, body) = server
        .call(server.request(reqwest::Method::GET, path))
        .await;
    assert_eq!(status, 400, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn function_probes_over_http_and_tcp() {
    let server = tokio::task::spawn_blocking(start).await.unwrap();
    server.apply(
        r#"
apiVersion: v1
kind: Pod
metadata: {name: probed}
spec:
  containers:
  - name: hello
    image: hello-http:v1
    ports: [{name: http, containerPort: 8080}]
    startupProbe: {httpGet: {path: /started, port: http}, periodSeconds: 1}
    readinessProbe: {tcpSocket: {port: 8080}, periodSeconds: 1}
    livenessProbe: {httpGet: {path: /alive, port: 8080}, periodSeconds: 1}
---
apiVersion: v1
kind: Pod
metadata: {name: unready}
spec:
  containers:
  - name: hello
    image: hello-http:v1
    ports: [{containerPort: 8080}]
    readinessProbe: {tcpSocket: {port: 9999}, periodSeconds: 1}
"#,
    );
    // The startup probe's GET passes, then the TCP readiness probe makes it Ready.
    let probed = eventually(60, || {
        let p = server.kubectl_json(&["get", "pod", "probed", "-o", "json"]);
        let s = &p["status"]["containerStatuses"][0];
        (s["ready"] == true).then(|| s.clone())
    });
    assert_eq!(probed["started"], true, "{probed}");
    // A port the function does not serve never makes it Ready; the event says why.
    eventually(60, || {
        let events = server.kubectl_ok(&[
            "get",
            "events",
            "--field-selector",
            "involvedObject.name=unready",
        ]);
        events
            .contains("the function does not serve port 9999")
            .then_some(())
    });
    let unready = server.kubectl_json(&["get", "pod", "unready", "-o", "json"]);
    let status = &unready["status"]["containerStatuses"][0];
    assert!(status["state"]["running"].is_object(), "{status}");
    assert_eq!(status["ready"], false, "{status}");
    // The liveness GET keeps passing: no restarts.
    let probed = server.kubectl_json(&["get", "pod", "probed", "-o", "json"]);
    assert_eq!(probed["status"]["containerStatuses"][0]["restartCount"], 0);
}
