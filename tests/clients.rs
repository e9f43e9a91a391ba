//! Real JavaScript clients against the built server, the playground in
//! headless Chromium (playwright-core), and the schema's contract checks in
//! graphql-js: runs the test package in `clients/` (`node --test`) with this
//! build's binary. Needs Node.js 20+ and npm, and Chromium for the playground
//! (`CHROMIUM`, else /usr/bin/chromium). With `TEST_POSTGRES_URL` set, a
//! fresh database there is passed as `LICENSE_GATEWAY_POSTGRES_URL`, for the
//! tests that start two servers on one PostgreSQL database (subscriptions
//! across instances).

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const INSTALL: &str = "The client tests need Node.js 20 or newer and npm on the PATH: \
     `apt-get install nodejs npm` on Debian 13 (`.ci/run` does so when node is missing); Debian 12 ships \
     Node.js 18, too old: use NodeSource's nodejs 20 there (https://github.com/nodesource/distributions), \
     elsewhere https://nodejs.org/";

fn clients_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("clients")
}

fn run(command: &mut Command) -> Output {
    let shown = format!("{command:?}");
    command.output().unwrap_or_else(|e| panic!("{shown} did not start ({e}). {INSTALL}"))
}

fn text(output: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
}

/// The installed Node.js major version, or a failure that says how to install it.
fn node_major() -> u32 {
    let output = run(Command::new("node").arg("--version"));
    let version = String::from_utf8_lossy(&output.stdout).trim().to_string();
    version
        .trim_start_matches('v')
        .split('.')
        .next()
        .and_then(|major| major.parse().ok())
        .unwrap_or_else(|| panic!("`node --version` answered {version:?}. {INSTALL}"))
}

/// `npm ci` when `node_modules` is missing or was installed from another
/// lockfile (a copy of the lockfile it was installed from is kept in it).
fn install_packages(dir: &Path) {
    let lockfile = std::fs::read(dir.join("package-lock.json")).expect("clients/package-lock.json");
    let stamp = dir.join("node_modules").join(".installed-package-lock.json");
    if std::fs::read(&stamp).is_ok_and(|installed| installed == lockfile) {
        return;
    }
    let output = run(Command::new("npm").args(["ci", "--no-audit", "--no-fund"]).current_dir(dir));
    assert!(output.status.success(), "`npm ci` in clients/ failed:\n{}", text(&output));
    std::fs::write(&stamp, &lockfile).expect("write the install stamp");
}

#[test]
fn the_javascript_clients_and_contract_checks_pass() {
    let major = node_major();
    assert!(major >= 20, "Node.js {major} is too old. {INSTALL}");
    let dir = clients_dir();
    install_packages(&dir);
    let started = std::time::Instant::now();
    // Readable results on stdout, and TAP in a file to find the skipped tests in.
    let tap = std::env::temp_dir().join(format!("license-gateway-clients-{}.tap", std::process::id()));
    let mut node = Command::new("node");
    node.args(["--test", "--test-reporter=spec", "--test-reporter-destination=stdout", "--test-reporter=tap"])
        .arg(format!("--test-reporter-destination={}", tap.display()))
        .current_dir(&dir)
        .env("LICENSE_GATEWAY_BIN", env!("CARGO_BIN_EXE_license-gateway"))
        .env("NO_COLOR", "1");
    if common::postgres_url().is_some() {
        let runtime = tokio::runtime::Runtime::new().expect("a runtime to create the database");
        node.env("LICENSE_GATEWAY_POSTGRES_URL", runtime.block_on(common::fresh_database(common::Db::Postgres)));
    }
    let output = run(&mut node);
    let tap_report = std::fs::read_to_string(&tap).unwrap_or_default();
    let _ = std::fs::remove_file(&tap);
    assert!(
        output.status.success(),
        "the JavaScript client tests failed (node --test in clients/):\n{}",
        text(&output)
    );
    // Client tests waiting for a feature are skipped; say which on the terminal, like the Postgres note.
    let skipped: Vec<&str> = tap_report
        .lines()
        .filter(|l| l.trim_start().starts_with("ok ") && l.contains(" # SKIP"))
        .map(|l| l.trim().split_once(" - ").map_or(l, |(_, rest)| rest))
        .collect();
    if !skipped.is_empty() {
        // Written straight to stderr so the test harness does not capture it.
        let _ = writeln!(
            std::io::stderr(),
            "NOTE: {} JavaScript client test(s) skipped ({:.1} s for all of clients/):\n  {}",
            skipped.len(),
            started.elapsed().as_secs_f64(),
            skipped.join("\n  ")
        );
    }
}
