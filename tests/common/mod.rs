//! Test harness: starts the real `skiff serve` on a free port with a temporary data dir, and
//! drives it with real kubectl and raw HTTPS.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// A running server; killed when dropped.
pub struct Server {
    pub dir: tempfile::TempDir,
    child: Option<Child>,
    pub base: String,
    pub token: String,
    pub ca_pem: Vec<u8>,
}

/// The `skiff` under test: `$SKIFF_BIN` if set (a copy of a build, for worktrees that share a
/// target directory and so overwrite each other's `target/debug/skiff`), else cargo's.
fn binary() -> PathBuf {
    std::env::var_os("SKIFF_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_skiff")))
}

/// Reads the server URL out of a kubeconfig.
fn server_url(kubeconfig: &Path) -> Option<String> {
    let text = std::fs::read_to_string(kubeconfig).ok()?;
    let doc: serde_yaml::Value = serde_yaml::from_str(&text).ok()?;
    doc["clusters"][0]["cluster"]["server"]
        .as_str()
        .map(String::from)
}

impl Server {
    /// Starts a server on a fresh data dir.
    pub fn start() -> Server {
        Self::start_with(tempfile::tempdir().expect("tempdir"), &[])
    }

    /// Starts a server on `dir` (reusing its data), with extra `serve` arguments.
    pub fn start_with(dir: tempfile::TempDir, extra: &[&str]) -> Server {
        Self::start_with_env(dir, extra, &[])
    }

