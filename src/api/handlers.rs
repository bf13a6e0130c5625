//! REST dispatch for `/api/...` and `/apis/...`: parses the path the way Kubernetes' request
//! info does, then answers each verb through the object service.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde_json::{Value, json};

use super::AppState;
use super::codec::{self, Accept};
use super::discovery;
use super::error::{ApiError, Reason};
use super::objects::{
    DeleteOptions, Deleted, FieldValidation, PatchBody, Propagation, WriteOptions,
};
use super::resources::{Resource, by_plural};
use super::selector::{FieldSelector, LabelSelector};
use super::table;
use super::watch;
use crate::node::container_status;

/// What a path under `/api` or `/apis` names.
#[derive(Debug)]
pub enum Target {
    /// `/api/v1`, `/apis/GROUP/VERSION`.
    GroupVersion { group: String, version: String },
    /// A collection: all namespaces (`namespace: None`) or one.
    Collection {
        resource: &'static Resource,
        namespace: Option<String>,
    },
    /// One object, or a subresource of it.
    Object {
        resource: &'static Resource,
        namespace: String,
        name: String,
        subresource: Option<String>,
    },
}

/// Parses a request path into a [`Target`]; None when nothing is served there.
pub fn parse_path(path: &str) -> Option<Target> {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (group, version, rest) = match segments.as_slice() {
        ["api", version, rest @ ..] => ("", *version, rest),
        ["apis", group, version, rest @ ..] => (*group, *version, rest),
        _ => return None,
    };
    let resource = |plural: &str| by_plural(group, version, plural);
    let object = |resource: &'static Resource, namespace: &str, name: &str, sub: Option<&str>| {
        (!name.is_empty()).then(|| Target::Object {
            resource,
            namespace: namespace.to_string(),
            name: name.to_string(),
            subresource: sub.map(str::to_string),
        })
    };
    match rest {
        [] => {
            discovery::resource_list(group, version)?;
            Some(Target::GroupVersion {
                group: group.to_string(),
                version: version.to_string(),
            })
        }
        [plural] => Some(Target::Collection {
            resource: resource(plural)?,
            namespace: None,
        }),
        ["namespaces", ns, plural, tail @ ..] if resource(plural).is_some_and(|r| r.namespaced) => {
            let r = resource(plural)?;
            match tail {
                [] => Some(Target::Collection {
                    resource: r,
                    namespace: Some(ns.to_string()),
                }),
                [name] => object(r, ns, name, None),
                [name, sub] if r.subresources.contains(sub) => object(r, ns, name, Some(sub)),
                _ => None,
            }
        }
        [plural, name] => {
            let r = resource(plural).filter(|r| !r.namespaced)?;
            object(r, "", name, None)
        }
        [plural, name, sub] => {
            let r = resource(plural).filter(|r| !r.namespaced && r.subresources.contains(sub))?;
            object(r, "", name, Some(sub))
        }
        _ => None,
    }
}

/// Query parameters, last value wins.
pub type Params = HashMap<String, String>;

fn params(uri: &Uri) -> Params {
    uri.query()
        .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
        .unwrap_or_default()
}

fn truthy(params: &Params, key: &str) -> bool {
    params.get(key).is_some_and(|v| v == "true" || v == "1")
}

fn write_options(params: &Params, headers: &HeaderMap) -> Result<WriteOptions, ApiError> {
    let dry_run = match params.get("dryRun").map(String::as_str) {
        None | Some("") => false,
        Some("All") => true,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "unsupported dryRun value {other:?}: supported values are \"All\""
            )));
        }
    };
    let field_manager = match params.get("fieldManager") {
        Some(m) if m.len() > 128 => {
            return Err(ApiError::bad_request(
                "fieldManager must be at most 128 characters",
            ));
        }
        Some(m) if !m.is_empty() => m.clone(),
        _ => headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|ua| ua.split('/').next().unwrap_or(ua).to_string())
            .filter(|m| !m.is_empty())
            .unwrap_or_else(|| "unknown".to_string()),
    };
    Ok(WriteOptions {
        dry_run,
        field_manager,
        field_validation: FieldValidation::parse(
            params.get("fieldValidation").map(String::as_str),
        )?,
    })
}

