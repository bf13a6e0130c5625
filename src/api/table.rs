//! Server-side table printing: the `meta.k8s.io/v1` `Table` that kubectl asks
//! for with `Accept: application/json;as=Table;v=v1;g=meta.k8s.io`.
//!
//! kubectl prints whatever columns the server sends, so for `kubectl get` to
//! look the way it does against a real cluster, the columns and every cell
//! must be the ones Kubernetes' own apiserver produces for the kind. The
//! apiserver always renders the "wide" cells as well (priority-1 columns);
//! kubectl hides those unless `-o wide` is given. This module does the same.
//!
//! Everything works on the object's stored JSON. Where the apiserver would
//! have applied API defaults on decoding (a Service's type, a Deployment's
//! replica count, ...), the same defaults are assumed here when a field is
//! absent, so an object stored without them prints identically.

use chrono::{DateTime, Datelike, Duration, Timelike, Utc};
use serde_json::{Map, Value};

/// One column definition of a meta.k8s.io/v1 Table.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Column {
    pub name: &'static str,
    #[serde(rename = "type")]
    pub type_: &'static str,
    pub format: &'static str,
    pub description: &'static str,
    pub priority: i32,
}

// ---------------------------------------------------------------------------
// Column definitions
// ---------------------------------------------------------------------------

const D_NAME: &str =
    "Name of the object; unique within its namespace (or the cluster for cluster-scoped kinds).";
const D_AGE: &str = "How long ago the object was created.";
const D_CREATED: &str = "When the object was created (RFC 3339, UTC).";
const D_CONTAINERS: &str = "Names of the containers in the pod template.";
const D_IMAGES: &str = "Images used by the containers in the pod template.";
const D_SELECTOR: &str = "Label selector picking the pods this object manages.";

/// A priority-0 column.
const fn c(name: &'static str, type_: &'static str, description: &'static str) -> Column {
    Column {
        name,
        type_,
        format: "",
        description,
        priority: 0,
    }
}

/// A priority-1 ("wide") column.
const fn w(name: &'static str, type_: &'static str, description: &'static str) -> Column {
    Column {
        name,
        type_,
        format: "",
        description,
        priority: 1,
    }
}

const fn name_col() -> Column {
    Column {
        name: "Name",
        type_: "string",
        format: "name",
        description: D_NAME,
        priority: 0,
    }
}

const fn age_col() -> Column {
    c("Age", "string", D_AGE)
}

/// Which printer handles a (group, kind).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Printer {
    Pod,
    PodTemplate,
    ReplicationController,
    Namespace,
    Node,
    Service,
    Endpoints,
    ConfigMap,
    Secret,
    Event,
    ServiceAccount,
    PersistentVolume,
    PersistentVolumeClaim,
    Deployment,
    ReplicaSet,
    StatefulSet,
    DaemonSet,
    ControllerRevision,
    Job,
    CronJob,
    Lease,
    Ingress,
    IngressClass,
    NetworkPolicy,
    EndpointSlice,
    StorageClass,
    RoleBinding,
    PriorityClass,
    PodDisruptionBudget,
    Webhook,
    RuntimeClass,
    Default,
}

fn printer(group: &str, kind: &str) -> Printer {
    use Printer::*;
    match (group, kind) {
        ("", "Pod") => Pod,
        ("", "PodTemplate") => PodTemplate,
        ("", "ReplicationController") => ReplicationController,
        ("", "Namespace") => Namespace,
        ("", "Node") => Node,
        ("", "Service") => Service,
        ("", "Endpoints") => Endpoints,
        ("", "ConfigMap") => ConfigMap,
        ("", "Secret") => Secret,
        ("" | "events.k8s.io", "Event") => Event,
        ("", "ServiceAccount") => ServiceAccount,
        ("", "PersistentVolume") => PersistentVolume,
        ("", "PersistentVolumeClaim") => PersistentVolumeClaim,
        ("apps" | "extensions", "Deployment") => Deployment,
        ("apps" | "extensions", "ReplicaSet") => ReplicaSet,
        ("apps", "StatefulSet") => StatefulSet,
        ("apps" | "extensions", "DaemonSet") => DaemonSet,
        ("apps", "ControllerRevision") => ControllerRevision,
        ("batch", "Job") => Job,
        ("batch", "CronJob") => CronJob,
        ("coordination.k8s.io", "Lease") => Lease,
        ("networking.k8s.io" | "extensions", "Ingress") => Ingress,
        ("networking.k8s.io", "IngressClass") => IngressClass,
        ("networking.k8s.io" | "extensions", "NetworkPolicy") => NetworkPolicy,
        ("discovery.k8s.io", "EndpointSlice") => EndpointSlice,
        ("storage.k8s.io", "StorageClass") => StorageClass,
        ("rbac.authorization.k8s.io", "RoleBinding" | "ClusterRoleBinding") => RoleBinding,
        ("scheduling.k8s.io", "PriorityClass") => PriorityClass,
        ("policy", "PodDisruptionBudget") => PodDisruptionBudget,
        (
            "admissionregistration.k8s.io",
            "MutatingWebhookConfiguration" | "ValidatingWebhookConfiguration",
        ) => Webhook,
        ("node.k8s.io", "RuntimeClass") => RuntimeClass,
        _ => Default,
    }
}

/// The columns for a kind (group "" for core). Kinds without a dedicated
/// printer get the apiserver's default table convertor columns: `Name` and
/// `Created At` (type `date`, cells are RFC 3339 timestamps).
#[rustfmt::skip]
pub fn columns(group: &str, kind: &str) -> Vec<Column> {
    match printer(group, kind) {
        Printer::Pod => vec![
            name_col(),
            c("Ready", "string", "Ready containers out of all containers in the pod."),
            c("Status", "string", "Summary of the pod's lifecycle and container states."),
            c("Restarts", "string", "Container restarts, with how long ago the latest one was."),
            age_col(),
            w("IP", "string", "The pod's primary IP address."),
            w("Node", "string", "The node the pod is bound to."),
            w("Nominated Node", "string", "The node the scheduler nominated through preemption."),
            w("Readiness Gates", "string", "Readiness gates whose condition is true, out of all gates."),
        ],
        Printer::PodTemplate => vec![
            name_col(),
            c("Containers", "string", D_CONTAINERS),
            c("Images", "string", D_IMAGES),
            c("Pod Labels", "string", "Labels set on pods made from the template."),
        ],
        Printer::ReplicationController => vec![
            name_col(),
            c("Desired", "integer", "Requested number of replicas."),
            c("Current", "integer", "Replicas that currently exist."),
            c("Ready", "integer", "Replicas that are ready."),
            age_col(),
            w("Containers", "string", D_CONTAINERS),
            w("Images", "string", D_IMAGES),
            w("Selector", "string", D_SELECTOR),
        ],
        Printer::Namespace => vec![
            name_col(),
            c("Status", "string", "Lifecycle phase of the namespace."),
            age_col(),
        ],
        Printer::Node => vec![
            name_col(),
            c("Status", "string", "Readiness of the node and whether scheduling is disabled."),
            c("Roles", "string", "Roles taken from the node's role labels."),
            age_col(),
            c("Version", "string", "Kubelet version reported by the node."),
            w("Internal-IP", "string", "First internal address of the node."),
            w("External-IP", "string", "First external address of the node."),
            w("OS-Image", "string", "Operating system image reported by the node."),
            w("Kernel-Version", "string", "Kernel version reported by the node."),
            w("Container-Runtime", "string", "Container runtime and version reported by the node."),
        ],
        Printer::Service => vec![
            name_col(),
            c("Type", "string", "How the service is exposed."),
            c("Cluster-IP", "string", "The service's cluster-internal IP address."),
            c("External-IP", "string", "Addresses the service is reachable on from outside."),
            c("Port(s)", "string", "Service ports, with node ports where allocated."),
            age_col(),
            w("Selector", "string", "Labels selecting the pods behind the service."),
        ],
        Printer::Endpoints => vec![
            name_col(),
            c("Endpoints", "string", "Ready addresses and ports, abbreviated."),
            age_col(),
        ],
        Printer::ConfigMap => vec![
            name_col(),
            c("Data", "string", "Number of keys in data and binaryData."),
            age_col(),
        ],
        Printer::Secret => vec![
            name_col(),
            c("Type", "string", "Type of the secret's content."),
            c("Data", "string", "Number of keys in data."),
            age_col(),
        ],
        Printer::Event => vec![
            c("Last Seen", "string", "How long ago the event was last observed."),
            c("Type", "string", "Event type (Normal or Warning)."),
            c("Reason", "string", "Short machine-readable reason."),
            c("Object", "string", "The object the event is about."),
            w("Subobject", "string", "Field path within the object, if any."),
            w("Source", "string", "Component (and host) that reported the event."),
            c("Message", "string", "Human-readable description."),
            w("First Seen", "string", "How long ago the event was first observed."),
            w("Count", "string", "How many times the event was observed."),
            Column {
                priority: 1,
                ..name_col()
            },
        ],
        Printer::ServiceAccount => vec![
            name_col(),
            c("Secrets", "string", "Number of secrets listed on the service account."),
            age_col(),
        ],
        Printer::PersistentVolume => vec![
            name_col(),
            c("Capacity", "string", "Storage capacity of the volume."),
            c("Access Modes", "string", "Access modes the volume supports."),
            c("Reclaim Policy", "string", "What happens to the volume when released."),
            c("Status", "string", "Lifecycle phase of the volume."),
            c("Claim", "string", "The claim bound to the volume."),
            c("StorageClass", "string", "Storage class of the volume."),
            c("VolumeAttributesClass", "string", "Volume attributes class of the volume."),
            c("Reason", "string", "Reason for a failed phase, if any."),
            age_col(),
            w("VolumeMode", "string", "Filesystem or Block."),
        ],
        Printer::PersistentVolumeClaim => vec![
            name_col(),
            c("Status", "string", "Lifecycle phase of the claim."),
            c("Volume", "string", "The volume bound to the claim."),
            c("Capacity", "string", "Capacity of the bound volume."),
            c("Access Modes", "string", "Access modes of the bound volume."),
            c("StorageClass", "string", "Storage class requested by the claim."),
            c("VolumeAttributesClass", "string", "Volume attributes class requested by the claim."),
            age_col(),
            w("VolumeMode", "string", "Filesystem or Block."),
        ],
        Printer::Deployment => vec![
            name_col(),
            c("Ready", "string", "Ready replicas out of desired replicas."),
            c("Up-to-date", "string", "Replicas running the latest pod template."),
            c("Available", "string", "Replicas available to serve."),
            age_col(),
            w("Containers", "string", D_CONTAINERS),
            w("Images", "string", D_IMAGES),
            w("Selector", "string", D_SELECTOR),
        ],
        Printer::ReplicaSet => vec![
            name_col(),
            c("Desired", "integer", "Requested number of replicas."),
            c("Current", "integer", "Replicas that currently exist."),
            c("Ready", "integer", "Replicas that are ready."),
            age_col(),
            w("Containers", "string", D_CONTAINERS),
            w("Images", "string", D_IMAGES),
            w("Selector", "string", D_SELECTOR),
        ],
        Printer::StatefulSet => vec![
            name_col(),
            c("Ready", "string", "Ready replicas out of desired replicas."),
            age_col(),
            w("Containers", "string", D_CONTAINERS),
            w("Images", "string", D_IMAGES),
        ],
        Printer::DaemonSet => vec![
            name_col(),
            c("Desired", "integer", "Nodes that should run the daemon pod."),
            c("Current", "integer", "Nodes running at least one daemon pod."),
            c("Ready", "integer", "Nodes whose daemon pod is ready."),
            c("Up-to-date", "integer", "Nodes running the latest pod template."),
            c("Available", "integer", "Nodes whose daemon pod is available."),
            c("Node Selector", "string", "Node labels the daemon pods are restricted to."),
            age_col(),
            w("Containers", "string", D_CONTAINERS),
            w("Images", "string", D_IMAGES),
            w("Selector", "string", D_SELECTOR),
        ],
        Printer::ControllerRevision => vec![
            name_col(),
            c("Controller", "string", "The controller owning this revision."),
            c("Revision", "string", "Revision number."),
            age_col(),
        ],
        Printer::Job => vec![
            name_col(),
            c("Status", "string", "Summary of the job's state."),
            c("Completions", "string", "Succeeded pods out of required completions."),
            c("Duration", "string", "How long the job ran (or has been running)."),
            age_col(),
            w("Containers", "string", D_CONTAINERS),
            w("Images", "string", D_IMAGES),
            w("Selector", "string", D_SELECTOR),
        ],
        Printer::CronJob => vec![
            name_col(),
            c("Schedule", "string", "Cron schedule."),
            c("Timezone", "string", "Time zone the schedule is evaluated in."),
            c("Suspend", "boolean", "Whether new runs are suspended."),
            c("Active", "integer", "Jobs currently running."),
            c("Last Schedule", "string", "How long ago a job was last scheduled."),
            age_col(),
            w("Containers", "string", D_CONTAINERS),
            w("Images", "string", D_IMAGES),
            w("Selector", "string", D_SELECTOR),
        ],
        Printer::Lease => vec![
            name_col(),
            c("Holder", "string", "Identity currently holding the lease."),
            age_col(),
        ],
        Printer::Ingress => vec![
            name_col(),
            c("Class", "string", "Ingress class handling this ingress."),
            c("Hosts", "string", "Hosts the rules match."),
            c("Address", "string", "Load-balancer addresses."),
            c("Ports", "string", "Ports served."),
            age_col(),
        ],
        Printer::IngressClass => vec![
            name_col(),
            c("Controller", "string", "Controller implementing the class."),
            c("Parameters", "string", "Resource holding extra configuration."),
            age_col(),
        ],
        Printer::NetworkPolicy => vec![
            name_col(),
            c("Pod-Selector", "string", "Pods the policy applies to."),
            age_col(),
        ],
        Printer::EndpointSlice => vec![
            name_col(),
            c("AddressType", "string", "Address family of the endpoints."),
            c("Ports", "string", "Ports of the slice, abbreviated."),
            c("Endpoints", "string", "Endpoint addresses, abbreviated."),
            age_col(),
        ],
        Printer::StorageClass => vec![
            name_col(),
            c("Provisioner", "string", "Volume provisioner."),
            c("ReclaimPolicy", "string", "Reclaim policy of provisioned volumes."),
            c("VolumeBindingMode", "string", "When volumes are bound and provisioned."),
            c("AllowVolumeExpansion", "string", "Whether volumes may be expanded."),
            age_col(),
        ],
        Printer::RoleBinding => vec![
            name_col(),
            c("Role", "string", "The role being granted."),
            age_col(),
            w("Users", "string", "Users bound."),
            w("Groups", "string", "Groups bound."),
            w("ServiceAccounts", "string", "Service accounts bound."),
        ],
        Printer::PriorityClass => vec![
            name_col(),
            c("Value", "integer", "Priority value."),
            c("Global-Default", "boolean", "Whether this is the default priority class."),
            age_col(),
            c("PreemptionPolicy", "string", "Whether pods of this class may preempt others."),
        ],
        Printer::PodDisruptionBudget => vec![
            name_col(),
            c("Min Available", "string", "Pods that must stay available."),
            c("Max Unavailable", "string", "Pods that may be unavailable."),
            c("Allowed Disruptions", "integer", "Disruptions currently allowed."),
            age_col(),
        ],
        Printer::Webhook => vec![
            name_col(),
            c("Webhooks", "integer", "Number of webhooks in the configuration."),
            age_col(),
        ],
        Printer::RuntimeClass => vec![
            name_col(),
            c("Handler", "string", "Runtime handler."),
            age_col(),
        ],
        Printer::Default => vec![name_col(), c("Created At", "date", D_CREATED)],
    }
}

