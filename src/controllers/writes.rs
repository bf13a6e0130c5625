//! The writes every workload controller makes, each guarded by the object's uid (so a
//! namesake created meanwhile is left alone) and recorded in the controller's cache at once
//! (write-through, see [`super::informer`]). An object already gone is not an error.

use std::sync::Arc;

use serde_json::{Value, json};

use super::events::{EventType, Recorder};
use super::informer::{Cache, controller_ref, controller_uid, is_deleting, namespace, uid};
use crate::api::error::{ApiError, Reason};
use crate::api::objects::{DeleteOptions, Objects, Propagation, Written, name_of};
use crate::api::selector::LabelSelector;

/// Writes `status` to the object's status subresource unless it already has it (as cached or
/// as stored). Returns the object as it now stands (the given one when nothing was written or
/// it is gone).
pub async fn write_status(
    objects: &Objects,
    cache: &Cache,
    object: &Arc<Value>,
    status: &Value,
    manager: &str,
) -> Result<Arc<Value>, ApiError> {
    if object["status"] == *status {
        return Ok(object.clone());
    }
    let object_uid = uid(object).to_string();
    let written = objects
        .modify_cached(
            cache.resource(),
            object,
            Some("status"),
            manager,
            |current| {
                if uid(current) != object_uid || current["status"] == *status {
                    return false;
                }
                current["status"] = status.clone();
                true
            },
        )
        .await;
    match written {
        Ok(Some(updated)) => {
            cache.observe(updated.clone());
            Ok(updated)
        }
        Ok(None) => Ok(object.clone()),
        Err(e) if e.reason == Reason::NotFound => Ok(object.clone()),
        Err(e) => Err(e),
    }
}

/// Deletes the object (with the default grace and propagation). Returns false when it was
/// already gone.
pub async fn delete(objects: &Objects, cache: &Cache, object: &Value) -> Result<bool, ApiError> {
    delete_with(objects, cache, object, None).await
}

/// Deletes the object with `propagation` (None: the kind's default) and the default grace.
/// Returns false when it was already gone.
pub async fn delete_with(
    objects: &Objects,
    cache: &Cache,
    object: &Value,
    propagation: Option<Propagation>,
) -> Result<bool, ApiError> {
    let options = DeleteOptions {
        uid: Some(uid(object).to_string()),
        propagation,
        ..DeleteOptions::default()
    };
    let ns = namespace(object);
    match objects
        .delete(cache.resource(), ns, name_of(object), &options)
        .await
    {
        Ok(deleted) if deleted.gone => {
            let revision = deleted.object["metadata"]["resourceVersion"]
                .as_str()
                .and_then(|v| v.parse().ok())
                .unwrap_or(i64::MAX);
            cache.forget(ns, name_of(object), revision);
            Ok(true)
        }
        Ok(deleted) => {
            cache.observe(deleted.object);
            Ok(true)
        }
        Err(e) if e.reason == Reason::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// Adopts the object (`Some(reference)`, only if it has no controller yet) or releases it
/// from its controller (`None`). Returns the object as written, or None when nothing was
/// written (for example another controller adopted it first).
pub async fn set_controller(
    objects: &Objects,
    cache: &Cache,
    object: &Value,
    reference: Option<Value>,
    manager: &str,
) -> Option<Arc<Value>> {
    let object_uid = uid(object).to_string();
    let written = objects
        .modify(
            cache.resource(),
            namespace(object),
            name_of(object),
            None,
            manager,
            |current| {
                if uid(current) != object_uid {
                    return false;
                }
                let refs = current["metadata"]["ownerReferences"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                let refs: Vec<Value> = match &reference {
                    Some(_) if controller_ref(current).is_some() => return false,
                    Some(r) => refs.into_iter().chain([r.clone()]).collect(),
                    None => refs
                        .into_iter()
                        .filter(|r| r["controller"] != true)
                        .collect(),
                };
                current["metadata"]["ownerReferences"] = json!(refs);
                true
            },
        )
        .await;
    match written {
        Ok(Some(updated)) => {
            cache.observe(updated.clone());
            Some(updated)
        }
        Ok(None) => None,
        Err(error) => {
            tracing::debug!(%error, object = name_of(object), "could not change the controller");
            None
        }
    }
}

/// A controller owner reference to `owner`, a `kind` of apps/v1 or batch/v1.
pub fn controller_reference(owner: &Value, kind: &str) -> Value {
    json!({"apiVersion": owner["apiVersion"], "kind": kind, "name": name_of(owner),
        "uid": uid(owner), "controller": true, "blockOwnerDeletion": true})
}

/// Claims objects of `dependents` for `owner` (a `kind`), as Kubernetes' controller ref
/// manager does: adopts matching orphans (unless the owner is being deleted) and releases
/// objects it controls that its selector no longer matches. Returns what it controls now.
pub async fn claim(
    objects: &Objects,
    dependents: &Cache,
    owner: &Value,
    kind: &str,
    selector: &LabelSelector,
    manager: &str,
) -> Vec<Arc<Value>> {
    let owner_uid = uid(owner);
    let mut candidates = dependents.select(namespace(owner), selector);
    for object in dependents.controlled_by(owner_uid) {
        if !candidates.iter().any(|c| uid(c) == uid(&object)) {
            candidates.push(object);
        }
    }
    let mut owned = Vec::new();
    for object in candidates {
        let matches = !selector.is_empty() && selector.matches(&object);
        match controller_uid(&object) {
            Some(controller) if controller == owner_uid => {
                if matches {
                    owned.push(object);
                } else if !is_deleting(&object) {
                    set_controller(objects, dependents, &object, None, manager).await;
                }
            }
            Some(_) => {}
            None if matches && !is_deleting(&object) && !is_deleting(owner) => {
                let reference = controller_reference(owner, kind);
                if let Some(adopted) =
                    set_controller(objects, dependents, &object, Some(reference), manager).await
                {
                    owned.push(adopted);
                }
            }
            None => {}
        }
    }
    owned
}

/// Records the outcome of creating a pod for `owner`, as Kubernetes' controllers do: a
/// `SuccessfulCreate` event and the pod in the cache, or a `FailedCreate` warning. Returns the
/// error for the caller to act on.
pub fn note_create(
    recorder: &Recorder,
    cache: &Cache,
    owner: &Value,
    result: Result<Written, ApiError>,
) -> Result<(), ApiError> {
    match result {
        Ok(written) => {
            recorder.record(
                owner,
                EventType::Normal,
                "SuccessfulCreate",
                &format!("Created pod: {}", name_of(&written.object)),
            );
            cache.observe(written.object);
            Ok(())
        }
        Err(error) => {
            recorder.record(
                owner,
                EventType::Warning,
                "FailedCreate",
                &format!("Error creating: {}", error.message),
            );
            Err(error)
        }
    }
}

/// Runs the futures as tasks of their own and returns their outputs in order. Controllers use
/// it for a batch of writes, so that the writes' API work (defaulting, validation, managed
/// fields) spreads over the runtime's threads instead of one task's, while the writes still
/// share the store's group commits.
pub async fn in_parallel<F>(futures: impl IntoIterator<Item = F>) -> Vec<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futures.into_iter().map(tokio::spawn).collect();
    let mut outputs = Vec::with_capacity(handles.len());
    for handle in handles {
        match handle.await {
            Ok(output) => outputs.push(output),
            Err(error) => std::panic::resume_unwind(error.into_panic()),
        }
    }
    outputs
}
