//! The server side of one `portforward.k8s.io` SPDY connection.
//!
//! For every local connection it accepts, kubectl opens two streams with the same
//! `requestid` and `port` headers: an error stream (`streamtype: error`), which it closes for
//! writing at once and reads to its end, and a data stream (`streamtype: data`) carrying the
//! bytes both ways. Once both are open this server connects to the pod's port and copies:
//! the client's FIN half-closes the pod connection, the pod's end of stream becomes a FIN on
//! the data stream, and the error stream is then closed, after a message if the connection
//! failed. A `RST_STREAM` on either stream abandons the pair.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use futures::future::BoxFuture;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, watch};

use super::spdy::{self, FLAG_FIN, Frame, HeaderDecoder, HeaderEncoder};
use crate::gateway::PodStream;

/// Opens a connection to the pod's port, or says why it cannot.
pub type Connect = Arc<dyn Fn(u16) -> BoxFuture<'static, Result<PodStream, String>> + Send + Sync>;

/// The largest data frame this server sends.
const CHUNK: usize = 32 * 1024;

/// What the writer task puts on the connection.
enum Out {
    /// An encoded frame.
    Frame(BytesMut),
    /// A `SYN_REPLY`, encoded by the writer (it owns the header compressor).
    Reply(u32),
}

/// The half of a pair seen first.
#[derive(Default)]
struct Pending {
    port: Option<u16>,
    error: Option<u32>,
    data: Option<(u32, mpsc::Receiver<Bytes>)>,
    reset: Option<Arc<watch::Sender<bool>>>,
}

/// A stream the client opened.
struct Open {
    /// Where its data goes (data streams, until the client's FIN).
    inbound: Option<mpsc::Sender<Bytes>>,
    /// Tells the pair's copier that the client abandoned it.
    reset: Arc<watch::Sender<bool>>,
}

/// Serves one upgraded connection until the client goes away.
pub async fn serve<IO>(io: IO, connect: Connect)
where
    IO: AsyncRead + AsyncWrite + Send + 'static,
{
    let (mut reader, writer) = tokio::io::split(io);
    let (out, out_rx) = mpsc::channel::<Out>(64);
    let writing = tokio::spawn(write_frames(writer, out_rx));
    let (closed, closed_rx) = watch::channel(false);
    let (done, mut done_rx) = mpsc::unbounded_channel::<[u32; 2]>();
    let mut decoder = HeaderDecoder::new();
    let mut streams: HashMap<u32, Open> = HashMap::new();
    let mut pending: HashMap<String, Pending> = HashMap::new();
    let mut buffer = BytesMut::with_capacity(64 * 1024);
    'session: loop {
        loop {
            let frame = match spdy::parse(&mut buffer) {
                Ok(Some(frame)) => frame,
                Ok(None) => break,
                Err(e) => {
                    tracing::debug!("port-forward: {e}");
                    let _ = out.send(Out::Frame(spdy::go_away(0))).await;
                    break 'session;
                }
            };
            match frame {
                Frame::SynStream {
                    stream,
                    flags,
                    headers,
                } => {
                    let headers = match decoder.decode(&headers) {
                        Ok(headers) => headers,
                        Err(e) => {
                            // The compression state is lost with it: nothing after can be read.
                            tracing::debug!("port-forward: {e}");
                            let _ = out.send(Out::Frame(spdy::go_away(0))).await;
                            break 'session;
                        }
                    };
                    let first = |name: &str| headers.get(name).and_then(|v| v.first()).cloned();
                    let kind = first("streamtype").unwrap_or_default();
                    let port = first("port").and_then(|p| p.parse::<u16>().ok());
                    if !matches!(kind.as_str(), "data" | "error") || port.is_none() {
                        let _ = out
                            .send(Out::Frame(spdy::rst_stream(stream, spdy::PROTOCOL_ERROR)))
                            .await;
                        continue;
                    }
                    // Clients older than request ids open the error stream, then the data
                    // stream, with consecutive ids.
                    let key = first("requestid").unwrap_or_else(|| {
                        let error_id = if kind == "data" {
                            stream.saturating_sub(2)
                        } else {
                            stream
                        };
                        format!("#{error_id}")
                    });
                    let _ = out.send(Out::Reply(stream)).await;
                    let half = pending.entry(key.clone()).or_default();
                    let reset = half
                        .reset
                        .get_or_insert_with(|| Arc::new(watch::channel(false).0))
                        .clone();
                    half.port = half.port.or(port);
                    let mut inbound = None;
                    if kind == "data" {
                        let (tx, rx) = mpsc::channel(16);
                        if flags & FLAG_FIN == 0 {
                            inbound = Some(tx);
                        }
                        half.data = Some((stream, rx));
                    } else {
                        half.error = Some(stream);
                    }
                    streams.insert(stream, Open { inbound, reset });
                    if half.error.is_some() && half.data.is_some() {
                        let Some(Pending {
                            port: Some(port),
                            error: Some(error_id),
                            data: Some((data_id, inbound)),
                            reset: Some(reset),
                        }) = pending.remove(&key)
                        else {
                            continue;
                        };
                        tokio::spawn(forward(Pair {
                            port,
                            error_id,
                            data_id,
                            inbound,
                            reset: reset.subscribe(),
                            closed: closed_rx.clone(),
                            out: out.clone(),
                            done: done.clone(),
                            connect: connect.clone(),
                        }));
                    }
                }
                Frame::Data {
                    stream,
                    flags,
                    data,
                } => {
                    let Some(open) = streams.get_mut(&stream) else {
                        continue;
                    };
                    if !data.is_empty()
                        && let Some(inbound) = &open.inbound
                        && inbound.send(data).await.is_err()
                    {
                        open.inbound = None;
                    }
                    if flags & FLAG_FIN != 0 {
                        open.inbound = None;
                    }
                }
                Frame::RstStream { stream, .. } => {
                    if let Some(open) = streams.remove(&stream) {
                        let _ = open.reset.send(true);
                    }
                }
                Frame::Ping(id) => {
                    let _ = out.send(Out::Frame(spdy::ping(id))).await;
                }
                Frame::GoAway => break 'session,
                Frame::Other(_) => {}
            }
        }
        tokio::select! {
            read = reader.read_buf(&mut buffer) => match read {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            },
            Some(ids) = done_rx.recv() => {
                for id in ids {
                    streams.remove(&id);
                }
            }
        }
    }
    let _ = closed.send(true);
    drop(streams);
    drop(out);
    let _ = writing.await;
}

