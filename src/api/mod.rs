//! The Kubernetes API: routing, authentication, discovery, OpenAPI and the REST verbs.

pub mod access;
pub mod apply;
pub mod codec;
pub mod defaults;
pub mod discovery;
pub mod error;
pub mod fuzzing;
pub mod gojson;
pub mod handlers;
pub mod objects;
pub mod openapi;
pub mod patch;
pub mod portforward;
pub mod protobuf;
pub mod protobuf_schema;
pub mod proxy;
pub mod resources;
pub mod selector;
pub mod table;
pub mod validation;
pub mod watch;

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use serde_json::{Value, json};

use codec::Accept;
use error::{ApiError, Reason};
use objects::{Objects, PatchBody, WriteOptions};

/// Shared state of the API server.
pub struct AppState {
    /// The object service.
    pub objects: Objects,
    /// `host:port` clients reach the server at (for `/api`'s serverAddressByClientCIDRs).
    pub server_address: String,
    /// The admin bearer token.
    pub token: String,
    /// The embedded node, which serves container logs.
    pub node: Option<std::sync::Arc<crate::node::NodeAgent>>,
    /// The gateway, which the service and pod proxies go through.
    pub gateway: Option<std::sync::Arc<crate::gateway::Gateway>>,
}

/// Paths Kubernetes serves to unauthenticated clients.
fn is_public(path: &str) -> bool {
    matches!(path, "/healthz" | "/livez" | "/readyz" | "/version")
}

/// Compares without an early exit on the first differing byte.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn authenticate(
    State(state): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Response {
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    match presented {
        Some(token) if constant_time_eq(token.as_bytes(), state.token.as_bytes()) => {
            next.run(request).await
        }
        None if is_public(request.uri().path()) => next.run(request).await,
        _ => ApiError::new(Reason::Unauthorized, "Unauthorized").into_response(),
    }
}

/// Builds the router for the API server.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route(
            "/version",
            get(|| async { axum::Json(discovery::version()) }),
        )
        .route("/healthz", get(ok))
        .route("/livez", get(ok))
        .route("/readyz", get(ok))
        .route("/openapi/v3", get(openapi_root))
        .route("/openapi/v3/{*path}", get(openapi_group_version))
        .route("/apply", post(apply_stream))
        .route(
            "/api/v1/namespaces/{namespace}/{kind}/{name}/proxy",
            any(proxy::serve_root),
        )
        .route(
            "/api/v1/namespaces/{namespace}/{kind}/{name}/proxy/",
            any(proxy::serve_root),
        )
        .route(
            "/api/v1/namespaces/{namespace}/{kind}/{name}/proxy/{*path}",
            any(proxy::serve),
        )
        .route(
            "/api/v1/namespaces/{namespace}/pods/{name}/portforward",
            any(portforward::connect),
        )
        .route("/api", any(handlers::dispatch))
        .route("/api/{*rest}", any(handlers::dispatch))
        .route("/apis", any(handlers::dispatch))
        .route("/apis/{*rest}", any(handlers::dispatch))
        .fallback(|| async {
            ApiError::new(
                Reason::NotFound,
                "the server could not find the requested resource",
            )
        })
        .layer(middleware::from_fn_with_state(state.clone(), authenticate))
        .with_state(state)
}

async fn ok() -> &'static str {
    "ok"
}

async fn openapi_root(State(state): State<Arc<AppState>>) -> Response {
    codec::respond(
        StatusCode::OK,
        state.objects.openapi().root(),
        Accept::Json,
        &[],
    )
}

async fn openapi_group_version(
    State(state): State<Arc<AppState>>,
    Path(path): Path<String>,
) -> Response {
    match state.objects.openapi().group_version(&path) {
        Some((doc, hash)) => {
            let mut response = codec::respond(StatusCode::OK, doc, Accept::Json, &[]);
            if let Ok(etag) = HeaderValue::from_str(&format!("\"{hash}\"")) {
                response.headers_mut().insert(header::ETAG, etag);
            }
            response
        }
        None => ApiError::new(Reason::NotFound, format!("no OpenAPI document for {path}"))
            .into_response(),
    }
}

