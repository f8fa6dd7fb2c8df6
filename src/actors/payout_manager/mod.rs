//! PayoutManager — pays, exactly once.
//!
//! **State it owns:** `payment`, `payment_output`, `payout_state`, and the ledger entries that
//! move balances into payments and out of them.
//!
//! **Messages:** `RunPayouts` (admin, or the cycle timer), `PausePayouts` (admin). Its own loop
//! advances unfinished payments every `poll_interval_secs` and runs a cycle every
//! `payout_interval_secs`, scheduled from the last completed cycle (persisted).
//!
//! **The state machine** (DESIGN §5), each state committed before the next side effect:
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

use super::events::Shutdown;
use super::{ActorError, ChainFacts};
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
    /// Whether the last look found the daemon behind the pool (logged once).
    behind: bool,
}

impl PayoutCore {
    /// A payout manager for `chain`.
    pub fn new(
        chain: Arc<ChainConfig>,
        db: DatabaseConnection,
        rpc: Arc<RpcClient>,
        metrics: Metrics,
        fence: crate::store::lease::Fence,
        facts: ChainFacts,
    ) -> PayoutCore {
        PayoutCore {
            chain,
            db,
            rpc,
            metrics,
            fence,
            facts,
            behind: false,
        }
    }

    pub(super) fn name(&self) -> &str {
        &self.chain.name
    }
}

/// The actor around [`PayoutCore`].
pub struct PayoutManager {
    core: Arc<tokio::sync::Mutex<PayoutCore>>,
    poll: Duration,
}

impl PayoutManager {
    /// The actor; its loop starts with it.
    pub fn new(core: PayoutCore) -> PayoutManager {
        let poll = Duration::from_secs(core.chain.poll_interval_secs);
        PayoutManager {
            core: Arc::new(tokio::sync::Mutex::new(core)),
            poll,
        }
    }
}

impl Actor for PayoutManager {
    type Context = actix::Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        let core = Arc::clone(&self.core);
        let poll = self.poll;
        ctx.spawn(actix::fut::wrap_future(async move {
            let mut last_error = Instant::now() - Duration::from_secs(3600);
            loop {
                let result = {
                    let mut core = core.lock().await;
                    match core.cycle_due().await {
                        Ok(true) => core.run(false, None).await.map(|_| ()),
                        Ok(false) => core.advance().await,
                        Err(e) => Err(e),
                    }
                };
                if let Err(e) = result
                    && last_error.elapsed() > Duration::from_secs(60)
                {
                    log::warn!("payouts: {e}; trying again");
                    last_error = Instant::now();
                }
                tokio::time::sleep(poll).await;
            }
        }));
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
        Box::pin(async move { core.lock().await.run(msg.dry_run, Some(msg.audit)).await })
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
