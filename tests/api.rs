//! API behaviour beyond single rules: constant SQL per list request
//! (DataLoaders), keyset pagination, filters and search by name, and what one
//! request costs.

mod common;

use common::*;
use license_gateway::domain::{Login, Person};
use license_gateway::store::{Parent, PersonFilter, Rows, Slice, UserFilter};
use serde_json::json;

both_backends! {
    /// A mutation that writes no session, login, person, owner or agreement
    /// (here `changeLoginProfile`, `createProfile`) leaves the instance's cached
    /// sessions trusted, so the reads after it need no session lookup; any
    /// other (here `updatePerson`) makes the next read check its session again.
    async fn reads_after_a_mutation_that_changes_no_session_keep_the_cached_session(db: Db) {
        let app = TestApp::spawn_with(db, 600_000).await;
        let site = app.site("Warm", &[("CASE", 10)], false).await;
        let token = Some(site.admin_token.as_str());
        let case = site.profile(&app, "Case", &["CASE"]).await;
        let user = site.user(&app, "Uma User", &case).await;
        let staff = site.person(&app, "Sid Staff").await;
        let read = "{ licensePools { total used } }";
        let statements = |body: (serde_json::Value, u64)| {
            assert!(body.0.get("errors").is_none(), "{}", body.0);
            body.1
        };
        statements(app.gql_counted(token, read, json!({})).await);
        assert_eq!(statements(app.gql_counted(token, read, json!({})).await), 1, "a warm read");
        let change = "mutation($id: ID!, $p: ID!) { changeLoginProfile(id: $id, profileId: $p) { __typename } }";
        app.ok(token, change, json!({ "id": user, "p": site.parking_profile })).await;
        assert_eq!(statements(app.gql_counted(token, read, json!({})).await), 1, "after changeLoginProfile");
        site.profile(&app, "Another", &[]).await;
        assert_eq!(statements(app.gql_counted(token, read, json!({})).await), 1, "after createProfile");
        let rename = "mutation($id: ID!) { updatePerson(id: $id, input: { name: \"Sid Renamed\" }) { __typename } }";
        app.ok(token, rename, json!({ "id": staff })).await;
        assert_eq!(statements(app.gql_counted(token, read, json!({})).await), 2, "after updatePerson: a lookup");
        assert_eq!(statements(app.gql_counted(token, read, json!({})).await), 1, "warm again");
    }
}

both_backends! {
    /// Issue 4: every list field costs a fixed number of statements, however
    /// many items it holds: each connection with every nested list and
    /// object its nodes have, at 2 items and at 50, and the unpaginated lists
    /// with few items and with many. (A relation that no item of a page has
    /// costs nothing, so the small pages are made to hold every kind.)
    async fn every_list_field_runs_the_same_number_of_statements_for_any_number_of_items(db: Db) {
        let app = TestApp::spawn_with(db, 600_000).await;
        let shop = app.site("Shop", &[("CASE", 100), ("DOCUMENT", 100)], true).await;
        let asks = app.site("Asks", &[("CASE", 100), ("DOCUMENT", 100)], false).await;
        let (shop_token, asks_token, op) = (Some(shop.admin_token.as_str()), Some(asks.admin_token.as_str()), Some(app.operator().await));
        let lines = json!([{ "module": "CASE", "total": 150 }, { "module": "DOCUMENT", "total": 120 }]);
        let order = "mutation($l: [TotalLineInput!]!) { createLicenseOrder(lines: $l) { ... on LicenseOrderSuccess { order { id } } } }";
        let checkout = "mutation($id: ID!, $k: String!) { checkoutLicenseOrder(id: $id, idempotencyKey: $k) { __typename } }";
        let submit = "mutation($l: [TotalLineInput!]!, $m: String!) { submitChangeRequest(lines: $l, message: $m) { __typename } }";
        let assign = "mutation($p: ID!, $n: String!) { assignResponsibility(personId: $p, kind: FORM, name: $n) { __typename } }";
        let both = shop.profile(&app, "Both", &["CASE", "DOCUMENT"]).await;
        for i in 0..8 {
            let id = app.ok(shop_token, order, json!({ "l": lines })).await["createLicenseOrder"]["order"]["id"].clone();
            if i % 2 == 0 {
                app.ok(shop_token, checkout, json!({ "id": id, "k": format!("k{i}") })).await;
            }
            app.ok(asks_token, submit, json!({ "l": lines, "m": format!("request {i}") })).await;
            // Named to come first, so that the small pages hold responsibilities too.
            let user = shop.user(&app, &format!("Aa Shop User {i}"), &both).await;
            let person = app.ok(shop_token, "query($id: ID!) { node(id: $id) { ... on User { person { id } } } }", json!({ "id": user })).await;
            for duty in ["Form A", "Form B"] {
                app.ok(shop_token, assign, json!({ "p": person["node"]["person"]["id"], "n": format!("{duty} {i}") })).await;
            }
        }
        // The newest events (the first page) carry pools, an actor and a target person too.
        shop.user(&app, "Last User", &both).await;
        let connections = [
            ("licenseOrders", shop_token, "query($n: Int) { licenseOrders(first: $n) { edges { cursor node { id status createdAt checkedOutAt
                createdBy { name deleted person { name } } checkedOutBy { name person { name } }
                lines { module { code name } newTotal totalBefore totalAfter } } } pageInfo { hasNextPage endCursor } } }"),
            ("changeRequests", op.as_deref(), "query($n: Int) { changeRequests(first: $n) { nodes { id status message createdAt decidedBy reason
                site { name licensePools { id module { code } total used } } requestedBy { name person { name } }
                lines { module { code } newTotal totalBefore totalAfter } } } }"),
            ("auditEvents", shop_token, "query($n: Int) { auditEvents(first: $n) { nodes { id at action targetId outcome rule detail
                actor { name deleted person { name user { username } } } targetPerson { name }
                pools { module { code } usedBefore usedAfter totalBefore totalAfter available shortfall
                        pool { id total used module { code } } } } } }"),
            ("people", shop_token, "query($n: Int) { people(first: $n) { nodes { name deleted
                responsibilities { kind name holder { name } }
                user { username active licensedModules { code } profile { name userCount modules { code } } } } } }"),
            ("users", shop_token, "query($n: Int) { users(first: $n) { nodes { username licensedModules { code name }
                person { name responsibilities { name } } profile { name modules { code } } } } }"),
        ];
        for (name, token, q) in connections {
            app.gql_counted(token, q, json!({ "n": 2 })).await;
            let (small, s_small) = app.gql_counted(token, q, json!({ "n": 2 })).await;
            let (large, s_large) = app.gql_counted(token, q, json!({ "n": 50 })).await;
            assert!(small.get("errors").is_none() && large.get("errors").is_none(), "{name}: {small} {large}");
            let count = |v: &serde_json::Value| {
                let c = &v["data"][name];
                c["nodes"].as_array().or(c["edges"].as_array()).map_or(0, Vec::len)
            };
            assert!(count(&large) > 2 && count(&small) == 2, "{name}: {} and {} items", count(&small), count(&large));
            assert_eq!(s_small, s_large, "{name}: statements must not grow with the page size");
        }
        // The same backward, before the last item, with the total count: one more statement
        // (the count) at any page size. (Two more sites, so that sites has pages to compare;
        // the oldest events carry no pools, the oldest createLogin events do.)
        for name in ["Third", "Fourth"] {
            app.site(name, &[("CASE", 1)], false).await;
        }
        let sites = ("sites", op.as_deref(), "query($n: Int) { sites(first: $n) { nodes { name agreement { selfService }
            licensePools { total module { code } } } } }");
        for (name, token, q) in connections.into_iter().chain([sites]) {
            app.gql_counted(token, q, json!({ "n": 2 })).await;
            let forward = app.gql_counted(token, q, json!({ "n": 2 })).await.1;
            let filter = if name == "auditEvents" { "filter: { action: \"createLogin\" }" } else { "" };
            let last = format!("query {{ {name}(last: 1 {filter}) {{ pageInfo {{ endCursor }} }} }}");
            let before = app.ok(token, &last, json!({})).await[name]["pageInfo"]["endCursor"].clone();
            let backward = format!("(last: $n, before: $c {filter}) {{ totalCount");
            let q = q.replace("query($n: Int)", "query($n: Int, $c: String)").replace("(first: $n) {", &backward);
            let (small, s_small) = app.gql_counted(token, &q, json!({ "n": 2, "c": before })).await;
            let (large, s_large) = app.gql_counted(token, &q, json!({ "n": 50, "c": before })).await;
            assert!(small.get("errors").is_none() && large.get("errors").is_none(), "{name}: {small} {large}");
            let count = |v: &serde_json::Value| {
                let c = &v["data"][name];
                c["nodes"].as_array().or(c["edges"].as_array()).map_or(0, Vec::len)
            };
            assert!(count(&large) > 2 && count(&small) == 2, "{name}: {} and {} items", count(&small), count(&large));
            assert_eq!(small["data"][name]["totalCount"], large["data"][name]["totalCount"]);
            assert_eq!((s_small, s_large), (forward + 1, forward + 1), "{name} backward with totalCount: statements");
        }
        // Unpaginated lists: profiles and pools, before and after ten more profiles.
        let lists = "{ profiles { id name userCount modules { code name } } licensePools { id module { code } total used available } }";
        app.gql_counted(shop_token, lists, json!({})).await;
        let (_, few) = app.gql_counted(shop_token, lists, json!({})).await;
        for i in 0..10 {
            shop.profile(&app, &format!("More {i}"), if i % 2 == 0 { &["CASE"][..] } else { &["CASE", "DOCUMENT"][..] }).await;
        }
        let (body, many) = app.gql_counted(shop_token, lists, json!({})).await;
        assert!(body["data"]["profiles"].as_array().unwrap().len() >= 12, "{body}");
        assert_eq!(few, many, "profiles: statements must not grow with the number of profiles");
    }
}

