//! The Deployment controller: one ReplicaSet per pod template (named by the template's hash),
//! rolled from old to new by the RollingUpdate or Recreate strategy, with revisions that
//! `kubectl rollout history|undo` read, proportional scaling mid-rollout, `paused`,
//! `revisionHistoryLimit` cleanup and the Available/Progressing conditions.
//!
//! The arithmetic is in [`arith`] (with a worked example), the status in [`status`].

pub mod arith;
pub mod status;

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use serde_json::{Map, Value, json};

use super::events::{EventType, Recorder};
use super::informer::{Cache, Informers, controller_uid, is_deleting, owner_key, uid};
use super::pods::{availability, is_active};
use super::runner::{self, Action, Queue};
use super::writes;
use crate::api::error::{ApiError, Reason};
use crate::api::objects::{Objects, WriteOptions, name_of};
use crate::api::resources::{Resource, by_plural};
use crate::api::selector::LabelSelector;
use crate::store::ObjectKey;
use status::Progress;

const MANAGER: &str = "deployment-controller";
/// The label that ties a ReplicaSet and its pods to one template.
pub const HASH_LABEL: &str = "pod-template-hash";
/// A ReplicaSet's (and its Deployment's) revision.
pub const REVISION: &str = "deployment.kubernetes.io/revision";
const DESIRED: &str = "deployment.kubernetes.io/desired-replicas";
const MAX_REPLICAS: &str = "deployment.kubernetes.io/max-replicas";
const REVISION_HISTORY: &str = "deployment.kubernetes.io/revision-history";
/// Deployment annotations not copied onto its ReplicaSets.
const NOT_COPIED: &[&str] = &[
    "kubectl.kubernetes.io/last-applied-configuration",
    REVISION,
    REVISION_HISTORY,
    DESIRED,
    MAX_REPLICAS,
    "deprecated.deployment.rollback.to",
];

struct Ctx {
    objects: Objects,
    deployments: Arc<Cache>,
    replicasets: Arc<Cache>,
    pods: Arc<Cache>,
    recorder: Recorder,
    d_resource: &'static Resource,
    rs_resource: &'static Resource,
}

/// Registers the controller's caches and handlers and starts its workers.
pub fn register(objects: &Objects, informers: &mut Informers) {
    let d_resource = by_plural("apps", "v1", "deployments").expect("deployments are served");
    let rs_resource = by_plural("apps", "v1", "replicasets").expect("replicasets are served");
    let pod_resource = by_plural("", "v1", "pods").expect("pods are served");
    let queue = Queue::default();
    let deployments = informers.queue_changes(d_resource, &queue);
    informers.queue_owners(rs_resource, "Deployment", d_resource, &queue);
    informers.queue_adopters(rs_resource, d_resource, &queue);
    let replicasets = informers.cache(rs_resource);
    let pods = informers.cache(pod_resource);
    {
        // Rollouts count actual pods (surge, availability) and Recreate waits for old pods to
        // be gone, so any change to a Deployment's pod wakes the Deployment.
        let queue = queue.clone();
        let replicasets = replicasets.clone();
        informers.on(pod_resource, move |change| {
            let owner = owner_key(change.object, "ReplicaSet", rs_resource)
                .and_then(|rs| replicasets.get(&rs.namespace, &rs.name))
                .and_then(|rs| owner_key(&rs, "Deployment", d_resource));
            if let Some(owner) = owner {
                queue.add(owner);
            }
        });
    }

    let ctx = Arc::new(Ctx {
        recorder: Recorder::new(objects.clone(), MANAGER, None),
        objects: objects.clone(),
        deployments: deployments.clone(),
        replicasets,
        pods,
        d_resource,
        rs_resource,
    });
    runner::start(MANAGER, queue, 4, ctx, deployments, |ctx, key| async move {
        reconcile(&ctx, &key).await
    });
}

