//! `GET /api/openapi.json`: the OpenAPI 3.1 document of the control API (`openapi.json` beside
//! this file, served as it is). `tests/control_openapi.rs` checks every documented operation
//! against real answers, and that every route of the router is documented.

use axum::http::header;
use axum::response::IntoResponse;

/// The document, as checked in.
pub const DOCUMENT: &str = include_str!("openapi.json");

pub(super) async fn document() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], DOCUMENT)
}
