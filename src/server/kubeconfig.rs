//! The admin credentials: a bearer token and the kubeconfig that carries it.

use std::path::Path;

use base64::Engine;
use rand::RngCore;

/// Loads the admin token from `path`, creating a random one on first start.
pub fn load_or_create_token(path: &Path) -> std::io::Result<String> {
    if let Ok(existing) = std::fs::read_to_string(path) {
        let existing = existing.trim();
        if !existing.is_empty() {
            return Ok(existing.to_string());
        }
    }
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    super::pki::write_private(path, token.as_bytes())?;
    Ok(token)
}

/// A kubeconfig for `server` (an https URL) trusting `ca_pem` and presenting `token`.
pub fn render(server: &str, ca_pem: &str, token: &str) -> String {
    let ca = base64::engine::general_purpose::STANDARD.encode(ca_pem);
    format!(
        "apiVersion: v1
kind: Config
clusters:
- name: skiff
  cluster:
    server: {server}
    certificate-authority-data: {ca}
users:
- name: skiff-admin
  user:
    token: {token}
contexts:
- name: skiff
  context:
    cluster: skiff
    user: skiff-admin
    namespace: default
current-context: skiff
preferences: {{}}
"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_is_stable_across_loads() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        let a = load_or_create_token(&path).unwrap();
        assert_eq!(a.len(), 64);
        assert_eq!(a, load_or_create_token(&path).unwrap());
    }

    #[test]
    fn kubeconfig_is_yaml_with_the_parts() {
        let text = render("https://127.0.0.1:6443", "PEM", "tok");
        let doc: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
        assert_eq!(
            doc["clusters"][0]["cluster"]["server"],
            "https://127.0.0.1:6443"
        );
        assert_eq!(doc["users"][0]["user"]["token"], "tok");
        assert_eq!(doc["current-context"], "skiff");
    }
}
