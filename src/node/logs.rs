//! Container log files in the CRI logging format, and `kubectl logs` reads of them.
//!
//! Every record is one line of the form
//!
//! ```text
//! <timestamp> <stream> <tag> <content>\n
//! ```
//!
//! where the timestamp is RFC 3339 with nanoseconds (written in UTC with all nine
//! fraction digits), the stream is `stdout` or `stderr`, and the tag is `F` for
//! the end of a line or `P` for a piece of one. As with containerd, a line longer
//! than [`MAX_LINE_BYTES`] is cut into `P` chunks of exactly that size followed
//! by an `F` chunk with the rest, a trailing `\r` before the newline is dropped,
//! and output that ends without a newline is written as a `P` record when the
//! writer is closed.
//!
//! Each container attempt has its own file, named as in kubelet's `/var/log/pods` but with
//! no directories (see [`attempt_path`]), created at its first output. When a file would
//! grow past [`LogLimits::max_file_bytes`] it is rotated to `<file>.rotated/<n>`, `n`
//! increasing with every rotation, and the oldest rotated files are deleted so
//! that at most [`LogLimits::max_files`] files (the live one included, as with
//! kubelet's `containerLogMaxFiles`) remain.
//!
//! [`read`] serves `kubectl logs`: it reads the rotated files oldest first and
//! then the live one, puts the `P` chunks of a line back together (separately
//! for stdout and stderr, whose records may interleave), and applies
//! [`LogOptions`].

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::future::Future;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak, mpsc};
use std::time::{Duration, Instant};

use bytes::Bytes;

pub use super::log_bundle::{BUNDLED_MAX, LogBundle};
use chrono::{DateTime, FixedOffset, SecondsFormat, Utc};

/// The longest content a single record carries; longer lines are split into
/// `P` chunks of this size (containerd's default `max_container_log_line_size`).
pub const MAX_LINE_BYTES: usize = 16 * 1024;

/// Buffered record bytes that make a writer write to its file at once.
const FLUSH_THRESHOLD: usize = 32 * 1024;
/// How long buffered records may wait before the background flush writes them.
const FLUSH_DELAY: Duration = Duration::from_millis(25);
/// Size of one read from a log file.
const READ_BLOCK: usize = 64 * 1024;
/// Longest record a reader accepts; longer ones are not CRI records and are skipped.
const MAX_RECORD: usize = 1 << 20;
/// A reader holds at most this much of a line before it starts sending it out.
const GROUP_CAP: usize = 1 << 20;
/// Output a reader gathers before handing it out.
const STEP_OUTPUT: usize = 64 * 1024;
/// Input a reader consumes at most in one blocking step.
const STEP_INPUT: usize = 1 << 20;
/// Follow polling interval: starts here after new data and doubles while idle.
const POLL_MIN: Duration = Duration::from_millis(20);
const POLL_MAX: Duration = Duration::from_millis(250);

/// Where a container attempt's log lives: `<root>/<namespace>_<pod>_<uid>_<container>_<restart>.log`
/// (kubelet's /var/log/pods names, flattened). Its rotated files go to `<that>.rotated/<n>`.
pub fn attempt_path(
    root: &Path,
    namespace: &str,
    pod: &str,
    uid: &str,
    container: &str,
    restart: u32,
) -> PathBuf {
    // A file directly under the root, no directory per pod or container: each inode ext4
    // allocates is a search of its bitmaps (a directory's costlier still), and a Job of
    // 10,000 pods made 20,000 directories. Names cannot clash: namespace, pod and container
    // names hold no `_`.
    root.join(format!("{namespace}_{pod}_{uid}_{container}_{restart}.log"))
}

/// The output stream a record came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    /// The name used in the log file: `stdout` or `stderr`.
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }

    fn index(self) -> usize {
        match self {
            Stream::Stdout => 0,
            Stream::Stderr => 1,
        }
    }
}

/// Size limits of one container attempt's logs, like kubelet's
/// `containerLogMaxSize` / `containerLogMaxFiles`.
///
/// A file is rotated before a record would take it past `max_file_bytes` (a
/// file only exceeds it when a single record is larger), and at most
/// `max_files` files are kept, the live one included (values below 1 count
/// as 1). Disk use is therefore bounded by about `max_files * max_file_bytes`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LogLimits {
    pub max_file_bytes: u64,
    pub max_files: u32,
}

impl Default for LogLimits {
    fn default() -> Self {
        LogLimits {
            max_file_bytes: 10 * 1024 * 1024,
            max_files: 5,
        }
    }
}

/// `kubectl logs` options.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LogOptions {
    /// Keep reading as the log grows, until the attempt ends.
    pub follow: bool,
    /// Prefix each line with its RFC 3339 timestamp (nine fraction digits) and a space.
    pub timestamps: bool,
    /// Only lines stamped at or after this time (from `sinceSeconds` or `sinceTime`).
    pub since: Option<DateTime<Utc>>,
    /// Only the last this many lines present when the read starts.
    pub tail_lines: Option<u64>,
    /// Stop after this many output bytes, even in the middle of a line.
    pub limit_bytes: Option<u64>,
}

// ---------------------------------------------------------------------------
// Writing
// ---------------------------------------------------------------------------

/// Writes one container attempt's log.
///
/// All methods take `&self` and are cheap enough to call from a synchronous
/// output callback: records are encoded into a buffer, which is written to the
/// file once it holds [`FLUSH_THRESHOLD`] bytes, by a shared background thread
/// a few milliseconds after the first unwritten record, and on [`close`].
/// Only whole records are ever written. I/O errors drop the affected output
/// rather than fail the container. Dropping the writer closes it.
///
/// [`close`]: LogWriter::close
pub struct LogWriter {
    shared: Arc<Shared>,
}

struct Shared {
    bytes_written: AtomicU64,
    state: Mutex<WriterState>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, WriterState> {
        self.state
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }
}

struct WriterState {
    path: PathBuf,
    limits: LogLimits,
    /// The live file, opened (and its directories made) when the first records are written:
    /// a container that prints nothing leaves no file (a Job of 10,000 silent tasks makes no
    /// 20,000 directories).
    file: Option<File>,
    /// Bytes in the live file, `buf` included.
    size: u64,
    /// Encoded records not yet written to `file`.
    buf: Vec<u8>,
    /// The unfinished line of each stream (at most `MAX_LINE_BYTES + 1` bytes).
    pending: [Vec<u8>; 2],
    /// Sequence number of the next rotated file.
    next_seq: u64,
    /// Record bytes produced so far.
    written: u64,
    closed: bool,
    flush_scheduled: bool,
    /// Where the whole output goes instead of a file of its own when the attempt ends
    /// before its first flush with little output.
    bundle: Option<Arc<LogBundle>>,
}

impl LogWriter {
    /// A writer appending to the log file at `path`: opened now if it exists, else created
    /// (with its directories) once there is something to write. Rotated files go to
    /// `<path>.rotated/<n>`.
    pub fn create(path: &Path, limits: LogLimits) -> io::Result<LogWriter> {
        let (file, size, next_seq) = match OpenOptions::new().append(true).open(path) {
            Ok(file) => {
                let size = file.metadata()?.len();
                let next_seq = list_rotated(path)?.last().map_or(1, |(seq, _)| seq + 1);
                (Some(file), size, next_seq)
            }
            // Rotation keeps the live path in place, so without it there is nothing rotated.
            Err(err) if err.kind() == io::ErrorKind::NotFound => (None, 0, 1),
            Err(err) => return Err(err),
        };
        let state = WriterState {
            path: path.to_path_buf(),
            limits,
            file,
            size,
            buf: Vec::new(),
            pending: [Vec::new(), Vec::new()],
            next_seq,
            written: 0,
            closed: false,
            flush_scheduled: false,
            bundle: None,
        };
        Ok(LogWriter {
            shared: Arc::new(Shared {
                bytes_written: AtomicU64::new(0),
                state: Mutex::new(state),
            }),
        })
    }

    /// Lets `bundle` take the whole output instead of a file of its own if the writer closes
    /// before its first flush with at most [`BUNDLED_MAX`] bytes (a short task).
    pub fn with_bundle(self, bundle: Arc<LogBundle>) -> LogWriter {
        self.shared.lock().bundle = Some(bundle);
        self
    }

