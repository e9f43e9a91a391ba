//! The GraphiQL playground renders in a real headless Chromium with no
//! network beyond loopback: every asset is served by the binary. Under its
//! Content-Security-Policy it runs queries with nothing blocked, and the
//! bearer token put in its headers is not stored in the browser.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::*;
use serde_json::{Value, json};

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

/// A headless Chromium driven over the DevTools protocol on a pipe
/// (`--remote-debugging-pipe`: commands in on fd 3, answers and events out on
/// fd 4, each a JSON message ended by a NUL), with one page attached.
struct Browser {
    child: Child,
    input: ChildStdin,
    output: mpsc::Receiver<Value>,
    next_id: u64,
    session: Option<String>,
    /// Every event received so far.
    events: Vec<Value>,
}

impl Browser {
    fn launch(chromium: &str, profile: &std::path::Path) -> Browser {
        // The shell hands our stdin and stdout to Chromium as fds 3 and 4.
        let command = format!(
            "exec 3<&0 4>&1 </dev/null >/dev/null; exec \"$0\" --headless --no-sandbox --disable-gpu --no-first-run \
             --disable-quic --disable-background-networking --disable-component-update --disable-sync \
             --disable-default-apps --disable-extensions --no-pings \
             '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1' \
             --remote-debugging-pipe --user-data-dir={} about:blank",
            profile.display()
        );
        let mut child = Command::new("bash")
            .args(["-c", &command, chromium])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("run chromium");
        let input = child.stdin.take().unwrap();
        let mut reader = BufReader::new(child.stdout.take().unwrap());
        let (send, output) = mpsc::channel();
        std::thread::spawn(move || {
            let mut message = Vec::new();
            while reader.read_until(0, &mut message).is_ok_and(|n| n > 0) {
                message.pop_if(|b| *b == 0);
                if let Ok(value) = serde_json::from_slice(&message)
                    && send.send(value).is_err()
                {
                    return;
                }
                message.clear();
            }
        });
        let mut browser = Browser { child, input, output, next_id: 0, session: None, events: Vec::new() };
        let target = browser.call("Target.createTarget", json!({ "url": "about:blank" }));
        let attached =
            browser.call("Target.attachToTarget", json!({ "targetId": target["targetId"], "flatten": true }));
        browser.session = Some(attached["sessionId"].as_str().unwrap().to_string());
        for domain in ["Runtime.enable", "Log.enable", "Page.enable"] {
            browser.call(domain, json!({}));
        }
        browser
    }

