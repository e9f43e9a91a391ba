//! The audit trail is complete (issue 15, item 5) and the small edges of
//! input are closed (item 6), through the GraphQL API over HTTP, on both
//! backends.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use base64::Engine;
use common::*;
use serde_json::{Value, json};

const TRAIL: &str = "query($f: AuditEventsFilter, $s: ID) { auditEvents(siteId: $s, filter: $f, first: 100) { nodes {
    action outcome code message detail rule targetId targetPerson { name } actor { name }
    pools { module { code } usedBefore usedAfter totalBefore totalAfter shortfall } } } }";

/// The audit events `token` sees of its site (or of `site`), newest first, filtered by `filter`.
async fn trail(app: &TestApp, token: &str, site: Option<&str>, filter: Value) -> Vec<Value> {
    let r = app.ok(Some(token), TRAIL, json!({ "f": filter, "s": site })).await;
    r["auditEvents"]["nodes"].as_array().unwrap().clone()
}

/// The global id of the same kind as `id` with a number no object has.
fn never_issued(id: &str) -> String {
    let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let text = String::from_utf8(engine.decode(id).unwrap()).unwrap();
    let kind = text.split(':').next().unwrap();
    engine.encode(format!("{kind}:987654321"))
}

/// The error of a response, without `path` and `locations` (which name the alias).
fn error_of(body: &Value) -> Value {
    let e = &body["errors"][0];
    json!({ "message": e["message"], "extensions": e["extensions"], "data": body["data"] })
}

const CREATE_LOGIN: &str = "mutation($i: CreateLoginInput!) { createLogin(input: $i) { __typename ... on CreateLoginSuccess { user { id } } } }";

both_backends! {
    async fn a_change_of_another_sites_object_is_refused_and_recorded_on_the_actors_site_with_nothing_of_it(db: Db) {
        let app = TestApp::spawn(db).await;
        let mine = app.site("Mine", &[("CASE", 2)], false).await;
        let theirs = app.site("Theirs", &[("CASE", 2)], false).await;
        let case = theirs.profile(&app, "Case", &["CASE"]).await;
        let their_user = theirs.user(&app, "Tove Theirs", &case).await;
        let their_person = theirs.person(&app, "Pia Theirs").await;
        let delete = "mutation($id: ID!) { deleteLogin(id: $id) { __typename } }";
        let body = app.gql(Some(&mine.admin_token), delete, json!({ "id": their_user })).await;
        assert_eq!(error_code(&body), "NOT_FOUND");
        assert_eq!(body["errors"][0]["message"], "No such login.");
        let update = "mutation($id: ID!) { updatePerson(id: $id, input: { name: \"Renamed\" }) { __typename } }";
        let body = app.gql(Some(&mine.admin_token), update, json!({ "id": their_person })).await;
        assert_eq!(error_code(&body), "NOT_FOUND");
        // On the actor's own trail, with nothing of the other site: no target, no numbers.
        let refused = trail(&app, &mine.admin_token, None, json!({ "outcome": "REFUSED" })).await;
        assert_eq!(
            refused,
            [
                json!({ "action": "updatePerson", "outcome": "REFUSED", "code": "NOT_FOUND", "message": "No such person.",
                        "detail": "NOT_FOUND: No such person.", "rule": null, "targetId": null, "targetPerson": null,
                        "actor": { "name": "Mine Admin" }, "pools": [] }),
                json!({ "action": "deleteLogin", "outcome": "REFUSED", "code": "NOT_FOUND", "message": "No such login.",
                        "detail": "NOT_FOUND: No such login.", "rule": null, "targetId": null, "targetPerson": null,
                        "actor": { "name": "Mine Admin" }, "pools": [] }),
            ]
        );
        // The other site's trail does not learn of the attempts.
        let theirs_refused = trail(&app, &theirs.admin_token, None, json!({ "outcome": "REFUSED" })).await;
        assert_eq!(theirs_refused, Vec::<Value>::new());
        // Nothing changed there.
        let still = app.ok(Some(&theirs.admin_token), "query($id: ID!) { node(id: $id) { ... on User { username } } }", json!({ "id": their_user })).await;
        assert_eq!(still["node"]["username"], "tove.theirs");
    }
}