// ---------------------------------------------------------------------------
// Rows
// ---------------------------------------------------------------------------

/// The cells of one row for `obj` (the object's JSON as stored), `now` for
/// ages. Wide (priority 1) cells are always included, as the apiserver does.
pub fn cells(group: &str, kind: &str, obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    match printer(group, kind) {
        Printer::Pod => pod_cells(obj, now),
        Printer::PodTemplate => pod_template_cells(obj),
        Printer::ReplicationController => replication_controller_cells(obj, now),
        Printer::Namespace => namespace_cells(obj, now),
        Printer::Node => node_cells(obj, now),
        Printer::Service => service_cells(obj, now),
        Printer::Endpoints => endpoints_cells(obj, now),
        Printer::ConfigMap => configmap_cells(obj, now),
        Printer::Secret => secret_cells(obj, now),
        Printer::Event => event_cells(obj, group == "events.k8s.io", now),
        Printer::ServiceAccount => service_account_cells(obj, now),
        Printer::PersistentVolume => pv_cells(obj, now),
        Printer::PersistentVolumeClaim => pvc_cells(obj, now),
        Printer::Deployment => deployment_cells(obj, now),
        Printer::ReplicaSet => replicaset_cells(obj, now),
        Printer::StatefulSet => statefulset_cells(obj, now),
        Printer::DaemonSet => daemonset_cells(obj, now),
        Printer::ControllerRevision => controller_revision_cells(obj, now),
        Printer::Job => job_cells(obj, now),
        Printer::CronJob => cronjob_cells(obj, now),
        Printer::Lease => lease_cells(obj, now),
        Printer::Ingress => ingress_cells(obj, now),
        Printer::IngressClass => ingress_class_cells(obj, now),
        Printer::NetworkPolicy => network_policy_cells(obj, now),
        Printer::EndpointSlice => endpoint_slice_cells(obj, now),
        Printer::StorageClass => storage_class_cells(obj, now),
        Printer::RoleBinding => role_binding_cells(obj, now),
        Printer::PriorityClass => priority_class_cells(obj, now),
        Printer::PodDisruptionBudget => pdb_cells(obj, now),
        Printer::Webhook => vec![
            name(obj),
            int(arr(obj, &["webhooks"]).len() as i64),
            age(obj, now),
        ],
        Printer::RuntimeClass => vec![name(obj), s(str_at(obj, &["handler"])), age(obj, now)],
        Printer::Default => vec![name(obj), s(created_at_rfc3339(obj))],
    }
}

/// Build a whole Table body.
///
/// `include_object` is the request's `includeObject` parameter: `"None"`
/// (rows carry `"object": null`), `"Object"` (the full object) or anything
/// else, the default `"Metadata"` (a `PartialObjectMetadata` carrying the
/// object's metadata).
pub fn table(
    group: &str,
    kind: &str,
    objects: &[Value],
    resource_version: &str,
    continue_token: Option<&str>,
    include_object: &str,
    now: DateTime<Utc>,
) -> Value {
    let mut metadata = Map::new();
    if !resource_version.is_empty() {
        metadata.insert("resourceVersion".into(), s(resource_version));
    }
    if let Some(token) = continue_token.filter(|t| !t.is_empty()) {
        metadata.insert("continue".into(), s(token));
    }

    let is_pod = printer(group, kind) == Printer::Pod;
    let rows: Vec<Value> = objects
        .iter()
        .map(|obj| {
            let mut row = Map::new();
            row.insert("cells".into(), Value::Array(cells(group, kind, obj, now)));
            if is_pod && let Some(cond) = pod_row_condition(obj) {
                row.insert("conditions".into(), Value::Array(vec![cond]));
            }
            let object = match include_object {
                "None" => Value::Null,
                "Object" => obj.clone(),
                _ => partial_object_metadata(obj),
            };
            row.insert("object".into(), object);
            Value::Object(row)
        })
        .collect();

    let column_definitions = columns(group, kind)
        .iter()
        .map(|col| serde_json::to_value(col).unwrap_or(Value::Null))
        .collect();

    let mut t = Map::new();
    t.insert("kind".into(), s("Table"));
    t.insert("apiVersion".into(), s("meta.k8s.io/v1"));
    t.insert("metadata".into(), Value::Object(metadata));
    t.insert("columnDefinitions".into(), Value::Array(column_definitions));
    t.insert("rows".into(), Value::Array(rows));
    Value::Object(t)
}

fn partial_object_metadata(obj: &Value) -> Value {
    let mut m = Map::new();
    m.insert("kind".into(), s("PartialObjectMetadata"));
    m.insert("apiVersion".into(), s("meta.k8s.io/v1"));
    m.insert(
        "metadata".into(),
        at(obj, &["metadata"])
            .filter(|v| v.is_object())
            .cloned()
            .unwrap_or_else(|| Value::Object(Map::new())),
    );
    Value::Object(m)
}

/// Finished pods carry a `Completed` row condition, as the apiserver's pod
/// printer attaches.
fn pod_row_condition(obj: &Value) -> Option<Value> {
    let (reason, message) = match str_at(obj, &["status", "phase"]) {
        "Succeeded" => ("Succeeded", "The pod has completed successfully."),
        "Failed" => ("Failed", "The pod failed."),
        _ => return None,
    };
    let mut m = Map::new();
    m.insert("type".into(), s("Completed"));
    m.insert("status".into(), s("True"));
    m.insert("reason".into(), s(reason));
    m.insert("message".into(), s(message));
    Some(Value::Object(m))
}

// ---------------------------------------------------------------------------
// Durations and times
// ---------------------------------------------------------------------------

/// Kubernetes' human duration, as apimachinery's `duration.HumanDuration`
/// prints ages: about two or three significant figures ("5s", "119s",
/// "3m20s", "15m", "5h3m", "10h", "2d3h", "45d", "2y100d", "9y").
/// Slightly negative values (down to -1s, clock skew) print "0s"; anything
/// further in the future prints "<invalid>".
pub fn human_duration(d: Duration) -> String {
    // Whole seconds, truncated toward zero like Go's int(d.Seconds()).
    let secs = d.num_seconds();
    if secs < -1 {
        return "<invalid>".to_string();
    }
    if secs < 0 {
        return "0s".to_string();
    }
    if secs < 60 * 2 {
        return format!("{secs}s");
    }
    let minutes = secs / 60;
    if minutes < 10 {
        let rem = secs % 60;
        return if rem == 0 {
            format!("{minutes}m")
        } else {
            format!("{minutes}m{rem}s")
        };
    }
    if minutes < 60 * 3 {
        return format!("{minutes}m");
    }
    let hours = secs / 3600;
    if hours < 8 {
        let rem = minutes % 60;
        return if rem == 0 {
            format!("{hours}h")
        } else {
            format!("{hours}h{rem}m")
        };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    if hours < 24 * 8 {
        let rem = hours % 24;
        return if rem == 0 {
            format!("{}d", hours / 24)
        } else {
            format!("{}d{rem}h", hours / 24)
        };
    }
    if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    }
    if hours < 24 * 365 * 8 {
        let days = (hours / 24) % 365;
        return if days == 0 {
            format!("{}y", hours / 24 / 365)
        } else {
            format!("{}y{days}d", hours / 24 / 365)
        };
    }
    format!("{}y", hours / 24 / 365)
}

/// Parses an RFC 3339 timestamp (with or without fractional seconds). The
/// zero time (`0001-01-01T00:00:00Z`, Go's zero value) counts as absent.
fn parse_time(v: &Value) -> Option<DateTime<Utc>> {
    let t = DateTime::parse_from_rfc3339(v.as_str()?)
        .ok()?
        .with_timezone(&Utc);
    let zero = t.year() == 1
        && t.month() == 1
        && t.day() == 1
        && t.hour() == 0
        && t.minute() == 0
        && t.second() == 0
        && t.nanosecond() == 0;
    (!zero).then_some(t)
}

fn time_at(v: &Value, path: &[&str]) -> Option<DateTime<Utc>> {
    at(v, path).and_then(parse_time)
}

