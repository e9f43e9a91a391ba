//! Subscriptions over WebSocket (issue 17): the graphql-ws protocol
//! (`graphql-transport-ws`) spoken by a real WebSocket client against the
//! real server. On PostgreSQL the subscriber is on a second instance of the
//! same database, so every change reaches it through LISTEN/NOTIFY; on
//! SQLite through the process's own channel. The graphql-ws npm client runs
//! the same paths in `clients/test/subscriptions.test.js`.

mod common;

use std::time::Duration;

use common::ws::{Closed, Ws};
use common::{Db, PASSWORD, Site, TestApp};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Error as WsError;

const POOLS: &str =
    "subscription($site: ID) { licensePools(siteId: $site) { id module { code } total used available version } }";
const AUDIT: &str = "subscription { auditEvents { id action outcome actor { name person { name } } targetId } }";

/// The (used, total) of `code` in a `licensePools` update.
fn numbers(update: &Value, code: &str) -> (i64, i64) {
    let pool = pools(update).iter().find(|p| p["module"]["code"] == code).expect("the module's pool");
    (pool["used"].as_i64().unwrap(), pool["total"].as_i64().unwrap())
}

fn pools(update: &Value) -> &Vec<Value> {
    update["data"]["licensePools"].as_array().unwrap_or_else(|| panic!("no pools in {update}"))
}

/// Each pool's version, by module code.
fn versions(update: &Value) -> Vec<(String, i64)> {
    pools(update)
        .iter()
        .map(|p| (p["module"]["code"].as_str().unwrap().to_string(), p["version"].as_i64().unwrap()))
        .collect()
}

/// Whether no pool of `later` is older than in `earlier`, and some is newer.
fn newer(later: &Value, earlier: &Value) -> bool {
    let (later, earlier) = (versions(later), versions(earlier));
    later.len() == earlier.len()
        && later.iter().zip(&earlier).all(|(l, e)| l.0 == e.0 && l.1 >= e.1)
        && later.iter().zip(&earlier).any(|(l, e)| l.1 > e.1)
}

/// The instance a subscriber connects to: on PostgreSQL another one on the
/// same database, so changes cross instances; on SQLite (one process) the same.
async fn subscriber_side(app: &TestApp, db: Db) -> Option<TestApp> {
    match db {
        Db::Postgres => Some(app.another_instance(common::SESSION_CACHE_MS).await),
        Db::Sqlite => None,
    }
}

/// A site with a Case profile and a user on it; its pools: Case 5, Document 3.
async fn site_with_a_user(app: &TestApp, name: &str) -> (Site, String, String) {
    let site = app.site(name, &[("CASE", 5), ("DOCUMENT", 3)], true).await;
    let case = site.profile(app, "Case", &["CASE"]).await;
    let both = site.profile(app, "Both", &["CASE", "DOCUMENT"]).await;
    let user = site.user(app, &format!("{name} User"), &case).await;
    (site, user, both)
}

const MOVE: &str = "mutation($id: ID!, $p: ID!) { changeLoginProfile(id: $id, profileId: $p) { __typename } }";

