//! GraphQL over HTTP, on the real server: the answer's media type and its
//! statuses as the client's `Accept` asks, queries over `GET` (never
//! mutations), Apollo's automatic persisted queries, and batches (off unless
//! configured, bounded when on).

mod common;

use common::*;
use license_gateway::domain::sha256_hex;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};

const GRAPHQL_RESPONSE: &str = "application/graphql-response+json";
const APOLLO_ACCEPT: &str = "application/graphql-response+json, application/json;q=0.9";
const BROWSER_ACCEPT: &str = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";

fn content_type(headers: &HeaderMap) -> &str {
    headers.get("content-type").map(|v| v.to_str().unwrap()).unwrap_or("")
}

/// POSTs `body` (JSON) with `accept` and the token; the status, headers and body.
async fn post(app: &TestApp, token: Option<&str>, accept: Option<&str>, body: &Value) -> (u16, HeaderMap, Value) {
    let (status, headers, response) =
        send(app.client.post(format!("{}/graphql", app.url)).json(body), token, accept).await;
    (status, headers, response.json().await.unwrap())
}

/// GETs `/graphql` with the URL parameters `params`; the status, headers and body text.
async fn get(
    app: &TestApp,
    token: Option<&str>,
    accept: Option<&str>,
    params: &[(&str, &str)],
) -> (u16, HeaderMap, String) {
    let url = reqwest::Url::parse_with_params(&format!("{}/graphql", app.url), params).unwrap();
    let (status, headers, response) = send(app.client.get(url), token, accept).await;
    (status, headers, response.text().await.unwrap())
}

/// Sends `request` with `accept` and the token; the status, headers and response.
async fn send(
    mut request: reqwest::RequestBuilder,
    token: Option<&str>,
    accept: Option<&str>,
) -> (u16, HeaderMap, reqwest::Response) {
    if let Some(accept) = accept {
        request = request.header("accept", accept);
    }
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    (response.status().as_u16(), response.headers().clone(), response)
}

