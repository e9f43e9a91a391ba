//! The rules R1–R9 and R13 of docs/domain.md, and the decisions taken where
//! the vendor's article is silent, each built through the GraphQL API over
//! real HTTP and checked on the numbers. Every test runs on SQLite and on Postgres.

mod common;

use common::*;
use serde_json::{Value, json};

const CHANGE_PROFILE: &str = "mutation($id: ID!, $p: ID!) { changeLoginProfile(id: $id, profileId: $p) { __typename
    ... on UpdateLoginSuccess { user { licensedModules { code } } licensePools { module { code } used } }
    ... on LicenseLimitExceeded { code message remedy shortages { module { code } needed available shortfall } } } }";

both_backends! {
    async fn r1_a_person_is_not_a_user_until_they_get_a_login(db: Db) {
        let app = TestApp::spawn(db).await;
        let site = app.site("R1", &[("CASE", 5)], false).await;
        let case = site.profile(&app, "Case", &["CASE"]).await;
        let person = site.person(&app, "Pia Person").await;
        let q = "query($f: UsersFilter) { users(filter: $f) { edges { node { username person { name } } } } }";
        let users = app.ok(Some(&site.admin_token), q, json!({ "f": { "nameContains": "pia" } })).await;
        assert_eq!(users["users"]["edges"].as_array().unwrap().len(), 0, "a person without login is no user");
        let r = site.try_login(&app, &person, "pia", &case, None).await;
        assert_eq!(r["__typename"], "CreateLoginSuccess");
        let users = app.ok(Some(&site.admin_token), q, json!({ "f": { "nameContains": "pia" } })).await;
        assert_eq!(users["users"]["edges"][0]["node"]["person"]["name"], "Pia Person");
        // One login per person.
        let again = site.try_login(&app, &person, "pia2", &case, None).await;
        assert_eq!(again["__typename"], "PersonAlreadyHasLogin");
        assert_eq!(again["code"], "PERSON_ALREADY_HAS_LOGIN");
        assert_eq!(site.pool(&app, "CASE").await, (5, 1, 4));
    }
}

both_backends! {
    async fn r2_a_user_occupies_one_license_per_module_of_their_profile(db: Db) {
        let app = TestApp::spawn(db).await;
        let site = app.site("R2", &[("CASE", 5), ("DOCUMENT", 5)], false).await;
        let both = site.profile(&app, "Both", &["CASE", "DOCUMENT"]).await;
        let user = site.user(&app, "Bo Both", &both).await;
        assert_eq!(site.pool(&app, "CASE").await, (5, 1, 4));
        assert_eq!(site.pool(&app, "DOCUMENT").await, (5, 1, 4));
        let data = app.ok(Some(&site.admin_token), "query($id: ID!) { node(id: $id) { ... on User { licensedModules { code } } } }", json!({ "id": user })).await;
        assert_eq!(data["node"]["licensedModules"], json!([{ "code": "CASE" }, { "code": "DOCUMENT" }]));
        assert_counters_match(&app.store).await;
    }
}

both_backends! {
    async fn r3_pools_are_separate_with_their_own_totals(db: Db) {
        let app = TestApp::spawn(db).await;
        let site = app.site("R3", &[("CASE", 3), ("DOCUMENT", 1)], false).await;
        let case = site.profile(&app, "Case", &["CASE"]).await;
        let doc = site.profile(&app, "Doc", &["DOCUMENT"]).await;
        site.user(&app, "Dora Doc", &doc).await;
        let p = site.person(&app, "Dan Doc").await;
        let refused = site.try_login(&app, &p, "dan", &doc, None).await;
        assert_eq!(refused["__typename"], "LicenseLimitExceeded");
        // The full Document pool does not stop Case users.
        site.user(&app, "Cai Case", &case).await;
        assert_eq!(site.pool(&app, "CASE").await, (3, 1, 2));
        assert_eq!(site.pool(&app, "DOCUMENT").await, (1, 1, 0));
    }
}

