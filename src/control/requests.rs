//! Requests to the control port by route and status (`shaddock_http_requests_total{route,
//! status}`), so that 401s, 404s and 429s show: the route is the router's pattern
//! (`/api/apps/{apikey}/push`), never the path asked for, and `unmatched` for what no route
//! took, so the labels stay a handful whatever clients send.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;

/// The counts, shared by the middleware and the scrape.
#[derive(Debug, Default)]
pub struct RequestCounts {
    counts: Mutex<BTreeMap<(Arc<str>, u16), u64>>,
}

impl RequestCounts {
    fn note(&self, route: &Arc<str>, status: u16) {
        let mut counts = self.counts.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        *counts.entry((Arc::clone(route), status)).or_default() += 1;
    }

    /// Every (route, status) seen, with its count, in order.
    pub fn snapshot(&self) -> Vec<(Arc<str>, u16, u64)> {
        let counts = self.counts.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        counts.iter().map(|((route, status), n)| (Arc::clone(route), *status, *n)).collect()
    }
}

/// The route that answered, put on the response by [`tag_route`] for [`count`].
#[derive(Debug, Clone)]
struct Route(Arc<str>);

/// A route layer: tags the response with the route's pattern.
pub(super) async fn tag_route(matched: MatchedPath, request: Request, next: Next) -> Response {
    let route = Route(Arc::from(matched.as_str()));
    let mut response = next.run(request).await;
    response.extensions_mut().insert(route);
    response
}

/// The outermost layer: counts every answer by its route (or `unmatched`) and status.
pub(super) async fn count(
    State(counts): State<Arc<RequestCounts>>,
    request: Request,
    next: Next,
) -> Response {
    let response = next.run(request).await;
    let unmatched = || Arc::from("unmatched");
    let route = response.extensions().get::<Route>().map_or_else(unmatched, |r| Arc::clone(&r.0));
    counts.note(&route, response.status().as_u16());
    response
}
