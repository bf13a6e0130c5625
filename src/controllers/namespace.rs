//! The namespace controller: empties a namespace being deleted, then releases its
//! `kubernetes` finalizer so the namespace goes; and gives every namespace its `default`
//! ServiceAccount.

use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::broadcast::error::RecvError;

use super::queue::WorkQueue;
use crate::api::error::{ApiError, Reason};
use crate::api::objects::{DeleteOptions, Objects, Propagation, WriteOptions};
use crate::api::resources::{RESOURCES, by_plural};
use crate::store::EventType;

const MANAGER: &str = "namespace-controller";
/// How soon a namespace whose contents are still going is looked at again.
const RECHECK: Duration = Duration::from_millis(500);

/// Starts the controller.
pub fn spawn(objects: Objects) {
    tokio::spawn(async move { run(objects).await });
}

async fn run(objects: Objects) {
    let namespaces = by_plural("", "v1", "namespaces").expect("namespaces are served");
    let mut events = objects.store().subscribe();
    let mut queue: WorkQueue<String> = WorkQueue::default();
    let resync = |queue: &mut WorkQueue<String>, items: Vec<std::sync::Arc<Value>>| {
        for ns in items {
            if let Some(name) = ns.pointer("/metadata/name").and_then(Value::as_str) {
                queue.add(name.to_string());
            }
        }
    };
    if let Ok(page) = objects
        .store()
        .list(&namespaces.store_key(), None, None, None)
        .await
    {
        resync(
            &mut queue,
            page.items.into_iter().map(|s| s.object).collect(),
        );
    }
    loop {
        while let Some(name) = queue.pop() {
            match reconcile(&objects, &name).await {
                Ok(Some(delay)) => queue.add_after(name, delay),
                Ok(None) => {}
                Err(error) => {
                    tracing::debug!(namespace = %name, %error, "namespace controller will retry");
                    queue.add_after(name, RECHECK);
                }
            }
        }
        let wake = queue.next_due();
        tokio::select! {
            received = events.recv() => match received {
                Ok(event) if event.key.resource == "namespaces" && event.kind != EventType::Deleted => {
                    queue.add(event.key.name.clone());
                }
                Ok(_) => {}
                Err(RecvError::Lagged(_)) => {
                    if let Ok(page) = objects.store().list(&namespaces.store_key(), None, None, None).await {
                        resync(&mut queue, page.items.into_iter().map(|s| s.object).collect());
                    }
                }
                Err(RecvError::Closed) => return,
            },
            _ = async {
                match wake {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending::<()>().await,
                }
            } => {}
        }
    }
}

/// Reconciles one namespace; answers when to look again, if ever.
async fn reconcile(objects: &Objects, name: &str) -> Result<Option<Duration>, ApiError> {
    let namespaces = by_plural("", "v1", "namespaces").expect("namespaces are served");
    let ns = match objects.get(namespaces, "", name).await {
        Ok(stored) => stored.object,
        Err(e) if e.reason == Reason::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let deleting = ns
        .pointer("/metadata/deletionTimestamp")
        .is_some_and(|t| !t.is_null());
    if !deleting {
        ensure_default_service_account(objects, name).await?;
        return Ok(None);
    }
    let mut remaining = 0usize;
    let none = crate::api::selector::LabelSelector::default();
    let all = crate::api::selector::FieldSelector::default();
    for resource in RESOURCES.iter().filter(|r| r.namespaced && r.stored) {
        let listed = objects
            .list(resource, Some(name), &none, &all, None, None)
            .await?;
        for object in listed.items {
            remaining += 1;
            if object
                .pointer("/metadata/deletionTimestamp")
                .is_some_and(|t| !t.is_null())
            {
                continue;
            }
            let object_name = object
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let options = DeleteOptions {
                propagation: Some(Propagation::Background),
                ..DeleteOptions::default()
            };
            match objects.delete(resource, name, object_name, &options).await {
                Ok(deleted) if deleted.gone => remaining -= 1,
                Ok(_) => {}
                Err(e) if e.reason == Reason::NotFound => remaining -= 1,
                Err(e) => return Err(e),
            }
        }
    }
    if remaining > 0 {
        return Ok(Some(RECHECK));
    }
    // Empty: release the namespace's own finalizer; the object service then removes it.
    objects
        .modify(namespaces, "", name, Some("finalize"), MANAGER, |ns| {
            let Some(list) = ns
                .pointer_mut("/spec/finalizers")
                .and_then(Value::as_array_mut)
            else {
                return false;
            };
            let before = list.len();
            list.retain(|f| f != "kubernetes");
            before != list.len()
        })
        .await?;
    Ok(None)
}

async fn ensure_default_service_account(
    objects: &Objects,
    namespace: &str,
) -> Result<(), ApiError> {
    let accounts = by_plural("", "v1", "serviceaccounts").expect("serviceaccounts are served");
    match objects.get(accounts, namespace, "default").await {
        Ok(_) => return Ok(()),
        Err(e) if e.reason == Reason::NotFound => {}
        Err(e) => return Err(e),
    }
    let sa = json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default"}});
    match objects
        .create(
            accounts,
            namespace,
            sa,
            &WriteOptions::controller("service-account-controller"),
        )
        .await
    {
        Ok(_) => Ok(()),
        Err(e)
            if matches!(
                e.reason,
                Reason::AlreadyExists | Reason::Forbidden | Reason::NotFound
            ) =>
        {
            Ok(())
        }
        Err(e) => Err(e),
    }
}
