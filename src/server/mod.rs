//! `skiff serve`: opens the store, starts the controllers and serves the API over HTTPS.

pub mod kubeconfig;
pub mod pki;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::json;
use tokio::net::TcpListener;

use crate::api::objects::{Objects, WriteOptions};
use crate::api::openapi::{OpenApi, ServedResource};
use crate::api::resources::{RESOURCES, by_plural};
use crate::api::{AppState, router};
use crate::controllers;
use crate::store::{Store, StoreError, compact};

/// How long shutdown waits for open requests (watches included) before closing them.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);

/// Namespaces every cluster has.
pub const SYSTEM_NAMESPACES: &[&str] =
    &["default", "kube-system", "kube-public", "kube-node-lease"];

/// Settings of `skiff serve`.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// Where the database, PKI, token and kubeconfig live.
    pub data_dir: PathBuf,
    /// Address to listen on (port 0 picks a free port; the kubeconfig names the real one).
    pub listen: SocketAddr,
    /// Datastore URL; default `sqlite://DATA/skiff.db`.
    pub datastore: Option<String>,
    /// How often history is compacted.
    pub compaction_interval: Duration,
    /// The embedded node's settings; None runs the control plane only.
    pub node: Option<crate::node::NodeConfig>,
    /// Where the gateway listens (plain HTTP); None serves no gateway.
    pub gateway: Option<SocketAddr>,
    /// The gateway's limits.
    pub gateway_config: crate::gateway::GatewayConfig,
    /// How fast each component may write Events.
    pub event_rate: crate::api::objects::EventRate,
}

