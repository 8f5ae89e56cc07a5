//! Who may call the push API: `Authorization: Bearer <secret>` with the secret of the app named
//! in the path, checked by the push service as it checks a management session's
//! ([`PushService::authenticate`]).
//!
//! Another app's secret is a wrong secret (401), never access to this app. An unknown apikey is a
//! 404 before any secret is looked at: apikeys are public (every client sends one).

use axum::http::{HeaderMap, header};

use super::error::ApiError;
use crate::ids::AppId;
use crate::push::PushService;

/// The app `apikey` names, if `headers` carry its secret.
pub fn authorize(push: &PushService, apikey: &str, headers: &HeaderMap) -> Result<AppId, ApiError> {
    push.lookup(apikey).map_err(ApiError::from_refusal)?;
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Err(ApiError::unauthorized("missing Authorization: Bearer <app secret>"));
    };
    let token = value.to_str().ok().and_then(bearer_token).ok_or_else(|| {
        ApiError::unauthorized("the Authorization header must be \"Bearer <app secret>\"")
    })?;
    // The control thread is an edge: it reads the clock for the push service.
    push.authenticate(apikey, Some(token), std::time::Instant::now())
        .map_err(ApiError::from_refusal)
}

/// The token of a `Bearer` credential; the scheme is case-insensitive (RFC 7235).
fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim_start();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

#[cfg(test)]
mod tests {
    use axum::http::{HeaderValue, StatusCode};

    use super::*;
    use crate::config::{AppConfig, DuplicatePolicy};
    use crate::push::{Apps, FrameEncoder, JoinPolicy};

    fn apps() -> PushService {
        let app = |apikey: &str, secret: &str| AppConfig::new(apikey, secret);
        let apps = Apps::from_config(&[app("a", "secret-of-a"), app("b", "secret-of-b")]);
        let policy = JoinPolicy {
            duplicate: DuplicatePolicy::Replace,
            on_add_users_limit: 1,
            manager_list_bytes: 1 << 20,
        };
        let now = std::time::Instant::now();
        let protos = crate::push::ProtoSets::none(2);
        PushService::new(apps.unwrap(), protos, 1, FrameEncoder::new(None), policy, now)
    }

    fn with_auth(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn the_apps_own_secret_and_nothing_else() {
        let apps = apps();
        assert_eq!(authorize(&apps, "a", &with_auth("Bearer secret-of-a")), Ok(AppId(0)));
        assert_eq!(authorize(&apps, "a", &with_auth("bearer  secret-of-a")), Ok(AppId(0)));
        for value in ["Bearer secret-of-b", "Bearer secret-of-", "Basic secret-of-a", "Bearer", ""]
        {
            let e = authorize(&apps, "a", &with_auth(value)).unwrap_err();
            assert_eq!(e.status, StatusCode::UNAUTHORIZED, "{value:?}");
        }
        let e = authorize(&apps, "a", &HeaderMap::new()).unwrap_err();
        assert_eq!(e.status, StatusCode::UNAUTHORIZED);
        let e = authorize(&apps, "c", &with_auth("Bearer secret-of-a")).unwrap_err();
        assert_eq!(e.status, StatusCode::NOT_FOUND);
    }
}
