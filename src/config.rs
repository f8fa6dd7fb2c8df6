//! Configuration: defaults → TOML file → `COINSTAKER_<SECTION>__<KEY>` environment variables.
//!
//! Unknown keys are refused, every value is parsed into its domain type at load, and every
//! error says which key is wrong and how to fix it. Secrets (RPC passwords, database
//! passwords) never appear in `Debug` output or logs.

use std::collections::HashSet;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::domain::{Conditions, FeeRate, IdentityAddress, PoolSettings, RAddress, Sats};

/// The whole configuration of one coinstaker process.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where the pool keeps its books.
    #[serde(default)]
    pub database: DatabaseConfig,
    /// The HTTP/GraphQL server.
    #[serde(default)]
    pub http: HttpConfig,
    /// One section per chain the pool stakes on; at least one.
    #[serde(rename = "chain", default)]
    pub chains: Vec<ChainConfig>,
    /// How events reach live listeners.
    #[serde(default)]
    pub notifier: NotifierConfig,
    /// Endpoints that receive every event as a signed POST.
    #[serde(rename = "webhook", default)]
    pub webhooks: Vec<WebhookConfig>,
    /// More than one instance on one database.
    #[serde(default)]
    pub cluster: ClusterConfig,
    /// Which CPUs the chain's actors and the API run on.
    #[serde(default)]
    pub affinity: AffinityConfig,
}

/// `[affinity]`: on a small machine that runs the pool, keep a CPU for the chain's actors.
#[derive(Debug, Clone, Deserialize, Default, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct AffinityConfig {
    /// The CPU (numbered from 0, as in `/proc/cpuinfo`) that the chain's actors and their
    /// database connections keep for themselves; the HTTP workers and the API's database
    /// connections run on the others. Omitted: no CPU is kept (the kernel places every
    /// thread). Linux only; ignored with a warning where it cannot apply.
    #[serde(default)]
    pub actors_cpu: Option<usize>,
}

/// `[cluster]`: instances sharing one PostgreSQL or MySQL database. Each chain is followed and
/// paid by the one instance holding its lease; the others serve the API and take over when
/// the leader's lease runs out.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ClusterConfig {
    /// This instance's name, unique among the instances (default: `<hostname>:<port>`). An
    /// instance restarted under the same name takes its lease back at once.
    #[serde(default)]
    pub instance: Option<String>,
    /// The URL where this instance's API is reached, named to clients by followers
    /// (default: `http://<http.bind>`).
    #[serde(default)]
    pub advertise_url: Option<String>,
    /// Seconds without a renewal after which a follower takes a lease over (renewed every
    /// third of it); default 15.
    #[serde(default)]
    pub lease_secs: Option<u64>,
}

impl ClusterConfig {
    /// The lease duration.
    pub fn lease(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.lease_secs.unwrap_or(15))
    }
}

/// `[notifier]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifierConfig {
    /// Events a live listener may fall behind before it is told to resume from its cursor.
    #[serde(default = "default_notifier_buffer")]
    pub buffer: usize,
    /// Milliseconds between reads of the event log.
    #[serde(default = "default_notifier_poll_ms")]
    pub poll_interval_ms: u64,
}

impl Default for NotifierConfig {
    fn default() -> Self {
        NotifierConfig {
            buffer: default_notifier_buffer(),
            poll_interval_ms: default_notifier_poll_ms(),
        }
    }
}

fn default_notifier_buffer() -> usize {
    1024
}
fn default_notifier_poll_ms() -> u64 {
    200
}

/// `[[webhook]]`: one endpoint that receives events as signed POSTs.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// A unique name; the delivery state is kept under it (renaming starts afresh).
    pub name: String,
    /// Where to POST (`http://` or `https://`).
    pub url: String,
    /// The HMAC-SHA256 key of the `X-Coinstaker-Signature` header (at least 16 characters).
    pub secret: Secret,
    /// Only these kinds (`STAKE_FOUND`, …); empty = every kind.
    #[serde(default)]
    pub kinds: Vec<String>,
    /// Only this chain; omitted = every chain.
    #[serde(default)]
    pub chain: Option<String>,
    /// Seconds to wait for the receiver's answer.
    #[serde(default = "default_webhook_timeout")]
    pub timeout_secs: u64,
    /// The longest wait between two attempts (the wait doubles from 1 s up to this).
    #[serde(default = "default_webhook_max_backoff")]
    pub max_backoff_secs: u64,
}

fn default_webhook_timeout() -> u64 {
    10
}
fn default_webhook_max_backoff() -> u64 {
    300
}

/// `[database]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseConfig {
    /// `sqlite://…?mode=rwc`, `postgres://…` or `mysql://…`.
    #[serde(default = "default_database_url")]
    pub url: DatabaseUrl,
    /// Size of each connection pool (the chain's actors and the API have one each).
    #[serde(default = "default_max_connections")]
    pub max_connections: u32,
    /// Log every SQL statement with its duration (target `sqlx::query`, level info): for
    /// finding where a block's time goes, not for production.
    #[serde(default)]
    pub log_statements: bool,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        DatabaseConfig {
            url: default_database_url(),
            max_connections: default_max_connections(),
            log_statements: false,
        }
    }
}

