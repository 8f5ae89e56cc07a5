//! Who may call the push API: `Authorization: Bearer <secret>` with the secret of the app named
//! in the path, checked by the push service as it checks a management session's
//! ([`PushService::authenticate`]).
//!
//! Another app's secret is a wrong secret (401), never access to this app. An unknown apikey is a
//! 404 before any secret is looked at: apikeys are public (every client sends one). A source
//! address that sent too many wrong secrets is refused 429 for a while ([`SecretThrottle`]).
//!
//! The admin token (`control.admin_token`) opens every app's routes as the app's own secret does
//! ([`authorize_app_or_admin`]), and the routes of no app (`GET /api/apps`,
//! [`authorize_admin`]); without one configured those answer 403. A wrong token counts as a
//! wrong secret.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};

use super::error::ApiError;
use super::throttle::SecretThrottle;
use crate::ids::AppId;
use crate::push::PushService;
use crate::push::apps::same_secret;

/// `control.admin_token`, kept out of `Debug` output.
#[derive(Clone, PartialEq, Eq)]
pub struct AdminToken(Box<str>);

impl AdminToken {
    /// The configured token; `None` when it is empty (no admin API).
    pub fn from_config(token: &str) -> Option<AdminToken> {
        (!token.is_empty()).then(|| AdminToken(token.into()))
    }

    fn matches(&self, candidate: &str) -> bool {
        same_secret(&self.0, candidate)
    }
}

impl std::fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdminToken(<redacted>)")
    }
}

/// The app `apikey` names, if `headers` carry its secret or the admin token and `source` is not
/// throttled.
pub fn authorize_app_or_admin(
    push: &PushService,
    throttle: &SecretThrottle,
    admin_token: Option<&AdminToken>,
    source: IpAddr,
    apikey: &str,
    headers: &HeaderMap,
) -> Result<AppId, ApiError> {
    let app = push.lookup(apikey).map_err(ApiError::from_refusal)?;
    let admin = admin_token.zip(bearer(headers));
    if admin.is_some_and(|(token, given)| token.matches(given)) {
        if let Some(left) = throttle.blocked(source, Instant::now()) {
            return Err(throttled(left));
        }
        throttle.authenticated(source);
        return Ok(app);
    }
    authorize(push, throttle, source, apikey, headers)
}

/// `Ok` if `headers` carry the admin token and `source` is not throttled: 403 when no admin
/// token is configured, 401 (a wrong secret) when it is not the one.
pub fn authorize_admin(
    throttle: &SecretThrottle,
    admin_token: Option<&AdminToken>,
    source: IpAddr,
    headers: &HeaderMap,
) -> Result<(), ApiError> {
    let Some(token) = admin_token else {
        let message = "the admin API is off: set control.admin_token to use it";
        return Err(ApiError::new(StatusCode::FORBIDDEN, message));
    };
    let now = Instant::now();
    if let Some(left) = throttle.blocked(source, now) {
        return Err(throttled(left));
    }
    if bearer(headers).is_some_and(|given| token.matches(given)) {
        throttle.authenticated(source);
        return Ok(());
    }
    note_wrong_secret(throttle, source, now);
    Err(ApiError::unauthorized("missing or wrong Authorization: Bearer <admin token>"))
}

/// The app `apikey` names, if `headers` carry its secret and `source` is not throttled.
pub fn authorize(
    push: &PushService,
    throttle: &SecretThrottle,
    source: IpAddr,
    apikey: &str,
    headers: &HeaderMap,
) -> Result<AppId, ApiError> {
    push.lookup(apikey).map_err(ApiError::from_refusal)?;
    // The control thread is an edge: it reads the clock for the push service.
    let now = Instant::now();
    if let Some(left) = throttle.blocked(source, now) {
        return Err(throttled(left));
    }
    let checked = check_secret(push, apikey, headers, now);
    match &checked {
        Ok(_) => throttle.authenticated(source),
        Err(e) if e.status == StatusCode::UNAUTHORIZED => note_wrong_secret(throttle, source, now),
        Err(_) => {}
    }
    checked
}

fn check_secret(
    push: &PushService,
    apikey: &str,
    headers: &HeaderMap,
    now: Instant,
) -> Result<AppId, ApiError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Err(ApiError::unauthorized("missing Authorization: Bearer <app secret>"));
    };
    let token = value.to_str().ok().and_then(bearer_token).ok_or_else(|| {
        ApiError::unauthorized("the Authorization header must be \"Bearer <app secret>\"")
    })?;
    push.authenticate(apikey, Some(token), now).map_err(ApiError::from_refusal)
}

/// Counts a wrong secret from `source`, and logs when that blocks it.
fn note_wrong_secret(throttle: &SecretThrottle, source: IpAddr, now: Instant) {
    if let Some(block) = throttle.wrong_secret(source, now) {
        tracing::warn!(
            %source,
            secs = block.as_secs(),
            "control port: too many wrong secrets from this address, refused for a while"
        );
    }
}

/// The token of the request's `Authorization: Bearer` header, if it has one.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers.get(header::AUTHORIZATION)?.to_str().ok().and_then(bearer_token)
}

/// 429 with `Retry-After` (whole seconds, rounded up).
fn throttled(left: Duration) -> ApiError {
    let secs = left.as_secs() + u64::from(left.subsec_nanos() > 0);
    let message = "too many wrong secrets from this address: retry later";
    ApiError::new(StatusCode::TOO_MANY_REQUESTS, message)
        .with_header(header::RETRY_AFTER, HeaderValue::from(secs))
}

/// The token of a `Bearer` credential; the scheme is case-insensitive (RFC 7235).
fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim_start();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

#[cfg(test)]
mod tests {
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

    const HERE: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

    #[test]
    fn the_apps_own_secret_and_nothing_else() {
        let apps = apps();
        let throttle = SecretThrottle::default();
        let auth = |apikey, headers: &HeaderMap| authorize(&apps, &throttle, HERE, apikey, headers);
        assert_eq!(auth("a", &with_auth("Bearer secret-of-a")), Ok(AppId(0)));
        assert_eq!(auth("a", &with_auth("bearer  secret-of-a")), Ok(AppId(0)));
        for value in ["Bearer secret-of-b", "Bearer secret-of-", "Basic secret-of-a", "Bearer", ""]
        {
            let e = auth("a", &with_auth(value)).unwrap_err();
            assert_eq!(e.status, StatusCode::UNAUTHORIZED, "{value:?}");
        }
        let e = auth("a", &HeaderMap::new()).unwrap_err();
        assert_eq!(e.status, StatusCode::UNAUTHORIZED);
        let e = auth("c", &with_auth("Bearer secret-of-a")).unwrap_err();
        assert_eq!(e.status, StatusCode::NOT_FOUND);
    }

    #[test]
    fn too_many_wrong_secrets_from_a_source_are_throttled_even_with_the_right_one() {
        let apps = apps();
        let throttle = SecretThrottle::default();
        for _ in 0..crate::control::throttle::MAX_WRONG_SECRETS {
            let e = authorize(&apps, &throttle, HERE, "a", &with_auth("Bearer guess")).unwrap_err();
            assert_eq!(e.status, StatusCode::UNAUTHORIZED);
        }
        let e =
            authorize(&apps, &throttle, HERE, "a", &with_auth("Bearer secret-of-a")).unwrap_err();
        assert_eq!(e.status, StatusCode::TOO_MANY_REQUESTS);
        let other = IpAddr::from([127, 0, 0, 2]);
        assert_eq!(
            authorize(&apps, &throttle, other, "a", &with_auth("Bearer secret-of-a")),
            Ok(AppId(0))
        );
    }
}
