//! The license lifecycle (R6, R7, R10, R11, R12 of docs/domain.md), the
//! audit trail and previews, through the GraphQL API over HTTP, on both backends.

mod common;

use common::*;
use serde_json::{Value, json};

const CREATE_ORDER: &str =
    "mutation($s: ID, $l: [TotalLineInput!]!) { createLicenseOrder(siteId: $s, lines: $l) { __typename
    ... on LicenseOrderSuccess { order { id status } } ... on WrongLicensePath { code remedy message } } }";
const CHECKOUT: &str = "mutation($id: ID!, $k: String!) { checkoutLicenseOrder(id: $id, idempotencyKey: $k) { __typename
    ... on CheckoutSuccess { order { status checkedOutBy { name } lines { module { code } newTotal totalBefore totalAfter } } licensePools { module { code } total used } }
    ... on TotalsBelowUsage { code message pools { module { code } requestedTotal used usersToRemove } }
    ... on OrderNotDraft { code status } } }";
const SUBMIT: &str =
    "mutation($l: [TotalLineInput!]!, $m: String!) { submitChangeRequest(lines: $l, message: $m) { __typename
    ... on ChangeRequestSuccess { request { id status } } ... on WrongLicensePath { remedy } } }";
const APPROVE: &str = "mutation($id: ID!) { approveChangeRequest(id: $id) { __typename
    ... on ApproveChangeRequestSuccess { request { status lines { totalBefore totalAfter } } }
    ... on TotalsBelowUsage { pools { module { code } requestedTotal used usersToRemove } }
    ... on RequestNotPending { status } } }";

fn lines(pairs: &[(&str, i64)]) -> Value {
    Value::Array(pairs.iter().map(|(m, t)| json!({ "module": m, "total": t })).collect())
}

both_backends! {
    async fn r10_an_order_is_checked_out_every_line_or_none_and_idempotently(db: Db) {
        let app = TestApp::spawn(db).await;
        let site = app.site("Orders", &[("CASE", 2), ("DOCUMENT", 2)], true).await;
        let case = site.profile(&app, "Case", &["CASE"]).await;
        site.user(&app, "Cai Case", &case).await;
        let draft = app.ok(Some(&site.admin_token), CREATE_ORDER, json!({ "l": lines(&[("CASE", 0), ("DOCUMENT", 5)]) })).await;
        let order = draft["createLicenseOrder"]["order"]["id"].as_str().unwrap().to_string();
        assert_eq!(draft["createLicenseOrder"]["order"]["status"], "DRAFT");
        // R5 re-checked at checkout: Case cannot drop below its one user; Document is not applied either.
        let r = app.ok(Some(&site.admin_token), CHECKOUT, json!({ "id": order, "k": "k1" })).await["checkoutLicenseOrder"].clone();
        assert_eq!(r["__typename"], "TotalsBelowUsage");
        assert_eq!(r["pools"], json!([{ "module": { "code": "CASE" }, "requestedTotal": 0, "used": 1, "usersToRemove": 1 }]));
        assert_eq!(site.pool(&app, "DOCUMENT").await, (2, 0, 2), "every line or none");
        // Edit the draft and check out.
        let edit = "mutation($id: ID!, $l: [TotalLineInput!]!) { updateLicenseOrder(id: $id, lines: $l) { __typename } }";
        app.ok(Some(&site.admin_token), edit, json!({ "id": order, "l": lines(&[("CASE", 1), ("DOCUMENT", 5)]) })).await;
        let r = app.ok(Some(&site.admin_token), CHECKOUT, json!({ "id": order, "k": "k2" })).await["checkoutLicenseOrder"].clone();
        assert_eq!(r["__typename"], "CheckoutSuccess", "{r}");
        assert_eq!(r["order"]["checkedOutBy"]["name"], "Orders Admin");
        assert_eq!(
            r["order"]["lines"],
            json!([
                { "module": { "code": "CASE" }, "newTotal": 1, "totalBefore": 2, "totalAfter": 1 },
                { "module": { "code": "DOCUMENT" }, "newTotal": 5, "totalBefore": 2, "totalAfter": 5 }
            ])
        );
        // The same key retried: the first result, nothing applied twice.
        let again = app.ok(Some(&site.admin_token), CHECKOUT, json!({ "id": order, "k": "k2" })).await["checkoutLicenseOrder"].clone();
        assert_eq!(again["order"], r["order"]);
        assert_eq!(site.pool(&app, "DOCUMENT").await, (5, 0, 5));
        // Another key on a checked-out order is refused.
        let other = app.ok(Some(&site.admin_token), CHECKOUT, json!({ "id": order, "k": "k3" })).await["checkoutLicenseOrder"].clone();
        assert_eq!(other["code"], "ORDER_NOT_DRAFT");
        let edit_after = app.ok(Some(&site.admin_token), "mutation($id: ID!) { discardLicenseOrder(id: $id) { __typename } }", json!({ "id": order })).await;
        assert_eq!(edit_after["discardLicenseOrder"]["__typename"], "OrderNotDraft");
        assert_counters_match(&app.store).await;
    }
}