fn default_database_url() -> DatabaseUrl {
    DatabaseUrl("sqlite://coinstaker.db?mode=rwc".to_owned())
}
fn default_max_connections() -> u32 {
    10
}

/// `[http]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// Address and port to listen on.
    #[serde(default = "default_bind")]
    pub bind: SocketAddr,
    /// Serve GraphiQL at `/graphiql`.
    #[serde(default = "default_true")]
    pub graphiql: bool,
    /// Serve the built-in dashboard at `/`.
    #[serde(default = "default_true")]
    pub dashboard: bool,
    /// Serve the dashboard's files from this directory instead of the copies built into the
    /// binary (to work on the page without rebuilding).
    #[serde(default)]
    pub dashboard_dir: Option<PathBuf>,
    /// SHA-256 hashes (lowercase hex) of the admin tokens; `coinstaker admin-token` makes one.
    #[serde(default)]
    pub admin_token_sha256: Vec<TokenHash>,
    /// The largest request body accepted on `POST /graphql`, in bytes.
    #[serde(default = "default_max_body_bytes")]
    pub max_body_bytes: usize,
    /// The most a query may cost (each field 1, a page of `first` items `first` times its
    /// fields).
    #[serde(default = "default_max_complexity")]
    pub max_complexity: usize,
    /// Origins allowed to call the API from a browser (`["*"]` = any); empty = no CORS headers.
    #[serde(default)]
    pub cors_allowed_origins: Vec<String>,
    /// Costly operations one client address may run per minute (each mutation field, each
    /// `checkIdentity`: they write or call the daemon); 0 = no limit.
    #[serde(default = "default_mutation_rate")]
    pub mutation_rate_per_minute: u32,
    /// The most operations one batched `POST /graphql` may hold (a larger batch is refused
    /// whole); the operations of a batch share one `max_complexity` budget.
    #[serde(default = "default_max_batch")]
    pub max_batch: usize,
    /// Reverse proxies whose `X-Forwarded-For` / `Forwarded` headers name the client; from
    /// any other peer those headers are ignored.
    #[serde(default)]
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// Open GraphQL WebSocket connections per client address.
    #[serde(default = "default_max_ws_per_address")]
    pub max_ws_connections_per_address: usize,
    /// Subscriptions running at once on one WebSocket connection.
    #[serde(default = "default_max_subscriptions")]
    pub max_subscriptions_per_connection: usize,
    /// Daemon calls made for API clients (`checkIdentity`, `subscribe`) at once; more wait
    /// up to 5 s, then get `UNAVAILABLE`. The chain follower's own calls never wait for them
    /// in the pool, and at the daemon the default (2) leaves half of verusd's default
    /// `-rpcthreads` (4) to them: with 4, a flood of `checkIdentity` made the next block's
    /// `getblock` wait up to 35 ms (BENCHMARKS.md, tenth round).
    #[serde(default = "default_client_rpc_slots")]
    pub client_rpc_slots: usize,
    /// GraphQL requests (`POST /graphql`) executed at once; more wait up to
    /// `execution_wait_secs` in arrival order, then get HTTP 503 with `UNAVAILABLE`. A
    /// request waiting for the daemon (`checkIdentity`, `subscribe`) gives its turn back
    /// meanwhile. Bounds the memory and CPU that clients
    /// can take from the chain's work. Default: one less than the CPUs the process may use,
    /// at least 1 (1 on 2 cores: BENCHMARKS.md, thirteenth round).
    #[serde(default = "default_max_concurrent_requests")]
    pub max_concurrent_requests: usize,
    /// How long, in seconds, a GraphQL request waits for its turn among
    /// `max_concurrent_requests` (or to take it back after a daemon call) before
    /// `UNAVAILABLE`.
    #[serde(default = "default_execution_wait_secs")]
    pub execution_wait_secs: u64,
    /// How many nice steps the HTTP worker threads lower their CPU priority by (Linux; 0 =
    /// not at all), so that a busy API never slows the chain's actors.
    #[serde(default = "default_worker_nice")]
    pub worker_nice: u8,
    /// How long, at most, a new API request (GraphQL, a statement export, a daemon call for a
    /// client) waits while the pool processes a block at the daemon's tip, so that clients
    /// never compete with a live block (`src/gate.rs`); 0 = not at all.
    #[serde(default = "default_yield_to_blocks_ms")]
    pub yield_to_blocks_ms: u64,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            bind: default_bind(),
            graphiql: true,
            dashboard: true,
            dashboard_dir: None,
            admin_token_sha256: Vec::new(),
            max_body_bytes: default_max_body_bytes(),
            max_complexity: default_max_complexity(),
            cors_allowed_origins: Vec::new(),
            mutation_rate_per_minute: default_mutation_rate(),
            max_batch: default_max_batch(),
            trusted_proxies: Vec::new(),
            max_ws_connections_per_address: default_max_ws_per_address(),
            max_subscriptions_per_connection: default_max_subscriptions(),
            client_rpc_slots: default_client_rpc_slots(),
            max_concurrent_requests: default_max_concurrent_requests(),
            execution_wait_secs: default_execution_wait_secs(),
            worker_nice: default_worker_nice(),
            yield_to_blocks_ms: default_yield_to_blocks_ms(),
        }
    }
}