/// Parses `labelSelector` and `fieldSelector`, refusing field paths the kind does not support.
pub(super) fn selectors(
    resource: &Resource,
    params: &Params,
) -> Result<(LabelSelector, FieldSelector), ApiError> {
    let labels = LabelSelector::parse(
        params
            .get("labelSelector")
            .map(String::as_str)
            .unwrap_or(""),
    )
    .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let fields = FieldSelector::parse(
        params
            .get("fieldSelector")
            .map(String::as_str)
            .unwrap_or(""),
    )
    .map_err(|e| ApiError::bad_request(e.to_string()))?;
    for path in fields.paths() {
        if !resource.supports_field(path) {
            return Err(ApiError::bad_request(format!(
                "field label not supported: {path}"
            )));
        }
    }
    Ok((labels, fields))
}

/// The handler for everything under `/api` and `/apis`.
pub async fn dispatch(
    State(state): State<Arc<AppState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    match route(&state, &method, &uri, &headers, body).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

async fn route(
    state: &AppState,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let path = uri.path();
    let params = params(uri);
    let accept = codec::accept(headers);
    // Discovery roots.
    match path.trim_end_matches('/') {
        "/api" => {
            return Ok(discovery_response(
                headers,
                true,
                discovery::core_versions(&state.server_address),
            ));
        }
        "/apis" => return Ok(discovery_response(headers, false, discovery::group_list())),
        _ => {}
    }
    let target = parse_path(path).ok_or_else(|| {
        ApiError::new(
            Reason::NotFound,
            "the server could not find the requested resource",
        )
    })?;
    let objects = &state.objects;
    match target {
        Target::GroupVersion { group, version } => {
            if method != Method::GET {
                return Err(method_not_allowed());
            }
            let list = discovery::resource_list(&group, &version).expect("checked by parse_path");
            Ok(codec::respond(StatusCode::OK, &list, Accept::Json, &[]))
        }
        Target::Collection { resource, .. } if !resource.stored => {
            if *method != Method::POST {
                return Err(method_not_allowed());
            }
            let bytes = codec::read_body(body).await?;
            let value = codec::decode(headers, &bytes, objects.openapi().schemas())?;
            let answer = super::access::review(resource, value);
            Ok(codec::respond(StatusCode::CREATED, &answer, accept, &[]))
        }
        Target::Collection {
            resource,
            namespace,
        } => {
            let ns = namespace.as_deref();
            match *method {
                Method::GET if truthy(&params, "watch") => {
                    watch::serve(state, resource, ns, &params, accept).await
                }
                Method::GET => list(state, resource, ns, &params, accept).await,
                Method::POST => {
                    let ns = namespace_for_write(resource, ns)?;
                    let bytes = codec::read_body(body).await?;
                    let value = codec::decode(headers, &bytes, objects.openapi().schemas())?;
                    let opts = write_options(&params, headers)?;
                    let written = objects.create(resource, &ns, value, &opts).await?;
                    Ok(codec::respond(
                        StatusCode::CREATED,
                        &written.object,
                        accept,
                        &written.warnings,
                    ))
                }
                Method::DELETE => {
                    let bytes = codec::read_body(body).await?;
                    let options =
                        delete_options(headers, &bytes, &params, objects.openapi().schemas())?;
                    delete_collection(state, resource, ns, &params, &options, accept).await
                }
                _ => Err(method_not_allowed()),
            }
        }
        Target::Object { resource, .. } if !resource.stored => Err(method_not_allowed()),
        Target::Object {
            resource,
            namespace,
            name,
            subresource,
        } => {
            let sub = subresource.as_deref();
            match (method.clone(), sub) {
                (Method::GET, None) => {
                    let stored = objects.get(resource, &namespace, &name).await?;
                    Ok(one(resource, &stored.object, accept, &params))
                }
                (Method::GET, Some("status")) => {
                    let stored = objects.get(resource, &namespace, &name).await?;
                    Ok(codec::respond(StatusCode::OK, &stored.object, accept, &[]))
                }
                (Method::GET, Some("scale")) => {
                    let scale = objects.get_scale(resource, &namespace, &name).await?;
                    Ok(codec::respond(StatusCode::OK, &scale, accept, &[]))
                }
                (Method::GET, Some("log")) => {
                    logs(state, resource, &namespace, &name, &params).await
                }
                (Method::PUT, Some("scale")) => {
                    let bytes = codec::read_body(body).await?;
                    let value = codec::decode(headers, &bytes, objects.openapi().schemas())?;
                    let opts = write_options(&params, headers)?;
                    let scale = objects
                        .update_scale(resource, &namespace, &name, value, &opts)
                        .await?;
                    Ok(codec::respond(StatusCode::OK, &scale, accept, &[]))
                }
                (Method::PUT, sub @ (None | Some("status") | Some("finalize"))) => {
                    let bytes = codec::read_body(body).await?;
                    let value = codec::decode(headers, &bytes, objects.openapi().schemas())?;
                    let opts = write_options(&params, headers)?;
                    let written = objects
                        .update(resource, &namespace, &name, value, sub, &opts)
                        .await?;
                    Ok(codec::respond(
                        StatusCode::OK,
                        &written.object,
                        accept,
                        &written.warnings,
                    ))
                }
                (Method::PATCH, sub @ (None | Some("status") | Some("scale"))) => {
                    let bytes = codec::read_body(body).await?;
                    let opts = write_options(&params, headers)?;
                    let patch = patch_body(headers, &bytes, &params)?;
                    if matches!(patch, PatchBody::Apply(..))
                        && params.get("fieldManager").is_none_or(String::is_empty)
                    {
                        return Err(ApiError::bad_request(
                            "PATCH, application/apply-patch+yaml: fieldManager is required for apply requests",
                        ));
                    }
                    let written = objects
                        .patch(resource, &namespace, &name, patch, sub, &opts)
                        .await?;
                    Ok(codec::respond(
                        StatusCode::OK,
                        &written.object,
                        accept,
                        &written.warnings,
                    ))
                }
                (Method::POST, Some("binding")) => {
                    let bytes = codec::read_body(body).await?;
                    let value = codec::decode(headers, &bytes, objects.openapi().schemas())?;
                    let opts = write_options(&params, headers)?;
                    objects.bind(&namespace, &name, &value, &opts).await?;
                    let status = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201});
                    Ok(codec::respond(
                        StatusCode::CREATED,
                        &status,
                        Accept::Json,
                        &[],
                    ))
                }
                (Method::DELETE, None) => {
                    let bytes = codec::read_body(body).await?;
                    let options =
                        delete_options(headers, &bytes, &params, objects.openapi().schemas())?;
                    let deleted = objects
                        .delete(resource, &namespace, &name, &options)
                        .await?;
                    let body = delete_response(resource, &name, &deleted);
                    Ok(codec::respond(StatusCode::OK, &body, accept, &[]))
                }
                _ => Err(method_not_allowed()),
            }
        }
    }
}

