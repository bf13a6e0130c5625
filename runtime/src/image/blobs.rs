//! Content-addressed blobs: written to a temp file, hashed on the way, checked, fsynced and
//! renamed into `blobs/sha256/<hex>`, so a blob file, once present, is always complete.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{SystemTime, UNIX_EPOCH};

use sha2::{Digest as _, Sha256};

use super::ImageError;
use super::reference::validate_digest;

/// `sha256:<hex>` of `bytes`.
pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// A name no other writer in this or another process uses at the same time.
pub(crate) fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!(
        "{prefix}-{}-{}-{nanos}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

pub(crate) fn io_err(path: &Path) -> impl FnOnce(io::Error) -> ImageError + '_ {
    move |source| ImageError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The blob directory and the temp directory beside it (same file system, so renames are atomic).
#[derive(Debug, Clone)]
pub(crate) struct Blobs {
    dir: PathBuf,
    tmp: PathBuf,
}

impl Blobs {
    pub fn new(dir: PathBuf, tmp: PathBuf) -> Self {
        Blobs { dir, tmp }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file of a blob (present or not).
    pub fn path(&self, digest: &str) -> Result<PathBuf, ImageError> {
        validate_digest(digest).map_err(|reason| ImageError::InvalidImage {
            what: digest.to_string(),
            reason,
        })?;
        Ok(self.dir.join(&digest["sha256:".len()..]))
    }

    pub fn exists(&self, digest: &str) -> bool {
        self.path(digest).is_ok_and(|p| p.is_file())
    }

    /// Starts writing a blob.
    pub fn writer(&self) -> Result<BlobWriter, ImageError> {
        let path = self.tmp.join(unique_name("blob"));
        let file = File::create(&path).map_err(io_err(&path))?;
        Ok(BlobWriter {
            file,
            path,
            hasher: Sha256::new(),
            size: 0,
            done: false,
        })
    }

    /// Stores `bytes`, checking them against `expected` when given. Returns the digest.
    pub fn put_bytes(&self, bytes: &[u8], expected: Option<&str>) -> Result<String, ImageError> {
        let digest = sha256_digest(bytes);
        if let Some(expected) = expected
            && expected != digest
        {
            return Err(ImageError::DigestMismatch {
                expected: expected.to_string(),
                actual: digest,
            });
        }
        if self.exists(&digest) {
            return Ok(digest);
        }
        let mut w = self.writer()?;
        w.write_all(bytes).map_err(io_err(&w.path))?;
        w.commit(self, Some(&digest), None)
    }

    /// Stores what `reader` yields, checking digest and size when given. Returns the digest.
    pub fn put_reader(
        &self,
        reader: &mut dyn Read,
        expected: Option<&str>,
        expected_size: Option<u64>,
        source: &Path,
    ) -> Result<String, ImageError> {
        if let Some(expected) = expected
            && self.exists(expected)
        {
            return Ok(expected.to_string());
        }
        let mut w = self.writer()?;
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(io_err(source)(e)),
            };
            w.write_all(&buf[..n]).map_err(io_err(&w.path))?;
        }
        w.commit(self, expected, expected_size)
    }

    /// Reads up to `n` bytes from the start of a blob.
    pub fn read_head(&self, digest: &str, n: usize) -> Result<Vec<u8>, ImageError> {
        let path = self.path(digest)?;
        let file = File::open(&path).map_err(io_err(&path))?;
        let mut head = Vec::with_capacity(n);
        file.take(n as u64)
            .read_to_end(&mut head)
            .map_err(io_err(&path))?;
        Ok(head)
    }
}

/// A blob being written: hashed and counted as it goes; removed unless committed.
pub(crate) struct BlobWriter {
    file: File,
    path: PathBuf,
    hasher: Sha256,
    size: u64,
    done: bool,
}

impl BlobWriter {
    pub fn temp_path(&self) -> &Path {
        &self.path
    }

    /// Checks digest and size, fsyncs, and renames the blob into place. Returns its digest.
    pub fn commit(
        mut self,
        blobs: &Blobs,
        expected: Option<&str>,
        expected_size: Option<u64>,
    ) -> Result<String, ImageError> {
        let digest = format!(
            "sha256:{}",
            hex::encode(std::mem::take(&mut self.hasher).finalize())
        );
        if let Some(expected) = expected
            && expected != digest
        {
            return Err(ImageError::DigestMismatch {
                expected: expected.to_string(),
                actual: digest,
            });
        }
        if let Some(size) = expected_size
            && size != self.size
        {
            return Err(ImageError::SizeMismatch {
                digest,
                expected: size,
                actual: self.size,
            });
        }
        self.file.sync_all().map_err(io_err(&self.path))?;
        let target = blobs.path(&digest)?;
        fs::rename(&self.path, &target).map_err(io_err(&target))?;
        self.done = true;
        Ok(digest)
    }
}

impl Write for BlobWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

/// For registry downloads. Writes go straight to the local file: they land in the page
/// cache and return at once, so doing them on the async worker is cheap.
impl tokio::io::AsyncWrite for BlobWriter {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Poll::Ready(self.get_mut().write(buf))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(self.get_mut().flush())
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

impl Drop for BlobWriter {
    fn drop(&mut self) {
        if !self.done {
            let _ = fs::remove_file(&self.path);
        }
    }
}
