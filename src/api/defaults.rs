//! Kubernetes-compatible defaulting of API objects.
//!
//! Mirrors the upstream defaulters (`pkg/apis/*/v1/defaults.go` and the generated
//! `zz_generated.defaults.go`), plus the few create-time mutations of the registry and the
//! default admission plugins that every object read back from a real API server shows
//! (Job selector generation, Namespace finalizer, Service IP families, Pod priority and
//! default tolerations). Objects are handled as JSON; fields the user set are never changed
//! except where Kubernetes normalizes them too (resource quantities, Secret `stringData`).

use serde_json::{Map, Value, json};

use crate::api::validation::default_resource_quantity;

/// Applies Kubernetes' defaulting to an object of the given kind (group `""` for core), in
/// place, on create and on update. The object is the full JSON (apiVersion, kind, metadata,
/// spec, ...). For Jobs the caller sets `metadata.uid` before calling this on create.
pub fn apply_defaults(group: &str, kind: &str, obj: &mut Value) {
    if !obj.is_object() {
        return;
    }
    match (group, kind) {
        ("", "Pod") => default_pod(obj),
        ("", "PodTemplate") => {
            if let Some(t) = ensure_obj(obj, "template") {
                default_pod_template(t);
            }
        }
        ("", "ReplicationController") => default_replication_controller(obj),
        ("", "Service") => default_service(obj),
        ("", "Namespace") => default_namespace(obj),
        ("", "Secret") => default_secret(obj),
        ("", "Node") => default_node(obj),
        ("", "PersistentVolumeClaim") => default_pvc(obj),
        ("", "PersistentVolume") => default_pv(obj),
        ("", "Endpoints") => default_endpoints(obj),
        ("", "LimitRange") => default_limit_range(obj),
        ("", "ResourceQuota") => {
            default_resource_list(obj.pointer_mut("/spec/hard"));
            default_resource_list(obj.pointer_mut("/status/hard"));
            default_resource_list(obj.pointer_mut("/status/used"));
        }
        ("apps", "Deployment") => default_deployment(obj),
        ("apps", "ReplicaSet") => default_replica_set(obj),
        ("apps", "StatefulSet") => default_stateful_set(obj),
        ("apps", "DaemonSet") => default_daemon_set(obj),
        ("batch", "Job") => default_job(obj),
        ("batch", "CronJob") => default_cron_job(obj),
        ("discovery.k8s.io", "EndpointSlice") => default_endpoint_slice(obj),
        _ => {}
    }
}

// ---------------------------------------------------------------------------
// JSON helpers
// ---------------------------------------------------------------------------

/// `v[key]` as an object, created when missing or null. `None` if it holds something else.
fn ensure_obj<'a>(v: &'a mut Value, key: &str) -> Option<&'a mut Value> {
    let m = v.as_object_mut()?;
    let slot = m.entry(key).or_insert(Value::Null);
    if slot.is_null() {
        *slot = Value::Object(Map::new());
    }
    if slot.is_object() { Some(slot) } else { None }
}

fn unset(v: &Value, key: &str) -> bool {
    v.get(key).is_none_or(Value::is_null)
}

fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

fn set(v: &mut Value, key: &str, val: Value) {
    if let Some(m) = v.as_object_mut() {
        m.insert(key.to_string(), val);
    }
}

/// Defaults a pointer field: set when missing or null.
fn default_ptr(v: &mut Value, key: &str, val: Value) {
    if unset(v, key) {
        set(v, key, val);
    }
}

/// Defaults a string field: set when missing, null or empty.
fn default_str(v: &mut Value, key: &str, val: &str) {
    if str_of(v, key).is_empty() && v.get(key).is_none_or(|x| x.is_null() || x.is_string()) {
        set(v, key, Value::String(val.to_string()));
    }
}

/// Defaults a non-pointer integer field: set when missing, null or zero.
fn default_int(v: &mut Value, key: &str, val: i64) {
    let zero = match v.get(key) {
        None | Some(Value::Null) => true,
        Some(Value::Number(n)) => n.as_f64() == Some(0.0),
        _ => false,
    };
    if zero {
        set(v, key, json!(val));
    }
}

fn for_each_in(v: &mut Value, key: &str, mut f: impl FnMut(&mut Value)) {
    if let Some(items) = v.get_mut(key).and_then(Value::as_array_mut) {
        for item in items.iter_mut().filter(|i| i.is_object()) {
            f(item);
        }
    }
}

fn child<'a>(v: &'a mut Value, key: &str) -> Option<&'a mut Value> {
    v.get_mut(key).filter(|x| x.is_object())
}

/// `SetDefaults_ResourceList`: quantities rounded up to milli precision, in canonical form.
fn default_resource_list(list: Option<&mut Value>) {
    let Some(Value::Object(m)) = list else { return };
    for q in m.values_mut() {
        let text = match q {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            _ => continue,
        };
        if let Some(c) = default_resource_quantity(&text) {
            *q = Value::String(c);
        }
    }
}

fn default_resources(res: &mut Value) {
    default_resource_list(res.get_mut("limits"));
    default_resource_list(res.get_mut("requests"));
}

fn base64_encode(data: &[u8]) -> String {
    const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        out.push(TABLE[(n >> 18) as usize & 63] as char);
        out.push(TABLE[(n >> 12) as usize & 63] as char);
        out.push(if chunk.len() > 1 {
            TABLE[(n >> 6) as usize & 63] as char
        } else {
            '='
        });
        out.push(if chunk.len() > 2 {
            TABLE[n as usize & 63] as char
        } else {
            '='
        });
    }
    out
}

// ---------------------------------------------------------------------------
// Images
// ---------------------------------------------------------------------------

fn is_lower_alnum(c: u8) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit()
}

/// A repository path component: `[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*`.
fn valid_path_component(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    loop {
        let start = i;
        while i < b.len() && is_lower_alnum(b[i]) {
            i += 1;
        }
        if i == start {
            return false;
        }
        if i == b.len() {
            return true;
        }
        match b[i] {
            b'.' => i += 1,
            b'_' => {
                i += 1;
                if i < b.len() && b[i] == b'_' {
                    i += 1;
                }
            }
            b'-' => {
                while i < b.len() && b[i] == b'-' {
                    i += 1;
                }
            }
            _ => return false,
        }
    }
}

