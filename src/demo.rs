//! `coinstaker demo`: the whole pool on SQLite against an in-process simulated chain, so a
//! dashboard or wallet developer sees live data with one command.
//!
//! The chain is pre-mined so that the demo's subscribers are already past the 150-block
//! identity cooldown and stake age when the pool starts; then a block comes every
//! `--block-interval` seconds (about half of them staked). The real rules stay: maturity is
//! 100 blocks, stake age 150. The database lives in a temporary directory, fresh each run,
//! because the simulated chain is fresh each run.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use verusd_sim::chain::{FLAG_LOCKED, IdentityDef};
use verusd_sim::{Chain, Params, SimConfig, Simulator, ids};

use crate::config::Config;
use crate::startup::Application;

/// Coins in satoshis.
const COIN: i64 = 100_000_000;

/// One identity of the demo's cast.
struct Member {
    name: &'static str,
    /// UTXOs in whole coins.
    coins: &'static [i64],
    locked: bool,
    separate_authorities: bool,
    /// Why it is refused (for the banner), if it is.
    refused: Option<&'static str>,
}

const CAST: &[Member] = &[
    Member {
        name: "alice",
        coins: &[12_000, 8_000, 5_000],
        locked: true,
        separate_authorities: true,
        refused: None,
    },
    Member {
        name: "bob",
        coins: &[8_000],
        locked: true,
        separate_authorities: true,
        refused: None,
    },
    Member {
        name: "carol",
        coins: &[2_500, 1_000],
        locked: true,
        separate_authorities: true,
        refused: None,
    },
    Member {
        name: "dave",
        coins: &[4_000],
        locked: false,
        separate_authorities: true,
        refused: Some("not delay-locked"),
    },
    Member {
        name: "erin",
        coins: &[3_000],
        locked: true,
        separate_authorities: false,
        refused: Some("revokes and recovers itself"),
    },
];

/// Blocks mined before the pool starts: the cast's identities and coins are then older than
/// the 150-block cooldown and stake age.
const PREMINE: u32 = 200;

/// Builds the demo chain: the cast, the pool's float for fees, and history.
pub fn demo_chain(params: Params) -> Chain {
    let mut chain = Chain::new(params);
    let chain_id = chain.params.chain_id.clone();
    let pool_r = chain.params.pool_r_address.clone();
    let authority = |name: &str| ids::identity_address(name, &chain_id);
    for member in CAST {
        let address = ids::identity_address(member.name, &chain_id);
        let (revoke, recover) = if member.separate_authorities {
            (
                authority(&format!("{}-revoke", member.name)),
                authority(&format!("{}-recover", member.name)),
            )
        } else {
            (address.clone(), address.clone())
        };
        let def = IdentityDef {
            version: 3,
            flags: if member.locked { FLAG_LOCKED } else { 0 },
            primary_addresses: vec![
                ids::r_address(&format!("key:{}", member.name)),
                pool_r.clone(),
            ],
            minimum_signatures: 1,
            name: member.name.to_owned(),
            identity_address: address.clone(),
            parent: chain_id.clone(),
            system_id: chain_id.clone(),
            revocation_authority: revoke,
            recovery_authority: recover,
            timelock: if member.locked { 1440 } else { 0 },
        };
        // Registration and funding cannot fail on a fresh chain with fresh names.
        let _ = chain.register_identity(def);
        for coins in member.coins {
            let _ = chain.fund(&address, coins * COIN);
        }
    }
    let pool_identity = chain.params.pool_identity.clone();
    let _ = chain.fund(&pool_identity, 50 * COIN);
    // Stakers outside the pool, so the pool wins about half of the staked blocks.
    chain.external_supply = 40_000 * COIN;
    chain.generate(PREMINE);
    chain
}

/// Options of `coinstaker demo`.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// Time between blocks.
    pub block_interval: Duration,
}

/// A temporary directory removed when dropped.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs the demo until Ctrl-C.
pub async fn run(options: DemoOptions) -> anyhow::Result<()> {
    let mut password = [0u8; 16];
    getrandom::fill(&mut password).map_err(|e| anyhow::anyhow!("cannot draw random bytes: {e}"))?;
    let password: String = password.iter().map(|b| format!("{b:02x}")).collect();
    let sim_config = SimConfig {
        rpc_password: password.clone(),
        block_interval: Some(options.block_interval),
        params: Params {
            seed: 7,
            ..Params::default()
        },
        ..SimConfig::default()
    };
    let params = sim_config.params.clone();
    let sim = Simulator::start_with(sim_config, demo_chain)
        .await
        .context("cannot start the simulated chain")?;

    let dir = std::env::temp_dir().join(format!("coinstaker-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let dir = TempDir(dir);
    let text = format!(
        r#"[database]
url = "sqlite://{db}?mode=rwc"

[http]
bind = "127.0.0.1:8080"
graphiql = true

[[chain]]
name = "{name}"
rpc_url = "{rpc}"
rpc_user = "{user}"
rpc_password = "{password}"
zmq_block_url = "{zmq}"
poll_interval_secs = 2
pool_identity = "{pool_identity}"
pool_primary_address = "{pool_r}"
fee_percent = "5"
min_payout = "0.5"
maturity = 100
payout_interval_secs = 30
"#,
        db = dir.0.join("demo.db").display(),
        name = params.name,
        rpc = sim.rpc_url,
        user = sim.rpc_user,
        zmq = sim.zmq_url.as_deref().unwrap_or_default(),
        pool_identity = params.pool_identity,
        pool_r = params.pool_r_address,
    );
    // COINSTAKER_* variables apply as for `serve` (e.g. COINSTAKER_HTTP__BIND).
    let config = Config::from_toml(&text, std::path::Path::new("(demo)"), std::env::vars())
        .context("the demo configuration")?;
    let app = Application::build(config).await?;
    let url = format!("http://{}", app.addr());
    print_banner(&url, &params, options.block_interval);
    let result = app.run().await;
    sim.stop().await;
    drop(dir);
    result.context("server error")
}

fn print_banner(url: &str, params: &Params, interval: Duration) {
    let refused: Vec<String> = CAST
        .iter()
        .filter_map(|m| m.refused.map(|why| format!("{}@ ({why})", m.name)))
        .collect();
    let members: Vec<String> = CAST
        .iter()
        .filter(|m| m.refused.is_none())
        .map(|m| format!("{}@", m.name))
        .collect();
    println!();
    println!(
        "coinstaker demo: a simulated {} chain, a block every {:.1} s",
        params.name,
        interval.as_secs_f64()
    );
    println!("  dashboard  {url}/");
    println!("  GraphiQL   {url}/graphiql");
    println!("  GraphQL    {url}/graphql");
    println!("  health     {url}/healthz");
    println!(
        "  pool R-address {}   pool identity {}",
        params.pool_r_address, params.pool_identity
    );
    println!(
        "  subscribers: {}; refused: {}",
        members.join(", "),
        refused.join(", ")
    );
    println!();
    println!("Try in GraphiQL:");
    println!(
        "  {{ pool {{ chain tipHeight processedHeight subscriberCount stakingSupply feePercent }} }}"
    );
    println!(
        "  {{ pools {{ primaryAddress conditions {{ minUnlockDelay requireSeparateRevokeRecover }} }} }}"
    );
    println!();
    println!("Ctrl-C stops the demo (its database is temporary).");
}
