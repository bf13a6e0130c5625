//! `hello-http`: the smallest HTTP function. Answers every request with
//! `hello from <HOSTNAME>` (the pod's name under skiff) and the path it was asked for.
//! Built for `wasm32-wasip2` as a `wasi:http/proxy` component.

#[path = "../../http-common.rs"]
mod common;

use wasip2::http::types::{IncomingRequest, ResponseOutparam};

struct Hello;

impl wasip2::exports::http::incoming_handler::Guest for Hello {
    fn handle(request: IncomingRequest, out: ResponseOutparam) {
        let who = std::env::var("HOSTNAME").unwrap_or_else(|_| "a function".into());
        let path = request.path_with_query().unwrap_or_default();
        let body = format!("hello from {who} at {path}\n");
        common::respond(out, 200, &[("content-type", "text/plain")], body.as_bytes());
    }
}

wasip2::http::proxy::export!(Hello);
