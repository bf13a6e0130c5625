//! Request bodies in, responses out: JSON and YAML decoding, content negotiation (plain JSON,
//! YAML, or a meta.k8s.io Table), and the `Warning` header.

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;
use serde_json::{Map, Value};

use super::error::{ApiError, Reason};
use super::protobuf;

/// The largest request body accepted (Kubernetes' default is 3 MiB).
pub const MAX_BODY: usize = 3 * 1024 * 1024;

/// How much of an oversized body is read and thrown away so that the client, still sending,
/// gets the 413 instead of a broken pipe.
const DRAIN_LIMIT: usize = 64 * 1024 * 1024;
/// How long an oversized body is drained at most.
const DRAIN_TIME: std::time::Duration = std::time::Duration::from_secs(5);

/// Reads the whole body, answering 413 past [`MAX_BODY`]. The rest of an oversized body is
/// drained (up to [`DRAIN_LIMIT`] bytes or [`DRAIN_TIME`]) before answering.
pub async fn read_body(mut body: Body) -> Result<bytes::Bytes, ApiError> {
    let mut collected = bytes::BytesMut::new();
    loop {
        match body.frame().await {
            None => return Ok(collected.freeze()),
            Some(Err(e)) => {
                return Err(ApiError::bad_request(format!(
                    "reading the request body failed: {e}"
                )));
            }
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    collected.extend_from_slice(&data);
                }
                if collected.len() > MAX_BODY {
                    break;
                }
            }
        }
    }
    let mut drained = collected.len();
    let _ = tokio::time::timeout(DRAIN_TIME, async {
        while drained < DRAIN_LIMIT {
            match body.frame().await {
                Some(Ok(frame)) => drained += frame.data_ref().map_or(0, |d| d.len()),
                _ => break,
            }
        }
    })
    .await;
    Err(ApiError::new(
        Reason::RequestEntityTooLarge,
        format!("the request body is larger than the limit of {MAX_BODY} bytes"),
    ))
}

/// The media type of a request, without parameters, lower-cased.
pub fn content_type(headers: &HeaderMap) -> String {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase()
        })
        .unwrap_or_default()
}

/// Decodes a JSON, YAML or Kubernetes protobuf body (by content type; YAML when it says so or
/// when JSON fails and no type was given). An empty body is an error. `schemas` (the OpenAPI
/// `components.schemas`) names the fields of protobuf bodies.
pub fn decode(
    headers: &HeaderMap,
    bytes: &[u8],
    schemas: &Map<String, Value>,
) -> Result<Value, ApiError> {
    let ct = content_type(headers);
    if ct.contains("protobuf") {
        return protobuf::decode(bytes, schemas).map_err(|e| {
            ApiError::bad_request(format!(
                "the request body is not valid Kubernetes protobuf: {e}"
            ))
        });
    }
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request("the request body is empty"));
    }
    if ct.contains("yaml") {
        return decode_yaml(bytes);
    }
    match serde_json::from_slice(bytes) {
        Ok(v) => Ok(v),
        Err(e) if ct.is_empty() => decode_yaml(bytes).map_err(|_| json_error(e)),
        Err(e) => Err(json_error(e)),
    }
}

fn json_error(e: serde_json::Error) -> ApiError {
    ApiError::bad_request(format!("the request body is not valid JSON: {e}"))
}

/// Decodes one YAML document into JSON.
pub fn decode_yaml(bytes: &[u8]) -> Result<Value, ApiError> {
    serde_yaml::from_slice::<Value>(bytes)
        .map_err(|e| ApiError::bad_request(format!("the request body is not valid YAML: {e}")))
}

/// Splits a YAML stream into its documents, skipping empty ones; each becomes JSON.
pub fn decode_yaml_stream(bytes: &[u8]) -> Result<Vec<Value>, ApiError> {
    use serde::Deserialize;
    let mut out = Vec::new();
    for (i, doc) in serde_yaml::Deserializer::from_slice(bytes).enumerate() {
        let value = Value::deserialize(doc).map_err(|e| {
            ApiError::bad_request(format!("document {}: not valid YAML: {e}", i + 1))
        })?;
        match value {
            Value::Null => {}
            Value::Object(ref o) if o.get("kind").and_then(Value::as_str) == Some("List") => {
                out.extend(
                    o.get("items")
                        .and_then(Value::as_array)
                        .cloned()
                        .unwrap_or_default(),
                );
            }
            v => out.push(v),
        }
    }
    Ok(out)
}

