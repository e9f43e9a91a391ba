//! Load generator of the subscription benchmark (`bench/subscriptions.sh`):
//! many graphql-ws subscribers of `licensePools` over real WebSockets, and a
//! steady load of pool changes through the API, with the delivery latency
//! from each change to every subscriber of its site.
//!
//! `setup` creates sites with an administrator each (as the operator) and
//! prints one `SITE <global id> <administrator's token>` line per site.
//! `run` connects the subscribers (spread over the sites and the given
//! instances, each signed in with its site's token), writes `CONTROL/connected`
//! once every one has its first state, waits for `CONTROL/go`, then sends
//! `setPoolTotal` at a fixed rate (alternating instances and modules, round
//! robin over the sites) and reports, as `key=value` lines:
//! - delivery latency from just before each mutation is sent (`send_*`) and
//!   from when its answer arrived (`answer_*`; the commit lies between) to
//!   the first message of each subscriber of the site that carries the
//!   pool's new version (or a later one): p50, p99, max;
//! - deliveries found against expected (changes × subscribers of the site),
//!   and messages in which a pool's version went down (must be 0);
//! - CPU of the processes named with `--cpu` and of every `postgres`
//!   process (in % of one core) and this process's own, over the changes.
//!
//! One clock (this process's monotonic clock) times both ends. Everything
//! runs on 127.0.0.1; the run ends by itself.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::Semaphore;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Bytes, Message};

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create `--sites` sites, each with an administrator, and print
    /// `SITE <id> <token>` for each.
    Setup {
        /// An instance's GraphQL URL (http://127.0.0.1:PORT/graphql).
        #[arg(long)]
        url: String,
        /// The operator's token.
        #[arg(long, env = "OPERATOR_TOKEN", hide_env_values = true)]
        operator_token: String,
        #[arg(long)]
        sites: usize,
        /// Total of each site's CASE and DOCUMENT pools.
        #[arg(long, default_value_t = 100)]
        total: i64,
    },
    /// Connect the subscribers, wait for `CONTROL/go`, run the changes, report.
    Run(RunArgs),
}

#[derive(Parser)]
struct RunArgs {
    /// File of `SITE <id> <token>` lines: the sites to subscribe to.
    #[arg(long)]
    sites: PathBuf,
    /// GraphQL URLs of the instances (http://...; subscribers and changes
    /// alternate over them).
    #[arg(long, value_delimiter = ',', required = true)]
    urls: Vec<String>,
    /// Subscribers per site.
    #[arg(long, default_value_t = 100)]
    per_site: usize,
    /// Connections being opened at once.
    #[arg(long, default_value_t = 200)]
    connect_concurrency: usize,
    /// Folder for the `connected` (written) and `go` (awaited) files.
    #[arg(long)]
    control: PathBuf,
    /// The operator's token (for `setPoolTotal`).
    #[arg(long, env = "OPERATOR_TOKEN", hide_env_values = true)]
    operator_token: String,
    /// Changes per second.
    #[arg(long, default_value_t = 40.0)]
    rate: f64,
    /// Seconds of changes.
    #[arg(long, default_value_t = 30.0)]
    duration: f64,
    /// How long to wait for deliveries after the last answer, at most.
    #[arg(long, default_value_t = 10.0)]
    grace: f64,
    /// Longest wait for `CONTROL/go`, in seconds.
    #[arg(long, default_value_t = 3600.0)]
    max_wait: f64,
    /// A process to measure: LABEL=PID (repeatable).
    #[arg(long = "cpu")]
    cpu: Vec<String>,
}

const SUBSCRIPTION: &str =
    "subscription($site: ID) { licensePools(siteId: $site) { id used total available version } }";

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Setup { url, operator_token, sites, total } => setup(&url, &operator_token, sites, total).await,
        Command::Run(args) => run(args).await,
    }
}

// ---- GraphQL over HTTP -------------------------------------------------------------------

