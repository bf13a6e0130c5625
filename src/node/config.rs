//! What a container is given: its environment (`env`, `envFrom`, `valueFrom` references) and
//! its volumes (emptyDir, hostPath, configMap, secret), prepared on the node as directories
//! that become WASI preopens.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use base64::Engine;
use serde_json::Value;

use crate::api::error::Reason;
use crate::api::objects::Objects;
use crate::api::resources::by_plural;

/// Why a container's configuration could not be prepared (`CreateContainerConfigError`).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConfigError {
    /// A referenced ConfigMap or Secret is missing and not optional.
    #[error("{kind} \"{name}\" not found")]
    NotFound {
        /// `configmap` or `secret`.
        kind: &'static str,
        /// Its name.
        name: String,
    },
    /// A referenced key is missing and not optional.
    #[error("couldn't find key {key} in {kind} {namespace}/{name}")]
    KeyMissing {
        /// `ConfigMap` or `Secret`.
        kind: &'static str,
        /// Namespace.
        namespace: String,
        /// Name.
        name: String,
        /// Key.
        key: String,
    },
    /// A fieldRef or resourceFieldRef names something skiff does not provide.
    #[error("unsupported {what}: {path}")]
    Unsupported {
        /// What kind of reference.
        what: &'static str,
        /// The path.
        path: String,
    },
    /// A volume mount names a volume the pod does not declare.
    #[error("volume \"{0}\" is not declared by the pod")]
    UnknownVolume(String),
    /// Preparing a volume's directory failed.
    #[error("preparing volume \"{volume}\": {message}")]
    Volume {
        /// The volume.
        volume: String,
        /// What went wrong.
        message: String,
    },
    /// Reading a referenced object failed.
    #[error("reading {what}: {message}")]
    Api {
        /// What was read.
        what: String,
        /// The error.
        message: String,
    },
}

/// Reads ConfigMap/Secret data, each value as bytes.
pub(super) async fn data_of(
    objects: &Objects,
    kind: &'static str,
    namespace: &str,
    name: &str,
) -> Result<Option<HashMap<String, Vec<u8>>>, ConfigError> {
    let resource = by_plural(
        "",
        "v1",
        if kind == "configmap" {
            "configmaps"
        } else {
            "secrets"
        },
    )
    .expect("served");
    let object = match objects.get(resource, namespace, name).await {
        Ok(stored) => stored.object,
        Err(e) if e.reason == Reason::NotFound => return Ok(None),
        Err(e) => {
            return Err(ConfigError::Api {
                what: format!("{kind} {namespace}/{name}"),
                message: e.message,
            });
        }
    };
    let mut data = HashMap::new();
    if let Some(map) = object.get("data").and_then(Value::as_object) {
        for (k, v) in map {
            let text = v.as_str().unwrap_or_default();
            let bytes = if kind == "secret" {
                base64::engine::general_purpose::STANDARD
                    .decode(text)
                    .unwrap_or_default()
            } else {
                text.as_bytes().to_vec()
            };
            data.insert(k.clone(), bytes);
        }
    }
    if let Some(map) = object.get("binaryData").and_then(Value::as_object) {
        for (k, v) in map {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(v.as_str().unwrap_or_default())
                .unwrap_or_default();
            data.insert(k.clone(), bytes);
        }
    }
    Ok(Some(data))
}

/// Kubernetes' `$(VAR)` expansion against the variables defined so far; `$$` escapes.
pub fn expand(value: &str, defined: &[(String, String)]) -> String {
    let mut out = String::new();
    let mut rest = value;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        if let Some(after) = tail.strip_prefix("$$") {
            out.push('$');
            rest = after;
        } else if let Some(inner) = tail.strip_prefix("$(") {
            match inner.find(')') {
                Some(end) => {
                    let name = &inner[..end];
                    match defined.iter().rev().find(|(k, _)| k == name) {
                        Some((_, v)) => out.push_str(v),
                        None => {
                            out.push_str("$(");
                            out.push_str(name);
                            out.push(')');
                        }
                    }
                    rest = &inner[end + 1..];
                }
                None => {
                    out.push_str(tail);
                    rest = "";
                }
            }
        } else {
            out.push('$');
            rest = &tail[1..];
        }
    }
    out.push_str(rest);
    out
}

