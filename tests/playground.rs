//! The GraphiQL playground renders in a real headless Chromium with no
//! network beyond loopback: every asset is served by the binary.

mod common;

use std::io::Write;
use std::process::Command;

use common::*;

fn chromium() -> Option<String> {
    let candidate = std::env::var("CHROMIUM").unwrap_or_else(|_| "chromium".into());
    Command::new(&candidate).arg("--version").output().ok().filter(|o| o.status.success()).map(|_| candidate)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_playground_renders_offline_in_headless_chromium() {
    let Some(chromium) = chromium() else {
        assert!(std::env::var("CI").is_err(), "CI must have chromium (.ci/run installs it)");
        let _ = writeln!(std::io::stderr(), "NOTE: chromium not found: the playground browser test did not run.");
        return;
    };
    let app = TestApp::spawn(Db::Sqlite).await;
    let profile = std::env::temp_dir().join(format!("lg-chromium-{}", std::process::id()));
    let url = format!("{}/", app.url);
    let output = tokio::task::spawn_blocking(move || {
        Command::new(chromium)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-default-apps",
                "--disable-extensions",
                "--disable-domain-reliability",
                "--no-pings",
                // Nothing but loopback resolves: a CDN dependency would fail to load.
                "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
                "--virtual-time-budget=10000",
                "--dump-dom",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg(url)
            .output()
            .expect("run chromium")
    })
    .await
    .unwrap();
    let dom = String::from_utf8_lossy(&output.stdout);
    assert!(dom.contains("graphiql-container"), "GraphiQL did not mount:\n{}", &dom[..dom.len().min(2000)]);
    assert!(dom.contains("graphiql-query-editor") && dom.contains("CodeMirror"), "the query editor did not render");
    assert!(dom.contains("signIn"), "the default query explains how to sign in");
}

#[tokio::test]
async fn the_playground_assets_are_served_with_their_types() {
    let app = TestApp::spawn(Db::Sqlite).await;
    for (path, mime) in [
        ("/", "text/html"),
        ("/assets/graphiql/graphiql.min.js", "text/javascript"),
        ("/assets/graphiql/graphiql.min.css", "text/css"),
        ("/assets/graphiql/react.production.min.js", "text/javascript"),
        ("/assets/graphiql/react-dom.production.min.js", "text/javascript"),
    ] {
        let resp = app.client.get(format!("{}{path}", app.url)).send().await.unwrap();
        assert_eq!(resp.status(), 200, "{path}");
        let ct = resp.headers()["content-type"].to_str().unwrap().to_string();
        assert!(ct.starts_with(mime), "{path}: {ct}");
    }
    let missing = app.client.get(format!("{}/assets/graphiql/nope.js", app.url)).send().await.unwrap();
    assert_eq!(missing.status(), 404);
}
