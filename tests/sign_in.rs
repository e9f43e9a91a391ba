//! Sign-in abuse is bounded: failed sign-ins are counted per username and
//! per client address in the database (so every instance enforces them),
//! past a limit sign-in is refused without a password check and says when
//! to try again, a request signs in at most once, and unknown usernames cost
//! and answer exactly like known ones. New passwords follow the password
//! policy (at least 12 characters, not easy to guess).

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use common::*;
use license_gateway::store::{PoolSettings, Store};
use serde_json::{Value, json};

const SIGN_IN: &str = "mutation($u: String!, $p: String!) { signIn(username: $u, password: $p) { __typename \
                       ... on Refusal { code message } ... on SignInThrottled { retryAfterSeconds } } }";

/// One sign-in attempt; returns the `signIn` result.
async fn attempt(app: &TestApp, username: &str, password: &str) -> Value {
    app.ok(None, SIGN_IN, json!({ "u": username, "p": password })).await["signIn"].clone()
}

/// One sign-in attempt with `header` (e.g. `X-Forwarded-For`) set to `value`.
async fn attempt_with(app: &TestApp, header: &str, value: &str, username: &str, password: &str) -> Value {
    let body = json!({ "query": SIGN_IN, "variables": { "u": username, "p": password } });
    let response = app.client.post(format!("{}/graphql", app.url)).header(header, value).json(&body).send().await;
    let body: Value = response.expect("request").json().await.expect("json body");
    assert!(body.get("errors").is_none(), "unexpected errors: {body:#}");
    body["data"]["signIn"].clone()
}

/// Asserts that `result` is a throttled refusal; returns its `retryAfterSeconds`.
fn throttled(result: &Value) -> i64 {
    assert_eq!(result["__typename"], "SignInThrottled", "{result}");
    assert_eq!(result["code"], "TOO_MANY_ATTEMPTS", "{result}");
    let retry = result["retryAfterSeconds"].as_i64().unwrap_or_else(|| panic!("no retryAfterSeconds: {result}"));
    assert!(retry >= 1, "{result}");
    retry
}

fn invalid(result: &Value) {
    assert_eq!(result["__typename"], "SignInRefused", "{result}");
    assert_eq!(result["code"], "INVALID_CREDENTIALS", "{result}");
}

fn success(result: &Value) {
    assert_eq!(result["__typename"], "SignInSuccess", "{result}");
}

both_backends! {
    /// Three wrong passwords (the limit) for a username, then the right one:
    /// refused without a check, with the time to wait, whatever the case of
    /// the username. Once the lockout ends sign-in works again, and a second
    /// lockout of the same username lasts longer than the first.
    async fn wrong_passwords_past_the_limit_lock_the_username_even_for_the_right_one(db: Db) {
        let app = TestApp::spawn_flags(db, &["--sign-in-max-failures", "3", "--sign-in-lockout-seconds", "2"]).await;
        let password = app.operator_password.clone();
        for i in 0..3 {
            invalid(&attempt(&app, "operator", &format!("wrong password {i}")).await);
        }
        let first = throttled(&attempt(&app, "operator", &password).await);
        assert!(first <= 2, "the first lockout lasts 2 s: {first}");
        throttled(&attempt(&app, "OPERATOR", &password).await);

        tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
        for i in 0..3 {
            invalid(&attempt(&app, "operator", &format!("wrong again {i}")).await);
        }
        let second = throttled(&attempt(&app, "operator", &password).await);
        assert!(second >= 3, "the second lockout (4 s) is longer than the first: {second}");
    }
}

both_backends! {
    /// Two gateway instances on one database share the count: failures on
    /// either lock the username on both.
    async fn the_lockout_holds_across_instances(db: Db) {
        let flags = ["--sign-in-max-failures", "3"];
        let one = TestApp::spawn_flags(db, &flags).await;
        let two = one.another_instance_flags(&flags).await;
        invalid(&attempt(&one, "operator", "wrong password 1").await);
        invalid(&attempt(&two, "operator", "wrong password 2").await);
        invalid(&attempt(&one, "operator", "wrong password 3").await);
        throttled(&attempt(&two, "operator", &one.operator_password).await);
        throttled(&attempt(&one, "operator", &one.operator_password).await);
    }
}

