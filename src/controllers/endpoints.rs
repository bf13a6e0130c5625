//! The endpoints controller: for every Service with a selector, an `Endpoints` object of the
//! same name and `EndpointSlice`s (label `kubernetes.io/service-name`) listing the pods it
//! selects, with their ports resolved from the Service's `targetPort`s.
//!
//! As in Kubernetes:
//!
//! * Endpoints lists Ready pods under `addresses` and the others under `notReadyAddresses`;
//!   terminating pods are left out (unless `publishNotReadyAddresses`).
//! * EndpointSlices list every pod that has an IP, terminating ones included, with the
//!   `ready`, `serving` and `terminating` conditions.
//! * Pods are grouped by the ports they resolve to (a named `targetPort` may differ between
//!   pods): one subset (and one slice) per distinct port set.
//! * A Service without a selector is left alone: its Endpoints are the user's.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{Value, json};

use super::deployment::arith::fnv32a;
use super::informer::{Cache, Informers, is_deleting, namespace};
use super::pods::is_ready;
use super::runner::{self, Action, Queue};
use super::writes;
use crate::api::error::ApiError;
use crate::api::objects::{Objects, WriteOptions};
use crate::api::resources::{Resource, by_plural};
use crate::api::selector::LabelSelector;
use crate::store::ObjectKey;

const MANAGER: &str = "endpoint-controller";
/// The label naming the controller that manages an Endpoints or EndpointSlice.
const MANAGED_BY_LABEL: &str = "endpointslice.kubernetes.io/managed-by";
/// The [`MANAGED_BY_LABEL`] value of the objects this controller owns.
pub const SLICE_MANAGER: &str = "endpointslice-controller.skiff.dev";
/// The label naming a slice's Service.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

struct Ctx {
    objects: Objects,
    services: Arc<Cache>,
    pods: Arc<Cache>,
    endpoints: Arc<Cache>,
    slices: Arc<Cache>,
}

fn resource(group: &str, plural: &str) -> &'static Resource {
    let version = "v1";
    by_plural(group, version, plural).expect("served resource")
}

/// Registers the controller's caches and handlers with `informers` and starts its workers.
pub fn register(objects: &Objects, informers: &mut Informers) {
    let svc_resource = resource("", "services");
    let queue = Queue::default();
    let services = informers.queue_changes(svc_resource, &queue);
    // A pod change concerns every Service of its namespace that selects it, before or after.
    let pods = {
        let queue = queue.clone();
        let services = services.clone();
        informers.on(resource("", "pods"), move |change| {
            for service in services.list(Some(namespace(change.object))) {
                let selects = |pod: &Value| selector_matches(&service["spec"]["selector"], pod);
                if selects(change.object) || change.previous.is_some_and(selects) {
                    queue.add(ObjectKey::new(
                        &svc_resource.store_key(),
                        namespace(&service),
                        name(&service),
                    ));
                }
            }
        });
        informers.cache(resource("", "pods"))
    };
    // A hand-edited or deleted Endpoints/EndpointSlice is put back.
    let endpoints = {
        let queue = queue.clone();
        informers.on(resource("", "endpoints"), move |change| {
            queue.add(ObjectKey::new(
                &svc_resource.store_key(),
                namespace(change.object),
                name(change.object),
            ));
        });
        informers.cache(resource("", "endpoints"))
    };
    let slices = {
        let queue = queue.clone();
        informers.on(
            resource("discovery.k8s.io", "endpointslices"),
            move |change| {
                if let Some(service) =
                    change.object["metadata"]["labels"][SERVICE_NAME_LABEL].as_str()
                {
                    queue.add(ObjectKey::new(
                        &svc_resource.store_key(),
                        namespace(change.object),
                        service,
                    ));
                }
            },
        );
        informers.cache(resource("discovery.k8s.io", "endpointslices"))
    };
    let ctx = Arc::new(Ctx {
        objects: objects.clone(),
        services: services.clone(),
        pods,
        endpoints,
        slices,
    });
    runner::start(MANAGER, queue, 2, ctx, services, |ctx, key| async move {
        reconcile(&ctx, &key).await
    });
}

fn name(object: &Value) -> &str {
    object["metadata"]["name"].as_str().unwrap_or_default()
}

