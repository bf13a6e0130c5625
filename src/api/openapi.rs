//! OpenAPI v3 documents for the kinds skiff serves.
//!
//! Kubernetes clients discover the schemas of an API server through
//! `GET /openapi/v3` (a small index of group-versions) and
//! `GET /openapi/v3/<gv_path>?hash=<digest>` (one OpenAPI 3.0 document per
//! group-version). kubectl relies on these documents for:
//!
//! * `kubectl explain`, which finds a resource's kind through the
//!   `x-kubernetes-group-version-kind` extension of the operations on the
//!   resource's paths, then the schema carrying the same extension;
//! * `kubectl apply` (client-side), which computes strategic merge patches from
//!   the `x-kubernetes-patch-*` extensions of the kind's schema, provided a
//!   PATCH operation of that kind accepts `application/strategic-merge-patch+json`;
//! * `--validate`, `kubectl edit` and `kubectl apply`, which check that the
//!   PATCH operation of a kind takes the `fieldValidation` query parameter
//!   before trusting the server to validate fields. When it does, kubectl
//!   skips client-side schema validation entirely and sends
//!   `fieldValidation=Strict` (the default of `--validate`), so unknown
//!   fields must be rejected by the server; kubectl's client-side validator
//!   would only ever read `/openapi/v2`, which skiff does not serve.
//!
//! The schemas themselves come from `k8s-openapi`'s [`schemars::JsonSchema`]
//! implementations. Those carry no patch metadata and no list types, so this
//! module adds the `*List` schemas, the group-version-kind extensions and
//! Kubernetes' patch / list / map extensions from its own tables.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use k8s_openapi::api::apps::v1 as apps;
use k8s_openapi::api::autoscaling::v1 as autoscaling;
use k8s_openapi::api::autoscaling::v2 as autoscaling2;
use k8s_openapi::api::batch::v1 as batch;
use k8s_openapi::api::coordination::v1 as coordination;
use k8s_openapi::api::core::v1 as core_v1;
use k8s_openapi::api::discovery::v1 as discovery;
use k8s_openapi::api::networking::v1 as networking;
use k8s_openapi::api::policy::v1 as policy;
use k8s_openapi::api::rbac::v1 as rbac;
use k8s_openapi::api::scheduling::v1 as scheduling;
use k8s_openapi::api::storage::v1 as storage;
use k8s_openapi::apimachinery::pkg::apis::meta::v1 as meta;
use schemars::JsonSchema;
use schemars::generate::{SchemaGenerator, SchemaSettings};
use serde_json::{Map, Value, json};

/// One served resource, as the API server's registry of kinds describes it.
#[derive(Debug, Clone)]
pub struct ServedResource {
    /// API group, `""` for the core group.
    pub group: &'static str,
    /// API version, e.g. `"v1"`.
    pub version: &'static str,
    /// Kind, e.g. `"Deployment"`.
    pub kind: &'static str,
    /// Plural resource name used in URLs, e.g. `"deployments"`.
    pub plural: &'static str,
    /// Whether the resource lives in namespaces.
    pub namespaced: bool,
    /// Served subresources, e.g. `["status", "scale"]`.
    pub subresources: &'static [&'static str],
}

/// All OpenAPI v3 documents, built once at start-up (cache it in the server;
/// building may take tens of ms).
pub struct OpenApi {
    root: Value,
    docs: BTreeMap<String, (Value, String)>,
    schemas: Map<String, Value>,
    names: HashMap<(String, String, String), String>,
    /// Per definition name, the object a create is compared against for managedFields
    /// ([`crate::api::apply::zero_object`]), worked out once.
    zeros: HashMap<String, Value>,
}

impl OpenApi {
    /// Builds the index and one document per group-version of `resources`.
    ///
    /// Resources whose kind has no entry in this module's type table are left
    /// out (there is no schema to describe them).
    pub fn build(resources: &[ServedResource]) -> OpenApi {
        build(resources)
    }

    /// Body of `GET /openapi/v3`:
    /// `{"paths": {"api/v1": {"serverRelativeURL": "/openapi/v3/api/v1?hash=HEX"}, ...}}`.
    pub fn root(&self) -> &Value {
        &self.root
    }

    /// Body of `GET /openapi/v3/<gv_path>` (`gv_path` like `"api/v1"` or
    /// `"apis/apps/v1"`), and its hash (use it as the ETag).
    ///
    /// The hash is a 128-bit digest (upper-case hex) of `serde_json::to_vec`
    /// of the document (the bytes `Value::to_string` gives too), which is also
    /// what the root's `serverRelativeURL` carries.
    pub fn group_version(&self, gv_path: &str) -> Option<(&Value, &str)> {
        let gv_path = gv_path.trim_matches('/');
        self.docs
            .get(gv_path)
            .map(|(doc, hash)| (doc, hash.as_str()))
    }

    /// The `components.schemas` map covering every served kind (union across
    /// group-versions), used by strategic merge and server-side apply.
    pub fn schemas(&self) -> &Map<String, Value> {
        &self.schemas
    }

    /// The object a create of the definition `name` is compared against for managedFields.
    pub fn zero_object(&self, name: &str) -> Option<&Value> {
        self.zeros.get(name)
    }

    /// Definition name of a kind, e.g. `("apps", "v1", "Deployment")` ->
    /// `"io.k8s.api.apps.v1.Deployment"`. List kinds (`"DeploymentList"`) and
    /// the helper kinds in the documents (`Status`, `Scale`, ...) resolve too.
    pub fn definition_name(&self, group: &str, version: &str, kind: &str) -> Option<&str> {
        self.names
            .get(&(group.to_owned(), version.to_owned(), kind.to_owned()))
            .map(String::as_str)
    }
}

// ---------------------------------------------------------------------------
// The type table
// ---------------------------------------------------------------------------

/// A kind known to this module: its group-version-kind and the `k8s-openapi`
/// type describing it.
struct KindType {
    group: &'static str,
    version: &'static str,
    kind: &'static str,
    /// Whether a `<Kind>List` schema is synthesised for it.
    list: bool,
    /// Registers the type's schema (and its dependencies) with the generator
    /// and returns the definition name.
    add: fn(&mut SchemaGenerator) -> String,
}

fn add_type<T: JsonSchema>(generator: &mut SchemaGenerator) -> String {
    generator.subschema_for::<T>();
    T::schema_name().into_owned()
}

const fn listed<T: JsonSchema>(
    group: &'static str,
    version: &'static str,
    kind: &'static str,
) -> KindType {
    KindType {
        group,
        version,
        kind,
        list: true,
        add: add_type::<T>,
    }
}

const fn single<T: JsonSchema>(
    group: &'static str,
    version: &'static str,
    kind: &'static str,
) -> KindType {
    KindType {
        group,
        version,
        kind,
        list: false,
        add: add_type::<T>,
    }
}

/// (group, version, kind) -> k8s-openapi type. `listed` kinds also get a
/// `<Kind>List` schema with the same group-version.
const KINDS: &[KindType] = &[
    // core/v1
    listed::<core_v1::Namespace>("", "v1", "Namespace"),
    listed::<core_v1::Pod>("", "v1", "Pod"),
    listed::<core_v1::Service>("", "v1", "Service"),
    listed::<core_v1::Endpoints>("", "v1", "Endpoints"),
    listed::<core_v1::ConfigMap>("", "v1", "ConfigMap"),
    listed::<core_v1::Secret>("", "v1", "Secret"),
    listed::<core_v1::Event>("", "v1", "Event"),
    listed::<core_v1::Node>("", "v1", "Node"),
    listed::<core_v1::ServiceAccount>("", "v1", "ServiceAccount"),
    listed::<core_v1::PersistentVolumeClaim>("", "v1", "PersistentVolumeClaim"),
    listed::<core_v1::PersistentVolume>("", "v1", "PersistentVolume"),
    listed::<core_v1::ReplicationController>("", "v1", "ReplicationController"),
    listed::<core_v1::PodTemplate>("", "v1", "PodTemplate"),
    listed::<core_v1::LimitRange>("", "v1", "LimitRange"),
    listed::<core_v1::ResourceQuota>("", "v1", "ResourceQuota"),
    single::<core_v1::Binding>("", "v1", "Binding"),
    single::<meta::Status>("", "v1", "Status"),
    // apps/v1
    listed::<apps::Deployment>("apps", "v1", "Deployment"),
    listed::<apps::ReplicaSet>("apps", "v1", "ReplicaSet"),
    listed::<apps::StatefulSet>("apps", "v1", "StatefulSet"),
    listed::<apps::DaemonSet>("apps", "v1", "DaemonSet"),
    listed::<apps::ControllerRevision>("apps", "v1", "ControllerRevision"),
    // batch/v1
    listed::<batch::Job>("batch", "v1", "Job"),
    listed::<batch::CronJob>("batch", "v1", "CronJob"),
    // coordination.k8s.io/v1
    listed::<coordination::Lease>("coordination.k8s.io", "v1", "Lease"),
    // networking.k8s.io/v1
    listed::<networking::Ingress>("networking.k8s.io", "v1", "Ingress"),
    listed::<networking::IngressClass>("networking.k8s.io", "v1", "IngressClass"),
    listed::<networking::NetworkPolicy>("networking.k8s.io", "v1", "NetworkPolicy"),
    // discovery.k8s.io/v1
    listed::<discovery::EndpointSlice>("discovery.k8s.io", "v1", "EndpointSlice"),
    // autoscaling
    single::<autoscaling::Scale>("autoscaling", "v1", "Scale"),
    listed::<autoscaling::HorizontalPodAutoscaler>("autoscaling", "v1", "HorizontalPodAutoscaler"),
    listed::<autoscaling2::HorizontalPodAutoscaler>("autoscaling", "v2", "HorizontalPodAutoscaler"),
    // policy/v1
    single::<policy::Eviction>("policy", "v1", "Eviction"),
    listed::<policy::PodDisruptionBudget>("policy", "v1", "PodDisruptionBudget"),
    // rbac.authorization.k8s.io/v1
    listed::<rbac::Role>("rbac.authorization.k8s.io", "v1", "Role"),
    listed::<rbac::RoleBinding>("rbac.authorization.k8s.io", "v1", "RoleBinding"),
    listed::<rbac::ClusterRole>("rbac.authorization.k8s.io", "v1", "ClusterRole"),
    listed::<rbac::ClusterRoleBinding>("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding"),
    // storage.k8s.io/v1, scheduling.k8s.io/v1
    listed::<storage::StorageClass>("storage.k8s.io", "v1", "StorageClass"),
    listed::<scheduling::PriorityClass>("scheduling.k8s.io", "v1", "PriorityClass"),
];

