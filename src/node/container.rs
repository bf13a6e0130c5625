//! What the node derives from a pod spec to run an OCI container: the process (Kubernetes'
//! command/args rules over the image's Entrypoint/Cmd), the environment (image's, then the
//! pod's), the user, the cgroup limits, the pod's `/etc` files, and registry credentials
//! from `imagePullSecrets`. Pure functions, but for [`pull_auth`] and [`pod_files`].

use std::path::{Path, PathBuf};

use base64::Engine;
use serde_json::Value;
use skiff_runtime::image::{ImageConfig, ImageReference};
use skiff_runtime::oci::{Limits, spec};

use super::config;
use crate::api::objects::Objects;

/// The process argv (Kubernetes' rules): `command` replaces the image's Entrypoint and,
/// when given, drops its Cmd; `args` replaces Cmd. `$(VAR)` references are expanded.
pub fn process_args(
    container: &Value,
    image: &ImageConfig,
    env: &[(String, String)],
) -> Vec<String> {
    // An empty list counts as unset, as in Kubernetes.
    let list = |key: &str| -> Option<Vec<String>> {
        container[key]
            .as_array()
            .filter(|a| !a.is_empty())
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(|s| config::expand(s, env))
                    .collect()
            })
    };
    let (command, args) = (list("command"), list("args"));
    match (command, args) {
        (Some(c), Some(a)) => c.into_iter().chain(a).collect(),
        (Some(c), None) => c,
        (None, Some(a)) => image.entrypoint.iter().cloned().chain(a).collect(),
        (None, None) => image
            .entrypoint
            .iter()
            .chain(image.cmd.iter())
            .cloned()
            .collect(),
    }
}

/// `PATH` when neither the image nor the pod sets one (as container runtimes default it).
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The image's environment, overridden (by name) and extended by the pod's; `PATH` defaulted.
pub fn merge_env(image: &[String], pod: &[(String, String)]) -> Vec<String> {
    let mut out: Vec<(String, String)> = image
        .iter()
        .map(|kv| match kv.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (kv.clone(), String::new()),
        })
        .collect();
    for (k, v) in pod {
        match out.iter_mut().find(|(name, _)| name == k) {
            Some(existing) => existing.1 = v.clone(),
            None => out.push((k.clone(), v.clone())),
        }
    }
    if !out.iter().any(|(k, _)| k == "PATH") {
        out.insert(0, ("PATH".into(), DEFAULT_PATH.into()));
    }
    out.into_iter().map(|(k, v)| format!("{k}={v}")).collect()
}

/// The image's `PATH`-style defaults as `(name, value)` pairs, for `$(VAR)` expansion.
pub fn image_env_pairs(image: &ImageConfig) -> Vec<(String, String)> {
    image
        .env
        .iter()
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// uid and gid: `securityContext.runAsUser`/`runAsGroup` (container, then pod), else the
/// image's `User` (numeric, or a name looked up in the image's `/etc/passwd` and
/// `/etc/group`), else root.
pub fn user(pod: &Value, container: &Value, image: &ImageConfig, layers: &[PathBuf]) -> (u32, u32) {
    let context = |key: &str| -> Option<u32> {
        container["securityContext"][key]
            .as_u64()
            .or_else(|| pod["spec"]["securityContext"][key].as_u64())
            .map(|v| v as u32)
    };
    let (image_user, image_group) = match image.user.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (image.user.as_str(), None),
    };
    // By name or number; a number not in the file keeps group 0 (as runc does).
    let lookup = |file: &str, name: &str| -> Option<(u32, u32)> {
        if name.is_empty() {
            return None;
        }
        let numeric = name.parse::<u32>().ok();
        let entry = layers
            .iter()
            .rev()
            .find_map(|l| std::fs::read_to_string(l.join(file)).ok())
            .and_then(|text| {
                text.lines().find_map(|line| {
                    let fields: Vec<&str> = line.split(':').collect();
                    let id: Option<u32> = fields.get(2).and_then(|f| f.parse().ok());
                    let matches = match numeric {
                        Some(n) => id == Some(n),
                        None => fields.first() == Some(&name),
                    };
                    matches.then(|| {
                        let id = id.unwrap_or(0);
                        (id, fields.get(3).and_then(|f| f.parse().ok()).unwrap_or(id))
                    })
                })
            });
        entry.or(numeric.map(|n| (n, 0)))
    };
    let from_image = lookup("etc/passwd", image_user);
    let uid = context("runAsUser")
        .or(from_image.map(|u| u.0))
        .unwrap_or(0);
    let gid = context("runAsGroup")
        .or_else(|| image_group.and_then(|g| lookup("etc/group", g).map(|g| g.0)))
        .or(from_image.map(|u| u.1))
        .unwrap_or(0);
    (uid, gid)
}

