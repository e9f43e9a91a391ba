//! R4 under contention: a pool with k free licenses and 40 concurrent
//! requests each consuming one, sent over HTTP to real server processes
//! (the built binary): two sharing one Postgres, and one on SQLite. Exactly
//! k succeed, the rest get `LicenseLimitExceeded`, and the counter equals a
//! fresh recount (checked with the binary's own `verify` command). Also:
//! races of moves with profile changes and deletions (on in-process
//! instances), and a burst of sign-ins against a server process's memory.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use common::*;
use serde_json::{Value, json};

const FREE: usize = 5;
const CONTENDERS: usize = 40;

/// A server process of the built binary, killed on drop.
struct Server {
    child: Child,
    url: String,
    operator_password: Option<String>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_server(database_url: &str) -> Server {
    let child = Command::new(env!("CARGO_BIN_EXE_license-gateway"))
        .env("DATABASE_URL", database_url)
        .env("LISTEN", "127.0.0.1:0")
        .env("RUST_LOG", "warn")
        // The races and bursts here are about capacity, not sign-in abuse:
        // the sign-in throttle is set far out of their way.
        .env("SIGN_IN_MAX_FAILURES", "1000000")
        .env("SIGN_IN_MAX_FAILURES_PER_ADDRESS", "1000000")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start the server binary");
    // Owned by `Server` from here on, so a failure below still stops the process.
    let mut server = Server { child, url: String::new(), operator_password: None };
    let mut lines = BufReader::new(server.child.stdout.take().unwrap()).lines();
    loop {
        let line = lines.next().expect("server printed its address").expect("stdout");
        if let Some(rest) = line.split("password `").nth(1) {
            server.operator_password = rest.split('`').next().map(str::to_string);
        }
        if let Some(rest) = line.strip_prefix("license-gateway listening on ") {
            server.url = rest.split_whitespace().next().unwrap().trim_end_matches('/').to_string();
            // Keep draining stdout so the server never blocks on a full pipe.
            std::thread::spawn(move || for _ in lines {});
            return server;
        }
    }
}

async fn post(client: &reqwest::Client, server: &Server, token: Option<&str>, query: &str, variables: Value) -> Value {
    let mut req =
        client.post(format!("{}/graphql", server.url)).json(&json!({ "query": query, "variables": variables }));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    req.send().await.expect("request").json().await.expect("json")
}

async fn contested_allocation(database_url: String, servers: Vec<Server>) {
    let client = reqwest::Client::new();
    let first = &servers[0];
    let op_password = servers.iter().find_map(|s| s.operator_password.clone()).expect("operator created once");
    let sign_in =
        "mutation($u: String!, $p: String!) { signIn(username: $u, password: $p) { ... on SignInSuccess { token } } }";
    let op = post(&client, first, None, sign_in, json!({ "u": "operator", "p": op_password })).await;
    let op = op["data"]["signIn"]["token"].as_str().unwrap().to_string();
    let created = post(
        &client,
        first,
        Some(&op),
        "mutation($i: CreateSiteInput!) { createSite(input: $i) { ... on CreateSiteSuccess { site { id } administrator { profile { id } } } } }",
        json!({ "i": { "name": "Contested", "agreementName": "C-1", "pools": [{ "module": "CASE", "total": FREE }],
                "administrator": { "name": "Cont Admin", "username": "cont-admin", "password": PASSWORD } } }),
    )
    .await;
    let parking = created["data"]["createSite"]["administrator"]["profile"]["id"].as_str().unwrap().to_string();
    let admin = post(&client, first, None, sign_in, json!({ "u": "cont-admin", "p": PASSWORD })).await;
    let admin = admin["data"]["signIn"]["token"].as_str().unwrap().to_string();
    let case = post(&client, first, Some(&admin), "mutation { createProfile(input: { name: \"Case\", modules: [\"CASE\"] }) { ... on CreateProfileSuccess { profile { id } } } }", json!({})).await;
    let case = case["data"]["createProfile"]["profile"]["id"].as_str().unwrap().to_string();
    // 40 parked users (no license) who will all ask for a Case license at once.
    let mut users = Vec::new();
    for i in 0..CONTENDERS {
        let p = post(&client, first, Some(&admin), "mutation($n: String!) { createPerson(input: { name: $n }) { ... on CreatePersonSuccess { person { id } } } }", json!({ "n": format!("Contender {i}") })).await;
        let person = p["data"]["createPerson"]["person"]["id"].as_str().unwrap().to_string();
        let l = post(
            &client,
            first,
            Some(&admin),
            "mutation($i: CreateLoginInput!) { createLogin(input: $i) { ... on CreateLoginSuccess { user { id } } } }",
            json!({ "i": { "personId": person, "username": format!("contender{i}"), "password": PASSWORD, "profileId": parking } }),
        )
        .await;
        users.push(l["data"]["createLogin"]["user"]["id"].as_str().unwrap().to_string());
    }
    let change = "mutation($id: ID!, $p: ID!) { changeLoginProfile(id: $id, profileId: $p) { __typename ... on LicenseLimitExceeded { shortages { needed available shortfall } } } }";
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(CONTENDERS));
    let mut tasks = Vec::new();
    for (i, user) in users.into_iter().enumerate() {
        let (client, url, admin, case, barrier) =
            (client.clone(), servers[i % servers.len()].url.clone(), admin.clone(), case.clone(), barrier.clone());
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            let body = json!({ "query": change, "variables": { "id": user, "p": case } });
            let resp: Value = client
                .post(format!("{url}/graphql"))
                .bearer_auth(admin)
                .json(&body)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            resp
        }));
    }
    let (mut accepted, mut refused) = (0, 0);
    for t in tasks {
        let resp = t.await.unwrap();
        assert!(resp.get("errors").is_none(), "no request may fail outright: {resp}");
        match resp["data"]["changeLoginProfile"]["__typename"].as_str().unwrap() {
            "UpdateLoginSuccess" => accepted += 1,
            "LicenseLimitExceeded" => {
                refused += 1;
                let s = &resp["data"]["changeLoginProfile"]["shortages"][0];
                assert_eq!(
                    (s["needed"].as_i64(), s["available"].as_i64(), s["shortfall"].as_i64()),
                    (Some(1), Some(0), Some(1))
                );
            }
            other => panic!("unexpected result {other}"),
        }
    }
    assert_eq!((accepted, refused), (FREE, CONTENDERS - FREE), "exactly the free licenses were handed out");
    let pools = post(
        &client,
        &servers[servers.len() - 1],
        Some(&admin),
        "{ licensePools { module { code } total used available } }",
        json!({}),
    )
    .await;
    assert_eq!(
        pools["data"]["licensePools"][0],
        json!({ "module": { "code": "CASE" }, "total": FREE, "used": FREE, "available": 0 })
    );
    // The binary's own recount agrees with the counters.
    let verify = Command::new(env!("CARGO_BIN_EXE_license-gateway"))
        .arg("verify")
        .env("DATABASE_URL", &database_url)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&verify.stdout);
    assert!(verify.status.success(), "verify found drift:\n{report}");
    assert!(report.contains(&format!("total {FREE} used {FREE} recount {FREE}")), "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn r4_contested_allocation_on_two_processes_sharing_postgres() {
    if postgres_url().is_none() {
        return;
    }
    let url = fresh_database(Db::Postgres).await;
    let a = start_server(&url);
    let b = start_server(&url);
    contested_allocation(url, vec![a, b]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn r4_contested_allocation_on_one_process_with_sqlite() {
    let url = fresh_database(Db::Sqlite).await;
    let server = start_server(&url);
    contested_allocation(url, vec![server]).await;
}

/// The server's peak resident memory (Linux `VmHWM`), in MiB.
fn peak_rss_mib(server: &Server) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", server.child.id())).expect("/proc status");
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).expect("VmHWM");
    line.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap() / 1024
}

