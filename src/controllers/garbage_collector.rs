//! The garbage collector: deletes dependents whose owners are gone, and carries out the
//! `orphan` and `foregroundDeletion` finalizers that deletes with a propagation policy leave.
//!
//! It keeps an in-memory index of every object's uid and owner references, fed by the store's
//! event stream, and verifies against the store before acting.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::sync::broadcast::error::RecvError;

use super::queue::WorkQueue;
use crate::api::error::Reason;
use crate::api::objects::{DeleteOptions, Objects, Propagation};
use crate::api::resources::{RESOURCES, Resource, by_kind, by_store_key};
use crate::store::{Event, EventType, ObjectKey};

const MANAGER: &str = "garbage-collector";
const RETRY: Duration = Duration::from_secs(1);

/// Work for the collector.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Item {
    /// Check that this object still has a live owner.
    Dependent(ObjectKey),
    /// This object is being deleted with an `orphan` or `foregroundDeletion` finalizer.
    Owner(ObjectKey),
}

/// An owner reference, as far as the collector needs it.
#[derive(Debug, Clone, PartialEq)]
struct OwnerRef {
    api_version: String,
    kind: String,
    name: String,
    uid: String,
    block: bool,
}

fn owner_refs(object: &Value) -> Vec<OwnerRef> {
    object
        .pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .map(|refs| {
            refs.iter()
                .map(|r| OwnerRef {
                    api_version: r["apiVersion"].as_str().unwrap_or_default().to_string(),
                    kind: r["kind"].as_str().unwrap_or_default().to_string(),
                    name: r["name"].as_str().unwrap_or_default().to_string(),
                    uid: r["uid"].as_str().unwrap_or_default().to_string(),
                    block: r["blockOwnerDeletion"].as_bool().unwrap_or(false),
                })
                .collect()
        })
        .unwrap_or_default()
}