/// A registry host with an optional port.
fn valid_domain(d: &str) -> bool {
    let (host, port) = if let Some(rest) = d.strip_prefix('[') {
        match rest.split_once(']') {
            Some((ip, after)) => {
                if ip.parse::<std::net::Ipv6Addr>().is_err() {
                    return false;
                }
                ("", after.strip_prefix(':'))
            }
            None => return false,
        }
    } else {
        match d.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (d, None),
        }
    };
    if let Some(p) = port
        && (p.is_empty() || !p.bytes().all(|c| c.is_ascii_digit()))
    {
        return false;
    }
    if d.starts_with('[') {
        return true;
    }
    !host.is_empty()
        && host.split('.').all(|c| {
            let b = c.as_bytes();
            !b.is_empty()
                && b[0].is_ascii_alphanumeric()
                && b[b.len() - 1].is_ascii_alphanumeric()
                && b.iter().all(|&x| x.is_ascii_alphanumeric() || x == b'-')
        })
}

/// The tag `parsers.ParseImageName` reports for an image reference: the explicit tag,
/// `latest` without tag and digest, empty with only a digest; `None` if it does not parse.
fn image_tag(image: &str) -> Option<String> {
    if image.is_empty() || (image.len() == 64 && image.bytes().all(|c| c.is_ascii_hexdigit())) {
        return None;
    }
    let (name_tag, digest) = match image.split_once('@') {
        Some((n, d)) => (n, Some(d)),
        None => (image, None),
    };
    if let Some(d) = digest {
        let (algo, hex) = d.split_once(':')?;
        let algo_ok = !algo.is_empty()
            && algo.as_bytes()[0].is_ascii_alphabetic()
            && algo
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || b"-_+.".contains(&c));
        if !algo_ok || hex.len() < 32 || !hex.bytes().all(|c| c.is_ascii_hexdigit()) {
            return None;
        }
    }
    let last_slash = name_tag.rfind('/');
    let (name, tag) = match name_tag.rfind(':') {
        Some(i) if last_slash.is_none_or(|s| i > s) => (&name_tag[..i], Some(&name_tag[i + 1..])),
        _ => (name_tag, None),
    };
    if let Some(t) = tag {
        let b = t.as_bytes();
        let word = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
        if b.is_empty()
            || b.len() > 128
            || !word(b[0])
            || !b.iter().all(|&c| word(c) || c == b'.' || c == b'-')
        {
            return None;
        }
    }
    let (domain, path) = match name.split_once('/') {
        Some((first, rest))
            if first.contains('.')
                || first.contains(':')
                || first == "localhost"
                || first.to_lowercase() != first =>
        {
            (Some(first), rest)
        }
        _ => (None, name),
    };
    if let Some(d) = domain
        && !valid_domain(d)
    {
        return None;
    }
    if path.is_empty() || !path.split('/').all(valid_path_component) {
        return None;
    }
    let full_len = domain.map_or("docker.io/".len() + path.len(), |d| {
        d.len() + 1 + path.len()
    });
    if full_len > 255 {
        return None;
    }
    Some(match tag {
        Some(t) => t.to_string(),
        None if digest.is_some() => String::new(),
        None => "latest".to_string(),
    })
}

/// `SetDefaults_Container`'s pull policy: `Always` for `:latest` (or no tag), else `IfNotPresent`.
fn default_pull_policy(image: &str) -> &'static str {
    if image_tag(image).as_deref() == Some("latest") {
        "Always"
    } else {
        "IfNotPresent"
    }
}

// ---------------------------------------------------------------------------
// Pods and pod templates
// ---------------------------------------------------------------------------

fn default_http_get(h: &mut Value) {
    default_str(h, "path", "/");
    default_str(h, "scheme", "HTTP");
}

fn default_probe(p: &mut Value) {
    default_int(p, "timeoutSeconds", 1);
    default_int(p, "periodSeconds", 10);
    default_int(p, "successThreshold", 1);
    default_int(p, "failureThreshold", 3);
    if let Some(h) = child(p, "httpGet") {
        default_http_get(h);
    }
    if let Some(g) = child(p, "grpc") {
        default_ptr(g, "service", json!(""));
    }
}

fn default_field_ref(v: &mut Value) {
    if let Some(f) = child(v, "fieldRef") {
        default_str(f, "apiVersion", "v1");
    }
}

fn default_container(c: &mut Value) {
    if str_of(c, "imagePullPolicy").is_empty() {
        let policy = default_pull_policy(str_of(c, "image"));
        set(c, "imagePullPolicy", json!(policy));
    }
    default_str(c, "terminationMessagePath", "/dev/termination-log");
    default_str(c, "terminationMessagePolicy", "File");
    for_each_in(c, "ports", |p| default_str(p, "protocol", "TCP"));
    for_each_in(c, "env", |e| {
        if let Some(vf) = child(e, "valueFrom") {
            default_field_ref(vf);
        }
    });
    if let Some(r) = ensure_obj(c, "resources") {
        default_resources(r);
    }
    for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
        if let Some(p) = child(c, probe) {
            default_probe(p);
        }
    }
    if let Some(lc) = child(c, "lifecycle") {
        for hook in ["postStart", "preStop"] {
            if let Some(h) = child(lc, hook).and_then(|h| child(h, "httpGet")) {
                default_http_get(h);
            }
        }
    }
}

/// The volume source keys of `VolumeSource` (any one of them set means "has a source").
const VOLUME_SOURCES: &[&str] = &[
    "hostPath",
    "emptyDir",
    "gcePersistentDisk",
    "awsElasticBlockStore",
    "gitRepo",
    "secret",
    "nfs",
    "iscsi",
    "glusterfs",
    "persistentVolumeClaim",
    "rbd",
    "flexVolume",
    "cinder",
    "cephfs",
    "flocker",
    "downwardAPI",
    "fc",
    "azureFile",
    "configMap",
    "vsphereVolume",
    "quobyte",
    "azureDisk",
    "photonPersistentDisk",
    "projected",
    "portworxVolume",
    "scaleIO",
    "storageos",
    "csi",
    "ephemeral",
    "image",
];

