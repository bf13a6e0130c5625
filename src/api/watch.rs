//! `?watch=true`: a chunked stream of `{"type": ..., "object": ...}` lines.
//!
//! Selectors are applied per event against both the new and the previous object, so an object
//! that stops matching is reported as DELETED and one that starts matching as ADDED, as
//! Kubernetes' watch cache does.

use std::convert::Infallible;
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use chrono::Utc;
use futures::StreamExt;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use super::AppState;
use super::codec::Accept;
use super::error::{ApiError, Reason};
use super::handlers::Params;
use super::resources::Resource;
use super::table;
use crate::store::{EventType, StoreError};

/// How often an idle watch that asked for bookmarks gets one.
const BOOKMARK_EVERY: Duration = Duration::from_secs(15);
/// The longest a watch stays open without `timeoutSeconds` (Kubernetes picks 30–60 min).
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1800);

/// How an event looks to a watcher with selectors.
pub fn classify(
    kind: EventType,
    now_matches: bool,
    before_matched: Option<bool>,
) -> Option<&'static str> {
    match (kind, now_matches, before_matched) {
        (EventType::Deleted, _, Some(true)) => Some("DELETED"),
        (EventType::Deleted, _, _) => None,
        (EventType::Added, true, _) => Some("ADDED"),
        (EventType::Added, false, _) => None,
        (EventType::Modified, true, Some(true)) => Some("MODIFIED"),
        (EventType::Modified, true, _) => Some("ADDED"),
        (EventType::Modified, false, Some(true)) => Some("DELETED"),
        (EventType::Modified, false, _) => None,
    }
}

struct Framer {
    resource: &'static Resource,
    accept: Accept,
    include_object: String,
}

impl Framer {
    fn frame(&self, kind: &str, object: &Value) -> Bytes {
        let object = if self.accept == Accept::Table && kind != "BOOKMARK" && kind != "ERROR" {
            let rv = object
                .pointer("/metadata/resourceVersion")
                .and_then(Value::as_str)
                .unwrap_or_default();
            table::table(
                self.resource.group,
                self.resource.kind,
                std::slice::from_ref(object),
                rv,
                None,
                &self.include_object,
                Utc::now(),
            )
        } else {
            object.clone()
        };
        let mut line = json!({"type": kind, "object": object}).to_string();
        line.push('\n');
        Bytes::from(line)
    }

    fn bookmark(&self, revision: i64, initial_end: bool) -> Bytes {
        let mut metadata = json!({"resourceVersion": revision.to_string()});
        if initial_end {
            metadata["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        let object = json!({
            "kind": self.resource.kind,
            "apiVersion": self.resource.api_version(),
            "metadata": metadata,
        });
        self.frame("BOOKMARK", &object)
    }
}

/// Serves a watch on a collection.
pub async fn serve(
    state: &AppState,
    resource: &'static Resource,
    namespace: Option<&str>,
    params: &Params,
    accept: Accept,
) -> Result<Response, ApiError> {
    let (labels, fields) = super::handlers::selectors(resource, params)?;
    let bookmarks = params
        .get("allowWatchBookmarks")
        .is_some_and(|v| v == "true");
    let send_initial = params.get("sendInitialEvents").is_some_and(|v| v == "true");
    let timeout = params
        .get("timeoutSeconds")
        .and_then(|t| t.parse::<u64>().ok())
        .map(Duration::from_secs)
        .unwrap_or(DEFAULT_TIMEOUT);
    let rv = params
        .get("resourceVersion")
        .map(String::as_str)
        .unwrap_or("");
    let namespace = namespace.filter(|_| resource.namespaced);
    let framer = Framer {
        resource,
        accept,
        include_object: params
            .get("includeObject")
            .cloned()
            .unwrap_or_else(|| "Metadata".to_string()),
    };

    // Start from the current state (synthetic ADDED events) or from a revision.
    let mut initial = Vec::new();
    let since = if rv.is_empty() || rv == "0" || send_initial {
        let listed = state
            .objects
            .list(resource, namespace, &labels, &fields, None, None)
            .await?;
        for object in &listed.items {
            initial.push(framer.frame("ADDED", object));
        }
        if send_initial && bookmarks {
            initial.push(framer.bookmark(listed.revision, true));
        }
        listed.revision
    } else {
        rv.parse::<i64>()
            .map_err(|_| ApiError::bad_request(format!("invalid resourceVersion {rv:?}")))?
    };

    let (tx, rx) = mpsc::channel::<Result<Bytes, Infallible>>(256);
    let store = state.objects.store();
    match store.watch(&resource.store_key(), namespace, since) {
        Err(StoreError::Compacted {
            requested,
            compacted,
        }) => {
            let status = ApiError::new(
                Reason::Expired,
                format!("too old resource version: {requested} ({compacted})"),
            )
            .status();
            let _ = tx.try_send(Ok(framer.frame("ERROR", &status)));
        }
        Err(other) => return Err(other.into()),
        Ok(mut events) => {
            tokio::spawn(async move {
                for frame in initial {
                    if tx.send(Ok(frame)).await.is_err() {
                        return;
                    }
                }
                let deadline = tokio::time::sleep(timeout);
                tokio::pin!(deadline);
                let mut ticker = tokio::time::interval(BOOKMARK_EVERY);
                ticker.tick().await;
                loop {
                    tokio::select! {
                        _ = &mut deadline => return,
                        _ = tx.closed() => return,
                        _ = ticker.tick(), if bookmarks => {
                            if let Some(revision) = events.progress()
                                && tx.send(Ok(framer.bookmark(revision, false))).await.is_err() {
                                    return;
                                }
                        }
                        next = events.next() => {
                            let Some(next) = next else { return };
                            let frame = match next {
                                Ok(event) => {
                                    let now = labels.matches(&event.object) && fields.matches(&event.object);
                                    let before = event.prev.as_ref().map(|p| labels.matches(p) && fields.matches(p));
                                    let before = if event.kind == EventType::Deleted { Some(now) } else { before };
                                    match classify(event.kind, now, before) {
                                        Some(kind) => framer.frame(kind, &event.object),
                                        None => continue,
                                    }
                                }
                                Err(error) => {
                                    let status = ApiError::from(error).status();
                                    let _ = tx.send(Ok(framer.frame("ERROR", &status))).await;
                                    return;
                                }
                            };
                            if tx.send(Ok(frame)).await.is_err() {
                                return;
                            }
                        }
                    }
                }
            });
        }
    }
    let mut response = (StatusCode::OK, Body::from_stream(ReceiverStream::new(rx))).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, private"),
    );
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selector_transitions() {
        use EventType::*;
        assert_eq!(classify(Added, true, None), Some("ADDED"));
        assert_eq!(classify(Added, false, None), None);
        assert_eq!(classify(Modified, true, Some(true)), Some("MODIFIED"));
        assert_eq!(classify(Modified, true, Some(false)), Some("ADDED"));
        assert_eq!(classify(Modified, false, Some(true)), Some("DELETED"));
        assert_eq!(classify(Modified, false, Some(false)), None);
        assert_eq!(classify(Deleted, true, Some(true)), Some("DELETED"));
        assert_eq!(classify(Deleted, false, Some(false)), None);
    }
}