fn default_max_body_bytes() -> usize {
    256 * 1024
}
fn default_max_complexity() -> usize {
    20_000
}
fn default_mutation_rate() -> u32 {
    60
}
fn default_max_batch() -> usize {
    10
}
fn default_max_ws_per_address() -> usize {
    16
}
fn default_max_subscriptions() -> usize {
    32
}
fn default_client_rpc_slots() -> usize {
    2
}
fn default_max_concurrent_requests() -> usize {
    // Requests are answered by CPU work (and the database's); more at once than there are
    // CPUs to spare only interleaves them, and what is running when a block arrives
    // competes with it.
    std::thread::available_parallelism()
        .map_or(1, |n| n.get().saturating_sub(1))
        .max(1)
}
fn default_execution_wait_secs() -> u64 {
    10
}
fn default_worker_nice() -> u8 {
    10
}
fn default_yield_to_blocks_ms() -> u64 {
    250
}

fn default_bind() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8080))
}
fn default_true() -> bool {
    true
}

/// `[[chain]]`: one chain the pool stakes on.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChainConfig {
    /// Currency name (`VRSC`, `vrsctest`, a PBaaS chain); unique, case-insensitive.
    pub name: String,
    /// verusd's JSON-RPC endpoint; omitted = `http://127.0.0.1:<rpcport>` with `rpcport` from
    /// `conf_file`, else 27486 (VRSC mainnet).
    #[serde(default)]
    pub rpc_url: Option<String>,
    /// RPC user (or take it from `conf_file` / the `.cookie` file).
    #[serde(default)]
    pub rpc_user: Option<String>,
    /// RPC password.
    #[serde(default)]
    pub rpc_password: Option<Secret>,
    /// verusd's configuration file (`VRSC.conf`) to read `rpcuser`, `rpcpassword`, `rpcport` from.
    #[serde(default)]
    pub conf_file: Option<PathBuf>,
    /// verusd's `.cookie` file, used when no password is configured.
    #[serde(default)]
    pub cookie_file: Option<PathBuf>,
    /// verusd's `-zmqpubhashblock` endpoint; without it the pool polls only.
    #[serde(default)]
    pub zmq_block_url: Option<String>,
    /// Seconds between `getblockcount` polls (the fallback when ZMQ is silent).
    #[serde(default = "default_poll_interval")]
    pub poll_interval_secs: u64,
    /// The pool's VerusID: receives stake rewards (verusd `-defaultid`) and pays.
    pub pool_identity: IdentityAddress,
    /// The R-address subscribers add to their identity's primary addresses.
    pub pool_primary_address: RAddress,
    /// The pool's fee in percent, at most 4 decimals.
    #[serde(default = "default_fee")]
    pub fee_percent: FeeRate,
    /// Default minimum payout in coins.
    #[serde(default = "default_min_payout")]
    pub min_payout: Sats,
    /// Confirmations before a stake is mature and split (≥ the coinbase maturity).
    #[serde(default = "default_maturity")]
    pub maturity: u32,
    /// The chain's coinbase maturity (100–149); `None`: derived from the daemon at start.
    #[serde(default)]
    pub coinbase_maturity: Option<u32>,
    /// Seconds between payout cycles.
    #[serde(default = "default_payout_interval")]
    pub payout_interval_secs: u64,
    /// Outputs per `sendcurrency` batch.
    #[serde(default = "default_max_outputs")]
    pub max_outputs_per_payment: u32,
    /// Blocks after planning before a payment with no trace is declared failed (≥ 25).
    #[serde(default = "default_payment_timeout")]
    pub payment_timeout_blocks: u32,
    /// Confirmations before a payment is CONFIRMED.
    #[serde(default = "default_payment_confirmations")]
    pub payment_confirmations: u32,
    /// Dust floor for one payment output, in coins.
    #[serde(default = "default_min_output")]
    pub min_output: Sats,
    /// First height the pool processes; omitted = the tip when the pool first starts.
    #[serde(default)]
    pub start_height: Option<u32>,
    /// Conditions an identity must meet to be a subscriber.
    #[serde(default)]
    pub conditions: Conditions,
}

fn default_poll_interval() -> u64 {
    5
}
fn default_fee() -> FeeRate {
    FeeRate::from_ppm(50_000).unwrap_or_default()
}
fn default_min_payout() -> Sats {
    Sats::coins(1)
}
fn default_maturity() -> u32 {
    150
}
fn default_payout_interval() -> u64 {
    3600
}
fn default_max_outputs() -> u32 {
    50
}
fn default_payment_timeout() -> u32 {
    40
}
fn default_payment_confirmations() -> u32 {
    10
}
fn default_min_output() -> Sats {
    Sats(10_000)
}

/// The protocol's maximum number of primary addresses (`CPrincipal::IsValid`).
pub const MAX_PRIMARY_ADDRESSES: u32 = 25;
/// The chain's coinbase maturity on VRSC; the pool never waits less.
pub const MIN_MATURITY: u32 = crate::domain::chain::COINBASE_MATURITY as u32;
/// Wallet transactions expire after 20 blocks; a payment needs some margin beyond that.
pub const MIN_PAYMENT_TIMEOUT_BLOCKS: u32 = 25;
/// verusd's `MAX_UNLOCK_DELAY`.
pub const MAX_UNLOCK_DELAY: u32 = 60 * 24 * 22 * 365;

