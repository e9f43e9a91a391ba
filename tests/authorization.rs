//! Who sees which staff object, whichever field leads to it: the matrix of
//! every field of the schema that returns a person, user, profile or owner
//! account, reached by every kind of principal. A new field that returns one
//! of them and has no entry here fails the test.

mod common;

use std::collections::{BTreeSet, HashSet};

use async_graphql::parser::types::{BaseType, Type, TypeKind, TypeSystemDefinition};
use common::*;
use serde_json::{Value, json};

/// Types whose objects only some principals may see.
const PROTECTED: &[&str] = &["Person", "User", "Profile", "AgreementOwner"];
/// Types that only carry protected objects (connections, edges, the `Node` interface).
const CARRIERS: &[&str] = &["UserConnection", "UserEdge", "PersonConnection", "PersonEdge", "Node"];

/// Each field that returns a protected object (or a carrier of them), with a
/// query that reaches protected objects through it. Variables: `$site`,
/// `$person`, `$user`, `$profile`, `$owner`, `$responsibility`.
const READS: &[(&str, &str)] = &[
    (
        "Query.users",
        "query($site: ID) { users(siteId: $site, first: 100) { nodes { __typename id } edges { node { __typename id } } } }",
    ),
    ("UserConnection.nodes", "query($site: ID) { users(siteId: $site, first: 100) { nodes { __typename id } } }"),
    (
        "UserConnection.edges",
        "query($site: ID) { users(siteId: $site, first: 100) { edges { node { __typename id } } } }",
    ),
    ("UserEdge.node", "query($site: ID) { users(siteId: $site, first: 100) { edges { node { __typename id } } } }"),
    (
        "Query.people",
        "query($site: ID) { people(siteId: $site, first: 100, filter: {includeDeleted: true}) { nodes { __typename id } } }",
    ),
    ("PersonConnection.nodes", "query($site: ID) { people(siteId: $site, first: 100) { nodes { __typename id } } }"),
    (
        "PersonConnection.edges",
        "query($site: ID) { people(siteId: $site, first: 100) { edges { node { __typename id } } } }",
    ),
    ("PersonEdge.node", "query($site: ID) { people(siteId: $site, first: 100) { edges { node { __typename id } } } }"),
    ("Query.profiles", "query($site: ID) { profiles(siteId: $site) { __typename id } }"),
    (
        "Query.node",
        "query($person: ID!, $user: ID!, $profile: ID!, $owner: ID!) { p: node(id: $person) { __typename id } u: node(id: $user) { __typename id } f: node(id: $profile) { __typename id } o: node(id: $owner) { __typename id } }",
    ),
    ("Viewer.user", "{ viewer { user { __typename id } } }"),
    (
        "User.person",
        "query($site: ID) { viewer { user { person { __typename id } } } users(siteId: $site, first: 100) { nodes { person { __typename id } } } }",
    ),
    (
        "User.profile",
        "query($site: ID) { viewer { user { profile { __typename id } } } users(siteId: $site, first: 100) { nodes { profile { __typename id } } } }",
    ),
    (
        "Person.user",
        "query($site: ID) { viewer { user { person { user { __typename id } } } } people(siteId: $site, first: 100) { nodes { user { __typename id } } } }",
    ),
    ("Agreement.owner", "query($site: ID) { site(id: $site) { agreement { owner { __typename id } } } }"),
    (
        "Actor.person",
        "query($site: ID) { licenseOrders(siteId: $site, first: 100) { nodes { createdBy { person { __typename id } } } } auditEvents(siteId: $site, first: 100) { nodes { actor { person { __typename id } } } } }",
    ),
    (
        "AuditEvent.targetPerson",
        "query($site: ID) { auditEvents(siteId: $site, first: 100) { nodes { targetPerson { __typename id } } } }",
    ),
    (
        "Responsibility.holder",
        "query($site: ID, $responsibility: ID!) { people(siteId: $site, first: 100) { nodes { responsibilities { holder { __typename id } } } } node(id: $responsibility) { ... on Responsibility { holder { __typename id } } } }",
    ),
];