/// What the client asked to get back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accept {
    /// Plain JSON.
    Json,
    /// YAML.
    Yaml,
    /// A meta.k8s.io/v1 Table.
    Table,
}

/// Reads the `Accept` header: the first acceptable entry wins.
pub fn accept(headers: &HeaderMap) -> Accept {
    let Some(accept) = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) else {
        return Accept::Json;
    };
    for entry in accept.split(',') {
        let entry = entry.trim().to_ascii_lowercase();
        let params: Vec<&str> = entry.split(';').map(str::trim).collect();
        let media = params.first().copied().unwrap_or_default();
        if params.contains(&"as=table") {
            if params.contains(&"v=v1") && params.contains(&"g=meta.k8s.io") {
                return Accept::Table;
            }
            continue;
        }
        if params.iter().any(|p| p.starts_with("as=")) {
            // Other transformations (PartialObjectMetadata...) are not offered.
            continue;
        }
        match media {
            "application/yaml" => return Accept::Yaml,
            "application/json" | "*/*" | "application/*" => return Accept::Json,
            _ => {}
        }
    }
    Accept::Json
}

/// A JSON or YAML response with optional warnings.
pub fn respond(status: StatusCode, value: &Value, accept: Accept, warnings: &[String]) -> Response {
    let (body, ct) = match accept {
        Accept::Yaml => (
            serde_yaml::to_string(value).unwrap_or_default(),
            "application/yaml",
        ),
        _ => (value.to_string(), "application/json"),
    };
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
    add_warnings(headers, warnings);
    response
}

/// Adds `Warning: 299 - "..."` headers.
pub fn add_warnings(headers: &mut HeaderMap, warnings: &[String]) {
    for w in warnings {
        let text = format!("299 - \"{}\"", w.replace('\\', "\\\\").replace('"', "\\\""));
        if let Ok(v) = HeaderValue::from_str(&text) {
            headers.append(header::WARNING, v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn kubectl_table_accept_is_recognised() {
        let h = headers(&[(
            "accept",
            "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json",
        )]);
        assert_eq!(accept(&h), Accept::Table);
        let h = headers(&[(
            "accept",
            "application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io,application/json",
        )]);
        assert_eq!(accept(&h), Accept::Json);
        assert_eq!(
            accept(&headers(&[("accept", "application/yaml")])),
            Accept::Yaml
        );
    }

    #[test]
    fn bodies_decode_as_json_or_yaml() {
        let none = Map::new();
        let json = headers(&[("content-type", "application/json")]);
        assert_eq!(decode(&json, br#"{"a":1}"#, &none).unwrap()["a"], 1);
        assert_eq!(
            decode(&json, b"a: 1", &none).unwrap_err().reason,
            Reason::BadRequest
        );
        let yaml = headers(&[("content-type", "application/yaml")]);
        assert_eq!(decode(&yaml, b"a: 1", &none).unwrap()["a"], 1);
        assert_eq!(
            decode(&HeaderMap::new(), b"a: [1", &none)
                .unwrap_err()
                .reason,
            Reason::BadRequest
        );
    }

    #[test]
    fn protobuf_bodies_decode_or_answer_bad_request() {
        let none = Map::new();
        let proto = headers(&[("content-type", "application/vnd.kubernetes.protobuf")]);
        assert_eq!(
            decode(&proto, b"x", &none).unwrap_err().reason,
            Reason::BadRequest
        );
        // k8s\0, Unknown{typeMeta{apiVersion "v1", kind "Namespace"}, raw: Namespace{metadata{name "a"}}}
        let body = b"k8s\0\x0a\x0f\x0a\x02v1\x12\x09Namespace\x12\x05\x0a\x03\x0a\x01a";
        let ns = decode(&proto, body, &none).unwrap();
        assert_eq!(
            ns,
            serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "a"}})
        );
    }

    #[test]
    fn yaml_streams_split_and_skip_empty_documents() {
        let docs =
            decode_yaml_stream(b"---\na: 1\n---\n---\nkind: List\nitems: [{b: 2}]\n").unwrap();
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[1]["b"], 2);
        assert!(decode_yaml_stream(b"a: [").is_err());
    }
}