    /// [`Server::start_with`], with extra environment variables for the server process.
    pub fn start_with_env(dir: tempfile::TempDir, extra: &[&str], env: &[(&str, &str)]) -> Server {
        let kubeconfig = dir.path().join("kubeconfig");
        let _ = std::fs::remove_file(&kubeconfig);
        let log = std::fs::File::create(dir.path().join("server.log")).expect("log file");
        let child = Command::new(binary())
            .arg("serve")
            .arg("--data-dir")
            .arg(dir.path())
            .arg("--listen")
            .arg("127.0.0.1:0")
            // Tests run servers side by side: each gateway on a free port.
            .args(if extra.contains(&"--gateway") {
                &[][..]
            } else {
                &["--gateway", "127.0.0.1:0"][..]
            })
            .args(extra)
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start skiff serve");
        let deadline = Instant::now() + Duration::from_secs(60);
        let base = loop {
            if let Some(url) = server_url(&kubeconfig) {
                break url;
            }
            assert!(
                Instant::now() < deadline,
                "server did not write its kubeconfig in time: {}",
                std::fs::read_to_string(dir.path().join("server.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        let token = std::fs::read_to_string(dir.path().join("token"))
            .expect("token")
            .trim()
            .to_string();
        let ca_pem = std::fs::read(dir.path().join("pki/ca.crt")).expect("ca");
        Server {
            dir,
            child: Some(child),
            base,
            token,
            ca_pem,
        }
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).unwrap_or(0)
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The gateway's base URL (`http://127.0.0.1:PORT`).
    pub fn gateway(&self) -> String {
        let addr = std::fs::read_to_string(self.dir.path().join("gateway-address"))
            .expect("the server writes gateway-address");
        format!("http://{}", addr.trim())
    }

    pub fn kubeconfig(&self) -> PathBuf {
        self.dir.path().join("kubeconfig")
    }

    /// Runs kubectl against this server.
    pub fn kubectl(&self, args: &[&str]) -> Output {
        self.kubectl_stdin(args, None)
    }

    /// Runs kubectl with `input` on stdin.
    pub fn kubectl_stdin(&self, args: &[&str], input: Option<&str>) -> Output {
        use std::io::Write;
        let mut child = Command::new(kubectl())
            .args(args)
            .env("KUBECONFIG", self.kubeconfig())
            .env("HOME", self.dir.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run kubectl");
        let mut stdin = child.stdin.take().expect("stdin");
        if let Some(input) = input {
            stdin.write_all(input.as_bytes()).expect("write stdin");
        }
        drop(stdin);
        child.wait_with_output().expect("kubectl output")
    }

    /// Runs kubectl and returns stdout, panicking with stderr on failure.
    pub fn kubectl_ok(&self, args: &[&str]) -> String {
        let out = self.kubectl(args);
        assert!(
            out.status.success(),
            "kubectl {args:?} failed: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs kubectl expecting failure; returns stderr.
    pub fn kubectl_err(&self, args: &[&str]) -> String {
        let out = self.kubectl(args);
        assert!(
            !out.status.success(),
            "kubectl {args:?} unexpectedly succeeded: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    /// Applies a YAML stream with `kubectl apply -f -`, panicking with kubectl's error.
    pub fn apply(&self, yaml: &str) {
        let out = self.kubectl_stdin(&["apply", "-f", "-"], Some(yaml));
        assert!(
            out.status.success(),
            "apply failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Runs kubectl with `-o json` appended and parses the output.
    pub fn kubectl_json(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.extend(["-o", "json"]);
        let text = self.kubectl_ok(&all);
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
    }

    /// An HTTPS client trusting the server's CA.
    pub fn http(&self) -> reqwest::Client {
        let ca = reqwest::Certificate::from_pem(&self.ca_pem).expect("ca pem");
        reqwest::Client::builder()
            .add_root_certificate(ca)
            .build()
            .expect("client")
    }

    /// A request with the admin token.
    pub fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http()
            .request(method, format!("{}{}", self.base, path))
            .bearer_auth(&self.token)
    }

    /// Sends a request and returns (status, JSON body).
    pub async fn call(&self, builder: reqwest::RequestBuilder) -> (u16, Value) {
        let response = builder.send().await.expect("request");
        let status = response.status().as_u16();
        let text = response.text().await.expect("body");
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// Stops with SIGKILL (a crash).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops with SIGTERM and waits; returns whether it exited cleanly.
    pub fn terminate(&mut self) -> bool {
        let Some(mut child) = self.child.take() else {
            return false;
        };
        send_sigterm(child.id());
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return status.success();
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops the server and hands back its data dir.
    pub fn into_dir(mut self) -> tempfile::TempDir {
        self.kill();

        std::mem::replace(&mut self.dir, tempfile::tempdir().expect("tempdir"))
    }
}

fn send_sigterm(pid: u32) {
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(pid.to_string())
        .status();
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A running `kubectl port-forward`; killed when dropped.
pub struct PortForward {
    child: Child,
    /// The local port it listens on (127.0.0.1).
    pub port: u16,
    stderr: std::sync::Arc<std::sync::Mutex<String>>,
}

impl PortForward {
    /// What kubectl wrote to stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Whether kubectl is still running.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for PortForward {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// Starts `kubectl port-forward TARGET :REMOTE` on 127.0.0.1 (extra environment in
    /// `env`) and waits until it listens.
    pub fn port_forward(&self, target: &str, remote: &str, env: &[(&str, &str)]) -> PortForward {
        use std::io::{BufRead, Read};
        let mut child = Command::new(kubectl())
            .args(["port-forward", "--address=127.0.0.1", target])
            .arg(format!(":{remote}"))
            .env("KUBECONFIG", self.kubeconfig())
            .env("HOME", self.dir.path())
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run kubectl port-forward");
        let stderr = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let mut err = child.stderr.take().expect("stderr");
        let sink = stderr.clone();
        std::thread::spawn(move || {
            let mut chunk = [0u8; 4096];
            while let Ok(n) = err.read(&mut chunk) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&chunk[..n]));
            }
        });
        // "Forwarding from 127.0.0.1:PORT -> REMOTE"; later lines are drained in the back.
        let mut lines = std::io::BufReader::new(child.stdout.take().expect("stdout")).lines();
        let first = lines.next().and_then(Result::ok).unwrap_or_default();
        std::thread::spawn(move || for _ in lines {});
        let port = first
            .split_whitespace()
            .nth(2)
            .and_then(|a| a.rsplit(':').next())
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| {
                let _ = child.kill();
                std::thread::sleep(Duration::from_millis(200));
                panic!(
                    "kubectl port-forward {target} did not start: {first:?} {}",
                    stderr.lock().unwrap()
                )
            });
        PortForward {
            child,
            port,
            stderr,
        }
    }
}

/// Sends `request` and returns its body as text, panicking when it cannot.
pub async fn body_of(request: reqwest::RequestBuilder) -> String {
    request
        .send()
        .await
        .expect("the request is answered")
        .text()
        .await
        .expect("the body reads")
}

/// The kubectl to use: `$KUBECTL`, else the one on PATH.
pub fn kubectl() -> String {
    std::env::var("KUBECTL").unwrap_or_else(|_| "kubectl".to_string())
}

/// Polls `f` until it returns Some, or panics after `secs`.
pub fn eventually<T>(secs: u64, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "condition not met within {secs}s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Writes a file into the server's temp dir and returns its path.
pub fn write_file(server: &Server, name: &str, contents: &str) -> PathBuf {
    let path = server.dir.path().join(name);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).expect("mkdir");
    }
    std::fs::write(&path, contents).expect("write");
    path
}

/// Builds the example Wasm guests once per process (`examples/guests/build.sh`) and returns
/// the directory holding the preview 1 modules.
pub fn example_guests() -> &'static PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT.get_or_init(|| {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/guests");
        let status = Command::new("bash")
            .arg(dir.join("build.sh"))
            .stdout(Stdio::null())
            .status()
            .expect("run build.sh");
        assert!(status.success(), "building the example guests failed");
        dir.join("target/wasm32-wasip1/release")
    })
}

/// YAML for a Service `app` in `namespace` (port 80 to the pods' 8080, selecting
/// `app: <app>`) and an Ingress of the same name sending `host`, or every host when `None`
/// (its default backend), to it.
pub fn exposed(namespace: &str, app: &str, host: Option<&str>) -> String {
    let backend = format!("{{service: {{name: {app}, port: {{number: 80}}}}}}");
    let ingress_spec = match host {
        Some(host) => format!(
            "rules:\n  - host: {host}\n    http:\n      paths: [{{path: /, pathType: Prefix, backend: {backend}}}]"
        ),
        None => format!("defaultBackend: {backend}"),
    };
    format!(
        "\n---\napiVersion: v1\nkind: Service\nmetadata: {{name: {app}, namespace: {namespace}}}\n\
         spec:\n  selector: {{app: {app}}}\n  ports: [{{port: 80, targetPort: 8080}}]\n\
         ---\napiVersion: networking.k8s.io/v1\nkind: Ingress\n\
         metadata: {{name: {app}, namespace: {namespace}}}\nspec:\n  {ingress_spec}\n"
    )
}

/// The directory of the example components (`wasm32-wasip2`), built by [`example_guests`].
pub fn example_components() -> PathBuf {
    example_guests()
        .parent()
        .and_then(Path::parent)
        .expect("target dir")
        .join("wasm32-wasip2/release")
}

/// Imports example guests (built by [`example_guests`]) under the given references, as
/// `(guest, reference)` pairs.
pub fn import_guests(server: &Server, guests: &[(&str, &str)]) {
    for (guest, reference) in guests {
        import_image(
            server,
            &example_guests().join(format!("{guest}.wasm")),
            reference,
        );
    }
}

/// Imports `file` into the server's image store as `reference` with `skiff image import`.
pub fn import_image(server: &Server, file: &Path, reference: &str) {
    let out = Command::new(binary())
        .args(["image", "import", "--data-dir"])
        .arg(server.dir.path())
        .arg(file)
        .arg(reference)
        .output()
        .expect("run skiff image import");
    assert!(
        out.status.success(),
        "import failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