/// `POST /apply`: server-side applies every document of a YAML (or JSON) stream and answers
/// one result per document. Query: `fieldManager` (default `skiff-apply`), `force`,
/// `namespace` (for documents without one, default `default`), `dryRun=All`.
async fn apply_stream(
    State(state): State<Arc<AppState>>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    match apply_documents(&state, &uri, &headers, body).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

async fn apply_documents(
    state: &AppState,
    uri: &Uri,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let params: std::collections::HashMap<String, String> = uri
        .query()
        .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
        .unwrap_or_default();
    let bytes = codec::read_body(body).await?;
    let documents = codec::decode_yaml_stream(&bytes)?;
    if documents.is_empty() {
        return Err(ApiError::bad_request("the request body holds no documents"));
    }
    let opts = WriteOptions {
        dry_run: params.get("dryRun").is_some_and(|v| v == "All"),
        field_manager: params
            .get("fieldManager")
            .filter(|m| !m.is_empty())
            .cloned()
            .unwrap_or_else(|| "skiff-apply".to_string()),
        field_validation: objects::FieldValidation::parse(
            params.get("fieldValidation").map(String::as_str),
        )?,
    };
    let force = params.get("force").is_some_and(|v| v == "true");
    let default_ns = params
        .get("namespace")
        .cloned()
        .unwrap_or_else(|| "default".to_string());
    let mut results = Vec::new();
    let mut first_failure: Option<StatusCode> = None;
    for doc in documents {
        let outcome = apply_one(state, doc.clone(), &default_ns, &opts, force).await;
        let mut entry = json!({
            "apiVersion": doc["apiVersion"],
            "kind": doc["kind"],
            "name": doc.pointer("/metadata/name").cloned().unwrap_or(Value::Null),
        });
        match outcome {
            Ok((namespace, result, object)) => {
                if !namespace.is_empty() {
                    entry["namespace"] = json!(namespace);
                }
                entry["result"] = json!(result);
                entry["object"] = object;
            }
            Err(error) => {
                first_failure.get_or_insert(error.reason.code());
                entry["result"] = json!("failed");
                entry["error"] = error.status();
            }
        }
        results.push(entry);
    }
    let status = first_failure.unwrap_or(StatusCode::OK);
    let body = json!({
        "kind": "ApplyResultList",
        "apiVersion": "skiff.dev/v1",
        "status": if first_failure.is_some() { "Failure" } else { "Success" },
        "items": results,
    });
    Ok(codec::respond(status, &body, codec::accept(headers), &[]))
}

/// Applies one document; answers (namespace, created|configured|unchanged, object).
async fn apply_one(
    state: &AppState,
    doc: Value,
    default_ns: &str,
    opts: &WriteOptions,
    force: bool,
) -> Result<(String, &'static str, Value), ApiError> {
    let api_version = doc["apiVersion"].as_str().unwrap_or_default();
    let kind = doc["kind"].as_str().unwrap_or_default();
    if api_version.is_empty() || kind.is_empty() {
        return Err(ApiError::bad_request(
            "every document needs apiVersion and kind",
        ));
    }
    let resource = resources::by_kind(api_version, kind).ok_or_else(|| {
        ApiError::new(
            Reason::NotFound,
            format!("the server doesn't have a resource type for {kind} in {api_version}"),
        )
    })?;
    let name = doc
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .ok_or_else(|| {
            ApiError::bad_request(format!("{kind}: metadata.name is required for apply"))
        })?
        .to_string();
    let namespace = if resource.namespaced {
        doc.pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
            .unwrap_or(default_ns)
            .to_string()
    } else {
        String::new()
    };
    let before = match state.objects.get(resource, &namespace, &name).await {
        Ok(stored) => Some(stored.revision),
        Err(e) if e.reason == Reason::NotFound => None,
        Err(e) => return Err(e),
    };
    let written = state
        .objects
        .patch(
            resource,
            &namespace,
            &name,
            PatchBody::Apply(doc, force),
            None,
            opts,
        )
        .await?;
    let after = written
        .object
        .pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .and_then(|rv| rv.parse::<i64>().ok());
    let result = match before {
        None => "created",
        Some(rev) if Some(rev) == after => "unchanged",
        Some(_) => "configured",
    };
    Ok((namespace, result, written.object.as_ref().clone()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_compare_exactly() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
    }

    #[test]
    fn only_health_and_version_are_public() {
        assert!(is_public("/healthz"));
        assert!(is_public("/version"));
        assert!(!is_public("/api"));
        assert!(!is_public("/apply"));
    }
}