/// What a DELETE answers, as Kubernetes' registry does: the object while it waits for
/// finalizers or grace; once gone, the object for kinds that return it (pods, services,
/// namespaces) and a success `Status` naming it for the rest.
fn delete_response(resource: &Resource, name: &str, deleted: &Deleted) -> Value {
    if !deleted.gone || matches!(resource.kind, "Pod" | "Service" | "Namespace") {
        return deleted.object.as_ref().clone();
    }
    let mut details = json!({
        "name": name,
        "kind": resource.plural,
        "uid": deleted.object.pointer("/metadata/uid").cloned().unwrap_or(Value::Null),
    });
    if !resource.group.is_empty() {
        details["group"] = json!(resource.group);
    }
    json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "details": details,
    })
}

fn method_not_allowed() -> ApiError {
    ApiError::new(
        Reason::MethodNotAllowed,
        "the server does not allow this method on the requested resource",
    )
}

fn namespace_for_write(resource: &Resource, ns: Option<&str>) -> Result<String, ApiError> {
    match (resource.namespaced, ns) {
        (true, Some(ns)) => Ok(ns.to_string()),
        (true, None) => Err(ApiError::new(
            Reason::MethodNotAllowed,
            format!(
                "{} must be created in a namespace: POST to /api(s)/.../namespaces/NAMESPACE/{}",
                resource.plural, resource.plural
            ),
        )),
        (false, _) => Ok(String::new()),
    }
}

fn discovery_response(headers: &HeaderMap, core: bool, plain: Value) -> Response {
    if discovery::wants_aggregated(headers) {
        let mut response =
            (StatusCode::OK, discovery::aggregated(core).to_string()).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(discovery::AGGREGATED_CONTENT_TYPE),
        );
        return response;
    }
    codec::respond(StatusCode::OK, &plain, Accept::Json, &[])
}

