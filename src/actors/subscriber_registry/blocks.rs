//! Block application: a connected block's identity versions, outputs, statuses and events,
//! with the actions at its height, in one transaction with the registry's cursor; and the undo
//! of a disconnected block.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::checks::{alerts, unmet_conditions};
use super::{ACTOR, RegistryCore, Undo, in_pool, vin_from};
use crate::actors::ActorError;
use crate::daemon::types::{Block, Tx};
use crate::domain::conditions::{COOLDOWN_BLOCKS, FLAG_REVOKED};
use crate::domain::{EventKind, Height, PoolSettings, Sats, SubscriberStatus};
use crate::store::actions;
use crate::store::chain as chain_store;
use crate::store::events::{self, NewEvent};
use crate::store::identities::{self, IdentityVersion};
use crate::store::subscribers::{self, StatusChange};
use crate::store::utxos::{self, Utxo};

/// Status changes and identity versions written after which the registry refreshes
/// PostgreSQL's statistics (`store::refresh_statistics`): a block of a wave of joins.
const ANALYZE_AFTER: usize = 500;

/// Blocks applied in a transaction not committed yet.
#[derive(Default)]
struct Batch {
    /// The open transaction.
    txn: Option<sea_orm::DatabaseTransaction>,
    /// The blocks applied in it, (height, hash).
    applied: Vec<(Height, String)>,
    /// Their events.
    out: Vec<NewEvent>,
    /// What puts the tracked map back if it is not committed.
    undo: Undo,
}

/// A height and the pool settings in force at it (read once for everything evaluated there).
#[derive(Clone, Copy)]
pub(super) struct At<'a> {
    /// The height.
    pub height: Height,
    /// The settings in force at it.
    pub settings: &'a PoolSettings,
}

/// A status change an evaluation decided.
pub(super) struct Change {
    status: SubscriberStatus,
    reason: String,
    unmet: Vec<String>,
}

/// What evaluating one identity decided.
pub(super) struct Verdict {
    /// Its fully qualified name.
    name: String,
    /// Alerts about what changed since its previous version.
    alerts: Vec<NewEvent>,
    /// Its new status, if it changes.
    next: Option<Change>,
}

impl RegistryCore {
    /// Evaluates `identity` at `at.height` and applies the status transition it implies
    /// (an admin's or a subscriber's action, `action`).
    pub(super) async fn evaluate(
        &self,
        txn: &impl sea_orm::ConnectionTrait,
        identity: &str,
        at: At<'_>,
        action: Option<i64>,
        out: &mut Vec<NewEvent>,
    ) -> Result<(), ActorError> {
        let one = [(identity.to_owned(), action)];
        self.evaluate_many(txn, &one, at, &HashMap::new(), out)
            .await
    }

    /// Evaluates each of `identities` (distinct, each with the action it comes from, if any)
    /// at `at.height` and applies the status transitions they imply. `previous` holds the
    /// version before this block of those that changed in it (for the alerts). What the
    /// decisions read (versions, counted outputs, statuses) is read for all of them, 500 to a
    /// statement, and what they write is written together (`subscribers::set_status_many`,
    /// `set_intervals_many`): a change of the pool's conditions evaluates every subscriber at
    /// its height, and with three statements per identity that block took 2.2 s at 10,000
    /// subscribers and 24.7 s at 100,000 (BENCHMARKS.md, sixteenth round); 10,000 identities
    /// joining, and then ending their cooldown, were 100,000 statements of a catch-up
    /// (seventeenth round). One identity's new status changes none of what another's
    /// decision reads, so the verdicts are those of one identity at a time.
    pub(super) async fn evaluate_many(
        &self,
        txn: &impl sea_orm::ConnectionTrait,
        identities: &[(String, Option<i64>)],
        at: At<'_>,
        previous: &HashMap<String, IdentityVersion>,
        out: &mut Vec<NewEvent>,
    ) -> Result<(), ActorError> {
        if identities.is_empty() {
            return Ok(());
        }
        let height = at.height;
        let addresses: Vec<String> = identities.iter().map(|(a, _)| a.clone()).collect();
        let versions = identities::at_many(txn, self.name(), &addresses, height).await?;
        let c = &at.settings.conditions;
        let counted = if c.max_utxos > 0 {
            utxos::counted_many(txn, self.name(), &addresses, height - 1, c.utxo_count_min).await?
        } else {
            HashMap::new()
        };
        let statuses = subscribers::statuses_of(txn, self.name(), &addresses).await?;
        let mut verdicts = Vec::with_capacity(identities.len());
        for (identity, action) in identities {
            let Some(version) = versions.get(identity) else {
                continue;
            };
            let counted = counted.get(identity).copied().unwrap_or(0);
            let status = statuses.get(identity).copied();
            let verdict = self.judge(
                identity,
                version,
                counted,
                status,
                at,
                previous.get(identity),
            );
            verdicts.push((identity.as_str(), verdict, *action));
        }
        self.apply_verdicts(txn, verdicts, height, out).await
    }

