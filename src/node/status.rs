//! Pod status as Kubernetes computes it from its containers' states: phase, conditions and
//! containerStatuses. Pure functions, so the rules have table tests.

use serde_json::{Value, json};

/// One container's state, as containerStatuses show it.
#[derive(Debug, Clone, PartialEq)]
pub enum State {
    /// Not running: `reason` is ContainerCreating, ErrImagePull, CrashLoopBackOff...
    Waiting {
        /// Why.
        reason: String,
        /// Details.
        message: Option<String>,
    },
    /// Running since `started_at` (RFC3339).
    Running {
        /// When it started.
        started_at: String,
    },
    /// Finished.
    Terminated(Termination),
}

/// How a container attempt ended.
#[derive(Debug, Clone, PartialEq)]
pub struct Termination {
    /// Exit code (137 for OOMKilled and killed, as Kubernetes reports).
    pub exit_code: i32,
    /// Completed, Error, OOMKilled, DeadlineExceeded, ...
    pub reason: String,
    /// Details (a trap message...).
    pub message: Option<String>,
    /// When it started.
    pub started_at: String,
    /// When it ended.
    pub finished_at: String,
}

impl Termination {
    fn to_json(&self) -> Value {
        let mut t = json!({
            "exitCode": self.exit_code,
            "reason": self.reason,
            "startedAt": self.started_at,
            "finishedAt": self.finished_at,
        });
        if let Some(m) = &self.message {
            t["message"] = json!(m);
        }
        t
    }
}

/// Everything the status needs to know about one container.
#[derive(Debug, Clone, PartialEq)]
pub struct ContainerRecord {
    /// Container name.
    pub name: String,
    /// Image as written in the spec.
    pub image: String,
    /// Resolved image id (`name@sha256:...`), once pulled.
    pub image_id: String,
    /// Current state.
    pub state: State,
    /// The previous attempt's termination.
    pub last_state: Option<Termination>,
    /// Restarts so far.
    pub restart_count: u32,
    /// Whether the running container counts as ready: set by the worker once it has run for
    /// [`READY_AFTER`] (as kubelet reports readiness only at its next status sync, a guest
    /// that dies at once is never seen ready), cleared whenever it stops.
    pub ready: bool,
    /// Found running after a node restart, its guest gone: the termination to record when it
    /// is restarted.
    pub lost: Option<Termination>,
    /// Runs under runc (an OCI image) rather than in-process (Wasm).
    pub oci: bool,
    /// Running, but its startup probe has not succeeded yet (`started: false`).
    pub startup_pending: bool,
    /// Its attempt was stopped by a failed liveness or startup probe: it restarts whatever
    /// its exit code, unless the policy is Never.
    pub probe_killed: bool,
}

/// The address a pod is shown with (`status.podIP`): one in 10.64.0.0/10 derived from its
/// uid. skiff's pods have no routable interface (Wasm guests have no sockets; a container's
/// network namespace has only loopback), so the address names the pod in Endpoints;
/// traffic reaches it through the gateway, which routes by the endpoint's `targetRef`.
pub fn pod_ip(uid: &str) -> String {
    let h = crate::controllers::deployment::arith::fnv32a(uid.as_bytes());
    let (b, c, d) = ((h >> 16) & 0x3f, (h >> 8) & 0xff, h & 0xff);
    // Neither .0 nor .255 as the last octet.
    let d = d.clamp(1, 254);
    format!("10.{}.{c}.{d}", 64 + b)
}

/// How long a container without a readiness probe must have run before it is reported ready.
pub const READY_AFTER: std::time::Duration = std::time::Duration::from_millis(100);

impl ContainerRecord {
    /// A container that has not started yet.
    pub fn new(name: &str, image: &str) -> Self {
        ContainerRecord {
            name: name.to_string(),
            image: image.to_string(),
            image_id: String::new(),
            state: State::Waiting {
                reason: "ContainerCreating".into(),
                message: None,
            },
            last_state: None,
            restart_count: 0,
            ready: false,
            lost: None,
            oci: false,
            startup_pending: false,
            probe_killed: false,
        }
    }

    fn running(&self) -> bool {
        matches!(self.state, State::Running { .. })
    }

    /// Running and ready.
    pub fn is_ready(&self) -> bool {
        self.running() && self.ready
    }

