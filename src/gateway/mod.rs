//! The gateway: skiff's built-in ingress controller and service load balancer, a plain-HTTP
//! listener of `skiff serve` (`--gateway`, default `127.0.0.1:8080`).
//!
//! A request is matched against skiff's Ingresses ([`ingress`]) to a Service port, then sent
//! to one of the Service's Ready endpoints, round robin. An endpoint is a pod (by its
//! `targetRef`): an HTTP function of this node is called in-process, one fresh sandbox per
//! request; an OCI container is reached on the port it listens on inside its pod's network
//! namespace. An endpoint that cannot take the request (its pod just went away) is skipped
//! for the next, so a rolling update drops nothing. The API server's service proxy
//! (`/api/v1/namespaces/NS/services/NAME[:PORT]/proxy/...`) uses the same path
//! ([`Gateway::to_service`]).
//!
//! The gateway also answers `/metrics` (per-tenant request metrics, [`metrics`]) on hosts no
//! Ingress rule names, and scales Deployments from zero ([`scale`]).
//!
//! # Limits
//!
//! Request headers must arrive within 10 s and fit in 64 KiB (else 408 or 431), bodies are
//! read whole up to `--gateway-max-body` (else 413) within 30 s (else 408).

pub mod ingress;
pub mod metrics;
pub mod scale;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::body::Body;
use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use serde_json::Value;
use tokio::net::TcpListener;

use crate::api::objects::Objects;
use crate::api::resources::by_plural;
use crate::controllers::informer::{Cache, Informers};
use crate::node::NodeAgent;
use crate::node::functions::{Function, Functions};
use ingress::PortRef;
use metrics::Metrics;

/// How long a client may take to send its request headers.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a client may take to send its request body.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(30);
/// The largest request head accepted.
pub const MAX_HEADER_BYTES: usize = 64 * 1024;
/// How long a connection to a container's port may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Why the gateway could not get a response from a backend.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct GatewayError {
    /// The status to answer with.
    pub status: u16,
    /// What went wrong, for the caller.
    pub message: String,
}

impl GatewayError {
    fn new(status: u16, message: impl Into<String>) -> Self {
        GatewayError {
            status,
            message: message.into(),
        }
    }

    /// A plain-text response.
    pub fn into_response(self) -> Response<Body> {
        text(self.status, format!("{}\n", self.message))
    }
}

fn text(status: u16, body: String) -> Response<Body> {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// What serves a pod's port on this node.
enum PodTarget {
    /// An HTTP function, called in-process.
    Function(Arc<Function>),
    /// Containers listening in this network namespace.
    Container(PathBuf),
}

/// A byte stream to a pod's port ([`Gateway::open_pod_port`]).
pub type PodStream = Box<dyn PodIo>;

/// What a [`PodStream`] is: both halves of a connection.
pub trait PodIo: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin> PodIo for T {}

/// Settings of the gateway.
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    /// The largest request body accepted, in bytes.
    pub max_body_bytes: usize,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        GatewayConfig {
            max_body_bytes: 16 << 20,
        }
    }
}

/// The gateway's view of the cluster and its routes.
pub struct Gateway {
    objects: Objects,
    config: GatewayConfig,
    services: Arc<Cache>,
    endpoints: Arc<Cache>,
    ingresses: Arc<Cache>,
    pods: Arc<Cache>,
    deployments: Arc<Cache>,
    node: Option<Arc<NodeAgent>>,
    functions: Arc<Functions>,
    metrics: Metrics,
    scaler: scale::Scaler,
    next: AtomicUsize,
    /// The Ingress rules, rebuilt when the Ingress cache's generation moves on.
    routes: std::sync::RwLock<(u64, Arc<ingress::Routes>)>,
    /// Where the gateway listens, once it does (shown in Ingresses' status).
    address: std::sync::OnceLock<SocketAddr>,
    /// The Ingress cache's generation when their status was last published.
    published: std::sync::atomic::AtomicU64,
}