/// Fields that return a protected object only in the answer to the mutation
/// that created or changed it: the mutation is authorized for its actor, and
/// the object then passes the same check as on every read.
const MUTATION_RESULTS: &[&str] = &[
    "CreateLoginSuccess.user",
    "CreateOwnerAccountSuccess.owner",
    "CreatePersonSuccess.person",
    "CreateProfileSuccess.profile",
    "CreateSiteSuccess.administrator",
    "DeleteLoginSuccess.person",
    "DeletePersonSuccess.person",
    "RestoreLoginSuccess.user",
    "RestorePersonSuccess.person",
    "UpdateLoginSuccess.user",
    "UpdatePersonSuccess.person",
    "UpdateProfileSuccess.profile",
];

fn base_name(ty: &Type) -> &str {
    match &ty.base {
        BaseType::Named(name) => name.as_str(),
        BaseType::List(inner) => base_name(inner),
    }
}

/// Every `Type.field` of the served schema that returns a protected object or a carrier.
fn fields_reaching_protected() -> BTreeSet<String> {
    let sdl = license_gateway::graphql::sdl();
    let document = async_graphql::parser::parse_schema(&sdl).expect("the schema parses");
    let mut found = BTreeSet::new();
    for definition in &document.definitions {
        let TypeSystemDefinition::Type(ty) = definition else { continue };
        let fields = match &ty.node.kind {
            TypeKind::Object(o) => &o.fields,
            TypeKind::Interface(i) => &i.fields,
            _ => continue,
        };
        for field in fields {
            let returns = base_name(&field.node.ty.node);
            if PROTECTED.contains(&returns) || CARRIERS.contains(&returns) {
                found.insert(format!("{}.{}", ty.node.name.node, field.node.name.node));
            }
        }
    }
    found
}

#[test]
fn every_field_that_returns_a_staff_object_or_owner_account_has_a_decision() {
    let decided: BTreeSet<String> =
        READS.iter().map(|(f, _)| f.to_string()).chain(MUTATION_RESULTS.iter().map(|f| f.to_string())).collect();
    let undecided: Vec<_> = fields_reaching_protected().difference(&decided).cloned().collect();
    assert!(
        undecided.is_empty(),
        "these fields return a person, user, profile or owner account and have no entry in READS or \
         MUTATION_RESULTS of tests/authorization.rs (decide who may see what they return): {undecided:?}"
    );
    let gone: Vec<_> = decided.difference(&fields_reaching_protected()).cloned().collect();
    assert!(gone.is_empty(), "entries for fields the schema no longer has: {gone:?}");
}

/// Every protected object (`__typename`, `id`) in `value`.
fn protected_objects(value: &Value, into: &mut Vec<(String, String)>) {
    match value {
        Value::Object(map) => {
            if let (Some(Value::String(t)), Some(Value::String(id))) = (map.get("__typename"), map.get("id"))
                && PROTECTED.contains(&t.as_str())
            {
                into.push((t.clone(), id.clone()));
            }
            map.values().for_each(|v| protected_objects(v, into));
        }
        Value::Array(items) => items.iter().for_each(|v| protected_objects(v, into)),
        _ => {}
    }
}