both_backends! {
    async fn r10_the_agreement_decides_between_orders_and_change_requests(db: Db) {
        let app = TestApp::spawn(db).await;
        let manual = app.site("Manual", &[("CASE", 2)], false).await;
        let r = app.ok(Some(&manual.admin_token), CREATE_ORDER, json!({ "l": lines(&[("CASE", 3)]) })).await["createLicenseOrder"].clone();
        assert_eq!((r["code"].as_str(), r["remedy"].as_str()), (Some("WRONG_LICENSE_PATH"), Some("CHANGE_REQUEST")));
        assert!(r["message"].as_str().unwrap().contains("change request"));
        let shop = app.site("Shop", &[("CASE", 2)], true).await;
        let r = app.ok(Some(&shop.admin_token), SUBMIT, json!({ "l": lines(&[("CASE", 3)]), "m": "more please" })).await;
        assert_eq!(r["submitChangeRequest"]["remedy"], "LICENSE_ORDER");
        // The operator switches the agreement; the path follows it.
        let switch = "mutation($s: ID!) { updateAgreement(siteId: $s, selfService: true) { site { agreement { selfService remedy } } } }";
        let r = app.ok(Some(&manual.operator_token), switch, json!({ "s": manual.id })).await;
        assert_eq!(r["updateAgreement"]["site"]["agreement"], json!({ "selfService": true, "remedy": "LICENSE_ORDER" }));
        let r = app.ok(Some(&manual.admin_token), CREATE_ORDER, json!({ "l": lines(&[("CASE", 3)]) })).await;
        assert_eq!(r["createLicenseOrder"]["__typename"], "LicenseOrderSuccess");
    }
}