/// The value of a downward-API `fieldRef`.
pub fn field_ref(pod: &Value, path: &str) -> Result<String, ConfigError> {
    let text = |p: &str| {
        pod.pointer(p)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let indexed = |prefix: &str, map: &str| -> Option<String> {
        let key = path
            .strip_prefix(prefix)?
            .strip_prefix("['")?
            .strip_suffix("']")?;
        Some(
            pod.pointer(&format!("/metadata/{map}"))
                .and_then(|m| m.get(key))
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
        )
    };
    if let Some(v) = indexed("metadata.labels", "labels")
        .or_else(|| indexed("metadata.annotations", "annotations"))
    {
        return Ok(v);
    }
    Ok(match path {
        "metadata.name" => text("/metadata/name"),
        "metadata.namespace" => text("/metadata/namespace"),
        "metadata.uid" => text("/metadata/uid"),
        "spec.nodeName" => text("/spec/nodeName"),
        "spec.serviceAccountName" => text("/spec/serviceAccountName"),
        "status.hostIP" => text("/status/hostIP"),
        "status.podIP" => text("/status/podIP"),
        other => {
            return Err(ConfigError::Unsupported {
                what: "fieldRef",
                path: other.to_string(),
            });
        }
    })
}

/// The value of a `resourceFieldRef` (limits/requests of cpu or memory, over the divisor),
/// rounded up as Kubernetes does.
pub fn resource_field_ref(
    container: &Value,
    resource: &str,
    divisor: Option<&str>,
) -> Result<String, ConfigError> {
    let (section, name) = resource
        .split_once('.')
        .ok_or_else(|| ConfigError::Unsupported {
            what: "resourceFieldRef",
            path: resource.to_string(),
        })?;
    let quantity = container
        .pointer(&format!("/resources/{section}/{name}"))
        .and_then(Value::as_str)
        .and_then(crate::api::validation::parse_quantity);
    let divisor = divisor
        .and_then(crate::api::validation::parse_quantity)
        .filter(|d| *d > 0)
        .unwrap_or(1000);
    match quantity {
        // Unset limits report the node's capacity in Kubernetes; report 0 requests and an unbounded limit as 0.
        None => Ok("0".to_string()),
        Some(q) => Ok(((q + divisor - 1) / divisor).to_string()),
    }
}

/// Resolves a container's environment, in Kubernetes' order: `envFrom` first, then `env`
/// (later entries win, `$(VAR)` expands against earlier ones).
pub async fn environment(
    objects: &Objects,
    pod: &Value,
    container: &Value,
) -> Result<Vec<(String, String)>, ConfigError> {
    let namespace = pod
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or("default");
    let mut vars: Vec<(String, String)> = Vec::new();
    let set = |vars: &mut Vec<(String, String)>, k: String, v: String| {
        vars.retain(|(name, _)| *name != k);
        vars.push((k, v));
    };
    for source in container["envFrom"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
    {
        let prefix = source["prefix"].as_str().unwrap_or_default();
        let (kind, reference) = if source.get("configMapRef").is_some() {
            ("configmap", &source["configMapRef"])
        } else {
            ("secret", &source["secretRef"])
        };
        let name = reference["name"].as_str().unwrap_or_default();
        let optional = reference["optional"].as_bool().unwrap_or(false);
        match data_of(objects, kind, namespace, name).await? {
            Some(data) => {
                let mut keys: Vec<_> = data.into_iter().collect();
                keys.sort();
                for (k, v) in keys {
                    set(
                        &mut vars,
                        format!("{prefix}{k}"),
                        String::from_utf8_lossy(&v).into_owned(),
                    );
                }
            }
            None if optional => {}
            None => {
                return Err(ConfigError::NotFound {
                    kind,
                    name: name.to_string(),
                });
            }
        }
    }
    for entry in container["env"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
    {
        let name = entry["name"].as_str().unwrap_or_default().to_string();
        if let Some(value) = entry.get("value").and_then(Value::as_str) {
            let expanded = expand(value, &vars);
            set(&mut vars, name, expanded);
            continue;
        }
        let Some(from) = entry.get("valueFrom") else {
            set(&mut vars, name, String::new());
            continue;
        };
        let value = if let Some(f) = from.get("fieldRef") {
            field_ref(pod, f["fieldPath"].as_str().unwrap_or_default())?
        } else if let Some(r) = from.get("resourceFieldRef") {
            resource_field_ref(
                container,
                r["resource"].as_str().unwrap_or_default(),
                r["divisor"].as_str(),
            )?
        } else {
            let (kind, label, reference) = if let Some(r) = from.get("configMapKeyRef") {
                ("configmap", "ConfigMap", r)
            } else if let Some(r) = from.get("secretKeyRef") {
                ("secret", "Secret", r)
            } else {
                continue;
            };
            let object = reference["name"].as_str().unwrap_or_default();
            let key = reference["key"].as_str().unwrap_or_default();
            let optional = reference["optional"].as_bool().unwrap_or(false);
            match data_of(objects, kind, namespace, object).await? {
                Some(data) => match data.get(key) {
                    Some(v) => String::from_utf8_lossy(v).into_owned(),
                    None if optional => continue,
                    None => {
                        return Err(ConfigError::KeyMissing {
                            kind: label,
                            namespace: namespace.to_string(),
                            name: object.to_string(),
                            key: key.to_string(),
                        });
                    }
                },
                None if optional => continue,
                None => {
                    return Err(ConfigError::NotFound {
                        kind,
                        name: object.to_string(),
                    });
                }
            }
        };
        set(&mut vars, name, value);
    }
    Ok(vars)
}

/// A volume prepared on the node.
#[derive(Debug, Clone, PartialEq)]
pub struct Volume {
    /// The directory the guest is given.
    pub path: PathBuf,
    /// Whether it is always read-only (configMap, secret).
    pub read_only: bool,
}

/// A directory the guest sees at `guest`.
#[derive(Debug, Clone, PartialEq)]
pub struct Mount {
    /// Host directory.
    pub host: PathBuf,
    /// Path inside the guest.
    pub guest: String,
    /// Read-only.
    pub read_only: bool,
    /// With a `subPath`: the volume's directory, which `host` must stay beneath (see
    /// [`Mount::check_beneath`]).
    pub volume_root: Option<PathBuf>,
}

impl Mount {
    /// A `subPath` mount must not leave its volume through a symlink a container planted
    /// (the kubelet's subPath fix): every part below the volume's directory must be a real
    /// directory or file, checked before each attempt.
    pub fn check_beneath(&self) -> Result<(), String> {
        self.walk_beneath(false)
    }

    /// [`Mount::check_beneath`], creating missing directories on the way when `create`.
    fn walk_beneath(&self, create: bool) -> Result<(), String> {
        let Some(root) = &self.volume_root else {
            return Ok(());
        };
        let relative = self
            .host
            .strip_prefix(root)
            .map_err(|_| format!("subPath {} is not inside its volume", self.host.display()))?;
        if create {
            std::fs::create_dir_all(root).map_err(|e| format!("{}: {e}", root.display()))?;
        }
        let mut at = root.clone();
        for part in relative.components() {
            at.push(part);
            match std::fs::symlink_metadata(&at) {
                Ok(m) if m.file_type().is_symlink() => {
                    return Err(format!(
                        "subPath {} is a symlink: refused, it could lead outside the volume",
                        relative.display()
                    ));
                }
                Ok(_) => {}
                Err(e) if create && e.kind() == std::io::ErrorKind::NotFound => {
                    std::fs::create_dir(&at)
                        .map_err(|e| format!("creating subPath {}: {e}", relative.display()))?;
                }
                Err(e) => return Err(format!("subPath {}: {e}", relative.display())),
            }
        }
        Ok(())
    }
}

/// The directory of the PersistentVolume bound to claim `claim` (hostPath or local).
async fn claimed_path(
    objects: &Objects,
    namespace: &str,
    claim: &str,
    volume: &str,
) -> Result<PathBuf, ConfigError> {
    let pvcs = by_plural("", "v1", "persistentvolumeclaims").expect("served");
    let pvs = by_plural("", "v1", "persistentvolumes").expect("served");
    let pvc = match objects.get(pvcs, namespace, claim).await {
        Ok(stored) => stored.object,
        Err(e) if e.reason == Reason::NotFound => {
            return Err(ConfigError::NotFound {
                kind: "persistentvolumeclaim",
                name: claim.to_string(),
            });
        }
        Err(e) => {
            return Err(ConfigError::Api {
                what: format!("persistentvolumeclaim {namespace}/{claim}"),
                message: e.message,
            });
        }
    };
    let bound = pvc["spec"]["volumeName"].as_str().filter(|v| !v.is_empty());
    let Some(pv_name) = bound.filter(|_| pvc["status"]["phase"] == "Bound") else {
        return Err(volume_error(
            volume,
            format!("persistentvolumeclaim \"{claim}\" is not bound yet"),
        ));
    };
    let pv = objects
        .get(pvs, "", pv_name)
        .await
        .map_err(|e| volume_error(volume, e.message))?
        .object;
    let path = pv["spec"]["hostPath"]["path"]
        .as_str()
        .or_else(|| pv["spec"]["local"]["path"].as_str())
        .ok_or_else(|| {
            volume_error(
                volume,
                format!("persistentvolume \"{pv_name}\" is neither hostPath nor local"),
            )
        })?;
    let path = PathBuf::from(path);
    std::fs::create_dir_all(&path).map_err(|e| volume_error(volume, e))?;
    Ok(path)
}

fn volume_error(volume: &str, e: impl std::fmt::Display) -> ConfigError {
    ConfigError::Volume {
        volume: volume.to_string(),
        message: e.to_string(),
    }
}

/// Writes projected files (`items` select and rename keys; all keys otherwise).
fn project(
    dir: &Path,
    volume: &str,
    data: &HashMap<String, Vec<u8>>,
    items: Option<&Vec<Value>>,
    optional: bool,
    kind: &'static str,
    source: &str,
) -> Result<(), ConfigError> {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).map_err(|e| volume_error(volume, e))?;
    let files: Vec<(String, &Vec<u8>)> = match items {
        Some(items) => {
            let mut out = Vec::new();
            for item in items {
                let key = item["key"].as_str().unwrap_or_default();
                let path = item["path"].as_str().unwrap_or(key);
                match data.get(key) {
                    Some(v) => out.push((path.to_string(), v)),
                    None if optional => {}
                    None => {
                        return Err(ConfigError::KeyMissing {
                            kind,
                            namespace: String::new(),
                            name: source.to_string(),
                            key: key.to_string(),
                        });
                    }
                }
            }
            out
        }
        None => data.iter().map(|(k, v)| (k.clone(), v)).collect(),
    };
    for (path, bytes) in files {
        if path.split('/').any(|p| p == ".." || p.is_empty()) {
            return Err(volume_error(volume, format!("invalid path {path:?}")));
        }
        let file = dir.join(&path);
        if let Some(parent) = file.parent() {
            std::fs::create_dir_all(parent).map_err(|e| volume_error(volume, e))?;
        }
        std::fs::write(&file, bytes).map_err(|e| volume_error(volume, e))?;
    }
    Ok(())
}

/// Prepares the pod's volumes under `root` (the pod's directory on the node).
pub async fn prepare_volumes(
    objects: &Objects,
    pod: &Value,
    root: &Path,
) -> Result<HashMap<String, Volume>, ConfigError> {
    let namespace = pod
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or("default");
    let mut volumes = HashMap::new();
    for v in pod
        .pointer("/spec/volumes")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
    {
        let name = v["name"].as_str().unwrap_or_default().to_string();
        let prepared = if v.get("emptyDir").is_some() {
            let dir = root.join("volumes/empty-dir").join(&name);
            std::fs::create_dir_all(&dir).map_err(|e| volume_error(&name, e))?;
            Volume {
                path: dir,
                read_only: false,
            }
        } else if let Some(host) = v.get("hostPath") {
            let path = PathBuf::from(host["path"].as_str().unwrap_or_default());
            match host["type"].as_str().unwrap_or_default() {
                "DirectoryOrCreate" => {
                    std::fs::create_dir_all(&path).map_err(|e| volume_error(&name, e))?
                }
                "Directory" if !path.is_dir() => {
                    return Err(volume_error(
                        &name,
                        format!("hostPath {} is not a directory", path.display()),
                    ));
                }
                _ => {}
            }
            Volume {
                path,
                read_only: false,
            }
        } else if let Some(cm) = v.get("configMap") {
            let source = cm["name"].as_str().unwrap_or_default();
            let optional = cm["optional"].as_bool().unwrap_or(false);
            let dir = root.join("volumes/configmap").join(&name);
            match data_of(objects, "configmap", namespace, source).await? {
                Some(data) => project(
                    &dir,
                    &name,
                    &data,
                    cm["items"].as_array(),
                    optional,
                    "ConfigMap",
                    source,
                )?,
                None if optional => project(
                    &dir,
                    &name,
                    &HashMap::new(),
                    None,
                    true,
                    "ConfigMap",
                    source,
                )?,
                None => {
                    return Err(ConfigError::NotFound {
                        kind: "configmap",
                        name: source.to_string(),
                    });
                }
            }
            Volume {
                path: dir,
                read_only: true,
            }
        } else if let Some(secret) = v.get("secret") {
            let source = secret["secretName"].as_str().unwrap_or_default();
            let optional = secret["optional"].as_bool().unwrap_or(false);
            let dir = root.join("volumes/secret").join(&name);
            match data_of(objects, "secret", namespace, source).await? {
                Some(data) => project(
                    &dir,
                    &name,
                    &data,
                    secret["items"].as_array(),
                    optional,
                    "Secret",
                    source,
                )?,
                None if optional => {
                    project(&dir, &name, &HashMap::new(), None, true, "Secret", source)?
                }
                None => {
                    return Err(ConfigError::NotFound {
                        kind: "secret",
                        name: source.to_string(),
                    });
                }
            }
            Volume {
                path: dir,
                read_only: true,
            }
        } else if let Some(claim) = v.get("persistentVolumeClaim") {
            let claim_name = claim["claimName"].as_str().unwrap_or_default();
            Volume {
                path: claimed_path(objects, namespace, claim_name, &name).await?,
                read_only: claim["readOnly"].as_bool().unwrap_or(false),
            }
        } else {
            return Err(ConfigError::Unsupported {
                what: "volume source",
                path: name,
            });
        };
        volumes.insert(name, prepared);
    }
    Ok(volumes)
}

/// The mounts of one container, from its `volumeMounts`.
pub fn mounts(
    container: &Value,
    volumes: &HashMap<String, Volume>,
) -> Result<Vec<Mount>, ConfigError> {
    let mut out = Vec::new();
    for m in container["volumeMounts"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
    {
        let name = m["name"].as_str().unwrap_or_default();
        let volume = volumes
            .get(name)
            .ok_or_else(|| ConfigError::UnknownVolume(name.to_string()))?;
        let mut host = volume.path.clone();
        let mut volume_root = None;
        if let Some(sub) = m["subPath"].as_str().filter(|s| !s.is_empty()) {
            if sub.split('/').any(|p| p == "..") || sub.starts_with('/') {
                return Err(volume_error(name, format!("invalid subPath {sub:?}")));
            }
            host = host.join(sub);
            let mount = Mount {
                host: host.clone(),
                guest: String::new(),
                read_only: true,
                volume_root: Some(volume.path.clone()),
            };
            // Created part by part, never through a symlink.
            mount
                .walk_beneath(!volume.read_only)
                .map_err(|e| volume_error(name, e))?;
            volume_root = Some(volume.path.clone());
        }
        out.push(Mount {
            host,
            guest: m["mountPath"].as_str().unwrap_or_default().to_string(),
            read_only: volume.read_only || m["readOnly"].as_bool().unwrap_or(false),
            volume_root,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sub_paths_never_pass_through_symlinks() {
        let dir = tempfile::tempdir().unwrap();
        let (root, outside) = (dir.path().join("vol"), dir.path().join("outside"));
        std::fs::create_dir_all(&root).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        let mount = |sub: &str| Mount {
            host: root.join(sub),
            guest: "/m".into(),
            read_only: false,
            volume_root: Some(root.clone()),
        };
        mount("a/b").walk_beneath(true).unwrap();
        assert!(root.join("a/b").is_dir());
        mount("a/b").check_beneath().unwrap();
        std::os::unix::fs::symlink(&outside, root.join("link")).unwrap();
        assert!(mount("link").check_beneath().is_err());
        assert!(mount("link/new").walk_beneath(true).is_err());
        assert!(!outside.join("new").exists());
    }

    #[test]
    fn expansion_follows_kubernetes() {
        let defined = vec![
            ("A".to_string(), "1".to_string()),
            ("B".to_string(), "two".to_string()),
        ];
        assert_eq!(expand("$(A)-$(B)", &defined), "1-two");
        assert_eq!(expand("$(MISSING)", &defined), "$(MISSING)");
        assert_eq!(expand("$$(A)", &defined), "$(A)");
        assert_eq!(expand("cost $5", &defined), "cost $5");
        assert_eq!(expand("$(A", &defined), "$(A");
    }

    #[test]
    fn downward_api_fields() {
        let pod = json!({"metadata": {"name": "p", "namespace": "ns", "uid": "u", "labels": {"app": "web"}}, "spec": {"nodeName": "n1"}});
        assert_eq!(field_ref(&pod, "metadata.name").unwrap(), "p");
        assert_eq!(field_ref(&pod, "metadata.labels['app']").unwrap(), "web");
        assert_eq!(field_ref(&pod, "spec.nodeName").unwrap(), "n1");
        assert!(field_ref(&pod, "spec.bogus").is_err());
    }

    #[test]
    fn resource_fields_round_up_over_the_divisor() {
        let c = json!({"resources": {"limits": {"cpu": "250m", "memory": "64Mi"}}});
        assert_eq!(resource_field_ref(&c, "limits.cpu", None).unwrap(), "1");
        assert_eq!(
            resource_field_ref(&c, "limits.cpu", Some("1m")).unwrap(),
            "250"
        );
        assert_eq!(
            resource_field_ref(&c, "limits.memory", Some("1Mi")).unwrap(),
            "64"
        );
    }

    #[test]
    fn mounts_resolve_volumes_and_force_read_only_for_projections() {
        let dir = tempfile::tempdir().unwrap();
        let volumes = HashMap::from([
            (
                "data".to_string(),
                Volume {
                    path: dir.path().join("data"),
                    read_only: false,
                },
            ),
            (
                "cfg".to_string(),
                Volume {
                    path: dir.path().join("cfg"),
                    read_only: true,
                },
            ),
        ]);
        let c = json!({"volumeMounts": [{"name": "data", "mountPath": "/data", "subPath": "sub"}, {"name": "cfg", "mountPath": "/etc/cfg"}]});
        let m = mounts(&c, &volumes).unwrap();
        assert_eq!(m[0].host, dir.path().join("data/sub"));
        assert!(!m[0].read_only);
        assert!(m[1].read_only);
        let bad = json!({"volumeMounts": [{"name": "nope", "mountPath": "/x"}]});
        assert_eq!(
            mounts(&bad, &volumes),
            Err(ConfigError::UnknownVolume("nope".into()))
        );
    }
}