/// A mutation's name, its document, and its variables for a given id.
type Case = (&'static str, &'static str, Box<dyn Fn(&str) -> Value>);

both_backends! {
    /// Every mutation that takes an id answers another site's id exactly as an
    /// id never issued (R13), and records the two refusals alike.
    async fn every_mutation_answers_another_sites_id_exactly_like_a_missing_one(db: Db) {
        let app = TestApp::spawn(db).await;
        let me = app.site("Here", &[("CASE", 5)], true).await;
        let shop = app.site("Shop", &[("CASE", 5)], true).await;
        let form = app.site("Form", &[("CASE", 5)], false).await;
        let my_case = me.profile(&app, "Case", &["CASE"]).await;
        let my_person = me.person(&app, "Mia Mine").await;
        let my_user = me.user(&app, "Mo Mine", &my_case).await;
        let case = shop.profile(&app, "Case", &["CASE"]).await;
        let person = shop.person(&app, "Sven Shop").await;
        let user = shop.user(&app, "Sara Shop", &case).await;
        let gone = shop.user(&app, "Gus Gone", &case).await;
        let dead = shop.person(&app, "Dag Dead").await;
        app.ok(Some(&shop.admin_token), "mutation($id: ID!) { deleteLogin(id: $id) { __typename } }", json!({ "id": gone })).await;
        app.ok(Some(&shop.admin_token), "mutation($id: ID!) { deletePerson(id: $id) { __typename } }", json!({ "id": dead })).await;
        let duty = app.ok(Some(&shop.admin_token), "mutation($p: ID!) { assignResponsibility(personId: $p, kind: FORM, name: \"Form\") { ... on AssignResponsibilitySuccess { responsibility { id } } } }", json!({ "p": person })).await;
        let duty = duty["assignResponsibility"]["responsibility"]["id"].as_str().unwrap().to_string();
        let order = app.ok(Some(&shop.admin_token), "mutation { createLicenseOrder(lines: [{ module: \"CASE\", total: 6 }]) { ... on LicenseOrderSuccess { order { id } } } }", json!({})).await;
        let order = order["createLicenseOrder"]["order"]["id"].as_str().unwrap().to_string();
        let request = app.ok(Some(&form.admin_token), "mutation { submitChangeRequest(lines: [{ module: \"CASE\", total: 6 }], message: \"More\") { ... on ChangeRequestSuccess { request { id } } } }", json!({})).await;
        let request = request["submitChangeRequest"]["request"]["id"].as_str().unwrap().to_string();
        // (mutation, its document, the variables for an id of the other site)
        let cases: Vec<Case> = vec![
            ("createPerson", "mutation($s: ID) { createPerson(input: { siteId: $s, name: \"X\" }) { __typename } }", Box::new(|id: &str| json!({ "s": id }))),
            ("updatePerson", "mutation($id: ID!) { updatePerson(id: $id, input: { name: \"X\" }) { __typename } }", Box::new(|id: &str| json!({ "id": id }))),
            ("deletePerson", "mutation($id: ID!) { deletePerson(id: $id) { __typename } }", Box::new(|id: &str| json!({ "id": id }))),
            ("deletePerson", "mutation($id: ID!, $h: ID) { deletePerson(id: $id, handOverTo: $h) { __typename } }", Box::new({ let p = my_person.clone(); move |id: &str| json!({ "id": p, "h": id }) })),
            ("restorePerson", "mutation($id: ID!) { restorePerson(id: $id) { __typename } }", Box::new(|id: &str| json!({ "id": id }))),
            ("createLogin", CREATE_LOGIN, Box::new({ let p = my_case.clone(); move |id: &str| json!({ "i": { "personId": id, "username": "x.person", "password": PASSWORD, "profileId": p } }) })),
            ("createLogin", CREATE_LOGIN, Box::new({ let p = my_person.clone(); move |id: &str| json!({ "i": { "personId": p, "username": "x.profile", "password": PASSWORD, "profileId": id } }) })),
            ("updateLogin", "mutation($id: ID!) { updateLogin(id: $id, input: { isAdministrator: true }) { __typename } }", Box::new(|id: &str| json!({ "id": id }))),
            ("changeLoginProfile", "mutation($id: ID!, $p: ID!) { changeLoginProfile(id: $id, profileId: $p) { __typename } }", Box::new({ let p = my_case.clone(); move |id: &str| json!({ "id": id, "p": p }) })),
            ("changeLoginProfile", "mutation($id: ID!, $p: ID!) { changeLoginProfile(id: $id, profileId: $p) { __typename } }", Box::new({ let u = my_user.clone(); move |id: &str| json!({ "id": u, "p": id }) })),
            ("deleteLogin", "mutation($id: ID!) { deleteLogin(id: $id) { __typename } }", Box::new(|id: &str| json!({ "id": id }))),
            ("restoreLogin", "mutation($id: ID!) { restoreLogin(id: $id) { __typename } }", Box::new(|id: &str| json!({ "id": id }))),
            ("createProfile", "mutation($s: ID) { createProfile(input: { siteId: $s, name: \"X\", modules: [] }) { __typename } }", Box::new(|id: &str| json!({ "s": id }))),
            ("updateProfile", "mutation($id: ID!) { updateProfile(id: $id, input: { name: \"X\" }) { __typename } }", Box::new(|id: &str| json!({ "id": id }))),
            ("deleteProfile", "mutation($id: ID!) { deleteProfile(id: $id) { __typename } }", Box::new(|id: &str| json!({ "id": id }))),
            ("assignResponsibility", "mutation($p: ID!) { assignResponsibility(personId: $p, kind: FORM, name: \"X\") { __typename } }", Box::new(|id: &str| json!({ "p": id }))),
            ("removeResponsibility", "mutation($id: ID!) { removeResponsibility(id: $id) }", Box::new(|id: &str| json!({ "id": id }))),
            ("createLicenseOrder", "mutation($s: ID) { createLicenseOrder(siteId: $s, lines: [{ module: \"CASE\", total: 1 }]) { __typename } }", Box::new(|id: &str| json!({ "s": id }))),
            ("updateLicenseOrder", "mutation($id: ID!) { updateLicenseOrder(id: $id, lines: [{ module: \"CASE\", total: 1 }]) { __typename } }", Box::new(|id: &str| json!({ "id": id }))),
            ("discardLicenseOrder", "mutation($id: ID!) { discardLicenseOrder(id: $id) { __typename } }", Box::new(|id: &str| json!({ "id": id }))),
            ("checkoutLicenseOrder", "mutation($id: ID!) { checkoutLicenseOrder(id: $id, idempotencyKey: \"k\") { __typename } }", Box::new(|id: &str| json!({ "id": id }))),
            ("submitChangeRequest", "mutation($s: ID) { submitChangeRequest(siteId: $s, lines: [{ module: \"CASE\", total: 1 }], message: \"X\") { __typename } }", Box::new(|id: &str| json!({ "s": id }))),
            ("cancelChangeRequest", "mutation($id: ID!) { cancelChangeRequest(id: $id) { __typename } }", Box::new(|id: &str| json!({ "id": id }))),
            ("approveChangeRequest", "mutation($id: ID!) { approveChangeRequest(id: $id) { __typename } }", Box::new(|id: &str| json!({ "id": id }))),
            ("rejectChangeRequest", "mutation($id: ID!) { rejectChangeRequest(id: $id, reason: \"X\") { __typename } }", Box::new(|id: &str| json!({ "id": id }))),
            ("setPoolTotal", "mutation($s: ID!) { setPoolTotal(siteId: $s, module: \"CASE\", total: 1) { __typename } }", Box::new(|id: &str| json!({ "s": id }))),
            ("updateAgreement", "mutation($s: ID!) { updateAgreement(siteId: $s, selfService: true) { __typename } }", Box::new(|id: &str| json!({ "s": id }))),
        ];
        // The other site's id each case takes, in order.
        let ids = [
            &shop.id, &person, &person, &person, &dead, &person, &case, &user, &user, &case, &user, &gone, &shop.id,
            &case, &case, &person, &duty, &shop.id, &order, &order, &order, &form.id, &request, &request, &request,
            &shop.id, &shop.id,
        ];
        assert_eq!(ids.len(), cases.len());
        let mut not_found = 0;
        for ((name, doc, vars), id) in cases.iter().zip(ids) {
            let theirs = app.gql(Some(&me.admin_token), doc, vars(id)).await;
            let missing = app.gql(Some(&me.admin_token), doc, vars(&never_issued(id))).await;
            assert!(theirs.get("errors").is_some(), "{name}: another site's id was accepted: {theirs}");
            assert_eq!(error_of(&theirs), error_of(&missing), "{name}: another site's id and a missing one are told apart");
            if error_code(&theirs) == "NOT_FOUND" {
                not_found += 1;
                // Both recorded, alike: the newest two events are this pair.
                let events = trail(&app, &me.admin_token, None, json!({ "action": name })).await;
                assert!(events.len() >= 2, "{name}: {events:?}");
                assert_eq!(events[0], events[1], "{name}: the two refusals are recorded apart");
                assert_eq!(events[0]["code"], "NOT_FOUND");
                assert_eq!(events[0]["targetId"], Value::Null);
            }
        }
        // Even the operators' own mutations: another site is not there for an administrator.
        assert_eq!(not_found, cases.len(), "every mutation answers NOT_FOUND");
        // The other sites' trails learnt of none of it.
        for site in [&shop, &form] {
            let refused = trail(&app, &site.admin_token, None, json!({ "outcome": "REFUSED" })).await;
            assert_eq!(refused, Vec::<Value>::new());
        }
    }
}

