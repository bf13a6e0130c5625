//! The object service: Kubernetes write semantics over the store.
//!
//! HTTP handlers and in-process controllers both go through here, so a controller's write is
//! defaulted, validated, versioned and recorded exactly like a user's.

use std::sync::Arc;

use chrono::{DateTime, SecondsFormat, Utc};
use rand::Rng;
use serde_json::{Map, Value, json};

use super::error::{ApiError, Reason};
use super::openapi::OpenApi;
use super::resources::{Resource, by_plural};
use super::selector::{FieldSelector, LabelSelector};
use super::{apply, defaults, patch, validation};
use crate::store::{ObjectKey, Store, Stored};

/// How many times a patch or internal update is retried when it races another writer.
const RETRIES: usize = 8;

/// What to do with fields the schema does not know (`fieldValidation`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FieldValidation {
    /// Drop them silently.
    Ignore,
    /// Drop them and answer a `Warning` header (Kubernetes' default).
    #[default]
    Warn,
    /// Reject the request with 400.
    Strict,
}

impl FieldValidation {
    /// Parses the query parameter; unknown values are a 400.
    pub fn parse(s: Option<&str>) -> Result<Self, ApiError> {
        match s {
            None | Some("") | Some("Warn") => Ok(FieldValidation::Warn),
            Some("Ignore") => Ok(FieldValidation::Ignore),
            Some("Strict") => Ok(FieldValidation::Strict),
            Some(other) => Err(ApiError::bad_request(format!(
                "fieldValidation parameter unsupported: {other}"
            ))),
        }
    }
}

/// Options common to writes.
#[derive(Debug, Clone, Default)]
pub struct WriteOptions {
    /// `dryRun=All`: do everything but persist.
    pub dry_run: bool,
    /// The manager recorded in managedFields.
    pub field_manager: String,
    /// Unknown field handling.
    pub field_validation: FieldValidation,
}

impl WriteOptions {
    /// Options for a controller's own writes.
    pub fn controller(manager: &str) -> Self {
        WriteOptions {
            dry_run: false,
            field_manager: manager.to_string(),
            field_validation: FieldValidation::Ignore,
        }
    }
}

/// The result of a write.
#[derive(Debug)]
pub struct Written {
    /// The object as stored (or as it would be, for a dry run).
    pub object: Arc<Value>,
    /// Warnings for the `Warning` header.
    pub warnings: Vec<String>,
}

/// The body of a PATCH.
#[derive(Debug)]
pub enum PatchBody {
    /// `application/json-patch+json`
    Json(Vec<u8>),
    /// `application/merge-patch+json`
    Merge(Value),
    /// `application/strategic-merge-patch+json`
    Strategic(Value),
    /// `application/apply-patch+yaml` (server-side apply), with `force`.
    Apply(Value, bool),
}

/// Deletion propagation (`propagationPolicy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Propagation {
    /// Dependents are left alone, their owner references removed.
    Orphan,
    /// The owner is deleted now; dependents by the garbage collector afterwards.
    Background,
    /// Dependents are deleted first; the owner waits with a finalizer.
    Foreground,
}

/// Options of a delete.
#[derive(Debug, Clone, Default)]
pub struct DeleteOptions {
    /// `propagationPolicy` (None: the kind's default, Background).
    pub propagation: Option<Propagation>,
    /// `gracePeriodSeconds`.
    pub grace_period: Option<i64>,
    /// `preconditions.uid`.
    pub uid: Option<String>,
    /// `preconditions.resourceVersion`.
    pub resource_version: Option<String>,
    /// `dryRun=All`.
    pub dry_run: bool,
}

/// The result of a delete.
#[derive(Debug)]
pub struct Deleted {
    /// The object: gone (with the delete's resourceVersion) or marked for deletion.
    pub object: Arc<Value>,
    /// Whether it is gone now (200) or waits for finalizers (202).
    pub gone: bool,
}

/// A filtered list.
#[derive(Debug)]
pub struct Listed {
    /// Matching objects.
    pub items: Vec<Arc<Value>>,
    /// The list's resourceVersion.
    pub revision: i64,
    /// The continue token, when more remain.
    pub continue_token: Option<String>,
}

/// The object service.
#[derive(Clone)]
pub struct Objects {
    store: Store,
    openapi: Arc<OpenApi>,
    event_rate: EventRate,
}

/// How fast one component may create Events: Kubernetes' client-side limit on a component's
/// event writes (the kubelet's `eventRecordQPS` and `eventBurst`, 50 and 100 by default).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EventRate {
    /// Events per second once the burst is spent; 0 means no limit.
    pub qps: f64,
    /// Events allowed at once.
    pub burst: u32,
}

impl Default for EventRate {
    fn default() -> Self {
        EventRate {
            qps: 50.0,
            burst: 100,
        }
    }
}