fn json_of(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

fn persisted(hash: &str) -> Value {
    json!({ "persistedQuery": { "version": 1, "sha256Hash": hash } })
}

fn create_site(name: &str) -> Value {
    json!({ "query": "mutation($i: CreateSiteInput!) { createSite(input: $i) { __typename } }",
        "variables": { "i": { "name": name, "agreementName": "A", "selfService": false, "pools": [],
            "administrator": { "name": "Admin", "username": format!("{}-admin", name.to_lowercase()), "password": PASSWORD } } } })
}

async fn site_names(app: &TestApp, token: &str) -> Value {
    app.ok(Some(token), "{ sites(first: 100) { nodes { name } } }", json!({})).await["sites"]["nodes"].clone()
}

#[tokio::test]
async fn the_spec_media_type_and_its_statuses_when_the_client_asks_for_them() {
    let app = TestApp::spawn(Db::Sqlite).await;
    let valid = json!({ "query": "{ __typename }" });
    let (status, headers, body) = post(&app, None, Some(APOLLO_ACCEPT), &valid).await;
    assert_eq!((status, content_type(&headers)), (200, GRAPHQL_RESPONSE), "{body}");
    assert_eq!(body["data"]["__typename"], "Query");
    // Nothing ran: 400 in the spec's media type, with the error's code; no `data`.
    for (query, code) in [("{ __typename", "GRAPHQL_PARSE_FAILED"), ("{ nope }", "GRAPHQL_VALIDATION_FAILED")] {
        let (status, headers, body) = post(&app, None, Some(GRAPHQL_RESPONSE), &json!({ "query": query })).await;
        assert_eq!((status, content_type(&headers)), (400, GRAPHQL_RESPONSE), "{query}: {body}");
        assert_eq!(error_code(&body), code, "{body}");
        assert!(body.get("data").is_none(), "{body}");
    }
    // Execution started and a field failed: 200, the error in the body.
    let (status, headers, body) =
        post(&app, None, Some(GRAPHQL_RESPONSE), &json!({ "query": "{ viewer { username } }" })).await;
    assert_eq!((status, content_type(&headers)), (200, GRAPHQL_RESPONSE), "{body}");
    assert_eq!(error_code(&body), "UNAUTHENTICATED", "{body}");
    // A body that is not JSON: 400, still in the media type asked for.
    let response = app
        .client
        .post(format!("{}/graphql", app.url))
        .header("content-type", "application/json")
        .header("accept", GRAPHQL_RESPONSE)
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!((response.status().as_u16(), content_type(response.headers())), (400, GRAPHQL_RESPONSE));

    // The legacy type for clients that ask for JSON, anything, or nothing: as before.
    for accept in [Some("application/json"), Some("*/*"), None] {
        let (status, headers, body) = post(&app, None, accept, &valid).await;
        assert_eq!((status, content_type(&headers)), (200, "application/json"), "{accept:?}: {body}");
        let (status, headers, body) = post(&app, None, accept, &json!({ "query": "{ __typename" })).await;
        assert_eq!((status, content_type(&headers)), (400, "application/json"), "{accept:?}: {body}");
        assert_eq!(error_code(&body), "GRAPHQL_PARSE_FAILED");
    }
    // Neither: 406 before anything runs.
    for accept in ["text/html", "application/xml", "application/json;q=0"] {
        let (status, headers, body) = post(&app, None, Some(accept), &valid).await;
        assert_eq!((status, content_type(&headers)), (406, "application/json"), "{accept}: {body}");
        assert_eq!(error_code(&body), "NOT_ACCEPTABLE");
    }
}

both_backends! {
    async fn queries_run_over_get_and_mutations_are_refused_with_405(db: Db) {
        let app = TestApp::spawn(db).await;
        let op = app.operator().await;
        let (status, _, body) = post(&app, Some(&op), None, &create_site("Gettable")).await;
        assert_eq!(status, 200, "{body}");
        let query = "query Names($first: Int) { sites(first: $first) { nodes { name } } }";
        for accept in [Some("application/json"), Some(APOLLO_ACCEPT), Some("*/*"), None] {
            let params = [("query", query), ("operationName", "Names"), ("variables", r#"{"first": 5}"#)];
            let (status, headers, text) = get(&app, Some(&op), accept, &params).await;
            let expected = if accept == Some(APOLLO_ACCEPT) { GRAPHQL_RESPONSE } else { "application/json" };
            assert_eq!((status, content_type(&headers)), (200, expected), "{accept:?}: {text}");
            assert_eq!(json_of(&text)["data"]["sites"]["nodes"], json!([{ "name": "Gettable" }]), "{text}");
        }
        // An operation name that is not in the document: the spec's request error.
        let (status, _, text) = get(&app, Some(&op), Some(GRAPHQL_RESPONSE), &[("query", query), ("operationName", "Other")]).await;
        assert_eq!(status, 400, "{text}");
        // Variables that are not JSON: 400 with a code.
        let (status, _, text) = get(&app, Some(&op), None, &[("query", query), ("variables", "{first")]).await;
        assert_eq!((status, error_code(&json_of(&text))), (400, "BAD_REQUEST"), "{text}");

        // A mutation over GET runs nothing: 405, Allow: POST, in the project's error shape.
        let mutation = create_site("ViaGet");
        let variables = mutation["variables"].to_string();
        let params = [("query", mutation["query"].as_str().unwrap()), ("variables", variables.as_str())];
        for accept in [None, Some(APOLLO_ACCEPT)] {
            let (status, headers, text) = get(&app, Some(&op), accept, &params).await;
            assert_eq!(status, 405, "{text}");
            assert_eq!(headers.get("allow").unwrap(), "POST");
            let body = json_of(&text);
            assert_eq!(error_code(&body), "METHOD_NOT_ALLOWED", "{body}");
            assert!(body["errors"][0]["message"].as_str().unwrap().contains("POST"), "{body}");
        }
        assert_eq!(site_names(&app, &op).await, json!([{ "name": "Gettable" }]), "a GET changed something");
    }
}

#[tokio::test]
async fn the_playground_goes_to_browsers_and_json_to_api_clients_on_the_same_url() {
    let app = TestApp::spawn(Db::Sqlite).await;
    let query = [("query", "{ __typename }")];
    let (status, headers, page) = get(&app, None, Some(BROWSER_ACCEPT), &[]).await;
    assert_eq!(status, 200);
    assert!(content_type(&headers).starts_with("text/html"), "{headers:?}");
    assert!(page.contains("<html") || page.contains("<!DOCTYPE"), "{page}");
    assert!(headers.contains_key("content-security-policy"));
    // A browser is shown the page even when the URL carries a query.
    let (_, headers, _) = get(&app, None, Some(BROWSER_ACCEPT), &query).await;
    assert!(content_type(&headers).starts_with("text/html"), "{headers:?}");
    // An API client asking for JSON never gets HTML.
    for accept in ["application/json", GRAPHQL_RESPONSE, APOLLO_ACCEPT] {
        let (status, headers, text) = get(&app, None, Some(accept), &query).await;
        assert_eq!(status, 200, "{accept}");
        assert!(!content_type(&headers).starts_with("text/html"), "{accept}: {headers:?}");
        assert_eq!(json_of(&text)["data"]["__typename"], "Query");
    }
    // Without the playground the page is not found, and GET queries still answer.
    let off = TestApp::spawn_flags(Db::Sqlite, &["--playground", "false"]).await;
    let (status, _, _) = get(&off, None, Some(BROWSER_ACCEPT), &[]).await;
    assert_eq!(status, 404);
    let (status, _, text) = get(&off, None, Some("application/json"), &query).await;
    assert_eq!((status, json_of(&text)["data"]["__typename"].clone()), (200, json!("Query")), "{text}");
}

both_backends! {
    async fn automatic_persisted_queries_round_trip_as_apollo_expects(db: Db) {
        let app = TestApp::spawn(db).await;
        let op = app.operator().await;
        let query = "query Sites { sites(first: 10) { nodes { name } } }";
        let hash = sha256_hex(query);
        let hash_only = json!({ "operationName": "Sites", "extensions": persisted(&hash) });
        // Unknown hash: the exact error Apollo's link falls back on.
        let (status, headers, body) = post(&app, Some(&op), None, &hash_only).await;
        assert_eq!((status, content_type(&headers)), (200, "application/json"), "{body}");
        assert_eq!(body["errors"][0]["message"], "PersistedQueryNotFound", "{body}");
        assert_eq!(error_code(&body), "PERSISTED_QUERY_NOT_FOUND");
        let (status, headers, body) = post(&app, Some(&op), Some(APOLLO_ACCEPT), &hash_only).await;
        assert_eq!((status, content_type(&headers)), (404, GRAPHQL_RESPONSE), "{body}");
        assert_eq!(body["errors"][0]["message"], "PersistedQueryNotFound", "{body}");
        // Text and hash: runs and registers.
        let full = json!({ "query": query, "operationName": "Sites", "extensions": persisted(&hash) });
        let (status, _, body) = post(&app, Some(&op), Some(APOLLO_ACCEPT), &full).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["data"]["sites"]["nodes"], json!([]), "{body}");
        let (status, _, body) = post(&app, Some(&op), None, &create_site("Persisted")).await;
        assert_eq!(status, 200, "{body}");
        // The hash alone now runs it (fresh data, not a cached answer), over POST and GET.
        let (status, _, body) = post(&app, Some(&op), Some(APOLLO_ACCEPT), &hash_only).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["data"]["sites"]["nodes"], json!([{ "name": "Persisted" }]), "{body}");
        let extensions = persisted(&hash).to_string();
        let params = [("operationName", "Sites"), ("extensions", extensions.as_str())];
        let (status, _, text) = get(&app, Some(&op), Some(APOLLO_ACCEPT), &params).await;
        assert_eq!(status, 200, "{text}");
        assert_eq!(json_of(&text)["data"]["sites"]["nodes"], json!([{ "name": "Persisted" }]), "{text}");

        // Registering over GET works as well (Apollo's useGETForHashedQueries).
        let other = "{ modules { code } }";
        let other_hash = sha256_hex(other);
        let extensions = persisted(&other_hash).to_string();
        let (status, _, text) = get(&app, Some(&op), None, &[("extensions", extensions.as_str())]).await;
        assert_eq!((status, error_code(&json_of(&text))), (200, "PERSISTED_QUERY_NOT_FOUND"), "{text}");
        let (status, _, text) = get(&app, Some(&op), None, &[("query", other), ("extensions", extensions.as_str())]).await;
        assert_eq!(status, 200, "{text}");
        let (status, _, text) = get(&app, Some(&op), None, &[("extensions", extensions.as_str())]).await;
        assert_eq!(status, 200, "{text}");
        assert!(json_of(&text)["data"]["modules"].is_array(), "{text}");

        // A persisted mutation is still a mutation: never over GET.
        let mutation = create_site("PersistedMutation");
        let mutation_hash = sha256_hex(mutation["query"].as_str().unwrap());
        let mut registering = mutation.clone();
        registering["extensions"] = persisted(&mutation_hash);
        let (status, _, body) = post(&app, Some(&op), None, &registering).await;
        assert_eq!((status, body["data"]["createSite"]["__typename"].clone()), (200, json!("CreateSiteSuccess")), "{body}");
        let (extensions, variables) = (persisted(&mutation_hash).to_string(), create_site("Again")["variables"].to_string());
        let params = [("extensions", extensions.as_str()), ("variables", variables.as_str())];
        let (status, _, text) = get(&app, Some(&op), None, &params).await;
        assert_eq!((status, error_code(&json_of(&text))), (405, "METHOD_NOT_ALLOWED"), "{text}");
        let names = site_names(&app, &op).await;
        assert_eq!(names, json!([{ "name": "Persisted" }, { "name": "PersistedMutation" }]), "{names}");
    }
}

#[tokio::test]
async fn a_persisted_query_with_another_hash_is_refused_and_not_registered() {
    let app = TestApp::spawn(Db::Sqlite).await;
    let wrong = sha256_hex("{ modules { code } }");
    let body = json!({ "query": "{ __typename }", "extensions": persisted(&wrong) });
    for accept in [None, Some(APOLLO_ACCEPT)] {
        let (status, _, answer) = post(&app, None, accept, &body).await;
        assert_eq!(status, 400, "{answer}");
        assert_eq!(error_code(&answer), "PERSISTED_QUERY_HASH_MISMATCH", "{answer}");
        assert!(answer.get("data").is_none(), "{answer}");
    }
    let (_, _, answer) = post(&app, None, None, &json!({ "extensions": persisted(&wrong) })).await;
    assert_eq!(error_code(&answer), "PERSISTED_QUERY_NOT_FOUND", "{answer}");
    // Not the protocol's shape: a clear 400.
    let bad = json!({ "extensions": { "persistedQuery": { "version": 2, "sha256Hash": wrong } } });
    let (status, _, answer) = post(&app, None, None, &bad).await;
    assert_eq!((status, error_code(&answer)), (400, "BAD_REQUEST"), "{answer}");
}

#[tokio::test]
async fn a_persisted_query_is_held_to_the_limits_and_can_be_turned_off() {
    let app = TestApp::spawn_flags(Db::Sqlite, &["--max-root-fields", "1"]).await;
    let wide = "{ a: __typename b: __typename }";
    let hash = sha256_hex(wide);
    let (status, _, body) = post(&app, None, None, &json!({ "query": wide, "extensions": persisted(&hash) })).await;
    assert_eq!((status, error_code(&body)), (400, "QUERY_TOO_COMPLEX"), "{body}");
    // Its hash alone meets the same limit.
    let (status, _, body) = post(&app, None, None, &json!({ "extensions": persisted(&hash) })).await;
    assert_eq!((status, error_code(&body)), (400, "QUERY_TOO_COMPLEX"), "{body}");

    let off = TestApp::spawn_flags(Db::Sqlite, &["--persisted-queries", "0"]).await;
    let query = "{ __typename }";
    let (status, _, body) = post(&off, None, None, &json!({ "extensions": persisted(&sha256_hex(query)) })).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["errors"][0]["message"], "PersistedQueryNotSupported", "{body}");
    assert_eq!(error_code(&body), "PERSISTED_QUERY_NOT_SUPPORTED");
    // Without the extension, queries run as ever.
    assert_eq!(off.ok(None, query, json!({})).await["__typename"], "Query");
}