both_backends! {
    async fn r4_a_login_that_does_not_fit_is_refused_whole_with_the_numbers(db: Db) {
        let app = TestApp::spawn(db).await;
        let site = app.site("R4 login", &[("CASE", 2), ("DOCUMENT", 1)], false).await;
        let doc = site.profile(&app, "Doc", &["DOCUMENT"]).await;
        let both = site.profile(&app, "Both", &["CASE", "DOCUMENT"]).await;
        site.user(&app, "Dora Doc", &doc).await;
        let p = site.person(&app, "Ben Both").await;
        let r = site.try_login(&app, &p, "ben", &both, None).await;
        assert_eq!(r["__typename"], "LicenseLimitExceeded");
        assert_eq!(r["code"], "LICENSE_LIMIT_EXCEEDED");
        assert_eq!(r["remedy"], "CHANGE_REQUEST", "no self-service: a change request");
        assert_eq!(r["shortages"], json!([{ "module": { "code": "DOCUMENT" }, "needed": 1, "available": 0, "shortfall": 1 }]));
        let message = r["message"].as_str().unwrap();
        assert!(message.contains("1 Document license missing"), "{message}");
        // Nothing was written: Case is untouched and the username is still free.
        assert_eq!(site.pool(&app, "CASE").await, (2, 0, 2));
        let case = site.profile(&app, "Case", &["CASE"]).await;
        let ok = site.try_login(&app, &p, "ben", &case, None).await;
        assert_eq!(ok["__typename"], "CreateLoginSuccess", "{ok}");
        assert_eq!(site.pool(&app, "CASE").await, (2, 1, 1));
        assert_counters_match(&app.store).await;
    }
}

both_backends! {
    async fn r4_moving_to_a_profile_with_more_modules_needs_the_gained_licenses(db: Db) {
        let app = TestApp::spawn(db).await;
        let site = app.site("R4 move", &[("CASE", 1), ("DOCUMENT", 1)], true).await;
        let case = site.profile(&app, "Case", &["CASE"]).await;
        let doc = site.profile(&app, "Doc", &["DOCUMENT"]).await;
        let both = site.profile(&app, "Both", &["CASE", "DOCUMENT"]).await;
        let cal = site.user(&app, "Cal Case", &case).await;
        let dee = site.user(&app, "Dee Doc", &doc).await;
        // Cal keeps his Case license and needs one Document license: none free.
        let r = app.ok(Some(&site.admin_token), CHANGE_PROFILE, json!({ "id": cal, "p": both })).await["changeLoginProfile"].clone();
        assert_eq!(r["__typename"], "LicenseLimitExceeded");
        assert_eq!(r["remedy"], "LICENSE_ORDER", "self-service: a license order");
        assert_eq!(r["shortages"], json!([{ "module": { "code": "DOCUMENT" }, "needed": 1, "available": 0, "shortfall": 1 }]));
        // Dee moves to Case? Case is full too. Dee parks first, then Cal fits.
        let parked = app.ok(Some(&site.admin_token), CHANGE_PROFILE, json!({ "id": dee, "p": site.parking_profile })).await;
        assert_eq!(parked["changeLoginProfile"]["__typename"], "UpdateLoginSuccess");
        let r = app.ok(Some(&site.admin_token), CHANGE_PROFILE, json!({ "id": cal, "p": both })).await["changeLoginProfile"].clone();
        assert_eq!(r["__typename"], "UpdateLoginSuccess", "{r}");
        assert_eq!(r["user"]["licensedModules"], json!([{ "code": "CASE" }, { "code": "DOCUMENT" }]));
        assert_eq!(site.pool(&app, "CASE").await, (1, 1, 0));
        assert_eq!(site.pool(&app, "DOCUMENT").await, (1, 1, 0));
        assert_counters_match(&app.store).await;
    }
}