fn annotation<'a>(object: &'a Value, name: &str) -> Option<&'a str> {
    object["metadata"]["annotations"][name].as_str()
}

fn revision(rs: &Value) -> i64 {
    annotation(rs, REVISION)
        .and_then(|r| r.parse().ok())
        .unwrap_or(0)
}

fn spec_replicas(rs: &Value) -> i64 {
    rs["spec"]["replicas"].as_i64().unwrap_or(1)
}

/// The template without the hash label, for comparing a ReplicaSet with its Deployment.
fn without_hash(template: &Value) -> Value {
    let mut t = template.clone();
    if let Some(labels) = t
        .pointer_mut("/metadata/labels")
        .and_then(Value::as_object_mut)
    {
        labels.remove(HASH_LABEL);
        if labels.is_empty() {
            t["metadata"]
                .as_object_mut()
                .expect("metadata")
                .remove("labels");
        }
    }
    t
}

/// The annotations a Deployment's ReplicaSet carries: the Deployment's own (change-cause
/// included) plus revision and replica bookkeeping.
fn rs_annotations(d: &Value, revision: i64, replicas: i64, surge: i64) -> Map<String, Value> {
    let mut annotations: Map<String, Value> = d["metadata"]["annotations"]
        .as_object()
        .map(|a| {
            a.iter()
                .filter(|(k, _)| !NOT_COPIED.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        })
        .unwrap_or_default();
    annotations.insert(REVISION.into(), json!(revision.to_string()));
    annotations.insert(DESIRED.into(), json!(replicas.to_string()));
    annotations.insert(MAX_REPLICAS.into(), json!((replicas + surge).to_string()));
    annotations
}

/// Changes a ReplicaSet's replicas (and bookkeeping annotations) and records the event.
async fn scale_rs(
    ctx: &Ctx,
    d: &Value,
    rs: &Value,
    to: i64,
    surge: i64,
) -> Result<Arc<Value>, ApiError> {
    let from = spec_replicas(rs);
    let replicas = d["spec"]["replicas"].as_i64().unwrap_or(1);
    let ns = rs["metadata"]["namespace"].as_str().unwrap_or_default();
    let rs_uid = uid(rs).to_string();
    let written = ctx
        .objects
        .modify(ctx.rs_resource, ns, name_of(rs), None, MANAGER, |current| {
            if uid(current) != rs_uid {
                return false;
            }
            let same = spec_replicas(current) == to
                && annotation(current, DESIRED) == Some(replicas.to_string().as_str())
                && annotation(current, MAX_REPLICAS)
                    == Some((replicas + surge).to_string().as_str());
            if same {
                return false;
            }
            current["spec"]["replicas"] = json!(to);
            let annotations = &mut current["metadata"]["annotations"];
            if !annotations.is_object() {
                *annotations = json!({});
            }
            annotations[DESIRED] = json!(replicas.to_string());
            annotations[MAX_REPLICAS] = json!((replicas + surge).to_string());
            true
        })
        .await?;
    let Some(written) = written else {
        return Ok(Arc::new(rs.clone()));
    };
    ctx.replicasets.observe(written.clone());
    if from != to {
        let verb = if to > from { "up" } else { "down" };
        ctx.recorder.record(
            d,
            EventType::Normal,
            "ScalingReplicaSet",
            &format!(
                "Scaled {verb} replica set {} from {from} to {to}",
                name_of(rs)
            ),
        );
    }
    Ok(written)
}

/// Finds the ReplicaSet for the current template, creating it when `create` is set and it
/// does not exist; bumps its revision above the old ones (a rollback makes an old one new).
async fn new_replicaset(
    ctx: &Ctx,
    d: &Value,
    owned: &[Arc<Value>],
    surge: i64,
    initial: i64,
) -> Result<(Option<Arc<Value>>, Option<Progress>), ApiError> {
    let template = without_hash(&d["spec"]["template"]);
    let max_old = owned
        .iter()
        .filter(|rs| without_hash(&rs["spec"]["template"]) != template)
        .map(|rs| revision(rs))
        .max()
        .unwrap_or(0);
    let next = max_old + 1;
    let replicas = d["spec"]["replicas"].as_i64().unwrap_or(1);
    let ns = d["metadata"]["namespace"].as_str().unwrap_or_default();

    if let Some(existing) = owned
        .iter()
        .filter(|rs| without_hash(&rs["spec"]["template"]) == template)
        .min_by_key(|rs| {
            rs["metadata"]["creationTimestamp"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
    {
        let mut current = existing.clone();
        // One write brings the found ReplicaSet in step: minReadySeconds (not part of the
        // template) and a revision above the old ones (a rollback makes an old one new).
        let min_ready = d["spec"]["minReadySeconds"].as_i64().unwrap_or(0);
        let previous = revision(existing);
        if existing["spec"]["minReadySeconds"].as_i64().unwrap_or(0) != min_ready || previous < next
        {
            let rs_uid = uid(existing).to_string();
            if let Some(updated) = ctx
                .objects
                .modify(
                    ctx.rs_resource,
                    ns,
                    name_of(existing),
                    None,
                    MANAGER,
                    |rs| {
                        if uid(rs) != rs_uid {
                            return false;
                        }
                        rs["spec"]["minReadySeconds"] = json!(min_ready);
                        if previous < next {
                            let annotations = &mut rs["metadata"]["annotations"];
                            if !annotations.is_object() {
                                *annotations = json!({});
                            }
                            annotations[REVISION] = json!(next.to_string());
                            if previous > 0 {
                                let history = annotations[REVISION_HISTORY]
                                    .as_str()
                                    .map(|h| format!("{h},{previous}"))
                                    .unwrap_or_else(|| previous.to_string());
                                annotations[REVISION_HISTORY] = json!(history);
                            }
                        }
                        true
                    },
                )
                .await?
            {
                ctx.replicasets.observe(updated.clone());
                current = updated;
            }
        }
        set_deployment_revision(ctx, d, revision(&current)).await?;
        return Ok((
            Some(current.clone()),
            Some(Progress::Found(name_of(&current).into())),
        ));
    }

    let mut collisions = d["status"]["collisionCount"].as_i64();
    for _ in 0..5 {
        let hash = arith::template_hash(&template, collisions);
        let mut rs_template = d["spec"]["template"].clone();
        rs_template["metadata"]["labels"][HASH_LABEL] = json!(hash);
        let mut selector = d["spec"]["selector"].clone();
        selector["matchLabels"][HASH_LABEL] = json!(hash);
        let mut labels = d["spec"]["template"]["metadata"]["labels"].clone();
        labels[HASH_LABEL] = json!(hash);
        let name = format!("{}-{hash}", name_of(d));
        let rs = json!({
            "apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {
                "name": name, "namespace": ns, "labels": labels,
                "annotations": rs_annotations(d, next, replicas, surge),
                "ownerReferences": [writes::controller_reference(d, "Deployment")],
            },
            "spec": {"replicas": initial, "minReadySeconds": d["spec"]["minReadySeconds"].as_i64().unwrap_or(0),
                "selector": selector, "template": rs_template},
        });
        match ctx
            .objects
            .create(ctx.rs_resource, ns, rs, &WriteOptions::controller(MANAGER))
            .await
        {
            Ok(written) => {
                ctx.replicasets.observe(written.object.clone());
                if initial > 0 {
                    ctx.recorder.record(
                        d,
                        EventType::Normal,
                        "ScalingReplicaSet",
                        &format!("Scaled up replica set {name} from 0 to {initial}"),
                    );
                }
                set_deployment_revision(ctx, d, next).await?;
                return Ok((Some(written.object), Some(Progress::Created(name))));
            }
            Err(e) if e.reason == Reason::AlreadyExists => {
                // Same name, different template (or not ours): a hash collision.
                if let Some(other) = ctx.replicasets.get(ns, &name)
                    && controller_uid(&other) == Some(uid(d))
                    && without_hash(&other["spec"]["template"]) == template
                {
                    return Ok((Some(other), None));
                }
                collisions = Some(collisions.unwrap_or(0) + 1);
                let count = collisions;
                let d_uid = uid(d).to_string();
                ctx.objects
                    .modify(
                        ctx.d_resource,
                        ns,
                        name_of(d),
                        Some("status"),
                        MANAGER,
                        |d| {
                            if uid(d) != d_uid {
                                return false;
                            }
                            d["status"]["collisionCount"] = json!(count);
                            true
                        },
                    )
                    .await?;
            }
            Err(e) => return Err(e),
        }
    }
    Err(ApiError::internal(
        "could not find a free ReplicaSet name after 5 hash collisions",
    ))
}

async fn set_deployment_revision(ctx: &Ctx, d: &Value, revision: i64) -> Result<(), ApiError> {
    if annotation(d, REVISION) == Some(revision.to_string().as_str()) {
        return Ok(());
    }
    let ns = d["metadata"]["namespace"].as_str().unwrap_or_default();
    let d_uid = uid(d).to_string();
    if let Some(updated) = ctx
        .objects
        .modify(ctx.d_resource, ns, name_of(d), None, MANAGER, |current| {
            if uid(current) != d_uid {
                return false;
            }
            let annotations = &mut current["metadata"]["annotations"];
            if !annotations.is_object() {
                *annotations = json!({});
            }
            if annotations[REVISION] == revision.to_string().as_str() {
                return false;
            }
            annotations[REVISION] = json!(revision.to_string());
            true
        })
        .await?
    {
        ctx.deployments.observe(updated);
    }
    Ok(())
}

/// A ReplicaSet's size for the surge limit: its spec, or more while it still has more
/// active pods (a scale-down not carried out yet).
fn size_now(ctx: &Ctx, rs: &Value) -> i64 {
    let active = ctx
        .pods
        .controlled_by(uid(rs))
        .iter()
        .filter(|p| is_active(p))
        .count() as i64;
    spec_replicas(rs).max(active)
}

/// A ReplicaSet's available pods, counted from the pods themselves (its status may lag).
fn available_now(ctx: &Ctx, rs: &Value) -> i64 {
    let min_ready = rs["spec"]["minReadySeconds"].as_i64().unwrap_or(0);
    let now = Utc::now();
    ctx.pods
        .controlled_by(uid(rs))
        .iter()
        .filter(|p| is_active(p) && availability(p, min_ready, now).0)
        .count() as i64
}

/// Old ReplicaSets sorted oldest first.
fn oldest_first(mut rss: Vec<Arc<Value>>) -> Vec<Arc<Value>> {
    rss.sort_by_key(|rs| {
        (
            rs["metadata"]["creationTimestamp"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            name_of(rs).to_string(),
        )
    });
    rss
}

async fn reconcile(ctx: &Ctx, key: &ObjectKey) -> Result<Action, ApiError> {
    let Some(d) = ctx.deployments.get(&key.namespace, &key.name) else {
        return Ok(Action::AwaitChange);
    };
    let Ok(selector) = LabelSelector::from_json(&d["spec"]["selector"]) else {
        return Ok(Action::AwaitChange);
    };
    if selector.is_empty() {
        return Ok(Action::AwaitChange);
    }
    let owned = writes::claim(
        &ctx.objects,
        &ctx.replicasets,
        &d,
        "Deployment",
        &selector,
        MANAGER,
    )
    .await;
    let replicas = d["spec"]["replicas"].as_i64().unwrap_or(1).max(0);
    let recreate = d["spec"]["strategy"]["type"] == "Recreate";
    let rolling = &d["spec"]["strategy"]["rollingUpdate"];
    let (surge, unavailable) = if recreate {
        (0, replicas)
    } else {
        arith::fenceposts(
            rolling.get("maxSurge").unwrap_or(&json!("25%")),
            rolling.get("maxUnavailable").unwrap_or(&json!("25%")),
            replicas,
        )
    };
    let template = without_hash(&d["spec"]["template"]);
    let is_new = |rs: &Value| without_hash(&rs["spec"]["template"]) == template;
    let old: Vec<Arc<Value>> =
        oldest_first(owned.iter().filter(|rs| !is_new(rs)).cloned().collect());

    let paused = d["spec"]["paused"].as_bool().unwrap_or(false);
    let mut progress = None;
    if !is_deleting(&d) {
        if paused {
            // Paused: scale what exists, roll nothing.
            let new = owned.iter().find(|rs| is_new(rs)).cloned();
            scale_proportionally(ctx, &d, new.as_deref(), &old, replicas, surge).await?;
        } else if recreate {
            progress = recreate_step(ctx, &d, &owned, &old, replicas).await?;
        } else {
            progress = rolling_step(ctx, &d, &owned, &old, replicas, surge, unavailable).await?;
        }
    }

    // Status from the ReplicaSets as cached now.
    let current: Vec<Arc<Value>> = ctx
        .replicasets
        .controlled_by(uid(&d))
        .into_iter()
        .filter(|rs| selector.matches(rs))
        .collect();
    let new = current.iter().find(|rs| is_new(rs)).cloned();
    let refs: Vec<&Value> = current.iter().map(|rs| rs.as_ref()).collect();
    let totals = status::totals(&refs, new.as_deref());
    let new_name = new
        .as_ref()
        .map(|rs| name_of(rs).to_string())
        .unwrap_or_default();
    let progress = progress.unwrap_or_else(|| {
        let before = &d["status"];
        let moved = totals.updated > before["updatedReplicas"].as_i64().unwrap_or(0)
            || totals.available > before["availableReplicas"].as_i64().unwrap_or(0)
            || totals.ready > before["readyReplicas"].as_i64().unwrap_or(0)
            || totals.replicas - totals.updated
                < before["replicas"].as_i64().unwrap_or(0)
                    - before["updatedReplicas"].as_i64().unwrap_or(0);
        if moved {
            Progress::Updated(new_name.clone())
        } else {
            Progress::Still(new_name.clone())
        }
    });
    let (status, recheck) = status::compute(&d, &totals, unavailable, &progress, Utc::now());
    if d["status"] != status {
        let ns = d["metadata"]["namespace"].as_str().unwrap_or_default();
        let d_uid = uid(&d).to_string();
        match ctx
            .objects
            .modify(
                ctx.d_resource,
                ns,
                name_of(&d),
                Some("status"),
                MANAGER,
                |current| {
                    if uid(current) != d_uid {
                        return false;
                    }
                    let mut status = status.clone();
                    if let Some(n) = current["status"]["collisionCount"].as_i64() {
                        status["collisionCount"] = json!(n);
                    }
                    current["status"] = status;
                    true
                },
            )
            .await
        {
            Ok(Some(updated)) => {
                ctx.deployments.observe(updated);
            }
            Ok(None) => {}
            Err(e) if e.reason == Reason::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    if !paused && status::complete(replicas, &totals) {
        cleanup(ctx, &d, &old).await;
    }
    Ok(match recheck {
        Some(wait) => Action::Requeue(wait + Duration::from_millis(100)),
        None => Action::AwaitChange,
    })
}

/// One step of a rolling update: grow the new ReplicaSet within the surge, else shrink old
/// ones within the availability floor.
async fn rolling_step(
    ctx: &Ctx,
    d: &Value,
    owned: &[Arc<Value>],
    old: &[Arc<Value>],
    replicas: i64,
    surge: i64,
    unavailable: i64,
) -> Result<Option<Progress>, ApiError> {
    let total: i64 = owned.iter().map(|rs| spec_replicas(rs)).sum();
    let existing_new = owned
        .iter()
        .find(|rs| without_hash(&rs["spec"]["template"]) == without_hash(&d["spec"]["template"]));
    // A scale of the Deployment mid-rollout is spread over the ReplicaSets.
    if is_scaling_event(owned, replicas) && existing_new.is_some() {
        scale_proportionally(
            ctx,
            d,
            existing_new.map(|rs| rs.as_ref()),
            old,
            replicas,
            surge,
        )
        .await?;
        return Ok(None);
    }
    let initial = arith::new_rs_replicas(replicas, surge, total, 0);
    let (new, progress) = new_replicaset(ctx, d, owned, surge, initial).await?;
    let Some(new) = new else {
        return Ok(progress);
    };
    // Counts come from the pods as well as the specs: a ReplicaSet told to shrink still has
    // its pods until it deletes them, and its status lags its pods.
    let new_now = spec_replicas(&new);
    let old_sizes: i64 = old.iter().map(|rs| size_now(ctx, rs)).sum();
    let total = old_sizes + size_now(ctx, &new);
    let target = if new_now > replicas {
        replicas
    } else {
        arith::new_rs_replicas(replicas, surge, total, new_now)
    };
    if target != new_now {
        scale_rs(ctx, d, &new, target, surge).await?;
        return Ok(progress.or(Some(Progress::Updated(name_of(&new).into()))));
    }

    // Scale down old ReplicaSets: unhealthy pods first, then down to the availability floor.
    if old.iter().all(|rs| spec_replicas(rs) == 0) {
        return Ok(progress);
    }
    let new_available = available_now(ctx, &new);
    let mut budget = arith::max_scale_down(replicas, unavailable, total, new_now, new_available);
    if budget <= 0 {
        return Ok(progress);
    }
    let mut scaled = false;
    let mut old_available = 0;
    let mut old_now = Vec::with_capacity(old.len());
    for rs in old {
        let size = spec_replicas(rs);
        let available = available_now(ctx, rs).min(size);
        let cut = (size - available).min(budget).max(0);
        if cut > 0 {
            let scaled_rs = scale_rs(ctx, d, rs, size - cut, surge).await?;
            budget -= cut;
            scaled = true;
            old_now.push(scaled_rs);
        } else {
            old_now.push(rs.clone());
        }
        old_available += available;
    }
    // Then healthy old pods, keeping `replicas - unavailable` available in total.
    let mut allowed = (old_available + new_available - (replicas - unavailable)).min(budget);
    for rs in &old_now {
        if allowed <= 0 {
            break;
        }
        let size = spec_replicas(rs);
        let cut = size.min(allowed);
        if cut > 0 {
            scale_rs(ctx, d, rs, size - cut, surge).await?;
            allowed -= cut;
            scaled = true;
        }
    }
    Ok(if scaled {
        progress.or(Some(Progress::Updated(name_of(&new).into())))
    } else {
        progress
    })
}

/// Recreate: old ReplicaSets to zero, wait until their pods are gone, then the new one.
async fn recreate_step(
    ctx: &Ctx,
    d: &Value,
    owned: &[Arc<Value>],
    old: &[Arc<Value>],
    replicas: i64,
) -> Result<Option<Progress>, ApiError> {
    for rs in old {
        if spec_replicas(rs) > 0 {
            scale_rs(ctx, d, rs, 0, 0).await?;
        }
    }
    let old_pods_left = old
        .iter()
        .any(|rs| !ctx.pods.controlled_by(uid(rs)).is_empty());
    if old_pods_left {
        return Ok(None);
    }
    let (new, progress) = new_replicaset(ctx, d, owned, 0, replicas).await?;
    if let Some(new) = new
        && spec_replicas(&new) != replicas
    {
        scale_rs(ctx, d, &new, replicas, 0).await?;
    }
    Ok(progress)
}

/// Whether `replicas` differs from what the active ReplicaSets were last sized for.
fn is_scaling_event(owned: &[Arc<Value>], replicas: i64) -> bool {
    owned
        .iter()
        .filter(|rs| spec_replicas(rs) > 0)
        .any(|rs| annotation(rs, DESIRED).and_then(|v| v.parse::<i64>().ok()) != Some(replicas))
}

/// Spreads `replicas` (plus the surge while a rollout is under way) over the ReplicaSets in
/// proportion to their sizes; with one active ReplicaSet it simply gets `replicas`.
async fn scale_proportionally(
    ctx: &Ctx,
    d: &Value,
    new: Option<&Value>,
    old: &[Arc<Value>],
    replicas: i64,
    surge: i64,
) -> Result<(), ApiError> {
    let mut all: Vec<&Value> = new.into_iter().collect();
    // Newest old ones first: they get the remainder after the new one.
    all.extend(old.iter().rev().map(|rs| rs.as_ref()));
    let active: Vec<&Value> = all
        .iter()
        .copied()
        .filter(|rs| spec_replicas(rs) > 0)
        .collect();
    let targets: Vec<(&Value, i64)> = if active.len() <= 1 {
        let only = active.first().copied().or(new);
        match only {
            Some(rs) => vec![(rs, replicas)],
            None => Vec::new(),
        }
    } else {
        let allowed = if replicas > 0 { replicas + surge } else { 0 };
        let sizes: Vec<i64> = active.iter().map(|rs| spec_replicas(rs)).collect();
        active
            .iter()
            .copied()
            .zip(arith::proportional(&sizes, allowed))
            .collect()
    };
    for (rs, to) in targets {
        scale_rs(ctx, d, rs, to, surge).await?;
    }
    Ok(())
}

/// Deletes the oldest empty old ReplicaSets beyond `revisionHistoryLimit` (default 10).
async fn cleanup(ctx: &Ctx, d: &Value, old: &[Arc<Value>]) {
    let limit = d["spec"]["revisionHistoryLimit"]
        .as_i64()
        .unwrap_or(10)
        .max(0) as usize;
    let mut empty: Vec<&Arc<Value>> = old
        .iter()
        .filter(|rs| {
            spec_replicas(rs) == 0
                && rs["status"]["replicas"].as_i64().unwrap_or(0) == 0
                && !is_deleting(rs)
        })
        .collect();
    if empty.len() <= limit {
        return;
    }
    empty.sort_by_key(|rs| revision(rs));
    let excess = empty.len() - limit;
    for rs in empty.into_iter().take(excess) {
        if let Err(error) = writes::delete(&ctx.objects, &ctx.replicasets, rs).await {
            tracing::debug!(%error, rs = name_of(rs), "history cleanup failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_label_is_ignored_when_comparing_templates() {
        let d = json!({"metadata": {"labels": {"app": "web"}}, "spec": {"containers": []}});
        let rs = json!({"metadata": {"labels": {"app": "web", "pod-template-hash": "abc"}},
            "spec": {"containers": []}});
        assert_eq!(without_hash(&rs), d);
    }

    #[test]
    fn replicasets_carry_the_deployments_annotations_but_not_kubectls_bookkeeping() {
        let d = json!({"metadata": {"annotations": {
            "kubernetes.io/change-cause": "image v2",
            "kubectl.kubernetes.io/last-applied-configuration": "{}",
            "deployment.kubernetes.io/revision": "4"}}});
        let a = rs_annotations(&d, 5, 3, 1);
        assert_eq!(a["kubernetes.io/change-cause"], "image v2");
        assert!(!a.contains_key("kubectl.kubernetes.io/last-applied-configuration"));
        assert_eq!(a[REVISION], "5");
        assert_eq!(a[DESIRED], "3");
        assert_eq!(a[MAX_REPLICAS], "4");
    }
}
