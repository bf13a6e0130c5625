//! The logs of short container attempts, kept together in one file per node.
//!
//! A container attempt that ends before its first output is flushed (a Job task that prints a
//! line and exits) would otherwise cost a file of its own, and making a file is by far the
//! dearest step of such a task on a file system that searches its bitmaps for every new
//! inode (ext4 without a journal spent a quarter of the server's CPU there under a Job of
//! 10,000 tasks). Such output is appended to `<logs>/.bundle` instead, as records of
//! `<file name>\n<length>\n<bytes>`, with an index in memory.
//!
//! A read of an attempt whose file is missing first turns its record back into the file it
//! would have been, so every reader works on files as before. Records of removed attempts
//! are garbage, rewritten away once they outweigh the live ones. At start the index is
//! rebuilt from the file (a record cut short by a crash ends it) and records of pods that no
//! longer exist are dropped.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

/// The largest output kept in the bundle; more goes to the attempt's own file.
pub const BUNDLED_MAX: usize = 16 * 1024;
/// Garbage below this is never rewritten away.
const GARBAGE_FLOOR: u64 = 1 << 20;
const FILE_NAME: &str = ".bundle";

/// One node's bundle of short attempts' logs.
pub struct LogBundle {
    dir: PathBuf,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Open for appending; `None` until the first record (or after a failed rewrite).
    file: Option<File>,
    /// Bytes in the file.
    size: u64,
    /// Log file name → where its bytes are in the file (offset, length).
    index: HashMap<String, (u64, u64)>,
    /// Bytes of records no longer indexed (headers included).
    garbage: u64,
}

/// A record's header: the name and the length, each on a line.
fn header(name: &str, len: usize) -> String {
    format!("{name}\n{len}\n")
}

/// Parses records from `data`: (name, offset of the bytes, length) in order, and the end of
/// the last whole record.
fn parse(data: &[u8]) -> (Vec<(String, u64, u64)>, usize) {
    let mut records = Vec::new();
    let mut at = 0;
    loop {
        let rest = &data[at..];
        let mut lines = rest.splitn(3, |b| *b == b'\n');
        let (Some(name), Some(len), Some(body)) = (lines.next(), lines.next(), lines.next()) else {
            break;
        };
        let (Ok(name), Some(len)) = (
            std::str::from_utf8(name),
            std::str::from_utf8(len)
                .ok()
                .and_then(|l| l.parse::<usize>().ok()),
        ) else {
            break;
        };
        if name.is_empty() || body.len() < len {
            break;
        }
        let start = at + (rest.len() - body.len());
        records.push((name.to_string(), start as u64, len as u64));
        at = start + len;
    }
    (records, at)
}

impl LogBundle {
    /// Opens the bundle of the logs directory `dir`, keeping the records whose file name
    /// `keep` accepts (the others belong to pods that are gone).
    pub fn open(dir: &Path, keep: impl Fn(&str) -> bool) -> LogBundle {
        let bundle = LogBundle {
            dir: dir.to_path_buf(),
            state: Mutex::new(State::default()),
        };
        let data = fs::read(bundle.path()).unwrap_or_default();
        let (records, end) = parse(&data);
        {
            let mut st = bundle.lock();
            st.size = end as u64;
            for (name, offset, len) in records {
                if !keep(&name) {
                    st.garbage += record_size(&name, len);
                } else if let Some((_, old)) = st.index.insert(name.clone(), (offset, len)) {
                    st.garbage += record_size(&name, old);
                }
            }
            if end < data.len() || st.garbage > 0 {
                // Cut short by a crash, or holding what is gone: start from the live records.
                if let Err(error) = rewrite(&bundle.path(), &mut st) {
                    tracing::warn!(%error, "cannot rewrite the log bundle");
                }
            }
        }
        bundle
    }

    fn path(&self) -> PathBuf {
        self.dir.join(FILE_NAME)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Appends the whole output of the attempt whose log file would be `log`.
    pub fn put(&self, log: &Path, bytes: &[u8]) -> io::Result<()> {
        let name = name_of(log)?;
        let mut st = self.lock();
        if st.file.is_none() {
            fs::create_dir_all(&self.dir)?;
            st.file = Some(
                OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(self.path())?,
            );
        }
        let head = header(name, bytes.len());
        let mut record = Vec::with_capacity(head.len() + bytes.len());
        record.extend_from_slice(head.as_bytes());
        record.extend_from_slice(bytes);
        let offset = st.size + head.len() as u64;
        let file = st.file.as_mut().expect("opened above");
        if let Err(err) = file.write_all(&record) {
            // A partial record would end the bundle at the next start: forget the file.
            st.file = None;
            st.size = fs::metadata(self.path()).map_or(st.size, |m| m.len());
            return Err(err);
        }
        st.size += record.len() as u64;
        if let Some((_, old)) = st
            .index
            .insert(name.to_string(), (offset, bytes.len() as u64))
        {
            st.garbage += record_size(name, old);
        }
        Ok(())
    }

    /// If the attempt whose log file is `log` is in the bundle, writes its file and drops the
    /// record, so readers find the file as if it had been written directly.
    pub fn materialize(&self, log: &Path) {
        let Ok(name) = name_of(log) else {
            return;
        };
        let mut st = self.lock();
        let Some(&(offset, len)) = st.index.get(name) else {
            return;
        };
        let result = read_at(&self.path(), offset, len).and_then(|bytes| {
            let tmp = log.with_extension("log.tmp");
            fs::write(&tmp, bytes)?;
            fs::rename(&tmp, log)
        });
        match result {
            Ok(()) => self.forget(&mut st, name),
            Err(error) => {
                tracing::warn!(%error, log = %log.display(), "cannot restore a bundled log")
            }
        }
    }

    /// Drops the record of the attempt whose log file is `log`, if there is one.
    pub fn remove(&self, log: &Path) {
        if let Ok(name) = name_of(log) {
            let mut st = self.lock();
            self.forget(&mut st, name);
        }
    }

    fn forget(&self, st: &mut State, name: &str) {
        let Some((_, len)) = st.index.remove(name) else {
            return;
        };
        st.garbage += record_size(name, len);
        if st.garbage > GARBAGE_FLOOR
            && st.garbage > st.size / 2
            && let Err(error) = rewrite(&self.path(), st)
        {
            tracing::warn!(%error, "cannot rewrite the log bundle");
        }
    }

    /// How many attempts the bundle holds.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.lock().index.len()
    }

