//! Raw GET requests with a chosen `Accept` header (for discovery and server-side tables).
//!
//! The requests come from `kube::core::Request` (so paths and query strings are built the
//! way kube-rs builds them); only the `Accept` header is replaced.

use kube::Client;
use kube::api::{GetParams, ListParams};
use serde_json::Value;

/// Asks for a server-side Table, falling back to plain JSON.
pub const ACCEPT_TABLE: &str = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json";

/// Plain JSON.
pub const ACCEPT_JSON: &str = "application/json";

/// GET `path` (no query string) with `accept`, parsed as JSON.
pub async fn get_json(client: &Client, path: &str, accept: &str) -> Result<Value, kube::Error> {
    list(client, path, &ListParams::default(), accept).await
}

/// GET the collection at `url_path` (`/apis/apps/v1/namespaces/ns/deployments`) with
/// the selectors in `lp`.
pub async fn list(
    client: &Client,
    url_path: &str,
    lp: &ListParams,
    accept: &str,
) -> Result<Value, kube::Error> {
    let mut req = kube::core::Request::new(url_path)
        .list(lp)
        .map_err(kube::Error::BuildRequest)?;
    if let Ok(value) = accept.parse() {
        req.headers_mut().insert("accept", value);
    }
    client.request(req).await
}

/// GET the object `name` in the collection at `url_path`.
pub async fn get(
    client: &Client,
    url_path: &str,
    name: &str,
    accept: &str,
) -> Result<Value, kube::Error> {
    let mut req = kube::core::Request::new(url_path)
        .get(name, &GetParams::default())
        .map_err(kube::Error::BuildRequest)?;
    if let Ok(value) = accept.parse() {
        req.headers_mut().insert("accept", value);
    }
    client.request(req).await
}