    /// Appends container output. Complete lines become records stamped with
    /// the current time; an unfinished line is held until its newline arrives,
    /// it grows past [`MAX_LINE_BYTES`] (a `P` record), or the writer closes.
    /// Ignored after [`close`](LogWriter::close).
    pub fn write(&self, stream: Stream, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        let mut st = self.shared.lock();
        if st.closed {
            return;
        }
        let mut now = None;
        st.feed(stream, bytes, &mut now);
        if !st.buf.is_empty() && !st.flush_scheduled {
            if schedule_flush(&self.shared) {
                st.flush_scheduled = true;
            } else {
                let _ = st.flush();
            }
        }
        self.shared
            .bytes_written
            .store(st.written, Ordering::Relaxed);
    }

    /// Writes any unfinished line as a `P` record, flushes everything to the
    /// file and stops accepting output. Idempotent.
    pub fn close(&self) {
        let mut st = self.shared.lock();
        if st.closed {
            return;
        }
        let mut now = None;
        for stream in [Stream::Stdout, Stream::Stderr] {
            let line = std::mem::take(&mut st.pending[stream.index()]);
            // Usually one chunk; two when a held '\r' sits just past the limit.
            for chunk in line.chunks(MAX_LINE_BYTES) {
                st.emit(stream, true, chunk, &mut now);
            }
        }
        let short = st.file.is_none() && st.next_seq == 1 && st.buf.len() <= BUNDLED_MAX;
        if short
            && !st.buf.is_empty()
            && let Some(bundle) = st.bundle.clone()
            && bundle.put(&st.path, &st.buf).is_ok()
        {
            st.buf.clear();
        }
        let _ = st.flush();
        st.closed = true;
        self.shared
            .bytes_written
            .store(st.written, Ordering::Relaxed);
    }

    /// Bytes of log records (prefixes included) this writer has produced,
    /// whether or not they are still on disk after rotation.
    pub fn bytes_written(&self) -> u64 {
        self.shared.bytes_written.load(Ordering::Relaxed)
    }
}

impl Drop for LogWriter {
    fn drop(&mut self) {
        self.close();
    }
}

impl std::fmt::Debug for LogWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let st = self.shared.lock();
        f.debug_struct("LogWriter")
            .field("path", &st.path)
            .field("limits", &st.limits)
            .field("bytes_written", &st.written)
            .field("closed", &st.closed)
            .finish()
    }
}

impl WriterState {
    /// Splits `data` into lines and feeds each piece to its stream's pending line.
    fn feed(&mut self, stream: Stream, mut data: &[u8], now: &mut Option<String>) {
        while !data.is_empty() {
            match data.iter().position(|&b| b == b'\n') {
                Some(i) => {
                    self.feed_segment(stream, &data[..i], true, now);
                    data = &data[i + 1..];
                }
                None => {
                    self.feed_segment(stream, data, false, now);
                    break;
                }
            }
        }
    }

    /// Adds `seg` to the stream's pending line, writing a `P` record for every
    /// `MAX_LINE_BYTES` once the line is longer than that, and an `F` record
    /// for the rest when `line_end`.
    fn feed_segment(
        &mut self,
        stream: Stream,
        mut seg: &[u8],
        line_end: bool,
        now: &mut Option<String>,
    ) {
        let mut line = std::mem::take(&mut self.pending[stream.index()]);
        if line_end {
            // "\r\n" ends a line too; the '\r' may have arrived in an earlier write.
            if let Some(stripped) = seg.strip_suffix(b"\r") {
                seg = stripped;
            } else if seg.is_empty() && line.last() == Some(&b'\r') {
                line.pop();
            }
        }
        loop {
            let room = (MAX_LINE_BYTES + 1).saturating_sub(line.len());
            let take = room.min(seg.len());
            line.extend_from_slice(&seg[..take]);
            seg = &seg[take..];
            if line.len() > MAX_LINE_BYTES {
                // The only byte past the limit may be the '\r' of a "\r\n" still to come.
                if !line_end && seg.is_empty() && line.last() == Some(&b'\r') {
                    break;
                }
                self.emit(stream, true, &line[..MAX_LINE_BYTES], now);
                line.drain(..MAX_LINE_BYTES);
                continue;
            }
            if seg.is_empty() {
                break;
            }
        }
        if line_end {
            self.emit(stream, false, &line, now);
            line.clear();
        }
        self.pending[stream.index()] = line;
    }

    /// Encodes one record into the buffer, rotating first if it would not fit.
    fn emit(&mut self, stream: Stream, partial: bool, content: &[u8], now: &mut Option<String>) {
        let ts = now.get_or_insert_with(|| Utc::now().to_rfc3339_opts(SecondsFormat::Nanos, true));
        let stream = stream.as_str();
        let len = ts.len() + 1 + stream.len() + 3 + content.len() + 1;
        if self.size > 0 && self.size + len as u64 > self.limits.max_file_bytes {
            let _ = self.rotate();
        }
        self.buf.reserve(len);
        self.buf.extend_from_slice(ts.as_bytes());
        self.buf.push(b' ');
        self.buf.extend_from_slice(stream.as_bytes());
        self.buf
            .extend_from_slice(if partial { b" P " } else { b" F " });
        self.buf.extend_from_slice(content);
        self.buf.push(b'\n');
        self.size += len as u64;
        self.written += len as u64;
        if self.buf.len() >= FLUSH_THRESHOLD {
            let _ = self.flush();
        }
    }

    /// Writes the buffered records to the live file, creating it first if need be. On error
    /// they are lost.
    fn flush(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let file = match &mut self.file {
            Some(file) => file,
            None => match open_new_live(&self.path) {
                Ok(file) => self.file.insert(file),
                Err(err) => {
                    tracing::warn!(path = %self.path.display(), %err, "cannot create the log file; output lost");
                    self.size = 0;
                    self.buf.clear();
                    return Err(err);
                }
            },
        };
        let result = file.write_all(&self.buf);
        if result.is_err() {
            let lost = self.buf.len() as u64;
            self.size = match file.metadata() {
                Ok(meta) => meta.len(),
                Err(_) => self.size.saturating_sub(lost),
            };
        }
        self.buf.clear();
        result
    }

    /// Moves the live file to `<path>.<next_seq>`, starts a new live file and
    /// deletes the oldest rotated files beyond the limit.
    ///
    /// The rotated name is made as a hard link and the new file is renamed
    /// over the live path, so the live path always exists for readers; where
    /// links are not supported the live file is renamed and recreated.
    fn rotate(&mut self) -> io::Result<()> {
        self.flush()?;
        let seq = self.next_seq;
        let dir = rotated_dir(&self.path);
        fs::create_dir_all(&dir)?;
        let rotated = dir.join(seq.to_string());
        if fs::hard_link(&self.path, &rotated).is_ok() {
            let tmp = suffixed(&self.path, "tmp");
            let _ = fs::remove_file(&tmp);
            let fresh = OpenOptions::new()
                .create_new(true)
                .append(true)
                .open(&tmp)
                .and_then(|file| fs::rename(&tmp, &self.path).map(|()| file));
            match fresh {
                Ok(file) => self.file = Some(file),
                Err(err) => {
                    let _ = fs::remove_file(&tmp);
                    let _ = fs::remove_file(&rotated);
                    return Err(err);
                }
            }
        } else {
            fs::rename(&self.path, &rotated)?;
            self.file = Some(open_new_live(&self.path)?);
        }
        self.next_seq = seq + 1;
        self.size = 0;
        let keep = self.limits.max_files.max(1) as usize - 1;
        let rotated = list_rotated(&self.path)?;
        if rotated.len() > keep {
            for (_, old) in &rotated[..rotated.len() - keep] {
                let _ = fs::remove_file(old);
            }
        }
        Ok(())
    }
}

type FlushQueue = mpsc::Sender<(Instant, Weak<Shared>)>;

