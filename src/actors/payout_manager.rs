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
//! PLANNED (outputs fixed, pending → in flight, one transaction) → `sendcurrency` →
//! SUBMITTED (opid) → SENT (txid; event `PAYMENT_SENT`) → CONFIRMED at
//! `payment_confirmations` (in flight → paid; back to SENT if its block is disconnected).
//! FAILED (in flight → pending again) only when it is proved the payment can never be mined:
//! the operation failed, or no unlinked transaction from the pool identity paying exactly its
//! outputs exists in the mempool or in any block since it was planned and the tip is past
//! planned height + `payment_timeout_blocks` (or past the transaction's expiry). A payment is
//! never sent again: an unknown outcome is resolved from the chain.
//!
//! **Failures:** a cycle does not start while payouts are paused or the ledger check fails
//! (which pauses them, with the reason). Daemon errors leave payments where they are.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use sea_orm::DatabaseConnection;

use super::ActorError;
use super::events::Shutdown;
use crate::config::ChainConfig;
use crate::daemon::rpc::{RpcClient, RpcError};
use crate::daemon::types::{ExactCoins, SendOutput};
use crate::domain::{EventKind, Height, PaymentStatus, Sats, SubscriberStatus};
use crate::metrics::Metrics;
use crate::store::audit::{self, AuditEntry};
use crate::store::events::{self, NewEvent};
use crate::store::ledger::{self, LedgerKind, Posting};
use crate::store::payments::{self, Payment};
use crate::store::{chain as chain_store, settings, subscribers};

/// The network fee of one payment transaction, paid by the pool identity.
pub const NETWORK_FEE: Sats = Sats(10_000);
/// Blocks a wallet transaction may be mined in after it is made (verusd's default
/// `-txexpirydelta`).
const WALLET_EXPIRY_BLOCKS: i64 = 20;
/// A payout cycle waits while the pool is more blocks than this behind the daemon's tip.
const CATCH_UP_MARGIN_BLOCKS: i64 = 5;
/// Coinbase outputs are spendable after this many confirmations.
const COINBASE_MATURITY: i64 = 100;

/// The payout logic; the actor serialises access to it.
pub struct PayoutCore {
    chain: Arc<ChainConfig>,
    db: DatabaseConnection,
    rpc: Arc<RpcClient>,
    metrics: Metrics,
    fence: crate::store::lease::Fence,
}