both_backends! {
    async fn r4_adding_a_module_to_a_profile_needs_a_license_per_user_all_or_nothing(db: Db) {
        let app = TestApp::spawn(db).await;
        let site = app.site("R4 profile", &[("CASE", 5), ("DOCUMENT", 2)], false).await;
        let case = site.profile(&app, "Case", &["CASE"]).await;
        for name in ["Ann A", "Bea B", "Cid C"] {
            site.user(&app, name, &case).await;
        }
        let q = "mutation($id: ID!, $m: [String!]) { updateProfile(id: $id, input: { modules: $m }) { __typename
            ... on UpdateProfileSuccess { profile { modules { code } userCount } }
            ... on LicenseLimitExceeded { shortages { module { code } needed available shortfall } } } }";
        let r = app.ok(Some(&site.admin_token), q, json!({ "id": case, "m": ["CASE", "DOCUMENT"] })).await["updateProfile"].clone();
        assert_eq!(r["__typename"], "LicenseLimitExceeded");
        assert_eq!(r["shortages"], json!([{ "module": { "code": "DOCUMENT" }, "needed": 3, "available": 2, "shortfall": 1 }]));
        assert_eq!(site.pool(&app, "DOCUMENT").await, (2, 0, 2), "all or nothing: no user got Document");
        let set = "mutation($s: ID!) { setPoolTotal(siteId: $s, module: \"DOCUMENT\", total: 3) { __typename } }";
        app.ok(Some(&site.operator_token), set, json!({ "s": site.id })).await;
        let r = app.ok(Some(&site.admin_token), q, json!({ "id": case, "m": ["CASE", "DOCUMENT"] })).await["updateProfile"].clone();
        assert_eq!(r["__typename"], "UpdateProfileSuccess", "{r}");
        assert_eq!(r["profile"]["userCount"], 3);
        assert_eq!(site.pool(&app, "DOCUMENT").await, (3, 3, 0));
        // Removing the module frees the licenses again (R6).
        let r = app.ok(Some(&site.admin_token), q, json!({ "id": case, "m": ["CASE"] })).await["updateProfile"].clone();
        assert_eq!(r["__typename"], "UpdateProfileSuccess");
        assert_eq!(site.pool(&app, "DOCUMENT").await, (3, 0, 3));
        assert_counters_match(&app.store).await;
    }
}

both_backends! {
    async fn r5_a_total_below_usage_is_refused_with_users_to_remove(db: Db) {
        let app = TestApp::spawn(db).await;
        let site = app.site("R5", &[("CASE", 3)], false).await;
        let case = site.profile(&app, "Case", &["CASE"]).await;
        site.user(&app, "Ann A", &case).await;
        site.user(&app, "Bea B", &case).await;
        let q = "mutation($s: ID!, $t: Int!) { setPoolTotal(siteId: $s, module: \"CASE\", total: $t) { __typename
            ... on SetPoolTotalSuccess { pool { total used available } }
            ... on PoolBelowUsage { code message module { code } requestedTotal used usersToRemove } } }";
        let r = app.ok(Some(&site.operator_token), q, json!({ "s": site.id, "t": 1 })).await["setPoolTotal"].clone();
        assert_eq!(r["__typename"], "PoolBelowUsage");
        assert_eq!((r["requestedTotal"].as_i64(), r["used"].as_i64(), r["usersToRemove"].as_i64()), (Some(1), Some(2), Some(1)));
        assert_eq!(site.pool(&app, "CASE").await, (3, 2, 1), "total unchanged");
        let r = app.ok(Some(&site.operator_token), q, json!({ "s": site.id, "t": 2 })).await["setPoolTotal"].clone();
        assert_eq!(r["pool"], json!({ "total": 2, "used": 2, "available": 0 }));
        // Totals are whole numbers >= 0.
        let bad = app.gql(Some(&site.operator_token), q, json!({ "s": site.id, "t": -1 })).await;
        assert_eq!(error_code(&bad), "BAD_USER_INPUT");
        // Only operators set totals directly.
        let forbidden = app.gql(Some(&site.admin_token), q, json!({ "s": site.id, "t": 9 })).await;
        assert_eq!(error_code(&forbidden), "FORBIDDEN");
        assert_eq!(forbidden["errors"][0]["extensions"]["rule"], "OPERATOR_ONLY");
        assert_eq!(site.pool(&app, "CASE").await, (2, 2, 0));
    }
}

