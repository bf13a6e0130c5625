//! The local volume provisioner: binds every PersistentVolumeClaim to a PersistentVolume of
//! its own, a directory under `DATA/volumes/` (created here, preopened into Wasm guests by the
//! node), and deletes volume and directory when a claim whose volume has reclaim policy
//! Delete goes away.

use std::path::PathBuf;
use std::sync::Arc;

use serde_json::{Value, json};

use super::informer::{Cache, Informers, uid};
use super::runner::{self, Action, Queue};
use super::writes;
use crate::api::error::{ApiError, Reason};
use crate::api::objects::{Objects, WriteOptions};
use crate::api::resources::{Resource, by_plural};
use crate::store::ObjectKey;

const MANAGER: &str = "persistentvolume-controller";
/// The storage class skiff's provisioner answers to (and the default for claims naming none).
pub const STORAGE_CLASS: &str = "local";

struct Ctx {
    objects: Objects,
    claims: Arc<Cache>,
    volumes: Arc<Cache>,
    pvc_resource: &'static Resource,
    pv_resource: &'static Resource,
    root: PathBuf,
}

/// The PersistentVolume name for a claim: Kubernetes' dynamic provisioners use `pvc-<uid>`.
fn volume_name(claim: &Value) -> String {
    format!("pvc-{}", uid(claim))
}

/// Registers the provisioner; volumes live under `data_dir/volumes`.
pub fn register(objects: &Objects, informers: &mut Informers, data_dir: PathBuf) {
    let pvc_resource = by_plural("", "v1", "persistentvolumeclaims").expect("pvcs are served");
    let pv_resource = by_plural("", "v1", "persistentvolumes").expect("pvs are served");
    let queue = Queue::default();
    let claims = informers.queue_changes(pvc_resource, &queue);
    {
        // A volume whose claim is gone is looked at through its claim's key.
        let queue = queue.clone();
        informers.on(pv_resource, move |change| {
            let claim = &change.object["spec"]["claimRef"];
            if let (Some(ns), Some(name)) = (claim["namespace"].as_str(), claim["name"].as_str()) {
                queue.add(ObjectKey::new(&pvc_resource.store_key(), ns, name));
            }
        });
    }
    let ctx = Arc::new(Ctx {
        objects: objects.clone(),
        claims: claims.clone(),
        volumes: informers.cache(pv_resource),
        pvc_resource,
        pv_resource,
        root: data_dir.join("volumes"),
    });
    runner::start(MANAGER, queue, 2, ctx, claims, |ctx, key| async move {
        reconcile(&ctx, &key).await
    });
}

async fn reconcile(ctx: &Ctx, key: &ObjectKey) -> Result<Action, ApiError> {
    let claim = ctx.claims.get(&key.namespace, &key.name);
    // Volumes bound to this claim name whose claim is gone (or is another one now).
    for volume in ctx.volumes.list(None) {
        let claim_ref = &volume["spec"]["claimRef"];
        if claim_ref["namespace"] != key.namespace.as_str()
            || claim_ref["name"] != key.name.as_str()
        {
            continue;
        }
        let current = claim.as_ref().is_some_and(|c| claim_ref["uid"] == uid(c));
        if !current {
            release(ctx, &volume).await?;
        }
    }
    let Some(claim) = claim else {
        return Ok(Action::AwaitChange);
    };
    if claim["status"]["phase"] == "Bound" || super::informer::is_deleting(&claim) {
        return Ok(Action::AwaitChange);
    }
    let class = claim["spec"]["storageClassName"]
        .as_str()
        .unwrap_or(STORAGE_CLASS);
    if class != STORAGE_CLASS {
        return Ok(Action::AwaitChange);
    }
    let name = volume_name(&claim);
    let path = ctx.root.join(&name);
    std::fs::create_dir_all(&path)
        .map_err(|e| ApiError::internal(format!("creating {}: {e}", path.display())))?;
    let storage = claim["spec"]["resources"]["requests"]["storage"].clone();
    let access = claim["spec"]["accessModes"].clone();
    if ctx.volumes.get("", &name).is_none() {
        let volume = json!({"apiVersion": "v1", "kind": "PersistentVolume",
            "metadata": {"name": name, "annotations": {"pv.kubernetes.io/provisioned-by": "skiff.dev/local"}},
            "spec": {"capacity": {"storage": storage}, "accessModes": access,
                "persistentVolumeReclaimPolicy": "Delete", "storageClassName": STORAGE_CLASS,
                "hostPath": {"path": path.to_string_lossy(), "type": "Directory"},
                "claimRef": {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                    "namespace": key.namespace, "name": key.name, "uid": uid(&claim)}}});
        match ctx
            .objects
            .create(
                ctx.pv_resource,
                "",
                volume,
                &WriteOptions::controller(MANAGER),
            )
            .await
        {
            Ok(written) => {
                ctx.volumes.observe(written.object.clone());
                let bound = json!({"phase": "Bound"});
                writes::write_status(&ctx.objects, &ctx.volumes, &written.object, &bound, MANAGER)
                    .await?;
            }
            Err(e) if e.reason == Reason::AlreadyExists => {}
            Err(e) => return Err(e),
        }
    }
    let claim_uid = uid(&claim).to_string();
    let volume = name.clone();
    if let Some(updated) = ctx
        .objects
        .modify(
            ctx.pvc_resource,
            &key.namespace,
            &key.name,
            None,
            MANAGER,
            |c| {
                if uid(c) != claim_uid || c["spec"]["volumeName"] == volume.as_str() {
                    return false;
                }
                c["spec"]["volumeName"] = json!(volume);
                true
            },
        )
        .await?
    {
        ctx.claims.observe(updated);
    }
    let claim = ctx.claims.get(&key.namespace, &key.name).unwrap_or(claim);
    let bound = json!({"phase": "Bound", "accessModes": access, "capacity": {"storage": storage}});
    writes::write_status(&ctx.objects, &ctx.claims, &claim, &bound, MANAGER).await?;
    Ok(Action::AwaitChange)
}

/// A volume's claim is gone: with reclaim policy Delete the volume and its directory go;
/// otherwise it is marked Released and kept.
async fn release(ctx: &Ctx, volume: &Arc<Value>) -> Result<(), ApiError> {
    if volume["spec"]["persistentVolumeReclaimPolicy"] == "Delete" {
        if let Some(path) = volume["spec"]["hostPath"]["path"].as_str() {
            let path = PathBuf::from(path);
            // Only directories this provisioner made.
            if path.starts_with(&ctx.root) {
                let _ = std::fs::remove_dir_all(&path);
            }
        }
        writes::delete(&ctx.objects, &ctx.volumes, volume).await?;
    } else {
        let released = json!({"phase": "Released"});
        writes::write_status(&ctx.objects, &ctx.volumes, volume, &released, MANAGER).await?;
    }
    Ok(())
}