/// Asks the shared flusher thread to flush `shared` shortly. False if there is
/// no flusher (its thread could not be started).
fn schedule_flush(shared: &Arc<Shared>) -> bool {
    static FLUSHER: OnceLock<Option<FlushQueue>> = OnceLock::new();
    let queue = FLUSHER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<(Instant, Weak<Shared>)>();
        std::thread::Builder::new()
            .name("skiff-log-flush".into())
            .spawn(move || {
                // Every entry is due FLUSH_DELAY after it was queued, so they come due in order.
                for (due, target) in rx {
                    let now = Instant::now();
                    if due > now {
                        std::thread::sleep(due - now);
                    }
                    if let Some(shared) = target.upgrade() {
                        let mut st = shared.lock();
                        st.flush_scheduled = false;
                        let _ = st.flush();
                    }
                }
            })
            .ok()
            .map(|_| tx)
    });
    match queue {
        Some(tx) => tx
            .send((Instant::now() + FLUSH_DELAY, Arc::downgrade(shared)))
            .is_ok(),
        None => false,
    }
}

/// The directory of a live log file's rotated files (made at its first rotation).
fn rotated_dir(path: &Path) -> PathBuf {
    suffixed(path, "rotated")
}

/// Removes an attempt's log: the live file and its rotated files.
pub fn remove_attempt(path: &Path) {
    let _ = fs::remove_file(path);
    let _ = fs::remove_dir_all(rotated_dir(path));
}

/// The uid of the pod a log file or directory under the logs root belongs to, from its name
/// (`<namespace>_<pod>_<uid>...`).
pub fn pod_uid_of(name: &str) -> Option<&str> {
    name.split('_')
        .nth(2)
        .map(|u| u.split('.').next().unwrap_or(u))
}

/// `path` with `.<suffix>` appended to its file name.
fn suffixed(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".");
    name.push(suffix);
    PathBuf::from(name)
}

/// The rotated files of the log at `path` (`<path>.rotated/<n>`), oldest (lowest `n`) first.
fn list_rotated(path: &Path) -> io::Result<Vec<(u64, PathBuf)>> {
    let entries = match fs::read_dir(rotated_dir(path)) {
        Ok(entries) => entries,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(err) => return Err(err),
    };
    let mut found = Vec::new();
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let Some(seq) = file_name.to_str() else {
            continue;
        };
        if seq.is_empty() || !seq.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        if let Ok(seq) = seq.parse::<u64>() {
            found.push((seq, entry.path()));
        }
    }
    found.sort_unstable_by_key(|(seq, _)| *seq);
    Ok(found)
}

// ---------------------------------------------------------------------------
// Parsing
// ---------------------------------------------------------------------------

/// Parses one CRI record (with or without its trailing newline) into its
/// timestamp, stream, whether it is a partial (`P`) chunk, and content.
///
/// Returns `None` for malformed records: a missing field, a timestamp that is
/// not RFC 3339, a stream other than `stdout`/`stderr`, or a tag whose first
/// `:`-separated part is not `P` or `F`.
pub fn parse_line(line: &[u8]) -> Option<(DateTime<FixedOffset>, Stream, bool, &[u8])> {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let (timestamp, rest) = split_field(line)?;
    let timestamp = DateTime::parse_from_rfc3339(std::str::from_utf8(timestamp).ok()?).ok()?;
    let (stream, rest) = split_field(rest)?;
    let stream = match stream {
        b"stdout" => Stream::Stdout,
        b"stderr" => Stream::Stderr,
        _ => return None,
    };
    let (tags, content) = split_field(rest)?;
    let partial = match tags.split(|&b| b == b':').next()? {
        b"P" => true,
        b"F" => false,
        _ => return None,
    };
    Some((timestamp, stream, partial, content))
}

fn split_field(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    let i = bytes.iter().position(|&b| b == b' ')?;
    Some((&bytes[..i], &bytes[i + 1..]))
}

// ---------------------------------------------------------------------------
// Reading
// ---------------------------------------------------------------------------

/// Reads an attempt's log (its rotated files first, oldest to newest, then the
/// live file), applying `options`, as a stream of output bytes: record content
/// with the CRI prefix stripped, the `P` chunks of a line joined and its `F`
/// chunk ending it with a newline. A line still unfinished at the end (output
/// that ended without a newline) is sent without one.
///
/// A line is stamped, filtered by `since` and, with `timestamps`, prefixed by
/// the timestamp of its last chunk (the time it was completed); a line longer
/// than about 1 MiB is sent in pieces and uses the timestamp its first piece
/// had. `tail_lines` counts whole lines and `limit_bytes` counts output bytes,
/// the timestamp prefixes included.
///
/// With `follow`, the stream keeps polling the live file as it grows or is
/// rotated until `done` resolves (which should happen after the attempt's
/// [`LogWriter`] has been closed), then reads what is left and ends; without
/// it, `done` is ignored. Malformed records are skipped. File reads run on
/// tokio's blocking pool, so the stream must be polled inside a tokio runtime.
pub fn read(
    path: &Path,
    options: LogOptions,
    done: impl Future<Output = ()> + Send + 'static,
) -> impl futures::Stream<Item = io::Result<Bytes>> + Send + 'static {
    read_bundled(path, options, done, None)
}

/// [`read`], finding in `bundle` the output of an attempt that has no file (see
/// [`LogBundle`]): a follower whose attempt ends before its first flush still sees it.
pub fn read_bundled(
    path: &Path,
    options: LogOptions,
    done: impl Future<Output = ()> + Send + 'static,
    bundle: Option<Arc<LogBundle>>,
) -> impl futures::Stream<Item = io::Result<Bytes>> + Send + 'static {
    let follow = options.follow;
    let mut reader = Reader::new(path.to_path_buf(), options);
    reader.bundle = bundle;
    let state = ReadState {
        reader: Some(Box::new(reader)),
        done: if follow { Some(Box::pin(done)) } else { None },
        done_fired: !follow,
        poll: POLL_MIN,
    };
    futures::stream::unfold(state, |mut st| async move {
        loop {
            let mut reader = st.reader.take()?;
            let finishing = st.done_fired;
            let joined = tokio::task::spawn_blocking(move || {
                let step = reader.step(finishing);
                (reader, step)
            })
            .await;
            let (reader, step) = match joined {
                Ok(pair) => pair,
                Err(err) => return Some((Err(io::Error::other(err)), st)),
            };
            match step {
                Err(err) => return Some((Err(err), st)),
                Ok(Step::End) => return None,
                Ok(Step::Progress) => st.reader = Some(reader),
                Ok(Step::Data(bytes)) => {
                    st.reader = Some(reader);
                    st.poll = POLL_MIN;
                    return Some((Ok(bytes), st));
                }
                Ok(Step::Idle) => {
                    st.reader = Some(reader);
                    match st.done.as_mut() {
                        Some(done) => tokio::select! {
                            () = done => {
                                st.done = None;
                                st.done_fired = true;
                            }
                            () = tokio::time::sleep(st.poll) => {
                                st.poll = (st.poll * 2).min(POLL_MAX);
                            }
                        },
                        None => st.done_fired = true,
                    }
                }
            }
        }
    })
}

struct ReadState {
    reader: Option<Box<Reader>>,
    done: Option<Pin<Box<dyn Future<Output = ()> + Send>>>,
    done_fired: bool,
    poll: Duration,
}

enum Step {
    /// Output to hand out.
    Data(Bytes),
    /// Input was consumed without output; step again.
    Progress,
    /// Following and nothing new: wait, then step again.
    Idle,
    /// The stream is over.
    End,
}

/// Identity of a file (device and inode), to notice rotation.
type FileId = (u64, u64);

#[cfg(unix)]
fn file_id(meta: &fs::Metadata) -> Option<FileId> {
    use std::os::unix::fs::MetadataExt;
    Some((meta.dev(), meta.ino()))
}

#[cfg(not(unix))]
fn file_id(_meta: &fs::Metadata) -> Option<FileId> {
    None
}

/// A place in the log: (ordinal of the file among those the reader opened, byte offset).
type Pos = (u64, u64);

/// One opened log file.
struct Source {
    file: File,
    id: Option<FileId>,
    /// `Some(n)` for the rotated file `<path>.<n>` (complete); `None` for the live file.
    seq: Option<u64>,
    ord: u64,
    /// Offset of the next byte to read.
    pos: u64,
    /// A live file that has since been rotated away: complete once read to its end.
    retired: bool,
}