    /// Sends a command (to the page once attached); returns its result.
    fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut message = json!({ "id": id, "method": method, "params": params });
        if let Some(session) = &self.session {
            message["sessionId"] = json!(session);
        }
        let mut bytes = serde_json::to_vec(&message).unwrap();
        bytes.push(0);
        self.input.write_all(&bytes).expect("write to chromium");
        loop {
            let received = self.output.recv_timeout(Duration::from_secs(30)).expect("chromium answers");
            if received["id"] == json!(id) {
                assert!(received.get("error").is_none(), "{method}: {received}");
                return received["result"].clone();
            }
            self.events.push(received);
        }
    }

    /// The value of the JavaScript expression `expression` in the page.
    fn eval(&mut self, expression: &str) -> Value {
        let result = self
            .call("Runtime.evaluate", json!({ "expression": expression, "returnByValue": true, "awaitPromise": true }));
        result["result"]["value"].clone()
    }

    /// Waits up to 20 s for `expression` to be true in the page.
    fn wait_for(&mut self, expression: &str) {
        let start = Instant::now();
        while self.eval(expression) != json!(true) {
            assert!(start.elapsed() < Duration::from_secs(20), "timed out waiting for {expression}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The text of the console and log messages about blocked content
    /// (CSP violations) and of uncaught exceptions, so far.
    fn problems(&mut self) -> Vec<String> {
        self.eval("0"); // let pending events arrive
        self.events
            .iter()
            .filter_map(|event| match event["method"].as_str() {
                Some("Log.entryAdded") => {
                    let entry = &event["params"]["entry"];
                    let text = entry["text"].as_str().unwrap_or("");
                    let blocked = entry["source"] == "security" || text.contains("Content Security Policy");
                    blocked.then(|| text.chars().take(300).collect())
                }
                Some("Runtime.consoleAPICalled") if event["params"]["type"] == "error" => {
                    Some(event["params"]["args"].to_string())
                }
                Some("Runtime.exceptionThrown") => Some(event["params"]["exceptionDetails"].to_string()),
                _ => None,
            })
            .collect()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The visible text of GraphiQL's result pane.
const RESULT: &str = "(document.querySelector('.result-window') || {}).innerText || ''";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_playground_runs_queries_under_its_csp_and_keeps_no_token_in_local_storage() {
    let Some(chromium) = chromium() else {
        assert!(std::env::var("CI").is_err(), "CI must have chromium (.ci/run installs it)");
        let _ = writeln!(std::io::stderr(), "NOTE: chromium not found: the playground browser test did not run.");
        return;
    };
    let app = TestApp::spawn(Db::Sqlite).await;
    let token = app.operator().await;
    let signed_in = app.ok(Some(&token), "{ viewer { __typename } }", json!({})).await["viewer"]["__typename"].clone();
    let signed_in = signed_in.as_str().unwrap().to_string();
    assert_eq!(error_code(&app.gql(None, "{ viewer { __typename } }", json!({})).await), "UNAUTHENTICATED");
    let url = format!("{}/", app.url);
    let profile = std::env::temp_dir().join(format!("lg-chromium-csp-{}", std::process::id()));
    tokio::task::spawn_blocking(move || {
        let mut browser = Browser::launch(&chromium, &profile);
        browser.call("Page.navigate", json!({ "url": url }));
        browser.wait_for("!!document.querySelector('.graphiql-container .graphiql-execute-button')");

        // The default query runs as it is: without a token, so it is refused.
        browser.eval("document.querySelector('.graphiql-execute-button').click()");
        browser.wait_for(&format!("({RESULT}).includes('UNAUTHENTICATED')"));

        // With the token in the Headers tab, the same query runs signed in.
        let headers = json!({ "Authorization": format!("Bearer {token}") }).to_string();
        let set = browser.eval(&format!(
            "(() => {{ const e = document.querySelector('.graphiql-editor-tool .graphiql-editor:not(.hidden) .CodeMirror');
                e.CodeMirror.setValue({}); return e.CodeMirror.getValue(); }})()",
            json!(headers)
        ));
        assert_eq!(set, json!(headers), "the headers editor took the token");
        // A query of its own, so GraphiQL's history records this run with its headers.
        browser.eval(
            "document.querySelector('.graphiql-query-editor .CodeMirror').CodeMirror
                .setValue('query SignedIn { viewer { __typename } }')",
        );
        browser.eval("document.querySelector('.graphiql-execute-button').click()");
        browser.wait_for(&format!("({RESULT}).includes('{signed_in}')"));

        // The docs pane (the schema by introspection, descriptions as
        // markdown) and the history render under the CSP too.
        browser.eval("document.querySelector('.graphiql-sidebar button[aria-label*=\"Documentation Explorer\"]').click()");
        browser.wait_for("!!document.querySelector('.graphiql-doc-explorer a.graphiql-doc-explorer-type-name')");
        browser.eval("document.querySelector('.graphiql-doc-explorer a.graphiql-doc-explorer-type-name').click()");
        browser.wait_for("(document.querySelector('.graphiql-doc-explorer') || {}).innerText.includes('licensePools')");
        browser.eval("document.querySelector('.graphiql-sidebar button[aria-label*=\"History\"]').click()");
        browser.wait_for("(document.querySelector('.graphiql-history') || {}).innerText.includes('SignedIn')");

        // GraphiQL writes its state after a short delay; give it time.
        std::thread::sleep(Duration::from_millis(1500));
        let stored = browser.eval("JSON.stringify(Object.entries(localStorage))");
        let stored = stored.as_str().unwrap();
        assert!(stored.contains("graphiql:"), "GraphiQL stored its state: {stored}");
        assert!(!stored.contains(&token), "the bearer token is in localStorage: {stored}");

        let problems = browser.problems();
        assert!(problems.is_empty(), "blocked content or errors on the page:\n{}", problems.join("\n"));
        drop(browser);
        let _ = std::fs::remove_dir_all(&profile);
    })
    .await
    .unwrap();
}
