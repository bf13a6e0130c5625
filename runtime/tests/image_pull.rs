//! Pulls from a real registry: Debian's `docker-registry` (distribution 2.8) started on a
//! free loopback port with a temporary root (the helper the root crate's container tests use).
//! Images are pushed with oci-client's push API.

use std::fs;
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use oci_client::client::{ClientConfig, ClientProtocol, Config, ImageLayer};
use oci_client::manifest::{ImageIndexEntry, OciImageIndex, OciImageManifest, Platform};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};
use sha2::{Digest as _, Sha256};
use skiff_runtime::image::{ImageKind, ImageStore, PullError, PullOptions};

#[path = "../../tests/common/oci.rs"]
mod oci;

const REGISTRY_BIN: &str = "docker-registry";

fn find_binary(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|dir| Path::new(dir).join(name))
        .find(|p| p.is_file())
}

fn push_client() -> Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    Client::try_from(ClientConfig {
        protocol: ClientProtocol::Http,
        ..Default::default()
    })
    .unwrap()
}

/// A gzipped tar holding one file.
fn layer_tar_gz(name: &str, content: &[u8]) -> (Vec<u8>, String) {
    let mut tar = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(content.len() as u64);
    header.set_mode(0o644);
    header.set_cksum();
    tar.append_data(&mut header, name, content).unwrap();
    let tar = tar.into_inner().unwrap();
    let diff_id = format!("sha256:{}", hex::encode(Sha256::digest(&tar)));
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&tar).unwrap();
    (gz.finish().unwrap(), diff_id)
}

