//! Responses and the CloudSigma error model.

use axum::body::Body;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::Response;
use serde_json::{Value, json};

/// A response before it is turned into HTTP.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) body: Option<Value>,
    pub(crate) headers: Vec<(HeaderName, String)>,
}

impl Reply {
    pub(crate) fn json(status: StatusCode, body: Value) -> Reply {
        Reply {
            status,
            body: Some(body),
            headers: Vec::new(),
        }
    }

    pub(crate) fn ok(body: Value) -> Reply {
        Reply::json(StatusCode::OK, body)
    }

    /// 204 with an empty body.
    pub(crate) fn no_content() -> Reply {
        Reply {
            status: StatusCode::NO_CONTENT,
            body: None,
            headers: Vec::new(),
        }
    }

    pub(crate) fn header(mut self, name: HeaderName, value: impl Into<String>) -> Reply {
        self.headers.push((name, value.into()));
        self
    }

    /// An OAuth (RFC 6749 §5.2) error object.
    pub(crate) fn oauth_error(status: StatusCode, error: &str, description: &str) -> Reply {
        Reply::json(status, json!({"error": error, "error_description": description}))
            .header(header::CACHE_CONTROL, "no-store")
    }

    pub(crate) fn into_response(self) -> Response {
        let mut builder = Response::builder().status(self.status);
        let body = match &self.body {
            Some(v) => {
                builder = builder.header(header::CONTENT_TYPE, "application/json; charset=utf-8");
                Body::from(v.to_string())
            }
            None => Body::empty(),
        };
        for (name, value) in self.headers {
            if let Ok(v) = HeaderValue::from_str(&value) {
                builder = builder.header(name, v);
            }
        }
        builder.body(body).unwrap_or_else(|_| {
            let mut r = Response::new(Body::empty());
            *r.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
            r
        })
    }
}

/// An API 2.0 error: answered as a one-element array of `{error_type, error_message, error_point}`.
#[derive(Debug, Clone)]
pub(crate) struct ApiError {
    pub(crate) status: StatusCode,
    pub(crate) error_type: String,
    pub(crate) message: String,
    pub(crate) point: Option<String>,
    pub(crate) headers: Vec<(HeaderName, String)>,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, error_type: &str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            error_type: error_type.to_owned(),
            message: message.into(),
            point: None,
            headers: Vec::new(),
        }
    }

    /// 400 `validation` naming the field.
    pub(crate) fn validation(point: &str, message: impl Into<String>) -> ApiError {
        let mut e = ApiError::new(StatusCode::BAD_REQUEST, "validation", message);
        e.point = Some(point.to_owned());
        e
    }

    /// 400 `validation` about the request as a whole.
    pub(crate) fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "validation", message)
    }

    /// 404 `notexist` for a uuid.
    pub(crate) fn notexist(uuid: &str) -> ApiError {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "notexist",
            format!("Object with uuid {uuid} does not exist"),
        )
    }

    /// 404 `notexist` for a path.
    pub(crate) fn no_route(message: &str) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "notexist", message)
    }

    /// 403 `permission` (forbidden, or not allowed in the current state).
    pub(crate) fn permission(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, "permission", message)
    }

    /// 403 `permission` in the wording observed for another account's resource.
    pub(crate) fn not_yours(user: &str, perm: &str, uuid: &str) -> ApiError {
        ApiError::permission(format!(
            "User {user} does not have all of the permissions [{perm}] in order to complete the operation on \
             resources [{uuid}]"
        ))
    }

    /// 401 with a Basic challenge; the error type is `permission` (no dedicated type is documented).
    pub(crate) fn unauthorized(message: &str) -> ApiError {
        let mut e = ApiError::new(StatusCode::UNAUTHORIZED, "permission", message);
        e.headers
            .push((header::WWW_AUTHENTICATE, "Basic realm=\"users\"".to_owned()));
        e
    }

    /// 405 with the allowed methods.
    pub(crate) fn method_not_allowed(method: &str, allowed: &str) -> ApiError {
        let mut e = ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "validation",
            format!("Method {method} is not allowed here; allowed: {allowed}"),
        );
        e.headers.push((header::ALLOW, allowed.to_owned()));
        e
    }

    /// 406 for an `Accept` header the API does not serve.
    pub(crate) fn not_acceptable() -> ApiError {
        ApiError::new(
            StatusCode::NOT_ACCEPTABLE,
            "validation",
            "Accept must allow application/json (or */*); this emulator serves JSON only",
        )
    }

    /// 503 `concurrency` (retry later).
    pub(crate) fn unavailable(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "concurrency", message)
    }
}

impl From<ApiError> for Reply {
    fn from(e: ApiError) -> Reply {
        let body = json!([{"error_type": e.error_type, "error_message": e.message, "error_point": e.point}]);
        Reply {
            status: e.status,
            body: Some(body),
            headers: e.headers,
        }
    }
}
