//! The local image store: content-addressed blobs, a tag index, imports and registry pulls.
//!
//! Layout under the store's root (skiff uses `DATA_DIR/images`):
//!
//! ```text
//! blobs/sha256/<hex>   manifests, configs and layers, by digest, shared between images
//! images.json          the tags: reference → manifest digest, kind, blobs held
//! lock                 flock'ed by writers (this process's tasks and other processes)
//! pins/                digests an import or pull in progress is writing (kept from GC)
//! tmp/                 blobs and indexes being written, renamed into place when complete
//! ```
//!
//! Wasm images are stored the same way however they arrive: a `.wasm`/`.wat` import becomes
//! a CNCF Wasm OCI artifact (config `application/vnd.wasm.config.v0+json`, one
//! `application/wasm` layer), exactly what a pull of such an artifact stores.

mod blobs;
mod import;
mod index;
mod layers;
pub mod media;
mod pull;
pub mod reference;

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

pub use blobs::sha256_digest;
pub use layers::{ContainerImage, ImageConfig, parse_config, unpack_layer};
pub use media::{WasmBinaryKind, detect_wasm};
pub use pull::{PullError, PullOptions};
pub use reference::{ImageReference, normalize};

use blobs::{Blobs, io_err};
use index::{Entry, Meta};

/// What an image holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ImageKind {
    /// A WebAssembly core module (WASI preview 1).
    WasmModule,
    /// A WebAssembly component (WASI preview 2).
    WasmComponent,
    /// An OCI container image.
    Container,
}

impl ImageKind {
    /// `wasm-module`, `wasm-component` or `container`.
    pub fn as_str(self) -> &'static str {
        match self {
            ImageKind::WasmModule => "wasm-module",
            ImageKind::WasmComponent => "wasm-component",
            ImageKind::Container => "container",
        }
    }

    /// Whether skiff runs it in-process with wasmtime.
    pub fn is_wasm(self) -> bool {
        !matches!(self, ImageKind::Container)
    }
}

impl fmt::Display for ImageKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<WasmBinaryKind> for ImageKind {
    fn from(kind: WasmBinaryKind) -> Self {
        match kind {
            WasmBinaryKind::Module => ImageKind::WasmModule,
            WasmBinaryKind::Component => ImageKind::WasmComponent,
        }
    }
}

/// One tagged image in the store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageRecord {
    /// Normalized: `docker.io/library/hello:latest`, `localhost/hello:v1`,
    /// `registry:5000/x@sha256:…` for an image pulled by digest.
    pub reference: String,
    /// The image manifest's digest, `sha256:…` (for a multi-platform image, the digest of
    /// the platform's manifest).
    pub digest: String,
    pub kind: ImageKind,
    /// Bytes of all the image's blobs (manifest, config, layers as stored).
    pub size: u64,
    /// When the image was imported or pulled, RFC 3339.
    pub created: String,
    /// For Wasm images, the digest of the blob holding the module or component.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wasm_digest: Option<String>,
}

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// Not a valid image reference.
    #[error("invalid image reference {reference:?}: {reason}")]
    InvalidReference { reference: String, reason: String },
    /// A file-system operation failed.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// No image by that reference.
    #[error("image {0:?} not found")]
    NotFound(String),
    /// A digest prefix (or digest) that names several images.
    #[error("{reference:?} matches {count} images: {}", candidates.join(", "))]
    Ambiguous {
        reference: String,
        count: usize,
        candidates: Vec<String>,
    },
    /// A file that is none of the importable kinds.
    #[error("{}: {reason}", path.display())]
    UnsupportedFile { path: PathBuf, reason: String },
    /// WebAssembly text that does not parse.
    #[error("{}: invalid WebAssembly text: {message}", path.display())]
    Wat { path: PathBuf, message: String },
    /// A malformed image: layout, manifest, tarball or Wasm binary.
    #[error("{what}: {reason}")]
    InvalidImage { what: String, reason: String },
    /// Content whose digest is not the one it was referenced by.
    #[error("content digest mismatch: expected {expected}, got {actual}")]
    DigestMismatch { expected: String, actual: String },
    /// Content whose size is not the one its descriptor gives.
    #[error("blob {digest}: expected {expected} bytes, got {actual}")]
    SizeMismatch {
        digest: String,
        expected: u64,
        actual: u64,
    },
    /// `images.json` does not parse.
    #[error("image index {} is corrupt: {message}", path.display())]
    CorruptIndex { path: PathBuf, message: String },
}