const STATUS: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.Status";
const DELETE_OPTIONS: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions";
const WATCH_EVENT: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.WatchEvent";
const PATCH: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.Patch";
const LIST_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta";
const API_RESOURCE_LIST: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.APIResourceList";
const REF_PREFIX: &str = "#/components/schemas/";

/// Registers the apimachinery helper types every document uses.
fn add_common_types(generator: &mut SchemaGenerator) {
    add_type::<meta::Status>(generator);
    add_type::<meta::DeleteOptions>(generator);
    add_type::<meta::WatchEvent<Value>>(generator);
    add_type::<meta::Patch>(generator);
    add_type::<meta::ListMeta>(generator);
    add_type::<meta::APIResourceList>(generator);
}

fn find_kind(group: &str, version: &str, kind: &str) -> Option<&'static KindType> {
    KINDS
        .iter()
        .find(|k| k.group == group && k.version == version && k.kind == kind)
}

// ---------------------------------------------------------------------------
// Patch metadata
// ---------------------------------------------------------------------------

/// Kubernetes' patch / list / map markers for the fields of the types above,
/// as (definition, property, extensions). The definition is abbreviated:
/// `meta.v1.X` stands for `io.k8s.apimachinery.pkg.apis.meta.v1.X`, anything
/// else `G.V.X` for `io.k8s.api.G.V.X`. An empty property puts the extension
/// on the definition itself (struct types marked atomic).
///
/// Extensions are space-separated `key=value` pairs: `strategy` ->
/// `x-kubernetes-patch-strategy`, `key` -> `x-kubernetes-patch-merge-key`,
/// `list` -> `x-kubernetes-list-type`, `keys` -> `x-kubernetes-list-map-keys`
/// (comma-separated), `map` -> `x-kubernetes-map-type`.
///
/// The rows restate the `patchStrategy` / `patchMergeKey` struct tags and the
/// `+listType`, `+listMapKey`, `+mapType` and `+structType` markers of the Go
/// types in `k8s.io/api` and `k8s.io/apimachinery` (fields of inlined structs
/// included), limited to definitions reachable from [`KINDS`]. Rows whose
/// definition is not in a build are skipped; a test checks that every row
/// names an existing definition and property.
#[rustfmt::skip]
const PATCH_META: &[(&str, &str, &str)] = &[
    ("apps.v1.DaemonSetStatus", "conditions", "strategy=merge key=type list=map keys=type"),
    ("apps.v1.DeploymentSpec", "strategy", "strategy=retainKeys"),
    ("apps.v1.DeploymentStatus", "conditions", "strategy=merge key=type list=map keys=type"),
    ("apps.v1.ReplicaSetStatus", "conditions", "strategy=merge key=type list=map keys=type"),
    ("apps.v1.StatefulSetSpec", "volumeClaimTemplates", "list=atomic"),
    ("apps.v1.StatefulSetStatus", "conditions", "strategy=merge key=type list=map keys=type"),
    ("autoscaling.v1.CrossVersionObjectReference", "", "map=atomic"),
    ("autoscaling.v2.HPAScalingRules", "policies", "list=atomic"),
    ("autoscaling.v2.HorizontalPodAutoscalerSpec", "metrics", "list=atomic"),
    ("autoscaling.v2.HorizontalPodAutoscalerStatus", "conditions", "strategy=merge key=type list=map keys=type"),
    ("autoscaling.v2.HorizontalPodAutoscalerStatus", "currentMetrics", "list=atomic"),
    ("batch.v1.CronJobStatus", "active", "list=atomic"),
    ("batch.v1.JobSchedulingConfiguration", "resourceClaims", "strategy=merge key=name list=map keys=name"),
    ("batch.v1.JobStatus", "conditions", "strategy=merge key=type list=atomic"),
    ("batch.v1.PodFailurePolicy", "rules", "list=atomic"),
    ("batch.v1.PodFailurePolicyOnExitCodesRequirement", "values", "list=set"),
    ("batch.v1.PodFailurePolicyRule", "onPodConditions", "list=atomic"),
    ("batch.v1.SuccessPolicy", "rules", "list=atomic"),
    ("batch.v1.UncountedTerminatedPods", "failed", "list=set"),
    ("batch.v1.UncountedTerminatedPods", "succeeded", "list=set"),
    ("core.v1.Capabilities", "add", "list=atomic"),
    ("core.v1.Capabilities", "drop", "list=atomic"),
    ("core.v1.CephFSPersistentVolumeSource", "monitors", "list=atomic"),
    ("core.v1.CephFSVolumeSource", "monitors", "list=atomic"),
    ("core.v1.ConfigMapKeySelector", "", "map=atomic"),
    ("core.v1.ConfigMapProjection", "items", "list=atomic"),
    ("core.v1.ConfigMapVolumeSource", "items", "list=atomic"),
    ("core.v1.Container", "args", "list=atomic"),
    ("core.v1.Container", "command", "list=atomic"),
    ("core.v1.Container", "env", "strategy=merge key=name list=map keys=name"),
    ("core.v1.Container", "envFrom", "list=atomic"),
    ("core.v1.Container", "ports", "strategy=merge key=containerPort list=map keys=containerPort,protocol"),
    ("core.v1.Container", "resizePolicy", "list=atomic"),
    ("core.v1.Container", "restartPolicyRules", "list=atomic"),
    ("core.v1.Container", "volumeDevices", "strategy=merge key=devicePath list=map keys=devicePath"),
    ("core.v1.Container", "volumeMounts", "strategy=merge key=mountPath list=map keys=mountPath"),
    ("core.v1.ContainerImage", "names", "list=atomic"),
    ("core.v1.ContainerRestartRuleOnExitCodes", "values", "list=set"),
    ("core.v1.ContainerStatus", "allocatedResourcesStatus", "strategy=merge key=name list=map keys=name"),
    ("core.v1.ContainerStatus", "volumeMounts", "strategy=merge key=mountPath list=map keys=mountPath"),
    ("core.v1.DownwardAPIProjection", "items", "list=atomic"),
    ("core.v1.DownwardAPIVolumeSource", "items", "list=atomic"),
    ("core.v1.EndpointAddress", "", "map=atomic"),
    ("core.v1.EndpointPort", "", "map=atomic"),
    ("core.v1.EndpointSubset", "addresses", "list=atomic"),
    ("core.v1.EndpointSubset", "notReadyAddresses", "list=atomic"),
    ("core.v1.EndpointSubset", "ports", "list=atomic"),
    ("core.v1.Endpoints", "subsets", "list=atomic"),
    ("core.v1.EphemeralContainer", "args", "list=atomic"),
    ("core.v1.EphemeralContainer", "command", "list=atomic"),
    ("core.v1.EphemeralContainer", "env", "strategy=merge key=name list=map keys=name"),
    ("core.v1.EphemeralContainer", "envFrom", "list=atomic"),
    ("core.v1.EphemeralContainer", "ports", "strategy=merge key=containerPort list=map keys=containerPort,protocol"),
    ("core.v1.EphemeralContainer", "resizePolicy", "list=atomic"),
    ("core.v1.EphemeralContainer", "restartPolicyRules", "list=atomic"),
    ("core.v1.EphemeralContainer", "volumeDevices", "strategy=merge key=devicePath list=map keys=devicePath"),
    ("core.v1.EphemeralContainer", "volumeMounts", "strategy=merge key=mountPath list=map keys=mountPath"),
    ("core.v1.EvictionResponder", "", "map=atomic"),
    ("core.v1.ExecAction", "command", "list=atomic"),
    ("core.v1.FCVolumeSource", "targetWWNs", "list=atomic"),
    ("core.v1.FCVolumeSource", "wwids", "list=atomic"),
    ("core.v1.FileKeySelector", "", "map=atomic"),
    ("core.v1.HTTPGetAction", "httpHeaders", "list=atomic"),
    ("core.v1.HostAlias", "hostnames", "list=atomic"),
    ("core.v1.ISCSIPersistentVolumeSource", "portals", "list=atomic"),
    ("core.v1.ISCSIVolumeSource", "portals", "list=atomic"),
    ("core.v1.LimitRangeSpec", "limits", "list=atomic"),
    ("core.v1.LinuxContainerUser", "supplementalGroups", "list=atomic"),
    ("core.v1.LoadBalancerIngress", "ports", "list=atomic"),
    ("core.v1.LoadBalancerStatus", "ingress", "list=atomic"),
    ("core.v1.LocalObjectReference", "", "map=atomic"),
    ("core.v1.NamespaceSpec", "finalizers", "list=atomic"),
    ("core.v1.NamespaceStatus", "conditions", "strategy=merge key=type list=map keys=type"),
    ("core.v1.NodeAffinity", "preferredDuringSchedulingIgnoredDuringExecution", "list=atomic"),
    ("core.v1.NodeAllocatableResourceClaimStatus", "containers", "list=set"),
    ("core.v1.NodeAllocatableResourceClaimStatus", "mapping", "strategy=merge key=name list=map keys=name"),
    ("core.v1.NodeAllocatableResourceClaimStatus", "overhead", "strategy=merge key=name list=map keys=name"),
    ("core.v1.NodePodPreemptionPolicy", "disableResizePreemption", "list=set"),
    ("core.v1.NodeSelector", "", "map=atomic"),
    ("core.v1.NodeSelector", "nodeSelectorTerms", "list=atomic"),
    ("core.v1.NodeSelectorRequirement", "values", "list=atomic"),
    ("core.v1.NodeSelectorTerm", "", "map=atomic"),
    ("core.v1.NodeSelectorTerm", "matchExpressions", "list=atomic"),
    ("core.v1.NodeSelectorTerm", "matchFields", "list=atomic"),
    ("core.v1.NodeSpec", "podCIDRs", "strategy=merge list=set"),
    ("core.v1.NodeSpec", "taints", "list=atomic"),
    ("core.v1.NodeStatus", "addresses", "strategy=merge key=type list=map keys=type"),
    ("core.v1.NodeStatus", "conditions", "strategy=merge key=type list=map keys=type"),
    ("core.v1.NodeStatus", "declaredFeatures", "list=atomic"),
    ("core.v1.NodeStatus", "images", "list=atomic"),
    ("core.v1.NodeStatus", "runtimeHandlers", "list=atomic"),
    ("core.v1.NodeStatus", "volumesAttached", "list=atomic"),
    ("core.v1.NodeStatus", "volumesInUse", "list=atomic"),
    ("core.v1.ObjectFieldSelector", "", "map=atomic"),
    ("core.v1.ObjectReference", "", "map=atomic"),
    ("core.v1.PersistentVolumeClaimSpec", "accessModes", "list=atomic"),
    ("core.v1.PersistentVolumeClaimStatus", "accessModes", "list=atomic"),
    ("core.v1.PersistentVolumeClaimStatus", "allocatedResourceStatuses", "map=granular"),
    ("core.v1.PersistentVolumeClaimStatus", "conditions", "strategy=merge key=type list=map keys=type"),
    ("core.v1.PersistentVolumeSpec", "accessModes", "list=atomic"),
    ("core.v1.PersistentVolumeSpec", "mountOptions", "list=atomic"),
    ("core.v1.PodAffinity", "preferredDuringSchedulingIgnoredDuringExecution", "list=atomic"),
    ("core.v1.PodAffinity", "requiredDuringSchedulingIgnoredDuringExecution", "list=atomic"),
    ("core.v1.PodAffinityTerm", "matchLabelKeys", "list=atomic"),
    ("core.v1.PodAffinityTerm", "mismatchLabelKeys", "list=atomic"),
    ("core.v1.PodAffinityTerm", "namespaces", "list=atomic"),
    ("core.v1.PodAntiAffinity", "preferredDuringSchedulingIgnoredDuringExecution", "list=atomic"),
    ("core.v1.PodAntiAffinity", "requiredDuringSchedulingIgnoredDuringExecution", "list=atomic"),
    ("core.v1.PodDNSConfig", "nameservers", "list=atomic"),
    ("core.v1.PodDNSConfig", "options", "list=atomic"),
    ("core.v1.PodDNSConfig", "searches", "list=atomic"),
    ("core.v1.PodExtendedResourceClaimStatus", "requestMappings", "list=atomic"),
    ("core.v1.PodSecurityContext", "supplementalGroups", "list=atomic"),
    ("core.v1.PodSecurityContext", "sysctls", "list=atomic"),
    ("core.v1.PodSpec", "containers", "strategy=merge key=name list=map keys=name"),
    ("core.v1.PodSpec", "ephemeralContainers", "strategy=merge key=name list=map keys=name"),
    ("core.v1.PodSpec", "evictionResponders", "strategy=merge key=name list=map keys=name"),
    ("core.v1.PodSpec", "hostAliases", "strategy=merge key=ip list=map keys=ip"),
    ("core.v1.PodSpec", "imagePullSecrets", "strategy=merge key=name list=map keys=name"),
    ("core.v1.PodSpec", "initContainers", "strategy=merge key=name list=map keys=name"),
    ("core.v1.PodSpec", "nodeSelector", "map=atomic"),
    ("core.v1.PodSpec", "readinessGates", "list=atomic"),
    ("core.v1.PodSpec", "resourceClaims", "strategy=merge,retainKeys key=name list=map keys=name"),
    ("core.v1.PodSpec", "schedulingGates", "strategy=merge key=name list=map keys=name"),
    ("core.v1.PodSpec", "tolerations", "list=atomic"),
    ("core.v1.PodSpec", "topologySpreadConstraints", "strategy=merge key=topologyKey list=map keys=topologyKey,whenUnsatisfiable"),
    ("core.v1.PodSpec", "volumes", "strategy=merge,retainKeys key=name list=map keys=name"),
    ("core.v1.PodStatus", "conditions", "strategy=merge key=type list=map keys=type"),
    ("core.v1.PodStatus", "containerStatuses", "list=atomic"),
    ("core.v1.PodStatus", "ephemeralContainerStatuses", "list=atomic"),
    ("core.v1.PodStatus", "hostIPs", "strategy=merge key=ip list=atomic"),
    ("core.v1.PodStatus", "initContainerStatuses", "list=atomic"),
    ("core.v1.PodStatus", "nodeAllocatableResourceClaimStatuses", "strategy=merge key=resourceClaimName list=map keys=resourceClaimName"),
    ("core.v1.PodStatus", "podIPs", "strategy=merge key=ip list=map keys=ip"),
    ("core.v1.PodStatus", "resourceClaimStatuses", "strategy=merge,retainKeys key=name list=map keys=name"),
    ("core.v1.PodStatus", "volumeHealth", "list=map keys=name"),
    ("core.v1.PodVolumeHealth", "healthConditions", "strategy=merge key=status list=map keys=status,reason"),
    ("core.v1.ProjectedVolumeSource", "sources", "list=atomic"),
    ("core.v1.RBDPersistentVolumeSource", "monitors", "list=atomic"),
    ("core.v1.RBDVolumeSource", "monitors", "list=atomic"),
    ("core.v1.ReplicationControllerSpec", "selector", "map=atomic"),
    ("core.v1.ReplicationControllerStatus", "conditions", "strategy=merge key=type list=map keys=type"),
    ("core.v1.ResourceFieldSelector", "", "map=atomic"),
    ("core.v1.ResourceQuotaSpec", "scopes", "list=atomic"),
    ("core.v1.ResourceRequirements", "claims", "list=map keys=name"),
    ("core.v1.ResourceStatus", "resources", "list=map keys=resourceID"),
    ("core.v1.ScopeSelector", "", "map=atomic"),
    ("core.v1.ScopeSelector", "matchExpressions", "list=atomic"),
    ("core.v1.ScopedResourceSelectorRequirement", "values", "list=atomic"),
    ("core.v1.SecretKeySelector", "", "map=atomic"),
    ("core.v1.SecretProjection", "items", "list=atomic"),
    ("core.v1.SecretReference", "", "map=atomic"),
    ("core.v1.SecretVolumeSource", "items", "list=atomic"),
    ("core.v1.ServiceAccount", "imagePullSecrets", "list=atomic"),
    ("core.v1.ServiceAccount", "secrets", "strategy=merge key=name list=map keys=name"),
    ("core.v1.ServiceSpec", "clusterIPs", "list=atomic"),
    ("core.v1.ServiceSpec", "externalIPs", "list=atomic"),
    ("core.v1.ServiceSpec", "ipFamilies", "list=atomic"),
    ("core.v1.ServiceSpec", "loadBalancerSourceRanges", "list=atomic"),
    ("core.v1.ServiceSpec", "ports", "strategy=merge key=port list=map keys=port,protocol"),
    ("core.v1.ServiceSpec", "selector", "map=atomic"),
    ("core.v1.ServiceStatus", "conditions", "strategy=merge key=type list=map keys=type"),
    ("core.v1.TopologySelectorLabelRequirement", "values", "list=atomic"),
    ("core.v1.TopologySelectorTerm", "", "map=atomic"),
    ("core.v1.TopologySelectorTerm", "matchLabelExpressions", "list=atomic"),
    ("core.v1.TopologySpreadConstraint", "matchLabelKeys", "list=atomic"),
    ("core.v1.TypedLocalObjectReference", "", "map=atomic"),
    ("core.v1.VolumeHealthStatus", "healthConditions", "strategy=merge key=status list=map keys=status,reason"),
    ("core.v1.VolumeMount", "bindMountOptions", "list=set"),
    ("discovery.v1.Endpoint", "addresses", "list=set"),
    ("discovery.v1.EndpointHints", "forNodes", "list=atomic"),
    ("discovery.v1.EndpointHints", "forZones", "list=atomic"),
    ("discovery.v1.EndpointPort", "", "map=atomic"),
    ("discovery.v1.EndpointSlice", "endpoints", "list=atomic"),
    ("discovery.v1.EndpointSlice", "ports", "list=atomic"),
    ("networking.v1.HTTPIngressRuleValue", "paths", "list=atomic"),
    ("networking.v1.IPBlock", "except", "list=atomic"),
    ("networking.v1.IngressLoadBalancerIngress", "ports", "list=atomic"),
    ("networking.v1.IngressLoadBalancerStatus", "ingress", "list=atomic"),
    ("networking.v1.IngressSpec", "rules", "list=atomic"),
    ("networking.v1.IngressSpec", "tls", "list=atomic"),
    ("networking.v1.IngressTLS", "hosts", "list=atomic"),
    ("networking.v1.NetworkPolicyEgressRule", "ports", "list=atomic"),
    ("networking.v1.NetworkPolicyEgressRule", "to", "list=atomic"),
    ("networking.v1.NetworkPolicyIngressRule", "from", "list=atomic"),
    ("networking.v1.NetworkPolicyIngressRule", "ports", "list=atomic"),
    ("networking.v1.NetworkPolicySpec", "egress", "list=atomic"),
    ("networking.v1.NetworkPolicySpec", "ingress", "list=atomic"),
    ("networking.v1.NetworkPolicySpec", "policyTypes", "list=atomic"),
    ("networking.v1.ServiceBackendPort", "", "map=atomic"),
    ("policy.v1.PodDisruptionBudgetSpec", "selector", "strategy=replace"),
    ("policy.v1.PodDisruptionBudgetStatus", "conditions", "strategy=merge key=type list=map keys=type"),
    ("rbac.v1.AggregationRule", "clusterRoleSelectors", "list=atomic"),
    ("rbac.v1.ClusterRole", "rules", "list=atomic"),
    ("rbac.v1.ClusterRoleBinding", "subjects", "list=atomic"),
    ("rbac.v1.PolicyRule", "apiGroups", "list=atomic"),
    ("rbac.v1.PolicyRule", "nonResourceURLs", "list=atomic"),
    ("rbac.v1.PolicyRule", "resourceNames", "list=atomic"),
    ("rbac.v1.PolicyRule", "resources", "list=atomic"),
    ("rbac.v1.PolicyRule", "verbs", "list=atomic"),
    ("rbac.v1.Role", "rules", "list=atomic"),
    ("rbac.v1.RoleBinding", "subjects", "list=atomic"),
    ("rbac.v1.RoleRef", "", "map=atomic"),
    ("rbac.v1.Subject", "", "map=atomic"),
    ("storage.v1.StorageClass", "allowedTopologies", "list=atomic"),
    ("storage.v1.StorageClass", "mountOptions", "list=atomic"),
    ("meta.v1.APIResource", "categories", "list=atomic"),
    ("meta.v1.APIResource", "shortNames", "list=atomic"),
    ("meta.v1.APIResourceList", "resources", "list=atomic"),
    ("meta.v1.DeleteOptions", "dryRun", "list=atomic"),
    ("meta.v1.LabelSelector", "", "map=atomic"),
    ("meta.v1.LabelSelector", "matchExpressions", "list=atomic"),
    ("meta.v1.LabelSelectorRequirement", "values", "list=atomic"),
    ("meta.v1.ObjectMeta", "finalizers", "strategy=merge list=set"),
    ("meta.v1.ObjectMeta", "managedFields", "list=atomic"),
    ("meta.v1.ObjectMeta", "ownerReferences", "strategy=merge key=uid list=map keys=uid"),
    ("meta.v1.OwnerReference", "", "map=atomic"),
    ("meta.v1.StatusDetails", "causes", "list=atomic"),
];

