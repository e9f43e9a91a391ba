//! Issue 14, items 6 and 7: Prometheus metrics at `/metrics`, the request
//! id, and the access line. Metrics come from one recorder per process, and
//! this file's tests share a process: each asserts on what its own requests
//! add (before and after), under operation names no other test uses. The
//! access line is read from the real binary's stderr.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use common::*;
use serde_json::{Value, json};

/// The Prometheus text of `app`'s `/metrics`.
async fn scrape(app: &TestApp) -> String {
    let response = app.client.get(format!("{}/metrics", app.url)).send().await.expect("scrape");
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"].to_str().unwrap().to_string();
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    response.text().await.unwrap()
}

/// The value of the sample of `name` whose labels include `labels`
/// (summed when several match); 0 when there is none.
fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| line.rsplit_once(' '))
        .filter(|(series, _)| series == &name || series.starts_with(&format!("{name}{{")))
        .filter(|(series, _)| labels.iter().all(|(k, v)| series.contains(&format!("{k}=\"{v}\""))))
        .map(|(_, value)| value.parse::<f64>().unwrap())
        .sum()
}

/// Runs a named operation `times` times; returns the last body.
async fn run_named(app: &TestApp, token: Option<&str>, name: &str, query: &str, times: usize) -> Value {
    let mut body = Value::Null;
    for _ in 0..times {
        let mut request =
            app.client.post(format!("{}/graphql", app.url)).json(&json!({ "query": query, "operationName": name }));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        body = request.send().await.unwrap().json().await.unwrap();
    }
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_answers_prometheus_text_naming_the_metrics() {
    let app = TestApp::spawn(Db::Sqlite).await;
    run_named(&app, None, "NamingProbe", "query NamingProbe { __typename }", 1).await;
    let text = scrape(&app).await;
    for (name, kind) in [
        ("license_gateway_requests_total", "counter"),
        ("license_gateway_request_duration_seconds", "histogram"),
        ("license_gateway_requests_in_flight", "gauge"),
        ("license_gateway_db_pool_connections", "gauge"),
        ("license_gateway_db_pool_max_connections", "gauge"),
        ("license_gateway_licenses", "gauge"),
        ("license_gateway_licenses_used", "gauge"),
        ("license_gateway_sign_in_failures_total", "counter"),
    ] {
        assert!(text.contains(&format!("# TYPE {name} {kind}\n")), "no {kind} {name} in:\n{text}");
    }
    assert_eq!(sample(&text, "license_gateway_db_pool_max_connections", &[]), 8.0, "the tests' --db-max-connections");
    assert!(sample(&text, "license_gateway_db_pool_connections", &[("state", "idle")]) >= 1.0, "{text}");
    assert!(text.contains("license_gateway_db_pool_connections{state=\"in_use\"}"), "{text}");
    assert!(sample(&text, "license_gateway_requests_in_flight", &[]) >= 1.0, "the scrape itself is in flight");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_raises_its_counter_by_operation_and_outcome() {
    let app = TestApp::spawn(Db::Sqlite).await;
    let ok = [("operation", "CountedProbe"), ("outcome", "ok"), ("code", "none")];
    let refused = [("operation", "CountedPools"), ("outcome", "error"), ("code", "UNAUTHENTICATED")];
    let before = scrape(&app).await;
    run_named(&app, None, "CountedProbe", "query CountedProbe { __typename }", 3).await;
    let body = run_named(&app, None, "CountedPools", "query CountedPools { licensePools { used } }", 1).await;
    assert_eq!(error_code(&body), "UNAUTHENTICATED");
    let after = scrape(&app).await;
    let counted = |text: &str, labels: &[(&str, &str)]| sample(text, "license_gateway_requests_total", labels);
    assert_eq!(counted(&after, &ok) - counted(&before, &ok), 3.0, "{after}");
    assert_eq!(counted(&after, &refused) - counted(&before, &refused), 1.0, "{after}");
    let latency =
        |text: &str| sample(text, "license_gateway_request_duration_seconds_count", &[("operation", "CountedProbe")]);
    assert_eq!(latency(&after) - latency(&before), 3.0, "one latency sample per request");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_refused_before_graphql_ran_is_counted_with_its_code() {
    let app = TestApp::spawn(Db::Sqlite).await;
    let labels = [("operation", "unknown"), ("outcome", "error"), ("code", "BAD_REQUEST")];
    let before = scrape(&app).await;
    let request = app.client.post(format!("{}/graphql", app.url)).header("content-type", "application/json");
    let response = request.body("not json").send().await.unwrap();
    assert_eq!(response.status(), 400);
    let after = scrape(&app).await;
    let counted = |text: &str| sample(text, "license_gateway_requests_total", &labels);
    assert_eq!(counted(&after) - counted(&before), 1.0, "{after}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operation_over_a_limit_is_counted_with_its_name_and_code() {
    let app = TestApp::spawn_flags(Db::Sqlite, &["--max-aliases", "1"]).await;
    let labels = [("operation", "OverLimit"), ("outcome", "error"), ("code", "QUERY_TOO_COMPLEX")];
    let before = scrape(&app).await;
    let body = run_named(&app, None, "OverLimit", "query OverLimit { a: __typename b: __typename }", 1).await;
    assert_eq!(error_code(&body), "QUERY_TOO_COMPLEX");
    let after = scrape(&app).await;
    let counted = |text: &str| sample(text, "license_gateway_requests_total", &labels);
    assert_eq!(counted(&after) - counted(&before), 1.0, "{after}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operation_name_that_is_no_short_graphql_name_counts_as_other() {
    let app = TestApp::spawn(Db::Sqlite).await;
    let long = format!("Q{}", "x".repeat(100));
    let spaced = "two words";
    let other = [("operation", "other")];
    let before = scrape(&app).await;
    run_named(&app, None, &long, &format!("query {long} {{ __typename }}"), 1).await;
    run_named(&app, None, spaced, "query Spaced { __typename }", 1).await;
    let after = scrape(&app).await;
    let counted = |text: &str| sample(text, "license_gateway_requests_total", &other);
    assert_eq!(counted(&after) - counted(&before), 2.0, "{after}");
    assert!(!after.contains(&long) && !after.contains(spaced), "a client's text became a label:\n{after}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_change_raises_the_refusals_counter_with_its_code_and_rule() {
    let app = TestApp::spawn(Db::Sqlite).await;
    let site = app.site("Refusals", &[("CASE", 1)], false).await;
    let case = site.profile(&app, "Case", &["CASE"]).await;
    site.user(&app, "Una User", &case).await;
    let r4 = [("code", "LICENSE_LIMIT_EXCEEDED"), ("rule", "R4")];
    let forbidden = [("code", "FORBIDDEN")];
    let before = scrape(&app).await;
    let person = site.person(&app, "Otto Over").await;
    let refused = site.try_login(&app, &person, "otto", &case, None).await;
    assert_eq!(refused["__typename"], "LicenseLimitExceeded", "{refused}");
    let user_token = app.sign_in("una.user", PASSWORD).await;
    let denied = app
        .gql(
            Some(&user_token),
            "mutation($i: CreatePersonInput!) { createPerson(input: $i) { __typename } }",
            json!({ "i": { "name": "Not Allowed" } }),
        )
        .await;
    assert_eq!(error_code(&denied), "FORBIDDEN");
    let after = scrape(&app).await;
    let refusals = |text: &str, labels: &[(&str, &str)]| sample(text, "license_gateway_refusals_total", labels);
    assert_eq!(refusals(&after, &r4) - refusals(&before, &r4), 1.0, "{after}");
    assert_eq!(refusals(&after, &forbidden) - refusals(&before, &forbidden), 1.0, "{after}");
    let refused_requests = [("outcome", "refused"), ("code", "LICENSE_LIMIT_EXCEEDED")];
    let requests = |text: &str| sample(text, "license_gateway_requests_total", &refused_requests);
    assert_eq!(requests(&after) - requests(&before), 1.0, "the request's outcome is `refused`");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_sign_in_raises_the_sign_in_failure_counter_by_reason() {
    let app = TestApp::spawn(Db::Sqlite).await;
    let site = app.site("SignIns", &[("CASE", 2)], false).await;
    let case = site.profile(&app, "Case", &["CASE"]).await;
    let user = site.user(&app, "Eve Expiring", &case).await;
    let yesterday = license_gateway::domain::Date::today().plus_days(-1).format();
    let expire = "mutation($id: ID!, $d: Date) { updateLogin(id: $id, input: { validUntil: $d }) { __typename } }";
    app.ok(Some(&site.admin_token), expire, json!({ "id": user, "d": yesterday })).await;
    let before = scrape(&app).await;
    let sign_in =
        "mutation($u: String!, $p: String!) { signIn(username: $u, password: $p) { ... on SignInRefused { code } } }";
    let wrong = app.ok(None, sign_in, json!({ "u": "operator", "p": "not the password" })).await;
    assert_eq!(wrong["signIn"]["code"], "INVALID_CREDENTIALS");
    let expired = app.ok(None, sign_in, json!({ "u": "eve.expiring", "p": PASSWORD })).await;
    assert_eq!(expired["signIn"]["code"], "LOGIN_EXPIRED");
    let after = scrape(&app).await;
    let failures = |text: &str, reason| sample(text, "license_gateway_sign_in_failures_total", &[("reason", reason)]);
    assert_eq!(failures(&after, "invalid_credentials") - failures(&before, "invalid_credentials"), 1.0, "{after}");
    assert_eq!(failures(&after, "login_expired") - failures(&before, "login_expired"), 1.0, "{after}");
}

both_backends! {
    async fn license_usage_per_module_is_reported_summed_over_sites(db: Db) {
        let app = TestApp::spawn(db).await;
        let first = app.site("Usage One", &[("CASE", 5), ("DOCUMENT", 3)], false).await;
        let second = app.site("Usage Two", &[("CASE", 4)], false).await;
        let case = first.profile(&app, "Case", &["CASE"]).await;
        first.user(&app, "Ann One", &case).await;
        first.user(&app, "Ben One", &case).await;
        let case_two = second.profile(&app, "Case", &["CASE"]).await;
        second.user(&app, "Cy Two", &case_two).await;
        let text = scrape(&app).await;
        let gauge = |name, module| sample(&text, name, &[("module", module)]);
        assert_eq!(gauge("license_gateway_licenses", "CASE"), 9.0, "{text}");
        assert_eq!(gauge("license_gateway_licenses_used", "CASE"), 3.0, "{text}");
        assert_eq!(gauge("license_gateway_licenses", "DOCUMENT"), 3.0, "{text}");
        assert_eq!(gauge("license_gateway_licenses_used", "DOCUMENT"), 0.0, "{text}");
    }
}

both_backends! {
    async fn license_usage_per_site_is_reported_when_the_operator_asks_for_it(db: Db) {
        let app = TestApp::spawn_flags(db, &["--metrics-per-site"]).await;
        let site = app.site("Per Site", &[("CASE", 6)], false).await;
        let case = site.profile(&app, "Case", &["CASE"]).await;
        site.user(&app, "Pat Site", &case).await;
        let text = scrape(&app).await;
        let labels = [("site", site.id.as_str()), ("module", "CASE")];
        assert_eq!(sample(&text, "license_gateway_site_licenses", &labels), 6.0, "{text}");
        assert_eq!(sample(&text, "license_gateway_site_licenses_used", &labels), 1.0, "{text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_can_be_turned_off() {
    let app = TestApp::spawn_flags(Db::Sqlite, &["--metrics", "false"]).await;
    let response = app.client.get(format!("{}/metrics", app.url)).send().await.unwrap();
    assert_eq!(response.status(), 404);
}

/// The `x-request-id` of the answer to a request sent with `id`.
async fn echoed_request_id(app: &TestApp, id: Option<&str>) -> String {
    let mut request = app.client.post(format!("{}/graphql", app.url)).json(&json!({ "query": "{ __typename }" }));
    if let Some(id) = id {
        request = request.header("x-request-id", id);
    }
    let response = request.send().await.unwrap();
    response.headers().get("x-request-id").expect("x-request-id in the answer").to_str().unwrap().to_string()
}

fn made_id(id: &str) -> bool {
    id.len() == 16 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_given_request_id_is_echoed_and_a_missing_or_unusable_one_is_made() {
    let app = TestApp::spawn(Db::Sqlite).await;
    assert_eq!(echoed_request_id(&app, Some("client-id_42.a:b")).await, "client-id_42.a:b");
    let made = echoed_request_id(&app, None).await;
    assert!(made_id(&made), "{made}");
    assert_ne!(echoed_request_id(&app, None).await, made, "each request gets its own");
    for unusable in ["has spaces", "quote\"d", &"x".repeat(65)] {
        let replaced = echoed_request_id(&app, Some(unusable)).await;
        assert!(made_id(&replaced), "{unusable:?} was answered with {replaced:?}");
    }
}

/// The real binary, on a fresh SQLite file, with its stderr lines arriving
/// on a channel. Killed when dropped.
struct Binary {
    child: Child,
    url: String,
    operator_password: String,
    stderr: Receiver<String>,
    seen: Vec<String>,
}

impl Binary {
    async fn start(log_format: Option<&str>) -> Binary {
        Binary::start_on(&fresh_database(Db::Sqlite).await, log_format)
    }

    /// The binary on `database_url`; `operator_password` is empty unless
    /// this start created the operator.
    fn start_on(database_url: &str, log_format: Option<&str>) -> Binary {
        let mut command = Command::new(env!("CARGO_BIN_EXE_license-gateway"));
        command
            .args(["--database-url", database_url, "--listen", "127.0.0.1:0"])
            .env_remove("RUST_LOG")
            .env_remove("LOG_FORMAT")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(format) = log_format {
            command.env("LOG_FORMAT", format);
        }
        let mut child = command.spawn().expect("start the binary");
        let stderr = lines(child.stderr.take().unwrap());
        let stdout = lines(child.stdout.take().unwrap());
        let (mut url, mut operator_password) = (None, None);
        while url.is_none() {
            let line = stdout.recv_timeout(Duration::from_secs(30)).expect("the binary says where it listens");
            if let Some(rest) = line.split("password `").nth(1) {
                operator_password = rest.split('`').next().map(str::to_string);
            }
            if let Some(rest) = line.strip_prefix("license-gateway listening on ") {
                url = rest.split('/').nth(2).map(|addr| format!("http://{addr}"));
            }
        }
        Binary {
            child,
            url: url.unwrap(),
            operator_password: operator_password.unwrap_or_default(),
            stderr,
            seen: Vec::new(),
        }
    }

    /// The first stderr line containing `needle` (waiting for it).
    fn line_with(&mut self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(line) = self.seen.iter().find(|l| l.contains(needle)) {
                return line.clone();
            }
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self
                .stderr
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("no line with {needle:?} in {:#?}", self.seen));
            self.seen.push(line);
        }
    }

    async fn post(&self, body: Value, token: Option<&str>, request_id: &str) -> Value {
        let mut request =
            reqwest::Client::new().post(format!("{}/graphql", self.url)).header("x-request-id", request_id).json(&body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.unwrap().json().await.unwrap()
    }
}

impl Drop for Binary {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The lines of `source`, read on a thread of their own.
fn lines(source: impl std::io::Read + Send + 'static) -> Receiver<String> {
    let (send, receive) = channel();
    std::thread::spawn(move || {
        for line in BufReader::new(source).lines().map_while(Result::ok) {
            if send.send(line).is_err() {
                break;
            }
        }
    });
    receive
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_access_line_names_the_request_in_json_and_never_its_token_or_password() {
    let mut binary = Binary::start(Some("json")).await;
    let sign_in = "mutation SignIn($u: String!, $p: String!) { signIn(username: $u, password: $p) { ... on SignInSuccess { token } } }";
    let password = binary.operator_password.clone();
    assert!(!password.is_empty(), "the first start prints the operator's password");
    let body = json!({ "query": sign_in, "operationName": "SignIn", "variables": { "u": "operator", "p": password } });
    let signed_in = binary.post(body, None, "access-sign-in").await;
    let token = signed_in["data"]["signIn"]["token"].as_str().expect("a token").to_string();
    let body = json!({ "query": "query Who { viewer { username } }", "operationName": "Who" });
    binary.post(body, Some(&token), "access-who").await;

    let line: Value = serde_json::from_str(&binary.line_with("\"access-who\"")).expect("one JSON object a line");
    assert_eq!(line["level"], "INFO");
    assert_eq!(line["method"], "POST");
    assert_eq!(line["path"], "/graphql");
    assert_eq!(line["status"], 200);
    assert_eq!(line["operation"], "Who");
    assert_eq!(line["principal"], "operator");
    assert_eq!(line["outcome"], "ok");
    assert!(line["statements"].as_u64().is_some_and(|n| n >= 1), "the session was checked: {line}");
    assert!(line["duration_ms"].as_f64().is_some_and(|ms| ms > 0.0), "{line}");
    let sign_in_line: Value = serde_json::from_str(&binary.line_with("\"access-sign-in\"")).unwrap();
    assert_eq!(sign_in_line["principal"], "anonymous");
    assert_eq!(sign_in_line["operation"], "SignIn");
    let log = binary.seen.join("\n");
    assert!(!log.contains(&token), "a token in the log:\n{log}");
    assert!(!log.contains(&password), "a password in the log:\n{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_request_is_logged_with_its_outcome_and_code() {
    let mut binary = Binary::start(Some("json")).await;
    let sign_in = "mutation Wrong { signIn(username: \"operator\", password: \"wrong password\") { __typename } }";
    binary.post(json!({ "query": sign_in }), None, "access-wrong").await;
    binary.post(json!({ "query": "{ viewer { username } }" }), Some("no-such-token"), "access-bad-token").await;
    let wrong: Value = serde_json::from_str(&binary.line_with("\"access-wrong\"")).unwrap();
    assert_eq!((wrong["outcome"].as_str(), wrong["code"].as_str()), (Some("refused"), Some("INVALID_CREDENTIALS")));
    let bad: Value = serde_json::from_str(&binary.line_with("\"access-bad-token\"")).unwrap();
    assert_eq!((bad["outcome"].as_str(), bad["code"].as_str()), (Some("error"), Some("UNAUTHENTICATED")));
    assert_eq!(bad["principal"], "unauthenticated");
    assert!(!binary.seen.join("\n").contains("no-such-token"), "a token in the log");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_logs_carry_no_ansi_codes_when_stderr_is_a_pipe() {
    let mut binary = Binary::start(None).await;
    binary.post(json!({ "query": "query Plain { __typename }", "operationName": "Plain" }), None, "text-line").await;
    let line = binary.line_with("text-line");
    assert!(line.contains("operation=\"Plain\""), "{line}");
    let log = binary.seen.join("\n");
    assert!(!log.contains('\u{1b}'), "ANSI codes in piped logs:\n{log:?}");
}

both_backends! {
    /// On PostgreSQL `changeLoginProfile` may run on a session this process
    /// checked before, guarded in the statement that writes (no lookup): the
    /// access line still names the principal's kind.
    async fn the_access_line_names_the_principal_of_a_guarded_change(db: Db) {
        let app = TestApp::spawn(db).await;
        let site = app.site("Guarded", &[("CASE", 3)], false).await;
        let case = site.profile(&app, "Case", &["CASE"]).await;
        let user = site.user(&app, "Gus Guarded", &case).await;
        let mut binary = Binary::start_on(&app.database_url, Some("json"));
        let token = Some(site.admin_token.as_str());
        binary.post(json!({ "query": "query Me { viewer { username } }" }), token, "guarded-read").await;
        let change = "mutation Move($id: ID!, $p: ID!) { changeLoginProfile(id: $id, profileId: $p) { __typename } }";
        let body = json!({ "query": change, "variables": { "id": user, "p": site.parking_profile } });
        let moved = binary.post(body, token, "guarded-move").await;
        assert_eq!(moved["data"]["changeLoginProfile"]["__typename"], "UpdateLoginSuccess", "{moved}");
        let line: Value = serde_json::from_str(&binary.line_with("\"guarded-move\"")).unwrap();
        assert_eq!(line["operation"], "Move");
        assert_eq!(line["principal"], "site_administrator", "{line}");
        assert_eq!(line["outcome"], "ok");
    }
}
