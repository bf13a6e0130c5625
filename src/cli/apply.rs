//! `skiff apply`: server-side apply, reporting created / configured / unchanged.

use kube::api::{Api, DynamicObject, Patch, PatchParams};

use super::manifest::{self, Manifest};
use super::printer::kind_name;
use super::resolve::{GroupVersionCache, ResourceInfo};
use super::session::Session;
use super::{ApplyArgs, CliError, ClientArgs, DryRun, object_error};

pub async fn run(client_args: &ClientArgs, args: &ApplyArgs) -> Result<(), CliError> {
    let manifests = manifest::read_all(&args.filenames)?;
    if manifests.is_empty() {
        return Err(CliError::NoObjects("apply"));
    }
    let session = Session::connect(client_args).await?;
    let mut kinds = GroupVersionCache::new(session.client.clone());
    let dry_run = args.dry_run == Some(DryRun::Server);
    let mut params = PatchParams::apply(&args.field_manager);
    params.force = args.force_conflicts;
    params.dry_run = dry_run;

    let mut failed = 0;
    for m in &manifests {
        match apply_one(&session, &mut kinds, &params, m).await {
            Ok(line) => println!("{line}{}", if dry_run { " (server dry run)" } else { "" }),
            Err(message) => {
                eprintln!("{message}");
                failed += 1;
            }
        }
    }
    if failed > 0 {
        return Err(CliError::Failed { failed });
    }
    Ok(())
}

/// Applies one object; `Ok` is the success line, `Err` the error to print.
async fn apply_one(
    session: &Session,
    kinds: &mut GroupVersionCache,
    params: &PatchParams,
    m: &Manifest,
) -> Result<String, String> {
    let info = kinds
        .find(m.api_version(), m.kind())
        .await
        .map_err(|e| object_error(&e))?
        .ok_or_else(|| {
            format!(
                "error: resource mapping not found for name: \"{}\" namespace: \"{}\" from \"{}\": no matches for kind \"{}\" in version \"{}\"\nensure CRDs are installed first",
                m.name(),
                m.namespace(),
                m.source,
                m.kind(),
                m.api_version()
            )
        })?;
    let name = m.name();
    if name.is_empty() {
        return Err(format!(
            "error: error when applying \"{}\": {} has no metadata.name (server-side apply needs one)",
            m.source,
            info.kind_group()
        ));
    }
    let namespace = target_namespace(session, &info, m)?;
    let api: Api<DynamicObject> = match &namespace {
        Some(ns) => Api::namespaced_with(session.client.clone(), ns, &info.api_resource()),
        None => Api::all_with(session.client.clone(), &info.api_resource()),
    };
    let before = api
        .get_opt(name)
        .await
        .map_err(|e| with_source(&e, "retrieving current configuration of", &m.source))?;
    let after = api
        .patch(name, params, &Patch::Apply(&m.object))
        .await
        .map_err(|e| {
            let mut message = with_source(&e, "applying", &m.source);
            if matches!(&e, kube::Error::Api(s) if s.code == 409) {
                message.push_str(CONFLICT_HINT);
            }
            message
        })?;
    let verb = match before {
        None => "created",
        Some(before) if unchanged(&before, &after) => "unchanged",
        Some(_) => "configured",
    };
    Ok(format!("{} {verb}", kind_name(&info.kind_group(), name)))
}

/// Printed after an apply conflict.
const CONFLICT_HINT: &str = "\nOther field managers own the fields listed above. To take them over, re-run with \
--force-conflicts; to leave them to their managers, remove them from the manifest (or set \
them to the current values to share ownership).";

/// Whether an apply left the object as it was: the same resourceVersion, or (for
/// servers that write a new revision even for a no-op apply) the same content apart
/// from resourceVersion and managedFields timestamps.
fn unchanged(before: &DynamicObject, after: &DynamicObject) -> bool {
    if before.metadata.resource_version == after.metadata.resource_version {
        return true;
    }
    let normalize = |o: &DynamicObject| {
        let mut o = o.clone();
        o.metadata.resource_version = None;
        for entry in o.metadata.managed_fields.iter_mut().flatten() {
            entry.time = None;
        }
        serde_json::to_value(&o).ok()
    };
    let (b, a) = (normalize(before), normalize(after));
    b.is_some() && b == a
}

/// The namespace an object goes to: its own, else `-n`, else the context's; `None` for
/// cluster-scoped kinds. Like kubectl, an object naming a namespace other than an
/// explicit `-n` is an error.
fn target_namespace(
    session: &Session,
    info: &ResourceInfo,
    m: &Manifest,
) -> Result<Option<String>, String> {
    if !info.namespaced {
        return Ok(None);
    }
    let own = m.namespace();
    if own.is_empty() {
        return Ok(Some(session.namespace.clone()));
    }
    if session.namespace_explicit && own != session.namespace {
        return Err(format!(
            "error: the namespace from the provided object \"{own}\" does not match the namespace \"{}\". You must pass '--namespace={own}' to perform this operation.",
            session.namespace
        ));
    }
    Ok(Some(own.to_string()))
}

/// A per-object error naming the manifest it came from, as kubectl reports them:
/// `Error from server (Invalid): error when applying "web.yaml": <message>`.
fn with_source(err: &kube::Error, verb: &str, source: &str) -> String {
    match err {
        kube::Error::Api(status) => {
            let mut status = (**status).clone();
            status.message = format!("error when {verb} \"{source}\": {}", status.message);
            super::server_error(&status)
        }
        other => format!(
            "error: error when {verb} \"{source}\": {}",
            object_error(other).trim_start_matches("error: ")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(rv: &str, time: &str, data: &str) -> DynamicObject {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": "x",
                "resourceVersion": rv,
                "managedFields": [{"manager": "skiff", "operation": "Apply", "time": time}]
            },
            "data": {"k": data}
        }))
        .unwrap()
    }

    #[test]
    fn unchanged_detection() {
        let a = object("5", "2024-01-01T00:00:00Z", "v");
        assert!(unchanged(&a, &a.clone()));
        assert!(unchanged(&a, &object("6", "2024-01-01T00:00:09Z", "v")));
        assert!(!unchanged(&a, &object("6", "2024-01-01T00:00:09Z", "w")));
    }
}