both_backends! {
    async fn r10_a_change_request_is_approved_like_a_checkout_rejected_or_cancelled(db: Db) {
        let app = TestApp::spawn(db).await;
        let site = app.site("Requests", &[("CASE", 2)], false).await;
        let case = site.profile(&app, "Case", &["CASE"]).await;
        site.user(&app, "Cai Case", &case).await;
        let up = app.ok(Some(&site.admin_token), SUBMIT, json!({ "l": lines(&[("CASE", 4)]), "m": "two new hires" })).await;
        let up = up["submitChangeRequest"]["request"]["id"].as_str().unwrap().to_string();
        let pending = app.ok(Some(&site.operator_token), "{ changeRequests(status: PENDING) { nodes { message site { name } requestedBy { name } } } }", json!({})).await;
        assert_eq!(pending["changeRequests"]["nodes"], json!([{ "message": "two new hires", "site": { "name": "Requests" }, "requestedBy": { "name": "Requests Admin" } }]));
        let r = app.ok(Some(&site.operator_token), APPROVE, json!({ "id": up })).await["approveChangeRequest"].clone();
        assert_eq!(r["request"], json!({ "status": "APPROVED", "lines": [{ "totalBefore": 2, "totalAfter": 4 }] }));
        assert_eq!(site.pool(&app, "CASE").await, (4, 1, 3));
        // An approval that would break R5 is refused with the numbers.
        let down = app.ok(Some(&site.admin_token), SUBMIT, json!({ "l": lines(&[("CASE", 0)]), "m": "cut" })).await;
        let down = down["submitChangeRequest"]["request"]["id"].as_str().unwrap().to_string();
        let r = app.ok(Some(&site.operator_token), APPROVE, json!({ "id": down })).await["approveChangeRequest"].clone();
        assert_eq!(r["pools"], json!([{ "module": { "code": "CASE" }, "requestedTotal": 0, "used": 1, "usersToRemove": 1 }]));
        assert_eq!(site.pool(&app, "CASE").await, (4, 1, 3));
        let reject = "mutation($id: ID!) { rejectChangeRequest(id: $id, reason: \"one user still needs Case\") { __typename ... on ChangeRequestSuccess { request { status reason decidedBy } } } }";
        let r = app.ok(Some(&site.operator_token), reject, json!({ "id": down })).await;
        assert_eq!(r["rejectChangeRequest"]["request"]["status"], "REJECTED");
        assert_eq!(r["rejectChangeRequest"]["request"]["reason"], "one user still needs Case");
        // Only the requester cancels, and only while pending.
        let third = app.ok(Some(&site.admin_token), SUBMIT, json!({ "l": lines(&[("CASE", 5)]), "m": "maybe" })).await;
        let third = third["submitChangeRequest"]["request"]["id"].as_str().unwrap().to_string();
        let cancel = "mutation($id: ID!) { cancelChangeRequest(id: $id) { __typename ... on ChangeRequestSuccess { request { status } } ... on RequestNotPending { status } } }";
        let body = app.gql(Some(&site.operator_token), cancel, json!({ "id": third })).await;
        assert_eq!(error_code(&body), "FORBIDDEN");
        assert_eq!(body["errors"][0]["extensions"]["rule"], "REQUESTER_ONLY");
        let r = app.ok(Some(&site.admin_token), cancel, json!({ "id": third })).await;
        assert_eq!(r["cancelChangeRequest"]["request"]["status"], "CANCELLED");
        let r = app.ok(Some(&site.admin_token), cancel, json!({ "id": up })).await;
        assert_eq!(r["cancelChangeRequest"]["status"], "APPROVED");
        // Administrators cannot decide their own requests.
        let body = app.gql(Some(&site.admin_token), APPROVE, json!({ "id": third })).await;
        assert_eq!(error_code(&body), "FORBIDDEN");
        assert_counters_match(&app.store).await;
    }
}

both_backends! {
    async fn r11_an_owner_manages_the_pools_of_owned_agreements_and_never_staff(db: Db) {
        let app = TestApp::spawn(db).await;
        let site = app.site("Owned", &[("CASE", 2)], true).await;
        let other = app.site("Not owned", &[("CASE", 2)], true).await;
        let create = "mutation { createOwnerAccount(name: \"Olga Owner\", username: \"olga\", password: \"correct horse battery\") { __typename ... on CreateOwnerAccountSuccess { owner { id } } } }";
        let owner = app.ok(Some(&site.operator_token), create, json!({})).await;
        let owner = owner["createOwnerAccount"]["owner"]["id"].as_str().unwrap().to_string();
        let set = "mutation($s: ID!, $o: ID) { updateAgreement(siteId: $s, ownerId: $o) { site { agreement { owner { name } } } } }";
        let r = app.ok(Some(&site.operator_token), set, json!({ "s": site.id, "o": owner })).await;
        assert_eq!(r["updateAgreement"]["site"]["agreement"]["owner"]["name"], "Olga Owner");
        let token = app.sign_in("olga", PASSWORD).await;
        let me = app.ok(Some(&token), "{ viewer { kind user { id } ownedSites { name licensePools { total } } } }", json!({})).await;
        assert_eq!(me["viewer"], json!({ "kind": "AGREEMENT_OWNER", "user": null, "ownedSites": [{ "name": "Owned", "licensePools": [{ "total": 2 }, { "total": 0 }] }] }));
        // Orders through the owner's own account, with no login on the site.
        let order = app.ok(Some(&token), CREATE_ORDER, json!({ "l": lines(&[("CASE", 7)]) })).await;
        let order = order["createLicenseOrder"]["order"]["id"].as_str().unwrap().to_string();
        let r = app.ok(Some(&token), CHECKOUT, json!({ "id": order, "k": "o-1" })).await;
        assert_eq!(r["checkoutLicenseOrder"]["order"]["checkedOutBy"]["name"], "Olga Owner (agreement owner)");
        assert_eq!(site.pool(&app, "CASE").await, (7, 0, 7));
        let history = app.ok(Some(&token), "{ licenseOrders { nodes { status } } auditEvents(filter: { action: \"checkoutLicenseOrder\" }) { nodes { actor { name } pools { totalBefore totalAfter } } } }", json!({})).await;
        assert_eq!(history["licenseOrders"]["nodes"], json!([{ "status": "CHECKED_OUT" }]));
        assert_eq!(history["auditEvents"]["nodes"][0]["pools"], json!([{ "totalBefore": 2, "totalAfter": 7 }]));
        // ...but no staff.
        for q in ["{ users { nodes { id } } }", "{ people { nodes { id } } }", "{ profiles { id } }", "mutation { createPerson(input: { name: \"X\" }) { __typename } }"] {
            let body = app.gql(Some(&token), q, json!({})).await;
            assert_eq!(error_code(&body), "FORBIDDEN", "{q}: {body}");
            assert_eq!(body["errors"][0]["extensions"]["rule"], "OWNER_MANAGES_LICENSES_ONLY");
        }
        let body = app.gql(Some(&token), "query($s: ID) { licensePools(siteId: $s) { total } }", json!({ "s": other.id })).await;
        assert_eq!(error_code(&body), "NOT_FOUND", "another agreement is not the owner's");
        // Removing the owner ends the access at once.
        app.ok(Some(&site.operator_token), set, json!({ "s": site.id, "o": null })).await;
        let body = app.gql(Some(&token), "query($s: ID) { licensePools(siteId: $s) { total } }", json!({ "s": site.id })).await;
        assert_eq!(error_code(&body), "NOT_FOUND");
    }
}