both_backends! {
    /// Twenty wrong passwords at once, half through each of two instances:
    /// exactly the limit of them are checked, every other one is refused
    /// unchecked. The database decides, so no race lets more through.
    async fn concurrent_attempts_check_no_more_passwords_than_the_limit(db: Db) {
        let flags = ["--sign-in-max-failures", "3"];
        let one = std::sync::Arc::new(TestApp::spawn_flags(db, &flags).await);
        let two = std::sync::Arc::new(one.another_instance_flags(&flags).await);
        let mut tasks = Vec::new();
        for i in 0..20 {
            let app = if i % 2 == 0 { one.clone() } else { two.clone() };
            tasks.push(tokio::spawn(async move { attempt(&app, "operator", &format!("guess {i}")).await }));
        }
        let mut kinds = Vec::new();
        for task in tasks {
            kinds.push(task.await.unwrap()["__typename"].as_str().unwrap().to_string());
        }
        let checked = kinds.iter().filter(|k| *k == "SignInRefused").count();
        let throttled = kinds.iter().filter(|k| *k == "SignInThrottled").count();
        assert_eq!((checked, throttled), (3, 17), "{kinds:?}");
    }
}

both_backends! {
    /// One address that fails for many usernames (here unknown ones) is
    /// locked out for every username, even with a right password.
    async fn the_address_limit_counts_failures_over_usernames(db: Db) {
        let app = TestApp::spawn_flags(db, &["--sign-in-max-failures-per-address", "3"]).await;
        for name in ["nobody1", "nobody2", "nobody3"] {
            invalid(&attempt(&app, name, "wrong password").await);
        }
        throttled(&attempt(&app, "operator", &app.operator_password).await);
        throttled(&attempt(&app, "nobody4", "wrong password").await);
    }
}

both_backends! {
    /// Without `--trusted-proxy-header` a client cannot escape its count by
    /// naming another address; with it, the proxy's header decides.
    async fn a_trusted_proxy_header_is_honored_only_when_configured(db: Db) {
        let xff = "X-Forwarded-For";
        let untrusting = TestApp::spawn_flags(db, &["--sign-in-max-failures-per-address", "2"]).await;
        invalid(&attempt_with(&untrusting, xff, "203.0.113.1", "nobody1", "wrong password").await);
        invalid(&attempt_with(&untrusting, xff, "203.0.113.2", "nobody2", "wrong password").await);
        let password = untrusting.operator_password.clone();
        throttled(&attempt_with(&untrusting, xff, "203.0.113.3", "operator", &password).await);

        let flags = ["--sign-in-max-failures-per-address", "2", "--trusted-proxy-header", xff];
        let trusting = TestApp::spawn_flags(db, &flags).await;
        let password = trusting.operator_password.clone();
        invalid(&attempt_with(&trusting, xff, "203.0.113.1", "nobody1", "wrong password").await);
        // The client's own claim comes first; the address the proxy saw is the last entry.
        invalid(&attempt_with(&trusting, xff, "198.51.100.7, 203.0.113.1", "nobody2", "wrong password").await);
        throttled(&attempt_with(&trusting, xff, "203.0.113.1", "operator", &password).await);
        success(&attempt_with(&trusting, xff, "203.0.113.1, 203.0.113.2", "operator", &password).await);
        success(&attempt(&trusting, "operator", &password).await);
    }
}

both_backends! {
    /// A request with two `signIn` fields (aliased) is refused before
    /// anything runs: no password is checked, so the failure count does not
    /// move (two more failures and the right password still sign in, where
    /// four failures would have locked the username).
    async fn two_sign_ins_in_one_request_are_refused_before_anything_runs(db: Db) {
        let app = TestApp::spawn_flags(db, &["--sign-in-max-failures", "3"]).await;
        let two = "mutation { a: signIn(username: \"operator\", password: \"wrong password 1\") { __typename } \
                   b: signIn(username: \"operator\", password: \"wrong password 2\") { __typename } }";
        let (status, body) = app.gql_status(None, two, json!({})).await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(error_code(&body), "TOO_MANY_SIGN_INS");
        assert!(body.get("data").is_none_or(Value::is_null), "{body}");
        invalid(&attempt(&app, "operator", "wrong password 3").await);
        invalid(&attempt(&app, "operator", "wrong password 4").await);
        success(&attempt(&app, "operator", &app.operator_password).await);
    }
}

both_backends! {
    /// A right password clears the username's failures: two failures, a
    /// success, two more failures, and the right password still works
    /// (without the clear, the fourth charge would have filled the limit).
    async fn a_successful_sign_in_clears_the_usernames_failures(db: Db) {
        let app = TestApp::spawn_flags(db, &["--sign-in-max-failures", "3"]).await;
        let password = app.operator_password.clone();
        invalid(&attempt(&app, "operator", "wrong password 1").await);
        invalid(&attempt(&app, "operator", "wrong password 2").await);
        success(&attempt(&app, "operator", &password).await);
        invalid(&attempt(&app, "operator", "wrong password 3").await);
        invalid(&attempt(&app, "operator", "wrong password 4").await);
        success(&attempt(&app, "operator", &password).await);
    }
}

/// The server binary on `database_url` with `flags`: its own process, so
/// its `/metrics` counts only what the test sends it.
struct Binary {
    child: Child,
    app: TestApp,
}