/// One object, as JSON/YAML or as a one-row Table.
fn one(resource: &Resource, object: &Value, accept: Accept, params: &Params) -> Response {
    if accept == Accept::Table {
        let rv = object
            .pointer("/metadata/resourceVersion")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let include = params
            .get("includeObject")
            .map(String::as_str)
            .unwrap_or("Metadata");
        let t = table::table(
            resource.group,
            resource.kind,
            std::slice::from_ref(object),
            rv,
            None,
            include,
            Utc::now(),
        );
        return codec::respond(StatusCode::OK, &t, Accept::Json, &[]);
    }
    codec::respond(StatusCode::OK, object, accept, &[])
}

fn parse_limit(params: &Params) -> Result<Option<usize>, ApiError> {
    match params.get("limit").map(String::as_str) {
        None | Some("") | Some("0") => Ok(None),
        Some(l) => l
            .parse::<usize>()
            .map(Some)
            .map_err(|_| ApiError::bad_request(format!("invalid limit {l:?}"))),
    }
}

async fn list(
    state: &AppState,
    resource: &'static Resource,
    namespace: Option<&str>,
    params: &Params,
    accept: Accept,
) -> Result<Response, ApiError> {
    let (labels, fields) = selectors(resource, params)?;
    let limit = parse_limit(params)?;
    let token = params
        .get("continue")
        .map(String::as_str)
        .filter(|s| !s.is_empty());
    let listed = state
        .objects
        .list(resource, namespace, &labels, &fields, limit, token)
        .await?;
    let rv = listed.revision.to_string();
    if accept == Accept::Table {
        let include = params
            .get("includeObject")
            .map(String::as_str)
            .unwrap_or("Metadata");
        let objects: Vec<Value> = listed.items.iter().map(|o| o.as_ref().clone()).collect();
        let t = table::table(
            resource.group,
            resource.kind,
            &objects,
            &rv,
            listed.continue_token.as_deref(),
            include,
            Utc::now(),
        );
        return Ok(codec::respond(StatusCode::OK, &t, Accept::Json, &[]));
    }
    let mut metadata = json!({"resourceVersion": rv});
    if let Some(c) = &listed.continue_token {
        metadata["continue"] = json!(c);
    }
    let body = json!({
        "kind": format!("{}List", resource.kind),
        "apiVersion": resource.api_version(),
        "metadata": metadata,
        "items": listed.items,
    });
    Ok(codec::respond(StatusCode::OK, &body, accept, &[]))
}

async fn delete_collection(
    state: &AppState,
    resource: &'static Resource,
    namespace: Option<&str>,
    params: &Params,
    options: &DeleteOptions,
    accept: Accept,
) -> Result<Response, ApiError> {
    let (labels, fields) = selectors(resource, params)?;
    let listed = state
        .objects
        .list(resource, namespace, &labels, &fields, None, None)
        .await?;
    let mut items = Vec::new();
    for object in listed.items {
        let ns = object
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let name = super::objects::name_of(&object);
        match state.objects.delete(resource, ns, name, options).await {
            Ok(deleted) => items.push(deleted.object),
            Err(e) if e.reason == Reason::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    let body = json!({
        "kind": format!("{}List", resource.kind),
        "apiVersion": resource.api_version(),
        "metadata": {"resourceVersion": state.objects.store().revision().to_string()},
        "items": items,
    });
    Ok(codec::respond(StatusCode::OK, &body, accept, &[]))
}

fn delete_options(
    headers: &HeaderMap,
    bytes: &[u8],
    params: &Params,
    schemas: &serde_json::Map<String, Value>,
) -> Result<DeleteOptions, ApiError> {
    let body = if bytes.iter().all(u8::is_ascii_whitespace) {
        Value::Null
    } else {
        codec::decode(headers, bytes, schemas)?
    };
    let field = |name: &str| -> Option<Value> {
        params
            .get(name)
            .map(|v| json!(v))
            .or_else(|| body.get(name).cloned().filter(|v| !v.is_null()))
    };
    let propagation = match field("propagationPolicy").as_ref().and_then(Value::as_str) {
        None => match field("orphanDependents") {
            Some(v) if v == json!(true) || v == json!("true") => Some(Propagation::Orphan),
            _ => None,
        },
        Some("Orphan") => Some(Propagation::Orphan),
        Some("Background") => Some(Propagation::Background),
        Some("Foreground") => Some(Propagation::Foreground),
        Some(other) => {
            return Err(ApiError::new(
                Reason::Invalid,
                format!(
                    "propagationPolicy: Unsupported value: \"{other}\": supported values: \"Foreground\", \"Background\", \"Orphan\""
                ),
            ));
        }
    };
    let grace_period = match field("gracePeriodSeconds") {
        None => None,
        Some(Value::Number(n)) => n.as_i64(),
        Some(Value::String(s)) => Some(
            s.parse()
                .map_err(|_| ApiError::bad_request(format!("invalid gracePeriodSeconds {s:?}")))?,
        ),
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "invalid gracePeriodSeconds {other}"
            )));
        }
    };
    if grace_period.is_some_and(|g| g < 0) {
        return Err(ApiError::new(
            Reason::Invalid,
            "gracePeriodSeconds: Invalid value: must be >= 0",
        ));
    }
    let dry_run = match field("dryRun") {
        None => false,
        Some(Value::String(s)) => s == "All",
        Some(Value::Array(a)) => a.iter().any(|v| v == "All"),
        Some(_) => false,
    };
    Ok(DeleteOptions {
        propagation,
        grace_period,
        uid: body
            .pointer("/preconditions/uid")
            .and_then(Value::as_str)
            .map(String::from),
        resource_version: body
            .pointer("/preconditions/resourceVersion")
            .and_then(Value::as_str)
            .map(String::from),
        dry_run,
    })
}