/// A line being put together from its chunks.
#[derive(Default)]
struct Group {
    open: bool,
    /// Whether the first piece went out (and `pass` is decided).
    started: bool,
    /// Whether the line passes `since`.
    pass: bool,
    /// The timestamp of its latest chunk.
    ts: Option<DateTime<FixedOffset>>,
    buf: Vec<u8>,
    /// When the line began, to send unfinished lines in order at the end.
    order: u64,
}

/// The synchronous core of [`read`], run on the blocking pool one step at a time.
struct Reader {
    path: PathBuf,
    follow: bool,
    timestamps: bool,
    since: Option<DateTime<Utc>>,
    tail: Option<u64>,
    remaining: Option<u64>,
    started: bool,
    ended: bool,
    queue: VecDeque<Source>,
    /// Highest sequence number of the rotated files already read.
    consumed: Option<u64>,
    /// The retired live file just read, to find it among the rotated files.
    prev: Option<FileId>,
    next_ord: u64,
    /// Per stream, where the selected tail lines begin; earlier records are skipped.
    starts: [Pos; 2],
    passed: [bool; 2],
    /// An unfinished record at the end of the data read so far, and where it began.
    rec_buf: Vec<u8>,
    rec_pos: Pos,
    /// Skipping the rest of an oversized record.
    discarding: bool,
    groups: [Group; 2],
    next_order: u64,
    block: Vec<u8>,
    bundle: Option<Arc<LogBundle>>,
}

impl Reader {
    fn new(path: PathBuf, options: LogOptions) -> Reader {
        Reader {
            path,
            follow: options.follow,
            timestamps: options.timestamps,
            since: options.since,
            tail: options.tail_lines,
            remaining: options.limit_bytes,
            started: false,
            ended: false,
            queue: VecDeque::new(),
            consumed: None,
            prev: None,
            next_ord: 0,
            starts: [(0, 0); 2],
            passed: [true; 2],
            rec_buf: Vec::new(),
            rec_pos: (0, 0),
            discarding: false,
            groups: [Group::default(), Group::default()],
            next_order: 0,
            block: vec![0; READ_BLOCK],
            bundle: None,
        }
    }

    /// Opens the files at the start and, for `tail`, finds where to begin. No file yet is
    /// no output yet (log files are created at the first write); a follower waits for it.
    fn start(&mut self) -> io::Result<()> {
        let mut sources = self.plan(None)?;
        if sources.is_empty() {
            return Ok(());
        }
        if let Some(n) = self.tail {
            let starts = tail_starts(sources.make_contiguous(), n)?;
            let begin = starts[0].min(starts[1]);
            while sources.front().is_some_and(|s| s.ord < begin.0) {
                if let Some(Source { seq: Some(seq), .. }) = sources.pop_front() {
                    self.consumed = Some(self.consumed.map_or(seq, |c| c.max(seq)));
                }
            }
            for source in &mut sources {
                source.pos = if source.ord == begin.0 { begin.1 } else { 0 };
                source.file.seek(SeekFrom::Start(source.pos))?;
            }
            self.starts = starts;
            self.passed = [false; 2];
        }
        self.queue = sources;
        Ok(())
    }

    /// Opens what is left to read: the rotated files newer than `consumed`,
    /// then the live file. `prev` is a retired live file just read; if it is
    /// among the rotated files, it and everything older are skipped.
    fn plan(&mut self, prev: Option<FileId>) -> io::Result<VecDeque<Source>> {
        if let Some(bundle) = &self.bundle {
            bundle.materialize(&self.path);
        }
        // The live file is opened before listing, so that a rotation in between
        // shows up in the listing rather than being missed.
        let mut live = open_live(&self.path)?;
        let live_id = match &live {
            Some(file) => file_id(&file.metadata()?),
            None => None,
        };
        let mut rotated = Vec::new();
        for (seq, path) in list_rotated(&self.path)? {
            if self.consumed.is_some_and(|c| seq <= c) {
                continue;
            }
            match File::open(&path) {
                Ok(file) => {
                    let id = file_id(&file.metadata()?);
                    rotated.push((seq, file, id));
                }
                Err(err) if err.kind() == io::ErrorKind::NotFound => {}
                Err(err) => return Err(err),
            }
        }
        if let Some(prev) = prev
            && let Some(i) = rotated.iter().position(|(_, _, id)| *id == Some(prev))
        {
            self.consumed = Some(rotated[i].0);
            rotated.drain(..=i);
        }
        let mut sources = VecDeque::new();
        for (seq, file, id) in rotated {
            // The live file was rotated while planning: read it as the rotated
            // file it now is, and plan again after it.
            let was_live = id.is_some() && id == live_id;
            sources.push_back(self.source(file, id, Some(seq)));
            if was_live {
                live = None;
                break;
            }
        }
        if let Some(file) = live {
            sources.push_back(self.source(file, live_id, None));
        }
        Ok(sources)
    }

    fn source(&mut self, file: File, id: Option<FileId>, seq: Option<u64>) -> Source {
        let ord = self.next_ord;
        self.next_ord += 1;
        Source {
            file,
            id,
            seq,
            ord,
            pos: 0,
            retired: false,
        }
    }

    /// Reads on until there is output to hand out, the input budget is spent,
    /// the live file has nothing new (`Idle`), or the read is over.
    fn step(&mut self, finishing: bool) -> io::Result<Step> {
        let mut out = Vec::new();
        if !self.started {
            self.started = true;
            self.start()?;
        }
        let mut budget = STEP_INPUT;
        while !self.ended {
            if self.remaining == Some(0) {
                self.ended = true;
                break;
            }
            if out.len() >= STEP_OUTPUT || budget == 0 {
                break;
            }
            let Some(source) = self.queue.front_mut() else {
                let prev = self.prev.take();
                self.queue = self.plan(prev)?;
                if self.queue.is_empty() {
                    if self.follow && !finishing {
                        return Ok(idle_or_data(out));
                    }
                    self.finish(&mut out);
                }
                continue;
            };
            let n = read_some(&mut source.file, &mut self.block)?;
            if n > 0 {
                let (ord, offset) = (source.ord, source.pos);
                source.pos += n as u64;
                budget = budget.saturating_sub(n);
                let block = std::mem::take(&mut self.block);
                self.ingest(ord, offset, &block[..n], &mut out);
                self.block = block;
                continue;
            }
            if source.seq.is_none() && !source.retired {
                // At the end of the live file.
                if !self.follow {
                    self.finish(&mut out);
                    continue;
                }
                match fs::metadata(&self.path) {
                    Ok(meta) if file_id(&meta) != source.id => {
                        // Rotated: whatever was written to it before is there to
                        // read now; then go on with the newer files.
                        source.retired = true;
                        continue;
                    }
                    Ok(_) => {}
                    Err(err) if err.kind() == io::ErrorKind::NotFound => {}
                    Err(err) => return Err(err),
                }
                if finishing {
                    self.finish(&mut out);
                    continue;
                }
                return Ok(idle_or_data(out));
            }
            // A complete file has been read to its end.
            let Some(source) = self.queue.pop_front() else {
                continue;
            };
            self.end_of_file();
            if let Some(seq) = source.seq {
                self.consumed = Some(self.consumed.map_or(seq, |c| c.max(seq)));
            }
            if source.retired {
                self.prev = source.id;
            }
        }
        Ok(if !out.is_empty() {
            Step::Data(Bytes::from(out))
        } else if self.ended {
            Step::End
        } else {
            Step::Progress
        })
    }

    /// Splits freshly read bytes (at `offset` of file `ord`) into records.
    fn ingest(&mut self, ord: u64, offset: u64, data: &[u8], out: &mut Vec<u8>) {
        let mut start = 0;
        while start < data.len() {
            let Some(i) = data[start..].iter().position(|&b| b == b'\n') else {
                if !self.discarding {
                    if self.rec_buf.is_empty() {
                        self.rec_pos = (ord, offset + start as u64);
                    }
                    self.rec_buf.extend_from_slice(&data[start..]);
                    if self.rec_buf.len() > MAX_RECORD {
                        self.rec_buf = Vec::new();
                        self.discarding = true;
                    }
                }
                break;
            };
            let end = start + i + 1;
            if self.discarding {
                self.discarding = false;
            } else if self.rec_buf.is_empty() {
                self.record((ord, offset + start as u64), &data[start..end], out);
            } else {
                let mut rec = std::mem::take(&mut self.rec_buf);
                rec.extend_from_slice(&data[start..end]);
                self.record(self.rec_pos, &rec, out);
                rec.clear();
                self.rec_buf = rec;
            }
            start = end;
        }
    }