both_backends! {
    /// A change committed through one instance reaches a subscriber of the
    /// site on the other with the new numbers; versions only grow, and the
    /// last update equals what the query answers.
    async fn a_committed_change_reaches_the_sites_subscribers_on_every_instance(db: Db) {
        let app = TestApp::spawn(db).await;
        let other = subscriber_side(&app, db).await;
        let there = other.as_ref().unwrap_or(&app);
        let (site, user, both) = site_with_a_user(&app, "Live").await;
        let mut ws = Ws::connect(there, &site.admin_token).await;
        ws.subscribe("pools", POOLS, json!({})).await;
        let first = ws.next("pools").await;
        assert_eq!(numbers(&first, "CASE"), (1, 5), "first the state now: {first}");
        assert_eq!(numbers(&first, "DOCUMENT"), (0, 3));
        let query = app.ok(Some(&site.admin_token), "{ licensePools { id } }", json!({})).await;
        let ids = |pools: &[Value]| pools.iter().map(|p| p["id"].clone()).collect::<Vec<_>>();
        assert_eq!(ids(pools(&first)), ids(query["licensePools"].as_array().unwrap()), "the query's pools, by id");

        app.ok(Some(&site.admin_token), MOVE, json!({ "id": user, "p": both })).await;
        let moved = ws.next("pools").await;
        assert_eq!((numbers(&moved, "CASE"), numbers(&moved, "DOCUMENT")), ((1, 5), (1, 3)), "{moved}");
        assert!(newer(&moved, &first), "{moved} after {first}");

        // A burst of changes: the subscriber may skip states, never go back.
        let set = "mutation($s: ID!, $t: Int!) { setPoolTotal(siteId: $s, module: \"CASE\", total: $t) { __typename } }";
        for total in 6..=12 {
            app.ok(Some(&site.operator_token), set, json!({ "s": site.id, "t": total })).await;
        }
        let mut last = moved;
        loop {
            let update = ws.next("pools").await;
            assert!(newer(&update, &last), "versions only grow: {update} after {last}");
            last = update;
            if numbers(&last, "CASE") == (1, 12) {
                break;
            }
        }
        let now = app.ok(Some(&site.admin_token), "{ licensePools { module { code } version } }", json!({})).await;
        assert_eq!(versions(&json!({ "data": now })), versions(&last), "the last update is the state now");
        ws.nothing_within(Duration::from_millis(300)).await;

        // What /metrics says of it (the recorder is the test process's, shared by its servers).
        let (_, metrics) = there.get("/metrics").await;
        let value = |line: &str| -> f64 {
            let found = metrics.lines().find(|l| l.starts_with(line)).unwrap_or_else(|| panic!("no {line} in\n{metrics}"));
            found.rsplit(' ').next().unwrap().parse().unwrap()
        };
        assert!(value("license_gateway_subscription_deliveries_total{field=\"licensePools\"}") >= 3.0);
        assert!(value("license_gateway_websocket_connections") >= 1.0);
        assert!(value("license_gateway_subscriptions") >= 1.0);
    }
}

both_backends! {
    /// After a reconnect the first update is the state now, newer than
    /// anything the subscriber had.
    async fn a_reconnected_subscriber_first_gets_the_state_now(db: Db) {
        let app = TestApp::spawn(db).await;
        let other = subscriber_side(&app, db).await;
        let there = other.as_ref().unwrap_or(&app);
        let (site, user, both) = site_with_a_user(&app, "Again").await;
        let mut ws = Ws::connect(there, &site.admin_token).await;
        ws.subscribe("1", POOLS, json!({})).await;
        let before = ws.next("1").await;
        drop(ws);
        app.ok(Some(&site.admin_token), MOVE, json!({ "id": user, "p": both })).await;
        let mut ws = Ws::connect(there, &site.admin_token).await;
        ws.subscribe("1", POOLS, json!({})).await;
        let after = ws.next("1").await;
        assert_eq!(numbers(&after, "DOCUMENT"), (1, 3), "{after}");
        assert!(newer(&after, &before), "{after} after {before}");
    }
}

both_backends! {
    /// Tenancy: a subscriber of one site gets nothing of another's changes,
    /// and may not subscribe to another site's pools or trail.
    async fn a_subscriber_of_another_site_receives_nothing(db: Db) {
        let app = TestApp::spawn(db).await;
        let other = subscriber_side(&app, db).await;
        let there = other.as_ref().unwrap_or(&app);
        let (site, user, both) = site_with_a_user(&app, "Mine").await;
        let (elsewhere, _, _) = site_with_a_user(&app, "Theirs").await;
        let mut ws = Ws::connect(there, &elsewhere.admin_token).await;
        ws.subscribe("pools", POOLS, json!({})).await;
        ws.subscribe("audit", AUDIT, json!({})).await;
        let first = ws.next("pools").await;
        assert_eq!(numbers(&first, "CASE"), (1, 5), "its own site's pools: {first}");
        app.ok(Some(&site.admin_token), MOVE, json!({ "id": user, "p": both })).await;
        ws.nothing_within(Duration::from_millis(800)).await;

        ws.subscribe("theirs", POOLS, json!({ "site": site.id })).await;
        assert_eq!(ws.refused("theirs").await, "NOT_FOUND");
    }
}

