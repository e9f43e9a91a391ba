//! The `license-gateway` binary: only wiring.

use clap::{Parser, Subcommand};
use license_gateway::app::{Application, Config};
use license_gateway::store::Store;

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
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info,sqlx=warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => Application::build(&cli.config).await?.run().await,
        Command::Migrate => {
            let store = Store::connect(&cli.config.database_url, 1).await?;
            store.migrate().await?;
            println!("migrations applied");
            Ok(())
        }
        Command::Schema => {
            print!("{}", license_gateway::graphql::sdl());
            Ok(())
        }
        Command::Verify => {
            let store = Store::connect(&cli.config.database_url, 2).await?;
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
    }
}