    /// A file ended: a record left without its newline was cut short (a
    /// write in progress or a crash) and is dropped.
    fn end_of_file(&mut self) {
        self.discarding = false;
        self.rec_buf.clear();
    }

    /// The end of the read: sends the lines still unfinished, oldest first.
    fn finish(&mut self, out: &mut Vec<u8>) {
        self.end_of_file();
        let mut open: Vec<usize> = (0..2).filter(|&s| self.groups[s].open).collect();
        open.sort_by_key(|&s| self.groups[s].order);
        for s in open {
            self.send_group(s, false, out);
        }
        self.ended = true;
    }

    fn record(&mut self, pos: Pos, rec: &[u8], out: &mut Vec<u8>) {
        if self.remaining == Some(0) {
            return;
        }
        let Some((ts, stream, partial, content)) = parse_line(rec) else {
            return;
        };
        let s = stream.index();
        if !self.passed[s] {
            if pos < self.starts[s] {
                return;
            }
            self.passed[s] = true;
        }
        let group = &mut self.groups[s];
        if !group.open {
            group.open = true;
            group.order = self.next_order;
            self.next_order += 1;
        }
        group.ts = Some(ts);
        group.buf.extend_from_slice(content);
        if !partial {
            self.send_group(s, true, out);
        } else if group.buf.len() >= GROUP_CAP {
            self.send_group(s, false, out);
        }
    }

    /// Sends what a line has gathered; `complete` ends it with a newline.
    fn send_group(&mut self, s: usize, complete: bool, out: &mut Vec<u8>) {
        let group = &mut self.groups[s];
        if !group.started {
            group.started = true;
            group.pass = match (self.since, group.ts) {
                (Some(since), Some(ts)) => ts.with_timezone(&Utc) >= since,
                _ => true,
            };
            if group.pass
                && self.timestamps
                && let Some(ts) = group.ts
            {
                let prefix = format!("{} ", ts.to_rfc3339_opts(SecondsFormat::Nanos, true));
                push_limited(out, &mut self.remaining, prefix.as_bytes());
            }
        }
        if group.pass {
            push_limited(out, &mut self.remaining, &group.buf);
            if complete {
                push_limited(out, &mut self.remaining, b"\n");
            }
        }
        if group.buf.capacity() > 4 * MAX_LINE_BYTES {
            group.buf = Vec::new();
        } else {
            group.buf.clear();
        }
        if complete {
            group.open = false;
            group.started = false;
            group.pass = false;
            group.ts = None;
        }
    }
}

fn idle_or_data(out: Vec<u8>) -> Step {
    if out.is_empty() {
        Step::Idle
    } else {
        Step::Data(Bytes::from(out))
    }
}

/// Appends `bytes` to `out`, cut to what `remaining` still allows.
fn push_limited(out: &mut Vec<u8>, remaining: &mut Option<u64>, bytes: &[u8]) {
    match remaining {
        None => out.extend_from_slice(bytes),
        Some(left) => {
            let take = (*left).min(bytes.len() as u64) as usize;
            out.extend_from_slice(&bytes[..take]);
            *left -= take as u64;
        }
    }
}

fn read_some(file: &mut File, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match file.read(buf) {
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            result => return result,
        }
    }
}

/// Creates (or opens) the live file at `path` for appending, with its directories.
fn open_new_live(path: &Path) -> io::Result<File> {
    if let Some(dir) = path.parent()
        && !dir.as_os_str().is_empty()
    {
        fs::create_dir_all(dir)?;
    }
    OpenOptions::new().create(true).append(true).open(path)
}

/// Opens the live file; `None` if it does not exist (after a short retry, for
/// a writer that rotates by renaming).
fn open_live(path: &Path) -> io::Result<Option<File>> {
    for attempt in 0..3 {
        match File::open(path) {
            Ok(file) => return Ok(Some(file)),
            Err(err) if err.kind() == io::ErrorKind::NotFound => {
                if attempt < 2 {
                    std::thread::sleep(Duration::from_millis(2));
                }
            }
            Err(err) => return Err(err),
        }
    }
    Ok(None)
}

/// Finds, for each stream, where the last `n` lines of `sources` begin.
///
/// Walks the records backwards. Lines count in the order they are completed
/// (their `F` record; a run of `P` records at the very end is an unfinished
/// line and the newest). Each selected line also claims the `P` records of its
/// stream right before it. A stream with no selected line starts at the end.
fn tail_starts(sources: &mut [Source], n: u64) -> io::Result<[Pos; 2]> {
    let Some(last) = sources.last() else {
        return Ok([(0, 0); 2]);
    };
    let end = (last.ord, last.file.metadata()?.len());
    let mut starts = [end; 2];
    if n == 0 {
        return Ok(starts);
    }
    let mut selected = 0u64;
    let mut collecting = [false; 2];
    let mut closed = [false; 2];
    for source in sources.iter_mut().rev() {
        let len = if source.ord == end.0 {
            end.1
        } else {
            source.file.metadata()?.len()
        };
        let mut records = RevRecords {
            file: &mut source.file,
            pos: len,
            buf: Vec::new(),
            truncated: false,
        };
        while let Some((offset, rec)) = records.prev()? {
            if !rec.ends_with(b"\n") {
                continue; // cut short, as in `Reader::end_of_file`
            }
            let Some((_, stream, partial, _)) = parse_line(&rec) else {
                continue;
            };
            let s = stream.index();
            if closed[s] {
                continue;
            }
            if partial && collecting[s] {
                // An earlier chunk of a selected line.
                starts[s] = (source.ord, offset);
                continue;
            }
            // The end of an older line on this stream.
            if selected < n {
                selected += 1;
                collecting[s] = true;
                starts[s] = (source.ord, offset);
            } else {
                collecting[s] = false;
                closed[s] = true;
            }
            if selected >= n && !collecting[0] && !collecting[1] {
                return Ok(starts);
            }
        }
    }
    Ok(starts)
}

/// Iterates a file's records from its end backwards.
struct RevRecords<'a> {
    file: &'a mut File,
    /// File offset of `buf[0]`.
    pos: u64,
    /// Loaded bytes not yet returned; they end at a record boundary.
    buf: Vec<u8>,
    /// The tail of an oversized record was dropped: its remaining head is skipped.
    truncated: bool,
}

