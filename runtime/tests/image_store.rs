//! The local image store: imports of every supported kind of file, list, resolve, remove.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::json;
use sha2::{Digest as _, Sha256};
use skiff_runtime::image::{ImageError, ImageKind, ImageStore, sha256_digest};

const MODULE_WAT: &str = r#"(module (func (export "_start")) (memory (export "memory") 1))"#;

fn blob_count(store: &ImageStore) -> usize {
    fs::read_dir(store.root().join("blobs/sha256"))
        .unwrap()
        .count()
}

#[test]
fn image_wat_and_wasm_imports() {
    let tmp = tempfile::tempdir().unwrap();
    let store = ImageStore::open(&tmp.path().join("images")).unwrap();

    let wat_file = tmp.path().join("hello.wat");
    fs::write(&wat_file, MODULE_WAT).unwrap();
    let from_wat = store.import(&wat_file, "hello:v1").unwrap();
    assert_eq!(from_wat.reference, "docker.io/library/hello:v1");
    assert_eq!(from_wat.kind, ImageKind::WasmModule);
    assert!(from_wat.digest.starts_with("sha256:"));
    assert!(from_wat.created.ends_with('Z'), "{}", from_wat.created);
    let wasm = wat::parse_str(MODULE_WAT).unwrap();
    let path = store.wasm_path(&from_wat).unwrap();
    assert_eq!(fs::read(&path).unwrap(), wasm);
    assert_eq!(
        from_wat.wasm_digest.as_deref(),
        Some(sha256_digest(&wasm).as_str())
    );

    // The same module as a binary gets the same (reproducible) digest.
    let wasm_file = tmp.path().join("hello.wasm");
    fs::write(&wasm_file, &wasm).unwrap();
    let from_wasm = store.import(&wasm_file, "localhost/hello:v1").unwrap();
    assert_eq!(from_wasm.reference, "localhost/hello:v1");
    assert_eq!(from_wasm.digest, from_wat.digest);
    assert_eq!(
        blob_count(&store),
        3,
        "both tags share manifest, config and layer"
    );

    // The artifact is the CNCF Wasm OCI layout.
    let manifest: serde_json::Value =
        serde_json::from_slice(&fs::read(store.blob_path(&from_wasm.digest).unwrap()).unwrap())
            .unwrap();
    assert_eq!(
        manifest["mediaType"],
        "application/vnd.oci.image.manifest.v1+json"
    );
    assert_eq!(
        manifest["config"]["mediaType"],
        "application/vnd.wasm.config.v0+json"
    );
    assert_eq!(manifest["layers"][0]["mediaType"], "application/wasm");
    let config: serde_json::Value = serde_json::from_slice(
        &fs::read(
            store
                .blob_path(manifest["config"]["digest"].as_str().unwrap())
                .unwrap(),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(config["os"], "wasip1");
    assert_eq!(config["architecture"], "wasm");

    // A component, from text; a file without extension is sniffed.
    let component = tmp.path().join("component");
    fs::write(&component, ";; a component\n(component)").unwrap();
    let c = store.import(&component, "localhost/comp").unwrap();
    assert_eq!(c.kind, ImageKind::WasmComponent);
    assert_eq!(c.reference, "localhost/comp:latest");

    let refs: Vec<String> = store
        .list()
        .unwrap()
        .into_iter()
        .map(|r| r.reference)
        .collect();
    assert_eq!(
        refs,
        [
            "docker.io/library/hello:v1",
            "localhost/comp:latest",
            "localhost/hello:v1"
        ]
    );
    assert_eq!(store.resolve("hello:v1").unwrap().unwrap(), from_wat);
    assert_eq!(store.resolve("localhost/comp").unwrap().unwrap(), c);
    assert_eq!(store.resolve("comp").unwrap(), None);

    // Re-opening (as another process would) sees the same store.
    let again = ImageStore::open(&tmp.path().join("images")).unwrap();
    assert_eq!(again.list().unwrap().len(), 3);
}

#[test]
fn image_import_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let store = ImageStore::open(&tmp.path().join("images")).unwrap();
    let text = tmp.path().join("notes.txt");
    fs::write(&text, "hello").unwrap();
    assert!(matches!(
        store.import(&text, "x"),
        Err(ImageError::UnsupportedFile { .. })
    ));
    let bad_wasm = tmp.path().join("bad.wasm");
    fs::write(&bad_wasm, b"not wasm at all").unwrap();
    assert!(matches!(
        store.import(&bad_wasm, "x"),
        Err(ImageError::UnsupportedFile { .. })
    ));
    let bad_wat = tmp.path().join("bad.wat");
    fs::write(&bad_wat, "(module (func $f (unknown-instr)))").unwrap();
    let err = store.import(&bad_wat, "x").unwrap_err();
    assert!(matches!(err, ImageError::Wat { .. }), "{err}");
    let good = tmp.path().join("good.wat");
    fs::write(&good, "(module)").unwrap();
    assert!(matches!(
        store.import(&good, "Bad Ref"),
        Err(ImageError::InvalidReference { .. })
    ));
    assert!(matches!(
        store.import(&tmp.path().join("missing.wasm"), "x"),
        Err(ImageError::Io { .. })
    ));
    assert!(store.list().unwrap().is_empty());
    assert_eq!(blob_count(&store), 0, "failed imports leave no blobs");
}

/// Builds OCI image layouts blob by blob.
struct Layout {
    dir: PathBuf,
    index: Vec<serde_json::Value>,
}

impl Layout {
    fn new(dir: &Path) -> Self {
        fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
        fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
        Layout {
            dir: dir.to_path_buf(),
            index: Vec::new(),
        }
    }

    fn blob(&self, bytes: &[u8]) -> (String, usize) {
        let digest = sha256_digest(bytes);
        fs::write(
            self.dir
                .join("blobs/sha256")
                .join(&digest["sha256:".len()..]),
            bytes,
        )
        .unwrap();
        (digest, bytes.len())
    }

    fn manifest(
        &self,
        config_type: &str,
        config: &[u8],
        layers: &[(&str, &[u8])],
    ) -> (String, usize) {
        let (cd, cs) = self.blob(config);
        let layers: Vec<_> = layers
            .iter()
            .map(|(t, b)| {
                let (d, s) = self.blob(b);
                json!({"mediaType": t, "digest": d, "size": s})
            })
            .collect();
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": config_type, "digest": cd, "size": cs},
            "layers": layers,
        });
        self.blob(&serde_json::to_vec(&manifest).unwrap())
    }

    fn tag(&mut self, media_type: &str, (digest, size): (String, usize), name: &str) {
        self.index.push(json!({
            "mediaType": media_type, "digest": digest, "size": size,
            "annotations": {"org.opencontainers.image.ref.name": name},
        }));
        let index = json!({"schemaVersion": 2, "manifests": self.index});
        fs::write(
            self.dir.join("index.json"),
            serde_json::to_vec(&index).unwrap(),
        )
        .unwrap();
    }
}

