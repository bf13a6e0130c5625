//! The scheduler: binds each pending pod to a node that fits it.
//!
//! A node fits when it is Ready and schedulable, the pod tolerates its taints, the pod's
//! `nodeSelector` and required node affinity match its labels, and the pod's requests fit in
//! what its allocatable leaves after the pods already bound there. Among fitting nodes the
//! least allocated (by CPU, then memory) wins. Pods that fit nowhere get `PodScheduled=False`
//! (reason `Unschedulable`) and a `FailedScheduling` event, and are retried when nodes or
//! pods change.
//!
//! The feasibility rules are pure functions over JSON; the loop keeps an in-memory view of
//! nodes and of each node's bound requests, fed by the store's events.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::broadcast::error::RecvError;

use crate::api::error::{ApiError, Reason};
use crate::api::objects::{Objects, WriteOptions, timestamp};
use crate::api::resources::by_plural;
use crate::api::validation::parse_quantity;
use crate::controllers::events::{EventType, Recorder};
use crate::controllers::queue::WorkQueue;
use crate::store::{Event, EventType as StoreEvent, ObjectKey};

/// The scheduler's name; pods naming another `schedulerName` are left alone.
pub const SCHEDULER_NAME: &str = "default-scheduler";
/// How often unschedulable pods are tried again even if nothing changed.
const RETRY_UNSCHEDULABLE: Duration = Duration::from_secs(10);

/// CPU (millicores), memory (bytes) and pod count.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Resources {
    /// Millicores.
    pub cpu_milli: i128,
    /// Bytes.
    pub memory: i128,
    /// Pods.
    pub pods: i128,
}

impl Resources {
    fn add(self, other: Resources) -> Resources {
        Resources {
            cpu_milli: self.cpu_milli + other.cpu_milli,
            memory: self.memory + other.memory,
            pods: self.pods + other.pods,
        }
    }

    fn sub(self, other: Resources) -> Resources {
        Resources {
            cpu_milli: self.cpu_milli - other.cpu_milli,
            memory: self.memory - other.memory,
            pods: self.pods - other.pods,
        }
    }
}

/// Where pods are placed and what that uses per node, kept as running totals so a decision
/// does not re-add every placed pod.
#[derive(Default)]
struct Placements {
    by_pod: HashMap<ObjectKey, (String, Resources)>,
    used: HashMap<String, Resources>,
}

impl Placements {
    fn insert(&mut self, key: ObjectKey, node: String, requests: Resources) {
        self.remove(&key);
        let entry = self.used.entry(node.clone()).or_default();
        *entry = entry.add(requests);
        self.by_pod.insert(key, (node, requests));
    }

    fn remove(&mut self, key: &ObjectKey) -> bool {
        let Some((node, requests)) = self.by_pod.remove(key) else {
            return false;
        };
        if let Some(entry) = self.used.get_mut(&node) {
            *entry = entry.sub(requests);
        }
        true
    }

    fn contains_key(&self, key: &ObjectKey) -> bool {
        self.by_pod.contains_key(key)
    }

    fn clear(&mut self) {
        *self = Placements::default();
    }
}

fn quantity(value: Option<&Value>) -> i128 {
    value
        .and_then(Value::as_str)
        .and_then(parse_quantity)
        .unwrap_or(0)
}

/// A container's requests (requests default to limits when only limits are set).
fn container_requests(container: &Value) -> (i128, i128) {
    let get = |res: &str| {
        let request = container.pointer(&format!("/resources/requests/{res}"));
        let limit = container.pointer(&format!("/resources/limits/{res}"));
        quantity(request.or(limit))
    };
    // parse_quantity answers milli-units: cpu stays in millicores, memory becomes bytes.
    (get("cpu"), get("memory") / 1000)
}

/// What a pod asks of a node: the larger of its containers' sum and its largest init container.
pub fn pod_requests(pod: &Value) -> Resources {
    let sum = |key: &str| -> (i128, i128) {
        pod.pointer(&format!("/spec/{key}"))
            .and_then(Value::as_array)
            .map(|cs| {
                cs.iter()
                    .map(container_requests)
                    .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1))
            })
            .unwrap_or((0, 0))
    };
    let max_init = pod
        .pointer("/spec/initContainers")
        .and_then(Value::as_array)
        .map(|cs| {
            cs.iter()
                .map(container_requests)
                .fold((0, 0), |a, b| (a.0.max(b.0), a.1.max(b.1)))
        })
        .unwrap_or((0, 0));
    let (cpu, memory) = sum("containers");
    Resources {
        cpu_milli: cpu.max(max_init.0),
        memory: memory.max(max_init.1),
        pods: 1,
    }
}

