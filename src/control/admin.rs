//! The admin API: what an app looks like, the list of apps, and disconnecting a client.
//!
//! - `GET /api/apps` (admin token) → `{"apps": [<app>, ...]}`: the configured apps, those of
//!   the start's configuration in its order, then those reloads added.
//! - `GET /api/apps/{apikey}` (the app's secret or the admin token) → `<app>`: `{"apikey",
//!   "clients"` (cluster-wide), `"local_clients"`, `"managers"`, `"pushes"`, `"kicks"` (this
//!   node's), `"max_clients"`, `"push_rate_per_sec"` (`null` = no limit), `"signed_clients"}`.
//! - `GET /api/apps/{apikey}/clients/{clientId}` (the app's secret or the admin token) →
//!   `{"clientId", "node", "core", "frontend", "transport", "tls", "remote_address",
//!   "queued_bytes"}`: asked of the reactor that holds the client (within [`DESCRIBE_TIMEOUT`],
//!   else 503); a client on another node of the cluster has only its `node`, the rest `null`;
//!   404 when no node holds it.
//! - `DELETE /api/apps/{apikey}/clients/{clientId}?reason=` (the app's secret or the admin
//!   token) → `{"disconnected": 1}`: the client is kicked with `reason` (default
//!   [`DEFAULT_REASON`]; Pomelo's kick reason, MQTT 5.0 DISCONNECT 0x98 with it as the reason
//!   string) on whichever node holds it; 404 when no node does, 503 when another node does and
//!   the bus is down. A reason is at most [`MAX_REASON_BYTES`] bytes without control characters
//!   (400 otherwise).

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};

use super::Context;
use super::api::authorize;
use super::auth::authorize_admin;
use super::error::ApiError;
use super::https::Peer;
use crate::ids::AppId;
use crate::push::refusal::quoted;
use crate::push::{Located, PushService, Refusal};

/// How long a client's details may take to come from its reactor.
pub const DESCRIBE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// The kick reason of a disconnect that gives none.
pub const DEFAULT_REASON: &str = "disconnected";
/// The longest reason a disconnect may give.
pub const MAX_REASON_BYTES: usize = 256;

type Reply = Result<Json<Value>, ApiError>;

pub(super) async fn apps(
    State(context): State<Arc<Context>>,
    ConnectInfo(Peer(peer)): ConnectInfo<Peer>,
    headers: HeaderMap,
) -> Reply {
    authorize_admin(&context.throttle, context.admin_token.as_ref(), peer.ip(), &headers)?;
    let push = &context.shared.push;
    let apps: Vec<Value> = push.live_apps().into_iter().map(|app| app_info(push, app)).collect();
    Ok(Json(json!({ "apps": apps })))
}

pub(super) async fn app(
    State(context): State<Arc<Context>>,
    ConnectInfo(Peer(peer)): ConnectInfo<Peer>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> Reply {
    let Path(apikey) = path.map_err(ApiError::from_path)?;
    let app = authorize(&context, peer, &apikey, &headers)?;
    Ok(Json(app_info(&context.shared.push, app)))
}

pub(super) async fn client(
    State(context): State<Arc<Context>>,
    ConnectInfo(Peer(peer)): ConnectInfo<Peer>,
    path: Result<Path<(String, String)>, PathRejection>,
    headers: HeaderMap,
) -> Reply {
    let Path((apikey, client_id)) = path.map_err(ApiError::from_path)?;
    let app = authorize(&context, peer, &apikey, &headers)?;
    let not_online = || {
        let refusal = Refusal::new(404, "no such client");
        ApiError::from_refusal(refusal.with_detail(format!("{} is not online", quoted(&client_id))))
    };
    let conn = match context.shared.push.locate(app, &client_id) {
        Located::Nowhere => return Err(not_online()),
        Located::Node(node) => {
            return Ok(Json(json!({
                "clientId": client_id, "node": &*node, "core": null, "frontend": null,
                "transport": null, "tls": null, "remote_address": null, "queued_bytes": null,
            })));
        }
        Located::Here(conn) => conn,
    };
    let answer = tokio::time::timeout(DESCRIBE_TIMEOUT, context.shared.describe(conn)).await;
    let details = match answer {
        Ok(Ok(Some(details))) => details,
        Ok(Ok(None)) => return Err(not_online()),
        Ok(Err(_)) | Err(_) => {
            let message = "the reactor holding the client did not answer in time";
            return Err(ApiError::new(StatusCode::SERVICE_UNAVAILABLE, message));
        }
    };
    Ok(Json(json!({
        "clientId": client_id,
        "node": null,
        "core": details.core,
        "frontend": details.frontend,
        "transport": details.transport,
        "tls": details.tls,
        "remote_address": details.remote.map(|addr| addr.to_string()),
        "queued_bytes": details.queued_bytes,
    })))
}

#[derive(Debug, Deserialize)]
pub(super) struct Disconnect {
    reason: Option<String>,
}

pub(super) async fn disconnect(
    State(context): State<Arc<Context>>,
    ConnectInfo(Peer(peer)): ConnectInfo<Peer>,
    path: Result<Path<(String, String)>, PathRejection>,
    headers: HeaderMap,
    query: Result<Query<Disconnect>, QueryRejection>,
) -> Reply {
    let Path((apikey, client_id)) = path.map_err(ApiError::from_path)?;
    let app = authorize(&context, peer, &apikey, &headers)?;
    let Query(query) = query.map_err(ApiError::from_query)?;
    let reason = query.reason.as_deref().filter(|r| !r.is_empty()).unwrap_or(DEFAULT_REASON);
    if reason.len() > MAX_REASON_BYTES || reason.chars().any(char::is_control) {
        let message =
            format!("reason must be at most {MAX_REASON_BYTES} bytes without control characters");
        return Err(ApiError::bad_request(message));
    }
    let shared = &context.shared;
    let disconnected = shared
        .push
        .disconnect(app, &client_id, reason, &mut shared.outlet())
        .map_err(ApiError::from_refusal)?;
    Ok(Json(json!({ "disconnected": disconnected })))
}

/// An app's figures and limits, as `GET /api/apps/{apikey}` answers them.
fn app_info(push: &PushService, app: AppId) -> Value {
    let figures = push.app_figures(app);
    let config = push.app(app);
    let (max_clients, push_rate_per_sec, signed_clients) =
        config.as_deref().map_or((None, None, false), |c| {
            (c.max_clients, c.push_rate_per_sec, c.client_key.is_some())
        });
    json!({
        "apikey": push.apikey(app),
        "clients": figures.clients,
        "local_clients": figures.local_clients,
        "managers": figures.managers,
        "pushes": figures.pushes,
        "kicks": figures.kicks,
        "max_clients": max_clients,
        "push_rate_per_sec": push_rate_per_sec,
        "signed_clients": signed_clients,
    })
}