fn expand_definition(short: &str) -> String {
    match short.strip_prefix("meta.") {
        Some(rest) => format!("io.k8s.apimachinery.pkg.apis.meta.{rest}"),
        None => format!("io.k8s.api.{short}"),
    }
}

/// Parses a [`PATCH_META`] extension spec into (extension name, value) pairs,
/// in the order Kubernetes prints them.
fn parse_extensions(spec: &str) -> Vec<(&'static str, Value)> {
    let mut out = Vec::new();
    for pair in spec.split_whitespace() {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let entry = match key {
            "keys" => (
                "x-kubernetes-list-map-keys",
                Value::Array(
                    value
                        .split(',')
                        .map(|k| Value::String(k.to_owned()))
                        .collect(),
                ),
            ),
            "list" => ("x-kubernetes-list-type", Value::String(value.to_owned())),
            "map" => ("x-kubernetes-map-type", Value::String(value.to_owned())),
            "key" => (
                "x-kubernetes-patch-merge-key",
                Value::String(value.to_owned()),
            ),
            "strategy" => (
                "x-kubernetes-patch-strategy",
                Value::String(value.to_owned()),
            ),
            _ => continue,
        };
        out.push(entry);
    }
    out.sort_by_key(|(name, _)| *name);
    out
}

fn apply_patch_meta(schemas: &mut Map<String, Value>) {
    for (short, property, spec) in PATCH_META {
        let Some(definition) = schemas.get_mut(&expand_definition(short)) else {
            continue;
        };
        let target = if property.is_empty() {
            Some(definition)
        } else {
            definition
                .get_mut("properties")
                .and_then(|p| p.get_mut(*property))
        };
        let Some(Value::Object(target)) = target else {
            continue;
        };
        for (name, value) in parse_extensions(spec) {
            target.insert(name.to_owned(), value);
        }
    }
}

