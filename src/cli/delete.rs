//! `skiff delete`: by name, by selector or `--all`, or by manifest.

use kube::api::{Api, DeleteParams, DynamicObject, PropagationPolicy};
use serde_json::Value;

use super::get::{self, Request};
use super::manifest;
use super::request::{self, ACCEPT_JSON};
use super::resolve::{self, GroupVersionCache, ResourceInfo};
use super::session::Session;
use super::{Cascade, CliError, ClientArgs, DeleteArgs, DryRun, object_error};

/// One object to delete.
struct Target {
    info: ResourceInfo,
    namespace: Option<String>,
    name: String,
    /// The manifest it came from, for error messages.
    source: Option<String>,
}

pub async fn run(client_args: &ClientArgs, args: &DeleteArgs) -> Result<(), CliError> {
    let from_files = !args.filenames.is_empty();
    if from_files && (args.kind.is_some() || args.all || args.selector.is_some()) {
        return Err(CliError::Usage(
            "pass either -f FILE or resource types and names, not both".into(),
        ));
    }
    let Some(kind) = args.kind.as_deref().filter(|_| !from_files) else {
        if !from_files {
            return Err(CliError::Usage(
                "You must provide one or more resources by argument or filename.".into(),
            ));
        }
        return delete_manifests(client_args, args).await;
    };
    let selecting = args.all || args.selector.is_some();
    if args.names.is_empty() && !kind.contains('/') && !selecting {
        return Err(CliError::Usage(
            "resource(s) were provided, but no name was specified".into(),
        ));
    }
    if selecting && (!args.names.is_empty() || kind.contains('/')) {
        return Err(CliError::Usage(
            "name cannot be provided when a selector or --all is specified".into(),
        ));
    }

    let session = Session::connect(client_args).await?;
    let resolver = resolve::discover(&session.client)
        .await
        .map_err(|e| session.error(e))?;
    let requests = get::requests(&resolver, kind, &args.names)?;
    let namespace = (!args.all_namespaces).then(|| session.namespace.clone());
    let mut failed = 0;
    let mut targets = Vec::new();
    for Request { info, names } in requests {
        let ns_for = |info: &ResourceInfo, ns: Option<String>| ns.filter(|_| info.namespaced);
        match names {
            Some(names) => targets.extend(names.into_iter().map(|name| Target {
                namespace: ns_for(&info, Some(session.namespace.clone())),
                info: info.clone(),
                name,
                source: None,
            })),
            None => {
                let path = get::url_path(&info, namespace.as_deref());
                let lp = get::list_params(args.selector.as_deref(), None);
                let list = request::list(&session.client, &path, &lp, ACCEPT_JSON)
                    .await
                    .map_err(|e| session.error(e))?;
                for item in list
                    .get("items")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    let meta = |f: &str| {
                        item.pointer(&format!("/metadata/{f}"))
                            .and_then(Value::as_str)
                            .filter(|s| !s.is_empty())
                            .map(str::to_string)
                    };
                    if let Some(name) = meta("name") {
                        targets.push(Target {
                            namespace: ns_for(&info, meta("namespace")),
                            info: info.clone(),
                            name,
                            source: None,
                        });
                    }
                }
            }
        }
    }
    if selecting && targets.is_empty() {
        // kubectl says this on stdout, without the namespace.
        println!("No resources found");
        return Ok(());
    }
    for target in &targets {
        if let Err(message) = delete_one(&session, args, target).await {
            eprintln!("{message}");
            failed += 1;
        }
    }
    finish(failed)
}