both_backends! {
    async fn r6_removing_users_frees_licenses_and_never_changes_totals(db: Db) {
        let app = TestApp::spawn(db).await;
        let site = app.site("R6", &[("CASE", 1)], false).await;
        let case = site.profile(&app, "Case", &["CASE"]).await;
        let ann = site.user(&app, "Ann A", &case).await;
        let del_login = "mutation($id: ID!) { deleteLogin(id: $id) { __typename ... on DeleteLoginSuccess { person { name deleted user { id } } licensePools { total used } } } }";
        let r = app.ok(Some(&site.admin_token), del_login, json!({ "id": ann })).await["deleteLogin"].clone();
        assert_eq!(r["person"], json!({ "name": "Ann A", "deleted": false, "user": null }), "the person stays as staff");
        assert_eq!(r["licensePools"][0], json!({ "total": 1, "used": 0 }));
        // The freed seat goes to someone else.
        let bea = site.user(&app, "Bea B", &case).await;
        assert_eq!(site.pool(&app, "CASE").await, (1, 1, 0));
        let bea_person = app.ok(Some(&site.admin_token), "query($id: ID!) { node(id: $id) { ... on User { person { id } } } }", json!({ "id": bea })).await;
        let del_person = "mutation($id: ID!) { deletePerson(id: $id) { __typename ... on DeletePersonSuccess { person { deleted } licensePools { total used } } } }";
        let r = app.ok(Some(&site.admin_token), del_person, json!({ "id": bea_person["node"]["person"]["id"] })).await["deletePerson"].clone();
        assert_eq!(r["licensePools"][0], json!({ "total": 1, "used": 0 }));
        assert_eq!(site.pool(&app, "CASE").await, (1, 0, 1));
        assert_counters_match(&app.store).await;
    }
}

both_backends! {
    async fn r7_a_deleted_person_remains_as_a_named_tombstone(db: Db) {
        let app = TestApp::spawn(db).await;
        let site = app.site("R7", &[("CASE", 1)], false).await;
        let person = site.person(&app, "Tove Tomb").await;
        app.ok(Some(&site.admin_token), "mutation($id: ID!) { deletePerson(id: $id) { __typename } }", json!({ "id": person })).await;
        let q = "query($d: Boolean) { people(filter: { includeDeleted: $d }) { edges { node { name deleted deletedAt } } } }";
        let live = app.ok(Some(&site.admin_token), q, json!({ "d": false })).await;
        assert!(!live.to_string().contains("Tove"), "deleted people leave the staff list");
        let all = app.ok(Some(&site.admin_token), q, json!({ "d": true })).await;
        let tove = all["people"]["edges"].as_array().unwrap().iter().find(|e| e["node"]["name"] == "Tove Tomb").expect("tombstone listed");
        assert_eq!(tove["node"]["deleted"], true);
        assert!(tove["node"]["deletedAt"].is_string());
        let node = app.ok(Some(&site.admin_token), "query($id: ID!) { node(id: $id) { ... on Person { name deleted } } }", json!({ "id": person })).await;
        assert_eq!(node["node"], json!({ "name": "Tove Tomb", "deleted": true }));
    }
}

both_backends! {
    async fn r8_a_profile_without_modules_parks_a_user_without_a_license(db: Db) {
        let app = TestApp::spawn(db).await;
        let site = app.site("R8", &[("CASE", 1)], false).await;
        let case = site.profile(&app, "Case", &["CASE"]).await;
        let user = site.user(&app, "Pat Parked", &case).await;
        assert_eq!(site.pool(&app, "CASE").await, (1, 1, 0));
        let r = app.ok(Some(&site.admin_token), CHANGE_PROFILE, json!({ "id": user, "p": site.parking_profile })).await;
        assert_eq!(r["changeLoginProfile"]["user"]["licensedModules"], json!([]));
        assert_eq!(site.pool(&app, "CASE").await, (1, 0, 1));
        // A parked user can still sign in.
        let token = app.sign_in("pat.parked", PASSWORD).await;
        let me = app.ok(Some(&token), "{ viewer { kind user { active profile { modules { code } } } } }", json!({})).await;
        assert_eq!(me["viewer"]["kind"], "SITE_USER");
        assert_eq!(me["viewer"]["user"]["profile"]["modules"], json!([]));
    }
}

