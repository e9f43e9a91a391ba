//! Prometheus metrics through `metrics` and `metrics-exporter-prometheus`:
//! every metric's name is here, with what it counts. Labels are bounded:
//! operation names are a client's text, so only short GraphQL names are
//! used, and only the first [`OPERATION_LABELS`] distinct ones; the rest
//! count as `other`. License usage and the connection pool are read when
//! `/metrics` is scraped, never on the request path.

use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap};
use std::sync::{OnceLock, RwLock};
use std::time::Duration;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use metrics::{
    Counter, Gauge, Histogram, counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram,
};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use super::access::{RequestSummary, note_refusal};
use crate::service::auth::SignInRefusal;
use crate::store::{LicenseUsage, Store};

/// GraphQL requests, by `operation` and `outcome` (`ok`, `refused`, `error`)
/// and `code` (the first error's or refusal's code; `none` when ok).
pub const REQUESTS: &str = "license_gateway_requests_total";
/// Seconds from a GraphQL request's arrival to its answer, by `operation`.
pub const REQUEST_DURATION: &str = "license_gateway_request_duration_seconds";
/// HTTP requests being answered now.
pub const IN_FLIGHT: &str = "license_gateway_requests_in_flight";
/// Refused changes, by `code` and `rule` (refusals as data, and FORBIDDEN).
pub const REFUSALS: &str = "license_gateway_refusals_total";
/// Failed sign-ins, by `reason` (`invalid_credentials`, `login_expired`,
/// `throttled`: refused by the sign-in throttle without a password check).
pub const SIGN_IN_FAILURES: &str = "license_gateway_sign_in_failures_total";
/// Passwords checked against a hash by sign-in (Argon2), a dummy hash for
/// an unknown username included: one per sign-in the throttle admitted.
pub const PASSWORD_CHECKS: &str = "license_gateway_password_checks_total";
/// Database connections of this process, by `state` (`in_use`, `idle`).
pub const POOL_CONNECTIONS: &str = "license_gateway_db_pool_connections";
/// Most database connections this process opens.
pub const POOL_MAX: &str = "license_gateway_db_pool_max_connections";
/// Licenses bought (pool totals), by `module`, summed over sites.
pub const LICENSES: &str = "license_gateway_licenses";
/// Licenses in use, by `module`, summed over sites.
pub const LICENSES_USED: &str = "license_gateway_licenses_used";
/// Licenses bought, by `site` (its global id) and `module` (`--metrics-per-site`).
pub const SITE_LICENSES: &str = "license_gateway_site_licenses";
/// Licenses in use, by `site` and `module` (`--metrics-per-site`).
pub const SITE_LICENSES_USED: &str = "license_gateway_site_licenses_used";
/// WebSocket connections (subscriptions) open now.
pub const WEBSOCKET_CONNECTIONS: &str = "license_gateway_websocket_connections";
/// WebSocket connections the server closed, by close `code` (4403 session,
/// 4408 no connection_init, 1001 shutdown, 1008 slow client, 1009 message too big, ...).
pub const WEBSOCKET_CLOSES: &str = "license_gateway_websocket_closes_total";
/// Subscriptions running now, over all connections.
pub const SUBSCRIPTIONS: &str = "license_gateway_subscriptions";
/// Events sent to subscribers, by `field` (`licensePools`, `auditEvents`):
/// one per subscriber and event.
pub const SUBSCRIPTION_DELIVERIES: &str = "license_gateway_subscription_deliveries_total";

/// Most distinct operation names used as labels; later ones count as `other`.
pub const OPERATION_LABELS: usize = 64;
/// Most distinct error codes and refusal rules used as labels.
const CODE_LABELS: usize = 64;
/// Longest operation name used as a label or logged.
const MAX_NAME: usize = 64;