both_backends! {
    /// Signing out through any instance closes that session's connections
    /// (4403); a token that does not work, or none, is refused the same way.
    async fn a_session_that_ends_anywhere_closes_its_subscriptions(db: Db) {
        let app = TestApp::spawn(db).await;
        let other = subscriber_side(&app, db).await;
        let there = other.as_ref().unwrap_or(&app);
        let (site, _, _) = site_with_a_user(&app, "Leaving").await;
        let token = app.sign_in("leaving-admin", PASSWORD).await;
        let mut ws = Ws::connect(there, &token).await;
        ws.subscribe("pools", POOLS, json!({})).await;
        ws.next("pools").await;
        let mut stays = Ws::connect(there, &site.admin_token).await;
        stays.subscribe("pools", POOLS, json!({})).await;
        stays.next("pools").await;

        app.ok(Some(&token), "mutation { signOut }", json!({})).await;
        let closed = ws.closed().await;
        assert_eq!(closed.0, 4403, "{closed:?}");
        assert!(closed.1.contains("session ended"), "{closed:?}");
        stays.nothing_within(Duration::from_millis(300)).await;

        let mut again = Ws::init(there, Some(&token)).await;
        assert_eq!(again.closed().await.0, 4403, "the signed-out token");
        let mut anonymous = Ws::init(there, None).await;
        let refused = anonymous.closed().await;
        assert_eq!(refused.0, 4403);
        assert!(refused.1.contains("Authorization"), "{refused:?}");
    }
}

both_backends! {
    /// A change to a login that may change its session (rights taken away,
    /// the login deleted) makes its connections check it again: they close.
    async fn a_login_whose_rights_change_is_closed_and_must_reconnect(db: Db) {
        let app = TestApp::spawn(db).await;
        let other = subscriber_side(&app, db).await;
        let there = other.as_ref().unwrap_or(&app);
        let (site, user, both) = site_with_a_user(&app, "Rights").await;
        let admin = "mutation($id: ID!, $a: Boolean) { updateLogin(id: $id, input: { isAdministrator: $a }) { __typename } }";
        app.ok(Some(&site.admin_token), admin, json!({ "id": user, "a": true })).await;
        let token = app.sign_in("rights.user", PASSWORD).await;
        let mut ws = Ws::connect(there, &token).await;
        ws.subscribe("audit", AUDIT, json!({})).await;
        // A session-neutral change leaves it be.
        app.ok(Some(&site.admin_token), MOVE, json!({ "id": user, "p": both })).await;
        let event = ws.next("audit").await;
        assert_eq!(event["data"]["auditEvents"]["action"], "changeLoginProfile", "{event}");

        app.ok(Some(&site.admin_token), admin, json!({ "id": user, "a": false })).await;
        // The change's own event may come first, or the close.
        let closed = loop {
            match ws.message().await {
                Ok(m) => assert_eq!(m["payload"]["data"]["auditEvents"]["action"], "updateLogin", "{m}"),
                Err(closed) => break closed,
            }
        };
        assert_eq!(closed, Closed(4403, "Forbidden: the session's user changed; connect again".into()));
        // Connecting again decides for the principal as it is now: a site user sees no trail.
        let mut ws = Ws::connect(there, &token).await;
        ws.subscribe("audit", AUDIT, json!({})).await;
        assert_eq!(ws.refused("audit").await, "FORBIDDEN");
        ws.subscribe("pools", POOLS, json!({})).await;
        ws.next("pools").await;

        app.ok(Some(&site.admin_token), "mutation($id: ID!) { deleteLogin(id: $id) { __typename } }", json!({ "id": user }))
            .await;
        assert_eq!(ws.closed().await.0, 4403, "a deleted login's session ended");
    }
}

both_backends! {
    /// The audit trail as it is written, to administrators: accepted and
    /// refused changes, with their actor, each once.
    async fn audit_events_reach_administrators_as_they_are_written(db: Db) {
        let app = TestApp::spawn(db).await;
        let other = subscriber_side(&app, db).await;
        let there = other.as_ref().unwrap_or(&app);
        let (site, user, both) = site_with_a_user(&app, "Trail").await;
        let mut ws = Ws::connect(there, &site.admin_token).await;
        ws.subscribe("audit", AUDIT, json!({})).await;
        ws.nothing_within(Duration::from_millis(200)).await;
        app.ok(Some(&site.admin_token), MOVE, json!({ "id": user, "p": both })).await;
        let set = "mutation($s: ID!) { setPoolTotal(siteId: $s, module: \"DOCUMENT\", total: 0) { __typename } }";
        app.ok(Some(&site.operator_token), set, json!({ "s": site.id })).await;
        let accepted = ws.next("audit").await["data"]["auditEvents"].clone();
        assert_eq!(accepted["action"], "changeLoginProfile");
        assert_eq!(accepted["outcome"], "ACCEPTED");
        assert_eq!(accepted["targetId"], user.as_str());
        assert_eq!(accepted["actor"], json!({ "name": "Trail Admin", "person": { "name": "Trail Admin" } }));
        let refused = ws.next("audit").await["data"]["auditEvents"].clone();
        assert_eq!((refused["action"].as_str(), refused["outcome"].as_str()), (Some("setPoolTotal"), Some("REFUSED")));
        let trail = app.ok(Some(&site.admin_token), "{ auditEvents(first: 2) { nodes { id } } }", json!({})).await;
        assert_eq!(trail["auditEvents"]["nodes"][0]["id"], refused["id"]);
        assert_eq!(trail["auditEvents"]["nodes"][1]["id"], accepted["id"]);
        ws.nothing_within(Duration::from_millis(300)).await;
    }
}