const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

/// A gzipped tar holding one file.
fn layer_tar_gz(name: &str, content: &[u8]) -> Vec<u8> {
    let mut tar = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(content.len() as u64);
    header.set_mode(0o755);
    header.set_cksum();
    tar.append_data(&mut header, name, content).unwrap();
    let tar = tar.into_inner().unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&tar).unwrap();
    gz.finish().unwrap()
}

fn container_config() -> Vec<u8> {
    serde_json::to_vec(&json!({
        "architecture": "amd64", "os": "linux",
        "config": {"Cmd": ["/hello"]},
        "rootfs": {"type": "layers", "diff_ids": []},
    }))
    .unwrap()
}

/// Tars a directory (optionally gzipped), entries relative to it.
fn tar_dir(dir: &Path, out: &Path, gzip: bool) {
    let file = fs::File::create(out).unwrap();
    let writer: Box<dyn Write> = if gzip {
        Box::new(flate2::write::GzEncoder::new(
            file,
            flate2::Compression::fast(),
        ))
    } else {
        Box::new(file)
    };
    let mut tar = tar::Builder::new(writer);
    tar.append_dir_all(".", dir).unwrap();
    tar.into_inner().unwrap().flush().unwrap();
}

#[test]
fn image_oci_layout_directory_and_tarballs() {
    let tmp = tempfile::tempdir().unwrap();
    let store = ImageStore::open(&tmp.path().join("images")).unwrap();
    let mut layout = Layout::new(&tmp.path().join("layout"));

    let wasm = wat::parse_str(MODULE_WAT).unwrap();
    let wasm_manifest = layout.manifest(
        "application/vnd.wasm.config.v0+json",
        b"{}",
        &[("application/wasm", &wasm)],
    );
    layout.tag(MANIFEST, wasm_manifest.clone(), "v1");
    let web_layer = layer_tar_gz("hello", b"#!/bin/sh\necho hi\n");
    let web_manifest = layout.manifest(
        "application/vnd.oci.image.config.v1+json",
        &container_config(),
        &[("application/vnd.oci.image.layer.v1.tar+gzip", &web_layer)],
    );
    layout.tag(MANIFEST, web_manifest.clone(), "web");
    // A multi-platform image: an index of arm64 and amd64 manifests.
    let arm = layout.manifest(
        "application/vnd.oci.image.config.v1+json",
        br#"{"architecture":"arm64","os":"linux"}"#,
        &[(
            "application/vnd.oci.image.layer.v1.tar+gzip",
            &layer_tar_gz("arm", b"arm"),
        )],
    );
    let amd = layout.manifest(
        "application/vnd.oci.image.config.v1+json",
        br#"{"architecture":"amd64","os":"linux"}"#,
        &[(
            "application/vnd.oci.image.layer.v1.tar+gzip",
            &layer_tar_gz("amd", b"amd"),
        )],
    );
    let platform_index = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {"mediaType": MANIFEST, "digest": arm.0, "size": arm.1,
             "platform": {"architecture": "arm64", "os": "linux"}},
            {"mediaType": MANIFEST, "digest": amd.0, "size": amd.1,
             "platform": {"architecture": "amd64", "os": "linux"}},
        ],
    });
    let multi = layout.blob(&serde_json::to_vec(&platform_index).unwrap());
    layout.tag(
        "application/vnd.oci.image.index.v1+json",
        multi.clone(),
        "multi",
    );

    // The entry named like the reference's tag is picked.
    let w = store.import(&layout.dir, "localhost/app:v1").unwrap();
    assert_eq!(w.kind, ImageKind::WasmModule);
    assert_eq!(w.digest, wasm_manifest.0);
    assert_eq!(fs::read(store.wasm_path(&w).unwrap()).unwrap(), wasm);

    let c = store.import(&layout.dir, "localhost/app:web").unwrap();
    assert_eq!(c.kind, ImageKind::Container);
    assert_eq!(c.digest, web_manifest.0);
    assert_eq!(c.wasm_digest, None);
    assert!(store.wasm_path(&c).is_none());
    assert!(store.blob_path(&sha256_digest(&web_layer)).is_some());

    let m = store.import(&layout.dir, "localhost/app:multi").unwrap();
    assert_eq!(m.digest, amd.0, "linux/amd64 is picked from the index");
    assert_eq!(
        store.resolve(&multi.0).unwrap().unwrap().reference,
        "localhost/app:multi",
        "the index digest resolves too"
    );

    let err = store
        .import(&layout.dir, "localhost/app:other")
        .unwrap_err();
    assert!(
        matches!(&err, ImageError::InvalidImage { reason, .. } if reason.contains("v1, web, multi")),
        "{err}"
    );

    // The same layout as a tarball and as a gzipped tarball.
    let tarball = tmp.path().join("layout.tar");
    tar_dir(&layout.dir, &tarball, false);
    let t = store.import(&tarball, "tarred:web").unwrap();
    assert_eq!((t.kind, &t.digest), (ImageKind::Container, &c.digest));
    let tgz = tmp.path().join("layout.tar.gz");
    tar_dir(&layout.dir, &tgz, true);
    let g = store.import(&tgz, "gzipped:v1").unwrap();
    assert_eq!((g.kind, &g.digest), (ImageKind::WasmModule, &w.digest));
    assert_eq!(
        fs::read_dir(store.root().join("tmp")).unwrap().count(),
        0,
        "unpacked tarballs are cleaned up"
    );

    // Corrupt content is refused.
    let (layer_digest, _) = layout.blob(&web_layer);
    fs::write(
        layout
            .dir
            .join("blobs/sha256")
            .join(&layer_digest["sha256:".len()..]),
        b"tampered",
    )
    .unwrap();
    let fresh = ImageStore::open(&tmp.path().join("fresh")).unwrap();
    let err = fresh.import(&layout.dir, "x:web").unwrap_err();
    assert!(matches!(err, ImageError::DigestMismatch { .. }), "{err}");

    // Removing every tag collects every blob.
    for r in store.list().unwrap() {
        let removed = store.remove(&r.reference).unwrap();
        assert_eq!(removed, r);
    }
    assert!(store.list().unwrap().is_empty());
    assert_eq!(blob_count(&store), 0);
    assert!(matches!(
        store.remove("localhost/app:v1"),
        Err(ImageError::NotFound(_))
    ));
}

