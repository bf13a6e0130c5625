//! The ReplicaSet controller: keeps `spec.replicas` active pods matching the selector, adopts
//! matching orphans, releases pods whose labels stop matching, and maintains the status.
//!
//! Pods it creates or deletes are recorded in the pod cache at once (write-through), so a
//! reconcile that runs before the watch catches up never creates or deletes twice.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use serde_json::{Value, json};

use super::events::{EventType, Recorder};
use super::informer::{Cache, Informers, is_deleting, uid};
use super::pods::{availability, deletion_rank, is_active, is_ready};
use super::runner::{self, Action, Queue};
use super::writes;
use crate::api::error::ApiError;
use crate::api::objects::{Objects, WriteOptions, name_of, timestamp};
use crate::api::resources::by_plural;
use crate::api::selector::LabelSelector;
use crate::store::ObjectKey;

const MANAGER: &str = "replicaset-controller";
/// Most pods created or deleted in one reconcile (Kubernetes: 500).
const BURST: usize = 500;

/// What the reconcile needs.
struct Ctx {
    objects: Objects,
    replicasets: Arc<Cache>,
    pods: Arc<Cache>,
    recorder: Recorder,
}

/// Registers the controller's caches and handlers with `informers` and starts its workers.
pub fn register(objects: &Objects, informers: &mut Informers) {
    let rs_resource = by_plural("apps", "v1", "replicasets").expect("replicasets are served");
    let pod_resource = by_plural("", "v1", "pods").expect("pods are served");
    let queue = Queue::default();
    let replicasets = informers.queue_changes(rs_resource, &queue);
    informers.queue_owners(pod_resource, "ReplicaSet", rs_resource, &queue);
    informers.queue_adopters(pod_resource, rs_resource, &queue);
    let pods = informers.cache(pod_resource);

    let ctx = Arc::new(Ctx {
        recorder: Recorder::new(objects.clone(), MANAGER, None),
        objects: objects.clone(),
        replicasets: replicasets.clone(),
        pods,
    });
    runner::start(MANAGER, queue, 4, ctx, replicasets, |ctx, key| async move {
        reconcile(&ctx, &key).await
    });
}

/// The pod a ReplicaSet creates from its template.
pub fn pod_from_template(owner: &Value, owner_kind: &str, template: &Value) -> Value {
    let mut metadata = json!({
        "generateName": format!("{}-", name_of(owner)),
        "namespace": owner["metadata"]["namespace"],
        "ownerReferences": [writes::controller_reference(owner, owner_kind)],
    });
    for field in ["labels", "annotations"] {
        if let Some(value) = template.pointer(&format!("/metadata/{field}"))
            && value.is_object()
        {
            metadata[field] = value.clone();
        }
    }
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": template["spec"]})
}

/// Status counts of a ReplicaSet's active pods.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Active pods.
    pub replicas: i64,
    /// Active pods whose labels include every template label.
    pub fully_labeled: i64,
    /// Active pods that are Ready.
    pub ready: i64,
    /// Active pods Ready for at least `minReadySeconds`.
    pub available: i64,
}

/// Counts `pods` (the active ones) and says when the next one becomes available by time.
pub fn count(
    pods: &[Arc<Value>],
    template_labels: &Value,
    min_ready_seconds: i64,
) -> (Counts, Option<Duration>) {
    let now = Utc::now();
    let mut counts = Counts::default();
    let mut next: Option<Duration> = None;
    for pod in pods {
        counts.replicas += 1;
        let labels = &pod["metadata"]["labels"];
        let fully = template_labels
            .as_object()
            .is_none_or(|want| want.iter().all(|(k, v)| &labels[k] == v));
        if fully {
            counts.fully_labeled += 1;
        }
        if is_ready(pod) {
            counts.ready += 1;
        }
        let (available, wait) = availability(pod, min_ready_seconds, now);
        if available {
            counts.available += 1;
        }
        if let Some(wait) = wait {
            next = Some(next.map_or(wait, |n| n.min(wait)));
        }
    }
    (counts, next)
}