/// Each Argon2 check of a password takes 19 MiB for its duration. A burst
/// of sign-ins (a login screen after an outage, or someone guessing
/// passwords) hashes at most one password per core at a time, so the
/// server's memory stays bounded: 48 concurrent sign-ins, right and wrong,
/// each get their answer, then 48 from clients that hang up at once, and
/// the process never holds more checks than cores.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_burst_of_sign_ins_is_answered_within_bounded_memory() {
    let url = fresh_database(Db::Sqlite).await;
    let server = std::sync::Arc::new(start_server(&url));
    let password = server.operator_password.clone().expect("a fresh database prints the operator's password");
    let client = reqwest::Client::new();
    let sign_in = "mutation($u: String!, $p: String!) { signIn(username: $u, password: $p) { __typename } }";
    let before = peak_rss_mib(&server);
    let mut tasks = Vec::new();
    for i in 0..48 {
        let (client, server, password) = (client.clone(), server.clone(), password.clone());
        let (user, pass) = match i % 3 {
            0 => ("operator".to_string(), password),
            1 => ("operator".to_string(), "not the password".to_string()),
            _ => (format!("nobody{i}"), "not the password".to_string()),
        };
        tasks.push(tokio::spawn(async move {
            post(&client, &server, None, sign_in, json!({ "u": user, "p": pass })).await["data"]["signIn"]["__typename"]
                .clone()
        }));
    }
    for (i, task) in tasks.into_iter().enumerate() {
        let expected = if i % 3 == 0 { "SignInSuccess" } else { "SignInRefused" };
        assert_eq!(task.await.unwrap(), expected, "sign-in {i}");
    }
    // The same burst from clients that hang up at once: their checks still run, one per
    // core at a time (a turn ends with its check, not with the request).
    let impatient = reqwest::Client::builder().timeout(std::time::Duration::from_millis(20)).build().unwrap();
    let mut abandoned = Vec::new();
    for i in 0..48 {
        let (client, url) = (impatient.clone(), format!("{}/graphql", server.url));
        let body = json!({ "query": sign_in, "variables": { "u": "operator", "p": format!("guess {i}") } });
        abandoned.push(tokio::spawn(async move { client.post(url).json(&body).send().await.is_err() }));
    }
    for task in abandoned {
        task.await.unwrap(); // most give up; any answered first is as good
    }
    // Once the queue has drained, the server answers a sign-in again.
    let answer = post(&client, &server, None, sign_in, json!({ "u": "operator", "p": password })).await;
    assert_eq!(answer["data"]["signIn"]["__typename"], "SignInSuccess");
    let after = peak_rss_mib(&server);
    // One check (19 MiB) per core at a time, plus room for the requests themselves. On the
    // 2-core CI machine: 53 -> 99 to 109 MiB; without the queue 48 at once took 902 MiB, and
    // with a turn that ended with its request the abandoned burst took 159.
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as u64;
    let bound = 20 * cores + 40;
    assert!(after - before < bound, "peak RSS grew from {before} to {after} MiB over 96 concurrent sign-ins");
}

