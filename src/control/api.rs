//! The push API: JSON in and out, `Authorization: Bearer <app secret>` (`auth.rs`).
//!
//! - `POST /api/apps/{apikey}/push` `{"msg": <any JSON>}` → `{"recipients": n}`: the same `onMsg`
//!   push as Pomelo's `pushAll`, encoded once and fanned out to the cores with members.
//! - `POST /api/apps/{apikey}/clients/{clientId}/push` `{"msg": ...}` → `{"recipients": 1}`, or
//!   404 when the client is not online.
//! - `GET /api/apps/{apikey}/clients?cursor=&limit=` → `{"clients": [...], "total": n,
//!   "next_cursor": "<id>" | null}`: online clientIds in sorted (byte) order, `limit` (default
//!   [`DEFAULT_PAGE`], at most [`MAX_PAGE`]) after `cursor` (the last id of the previous page).
//! - `GET /healthz` → `{"status": "ok"}`, without auth.
//!
//! A push is checked in this order, and the first failure answers: unknown app (404), secret
//! (401), content type (415), body size (413), body (400), then the push service's checks, the
//! same as for a management session's push: client online (404), app push rate (429). Only a
//! push that is sent takes a token from the rate.

use std::sync::Arc;
use std::time::Instant;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use serde::Deserialize;
use serde_json::{Value, json};

use super::Context;
use super::auth::authorize_app_or_admin;
use super::error::ApiError;
use super::https::Peer;
use crate::channel::ClientId;
use crate::ids::Edge;

/// Clients per page when `limit` is not given.
pub const DEFAULT_PAGE: usize = 100;
/// The largest `limit`.
pub const MAX_PAGE: usize = 1000;

type Reply = Result<Json<Value>, ApiError>;

/// Liveness: this node serves (`"status": "ok"`), and in a cluster whether its bus is `"up"` or
/// `"down"` (a node whose bus is down still serves its own clients).
pub(super) async fn healthz(State(context): State<Arc<Context>>) -> Json<Value> {
    let push = &context.shared.push;
    if !push.clustered() {
        return Json(json!({ "status": "ok" }));
    }
    let up = push.counters().cluster.snapshot().up;
    Json(json!({ "status": "ok", "cluster": if up { "up" } else { "down" } }))
}

pub(super) async fn push_all(
    State(context): State<Arc<Context>>,
    ConnectInfo(Peer(peer)): ConnectInfo<Peer>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Reply {
    let Path(apikey) = path.map_err(ApiError::from_path)?;
    let shared = &context.shared;
    let app = authorize(&context, peer, &apikey, &headers)?;
    let msg = read_msg(&headers, body)?;
    let mut outlet = shared.outlet();
    let recipients = shared
        .push
        .push_all(Edge::Http, app, &msg, Instant::now(), &mut outlet)
        .map_err(ApiError::from_refusal)?;
    Ok(Json(json!({ "recipients": recipients })))
}

pub(super) async fn push_to_client(
    State(context): State<Arc<Context>>,
    ConnectInfo(Peer(peer)): ConnectInfo<Peer>,
    path: Result<Path<(String, String)>, PathRejection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Reply {
    let Path((apikey, client_id)) = path.map_err(ApiError::from_path)?;
    let shared = &context.shared;
    let app = authorize(&context, peer, &apikey, &headers)?;
    let msg = read_msg(&headers, body)?;
    let mut outlet = shared.outlet();
    let recipients = shared
        .push
        .push_to(Edge::Http, app, &client_id, &msg, Instant::now(), &mut outlet)
        .map_err(ApiError::from_refusal)?;
    Ok(Json(json!({ "recipients": recipients })))
}

#[derive(Debug, Deserialize)]
pub(super) struct Page {
    cursor: Option<String>,
    limit: Option<String>,
}

pub(super) async fn clients(
    State(context): State<Arc<Context>>,
    ConnectInfo(Peer(peer)): ConnectInfo<Peer>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    query: Result<Query<Page>, QueryRejection>,
) -> Reply {
    let Path(apikey) = path.map_err(ApiError::from_path)?;
    let app = authorize(&context, peer, &apikey, &headers)?;
    let Query(page) = query.map_err(ApiError::from_query)?;
    let limit = match page.limit.as_deref() {
        None | Some("") => DEFAULT_PAGE,
        Some(text) => {
            text.parse().ok().filter(|n| (1..=MAX_PAGE).contains(n)).ok_or_else(|| {
                ApiError::bad_request(format!("limit must be a number from 1 to {MAX_PAGE}"))
            })?
        }
    };
    let cursor = page.cursor.as_deref().filter(|c| !c.is_empty());
    // One more than the page, to know whether another page follows.
    let (mut clients, total) = context.shared.push.clients(app, cursor, limit + 1);
    let more = clients.len() > limit;
    clients.truncate(limit);
    let next_cursor = more.then(|| clients.last().map(|id| id.to_string())).flatten();
    let clients: Vec<&str> = clients.iter().map(ClientId::as_str).collect();
    Ok(Json(json!({ "clients": clients, "total": total, "next_cursor": next_cursor })))
}

/// The app `apikey` names, for its secret or the admin token.
pub(super) fn authorize(
    context: &Context,
    peer: std::net::SocketAddr,
    apikey: &str,
    headers: &HeaderMap,
) -> Result<crate::ids::AppId, ApiError> {
    let (push, admin) = (&context.shared.push, context.admin_token.as_ref());
    authorize_app_or_admin(push, &context.throttle, admin, peer.ip(), apikey, headers)
}

/// Checks the content type and reads the `msg` of `{"msg": ...}`.
fn read_msg(headers: &HeaderMap, body: Result<Bytes, BytesRejection>) -> Result<Value, ApiError> {
    if !is_json(headers) {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "the body must be JSON: send Content-Type: application/json",
        ));
    }
    let body = body.map_err(ApiError::from_body)?;
    let value: Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("malformed JSON body: {e}")))?;
    let Value::Object(mut fields) = value else {
        return Err(ApiError::bad_request("the body must be a JSON object: {\"msg\": ...}"));
    };
    fields.remove("msg").ok_or_else(|| ApiError::bad_request("missing field msg"))
}

/// `application/json`, with or without parameters, in any case.
fn is_json(headers: &HeaderMap) -> bool {
    let Some(value) = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let essence = value.split(';').next().unwrap_or_default().trim();
    essence.eq_ignore_ascii_case("application/json")
}