both_backends! {
    async fn list_requests_run_the_same_number_of_statements_for_any_page_size(db: Db) {
        // Reads trust a checked session for a long time here, so that the counts
        // below do not depend on how fast this machine runs the test.
        let app = TestApp::spawn_with(db, 600_000).await;
        let site = app.site("Counting", &[("CASE", 100), ("DOCUMENT", 100)], false).await;
        let profiles = [
            site.profile(&app, "Case", &["CASE"]).await,
            site.profile(&app, "Doc", &["DOCUMENT"]).await,
            site.profile(&app, "Both", &["CASE", "DOCUMENT"]).await,
            site.parking_profile.clone(),
        ];
        for i in 0..60 {
            site.user(&app, &format!("User {i:02}"), &profiles[i % 4]).await;
        }
        let users = "query($n: Int) { users(first: $n) { edges { node { username validUntil person { name } profile { name modules { code } } } } } }";
        let people = "query($n: Int) { people(first: $n) { edges { node { name user { username profile { name modules { code } } } } } } }";
        let sites = "query($n: Int) { sites(first: $n) { nodes { name agreement { selfService } licensePools { total used module { code } } } } }";
        // A mutation that may change a session (a person renamed) makes every token's
        // next read check its session again; the set-up's mutations leave them trusted.
        let extra = site.person(&app, "Extra Person").await;
        let rename = "mutation($id: ID!) { updatePerson(id: $id, input: { name: \"Extra Renamed\" }) { __typename } }";
        app.ok(Some(&site.admin_token), rename, json!({ "id": extra })).await;
        for (name, q, token) in [("users", users, &site.admin_token), ("people", people, &site.admin_token), ("sites", sites, &site.operator_token)] {
            // The first read of a token since that mutation checks its session in
            // the database; the next ones reuse the check (`people` follows `users`
            // with the same token, so its first read is already warm).
            let (_, first) = app.gql_counted(Some(token), q, json!({ "n": 2 })).await;
            let (small, s_small) = app.gql_counted(Some(token), q, json!({ "n": 2 })).await;
            let (large, s_large) = app.gql_counted(Some(token), q, json!({ "n": 50 })).await;
            assert!(small.get("errors").is_none() && large.get("errors").is_none(), "{small} {large}");
            assert!(s_small > 0, "the statement counter works");
            assert_eq!(s_small, s_large, "{name}: statements must not grow with the page size");
            let lookup = u64::from(name != "people");
            assert_eq!(first, s_small + lookup, "{name}: a warm session saves exactly the session lookup");
        }
        // The users page of the benchmark's Q1: page (with persons), profiles with their modules.
        let (_, q1) = app.gql_counted(Some(&site.admin_token), users, json!({ "n": 50 })).await;
        assert_eq!(q1, 2, "users(first: 50) took {q1} statements");
        // Q2: pools (maintained counters, never a recount) with their modules.
        let (_, q2) = app.gql_counted(Some(&site.admin_token), "{ licensePools { module { code } total used available } }", json!({})).await;
        assert_eq!(q2, 1, "licensePools took {q2} statements");
        // M1, a guarded write, costs the same whatever the site's size. On PostgreSQL the
        // admin's session was checked on this instance before, so no lookup: the audit event's
        // statement checks the session instead (SQLite looks it up first). A lock-free read of
        // login, profiles' modules and pools (a refusal would end here); begin, lock the login
        // and share both profiles' locks (one statement), set profile returning both profiles'
        // modules, record the move of the user count, one conditional update per pool that
        // changes (R4), audit, commit.
        let lookup = u64::from(db == Db::Sqlite);
        let ids = app.ok(Some(&site.admin_token), "{ users(first: 2, filter: { module: \"CASE\" }) { nodes { id } } }", json!({})).await;
        let user = ids["users"]["nodes"][0]["id"].as_str().unwrap().to_string();
        let change = "mutation($id: ID!, $p: ID!) { changeLoginProfile(id: $id, profileId: $p) { __typename } }";
        let (case_total, case_used, _) = site.pool(&app, "CASE").await;
        let (body, m1) = app.gql_counted(Some(&site.admin_token), change, json!({ "id": user, "p": profiles[3] })).await;
        assert_eq!(body["data"]["changeLoginProfile"]["__typename"], "UpdateLoginSuccess");
        assert_eq!(m1, 8 + lookup, "changeLoginProfile took {m1} statements");
        // A refused M1 (R4) that one lock-free read shows cannot fit: (the lookup,) that read
        // and the refusal's audit event; no transaction, no lock.
        let (_, doc_used, _) = site.pool(&app, "DOCUMENT").await;
        let set = "mutation($s: ID!, $t: Int!) { setPoolTotal(siteId: $s, module: \"DOCUMENT\", total: $t) { __typename } }";
        app.ok(Some(&site.operator_token), set, json!({ "s": site.id, "t": doc_used })).await;
        let (body, refused) = app.gql_counted(Some(&site.admin_token), change, json!({ "id": user, "p": profiles[2] })).await;
        assert_eq!(body["data"]["changeLoginProfile"]["__typename"], "LicenseLimitExceeded", "{body}");
        assert_eq!(refused, 2 + lookup, "a refused changeLoginProfile took {refused} statements");
        // changeLoginProfile (and setPoolTotal) change no session: the next read still
        // trusts its session check.
        let (_, after) = app.gql_counted(Some(&site.admin_token), "{ licensePools { total } }", json!({})).await;
        assert_eq!(after, 1, "a read after session-neutral mutations needs no lookup");
        // R4: it wrote nothing but its audit event, which carries the numbers of the moment it
        // was decided on: CASE would have fit (+1), DOCUMENT did not.
        let (case_after, doc_after) = (site.pool(&app, "CASE").await, site.pool(&app, "DOCUMENT").await);
        assert_eq!(doc_after, (doc_used, doc_used, 0));
        let q = "{ auditEvents(filter: { action: \"changeLoginProfile\" }) { nodes { outcome rule actor { name } targetId pools { module { code } usedBefore usedAfter totalBefore totalAfter shortfall } } } }";
        let events = app.ok(Some(&site.admin_token), q, json!({})).await;
        let last = &events["auditEvents"]["nodes"][0];
        // The accepted move's event, written in its transaction.
        assert_eq!(
            events["auditEvents"]["nodes"][1],
            json!({ "outcome": "ACCEPTED", "rule": null, "actor": { "name": "Counting Admin" }, "targetId": user,
                    "pools": [{ "module": { "code": "CASE" }, "usedBefore": case_used, "usedAfter": case_used - 1,
                                "totalBefore": case_total, "totalAfter": case_total, "shortfall": 0 }] })
        );
        assert_eq!(last["outcome"], "REFUSED", "{events}");
        assert_eq!(last["rule"], "R4");
        assert_eq!(
            last["pools"],
            json!([
                { "module": { "code": "CASE" }, "usedBefore": case_after.1, "usedAfter": case_after.1 + 1,
                  "totalBefore": case_after.0, "totalAfter": case_after.0, "shortfall": 0 },
                { "module": { "code": "DOCUMENT" }, "usedBefore": doc_used, "usedAfter": doc_used + 1,
                  "totalBefore": doc_used, "totalAfter": doc_used, "shortfall": 1 },
            ])
        );
        // What a move answers for client caches costs one statement each, however large
        // the site: the user's new profile, the profile it left, the pools with their modules.
        let cached = "mutation($id: ID!, $p: ID!) { changeLoginProfile(id: $id, profileId: $p) { ... on UpdateLoginSuccess {
            user { id profile { id userCount } } previousProfile { id userCount } licensePools { id total used module { code } } } } }";
        let (_, bare) = app.gql_counted(Some(&site.admin_token), change, json!({ "id": user, "p": profiles[0] })).await;
        app.ok(Some(&site.admin_token), change, json!({ "id": user, "p": profiles[3] })).await;
        let (body, full) = app.gql_counted(Some(&site.admin_token), cached, json!({ "id": user, "p": profiles[0] })).await;
        assert_eq!(body["data"]["changeLoginProfile"]["previousProfile"]["id"], profiles[3], "{body}");
        // On PostgreSQL the move itself needed no session lookup (its writes were guarded),
        // but the answer's profiles are judged for a principal, who is looked up once.
        let lookup = u64::from(db == Db::Postgres);
        assert_eq!(full, bare + 3 + lookup, "a move answering its profiles and pools took {full} statements, a bare one {bare}");
        assert_counters_match(&app.store).await;
    }
}

both_backends! {
    async fn reads_trust_a_checked_session_briefly_and_mutations_never(db: Db) {
        // Two gateway instances on one database: `a` caches sessions for a long time, `b` not at all.
        let a = TestApp::spawn_with(db, 600_000).await;
        let b = a.another_instance(0).await;
        let site = a.site("Sessions", &[("CASE", 5)], false).await;
        let token = a.sign_in("sessions-admin", PASSWORD).await;
        let viewer = "{ viewer { username } }";
        a.ok(Some(&token), viewer, json!({})).await;
        // Signed out through `b`: `b` refuses at once; `a` may still serve reads on its
        // recent check (the documented SESSION_CACHE_MS window) but never a change.
        b.ok(Some(&token), "mutation { signOut }", json!({})).await;
        assert_eq!(error_code(&b.gql(Some(&token), viewer, json!({})).await), "UNAUTHENTICATED");
        assert_eq!(a.ok(Some(&token), viewer, json!({})).await["viewer"]["username"], "sessions-admin");
        let change = "mutation { createPerson(input: { name: \"Not Made\" }) { __typename } }";
        assert_eq!(error_code(&a.gql(Some(&token), change, json!({})).await), "UNAUTHENTICATED");
        // That mutation ran on `a`, so `a` no longer trusts any cached session.
        assert_eq!(error_code(&a.gql(Some(&token), viewer, json!({})).await), "UNAUTHENTICATED");
        let people = a.ok(Some(&site.admin_token), "{ people(filter: { nameContains: \"Not Made\" }) { edges { cursor } } }", json!({})).await;
        assert_eq!(people["people"]["edges"], json!([]), "nothing was written");
        // Signing out on `a` itself ends the session there at once.
        let again = a.sign_in("sessions-admin", PASSWORD).await;
        a.ok(Some(&again), viewer, json!({})).await;
        a.ok(Some(&again), "mutation { signOut }", json!({})).await;
        assert_eq!(error_code(&a.gql(Some(&again), viewer, json!({})).await), "UNAUTHENTICATED");
    }
}