/// Now, as Kubernetes writes timestamps.
pub fn timestamp(now: DateTime<Utc>) -> String {
    now.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Kubernetes' `generateName` suffix alphabet (no vowels, no confusable characters).
const NAME_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// `prefix` plus five random characters, as Kubernetes generates names.
pub fn generate_name(prefix: &str) -> String {
    let mut rng = rand::rng();
    let mut name = prefix.to_string();
    for _ in 0..5 {
        name.push(NAME_ALPHABET[rng.random_range(0..NAME_ALPHABET.len())] as char);
    }
    name
}

fn meta(object: &Value) -> &Value {
    object.get("metadata").unwrap_or(&Value::Null)
}

fn meta_mut(object: &mut Value) -> &mut Map<String, Value> {
    if !object.get("metadata").is_some_and(Value::is_object) {
        object["metadata"] = json!({});
    }
    object["metadata"]
        .as_object_mut()
        .expect("metadata is an object")
}

/// The object's name.
pub fn name_of(object: &Value) -> &str {
    meta(object)["name"].as_str().unwrap_or_default()
}

fn finalizers(object: &Value) -> Vec<String> {
    meta(object)["finalizers"]
        .as_array()
        .map(|f| {
            f.iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// Namespaces also wait on `spec.finalizers` (the namespace controller's "kubernetes").
fn pending_finalizers(resource: &Resource, object: &Value) -> bool {
    let spec_finalizers = resource.kind == "Namespace"
        && object
            .pointer("/spec/finalizers")
            .and_then(Value::as_array)
            .is_some_and(|f| !f.is_empty());
    spec_finalizers || !finalizers(object).is_empty()
}

/// Whether this kind keeps `metadata.generation` (kinds with a spec and a status).
fn tracks_generation(resource: &Resource) -> bool {
    resource.has_status()
        && !matches!(
            resource.kind,
            "Namespace"
                | "Node"
                | "Service"
                | "PersistentVolumeClaim"
                | "PersistentVolume"
                | "ResourceQuota"
        )
}

/// Whether anything but metadata and status differs: what bumps `generation`.
fn spec_changed(old: &Value, new: &Value) -> bool {
    let empty = Map::new();
    !same_fields_but(
        old.as_object().unwrap_or(&empty),
        new.as_object().unwrap_or(&empty),
        &["metadata", "status"],
    )
}

/// Whether two maps are equal once the `ignored` keys are left out of both.
fn same_fields_but(a: &Map<String, Value>, b: &Map<String, Value>, ignored: &[&str]) -> bool {
    let counted =
        |m: &Map<String, Value>| m.keys().filter(|k| !ignored.contains(&k.as_str())).count();
    counted(a) == counted(b)
        && a.iter()
            .filter(|(k, _)| !ignored.contains(&k.as_str()))
            .all(|(k, v)| b.get(k) == Some(v))
}

/// Collects the paths of fields present (non-null) in `input` but dropped by normalisation.
fn unknown_fields(input: &Value, normalized: &Value, path: &str, out: &mut Vec<String>) {
    match (input, normalized) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in a {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                match b.get(k) {
                    Some(n) => unknown_fields(v, n, &p, out),
                    None if !v.is_null() => out.push(p),
                    None => {}
                }
            }
        }
        (Value::Array(a), Value::Array(b)) => {
            for (i, (v, n)) in a.iter().zip(b).enumerate() {
                unknown_fields(v, n, &format!("{path}[{i}]"), out);
            }
        }
        _ => {}
    }
}

/// Pod QoS class from its containers' requests and limits.
fn qos_class(pod: &Value) -> &'static str {
    let containers: Vec<&Value> = ["containers", "initContainers"]
        .iter()
        .filter_map(|k| pod.pointer(&format!("/spec/{k}")).and_then(Value::as_array))
        .flatten()
        .collect();
    let mut any = false;
    let mut guaranteed = true;
    for c in &containers {
        let requests = c.pointer("/resources/requests").and_then(Value::as_object);
        let limits = c.pointer("/resources/limits").and_then(Value::as_object);
        if requests.is_some_and(|r| !r.is_empty()) || limits.is_some_and(|l| !l.is_empty()) {
            any = true;
        }
        for res in ["cpu", "memory"] {
            let limit = limits.and_then(|l| l.get(res));
            let request = requests.and_then(|r| r.get(res)).or(limit);
            if limit.is_none() || request != limit {
                guaranteed = false;
            }
        }
    }
    match (any, guaranteed) {
        (false, _) => "BestEffort",
        (true, true) => "Guaranteed",
        (true, false) => "Burstable",
    }
}

impl Objects {
    /// A service over `store`, with the schemas used for strategic merge and apply.
    pub fn new(store: Store, openapi: Arc<OpenApi>) -> Self {
        Objects {
            store,
            openapi,
            event_rate: EventRate::default(),
        }
    }

    /// The same service, with `rate` as the limit on each component's Event writes (like a
    /// Kubernetes component's client settings).
    pub fn with_event_rate(mut self, rate: EventRate) -> Self {
        self.event_rate = rate;
        self
    }

    /// The limit on each component's Event writes.
    pub fn event_rate(&self) -> EventRate {
        self.event_rate
    }

    /// The underlying store (for watches).
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The OpenAPI documents.
    pub fn openapi(&self) -> &OpenApi {
        &self.openapi
    }

    fn key(resource: &Resource, namespace: &str, name: &str) -> ObjectKey {
        let namespace = if resource.namespaced { namespace } else { "" };
        ObjectKey::new(&resource.store_key(), namespace, name)
    }

    fn root(&self, resource: &Resource) -> String {
        self.openapi
            .definition_name(resource.group, resource.version, resource.kind)
            .unwrap_or_default()
            .to_string()
    }

    /// Reads one object.
    pub async fn get(
        &self,
        resource: &Resource,
        namespace: &str,
        name: &str,
    ) -> Result<Stored, ApiError> {
        self.store
            .get(&Self::key(resource, namespace, name))
            .await?
            .ok_or_else(|| ApiError::not_found(resource, name))
    }

    /// Lists objects matching the selectors, `limit` at a time, resuming from `continue_token`.
    pub async fn list(
        &self,
        resource: &Resource,
        namespace: Option<&str>,
        labels: &LabelSelector,
        fields: &FieldSelector,
        limit: Option<usize>,
        continue_token: Option<&str>,
    ) -> Result<Listed, ApiError> {
        let namespace = namespace.filter(|_| resource.namespaced);
        let (mut after_ns, mut after_name) = match continue_token {
            Some(token) => decode_continue(token)?,
            None => (String::new(), String::new()),
        };
        let mut items = Vec::new();
        let mut revision = None;
        loop {
            let want = limit.map(|l| l - items.len());
            let after = (!after_ns.is_empty() || !after_name.is_empty())
                .then_some((after_ns.as_str(), after_name.as_str()));
            let page = self
                .store
                .list(
                    &resource.store_key(),
                    namespace,
                    after,
                    want.map(|w| w.max(64)),
                )
                .await?;
            let revision = *revision.get_or_insert(page.revision);
            let mut last = None;
            for stored in &page.items {
                last = Some(stored);
                if labels.matches(&stored.object) && fields.matches(&stored.object) {
                    items.push(stored.object.clone());
                    if limit.is_some_and(|l| items.len() >= l) {
                        break;
                    }
                }
            }
            let full = limit.is_some_and(|l| items.len() >= l);
            let exhausted =
                !page.more && last.is_none_or(|l| std::ptr::eq(l, page.items.last().unwrap()));
            if let Some(last) = last {
                after_ns = meta(&last.object)["namespace"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                after_name = name_of(&last.object).to_string();
            }
            if full || exhausted {
                let more = !exhausted || (full && page.more);
                let continue_token = (limit.is_some() && more && last.is_some())
                    .then(|| encode_continue(revision, &after_ns, &after_name));
                return Ok(Listed {
                    items,
                    revision,
                    continue_token,
                });
            }
        }
    }

    /// Checks the body against the URL and the schema: kind, namespace, name, unknown fields.
    fn decode(
        &self,
        resource: &Resource,
        namespace: &str,
        name: Option<&str>,
        mut body: Value,
        validation: FieldValidation,
    ) -> Result<(Value, Vec<String>), ApiError> {
        if !body.is_object() {
            return Err(ApiError::bad_request(format!(
                "the body of the request was not a {} object",
                resource.kind
            )));
        }
        let api_version = resource.api_version();
        match body.get("apiVersion").and_then(Value::as_str) {
            Some(v) if v != api_version => {
                return Err(ApiError::bad_request(format!(
                    "the API version in the data ({v}) does not match the expected API version ({api_version})"
                )));
            }
            _ => body["apiVersion"] = json!(api_version),
        }
        match body.get("kind").and_then(Value::as_str) {
            Some(k) if k != resource.kind => {
                return Err(ApiError::bad_request(format!(
                    "the kind in the data ({k}) does not match the expected kind ({})",
                    resource.kind
                )));
            }
            _ => body["kind"] = json!(resource.kind),
        }
        let meta = meta_mut(&mut body);
        if resource.namespaced {
            match meta.get("namespace").and_then(Value::as_str) {
                Some(ns) if !ns.is_empty() && ns != namespace => {
                    return Err(ApiError::bad_request(
                        "the namespace of the provided object does not match the namespace sent on the request",
                    ));
                }
                _ => {
                    meta.insert("namespace".into(), json!(namespace));
                }
            }
        } else {
            meta.remove("namespace");
        }
        if let Some(url_name) = name {
            match meta.get("name").and_then(Value::as_str) {
                Some(n) if n != url_name => {
                    return Err(ApiError::bad_request(format!(
                        "the name of the object ({n}) does not match the name on the URL ({url_name})"
                    )));
                }
                _ => {
                    meta.insert("name".into(), json!(url_name));
                }
            }
        }
        // A copy is kept only to name the fields normalizing drops.
        let sent = (validation != FieldValidation::Ignore).then(|| body.clone());
        let normalized = (resource.normalize)(body).map_err(|e| {
            ApiError::bad_request(format!(
                "{} in version \"{}\" cannot be handled as a {}: {}",
                resource.kind, resource.version, resource.kind, e
            ))
        })?;
        let mut unknown = Vec::new();
        if let Some(sent) = &sent {
            unknown_fields(sent, &normalized, "", &mut unknown);
        }
        let warnings: Vec<String> = unknown
            .iter()
            .map(|p| format!("unknown field \"{p}\""))
            .collect();
        if validation == FieldValidation::Strict && !warnings.is_empty() {
            return Err(ApiError::bad_request(format!(
                "{} in version \"{}\" cannot be handled as a {}: strict decoding error: {}",
                resource.kind,
                resource.version,
                resource.kind,
                warnings.join(", ")
            )));
        }
        Ok((normalized, warnings))
    }

    async fn check_namespace(&self, resource: &Resource, namespace: &str) -> Result<(), ApiError> {
        if !resource.namespaced {
            return Ok(());
        }
        let namespaces = by_plural("", "v1", "namespaces").expect("namespaces are served");
        let ns = self
            .store
            .namespace(namespace)
            .ok_or_else(|| ApiError::not_found(namespaces, namespace))?;
        if meta(&ns)
            .get("deletionTimestamp")
            .is_some_and(|t| !t.is_null())
        {
            return Err(ApiError::forbidden(format!(
                "unable to create new content in namespace {namespace} because it is being terminated"
            )));
        }
        Ok(())
    }

    /// Creates an object.
    pub async fn create(
        &self,
        resource: &'static Resource,
        namespace: &str,
        body: Value,
        opts: &WriteOptions,
    ) -> Result<Written, ApiError> {
        self.create_inner(resource, namespace, body, opts, true)
            .await
    }

    async fn create_inner(
        &self,
        resource: &'static Resource,
        namespace: &str,
        body: Value,
        opts: &WriteOptions,
        record_fields: bool,
    ) -> Result<Written, ApiError> {
        let (mut object, warnings) =
            self.decode(resource, namespace, None, body, opts.field_validation)?;
        let now = Utc::now();
        {
            let meta = meta_mut(&mut object);
            let has_name = meta
                .get("name")
                .and_then(Value::as_str)
                .is_some_and(|n| !n.is_empty());
            if !has_name && let Some(prefix) = meta.get("generateName").and_then(Value::as_str) {
                let generated = generate_name(prefix);
                meta.insert("name".into(), json!(generated));
            }
            meta.insert("uid".into(), json!(uuid::Uuid::new_v4().to_string()));
            meta.insert("creationTimestamp".into(), json!(timestamp(now)));
            for field in [
                "resourceVersion",
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
                "selfLink",
            ] {
                meta.remove(field);
            }
            if tracks_generation(resource) {
                meta.insert("generation".into(), json!(1));
            } else {
                meta.remove("generation");
            }
        }
        if resource.has_status()
            && resource.kind != "Namespace"
            && resource.kind != "Node"
            && let Some(o) = object.as_object_mut()
        {
            o.remove("status");
        }
        defaults::apply_defaults(resource.group, resource.kind, &mut object);
        self.prepare_create(resource, &mut object).await?;
        let name = name_of(&object).to_string();
        let errors = validation::validate(
            resource.group,
            resource.kind,
            resource.namespaced,
            &object,
            None,
        );
        if !errors.is_empty() {
            return Err(ApiError::invalid(resource, &name, &errors));
        }
        self.check_namespace(resource, namespace).await?;
        if record_fields {
            let root = self.root(resource);
            // A create compares against the type's zero object; passing the one worked out
            // at start is the same as passing none, without working it out again.
            apply::record_update(
                self.openapi.zero_object(&root),
                &mut object,
                &opts.field_manager,
                None,
                self.openapi.schemas(),
                &root,
                &timestamp(now),
            );
        }
        if opts.dry_run {
            return Ok(Written {
                object: Arc::new(object),
                warnings,
            });
        }
        let stored = self
            .store
            .create(Self::key(resource, namespace, &name), object)
            .await
            .map_err(|e| ApiError::from_store(e, resource, &name))?;
        Ok(Written {
            object: stored.object,
            warnings,
        })
    }

    /// Kind-specific work on create: pod status, service cluster IPs.
    async fn prepare_create(
        &self,
        resource: &Resource,
        object: &mut Value,
    ) -> Result<(), ApiError> {
        match resource.kind {
            "Pod" => {
                let qos = qos_class(object);
                object["status"] = json!({"phase": "Pending", "qosClass": qos});
            }
            "Service" => {
                let wants_ip = object.pointer("/spec/type").and_then(Value::as_str)
                    != Some("ExternalName")
                    && object
                        .pointer("/spec/clusterIP")
                        .and_then(Value::as_str)
                        .is_none_or(str::is_empty);
                if wants_ip {
                    let ip = self.allocate_cluster_ip(resource).await?;
                    object["spec"]["clusterIP"] = json!(ip);
                    object["spec"]["clusterIPs"] = json!([ip]);
                }
                let node_ports = matches!(
                    object.pointer("/spec/type").and_then(Value::as_str),
                    Some("NodePort" | "LoadBalancer")
                );
                if node_ports
                    && let Some(ports) = object
                        .pointer_mut("/spec/ports")
                        .and_then(Value::as_array_mut)
                {
                    for port in ports {
                        if port.get("nodePort").is_none_or(Value::is_null) {
                            port["nodePort"] = json!(rand::rng().random_range(30000..32768));
                        }
                    }
                }
                object["status"] = json!({"loadBalancer": {}});
            }
            _ => {}
        }
        Ok(())
    }

    /// A free address in 10.43.0.0/16 (k3s' service range).
    async fn allocate_cluster_ip(&self, services: &Resource) -> Result<String, ApiError> {
        let taken = self
            .store
            .list(&services.store_key(), None, None, None)
            .await?;
        let used: std::collections::HashSet<String> = taken
            .items
            .iter()
            .filter_map(|s| {
                s.object
                    .pointer("/spec/clusterIP")
                    .and_then(Value::as_str)
                    .map(String::from)
            })
            .collect();
        let mut rng = rand::rng();
        for _ in 0..1000 {
            let ip = format!(
                "10.43.{}.{}",
                rng.random_range(0..=255),
                rng.random_range(1..=254)
            );
            if !used.contains(&ip) {
                return Ok(ip);
            }
        }
        Err(ApiError::internal("no free cluster IPs in 10.43.0.0/16"))
    }

    /// Replaces an object (PUT), or its status/finalize subresource.
    pub async fn update(
        &self,
        resource: &'static Resource,
        namespace: &str,
        name: &str,
        body: Value,
        subresource: Option<&str>,
        opts: &WriteOptions,
    ) -> Result<Written, ApiError> {
        let (new, warnings) =
            self.decode(resource, namespace, Some(name), body, opts.field_validation)?;
        let precondition = meta(&new)["resourceVersion"]
            .as_str()
            .filter(|s| !s.is_empty())
            .map(|rv| {
                rv.parse::<i64>()
                    .map_err(|_| ApiError::bad_request(format!("invalid resourceVersion {rv:?}")))
            })
            .transpose()?;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let current = self.get(resource, namespace, name).await?;
            if precondition.is_some_and(|rv| rv != current.revision) {
                return Err(ApiError::stale(resource, name));
            }
            let result = self
                .commit_update(
                    resource,
                    namespace,
                    name,
                    &current,
                    new.clone(),
                    subresource,
                    opts,
                    true,
                )
                .await;
            match result {
                // An unconditional update that raced another writer is retried on the new state.
                Err(e)
                    if e.reason == Reason::Conflict
                        && precondition.is_none()
                        && attempt < RETRIES =>
                {
                    continue;
                }
                other => {
                    return other.map(|mut w| {
                        w.warnings.extend(warnings);
                        w
                    });
                }
            }
        }
    }

    /// Applies system rules to `new` based on `current` and writes it with a revision check.
    #[allow(clippy::too_many_arguments)]
    async fn commit_update(
        &self,
        resource: &'static Resource,
        namespace: &str,
        name: &str,
        current: &Stored,
        mut new: Value,
        subresource: Option<&str>,
        opts: &WriteOptions,
        record_fields: bool,
    ) -> Result<Written, ApiError> {
        let old = current.object.as_ref();
        match subresource {
            Some("status") => {
                // Only status changes through /status; everything else stays as stored.
                let status = new.as_object_mut().and_then(|o| o.remove("status"));
                new = all_but_status_from(old, new);
                match status {
                    Some(s) => new["status"] = s,
                    None => {
                        if let Some(o) = new.as_object_mut() {
                            o.remove("status");
                        }
                    }
                }
            }
            Some("finalize") => {
                let finalizers = new
                    .pointer("/spec/finalizers")
                    .cloned()
                    .unwrap_or(json!([]));
                new = old.clone();
                new["spec"]["finalizers"] = finalizers;
            }
            Some(other) => {
                return Err(ApiError::new(
                    Reason::MethodNotAllowed,
                    format!(
                        "the server does not allow this method on the requested resource ({other})"
                    ),
                ));
            }
            None => {
                keep_allocated(resource.kind, old, &mut new);
                if resource.has_status() {
                    match old.get("status") {
                        Some(s) => new["status"] = s.clone(),
                        None => {
                            if let Some(o) = new.as_object_mut() {
                                o.remove("status");
                            }
                        }
                    }
                }
            }
        }
        // System metadata is the server's.
        {
            let old_meta = meta(old);
            let meta = meta_mut(&mut new);
            for field in [
                "uid",
                "creationTimestamp",
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
                "generation",
            ] {
                match old_meta.get(field) {
                    Some(v) => {
                        meta.insert(field.into(), v.clone());
                    }
                    None => {
                        meta.remove(field);
                    }
                }
            }
            meta.remove("resourceVersion");
        }
        if tracks_generation(resource) && spec_changed(old, &new) {
            let generation = meta(old)["generation"].as_i64().unwrap_or(0) + 1;
            meta_mut(&mut new).insert("generation".into(), json!(generation));
        }
        defaults::apply_defaults(resource.group, resource.kind, &mut new);
        let errors = validation::validate(
            resource.group,
            resource.kind,
            resource.namespaced,
            &new,
            Some(old),
        );
        if !errors.is_empty() {
            return Err(ApiError::invalid(resource, name, &errors));
        }
        if record_fields {
            let root = self.root(resource);
            let now = timestamp(Utc::now());
            apply::record_update(
                Some(old),
                &mut new,
                &opts.field_manager,
                subresource,
                self.openapi.schemas(),
                &root,
                &now,
            );
        }
        self.write_update(resource, namespace, name, current, new, opts)
            .await
    }

    /// Writes an already-prepared object; an object marked for deletion whose finalizers are
    /// all gone is deleted instead.
    async fn write_update(
        &self,
        resource: &'static Resource,
        namespace: &str,
        name: &str,
        current: &Stored,
        new: Value,
        opts: &WriteOptions,
    ) -> Result<Written, ApiError> {
        let key = Self::key(resource, namespace, name);
        let deleting = meta(&new)
            .get("deletionTimestamp")
            .is_some_and(|t| !t.is_null());
        if opts.dry_run {
            // A dry run answers what would be stored, at the version it is stored at now.
            let mut new = new;
            meta_mut(&mut new).insert(
                "resourceVersion".into(),
                json!(current.revision.to_string()),
            );
            return Ok(Written {
                object: Arc::new(new),
                warnings: Vec::new(),
            });
        }
        if deleting
            && !pending_finalizers(resource, &new)
            && !self.awaits_node(resource, &new).await
        {
            // The last finalizer went: the object is gone.
            let stored = self
                .store
                .delete(key, Some(current.revision))
                .await
                .map_err(|e| ApiError::from_store(e, resource, name))?;
            return Ok(Written {
                object: stored.object,
                warnings: Vec::new(),
            });
        }
        if unchanged(&new, &current.object) {
            // Nothing to write: Kubernetes answers with the object and keeps its version.
            return Ok(Written {
                object: current.object.clone(),
                warnings: Vec::new(),
            });
        }
        let stored = self
            .store
            .update(key, new, Some(current.revision))
            .await
            .map_err(|e| ApiError::from_store(e, resource, name))?;
        Ok(Written {
            object: stored.object,
            warnings: Vec::new(),
        })
    }

    /// Patches an object (or its status), retrying on races when the patch has no
    /// resourceVersion of its own.
    #[allow(clippy::too_many_arguments)]
    pub async fn patch(
        &self,
        resource: &'static Resource,
        namespace: &str,
        name: &str,
        body: PatchBody,
        subresource: Option<&str>,
        opts: &WriteOptions,
    ) -> Result<Written, ApiError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let result = self
                .patch_once(resource, namespace, name, &body, subresource, opts)
                .await;
            match result {
                Err(e)
                    if e.reason == Reason::Conflict
                        && !e.has_causes()
                        && attempt < RETRIES
                        && !patch_pins_version(&body) =>
                {
                    continue;
                }
                other => return other,
            }
        }
    }

    async fn patch_once(
        &self,
        resource: &'static Resource,
        namespace: &str,
        name: &str,
        body: &PatchBody,
        subresource: Option<&str>,
        opts: &WriteOptions,
    ) -> Result<Written, ApiError> {
        let current = match self.get(resource, namespace, name).await {
            Ok(current) => Some(current),
            Err(e)
                if e.reason == Reason::NotFound
                    && matches!(body, PatchBody::Apply(..))
                    && subresource.is_none() =>
            {
                None
            }
            Err(e) => return Err(e),
        };
        let invalid_patch = |e: patch::PatchError| {
            let reason = match e.status_code() {
                400 => Reason::BadRequest,
                413 => Reason::RequestEntityTooLarge,
                _ => Reason::Invalid,
            };
            ApiError::new(reason, format!("the patch could not be applied: {e}"))
        };
        let root = self.root(resource);
        let schemas = self.openapi.schemas();
        let Some(current) = current else {
            // Server-side apply creates.
            let PatchBody::Apply(applied, force) = body else {
                unreachable!()
            };
            let mut applied = applied.clone();
            meta_mut(&mut applied).insert("name".into(), json!(name));
            let now = timestamp(Utc::now());
            let object = apply::apply(
                None,
                &applied,
                &opts.field_manager,
                *force,
                None,
                schemas,
                &root,
                &now,
            )
            .map_err(|e| apply_error(resource, name, e))?;
            // An apply whose config owns nothing still leaves the creator on record.
            let record = object.pointer("/metadata/managedFields").is_none();
            let written = self
                .create_inner(resource, namespace, object, opts, record)
                .await?;
            return Ok(written);
        };
        let old = current.object.as_ref();
        let target = match subresource {
            Some("scale") => scale_of(resource, old)?,
            _ => old.clone(),
        };
        let mut patched = match body {
            PatchBody::Json(bytes) => patch::json_patch(&target, bytes).map_err(invalid_patch)?,
            PatchBody::Merge(p) => patch::merge_patch(&target, p),
            PatchBody::Strategic(p) => {
                let root = if subresource == Some("scale") {
                    "io.k8s.api.autoscaling.v1.Scale".to_string()
                } else {
                    root.clone()
                };
                patch::strategic_merge_patch(&target, p, schemas, &root).map_err(invalid_patch)?
            }
            PatchBody::Apply(applied, force) => {
                let now = timestamp(Utc::now());
                let mut applied = applied.clone();
                if let Some(m) = applied.get_mut("metadata").and_then(Value::as_object_mut) {
                    m.remove("resourceVersion");
                }
                let object = apply::apply(
                    Some(old),
                    &applied,
                    &opts.field_manager,
                    *force,
                    subresource,
                    schemas,
                    &root,
                    &now,
                )
                .map_err(|e| apply_error(resource, name, e))?;
                let (new, _) = self.decode(
                    resource,
                    namespace,
                    Some(name),
                    object,
                    FieldValidation::Ignore,
                )?;
                // Apply already recorded ownership.
                let result = self
                    .commit_update(
                        resource,
                        namespace,
                        name,
                        &current,
                        new,
                        subresource,
                        opts,
                        false,
                    )
                    .await;
                return result;
            }
        };
        if subresource == Some("scale") {
            let replicas = patched
                .pointer("/spec/replicas")
                .cloned()
                .unwrap_or(json!(0));
            let mut new = old.clone();
            new["spec"]["replicas"] = replicas;
            let written = self
                .commit_update(resource, namespace, name, &current, new, None, opts, true)
                .await?;
            return Ok(Written {
                object: Arc::new(scale_of(resource, &written.object)?),
                warnings: written.warnings,
            });
        }
        // A patch may carry a resourceVersion precondition.
        if let Some(rv) = meta(&patched)["resourceVersion"]
            .as_str()
            .filter(|s| !s.is_empty())
            && rv != current.revision.to_string()
        {
            return Err(ApiError::stale(resource, name));
        }
        let (new, warnings) = self.decode(
            resource,
            namespace,
            Some(name),
            std::mem::take(&mut patched),
            opts.field_validation,
        )?;
        let mut written = self
            .commit_update(
                resource,
                namespace,
                name,
                &current,
                new,
                subresource,
                opts,
                true,
            )
            .await?;
        written.warnings.extend(warnings);
        Ok(written)
    }

    /// Reads the scale subresource.
    pub async fn get_scale(
        &self,
        resource: &'static Resource,
        namespace: &str,
        name: &str,
    ) -> Result<Value, ApiError> {
        let current = self.get(resource, namespace, name).await?;
        scale_of(resource, &current.object)
    }

    /// Replaces the scale subresource (PUT .../scale).
    pub async fn update_scale(
        &self,
        resource: &'static Resource,
        namespace: &str,
        name: &str,
        body: Value,
        opts: &WriteOptions,
    ) -> Result<Value, ApiError> {
        let replicas = body
            .pointer("/spec/replicas")
            .cloned()
            .ok_or_else(|| ApiError::bad_request("the Scale object has no spec.replicas"))?;
        let current = self.get(resource, namespace, name).await?;
        if let Some(rv) = body
            .pointer("/metadata/resourceVersion")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            && rv != current.revision.to_string()
        {
            return Err(ApiError::stale(resource, name));
        }
        let mut new = current.object.as_ref().clone();
        new["spec"]["replicas"] = replicas;
        let written = self
            .commit_update(resource, namespace, name, &current, new, None, opts, true)
            .await?;
        scale_of(resource, &written.object)
    }

    /// Binds a pod to a node (POST pods/NAME/binding).
    pub async fn bind(
        &self,
        namespace: &str,
        name: &str,
        binding: &Value,
        opts: &WriteOptions,
    ) -> Result<(), ApiError> {
        let pods = by_plural("", "v1", "pods").expect("pods are served");
        let node = binding
            .pointer("/target/name")
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
            .ok_or_else(|| ApiError::bad_request("Binding target.name is required"))?;
        let current = self.get(pods, namespace, name).await?;
        self.bind_from(namespace, name, node, &current, opts).await
    }

    /// Like [`Objects::bind`] from the scheduler's cached copy of the pod, guarded by its
    /// resourceVersion, which spares the read; a stale copy falls back to [`Objects::bind`].
    pub async fn bind_cached(
        &self,
        pod: &Arc<Value>,
        binding: &Value,
        opts: &WriteOptions,
    ) -> Result<(), ApiError> {
        let namespace = pod["metadata"]["namespace"].as_str().unwrap_or_default();
        let name = name_of(pod);
        let node = binding["target"]["name"].as_str().unwrap_or_default();
        if let Some(current) = as_stored(pod).filter(|_| !node.is_empty()) {
            match self.bind_from(namespace, name, node, &current, opts).await {
                Err(e) if e.reason == Reason::Conflict => {}
                done => return done,
            }
        }
        self.bind(namespace, name, binding, opts).await
    }

    /// Binds the pod as it stands in `current` (the write fails with a Conflict if it is no
    /// longer current).
    async fn bind_from(
        &self,
        namespace: &str,
        name: &str,
        node: &str,
        current: &Stored,
        opts: &WriteOptions,
    ) -> Result<(), ApiError> {
        let pods = by_plural("", "v1", "pods").expect("pods are served");
        if let Some(bound) = current
            .object
            .pointer("/spec/nodeName")
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
        {
            return Err(ApiError::conflict(
                pods,
                name,
                &format!("pod {name} is already assigned to node \"{bound}\""),
            ));
        }
        if meta(&current.object)
            .get("deletionTimestamp")
            .is_some_and(|t| !t.is_null())
        {
            return Err(ApiError::conflict(
                pods,
                name,
                "pod is being deleted, cannot be assigned to a host",
            ));
        }
        let mut new = current.object.as_ref().clone();
        new["spec"]["nodeName"] = json!(node);
        let now = timestamp(Utc::now());
        let conditions = new["status"]["conditions"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let mut conditions: Vec<Value> = conditions
            .into_iter()
            .filter(|c| c["type"] != "PodScheduled")
            .collect();
        conditions.push(json!({"type": "PodScheduled", "status": "True", "lastProbeTime": null, "lastTransitionTime": now}));
        new["status"]["conditions"] = Value::Array(conditions);
        // Binding writes spec.nodeName, which a pod update may not change: write directly.
        let root = self.root(pods);
        apply::record_update(
            Some(&current.object),
            &mut new,
            &opts.field_manager,
            None,
            self.openapi.schemas(),
            &root,
            &now,
        );
        if opts.dry_run {
            return Ok(());
        }
        self.store
            .update(
                Self::key(pods, namespace, name),
                new,
                Some(current.revision),
            )
            .await
            .map_err(|e| ApiError::from_store(e, pods, name))?;
        Ok(())
    }

    /// Whether a pod must wait for its node to finish it (graceful deletion).
    async fn awaits_node(&self, resource: &Resource, object: &Value) -> bool {
        if resource.kind != "Pod" {
            return false;
        }
        let Some(node) = object
            .pointer("/spec/nodeName")
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
        else {
            return false;
        };
        if object
            .pointer("/metadata/deletionGracePeriodSeconds")
            .and_then(Value::as_i64)
            == Some(0)
        {
            return false;
        }
        let phase = object.pointer("/status/phase").and_then(Value::as_str);
        if matches!(phase, Some("Succeeded" | "Failed")) {
            return false;
        }
        let nodes = by_plural("", "v1", "nodes").expect("nodes are served");
        matches!(
            self.store.get(&Self::key(nodes, "", node)).await,
            Ok(Some(_))
        )
    }

    /// Deletes an object, honouring finalizers, propagation and (for pods on a node) grace.
    pub async fn delete(
        &self,
        resource: &'static Resource,
        namespace: &str,
        name: &str,
        options: &DeleteOptions,
    ) -> Result<Deleted, ApiError> {
        for _ in 0..RETRIES {
            match self.delete_once(resource, namespace, name, options).await {
                Err(e)
                    if e.reason == Reason::Conflict
                        && options.resource_version.is_none()
                        && e.message.contains("has been modified") =>
                {
                    continue;
                }
                other => return other,
            }
        }
        Err(ApiError::stale(resource, name))
    }

    async fn delete_once(
        &self,
        resource: &'static Resource,
        namespace: &str,
        name: &str,
        options: &DeleteOptions,
    ) -> Result<Deleted, ApiError> {
        let current = self.get(resource, namespace, name).await?;
        let old = current.object.as_ref();
        if let Some(uid) = &options.uid
            && meta(old)["uid"].as_str() != Some(uid.as_str())
        {
            return Err(ApiError::conflict(
                resource,
                name,
                &format!(
                    "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                    meta(old)["uid"].as_str().unwrap_or_default()
                ),
            ));
        }
        if let Some(rv) = &options.resource_version
            && *rv != current.revision.to_string()
        {
            return Err(ApiError::conflict(
                resource,
                name,
                &format!(
                    "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {}",
                    current.revision
                ),
            ));
        }
        let mut new = old.clone();
        let mut changed = false;
        let already_deleting = meta(old)
            .get("deletionTimestamp")
            .is_some_and(|t| !t.is_null());
        // Propagation is recorded as a finalizer the garbage collector acts on.
        let propagation = options.propagation.unwrap_or(Propagation::Background);
        let wanted = match propagation {
            Propagation::Orphan => Some("orphan"),
            Propagation::Foreground => Some("foregroundDeletion"),
            Propagation::Background => None,
        };
        let mut list = finalizers(old);
        if let Some(f) = wanted {
            let other = if f == "orphan" {
                "foregroundDeletion"
            } else {
                "orphan"
            };
            if !list.iter().any(|x| x == f)
                && (!already_deleting || list.iter().any(|x| x == other))
            {
                list.retain(|x| x != other);
                list.push(f.to_string());
                changed = true;
            }
        } else if already_deleting
            && list
                .iter()
                .any(|x| x == "orphan" || x == "foregroundDeletion")
        {
            list.retain(|x| x != "orphan" && x != "foregroundDeletion");
            changed = true;
        }
        if changed {
            meta_mut(&mut new).insert("finalizers".into(), json!(list));
        }
        let now = Utc::now();
        let is_pod_on_node = self.awaits_node(resource, old).await;
        if pending_finalizers(resource, &new) || is_pod_on_node {
            if !already_deleting {
                let grace = if is_pod_on_node {
                    options
                        .grace_period
                        .or_else(|| {
                            old.pointer("/spec/terminationGracePeriodSeconds")
                                .and_then(Value::as_i64)
                        })
                        .unwrap_or(30)
                } else {
                    0
                };
                let meta = meta_mut(&mut new);
                meta.insert(
                    "deletionTimestamp".into(),
                    json!(timestamp(now + chrono::Duration::seconds(grace))),
                );
                meta.insert("deletionGracePeriodSeconds".into(), json!(grace));
                if resource.kind == "Namespace" {
                    new["status"]["phase"] = json!("Terminating");
                }
                changed = true;
            } else if is_pod_on_node && options.grace_period == Some(0) {
                meta_mut(&mut new).insert("deletionGracePeriodSeconds".into(), json!(0));
                changed = true;
            }
            if !changed {
                return Ok(Deleted {
                    object: current.object.clone(),
                    gone: false,
                });
            }
            if options.dry_run {
                return Ok(Deleted {
                    object: Arc::new(new),
                    gone: false,
                });
            }
            if !pending_finalizers(resource, &new) && !self.awaits_node(resource, &new).await {
                // A forced grace of zero on a pod: gone now.
                let stored = self
                    .store
                    .delete(Self::key(resource, namespace, name), Some(current.revision))
                    .await
                    .map_err(|e| ApiError::from_store(e, resource, name))?;
                return Ok(Deleted {
                    object: stored.object,
                    gone: true,
                });
            }
            let stored = self
                .store
                .update(
                    Self::key(resource, namespace, name),
                    new,
                    Some(current.revision),
                )
                .await
                .map_err(|e| ApiError::from_store(e, resource, name))?;
            return Ok(Deleted {
                object: stored.object,
                gone: false,
            });
        }
        if options.dry_run {
            return Ok(Deleted {
                object: current.object.clone(),
                gone: true,
            });
        }
        let stored = self
            .store
            .delete(Self::key(resource, namespace, name), Some(current.revision))
            .await
            .map_err(|e| ApiError::from_store(e, resource, name))?;
        Ok(Deleted {
            object: stored.object,
            gone: true,
        })
    }

    /// Like [`Objects::modify`], but first tries the change on `cached` (a copy of the object
    /// a controller holds in its cache), guarded by its resourceVersion, which spares the
    /// read; if the cache was stale it falls back to [`Objects::modify`].
    pub async fn modify_cached(
        &self,
        resource: &'static Resource,
        cached: &Arc<Value>,
        subresource: Option<&str>,
        manager: &str,
        mut change: impl FnMut(&mut Value) -> bool,
    ) -> Result<Option<Arc<Value>>, ApiError> {
        let namespace = cached["metadata"]["namespace"].as_str().unwrap_or_default();
        let name = name_of(cached);
        if let Some(current) = as_stored(cached) {
            let opts = WriteOptions::controller(manager);
            match self
                .change_once(
                    resource,
                    namespace,
                    name,
                    &current,
                    subresource,
                    &opts,
                    &mut change,
                )
                .await
            {
                Err(e) if e.reason == Reason::Conflict => {}
                done => return done,
            }
        }
        self.modify(resource, namespace, name, subresource, manager, change)
            .await
    }

    /// Reads, changes and writes an object for a controller, retrying on conflicts. `change`
    /// returns false to skip the write.
    pub async fn modify(
        &self,
        resource: &'static Resource,
        namespace: &str,
        name: &str,
        subresource: Option<&str>,
        manager: &str,
        mut change: impl FnMut(&mut Value) -> bool,
    ) -> Result<Option<Arc<Value>>, ApiError> {
        let opts = WriteOptions::controller(manager);
        for _ in 0..RETRIES {
            let current = self.get(resource, namespace, name).await?;
            match self
                .change_once(
                    resource,
                    namespace,
                    name,
                    &current,
                    subresource,
                    &opts,
                    &mut change,
                )
                .await
            {
                Err(e) if e.reason == Reason::Conflict => continue,
                done => return done,
            }
        }
        Err(ApiError::stale(resource, name))
    }

    /// One attempt of [`Objects::modify`]: `change` applied to `current` and committed, guarded
    /// by its revision (a Conflict error when it is stale). `None` when `change` declined.
    #[allow(clippy::too_many_arguments)]
    async fn change_once(
        &self,
        resource: &'static Resource,
        namespace: &str,
        name: &str,
        current: &Stored,
        subresource: Option<&str>,
        opts: &WriteOptions,
        change: &mut impl FnMut(&mut Value) -> bool,
    ) -> Result<Option<Arc<Value>>, ApiError> {
        let mut new = current.object.as_ref().clone();
        if !change(&mut new) {
            return Ok(None);
        }
        self.commit_update(
            resource,
            namespace,
            name,
            current,
            new,
            subresource,
            opts,
            true,
        )
        .await
        .map(|written| Some(written.object))
    }
}