fn uid_of(object: &Value) -> String {
    object
        .pointer("/metadata/uid")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

fn has_finalizer(object: &Value, name: &str) -> bool {
    object
        .pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .is_some_and(|f| f.iter().any(|v| v == name))
}

fn deleting(object: &Value) -> bool {
    object
        .pointer("/metadata/deletionTimestamp")
        .is_some_and(|t| !t.is_null())
}

/// uid → object, and owner uid → dependents.
#[derive(Default)]
struct Index {
    by_uid: HashMap<String, ObjectKey>,
    uid_of: HashMap<ObjectKey, String>,
    owners_of: HashMap<ObjectKey, Vec<String>>,
    dependents: HashMap<String, HashSet<ObjectKey>>,
}

impl Index {
    fn remove(&mut self, key: &ObjectKey) {
        if let Some(uid) = self.uid_of.remove(key) {
            self.by_uid.remove(&uid);
        }
        for owner in self.owners_of.remove(key).unwrap_or_default() {
            if let Some(set) = self.dependents.get_mut(&owner) {
                set.remove(key);
                if set.is_empty() {
                    self.dependents.remove(&owner);
                }
            }
        }
    }

    fn upsert(&mut self, key: &ObjectKey, object: &Value) {
        self.remove(key);
        let uid = uid_of(object);
        self.by_uid.insert(uid.clone(), key.clone());
        self.uid_of.insert(key.clone(), uid);
        let owners: Vec<String> = owner_refs(object).into_iter().map(|r| r.uid).collect();
        for owner in &owners {
            self.dependents
                .entry(owner.clone())
                .or_default()
                .insert(key.clone());
        }
        if !owners.is_empty() {
            self.owners_of.insert(key.clone(), owners);
        }
    }
}

/// Starts the collector.
pub fn spawn(objects: Objects) {
    tokio::spawn(async move {
        let mut gc = Collector {
            objects,
            index: Index::default(),
            queue: WorkQueue::default(),
            listed_at: HashMap::new(),
        };
        gc.run().await;
    });
}

struct Collector {
    objects: Objects,
    index: Index,
    queue: WorkQueue<Item>,
    /// Per resource, the revision its initial list was read at: older events are stale.
    listed_at: HashMap<String, i64>,
}

impl Collector {
    async fn run(&mut self) {
        let mut events = self.objects.store().subscribe();
        self.resync().await;
        loop {
            if self.queue.has_ready() {
                // Take every pending event first, so the index is current.
                loop {
                    match events.try_recv() {
                        Ok(event) => self.observe(&event),
                        Err(tokio::sync::broadcast::error::TryRecvError::Lagged(_)) => {
                            self.resync().await
                        }
                        Err(_) => break,
                    }
                }
                if let Some(item) = self.queue.pop() {
                    self.process(item).await;
                }
                continue;
            }
            let wake = self.queue.next_due();
            tokio::select! {
                received = events.recv() => match received {
                    Ok(event) => self.observe(&event),
                    Err(RecvError::Lagged(_)) => self.resync().await,
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

    /// Rebuilds the index from the store and queues everything that needs a look.
    async fn resync(&mut self) {
        self.index = Index::default();
        for resource in RESOURCES.iter().filter(|r| r.stored) {
            let key = resource.store_key();
            let page = match self.objects.store().list(&key, None, None, None).await {
                Ok(page) => page,
                Err(error) => {
                    tracing::warn!(%error, resource = %key, "garbage collector could not list");
                    continue;
                }
            };
            self.listed_at.insert(key.clone(), page.revision);
            for stored in page.items {
                let object_key = ObjectKey::new(
                    &key,
                    stored
                        .object
                        .pointer("/metadata/namespace")
                        .and_then(Value::as_str)
                        .unwrap_or_default(),
                    stored
                        .object
                        .pointer("/metadata/name")
                        .and_then(Value::as_str)
                        .unwrap_or_default(),
                );
                self.index.upsert(&object_key, &stored.object);
                self.queue_if_needed(&object_key, &stored.object);
            }
        }
        let keys: Vec<ObjectKey> = self.index.owners_of.keys().cloned().collect();
        for key in keys {
            self.queue.add(Item::Dependent(key));
        }
    }

    fn queue_if_needed(&mut self, key: &ObjectKey, object: &Value) {
        if deleting(object)
            && (has_finalizer(object, "orphan") || has_finalizer(object, "foregroundDeletion"))
        {
            self.queue.add(Item::Owner(key.clone()));
        }
    }

    fn observe(&mut self, event: &Arc<Event>) {
        if self
            .listed_at
            .get(&event.key.resource)
            .is_some_and(|at| event.revision <= *at)
        {
            return;
        }
        match event.kind {
            EventType::Added | EventType::Modified => {
                self.index.upsert(&event.key, &event.object);
                self.queue_if_needed(&event.key, &event.object);
                let orphaned = owner_refs(&event.object)
                    .iter()
                    .any(|r| !self.index.by_uid.contains_key(&r.uid));
                if orphaned {
                    self.queue.add(Item::Dependent(event.key.clone()));
                }
            }
            EventType::Deleted => {
                let uid = uid_of(&event.object);
                let owners = self
                    .index
                    .owners_of
                    .get(&event.key)
                    .cloned()
                    .unwrap_or_default();
                self.index.remove(&event.key);
                for dependent in self.index.dependents.get(&uid).cloned().unwrap_or_default() {
                    self.queue.add(Item::Dependent(dependent));
                }
                // An owner waiting in foreground deletion may now be free to go.
                for owner in owners {
                    if let Some(owner_key) = self.index.by_uid.get(&owner) {
                        self.queue.add(Item::Owner(owner_key.clone()));
                    }
                }
            }
        }
    }

    async fn process(&mut self, item: Item) {
        let result = match &item {
            Item::Dependent(key) => self.check_dependent(key).await,
            Item::Owner(key) => self.finish_owner(key).await,
        };
        if let Err(error) = result {
            tracing::debug!(?item, %error, "garbage collector will retry");
            self.queue.add_after(item, RETRY);
        }
    }

    /// Whether the owner an owner reference names exists with that uid, and if so the object.
    async fn owner(
        &self,
        dependent: &ObjectKey,
        r: &OwnerRef,
    ) -> Result<Option<Arc<Value>>, crate::api::error::ApiError> {
        let Some(resource) = by_kind(&r.api_version, &r.kind) else {
            // A kind skiff does not serve cannot be judged: leave the dependent alone.
            return Ok(Some(Arc::new(Value::Null)));
        };
        let namespace = if resource.namespaced {
            dependent.namespace.as_str()
        } else {
            ""
        };
        match self.objects.get(resource, namespace, &r.name).await {
            Ok(stored) if uid_of(&stored.object) == r.uid => Ok(Some(stored.object)),
            Ok(_) => Ok(None),
            Err(e) if e.reason == Reason::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn check_dependent(
        &mut self,
        key: &ObjectKey,
    ) -> Result<(), crate::api::error::ApiError> {
        let Some(resource) = by_store_key(&key.resource) else {
            return Ok(());
        };
        let object = match self.objects.get(resource, &key.namespace, &key.name).await {
            Ok(stored) => stored.object,
            Err(e) if e.reason == Reason::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        let refs = owner_refs(&object);
        if refs.is_empty() || deleting(&object) {
            return Ok(());
        }
        let mut gone = Vec::new();
        let mut foreground = false;
        for r in &refs {
            match self.owner(key, r).await? {
                None => gone.push(r.uid.clone()),
                Some(owner) => {
                    if deleting(&owner) && has_finalizer(&owner, "foregroundDeletion") {
                        foreground = true;
                    }
                }
            }
        }
        if gone.is_empty() {
            return Ok(());
        }
        if gone.len() == refs.len() {
            let options = DeleteOptions {
                propagation: Some(if foreground {
                    Propagation::Foreground
                } else {
                    Propagation::Background
                }),
                ..DeleteOptions::default()
            };
            return match self
                .objects
                .delete(resource, &key.namespace, &key.name, &options)
                .await
            {
                Ok(_) => Ok(()),
                Err(e) if e.reason == Reason::NotFound => Ok(()),
                Err(e) => Err(e),
            };
        }
        // Some owners remain: drop only the dangling references.
        self.remove_refs(resource, key, &gone).await
    }

    async fn remove_refs(
        &self,
        resource: &'static Resource,
        key: &ObjectKey,
        uids: &[String],
    ) -> Result<(), crate::api::error::ApiError> {
        let result = self
            .objects
            .modify(
                resource,
                &key.namespace,
                &key.name,
                None,
                MANAGER,
                |object| {
                    let Some(refs) = object
                        .pointer_mut("/metadata/ownerReferences")
                        .and_then(Value::as_array_mut)
                    else {
                        return false;
                    };
                    let before = refs.len();
                    refs.retain(|r| !uids.iter().any(|u| r["uid"] == *u));
                    if refs.is_empty() {
                        object["metadata"]
                            .as_object_mut()
                            .map(|m| m.remove("ownerReferences"));
                    }
                    before
                        != object
                            .pointer("/metadata/ownerReferences")
                            .and_then(Value::as_array)
                            .map_or(0, Vec::len)
                },
            )
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if e.reason == Reason::NotFound => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn remove_finalizer(
        &self,
        resource: &'static Resource,
        key: &ObjectKey,
        finalizer: &str,
    ) -> Result<(), crate::api::error::ApiError> {
        let result = self
            .objects
            .modify(
                resource,
                &key.namespace,
                &key.name,
                None,
                MANAGER,
                |object| {
                    let Some(list) = object
                        .pointer_mut("/metadata/finalizers")
                        .and_then(Value::as_array_mut)
                    else {
                        return false;
                    };
                    let before = list.len();
                    list.retain(|f| f != finalizer);
                    before != list.len()
                },
            )
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if e.reason == Reason::NotFound => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn finish_owner(&mut self, key: &ObjectKey) -> Result<(), crate::api::error::ApiError> {
        let Some(resource) = by_store_key(&key.resource) else {
            return Ok(());
        };
        let owner = match self.objects.get(resource, &key.namespace, &key.name).await {
            Ok(stored) => stored.object,
            Err(e) if e.reason == Reason::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        if !deleting(&owner) {
            return Ok(());
        }
        let uid = uid_of(&owner);
        let dependents: Vec<ObjectKey> = self
            .index
            .dependents
            .get(&uid)
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .collect();
        if has_finalizer(&owner, "orphan") {
            for dependent in &dependents {
                if let Some(dep_resource) = by_store_key(&dependent.resource) {
                    self.remove_refs(dep_resource, dependent, std::slice::from_ref(&uid))
                        .await?;
                }
            }
            return self.remove_finalizer(resource, key, "orphan").await;
        }
        if has_finalizer(&owner, "foregroundDeletion") {
            let mut blocking = 0;
            for dependent in &dependents {
                let Some(dep_resource) = by_store_key(&dependent.resource) else {
                    continue;
                };
                let object = match self
                    .objects
                    .get(dep_resource, &dependent.namespace, &dependent.name)
                    .await
                {
                    Ok(stored) => stored.object,
                    Err(e) if e.reason == Reason::NotFound => continue,
                    Err(e) => return Err(e),
                };
                if owner_refs(&object).iter().any(|r| r.uid == uid && r.block) {
                    blocking += 1;
                }
                if !deleting(&object) {
                    let options = DeleteOptions {
                        propagation: Some(Propagation::Foreground),
                        ..DeleteOptions::default()
                    };
                    match self
                        .objects
                        .delete(
                            dep_resource,
                            &dependent.namespace,
                            &dependent.name,
                            &options,
                        )
                        .await
                    {
                        Ok(_) => {}
                        Err(e) if e.reason == Reason::NotFound => {}
                        Err(e) => return Err(e),
                    }
                }
            }
            if blocking == 0 {
                return self
                    .remove_finalizer(resource, key, "foregroundDeletion")
                    .await;
            }
            // Re-checked when a dependent goes; the timer is a safety net.
            self.queue
                .add_after(Item::Owner(key.clone()), Duration::from_secs(5));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn index_tracks_owners_and_dependents() {
        let mut index = Index::default();
        let owner = ObjectKey::new("replicasets.apps", "default", "rs");
        let pod = ObjectKey::new("pods", "default", "rs-abcde");
        index.upsert(&owner, &json!({"metadata": {"uid": "u1"}}));
        index.upsert(&pod, &json!({"metadata": {"uid": "u2", "ownerReferences": [
            {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs", "uid": "u1", "blockOwnerDeletion": true}]}}));
        assert!(index.dependents["u1"].contains(&pod));
        index.upsert(&pod, &json!({"metadata": {"uid": "u2"}}));
        assert!(
            !index.dependents.contains_key("u1"),
            "released dependents leave the index"
        );
        index.remove(&owner);
        assert!(!index.by_uid.contains_key("u1"));
    }

    #[test]
    fn owner_refs_parse_block_flag() {
        let refs = owner_refs(
            &json!({"metadata": {"ownerReferences": [{"apiVersion": "v1", "kind": "X", "name": "n", "uid": "u", "blockOwnerDeletion": true}]}}),
        );
        assert_eq!(refs.len(), 1);
        assert!(refs[0].block);
    }
}
