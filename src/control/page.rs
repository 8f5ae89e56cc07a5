//! The management page at `GET /`: static HTML, CSS and our own JavaScript, embedded in the
//! binary, plus `GET /config.json` telling the page where the client port is.
//!
//! The page is a Pomelo client like any browser client: it connects to the client port over
//! WebSocket (`page/pomelo.js`, our own small client), enters with role `server`, shows who is
//! online from `onAdd`/`onLeave`, and pushes with `pushAll`/`pushByClientId` (`page/app.js`).
//! The secret goes to the gateway only: to the client port as the management session's, and to
//! the control port (its own origin) as the bearer of `GET /api/apps/{apikey}/clients/{id}`
//! when a client is tapped. The page keeps it in memory (never in storage) to reconnect after a
//! drain, and forgets it when the user disconnects or is refused.
//!
//! # Invariants
//! - No third-party code: every file under `page/` is ours.
//! - Scripts and styles load only from this origin (a strict Content-Security-Policy); the page
//!   connects only to itself and to WebSocket URLs.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::header::{self, HeaderName};
use axum::response::IntoResponse;
use serde_json::{Value, json};

use super::Context;

const INDEX_HTML: &str = include_str!("page/index.html");
const APP_CSS: &str = include_str!("page/app.css");
const APP_JS: &str = include_str!("page/app.js");
const POMELO_JS: &str = include_str!("page/pomelo.js");

const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self' ws: wss:; form-action 'none'; frame-ancestors 'none'; \
                   base-uri 'none'";

/// A static file with its type and the headers every page file carries.
fn file(content_type: &'static str, body: &'static str) -> impl IntoResponse {
    let headers: [(HeaderName, &'static str); 4] = [
        (header::CONTENT_TYPE, content_type),
        (header::CACHE_CONTROL, "no-cache"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::CONTENT_SECURITY_POLICY, CSP),
    ];
    (headers, body)
}

pub(super) async fn index() -> impl IntoResponse {
    file("text/html; charset=utf-8", INDEX_HTML)
}

pub(super) async fn css() -> impl IntoResponse {
    file("text/css; charset=utf-8", APP_CSS)
}

pub(super) async fn app_js() -> impl IntoResponse {
    file("text/javascript; charset=utf-8", APP_JS)
}

pub(super) async fn pomelo_js() -> impl IntoResponse {
    file("text/javascript; charset=utf-8", POMELO_JS)
}

/// `{"client_port": N, "client_url": URL | null}`: the page connects to `client_url` when the
/// operator set one (`control.page_client_url`), else to `ws://<its own hostname>:N/`.
pub(super) async fn config(State(context): State<Arc<Context>>) -> Json<Value> {
    Json(json!({ "client_port": context.client_port, "client_url": context.page_client_url }))
}