/// The content-addressed local image store. Cheap to clone; safe to use from many tasks
/// and from several processes at once (see the module docs for how).
#[derive(Debug, Clone)]
pub struct ImageStore {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    root: PathBuf,
    blobs: Blobs,
    meta: Meta,
}

/// What an import or pull has stored and now tags.
pub(crate) struct NewImage {
    pub reference: String,
    pub digest: String,
    pub index_digest: Option<String>,
    pub kind: ImageKind,
    pub wasm_digest: Option<String>,
    pub blobs: Vec<String>,
    pub size: u64,
}

impl ImageStore {
    /// Opens (creating if needed) the store under `root`.
    ///
    /// # Errors
    /// [`ImageError::Io`] when the directories cannot be created;
    /// [`ImageError::CorruptIndex`] when an existing index does not parse.
    pub fn open(root: &Path) -> Result<Self, ImageError> {
        // Absolute, so paths handed to other processes (runc, overlay mounts) hold anywhere.
        let root = &std::path::absolute(root).map_err(io_err(root))?;
        let blob_dir = root.join("blobs").join("sha256");
        let tmp = root.join("tmp");
        for dir in [&blob_dir, &tmp, &root.join("pins")] {
            fs::create_dir_all(dir).map_err(io_err(dir))?;
        }
        let meta = Meta::new(root, tmp.clone());
        meta.load()?;
        debug_assert!(meta.pins_dir().is_dir());
        Ok(ImageStore {
            inner: Arc::new(Inner {
                root: root.to_path_buf(),
                blobs: Blobs::new(blob_dir, tmp),
                meta,
            }),
        })
    }

    /// The store's root directory.
    pub fn root(&self) -> &Path {
        &self.inner.root
    }

    /// Imports a file under `reference`, replacing any image that had that tag:
    /// - a `.wasm` binary, module or component (told apart by its preamble);
    /// - a `.wat` text file (module or component), compiled to binary;
    /// - an OCI image layout directory (`oci-layout` + `index.json`);
    /// - a tarball (optionally gzipped) of an OCI layout, or from `docker save`.
    ///
    /// Wasm binaries are stored as CNCF Wasm OCI artifacts, as a pull would store them.
    /// From a layout holding several images, the one whose `org.opencontainers.image.ref.name`
    /// matches `reference` (or its tag) is taken, else the only one, else linux/amd64.
    ///
    /// # Errors
    /// [`ImageError::InvalidReference`], [`ImageError::UnsupportedFile`],
    /// [`ImageError::Wat`], [`ImageError::InvalidImage`], [`ImageError::DigestMismatch`],
    /// [`ImageError::Io`].
    pub fn import(&self, path: &Path, reference: &str) -> Result<ImageRecord, ImageError> {
        import::import(self, path, reference)
    }

    /// All tagged images, sorted by reference.
    pub fn list(&self) -> Result<Vec<ImageRecord>, ImageError> {
        let mut records: Vec<ImageRecord> = self
            .inner
            .meta
            .load_shared()?
            .iter()
            .map(|e| e.record.clone())
            .collect();
        records.sort_by(|a, b| a.reference.cmp(&b.reference));
        Ok(records)
    }

    /// Finds an image by reference (normalized first: `hello` finds
    /// `docker.io/library/hello:latest`), by `name@sha256:…`, or by digest (`sha256:…`, or a
    /// prefix of at least 4 hex digits after `sha256:`, like Docker's short IDs).
    ///
    /// # Errors
    /// [`ImageError::InvalidReference`]; [`ImageError::Ambiguous`] for a digest prefix of
    /// several different images.
    pub fn resolve(&self, reference: &str) -> Result<Option<ImageRecord>, ImageError> {
        let entries = self.inner.meta.load_shared()?;
        Ok(find(&entries, reference)?.map(|i| entries[i].record.clone()))
    }