fn default_volume(v: &mut Value) {
    if VOLUME_SOURCES.iter().all(|k| unset(v, k)) {
        set(v, "emptyDir", json!({}));
    }
    if let Some(h) = child(v, "hostPath") {
        default_ptr(h, "type", json!(""));
    }
    for kind in ["secret", "configMap", "downwardAPI", "projected"] {
        if let Some(s) = child(v, kind) {
            default_ptr(s, "defaultMode", json!(420));
        }
    }
    if let Some(d) = child(v, "downwardAPI") {
        for_each_in(d, "items", default_field_ref);
    }
    if let Some(p) = child(v, "projected") {
        for_each_in(p, "sources", |s| {
            if let Some(d) = child(s, "downwardAPI") {
                for_each_in(d, "items", default_field_ref);
            }
            if let Some(t) = child(s, "serviceAccountToken") {
                default_ptr(t, "expirationSeconds", json!(3600));
            }
        });
    }
    if let Some(e) = child(v, "ephemeral").and_then(|e| child(e, "volumeClaimTemplate"))
        && let Some(spec) = child(e, "spec")
    {
        default_pvc_spec(spec);
    }
    if let Some(img) = child(v, "image")
        && str_of(img, "pullPolicy").is_empty()
    {
        let policy = if image_tag(str_of(img, "reference")).as_deref() == Some("latest") {
            "Always"
        } else {
            "IfNotPresent"
        };
        set(img, "pullPolicy", json!(policy));
    }
    if let Some(i) = child(v, "iscsi") {
        default_str(i, "iscsiInterface", "default");
    }
    if let Some(r) = child(v, "rbd") {
        default_str(r, "pool", "rbd");
        default_str(r, "user", "admin");
        default_str(r, "keyring", "/etc/ceph/keyring");
    }
    if let Some(a) = child(v, "azureDisk") {
        default_ptr(a, "cachingMode", json!("ReadWrite"));
        default_ptr(a, "fsType", json!("ext4"));
        default_ptr(a, "readOnly", json!(false));
        default_ptr(a, "kind", json!("Shared"));
    }
    if let Some(s) = child(v, "scaleIO") {
        default_str(s, "storageMode", "ThinProvisioned");
        default_str(s, "fsType", "xfs");
    }
}

/// `SetDefaults_PodSpec` and the nested defaulters; `is_pod` adds `SetDefaults_Pod`.
fn default_pod_spec(spec: &mut Value, is_pod: bool) {
    if is_pod {
        // Requests default to limits (Pods only, not templates).
        for kind in ["containers", "initContainers"] {
            for_each_in(spec, kind, |c| {
                let Some(limits) = c
                    .pointer("/resources/limits")
                    .and_then(Value::as_object)
                    .cloned()
                else {
                    return;
                };
                if let Some(res) = ensure_obj(c, "resources")
                    && let Some(Value::Object(req)) = ensure_obj(res, "requests")
                {
                    for (k, v) in limits {
                        req.entry(k).or_insert(v);
                    }
                }
            });
        }
        default_ptr(spec, "enableServiceLinks", json!(true));
        if spec.get("hostNetwork").and_then(Value::as_bool) == Some(true) {
            for kind in ["containers", "initContainers"] {
                for_each_in(spec, kind, |c| {
                    for_each_in(c, "ports", |p| {
                        let cp = p.get("containerPort").cloned().unwrap_or(Value::Null);
                        default_int(p, "hostPort", cp.as_i64().unwrap_or(0));
                    });
                });
            }
        }
    }
    default_str(spec, "dnsPolicy", "ClusterFirst");
    default_str(spec, "restartPolicy", "Always");
    default_ptr(spec, "securityContext", json!({}));
    default_ptr(spec, "terminationGracePeriodSeconds", json!(30));
    default_str(spec, "schedulerName", "default-scheduler");
    // v1 conversion keeps the deprecated `serviceAccount` in step with `serviceAccountName`.
    if str_of(spec, "serviceAccountName").is_empty() && !str_of(spec, "serviceAccount").is_empty() {
        let sa = str_of(spec, "serviceAccount").to_string();
        set(spec, "serviceAccountName", json!(sa));
    }
    if !str_of(spec, "serviceAccountName").is_empty() {
        let sa = str_of(spec, "serviceAccountName").to_string();
        set(spec, "serviceAccount", json!(sa));
    }
    for_each_in(spec, "volumes", default_volume);
    for kind in ["initContainers", "containers", "ephemeralContainers"] {
        for_each_in(spec, kind, default_container);
    }
    default_resource_list(spec.get_mut("overhead"));
}

fn default_pod_template(tmpl: &mut Value) {
    if let Some(spec) = ensure_obj(tmpl, "spec") {
        default_pod_spec(spec, false);
    }
}

/// The priority the Priority admission plugin assigns without a custom PriorityClass.
fn builtin_priority(class: &str) -> Option<i64> {
    match class {
        "" => Some(0),
        "system-node-critical" => Some(2_000_001_000),
        "system-cluster-critical" => Some(2_000_000_000),
        _ => None,
    }
}

fn default_pod(pod: &mut Value) {
    let Some(spec) = ensure_obj(pod, "spec") else {
        return;
    };
    default_pod_spec(spec, true);
    // Admission: ServiceAccount, Priority and DefaultTolerationSeconds.
    if str_of(spec, "serviceAccountName").is_empty() {
        set(spec, "serviceAccountName", json!("default"));
        set(spec, "serviceAccount", json!("default"));
    }
    if let Some(priority) = builtin_priority(str_of(spec, "priorityClassName")) {
        default_ptr(spec, "priority", json!(priority));
        default_ptr(spec, "preemptionPolicy", json!("PreemptLowerPriority"));
    }
    let tolerations: Vec<Value> = spec
        .get("tolerations")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let tolerates = |key: &str| {
        tolerations.iter().any(|t| {
            let k = str_of(t, "key");
            let e = str_of(t, "effect");
            (k == key || k.is_empty()) && (e == "NoExecute" || e.is_empty())
        })
    };
    let mut added = Vec::new();
    for key in [
        "node.kubernetes.io/not-ready",
        "node.kubernetes.io/unreachable",
    ] {
        if !tolerates(key) {
            added.push(json!({"key": key, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}));
        }
    }
    if !added.is_empty() {
        let mut all = tolerations;
        all.extend(added);
        set(spec, "tolerations", Value::Array(all));
    }
}

// ---------------------------------------------------------------------------
// Workloads
// ---------------------------------------------------------------------------

fn default_template_of(spec: &mut Value) {
    if let Some(t) = ensure_obj(spec, "template") {
        default_pod_template(t);
    }
}

fn default_status(obj: &mut Value) {
    default_ptr(obj, "status", json!({}));
}

fn default_deployment(obj: &mut Value) {
    if let Some(spec) = ensure_obj(obj, "spec") {
        default_ptr(spec, "replicas", json!(1));
        if let Some(strategy) = ensure_obj(spec, "strategy") {
            default_str(strategy, "type", "RollingUpdate");
            if str_of(strategy, "type") == "RollingUpdate"
                && let Some(ru) = ensure_obj(strategy, "rollingUpdate")
            {
                default_ptr(ru, "maxUnavailable", json!("25%"));
                default_ptr(ru, "maxSurge", json!("25%"));
            }
        }
        default_ptr(spec, "revisionHistoryLimit", json!(10));
        default_ptr(spec, "progressDeadlineSeconds", json!(600));
        default_template_of(spec);
    }
    default_status(obj);
}

fn default_replica_set(obj: &mut Value) {
    if let Some(spec) = ensure_obj(obj, "spec") {
        default_ptr(spec, "replicas", json!(1));
        default_template_of(spec);
    }
    default_status(obj);
}