/// `old` without its `status`, built from `new` where their top-level fields are equal
/// (comparing is cheaper than copying: a status write from a controller changes nothing
/// else). `new` must have no `status`.
fn all_but_status_from(old: &Value, new: Value) -> Value {
    let (Some(o), Value::Object(mut n)) = (old.as_object(), new) else {
        let mut copy = old.clone();
        if let Some(o) = copy.as_object_mut() {
            o.remove("status");
        }
        return copy;
    };
    let same_keys = o.keys().filter(|k| k.as_str() != "status").eq(n.keys());
    if !same_keys {
        let mut copy = o.clone();
        copy.remove("status");
        return Value::Object(copy);
    }
    for (k, v) in o {
        if let Some(mine) = n.get_mut(k)
            && mine != v
        {
            *mine = v.clone();
        }
    }
    Value::Object(n)
}

/// A cached copy of an object as the store's current state, at its resourceVersion (a write
/// guarded by it fails with a Conflict if the copy is stale).
fn as_stored(cached: &Arc<Value>) -> Option<Stored> {
    let revision = cached["metadata"]["resourceVersion"]
        .as_str()?
        .parse::<i64>()
        .ok()?;
    Some(Stored {
        revision,
        object: cached.clone(),
    })
}

/// Carries over what the server allocated or owns when an update leaves it out: a Service's
/// cluster IPs, IP families and node ports, a Namespace's `spec.finalizers`.
fn keep_allocated(kind: &str, old: &Value, new: &mut Value) {
    match kind {
        "Namespace" => {
            if let Some(finalizers) = old.pointer("/spec/finalizers") {
                new["spec"]["finalizers"] = finalizers.clone();
            }
        }
        "Service" => {
            for field in ["clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy"] {
                let missing = new
                    .pointer(&format!("/spec/{field}"))
                    .is_none_or(|v| v.is_null() || v == "" || v == &json!([]));
                if let (true, Some(value)) = (missing, old.pointer(&format!("/spec/{field}"))) {
                    new["spec"][field] = value.clone();
                }
            }
            let old_ports = old
                .pointer("/spec/ports")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            if let Some(ports) = new.pointer_mut("/spec/ports").and_then(Value::as_array_mut) {
                for port in ports
                    .iter_mut()
                    .filter(|p| p.get("nodePort").is_none_or(Value::is_null))
                {
                    let same = old_ports.iter().find(|o| {
                        o["port"] == port["port"] && o.get("nodePort").is_some_and(|n| !n.is_null())
                    });
                    if let Some(same) = same {
                        port["nodePort"] = same["nodePort"].clone();
                    }
                }
            }
        }
        _ => {}
    }
}

