//! The registry of kinds skiff serves. Adding a kind is a row here; handlers, discovery,
//! OpenAPI, tables, defaulting and validation all read this table.

use k8s_openapi::api::{
    apps, authentication, authorization, batch, coordination, core, discovery, networking,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// One served resource.
#[derive(Debug)]
pub struct Resource {
    /// API group; `""` for core.
    pub group: &'static str,
    /// API version within the group.
    pub version: &'static str,
    /// Kind, e.g. `Deployment`.
    pub kind: &'static str,
    /// Plural resource name used in URLs, e.g. `deployments`.
    pub plural: &'static str,
    /// Singular name, e.g. `deployment`.
    pub singular: &'static str,
    /// Short names kubectl accepts, e.g. `deploy`.
    pub short_names: &'static [&'static str],
    /// Whether objects live in namespaces.
    pub namespaced: bool,
    /// Discovery categories, e.g. `all`.
    pub categories: &'static [&'static str],
    /// Subresources served besides the object itself (`status`, `scale`, `log`, `binding`).
    pub subresources: &'static [&'static str],
    /// Field selector paths besides `metadata.name` and `metadata.namespace`.
    pub field_selectors: &'static [&'static str],
    /// Decodes into the typed struct and encodes back: normalises the JSON, drops unknown
    /// fields, and fails on type errors.
    pub normalize: fn(Value) -> Result<Value, serde_json::Error>,
    /// Whether objects are stored; the review kinds are answered on create and never kept.
    pub stored: bool,
}

/// The verbs of a stored resource.
pub const STORED_VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

/// The verbs of a create-only review resource.
pub const REVIEW_VERBS: &[&str] = &["create"];

fn roundtrip<T: Serialize + DeserializeOwned>(value: Value) -> Result<Value, serde_json::Error> {
    serde_json::to_value(serde_json::from_value::<T>(value)?)
}