/// Creates `n` pods in slow-start batches (1, 2, 4, ...), stopping at the first failure.
async fn create_pods(ctx: &Ctx, rs: &Value, n: usize) -> Result<(), ApiError> {
    let namespace = rs["metadata"]["namespace"].as_str().unwrap_or_default();
    let template = &rs["spec"]["template"];
    let options = WriteOptions::controller(MANAGER);
    let mut left = n;
    let mut batch = 1;
    while left > 0 {
        let size = batch.min(left);
        let creates = (0..size).map(|_| {
            let pod = pod_from_template(rs, "ReplicaSet", template);
            ctx.objects
                .create(ctx.pods.resource(), namespace, pod, &options)
        });
        let results = futures::future::join_all(creates).await;
        let mut failure = None;
        for result in results {
            if let Err(error) = writes::note_create(&ctx.recorder, &ctx.pods, rs, result) {
                failure = Some(error);
            }
        }
        if let Some(error) = failure {
            return Err(error);
        }
        left -= size;
        batch *= 2;
    }
    Ok(())
}

/// Deletes the `n` least valuable of `active`.
async fn delete_pods(ctx: &Ctx, rs: &Value, mut active: Vec<Arc<Value>>, n: usize) {
    active.sort_by_cached_key(|p| deletion_rank(p));
    let deletes = active
        .into_iter()
        .take(n)
        .map(|pod| async move { (writes::delete(&ctx.objects, &ctx.pods, &pod).await, pod) });
    for (result, pod) in futures::future::join_all(deletes).await {
        match result {
            Ok(true) => ctx.recorder.record(
                rs,
                EventType::Normal,
                "SuccessfulDelete",
                &format!("Deleted pod: {}", name_of(&pod)),
            ),
            Ok(false) => {}
            Err(error) => ctx.recorder.record(
                rs,
                EventType::Warning,
                "FailedDelete",
                &format!("Error deleting: {}", error.message),
            ),
        }
    }
}

async fn reconcile(ctx: &Ctx, key: &ObjectKey) -> Result<Action, ApiError> {
    let Some(rs) = ctx.replicasets.get(&key.namespace, &key.name) else {
        return Ok(Action::AwaitChange);
    };
    let Ok(selector) = LabelSelector::from_json(&rs["spec"]["selector"]) else {
        return Ok(Action::AwaitChange);
    };
    let replicas = rs["spec"]["replicas"].as_i64().unwrap_or(1).max(0) as usize;
    let owned = writes::claim(
        &ctx.objects,
        &ctx.pods,
        &rs,
        "ReplicaSet",
        &selector,
        MANAGER,
    )
    .await;
    let active: Vec<Arc<Value>> = owned.into_iter().filter(|p| is_active(p)).collect();

    let mut create_error = None;
    if !is_deleting(&rs) {
        if active.len() < replicas {
            let n = (replicas - active.len()).min(BURST);
            create_error = create_pods(ctx, &rs, n).await.err();
        } else if active.len() > replicas {
            let n = (active.len() - replicas).min(BURST);
            delete_pods(ctx, &rs, active, n).await;
        }
    }

    let active: Vec<Arc<Value>> = ctx
        .pods
        .controlled_by(uid(&rs))
        .into_iter()
        .filter(|p| is_active(p) && selector.matches(p))
        .collect();
    let min_ready = rs["spec"]["minReadySeconds"].as_i64().unwrap_or(0);
    let (counts, next_available) = count(
        &active,
        &rs["spec"]["template"]["metadata"]["labels"],
        min_ready,
    );
    update_status(ctx, &rs, &counts, create_error.as_ref()).await?;
    if let Some(error) = create_error {
        return Err(error);
    }
    Ok(match next_available {
        Some(wait) => Action::Requeue(wait + Duration::from_millis(50)),
        None => Action::AwaitChange,
    })
}