fn patch_body(headers: &HeaderMap, bytes: &[u8], params: &Params) -> Result<PatchBody, ApiError> {
    let ct = codec::content_type(headers);
    let json = |bytes: &[u8]| -> Result<Value, ApiError> {
        serde_json::from_slice(bytes)
            .map_err(|e| ApiError::bad_request(format!("the patch is not valid JSON: {e}")))
    };
    match ct.as_str() {
        "application/json-patch+json" => Ok(PatchBody::Json(bytes.to_vec())),
        "application/merge-patch+json" => Ok(PatchBody::Merge(json(bytes)?)),
        "application/strategic-merge-patch+json" => Ok(PatchBody::Strategic(json(bytes)?)),
        "application/apply-patch+yaml" | "application/apply-patch+cbor" if ct.ends_with("yaml") => {
            let force = truthy(params, "force");
            Ok(PatchBody::Apply(codec::decode_yaml(bytes)?, force))
        }
        other => Err(ApiError::new(
            Reason::UnsupportedMediaType,
            format!(
                "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json (got {other:?})"
            ),
        )),
    }
}

async fn logs(
    state: &AppState,
    resource: &'static Resource,
    namespace: &str,
    name: &str,
    params: &Params,
) -> Result<Response, ApiError> {
    let pod = state.objects.get(resource, namespace, name).await?;
    let containers: Vec<&str> = pod
        .object
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .map(|cs| cs.iter().filter_map(|c| c["name"].as_str()).collect())
        .unwrap_or_default();
    let container = match params.get("container").filter(|c| !c.is_empty()) {
        Some(c) => {
            let init: Vec<&str> = pod
                .object
                .pointer("/spec/initContainers")
                .and_then(Value::as_array)
                .map(|cs| cs.iter().filter_map(|c| c["name"].as_str()).collect())
                .unwrap_or_default();
            if !containers.contains(&c.as_str()) && !init.contains(&c.as_str()) {
                return Err(ApiError::bad_request(format!(
                    "container {c} is not valid for pod {name}"
                )));
            }
            c.clone()
        }
        None if containers.len() == 1 => containers[0].to_string(),
        None => {
            return Err(ApiError::bad_request(format!(
                "a container name must be specified for pod {name}, choose one of: [{}]",
                containers.join(" ")
            )));
        }
    };
    let node = pod
        .object
        .pointer("/spec/nodeName")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if node.is_empty() {
        return Err(ApiError::bad_request(format!(
            "pod {name} does not have a host assigned"
        )));
    }
    let agent = state
        .node
        .as_ref()
        .filter(|agent| agent.name() == node)
        .ok_or_else(|| {
            ApiError::bad_request(format!(
                "container \"{container}\" in pod \"{name}\" cannot serve logs: node \"{node}\" is not run by this server"
            ))
        })?;
    let options = log_options(params)?;
    let previous = truthy(params, "previous");
    let path = agent.log_path(&pod.object, &container, previous)?;
    let restart =
        container_status(&pod.object, &container).and_then(|s| s["restartCount"].as_u64());
    // Following ends when this attempt ends: the container stops running, restarts, or the
    // pod goes.
    let objects = state.objects.clone();
    let (ns, pod_name, watched) = (namespace.to_string(), name.to_string(), container.clone());
    let done = async move {
        loop {
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            let Ok(current) = objects.get(resource, &ns, &pod_name).await else {
                return;
            };
            let status = container_status(&current.object, &watched);
            let running = status.is_some_and(|s| s.pointer("/state/running").is_some());
            let same = status.and_then(|s| s["restartCount"].as_u64()) == restart;
            let waiting_first = status.is_some_and(|s| {
                s.pointer("/state/waiting").is_some() && s["lastState"] == json!({})
            });
            let still_running = running && same;
            if !still_running && !waiting_first {
                return;
            }
        }
    };
    let stream = crate::node::logs::read_bundled(&path, options, done, agent.log_bundle());
    let mut response = (StatusCode::OK, Body::from_stream(stream)).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    Ok(response)
}