both_backends! {
    async fn r6_r7_a_deleted_person_is_restored_with_their_login_when_licenses_allow(db: Db) {
        let app = TestApp::spawn(db).await;
        let site = app.site("Restore", &[("CASE", 1)], false).await;
        let case = site.profile(&app, "Case", &["CASE"]).await;
        let person = site.person(&app, "Rut Restored").await;
        assert_eq!(site.try_login(&app, &person, "rut", &case, None).await["__typename"], "CreateLoginSuccess");
        app.ok(Some(&site.admin_token), "mutation($id: ID!) { deletePerson(id: $id) { __typename } }", json!({ "id": person })).await;
        assert_eq!(site.pool(&app, "CASE").await, (1, 0, 1));
        // Someone else takes the free seat: restoring now needs a license that is not there.
        site.user(&app, "Tia Taker", &case).await;
        let restore = "mutation($id: ID!) { restorePerson(id: $id) { __typename
            ... on RestorePersonSuccess { person { deleted user { username licensedModules { code } } } licensePools { used } }
            ... on LicenseLimitExceeded { shortages { module { code } needed available shortfall } } } }";
        let r = app.ok(Some(&site.admin_token), restore, json!({ "id": person })).await["restorePerson"].clone();
        assert_eq!(r["shortages"], json!([{ "module": { "code": "CASE" }, "needed": 1, "available": 0, "shortfall": 1 }]));
        let set = "mutation($s: ID!) { setPoolTotal(siteId: $s, module: \"CASE\", total: 2) { __typename } }";
        app.ok(Some(&site.operator_token), set, json!({ "s": site.id })).await;
        let r = app.ok(Some(&site.admin_token), restore, json!({ "id": person })).await["restorePerson"].clone();
        assert_eq!(r["person"], json!({ "deleted": false, "user": { "username": "rut", "licensedModules": [{ "code": "CASE" }] } }));
        assert_eq!(site.pool(&app, "CASE").await, (2, 2, 0));
        app.sign_in("rut", PASSWORD).await;
        assert_counters_match(&app.store).await;
    }
}