    fn to_json(&self, container_id: &str) -> Value {
        let state = match &self.state {
            State::Waiting { reason, message } => {
                let mut w = json!({"reason": reason});
                if let Some(m) = message {
                    w["message"] = json!(m);
                }
                json!({"waiting": w})
            }
            State::Running { started_at } => json!({"running": {"startedAt": started_at}}),
            State::Terminated(t) => json!({"terminated": t.to_json()}),
        };
        let mut status = json!({
            "name": self.name,
            "image": self.image,
            "imageID": self.image_id,
            "state": state,
            "lastState": self.last_state.as_ref().map(|t| json!({"terminated": t.to_json()})).unwrap_or(json!({})),
            "ready": self.is_ready(),
            "restartCount": self.restart_count,
            "started": self.running() && !self.startup_pending,
        });
        if !matches!(self.state, State::Waiting { .. }) || self.last_state.is_some() {
            status["containerID"] = json!(container_id);
        }
        status
    }
}

/// Whether a terminated container will be restarted under `policy`.
pub fn will_restart(policy: &str, exit_code: i32) -> bool {
    match policy {
        "Never" => false,
        "OnFailure" => exit_code != 0,
        _ => true,
    }
}

/// The pod phase from its containers (Kubernetes' getPhase).
pub fn phase(
    policy: &str,
    init_done: bool,
    init_failed: bool,
    containers: &[ContainerRecord],
) -> &'static str {
    if init_failed {
        return "Failed";
    }
    if !init_done {
        return "Pending";
    }
    let mut waiting_new = 0;
    let mut running = 0;
    let mut succeeded = 0;
    let mut failed = 0;
    let mut restarting = 0;
    for c in containers {
        match &c.state {
            State::Running { .. } => running += 1,
            State::Terminated(t) if t.exit_code == 0 => succeeded += 1,
            State::Terminated(_) => failed += 1,
            State::Waiting { .. } if c.last_state.is_some() => restarting += 1,
            State::Waiting { .. } => waiting_new += 1,
        }
    }
    if waiting_new > 0 {
        return "Pending";
    }
    if running > 0 || restarting > 0 {
        return "Running";
    }
    match policy {
        "Always" => "Running",
        "OnFailure" if failed > 0 => "Running",
        _ if failed > 0 => "Failed",
        _ if succeeded > 0 => "Succeeded",
        _ => "Pending",
    }
}

fn condition(kind: &str, ok: bool, reason: Option<&str>, now: &str) -> Value {
    let mut c = json!({"type": kind, "status": if ok { "True" } else { "False" }, "lastProbeTime": null, "lastTransitionTime": now});
    if let Some(r) = reason {
        c["reason"] = json!(r);
    }
    c
}

/// The pod's conditions, keeping each one's lastTransitionTime when its status did not change.
pub fn conditions(
    previous: &[Value],
    phase: &str,
    init_done: bool,
    containers: &[ContainerRecord],
    now: &str,
) -> Vec<Value> {
    let all_ready = !containers.is_empty() && containers.iter().all(ContainerRecord::is_ready);
    let finished = matches!(phase, "Succeeded" | "Failed");
    let not_ready_reason = if finished {
        Some("PodCompleted")
    } else if !all_ready {
        Some("ContainersNotReady")
    } else {
        None
    };
    let fresh = [
        condition("PodReadyToStartContainers", !finished, None, now),
        condition(
            "Initialized",
            init_done,
            if init_done {
                None
            } else {
                Some("ContainersNotInitialized")
            },
            now,
        ),
        condition("Ready", all_ready && !finished, not_ready_reason, now),
        condition(
            "ContainersReady",
            all_ready && !finished,
            not_ready_reason,
            now,
        ),
        condition("PodScheduled", true, None, now),
    ];
    fresh
        .into_iter()
        .map(|mut c| {
            if let Some(old) = previous.iter().find(|o| o["type"] == c["type"])
                && old["status"] == c["status"]
            {
                c["lastTransitionTime"] = old["lastTransitionTime"].clone();
            }
            c
        })
        .collect()
}

/// containerStatuses (or initContainerStatuses) JSON.
pub fn container_statuses(records: &[ContainerRecord], pod_uid: &str) -> Vec<Value> {
    records
        .iter()
        .map(|r| {
            let id = if r.oci {
                format!("runc://{pod_uid}-{}", r.name)
            } else {
                format!("wasm://{pod_uid}/{}/{}", r.name, r.restart_count)
            };
            r.to_json(&id)
        })
        .collect()
}