both_backends! {
    async fn each_principal_sees_exactly_the_staff_objects_its_role_allows_through_every_field(db: Db) {
        let app = TestApp::spawn(db).await;
        let site = app.site("Matrix", &[("CASE", 5), ("DOCUMENT", 5)], true).await;
        let other = app.site("Elsewhere", &[("CASE", 5)], false).await;
        let case = site.profile(&app, "Case", &["CASE"]).await;
        let user = site.user(&app, "Uma User", &case).await;
        let user_token = app.sign_in("uma.user", PASSWORD).await;
        let person = site.person(&app, "Pia Person").await;
        let assign = "mutation($p: ID!) { assignResponsibility(personId: $p, kind: FORM, name: \"Leave form\") { ... on AssignResponsibilitySuccess { responsibility { id } } } }";
        let r = app.ok(Some(&site.admin_token), assign, json!({ "p": person })).await;
        let responsibility = r["assignResponsibility"]["responsibility"]["id"].as_str().unwrap().to_string();
        let order = "mutation($l: [TotalLineInput!]!) { createLicenseOrder(lines: $l) { __typename } }";
        app.ok(Some(&site.admin_token), order, json!({ "l": [{ "module": "CASE", "total": 6 }] })).await;
        let create = "mutation { createOwnerAccount(name: \"Ola Owner\", username: \"ola\", password: \"correct horse battery\") { ... on CreateOwnerAccountSuccess { owner { id } } } }";
        let owner = app.ok(Some(&site.operator_token), create, json!({})).await["createOwnerAccount"]["owner"]["id"]
            .as_str().unwrap().to_string();
        let set = "mutation($s: ID!, $o: ID) { updateAgreement(siteId: $s, ownerId: $o) { __typename } }";
        app.ok(Some(&site.operator_token), set, json!({ "s": site.id, "o": owner })).await;
        let owner_token = app.sign_in("ola", PASSWORD).await;
        let mine = app.ok(Some(&user_token), "{ viewer { user { id person { id } profile { id } } } }", json!({})).await;
        let (user_person, user_profile) = (
            mine["viewer"]["user"]["person"]["id"].as_str().unwrap().to_string(),
            mine["viewer"]["user"]["profile"]["id"].as_str().unwrap().to_string(),
        );
        assert_eq!(user_profile, case);
        let variables = json!({ "site": site.id, "person": person, "user": user, "profile": case, "owner": owner,
                                "responsibility": responsibility });

        let everything = |_: &(String, String)| true;
        let own_records = |o: &(String, String)| {
            [("Person", &user_person), ("User", &user), ("Profile", &user_profile)].iter().any(|(t, id)| o.0 == *t && o.1 == **id)
        };
        let own_account = |o: &(String, String)| o.0 == "AgreementOwner" && o.1 == owner;
        let this_site = [&user, &person, &case, &user_person, &site.admin_login, &site.admin_person, &site.parking_profile, &owner];
        let not_this_site = |o: &(String, String)| !this_site.contains(&&o.1);
        type Sees<'a> = &'a dyn Fn(&(String, String)) -> bool;
        // (who, token, may see, must reach something through every field)
        let principals: [(&str, &str, Sees, bool); 5] = [
            ("operator", &site.operator_token, &everything, true),
            ("administrator", &site.admin_token, &|o| o.0 != "AgreementOwner" || o.1 == owner, true),
            ("site user", &user_token, &own_records, false),
            ("agreement owner", &owner_token, &own_account, false),
            ("another site's administrator", &other.admin_token, &not_this_site, false),
        ];
        for (who, token, may_see, reaches) in principals {
            let mut reached_by_field = HashSet::new();
            for (field, query) in READS {
                let body = app.gql(Some(token), query, variables.clone()).await;
                let mut seen = Vec::new();
                protected_objects(&body["data"], &mut seen);
                for object in &seen {
                    assert!(may_see(object), "{who} saw {object:?} through {field}: {body}");
                }
                if !seen.is_empty() {
                    reached_by_field.insert(*field);
                }
                // An operator has no user of its own to reach through `viewer`.
                if reaches && !(who == "operator" && *field == "Viewer.user") {
                    assert!(!seen.is_empty(), "{who} reached nothing through {field} (the query proves nothing): {body}");
                }
            }
            match who {
                // Through their own user a site user sees their person and profile, and the owner its own account.
                "site user" => {
                    for f in ["Viewer.user", "User.person", "User.profile", "Person.user"] {
                        assert!(reached_by_field.contains(f), "the site user did not see their own records through {f}");
                    }
                }
                "agreement owner" => {
                    let own = app.ok(Some(token), "query($site: ID) { site(id: $site) { agreement { owner { id } } } }", json!({ "site": site.id })).await;
                    assert_eq!(own["site"]["agreement"]["owner"]["id"], owner.as_str());
                }
                _ => {}
            }
        }
        // The owner still sees who ordered, by name, without reaching the person.
        let orders = app.ok(Some(&owner_token), "{ licenseOrders { nodes { createdBy { name person { id } } } } }", json!({})).await;
        assert_eq!(orders["licenseOrders"]["nodes"][0]["createdBy"], json!({ "name": "Matrix Admin", "person": null }));
        // A site user reads the site and its agreement, but not who owns it.
        let agreement = app.ok(Some(&user_token), "{ site { agreement { name owner { username } } } }", json!({})).await;
        assert_eq!(agreement["site"]["agreement"], json!({ "name": "Matrix agreement", "owner": null }));
    }
}