    /// Removes a tag, then deletes the blobs no remaining tag references.
    ///
    /// # Errors
    /// [`ImageError::NotFound`]; [`ImageError::Ambiguous`] for a digest that several tags
    /// share (remove them by reference).
    pub fn remove(&self, reference: &str) -> Result<ImageRecord, ImageError> {
        let lock = self.inner.meta.lock()?;
        let mut entries = self.inner.meta.load()?;
        let Some(i) = find(&entries, reference)? else {
            return Err(ImageError::NotFound(reference.to_string()));
        };
        if is_digest_query(reference) {
            let digest = &entries[i].record.digest;
            let tags: Vec<String> = entries
                .iter()
                .filter(|e| &e.record.digest == digest)
                .map(|e| e.record.reference.clone())
                .collect();
            if tags.len() > 1 {
                return Err(ImageError::Ambiguous {
                    reference: reference.to_string(),
                    count: tags.len(),
                    candidates: tags,
                });
            }
        }
        let removed = entries.remove(i);
        self.inner.meta.save(&lock, entries.clone())?;
        self.inner
            .meta
            .collect_garbage(&lock, &entries, self.inner.blobs.dir())?;
        Ok(removed.record)
    }

    /// The blob file holding a Wasm image's module or component (`None` for containers).
    pub fn wasm_path(&self, record: &ImageRecord) -> Option<PathBuf> {
        let digest = record.wasm_digest.as_deref()?;
        self.inner.blobs.path(digest).ok()
    }

    /// The file of any blob in the store, by digest, if present.
    pub fn blob_path(&self, digest: &str) -> Option<PathBuf> {
        self.inner.blobs.path(digest).ok().filter(|p| p.is_file())
    }

    /// Pulls `reference` from its registry into the store (blobs already present are not
    /// downloaded again) and tags it.
    ///
    /// # Errors
    /// See [`PullError`]: its messages carry the registry's own words.
    pub async fn pull(
        &self,
        reference: &str,
        options: &PullOptions,
    ) -> Result<ImageRecord, PullError> {
        pull::pull(self, reference, options).await
    }

    pub(crate) fn blobs(&self) -> &Blobs {
        &self.inner.blobs
    }

    pub(crate) fn tmp_dir(&self) -> PathBuf {
        self.inner.root.join("tmp")
    }

    pub(crate) fn pin(&self, digests: &[String]) -> Result<index::Pin, ImageError> {
        self.inner.meta.pin(digests)
    }

    /// Tags a stored image (replacing the tag's previous image, whose blobs are collected if
    /// nothing else holds them).
    pub(crate) fn commit(&self, image: NewImage) -> Result<ImageRecord, ImageError> {
        for digest in &image.blobs {
            if !self.inner.blobs.exists(digest) {
                return Err(ImageError::InvalidImage {
                    what: image.reference.clone(),
                    reason: format!("blob {digest} missing after it was written"),
                });
            }
        }
        let record = ImageRecord {
            reference: image.reference,
            digest: image.digest,
            kind: image.kind,
            size: image.size,
            created: index::rfc3339_now(),
            wasm_digest: image.wasm_digest,
        };
        let lock = self.inner.meta.lock()?;
        let mut entries = self.inner.meta.load()?;
        let replaced = entries
            .iter()
            .position(|e| e.record.reference == record.reference)
            .map(|i| entries.remove(i));
        entries.push(Entry {
            record: record.clone(),
            blobs: image.blobs,
            index_digest: image.index_digest,
        });
        entries.sort_by(|a, b| a.record.reference.cmp(&b.record.reference));
        self.inner.meta.save(&lock, entries.clone())?;
        if replaced.is_some_and(|old| old.record.digest != record.digest) {
            self.inner
                .meta
                .collect_garbage(&lock, &entries, self.inner.blobs.dir())?;
        }
        Ok(record)
    }

    /// The stored image with this exact normalized reference and manifest digest, if its
    /// blobs are all present (a pull by digest then needs no registry).
    pub(crate) fn cached(&self, reference: &str) -> Result<Option<ImageRecord>, ImageError> {
        let entries = self.inner.meta.load_shared()?;
        Ok(entries
            .iter()
            .find(|e| {
                e.record.reference == reference
                    && e.blobs.iter().all(|d| self.inner.blobs.exists(d))
            })
            .map(|e| e.record.clone()))
    }
}

