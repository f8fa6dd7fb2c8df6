//! coinstaker's benchmarks against the simulated daemon (results in BENCHMARKS.md).
//!
//! ```sh
//! cargo bench --bench pool -- blocks 10000        # block processing, 200 txs a block
//! cargo bench --bench pool -- live 10000          # the same with getmininginfo 90 ms slow
//! cargo bench --bench pool -- startup 10000       # start-up with existing subscribers
//! cargo bench --bench pool -- catchup 1440        # catching up missed blocks (10 txs each)
//! cargo bench --bench pool -- maturity 10000      # the block that matures a stake
//! cargo bench --bench pool -- conditions 10000    # the block where an admin's new pool fee applies
//! cargo bench --bench pool -- memory 10000 10000  # RSS after a long run
//! cargo bench --bench pool -- reads 1000 100      # the dashboard query under wrk, 100 connections
//! cargo bench --bench pool -- fanout 2000         # 2,000 WebSocket subscribers get STAKE_FOUND
//! cargo bench --bench pool -- flood 10000 200 [30] # blocks while 200 hostile clients hammer the API
//! cargo bench --bench pool -- serve 1000          # a pool to point other tools at
//! cargo bench --bench pool -- all [10000]         # every scenario above but serve, with 10,000 subscribers
//! ```
//!
//! `BENCH_SAMPLES=1` also prints every sample in the order measured.
//!
//! Every run also writes its figures to `target/bench/results.json` (merged with what is
//! there, one entry per scenario, size and backend), so a regression shows as a diff.
//!
//! The simulated daemon runs in this process; the pool runs as a real `coinstaker serve` child
//! process (release build), on a fresh SQLite file, or on PostgreSQL/MySQL when
//! `BENCH_DATABASE_URL` names a server (a database of its own is created there). Latency is
//! measured from the moment the simulator has mined and announced a block (ZMQ) to the moment
//! the pool's database says the block is processed (polled every 0.5 ms).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sea_orm::{ConnectionTrait, DatabaseConnection};
use serde_json::json;

/// One scenario's figures, as written to `target/bench/results.json`.
#[derive(Default, serde::Serialize, serde::Deserialize, Clone)]
struct Figures {
    scenario: String,
    /// Subscribers (clients for `fanout`, blocks for `catchup`).
    size: usize,
    backend: String,
    p50_ms: Option<f64>,
    p99_ms: Option<f64>,
    max_ms: Option<f64>,
    rss_mib: Option<f64>,
    rss_peak_mib: Option<f64>,
    rpc_calls: Option<f64>,
    /// Blocks/s for `catchup`, requests/s for `reads`.
    rate: Option<f64>,
    /// Whatever else the scenario measures, by name.
    #[serde(default)]
    extra: std::collections::BTreeMap<String, f64>,
    /// When it was measured (UTC, RFC 3339).
    at: String,
}

static RESULTS: std::sync::Mutex<Vec<Figures>> = std::sync::Mutex::new(Vec::new());

/// Keeps `f` for `target/bench/results.json`.
fn record(f: Figures) {
    RESULTS.lock().unwrap().push(Figures {
        backend: backend(),
        at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        ..f
    });
}

