//! One pod's life on the node: images, volumes, init containers in order, then the
//! containers under the pod's restart policy, the active deadline, and graceful deletion.
//! Every state change is written to the pod's status.

use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use chrono::Utc;
use serde_json::{Value, json};
use skiff_runtime::image::{ContainerImage, ImageKind, PullOptions};
use skiff_runtime::oci::{self, ContainerConfig, RunRequest};
use skiff_runtime::wasm::{CancelToken, Exit, HttpSpec, OutputSink, Preopen, Program, RunSpec};
use tokio::sync::{Notify, watch};

use super::config::{self, ConfigError, Mount};
use super::container;
use super::functions::{self, Function};
use super::logs::{LogWriter, Stream};
use super::probe;
use super::status::{self, ContainerRecord, State, Termination};
use super::{COMPONENT, NodeAgent};
use crate::api::error::Reason;
use crate::api::objects::{DeleteOptions, timestamp};
use crate::api::resources::{Resource, by_plural};
use crate::controllers::events::EventType;

/// A good run this long resets the crash-loop backoff (Kubernetes: 10 min).
const BACKOFF_RESET: Duration = Duration::from_secs(600);
/// How often a container stuck on configuration or images is retried at most.
const RETRY: Duration = Duration::from_secs(2);

fn pods() -> &'static Resource {
    by_plural("", "v1", "pods").expect("pods are served")
}

fn now() -> String {
    timestamp(Utc::now())
}

/// The pod's state as the node sees it; the status writer turns it into `status`.
struct PodState {
    init: Vec<ContainerRecord>,
    containers: Vec<ContainerRecord>,
    init_done: bool,
    init_failed: bool,
    /// Set when the whole pod failed (DeadlineExceeded...): (reason, message).
    failure: Option<(String, String)>,
    start_time: String,
}

/// Shared between the pod's tasks.
struct Pod {
    agent: Arc<NodeAgent>,
    namespace: String,
    name: String,
    uid: String,
    policy: String,
    state: Mutex<PodState>,
    changed: Notify,
    /// Cancelled when the pod must stop (deleted, deadline).
    stop: CancelToken,
    /// Cancelled when the pod's deletion begins: containers get SIGTERM and are not
    /// restarted; `stop` follows after the grace period.
    terminating: CancelToken,
    /// The pod's network namespace, made once for all its OCI containers.
    netns: tokio::sync::OnceCell<Result<(), String>>,
    /// The pod as the API last showed it (its feed) and as this worker last wrote it: the
    /// newer of the two is the base of the next status write, which then needs no read.
    /// The written copy is held weakly: once the feed has it too (or something newer) it is
    /// not needed, and a finished pod must not keep an old version of itself alive.
    seen: watch::Receiver<Arc<Value>>,
    written: Mutex<Weak<Value>>,
}

impl Pod {
    fn update(&self, f: impl FnOnce(&mut PodState)) {
        f(&mut self.state.lock().expect("pod state"));
        self.changed.notify_one();
    }

    fn set_container(&self, init: bool, index: usize, f: impl FnOnce(&mut ContainerRecord)) {
        self.update(|s| {
            let list = if init { &mut s.init } else { &mut s.containers };
            if let Some(c) = list.get_mut(index) {
                f(c);
            }
        });
    }

    fn event(&self, pod: &Value, kind: EventType, reason: &str, message: &str) {
        self.agent.recorder.record(pod, kind, reason, message);
    }

