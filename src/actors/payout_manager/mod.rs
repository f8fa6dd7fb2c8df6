//! PayoutManager — pays, exactly once.
//!
//! **State it owns:** `payment`, `payment_output`, `payout_state`, and the ledger entries that
//! move balances into payments and out of them.
//!
//! **Messages:** `BlockProcessed` (the watcher, when a round of blocks reaches the daemon's tip) and `StakesMatured` (the
//! tracker, when credits are on the books) wake it: it follows its payments and runs a cycle
//! when one is due (every `payout_interval_secs`, scheduled from the last completed cycle,
//! persisted). `RunPayouts` and `PausePayouts` come from admins. While payments are in flight
//! it also looks every `poll_interval_secs` (the daemon's operations report nothing by
//! themselves); otherwise a timer of at most 30 s is only a safety net.
//!
//! **The state machine** (architecture §4), each state committed before the next side effect:
//! PLANNED (outputs fixed, pending → in flight, one transaction; then, just before the call,
//! the last height its transaction can be mined at) → `sendcurrency` → SUBMITTED (opid) → SENT (txid; event
//! `PAYMENT_SENT`) → CONFIRMED at `payment_confirmations` (in flight → paid; back to SENT if
//! its block is disconnected; final, and no longer polled, once past any reorganisation
//! verusd accepts). FAILED (in flight → pending again) only when it is proved the payment can
//! never be mined: no unlinked transaction of the pool identity paying exactly its outputs is
//! in the mempool or in any block since it was planned, and the tip is past both its timeout
//! and the expiry of any transaction made for it. A `failed` or `cancelled` operation, or one
//! the daemon forgot, is such an unknown outcome: the wallet may hold the transaction and
//! broadcast it later. A payment is never sent again.
//!
//! **Failures:** while the daemon is behind the pool (a reindex, a fail-over node still
//! syncing) nothing moves. A ledger check that fails holds payouts (`payout_state
//! .check_failure`) until a check passes again; an admin's pause stays until an admin
//! resumes. A payment the daemon cannot tell about stays where it is; the others and the
//! cycle go on.

mod cycle;
mod follow;
pub mod machine;

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use sea_orm::DatabaseConnection;

use super::events::{BlockProcessed, Shutdown, StakesMatured};
use super::{ActorError, ChainContext, ChainFacts};
use crate::config::ChainConfig;
use crate::daemon::rpc::RpcClient;
use crate::domain::Sats;
use crate::metrics::Metrics;
use crate::store::audit::AuditEntry;
use crate::store::payments::Payment;

/// The network fee of one payment transaction, paid by the pool identity.
pub const NETWORK_FEE: Sats = Sats(10_000);
/// A payout cycle waits while the pool is more blocks than this behind the daemon's tip.
const CATCH_UP_MARGIN_BLOCKS: i64 = 5;

/// The payout logic; the actor serialises access to it.
pub struct PayoutCore {
    chain: Arc<ChainConfig>,
    db: DatabaseConnection,
    rpc: Arc<RpcClient>,
    metrics: Metrics,
    fence: crate::store::lease::Fence,
    facts: ChainFacts,
    events: Recipient<super::events::EventsWritten>,
    /// Whether the last look found the daemon behind the pool (logged once).
    behind: bool,
    /// Whether payments were in flight at the last look (they are followed at the poll
    /// interval: the daemon's operations report nothing by themselves).
    in_flight: bool,
}

impl PayoutCore {
    /// A payout manager for `chain`.
    pub fn new(cx: &ChainContext) -> PayoutCore {
        PayoutCore {
            chain: Arc::clone(&cx.chain),
            db: cx.db.clone(),
            rpc: Arc::clone(&cx.rpc),
            metrics: cx.metrics.clone(),
            fence: cx.fence.clone(),
            facts: cx.facts.clone(),
            events: cx.events.clone(),
            behind: false,
            in_flight: true,
        }
    }