/// Latency buckets, in seconds: 1 ms to 10 s.
const DURATION_BUCKETS: &[f64] = &[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// How often histograms are folded even when nobody scrapes, so their
/// samples do not pile up between scrapes.
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// The process's recorder, once installed.
static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// The in-flight gauge, registered once the recorder is installed.
static IN_FLIGHT_GAUGE: OnceLock<Gauge> = OnceLock::new();

/// The subscription gauges and delivery counters, registered once the
/// recorder is installed: a delivery, counted once per subscriber and
/// event, costs an atomic add.
struct LiveHandles {
    connections: Gauge,
    subscriptions: Gauge,
    pools: Counter,
    audit: Counter,
}

static LIVE_HANDLES: OnceLock<LiveHandles> = OnceLock::new();

thread_local! {
    /// The request counter and histogram of each (operation, outcome, code)
    /// this thread has counted, registered on its first use: a request then
    /// costs a lookup in memory no other thread touches, not a registration.
    /// Bounded as the label values are.
    static REQUEST_HANDLES: RefCell<HashMap<RequestLabels, (Counter, Histogram)>> = RefCell::new(HashMap::new());
}

type RequestLabels = (&'static str, &'static str, &'static str);

/// Installs the Prometheus recorder, once per process (tests start several
/// servers in one), and returns its handle.
pub fn install() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let handle = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Full(REQUEST_DURATION.into()), DURATION_BUCKETS)
                .expect("buckets are not empty")
                .install_recorder()
                .expect("no other metrics recorder is installed");
            describe();
            let _ = IN_FLIGHT_GAUGE.set(gauge!(IN_FLIGHT));
            let _ = LIVE_HANDLES.set(LiveHandles {
                connections: gauge!(WEBSOCKET_CONNECTIONS),
                subscriptions: gauge!(SUBSCRIPTIONS),
                pools: counter!(SUBSCRIPTION_DELIVERIES, "field" => "licensePools"),
                audit: counter!(SUBSCRIPTION_DELIVERIES, "field" => "auditEvents"),
            });
            let upkeep = handle.clone();
            std::thread::Builder::new()
                .name("metrics-upkeep".into())
                .spawn(move || {
                    loop {
                        std::thread::sleep(UPKEEP_EVERY);
                        upkeep.run_upkeep();
                    }
                })
                .expect("start the metrics upkeep thread");
            handle
        })
        .clone()
}

fn describe() {
    describe_counter!(REQUESTS, "GraphQL requests by operation, outcome (ok, refused, error) and code.");
    describe_histogram!(REQUEST_DURATION, metrics::Unit::Seconds, "GraphQL request duration by operation.");
    describe_gauge!(IN_FLIGHT, "HTTP requests being answered now.");
    describe_counter!(REFUSALS, "Refused changes by code and rule.");
    describe_counter!(SIGN_IN_FAILURES, "Failed sign-ins by reason.");
    // Every reason is reported from the start, so a rate needs no first failure.
    for refusal in [
        SignInRefusal::InvalidCredentials,
        SignInRefusal::LoginExpired,
        SignInRefusal::Throttled { retry_after_seconds: 0 },
    ] {
        counter!(SIGN_IN_FAILURES, "reason" => sign_in_reason(refusal).0).absolute(0);
    }
    describe_counter!(PASSWORD_CHECKS, "Passwords checked by sign-in (Argon2), unknown usernames included.");
    counter!(PASSWORD_CHECKS).absolute(0);
    describe_gauge!(POOL_CONNECTIONS, "Database connections of this process by state (in_use, idle).");
    describe_gauge!(POOL_MAX, "Most database connections this process opens.");
    describe_gauge!(LICENSES, "Licenses bought (pool totals) by module, over all sites.");
    describe_gauge!(LICENSES_USED, "Licenses in use by module, over all sites.");
    describe_gauge!(SITE_LICENSES, "Licenses bought by site and module.");
    describe_gauge!(SITE_LICENSES_USED, "Licenses in use by site and module.");
    describe_gauge!(WEBSOCKET_CONNECTIONS, "WebSocket connections (subscriptions) open now.");
    describe_counter!(WEBSOCKET_CLOSES, "WebSocket connections the server closed, by close code.");
    describe_gauge!(SUBSCRIPTIONS, "Subscriptions running now.");
    describe_counter!(SUBSCRIPTION_DELIVERIES, "Events sent to subscribers, by field, one per subscriber and event.");
}