both_backends! {
    async fn r7_a_deleted_persons_name_stays_on_their_audit_events_and_orders(db: Db) {
        let app = TestApp::spawn(db).await;
        let site = app.site("Names", &[("CASE", 2)], true).await;
        let person = site.person(&app, "Nils Leaving").await;
        let r = app
            .ok(
                Some(&site.admin_token),
                "mutation($i: CreateLoginInput!) { createLogin(input: $i) { __typename } }",
                json!({ "i": { "personId": person, "username": "nils", "password": PASSWORD, "profileId": site.parking_profile, "isAdministrator": true } }),
            )
            .await;
        assert_eq!(r["createLogin"]["__typename"], "CreateLoginSuccess");
        let nils = app.sign_in("nils", PASSWORD).await;
        app.ok(Some(&nils), CREATE_ORDER, json!({ "l": lines(&[("CASE", 3)]) })).await;
        app.ok(Some(&nils), "mutation { createPerson(input: { name: \"Made By Nils\" }) { __typename } }", json!({})).await;
        app.ok(Some(&site.admin_token), "mutation($id: ID!) { deletePerson(id: $id) { __typename } }", json!({ "id": person })).await;
        let q = "{ licenseOrders { nodes { createdBy { name deleted person { name deleted } } } }
                   auditEvents(filter: { actorContains: \"nils\" }) { nodes { action actor { name deleted } } } }";
        let r = app.ok(Some(&site.admin_token), q, json!({})).await;
        assert_eq!(r["licenseOrders"]["nodes"][0]["createdBy"], json!({ "name": "Nils Leaving", "deleted": true, "person": { "name": "Nils Leaving", "deleted": true } }));
        let events = r["auditEvents"]["nodes"].as_array().unwrap();
        assert_eq!(events.len(), 2, "{events:?}");
        assert!(events.iter().all(|e| e["actor"] == json!({ "name": "Nils Leaving", "deleted": true })));
        // The deletion itself names its target, who is a tombstone now.
        let del = app.ok(Some(&site.admin_token), "{ auditEvents(filter: { action: \"deletePerson\" }) { nodes { outcome targetId targetPerson { name deleted } } } }", json!({})).await;
        assert_eq!(del["auditEvents"]["nodes"], json!([{ "outcome": "ACCEPTED", "targetId": person, "targetPerson": { "name": "Nils Leaving", "deleted": true } }]));
        let about = app.ok(Some(&site.admin_token), "query($t: ID) { auditEvents(filter: { targetId: $t }) { nodes { action } } }", json!({ "t": person })).await;
        let actions: Vec<&str> = about["auditEvents"]["nodes"].as_array().unwrap().iter().map(|n| n["action"].as_str().unwrap()).collect();
        assert_eq!(actions, ["deletePerson", "createLogin", "createPerson"], "events about one person, newest first");
    }
}

both_backends! {
    async fn r12_a_person_with_responsibilities_is_deleted_only_with_a_hand_over(db: Db) {
        let app = TestApp::spawn(db).await;
        let site = app.site("Duties", &[("CASE", 2)], false).await;
        let leaving = site.person(&app, "Lea Leaving").await;
        let staying = site.person(&app, "Sam Staying").await;
        let assign = "mutation($p: ID!, $k: ResponsibilityKindValue!, $n: String!) { assignResponsibility(personId: $p, kind: $k, name: $n) { __typename } }";
        app.ok(Some(&site.admin_token), assign, json!({ "p": leaving, "k": "FORM", "n": "Leave request form" })).await;
        app.ok(Some(&site.admin_token), assign, json!({ "p": leaving, "k": "DOCUMENT_FOLDER", "n": "Contracts" })).await;
        let delete = "mutation($id: ID!, $h: ID) { deletePerson(id: $id, handOverTo: $h) { __typename
            ... on PersonHasResponsibilities { code message responsibilities { kind name } } } }";
        let r = app.ok(Some(&site.admin_token), delete, json!({ "id": leaving })).await["deletePerson"].clone();
        assert_eq!(r["code"], "PERSON_HAS_RESPONSIBILITIES");
        assert_eq!(r["responsibilities"], json!([{ "kind": "FORM", "name": "Leave request form" }, { "kind": "DOCUMENT_FOLDER", "name": "Contracts" }]));
        assert!(r["message"].as_str().unwrap().contains("Contracts"));
        let r = app.ok(Some(&site.admin_token), delete, json!({ "id": leaving, "h": staying })).await["deletePerson"].clone();
        assert_eq!(r["__typename"], "DeletePersonSuccess");
        let held = app.ok(Some(&site.admin_token), "query($id: ID!) { node(id: $id) { ... on Person { responsibilities { name holder { name } } } } }", json!({ "id": staying })).await;
        assert_eq!(held["node"]["responsibilities"], json!([{ "name": "Leave request form", "holder": { "name": "Sam Staying" } }, { "name": "Contracts", "holder": { "name": "Sam Staying" } }]));
    }
}

