//! `skiff get`: server-side tables, or objects as YAML/JSON/names.

use kube::Resource;
use kube::api::{DynamicObject, ListParams};
use serde_json::Value;

use super::printer::{self, Table, TableOptions};
use super::request::{self, ACCEPT_JSON, ACCEPT_TABLE};
use super::resolve::{self, Resolver, ResourceInfo};
use super::session::Session;
use super::{CliError, ClientArgs, GetArgs, OutputFormat, object_error};

/// What to fetch of one resource type: everything (`None`) or the named objects.
pub(super) struct Request {
    pub info: ResourceInfo,
    pub names: Option<Vec<String>>,
}

/// Turns `KIND [NAME...]` (or `TYPE/NAME...`) into per-type requests.
pub(super) fn requests(
    resolver: &Resolver,
    kind: &str,
    names: &[String],
) -> Result<Vec<Request>, CliError> {
    if kind.contains('/') {
        let mut out: Vec<Request> = Vec::new();
        for arg in std::iter::once(kind).chain(names.iter().map(String::as_str)) {
            let Some((ty, name)) = arg
                .split_once('/')
                .filter(|(t, n)| !t.is_empty() && !n.is_empty())
            else {
                return Err(CliError::Usage(format!(
                    "there is no need to specify a resource type as a separate argument when passing arguments in resource/name form (e.g. 'skiff get resource/<resource_name>' instead of 'skiff get resource resource/<resource_name>'): {arg}"
                )));
            };
            let infos = resolver.resolve(ty)?;
            let [info] = <[ResourceInfo; 1]>::try_from(infos).map_err(|_| {
                CliError::Usage(format!("\"{ty}\" names several resource types; name one"))
            })?;
            match out.iter_mut().find(|r| r.info == info) {
                Some(r) => r.names.get_or_insert_with(Vec::new).push(name.to_string()),
                None => out.push(Request {
                    info,
                    names: Some(vec![name.to_string()]),
                }),
            }
        }
        return Ok(out);
    }
    let names = (!names.is_empty()).then(|| names.to_vec());
    Ok(resolver
        .resolve_list(kind)?
        .into_iter()
        .map(|info| Request {
            info,
            names: names.clone(),
        })
        .collect())
}

/// The collection URL for `info` in `namespace` (`None`: all namespaces / cluster-scoped).
pub(super) fn url_path(info: &ResourceInfo, namespace: Option<&str>) -> String {
    let ns = if info.namespaced { namespace } else { None };
    DynamicObject::url_path(&info.api_resource(), ns)
}

pub(super) fn list_params(selector: Option<&str>, field_selector: Option<&str>) -> ListParams {
    let mut lp = ListParams::default();
    if let Some(s) = selector {
        lp = lp.labels(s);
    }
    if let Some(f) = field_selector {
        lp = lp.fields(f);
    }
    lp
}

/// `No resources found in NS namespace.` (or without the namespace when listing across
/// namespaces or cluster-scoped types).
pub(super) fn no_resources(namespace: Option<&str>) -> String {
    match namespace {
        Some(ns) => format!("No resources found in {ns} namespace."),
        None => "No resources found".to_string(),
    }
}