    /// [`RegistryCore::evaluate_many`] of identities the pool starts following at
    /// `at.height` (their `track` actions, no previous version).
    pub(super) async fn evaluate_tracked(
        &self,
        txn: &impl sea_orm::ConnectionTrait,
        tracking: &[actions::Action],
        at: At<'_>,
        out: &mut Vec<NewEvent>,
    ) -> Result<(), ActorError> {
        let identities: Vec<(String, Option<i64>)> = tracking
            .iter()
            .map(|a| (a.identity_address.clone(), Some(a.id)))
            .collect();
        self.evaluate_many(txn, &identities, at, &HashMap::new(), out)
            .await
    }

    /// What `identity`'s version at `at.height` means for its status (`status` now, `None`
    /// if never a subscriber), with alerts about what changed since `previous`.
    fn judge(
        &self,
        identity: &str,
        version: &IdentityVersion,
        counted: u64,
        status: Option<SubscriberStatus>,
        at: At<'_>,
        previous: Option<&IdentityVersion>,
    ) -> Verdict {
        let height = at.height;
        let tracked = &self.tracked;
        let c = &at.settings.conditions;
        let unmet = unmet_conditions(&self.chain, c, &version.facts, height, counted, &|a| {
            tracked.contains_key(a)
        });
        let name = format!("{}.{}@", version.name, self.name());
        let mut alerted = Vec::new();
        if let (Some(prev), true) = (previous, in_pool(status)) {
            for (alert, text) in alerts(&prev.facts, &version.facts, height) {
                alerted.push(NewEvent {
                    alert: Some(alert),
                    identity_address: Some(identity.to_owned()),
                    height: Some(height),
                    ..NewEvent::new(
                        self.name(),
                        EventKind::IdentityAlert,
                        format!("{name}: {text}"),
                    )
                });
            }
        }
        let change = |status: SubscriberStatus, reason: Option<&'static str>| (status, reason);
        let cooled = height - version.height >= COOLDOWN_BLOCKS;
        let updated_now = version.height == height;
        let next = match (status, unmet.is_empty()) {
            (Some(SubscriberStatus::Banned), _) => None,
            (s, true) if !in_pool(s) => Some(if cooled {
                change(SubscriberStatus::Active, Some("meets every condition"))
            } else {
                change(
                    SubscriberStatus::CoolingDown,
                    Some("meets every condition; cooling down for 150 blocks"),
                )
            }),
            (Some(SubscriberStatus::CoolingDown), true) if cooled => Some(change(
                SubscriberStatus::Active,
                Some("150 blocks since the identity's last update"),
            )),
            (Some(SubscriberStatus::Active), true) if updated_now => Some(change(
                SubscriberStatus::CoolingDown,
                Some("the identity was updated: 150-block cooldown"),
            )),
            (s, false) if in_pool(s) => Some(change(SubscriberStatus::Left, None)),
            _ => None,
        };
        Verdict {
            name,
            alerts: alerted,
            next: next.map(|(status, reason)| Change {
                status,
                reason: reason
                    .map(str::to_owned)
                    .unwrap_or_else(|| unmet.join("; ")),
                unmet,
            }),
        }
    }