both_backends! {
    async fn r9_an_expired_login_cannot_sign_in_its_sessions_stop_and_it_still_occupies(db: Db) {
        let app = TestApp::spawn(db).await;
        let site = app.site("R9", &[("CASE", 2)], false).await;
        let case = site.profile(&app, "Case", &["CASE"]).await;
        let person = site.person(&app, "Eli Expiring").await;
        let today = license_gateway::domain::Date::today();
        let r = site.try_login(&app, &person, "eli", &case, Some(&today.format())).await;
        assert_eq!(r["__typename"], "CreateLoginSuccess", "validUntil is inclusive: today still works");
        let user = r["user"]["id"].as_str().unwrap().to_string();
        let token = app.sign_in("eli", PASSWORD).await;
        app.ok(Some(&token), "{ viewer { username } }", json!({})).await;
        let expire = "mutation($id: ID!, $d: Date) { updateLogin(id: $id, input: { validUntil: $d }) { __typename } }";
        app.ok(Some(&site.admin_token), expire, json!({ "id": user, "d": today.plus_days(-1).format() })).await;
        let stopped = app.gql(Some(&token), "{ viewer { username } }", json!({})).await;
        assert_eq!(error_code(&stopped), "UNAUTHENTICATED", "existing sessions stop working");
        let refused = app
            .ok(None, "mutation { signIn(username: \"eli\", password: \"correct horse battery\") { __typename ... on SignInRefused { code } } }", json!({}))
            .await;
        assert_eq!(refused["signIn"]["code"], "LOGIN_EXPIRED");
        // Decision: an expired login still occupies its license.
        assert_eq!(site.pool(&app, "CASE").await, (2, 1, 1));
        let expired = app.ok(Some(&site.admin_token), "{ users(filter: { active: false }) { edges { node { username active } } } }", json!({})).await;
        assert_eq!(expired["users"]["edges"], json!([{ "node": { "username": "eli", "active": false } }]));
        // Clearing the date revives the login.
        app.ok(Some(&site.admin_token), expire, json!({ "id": user, "d": null })).await;
        app.sign_in("eli", PASSWORD).await;
    }
}

both_backends! {
    async fn r13_objects_of_another_site_answer_as_not_found(db: Db) {
        let app = TestApp::spawn(db).await;
        let a = app.site("Tenant A", &[("CASE", 5)], false).await;
        let b = app.site("Tenant B", &[("CASE", 5)], false).await;
        let b_case = b.profile(&app, "Case", &["CASE"]).await;
        let b_user = b.user(&app, "Bob B", &b_case).await;
        let b_person = b.person(&app, "Bill B").await;
        let a_case = a.profile(&app, "Case", &["CASE"]).await;
        let a_user = a.user(&app, "Ann A", &a_case).await;
        for (q, vars) in [
            ("query($id: ID!) { node(id: $id) { id } }", json!({ "id": b_user })),
            ("query($id: ID!) { node(id: $id) { id } }", json!({ "id": b_person })),
            ("query($id: ID!) { node(id: $id) { id } }", json!({ "id": b.id })),
            ("query($s: ID) { users(siteId: $s) { edges { cursor } } }", json!({ "s": b.id })),
            ("query($s: ID) { licensePools(siteId: $s) { total } }", json!({ "s": b.id })),
            ("mutation($id: ID!) { updatePerson(id: $id, input: { name: \"X\" }) { __typename } }", json!({ "id": b_person })),
            ("mutation($id: ID!) { deleteLogin(id: $id) { __typename } }", json!({ "id": b_user })),
            ("mutation($id: ID!, $p: ID!) { changeLoginProfile(id: $id, profileId: $p) { __typename } }", json!({ "id": a_user, "p": b_case })),
            ("mutation($id: ID!) { deleteProfile(id: $id) { __typename } }", json!({ "id": b_case })),
        ] {
            let body = app.gql(Some(&a.admin_token), q, vars).await;
            assert_eq!(error_code(&body), "NOT_FOUND", "{q}: {body}");
        }
        // Nothing of B changed.
        assert_eq!(b.pool(&app, "CASE").await, (5, 1, 4));
        assert_eq!(a.pool(&app, "CASE").await, (5, 1, 4));
        let names = app.ok(Some(&b.admin_token), "query($id: ID!) { node(id: $id) { ... on Person { name } } }", json!({ "id": b_person })).await;
        assert_eq!(names["node"]["name"], "Bill B");
    }
}