/// Whether a Service's `spec.selector` (a plain label map) selects `pod`. An empty or
/// missing selector selects nothing (such Services are not managed).
pub fn selector_matches(selector: &Value, pod: &Value) -> bool {
    labels_match(selector, &pod["metadata"]["labels"])
}

/// Whether a Service's `spec.selector` selects these labels (see [`selector_matches`]).
pub fn labels_match(selector: &Value, labels: &Value) -> bool {
    selector
        .as_object()
        .filter(|m| !m.is_empty())
        .is_some_and(|wanted| wanted.iter().all(|(k, v)| labels.get(k) == Some(v)))
}

async fn reconcile(ctx: &Ctx, key: &ObjectKey) -> Result<Action, ApiError> {
    let (ns, svc_name) = (key.namespace.as_str(), key.name.as_str());
    let service = ctx.services.get(ns, svc_name).filter(|s| !is_deleting(s));
    let managed = service.as_ref().is_some_and(|s| {
        s["spec"]["selector"]
            .as_object()
            .is_some_and(|m| !m.is_empty())
    });
    let slices: Vec<Arc<Value>> = ctx
        .slices
        .list(Some(ns))
        .into_iter()
        .filter(|s| {
            s["metadata"]["labels"][SERVICE_NAME_LABEL] == svc_name
                && s["metadata"]["labels"][MANAGED_BY_LABEL] == SLICE_MANAGER
        })
        .collect();
    let gone = service.is_none();
    let Some(service) = service.filter(|_| managed) else {
        // Gone or selector-less: remove what this controller made.
        if gone
            && let Some(endpoints) = ctx.endpoints.get(ns, svc_name)
            && endpoints["metadata"]["labels"][MANAGED_BY_LABEL] == SLICE_MANAGER
        {
            writes::delete(&ctx.objects, &ctx.endpoints, &endpoints).await?;
        }
        for slice in slices {
            writes::delete(&ctx.objects, &ctx.slices, &slice).await?;
        }
        return Ok(Action::AwaitChange);
    };
    // The pod cache's label index answers the selector.
    let selector = LabelSelector::from_json(&json!({"matchLabels": service["spec"]["selector"]}))
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let pods = ctx.pods.select(ns, &selector);
    let groups = group_pods(&service, &pods);

    put(ctx, &ctx.endpoints, ns, endpoints_object(&service, &groups)).await?;
    let mut wanted = Vec::new();
    for group in &groups {
        let slice = slice_object(&service, group);
        wanted.push(name(&slice).to_string());
        put(ctx, &ctx.slices, ns, slice).await?;
    }
    for slice in slices {
        if !wanted.iter().any(|w| w == name(&slice)) {
            writes::delete(&ctx.objects, &ctx.slices, &slice).await?;
        }
    }
    Ok(Action::AwaitChange)
}

/// Creates `object` in `cache`'s resource, or updates the cached one when its content
/// differs.
async fn put(ctx: &Ctx, cache: &Cache, ns: &str, mut object: Value) -> Result<(), ApiError> {
    let opts = WriteOptions::controller(MANAGER);
    let resource = cache.resource();
    let object_name = name(&object).to_string();
    let written = match cache.get(ns, &object_name) {
        None => ctx.objects.create(resource, ns, object, &opts).await?,
        Some(current) => {
            if same_content(&current, &object) {
                return Ok(());
            }
            object["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"].clone();
            ctx.objects
                .update(resource, ns, &object_name, object, None, &opts)
                .await?
        }
    };
    cache.observe(written.object);
    Ok(())
}

/// Whether two versions of an Endpoints/EndpointSlice say the same thing: the same content
/// and every wanted label.
fn same_content(current: &Value, wanted: &Value) -> bool {
    let fields = ["subsets", "endpoints", "ports", "addressType"];
    let same_fields = fields.iter().all(|f| {
        let (a, b) = (&current[f], &wanted[f]);
        a == b || (is_empty(a) && is_empty(b))
    });
    let labels = wanted["metadata"]["labels"].as_object();
    same_fields
        && labels.is_none_or(|want| {
            want.iter()
                .all(|(k, v)| current["metadata"]["labels"].get(k) == Some(v))
        })
}

