//! The control port (DESIGN §1 "HTTP control port", §2 "Control plane"): the HTTP push API,
//! `/metrics` and the management page, served by one thread.
//!
//! | path | what |
//! | --- | --- |
//! | `POST /api/apps/{apikey}/push` | [`api`]: `onMsg` to the whole channel, as `pushAll` |
//! | `POST /api/apps/{apikey}/clients/{clientId}/push` | [`api`]: `onMsg` to one online client |
//! | `GET /api/apps/{apikey}/clients?cursor=&limit=` | [`api`]: who is online, paged, sorted |
//! | `GET /api/apps` | `admin`: every app's figures (admin token) |
//! | `GET /api/apps/{apikey}` | `admin`: the app's figures and limits |
//! | `GET /api/apps/{apikey}/clients/{clientId}` | `admin`: a client's frontend, transport, TLS, address, queue |
//! | `DELETE /api/apps/{apikey}/clients/{clientId}?reason=` | `admin`: disconnect a client |
//! | `GET /api/openapi.json` | `openapi`: the OpenAPI 3.1 document of this API, no auth |
//! | `GET /healthz` | [`api`]: liveness, no auth |
//! | `GET /metrics` | [`metrics`]: Prometheus (OpenMetrics) text, summed at scrape time |
//! | `GET /`, `/app.css`, `/app.js`, `/pomelo.js`, `/config.json` | `page`: the management page |
//!
//! # Invariants
//! - **One thread, named `control`,** running a tokio current-thread runtime with axum. Nothing
//!   here runs on a reactor, and nothing here blocks one.
//! - **It never touches a connection.** A push goes through the push service, the same path a
//!   management session's takes ([`PushService`](crate::push::PushService)): encoded once and
//!   handed to reactors through their inboxes, a lock-free queue push and at most one wake per
//!   core. Presence is read through the push service; numbers from a counters
//!   [`Snapshot`](crate::stats::Snapshot).
//! - **Secrets cannot be guessed at speed**: a source address past
//!   `control.wrong_secrets_per_minute` wrong secrets is answered 429 for a minute on every
//!   authorized route ([`throttle`]).
//! - **Every request is bounded**: its body by `control.max_body_bytes` (413), its handling by
//!   [`REQUEST_TIMEOUT`] (408); a connection that moves no bytes for `IDLE_TIMEOUT` (30 s), or
//!   whose request is not answered within `ANSWER_TIMEOUT` (20 s) of its first byte (a head
//!   trickled in), is closed ([`idle`]). Every failure is a JSON `{"error", "code"}` ([`error`]), never a panic.
//! - **HTTPS when `[control.tls]` is set** ([`https`]): rustls through tokio-rustls, each
//!   handshake in its connection's own task (never in the accept loop), optionally requiring a
//!   client certificate; a plain request there is answered 400 and never routed.
//! - **Shutdown is graceful and bounded**: [`ControlHandle::shutdown`] stops accepting, lets
//!   in-flight requests finish for up to [`SHUTDOWN_GRACE`], then drops what is left and joins
//!   the thread.

mod admin;
pub mod api;
mod auth;
pub mod error;
mod https;
mod idle;
pub mod metrics;
mod openapi;
mod page;
mod process;
mod requests;
mod throttle;

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tokio::sync::{oneshot, watch};

pub use auth::AdminToken;

use crate::config::Config;
use crate::reactor::shared::Shared;
use error::ApiError;

/// The longest a request may take, body included; past it the answer is 408.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How long [`ControlHandle::shutdown`] lets in-flight requests finish.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// What the control thread needs beyond [`Shared`], resolved from the configuration once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControlSettings {
    /// Largest request body accepted (`control.max_body_bytes`).
    pub max_body_bytes: usize,
    /// The client port, which the management page connects to over WebSocket.
    pub client_port: u16,
    /// `control.wrong_secrets_per_minute` (0: no limit).
    pub wrong_secrets_per_minute: u32,
    /// `control.admin_token`, if set.
    pub admin_token: Option<auth::AdminToken>,
    /// `control.page_client_url`, if set.
    pub page_client_url: Option<String>,
}

impl ControlSettings {
    /// The settings of `config`, with the client port actually bound (`client_addr`).
    pub fn from_config(config: &Config, client_addr: SocketAddr) -> ControlSettings {
        ControlSettings {
            max_body_bytes: config.control.max_body_bytes,
            client_port: client_addr.port(),
            wrong_secrets_per_minute: config.control.wrong_secrets_per_minute,
            admin_token: auth::AdminToken::from_config(&config.control.admin_token),
            page_client_url: config.control.page_client_url.clone(),
        }
    }
}

/// What every handler reads: the server's shared state and the control port's own.
#[derive(Debug)]
struct Context {
    shared: Arc<Shared>,
    client_port: u16,
    metrics: prometheus_client::registry::Registry,
    /// Wrong secrets per source address.
    throttle: throttle::SecretThrottle,
    admin_token: Option<auth::AdminToken>,
    /// Where the management page connects, when not the client port on its own host.
    page_client_url: Option<String>,
}

/// The running control thread.
#[derive(Debug)]
pub struct ControlHandle {
    local_addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<io::Result<()>>>,
}

