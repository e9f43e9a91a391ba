//! API behaviour beyond single rules: constant SQL per list request
//! (DataLoaders), keyset pagination, and what one request costs.

mod common;

use common::*;
use serde_json::json;

both_backends! {
    async fn list_requests_run_the_same_number_of_statements_for_any_page_size(db: Db) {
        let app = TestApp::spawn(db).await;
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
        for (name, q, token) in [("users", users, &site.admin_token), ("people", people, &site.admin_token), ("sites", sites, &site.operator_token)] {
            let (small, s_small) = app.gql_counted(Some(token), q, json!({ "n": 2 })).await;
            let (large, s_large) = app.gql_counted(Some(token), q, json!({ "n": 50 })).await;
            assert!(small.get("errors").is_none() && large.get("errors").is_none(), "{small} {large}");
            assert!(s_small > 0, "the statement counter works");
            assert_eq!(s_small, s_large, "{name}: statements must not grow with the page size");
        }
        // The users page of the benchmark's Q1: session, page (with persons), profiles, profile modules.
        let (_, q1) = app.gql_counted(Some(&site.admin_token), users, json!({ "n": 50 })).await;
        assert!(q1 <= 4, "users(first: 50) took {q1} statements");
        // Q2: session and pools (maintained counters, never a recount) and modules.
        let (_, q2) = app.gql_counted(Some(&site.admin_token), "{ licensePools { module { code } total used available } }", json!({})).await;
        assert!(q2 <= 3, "licensePools took {q2} statements");
        // M1, a guarded write, costs the same whatever the site's size: session, begin, lock login,
        // lock both profiles, their modules, one conditional update per module, set profile, audit, commit.
        let ids = app.ok(Some(&site.admin_token), "{ users(first: 2, filter: { module: \"CASE\" }) { nodes { id } } }", json!({})).await;
        let user = ids["users"]["nodes"][0]["id"].as_str().unwrap().to_string();
        let change = "mutation($id: ID!, $p: ID!) { changeLoginProfile(id: $id, profileId: $p) { __typename } }";
        let (body, m1) = app.gql_counted(Some(&site.admin_token), change, json!({ "id": user, "p": profiles[3] })).await;
        assert_eq!(body["data"]["changeLoginProfile"]["__typename"], "UpdateLoginSuccess");
        assert!(m1 <= 11, "changeLoginProfile took {m1} statements");
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