/// A node's allocatable resources.
pub fn allocatable(node: &Value) -> Resources {
    let status = node.get("status").unwrap_or(&Value::Null);
    let field = |name: &str| {
        status
            .pointer(&format!("/allocatable/{name}"))
            .or_else(|| status.pointer(&format!("/capacity/{name}")))
    };
    Resources {
        cpu_milli: quantity(field("cpu")),
        memory: quantity(field("memory")) / 1000,
        pods: quantity(field("pods")) / 1000,
    }
}

/// Whether the tolerations tolerate one taint.
fn tolerates(tolerations: &[Value], taint: &Value) -> bool {
    tolerations.iter().any(|t| {
        let effect_ok =
            t["effect"].as_str().is_none_or(str::is_empty) || t["effect"] == taint["effect"];
        let key = t["key"].as_str().unwrap_or_default();
        let key_ok = key.is_empty() || t["key"] == taint["key"];
        let value_ok = match t["operator"].as_str().unwrap_or("Equal") {
            "Exists" => true,
            _ => {
                t["value"].as_str().unwrap_or_default()
                    == taint["value"].as_str().unwrap_or_default()
            }
        };
        // An empty key with Exists tolerates everything.
        effect_ok && key_ok && value_ok && (!key.is_empty() || t["operator"] == "Exists")
    })
}

/// The first taint (NoSchedule or NoExecute) the pod does not tolerate.
pub fn untolerated_taint<'a>(pod: &Value, node: &'a Value) -> Option<&'a Value> {
    let tolerations = pod
        .pointer("/spec/tolerations")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    node.pointer("/spec/taints")
        .and_then(Value::as_array)?
        .iter()
        .filter(|t| matches!(t["effect"].as_str(), Some("NoSchedule" | "NoExecute")))
        .find(|t| !tolerates(tolerations, t))
}

fn expression_matches(expr: &Value, value: Option<&str>) -> bool {
    let values: Vec<&str> = expr["values"]
        .as_array()
        .map(|v| v.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let number = |s: &str| s.parse::<i64>().ok();
    match expr["operator"].as_str().unwrap_or_default() {
        "In" => value.is_some_and(|v| values.contains(&v)),
        "NotIn" => value.is_none_or(|v| !values.contains(&v)),
        "Exists" => value.is_some(),
        "DoesNotExist" => value.is_none(),
        "Gt" => {
            matches!((value.and_then(number), values.first().and_then(|v| number(v))), (Some(a), Some(b)) if a > b)
        }
        "Lt" => {
            matches!((value.and_then(number), values.first().and_then(|v| number(v))), (Some(a), Some(b)) if a < b)
        }
        _ => false,
    }
}

/// Whether the node's labels satisfy the pod's `nodeSelector` and required node affinity.
pub fn selects_node(pod: &Value, node: &Value) -> bool {
    let labels = node.pointer("/metadata/labels");
    let label = |k: &str| labels.and_then(|l| l.get(k)).and_then(Value::as_str);
    let selector_ok = pod
        .pointer("/spec/nodeSelector")
        .and_then(Value::as_object)
        .is_none_or(|sel| sel.iter().all(|(k, v)| label(k) == v.as_str()));
    if !selector_ok {
        return false;
    }
    let Some(terms) = pod
        .pointer("/spec/affinity/nodeAffinity/requiredDuringSchedulingIgnoredDuringExecution/nodeSelectorTerms")
        .and_then(Value::as_array)
    else {
        return true;
    };
    let node_name = node.pointer("/metadata/name").and_then(Value::as_str);
    // Terms are ORed; the expressions within a term are ANDed.
    terms.iter().any(|term| {
        let exprs = term["matchExpressions"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default();
        let fields = term["matchFields"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default();
        (!exprs.is_empty() || !fields.is_empty())
            && exprs
                .iter()
                .all(|e| expression_matches(e, label(e["key"].as_str().unwrap_or_default())))
            && fields
                .iter()
                .all(|e| e["key"] == "metadata.name" && expression_matches(e, node_name))
    })
}

/// Whether the node is Ready and accepts new pods.
pub fn node_ready(node: &Value) -> bool {
    let unschedulable = node
        .pointer("/spec/unschedulable")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let ready = node
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|cs| {
            cs.iter()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        });
    ready && !unschedulable
}

/// Why a node does not fit a pod, in the words of Kubernetes' scheduler messages.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Misfit {
    /// Not Ready or cordoned.
    NotReady,
    /// A taint the pod does not tolerate.
    Taint(String),
    /// nodeSelector / affinity.
    Affinity,
    /// Requests exceed what is left.
    Insufficient(&'static str),
}

impl std::fmt::Display for Misfit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Misfit::NotReady => write!(f, "node(s) were not ready or were unschedulable"),
            Misfit::Taint(t) => write!(f, "node(s) had untolerated taint {{{t}}}"),
            Misfit::Affinity => write!(f, "node(s) didn't match Pod's node affinity/selector"),
            Misfit::Insufficient(r) => write!(f, "Insufficient {r}"),
        }
    }
}

