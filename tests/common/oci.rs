//! Container images for tests: a real registry (Debian's `docker-registry`) on a free
//! loopback port, and a tiny busybox image (the static binary from Debian's
//! `busybox-static`) built and pushed by test code with oci-client's push API.
#![allow(dead_code)]

use std::fs;
use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use oci_client::client::{ClientConfig, ClientProtocol, Config, ImageLayer};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};
use sha2::{Digest as _, Sha256};

/// The registry process, killed on drop.
pub struct Registry {
    child: Child,
    /// `127.0.0.1:PORT`.
    pub addr: String,
    root: tempfile::TempDir,
    /// The user name and password it asks for, when it asks.
    pub auth: Option<(String, String)>,
}

impl Registry {
    /// Where the registry stores the blob `sha256:HEX`.
    pub fn blob_file(&self, digest: &str) -> PathBuf {
        let hex = digest.trim_start_matches("sha256:");
        self.root
            .path()
            .join("data/docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }
}

/// The user and password of [`start_registry_with_auth`], and the bcrypt line of its
/// htpasswd file (made once with Python's `bcrypt`; the registry reads only bcrypt).
pub const PULLER: (&str, &str) = ("puller", "s3cret-pull");
const PULLER_HTPASSWD: &str = "puller:$2b$05$CQxFfEYLPPlqtLq0K8xyyurq4QZshtNSInbgpg9xTYejm/iFO.3VC";

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `docker-registry serve` on a free loopback port with a temporary root.
pub fn start_registry() -> Registry {
    serve_registry(false)
}

/// A registry that answers only [`PULLER`] (HTTP basic auth from an htpasswd file).
pub fn start_registry_with_auth() -> Registry {
    serve_registry(true)
}

fn serve_registry(with_auth: bool) -> Registry {
    let root = tempfile::tempdir().unwrap();
    let auth_section = if with_auth {
        let htpasswd = root.path().join("htpasswd");
        fs::write(&htpasswd, format!("{PULLER_HTPASSWD}\n")).unwrap();
        format!(
            "auth:\n  htpasswd:\n    realm: skiff-test\n    path: {}\n",
            htpasswd.display()
        )
    } else {
        String::new()
    };
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let config = root.path().join("config.yml");
    fs::write(
        &config,
        format!(
            "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\n\
             storage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {addr}\n{auth_section}",
            root.path().join("data").display()
        ),
    )
    .unwrap();
    let log = fs::File::create(root.path().join("registry.log")).unwrap();
    let child = Command::new("docker-registry")
        .arg("serve")
        .arg(&config)
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("start docker-registry (Debian package docker-registry)");
    let auth = with_auth.then(|| (PULLER.0.to_string(), PULLER.1.to_string()));
    let registry = Registry {
        child,
        addr,
        root,
        auth,
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(&registry.addr).is_err() {
        assert!(
            Instant::now() < deadline,
            "docker-registry did not listen: {}",
            fs::read_to_string(registry.root.path().join("registry.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    registry
}

/// The static busybox binary.
pub fn busybox() -> PathBuf {
    ["/usr/bin/busybox", "/bin/busybox"]
        .iter()
        .map(PathBuf::from)
        .find(|p| {
            p.is_file()
                && Command::new("file")
                    .arg(p)
                    .output()
                    .map(|o| !String::from_utf8_lossy(&o.stdout).contains("dynamically"))
                    .unwrap_or(true)
        })
        .expect("a static busybox (Debian package busybox-static)")
}

/// Commands linked to busybox in the test image.
const APPLETS: &[&str] = &[
    "sh", "echo", "cat", "ls", "sleep", "httpd", "wget", "nc", "true", "false", "env", "id", "dd",
    "head", "seq", "pwd", "mkdir", "touch", "grep", "ps", "kill", "test", "printf", "hostname",
];

fn append(
    tar: &mut tar::Builder<Vec<u8>>,
    path: &str,
    mode: u32,
    data: &[u8],
    kind: tar::EntryType,
    link: Option<&str>,
) {
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(kind);
    header.set_size(data.len() as u64);
    header.set_mode(mode);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    if let Some(target) = link {
        header.set_link_name(target).unwrap();
    }
    header.set_cksum();
    tar.append_data(&mut header, path, data).unwrap();
}

/// A gzipped layer and its diff id, from `(path, mode, contents)` files and `(path, target)`
/// symlinks.
pub fn layer(
    files: &[(&str, u32, Vec<u8>)],
    symlinks: &[(&str, &str)],
    dirs: &[&str],
) -> (Vec<u8>, String) {
    let mut tar = tar::Builder::new(Vec::new());
    for dir in dirs {
        append(&mut tar, dir, 0o755, b"", tar::EntryType::Directory, None);
    }
    for (path, mode, data) in files {
        append(&mut tar, path, *mode, data, tar::EntryType::Regular, None);
    }
    for (path, target) in symlinks {
        append(
            &mut tar,
            path,
            0o777,
            b"",
            tar::EntryType::Symlink,
            Some(target),
        );
    }
    let tar = tar.into_inner().unwrap();
    let diff_id = format!("sha256:{}", hex::encode(Sha256::digest(&tar)));
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&tar).unwrap();
    (gz.finish().unwrap(), diff_id)
}

/// The busybox layer: `/bin/busybox` and its applets, `/etc/passwd`, `/tmp`.
pub fn busybox_layer() -> (Vec<u8>, String) {
    let binary = fs::read(busybox()).unwrap();
    let links: Vec<(String, &str)> = APPLETS
        .iter()
        .map(|a| (format!("bin/{a}"), "busybox"))
        .collect();
    let link_refs: Vec<(&str, &str)> = links.iter().map(|(p, t)| (p.as_str(), *t)).collect();
    layer(
        &[
            ("bin/busybox", 0o755, binary),
            (
                "etc/passwd",
                0o644,
                b"root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/tmp:/bin/sh\n".to_vec(),
            ),
            ("etc/group", 0o644, b"root:x:0:\napp:x:1000:\n".to_vec()),
        ],
        &link_refs,
        &["bin", "etc", "tmp", "proc", "sys", "dev"],
    )
}

/// Pushes an image of `layers` (bottom first) with the given config `config` section to
/// `registry/name:tag`; returns the manifest digest.
pub async fn push(
    registry: &Registry,
    name: &str,
    layers: Vec<(Vec<u8>, String)>,
    config: serde_json::Value,
    arch: &str,
) -> String {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = Client::try_from(ClientConfig {
        protocol: ClientProtocol::Http,
        ..Default::default()
    })
    .unwrap();
    let reference: Reference = format!("{}/{name}", registry.addr).parse().unwrap();
    let auth = match &registry.auth {
        Some((user, password)) => RegistryAuth::Basic(user.clone(), password.clone()),
        None => RegistryAuth::Anonymous,
    };
    let diff_ids: Vec<String> = layers.iter().map(|(_, d)| d.clone()).collect();
    let image_config = serde_json::json!({
        "architecture": arch, "os": "linux", "config": config,
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    });
    client
        .push(
            &reference,
            &layers
                .into_iter()
                .map(|(data, _)| ImageLayer::oci_v1_gzip(data, None))
                .collect::<Vec<_>>(),
            Config::oci_v1(serde_json::to_vec(&image_config).unwrap(), None),
            &auth,
            None,
        )
        .await
        .unwrap();
    client
        .fetch_manifest_digest(&reference, &auth)
        .await
        .unwrap()
}

/// What is still mounted under `dir`.
pub fn mounts_under(dir: &Path) -> Vec<String> {
    let dir = dir.display().to_string();
    fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|m| m.starts_with(&dir))
        .map(String::from)
        .collect()
}

/// Writes an OCI image layout tarball (what `skopeo copy ... oci-archive:` writes) holding
/// one image of `layers` with the config's `config` section, tagged `tag`.
pub fn oci_archive(
    path: &Path,
    layers: Vec<(Vec<u8>, String)>,
    config: serde_json::Value,
    tag: &str,
) {
    let mut tar = tar::Builder::new(Vec::new());
    let blob = |tar: &mut tar::Builder<Vec<u8>>, data: &[u8]| -> String {
        let hex = hex::encode(Sha256::digest(data));
        append(
            tar,
            &format!("blobs/sha256/{hex}"),
            0o644,
            data,
            tar::EntryType::Regular,
            None,
        );
        format!("sha256:{hex}")
    };
    let diff_ids: Vec<String> = layers.iter().map(|(_, d)| d.clone()).collect();
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64", "os": "linux", "config": config,
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }))
    .unwrap();
    let config_digest = blob(&mut tar, &config);
    let layer_descriptors: Vec<serde_json::Value> = layers
        .iter()
        .map(|(data, _)| {
            serde_json::json!({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                "digest": blob(&mut tar, data), "size": data.len()})
        })
        .collect();
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": config_digest, "size": config.len()},
        "layers": layer_descriptors,
    }))
    .unwrap();
    let manifest_digest = blob(&mut tar, &manifest);
    let index = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": manifest_digest, "size": manifest.len(),
            "annotations": {"org.opencontainers.image.ref.name": tag}}],
    }))
    .unwrap();
    append(
        &mut tar,
        "oci-layout",
        0o644,
        br#"{"imageLayoutVersion":"1.0.0"}"#,
        tar::EntryType::Regular,
        None,
    );
    append(
        &mut tar,
        "index.json",
        0o644,
        &index,
        tar::EntryType::Regular,
        None,
    );
    fs::write(path, tar.into_inner().unwrap()).unwrap();
}
