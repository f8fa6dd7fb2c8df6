//! Following payments already planned: their operations, their transactions, and the chain
//! search that resolves an unknown outcome (see [`super::machine`] for the decisions).

use std::collections::HashSet;

use super::PayoutCore;
use super::machine::{
    OpOutcome, Outputs, SentStep, UnknownStep, deadline, op_outcome, outputs_of, paid_by,
    sent_step, unknown_step,
};
use crate::actors::ActorError;
use crate::daemon::rpc::RpcError;
use crate::daemon::types::Tx;
use crate::domain::chain::FINAL_CONFIRMATIONS;
use crate::domain::{EventKind, Height, PaymentStatus};
use crate::store::chain as chain_store;
use crate::store::events::{self, NewEvent};
use crate::store::ledger::{self, LedgerKind, Posting};
use crate::store::payments::{self, Payment};

impl PayoutCore {
    pub(super) async fn post_all(
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
    pub(super) async fn fail(
        &self,
        mut p: Payment,
        why: String,
        tip: Height,
    ) -> Result<(), ActorError> {
        let txn = self.fence.begin(&self.db).await?;
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

    pub(super) async fn mark_sent(
        &self,
        mut p: Payment,
        txid: String,
        tip: Height,
    ) -> Result<(), ActorError> {
        let txn = self.fence.begin(&self.db).await?;
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
        self.events.do_send(crate::actors::events::EventsWritten);
        log::info!("chain {}: payment {} sent in {txid}", self.name(), p.id);
        Ok(())
    }

    /// The pool identity's transactions since height `from`, in the mempool or in blocks, with
    /// what each pays to others. The mempool is read first and the blocks after, up to the tip
    /// read after the mempool, so a transaction mined in between is seen in one of the two; if
    /// the best block changed meanwhile (a reorganisation can move a transaction back to the
    /// mempool), everything is read again.
    pub(super) async fn pool_transactions(
        &self,
        from: Height,
    ) -> Result<Vec<(String, Outputs)>, ActorError> {
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
    pub(super) fn daemon_behind(&mut self, tip: Height, processed: Height) -> bool {
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
        // Confirmed ones wait for blocks; the others for the daemon's operations and mempool.
        self.in_flight = open.iter().any(|p| p.status != PaymentStatus::Confirmed);
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
            let id = p.id;
            let txid = candidates
                .iter()
                .find(|(t, paid)| !linked.contains(t) && *paid == wanted)
                .map(|(t, _)| t.clone());
            let until = deadline(&p, timeout);
            let step = unknown_step(txid.as_deref(), running.contains(&wanted), tip, until);
            let result = match step {
                UnknownStep::Take(txid) => {
                    linked.insert(txid.clone());
                    self.mark_sent(p, txid, tip).await
                }
                UnknownStep::Fail => {
                    self.fail(
                        p,
                        format!(
                            "{why}; no transaction of the pool identity pays exactly its outputs, and any made for it expired at height {until}"
                        ),
                        tip,
                    )
                    .await
                }
                UnknownStep::Wait => Ok(()),
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
        let required = i64::from(self.chain.payment_confirmations);
        match sent_step(p.status, confirmations, required) {
            SentStep::Confirm => {
                let txn = self.fence.begin(&self.db).await?;
                self.post_all(&txn, &q, LedgerKind::PaymentConfirmed, tip)
                    .await?;
                q.status = PaymentStatus::Confirmed;
                q.confirmed_height = Some(tip);
                payments::update(&txn, &q, p.status).await?;
                txn.commit().await?;
                log::info!("chain {}: payment {} confirmed", self.name(), q.id);
            }
            SentStep::Unconfirm => {
                // Its block was disconnected: back to SENT until it confirms again.
                let txn = self.fence.begin(&self.db).await?;
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
            SentStep::Stay if q != p => {
                let txn = self.fence.begin(&self.db).await?;
                payments::update(&txn, &q, p.status).await?;
                txn.commit().await?;
            }
            SentStep::Stay => {}
        }
        Ok(())
    }
}