impl Resource {
    /// `v1` for core, `group/version` otherwise.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// The store's resource key: `plural` for core, `plural.group` otherwise.
    pub fn store_key(&self) -> String {
        if self.group.is_empty() {
            self.plural.to_string()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    /// `plural` or `plural.group`, as Kubernetes names a resource in error messages.
    pub fn qualified(&self) -> String {
        self.store_key()
    }

    /// `Kind` or `Kind.group`, as Kubernetes names a kind in Invalid messages.
    pub fn qualified_kind(&self) -> String {
        if self.group.is_empty() {
            self.kind.to_string()
        } else {
            format!("{}.{}", self.kind, self.group)
        }
    }

    /// Whether writes to the object itself leave `status` alone (a status subresource).
    pub fn has_status(&self) -> bool {
        self.subresources.contains(&"status")
    }

    /// Whether the field selector path is supported for this kind.
    pub fn supports_field(&self, path: &str) -> bool {
        path == "metadata.name"
            || (path == "metadata.namespace" && self.namespaced)
            || self.field_selectors.contains(&path)
    }

    /// The verbs discovery advertises.
    pub fn verbs(&self) -> &'static [&'static str] {
        if self.stored {
            STORED_VERBS
        } else {
            REVIEW_VERBS
        }
    }

    /// The `/apis/...` or `/api/v1` prefix of this resource's group-version.
    pub fn group_version_path(&self) -> String {
        if self.group.is_empty() {
            format!("/api/{}", self.version)
        } else {
            format!("/apis/{}/{}", self.group, self.version)
        }
    }
}

const NONE: &[&str] = &[];
const ALL: &[&str] = &["all"];
const STATUS: &[&str] = &["status"];
const STATUS_SCALE: &[&str] = &["status", "scale"];

macro_rules! resource {
    ($group:expr, $version:expr, $kind:expr, $plural:expr, $singular:expr, $short:expr,
     $namespaced:expr, $categories:expr, $subresources:expr, $fields:expr, $ty:ty) => {
        Resource {
            group: $group,
            version: $version,
            kind: $kind,
            plural: $plural,
            singular: $singular,
            short_names: $short,
            namespaced: $namespaced,
            categories: $categories,
            subresources: $subresources,
            field_selectors: $fields,
            normalize: roundtrip::<$ty>,
            stored: true,
        }
    };
}

/// Every resource skiff serves.
#[rustfmt::skip]
pub static RESOURCES: &[Resource] = &[
    //        group, version, kind, plural, singular, short names, namespaced, categories, subresources, field selectors, type
    resource!("", "v1", "Namespace", "namespaces", "namespace", &["ns"], false, NONE, &["status", "finalize"], &["status.phase"], core::v1::Namespace),
    resource!("", "v1", "Pod", "pods", "pod", &["po"], true, ALL, &["status", "log", "binding"],
        &["spec.nodeName", "spec.restartPolicy", "spec.schedulerName", "spec.serviceAccountName",
          "spec.hostNetwork", "status.phase", "status.podIP", "status.nominatedNodeName"], core::v1::Pod),
    resource!("", "v1", "Service", "services", "service", &["svc"], true, ALL, STATUS, NONE, core::v1::Service),
    resource!("", "v1", "Endpoints", "endpoints", "endpoints", &["ep"], true, NONE, NONE, NONE, core::v1::Endpoints),
    resource!("", "v1", "ConfigMap", "configmaps", "configmap", &["cm"], true, NONE, NONE, NONE, core::v1::ConfigMap),
    resource!("", "v1", "Secret", "secrets", "secret", NONE, true, NONE, NONE, &["type"], core::v1::Secret),
    resource!("", "v1", "Event", "events", "event", &["ev"], true, NONE, NONE,
        &["involvedObject.kind", "involvedObject.namespace", "involvedObject.name", "involvedObject.uid",
          "involvedObject.apiVersion", "involvedObject.resourceVersion", "involvedObject.fieldPath",
          "reason", "reportingComponent", "source", "type"], core::v1::Event),
    resource!("", "v1", "Node", "nodes", "node", &["no"], false, NONE, STATUS, &["spec.unschedulable"], core::v1::Node),
    resource!("", "v1", "ServiceAccount", "serviceaccounts", "serviceaccount", &["sa"], true, NONE, NONE, NONE, core::v1::ServiceAccount),
    resource!("", "v1", "PersistentVolumeClaim", "persistentvolumeclaims", "persistentvolumeclaim", &["pvc"], true, NONE, STATUS, NONE, core::v1::PersistentVolumeClaim),
    resource!("", "v1", "PersistentVolume", "persistentvolumes", "persistentvolume", &["pv"], false, NONE, STATUS, NONE, core::v1::PersistentVolume),
    resource!("", "v1", "ResourceQuota", "resourcequotas", "resourcequota", &["quota"], true, NONE, STATUS, NONE, core::v1::ResourceQuota),
    resource!("", "v1", "LimitRange", "limitranges", "limitrange", &["limits"], true, NONE, NONE, NONE, core::v1::LimitRange),
    resource!("apps", "v1", "Deployment", "deployments", "deployment", &["deploy"], true, ALL, STATUS_SCALE, NONE, apps::v1::Deployment),
    resource!("apps", "v1", "ReplicaSet", "replicasets", "replicaset", &["rs"], true, ALL, STATUS_SCALE, &["status.replicas"], apps::v1::ReplicaSet),
    resource!("apps", "v1", "StatefulSet", "statefulsets", "statefulset", &["sts"], true, ALL, STATUS_SCALE, NONE, apps::v1::StatefulSet),
    resource!("apps", "v1", "DaemonSet", "daemonsets", "daemonset", &["ds"], true, ALL, STATUS, NONE, apps::v1::DaemonSet),
    resource!("apps", "v1", "ControllerRevision", "controllerrevisions", "controllerrevision", NONE, true, NONE, NONE, NONE, apps::v1::ControllerRevision),
    resource!("batch", "v1", "Job", "jobs", "job", NONE, true, ALL, STATUS, &["status.successful"], batch::v1::Job),
    resource!("batch", "v1", "CronJob", "cronjobs", "cronjob", &["cj"], true, ALL, STATUS, NONE, batch::v1::CronJob),
    resource!("coordination.k8s.io", "v1", "Lease", "leases", "lease", NONE, true, NONE, NONE, NONE, coordination::v1::Lease),
    resource!("networking.k8s.io", "v1", "Ingress", "ingresses", "ingress", &["ing"], true, NONE, STATUS, NONE, networking::v1::Ingress),
    resource!("discovery.k8s.io", "v1", "EndpointSlice", "endpointslices", "endpointslice", NONE, true, NONE, NONE, NONE, discovery::v1::EndpointSlice),
    // Create-only reviews: answered from the caller's identity, never stored.
    review(resource!("authorization.k8s.io", "v1", "SelfSubjectAccessReview", "selfsubjectaccessreviews", "selfsubjectaccessreview", NONE, false, NONE, NONE, NONE, authorization::v1::SelfSubjectAccessReview)),
    review(resource!("authorization.k8s.io", "v1", "SelfSubjectRulesReview", "selfsubjectrulesreviews", "selfsubjectrulesreview", NONE, true, NONE, NONE, NONE, authorization::v1::SelfSubjectRulesReview)),
    review(resource!("authentication.k8s.io", "v1", "SelfSubjectReview", "selfsubjectreviews", "selfsubjectreview", NONE, false, NONE, NONE, NONE, authentication::v1::SelfSubjectReview)),
];

/// Marks a row as a create-only review kind.
const fn review(mut resource: Resource) -> Resource {
    resource.stored = false;
    resource
}

/// Finds a resource by group, version and plural (or singular/short name, for CLI use).
pub fn by_plural(group: &str, version: &str, plural: &str) -> Option<&'static Resource> {
    RESOURCES
        .iter()
        .find(|r| r.group == group && r.version == version && r.plural == plural)
}