both_backends! {
    async fn each_event_names_the_mutation_and_targets_what_it_made_or_changed(db: Db) {
        let app = TestApp::spawn(db).await;
        let site = app.site("Targets", &[("CASE", 5)], true).await;
        let case = site.profile(&app, "Case", &["CASE"]).await;
        let person = site.person(&app, "Tilda Target").await;
        let created = site.try_login(&app, &person, "tilda", &case, None).await;
        let user = created["user"]["id"].as_str().unwrap().to_string();
        let change = "mutation($id: ID!, $p: ID!) { changeLoginProfile(id: $id, profileId: $p) { __typename } }";
        app.ok(Some(&site.admin_token), change, json!({ "id": user, "p": site.parking_profile })).await;
        let update = "mutation($id: ID!) { updateLogin(id: $id, input: { username: \"tilda.t\" }) { __typename } }";
        app.ok(Some(&site.admin_token), update, json!({ "id": user })).await;
        let duty = app.ok(Some(&site.admin_token), "mutation($p: ID!) { assignResponsibility(personId: $p, kind: FORM, name: \"Form\") { ... on AssignResponsibilitySuccess { responsibility { id } } } }", json!({ "p": person })).await;
        let duty = duty["assignResponsibility"]["responsibility"]["id"].as_str().unwrap().to_string();
        let order = app.ok(Some(&site.admin_token), "mutation { createLicenseOrder(lines: [{ module: \"CASE\", total: 6 }]) { ... on LicenseOrderSuccess { order { id } } } }", json!({})).await;
        let order = order["createLicenseOrder"]["order"]["id"].as_str().unwrap().to_string();
        let events = trail(&app, &site.admin_token, None, json!({ "outcome": "ACCEPTED" })).await;
        let of = |action: &str| events.iter().find(|e| e["action"] == action).unwrap_or_else(|| panic!("no {action} in {events:?}")).clone();
        assert_eq!(of("createLogin")["targetId"], user.as_str(), "createLogin targets the new user");
        assert_eq!(of("createLogin")["targetPerson"], json!({ "name": "Tilda Target" }));
        assert_eq!(of("createProfile")["targetId"], case.as_str(), "createProfile targets the profile");
        assert_eq!(of("changeLoginProfile")["targetId"], user.as_str(), "changeLoginProfile is recorded under its own name");
        assert_eq!(of("updateLogin")["targetId"], user.as_str());
        assert_eq!(events.iter().filter(|e| e["action"] == "updateLogin").count(), 1, "only the updateLogin is an updateLogin");
        assert_eq!(of("assignResponsibility")["targetId"], duty.as_str());
        assert_eq!(of("createLicenseOrder")["targetId"], order.as_str());
        assert_eq!(of("createPerson")["targetId"], person.as_str());
        // createSite targets the site, on the site's own trail (the operator reads it).
        let ops = trail(&app, &site.operator_token, Some(&site.id), json!({ "action": "createSite" })).await;
        assert_eq!(ops.len(), 1, "{ops:?}");
        assert_eq!(ops[0]["targetId"], site.id.as_str());
        // Every action on the trail is a mutation's name.
        let names = app.ok(Some(&site.admin_token), "{ __type(name: \"Mutation\") { fields { name } } }", json!({})).await;
        let names: Vec<&str> = names["__type"]["fields"].as_array().unwrap().iter().map(|f| f["name"].as_str().unwrap()).collect();
        for e in trail(&app, &site.admin_token, None, json!({})).await {
            assert!(names.contains(&e["action"].as_str().unwrap()), "{e}");
        }
        // A person's events include those about their login and responsibilities.
        let about = trail(&app, &site.admin_token, None, json!({ "targetId": person })).await;
        let actions: Vec<&str> = about.iter().map(|e| e["action"].as_str().unwrap()).collect();
        assert_eq!(actions, ["assignResponsibility", "updateLogin", "changeLoginProfile", "createLogin", "createPerson"]);
    }
}