// ---------------------------------------------------------------------------
// Building
// ---------------------------------------------------------------------------

/// A served resource matched with its kind's table entry.
struct Served<'a> {
    resource: &'a ServedResource,
    definition: String,
    list_definition: Option<String>,
}

fn gv_path(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

fn gvk(group: &str, version: &str, kind: &str) -> Value {
    json!({"group": group, "kind": kind, "version": version})
}

fn schema_ref(definition: &str) -> Value {
    json!({"$ref": format!("{REF_PREFIX}{definition}")})
}

/// The kind an operation on a subresource reads or writes, as
/// (group, version, kind) of [`KINDS`]; `None` for the parent kind.
fn subresource_kind(subresource: &str) -> Option<(&'static str, &'static str, &'static str)> {
    match subresource {
        "scale" => Some(("autoscaling", "v1", "Scale")),
        "binding" => Some(("", "v1", "Binding")),
        "eviction" => Some(("policy", "v1", "Eviction")),
        _ => None,
    }
}

fn build(resources: &[ServedResource]) -> OpenApi {
    let mut generator = SchemaSettings::openapi3()
        .with(|s| s.meta_schema = None)
        .into_generator();
    add_common_types(&mut generator);

    let mut names: HashMap<(String, String, String), String> = HashMap::new();

    // Served kinds and the helper kinds their subresources use.
    let mut served: Vec<Served> = Vec::new();
    let mut listed: Vec<(&KindType, String, String)> = Vec::new();
    let mut gvk_kinds: Vec<(&KindType, String)> = Vec::new();
    let mut seen = BTreeSet::new();
    for resource in resources {
        let Some(kind) = find_kind(resource.group, resource.version, resource.kind) else {
            continue;
        };
        let helpers = resource
            .subresources
            .iter()
            .filter_map(|s| subresource_kind(s));
        let helpers = helpers.filter_map(|(g, v, k)| find_kind(g, v, k));
        for helper in std::iter::once(kind).chain(helpers) {
            if seen.insert((helper.group, helper.version, helper.kind)) {
                let (definition, list) = record(&mut generator, &mut names, helper);
                if let Some(list) = list {
                    listed.push((helper, definition.clone(), list));
                }
                gvk_kinds.push((helper, definition));
            }
        }
        let definition = names[&(
            kind.group.to_owned(),
            kind.version.to_owned(),
            kind.kind.to_owned(),
        )]
            .clone();
        let list_definition = kind.list.then(|| format!("{definition}List"));
        served.push(Served {
            resource,
            definition,
            list_definition,
        });
    }
    // Status is always present and always carries its kind.
    if let Some(status) = find_kind("", "v1", "Status")
        && seen.insert(("", "v1", "Status"))
    {
        let (definition, _) = record(&mut generator, &mut names, status);
        gvk_kinds.push((status, definition));
    }

    let mut schemas = generator.take_definitions(true);

    for (kind, definition, list) in &listed {
        let item = schemas.get(definition).cloned().unwrap_or(Value::Null);
        let list_schema = list_schema(&item, definition, kind);
        schemas.insert(list.clone(), list_schema);
    }
    for (kind, definition) in &gvk_kinds {
        if let Some(Value::Object(schema)) = schemas.get_mut(definition) {
            schema.insert(
                "x-kubernetes-group-version-kind".to_owned(),
                json!([gvk(kind.group, kind.version, kind.kind)]),
            );
            drop_required(schema, "metadata");
        }
    }

    // DeleteOptions and WatchEvent are shared by every group-version.
    let gvs: BTreeSet<(&str, &str)> = served
        .iter()
        .map(|s| (s.resource.group, s.resource.version))
        .collect();
    for (definition, kind) in [
        (DELETE_OPTIONS, "DeleteOptions"),
        (WATCH_EVENT, "WatchEvent"),
    ] {
        if let Some(Value::Object(schema)) = schemas.get_mut(definition) {
            let mut all: Vec<Value> = gvs.iter().map(|(g, v)| gvk(g, v, kind)).collect();
            if !gvs.contains(&("", "v1")) {
                all.insert(0, gvk("", "v1", kind));
            }
            schema.insert(
                "x-kubernetes-group-version-kind".to_owned(),
                Value::Array(all),
            );
        }
    }

    apply_patch_meta(&mut schemas);
    let schemas = sorted(schemas);

    // One document per group-version.
    let mut by_gv: BTreeMap<String, Vec<&Served>> = BTreeMap::new();
    for s in &served {
        by_gv
            .entry(gv_path(s.resource.group, s.resource.version))
            .or_default()
            .push(s);
    }
    let mut docs = BTreeMap::new();
    let mut index = Map::new();
    for (path, members) in by_gv {
        let doc = group_version_doc(&path, &members, &schemas);
        let bytes = serde_json::to_vec(&doc).unwrap_or_default();
        let hash = hex_upper(&digest(&bytes));
        index.insert(
            path.clone(),
            json!({"serverRelativeURL": format!("/openapi/v3/{path}?hash={hash}")}),
        );
        docs.insert(path, (doc, hash));
    }

    let zeros = names
        .values()
        .map(|name| (name.clone(), crate::api::apply::zero_object(&schemas, name)))
        .collect();
    OpenApi {
        root: json!({ "paths": index }),
        docs,
        schemas,
        names,
        zeros,
    }
}

/// Registers `kind` (and its list kind) with the generator and the name map;
/// returns the definition names of the kind and of its list.
fn record(
    generator: &mut SchemaGenerator,
    names: &mut HashMap<(String, String, String), String>,
    kind: &KindType,
) -> (String, Option<String>) {
    let definition = (kind.add)(generator);
    let key = (
        kind.group.to_owned(),
        kind.version.to_owned(),
        kind.kind.to_owned(),
    );
    names.insert(key, definition.clone());
    let list = kind.list.then(|| {
        let list_definition = format!("{definition}List");
        let key = (
            kind.group.to_owned(),
            kind.version.to_owned(),
            format!("{}List", kind.kind),
        );
        names.insert(key, list_definition.clone());
        list_definition
    });
    (definition, list)
}

fn drop_required(schema: &mut Map<String, Value>, field: &str) {
    let Some(Value::Array(required)) = schema.get_mut("required") else {
        return;
    };
    required.retain(|r| r != field);
    if required.is_empty() {
        schema.remove("required");
    }
}

fn sorted(map: Map<String, Value>) -> Map<String, Value> {
    let mut entries: Vec<(String, Value)> = map.into_iter().collect();
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    entries.into_iter().collect()
}

/// The `<Kind>List` schema for `kind`, whose item schema is `item`.
fn list_schema(item: &Value, definition: &str, kind: &KindType) -> Value {
    let list_kind = format!("{}List", kind.kind);
    let mut properties = Map::new();
    if let Some(api_version) = item.pointer("/properties/apiVersion") {
        properties.insert("apiVersion".to_owned(), api_version.clone());
    }
    properties.insert(
        "items".to_owned(),
        json!({
            "description": format!("The {} objects in the list.", kind.kind),
            "type": "array",
            "items": schema_ref(definition),
        }),
    );
    if let Some(kind_property) = item.pointer("/properties/kind") {
        properties.insert("kind".to_owned(), kind_property.clone());
    }
    properties.insert(
        "metadata".to_owned(),
        json!({
            "allOf": [schema_ref(LIST_META)],
            "description": "Standard list metadata: resourceVersion and continue token of the list.",
        }),
    );
    json!({
        "description": format!("{list_kind} is a list of {} objects.", kind.kind),
        "type": "object",
        "properties": properties,
        "required": ["items"],
        "x-kubernetes-group-version-kind": [gvk(kind.group, kind.version, &list_kind)],
    })
}

/// Adds to `out` every definition reachable from `definition` through `$ref`s.
fn collect_refs(definition: &str, schemas: &Map<String, Value>, out: &mut BTreeSet<String>) {
    let mut stack = vec![definition.to_owned()];
    while let Some(name) = stack.pop() {
        if !out.insert(name.clone()) {
            continue;
        }
        if let Some(schema) = schemas.get(&name) {
            visit_refs(schema, &mut |r| {
                if let Some(target) = r.strip_prefix(REF_PREFIX)
                    && !out.contains(target)
                {
                    stack.push(target.to_owned());
                }
            });
        }
    }
}

fn visit_refs(value: &Value, f: &mut impl FnMut(&str)) {
    match value {
        Value::Object(map) => {
            for (key, v) in map {
                match (key.as_str(), v) {
                    ("$ref", Value::String(r)) => f(r),
                    _ => visit_refs(v, f),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| visit_refs(v, f)),
        _ => {}
    }
}

fn group_version_doc(path: &str, members: &[&Served], schemas: &Map<String, Value>) -> Value {
    let (group, version) = {
        let first = members[0].resource;
        (first.group, first.version)
    };

    let mut paths = Map::new();
    let ctx = GroupVersion::new(group, version);
    paths.insert(format!("/{path}/"), ctx.resources_op());
    for served in members {
        ctx.resource_paths(served, &mut paths);
    }

    // Every schema the paths refer to, and everything those refer to.
    let mut wanted = BTreeSet::new();
    let paths = Value::Object(paths);
    let mut roots = Vec::new();
    visit_refs(&paths, &mut |r| {
        if let Some(target) = r.strip_prefix(REF_PREFIX) {
            roots.push(target.to_owned());
        }
    });
    for served in members {
        roots.push(served.definition.clone());
        roots.extend(served.list_definition.clone());
    }
    roots.extend([STATUS, DELETE_OPTIONS, WATCH_EVENT, PATCH].map(str::to_owned));
    for root in roots {
        collect_refs(&root, schemas, &mut wanted);
    }
    let components: Map<String, Value> = wanted
        .into_iter()
        .filter_map(|name| schemas.get(&name).map(|s| (name, s.clone())))
        .collect();

    json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "v1.32.0"},
        "paths": paths,
        "components": {"schemas": components},
    })
}