/// cgroup limits from `resources`: memory limit, CPU quota from the CPU limit, shares from
/// the CPU request (the limit when no request is given), and the node's pids limit.
pub fn limits(container: &Value, pids: Option<i64>, swap_accounted: bool) -> Limits {
    let quantity = |path: &str| {
        container
            .pointer(path)
            .and_then(Value::as_str)
            .and_then(crate::api::validation::parse_quantity)
    };
    // parse_quantity gives thousandths of the unit.
    let memory = quantity("/resources/limits/memory").map(|m| (m / 1000) as i64);
    let cpu_limit = quantity("/resources/limits/cpu").map(|c| c.max(1) as u64);
    // No request (BestEffort) gets the fewest shares, as the kubelet gives it.
    let cpu_request = quantity("/resources/requests/cpu")
        .map(|c| c.max(1) as u64)
        .or(cpu_limit)
        .unwrap_or(0);
    Limits {
        memory_bytes: memory,
        no_swap: swap_accounted && memory.is_some(),
        cpu_quota: cpu_limit.map(spec::cpu_quota),
        cpu_shares: Some(spec::cpu_shares(cpu_request)),
        pids,
    }
}

/// Writes the pod's `/etc/hosts`, `/etc/hostname` and `/etc/resolv.conf` (the host's) under
/// `dir`, and returns them as mounts.
pub fn pod_files(dir: &Path, hostname: &str) -> std::io::Result<Vec<spec::BindMount>> {
    std::fs::create_dir_all(dir)?;
    let hosts = format!(
        "# Kubernetes-managed hosts file (skiff).\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\t{hostname}\n"
    );
    let resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let mut mounts = Vec::new();
    for (name, text) in [
        ("hosts", hosts),
        ("hostname", format!("{hostname}\n")),
        ("resolv.conf", resolv),
    ] {
        let path = dir.join(name);
        std::fs::write(&path, text)?;
        mounts.push(spec::BindMount {
            host: path,
            guest: format!("/etc/{name}"),
            read_only: false,
        });
    }
    Ok(mounts)
}

/// User name and password for `image`'s registry from a docker config (`auths`): the entry
/// whose key is the registry host (or a URL with it).
pub fn docker_config_auth(config: &[u8], image: &str) -> Option<(String, String)> {
    let registry = ImageReference::parse(image).ok()?.registry;
    let config: Value = serde_json::from_slice(config).ok()?;
    let auths = config.get("auths").unwrap_or(&config).as_object()?;
    let wanted: &[&str] = if registry == "docker.io" {
        &["docker.io", "index.docker.io", "registry-1.docker.io"]
    } else {
        &[registry.as_str()]
    };
    auths.iter().find_map(|(key, entry)| {
        let host = key
            .trim_start_matches("https://")
            .trim_start_matches("http://")
            .split('/')
            .next()
            .unwrap_or_default();
        if !wanted.contains(&host) {
            return None;
        }
        if let (Some(u), Some(p)) = (entry["username"].as_str(), entry["password"].as_str()) {
            return Some((u.to_string(), p.to_string()));
        }
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(entry["auth"].as_str()?)
            .ok()?;
        let text = String::from_utf8(decoded).ok()?;
        let (u, p) = text.split_once(':')?;
        Some((u.to_string(), p.to_string()))
    })
}