fn default_replication_controller(obj: &mut Value) {
    let labels = obj
        .pointer("/spec/template/metadata/labels")
        .filter(|l| l.is_object())
        .cloned();
    if let Some(spec) = ensure_obj(obj, "spec") {
        if let Some(l) = &labels
            && spec
                .get("selector")
                .and_then(Value::as_object)
                .is_none_or(Map::is_empty)
        {
            set(spec, "selector", l.clone());
        }
        default_ptr(spec, "replicas", json!(1));
        if let Some(t) = child(spec, "template") {
            default_pod_template(t);
        }
    }
    if let Some(l) = labels
        && let Some(meta) = ensure_obj(obj, "metadata")
        && meta
            .get("labels")
            .and_then(Value::as_object)
            .is_none_or(Map::is_empty)
    {
        set(meta, "labels", l);
    }
    default_status(obj);
}

fn default_stateful_set(obj: &mut Value) {
    if let Some(spec) = ensure_obj(obj, "spec") {
        default_str(spec, "podManagementPolicy", "OrderedReady");
        if let Some(us) = ensure_obj(spec, "updateStrategy") {
            if str_of(us, "type").is_empty() {
                set(us, "type", json!("RollingUpdate"));
                default_ptr(us, "rollingUpdate", json!({}));
            }
            if str_of(us, "type") == "RollingUpdate"
                && let Some(ru) = child(us, "rollingUpdate")
            {
                default_ptr(ru, "partition", json!(0));
            }
        }
        if let Some(policy) = ensure_obj(spec, "persistentVolumeClaimRetentionPolicy") {
            default_str(policy, "whenDeleted", "Retain");
            default_str(policy, "whenScaled", "Retain");
        }
        default_ptr(spec, "replicas", json!(1));
        default_ptr(spec, "revisionHistoryLimit", json!(10));
        default_template_of(spec);
        for_each_in(spec, "volumeClaimTemplates", default_pvc);
    }
    default_status(obj);
}

fn default_daemon_set(obj: &mut Value) {
    if let Some(spec) = ensure_obj(obj, "spec") {
        if let Some(us) = ensure_obj(spec, "updateStrategy") {
            default_str(us, "type", "RollingUpdate");
            if str_of(us, "type") == "RollingUpdate"
                && let Some(ru) = ensure_obj(us, "rollingUpdate")
            {
                default_ptr(ru, "maxUnavailable", json!(1));
                default_ptr(ru, "maxSurge", json!(0));
            }
        }
        default_ptr(spec, "revisionHistoryLimit", json!(10));
        default_template_of(spec);
    }
    default_status(obj);
}

const JOB_NAME_LABEL: &str = "batch.kubernetes.io/job-name";
const CONTROLLER_UID_LABEL: &str = "batch.kubernetes.io/controller-uid";

/// The job strategy's `generateSelector`: selects the job's pods by its uid.
fn generate_job_selector(job: &mut Value) {
    let name = job
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let uid = job
        .pointer("/metadata/uid")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    if uid.is_empty() {
        return;
    }
    let Some(spec) = ensure_obj(job, "spec") else {
        return;
    };
    if spec.get("manualSelector").and_then(Value::as_bool) == Some(true) {
        return;
    }
    let labels = ensure_obj(spec, "template")
        .and_then(|t| ensure_obj(t, "metadata"))
        .and_then(|m| ensure_obj(m, "labels"))
        .and_then(Value::as_object_mut);
    if let Some(labels) = labels {
        for (key, value) in [
            ("job-name", &name),
            (JOB_NAME_LABEL, &name),
            ("controller-uid", &uid),
            (CONTROLLER_UID_LABEL, &uid),
        ] {
            labels.entry(key).or_insert_with(|| json!(value));
        }
    }
    let match_labels = ensure_obj(spec, "selector")
        .and_then(|s| ensure_obj(s, "matchLabels"))
        .and_then(Value::as_object_mut);
    if let Some(m) = match_labels {
        m.entry(CONTROLLER_UID_LABEL).or_insert_with(|| json!(uid));
    }
}

/// Declarative (`+default`) defaults of `JobSpec`, applied wherever a JobSpec is embedded.
fn default_job_spec_declarative(spec: &mut Value) {
    if let Some(pfp) = child(spec, "podFailurePolicy") {
        for_each_in(pfp, "rules", |rule| {
            for_each_in(rule, "onPodConditions", |c| {
                default_str(c, "status", "True")
            });
        });
    }
}

fn default_job(obj: &mut Value) {
    if let Some(spec) = ensure_obj(obj, "spec") {
        if unset(spec, "completions") && unset(spec, "parallelism") {
            set(spec, "completions", json!(1));
            set(spec, "parallelism", json!(1));
        }
        default_ptr(spec, "parallelism", json!(1));
        if unset(spec, "backoffLimit") {
            let limit = if unset(spec, "backoffLimitPerIndex") {
                6
            } else {
                i64::from(i32::MAX)
            };
            set(spec, "backoffLimit", json!(limit));
        }
        default_ptr(spec, "completionMode", json!("NonIndexed"));
        default_ptr(spec, "suspend", json!(false));
        if unset(spec, "podReplacementPolicy") {
            let policy = if unset(spec, "podFailurePolicy") {
                "TerminatingOrFailed"
            } else {
                "Failed"
            };
            set(spec, "podReplacementPolicy", json!(policy));
        }
        default_ptr(spec, "manualSelector", json!(false));
        default_job_spec_declarative(spec);
        default_template_of(spec);
    }
    generate_job_selector(obj);
    // `SetDefaults_Job`: a Job without labels takes its pod template's labels.
    let tmpl_labels = obj
        .pointer("/spec/template/metadata/labels")
        .filter(|l| l.is_object())
        .cloned();
    if let Some(l) = tmpl_labels
        && let Some(meta) = ensure_obj(obj, "metadata")
        && meta
            .get("labels")
            .and_then(Value::as_object)
            .is_none_or(Map::is_empty)
    {
        set(meta, "labels", l);
    }
    default_status(obj);
}

fn default_cron_job(obj: &mut Value) {
    if let Some(spec) = ensure_obj(obj, "spec") {
        default_str(spec, "concurrencyPolicy", "Allow");
        default_ptr(spec, "suspend", json!(false));
        default_ptr(spec, "successfulJobsHistoryLimit", json!(3));
        default_ptr(spec, "failedJobsHistoryLimit", json!(1));
        if let Some(js) = ensure_obj(spec, "jobTemplate").and_then(|jt| ensure_obj(jt, "spec")) {
            default_job_spec_declarative(js);
            default_template_of(js);
        }
    }
    default_status(obj);
}

// ---------------------------------------------------------------------------
// Services and endpoints
// ---------------------------------------------------------------------------

fn ip_family(ip: &str) -> &'static str {
    if ip.contains(':') { "IPv6" } else { "IPv4" }
}