// ---------------------------------------------------------------------------
// Paths and operations
// ---------------------------------------------------------------------------

/// Naming helpers for one group-version's operations.
struct GroupVersion {
    group: &'static str,
    version: &'static str,
    /// `CoreV1`, `AppsV1`, `NetworkingV1`, ...: the operation id infix.
    ident: String,
    /// `core_v1`, `apps_v1`, `networking_v1`, ...: the operation tag.
    tag: String,
}

fn upper_first(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) => c.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

impl GroupVersion {
    fn new(group: &'static str, version: &'static str) -> GroupVersion {
        let base = if group.is_empty() {
            "core"
        } else {
            group.strip_suffix(".k8s.io").unwrap_or(group)
        };
        let parts: Vec<&str> = base.split('.').filter(|p| !p.is_empty()).collect();
        let camel: String = parts.iter().map(|p| upper_first(p)).collect();
        let lower: String = parts
            .iter()
            .enumerate()
            .map(|(i, p)| {
                if i == 0 {
                    (*p).to_owned()
                } else {
                    upper_first(p)
                }
            })
            .collect();
        GroupVersion {
            group,
            version,
            ident: format!("{camel}{}", upper_first(version)),
            tag: format!("{lower}_{version}"),
        }
    }

    fn prefix(&self) -> String {
        format!("/{}", gv_path(self.group, self.version))
    }

    /// `GET /apis/<group>/<version>/`: the group-version's resource list.
    fn resources_op(&self) -> Value {
        json!({
            "get": {
                "tags": [self.tag],
                "description": "get available resources",
                "operationId": format!("get{}APIResources", self.ident),
                "responses": responses(&[("200", "OK")], API_RESOURCE_LIST, false),
            }
        })
    }

    fn operation(&self, spec: OperationSpec<'_>) -> Value {
        let mut op = Map::new();
        op.insert("tags".to_owned(), json!([self.tag]));
        op.insert("description".to_owned(), Value::String(spec.description));
        op.insert(
            "operationId".to_owned(),
            Value::String(format!("{}{}{}", spec.verb, self.ident, spec.id_suffix)),
        );
        if !spec.parameters.is_empty() {
            op.insert("parameters".to_owned(), Value::Array(spec.parameters));
        }
        if let Some(body) = spec.body {
            op.insert("requestBody".to_owned(), body);
        }
        op.insert("responses".to_owned(), spec.responses);
        op.insert(
            "x-kubernetes-action".to_owned(),
            Value::String(spec.action.to_owned()),
        );
        if let Some(gvk) = spec.gvk {
            op.insert("x-kubernetes-group-version-kind".to_owned(), gvk);
        }
        Value::Object(op)
    }

    fn resource_paths(&self, served: &Served, paths: &mut Map<String, Value>) {
        let r = served.resource;
        let kind_gvk = gvk(r.group, r.version, r.kind);
        let definition = served.definition.as_str();
        let scope = if r.namespaced { "Namespaced" } else { "" };
        let kind = r.kind;
        let prefix = self.prefix();
        let collection = if r.namespaced {
            format!("{prefix}/namespaces/{{namespace}}/{}", r.plural)
        } else {
            format!("{prefix}/{}", r.plural)
        };
        let item = format!("{collection}/{{name}}");
        let path_params = |named: bool| {
            let mut params = Vec::new();
            if named {
                params.push(path_param("name", &format!("name of the {kind}")));
            }
            if r.namespaced {
                params.push(path_param(
                    "namespace",
                    "object name and auth scope, such as for teams and projects",
                ));
            }
            params.push(query_param("pretty"));
            Value::Array(params)
        };

        // Collection: list, create, delete collection.
        let mut ops = Map::new();
        ops.insert("parameters".to_owned(), path_params(false));
        if let Some(list) = served.list_definition.as_deref() {
            ops.insert(
                "get".to_owned(),
                self.operation(OperationSpec {
                    verb: "list",
                    id_suffix: format!("{scope}{kind}"),
                    description: format!("list or watch objects of kind {kind}"),
                    action: "list",
                    gvk: Some(kind_gvk.clone()),
                    parameters: query_params(LIST_PARAMS),
                    body: None,
                    responses: responses(&[("200", "OK")], list, true),
                }),
            );
        }
        ops.insert(
            "post".to_owned(),
            self.operation(OperationSpec {
                verb: "create",
                id_suffix: format!("{scope}{kind}"),
                description: format!("create a {kind}"),
                action: "post",
                gvk: Some(kind_gvk.clone()),
                parameters: query_params(WRITE_PARAMS),
                body: Some(request_body(definition)),
                responses: responses(
                    &[("200", "OK"), ("201", "Created"), ("202", "Accepted")],
                    definition,
                    false,
                ),
            }),
        );
        if served.list_definition.is_some() {
            ops.insert(
                "delete".to_owned(),
                self.operation(OperationSpec {
                    verb: "delete",
                    id_suffix: format!("Collection{scope}{kind}"),
                    description: format!("delete collection of {kind}"),
                    action: "deletecollection",
                    gvk: Some(kind_gvk.clone()),
                    parameters: query_params(DELETE_COLLECTION_PARAMS),
                    body: Some(request_body(DELETE_OPTIONS)),
                    responses: responses(&[("200", "OK")], STATUS, false),
                }),
            );
        }
        paths.insert(collection, Value::Object(ops));

        // List across namespaces.
        if r.namespaced
            && let Some(list) = served.list_definition.as_deref()
        {
            let mut ops = Map::new();
            ops.insert(
                "parameters".to_owned(),
                Value::Array(vec![query_param("pretty")]),
            );
            ops.insert(
                "get".to_owned(),
                self.operation(OperationSpec {
                    verb: "list",
                    id_suffix: format!("{kind}ForAllNamespaces"),
                    description: format!("list or watch objects of kind {kind}"),
                    action: "list",
                    gvk: Some(kind_gvk.clone()),
                    parameters: query_params(LIST_PARAMS),
                    body: None,
                    responses: responses(&[("200", "OK")], list, true),
                }),
            );
            paths.insert(format!("{prefix}/{}", r.plural), Value::Object(ops));
        }

        // Single object: read, replace, patch, delete.
        let mut ops = Map::new();
        ops.insert("parameters".to_owned(), path_params(true));
        self.object_ops(
            &mut ops,
            &format!("{scope}{kind}"),
            kind,
            definition,
            &kind_gvk,
        );
        ops.insert(
            "delete".to_owned(),
            self.operation(OperationSpec {
                verb: "delete",
                id_suffix: format!("{scope}{kind}"),
                description: format!("delete a {kind}"),
                action: "delete",
                gvk: Some(kind_gvk.clone()),
                parameters: query_params(DELETE_PARAMS),
                body: Some(request_body(DELETE_OPTIONS)),
                responses: responses(&[("200", "OK"), ("202", "Accepted")], STATUS, false),
            }),
        );
        paths.insert(item.clone(), Value::Object(ops));

        for subresource in r.subresources {
            let suffix = format!("{scope}{kind}{}", upper_first(subresource));
            let mut ops = Map::new();
            ops.insert("parameters".to_owned(), path_params(true));
            match *subresource {
                "status" | "ephemeralcontainers" | "resize" => {
                    let what = format!("{subresource} of the specified {kind}");
                    self.object_ops(&mut ops, &suffix, &what, definition, &kind_gvk);
                }
                "scale" => {
                    let scale = "io.k8s.api.autoscaling.v1.Scale";
                    let what = format!("scale of the specified {kind}");
                    let scale_gvk = gvk("autoscaling", "v1", "Scale");
                    self.object_ops(&mut ops, &suffix, &what, scale, &scale_gvk);
                }
                "finalize" => {
                    ops.insert(
                        "put".to_owned(),
                        self.operation(OperationSpec {
                            verb: "replace",
                            id_suffix: suffix,
                            description: format!("replace finalize of the specified {kind}"),
                            action: "put",
                            gvk: Some(kind_gvk.clone()),
                            parameters: query_params(WRITE_PARAMS),
                            body: Some(request_body(definition)),
                            responses: responses(
                                &[("200", "OK"), ("201", "Created")],
                                definition,
                                false,
                            ),
                        }),
                    );
                }
                "binding" | "eviction" => {
                    let Some((g, v, k)) = subresource_kind(subresource) else {
                        continue;
                    };
                    let body = expand_kind_definition(g, v, k);
                    ops.insert(
                        "post".to_owned(),
                        self.operation(OperationSpec {
                            verb: "create",
                            id_suffix: suffix,
                            description: format!("create {subresource} of a {kind}"),
                            action: "post",
                            gvk: Some(gvk(g, v, k)),
                            parameters: query_params(WRITE_PARAMS),
                            body: Some(request_body(&body)),
                            responses: responses(
                                &[("200", "OK"), ("201", "Created"), ("202", "Accepted")],
                                &body,
                                false,
                            ),
                        }),
                    );
                }
                "log" => {
                    ops.insert(
                        "get".to_owned(),
                        self.operation(OperationSpec {
                            verb: "read",
                            id_suffix: suffix,
                            description: format!("read log of the specified {kind}"),
                            action: "get",
                            gvk: None,
                            parameters: query_params(LOG_PARAMS),
                            body: None,
                            responses: text_response(),
                        }),
                    );
                }
                other => {
                    // exec, attach, portforward, proxy: streaming "connect" endpoints.
                    let params = match other {
                        "exec" => EXEC_PARAMS,
                        "attach" => ATTACH_PARAMS,
                        "portforward" => PORTFORWARD_PARAMS,
                        _ => &[],
                    };
                    for method in ["get", "post"] {
                        ops.insert(
                            method.to_owned(),
                            self.operation(OperationSpec {
                                verb: if method == "get" {
                                    "connectGet"
                                } else {
                                    "connectPost"
                                },
                                id_suffix: suffix.clone(),
                                description: format!(
                                    "connect {method} requests to {other} of {kind}"
                                ),
                                action: "connect",
                                gvk: None,
                                parameters: query_params(params),
                                body: None,
                                responses: text_response(),
                            }),
                        );
                    }
                }
            }
            paths.insert(format!("{item}/{subresource}"), Value::Object(ops));
        }
    }

