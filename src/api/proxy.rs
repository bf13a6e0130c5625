//! The API server's proxy subresources, through the gateway:
//!
//! * `/api/v1/namespaces/NS/services/[SCHEME:]NAME[:PORT]/proxy/PATH`: to one Ready endpoint
//!   of the Service (PORT is the Service port's name or number; the first port by default);
//! * `/api/v1/namespaces/NS/pods/NAME[:PORT]/proxy/PATH`: to the pod itself.
//!
//! This is what `kubectl proxy` and `kubectl get --raw .../proxy/` use. Errors are
//! Kubernetes `Status` objects (503 `ServiceUnavailable` when no endpoint can answer).

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::error::{ApiError, Reason};
use crate::gateway::GatewayError;
use crate::gateway::ingress::PortRef;

/// `.../proxy` with no path: the backend's `/`.
pub async fn serve_root(
    State(state): State<Arc<AppState>>,
    Path((namespace, kind, name)): Path<(String, String, String)>,
    request: Request,
) -> Response {
    forward(state, namespace, kind, name, String::new(), request).await
}

/// `.../proxy/PATH`.
pub async fn serve(
    State(state): State<Arc<AppState>>,
    Path((namespace, kind, name, path)): Path<(String, String, String, String)>,
    request: Request,
) -> Response {
    forward(state, namespace, kind, name, path, request).await
}

/// Splits `[scheme:]name[:port]` (pure).
pub fn split_name(text: &str) -> Result<(String, Option<String>), String> {
    let parts: Vec<&str> = text.split(':').collect();
    match parts.as_slice() {
        [name] => Ok((name.to_string(), None)),
        [name, port] => Ok((
            name.to_string(),
            Some(port.to_string()).filter(|p| !p.is_empty()),
        )),
        ["http" | "", name, port] => Ok((
            name.to_string(),
            Some(port.to_string()).filter(|p| !p.is_empty()),
        )),
        [scheme, _, _] => Err(format!("the proxy does not speak {scheme}; use http")),
        _ => Err(format!("invalid proxy target {text:?}")),
    }
}

async fn forward(
    state: Arc<AppState>,
    namespace: String,
    kind: String,
    name: String,
    path: String,
    request: Request,
) -> Response {
    let Some(gateway) = state.gateway.clone() else {
        return ApiError::new(Reason::ServiceUnavailable, "this server runs no gateway")
            .into_response();
    };
    let (name, port) = match split_name(&name) {
        Ok(split) => split,
        Err(message) => return ApiError::bad_request(message).into_response(),
    };
    let (mut parts, body) = request.into_parts();
    let bytes =
        match crate::gateway::read_body(&parts.headers, body, gateway.max_body_bytes()).await {
            Ok(bytes) => bytes,
            Err(e) => return status_of(e).into_response(),
        };
    let query = parts
        .uri
        .query()
        .map(|q| format!("?{q}"))
        .unwrap_or_default();
    parts.uri = match format!("/{path}{query}").parse() {
        Ok(uri) => uri,
        Err(e) => return ApiError::bad_request(format!("invalid path: {e}")).into_response(),
    };
    // The backend is not the API server: it gets neither the admin token nor its host.
    parts.headers.remove(http::header::AUTHORIZATION);
    parts.headers.insert(
        http::header::HOST,
        http::HeaderValue::from_str(&format!("{name}.{namespace}"))
            .unwrap_or(http::HeaderValue::from_static("localhost")),
    );
    let request = http::Request::from_parts(parts, bytes);
    let result = match kind.as_str() {
        "services" => {
            let port = match port {
                None => gateway.service_port(&namespace, &name, 0),
                Some(p) => Ok(match p.parse::<u16>() {
                    Ok(n) => PortRef::Number(n),
                    Err(_) => PortRef::Name(p),
                }),
            };
            match port {
                Ok(port) => gateway.to_service(&namespace, &name, &port, request).await,
                Err(e) => Err(e),
            }
        }
        "pods" => {
            let port = match port.map(|p| p.parse::<u16>()) {
                None => None,
                Some(Ok(n)) => Some(n),
                Some(Err(_)) => {
                    return ApiError::bad_request("a pod proxy port must be a number")
                        .into_response();
                }
            };
            gateway.to_pod(&namespace, &name, port, request).await
        }
        other => {
            return ApiError::new(
                Reason::NotFound,
                format!("the server has no proxy for {other}"),
            )
            .into_response();
        }
    };
    match result {
        Ok(response) => response.map(Body::new),
        Err(e) => status_of(e).into_response(),
    }
}

fn status_of(e: GatewayError) -> ApiError {
    let reason = match e.status {
        404 => Reason::NotFound,
        400 => Reason::BadRequest,
        413 => Reason::RequestEntityTooLarge,
        504 => Reason::Timeout,
        _ => Reason::ServiceUnavailable,
    };
    ApiError::new(reason, e.message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxy_targets() {
        assert_eq!(split_name("web").unwrap(), ("web".into(), None));
        assert_eq!(
            split_name("web:80").unwrap(),
            ("web".into(), Some("80".into()))
        );
        assert_eq!(
            split_name("web:http").unwrap(),
            ("web".into(), Some("http".into()))
        );
        assert_eq!(
            split_name("http:web:80").unwrap(),
            ("web".into(), Some("80".into()))
        );
        assert_eq!(split_name(":web:").unwrap(), ("web".into(), None));
        assert!(split_name("https:web:443").is_err());
        assert!(split_name("a:b:c:d").is_err());
    }
}