    /// Writes the current state to the pod's status.
    async fn write_status(&self) -> bool {
        if self.agent.shutting_down() {
            return false;
        }
        let (phase, init_json, containers_json, failure, start_time, init_done, containers) = {
            let s = self.state.lock().expect("pod state");
            let phase = if s.failure.is_some() {
                "Failed"
            } else {
                status::phase(&self.policy, s.init_done, s.init_failed, &s.containers)
            };
            (
                phase,
                status::container_statuses(&s.init, &self.uid),
                status::container_statuses(&s.containers, &self.uid),
                s.failure.clone(),
                s.start_time.clone(),
                s.init_done,
                s.containers.clone(),
            )
        };
        let now = now();
        let base = {
            let seen = self.seen.borrow().clone();
            let written = self.written.lock().expect("written").upgrade();
            match written {
                Some(w) if revision(&w) > revision(&seen) => w,
                _ => seen,
            }
        };
        let result = self
            .agent
            .objects
            .modify_cached(pods(), &base, Some("status"), COMPONENT, |pod| {
                if pod.pointer("/metadata/uid").and_then(Value::as_str) != Some(self.uid.as_str()) {
                    return false;
                }
                let previous = pod["status"]["conditions"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                let mut status = pod["status"].clone();
                status["phase"] = json!(phase);
                status["conditions"] = json!(status::conditions(
                    &previous,
                    phase,
                    init_done,
                    &containers,
                    &now
                ));
                status["hostIP"] = json!("127.0.0.1");
                status["hostIPs"] = json!([{"ip": "127.0.0.1"}]);
                let ip = status::pod_ip(&self.uid);
                status["podIP"] = json!(ip);
                status["podIPs"] = json!([{"ip": ip}]);
                status["startTime"] = json!(start_time);
                if !init_json.is_empty() {
                    status["initContainerStatuses"] = json!(init_json);
                }
                status["containerStatuses"] = json!(containers_json);
                if let Some((reason, message)) = &failure {
                    status["reason"] = json!(reason);
                    status["message"] = json!(message);
                }
                if pod["status"] == status {
                    return false;
                }
                pod["status"] = status;
                true
            })
            .await;
        match result {
            Ok(written) => {
                if let Some(pod) = written {
                    *self.written.lock().expect("written") = Arc::downgrade(&pod);
                }
                true
            }
            Err(e) if e.reason == Reason::NotFound => false,
            Err(error) => {
                tracing::warn!(%error, pod = %self.name, "status update failed");
                true
            }
        }
    }
}

/// An object's resourceVersion as a number (0 when missing).
fn revision(object: &Value) -> i64 {
    object["metadata"]["resourceVersion"]
        .as_str()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// An [`OutputSink`] that writes one stream of an attempt to its CRI log file.
struct LogSink {
    writer: Arc<LogWriter>,
    stream: Stream,
}

impl OutputSink for LogSink {
    fn write(&self, bytes: &[u8]) {
        self.writer.write(self.stream, bytes);
    }
}

/// Records containers found running in the store when the node (re)starts: their guests died
/// with the previous process. With `resume` (a regular container the restart policy will
/// restart), one that was running and ready stays reported so until its new attempt runs
/// (with its restart counted and the loss as its last state): the gap was the server's own
/// downtime, and publishing a not-ready blip would take a serving replica out for nothing.
fn recover(records: &mut [ContainerRecord], stored: Option<&Vec<Value>>, resume: bool) {
    for (record, stored) in records
        .iter_mut()
        .zip(stored.map(Vec::as_slice).unwrap_or_default())
    {
        record.restart_count = stored["restartCount"].as_u64().unwrap_or(0) as u32;
        record.image_id = stored["imageID"].as_str().unwrap_or_default().to_string();
        let finished = |t: &Value| Termination {
            exit_code: t["exitCode"].as_i64().unwrap_or(0) as i32,
            reason: t["reason"].as_str().unwrap_or_default().to_string(),
            message: t["message"].as_str().map(String::from),
            started_at: t["startedAt"].as_str().unwrap_or_default().to_string(),
            finished_at: t["finishedAt"].as_str().unwrap_or_default().to_string(),
        };
        if let Some(t) = stored.pointer("/lastState/terminated") {
            record.last_state = Some(finished(t));
        }
        if let Some(t) = stored.pointer("/state/terminated") {
            record.state = State::Terminated(finished(t));
        } else if let Some(r) = stored.pointer("/state/running") {
            let started_at = r["startedAt"].as_str().unwrap_or_default().to_string();
            let lost = Termination {
                exit_code: 137,
                reason: "ContainerStatusUnknown".into(),
                message: Some("The container could not be located when the node restarted".into()),
                started_at: started_at.clone(),
                finished_at: now(),
            };
            if resume && stored["ready"] == true {
                record.state = State::Running { started_at };
                record.ready = true;
                record.lost = Some(lost);
            } else {
                record.state = State::Terminated(lost);
            }
        }
    }
}

/// Cancels its token when dropped.
struct CancelOnDrop(CancelToken);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

/// Builds the pod's shared state from the object the node first saw and spawns its
/// lifecycle; the returned token is cancelled once the lifecycle has ended.
fn start(agent: Arc<NodeAgent>, updates: &watch::Receiver<Arc<Value>>) -> (Arc<Pod>, CancelToken) {
    let spec_pod = updates.borrow().clone();
    let meta = &spec_pod["metadata"];
    let names = |key: &str| -> Vec<ContainerRecord> {
        spec_pod
            .pointer(&format!("/spec/{key}"))
            .and_then(Value::as_array)
            .map(|cs| {
                cs.iter()
                    .map(|c| {
                        ContainerRecord::new(
                            c["name"].as_str().unwrap_or_default(),
                            c["image"].as_str().unwrap_or_default(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut init = names("initContainers");
    let mut containers = names("containers");
    let policy = spec_pod
        .pointer("/spec/restartPolicy")
        .and_then(Value::as_str)
        .unwrap_or("Always")
        .to_string();
    recover(
        &mut init,
        spec_pod
            .pointer("/status/initContainerStatuses")
            .and_then(Value::as_array),
        false,
    );
    recover(
        &mut containers,
        spec_pod
            .pointer("/status/containerStatuses")
            .and_then(Value::as_array),
        policy != "Never",
    );
    let stored_phase = spec_pod
        .pointer("/status/phase")
        .and_then(Value::as_str)
        .unwrap_or("Pending")
        .to_string();
    let init_done = init
        .iter()
        .all(|c| matches!(&c.state, State::Terminated(t) if t.exit_code == 0));
    let pod = Arc::new(Pod {
        agent,
        namespace: meta["namespace"].as_str().unwrap_or_default().to_string(),
        name: meta["name"].as_str().unwrap_or_default().to_string(),
        uid: meta["uid"].as_str().unwrap_or_default().to_string(),
        policy,
        state: Mutex::new(PodState {
            init_done,
            init,
            containers,
            init_failed: stored_phase == "Failed",
            failure: None,
            start_time: spec_pod
                .pointer("/status/startTime")
                .and_then(Value::as_str)
                .map(String::from)
                .unwrap_or_else(now),
        }),
        changed: Notify::new(),
        stop: CancelToken::new(),
        terminating: CancelToken::new(),
        netns: tokio::sync::OnceCell::new(),
        seen: updates.clone(),
        written: Mutex::new(Weak::new()),
    });
    let finished_already = matches!(stored_phase.as_str(), "Succeeded" | "Failed");

    let done = CancelToken::new();
    {
        let pod = pod.clone();
        let done = done.clone();
        tokio::spawn(async move {
            // Cancelled however the lifecycle ends, a panic included.
            let _done = CancelOnDrop(done);
            if !finished_already {
                run_pod(&pod, &spec_pod).await;
            }
        });
    }
    (pod, done)
}

/// Runs a pod until it is deleted (its feed closes or it carries a deletionTimestamp).
pub(super) async fn run(agent: Arc<NodeAgent>, mut updates: watch::Receiver<Arc<Value>>) {
    // A pod stays on the node as long as its object exists, long after its containers end
    // (a Job's ten thousand finished pods): what waits for its deletion holds only the
    // shared state, not the version of the object it started from nor the finished tasks.
    let (pod, lifecycle_done) = start(agent.clone(), &updates);
    let writer = {
        let pod = pod.clone();
        tokio::spawn(async move {
            loop {
                pod.changed.notified().await;
                if !Box::pin(pod.write_status()).await {
                    return;
                }
            }
        })
    };
    // Wait for deletion (or the pod vanishing), then stop everything.
    let deleting = loop {
        let current = updates.borrow().clone();
        if current
            .pointer("/metadata/deletionTimestamp")
            .is_some_and(|t| !t.is_null())
        {
            break Some(current);
        }
        if updates.changed().await.is_err() {
            break None;
        }
    };
    if let Some(current) = deleting {
        let grace = current
            .pointer("/metadata/deletionGracePeriodSeconds")
            .and_then(Value::as_i64)
            .unwrap_or(30)
            .max(0) as u64;
        pod.terminating.cancel();
        if !lifecycle_done.is_cancelled() {
            pod.event(
                &current,
                EventType::Normal,
                "Killing",
                "Stopping all containers",
            );
            // Containers get SIGTERM now; Wasm guests get no signal: they may finish within
            // the grace period, then are interrupted.
            let _ =
                tokio::time::timeout(Duration::from_secs(grace), lifecycle_done.cancelled()).await;
        }
        pod.stop.cancel();
        lifecycle_done.cancelled().await;
        // What the pod holds on the host goes before the pod object does, so a crash in
        // between leaves nothing that no pod accounts for.
        release_host(&agent, &pod.uid);
        pod.changed.notify_one();
        tokio::task::yield_now().await;
        let _ = Box::pin(pod.write_status()).await;
        let options = DeleteOptions {
            grace_period: Some(0),
            uid: Some(pod.uid.clone()),
            ..DeleteOptions::default()
        };
        if let Err(error) = Box::pin(agent.objects.delete(
            pods(),
            &pod.namespace,
            &pod.name,
            &options,
        ))
        .await
            && error.reason != Reason::NotFound
            && error.reason != Reason::Conflict
        {
            tracing::warn!(%error, pod = %pod.name, "finishing the pod's deletion failed");
        }
    } else {
        pod.stop.cancel();
        lifecycle_done.cancelled().await;
    }
    writer.abort();
    // The pod is gone: its volumes and logs go with it.
    release_host(&agent, &pod.uid);
    let _ = std::fs::remove_dir_all(agent.pods_dir().join(&pod.uid));
    let attempts: Vec<(String, u32)> = {
        let s = pod.state.lock().expect("pod state");
        s.init
            .iter()
            .chain(&s.containers)
            .map(|c| (c.name.clone(), c.restart_count))
            .collect()
    };
    let bundle = agent.log_bundle();
    for (container, restarts) in attempts {
        for restart in 0..=restarts {
            let path = super::logs::attempt_path(
                &agent.logs_dir(),
                &pod.namespace,
                &pod.name,
                &pod.uid,
                &container,
                restart,
            );
            super::logs::remove_attempt(&path);
            if let Some(bundle) = &bundle {
                bundle.remove(&path);
            }
        }
    }
}

/// What a container runs.
enum Workload {
    /// A Wasm module or component, compiled.
    Wasm(Arc<Program>),
    /// An OCI container image, unpacked.
    Container(Arc<ContainerImage>),
}

/// A normalized reference without its tag or digest: `host:port/name`.
fn repository_of(reference: &str) -> &str {
    let without_digest = reference.split('@').next().unwrap_or(reference);
    let last_slash = without_digest.rfind('/').map_or(0, |i| i + 1);
    match without_digest[last_slash..].rfind(':') {
        Some(colon) => &without_digest[..last_slash + colon],
        None => without_digest,
    }
}

/// runc's id for a pod's container: `<pod uid>-<container name>`.
fn container_id(uid: &str, name: &str) -> String {
    format!("{uid}-{name}")
}

/// The pod uid and container name of a runc id made by [`container_id`].
pub(super) fn split_container_id(id: &str) -> Option<(&str, &str)> {
    let (uid, rest) = id.split_at_checked(36)?;
    Some((uid, rest.strip_prefix('-')?))
}

/// The pod's cgroup (its containers' are below it).
pub(super) fn pod_cgroup(uid: &str) -> String {
    format!("/skiff/{uid}")
}

/// Removes the pod's network namespace and cgroup (idempotent).
fn release_host(agent: &NodeAgent, uid: &str) {
    oci::host::remove_netns(&netns_path(agent, uid));
    oci::host::remove_cgroup(&pod_cgroup(uid));
}

/// The file the pod's network namespace is mounted on.
pub(super) fn netns_path(agent: &NodeAgent, uid: &str) -> std::path::PathBuf {
    agent.pods_dir().join(uid).join("netns")
}

/// Resolves, pulls if needed and loads one container's program or image.
async fn program_for(
    pod: &Pod,
    spec: &Value,
    container: &Value,
    init: bool,
    index: usize,
) -> Option<Workload> {
    let agent = &pod.agent;
    let image = container["image"].as_str().unwrap_or_default();
    let policy = container["imagePullPolicy"]
        .as_str()
        .unwrap_or("IfNotPresent");
    let mut failures = 0u32;
    loop {
        if pod.stop.is_cancelled() {
            return None;
        }
        let local = agent.images.resolve(image).ok().flatten();
        let record = match (policy, local) {
            ("Never", Some(r)) | ("IfNotPresent", Some(r)) => Ok(r),
            ("Never", None) => Err((
                "ErrImageNeverPull".to_string(),
                format!("Container image \"{image}\" is not present with pull policy of Never"),
            )),
            (_, local) => {
                pod.event(
                    spec,
                    EventType::Normal,
                    "Pulling",
                    &format!("Pulling image \"{image}\""),
                );
                let started = Instant::now();
                let options = PullOptions {
                    insecure_registries: agent.config.insecure_registries.clone(),
                    auth: container::pull_auth(&agent.objects, spec, image).await,
                };
                match agent.images.pull(image, &options).await {
                    Ok(r) => {
                        pod.event(
                            spec,
                            EventType::Normal,
                            "Pulled",
                            &format!(
                                "Successfully pulled image \"{image}\" in {:.3}s",
                                started.elapsed().as_secs_f64()
                            ),
                        );
                        Ok(r)
                    }
                    // An image imported locally stays usable when no registry has it.
                    Err(_) if local.is_some() => Ok(local.expect("checked")),
                    Err(e) => Err(("ErrImagePull".to_string(), e.to_string())),
                }
            }
        };
        let record = match record {
            Ok(r) => r,
            Err((reason, message)) => {
                failures += 1;
                pod.event(
                    spec,
                    EventType::Warning,
                    "Failed",
                    &format!("Failed to pull image \"{image}\": {message}"),
                );
                pod.set_container(init, index, |c| {
                    c.state = State::Waiting {
                        reason: reason.clone(),
                        message: Some(message.clone()),
                    }
                });
                let delay = status::backoff(
                    failures,
                    agent.config.backoff_initial,
                    agent.config.backoff_max,
                );
                if reason == "ErrImagePull" {
                    tokio::select! { _ = tokio::time::sleep(RETRY.min(delay)) => {}, _ = pod.stop.cancelled() => return None }
                    pod.set_container(init, index, |c| {
                        c.state = State::Waiting {
                            reason: "ImagePullBackOff".into(),
                            message: Some(format!("Back-off pulling image \"{image}\": {message}")),
                        }
                    });
                }
                tokio::select! { _ = tokio::time::sleep(delay) => {}, _ = pod.stop.cancelled() => return None }
                continue;
            }
        };
        let reference = record.reference.clone();
        let oci = record.kind == ImageKind::Container;
        pod.set_container(init, index, |c| {
            c.image_id = format!("{}@{}", repository_of(&reference), record.digest);
            c.oci = oci;
        });
        let loaded = if record.kind == ImageKind::Container {
            let images = agent.images.clone();
            if agent.oci.is_none() {
                Err(format!(
                    "image \"{image}\" is an OCI container image and runc is not installed on this node"
                ))
            } else {
                match tokio::task::spawn_blocking(move || images.container(&record)).await {
                    Ok(Ok(unpacked)) => Ok(Workload::Container(Arc::new(unpacked))),
                    Ok(Err(e)) => Err(e.to_string()),
                    Err(e) => Err(format!("unpacking the image: {e}")),
                }
            }
        } else {
            let digest = record.wasm_digest.as_ref().unwrap_or(&record.digest);
            match (
                agent.runtime.loaded(digest),
                agent.images.wasm_path(&record),
            ) {
                // Most starts: the module is compiled already, and its bytes are not needed.
                (Some(program), _) => Ok(Workload::Wasm(program)),
                (None, Some(path)) => match tokio::fs::read(&path).await {
                    Ok(bytes) => agent
                        .runtime
                        .load(digest, &bytes)
                        .map(Workload::Wasm)
                        .map_err(|e| e.to_string()),
                    Err(e) => Err(format!("reading {}: {e}", path.display())),
                },
                (None, None) => Err(format!("image \"{image}\" has no Wasm layer")),
            }
        };
        match loaded {
            Ok(program) => return Some(program),
            Err(message) => {
                failures += 1;
                pod.set_container(init, index, |c| {
                    c.state = State::Waiting {
                        reason: "CreateContainerError".into(),
                        message: Some(message.clone()),
                    }
                });
                pod.event(
                    spec,
                    EventType::Warning,
                    "Failed",
                    &format!("Error: {message}"),
                );
                let delay = status::backoff(
                    failures,
                    agent.config.backoff_initial,
                    agent.config.backoff_max,
                );
                tokio::select! { _ = tokio::time::sleep(delay) => {}, _ = pod.stop.cancelled() => return None }
            }
        }
    }
}

fn quantity(container: &Value, path: &str) -> Option<i128> {
    container
        .pointer(path)
        .and_then(Value::as_str)
        .and_then(crate::api::validation::parse_quantity)
}

/// One container of the pod, ready to run.
struct Slot {
    /// The container's spec.
    container: Value,
    /// What it runs.
    program: Workload,
    /// Its volume mounts.
    mounts: Vec<Mount>,
    /// Whether it is an init container.
    init: bool,
    /// Its index in `initContainers` or `containers`.
    index: usize,
    /// The pod's active deadline.
    deadline: Option<Instant>,
}

/// Marks the pod failed for exceeding `activeDeadlineSeconds` (once, whoever notices first).
async fn deadline_exceeded(pod: &Pod, spec: &Value) {
    let message = "Pod was active on the node longer than the specified deadline";
    let first = {
        let mut state = pod.state.lock().expect("pod state");
        let first = state.failure.is_none();
        state
            .failure
            .get_or_insert_with(|| ("DeadlineExceeded".into(), message.into()));
        first
    };
    pod.changed.notify_one();
    if first {
        pod.event(spec, EventType::Normal, "DeadlineExceeded", message);
    }
}

/// Runs one attempt of a container; returns its termination.
async fn attempt(pod: &Pod, spec: &Value, slot: &Slot) -> Termination {
    let Slot {
        container,
        program,
        mounts,
        init,
        index,
        deadline,
        ..
    } = slot;
    let (init, index, deadline) = (*init, *index, *deadline);
    let agent = &pod.agent;
    let name = container["name"].as_str().unwrap_or_default();
    let restart = {
        let s = pod.state.lock().expect("pod state");
        let list = if init { &s.init } else { &s.containers };
        list.get(index).map(|c| c.restart_count).unwrap_or(0)
    };
    let started_at = now();
    let fail = |reason: &str, message: String| not_started(reason, message, &started_at);
    let env = match config::environment(&agent.objects, spec, container).await {
        Ok(env) => env,
        Err(e) => return fail("CreateContainerConfigError", e.to_string()),
    };
    if let Some(message) = mounts.iter().find_map(|m| m.check_beneath().err()) {
        return fail("CreateContainerConfigError", message);
    }
    let path = super::logs::attempt_path(
        &agent.logs_dir(),
        &pod.namespace,
        &pod.name,
        &pod.uid,
        name,
        restart,
    );
    let bundle = agent.log_bundle();
    if let Some(bundle) = &bundle {
        // An attempt run again after a restart appends to what it wrote before.
        bundle.materialize(&path);
    }
    let writer = match LogWriter::create(&path, agent.config.log_limits) {
        Ok(w) => Arc::new(match bundle {
            Some(bundle) => w.with_bundle(bundle),
            None => w,
        }),
        Err(e) => return fail("RunContainerError", format!("creating the log file: {e}")),
    };
    let program = match program {
        Workload::Wasm(program) => program,
        Workload::Container(image) => {
            return run_container(pod, spec, slot, image, writer, env, started_at).await;
        }
    };
    let mut args: Vec<String> = Vec::new();
    let command: Vec<String> = container["command"]
        .as_array()
        .map(|c| {
            c.iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    if command.is_empty() {
        args.push(name.to_string());
    }
    args.extend(command);
    args.extend(
        container["args"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str())
                    .map(|s| config::expand(s, &env))
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default(),
    );
    let mut env = env;
    if !env.iter().any(|(k, _)| k == "HOSTNAME") {
        env.push(("HOSTNAME".into(), pod.name.clone()));
    }
    let cancel = CancelToken::new();
    let (stdout, stderr) = log_sinks(&writer);
    let run_spec = RunSpec {
        args,
        env,
        working_dir: container["workingDir"].as_str().map(String::from),
        preopens: mounts
            .iter()
            .map(|m| Preopen {
                host: m.host.clone(),
                guest: m.guest.clone(),
                read_only: m.read_only,
            })
            .collect(),
        stdout,
        stderr,
        memory_limit: quantity(container, "/resources/limits/memory").map(|m| (m / 1000) as u64),
        cpu_millis: quantity(container, "/resources/limits/cpu").map(|c| c.max(1) as u64),
        deadline,
        cancel: cancel.clone(),
    };
    if program.serves_http() {
        return serve_function(pod, spec, slot, program, run_spec, writer, started_at).await;
    }
    pod.set_container(init, index, |c| {
        // A container resumed after a node restart keeps the readiness it was shown with.
        let resumed = matches!(c.state, State::Running { .. }) && c.ready;
        c.state = State::Running {
            started_at: started_at.clone(),
        };
        c.ready = resumed;
    });
    let stop = pod.stop.clone();
    let restart = cancel.clone();
    let forward = tokio::spawn(async move {
        stop.cancelled().await;
        cancel.cancel();
    });
    let target = probe::Target::Wasm {
        runtime: agent.runtime.clone(),
        program: program.clone(),
        base: Box::new(run_spec.clone()),
    };
    let run = agent.runtime.run(program, run_spec);
    tokio::pin!(run);
    let outcome = tokio::select! {
        biased;
        outcome = &mut run => outcome,
        () = probe_attempt(pod, spec, container, init, index, target, restart) => run.await,
    };
    forward.abort();
    writer.close();
    termination(outcome.exit, started_at)
}

/// Serves an HTTP function until its pod stops or a probe kills it: the container is Running
/// (and, with no readiness probe, Ready) once its program is registered with the node's
/// functions, each request getting a fresh sandbox with the container's limits.
async fn serve_function(
    pod: &Pod,
    spec: &Value,
    slot: &Slot,
    program: &Arc<Program>,
    run_spec: RunSpec,
    writer: Arc<LogWriter>,
    started_at: String,
) -> Termination {
    let container = &slot.container;
    let (init, index) = (slot.init, slot.index);
    let name = container["name"].as_str().unwrap_or_default();
    let fail = |reason: &str, message: String| not_started(reason, message, &started_at);
    if init {
        return fail(
            "StartError",
            "an init container cannot be an HTTP function: it serves and never completes".into(),
        );
    }
    let settings = match functions::Settings::from_annotations(&spec["metadata"]["annotations"]) {
        Ok(settings) => settings,
        Err(message) => return fail("CreateContainerConfigError", message),
    };
    let ports: Vec<u16> = container["ports"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p["containerPort"].as_u64())
        .filter_map(|p| u16::try_from(p).ok())
        .collect();
    let agent = &pod.agent;
    let cpu_budget = run_spec.cpu_millis.map(|m| agent.runtime.cpu_budget(m));
    let in_flight = run_spec.cancel.clone();
    let function = Arc::new(Function::new(
        &pod.namespace,
        &pod.uid,
        name,
        spec["metadata"]["labels"].clone(),
        ports,
        agent.runtime.clone(),
        program.clone(),
        HttpSpec {
            run: run_spec,
            timeout: settings.timeout,
            cpu_budget,
            egress: Arc::new(settings.egress),
            on_finish: None,
        },
        settings.max_concurrency,
        agent.functions.usage.clone(),
    ));
    pod.set_container(init, index, |c| {
        c.state = State::Running {
            started_at: started_at.clone(),
        };
        c.ready = false;
    });
    agent.functions.register(function.clone());
    let restart = CancelToken::new();
    let target = probe::Target::Function(function.clone());
    let killed_by_probe = async {
        probe_attempt(pod, spec, container, init, index, target, restart.clone()).await;
        restart.cancelled().await;
    };
    // Once the pod is terminating the endpoints drop it; requests already routed finish.
    let drained = async {
        pod.terminating.cancelled().await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        while function.in_flight() > 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    let exit = tokio::select! {
        () = pod.stop.cancelled() => Exit::Killed,
        () = drained => Exit::Code(0),
        () = killed_by_probe => Exit::Killed,
    };
    agent.functions.unregister(&pod.uid, name);
    // Requests still running when the pod is stopped (its grace period over) or restarted
    // end now: their callers get 503.
    in_flight.cancel();
    writer.close();
    termination(exit, started_at)
}

/// An attempt that could not start: Kubernetes' exit code 128 with the reason.
fn not_started(reason: &str, message: String, started_at: &str) -> Termination {
    Termination {
        exit_code: 128,
        reason: reason.into(),
        message: Some(message),
        started_at: started_at.to_string(),
        finished_at: now(),
    }
}

/// How an attempt that ran ended, in Kubernetes' terms.
fn termination(exit: Exit, started_at: String) -> Termination {
    let (exit_code, reason, message) = match exit {
        Exit::Code(0) => (0, "Completed", None),
        Exit::Code(code) => (code, "Error", None),
        Exit::OomKilled => (137, "OOMKilled", None),
        Exit::Trap { message } => (1, "Error", Some(message)),
        Exit::DeadlineExceeded => (137, "DeadlineExceeded", None),
        Exit::Killed => (137, "Error", None),
        Exit::StartFailed { reason } => (128, "StartError", Some(reason)),
        Exit::CreateFailed { reason } => (128, "CreateContainerError", Some(reason)),
    };
    Termination {
        exit_code,
        reason: reason.into(),
        message,
        started_at,
        finished_at: now(),
    }
}

/// The container's stdout and stderr sinks into its log file.
fn log_sinks(writer: &Arc<LogWriter>) -> (Arc<LogSink>, Arc<LogSink>) {
    let sink = |stream| {
        Arc::new(LogSink {
            writer: writer.clone(),
            stream,
        })
    };
    (sink(Stream::Stdout), sink(Stream::Stderr))
}

/// Runs one attempt of an OCI container with runc.
async fn run_container(
    pod: &Pod,
    spec: &Value,
    slot: &Slot,
    image: &ContainerImage,
    writer: Arc<LogWriter>,
    mut env: Vec<(String, String)>,
    started_at: String,
) -> Termination {
    let agent = &pod.agent;
    let container = &slot.container;
    let (init, index) = (slot.init, slot.index);
    let name = container["name"].as_str().unwrap_or_default();
    let fail = |reason: &str, message: String| not_started(reason, message, &started_at);
    let Some(runtime) = agent.oci.as_ref() else {
        return fail(
            "CreateContainerError",
            "runc is not installed on this node".into(),
        );
    };
    let pod_dir = agent.pods_dir().join(&pod.uid);
    let netns = netns_path(agent, &pod.uid);
    let hostname = spec["spec"]["hostname"]
        .as_str()
        .unwrap_or(&pod.name)
        .to_string();
    let made = pod
        .netns
        .get_or_init(|| {
            let netns = netns.clone();
            async move {
                tokio::task::spawn_blocking(move || {
                    oci::host::create_netns(&netns)
                        .map_err(|e| format!("creating the pod's network namespace: {e}"))
                })
                .await
                .unwrap_or_else(|e| Err(e.to_string()))
            }
        })
        .await
        .clone();
    let prepared = match made {
        Err(message) => Err(message),
        Ok(()) => {
            let (etc, hostname) = (pod_dir.join("etc"), hostname.clone());
            tokio::task::spawn_blocking(move || {
                container::pod_files(&etc, &hostname)
                    .map_err(|e| format!("writing the pod's /etc files: {e}"))
            })
            .await
            .unwrap_or_else(|e| Err(e.to_string()))
        }
    };
    tracing::debug!(pod = %pod.name, container = name, "network namespace and /etc files ready");
    let mut mounts = match prepared {
        Ok(m) => m,
        Err(message) => return fail("CreateContainerError", message),
    };
    mounts.extend(slot.mounts.iter().map(|m| oci::BindMount {
        host: m.host.clone(),
        guest: m.guest.clone(),
        read_only: m.read_only,
    }));
    if !env.iter().any(|(k, _)| k == "HOSTNAME") {
        env.push(("HOSTNAME".into(), hostname.clone()));
    }
    let args = container::process_args(container, &image.config, &env);
    if args.is_empty() {
        return fail(
            "CreateContainerError",
            "no command specified: the image has no Entrypoint or Cmd and the container no command"
                .into(),
        );
    }
    let (uid, gid) = container::user(spec, container, &image.config, &image.layers);
    let non_root = container["securityContext"]["runAsNonRoot"]
        .as_bool()
        .or_else(|| spec["spec"]["securityContext"]["runAsNonRoot"].as_bool())
        .unwrap_or(false);
    if non_root && uid == 0 {
        return fail(
            "CreateContainerConfigError",
            format!(
                "container has runAsNonRoot and image will run as root (pod: \"{}_{}({})\", container: {name})",
                pod.name, pod.namespace, pod.uid
            ),
        );
    }
    let names = |key: &str| -> Vec<String> {
        container["securityContext"]["capabilities"][key]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    };
    let cwd = container["workingDir"]
        .as_str()
        .filter(|w| !w.is_empty())
        .unwrap_or(&image.config.working_dir)
        .to_string();
    let config = ContainerConfig {
        read_only_root: container["securityContext"]["readOnlyRootFilesystem"] == true,
        args,
        env: container::merge_env(&image.config.env, &env),
        cwd,
        uid,
        gid,
        hostname,
        mounts,
        netns: Some(netns.clone()),
        cgroups_path: format!("{}/{name}", pod_cgroup(&pod.uid)),
        limits: container::limits(
            container,
            agent.config.pids_limit,
            oci::host::swap_accounted(),
        ),
        cap_add: names("add"),
        cap_drop: names("drop"),
        ..Default::default()
    };
    let grace = spec["spec"]["terminationGracePeriodSeconds"]
        .as_u64()
        .unwrap_or(30);
    // Stopped with SIGTERM when the pod is deleted or a probe says it must restart.
    let terminate = CancelToken::new();
    let forward = {
        let (terminating, terminate) = (pod.terminating.clone(), terminate.clone());
        tokio::spawn(async move {
            terminating.cancelled().await;
            terminate.cancel();
        })
    };
    let id = container_id(&pod.uid, name);
    let (started_tx, started_rx) = tokio::sync::oneshot::channel();
    let target = probe::Target::Container {
        runtime: runtime.clone(),
        id: id.clone(),
        netns: netns.clone(),
    };
    let (stdout, stderr) = log_sinks(&writer);
    let request = RunRequest {
        id,
        bundle: pod_dir.join("containers").join(name),
        layers: image.layers.clone(),
        config,
        stdout,
        stderr,
        terminate: terminate.clone(),
        kill: pod.stop.clone(),
        grace: Duration::from_secs(grace),
        deadline: slot.deadline.map(Into::into),
        started: Some(started_tx),
    };
    // Running once runc has made the process; probes begin then.
    let began: Mutex<Option<String>> = Mutex::new(None);
    let running = async {
        if started_rx.await.is_err() {
            return std::future::pending().await;
        }
        let at = now();
        *began.lock().expect("start time") = Some(at.clone());
        pod.set_container(init, index, |c| {
            let resumed = matches!(c.state, State::Running { .. }) && c.ready;
            c.state = State::Running { started_at: at };
            c.ready = resumed;
        });
        probe_attempt(pod, spec, container, init, index, target, terminate).await
    };
    let run = runtime.run(request);
    tokio::pin!(run);
    let exit = tokio::select! {
        biased;
        exit = &mut run => exit,
        () = running => run.await,
    };
    forward.abort();
    writer.close();
    let started_at = began
        .into_inner()
        .expect("start time")
        .unwrap_or(started_at);
    termination(exit, started_at)
}

/// Probes one running attempt: the startup probe until it succeeds, then liveness and
/// readiness side by side. Without a readiness probe the container is ready once it has run
/// for [`status::READY_AFTER`] (and started). Returns only when a failed startup or liveness
/// probe has cancelled `restart` (the attempt then ends and the restart policy applies).
async fn probe_attempt(
    pod: &Pod,
    spec: &Value,
    container: &Value,
    init: bool,
    index: usize,
    target: probe::Target,
    restart: CancelToken,
) {
    let name = container["name"].as_str().unwrap_or_default();
    let (startup, liveness, readiness) = if init {
        (None, None, None)
    } else {
        (
            probe::parse(container, "startupProbe"),
            probe::parse(container, "livenessProbe"),
            probe::parse(container, "readinessProbe"),
        )
    };
    let kill = |kind: &str, message: String| {
        pod.event(
            spec,
            EventType::Warning,
            "Unhealthy",
            &format!("{kind} probe failed: {message}"),
        );
        pod.event(
            spec,
            EventType::Normal,
            "Killing",
            &format!(
                "Container {name} failed {} probe{}",
                kind.to_lowercase(),
                if pod.policy == "Never" {
                    ""
                } else {
                    ", will be restarted"
                }
            ),
        );
        pod.set_container(init, index, |c| c.probe_killed = true);
        restart.cancel();
    };
    if let Some(p) = &startup {
        pod.set_container(init, index, |c| c.startup_pending = true);
        tokio::time::sleep(p.initial_delay).await;
        let mut failures = 0;
        loop {
            match probe::check(&p.action, p.timeout, &target).await {
                Ok(()) => break,
                Err(message) => {
                    failures += 1;
                    if failures >= p.failure_threshold {
                        kill("Startup", message);
                        return;
                    }
                }
            }
            tokio::time::sleep(p.period).await;
        }
        pod.set_container(init, index, |c| c.startup_pending = false);
    }
    let live = async {
        let Some(p) = &liveness else {
            return std::future::pending().await;
        };
        tokio::time::sleep(p.initial_delay).await;
        let mut failures = 0;
        loop {
            match probe::check(&p.action, p.timeout, &target).await {
                Ok(()) => failures = 0,
                Err(message) => {
                    failures += 1;
                    if failures >= p.failure_threshold {
                        kill("Liveness", message);
                        return;
                    }
                    pod.event(
                        spec,
                        EventType::Warning,
                        "Unhealthy",
                        &format!("Liveness probe failed: {message}"),
                    );
                }
            }
            tokio::time::sleep(p.period).await;
        }
    };
    let ready = async {
        let Some(p) = &readiness else {
            tokio::time::sleep(status::READY_AFTER).await;
            pod.set_container(init, index, |c| c.ready = true);
            return std::future::pending().await;
        };
        tokio::time::sleep(p.initial_delay).await;
        let (mut successes, mut failures) = (0, 0);
        loop {
            match probe::check(&p.action, p.timeout, &target).await {
                Ok(()) => {
                    (successes, failures) = (successes + 1, 0);
                    if successes >= p.success_threshold {
                        pod.set_container(init, index, |c| c.ready = true);
                    }
                }
                Err(message) => {
                    (successes, failures) = (0, failures + 1);
                    pod.event(
                        spec,
                        EventType::Warning,
                        "Unhealthy",
                        &format!("Readiness probe failed: {message}"),
                    );
                    if failures >= p.failure_threshold {
                        pod.set_container(init, index, |c| c.ready = false);
                    }
                }
            }
            tokio::time::sleep(p.period).await;
        }
    };
    tokio::select! {
        () = live => {}
        () = ready => {}
    }
}

/// Runs a container under the restart policy until it is done for good or the pod stops.
/// Returns the final termination.
async fn container_loop(pod: Arc<Pod>, spec: Arc<Value>, slot: Slot) -> Option<Termination> {
    let (init, index) = (slot.init, slot.index);
    let container = &slot.container;
    let agent = &pod.agent;
    let name = container["name"].as_str().unwrap_or_default().to_string();
    let mut failures = 0u32;
    loop {
        if pod.stop.is_cancelled() || pod.terminating.is_cancelled() || agent.shutting_down() {
            return None;
        }
        let began = Instant::now();
        if failures == 0 {
            pod.event(
                &spec,
                EventType::Normal,
                "Created",
                &format!("Created container {name}"),
            );
        }
        pod.event(
            &spec,
            EventType::Normal,
            "Started",
            &format!("Started container {name}"),
        );
        let termination = attempt(&pod, &spec, &slot).await;
        if agent.shutting_down() {
            // Stopped by the shutdown, not by itself: recorded as lost at the next start.
            return None;
        }
        // A container that could not be created never ran: it waits, and is tried again
        // after a backoff, as the kubelet does (no restart is counted).
        if matches!(
            termination.reason.as_str(),
            "CreateContainerError" | "CreateContainerConfigError"
        ) && !pod.stop.is_cancelled()
            && !pod.terminating.is_cancelled()
        {
            let message = termination.message.clone().unwrap_or_default();
            pod.set_container(init, index, |c| {
                c.state = State::Waiting {
                    reason: termination.reason.clone(),
                    message: Some(message.clone()),
                }
            });
            pod.event(
                &spec,
                EventType::Warning,
                "Failed",
                &format!("Error: {message}"),
            );
            failures += 1;
            let delay = status::backoff(
                failures,
                agent.config.backoff_initial,
                agent.config.backoff_max,
            );
            tokio::select! {
                _ = tokio::time::sleep(delay) => continue,
                _ = pod.stop.cancelled() => return None,
                _ = pod.terminating.cancelled() => return None,
            }
        }
        if termination.reason == "DeadlineExceeded" {
            deadline_exceeded(&pod, &spec).await;
        }
        if termination.reason == "OOMKilled" {
            pod.event(
                &spec,
                EventType::Warning,
                "OOMKilled",
                &format!("Container {name} exceeded its memory limit"),
            );
        }
        let mut probe_killed = false;
        pod.set_container(init, index, |c| {
            c.state = State::Terminated(termination.clone());
            probe_killed = std::mem::take(&mut c.probe_killed);
        });
        // Init containers restart on failure unless the policy is Never.
        let policy = if init && pod.policy == "Always" {
            "OnFailure"
        } else {
            pod.policy.as_str()
        };
        let restarts = status::will_restart(policy, termination.exit_code)
            || (probe_killed && policy != "Never");
        if pod.stop.is_cancelled()
            || pod.terminating.is_cancelled()
            || !restarts
            || termination.reason == "DeadlineExceeded"
        {
            return Some(termination);
        }
        failures = if began.elapsed() >= BACKOFF_RESET {
            1
        } else {
            failures + 1
        };
        let delay = status::backoff(
            failures,
            agent.config.backoff_initial,
            agent.config.backoff_max,
        );
        let message = format!(
            "back-off {}s restarting failed container={name} pod={}_{}({})",
            delay.as_secs(),
            pod.name,
            pod.namespace,
            pod.uid
        );
        pod.set_container(init, index, |c| {
            c.last_state = Some(termination.clone());
            c.state = State::Waiting {
                reason: "CrashLoopBackOff".into(),
                message: Some(message.clone()),
            };
        });
        pod.event(
            &spec,
            EventType::Warning,
            "BackOff",
            &format!(
                "Back-off restarting failed container {name} in pod {}_{}({})",
                pod.name, pod.namespace, pod.uid
            ),
        );
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = pod.stop.cancelled() => return Some(termination),
        }
        pod.set_container(init, index, |c| c.restart_count += 1);
    }
}

/// The pod's whole run: prepare, init containers, containers.
async fn run_pod(pod: &Arc<Pod>, spec_value: &Value) {
    let spec = Arc::new(spec_value.clone());
    tracing::debug!(pod = %pod.name, "pod starts on the node");
    pod.changed.notify_one();
    let agent = &pod.agent;
    // The active deadline counts from the pod's start on the node.
    let deadline = spec
        .pointer("/spec/activeDeadlineSeconds")
        .and_then(Value::as_u64)
        .map(|secs| {
            let start = pod.state.lock().expect("pod state").start_time.clone();
            let started = chrono::DateTime::parse_from_rfc3339(&start)
                .map(|t| t.with_timezone(&Utc))
                .unwrap_or_else(|_| Utc::now());
            let left = (started + chrono::Duration::seconds(secs as i64) - Utc::now())
                .to_std()
                .unwrap_or_default();
            Instant::now() + left
        });
    let deadline_watch = deadline.map(|at| {
        let pod = pod.clone();
        let spec = spec.clone();
        tokio::spawn(async move {
            tokio::time::sleep_until(at.into()).await;
            deadline_exceeded(&pod, &spec).await;
            pod.stop.cancel();
        })
    });

    let volumes = loop {
        match config::prepare_volumes(&agent.objects, &spec, &agent.pods_dir().join(&pod.uid)).await
        {
            Ok(v) => break v,
            Err(e) => {
                let message = e.to_string();
                pod.update(|s| {
                    for c in s.init.iter_mut().chain(s.containers.iter_mut()) {
                        if matches!(c.state, State::Waiting { .. }) {
                            c.state = State::Waiting {
                                reason: "CreateContainerConfigError".into(),
                                message: Some(message.clone()),
                            };
                        }
                    }
                });
                pod.event(&spec, EventType::Warning, "FailedMount", &message);
                tokio::select! { _ = tokio::time::sleep(RETRY) => {}, _ = pod.stop.cancelled() => return }
            }
        }
    };
    let mounts_of = |c: &Value| -> Result<Vec<Mount>, ConfigError> { config::mounts(c, &volumes) };

    // Init containers, one after another.
    let init_specs: Vec<Value> = spec
        .pointer("/spec/initContainers")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let already_done = pod.state.lock().expect("pod state").init_done;
    if !already_done {
        for (index, container) in init_specs.iter().enumerate() {
            let done = matches!(&pod.state.lock().expect("pod state").init[index].state, State::Terminated(t) if t.exit_code == 0);
            if done {
                continue;
            }
            let Some(program) = program_for(pod, &spec, container, true, index).await else {
                return;
            };
            let mounts = match mounts_of(container) {
                Ok(m) => m,
                Err(e) => {
                    pod.set_container(true, index, |c| {
                        c.state = State::Waiting {
                            reason: "CreateContainerConfigError".into(),
                            message: Some(e.to_string()),
                        }
                    });
                    return;
                }
            };
            let slot = Slot {
                container: container.clone(),
                program,
                mounts,
                init: true,
                index,
                deadline,
            };
            let result = container_loop(pod.clone(), spec.clone(), slot).await;
            match result {
                Some(t) if t.exit_code == 0 => {}
                Some(_) => {
                    pod.update(|s| s.init_failed = true);
                    return;
                }
                None => return,
            }
        }
        pod.update(|s| s.init_done = true);
    }

    // Containers, side by side.
    let container_specs: Vec<Value> = spec
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut tasks = Vec::new();
    for (index, container) in container_specs.into_iter().enumerate() {
        let finished = {
            let s = pod.state.lock().expect("pod state");
            matches!(&s.containers[index].state, State::Terminated(t) if !status::will_restart(&pod.policy, t.exit_code))
        };
        if finished {
            continue;
        }
        // A container found dead after a node restart counts as a restart.
        pod.update(|s| {
            let c = &mut s.containers[index];
            if let Some(lost) = c.lost.take() {
                // Still shown running and ready until the new attempt starts.
                c.last_state = Some(lost);
                c.restart_count += 1;
            } else if let State::Terminated(t) = &c.state {
                c.last_state = Some(t.clone());
                c.restart_count += 1;
                c.state = State::Waiting {
                    reason: "ContainerCreating".into(),
                    message: None,
                };
            }
        });
        let pod = pod.clone();
        let spec = spec.clone();
        let mounts = match mounts_of(&container) {
            Ok(m) => m,
            Err(e) => {
                pod.set_container(false, index, |c| {
                    c.state = State::Waiting {
                        reason: "CreateContainerConfigError".into(),
                        message: Some(e.to_string()),
                    }
                });
                continue;
            }
        };
        tasks.push(tokio::spawn(async move {
            let Some(program) = program_for(&pod, &spec, &container, false, index).await else {
                return;
            };
            let slot = Slot {
                container,
                program,
                mounts,
                init: false,
                index,
                deadline,
            };
            container_loop(pod, spec, slot).await;
        }));
    }
    for task in tasks {
        let _ = task.await;
    }
    if let Some(watch) = deadline_watch {
        watch.abort();
    }
    pod.changed.notify_one();
}

#[cfg(test)]
mod tests {
    #[test]
    fn image_ids_keep_the_registry_port() {
        use super::repository_of;
        assert_eq!(
            repository_of("127.0.0.1:5000/skiff/bb:v1"),
            "127.0.0.1:5000/skiff/bb"
        );
        assert_eq!(
            repository_of("docker.io/library/exit:v1"),
            "docker.io/library/exit"
        );
        assert_eq!(repository_of("localhost/x@sha256:ab"), "localhost/x");
        assert_eq!(
            super::split_container_id(&format!("{}-web", "0".repeat(36))),
            Some(("000000000000000000000000000000000000", "web"))
        );
    }

    use super::*;

    #[test]
    fn running_containers_found_after_a_restart_are_marked_lost() {
        let mut records = vec![
            ContainerRecord::new("a", "img"),
            ContainerRecord::new("b", "img"),
        ];
        let stored = vec![
            json!({"name": "a", "restartCount": 2, "state": {"running": {"startedAt": "t0"}}}),
            json!({"name": "b", "restartCount": 0, "state": {"terminated": {"exitCode": 0, "reason": "Completed", "startedAt": "t0", "finishedAt": "t1"}}}),
        ];
        recover(&mut records, Some(&stored), false);
        assert_eq!(records[0].restart_count, 2);
        assert!(
            matches!(&records[0].state, State::Terminated(t) if t.reason == "ContainerStatusUnknown" && t.exit_code == 137)
        );
        assert!(matches!(&records[1].state, State::Terminated(t) if t.exit_code == 0));

        // A ready container that will be restarted stays shown running until it is.
        let mut records = vec![ContainerRecord::new("a", "img")];
        let stored = vec![
            json!({"name": "a", "restartCount": 0, "ready": true, "state": {"running": {"startedAt": "t0"}}}),
        ];
        recover(&mut records, Some(&stored), true);
        assert!(records[0].is_ready());
        assert_eq!(
            records[0].lost.as_ref().map(|t| t.reason.as_str()),
            Some("ContainerStatusUnknown")
        );
    }
}