/// Credentials for pulling `image` for `pod`: its `imagePullSecrets`
/// (`kubernetes.io/dockerconfigjson` or `dockercfg`), in order, then the node's docker
/// config (`$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`).
pub async fn pull_auth(objects: &Objects, pod: &Value, image: &str) -> Option<(String, String)> {
    let namespace = pod["metadata"]["namespace"].as_str().unwrap_or("default");
    let secrets = pod["spec"]["imagePullSecrets"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    for secret in secrets {
        let Some(name) = secret["name"].as_str() else {
            continue;
        };
        let Ok(Some(data)) = config::data_of(objects, "secret", namespace, name).await else {
            continue;
        };
        for key in [".dockerconfigjson", ".dockercfg"] {
            if let Some(found) = data.get(key).and_then(|c| docker_config_auth(c, image)) {
                return Some(found);
            }
        }
    }
    let file = std::env::var_os("DOCKER_CONFIG")
        .map(|d| PathBuf::from(d).join("config.json"))
        .or_else(|| {
            std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker/config.json"))
        })?;
    let bytes = std::fs::read(file).ok()?;
    docker_config_auth(&bytes, image)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn image() -> ImageConfig {
        ImageConfig {
            entrypoint: vec!["/bin/sh".into(), "-c".into()],
            cmd: vec!["echo image".into()],
            env: vec!["PATH=/bin".into(), "MODE=image".into()],
            ..Default::default()
        }
    }

    #[test]
    fn command_and_args_follow_kubernetes_rules() {
        let env = vec![("WHO".to_string(), "pod".to_string())];
        let args = |c: Value| process_args(&c, &image(), &env);
        assert_eq!(args(json!({})), ["/bin/sh", "-c", "echo image"]);
        assert_eq!(
            args(json!({"args": ["echo $(WHO)"]})),
            ["/bin/sh", "-c", "echo pod"]
        );
        assert_eq!(args(json!({"command": ["/bin/true"]})), ["/bin/true"]);
        assert_eq!(
            args(json!({"command": [], "args": []})),
            ["/bin/sh", "-c", "echo image"]
        );
        assert_eq!(
            args(json!({"command": ["/bin/echo"], "args": ["a"]})),
            ["/bin/echo", "a"]
        );
    }

    #[test]
    fn pod_env_overrides_image_env() {
        let env = merge_env(
            &image().env,
            &[("MODE".into(), "pod".into()), ("X".into(), "1".into())],
        );
        assert_eq!(env, ["PATH=/bin", "MODE=pod", "X=1"]);
        assert_eq!(merge_env(&[], &[])[0], format!("PATH={DEFAULT_PATH}"));
    }

    #[test]
    fn user_comes_from_security_context_then_image() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("etc")).unwrap();
        std::fs::write(
            dir.path().join("etc/passwd"),
            "root:x:0:0::/:/bin/sh\napp:x:1000:1001::/:/bin/sh\n",
        )
        .unwrap();
        let layers = vec![dir.path().to_path_buf()];
        let mut img = image();
        img.user = "app".into();
        assert_eq!(user(&json!({}), &json!({}), &img, &layers), (1000, 1001));
        img.user = "7:8".into();
        assert_eq!(user(&json!({}), &json!({}), &img, &layers), (7, 8));
        img.user = "1000".into();
        assert_eq!(user(&json!({}), &json!({}), &img, &layers), (1000, 1001));
        img.user = "7".into();
        assert_eq!(user(&json!({}), &json!({}), &img, &layers), (7, 0));
        let pod = json!({"spec": {"securityContext": {"runAsUser": 5}}});
        assert_eq!(
            user(
                &pod,
                &json!({"securityContext": {"runAsGroup": 6}}),
                &img,
                &layers
            ),
            (5, 6)
        );
        assert_eq!(user(&json!({}), &json!({}), &image(), &layers), (0, 0));
    }

    #[test]
    fn limits_map_to_cgroup_values() {
        let c = json!({"resources": {"limits": {"memory": "64Mi", "cpu": "500m"}, "requests": {"cpu": "250m"}}});
        let l = limits(&c, Some(1024), true);
        assert_eq!(l.memory_bytes, Some(64 << 20));
        assert!(l.no_swap);
        assert_eq!(l.cpu_quota, Some(50_000));
        assert_eq!(l.cpu_shares, Some(256));
        assert_eq!(l.pids, Some(1024));
        let none = limits(&json!({}), None, true);
        assert_eq!(none.cpu_shares, Some(2));
        assert_eq!(
            (none.memory_bytes, none.cpu_quota, none.pids),
            (None, None, None)
        );
    }

    #[test]
    fn registry_credentials_from_docker_config() {
        let auth = base64::engine::general_purpose::STANDARD.encode("u:p");
        let config = json!({"auths": {"127.0.0.1:5000": {"auth": auth}, "https://index.docker.io/v1/": {"username": "d", "password": "q"}}});
        let bytes = serde_json::to_vec(&config).unwrap();
        assert_eq!(
            docker_config_auth(&bytes, "127.0.0.1:5000/app:v1"),
            Some(("u".into(), "p".into()))
        );
        assert_eq!(
            docker_config_auth(&bytes, "busybox"),
            Some(("d".into(), "q".into()))
        );
        assert_eq!(docker_config_auth(&bytes, "ghcr.io/x/y"), None);
    }
}