both_backends! {
    async fn an_administrator_on_a_profile_without_modules_occupies_no_license(db: Db) {
        let app = TestApp::spawn(db).await;
        let site = app.site("Admin", &[("CASE", 0), ("DOCUMENT", 0)], false).await;
        let me = app.ok(Some(&site.admin_token), "{ viewer { kind user { isAdministrator licensedModules { code } } } }", json!({})).await;
        assert_eq!(me["viewer"]["kind"], "SITE_ADMINISTRATOR");
        assert_eq!(me["viewer"]["user"]["licensedModules"], json!([]));
        assert_eq!(site.pools(&app).await, vec![("CASE".into(), 0, 0, 0), ("DOCUMENT".into(), 0, 0, 0)]);
        // ...and administers the site with zero licenses.
        site.person(&app, "Staff Only").await;
    }
}

both_backends! {
    async fn a_profile_in_use_cannot_be_deleted(db: Db) {
        let app = TestApp::spawn(db).await;
        let site = app.site("Profiles", &[("CASE", 2)], false).await;
        let case = site.profile(&app, "Case", &["CASE"]).await;
        let user = site.user(&app, "Uma User", &case).await;
        let del = "mutation($id: ID!) { deleteProfile(id: $id) { __typename ... on ProfileInUse { code message userCount } ... on DeleteProfileSuccess { deletedProfileId } } }";
        let r = app.ok(Some(&site.admin_token), del, json!({ "id": case })).await["deleteProfile"].clone();
        assert_eq!(r["__typename"], "ProfileInUse");
        assert_eq!(r["userCount"], 1);
        assert!(r["message"].as_str().unwrap().contains("move them"), "{r}");
        app.ok(Some(&site.admin_token), CHANGE_PROFILE, json!({ "id": user, "p": site.parking_profile })).await;
        let r = app.ok(Some(&site.admin_token), del, json!({ "id": case })).await["deleteProfile"].clone();
        assert_eq!(r["deletedProfileId"], case.as_str());
        let names = app.ok(Some(&site.admin_token), "{ profiles { name } }", json!({})).await;
        assert_eq!(names["profiles"], json!([{ "name": "No modules" }]));
        // The deleted profile's user-count rows, if no fold took them yet, go with the next
        // fold: nothing drifts and nothing stays behind.
        app.store.fold_profile_users().await.expect("fold");
        assert_eq!(app.store.fold_profile_users().await.expect("fold"), 0);
        assert_counters_match(&app.store).await;
    }
}