#[tokio::test]
async fn batches_are_refused_unless_turned_on() {
    let app = TestApp::spawn(Db::Sqlite).await;
    let batch = json!([{ "query": "{ __typename }" }, { "query": "{ __typename }" }]);
    for accept in [None, Some(APOLLO_ACCEPT)] {
        let (status, _, body) = post(&app, None, accept, &batch).await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(error_code(&body), "BATCHING_DISABLED", "{body}");
        assert!(body["errors"][0]["message"].as_str().unwrap().contains("one operation per request"), "{body}");
    }
}

both_backends! {
    async fn a_batch_runs_in_order_each_operation_held_to_the_limits(db: Db) {
        let app = TestApp::spawn_flags(db, &["--batching", "--max-batch-size", "3", "--max-aliases", "1"]).await;
        let op = app.operator().await;
        let names = "{ sites(first: 10) { nodes { name } } }";
        let batch = json!([create_site("Batched"), { "query": names }, { "query": "{ a: __typename b: __typename }" }]);
        let (status, headers, body) = post(&app, Some(&op), Some(APOLLO_ACCEPT), &batch).await;
        assert_eq!((status, content_type(&headers)), (200, GRAPHQL_RESPONSE), "{body}");
        let answers = body.as_array().unwrap_or_else(|| panic!("not an array: {body}"));
        assert_eq!(answers.len(), 3, "{body}");
        assert_eq!(answers[0]["data"]["createSite"]["__typename"], "CreateSiteSuccess", "{body}");
        // The query after the mutation sees it.
        assert_eq!(answers[1]["data"]["sites"]["nodes"], json!([{ "name": "Batched" }]), "{body}");
        // Over a limit: refused alone, before it ran.
        assert_eq!(error_code(&answers[2]), "QUERY_TOO_COMPLEX", "{body}");
        assert_eq!(answers[2]["errors"][0]["extensions"]["limit"], "aliases", "{body}");

        let four = json!([{ "query": names }, { "query": names }, { "query": names }, create_site("TooMany")]);
        let (status, _, body) = post(&app, Some(&op), None, &four).await;
        assert_eq!((status, error_code(&body)), (400, "BATCH_TOO_LARGE"), "{body}");
        assert!(body["errors"][0]["message"].as_str().unwrap().contains('3'), "{body}");
        assert_eq!(site_names(&app, &op).await, json!([{ "name": "Batched" }]), "an over-large batch ran something");
        let (status, _, body) = post(&app, Some(&op), None, &json!([])).await;
        assert_eq!((status, error_code(&body)), (400, "BAD_REQUEST"), "{body}");
        // A single operation still answers as one object.
        let (status, _, body) = post(&app, Some(&op), None, &json!({ "query": names })).await;
        assert_eq!((status, body["data"]["sites"]["nodes"].clone()), (200, json!([{ "name": "Batched" }])), "{body}");
    }
}
