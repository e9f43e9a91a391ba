//! What a browser may do with the server, over real HTTP: CORS only for the
//! configured origins, GraphQL only as a JSON post (no cross-site "simple"
//! request runs anything), the playground's files and security headers, and
//! the production switches (playground, introspection, statement counts).
//! The playground in a real browser: clients/test/playground.test.js.

mod common;

use common::*;
use reqwest::Method;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};

const FRONTEND: &str = "http://localhost:5173";
const OTHER: &str = "https://evil.example";

async fn with_origins() -> TestApp {
    TestApp::spawn_flags(
        Db::Sqlite,
        &["--cors-origins", &format!("{FRONTEND},https://app.example.com"), "--cors-max-age-seconds", "600"],
    )
    .await
}

/// Sends a CORS preflight for a POST with `Authorization` and `Content-Type` from `origin`.
async fn preflight(app: &TestApp, origin: &str) -> (u16, HeaderMap) {
    let response = app
        .client
        .request(Method::OPTIONS, format!("{}/graphql", app.url))
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "authorization,content-type,x-request-id")
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.headers().clone())
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
    headers.get(name).map(|v| v.to_str().unwrap()).unwrap_or("")
}

fn cors_headers(headers: &HeaderMap) -> Vec<String> {
    headers.keys().map(|k| k.as_str().to_string()).filter(|k| k.starts_with("access-control-")).collect()
}

fn listed(headers: &HeaderMap, name: &str) -> Vec<String> {
    header(headers, name).split(',').map(|s| s.trim().to_ascii_lowercase()).filter(|s| !s.is_empty()).collect()
}

#[tokio::test]
async fn a_preflight_from_an_allowed_origin_is_answered_with_credentials_headers_and_caching() {
    let app = with_origins().await;
    let (status, headers) = preflight(&app, FRONTEND).await;
    assert!(status == 200 || status == 204, "preflight status {status}");
    assert_eq!(header(&headers, "access-control-allow-origin"), FRONTEND);
    assert_eq!(header(&headers, "access-control-allow-credentials"), "true");
    assert!(listed(&headers, "access-control-allow-methods").contains(&"post".into()), "{headers:?}");
    let allowed = listed(&headers, "access-control-allow-headers");
    for name in ["authorization", "content-type", "x-request-id"] {
        assert!(allowed.contains(&name.to_string()), "{name} not allowed: {allowed:?}");
    }
    assert_eq!(header(&headers, "access-control-max-age"), "600");
}

#[tokio::test]
async fn a_preflight_from_another_origin_gets_no_cors_headers() {
    let app = with_origins().await;
    for origin in [OTHER, "http://localhost:5174", "https://app.example.com.evil.example"] {
        let (_, headers) = preflight(&app, origin).await;
        assert_eq!(cors_headers(&headers), Vec::<String>::new(), "{origin}");
    }
}

#[tokio::test]
async fn cors_is_closed_when_no_origin_is_configured() {
    let app = TestApp::spawn(Db::Sqlite).await;
    let (_, headers) = preflight(&app, FRONTEND).await;
    assert_eq!(cors_headers(&headers), Vec::<String>::new());
    let response = app
        .client
        .post(format!("{}/graphql", app.url))
        .header("origin", FRONTEND)
        .json(&json!({ "query": "{ __typename }" }))
        .send()
        .await
        .unwrap();
    assert_eq!(cors_headers(response.headers()), Vec::<String>::new());
}

#[tokio::test]
async fn an_allowed_origins_request_may_read_the_answer_and_its_request_id() {
    let app = with_origins().await;
    let post = |origin: &'static str| {
        app.client
            .post(format!("{}/graphql", app.url))
            .header("origin", origin)
            .json(&json!({ "query": "{ __typename }" }))
            .send()
    };
    let allowed = post(FRONTEND).await.unwrap();
    assert_eq!(allowed.status(), 200);
    let headers = allowed.headers();
    assert_eq!(header(headers, "access-control-allow-origin"), FRONTEND);
    assert_eq!(header(headers, "access-control-allow-credentials"), "true");
    assert!(listed(headers, "access-control-expose-headers").contains(&"x-request-id".into()), "{headers:?}");
    assert!(!header(headers, "x-request-id").is_empty());
    let other = post(OTHER).await.unwrap();
    assert_eq!(cors_headers(other.headers()), Vec::<String>::new());
}