/// PostgreSQL: an instance whose database connections (its change listener's
/// too) are lost for a while misses the notifications of that while; once it
/// listens again it reads every subscriber's pools again, and ends audit
/// subscriptions, whose missed events it cannot read back exactly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_that_lost_its_change_listener_reads_the_pools_again() {
    let Some(_) = common::postgres_url() else { return };
    let app = TestApp::spawn(Db::Postgres).await;
    let proxy = common::Proxy::start(&app.database_url).await;
    let cut_off = TestApp::spawn_on(&proxy.url, &["--db-acquire-timeout-ms", "1000"]).await;
    let (site, user, both) = site_with_a_user(&app, "Cut").await;
    let mut ws = Ws::connect(&cut_off, &site.admin_token).await;
    ws.subscribe("pools", POOLS, json!({})).await;
    ws.subscribe("audit", AUDIT, json!({})).await;
    assert_eq!(numbers(&ws.next("pools").await, "DOCUMENT"), (0, 3));

    proxy.cut();
    app.ok(Some(&site.admin_token), MOVE, json!({ "id": user, "p": both })).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    proxy.restore();
    let mut got = (None, None);
    while got.0.is_none() || got.1.is_none() {
        let message = ws.message().await.expect("the connection stays open");
        match message["id"].as_str() {
            Some("pools") => got.0 = Some(numbers(&message["payload"], "DOCUMENT")),
            Some("audit") if message["type"] == "next" => {
                got.1 = Some(message["payload"]["errors"][0]["extensions"]["code"].clone())
            }
            _ => {}
        }
    }
    assert_eq!(got, (Some((1, 3)), Some(json!("SUBSCRIPTION_INTERRUPTED"))));
}

