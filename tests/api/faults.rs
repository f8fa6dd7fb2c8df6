//! Fault injection: a long simulated run — subscribers joining and leaving, stakes, reorgs of
//! depth 1–10, StakeGuard, payments, and admin actions (bans, unbans, conditions, fees,
//! `subscribe`) among them — while the server is killed with SIGKILL at random moments and
//! restarted, the daemon restarts (forgetting its operations), reindexes or fails over to a
//! node still syncing, its wallet records sends the mempool refuses (offered again later, or
//! never), ZMQ notifications are dropped and daemon calls fail.
//!
//! Checked after every restart and at the end: the books balance and every payment exists
//! exactly once, on the chain and in the database. Throughout: the processed height never
//! decreases unless the block it left is no longer on the chain. At the end: no event was
//! written twice for the same fact, a banned subscriber earned nothing while banned, each
//! identity received on chain exactly its credits minus what is still pending, and the
//! credits equal those of an uninterrupted pool over the same chain with the same admin
//! actions at the same heights.
//!
//! CI runs the reduced form (600 blocks, 60 subscribers). The full form:
//! `FAULT_BLOCKS=5000 FAULT_MEMBERS=200 cargo test --release --test api faults -- --nocapture`
//! (`FAULT_SEED` picks another scenario). On PostgreSQL, the database-restart case runs on a
//! cluster of its own (`pg_createcluster` on port 5544), so other tests are not disturbed.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::process::Command;
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use coinstaker::domain::{ActionKind, EventKind, PaymentStatus, Sats, StakeStatus};
use coinstaker::store;
use sea_orm::{ActiveModelTrait, DatabaseConnection, EntityTrait, IntoActiveModel};
use serde_json::json;

use crate::support::{ADMIN_TOKEN, KillOnDrop, TestDb, pool_for, register, sim, spawn_app_with};

/// A small deterministic generator (xorshift64*): the same seed, the same scenario.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    /// True with probability `1 / n`.
    fn one_in(&mut self, n: u64) -> bool {
        self.below(n) == 0
    }
}

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The pool as a `coinstaker serve` child, killed and restarted at will.
struct Pool {
    dir: tempfile::TempDir,
    db_url: String,
    extra: String,
    child: Option<KillOnDrop>,
    log: Option<Receiver<String>>,
    lines: Vec<String>,
    /// Where the running child serves its API (from its log).
    url: Option<String>,
}

impl Pool {
    fn start(&mut self, sim: &verusd_sim::Simulator) {
        let (child, log) =
            crate::support::serve(self.dir.path(), sim, &self.db_url, &self.extra, None);
        self.child = Some(child);
        self.log = Some(log);
        self.url = None;
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill(); // SIGKILL
            let _ = child.wait();
        }
        self.drain();
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-INT", &child.id().to_string()])
                .status();
            let _ = child.wait();
        }
        self.drain();
    }

    fn drain(&mut self) {
        if let Some(log) = &self.log {
            for line in log.try_iter() {
                if let Some(url) = line
                    .split("listening on ")
                    .nth(1)
                    .and_then(|rest| rest.split_whitespace().next())
                {
                    self.url = Some(url.to_owned());
                }
                self.lines.push(line);
            }
        }
        // Keep the tail: enough to explain a failure.
        if self.lines.len() > 400 {
            self.lines.drain(..self.lines.len() - 400);
        }
    }

    /// Panics with the log tail when the process died on its own.
    fn assert_alive(&mut self) {
        let died = self
            .child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten());
        if let Some(status) = died {
            self.drain();
            panic!(
                "the pool exited by itself ({status}); its log:\n{}",
                self.lines.join("\n")
            );
        }
    }
}

/// The simulator's tip, read directly (its RPC may be failing on purpose).
fn tip(sim: &verusd_sim::Simulator) -> i64 {
    sim.with_node(|n| n.chain.tip_height())
}

/// The tip the daemon shows (below the chain's while it reindexes).
fn visible_tip(sim: &verusd_sim::Simulator) -> i64 {
    sim.with_node(|n| n.visible_tip())
}

