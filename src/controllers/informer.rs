//! Informers: in-memory caches of whole resources, kept current from the store's event stream,
//! with indexes by namespace, by controlling owner and by label, and handlers that turn events
//! into work-queue keys.
//!
//! # Guarantees
//!
//! * A cache never goes back in time: an event or a write-through older than what the cache
//!   holds for that object (by revision, deletions included) is ignored. Controllers can
//!   therefore record their own writes at once ([`Cache::observe`]), which is how they avoid
//!   acting twice on a cache that has not caught up yet (what Kubernetes calls expectations).
//! * When the event stream lags (the broadcast overflowed) every cache is relisted from the
//!   store and every handler sees every object again, so no change is lost.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};

use serde_json::Value;
use tokio::sync::broadcast::error::RecvError;

use super::runner::Queue;
use crate::api::objects::Objects;
use crate::api::resources::Resource;
use crate::api::selector::{LabelSelector, Requirement};
use crate::store::{Event, EventType, ObjectKey};

/// The object's uid.
pub fn uid(object: &Value) -> &str {
    object
        .pointer("/metadata/uid")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// The uid of the object's controlling owner (`ownerReferences[].controller: true`).
pub fn controller_uid(object: &Value) -> Option<&str> {
    controller_ref(object).and_then(|r| r["uid"].as_str())
}

/// The object's controlling owner reference.
pub fn controller_ref(object: &Value) -> Option<&Value> {
    object
        .pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)?
        .iter()
        .find(|r| r["controller"] == true)
}