impl Gateway {
    /// Starts the gateway's caches (filled before this returns) and its scale-to-zero loop.
    /// Functions are served from `node`'s table when there is an embedded node.
    pub async fn start(
        objects: Objects,
        node: Option<Arc<NodeAgent>>,
        config: GatewayConfig,
    ) -> Arc<Gateway> {
        let mut informers = Informers::new(objects.clone());
        let mut cache = |group: &str, plural: &str| {
            informers.cache(by_plural(group, "v1", plural).expect("served resource"))
        };
        let services = cache("", "services");
        let endpoints = cache("", "endpoints");
        let ingresses = cache("networking.k8s.io", "ingresses");
        let pods = cache("", "pods");
        let deployments = cache("apps", "deployments");
        informers.start().await;
        let functions = node
            .as_ref()
            .map(|n| n.functions())
            .unwrap_or_else(|| Arc::new(Functions::default()));
        let gateway = Arc::new(Gateway {
            objects,
            config,
            services,
            endpoints,
            ingresses,
            pods,
            deployments,
            node,
            functions,
            metrics: Metrics::default(),
            scaler: scale::Scaler::default(),
            next: AtomicUsize::new(0),
            address: std::sync::OnceLock::new(),
            published: std::sync::atomic::AtomicU64::new(u64::MAX),
            routes: std::sync::RwLock::new((u64::MAX, Arc::new(ingress::Routes::default()))),
        });
        tokio::spawn(scale::scale_down_idle(Arc::downgrade(&gateway)));
        gateway
    }