    /// get / put / patch on one object (or one object's subresource).
    fn object_ops(
        &self,
        ops: &mut Map<String, Value>,
        id_suffix: &str,
        what: &str,
        definition: &str,
        gvk: &Value,
    ) {
        ops.insert(
            "get".to_owned(),
            self.operation(OperationSpec {
                verb: "read",
                id_suffix: id_suffix.to_owned(),
                description: format!("read the specified {what}"),
                action: "get",
                gvk: Some(gvk.clone()),
                parameters: Vec::new(),
                body: None,
                responses: responses(&[("200", "OK")], definition, false),
            }),
        );
        ops.insert(
            "put".to_owned(),
            self.operation(OperationSpec {
                verb: "replace",
                id_suffix: id_suffix.to_owned(),
                description: format!("replace the specified {what}"),
                action: "put",
                gvk: Some(gvk.clone()),
                parameters: query_params(WRITE_PARAMS),
                body: Some(request_body(definition)),
                responses: responses(&[("200", "OK"), ("201", "Created")], definition, false),
            }),
        );
        ops.insert(
            "patch".to_owned(),
            self.operation(OperationSpec {
                verb: "patch",
                id_suffix: id_suffix.to_owned(),
                description: format!("partially update the specified {what}"),
                action: "patch",
                gvk: Some(gvk.clone()),
                parameters: query_params(PATCH_PARAMS),
                body: Some(patch_body()),
                responses: responses(&[("200", "OK"), ("201", "Created")], definition, false),
            }),
        );
    }
}

fn expand_kind_definition(group: &str, version: &str, kind: &str) -> String {
    let group = if group.is_empty() {
        "core"
    } else {
        group.strip_suffix(".k8s.io").unwrap_or(group)
    };
    format!("io.k8s.api.{group}.{version}.{kind}")
}

struct OperationSpec<'a> {
    verb: &'a str,
    id_suffix: String,
    description: String,
    action: &'a str,
    gvk: Option<Value>,
    parameters: Vec<Value>,
    body: Option<Value>,
    responses: Value,
}

fn request_body(definition: &str) -> Value {
    json!({
        "required": true,
        "content": {"*/*": {"schema": schema_ref(definition)}},
    })
}

/// Patch bodies in every patch format the server accepts. kubectl computes a
/// strategic merge patch client-side only when the strategic type is listed.
fn patch_body() -> Value {
    let mut content = Map::new();
    for media_type in [
        "application/apply-patch+yaml",
        "application/json-patch+json",
        "application/merge-patch+json",
        "application/strategic-merge-patch+json",
    ] {
        content.insert(media_type.to_owned(), json!({"schema": schema_ref(PATCH)}));
    }
    json!({"required": true, "content": content})
}

fn responses(codes: &[(&str, &str)], definition: &str, watchable: bool) -> Value {
    let mut out = Map::new();
    for (code, description) in codes {
        let mut content = Map::new();
        content.insert(
            "application/json".to_owned(),
            json!({"schema": schema_ref(definition)}),
        );
        if watchable {
            content.insert(
                "application/json;stream=watch".to_owned(),
                json!({"schema": schema_ref(definition)}),
            );
        }
        out.insert(
            (*code).to_owned(),
            json!({"description": description, "content": content}),
        );
    }
    out.insert("401".to_owned(), json!({"description": "Unauthorized"}));
    Value::Object(out)
}

fn text_response() -> Value {
    json!({
        "200": {"description": "OK", "content": {"*/*": {"schema": {"type": "string"}}}},
        "401": {"description": "Unauthorized"},
    })
}

fn path_param(name: &str, description: &str) -> Value {
    json!({
        "name": name,
        "in": "path",
        "description": description,
        "required": true,
        "schema": {"type": "string", "uniqueItems": true},
    })
}

const LIST_PARAMS: &[&str] = &[
    "allowWatchBookmarks",
    "continue",
    "fieldSelector",
    "labelSelector",
    "limit",
    "resourceVersion",
    "resourceVersionMatch",
    "sendInitialEvents",
    "timeoutSeconds",
    "watch",
];
const WRITE_PARAMS: &[&str] = &["dryRun", "fieldManager", "fieldValidation"];
const PATCH_PARAMS: &[&str] = &["dryRun", "fieldManager", "fieldValidation", "force"];
const DELETE_PARAMS: &[&str] = &[
    "dryRun",
    "gracePeriodSeconds",
    "ignoreStoreReadErrorWithClusterBreakingPotential",
    "orphanDependents",
    "propagationPolicy",
];
const DELETE_COLLECTION_PARAMS: &[&str] = &[
    "continue",
    "dryRun",
    "fieldSelector",
    "gracePeriodSeconds",
    "ignoreStoreReadErrorWithClusterBreakingPotential",
    "labelSelector",
    "limit",
    "orphanDependents",
    "propagationPolicy",
    "resourceVersion",
    "resourceVersionMatch",
    "sendInitialEvents",
    "timeoutSeconds",
];
const LOG_PARAMS: &[&str] = &[
    "container",
    "follow",
    "insecureSkipTLSVerifyBackend",
    "limitBytes",
    "previous",
    "sinceSeconds",
    "stream",
    "tailLines",
    "timestamps",
];
const EXEC_PARAMS: &[&str] = &["command", "container", "stderr", "stdin", "stdout", "tty"];
const ATTACH_PARAMS: &[&str] = &["container", "stderr", "stdin", "stdout", "tty"];
const PORTFORWARD_PARAMS: &[&str] = &["ports"];

fn query_params(names: &[&str]) -> Vec<Value> {
    names.iter().map(|name| query_param(name)).collect()
}

