//! Media types, the OCI manifest/index documents, and WebAssembly binary detection.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// OCI image manifest.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image index.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// Docker image manifest, schema 2.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker manifest list.
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// OCI image configuration.
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// Uncompressed OCI layer.
pub const OCI_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
/// Gzip-compressed OCI layer.
pub const OCI_LAYER_TAR_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
/// CNCF Wasm OCI artifact: the config.
pub const WASM_CONFIG: &str = "application/vnd.wasm.config.v0+json";
/// CNCF Wasm OCI artifact: the layer holding the module or component.
pub const WASM_LAYER: &str = "application/wasm";
/// The older Wasm-to-OCI layer type.
pub const WASM_LAYER_LEGACY: &str = "application/vnd.wasm.content.layer.v1+wasm";
/// The older Wasm-to-OCI config type.
pub const WASM_CONFIG_LEGACY: &str = "application/vnd.wasm.config.v1+json";

/// The manifest media types a pull accepts.
pub const MANIFEST_MEDIA_TYPES: &[&str] = &[
    OCI_MANIFEST,
    OCI_INDEX,
    DOCKER_MANIFEST,
    DOCKER_MANIFEST_LIST,
];

/// Annotation naming an image in an OCI layout's index.
pub const ANNOTATION_REF_NAME: &str = "org.opencontainers.image.ref.name";
/// Annotation containerd and `docker save` put on an OCI layout's index entries.
pub const ANNOTATION_CONTAINERD_NAME: &str = "io.containerd.image.name";

/// A content descriptor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    /// The media type of the referenced content.
    #[serde(default)]
    pub media_type: String,
    /// `sha256:<hex>`.
    pub digest: String,
    /// Size in bytes.
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub urls: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
}

impl Descriptor {
    /// A descriptor with just a media type, digest and size.
    pub fn new(media_type: &str, digest: String, size: u64) -> Self {
        Descriptor {
            media_type: media_type.to_string(),
            digest,
            size,
            urls: None,
            annotations: None,
            platform: None,
            artifact_type: None,
        }
    }

    fn annotation(&self, key: &str) -> Option<&str> {
        self.annotations.as_ref()?.get(key).map(String::as_str)
    }

    /// The names an OCI layout index gives this entry.
    pub fn ref_names(&self) -> impl Iterator<Item = &str> {
        [ANNOTATION_REF_NAME, ANNOTATION_CONTAINERD_NAME]
            .into_iter()
            .filter_map(|k| self.annotation(k))
    }
}

/// The platform of an index entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Platform {
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub os: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

/// An image manifest (OCI or Docker schema 2: the same shape).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    pub config: Descriptor,
    #[serde(default)]
    pub layers: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

/// An image index (OCI) or manifest list (Docker).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Index {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    #[serde(default)]
    pub manifests: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

/// A manifest or an index, told apart by media type or shape.
#[derive(Debug, Clone)]
pub enum Document {
    Manifest(Box<Manifest>),
    Index(Index),
}

/// Parses a manifest or index. The error is a human-readable reason.
pub fn parse_document(bytes: &[u8]) -> Result<Document, String> {
    let value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| format!("not JSON: {e}"))?;
    let schema = value.get("schemaVersion").and_then(|v| v.as_u64());
    if schema != Some(2) {
        return Err(match schema {
            Some(v) => format!("unsupported manifest schemaVersion {v} (only 2 is supported)"),
            None => "manifest has no schemaVersion".to_string(),
        });
    }
    let media_type = value.get("mediaType").and_then(|v| v.as_str());
    let is_index = match media_type {
        Some(OCI_INDEX | DOCKER_MANIFEST_LIST) => true,
        Some(OCI_MANIFEST | DOCKER_MANIFEST) => false,
        Some(other) if value.get("manifests").is_none() && value.get("config").is_none() => {
            return Err(format!("unsupported manifest media type {other}"));
        }
        _ => value.get("manifests").is_some(),
    };
    if is_index {
        serde_json::from_value(value)
            .map(Document::Index)
            .map_err(|e| format!("invalid image index: {e}"))
    } else {
        serde_json::from_value(value)
            .map(|m| Document::Manifest(Box::new(m)))
            .map_err(|e| format!("invalid image manifest: {e}"))
    }
}

/// Whether a descriptor's media type is an index/manifest list.
pub fn is_index_media_type(media_type: &str) -> bool {
    media_type == OCI_INDEX || media_type == DOCKER_MANIFEST_LIST
}

/// Picks the entry to run from an index: linux/amd64 first; else, ignoring attestations
/// (`unknown/unknown`), the only entry, or the first Wasm (`architecture: wasm`) entry.
pub fn select_platform(manifests: &[Descriptor]) -> Option<&Descriptor> {
    fn platform(d: &Descriptor) -> Option<(&str, &str)> {
        d.platform
            .as_ref()
            .map(|p| (p.os.as_str(), p.architecture.as_str()))
    }
    if let Some(d) = manifests
        .iter()
        .find(|d| platform(d) == Some(("linux", "amd64")))
    {
        return Some(d);
    }
    let runnable: Vec<&Descriptor> = manifests
        .iter()
        .filter(|d| platform(d) != Some(("unknown", "unknown")))
        .collect();
    if let [only] = runnable.as_slice() {
        return Some(only);
    }
    runnable
        .into_iter()
        .find(|d| matches!(platform(d), Some((_, "wasm"))))
}

