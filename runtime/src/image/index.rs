//! The tag index (`images.json`), its lock, in-flight pins and garbage collection.
//!
//! # Guarantees
//! - Readers never lock: the index is replaced whole by renaming a fsynced temp file, so a
//!   reader sees the old or the new index, never a partial one.
//! - Writers (this process's tasks and other processes, e.g. `skiff image import` beside a
//!   running server) serialize on an exclusive `flock` of `lock`.
//! - A blob is deleted only by garbage collection, under the lock, when no tag and no live
//!   pin names it. An import or pull pins the digests it is about to write (under the lock)
//!   before it checks which it already has, so collection never removes a blob it counts on.

use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::blobs::{io_err, unique_name};
use super::{ImageError, ImageRecord};

/// Pins and temp files older than this belong to a process that died; they are swept.
const STALE_AFTER: Duration = Duration::from_secs(24 * 3600);

/// One tag in the index.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Entry {
    #[serde(flatten)]
    pub record: ImageRecord,
    /// Every blob this tag holds: manifest, index (if any), config, layers.
    pub blobs: Vec<String>,
    /// The digest of the index (manifest list) the manifest was picked from, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index_digest: Option<String>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct IndexFile {
    version: u32,
    images: Vec<Entry>,
}

/// Paths of the store's metadata.
#[derive(Debug, Clone)]
pub(crate) struct Meta {
    index: PathBuf,
    lock: PathBuf,
    pins: PathBuf,
    tmp: PathBuf,
    /// The index as last parsed, with the stamp of the file it came from.
    parsed: Arc<Mutex<Option<Parsed>>>,
}

/// A parse of the index and the stamp of the file it came from.
type Parsed = (Stamp, Arc<Vec<Entry>>);

/// What identifies one version of the index file: every save renames a new file into place,
/// so a new version has a new inode (and usually a new size and times).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    dev: u64,
    ino: u64,
    len: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl Stamp {
    fn of(meta: &fs::Metadata) -> Stamp {
        use std::os::unix::fs::MetadataExt;
        Stamp {
            dev: meta.dev(),
            ino: meta.ino(),
            len: meta.len(),
            mtime: (meta.mtime(), meta.mtime_nsec()),
            ctime: (meta.ctime(), meta.ctime_nsec()),
        }
    }
}

/// The exclusive lock; released on drop (closing the file releases the `flock`).
pub(crate) struct Lock {
    _file: File,
}

impl Meta {
    pub fn new(root: &Path, tmp: PathBuf) -> Self {
        Meta {
            index: root.join("images.json"),
            lock: root.join("lock"),
            pins: root.join("pins"),
            tmp,
            parsed: Arc::default(),
        }
    }

    pub fn pins_dir(&self) -> &Path {
        &self.pins
    }