both_backends! {
    async fn every_accepted_and_refused_change_is_an_audit_event_with_pool_numbers(db: Db) {
        let app = TestApp::spawn(db).await;
        let site = app.site("Audit", &[("CASE", 1)], false).await;
        let case = site.profile(&app, "Case", &["CASE"]).await;
        site.user(&app, "Ada Accepted", &case).await;
        let p = site.person(&app, "Rex Refused").await;
        assert_eq!(site.try_login(&app, &p, "rex", &case, None).await["__typename"], "LicenseLimitExceeded");
        let q = "{ auditEvents(filter: { action: \"createLogin\" }) { nodes { outcome rule code actor { name } targetPerson { name } pools { module { code } usedBefore usedAfter totalBefore totalAfter shortfall } } } }";
        let r = app.ok(Some(&site.admin_token), q, json!({})).await;
        assert_eq!(
            r["auditEvents"]["nodes"],
            json!([
                { "outcome": "REFUSED", "rule": "R4", "code": "LICENSE_LIMIT_EXCEEDED", "actor": { "name": "Audit Admin" }, "targetPerson": { "name": "Rex Refused" },
                  "pools": [{ "module": { "code": "CASE" }, "usedBefore": 1, "usedAfter": 2, "totalBefore": 1, "totalAfter": 1, "shortfall": 1 }] },
                { "outcome": "ACCEPTED", "rule": null, "code": null, "actor": { "name": "Audit Admin" }, "targetPerson": { "name": "Ada Accepted" },
                  "pools": [{ "module": { "code": "CASE" }, "usedBefore": 0, "usedAfter": 1, "totalBefore": 1, "totalAfter": 1, "shortfall": 0 }] }
            ])
        );
        let user = app.sign_in("ada.accepted", PASSWORD).await;
        assert_eq!(error_code(&app.gql(Some(&user), q, json!({})).await), "FORBIDDEN");
        // A mutation refused by an authorization rule is on the trail too.
        let sneaky = app.gql(Some(&user), "mutation { createPerson(input: { name: \"Sneaky\" }) { __typename } }", json!({})).await;
        assert_eq!(error_code(&sneaky), "FORBIDDEN");
        let denied = app.ok(Some(&site.admin_token), "{ auditEvents(filter: { action: \"createPerson\", actorContains: \"ada\" }) { nodes { outcome rule code message actor { name } } } }", json!({})).await;
        assert_eq!(denied["auditEvents"]["nodes"], json!([{ "outcome": "REFUSED", "rule": "STAFF_REQUIRES_ADMINISTRATOR", "code": "FORBIDDEN", "message": sneaky["errors"][0]["message"], "actor": { "name": "Ada Accepted" } }]));
        let bad = app.gql(Some(&site.admin_token), "{ auditEvents(filter: { from: \"yesterday\" }) { nodes { at } } }", json!({})).await;
        assert_eq!(error_code(&bad), "BAD_USER_INPUT");
    }
}

both_backends! {
    async fn pools_signal_when_they_are_near_their_limit(db: Db) {
        let app = TestApp::spawn(db).await;
        let site = app.site("Near", &[("CASE", 10)], false).await;
        let case = site.profile(&app, "Case", &["CASE"]).await;
        let q = "{ licensePools { module { code } nearLimit usageRatio } }";
        for i in 0..9 {
            site.user(&app, &format!("User {i}"), &case).await;
            let near = app.ok(Some(&site.admin_token), q, json!({})).await["licensePools"][0]["nearLimit"].clone();
            assert_eq!(near, i + 1 >= 9, "at {} of 10", i + 1);
        }
        let r = app.ok(Some(&site.admin_token), q, json!({})).await;
        assert_eq!(r["licensePools"][0]["usageRatio"], 0.9);
    }
}

