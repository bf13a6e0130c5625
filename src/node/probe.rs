//! Container probes (startup, liveness, readiness) with Kubernetes' timing and thresholds,
//! for both kinds of container: `exec` runs in the container (`runc exec`, or a short-lived
//! instance of the Wasm module with the container's preopens), `httpGet` and `tcpSocket`
//! connect inside the pod's network namespace (containers) or on the host (Wasm guests).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use skiff_runtime::oci::{self, OciRuntime};
use skiff_runtime::wasm::{CancelToken, DiscardSink, Exit, Program, RunSpec, WasmRuntime};

/// One probe's settings, with Kubernetes' defaults.
#[derive(Debug, Clone)]
pub struct Probe {
    pub action: Action,
    pub initial_delay: Duration,
    pub period: Duration,
    pub timeout: Duration,
    pub success_threshold: u32,
    pub failure_threshold: u32,
}

/// What a probe does.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Exec(Vec<String>),
    Http {
        host: Option<String>,
        port: u16,
        path: String,
        headers: Vec<(String, String)>,
        https: bool,
    },
    Tcp {
        host: Option<String>,
        port: u16,
    },
}

fn seconds(probe: &Value, key: &str, default: u64) -> Duration {
    Duration::from_secs(probe[key].as_u64().unwrap_or(default))
}

/// A port by number or by the name of one of the container's ports.
fn port(value: &Value, container: &Value) -> Option<u16> {
    if let Some(n) = value.as_u64() {
        return u16::try_from(n).ok();
    }
    let name = value.as_str()?;
    if let Ok(n) = name.parse() {
        return Some(n);
    }
    container["ports"].as_array()?.iter().find_map(|p| {
        (p["name"] == name)
            .then(|| {
                p["containerPort"]
                    .as_u64()
                    .and_then(|n| u16::try_from(n).ok())
            })
            .flatten()
    })
}

/// Parses `container[key]` (`livenessProbe`, ...); `None` when absent or without a usable
/// action.
pub fn parse(container: &Value, key: &str) -> Option<Probe> {
    let p = container.get(key).filter(|p| p.is_object())?;
    let action = if let Some(cmd) = p["exec"]["command"].as_array() {
        Action::Exec(
            cmd.iter()
                .filter_map(|c| c.as_str().map(String::from))
                .collect(),
        )
    } else if p["httpGet"].is_object() {
        let h = &p["httpGet"];
        Action::Http {
            host: h["host"]
                .as_str()
                .filter(|s| !s.is_empty())
                .map(String::from),
            port: port(&h["port"], container)?,
            path: h["path"].as_str().unwrap_or("/").to_string(),
            headers: h["httpHeaders"]
                .as_array()
                .map(|hs| {
                    hs.iter()
                        .filter_map(|x| {
                            Some((
                                x["name"].as_str()?.to_string(),
                                x["value"].as_str()?.to_string(),
                            ))
                        })
                        .collect()
                })
                .unwrap_or_default(),
            https: h["scheme"] == "HTTPS",
        }
    } else if p["tcpSocket"].is_object() {
        Action::Tcp {
            host: p["tcpSocket"]["host"]
                .as_str()
                .filter(|s| !s.is_empty())
                .map(String::from),
            port: port(&p["tcpSocket"]["port"], container)?,
        }
    } else {
        return None;
    };
    Some(Probe {
        action,
        initial_delay: seconds(p, "initialDelaySeconds", 0),
        period: seconds(p, "periodSeconds", 10).max(Duration::from_secs(1)),
        timeout: seconds(p, "timeoutSeconds", 1).max(Duration::from_secs(1)),
        success_threshold: p["successThreshold"].as_u64().unwrap_or(1).max(1) as u32,
        failure_threshold: p["failureThreshold"].as_u64().unwrap_or(3).max(1) as u32,
    })
}

/// Where a probe runs.
#[derive(Clone)]
pub enum Target {
    /// An OCI container: `runc exec` by id; sockets inside the pod's network namespace.
    Container {
        runtime: OciRuntime,
        id: String,
        netns: PathBuf,
    },
    /// A Wasm guest: exec runs the module again with this spec (args replaced); sockets on
    /// the host.
    Wasm {
        runtime: WasmRuntime,
        program: Arc<Program>,
        base: Box<RunSpec>,
    },
    /// An HTTP function: httpGet goes through its handler; tcpSocket succeeds on a port it
    /// serves; exec is not possible.
    Function(Arc<crate::node::functions::Function>),
}