/// Writes frames as they come, flushing when none is waiting.
async fn write_frames<W: AsyncWrite + Unpin>(writer: W, mut frames: mpsc::Receiver<Out>) {
    let mut writer = tokio::io::BufWriter::new(writer);
    let mut encoder = HeaderEncoder::default();
    while let Some(first) = frames.recv().await {
        let mut next = Some(first);
        while let Some(out) = next {
            let bytes = match out {
                Out::Frame(bytes) => bytes,
                Out::Reply(stream) => spdy::syn_reply(&mut encoder, stream),
            };
            if writer.write_all(&bytes).await.is_err() {
                return;
            }
            next = frames.try_recv().ok();
        }
        if writer.flush().await.is_err() {
            return;
        }
    }
    let _ = writer.shutdown().await;
}

/// One forwarded connection: its two streams and what it needs to copy.
struct Pair {
    port: u16,
    error_id: u32,
    data_id: u32,
    inbound: mpsc::Receiver<Bytes>,
    reset: watch::Receiver<bool>,
    closed: watch::Receiver<bool>,
    out: mpsc::Sender<Out>,
    done: mpsc::UnboundedSender<[u32; 2]>,
    connect: Connect,
}

/// Connects to the pod's port and copies both ways until the pod closes, the client resets
/// the pair, or the session ends.
async fn forward(pair: Pair) {
    let Pair {
        port,
        error_id,
        data_id,
        mut inbound,
        mut reset,
        mut closed,
        out,
        done,
        connect,
    } = pair;
    let send = |frame: BytesMut| {
        let out = out.clone();
        async move { out.send(Out::Frame(frame)).await.is_ok() }
    };
    let failure = match connect(port).await {
        Err(message) => {
            send(spdy::data(data_id, FLAG_FIN, &[])).await;
            Some(message)
        }
        Ok(backend) => {
            let (mut from_pod, mut to_pod) = tokio::io::split(backend);
            let upstream = async {
                while let Some(chunk) = inbound.recv().await {
                    if to_pod.write_all(&chunk).await.is_err() {
                        break;
                    }
                }
                let _ = to_pod.shutdown().await;
                std::future::pending::<()>().await
            };
            let downstream = async {
                let mut buffer = vec![0u8; CHUNK];
                loop {
                    match from_pod.read(&mut buffer).await {
                        Ok(0) => {
                            send(spdy::data(data_id, FLAG_FIN, &[])).await;
                            return None;
                        }
                        Ok(n) => {
                            if !send(spdy::data(data_id, 0, &buffer[..n])).await {
                                return None;
                            }
                        }
                        Err(e) => {
                            send(spdy::data(data_id, FLAG_FIN, &[])).await;
                            return Some(format!("reading from port {port}: {e}"));
                        }
                    }
                }
            };
            tokio::select! {
                failure = downstream => failure,
                _ = upstream => None,
                _ = reset.wait_for(|r| *r) => None,
                _ = closed.wait_for(|c| *c) => None,
            }
        }
    };
    if let Some(message) = failure {
        send(spdy::data(error_id, 0, message.as_bytes())).await;
    }
    send(spdy::data(error_id, FLAG_FIN, &[])).await;
    let _ = done.send([error_id, data_id]);
}