both_backends! {
    /// R9 with the session cache: a change that starts from a session this instance
    /// checked before (no lookup) writes only if, in the statement of its audit event,
    /// the session still holds as it was checked. Otherwise nothing is written and the
    /// change is decided again on a fresh check: it goes through for a renamed
    /// administrator, is FORBIDDEN for a demoted one and UNAUTHENTICATED once the
    /// session was ended, each time through another instance. (SQLite looks the
    /// session up before every change: the same answers come from that lookup.)
    async fn a_change_from_a_cached_session_writes_only_while_that_session_holds(db: Db) {
        let a = TestApp::spawn_with(db, 600_000).await;
        let b = a.another_instance(0).await;
        let site = a.site("Guarded", &[("CASE", 5)], false).await;
        let case = site.profile(&a, "Case", &["CASE"]).await;
        let user = site.user(&a, "Moved User", &site.parking_profile).await;
        let second = site.user(&a, "Second Admin", &site.parking_profile).await;
        let update = "mutation($id: ID!, $i: UpdateLoginInput!) { updateLogin(id: $id, input: $i) { __typename } }";
        let set = |input: serde_json::Value| json!({ "id": second, "i": input });
        b.ok(Some(&site.admin_token), update, set(json!({ "isAdministrator": true }))).await;
        let token = a.sign_in("second.admin", PASSWORD).await;
        a.ok(Some(&token), "{ viewer { username } }", json!({})).await;
        let change = "mutation($id: ID!, $p: ID!) { changeLoginProfile(id: $id, profileId: $p) { __typename } }";
        let moved = |p: &str| json!({ "id": user, "p": p });
        let profile = || async {
            let q = "query($id: ID!) { node(id: $id) { ... on User { profile { id } } } }";
            let node = a.ok(Some(&site.admin_token), q, json!({ "id": user })).await;
            node["node"]["profile"]["id"].as_str().unwrap().to_string()
        };
        // From the cache: no session lookup (8 statements, as the counting test explains).
        let guarded = db == Db::Postgres;
        let (body, statements) = a.gql_counted(Some(&token), change, moved(&case)).await;
        assert_eq!(body["data"]["changeLoginProfile"]["__typename"], "UpdateLoginSuccess", "{body}");
        assert_eq!(statements, if guarded { 8 } else { 9 });
        // Renamed elsewhere: the guard fails, the fresh check finds the session valid.
        b.ok(Some(&site.admin_token), update, set(json!({ "username": "second.renamed" }))).await;
        let (body, statements) = a.gql_counted(Some(&token), change, moved(&site.parking_profile)).await;
        assert_eq!(body["data"]["changeLoginProfile"]["__typename"], "UpdateLoginSuccess", "{body}");
        assert!(!guarded || statements > 10, "decided twice: {statements} statements");
        assert_eq!(profile().await, site.parking_profile);
        // Demoted elsewhere: FORBIDDEN, nothing moved.
        b.ok(Some(&site.admin_token), update, set(json!({ "isAdministrator": false }))).await;
        assert_eq!(error_code(&a.gql(Some(&token), change, moved(&case)).await), "FORBIDDEN");
        assert_eq!(profile().await, site.parking_profile);
        // Promoted again: the cached refusal does not stick.
        b.ok(Some(&site.admin_token), update, set(json!({ "isAdministrator": true }))).await;
        assert_eq!(a.ok(Some(&token), change, moved(&case)).await["changeLoginProfile"]["__typename"], "UpdateLoginSuccess");
        // Signed out elsewhere: UNAUTHENTICATED, nothing moved (a refusal's event is guarded too).
        b.ok(Some(&token), "mutation { signOut }", json!({})).await;
        assert_eq!(error_code(&a.gql(Some(&token), change, moved(&site.parking_profile)).await), "UNAUTHENTICATED");
        assert_eq!(profile().await, case);
        let full = "mutation($s: ID!, $t: Int!) { setPoolTotal(siteId: $s, module: \"CASE\", total: $t) { __typename } }";
        b.ok(Some(&site.operator_token), full, json!({ "s": site.id, "t": 1 })).await;
        let other = site.user(&a, "Other User", &site.parking_profile).await;
        assert_eq!(error_code(&a.gql(Some(&token), change, json!({ "id": other, "p": case })).await), "UNAUTHENTICATED");
        // The trail: three accepted moves by the second administrator, one denial, no refusal.
        let q = "{ auditEvents(filter: { action: \"changeLoginProfile\" }) { nodes { outcome rule actor { name } } } }";
        let events = a.ok(Some(&site.admin_token), q, json!({})).await;
        let by_second: Vec<(String, String)> = events["auditEvents"]["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["actor"]["name"] == "Second Admin")
            .map(|e| (e["outcome"].as_str().unwrap().to_string(), e["rule"].as_str().unwrap_or("").to_string()))
            .collect();
        assert_eq!(by_second.iter().filter(|e| e.0 == "ACCEPTED").count(), 3, "{events}");
        assert!(by_second.iter().all(|e| e.0 == "ACCEPTED" || e.1 != "R4"), "{events}");
        assert_counters_match(&a.store).await;
    }
}

both_backends! {
    async fn users_page_by_username_with_cursors_without_gaps_or_repeats(db: Db) {
        let app = TestApp::spawn(db).await;
        let site = app.site("Paging", &[("CASE", 10)], false).await;
        for name in ["Zed Z", "amy A", "Bob B", "carl C", "Dina D"] {
            site.user(&app, name, &site.parking_profile).await;
        }
        let q = "query($a: String) { users(first: 2, after: $a) { edges { cursor node { username } } pageInfo { hasNextPage hasPreviousPage endCursor } } }";
        let mut seen = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let page = app.ok(Some(&site.admin_token), q, json!({ "a": after })).await;
            for e in page["users"]["edges"].as_array().unwrap() {
                seen.push(e["node"]["username"].as_str().unwrap().to_string());
            }
            assert_eq!(page["users"]["pageInfo"]["hasPreviousPage"], after.is_some());
            if page["users"]["pageInfo"]["hasNextPage"] == false {
                break;
            }
            after = page["users"]["pageInfo"]["endCursor"].as_str().map(str::to_string);
        }
        assert_eq!(seen, ["amy.a", "bob.b", "carl.c", "dina.d", "paging-admin", "zed.z"]);
        let bad = app.gql(Some(&site.admin_token), q, json!({ "a": "%%%" })).await;
        assert_eq!(error_code(&bad), "BAD_USER_INPUT");
    }
}

both_backends! {
    async fn users_can_be_filtered_by_profile_module_and_name(db: Db) {
        let app = TestApp::spawn(db).await;
        let site = app.site("Filters", &[("CASE", 10), ("DOCUMENT", 10)], false).await;
        let case = site.profile(&app, "Case", &["CASE"]).await;
        let both = site.profile(&app, "Both", &["CASE", "DOCUMENT"]).await;
        site.user(&app, "Cora Case", &case).await;
        site.user(&app, "Bert Both", &both).await;
        let q = "query($f: UsersFilter) { users(filter: $f) { nodes { username } } }";
        let names = |v: serde_json::Value| -> Vec<String> {
            v["users"]["nodes"].as_array().unwrap().iter().map(|n| n["username"].as_str().unwrap().to_string()).collect()
        };
        assert_eq!(names(app.ok(Some(&site.admin_token), q, json!({ "f": { "module": "DOCUMENT" } })).await), ["bert.both"]);
        assert_eq!(names(app.ok(Some(&site.admin_token), q, json!({ "f": { "module": "case" } })).await), ["bert.both", "cora.case"]);
        assert_eq!(names(app.ok(Some(&site.admin_token), q, json!({ "f": { "profileId": case } })).await), ["cora.case"]);
        assert_eq!(names(app.ok(Some(&site.admin_token), q, json!({ "f": { "nameContains": "BERT" } })).await), ["bert.both"]);
        assert_eq!(names(app.ok(Some(&site.admin_token), q, json!({ "f": { "nameContains": "%" } })).await), Vec::<String>::new());
    }
}

/// A dataset for the paging tests: the self-service site "Walk" with users
/// on two profiles, staff without a login, a deleted person and license
/// orders; the site "Asks" with change requests; and a third site.
struct Paged {
    walk: Site,
    asks: Site,
    case: String,
    both: String,
    op: String,
}

async fn paged(app: &TestApp) -> Paged {
    let walk = app.site("Walk", &[("CASE", 50), ("DOCUMENT", 50)], true).await;
    let asks = app.site("Asks", &[("CASE", 50)], false).await;
    app.site("Third", &[("CASE", 1)], false).await;
    let case = walk.profile(app, "Case", &["CASE"]).await;
    let both = walk.profile(app, "Both", &["CASE", "DOCUMENT"]).await;
    for (name, profile) in [
        ("Ada Case", &case),
        ("Bo Both", &both),
        ("Cy Case", &case),
        ("Di Case", &case),
        ("Ed Both", &both),
        ("Fi Case", &case),
    ] {
        walk.user(app, name, profile).await;
    }
    for name in ["Gus Staff", "Hal Staff", "Ida Staff"] {
        walk.person(app, name).await;
    }
    let gone = walk.person(app, "Jo Gone").await;
    app.ok(Some(&walk.admin_token), "mutation($p: ID!) { deletePerson(id: $p) { __typename } }", json!({ "p": gone }))
        .await;
    let order = "mutation { createLicenseOrder(lines: [{ module: \"CASE\", total: 60 }]) { ... on LicenseOrderSuccess { order { id } } } }";
    let discard = "mutation($id: ID!) { discardLicenseOrder(id: $id) { __typename } }";
    for i in 0..5 {
        let id = app.ok(Some(&walk.admin_token), order, json!({})).await["createLicenseOrder"]["order"]["id"].clone();
        if i % 2 == 1 {
            app.ok(Some(&walk.admin_token), discard, json!({ "id": id })).await;
        }
    }
    let submit = "mutation($m: String!) { submitChangeRequest(lines: [{ module: \"CASE\", total: 60 }], message: $m) { __typename } }";
    for i in 0..5 {
        app.ok(Some(&asks.admin_token), submit, json!({ "m": format!("request {i}") })).await;
    }
    let op = walk.operator_token.clone();
    Paged { walk, asks, case, both, op }
}

/// The ids of connection `field` (its arguments `args` besides paging), read
/// two at a time from the start forward, or from the end backward, in the
/// order visited. Checks every page on the way: at most two items, in the
/// list's order (the same cursors both ways), `startCursor` and `endCursor`
/// its first and last cursor, the side it came from flagged exactly when it
/// started at a cursor, the side it goes to until the walk ends, and the
/// same `totalCount` as the items visited.
async fn walk(app: &TestApp, token: &str, field: &str, args: &str, backward: bool) -> Vec<String> {
    let (size, cursor, ahead, behind) = if backward {
        ("last", "before", "hasPreviousPage", "hasNextPage")
    } else {
        ("first", "after", "hasNextPage", "hasPreviousPage")
    };
    let q = format!(
        "query($c: String) {{ {field}({args} {size}: 2, {cursor}: $c) {{ totalCount edges {{ cursor node {{ id }} }}
        pageInfo {{ hasPreviousPage hasNextPage startCursor endCursor }} }} }}"
    );
    let (mut visited, mut at) = (Vec::new(), None::<serde_json::Value>);
    let mut total;
    loop {
        let page = app.ok(Some(token), &q, json!({ "c": at })).await[field].clone();
        let edges = page["edges"].as_array().unwrap();
        let info = &page["pageInfo"];
        assert!((1..=2).contains(&edges.len()), "{field}({args}): a page of {} items: {page}", edges.len());
        assert_eq!(info["startCursor"], edges[0]["cursor"], "{page}");
        assert_eq!(info["endCursor"], edges[edges.len() - 1]["cursor"], "{page}");
        assert_eq!(info[behind], at.is_some(), "{field}({args}) {behind}: {page}");
        let mut ids: Vec<String> = edges.iter().map(|e| e["node"]["id"].as_str().unwrap().to_string()).collect();
        if backward {
            ids.reverse();
        }
        visited.extend(ids);
        total = page["totalCount"].clone();
        if info[ahead] == false {
            break;
        }
        at = Some(info[if backward { "startCursor" } else { "endCursor" }].clone());
        assert!(visited.len() < 100, "{field}({args}): the walk does not end");
    }
    assert_eq!(total, json!(visited.len()), "{field}({args}): totalCount");
    visited
}

both_backends! {
    /// Issue 16, item 5: every connection pages backward (`last`, `before`)
    /// through exactly the items it pages forward (`first`, `after`), in
    /// reverse, with `pageInfo` right at both ends and in between, with and
    /// without filters.
    async fn every_connection_pages_backward_through_the_items_it_pages_forward(db: Db) {
        let app = TestApp::spawn(db).await;
        let p = paged(&app).await;
        let (walk_site, asks_site) = (format!("siteId: \"{}\",", p.walk.id), format!("siteId: \"{}\",", p.asks.id));
        let lists = [
            (p.op.as_str(), "sites", String::new(), 3),
            (&p.walk.admin_token, "users", String::new(), 7),
            (&p.walk.admin_token, "users", "filter: { module: \"DOCUMENT\" },".to_string(), 2),
            (&p.op, "users", format!("{walk_site} filter: {{ profileId: \"{}\", nameContains: \"c\" }},", p.case), 4),
            (&p.walk.admin_token, "people", String::new(), 10),
            (&p.walk.admin_token, "people", "filter: { includeDeleted: true },".to_string(), 11),
            (&p.walk.admin_token, "people", "filter: { hasLogin: false },".to_string(), 3),
            (&p.walk.admin_token, "licenseOrders", String::new(), 5),
            (&p.walk.admin_token, "licenseOrders", "status: DISCARDED,".to_string(), 2),
            (&p.op, "changeRequests", String::new(), 5),
            (&p.op, "changeRequests", asks_site.clone(), 5),
            (&p.walk.admin_token, "auditEvents", String::new(), 0),
            (&p.op, "auditEvents", format!("{walk_site} filter: {{ action: \"createLogin\" }},"), 6),
        ];
        for (token, field, args, expected) in &lists {
            let forward = walk(&app, token, field, args, false).await;
            let mut backward = walk(&app, token, field, args, true).await;
            if *expected > 0 {
                assert_eq!(forward.len(), *expected, "{field}({args}): {forward:?}");
            }
            let distinct: std::collections::BTreeSet<&String> = forward.iter().collect();
            assert_eq!(distinct.len(), forward.len(), "{field}({args}): an item twice: {forward:?}");
            backward.reverse();
            assert_eq!(backward, forward, "{field}({args}): backward is not forward reversed");
        }
        // Between two cursors, forward and backward give the same items; only `before`
        // pages backward (the page right before it).
        let t = Some(p.walk.admin_token.as_str());
        let all = app.ok(t, "{ people(first: 10) { edges { cursor node { name } } } }", json!({})).await;
        let edges = all["people"]["edges"].as_array().unwrap();
        let names = |v: &serde_json::Value| -> Vec<String> {
            v["people"]["nodes"].as_array().unwrap().iter().map(|n| n["name"].as_str().unwrap().to_string()).collect()
        };
        let between = json!({ "a": edges[2]["cursor"], "b": edges[7]["cursor"] });
        let expected: Vec<&str> = edges[3..7].iter().map(|e| e["node"]["name"].as_str().unwrap()).collect();
        let q = |args: &str| {
            let a = if args.contains("$a") { "$a: String, " } else { "" };
            format!("query({a}$b: String) {{ people({args}) {{ nodes {{ name }} pageInfo {{ hasPreviousPage hasNextPage }} }} }}")
        };
        let forward = app.ok(t, &q("after: $a, before: $b, first: 3"), between.clone()).await;
        assert_eq!(names(&forward), expected[..3]);
        assert_eq!(forward["people"]["pageInfo"], json!({ "hasPreviousPage": true, "hasNextPage": true }));
        let backward = app.ok(t, &q("after: $a, before: $b, last: 4"), between.clone()).await;
        assert_eq!(names(&backward), expected);
        assert_eq!(backward["people"]["pageInfo"], json!({ "hasPreviousPage": false, "hasNextPage": true }));
        let only_before = app.ok(t, &q("before: $b"), json!({ "b": between["b"] })).await;
        assert_eq!(names(&only_before), edges[..7].iter().map(|e| e["node"]["name"].as_str().unwrap()).collect::<Vec<_>>());
        assert_eq!(only_before["people"]["pageInfo"], json!({ "hasPreviousPage": false, "hasNextPage": true }));
    }
}