async fn post(
    client: &reqwest::Client,
    url: &str,
    token: Option<&str>,
    query: &str,
    variables: Value,
) -> anyhow::Result<Value> {
    let mut request = client.post(url).json(&json!({ "query": query, "variables": variables }));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let answer: Value = request.send().await?.json().await?;
    if let Some(errors) = answer.get("errors") {
        bail!("{query}: {errors}");
    }
    Ok(answer["data"].clone())
}

async fn setup(url: &str, operator: &str, sites: usize, total: i64) -> anyhow::Result<()> {
    let client = reqwest::Client::new();
    let stamp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs();
    // Argon2 takes a core per hash: two at a time keep this host's cores busy.
    let slots = Arc::new(Semaphore::new(2));
    let mut tasks = Vec::new();
    for n in 0..sites {
        let (client, url, operator, slots) = (client.clone(), url.to_string(), operator.to_string(), slots.clone());
        tasks.push(tokio::spawn(async move {
            let _slot = slots.acquire().await?;
            let username = format!("live-admin-{stamp}-{n}");
            let password = format!("violet tugboat measures gravel {n}");
            let input = json!({
                "name": format!("Live {stamp} {n}"), "agreementName": format!("Live agreement {n}"),
                "pools": [{ "module": "CASE", "total": total }, { "module": "DOCUMENT", "total": total }],
                "administrator": { "name": format!("Live Admin {n}"), "username": username, "password": password },
            });
            let created = post(&client, &url, Some(&operator),
                "mutation($i: CreateSiteInput!) { createSite(input: $i) { __typename ... on CreateSiteSuccess { site { id } } } }",
                json!({ "i": input })).await?;
            let site = created["createSite"]["site"]["id"].as_str().with_context(|| format!("createSite: {created}"))?.to_string();
            let signed = post(&client, &url, None,
                "mutation($u: String!, $p: String!) { signIn(username: $u, password: $p) { __typename ... on SignInSuccess { token } } }",
                json!({ "u": username, "p": password })).await?;
            let token = signed["signIn"]["token"].as_str().with_context(|| format!("signIn: {signed}"))?.to_string();
            anyhow::Ok((site, token))
        }));
    }
    for task in tasks {
        let (site, token) = task.await??;
        println!("SITE {site} {token}");
    }
    Ok(())
}

// ---- the subscribers --------------------------------------------------------------------

#[derive(Deserialize)]
struct Frame {
    #[serde(rename = "type")]
    kind: String,
    payload: Option<Payload>,
}

#[derive(Deserialize)]
struct Payload {
    data: Option<PoolsData>,
    errors: Option<Value>,
}

#[derive(Deserialize)]
struct PoolsData {
    #[serde(rename = "licensePools")]
    pools: Vec<PoolState>,
}

#[derive(Deserialize)]
struct PoolState {
    id: String,
    used: i64,
    total: i64,
    available: i64,
    version: i64,
}

/// What every subscriber shares.
struct Shared {
    /// Each site's pool ids, in the order of the first message that came.
    site_pools: Vec<OnceLock<Vec<String>>>,
    /// Record each message's versions (during the changes) or only check them.
    recording: AtomicBool,
    messages: AtomicU64,
    backwards: AtomicU64,
    inconsistent: AtomicU64,
    ready: AtomicUsize,
    closed: Mutex<HashMap<String, usize>>,
}

/// One subscriber's messages while recording: when each came, and each
/// pool's version in it (in the site's order).
struct Subscriber {
    site: usize,
    log: Mutex<Vec<(Instant, Vec<i64>)>>,
}

fn ws_url(http: &str) -> String {
    http.replacen("http://", "ws://", 1)
}

/// One subscriber: connects, signs in, subscribes, then reads until the server closes.
async fn subscribe(
    url: String,
    site_id: String,
    token: String,
    me: Arc<Subscriber>,
    shared: Arc<Shared>,
    slots: Arc<Semaphore>,
) {
    let why = match subscribe_inner(&url, &site_id, &token, &me, &shared, slots).await {
        Ok(why) => why,
        Err(error) => format!("error: {error:#}"),
    };
    *shared.closed.lock().unwrap().entry(why).or_default() += 1;
}