/// Runs the probe once: `Ok` on success, else why it failed.
pub async fn check(action: &Action, timeout: Duration, target: &Target) -> Result<(), String> {
    match (action, target) {
        (Action::Exec(command), Target::Container { runtime, id, .. }) => {
            match runtime.exec(id, command, timeout).await {
                (Some(0), _) => Ok(()),
                (Some(code), out) => Err(format!(
                    "command {command:?} exited with {code}: {}",
                    out.trim()
                )),
                (None, out) => Err(format!("command {command:?} failed: {}", out.trim())),
            }
        }
        (
            Action::Exec(command),
            Target::Wasm {
                runtime,
                program,
                base,
            },
        ) => {
            let outcome = runtime
                .run(program, wasm_exec_spec(base, command.clone(), timeout))
                .await;
            match outcome.exit {
                Exit::Code(0) => Ok(()),
                Exit::Code(code) => Err(format!("command {command:?} exited with {code}")),
                Exit::DeadlineExceeded => Err(format!(
                    "command {command:?} timed out after {}s",
                    timeout.as_secs()
                )),
                other => Err(format!("command {command:?} failed: {other:?}")),
            }
        }
        (Action::Exec(command), Target::Function(_)) => Err(format!(
            "command {command:?}: exec probes cannot run in an HTTP function; use httpGet"
        )),
        (Action::Http { https: true, .. }, _) => {
            Err("HTTPS probes are not supported by this node; use HTTP".into())
        }
        (
            Action::Http {
                host,
                port,
                path,
                headers,
                ..
            },
            Target::Function(function),
        ) => function_get(function, host.as_deref(), *port, path, headers, timeout).await,
        (Action::Tcp { port, .. }, Target::Function(function)) => {
            if function.serves_port(*port) {
                Ok(())
            } else {
                Err(format!("the function does not serve port {port}"))
            }
        }
        (
            Action::Http {
                host,
                port,
                path,
                headers,
                ..
            },
            target,
        ) => {
            let request = http_request(host.as_deref(), *port, path, headers);
            let addr = address(host.as_deref(), *port)?;
            let netns = netns_of(target);
            blocking(netns, move || http_get(addr, &request, timeout)).await
        }
        (Action::Tcp { host, port }, target) => {
            let addr = address(host.as_deref(), *port)?;
            let netns = netns_of(target);
            blocking(netns, move || {
                TcpStream::connect_timeout(&addr, timeout)
                    .map(drop)
                    .map_err(|e| format!("dial tcp {addr}: {e}"))
            })
            .await
        }
    }
}

fn netns_of(target: &Target) -> Option<PathBuf> {
    match target {
        Target::Container { netns, .. } => Some(netns.clone()),
        Target::Wasm { .. } | Target::Function(_) => None,
    }
}

/// An httpGet probe through a function's handler: success for a status in 200..400.
async fn function_get(
    function: &crate::node::functions::Function,
    host: Option<&str>,
    port: u16,
    path: &str,
    headers: &[(String, String)],
    timeout: Duration,
) -> Result<(), String> {
    if !function.serves_port(port) {
        return Err(format!("the function does not serve port {port}"));
    }
    let path = if path.starts_with('/') {
        path.to_string()
    } else {
        format!("/{path}")
    };
    let mut request = http::Request::get(&path)
        .header("host", format!("{}:{port}", host.unwrap_or("127.0.0.1")))
        .header("user-agent", "kube-probe/1.32");
    for (k, v) in headers {
        request = request.header(k.as_str(), v.as_str());
    }
    let request = request
        .body(bytes::Bytes::new())
        .map_err(|e| format!("Get {path:?}: {e}"))?;
    match tokio::time::timeout(timeout, function.call(request)).await {
        Err(_) => Err(format!(
            "Get {path:?}: no answer within {}s",
            timeout.as_secs_f64()
        )),
        Ok(Err(failure)) => Err(format!("Get {path:?}: {failure}")),
        Ok(Ok(response)) => {
            let status = response.status().as_u16();
            if (200..400).contains(&status) {
                Ok(())
            } else {
                Err(format!("HTTP probe failed with statuscode: {status}"))
            }
        }
    }
}

/// The probe's address: its host (resolved) or the pod's loopback.
fn address(host: Option<&str>, port: u16) -> Result<SocketAddr, String> {
    let host = host.unwrap_or("127.0.0.1");
    (host, port)
        .to_socket_addrs()
        .map_err(|e| format!("resolving {host}: {e}"))?
        .next()
        .ok_or_else(|| format!("{host} has no address"))
}

fn http_request(host: Option<&str>, port: u16, path: &str, headers: &[(String, String)]) -> String {
    let path = if path.starts_with('/') {
        path.to_string()
    } else {
        format!("/{path}")
    };
    let mut request = format!("GET {path} HTTP/1.1\r\n");
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        request.push_str(&format!("Host: {}:{port}\r\n", host.unwrap_or("127.0.0.1")));
    }
    if !headers
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("user-agent"))
    {
        request.push_str("User-Agent: kube-probe/1.32\r\n");
    }
    for (k, v) in headers {
        request.push_str(&format!("{k}: {v}\r\n"));
    }
    request.push_str("Accept: */*\r\nConnection: close\r\n\r\n");
    request
}