/// A secret string: shown as `***` in `Debug`, never logged.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(s: impl Into<String>) -> Secret {
        Secret(s.into())
    }
    /// The secret itself, for the one place that must send it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"***\"")
    }
}

/// A database URL whose password is hidden in `Debug` and `Display`.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct DatabaseUrl(String);

impl DatabaseUrl {
    /// Wraps a URL.
    pub fn new(url: impl Into<String>) -> DatabaseUrl {
        DatabaseUrl(url.into())
    }
    /// The URL with its password, for the database driver only.
    pub fn expose(&self) -> &str {
        &self.0
    }
    /// The URL with the password replaced by `***`.
    pub fn redacted(&self) -> String {
        let url = &self.0;
        let Some(scheme_end) = url.find("://").map(|i| i + 3) else {
            return url.clone();
        };
        let authority_end = url[scheme_end..]
            .find('/')
            .map_or(url.len(), |i| scheme_end + i);
        let authority = &url[scheme_end..authority_end];
        match (authority.rfind('@'), authority.find(':')) {
            (Some(at), Some(colon)) if colon < at => format!(
                "{}{}:***{}",
                &url[..scheme_end],
                &authority[..colon],
                &url[scheme_end + at..]
            ),
            _ => url.clone(),
        }
    }
    /// Which database server the URL names.
    pub fn backend(&self) -> &'static str {
        match self.0.split_once(':').map(|(s, _)| s) {
            Some("sqlite") => "sqlite",
            Some("postgres" | "postgresql") => "postgres",
            Some("mysql" | "mariadb") => "mysql",
            _ => "unknown",
        }
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.redacted())
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

/// The SHA-256 of an admin token: 64 lowercase hex digits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenHash([u8; 32]);

impl TokenHash {
    /// Parses 64 lowercase hex digits.
    pub fn parse(text: &str) -> Result<TokenHash, String> {
        let bytes = text.as_bytes();
        if bytes.len() != 64 || !bytes.iter().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(format!(
                "{text:?} is not a SHA-256 hash (64 lowercase hex digits); run `coinstaker admin-token` to make a token and its hash"
            ));
        }
        let mut out = [0u8; 32];
        for (i, pair) in bytes.chunks(2).enumerate() {
            let hex = |b: u8| {
                if b.is_ascii_digit() {
                    b - b'0'
                } else {
                    b - b'a' + 10
                }
            };
            out[i] = hex(pair[0]) << 4 | hex(pair[1]);
        }
        Ok(TokenHash(out))
    }

    /// The hash of a token.
    pub fn of_token(token: &str) -> TokenHash {
        use sha2::Digest;
        TokenHash(sha2::Sha256::digest(token.as_bytes()).into())
    }

    /// The raw hash.
    pub fn bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Display for TokenHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl<'de> Deserialize<'de> for TokenHash {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        TokenHash::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// A configuration that cannot be used, with what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file cannot be read.
    #[error("cannot read the config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Not TOML, an unknown key, or a value of the wrong form (the message names the key and line).
    #[error("config file {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong, from the TOML parser and our types.
        message: String,
    },
    /// An environment override that does not fit.
    #[error("environment variable {var}: {message}")]
    Env {
        /// The variable.
        var: String,
        /// What is wrong.
        message: String,
    },
    /// A value that parses but is not allowed.
    #[error("config file {path}: {key}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The key, e.g. `chain "VRSC".maturity`.
        key: String,
        /// What is wrong and how to fix it.
        message: String,
    },
}

/// The prefix of environment overrides.
pub const ENV_PREFIX: &str = "COINSTAKER_";

impl Config {
    /// Reads `path`, applies the `COINSTAKER_…` overrides among `env`, and validates.
    pub fn load(
        path: &Path,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Config::from_toml(&text, path, env)
    }

    /// As [`Config::load`], from text already read; `path` is named in messages.
    pub fn from_toml(
        text: &str,
        path: &Path,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let parse_err = |e: toml::de::Error| ConfigError::Parse {
            path: path.to_owned(),
            message: e.to_string().trim_end().to_owned(),
        };
        // First the file alone, so that its errors point at a line.
        let from_file: Config = toml::from_str(text).map_err(parse_err)?;
        let overrides: Vec<(String, String)> = env
            .into_iter()
            .filter(|(k, _)| k.starts_with(ENV_PREFIX) && k.contains("__"))
            .collect();
        let config = if overrides.is_empty() {
            from_file
        } else {
            let mut table: toml::Table = toml::from_str(text).map_err(parse_err)?;
            let mut names = Vec::new();
            for (var, value) in &overrides {
                apply_override(&mut table, var, value)?;
                names.push(var.as_str());
            }
            Config::deserialize(table).map_err(|e| ConfigError::Env {
                var: names.join(", "),
                message: e.to_string().trim_end().to_owned(),
            })?
        };
        config.validate(path)?;
        Ok(config)
    }

