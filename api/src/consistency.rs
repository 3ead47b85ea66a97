//! Read-your-writes: a command answers with the position it wrote at; a query may ask to wait
//! until its read model has applied that position (`X-Wait-For-Position` header or
//! `wait_for_position` query parameter), bounded by `READ_WAIT_TIMEOUT_MS`.

use app::error::ErrorCode;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use projections::progress::{self, Projected};

use crate::error::ApiError;
use crate::state::AppState;

pub const POSITION_HEADER: &str = "x-event-position";
pub const WAIT_HEADER: &str = "x-wait-for-position";
pub const WAIT_PARAM: &str = "wait_for_position";

/// The position a query should wait for, if the client asked.
#[derive(Debug, Clone, Copy, Default)]
pub struct ReadAfter(pub Option<i64>);

impl<S: Send + Sync> FromRequestParts<S> for ReadAfter {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        let from_header = parts
            .headers
            .get(WAIT_HEADER)
            .map(|v| v.to_str().unwrap_or("").to_owned());
        let from_query = parts.uri.query().and_then(|query| {
            query.split('&').find_map(|pair| {
                let (key, value) = pair.split_once('=')?;
                (key == WAIT_PARAM).then(|| value.to_owned())
            })
        });
        match from_header.or(from_query) {
            None => Ok(Self(None)),
            Some(raw) => match raw.trim().parse::<i64>() {
                Ok(position) if position > 0 => Ok(Self(Some(position))),
                _ => Err(ApiError::bad_request(
                    ErrorCode::InvalidPosition,
                    format!("{WAIT_PARAM} must be a positive integer returned by a command"),
                )),
            },
        }
    }
}

impl AppState {
    /// Waits until `projector` has applied the requested position, if any.
    pub async fn read_after(&self, projector: &str, read_after: ReadAfter) -> Result<(), ApiError> {
        self.read_after_all(&[projector], read_after).await
    }

    /// Like `read_after`, for answers built from several read models.
    pub async fn read_after_all(
        &self,
        projectors: &[&str],
        read_after: ReadAfter,
    ) -> Result<(), ApiError> {
        let Some(position) = read_after.0 else {
            return Ok(());
        };
        for projector in projectors {
            self.wait_one(projector, position).await?;
        }
        Ok(())
    }

    /// Waits until `projector` holds every event committed before this call: for an answer
    /// that depends on a read model whatever the client asked (a lookup through it).
    pub async fn caught_up(
        &self,
        projector: &dyn projections::projector::Projector,
    ) -> Result<(), ApiError> {
        if progress::wait_caught_up(
            &self.pool,
            &self.progress,
            projector,
            self.read_wait_timeout,
        )
        .await?
        {
            return Ok(());
        }
        Err(ApiError::unavailable(
            ErrorCode::ProjectionLag,
            format!(
                "the {} read model is behind; retry shortly",
                projector.name()
            ),
            1,
        ))
    }

    async fn wait_one(&self, projector: &str, position: i64) -> Result<(), ApiError> {
        let outcome = progress::wait_for(
            &self.pool,
            &self.progress,
            projector,
            position,
            self.read_wait_timeout,
        )
        .await?;
        match outcome {
            Projected::Yes => Ok(()),
            Projected::NotYet => Err(ApiError::unavailable(
                ErrorCode::ProjectionLag,
                format!(
                    "the read model has not reached position {position} within {} ms; retry",
                    self.read_wait_timeout.as_millis()
                ),
                1,
            )),
            Projected::UnknownPosition => Err(ApiError::bad_request(
                ErrorCode::InvalidPosition,
                format!("no event has position {position}"),
            )),
        }
    }
}