/// The gateway instances a race runs on: on PostgreSQL two, sharing the
/// database; on SQLite the one process its file allows.
struct Instances(Vec<TestApp>);

impl Instances {
    async fn start(db: Db) -> Self {
        let a = TestApp::spawn(db).await;
        let b = match db {
            Db::Postgres => Some(a.another_instance(SESSION_CACHE_MS).await),
            Db::Sqlite => None,
        };
        Instances([a].into_iter().chain(b).collect())
    }

    /// The instance of the `i`-th request: they take turns.
    fn pick(&self, i: usize) -> &TestApp {
        &self.0[i % self.0.len()]
    }
}

both_backends! {
    /// R2, R4 under contention: users move between two profiles while the
    /// administrator keeps changing one profile's modules. A move must count
    /// licenses with the module set the profile has when the move commits
    /// (R2: a user holds exactly the licenses of their profile's
    /// modules), never with one read before it held the profile's lock.
    /// Pools are ample, so every request succeeds, and the counters must
    /// equal a fresh recount afterwards. On PostgreSQL the requests go to
    /// two gateway instances sharing the database.
    async fn r2_moves_racing_profile_module_changes_keep_every_counter_exact(db: Db) {
        let apps = Instances::start(db).await;
        let a = apps.pick(0);
        let site = a.site("Racing", &[("CASE", 1000), ("DOCUMENT", 1000)], false).await;
        let home = site.profile(a, "Home", &["CASE"]).await;
        let away = site.profile(a, "Away", &["CASE"]).await;
        let mut users = Vec::new();
        for i in 0..12 {
            users.push(site.user(a, &format!("Racer {i:02}"), &home).await);
        }
        let apps = std::sync::Arc::new(apps);
        let move_to = "mutation($id: ID!, $p: ID!) { changeLoginProfile(id: $id, profileId: $p) { __typename } }";
        let mut tasks = Vec::new();
        for (i, user) in users.into_iter().enumerate() {
            let (apps, token, home, away) = (apps.clone(), site.admin_token.clone(), home.clone(), away.clone());
            tasks.push(tokio::spawn(async move {
                let app = apps.pick(i);
                for round in 0..16 {
                    let to = if round % 2 == 0 { &away } else { &home };
                    let r = app.ok(Some(&token), move_to, json!({ "id": user, "p": to })).await;
                    assert_eq!(r["changeLoginProfile"]["__typename"], "UpdateLoginSuccess", "{r}");
                }
            }));
        }
        let (apps2, token, away2) = (apps.clone(), site.admin_token.clone(), away.clone());
        tasks.push(tokio::spawn(async move {
            let sets: [&[&str]; 3] = [&["CASE", "DOCUMENT"], &["DOCUMENT"], &["CASE"]];
            let change = "mutation($id: ID!, $m: [String!]) { updateProfile(id: $id, input: { modules: $m }) { __typename } }";
            for round in 0..24 {
                let app = apps2.pick(round);
                let r = app.ok(Some(&token), change, json!({ "id": away2, "m": sets[round % 3] })).await;
                assert_eq!(r["updateProfile"]["__typename"], "UpdateProfileSuccess", "{r}");
            }
        }));
        for t in tasks {
            t.await.unwrap();
        }
        let a = apps.pick(0);
        assert_counters_match(&a.store).await;
        // The last module set of Away is CASE: each of the 12 users holds exactly one CASE license.
        let pools = site.pools(a).await;
        assert_eq!(pools.iter().map(|p| (p.0.as_str(), p.2)).collect::<Vec<_>>(), [("CASE", 12), ("DOCUMENT", 0)]);
    }
}

