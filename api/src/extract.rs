//! Extractors that turn bad input into our JSON errors instead of axum's plain-text ones.

use app::error::ErrorCode;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;
use std::str::FromStr;

use chrono::Utc;
use domain::CommandMetadata;

use crate::error::ApiError;

/// Request bodies above this are refused with 413 before they are parsed.
pub const BODY_LIMIT_BYTES: usize = 256 * 1024;

/// `axum::Json` with our error body. The body must be a JSON object: serde would otherwise
/// also fill a struct from an array (`[null, null]`), which no client means.
pub struct AppJson<T>(pub T);

impl<S, T> FromRequest<S> for AppJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let axum::Json(raw) = axum::Json::<Box<RawValue>>::from_request(req, state)
            .await
            .map_err(json_rejection)?;
        if !raw.get().starts_with('{') {
            return Err(ApiError::unprocessable(
                ErrorCode::InvalidBody,
                "the request body must be a JSON object",
            ));
        }
        serde_json::from_str(raw.get()).map(Self).map_err(|error| {
            ApiError::unprocessable(
                ErrorCode::InvalidBody,
                format!("Failed to deserialize the JSON body into the target type: {error}"),
            )
        })
    }
}

fn json_rejection(rejection: JsonRejection) -> ApiError {
    let status = rejection.status();
    let code = match &rejection {
        JsonRejection::JsonSyntaxError(_) => ErrorCode::InvalidJson,
        JsonRejection::JsonDataError(_) => ErrorCode::InvalidBody,
        JsonRejection::MissingJsonContentType(_) => ErrorCode::UnsupportedMediaType,
        _ => {
            if let Some(timed_out) = body_timed_out(&rejection) {
                return timed_out;
            }
            body_rejection_code(status)
        }
    };
    // serde's messages name the field and position, never echo large inputs.
    ApiError::new(status, code, rejection.body_text())
}

/// 408 when reading the body failed because it did not arrive in time (see
/// `deadline_body`).
pub fn body_timed_out(error: &(dyn std::error::Error + 'static)) -> Option<ApiError> {
    let mut cause = Some(error);
    while let Some(error) = cause {
        if error.is::<BodyTimedOut>() {
            return Some(ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                ErrorCode::RequestBodyTimeout,
                "the request body did not arrive in time",
            ));
        }
        cause = error.source();
    }
    None
}

/// The code of a body that could not be read: too large, or otherwise unusable.
fn body_rejection_code(status: StatusCode) -> ErrorCode {
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        ErrorCode::PayloadTooLarge
    } else {
        ErrorCode::InvalidBody
    }
}

/// `axum::extract::Query` with our error body.
pub struct AppQuery<T>(pub T);

impl<S, T> FromRequestParts<S> for AppQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        // A NUL (only ever `%00` in a URL) is refused whether or not the route stores the value,
        // as the schema's patterns say: the same answer for every parameter of every route.
        if parts.uri.query().is_some_and(|query| query.contains("%00")) {
            return Err(ApiError::bad_request(
                ErrorCode::InvalidText,
                "query parameters must not contain a NUL character",
            ));
        }
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(value)) => Ok(Self(value)),
            Err(rejection) => Err(query_rejection(rejection)),
        }
    }
}

fn query_rejection(rejection: QueryRejection) -> ApiError {
    ApiError::bad_request(ErrorCode::InvalidQuery, rejection.body_text())
}

/// A JSON number (or numeric string) kept as its exact text, so `84.50` never passes through
/// floating point. The domain parses the text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecimalText(pub String);

impl<'de> serde::Deserialize<'de> for DecimalText {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw: Box<serde_json::value::RawValue> = serde::Deserialize::deserialize(deserializer)?;
        let text = raw.get();
        if let Ok(string) = serde_json::from_str::<String>(text) {
            return Ok(Self(string));
        }
        if text.starts_with(|c: char| c.is_ascii_digit() || c == '-') {
            return Ok(Self(text.to_owned()));
        }
        Err(serde::de::Error::custom(
            "expected a decimal number such as 84.50",
        ))
    }
}

/// Whole numbers in JSON bodies as JSON Schema counts them: an `integer` is any number without a
/// fraction, so `1023`, `1023.0` and `1.023e3` are all 1023. Anything else is refused.
pub mod whole_number {
    use serde::{Deserialize, Deserializer, de::Error};

    fn of(number: serde_json::Number) -> Option<u64> {
        number.as_u64().or_else(|| {
            let value = number.as_f64()?;
            // Below 2^64 and without a fraction: the cast is exact for every such f64.
            ((0.0..18_446_744_073_709_551_616.0).contains(&value) && value.fract() == 0.0)
                .then_some(value as u64)
        })
    }

