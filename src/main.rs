//! The `license-gateway` binary: only wiring.

use clap::{Parser, Subcommand};

/// The server allocates many small, short-lived values per request (rows,
/// GraphQL values, JSON); mimalloc handles that with much less contention
/// and fragmentation than the system allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
use license_gateway::app::{Application, Config};
use license_gateway::graphql::ids::{Kind, encode};
use license_gateway::store::{PoolSettings, Store};

#[derive(Parser)]
#[command(name = "license-gateway", version, about = "Policy-driven GraphQL gateway for module licenses")]
struct Cli {
    #[command(flatten)]
    config: Config,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Start the server (the default).
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Print the GraphQL schema (SDL); `schema.graphql` must equal it.
    Schema,
    /// Recount every pool and profile and compare with the maintained
    /// counters; exits non-zero on any drift or over-allocation.
    Verify,
    /// Create (or replace) the benchmark site "Bench": 20 profiles, N people
    /// (80% users, about 5% deleted), pools at usage + headroom, and the
    /// administrator `bench-admin`. Deterministic; see bench/README.md.
    Generate {
        /// Number of people (N).
        #[arg(long, value_parser = clap::value_parser!(i64).range(1..=2_000_000))]
        people: i64,
        /// Free licenses per pool afterwards (total = usage + headroom).
        #[arg(long, default_value_t = 100)]
        headroom: i64,
        /// Password of `bench-admin`: 12 to 200 characters, not easy to guess (the
        /// server's password policy); random (and printed) when not given.
        #[arg(long, env = "BENCH_ADMIN_PASSWORD", hide_env_values = true)]
        admin_password: Option<String>,
        /// Write the global ids of the live generated users, one per line,
        /// to this file (what the M1 load script picks from).
        #[arg(long)]
        user_ids: Option<std::path::PathBuf>,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // A bulk load is made of slow statements; their warnings would only bury its output.
    let default_filter =
        if matches!(cli.command, Some(Command::Generate { .. })) { "info,sqlx=error" } else { "info,sqlx=warn" };
    let _logs = license_gateway::observability::logs::init(cli.config.log_format, default_filter);
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => Application::build(&cli.config).await?.run().await,
        Command::Migrate => {
            let store = Store::connect(&cli.config.database_url, &PoolSettings::tool(1)).await?;
            store.migrate().await?;
            println!("migrations applied");
            Ok(())
        }
        Command::Schema => {
            print!("{}", license_gateway::graphql::sdl());
            Ok(())
        }
        Command::Verify => {
            let store = Store::connect(&cli.config.database_url, &PoolSettings::tool(2)).await?;
            let drift =
                license_gateway::service::bootstrap::verify(&store).await.map_err(|e| anyhow::anyhow!("{e:?}"))?;
            for line in &drift.report {
                println!("{line}");
            }
            if drift.problems > 0 {
                anyhow::bail!("{} counter(s) drifted or over-allocated", drift.problems);
            }
            println!("all counters match a fresh recount");
            Ok(())
        }
        Command::Generate { people, headroom, admin_password, user_ids } => {
            let store = Store::connect(&cli.config.database_url, &PoolSettings::tool(2)).await?;
            store.migrate().await?;
            let started = std::time::Instant::now();
            let bench = license_gateway::service::bootstrap::generate_bench(
                &store,
                people,
                headroom,
                admin_password.as_deref(),
            )
            .await
            .map_err(|e| anyhow::anyhow!("generate failed: {e:?}"))?;
            let seconds = started.elapsed().as_secs_f64();
            if let Some(path) = &user_ids {
                let ids: String =
                    bench.dataset.live_logins.iter().map(|l| format!("{}\n", encode(Kind::User, l.0).0)).collect();
                std::fs::write(path, ids)?;
            }
            print_bench(&store, &bench, seconds, user_ids.as_deref()).await
        }
    }
}

/// Prints what `generate` made: a summary for people, then one `BENCH` line
/// of `key=value` fields for scripts (bench/run.sh).
async fn print_bench(
    store: &Store,
    bench: &license_gateway::service::bootstrap::BenchSite,
    seconds: f64,
    user_ids: Option<&std::path::Path>,
) -> anyhow::Result<()> {
    let d = &bench.dataset;
    let pools = store.pools_by_sites(&[d.site]).await?;
    let modules = store.modules().await?;
    let code = |m| modules.iter().find(|x| x.id == m).map(|x| x.code.as_str()).unwrap_or("?");
    println!("Generated site \"Bench\" (id {}) in {seconds:.1} s:", d.site.0);
    println!("  people: {} ({} deleted, their logins too)", d.people, d.deleted_people);
    println!(
        "  generated logins: ids {}..={} ({} live); administrator login id {}",
        d.login_ids.0.0,
        d.login_ids.1.0,
        d.live_logins.len(),
        d.admin_login.0
    );
    for pool in &pools {
        println!(
            "  pool {}: used {} of {} ({} free)",
            code(pool.module_id),
            pool.used,
            pool.total,
            pool.total - pool.used
        );
    }
    println!("  profiles (id, global id, name):");
    for (id, name, _) in &d.profiles {
        println!("    {:>6}  {}  {name}", id.0, encode(Kind::Profile, id.0).0);
    }
    if let Some(path) = user_ids {
        println!("  global ids of the live generated users written to {}", path.display());
    }
    println!("Sign in as `{}` with password `{}` (site administrator).", bench.admin_username, bench.admin_password);
    let all_modules = |codes: &Vec<String>| !modules.is_empty() && modules.iter().all(|m| codes.contains(&m.code));
    let join = |ids: Vec<i64>| ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",");
    println!(
        "BENCH site={} seconds={seconds:.1} people={} deleted={} logins={}..{} live_logins={} admin_login={} profiles={} \
         all_module_profiles={} {}",
        d.site.0,
        d.people,
        d.deleted_people,
        d.login_ids.0.0,
        d.login_ids.1.0,
        d.live_logins.len(),
        d.admin_login.0,
        join(d.profiles.iter().map(|p| p.0.0).collect()),
        join(d.profiles.iter().filter(|p| all_modules(&p.2)).map(|p| p.0.0).collect()),
        pools.iter().map(|p| format!("{}={}/{}", code(p.module_id), p.used, p.total)).collect::<Vec<_>>().join(" "),
    );
    Ok(())
}