fn is_empty(v: &Value) -> bool {
    v.is_null() || v.as_array().is_some_and(Vec::is_empty)
}

/// A pod as an endpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct PodEndpoint {
    /// `status.podIP`.
    pub ip: String,
    /// Ready and not terminating.
    pub ready: bool,
    /// Being deleted.
    pub terminating: bool,
    /// Whether the pod's Ready condition is True (Kubernetes' `serving`).
    pub serving: bool,
    /// The pod's node.
    pub node: Option<String>,
    /// The pod's reference (kind, namespace, name, uid).
    pub target_ref: Value,
}

/// Pods that resolve the Service's ports the same way.
#[derive(Debug, Clone, PartialEq)]
pub struct PortGroup {
    /// `(name, port, protocol)` per Service port, resolved for these pods.
    pub ports: Vec<(String, i64, String)>,
    /// The pods, ordered by IP.
    pub pods: Vec<PodEndpoint>,
}

/// Resolves a Service port's `targetPort` for one pod: a number is itself, a name is looked up
/// in the pod's containers' ports, absent means the Service port.
pub fn resolve_target_port(service_port: &Value, pod: &Value) -> Option<i64> {
    match &service_port["targetPort"] {
        Value::Number(n) => n.as_i64(),
        Value::String(s) if !s.is_empty() => match s.parse::<i64>() {
            Ok(n) => Some(n),
            Err(_) => pod["spec"]["containers"]
                .as_array()?
                .iter()
                .flat_map(|c| c["ports"].as_array().into_iter().flatten())
                .find(|p| p["name"] == s.as_str())
                .and_then(|p| p["containerPort"].as_i64()),
        },
        _ => service_port["port"].as_i64(),
    }
}

/// Groups the selected pods by their resolved port sets (pure). Pods without an IP, finished
/// pods and pods that cannot resolve every port are left out.
pub fn group_pods(service: &Value, pods: &[Arc<Value>]) -> Vec<PortGroup> {
    let service_ports: Vec<&Value> = service["spec"]["ports"]
        .as_array()
        .map(|p| p.iter().collect())
        .unwrap_or_default();
    let mut groups: BTreeMap<Vec<(String, i64, String)>, Vec<PodEndpoint>> = BTreeMap::new();
    for pod in pods {
        let phase = pod["status"]["phase"].as_str().unwrap_or_default();
        let Some(ip) = pod["status"]["podIP"].as_str().filter(|ip| !ip.is_empty()) else {
            continue;
        };
        if phase == "Succeeded" || phase == "Failed" {
            continue;
        }
        let ports: Option<Vec<(String, i64, String)>> = service_ports
            .iter()
            .map(|p| {
                let port = resolve_target_port(p, pod)?;
                let name = p["name"].as_str().unwrap_or_default().to_string();
                let protocol = p["protocol"].as_str().unwrap_or("TCP").to_string();
                Some((name, port, protocol))
            })
            .collect();
        let Some(ports) = ports else { continue };
        let terminating = is_deleting(pod);
        let serving = is_ready(pod);
        groups.entry(ports).or_default().push(PodEndpoint {
            ip: ip.to_string(),
            ready: serving && !terminating,
            terminating,
            serving,
            node: pod["spec"]["nodeName"].as_str().map(String::from),
            target_ref: json!({
                "kind": "Pod",
                "namespace": pod["metadata"]["namespace"],
                "name": pod["metadata"]["name"],
                "uid": pod["metadata"]["uid"],
            }),
        });
    }
    groups
        .into_iter()
        .map(|(ports, mut pods)| {
            pods.sort_by(|a, b| {
                a.ip.cmp(&b.ip).then_with(|| {
                    a.target_ref["name"]
                        .as_str()
                        .cmp(&b.target_ref["name"].as_str())
                })
            });
            PortGroup { ports, pods }
        })
        .collect()
}

fn address(pod: &PodEndpoint) -> Value {
    let mut a = json!({"ip": pod.ip, "targetRef": pod.target_ref});
    if let Some(node) = &pod.node {
        a["nodeName"] = json!(node);
    }
    a
}