/// A query parameter of the Kubernetes API, with its type and a short
/// description.
fn query_param(name: &str) -> Value {
    let (kind, description) = match name {
        "allowWatchBookmarks" => (
            "boolean",
            "Ask for BOOKMARK events on a watch; the server may ignore it.",
        ),
        "command" => (
            "string",
            "Command to run in the container; repeat the parameter for each argument.",
        ),
        "container" => (
            "string",
            "Container to act on; defaults to the only container of the pod.",
        ),
        "continue" => (
            "string",
            "Continue token from a previous paginated list response.",
        ),
        "dryRun" => (
            "string",
            "When set to All, the request is validated and processed but nothing is persisted.",
        ),
        "fieldManager" => (
            "string",
            "Name of the actor making the change, recorded in managedFields.",
        ),
        "fieldSelector" => ("string", "Restrict the returned objects by their fields."),
        "fieldValidation" => (
            "string",
            "How the server treats unknown or duplicate fields in the request body: Ignore, Warn (the default) or Strict.",
        ),
        "follow" => ("boolean", "Stream the log as it grows."),
        "force" => (
            "boolean",
            "Apply requests: take ownership of fields other managers own. Must be unset for other patch types.",
        ),
        "gracePeriodSeconds" => (
            "integer",
            "Seconds to wait before the object is deleted; zero deletes at once.",
        ),
        "ignoreStoreReadErrorWithClusterBreakingPotential" => (
            "boolean",
            "Delete an object the store cannot decode. Dangerous: bypasses finalizers and admission.",
        ),
        "insecureSkipTLSVerifyBackend" => (
            "boolean",
            "Skip verifying the serving certificate of the node serving the log.",
        ),
        "labelSelector" => ("string", "Restrict the returned objects by their labels."),
        "limit" => (
            "integer",
            "Maximum number of objects in one list response; the rest comes with the continue token.",
        ),
        "limitBytes" => ("integer", "Stop the log output after this many bytes."),
        "orphanDependents" => (
            "boolean",
            "Deprecated: use propagationPolicy. Whether dependents are orphaned.",
        ),
        "ports" => ("integer", "Ports to forward."),
        "pretty" => ("string", "If 'true', the output is indented."),
        "previous" => (
            "boolean",
            "Return the log of the previous, terminated container instance.",
        ),
        "propagationPolicy" => (
            "string",
            "Garbage collection of dependents: Orphan, Background or Foreground.",
        ),
        "resourceVersion" => (
            "string",
            "Constrains which resource versions a read may be served from.",
        ),
        "resourceVersionMatch" => (
            "string",
            "How resourceVersion applies to a list: Exact or NotOlderThan.",
        ),
        "sendInitialEvents" => (
            "boolean",
            "Start a watch with synthetic events for the existing objects.",
        ),
        "sinceSeconds" => ("integer", "Return log lines newer than this many seconds."),
        "stderr" => ("boolean", "Redirect the standard error stream."),
        "stdin" => ("boolean", "Redirect the standard input stream."),
        "stdout" => ("boolean", "Redirect the standard output stream."),
        "stream" => (
            "string",
            "Which log stream to return: All, Stdout or Stderr.",
        ),
        "tailLines" => (
            "integer",
            "Number of lines from the end of the log to return.",
        ),
        "timeoutSeconds" => ("integer", "Timeout for the list or watch call."),
        "timestamps" => ("boolean", "Prefix every log line with its timestamp."),
        "tty" => ("boolean", "Allocate a terminal."),
        "watch" => (
            "boolean",
            "Watch for changes instead of listing; use resourceVersion to start from a point.",
        ),
        _ => ("string", ""),
    };
    json!({
        "name": name,
        "in": "query",
        "description": description,
        "schema": {"type": kind, "uniqueItems": true},
    })
}

// ---------------------------------------------------------------------------
// Hashing
// ---------------------------------------------------------------------------

/// The splitmix64 finaliser: spreads every input bit over the output.
fn avalanche(mut x: u64) -> u64 {
    x ^= x >> 30;
    x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x ^= x >> 27;
    x = x.wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// 128-bit content digest of a document: two multiply-rotate lanes over
/// 8-byte words, the length folded in, then finalised.
///
/// It is not cryptographic (the documents are public and nobody gains from a
/// collision); it only has to change whenever a document does, so that
/// clients caching `?hash=` URLs see new content. Unlike SHA-2 it stays fast
/// in unoptimised builds (a few ms for all documents instead of ~100 ms).
fn digest(data: &[u8]) -> [u8; 16] {
    let mut a: u64 = 0x243F_6A88_85A3_08D3;
    let mut b: u64 = 0x1319_8A2E_0370_7344;
    let mut words = data.chunks_exact(8);
    for w in &mut words {
        let w = u64::from_le_bytes([w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7]]);
        a = (a ^ w).wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(31);
        b = (b ^ w)
            .wrapping_mul(0xC2B2_AE3D_27D4_EB4F)
            .rotate_left(29)
            .wrapping_add(a);
    }
    let mut last = [0u8; 8];
    last[..words.remainder().len()].copy_from_slice(words.remainder());
    let w = u64::from_le_bytes(last) ^ (data.len() as u64);
    a = avalanche(a ^ w);
    b = avalanche(b ^ w.rotate_left(32) ^ a);
    let mut out = [0u8; 16];
    out[..8].copy_from_slice(&a.to_be_bytes());
    out[8..].copy_from_slice(&b.to_be_bytes());
    out
}

