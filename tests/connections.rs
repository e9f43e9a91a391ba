//! Connections (issue 14, items 3 and 8): timeouts close idle, slow-header,
//! kept-alive and stalled or trickled-body connections; a cap refuses connections past
//! it; the open-file limit is raised at start; and SIGTERM drains the
//! requests in flight up to a deadline, then exits 0. Real server, real
//! sockets: raw TCP where the test must control every byte, and the
//! binary itself where a signal is sent.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use common::{Db, TestApp, fresh_database};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const HEALTHZ: &[u8] = b"GET /healthz HTTP/1.1\r\nhost: localhost\r\n\r\n";
const TYPENAME: &str = r#"{"query":"{ __typename }"}"#;

/// The address of a test server started with `flags`.
async fn server(flags: &[&str]) -> String {
    let app = TestApp::spawn_flags(Db::Sqlite, flags).await;
    app.url.trim_start_matches("http://").to_string()
}

/// Reads until the server closes `stream`; returns what it sent and how
/// long that took. Fails when it is still open after `within`.
async fn read_until_closed(stream: &mut TcpStream, within: Duration) -> (String, Duration) {
    let started = Instant::now();
    let mut received = Vec::new();
    let read = tokio::time::timeout(within, async {
        let mut buf = [0u8; 4096];
        // A reset counts as closed, like an end of stream.
        while let Ok(n @ 1..) = stream.read(&mut buf).await {
            received.extend_from_slice(&buf[..n]);
        }
    })
    .await;
    let received = String::from_utf8_lossy(&received).into_owned();
    assert!(read.is_ok(), "still open after {within:?}; received {received:?}");
    (received, started.elapsed())
}