both_backends! {
    /// A deleted profile's or responsibility's global id is never given to a
    /// new one: a client that cached it, and the audit trail that names it,
    /// would otherwise take one for the other.
    async fn a_deleted_profiles_or_responsibilitys_id_is_never_given_again(db: Db) {
        let app = TestApp::spawn(db).await;
        let site = app.site("Ids", &[("CASE", 2)], false).await;
        let token = Some(site.admin_token.as_str());
        let old = site.profile(&app, "Short-lived", &["CASE"]).await;
        let del = "mutation($id: ID!) { deleteProfile(id: $id) { __typename } }";
        assert_eq!(app.ok(token, del, json!({ "id": old })).await["deleteProfile"]["__typename"], "DeleteProfileSuccess");
        let new = site.profile(&app, "Next", &["CASE"]).await;
        assert_ne!(new, old);
        let node = "query($id: ID!) { node(id: $id) { id } }";
        assert_eq!(error_code(&app.gql(token, node, json!({ "id": old })).await), "NOT_FOUND");

        let person = site.person(&app, "Rita Responsible").await;
        let assign = "mutation($p: ID!, $n: String!) { assignResponsibility(personId: $p, kind: FORM, name: $n) {
            ... on AssignResponsibilitySuccess { responsibility { id } } } }";
        let id = |r: Value| r["assignResponsibility"]["responsibility"]["id"].as_str().unwrap().to_string();
        let first = id(app.ok(token, assign, json!({ "p": person, "n": "First" })).await);
        let remove = "mutation($id: ID!) { removeResponsibility(id: $id) }";
        assert_eq!(app.ok(token, remove, json!({ "id": first })).await["removeResponsibility"], true);
        let second = id(app.ok(token, assign, json!({ "p": person, "n": "Second" })).await);
        assert_ne!(second, first);
    }
}

both_backends! {
    async fn usernames_are_unique_in_the_installation_without_case(db: Db) {
        let app = TestApp::spawn(db).await;
        let a = app.site("Names A", &[("CASE", 5)], false).await;
        let b = app.site("Names B", &[("CASE", 5)], false).await;
        let pa = a.person(&app, "Ada").await;
        let pb = b.person(&app, "Ada Too").await;
        assert_eq!(a.try_login(&app, &pa, "ada.lovelace", &a.parking_profile, None).await["__typename"], "CreateLoginSuccess");
        let taken = b.try_login(&app, &pb, "ADA.Lovelace", &b.parking_profile, None).await;
        assert_eq!(taken["__typename"], "UsernameTaken");
        assert_eq!(taken["code"], "USERNAME_TAKEN");
        let op = b.try_login(&app, &pb, "Operator", &b.parking_profile, None).await;
        assert_eq!(op["__typename"], "UsernameTaken", "operator usernames share the namespace");
        // Sign-in needs only username (any case) and password.
        app.sign_in("ADA.LOVELACE", PASSWORD).await;
    }
}

both_backends! {
    async fn a_site_user_reads_only_their_own_records(db: Db) {
        let app = TestApp::spawn(db).await;
        let site = app.site("Reader", &[("CASE", 5)], false).await;
        let case = site.profile(&app, "Case", &["CASE"]).await;
        let me = site.user(&app, "Rita Reader", &case).await;
        let other = site.user(&app, "Otto Other", &case).await;
        let token = app.sign_in("rita.reader", PASSWORD).await;
        let own = app.ok(Some(&token), "query($id: ID!) { node(id: $id) { ... on User { username profile { name modules { code } } } } licensePools { used } site { name } }", json!({ "id": me })).await;
        assert_eq!(own["node"]["profile"]["modules"], json!([{ "code": "CASE" }]));
        assert_eq!(own["licensePools"], json!([{ "used": 2 }, { "used": 0 }]), "every module has a pool (Document: 0)");
        for (q, vars) in [
            ("query($id: ID!) { node(id: $id) { id } }", json!({ "id": other })),
            ("{ users { edges { cursor } } }", json!({})),
            ("{ people { edges { cursor } } }", json!({})),
            ("{ profiles { name } }", json!({})),
            ("mutation { createPerson(input: { name: \"Sneaky\" }) { __typename } }", json!({})),
        ] {
            let body = app.gql(Some(&token), q, vars).await;
            assert_eq!(error_code(&body), "FORBIDDEN", "{q}: {body}");
            assert!(body["errors"][0]["extensions"]["rule"].is_string());
        }
        let anonymous = app.gql(None, "{ viewer { username } }", json!({})).await;
        assert_eq!(error_code(&anonymous), "UNAUTHENTICATED");
        let forged = app.gql(Some("not-a-token"), "{ viewer { username } }", json!({})).await;
        assert_eq!(error_code(&forged), "UNAUTHENTICATED");
        // Signing out ends the session.
        assert_eq!(app.ok(Some(&token), "mutation { signOut }", json!({})).await["signOut"], true);
        assert_eq!(error_code(&app.gql(Some(&token), "{ viewer { username } }", json!({})).await), "UNAUTHENTICATED");
    }
}