both_backends! {
    async fn refusals_carry_their_numbers_code_and_message_and_the_trail_filters_by_outcome(db: Db) {
        let app = TestApp::spawn(db).await;
        let site = app.site("Numbers", &[("CASE", 3)], false).await;
        let case = site.profile(&app, "Case", &["CASE"]).await;
        site.user(&app, "Uno", &case).await;
        site.user(&app, "Due", &case).await;
        let set = "mutation($s: ID!, $t: Int!) { setPoolTotal(siteId: $s, module: \"CASE\", total: $t) { __typename ... on PoolBelowUsage { code message } } }";
        let r = app.ok(Some(&site.operator_token), set, json!({ "s": site.id, "t": 1 })).await;
        assert_eq!(r["setPoolTotal"]["code"], "POOL_BELOW_USAGE");
        let message = r["setPoolTotal"]["message"].as_str().unwrap().to_string();
        let refused = trail(&app, &site.admin_token, None, json!({ "outcome": "REFUSED" })).await;
        assert_eq!(refused.len(), 1, "{refused:?}");
        let e = &refused[0];
        assert_eq!(e["action"], "setPoolTotal");
        assert_eq!(e["code"], "POOL_BELOW_USAGE");
        assert_eq!(e["message"], message.as_str());
        assert_eq!(e["detail"], format!("POOL_BELOW_USAGE: {message}"));
        assert_eq!(
            e["pools"],
            json!([{ "module": { "code": "CASE" }, "usedBefore": 2, "usedAfter": 2, "totalBefore": 3, "totalAfter": 1, "shortfall": 1 }])
        );
        let accepted = trail(&app, &site.admin_token, None, json!({ "outcome": "ACCEPTED" })).await;
        assert!(!accepted.is_empty());
        assert!(accepted.iter().all(|e| e["outcome"] == "ACCEPTED" && e["code"].is_null() && e["message"].is_null()), "{accepted:?}");
        let all = trail(&app, &site.admin_token, None, json!({})).await;
        assert_eq!(all.len(), accepted.len() + refused.len());
    }
}

