//! Team authentication for the request path: `Authorization: Bearer <virtual key>` (or
//! `x-api-key`, as Anthropic's SDK sends it), resolved by `app::team_keys`.

use app::team_keys::TeamCaller;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use crate::error::ApiError;
use crate::state::AppState;

/// The team behind the request's virtual key, as an extractor.
pub struct Team(pub TeamCaller);

impl FromRequestParts<AppState> for Team {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if let Some(crate::auth::Verified::Team(caller)) =
            parts.extensions.get::<crate::auth::Verified>()
        {
            return Ok(Team(caller.clone()));
        }
        let key = crate::credentials::team_key(&parts.headers)
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .ok_or_else(|| {
                ApiError::unauthorized("missing `Authorization: Bearer <virtual key>` header")
            })?;
        Ok(Team(state.team_keys.resolve(key).await?))
    }
}