both_backends! {
    /// A cursor names its list: given to another list (as `after` or
    /// `before`, at the root or below an object), or tampered with, it is
    /// refused as bad input naming the argument, never an internal error.
    /// So are page sizes out of range and `first` with `last`.
    async fn a_cursor_works_only_in_its_own_list_and_bad_paging_arguments_are_bad_input(db: Db) {
        let app = TestApp::spawn(db).await;
        let p = paged(&app).await;
        let t = Some(p.walk.admin_token.as_str());
        let cursor_of = |data: &serde_json::Value, field: &str| data[field]["edges"][0]["cursor"].clone();
        let firsts = app.ok(t, "{ users(first: 1) { edges { cursor } } people(first: 1) { edges { cursor } }
            licenseOrders(first: 1) { edges { cursor } } auditEvents(first: 1) { edges { cursor } } }", json!({})).await;
        let sites = app.ok(Some(&p.op), "{ sites(first: 1) { edges { cursor } } changeRequests(first: 1) { edges { cursor } } }", json!({})).await;
        let cursors = [
            ("users", cursor_of(&firsts, "users")),
            ("people", cursor_of(&firsts, "people")),
            ("licenseOrders", cursor_of(&firsts, "licenseOrders")),
            ("auditEvents", cursor_of(&firsts, "auditEvents")),
            ("sites", cursor_of(&sites, "sites")),
            ("changeRequests", cursor_of(&sites, "changeRequests")),
        ];
        let refused = |body: &serde_json::Value, field: &str, arg: &str, says: &str| {
            assert_eq!(error_code(body), "BAD_USER_INPUT", "{body}");
            assert_eq!(body["errors"][0]["extensions"]["field"], arg, "{body}");
            let message = body["errors"][0]["message"].as_str().unwrap();
            assert!(message.contains(says), "{field}: {message}");
        };
        for (list, _) in &cursors {
            let token = if ["sites", "changeRequests"].contains(list) { p.op.as_str() } else { p.walk.admin_token.as_str() };
            let site = if *list == "changeRequests" { format!("siteId: \"{}\",", p.walk.id) } else { String::new() };
            for (other, cursor) in cursors.iter().filter(|(other, _)| other != list) {
                for arg in ["after", "before"] {
                    let q = format!("query($c: String) {{ {list}({site} {arg}: $c) {{ nodes {{ id }} }} }}");
                    let body = app.gql(Some(token), &q, json!({ "c": cursor })).await;
                    refused(&body, list, arg, &format!("{arg} is a cursor of {other}, not of {list}"));
                    assert!(body["data"][list].is_null(), "{body}");
                }
            }
        }
        // Tampered: not base64, a position that is no number, a global id instead of a cursor.
        let site_id = p.walk.id.clone();
        for tampered in ["%%%", "c2l0ZXM6eA", site_id.as_str(), ""] {
            let body = app.gql(Some(&p.op), "query($c: String) { sites(before: $c) { nodes { id } } }", json!({ "c": tampered })).await;
            refused(&body, "sites", "before", "is not a cursor of sites");
        }
        // Below an object: a site's people refuse a cursor of users; a profile's users take one.
        let q = "query($s: ID!, $c: String) { node(id: $s) { ... on Site { people(after: $c) { nodes { id } } } } }";
        let body = app.gql(t, q, json!({ "s": p.walk.id, "c": cursors[0].1 })).await;
        refused(&body, "Site.people", "after", "is a cursor of users, not of people");
        let q = "query($p: ID!, $c: String) { node(id: $p) { ... on Profile { users(after: $c) { nodes { username } } } } }";
        let after_ada = app.ok(t, q, json!({ "p": p.case, "c": cursors[0].1 })).await;
        assert_eq!(after_ada["node"]["users"]["nodes"], json!([{ "username": "cy.case" }, { "username": "di.case" }, { "username": "fi.case" }]));
        // Page sizes and directions.
        for (args, arg, says) in [
            ("first: 0", "first", "first must be from 1 to 100, got 0"),
            ("first: 101", "first", "first must be from 1 to 100, got 101"),
            ("last: -1", "last", "last must be from 1 to 100, got -1"),
            ("last: 500", "last", "last must be from 1 to 100, got 500"),
            ("first: 2, last: 2", "last", "give first or last, not both"),
        ] {
            for list in ["users", "people", "licenseOrders", "auditEvents"] {
                let body = app.gql(t, &format!("{{ {list}({args}) {{ nodes {{ id }} }} }}"), json!({})).await;
                refused(&body, list, arg, says);
            }
            let body = app.gql(Some(&p.op), &format!("{{ sites({args}) {{ nodes {{ id }} }} }}"), json!({})).await;
            refused(&body, "sites", arg, says);
            let body = app.gql(Some(&p.op), &format!("{{ sites {{ nodes {{ people({args}) {{ totalCount }} }} }} }}"), json!({})).await;
            refused(&body, "Site.people", arg, says);
            assert_eq!(body["data"]["sites"]["nodes"][0], json!({ "people": null }), "{body}");
        }
    }
}