both_backends! {
    /// The deciding transaction writes the refusal's event: on PostgreSQL a
    /// trigger sees the event inserted by a transaction that already had a
    /// transaction id (taken by the change's row locks and writes, which the
    /// refusal undid), not by a statement of its own after a rollback. On
    /// both backends a refusal leaves nothing of the change, only its event.
    async fn a_refusals_event_is_written_in_the_transaction_that_decided_it(db: Db) {
        let app = TestApp::spawn(db).await;
        let site = app.site("Decided", &[("CASE", 1)], false).await;
        let case = site.profile(&app, "Case", &["CASE"]).await;
        site.user(&app, "Full Seat", &case).await;
        if db == Db::Postgres {
            app.store
                .execute_raw(
                    "CREATE TABLE audit_tx (action TEXT, code TEXT, in_open_tx BOOLEAN);
                     CREATE FUNCTION audit_tx_note() RETURNS trigger AS $$ BEGIN
                       INSERT INTO audit_tx VALUES (NEW.action, NEW.code, txid_current_if_assigned() IS NOT NULL);
                       RETURN NEW; END $$ LANGUAGE plpgsql;
                     CREATE TRIGGER audit_tx_note BEFORE INSERT ON audit_events FOR EACH ROW EXECUTE FUNCTION audit_tx_note();",
                )
                .await
                .unwrap();
        }
        let person = site.person(&app, "Rolf Refused").await;
        // Refused after its writes began (R4: the pool is full): the person locked, the profile joined.
        assert_eq!(site.try_login(&app, &person, "rolf", &case, None).await["__typename"], "LicenseLimitExceeded");
        // Refused in the transaction on an id of no object.
        let body = app.gql(Some(&site.admin_token), CREATE_LOGIN, json!({ "i": { "personId": person, "username": "rolf", "password": PASSWORD, "profileId": never_issued(&case) } })).await;
        assert_eq!(error_code(&body), "NOT_FOUND");
        assert_eq!(site.pool(&app, "CASE").await, (1, 1, 0), "nothing of the refused changes stayed");
        let refused = trail(&app, &site.admin_token, None, json!({ "outcome": "REFUSED", "action": "createLogin" })).await;
        let codes: Vec<&str> = refused.iter().map(|e| e["code"].as_str().unwrap()).collect();
        assert_eq!(codes, ["NOT_FOUND", "LICENSE_LIMIT_EXCEEDED"]);
        assert_eq!(refused[1]["targetPerson"], json!({ "name": "Rolf Refused" }));
        if db == Db::Postgres {
            let pool = sqlx::PgPool::connect(&app.database_url).await.unwrap();
            let count = |sql: &'static str| sqlx::query_scalar::<_, i64>(sql).fetch_one(&pool);
            let inside = count("SELECT COUNT(*) FROM audit_tx WHERE action = 'createLogin' AND code IS NOT NULL AND in_open_tx");
            assert_eq!(inside.await.unwrap(), 2, "both refusals' events were inserted in the transaction that decided them");
            let alone = count("SELECT COUNT(*) FROM audit_tx WHERE action = 'createLogin' AND code IS NOT NULL AND NOT in_open_tx");
            assert_eq!(alone.await.unwrap(), 0);
            pool.close().await;
        }
    }
}