    /// Records the status changes of `verdicts` (distinct identities, each with the action it
    /// comes from), decided at `height`, with their eligibility intervals, together; then
    /// their events in order: each identity's alerts, then its membership event.
    async fn apply_verdicts(
        &self,
        txn: &impl sea_orm::ConnectionTrait,
        verdicts: Vec<(&str, Verdict, Option<i64>)>,
        height: Height,
        out: &mut Vec<NewEvent>,
    ) -> Result<(), ActorError> {
        let announce = {
            let changes: Vec<StatusChange<'_>> = verdicts
                .iter()
                .filter_map(|(identity, verdict, action)| {
                    verdict.next.as_ref().map(|next| StatusChange {
                        chain: self.name(),
                        identity_address: identity,
                        name: &verdict.name,
                        status: next.status,
                        height,
                        reason: Some(&next.reason),
                        unmet: &next.unmet,
                        action: *action,
                    })
                })
                .collect();
            let announce = subscribers::set_status_many(txn, &changes).await?;
            self.unanalyzed.fetch_add(changes.len(), Ordering::Relaxed);
            let intervals: Vec<(&str, bool)> = changes
                .iter()
                .map(|c| (c.identity_address, c.status == SubscriberStatus::Active))
                .collect();
            subscribers::set_intervals_many(txn, self.name(), &intervals, height).await?;
            announce
        };
        // SUBSCRIBER_JOINED and SUBSCRIBER_LEFT tell clients what they were not told yet, so
        // they alternate whatever reorganisations did in between.
        let mut announce = announce.into_iter();
        for (identity, mut verdict, _) in verdicts {
            out.append(&mut verdict.alerts);
            let Some(next) = &verdict.next else {
                continue;
            };
            if let Some(Some(joined)) = announce.next() {
                out.push(self.membership_event(
                    identity,
                    height,
                    &verdict.name,
                    joined,
                    &next.unmet,
                ));
            }
        }
        Ok(())
    }

    /// `SUBSCRIBER_JOINED` (`joined`) or `SUBSCRIBER_LEFT` with the conditions not met.
    fn membership_event(
        &self,
        identity: &str,
        height: Height,
        name: &str,
        joined: bool,
        unmet: &[String],
    ) -> NewEvent {
        let (kind, message) = if joined {
            (
                EventKind::SubscriberJoined,
                format!("{name} joined the pool"),
            )
        } else {
            (
                EventKind::SubscriberLeft,
                format!("{name} left the pool: {}", unmet.join("; ")),
            )
        };
        NewEvent {
            identity_address: Some(identity.to_owned()),
            height: Some(height),
            ..NewEvent::new(self.name(), kind, message)
        }
    }