    pub(super) fn name(&self) -> &str {
        &self.chain.name
    }
}

/// The longest the PayoutManager waits between two looks when nothing is in flight and no
/// block comes: a safety net (blocks and matured stakes wake it).
const IDLE: Duration = Duration::from_secs(30);

/// The actor around [`PayoutCore`].
pub struct PayoutManager {
    core: Arc<tokio::sync::Mutex<PayoutCore>>,
    poll: Duration,
    wake: Arc<tokio::sync::Notify>,
}

impl PayoutManager {
    /// The actor; its loop starts with it.
    pub fn new(core: PayoutCore) -> PayoutManager {
        let poll = Duration::from_secs(core.chain.poll_interval_secs);
        PayoutManager {
            core: Arc::new(tokio::sync::Mutex::new(core)),
            poll,
            wake: Arc::new(tokio::sync::Notify::new()),
        }
    }
}

impl Actor for PayoutManager {
    type Context = actix::Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        let core = Arc::clone(&self.core);
        let poll = self.poll;
        let wake = Arc::clone(&self.wake);
        ctx.spawn(actix::fut::wrap_future(async move {
            let mut last_error = Instant::now() - Duration::from_secs(3600);
            loop {
                let result = core.lock().await.tick(poll, IDLE.max(poll)).await;
                let wait = match result {
                    Ok(wait) => wait,
                    Err(e) => {
                        if last_error.elapsed() > Duration::from_secs(60) {
                            log::warn!("payouts: {e}; trying again");
                            last_error = Instant::now();
                        }
                        poll
                    }
                };
                tokio::select! {
                    () = wake.notified() => {}
                    () = tokio::time::sleep(wait) => {}
                }
            }
        }));
    }
}

impl Handler<BlockProcessed> for PayoutManager {
    type Result = ();
    fn handle(&mut self, _: BlockProcessed, _: &mut Self::Context) {
        self.wake.notify_one();
    }
}

impl Handler<StakesMatured> for PayoutManager {
    type Result = ();
    fn handle(&mut self, _: StakesMatured, _: &mut Self::Context) {
        self.wake.notify_one();
    }
}

impl Handler<Shutdown> for PayoutManager {
    type Result = ();
    fn handle(&mut self, _: Shutdown, ctx: &mut Self::Context) {
        ctx.stop();
    }
}

/// Run a payout cycle now (admin); with `dry_run`, only return the plan.
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<Vec<Payment>, ActorError>")]
pub struct RunPayouts {
    /// Plan only.
    pub dry_run: bool,
    /// The audit entry.
    pub audit: AuditEntry,
}

impl Handler<RunPayouts> for PayoutManager {
    type Result = ResponseFuture<Result<Vec<Payment>, ActorError>>;
    fn handle(&mut self, msg: RunPayouts, _: &mut Self::Context) -> Self::Result {
        let core = Arc::clone(&self.core);
        let wake = Arc::clone(&self.wake);
        Box::pin(async move {
            let planned = core.lock().await.run(msg.dry_run, Some(msg.audit)).await;
            // Its payments are in flight now: the loop follows them from here.
            wake.notify_one();
            planned
        })
    }
}

/// Pause or resume payouts (admin).
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<(), ActorError>")]
pub struct PausePayouts {
    /// Pause or resume.
    pub paused: bool,
    /// Why.
    pub reason: Option<String>,
    /// The audit entry.
    pub audit: AuditEntry,
}

impl Handler<PausePayouts> for PayoutManager {
    type Result = ResponseFuture<Result<(), ActorError>>;
    fn handle(&mut self, msg: PausePayouts, _: &mut Self::Context) -> Self::Result {
        let core = Arc::clone(&self.core);
        Box::pin(async move {
            core.lock()
                .await
                .pause(msg.paused, msg.reason, &msg.audit)
                .await
        })
    }
}