/// Waits until the pool has processed the tip the daemon shows (within `lag` blocks).
async fn wait_caught_up(
    conn: &DatabaseConnection,
    sim: &verusd_sim::Simulator,
    pool: &mut Pool,
    lag: i64,
) {
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        pool.assert_alive();
        let processed = store::chain::tip(conn, "VRSC")
            .await
            .ok()
            .flatten()
            .map_or(0, |b| b.height);
        if processed >= visible_tip(sim) - lag {
            return;
        }
        if Instant::now() > deadline {
            pool.drain();
            panic!(
                "the pool did not catch up (processed {processed}, tip {}); its log:\n{}",
                tip(sim),
                pool.lines.join("\n")
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The pool identity's payment transactions on the main chain: txid → outputs paid to others.
fn payments_on_chain(sim: &verusd_sim::Simulator) -> BTreeMap<String, Vec<(String, i64)>> {
    let pool = sim.call("sim_state", json!([])).unwrap()["poolidentity"]
        .as_str()
        .unwrap()
        .to_owned();
    sim.with_node(|n| {
        let mut out = BTreeMap::new();
        for d in n.chain.deltas_of(&pool).iter().filter(|d| d.satoshis < 0) {
            let Some(tx) = n.chain.tx(&d.txid) else {
                continue;
            };
            // A StakeGuard proof also spends from the pool identity (the stake's reward).
            if tx.stakeguard_proof {
                continue;
            }
            let mut paid: Vec<(String, i64)> = tx
                .outputs
                .iter()
                .filter_map(|o| o.script.first_destination().map(|a| (a, o.value)))
                .filter(|(a, _)| *a != pool)
                .collect();
            paid.sort();
            out.insert(d.txid.clone(), paid);
        }
        out
    })
}

/// The books balance, no two payments share a transaction, and no pool payment on the chain is
/// unknown to the database. With `settled`, every payment is confirmed and the chain and the
/// database hold exactly the same payments.
async fn check_books(
    conn: &DatabaseConnection,
    sim: &verusd_sim::Simulator,
    settled: bool,
    when: &str,
) {
    assert_eq!(
        store::ledger::check_snapshot(conn, "VRSC").await.unwrap(),
        Ok(()),
        "{when}: the ledger check"
    );
    let all = store::payments::with_status(
        conn,
        "VRSC",
        &[
            PaymentStatus::Planned,
            PaymentStatus::Submitted,
            PaymentStatus::Sent,
            PaymentStatus::Confirmed,
            PaymentStatus::Failed,
        ],
    )
    .await
    .unwrap();
    let mut by_txid: HashMap<String, i64> = HashMap::new();
    for p in all.iter().filter(|p| p.status != PaymentStatus::Failed) {
        if let Some(txid) = &p.txid {
            let twice = by_txid.insert(txid.clone(), p.id);
            assert!(
                twice.is_none(),
                "{when}: payments {twice:?} and {} share {txid}",
                p.id
            );
        }
    }
    let on_chain = payments_on_chain(sim);
    let unresolved = all
        .iter()
        .filter(|p| p.status == PaymentStatus::Planned || p.status == PaymentStatus::Submitted)
        .count();
    let unknown: Vec<&String> = on_chain
        .keys()
        .filter(|t| !by_txid.contains_key(*t))
        .collect();
    // A payment sent just before a kill is on the chain before the database links it; it can
    // only be one of the unresolved ones.
    assert!(
        unknown.len() <= unresolved,
        "{when}: pool transactions on the chain that no payment explains: {:?}; payments: {all:?}",
        unknown
            .iter()
            .map(|t| (t, &on_chain[*t]))
            .collect::<Vec<_>>()
    );
    if settled {
        assert_eq!(unresolved, 0, "{when}: every payment settled");
        let confirmed: BTreeMap<String, Vec<(String, i64)>> = all
            .iter()
            .filter(|p| p.status == PaymentStatus::Confirmed)
            .map(|p| {
                let mut outs: Vec<(String, i64)> =
                    p.outputs.iter().map(|(a, s)| (a.clone(), s.0)).collect();
                outs.sort();
                (p.txid.clone().unwrap_or_default(), outs)
            })
            .collect();
        assert_eq!(
            confirmed, on_chain,
            "{when}: the confirmed payments are exactly the pool's transactions on the chain"
        );
        assert!(
            all.iter()
                .all(|p| matches!(p.status, PaymentStatus::Confirmed | PaymentStatus::Failed)),
            "{when}: nothing in flight"
        );
    }
}

/// Credits per non-stale stake, by block hash: status, reward and (identity, work, amount).
type Credits = BTreeMap<String, (String, i64, Vec<(String, String, i64)>)>;

async fn credits(conn: &DatabaseConnection) -> Credits {
    let mut out = BTreeMap::new();
    for status in [
        StakeStatus::Maturing,
        StakeStatus::Matured,
        StakeStatus::StakeGuard,
    ] {
        for s in store::stakes::with_status(conn, "VRSC", status)
            .await
            .unwrap()
        {
            let mut c: Vec<(String, String, i64)> = store::stakes::credits_of_stake(conn, s.id)
                .await
                .unwrap()
                .into_iter()
                .map(|c| (c.identity_address, c.work.to_string(), c.amount.0))
                .collect();
            c.sort();
            out.insert(
                s.block_hash.clone(),
                (status.as_str().to_owned(), s.reward.0, c),
            );
        }
    }
    out
}

/// Methods whose next calls fail, and how.
const FAILING: &[&str] = &[
    "getblockcount",
    "getblockhash",
    "getblock",
    "getidentity",
    "getaddressutxos",
    "getrawtransaction",
    "getaddressdeltas",
    "getaddressmempool",
    "getaddresstxids",
    "z_getoperationstatus",
    "getmininginfo",
    "sendcurrency",
];

fn failure(rng: &mut Rng) -> serde_json::Value {
    let method = FAILING[rng.below(FAILING.len() as u64) as usize];
    let count = 1 + rng.below(3);
    match rng.below(3) {
        0 => {
            json!({"method": method, "count": count, "http_status": 503, "code": -1, "message": "injected: service unavailable"})
        }
        1 => json!({"method": method, "count": count, "malformed": true}),
        _ => {
            json!({"method": method, "count": count, "http_status": 500, "code": -28, "message": "Loading block index..."})
        }
    }
}

/// What happened during a run, for the log and BENCHMARKS.md.
#[derive(Debug, Default)]
struct Tally {
    kills: u32,
    daemon_restarts: u32,
    zmq_drops: u32,
    call_failures: u32,
    reorgs: u32,
    stakeguards: u32,
    joins: u32,
    leaves: u32,
    db_restarts: u32,
    reindexes: u32,
    failovers: u32,
    refused_sends: u32,
    admin_actions: u32,
}

/// An admin's or subscriber's action, drawn by `rng`: ban, unban, conditions, fees,
/// `subscribe` (as a GraphQL mutation). The draws do not depend on any answer, so a seed is one
/// scenario.
fn admin_action(rng: &mut Rng, members: &[(String, String)]) -> Option<String> {
    if members.is_empty() {
        return None;
    }
    let (name, _) = &members[rng.below(members.len() as u64) as usize];
    Some(match rng.below(6) {
        0 | 1 => format!(
            "mutation {{ banSubscriber(identity: \"{name}@\", banned: true) {{ status }} }}"
        ),
        2 => format!(
            "mutation {{ banSubscriber(identity: \"{name}@\", banned: false) {{ status }} }}"
        ),
        3 => {
            let max = [0, 2, 4][rng.below(3) as usize];
            format!(
                "mutation {{ updatePoolConditions(input: {{maxUtxos: {max}}}) {{ maxUtxos }} }}"
            )
        }
        4 => {
            let fee = ["3.33", "5", "1.5", "0"][rng.below(4) as usize];
            if rng.one_in(2) {
                format!("mutation {{ setPoolFee(feePercent: \"{fee}\") {{ feePercent }} }}")
            } else {
                format!(
                    "mutation {{ setSubscriberFee(identity: \"{name}@\", feePercent: \"{fee}\") {{ feePercent }} }}"
                )
            }
        }
        _ => format!("mutation {{ subscribe(identity: \"{name}@\") {{ eligible }} }}"),
    })
}

/// Sends an admin's mutation to the running pool. Refusals (not a subscriber) and a pool
/// that is down are part of the scenario.
async fn send_admin(client: &reqwest::Client, pool: &mut Pool, mutation: &str) {
    pool.drain();
    let Some(url) = pool.url.clone() else {
        return;
    };
    let _ = client
        .post(format!("{url}/graphql"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({ "query": mutation }))
        .timeout(Duration::from_secs(10))
        .send()
        .await;
}

/// Copies the admins' decisions of the faulted pool (settings by height, subscribers' own
/// fees, registry actions, not applied yet) into `reference`, and holds its payouts: the
/// reference then follows the same chain with the same actions at the same heights.
async fn copy_decisions(faulted: &DatabaseConnection, reference: &DatabaseConnection) {
    use entity::{pool_settings, registry_action, subscriber_fee};
    for row in pool_settings::Entity::find().all(faulted).await.unwrap() {
        let mut am = row.into_active_model();
        am.id = sea_orm::ActiveValue::NotSet;
        am.insert(reference).await.unwrap();
    }
    for row in subscriber_fee::Entity::find().all(faulted).await.unwrap() {
        let mut am = row.into_active_model();
        am.id = sea_orm::ActiveValue::NotSet;
        am.insert(reference).await.unwrap();
    }
    for row in registry_action::Entity::find().all(faulted).await.unwrap() {
        let mut am = row.into_active_model();
        am.id = sea_orm::ActiveValue::NotSet;
        am.applied = sea_orm::ActiveValue::Set(false);
        am.announced = sea_orm::ActiveValue::Set(false);
        am.insert(reference).await.unwrap();
    }
    store::settings::set_payouts_paused(reference, "VRSC", true, Some("the reference never pays"))
        .await
        .unwrap();
}

/// No event was written twice for the same fact: each identity's SUBSCRIBER_JOINED and
/// SUBSCRIBER_LEFT alternate, starting with a join; a stake is found, matured and made stale at
/// most once; a payment is sent once.
async fn check_events(conn: &DatabaseConnection) {
    let all = store::events::list(conn, &store::events::EventFilter::default(), 1_000_000)
        .await
        .unwrap();
    let mut membership: HashMap<String, Vec<EventKind>> = HashMap::new();
    let mut facts: HashMap<(EventKind, String), u32> = HashMap::new();
    for e in &all {
        let e = &e.event;
        match e.kind {
            EventKind::SubscriberJoined | EventKind::SubscriberLeft => {
                let seen = membership
                    .entry(e.identity_address.clone().unwrap_or_default())
                    .or_default();
                let expected = if seen.last() == Some(&EventKind::SubscriberJoined) {
                    EventKind::SubscriberLeft
                } else {
                    EventKind::SubscriberJoined
                };
                assert_eq!(
                    e.kind, expected,
                    "{:?}: joins and leaves alternate; so far {seen:?}; event {e:?}",
                    e.identity_address
                );
                seen.push(e.kind);
            }
            EventKind::StakeFound | EventKind::StakeMatured | EventKind::StakeStale => {
                *facts
                    .entry((e.kind, e.block_hash.clone().unwrap_or_default()))
                    .or_default() += 1;
            }
            EventKind::PaymentSent => {
                *facts
                    .entry((e.kind, format!("{:?}", e.payment_id)))
                    .or_default() += 1;
            }
            EventKind::IdentityAlert => {}
        }
    }
    let twice: Vec<_> = facts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "events written twice: {twice:?}");
}

/// A banned subscriber earned nothing while banned: no credit from a stake whose whole round
/// lies between a ban that took effect and the next unban.
async fn check_bans(conn: &DatabaseConnection) {
    let actions = store::actions::all(conn, "VRSC").await.unwrap();
    let matured = store::stakes::with_status(conn, "VRSC", StakeStatus::Matured)
        .await
        .unwrap();
    for ban in actions.iter().filter(|a| a.kind == ActionKind::Ban) {
        // The ban took effect if its status row is in the history.
        let history = store::subscribers::history(conn, "VRSC", &ban.identity_address)
            .await
            .unwrap();
        if !history
            .iter()
            .any(|(h, s, _)| *h == ban.height && *s == coinstaker::domain::SubscriberStatus::Banned)
        {
            continue;
        }
        let until = actions
            .iter()
            .filter(|a| {
                a.kind == ActionKind::Unban
                    && a.identity_address == ban.identity_address
                    && a.height > ban.height
            })
            .map(|a| a.height)
            .min()
            .unwrap_or(i64::MAX);
        for s in matured
            .iter()
            .filter(|s| s.round_start_height >= ban.height && s.height < until)
        {
            let credits = store::stakes::credits_of_stake(conn, s.id).await.unwrap();
            assert!(
                credits
                    .iter()
                    .all(|c| c.identity_address != ban.identity_address || c.work.0 == 0),
                "{} banned at {} earned from stake {} (round {}..={})",
                ban.identity_address,
                ban.height,
                s.block_hash,
                s.round_start_height,
                s.height
            );
        }
    }
}

/// Each identity received on chain exactly Σ its credits minus what is still pending.
async fn check_received(conn: &DatabaseConnection, sim: &verusd_sim::Simulator) {
    let mut credited: BTreeMap<String, i64> = BTreeMap::new();
    for s in store::stakes::with_status(conn, "VRSC", StakeStatus::Matured)
        .await
        .unwrap()
    {
        for c in store::stakes::credits_of_stake(conn, s.id).await.unwrap() {
            *credited.entry(c.identity_address).or_default() += c.amount.0;
        }
    }
    let mut received: BTreeMap<String, i64> = BTreeMap::new();
    for outputs in payments_on_chain(sim).values() {
        for (who, amount) in outputs {
            *received.entry(who.clone()).or_default() += amount;
        }
    }
    for (who, credit) in &credited {
        let pending = store::ledger::balance(conn, "VRSC", who)
            .await
            .unwrap()
            .pending
            .0;
        assert_eq!(
            received.get(who).copied().unwrap_or(0),
            credit - pending,
            "{who}: received on chain = credits {credit} − pending {pending}"
        );
    }
    for who in received.keys() {
        assert!(
            credited.contains_key(who),
            "{who} was paid without a credit"
        );
    }
}

/// Runs the scenario against the database at `db_url`; `db_fault` (when given) takes the
/// database down (`false`) twice during the run and brings it back (`true`) 20 blocks later.
async fn fault_run(db_url: &str, db_fault: Option<&dyn Fn(bool)>) {
    let blocks = env_or("FAULT_BLOCKS", 600);
    let max_members = env_or("FAULT_MEMBERS", 60) as usize;
    let seed = env_or("FAULT_SEED", 0x00c0_1257_a4e5);
    let started = Instant::now();
    let mut scenario = Rng(seed | 1);
    let mut faults = Rng((seed ^ 0x5eed_fa17) | 1);
    let sim = sim().await;
    sim.call("sim_setexternalsupply", json!(["20000"])).unwrap();
    let mut members: Vec<(String, String)> = Vec::new(); // (name, address)
    let mut left: HashSet<usize> = HashSet::new();
    let own = |name: &str| verusd_sim::ids::r_address(&format!("own:{name}"));
    let pool_r = sim.call("sim_state", json!([])).unwrap()["poolprimaryaddress"]
        .as_str()
        .unwrap()
        .to_owned();
    let join = |members: &mut Vec<(String, String)>, rng: &mut Rng| {
        let name = format!("m{}", members.len());
        let who = register(&sim, &name, json!({}));
        for _ in 0..1 + rng.below(3) {
            let coins = 50 + rng.below(2000);
            sim.call("sim_fund", json!([who, coins.to_string()]))
                .unwrap();
        }
        members.push((name, who));
    };
    for _ in 0..max_members / 3 {
        join(&mut members, &mut scenario);
    }
    sim.with_node(|n| n.auto_block());
    let conn = coinstaker::store::connect_url(db_url, 2).await.unwrap();
    let client = coinstaker::net::client_builder().build().unwrap();
    // The pool's processed block as last seen: it may only go down when that block left the
    // chain (a reorganisation), never because the daemon is behind.
    let mut last_seen: Option<store::chain::BlockRef> = None;
    let mut pool = Pool {
        dir: tempfile::tempdir().unwrap(),
        db_url: db_url.to_owned(),
        extra: format!(
            "zmq_block_url = \"{}\"\nfee_percent = \"3.33\"\nmaturity = 100\nmin_payout = \"1\"\npayment_timeout_blocks = 40\npayout_interval_secs = 2\n",
            sim.zmq_url.clone().unwrap_or_default()
        ),
        child: None,
        log: None,
        lines: Vec::new(),
        url: None,
    };
    pool.start(&sim);
    let mut tally = Tally::default();
    let db_down_at: Vec<u64> = if db_fault.is_some() {
        vec![blocks / 3, 2 * blocks / 3]
    } else {
        Vec::new()
    };
    let mut db_down_since: Option<u64> = None;
    let mut burst = 0;

    for i in 0..blocks {
        // The scenario.
        if members.len() < max_members && scenario.one_in(12) {
            join(&mut members, &mut scenario);
            tally.joins += 1;
        }
        if scenario.one_in(60) && !members.is_empty() {
            let k = scenario.below(members.len() as u64) as usize;
            let (name, _) = &members[k];
            // Leaving drops the pool's address; coming back adds it again.
            let primary = if left.contains(&k) {
                left.remove(&k);
                json!([own(name), pool_r])
            } else {
                left.insert(k);
                tally.leaves += 1;
                json!([own(name)])
            };
            sim.call(
                "sim_updateidentity",
                json!([{"identity": format!("{name}@"), "primaryaddresses": primary}]),
            )
            .unwrap();
        }
        if scenario.one_in(25) && !members.is_empty() {
            let k = scenario.below(members.len() as u64) as usize;
            let coins = 1 + scenario.below(500);
            sim.call("sim_fund", json!([members[k].1, coins.to_string()]))
                .unwrap();
        }
        sim.with_node(|n| n.auto_block());
        if scenario.one_in(150) {
            let depth = 1 + scenario.below(10);
            if sim.call("sim_reorg", json!([depth])).is_ok() {
                tally.reorgs += 1;
            }
        }
        if scenario.one_in(30) {
            // Drawn whatever happens, so the scenario stays the same; sent while the database
            // is up (a mutation would wait for it).
            let action = admin_action(&mut scenario, &members);
            if db_down_since.is_none()
                && let Some(mutation) = action
            {
                send_admin(&client, &mut pool, &mutation).await;
                tally.admin_actions += 1;
            }
        }
        if scenario.one_in(200) {
            // StakeGuard takes the reward of the newest maturing pool stake.
            let maturing = store::stakes::with_status(&conn, "VRSC", StakeStatus::Maturing)
                .await
                .unwrap_or_default();
            if let Some(s) = maturing.last()
                && sim.call("sim_stakeguard", json!([s.block_hash])).is_ok()
            {
                tally.stakeguards += 1;
            }
        }

        // The faults.
        if faults.one_in(50) {
            sim.call("sim_dropnotifications", json!([1 + faults.below(3)]))
                .unwrap();
            tally.zmq_drops += 1;
        }
        if faults.one_in(30) {
            sim.call("sim_failnext", json!([failure(&mut faults)]))
                .unwrap();
            tally.call_failures += 1;
        }
        if faults.one_in(300) {
            sim.call("sim_restart", json!([faults.below(3)])).unwrap();
            tally.daemon_restarts += 1;
        }
        if faults.one_in(40) {
            // The wallet records the next send, the mempool refuses it; the operation says
            // failed or success, and the wallet offers it again later, or only at a restart.
            let status = if faults.one_in(2) {
                "failed"
            } else {
                "success"
            };
            let after = (!faults.one_in(3)).then(|| 1 + faults.below(8));
            sim.call(
                "sim_failnextop",
                json!([{"status": status, "rebroadcast_after": after}]),
            )
            .unwrap();
            tally.refused_sends += 1;
        }
        if faults.one_in(250) && visible_tip(&sim) == tip(&sim) {
            // A reindex (the tip drops and climbs back on the same blocks), or a fail-over to a
            // node still syncing; either climbs 3–8 blocks per block mined.
            let step = 3 + faults.below(6);
            if faults.one_in(2) {
                let depth = 20 + faults.below(100) as i64;
                sim.call("sim_reindex", json!([(tip(&sim) - depth).max(1), step]))
                    .unwrap();
                tally.reindexes += 1;
            } else {
                sim.call("sim_failover", json!([5 + faults.below(30), step]))
                    .unwrap();
                tally.failovers += 1;
            }
        }
        if let Some(fault) = db_fault {
            if db_down_at.contains(&i) {
                fault(false);
                db_down_since = Some(i);
                tally.db_restarts += 1;
            } else if db_down_since.is_some_and(|at| i >= at + 20) {
                fault(true);
                db_down_since = None;
            }
        }
        if faults.one_in(120) && db_down_since.is_none() {
            // A kill at a random moment: up to 400 ms into whatever the pool is doing.
            tokio::time::sleep(Duration::from_millis(faults.below(400))).await;
            pool.kill();
            tally.kills += 1;
            // Blocks go on while it is down.
            for _ in 0..faults.below(15) {
                sim.with_node(|n| n.auto_block());
            }
            pool.start(&sim);
            wait_caught_up(&conn, &sim, &mut pool, 0).await;
            check_books(
                &conn,
                &sim,
                false,
                &format!("after kill {} (block {i})", tally.kills),
            )
            .await;
        }
        // The processed height goes down only when the block it left is off the chain. (Not
        // read while the database is down: each read would wait for a connection.)
        let now = match db_down_since {
            None => store::chain::tip(&conn, "VRSC").await.ok().flatten(),
            Some(_) => None,
        };
        if let Some(now) = now {
            if let Some(before) = last_seen.as_ref().filter(|b| now.height < b.height) {
                let still_there = sim.with_node(|n| {
                    n.chain
                        .block_at(before.height)
                        .is_some_and(|b| b.hash == before.hash)
                });
                assert!(
                    !still_there,
                    "block {} at {} was unwound while still on the chain (now at {})",
                    before.hash, before.height, now.height
                );
            }
            last_seen = Some(now);
        }
        // The pool keeps up (blocks come one by one, as on a real chain, and payouts are
        // planned only near the tip), except in bursts of 5–30 blocks mined at once, which
        // it catches up on: kills land in the middle of that work too. (No waiting while the
        // database is down: then it cannot keep up.)
        if burst > 0 {
            burst -= 1;
        } else if scenario.one_in(25) {
            burst = 5 + scenario.below(26);
        } else if db_down_since.is_none() {
            wait_caught_up(&conn, &sim, &mut pool, 2).await;
        }
    }

    // The end: no more faults and no new payout cycles (the last one stays the last);
    // let every payment settle.
    pool.stop();
    pool.extra = pool
        .extra
        .replace("payout_interval_secs = 2", "payout_interval_secs = 1000000");
    pool.start(&sim);
    sim.call("sim_climb", json!([1_000_000])).unwrap();
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        sim.with_node(|n| n.chain.generate(1));
        wait_caught_up(&conn, &sim, &mut pool, 0).await;
        let open = crate::support::open_payments(&conn).await.unwrap();
        let mempool_empty = sim.call("sim_state", json!([])).unwrap()["mempool"]
            .as_array()
            .is_none_or(Vec::is_empty);
        if open.is_empty() && mempool_empty {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "payments did not settle: {open:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    wait_caught_up(&conn, &sim, &mut pool, 0).await;
    pool.stop();
    check_books(&conn, &sim, true, "at the end").await;
    check_events(&conn).await;
    check_bans(&conn).await;
    check_received(&conn, &sim).await;
    let faulted = credits(&conn).await;
    let totals = store::ledger::pool_totals(&conn, "VRSC").await.unwrap();
    let matured = faulted.values().filter(|(s, _, _)| s == "MATURED").count();
    assert!(matured >= 2, "stakes matured ({matured})");
    assert!(
        totals.total_paid.0 > 0,
        "payments were made: {totals:?}; the pool's payout log lines:\n{}",
        pool.lines
            .iter()
            .filter(|l| l.contains("payment") || l.contains("payout"))
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );

    // The same chain, followed by a pool that is never interrupted (and never pays), with the
    // same admin actions at the same heights.
    let tip = tip(&sim);
    let edit = pool_for(&sim, 1);
    let reference_db = TestDb::new(true).await;
    copy_decisions(&conn, &reference_db.migrated().await).await;
    let mut reference = spawn_app_with(
        reference_db,
        move |c| {
            // As the faulted pool's: the test config's fee (3.33 %), maturity and minimum.
            let mut c = edit(c);
            c.chains[0].maturity = 100;
            c.chains[0].min_payout = Sats::coins(1);
            c
        },
        &sim.rpc_url,
    )
    .await;
    // A catch-up of the whole run: longer than `wait_processed` allows.
    let deadline = Instant::now() + Duration::from_secs(1800);
    loop {
        let processed = store::chain::tip(&reference.app_state.db, "VRSC")
            .await
            .ok()
            .flatten()
            .map_or(0, |b| b.height);
        if processed >= tip {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the reference pool did not catch up ({processed} of {tip})"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let expected = credits(&reference.app_state.db).await;
    let ref_totals = store::ledger::pool_totals(&reference.app_state.db, "VRSC")
        .await
        .unwrap();
    assert_eq!(
        faulted.len(),
        expected.len(),
        "the same stakes: {:?} vs {:?}",
        faulted.keys().collect::<Vec<_>>(),
        expected.keys().collect::<Vec<_>>()
    );
    for (hash, want) in &expected {
        assert_eq!(faulted.get(hash), Some(want), "stake {hash}");
    }
    assert_eq!(
        (totals.credited_total, totals.fees_earned),
        (ref_totals.credited_total, ref_totals.fees_earned),
        "the same credits and fees"
    );
    eprintln!(
        "fault run: {blocks} blocks (tip {tip}), {} subscribers, seed {seed:#x}: {tally:?}; {matured} stakes matured, {} paid in {} payments; {:.0} s",
        members.len(),
        totals.total_paid,
        payments_on_chain(&sim).len(),
        started.elapsed().as_secs_f64()
    );
    assert!(tally.kills >= 1, "the run killed the pool at least once");
    reference.stop().await;
    sim.stop().await;
}

#[actix_web::test]
async fn a_long_run_with_kills_daemon_restarts_and_failing_calls_balances() {
    let db = TestDb::new(true).await;
    fault_run(&db.url, None).await;
}

/// A PostgreSQL cluster of the test's own on port 5544, dropped at the end.
struct OwnCluster {
    version: String,
}

const CLUSTER: &str = "cstest_faults";
const CLUSTER_PORT: &str = "5544";

impl OwnCluster {
    fn create() -> OwnCluster {
        let version = std::fs::read_dir("/etc/postgresql")
            .expect("PostgreSQL is installed (/etc/postgresql)")
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .max_by_key(|v| v.parse::<u32>().unwrap_or(0))
            .expect("a PostgreSQL version");
        // Leftovers of an interrupted run.
        let _ = Command::new("pg_dropcluster")
            .args(["--stop", &version, CLUSTER])
            .status();
        let ok = Command::new("pg_createcluster")
            .args([&version, CLUSTER, "-p", CLUSTER_PORT, "--start"])
            .args(["--", "--auth-local=trust", "--auth-host=trust"])
            .status()
            .expect("pg_createcluster");
        assert!(ok.success(), "pg_createcluster {version} {CLUSTER}");
        let psql = |sql: &str| {
            let ok = Command::new("runuser")
                .args([
                    "-u",
                    "postgres",
                    "--",
                    "psql",
                    "-p",
                    CLUSTER_PORT,
                    "-v",
                    "ON_ERROR_STOP=1",
                    "-qc",
                    sql,
                ])
                .status()
                .expect("psql");
            assert!(ok.success(), "{sql}");
        };
        psql("CREATE ROLE coinstaker LOGIN PASSWORD 'coinstaker'");
        psql("CREATE DATABASE faults OWNER coinstaker");
        OwnCluster { version }
    }

    fn ctl(&self, action: &str) {
        let ok = Command::new("pg_ctlcluster")
            .args(["--skip-systemctl-redirect", &self.version, CLUSTER, action])
            .status()
            .expect("pg_ctlcluster");
        assert!(ok.success(), "pg_ctlcluster {action}");
    }
}

impl Drop for OwnCluster {
    fn drop(&mut self) {
        let _ = Command::new("pg_dropcluster")
            .args(["--stop", &self.version, CLUSTER])
            .status();
    }
}

/// Runs during the PostgreSQL pass only (`TEST_DATABASE_URL=postgres://…`): it needs root to
/// create a cluster.
#[actix_web::test]
async fn on_postgresql_the_database_restarting_mid_run_loses_nothing() {
    if !crate::support::server_url().is_some_and(|u| u.starts_with("postgres")) {
        eprintln!("skipped: runs in the PostgreSQL pass (TEST_DATABASE_URL=postgres://…)");
        return;
    }
    assert!(
        Path::new("/usr/bin/pg_createcluster").exists(),
        "postgresql-common is installed"
    );
    let cluster = OwnCluster::create();
    let url = format!("postgres://coinstaker:coinstaker@127.0.0.1:{CLUSTER_PORT}/faults");
    // Down for 20 blocks while the pool works.
    let restart = |up: bool| cluster.ctl(if up { "start" } else { "stop" });
    fault_run(&url, Some(&restart)).await;
}

/// Runs `coinstaker serve` on `db` until it processed `height` (or the fault named aborts it).
async fn serve_until(
    sim: &verusd_sim::Simulator,
    db: &TestDb,
    height: i64,
    fault: Option<&str>,
) -> Option<std::process::ExitStatus> {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, log) = crate::support::serve(dir.path(), sim, &db.url, "maturity = 100", fault);
    if fault.is_some() {
        let status = child.wait().unwrap();
        return Some(status);
    }
    let conn = db.connect().await;
    let done = crate::support::processes_up_to(&conn, height, 120).await;
    let _ = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    let _ = child.wait();
    assert!(
        done,
        "the pool processed up to {height}; log:\n{}",
        log.try_iter().collect::<Vec<_>>().join("\n")
    );
    None
}

/// While catching up, each actor applies several blocks in one transaction. Killed inside one
/// (the registry's before and after its commit, the tracker's at a maturity), the restarted
/// pool ends as if uninterrupted: the same rows, stakes and credits.
#[actix_web::test]
async fn killed_inside_a_catch_up_batch_and_restarted_ends_as_if_uninterrupted() {
    let sim = sim().await;
    let alice = register(&sim, "alice", json!({}));
    sim.call("sim_fund", json!([alice, "100", 3])).unwrap();
    let before_bob = crate::support::mine(&sim, 200);
    // Bob joins in the middle of a catch-up: his outputs are asked between two transactions.
    let bob = register(&sim, "bob", json!({}));
    sim.call("sim_fund", json!([bob, "50"])).unwrap();
    crate::support::mine(&sim, 120);
    let (_, first) = crate::stakes::stake(&sim, &alice);
    crate::support::mine(&sim, 10);
    let (_, second) = crate::stakes::stake(&sim, &alice);
    let tip = crate::support::mine(&sim, 130);
    let bob_joined = before_bob + 1;
    let matured = first + 100;

    let reference = TestDb::new(true).await;
    serve_until(&sim, &reference, tip, None).await;
    let reference_conn = reference.connect().await;
    let expected = credits(&reference_conn).await;
    assert_eq!(
        expected
            .values()
            .map(|(status, _, credits)| (status.as_str(), !credits.is_empty()))
            .collect::<Vec<_>>(),
        [("MATURED", true), ("MATURED", true)],
        "two pool stakes ({first}, {second}), both matured with credits"
    );

    for (point, at) in [
        ("registry-before-commit", bob_joined),
        ("registry-after-commit", first),
        ("stakes-before-commit", matured),
    ] {
        let db = TestDb::new(true).await;
        let fault = format!("{point}:{at}");
        let status = serve_until(&sim, &db, tip, Some(&fault)).await;
        assert!(
            status.is_some_and(|s| !s.success()),
            "{fault}: the process was killed by the fault ({status:?})"
        );
        let conn = db.connect().await;
        let processed = store::chain::processed_height(&conn, "VRSC").await.unwrap();
        assert!(
            processed < at,
            "{fault}: block {at} is not recorded ({processed})"
        );
        let cursor = |actor: &'static str| {
            let conn = &conn;
            async move {
                store::chain::cursor(conn, "VRSC", actor)
                    .await
                    .unwrap()
                    .map_or(0, |(h, _)| h)
            }
        };
        match point {
            "registry-before-commit" => assert!(cursor("registry").await < at, "{fault}"),
            "stakes-before-commit" => assert!(cursor("stakes").await < at, "{fault}"),
            _ => assert!(
                cursor("registry").await > at,
                "{fault}: the registry's transaction also held the blocks after {at} (a catch-up batch)"
            ),
        }
        serve_until(&sim, &db, tip, None).await;
        assert_eq!(
            crate::support::business_rows(&conn).await,
            crate::support::business_rows(&reference_conn).await,
            "{fault}: the same rows as an uninterrupted run"
        );
        assert_eq!(credits(&conn).await, expected, "{fault}: the same credits");
    }
    sim.stop().await;
}