/// Merges this run's figures into `target/bench/results.json`: an entry replaces the one of
/// the same scenario, size and backend.
fn write_results() {
    let new = std::mem::take(&mut *RESULTS.lock().unwrap());
    if new.is_empty() {
        return;
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("results.json");
    let mut all: Vec<Figures> = std::fs::read(&path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    let key = |f: &Figures| (f.scenario.clone(), f.size, f.backend.clone());
    all.retain(|old| !new.iter().any(|n| key(n) == key(old)));
    all.extend(new);
    all.sort_by_key(key);
    std::fs::write(&path, serde_json::to_vec_pretty(&all).unwrap()).unwrap();
    println!("figures written to {}", path.display());
}

const RPC_USER: &str = "bench";
const RPC_PASSWORD: &str = "bench-password";

struct Bench {
    sim: verusd_sim::Simulator,
    dir: tempfile::TempDir,
    url: String,
    db: DatabaseConnection,
    pool: Option<Child>,
    http: String,
    /// More `[http]` settings for the pool.
    http_extra: String,
}

fn names(n: usize) -> impl Iterator<Item = String> {
    (0..n).map(|i| format!("sub{i:05}"))
}

fn tip(sim: &verusd_sim::Simulator) -> i64 {
    sim.call("getblockcount", json!([]))
        .unwrap()
        .as_i64()
        .unwrap()
}

/// Identities registered (and funded) per block by [`populate`]: with their funding about
/// 3,000 transactions, a block of about 1 MB, as a real chain could carry (Verus blocks are at
/// most 2 MB). One block of 100,000 registrations would be a block no daemon can produce.
const REGISTRATIONS_PER_BLOCK: usize = 500;

/// Registers `n` subscribers (delay-locked, separate authorities, the pool's address) with
/// `utxos` outputs each, [`REGISTRATIONS_PER_BLOCK`] to a block, and mines past their
/// cooldown.
fn populate(sim: &verusd_sim::Simulator, n: usize, utxos: usize) -> Vec<String> {
    let state = sim.call("sim_state", json!([])).unwrap();
    let pool_r = state["poolprimaryaddress"].clone();
    let started = Instant::now();
    let mut addresses = Vec::with_capacity(n);
    for name in names(n) {
        let spec = json!({
            "name": name,
            "primaryaddresses": [verusd_sim::ids::r_address(&format!("own:{name}")), pool_r],
            "locked": true, "timelock": 1440,
            "revocationauthority": verusd_sim::ids::identity_address(&format!("{name}-revoke"), "x"),
            "recoveryauthority": verusd_sim::ids::identity_address(&format!("{name}-recover"), "x"),
        });
        let reply = sim.call("sim_registeridentity", json!([spec])).unwrap();
        let address = reply["identityaddress"].as_str().unwrap().to_owned();
        sim.call("sim_fund", json!([address, "100", utxos]))
            .unwrap();
        addresses.push(address);
        if addresses.len() % REGISTRATIONS_PER_BLOCK == 0 {
            sim.call("sim_generate", json!([1])).unwrap();
        }
    }
    sim.call("sim_generate", json!([1])).unwrap();
    sim.call("sim_generate", json!([151])).unwrap();
    eprintln!(
        "populated {n} subscribers x {utxos} UTXOs in {:.1}s (tip {})",
        started.elapsed().as_secs_f64(),
        tip(sim)
    );
    addresses
}

async fn database() -> (String, DatabaseConnection, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let url = match std::env::var("BENCH_DATABASE_URL") {
        Ok(base) => {
            let name = format!("csbench_{}", std::process::id());
            let admin = coinstaker::store::connect_url(&base, 1).await.unwrap();
            admin
                .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name}"))
                .await
                .unwrap();
            admin
                .execute_unprepared(&format!("CREATE DATABASE {name}"))
                .await
                .unwrap();
            // Keep the query (e.g. `?host=/var/run/postgresql` for a Unix socket).
            let (path, query) = base.split_once('?').unwrap_or((&base, ""));
            let (prefix, _) = path.rsplit_once('/').unwrap();
            let query = if query.is_empty() {
                String::new()
            } else {
                format!("?{query}")
            };
            format!("{prefix}/{name}{query}")
        }
        Err(_) => format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("bench.db").display()
        ),
    };
    let db = coinstaker::store::connect_url(&url, 2).await.unwrap();
    (url, db, dir)
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

fn start_pool(
    dir: &Path,
    sim: &verusd_sim::Simulator,
    url: &str,
    start: i64,
    port: u16,
    http_extra: &str,
) -> Child {
    let state = sim.call("sim_state", json!([])).unwrap();
    let config = dir.join("pool.toml");
    std::fs::write(
        &config,
        format!(
            "[database]\nurl = \"{url}\"\n[http]\nbind = \"127.0.0.1:{port}\"\n{http_extra}\n[notifier]\nbuffer = 4096\n[[chain]]\nname = \"VRSC\"\nrpc_url = \"{}\"\nrpc_user = \"{RPC_USER}\"\nrpc_password = \"{RPC_PASSWORD}\"\nzmq_block_url = \"{}\"\npoll_interval_secs = 1\nstart_height = {start}\npool_identity = \"{}\"\npool_primary_address = \"{}\"\npayout_interval_secs = 100000\n",
            sim.rpc_url,
            sim.zmq_url.clone().unwrap_or_default(),
            state["poolidentity"].as_str().unwrap(),
            state["poolprimaryaddress"].as_str().unwrap()
        ),
    )
    .unwrap();
    Command::new(env!("CARGO_BIN_EXE_coinstaker"))
        .args(["serve", "--config"])
        .arg(&config)
        .env(
            "RUST_LOG",
            std::env::var("BENCH_POOL_LOG").unwrap_or_else(|_| "warn".into()),
        )
        .stdout(Stdio::null())
        .spawn()
        .unwrap()
}

impl Bench {
    async fn new(subscribers: usize, utxos: usize) -> (Bench, Vec<String>) {
        let sim = verusd_sim::Simulator::start(verusd_sim::SimConfig {
            rpc_user: RPC_USER.into(),
            rpc_password: RPC_PASSWORD.into(),
            ..verusd_sim::SimConfig::default()
        })
        .await
        .unwrap();
        let addresses = populate(&sim, subscribers, utxos);
        let (url, db, dir) = database().await;
        let port = free_port();
        (
            Bench {
                sim,
                dir,
                url,
                db,
                pool: None,
                http: format!("http://127.0.0.1:{port}"),
                http_extra: String::new(),
            },
            addresses,
        )
    }

    fn start(&mut self, start_height: i64) {
        let port: u16 = self.http.rsplit(':').next().unwrap().parse().unwrap();
        self.pool = Some(start_pool(
            self.dir.path(),
            &self.sim,
            &self.url,
            start_height,
            port,
            &self.http_extra,
        ));
    }

    /// Starts the pool from height 1 and waits until it has processed the tip.
    /// Starts the pool at height 1 and waits until it has processed the tip; returns how
    /// long that took (the subscribers join, cool down and become active on the way).
    async fn start_and_catch_up(&mut self) -> Duration {
        let t = tip(&self.sim);
        let since = Instant::now();
        self.start(1);
        self.wait(t, since).await
    }

    /// Stops the pool with SIGTERM, as an operator or systemd does, and waits for it to exit.
    fn stop(&mut self) {
        if let Some(mut child) = self.pool.take() {
            Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status()
                .unwrap();
            child.wait().unwrap();
        }
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.pool.take() {
            child.kill().ok();
            child.wait().ok();
        }
    }

    async fn processed(&self) -> i64 {
        coinstaker::store::chain::tip(&self.db, "VRSC")
            .await
            .ok()
            .flatten()
            .map_or(-1, |b| b.height)
    }

    /// Waits until the pool has processed `height`; the time it took.
    async fn wait(&self, height: i64, since: Instant) -> Duration {
        loop {
            if self.processed().await >= height {
                return since.elapsed();
            }
            assert!(
                since.elapsed() < Duration::from_secs(3600),
                "the pool did not reach {height}"
            );
            tokio::time::sleep(Duration::from_micros(500)).await;
        }
    }

    /// CPU time the pool's threads have used so far, in ms: those at nice 0 (the actors and
    /// their connections) and those at a lowered priority (the HTTP workers and the API's
    /// connections), from `/proc/<pid>/task/*/schedstat` (nanoseconds).
    fn thread_cpu_ms(&self) -> (f64, f64) {
        threads_cpu_ms(self.pool.as_ref().unwrap().id())
    }

    /// Resident and peak resident set size of the pool process, in MiB.
    fn rss(&self) -> (f64, f64) {
        let pid = self.pool.as_ref().unwrap().id();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        let kib = |key: &str| -> f64 {
            status
                .lines()
                .find_map(|l| l.strip_prefix(key))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(f64::NAN)
        };
        (kib("VmRSS:") / 1024.0, kib("VmHWM:") / 1024.0)
    }

    /// The one number `sql` answers.
    async fn count(&self, sql: &str) -> i64 {
        self.db
            .query_one_raw(sea_orm::Statement::from_string(
                self.db.get_database_backend(),
                sql.to_owned(),
            ))
            .await
            .unwrap()
            .unwrap()
            .try_get_by_index(0)
            .unwrap()
    }

    async fn rows(&self) -> i64 {
        let mut total = 0;
        for table in [
            "block",
            "actor_cursor",
            "subscriber",
            "subscriber_status",
            "eligibility_interval",
            "identity_version",
            "subscriber_utxo",
            "stake",
            "credit",
            "balance",
            "ledger_entry",
            "event",
            "pool_stats",
        ] {
            total += self.count(&format!("SELECT COUNT(*) FROM {table}")).await;
        }
        total
    }

    /// One block with `txs` transactions paying random subscribers; its processing time.
    async fn block(&self, addresses: &[String], txs: usize, seed: &mut u64) -> Duration {
        pay_random(&self.sim, addresses, txs, seed);
        let h = tip(&self.sim) + 1;
        self.sim.call("sim_generate", json!([1])).unwrap();
        self.wait(h, Instant::now()).await
    }
}

impl Drop for Bench {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Puts `txs` transactions paying random subscribers into the mempool (a deterministic LCG).
fn pay_random(sim: &verusd_sim::Simulator, addresses: &[String], txs: usize, seed: &mut u64) {
    for _ in 0..txs {
        *seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let who = &addresses[(*seed >> 33) as usize % addresses.len()];
        sim.call("sim_fund", json!([who, "1.5"])).unwrap();
    }
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

/// Prints p50, p99 and the maximum of `samples`, and returns them in milliseconds.
fn report(label: &str, mut samples: Vec<Duration>) -> (f64, f64, f64) {
    if std::env::var_os("BENCH_SAMPLES").is_some() {
        let each: Vec<String> = samples
            .iter()
            .map(|s| format!("{:.1}", s.as_secs_f64() * 1000.0))
            .collect();
        println!("{label}, in order (ms): {}", each.join(" "));
    }
    samples.sort();
    let (p50, p99, max) = (
        percentile(&samples, 0.5),
        percentile(&samples, 0.99),
        percentile(&samples, 1.0),
    );
    println!(
        "{label}: n={} p50={p50:.1} ms p99={p99:.1} ms max={max:.1} ms",
        samples.len()
    );
    (p50, p99, max)
}

fn backend() -> String {
    std::env::var("BENCH_DATABASE_URL")
        .map(|u| u.split(':').next().unwrap_or("?").to_owned())
        .unwrap_or_else(|_| "sqlite".into())
}

/// Blocks at the tip; with `slow_mininginfo_ms`, the daemon's `getmininginfo` answers that
/// late (a real node with many identities), which no block may wait for.
async fn blocks(subscribers: usize, count: usize, slow_mininginfo_ms: u64) {
    let (mut b, addresses) = Bench::new(subscribers, 5).await;
    let caught_up = b.start_and_catch_up().await;
    if slow_mininginfo_ms > 0 {
        b.sim
            .call("sim_slow", json!(["getmininginfo", slow_mininginfo_ms]))
            .unwrap();
    }
    let mut seed = 42;
    // Warm-up.
    for _ in 0..3 {
        b.block(&addresses, 200, &mut seed).await;
    }
    let rows_before = b.rows().await;
    let (_, calls_before) = b.sim.rpc_counts();
    let (requests_before, _) = b.sim.rpc_counts();
    // `BENCH_GAP_MS`: a pause between blocks (as on the live chain, where the machine does
    // other things between two blocks); none by default.
    let gap = Duration::from_millis(
        std::env::var("BENCH_GAP_MS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0),
    );
    let mut samples = Vec::new();
    for _ in 0..count {
        samples.push(b.block(&addresses, 200, &mut seed).await);
        tokio::time::sleep(gap).await;
    }
    let (requests, calls) = b.sim.rpc_counts();
    let rows = b.rows().await - rows_before;
    let (rss, peak) = b.rss();
    println!(
        "blocks: backend={} subscribers={subscribers} utxos/subscriber=5 txs/block=200{}",
        backend(),
        if slow_mininginfo_ms > 0 {
            format!(" (live: getmininginfo answers {slow_mininginfo_ms} ms late)")
        } else {
            String::new()
        }
    );
    println!(
        "  catch-up from height 1 (the subscribers join and cool down): {:.2} s",
        caught_up.as_secs_f64()
    );
    let (p50, p99, max) = report("  block latency", samples);
    let per_block = (calls - calls_before) as f64 / count as f64;
    println!(
        "  per block: {per_block:.1} RPC calls in {:.1} HTTP requests, {:.1} rows inserted (net)",
        (requests - requests_before) as f64 / count as f64,
        rows as f64 / count as f64
    );
    println!("  pool RSS {rss:.0} MiB (peak {peak:.0} MiB)");
    record(Figures {
        scenario: if slow_mininginfo_ms > 0 {
            "live"
        } else {
            "blocks"
        }
        .into(),
        size: subscribers,
        p50_ms: Some(p50),
        p99_ms: Some(p99),
        max_ms: Some(max),
        rss_mib: Some(rss),
        rss_peak_mib: Some(peak),
        rpc_calls: Some(per_block),
        extra: [
            ("blocks".to_owned(), count as f64),
            ("rows_per_block".to_owned(), rows as f64 / count as f64),
            ("catch_up_s".to_owned(), caught_up.as_secs_f64()),
        ]
        .into(),
        ..Figures::default()
    });
}

async fn startup(subscribers: usize) {
    let (mut b, _) = Bench::new(subscribers, 5).await;
    let t = tip(&b.sim);
    let (_, calls_before) = b.sim.rpc_counts();
    let (requests_before, _) = b.sim.rpc_counts();
    let since = Instant::now();
    // A new pool whose first block is the tip: it discovers every subscriber, reads their
    // identities and seeds their UTXOs.
    b.start(t);
    let took = b.wait(t, since).await;
    let (requests, calls) = b.sim.rpc_counts();
    let count: i64 =
        b.db.query_one_raw(sea_orm::Statement::from_string(
            b.db.get_database_backend(),
            "SELECT COUNT(*) FROM subscriber".to_owned(),
        ))
        .await
        .unwrap()
        .unwrap()
        .try_get_by_index(0)
        .unwrap();
    println!(
        "startup: backend={} subscribers={subscribers} (found {count}) utxos/subscriber=5",
        backend()
    );
    println!(
        "  from spawn to the first block committed: {:.2} s, {} RPC calls in {} HTTP requests",
        took.as_secs_f64(),
        calls - calls_before,
        requests - requests_before
    );
    let (rss, peak) = b.rss();
    record(Figures {
        scenario: "startup".into(),
        size: subscribers,
        max_ms: Some(took.as_secs_f64() * 1000.0),
        rss_mib: Some(rss),
        rss_peak_mib: Some(peak),
        rpc_calls: Some((calls - calls_before) as f64),
        extra: [("found".to_owned(), count as f64)].into(),
        ..Figures::default()
    });
}

async fn catchup(missed: usize) {
    let (mut b, addresses) = Bench::new(100, 5).await;
    b.start_and_catch_up().await;
    // Stopped as an operator stops it (SIGTERM: the lease is released). After a SIGKILL the
    // same instance waits a renewal period (5 s) for its old lease first, by design.
    b.stop();
    let mut seed = 7;
    for _ in 0..missed {
        pay_random(&b.sim, &addresses, 10, &mut seed);
        b.sim.call("sim_generate", json!([1])).unwrap();
    }
    let before = b.processed().await;
    let target = tip(&b.sim);
    let (requests_before, calls_before) = b.sim.rpc_counts();
    let since = Instant::now();
    b.start(1);
    let first = b.wait(before + 1, since).await;
    // The first commit may hold several blocks (a catch-up batch): the rate counts the blocks
    // after the height seen then.
    let first_height = b.processed().await;
    let took = b.wait(target, since).await;
    let (requests, calls) = b.sim.rpc_counts();
    let catching_up = (took - first).as_secs_f64();
    let rate = (target - first_height) as f64 / catching_up;
    println!(
        "catchup: backend={} subscribers=100 missed={missed} txs/block=10",
        backend()
    );
    println!(
        "  {:.2} s from spawn ({:.2} s to the first block): {rate:.0} blocks/s from the first block, {:.0} including start-up; {} RPC calls in {} HTTP requests",
        took.as_secs_f64(),
        first.as_secs_f64(),
        missed as f64 / took.as_secs_f64(),
        calls - calls_before,
        requests - requests_before
    );
    let (rss, peak) = b.rss();
    record(Figures {
        scenario: "catchup".into(),
        size: missed,
        max_ms: Some(took.as_secs_f64() * 1000.0),
        rss_mib: Some(rss),
        rss_peak_mib: Some(peak),
        rate: Some(rate),
        rpc_calls: Some((calls - calls_before) as f64),
        extra: [
            ("startup_ms".to_owned(), first.as_secs_f64() * 1000.0),
            (
                "rate_with_startup".to_owned(),
                missed as f64 / took.as_secs_f64(),
            ),
        ]
        .into(),
        ..Figures::default()
    });
}

async fn maturity(subscribers: usize) {
    let (mut b, addresses) = Bench::new(subscribers, 5).await;
    b.start_and_catch_up().await;
    // The block a subscriber staked: its round's work is computed for the stake's record.
    b.sim.call("sim_stake", json!([addresses[0]])).unwrap();
    let since = Instant::now();
    let staked = tip(&b.sim);
    let found = b.wait(staked, since).await;
    // The stake matures at its 150th confirmation, height staked + 149 (DESIGN §8).
    b.sim.call("sim_generate", json!([147])).unwrap();
    b.wait(staked + 147, Instant::now()).await;
    let credits = async || b.count("SELECT COUNT(*) FROM credit").await;
    let mut seed = 3;
    let normal = b.block(&addresses, 0, &mut seed).await; // 149 confirmations: not yet
    assert_eq!(
        credits().await,
        0,
        "the stake matured before its 150th confirmation"
    );
    let h = tip(&b.sim) + 1;
    assert_eq!(h, staked + 149);
    let since = Instant::now();
    b.sim.call("sim_generate", json!([1])).unwrap();
    let took = b.wait(h, since).await;
    let credits = credits().await;
    assert!(credits > 0, "the maturing block credited nobody");
    println!(
        "maturity: backend={} subscribers={subscribers} credits={credits}",
        backend()
    );
    println!(
        "  the maturing block: {:.1} ms (a block before it: {:.1} ms; the staked block: {:.1} ms)",
        took.as_secs_f64() * 1000.0,
        normal.as_secs_f64() * 1000.0,
        found.as_secs_f64() * 1000.0
    );
    let (rss, peak) = b.rss();
    record(Figures {
        scenario: "maturity".into(),
        size: subscribers,
        max_ms: Some(took.as_secs_f64() * 1000.0),
        rss_mib: Some(rss),
        rss_peak_mib: Some(peak),
        extra: [
            ("block_before_ms".to_owned(), normal.as_secs_f64() * 1000.0),
            ("staked_block_ms".to_owned(), found.as_secs_f64() * 1000.0),
            ("credits".to_owned(), credits as f64),
        ]
        .into(),
        ..Figures::default()
    });
}

/// An admin's change of the pool's conditions (`updatePoolConditions`), which applies from the
/// next height: the block where it applies evaluates every subscriber against them. And an
/// admin's change of the pool fee (`setPoolFee`) before it, which evaluates no one. Both timed
/// against the block before them.
async fn conditions(subscribers: usize) {
    use coinstaker::store::settings::{self, SettingsSource};
    let (mut b, addresses) = Bench::new(subscribers, 5).await;
    b.start_and_catch_up().await;
    let mut seed = 5;
    let normal = b.block(&addresses, 200, &mut seed).await;
    let active = async || {
        b.count("SELECT COUNT(*) FROM subscriber WHERE status = 'ACTIVE'")
            .await
    };
    let active_before = active().await;
    assert_eq!(
        active_before, subscribers as i64,
        "not every subscriber is active"
    );
    // What the registry records for `setPoolFee` and `updatePoolConditions`
    // (src/actors/subscriber_registry/settings.rs), each from the next height.
    let change = async |edit: &dyn Fn(&mut coinstaker::domain::PoolSettings)| {
        let mut next = settings::latest(&b.db, "VRSC")
            .await
            .unwrap()
            .unwrap()
            .settings;
        edit(&mut next);
        settings::record(&b.db, "VRSC", tip(&b.sim) + 1, &next, SettingsSource::Admin)
            .await
            .unwrap();
    };
    change(&|s| s.fee = coinstaker::domain::FeeRate::from_ppm(s.fee.ppm() + 1).unwrap()).await;
    let fee = b.block(&addresses, 200, &mut seed).await;
    // Every subscriber has two primary addresses: at most 24 keeps them all in.
    change(&|s| s.conditions.max_primary_addresses -= 1).await;
    let took = b.block(&addresses, 200, &mut seed).await;
    assert_eq!(
        active().await,
        active_before,
        "the changes of the settings changed statuses"
    );
    println!(
        "conditions: backend={} subscribers={subscribers}",
        backend()
    );
    println!(
        "  the block where new conditions apply: {:.1} ms; where a new pool fee applies: {:.1} ms (the block before them: {:.1} ms)",
        took.as_secs_f64() * 1000.0,
        fee.as_secs_f64() * 1000.0,
        normal.as_secs_f64() * 1000.0
    );
    record(Figures {
        scenario: "conditions".into(),
        size: subscribers,
        max_ms: Some(took.as_secs_f64() * 1000.0),
        extra: [
            ("block_before_ms".to_owned(), normal.as_secs_f64() * 1000.0),
            ("fee_block_ms".to_owned(), fee.as_secs_f64() * 1000.0),
        ]
        .into(),
        ..Figures::default()
    });
}

async fn memory(subscribers: usize, run: usize) {
    let (mut b, addresses) = Bench::new(subscribers, 5).await;
    let mut seed = 11;
    for _ in 0..run {
        pay_random(&b.sim, &addresses, 10, &mut seed);
        b.sim.call("sim_generate", json!([1])).unwrap();
    }
    let t = tip(&b.sim);
    let since = Instant::now();
    b.start(1);
    b.wait(t, since).await;
    let took = since.elapsed();
    let (rss, peak) = b.rss();
    println!(
        "memory: backend={} subscribers={subscribers} blocks={t} (processed in {:.0} s)",
        backend(),
        took.as_secs_f64()
    );
    println!("  pool RSS {rss:.0} MiB, peak {peak:.0} MiB");
    record(Figures {
        scenario: "memory".into(),
        size: subscribers,
        rss_mib: Some(rss),
        rss_peak_mib: Some(peak),
        rate: Some(t as f64 / took.as_secs_f64()),
        extra: [("blocks".to_owned(), t as f64)].into(),
        ..Figures::default()
    });
}

/// The Python of the test virtualenv (`cargo test` creates it; it has `websockets`).
fn python() -> std::path::PathBuf {
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-venv/bin/python");
    assert!(
        python.exists(),
        "run `cargo test --test api live::` once first: it creates target/test-venv with websockets"
    );
    python
}

async fn reads(subscribers: usize, connections: usize) {
    let (mut b, addresses) = Bench::new(subscribers, 5).await;
    b.start_and_catch_up().await;
    // Some credits to read: a stake by the first subscriber, matured (every subscriber with
    // work gets a credit).
    b.sim.call("sim_stake", json!([addresses[0]])).unwrap();
    b.sim.call("sim_generate", json!([150])).unwrap();
    b.wait(tip(&b.sim), Instant::now()).await;
    let who = b.dir.path().join("subscribers.txt");
    std::fs::write(&who, addresses.join("\n")).unwrap();
    // Each subscriber in turn, as that many dashboards polling their own; then bodies that all
    // differ, which no two requests can share: what the pool computes for each new question.
    for (scenario, unique) in [("reads", "0"), ("reads-uncached", "1")] {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/clients/dashboard.lua");
        let out = Command::new("wrk")
            .args([
                "-t2",
                &format!("-c{connections}"),
                "-d15s",
                "--latency",
                "-s",
            ])
            .arg(&script)
            .arg(format!("{}/graphql", b.http))
            .env("SUBSCRIBERS", &who)
            .env("UNIQUE", unique)
            .output()
            .expect("wrk (apt install wrk)");
        wrk_figures(scenario, subscribers, connections, &out.stdout);
    }
}

/// Prints and records what `wrk --latency` printed.
fn wrk_figures(scenario: &str, subscribers: usize, connections: usize, stdout: &[u8]) {
    let text = String::from_utf8_lossy(stdout);
    println!(
        "{scenario}: backend={} subscribers={subscribers} connections={connections} (wrk -t2 -d15s)",
        backend()
    );
    // wrk prints e.g. "50%  115.21ms" or "1.02s".
    let ms = |v: &str| -> Option<f64> {
        let (n, unit) = v.split_at(v.find(|c: char| c.is_ascii_alphabetic())?);
        let n: f64 = n.parse().ok()?;
        Some(match unit {
            "us" => n / 1000.0,
            "ms" => n,
            "s" => n * 1000.0,
            "m" => n * 60_000.0,
            _ => return None,
        })
    };
    let field = |prefix: &str| -> Option<&str> {
        text.lines()
            .map(str::trim)
            .find_map(|l| l.strip_prefix(prefix))
            .and_then(|rest| rest.split_whitespace().next())
    };
    record(Figures {
        scenario: scenario.into(),
        size: subscribers,
        p50_ms: field("50%").and_then(ms),
        p99_ms: field("99%").and_then(ms),
        rate: field("Requests/sec:").and_then(|v| v.parse().ok()),
        extra: [("connections".to_owned(), connections as f64)].into(),
        ..Figures::default()
    });
    for line in text.lines() {
        let l = line.trim();
        if l.starts_with("Requests/sec")
            || l.starts_with("50%")
            || l.starts_with("99%")
            || l.contains("requests in")
            || l.starts_with("Non-2xx")
            || l.starts_with("Socket errors")
            || l.starts_with("GraphQL errors")
        {
            println!("  {l}");
        }
    }
}

async fn fanout(clients: usize) {
    let (mut b, addresses) = Bench::new(100, 5).await;
    b.start_and_catch_up().await;
    let ws = format!("{}/graphql", b.http.replace("http://", "ws://"));
    let mut child = Command::new(python())
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/clients/fanout.py"))
        .arg(&ws)
        .arg(clients.to_string())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    use std::io::BufRead;
    lines.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "ready", "{line}");
    let staked_at = chrono::Utc::now().timestamp_micros();
    b.sim.call("sim_stake", json!([addresses[0]])).unwrap();
    line.clear();
    lines.read_line(&mut line).unwrap();
    child.wait().ok();
    let parts: Vec<&str> = line.split_whitespace().collect();
    let (count, last): (usize, i64) = (parts[1].parse().unwrap(), parts[2].parse().unwrap());
    println!(
        "fanout: backend={} clients={clients} (received {count})",
        backend()
    );
    println!(
        "  from the stake block being mined to the last client having STAKE_FOUND: {:.0} ms (notifier poll interval 200 ms)",
        (last - staked_at) as f64 / 1000.0
    );
    record(Figures {
        scenario: "fanout".into(),
        size: clients,
        max_ms: Some((last - staked_at) as f64 / 1000.0),
        extra: [("received".to_owned(), count as f64)].into(),
        ..Figures::default()
    });
}

/// What the hostile clients of `flood` send, in turn.
const HOSTILE: &[(&str, &str)] = &[
    // The costliest page the limit allows: 1 + 500 × (1 + 4 + (1 + 12 × 2)) = 15,001.
    (
        "costliest allowed query",
        r#"{"query": "{ subscribers(first: 500) { nodes { identityAddress pendingBalance inFlight paidTotal credits(first: 12) { nodes { amount } } } } }"}"#,
    ),
    (
        "over-cost query",
        r#"{"query": "{ subscribers(first: 500) { nodes { credits(first: 500) { nodes { amount blockHash } } } } }"}"#,
    ),
    (
        "checkIdentity",
        r#"{"query": "{ checkIdentity(identity: \"sub00001@\") { eligible unmet } }"}"#,
    ),
    (
        "20 aliased subscribes",
        r#"{"query": "mutation { a0: subscribe(identity: \"sub00002@\") { eligible } a1: subscribe(identity: \"sub00003@\") { eligible } a2: subscribe(identity: \"sub00004@\") { eligible } a3: subscribe(identity: \"sub00005@\") { eligible } a4: subscribe(identity: \"sub00006@\") { eligible } a5: subscribe(identity: \"sub00007@\") { eligible } a6: subscribe(identity: \"sub00008@\") { eligible } a7: subscribe(identity: \"sub00009@\") { eligible } a8: subscribe(identity: \"sub00010@\") { eligible } a9: subscribe(identity: \"sub00011@\") { eligible } b0: subscribe(identity: \"sub00012@\") { eligible } b1: subscribe(identity: \"sub00013@\") { eligible } b2: subscribe(identity: \"sub00014@\") { eligible } b3: subscribe(identity: \"sub00015@\") { eligible } b4: subscribe(identity: \"sub00016@\") { eligible } b5: subscribe(identity: \"sub00017@\") { eligible } b6: subscribe(identity: \"sub00018@\") { eligible } b7: subscribe(identity: \"sub00019@\") { eligible } b8: subscribe(identity: \"sub00020@\") { eligible } b9: subscribe(identity: \"sub00021@\") { eligible } }"}"#,
    ),
    (
        "batch of 11",
        r#"[{"query": "{ pools { chain } }"}, {"query": "{ pools { chain } }"}, {"query": "{ pools { chain } }"}, {"query": "{ pools { chain } }"}, {"query": "{ pools { chain } }"}, {"query": "{ pools { chain } }"}, {"query": "{ pools { chain } }"}, {"query": "{ pools { chain } }"}, {"query": "{ pools { chain } }"}, {"query": "{ pools { chain } }"}, {"query": "{ pools { chain } }"}]"#,
    ),
    (
        "dashboard query",
        r#"{"query": "{ pool { chain tipHeight processedHeight subscriberCount stakingSupply feesEarned totalPaid pendingTotal } stakes(first: 15) { nodes { blockHash height status credits(first: 25) { identityAddress amount } } } }"}"#,
    ),
];

/// How an answer of the API came back: `ok`, or the HTTP status and the first error's code.
fn outcome(status: u16, body: &serde_json::Value) -> String {
    let first = if body.is_array() {
        body.as_array()
            .and_then(|a| a.iter().find(|r| !r["errors"].is_null()))
            .map(|r| &r["errors"][0])
    } else {
        body.get("errors").map(|e| &e[0])
    };
    match first.and_then(|e| e["extensions"]["code"].as_str()) {
        Some(code) => format!("{status} {code}"),
        None if status == 200 => "ok".into(),
        None => format!("{status}"),
    }
}

/// A WebSocket client that subscribes to the whole event log and never reads: it returns
/// the upgrade's status and keeps the connection open until `stop`.
async fn slow_reader(http: &str, forwarded: &str, stop: &std::sync::atomic::AtomicBool) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let host = http.trim_start_matches("http://").to_owned();
    let Ok(mut stream) = tokio::net::TcpStream::connect(&host).await else {
        return 0;
    };
    let request = format!(
        "GET /graphql HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: graphql-transport-ws\r\nX-Forwarded-For: {forwarded}\r\n\r\n"
    );
    if stream.write_all(request.as_bytes()).await.is_err() {
        return 0;
    }
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte).await {
            Ok(1) => head.push(byte[0]),
            _ => return 0,
        }
    }
    let status = String::from_utf8_lossy(&head)
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    if status != 101 {
        return status;
    }
    // Masked text frames (a client must mask; the zero mask keeps the bytes as they are).
    for text in [
        r#"{"type":"connection_init","payload":{}}"#.to_owned(),
        r#"{"id":"1","type":"subscribe","payload":{"query":"subscription { events(after: \"0\") { cursor kind message subscriber { name pendingBalance } } }"}}"#.to_owned(),
    ] {
        let mut frame = vec![0x81u8];
        let len = text.len();
        if len < 126 {
            frame.push(0x80 | len as u8);
        } else {
            frame.push(0x80 | 126);
            frame.extend_from_slice(&(len as u16).to_be_bytes());
        }
        frame.extend_from_slice(&[0, 0, 0, 0]);
        frame.extend_from_slice(text.as_bytes());
        if stream.write_all(&frame).await.is_err() {
            return status;
        }
    }
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    status
}