    /// Serves HTTP/1.1 and h2c on `listener` until the task is dropped.
    pub async fn serve(self: Arc<Self>, listener: TcpListener) {
        if let Ok(addr) = listener.local_addr() {
            let _ = self.address.set(addr);
        }
        loop {
            let (stream, peer) = match listener.accept().await {
                Ok(accepted) => accepted,
                Err(e) => {
                    tracing::warn!("gateway accept: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            let gateway = self.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |request| {
                    let gateway = gateway.clone();
                    async move { Ok::<_, std::convert::Infallible>(gateway.handle(request, peer).await) }
                });
                let mut builder = auto::Builder::new(TokioExecutor::new());
                builder
                    .http1()
                    .timer(TokioTimer::new())
                    .header_read_timeout(HEADER_TIMEOUT)
                    .max_buf_size(MAX_HEADER_BYTES);
                builder
                    .http2()
                    .max_header_list_size(MAX_HEADER_BYTES as u32);
                let _ = builder
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    }

    /// Answers one request from a client of the gateway.
    async fn handle(&self, request: Request<Incoming>, peer: SocketAddr) -> Response<Body> {
        let started = Instant::now();
        let host = request
            .headers()
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .map(str::to_string)
            .or_else(|| request.uri().authority().map(|a| a.to_string()))
            .unwrap_or_default();
        let host = ingress::host_of(&host);
        let path = request.uri().path().to_string();
        let routes = self.routes();
        if path == "/metrics" && !routes.claims_host(&host) {
            let mut response = text(200, self.render_metrics());
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4"),
            );
            return response;
        }
        let Some(backend) = routes.select(&host, &path).cloned() else {
            self.metrics.record_unrouted(404);
            return GatewayError::new(404, format!("no Ingress rule matches {host}{path}"))
                .into_response();
        };
        let request = match self.read_request(request, peer).await {
            Ok(request) => request,
            Err(e) => {
                self.metrics
                    .record(&backend.namespace, e.status, started.elapsed());
                // The rest of the body is not read: the connection cannot carry another
                // request.
                let mut response = e.into_response();
                response
                    .headers_mut()
                    .insert(header::CONNECTION, HeaderValue::from_static("close"));
                return response;
            }
        };
        let response = match self
            .to_service(&backend.namespace, &backend.service, &backend.port, request)
            .await
        {
            Ok(response) => response,
            Err(e) => e.into_response(),
        };
        self.metrics.record(
            &backend.namespace,
            response.status().as_u16(),
            started.elapsed(),
        );
        response
    }

    /// Shows the gateway's address in the status of skiff's Ingresses that lack it (what
    /// `kubectl get ingress` prints as ADDRESS).
    async fn publish_addresses(&self) {
        let Some(addr) = self.address.get() else {
            return;
        };
        // Nothing to do until the Ingresses change (this runs every second).
        let generation = self.ingresses.generation();
        if self.published.swap(generation, Ordering::Relaxed) == generation {
            return;
        }
        let ip = if addr.ip().is_unspecified() {
            "127.0.0.1".to_string()
        } else {
            addr.ip().to_string()
        };
        let status = serde_json::json!({"loadBalancer": {"ingress": [
            {"ip": ip, "ports": [{"port": addr.port(), "protocol": "TCP"}]}
        ]}});
        for ingress in self.ingresses.list(None) {
            if !ingress::is_ours(&ingress) || ingress["status"] == status {
                continue;
            }
            if let Err(e) = crate::controllers::writes::write_status(
                &self.objects,
                &self.ingresses,
                &ingress,
                &status,
                "skiff-gateway",
            )
            .await
            {
                tracing::debug!("ingress status: {e}");
                // Try again at the next tick.
                self.published.store(u64::MAX, Ordering::Relaxed);
            }
        }
    }

    /// The current Ingress rules (rebuilt only after the Ingresses changed).
    fn routes(&self) -> Arc<ingress::Routes> {
        let generation = self.ingresses.generation();
        {
            let cached = self.routes.read().unwrap_or_else(|p| p.into_inner());
            if cached.0 == generation {
                return cached.1.clone();
            }
        }
        let routes = Arc::new(ingress::Routes::build(&self.ingresses.list(None)));
        *self.routes.write().unwrap_or_else(|p| p.into_inner()) = (generation, routes.clone());
        routes
    }

    fn render_metrics(&self) -> String {
        self.metrics.render(&self.functions.usage.snapshot())
    }

    /// Reads the whole body within the limits, and names the client in `X-Forwarded-For`.
    async fn read_request(
        &self,
        request: Request<Incoming>,
        peer: SocketAddr,
    ) -> Result<Request<Bytes>, GatewayError> {
        let (mut parts, body) = request.into_parts();
        let bytes = read_body(&parts.headers, body, self.config.max_body_bytes).await?;
        if let Ok(value) = HeaderValue::from_str(&peer.ip().to_string()) {
            parts.headers.append("x-forwarded-for", value);
        }
        Ok(Request::from_parts(parts, bytes))
    }

    /// Sends `request` to one Ready endpoint of Service `namespace/name` on `port`.
    ///
    /// # Errors
    ///
    /// 404 when the Service or its port does not exist, 503 when no endpoint can take the
    /// request (after a scale from zero, if the Service's Deployment allows one).
    pub async fn to_service(
        &self,
        namespace: &str,
        name: &str,
        port: &PortRef,
        request: Request<Bytes>,
    ) -> Result<Response<Body>, GatewayError> {
        let service = self.services.get(namespace, name).ok_or_else(|| {
            GatewayError::new(404, format!("service \"{namespace}/{name}\" not found"))
        })?;
        let service_port = find_port(&service, port).ok_or_else(|| {
            GatewayError::new(
                404,
                format!("service \"{namespace}/{name}\" has no port {port:?}"),
            )
        })?;
        let port_name = service_port["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        self.scaler.touch(namespace, name);
        let mut candidates = self.ready_endpoints(namespace, name, &port_name);
        if candidates.is_empty() {
            match scale::wake(self, namespace, &service, &service_port, &port_name).await? {
                Some(scale::Woken::Function(function)) => {
                    return Ok(call_function(&function, request).await);
                }
                Some(scale::Woken::Endpoints) => {
                    candidates = self.ready_endpoints(namespace, name, &port_name);
                }
                None => {
                    return Err(GatewayError::new(
                        503,
                        format!("no endpoints available for service \"{namespace}/{name}\""),
                    ));
                }
            }
        }
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        for i in 0..candidates.len() {
            let endpoint = &candidates[(start + i) % candidates.len()];
            let attempt = match &endpoint.uid {
                Some(uid) => match self.pod_target(uid, endpoint.port) {
                    Some(PodTarget::Function(function)) => {
                        return Ok(call_function(&function, request).await);
                    }
                    Some(PodTarget::Container(netns)) => {
                        to_container(netns, endpoint.port, copy_request(&request)).await
                    }
                    // Gone from this node (or never on it): the next endpoint.
                    None => continue,
                },
                // An address without a pod (a selector-less Service's own Endpoints): a real
                // host, reached over the host's network.
                None => match endpoint.ip.parse::<std::net::IpAddr>() {
                    Ok(ip) if !is_pod_address(&ip) => {
                        to_host(SocketAddr::new(ip, endpoint.port), copy_request(&request)).await
                    }
                    _ => continue,
                },
            };
            match attempt {
                Ok(response) => return Ok(response),
                Err(e) => tracing::debug!("endpoint {}:{}: {e}", endpoint.ip, endpoint.port),
            }
        }
        Err(GatewayError::new(
            503,
            format!("no endpoint of service \"{namespace}/{name}\" could take the request"),
        ))
    }

    /// Sends `request` to pod `namespace/name` on `port` (the API server's pod proxy).
    ///
    /// # Errors
    ///
    /// 404 when the pod is unknown, 503 when it serves nothing on that port here.
    pub async fn to_pod(
        &self,
        namespace: &str,
        name: &str,
        port: Option<u16>,
        request: Request<Bytes>,
    ) -> Result<Response<Body>, GatewayError> {
        let pod = self.pod(namespace, name)?;
        let uid = pod["metadata"]["uid"].as_str().unwrap_or_default();
        let port = port
            .or_else(|| {
                pod["spec"]["containers"]
                    .as_array()?
                    .iter()
                    .flat_map(|c| c["ports"].as_array().into_iter().flatten())
                    .find_map(|p| p["containerPort"].as_u64())
                    .and_then(|p| u16::try_from(p).ok())
            })
            .unwrap_or(80);
        match self.pod_target(uid, port) {
            Some(PodTarget::Function(function)) => Ok(call_function(&function, request).await),
            Some(PodTarget::Container(netns)) => to_container(netns, port, request)
                .await
                .map_err(|e| GatewayError::new(503, format!("pod {name} port {port}: {e}"))),
            None => Err(GatewayError::new(
                503,
                format!("pod \"{namespace}/{name}\" serves nothing on port {port} on this node"),
            )),
        }
    }

    /// Pod `namespace/name`, from the gateway's cache.
    ///
    /// # Errors
    ///
    /// 404 when there is no such pod.
    pub fn pod(&self, namespace: &str, name: &str) -> Result<Arc<Value>, GatewayError> {
        self.pods
            .get(namespace, name)
            .ok_or_else(|| GatewayError::new(404, format!("pods \"{name}\" not found")))
    }

    /// Opens a byte stream to `port` of pod `namespace/name` (what `kubectl port-forward`
    /// carries): a TCP connection inside the pod's network namespace for containers, an
    /// HTTP/1.1 server calling the function for a function's port.
    ///
    /// # Errors
    ///
    /// 404 when the pod is unknown, 503 when nothing listens on that port here.
    pub async fn open_pod_port(
        &self,
        namespace: &str,
        name: &str,
        port: u16,
    ) -> Result<PodStream, GatewayError> {
        let pod = self.pod(namespace, name)?;
        let uid = pod["metadata"]["uid"].as_str().unwrap_or_default();
        match self.pod_target(uid, port) {
            Some(PodTarget::Function(function)) => {
                let (client, server) = tokio::io::duplex(64 * 1024);
                tokio::spawn(serve_function_stream(
                    function,
                    server,
                    self.config.max_body_bytes,
                ));
                Ok(Box::new(client))
            }
            Some(PodTarget::Container(netns)) => match connect_in_netns(netns, port).await {
                Ok(stream) => Ok(Box::new(stream)),
                Err(e) => Err(GatewayError::new(
                    503,
                    format!("pod {namespace}/{name} port {port}: {e}"),
                )),
            },
            None => Err(GatewayError::new(
                503,
                format!("pod \"{namespace}/{name}\" serves nothing on port {port} on this node"),
            )),
        }
    }

    /// The largest request body taken (`--gateway-max-body`), by the API proxy too.
    pub fn max_body_bytes(&self) -> usize {
        self.config.max_body_bytes
    }

    /// What serves pod `uid`'s `port` on this node: a function, else the pod's network
    /// namespace (its containers').
    fn pod_target(&self, uid: &str, port: u16) -> Option<PodTarget> {
        if let Some(function) = self.functions.get(uid, port) {
            return Some(PodTarget::Function(function));
        }
        let netns = self.node.as_ref()?.pod_netns(uid)?;
        Some(PodTarget::Container(netns))
    }

    /// The `index`th port of Service `namespace/name`.
    ///
    /// # Errors
    ///
    /// 404 when the Service or the port does not exist.
    pub fn service_port(
        &self,
        namespace: &str,
        name: &str,
        index: usize,
    ) -> Result<PortRef, GatewayError> {
        let service = self.services.get(namespace, name).ok_or_else(|| {
            GatewayError::new(404, format!("service \"{namespace}/{name}\" not found"))
        })?;
        service["spec"]["ports"][index]["port"]
            .as_u64()
            .and_then(|p| u16::try_from(p).ok())
            .map(PortRef::Number)
            .ok_or_else(|| {
                GatewayError::new(404, format!("service \"{namespace}/{name}\" has no ports"))
            })
    }

    /// Every Ready address of the Service's Endpoints for the named port.
    pub(crate) fn ready_endpoints(
        &self,
        namespace: &str,
        name: &str,
        port_name: &str,
    ) -> Vec<Endpoint> {
        let Some(endpoints) = self.endpoints.get(namespace, name) else {
            return Vec::new();
        };
        ready_addresses(&endpoints, port_name)
    }
}

/// Reads a whole request body of at most `limit` bytes within [`BODY_TIMEOUT`].
///
/// # Errors
///
/// 413 past the limit (told by `Content-Length` before anything is read), 408 when the body
/// is too slow, 400 when it cannot be read.
pub async fn read_body<B>(
    headers: &http::HeaderMap,
    body: B,
    limit: usize,
) -> Result<Bytes, GatewayError>
where
    B: hyper::body::Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let too_large = || {
        GatewayError::new(
            413,
            format!("the request body is larger than {limit} bytes"),
        )
    };
    if headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
        .is_some_and(|n| n > limit as u64)
    {
        return Err(too_large());
    }
    let collected = tokio::time::timeout(BODY_TIMEOUT, Limited::new(body, limit).collect())
        .await
        .map_err(|_| GatewayError::new(408, "the request body did not arrive in time"))?;
    match collected {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(too_large()),
        Err(e) => Err(GatewayError::new(
            400,
            format!("reading the request body: {e}"),
        )),
    }
}

/// The Service port a backend names.
fn find_port(service: &Value, port: &PortRef) -> Option<Value> {
    service["spec"]["ports"]
        .as_array()?
        .iter()
        .find(|p| match port {
            PortRef::Number(n) => p["port"].as_u64() == Some(u64::from(*n)),
            PortRef::Name(name) => p["name"] == name.as_str(),
        })
        .cloned()
}

/// A Ready address of a Service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// The pod behind it (`targetRef.uid`), if the address names one.
    pub uid: Option<String>,
    /// The address.
    pub ip: String,
    /// The port on it.
    pub port: u16,
}

