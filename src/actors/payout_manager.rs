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

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use sea_orm::DatabaseConnection;

use super::events::Shutdown;
use super::{ActorError, ChainFacts};
use crate::config::ChainConfig;
use crate::daemon::rpc::{RpcClient, RpcError};
use crate::daemon::types::{ExactCoins, Operation, SendOutput, Tx};
use crate::domain::chain::FINAL_CONFIRMATIONS;
use crate::domain::{EventKind, Height, PaymentStatus, Sats, SubscriberStatus};
use crate::metrics::Metrics;
use crate::store::audit::{self, AuditEntry};
use crate::store::events::{self, NewEvent};
use crate::store::ledger::{self, LedgerKind, Posting};
use crate::store::payments::{self, Payment};
use crate::store::{chain as chain_store, settings, subscribers};

/// The network fee of one payment transaction, paid by the pool identity.
pub const NETWORK_FEE: Sats = Sats(10_000);
/// A payout cycle waits while the pool is more blocks than this behind the daemon's tip.
const CATCH_UP_MARGIN_BLOCKS: i64 = 5;

/// The outputs a payment pays, sorted: what identifies its transaction on the chain.
type Outputs = Vec<(String, i64)>;

fn outputs_of(p: &Payment) -> Outputs {
    let mut o: Outputs = p.outputs.iter().map(|(a, s)| (a.clone(), s.0)).collect();
    o.sort();
    o
}

/// Whether a transaction spends from `pool`, and what it pays to others than `pool` (its
/// change), sorted.
pub fn paid_by(tx: &Tx, pool: &str) -> Option<Outputs> {
    let from_pool = tx.vin.iter().any(|v| {
        v.address.as_deref() == Some(pool)
            || v.addresses
                .as_ref()
                .is_some_and(|a| a.iter().any(|x| x == pool))
    });
    if !from_pool {
        return None;
    }
    let mut paid: Outputs = tx
        .vout
        .iter()
        .filter_map(|o| {
            o.script_pub_key
                .addresses
                .first()
                .map(|a| (a.clone(), o.value_sat))
        })
        .filter(|(a, _)| a != pool)
        .collect();
    paid.sort();
    Some(paid)
}

/// What the daemon says about a submitted payment's operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpOutcome {
    /// It made this transaction.
    Sent(String),
    /// Still queued or executing.
    Running,
    /// Failed, cancelled, or forgotten (a daemon restart): the wallet may still hold and
    /// later broadcast a transaction, so the outcome is resolved from the chain (DESIGN §8).
    Unknown(String),
}

/// The outcome of operation `opid` among the daemon's answers (a pure decision).
pub fn op_outcome(opid: &str, ops: &[Operation]) -> OpOutcome {
    match ops.iter().find(|o| o.id == opid) {
        Some(op) if op.status == "success" => match &op.result {
            Some(r) => OpOutcome::Sent(r.txid.clone()),
            None => OpOutcome::Unknown(format!("operation {opid} succeeded without a txid")),
        },
        Some(op) if op.status == "queued" || op.status == "executing" => OpOutcome::Running,
        Some(op) => OpOutcome::Unknown(match &op.error {
            Some(e) => format!("operation {opid} {}: {}: {}", op.status, e.code, e.message),
            None => format!("operation {opid} {}", op.status),
        }),
        None => OpOutcome::Unknown(format!(
            "the daemon no longer knows operation {opid} (it restarted)"
        )),
    }
}

/// The last height any transaction made for `p` can be mined at: a payment whose outcome is
/// unknown fails only above it (its timeout, or the expiry of its transaction if later).
pub fn deadline(p: &Payment, timeout_blocks: i64) -> Height {
    (p.planned_height + timeout_blocks).max(p.expiry_height.unwrap_or(0))
}