/// A small deterministic generator, so a failing sequence can be replayed.
struct Lcg(u64);
impl Lcg {
    fn next(&mut self, n: usize) -> usize {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((self.0 >> 33) % n as u64) as usize
    }
}

both_backends! {
    async fn previews_agree_with_the_mutations_over_random_sequences_and_write_nothing(db: Db) {
        let app = TestApp::spawn(db).await;
        let site = app.site("Preview", &[("CASE", 3), ("DOCUMENT", 2)], true).await;
        let profiles = [
            site.parking_profile.clone(),
            site.profile(&app, "Case", &["CASE"]).await,
            site.profile(&app, "Doc", &["DOCUMENT"]).await,
            site.profile(&app, "Both", &["CASE", "DOCUMENT"]).await,
        ];
        let mut users = Vec::new();
        for i in 0..4 {
            users.push(site.user(&app, &format!("Pre {i}"), &profiles[0]).await);
        }
        let preview = "query($id: ID!, $p: ID!) { previewChangeLoginProfile(id: $id, profileId: $p) { allowed refusal { code } pools { module { code } usedAfter } } }";
        let preview_profile = "query($id: ID!, $m: [String!]!) { previewUpdateProfileModules(id: $id, modules: $m) { allowed refusal { code } pools { module { code } usedAfter } } }";
        let mutate_profile = "mutation($id: ID!, $m: [String!]) { updateProfile(id: $id, input: { modules: $m }) { __typename ... on Refusal { code } } }";
        let module_sets: [&[&str]; 4] = [&[], &["CASE"], &["DOCUMENT"], &["CASE", "DOCUMENT"]];
        let mut rng = Lcg(0x5eed);
        for step in 0..40 {
            let before = site.pools(&app).await;
            let (preview_body, mutation_body) = if rng.next(3) > 0 {
                let (u, p) = (&users[rng.next(users.len())], &profiles[rng.next(profiles.len())]);
                let pre = app.ok(Some(&site.admin_token), preview, json!({ "id": u, "p": p })).await["previewChangeLoginProfile"].clone();
                assert_eq!(site.pools(&app).await, before, "step {step}: a preview writes nothing");
                let done = app.ok(Some(&site.admin_token), CHANGE_PROFILE, json!({ "id": u, "p": p })).await["changeLoginProfile"].clone();
                (pre, done)
            } else {
                let (p, m) = (&profiles[1 + rng.next(3)], module_sets[rng.next(4)]);
                let pre = app.ok(Some(&site.admin_token), preview_profile, json!({ "id": p, "m": m })).await["previewUpdateProfileModules"].clone();
                assert_eq!(site.pools(&app).await, before, "step {step}: a preview writes nothing");
                let done = app.ok(Some(&site.admin_token), mutate_profile, json!({ "id": p, "m": m })).await["updateProfile"].clone();
                (pre, done)
            };
            let accepted = !mutation_body["__typename"].as_str().unwrap().contains("LicenseLimit") && mutation_body.get("code").is_none();
            assert_eq!(preview_body["allowed"], accepted, "step {step}: {preview_body} vs {mutation_body}");
            if accepted {
                let after = site.pools(&app).await;
                for impact in preview_body["pools"].as_array().unwrap() {
                    let code = impact["module"]["code"].as_str().unwrap();
                    let used = after.iter().find(|p| p.0 == code).unwrap().2;
                    assert_eq!(impact["usedAfter"].as_i64().unwrap(), used, "step {step}: preview said {impact}");
                }
            } else {
                assert_eq!(preview_body["refusal"]["code"], mutation_body["code"], "step {step}");
                assert_eq!(site.pools(&app).await, before, "step {step}: a refusal writes nothing");
            }
        }
        assert_counters_match(&app.store).await;
    }
}

const CHANGE_PROFILE: &str =
    "mutation($id: ID!, $p: ID!) { changeLoginProfile(id: $id, profileId: $p) { __typename ... on Refusal { code } } }";

