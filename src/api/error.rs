//! API errors, each answered as a Kubernetes `Status` object with the right code and reason.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::resources::Resource;
use super::validation::FieldError;
use crate::store::StoreError;

/// The `reason` of a failure `Status`, as Kubernetes names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// 400
    BadRequest,
    /// 401
    Unauthorized,
    /// 403
    Forbidden,
    /// 404
    NotFound,
    /// 405
    MethodNotAllowed,
    /// 406
    NotAcceptable,
    /// 409, create of an existing name.
    AlreadyExists,
    /// 409, stale resourceVersion or apply conflict.
    Conflict,
    /// 410, watch from a compacted revision.
    Expired,
    /// 410, continue token of a compacted list.
    Gone,
    /// 413
    RequestEntityTooLarge,
    /// 415
    UnsupportedMediaType,
    /// 422
    Invalid,
    /// 500
    InternalError,
    /// 503
    ServiceUnavailable,
    /// 504: the request could not be completed in time.
    Timeout,
}

impl Reason {
    /// The HTTP status code.
    pub fn code(self) -> StatusCode {
        match self {
            Reason::BadRequest => StatusCode::BAD_REQUEST,
            Reason::Unauthorized => StatusCode::UNAUTHORIZED,
            Reason::Forbidden => StatusCode::FORBIDDEN,
            Reason::NotFound => StatusCode::NOT_FOUND,
            Reason::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Reason::NotAcceptable => StatusCode::NOT_ACCEPTABLE,
            Reason::AlreadyExists | Reason::Conflict => StatusCode::CONFLICT,
            Reason::Expired | Reason::Gone => StatusCode::GONE,
            Reason::RequestEntityTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Reason::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Reason::Invalid => StatusCode::UNPROCESSABLE_ENTITY,
            Reason::InternalError => StatusCode::INTERNAL_SERVER_ERROR,
            Reason::ServiceUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            Reason::Timeout => StatusCode::GATEWAY_TIMEOUT,
        }
    }

    /// The reason string in the `Status` body.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::BadRequest => "BadRequest",
            Reason::Unauthorized => "Unauthorized",
            Reason::Forbidden => "Forbidden",
            Reason::NotFound => "NotFound",
            Reason::MethodNotAllowed => "MethodNotAllowed",
            Reason::NotAcceptable => "NotAcceptable",
            Reason::AlreadyExists => "AlreadyExists",
            Reason::Conflict => "Conflict",
            Reason::Expired => "Expired",
            Reason::Gone => "Gone",
            Reason::RequestEntityTooLarge => "RequestEntityTooLarge",
            Reason::UnsupportedMediaType => "UnsupportedMediaType",
            Reason::Timeout => "Timeout",
            Reason::Invalid => "Invalid",
            Reason::InternalError => "InternalError",
            Reason::ServiceUnavailable => "ServiceUnavailable",
        }
    }
}

/// A failed API request: the fields of the `Status` it is answered with.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    /// Reason and code.
    pub reason: Reason,
    /// Human-readable message.
    pub message: String,
    /// `details`, boxed to keep errors small on the happy path.
    details: Option<Box<Details>>,
}

/// The `details` of a `Status`.
#[derive(Debug, Clone, Default)]
pub struct Details {
    /// `details.name`.
    pub name: Option<String>,
    /// `details.group`.
    pub group: Option<String>,
    /// `details.kind` (Kubernetes puts the resource plural or the kind here).
    pub kind: Option<String>,
    /// `details.causes`: `(reason, message, field)`.
    pub causes: Vec<(String, String, String)>,
}

impl ApiError {
    /// An error with a reason and message and no details.
    pub fn new(reason: Reason, message: impl Into<String>) -> Self {
        ApiError {
            reason,
            message: message.into(),
            details: None,
        }
    }

    /// The details, created empty on first use.
    pub fn details_mut(&mut self) -> &mut Details {
        self.details.get_or_insert_with(Box::default)
    }

    /// Whether the error carries per-field causes.
    pub fn has_causes(&self) -> bool {
        self.details.as_ref().is_some_and(|d| !d.causes.is_empty())
    }

    /// Names the object (and its resource plural) in the details.
    pub fn about(mut self, resource: &Resource, name: &str) -> Self {
        let details = self.details_mut();
        details.name = Some(name.to_string());
        if !resource.group.is_empty() {
            details.group = Some(resource.group.to_string());
        }
        details.kind = Some(resource.plural.to_string());
        self
    }