both_backends! {
    /// `totalCount` is the number of items the list holds with its filters,
    /// on every page alike; the audit trail's stops at the server's limit
    /// and says so.
    async fn total_count_is_the_number_of_items_with_the_filters_and_the_audit_count_stops_at_its_limit(db: Db) {
        let app = TestApp::spawn_flags(db, &["--audit-count-limit", "6"]).await;
        let p = paged(&app).await;
        let t = Some(p.walk.admin_token.as_str());
        let q = format!("{{ all: users(first: 1) {{ totalCount }} document: users(last: 1, filter: {{ module: \"DOCUMENT\" }}) {{ totalCount }}
            case: users(filter: {{ profileId: \"{}\", nameContains: \"DI\" }}) {{ totalCount nodes {{ username }} }}
            people {{ totalCount }} everyone: people(filter: {{ includeDeleted: true }}) {{ totalCount }}
            staff: people(filter: {{ hasLogin: false }}) {{ totalCount nodes {{ name }} }}
            licenseOrders {{ totalCount }} drafts: licenseOrders(status: DRAFT) {{ totalCount }}
            refused: auditEvents(filter: {{ outcome: REFUSED }}) {{ totalCount totalCountIsExact }}
            logins: auditEvents(filter: {{ action: \"createLogin\" }}) {{ totalCount totalCountIsExact }}
            trail: auditEvents(last: 1) {{ totalCount totalCountIsExact }} }}", p.case);
        let counts = app.ok(t, &q, json!({})).await;
        let expected = json!({
            "all": { "totalCount": 7 }, "document": { "totalCount": 2 },
            "case": { "totalCount": 1, "nodes": [{ "username": "di.case" }] },
            "people": { "totalCount": 10 }, "everyone": { "totalCount": 11 },
            "staff": { "totalCount": 3, "nodes": [{ "name": "Gus Staff" }, { "name": "Hal Staff" }, { "name": "Ida Staff" }] },
            "licenseOrders": { "totalCount": 5 }, "drafts": { "totalCount": 3 },
            "refused": { "totalCount": 0, "totalCountIsExact": true },
            "logins": { "totalCount": 6, "totalCountIsExact": true },
            "trail": { "totalCount": 6, "totalCountIsExact": false },
        });
        assert_eq!(counts, expected);
        let requests = app.ok(Some(&p.op), "{ sites { totalCount } changeRequests(status: PENDING) { totalCount }
            rejected: changeRequests(status: REJECTED) { totalCount } }", json!({})).await;
        assert_eq!(requests, json!({ "sites": { "totalCount": 3 }, "changeRequests": { "totalCount": 5 }, "rejected": { "totalCount": 0 } }));
        // A user more: every count that holds them says so, a profile's without filter from its maintained count.
        p.walk.user(&app, "Ken Both", &p.both).await;
        let q = "query($p: ID!) { users { totalCount } node(id: $p) { ... on Profile { userCount users { totalCount }
            active: users(filter: { active: true }) { totalCount } } } }";
        let after = app.ok(t, q, json!({ "p": p.both })).await;
        assert_eq!(after, json!({ "users": { "totalCount": 8 }, "node": { "userCount": 3, "users": { "totalCount": 3 }, "active": { "totalCount": 3 } } }));
    }
}

both_backends! {
    /// Issue 16, item 5: a site's people and users and a profile's users are
    /// connections: for any number of parents in one request, each parent's
    /// page (forward or backward, from a cursor, with filters and its count)
    /// is the page the root list gives for that parent alone; and only
    /// readers of the site's staff get them.
    async fn nested_connections_page_each_parent_like_its_own_list_and_only_for_staff_readers(db: Db) {
        let app = TestApp::spawn(db).await;
        let p = paged(&app).await;
        p.asks.person(&app, "Asa Asks").await;
        let parking = p.asks.profile(&app, "Parked", &[]).await;
        p.asks.user(&app, "Ann Asks", &parking).await;
        let page = "totalCount edges { cursor node { id } } pageInfo { hasPreviousPage hasNextPage startCursor endCursor }";
        let cursor = app.ok(Some(&p.walk.admin_token), "{ users(first: 2) { pageInfo { endCursor } } people(first: 4) { pageInfo { endCursor } } }", json!({})).await;
        let (users_cursor, people_cursor) = (cursor["users"]["pageInfo"]["endCursor"].clone(), cursor["people"]["pageInfo"]["endCursor"].clone());
        let vars = json!({ "u": users_cursor, "p": people_cursor });
        // The variables `args` uses, declared (a declared variable must be used).
        let declare = |args: &str, more: &str| {
            let used: Vec<&str> = [("$u", "$u: String"), ("$p", "$p: String")].iter().filter(|(v, _)| args.contains(v)).map(|(_, d)| *d).collect();
            let all: Vec<&str> = [more].into_iter().filter(|m| !m.is_empty()).chain(used).collect();
            if all.is_empty() { String::new() } else { format!("({})", all.join(", ")) }
        };
        // Every site at once, by the operator.
        let args = [
            ("people", "first: 2"),
            ("people", "last: 3, filter: { includeDeleted: true }"),
            ("people", "first: 2, after: $p"),
            ("people", "last: 2, before: $p, filter: { hasLogin: false }"),
            ("users", "first: 2"),
            ("users", "last: 1, filter: { module: \"CASE\" }"),
            ("users", "first: 3, after: $u"),
            ("users", "before: $u"),
        ];
        let fields: Vec<String> = args.iter().enumerate().map(|(i, (f, a))| format!("f{i}: {f}({a}) {{ {page} }}")).collect();
        let q = format!("query($u: String, $p: String) {{ sites {{ nodes {{ id {} }} }} }}", fields.join(" "));
        let sites = app.ok(Some(&p.op), &q, vars.clone()).await;
        let sites = sites["sites"]["nodes"].as_array().unwrap();
        assert_eq!(sites.len(), 3);
        for site in sites {
            for (i, (field, a)) in args.iter().enumerate() {
                let q = format!("query{} {{ {field}(siteId: $s, {a}) {{ {page} }} }}", declare(a, "$s: ID!"));
                let mut v = vars.clone();
                v["s"] = site["id"].clone();
                let alone = app.ok(Some(&p.op), &q, v).await;
                assert_eq!(site[format!("f{i}")], alone[*field], "site {} {field}({a})", site["id"]);
            }
        }
        // Every profile of a site at once, by its administrator.
        let args = ["first: 2", "last: 2", "first: 1, after: $u", "last: 2, before: $u, filter: { nameContains: \"o\" }"];
        let fields: Vec<String> = args.iter().enumerate().map(|(i, a)| format!("f{i}: users({a}) {{ {page} }}")).collect();
        let q = format!("query($u: String) {{ profiles {{ id userCount {} }} }}", fields.join(" "));
        let profiles = app.ok(Some(&p.walk.admin_token), &q, json!({ "u": users_cursor })).await;
        let profiles = profiles["profiles"].as_array().unwrap();
        assert_eq!(profiles.len(), 3);
        for profile in profiles {
            assert_eq!(profile["f1"]["totalCount"], profile["userCount"]);
            for (i, a) in args.iter().enumerate() {
                let filter = format!("filter: {{ profileId: \"{}\" {} }}", profile["id"].as_str().unwrap(),
                    if a.contains("nameContains") { ", nameContains: \"o\"" } else { "" });
                let a = a.split(", filter").next().unwrap();
                let q = format!("query{} {{ users({a}, {filter}) {{ {page} }} }}", declare(a, ""));
                let alone = app.ok(Some(&p.walk.admin_token), &q, json!({ "u": users_cursor })).await;
                assert_eq!(profile[format!("f{i}")], alone["users"], "profile {} users({a})", profile["id"]);
            }
        }
        // A site user sees their own profile and site, not who else is on them; an owner
        // sees the sites they own, not their staff.
        let user = app.sign_in("ada.case", PASSWORD).await;
        let mine = app.ok(Some(&user), "{ viewer { user { profile { name users { totalCount } } } site { people { totalCount } users { totalCount } } } }", json!({})).await;
        assert_eq!(mine["viewer"], json!({ "user": { "profile": { "name": "Case", "users": null } }, "site": { "people": null, "users": null } }));
    }
}

both_backends! {
    /// Issue 16, item 5: a connection below an object costs the same
    /// statements for one parent as for many, at any page size: each nested
    /// connection one statement for its page (and one for its count) for
    /// every parent of the request.
    async fn nested_connections_run_the_same_statements_for_one_parent_or_many(db: Db) {
        let app = TestApp::spawn_with(db, 600_000).await;
        let op = app.operator().await;
        let mut sites = Vec::new();
        for name in ["One", "Two", "Three", "Four"] {
            let site = app.site(name, &[("CASE", 100), ("DOCUMENT", 100)], false).await;
            let both = site.profile(&app, "Both", &["CASE", "DOCUMENT"]).await;
            for i in 0..3 {
                // Named to come first, so that the smallest pages hold a login with modules.
                site.user(&app, &format!("Aa {name} {i}"), &both).await;
            }
            site.person(&app, &format!("Zed {name}")).await;
            sites.push(site);
        }
        // Each nested connection on its own (so that what one loads cannot spare the other a load).
        let people = "query($s: Int, $n: Int) { sites(first: $s) { totalCount nodes { name
            people(first: $n, filter: { includeDeleted: true }) { totalCount pageInfo { hasNextPage endCursor }
                nodes { name responsibilities { name } user { username profile { name userCount modules { code } } } } } } } }";
        let users = "query($s: Int, $n: Int) { sites(last: $s) { nodes { name
            users(last: $n, filter: { module: \"CASE\", active: true }) { totalCount
                nodes { username licensedModules { code } person { name } profile { name } } } } } }";
        for (name, q) in [("people", people), ("users", users)] {
            app.gql_counted(Some(&op), q, json!({ "s": 1, "n": 1 })).await;
            let (one, s_one) = app.gql_counted(Some(&op), q, json!({ "s": 1, "n": 1 })).await;
            let (many, s_many) = app.gql_counted(Some(&op), q, json!({ "s": 4, "n": 50 })).await;
            assert!(one.get("errors").is_none() && many.get("errors").is_none(), "{one} {many}");
            let items = |v: &serde_json::Value| -> Vec<usize> {
                let sites = v["data"]["sites"]["nodes"].as_array().unwrap();
                sites.iter().map(|s| s[name]["nodes"].as_array().unwrap().len()).collect()
            };
            assert_eq!(items(&one), [1]);
            assert_eq!(items(&many), if name == "people" { [5, 5, 5, 5] } else { [3, 3, 3, 3] });
            assert_eq!(s_one, s_many, "sites with their {name}: statements must not grow with sites or items");
        }

        // A profile's users, for two profiles, for six, and for more than a hundred (one
        // windowed statement rather than a branch each): the same statements.
        let site = &sites[0];
        let t = Some(site.admin_token.as_str());
        let q = "query($n: Int) { profiles { id name users(last: $n) { totalCount nodes { username person { name } } }
            active: users(first: $n, filter: { active: true }) { totalCount pageInfo { hasNextPage } nodes { username licensedModules { code } } } } }";
        app.gql_counted(t, q, json!({ "n": 1 })).await;
        let (few, s_few) = app.gql_counted(t, q, json!({ "n": 1 })).await;
        for i in 0..4 {
            let profile = site.profile(&app, &format!("More {i}"), &["CASE"]).await;
            for j in 0..2 {
                site.user(&app, &format!("Mo {i} {j}"), &profile).await;
            }
        }
        app.gql_counted(t, q, json!({ "n": 50 })).await;
        let (more, s_more) = app.gql_counted(t, q, json!({ "n": 50 })).await;
        for i in 0..96 {
            site.profile(&app, &format!("Empty {i:02}"), &[]).await;
        }
        let (most, s_most) = app.gql_counted(t, q, json!({ "n": 50 })).await;
        assert!(few.get("errors").is_none() && more.get("errors").is_none() && most.get("errors").is_none(), "{few} {more}");
        assert_eq!(more["data"]["profiles"].as_array().unwrap().len(), 6, "{more}");
        let with_users: Vec<&serde_json::Value> =
            most["data"]["profiles"].as_array().unwrap().iter().filter(|p| p["users"]["totalCount"] != 0).collect();
        assert_eq!(with_users.len(), 6, "{most}");
        let same_six: Vec<&serde_json::Value> = more["data"]["profiles"].as_array().unwrap().iter().collect();
        assert_eq!(with_users, same_six, "each profile's page is the same read with a branch each or windowed");
        assert_eq!((s_few, s_more), (s_most, s_most), "profiles with their users: statements must not grow with profiles or items");
    }
}

both_backends! {
    /// The pages of many parents (past a hundred, one windowed statement
    /// rather than a branch each) are each parent's own page, in both
    /// directions, from a cursor and with a filter: the same rows one
    /// parent's statement reads.
    async fn the_pages_of_more_than_a_hundred_parents_are_one_statement_and_each_parents_own(db: Db) {
        let app = TestApp::spawn(db).await;
        let p = paged(&app).await;
        for i in 0..100 {
            p.walk.profile(&app, &format!("Empty {i:02}"), &[]).await;
        }
        let listed = app.ok(Some(&p.walk.admin_token), "{ profiles { id } }", json!({})).await;
        let ids: Vec<i64> = listed["profiles"].as_array().unwrap().iter().map(|p| number(p["id"].as_str().unwrap())).collect();
        assert_eq!(ids.len(), 103);
        let usernames = |rows: &Rows<(Login, Person)>| -> (Vec<String>, bool) {
            (rows.rows.iter().map(|(l, _)| l.username.clone()).collect(), rows.more)
        };
        let filters = [UserFilter::default(), UserFilter { name_contains: Some("C".into()), ..Default::default() }];
        let slices = [
            Slice { after: None, before: None, limit: 2, from_end: false },
            Slice { after: None, before: None, limit: 3, from_end: true },
            Slice { after: Some("bo.both".to_string()), before: None, limit: 2, from_end: false },
            Slice { after: None, before: Some("di.case".to_string()), limit: 1, from_end: true },
        ];
        for filter in &filters {
            for slice in &slices {
                let counting = app.store.counting();
                let all = counting.users_pages(Parent::Profile, &ids, filter, slice).await.unwrap();
                assert_eq!(counting.statements(), 1);
                assert_eq!(all.len(), ids.len());
                for id in &ids {
                    let alone = app.store.users_pages(Parent::Profile, &[*id], filter, slice).await.unwrap();
                    assert_eq!(usernames(&all[id]), usernames(&alone[id]), "profile {id}, {filter:?}, {slice:?}");
                }
                let read: usize = all.values().map(|r| r.rows.len()).sum();
                assert!(read > 0, "{filter:?}, {slice:?}: no rows at all");
            }
        }
        // The same for a site's people, a hundred sites and more (sites here are made without people).
        let sites: Vec<i64> = (1..=101).collect();
        let counting = app.store.counting();
        let filter = PersonFilter { include_deleted: true, ..Default::default() };
        let slice = Slice { after: None, before: Some(("Ida Staff".to_string(), i64::MAX)), limit: 4, from_end: true };
        let all = counting.people_pages(&sites, &filter, &slice).await.unwrap();
        assert_eq!(counting.statements(), 1);
        let walk = number(&p.walk.id);
        let alone = app.store.people_pages(&[walk], &filter, &slice).await.unwrap();
        let names = |rows: &Rows<Person>| -> Vec<String> { rows.rows.iter().map(|p| p.name.clone()).collect() };
        assert_eq!(names(&all[&walk]), ["Fi Case", "Gus Staff", "Hal Staff", "Ida Staff"]);
        assert_eq!((names(&all[&walk]), all[&walk].more), (names(&alone[&walk]), alone[&walk].more));
    }
}

/// The number in a global id (base64 of `Type:number`).
fn number(id: &str) -> i64 {
    use base64::Engine;
    let text = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(id).unwrap();
    String::from_utf8(text).unwrap().rsplit(':').next().unwrap().parse().unwrap()
}

/// The names of the search tests: Swedish letters in both cases, a
/// decomposed Å's composed twin, ß, Greek with a final sigma, É, and LIKE's
/// metacharacters `%` and `_` (with a twin that only an unescaped `_` finds).
const SEARCHED: [&str; 9] = [
    "Åsa Öberg",
    "Ängel Lind",
    "Nils Sjöström",
    "Jürgen Straße",
    "Οδυσσέας Σαββίδης",
    "Émile Zola",
    "Ada 100%",
    "Bo_Ek",
    "Bo Ek",
];