    /// Whether the bundle holds no attempt.
    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn record_size(name: &str, len: u64) -> u64 {
    header(name, len as usize).len() as u64 + len
}

fn name_of(log: &Path) -> io::Result<&str> {
    log.file_name()
        .and_then(|n| n.to_str())
        .filter(|n| !n.contains('\n'))
        .ok_or_else(|| io::Error::other("a log file name must be valid UTF-8 on one line"))
}

fn read_at(path: &Path, offset: u64, len: u64) -> io::Result<Vec<u8>> {
    let mut file = File::open(path)?;
    file.seek(SeekFrom::Start(offset))?;
    let mut bytes = vec![0; len as usize];
    file.read_exact(&mut bytes)?;
    Ok(bytes)
}

/// Writes the indexed records to a new file and puts it in place of the old one.
fn rewrite(path: &Path, st: &mut State) -> io::Result<()> {
    let old = fs::read(path).unwrap_or_default();
    let mut data = Vec::new();
    let mut index = HashMap::with_capacity(st.index.len());
    for (name, &(offset, len)) in &st.index {
        let (start, end) = (offset as usize, (offset + len) as usize);
        let Some(bytes) = old.get(start..end) else {
            continue;
        };
        data.extend_from_slice(header(name, bytes.len()).as_bytes());
        index.insert(name.clone(), (data.len() as u64, len));
        data.extend_from_slice(bytes);
    }
    let tmp = path.with_extension("tmp");
    fs::write(&tmp, &data)?;
    fs::rename(&tmp, path)?;
    st.file = Some(OpenOptions::new().append(true).open(path)?);
    st.size = data.len() as u64;
    st.index = index;
    st.garbage = 0;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_come_back_as_files_and_survive_a_reopen() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_path_buf();
        let bundle = LogBundle::open(&dir, |_| true);
        let (a, b) = (dir.join("ns_a_u1_c_0.log"), dir.join("ns_b_u2_c_0.log"));
        bundle.put(&a, b"first\nline\n").unwrap();
        bundle.put(&b, b"").unwrap();
        assert!(!a.exists());
        assert_eq!(bundle.len(), 2);

        // A restart finds the records again; the one of a pod that is gone is dropped.
        drop(bundle);
        let bundle = LogBundle::open(&dir, |name| !name.contains("_u2_"));
        assert_eq!(bundle.len(), 1);
        bundle.materialize(&b);
        assert!(!b.exists());
        bundle.materialize(&a);
        assert_eq!(fs::read(&a).unwrap(), b"first\nline\n");
        assert!(bundle.is_empty());
    }

    #[test]
    fn a_record_cut_short_ends_the_bundle() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_path_buf();
        let bundle = LogBundle::open(&dir, |_| true);
        let a = dir.join("ns_a_u1_c_0.log");
        bundle.put(&a, b"kept\n").unwrap();
        drop(bundle);
        let mut file = OpenOptions::new()
            .append(true)
            .open(dir.join(FILE_NAME))
            .unwrap();
        file.write_all(b"ns_b_u2_c_0.log\n100\nonly part").unwrap();
        let bundle = LogBundle::open(&dir, |_| true);
        assert_eq!(bundle.len(), 1);
        // Appends go after the last whole record.
        let c = dir.join("ns_c_u3_c_0.log");
        bundle.put(&c, b"after\n").unwrap();
        drop(bundle);
        let bundle = LogBundle::open(&dir, |_| true);
        bundle.materialize(&c);
        assert_eq!(fs::read(&c).unwrap(), b"after\n");
    }

    #[test]
    fn garbage_is_rewritten_away() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_path_buf();
        let bundle = LogBundle::open(&dir, |_| true);
        let big = vec![b'x'; BUNDLED_MAX];
        let logs: Vec<PathBuf> = (0..200)
            .map(|i| dir.join(format!("ns_p{i}_u{i}_c_0.log")))
            .collect();
        for log in &logs {
            bundle.put(log, &big).unwrap();
        }
        for log in &logs[..150] {
            bundle.remove(log);
        }
        let size = fs::metadata(dir.join(FILE_NAME)).unwrap().len();
        assert!(size < 100 * big.len() as u64, "{size}");
        bundle.materialize(&logs[199]);
        assert_eq!(fs::read(&logs[199]).unwrap(), big);
    }
}
