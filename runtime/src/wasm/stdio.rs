//! Guest standard output and error: bytes go straight to an [`OutputSink`], unbuffered.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

/// Where a guest's stdout or stderr goes.
///
/// The sandbox hands every write of the guest to [`write`](OutputSink::write) as it happens and
/// keeps no buffer of its own, so a guest that prints without end costs only what the sink
/// decides to keep. `write` is called from the task running the guest: it should be quick
/// (append to a file, a bounded channel, a ring buffer) and must not block for long.
pub trait OutputSink: Send + Sync {
    /// Takes the next bytes the guest wrote. Never called with an empty slice.
    fn write(&self, bytes: &[u8]);
    /// The guest asked for its output to be flushed.
    fn flush(&self) {}
}

/// An [`OutputSink`] that drops everything (`/dev/null`).
#[derive(Debug, Clone, Copy, Default)]
pub struct DiscardSink;

impl OutputSink for DiscardSink {
    fn write(&self, _bytes: &[u8]) {}
}

/// An [`OutputSink`] that keeps output in memory up to a byte cap and drops the rest.
///
/// Useful for tests and for capturing short outputs such as termination messages.
#[derive(Debug)]
pub struct MemorySink {
    cap: usize,
    buf: Mutex<Vec<u8>>,
    truncated: AtomicBool,
}

impl MemorySink {
    /// A sink that keeps at most `cap` bytes.
    pub fn new(cap: usize) -> Self {
        MemorySink {
            cap,
            buf: Mutex::new(Vec::new()),
            truncated: AtomicBool::new(false),
        }
    }

    /// The bytes kept so far.
    pub fn contents(&self) -> Vec<u8> {
        self.lock().clone()
    }

    /// The bytes kept so far, as (lossy) UTF-8.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.lock()).into_owned()
    }

    /// Whether bytes were dropped because the cap was reached.
    pub fn truncated(&self) -> bool {
        self.truncated.load(Ordering::Relaxed)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<u8>> {
        // A panic while holding this lock cannot leave the Vec inconsistent.
        self.buf
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl OutputSink for MemorySink {
    fn write(&self, bytes: &[u8]) {
        let mut buf = self.lock();
        let room = self.cap.saturating_sub(buf.len());
        if bytes.len() > room {
            self.truncated.store(true, Ordering::Relaxed);
        }
        buf.extend_from_slice(&bytes[..bytes.len().min(room)]);
    }
}

/// How many bytes the guest may hand over in one write. The sink takes everything
/// synchronously, so this only bounds the host copy made per write call.
const WRITE_PERMIT: usize = 64 * 1024;

/// Adapts an [`OutputSink`] to wasmtime-wasi's stdout/stderr stream traits (both the preview 2
/// stream used by preview 1 and preview 2 guests, and the tokio `AsyncWrite` flavour).
#[derive(Clone)]
pub(crate) struct SinkStream(pub(crate) Arc<dyn OutputSink>);

impl IsTerminal for SinkStream {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for SinkStream {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for SinkStream {
    async fn ready(&mut self) {}
}

impl OutputStream for SinkStream {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        if !bytes.is_empty() {
            self.0.write(&bytes);
        }
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        self.0.flush();
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(WRITE_PERMIT)
    }
}

impl AsyncWrite for SinkStream {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if !buf.is_empty() {
            self.0.write(buf);
        }
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.0.flush();
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_sink_caps_and_flags_truncation() {
        let sink = MemorySink::new(5);
        sink.write(b"abc");
        assert!(!sink.truncated());
        sink.write(b"defg");
        assert_eq!(sink.text(), "abcde");
        assert!(sink.truncated());
    }
}