/// The object's namespace (`""` for cluster-scoped objects).
pub fn namespace(object: &Value) -> &str {
    object
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// The key of `object`, of `resource`.
pub fn key_of(resource: &Resource, object: &Value) -> ObjectKey {
    ObjectKey::new(
        &resource.store_key(),
        namespace(object),
        crate::api::objects::name_of(object),
    )
}

/// The key of the object's controlling owner when it is a `kind` of `resource` (owners live
/// in their dependent's namespace).
pub fn owner_key(object: &Value, kind: &str, resource: &Resource) -> Option<ObjectKey> {
    let owner = controller_ref(object).filter(|r| r["kind"] == kind)?;
    Some(ObjectKey::new(
        &resource.store_key(),
        namespace(object),
        owner["name"].as_str().unwrap_or_default(),
    ))
}

/// Whether the object has a `deletionTimestamp`.
pub fn is_deleting(object: &Value) -> bool {
    object
        .pointer("/metadata/deletionTimestamp")
        .is_some_and(|t| !t.is_null())
}

fn revision_of(object: &Value) -> i64 {
    object
        .pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn label_pairs(object: &Value) -> Vec<(String, String)> {
    object
        .pointer("/metadata/labels")
        .and_then(Value::as_object)
        .map(|labels| {
            labels
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect()
        })
        .unwrap_or_default()
}

#[derive(Default)]
struct Entries {
    objects: HashMap<ObjectKey, Arc<Value>>,
    /// The newest revision seen per key, deletions included (tombstones).
    revisions: HashMap<ObjectKey, i64>,
    by_namespace: HashMap<String, HashSet<ObjectKey>>,
    /// By controlling owner's uid: the objects themselves, so listing a large owner's
    /// objects costs no second lookup per object.
    by_owner: HashMap<String, HashMap<ObjectKey, Arc<Value>>>,
    /// The part of `by_owner` that is not [settled](is_settled): what a controller of many
    /// finished objects (a Job of 10,000 pods) still has to look at.
    unsettled_by_owner: HashMap<String, HashMap<ObjectKey, Arc<Value>>>,
    by_uid: HashMap<String, ObjectKey>,
    by_label: HashMap<(String, String), HashSet<ObjectKey>>,
}

/// An object that has finished for good: a pod in phase `Succeeded` or `Failed` that holds no
/// finalizer (nothing is still to be done about it).
pub fn is_settled(object: &Value) -> bool {
    super::pods::is_terminal(object)
        && object
            .pointer("/metadata/finalizers")
            .and_then(Value::as_array)
            .is_none_or(Vec::is_empty)
}

/// Removes `key` from the `owner` set of `map`, dropping the set when it empties.
fn remove_owned(
    map: &mut HashMap<String, HashMap<ObjectKey, Arc<Value>>>,
    owner: &str,
    key: &ObjectKey,
) {
    if let Some(set) = map.get_mut(owner) {
        set.remove(key);
        if set.is_empty() {
            map.remove(owner);
        }
    }
}

impl Entries {
    fn unindex(&mut self, key: &ObjectKey) {
        let Some(old) = self.objects.remove(key) else {
            return;
        };
        if let Some(set) = self.by_namespace.get_mut(&key.namespace) {
            set.remove(key);
        }
        if let Some(owner) = controller_uid(&old) {
            remove_owned(&mut self.by_owner, owner, key);
            remove_owned(&mut self.unsettled_by_owner, owner, key);
        }
        if self.by_uid.get(uid(&old)) == Some(key) {
            self.by_uid.remove(uid(&old));
        }
        for pair in label_pairs(&old) {
            if let Some(set) = self.by_label.get_mut(&pair) {
                set.remove(key);
                if set.is_empty() {
                    self.by_label.remove(&pair);
                }
            }
        }
    }

    /// Puts `object` in place of what `key` held. Most changes (a status, a finalizer) keep
    /// the labels, uid and controller the indexes are built from: then only the held copies
    /// are swapped.
    fn replace(&mut self, key: ObjectKey, object: Arc<Value>) {
        let Some(old) = self.objects.get(&key) else {
            self.index(key, object);
            return;
        };
        let same_identity = uid(old) == uid(&object)
            && controller_uid(old) == controller_uid(&object)
            && old.pointer("/metadata/labels") == object.pointer("/metadata/labels");
        if !same_identity {
            self.unindex(&key);
            self.index(key, object);
            return;
        }
        if let Some(owner) = controller_uid(&object) {
            if let Some(owned) = self.by_owner.get_mut(owner) {
                owned.insert(key.clone(), object.clone());
            }
            if is_settled(&object) {
                remove_owned(&mut self.unsettled_by_owner, owner, &key);
            } else {
                self.unsettled_by_owner
                    .entry(owner.to_string())
                    .or_default()
                    .insert(key.clone(), object.clone());
            }
        }
        self.objects.insert(key, object);
    }

    fn index(&mut self, key: ObjectKey, object: Arc<Value>) {
        self.by_namespace
            .entry(key.namespace.clone())
            .or_default()
            .insert(key.clone());
        if let Some(owner) = controller_uid(&object) {
            self.by_owner
                .entry(owner.to_string())
                .or_default()
                .insert(key.clone(), object.clone());
            if !is_settled(&object) {
                self.unsettled_by_owner
                    .entry(owner.to_string())
                    .or_default()
                    .insert(key.clone(), object.clone());
            }
        }
        let object_uid = uid(&object);
        if !object_uid.is_empty() {
            self.by_uid.insert(object_uid.to_string(), key.clone());
        }
        for pair in label_pairs(&object) {
            self.by_label.entry(pair).or_default().insert(key.clone());
        }
        self.objects.insert(key, object);
    }
}

/// The cache of one resource.
pub struct Cache {
    resource: &'static Resource,
    entries: RwLock<Entries>,
    /// Bumped at every change, so readers can tell when to rebuild what they derive.
    generation: std::sync::atomic::AtomicU64,
}

impl Cache {
    fn new(resource: &'static Resource) -> Self {
        Cache {
            resource,
            entries: RwLock::new(Entries::default()),
            generation: std::sync::atomic::AtomicU64::new(0),
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Entries> {
        self.entries.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Entries> {
        let guard = self.entries.write().unwrap_or_else(|p| p.into_inner());
        // Bumped under the lock: a reader that sees the new number and then reads the
        // contents waits for this write to finish.
        self.generation
            .fetch_add(1, std::sync::atomic::Ordering::Release);
        guard
    }

    /// A number that changes whenever the contents may have.
    pub fn generation(&self) -> u64 {
        self.generation.load(std::sync::atomic::Ordering::Acquire)
    }

    /// The resource cached.
    pub fn resource(&self) -> &'static Resource {
        self.resource
    }

    /// The key of an object of this resource.
    pub fn key(&self, namespace: &str, name: &str) -> ObjectKey {
        ObjectKey::new(&self.resource.store_key(), namespace, name)
    }

    /// The keys of every object, for a controller's periodic resync.
    pub fn keys(&self) -> Vec<ObjectKey> {
        self.read().objects.keys().cloned().collect()
    }

    /// One object.
    pub fn get(&self, namespace: &str, name: &str) -> Option<Arc<Value>> {
        self.read().objects.get(&self.key(namespace, name)).cloned()
    }

    /// Every object (of one namespace, if given).
    pub fn list(&self, namespace: Option<&str>) -> Vec<Arc<Value>> {
        let entries = self.read();
        match namespace {
            None => entries.objects.values().cloned().collect(),
            Some(ns) => entries
                .by_namespace
                .get(ns)
                .map(|keys| {
                    keys.iter()
                        .filter_map(|k| entries.objects.get(k).cloned())
                        .collect()
                })
                .unwrap_or_default(),
        }
    }

    /// Objects whose controlling owner has uid `owner`.
    pub fn controlled_by(&self, owner: &str) -> Vec<Arc<Value>> {
        self.read()
            .by_owner
            .get(owner)
            .map(|objects| objects.values().cloned().collect())
            .unwrap_or_default()
    }

    /// Objects whose controlling owner has uid `owner` and that are not
    /// [settled](is_settled).
    pub fn unsettled_controlled_by(&self, owner: &str) -> Vec<Arc<Value>> {
        self.read()
            .unsettled_by_owner
            .get(owner)
            .map(|objects| objects.values().cloned().collect())
            .unwrap_or_default()
    }

    /// The object with this uid.
    pub fn by_uid(&self, object_uid: &str) -> Option<Arc<Value>> {
        let entries = self.read();
        let key = entries.by_uid.get(object_uid)?;
        entries.objects.get(key).cloned()
    }

    /// Objects of `namespace` matching `selector`. Equality requirements are answered from the
    /// label index; the rest are checked object by object.
    pub fn select(&self, namespace: &str, selector: &LabelSelector) -> Vec<Arc<Value>> {
        let entries = self.read();
        let mut candidates: Option<HashSet<&ObjectKey>> = None;
        for requirement in &selector.requirements {
            if let Requirement::In(key, values) = requirement
                && values.len() == 1
            {
                let value = values.iter().next().expect("one value");
                let keys: HashSet<&ObjectKey> = entries
                    .by_label
                    .get(&(key.clone(), value.clone()))
                    .map(|set| set.iter().collect())
                    .unwrap_or_default();
                candidates = Some(match candidates {
                    None => keys,
                    Some(c) => c.intersection(&keys).copied().collect(),
                });
            }
        }
        let keys: Vec<&ObjectKey> = match candidates {
            Some(c) => c.into_iter().filter(|k| k.namespace == namespace).collect(),
            None => entries
                .by_namespace
                .get(namespace)
                .map(|s| s.iter().collect())
                .unwrap_or_default(),
        };
        keys.into_iter()
            .filter_map(|k| entries.objects.get(k))
            .filter(|o| selector.matches(o))
            .cloned()
            .collect()
    }

    /// Objects in `object`'s namespace whose (non-empty) `spec.selector` matches it.
    pub fn selecting(&self, object: &Value) -> Vec<Arc<Value>> {
        self.list(Some(namespace(object)))
            .into_iter()
            .filter(|owner| {
                LabelSelector::from_json(&owner["spec"]["selector"])
                    .is_ok_and(|s| !s.is_empty() && s.matches(object))
            })
            .collect()
    }

    /// Records an object as written (by an event or by the caller's own write). Returns false
    /// when the cache already holds something newer.
    pub fn observe(&self, object: Arc<Value>) -> bool {
        let namespace = object
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let name = object
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let key = self.key(namespace, name);
        let revision = revision_of(&object);
        let mut entries = self.write();
        if entries.revisions.get(&key).is_some_and(|r| *r >= revision) {
            return false;
        }
        entries.revisions.insert(key.clone(), revision);
        entries.replace(key, object);
        true
    }

    /// Records that an object is gone as of `revision`. A deletion at the very revision the
    /// cache holds wins: a write that removed an object's last finalizer answers with the
    /// object as it was deleted, at the deletion's revision.
    pub fn forget(&self, namespace: &str, name: &str, revision: i64) -> bool {
        let key = self.key(namespace, name);
        let mut entries = self.write();
        let present = entries.objects.contains_key(&key);
        if entries
            .revisions
            .get(&key)
            .is_some_and(|r| *r > revision || (*r == revision && !present))
        {
            return false;
        }
        entries.revisions.insert(key.clone(), revision);
        entries.unindex(&key);
        true
    }

    /// Replaces the contents with a fresh list read at `revision`.
    fn replace(&self, items: Vec<Arc<Value>>, revision: i64) {
        let mut fresh = Entries::default();
        for object in items {
            let key = ObjectKey::new(
                &self.resource.store_key(),
                object
                    .pointer("/metadata/namespace")
                    .and_then(Value::as_str)
                    .unwrap_or_default(),
                object
                    .pointer("/metadata/name")
                    .and_then(Value::as_str)
                    .unwrap_or_default(),
            );
            fresh.revisions.insert(key.clone(), revision_of(&object));
            fresh.index(key, object);
        }
        let mut entries = self.write();
        // Keep tombstones and write-throughs newer than the list.
        for (key, rev) in &entries.revisions {
            if *rev > revision && !fresh.revisions.contains_key(key) {
                fresh.revisions.insert(key.clone(), *rev);
                if let Some(object) = entries.objects.get(key) {
                    fresh.index(key.clone(), object.clone());
                }
            }
        }
        *entries = fresh;
    }
}

/// What a handler is told about.
pub struct Change<'a> {
    /// Added, modified or deleted.
    pub kind: EventType,
    /// The object now (for a delete, its last state).
    pub object: &'a Value,
    /// The object before, when known.
    pub previous: Option<&'a Value>,
}

type Handler = Box<dyn Fn(&Change<'_>) + Send + Sync>;

/// The set of informers of the controllers, fed by one subscription to the store.
pub struct Informers {
    objects: Objects,
    caches: HashMap<String, Arc<Cache>>,
    handlers: HashMap<String, Vec<Handler>>,
}

impl Informers {
    /// An empty set.
    pub fn new(objects: Objects) -> Self {
        Informers {
            objects,
            caches: HashMap::new(),
            handlers: HashMap::new(),
        }
    }

    /// The cache of `resource` (created on first use).
    pub fn cache(&mut self, resource: &'static Resource) -> Arc<Cache> {
        self.caches
            .entry(resource.store_key())
            .or_insert_with(|| Arc::new(Cache::new(resource)))
            .clone()
    }

    /// Queues the key of every object of `resource` that changes: a controller's own kind.
    /// Returns its cache.
    pub fn queue_changes(&mut self, resource: &'static Resource, queue: &Queue) -> Arc<Cache> {
        let queue = queue.clone();
        self.on(resource, move |change| {
            queue.add(key_of(resource, change.object))
        });
        self.cache(resource)
    }

    /// Queues the owner (a `kind` of `owners`) of every object of `resource` that changes,
    /// before and after the change (an owner that lets go hears of it too).
    pub fn queue_owners(
        &mut self,
        resource: &'static Resource,
        kind: &'static str,
        owners: &'static Resource,
        queue: &Queue,
    ) {
        let queue = queue.clone();
        self.on(resource, move |change| {
            for object in [Some(change.object), change.previous].into_iter().flatten() {
                if let Some(key) = owner_key(object, kind, owners) {
                    queue.add(key);
                }
            }
        });
    }

    /// Queues, for every orphan (no controller) of `resource` that changes, each object of
    /// `owners` whose selector matches it: any of them may adopt it.
    pub fn queue_adopters(
        &mut self,
        resource: &'static Resource,
        owners: &'static Resource,
        queue: &Queue,
    ) {
        let queue = queue.clone();
        let cache = self.cache(owners);
        self.on(resource, move |change| {
            if controller_ref(change.object).is_none() {
                for owner in cache.selecting(change.object) {
                    queue.add(key_of(owners, &owner));
                }
            }
        });
    }

    /// Calls `handler` for every change to `resource`, after its cache has been updated.
    pub fn on(
        &mut self,
        resource: &'static Resource,
        handler: impl Fn(&Change<'_>) + Send + Sync + 'static,
    ) {
        self.cache(resource);
        self.handlers
            .entry(resource.store_key())
            .or_default()
            .push(Box::new(handler));
    }

    /// Lists every cached resource, tells the handlers about every object, then follows the
    /// store's events in a background task. Returns once the caches are filled.
    pub async fn start(self) {
        let informers = Arc::new(self);
        let events = informers.objects.store().subscribe();
        informers.relist().await;
        tokio::spawn(async move { informers.follow(events).await });
    }

    /// Refills every cache, then tells the handlers about every object: no handler runs
    /// before all caches hold a full list, so a controller never acts on half a picture
    /// (for example a ReplicaSet seeing none of its pods yet).
    async fn relist(&self) {
        let mut listed = Vec::new();
        for (resource, cache) in &self.caches {
            match self.objects.store().list(resource, None, None, None).await {
                Ok(page) => {
                    let items: Vec<Arc<Value>> = page.items.into_iter().map(|s| s.object).collect();
                    cache.replace(items.clone(), page.revision);
                    listed.push((resource, items));
                }
                Err(error) => tracing::warn!(%error, %resource, "informer could not list"),
            }
        }
        for (resource, items) in listed {
            for object in &items {
                self.dispatch(resource, EventType::Modified, object, None);
            }
        }
    }

    fn dispatch(&self, resource: &str, kind: EventType, object: &Value, previous: Option<&Value>) {
        if let Some(handlers) = self.handlers.get(resource) {
            let change = Change {
                kind,
                object,
                previous,
            };
            for handler in handlers {
                handler(&change);
            }
        }
    }

    fn apply(&self, event: &Event) {
        let Some(cache) = self.caches.get(&event.key.resource) else {
            return;
        };
        // Handlers hear of every event, even one a write-through already recorded: their
        // queues may want the follow-up (for example an owner's status).
        match event.kind {
            EventType::Deleted => {
                cache.forget(&event.key.namespace, &event.key.name, event.revision);
            }
            _ => {
                cache.observe(event.object.clone());
            }
        }
        self.dispatch(
            &event.key.resource,
            event.kind,
            &event.object,
            event.prev.as_deref(),
        );
    }

    async fn follow(&self, mut events: tokio::sync::broadcast::Receiver<Arc<Event>>) {
        loop {
            match events.recv().await {
                Ok(event) => self.apply(&event),
                Err(RecvError::Lagged(missed)) => {
                    tracing::debug!(missed, "informers lagged; relisting");
                    self.relist().await;
                }
                Err(RecvError::Closed) => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::resources::by_plural;
    use serde_json::json;

    fn pod(name: &str, rv: i64, labels: Value, owner: Option<&str>) -> Arc<Value> {
        let mut p = json!({"metadata": {"name": name, "namespace": "ns",
            "resourceVersion": rv.to_string(), "uid": format!("uid-{name}"), "labels": labels}});
        if let Some(owner) = owner {
            p["metadata"]["ownerReferences"] =
                json!([{"uid": owner, "controller": true, "kind": "ReplicaSet", "name": "rs"}]);
        }
        Arc::new(p)
    }

    #[test]
    fn the_cache_indexes_and_never_goes_back_in_time() {
        let cache = Cache::new(by_plural("", "v1", "pods").unwrap());
        assert!(cache.observe(pod("a", 5, json!({"app": "web"}), Some("rs-1"))));
        assert!(cache.observe(pod("b", 6, json!({"app": "db"}), None)));
        // An older event for a is ignored.
        assert!(!cache.observe(pod("a", 4, json!({"app": "old"}), None)));
        let web = LabelSelector::parse("app=web").unwrap();
        assert_eq!(cache.select("ns", &web).len(), 1);
        assert_eq!(cache.select("other", &web).len(), 0);
        assert_eq!(cache.controlled_by("rs-1").len(), 1);
        assert_eq!(cache.list(Some("ns")).len(), 2);

        // Relabel and release: the indexes follow.
        assert!(cache.observe(pod("a", 7, json!({"app": "api"}), None)));
        assert_eq!(cache.select("ns", &web).len(), 0);
        assert!(cache.controlled_by("rs-1").is_empty());
        let not_db = LabelSelector::parse("app!=db").unwrap();
        assert_eq!(cache.select("ns", &not_db).len(), 1);

        // A delete leaves a tombstone: a late event from before it does not resurrect it.
        assert!(cache.forget("ns", "a", 8));
        assert!(!cache.observe(pod("a", 7, json!({}), None)));
        assert!(cache.get("ns", "a").is_none());
        // A write that deleted b answers with b at the deletion's revision; the deletion's
        // event at that revision still removes it, once.
        assert!(cache.observe(pod("b", 9, json!({}), None)));
        assert!(cache.forget("ns", "b", 9));
        assert!(!cache.forget("ns", "b", 9));
        assert!(cache.get("ns", "b").is_none());

        // A relist at revision 7 keeps the newer tombstone, drops what the list lacks.
        cache.replace(vec![pod("c", 3, json!({}), None)], 7);
        assert!(cache.get("ns", "b").is_none());
        assert!(cache.get("ns", "c").is_some());
        assert!(!cache.observe(pod("a", 8, json!({}), None)));
    }
}