    fn validate(&self, path: &Path) -> Result<(), ConfigError> {
        let invalid = |key: String, message: String| ConfigError::Invalid {
            path: path.to_owned(),
            key,
            message,
        };
        if self.chains.is_empty() {
            return Err(invalid(
                "[[chain]]".into(),
                "no chain is configured; add a [[chain]] section (see config.example.toml)".into(),
            ));
        }
        if self.database.max_connections == 0 {
            return Err(invalid(
                "database.max_connections".into(),
                "must be at least 1".into(),
            ));
        }
        if self.database.url.backend() == "unknown" {
            return Err(invalid(
                "database.url".into(),
                format!(
                    "{} is not a database URL coinstaker can use; write sqlite://FILE?mode=rwc, postgres://USER:PASSWORD@HOST/DB or mysql://USER:PASSWORD@HOST/DB",
                    self.database.url
                ),
            ));
        }
        if self.http.max_body_bytes < 1024 {
            return Err(invalid(
                "http.max_body_bytes".into(),
                "must be at least 1024 (default 262144)".into(),
            ));
        }
        if self.http.max_complexity < 100 {
            return Err(invalid(
                "http.max_complexity".into(),
                "must be at least 100 (default 20000)".into(),
            ));
        }
        for (key, value, default) in [
            ("http.max_batch", self.http.max_batch, default_max_batch()),
            (
                "http.max_ws_connections_per_address",
                self.http.max_ws_connections_per_address,
                default_max_ws_per_address(),
            ),
            (
                "http.max_subscriptions_per_connection",
                self.http.max_subscriptions_per_connection,
                default_max_subscriptions(),
            ),
            (
                "http.client_rpc_slots",
                self.http.client_rpc_slots,
                default_client_rpc_slots(),
            ),
            (
                "http.max_concurrent_requests",
                self.http.max_concurrent_requests,
                default_max_concurrent_requests(),
            ),
        ] {
            if value == 0 {
                return Err(invalid(
                    key.into(),
                    format!("must be at least 1 (default {default})"),
                ));
            }
        }
        if self.http.execution_wait_secs == 0 {
            return Err(invalid(
                "http.execution_wait_secs".into(),
                format!(
                    "must be at least 1 (default {})",
                    default_execution_wait_secs()
                ),
            ));
        }
        for origin in &self.http.cors_allowed_origins {
            if origin != "*" && !(origin.starts_with("http://") || origin.starts_with("https://")) {
                return Err(invalid(
                    "http.cors_allowed_origins".into(),
                    format!(
                        "{origin:?} is not an origin; write e.g. \"https://dashboard.example.com\" or \"*\""
                    ),
                ));
            }
        }
        if self.notifier.buffer == 0 || self.notifier.poll_interval_ms == 0 {
            return Err(invalid(
                "notifier".into(),
                "buffer and poll_interval_ms must be at least 1 (defaults 1024 and 200)".into(),
            ));
        }
        if self
            .cluster
            .lease_secs
            .is_some_and(|s| !(3..=3600).contains(&s))
        {
            return Err(invalid(
                "cluster.lease_secs".into(),
                "must be between 3 and 3600 seconds (default 15)".into(),
            ));
        }
        if self
            .cluster
            .instance
            .as_ref()
            .is_some_and(|i| i.is_empty() || i.len() > 128)
        {
            return Err(invalid(
                "cluster.instance".into(),
                "an instance name has 1 to 128 characters".into(),
            ));
        }
        let mut names = HashSet::new();
        for hook in &self.webhooks {
            let key = |k: &str| format!("webhook {:?}.{k}", hook.name);
            if hook.name.is_empty() || hook.name.len() > 64 || !names.insert(hook.name.clone()) {
                return Err(invalid(
                    key("name"),
                    "every [[webhook]] needs a unique name of 1 to 64 characters".into(),
                ));
            }
            if !(hook.url.starts_with("http://") || hook.url.starts_with("https://"))
                || reqwest::Url::parse(&hook.url).is_err()
            {
                return Err(invalid(
                    key("url"),
                    format!("{:?} is not an http:// or https:// URL", hook.url),
                ));
            }
            if hook.secret.expose().len() < 16 {
                return Err(invalid(
                    key("secret"),
                    "must be at least 16 characters (e.g. the output of `openssl rand -hex 32`)"
                        .into(),
                ));
            }
            for kind in &hook.kinds {
                if crate::domain::EventKind::parse(kind).is_none() {
                    return Err(invalid(
                        key("kinds"),
                        format!(
                            "{kind:?} is not an event kind; use {}",
                            crate::domain::EventKind::ALL
                                .iter()
                                .map(|k| k.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    ));
                }
            }
            if let Some(chain) = &hook.chain
                && self.chain(chain).is_none()
            {
                return Err(invalid(
                    key("chain"),
                    format!("no [[chain]] is named {chain:?}"),
                ));
            }
            if hook.timeout_secs == 0 || hook.max_backoff_secs == 0 {
                return Err(invalid(
                    key("timeout_secs"),
                    "timeout_secs and max_backoff_secs must be at least 1".into(),
                ));
            }
        }
        let mut seen = HashSet::new();
        for chain in &self.chains {
            let key = |k: &str| format!("chain {:?}.{k}", chain.name);
            if chain.name.is_empty()
                || !chain
                    .name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
            {
                return Err(invalid(
                    key("name"),
                    "must be the chain's currency name, e.g. \"VRSC\" or \"vrsctest\" (letters, digits, '-', '_', '.')".into(),
                ));
            }
            if !seen.insert(chain.name.to_ascii_lowercase()) {
                return Err(invalid(
                    key("name"),
                    "two [[chain]] sections have this name; chain names are case-insensitive and must be unique".into(),
                ));
            }
            if let Some(url) = &chain.rpc_url
                && (!(url.starts_with("http://") || url.starts_with("https://"))
                    || reqwest::Url::parse(url).is_err())
            {
                return Err(invalid(
                    key("rpc_url"),
                    format!("{url:?} is not an http:// URL; write e.g. \"http://127.0.0.1:27486\""),
                ));
            }
            if chain.rpc_user.is_some() != chain.rpc_password.is_some() {
                return Err(invalid(
                    key("rpc_user"),
                    "set both rpc_user and rpc_password, or neither (then conf_file or cookie_file is used)".into(),
                ));
            }
            if let Some(url) = &chain.zmq_block_url
                && !(url.starts_with("tcp://") || url.starts_with("ipc://"))
            {
                return Err(invalid(
                    key("zmq_block_url"),
                    format!(
                        "{url:?} is not a ZeroMQ endpoint; write it as in verusd's -zmqpubhashblock, e.g. \"tcp://127.0.0.1:28332\""
                    ),
                ));
            }
            if chain.poll_interval_secs == 0 {
                return Err(invalid(
                    key("poll_interval_secs"),
                    "must be at least 1".into(),
                ));
            }
            if chain.maturity < MIN_MATURITY {
                return Err(invalid(
                    key("maturity"),
                    format!(
                        "{} is below the chain's coinbase maturity; rewards can still be orphaned or taken by StakeGuard before {MIN_MATURITY} confirmations. Set maturity = 150 (the default) or at least {MIN_MATURITY}",
                        chain.maturity
                    ),
                ));
            }
            if let Some(c) = chain.coinbase_maturity {
                let max = crate::domain::chain::MAX_COINBASE_MATURITY as u32;
                if !(MIN_MATURITY..=max).contains(&c) {
                    return Err(invalid(
                        key("coinbase_maturity"),
                        format!(
                            "{c} is not a Verus coinbase maturity: it is {MIN_MATURITY} to {max} blocks (100 on VRSC); omit it to take it from the daemon"
                        ),
                    ));
                }
                if chain.maturity < c {
                    return Err(invalid(
                        key("maturity"),
                        format!(
                            "{} is below the chain's coinbase maturity {c}; rewards can still be orphaned or taken by StakeGuard before it. Set maturity to at least {c}",
                            chain.maturity
                        ),
                    ));
                }
            }
            if chain.payment_timeout_blocks < MIN_PAYMENT_TIMEOUT_BLOCKS {
                return Err(invalid(
                    key("payment_timeout_blocks"),
                    format!(
                        "{} is too short: wallet transactions expire only after 20 blocks; set at least {MIN_PAYMENT_TIMEOUT_BLOCKS} (default 40)",
                        chain.payment_timeout_blocks
                    ),
                ));
            }
            if chain.max_outputs_per_payment == 0 {
                return Err(invalid(
                    key("max_outputs_per_payment"),
                    "must be at least 1 (default 50)".into(),
                ));
            }
            if chain.payment_confirmations == 0 {
                return Err(invalid(
                    key("payment_confirmations"),
                    "must be at least 1 (default 10)".into(),
                ));
            }
            if chain.payout_interval_secs == 0 {
                return Err(invalid(
                    key("payout_interval_secs"),
                    "must be at least 1 (default 3600)".into(),
                ));
            }
            if chain.min_output.0 <= 0 {
                return Err(invalid(
                    key("min_output"),
                    "must be above zero (default \"0.0001\")".into(),
                ));
            }
            let c = &chain.conditions;
            if c.max_primary_addresses == 0 || c.max_primary_addresses > MAX_PRIMARY_ADDRESSES {
                return Err(invalid(
                    key("conditions.max_primary_addresses"),
                    format!(
                        "{} is outside 1–{MAX_PRIMARY_ADDRESSES}: an identity can have at most {MAX_PRIMARY_ADDRESSES} primary addresses (and needs the pool's); set a value from 2 to {MAX_PRIMARY_ADDRESSES}",
                        c.max_primary_addresses
                    ),
                ));
            }
            if c.min_unlock_delay > MAX_UNLOCK_DELAY {
                return Err(invalid(
                    key("conditions.min_unlock_delay"),
                    format!(
                        "{} blocks is beyond verusd's maximum unlock delay of {MAX_UNLOCK_DELAY} blocks",
                        c.min_unlock_delay
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The chain with this name (case-insensitive).
    pub fn chain(&self, name: &str) -> Option<&ChainConfig> {
        self.chains
            .iter()
            .find(|c| c.name.eq_ignore_ascii_case(name))
    }
}

impl ChainConfig {
    /// The settings this file asks for (an admin may have changed them since; see `store::settings`).
    pub fn settings(&self) -> PoolSettings {
        PoolSettings {
            fee: self.fee_percent,
            min_payout: self.min_payout,
            conditions: self.conditions.clone(),
        }
    }

    /// Warnings an operator should see at start: settings that let the pool's key move coins.
    pub fn custody_warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.conditions.min_unlock_delay == 0 {
            out.push(format!(
                "chain {}: conditions.min_unlock_delay = 0: subscribers need no delay lock, so the pool's key could move their coins at once. Recommended: 1440",
                self.name
            ));
        }
        if !self.conditions.require_separate_revoke_recover {
            out.push(format!(
                "chain {}: conditions.require_separate_revoke_recover = false: a subscriber whose identity revokes or recovers itself cannot defend against a stolen primary key, the pool's included. Recommended: true",
                self.name
            ));
        }
        out
    }
}

/// Sets one `COINSTAKER_…` variable in the parsed file.
fn apply_override(table: &mut toml::Table, var: &str, value: &str) -> Result<(), ConfigError> {
    let env_err = |message: String| ConfigError::Env {
        var: var.to_owned(),
        message,
    };
    let rest = &var[ENV_PREFIX.len()..];
    let parts: Vec<&str> = rest.split("__").collect();
    if parts.iter().any(|p| p.is_empty()) {
        return Err(env_err(
            "write COINSTAKER_<SECTION>__<KEY>, e.g. COINSTAKER_HTTP__BIND".into(),
        ));
    }
    // `[[chain]]` and `[[webhook]]` entries are addressed by their name.
    let array = ["chain", "webhook"]
        .into_iter()
        .find(|a| parts[0].eq_ignore_ascii_case(a));
    let (mut target, path): (&mut toml::Table, &[&str]) = if let Some(array) = array {
        let upper = array.to_ascii_uppercase();
        let usage = || {
            env_err(format!(
                "write COINSTAKER_{upper}__<NAME>__<KEY>, e.g. COINSTAKER_CHAIN__VRSC__RPC_PASSWORD or COINSTAKER_WEBHOOK__WALLET__SECRET"
            ))
        };
        let [_, name, path @ ..] = parts.as_slice() else {
            return Err(usage());
        };
        if path.is_empty() {
            return Err(usage());
        }
        let entries = table.get_mut(array).and_then(|v| v.as_array_mut());
        let entry = entries.and_then(|arr| {
            arr.iter_mut().filter_map(|v| v.as_table_mut()).find(|t| {
                t.get("name")
                    .and_then(|n| n.as_str())
                    .is_some_and(|n| n.eq_ignore_ascii_case(name))
            })
        });
        match entry {
            Some(t) => (t, path),
            None => {
                return Err(env_err(format!(
                    "there is no [[{array}]] named {name:?} in the config file"
                )));
            }
        }
    } else {
        (table, parts.as_slice())
    };
    let (last, sections) = path
        .split_last()
        .ok_or_else(|| env_err("no key given".into()))?;
    for section in sections {
        let entry = target
            .entry(section.to_ascii_lowercase())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        target = entry
            .as_table_mut()
            .ok_or_else(|| env_err(format!("{} is not a section", section.to_ascii_lowercase())))?;
    }
    let key = last.to_ascii_lowercase();
    let typed = typed_value(target.get(&key), value).map_err(env_err)?;
    target.insert(key, typed);
    Ok(())
}

/// Gives an environment string the type the key has in the file, or infers one.
fn typed_value(existing: Option<&toml::Value>, value: &str) -> Result<toml::Value, String> {
    use toml::Value;
    let as_int = |v: &str| {
        v.parse::<i64>()
            .map(Value::Integer)
            .map_err(|_| format!("{v:?} is not a whole number"))
    };
    let as_bool = |v: &str| {
        v.parse::<bool>()
            .map(Value::Boolean)
            .map_err(|_| format!("{v:?} is not true or false"))
    };
    let as_list = |v: &str| {
        Value::Array(
            v.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| Value::String(s.to_owned()))
                .collect(),
        )
    };
    match existing {
        Some(Value::String(_)) => Ok(Value::String(value.to_owned())),
        Some(Value::Integer(_)) => as_int(value),
        Some(Value::Boolean(_)) => as_bool(value),
        Some(Value::Array(_)) => Ok(as_list(value)),
        Some(other) => Err(format!(
            "cannot override a {} from the environment",
            other.type_str()
        )),
        None => Ok(if let Ok(i) = value.parse::<i64>() {
            Value::Integer(i)
        } else if let Ok(b) = value.parse::<bool>() {
            Value::Boolean(b)
        } else {
            Value::String(value.to_owned())
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
[[chain]]
name = "VRSC"
rpc_user = "user"
rpc_password = "hunter2"
pool_identity = "iCmV3PCebXNrR7UyQRn2DH1bEYJ58R555e"
pool_primary_address = "RMmdT6f56TeAgHnokQ3CVRb1FqFCmeCpMK"
"#;

    fn load(text: &str, env: &[(&str, &str)]) -> Result<Config, ConfigError> {
        Config::from_toml(
            text,
            Path::new("test.toml"),
            env.iter().map(|(k, v)| (k.to_string(), v.to_string())),
        )
    }

    fn err(text: &str, env: &[(&str, &str)]) -> String {
        load(text, env).unwrap_err().to_string()
    }

    #[test]
    fn minimal_file_gets_defaults() {
        let c = load(MINIMAL, &[]).unwrap();
        let chain = &c.chains[0];
        assert_eq!(chain.maturity, 150);
        assert_eq!(chain.fee_percent.ppm(), 50_000);
        assert_eq!(chain.min_output, Sats(10_000));
        assert_eq!(chain.conditions.min_unlock_delay, 1440);
        assert_eq!(c.http.bind.to_string(), "127.0.0.1:8080");
        assert_eq!(c.database.url.backend(), "sqlite");
    }

    #[test]
    fn secrets_never_in_debug() {
        let text = MINIMAL.replace(
            "[[chain]]",
            "[database]\nurl = \"postgres://pool:s3cret@db/pool\"\n[[chain]]",
        );
        let c = load(&text, &[]).unwrap();
        let debug = format!("{c:?}");
        assert!(!debug.contains("hunter2"), "{debug}");
        assert!(!debug.contains("s3cret"), "{debug}");
        assert!(debug.contains("postgres://pool:***@db/pool"), "{debug}");
        assert_eq!(
            c.chains[0].rpc_password.as_ref().map(Secret::expose),
            Some("hunter2")
        );
    }

    #[test]
    fn unknown_keys_are_named() {
        let e = err(&MINIMAL.replace("rpc_user", "rpc_usr"), &[]);
        assert!(e.contains("rpc_usr") && e.contains("test.toml"), "{e}");
        let e = err(&format!("{MINIMAL}\n[http]\nbindd = \"1.2.3.4:5\"\n"), &[]);
        assert!(e.contains("bindd"), "{e}");
    }

    #[test]
    fn bad_values_say_how_to_fix() {
        let e = err(&format!("{MINIMAL}fee_percent = \"120\"\n"), &[]);
        assert!(
            e.contains("fee_percent") && e.contains("from 0 to 100"),
            "{e}"
        );
        let e = err(&format!("{MINIMAL}maturity = 50\n"), &[]);
        assert!(e.contains("maturity") && e.contains("150"), "{e}");
        let e = err(
            &format!("{MINIMAL}[chain.conditions]\nmax_primary_addresses = 30\n"),
            &[],
        );
        assert!(
            e.contains("max_primary_addresses") && e.contains("25"),
            "{e}"
        );
        let e = err(&format!("{MINIMAL}min_payout = \"1.5x\"\n"), &[]);
        assert!(
            e.contains("min_payout") && e.contains("not an amount"),
            "{e}"
        );
        let e = err(&format!("{MINIMAL}min_payout = 1.5\n"), &[]);
        assert!(e.contains("min_payout") && e.contains("as a string"), "{e}");
        let e = err(
            &MINIMAL.replace(
                "RMmdT6f56TeAgHnokQ3CVRb1FqFCmeCpMK",
                "RMmdT6f56TeAgHnokQ3CVRb1FqFCmeCpMJ",
            ),
            &[],
        );
        assert!(
            e.contains("pool_primary_address") && e.contains("R-address"),
            "{e}"
        );
        let e = err(&format!("{MINIMAL}payment_timeout_blocks = 10\n"), &[]);
        assert!(e.contains("payment_timeout_blocks"), "{e}");
    }

    #[test]
    fn duplicate_chain_names_refused() {
        let twice = format!("{MINIMAL}{}", MINIMAL.replace("\"VRSC\"", "\"vrsc\""));
        let e = err(&twice, &[]);
        assert!(e.contains("unique"), "{e}");
    }

    #[test]
    fn env_overrides_by_section_and_chain_name() {
        let c = load(
            MINIMAL,
            &[
                ("COINSTAKER_HTTP__BIND", "0.0.0.0:9000"),
                ("COINSTAKER_CHAIN__vrsc__RPC_PASSWORD", "fromenv"),
                ("COINSTAKER_CHAIN__VRSC__CONDITIONS__MAX_UTXOS", "7"),
                ("COINSTAKER_CHAIN__VRSC__MIN_PAYOUT", "2"),
                ("COINSTAKER_CHAIN__VRSC__FEE_PERCENT", "3.33"),
                ("UNRELATED", "x"),
            ],
        )
        .unwrap();
        assert_eq!(c.http.bind.to_string(), "0.0.0.0:9000");
        let chain = &c.chains[0];
        assert_eq!(
            chain.rpc_password.as_ref().map(Secret::expose),
            Some("fromenv")
        );
        assert_eq!(chain.conditions.max_utxos, 7);
        assert_eq!(chain.min_payout, Sats::coins(2));
        assert_eq!(chain.fee_percent.ppm(), 33_300);
    }

    #[test]
    fn env_errors_name_the_variable() {
        let e = err(MINIMAL, &[("COINSTAKER_CHAIN__BTC__RPC_PASSWORD", "x")]);
        assert!(
            e.contains("COINSTAKER_CHAIN__BTC__RPC_PASSWORD") && e.contains("BTC"),
            "{e}"
        );
        let e = err(MINIMAL, &[("COINSTAKER_HTTP__BINDD", "x")]);
        assert!(
            e.contains("COINSTAKER_HTTP__BINDD") && e.contains("bindd"),
            "{e}"
        );
        let e = err(MINIMAL, &[("COINSTAKER_CHAIN__VRSC__MATURITY", "ten")]);
        assert!(e.contains("COINSTAKER_CHAIN__VRSC__MATURITY"), "{e}");
    }

    #[test]
    fn token_hash_round_trips() {
        let h = TokenHash::of_token("abc");
        assert_eq!(
            h.to_string(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(TokenHash::parse(&h.to_string()), Ok(h));
        assert!(
            TokenHash::parse("BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD")
                .is_err()
        );
    }
}
