//! Leader election for the workload controllers, through a coordination.k8s.io Lease
//! (`kube-system/skiff-controller-manager`) as kube-controller-manager does it. One server
//! runs today; the Lease makes the controllers safe to run from several servers sharing a
//! datastore later.
//!
//! The holder identity is the host name, so a server restarted on the same host takes its
//! lease back at once instead of waiting for it to expire.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::api::error::Reason;
use crate::api::objects::{Objects, WriteOptions};
use crate::api::resources::by_plural;

const NAMESPACE: &str = "kube-system";
const NAME: &str = "skiff-controller-manager";
const MANAGER: &str = "skiff-controller-manager";
/// How long a lease holds without renewal (kube-controller-manager: 15 s).
const LEASE_SECONDS: i64 = 15;
/// How often the holder renews (kube-controller-manager: every 2 s before a 10 s deadline).
const RENEW: Duration = Duration::from_secs(5);

fn identity() -> String {
    std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_lowercase())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "skiff".to_string())
}

fn now() -> String {
    Utc::now().format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

/// Whether `lease` may be taken by `me` at `at`: it is ours, unheld, or expired.
pub fn can_take(lease: &Value, me: &str, at: DateTime<Utc>) -> bool {
    let spec = &lease["spec"];
    let holder = spec["holderIdentity"].as_str().unwrap_or_default();
    if holder.is_empty() || holder == me {
        return true;
    }
    let duration = spec["leaseDurationSeconds"]
        .as_i64()
        .unwrap_or(LEASE_SECONDS);
    match spec["renewTime"]
        .as_str()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
    {
        Some(renewed) => renewed.with_timezone(&Utc) + chrono::Duration::seconds(duration) < at,
        None => true,
    }
}

/// Takes the lease (waiting while another server holds it) and keeps renewing it in the
/// background.
pub async fn acquire(objects: &Objects) {
    let me = identity();
    loop {
        match try_take(objects, &me).await {
            Ok(true) => break,
            Ok(false) => {}
            Err(error) => tracing::debug!(%error, "controller lease not taken yet"),
        }
        tokio::time::sleep(RENEW).await;
    }
    let objects = objects.clone();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(RENEW).await;
            match try_take(&objects, &me).await {
                Ok(true) => {}
                Ok(false) => tracing::error!("another server took the controller lease"),
                Err(error) => tracing::warn!(%error, "renewing the controller lease failed"),
            }
        }
    });
}

async fn try_take(objects: &Objects, me: &str) -> Result<bool, crate::api::error::ApiError> {
    let leases = by_plural("coordination.k8s.io", "v1", "leases").expect("leases are served");
    let taken = objects
        .modify(leases, NAMESPACE, NAME, None, MANAGER, |lease| {
            if !can_take(lease, me, Utc::now()) {
                return false;
            }
            let stamp = now();
            let spec = &mut lease["spec"];
            if spec["holderIdentity"] != me {
                let transitions = spec["leaseTransitions"].as_i64().unwrap_or(0);
                spec["leaseTransitions"] = json!(transitions + 1);
                spec["acquireTime"] = json!(stamp);
                spec["holderIdentity"] = json!(me);
            }
            spec["leaseDurationSeconds"] = json!(LEASE_SECONDS);
            spec["renewTime"] = json!(stamp);
            true
        })
        .await;
    match taken {
        Ok(written) => Ok(written.is_some()),
        Err(e) if e.reason == Reason::NotFound => {
            let stamp = now();
            let lease = json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                "metadata": {"name": NAME, "namespace": NAMESPACE},
                "spec": {"holderIdentity": me, "leaseDurationSeconds": LEASE_SECONDS,
                    "acquireTime": stamp, "renewTime": stamp, "leaseTransitions": 0}});
            match objects
                .create(leases, NAMESPACE, lease, &WriteOptions::controller(MANAGER))
                .await
            {
                Ok(_) => Ok(true),
                Err(e) if e.reason == Reason::AlreadyExists => Ok(false),
                Err(e) => Err(e),
            }
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lease_is_taken_when_ours_unheld_or_expired() {
        let at = DateTime::parse_from_rfc3339("2026-01-01T00:01:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let lease = |holder: &str, renewed: &str| {
            json!({"spec": {"holderIdentity": holder, "renewTime": renewed,
                "leaseDurationSeconds": 15}})
        };
        assert!(can_take(&lease("me", "2026-01-01T00:00:59Z"), "me", at));
        assert!(can_take(&lease("", "2026-01-01T00:00:59Z"), "me", at));
        assert!(!can_take(&lease("other", "2026-01-01T00:00:50Z"), "me", at));
        assert!(can_take(&lease("other", "2026-01-01T00:00:30Z"), "me", at));
    }
}
