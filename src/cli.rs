//! The command line: `serve` (default), `migrate`, `export-schema`, `admin-token`,
//! `healthcheck`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::{Config, TokenHash};

/// The default config file when `--config` is not given.
pub const DEFAULT_CONFIG: &str = "coinstaker.toml";

/// coinstaker: the back-end of a non-custodial Verus staking pool.
#[derive(Debug, Parser)]
#[command(name = "coinstaker", version, about)]
pub struct Cli {
    /// The configuration file (default: ./coinstaker.toml).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// What to do (default: serve).
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the pool: follow the chains, serve the API (the default).
    Serve,
    /// Run the pool on SQLite against an in-process simulated chain, to try it out.
    Demo {
        /// Seconds between simulated blocks.
        #[arg(long, default_value_t = 1.0, value_name = "SECS")]
        block_interval: f64,
    },
    /// Apply pending database migrations and exit.
    Migrate,
    /// Print the GraphQL schema (SDL); `schema.graphql` is this output.
    ExportSchema,
    /// Print a new admin token and the SHA-256 hash to put in `http.admin_token_sha256`.
    AdminToken,
    /// Ask the running server's /healthz; exit 0 when healthy (for container health checks).
    Healthcheck,
}

/// Logs through `env_logger`: `RUST_LOG` decides, default `info` with quiet SQL drivers.
pub fn init_logging() {
    env_logger::Builder::from_env(
        env_logger::Env::default().default_filter_or("info,sqlx=warn,sea_orm=warn"),
    )
    .init();
}

/// The config file to read, or a message saying how to get one.
pub fn config_path(explicit: Option<&Path>) -> Result<PathBuf, String> {
    match explicit {
        Some(path) => Ok(path.to_owned()),
        None if Path::new(DEFAULT_CONFIG).exists() => Ok(PathBuf::from(DEFAULT_CONFIG)),
        None => Err(format!(
            "no configuration: pass --config FILE, or create ./{DEFAULT_CONFIG} (copy config.example.toml and fill in your \
             daemon and pool addresses).\nTo try coinstaker without a Verus node, run `coinstaker demo`."
        )),
    }
}

fn load_config(explicit: Option<&Path>) -> Result<Config, String> {
    let path = config_path(explicit)?;
    Config::load(&path, std::env::vars()).map_err(|e| e.to_string())
}

/// Runs the command line; returns the process's exit code.
pub async fn run(cli: Cli) -> ExitCode {
    let config_arg = cli.config.as_deref();
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => match load_config(config_arg) {
            Err(msg) => fail(&msg, 2),
            Ok(config) => match crate::startup::Application::build(config).await {
                Ok(app) => match app.run().await {
                    Ok(()) => ExitCode::SUCCESS,
                    Err(e) => fail(&format!("server error: {e}"), 1),
                },
                Err(e) => fail(&format!("{e:#}"), 1),
            },
        },
        Command::Demo { block_interval } => {
            if !(block_interval.is_finite() && block_interval > 0.0) {
                return fail("--block-interval must be a positive number of seconds", 2);
            }
            let options = crate::demo::DemoOptions {
                block_interval: std::time::Duration::from_secs_f64(block_interval),
            };
            match crate::demo::run(options).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => fail(&format!("{e:#}"), 1),
            }
        }
        Command::Migrate => match load_config(config_arg) {
            Err(msg) => fail(&msg, 2),
            Ok(config) => match migrate(&config).await {
                Ok(()) => {
                    println!("migrations applied to {}", config.database.url);
                    ExitCode::SUCCESS
                }
                Err(e) => fail(&format!("{e:#}"), 1),
            },
        },
        Command::ExportSchema => {
            print!("{}", crate::graphql::export_sdl());
            ExitCode::SUCCESS
        }
        Command::AdminToken => match new_token() {
            Ok(token) => {
                println!("token:  {token}");
                println!("sha256: {}", TokenHash::of_token(&token));
                println!();
                println!(
                    "Put the sha256 line in [http] admin_token_sha256 of the config; keep the token secret and send it as"
                );
                println!("  Authorization: Bearer {token}");
                ExitCode::SUCCESS
            }
            Err(e) => fail(&format!("cannot draw random bytes: {e}"), 1),
        },
        Command::Healthcheck => match load_config(config_arg) {
            Err(msg) => fail(&msg, 2),
            Ok(config) => healthcheck(&config).await,
        },
    }
}

fn fail(message: &str, code: u8) -> ExitCode {
    eprintln!("coinstaker: {message}");
    ExitCode::from(code)
}

async fn migrate(config: &Config) -> anyhow::Result<()> {
    use anyhow::Context as _;
    let db = crate::store::connect(&config.database)
        .await
        .with_context(|| format!("cannot connect to {}", config.database.url))?;
    crate::store::migrate(&db)
        .await
        .context("migration failed")?;
    Ok(())
}

/// 32 random bytes as 64 hex digits.
fn new_token() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

async fn healthcheck(config: &Config) -> ExitCode {
    let mut addr = config.http.bind;
    if addr.ip().is_unspecified() {
        addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    let url = format!("http://{addr}/healthz");
    let client = match crate::net::client_builder()
        .timeout(std::time::Duration::from_secs(5))
        .build()
    {
        Ok(c) => c,
        Err(e) => return fail(&format!("cannot build an HTTP client: {e}"), 1),
    };
    match client.get(&url).send().await {
        Ok(resp) => {
            let healthy = resp.status().is_success();
            println!("{}", resp.text().await.unwrap_or_default());
            if healthy {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(e) => fail(&format!("{url}: {e}"), 1),
    }
}