fn is_digest_query(reference: &str) -> bool {
    reference.starts_with("sha256:")
        || (reference.len() == 64 && reference.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// The index of the entry `reference` names.
fn find(entries: &[Entry], reference: &str) -> Result<Option<usize>, ImageError> {
    if is_digest_query(reference) {
        let hex = reference.strip_prefix("sha256:").unwrap_or(reference);
        if hex.len() < 4 || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(ImageError::InvalidReference {
                reference: reference.to_string(),
                reason: "want sha256: and at least 4 lowercase hex digits".to_string(),
            });
        }
        let prefix = format!("sha256:{hex}");
        let matches: Vec<usize> = (0..entries.len())
            .filter(|&i| {
                let e = &entries[i];
                e.record.digest.starts_with(&prefix)
                    || e.index_digest
                        .as_ref()
                        .is_some_and(|d| d.starts_with(&prefix))
            })
            .collect();
        let mut digests: Vec<&str> = matches
            .iter()
            .map(|&i| entries[i].record.digest.as_str())
            .collect();
        digests.sort_unstable();
        digests.dedup();
        if digests.len() > 1 {
            return Err(ImageError::Ambiguous {
                reference: reference.to_string(),
                count: digests.len(),
                candidates: digests.into_iter().map(str::to_string).collect(),
            });
        }
        return Ok(matches.first().copied());
    }
    let parsed = ImageReference::parse(reference)?;
    let normalized = parsed.to_string();
    if let Some(i) = entries
        .iter()
        .position(|e| e.record.reference == normalized)
    {
        return Ok(Some(i));
    }
    // name@digest (with or without a tag) finds any tag of that repository with the digest.
    if let Some(digest) = &parsed.digest {
        let name = parsed.name();
        return Ok(entries.iter().position(|e| {
            ImageReference::parse(&e.record.reference).is_ok_and(|r| r.name() == name)
                && (&e.record.digest == digest || e.index_digest.as_ref() == Some(digest))
        }));
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_root(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(blobs::unique_name(&format!("skiff-image-{name}")));
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn import_wat(store: &ImageStore, dir: &Path, text: &str, reference: &str) -> ImageRecord {
        let file = dir.join(blobs::unique_name("m")).with_extension("wat");
        fs::write(&file, text).unwrap();
        store.import(&file, reference).unwrap()
    }

    fn blob_count(store: &ImageStore) -> usize {
        fs::read_dir(store.blobs().dir()).unwrap().count()
    }

    #[test]
    fn remove_collects_unshared_blobs_only() {
        let root = temp_root("gc");
        let store = ImageStore::open(&root.join("images")).unwrap();
        let a = import_wat(&store, &root, "(module)", "a:v1");
        let b = import_wat(&store, &root, "(module)", "b:v1");
        assert_eq!(a.digest, b.digest, "same content, same digest");
        assert_eq!(blob_count(&store), 3, "manifest, config, layer shared");
        let c = import_wat(&store, &root, "(module (memory 1))", "c:v1");
        assert_eq!(blob_count(&store), 6);

        let removed = store.remove("a:v1").unwrap();
        assert_eq!(removed.reference, "docker.io/library/a:v1");
        assert_eq!(blob_count(&store), 6, "b still holds the shared blobs");
        assert!(store.wasm_path(&b).unwrap().is_file());

        store.remove("docker.io/library/b:v1").unwrap();
        assert_eq!(blob_count(&store), 3, "only c's blobs are left");
        assert!(store.wasm_path(&b).is_some_and(|p| !p.exists()));
        assert!(store.wasm_path(&c).unwrap().is_file());

        // Retagging c to other content collects c's old blobs.
        import_wat(&store, &root, "(component)", "c:v1");
        assert_eq!(blob_count(&store), 3);
        assert!(!store.wasm_path(&c).unwrap().exists());

        assert!(matches!(store.remove("a:v1"), Err(ImageError::NotFound(_))));
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn pins_keep_blobs_from_collection() {
        let root = temp_root("pin");
        let store = ImageStore::open(&root.join("images")).unwrap();
        let digest = store.blobs().put_bytes(b"orphan", None).unwrap();
        let pin = store.pin(std::slice::from_ref(&digest)).unwrap();
        let lock = store.inner.meta.lock().unwrap();
        let removed = store
            .inner
            .meta
            .collect_garbage(&lock, &[], store.blobs().dir())
            .unwrap();
        assert_eq!(removed, 0);
        drop(pin);
        let removed = store
            .inner
            .meta
            .collect_garbage(&lock, &[], store.blobs().dir())
            .unwrap();
        assert_eq!(removed, 1);
        assert!(!store.blobs().exists(&digest));
        fs::remove_dir_all(&root).unwrap();
    }

    /// Many writers (threads with their own handles, as separate processes would have)
    /// commit tags while a reader keeps parsing the index: every commit survives, and the
    /// reader never sees a partial file.
    #[test]
    fn index_updates_are_atomic_and_serialized() {
        let root = temp_root("atomic");
        let store_root = root.join("images");
        ImageStore::open(&store_root).unwrap();
        let wasm = wat::parse_str("(module)").unwrap();
        let file = root.join("m.wasm");
        fs::write(&file, &wasm).unwrap();

        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let reader = {
            let store = ImageStore::open(&store_root).unwrap();
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut reads = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    store.list().expect("the index always parses");
                    reads += 1;
                }
                reads
            })
        };
        let writers: Vec<_> = (0..6)
            .map(|w| {
                let store = ImageStore::open(&store_root).unwrap();
                let file = file.clone();
                std::thread::spawn(move || {
                    for i in 0..8 {
                        store.import(&file, &format!("w{w}/img:{i}")).unwrap();
                    }
                })
            })
            .collect();
        for w in writers {
            w.join().unwrap();
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        assert!(reader.join().unwrap() > 0);

        let store = ImageStore::open(&store_root).unwrap();
        let list = store.list().unwrap();
        assert_eq!(list.len(), 48);
        assert!(list.windows(2).all(|p| p[0].reference < p[1].reference));
        assert_eq!(
            fs::read_dir(store_root.join("tmp")).unwrap().count(),
            0,
            "no temp files left behind"
        );
        fs::remove_dir_all(&root).unwrap();
    }

    /// A reader keeps its parse of the index only while the file is the one it parsed: a
    /// tag committed through another handle (another process) is seen by the next read.
    #[test]
    fn readers_see_other_handles_commits_at_once() {
        let root = temp_root("shared");
        let reader = ImageStore::open(&root.join("images")).unwrap();
        let writer = ImageStore::open(&root.join("images")).unwrap();
        assert_eq!(reader.resolve("x:v1").unwrap(), None);
        let x = import_wat(&writer, &root, "(module)", "x:v1");
        assert_eq!(reader.resolve("x:v1").unwrap(), Some(x.clone()));
        assert_eq!(reader.list().unwrap(), [x.clone()]);
        let y = import_wat(&writer, &root, "(module (memory 1))", "x:v1");
        assert_ne!(x.digest, y.digest);
        assert_eq!(reader.resolve("x:v1").unwrap(), Some(y));
        writer.remove("x:v1").unwrap();
        assert_eq!(reader.resolve("x:v1").unwrap(), None);
        assert!(reader.list().unwrap().is_empty());
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn resolve_by_reference_and_digest() {
        let root = temp_root("resolve");
        let store = ImageStore::open(&root.join("images")).unwrap();
        let a = import_wat(&store, &root, "(module)", "localhost/hello:v1");
        let b = import_wat(&store, &root, "(component)", "hello");
        let hex = a.digest.strip_prefix("sha256:").unwrap();

        assert_eq!(
            store.resolve("localhost/hello:v1").unwrap(),
            Some(a.clone())
        );
        assert_eq!(store.resolve("hello").unwrap(), Some(b.clone()));
        assert_eq!(store.resolve("hello:latest").unwrap(), Some(b.clone()));
        assert_eq!(store.resolve("hello:v2").unwrap(), None);
        assert_eq!(store.resolve(&a.digest).unwrap(), Some(a.clone()));
        assert_eq!(store.resolve(hex).unwrap(), Some(a.clone()));
        assert_eq!(
            store.resolve(&format!("sha256:{}", &hex[..12])).unwrap(),
            Some(a.clone())
        );
        assert_eq!(
            store
                .resolve(&format!("localhost/hello@{}", a.digest))
                .unwrap(),
            Some(a.clone())
        );
        assert_eq!(
            store
                .resolve(&format!("localhost/other@{}", a.digest))
                .unwrap(),
            None
        );
        assert!(matches!(
            store.resolve("sha256:"),
            Err(ImageError::InvalidReference { .. })
        ));
        assert!(matches!(
            store.resolve("Bad Name"),
            Err(ImageError::InvalidReference { .. })
        ));
        assert_eq!(a.kind, ImageKind::WasmModule);
        assert_eq!(b.kind, ImageKind::WasmComponent);
        fs::remove_dir_all(&root).unwrap();
    }
}
