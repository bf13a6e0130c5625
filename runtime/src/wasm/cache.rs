//! The on-disk cache of compiled code.
//!
//! One file per program: `<digest>.<engine fingerprint>.cwasm` for core modules and `.ccwasm`
//! for components. The fingerprint hashes wasmtime's precompile-compatibility hash (its
//! version, the target and every setting that changes generated code), so a new wasmtime or a
//! changed engine configuration misses the cache instead of loading stale code. Files are
//! written to a temporary name and renamed into place, so a reader never sees half a file.

use std::hash::{Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use sha2::{Digest, Sha256};

use super::error::ProgramKind;

/// A `Hasher` feeding SHA-256, so the fingerprint is stable across Rust releases (unlike
/// `DefaultHasher`).
struct Sha256Hasher(Sha256);

impl Hasher for Sha256Hasher {
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    fn finish(&self) -> u64 {
        let digest = self.0.clone().finalize();
        u64::from_le_bytes(digest[..8].try_into().unwrap_or([0; 8]))
    }
}

/// A short hex fingerprint of the engine's compiled-code compatibility.
pub(crate) fn engine_fingerprint(engine: &wasmtime::Engine) -> String {
    let mut hasher = Sha256Hasher(Sha256::new());
    engine.precompile_compatibility_hash().hash(&mut hasher);
    hex(&hasher.0.finalize()[..12])
}

/// Lower-case hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// The `sha256:<hex>` digest of `bytes`.
pub(crate) fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex(&Sha256::digest(bytes)))
}

/// A file-name-safe form of a digest: `sha256:ab..` becomes `sha256-ab..`; anything with
/// other characters, or too long for a file name, is replaced by the SHA-256 of the string.
fn file_stem(digest: &str) -> String {
    let safe = !digest.is_empty()
        && digest.len() <= 160
        && !digest.starts_with('.')
        && digest
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b':' | b'-' | b'_' | b'.'));
    if safe {
        digest.replace(':', "-")
    } else {
        format!("key-{}", hex(&Sha256::digest(digest.as_bytes())))
    }
}

/// Where the compiled code of `digest` lives in `dir` for an engine with `fingerprint`.
pub(crate) fn cache_path(
    dir: &Path,
    digest: &str,
    kind: ProgramKind,
    fingerprint: &str,
) -> PathBuf {
    let ext = match kind {
        ProgramKind::Module => "cwasm",
        ProgramKind::Component => "ccwasm",
    };
    dir.join(format!("{}.{fingerprint}.{ext}", file_stem(digest)))
}

/// Writes `bytes` to `path` atomically (temporary file in the same directory, then rename).
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(
        ".{name}.{}.{}.tmp",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let result = (|| {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_become_safe_file_names() {
        let dir = Path::new("/cache");
        let p = cache_path(dir, "sha256:abc123", ProgramKind::Module, "f00");
        assert_eq!(p, Path::new("/cache/sha256-abc123.f00.cwasm"));
        let p = cache_path(dir, "../../etc/passwd", ProgramKind::Component, "f00");
        let name = p.file_name().unwrap().to_str().unwrap();
        assert!(
            name.starts_with("key-") && name.ends_with(".f00.ccwasm"),
            "{name}"
        );
        assert_eq!(p.parent().unwrap(), dir);
    }

    #[test]
    fn sha256_digest_matches_known_value() {
        assert_eq!(
            sha256_digest(b""),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn atomic_write_leaves_only_the_target() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.cwasm");
        write_atomically(&path, b"one").unwrap();
        write_atomically(&path, b"two").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