/// Age since a timestamp, "<unknown>" when it is missing.
fn since(t: Option<DateTime<Utc>>, now: DateTime<Utc>) -> String {
    match t {
        Some(t) => human_duration(now.signed_duration_since(t)),
        None => "<unknown>".to_string(),
    }
}

fn age(obj: &Value, now: DateTime<Utc>) -> Value {
    s(since(time_at(obj, &["metadata", "creationTimestamp"]), now))
}

fn created_at_rfc3339(obj: &Value) -> String {
    match time_at(obj, &["metadata", "creationTimestamp"]) {
        Some(t) => t.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        None => "0001-01-01T00:00:00Z".to_string(),
    }
}

fn later(a: Option<DateTime<Utc>>, b: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

// ---------------------------------------------------------------------------
// JSON access helpers
// ---------------------------------------------------------------------------

fn at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter()
        .try_fold(v, |cur, key| cur.get(*key))
        .filter(|v| !v.is_null())
}

fn present(v: &Value, path: &[&str]) -> bool {
    at(v, path).is_some()
}

fn str_at<'a>(v: &'a Value, path: &[&str]) -> &'a str {
    at(v, path).and_then(Value::as_str).unwrap_or("")
}

fn as_int(v: &Value) -> Option<i64> {
    v.as_i64()
        .or_else(|| v.as_f64().map(|f| f as i64))
        .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
}

fn opt_int(v: &Value, path: &[&str]) -> Option<i64> {
    at(v, path).and_then(as_int)
}

fn int_at(v: &Value, path: &[&str]) -> i64 {
    opt_int(v, path).unwrap_or(0)
}

fn bool_at(v: &Value, path: &[&str]) -> Option<bool> {
    at(v, path).and_then(Value::as_bool)
}

fn arr<'a>(v: &'a Value, path: &[&str]) -> &'a [Value] {
    at(v, path)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

fn map_len(v: &Value, path: &[&str]) -> usize {
    at(v, path).and_then(Value::as_object).map_or(0, Map::len)
}

fn s(v: impl Into<String>) -> Value {
    Value::String(v.into())
}

fn int(i: i64) -> Value {
    Value::from(i)
}

fn name(obj: &Value) -> Value {
    s(str_at(obj, &["metadata", "name"]))
}

fn or_none(v: &str) -> String {
    if v.is_empty() {
        "<none>".to_string()
    } else {
        v.to_string()
    }
}

fn is_deleting(obj: &Value) -> bool {
    present(obj, &["metadata", "deletionTimestamp"])
}

/// `True`/`False` of a boolean, as the printers spell booleans in strings.
fn print_bool(b: bool) -> &'static str {
    if b { "True" } else { "False" }
}

/// Container names and images, each comma-joined.
fn container_cells(containers: &[Value]) -> (Value, Value) {
    let names: Vec<&str> = containers.iter().map(|c| str_at(c, &["name"])).collect();
    let images: Vec<&str> = containers.iter().map(|c| str_at(c, &["image"])).collect();
    (s(names.join(",")), s(images.join(",")))
}

// ---------------------------------------------------------------------------
// Labels and selectors
// ---------------------------------------------------------------------------

/// A label map as `k=v` pairs sorted by key, `<none>` when empty (like
/// apimachinery's `labels.FormatLabels`).
fn format_labels(v: Option<&Value>) -> String {
    let mut pairs: Vec<(String, String)> = v
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect()
        })
        .unwrap_or_default();
    pairs.sort();
    let joined = pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",");
    or_none(&joined)
}

fn is_label_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
}

fn is_dns_subdomain(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|label| {
            let b = label.as_bytes();
            !b.is_empty()
                && b.len() <= 63
                && b.iter()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
                && b[0] != b'-'
                && b[b.len() - 1] != b'-'
        })
}

fn is_label_key(key: &str) -> bool {
    let parts: Vec<&str> = key.split('/').collect();
    match parts.as_slice() {
        [name] => is_label_name(name),
        [prefix, name] => is_dns_subdomain(prefix) && is_label_name(name),
        _ => false,
    }
}

fn is_label_value(v: &str) -> bool {
    v.is_empty() || is_label_name(v)
}

/// The string form of a metav1.LabelSelector converted to a labels selector
/// (`LabelSelectorAsSelector(...).String()`): requirements sorted by key,
/// `in`/`notin` value lists sorted. A missing or empty selector gives "";
/// an invalid one gives `Err`.
fn selector_string(sel: Option<&Value>) -> Result<String, ()> {
    let Some(sel) = sel else {
        return Ok(String::new());
    };
    let mut reqs: Vec<(String, String)> = Vec::new();
    if let Some(labels) = at(sel, &["matchLabels"]).and_then(Value::as_object) {
        for (k, v) in labels {
            let v = v.as_str().unwrap_or_default();
            if !is_label_key(k) || !is_label_value(v) {
                return Err(());
            }
            reqs.push((k.clone(), format!("{k}={v}")));
        }
    }
    for expr in arr(sel, &["matchExpressions"]) {
        let key = str_at(expr, &["key"]);
        if !is_label_key(key) {
            return Err(());
        }
        let mut values: Vec<&str> = arr(expr, &["values"])
            .iter()
            .map(|v| v.as_str().unwrap_or_default())
            .collect();
        if !values.iter().all(|v| is_label_value(v)) {
            return Err(());
        }
        let text = match str_at(expr, &["operator"]) {
            op @ ("In" | "NotIn") => {
                if values.is_empty() {
                    return Err(());
                }
                values.sort_unstable();
                let word = if op == "In" { "in" } else { "notin" };
                format!("{key} {word} ({})", values.join(","))
            }
            "Exists" if values.is_empty() => key.to_string(),
            "DoesNotExist" if values.is_empty() => format!("!{key}"),
            _ => return Err(()),
        };
        reqs.push((key.to_string(), text));
    }
    reqs.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(reqs
        .into_iter()
        .map(|(_, text)| text)
        .collect::<Vec<_>>()
        .join(","))
}

/// metav1.FormatLabelSelector: "<none>" when it selects nothing or
/// everything, "<error>" when invalid.
fn format_label_selector(sel: Option<&Value>) -> String {
    match selector_string(sel) {
        Ok(text) => or_none(&text),
        Err(()) => "<error>".to_string(),
    }
}

// ---------------------------------------------------------------------------
// Quantities
// ---------------------------------------------------------------------------

/// A resource quantity in Kubernetes' canonical form (what
/// `resource.Quantity.String()` prints): "1536Mi" for "1.5Gi", "1" for
/// "1000m", "2k" for "2000". A missing quantity prints "0"; one this parser
/// does not understand is printed as given.
fn quantity(v: Option<&Value>) -> String {
    let raw = match v {
        None => return "0".to_string(),
        Some(Value::String(text)) => text.clone(),
        Some(other) => other.to_string(),
    };
    canonical_quantity(&raw).unwrap_or(raw)
}

fn canonical_quantity(raw: &str) -> Option<String> {
    #[derive(PartialEq)]
    enum Fmt {
        Binary,
        Decimal,
        Exponent,
    }
    let text = raw.trim();
    let (negative, rest) = match text.as_bytes().first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    let split = rest
        .find(|ch: char| !(ch.is_ascii_digit() || ch == '.'))
        .unwrap_or(rest.len());
    let (number, suffix) = rest.split_at(split);
    let (whole, frac) = number.split_once('.').unwrap_or((number, ""));
    if (whole.is_empty() && frac.is_empty()) || frac.contains('.') {
        return None;
    }
    let digits = format!("{whole}{frac}");
    if digits.len() > 30 {
        return None;
    }
    let mut mantissa: i128 = digits.parse().ok()?;
    let mut exp = -(frac.len() as i32);
    let (fmt, binary_power) = match suffix {
        "Ki" => (Fmt::Binary, 1),
        "Mi" => (Fmt::Binary, 2),
        "Gi" => (Fmt::Binary, 3),
        "Ti" => (Fmt::Binary, 4),
        "Pi" => (Fmt::Binary, 5),
        "Ei" => (Fmt::Binary, 6),
        "" => (Fmt::Decimal, 0),
        "n" | "u" | "m" | "k" | "M" | "G" | "T" | "P" | "E" => {
            exp += match suffix {
                "n" => -9,
                "u" => -6,
                "m" => -3,
                "k" => 3,
                "M" => 6,
                "G" => 9,
                "T" => 12,
                "P" => 15,
                _ => 18,
            };
            (Fmt::Decimal, 0)
        }
        other if other.starts_with(['e', 'E']) => {
            exp += other[1..].parse::<i32>().ok()?;
            (Fmt::Exponent, 0)
        }
        _ => return None,
    };
    for _ in 0..binary_power {
        mantissa = mantissa.checked_mul(1024)?;
    }
    if negative {
        mantissa = -mantissa;
    }
    if mantissa == 0 {
        return Some("0".to_string());
    }
    while mantissa % 10 == 0 {
        mantissa /= 10;
        exp += 1;
    }
    if !(-9..=30).contains(&exp) {
        return None;
    }

    if fmt == Fmt::Binary && exp >= 0 {
        let mut n = mantissa.checked_mul(10i128.checked_pow(exp as u32)?)?;
        if n.abs() >= 1024 {
            let mut power = 0;
            while power < 6 && n % 1024 == 0 {
                n /= 1024;
                power += 1;
            }
            let suffix = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"][power];
            return Some(format!("{n}{suffix}"));
        }
    }

    // Decimal forms: bring the exponent down to a multiple of three.
    let shift = exp.rem_euclid(3);
    mantissa = mantissa.checked_mul(10i128.pow(shift as u32))?;
    exp -= shift;
    let suffix = if fmt == Fmt::Exponent {
        if exp == 0 {
            String::new()
        } else {
            format!("e{exp}")
        }
    } else {
        match exp {
            -9 => "n",
            -6 => "u",
            -3 => "m",
            0 => "",
            3 => "k",
            6 => "M",
            9 => "G",
            12 => "T",
            15 => "P",
            18 => "E",
            _ => return None,
        }
        .to_string()
    };
    Some(format!("{mantissa}{suffix}"))
}

/// Access modes abbreviated (RWO, ROX, RWX, RWOP) in that fixed order.
fn access_modes(modes: &[Value]) -> String {
    let has = |m: &str| modes.iter().any(|v| v.as_str() == Some(m));
    [
        ("ReadWriteOnce", "RWO"),
        ("ReadOnlyMany", "ROX"),
        ("ReadWriteMany", "RWX"),
        ("ReadWriteOncePod", "RWOP"),
    ]
    .iter()
    .filter(|(mode, _)| has(mode))
    .map(|(_, short)| *short)
    .collect::<Vec<_>>()
    .join(",")
}

// ---------------------------------------------------------------------------
// core/v1
// ---------------------------------------------------------------------------

fn condition_true(conditions: &[Value], type_: &str) -> bool {
    conditions
        .iter()
        .find(|c| str_at(c, &["type"]) == type_)
        .is_some_and(|c| str_at(c, &["status"]) == "True")
}