both_backends! {
    async fn bad_input_gets_a_coded_answer_and_changes_nothing(db: Db) {
        let app = TestApp::spawn(db).await;
        let site = app.site("Bad input", &[("CASE", 5)], false).await;
        let case = site.profile(&app, "Case", &["CASE"]).await;
        let person = site.person(&app, "Val Valid").await;
        let bad_username = app
            .gql(
                Some(&site.admin_token),
                "mutation($i: CreateLoginInput!) { createLogin(input: $i) { __typename } }",
                json!({ "i": { "personId": person, "username": "no spaces", "password": PASSWORD, "profileId": case } }),
            )
            .await;
        assert_eq!(error_code(&bad_username), "BAD_USER_INPUT");
        assert_eq!(bad_username["errors"][0]["extensions"]["field"], "username");
        let bad_date = site.try_login_raw(&app, &person, "val", &case, "31/12/2026").await;
        assert_eq!(error_code(&bad_date), "BAD_USER_INPUT");
        assert_eq!(site.pool(&app, "CASE").await, (5, 0, 5));
        let wrong_kind = app.gql(Some(&site.admin_token), "query($id: ID!) { node(id: $id) { id } }", json!({ "id": "garbage" })).await;
        assert_eq!(error_code(&wrong_kind), "BAD_USER_INPUT");
        let wrong_type = site.try_login_raw(&app, &case, "val", &case, "2030-01-01").await;
        assert_eq!(error_code(&wrong_type), "BAD_USER_INPUT", "a profile id where a person id belongs");
        let page = app.gql(Some(&site.admin_token), "{ users(first: 1000) { edges { cursor } } }", json!({})).await;
        assert_eq!(error_code(&page), "BAD_USER_INPUT");
        let unknown_module = app.gql(Some(&site.admin_token), "mutation { createProfile(input: { name: \"X\", modules: [\"PAYROLL\"] }) { __typename } }", json!({})).await;
        assert_eq!(error_code(&unknown_module), "BAD_USER_INPUT");
        let unknown_field = app.gql(Some(&site.admin_token), "{ nope }", json!({})).await;
        assert_eq!(error_code(&unknown_field), "GRAPHQL_VALIDATION_FAILED");
        let syntax = app.gql(Some(&site.admin_token), "{ viewer { ", json!({})).await;
        assert_eq!(error_code(&syntax), "GRAPHQL_PARSE_FAILED");
        let deep = format!("{{ viewer {{ user {{ {} id {} }} }} }}", "person { user { ".repeat(8), "} } ".repeat(8));
        assert_eq!(error_code(&app.gql(Some(&site.admin_token), &deep, json!({})).await), "QUERY_TOO_DEEP");
        // Transport limits.
        let huge = format!("{{ viewer {{ username }} }} # {}", "x".repeat(300 * 1024));
        let resp = app.client.post(format!("{}/graphql", app.url)).json(&json!({ "query": huge })).send().await.unwrap();
        assert_eq!(resp.status(), 413);
        let body: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(error_code(&body), "PAYLOAD_TOO_LARGE");
        let resp = app.client.post(format!("{}/graphql", app.url)).header("content-type", "application/json").body("{not json").send().await.unwrap();
        assert_eq!(resp.status(), 400);
        let body: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(error_code(&body), "BAD_REQUEST");
        assert_eq!(site.pool(&app, "CASE").await, (5, 0, 5));
        assert_counters_match(&app.store).await;
    }
}