both_backends! {
    async fn r4_r5_a_checkout_racing_consuming_changes_leaves_no_pool_over_allocated_or_half_applied(db: Db) {
        let app = TestApp::spawn(db).await;
        let site = app.site("Race", &[("CASE", 10), ("DOCUMENT", 10)], true).await;
        let both = site.profile(&app, "Both", &["CASE", "DOCUMENT"]).await;
        let mut users = Vec::new();
        for i in 0..10 {
            let u = site.user(&app, &format!("Racer {i}"), &site.parking_profile).await;
            users.push(u);
        }
        for u in &users[..5] {
            app.ok(Some(&site.admin_token), CHANGE_PROFILE, json!({ "id": u, "p": both })).await;
        }
        // Cut both pools to 6 while five more users each try to take one of each.
        let order = app.ok(Some(&site.admin_token), CREATE_ORDER, json!({ "l": lines(&[("CASE", 6), ("DOCUMENT", 6)]) })).await;
        let order = order["createLicenseOrder"]["order"]["id"].as_str().unwrap().to_string();
        let mut tasks = Vec::new();
        for u in &users[5..] {
            let (client, url, token, both) = (app.client.clone(), app.url.clone(), site.admin_token.clone(), both.clone());
            let u = u.clone();
            tasks.push(tokio::spawn(async move {
                let body = json!({ "query": CHANGE_PROFILE, "variables": { "id": u, "p": both } });
                client.post(format!("{url}/graphql")).bearer_auth(token).json(&body).send().await.unwrap().json::<Value>().await.unwrap()
            }));
        }
        let checkout = app.ok(Some(&site.admin_token), CHECKOUT, json!({ "id": order, "k": "race" })).await["checkoutLicenseOrder"].clone();
        let mut accepted = 0;
        for t in tasks {
            let r = t.await.unwrap();
            assert!(r.get("errors").is_none(), "{r}");
            if r["data"]["changeLoginProfile"]["__typename"] == "UpdateLoginSuccess" {
                accepted += 1;
            }
        }
        let pools = site.pools(&app).await;
        let (case, doc) = (&pools[0], &pools[1]);
        assert_eq!(case.1, doc.1, "the order applied every line or none: {pools:?}");
        assert!(case.2 <= case.1 && doc.2 <= doc.1, "R4: {pools:?}");
        assert_eq!(case.2, 5 + accepted, "used counts exactly the accepted changes");
        match checkout["__typename"].as_str().unwrap() {
            "CheckoutSuccess" => assert_eq!(case.1, 6),
            "TotalsBelowUsage" => assert_eq!(case.1, 10),
            other => panic!("unexpected checkout result {other}: {checkout}"),
        }
        assert_counters_match(&app.store).await;
    }
}

both_backends! {
    async fn r10_an_idempotent_checkout_retried_concurrently_applies_once(db: Db) {
        let app = TestApp::spawn(db).await;
        let site = app.site("Retry", &[("CASE", 2)], true).await;
        let order = app.ok(Some(&site.admin_token), CREATE_ORDER, json!({ "l": lines(&[("CASE", 9)]) })).await;
        let order = order["createLicenseOrder"]["order"]["id"].as_str().unwrap().to_string();
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let (client, url, token, order) = (app.client.clone(), app.url.clone(), site.admin_token.clone(), order.clone());
            tasks.push(tokio::spawn(async move {
                let body = json!({ "query": CHECKOUT, "variables": { "id": order, "k": "same-key" } });
                client.post(format!("{url}/graphql")).bearer_auth(token).json(&body).send().await.unwrap().json::<Value>().await.unwrap()
            }));
        }
        for t in tasks {
            let r = t.await.unwrap();
            assert_eq!(r["data"]["checkoutLicenseOrder"]["__typename"], "CheckoutSuccess", "{r}");
            assert_eq!(r["data"]["checkoutLicenseOrder"]["order"]["lines"][0]["totalBefore"], 2, "every retry sees the first result");
        }
        assert_eq!(site.pool(&app, "CASE").await, (9, 0, 9));
        let events = app.ok(Some(&site.admin_token), "{ auditEvents(filter: { action: \"checkoutLicenseOrder\" }) { nodes { outcome } } }", json!({})).await;
        assert_eq!(events["auditEvents"]["nodes"], json!([{ "outcome": "ACCEPTED" }]), "applied once");
    }
}