fn pod_cells(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let containers = arr(obj, &["spec", "containers"]);
    let init_specs = arr(obj, &["spec", "initContainers"]);
    let conditions = arr(obj, &["status", "conditions"]);
    let is_sidecar = |c: &Value| str_at(c, &["restartPolicy"]) == "Always";
    let total = containers.len() + init_specs.iter().filter(|c| is_sidecar(c)).count();

    let phase = str_at(obj, &["status", "phase"]);
    let status_reason = str_at(obj, &["status", "reason"]);
    let mut reason = if !status_reason.is_empty() {
        status_reason.to_string()
    } else if phase.is_empty() {
        "Pending".to_string()
    } else {
        phase.to_string()
    };
    if conditions.iter().any(|c| {
        str_at(c, &["type"]) == "PodScheduled" && str_at(c, &["reason"]) == "SchedulingGated"
    }) {
        reason = "SchedulingGated".to_string();
    }

    let mut restarts: i64 = 0;
    let mut sidecar_restarts: i64 = 0;
    let mut ready: usize = 0;
    let mut last_restart: Option<DateTime<Utc>> = None;
    let mut last_sidecar_restart: Option<DateTime<Utc>> = None;

    let mut initializing = false;
    for (i, cs) in arr(obj, &["status", "initContainerStatuses"])
        .iter()
        .enumerate()
    {
        let count = int_at(cs, &["restartCount"]);
        let finished = time_at(cs, &["lastState", "terminated", "finishedAt"]);
        restarts += count;
        last_restart = later(last_restart, finished);
        let cname = str_at(cs, &["name"]);
        let sidecar = init_specs
            .iter()
            .find(|c| str_at(c, &["name"]) == cname)
            .is_some_and(is_sidecar);
        if sidecar {
            sidecar_restarts += count;
            last_sidecar_restart = later(last_sidecar_restart, finished);
        }
        let terminated = at(cs, &["state", "terminated"]);
        let waiting_reason = str_at(cs, &["state", "waiting", "reason"]);
        if terminated.is_some_and(|t| int_at(t, &["exitCode"]) == 0) {
            continue;
        }
        if sidecar && bool_at(cs, &["started"]) == Some(true) {
            if bool_at(cs, &["ready"]) == Some(true) {
                ready += 1;
            }
            continue;
        }
        if let Some(t) = terminated {
            let treason = str_at(t, &["reason"]);
            let signal = int_at(t, &["signal"]);
            reason = if !treason.is_empty() {
                format!("Init:{treason}")
            } else if signal != 0 {
                format!("Init:Signal:{signal}")
            } else {
                format!("Init:ExitCode:{}", int_at(t, &["exitCode"]))
            };
        } else if !waiting_reason.is_empty() && waiting_reason != "PodInitializing" {
            reason = format!("Init:{waiting_reason}");
        } else {
            reason = format!("Init:{i}/{}", init_specs.len());
        }
        initializing = true;
        break;
    }

    if !initializing || condition_true(conditions, "Initialized") {
        restarts = sidecar_restarts;
        last_restart = last_sidecar_restart;
        let mut has_running = false;
        for cs in arr(obj, &["status", "containerStatuses"]).iter().rev() {
            restarts += int_at(cs, &["restartCount"]);
            last_restart = later(
                last_restart,
                time_at(cs, &["lastState", "terminated", "finishedAt"]),
            );
            let waiting_reason = str_at(cs, &["state", "waiting", "reason"]);
            let terminated = at(cs, &["state", "terminated"]);
            if !waiting_reason.is_empty() {
                reason = waiting_reason.to_string();
            } else if let Some(t) = terminated {
                let treason = str_at(t, &["reason"]);
                let signal = int_at(t, &["signal"]);
                reason = if !treason.is_empty() {
                    treason.to_string()
                } else if signal != 0 {
                    format!("Signal:{signal}")
                } else {
                    format!("ExitCode:{}", int_at(t, &["exitCode"]))
                };
            } else if bool_at(cs, &["ready"]) == Some(true) && present(cs, &["state", "running"]) {
                has_running = true;
                ready += 1;
            }
        }
        if reason == "Completed" && has_running {
            reason = if condition_true(conditions, "Ready") {
                "Running".to_string()
            } else {
                "NotReady".to_string()
            };
        }
    }

    if is_deleting(obj) {
        if status_reason == "NodeLost" {
            reason = "Unknown".to_string();
        } else if phase != "Succeeded" && phase != "Failed" {
            reason = "Terminating".to_string();
        }
    }

    let restarts_text = match last_restart {
        Some(t) if restarts != 0 => format!("{restarts} ({} ago)", since(Some(t), now)),
        _ => restarts.to_string(),
    };

    let pod_ip = arr(obj, &["status", "podIPs"])
        .first()
        .map(|p| str_at(p, &["ip"]))
        .filter(|ip| !ip.is_empty())
        .unwrap_or_else(|| str_at(obj, &["status", "podIP"]));

    let gates = arr(obj, &["spec", "readinessGates"]);
    let readiness_gates = if gates.is_empty() {
        "<none>".to_string()
    } else {
        let passing = gates
            .iter()
            .filter(|g| condition_true(conditions, str_at(g, &["conditionType"])))
            .count();
        format!("{passing}/{}", gates.len())
    };

    vec![
        name(obj),
        s(format!("{ready}/{total}")),
        s(reason),
        s(restarts_text),
        age(obj, now),
        s(or_none(pod_ip)),
        s(or_none(str_at(obj, &["spec", "nodeName"]))),
        s(or_none(str_at(obj, &["status", "nominatedNodeName"]))),
        s(readiness_gates),
    ]
}

fn pod_template_cells(obj: &Value) -> Vec<Value> {
    let (names, images) = container_cells(arr(obj, &["template", "spec", "containers"]));
    vec![
        name(obj),
        names,
        images,
        s(format_labels(at(obj, &["template", "metadata", "labels"]))),
    ]
}

fn replication_controller_cells(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let (names, images) = container_cells(arr(obj, &["spec", "template", "spec", "containers"]));
    vec![
        name(obj),
        int(opt_int(obj, &["spec", "replicas"]).unwrap_or(1)),
        int(int_at(obj, &["status", "replicas"])),
        int(int_at(obj, &["status", "readyReplicas"])),
        age(obj, now),
        names,
        images,
        s(format_labels(at(obj, &["spec", "selector"]))),
    ]
}

fn namespace_cells(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let phase = str_at(obj, &["status", "phase"]);
    vec![
        name(obj),
        s(if phase.is_empty() { "Active" } else { phase }),
        age(obj, now),
    ]
}

fn node_cells(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let ready = arr(obj, &["status", "conditions"])
        .iter()
        .rev()
        .find(|c| str_at(c, &["type"]) == "Ready");
    let mut status = vec![match ready {
        Some(c) if str_at(c, &["status"]) == "True" => "Ready",
        Some(_) => "NotReady",
        None => "Unknown",
    }];
    if bool_at(obj, &["spec", "unschedulable"]) == Some(true) {
        status.push("SchedulingDisabled");
    }

    let mut roles: Vec<&str> = Vec::new();
    if let Some(labels) = at(obj, &["metadata", "labels"]).and_then(Value::as_object) {
        for (k, v) in labels {
            if let Some(role) = k.strip_prefix("node-role.kubernetes.io/") {
                if !role.is_empty() {
                    roles.push(role);
                }
            } else if k == "kubernetes.io/role"
                && let Some(role) = v.as_str().filter(|r| !r.is_empty())
            {
                roles.push(role);
            }
        }
    }
    roles.sort_unstable();
    roles.dedup();

    let address = |kind: &str| {
        arr(obj, &["status", "addresses"])
            .iter()
            .find(|a| str_at(a, &["type"]) == kind)
            .map(|a| str_at(a, &["address"]).to_string())
            .unwrap_or_else(|| "<none>".to_string())
    };
    let info = |field: &str| {
        let v = str_at(obj, &["status", "nodeInfo", field]);
        if v.is_empty() { "<unknown>" } else { v }.to_string()
    };

    vec![
        name(obj),
        s(status.join(",")),
        s(or_none(&roles.join(","))),
        age(obj, now),
        s(str_at(obj, &["status", "nodeInfo", "kubeletVersion"])),
        s(address("InternalIP")),
        s(address("ExternalIP")),
        s(info("osImage")),
        s(info("kernelVersion")),
        s(info("containerRuntimeVersion")),
    ]
}

/// Load-balancer ingress points (IP, else hostname), sorted and de-duplicated.
fn load_balancer_ingress(status: Option<&Value>) -> Vec<String> {
    let mut points: Vec<String> = status
        .map(|st| arr(st, &["ingress"]))
        .unwrap_or(&[])
        .iter()
        .filter_map(|i| {
            let ip = str_at(i, &["ip"]);
            let host = str_at(i, &["hostname"]);
            if !ip.is_empty() {
                Some(ip.to_string())
            } else if !host.is_empty() {
                Some(host.to_string())
            } else {
                None
            }
        })
        .collect();
    points.sort();
    points.dedup();
    points
}

fn service_cells(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let svc_type = match str_at(obj, &["spec", "type"]) {
        "" => "ClusterIP",
        t => t,
    };
    let cluster_ip = arr(obj, &["spec", "clusterIPs"])
        .first()
        .and_then(Value::as_str)
        .filter(|ip| !ip.is_empty())
        .unwrap_or_else(|| str_at(obj, &["spec", "clusterIP"]));
    let external_ips: Vec<&str> = arr(obj, &["spec", "externalIPs"])
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let external = match svc_type {
        "ClusterIP" | "NodePort" => or_none(&external_ips.join(",")),
        "LoadBalancer" => {
            let mut all = load_balancer_ingress(at(obj, &["status", "loadBalancer"]));
            all.extend(external_ips.iter().map(|ip| ip.to_string()));
            if all.is_empty() {
                "<pending>".to_string()
            } else {
                all.join(",")
            }
        }
        "ExternalName" => str_at(obj, &["spec", "externalName"]).to_string(),
        _ => "<unknown>".to_string(),
    };
    let ports: Vec<String> = arr(obj, &["spec", "ports"])
        .iter()
        .map(|p| {
            let port = int_at(p, &["port"]);
            let protocol = match str_at(p, &["protocol"]) {
                "" => "TCP",
                proto => proto,
            };
            match int_at(p, &["nodePort"]) {
                np if np > 0 => format!("{port}:{np}/{protocol}"),
                _ => format!("{port}/{protocol}"),
            }
        })
        .collect();
    vec![
        name(obj),
        s(svc_type),
        s(or_none(cluster_ip)),
        s(external),
        s(or_none(&ports.join(","))),
        age(obj, now),
        s(format_labels(at(obj, &["spec", "selector"]))),
    ]
}

/// `host:port` with IPv6 hosts bracketed, like Go's net.JoinHostPort.
fn join_host_port(host: &str, port: i64) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

fn format_endpoints(obj: &Value) -> String {
    let subsets = arr(obj, &["subsets"]);
    if subsets.is_empty() {
        return "<none>".to_string();
    }
    const MAX: usize = 3;
    let mut list: Vec<String> = Vec::new();
    let mut more = false;
    let mut count = 0;
    for subset in subsets {
        let addresses = arr(subset, &["addresses"]);
        let ports = arr(subset, &["ports"]);
        if ports.is_empty() {
            count += addresses.len();
            for addr in addresses {
                if list.len() == MAX {
                    more = true;
                    break;
                }
                list.push(str_at(addr, &["ip"]).to_string());
            }
            continue;
        }
        for port in ports {
            count += addresses.len();
            for addr in addresses {
                if list.len() == MAX {
                    more = true;
                    break;
                }
                list.push(join_host_port(
                    str_at(addr, &["ip"]),
                    int_at(port, &["port"]),
                ));
            }
        }
    }
    let joined = list.join(",");
    if more {
        format!("{joined} + {} more...", count - MAX)
    } else {
        joined
    }
}

fn endpoints_cells(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    vec![name(obj), s(format_endpoints(obj)), age(obj, now)]
}

fn configmap_cells(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let keys = map_len(obj, &["data"]) + map_len(obj, &["binaryData"]);
    vec![name(obj), int(keys as i64), age(obj, now)]
}

fn secret_cells(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let type_ = match str_at(obj, &["type"]) {
        "" => "Opaque",
        t => t,
    };
    vec![
        name(obj),
        s(type_),
        int(map_len(obj, &["data"]) as i64),
        age(obj, now),
    ]
}

fn service_account_cells(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    vec![
        name(obj),
        int(arr(obj, &["secrets"]).len() as i64),
        age(obj, now),
    ]
}

