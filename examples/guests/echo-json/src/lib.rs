//! `echo-json`: answers a JSON request with a JSON description of it (method, path, headers
//! and the parsed body). A body that is not JSON gets 400 with the parser's message.
//! Built for `wasm32-wasip2` as a `wasi:http/proxy` component.

#[path = "../../http-common.rs"]
mod common;

use serde_json::{Map, Value, json};
use wasip2::http::types::{IncomingRequest, Method, ResponseOutparam};

/// Largest body read, in bytes.
const MAX_BODY: usize = 1 << 20;

struct Echo;

impl wasip2::exports::http::incoming_handler::Guest for Echo {
    fn handle(request: IncomingRequest, out: ResponseOutparam) {
        let json_headers = [("content-type", "application/json")];
        let method = match request.method() {
            Method::Get => "GET".to_string(),
            Method::Post => "POST".to_string(),
            Method::Put => "PUT".to_string(),
            Method::Delete => "DELETE".to_string(),
            Method::Patch => "PATCH".to_string(),
            Method::Head => "HEAD".to_string(),
            Method::Options => "OPTIONS".to_string(),
            Method::Connect => "CONNECT".to_string(),
            Method::Trace => "TRACE".to_string(),
            Method::Other(other) => other,
        };
        let mut headers = Map::new();
        for (name, value) in request.headers().entries() {
            headers.insert(name, Value::String(String::from_utf8_lossy(&value).into_owned()));
        }
        let path = request.path_with_query().unwrap_or_default();
        let Some(raw) = common::read_body(&request, MAX_BODY) else {
            let error = json!({"error": format!("the body is larger than {MAX_BODY} bytes")});
            return common::respond(out, 413, &json_headers, error.to_string().as_bytes());
        };
        let body = if raw.is_empty() {
            Value::Null
        } else {
            match serde_json::from_slice::<Value>(&raw) {
                Ok(value) => value,
                Err(e) => {
                    let error = json!({"error": format!("the body is not JSON: {e}")});
                    return common::respond(out, 400, &json_headers, error.to_string().as_bytes());
                }
            }
        };
        let reply = json!({"method": method, "path": path, "headers": headers, "body": body});
        common::respond(out, 200, &json_headers, reply.to_string().as_bytes());
    }
}

wasip2::http::proxy::export!(Echo);