    /// Applies connected blocks (consecutive, each following the one before): identity
    /// versions, UTXOs, statuses and events of each, and the cursor, in one transaction — cut
    /// only where a block has identities that start listing the pool, whose outputs the
    /// daemon is asked for outside any transaction. Applying them again changes nothing.
    pub async fn connect(&mut self, blocks: &[Arc<Block<Tx>>]) -> Result<(), ActorError> {
        let ids: Vec<(Height, &str)> = blocks.iter().map(|b| (b.height, b.hash.as_str())).collect();
        let first_prev = blocks.first().and_then(|b| b.previousblockhash.as_deref());
        let (applied, undo) = self
            .known
            .to_apply(&self.db, &self.chain.name, ACTOR, &ids, first_prev)
            .await?;
        for (height, hash, prev) in undo {
            self.disconnect(height, &hash, &prev).await?;
        }
        let mut batch = Batch::default();
        let result = self
            .connect_blocks(blocks.get(applied..).unwrap_or_default(), &mut batch)
            .await;
        match (&result, blocks.last()) {
            // Every block is committed, the last one with the cursor.
            (Ok(()), Some(last)) => self.known.committed(last.height, &last.hash),
            (Ok(()), None) => {}
            (Err(_), _) => {
                // What was not committed is rolled back with the transaction; the tracked map
                // too.
                std::mem::take(&mut batch.undo).rollback(&mut self.tracked);
                self.cooling_swept.store(false, Ordering::Relaxed);
            }
        }
        // Many identities changed (a wave of joins, the end of their cooldown): PostgreSQL
        // plans the next blocks' reads of 500 identities from statistics, and without them it
        // scanned whole tables (BENCHMARKS.md, seventeenth round). Beside the blocks, one
        // at a time: an analysis samples up to 30,000 rows of each table, not a block's work.
        if self.unanalyzed.load(Ordering::Relaxed) >= ANALYZE_AFTER
            && !self.analysing.swap(true, Ordering::AcqRel)
        {
            self.unanalyzed.store(0, Ordering::Relaxed);
            let db = self.db.clone();
            let analysing = Arc::clone(&self.analysing);
            actix::spawn(async move {
                crate::store::refresh_statistics(&db, crate::store::KEYED_TABLES).await;
                analysing.store(false, Ordering::Release);
            });
        }
        result
    }

    /// The work of [`RegistryCore::connect`] on the blocks it has not applied yet.
    async fn connect_blocks(
        &mut self,
        blocks: &[Arc<Block<Tx>>],
        batch: &mut Batch,
    ) -> Result<(), ActorError> {
        for block in blocks {
            let h = block.height;
            let mut txn = match batch.txn.take() {
                Some(txn) => txn,
                None => self.fence.begin(&self.blocks_db).await?,
            };
            // Identity outputs that concern the pool: those of identities that list its
            // address, that it follows, or that were subscribers (read together).
            let outputs: Vec<(&Tx, &crate::daemon::types::Identity)> = block
                .tx
                .iter()
                .flat_map(|tx| {
                    tx.vout.iter().filter_map(move |v| {
                        v.script_pub_key.identityprimary.as_ref().map(|d| (tx, d))
                    })
                })
                .collect();
            let unknown: Vec<String> = outputs
                .iter()
                .map(|(_, def)| def.identityaddress.clone())
                .filter(|a| !self.tracked.contains_key(a))
                .collect();
            let were_subscribers = subscribers::statuses_of(&txn, self.name(), &unknown).await?;
            let mut changes: Vec<IdentityVersion> = Vec::new();
            for (tx, def) in outputs {
                let facts = def.facts(def.flags & FLAG_REVOKED != 0);
                let known = self.tracked.contains_key(&facts.address)
                    || were_subscribers.contains_key(&facts.address);
                if self.lists_pool(&facts) || known {
                    changes.retain(|c| c.facts.address != facts.address);
                    changes.push(IdentityVersion {
                        height: h,
                        txid: tx.txid.clone(),
                        name: def.name.clone(),
                        facts,
                    });
                }
            }
            // Identities that start listing the pool's address: their UTXOs as of the block
            // before, asked of the daemon outside any transaction (what is applied so far
            // commits first).
            let joining: Vec<String> = changes
                .iter()
                .filter(|v| {
                    self.lists_pool(&v.facts) && !self.tracked.contains_key(&v.facts.address)
                })
                .map(|v| v.facts.address.clone())
                .collect();
            let mut seeded = HashMap::new();
            if !joining.is_empty() {
                self.commit(txn, batch).await?;
                seeded = self.seed_utxos_many(&joining, h - 1).await?;
                txn = self.fence.begin(&self.blocks_db).await?;
            }
            let seeds: Vec<(String, Vec<Utxo>)> = joining
                .into_iter()
                .map(|a| {
                    let utxos = seeded.remove(&a).unwrap_or_default();
                    (a, utxos)
                })
                .collect();
            // Identities that start or stop listing the pool's address: the pool can sign for
            // them now, or no longer, so whoever names them as revocation or recovery
            // authority is evaluated again (the separate-authority condition is about the
            // authorities as they are now).
            let flipped: HashSet<String> = changes
                .iter()
                .filter(|v| {
                    self.lists_pool(&v.facts) != self.tracked.contains_key(&v.facts.address)
                })
                .map(|v| v.facts.address.clone())
                .collect();
            let untracked: Vec<String> = changes
                .iter()
                .map(|v| v.facts.address.clone())
                .filter(|a| !self.tracked.contains_key(a))
                .collect();
            let mut previous = identities::at_many(&txn, self.name(), &untracked, h - 1).await?;
            for v in &changes {
                if let Some(old) = self.tracked.get(&v.facts.address) {
                    previous.insert(v.facts.address.clone(), old.clone());
                }
            }
            // The tracked map changes in place; the undo log puts it back if the transaction
            // fails (cloning the whole map every block cost time and memory in proportion to
            // the number of subscribers).
            for v in &changes {
                let value = self.lists_pool(&v.facts).then(|| v.clone());
                batch.undo.set(&mut self.tracked, &v.facts.address, value);
            }
            self.connect_write(
                &txn,
                block,
                &changes,
                &seeds,
                &previous,
                &flipped,
                &mut batch.out,
            )
            .await?;
            batch.applied.push((h, block.hash.clone()));
            batch.txn = Some(txn);
        }
        if let Some(txn) = batch.txn.take() {
            self.commit(txn, batch).await?;
        }
        Ok(())
    }

