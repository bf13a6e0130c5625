//! The node agent (skiff's kubelet): registers a Node with a Lease heartbeat, watches the pods
//! bound to it, and runs each pod's containers through `skiff-runtime`: Wasm images in-process
//! with wasmtime, container images with runc.
//!
//! It talks to the control plane only through the object service (the same writes, defaulting
//! and validation as any client), so a remote node could run the same code over HTTP.

pub mod config;
pub mod container;
pub mod functions;
mod log_bundle;
pub mod logs;
mod probe;
pub mod status;
mod worker;

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use serde_json::{Value, json};
use skiff_runtime::image::ImageStore;
use skiff_runtime::oci::OciRuntime;
use skiff_runtime::wasm::{RuntimeConfig, WasmRuntime};
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::watch;

use crate::api::error::{ApiError, Reason};
use crate::api::objects::{Objects, WriteOptions, timestamp};
use crate::api::resources::by_plural;
use crate::controllers::events::Recorder;
use crate::store::EventType as StoreEvent;

/// The component name on events and managedFields, as Kubernetes' kubelet uses.
pub const COMPONENT: &str = "kubelet";
/// How often the node's Lease is renewed.
const LEASE_RENEW: Duration = Duration::from_secs(10);
/// How often the Node's conditions are refreshed.
const STATUS_REFRESH: Duration = Duration::from_secs(60);

/// Settings of the embedded node.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// The Node's name (default: the host name).
    pub name: String,
    /// The data dir: images, compiled-code cache, pod directories, logs.
    pub data_dir: PathBuf,
    /// Allocatable CPU in millicores.
    pub cpu_millis: u64,
    /// Allocatable memory in bytes.
    pub memory_bytes: u64,
    /// How many pods the node accepts.
    pub max_pods: u32,
    /// Registries that may be reached over plain HTTP.
    pub insecure_registries: Vec<String>,
    /// First restart delay of a crashing container (Kubernetes: 10 s).
    pub backoff_initial: Duration,
    /// Longest restart delay (Kubernetes: 5 min).
    pub backoff_max: Duration,
    /// Log size limits per container attempt.
    pub log_limits: logs::LogLimits,
    /// `pids.max` of each OCI container (`None`: unlimited), so a fork bomb stays inside.
    pub pids_limit: Option<i64>,
}

impl NodeConfig {
    /// Defaults for this machine: its host name, CPU count and memory.
    pub fn for_host(data_dir: PathBuf) -> NodeConfig {
        let name = std::fs::read_to_string("/etc/hostname")
            .ok()
            .map(|h| h.trim().to_lowercase())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "skiff-node".to_string());
        let cpus = std::thread::available_parallelism()
            .map(|n| n.get() as u64)
            .unwrap_or(1);
        NodeConfig {
            name,
            data_dir,
            cpu_millis: cpus * 1000,
            memory_bytes: total_memory().unwrap_or(4 << 30),
            max_pods: 10_000,
            insecure_registries: Vec::new(),
            backoff_initial: Duration::from_secs(10),
            backoff_max: Duration::from_secs(300),
            log_limits: logs::LogLimits {
                max_file_bytes: 10 << 20,
                max_files: 5,
            },
            pids_limit: Some(4096),
        }
    }
}

/// Kills every container in skiff's runc state and removes their cgroups and every mount
/// under `pods_dir` (root filesystems, network namespaces).
async fn clean_up_containers(oci: &OciRuntime, pods_dir: &std::path::Path) {
    let mut uids: std::collections::BTreeSet<String> = std::fs::read_dir(pods_dir)
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|e| e.file_name().to_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    for id in oci.clean_up_leftovers(&[pods_dir]).await {
        if let Some((uid, _)) = worker::split_container_id(&id) {
            uids.insert(uid.to_string());
        }
    }
    // Every pod's cgroups go, not only those of containers runc still listed: a container
    // whose runc state was lost leaves its (now empty) cgroup behind.
    for uid in uids {
        skiff_runtime::oci::host::remove_cgroup(&worker::pod_cgroup(&uid));
    }
}