impl RevRecords<'_> {
    fn prev(&mut self) -> io::Result<Option<(u64, Vec<u8>)>> {
        loop {
            // The last byte is the newline ending the record being looked for.
            let search = self.buf.len().saturating_sub(1);
            let found = self.buf[..search].iter().rposition(|&b| b == b'\n');
            if found.is_some() || self.pos == 0 {
                if self.buf.is_empty() {
                    return Ok(None);
                }
                let at = found.map_or(0, |i| i + 1);
                let mut rec = self.buf.split_off(at);
                if std::mem::take(&mut self.truncated) {
                    rec.clear();
                }
                return Ok(Some((self.pos + at as u64, rec)));
            }
            if self.buf.len() > MAX_RECORD {
                self.buf.clear();
                self.truncated = true;
            }
            let n = self.pos.min(READ_BLOCK as u64) as usize;
            self.pos -= n as u64;
            self.file.seek(SeekFrom::Start(self.pos))?;
            let mut block = vec![0; n + self.buf.len()];
            self.file.read_exact(&mut block[..n])?;
            block[n..].copy_from_slice(&self.buf);
            self.buf = block;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;
    use std::sync::atomic::AtomicUsize;

    /// A scratch directory removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new() -> TempDir {
            static COUNTER: AtomicUsize = AtomicUsize::new(0);
            let dir = std::env::temp_dir().join(format!(
                "skiff-logs-{}-{}-{}",
                std::process::id(),
                COUNTER.fetch_add(1, Ordering::Relaxed),
                Utc::now().timestamp_nanos_opt().unwrap_or_default()
            ));
            fs::create_dir_all(&dir).unwrap();
            TempDir(dir)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    async fn read_all(path: &Path, options: LogOptions) -> Vec<u8> {
        let mut stream = Box::pin(read(path, options, async {}));
        let mut out = Vec::new();
        while let Some(chunk) = stream.next().await {
            out.extend_from_slice(&chunk.unwrap());
        }
        out
    }

    fn records(path: &Path) -> Vec<(Stream, bool, Vec<u8>)> {
        fs::read(path)
            .unwrap()
            .split_inclusive(|&b| b == b'\n')
            .map(|rec| {
                let (_, stream, partial, content) = parse_line(rec).expect("well-formed record");
                (stream, partial, content.to_vec())
            })
            .collect()
    }

    fn big_line() -> Vec<u8> {
        (0..40 * 1024).map(|i| b'a' + (i % 26) as u8).collect()
    }

    /// stdout "hello", stderr "oops", stdout "world", a 40 KiB stdout line and
    /// an unfinished stderr line.
    fn write_sample(path: &Path) -> LogWriter {
        let writer = LogWriter::create(path, LogLimits::default()).unwrap();
        writer.write(Stream::Stdout, b"hello\nwor");
        writer.write(Stream::Stderr, b"oops\r\n");
        writer.write(Stream::Stdout, b"ld\n");
        writer.write(Stream::Stdout, &big_line());
        writer.write(Stream::Stdout, b"\n");
        writer.write(Stream::Stderr, b"no newline");
        writer.close();
        writer
    }

    fn sample_output() -> Vec<u8> {
        let mut expected = b"hello\noops\nworld\n".to_vec();
        expected.extend_from_slice(&big_line());
        expected.extend_from_slice(b"\nno newline");
        expected
    }

    #[test]
    fn attempt_path_layout() {
        assert_eq!(
            attempt_path(
                Path::new("/var/log/pods"),
                "default",
                "web",
                "1234",
                "app",
                2
            ),
            PathBuf::from("/var/log/pods/default_web_1234_app_2.log")
        );
        for name in [
            "default_web_12-ab_app_2.log",
            "default_web_12-ab_app_2.log.rotated",
            "default_web_12-ab",
        ] {
            assert_eq!(pod_uid_of(name), Some("12-ab"), "{name}");
        }
        assert_eq!(pod_uid_of("stray.txt"), None);
    }

    #[test]
    fn writes_cri_records() {
        let dir = TempDir::new();
        let path = dir.0.join("ns_pod_uid/app/0.log");
        let writer = write_sample(&path);
        let big = big_line();
        let expected = vec![
            (Stream::Stdout, false, b"hello".to_vec()),
            (Stream::Stderr, false, b"oops".to_vec()),
            (Stream::Stdout, false, b"world".to_vec()),
            (Stream::Stdout, true, big[..16384].to_vec()),
            (Stream::Stdout, true, big[16384..32768].to_vec()),
            (Stream::Stdout, false, big[32768..].to_vec()),
            (Stream::Stderr, true, b"no newline".to_vec()),
        ];
        assert_eq!(records(&path), expected);
        assert_eq!(writer.bytes_written(), fs::metadata(&path).unwrap().len());
        // Every record starts with a fixed-width UTC timestamp.
        let text = fs::read(&path).unwrap();
        for rec in text.split_inclusive(|&b| b == b'\n') {
            assert_eq!(rec[29], b'Z', "{}", String::from_utf8_lossy(&rec[..40]));
            assert_eq!(rec[30], b' ');
        }
        // Closed: later output is ignored.
        writer.write(Stream::Stdout, b"late\n");
        writer.close();
        assert_eq!(records(&path).len(), 7);
    }

    #[test]
    fn line_splitting_boundaries() {
        let dir = TempDir::new();
        let path = dir.0.join("0.log");
        let writer = LogWriter::create(&path, LogLimits::default()).unwrap();
        let exact = vec![b'x'; MAX_LINE_BYTES];
        // Exactly the limit: one F record.
        writer.write(Stream::Stdout, &exact);
        writer.write(Stream::Stdout, b"\n");
        // One byte more: P with the limit, F with the rest.
        let mut over = exact.clone();
        over.push(b'y');
        over.push(b'\n');
        writer.write(Stream::Stdout, &over);
        // A "\r\n" split across writes right after the limit stays one F record.
        writer.write(Stream::Stderr, &exact);
        writer.write(Stream::Stderr, b"\r");
        writer.write(Stream::Stderr, b"\n");
        // Empty lines are records too.
        writer.write(Stream::Stdout, b"\n\n");
        // A '\r' held past the limit when the writer closes.
        writer.write(Stream::Stdout, &exact);
        writer.write(Stream::Stdout, b"\r");
        writer.close();
        assert_eq!(
            records(&path),
            vec![
                (Stream::Stdout, false, exact.clone()),
                (Stream::Stdout, true, exact.clone()),
                (Stream::Stdout, false, b"y".to_vec()),
                (Stream::Stderr, false, exact.clone()),
                (Stream::Stdout, false, Vec::new()),
                (Stream::Stdout, false, Vec::new()),
                (Stream::Stdout, true, exact.clone()),
                (Stream::Stdout, true, b"\r".to_vec()),
            ]
        );
    }

    #[test]
    fn buffered_output_is_flushed_by_timer() {
        let dir = TempDir::new();
        let path = dir.0.join("0.log");
        let writer = LogWriter::create(&path, LogLimits::default()).unwrap();
        writer.write(Stream::Stdout, b"soon\n");
        let deadline = Instant::now() + Duration::from_secs(5);
        while fs::metadata(&path).map_or(0, |m| m.len()) == 0 {
            assert!(Instant::now() < deadline, "never flushed");
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(
            records(&path),
            vec![(Stream::Stdout, false, b"soon".to_vec())]
        );
        drop(writer);
    }

    #[tokio::test]
    async fn concurrent_writers_keep_whole_lines() {
        let dir = TempDir::new();
        let path = dir.0.join("0.log");
        let writer = Arc::new(LogWriter::create(&path, LogLimits::default()).unwrap());
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let writer = writer.clone();
                std::thread::spawn(move || {
                    let stream = if t % 2 == 0 {
                        Stream::Stdout
                    } else {
                        Stream::Stderr
                    };
                    for i in 0..500 {
                        writer.write(stream, format!("thread {t} line {i}\n").as_bytes());
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        writer.close();
        let out = String::from_utf8(read_all(&path, LogOptions::default()).await).unwrap();
        let mut lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 2000);
        lines.sort_unstable();
        lines.dedup();
        assert_eq!(lines.len(), 2000);
        assert_eq!(writer.bytes_written(), fs::metadata(&path).unwrap().len());
    }

    #[tokio::test]
    async fn reads_back_with_and_without_timestamps() {
        let dir = TempDir::new();
        let path = dir.0.join("0.log");
        write_sample(&path);
        assert_eq!(
            read_all(&path, LogOptions::default()).await,
            sample_output()
        );

        let before = Utc::now();
        let stamped = read_all(
            &path,
            LogOptions {
                timestamps: true,
                ..LogOptions::default()
            },
        )
        .await;
        let stamped = String::from_utf8(stamped).unwrap();
        let expected = String::from_utf8(sample_output()).unwrap();
        let lines: Vec<&str> = stamped.split('\n').collect();
        let plain: Vec<&str> = expected.split('\n').collect();
        assert_eq!(lines.len(), plain.len());
        for (line, plain) in lines.iter().zip(plain) {
            let (ts, content) = line.split_once(' ').unwrap();
            assert_eq!(ts.len(), 30, "{ts}");
            let ts = DateTime::parse_from_rfc3339(ts).unwrap();
            assert!(ts.with_timezone(&Utc) <= before);
            assert!(before - ts.with_timezone(&Utc) < chrono::TimeDelta::seconds(60));
            assert_eq!(content, plain);
        }
    }

    #[tokio::test]
    async fn tail_lines_counts_whole_lines() {
        let dir = TempDir::new();
        let path = dir.0.join("0.log");
        write_sample(&path);
        let tail = |n| LogOptions {
            tail_lines: Some(n),
            ..LogOptions::default()
        };
        let mut last_two = big_line();
        last_two.extend_from_slice(b"\nno newline");
        assert_eq!(read_all(&path, tail(2)).await, last_two);
        assert_eq!(read_all(&path, tail(1)).await, b"no newline");
        assert_eq!(read_all(&path, tail(0)).await, b"");
        let mut last_three = b"world\n".to_vec();
        last_three.extend_from_slice(&last_two);
        assert_eq!(read_all(&path, tail(3)).await, last_three);
        assert_eq!(read_all(&path, tail(100)).await, sample_output());
    }

    #[tokio::test]
    async fn interleaved_streams_and_malformed_records() {
        let dir = TempDir::new();
        let path = dir.0.join("0.log");
        fs::write(
            &path,
            "2024-01-01T00:00:01.000000000Z stdout P aa\n\
             garbage\n\
             2024-01-01T00:00:02.000000000Z stderr F b\n\
             2024-01-01T00:00:02.500000000Z stdin F nope\n\
             2024-01-01T00:00:03.000000000Z stdout F cc\n\
             2024-01-01T00:00:04.000000000Z stderr F d\n\
             2024-01-01T00:00:05.000000000Z stdout F cut sho",
        )
        .unwrap();
        let tail = |n| LogOptions {
            tail_lines: Some(n),
            ..LogOptions::default()
        };
        assert_eq!(
            read_all(&path, LogOptions::default()).await,
            b"b\naacc\nd\n"
        );
        assert_eq!(read_all(&path, tail(1)).await, b"d\n");
        assert_eq!(read_all(&path, tail(2)).await, b"aacc\nd\n");
        assert_eq!(read_all(&path, tail(3)).await, b"b\naacc\nd\n");
        let stamped = read_all(
            &path,
            LogOptions {
                timestamps: true,
                tail_lines: Some(2),
                ..LogOptions::default()
            },
        )
        .await;
        // A joined line carries the time it was completed.
        assert_eq!(
            String::from_utf8(stamped).unwrap(),
            "2024-01-01T00:00:03.000000000Z aacc\n2024-01-01T00:00:04.000000000Z d\n"
        );
    }

    #[tokio::test]
    async fn since_filters_by_timestamp() {
        let dir = TempDir::new();
        let path = dir.0.join("0.log");
        fs::write(
            &path,
            "2024-01-01T00:00:01.000000000Z stdout F one\n\
             2024-01-01T00:00:02.000000000Z stdout F two\n\
             2024-01-01T01:00:03.5+01:00 stderr F three\n\
             2024-01-01T00:00:04Z stdout F four\n",
        )
        .unwrap();
        let since = |s: &str| LogOptions {
            since: Some(DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)),
            ..LogOptions::default()
        };
        assert_eq!(
            read_all(&path, since("2024-01-01T00:00:02Z")).await,
            b"two\nthree\nfour\n"
        );
        assert_eq!(
            read_all(&path, since("2024-01-01T00:00:03.6Z")).await,
            b"four\n"
        );
        assert_eq!(read_all(&path, since("2025-01-01T00:00:00Z")).await, b"");
        let stamped = read_all(
            &path,
            LogOptions {
                timestamps: true,
                tail_lines: Some(2),
                ..since("2024-01-01T00:00:00Z")
            },
        )
        .await;
        assert_eq!(
            String::from_utf8(stamped).unwrap(),
            "2024-01-01T01:00:03.500000000+01:00 three\n2024-01-01T00:00:04.000000000Z four\n"
        );
    }

    #[tokio::test]
    async fn limit_bytes_cuts_output() {
        let dir = TempDir::new();
        let path = dir.0.join("0.log");
        write_sample(&path);
        let limit = |n, timestamps| LogOptions {
            limit_bytes: Some(n),
            timestamps,
            ..LogOptions::default()
        };
        assert_eq!(read_all(&path, limit(8, false)).await, b"hello\noo");
        assert_eq!(read_all(&path, limit(1, false)).await, b"h");
        assert_eq!(
            read_all(&path, limit(30_000, false)).await,
            &sample_output()[..30_000]
        );
        let stamped = read_all(&path, limit(33, true)).await;
        assert_eq!(stamped.len(), 33);
        assert_eq!(&stamped[29..], b"Z he");
        let tailed = read_all(
            &path,
            LogOptions {
                tail_lines: Some(1),
                limit_bytes: Some(2),
                ..LogOptions::default()
            },
        )
        .await;
        assert_eq!(tailed, b"no");
    }

    #[tokio::test]
    async fn rotation_bounds_disk_use() {
        let dir = TempDir::new();
        let path = dir.0.join("0.log");
        let limits = LogLimits {
            max_file_bytes: 4096,
            max_files: 3,
        };
        let writer = LogWriter::create(&path, limits).unwrap();
        // Far more than 100 MiB against 10 MiB files: hundreds of 4 KiB files.
        let mut i = 0u64;
        while writer.bytes_written() < 1 << 20 {
            writer.write(Stream::Stdout, format!("line {i:08}\n").as_bytes());
            i += 1;
        }
        writer.close();
        let mut files = 0;
        let mut total = 0;
        let rotated = fs::read_dir(rotated_dir(&path)).unwrap();
        let all = rotated.map(|e| e.unwrap().path()).chain([path.clone()]);
        for file in all {
            let meta = fs::metadata(file).unwrap();
            assert!(meta.len() <= limits.max_file_bytes, "{}", meta.len());
            files += 1;
            total += meta.len();
        }
        assert!(files <= limits.max_files, "{files} files");
        assert!(total <= limits.max_files as u64 * limits.max_file_bytes);
        assert_eq!(list_rotated(&path).unwrap().len(), 2);

        // What is left reads back as the newest lines, in order.
        let out = String::from_utf8(read_all(&path, LogOptions::default()).await).unwrap();
        let numbers: Vec<u64> = out
            .lines()
            .map(|l| l.strip_prefix("line ").unwrap().parse().unwrap())
            .collect();
        assert!(numbers.len() > 100, "{}", numbers.len());
        assert_eq!(*numbers.last().unwrap(), i - 1);
        assert!(numbers.windows(2).all(|w| w[1] == w[0] + 1));

        // A tail reaching back into the rotated files.
        let tail = numbers.len() as u64 - 10;
        let out = String::from_utf8(
            read_all(
                &path,
                LogOptions {
                    tail_lines: Some(tail),
                    ..LogOptions::default()
                },
            )
            .await,
        )
        .unwrap();
        let tailed: Vec<&str> = out.lines().collect();
        assert_eq!(tailed.len() as u64, tail);
        assert_eq!(tailed[0], format!("line {:08}", numbers[10]));

        // Big chunked lines keep the bound too (a file only outgrows it by one record).
        let writer = LogWriter::create(&path, limits).unwrap();
        let big = vec![b'z'; 100 * 1024];
        for _ in 0..20 {
            writer.write(Stream::Stderr, &big);
        }
        writer.close();
        let record = (MAX_LINE_BYTES + 64) as u64;
        let sizes: Vec<u64> = fs::read_dir(&dir.0)
            .unwrap()
            .map(|e| e.unwrap().metadata().unwrap().len())
            .collect();
        assert!(sizes.len() <= 3);
        assert!(
            sizes
                .iter()
                .all(|&s| s <= limits.max_file_bytes.max(record))
        );
    }

    #[tokio::test]
    async fn follow_sees_appends_and_rotation_then_ends() {
        let dir = TempDir::new();
        let path = dir.0.join("0.log");
        let limits = LogLimits {
            max_file_bytes: 2048,
            max_files: 1000,
        };
        let writer = Arc::new(LogWriter::create(&path, limits).unwrap());
        writer.write(Stream::Stdout, b"before\n");
        let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
        let (seen_tx, mut seen_rx) = tokio::sync::mpsc::unbounded_channel::<Bytes>();
        let reader = tokio::spawn({
            let path = path.clone();
            async move {
                let options = LogOptions {
                    follow: true,
                    ..LogOptions::default()
                };
                let mut stream = Box::pin(read(&path, options, async {
                    let _ = done_rx.await;
                }));
                let mut out = Vec::new();
                while let Some(chunk) = stream.next().await {
                    let chunk = chunk.unwrap();
                    out.extend_from_slice(&chunk);
                    let _ = seen_tx.send(chunk);
                }
                out
            }
        });
        // The reader is following: it sees the first line without any close.
        let first = tokio::time::timeout(Duration::from_secs(5), seen_rx.recv())
            .await
            .expect("follower saw the first line")
            .unwrap();
        assert_eq!(&first[..], b"before\n");

        let mut expected = b"before\n".to_vec();
        for i in 0..400 {
            let line = format!("follow line {i}\n");
            writer.write(Stream::Stdout, line.as_bytes());
            expected.extend_from_slice(line.as_bytes());
            if i % 40 == 0 {
                tokio::time::sleep(Duration::from_millis(30)).await;
            }
        }
        writer.write(Stream::Stdout, b"the end");
        expected.extend_from_slice(b"the end");
        writer.close();
        assert!(
            list_rotated(&path).unwrap().len() > 3,
            "no rotation happened"
        );

        // Still running until `done`.
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(!reader.is_finished());
        done_tx.send(()).unwrap();
        let out = tokio::time::timeout(Duration::from_secs(10), reader)
            .await
            .expect("reader ended after done")
            .unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            String::from_utf8(expected).unwrap()
        );
    }

    #[tokio::test]
    async fn follow_with_tail() {
        let dir = TempDir::new();
        let path = dir.0.join("0.log");
        let writer = LogWriter::create(&path, LogLimits::default()).unwrap();
        writer.write(Stream::Stdout, b"a\nb\nc\n");
        writer.close();
        let writer = LogWriter::create(&path, LogLimits::default()).unwrap();
        let options = LogOptions {
            follow: true,
            tail_lines: Some(1),
            ..LogOptions::default()
        };
        let out = follow_while(&path, options, || {
            writer.write(Stream::Stderr, b"d\n");
            writer.write(Stream::Stdout, b"e\n");
            writer.close();
        })
        .await;
        assert_eq!(&out[..], b"c\nd\ne\n");
    }

    /// Follows the log at `path` while `write` runs (50 ms after the reader began), then
    /// ends the follow and returns everything read.
    async fn follow_while(path: &Path, options: LogOptions, write: impl FnOnce()) -> Vec<u8> {
        let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
        let reader = tokio::spawn(
            read(path, options, async move {
                let _ = done_rx.await;
            })
            .map(|chunk| chunk.unwrap().to_vec())
            .concat(),
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
        write();
        done_tx.send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(10), reader)
            .await
            .unwrap()
            .unwrap()
    }

    #[tokio::test]
    async fn short_attempts_go_to_the_bundle_and_read_back() {
        let dir = TempDir::new();
        let bundle = Arc::new(LogBundle::open(&dir.0, |_| true));
        let short = dir.0.join("ns_short_u1_c_0.log");
        let writer = LogWriter::create(&short, LogLimits::default())
            .unwrap()
            .with_bundle(bundle.clone());
        writer.write(Stream::Stdout, b"quick\n");
        writer.close();
        assert!(!short.exists(), "a short attempt makes no file");
        assert_eq!(bundle.len(), 1);

        // A follower that started before the output still gets it once the attempt ends.
        let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
        let follow = LogOptions {
            follow: true,
            ..LogOptions::default()
        };
        let other = dir.0.join("ns_other_u2_c_0.log");
        let reader = tokio::spawn(
            read_bundled(
                &other,
                follow,
                async move {
                    let _ = done_rx.await;
                },
                Some(bundle.clone()),
            )
            .map(|chunk| chunk.unwrap().to_vec())
            .concat(),
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
        let writer = LogWriter::create(&other, LogLimits::default())
            .unwrap()
            .with_bundle(bundle.clone());
        writer.write(Stream::Stderr, b"late\n");
        writer.close();
        done_tx.send(()).unwrap();
        let out = tokio::time::timeout(Duration::from_secs(10), reader)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(&out[..], b"late\n");

        let plain = read_bundled(
            &short,
            LogOptions::default(),
            async {},
            Some(bundle.clone()),
        )
        .map(|chunk| chunk.unwrap().to_vec())
        .concat()
        .await;
        assert_eq!(&plain[..], b"quick\n");
        assert!(bundle.is_empty());

        // Output still coming after the first flush goes to the attempt's own file.
        let long = dir.0.join("ns_long_u3_c_0.log");
        let writer = LogWriter::create(&long, LogLimits::default())
            .unwrap()
            .with_bundle(bundle.clone());
        writer.write(Stream::Stdout, b"slow\n");
        tokio::time::sleep(FLUSH_DELAY * 4).await;
        writer.close();
        assert!(long.exists());
        assert!(bundle.is_empty());
    }

    #[tokio::test]
    async fn a_missing_log_is_no_output_yet() {
        let dir = TempDir::new();
        let mut stream = Box::pin(read(&dir.0.join("7.log"), LogOptions::default(), async {}));
        assert!(stream.next().await.is_none());
    }

    #[tokio::test]
    async fn silent_writers_leave_no_file_and_followers_wait_for_one() {
        let dir = TempDir::new();
        let path = dir.0.join("ns_pod_uid/app/0.log");
        let silent = LogWriter::create(&path, LogLimits::default()).unwrap();
        silent.close();
        assert!(!dir.0.join("ns_pod_uid").exists());

        let follow = LogOptions {
            follow: true,
            ..LogOptions::default()
        };
        let out = follow_while(&path, follow, || {
            let writer = LogWriter::create(&path, LogLimits::default()).unwrap();
            writer.write(Stream::Stdout, b"late\n");
            writer.close();
        })
        .await;
        assert_eq!(&out[..], b"late\n");
    }

    #[test]
    fn parse_line_table() {
        type Want = Option<(&'static str, Stream, bool, &'static str)>;
        let cases: [(&str, Want); 17] = [
            (
                "2016-10-06T00:17:09.669794202Z stdout P log content 1\n",
                Some((
                    "2016-10-06T00:17:09.669794202Z",
                    Stream::Stdout,
                    true,
                    "log content 1",
                )),
            ),
            (
                "2016-10-06T00:17:09.669794203Z stderr F log content 2",
                Some((
                    "2016-10-06T00:17:09.669794203Z",
                    Stream::Stderr,
                    false,
                    "log content 2",
                )),
            ),
            (
                "2016-10-06T08:17:09.5+08:00 stdout F:x  two  spaces \n",
                Some((
                    "2016-10-06T00:17:09.5Z",
                    Stream::Stdout,
                    false,
                    " two  spaces ",
                )),
            ),
            (
                "2016-10-06T00:17:09Z stdout F \n",
                Some(("2016-10-06T00:17:09Z", Stream::Stdout, false, "")),
            ),
            ("", None),
            ("\n", None),
            ("garbage\n", None),
            ("2016-10-06T00:17:09Z\n", None),
            ("2016-10-06T00:17:09Z stdout\n", None),
            ("2016-10-06T00:17:09Z stdout F\n", None),
            ("2016-10-06 00:17:09Z stdout F x\n", None),
            ("yesterday stdout F x\n", None),
            ("2016-10-06T00:17:09Z stdin F x\n", None),
            ("2016-10-06T00:17:09Z stdout X x\n", None),
            ("2016-10-06T00:17:09Z stdout  x\n", None),
            (
                "{\"log\":\"x\\n\",\"stream\":\"stdout\",\"time\":\"2016-10-06T00:17:09Z\"}\n",
                None,
            ),
            ("2016-13-06T00:17:09Z stdout F x\n", None),
        ];
        for (line, want) in cases {
            let got = parse_line(line.as_bytes());
            let want = want.map(|(ts, stream, partial, content)| {
                let ts = DateTime::parse_from_rfc3339(ts).unwrap();
                (ts, stream, partial, content.as_bytes())
            });
            assert_eq!(got, want, "{line:?}");
        }
        // Not UTF-8 where a timestamp should be.
        assert_eq!(parse_line(b"\xff\xfe stdout F x\n"), None);
        // Content is bytes, not text.
        let (_, _, _, content) = parse_line(b"2016-10-06T00:17:09Z stdout F \xff\n").unwrap();
        assert_eq!(content, b"\xff");
    }
}