/// Reads one answer to `GET /healthz` (its body is `ok`) from a kept connection.
async fn read_healthz(stream: &mut TcpStream) -> String {
    let mut received = Vec::new();
    let mut buf = [0u8; 1024];
    while !received.ends_with(b"\r\n\r\nok") {
        let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf)).await.expect("answer").unwrap();
        assert!(n > 0, "closed before the answer: {:?}", String::from_utf8_lossy(&received));
        received.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&received).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_that_sends_nothing_is_closed_after_the_header_timeout() {
    let addr = server(&["--header-timeout-ms", "300", "--keep-alive-timeout-ms", "10000"]).await;
    let mut idle = TcpStream::connect(&addr).await.unwrap();
    let (received, after) = read_until_closed(&mut idle, Duration::from_secs(3)).await;
    assert_eq!(received, "");
    assert!(after >= Duration::from_millis(250), "closed after {after:?}, before the timeout");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_head_that_stops_halfway_is_closed_after_the_header_timeout() {
    let addr = server(&["--header-timeout-ms", "300", "--keep-alive-timeout-ms", "10000"]).await;
    let mut slow = TcpStream::connect(&addr).await.unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nhost: loc").await.unwrap();
    let (received, after) = read_until_closed(&mut slow, Duration::from_secs(3)).await;
    assert!(!received.contains("200"), "answered a head never finished: {received:?}");
    assert!(after >= Duration::from_millis(250), "closed after {after:?}, before the timeout");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kept_alive_connection_without_a_new_request_is_closed_after_the_keep_alive_timeout() {
    let addr = server(&["--header-timeout-ms", "10000", "--keep-alive-timeout-ms", "800"]).await;
    let mut kept = TcpStream::connect(&addr).await.unwrap();
    kept.write_all(HEALTHZ).await.unwrap();
    assert!(read_healthz(&mut kept).await.starts_with("HTTP/1.1 200"));
    // Within the timeout the connection serves the next request ...
    tokio::time::sleep(Duration::from_millis(200)).await;
    kept.write_all(HEALTHZ).await.unwrap();
    assert!(read_healthz(&mut kept).await.starts_with("HTTP/1.1 200"));
    // ... and without one it is closed after the keep-alive timeout, long before the header timeout.
    let (received, after) = read_until_closed(&mut kept, Duration::from_secs(3)).await;
    assert_eq!(received, "");
    assert!(after >= Duration::from_millis(750), "closed after {after:?}, before the timeout");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_does_not_arrive_in_time_is_answered_408_after_the_body_timeout() {
    let addr = server(&["--body-timeout-ms", "400"]).await;
    let mut stalled = TcpStream::connect(&addr).await.unwrap();
    let head =
        "POST /graphql HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n";
    stalled.write_all(head.as_bytes()).await.unwrap();
    stalled.write_all(&TYPENAME.as_bytes()[..10]).await.unwrap();
    let (received, after) = read_until_closed(&mut stalled, Duration::from_secs(3)).await;
    assert!(received.starts_with("HTTP/1.1 408"), "{received:?}");
    assert!(received.contains("REQUEST_BODY_TIMEOUT"), "{received:?}");
    assert!(after >= Duration::from_millis(350), "answered after {after:?}, before the timeout");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_trickled_a_byte_at_a_time_is_answered_408_at_the_body_timeout() {
    // A byte every 100 ms never pauses as long as the timeout: the bound is on the whole body.
    let addr = server(&["--body-timeout-ms", "500"]).await;
    let mut trickled = TcpStream::connect(&addr).await.unwrap();
    let head =
        "POST /graphql HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n";
    trickled.write_all(head.as_bytes()).await.unwrap();
    let started = Instant::now();
    let mut answer = Vec::new();
    for byte in std::iter::repeat_n(b' ', 50) {
        if trickled.write_all(&[byte]).await.is_err() {
            break;
        }
        let mut buf = [0u8; 1024];
        if let Ok(Ok(n @ 1..)) = tokio::time::timeout(Duration::from_millis(100), trickled.read(&mut buf)).await {
            answer.extend_from_slice(&buf[..n]);
            break;
        }
    }
    let elapsed = started.elapsed();
    let (rest, _) = read_until_closed(&mut trickled, Duration::from_secs(3)).await;
    let received = String::from_utf8_lossy(&answer).into_owned() + &rest;
    assert!(received.starts_with("HTTP/1.1 408"), "{received:?}");
    assert!(received.contains("REQUEST_BODY_TIMEOUT"), "{received:?}");
    assert!(elapsed >= Duration::from_millis(450), "answered after {elapsed:?}, before the timeout");
    assert!(elapsed < Duration::from_secs(3), "answered only after {elapsed:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_past_the_cap_are_refused_with_503_until_some_close() {
    let addr = server(&["--max-connections", "3", "--header-timeout-ms", "10000"]).await;
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(TcpStream::connect(&addr).await.unwrap());
    }
    let mut fourth = TcpStream::connect(&addr).await.unwrap();
    let _ = fourth.write_all(HEALTHZ).await;
    let (received, _) = read_until_closed(&mut fourth, Duration::from_secs(3)).await;
    assert!(received.starts_with("HTTP/1.1 503"), "{received:?}");
    assert!(received.to_lowercase().contains("connection: close"), "{received:?}");

    drop(held.pop());
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let mut next = TcpStream::connect(&addr).await.unwrap();
        next.write_all(HEALTHZ).await.unwrap();
        let received = read_answer_or_close(&mut next).await;
        if received.starts_with("HTTP/1.1 200") {
            break;
        }
        assert!(Instant::now() < deadline, "a freed place was never served again: {received:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The answer to `GET /healthz`, or what came before the server closed.
async fn read_answer_or_close(stream: &mut TcpStream) -> String {
    let mut received = Vec::new();
    let mut buf = [0u8; 1024];
    while !received.ends_with(b"\r\n\r\nok") {
        match tokio::time::timeout(Duration::from_secs(3), stream.read(&mut buf)).await.expect("an answer") {
            Ok(n @ 1..) => received.extend_from_slice(&buf[..n]),
            _ => break,
        }
    }
    String::from_utf8_lossy(&received).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_is_served_beside_http1() {
    let addr = server(&[]).await;
    let io = hyper_util::rt::TokioIo::new(TcpStream::connect(&addr).await.unwrap());
    let (mut http2, connection) =
        hyper::client::conn::http2::handshake(hyper_util::rt::TokioExecutor::new(), io).await.unwrap();
    tokio::spawn(connection);
    let request = axum::http::Request::post(format!("http://{addr}/graphql"))
        .header("content-type", "application/json")
        .body(http_body_util::Full::new(axum::body::Bytes::from_static(TYPENAME.as_bytes())))
        .unwrap();
    let response = http2.send_request(request).await.unwrap();
    assert_eq!(response.version(), axum::http::Version::HTTP_2);
    assert_eq!(response.status(), 200);
    let body = http_body_util::BodyExt::collect(response.into_body()).await.unwrap().to_bytes();
    assert_eq!(body, r#"{"data":{"__typename":"Query"}}"#);

    let mut http1 = TcpStream::connect(&addr).await.unwrap();
    http1.write_all(HEALTHZ).await.unwrap();
    assert!(read_healthz(&mut http1).await.starts_with("HTTP/1.1 200"));
}

/// The gateway binary, started on a fresh SQLite file on a free port.
struct Gateway {
    child: Child,
    addr: SocketAddr,
    /// Where its log (stderr) goes.
    log: std::path::PathBuf,
    /// What it printed before it listened (the operator's one-time password).
    printed: Vec<String>,
}

impl Gateway {
    /// Starts the binary with `flags`, through `sh -c "<prelude>; exec ..."`
    /// so that a test can set limits first.
    async fn start(prelude: &str, flags: &[&str]) -> Gateway {
        let database_url = fresh_database(Db::Sqlite).await;
        let log = std::path::PathBuf::from(format!("{}.log", database_url.trim_start_matches("sqlite:")));
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(format!(r#"{prelude}; exec "$0" "$@""#))
            .arg(env!("CARGO_BIN_EXE_license-gateway"))
            .args(["--database-url", &database_url, "--listen", "127.0.0.1:0"])
            .args(flags)
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("start the binary");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut printed = Vec::new();
        let addr = loop {
            let line = lines.next().expect("the binary says where it listens").unwrap();
            if let Some(rest) = line.strip_prefix("license-gateway listening on http://") {
                break rest.split('/').next().unwrap().parse().unwrap();
            }
            printed.push(line);
        };
        // Keep reading, so that the binary never writes into a closed pipe.
        std::thread::spawn(move || lines.for_each(drop));
        Gateway { child, addr, log, printed }
    }

    /// A session token of the operator the binary created at its start.
    async fn operator_token(&self) -> String {
        let password = self
            .printed
            .iter()
            .find_map(|l| l.split("and password `").nth(1)?.split('`').next())
            .expect("the operator's password was printed");
        let query =
            "mutation($p: String!) { signIn(username: \"operator\", password: $p) { ... on SignInSuccess { token } } }";
        let body: serde_json::Value = reqwest::Client::new()
            .post(format!("http://{}/graphql", self.addr))
            .json(&serde_json::json!({ "query": query, "variables": { "p": password } }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        body["data"]["signIn"]["token"].as_str().expect("signed in").to_string()
    }

    /// What it has logged so far.
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap()
    }

    fn terminate(&self) {
        let sent = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().unwrap();
        assert!(sent.success());
    }

    /// The exit status, once the process has ended within `within`.
    fn exited_within(&mut self, within: Duration) -> ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "still running after {within:?}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Whether a new connection is refused, waiting up to a second for it.
    fn refuses_connections(&self) -> bool {
        let deadline = Instant::now() + Duration::from_secs(1);
        while Instant::now() < deadline {
            if std::net::TcpStream::connect(self.addr).is_err() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// A connection with a `POST /graphql` of [`TYPENAME`] whose body has
    /// only begun (10 bytes), once the server is reading that body: it asks
    /// for it with `100 Continue`.
    fn slow_post(&self) -> std::net::TcpStream {
        let mut stream = std::net::TcpStream::connect(self.addr).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let head = format!(
            "POST /graphql HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\n\
             expect: 100-continue\r\ncontent-length: {}\r\n\r\n",
            TYPENAME.len()
        );
        stream.write_all(head.as_bytes()).unwrap();
        let mut go_on = [0u8; 25];
        stream.read_exact(&mut go_on).unwrap();
        assert_eq!(&go_on, b"HTTP/1.1 100 Continue\r\n\r\n");
        stream.write_all(&TYPENAME.as_bytes()[..10]).unwrap();
        stream
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The soft and hard limits of open files of process `pid`.
fn open_file_limits(pid: u32) -> (u64, u64) {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = limits.lines().find(|l| l.starts_with("Max open files")).unwrap();
    let numbers: Vec<u64> = line.split_whitespace().filter_map(|w| w.parse().ok()).collect();
    (numbers[0], numbers[1])
}

#[tokio::test]
async fn the_open_file_limit_is_raised_to_the_hard_limit_at_start() {
    let gateway = Gateway::start("ulimit -Sn 256", &[]).await;
    let (soft, hard) = open_file_limits(gateway.child.id());
    assert!(hard > 256, "this test needs a hard limit above 256, not {hard}");
    assert_eq!(soft, hard);
}

#[tokio::test]
async fn sigterm_stops_accepting_lets_the_request_in_flight_finish_and_exits_0() {
    let mut gateway = Gateway::start(":", &["--shutdown-grace-ms", "5000"]).await;
    let mut in_flight = gateway.slow_post();
    let signalled = Instant::now();
    gateway.terminate();
    assert!(gateway.refuses_connections(), "still accepting after SIGTERM");

    in_flight.write_all(&TYPENAME.as_bytes()[10..]).unwrap();
    in_flight.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut answer = String::new();
    in_flight.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer:?}");
    assert!(answer.to_lowercase().contains("connection: close"), "{answer:?}");
    assert!(answer.ends_with(r#"{"data":{"__typename":"Query"}}"#), "{answer:?}");

    let status = gateway.exited_within(Duration::from_secs(5));
    assert_eq!(status.code(), Some(0));
    assert!(signalled.elapsed() < Duration::from_secs(5), "waited for the whole grace period");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_closes_websocket_connections_with_going_away_and_exits_0() {
    use async_graphql::futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::{Message, client::IntoClientRequest};
    let mut gateway = Gateway::start(":", &["--shutdown-grace-ms", "5000"]).await;
    let token = gateway.operator_token().await;
    let mut request = format!("ws://{}/graphql", gateway.addr).into_client_request().unwrap();
    request.headers_mut().insert("sec-websocket-protocol", "graphql-transport-ws".parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(request).await.expect("upgraded");
    let init =
        serde_json::json!({ "type": "connection_init", "payload": { "Authorization": format!("Bearer {token}") } });
    ws.send(Message::text(init.to_string())).await.unwrap();
    let ack = ws.next().await.unwrap().unwrap();
    assert_eq!(ack.into_text().unwrap().as_str(), r#"{"type":"connection_ack"}"#);

    let signalled = Instant::now();
    gateway.terminate();
    let closed = tokio::time::timeout(Duration::from_secs(5), ws.next()).await.expect("closed in time");
    match closed {
        Some(Ok(Message::Close(Some(frame)))) => assert_eq!(u16::from(frame.code), 1001, "{frame:?}"),
        other => panic!("expected a close frame, got {other:?}"),
    }
    assert_eq!(gateway.exited_within(Duration::from_secs(5)).code(), Some(0));
    assert!(signalled.elapsed() < Duration::from_secs(4), "waited for the grace period");
}

#[tokio::test]
async fn a_request_still_in_flight_at_the_end_of_the_grace_period_does_not_keep_the_process() {
    let mut gateway = Gateway::start(":", &["--shutdown-grace-ms", "500"]).await;
    let _in_flight = gateway.slow_post();
    let signalled = Instant::now();
    gateway.terminate();

    let status = gateway.exited_within(Duration::from_secs(5));
    assert_eq!(status.code(), Some(0));
    assert!(signalled.elapsed() >= Duration::from_millis(450), "did not wait for the grace period");
}

#[tokio::test]
async fn out_of_file_descriptors_the_accept_loop_backs_off_logs_once_and_recovers() {
    // 64 files in all: the database, the listener and about 40 connections.
    let gateway = Gateway::start("ulimit -n 64", &["--max-connections", "1000", "--header-timeout-ms", "10000"]).await;
    let mut held = Vec::new();
    for _ in 0..100 {
        held.push(std::net::TcpStream::connect(gateway.addr).unwrap());
    }
    std::thread::sleep(Duration::from_millis(2500));
    let failures = gateway.log().matches("accepting connections failed").count();
    assert_eq!(failures, 1, "the accept error is logged once, then at most every 30 s:\n{}", gateway.log());

    drop(held);
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let mut stream = std::net::TcpStream::connect(gateway.addr).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
        stream.write_all(HEALTHZ).unwrap();
        let mut answer = [0u8; 12];
        if stream.read_exact(&mut answer).is_ok() && answer.starts_with(b"HTTP/1.1 200") {
            break;
        }
        assert!(Instant::now() < deadline, "not serving again after the connections closed");
        std::thread::sleep(Duration::from_millis(50));
    }
}
