//! `http-lab`: an HTTP function that misbehaves on request, to show what skiff does with a
//! hostile tenant (and to test it). Paths:
//!
//! * `/` answers `ok <HOSTNAME>`;
//! * `/spin` loops forever (stopped by the request timeout: 504);
//! * `/alloc` allocates until refused (stopped by the memory limit: 500);
//! * `/panic` panics (a trap: 500);
//! * `/sleep?ms=N` sleeps N milliseconds, then answers;
//! * `/read?path=P` answers the contents of file P (whatever the pod's volumes let it see);
//! * `/env?name=N` answers environment variable N;
//! * `/fetch?url=U` makes an outgoing GET to U and answers its status (or the refusal).

#[path = "../../http-common.rs"]
mod common;

use wasip2::http::outgoing_handler;
use wasip2::http::types::{Fields, IncomingRequest, OutgoingRequest, ResponseOutparam, Scheme};

struct Lab;

/// The percent-decoded value of `key` in the query string.
fn query(path: &str, key: &str) -> Option<String> {
    let (_, q) = path.split_once('?')?;
    let raw = q.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == key).then_some(v)
    })?;
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                    (Some(h), Some(l)) => {
                        out.push((h * 16 + l) as u8);
                        i += 3;
                        continue;
                    }
                    _ => out.push(b'%'),
                }
            }
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

fn fetch(url: &str) -> Result<u16, String> {
    let (scheme, rest) = match url.split_once("://") {
        Some(("https", rest)) => (Scheme::Https, rest),
        Some(("http", rest)) => (Scheme::Http, rest),
        _ => return Err(format!("not an http(s) URL: {url}")),
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let request = OutgoingRequest::new(Fields::new());
    request.set_scheme(Some(&scheme)).map_err(|()| "bad scheme")?;
    request.set_authority(Some(authority)).map_err(|()| "bad authority")?;
    request.set_path_with_query(Some(path)).map_err(|()| "bad path")?;
    let pending = outgoing_handler::handle(request, None).map_err(|e| format!("{e:?}"))?;
    pending.subscribe().block();
    match pending.get() {
        Some(Ok(Ok(response))) => Ok(response.status()),
        Some(Ok(Err(e))) => Err(format!("{e:?}")),
        other => Err(format!("no response: {other:?}")),
    }
}

impl wasip2::exports::http::incoming_handler::Guest for Lab {
    fn handle(request: IncomingRequest, out: ResponseOutparam) {
        let text = [("content-type", "text/plain")];
        let full = request.path_with_query().unwrap_or_else(|| "/".into());
        let path = full.split('?').next().unwrap_or("/");
        match path {
            "/spin" => {
                let mut x: u64 = 0;
                loop {
                    x = std::hint::black_box(x.wrapping_add(1));
                }
            }
            "/alloc" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![1u8; 1 << 20]);
                }
            }
            "/panic" => panic!("http-lab was asked to panic"),
            "/sleep" => {
                let ms: u64 = query(&full, "ms").and_then(|v| v.parse().ok()).unwrap_or(100);
                std::thread::sleep(std::time::Duration::from_millis(ms));
                common::respond(out, 200, &text, format!("slept {ms} ms\n").as_bytes());
            }
            "/read" => {
                let file = query(&full, "path").unwrap_or_else(|| "/".into());
                match std::fs::read(&file) {
                    Ok(bytes) => common::respond(out, 200, &text, &bytes),
                    Err(e) => common::respond(out, 404, &text, format!("{file}: {e}\n").as_bytes()),
                }
            }
            "/env" => {
                let name = query(&full, "name").unwrap_or_else(|| "HOSTNAME".into());
                let value = std::env::var(&name).unwrap_or_default();
                common::respond(out, 200, &text, value.as_bytes());
            }
            "/fetch" => match fetch(&query(&full, "url").unwrap_or_default()) {
                Ok(status) => common::respond(out, 200, &text, format!("{status}\n").as_bytes()),
                Err(e) => common::respond(out, 502, &text, format!("refused: {e}\n").as_bytes()),
            },
            _ => {
                let who = std::env::var("HOSTNAME").unwrap_or_default();
                common::respond(out, 200, &text, format!("ok {who}\n").as_bytes());
            }
        }
    }
}

wasip2::http::proxy::export!(Lab);