async fn subscribe_inner(
    url: &str,
    site_id: &str,
    token: &str,
    me: &Subscriber,
    shared: &Shared,
    slots: Arc<Semaphore>,
) -> anyhow::Result<String> {
    use async_graphql::futures_util::{SinkExt, StreamExt};
    let slot = slots.acquire_owned().await?;
    let mut request = ws_url(url).into_client_request()?;
    request.headers_mut().insert("sec-websocket-protocol", HeaderValue::from_static("graphql-transport-ws"));
    let config = WebSocketConfig::default().read_buffer_size(4096).write_buffer_size(0);
    let (mut ws, _) = tokio_tungstenite::connect_async_with_config(request, Some(config), true).await?;
    let init = json!({ "type": "connection_init", "payload": { "Authorization": format!("Bearer {token}") } });
    ws.send(Message::text(init.to_string())).await?;
    let start = json!({ "id": "1", "type": "subscribe", "payload": { "query": SUBSCRIPTION, "variables": { "site": site_id } } });
    let mut slot = Some(slot);
    let mut last: Vec<i64> = Vec::new();
    while let Some(message) = ws.next().await {
        let at = Instant::now();
        let text: Bytes = match message? {
            Message::Text(text) => text.into(),
            Message::Close(frame) => {
                return Ok(format!("closed {}", frame.map_or("-".into(), |f| format!("{} {}", f.code, f.reason))));
            }
            _ => continue,
        };
        let frame: Frame = serde_json::from_slice(&text)?;
        match frame.kind.as_str() {
            "connection_ack" => ws.send(Message::text(start.to_string())).await?,
            "next" => {
                let payload = frame.payload.context("next without payload")?;
                if let Some(errors) = payload.errors {
                    bail!("subscription error: {errors}");
                }
                let pools = payload.data.context("next without data")?.pools;
                let ids = shared.site_pools[me.site].get_or_init(|| pools.iter().map(|p| p.id.clone()).collect());
                let mut versions = vec![i64::MIN; ids.len()];
                for pool in &pools {
                    let i = ids.iter().position(|id| *id == pool.id).context("a pool not in the site's first state")?;
                    versions[i] = pool.version;
                    if pool.available != pool.total - pool.used {
                        shared.inconsistent.fetch_add(1, Ordering::Relaxed);
                    }
                }
                if !last.is_empty() && versions.iter().zip(&last).any(|(now, before)| now < before) {
                    shared.backwards.fetch_add(1, Ordering::Relaxed);
                }
                shared.messages.fetch_add(1, Ordering::Relaxed);
                if shared.recording.load(Ordering::Relaxed) {
                    me.log.lock().unwrap().push((at, versions.clone()));
                }
                last = versions;
                if slot.take().is_some() {
                    shared.ready.fetch_add(1, Ordering::Relaxed);
                }
            }
            "ping" => ws.send(Message::text(r#"{"type":"pong"}"#)).await?,
            "pong" => {}
            other => bail!("unexpected {other}: {}", String::from_utf8_lossy(&text)),
        }
    }
    Ok("ended".into())
}

// ---- CPU accounting ---------------------------------------------------------------------

fn ticks_of(pid: &str, children: bool) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<u64> =
        stat.rsplit_once(')')?.1.split_whitespace().skip(11).take(4).filter_map(|f| f.parse().ok()).collect();
    Some(fields[0] + fields[1] + if children { fields[2] + fields[3] } else { 0 })
}

/// utime + stime (with reaped children's) of every `postgres` process.
fn postgres_ticks() -> u64 {
    let Ok(dir) = std::fs::read_dir("/proc") else { return 0 };
    dir.filter_map(|e| e.ok())
        .filter(|e| std::fs::read_to_string(e.path().join("comm")).is_ok_and(|c| c.trim() == "postgres"))
        .filter_map(|e| ticks_of(&e.file_name().to_string_lossy(), true))
        .sum()
}

/// Busy and total ticks of the host.
fn host_ticks() -> (u64, u64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let cpu: Vec<u64> =
        stat.lines().next().unwrap_or("").split_whitespace().skip(1).filter_map(|f| f.parse().ok()).collect();
    let total: u64 = cpu.iter().take(8).sum();
    let idle = cpu.get(3).copied().unwrap_or(0) + cpu.get(4).copied().unwrap_or(0);
    (total - idle, total)
}

struct CpuSnapshot {
    at: Instant,
    procs: Vec<(String, u64)>,
    host: (u64, u64),
    load: String,
}

fn cpu_snapshot(watch: &[(String, String)]) -> CpuSnapshot {
    let mut procs: Vec<(String, u64)> =
        watch.iter().map(|(label, pid)| (label.clone(), ticks_of(pid, false).unwrap_or(0))).collect();
    procs.push(("postgres".into(), postgres_ticks()));
    procs.push(("loadgen".into(), ticks_of("self", false).unwrap_or(0)));
    let load = std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(",");
    CpuSnapshot { at: Instant::now(), procs, host: host_ticks(), load }
}

/// `cpu_LABEL=%` of one core for each process, and the host's busy cores.
fn cpu_report(a: &CpuSnapshot, b: &CpuSnapshot) -> String {
    let hz = 100.0; // USER_HZ on Linux
    let seconds = b.at.duration_since(a.at).as_secs_f64();
    let mut out: Vec<String> = a
        .procs
        .iter()
        .zip(&b.procs)
        .map(|((label, t0), (_, t1))| {
            format!("cpu_{label}={:.0}", 100.0 * (t1.saturating_sub(*t0)) as f64 / hz / seconds)
        })
        .collect();
    let busy = (b.host.0 - a.host.0) as f64 / (b.host.1 - a.host.1).max(1) as f64;
    out.push(format!(
        "cpu_host={:.0}",
        100.0 * busy * std::thread::available_parallelism().map_or(1, |n| n.get()) as f64
    ));
    out.push(format!("loadavg_start={} loadavg_end={}", a.load, b.load));
    out.join(" ")
}

// ---- the run ------------------------------------------------------------------------------

struct Site {
    id: String,
    token: String,
}

/// One change sent: which site and pool, the version it made, and when.
struct Change {
    site: usize,
    pool: usize,
    version: i64,
    sent: Instant,
    answered: Instant,
}

fn read_sites(path: &PathBuf) -> anyhow::Result<Vec<Site>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let sites: Vec<Site> = text
        .lines()
        .filter_map(|l| l.strip_prefix("SITE "))
        .filter_map(|l| l.split_once(' '))
        .map(|(id, token)| Site { id: id.to_string(), token: token.trim().to_string() })
        .collect();
    if sites.is_empty() {
        bail!("{} lists no `SITE <id> <token>` line", path.display());
    }
    Ok(sites)
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1]
}