/// Binds `listen` (port 0 picks a free one) and starts the `control` thread serving it: over
/// HTTPS with `tls` (`control.tls` as rustls runs it), else plain HTTP.
pub fn start(
    listen: SocketAddr,
    shared: Arc<Shared>,
    settings: ControlSettings,
    tls: Option<Arc<rustls::ServerConfig>>,
) -> io::Result<ControlHandle> {
    let listener = std::net::TcpListener::bind(listen)?;
    listener.set_nonblocking(true)?;
    let local_addr = listener.local_addr()?;
    let requests = Arc::new(requests::RequestCounts::default());
    let context = Arc::new(Context {
        throttle: throttle::SecretThrottle::new(settings.wrong_secrets_per_minute),
        metrics: metrics::registry(Arc::clone(&shared), Arc::clone(&requests)),
        client_port: settings.client_port,
        admin_token: settings.admin_token.clone(),
        page_client_url: settings.page_client_url.clone(),
        shared,
    });
    let app = router(context, settings.max_body_bytes, requests);
    let https = tls.is_some();
    let (stop, stopped) = oneshot::channel();
    let thread = std::thread::Builder::new()
        .name("control".into())
        .spawn(move || serve(listener, tls, app, stopped))?;
    let scheme = if https { "https" } else { "http" };
    tracing::info!(scheme, "control port listening addr={local_addr}");
    Ok(ControlHandle { local_addr, stop: Some(stop), thread: Some(thread) })
}

impl ControlHandle {
    /// The address the control port is bound to (with the real port when the config said 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Tells the control thread to stop accepting and to close connections once their request
    /// is answered; returns at once ([`shutdown`](Self::shutdown) then waits for it).
    pub fn stop_taking_requests(&mut self) {
        self.stop.take().map(|stop| stop.send(()));
    }

    /// Stops accepting, lets in-flight requests finish (at most [`SHUTDOWN_GRACE`]), and joins
    /// the thread.
    pub fn shutdown(mut self) -> io::Result<()> {
        self.stop_taking_requests();
        match self.thread.take().map(JoinHandle::join) {
            None | Some(Ok(Ok(()))) => Ok(()),
            Some(Ok(Err(e))) => Err(e),
            Some(Err(_)) => Err(io::Error::other("the control thread panicked")),
        }
    }
}

impl Drop for ControlHandle {
    /// A handle dropped without [`ControlHandle::shutdown`] stops the thread in the background.
    fn drop(&mut self) {
        self.stop.take().map(|stop| stop.send(()));
    }
}

fn router(
    context: Arc<Context>,
    max_body_bytes: usize,
    requests: Arc<requests::RequestCounts>,
) -> Router {
    Router::new()
        .route("/", get(page::index))
        .route("/app.css", get(page::css))
        .route("/app.js", get(page::app_js))
        .route("/pomelo.js", get(page::pomelo_js))
        .route("/config.json", get(page::config))
        .route("/healthz", get(api::healthz))
        .route("/metrics", get(metrics::scrape))
        .route("/api/openapi.json", get(openapi::document))
        .route("/api/apps", get(admin::apps))
        .route("/api/apps/{apikey}", get(admin::app))
        .route("/api/apps/{apikey}/push", post(api::push_all))
        .route("/api/apps/{apikey}/clients", get(api::clients))
        .route(
            "/api/apps/{apikey}/clients/{client_id}",
            get(admin::client).delete(admin::disconnect),
        )
        .route("/api/apps/{apikey}/clients/{client_id}/push", post(api::push_to_client))
        .route_layer(middleware::from_fn(requests::tag_route))
        .fallback(error::not_found)
        .method_not_allowed_fallback(error::method_not_allowed)
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .layer(middleware::from_fn(deadline))
        .layer(middleware::from_fn_with_state(requests, requests::count))
        .with_state(context)
}

/// Answers 408 for a request that takes longer than [`REQUEST_TIMEOUT`] (a body trickling in).
async fn deadline(request: Request, next: Next) -> Response {
    match tokio::time::timeout(REQUEST_TIMEOUT, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            ApiError::new(StatusCode::REQUEST_TIMEOUT, "the request took too long").into_response()
        }
    }
}

/// The control thread: serves until `stopped` fires (or its sender is dropped).
fn serve(
    listener: std::net::TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    app: Router,
    stopped: oneshot::Receiver<()>,
) -> io::Result<()> {
    let runtime =
        tokio::runtime::Builder::new_current_thread().enable_io().enable_time().build()?;
    let result = runtime.block_on(async move {
        let listener = tokio::net::TcpListener::from_std(listener)?;
        let listener = idle::IdleListener::new(listener, idle::Limits::DEFAULT);
        let listener = https::ControlListener::new(listener, tls);
        let (fired, mut fired_rx) = watch::channel(false);
        let signal = async move {
            let _ = stopped.await;
            let _ = fired.send(true);
        };
        let app = app.into_make_service_with_connect_info::<https::Peer>();
        let server = axum::serve(listener, app).with_graceful_shutdown(signal);
        let grace = async move {
            let _ = fired_rx.wait_for(|&fired| fired).await;
            tokio::time::sleep(SHUTDOWN_GRACE).await;
        };
        tokio::select! {
            result = server => result,
            () = grace => {
                tracing::warn!("control port: requests still open after {SHUTDOWN_GRACE:?}, dropped");
                Ok(())
            }
        }
    });
    if let Err(e) = &result {
        tracing::error!(error = %e, "control port stopped");
    }
    result
}