/// Finds a resource by its apiVersion (`v1`, `apps/v1`) and kind.
pub fn by_kind(api_version: &str, kind: &str) -> Option<&'static Resource> {
    let (group, version) = split_api_version(api_version);
    RESOURCES
        .iter()
        .find(|r| r.group == group && r.version == version && r.kind == kind)
}

/// Finds a resource by its store key (`pods`, `deployments.apps`).
pub fn by_store_key(key: &str) -> Option<&'static Resource> {
    RESOURCES.iter().find(|r| r.store_key() == key)
}

/// Splits `apps/v1` into `("apps", "v1")` and `v1` into `("", "v1")`.
pub fn split_api_version(api_version: &str) -> (&str, &str) {
    match api_version.split_once('/') {
        Some((group, version)) => (group, version),
        None => ("", api_version),
    }
}

/// The distinct API groups served, in the order of [`RESOURCES`] (core excluded).
pub fn groups() -> Vec<(&'static str, &'static str)> {
    let mut groups: Vec<(&str, &str)> = Vec::new();
    for r in RESOURCES.iter().filter(|r| !r.group.is_empty()) {
        if !groups.contains(&(r.group, r.version)) {
            groups.push((r.group, r.version));
        }
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn lookups_agree() {
        let deploy = by_plural("apps", "v1", "deployments").unwrap();
        assert_eq!(deploy.store_key(), "deployments.apps");
        assert!(std::ptr::eq(
            deploy,
            by_kind("apps/v1", "Deployment").unwrap()
        ));
        assert!(std::ptr::eq(
            deploy,
            by_store_key("deployments.apps").unwrap()
        ));
        assert_eq!(by_plural("", "v1", "pods").unwrap().api_version(), "v1");
    }

    #[test]
    fn normalize_drops_unknown_fields_and_rejects_type_errors() {
        let cm = by_plural("", "v1", "configmaps").unwrap();
        let out = (cm.normalize)(json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "x"}, "bogus": 1, "data": {"a": "b"}}))
        .unwrap();
        assert!(out.get("bogus").is_none());
        assert_eq!(out["data"]["a"], "b");
        assert!(
            (cm.normalize)(json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "x"}, "data": {"a": 1}}))
            .is_err()
        );
    }

    #[test]
    fn every_kind_round_trips_a_minimal_object() {
        for r in RESOURCES {
            let obj =
                json!({"apiVersion": r.api_version(), "kind": r.kind, "metadata": {"name": "x"}});
            let out = (r.normalize)(obj);
            // Some kinds have required fields; those fail cleanly rather than panicking.
            if let Ok(out) = out {
                assert_eq!(out["kind"], r.kind);
            }
        }
    }
}