pub async fn run(client_args: &ClientArgs, args: &GetArgs) -> Result<(), CliError> {
    let session = Session::connect(client_args).await?;
    let resolver = resolve::discover(&session.client)
        .await
        .map_err(|e| session.error(e))?;
    let requests = requests(&resolver, &args.kind, &args.names)?;
    if args.all_namespaces && requests.iter().any(|r| r.names.is_some()) {
        return Err(CliError::Usage(
            "a resource cannot be retrieved by name across all namespaces".into(),
        ));
    }
    let namespace = (!args.all_namespaces).then_some(session.namespace.as_str());
    let lp = list_params(args.selector.as_deref(), args.field_selector.as_deref());
    let mut errors: Vec<String> = Vec::new();

    match args.output {
        None | Some(OutputFormat::Wide) => {
            let multiple = requests.len() > 1;
            let mut printed_any = false;
            for req in &requests {
                let table = fetch_table(&session, req, namespace, &lp, &mut errors).await?;
                if table.rows.is_empty() {
                    continue;
                }
                let kind_group = req.info.kind_group();
                let opts = TableOptions {
                    wide: args.output == Some(OutputFormat::Wide),
                    with_namespace: args.all_namespaces && req.info.namespaced,
                    kind_prefix: multiple.then_some(kind_group.as_str()),
                    no_headers: args.no_headers,
                };
                if printed_any {
                    println!();
                }
                print!("{}", printer::render_table(&table, &opts));
                printed_any = true;
            }
            if !printed_any && errors.is_empty() {
                let all_cluster = requests.iter().all(|r| !r.info.namespaced);
                eprintln!("{}", no_resources(namespace.filter(|_| !all_cluster)));
            }
        }
        Some(format) => {
            let mut objects = Vec::new();
            for req in &requests {
                objects.extend(
                    fetch_objects(&session, req, namespace, &lp, &mut errors)
                        .await?
                        .into_iter()
                        .map(|o| (req.info.kind_group(), o)),
                );
            }
            let single =
                requests.len() == 1 && requests[0].names.as_ref().is_some_and(|n| n.len() == 1);
            match format {
                OutputFormat::Name => {
                    for (kind_group, o) in &objects {
                        let name = o
                            .pointer("/metadata/name")
                            .and_then(Value::as_str)
                            .unwrap_or("");
                        println!("{}", printer::kind_name(kind_group, name));
                    }
                }
                _ => {
                    let mut objects: Vec<Value> = objects
                        .into_iter()
                        .map(|(_, o)| printer::for_output(o))
                        .collect();
                    // A single named object is printed on its own, anything else as a List
                    // (unless the only object asked for wasn't found).
                    let value = if single {
                        objects.pop()
                    } else {
                        Some(printer::for_output(printer::list_of(objects)))
                    };
                    if let Some(value) = value {
                        let text = if format == OutputFormat::Json {
                            printer::to_json(&value)
                        } else {
                            printer::to_yaml(&value)
                        };
                        print!("{text}");
                    }
                }
            }
        }
    }
    for e in &errors {
        eprintln!("{e}");
    }
    if !errors.is_empty() {
        return Err(CliError::Failed {
            failed: errors.len(),
        });
    }
    Ok(())
}

/// The table for one request: one LIST, or one GET per name (not-found names go to
/// `errors`). Falls back to a NAME/AGE table when the server doesn't serve Tables.
async fn fetch_table(
    session: &Session,
    req: &Request,
    namespace: Option<&str>,
    lp: &ListParams,
    errors: &mut Vec<String>,
) -> Result<Table, CliError> {
    let path = url_path(&req.info, namespace);
    let responses = match &req.names {
        None => vec![
            request::list(&session.client, &path, lp, ACCEPT_TABLE)
                .await
                .map_err(|e| session.error(e))?,
        ],
        Some(names) => {
            let mut out = Vec::new();
            for name in names {
                match request::get(&session.client, &path, name, ACCEPT_TABLE).await {
                    Ok(v) => out.push(v),
                    Err(e) => errors.push(object_error(&e)),
                }
            }
            out
        }
    };
    let now = chrono::Utc::now();
    let mut table: Option<Table> = None;
    for response in responses {
        let part = match Table::from_value(&response) {
            Some(t) => t,
            None => Table::from_objects(&items_of(response), now),
        };
        match &mut table {
            None => table = Some(part),
            Some(t) => t.rows.extend(part.rows),
        }
    }
    Ok(table.unwrap_or_default())
}