/// `kubectl logs` query parameters.
fn log_options(params: &Params) -> Result<crate::node::logs::LogOptions, ApiError> {
    let number = |key: &str| -> Result<Option<i64>, ApiError> {
        params
            .get(key)
            .filter(|v| !v.is_empty())
            .map(|v| {
                v.parse::<i64>()
                    .map_err(|_| ApiError::bad_request(format!("invalid {key} {v:?}")))
            })
            .transpose()
    };
    let since = match (
        number("sinceSeconds")?,
        params.get("sinceTime").filter(|v| !v.is_empty()),
    ) {
        (Some(secs), _) => Some(Utc::now() - chrono::Duration::seconds(secs.max(0))),
        (None, Some(time)) => Some(
            chrono::DateTime::parse_from_rfc3339(time)
                .map_err(|_| ApiError::bad_request(format!("invalid sinceTime {time:?}")))?
                .with_timezone(&Utc),
        ),
        (None, None) => None,
    };
    Ok(crate::node::logs::LogOptions {
        follow: truthy(params, "follow"),
        timestamps: truthy(params, "timestamps"),
        since,
        tail_lines: number("tailLines")?.map(|n| n.max(0) as u64),
        limit_bytes: number("limitBytes")?.map(|n| n.max(0) as u64),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(path: &str) -> (String, String, String, Option<String>) {
        match parse_path(path).unwrap() {
            Target::Object {
                resource,
                namespace,
                name,
                subresource,
            } => (resource.plural.to_string(), namespace, name, subresource),
            other => panic!("{path}: {other:?}"),
        }
    }

    #[test]
    fn paths_parse_like_kubernetes() {
        assert_eq!(
            object("/api/v1/namespaces/default/pods/x"),
            ("pods".into(), "default".into(), "x".into(), None)
        );
        assert_eq!(
            object("/api/v1/namespaces/default/pods/x/status")
                .3
                .as_deref(),
            Some("status")
        );
        assert_eq!(
            object("/api/v1/namespaces/kube-system"),
            ("namespaces".into(), "".into(), "kube-system".into(), None)
        );
        assert_eq!(
            object("/api/v1/namespaces/x/finalize").3.as_deref(),
            Some("finalize")
        );
        assert_eq!(
            object("/apis/apps/v1/namespaces/d/deployments/web/scale")
                .3
                .as_deref(),
            Some("scale")
        );
        assert_eq!(object("/api/v1/nodes/n1/status").0, "nodes");
        assert!(matches!(
            parse_path("/api/v1/pods"),
            Some(Target::Collection {
                namespace: None,
                ..
            })
        ));
        assert!(matches!(
            parse_path("/api/v1/namespaces"),
            Some(Target::Collection {
                namespace: None,
                ..
            })
        ));
        assert!(matches!(
            parse_path("/apis/batch/v1/namespaces/a/jobs"),
            Some(Target::Collection {
                namespace: Some(_),
                ..
            })
        ));
        assert!(matches!(
            parse_path("/apis/apps/v1"),
            Some(Target::GroupVersion { .. })
        ));
        assert!(parse_path("/apis/apps/v2/deployments").is_none());
        assert!(parse_path("/api/v1/namespaces/a/pods/x/bogus").is_none());
        assert!(
            parse_path("/api/v1/pods/x").is_none(),
            "namespaced objects need a namespace"
        );
    }
}