/// Whether `pod` fits `node` given what is already bound there.
pub fn fits(pod: &Value, node: &Value, used: Resources) -> Result<(), Misfit> {
    if !node_ready(node) {
        return Err(Misfit::NotReady);
    }
    if let Some(taint) = untolerated_taint(pod, node) {
        let key = taint["key"].as_str().unwrap_or_default();
        let value = taint["value"].as_str().unwrap_or_default();
        return Err(Misfit::Taint(if value.is_empty() {
            key.to_string()
        } else {
            format!("{key}: {value}")
        }));
    }
    if !selects_node(pod, node) {
        return Err(Misfit::Affinity);
    }
    let want = pod_requests(pod);
    let have = allocatable(node);
    let total = used.add(want);
    if total.pods > have.pods {
        return Err(Misfit::Insufficient("pods"));
    }
    if want.cpu_milli > 0 && total.cpu_milli > have.cpu_milli {
        return Err(Misfit::Insufficient("cpu"));
    }
    if want.memory > 0 && total.memory > have.memory {
        return Err(Misfit::Insufficient("memory"));
    }
    Ok(())
}

/// Kubernetes' unschedulable message: `0/2 nodes are available: 1 Insufficient cpu, 1 node(s) ...`.
pub fn unschedulable_message(node_count: usize, misfits: &[Misfit]) -> String {
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for m in misfits {
        *counts.entry(m.to_string()).or_default() += 1;
    }
    let reasons: Vec<String> = counts.iter().map(|(r, n)| format!("{n} {r}")).collect();
    if reasons.is_empty() {
        format!("0/{node_count} nodes are available.")
    } else {
        format!(
            "0/{node_count} nodes are available: {}.",
            reasons.join(", ")
        )
    }
}

/// Picks the least allocated fitting node; Err carries each node's misfit.
pub fn choose<'a>(
    pod: &Value,
    nodes: impl Iterator<Item = (&'a str, &'a Value)>,
    used: &HashMap<String, Resources>,
) -> Result<String, Vec<Misfit>> {
    let mut best: Option<(i128, i128, &str)> = None;
    let mut misfits = Vec::new();
    for (name, node) in nodes {
        let u = used.get(name).copied().unwrap_or_default();
        match fits(pod, node, u) {
            Ok(()) => {
                let have = allocatable(node);
                let cpu_free = have.cpu_milli - u.cpu_milli;
                let mem_free = have.memory - u.memory;
                if best.is_none_or(|(c, m, _)| (cpu_free, mem_free) > (c, m)) {
                    best = Some((cpu_free, mem_free, name));
                }
            }
            Err(m) => misfits.push(m),
        }
    }
    best.map(|(_, _, n)| n.to_string()).ok_or(misfits)
}

fn is_terminal(pod: &Value) -> bool {
    matches!(
        pod.pointer("/status/phase").and_then(Value::as_str),
        Some("Succeeded" | "Failed")
    )
}

fn wants_scheduling(pod: &Value) -> bool {
    let unbound = pod
        .pointer("/spec/nodeName")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty);
    let ours = pod
        .pointer("/spec/schedulerName")
        .and_then(Value::as_str)
        .is_none_or(|s| s.is_empty() || s == SCHEDULER_NAME);
    let deleting = pod
        .pointer("/metadata/deletionTimestamp")
        .is_some_and(|t| !t.is_null());
    unbound && ours && !deleting && !is_terminal(pod)
}