struct Binary {
    child: std::process::Child,
    url: String,
}

impl Drop for Binary {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_binary(database_url: &str) -> Binary {
    let child = Command::new(env!("CARGO_BIN_EXE_license-gateway"))
        .args(["--database-url", database_url, "--listen", "127.0.0.1:0"])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the binary");
    // Owned by `Binary` from here on, so a failure below still stops the process.
    let mut binary = Binary { child, url: String::new() };
    let mut lines = BufReader::new(binary.child.stdout.take().unwrap()).lines();
    loop {
        let line = lines.next().expect("the binary says where it listens").expect("stdout");
        if let Some(rest) = line.strip_prefix("license-gateway listening on ") {
            binary.url = rest.split_whitespace().next().unwrap().trim_end_matches('/').to_string();
            std::thread::spawn(move || for _ in lines {});
            return binary;
        }
    }
}

both_backends! {
    /// The real binary killed (SIGKILL) the moment a refused change's answer
    /// arrives: the refusal's event is there when the database is read again,
    /// because the answer is sent only after the event committed with the
    /// transaction that decided it.
    async fn a_refusals_event_survives_a_kill_right_after_its_answer(db: Db) {
        let app = TestApp::spawn(db).await;
        let site = app.site("Killed", &[("CASE", 1)], false).await;
        let case = site.profile(&app, "Case", &["CASE"]).await;
        site.user(&app, "Seat Taken", &case).await;
        let people: Vec<String> = {
            let mut v = Vec::new();
            for i in 0..3 {
                v.push(site.person(&app, &format!("Kim Killed {i}")).await);
            }
            v
        };
        let client = reqwest::Client::new();
        for (i, person) in people.iter().enumerate() {
            let mut binary = start_binary(&app.database_url);
            let vars = json!({ "i": { "personId": person, "username": format!("kim{i}"), "password": PASSWORD, "profileId": case } });
            let body: Value = client
                .post(format!("{}/graphql", binary.url))
                .bearer_auth(&site.admin_token)
                .json(&json!({ "query": CREATE_LOGIN, "variables": vars }))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            binary.child.kill().unwrap();
            binary.child.wait().unwrap();
            assert_eq!(body["data"]["createLogin"]["__typename"], "LicenseLimitExceeded", "{body}");
        }
        let refused = trail(&app, &site.admin_token, None, json!({ "outcome": "REFUSED" })).await;
        assert_eq!(refused.len(), 3, "{refused:?}");
        assert!(refused.iter().all(|e| e["code"] == "LICENSE_LIMIT_EXCEEDED" && e["pools"][0]["shortfall"] == 1));
    }
}

both_backends! {
    async fn dates_outside_1900_to_9999_are_bad_input(db: Db) {
        let app = TestApp::spawn(db).await;
        let site = app.site("Dates", &[("CASE", 5)], false).await;
        let person = site.person(&app, "Dana Date").await;
        for bad in ["0000-01-01", "1899-12-31", "-0001-01-01", "+10000-01-01"] {
            let body = site.try_login_raw(&app, &person, "dana", &site.parking_profile, bad).await;
            assert_eq!(error_code(&body), "BAD_USER_INPUT", "{bad}: {body}");
            assert_eq!(body["errors"][0]["extensions"]["field"], "validUntil");
        }
        let r = site.try_login(&app, &person, "dana", &site.parking_profile, Some("9999-12-31")).await;
        assert_eq!(r["__typename"], "CreateLoginSuccess", "{r}");
        let user = r["user"]["id"].as_str().unwrap();
        let update = "mutation($id: ID!, $d: Date) { updateLogin(id: $id, input: { validUntil: $d }) { __typename } }";
        let body = app.gql(Some(&site.admin_token), update, json!({ "id": user, "d": "1850-06-01" })).await;
        assert_eq!(error_code(&body), "BAD_USER_INPUT");
        app.ok(Some(&site.admin_token), update, json!({ "id": user, "d": "1900-01-01" })).await;
    }
}

both_backends! {
    async fn a_module_given_twice_is_bad_input_in_site_pools_and_total_lines(db: Db) {
        let app = TestApp::spawn(db).await;
        let op = app.operator().await;
        let create = "mutation($p: [PoolTotalInput!]!) { createSite(input: { name: \"Twice\", agreementName: \"A\", pools: $p,
            administrator: { name: \"Adm\", username: \"twice-admin\", password: \"correct horse battery\" } }) { __typename } }";
        for pools in [json!([{ "module": "CASE", "total": 1 }, { "module": "CASE", "total": 5 }]), json!([{ "module": "CASE", "total": 1 }, { "module": "case", "total": 1 }])] {
            let body = app.gql(Some(&op), create, json!({ "p": pools })).await;
            assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
            assert_eq!(body["errors"][0]["extensions"]["field"], "pools");
        }
        let sites = app.ok(Some(&op), "{ sites { nodes { name } } }", json!({})).await;
        assert!(!sites.to_string().contains("Twice"), "nothing was created: {sites}");
        let site = app.site("Lines", &[("CASE", 1)], true).await;
        let order = "mutation { createLicenseOrder(lines: [{ module: \"CASE\", total: 2 }, { module: \"case\", total: 3 }]) { __typename } }";
        assert_eq!(error_code(&app.gql(Some(&site.admin_token), order, json!({})).await), "BAD_USER_INPUT");
    }
}

both_backends! {
    /// Module codes are matched without regard to case, and an unknown code
    /// is bad input, in every argument that takes one.
    async fn module_codes_match_without_case_and_unknown_ones_are_bad_input_everywhere(db: Db) {
        let app = TestApp::spawn(db).await;
        let site = app.site("Codes", &[("CASE", 5)], true).await;
        let profile = site.profile(&app, "Mixed", &["case"]).await;
        site.user(&app, "Cleo Case", &profile).await;
        let users = "query($m: String) { users(filter: { module: $m }) { nodes { username } } }";
        let lower = app.ok(Some(&site.admin_token), users, json!({ "m": "case" })).await;
        let upper = app.ok(Some(&site.admin_token), users, json!({ "m": "CASE" })).await;
        assert_eq!(lower, upper);
        assert_eq!(lower["users"]["nodes"], json!([{ "username": "cleo.case" }]));
        let admin = |q: &'static str| (site.admin_token.clone(), q);
        let op = |q: &'static str| (site.operator_token.clone(), q);
        let checks = [
            admin("query($m: String!) { users(filter: { module: $m }) { nodes { username } } }"),
            admin("mutation($m: String!) { createProfile(input: { name: \"P\", modules: [$m] }) { __typename } }"),
            admin("mutation($m: String!) { createLicenseOrder(lines: [{ module: $m, total: 9 }]) { __typename } }"),
            op("mutation($m: String!) { createSite(input: { name: \"S\", agreementName: \"A\", pools: [{ module: $m, total: 1 }], administrator: { name: \"A\", username: \"s-admin\", password: \"correct horse battery\" } }) { __typename } }"),
        ];
        for (token, q) in &checks {
            let body = app.gql(Some(token), q, json!({ "m": "NOPE" })).await;
            assert_eq!(error_code(&body), "BAD_USER_INPUT", "{q}: {body}");
            let body = app.gql(Some(token), q, json!({ "m": "case" })).await;
            assert!(body.get("errors").is_none(), "{q}: {body}");
        }
        let set = "mutation($s: ID!, $m: String!) { setPoolTotal(siteId: $s, module: $m, total: 7) { __typename } }";
        assert_eq!(error_code(&app.gql(Some(&site.operator_token), set, json!({ "s": site.id, "m": "NOPE" })).await), "BAD_USER_INPUT");
        app.ok(Some(&site.operator_token), set, json!({ "s": site.id, "m": "case" })).await;
        assert_eq!(site.pool(&app, "CASE").await.0, 7);
        let update = "mutation($id: ID!, $m: String!) { updateProfile(id: $id, input: { modules: [$m] }) { __typename } }";
        assert_eq!(error_code(&app.gql(Some(&site.admin_token), update, json!({ "id": profile, "m": "NOPE" })).await), "BAD_USER_INPUT");
    }
}
