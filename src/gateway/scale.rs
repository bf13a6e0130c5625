//! Scale to zero: a Deployment annotated `skiff.dev/scale-from-zero: "true"` may sit at
//! `replicas: 0`. The first request for a Service selecting its pods scales it to one and is
//! held until a function of the new pod is registered (compiled and pre-instantiated), then
//! served by it directly, before the Endpoints even show the pod. A Deployment no request has
//! reached for its idle period (`skiff.dev/idle-timeout`, default 5 minutes) is scaled back
//! to zero.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::{Gateway, GatewayError};
use crate::api::objects::WriteOptions;
use crate::api::resources::by_plural;
use crate::controllers::endpoints::{labels_match, selector_matches};
use crate::node::functions::{Function, parse_duration};

/// The annotation that lets a Deployment scale from zero.
pub const SCALE_FROM_ZERO: &str = "skiff.dev/scale-from-zero";
/// The annotation giving how long a Deployment may go without requests before it is scaled
/// to zero.
pub const IDLE_TIMEOUT: &str = "skiff.dev/idle-timeout";
/// The idle period when the annotation is absent.
pub const DEFAULT_IDLE: Duration = Duration::from_secs(300);
/// How long a request is held while its Deployment scales up.
pub const WAKE_TIMEOUT: Duration = Duration::from_secs(30);
/// How often idle Deployments are looked for.
const IDLE_CHECK: Duration = Duration::from_secs(1);

const MANAGER: &str = "skiff-gateway";

/// When each Service last had a request (namespace → name → time), and when each Deployment
/// was woken.
#[derive(Debug, Default)]
pub struct Scaler {
    used: Mutex<HashMap<String, HashMap<String, Instant>>>,
    woken: Mutex<HashMap<(String, String), Instant>>,
}

impl Scaler {
    /// Notes a request for Service `namespace/name` (on every request: no allocation once
    /// the Service is known).
    pub fn touch(&self, namespace: &str, name: &str) {
        let mut used = self.used.lock().unwrap_or_else(|p| p.into_inner());
        match used.get_mut(namespace).and_then(|n| n.get_mut(name)) {
            Some(at) => *at = Instant::now(),
            None => {
                used.entry(namespace.to_string())
                    .or_default()
                    .insert(name.to_string(), Instant::now());
            }
        }
    }

    fn last_used(&self, namespace: &str, name: &str) -> Option<Instant> {
        let used = self.used.lock().unwrap_or_else(|p| p.into_inner());
        used.get(namespace)?.get(name).copied()
    }

    fn woke(&self, namespace: &str, deployment: &str) {
        let mut woken = self.woken.lock().unwrap_or_else(|p| p.into_inner());
        woken.insert(
            (namespace.to_string(), deployment.to_string()),
            Instant::now(),
        );
    }

    fn woken_at(&self, namespace: &str, deployment: &str) -> Option<Instant> {
        let woken = self.woken.lock().unwrap_or_else(|p| p.into_inner());
        woken
            .get(&(namespace.to_string(), deployment.to_string()))
            .copied()
    }
}

fn allows_scale_from_zero(deployment: &Value) -> bool {
    deployment["metadata"]["annotations"][SCALE_FROM_ZERO] == "true"
}

/// Whether a Service's selector selects the Deployment's pods (by its template labels).
fn selects_template(service: &Value, deployment: &Value) -> bool {
    selector_matches(
        &service["spec"]["selector"],
        &deployment["spec"]["template"],
    )
}

/// The Deployment's idle period (pure).
pub fn idle_period(deployment: &Value) -> Duration {
    deployment["metadata"]["annotations"][IDLE_TIMEOUT]
        .as_str()
        .and_then(parse_duration)
        .unwrap_or(DEFAULT_IDLE)
}

/// What a held request may go to once its Deployment is awake.
pub enum Woken {
    /// A function of the new pod, registered before the Endpoints show it.
    Function(Arc<Function>),
    /// The Service's Endpoints have a Ready address (container pods).
    Endpoints,
}

/// How often a held request looks at the Endpoints (container pods have no faster signal).
const ENDPOINTS_POLL: Duration = Duration::from_millis(20);