/// Whether `new` equals the stored object but for the resourceVersion the store assigns.
fn unchanged(new: &Value, stored: &Value) -> bool {
    let (Some(a), Some(b)) = (new.as_object(), stored.as_object()) else {
        return false;
    };
    a.len() == b.len()
        && a.iter().all(|(k, v)| {
            if k != "metadata" {
                return b.get(k) == Some(v);
            }
            let (Some(m1), Some(m2)) = (v.as_object(), b.get(k).and_then(Value::as_object)) else {
                return false;
            };
            same_fields_but(m1, m2, &["resourceVersion"])
        })
}

fn patch_pins_version(body: &PatchBody) -> bool {
    let value = match body {
        PatchBody::Merge(v) | PatchBody::Strategic(v) => v,
        _ => return false,
    };
    value
        .pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .is_some_and(|s| !s.is_empty())
}

fn apply_error(resource: &Resource, name: &str, error: apply::ApplyError) -> ApiError {
    match error {
        apply::ApplyError::Conflicts(conflicts) => {
            let mut e = ApiError::new(Reason::Conflict, apply::conflict_message(&conflicts))
                .about(resource, name);
            e.details_mut().causes = conflicts
                .iter()
                .map(|c| {
                    (
                        "FieldManagerConflict".to_string(),
                        c.cause_message(),
                        c.field.clone(),
                    )
                })
                .collect();
            e
        }
        other => ApiError::new(Reason::Invalid, other.to_string()),
    }
}

