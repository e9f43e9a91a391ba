//! The benchmark dataset of `license-gateway generate` (issue 4): the peers'
//! numbers for the same N, exact counters (R2), a working administrator, and
//! generating again replaces the site instead of adding a second one.

mod common;

use common::*;
use license_gateway::service::bootstrap::{generate_bench, verify};
use serde_json::json;

const BENCH_PASSWORD: &str = "bench-admin-password";

both_backends! {
    async fn generated_site_has_the_peer_seed_usage_and_exact_counters(db: Db) {
        let app = TestApp::spawn(db).await;
        let bench = generate_bench(&app.store, 2000, 100, Some(BENCH_PASSWORD)).await.expect("generate");
        let d = &bench.dataset;
        // The same N gives what the peers' seed.sql gives (bench/README.md): 80% logins, id % 19 = 1 deleted.
        assert_eq!((d.people, d.deleted_people), (2000, 106));
        assert_eq!((d.login_ids.0.0, d.login_ids.1.0), (1, 1600));
        assert_eq!(d.live_logins.len(), 1515);
        assert_eq!(d.profiles.len(), 20);
        let both: Vec<i64> = d.profiles.iter().filter(|p| p.2.len() == 2).map(|p| p.0.0).collect();
        assert_eq!(both, vec![3, 7, 11, 15, 19]);
        assert!(d.profiles.iter().filter(|p| p.2.is_empty()).count() == 5, "five profiles without modules");

        let checked = verify(&app.store).await.expect("verify");
        assert_eq!(checked.problems, 0, "{:?}", checked.report);
        // Every folded name (search) and name key (uniqueness) is what the server would write.
        assert_eq!(app.store.refold().await.expect("refold"), license_gateway::store::Refolded::default());

        // Over the API, as the administrator: pools at usage + 100, users by username.
        let token = app.sign_in("bench-admin", BENCH_PASSWORD).await;
        let data = app
            .ok(
                Some(&token),
                "{ licensePools { module { code } total used available } users(first: 50) { nodes { username person { name } } } }",
                json!({}),
            )
            .await;
        assert_eq!(
            data["licensePools"],
            json!([
                { "module": { "code": "CASE" }, "total": 859, "used": 759, "available": 100 },
                { "module": { "code": "DOCUMENT" }, "total": 860, "used": 760, "available": 100 },
            ])
        );
        let users = data["users"]["nodes"].as_array().unwrap();
        assert_eq!(users.len(), 50);
        let names: Vec<&str> = users.iter().map(|u| u["username"].as_str().unwrap()).collect();
        assert!(names.windows(2).all(|w| w[0] < w[1]), "ordered by username: {names:?}");
        assert!(names.iter().all(|n| *n == n.to_lowercase()), "lower-case: {names:?}");
        let found = app
            .ok(Some(&token), "{ people(filter: { nameContains: \"PERSON 0000002\" }) { nodes { name } } }", json!({}))
            .await;
        assert_eq!(found["people"]["nodes"], json!([{ "name": "Person 0000002" }]), "{found}");
    }
}

both_backends! {
    async fn generating_again_replaces_the_site(db: Db) {
        let app = TestApp::spawn(db).await;
        generate_bench(&app.store, 300, 100, Some(BENCH_PASSWORD)).await.expect("first");
        let again = generate_bench(&app.store, 200, 5, Some(BENCH_PASSWORD)).await.expect("again");
        assert_eq!(again.dataset.people, 200);
        let checked = verify(&app.store).await.expect("verify");
        assert_eq!(checked.problems, 0, "{:?}", checked.report);
        assert_eq!(checked.report.len(), 2, "one site's two pools: {:?}", checked.report);

        let op = app.operator().await;
        let data = app.ok(Some(&op), "{ sites(first: 10) { nodes { name } } }", json!({})).await;
        assert_eq!(data["sites"]["nodes"], json!([{ "name": "Bench" }]));
        // The username moved to the new administrator, who signs in and sees the new pools.
        let token = app.sign_in("bench-admin", BENCH_PASSWORD).await;
        let data = app.ok(Some(&token), "{ licensePools { available } }", json!({})).await;
        assert_eq!(data["licensePools"], json!([{ "available": 5 }, { "available": 5 }]));
    }
}
