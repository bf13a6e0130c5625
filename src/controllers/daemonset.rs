//! The DaemonSet controller: one pod per eligible node (nodeSelector, required node affinity,
//! taints and tolerations), pinned to its node by node affinity and placed by the scheduler
//! as Kubernetes does it; RollingUpdate with `maxUnavailable` (or OnDelete); the status
//! fields `kubectl rollout status` reads. A node added later gets its pod.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::Utc;
use serde_json::{Value, json};

use super::deployment::arith;
use super::events::{EventType, Recorder};
use super::informer::{Cache, Informers, is_deleting, uid};
use super::pods::{availability, is_active, is_ready};
use super::replicaset::pod_from_template;
use super::runner::{self, Action, Queue};
use super::writes;
use crate::api::error::ApiError;
use crate::api::objects::{Objects, WriteOptions, name_of};
use crate::api::resources::by_plural;
use crate::api::selector::LabelSelector;
use crate::scheduler::{selects_node, untolerated_taint};
use crate::store::ObjectKey;

const MANAGER: &str = "daemonset-controller";
/// The label naming the template revision a DaemonSet pod was made from.
pub const REVISION_LABEL: &str = "controller-revision-hash";

struct Ctx {
    objects: Objects,
    daemonsets: Arc<Cache>,
    pods: Arc<Cache>,
    nodes: Arc<Cache>,
    recorder: Recorder,
}

/// Registers the controller's caches and handlers and starts its workers.
pub fn register(objects: &Objects, informers: &mut Informers) {
    let ds_resource = by_plural("apps", "v1", "daemonsets").expect("daemonsets are served");
    let pod_resource = by_plural("", "v1", "pods").expect("pods are served");
    let node_resource = by_plural("", "v1", "nodes").expect("nodes are served");
    let queue = Queue::default();
    let daemonsets = informers.queue_changes(ds_resource, &queue);
    informers.queue_owners(pod_resource, "DaemonSet", ds_resource, &queue);
    let pods = informers.cache(pod_resource);
    let nodes = informers.cache(node_resource);
    {
        // Node changes (added, relabelled, tainted, removed) concern every DaemonSet.
        let queue = queue.clone();
        let daemonsets = daemonsets.clone();
        informers.on(node_resource, move |change| {
            let relevant = change.previous.is_none_or(|before| {
                before["metadata"]["labels"] != change.object["metadata"]["labels"]
                    || before["spec"] != change.object["spec"]
            }) || change.kind != crate::store::EventType::Modified;
            if relevant {
                for ds in daemonsets.keys() {
                    queue.add(ds);
                }
            }
        });
    }
    let ctx = Arc::new(Ctx {
        recorder: Recorder::new(objects.clone(), MANAGER, None),
        objects: objects.clone(),
        daemonsets: daemonsets.clone(),
        pods,
        nodes,
    });
    runner::start(MANAGER, queue, 2, ctx, daemonsets, |ctx, key| async move {
        reconcile(&ctx, &key).await
    });
}

/// Tolerations Kubernetes adds to every DaemonSet pod, so that daemons keep running on nodes
/// that are unhealthy or cordoned.
fn daemon_tolerations() -> Vec<Value> {
    let mut t = vec![
        json!({"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute"}),
        json!({"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute"}),
    ];
    for key in [
        "node.kubernetes.io/disk-pressure",
        "node.kubernetes.io/memory-pressure",
        "node.kubernetes.io/pid-pressure",
        "node.kubernetes.io/unschedulable",
    ] {
        t.push(json!({"key": key, "operator": "Exists", "effect": "NoSchedule"}));
    }
    t
}