/// Starts the scheduler.
pub fn spawn(objects: Objects) {
    tokio::spawn(async move {
        let recorder = Recorder::new(objects.clone(), SCHEDULER_NAME, None);
        let (binds, bind_results) = tokio::sync::mpsc::unbounded_channel();
        let mut scheduler = Scheduler {
            objects,
            recorder,
            nodes: BTreeMap::new(),
            bound: Placements::default(),
            pending: HashMap::new(),
            queue: WorkQueue::default(),
            unschedulable: HashMap::new(),
            binds,
            bind_results,
        };
        scheduler.run().await;
    });
}

struct Scheduler {
    objects: Objects,
    recorder: Recorder,
    nodes: BTreeMap<String, Arc<Value>>,
    /// Pod key → (node, requests) for pods bound and not terminal, and for pods whose bind
    /// is in flight (assumed bound, as Kubernetes' scheduler cache assumes them).
    bound: Placements,
    /// Pods waiting to be scheduled, as last seen.
    pending: HashMap<ObjectKey, Arc<Value>>,
    queue: WorkQueue<ObjectKey>,
    /// Pods waiting for room, and the message they were last given.
    unschedulable: HashMap<ObjectKey, String>,
    /// Binds run concurrently; their results come back here.
    binds: tokio::sync::mpsc::UnboundedSender<(ObjectKey, Result<(), ApiError>)>,
    bind_results: tokio::sync::mpsc::UnboundedReceiver<(ObjectKey, Result<(), ApiError>)>,
}

impl Scheduler {
    async fn run(&mut self) {
        let mut events = self.objects.store().subscribe();
        self.resync().await;
        let mut retry = tokio::time::interval(RETRY_UNSCHEDULABLE);
        loop {
            while let Some(key) = self.queue.pop() {
                // Keep the view current before each decision.
                while let Ok(event) = events.try_recv() {
                    self.observe(&event);
                }
                self.schedule(&key).await;
            }
            tokio::select! {
                received = events.recv() => match received {
                    Ok(event) => self.observe(&event),
                    Err(RecvError::Lagged(_)) => self.resync().await,
                    Err(RecvError::Closed) => return,
                },
                Some((key, result)) = self.bind_results.recv() => self.bind_done(key, result),
                _ = retry.tick() => self.retry_unschedulable(),
            }
        }
    }

    /// A bind came back: on failure the assumed placement is undone and the pod retried.
    fn bind_done(&mut self, key: ObjectKey, result: Result<(), ApiError>) {
        let Err(e) = result else {
            return;
        };
        self.bound.remove(&key);
        match e.reason {
            Reason::NotFound => {}
            Reason::Conflict => self.queue.add_after(key, Duration::from_millis(50)),
            _ => {
                tracing::warn!(error = %e, pod = %key.name, "binding failed");
                self.queue.add_after(key, Duration::from_secs(1));
            }
        }
    }

    fn retry_unschedulable(&mut self) {
        let keys: Vec<ObjectKey> = self.unschedulable.keys().cloned().collect();
        for key in keys {
            self.queue.add(key);
        }
    }

