//! Who may call the push API: `Authorization: Bearer <secret>` with the secret of the app named
//! in the path, compared in constant time ([`App::secret_matches`](crate::push::App::secret_matches)).
//!
//! Another app's secret is a wrong secret (401), never access to this app. An unknown apikey is a
//! 404 before any secret is looked at: apikeys are public (every client sends one).

use axum::http::{HeaderMap, header};

use super::error::ApiError;
use crate::push::{AppId, Apps};

/// The app `apikey` names, if `headers` carry its secret.
pub fn authorize(apps: &Apps, apikey: &str, headers: &HeaderMap) -> Result<AppId, ApiError> {
    let app = apps
        .lookup(apikey)
        .ok_or_else(|| ApiError::not_found(format!("unknown apikey {apikey:?}")))?;
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Err(ApiError::unauthorized("missing Authorization: Bearer <app secret>"));
    };
    let token = value.to_str().ok().and_then(bearer_token).ok_or_else(|| {
        ApiError::unauthorized("the Authorization header must be \"Bearer <app secret>\"")
    })?;
    if apps.get(app).secret_matches(token) {
        Ok(app)
    } else {
        Err(ApiError::unauthorized("wrong secret"))
    }
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
    use crate::config::AppConfig;

    fn apps() -> Apps {
        let app = |apikey: &str, secret: &str| AppConfig {
            apikey: apikey.into(),
            secret: secret.into(),
            max_clients: None,
            push_rate_per_sec: None,
        };
        Apps::from_config(&[app("a", "secret-of-a"), app("b", "secret-of-b")]).unwrap()
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