/// The pod template with the daemon tolerations and the revision label.
fn daemon_template(ds: &Value, revision: &str) -> Value {
    let mut template = ds["spec"]["template"].clone();
    let mut tolerations = template["spec"]["tolerations"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    for t in daemon_tolerations() {
        if !tolerations
            .iter()
            .any(|have| have["key"] == t["key"] && have["effect"] == t["effect"])
        {
            tolerations.push(t);
        }
    }
    template["spec"]["tolerations"] = json!(tolerations);
    template["metadata"]["labels"][REVISION_LABEL] = json!(revision);
    template
}

/// Pins a pod to `node` with required node affinity on `metadata.name`, keeping the
/// template's own label expressions in every term.
fn pin_to_node(pod: &mut Value, node: &str) {
    let field = json!({"key": "metadata.name", "operator": "In", "values": [node]});
    let path = "/spec/affinity/nodeAffinity/requiredDuringSchedulingIgnoredDuringExecution/nodeSelectorTerms";
    let mut terms: Vec<Value> = pod
        .pointer(path)
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if terms.is_empty() {
        terms.push(json!({}));
    }
    for term in &mut terms {
        term["matchFields"] = json!([field.clone()]);
    }
    pod["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"] =
        json!({"nodeSelectorTerms": terms});
}

/// The node a daemon pod belongs to: its nodeName, else its pinned affinity.
fn node_of(pod: &Value) -> Option<String> {
    if let Some(n) = pod["spec"]["nodeName"].as_str().filter(|n| !n.is_empty()) {
        return Some(n.to_string());
    }
    pod.pointer("/spec/affinity/nodeAffinity/requiredDuringSchedulingIgnoredDuringExecution/nodeSelectorTerms/0/matchFields/0/values/0")
        .and_then(Value::as_str)
        .map(String::from)
}

/// Whether a daemon pod from `template` should be placed on `node`.
pub fn should_run(template: &Value, node: &Value) -> bool {
    let pod = json!({"spec": template["spec"]});
    selects_node(&pod, node) && untolerated_taint(&pod, node).is_none()
}

/// Whether a daemon pod already on `node` may stay: a NoSchedule taint keeps new pods off
/// but does not evict, as in Kubernetes; a NoExecute one does.
pub fn may_stay(template: &Value, node: &Value) -> bool {
    let pod = json!({"spec": template["spec"]});
    selects_node(&pod, node)
        && untolerated_taint(&pod, node).is_none_or(|taint| taint["effect"] == "NoSchedule")
        && !node["spec"]["taints"].as_array().is_some_and(|taints| {
            taints.iter().any(|t| {
                t["effect"] == "NoExecute"
                    && untolerated_taint(&pod, &json!({"spec": {"taints": [t]}})).is_some()
            })
        })
}

async fn reconcile(ctx: &Ctx, key: &ObjectKey) -> Result<Action, ApiError> {
    let Some(ds) = ctx.daemonsets.get(&key.namespace, &key.name) else {
        return Ok(Action::AwaitChange);
    };
    let Ok(selector) = LabelSelector::from_json(&ds["spec"]["selector"]) else {
        return Ok(Action::AwaitChange);
    };
    let ns = key.namespace.as_str();
    let revision = arith::template_hash(&ds["spec"]["template"], None);
    let template = daemon_template(&ds, &revision);
    let ds_uid = uid(&ds).to_string();

    // Active pods by node (adopting matching orphans, releasing ones that stopped matching).
    let mut by_node: HashMap<String, Vec<Arc<Value>>> = HashMap::new();
    let owned = writes::claim(
        &ctx.objects,
        &ctx.pods,
        &ds,
        "DaemonSet",
        &selector,
        MANAGER,
    )
    .await;
    for pod in owned.into_iter().filter(|p| is_active(p)) {
        if let Some(node) = node_of(&pod) {
            by_node.entry(node).or_default().push(pod);
        }
    }

    let nodes = ctx.nodes.list(None);
    let mut desired = 0i64;
    let mut to_create = Vec::new();
    let mut to_delete: Vec<Arc<Value>> = Vec::new();
    let mut misscheduled = 0i64;
    for node in &nodes {
        let name = name_of(node).to_string();
        let pods = by_node.remove(&name).unwrap_or_default();
        if should_run(&template, node) {
            desired += 1;
            if pods.is_empty() {
                to_create.push(name);
            } else if pods.len() > 1 {
                // Keep the oldest, delete the rest.
                let mut pods = pods;
                pods.sort_by_key(|p| {
                    p["metadata"]["creationTimestamp"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string()
                });
                to_delete.extend(pods.into_iter().skip(1));
            }
        } else if !pods.is_empty() && may_stay(&template, node) {
            desired += 1;
        } else if !pods.is_empty() {
            misscheduled += pods.len() as i64;
            to_delete.extend(pods);
        }
    }
    // Pods for nodes that no longer exist.
    for (_, pods) in by_node {
        to_delete.extend(pods);
    }

    if !is_deleting(&ds) {
        // Rolling update: replace old-revision pods while few enough daemons are unavailable.
        if ds["spec"]["updateStrategy"]["type"] != "OnDelete" {
            let max_unavailable = arith::int_or_percent(
                ds["spec"]["updateStrategy"]["rollingUpdate"]
                    .get("maxUnavailable")
                    .unwrap_or(&json!(1)),
                desired,
                false,
            )
            .unwrap_or(1)
            .max(1);
            let min_ready = ds["spec"]["minReadySeconds"].as_i64().unwrap_or(0);
            let now = Utc::now();
            let daemon_pods: Vec<Arc<Value>> = ctx
                .pods
                .controlled_by(&ds_uid)
                .into_iter()
                .filter(|p| is_active(p))
                .collect();
            let unavailable = to_create.len() as i64
                + daemon_pods
                    .iter()
                    .filter(|p| !availability(p, min_ready, now).0)
                    .count() as i64;
            let mut budget = max_unavailable - unavailable;
            // Old pods that are not available go first: replacing them costs nothing.
            let mut old: Vec<Arc<Value>> = daemon_pods
                .into_iter()
                .filter(|p| p["metadata"]["labels"][REVISION_LABEL] != revision.as_str())
                .filter(|p| !to_delete.iter().any(|d| uid(d) == uid(p)))
                .collect();
            old.sort_by_key(|p| availability(p, min_ready, now).0);
            for pod in old {
                let free = !availability(&pod, min_ready, now).0;
                if free || budget > 0 {
                    if !free {
                        budget -= 1;
                    }
                    to_delete.push(pod);
                }
            }
        }
        for node in &to_create {
            let mut pod = pod_from_template(&ds, "DaemonSet", &template);
            pin_to_node(&mut pod, node);
            let result = ctx
                .objects
                .create(
                    ctx.pods.resource(),
                    ns,
                    pod,
                    &WriteOptions::controller(MANAGER),
                )
                .await;
            writes::note_create(&ctx.recorder, &ctx.pods, &ds, result)?;
        }
        for pod in to_delete {
            if writes::delete(&ctx.objects, &ctx.pods, &pod).await? {
                ctx.recorder.record(
                    &ds,
                    EventType::Normal,
                    "SuccessfulDelete",
                    &format!("Deleted pod: {}", name_of(&pod)),
                );
            }
        }
    }

    update_status(ctx, &ds, &revision, desired, misscheduled).await?;
    Ok(Action::AwaitChange)
}

async fn update_status(
    ctx: &Ctx,
    ds: &Arc<Value>,
    revision: &str,
    desired: i64,
    misscheduled: i64,
) -> Result<(), ApiError> {
    let min_ready = ds["spec"]["minReadySeconds"].as_i64().unwrap_or(0);
    let now = Utc::now();
    let pods: Vec<Arc<Value>> = ctx
        .pods
        .controlled_by(uid(ds))
        .into_iter()
        .filter(|p| is_active(p))
        .collect();
    let scheduled = pods.len() as i64 - misscheduled;
    let ready = pods.iter().filter(|p| is_ready(p)).count() as i64;
    let available = pods
        .iter()
        .filter(|p| availability(p, min_ready, now).0)
        .count() as i64;
    let updated = pods
        .iter()
        .filter(|p| p["metadata"]["labels"][REVISION_LABEL] == revision)
        .count() as i64;
    let mut status = json!({
        "currentNumberScheduled": scheduled.max(0),
        "numberMisscheduled": misscheduled,
        "desiredNumberScheduled": desired,
        "numberReady": ready,
        "updatedNumberScheduled": updated,
        "numberAvailable": available,
        "numberUnavailable": (desired - available).max(0),
        "observedGeneration": ds["metadata"]["generation"].as_i64().unwrap_or(1),
    });
    for field in [
        "numberAvailable",
        "numberUnavailable",
        "updatedNumberScheduled",
    ] {
        if status[field] == 0 {
            status.as_object_mut().expect("object").remove(field);
        }
    }
    writes::write_status(&ctx.objects, &ctx.daemonsets, ds, &status, MANAGER).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str, labels: Value, taints: Value) -> Value {
        json!({"metadata": {"name": name, "labels": labels}, "spec": {"taints": taints}})
    }

    #[test]
    fn daemons_go_where_selectors_and_taints_allow() {
        let ds = json!({"spec": {"template": {"spec": {"nodeSelector": {"disk": "ssd"},
            "containers": []}}}});
        let template = daemon_template(&ds, "abc");
        assert!(should_run(
            &template,
            &node("a", json!({"disk": "ssd"}), json!([]))
        ));
        assert!(!should_run(
            &template,
            &node("b", json!({"disk": "hdd"}), json!([]))
        ));
        // Cordoned or not-ready nodes keep their daemons; other taints need a toleration.
        let cordoned = json!([{"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}]);
        assert!(should_run(
            &template,
            &node("c", json!({"disk": "ssd"}), cordoned)
        ));
        let dedicated = json!([{"key": "dedicated", "value": "db", "effect": "NoSchedule"}]);
        let tainted = node("d", json!({"disk": "ssd"}), dedicated);
        assert!(!should_run(&template, &tainted));
        assert!(may_stay(&template, &tainted), "NoSchedule does not evict");
        let evicting = json!([{"key": "dedicated", "value": "db", "effect": "NoExecute"}]);
        assert!(!may_stay(
            &template,
            &node("e", json!({"disk": "ssd"}), evicting)
        ));
        assert_eq!(template["metadata"]["labels"][REVISION_LABEL], "abc");
    }

    #[test]
    fn pinning_uses_node_affinity_and_keeps_label_terms() {
        let mut pod = json!({"spec": {"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution":
            {"nodeSelectorTerms": [{"matchExpressions": [{"key": "disk", "operator": "In", "values": ["ssd"]}]}]}}}}});
        pin_to_node(&mut pod, "n1");
        assert_eq!(node_of(&pod).as_deref(), Some("n1"));
        let term = &pod["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
            ["nodeSelectorTerms"][0];
        assert_eq!(term["matchExpressions"][0]["key"], "disk");
        assert_eq!(term["matchFields"][0]["values"][0], "n1");
    }
}