/// Events: core/v1 field names, or the events.k8s.io/v1 ones.
fn event_cells(obj: &Value, events_api: bool, now: DateTime<Utc>) -> Vec<Value> {
    let f = |core: &'static str, events: &'static str| if events_api { events } else { core };
    let involved = f("involvedObject", "regarding");
    let source = f("source", "deprecatedSource");

    let first_seen = match time_at(obj, &[f("firstTimestamp", "deprecatedFirstTimestamp")]) {
        Some(t) => since(Some(t), now),
        None => since(time_at(obj, &["eventTime"]), now),
    };
    let mut last_seen = match time_at(obj, &[f("lastTimestamp", "deprecatedLastTimestamp")]) {
        Some(t) => since(Some(t), now),
        None => first_seen.clone(),
    };
    let mut count = int_at(obj, &[f("count", "deprecatedCount")]);
    if present(obj, &["series"]) {
        last_seen = since(time_at(obj, &["series", "lastObservedTime"]), now);
        count = int_at(obj, &["series", "count"]);
    } else if count == 0 {
        count = 1;
    }

    let kind = str_at(obj, &[involved, "kind"]).to_lowercase();
    let target_name = str_at(obj, &[involved, "name"]);
    let target = if target_name.is_empty() {
        kind
    } else {
        format!("{kind}/{target_name}")
    };

    let first_non_empty = |a: &str, b: &str| if a.is_empty() { b } else { a }.to_string();
    let component = first_non_empty(
        str_at(obj, &[source, "component"]),
        str_at(obj, &["reportingController"]),
    );
    let host = first_non_empty(
        str_at(obj, &[source, "host"]),
        str_at(obj, &["reportingInstance"]),
    );
    let source_text = if host.is_empty() {
        component
    } else {
        format!("{component}, {host}")
    };

    vec![
        s(last_seen),
        s(str_at(obj, &["type"])),
        s(str_at(obj, &["reason"])),
        s(target),
        s(str_at(obj, &[involved, "fieldPath"])),
        s(source_text),
        s(str_at(obj, &[f("message", "note")]).trim()),
        s(first_seen),
        int(count),
        name(obj),
    ]
}

fn pv_cells(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let claim = match at(obj, &["spec", "claimRef"]) {
        Some(r) => format!("{}/{}", str_at(r, &["namespace"]), str_at(r, &["name"])),
        None => String::new(),
    };
    let reclaim = match str_at(obj, &["spec", "persistentVolumeReclaimPolicy"]) {
        "" => "Retain",
        p => p,
    };
    let phase = if is_deleting(obj) {
        "Terminating"
    } else {
        match str_at(obj, &["status", "phase"]) {
            "" => "Pending",
            p => p,
        }
    };
    let class = at(
        obj,
        &[
            "metadata",
            "annotations",
            "volume.beta.kubernetes.io/storage-class",
        ],
    )
    .and_then(Value::as_str)
    .unwrap_or_else(|| str_at(obj, &["spec", "storageClassName"]));
    let vac = at(obj, &["spec", "volumeAttributesClassName"])
        .and_then(Value::as_str)
        .unwrap_or("<unset>");
    let mode = match str_at(obj, &["spec", "volumeMode"]) {
        "" => "Filesystem",
        m => m,
    };
    vec![
        name(obj),
        s(quantity(at(obj, &["spec", "capacity", "storage"]))),
        s(access_modes(arr(obj, &["spec", "accessModes"]))),
        s(reclaim),
        s(phase),
        s(claim),
        s(class),
        s(vac),
        s(str_at(obj, &["status", "reason"])),
        age(obj, now),
        s(mode),
    ]
}

fn pvc_cells(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let phase = if is_deleting(obj) {
        "Terminating"
    } else {
        match str_at(obj, &["status", "phase"]) {
            "" => "Pending",
            p => p,
        }
    };
    let volume = str_at(obj, &["spec", "volumeName"]);
    let (capacity, modes) = if volume.is_empty() {
        (String::new(), String::new())
    } else {
        (
            quantity(at(obj, &["status", "capacity", "storage"])),
            access_modes(arr(obj, &["status", "accessModes"])),
        )
    };
    let class = at(
        obj,
        &[
            "metadata",
            "annotations",
            "volume.beta.kubernetes.io/storage-class",
        ],
    )
    .and_then(Value::as_str)
    .unwrap_or_else(|| str_at(obj, &["spec", "storageClassName"]));
    let vac = at(obj, &["spec", "volumeAttributesClassName"])
        .and_then(Value::as_str)
        .unwrap_or("<unset>");
    let mode = match str_at(obj, &["spec", "volumeMode"]) {
        "" => "Filesystem",
        m => m,
    };
    vec![
        name(obj),
        s(phase),
        s(volume),
        s(capacity),
        s(modes),
        s(class),
        s(vac),
        age(obj, now),
        s(mode),
    ]
}

// ---------------------------------------------------------------------------
// apps/v1
// ---------------------------------------------------------------------------

fn deployment_cells(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let desired = opt_int(obj, &["spec", "replicas"]).unwrap_or(1);
    let ready = int_at(obj, &["status", "readyReplicas"]);
    let (names, images) = container_cells(arr(obj, &["spec", "template", "spec", "containers"]));
    let selector =
        selector_string(at(obj, &["spec", "selector"])).unwrap_or_else(|()| "<invalid>".into());
    vec![
        name(obj),
        s(format!("{ready}/{desired}")),
        int(int_at(obj, &["status", "updatedReplicas"])),
        int(int_at(obj, &["status", "availableReplicas"])),
        age(obj, now),
        names,
        images,
        s(selector),
    ]
}

fn replicaset_cells(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let (names, images) = container_cells(arr(obj, &["spec", "template", "spec", "containers"]));
    vec![
        name(obj),
        int(opt_int(obj, &["spec", "replicas"]).unwrap_or(1)),
        int(int_at(obj, &["status", "replicas"])),
        int(int_at(obj, &["status", "readyReplicas"])),
        age(obj, now),
        names,
        images,
        s(format_label_selector(at(obj, &["spec", "selector"]))),
    ]
}

fn statefulset_cells(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let desired = opt_int(obj, &["spec", "replicas"]).unwrap_or(1);
    let ready = int_at(obj, &["status", "readyReplicas"]);
    let (names, images) = container_cells(arr(obj, &["spec", "template", "spec", "containers"]));
    vec![
        name(obj),
        s(format!("{ready}/{desired}")),
        age(obj, now),
        names,
        images,
    ]
}

fn daemonset_cells(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let (names, images) = container_cells(arr(obj, &["spec", "template", "spec", "containers"]));
    vec![
        name(obj),
        int(int_at(obj, &["status", "desiredNumberScheduled"])),
        int(int_at(obj, &["status", "currentNumberScheduled"])),
        int(int_at(obj, &["status", "numberReady"])),
        int(int_at(obj, &["status", "updatedNumberScheduled"])),
        int(int_at(obj, &["status", "numberAvailable"])),
        s(format_labels(at(
            obj,
            &["spec", "template", "spec", "nodeSelector"],
        ))),
        age(obj, now),
        names,
        images,
        s(format_label_selector(at(obj, &["spec", "selector"]))),
    ]
}

fn controller_revision_cells(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let owner = arr(obj, &["metadata", "ownerReferences"])
        .iter()
        .find(|r| bool_at(r, &["controller"]) == Some(true));
    let controller = match owner {
        None => "<none>".to_string(),
        Some(r) => {
            let api_version = str_at(r, &["apiVersion"]);
            let group = match api_version.split_once('/') {
                Some((g, _)) => g,
                None => "",
            };
            let kind = str_at(r, &["kind"]);
            let owner_name = str_at(r, &["name"]);
            if group.is_empty() && kind.is_empty() {
                owner_name.to_string()
            } else if group.is_empty() {
                format!("{}/{owner_name}", kind.to_lowercase())
            } else {
                format!(
                    "{}.{}/{owner_name}",
                    kind.to_lowercase(),
                    group.to_lowercase()
                )
            }
        }
    };
    vec![
        name(obj),
        s(controller),
        int(int_at(obj, &["revision"])),
        age(obj, now),
    ]
}

// ---------------------------------------------------------------------------
// batch/v1
// ---------------------------------------------------------------------------

fn job_cells(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let succeeded = int_at(obj, &["status", "succeeded"]);
    let completions = match opt_int(obj, &["spec", "completions"]) {
        Some(n) => format!("{succeeded}/{n}"),
        None => match opt_int(obj, &["spec", "parallelism"]).unwrap_or(0) {
            p if p > 1 => format!("{succeeded}/1 of {p}"),
            _ => format!("{succeeded}/1"),
        },
    };

    let duration = match (
        time_at(obj, &["status", "startTime"]),
        time_at(obj, &["status", "completionTime"]),
    ) {
        (None, _) => String::new(),
        (Some(start), None) => human_duration(now.signed_duration_since(start)),
        (Some(start), Some(end)) => human_duration(end.signed_duration_since(start)),
    };

    let conditions = arr(obj, &["status", "conditions"]);
    let status = if condition_true(conditions, "Complete") {
        "Complete"
    } else if condition_true(conditions, "Failed") {
        "Failed"
    } else if is_deleting(obj) {
        "Terminating"
    } else if condition_true(conditions, "Suspended") {
        "Suspended"
    } else if condition_true(conditions, "FailureTarget") {
        "FailureTarget"
    } else if condition_true(conditions, "SuccessCriteriaMet") {
        "SuccessCriteriaMet"
    } else {
        "Running"
    };

    let (names, images) = container_cells(arr(obj, &["spec", "template", "spec", "containers"]));
    vec![
        name(obj),
        s(status),
        s(completions),
        s(duration),
        age(obj, now),
        names,
        images,
        s(format_label_selector(at(obj, &["spec", "selector"]))),
    ]
}

fn cronjob_cells(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let last_schedule = if present(obj, &["status", "lastScheduleTime"]) {
        since(time_at(obj, &["status", "lastScheduleTime"]), now)
    } else {
        "<none>".to_string()
    };
    let time_zone = at(obj, &["spec", "timeZone"])
        .and_then(Value::as_str)
        .unwrap_or("<none>");
    let suspend = print_bool(bool_at(obj, &["spec", "suspend"]).unwrap_or(false));
    let (names, images) = container_cells(arr(
        obj,
        &[
            "spec",
            "jobTemplate",
            "spec",
            "template",
            "spec",
            "containers",
        ],
    ));
    vec![
        name(obj),
        s(str_at(obj, &["spec", "schedule"])),
        s(time_zone),
        s(suspend),
        int(arr(obj, &["status", "active"]).len() as i64),
        s(last_schedule),
        age(obj, now),
        names,
        images,
        s(format_label_selector(at(
            obj,
            &["spec", "jobTemplate", "spec", "selector"],
        ))),
    ]
}

// ---------------------------------------------------------------------------
// Other groups
// ---------------------------------------------------------------------------

fn lease_cells(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    vec![
        name(obj),
        s(str_at(obj, &["spec", "holderIdentity"])),
        age(obj, now),
    ]
}

fn ingress_cells(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let class = at(obj, &["spec", "ingressClassName"])
        .and_then(Value::as_str)
        .unwrap_or("<none>");

    const MAX: usize = 3;
    let rules = arr(obj, &["spec", "rules"]);
    let mut hosts: Vec<&str> = Vec::new();
    let mut more = false;
    for rule in rules {
        if hosts.len() == MAX {
            more = true;
        }
        let host = str_at(rule, &["host"]);
        if !more && !host.is_empty() {
            hosts.push(host);
        }
    }
    let hosts_text = if hosts.is_empty() {
        "*".to_string()
    } else if more {
        format!("{} + {} more...", hosts.join(","), rules.len() - MAX)
    } else {
        hosts.join(",")
    };

    let address = load_balancer_ingress(at(obj, &["status", "loadBalancer"])).join(",");
    let ports = if arr(obj, &["spec", "tls"]).is_empty() {
        "80"
    } else {
        "80, 443"
    };
    vec![
        name(obj),
        s(class),
        s(hosts_text),
        s(address),
        s(ports),
        age(obj, now),
    ]
}