/// The last height a transaction made by `sendcurrency` at `tip` can be mined at: verusd gives
/// it `tip at the call + 1 + expiry delta` (one more for a block that arrives between reading
/// the tip and the call).
pub fn expiry_bound(tip: Height, expiry_delta: i64) -> Height {
    tip + 2 + expiry_delta
}

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

    /// Begins a write transaction fenced by the leader lease (see [`crate::store::lease`]).
    async fn begin(&self) -> Result<sea_orm::DatabaseTransaction, ActorError> {
        let txn = crate::store::begin_write(&self.db).await?;
        self.fence.check(&txn).await?;
        Ok(txn)
    }

    fn name(&self) -> &str {
        &self.chain.name
    }

    async fn post_all(
        &self,
        db: &impl sea_orm::ConnectionTrait,
        p: &Payment,
        kind: LedgerKind,
        height: Height,
    ) -> Result<(), ActorError> {
        let postings: Vec<Posting<'_>> = p
            .outputs
            .iter()
            .map(|(identity, amount)| Posting {
                chain: self.name(),
                identity_address: Some(identity),
                kind,
                amount: *amount,
                stake_id: None,
                payment_id: Some(p.id),
                height: Some(height),
            })
            .collect();
        ledger::post_many(db, &postings).await?;
        Ok(())
    }

    /// Moves a payment to FAILED and gives its outputs back to the pending balances.
    async fn fail(&self, mut p: Payment, why: String, tip: Height) -> Result<(), ActorError> {
        let txn = self.begin().await?;
        self.post_all(&txn, &p, LedgerKind::PaymentFailed, tip)
            .await?;
        log::warn!(
            "chain {}: payment {} failed ({why}); its {} are pending again",
            self.name(),
            p.id,
            p.total
        );
        let from = p.status;
        p.status = PaymentStatus::Failed;
        p.error = Some(why);
        payments::update(&txn, &p, from).await?;
        txn.commit().await?;
        Ok(())
    }

    async fn mark_sent(&self, mut p: Payment, txid: String, tip: Height) -> Result<(), ActorError> {
        let txn = self.begin().await?;
        let from = p.status;
        p.status = PaymentStatus::Sent;
        p.txid = Some(txid.clone());
        payments::update(&txn, &p, from).await?;
        let outputs: Vec<serde_json::Value> = p
            .outputs
            .iter()
            .map(|(a, s)| serde_json::json!({"identityAddress": a, "amount": s.to_string()}))
            .collect();
        let event = NewEvent {
            height: Some(tip),
            payment_id: Some(p.id),
            data: Some(
                serde_json::json!({"txid": txid, "outputs": outputs, "total": p.total.to_string()}),
            ),
            ..NewEvent::new(
                self.name(),
                EventKind::PaymentSent,
                format!(
                    "payment {} sent: {} to {} in {txid}",
                    p.id,
                    p.total,
                    crate::domain::count_of(p.outputs.len(), "identity", "identities")
                ),
            )
        };
        events::append(&txn, &[event]).await?;
        txn.commit().await?;
        log::info!("chain {}: payment {} sent in {txid}", self.name(), p.id);
        Ok(())
    }

    /// The pool identity's transactions since height `from`, in the mempool or in blocks, with
    /// what each pays to others. The mempool is read first and the blocks after, up to the tip
    /// read after the mempool, so a transaction mined in between is seen in one of the two; if
    /// the best block changed meanwhile (a reorganisation can move a transaction back to the
    /// mempool), everything is read again.
    async fn pool_transactions(&self, from: Height) -> Result<Vec<(String, Outputs)>, ActorError> {
        let pool = self.chain.pool_identity.as_str().to_owned();
        let addresses = std::slice::from_ref(&pool);
        let mut txids = Vec::new();
        for _ in 0..3 {
            let best = self.rpc.get_best_block_hash().await?;
            txids = self
                .rpc
                .get_address_mempool(addresses)
                .await?
                .into_iter()
                .map(|m| m.txid)
                .collect();
            let tip = i64::try_from(self.rpc.get_block_count().await?).unwrap_or(i64::MAX);
            txids.extend(
                self.rpc
                    .get_address_txids(addresses, from.max(1), tip)
                    .await?,
            );
            txids.sort();
            txids.dedup();
            if self.rpc.get_best_block_hash().await? == best {
                break;
            }
        }
        let params: Vec<(&str, i32)> = txids.iter().map(|t| (t.as_str(), 1)).collect();
        let txs = self
            .rpc
            .call_batch::<Tx, _>("getrawtransaction", &params)
            .await?;
        let mut out = Vec::new();
        for (txid, tx) in txids.iter().zip(txs) {
            let tx = match tx {
                Ok(tx) => tx,
                // Gone since it was listed (expired from the mempool).
                Err(RpcError::NotFound { .. }) => continue,
                Err(e) => return Err(e.into()),
            };
            if let Some(paid) = paid_by(&tx, &pool) {
                out.push((txid.clone(), paid));
            }
        }
        Ok(out)
    }

    /// Whether the daemon is behind the pool (logged once when it starts and ends).
    fn daemon_behind(&mut self, tip: Height, processed: Height) -> bool {
        let behind = tip < processed;
        if behind && !self.behind {
            log::warn!(
                "chain {}: the daemon's tip {tip} is below the processed height {processed} (a reindex, or a fail-over node still syncing): payments wait until it catches up",
                self.name()
            );
        } else if !behind && self.behind {
            log::info!(
                "chain {}: the daemon caught up; payments go on",
                self.name()
            );
        }
        self.behind = behind;
        behind
    }

    /// Moves every unsettled payment as far as the daemon's answers allow. A payment the
    /// daemon cannot tell about stays where it is; the others go on.
    pub async fn advance(&mut self) -> Result<(), ActorError> {
        let tip = i64::try_from(self.rpc.get_block_count().await?).unwrap_or(i64::MAX);
        let processed = chain_store::processed_height(&self.db, self.name()).await?;
        if self.daemon_behind(tip, processed) {
            return Ok(());
        }
        // A transaction mined at or below this height has FINAL_CONFIRMATIONS.
        let final_at = tip - FINAL_CONFIRMATIONS + 1;
        let open = payments::unsettled(&self.db, self.name(), final_at).await?;
        if open.is_empty() {
            return Ok(());
        }
        let timeout = i64::from(self.chain.payment_timeout_blocks);
        // The operations the daemon still knows, in one call. Unanswered: nothing can be
        // resolved from the chain this time (a running operation's transaction must not be
        // taken by another payment), but sent payments are still followed.
        let opids: Vec<String> = open
            .iter()
            .filter(|p| p.status == PaymentStatus::Submitted)
            .filter_map(|p| p.opid.clone())
            .collect();
        let ops = if opids.is_empty() {
            Some(Vec::new())
        } else {
            match self.rpc.z_get_operation_status(&opids).await {
                Ok(ops) => Some(ops),
                Err(e) => {
                    log::warn!(
                        "chain {}: z_getoperationstatus: {e}; submitted payments wait",
                        self.name()
                    );
                    None
                }
            }
        };
        let mut unknown: Vec<(Payment, String)> = Vec::new();
        let mut running: HashSet<Outputs> = HashSet::new();
        for p in open {
            let id = p.id;
            let result = match (p.status, &ops) {
                (PaymentStatus::Planned, _) => {
                    unknown.push((
                        p,
                        "the process stopped around its sendcurrency call".to_owned(),
                    ));
                    Ok(())
                }
                (PaymentStatus::Submitted, Some(ops)) => {
                    match op_outcome(p.opid.as_deref().unwrap_or_default(), ops) {
                        OpOutcome::Sent(txid) => self.mark_sent(p, txid, tip).await,
                        OpOutcome::Running => {
                            running.insert(outputs_of(&p));
                            Ok(())
                        }
                        OpOutcome::Unknown(why) => {
                            unknown.push((p, why));
                            Ok(())
                        }
                    }
                }
                (PaymentStatus::Submitted, None) => {
                    running.insert(outputs_of(&p));
                    Ok(())
                }
                (PaymentStatus::Sent | PaymentStatus::Confirmed, _) => {
                    self.follow_sent(p, tip, timeout).await
                }
                (PaymentStatus::Failed, _) => Ok(()),
            };
            if let Err(e) = result {
                log::warn!(
                    "chain {}: payment {id}: {e}; it stays as it is, the others go on",
                    self.name()
                );
            }
        }
        if ops.is_some() && !unknown.is_empty() {
            self.resolve_unknown(unknown, &running, tip, timeout).await;
        }
        Ok(())
    }

    /// Resolves payments whose outcome is unknown from the chain, oldest first: each takes the
    /// pool identity's unlinked transaction that pays exactly its outputs; without one, it
    /// fails once the tip is past its deadline. A payment whose outputs equal those of a
    /// payment still being sent waits: that transaction is not its to take.
    async fn resolve_unknown(
        &self,
        unknown: Vec<(Payment, String)>,
        running: &HashSet<Outputs>,
        tip: Height,
        timeout: i64,
    ) {
        let from = unknown
            .iter()
            .map(|(p, _)| p.planned_height)
            .min()
            .unwrap_or(tip);
        let found = self.pool_transactions(from).await;
        let linked = payments::linked_txids(&self.db, self.name()).await;
        let (candidates, mut linked) = match (found, linked) {
            (Ok(c), Ok(l)) => (c, l.into_iter().collect::<HashSet<String>>()),
            (Err(e), _) => {
                log::warn!(
                    "chain {}: cannot search the chain for unresolved payments: {e}",
                    self.name()
                );
                return;
            }
            (_, Err(e)) => {
                log::warn!("chain {}: cannot read linked payments: {e}", self.name());
                return;
            }
        };
        for (p, why) in unknown {
            let wanted = outputs_of(&p);
            if running.contains(&wanted) {
                continue;
            }
            let id = p.id;
            let txid = candidates
                .iter()
                .find(|(t, paid)| !linked.contains(t) && *paid == wanted)
                .map(|(t, _)| t.clone());
            let until = deadline(&p, timeout);
            let result = match txid {
                Some(txid) => {
                    linked.insert(txid.clone());
                    self.mark_sent(p, txid, tip).await
                }
                None if tip > until => {
                    self.fail(
                        p,
                        format!(
                            "{why}; no transaction of the pool identity pays exactly its outputs, and any made for it expired at height {until}"
                        ),
                        tip,
                    )
                    .await
                }
                None => Ok(()),
            };
            if let Err(e) = result {
                log::warn!(
                    "chain {}: payment {id}: {e}; it stays as it is",
                    self.name()
                );
            }
        }
    }

    /// Follows a sent (or confirmed, not yet final) payment's transaction.
    async fn follow_sent(&self, p: Payment, tip: Height, timeout: i64) -> Result<(), ActorError> {
        let txid = p.txid.clone().unwrap_or_default();
        let tx = match self.rpc.get_raw_transaction(&txid).await {
            Ok(tx) => tx,
            Err(RpcError::NotFound { .. }) if p.status == PaymentStatus::Sent => {
                // Never mined, or gone from the mempool: it can never be mined after its expiry.
                let until = deadline(&p, timeout);
                if tip > until {
                    self.fail(
                        p,
                        format!("transaction {txid} was not mined by its expiry (height {until})"),
                        tip,
                    )
                    .await?;
                }
                return Ok(());
            }
            Err(RpcError::NotFound { .. }) => {
                log::warn!(
                    "chain {}: the daemon does not know transaction {txid} of confirmed payment {}",
                    self.name(),
                    p.id
                );
                return Ok(());
            }
            Err(e) => return Err(e.into()),
        };
        // A transaction whose block was disconnected keeps its old block hash, with height −1
        // and 0 confirmations: it is not mined.
        let mined = tx.height.filter(|h| *h > 0);
        let confirmations = if mined.is_some() {
            tx.confirmations.unwrap_or(0)
        } else {
            0
        };
        let mut q = p.clone();
        if tx.expiryheight > 0 {
            q.expiry_height = Some(tx.expiryheight);
        }
        q.sent_height = mined;
        let confirmed = confirmations >= i64::from(self.chain.payment_confirmations);
        match (p.status, confirmed) {
            (PaymentStatus::Sent, true) => {
                let txn = self.begin().await?;
                self.post_all(&txn, &q, LedgerKind::PaymentConfirmed, tip)
                    .await?;
                q.status = PaymentStatus::Confirmed;
                q.confirmed_height = Some(tip);
                payments::update(&txn, &q, p.status).await?;
                txn.commit().await?;
                log::info!("chain {}: payment {} confirmed", self.name(), q.id);
            }
            (PaymentStatus::Confirmed, false) => {
                // Its block was disconnected: back to SENT until it confirms again.
                let txn = self.begin().await?;
                self.post_all(&txn, &q, LedgerKind::PaymentUnconfirmed, tip)
                    .await?;
                q.status = PaymentStatus::Sent;
                q.confirmed_height = None;
                payments::update(&txn, &q, p.status).await?;
                txn.commit().await?;
                log::warn!(
                    "chain {}: payment {} lost its confirmations (a reorganisation); sent again until it confirms",
                    self.name(),
                    q.id
                );
            }
            _ if q != p => {
                let txn = self.begin().await?;
                payments::update(&txn, &q, p.status).await?;
                txn.commit().await?;
            }
            _ => {}
        }
        Ok(())
    }

    /// The pool identity's spendable balance: outputs with a confirmation, and coinbase
    /// outputs (stake rewards) past the chain's coinbase maturity.
    async fn spendable(&self, coinbase_maturity: Height) -> Result<Sats, ActorError> {
        let outputs = self
            .rpc
            .list_unspent(
                1,
                9_999_999,
                std::slice::from_ref(&self.chain.pool_identity.as_str().to_owned()),
            )
            .await?;
        let spendable: Sats = outputs
            .iter()
            .filter(|u| !u.generated || u.confirmations >= coinbase_maturity)
            .map(|u| u.amount.0)
            .sum();
        self.metrics.set_spendable(self.name(), spendable.0);
        Ok(spendable)
    }

    /// The balances due now, in batches of at most `max_outputs_per_payment`: every pending
    /// balance at or above its minimum payout, and every leaver's above the dust floor.
    async fn due(&self) -> Result<Vec<Vec<(String, Sats)>>, ActorError> {
        let pool_settings = settings::latest(&self.db, self.name())
            .await?
            .map_or_else(|| self.chain.settings(), |v| v.settings);
        let mut due: Vec<(String, Sats)> = Vec::new();
        for (identity, pending) in ledger::pending_balances(&self.db, self.name()).await? {
            if pending < self.chain.min_output {
                continue; // dust carries over
            }
            let sub = subscribers::get(&self.db, self.name(), &identity).await?;
            let leaver = sub.as_ref().is_some_and(|s| {
                matches!(s.status, SubscriberStatus::Left | SubscriberStatus::Banned)
            });
            let minimum = sub
                .and_then(|s| s.min_payout)
                .unwrap_or(pool_settings.min_payout);
            if pending >= minimum || leaver {
                due.push((identity, pending));
            }
        }
        due.sort();
        Ok(due
            .chunks(self.chain.max_outputs_per_payment.max(1) as usize)
            .map(<[_]>::to_vec)
            .collect())
    }

    /// The ledger check: a failure holds payouts (recorded once, with what failed); a pass
    /// lifts that hold. Returns whether the books balance.
    async fn check_books(&self, held_by: Option<&str>) -> Result<bool, ActorError> {
        match ledger::check_snapshot(&self.db, self.name()).await? {
            Err(why) => {
                if held_by != Some(why.as_str()) {
                    log::error!(
                        "chain {}: {why}; payouts are held until the books balance",
                        self.name()
                    );
                    settings::set_check_failure(&self.db, self.name(), Some(&why)).await?;
                }
                Ok(false)
            }
            Ok(()) => {
                if held_by.is_some() {
                    log::info!(
                        "chain {}: the ledger check passes again; payouts go on",
                        self.name()
                    );
                    settings::set_check_failure(&self.db, self.name(), None).await?;
                }
                Ok(true)
            }
        }
    }

    /// A payout cycle: plans payments for every balance due and submits them. With `dry_run`
    /// it returns the plan and changes nothing at all (no audit row, no payment moved, no
    /// hold recorded).
    pub async fn run(
        &mut self,
        dry_run: bool,
        audit_entry: Option<AuditEntry>,
    ) -> Result<Vec<Payment>, ActorError> {
        let planned_height = chain_store::processed_height(&self.db, self.name()).await?;
        if dry_run {
            let plan = self.due().await?;
            return Ok(plan
                .into_iter()
                .enumerate()
                .map(|(i, batch)| Payment {
                    id: -(i as i64) - 1,
                    chain: self.name().to_owned(),
                    status: PaymentStatus::Planned,
                    opid: None,
                    txid: None,
                    total: batch.iter().map(|(_, s)| *s).sum(),
                    planned_height,
                    sent_height: None,
                    confirmed_height: None,
                    expiry_height: None,
                    error: None,
                    created_at: chrono::Utc::now(),
                    outputs: batch,
                })
                .collect());
        }
        if let Some(entry) = &audit_entry {
            audit::record(&self.db, entry).await?;
        }
        if let Err(e) = self.advance().await {
            log::warn!("chain {}: payments: {e}; the cycle goes on", self.name());
        }
        let state = settings::payout_state(&self.db, self.name()).await?;
        if !self.check_books(state.check_failure.as_deref()).await? {
            return Ok(Vec::new());
        }
        if state.paused {
            log::info!(
                "chain {}: payouts are paused by an admin ({}); no cycle",
                self.name(),
                state.reason.as_deref().unwrap_or("no reason given")
            );
            return Ok(Vec::new());
        }
        let tip = i64::try_from(self.rpc.get_block_count().await?).unwrap_or(i64::MAX);
        if self.daemon_behind(tip, planned_height) {
            return Ok(Vec::new());
        }
        // Behind the daemon's tip (catching up), a plan would be stale before it is sent: this
        // cycle is skipped (and counts as run; the next comes after the payout interval).
        if tip > planned_height + CATCH_UP_MARGIN_BLOCKS {
            log::info!(
                "chain {}: processed height {planned_height} is behind the tip {tip}; this payout cycle is skipped",
                self.name()
            );
            settings::mark_cycle(&self.db, self.name()).await?;
            return Ok(Vec::new());
        }
        let Some(coinbase_maturity) = self.facts.coinbase_maturity() else {
            log::info!(
                "chain {}: the chain's coinbase maturity is not known yet; no cycle",
                self.name()
            );
            return Ok(Vec::new());
        };
        // How long the daemon's transactions may wait to be mined: asked, never assumed.
        let delta = self.rpc.tx_expiry_delta().await?;
        let batches = self.due().await?;
        let fee = settings::latest(&self.db, self.name())
            .await?
            .map_or(self.chain.fee_percent, |v| v.settings.fee);
        if fee.ppm() == 0 && !batches.is_empty() {
            log::warn!(
                "chain {}: the pool fee is 0: network fees of payments come out of nothing",
                self.name()
            );
        }
        let mut available = self.spendable(coinbase_maturity).await?;
        let mut out = Vec::new();
        for batch in batches {
            let total: Sats = batch.iter().map(|(_, s)| *s).sum();
            let needed = total.checked_add(NETWORK_FEE).unwrap_or(Sats(i64::MAX));
            if needed > available {
                log::warn!(
                    "chain {}: the pool identity can spend {available}, not the {needed} a batch of {} outputs needs; it waits for the next cycle",
                    self.name(),
                    batch.len()
                );
                continue;
            }
            available = available.checked_sub(needed).unwrap_or_default();
            out.push(self.pay(batch, planned_height, delta).await?);
        }
        settings::mark_cycle(&self.db, self.name()).await?;
        Ok(out)
    }

    /// Plans one batch (PLANNED, balances moved) and submits it with `sendcurrency`.
    async fn pay(
        &self,
        batch: Vec<(String, Sats)>,
        planned_height: Height,
        delta: i64,
    ) -> Result<Payment, ActorError> {
        let total: Sats = batch.iter().map(|(_, s)| *s).sum();
        // PLANNED: outputs fixed and balances moved, in one transaction.
        let txn = self.begin().await?;
        let id = payments::insert_planned(&txn, self.name(), planned_height, &batch).await?;
        let mut p = payments::get(&txn, id)
            .await?
            .ok_or_else(|| ActorError::NotFound(format!("payment {id}")))?;
        self.post_all(&txn, &p, LedgerKind::PaymentPlanned, planned_height)
            .await?;
        txn.commit().await?;
        crate::fault::point("payout-after-planned", planned_height);
        // The last height its transaction can be mined at, committed before the call: should
        // the process stop before the operation id is stored, the payment (still PLANNED)
        // fails no earlier than that, so a transaction mined late is never paid again.
        let tip = i64::try_from(self.rpc.get_block_count().await?).unwrap_or(i64::MAX);
        p.expiry_height = Some(expiry_bound(tip, delta));
        let txn = self.begin().await?;
        payments::update(&txn, &p, PaymentStatus::Planned).await?;
        txn.commit().await?;
        // Still the leader? A paused or cut-off instance must not send what a new leader
        // now owns (its PLANNED payment is resolved from the chain). Checked last.
        self.fence.check(&self.db).await?;
        let outputs: Vec<SendOutput> = batch
            .iter()
            .map(|(a, s)| SendOutput {
                address: a.clone(),
                amount: ExactCoins(*s),
            })
            .collect();
        match self
            .rpc
            .send_currency(self.chain.pool_identity.as_str(), &outputs, 1, None)
            .await
        {
            Ok(opid) => {
                crate::fault::point("payout-after-send", planned_height);
                p.status = PaymentStatus::Submitted;
                p.opid = Some(opid.clone());
                let txn = self.begin().await?;
                payments::update(&txn, &p, PaymentStatus::Planned).await?;
                txn.commit().await?;
                log::info!(
                    "chain {}: payment {id} submitted: {total} to {} (operation {opid})",
                    self.name(),
                    crate::domain::count_of(batch.len(), "identity", "identities")
                );
                crate::fault::point("payout-after-submitted", planned_height);
            }
            Err(RpcError::Rpc { code, message, .. }) => {
                // The daemon refused the call itself: no operation, no transaction.
                self.fail(
                    p.clone(),
                    format!("sendcurrency refused: {code}: {message}"),
                    planned_height,
                )
                .await?;
            }
            Err(e) => {
                // Unknown whether it ran: the payment stays PLANNED and is resolved from the chain.
                log::warn!(
                    "chain {}: payment {id}: sendcurrency did not answer ({e}); resolving from the chain later",
                    self.name()
                );
            }
        }
        Ok(p)
    }

    /// Pauses or resumes payouts (admin), with the audit entry in the same transaction.
    pub async fn pause(
        &mut self,
        paused: bool,
        reason: Option<String>,
        audit_entry: &AuditEntry,
    ) -> Result<(), ActorError> {
        let txn = self.begin().await?;
        audit::record(&txn, audit_entry).await?;
        settings::set_payouts_paused(&txn, self.name(), paused, reason.as_deref()).await?;
        txn.commit().await?;
        Ok(())
    }

    /// Whether a cycle is due (scheduled from the last completed one).
    async fn cycle_due(&self) -> Result<bool, ActorError> {
        let last = settings::payout_state(&self.db, self.name())
            .await?
            .last_cycle_at;
        let interval = chrono::Duration::seconds(
            i64::try_from(self.chain.payout_interval_secs).unwrap_or(i64::MAX),
        );
        Ok(last.is_none_or(|t| chrono::Utc::now() - t >= interval))
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