/// (search text, the names it finds among [`SEARCHED`]).
const SEARCHES: [(&str, &[&str]); 21] = [
    ("öberg", &["Åsa Öberg"]),
    ("ÖBERG", &["Åsa Öberg"]),
    ("ÅSA", &["Åsa Öberg"]),
    ("åsa", &["Åsa Öberg"]),
    ("A\u{30A}SA", &["Åsa Öberg"]),
    ("asa", &[]),
    ("ängel", &["Ängel Lind"]),
    ("ÄNGEL", &["Ängel Lind"]),
    ("SJÖSTRÖM", &["Nils Sjöström"]),
    ("STRASSE", &["Jürgen Straße"]),
    ("straße", &["Jürgen Straße"]),
    ("JÜRGEN", &["Jürgen Straße"]),
    ("ΟΔΥΣ", &["Οδυσσέας Σαββίδης"]),
    ("σαββίδης", &["Οδυσσέας Σαββίδης"]),
    ("ÉMILE", &["Émile Zola"]),
    ("emile", &[]),
    ("%", &["Ada 100%"]),
    ("0%", &["Ada 100%"]),
    ("_", &["Bo_Ek"]),
    ("O_E", &["Bo_Ek"]),
    ("\\", &[]),
];

/// The sorted names at `path` (a list of objects with `name`) in `data`.
fn names_at(data: &serde_json::Value, path: &[&str]) -> Vec<String> {
    let list = path.iter().fold(data, |v, key| &v[*key]);
    let mut names: Vec<String> = list
        .as_array()
        .unwrap_or_else(|| panic!("no list at {path:?}: {data}"))
        .iter()
        .map(|n| path_name(n).to_string())
        .collect();
    names.sort();
    names.dedup();
    names
}

fn path_name(node: &serde_json::Value) -> &str {
    node["name"]
        .as_str()
        .or_else(|| node["person"]["name"].as_str())
        .or_else(|| node["actor"]["name"].as_str())
        .unwrap()
}

fn sorted(names: &[&str]) -> Vec<String> {
    let mut names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    names.sort();
    names
}

both_backends! {
    /// Search ignores case in every alphabet, the same on both databases
    /// (one folding, made by the server), keeps å, ä, ö and é letters of
    /// their own, and takes `%` and `_` literally: people, users, and the
    /// audit trail's actors.
    async fn names_are_searched_without_case_in_any_alphabet_and_metacharacters_stay_literal(db: Db) {
        let app = TestApp::spawn(db).await;
        let site = app.site("Search", &[("CASE", 5)], false).await;
        let t = Some(site.admin_token.as_str());
        let mut people = Vec::new();
        for name in SEARCHED {
            people.push((name, site.person(&app, name).await));
        }
        let q = "query($f: PeopleFilter) { people(first: 100, filter: $f) { nodes { name } } }";
        for (text, found) in SEARCHES {
            let data = app.ok(t, q, json!({ "f": { "nameContains": text } })).await;
            assert_eq!(names_at(&data, &["people", "nodes"]), sorted(found), "people, nameContains {text:?}");
        }

        // Each of them but Ängel, Nils and Émile becomes a user and, as an
        // administrator, an actor on the audit trail.
        let acting = ["Åsa Öberg", "Jürgen Straße", "Οδυσσέας Σαββίδης", "Ada 100%", "Bo_Ek", "Bo Ek"];
        let create = "mutation($i: CreateLoginInput!) { createLogin(input: $i) { __typename } }";
        for (i, name) in acting.iter().enumerate() {
            let person = &people.iter().find(|p| p.0 == *name).unwrap().1;
            let username = format!("searched.{i}");
            let login = json!({ "i": { "personId": person, "username": username, "password": PASSWORD,
                                       "profileId": site.parking_profile, "isAdministrator": true } });
            let r = app.ok(t, create, login).await;
            assert_eq!(r["createLogin"]["__typename"], "CreateLoginSuccess", "{r}");
            let token = app.sign_in(&username, PASSWORD).await;
            let made = app.ok(Some(&token), "mutation { createPerson(input: { name: \"Hired\" }) { __typename } }", json!({})).await;
            assert_eq!(made["createPerson"]["__typename"], "CreatePersonSuccess", "{made}");
        }
        let users = "query($f: UsersFilter) { users(first: 100, filter: $f) { nodes { person { name } } } }";
        let audit = "query($f: AuditEventsFilter) { auditEvents(first: 100, filter: $f) { nodes { actor { name } } } }";
        for (text, found) in SEARCHES {
            let acted: Vec<&str> = found.iter().copied().filter(|n| acting.contains(n)).collect();
            let data = app.ok(t, users, json!({ "f": { "nameContains": text } })).await;
            assert_eq!(names_at(&data, &["users", "nodes"]), sorted(&acted), "users, nameContains {text:?}");
            let data = app.ok(t, audit, json!({ "f": { "actorContains": text } })).await;
            assert_eq!(names_at(&data, &["auditEvents", "nodes"]), sorted(&acted), "audit, actorContains {text:?}");
        }
    }
}

