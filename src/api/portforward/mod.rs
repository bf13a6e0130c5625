//! `pods/NAME/portforward`: what `kubectl port-forward` connects to.
//!
//! kubectl (1.31 and later) first asks for a WebSocket carrying SPDY
//! (`Sec-WebSocket-Protocol: SPDY/3.1+portforward.k8s.io`), and falls back to a plain
//! `Upgrade: SPDY/3.1` when the server refuses it; both are served, by the same SPDY session
//! ([`session`]). WebSocket clients of the kubelet's channel protocol (the official Python
//! client) are served by [`channels`]. Each forwarded connection reaches the pod's port through the gateway
//! ([`crate::gateway::Gateway::open_pod_port`]): a TCP connection inside the pod's network
//! namespace for containers, the function itself (as an HTTP/1.1 server) for a function's
//! port. `kubectl port-forward svc/NAME` and `deploy/NAME` resolve to a pod in kubectl, so
//! they arrive here too.

pub mod channels;
pub mod session;
pub mod spdy;

use std::sync::Arc;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{FromRequestParts, Path, Request, State};
use axum::response::{IntoResponse, Response};
use futures::{FutureExt, SinkExt, StreamExt};
use http::{HeaderValue, StatusCode, header};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::AppState;
use super::error::{ApiError, Reason};
use crate::gateway::Gateway;
use session::Connect;

/// The stream protocol kubectl asks for.
pub const PROTOCOL: &str = "portforward.k8s.io";
/// The WebSocket subprotocol of SPDY tunnelled over a WebSocket.
pub const TUNNEL_PROTOCOL: &str = "SPDY/3.1+portforward.k8s.io";

/// `GET|POST /api/v1/namespaces/NS/pods/NAME/portforward`.
pub async fn connect(
    State(state): State<Arc<AppState>>,
    Path((namespace, name)): Path<(String, String)>,
    request: Request,
) -> Response {
    let Some(gateway) = state.gateway.clone() else {
        return ApiError::new(Reason::ServiceUnavailable, "this server runs no gateway")
            .into_response();
    };
    if let Err(e) = gateway.pod(&namespace, &name) {
        return ApiError::new(Reason::NotFound, e.message).into_response();
    }
    let connect = connector(gateway, namespace, name);
    let upgrade = request
        .headers()
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    match upgrade.as_str() {
        "websocket" => websocket(request, connect).await,
        "spdy/3.1" => spdy_upgrade(request, connect),
        _ => ApiError::bad_request(
            "port forwarding needs an upgrade to SPDY/3.1, or a WebSocket carrying it",
        )
        .into_response(),
    }
}

/// Opens `port` of the pod, each time a forwarded connection starts.
fn connector(gateway: Arc<Gateway>, namespace: String, name: String) -> Connect {
    Arc::new(move |port| {
        let gateway = gateway.clone();
        let (namespace, name) = (namespace.clone(), name.clone());
        async move {
            gateway
                .open_pod_port(&namespace, &name, port)
                .await
                .map_err(|e| format!("error forwarding port {port} to pod {namespace}/{name}: {e}"))
        }
        .boxed()
    })
}

/// Whether a request's header lists `wanted` among its comma-separated values.
fn lists(headers: &http::HeaderMap, name: &str, wanted: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|v| v.trim().eq_ignore_ascii_case(wanted))
}

/// `Upgrade: SPDY/3.1`: answers 101 and serves SPDY on the upgraded connection.
fn spdy_upgrade(mut request: Request, connect: Connect) -> Response {
    if !lists(request.headers(), "x-stream-protocol-version", PROTOCOL) {
        return ApiError::bad_request(format!(
            "unable to negotiate a stream protocol: this server speaks {PROTOCOL}"
        ))
        .into_response();
    }
    let upgrade = hyper::upgrade::on(&mut request);
    tokio::spawn(async move {
        match upgrade.await {
            Ok(upgraded) => session::serve(TokioIo::new(upgraded), connect).await,
            Err(e) => tracing::debug!("port-forward upgrade: {e}"),
        }
    });
    let mut response = Response::new(axum::body::Body::empty());
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = response.headers_mut();
    headers.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    headers.insert(header::UPGRADE, HeaderValue::from_static("SPDY/3.1"));
    headers.insert(
        "x-stream-protocol-version",
        HeaderValue::from_static(PROTOCOL),
    );
    response
}

/// A WebSocket: SPDY tunnelled in binary messages (kubectl), or the kubelet's channel
/// protocol (the Python client and other WebSocket clients).
async fn websocket(request: Request, connect: Connect) -> Response {
    let (mut parts, _) = request.into_parts();
    let query = parts.uri.query().map(str::to_string);
    let upgrade = match WebSocketUpgrade::from_request_parts(&mut parts, &()).await {
        Ok(upgrade) => upgrade,
        Err(rejection) => return ApiError::bad_request(rejection.body_text()).into_response(),
    };
    let upgrade = upgrade.protocols([
        TUNNEL_PROTOCOL,
        channels::V4_BINARY,
        channels::V4_BASE64,
        channels::BINARY,
    ]);
    let protocol = upgrade
        .selected_protocol()
        .and_then(|p| p.to_str().ok())
        .unwrap_or_default()
        .to_string();
    if protocol == TUNNEL_PROTOCOL {
        return upgrade.on_upgrade(move |socket| tunnel(socket, connect));
    }
    let ports = match channels::ports(query.as_deref()) {
        Ok(ports) => ports,
        Err(message) => return ApiError::bad_request(message).into_response(),
    };
    let base64 = protocol == channels::V4_BASE64;
    upgrade.on_upgrade(move |socket| channels::serve(socket, ports, base64, connect))
}

/// Pipes a WebSocket's binary messages to and from a SPDY session.
async fn tunnel(socket: WebSocket, connect: Connect) {
    let (session_side, mut our_side) = tokio::io::duplex(256 * 1024);
    let serving = tokio::spawn(session::serve(session_side, connect));
    let (mut to_client, mut from_client) = socket.split();
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        tokio::select! {
            message = from_client.next() => match message {
                Some(Ok(Message::Binary(bytes))) => {
                    if our_side.write_all(&bytes).await.is_err() {
                        break;
                    }
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Text(_))) => {}
                Some(Ok(Message::Close(_)) | Err(_)) | None => break,
            },
            read = our_side.read(&mut buffer) => match read {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let bytes = bytes::Bytes::copy_from_slice(&buffer[..n]);
                    if to_client.send(Message::Binary(bytes)).await.is_err() {
                        break;
                    }
                }
            },
        }
    }
    let _ = to_client.send(Message::Close(None)).await;
    drop(our_side);
    let _ = serving.await;
}