/// Whether `ip` is one of the pod addresses skiff makes up (10.64.0.0/10), which name pods
/// rather than route to them.
fn is_pod_address(ip: &std::net::IpAddr) -> bool {
    match ip {
        std::net::IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            a == 10 && (64..128).contains(&b)
        }
        std::net::IpAddr::V6(_) => false,
    }
}

/// The Ready addresses of an Endpoints object for the Service port named `port_name` (pure).
pub fn ready_addresses(endpoints: &Value, port_name: &str) -> Vec<Endpoint> {
    let mut out = Vec::new();
    for subset in endpoints["subsets"].as_array().into_iter().flatten() {
        let Some(port) = subset["ports"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|p| p["name"].as_str().unwrap_or_default() == port_name)
            .and_then(|p| p["port"].as_u64())
            .and_then(|p| u16::try_from(p).ok())
        else {
            continue;
        };
        for address in subset["addresses"].as_array().into_iter().flatten() {
            out.push(Endpoint {
                uid: address["targetRef"]["uid"].as_str().map(String::from),
                ip: address["ip"].as_str().unwrap_or_default().to_string(),
                port,
            });
        }
    }
    out
}

/// A copy of a buffered request (to try another endpoint).
fn copy_request(request: &Request<Bytes>) -> Request<Bytes> {
    let mut copy = Request::new(request.body().clone());
    *copy.method_mut() = request.method().clone();
    *copy.uri_mut() = request.uri().clone();
    *copy.version_mut() = request.version();
    *copy.headers_mut() = request.headers().clone();
    copy
}