fn total_memory() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kb: u64 = meminfo
        .lines()
        .find(|l| l.starts_with("MemTotal:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some(kb * 1024)
}

/// Removes the logs of pods that no longer exist (deleted while the server was down).
fn remove_orphaned_logs(dir: &std::path::Path, known: &HashSet<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(uid) = name.to_str().and_then(logs::pod_uid_of) else {
            continue;
        };
        if !known.contains(uid) {
            let path = entry.path();
            if path.is_dir() {
                let _ = std::fs::remove_dir_all(path);
            } else {
                let _ = std::fs::remove_file(path);
            }
        }
    }
}

/// The status of one of the pod's containers (init containers included).
pub fn container_status<'a>(pod: &'a Value, container: &str) -> Option<&'a Value> {
    ["containerStatuses", "initContainerStatuses"]
        .iter()
        .filter_map(|k| pod["status"][k].as_array())
        .flatten()
        .find(|s| s["name"] == container)
}

/// Errors starting the node.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The Wasm engine could not start.
    #[error("starting the Wasm runtime: {0}")]
    Runtime(#[from] skiff_runtime::wasm::WasmError),
    /// The image store could not be opened.
    #[error("opening the image store: {0}")]
    Images(#[from] skiff_runtime::image::ImageError),
    /// Registering the Node failed.
    #[error("registering the node: {0}")]
    Register(#[from] ApiError),
    /// The data directory could not be prepared.
    #[error("preparing the data directory: {0}")]
    DataDir(#[source] std::io::Error),
}

/// The running node agent.
pub struct NodeAgent {
    objects: Objects,
    config: NodeConfig,
    runtime: WasmRuntime,
    images: ImageStore,
    recorder: Recorder,
    /// runc, for container images; `None` when runc is not installed.
    oci: Option<OciRuntime>,
    /// Set as the server shuts down: workers start nothing more and write no status (the
    /// containers stopped then run again at the next start).
    shutting_down: std::sync::atomic::AtomicBool,
    /// Pod uid → the worker's feed of the pod's latest state.
    workers: Mutex<HashMap<String, watch::Sender<Arc<Value>>>>,
    /// The HTTP functions this node serves.
    functions: Arc<functions::Functions>,
    /// The logs of short attempts (see [`logs::LogBundle`]); opened once the pods are
    /// listed, before any worker runs.
    log_bundle: std::sync::OnceLock<Arc<logs::LogBundle>>,
}

impl NodeAgent {
    /// Starts the runtime, registers the Node and begins running its pods.
    pub async fn start(
        objects: Objects,
        mut config: NodeConfig,
    ) -> Result<Arc<NodeAgent>, NodeError> {
        // Bundles, mounts and runc's state are named by canonical paths (mountinfo lists
        // them so), and nothing under the data dir is for other users of the host: it holds
        // images' setuid binaries and what containers write.
        std::fs::create_dir_all(&config.data_dir).map_err(NodeError::DataDir)?;
        if let Ok(canonical) = std::fs::canonicalize(&config.data_dir) {
            config.data_dir = canonical;
        }
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&config.data_dir, std::fs::Permissions::from_mode(0o700))
                .map_err(NodeError::DataDir)?;
        }
        // Guests get threads of their own at a lower priority, one per core: a node full of
        // spinning guests still answers the API and runs its own loops promptly.
        let mut runtime_config = RuntimeConfig::new(config.data_dir.join("wasm-cache"));
        runtime_config.guest_threads = Some(
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
        );
        let runtime = WasmRuntime::new(runtime_config)?;
        let images = ImageStore::open(&config.data_dir.join("images"))?;
        let recorder = Recorder::new(objects.clone(), COMPONENT, Some(config.name.clone()));
        let oci = OciRuntime::new(config.data_dir.join("runc"));
        let oci = if oci.available().await {
            // Containers and mounts a previous process left are removed before any pod runs
            // (its pods restart, as Wasm guests do after a restart).
            clean_up_containers(&oci, &config.data_dir.join("pods")).await;
            Some(oci)
        } else {
            tracing::info!("runc is not installed: pods with container images will not start");
            None
        };
        let agent = Arc::new(NodeAgent {
            objects,
            config,
            runtime,
            images,
            recorder,
            oci,
            shutting_down: std::sync::atomic::AtomicBool::new(false),
            workers: Mutex::new(HashMap::new()),
            functions: Arc::new(functions::Functions::default()),
            log_bundle: std::sync::OnceLock::new(),
        });
        agent.register().await?;
        tokio::spawn(agent.clone().heartbeat());
        tokio::spawn(agent.clone().watch_pods());
        Ok(agent)
    }

    /// Stops the node's containers and removes their mounts and cgroups, as the server
    /// shuts down (Wasm guests end with the process). Their pods run again at the next start.
    pub async fn shut_down(&self) {
        self.shutting_down
            .store(true, std::sync::atomic::Ordering::SeqCst);
        if let Some(oci) = &self.oci {
            clean_up_containers(oci, &self.pods_dir()).await;
        }
    }

    /// Whether the server is shutting down.
    fn shutting_down(&self) -> bool {
        self.shutting_down.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// The HTTP functions this node serves (the gateway routes to them).
    pub fn functions(&self) -> Arc<functions::Functions> {
        self.functions.clone()
    }

    /// The network namespace of pod `uid`'s containers, when it has one.
    pub fn pod_netns(&self, uid: &str) -> Option<PathBuf> {
        let path = worker::netns_path(self, uid);
        path.exists().then_some(path)
    }

    /// The node's name.
    pub fn name(&self) -> &str {
        &self.config.name
    }

    fn pods_dir(&self) -> PathBuf {
        self.config.data_dir.join("pods")
    }

    /// The bundle of short attempts' logs, once opened.
    pub fn log_bundle(&self) -> Option<Arc<logs::LogBundle>> {
        self.log_bundle.get().cloned()
    }

    fn logs_dir(&self) -> PathBuf {
        self.config.data_dir.join("logs")
    }

    fn node_status(&self) -> Value {
        let now = timestamp(Utc::now());
        let cpu = if self.config.cpu_millis.is_multiple_of(1000) {
            (self.config.cpu_millis / 1000).to_string()
        } else {
            format!("{}m", self.config.cpu_millis)
        };
        let memory = format!("{}Ki", self.config.memory_bytes / 1024);
        let resources =
            json!({"cpu": cpu, "memory": memory, "pods": self.config.max_pods.to_string()});
        let condition = |kind: &str, status: &str, reason: &str, message: &str| json!({"type": kind, "status": status, "reason": reason, "message": message, "lastHeartbeatTime": now, "lastTransitionTime": now});
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .unwrap_or_default()
            .trim()
            .to_string();
        let os_image = std::fs::read_to_string("/etc/os-release")
            .ok()
            .and_then(|t| {
                t.lines().find(|l| l.starts_with("PRETTY_NAME=")).map(|l| {
                    l.trim_start_matches("PRETTY_NAME=")
                        .trim_matches('"')
                        .to_string()
                })
            })
            .unwrap_or_else(|| "Linux".to_string());
        json!({
            "capacity": resources,
            "allocatable": resources,
            "conditions": [
                condition("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
                condition("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
                condition("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
                condition("Ready", "True", "KubeletReady", "skiff node agent is ready to run Wasm pods"),
            ],
            "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}, {"type": "Hostname", "address": self.config.name}],
            "nodeInfo": {
                "machineID": "", "systemUUID": "", "bootID": "",
                "kernelVersion": kernel, "osImage": os_image,
                "containerRuntimeVersion": "wasmtime://48.0.8",
                "kubeletVersion": concat!("v1.32.0-skiff.", env!("CARGO_PKG_VERSION")),
                "kubeProxyVersion": "",
                "operatingSystem": "linux",
                "architecture": if cfg!(target_arch = "x86_64") { "amd64" } else { std::env::consts::ARCH },
            },
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 0}},
        })
    }

    async fn register(&self) -> Result<(), ApiError> {
        let nodes = by_plural("", "v1", "nodes").expect("nodes are served");
        let status = self.node_status();
        match self.objects.get(nodes, "", &self.config.name).await {
            Ok(_) => {}
            Err(e) if e.reason == Reason::NotFound => {
                let node = json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": self.config.name, "labels": {
                    "kubernetes.io/hostname": self.config.name, "kubernetes.io/os": "linux",
                    "kubernetes.io/arch": if cfg!(target_arch = "x86_64") { "amd64" } else { std::env::consts::ARCH },
                    "node.kubernetes.io/instance-type": "skiff"}},
                    "spec": {}, "status": status.clone()});
                match self
                    .objects
                    .create(nodes, "", node, &WriteOptions::controller(COMPONENT))
                    .await
                {
                    Ok(_) => {}
                    Err(e) if e.reason == Reason::AlreadyExists => {}
                    Err(e) => return Err(e),
                }
            }
            Err(e) => return Err(e),
        }
        self.objects
            .modify(
                nodes,
                "",
                &self.config.name,
                Some("status"),
                COMPONENT,
                |node| {
                    node["status"] = status.clone();
                    true
                },
            )
            .await?;
        Ok(())
    }

    async fn renew_lease(&self) -> Result<(), ApiError> {
        let leases = by_plural("coordination.k8s.io", "v1", "leases").expect("leases are served");
        let now = Utc::now().format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string();
        let renewed = self
            .objects
            .modify(
                leases,
                "kube-node-lease",
                &self.config.name,
                None,
                COMPONENT,
                |lease| {
                    lease["spec"]["renewTime"] = json!(now);
                    lease["spec"]["holderIdentity"] = json!(self.config.name);
                    true
                },
            )
            .await;
        match renewed {
            Err(e) if e.reason == Reason::NotFound => {
                let lease = json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                    "metadata": {"name": self.config.name, "namespace": "kube-node-lease"},
                    "spec": {"holderIdentity": self.config.name, "leaseDurationSeconds": 40, "renewTime": now}});
                self.objects
                    .create(
                        leases,
                        "kube-node-lease",
                        lease,
                        &WriteOptions::controller(COMPONENT),
                    )
                    .await
                    .map(|_| ())
            }
            other => other.map(|_| ()),
        }
    }

    async fn heartbeat(self: Arc<Self>) {
        let mut lease = tokio::time::interval(LEASE_RENEW);
        let mut status = tokio::time::interval(STATUS_REFRESH);
        status.tick().await;
        loop {
            tokio::select! {
                _ = lease.tick() => {
                    if let Err(error) = self.renew_lease().await {
                        tracing::warn!(%error, "renewing the node lease failed");
                    }
                }
                _ = status.tick() => {
                    if let Err(error) = self.register().await {
                        tracing::warn!(%error, "refreshing the node status failed");
                    }
                }
            }
        }
    }

    fn is_mine(&self, pod: &Value) -> bool {
        pod.pointer("/spec/nodeName").and_then(Value::as_str) == Some(self.config.name.as_str())
    }

    /// Hands the pod's latest state to its worker, starting one if needed.
    fn dispatch(self: &Arc<Self>, pod: Arc<Value>) {
        let uid = pod
            .pointer("/metadata/uid")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let mut workers = self.workers.lock().expect("workers lock");
        if let Some(feed) = workers.get(&uid)
            && feed.send(pod.clone()).is_ok()
        {
            return;
        }
        let (feed, updates) = watch::channel(pod);
        workers.insert(uid.clone(), feed);
        let agent = self.clone();
        tokio::spawn(async move {
            worker::run(agent.clone(), updates).await;
            agent.workers.lock().expect("workers lock").remove(&uid);
        });
    }

    async fn watch_pods(self: Arc<Self>) {
        let mut events = self.objects.store().subscribe();
        let resync = |agent: &Arc<Self>, page: crate::store::ListPage| {
            for stored in page.items {
                if agent.is_mine(&stored.object) {
                    agent.dispatch(stored.object);
                }
            }
        };
        match self.objects.store().list("pods", None, None, None).await {
            Ok(page) => {
                let known: HashSet<String> = page
                    .items
                    .iter()
                    .filter_map(|p| p.object.pointer("/metadata/uid").and_then(Value::as_str))
                    .map(String::from)
                    .collect();
                // Before any worker runs: a pod created meanwhile is not in `known`.
                let logs_dir = self.logs_dir();
                let bundle = tokio::task::spawn_blocking(move || {
                    remove_orphaned_logs(&logs_dir, &known);
                    logs::LogBundle::open(&logs_dir, |name| {
                        logs::pod_uid_of(name).is_some_and(|uid| known.contains(uid))
                    })
                })
                .await;
                if let Ok(bundle) = bundle {
                    let _ = self.log_bundle.set(Arc::new(bundle));
                }
                resync(&self, page)
            }
            Err(error) => tracing::error!(%error, "node agent could not list pods"),
        }
        loop {
            match events.recv().await {
                Ok(event) if event.key.resource == "pods" => {
                    if event.kind == StoreEvent::Deleted {
                        let uid = event
                            .object
                            .pointer("/metadata/uid")
                            .and_then(Value::as_str)
                            .unwrap_or_default();
                        // Dropping the feed tells the worker the pod is gone.
                        self.workers.lock().expect("workers lock").remove(uid);
                    } else if self.is_mine(&event.object) {
                        self.dispatch(event.object.clone());
                    }
                }
                Ok(_) => {}
                Err(RecvError::Lagged(_)) => {
                    if let Ok(page) = self.objects.store().list("pods", None, None, None).await {
                        resync(&self, page);
                    }
                }
                Err(RecvError::Closed) => return,
            }
        }
    }

    /// The log file of a container attempt (`previous` for the one before the current).
    pub fn log_path(
        &self,
        pod: &Value,
        container: &str,
        previous: bool,
    ) -> Result<PathBuf, ApiError> {
        let meta = &pod["metadata"];
        let name = meta["name"].as_str().unwrap_or_default();
        let status = container_status(pod, container);
        // As the kubelet says it: the waiting reason (ErrImagePull, CreateContainerError, ...).
        let waiting = || {
            let reason = status
                .and_then(|s| s.pointer("/state/waiting/reason"))
                .and_then(Value::as_str)
                .unwrap_or("ContainerCreating");
            ApiError::bad_request(format!(
                "container \"{container}\" in pod \"{name}\" is waiting to start: {reason}"
            ))
        };
        let Some(restarts) = status.map(|s| s["restartCount"].as_u64().unwrap_or(0) as u32) else {
            return Err(waiting());
        };
        let attempt = if previous {
            restarts.checked_sub(1).ok_or_else(|| {
                ApiError::bad_request(format!(
                    "previous terminated container \"{container}\" in pod \"{name}\" not found"
                ))
            })?
        } else {
            restarts
        };
        let path = logs::attempt_path(
            &self.logs_dir(),
            meta["namespace"].as_str().unwrap_or_default(),
            name,
            meta["uid"].as_str().unwrap_or_default(),
            container,
            attempt,
        );
        // The output of a short attempt may be in the bundle rather than in its file.
        if let Some(bundle) = self.log_bundle.get() {
            bundle.materialize(&path);
        }
        // Log files are made at the first output: an attempt that has begun but printed
        // nothing has none yet, and reads as empty.
        let began = status.is_some_and(|s| {
            s["state"].get("running").is_some() || s["state"].get("terminated").is_some()
        });
        if !path.exists() && !previous && !began {
            return Err(waiting());
        }
        Ok(path)
    }
}