both_backends! {
    /// Names written before the folded copies existed (or by an instance of
    /// the previous release during an upgrade) are folded when the server
    /// migrates, once: search finds them, and the profiles' name keys follow
    /// the same folding, so "STRASSE" is then taken by "Straße".
    async fn names_without_a_folded_copy_are_folded_at_migration_once(db: Db) {
        let app = TestApp::spawn(db).await;
        let site = app.site("Upgrade", &[("CASE", 5)], false).await;
        let t = Some(site.admin_token.as_str());
        site.person(&app, "Åsa Öberg").await;
        site.profile(&app, "Straße", &[]).await;
        for sql in [
            "UPDATE people SET name_folded = NULL",
            "UPDATE audit_events SET actor_folded = NULL",
            // What lower-casing made of it before this folding.
            "UPDATE profiles SET name_key = 'straße' WHERE name = 'Straße'",
        ] {
            app.store.execute_raw(sql).await.unwrap();
        }
        let q = "{ people(filter: { nameContains: \"ÖBERG\" }) { nodes { name } }
                   auditEvents(filter: { actorContains: \"UPGRADE ADMIN\" }) { nodes { actor { name } } } }";
        let before = app.ok(t, q, json!({})).await;
        assert_eq!(before["people"]["nodes"], json!([]), "{before}");
        assert_eq!(before["auditEvents"]["nodes"], json!([]), "{before}");

        let refolded = app.store.refold().await.unwrap();
        assert!(refolded.people >= 2 && refolded.audit_events >= 2, "{refolded:?}");
        assert_eq!((refolded.keys, refolded.keys_kept), (1, 0), "{refolded:?}");
        assert_eq!(app.store.refold().await.unwrap(), license_gateway::store::Refolded::default(), "once");

        let after = app.ok(t, q, json!({})).await;
        assert_eq!(names_at(&after, &["people", "nodes"]), ["Åsa Öberg"]);
        assert_eq!(names_at(&after, &["auditEvents", "nodes"]), ["Upgrade Admin"]);
        let taken = app
            .ok(t, "mutation { createProfile(input: { name: \"STRASSE\", modules: [] }) { __typename } }", json!({}))
            .await;
        assert_eq!(taken["createProfile"]["__typename"], "ProfileNameTaken", "{taken}");
    }
}

both_backends! {
    async fn a_validated_document_still_answers_bad_variables_as_strict_validation_does(db: Db) {
        // A document whose request shape passed strict validation skips it afterwards
        // (graphql::documents); a variable of another kind must get validation's answer
        // every time, and a change with a bad id must still change nothing.
        let app = TestApp::spawn(db).await;
        let site = app.site("Shapes", &[("CASE", 5)], false).await;
        let t = Some(site.admin_token.as_str());
        let page = "query Page($first: Int) { users(first: $first) { nodes { username } } }";
        let bad = [json!({ "first": "ten" }), json!({ "first": 1.5 }), json!({ "first": true }), json!({ "first": [1] })];
        let mut before = Vec::new();
        for variables in &bad {
            let body = app.gql(t, page, variables.clone()).await;
            assert_eq!(error_code(&body), "GRAPHQL_VALIDATION_FAILED", "{body}");
            assert!(body["errors"][0]["message"].as_str().unwrap().contains("Invalid value for argument"), "{body}");
            before.push(body);
        }
        // Warm the document: the same shape twice (the second runs on the validated schema).
        for first in [1, 2] {
            let nodes = &app.ok(t, page, json!({ "first": first })).await["users"]["nodes"];
            assert_eq!(nodes.as_array().unwrap().len(), 1, "{nodes}");
        }
        for (variables, before) in bad.iter().zip(&before) {
            assert_eq!(&app.gql(t, page, variables.clone()).await, before, "{variables}");
        }
        // The same for a change: its ids are strings when warm; a number where a string
        // is declared is still refused by validation, and the profile stays.
        let change = "mutation M($id: ID!, $name: String!) { updateProfile(id: $id, input: { name: $name }) { __typename } }";
        let warm = app.ok(t, change, json!({ "id": site.parking_profile, "name": "Parking" })).await;
        assert_eq!(warm["updateProfile"]["__typename"], "UpdateProfileSuccess", "{warm}");
        app.ok(t, change, json!({ "id": site.parking_profile, "name": "Parking" })).await;
        let body = app.gql(t, change, json!({ "id": [site.parking_profile], "name": "Changed" })).await;
        assert_eq!(error_code(&body), "GRAPHQL_VALIDATION_FAILED", "{body}");
        let missing = app.gql(t, change, json!({ "id": site.parking_profile })).await;
        assert!(missing.get("errors").is_some(), "{missing}");
        let profile = app.ok(t, "query($id: ID!) { node(id: $id) { ... on Profile { name } } }", json!({ "id": site.parking_profile })).await;
        assert_eq!(profile["node"]["name"], "Parking");
    }
}

both_backends! {
    /// Issue 16: a root field that fails answers `null` under its key, with
    /// its error (code and path) in `errors`; no requested root key is left
    /// out of `data`. A failed non-null root field (`viewer`, signed out)
    /// makes the whole `data` null, as the GraphQL spec says.
    async fn a_failing_root_field_answers_null_under_its_key(db: Db) {
        use license_gateway::graphql::ids::{Kind, encode};
        let app = TestApp::spawn(db).await;
        let mine = app.site("Mine", &[("CASE", 5)], false).await;
        let other = app.site("Other", &[("CASE", 5)], false).await;
        let token = Some(mine.admin_token.as_str());
        let missing_person = encode(Kind::Person, 987_654).0;
        let missing_site = encode(Kind::Site, 987_654).0;
        let errors_at = |body: &serde_json::Value, key: &str| -> Vec<String> {
            let errors = body["errors"].as_array().cloned().unwrap_or_default();
            errors
                .iter()
                .filter(|e| e["path"] == json!([key]))
                .map(|e| e["extensions"]["code"].as_str().unwrap_or("").to_string())
                .collect()
        };

        let body = app
            .gql(token, "query($id: ID!) { viewer { username } node(id: $id) { id } }", json!({ "id": missing_person }))
            .await;
        assert_eq!(body["data"]["viewer"]["username"], "mine-admin", "{body:#}");
        assert_eq!(body["data"].get("node"), Some(&json!(null)), "node answers null, not a missing key: {body:#}");
        assert_eq!(errors_at(&body, "node"), ["NOT_FOUND"], "{body:#}");
        assert_eq!(body["errors"].as_array().unwrap().len(), 1, "{body:#}");

        for (what, site) in [("another site's", &other.id), ("a missing", &missing_site)] {
            let body = app
                .gql(
                    token,
                    "query($s: ID!) { viewer { username } site(id: $s) { name } licensePools(siteId: $s) { total }
                      own: site { name } modules { code } }",
                    json!({ "s": site }),
                )
                .await;
            let data = body["data"].as_object().unwrap_or_else(|| panic!("data for {what} site: {body:#}"));
            for key in ["viewer", "site", "licensePools", "own", "modules"] {
                assert!(data.contains_key(key), "{what} site: `{key}` left out of data: {body:#}");
            }
            assert_eq!(data["site"], json!(null), "{what} site: {body:#}");
            assert_eq!(data["licensePools"], json!(null), "{what} site: {body:#}");
            assert_eq!(data["own"]["name"], "Mine", "{body:#}");
            assert_eq!(errors_at(&body, "site"), ["NOT_FOUND"], "{what} site: {body:#}");
            assert_eq!(errors_at(&body, "licensePools"), ["NOT_FOUND"], "{what} site: {body:#}");
        }

        // Fields the viewer may not use answer null too (an administrator asking for every site).
        let body = app.gql(token, "{ viewer { username } sites { nodes { name } } }", json!({})).await;
        assert_eq!(body["data"]["viewer"]["username"], "mine-admin", "{body:#}");
        assert_eq!(body["data"].get("sites"), Some(&json!(null)), "{body:#}");
        assert_eq!(errors_at(&body, "sites"), ["FORBIDDEN"], "{body:#}");

        // Signed out, the non-null `viewer` fails: the whole `data` is null.
        let body = app
            .gql(None, "query($id: ID!) { viewer { username } node(id: $id) { id } }", json!({ "id": missing_person }))
            .await;
        assert_eq!(body.get("data"), Some(&json!(null)), "{body:#}");
        assert_eq!(errors_at(&body, "viewer"), ["UNAUTHENTICATED"], "{body:#}");
    }
}

/// The pools of the site as `{ id module { code } total used }`, the
/// selection every mutation result below is asked for.
const POOLS: &str = "licensePools { id module { code } total used }";

async fn pools_now(app: &TestApp, token: &str) -> serde_json::Value {
    app.ok(Some(token), &format!("{{ {POOLS} }}"), json!({})).await["licensePools"].clone()
}

fn used(pools: &serde_json::Value, code: &str) -> (i64, i64) {
    let p = pools.as_array().unwrap().iter().find(|p| p["module"]["code"] == code).unwrap();
    (p["total"].as_i64().unwrap(), p["used"].as_i64().unwrap())
}

both_backends! {
    /// Issue 16, item 2: a client's normalized cache stays right after every
    /// change of licenses, because each mutation answers the pools it changed
    /// with their ids (the same ids `licensePools` gives) and their new
    /// numbers, and the profiles whose user counts moved, with theirs.
    async fn every_license_changing_mutation_returns_the_changed_pools_with_their_ids(db: Db) {
        let app = TestApp::spawn(db).await;
        let site = app.site("Cached", &[("CASE", 3), ("DOCUMENT", 2)], true).await;
        let token = site.admin_token.as_str();
        let case = site.profile(&app, "Case", &["CASE"]).await;
        let both = site.profile(&app, "Both", &["CASE", "DOCUMENT"]).await;
        let before = pools_now(&app, token).await;
        let ids: Vec<&str> = before.as_array().unwrap().iter().map(|p| p["id"].as_str().unwrap()).collect();
        assert_eq!(ids.len(), 2);
        assert_ne!(ids[0], ids[1], "one id per pool");

        // Each change answers exactly what a fresh read shows afterwards: the same ids, the new numbers.
        let check = |answer: &serde_json::Value, fresh: &serde_json::Value, what: &str| {
            assert_eq!(answer["licensePools"], *fresh, "{what}: the answer's pools are the pools now");
        };
        let person = site.person(&app, "Cora Cache").await;
        let create = format!("mutation($p: ID!, $f: ID!) {{ createLogin(input: {{ personId: $p, username: \"cora\", password: \"{PASSWORD}\", profileId: $f }}) {{
            __typename ... on CreateLoginSuccess {{ user {{ id profile {{ id userCount }} }} {POOLS} }} }} }}");
        let r = app.ok(Some(token), &create, json!({ "p": person, "f": case })).await["createLogin"].clone();
        let fresh = pools_now(&app, token).await;
        check(&r, &fresh, "createLogin");
        assert_eq!(used(&fresh, "CASE"), (3, 1));
        assert_eq!(r["user"]["profile"], json!({ "id": case, "userCount": 1 }));
        let user = r["user"]["id"].as_str().unwrap().to_string();

        let moved = format!("... on UpdateLoginSuccess {{ user {{ id profile {{ id userCount }} }} previousProfile {{ id userCount }} {POOLS} }}");
        let change = format!("mutation($u: ID!, $f: ID!) {{ changeLoginProfile(id: $u, profileId: $f) {{ __typename {moved} }} }}");
        let r = app.ok(Some(token), &change, json!({ "u": user, "f": both })).await["changeLoginProfile"].clone();
        let fresh = pools_now(&app, token).await;
        check(&r, &fresh, "changeLoginProfile");
        assert_eq!((used(&fresh, "CASE"), used(&fresh, "DOCUMENT")), ((3, 1), (2, 1)));
        assert_eq!(r["user"]["profile"], json!({ "id": both, "userCount": 1 }));
        assert_eq!(r["previousProfile"], json!({ "id": case, "userCount": 0 }));

        let update = format!("mutation($u: ID!, $f: ID!) {{ updateLogin(id: $u, input: {{ profileId: $f }}) {{ __typename {moved} }} }}");
        let r = app.ok(Some(token), &update, json!({ "u": user, "f": case })).await["updateLogin"].clone();
        let fresh = pools_now(&app, token).await;
        check(&r, &fresh, "updateLogin");
        assert_eq!(used(&fresh, "DOCUMENT"), (2, 0));
        assert_eq!(r["previousProfile"], json!({ "id": both, "userCount": 0 }));
        let rename = format!("mutation($u: ID!) {{ updateLogin(id: $u, input: {{ username: \"cora.c\" }}) {{ __typename {moved} }} }}");
        let r = app.ok(Some(token), &rename, json!({ "u": user })).await["updateLogin"].clone();
        assert_eq!(r["previousProfile"], json!(null), "no move, no profile left");

        let modules = format!("mutation($f: ID!) {{ updateProfile(id: $f, input: {{ modules: [\"CASE\", \"DOCUMENT\"] }}) {{
            __typename ... on UpdateProfileSuccess {{ profile {{ id userCount modules {{ code }} }} {POOLS} }} }} }}");
        let r = app.ok(Some(token), &modules, json!({ "f": case })).await["updateProfile"].clone();
        let fresh = pools_now(&app, token).await;
        check(&r, &fresh, "updateProfile");
        assert_eq!(used(&fresh, "DOCUMENT"), (2, 1));

        let delete_login = format!("mutation($u: ID!) {{ deleteLogin(id: $u) {{ __typename
            ... on DeleteLoginSuccess {{ deletedUserId person {{ id user {{ id }} }} profile {{ id userCount }} {POOLS} }} }} }}");
        let r = app.ok(Some(token), &delete_login, json!({ "u": user })).await["deleteLogin"].clone();
        let fresh = pools_now(&app, token).await;
        check(&r, &fresh, "deleteLogin");
        assert_eq!((used(&fresh, "CASE"), used(&fresh, "DOCUMENT")), ((3, 0), (2, 0)));
        assert_eq!(r["deletedUserId"], user);
        assert_eq!(r["person"], json!({ "id": person, "user": null }));
        assert_eq!(r["profile"], json!({ "id": case, "userCount": 0 }));

        let restore_login = format!("mutation($u: ID!) {{ restoreLogin(id: $u) {{ __typename
            ... on RestoreLoginSuccess {{ user {{ id profile {{ id userCount }} }} {POOLS} }} }} }}");
        let r = app.ok(Some(token), &restore_login, json!({ "u": user })).await["restoreLogin"].clone();
        let fresh = pools_now(&app, token).await;
        check(&r, &fresh, "restoreLogin");
        assert_eq!(used(&fresh, "CASE"), (3, 1));
        assert_eq!(r["user"], json!({ "id": user, "profile": { "id": case, "userCount": 1 } }));

        let delete_person = format!("mutation($p: ID!) {{ deletePerson(id: $p) {{ __typename
            ... on DeletePersonSuccess {{ deletedUserId person {{ id deleted }} profile {{ id userCount }} {POOLS} }} }} }}");
        let r = app.ok(Some(token), &delete_person, json!({ "p": person })).await["deletePerson"].clone();
        let fresh = pools_now(&app, token).await;
        check(&r, &fresh, "deletePerson");
        assert_eq!(used(&fresh, "CASE"), (3, 0));
        assert_eq!(r["deletedUserId"], user);
        assert_eq!(r["profile"], json!({ "id": case, "userCount": 0 }));
        let loner = site.person(&app, "Lone Person").await;
        let r = app.ok(Some(token), &delete_person, json!({ "p": loner })).await["deletePerson"].clone();
        assert_eq!((&r["deletedUserId"], &r["profile"]), (&json!(null), &json!(null)), "no login, nothing else deleted");

        let restore_person = format!("mutation($p: ID!) {{ restorePerson(id: $p) {{ __typename
            ... on RestorePersonSuccess {{ person {{ id user {{ id profile {{ id userCount }} }} }} {POOLS} }} }} }}");
        let r = app.ok(Some(token), &restore_person, json!({ "p": person })).await["restorePerson"].clone();
        let fresh = pools_now(&app, token).await;
        check(&r, &fresh, "restorePerson");
        assert_eq!(used(&fresh, "DOCUMENT"), (2, 1));
        assert_eq!(r["person"]["user"], json!({ "id": user, "profile": { "id": case, "userCount": 1 } }));

        // Totals: set by an operator, checked out, approved.
        let set = "mutation($s: ID!) { setPoolTotal(siteId: $s, module: \"CASE\", total: 10) { __typename
            ... on SetPoolTotalSuccess { pool { id module { code } total used } } } }";
        let r = app.ok(Some(&site.operator_token), set, json!({ "s": site.id })).await["setPoolTotal"].clone();
        let fresh = pools_now(&app, token).await;
        let case_pool = fresh.as_array().unwrap().iter().find(|p| p["module"]["code"] == "CASE").unwrap().clone();
        assert_eq!(r["pool"], case_pool);
        assert_eq!(used(&fresh, "CASE"), (10, 1));
        // The audit trail names the pool by the same id, and each impact links to its pool.
        let trail = app.ok(Some(token), "{ auditEvents(first: 1) { nodes { action targetId pools { pool { id total } } } } }", json!({})).await;
        assert_eq!(
            trail["auditEvents"]["nodes"][0],
            json!({ "action": "setPoolTotal", "targetId": case_pool["id"], "pools": [{ "pool": { "id": case_pool["id"], "total": 10 } }] })
        );

        let draft = "mutation { createLicenseOrder(lines: [{ module: \"CASE\", total: 12 }]) { ... on LicenseOrderSuccess { order { id } } } }";
        let order = app.ok(Some(token), draft, json!({})).await["createLicenseOrder"]["order"]["id"].clone();
        let checkout = format!("mutation($o: ID!) {{ checkoutLicenseOrder(id: $o, idempotencyKey: \"c1\") {{ __typename
            ... on CheckoutSuccess {{ order {{ id status }} {POOLS} }} }} }}");
        let r = app.ok(Some(token), &checkout, json!({ "o": order })).await["checkoutLicenseOrder"].clone();
        let fresh = pools_now(&app, token).await;
        check(&r, &fresh, "checkoutLicenseOrder");
        assert_eq!(used(&fresh, "CASE"), (12, 1));

        let off = "mutation($s: ID!) { updateAgreement(siteId: $s, selfService: false) { site { id agreement { selfService } } } }";
        app.ok(Some(&site.operator_token), off, json!({ "s": site.id })).await;
        let submit = "mutation { submitChangeRequest(lines: [{ module: \"CASE\", total: 14 }], message: \"More\") { ... on ChangeRequestSuccess { request { id } } } }";
        let request = app.ok(Some(token), submit, json!({})).await["submitChangeRequest"]["request"]["id"].clone();
        let approve = format!("mutation($r: ID!) {{ approveChangeRequest(id: $r) {{ __typename
            ... on ApproveChangeRequestSuccess {{ request {{ id status }} {POOLS} }} }} }}");
        let r = app.ok(Some(&site.operator_token), &approve, json!({ "r": request })).await["approveChangeRequest"].clone();
        let fresh = pools_now(&app, token).await;
        check(&r, &fresh, "approveChangeRequest");
        assert_eq!(used(&fresh, "CASE"), (14, 1));

        // The ids never changed, and another site's pools have ids of their own.
        let now: Vec<&str> = fresh.as_array().unwrap().iter().map(|p| p["id"].as_str().unwrap()).collect();
        assert_eq!(now, ids);
        let other = app.site("Other cached", &[("CASE", 1)], false).await;
        let theirs = pools_now(&app, &other.admin_token).await;
        assert!(theirs.as_array().unwrap().iter().all(|p| !ids.contains(&p["id"].as_str().unwrap())), "{theirs}");
    }
}