/// Calls a function; its failure becomes a clean error status for the caller alone.
async fn call_function(function: &Function, mut request: Request<Bytes>) -> Response<Body> {
    if !request.headers().contains_key(header::HOST) {
        request
            .headers_mut()
            .insert(header::HOST, HeaderValue::from_static("localhost"));
    }
    match function.call(request).await {
        Ok(response) => response.map(Body::new),
        Err(failure) => text(failure.status(), format!("{failure}\n")),
    }
}

/// Forwards a request to a container listening on `port` in the network namespace `netns`.
async fn to_container(
    netns: PathBuf,
    port: u16,
    request: Request<Bytes>,
) -> std::io::Result<Response<Body>> {
    forward(connect_in_netns(netns, port).await?, request).await
}

/// Connects to `port` on the loopback of the network namespace `netns`.
async fn connect_in_netns(netns: PathBuf, port: u16) -> std::io::Result<tokio::net::TcpStream> {
    let stream = tokio::task::spawn_blocking(move || {
        skiff_runtime::oci::host::in_netns(&netns, move || {
            let addr = SocketAddr::from(([127, 0, 0, 1], port));
            let stream = std::net::TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT)?;
            stream.set_nonblocking(true)?;
            stream.set_nodelay(true)?;
            Ok::<_, std::io::Error>(stream)
        })
    })
    .await
    .map_err(std::io::Error::other)???;
    tokio::net::TcpStream::from_std(stream)
}