/// Scales the Service's scale-from-zero Deployments at zero to one replica and waits until a
/// function of theirs can serve the request or the Service has a Ready endpoint. `Ok(None)`
/// when the Service has no such Deployment.
///
/// # Errors
///
/// 503 when the scale-up cannot be written or no pod is serving within [`WAKE_TIMEOUT`].
pub async fn wake(
    gateway: &Gateway,
    namespace: &str,
    service: &Value,
    service_port: &Value,
    port_name: &str,
) -> Result<Option<Woken>, GatewayError> {
    let deployments: Vec<Arc<Value>> = gateway
        .deployments
        .list(Some(namespace))
        .into_iter()
        .filter(|d| allows_scale_from_zero(d) && selects_template(service, d))
        .collect();
    if deployments.is_empty() {
        return Ok(None);
    }
    let resource = by_plural("apps", "v1", "deployments").expect("served resource");
    let opts = WriteOptions::controller(MANAGER);
    let mut version = gateway.functions.subscribe();
    for deployment in &deployments {
        if deployment["spec"]["replicas"].as_i64().unwrap_or(1) > 0 {
            continue;
        }
        let name = deployment["metadata"]["name"].as_str().unwrap_or_default();
        gateway.scaler.woke(namespace, name);
        let scale = json!({"spec": {"replicas": 1}});
        if let Err(e) = gateway
            .objects
            .update_scale(resource, namespace, name, scale, &opts)
            .await
        {
            return Err(GatewayError::new(
                503,
                format!("cannot scale deployment \"{namespace}/{name}\" from zero: {e}"),
            ));
        }
        tracing::info!("scaled deployment {namespace}/{name} from zero for a request");
    }
    let target_port = service_port["targetPort"]
        .as_u64()
        .or_else(|| service_port["port"].as_u64())
        .and_then(|p| u16::try_from(p).ok());
    let selector = &service["spec"]["selector"];
    let serving = || {
        gateway.functions.find(namespace, |f| {
            labels_match(selector, &f.labels) && target_port.is_none_or(|p| f.serves_port(p))
        })
    };
    let service_name = service["metadata"]["name"].as_str().unwrap_or_default();
    let deadline = tokio::time::Instant::now() + WAKE_TIMEOUT;
    loop {
        if let Some(function) = serving() {
            return Ok(Some(Woken::Function(function)));
        }
        if !gateway
            .ready_endpoints(namespace, service_name, port_name)
            .is_empty()
        {
            return Ok(Some(Woken::Endpoints));
        }
        let next = tokio::time::timeout_at(deadline, async {
            tokio::select! {
                changed = version.changed() => changed.is_ok(),
                () = tokio::time::sleep(ENDPOINTS_POLL) => true,
            }
        });
        match next.await {
            Ok(true) => {}
            _ => {
                return Err(GatewayError::new(
                    503,
                    format!(
                        "no pod of service \"{namespace}/{service_name}\" was serving within {}s of scaling from zero",
                        WAKE_TIMEOUT.as_secs()
                    ),
                ));
            }
        }
    }
}

/// Scales idle scale-from-zero Deployments to zero (and shows the gateway's address in new
/// Ingresses), every second, while the gateway lives.
pub async fn scale_down_idle(gateway: Weak<Gateway>) {
    let resource = by_plural("apps", "v1", "deployments").expect("served resource");
    let opts = WriteOptions::controller(MANAGER);
    let started = Instant::now();
    loop {
        tokio::time::sleep(IDLE_CHECK).await;
        let Some(gateway) = gateway.upgrade() else {
            return;
        };
        gateway.publish_addresses().await;
        for deployment in gateway.deployments.list(None) {
            if !allows_scale_from_zero(&deployment)
                || deployment["spec"]["replicas"].as_i64().unwrap_or(1) == 0
                || deployment["metadata"]["deletionTimestamp"].is_string()
            {
                continue;
            }
            let namespace = deployment["metadata"]["namespace"]
                .as_str()
                .unwrap_or_default();
            let name = deployment["metadata"]["name"].as_str().unwrap_or_default();
            // The last request to any Service selecting it; else when it was woken; else
            // when this gateway started (a Deployment is never scaled down sooner).
            let last = gateway
                .services
                .list(Some(namespace))
                .iter()
                .filter(|s| selects_template(s, &deployment))
                .filter_map(|s| {
                    gateway.scaler.last_used(
                        namespace,
                        s["metadata"]["name"].as_str().unwrap_or_default(),
                    )
                })
                .chain(gateway.scaler.woken_at(namespace, name))
                .max()
                .unwrap_or(started)
                .max(started);
            if last.elapsed() < idle_period(&deployment) {
                continue;
            }
            let scale = json!({"spec": {"replicas": 0}});
            match gateway
                .objects
                .update_scale(resource, namespace, name, scale, &opts)
                .await
            {
                Ok(_) => tracing::info!("scaled idle deployment {namespace}/{name} to zero"),
                Err(e) => tracing::warn!("scaling {namespace}/{name} to zero: {e}"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idle_periods_and_selection() {
        let d = json!({
            "metadata": {"annotations": {SCALE_FROM_ZERO: "true", IDLE_TIMEOUT: "45s"}},
            "spec": {"replicas": 0, "template": {"metadata": {"labels": {"app": "f", "tier": "x"}}}},
        });
        assert!(allows_scale_from_zero(&d));
        assert_eq!(idle_period(&d), Duration::from_secs(45));
        assert_eq!(idle_period(&json!({})), DEFAULT_IDLE);
        assert!(selects_template(
            &json!({"spec": {"selector": {"app": "f"}}}),
            &d
        ));
        assert!(!selects_template(
            &json!({"spec": {"selector": {"app": "g"}}}),
            &d
        ));
        assert!(!allows_scale_from_zero(
            &json!({"metadata": {"annotations": {SCALE_FROM_ZERO: "yes"}}})
        ));
    }
}