    /// Commits the blocks applied in `txn` with their events and the cursor at the last of
    /// them (a transaction that applied none is rolled back).
    async fn commit(
        &self,
        txn: sea_orm::DatabaseTransaction,
        batch: &mut Batch,
    ) -> Result<(), ActorError> {
        let Some((last, hash)) = batch.applied.last() else {
            return Ok(());
        };
        events::append(&txn, &batch.out).await?;
        chain_store::set_cursor(&txn, self.name(), ACTOR, *last, hash).await?;
        for (h, _) in &batch.applied {
            crate::fault::point("registry-before-commit", *h);
        }
        txn.commit().await?;
        batch.undo = Undo::default();
        if !batch.out.is_empty() {
            self.events_written();
        }
        for (h, _) in &batch.applied {
            crate::fault::point("registry-after-commit", *h);
        }
        for e in &batch.out {
            log::info!(
                "chain {}: height {}: {}",
                self.name(),
                e.height.unwrap_or(*last),
                e.message
            );
        }
        batch.out.clear();
        batch.applied.clear();
        Ok(())
    }

    /// One block's writes in `txn` (of [`RegistryCore::connect`]), with the tracked map
    /// already updated; its events go to `out`.
    #[allow(clippy::too_many_arguments)]
    async fn connect_write(
        &self,
        txn: &sea_orm::DatabaseTransaction,
        block: &Block<Tx>,
        changes: &[IdentityVersion],
        seeds: &[(String, Vec<Utxo>)],
        previous: &HashMap<String, IdentityVersion>,
        flipped: &HashSet<String>,
        out: &mut Vec<NewEvent>,
    ) -> Result<(), ActorError> {
        let h = block.height;
        let tracked = &self.tracked;
        identities::record_many(txn, self.name(), changes).await?;
        self.unanalyzed.fetch_add(changes.len(), Ordering::Relaxed);
        // Merged with what is stored: an identity that comes back keeps the history of its
        // outputs (a round still maturing reads it), and gains what it received meanwhile.
        for (_, seed) in seeds {
            utxos::insert(txn, self.name(), seed).await?;
        }
        let spent: Vec<(String, u32, String)> = block
            .tx
            .iter()
            .flat_map(|tx| {
                tx.vin.iter().filter_map(move |v| match (&v.txid, v.vout) {
                    (Some(t), Some(n)) => Some((t.clone(), n, tx.txid.clone())),
                    _ => None,
                })
            })
            .collect();
        utxos::mark_spent(txn, self.name(), &spent, h).await?;
        let pool = self.chain.pool_identity.as_str();
        let mut outputs = Vec::new();
        for tx in &block.tx {
            let from_pool = tx.vin.iter().any(|v| vin_from(v, pool));
            for vout in &tx.vout {
                let Some(dest) = vout.script_pub_key.addresses.first() else {
                    continue;
                };
                if vout.value_sat > 0 && tracked.contains_key(dest) {
                    outputs.push(Utxo {
                        identity_address: dest.clone(),
                        txid: tx.txid.clone(),
                        vout: vout.n,
                        amount: Sats(vout.value_sat),
                        height: h,
                        spent_height: None,
                        from_pool,
                    });
                }
            }
        }
        utxos::insert(txn, self.name(), &outputs).await?;
        // An identity that drops the pool's address is no longer followed, but its rows stay
        // (spends are still recorded): if this block is disconnected it is followed again from
        // them, and if it adds the address back later the seed adds what it received meanwhile.

        // Who to evaluate at this height.
        let (settings, from) = self.settings_at(txn, h).await?;
        let mut evaluate: Vec<String> = changes.iter().map(|v| v.facts.address.clone()).collect();
        // A cooling subscriber changes only when its cooldown is over (or its identity
        // changes, which `changes` covers): evaluate just those, not every one every block.
        evaluate.extend(self.cooldowns_over(txn, h).await?);
        // A settings version that starts here and changes the conditions: everyone is
        // evaluated again. One that changes only the fee or the minimum payout changes nothing
        // a decision reads (`judge` reads the conditions and the height, and the height alone
        // never flips a status: an identity with a pending unlock fails the lock condition as
        // an unlocked one does, a cooldown's end and changed outputs are found above and
        // below), so it costs no more than any block: 183 → 18 ms at 10,000 subscribers
        // (BENCHMARKS.md, seventeenth round).
        if from == h && self.settings_at(txn, h - 1).await?.0.conditions != settings.conditions {
            evaluate.extend(tracked.keys().cloned());
            let members =
                subscribers::addresses_with_status(txn, self.name(), &[SubscriberStatus::Active])
                    .await?;
            evaluate.extend(members);
        }
        if settings.conditions.max_utxos > 0 {
            evaluate.extend(utxos::changed_at(txn, self.name(), h - 1).await?);
        }
        if !flipped.is_empty() {
            evaluate.extend(
                tracked
                    .values()
                    .filter(|v| {
                        flipped.contains(&v.facts.revocation_authority)
                            || flipped.contains(&v.facts.recovery_authority)
                    })
                    .map(|v| v.facts.address.clone()),
            );
        }
        evaluate.sort();
        evaluate.dedup();
        let evaluate: Vec<(String, Option<i64>)> =
            evaluate.into_iter().map(|a| (a, None)).collect();
        self.evaluate_many(
            txn,
            &evaluate,
            At {
                height: h,
                settings: &settings,
            },
            previous,
            out,
        )
        .await?;
        // Then the admins' and subscribers' actions at this height, as a pool that was
        // running when they were asked applied them.
        for action in actions::unapplied_at(txn, self.name(), h).await? {
            self.apply_action(txn, &action, &settings, out).await?;
        }
        Ok(())
    }

