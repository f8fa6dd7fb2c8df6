//! `verusd-sim`: the simulated verusd on its own, for dashboard developers and manual tests.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;
use verusd_sim::{Params, SimConfig, Simulator};

/// A simulated verusd: JSON-RPC 1.0 with Basic auth and ZMQ hashblock, with control methods
/// (sim_*) to script a chain. See sim/README.md.
#[derive(Debug, Parser)]
#[command(name = "verusd-sim", version, about)]
struct Args {
    /// Address for JSON-RPC.
    #[arg(long, default_value = "127.0.0.1:18843")]
    rpc_bind: SocketAddr,
    /// ZeroMQ endpoint to publish hashblock on.
    #[arg(long, default_value = "tcp://127.0.0.1:28332")]
    zmq_bind: String,
    /// RPC user.
    #[arg(long, default_value = "user")]
    rpc_user: String,
    /// RPC password.
    #[arg(long, default_value = "pass")]
    rpc_password: String,
    /// Mine a block every SECS seconds (fractions allowed); omitted: only on request.
    #[arg(long, value_name = "SECS")]
    block_interval: Option<f64>,
    /// Proof-of-work blocks to mine at start.
    #[arg(long, default_value_t = 0)]
    premine: u32,
    /// Seed for hashes and random choices.
    #[arg(long, default_value_t = 42)]
    seed: u64,
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let args = Args::parse();
    let config = SimConfig {
        rpc_bind: args.rpc_bind,
        zmq_bind: Some(args.zmq_bind.clone()),
        rpc_user: args.rpc_user.clone(),
        rpc_password: args.rpc_password.clone(),
        block_interval: args
            .block_interval
            .filter(|s| *s > 0.0)
            .map(Duration::from_secs_f64),
        params: Params {
            seed: args.seed,
            ..Params::default()
        },
    };
    let premine = args.premine;
    let sim = Simulator::start_with(config, |params| {
        let mut chain = verusd_sim::Chain::new(params);
        chain.generate(premine);
        chain
    })
    .await?;
    println!(
        "verusd-sim: JSON-RPC at {} (user {:?}), ZMQ hashblock at {}",
        sim.rpc_url,
        args.rpc_user,
        sim.zmq_url.as_deref().unwrap_or("-")
    );
    println!(
        "try: curl --user {}:PASSWORD -d '{{\"method\":\"getblockcount\",\"params\":[],\"id\":1}}' {}/",
        args.rpc_user, sim.rpc_url
    );
    tokio::signal::ctrl_c().await?;
    sim.stop().await;
    println!("verusd-sim: stopped");
    Ok(())
}