/// Whether `name` is a GraphQL name of at most [`MAX_NAME`] characters.
pub fn is_short_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    let first_ok = bytes.next().is_some_and(|b| b.is_ascii_alphabetic() || b == b'_');
    first_ok && name.len() <= MAX_NAME && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// A bounded set of label values: the first `cap` distinct values are kept
/// (leaked once, so a label costs no allocation afterwards); others get
/// `other`.
struct Labels {
    cap: usize,
    seen: RwLock<BTreeSet<&'static str>>,
}

impl Labels {
    const fn new(cap: usize) -> Self {
        Labels { cap, seen: RwLock::new(BTreeSet::new()) }
    }

    fn get(&self, value: &str) -> &'static str {
        {
            let seen = self.seen.read().unwrap_or_else(|e| e.into_inner());
            if let Some(known) = seen.get(value) {
                return known;
            }
            // Full: a flood of new values never takes the write lock.
            if seen.len() >= self.cap {
                return "other";
            }
        }
        let mut seen = self.seen.write().unwrap_or_else(|e| e.into_inner());
        if let Some(known) = seen.get(value) {
            return known;
        }
        if seen.len() >= self.cap {
            return "other";
        }
        let leaked: &'static str = Box::leak(value.to_owned().into_boxed_str());
        seen.insert(leaked);
        leaked
    }
}

static OPERATIONS: Labels = Labels::new(OPERATION_LABELS);
static CODES: Labels = Labels::new(CODE_LABELS);

/// The label of an operation name.
fn operation_label(name: &str) -> &'static str {
    if is_short_name(name) { OPERATIONS.get(name) } else { "other" }
}

/// Counts a finished GraphQL request and its duration.
pub(super) fn record_request(summary: &RequestSummary, elapsed: Duration) {
    if HANDLE.get().is_none() {
        return;
    }
    let operation = operation_label(&summary.operation);
    let code = match summary.outcome.code() {
        "" => "none",
        code => CODES.get(code),
    };
    let outcome = summary.outcome.as_str();
    REQUEST_HANDLES.with_borrow_mut(|handles| {
        let (requests, duration) = handles.entry((operation, outcome, code)).or_insert_with(|| {
            (
                counter!(REQUESTS, "operation" => operation, "outcome" => outcome, "code" => code),
                histogram!(REQUEST_DURATION, "operation" => operation),
            )
        });
        requests.increment(1);
        duration.record(elapsed.as_secs_f64());
    });
}

/// Moves the in-flight gauge by `delta` (once the recorder is installed).
pub(super) fn in_flight(delta: f64) {
    if let Some(gauge) = IN_FLIGHT_GAUGE.get() {
        gauge.increment(delta);
    }
}

/// Counts a refused change (`code`, `rule`), and notes it for the request's
/// access line.
pub fn record_refusal(code: &'static str, rule: &str) {
    counter!(REFUSALS, "code" => code, "rule" => CODES.get(rule)).increment(1);
    note_refusal(code);
}

/// Counts a failed sign-in, and notes it for the request's access line.
pub fn record_sign_in_refusal(refusal: SignInRefusal) {
    let (reason, code) = sign_in_reason(refusal);
    counter!(SIGN_IN_FAILURES, "reason" => reason).increment(1);
    note_refusal(code);
}

/// A failed sign-in's `reason` label and its refusal code.
fn sign_in_reason(refusal: SignInRefusal) -> (&'static str, &'static str) {
    match refusal {
        SignInRefusal::InvalidCredentials => ("invalid_credentials", "INVALID_CREDENTIALS"),
        SignInRefusal::LoginExpired => ("login_expired", "LOGIN_EXPIRED"),
        SignInRefusal::Throttled { .. } => ("throttled", "TOO_MANY_ATTEMPTS"),
    }
}