#[test]
fn image_docker_save_tarball() {
    let tmp = tempfile::tempdir().unwrap();
    let store = ImageStore::open(&tmp.path().join("images")).unwrap();
    let save = tmp.path().join("save");
    let config = container_config();
    let config_hex = hex::encode(Sha256::digest(&config));
    fs::create_dir_all(save.join("layer1")).unwrap();
    fs::write(save.join(format!("{config_hex}.json")), &config).unwrap();
    let mut tar = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(2);
    header.set_cksum();
    tar.append_data(&mut header, "hi.txt", &b"hi"[..]).unwrap();
    let layer = tar.into_inner().unwrap();
    fs::write(save.join("layer1/layer.tar"), &layer).unwrap();
    let manifest = json!([{
        "Config": format!("{config_hex}.json"),
        "RepoTags": ["hello:saved"],
        "Layers": ["layer1/layer.tar"],
    }]);
    fs::write(save.join("manifest.json"), manifest.to_string()).unwrap();
    let tarball = tmp.path().join("saved.tar");
    tar_dir(&save, &tarball, false);

    let r = store.import(&tarball, "hello:saved").unwrap();
    assert_eq!(r.kind, ImageKind::Container);
    assert_eq!(r.reference, "docker.io/library/hello:saved");
    let manifest: serde_json::Value =
        serde_json::from_slice(&fs::read(store.blob_path(&r.digest).unwrap()).unwrap()).unwrap();
    assert_eq!(manifest["config"]["digest"], format!("sha256:{config_hex}"));
    assert_eq!(
        manifest["layers"][0]["mediaType"],
        "application/vnd.oci.image.layer.v1.tar"
    );
    assert_eq!(manifest["layers"][0]["digest"], sha256_digest(&layer));

    // Paths leading out of the archive are refused.
    let evil = json!([{"Config": "../outside.json", "Layers": []}]);
    fs::write(save.join("manifest.json"), evil.to_string()).unwrap();
    let err = store.import(&save, "evil").unwrap_err();
    assert!(matches!(err, ImageError::InvalidImage { .. }), "{err}");
}
