//! Port forwarding over the kubelet's WebSocket channel protocol (`v4.channel.k8s.io`,
//! `v4.base64.channel.k8s.io`, `channel.k8s.io`): what the official Python client's
//! `portforward` speaks.
//!
//! The ports come from the `ports` query. Port `i` owns channels `2i` (data, both ways) and
//! `2i + 1` (errors, to the client). Every message starts with its channel: a byte in the
//! binary protocols, an ASCII digit in the base64 one (whose payload is base64). The first
//! message on each channel is the port number as a little-endian u16. Each port gets one
//! connection to the pod, opened when the WebSocket is; the WebSocket closes when every
//! port's connection has ended.

use std::collections::HashMap;

use axum::extract::ws::{Message, WebSocket};
use base64::Engine;
use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt, WriteHalf};
use tokio::sync::mpsc;

use super::session::Connect;
use crate::gateway::PodStream;

/// The binary channel protocol of Kubernetes 1.4 and later.
pub const V4_BINARY: &str = "v4.channel.k8s.io";
/// The same, with base64 text messages.
pub const V4_BASE64: &str = "v4.base64.channel.k8s.io";
/// The original binary channel protocol.
pub const BINARY: &str = "channel.k8s.io";

/// What goes to the writer of the WebSocket.
enum Outgoing {
    /// A message for the client.
    Send(Message),
    /// A port's connection to the pod ended.
    Ended,
}

/// Tasks aborted when this is dropped.
struct AbortOnDrop(Vec<tokio::task::JoinHandle<()>>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        for task in &self.0 {
            task.abort();
        }
    }
}

/// Parses the `ports` query parameters (each possibly a comma list) (pure).
///
/// # Errors
///
/// When a port is not a number from 1 to 65535, or none is given.
pub fn ports(query: Option<&str>) -> Result<Vec<u16>, String> {
    let mut ports = Vec::new();
    for (key, value) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        if key != "ports" {
            continue;
        }
        for text in value.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            match text.parse::<u16>() {
                Ok(port) if port > 0 => ports.push(port),
                _ => return Err(format!("invalid port {text:?}")),
            }
        }
    }
    if ports.is_empty() {
        return Err("query parameter \"ports\" is required".to_string());
    }
    Ok(ports)
}

/// Frames `data` for `channel` (pure).
pub fn message(channel: u8, data: &[u8], base64: bool) -> Message {
    if base64 {
        let mut text = String::with_capacity(1 + data.len() * 4 / 3 + 4);
        text.push(char::from(b'0' + channel));
        base64::engine::general_purpose::STANDARD.encode_string(data, &mut text);
        Message::Text(text.into())
    } else {
        let mut bytes = Vec::with_capacity(1 + data.len());
        bytes.push(channel);
        bytes.extend_from_slice(data);
        Message::Binary(bytes.into())
    }
}

/// Splits a client message into its channel and payload (pure); `None` for control
/// messages and ones without a channel.
pub fn unframe(message: Message, base64: bool) -> Option<(u8, Bytes)> {
    match message {
        Message::Binary(bytes) if !base64 && !bytes.is_empty() => {
            Some((bytes[0], bytes.slice(1..)))
        }
        Message::Text(text) if base64 && !text.is_empty() => {
            let channel = text.as_bytes()[0].checked_sub(b'0')?;
            let data = base64::engine::general_purpose::STANDARD
                .decode(&text.as_bytes()[1..])
                .ok()?;
            Some((channel, data.into()))
        }
        _ => None,
    }
}

/// Serves one WebSocket forwarding `ports`.
pub async fn serve(socket: WebSocket, ports: Vec<u16>, base64: bool, connect: Connect) {
    let (mut to_client, mut from_client) = socket.split();
    let (out, mut out_rx) = mpsc::channel::<Outgoing>(64);
    let mut writers: HashMap<u8, WriteHalf<PodStream>> = HashMap::new();
    let mut open = 0usize;
    // The readers of the pod connections end with the socket, whichever way it goes.
    let mut readers = AbortOnDrop(Vec::new());
    for (i, port) in ports.into_iter().enumerate() {
        let Ok(data) = u8::try_from(2 * i) else {
            break;
        };
        let error = data + 1;
        for channel in [data, error] {
            let _ = out
                .send(Outgoing::Send(message(
                    channel,
                    &port.to_le_bytes(),
                    base64,
                )))
                .await;
        }
        match connect(port).await {
            Ok(stream) => {
                let (mut reader, writer) = tokio::io::split(stream);
                writers.insert(data, writer);
                open += 1;
                let out = out.clone();
                readers.0.push(tokio::spawn(async move {
                    let mut buffer = vec![0u8; 32 * 1024];
                    loop {
                        match reader.read(&mut buffer).await {
                            Ok(0) => break,
                            Ok(n) => {
                                let framed = message(data, &buffer[..n], base64);
                                if out.send(Outgoing::Send(framed)).await.is_err() {
                                    break;
                                }
                            }
                            Err(e) => {
                                let text = format!("reading from port {port}: {e}");
                                let framed = message(error, text.as_bytes(), base64);
                                let _ = out.send(Outgoing::Send(framed)).await;
                                break;
                            }
                        }
                    }
                    let _ = out.send(Outgoing::Ended).await;
                }));
            }
            Err(text) => {
                let framed = message(error, text.as_bytes(), base64);
                let _ = out.send(Outgoing::Send(framed)).await;
            }
        }
    }
    drop(out);
    while open > 0 {
        tokio::select! {
            outgoing = out_rx.recv() => match outgoing {
                Some(Outgoing::Ended) => open -= 1,
                Some(Outgoing::Send(message)) => {
                    if to_client.send(message).await.is_err() {
                        return;
                    }
                }
                None => break,
            },
            incoming = from_client.next() => match incoming {
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return,
                Some(Ok(message)) => {
                    let Some((channel, data)) = unframe(message, base64) else {
                        continue;
                    };
                    if let Some(writer) = writers.get_mut(&channel)
                        && writer.write_all(&data).await.is_err()
                    {
                        writers.remove(&channel);
                    }
                }
            },
        }
    }
    // Whatever is still queued (the last bytes and errors), then close.
    while let Ok(outgoing) = out_rx.try_recv() {
        if let Outgoing::Send(message) = outgoing {
            let _ = to_client.send(message).await;
        }
    }
    let _ = to_client.send(Message::Close(None)).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_come_from_the_query() {
        assert_eq!(ports(Some("ports=80")).unwrap(), vec![80]);
        assert_eq!(
            ports(Some("ports=80,8080&ports=9090")).unwrap(),
            vec![80, 8080, 9090]
        );
        assert!(ports(Some("ports=0")).is_err());
        assert!(ports(Some("ports=http")).is_err());
        assert!(ports(None).is_err());
        assert!(ports(Some("port=80")).is_err());
    }

    #[test]
    fn messages_carry_their_channel() {
        let binary = message(3, b"hi", false);
        assert_eq!(binary, Message::Binary(Bytes::from_static(b"\x03hi")));
        assert_eq!(unframe(binary, false), Some((3, Bytes::from_static(b"hi"))));
        let text = message(2, &[80, 0], true);
        assert_eq!(text, Message::Text("2UAA=".into()));
        assert_eq!(unframe(text, true), Some((2, Bytes::from_static(&[80, 0]))));
        assert_eq!(unframe(Message::Binary(Bytes::new()), false), None);
        assert_eq!(unframe(Message::Text("x!!".into()), true), None);
    }
}