/// The status a ReplicaSet should have, given its current one (conditions keep their
/// transition times when unchanged).
fn desired_status(rs: &Value, counts: &Counts, create_error: Option<&ApiError>) -> Value {
    let mut status = json!({
        "replicas": counts.replicas,
        "fullyLabeledReplicas": counts.fully_labeled,
        "readyReplicas": counts.ready,
        "availableReplicas": counts.available,
        "observedGeneration": rs["metadata"]["generation"].as_i64().unwrap_or(1),
    });
    let previous = rs["status"]["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == "ReplicaFailure"))
        .cloned();
    if let Some(error) = create_error {
        let condition = match previous {
            Some(mut c) if c["message"] == error.message.as_str() => {
                c["status"] = json!("True");
                c
            }
            _ => json!({"type": "ReplicaFailure", "status": "True", "reason": "FailedCreate",
                "message": error.message, "lastTransitionTime": timestamp(Utc::now())}),
        };
        status["conditions"] = json!([condition]);
    }
    // Kubernetes omits zero counts; kubectl treats a missing count as 0.
    for field in ["fullyLabeledReplicas", "readyReplicas", "availableReplicas"] {
        if status[field] == 0 {
            status.as_object_mut().expect("object").remove(field);
        }
    }
    status
}

async fn update_status(
    ctx: &Ctx,
    rs: &Arc<Value>,
    counts: &Counts,
    create_error: Option<&ApiError>,
) -> Result<(), ApiError> {
    let status = desired_status(rs, counts, create_error);
    writes::write_status(&ctx.objects, &ctx.replicasets, rs, &status, MANAGER).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pods_from_a_template_carry_its_labels_and_the_controller_reference() {
        let rs = json!({"apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": "web", "namespace": "shop", "uid": "u1"},
            "spec": {"template": {"metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "c", "image": "hello:v1"}]}}}});
        let pod = pod_from_template(&rs, "ReplicaSet", &rs["spec"]["template"]);
        assert_eq!(pod["metadata"]["generateName"], "web-");
        assert_eq!(pod["metadata"]["namespace"], "shop");
        assert_eq!(pod["metadata"]["labels"]["app"], "web");
        let owner = &pod["metadata"]["ownerReferences"][0];
        assert_eq!(owner["uid"], "u1");
        assert_eq!(owner["controller"], true);
        assert_eq!(owner["blockOwnerDeletion"], true);
        assert_eq!(pod["spec"]["containers"][0]["image"], "hello:v1");
    }

    #[test]
    fn counts_distinguish_labeled_ready_and_available() {
        let ready = |name: &str, since: &str, labels: Value| {
            Arc::new(json!({"metadata": {"name": name, "labels": labels},
                "status": {"phase": "Running", "conditions": [
                    {"type": "Ready", "status": "True", "lastTransitionTime": since}]}}))
        };
        let long_ago = "2020-01-01T00:00:00Z";
        let just_now = timestamp(Utc::now());
        let pods = vec![
            ready("a", long_ago, json!({"app": "web", "tier": "f"})),
            ready("b", &just_now, json!({"app": "web", "tier": "f"})),
            Arc::new(json!({"metadata": {"name": "c", "labels": {"app": "web"}},
                "status": {"phase": "Pending"}})),
        ];
        let (counts, next) = count(&pods, &json!({"app": "web", "tier": "f"}), 30);
        assert_eq!(
            counts,
            Counts {
                replicas: 3,
                fully_labeled: 2,
                ready: 2,
                available: 1
            }
        );
        assert!(next.is_some_and(|d| d <= Duration::from_secs(30)));
    }

    #[test]
    fn zero_counts_are_omitted_and_failures_become_a_condition() {
        let rs = json!({"metadata": {"generation": 3}});
        let status = desired_status(
            &rs,
            &Counts {
                replicas: 2,
                ..Counts::default()
            },
            None,
        );
        assert_eq!(status, json!({"replicas": 2, "observedGeneration": 3}));
        let error = ApiError::internal("quota exceeded");
        let failed = desired_status(&rs, &Counts::default(), Some(&error));
        assert_eq!(failed["conditions"][0]["type"], "ReplicaFailure");
        assert_eq!(failed["conditions"][0]["reason"], "FailedCreate");
    }
}