/// The Endpoints object for these groups (pure).
pub fn endpoints_object(service: &Value, groups: &[PortGroup]) -> Value {
    let publish_not_ready = service["spec"]["publishNotReadyAddresses"] == true;
    let subsets: Vec<Value> = groups
        .iter()
        .filter_map(|group| {
            let (mut ready, mut not_ready) = (Vec::new(), Vec::new());
            for pod in &group.pods {
                if pod.ready || (publish_not_ready && !pod.terminating) {
                    ready.push(address(pod));
                } else if !pod.terminating {
                    not_ready.push(address(pod));
                }
            }
            if ready.is_empty() && not_ready.is_empty() {
                return None;
            }
            let ports: Vec<Value> = group
                .ports
                .iter()
                .map(|(name, port, protocol)| {
                    let mut p = json!({"port": port, "protocol": protocol});
                    if !name.is_empty() {
                        p["name"] = json!(name);
                    }
                    p
                })
                .collect();
            let mut subset = json!({"ports": ports});
            if !ready.is_empty() {
                subset["addresses"] = json!(ready);
            }
            if !not_ready.is_empty() {
                subset["notReadyAddresses"] = json!(not_ready);
            }
            Some(subset)
        })
        .collect();
    let mut labels = service["metadata"]["labels"].clone();
    if !labels.is_object() {
        labels = json!({});
    }
    labels[MANAGED_BY_LABEL] = json!(SLICE_MANAGER);
    json!({
        "apiVersion": "v1",
        "kind": "Endpoints",
        "metadata": {
            "name": service["metadata"]["name"],
            "namespace": service["metadata"]["namespace"],
            "labels": labels,
        },
        "subsets": subsets,
    })
}