async fn delete_manifests(client_args: &ClientArgs, args: &DeleteArgs) -> Result<(), CliError> {
    let manifests = manifest::read_all(&args.filenames)?;
    if manifests.is_empty() {
        return Err(CliError::NoObjects("delete"));
    }
    let session = Session::connect(client_args).await?;
    let mut kinds = GroupVersionCache::new(session.client.clone());
    let mut failed = 0;
    for m in &manifests {
        let info = match kinds.find(m.api_version(), m.kind()).await {
            Ok(Some(info)) => info,
            Ok(None) => {
                eprintln!(
                    "error: resource mapping not found for name: \"{}\" namespace: \"{}\" from \"{}\": no matches for kind \"{}\" in version \"{}\"\nensure CRDs are installed first",
                    m.name(),
                    m.namespace(),
                    m.source,
                    m.kind(),
                    m.api_version()
                );
                failed += 1;
                continue;
            }
            Err(e) => {
                eprintln!("{}", object_error(&e));
                failed += 1;
                continue;
            }
        };
        let namespace = info.namespaced.then(|| {
            Some(m.namespace())
                .filter(|ns| !ns.is_empty())
                .unwrap_or(&session.namespace)
                .to_string()
        });
        let target = Target {
            info,
            namespace,
            name: m.name().to_string(),
            source: Some(m.source.clone()),
        };
        if let Err(message) = delete_one(&session, args, &target).await {
            eprintln!("{message}");
            failed += 1;
        }
    }
    finish(failed)
}

fn finish(failed: usize) -> Result<(), CliError> {
    if failed > 0 {
        Err(CliError::Failed { failed })
    } else {
        Ok(())
    }
}

/// The DeleteOptions for the command line: propagation from `--cascade`, dry run.
fn delete_params(args: &DeleteArgs) -> DeleteParams {
    DeleteParams {
        propagation_policy: Some(match args.cascade {
            Cascade::Background => PropagationPolicy::Background,
            Cascade::Foreground => PropagationPolicy::Foreground,
            Cascade::Orphan => PropagationPolicy::Orphan,
        }),
        dry_run: args.dry_run == Some(DryRun::Server),
        ..DeleteParams::default()
    }
}

async fn delete_one(session: &Session, args: &DeleteArgs, target: &Target) -> Result<(), String> {
    if target.name.is_empty() {
        return Err(format!(
            "error: a {} without metadata.name cannot be deleted",
            target.info.kind_group()
        ));
    }
    let ar = target.info.api_resource();
    let api: Api<DynamicObject> = match &target.namespace {
        Some(ns) => Api::namespaced_with(session.client.clone(), ns, &ar),
        None => Api::all_with(session.client.clone(), &ar),
    };
    match api.delete(&target.name, &delete_params(args)).await {
        Ok(_) => {
            println!(
                "{} \"{}\" deleted{}",
                target.info.kind_group(),
                target.name,
                if args.dry_run == Some(DryRun::Server) {
                    " (server dry run)"
                } else {
                    ""
                }
            );
            Ok(())
        }
        Err(kube::Error::Api(status)) if status.code == 404 && args.ignore_not_found => Ok(()),
        Err(kube::Error::Api(status)) if target.source.is_some() => {
            let mut status = (*status).clone();
            let source = target.source.as_deref().unwrap_or_default();
            status.message = format!("error when deleting \"{source}\": {}", status.message);
            Err(super::server_error(&status))
        }
        Err(e) => Err(object_error(&e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn args(cascade: Cascade, dry_run: Option<DryRun>) -> DeleteArgs {
        DeleteArgs {
            kind: Some("deploy".into()),
            names: vec!["web".into()],
            filenames: Vec::<PathBuf>::new(),
            cascade,
            all: false,
            all_namespaces: false,
            selector: None,
            ignore_not_found: false,
            dry_run,
        }
    }

    #[test]
    fn cascade_maps_to_propagation_policy() {
        let p = delete_params(&args(Cascade::Foreground, None));
        assert!(matches!(
            p.propagation_policy,
            Some(PropagationPolicy::Foreground)
        ));
        assert!(!p.dry_run);
        let p = delete_params(&args(Cascade::Orphan, Some(DryRun::Server)));
        assert!(matches!(
            p.propagation_policy,
            Some(PropagationPolicy::Orphan)
        ));
        assert!(p.dry_run);
        let p = delete_params(&args(Cascade::Background, Some(DryRun::None)));
        assert!(matches!(
            p.propagation_policy,
            Some(PropagationPolicy::Background)
        ));
        assert!(!p.dry_run);
    }
}