/// CPU time the threads of process `pid` have used so far, in ms: (at nice 0 or below, at a
/// lowered priority), from `/proc/<pid>/task/*/schedstat` (nanoseconds).
fn threads_cpu_ms(pid: u32) -> (f64, f64) {
    let (mut normal, mut lowered) = (0u64, 0u64);
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return (f64::NAN, f64::NAN);
    };
    for task in tasks.flatten() {
        let path = task.path();
        let (Ok(stat), Ok(sched)) = (
            std::fs::read_to_string(path.join("stat")),
            std::fs::read_to_string(path.join("schedstat")),
        ) else {
            continue;
        };
        // After the command name in parentheses: state is field 3, nice field 19.
        let nice: i64 = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(16))
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        let ns: u64 = sched
            .split_whitespace()
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        if nice > 0 {
            lowered += ns;
        } else {
            normal += ns;
        }
    }
    (normal as f64 / 1e6, lowered as f64 / 1e6)
}

async fn flood(subscribers: usize, clients: usize, count: usize) {
    use std::collections::BTreeMap;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};

    let (mut b, addresses) = Bench::new(subscribers, 5).await;
    // The flood's clients come through a "proxy" (this host), each with an address of its own.
    b.http_extra = "trusted_proxies = [\"127.0.0.1\"]".into();
    b.start_and_catch_up().await;
    // Credits to read: a stake by the first subscriber, matured.
    b.sim.call("sim_stake", json!([addresses[0]])).unwrap();
    b.sim.call("sim_generate", json!([150])).unwrap();
    b.wait(tip(&b.sim), Instant::now()).await;
    let mut seed = 42;
    for _ in 0..3 {
        b.block(&addresses, 200, &mut seed).await;
    }
    // `count` blocks 1 s apart, quiet, then as many under the flood (30: about 40 s).
    let mut quiet = Vec::new();
    for _ in 0..count {
        quiet.push(b.block(&addresses, 200, &mut seed).await);
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let rss_quiet = b.rss();

    // The flood: its own runtime on its own threads, so the simulator (on this thread) is not
    // slowed by the clients' own work more than the machine's two cores must.
    let stop = Arc::new(AtomicBool::new(false));
    let tally: Arc<Mutex<BTreeMap<(String, String), u64>>> = Arc::default();
    let flood_thread = {
        let (stop, tally, http) = (Arc::clone(&stop), Arc::clone(&tally), b.http.clone());
        std::thread::spawn(move || {
            // The clients stand for machines elsewhere on the internet; here they share the
            // pool's two cores, at the priority of the pool's own HTTP workers (nice 10), so
            // they take no more from the chain than the API they flood.
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .on_thread_start(|| {
                    coinstaker::priority::lower_current_thread(10).ok();
                })
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let client = coinstaker::net::client_builder()
                    .timeout(Duration::from_secs(30))
                    .build()
                    .unwrap();
                // `BENCH_FLOOD_ONLY=checkIdentity` (any part of a kind's name) floods with
                // that kind of request alone, to tell which one costs the blocks.
                let only = std::env::var("BENCH_FLOOD_ONLY").unwrap_or_default();
                let kinds: Vec<(&str, &str)> = HOSTILE
                    .iter()
                    .copied()
                    .filter(|(kind, _)| kind.contains(only.as_str()))
                    .collect();
                let slow_readers = "slow WebSocket reader".contains(only.as_str());
                assert!(
                    !kinds.is_empty() || slow_readers,
                    "no kind of request matches {only:?}"
                );
                let kinds = Arc::new(kinds);
                let mut tasks = Vec::new();
                for c in 0..clients {
                    let (stop, tally, http, client, kinds) = (
                        Arc::clone(&stop),
                        Arc::clone(&tally),
                        http.clone(),
                        client.clone(),
                        Arc::clone(&kinds),
                    );
                    let forwarded = format!("10.{}.{}.{}", c / 65536 % 256, c / 256 % 256, c % 256);
                    tasks.push(tokio::spawn(async move {
                        // One in ten clients also holds slow WebSocket readers, 20 of them
                        // (more than an address may open).
                        if c % 10 == 0 && slow_readers {
                            for _ in 0..20 {
                                let (stop, tally, http, forwarded) = (
                                    Arc::clone(&stop),
                                    Arc::clone(&tally),
                                    http.clone(),
                                    forwarded.clone(),
                                );
                                tokio::spawn(async move {
                                    let status = slow_reader(&http, &forwarded, &stop).await;
                                    let key = (
                                        "slow WebSocket reader".to_owned(),
                                        if status == 101 {
                                            "open".to_owned()
                                        } else {
                                            format!("{status}")
                                        },
                                    );
                                    *tally.lock().unwrap().entry(key).or_default() += 1;
                                });
                            }
                        }
                        let mut i = c;
                        while !stop.load(Ordering::Relaxed) {
                            if kinds.is_empty() {
                                tokio::time::sleep(Duration::from_millis(200)).await;
                                continue;
                            }
                            let (kind, body) = kinds[i % kinds.len()];
                            i += 1;
                            // Every query's body differs (an alias with a counter): a
                            // hostile client varies its requests to get past the answers
                            // shared between clients (src/graphql/responses.rs).
                            let body = body.replacen(
                                "{\"query\": \"{ ",
                                &format!("{{\"query\": \"{{ c{c}n{i}: "),
                                1,
                            );
                            let reply = client
                                .post(format!("{http}/graphql"))
                                .header("content-type", "application/json")
                                .header("x-forwarded-for", &forwarded)
                                .body(body)
                                .send()
                                .await;
                            let result = match reply {
                                Ok(r) => {
                                    let status = r.status().as_u16();
                                    let body: serde_json::Value =
                                        r.json().await.unwrap_or_default();
                                    outcome(status, &body)
                                }
                                Err(e) if e.is_timeout() => "timed out".into(),
                                Err(_) => "connection error".into(),
                            };
                            *tally
                                .lock()
                                .unwrap()
                                .entry((kind.to_owned(), result))
                                .or_default() += 1;
                        }
                    }));
                }
                for t in tasks {
                    t.await.ok();
                }
            });
        })
    };
    // Let the flood build up, then the same blocks again.
    tokio::time::sleep(Duration::from_secs(5)).await;
    eprintln!("flood: quiet blocks done; the flood runs");
    let started = Instant::now();
    let mut flooded = Vec::new();
    // The pool's CPU while each flooded block was processed: (actors', API's), in ms.
    let mut cpu_during = Vec::new();
    for i in 0..count {
        // As `Bench::block`, with the pool's CPU read when the block is announced and when
        // the pool has processed it.
        pay_random(&b.sim, &addresses, 200, &mut seed);
        let h = tip(&b.sim) + 1;
        b.sim.call("sim_generate", json!([1])).unwrap();
        let since = Instant::now();
        let (actors_before, api_before) = b.thread_cpu_ms();
        let (bench_before, clients_before) = threads_cpu_ms(std::process::id());
        let t = b.wait(h, since).await;
        let (actors_after, api_after) = b.thread_cpu_ms();
        let (bench_after, clients_after) = threads_cpu_ms(std::process::id());
        let during = [
            actors_after - actors_before,
            api_after - api_before,
            clients_after - clients_before,
            bench_after - bench_before,
        ];
        eprintln!(
            "flood: block {i}: {:.1} ms, pool RSS {:.0} MiB, CPU during it: actors {:.1} ms, API {:.1} ms, flood clients {:.1} ms, simulator and bench {:.1} ms",
            t.as_secs_f64() * 1000.0,
            b.rss().0,
            during[0],
            during[1],
            during[2],
            during[3],
        );
        cpu_during.push(during);
        flooded.push(t);
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let rss_flooded = b.rss();
    let flood_secs = started.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    flood_thread.join().unwrap();

    println!(
        "flood: backend={} subscribers={subscribers} clients={clients} (each its own address through a trusted proxy), txs/block=200",
        backend()
    );
    let p99 = |v: &[Duration]| {
        let mut v = v.to_vec();
        v.sort();
        percentile(&v, 0.99)
    };
    let ratio = p99(&flooded) / p99(&quiet);
    let (q50, q99, qmax) = report("  quiet block latency", quiet);
    let (p50, p99, max) = report("  flooded block latency", flooded);
    println!("  p99 flooded / quiet: {ratio:.2}");
    let mean = |k: usize| cpu_during.iter().map(|c| c[k]).sum::<f64>() / count as f64;
    let (actors_cpu, api_cpu, clients_cpu, bench_cpu) = (mean(0), mean(1), mean(2), mean(3));
    println!(
        "  CPU of the pool's threads while a flooded block is processed (mean): actors {actors_cpu:.1} ms, API {api_cpu:.1} ms"
    );
    println!(
        "  CPU of the bench's threads meanwhile (mean): flood clients {clients_cpu:.1} ms, simulator and bench {bench_cpu:.1} ms"
    );
    println!(
        "  pool RSS {:.0} MiB before the flood, {:.0} MiB (peak {:.0}) at its end",
        rss_quiet.0, rss_flooded.0, rss_flooded.1
    );
    println!(
        "  requests during the run ({flood_secs:.0} s of blocks and 5 s before), by kind and answer:"
    );
    let mut extra: BTreeMap<String, f64> = [
        ("clients".to_owned(), clients as f64),
        ("quiet_p50_ms".to_owned(), q50),
        ("quiet_p99_ms".to_owned(), q99),
        ("quiet_max_ms".to_owned(), qmax),
        ("p99_ratio".to_owned(), ratio),
        ("quiet_rss_mib".to_owned(), rss_quiet.0),
        ("actors_cpu_ms_per_block".to_owned(), actors_cpu),
        ("api_cpu_ms_per_block".to_owned(), api_cpu),
        ("flood_clients_cpu_ms_per_block".to_owned(), clients_cpu),
        ("bench_cpu_ms_per_block".to_owned(), bench_cpu),
    ]
    .into();
    for ((kind, result), n) in tally.lock().unwrap().iter() {
        println!("    {kind}: {result}: {n}");
        extra.insert(format!("{kind}: {result}"), *n as f64);
    }
    record(Figures {
        scenario: match std::env::var("BENCH_FLOOD_ONLY") {
            Ok(only) if !only.is_empty() => format!("flood only {only}"),
            _ => "flood".into(),
        },
        size: subscribers,
        p50_ms: Some(p50),
        p99_ms: Some(p99),
        max_ms: Some(max),
        rss_mib: Some(rss_flooded.0),
        rss_peak_mib: Some(rss_flooded.1),
        extra,
        ..Figures::default()
    });
}