    /// The subscribers cooling down whose cooldown is over at `h`.
    ///
    /// A subscriber cools down from a version of its identity (set only while that version
    /// is less than [`COOLDOWN_BLOCKS`] old) and stays cooling until it is evaluated, which
    /// changes its status. Every height is applied, one after the other (a reorganisation
    /// applies again the heights it took away, with the statuses they had undone), so the
    /// cooldown ends at one height: the tracked identities whose version is exactly that old
    /// are the candidates (from the map's index by height: work per version mined then, not
    /// per subscriber), and those cooling among them are the answer. Reading every cooling
    /// subscriber's address instead cost 16–17 ms of every block while 10,000 cooled down
    /// (BENCHMARKS.md, fifteenth round). The first block after the registry starts still reads
    /// them all, and evaluates every one whose cooldown is over, however long ago: a pool
    /// stopped by an earlier version, or anything this reasoning misses, heals there.
    async fn cooldowns_over(
        &self,
        txn: &impl sea_orm::ConnectionTrait,
        h: Height,
    ) -> Result<Vec<String>, ActorError> {
        let tracked = &self.tracked;
        if !self.cooling_swept.swap(true, Ordering::Relaxed) {
            let cooling = subscribers::addresses_with_status(
                txn,
                self.name(),
                &[SubscriberStatus::CoolingDown],
            )
            .await?;
            return Ok(cooling
                .into_iter()
                .filter(|a| {
                    tracked
                        .get(a)
                        .is_none_or(|v| h - v.height >= COOLDOWN_BLOCKS)
                })
                .collect());
        }
        let candidates: Vec<String> = tracked.versions_at(h - COOLDOWN_BLOCKS).cloned().collect();
        if candidates.is_empty() {
            return Ok(candidates);
        }
        let statuses = subscribers::statuses_of(txn, self.name(), &candidates).await?;
        Ok(candidates
            .into_iter()
            .filter(|a| statuses.get(a) == Some(&SubscriberStatus::CoolingDown))
            .collect())
    }