both_backends! {
    /// A profile deleted while a user moves into it (a decision of docs/domain.md: a
    /// profile with users cannot be deleted; R2). Either the move lands first
    /// and the deletion is refused (PROFILE_IN_USE), or the deletion lands
    /// first and the move finds no such profile (NOT_FOUND). Never both, never
    /// a database error (a deadlock, a foreign key violation). On PostgreSQL
    /// the two requests go to two gateway instances.
    async fn profile_deletion_racing_a_move_into_it_answers_one_or_the_other(db: Db) {
        let apps = Instances::start(db).await;
        let a = apps.pick(0);
        let site = a.site("Doomed", &[("CASE", 1000), ("DOCUMENT", 1000)], false).await;
        let home = site.profile(a, "Home", &["DOCUMENT"]).await;
        let mut users = Vec::new();
        for i in 0..4 {
            users.push(site.user(a, &format!("Mover {i}"), &home).await);
        }
        let apps = std::sync::Arc::new(apps);
        let move_to = "mutation($id: ID!, $p: ID!) { changeLoginProfile(id: $id, profileId: $p) { __typename } }";
        let delete = "mutation($id: ID!) { deleteProfile(id: $id) { __typename ... on Refusal { code } } }";
        // What the answers say the end state must be: each user's profile, and
        // which of the raced profiles still exist.
        let mut expected: std::collections::BTreeMap<String, String> =
            users.iter().map(|u| (u.clone(), home.clone())).collect();
        let (mut kept, mut gone) = (std::collections::BTreeSet::new(), std::collections::BTreeSet::new());
        for round in 0..30 {
            let doomed = site.profile(apps.pick(0), &format!("Doomed {round}"), &["CASE"]).await;
            let user = users[round % users.len()].clone();
            let mover = user.clone();
            let (apps1, apps2, token1, token2, doomed2) =
                (apps.clone(), apps.clone(), site.admin_token.clone(), site.admin_token.clone(), doomed.clone());
            let target = doomed.clone();
            let mv = tokio::spawn(async move {
                apps1.pick(0).gql(Some(&token1), move_to, json!({ "id": user, "p": target })).await
            });
            let del = tokio::spawn(async move {
                apps2.pick(1).gql(Some(&token2), delete, json!({ "id": doomed2 })).await
            });
            let (mv, del) = (mv.await.unwrap(), del.await.unwrap());
            if mv.get("errors").is_none() {
                assert_eq!(mv["data"]["changeLoginProfile"]["__typename"], "UpdateLoginSuccess", "{mv}");
                assert_eq!(del["data"]["deleteProfile"]["code"], "PROFILE_IN_USE", "moved, so: {del}");
                expected.insert(mover, doomed.clone());
                kept.insert(doomed);
            } else {
                assert_eq!(error_code(&mv), "NOT_FOUND", "{mv}");
                assert_eq!(del["data"]["deleteProfile"]["__typename"], "DeleteProfileSuccess", "not moved, so: {del}");
                gone.insert(doomed);
            }
        }
        // The database holds what the answers said, through the other instance.
        let token = Some(site.admin_token.as_str());
        let after = apps.pick(1).ok(token, "{ users(first: 20) { nodes { id profile { id } } } profiles { id } }", json!({})).await;
        let profiles: Vec<String> = after["profiles"].as_array().unwrap().iter().map(|p| p["id"].as_str().unwrap().to_string()).collect();
        for (user, profile) in &expected {
            let node = after["users"]["nodes"].as_array().unwrap().iter().find(|n| n["id"] == user.as_str());
            assert_eq!(node.map(|n| n["profile"]["id"].clone()), Some(json!(profile)), "user {user}: {after}");
        }
        assert!(kept.iter().all(|p| profiles.contains(p)), "a profile a move landed in is gone: {after}");
        assert!(!gone.iter().any(|p| profiles.contains(p)), "a deleted profile is still listed: {after}");
        assert_counters_match(&apps.pick(0).store).await;
    }
}