async fn serve(subscribers: usize) {
    let (mut b, addresses) = Bench::new(subscribers, 5).await;
    b.start_and_catch_up().await;
    println!("serving on {} (subscriber {} exists)", b.http, addresses[0]);
    println!("stdin: a line 'stake' mines a stake by the first subscriber; EOF stops");
    let stdin = std::io::stdin();
    let mut line = String::new();
    while stdin.read_line(&mut line).unwrap_or(0) > 0 {
        if line.trim() == "stake" {
            let at = chrono::Utc::now().timestamp_micros();
            b.sim.call("sim_stake", json!([addresses[0]])).unwrap();
            println!("staked at {at}");
        }
        line.clear();
    }
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let arg = |i: usize, default: usize| -> usize {
        args.get(i).and_then(|a| a.parse().ok()).unwrap_or(default)
    };
    // The simulator serves HTTP with actix-web: run everything in an actix system.
    actix_web::rt::System::new().block_on(async {
        match args.first().map(String::as_str) {
            Some("blocks") => blocks(arg(1, 1000), arg(2, 30), 0).await,
            Some("live") => blocks(arg(1, 1000), arg(2, 30), 90).await,
            Some("startup") => startup(arg(1, 1000)).await,
            Some("catchup") => catchup(arg(1, 1440)).await,
            Some("maturity") => maturity(arg(1, 1000)).await,
            Some("conditions") => conditions(arg(1, 10_000)).await,
            Some("memory") => memory(arg(1, 1000), arg(2, 1000)).await,
            Some("reads") => reads(arg(1, 1000), arg(2, 100)).await,
            Some("fanout") => fanout(arg(1, 2000)).await,
            Some("flood") => flood(arg(1, 10_000), arg(2, 200), arg(3, 30)).await,
            Some("serve") => serve(arg(1, 1000)).await,
            Some("all") => all(arg(1, 10_000)).await,
            _ => eprintln!(
                "usage: cargo bench --bench pool -- blocks|live|startup|catchup|maturity|memory|reads|fanout|flood|serve|all [N] [M]"
            ),
        }
    });
    write_results();
}

/// Every scenario, one after the other, with `subscribers` where a scenario takes a
/// subscriber count (10,000: the size BENCHMARKS.md reports; memory after 1,000 blocks, not
/// 10,000). `reads` needs `wrk` and `fanout` the test virtualenv: a scenario whose tool is
/// missing is skipped and says so.
async fn all(subscribers: usize) {
    blocks(subscribers, 30, 0).await;
    live(subscribers).await;
    startup(subscribers).await;
    catchup(1440).await;
    maturity(subscribers).await;
    conditions(subscribers).await;
    memory(subscribers, 1_000).await;
    if Command::new("wrk").arg("--version").output().is_ok() {
        reads(1000, 100).await;
    } else {
        println!("reads: skipped (no wrk: apt install wrk)");
    }
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-venv/bin/python");
    if venv.exists() {
        fanout(2000).await;
    } else {
        println!("fanout: skipped (no target/test-venv: run the tests once)");
    }
    flood(subscribers, 200, 30).await;
}

/// `live`: blocks at the tip while the daemon's `getmininginfo` answers 90 ms late.
async fn live(subscribers: usize) {
    blocks(subscribers, 30, 90).await;
}