fn ingress_class_cells(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let parameters = match at(obj, &["spec", "parameters"]) {
        None => "<none>".to_string(),
        Some(p) => {
            let mut text = str_at(p, &["kind"]).to_string();
            if let Some(group) = at(p, &["apiGroup"]).and_then(Value::as_str) {
                text.push('.');
                text.push_str(group);
            }
            format!("{text}/{}", str_at(p, &["name"]))
        }
    };
    vec![
        name(obj),
        s(str_at(obj, &["spec", "controller"])),
        s(parameters),
        age(obj, now),
    ]
}

fn network_policy_cells(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    // podSelector is a required (non-pointer) field: absent reads as empty,
    // and both print "<none>".
    vec![
        name(obj),
        s(format_label_selector(at(obj, &["spec", "podSelector"]))),
        age(obj, now),
    ]
}

fn list_with_more(list: &[String], count: usize) -> String {
    const MAX: usize = 3;
    let joined = list.join(",");
    if count > MAX {
        format!("{joined} + {} more...", count - MAX)
    } else if joined.is_empty() {
        "<unset>".to_string()
    } else {
        joined
    }
}

fn endpoint_slice_cells(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let ports_all = arr(obj, &["ports"]);
    let ports: Vec<String> = ports_all
        .iter()
        .take(3)
        .map(|p| match (opt_int(p, &["port"]), at(p, &["name"])) {
            (Some(n), _) => n.to_string(),
            (None, Some(n)) => n.as_str().unwrap_or_default().to_string(),
            (None, None) => "*".to_string(),
        })
        .collect();
    let addresses: Vec<String> = arr(obj, &["endpoints"])
        .iter()
        .flat_map(|e| arr(e, &["addresses"]))
        .map(|a| a.as_str().unwrap_or_default().to_string())
        .collect();
    let shown: Vec<String> = addresses.iter().take(3).cloned().collect();
    vec![
        name(obj),
        s(str_at(obj, &["addressType"])),
        s(list_with_more(&ports, ports_all.len())),
        s(list_with_more(&shown, addresses.len())),
        age(obj, now),
    ]
}

fn storage_class_cells(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let is_default = [
        "storageclass.kubernetes.io/is-default-class",
        "storageclass.beta.kubernetes.io/is-default-class",
    ]
    .iter()
    .any(|a| str_at(obj, &["metadata", "annotations", a]) == "true");
    let mut display = str_at(obj, &["metadata", "name"]).to_string();
    if is_default {
        display.push_str(" (default)");
    }
    let reclaim = match str_at(obj, &["reclaimPolicy"]) {
        "" => "Delete",
        p => p,
    };
    let binding = match str_at(obj, &["volumeBindingMode"]) {
        "" => "Immediate",
        m => m,
    };
    vec![
        s(display),
        s(str_at(obj, &["provisioner"])),
        s(reclaim),
        s(binding),
        Value::Bool(bool_at(obj, &["allowVolumeExpansion"]).unwrap_or(false)),
        age(obj, now),
    ]
}

fn role_binding_cells(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let role = format!(
        "{}/{}",
        str_at(obj, &["roleRef", "kind"]),
        str_at(obj, &["roleRef", "name"])
    );
    let mut users = Vec::new();
    let mut groups = Vec::new();
    let mut service_accounts = Vec::new();
    for subject in arr(obj, &["subjects"]) {
        let subject_name = str_at(subject, &["name"]).to_string();
        match str_at(subject, &["kind"]) {
            "User" => users.push(subject_name),
            "Group" => groups.push(subject_name),
            "ServiceAccount" => service_accounts.push(format!(
                "{}/{subject_name}",
                str_at(subject, &["namespace"])
            )),
            _ => {}
        }
    }
    vec![
        name(obj),
        s(role),
        age(obj, now),
        s(users.join(", ")),
        s(groups.join(", ")),
        s(service_accounts.join(", ")),
    ]
}

fn priority_class_cells(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let policy = match str_at(obj, &["preemptionPolicy"]) {
        "" => "PreemptLowerPriority",
        p => p,
    };
    vec![
        name(obj),
        int(int_at(obj, &["value"])),
        Value::Bool(bool_at(obj, &["globalDefault"]).unwrap_or(false)),
        age(obj, now),
        s(policy),
    ]
}

fn int_or_string(v: Option<&Value>) -> String {
    match v {
        None => "N/A".to_string(),
        Some(Value::String(text)) => text.clone(),
        Some(other) => as_int(other).map_or_else(|| other.to_string(), |i| i.to_string()),
    }
}