/// The objects for one request, each with `apiVersion` and `kind` set.
async fn fetch_objects(
    session: &Session,
    req: &Request,
    namespace: Option<&str>,
    lp: &ListParams,
    errors: &mut Vec<String>,
) -> Result<Vec<Value>, CliError> {
    let path = url_path(&req.info, namespace);
    let mut objects = Vec::new();
    match &req.names {
        None => {
            let list = request::list(&session.client, &path, lp, ACCEPT_JSON)
                .await
                .map_err(|e| session.error(e))?;
            objects.extend(items_of(list));
        }
        Some(names) => {
            for name in names {
                match request::get(&session.client, &path, name, ACCEPT_JSON).await {
                    Ok(v) => objects.push(v),
                    Err(e) => errors.push(object_error(&e)),
                }
            }
        }
    }
    for o in &mut objects {
        if let Some(map) = o.as_object_mut() {
            map.entry("apiVersion")
                .or_insert_with(|| Value::String(req.info.api_version()));
            map.entry("kind")
                .or_insert_with(|| Value::String(req.info.kind.clone()));
        }
    }
    Ok(objects)
}

/// A list response's items, or a single object as a one-element list.
fn items_of(response: Value) -> Vec<Value> {
    match response {
        Value::Object(mut map) if map.contains_key("items") => match map.remove("items") {
            Some(Value::Array(items)) => items,
            _ => Vec::new(),
        },
        other => vec![other],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolver() -> Resolver {
        let r = ResourceInfo::new;
        Resolver::new(vec![
            r("", "v1", "Pod", "pods", "pod", &["po"], true, &["all"]),
            r(
                "",
                "v1",
                "Namespace",
                "namespaces",
                "namespace",
                &["ns"],
                false,
                &[],
            ),
            r(
                "apps",
                "v1",
                "Deployment",
                "deployments",
                "deployment",
                &["deploy"],
                true,
                &["all"],
            ),
        ])
    }

    #[test]
    fn kind_and_names() {
        let reqs = requests(&resolver(), "deploy", &["a".into(), "b".into()]).unwrap();
        assert_eq!(reqs.len(), 1);
        assert_eq!(
            reqs[0].names.as_deref(),
            Some(&["a".to_string(), "b".to_string()][..])
        );
        let reqs = requests(&resolver(), "all", &[]).unwrap();
        assert_eq!(reqs.len(), 2);
        assert!(reqs.iter().all(|r| r.names.is_none()));
    }

    #[test]
    fn type_slash_name_arguments_group_by_type() {
        let reqs = requests(
            &resolver(),
            "deploy/web",
            &["po/x".into(), "deployments.apps/api".into()],
        )
        .unwrap();
        assert_eq!(reqs.len(), 2);
        assert_eq!(reqs[0].info.plural, "deployments");
        assert_eq!(
            reqs[0].names.as_deref(),
            Some(&["web".to_string(), "api".to_string()][..])
        );
        assert_eq!(reqs[1].names.as_deref(), Some(&["x".to_string()][..]));
        assert!(requests(&resolver(), "deploy/web", &["plain".into()]).is_err());
        assert!(requests(&resolver(), "all/x", &[]).is_err());
        assert!(requests(&resolver(), "nope/x", &[]).is_err());
    }

    #[test]
    fn urls_and_messages() {
        let r = resolver();
        let deploy = &r.resolve("deploy").unwrap()[0];
        let ns = &r.resolve("ns").unwrap()[0];
        assert_eq!(
            url_path(deploy, Some("prod")),
            "/apis/apps/v1/namespaces/prod/deployments"
        );
        assert_eq!(url_path(deploy, None), "/apis/apps/v1/deployments");
        assert_eq!(url_path(ns, Some("prod")), "/api/v1/namespaces");
        assert_eq!(
            no_resources(Some("prod")),
            "No resources found in prod namespace."
        );
        assert_eq!(no_resources(None), "No resources found");
        assert_eq!(items_of(serde_json::json!({"items": [1, 2]})).len(), 2);
        assert_eq!(items_of(serde_json::json!({"kind": "Pod"})).len(), 1);
    }
}