/// A server on SQLite with the subscription limits `flags`.
async fn limited(flags: &[&str]) -> (TestApp, Site) {
    let app = TestApp::spawn_flags(Db::Sqlite, flags).await;
    let site = app.site("Limits", &[("CASE", 5)], true).await;
    (app, site)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_without_connection_init_in_time_is_closed_with_4408() {
    let (app, _) = limited(&["--connection-init-timeout-ms", "300"]).await;
    let mut ws = Ws::open(&app).await;
    let started = std::time::Instant::now();
    assert_eq!(ws.closed().await, Closed(4408, "Connection initialisation timeout".into()));
    assert!(started.elapsed() >= Duration::from_millis(250));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_runs_at_most_its_subscriptions_and_only_subscriptions() {
    let (app, site) = limited(&["--max-subscriptions-per-connection", "2"]).await;
    let mut ws = Ws::connect(&app, &site.admin_token).await;
    for id in ["a", "b"] {
        ws.subscribe(id, POOLS, json!({})).await;
        ws.next(id).await;
    }
    ws.subscribe("c", POOLS, json!({})).await;
    assert_eq!(ws.refused("c").await, "TOO_MANY_SUBSCRIPTIONS");
    // Completing one makes room.
    ws.send(json!({ "id": "a", "type": "complete" })).await;
    ws.subscribe("d", POOLS, json!({})).await;
    let mut got = ws.message().await.unwrap();
    if got["type"] == "complete" {
        got = ws.message().await.unwrap();
    }
    assert_eq!((got["type"].as_str(), got["id"].as_str()), (Some("next"), Some("d")), "{got}");

    ws.send(json!({ "id": "b", "type": "complete" })).await;
    assert_eq!(ws.message().await.unwrap(), json!({ "type": "complete", "id": "b" }));
    ws.subscribe("q", "{ licensePools { used } }", json!({})).await;
    assert_eq!(ws.refused("q").await, "BAD_REQUEST");
    ws.subscribe("bad", "subscription { licensePools { nope } }", json!({})).await;
    assert_eq!(ws.refused("bad").await, "GRAPHQL_VALIDATION_FAILED");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_over_the_size_limit_closes_the_connection_with_1009() {
    let (app, site) = limited(&["--max-websocket-message-bytes", "2048"]).await;
    let mut ws = Ws::connect(&app, &site.admin_token).await;
    let padding = "x".repeat(4096);
    ws.subscribe("big", &format!("subscription {{ licensePools {{ version }} }} # {padding}"), json!({})).await;
    assert_eq!(ws.closed().await.0, 1009);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_connections_past_the_cap_are_refused_with_503() {
    let (app, site) = limited(&["--max-websocket-connections", "2"]).await;
    let _one = Ws::connect(&app, &site.admin_token).await;
    let _two = Ws::connect(&app, &site.admin_token).await;
    match Ws::open_with(&app, "graphql-transport-ws", None).await {
        Err(WsError::Http(response)) => assert_eq!(response.status(), 503),
        other => panic!("a third connection: {:?}", other.map(|_| "accepted")),
    }
    drop(_one);
    // The slot comes back once the server has seen the close.
    let deadline = std::time::Instant::now() + common::ws::WAIT;
    while Ws::open_with(&app, "graphql-transport-ws", None).await.is_err() {
        assert!(std::time::Instant::now() < deadline, "the closed connection's slot did not come back");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_servers_own_pages_and_allowed_origins_may_open_a_socket() {
    let app = TestApp::spawn_flags(Db::Sqlite, &["--cors-origins", "https://app.example.com"]).await;
    let own = app.url.clone();
    for allowed in [None, Some(own.as_str()), Some("https://app.example.com")] {
        Ws::open_with(&app, "graphql-transport-ws", allowed).await.unwrap_or_else(|e| panic!("{allowed:?}: {e}"));
    }
    for refused in ["https://evil.example", "null", "http://127.0.0.1:1"] {
        match Ws::open_with(&app, "graphql-transport-ws", Some(refused)).await {
            Err(WsError::Http(response)) => assert_eq!(response.status(), 403, "{refused}"),
            other => panic!("{refused}: {:?}", other.map(|_| "accepted")),
        }
    }
    match Ws::open_with(&app, "mqtt", None).await {
        Err(WsError::Http(response)) => assert_eq!(response.status(), 400),
        other => panic!("another subprotocol: {:?}", other.map(|_| "accepted")),
    }
    // A GET without the upgrade is still GraphQL over HTTP.
    let (status, body) = app.get("/graphql?query=%7B__typename%7D").await;
    assert_eq!((status, body.as_str()), (200, r#"{"data":{"__typename":"Query"}}"#));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_legacy_graphql_ws_protocol_works_too() {
    let (app, site) = limited(&[]).await;
    let mut ws = Ws::open_with(&app, "graphql-ws", None).await.unwrap();
    ws.send(
        json!({ "type": "connection_init", "payload": { "Authorization": format!("Bearer {}", site.admin_token) } }),
    )
    .await;
    assert_eq!(ws.message().await.unwrap()["type"], "connection_ack");
    ws.send(json!({ "id": "1", "type": "start", "payload": { "query": POOLS } })).await;
    let data = ws.message().await.unwrap();
    assert_eq!(data["type"], "data", "{data}");
    assert_eq!(numbers(&data["payload"], "CASE"), (0, 5));
    // Refused there as it says: connection_error, then the close.
    let mut anonymous = Ws::open_with(&app, "graphql-ws", None).await.unwrap();
    anonymous.send(json!({ "type": "connection_init", "payload": {} })).await;
    assert_eq!(anonymous.message().await.unwrap()["type"], "connection_error");
    assert_eq!(anonymous.closed().await.0, 4403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriptions_can_be_turned_off() {
    let app = TestApp::spawn_flags(Db::Sqlite, &["--subscriptions", "false"]).await;
    match Ws::open_with(&app, "graphql-transport-ws", None).await {
        Err(WsError::Http(response)) => assert_eq!(response.status(), 404),
        other => panic!("{:?}", other.map(|_| "accepted")),
    }
}