/// Serves HTTP/1.1 on `io` (one end of an in-memory pipe) by calling `function`, with the
/// gateway's body limit: what a port-forwarded connection to a function's port reaches.
async fn serve_function_stream(function: Arc<Function>, io: tokio::io::DuplexStream, limit: usize) {
    let service = hyper::service::service_fn(move |request: Request<Incoming>| {
        let function = function.clone();
        async move {
            let (parts, body) = request.into_parts();
            let response = match read_body(&parts.headers, body, limit).await {
                Ok(bytes) => call_function(&function, Request::from_parts(parts, bytes)).await,
                Err(e) => e.into_response(),
            };
            Ok::<_, std::convert::Infallible>(response)
        }
    });
    let _ = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .max_buf_size(MAX_HEADER_BYTES)
        .serve_connection(TokioIo::new(io), service)
        .await;
}

/// Forwards a request to a server at `addr` on the host's network.
async fn to_host(addr: SocketAddr, request: Request<Bytes>) -> std::io::Result<Response<Body>> {
    let stream = tokio::time::timeout(CONNECT_TIMEOUT, tokio::net::TcpStream::connect(addr))
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out"))??;
    let _ = stream.set_nodelay(true);
    forward(stream, request).await
}

/// Sends `request` over a fresh HTTP/1.1 connection on `stream`.
async fn forward(
    stream: tokio::net::TcpStream,
    request: Request<Bytes>,
) -> std::io::Result<Response<Body>> {
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(std::io::Error::other)?;
    tokio::spawn(connection);
    let (mut parts, body) = request.into_parts();
    // Origin form for the container's server.
    if let Some(pq) = parts.uri.path_and_query() {
        parts.uri = pq.as_str().parse().unwrap_or_default();
    }
    parts.version = http::Version::HTTP_11;
    let response = sender
        .send_request(Request::from_parts(parts, Full::new(body)))
        .await
        .map_err(std::io::Error::other)?;
    Ok(response.map(Body::new))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ready_addresses_follow_the_named_port() {
        let endpoints = json!({"subsets": [
            {"ports": [{"name": "http", "port": 8080}, {"name": "admin", "port": 9000}],
             "addresses": [{"ip": "10.64.0.1", "targetRef": {"uid": "a"}}],
             "notReadyAddresses": [{"ip": "10.64.0.2", "targetRef": {"uid": "b"}}]},
            {"ports": [{"name": "http", "port": 8081}],
             "addresses": [{"ip": "10.64.0.3", "targetRef": {"uid": "c"}}]},
        ]});
        let pairs = |name: &str| -> Vec<(Option<String>, u16)> {
            ready_addresses(&endpoints, name)
                .into_iter()
                .map(|e| (e.uid, e.port))
                .collect()
        };
        assert_eq!(
            pairs("http"),
            vec![(Some("a".to_string()), 8080), (Some("c".to_string()), 8081)]
        );
        assert_eq!(pairs("admin"), vec![(Some("a".to_string()), 9000)]);
        assert!(pairs("other").is_empty());
        let unnamed =
            json!({"subsets": [{"ports": [{"port": 80}], "addresses": [{"ip": "192.0.2.7"}]}]});
        assert_eq!(
            ready_addresses(&unnamed, ""),
            vec![Endpoint {
                uid: None,
                ip: "192.0.2.7".into(),
                port: 80
            }]
        );
        assert!(is_pod_address(&"10.64.1.2".parse().unwrap()));
        assert!(is_pod_address(&"10.127.255.254".parse().unwrap()));
        assert!(!is_pod_address(&"10.128.0.1".parse().unwrap()));
        assert!(!is_pod_address(&"127.0.0.1".parse().unwrap()));
    }

    #[test]
    fn service_ports_by_number_or_name() {
        let service = json!({"spec": {"ports": [{"name": "http", "port": 80}, {"name": "grpc", "port": 81}]}});
        assert_eq!(
            find_port(&service, &PortRef::Number(81)).unwrap()["name"],
            "grpc"
        );
        assert_eq!(
            find_port(&service, &PortRef::Name("http".into())).unwrap()["port"],
            80
        );
        assert!(find_port(&service, &PortRef::Number(82)).is_none());
    }
}