impl Drop for Binary {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Binary {
    async fn start(database_url: &str, flags: &[&str]) -> Binary {
        let mut child = Command::new(env!("CARGO_BIN_EXE_license-gateway"))
            .args(flags)
            .env("DATABASE_URL", database_url)
            .env("LISTEN", "127.0.0.1:0")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the server binary");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let (mut url, mut operator_password) = (String::new(), String::new());
        while url.is_empty() {
            let line = lines.next().expect("server printed its address").expect("stdout");
            if let Some(rest) = line.split("password `").nth(1) {
                operator_password = rest.split('`').next().unwrap().to_string();
            }
            if let Some(rest) = line.strip_prefix("license-gateway listening on ") {
                url = rest.split_whitespace().next().unwrap().trim_end_matches('/').to_string();
            }
        }
        // Keep draining stdout so the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        let store = Store::connect(database_url, &PoolSettings::tool(1)).await.expect("connect");
        let client = reqwest::Client::new();
        Binary { child, app: TestApp { url, database_url: database_url.to_string(), store, operator_password, client } }
    }

    /// Passwords the server has checked for sign-ins so far.
    async fn password_checks(&self) -> u64 {
        let (status, text) = self.app.get("/metrics").await;
        assert_eq!(status, 200);
        let line = text
            .lines()
            .find(|l| l.starts_with("license_gateway_password_checks_total"))
            .unwrap_or_else(|| panic!("no password check counter in\n{text}"));
        line.split_whitespace().last().unwrap().parse().unwrap()
    }
}

both_backends! {
    /// A wrong password for an unknown username gets the same answer as one
    /// for a known username, and costs the same: one password check each
    /// (counted, not timed). The throttle counts unknown usernames too, and
    /// a throttled attempt, like a request with two sign-ins, checks none.
    async fn unknown_and_known_usernames_fail_alike(db: Db) {
        let database_url = fresh_database(db).await;
        let server = Binary::start(&database_url, &["--sign-in-max-failures", "2"]).await;
        let app = &server.app;
        assert_eq!(server.password_checks().await, 0);
        let known = attempt(app, "operator", "wrong password 1").await;
        assert_eq!(server.password_checks().await, 1);
        let unknown = attempt(app, "nobody", "wrong password 1").await;
        assert_eq!(server.password_checks().await, 2);
        invalid(&known);
        assert_eq!(known, unknown, "an unknown username is answered like a known one");

        // The second failure of each fills its limit; the third is refused unchecked.
        assert_eq!(attempt(app, "operator", "wrong password 2").await, attempt(app, "nobody", "wrong password 2").await);
        assert_eq!(server.password_checks().await, 4);
        let known = attempt(app, "operator", &app.operator_password).await;
        let unknown = attempt(app, "nobody", "wrong password 3").await;
        throttled(&known);
        assert_eq!(known["__typename"], unknown["__typename"]);
        assert_eq!(known["code"], unknown["code"]);
        assert_eq!(server.password_checks().await, 4, "a throttled attempt checks no password");

        let two = "mutation { a: signIn(username: \"other\", password: \"x\") { __typename } \
                   b: signIn(username: \"else\", password: \"y\") { __typename } }";
        assert_eq!(app.gql_status(None, two, json!({})).await.0, 400);
        assert_eq!(server.password_checks().await, 4, "a request with two sign-ins checks no password");
    }
}

both_backends! {
    /// New passwords need 12 characters and must not be easy to guess; the
    /// answer names the field and says why. The suite's own password passes.
    async fn weak_passwords_are_refused_when_a_login_is_created(db: Db) {
        let app = TestApp::spawn(db).await;
        let site = app.site("Policy", &[("CASE", 2)], false).await;
        let person = site.person(&app, "Pat Policy").await;
        let create = "mutation($i: CreateLoginInput!) { createLogin(input: $i) { __typename } }";
        for (weak, why) in [
            ("1234567890", "too short: at least 12 characters"),
            ("aaaaaaaaaaaa", "too easy to guess"),
            ("            ", "too easy to guess"),
            ("password1234", "too easy to guess"),
        ] {
            let input = json!({ "personId": person, "username": "pat", "password": weak, "profileId": site.parking_profile });
            let body = app.gql(Some(&site.admin_token), create, json!({ "i": input })).await;
            assert_eq!(error_code(&body), "BAD_USER_INPUT", "{weak:?}: {body}");
            assert_eq!(body["errors"][0]["extensions"]["field"], "password", "{body}");
            let message = body["errors"][0]["message"].as_str().unwrap();
            assert!(message.contains(why), "{weak:?}: {message}");
        }
        let r = site.try_login(&app, &person, "pat", &site.parking_profile, None).await;
        assert_eq!(r["__typename"], "CreateLoginSuccess", "the suite's PASSWORD passes: {r}");
    }
}