fn pdb_cells(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    vec![
        name(obj),
        s(int_or_string(at(obj, &["spec", "minAvailable"]))),
        s(int_or_string(at(obj, &["spec", "maxUnavailable"]))),
        int(int_at(obj, &["status", "disruptionsAllowed"])),
        age(obj, now),
    ]
}

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use serde_json::json;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 6, 1, 12, 0, 0).unwrap()
    }

    /// RFC 3339 for `now() - secs`.
    fn ago(secs: i64) -> String {
        (now() - Duration::seconds(secs))
            .format("%Y-%m-%dT%H:%M:%SZ")
            .to_string()
    }

    fn strings(cells: &[Value]) -> Vec<String> {
        cells
            .iter()
            .map(|c| match c {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .collect()
    }

    #[test]
    fn human_duration_thresholds() {
        let sec = Duration::seconds;
        let ms = Duration::milliseconds;
        let cases: &[(Duration, &str)] = &[
            (sec(-3), "<invalid>"),
            (sec(-2), "<invalid>"),
            (ms(-1999), "0s"),
            (sec(-1), "0s"),
            (ms(-500), "0s"),
            (sec(0), "0s"),
            (ms(999), "0s"),
            (sec(1), "1s"),
            (sec(5), "5s"),
            (sec(59), "59s"),
            (sec(60), "60s"),
            (sec(119), "119s"),
            (sec(120), "2m"),
            (sec(121), "2m1s"),
            (sec(200), "3m20s"),
            (sec(9 * 60 + 59), "9m59s"),
            (sec(10 * 60), "10m"),
            (sec(10 * 60 + 59), "10m"),
            (sec(179 * 60 + 59), "179m"),
            (sec(3 * 3600), "3h"),
            (sec(3 * 3600 + 60), "3h1m"),
            (sec(7 * 3600 + 59 * 60 + 59), "7h59m"),
            (sec(8 * 3600), "8h"),
            (sec(8 * 3600 + 59 * 60), "8h"),
            (sec(47 * 3600 + 59 * 60), "47h"),
            (sec(48 * 3600), "2d"),
            (sec(51 * 3600), "2d3h"),
            (sec(7 * 86400 + 23 * 3600), "7d23h"),
            (sec(8 * 86400), "8d"),
            (sec(45 * 86400), "45d"),
            (sec(729 * 86400 + 23 * 3600), "729d"),
            (sec(730 * 86400), "2y"),
            (sec(731 * 86400), "2y1d"),
            (sec(830 * 86400), "2y100d"),
            (sec(2919 * 86400), "7y364d"),
            (sec(2920 * 86400), "8y"),
            (sec(3700 * 86400), "10y"),
        ];
        for (d, want) in cases {
            assert_eq!(human_duration(*d), *want, "duration {d:?}");
        }
    }

    #[test]
    fn wide_columns_have_priority_one() {
        let names_at = |group: &str, kind: &str, priority: i32| -> Vec<&'static str> {
            columns(group, kind)
                .into_iter()
                .filter(|c| c.priority == priority)
                .map(|c| c.name)
                .collect()
        };
        assert_eq!(
            names_at("", "Pod", 0),
            ["Name", "Ready", "Status", "Restarts", "Age"]
        );
        assert_eq!(
            names_at("", "Pod", 1),
            ["IP", "Node", "Nominated Node", "Readiness Gates"]
        );
        assert_eq!(
            names_at("apps", "Deployment", 1),
            ["Containers", "Images", "Selector"]
        );
        assert_eq!(
            names_at("", "Node", 1),
            [
                "Internal-IP",
                "External-IP",
                "OS-Image",
                "Kernel-Version",
                "Container-Runtime"
            ]
        );
        assert_eq!(
            names_at("", "Event", 1),
            ["Subobject", "Source", "First Seen", "Count", "Name"]
        );
        assert_eq!(names_at("", "PersistentVolumeClaim", 1), ["VolumeMode"]);
        assert_eq!(names_at("", "Service", 1), ["Selector"]);
        let name_col = &columns("", "Pod")[0];
        assert_eq!((name_col.type_, name_col.format), ("string", "name"));
        assert_eq!(columns("batch", "CronJob")[3].type_, "boolean");

        // Unknown kinds: the default convertor's two columns.
        let default = columns("example.com", "Widget");
        assert_eq!(default.len(), 2);
        assert_eq!(default[1].name, "Created At");
        assert_eq!(default[1].type_, "date");
    }

    #[test]
    fn every_printer_fills_every_column() {
        let kinds = [
            ("", "Pod"),
            ("", "PodTemplate"),
            ("", "ReplicationController"),
            ("", "Namespace"),
            ("", "Node"),
            ("", "Service"),
            ("", "Endpoints"),
            ("", "ConfigMap"),
            ("", "Secret"),
            ("", "Event"),
            ("events.k8s.io", "Event"),
            ("", "ServiceAccount"),
            ("", "PersistentVolume"),
            ("", "PersistentVolumeClaim"),
            ("apps", "Deployment"),
            ("apps", "ReplicaSet"),
            ("apps", "StatefulSet"),
            ("apps", "DaemonSet"),
            ("apps", "ControllerRevision"),
            ("batch", "Job"),
            ("batch", "CronJob"),
            ("coordination.k8s.io", "Lease"),
            ("networking.k8s.io", "Ingress"),
            ("networking.k8s.io", "IngressClass"),
            ("networking.k8s.io", "NetworkPolicy"),
            ("discovery.k8s.io", "EndpointSlice"),
            ("storage.k8s.io", "StorageClass"),
            ("rbac.authorization.k8s.io", "RoleBinding"),
            ("rbac.authorization.k8s.io", "ClusterRoleBinding"),
            ("scheduling.k8s.io", "PriorityClass"),
            ("policy", "PodDisruptionBudget"),
            (
                "admissionregistration.k8s.io",
                "ValidatingWebhookConfiguration",
            ),
            ("node.k8s.io", "RuntimeClass"),
            ("rbac.authorization.k8s.io", "Role"),
        ];
        let empty = json!({"metadata": {"name": "x"}});
        for (group, kind) in kinds {
            assert_eq!(
                cells(group, kind, &empty, now()).len(),
                columns(group, kind).len(),
                "{group}/{kind}"
            );
        }
    }

    fn pod(status: Value) -> Value {
        json!({
            "metadata": {"name": "web-0", "creationTimestamp": ago(300)},
            "spec": {"containers": [{"name": "app", "image": "nginx"}], "nodeName": "n1"},
            "status": status,
        })
    }

    #[test]
    fn pod_running() {
        let p = pod(json!({
            "phase": "Running",
            "podIPs": [{"ip": "10.0.0.7"}],
            "conditions": [{"type": "Ready", "status": "True"}],
            "containerStatuses": [{
                "name": "app", "ready": true, "restartCount": 0,
                "state": {"running": {"startedAt": ago(290)}}
            }]
        }));
        assert_eq!(
            strings(&cells("", "Pod", &p, now())),
            [
                "web-0", "1/1", "Running", "0", "5m", "10.0.0.7", "n1", "<none>", "<none>"
            ]
        );
        // Integers stay strings for Restarts (the column's type is string).
        assert!(cells("", "Pod", &p, now())[3].is_string());
    }

    #[test]
    fn pod_crash_loop_with_restart_age() {
        let p = pod(json!({
            "phase": "Running",
            "containerStatuses": [{
                "name": "app", "ready": false, "restartCount": 3,
                "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                "lastState": {"terminated": {"exitCode": 1, "reason": "Error", "finishedAt": ago(120)}}
            }]
        }));
        let got = strings(&cells("", "Pod", &p, now()));
        assert_eq!(&got[1..4], ["0/1", "CrashLoopBackOff", "3 (2m ago)"]);
    }

    #[test]
    fn pod_completed_and_errors() {
        let term = |reason: &str, code: i64, signal: i64| {
            pod(json!({
                "phase": if code == 0 { "Succeeded" } else { "Failed" },
                "containerStatuses": [{
                    "name": "app", "ready": false, "restartCount": 0,
                    "state": {"terminated": {"exitCode": code, "reason": reason, "signal": signal}}
                }]
            }))
        };
        let status = |p: &Value| strings(&cells("", "Pod", p, now()))[2].clone();
        assert_eq!(status(&term("Completed", 0, 0)), "Completed");
        assert_eq!(status(&term("Error", 1, 0)), "Error");
        assert_eq!(status(&term("OOMKilled", 137, 0)), "OOMKilled");
        assert_eq!(status(&term("", 2, 0)), "ExitCode:2");
        assert_eq!(status(&term("", 137, 9)), "Signal:9");

        // Finished pods carry a Completed row condition in the table.
        let t = table(
            "",
            "Pod",
            &[term("Completed", 0, 0)],
            "7",
            None,
            "None",
            now(),
        );
        assert_eq!(t["rows"][0]["conditions"][0]["reason"], "Succeeded");
        assert_eq!(t["rows"][0]["object"], Value::Null);
    }

    #[test]
    fn pod_init_containers() {
        let mut p = pod(json!({
            "phase": "Pending",
            "initContainerStatuses": [{
                "name": "init", "ready": false, "restartCount": 0,
                "state": {"running": {}}
            }],
            "containerStatuses": [{
                "name": "app", "ready": false, "restartCount": 0,
                "state": {"waiting": {"reason": "PodInitializing"}}
            }]
        }));
        p["spec"]["initContainers"] = json!([{"name": "init", "image": "busybox"}]);
        assert_eq!(strings(&cells("", "Pod", &p, now()))[2], "Init:0/1");

        p["status"]["initContainerStatuses"][0]["state"] =
            json!({"waiting": {"reason": "ImagePullBackOff"}});
        assert_eq!(
            strings(&cells("", "Pod", &p, now()))[2],
            "Init:ImagePullBackOff"
        );

        p["status"]["initContainerStatuses"][0]["state"] =
            json!({"terminated": {"exitCode": 1, "reason": "Error"}});
        assert_eq!(strings(&cells("", "Pod", &p, now()))[2], "Init:Error");

        // Init done, main container still waiting.
        p["status"]["initContainerStatuses"][0]["state"] =
            json!({"terminated": {"exitCode": 0, "reason": "Completed"}});
        assert_eq!(strings(&cells("", "Pod", &p, now()))[2], "PodInitializing");
    }

    #[test]
    fn pod_sidecar_counts_toward_ready() {
        let mut p = pod(json!({
            "phase": "Running",
            "conditions": [{"type": "Initialized", "status": "True"}, {"type": "Ready", "status": "True"}],
            "initContainerStatuses": [{
                "name": "proxy", "ready": true, "started": true, "restartCount": 1,
                "state": {"running": {}},
                "lastState": {"terminated": {"exitCode": 1, "finishedAt": ago(30)}}
            }],
            "containerStatuses": [{
                "name": "app", "ready": true, "restartCount": 0, "state": {"running": {}}
            }]
        }));
        p["spec"]["initContainers"] = json!([{"name": "proxy", "restartPolicy": "Always"}]);
        let got = strings(&cells("", "Pod", &p, now()));
        assert_eq!(&got[1..4], ["2/2", "Running", "1 (30s ago)"]);
    }

    #[test]
    fn pod_waiting_terminating_pending() {
        let creating = pod(json!({
            "phase": "Pending",
            "containerStatuses": [{
                "name": "app", "ready": false, "restartCount": 0,
                "state": {"waiting": {"reason": "ContainerCreating"}}
            }]
        }));
        assert_eq!(
            strings(&cells("", "Pod", &creating, now()))[2],
            "ContainerCreating"
        );

        let mut terminating = creating.clone();
        terminating["metadata"]["deletionTimestamp"] = json!(ago(1));
        assert_eq!(
            strings(&cells("", "Pod", &terminating, now()))[2],
            "Terminating"
        );

        let mut lost = terminating.clone();
        lost["status"]["reason"] = json!("NodeLost");
        assert_eq!(strings(&cells("", "Pod", &lost, now()))[2], "Unknown");

        let bare = json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "a"}]}});
        assert_eq!(
            strings(&cells("", "Pod", &bare, now())),
            [
                "p",
                "0/1",
                "Pending",
                "0",
                "<unknown>",
                "<none>",
                "<none>",
                "<none>",
                "<none>"
            ]
        );
    }

    #[test]
    fn deployment_cells_and_selector() {
        let d = json!({
            "metadata": {"name": "web", "creationTimestamp": ago(3 * 86400 + 5 * 3600)},
            "spec": {
                "replicas": 3,
                "selector": {
                    "matchLabels": {"app": "web"},
                    "matchExpressions": [{"key": "tier", "operator": "In", "values": ["b", "a"]}]
                },
                "template": {"spec": {"containers": [
                    {"name": "app", "image": "nginx:1.27"},
                    {"name": "log", "image": "busybox"}
                ]}}
            },
            "status": {"readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2}
        });
        let got = cells("apps", "Deployment", &d, now());
        assert_eq!(
            strings(&got),
            [
                "web",
                "2/3",
                "3",
                "2",
                "3d5h",
                "app,log",
                "nginx:1.27,busybox",
                "app=web,tier in (a,b)"
            ]
        );
        assert!(got[2].is_i64());

        // No status yet, replicas defaulted to 1.
        let fresh = json!({"metadata": {"name": "x"}, "spec": {}});
        assert_eq!(
            strings(&cells("apps", "Deployment", &fresh, now()))[1],
            "0/1"
        );
    }

    #[test]
    fn label_selector_formatting() {
        let fmt = |v: Value| format_label_selector(Some(&v));
        assert_eq!(format_label_selector(None), "<none>");
        assert_eq!(fmt(json!({})), "<none>");
        assert_eq!(fmt(json!({"matchLabels": {"b": "2", "a": "1"}})), "a=1,b=2");
        assert_eq!(
            fmt(json!({"matchExpressions": [
                {"key": "z", "operator": "Exists"},
                {"key": "env", "operator": "NotIn", "values": ["prod"]},
                {"key": "gone", "operator": "DoesNotExist"}
            ]})),
            "env notin (prod),!gone,z"
        );
        assert_eq!(
            fmt(json!({"matchExpressions": [{"key": "a", "operator": "In", "values": []}]})),
            "<error>"
        );
        assert_eq!(fmt(json!({"matchLabels": {"bad key": "x"}})), "<error>");
    }

    #[test]
    fn job_cells_complete_and_running() {
        let complete = json!({
            "metadata": {"name": "pi", "creationTimestamp": ago(600)},
            "spec": {"completions": 1, "parallelism": 1,
                     "selector": {"matchLabels": {"batch.kubernetes.io/controller-uid": "abc"}},
                     "template": {"spec": {"containers": [{"name": "pi", "image": "perl"}]}}},
            "status": {
                "succeeded": 1,
                "startTime": ago(600),
                "completionTime": ago(600 - 45),
                "conditions": [
                    {"type": "SuccessCriteriaMet", "status": "True"},
                    {"type": "Complete", "status": "True"}
                ]
            }
        });
        assert_eq!(
            strings(&cells("batch", "Job", &complete, now())),
            [
                "pi",
                "Complete",
                "1/1",
                "45s",
                "10m",
                "pi",
                "perl",
                "batch.kubernetes.io/controller-uid=abc"
            ]
        );

        let running = json!({
            "metadata": {"name": "work", "creationTimestamp": ago(200)},
            "spec": {"parallelism": 3, "template": {"spec": {"containers": []}}},
            "status": {"active": 3, "startTime": ago(200)}
        });
        let got = strings(&cells("batch", "Job", &running, now()));
        assert_eq!(&got[1..5], ["Running", "0/1 of 3", "3m20s", "3m20s"]);

        let mut suspended = running.clone();
        suspended["status"]["conditions"] = json!([{"type": "Suspended", "status": "True"}]);
        assert_eq!(
            strings(&cells("batch", "Job", &suspended, now()))[1],
            "Suspended"
        );

        let mut failed = running.clone();
        failed["status"]["conditions"] = json!([{"type": "Failed", "status": "True"}]);
        failed["metadata"]["deletionTimestamp"] = json!(ago(1));
        assert_eq!(strings(&cells("batch", "Job", &failed, now()))[1], "Failed");

        let mut deleting = running.clone();
        deleting["metadata"]["deletionTimestamp"] = json!(ago(1));
        assert_eq!(
            strings(&cells("batch", "Job", &deleting, now()))[1],
            "Terminating"
        );

        let not_started = json!({"metadata": {"name": "n"}, "spec": {"completions": 5}});
        let got = strings(&cells("batch", "Job", &not_started, now()));
        assert_eq!(&got[1..4], ["Running", "0/5", ""]);
    }

    #[test]
    fn cronjob_cells() {
        let cj = json!({
            "metadata": {"name": "hello", "creationTimestamp": ago(7200)},
            "spec": {
                "schedule": "*/5 * * * *",
                "jobTemplate": {"spec": {"template": {"spec": {"containers": [
                    {"name": "hello", "image": "busybox"}
                ]}}}}
            },
            "status": {}
        });
        let got = cells("batch", "CronJob", &cj, now());
        assert_eq!(
            strings(&got),
            [
                "hello",
                "*/5 * * * *",
                "<none>",
                "False",
                "0",
                "<none>",
                "120m",
                "hello",
                "busybox",
                "<none>"
            ]
        );
        assert!(got[4].is_i64());

        let mut ran = cj.clone();
        ran["spec"]["suspend"] = json!(true);
        ran["spec"]["timeZone"] = json!("Etc/UTC");
        ran["status"] = json!({"active": [{"name": "hello-1"}], "lastScheduleTime": ago(65)});
        let got = strings(&cells("batch", "CronJob", &ran, now()));
        assert_eq!(&got[2..6], ["Etc/UTC", "True", "1", "65s"]);
    }

    #[test]
    fn service_ports_and_ips() {
        let svc = json!({
            "metadata": {"name": "web", "creationTimestamp": ago(30)},
            "spec": {
                "clusterIP": "10.96.0.10",
                "clusterIPs": ["10.96.0.10"],
                "selector": {"app": "web"},
                "ports": [{"port": 80}, {"port": 53, "protocol": "UDP"}]
            }
        });
        assert_eq!(
            strings(&cells("", "Service", &svc, now())),
            [
                "web",
                "ClusterIP",
                "10.96.0.10",
                "<none>",
                "80/TCP,53/UDP",
                "30s",
                "app=web"
            ]
        );

        let node_port = json!({
            "metadata": {"name": "np"},
            "spec": {"type": "NodePort", "clusterIP": "10.96.1.1",
                     "ports": [{"port": 80, "nodePort": 30080, "protocol": "TCP"}]}
        });
        let got = strings(&cells("", "Service", &node_port, now()));
        assert_eq!(
            &got[1..5],
            ["NodePort", "10.96.1.1", "<none>", "80:30080/TCP"]
        );
        assert_eq!(got[6], "<none>");

        let lb = json!({
            "metadata": {"name": "lb"},
            "spec": {"type": "LoadBalancer", "clusterIPs": ["10.96.2.2"]},
            "status": {"loadBalancer": {}}
        });
        let got = strings(&cells("", "Service", &lb, now()));
        assert_eq!(&got[3..5], ["<pending>", "<none>"]);

        let mut lb_ready = lb.clone();
        lb_ready["status"]["loadBalancer"]["ingress"] =
            json!([{"ip": "203.0.113.9"}, {"hostname": "a.example.com"}]);
        lb_ready["spec"]["externalIPs"] = json!(["198.51.100.1"]);
        assert_eq!(
            strings(&cells("", "Service", &lb_ready, now()))[3],
            "203.0.113.9,a.example.com,198.51.100.1"
        );

        let ext = json!({"metadata": {"name": "e"},
                         "spec": {"type": "ExternalName", "externalName": "db.example.com"}});
        let got = strings(&cells("", "Service", &ext, now()));
        assert_eq!(&got[2..4], ["<none>", "db.example.com"]);
    }

    #[test]
    fn endpoints_and_slices() {
        let ep = json!({
            "metadata": {"name": "web"},
            "subsets": [{
                "addresses": [{"ip": "10.0.0.1"}, {"ip": "10.0.0.2"}, {"ip": "fd00::3"}, {"ip": "10.0.0.4"}],
                "ports": [{"port": 80}, {"port": 443}]
            }]
        });
        assert_eq!(
            strings(&cells("", "Endpoints", &ep, now()))[1],
            "10.0.0.1:80,10.0.0.2:80,[fd00::3]:80 + 5 more..."
        );
        let none = json!({"metadata": {"name": "x"}});
        assert_eq!(strings(&cells("", "Endpoints", &none, now()))[1], "<none>");

        let slice = json!({
            "metadata": {"name": "web-abc"},
            "addressType": "IPv4",
            "ports": [{"port": 80, "name": "http"}, {"name": "metrics"}],
            "endpoints": [{"addresses": ["10.0.0.1"]}, {"addresses": ["10.0.0.2"]}]
        });
        let got = strings(&cells("discovery.k8s.io", "EndpointSlice", &slice, now()));
        assert_eq!(&got[1..4], ["IPv4", "80,metrics", "10.0.0.1,10.0.0.2"]);
        let empty = json!({"metadata": {"name": "e"}, "addressType": "IPv4"});
        let got = strings(&cells("discovery.k8s.io", "EndpointSlice", &empty, now()));
        assert_eq!(&got[2..4], ["<unset>", "<unset>"]);
    }

    #[test]
    fn node_status_and_roles() {
        let n = json!({
            "metadata": {"name": "n1", "labels": {
                "node-role.kubernetes.io/control-plane": "",
                "node-role.kubernetes.io/worker": "",
                "kubernetes.io/hostname": "n1"
            }},
            "spec": {"unschedulable": true},
            "status": {
                "conditions": [{"type": "Ready", "status": "False"}],
                "addresses": [{"type": "InternalIP", "address": "192.168.1.5"}],
                "nodeInfo": {"kubeletVersion": "v1.32.0", "osImage": "Debian"}
            }
        });
        assert_eq!(
            strings(&cells("", "Node", &n, now())),
            [
                "n1",
                "NotReady,SchedulingDisabled",
                "control-plane,worker",
                "<unknown>",
                "v1.32.0",
                "192.168.1.5",
                "<none>",
                "Debian",
                "<unknown>",
                "<unknown>"
            ]
        );
        let bare = json!({"metadata": {"name": "n2"}});
        let got = strings(&cells("", "Node", &bare, now()));
        assert_eq!(&got[1..3], ["Unknown", "<none>"]);
    }

    #[test]
    fn events_core_and_series() {
        let e = json!({
            "metadata": {"name": "web-0.17f"},
            "involvedObject": {"kind": "Pod", "name": "web-0", "fieldPath": "spec.containers{app}"},
            "reason": "Pulled",
            "message": "Container image pulled\n",
            "type": "Normal",
            "source": {"component": "kubelet", "host": "n1"},
            "firstTimestamp": ago(600),
            "lastTimestamp": ago(60),
            "count": 4
        });
        assert_eq!(
            strings(&cells("", "Event", &e, now())),
            [
                "60s",
                "Normal",
                "Pulled",
                "pod/web-0",
                "spec.containers{app}",
                "kubelet, n1",
                "Container image pulled",
                "10m",
                "4",
                "web-0.17f"
            ]
        );

        let new_style = json!({
            "metadata": {"name": "ev"},
            "regarding": {"kind": "Deployment", "name": "web"},
            "note": "Scaled up",
            "type": "Normal",
            "reason": "ScalingReplicaSet",
            "reportingController": "deployment-controller",
            "eventTime": "2025-06-01T11:58:00.000000Z",
            "series": {"count": 7, "lastObservedTime": "2025-06-01T11:59:30.000000Z"}
        });
        let got = strings(&cells("events.k8s.io", "Event", &new_style, now()));
        assert_eq!(got[0], "30s");
        assert_eq!(got[3], "deployment/web");
        assert_eq!(got[5], "deployment-controller");
        assert_eq!(&got[7..9], ["2m", "7"]);
    }

    #[test]
    fn small_kinds() {
        let cm = json!({"metadata": {"name": "c", "creationTimestamp": ago(5)},
                        "data": {"a": "1", "b": "2"}, "binaryData": {"c": ""}});
        assert_eq!(
            strings(&cells("", "ConfigMap", &cm, now())),
            ["c", "3", "5s"]
        );

        let secret = json!({"metadata": {"name": "s"}, "data": {"k": "dg=="}});
        assert_eq!(
            strings(&cells("", "Secret", &secret, now())),
            ["s", "Opaque", "1", "<unknown>"]
        );

        let ns = json!({"metadata": {"name": "default"}});
        assert_eq!(strings(&cells("", "Namespace", &ns, now()))[1], "Active");

        let sa = json!({"metadata": {"name": "default"}});
        assert_eq!(strings(&cells("", "ServiceAccount", &sa, now()))[1], "0");

        let lease = json!({"metadata": {"name": "l"}, "spec": {"holderIdentity": "node-1"}});
        assert_eq!(
            strings(&cells("coordination.k8s.io", "Lease", &lease, now()))[1],
            "node-1"
        );

        let ing = json!({
            "metadata": {"name": "i"},
            "spec": {"rules": [{"host": "a.com"}, {"host": "b.com"}, {}, {"host": "c.com"}, {"host": "d.com"}],
                     "tls": [{"hosts": ["a.com"]}]},
            "status": {"loadBalancer": {"ingress": [{"ip": "10.1.1.1"}]}}
        });
        assert_eq!(
            strings(&cells("networking.k8s.io", "Ingress", &ing, now())),
            [
                "i",
                "<none>",
                "a.com,b.com,c.com + 2 more...",
                "10.1.1.1",
                "80, 443",
                "<unknown>"
            ]
        );
        let catch_all = json!({"metadata": {"name": "all"},
                               "spec": {"ingressClassName": "nginx", "defaultBackend": {}}});
        let got = strings(&cells("networking.k8s.io", "Ingress", &catch_all, now()));
        assert_eq!(&got[1..5], ["nginx", "*", "", "80"]);

        let rev = json!({
            "metadata": {"name": "web-5d4f", "ownerReferences": [
                {"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "web", "controller": true}
            ]},
            "revision": 2
        });
        let got = cells("apps", "ControllerRevision", &rev, now());
        assert_eq!(strings(&got)[1..3], ["statefulset.apps/web", "2"]);
        assert!(got[2].is_i64());

        let ds = json!({
            "metadata": {"name": "agent"},
            "spec": {"selector": {"matchLabels": {"app": "agent"}},
                     "template": {"spec": {"nodeSelector": {"kubernetes.io/os": "linux"}, "containers": []}}},
            "status": {"desiredNumberScheduled": 2, "currentNumberScheduled": 2, "numberReady": 1,
                       "updatedNumberScheduled": 2, "numberAvailable": 1}
        });
        assert_eq!(
            strings(&cells("apps", "DaemonSet", &ds, now())),
            [
                "agent",
                "2",
                "2",
                "1",
                "2",
                "1",
                "kubernetes.io/os=linux",
                "<unknown>",
                "",
                "",
                "app=agent"
            ]
        );

        let sts = json!({"metadata": {"name": "db"}, "spec": {"replicas": 3}, "status": {"readyReplicas": 3}});
        assert_eq!(
            strings(&cells("apps", "StatefulSet", &sts, now()))[1],
            "3/3"
        );

        let rs = json!({"metadata": {"name": "web-abc"}, "spec": {"replicas": 2},
                        "status": {"replicas": 2, "readyReplicas": 1}});
        let got = strings(&cells("apps", "ReplicaSet", &rs, now()));
        assert_eq!(&got[1..4], ["2", "2", "1"]);
    }

    #[test]
    fn pvc_and_quantities() {
        let pvc = json!({
            "metadata": {"name": "data"},
            "spec": {"storageClassName": "standard", "volumeName": "pv-1",
                     "resources": {"requests": {"storage": "1Gi"}}},
            "status": {"phase": "Bound", "capacity": {"storage": "1024Mi"},
                       "accessModes": ["ReadWriteMany", "ReadWriteOnce"]}
        });
        assert_eq!(
            strings(&cells("", "PersistentVolumeClaim", &pvc, now())),
            [
                "data",
                "Bound",
                "pv-1",
                "1Gi",
                "RWO,RWX",
                "standard",
                "<unset>",
                "<unknown>",
                "Filesystem"
            ]
        );
        let pending = json!({"metadata": {"name": "p"}, "spec": {}});
        let got = strings(&cells("", "PersistentVolumeClaim", &pending, now()));
        assert_eq!(&got[1..6], ["Pending", "", "", "", ""]);

        for (raw, want) in [
            ("1Gi", "1Gi"),
            ("1024Mi", "1Gi"),
            ("1.5Gi", "1536Mi"),
            ("0.5Gi", "512Mi"),
            ("100Mi", "100Mi"),
            ("1000m", "1"),
            ("1500m", "1500m"),
            ("0.5", "500m"),
            ("2000", "2k"),
            ("1200000", "1200k"),
            ("500M", "500M"),
            ("1e3", "1e3"),
            ("12e2", "1200"),
            ("512", "512"),
            ("0", "0"),
            ("0Gi", "0"),
            ("weird", "weird"),
        ] {
            assert_eq!(quantity(Some(&json!(raw))), want, "{raw}");
        }
        assert_eq!(quantity(None), "0");
    }

    #[test]
    fn default_kind_and_table_body() {
        let role = json!({
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": {"name": "reader", "namespace": "default",
                         "creationTimestamp": "2025-01-02T03:04:05Z", "uid": "u1"},
            "rules": []
        });
        assert_eq!(
            strings(&cells("rbac.authorization.k8s.io", "Role", &role, now())),
            ["reader", "2025-01-02T03:04:05Z"]
        );

        let t = table(
            "rbac.authorization.k8s.io",
            "Role",
            std::slice::from_ref(&role),
            "42",
            Some("tok"),
            "Metadata",
            now(),
        );
        assert_eq!(t["kind"], "Table");
        assert_eq!(t["apiVersion"], "meta.k8s.io/v1");
        assert_eq!(
            t["metadata"],
            json!({"resourceVersion": "42", "continue": "tok"})
        );
        assert_eq!(
            t["columnDefinitions"][0],
            json!({"name": "Name", "type": "string", "format": "name",
                   "description": D_NAME, "priority": 0})
        );
        assert_eq!(
            t["rows"][0]["object"],
            json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                   "metadata": role["metadata"].clone()})
        );
        assert!(t["rows"][0].get("conditions").is_none());

        let full = table(
            "rbac.authorization.k8s.io",
            "Role",
            std::slice::from_ref(&role),
            "42",
            None,
            "Object",
            now(),
        );
        assert_eq!(full["rows"][0]["object"], role);
        assert_eq!(full["metadata"], json!({"resourceVersion": "42"}));
        let keys: Vec<&String> = full.as_object().unwrap().keys().collect();
        assert_eq!(
            keys,
            [
                "kind",
                "apiVersion",
                "metadata",
                "columnDefinitions",
                "rows"
            ]
        );
    }
}
