//! What the gateway tells its operators: Prometheus metrics at `GET /metrics`,
//! one access line per request with a request id, and the log output itself
//! (text or JSON). The GraphQL handler only attaches a [`RequestSummary`] to
//! its response; [`access::ObserveLayer`] turns it into the access line and
//! the request metrics, so the request path has one place that observes it.

pub mod access;
pub mod logs;
pub mod metrics;

use std::sync::Arc;

use axum::Router;
use axum::routing::get;

pub use access::{PrincipalKind, RequestSummary, operation_name, refusals_during};
pub use logs::LogFormat;
pub use metrics::{record_password_check, record_refusal, record_sign_in_refusal};

use crate::store::Store;

/// The observability settings of one server: whether it serves `/metrics`,
/// and with what.
#[derive(Clone)]
pub struct Observability {
    metrics: Option<Arc<metrics::Endpoint>>,
}

impl Observability {
    /// Installs the process's metrics recorder (once per process) when
    /// `enabled`, so that `/metrics` reports this server's `store`;
    /// `per_site` adds license usage per site.
    pub fn new(enabled: bool, per_site: bool, store: &Store) -> Self {
        let metrics = enabled.then(|| Arc::new(metrics::Endpoint::new(store.clone(), per_site)));
        Observability { metrics }
    }

    /// `routes` with `GET /metrics` when enabled. The request id, the access
    /// line and the request metrics come from [`access::ObserveLayer`], a
    /// layer around every request (`http::service`).
    pub fn routes<S: Clone + Send + Sync + 'static>(&self, routes: Router<S>) -> Router<S> {
        match &self.metrics {
            Some(endpoint) => routes.route("/metrics", get(metrics::scrape).with_state(endpoint.clone())),
            None => routes,
        }
    }
}