    /// 400 with a message.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(Reason::BadRequest, message)
    }

    /// 404 for an object.
    pub fn not_found(resource: &Resource, name: &str) -> Self {
        Self::new(
            Reason::NotFound,
            format!("{} \"{}\" not found", resource.qualified(), name),
        )
        .about(resource, name)
    }

    /// 409 for a create of an existing name.
    pub fn already_exists(resource: &Resource, name: &str) -> Self {
        Self::new(
            Reason::AlreadyExists,
            format!("{} \"{}\" already exists", resource.qualified(), name),
        )
        .about(resource, name)
    }

    /// 409 for a write based on a stale resourceVersion (or a failed precondition).
    pub fn conflict(resource: &Resource, name: &str, why: &str) -> Self {
        Self::new(
            Reason::Conflict,
            format!(
                "Operation cannot be fulfilled on {} \"{}\": {}",
                resource.qualified(),
                name,
                why
            ),
        )
        .about(resource, name)
    }

    /// The standard stale-version conflict.
    pub fn stale(resource: &Resource, name: &str) -> Self {
        Self::conflict(
            resource,
            name,
            "the object has been modified; please apply your changes to the latest version and try again",
        )
    }

    /// 422 with field errors.
    pub fn invalid(resource: &Resource, name: &str, errors: &[FieldError]) -> Self {
        let mut error = Self::new(
            Reason::Invalid,
            super::validation::invalid_message(resource.group, resource.kind, name, errors),
        );
        let details = error.details_mut();
        details.name = Some(name.to_string());
        if !resource.group.is_empty() {
            details.group = Some(resource.group.to_string());
        }
        details.kind = Some(resource.kind.to_string());
        details.causes = errors
            .iter()
            .map(|e| {
                let full = e.to_string();
                let message = full
                    .strip_prefix(&format!("{}: ", e.field))
                    .unwrap_or(&full)
                    .to_string();
                (e.kind.reason().to_string(), message, e.field.clone())
            })
            .collect();
        error
    }

    /// 403 with a message.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(Reason::Forbidden, message)
    }

    /// 500 with a message; logged.
    pub fn internal(message: impl Into<String>) -> Self {
        let message = message.into();
        tracing::error!(%message, "internal error");
        Self::new(Reason::InternalError, message)
    }

    /// Maps a store error about one object to its API error.
    pub fn from_store(error: StoreError, resource: &Resource, name: &str) -> Self {
        match error {
            StoreError::AlreadyExists => Self::already_exists(resource, name),
            StoreError::NotFound => Self::not_found(resource, name),
            StoreError::Conflict { .. } => Self::stale(resource, name),
            other => other.into(),
        }
    }

    /// The `Status` body.
    pub fn status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason.as_str(),
            "code": self.reason.code().as_u16(),
        });
        let mut details = serde_json::Map::new();
        if let Some(d) = &self.details {
            if let Some(name) = &d.name {
                details.insert("name".into(), json!(name));
            }
            if let Some(group) = &d.group {
                details.insert("group".into(), json!(group));
            }
            if let Some(kind) = &d.kind {
                details.insert("kind".into(), json!(kind));
            }
            if !d.causes.is_empty() {
                let causes: Vec<Value> = d
                    .causes
                    .iter()
                    .map(|(reason, message, field)| {
                        json!({"reason": reason, "message": message, "field": field})
                    })
                    .collect();
                details.insert("causes".into(), Value::Array(causes));
            }
        }
        if !details.is_empty() {
            status["details"] = Value::Object(details);
        }
        status
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Compacted {
                requested,
                compacted,
            } => ApiError::new(
                Reason::Expired,
                format!("too old resource version: {requested} ({compacted})"),
            ),
            StoreError::Closed => {
                ApiError::new(Reason::ServiceUnavailable, "the server is shutting down")
            }
            other => ApiError::internal(other.to_string()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = self.status().to_string();
        let mut response = (self.reason.code(), body).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::resources::by_plural;

    #[test]
    fn not_found_matches_kubernetes() {
        let deploy = by_plural("apps", "v1", "deployments").unwrap();
        let status = ApiError::not_found(deploy, "web").status();
        assert_eq!(status["message"], "deployments.apps \"web\" not found");
        assert_eq!(status["reason"], "NotFound");
        assert_eq!(status["code"], 404);
        assert_eq!(status["details"]["group"], "apps");
        assert_eq!(status["details"]["kind"], "deployments");
    }

    #[test]
    fn stale_write_is_a_conflict() {
        let pods = by_plural("", "v1", "pods").unwrap();
        let e = ApiError::stale(pods, "x");
        assert_eq!(e.reason.code(), StatusCode::CONFLICT);
        assert!(
            e.message
                .starts_with("Operation cannot be fulfilled on pods \"x\"")
        );
    }
}