/// Restart delay after the `n`th consecutive failure: `initial` doubling up to `max`
/// (Kubernetes: 10 s doubling to 5 min), reset after a long enough good run.
pub fn backoff(
    n: u32,
    initial: std::time::Duration,
    max: std::time::Duration,
) -> std::time::Duration {
    let factor = 1u32
        .checked_shl(n.saturating_sub(1).min(31))
        .unwrap_or(u32::MAX);
    initial.saturating_mul(factor).min(max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pod_ips_are_stable_and_in_range() {
        let ip = pod_ip("0b6c9a8e-1d1e-4a57-9d3c-3e0c5b1f2a77");
        assert_eq!(ip, pod_ip("0b6c9a8e-1d1e-4a57-9d3c-3e0c5b1f2a77"));
        assert_ne!(ip, pod_ip("0b6c9a8e-1d1e-4a57-9d3c-3e0c5b1f2a78"));
        let octets: Vec<u32> = ip.split('.').map(|o| o.parse().unwrap()).collect();
        assert_eq!(octets[0], 10);
        assert!((64..128).contains(&octets[1]));
        assert!((1..255).contains(&octets[3]));
    }
    use std::time::Duration;

    fn terminated(code: i32) -> ContainerRecord {
        let mut c = ContainerRecord::new("c", "img");
        c.state = State::Terminated(Termination {
            exit_code: code,
            reason: if code == 0 {
                "Completed".into()
            } else {
                "Error".into()
            },
            message: None,
            started_at: "t".into(),
            finished_at: "t".into(),
        });
        c
    }

    #[test]
    fn phases_follow_kubernetes() {
        let running = {
            let mut c = ContainerRecord::new("c", "img");
            c.state = State::Running {
                started_at: "t".into(),
            };
            c
        };
        assert_eq!(
            phase("Always", false, false, std::slice::from_ref(&running)),
            "Pending"
        );
        assert_eq!(
            phase("Always", true, false, &[ContainerRecord::new("c", "i")]),
            "Pending"
        );
        assert_eq!(
            phase("Always", true, false, std::slice::from_ref(&running)),
            "Running"
        );
        assert_eq!(phase("Never", true, false, &[terminated(0)]), "Succeeded");
        assert_eq!(phase("Never", true, false, &[terminated(1)]), "Failed");
        assert_eq!(
            phase("Never", true, false, &[terminated(0), terminated(2)]),
            "Failed"
        );
        assert_eq!(
            phase("OnFailure", true, false, &[terminated(0)]),
            "Succeeded"
        );
        assert_eq!(phase("OnFailure", true, false, &[terminated(1)]), "Running");
        assert_eq!(phase("Always", true, false, &[terminated(0)]), "Running");
        assert_eq!(
            phase("Never", true, false, &[terminated(0), running]),
            "Running"
        );
        assert_eq!(phase("Never", false, true, &[]), "Failed");
        let mut backing_off = ContainerRecord::new("c", "i");
        backing_off.last_state = Some(match terminated(1).state {
            State::Terminated(t) => t,
            _ => unreachable!(),
        });
        backing_off.state = State::Waiting {
            reason: "CrashLoopBackOff".into(),
            message: None,
        };
        assert_eq!(phase("Always", true, false, &[backing_off]), "Running");
    }

    #[test]
    fn restart_policies() {
        assert!(will_restart("Always", 0));
        assert!(will_restart("OnFailure", 2));
        assert!(!will_restart("OnFailure", 0));
        assert!(!will_restart("Never", 1));
    }

    #[test]
    fn backoff_doubles_to_a_cap() {
        let (i, m) = (Duration::from_secs(10), Duration::from_secs(300));
        assert_eq!(backoff(1, i, m), Duration::from_secs(10));
        assert_eq!(backoff(2, i, m), Duration::from_secs(20));
        assert_eq!(backoff(5, i, m), Duration::from_secs(160));
        assert_eq!(backoff(6, i, m), Duration::from_secs(300));
        assert_eq!(backoff(60, i, m), Duration::from_secs(300));
    }

    #[test]
    fn conditions_keep_transition_times_and_mark_completion() {
        let previous =
            vec![json!({"type": "PodScheduled", "status": "True", "lastTransitionTime": "early"})];
        let cs = conditions(&previous, "Succeeded", true, &[terminated(0)], "now");
        let get = |t: &str| cs.iter().find(|c| c["type"] == t).unwrap().clone();
        assert_eq!(get("PodScheduled")["lastTransitionTime"], "early");
        assert_eq!(get("Ready")["status"], "False");
        assert_eq!(get("Ready")["reason"], "PodCompleted");
        assert_eq!(get("Initialized")["status"], "True");
    }

    #[test]
    fn container_status_json_has_kubernetes_shape() {
        let mut c = terminated(3);
        c.restart_count = 2;
        let s = &container_statuses(&[c], "uid")[0];
        assert_eq!(s["state"]["terminated"]["exitCode"], 3);
        assert_eq!(s["restartCount"], 2);
        assert_eq!(s["ready"], false);
        assert_eq!(s["lastState"], json!({}));
    }
}