both_backends! {
    /// `node(id:)` answers a pool and an audit event by the id they carry, to
    /// whoever may see them (a pool: everyone of the site; an event: who
    /// reads the audit trail), and as not found to another site.
    async fn pools_and_audit_events_round_trip_through_node(db: Db) {
        let app = TestApp::spawn(db).await;
        let site = app.site("Round trip", &[("CASE", 3)], false).await;
        let other = app.site("Far away", &[("CASE", 3)], false).await;
        let case = site.profile(&app, "Case", &["CASE"]).await;
        site.user(&app, "Una User", &case).await;
        let user_token = app.sign_in("una.user", PASSWORD).await;
        let token = Some(site.admin_token.as_str());
        let pool = app.ok(token, "{ licensePools { id total used module { code } } }", json!({})).await["licensePools"][0].clone();
        let event = app.ok(token, "{ auditEvents(first: 1) { nodes { id action targetId } } }", json!({})).await["auditEvents"]["nodes"][0].clone();
        let node = "query($id: ID!) { node(id: $id) { __typename id
            ... on LicensePool { total used module { code } } ... on AuditEvent { action targetId } } }";

        let got = app.ok(token, node, json!({ "id": pool["id"] })).await;
        assert_eq!(got["node"], json!({ "__typename": "LicensePool", "id": pool["id"], "total": 3, "used": 1, "module": { "code": "CASE" } }));
        let got = app.ok(token, node, json!({ "id": event["id"] })).await;
        assert_eq!(got["node"], json!({ "__typename": "AuditEvent", "id": event["id"], "action": "createLogin", "targetId": event["targetId"] }));
        let got = app.ok(Some(&site.operator_token), node, json!({ "id": event["id"] })).await;
        assert_eq!(got["node"]["id"], event["id"]);

        // A site user reads the pools, not the audit trail.
        let got = app.ok(Some(&user_token), node, json!({ "id": pool["id"] })).await;
        assert_eq!(got["node"]["id"], pool["id"]);
        let body = app.gql(Some(&user_token), node, json!({ "id": event["id"] })).await;
        assert_eq!((error_code(&body), &body["data"]["node"]), ("FORBIDDEN", &json!(null)), "{body}");
        // Another site's administrator gets neither, exactly as for an id that does not exist.
        for id in [&pool["id"], &event["id"]] {
            let body = app.gql(Some(&other.admin_token), node, json!({ "id": id })).await;
            assert_eq!((error_code(&body), &body["data"]["node"]), ("NOT_FOUND", &json!(null)), "{body}");
        }
        use base64::Engine;
        let id = |raw: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw);
        for missing in [id("LicensePool:999999:1"), id("AuditEvent:999999")] {
            let body = app.gql(token, node, json!({ "id": missing })).await;
            assert_eq!(error_code(&body), "NOT_FOUND", "{body}");
        }
        for malformed in [id("LicensePool:1"), id("LicensePool:1:x"), id("AuditEvent:1:2")] {
            let body = app.gql(token, node, json!({ "id": malformed })).await;
            assert_eq!(error_code(&body), "BAD_USER_INPUT", "{malformed}: {body}");
        }
        // A pool's id filters the audit trail to the changes of its total.
        let set = "mutation($s: ID!) { setPoolTotal(siteId: $s, module: \"CASE\", total: 5) { __typename } }";
        app.ok(Some(&site.operator_token), set, json!({ "s": site.id })).await;
        let q = "query($t: ID!) { auditEvents(filter: { targetId: $t }) { nodes { action targetId } } }";
        let trail = app.ok(token, q, json!({ "t": pool["id"] })).await;
        assert_eq!(trail["auditEvents"]["nodes"], json!([{ "action": "setPoolTotal", "targetId": pool["id"] }]));
    }
}

/// Whether `text` is a `DateTime` as the server writes it: RFC 3339 in UTC
/// with whole seconds (`2026-12-07T18:50:06Z`), within a day of now.
fn is_written_time(text: &serde_json::Value) -> bool {
    let Some(text) = text.as_str() else { return false };
    let rfc3339 = &time::format_description::well_known::Rfc3339;
    let Ok(t) = time::OffsetDateTime::parse(text, rfc3339) else { return false };
    let near = (time::OffsetDateTime::now_utc() - t).whole_hours().abs() < 24;
    text.len() == 20 && text.ends_with('Z') && t.format(rfc3339).ok().as_deref() == Some(text) && near
}

both_backends! {
    /// Issue 16, item 4: every time is a `DateTime` written one way (RFC
    /// 3339, UTC, whole seconds) and every day a `Date` (`YYYY-MM-DD`), the
    /// same on both backends; a string that is no such time or day is
    /// `BAD_USER_INPUT` naming its field, a value of another kind fails
    /// validation.
    async fn times_and_dates_are_written_alike_on_both_backends(db: Db) {
        let app = TestApp::spawn(db).await;
        let site = app.site("Timely", &[("CASE", 5)], true).await;
        let asks = app.site("Asking", &[("CASE", 5)], false).await;
        let token = Some(site.admin_token.as_str());
        let person = site.person(&app, "Tim Timely").await;
        let r = site.try_login(&app, &person, "tim", &site.parking_profile, Some("2030-06-15")).await;
        let user = r["user"]["id"].as_str().unwrap().to_string();
        let signed = app.ok(None, "mutation { signIn(username: \"tim\", password: \"correct horse battery\") { ... on SignInSuccess { expiresAt } } }", json!({})).await;
        let draft = "mutation { createLicenseOrder(lines: [{ module: \"CASE\", total: 6 }]) { ... on LicenseOrderSuccess { order { id } } } }";
        let order = app.ok(token, draft, json!({})).await["createLicenseOrder"]["order"]["id"].clone();
        let checkout = "mutation($o: ID!) { checkoutLicenseOrder(id: $o, idempotencyKey: \"t1\") { ... on CheckoutSuccess { order { createdAt checkedOutAt } } } }";
        let order = app.ok(token, checkout, json!({ "o": order })).await["checkoutLicenseOrder"]["order"].clone();
        let submit = "mutation { submitChangeRequest(lines: [{ module: \"CASE\", total: 6 }], message: \"More\") { ... on ChangeRequestSuccess { request { id } } } }";
        let request = app.ok(Some(&asks.admin_token), submit, json!({})).await["submitChangeRequest"]["request"]["id"].clone();
        let reject = "mutation($r: ID!) { rejectChangeRequest(id: $r, reason: \"No\") { ... on ChangeRequestSuccess { request { createdAt decidedAt } } } }";
        let request = app.ok(Some(&site.operator_token), reject, json!({ "r": request })).await["rejectChangeRequest"]["request"].clone();
        let gone = site.person(&app, "Gone Person").await;
        let deleted = app.ok(token, "mutation($p: ID!) { deletePerson(id: $p) { ... on DeletePersonSuccess { person { createdAt deletedAt } } } }", json!({ "p": gone })).await;
        let read = app.ok(token, "query($u: ID!) { site { createdAt } node(id: $u) { ... on User { validUntil createdAt person { createdAt deletedAt } } }
            auditEvents(first: 1) { nodes { at } } }", json!({ "u": user })).await;

        let times = [
            &signed["signIn"]["expiresAt"], &order["createdAt"], &order["checkedOutAt"], &request["createdAt"],
            &request["decidedAt"], &deleted["deletePerson"]["person"]["createdAt"], &deleted["deletePerson"]["person"]["deletedAt"],
            &read["site"]["createdAt"], &read["node"]["createdAt"], &read["node"]["person"]["createdAt"],
            &read["auditEvents"]["nodes"][0]["at"],
        ];
        for t in times {
            assert!(is_written_time(t), "`{t}` is not a DateTime as the server writes them");
        }
        assert_eq!(read["node"]["validUntil"], "2030-06-15");
        assert_eq!(read["node"]["person"]["deletedAt"], json!(null));

        // Filtering by time takes any offset, and compares instants.
        let at = read["auditEvents"]["nodes"][0]["at"].as_str().unwrap();
        let t = time::OffsetDateTime::parse(at, &time::format_description::well_known::Rfc3339).unwrap();
        let plus_one = time::UtcOffset::from_hms(1, 0, 0).unwrap();
        let local = t.to_offset(plus_one).format(&time::format_description::well_known::Rfc3339).unwrap();
        let q = "query($f: DateTime, $u: DateTime) { auditEvents(first: 1, filter: { from: $f, until: $u }) { nodes { at } } }";
        let same = app.ok(token, q, json!({ "f": local, "u": null })).await;
        assert_eq!(same["auditEvents"]["nodes"][0]["at"], at, "{local} is the same instant as {at}");
        let none = app.ok(token, q, json!({ "f": null, "u": local })).await;
        assert_ne!(none["auditEvents"]["nodes"][0]["at"], at, "until is exclusive");

        // Bad times and days.
        for (query, variables, field) in [
            ("query($f: DateTime) { auditEvents(filter: { from: $f }) { nodes { at } } }", json!({ "f": "yesterday" }), "from"),
            ("query($f: DateTime) { auditEvents(filter: { until: $f }) { nodes { at } } }", json!({ "f": "2026-01-31" }), "until"),
            ("mutation($id: ID!, $d: Date) { updateLogin(id: $id, input: { validUntil: $d }) { __typename } }", json!({ "id": user, "d": "2026-02-30" }), "validUntil"),
            ("mutation($id: ID!, $d: Date) { updateLogin(id: $id, input: { validUntil: $d }) { __typename } }", json!({ "id": user, "d": "2026-12-31T00:00:00Z" }), "validUntil"),
        ] {
            let body = app.gql(token, query, variables.clone()).await;
            assert_eq!(error_code(&body), "BAD_USER_INPUT", "{variables}: {body}");
            assert_eq!(body["errors"][0]["extensions"]["field"], field, "{body}");
        }
        for (query, variables) in [
            ("mutation($id: ID!, $d: Date) { updateLogin(id: $id, input: { validUntil: $d }) { __typename } }", json!({ "id": user, "d": 20261231 })),
            ("mutation($id: ID!) { updateLogin(id: $id, input: { validUntil: 20261231 }) { __typename } }", json!({ "id": user })),
        ] {
            let body = app.gql(token, query, variables.clone()).await;
            assert_eq!(error_code(&body), "GRAPHQL_VALIDATION_FAILED", "{query}: {body}");
        }
        let user_now = app.ok(token, "query($u: ID!) { node(id: $u) { ... on User { validUntil } } }", json!({ "u": user })).await;
        assert_eq!(user_now["node"]["validUntil"], "2030-06-15", "bad input changed nothing");
    }
}