async fn push_container(client: &Client, reference: &Reference, arch: &str, text: &[u8]) -> String {
    let (layer, diff_id) = layer_tar_gz("hello.txt", text);
    let config = serde_json::json!({
        "architecture": arch, "os": "linux",
        "config": {"Cmd": ["/bin/cat", "/hello.txt"]},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
    });
    client
        .push(
            reference,
            &[ImageLayer::oci_v1_gzip(layer, None)],
            Config::oci_v1(serde_json::to_vec(&config).unwrap(), None),
            &RegistryAuth::Anonymous,
            None,
        )
        .await
        .unwrap();
    client
        .fetch_manifest_digest(reference, &RegistryAuth::Anonymous)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn image_pull_from_a_real_registry() {
    if find_binary(REGISTRY_BIN).is_none() {
        eprintln!(
            "SKIPPED image_pull_from_a_real_registry: `{REGISTRY_BIN}` is not installed \
             (apt-get install docker-registry)"
        );
        return;
    }
    let registry = oci::start_registry();
    let addr = &registry.addr.clone();
    let client = push_client();
    let tmp = tempfile::tempdir().unwrap();
    let store = ImageStore::open(&tmp.path().join("images")).unwrap();
    let options = PullOptions::default();

    // A Wasm artifact: wasm config + one application/wasm layer.
    let wasm = wat::parse_str(r#"(module (func (export "_start")) (memory (export "memory") 1))"#)
        .unwrap();
    let wasm_ref: Reference = format!("{addr}/wasm/hello:v1").parse().unwrap();
    let layers = [ImageLayer::new(
        wasm.clone(),
        "application/wasm".to_string(),
        None,
    )];
    let config = Config::new(
        br#"{"architecture":"wasm","os":"wasip1"}"#.to_vec(),
        "application/vnd.wasm.config.v0+json".to_string(),
        None,
    );
    let manifest = OciImageManifest::build(&layers, &config, None);
    client
        .push(
            &wasm_ref,
            &layers,
            config,
            &RegistryAuth::Anonymous,
            Some(manifest),
        )
        .await
        .expect("push the wasm artifact");
    let pushed = client
        .fetch_manifest_digest(&wasm_ref, &RegistryAuth::Anonymous)
        .await
        .unwrap();

    let record = store
        .pull(&format!("{addr}/wasm/hello:v1"), &options)
        .await
        .expect("pull the wasm artifact");
    assert_eq!(record.reference, format!("{addr}/wasm/hello:v1"));
    assert_eq!(record.kind, ImageKind::WasmModule);
    assert_eq!(record.digest, pushed);
    let path = store.wasm_path(&record).unwrap();
    assert_eq!(fs::read(&path).unwrap(), wasm);
    assert_eq!(store.resolve(&pushed).unwrap().unwrap(), record);

    // Again: the same image, and the blob file is not rewritten.
    let before = fs::metadata(&path).unwrap();
    let again = store
        .pull(&format!("{addr}/wasm/hello:v1"), &options)
        .await
        .unwrap();
    assert_eq!(again.digest, record.digest);
    let after = fs::metadata(&path).unwrap();
    assert_eq!(
        (before.ino(), before.mtime_nsec()),
        (after.ino(), after.mtime_nsec()),
        "cached blobs are not downloaded again"
    );
    // By digest, served from the store.
    let by_digest = store
        .pull(&format!("{addr}/wasm/hello@{pushed}"), &options)
        .await
        .unwrap();
    assert_eq!(by_digest.digest, pushed);
    assert_eq!(by_digest.kind, ImageKind::WasmModule);

    // A missing tag and a missing repository: NotFound, with the registry's words.
    let err = store
        .pull(&format!("{addr}/wasm/hello:nope"), &options)
        .await
        .unwrap_err();
    match &err {
        PullError::NotFound { reference, message } => {
            assert_eq!(reference, &format!("{addr}/wasm/hello:nope"));
            assert!(message.contains("manifest unknown"), "{message}");
        }
        other => panic!("want NotFound, got {other:?}"),
    }
    assert!(err.to_string().contains("manifest unknown"), "{err}");
    let err = store
        .pull(&format!("{addr}/no/such-repo:v1"), &options)
        .await
        .unwrap_err();
    assert!(matches!(err, PullError::NotFound { .. }), "{err:?}");

    // A tiny container image: OCI config and one tar.gz layer.
    let web_ref: Reference = format!("{addr}/tiny/web:1.0").parse().unwrap();
    let web_digest = push_container(&client, &web_ref, "amd64", b"hello from a layer\n").await;
    let web = store
        .pull(&format!("{addr}/tiny/web:1.0"), &options)
        .await
        .expect("pull the container image");
    assert_eq!(web.kind, ImageKind::Container);
    assert_eq!(web.digest, web_digest);
    assert_eq!(web.wasm_digest, None);
    let manifest: serde_json::Value =
        serde_json::from_slice(&fs::read(store.blob_path(&web.digest).unwrap()).unwrap()).unwrap();
    for layer in manifest["layers"].as_array().unwrap() {
        assert!(store.blob_path(layer["digest"].as_str().unwrap()).is_some());
    }
    assert!(
        store
            .blob_path(manifest["config"]["digest"].as_str().unwrap())
            .is_some()
    );

    // A multi-platform index: the linux/amd64 image is pulled.
    let arm_ref: Reference = format!("{addr}/tiny/multi:arm64").parse().unwrap();
    let amd_ref: Reference = format!("{addr}/tiny/multi:amd64").parse().unwrap();
    let arm = push_container(&client, &arm_ref, "arm64", b"arm").await;
    let amd = push_container(&client, &amd_ref, "amd64", b"amd").await;
    let entry = |digest: &str, arch: &str| {
        let platform: Platform = serde_json::from_value(serde_json::json!({
            "architecture": arch, "os": "linux"
        }))
        .unwrap();
        ImageIndexEntry {
            media_type: "application/vnd.oci.image.manifest.v1+json".to_string(),
            digest: digest.to_string(),
            size: 0,
            platform: Some(platform),
            annotations: None,
            artifact_type: None,
        }
    };
    let mut manifests = vec![entry(&arm, "arm64"), entry(&amd, "amd64")];
    for m in &mut manifests {
        let r: Reference = format!("{addr}/tiny/multi@{}", m.digest).parse().unwrap();
        let (bytes, _) = client
            .pull_manifest_raw(
                &r,
                &RegistryAuth::Anonymous,
                &["application/vnd.oci.image.manifest.v1+json"],
            )
            .await
            .unwrap();
        m.size = bytes.len() as i64;
    }
    let index = OciImageIndex {
        schema_version: 2,
        media_type: Some("application/vnd.oci.image.index.v1+json".to_string()),
        manifests,
        artifact_type: None,
        annotations: None,
    };
    let multi_ref: Reference = format!("{addr}/tiny/multi:latest").parse().unwrap();
    client
        .push_manifest_list(&multi_ref, &RegistryAuth::Anonymous, index)
        .await
        .expect("push the index");
    let multi = store
        .pull(&format!("{addr}/tiny/multi"), &options)
        .await
        .expect("pull through the index");
    assert_eq!(multi.reference, format!("{addr}/tiny/multi:latest"));
    assert_eq!(multi.digest, amd, "the linux/amd64 manifest");
    assert_eq!(multi.kind, ImageKind::Container);

    let records: Vec<String> = store
        .list()
        .unwrap()
        .into_iter()
        .map(|r| r.reference)
        .collect();
    assert_eq!(
        records,
        [
            format!("{addr}/tiny/multi:latest"),
            format!("{addr}/tiny/web:1.0"),
            format!("{addr}/wasm/hello:v1"),
            format!("{addr}/wasm/hello@{pushed}"),
        ]
    );
    drop(registry);

    // With the registry gone: a network error, and the store still answers.
    let err = store
        .pull(&format!("{addr}/wasm/hello:v1"), &options)
        .await
        .unwrap_err();
    assert!(matches!(err, PullError::Network { .. }), "{err:?}");
    assert!(
        store
            .resolve(&format!("{addr}/wasm/hello:v1"))
            .unwrap()
            .is_some()
    );
}