/// The autoscaling/v1 Scale view of a scalable object.
fn scale_of(resource: &Resource, object: &Value) -> Result<Value, ApiError> {
    if !resource.subresources.contains(&"scale") {
        return Err(ApiError::not_found(resource, name_of(object)));
    }
    let m = meta(object);
    let selector = object
        .pointer("/spec/selector")
        .map(|s| {
            LabelSelector::from_json(s)
                .map(|sel| selector_string(&sel))
                .unwrap_or_default()
        })
        .unwrap_or_default();
    Ok(json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": m["name"], "namespace": m["namespace"], "uid": m["uid"],
            "resourceVersion": m["resourceVersion"], "creationTimestamp": m["creationTimestamp"],
        },
        "spec": {"replicas": object.pointer("/spec/replicas").cloned().unwrap_or(json!(1))},
        "status": {
            "replicas": object.pointer("/status/replicas").cloned().unwrap_or(json!(0)),
            "selector": selector,
        },
    }))
}

/// Renders a selector in Kubernetes' string form (`a=b,c in (d,e)`).
pub fn selector_string(sel: &LabelSelector) -> String {
    use super::selector::Requirement;
    sel.requirements
        .iter()
        .map(|r| match r {
            Requirement::Exists(k) => k.clone(),
            Requirement::DoesNotExist(k) => format!("!{k}"),
            Requirement::In(k, set) if set.len() == 1 => {
                format!("{k}={}", set.iter().next().unwrap())
            }
            Requirement::In(k, set) => format!(
                "{k} in ({})",
                set.iter().cloned().collect::<Vec<_>>().join(",")
            ),
            Requirement::NotIn(k, set) if set.len() == 1 => {
                format!("{k}!={}", set.iter().next().unwrap())
            }
            Requirement::NotIn(k, set) => format!(
                "{k} notin ({})",
                set.iter().cloned().collect::<Vec<_>>().join(",")
            ),
            Requirement::Gt(k, n) => format!("{k}>{n}"),
            Requirement::Lt(k, n) => format!("{k}<{n}"),
        })
        .collect::<Vec<_>>()
        .join(",")
}