/// Counts a password checked by sign-in.
pub fn record_password_check() {
    counter!(PASSWORD_CHECKS).increment(1);
}

/// An open WebSocket connection, counted until dropped.
pub struct WebSocketOpen(());

impl WebSocketOpen {
    pub fn start() -> WebSocketOpen {
        if let Some(h) = LIVE_HANDLES.get() {
            h.connections.increment(1.0);
        }
        WebSocketOpen(())
    }
}

impl Drop for WebSocketOpen {
    fn drop(&mut self) {
        if let Some(h) = LIVE_HANDLES.get() {
            h.connections.decrement(1.0);
        }
    }
}

/// Moves the running-subscriptions gauge by `delta`.
pub fn subscriptions(delta: f64) {
    if let Some(h) = LIVE_HANDLES.get() {
        h.subscriptions.increment(delta);
    }
}

/// Which subscription field delivered an event.
#[derive(Debug, Clone, Copy)]
pub enum Delivery {
    LicensePools,
    AuditEvents,
}

/// Counts one event sent to one subscriber.
pub fn record_delivery(field: Delivery) {
    if let Some(h) = LIVE_HANDLES.get() {
        match field {
            Delivery::LicensePools => h.pools.increment(1),
            Delivery::AuditEvents => h.audit.increment(1),
        }
    }
}

/// Counts a WebSocket connection the server closed with `code`.
pub fn record_websocket_close(code: u16) {
    if HANDLE.get().is_some() {
        let mut buffer = itoa::Buffer::new();
        counter!(WEBSOCKET_CLOSES, "code" => buffer.format(code).to_owned()).increment(1);
    }
}

/// What `/metrics` reports besides the counters: this server's store.
pub struct Endpoint {
    handle: PrometheusHandle,
    store: Store,
    per_site: bool,
}

impl Endpoint {
    /// Installs the recorder (if not yet) for a server on `store`.
    pub fn new(store: Store, per_site: bool) -> Self {
        Endpoint { handle: install(), store, per_site }
    }

    /// Sets the pool and license gauges from this server's store (one
    /// statement).
    async fn refresh(&self) {
        let pool = self.store.pool_connections();
        gauge!(POOL_CONNECTIONS, "state" => "in_use").set(f64::from(pool.size - pool.idle));
        gauge!(POOL_CONNECTIONS, "state" => "idle").set(f64::from(pool.idle));
        gauge!(POOL_MAX).set(f64::from(pool.max));
        match self.store.license_usage(self.per_site).await {
            Ok(usage) => set_license_gauges(&usage),
            Err(e) => tracing::warn!(error = %e, "could not read license usage for /metrics"),
        }
    }
}

fn set_license_gauges(usage: &[LicenseUsage]) {
    for row in usage {
        let module = row.module.clone();
        match row.site {
            None => {
                gauge!(LICENSES, "module" => module.clone()).set(row.total as f64);
                gauge!(LICENSES_USED, "module" => module).set(row.used as f64);
            }
            Some(site) => {
                let site = crate::graphql::ids::encode(crate::graphql::ids::Kind::Site, site.0).0;
                gauge!(SITE_LICENSES, "site" => site.clone(), "module" => module.clone()).set(row.total as f64);
                gauge!(SITE_LICENSES_USED, "site" => site, "module" => module).set(row.used as f64);
            }
        }
    }
}

/// `GET /metrics`: the Prometheus text. One scrape at a time per process,
/// so that gauges set from this server's store are the ones rendered (and
/// a flood of scrapes costs the database one statement at a time).
pub async fn scrape(State(endpoint): State<std::sync::Arc<Endpoint>>) -> impl IntoResponse {
    static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    let _turn = ONE_AT_A_TIME.lock().await;
    endpoint.refresh().await;
    endpoint.handle.run_upkeep();
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], endpoint.handle.render())
}