fn default_service(obj: &mut Value) {
    let Some(spec) = ensure_obj(obj, "spec") else {
        return;
    };
    default_str(spec, "sessionAffinity", "None");
    match str_of(spec, "sessionAffinity") {
        "None" => {
            if let Some(m) = spec.as_object_mut() {
                m.remove("sessionAffinityConfig");
            }
        }
        "ClientIP"
            if spec
                .pointer("/sessionAffinityConfig/clientIP/timeoutSeconds")
                .is_none_or(Value::is_null) =>
        {
            set(
                spec,
                "sessionAffinityConfig",
                json!({"clientIP": {"timeoutSeconds": 10800}}),
            );
        }
        _ => {}
    }
    default_str(spec, "type", "ClusterIP");
    for_each_in(spec, "ports", |p| {
        default_str(p, "protocol", "TCP");
        let target_unset = match p.get("targetPort") {
            None | Some(Value::Null) => true,
            Some(Value::Number(n)) => n.as_f64() == Some(0.0),
            Some(Value::String(s)) => s.is_empty(),
            _ => false,
        };
        if target_unset {
            let port = p.get("port").cloned().unwrap_or(json!(0));
            set(p, "targetPort", port);
        }
    });
    let svc_type = str_of(spec, "type").to_string();
    let externally_accessible = svc_type == "LoadBalancer"
        || svc_type == "NodePort"
        || (svc_type == "ClusterIP"
            && spec
                .get("externalIPs")
                .and_then(Value::as_array)
                .is_some_and(|a| !a.is_empty()));
    if externally_accessible {
        default_str(spec, "externalTrafficPolicy", "Cluster");
    }
    if matches!(svc_type.as_str(), "NodePort" | "LoadBalancer" | "ClusterIP") {
        default_ptr(spec, "internalTrafficPolicy", json!("Cluster"));
    }
    if svc_type == "LoadBalancer" {
        default_ptr(spec, "allocateLoadBalancerNodePorts", json!(true));
    }

    // The registry keeps clusterIP and clusterIPs in step and chooses the IP families.
    if svc_type != "ExternalName" {
        let cluster_ip = str_of(spec, "clusterIP").to_string();
        let ips: Vec<String> = spec
            .get("clusterIPs")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        if !cluster_ip.is_empty() && ips.is_empty() {
            set(spec, "clusterIPs", json!([cluster_ip]));
        } else if cluster_ip.is_empty() && !ips.is_empty() {
            set(spec, "clusterIP", json!(ips[0]));
        }
        let ips: Vec<String> = spec
            .get("clusterIPs")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        let mut families: Vec<String> = spec
            .get("ipFamilies")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        let headless = ips.len() == 1 && ips[0] == "None";
        let has_selector = spec
            .get("selector")
            .and_then(Value::as_object)
            .is_some_and(|m| !m.is_empty());
        if headless && !has_selector {
            default_ptr(spec, "ipFamilyPolicy", json!("RequireDualStack"));
            if families.is_empty() {
                families.push("IPv4".to_string());
            }
            if families.len() < 2 && str_of(spec, "ipFamilyPolicy") == "RequireDualStack" {
                let alt = if families[0] == "IPv4" {
                    "IPv6"
                } else {
                    "IPv4"
                };
                families.push(alt.to_string());
            }
        } else {
            for (i, ip) in ips.iter().enumerate() {
                if ip == "None" {
                    break;
                }
                if i >= families.len() {
                    families.push(ip_family(ip).to_string());
                }
            }
            default_ptr(spec, "ipFamilyPolicy", json!("SingleStack"));
            if families.is_empty() {
                families.push("IPv4".to_string());
            }
        }
        set(spec, "ipFamilies", json!(families));
    }

    let is_lb = svc_type == "LoadBalancer";
    if let Some(status) = ensure_obj(obj, "status")
        && let Some(lb) = ensure_obj(status, "loadBalancer")
        && is_lb
    {
        for_each_in(lb, "ingress", |ing| {
            if !str_of(ing, "ip").is_empty() {
                default_ptr(ing, "ipMode", json!("VIP"));
            }
        });
    }
}

fn default_endpoints(obj: &mut Value) {
    for_each_in(obj, "subsets", |ss| {
        for_each_in(ss, "ports", |p| default_str(p, "protocol", "TCP"))
    });
}

fn default_endpoint_slice(obj: &mut Value) {
    for_each_in(obj, "ports", |p| {
        default_ptr(p, "name", json!(""));
        default_ptr(p, "protocol", json!("TCP"));
    });
}

// ---------------------------------------------------------------------------
// Namespaces, secrets, nodes, storage, limits
// ---------------------------------------------------------------------------

fn default_namespace(obj: &mut Value) {
    let name = obj
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    if !name.is_empty()
        && let Some(labels) = ensure_obj(obj, "metadata").and_then(|m| ensure_obj(m, "labels"))
    {
        set(labels, "kubernetes.io/metadata.name", json!(name));
    }
    // The namespace strategy adds the `kubernetes` finalizer on create; an explicit list
    // (as written by the finalize subresource) is left alone.
    if let Some(spec) = ensure_obj(obj, "spec")
        && unset(spec, "finalizers")
    {
        set(spec, "finalizers", json!(["kubernetes"]));
    }
    if let Some(status) = ensure_obj(obj, "status") {
        default_str(status, "phase", "Active");
    }
}

fn default_secret(obj: &mut Value) {
    default_str(obj, "type", "Opaque");
    // v1 conversion merges `stringData` into `data`.
    let string_data = obj.as_object_mut().and_then(|m| m.remove("stringData"));
    if let Some(Value::Object(sd)) = string_data
        && let Some(Value::Object(data)) = ensure_obj(obj, "data")
    {
        for (k, v) in sd {
            let text = match v {
                Value::String(s) => s,
                Value::Null => String::new(),
                other => other.to_string(),
            };
            data.insert(k, json!(base64_encode(text.as_bytes())));
        }
    }
}

fn default_node(obj: &mut Value) {
    if let Some(status) = child(obj, "status") {
        if unset(status, "allocatable")
            && let Some(cap) = status.get("capacity").filter(|c| c.is_object()).cloned()
        {
            set(status, "allocatable", cap);
        }
        default_resource_list(status.get_mut("capacity"));
        default_resource_list(status.get_mut("allocatable"));
    }
}

fn default_pvc_spec(spec: &mut Value) {
    default_ptr(spec, "volumeMode", json!("Filesystem"));
    if let Some(r) = child(spec, "resources") {
        default_resources(r);
    }
}