fn encode_continue(revision: i64, namespace: &str, name: &str) -> String {
    use base64::Engine;
    let token = json!({"rv": revision, "ns": namespace, "name": name}).to_string();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(token)
}

fn decode_continue(token: &str) -> Result<(String, String), ApiError> {
    use base64::Engine;
    let bad = || ApiError::bad_request("continue key is not valid");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .map_err(|_| bad())?;
    let value: Value = serde_json::from_slice(&bytes).map_err(|_| bad())?;
    Ok((
        value["ns"].as_str().ok_or_else(bad)?.to_string(),
        value["name"].as_str().ok_or_else(bad)?.to_string(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_writes_keep_everything_else_as_stored() {
        let old = json!({"kind": "Pod", "metadata": {"name": "a", "labels": {"x": "1"}},
            "spec": {"n": 1}, "status": {"phase": "Running"}});
        let changed = json!({"kind": "Pod", "metadata": {"name": "a", "labels": {"x": "2"}},
            "spec": {"n": 1}});
        let expected = json!({"kind": "Pod", "metadata": {"name": "a", "labels": {"x": "1"}},
            "spec": {"n": 1}});
        assert_eq!(all_but_status_from(&old, changed), expected);
        let reordered = json!({"spec": {"n": 2}, "kind": "Pod", "extra": true});
        let out = all_but_status_from(&old, reordered);
        assert_eq!(out, expected);
        assert_eq!(
            out.as_object().unwrap().keys().collect::<Vec<_>>(),
            ["kind", "metadata", "spec"]
        );
        assert_eq!(all_but_status_from(&old, json!(null)), expected);
    }

    #[test]
    fn unknown_fields_are_found_by_path() {
        let input = json!({"spec": {"replicas": 1, "bogus": true, "template": {"spec": {"containers": [{"name": "a", "imagee": "x"}]}}}, "gone": null});
        let normalized =
            json!({"spec": {"replicas": 1, "template": {"spec": {"containers": [{"name": "a"}]}}}});
        let mut out = Vec::new();
        unknown_fields(&input, &normalized, "", &mut out);
        assert_eq!(
            out,
            vec!["spec.bogus", "spec.template.spec.containers[0].imagee"]
        );
    }

    #[test]
    fn generation_tracks_spec_not_metadata_or_status() {
        let a = json!({"metadata": {"labels": {"a": "1"}}, "spec": {"replicas": 1}, "status": {"x": 1}});
        let mut b = a.clone();
        b["metadata"]["labels"]["a"] = json!("2");
        b["status"]["x"] = json!(2);
        assert!(!spec_changed(&a, &b));
        b["spec"]["replicas"] = json!(2);
        assert!(spec_changed(&a, &b));
    }

    #[test]
    fn qos_classes() {
        let pod = |resources: Value| json!({"spec": {"containers": [{"name": "a", "resources": resources}]}});
        assert_eq!(qos_class(&pod(json!({}))), "BestEffort");
        assert_eq!(
            qos_class(&pod(json!({"limits": {"cpu": "1", "memory": "1Gi"}}))),
            "Guaranteed"
        );
        assert_eq!(
            qos_class(&pod(json!({"requests": {"cpu": "1"}}))),
            "Burstable"
        );
    }

    #[test]
    fn generated_names_use_the_kubernetes_alphabet() {
        let n = generate_name("web-");
        assert_eq!(n.len(), 9);
        assert!(n[4..].bytes().all(|b| NAME_ALPHABET.contains(&b)));
    }

    #[test]
    fn continue_tokens_round_trip() {
        let t = encode_continue(7, "default", "b");
        assert_eq!(decode_continue(&t).unwrap(), ("default".into(), "b".into()));
        assert!(decode_continue("!!").is_err());
    }
}