fn hex_upper(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 0x0f)] as char);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const fn res(
        group: &'static str,
        version: &'static str,
        kind: &'static str,
        plural: &'static str,
        namespaced: bool,
        subresources: &'static [&'static str],
    ) -> ServedResource {
        ServedResource {
            group,
            version,
            kind,
            plural,
            namespaced,
            subresources,
        }
    }

    const SERVED: &[ServedResource] = &[
        res(
            "",
            "v1",
            "Namespace",
            "namespaces",
            false,
            &["status", "finalize"],
        ),
        res(
            "",
            "v1",
            "Pod",
            "pods",
            true,
            &[
                "status",
                "log",
                "exec",
                "binding",
                "eviction",
                "ephemeralcontainers",
            ],
        ),
        res("", "v1", "Service", "services", true, &["status"]),
        res("", "v1", "Endpoints", "endpoints", true, &[]),
        res("", "v1", "ConfigMap", "configmaps", true, &[]),
        res("", "v1", "Secret", "secrets", true, &[]),
        res("", "v1", "Event", "events", true, &[]),
        res("", "v1", "Node", "nodes", false, &["status"]),
        res("", "v1", "ServiceAccount", "serviceaccounts", true, &[]),
        res(
            "",
            "v1",
            "PersistentVolumeClaim",
            "persistentvolumeclaims",
            true,
            &["status"],
        ),
        res(
            "apps",
            "v1",
            "Deployment",
            "deployments",
            true,
            &["status", "scale"],
        ),
        res(
            "apps",
            "v1",
            "ReplicaSet",
            "replicasets",
            true,
            &["status", "scale"],
        ),
        res(
            "apps",
            "v1",
            "StatefulSet",
            "statefulsets",
            true,
            &["status", "scale"],
        ),
        res("apps", "v1", "DaemonSet", "daemonsets", true, &["status"]),
        res(
            "apps",
            "v1",
            "ControllerRevision",
            "controllerrevisions",
            true,
            &[],
        ),
        res("batch", "v1", "Job", "jobs", true, &["status"]),
        res("batch", "v1", "CronJob", "cronjobs", true, &["status"]),
        res("coordination.k8s.io", "v1", "Lease", "leases", true, &[]),
        res(
            "networking.k8s.io",
            "v1",
            "Ingress",
            "ingresses",
            true,
            &["status"],
        ),
        res(
            "discovery.k8s.io",
            "v1",
            "EndpointSlice",
            "endpointslices",
            true,
            &[],
        ),
    ];

    fn built() -> &'static OpenApi {
        static API: std::sync::OnceLock<OpenApi> = std::sync::OnceLock::new();
        API.get_or_init(|| OpenApi::build(SERVED))
    }

    fn docs(api: &OpenApi) -> Vec<(String, &Value)> {
        let paths = api.root()["paths"].as_object().expect("root paths");
        paths
            .keys()
            .map(|p| (p.clone(), api.group_version(p).expect("listed doc").0))
            .collect()
    }

    fn property<'a>(schemas: &'a Map<String, Value>, definition: &str, prop: &str) -> &'a Value {
        &schemas[definition]["properties"][prop]
    }

    #[test]
    fn deployment_schema_has_gvk() {
        let api = built();
        let (doc, _) = api.group_version("apis/apps/v1").expect("apps/v1 doc");
        assert_eq!(doc["openapi"], "3.0.0");
        let schemas = &doc["components"]["schemas"];
        let deployment = &schemas["io.k8s.api.apps.v1.Deployment"];
        assert_eq!(
            deployment["x-kubernetes-group-version-kind"],
            json!([{"group": "apps", "kind": "Deployment", "version": "v1"}])
        );
        let list = &schemas["io.k8s.api.apps.v1.DeploymentList"];
        assert_eq!(
            list["x-kubernetes-group-version-kind"],
            json!([{"group": "apps", "kind": "DeploymentList", "version": "v1"}])
        );
        assert_eq!(
            list["properties"]["items"]["items"]["$ref"],
            "#/components/schemas/io.k8s.api.apps.v1.Deployment"
        );
        assert_eq!(
            api.definition_name("apps", "v1", "Deployment"),
            Some("io.k8s.api.apps.v1.Deployment")
        );
        assert_eq!(
            api.definition_name("", "v1", "PodList"),
            Some("io.k8s.api.core.v1.PodList")
        );
        assert_eq!(api.definition_name("apps", "v1", "Nope"), None);
        // Core kinds carry the empty group.
        let (core, _) = api.group_version("/api/v1").expect("core doc");
        assert_eq!(
            core["components"]["schemas"]["io.k8s.api.core.v1.Pod"]["x-kubernetes-group-version-kind"],
            json!([{"group": "", "kind": "Pod", "version": "v1"}])
        );
        // metadata is never required, as in Kubernetes.
        let required = deployment["required"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert!(!required.contains(&json!("metadata")));
    }

    #[test]
    fn every_served_kind_has_one_schema_per_gvk() {
        let api = built();
        for r in SERVED {
            let path = gv_path(r.group, r.version);
            let (doc, _) = api.group_version(&path).expect("doc");
            let wanted = json!({"group": r.group, "kind": r.kind, "version": r.version});
            let matching: Vec<&String> = doc["components"]["schemas"]
                .as_object()
                .expect("schemas")
                .iter()
                .filter(|(_, s)| {
                    s["x-kubernetes-group-version-kind"]
                        .as_array()
                        .is_some_and(|a| a.contains(&wanted))
                })
                .map(|(name, _)| name)
                .collect();
            assert_eq!(matching.len(), 1, "{}: {matching:?}", r.kind);
            assert!(api.schemas().contains_key(matching[0].as_str()));
        }
    }

    #[test]
    fn patch_metadata_is_present() {
        let schemas = built().schemas();
        let containers = property(schemas, "io.k8s.api.core.v1.PodSpec", "containers");
        assert_eq!(containers["x-kubernetes-patch-merge-key"], "name");
        assert_eq!(containers["x-kubernetes-patch-strategy"], "merge");
        assert_eq!(containers["x-kubernetes-list-type"], "map");
        assert_eq!(containers["x-kubernetes-list-map-keys"], json!(["name"]));
        let volumes = property(schemas, "io.k8s.api.core.v1.PodSpec", "volumes");
        assert_eq!(volumes["x-kubernetes-patch-strategy"], "merge,retainKeys");
        let ports = property(schemas, "io.k8s.api.core.v1.Container", "ports");
        assert_eq!(ports["x-kubernetes-patch-merge-key"], "containerPort");
        assert_eq!(
            ports["x-kubernetes-list-map-keys"],
            json!(["containerPort", "protocol"])
        );
        let mounts = property(schemas, "io.k8s.api.core.v1.Container", "volumeMounts");
        assert_eq!(mounts["x-kubernetes-patch-merge-key"], "mountPath");
        let ephemeral = property(schemas, "io.k8s.api.core.v1.EphemeralContainer", "env");
        assert_eq!(ephemeral["x-kubernetes-patch-merge-key"], "name");
        let finalizers = property(
            schemas,
            "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
            "finalizers",
        );
        assert_eq!(finalizers["x-kubernetes-patch-strategy"], "merge");
        assert_eq!(finalizers["x-kubernetes-list-type"], "set");
        let owners = property(
            schemas,
            "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
            "ownerReferences",
        );
        assert_eq!(owners["x-kubernetes-patch-merge-key"], "uid");
        let service_ports = property(schemas, "io.k8s.api.core.v1.ServiceSpec", "ports");
        assert_eq!(service_ports["x-kubernetes-patch-merge-key"], "port");
        assert_eq!(
            service_ports["x-kubernetes-list-map-keys"],
            json!(["port", "protocol"])
        );
        let spread = property(
            schemas,
            "io.k8s.api.core.v1.PodSpec",
            "topologySpreadConstraints",
        );
        assert_eq!(
            spread["x-kubernetes-list-map-keys"],
            json!(["topologyKey", "whenUnsatisfiable"])
        );
        let addresses = property(schemas, "io.k8s.api.core.v1.NodeStatus", "addresses");
        assert_eq!(addresses["x-kubernetes-patch-merge-key"], "type");
        let conditions = property(schemas, "io.k8s.api.apps.v1.DeploymentStatus", "conditions");
        assert_eq!(conditions["x-kubernetes-patch-merge-key"], "type");
        let selector = &schemas["io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector"];
        assert_eq!(selector["x-kubernetes-map-type"], "atomic");
        let node_selector = property(schemas, "io.k8s.api.core.v1.PodSpec", "nodeSelector");
        assert_eq!(node_selector["x-kubernetes-map-type"], "atomic");
    }

    #[test]
    fn patch_table_matches_the_types() {
        // Serve every kind of the table, so every definition it names exists.
        let all: Vec<ServedResource> = KINDS
            .iter()
            .map(|k| res(k.group, k.version, k.kind, k.kind, true, &[]))
            .collect();
        let api = OpenApi::build(&all);
        for (short, prop, spec) in PATCH_META {
            let definition = expand_definition(short);
            let schema = api.schemas().get(&definition);
            assert!(schema.is_some(), "no definition {definition}");
            let extensions = parse_extensions(spec);
            assert!(!extensions.is_empty(), "empty spec for {definition}.{prop}");
            let target = if prop.is_empty() {
                schema.expect("checked")
            } else {
                &schema.expect("checked")["properties"][*prop]
            };
            assert!(target.is_object(), "no property {definition}.{prop}");
            for (name, value) in extensions {
                assert_eq!(target[name], value, "{definition}.{prop}");
            }
            if spec.contains("list=") {
                assert_eq!(target["type"], "array", "{definition}.{prop}");
            }
        }
    }

    #[test]
    fn refs_resolve_within_each_doc() {
        let api = built();
        for (path, doc) in docs(api) {
            let schemas = doc["components"]["schemas"].as_object().expect("schemas");
            let mut refs = 0;
            visit_refs(doc, &mut |r| {
                refs += 1;
                let name = r
                    .strip_prefix(REF_PREFIX)
                    .unwrap_or_else(|| panic!("{path}: foreign ref {r}"));
                assert!(schemas.contains_key(name), "{path}: dangling ref {r}");
            });
            assert!(refs > 0, "{path}");
        }
        let mut dangling = Vec::new();
        visit_refs(&Value::Object(api.schemas().clone()), &mut |r| {
            if !api.schemas().contains_key(r.trim_start_matches(REF_PREFIX)) {
                dangling.push(r.to_owned());
            }
        });
        assert!(dangling.is_empty(), "{dangling:?}");
    }

    #[test]
    fn hash_is_stable_and_matches_root() {
        let a = built();
        let b = OpenApi::build(SERVED);
        assert_eq!(a.root(), b.root());
        for (path, doc) in docs(a) {
            let (_, hash) = a.group_version(&path).expect("doc");
            assert_eq!(Some(hash), b.group_version(&path).map(|(_, h)| h));
            let bytes = serde_json::to_vec(doc).expect("serialise");
            assert_eq!(hash, hex_upper(&digest(&bytes)));
            assert_eq!(
                a.root()["paths"][path.as_str()]["serverRelativeURL"],
                format!("/openapi/v3/{path}?hash={hash}")
            );
        }
        assert!(a.group_version("apis/unknown/v1").is_none());
    }

    #[test]
    fn digest_tells_documents_apart() {
        let base = vec![b'x'; 1001];
        let reference = digest(&base);
        assert_eq!(reference, digest(&base.clone()));
        let mut seen = BTreeSet::new();
        seen.insert(reference);
        for i in 0..base.len() {
            let mut changed = base.clone();
            changed[i] ^= 1;
            assert!(seen.insert(digest(&changed)), "collision at byte {i}");
        }
        for len in 0..64 {
            assert!(
                seen.insert(digest(&vec![0; len])),
                "collision at length {len}"
            );
        }
        assert_eq!(hex_upper(&reference).len(), 32);
    }

    /// Mirrors kubectl's checks: the first PATCH operation carrying a kind's
    /// group-version-kind must take `fieldValidation` in the query and accept
    /// strategic merge patches.
    #[test]
    fn patch_operations_take_field_validation() {
        let api = built();
        let deployment_item = "/apis/apps/v1/namespaces/{namespace}/deployments/{name}";
        let (apps, _) = api.group_version("apis/apps/v1").expect("doc");
        let patch = &apps["paths"][deployment_item]["patch"];
        assert_eq!(
            patch["x-kubernetes-group-version-kind"],
            json!({"group": "apps", "kind": "Deployment", "version": "v1"})
        );
        let mut checked = 0;
        for (path, doc) in docs(api) {
            for (url, item) in doc["paths"].as_object().expect("paths") {
                for method in ["post", "put", "patch"] {
                    let Some(op) = item.get(method) else { continue };
                    if op["x-kubernetes-action"] == "connect" {
                        continue;
                    }
                    let params = op["parameters"].as_array().expect("parameters");
                    assert!(
                        params
                            .iter()
                            .any(|p| p["name"] == "fieldValidation" && p["in"] == "query"),
                        "{path} {method} {url}"
                    );
                    if method == "patch" {
                        assert!(op["x-kubernetes-group-version-kind"].is_object(), "{url}");
                        assert!(
                            op["requestBody"]["content"]
                                .get("application/strategic-merge-patch+json")
                                .is_some(),
                            "{url}"
                        );
                        checked += 1;
                    }
                }
            }
        }
        assert!(checked >= SERVED.len());
    }

    /// Mirrors `kubectl explain`: the list path's operation names the kind,
    /// and exactly that kind's schema carries the same group-version-kind.
    #[test]
    fn explain_finds_kinds_through_paths() {
        let api = built();
        for r in SERVED {
            let (doc, _) = api
                .group_version(&gv_path(r.group, r.version))
                .expect("doc");
            let prefix = format!("/{}", gv_path(r.group, r.version));
            let list = if r.namespaced {
                format!("{prefix}/namespaces/{{namespace}}/{}", r.plural)
            } else {
                format!("{prefix}/{}", r.plural)
            };
            let gvk = &doc["paths"][list.as_str()]["get"]["x-kubernetes-group-version-kind"];
            assert_eq!(
                gvk,
                &json!({"group": r.group, "kind": r.kind, "version": r.version})
            );
            let definition = api
                .definition_name(r.group, r.version, r.kind)
                .expect("name");
            let schema = &doc["components"]["schemas"][definition];
            assert!(
                schema["x-kubernetes-group-version-kind"]
                    .as_array()
                    .is_some_and(|a| a.contains(gvk))
            );
        }
        let (core, _) = api.group_version("api/v1").expect("core");
        let scale = "/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale";
        let (apps, _) = api.group_version("apis/apps/v1").expect("apps");
        assert_eq!(
            apps["paths"][scale]["put"]["x-kubernetes-group-version-kind"]["kind"],
            "Scale"
        );
        assert!(core["paths"]["/api/v1/namespaces/{namespace}/pods/{name}/log"]["get"].is_object());
        assert!(core["paths"]["/api/v1/pods"]["get"].is_object());
        assert!(core["paths"]["/api/v1/nodes/{name}/status"]["patch"].is_object());
        let finalize = &core["paths"]["/api/v1/namespaces/{name}/finalize"];
        assert_eq!(
            finalize["put"]["x-kubernetes-group-version-kind"]["kind"],
            "Namespace"
        );
    }

    #[test]
    fn unknown_kinds_are_left_out() {
        let api = OpenApi::build(&[
            res("example.com", "v1", "Widget", "widgets", true, &[]),
            res("apps", "v1", "Deployment", "deployments", true, &[]),
        ]);
        assert!(api.group_version("apis/example.com/v1").is_none());
        assert!(api.group_version("apis/apps/v1").is_some());
        assert_eq!(api.root()["paths"].as_object().map(Map::len), Some(1));
    }
}