fn default_pvc(obj: &mut Value) {
    if let Some(spec) = ensure_obj(obj, "spec") {
        default_pvc_spec(spec);
    }
    if let Some(status) = ensure_obj(obj, "status") {
        default_str(status, "phase", "Pending");
        default_resource_list(status.get_mut("capacity"));
        default_resource_list(status.get_mut("allocatedResources"));
    }
}

fn default_pv(obj: &mut Value) {
    if let Some(spec) = ensure_obj(obj, "spec") {
        default_str(spec, "persistentVolumeReclaimPolicy", "Retain");
        default_ptr(spec, "volumeMode", json!("Filesystem"));
        default_resource_list(spec.get_mut("capacity"));
        if let Some(h) = child(spec, "hostPath") {
            default_ptr(h, "type", json!(""));
        }
    }
    if let Some(status) = ensure_obj(obj, "status") {
        default_str(status, "phase", "Pending");
    }
}

fn default_limit_range(obj: &mut Value) {
    let Some(spec) = child(obj, "spec") else {
        return;
    };
    for_each_in(spec, "limits", |item| {
        if str_of(item, "type") == "Container" {
            let max = item
                .get("max")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default();
            let min = item
                .get("min")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default();
            if let Some(Value::Object(d)) = ensure_obj(item, "default") {
                for (k, v) in max {
                    d.entry(k).or_insert(v);
                }
            }
            let defaults = item
                .get("default")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default();
            if let Some(Value::Object(dr)) = ensure_obj(item, "defaultRequest") {
                for (k, v) in defaults {
                    dr.entry(k).or_insert(v);
                }
                for (k, v) in min {
                    dr.entry(k).or_insert(v);
                }
            }
        }
        for list in [
            "max",
            "min",
            "default",
            "defaultRequest",
            "maxLimitRequestRatio",
        ] {
            default_resource_list(item.get_mut(list));
        }
        // Empty maps are omitted when serialized.
        if let Some(m) = item.as_object_mut() {
            for list in ["default", "defaultRequest"] {
                if m.get(list)
                    .and_then(Value::as_object)
                    .is_some_and(Map::is_empty)
                {
                    m.remove(list);
                }
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defaulted(group: &str, kind: &str, mut obj: Value) -> Value {
        apply_defaults(group, kind, &mut obj);
        obj
    }

    #[test]
    fn nginx_deployment() {
        let obj = defaulted(
            "apps",
            "Deployment",
            json!({
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": "web", "namespace": "default"},
                "spec": {
                    "selector": {"matchLabels": {"app": "web"}},
                    "template": {
                        "metadata": {"labels": {"app": "web"}},
                        "spec": {"containers": [{"name": "nginx", "image": "nginx:1.25", "ports": [{"containerPort": 80}]}]}
                    }
                }
            }),
        );
        let expected = json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": {"app": "web"}},
                "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}},
                "revisionHistoryLimit": 10,
                "progressDeadlineSeconds": 600,
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {
                        "containers": [{
                            "name": "nginx",
                            "image": "nginx:1.25",
                            "imagePullPolicy": "IfNotPresent",
                            "ports": [{"containerPort": 80, "protocol": "TCP"}],
                            "resources": {},
                            "terminationMessagePath": "/dev/termination-log",
                            "terminationMessagePolicy": "File"
                        }],
                        "restartPolicy": "Always",
                        "dnsPolicy": "ClusterFirst",
                        "schedulerName": "default-scheduler",
                        "securityContext": {},
                        "terminationGracePeriodSeconds": 30
                    }
                }
            },
            "status": {}
        });
        assert_eq!(obj, expected);
        // Defaulting is idempotent.
        assert_eq!(defaulted("apps", "Deployment", obj.clone()), obj);
    }

    #[test]
    fn image_pull_policy() {
        let cases = [
            ("nginx", "Always"),
            ("nginx:latest", "Always"),
            ("nginx:1.25", "IfNotPresent"),
            ("docker.io/library/nginx", "Always"),
            ("registry.example.com:5000/team/app", "Always"),
            ("registry.example.com:5000/team/app:v2", "IfNotPresent"),
            ("localhost/app:dev", "IfNotPresent"),
            (
                "nginx@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
                "IfNotPresent",
            ),
            (
                "nginx:latest@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
                "Always",
            ),
            ("Nginx", "IfNotPresent"),
            ("", "IfNotPresent"),
            ("bad image", "IfNotPresent"),
        ];
        for (image, want) in cases {
            assert_eq!(default_pull_policy(image), want, "image {image:?}");
        }
        let pod = defaulted(
            "",
            "Pod",
            json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "a", "image": "busybox", "imagePullPolicy": "Never"}]}}),
        );
        assert_eq!(pod["spec"]["containers"][0]["imagePullPolicy"], "Never");
    }

    #[test]
    fn pod_defaults() {
        let pod = defaulted(
            "",
            "Pod",
            json!({
                "metadata": {"name": "p", "namespace": "default"},
                "spec": {
                    "containers": [{
                        "name": "app",
                        "image": "app:v1",
                        "resources": {"limits": {"cpu": "0.5", "memory": "1024Mi"}, "requests": {"cpu": "100m"}},
                        "livenessProbe": {"httpGet": {"port": 8080}},
                        "readinessProbe": {"grpc": {"port": 9000}, "periodSeconds": 5},
                        "env": [{"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}]
                    }],
                    "volumes": [
                        {"name": "scratch"},
                        {"name": "cfg", "configMap": {"name": "cfg"}},
                        {"name": "sec", "secret": {"secretName": "sec"}},
                        {"name": "host", "hostPath": {"path": "/data"}}
                    ]
                }
            }),
        );
        let spec = &pod["spec"];
        let c = &spec["containers"][0];
        assert_eq!(
            c["resources"],
            json!({"limits": {"cpu": "500m", "memory": "1Gi"}, "requests": {"cpu": "100m", "memory": "1Gi"}})
        );
        assert_eq!(
            c["livenessProbe"],
            json!({"httpGet": {"port": 8080, "path": "/", "scheme": "HTTP"}, "timeoutSeconds": 1, "periodSeconds": 10, "successThreshold": 1, "failureThreshold": 3})
        );
        assert_eq!(c["readinessProbe"]["periodSeconds"], 5);
        assert_eq!(c["readinessProbe"]["grpc"]["service"], "");
        assert_eq!(c["env"][0]["valueFrom"]["fieldRef"]["apiVersion"], "v1");
        assert_eq!(spec["volumes"][0]["emptyDir"], json!({}));
        assert_eq!(spec["volumes"][1]["configMap"]["defaultMode"], 420);
        assert_eq!(spec["volumes"][2]["secret"]["defaultMode"], 420);
        assert_eq!(spec["volumes"][3]["hostPath"]["type"], "");
        assert_eq!(spec["enableServiceLinks"], true);
        assert_eq!(spec["priority"], 0);
        assert_eq!(spec["preemptionPolicy"], "PreemptLowerPriority");
        assert_eq!(spec["serviceAccountName"], "default");
        assert_eq!(spec["serviceAccount"], "default");
        assert_eq!(
            spec["tolerations"],
            json!([
                {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
                {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}
            ])
        );
        // Templates get neither the Pod-only defaults nor admission defaults.
        let rs = defaulted(
            "apps",
            "ReplicaSet",
            json!({"spec": {"template": {"spec": {"containers": [{"name": "a", "image": "a", "resources": {"limits": {"cpu": "1"}}}]}}}}),
        );
        let tspec = &rs["spec"]["template"]["spec"];
        assert!(tspec.get("enableServiceLinks").is_none());
        assert!(tspec.get("priority").is_none());
        assert!(tspec.get("tolerations").is_none());
        assert_eq!(
            tspec["containers"][0]["resources"],
            json!({"limits": {"cpu": "1"}})
        );
        assert_eq!(rs["spec"]["replicas"], 1);
    }

    #[test]
    fn host_network_ports_and_service_account_alias() {
        let pod = defaulted(
            "",
            "Pod",
            json!({"metadata": {"name": "p"}, "spec": {"hostNetwork": true, "serviceAccount": "robot",
                "containers": [{"name": "a", "image": "a:1", "ports": [{"containerPort": 53, "protocol": "UDP"}]}]}}),
        );
        assert_eq!(
            pod["spec"]["containers"][0]["ports"][0],
            json!({"containerPort": 53, "protocol": "UDP", "hostPort": 53})
        );
        assert_eq!(pod["spec"]["serviceAccountName"], "robot");
        assert_eq!(pod["spec"]["serviceAccount"], "robot");
        let critical = defaulted(
            "",
            "Pod",
            json!({"spec": {"priorityClassName": "system-node-critical", "containers": [{"name": "a", "image": "a"}],
                "tolerations": [{"operator": "Exists"}]}}),
        );
        assert_eq!(critical["spec"]["priority"], 2_000_001_000);
        assert_eq!(
            critical["spec"]["tolerations"],
            json!([{"operator": "Exists"}])
        );
    }

    #[test]
    fn job_selector_generation() {
        let job = defaulted(
            "batch",
            "Job",
            json!({
                "metadata": {"name": "pi", "namespace": "default", "uid": "1234-abcd"},
                "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "pi", "image": "perl:5.34"}]}}}
            }),
        );
        let spec = &job["spec"];
        assert_eq!(
            spec["selector"],
            json!({"matchLabels": {"batch.kubernetes.io/controller-uid": "1234-abcd"}})
        );
        let labels = json!({
            "batch.kubernetes.io/controller-uid": "1234-abcd",
            "batch.kubernetes.io/job-name": "pi",
            "controller-uid": "1234-abcd",
            "job-name": "pi"
        });
        assert_eq!(spec["template"]["metadata"]["labels"], labels);
        assert_eq!(job["metadata"]["labels"], labels);
        for (field, value) in [
            ("completions", json!(1)),
            ("parallelism", json!(1)),
            ("backoffLimit", json!(6)),
            ("completionMode", json!("NonIndexed")),
            ("suspend", json!(false)),
            ("podReplacementPolicy", json!("TerminatingOrFailed")),
            ("manualSelector", json!(false)),
        ] {
            assert_eq!(spec[field], value, "{field}");
        }
        assert_eq!(spec["template"]["spec"]["restartPolicy"], "Never");

        // Parallelism without completions leaves completions unset; per-index backoff changes the limit.
        let job = defaulted(
            "batch",
            "Job",
            json!({"metadata": {"name": "x", "uid": "u"}, "spec": {"parallelism": 3, "backoffLimitPerIndex": 1,
                "completionMode": "Indexed", "podFailurePolicy": {"rules": []},
                "template": {"metadata": {"labels": {"job-name": "custom"}}, "spec": {"containers": []}}}}),
        );
        assert!(job["spec"].get("completions").is_none());
        assert_eq!(job["spec"]["backoffLimit"], 2147483647);
        assert_eq!(job["spec"]["podReplacementPolicy"], "Failed");
        assert_eq!(
            job["spec"]["template"]["metadata"]["labels"]["job-name"],
            "custom"
        );

        // A manual selector is left alone.
        let job = defaulted(
            "batch",
            "Job",
            json!({"metadata": {"name": "m", "uid": "u"}, "spec": {"manualSelector": true,
                "selector": {"matchLabels": {"a": "b"}}, "template": {"metadata": {"labels": {"a": "b"}}}}}),
        );
        assert_eq!(job["spec"]["selector"], json!({"matchLabels": {"a": "b"}}));
        assert_eq!(
            job["spec"]["template"]["metadata"]["labels"],
            json!({"a": "b"})
        );
    }

    #[test]
    fn workload_defaults() {
        let sts = defaulted(
            "apps",
            "StatefulSet",
            json!({"spec": {"selector": {"matchLabels": {"a": "b"}}, "template": {"metadata": {"labels": {"a": "b"}}},
                "volumeClaimTemplates": [{"metadata": {"name": "data"},
                    "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1024Mi"}}}}]}}),
        );
        let spec = &sts["spec"];
        assert_eq!(spec["replicas"], 1);
        assert_eq!(spec["podManagementPolicy"], "OrderedReady");
        assert_eq!(
            spec["updateStrategy"],
            json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 0}})
        );
        assert_eq!(spec["revisionHistoryLimit"], 10);
        assert_eq!(
            spec["persistentVolumeClaimRetentionPolicy"],
            json!({"whenDeleted": "Retain", "whenScaled": "Retain"})
        );
        assert!(spec.get("serviceName").is_none());
        let vct = &spec["volumeClaimTemplates"][0];
        assert_eq!(vct["spec"]["volumeMode"], "Filesystem");
        assert_eq!(vct["spec"]["resources"]["requests"]["storage"], "1Gi");
        assert_eq!(vct["status"], json!({"phase": "Pending"}));

        let ds = defaulted("apps", "DaemonSet", json!({"spec": {"template": {}}}));
        assert_eq!(
            ds["spec"]["updateStrategy"],
            json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}})
        );
        assert_eq!(ds["spec"]["revisionHistoryLimit"], 10);

        let ds = defaulted(
            "apps",
            "DaemonSet",
            json!({"spec": {"updateStrategy": {"type": "OnDelete"}}}),
        );
        assert_eq!(ds["spec"]["updateStrategy"], json!({"type": "OnDelete"}));

        let cj = defaulted(
            "batch",
            "CronJob",
            json!({"spec": {"schedule": "*/5 * * * *", "jobTemplate": {"spec": {"template": {"spec": {"restartPolicy": "OnFailure",
                "containers": [{"name": "a", "image": "busybox:1.36"}]}}}}}}),
        );
        let spec = &cj["spec"];
        assert_eq!(spec["concurrencyPolicy"], "Allow");
        assert_eq!(spec["suspend"], false);
        assert_eq!(spec["successfulJobsHistoryLimit"], 3);
        assert_eq!(spec["failedJobsHistoryLimit"], 1);
        // The job template's JobSpec is not defaulted, only its pod template.
        assert!(spec["jobTemplate"]["spec"].get("backoffLimit").is_none());
        assert_eq!(
            spec["jobTemplate"]["spec"]["template"]["spec"]["dnsPolicy"],
            "ClusterFirst"
        );

        let rc = defaulted(
            "",
            "ReplicationController",
            json!({"metadata": {"name": "rc"}, "spec": {"template": {"metadata": {"labels": {"app": "x"}}}}}),
        );
        assert_eq!(rc["spec"]["selector"], json!({"app": "x"}));
        assert_eq!(rc["metadata"]["labels"], json!({"app": "x"}));
        assert_eq!(rc["spec"]["replicas"], 1);

        let recreate = defaulted(
            "apps",
            "Deployment",
            json!({"spec": {"strategy": {"type": "Recreate"}}}),
        );
        assert_eq!(recreate["spec"]["strategy"], json!({"type": "Recreate"}));
    }

    #[test]
    fn service_defaults() {
        let svc = defaulted(
            "",
            "Service",
            json!({"metadata": {"name": "web"}, "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}, {"port": 443, "targetPort": "https"}]}}),
        );
        assert_eq!(
            svc["spec"],
            json!({
                "selector": {"app": "web"},
                "ports": [{"port": 80, "protocol": "TCP", "targetPort": 80}, {"port": 443, "targetPort": "https", "protocol": "TCP"}],
                "sessionAffinity": "None",
                "type": "ClusterIP",
                "internalTrafficPolicy": "Cluster",
                "ipFamilyPolicy": "SingleStack",
                "ipFamilies": ["IPv4"]
            })
        );
        assert_eq!(svc["status"], json!({"loadBalancer": {}}));

        let lb = defaulted(
            "",
            "Service",
            json!({"spec": {"type": "LoadBalancer", "sessionAffinity": "ClientIP", "ports": [{"port": 80}]}}),
        );
        assert_eq!(lb["spec"]["externalTrafficPolicy"], "Cluster");
        assert_eq!(lb["spec"]["allocateLoadBalancerNodePorts"], true);
        assert_eq!(
            lb["spec"]["sessionAffinityConfig"],
            json!({"clientIP": {"timeoutSeconds": 10800}})
        );

        let headless = defaulted("", "Service", json!({"spec": {"clusterIP": "None"}}));
        assert_eq!(headless["spec"]["clusterIPs"], json!(["None"]));
        assert_eq!(headless["spec"]["ipFamilyPolicy"], "RequireDualStack");
        assert_eq!(headless["spec"]["ipFamilies"], json!(["IPv4", "IPv6"]));

        let ext = defaulted(
            "",
            "Service",
            json!({"spec": {"type": "ExternalName", "externalName": "example.com"}}),
        );
        assert!(ext["spec"].get("ipFamilies").is_none());
        assert!(ext["spec"].get("internalTrafficPolicy").is_none());

        let v6 = defaulted(
            "",
            "Service",
            json!({"spec": {"clusterIP": "fd00::10", "ports": [{"port": 1}]}}),
        );
        assert_eq!(v6["spec"]["ipFamilies"], json!(["IPv6"]));
    }

    #[test]
    fn namespace_secret_node_pvc_defaults() {
        let ns = defaulted("", "Namespace", json!({"metadata": {"name": "team-a"}}));
        assert_eq!(
            ns["metadata"]["labels"],
            json!({"kubernetes.io/metadata.name": "team-a"})
        );
        assert_eq!(ns["spec"], json!({"finalizers": ["kubernetes"]}));
        assert_eq!(ns["status"], json!({"phase": "Active"}));
        // The finalize subresource's explicit list is kept.
        let finalized = defaulted(
            "",
            "Namespace",
            json!({"metadata": {"name": "x"}, "spec": {"finalizers": []}}),
        );
        assert_eq!(finalized["spec"]["finalizers"], json!([]));

        let secret = defaulted(
            "",
            "Secret",
            json!({"stringData": {"user": "admin", "pw": "s3cr3t!"}, "data": {"x": "eQ=="}}),
        );
        assert_eq!(secret["type"], "Opaque");
        assert!(secret.get("stringData").is_none());
        assert_eq!(
            secret["data"],
            json!({"x": "eQ==", "user": "YWRtaW4=", "pw": "czNjcjN0IQ=="})
        );

        let node = defaulted(
            "",
            "Node",
            json!({"status": {"capacity": {"cpu": "4", "memory": "8388608Ki"}}}),
        );
        assert_eq!(
            node["status"]["allocatable"],
            json!({"cpu": "4", "memory": "8Gi"})
        );
        assert_eq!(node["status"]["capacity"]["memory"], "8Gi");

        let pvc = defaulted(
            "",
            "PersistentVolumeClaim",
            json!({"spec": {"resources": {"requests": {"storage": "0.5Gi"}}}}),
        );
        assert_eq!(pvc["spec"]["volumeMode"], "Filesystem");
        assert_eq!(pvc["spec"]["resources"]["requests"]["storage"], "512Mi");
        assert_eq!(pvc["status"]["phase"], "Pending");

        let es = defaulted(
            "discovery.k8s.io",
            "EndpointSlice",
            json!({"ports": [{"port": 80}]}),
        );
        assert_eq!(
            es["ports"][0],
            json!({"port": 80, "name": "", "protocol": "TCP"})
        );

        let ep = defaulted(
            "",
            "Endpoints",
            json!({"subsets": [{"ports": [{"port": 80}]}]}),
        );
        assert_eq!(ep["subsets"][0]["ports"][0]["protocol"], "TCP");

        // Kinds without defaults are untouched.
        let cm = json!({"metadata": {"name": "c"}, "data": {"k": "v"}});
        assert_eq!(defaulted("", "ConfigMap", cm.clone()), cm);
        let lease = json!({"spec": {"holderIdentity": "a"}});
        assert_eq!(
            defaulted("coordination.k8s.io", "Lease", lease.clone()),
            lease
        );
    }

    #[test]
    fn base64() {
        assert_eq!(base64_encode(b""), "");
        assert_eq!(base64_encode(b"f"), "Zg==");
        assert_eq!(base64_encode(b"fo"), "Zm8=");
        assert_eq!(base64_encode(b"foo"), "Zm9v");
        assert_eq!(base64_encode(b"foobar"), "Zm9vYmFy");
    }
}