/// Errors starting the server.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The store could not be opened.
    #[error("opening the datastore: {0}")]
    Store(#[from] StoreError),
    /// Certificates could not be created or loaded.
    #[error("preparing certificates: {0}")]
    Pki(#[from] pki::PkiError),
    /// TLS configuration failed.
    #[error("configuring TLS: {0}")]
    Tls(#[from] rustls::Error),
    /// A PEM block could not be read back.
    #[error("reading PEM: {0}")]
    Pem(#[from] rustls::pki_types::pem::Error),
    /// A file or socket operation failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The error.
        source: std::io::Error,
    },
    /// Creating the system namespaces failed.
    #[error("bootstrapping: {0}")]
    Bootstrap(#[from] crate::api::error::ApiError),
    /// The embedded node could not start.
    #[error("starting the node: {0}")]
    Node(#[from] crate::node::NodeError),
}

fn io_error(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> ServeError {
    let what = what.into();
    move |source| ServeError::Io { what, source }
}

/// The resources the OpenAPI documents describe.
pub fn served_resources() -> Vec<ServedResource> {
    RESOURCES
        .iter()
        .map(|r| ServedResource {
            group: r.group,
            version: r.version,
            kind: r.kind,
            plural: r.plural,
            namespaced: r.namespaced,
            subresources: r.subresources,
        })
        .collect()
}

/// Creates the system namespaces if they are missing.
async fn bootstrap(objects: &Objects) -> Result<(), ServeError> {
    let namespaces = by_plural("", "v1", "namespaces").expect("namespaces are served");
    for name in SYSTEM_NAMESPACES {
        if objects.get(namespaces, "", name).await.is_ok() {
            continue;
        }
        let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}});
        match objects
            .create(namespaces, "", ns, &WriteOptions::controller("skiff"))
            .await
        {
            Ok(_) => {}
            Err(e) if e.reason == crate::api::error::Reason::AlreadyExists => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

fn tls_config(pki: &pki::Pki) -> Result<rustls::ServerConfig, ServeError> {
    let certs: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(pki.serving_chain_pem.as_bytes())
            .collect::<Result<_, _>>()?;
    let key = PrivateKeyDer::from_pem_slice(pki.serving_key_pem.as_bytes())?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// Resolves when SIGINT or SIGTERM arrives.
async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(_) => {
                    let _ = interrupt.await;
                    return;
                }
            };
        tokio::select! {
            _ = interrupt => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = interrupt.await;
}

/// Runs the server until SIGINT/SIGTERM.
pub async fn serve(config: ServeConfig) -> Result<(), ServeError> {
    let dir = &config.data_dir;
    std::fs::create_dir_all(dir).map_err(io_error(format!("creating {}", dir.display())))?;
    let url = config
        .datastore
        .clone()
        .unwrap_or_else(|| format!("sqlite://{}", dir.join("skiff.db").display()));
    let store = Store::open(&url).await?;
    let openapi = Arc::new(OpenApi::build(&served_resources()));
    let objects = Objects::new(store.clone(), openapi).with_event_rate(config.event_rate);
    bootstrap(&objects).await?;
    let _compactor = compact::spawn(store.clone(), config.compaction_interval);
    controllers::spawn_all(objects.clone(), config.data_dir.clone()).await;
    crate::scheduler::spawn(objects.clone());
    let node = match config.node.clone() {
        Some(node) => Some(crate::node::NodeAgent::start(objects.clone(), node).await?),
        None => None,
    };

    let gateway = crate::gateway::Gateway::start(
        objects.clone(),
        node.clone(),
        config.gateway_config.clone(),
    )
    .await;
    let gateway_task = match config.gateway {
        Some(addr) => {
            let listener = TcpListener::bind(addr)
                .await
                .map_err(io_error(format!("gateway: listening on {addr}")))?;
            let bound = listener
                .local_addr()
                .map_err(io_error("reading the gateway's address"))?;
            std::fs::write(dir.join("gateway-address"), bound.to_string())
                .map_err(io_error("writing gateway-address"))?;
            eprintln!("skiff: gateway on http://{bound}");
            Some(tokio::spawn(gateway.clone().serve(listener)))
        }
        None => {
            // No stale address from an earlier run with a gateway.
            let _ = std::fs::remove_file(dir.join("gateway-address"));
            None
        }
    };

    let token = kubeconfig::load_or_create_token(&dir.join("token"))
        .map_err(io_error("creating the admin token"))?;
    let pki = pki::load_or_create(dir, &[config.listen.ip()])?;
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls_config(&pki)?));
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(io_error(format!("listening on {}", config.listen)))?;
    let local = listener
        .local_addr()
        .map_err(io_error("reading the bound address"))?;
    let client_host = if local.ip().is_unspecified() {
        "127.0.0.1".to_string()
    } else if local.is_ipv6() {
        format!("[{}]", local.ip())
    } else {
        local.ip().to_string()
    };
    let server_address = format!("{client_host}:{}", local.port());
    let state = Arc::new(AppState {
        objects,
        server_address: server_address.clone(),
        token: token.clone(),
        node: node.clone(),
        gateway: Some(gateway),
    });
    let app = router(state);

    // Only now is the server ready: write the kubeconfig clients wait for.
    let kubeconfig_path = dir.join("kubeconfig");
    let text = kubeconfig::render(&format!("https://{server_address}"), &pki.ca_pem, &token);
    pki::write_private(&kubeconfig_path, text.as_bytes())
        .map_err(io_error(format!("writing {}", kubeconfig_path.display())))?;
    tracing::info!(address = %server_address, kubeconfig = %kubeconfig_path.display(), "skiff is serving");
    eprintln!(
        "skiff: serving https://{server_address} (KUBECONFIG={})",
        kubeconfig_path.display()
    );

    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let shutdown = shutdown_signal();
    tokio::pin!(shutdown);
    loop {
        let (tcp, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(error) => {
                    tracing::warn!(%error, "accept failed");
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let service = TowerToHyperService::new(app.clone());
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let Ok(tls) = acceptor.accept(tcp).await else {
                return;
            };
            let builder = auto::Builder::new(TokioExecutor::new());
            let connection = builder.serve_connection_with_upgrades(TokioIo::new(tls), service);
            let _ = watcher.watch(connection.into_owned()).await;
        });
    }
    eprintln!("skiff: shutting down");
    drop(listener);
    if let Some(task) = gateway_task {
        task.abort();
    }
    if let Some(node) = &node {
        node.shut_down().await;
    }
    tokio::select! {
        _ = graceful.shutdown() => {}
        _ = tokio::time::sleep(SHUTDOWN_GRACE) => {}
    }
    Ok(())
}