/// The layer holding the Wasm binary, if this manifest is a Wasm artifact: an
/// `application/wasm` layer with the Wasm config, or the older Wasm layer type.
pub fn wasm_layer(manifest: &Manifest) -> Option<&Descriptor> {
    let wasm_config = manifest.config.media_type == WASM_CONFIG
        || manifest.config.media_type == WASM_CONFIG_LEGACY;
    manifest
        .layers
        .iter()
        .find(|l| l.media_type == WASM_LAYER_LEGACY || (l.media_type == WASM_LAYER && wasm_config))
}

/// What a WebAssembly binary is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WasmBinaryKind {
    /// A core module (`\0asm` version 1, layer 0).
    Module,
    /// A component (`\0asm`, layer 1).
    Component,
}

/// Tells a core module from a component by the 8-byte preamble: the magic `\0asm`, then a
/// 16-bit version and a 16-bit layer (0 for core modules, 1 for components).
/// `None` when `header` is not a WebAssembly binary's preamble.
pub fn detect_wasm(header: &[u8]) -> Option<WasmBinaryKind> {
    if header.len() < 8 || &header[..4] != b"\0asm" {
        return None;
    }
    let version = u16::from_le_bytes([header[4], header[5]]);
    let layer = u16::from_le_bytes([header[6], header[7]]);
    match (layer, version) {
        (0, 1) => Some(WasmBinaryKind::Module),
        (1, _) => Some(WasmBinaryKind::Component),
        _ => None,
    }
}

/// The config blob of a Wasm artifact skiff builds on import (CNCF Wasm OCI artifact
/// layout). No `created` field, so importing the same binary twice gives the same digest.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WasmConfig {
    pub architecture: String,
    pub os: String,
    pub layer_digests: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_detection() {
        let module = wat::parse_str("(module)").unwrap();
        let component = wat::parse_str("(component)").unwrap();
        assert_eq!(detect_wasm(&module), Some(WasmBinaryKind::Module));
        assert_eq!(detect_wasm(&component), Some(WasmBinaryKind::Component));
        assert_eq!(
            detect_wasm(b"\0asm\x01\0\0\0"),
            Some(WasmBinaryKind::Module)
        );
        assert_eq!(
            detect_wasm(b"\0asm\x0d\0\x01\0"),
            Some(WasmBinaryKind::Component)
        );
        assert_eq!(detect_wasm(b"\0asm\x01\0"), None, "short");
        assert_eq!(
            detect_wasm(b"\0asm\x02\0\0\0"),
            None,
            "unknown core version"
        );
        assert_eq!(detect_wasm(b"\0asm\x01\0\x02\0"), None, "unknown layer");
        assert_eq!(detect_wasm(b"(module)"), None);
        assert_eq!(detect_wasm(b"\x7fELF\x02\x01\x01\0"), None);
    }

    fn desc(media_type: &str) -> Descriptor {
        Descriptor::new(media_type, "sha256:x".into(), 1)
    }

    #[test]
    fn wasm_recognition() {
        let mut m = Manifest {
            schema_version: 2,
            media_type: Some(OCI_MANIFEST.into()),
            artifact_type: None,
            config: desc(WASM_CONFIG),
            layers: vec![desc(WASM_LAYER)],
            annotations: None,
        };
        assert!(wasm_layer(&m).is_some());
        m.config = desc(OCI_CONFIG);
        assert!(
            wasm_layer(&m).is_none(),
            "application/wasm needs the wasm config"
        );
        m.layers = vec![desc(WASM_LAYER_LEGACY)];
        assert!(
            wasm_layer(&m).is_some(),
            "the older layer type alone is enough"
        );
        m.layers = vec![desc(OCI_LAYER_TAR_GZIP)];
        assert!(wasm_layer(&m).is_none());
    }

    #[test]
    fn documents_and_platforms() {
        let index = br#"{"schemaVersion":2,"manifests":[
            {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:a","size":1,
             "platform":{"architecture":"arm64","os":"linux"}},
            {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:b","size":1,
             "platform":{"architecture":"amd64","os":"linux"}}]}"#;
        let Document::Index(index) = parse_document(index).unwrap() else {
            panic!("not an index")
        };
        assert_eq!(
            select_platform(&index.manifests).unwrap().digest,
            "sha256:b"
        );
        let mut attested = index.manifests.clone();
        attested[1].platform = Some(Platform {
            architecture: "unknown".into(),
            os: "unknown".into(),
            variant: None,
        });
        assert_eq!(select_platform(&attested).unwrap().digest, "sha256:a");
        let mut two = attested.clone();
        two[1].platform = Some(Platform {
            architecture: "arm".into(),
            os: "linux".into(),
            variant: Some("v7".into()),
        });
        assert!(select_platform(&two).is_none());

        let manifest = br#"{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json",
            "config":{"mediaType":"application/vnd.docker.container.image.v1+json","digest":"sha256:c","size":2},
            "layers":[]}"#;
        assert!(matches!(
            parse_document(manifest).unwrap(),
            Document::Manifest(_)
        ));
        let err = parse_document(br#"{"schemaVersion":1,"fsLayers":[]}"#).unwrap_err();
        assert!(err.contains("schemaVersion 1"), "{err}");
    }
}