    fn refused<E: Error>(number: &serde_json::Number) -> E {
        E::custom(format!(
            "expected a whole number of at least 0, got {number}"
        ))
    }

    pub fn required<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
        let number = serde_json::Number::deserialize(deserializer)?;
        of(number.clone()).ok_or_else(|| refused(&number))
    }

    pub fn optional<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<u64>, D::Error> {
        match Option::<serde_json::Number>::deserialize(deserializer)? {
            None => Ok(None),
            Some(number) => of(number.clone()).map(Some).ok_or_else(|| refused(&number)),
        }
    }
}

/// Money and percentages in responses: JSON numbers, as the seed shows them.
pub fn decimal_json(value: rust_decimal::Decimal) -> serde_json::Value {
    // serde_json's `arbitrary_precision` keeps the decimal's digits as written: no f64 on the way.
    let text = value.normalize().to_string();
    serde_json::Number::from_str(&text)
        .map(serde_json::Value::Number)
        .unwrap_or(serde_json::Value::Null)
}

impl utoipa::PartialSchema for DecimalText {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        crate::openapi::decimal_schema()
    }
}

impl utoipa::ToSchema for DecimalText {}

/// The raw body (LLM requests, LiteLLM's push), with our error body when it is refused, such
/// as a 413 above the route's limit.
pub struct AppBytes(pub bytes::Bytes);

impl<S> FromRequest<S> for AppBytes
where
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        bytes::Bytes::from_request(req, state)
            .await
            .map(Self)
            .map_err(|rejection| {
                if let Some(timed_out) = body_timed_out(&rejection) {
                    return timed_out;
                }
                let status = rejection.status();
                ApiError::new(status, body_rejection_code(status), rejection.body_text())
            })
    }
}

/// `axum::extract::Path` with our error body: an id that is not valid UTF-8 after decoding
/// is a 400 JSON error, not axum's plain text.
pub struct AppPath<T>(pub T);

impl<S, T> FromRequestParts<S> for AppPath<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(value)) => Ok(Self(value)),
            Err(rejection) => Err(ApiError::bad_request(
                ErrorCode::InvalidPath,
                rejection.body_text(),
            )),
        }
    }
}

/// Request-scoped facts every command records: request id, correlation id, idempotency key.
#[derive(Debug, Clone)]
pub struct RequestMeta {
    pub request_id: Option<String>,
    pub correlation_id: Option<String>,
    pub idempotency_key: Option<String>,
}

impl RequestMeta {
    pub fn for_actor(&self, actor: &str) -> CommandMetadata {
        CommandMetadata {
            actor: actor.to_owned(),
            request_id: self.request_id.clone(),
            correlation_id: self
                .correlation_id
                .clone()
                .or_else(|| self.request_id.clone()),
            idempotency_key: self.idempotency_key.clone(),
            time: Utc::now(),
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for RequestMeta {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        let header = |name: &str| -> Result<Option<String>, ApiError> {
            match parts.headers.get(name) {
                None => Ok(None),
                Some(value) => {
                    let text = value
                        .to_str()
                        .ok()
                        .filter(|v| v.len() <= 200)
                        .ok_or_else(|| {
                            ApiError::bad_request(
                                ErrorCode::InvalidHeader,
                                format!("{name} must be printable ASCII of at most 200 characters"),
                            )
                        })?;
                    Ok(Some(text.to_owned()))
                }
            }
        };
        Ok(Self {
            request_id: header("x-request-id")?,
            correlation_id: header("x-correlation-id")?,
            idempotency_key: header("idempotency-key")?,
        })
    }
}

/// A request whose body has not arrived in full within the deadline fails as it is read
/// (408), so a client trickling bytes cannot hold a connection.
pub fn deadline_body(body: axum::body::Body, timeout: std::time::Duration) -> axum::body::Body {
    use futures::StreamExt;
    let deadline = tokio::time::Instant::now() + timeout;
    let frames = body.into_data_stream();
    let stream = futures::stream::unfold(Some(frames), move |frames| async move {
        let mut frames = frames?;
        match tokio::time::timeout_at(deadline, frames.next()).await {
            Ok(Some(frame)) => Some((frame, Some(frames))),
            Ok(None) => None,
            Err(_) => Some((Err(axum::Error::new(BodyTimedOut)), None)),
        }
    });
    axum::body::Body::from_stream(stream)
}

#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive within the deadline")]
pub struct BodyTimedOut;