impl PayoutCore {
    /// A payout manager for `chain`.
    pub fn new(
        chain: Arc<ChainConfig>,
        db: DatabaseConnection,
        rpc: Arc<RpcClient>,
        metrics: Metrics,
        fence: crate::store::lease::Fence,
    ) -> PayoutCore {
        PayoutCore {
            chain,
            db,
            rpc,
            metrics,
            fence,
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

    /// The pool identity's transaction since `from` (mempool included) that pays exactly these
    /// outputs and is not linked to another payment.
    async fn find_match(&self, p: &Payment, tip: Height) -> Result<Option<String>, ActorError> {
        let pool = self.chain.pool_identity.as_str().to_owned();
        let linked: HashSet<String> = payments::linked_txids(&self.db, self.name())
            .await?
            .into_iter()
            .collect();
        let mut candidates = self
            .rpc
            .get_address_txids(std::slice::from_ref(&pool), p.planned_height.max(1), tip)
            .await?;
        for m in self
            .rpc
            .get_address_mempool(std::slice::from_ref(&pool))
            .await?
        {
            if !candidates.contains(&m.txid) {
                candidates.push(m.txid);
            }
        }
        let mut wanted: Vec<(String, i64)> =
            p.outputs.iter().map(|(a, s)| (a.clone(), s.0)).collect();
        wanted.sort();
        for txid in candidates.into_iter().filter(|t| !linked.contains(t)) {
            let tx = match self.rpc.get_raw_transaction(&txid).await {
                Ok(tx) => tx,
                Err(RpcError::NotFound { .. }) => continue,
                Err(e) => return Err(e.into()),
            };
            let from_pool = tx.vin.iter().any(|v| {
                v.address.as_deref() == Some(pool.as_str())
                    || v.addresses.as_ref().is_some_and(|a| a.contains(&pool))
            });
            if !from_pool {
                continue;
            }
            let mut paid: Vec<(String, i64)> = tx
                .vout
                .iter()
                .filter_map(|o| {
                    o.script_pub_key
                        .addresses
                        .first()
                        .map(|a| (a.clone(), o.value_sat))
                })
                .filter(|(a, _)| *a != pool)
                .collect();
            paid.sort();
            if paid == wanted {
                return Ok(Some(txid));
            }
        }
        Ok(None)
    }

    /// Moves every unfinished payment as far as the daemon's answers allow.
    pub async fn advance(&mut self) -> Result<(), ActorError> {
        let unfinished = payments::with_status(
            &self.db,
            self.name(),
            &[
                PaymentStatus::Planned,
                PaymentStatus::Submitted,
                PaymentStatus::Sent,
                PaymentStatus::Confirmed,
            ],
        )
        .await?;
        if unfinished.is_empty() {
            return Ok(());
        }
        let tip = i64::try_from(self.rpc.get_block_count().await?).unwrap_or(i64::MAX);
        let timeout = i64::from(self.chain.payment_timeout_blocks);
        for p in unfinished {
            match p.status {
                PaymentStatus::Planned => {
                    // sendcurrency may or may not have run before a crash: never send again,
                    // look for its transaction instead.
                    if let Some(txid) = self.find_match(&p, tip).await? {
                        self.mark_sent(p, txid, tip).await?;
                    } else if tip > p.planned_height + timeout {
                        self.fail(
                            p,
                            "never sent: no matching transaction before the timeout".into(),
                            tip,
                        )
                        .await?;
                    }
                }
                PaymentStatus::Submitted => {
                    let opid = p.opid.clone().unwrap_or_default();
                    let ops = self
                        .rpc
                        .z_get_operation_status(std::slice::from_ref(&opid))
                        .await?;
                    match ops.into_iter().find(|o| o.id == opid) {
                        Some(op) if op.status == "success" => match op.result {
                            Some(r) => self.mark_sent(p, r.txid, tip).await?,
                            None => log::warn!(
                                "chain {}: operation {opid} succeeded without a txid",
                                self.name()
                            ),
                        },
                        Some(op) if op.status == "failed" || op.status == "cancelled" => {
                            let why = op.error.map_or_else(
                                || op.status.clone(),
                                |e| format!("{}: {}", e.code, e.message),
                            );
                            self.fail(p, format!("sendcurrency failed: {why}"), tip)
                                .await?;
                        }
                        Some(_) => {}
                        None => {
                            // The daemon forgot the operation (restart): resolve from the chain.
                            if let Some(txid) = self.find_match(&p, tip).await? {
                                self.mark_sent(p, txid, tip).await?;
                            } else if tip > p.planned_height + timeout {
                                self.fail(p, format!("operation {opid} unknown and no matching transaction before the timeout"), tip).await?;
                            }
                        }
                    }
                }
                PaymentStatus::Sent | PaymentStatus::Confirmed => {
                    let txid = p.txid.clone().unwrap_or_default();
                    match self.rpc.get_raw_transaction(&txid).await {
                        Ok(tx) => {
                            let confirmations = tx.confirmations.unwrap_or(0);
                            let mut q = p.clone();
                            q.expiry_height = Some(tx.expiryheight).filter(|e| *e > 0);
                            q.sent_height = tx.height;
                            let confirmed =
                                confirmations >= i64::from(self.chain.payment_confirmations);
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
                                (PaymentStatus::Confirmed, false)
                                    if tip - p.confirmed_height.unwrap_or(tip)
                                        < COINBASE_MATURITY =>
                                {
                                    // Its block was disconnected: back to SENT until it confirms again.
                                    let txn = self.begin().await?;
                                    self.post_all(&txn, &q, LedgerKind::PaymentUnconfirmed, tip)
                                        .await?;
                                    q.status = PaymentStatus::Sent;
                                    q.confirmed_height = None;
                                    payments::update(&txn, &q, p.status).await?;
                                    txn.commit().await?;
                                }
                                _ if q != p => {
                                    let txn = self.begin().await?;
                                    payments::update(&txn, &q, p.status).await?;
                                    txn.commit().await?;
                                }
                                _ => {}
                            }
                        }
                        Err(RpcError::NotFound { .. }) if p.status == PaymentStatus::Sent => {
                            let expiry = p.expiry_height.unwrap_or(p.planned_height + timeout);
                            if tip > expiry.max(p.planned_height + timeout) {
                                self.fail(p, format!("transaction {txid} expired unmined"), tip)
                                    .await?;
                            }
                        }
                        Err(e) => return Err(e.into()),
                    }
                }
                PaymentStatus::Failed => {}
            }
        }
        Ok(())
    }

    /// The pool identity's spendable balance (mature outputs).
    async fn spendable(&self) -> Result<Sats, ActorError> {
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
            .filter(|u| !u.generated || u.confirmations >= COINBASE_MATURITY)
            .map(|u| u.amount.0)
            .sum();
        self.metrics.set_spendable(self.name(), spendable.0);
        Ok(spendable)
    }

    /// A payout cycle: plans payments for every balance due and submits them. With `dry_run`
    /// it returns the plan and changes nothing.
    pub async fn run(
        &mut self,
        dry_run: bool,
        audit_entry: Option<AuditEntry>,
    ) -> Result<Vec<Payment>, ActorError> {
        if let Some(entry) = &audit_entry {
            audit::record(&self.db, entry).await?;
        }
        self.advance().await?;
        let state = settings::payout_state(&self.db, self.name()).await?;
        if state.paused && !dry_run {
            log::info!(
                "chain {}: payouts are paused ({}); no cycle",
                self.name(),
                state.reason.as_deref().unwrap_or("no reason given")
            );
            return Ok(Vec::new());
        }
        if let Err(why) = ledger::check_snapshot(&self.db, self.name()).await? {
            log::error!("chain {}: {why}; payouts paused", self.name());
            settings::set_payouts_paused(&self.db, self.name(), true, Some(&why)).await?;
            return Ok(Vec::new());
        }
        let pool_settings = settings::latest(&self.db, self.name())
            .await?
            .map_or_else(|| self.chain.settings(), |v| v.settings);
        if pool_settings.fee.ppm() == 0 {
            log::warn!(
                "chain {}: the pool fee is 0: network fees of payments come out of nothing",
                self.name()
            );
        }
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
        let planned_height = chain_store::processed_height(&self.db, self.name()).await?;
        let batches: Vec<Vec<(String, Sats)>> = due
            .chunks(self.chain.max_outputs_per_payment.max(1) as usize)
            .map(<[_]>::to_vec)
            .collect();
        let mut out = Vec::new();
        if dry_run {
            for (i, batch) in batches.into_iter().enumerate() {
                out.push(Payment {
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
                });
            }
            return Ok(out);
        }
        // Behind the daemon's tip (catching up), a plan would be stale before it is sent: this
        // cycle is skipped (and counts as run; the next comes after the payout interval).
        let tip = i64::try_from(self.rpc.get_block_count().await?).unwrap_or(i64::MAX);
        if tip > planned_height + CATCH_UP_MARGIN_BLOCKS {
            log::info!(
                "chain {}: processed height {planned_height} is behind the tip {tip}; this payout cycle is skipped",
                self.name()
            );
            settings::mark_cycle(&self.db, self.name()).await?;
            return Ok(Vec::new());
        }
        let mut available = self.spendable().await?;
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
            // A plan the chain has moved on from is not sent: its transaction (which the wallet
            // lets be mined for WALLET_EXPIRY_BLOCKS) could land after the payment timed out,
            // failed and had its balances paid again. It stays PLANNED and fails at the timeout.
            let tip = i64::try_from(self.rpc.get_block_count().await?).unwrap_or(i64::MAX);
            if tip + WALLET_EXPIRY_BLOCKS
                >= planned_height + i64::from(self.chain.payment_timeout_blocks)
            {
                log::warn!(
                    "chain {}: payment {id} planned at height {planned_height} is not sent at tip {tip}: too late to be mined before its timeout; it fails then and is planned again",
                    self.name()
                );
                out.push(p);
                continue;
            }
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
                    // The daemon refused the call: no operation, no transaction.
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
            out.push(p);
        }
        settings::mark_cycle(&self.db, self.name()).await?;
        Ok(out)
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
