//! Payout cycles: the balances due, the books checked, the pool's spendable balance, and each
//! batch planned and submitted with `sendcurrency`.

use super::machine::expiry_bound;
use super::{CATCH_UP_MARGIN_BLOCKS, NETWORK_FEE, PayoutCore};
use crate::actors::ActorError;
use crate::daemon::rpc::RpcError;
use crate::daemon::types::{ExactCoins, SendOutput};
use crate::domain::{Height, PaymentStatus, Sats, SubscriberStatus};
use crate::store::audit::{self, AuditEntry};
use crate::store::ledger::{self, LedgerKind};
use crate::store::payments::{self, Payment};
use crate::store::{chain as chain_store, settings, subscribers};

impl PayoutCore {
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
        // Dust carries over; the terms of the rest are read in batches, not one by one.
        let above_dust: Vec<(String, Sats)> = ledger::pending_balances(&self.db, self.name())
            .await?
            .into_iter()
            .filter(|(_, pending)| *pending >= self.chain.min_output)
            .collect();
        let identities: Vec<String> = above_dust.iter().map(|(i, _)| i.clone()).collect();
        let terms = subscribers::payout_terms_of(&self.db, self.name(), &identities).await?;
        for (identity, pending) in above_dust {
            let sub = terms.get(&identity);
            let leaver = sub.is_some_and(|(status, _)| {
                matches!(status, SubscriberStatus::Left | SubscriberStatus::Banned)
            });
            let minimum = sub
                .and_then(|(_, own)| *own)
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
        // Behind the daemon's tip (catching up), a plan would be stale before it is sent: the
        // cycle waits (it does not count as run) and is tried again when the watcher reports
        // a block at the tip it saw, or at the next poll.
        if tip > planned_height + CATCH_UP_MARGIN_BLOCKS {
            log::debug!(
                "chain {}: processed height {planned_height} is behind the tip {tip}; the payout cycle waits",
                self.name()
            );
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
            self.in_flight = true;
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
        let txn = self.fence.begin(&self.db).await?;
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
        let txn = self.fence.begin(&self.db).await?;
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
                let txn = self.fence.begin(&self.db).await?;
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
        let txn = self.fence.begin(&self.db).await?;
        audit::record(&txn, audit_entry).await?;
        settings::set_payouts_paused(&txn, self.name(), paused, reason.as_deref()).await?;
        txn.commit().await?;
        Ok(())
    }

    /// How long until the next cycle is due (zero: due now): one payout interval after the
    /// last completed cycle; the first one interval after the pool first ran (there is
    /// nothing to pay before stakes mature, and an admin can run one at any time).
    async fn until_cycle(&self) -> Result<std::time::Duration, ActorError> {
        let last = settings::payout_state(&self.db, self.name())
            .await?
            .last_cycle_at;
        let Some(last) = last else {
            settings::mark_cycle(&self.db, self.name()).await?;
            return Ok(std::time::Duration::from_secs(
                self.chain.payout_interval_secs,
            ));
        };
        let interval = chrono::Duration::seconds(
            i64::try_from(self.chain.payout_interval_secs).unwrap_or(i64::MAX),
        );
        Ok((last + interval - chrono::Utc::now())
            .to_std()
            .unwrap_or(std::time::Duration::ZERO))
    }

    /// One look: a cycle when one is due, else the payments in flight. Returns how long the
    /// actor may wait before the next look if no block or matured stake comes first: the poll
    /// interval while payments are in flight (the daemon's operations report nothing by
    /// themselves), else until the next cycle, at most `idle`.
    pub(super) async fn tick(
        &mut self,
        poll: std::time::Duration,
        idle: std::time::Duration,
    ) -> Result<std::time::Duration, ActorError> {
        if self.until_cycle().await?.is_zero() {
            self.run(false, None).await?;
        } else {
            self.advance().await?;
        }
        Ok(if self.in_flight {
            poll
        } else {
            self.until_cycle().await?.clamp(poll, idle)
        })
    }
}
