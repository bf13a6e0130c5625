//! Connecting to the server: kubeconfig loading and namespace defaults.

use kube::Client;
use kube::config::{KubeConfigOptions, Kubeconfig};

use super::{CliError, ClientArgs};

/// A connected client plus the namespace defaults commands need.
pub struct Session {
    pub client: Client,
    /// The server URL, for error messages.
    pub server: String,
    /// `-n` if given, else the kubeconfig context's namespace, else `default`.
    pub namespace: String,
    /// Whether the namespace came from `-n`.
    pub namespace_explicit: bool,
}

impl Session {
    /// Loads the kubeconfig (`--kubeconfig`, else `DATA_DIR/kubeconfig`) and builds a client.
    pub async fn connect(args: &ClientArgs) -> Result<Session, CliError> {
        let path = args
            .kubeconfig
            .clone()
            .unwrap_or_else(|| args.data_dir.join("kubeconfig"));
        if !path.exists() {
            return Err(CliError::KubeconfigMissing {
                path,
                explicit: args.kubeconfig.is_some(),
            });
        }
        let kubeconfig = Kubeconfig::read_from(&path).map_err(|source| CliError::Kubeconfig {
            path: path.clone(),
            source,
        })?;
        let config =
            kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
                .await
                .map_err(|source| CliError::Kubeconfig {
                    path: path.clone(),
                    source,
                })?;
        let server = config.cluster_url.to_string();
        let context_namespace = config.default_namespace.clone();
        let client = Client::try_from(config).map_err(|source| CliError::Connection {
            server: server.clone(),
            source,
        })?;
        let (namespace, namespace_explicit) = match &args.namespace {
            Some(ns) if !ns.is_empty() => (ns.clone(), true),
            _ if !context_namespace.is_empty() => (context_namespace, false),
            _ => ("default".to_string(), false),
        };
        Ok(Session {
            client,
            server,
            namespace,
            namespace_explicit,
        })
    }

    /// Wraps an error from a request that isn't about one particular object
    /// (discovery, listing): server errors stay server errors, anything else is a
    /// problem talking to the server.
    pub fn error(&self, err: kube::Error) -> CliError {
        match err {
            kube::Error::Api(status) => CliError::Server(status),
            source => CliError::Connection {
                server: self.server.clone(),
                source,
            },
        }
    }
}