    /// Takes the writers' lock, waiting for it.
    pub fn lock(&self) -> Result<Lock, ImageError> {
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&self.lock)
            .map_err(io_err(&self.lock))?;
        file.lock().map_err(io_err(&self.lock))?;
        Ok(Lock { _file: file })
    }

    /// The tags, as last committed, read from the file (writers call this under the lock).
    pub fn load(&self) -> Result<Vec<Entry>, ImageError> {
        let bytes = match fs::read(&self.index) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_err(&self.index)(e)),
        };
        self.parse(&bytes)
    }

    /// The tags, as last committed, for readers: the file is parsed again only when a save
    /// (by this process or another) has replaced it since the last parse, which a `stat`
    /// tells. Starting a pod resolves its image this way.
    pub fn load_shared(&self) -> Result<Arc<Vec<Entry>>, ImageError> {
        let stamp = match fs::metadata(&self.index) {
            Ok(meta) => Stamp::of(&meta),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Arc::default()),
            Err(e) => return Err(io_err(&self.index)(e)),
        };
        let mut parsed = self.parsed.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((seen, entries)) = parsed.as_ref()
            && *seen == stamp
        {
            return Ok(entries.clone());
        }
        let file = File::open(&self.index).map_err(io_err(&self.index))?;
        // The stamp of the file actually read, in case a save replaced it after the stat.
        let stamp = Stamp::of(&file.metadata().map_err(io_err(&self.index))?);
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut &file, &mut bytes).map_err(io_err(&self.index))?;
        let entries = Arc::new(self.parse(&bytes)?);
        *parsed = Some((stamp, entries.clone()));
        Ok(entries)
    }

    fn parse(&self, bytes: &[u8]) -> Result<Vec<Entry>, ImageError> {
        let file: IndexFile =
            serde_json::from_slice(bytes).map_err(|e| ImageError::CorruptIndex {
                path: self.index.clone(),
                message: e.to_string(),
            })?;
        Ok(file.images)
    }

    /// Replaces the index. Call with the lock held.
    pub fn save(&self, _lock: &Lock, images: Vec<Entry>) -> Result<(), ImageError> {
        let body = serde_json::to_vec_pretty(&IndexFile { version: 1, images })
            .expect("the index serializes");
        let tmp = self.tmp.join(unique_name("index"));
        let write = || -> std::io::Result<()> {
            let mut f = File::create(&tmp)?;
            f.write_all(&body)?;
            f.sync_all()?;
            fs::rename(&tmp, &self.index)?;
            // Make the rename itself durable.
            if let Some(dir) = self.index.parent() {
                File::open(dir)?.sync_all()?;
            }
            Ok(())
        };
        write().map_err(|e| {
            let _ = fs::remove_file(&tmp);
            io_err(&self.index)(e)
        })
    }

    /// Pins `digests` until the returned guard drops. Takes the lock briefly.
    pub fn pin(&self, digests: &[String]) -> Result<Pin, ImageError> {
        let _lock = self.lock()?;
        let path = self.pins.join(unique_name("pin"));
        let body = serde_json::to_vec(digests).expect("digests serialize");
        fs::write(&path, body).map_err(io_err(&path))?;
        Ok(Pin { path })
    }

    /// Deletes blobs that no tag and no live pin references, and sweeps stale pins and temp
    /// files. Call with the lock held. Returns the number of blobs removed.
    pub fn collect_garbage(
        &self,
        _lock: &Lock,
        images: &[Entry],
        blob_dir: &Path,
    ) -> Result<usize, ImageError> {
        let mut live: HashSet<String> = images
            .iter()
            .flat_map(|e| e.blobs.iter())
            .filter_map(|d| d.strip_prefix("sha256:").map(str::to_string))
            .collect();
        let now = SystemTime::now();
        let stale = |path: &Path| {
            fs::symlink_metadata(path)
                .and_then(|m| m.modified())
                .is_ok_and(|t| now.duration_since(t).unwrap_or_default() > STALE_AFTER)
        };
        for entry in read_dir(&self.pins)? {
            let path = entry.path();
            if stale(&path) {
                let _ = fs::remove_file(&path);
                continue;
            }
            // A pin being written is never seen here: pins are written under the lock.
            let digests: Vec<String> = fs::read(&path)
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok())
                .unwrap_or_default();
            live.extend(
                digests
                    .iter()
                    .filter_map(|d| d.strip_prefix("sha256:").map(str::to_string)),
            );
        }
        let mut removed = 0;
        for entry in read_dir(blob_dir)? {
            let name = entry.file_name();
            if !live.contains(name.to_string_lossy().as_ref()) {
                let path = entry.path();
                match fs::remove_file(&path) {
                    Ok(()) => removed += 1,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(io_err(&path)(e)),
                }
            }
        }
        for entry in read_dir(&self.tmp)? {
            let path = entry.path();
            if stale(&path) {
                let _ = fs::remove_dir_all(&path).or_else(|_| fs::remove_file(&path));
            }
        }
        Ok(removed)
    }
}

fn read_dir(dir: &Path) -> Result<Vec<fs::DirEntry>, ImageError> {
    fs::read_dir(dir)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(io_err(dir))
}

/// Keeps blobs alive while an import or pull writes them and commits its tag.
pub(crate) struct Pin {
    path: PathBuf,
}

impl Drop for Pin {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

/// Now, as RFC 3339 in UTC with second precision (`2026-11-22T10:04:05Z`).
pub(crate) fn rfc3339_now() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    rfc3339(secs)
}

/// Seconds since the Unix epoch as RFC 3339 (UTC). Dates from days by the civil-calendar
/// algorithm (era of 400 years, March-based years so leap days fall at the end).
pub(crate) fn rfc3339(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339(4_107_542_399), "2100-02-28T23:59:59Z");
        assert_eq!(rfc3339(4_107_542_400), "2100-03-01T00:00:00Z");
    }
}