/// Posts `body` to /graphql with `content_type` (none when `None`).
async fn post_as(app: &TestApp, token: &str, content_type: Option<&str>, body: String) -> (u16, Value) {
    let mut request = app.client.post(format!("{}/graphql", app.url)).bearer_auth(token).body(body);
    if let Some(content_type) = content_type {
        request = request.header("content-type", content_type);
    }
    let response = request.send().await.unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

#[tokio::test]
async fn graphql_runs_only_from_a_json_post_and_anything_else_is_415_before_it_runs() {
    let app = TestApp::spawn(Db::Sqlite).await;
    let op = app.operator().await;
    let create = |name: &str| {
        json!({ "query": "mutation($i: CreateSiteInput!) { createSite(input: $i) { __typename } }",
            "variables": { "i": { "name": name, "agreementName": "A", "selfService": false, "pools": [],
                "administrator": { "name": "Admin", "username": format!("{}-admin", name.to_lowercase()), "password": PASSWORD } } } })
        .to_string()
    };
    for (i, content_type) in [
        Some("text/plain"),
        Some("text/plain;charset=UTF-8"),
        Some("multipart/form-data; boundary=xyz"),
        Some("application/x-www-form-urlencoded"),
        None,
    ]
    .into_iter()
    .enumerate()
    {
        let (status, body) = post_as(&app, &op, content_type, create(&format!("Csrf{i}"))).await;
        assert_eq!(status, 415, "{content_type:?}: {body}");
        assert_eq!(error_code(&body), "UNSUPPORTED_MEDIA_TYPE", "{content_type:?}");
        assert!(body["errors"][0]["message"].as_str().unwrap().contains("application/json"), "{body}");
    }
    let sites = app.ok(Some(&op), "{ sites(first: 100) { nodes { name } } }", json!({})).await;
    assert_eq!(sites["sites"]["nodes"], json!([]), "a refused post created a site");

    let (status, body) = post_as(&app, &op, Some("application/json; charset=utf-8"), create("Json")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["createSite"]["__typename"], "CreateSiteSuccess", "{body}");
}

const PAGE_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
     font-src data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

#[tokio::test]
async fn the_playground_and_its_assets_carry_the_security_headers() {
    let app = TestApp::spawn(Db::Sqlite).await;
    for path in ["/", "/graphql", "/assets/graphiql/graphiql.min.js", "/assets/graphiql/playground.js"] {
        let response = app.client.get(format!("{}{path}", app.url)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
        let headers = response.headers();
        assert_eq!(header(headers, "content-security-policy"), PAGE_CSP, "{path}");
        assert_eq!(header(headers, "x-frame-options"), "DENY", "{path}");
        assert_eq!(header(headers, "x-content-type-options"), "nosniff", "{path}");
        assert_eq!(header(headers, "referrer-policy"), "no-referrer", "{path}");
    }
    // The page has no inline script or style, which the CSP would block.
    let (_, page) = app.get("/").await;
    assert!(!page.contains("<script>") && !page.contains("<style"), "{page}");
    // API answers are not sniffed either.
    let api = app.client.post(format!("{}/graphql", app.url)).json(&json!({ "query": "{ __typename }" }));
    let api = api.send().await.unwrap();
    assert_eq!(header(api.headers(), "x-content-type-options"), "nosniff");
}

#[tokio::test]
async fn every_file_the_playground_page_loads_is_served_with_its_type() {
    let app = TestApp::spawn(Db::Sqlite).await;
    let (_, page) = app.get("/").await;
    // GraphiQL and its stylesheet, the explorer plugin and its stylesheet, graphql-ws, React, ReactDOM,
    // and the page's own script and stylesheet.
    let files: Vec<&str> = page.split('"').filter(|part| part.starts_with("/assets/graphiql/")).collect();
    assert_eq!(files.len(), 9, "{page}");
    for path in files {
        let response = app.client.get(format!("{}{path}", app.url)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
        let expected = if path.ends_with(".css") { "text/css" } else { "text/javascript" };
        assert!(header(response.headers(), "content-type").starts_with(expected), "{path}");
    }
    let (status, _) = app.get("/assets/graphiql/nope.js").await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn with_the_playground_off_its_page_and_assets_are_not_found_and_the_api_still_answers() {
    let app = TestApp::spawn_flags(Db::Sqlite, &["--playground", "false"]).await;
    for path in ["/", "/graphql", "/assets/graphiql/graphiql.min.js", "/assets/graphiql/playground.js"] {
        let (status, _) = app.get(path).await;
        assert_eq!(status, 404, "{path}");
    }
    let data = app.ok(None, "{ __typename }", json!({})).await;
    assert_eq!(data["__typename"], "Query");
}

#[tokio::test]
async fn with_introspection_off_schema_and_type_are_refused_with_a_code_and_queries_still_run() {
    let app = TestApp::spawn_flags(Db::Sqlite, &["--introspection", "false"]).await;
    for query in [
        "{ __schema { types { name } } }",
        "{ t: __type(name: \"Query\") { name fields { name } } }",
        "query Q { ...F } fragment F on Query { __schema { queryType { name } } }",
        "{ ... on Query { __type(name: \"Site\") { name } } }",
    ] {
        let (status, body) = app.gql_status(None, query, json!({})).await;
        assert_eq!(status, 400, "{query}: {body}");
        assert_eq!(error_code(&body), "INTROSPECTION_DISABLED", "{query}: {body}");
        assert!(body.get("data").is_none_or(|d| d.is_null()), "{query}: {body}");
    }
    let data = app.ok(None, "{ __typename }", json!({})).await;
    assert_eq!(data["__typename"], "Query");
    let op = app.operator().await;
    let data = app.ok(Some(&op), "{ viewer { __typename } modules { code } }", json!({})).await;
    assert!(!data["modules"].as_array().unwrap().is_empty(), "{data}");
}

#[tokio::test]
async fn introspection_is_answered_by_default() {
    let app = TestApp::spawn(Db::Sqlite).await;
    let data = app.ok(None, "{ __type(name: \"Query\") { name } }", json!({})).await;
    assert_eq!(data["__type"]["name"], "Query");
}

async fn statements_answered(app: &TestApp) -> Option<Value> {
    let response = app
        .client
        .post(format!("{}/graphql", app.url))
        .header("x-sql-statements", "1")
        .json(&json!({ "query": "{ __typename }" }))
        .send()
        .await
        .unwrap();
    let body: Value = response.json().await.unwrap();
    assert!(body.get("errors").is_none(), "{body}");
    body.get("extensions").and_then(|e| e.get("sqlStatements")).cloned()
}

#[tokio::test]
async fn the_sql_statement_count_is_answered_only_when_the_server_exposes_it() {
    let hidden = TestApp::spawn_configured(Db::Sqlite, |config| config.expose_sql_statements = false).await;
    assert_eq!(statements_answered(&hidden).await, None);
    // The test servers start with `--expose-sql-statements` (tests/common).
    let exposed = TestApp::spawn(Db::Sqlite).await;
    assert!(statements_answered(&exposed).await.is_some_and(|n| n.as_u64().is_some()));
}

#[test]
fn the_browser_settings_have_their_documented_defaults() {
    use clap::Parser;
    use license_gateway::app::Config;
    let parse = |args: &[&str]| Config::try_parse_from([&["license-gateway"], args].concat()).unwrap();
    assert!(!parse(&[]).expose_sql_statements);
    assert!(parse(&["--expose-sql-statements"]).expose_sql_statements);
    assert!(parse(&[]).playground && parse(&[]).introspection);
    assert!(parse(&[]).cors_origins.is_empty());
    assert_eq!(parse(&[]).cors_max_age_seconds, 600);
    assert!(Config::try_parse_from(["license-gateway", "--cors-origins", "*"]).is_err());
}