/// One HTTP GET: success for a status in 200..400 (as Kubernetes).
fn http_get(addr: SocketAddr, request: &str, timeout: Duration) -> Result<(), String> {
    let mut stream = TcpStream::connect_timeout(&addr, timeout)
        .map_err(|e| format!("Get \"http://{addr}\": dial tcp {addr}: {e}"))?;
    let _ = stream.set_read_timeout(Some(timeout));
    let _ = stream.set_write_timeout(Some(timeout));
    stream
        .write_all(request.as_bytes())
        .map_err(|e| format!("Get \"http://{addr}\": {e}"))?;
    let mut head = Vec::new();
    let mut buf = [0u8; 512];
    while !head.windows(2).any(|w| w == b"\r\n") && head.len() < 4096 {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => head.extend_from_slice(&buf[..n]),
            Err(e) => return Err(format!("Get \"http://{addr}\": {e}")),
        }
    }
    let line = String::from_utf8_lossy(&head);
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("Get \"http://{addr}\": malformed HTTP response"))?;
    if (200..400).contains(&status) {
        Ok(())
    } else {
        Err(format!("HTTP probe failed with statuscode: {status}"))
    }
}

/// Runs blocking socket work off the async threads, inside `netns` when given.
async fn blocking(
    netns: Option<PathBuf>,
    f: impl FnOnce() -> Result<(), String> + Send + 'static,
) -> Result<(), String> {
    tokio::task::spawn_blocking(move || match netns {
        Some(ns) => oci::host::in_netns(&ns, f)
            .unwrap_or_else(|e| Err(format!("entering the pod's network namespace: {e}"))),
        None => f(),
    })
    .await
    .unwrap_or_else(|e| Err(e.to_string()))
}

/// A Wasm exec probe's run: the container's spec with the probe's argv, output discarded,
/// cut off at the timeout.
pub fn wasm_exec_spec(base: &RunSpec, args: Vec<String>, timeout: Duration) -> RunSpec {
    RunSpec {
        args,
        stdout: Arc::new(DiscardSink),
        stderr: Arc::new(DiscardSink),
        deadline: Some(std::time::Instant::now() + timeout),
        cancel: CancelToken::new(),
        ..base.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn probes_parse_with_kubernetes_defaults_and_named_ports() {
        let c = json!({"ports": [{"name": "http", "containerPort": 8080}],
            "livenessProbe": {"httpGet": {"path": "/healthz", "port": "http"}, "periodSeconds": 2},
            "readinessProbe": {"tcpSocket": {"port": 9000}, "failureThreshold": 1},
            "startupProbe": {"exec": {"command": ["cat", "/ready"]}}});
        let l = parse(&c, "livenessProbe").unwrap();
        assert_eq!(
            l.action,
            Action::Http {
                host: None,
                port: 8080,
                path: "/healthz".into(),
                headers: vec![],
                https: false
            }
        );
        assert_eq!(
            (
                l.period,
                l.timeout,
                l.failure_threshold,
                l.success_threshold
            ),
            (Duration::from_secs(2), Duration::from_secs(1), 3, 1)
        );
        assert_eq!(
            parse(&c, "readinessProbe").unwrap().action,
            Action::Tcp {
                host: None,
                port: 9000
            }
        );
        assert_eq!(
            parse(&c, "startupProbe").unwrap().action,
            Action::Exec(vec!["cat".into(), "/ready".into()])
        );
        assert!(parse(&c, "other").is_none());
        assert!(
            parse(
                &json!({"livenessProbe": {"httpGet": {"port": "nope"}}}),
                "livenessProbe"
            )
            .is_none()
        );
    }

    #[test]
    fn http_probes_succeed_on_2xx_and_3xx_only() {
        use std::net::TcpListener;
        for (status, ok) in [(200, true), (302, true), (404, false), (500, false)] {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = listener.local_addr().unwrap();
            let server = std::thread::spawn(move || {
                let (mut s, _) = listener.accept().unwrap();
                let mut buf = [0u8; 1024];
                let n = s.read(&mut buf).unwrap();
                let request = String::from_utf8_lossy(&buf[..n]).into_owned();
                s.write_all(format!("HTTP/1.1 {status} X\r\nContent-Length: 0\r\n\r\n").as_bytes())
                    .unwrap();
                request
            });
            let request = http_request(
                None,
                addr.port(),
                "healthz",
                &[("X-Probe".into(), "1".into())],
            );
            assert_eq!(
                http_get(addr, &request, Duration::from_secs(2)).is_ok(),
                ok,
                "{status}"
            );
            let seen = server.join().unwrap();
            assert!(
                seen.starts_with("GET /healthz HTTP/1.1\r\n") && seen.contains("X-Probe: 1"),
                "{seen}"
            );
        }
    }
}