fn summary(name: &str, mut values: Vec<f64>) -> String {
    values.sort_by(f64::total_cmp);
    format!(
        "{name}_p50_ms={:.1} {name}_p99_ms={:.1} {name}_max_ms={:.1} {name}_min_ms={:.1}",
        percentile(&values, 0.5),
        percentile(&values, 0.99),
        values.last().copied().unwrap_or(f64::NAN),
        values.first().copied().unwrap_or(f64::NAN)
    )
}

async fn run(args: RunArgs) -> anyhow::Result<()> {
    let sites = Arc::new(read_sites(&args.sites)?);
    let watch: Vec<(String, String)> = args
        .cpu
        .iter()
        .map(|w| w.split_once('=').map(|(l, p)| (l.to_string(), p.to_string())).context("--cpu LABEL=PID"))
        .collect::<anyhow::Result<_>>()?;
    let shared = Arc::new(Shared {
        site_pools: sites.iter().map(|_| OnceLock::new()).collect(),
        recording: AtomicBool::new(false),
        messages: AtomicU64::new(0),
        backwards: AtomicU64::new(0),
        inconsistent: AtomicU64::new(0),
        ready: AtomicUsize::new(0),
        closed: Mutex::default(),
    });

    // 1. Connect: subscriber j of each site on instance j mod instances.
    let started = Instant::now();
    let slots = Arc::new(Semaphore::new(args.connect_concurrency.max(1)));
    let mut subscribers = Vec::new();
    for j in 0..args.per_site {
        for (s, site) in sites.iter().enumerate() {
            let me = Arc::new(Subscriber { site: s, log: Mutex::default() });
            subscribers.push(me.clone());
            let url = args.urls[j % args.urls.len()].clone();
            tokio::spawn(subscribe(url, site.id.clone(), site.token.clone(), me, shared.clone(), slots.clone()));
        }
    }
    let total = subscribers.len();
    loop {
        let ready = shared.ready.load(Ordering::Relaxed);
        let closed: usize = shared.closed.lock().unwrap().values().sum();
        if closed > 0 {
            bail!("{closed} subscribers failed while connecting: {:?}", shared.closed.lock().unwrap());
        }
        if ready == total {
            break;
        }
        if started.elapsed() > Duration::from_secs(300) {
            bail!("only {ready} of {total} subscribers had their first state after 300 s");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let connect_seconds = started.elapsed().as_secs_f64();
    println!(
        "CONNECTED subscribers={total} sites={} instances={} connect_s={connect_seconds:.1}",
        sites.len(),
        args.urls.len()
    );
    std::fs::write(args.control.join("connected"), format!("{total}\n"))?;

    // 2. Wait for the go (meanwhile the script measures memory and M1 with these subscribers).
    let go = args.control.join("go");
    let waited = Instant::now();
    while !go.exists() {
        if waited.elapsed().as_secs_f64() > args.max_wait {
            bail!("no {} within {} s", go.display(), args.max_wait);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let before = shared.messages.load(Ordering::Relaxed);
    println!(
        "WAITED messages={before} backwards={} inconsistent={} closed={:?}",
        shared.backwards.load(Ordering::Relaxed),
        shared.inconsistent.load(Ordering::Relaxed),
        shared.closed.lock().unwrap()
    );

    // 3. The changes: each site's pools now, then `setPoolTotal` at a fixed rate.
    let client = reqwest::Client::builder().pool_max_idle_per_host(64).build()?;
    let url0 = &args.urls[0];
    let mut plan: Vec<Vec<(String, i64)>> = Vec::new(); // per site: (module code, total now), in the site's pool order
    for (s, site) in sites.iter().enumerate() {
        let data = post(
            &client,
            url0,
            Some(&args.operator_token),
            "query($s: ID) { licensePools(siteId: $s) { id total module { code } } }",
            json!({ "s": site.id }),
        )
        .await?;
        let ids = shared.site_pools[s].get().context("a site without its first state")?;
        let pools = data["licensePools"].as_array().context("licensePools")?;
        let mut row = Vec::new();
        for id in ids {
            let pool = pools.iter().find(|p| p["id"] == id.as_str()).context("a pool the subscription did not show")?;
            row.push((pool["module"]["code"].as_str().unwrap_or("?").to_string(), pool["total"].as_i64().unwrap_or(0)));
        }
        plan.push(row);
    }
    let count = (args.rate * args.duration).round() as usize;
    let changes: Arc<Mutex<Vec<Change>>> = Arc::default();
    let failures: Arc<Mutex<Vec<String>>> = Arc::default();
    let mut bumps: Vec<Vec<i64>> = plan.iter().map(|row| vec![0; row.len()]).collect();
    shared.recording.store(true, Ordering::Relaxed);
    let cpu0 = cpu_snapshot(&watch);
    let t0 = tokio::time::Instant::now();
    let mut tasks = Vec::with_capacity(count);
    for k in 0..count {
        let s = k % sites.len();
        let round = k / sites.len();
        let pool = round % plan[s].len();
        bumps[s][pool] += 1;
        let (module, total) = (plan[s][pool].0.clone(), plan[s][pool].1 + bumps[s][pool]);
        let url = args.urls[(k + round) % args.urls.len()].clone();
        let (client, token, site_id) = (client.clone(), args.operator_token.clone(), sites[s].id.clone());
        let (changes, failures) = (changes.clone(), failures.clone());
        let site_ids = shared.site_pools[s].get().cloned().unwrap_or_default();
        tokio::time::sleep_until(t0 + Duration::from_secs_f64(k as f64 / args.rate)).await;
        tasks.push(tokio::spawn(async move {
            let sent = Instant::now();
            let answer = post(&client, &url, Some(&token),
                "mutation($s: ID!, $m: String!, $t: Int!) { setPoolTotal(siteId: $s, module: $m, total: $t) { __typename ... on SetPoolTotalSuccess { pool { id version } } } }",
                json!({ "s": site_id, "m": module, "t": total })).await;
            let answered = Instant::now();
            let found = answer.ok().and_then(|data| {
                let pool = &data["setPoolTotal"]["pool"];
                let index = site_ids.iter().position(|id| pool["id"] == id.as_str())?;
                Some((index, pool["version"].as_i64()?))
            });
            match found {
                Some((pool, version)) => changes.lock().unwrap().push(Change { site: s, pool, version, sent, answered }),
                None => failures.lock().unwrap().push(format!("site {site_id} {module} {total}")),
            }
        }));
    }
    let scheduled_s = t0.elapsed().as_secs_f64();
    for task in tasks {
        task.await?;
    }
    let cpu1 = cpu_snapshot(&watch);

    // 4. Wait for every subscriber of a changed site to show the change (or the grace to pass).
    let changes = std::mem::take(&mut *changes.lock().unwrap());
    let by_site: Vec<Vec<&Arc<Subscriber>>> =
        (0..sites.len()).map(|s| subscribers.iter().filter(|sub| sub.site == s).collect()).collect();
    let seen = |change: &Change, sub: &Subscriber| -> Option<Instant> {
        let log = sub.log.lock().unwrap();
        let i = log.partition_point(|(_, versions)| versions[change.pool] < change.version);
        log.get(i).map(|(at, _)| *at)
    };
    let missing =
        || changes.iter().map(|c| by_site[c.site].iter().filter(|sub| seen(c, sub).is_none()).count()).sum::<usize>();
    let deadline = Instant::now() + Duration::from_secs_f64(args.grace);
    while missing() > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    shared.recording.store(false, Ordering::Relaxed);

    // 5. Report.
    let (mut from_send, mut from_answer, mut mutation) = (Vec::new(), Vec::new(), Vec::new());
    let mut expected = 0;
    for change in &changes {
        mutation.push(change.answered.duration_since(change.sent).as_secs_f64() * 1000.0);
        for sub in &by_site[change.site] {
            expected += 1;
            if let Some(at) = seen(change, sub) {
                from_send.push(at.duration_since(change.sent).as_secs_f64() * 1000.0);
                // May be negative: the message can arrive before the mutation's answer.
                let after = if at >= change.answered {
                    at.duration_since(change.answered).as_secs_f64()
                } else {
                    -change.answered.duration_since(at).as_secs_f64()
                };
                from_answer.push(after * 1000.0);
            }
        }
    }
    let delivered = from_send.len();
    let messages = shared.messages.load(Ordering::Relaxed) - before;
    println!(
        "DELIVERY subscribers={total} sites={} rate={} duration_s={} changes={} failed_changes={} scheduled_s={scheduled_s:.1} expected={expected} delivered={delivered} missing={} messages={messages} backwards={} inconsistent={} closed={}",
        sites.len(),
        args.rate,
        args.duration,
        changes.len(),
        failures.lock().unwrap().len(),
        expected - delivered,
        shared.backwards.load(Ordering::Relaxed),
        shared.inconsistent.load(Ordering::Relaxed),
        shared.closed.lock().unwrap().values().sum::<usize>(),
    );
    println!(
        "LATENCY {} {} {}",
        summary("send", from_send),
        summary("answer", from_answer),
        summary("mutation", mutation)
    );
    println!("CPU {}", cpu_report(&cpu0, &cpu1));
    if let Some(first) = failures.lock().unwrap().first() {
        println!("FIRST_FAILED_CHANGE {first}");
    }
    Ok(())
}
