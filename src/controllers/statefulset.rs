//! The StatefulSet controller: pods with stable ordinal names (`web-0`, `web-1`...), created
//! in order and removed in reverse order (`OrderedReady`) or all at once (`Parallel`); one
//! PersistentVolumeClaim per ordinal and volumeClaimTemplate (`<template>-<set>-<ordinal>`),
//! which outlives its pod and is reattached to the same ordinal;
//! `persistentVolumeClaimRetentionPolicy`; RollingUpdate from the highest ordinal down to
//! `partition`, one pod at a time, or OnDelete.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use super::deployment::arith;
use super::events::{EventType, Recorder};
use super::informer::{Cache, Informers, is_deleting, uid};
use super::pods::{is_ready, is_terminal};
use super::replicaset::pod_from_template;
use super::runner::{self, Action, Queue};
use super::writes;
use crate::api::error::{ApiError, Reason};
use crate::api::objects::{DeleteOptions, Objects, WriteOptions, name_of};
use crate::api::resources::by_plural;
use crate::store::ObjectKey;

const MANAGER: &str = "statefulset-controller";
const REVISION_LABEL: &str = "controller-revision-hash";
const POD_NAME_LABEL: &str = "statefulset.kubernetes.io/pod-name";
const POD_INDEX_LABEL: &str = "apps.kubernetes.io/pod-index";

struct Ctx {
    objects: Objects,
    sets: Arc<Cache>,
    pods: Arc<Cache>,
    claims: Arc<Cache>,
    recorder: Recorder,
}

/// Registers the controller's caches and handlers and starts its workers.
pub fn register(objects: &Objects, informers: &mut Informers) {
    let sts_resource = by_plural("apps", "v1", "statefulsets").expect("statefulsets are served");
    let pod_resource = by_plural("", "v1", "pods").expect("pods are served");
    let pvc_resource = by_plural("", "v1", "persistentvolumeclaims").expect("pvcs are served");
    let queue = Queue::default();
    let sets = informers.queue_changes(sts_resource, &queue);
    informers.queue_owners(pod_resource, "StatefulSet", sts_resource, &queue);
    let pods = informers.cache(pod_resource);
    let claims = informers.cache(pvc_resource);
    let ctx = Arc::new(Ctx {
        recorder: Recorder::new(objects.clone(), MANAGER, None),
        objects: objects.clone(),
        sets: sets.clone(),
        pods,
        claims,
    });
    runner::start(MANAGER, queue, 2, ctx, sets, |ctx, key| async move {
        reconcile(&ctx, &key).await
    });
}

/// The ordinal of `pod` in set `set` (`<set>-<n>`), if its name has that shape.
pub fn ordinal(set: &str, pod: &str) -> Option<usize> {
    pod.strip_prefix(set)?.strip_prefix('-')?.parse().ok()
}

/// The claim name for one volumeClaimTemplate and ordinal.
pub fn claim_name(template: &str, set: &str, ordinal: usize) -> String {
    format!("{template}-{set}-{ordinal}")
}