    /// Undoes the block at `height` if it is the last one applied; otherwise nothing.
    pub async fn disconnect(
        &mut self,
        height: Height,
        hash: &str,
        prev_hash: &str,
    ) -> Result<(), ActorError> {
        self.known.forget();
        match chain_store::cursor(&self.db, self.name(), ACTOR).await? {
            Some((h, _)) if h >= height => {}
            _ => return Ok(()),
        }
        let txn = self.fence.begin(&self.blocks_db).await?;
        utxos::undo_height(&txn, self.name(), height).await?;
        let changed = identities::delete_at(&txn, self.name(), height).await?;
        // With the block, the effects of the actions at its height (and of those applied
        // ahead of it, at the height the pool had not processed) go; the actions stay and
        // apply again when their height is connected again.
        let undone = subscribers::undo_from(&txn, self.name(), height).await?;
        actions::unapply_from(&txn, self.name(), height).await?;
        let mut out = Vec::new();
        for u in &undone {
            if let Some(is) = u.announce {
                let (kind, verb) = if is {
                    (EventKind::SubscriberJoined, "is back in")
                } else {
                    (EventKind::SubscriberLeft, "is no longer in")
                };
                out.push(NewEvent {
                    identity_address: Some(u.identity_address.clone()),
                    height: Some(height),
                    ..NewEvent::new(
                        self.name(),
                        kind,
                        format!(
                            "{} {verb} the pool: block {hash} at height {height} was disconnected",
                            u.name
                        ),
                    )
                });
            }
        }
        // Applied to the tracked map once committed.
        let mut updates: Vec<(&String, Option<IdentityVersion>)> = Vec::new();
        for identity in &changed {
            // Its outputs stay stored either way (see `connect_write`).
            match identities::at(&txn, self.name(), identity, Height::MAX).await? {
                Some(v) if self.lists_pool(&v.facts) => updates.push((identity, Some(v))),
                _ => updates.push((identity, None)),
            }
        }
        events::append(&txn, &out).await?;
        chain_store::set_cursor(&txn, self.name(), ACTOR, height - 1, prev_hash).await?;
        txn.commit().await?;
        if !out.is_empty() {
            self.events_written();
        }
        for (identity, version) in updates {
            match version {
                Some(v) => self.tracked.insert(identity.clone(), v),
                None => self.tracked.remove(identity),
            };
        }
        log::info!(
            "chain {}: height {height}: block {hash} disconnected; its subscriber changes undone",
            self.name()
        );
        Ok(())
    }
}