    async fn resync(&mut self) {
        self.nodes.clear();
        self.bound.clear();
        if let Ok(page) = self.objects.store().list("nodes", None, None, None).await {
            for stored in page.items {
                let name = stored.object["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                self.nodes.insert(name, stored.object);
            }
        }
        if let Ok(page) = self.objects.store().list("pods", None, None, None).await {
            for stored in page.items {
                let key = ObjectKey::new(
                    "pods",
                    stored.object["metadata"]["namespace"]
                        .as_str()
                        .unwrap_or_default(),
                    stored.object["metadata"]["name"]
                        .as_str()
                        .unwrap_or_default(),
                );
                self.track_pod(&key, &stored.object);
            }
        }
    }

    fn track_pod(&mut self, key: &ObjectKey, pod: &Arc<Value>) {
        let node = pod
            .pointer("/spec/nodeName")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if !node.is_empty() && !is_terminal(pod) {
            self.bound
                .insert(key.clone(), node.to_string(), pod_requests(pod));
        } else {
            self.bound.remove(key);
        }
        if wants_scheduling(pod) {
            self.pending.insert(key.clone(), pod.clone());
            self.queue.add(key.clone());
        } else {
            self.pending.remove(key);
            self.unschedulable.remove(key);
        }
    }

    fn observe(&mut self, event: &Event) {
        match (event.key.resource.as_str(), event.kind) {
            ("nodes", StoreEvent::Deleted) => {
                self.nodes.remove(&event.key.name);
            }
            ("nodes", _) => {
                let was_ready = self
                    .nodes
                    .get(&event.key.name)
                    .is_some_and(|n| node_ready(n));
                self.nodes
                    .insert(event.key.name.clone(), event.object.clone());
                if !was_ready || event.kind == StoreEvent::Added {
                    self.retry_unschedulable();
                }
            }
            ("pods", StoreEvent::Deleted) => {
                self.unschedulable.remove(&event.key);
                self.pending.remove(&event.key);
                if self.bound.remove(&event.key) {
                    self.retry_unschedulable();
                }
            }
            ("pods", _) => {
                let freed = is_terminal(&event.object) && self.bound.contains_key(&event.key);
                self.track_pod(&event.key, &event.object);
                if freed {
                    self.retry_unschedulable();
                }
            }
            _ => {}
        }
    }

    async fn schedule(&mut self, key: &ObjectKey) {
        let pods = by_plural("", "v1", "pods").expect("pods are served");
        let Some(pod) = self.pending.get(key).cloned() else {
            return;
        };
        if !wants_scheduling(&pod) || self.bound.contains_key(key) {
            return;
        }
        let chosen = choose(
            &pod,
            self.nodes.iter().map(|(n, v)| (n.as_str(), v.as_ref())),
            &self.bound.used,
        );
        match chosen {
            Ok(node) => {
                // Assume it bound now, so the next decision counts it; the bind itself runs
                // concurrently with the next decisions and undoes this if it fails.
                self.bound
                    .insert(key.clone(), node.clone(), pod_requests(&pod));
                self.unschedulable.remove(key);
                let objects = self.objects.clone();
                let recorder = self.recorder.clone();
                let results = self.binds.clone();
                let key = key.clone();
                tokio::spawn(async move {
                    let binding = json!({"apiVersion": "v1", "kind": "Binding",
                        "metadata": {"name": key.name, "namespace": key.namespace},
                        "target": {"apiVersion": "v1", "kind": "Node", "name": node}});
                    let result = objects
                        .bind_cached(&pod, &binding, &WriteOptions::controller(SCHEDULER_NAME))
                        .await;
                    if result.is_ok() {
                        let message = format!(
                            "Successfully assigned {}/{} to {node}",
                            key.namespace, key.name
                        );
                        recorder.record(&pod, EventType::Normal, "Scheduled", &message);
                    }
                    let _ = results.send((key, result));
                });
            }
            Err(misfits) => {
                let message = unschedulable_message(self.nodes.len(), &misfits);
                if self.unschedulable.get(key) == Some(&message) {
                    return;
                }
                self.unschedulable.insert(key.clone(), message.clone());
                let now = timestamp(chrono::Utc::now());
                let condition_message = message.clone();
                let _ = self
                    .objects
                    .modify(pods, &key.namespace, &key.name, Some("status"), SCHEDULER_NAME, |pod| {
                        let mut conditions: Vec<Value> = pod["status"]["conditions"]
                            .as_array()
                            .cloned()
                            .unwrap_or_default()
                            .into_iter()
                            .filter(|c| c["type"] != "PodScheduled")
                            .collect();
                        conditions.push(json!({"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                            "message": condition_message, "lastProbeTime": null, "lastTransitionTime": now}));
                        pod["status"]["conditions"] = Value::Array(conditions);
                        true
                    })
                    .await;
                self.recorder
                    .record(&pod, EventType::Warning, "FailedScheduling", &message);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placements_keep_running_totals_per_node() {
        let mut p = Placements::default();
        let r = |cpu| Resources {
            cpu_milli: cpu,
            memory: 0,
            pods: 1,
        };
        let (a, b) = (
            ObjectKey::new("pods", "ns", "a"),
            ObjectKey::new("pods", "ns", "b"),
        );
        p.insert(a.clone(), "n1".into(), r(100));
        p.insert(b.clone(), "n1".into(), r(200));
        assert_eq!(p.used["n1"], r(300).add(Resources { pods: 1, ..r(0) }));
        // Re-placing a pod replaces its share; removing it frees it.
        p.insert(a.clone(), "n2".into(), r(100));
        assert_eq!((p.used["n1"].cpu_milli, p.used["n2"].cpu_milli), (200, 100));
        assert!(p.remove(&b) && !p.remove(&b));
        assert_eq!(p.used["n1"].pods, 0);
    }

    fn node(name: &str, cpu: &str, memory: &str) -> Value {
        json!({"metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, "disk": "ssd"}},
            "spec": {}, "status": {"allocatable": {"cpu": cpu, "memory": memory, "pods": "110"},
            "conditions": [{"type": "Ready", "status": "True"}]}})
    }

    fn pod(cpu: &str, memory: &str) -> Value {
        json!({"spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": cpu, "memory": memory}}}]}})
    }

    #[test]
    fn requests_take_the_larger_of_containers_and_init_containers() {
        let p = json!({"spec": {
            "containers": [{"resources": {"requests": {"cpu": "100m"}}}, {"resources": {"limits": {"cpu": "200m", "memory": "64Mi"}}}],
            "initContainers": [{"resources": {"requests": {"cpu": "500m"}}}]}});
        let r = pod_requests(&p);
        assert_eq!(r.cpu_milli, 500);
        assert_eq!(r.memory, 64 * 1024 * 1024);
    }

    #[test]
    fn resources_must_fit_what_is_left() {
        let n = node("a", "2", "1Gi");
        assert_eq!(
            fits(&pod("1500m", "100Mi"), &n, Resources::default()),
            Ok(())
        );
        let used = Resources {
            cpu_milli: 1000,
            memory: 0,
            pods: 1,
        };
        assert_eq!(
            fits(&pod("1500m", "100Mi"), &n, used),
            Err(Misfit::Insufficient("cpu"))
        );
        assert_eq!(
            fits(&pod("1", "2Gi"), &n, Resources::default()),
            Err(Misfit::Insufficient("memory"))
        );
    }

    #[test]
    fn taints_need_tolerations() {
        let mut n = node("a", "2", "1Gi");
        n["spec"]["taints"] = json!([{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}]);
        let mut p = pod("0", "0");
        assert!(matches!(
            fits(&p, &n, Resources::default()),
            Err(Misfit::Taint(_))
        ));
        p["spec"]["tolerations"] = json!([{"key": "dedicated", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"}]);
        assert_eq!(fits(&p, &n, Resources::default()), Ok(()));
        p["spec"]["tolerations"] = json!([{"operator": "Exists"}]);
        assert_eq!(fits(&p, &n, Resources::default()), Ok(()));
        n["spec"]["taints"] = json!([{"key": "x", "effect": "PreferNoSchedule"}]);
        assert_eq!(
            fits(&pod("0", "0"), &n, Resources::default()),
            Ok(()),
            "soft taints do not block"
        );
    }

    #[test]
    fn node_selector_and_affinity() {
        let n = node("a", "2", "1Gi");
        let mut p = pod("0", "0");
        p["spec"]["nodeSelector"] = json!({"disk": "ssd"});
        assert!(selects_node(&p, &n));
        p["spec"]["nodeSelector"] = json!({"disk": "hdd"});
        assert!(!selects_node(&p, &n));
        p["spec"]["nodeSelector"] = json!({});
        p["spec"]["affinity"] = json!({"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchExpressions": [{"key": "disk", "operator": "In", "values": ["nvme"]}]},
            {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["a"]}]}]}}});
        assert!(selects_node(&p, &n), "terms are ORed");
        p["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"] =
            json!([{"matchExpressions": [{"key": "disk", "operator": "NotIn", "values": ["ssd"]}]}]);
        assert!(!selects_node(&p, &n));
    }

    #[test]
    fn choose_prefers_the_least_allocated_node_and_explains_misfits() {
        let a = node("a", "2", "1Gi");
        let b = node("b", "4", "1Gi");
        let nodes = [("a", &a), ("b", &b)];
        let used = HashMap::from([(
            "b".to_string(),
            Resources {
                cpu_milli: 3500,
                memory: 0,
                pods: 1,
            },
        )]);
        assert_eq!(
            choose(
                &pod("100m", "0"),
                nodes.iter().map(|(n, v)| (*n, *v)),
                &used
            ),
            Ok("a".to_string())
        );
        let misfits =
            choose(&pod("3", "0"), nodes.iter().map(|(n, v)| (*n, *v)), &used).unwrap_err();
        assert_eq!(
            unschedulable_message(2, &misfits),
            "0/2 nodes are available: 2 Insufficient cpu."
        );
        let mut cordoned = a.clone();
        cordoned["spec"]["unschedulable"] = json!(true);
        assert_eq!(
            fits(&pod("0", "0"), &cordoned, Resources::default()),
            Err(Misfit::NotReady)
        );
    }
}