/// The EndpointSlice for one port group (pure). Its name is the Service's with a short hash
/// of the port set, so the same ports always land in the same slice.
pub fn slice_object(service: &Value, group: &PortGroup) -> Value {
    let svc = service["metadata"]["name"].as_str().unwrap_or_default();
    let suffix = format!(
        "{:06x}",
        fnv32a(format!("{:?}", group.ports).as_bytes()) & 0xff_ffff
    );
    let endpoints: Vec<Value> = group
        .pods
        .iter()
        .map(|pod| {
            let mut e = json!({
                "addresses": [pod.ip],
                "conditions": {"ready": pod.ready, "serving": pod.serving, "terminating": pod.terminating},
                "targetRef": pod.target_ref,
            });
            if let Some(node) = &pod.node {
                e["nodeName"] = json!(node);
            }
            e
        })
        .collect();
    let ports: Vec<Value> = group
        .ports
        .iter()
        .map(|(name, port, protocol)| json!({"name": name, "port": port, "protocol": protocol}))
        .collect();
    json!({
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": format!("{svc}-{suffix}"),
            "namespace": service["metadata"]["namespace"],
            "labels": {
                SERVICE_NAME_LABEL: svc,
                MANAGED_BY_LABEL: SLICE_MANAGER,
            },
            "ownerReferences": [{
                "apiVersion": "v1",
                "kind": "Service",
                "name": svc,
                "uid": service["metadata"]["uid"],
                "controller": true,
                "blockOwnerDeletion": true,
            }],
        },
        "addressType": "IPv4",
        "endpoints": endpoints,
        "ports": ports,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(name: &str, ip: &str, ready: bool, deleting: bool) -> Arc<Value> {
        let mut p = json!({
            "metadata": {"name": name, "namespace": "t", "uid": format!("u-{name}"), "labels": {"app": "web"}},
            "spec": {"nodeName": "n1", "containers": [{"name": "c", "ports": [{"name": "http", "containerPort": 8080}]}]},
            "status": {"phase": "Running", "podIP": ip,
                "conditions": [{"type": "Ready", "status": if ready {"True"} else {"False"}}]},
        });
        if deleting {
            p["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:00:00Z");
        }
        Arc::new(p)
    }

    fn service() -> Value {
        json!({
            "metadata": {"name": "web", "namespace": "t", "uid": "s1"},
            "spec": {"selector": {"app": "web"}, "ports": [
                {"name": "http", "port": 80, "targetPort": "http"},
                {"name": "raw", "port": 9000},
            ]},
        })
    }

    #[test]
    fn selectors_are_label_maps_and_empty_selects_nothing() {
        let p = pod("a", "10.0.0.1", true, false);
        assert!(selector_matches(&json!({"app": "web"}), &p));
        assert!(!selector_matches(&json!({"app": "db"}), &p));
        assert!(!selector_matches(&json!({}), &p));
        assert!(!selector_matches(&Value::Null, &p));
    }

    #[test]
    fn ready_not_ready_and_terminating_pods() {
        let pods = vec![
            pod("b", "10.0.0.2", false, false),
            pod("a", "10.0.0.1", true, false),
            pod("c", "10.0.0.3", true, true),
            Arc::new(json!({"metadata": {"name": "noip", "labels": {"app": "web"}}, "status": {}})),
        ];
        let groups = group_pods(&service(), &pods);
        assert_eq!(groups.len(), 1);
        assert_eq!(
            groups[0].ports,
            vec![
                ("http".to_string(), 8080, "TCP".to_string()),
                ("raw".to_string(), 9000, "TCP".to_string())
            ]
        );
        let ep = endpoints_object(&service(), &groups);
        let subset = &ep["subsets"][0];
        assert_eq!(subset["addresses"].as_array().unwrap().len(), 1);
        assert_eq!(subset["addresses"][0]["ip"], "10.0.0.1");
        assert_eq!(subset["addresses"][0]["targetRef"]["uid"], "u-a");
        assert_eq!(subset["notReadyAddresses"][0]["ip"], "10.0.0.2");
        assert_eq!(
            subset["ports"][0],
            json!({"name": "http", "port": 8080, "protocol": "TCP"})
        );

        let slice = slice_object(&service(), &groups[0]);
        let eps = slice["endpoints"].as_array().unwrap();
        assert_eq!(eps.len(), 3, "slices keep terminating pods");
        assert_eq!(
            eps[2]["conditions"],
            json!({"ready": false, "serving": true, "terminating": true})
        );
        assert_eq!(slice["metadata"]["labels"][SERVICE_NAME_LABEL], "web");
        assert!(
            slice["metadata"]["name"]
                .as_str()
                .unwrap()
                .starts_with("web-")
        );
    }

    #[test]
    fn pods_resolving_a_named_port_differently_get_their_own_subset() {
        let mut other = (*pod("z", "10.0.0.9", true, false)).clone();
        other["spec"]["containers"][0]["ports"][0]["containerPort"] = json!(9090);
        let unresolvable = {
            let mut p = (*pod("y", "10.0.0.8", true, false)).clone();
            p["spec"]["containers"][0]["ports"] = json!([]);
            Arc::new(p)
        };
        let groups = group_pods(
            &service(),
            &[
                pod("a", "10.0.0.1", true, false),
                Arc::new(other),
                unresolvable,
            ],
        );
        assert_eq!(groups.len(), 2);
        let ep = endpoints_object(&service(), &groups);
        assert_eq!(ep["subsets"].as_array().unwrap().len(), 2);
        assert_ne!(
            slice_object(&service(), &groups[0])["metadata"]["name"],
            slice_object(&service(), &groups[1])["metadata"]["name"]
        );
    }

    #[test]
    fn publish_not_ready_addresses() {
        let mut svc = service();
        svc["spec"]["publishNotReadyAddresses"] = json!(true);
        let groups = group_pods(&svc, &[pod("b", "10.0.0.2", false, false)]);
        let ep = endpoints_object(&svc, &groups);
        assert_eq!(ep["subsets"][0]["addresses"][0]["ip"], "10.0.0.2");
        assert!(ep["subsets"][0]["notReadyAddresses"].is_null());
    }

    #[test]
    fn target_ports() {
        let p = pod("a", "10.0.0.1", true, false);
        assert_eq!(resolve_target_port(&json!({"port": 80}), &p), Some(80));
        assert_eq!(
            resolve_target_port(&json!({"port": 80, "targetPort": 81}), &p),
            Some(81)
        );
        assert_eq!(
            resolve_target_port(&json!({"port": 80, "targetPort": "http"}), &p),
            Some(8080)
        );
        assert_eq!(
            resolve_target_port(&json!({"port": 80, "targetPort": "nope"}), &p),
            None
        );
    }
}