both_backends! {
    /// R4 decided at the lock: a move whose lock-free read finds a free
    /// license, but whose pool is emptied by a concurrent change before the
    /// move locks it, is refused with the numbers at the lock and writes
    /// nothing but its refusal event: the refusal of the pool's conditional
    /// update, inside the move's transaction, not of the lock-free read. On
    /// SQLite the move waits for the other change to commit before it can
    /// write anything.
    async fn r4_a_move_that_finds_its_pool_emptied_at_the_lock_is_refused(db: Db) {
        use sqlx::Connection;
        let app = TestApp::spawn(db).await;
        let site = app.site("Late", &[("CASE", 1)], false).await;
        let case = site.profile(&app, "Case", &["CASE"]).await;
        let user = site.user(&app, "Late Comer", &site.parking_profile).await;
        // A concurrent change holds the pool: it lowers the total to 0 (as setPoolTotal
        // would, R5: nothing is in use) and has not committed yet.
        let mut other = sqlx::AnyConnection::connect(&app.database_url).await.unwrap();
        let begin = if db == Db::Sqlite { "BEGIN IMMEDIATE" } else { "BEGIN" };
        sqlx::raw_sql(begin).execute(&mut other).await.unwrap();
        sqlx::raw_sql("UPDATE license_pools SET total = 0").execute(&mut other).await.unwrap();
        let change = "mutation($id: ID!, $p: ID!) { changeLoginProfile(id: $id, profileId: $p) { __typename \
                      ... on LicenseLimitExceeded { shortages { module { code } needed available shortfall } } } }";
        let request = {
            let (url, client, token, user, case) =
                (app.url.clone(), app.client.clone(), site.admin_token.clone(), user.clone(), case.clone());
            tokio::spawn(async move {
                let body = json!({ "query": change, "variables": { "id": user, "p": case } });
                let resp = client.post(format!("{url}/graphql")).bearer_auth(token).json(&body).send().await;
                resp.unwrap().json::<Value>().await.unwrap()
            })
        };
        if db == Db::Postgres {
            // The move read a free license without a lock (the other change is not
            // committed), so it went on to its transaction, and now waits for the pool
            // row. (A refusal on that read would not wait: its audit event locks nothing.)
            let waiting = "SELECT count(*) FROM pg_locks WHERE NOT granted";
            while sqlx::query_scalar::<_, i64>(waiting).fetch_one(&mut other).await.unwrap() == 0 {
                assert!(!request.is_finished(), "the move did not wait for the pool: {:?}", request.await);
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
        } else {
            // One writer at a time holds the whole file: the move waits for the other change.
            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
            assert!(!request.is_finished(), "the move waits for the other change");
        }
        sqlx::raw_sql("COMMIT").execute(&mut other).await.unwrap();
        let resp = request.await.unwrap();
        assert!(resp.get("errors").is_none(), "{resp}");
        assert_eq!(
            resp["data"]["changeLoginProfile"],
            json!({ "__typename": "LicenseLimitExceeded",
                    "shortages": [{ "module": { "code": "CASE" }, "needed": 1, "available": 0, "shortfall": 1 }] })
        );
        // Nothing changed: the user is still parked, the pool as the other change left it.
        let node = app.ok(Some(&site.admin_token), "query($id: ID!) { node(id: $id) { ... on User { profile { id } } } }", json!({ "id": user })).await;
        assert_eq!(node["node"]["profile"]["id"], site.parking_profile);
        assert_eq!(site.pool(&app, "CASE").await, (0, 0, 0));
        let q = "{ auditEvents(filter: { action: \"changeLoginProfile\" }) { nodes { outcome rule pools { module { code } usedBefore usedAfter totalBefore totalAfter shortfall } } } }";
        let events = app.ok(Some(&site.admin_token), q, json!({})).await;
        assert_eq!(
            events["auditEvents"]["nodes"],
            json!([{ "outcome": "REFUSED", "rule": "R4",
                     "pools": [{ "module": { "code": "CASE" }, "usedBefore": 0, "usedAfter": 1,
                                 "totalBefore": 0, "totalAfter": 0, "shortfall": 1 }] }])
        );
        assert_counters_match(&app.store).await;
    }
}

both_backends! {
    /// R2 (a user occupies through their profile's modules; a profile with
    /// users cannot be deleted, a decision of docs/domain.md): each profile's user
    /// count is its counter plus recorded changes that every instance folds
    /// into it now and then (migration 0006). Here folds race the moves, and
    /// each other, on every instance: the counts stay exact throughout (the
    /// profiles' userCount always sums to the number of users), each recorded
    /// change is added once (a recount agrees), and once the moves end one
    /// fold leaves nothing for the next.
    async fn r2_profile_user_counts_stay_exact_while_instances_fold_them_during_moves(db: Db) {
        let apps = Instances::start(db).await;
        let a = apps.pick(0);
        let site = a.site("Folding", &[("CASE", 1000), ("DOCUMENT", 1000)], false).await;
        let home = site.profile(a, "Home", &["CASE"]).await;
        let away = site.profile(a, "Away", &["DOCUMENT"]).await;
        let mut users = Vec::new();
        for i in 0..10 {
            users.push(site.user(a, &format!("Folder {i:02}"), &home).await);
        }
        let apps = std::sync::Arc::new(apps);
        let move_to = "mutation($id: ID!, $p: ID!) { changeLoginProfile(id: $id, profileId: $p) { __typename } }";
        let counts = "{ profiles { name userCount } }";
        let mut tasks = Vec::new();
        for (i, user) in users.into_iter().enumerate() {
            let (apps, token, home, away) = (apps.clone(), site.admin_token.clone(), home.clone(), away.clone());
            tasks.push(tokio::spawn(async move {
                let app = apps.pick(i);
                // An even number of moves: every user ends at home.
                for round in 0..12 {
                    let to = if round % 2 == 0 { &away } else { &home };
                    let r = app.ok(Some(&token), move_to, json!({ "id": user, "p": to })).await;
                    assert_eq!(r["changeLoginProfile"]["__typename"], "UpdateLoginSuccess", "{r}");
                    let listed = app.ok(Some(&token), counts, json!({})).await;
                    let sum: i64 = listed["profiles"].as_array().unwrap().iter().map(|p| p["userCount"].as_i64().unwrap()).sum();
                    // The administrator (parking profile) and the ten.
                    assert_eq!(sum, 11, "{listed}");
                }
            }));
        }
        for i in 0..2 * apps.0.len() {
            let apps = apps.clone();
            tasks.push(tokio::spawn(async move {
                for _ in 0..40 {
                    apps.pick(i).store.fold_profile_users().await.expect("fold");
                    tokio::time::sleep(std::time::Duration::from_millis(3)).await;
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let a = apps.pick(0);
        assert_counters_match(&a.store).await;
        a.store.fold_profile_users().await.expect("fold");
        assert_eq!(a.store.fold_profile_users().await.expect("fold"), 0, "a fold left recorded changes behind");
        assert_counters_match(&a.store).await;
        let listed = a.ok(Some(&site.admin_token), counts, json!({})).await;
        let count = |name: &str| listed["profiles"].as_array().unwrap().iter().find(|p| p["name"] == name).unwrap()["userCount"].clone();
        assert_eq!((count("Home"), count("Away")), (json!(10), json!(0)), "{listed}");
    }
}

both_backends! {
    /// R2 when one user is moved by several administrators at once: each
    /// move waits for the one before it and then moves the user from where
    /// that one left them. On PostgreSQL a move that waited finds the login
    /// pointing at another profile than the one its lock statement joined;
    /// it must lock again rather than answer that the login does not exist.
    /// Every move succeeds, and the counts end exact.
    async fn r2_concurrent_moves_of_one_user_all_succeed_and_keep_the_counts(db: Db) {
        let apps = Instances::start(db).await;
        let a = apps.pick(0);
        let site = a.site("Tug", &[("CASE", 100), ("DOCUMENT", 100)], false).await;
        let profiles = [
            site.profile(a, "Case", &["CASE"]).await,
            site.profile(a, "Document", &["DOCUMENT"]).await,
            site.profile(a, "Both", &["CASE", "DOCUMENT"]).await,
        ];
        let user = site.user(a, "Tugged User", &profiles[0]).await;
        let apps = std::sync::Arc::new(apps);
        let move_to = "mutation($id: ID!, $p: ID!) { changeLoginProfile(id: $id, profileId: $p) { __typename } }";
        let mut tasks = Vec::new();
        for i in 0..8 {
            let (apps, token, user, profiles) = (apps.clone(), site.admin_token.clone(), user.clone(), profiles.clone());
            tasks.push(tokio::spawn(async move {
                let app = apps.pick(i);
                for round in 0..10 {
                    let to = &profiles[(i + round) % 3];
                    let r = app.ok(Some(&token), move_to, json!({ "id": user, "p": to })).await;
                    assert_eq!(r["changeLoginProfile"]["__typename"], "UpdateLoginSuccess", "{r}");
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let a = apps.pick(0);
        assert_counters_match(&a.store).await;
        let listed = a.ok(Some(&site.admin_token), "{ profiles { name userCount } }", json!({})).await;
        let moved: i64 = listed["profiles"].as_array().unwrap().iter().filter(|p| p["name"] != "No modules").map(|p| p["userCount"].as_i64().unwrap()).sum();
        assert_eq!(moved, 1, "{listed}");
    }
}
