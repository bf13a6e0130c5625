//! `ImageStore::import`: `.wasm`, `.wat`, OCI layout directories, OCI and `docker save`
//! tarballs.

use std::fs::{self, File};
use std::io::{BufReader, Read};
use std::path::{Component, Path, PathBuf};

use sha2::{Digest as _, Sha256};

use super::blobs::{io_err, unique_name};
use super::media::{
    self, Descriptor, Document, Manifest, OCI_CONFIG, OCI_LAYER_TAR, OCI_LAYER_TAR_GZIP,
    OCI_MANIFEST, WASM_CONFIG, WASM_LAYER, WasmConfig, detect_wasm,
};
use super::reference::{ImageReference, validate_digest};
use super::{ImageError, ImageKind, ImageRecord, ImageStore, NewImage};

/// How deep nested indexes may go in a layout.
const MAX_INDEX_DEPTH: usize = 4;

pub(super) fn import(
    store: &ImageStore,
    path: &Path,
    reference: &str,
) -> Result<ImageRecord, ImageError> {
    let parsed = ImageReference::parse(reference)?;
    if parsed.digest.is_some() {
        return Err(ImageError::InvalidReference {
            reference: reference.to_string(),
            reason: "an import is tagged by name and tag, not by digest".to_string(),
        });
    }
    let meta = fs::metadata(path).map_err(io_err(path))?;
    if meta.is_dir() {
        return import_dir(store, path, &parsed, reference);
    }
    let mut head = Vec::with_capacity(512);
    File::open(path)
        .and_then(|f| f.take(512).read_to_end(&mut head))
        .map_err(io_err(path))?;
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    let is_tar = head.len() >= 262 && &head[257..262] == b"ustar";
    let is_gzip = head.starts_with(&[0x1f, 0x8b]);
    if head.starts_with(b"\0asm") {
        let bytes = fs::read(path).map_err(io_err(path))?;
        import_wasm(store, &bytes, &parsed, path)
    } else if matches!(ext.as_deref(), Some("wat" | "wast")) || looks_like_wat(&head) {
        let bytes = wat::parse_file(path).map_err(|e| ImageError::Wat {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        import_wasm(store, &bytes, &parsed, path)
    } else if is_tar || is_gzip {
        import_tarball(store, path, is_gzip, &parsed, reference)
    } else if ext.as_deref() == Some("wasm") {
        Err(ImageError::UnsupportedFile {
            path: path.to_path_buf(),
            reason: "not a WebAssembly binary (no \\0asm preamble)".to_string(),
        })
    } else {
        Err(ImageError::UnsupportedFile {
            path: path.to_path_buf(),
            reason: "not an importable image: expected a .wasm or .wat file, an OCI layout \
                     directory, or an OCI/docker-save tarball"
                .to_string(),
        })
    }
}

/// WebAssembly text starts with `(` after whitespace and `;;` / `(; ;)` comments.
fn looks_like_wat(head: &[u8]) -> bool {
    let text = String::from_utf8_lossy(head);
    let mut rest = text.trim_start();
    loop {
        if let Some(after) = rest.strip_prefix(";;") {
            rest = after.split_once('\n').map_or("", |(_, r)| r).trim_start();
        } else if let Some(after) = rest.strip_prefix("(;") {
            rest = after.split_once(";)").map_or("", |(_, r)| r).trim_start();
        } else {
            return rest.starts_with('(');
        }
    }
}

/// Stores a Wasm binary as a CNCF Wasm OCI artifact.
fn import_wasm(
    store: &ImageStore,
    wasm: &[u8],
    reference: &ImageReference,
    path: &Path,
) -> Result<ImageRecord, ImageError> {
    let kind = detect_wasm(wasm).ok_or_else(|| ImageError::UnsupportedFile {
        path: path.to_path_buf(),
        reason: "unknown WebAssembly version or layer in the preamble".to_string(),
    })?;
    let layer_digest = super::sha256_digest(wasm);
    let config = WasmConfig {
        architecture: "wasm".to_string(),
        os: match kind {
            media::WasmBinaryKind::Module => "wasip1",
            media::WasmBinaryKind::Component => "wasip2",
        }
        .to_string(),
        layer_digests: vec![layer_digest.clone()],
    };
    let config = serde_json::to_vec(&config).expect("the config serializes");
    let manifest = Manifest {
        schema_version: 2,
        media_type: Some(OCI_MANIFEST.to_string()),
        artifact_type: None,
        config: Descriptor::new(
            WASM_CONFIG,
            super::sha256_digest(&config),
            config.len() as u64,
        ),
        layers: vec![Descriptor::new(
            WASM_LAYER,
            layer_digest.clone(),
            wasm.len() as u64,
        )],
        annotations: None,
    };
    let manifest = serde_json::to_vec(&manifest).expect("the manifest serializes");
    let manifest_digest = super::sha256_digest(&manifest);
    let all = vec![
        manifest_digest.clone(),
        super::sha256_digest(&config),
        layer_digest.clone(),
    ];
    let _pin = store.pin(&all)?;
    let blobs = store.blobs();
    blobs.put_bytes(wasm, Some(&layer_digest))?;
    blobs.put_bytes(&config, None)?;
    blobs.put_bytes(&manifest, Some(&manifest_digest))?;
    store.commit(NewImage {
        reference: reference.to_string(),
        digest: manifest_digest,
        index_digest: None,
        kind: kind.into(),
        wasm_digest: Some(layer_digest),
        blobs: all,
        size: (wasm.len() + config.len() + manifest.len()) as u64,
    })
}

/// An OCI layout (`oci-layout` + `index.json`) or an unpacked `docker save` (`manifest.json`).
fn import_dir(
    store: &ImageStore,
    dir: &Path,
    reference: &ImageReference,
    given: &str,
) -> Result<ImageRecord, ImageError> {
    if dir.join("index.json").is_file() {
        if !dir.join("oci-layout").is_file() {
            return Err(ImageError::UnsupportedFile {
                path: dir.to_path_buf(),
                reason: "has index.json but no oci-layout file: not an OCI image layout"
                    .to_string(),
            });
        }
        import_oci_layout(store, dir, reference, given)
    } else if dir.join("manifest.json").is_file() {
        import_docker_save(store, dir, reference, given)
    } else {
        Err(ImageError::UnsupportedFile {
            path: dir.to_path_buf(),
            reason: "not an OCI image layout (no oci-layout and index.json) nor a docker-save \
                     directory (no manifest.json)"
                .to_string(),
        })
    }
}

/// Unpacks a tarball into the store's temp directory and imports that.
fn import_tarball(
    store: &ImageStore,
    path: &Path,
    gzip: bool,
    reference: &ImageReference,
    given: &str,
) -> Result<ImageRecord, ImageError> {
    struct RemoveOnDrop(PathBuf);
    impl Drop for RemoveOnDrop {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }
    let dir = store.tmp_dir().join(unique_name("unpack"));
    fs::create_dir_all(&dir).map_err(io_err(&dir))?;
    let _cleanup = RemoveOnDrop(dir.clone());
    let file = BufReader::new(File::open(path).map_err(io_err(path))?);
    let reader: Box<dyn Read> = if gzip {
        Box::new(flate2::read::GzDecoder::new(file))
    } else {
        Box::new(file)
    };
    let mut archive = tar::Archive::new(reader);
    archive.set_preserve_permissions(false);
    archive.set_preserve_mtime(false);
    archive.set_unpack_xattrs(false);
    archive.unpack(&dir).map_err(|e| ImageError::InvalidImage {
        what: path.display().to_string(),
        reason: format!("cannot unpack the tarball: {e}"),
    })?;
    import_dir(store, &dir, reference, given).map_err(|e| match e {
        ImageError::UnsupportedFile { reason, .. } => ImageError::UnsupportedFile {
            path: path.to_path_buf(),
            reason: format!("tarball {}", reason.replacen("has ", "has an ", 1)),
        },
        other => other,
    })
}

/// Whether an index entry's names match the reference being imported.
fn names_match(desc: &Descriptor, reference: &ImageReference, given: &str) -> bool {
    let normalized = reference.to_string();
    desc.ref_names().any(|name| {
        name == given
            || Some(name) == reference.tag.as_deref()
            || ImageReference::parse(name).is_ok_and(|r| r.to_string() == normalized)
    })
}

/// A file inside `root` (refusing paths and symlinks that lead out of it).
fn inside(root: &Path, relative: &str) -> Result<PathBuf, ImageError> {
    let invalid = |reason: String| ImageError::InvalidImage {
        what: root.join(relative).display().to_string(),
        reason,
    };
    let rel = Path::new(relative);
    if rel
        .components()
        .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
    {
        return Err(invalid("path leaves the image directory".to_string()));
    }
    let root_real = root.canonicalize().map_err(io_err(root))?;
    let path = root.join(rel);
    let real = path.canonicalize().map_err(io_err(&path))?;
    if !real.starts_with(&root_real) {
        return Err(invalid("links out of the image directory".to_string()));
    }
    Ok(real)
}

fn layout_blob(dir: &Path, digest: &str) -> Result<PathBuf, ImageError> {
    validate_digest(digest).map_err(|reason| ImageError::InvalidImage {
        what: dir.display().to_string(),
        reason,
    })?;
    inside(dir, &format!("blobs/sha256/{}", &digest["sha256:".len()..]))
}

fn copy_blob(store: &ImageStore, dir: &Path, desc: &Descriptor) -> Result<(), ImageError> {
    let path = layout_blob(dir, &desc.digest)?;
    let mut file = File::open(&path).map_err(io_err(&path))?;
    store
        .blobs()
        .put_reader(&mut file, Some(&desc.digest), Some(desc.size), &path)?;
    Ok(())
}

fn read_json_file<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, ImageError> {
    let bytes = fs::read(path).map_err(io_err(path))?;
    serde_json::from_slice(&bytes).map_err(|e| ImageError::InvalidImage {
        what: path.display().to_string(),
        reason: e.to_string(),
    })
}

fn import_oci_layout(
    store: &ImageStore,
    dir: &Path,
    reference: &ImageReference,
    given: &str,
) -> Result<ImageRecord, ImageError> {
    let index_path = dir.join("index.json");
    let index: media::Index = read_json_file(&index_path)?;
    let invalid = |reason: String| ImageError::InvalidImage {
        what: index_path.display().to_string(),
        reason,
    };
    let named: Vec<&Descriptor> = index
        .manifests
        .iter()
        .filter(|d| names_match(d, reference, given))
        .collect();
    let mut desc = match (named.as_slice(), index.manifests.as_slice()) {
        ([one, ..], _) => (*one).clone(),
        ([], []) => return Err(invalid("the layout holds no image".to_string())),
        ([], [only]) => only.clone(),
        ([], all) => media::select_platform(all).cloned().ok_or_else(|| {
            let names: Vec<&str> = all.iter().flat_map(|d| d.ref_names()).collect();
            invalid(format!(
                "the layout holds {} images and none is named {given:?} (names: {})",
                all.len(),
                if names.is_empty() {
                    "none".to_string()
                } else {
                    names.join(", ")
                }
            ))
        })?,
    };

    // Descend through nested indexes to one platform's manifest.
    let mut index_blobs: Vec<Descriptor> = Vec::new();
    let mut depth = 0;
    let (manifest_desc, manifest_bytes, manifest) = loop {
        let path = layout_blob(dir, &desc.digest)?;
        let bytes = fs::read(&path).map_err(io_err(&path))?;
        let actual = super::sha256_digest(&bytes);
        if actual != desc.digest {
            return Err(ImageError::DigestMismatch {
                expected: desc.digest.clone(),
                actual,
            });
        }
        match media::parse_document(&bytes).map_err(|reason| ImageError::InvalidImage {
            what: format!("{} {}", dir.display(), desc.digest),
            reason,
        })? {
            Document::Manifest(m) => break (desc, bytes, *m),
            Document::Index(nested) => {
                depth += 1;
                if depth > MAX_INDEX_DEPTH {
                    return Err(invalid("indexes nested too deeply".to_string()));
                }
                let next = media::select_platform(&nested.manifests)
                    .cloned()
                    .ok_or_else(|| {
                        invalid(format!(
                            "index {} has no linux/amd64 (or single) image",
                            desc.digest
                        ))
                    })?;
                index_blobs.push(desc);
                desc = next;
            }
        }
    };

    let mut all: Vec<String> = vec![manifest_desc.digest.clone()];
    all.extend(index_blobs.iter().map(|d| d.digest.clone()));
    all.push(manifest.config.digest.clone());
    all.extend(manifest.layers.iter().map(|l| l.digest.clone()));
    dedup(&mut all);
    let _pin = store.pin(&all)?;
    for d in index_blobs.iter().chain([&manifest.config]) {
        copy_blob(store, dir, d)?;
    }
    for layer in &manifest.layers {
        copy_blob(store, dir, layer)?;
    }
    store
        .blobs()
        .put_bytes(&manifest_bytes, Some(&manifest_desc.digest))?;

    let size = manifest_bytes.len() as u64
        + index_blobs.iter().map(|d| d.size).sum::<u64>()
        + manifest.config.size
        + manifest.layers.iter().map(|l| l.size).sum::<u64>();
    let (kind, wasm_digest) = classify(store, &manifest, &manifest_desc.digest)?;
    store.commit(NewImage {
        reference: reference.to_string(),
        digest: manifest_desc.digest,
        index_digest: index_blobs.first().map(|d| d.digest.clone()),
        kind,
        wasm_digest,
        blobs: all,
        size,
    })
}

/// Removes repeated digests, keeping the first of each.
fn dedup(digests: &mut Vec<String>) {
    let mut seen = std::collections::HashSet::new();
    digests.retain(|d| seen.insert(d.clone()));
}

/// Wasm (module or component, from the stored binary's preamble) or container.
pub(super) fn classify(
    store: &ImageStore,
    manifest: &Manifest,
    what: &str,
) -> Result<(ImageKind, Option<String>), ImageError> {
    let Some(layer) = media::wasm_layer(manifest) else {
        return Ok((ImageKind::Container, None));
    };
    let head = store.blobs().read_head(&layer.digest, 8)?;
    let kind = detect_wasm(&head).ok_or_else(|| ImageError::InvalidImage {
        what: what.to_string(),
        reason: format!(
            "layer {} ({}) is not a WebAssembly binary",
            layer.digest, layer.media_type
        ),
    })?;
    Ok((kind.into(), Some(layer.digest.clone())))
}

/// One image of a `docker save` `manifest.json`.
#[derive(serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DockerSaveImage {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

/// The classic `docker save` format: config and `layer.tar`s named by `manifest.json`.
/// Re-expressed as an OCI manifest over the same (uncompressed or gzipped) layer files.
fn import_docker_save(
    store: &ImageStore,
    dir: &Path,
    reference: &ImageReference,
    given: &str,
) -> Result<ImageRecord, ImageError> {
    let manifest_path = dir.join("manifest.json");
    let images: Vec<DockerSaveImage> = read_json_file(&manifest_path)?;
    let normalized = reference.to_string();
    let matches = |img: &&DockerSaveImage| {
        img.repo_tags.iter().flatten().any(|t| {
            t == given || ImageReference::parse(t).is_ok_and(|r| r.to_string() == normalized)
        })
    };
    let image = match (images.iter().find(matches), images.as_slice()) {
        (Some(img), _) => img,
        (None, [only]) => only,
        (None, all) => {
            return Err(ImageError::InvalidImage {
                what: manifest_path.display().to_string(),
                reason: format!("holds {} images and none is tagged {given:?}", all.len()),
            });
        }
    };

    let blobs = store.blobs();
    // Digests first (the files are local), so the blobs are pinned before they are written.
    let hash_file = |relative: &str| -> Result<(PathBuf, Descriptor), ImageError> {
        let path = inside(dir, relative)?;
        let mut file = File::open(&path).map_err(io_err(&path))?;
        let mut hasher = Sha256::new();
        let mut head = Vec::with_capacity(2);
        let mut size = 0u64;
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            let n = file.read(&mut buf).map_err(io_err(&path))?;
            if n == 0 {
                break;
            }
            if head.len() < 2 {
                head.extend_from_slice(&buf[..n.min(2 - head.len())]);
            }
            hasher.update(&buf[..n]);
            size += n as u64;
        }
        let digest = format!("sha256:{}", hex::encode(hasher.finalize()));
        let media_type = if head == [0x1f, 0x8b] {
            OCI_LAYER_TAR_GZIP
        } else {
            OCI_LAYER_TAR
        };
        Ok((path, Descriptor::new(media_type, digest, size)))
    };
    let (config_path, mut config) = hash_file(&image.config)?;
    config.media_type = OCI_CONFIG.to_string();
    let mut files = vec![(config_path, config.clone())];
    let mut layers = Vec::new();
    for l in &image.layers {
        let (path, desc) = hash_file(l)?;
        layers.push(desc.clone());
        files.push((path, desc));
    }
    let manifest = Manifest {
        schema_version: 2,
        media_type: Some(OCI_MANIFEST.to_string()),
        artifact_type: None,
        config,
        layers,
        annotations: None,
    };
    let bytes = serde_json::to_vec(&manifest).expect("the manifest serializes");
    let digest = super::sha256_digest(&bytes);
    let mut all = vec![digest.clone()];
    all.extend(files.iter().map(|(_, d)| d.digest.clone()));
    dedup(&mut all);
    let _pin = store.pin(&all)?;
    for (path, desc) in &files {
        let mut file = File::open(path).map_err(io_err(path))?;
        blobs.put_reader(&mut file, Some(&desc.digest), Some(desc.size), path)?;
    }
    blobs.put_bytes(&bytes, Some(&digest))?;
    let size = bytes.len() as u64 + files.iter().map(|(_, d)| d.size).sum::<u64>();
    let (kind, wasm_digest) = classify(store, &manifest, &digest)?;
    store.commit(NewImage {
        reference: reference.to_string(),
        digest,
        index_digest: None,
        kind,
        wasm_digest,
        blobs: all,
        size,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wat_sniffing() {
        assert!(looks_like_wat(b"(module)"));
        assert!(looks_like_wat(b"  ;; hello\n  (component)"));
        assert!(looks_like_wat(b"(; block ;) (module)"));
        assert!(!looks_like_wat(b"hello"));
        assert!(!looks_like_wat(b"\x1f\x8b"));
    }
}