/// The pod for `ordinal`, from the set's template at `revision`.
fn pod_for(set: &Value, ordinal: usize, revision: &str) -> Value {
    let name = name_of(set);
    let mut pod = pod_from_template(set, "StatefulSet", &set["spec"]["template"]);
    let meta = pod["metadata"].as_object_mut().expect("metadata");
    meta.remove("generateName");
    meta.insert("name".into(), json!(format!("{name}-{ordinal}")));
    let labels = &mut pod["metadata"]["labels"];
    if !labels.is_object() {
        *labels = json!({});
    }
    labels[POD_NAME_LABEL] = json!(format!("{name}-{ordinal}"));
    labels[POD_INDEX_LABEL] = json!(ordinal.to_string());
    labels[REVISION_LABEL] = json!(revision);
    pod["spec"]["hostname"] = json!(format!("{name}-{ordinal}"));
    if let Some(service) = set["spec"]["serviceName"]
        .as_str()
        .filter(|s| !s.is_empty())
    {
        pod["spec"]["subdomain"] = json!(service);
    }
    // Each volumeClaimTemplate becomes a volume backed by this ordinal's claim.
    let mut volumes: Vec<Value> = pod["spec"]["volumes"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    for template in set["spec"]["volumeClaimTemplates"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
    {
        let tname = name_of(template);
        volumes.retain(|v| v["name"] != tname);
        volumes.push(json!({"name": tname,
            "persistentVolumeClaim": {"claimName": claim_name(tname, name, ordinal)}}));
    }
    if !volumes.is_empty() {
        pod["spec"]["volumes"] = json!(volumes);
    }
    pod
}

/// The revision name of the set's current template: `<set>-<hash>`, as the pods'
/// `controller-revision-hash` label and the status carry it.
fn revision_of(set: &Value, name: &str) -> String {
    format!(
        "{name}-{}",
        arith::template_hash(&set["spec"]["template"], None)
    )
}

fn retention(set: &Value, when: &str) -> bool {
    set["spec"]["persistentVolumeClaimRetentionPolicy"][when] == "Delete"
}

/// Creates the claims of `ordinal` that do not exist yet.
async fn ensure_claims(ctx: &Ctx, set: &Value, ordinal: usize) -> Result<(), ApiError> {
    let ns = set["metadata"]["namespace"].as_str().unwrap_or_default();
    let name = name_of(set);
    for template in set["spec"]["volumeClaimTemplates"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
    {
        let claim = claim_name(name_of(template), name, ordinal);
        if ctx.claims.get(ns, &claim).is_some() {
            continue;
        }
        let mut pvc = json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": {"name": claim, "namespace": ns,
                "labels": set["spec"]["selector"]["matchLabels"].clone()},
            "spec": template["spec"].clone()});
        if retention(set, "whenDeleted") {
            pvc["metadata"]["ownerReferences"] =
                json!([writes::controller_reference(set, "StatefulSet")]);
        }
        match ctx
            .objects
            .create(
                ctx.claims.resource(),
                ns,
                pvc,
                &WriteOptions::controller(MANAGER),
            )
            .await
        {
            Ok(written) => {
                ctx.recorder.record(
                    set,
                    EventType::Normal,
                    "SuccessfulCreate",
                    &format!(
                        "create Claim {claim} Pod {name}-{ordinal} in StatefulSet {name} success"
                    ),
                );
                ctx.claims.observe(written.object);
            }
            Err(e) if e.reason == Reason::AlreadyExists => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

async fn delete_claims(ctx: &Ctx, set: &Value, ordinal: usize) {
    let ns = set["metadata"]["namespace"].as_str().unwrap_or_default();
    for template in set["spec"]["volumeClaimTemplates"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
    {
        let claim = claim_name(name_of(template), name_of(set), ordinal);
        let _ = ctx
            .objects
            .delete(ctx.claims.resource(), ns, &claim, &DeleteOptions::default())
            .await;
    }
}

async fn delete_pod(ctx: &Ctx, set: &Value, pod: &Value) -> Result<(), ApiError> {
    if writes::delete(&ctx.objects, &ctx.pods, pod).await? {
        ctx.recorder.record(
            set,
            EventType::Normal,
            "SuccessfulDelete",
            &format!(
                "delete Pod {} in StatefulSet {} successful",
                name_of(pod),
                name_of(set)
            ),
        );
    }
    Ok(())
}

fn running_and_ready(pod: &Value) -> bool {
    pod["status"]["phase"] == "Running" && is_ready(pod) && !is_deleting(pod)
}

async fn reconcile(ctx: &Ctx, key: &ObjectKey) -> Result<Action, ApiError> {
    let Some(set) = ctx.sets.get(&key.namespace, &key.name) else {
        return Ok(Action::AwaitChange);
    };
    let ns = key.namespace.as_str();
    let name = name_of(&set).to_string();
    let set_uid = uid(&set).to_string();
    let replicas = set["spec"]["replicas"].as_i64().unwrap_or(1).max(0) as usize;
    let parallel = set["spec"]["podManagementPolicy"] == "Parallel";
    let revision = revision_of(&set, &name);

    // The set's pods by ordinal (including ones still terminating).
    let mut pods: BTreeMap<usize, Arc<Value>> = BTreeMap::new();
    for pod in ctx.pods.controlled_by(&set_uid) {
        if let Some(n) = ordinal(&name, name_of(&pod)) {
            pods.insert(n, pod);
        }
    }

    if !is_deleting(&set) {
        // Failed or finished pods are replaced.
        for pod in pods.values() {
            if is_terminal(pod) && !is_deleting(pod) {
                delete_pod(ctx, &set, pod).await?;
            }
        }
        // Scale up (and replace missing ordinals).
        for n in 0..replicas {
            match pods.get(&n) {
                None => {
                    ensure_claims(ctx, &set, n).await?;
                    let pod = pod_for(&set, n, &revision);
                    match ctx
                        .objects
                        .create(
                            ctx.pods.resource(),
                            ns,
                            pod,
                            &WriteOptions::controller(MANAGER),
                        )
                        .await
                    {
                        Ok(written) => {
                            ctx.recorder.record(
                                &set,
                                EventType::Normal,
                                "SuccessfulCreate",
                                &format!("create Pod {name}-{n} in StatefulSet {name} successful"),
                            );
                            ctx.pods.observe(written.object.clone());
                            pods.insert(n, written.object);
                        }
                        // The previous pod of this ordinal is still going away.
                        Err(e) if e.reason == Reason::AlreadyExists => {
                            return Ok(Action::Requeue(Duration::from_millis(200)));
                        }
                        Err(e) => return Err(e),
                    }
                    if !parallel {
                        break;
                    }
                }
                Some(pod) if !parallel && !running_and_ready(pod) => break,
                Some(_) => {}
            }
        }
        // Scale down: highest ordinal first; OrderedReady waits for the rest to be ready
        // and for each removal to finish.
        let extra: Vec<usize> = pods
            .keys()
            .copied()
            .filter(|n| *n >= replicas)
            .rev()
            .collect();
        let others_ready = pods
            .iter()
            .filter(|(n, _)| **n < replicas)
            .all(|(_, p)| running_and_ready(p));
        for n in extra {
            let pod = pods[&n].clone();
            if is_deleting(&pod) {
                if parallel {
                    continue;
                }
                break;
            }
            if !parallel && !others_ready {
                break;
            }
            delete_pod(ctx, &set, &pod).await?;
            if retention(&set, "whenScaled") {
                delete_claims(ctx, &set, n).await;
            }
            if !parallel {
                break;
            }
        }
        // Rolling update: the highest outdated ordinal at or above the partition, one at a
        // time, once every pod is running and ready.
        if set["spec"]["updateStrategy"]["type"] != "OnDelete" {
            let partition = set["spec"]["updateStrategy"]["rollingUpdate"]["partition"]
                .as_i64()
                .unwrap_or(0)
                .max(0) as usize;
            let all_ready =
                (0..replicas).all(|n| pods.get(&n).is_some_and(|p| running_and_ready(p)));
            if all_ready
                && let Some((_, outdated)) = pods
                    .iter()
                    .rev()
                    .filter(|(n, _)| **n < replicas && **n >= partition)
                    .find(|(_, p)| p["metadata"]["labels"][REVISION_LABEL] != revision.as_str())
            {
                delete_pod(ctx, &set, outdated).await?;
            }
        }
    }

    update_status(ctx, &set, &revision).await?;
    Ok(Action::AwaitChange)
}

async fn update_status(ctx: &Ctx, set: &Arc<Value>, revision: &str) -> Result<(), ApiError> {
    let pods: Vec<Arc<Value>> = ctx
        .pods
        .controlled_by(uid(set))
        .into_iter()
        .filter(|p| !is_deleting(p) && !is_terminal(p))
        .collect();
    let ready = pods.iter().filter(|p| is_ready(p)).count();
    let updated = pods
        .iter()
        .filter(|p| p["metadata"]["labels"][REVISION_LABEL] == revision)
        .count();
    let old_revision = set["status"]["currentRevision"]
        .as_str()
        .unwrap_or(revision)
        .to_string();
    let replicas = set["spec"]["replicas"].as_i64().unwrap_or(1).max(0) as usize;
    // Once every pod runs the new template, it is the current revision.
    let current_revision = if updated == pods.len() && pods.len() == replicas {
        revision.to_string()
    } else {
        old_revision
    };
    let current = pods
        .iter()
        .filter(|p| p["metadata"]["labels"][REVISION_LABEL] == current_revision.as_str())
        .count();
    let status = json!({
        "observedGeneration": set["metadata"]["generation"].as_i64().unwrap_or(1),
        "replicas": pods.len(),
        "readyReplicas": ready,
        "availableReplicas": ready,
        "currentReplicas": current,
        "updatedReplicas": updated,
        "currentRevision": current_revision,
        "updateRevision": revision,
        "collisionCount": 0,
    });
    writes::write_status(&ctx.objects, &ctx.sets, set, &status, MANAGER).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinals_and_claim_names() {
        assert_eq!(ordinal("web", "web-0"), Some(0));
        assert_eq!(ordinal("web", "web-12"), Some(12));
        assert_eq!(ordinal("web", "web-x"), None);
        assert_eq!(ordinal("web", "webby-1"), None);
        assert_eq!(claim_name("data", "web", 2), "data-web-2");
    }

    #[test]
    fn ordinal_pods_get_stable_names_hostnames_and_their_claims() {
        let set = json!({"apiVersion": "apps/v1", "metadata": {"name": "web", "namespace": "db", "uid": "u"},
            "spec": {"serviceName": "web-svc",
                "template": {"metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "c", "image": "i",
                        "volumeMounts": [{"name": "data", "mountPath": "/data"}]}]}},
                "volumeClaimTemplates": [{"metadata": {"name": "data"},
                    "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}]}});
        let pod = pod_for(&set, 3, "h1");
        assert_eq!(pod["metadata"]["name"], "web-3");
        assert!(pod["metadata"].get("generateName").is_none());
        assert_eq!(pod["metadata"]["labels"][POD_INDEX_LABEL], "3");
        assert_eq!(pod["metadata"]["labels"][REVISION_LABEL], "h1");
        assert_eq!(pod["spec"]["hostname"], "web-3");
        assert_eq!(pod["spec"]["subdomain"], "web-svc");
        assert_eq!(
            pod["spec"]["volumes"][0]["persistentVolumeClaim"]["claimName"],
            "data-web-3"
        );
    }
}
