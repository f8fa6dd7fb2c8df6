//! SubscriberRegistry — who is in the pool.
//!
//! **State it owns:** the tables `identity_version`, `subscriber`, `subscriber_status`,
//! `eligibility_interval`, `subscriber_utxo`, the admin's `pool_settings` versions, and in
//! memory the latest version of every identity that lists the pool's R-address ("tracked").
//!
//! **Messages:** `BlockConnected` / `BlockDisconnected` from the ChainWatcher; `Discover` at
//! start; `Subscribe`, `SetBanned` and `UpdateConditions` from the API.
//!
//! **Events it writes** (in the transaction of the change, DESIGN §6): `SUBSCRIBER_JOINED`,
//! `SUBSCRIBER_LEFT`, `IDENTITY_ALERT`.
//!
//! **Failures:** anything that fails rolls the whole block back and is returned to the
//! ChainWatcher, which retries the block; daemon calls (seeding a new identity's UTXOs) are
//! made before the transaction opens. Each block's work and the cursor commit together, so a
//! crash at any point leaves either all or nothing of the block.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use actix::prelude::*;
use sea_orm::DatabaseConnection;

use super::ActorError;
use super::events::{BlockConnected, BlockDisconnected, Shutdown};
use crate::config::ChainConfig;
use crate::daemon::rpc::{RpcClient, RpcError};
use crate::daemon::types::{Block, IdentityReply, Tx, Vin};
use crate::domain::conditions::{self, COOLDOWN_BLOCKS, FLAG_LOCKED, FLAG_REVOKED, IdentityFacts};
use crate::domain::{
    ActionKind, Conditions, EventKind, Height, IdentityAlertKind, PoolSettings, Sats,
    SubscriberStatus,
};
use crate::store::actions::{self, Action};
use crate::store::audit::{self, AuditEntry};
use crate::store::chain as chain_store;
use crate::store::events::{self, NewEvent};
use crate::store::identities::{self, IdentityVersion};
use crate::store::settings::{self, SettingsSource};
use crate::store::subscribers::{self, StatusChange, Subscriber};
use crate::store::utxos::{self, Utxo};

/// The registry's name in `actor_cursor`.
pub const ACTOR: &str = "registry";
/// Identities seeded per round of `getaddressutxos` / `getaddressdeltas` requests.
pub const SEED_CHUNK: usize = 200;

/// The outcome of checking an identity against the conditions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityCheck {
    /// Its i-address.
    pub identity_address: String,
    /// Its fully qualified name.
    pub name: String,
    /// Meets every condition now.
    pub eligible: bool,
    /// Its status in the pool, if it has one.
    pub status: Option<SubscriberStatus>,
    /// The conditions it does not meet, in words.
    pub unmet: Vec<String>,
}

/// What the conditions see in a `getidentity` reply.
pub fn facts_of(reply: &IdentityReply) -> IdentityFacts {
    let i = &reply.identity;
    IdentityFacts {
        address: i.identityaddress.clone(),
        flags: i.flags,
        timelock: i.timelock,
        primary_addresses: i.primaryaddresses.clone(),
        minimum_signatures: i.minimumsignatures,
        revocation_authority: i.revocationauthority.clone(),
        recovery_authority: i.recoveryauthority.clone(),
        revoked_status: reply.status == "revoked",
    }
}

fn in_pool(status: Option<SubscriberStatus>) -> bool {
    matches!(
        status,
        Some(SubscriberStatus::CoolingDown | SubscriberStatus::Active)
    )
}

fn vin_from(vin: &Vin, who: &str) -> bool {
    vin.address.as_deref() == Some(who)
        || vin
            .addresses
            .as_ref()
            .is_some_and(|a| a.iter().any(|x| x == who))
}

/// Changes to the tracked map, undone in reverse order when their transaction fails.
#[derive(Default)]
struct Undo(Vec<(String, Option<IdentityVersion>)>);

impl Undo {
    /// Sets (or, with `None`, removes) `key`, remembering what it was.
    fn set(
        &mut self,
        map: &mut HashMap<String, IdentityVersion>,
        key: &str,
        value: Option<IdentityVersion>,
    ) {
        let old = match value {
            Some(v) => map.insert(key.to_owned(), v),
            None => map.remove(key),
        };
        self.0.push((key.to_owned(), old));
    }

    /// Puts the map back as it was before the first `set`.
    fn rollback(self, map: &mut HashMap<String, IdentityVersion>) {
        for (key, old) in self.0.into_iter().rev() {
            match old {
                Some(v) => map.insert(key, v),
                None => map.remove(&key),
            };
        }
    }
}

/// The registry's logic; the actor serialises access to it.
pub struct RegistryCore {
    chain: Arc<ChainConfig>,
    db: DatabaseConnection,
    rpc: Arc<RpcClient>,
    fence: crate::store::lease::Fence,
    tracked: HashMap<String, IdentityVersion>,
}

impl RegistryCore {
    /// A registry for `chain`; call [`RegistryCore::load`] before use.
    pub fn new(
        chain: Arc<ChainConfig>,
        db: DatabaseConnection,
        rpc: Arc<RpcClient>,
        fence: crate::store::lease::Fence,
    ) -> RegistryCore {
        RegistryCore {
            chain,
            db,
            rpc,
            fence,
            tracked: HashMap::new(),
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

    fn lists_pool(&self, facts: &IdentityFacts) -> bool {
        facts
            .primary_addresses
            .iter()
            .any(|a| a == self.chain.pool_primary_address.as_str())
    }

    /// Loads the tracked identities from the database.
    pub async fn load(&mut self) -> Result<(), ActorError> {
        let all = identities::latest_all(&self.db, self.name()).await?;
        self.tracked = all
            .into_iter()
            .filter(|v| self.lists_pool(&v.facts))
            .map(|v| (v.facts.address.clone(), v))
            .collect();
        Ok(())
    }

    async fn settings_at(
        &self,
        db: &impl sea_orm::ConnectionTrait,
        height: Height,
    ) -> Result<(PoolSettings, Height), ActorError> {
        Ok(match settings::at(db, self.name(), height).await? {
            Some(v) => (v.settings, v.from_height),
            None => (self.chain.settings(), 0),
        })
    }

    /// The first height the pool has not processed: where admin and subscriber actions take
    /// effect (DESIGN §8). Read from the registry's own cursor, which moves first (the
    /// processed height moves only after the tracker also committed a block), and asked
    /// under the registry's lock, so no block can be half-applied meanwhile.
    pub async fn next_height(&self) -> Result<Height, ActorError> {
        if let Some((h, _)) = chain_store::cursor(&self.db, self.name(), ACTOR).await? {
            return Ok(h + 1);
        }
        match chain_store::get_chain(&self.db, self.name())
            .await?
            .and_then(|c| c.start_height)
        {
            Some(start) => Ok(start),
            None => Err(ActorError::Unavailable(format!(
                "the pool has not started following {} yet (its daemon has not answered); try again shortly",
                self.name()
            ))),
        }
    }

    /// The UTXOs of each identity as of `as_of` (inclusive), from the tip snapshot corrected
    /// with the address index: outputs mined later removed, outputs held then and spent later
    /// added. Identities go [`SEED_CHUNK`] at a time into one `getaddressutxos`, one
    /// `getaddressdeltas` and one batch of `getrawtransaction`, so seeding thousands of
    /// identities takes a few requests per chunk instead of several per identity.
    async fn seed_utxos_many(
        &self,
        identities: &[String],
        as_of: Height,
    ) -> Result<HashMap<String, Vec<Utxo>>, RpcError> {
        let mut out: HashMap<String, Vec<Utxo>> = HashMap::new();
        for chunk in identities.chunks(SEED_CHUNK) {
            let snapshot = self.rpc.get_address_utxos(chunk).await?;
            // (address, txid, vout, satoshis, height)
            let mut held: Vec<(String, String, u32, i64, Height)> = snapshot
                .utxos
                .iter()
                .filter(|u| u.height <= as_of && u.satoshis > 0)
                .map(|u| {
                    (
                        u.address.clone(),
                        u.txid.clone(),
                        u.output_index,
                        u.satoshis,
                        u.height,
                    )
                })
                .collect();
            if snapshot.height > as_of {
                let deltas = self
                    .rpc
                    .get_address_deltas(chunk, 1, snapshot.height)
                    .await?;
                let funded: HashMap<(String, u32), (String, i64, Height)> = deltas
                    .iter()
                    .filter(|d| d.satoshis > 0)
                    .map(|d| {
                        (
                            (d.txid.clone(), d.index),
                            (d.address.clone(), d.satoshis, d.height),
                        )
                    })
                    .collect();
                let spends: Vec<(String, u32)> = deltas
                    .iter()
                    .filter(|d| d.satoshis < 0 && d.height > as_of)
                    .map(|d| (d.txid.clone(), d.index))
                    .collect();
                let params: Vec<(String, i32)> =
                    spends.iter().map(|(t, _)| (t.clone(), 1)).collect();
                let txs = self
                    .rpc
                    .call_batch::<Tx, _>("getrawtransaction", &params)
                    .await?;
                for ((_, input), tx) in spends.iter().zip(txs) {
                    let tx = tx?;
                    let Some(vin) = tx.vin.get(*input as usize) else {
                        continue;
                    };
                    let (Some(prev), Some(n)) = (vin.txid.clone(), vin.vout) else {
                        continue;
                    };
                    if let Some((address, sats, height)) = funded.get(&(prev.clone(), n))
                        && *height <= as_of
                    {
                        held.push((address.clone(), prev, n, *sats, *height));
                    }
                }
            }
            // Which of them the pool identity paid (not counted against max_utxos).
            let mut funding: Vec<String> = held.iter().map(|(_, t, ..)| t.clone()).collect();
            funding.sort();
            funding.dedup();
            let params: Vec<(String, i32)> = funding.iter().map(|t| (t.clone(), 1)).collect();
            let txs = self
                .rpc
                .call_batch::<Tx, _>("getrawtransaction", &params)
                .await?;
            let pool = self.chain.pool_identity.as_str();
            let mut from_pool = HashSet::new();
            for (txid, tx) in funding.iter().zip(txs) {
                if tx?.vin.iter().any(|v| vin_from(v, pool)) {
                    from_pool.insert(txid.clone());
                }
            }
            for (address, txid, vout, sats, height) in held {
                out.entry(address.clone()).or_default().push(Utxo {
                    identity_address: address,
                    from_pool: from_pool.contains(&txid),
                    txid,
                    vout,
                    amount: Sats(sats),
                    height,
                    spent_height: None,
                });
            }
        }
        Ok(out)
    }

    /// Evaluates `identity` at `height` and applies the status transition it implies.
    /// `previous` is the version before this block when the identity changed in it.
    async fn evaluate(
        &self,
        txn: &impl sea_orm::ConnectionTrait,
        identity: &str,
        height: Height,
        previous: Option<&IdentityVersion>,
        action: Option<i64>,
        out: &mut Vec<NewEvent>,
    ) -> Result<(), ActorError> {
        let tracked = &self.tracked;
        let Some(version) = identities::at(txn, self.name(), identity, height).await? else {
            return Ok(());
        };
        let (settings, _) = self.settings_at(txn, height).await?;
        let c = &settings.conditions;
        let counted = if c.max_utxos > 0 {
            utxos::counted(txn, self.name(), identity, height - 1, c.utxo_count_min).await?
        } else {
            0
        };
        let pool_identity = self.chain.pool_identity.as_str();
        let signable = |a: &str| a == pool_identity || tracked.contains_key(a);
        let ctx = conditions::Context {
            pool_address: self.chain.pool_primary_address.as_str(),
            pool_identity,
            conditions: c,
            pool_signable: &signable,
            counted_utxos: counted,
            height,
        };
        let unmet: Vec<String> = conditions::evaluate(&version.facts, &ctx)
            .iter()
            .map(ToString::to_string)
            .collect();
        let current = subscribers::get(txn, self.name(), identity).await?;
        let status = current.as_ref().map(|s| s.status);
        let name = format!("{}.{}@", version.name, self.name());
        let event = |kind: EventKind, message: String| NewEvent {
            identity_address: Some(identity.to_owned()),
            height: Some(height),
            ..NewEvent::new(self.name(), kind, message)
        };
        if let (Some(prev), true) = (previous, in_pool(status)) {
            for (alert, text) in alerts(&prev.facts, &version.facts, height) {
                out.push(NewEvent {
                    alert: Some(alert),
                    ..event(EventKind::IdentityAlert, format!("{name}: {text}"))
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
        if let Some((new_status, reason)) = next {
            let reason_text = reason
                .map(str::to_owned)
                .unwrap_or_else(|| unmet.join("; "));
            let (_, announce) = subscribers::set_status(
                txn,
                &StatusChange {
                    chain: self.name(),
                    identity_address: identity,
                    name: &name,
                    status: new_status,
                    height,
                    reason: Some(&reason_text),
                    unmet: &unmet,
                    action,
                },
            )
            .await?;
            // SUBSCRIBER_JOINED and SUBSCRIBER_LEFT tell clients what they were not told yet,
            // so they alternate whatever reorganisations did in between.
            match announce {
                Some(true) => out.push(event(
                    EventKind::SubscriberJoined,
                    format!("{name} joined the pool"),
                )),
                Some(false) => out.push(event(
                    EventKind::SubscriberLeft,
                    format!("{name} left the pool: {}", unmet.join("; ")),
                )),
                None => {}
            }
            match new_status {
                SubscriberStatus::Active => {
                    subscribers::open_interval(txn, self.name(), identity, height).await?
                }
                _ => subscribers::close_interval(txn, self.name(), identity, height).await?,
            }
        }
        Ok(())
    }

    /// Applies a connected block: identity versions, UTXOs, statuses, events and the cursor
    /// in one transaction. Applying it again changes nothing.
    pub async fn connect(&mut self, block: &Block<Tx>) -> Result<(), ActorError> {
        let h = block.height;
        if let Some((height, hash)) = chain_store::cursor(&self.db, self.name(), ACTOR).await? {
            if height == h && hash == block.hash {
                return Ok(());
            }
            // Our cursor is at or past this height on another branch (the watcher crashed
            // before recording a disconnect): undo our own blocks first.
            let mut cursor = (height, hash);
            while cursor.0 >= h {
                let prev = chain_store::block_at(&self.db, self.name(), cursor.0 - 1)
                    .await?
                    .map(|b| b.hash)
                    .unwrap_or_default();
                self.disconnect(cursor.0, &cursor.1, &prev).await?;
                cursor = (cursor.0 - 1, prev);
            }
        }
        // Identity outputs that concern the pool.
        let mut changes: Vec<IdentityVersion> = Vec::new();
        for tx in &block.tx {
            for vout in &tx.vout {
                let Some(def) = &vout.script_pub_key.identityprimary else {
                    continue;
                };
                let facts = IdentityFacts {
                    address: def.identityaddress.clone(),
                    flags: def.flags,
                    timelock: def.timelock,
                    primary_addresses: def.primaryaddresses.clone(),
                    minimum_signatures: def.minimumsignatures,
                    revocation_authority: def.revocationauthority.clone(),
                    recovery_authority: def.recoveryauthority.clone(),
                    revoked_status: def.flags & FLAG_REVOKED != 0,
                };
                let known = self.tracked.contains_key(&facts.address)
                    || subscribers::get(&self.db, self.name(), &facts.address)
                        .await?
                        .is_some();
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
        }
        // Identities that start listing the pool's address: their UTXOs as of the block before.
        let joining: Vec<String> = changes
            .iter()
            .filter(|v| self.lists_pool(&v.facts) && !self.tracked.contains_key(&v.facts.address))
            .map(|v| v.facts.address.clone())
            .collect();
        let mut seeded = self.seed_utxos_many(&joining, h - 1).await?;
        let seeds: Vec<(String, Vec<Utxo>)> = joining
            .into_iter()
            .map(|a| {
                let utxos = seeded.remove(&a).unwrap_or_default();
                (a, utxos)
            })
            .collect();
        // Identities that start or stop listing the pool's address: the pool can sign for them
        // now, or no longer, so whoever names them as revocation or recovery authority is
        // evaluated again (the separate-authority condition is about the authorities as they
        // are now).
        let flipped: HashSet<String> = changes
            .iter()
            .filter(|v| self.lists_pool(&v.facts) != self.tracked.contains_key(&v.facts.address))
            .map(|v| v.facts.address.clone())
            .collect();
        let mut previous: HashMap<String, IdentityVersion> = HashMap::new();
        for v in &changes {
            if let Some(old) = self.tracked.get(&v.facts.address) {
                previous.insert(v.facts.address.clone(), old.clone());
            } else if let Some(old) =
                identities::at(&self.db, self.name(), &v.facts.address, h - 1).await?
            {
                previous.insert(v.facts.address.clone(), old);
            }
        }
        // The tracked map changes in place; the undo log puts it back if the block's
        // transaction fails (cloning the whole map every block cost time and memory in
        // proportion to the number of subscribers).
        let mut undo = Undo::default();
        for v in &changes {
            let value = self.lists_pool(&v.facts).then(|| v.clone());
            undo.set(&mut self.tracked, &v.facts.address, value);
        }
        let result = self
            .connect_write(block, &changes, &seeds, &previous, &flipped)
            .await;
        if result.is_err() {
            undo.rollback(&mut self.tracked);
        }
        result
    }

    /// The transaction of [`RegistryCore::connect`], with the tracked map already updated.
    async fn connect_write(
        &self,
        block: &Block<Tx>,
        changes: &[IdentityVersion],
        seeds: &[(String, Vec<Utxo>)],
        previous: &HashMap<String, IdentityVersion>,
        flipped: &HashSet<String>,
    ) -> Result<(), ActorError> {
        let h = block.height;
        let tracked = &self.tracked;
        let txn = self.begin().await?;
        for v in changes {
            identities::record(&txn, self.name(), v).await?;
        }
        // Merged with what is stored: an identity that comes back keeps the history of its
        // outputs (a round still maturing reads it), and gains what it received meanwhile.
        for (_, seed) in seeds {
            utxos::insert(&txn, self.name(), seed).await?;
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
        utxos::mark_spent(&txn, self.name(), &spent, h).await?;
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
        utxos::insert(&txn, self.name(), &outputs).await?;
        // An identity that drops the pool's address is no longer followed, but its rows stay
        // (spends are still recorded): if this block is disconnected it is followed again from
        // them, and if it adds the address back later the seed adds what it received meanwhile.

        // Who to evaluate at this height.
        let (settings, from) = self.settings_at(&txn, h).await?;
        let mut evaluate: Vec<String> = changes.iter().map(|v| v.facts.address.clone()).collect();
        let cooling =
            subscribers::addresses_with_status(&txn, self.name(), &[SubscriberStatus::CoolingDown])
                .await?;
        // A cooling subscriber changes only when its cooldown is over (or its identity
        // changes, which `changes` covers): evaluate just those, not every one every block.
        evaluate.extend(cooling.into_iter().filter(|a| {
            tracked
                .get(a)
                .is_none_or(|v| h - v.height >= COOLDOWN_BLOCKS)
        }));
        if from == h {
            // The conditions changed at this height: everyone is evaluated again.
            evaluate.extend(tracked.keys().cloned());
            let members =
                subscribers::addresses_with_status(&txn, self.name(), &[SubscriberStatus::Active])
                    .await?;
            evaluate.extend(members);
        }
        if settings.conditions.max_utxos > 0 {
            evaluate.extend(utxos::changed_at(&txn, self.name(), h - 1).await?);
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
        let mut out = Vec::new();
        for identity in &evaluate {
            self.evaluate(&txn, identity, h, previous.get(identity), None, &mut out)
                .await?;
        }
        // Then the admins' and subscribers' actions at this height, as a pool that was
        // running when they were asked applied them.
        for action in actions::unapplied_at(&txn, self.name(), h).await? {
            self.apply_action(&txn, &action, &mut out).await?;
        }
        events::append(&txn, &out).await?;
        chain_store::set_cursor(&txn, self.name(), ACTOR, h, &block.hash).await?;
        crate::fault::point("registry-before-commit", h);
        txn.commit().await?;
        crate::fault::point("registry-after-commit", h);
        for e in &out {
            log::info!("chain {}: height {h}: {}", self.name(), e.message);
        }
        Ok(())
    }

    /// Undoes the block at `height` if it is the last one applied; otherwise nothing.
    pub async fn disconnect(
        &mut self,
        height: Height,
        hash: &str,
        prev_hash: &str,
    ) -> Result<(), ActorError> {
        match chain_store::cursor(&self.db, self.name(), ACTOR).await? {
            Some((h, _)) if h >= height => {}
            _ => return Ok(()),
        }
        let txn = self.begin().await?;
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

    /// Starts following identities the pool did not know, at `h` (the first height it has not
    /// processed): their versions, their outputs as of `h − 1`, and a `track` action at `h`
    /// that evaluates them (applied now, and again whenever `h` is connected again).
    /// [`SEED_CHUNK`] at a time: one round of seeding requests and one transaction per chunk.
    async fn track_many(&mut self, replies: &[IdentityReply], h: Height) -> Result<(), ActorError> {
        for chunk in replies.chunks(SEED_CHUNK) {
            let addresses: Vec<String> = chunk
                .iter()
                .map(|r| r.identity.identityaddress.clone())
                .collect();
            let seeded = self.seed_utxos_many(&addresses, h - 1).await?;
            let mut undo = Undo::default();
            let result = self.track_chunk(chunk, seeded, h, &mut undo).await;
            if result.is_err() {
                undo.rollback(&mut self.tracked);
            }
            result?;
        }
        Ok(())
    }

    /// One chunk of [`RegistryCore::track_many`] in one transaction; `undo` records the
    /// changes to the tracked map.
    async fn track_chunk(
        &mut self,
        chunk: &[IdentityReply],
        mut seeded: HashMap<String, Vec<Utxo>>,
        h: Height,
        undo: &mut Undo,
    ) -> Result<(), ActorError> {
        let txn = self.begin().await?;
        let mut out = Vec::new();
        let mut tracking = Vec::new();
        for reply in chunk {
            let version = IdentityVersion {
                height: reply.blockheight,
                txid: reply.txid.clone(),
                name: reply.identity.name.clone(),
                facts: facts_of(reply),
            };
            let address = version.facts.address.clone();
            undo.set(&mut self.tracked, &address, Some(version.clone()));
            identities::record(&txn, self.name(), &version).await?;
            // Merged with what is stored (see `connect_write`).
            utxos::insert(
                &txn,
                self.name(),
                &seeded.remove(&address).unwrap_or_default(),
            )
            .await?;
            tracking
                .push(actions::record(&txn, self.name(), h, &address, ActionKind::Track).await?);
        }
        // Evaluated once all of the chunk is followed: each may be another's authority.
        for action in &tracking {
            self.apply_action(&txn, action, &mut out).await?;
        }
        events::append(&txn, &out).await?;
        txn.commit().await?;
        Ok(())
    }

    /// Applies one admin or subscriber action at its height (see [`crate::store::actions`]).
    /// Its events are written the first time only: applied again after a reorganisation, it
    /// restores what its subscriber was already told.
    async fn apply_action(
        &self,
        txn: &impl sea_orm::ConnectionTrait,
        action: &Action,
        out: &mut Vec<NewEvent>,
    ) -> Result<(), ActorError> {
        let h = action.height;
        let identity = action.identity_address.as_str();
        let mut events = Vec::new();
        let current = subscribers::get(txn, self.name(), identity).await?;
        match action.kind {
            ActionKind::Ban => {
                if let Some(current) = current.filter(|c| c.status != SubscriberStatus::Banned) {
                    let (_, announce) = subscribers::set_status(
                        txn,
                        &StatusChange {
                            chain: self.name(),
                            identity_address: identity,
                            name: &current.name,
                            status: SubscriberStatus::Banned,
                            height: h,
                            reason: Some("banned by an admin"),
                            unmet: &[],
                            action: Some(action.id),
                        },
                    )
                    .await?;
                    subscribers::close_interval(txn, self.name(), identity, h).await?;
                    if announce.is_some() {
                        events.push(NewEvent {
                            identity_address: Some(identity.to_owned()),
                            height: Some(h),
                            ..NewEvent::new(
                                self.name(),
                                EventKind::SubscriberLeft,
                                format!("{} was banned by an admin", current.name),
                            )
                        });
                    }
                }
            }
            ActionKind::Unban => {
                if let Some(current) = current.filter(|c| c.status == SubscriberStatus::Banned) {
                    // Out of the pool either way: nothing to tell until it is back in.
                    subscribers::set_status(
                        txn,
                        &StatusChange {
                            chain: self.name(),
                            identity_address: identity,
                            name: &current.name,
                            status: SubscriberStatus::Left,
                            height: h,
                            reason: Some("unbanned by an admin"),
                            unmet: &[],
                            action: Some(action.id),
                        },
                    )
                    .await?;
                    // Back in at once if it meets the conditions.
                    self.evaluate(txn, identity, h, None, Some(action.id), &mut events)
                        .await?;
                }
            }
            ActionKind::Track => {
                self.evaluate(txn, identity, h, None, Some(action.id), &mut events)
                    .await?;
            }
        }
        if !action.announced {
            out.extend(events);
        }
        actions::mark_applied(txn, action.id).await?;
        Ok(())
    }

    /// Finds identities that list the pool's address (`getidentitieswithaddress`) and tracks
    /// the ones not tracked yet, from the first height the pool has not processed.
    pub async fn discover(&mut self) -> Result<usize, ActorError> {
        let h = self.next_height().await?;
        let at = h - 1;
        let found = match self
            .rpc
            .get_identities_with_address(self.chain.pool_primary_address.as_str(), 0, 0, true)
            .await
        {
            Ok(found) => found,
            Err(RpcError::Rpc { code, message, .. }) => {
                log::error!(
                    "chain {}: getidentitieswithaddress failed ({code}: {message}). Start verusd with -idindex=1 (it reindexes once) so the pool can find its subscribers at start; until then they are found from new blocks and the subscribe mutation",
                    self.name()
                );
                return Ok(0);
            }
            Err(e) => return Err(e.into()),
        };
        let new: Vec<(String, Option<Height>)> = found
            .iter()
            .map(|i| i.identity.identityaddress.clone())
            .filter(|a| !self.tracked.contains_key(a) && a != self.chain.pool_identity.as_str())
            .map(|a| (a, Some(at)))
            .collect();
        let replies = self.rpc.get_identities(&new).await?;
        let mut listing = Vec::new();
        for reply in replies {
            let reply = match reply {
                Ok(r) => r,
                Err(RpcError::NotFound { .. }) => continue, // did not exist yet at that height
                Err(e) => return Err(e.into()),
            };
            if self.lists_pool(&facts_of(&reply)) {
                listing.push(reply);
            }
        }
        let count = listing.len();
        self.track_many(&listing, h).await?;
        log::info!(
            "chain {}: {count} identities listing the pool's address found at height {at}",
            self.name()
        );
        Ok(count)
    }

    /// The check of an identity as of `at`, from a `getidentity` reply.
    pub async fn check(
        &self,
        address: &str,
        reply: &IdentityReply,
        at: Height,
    ) -> Result<IdentityCheck, ActorError> {
        check_identity(
            &self.db,
            &self.rpc,
            &self.chain,
            reply,
            at,
            Some(address)
                .filter(|a| self.tracked.contains_key(*a))
                .is_some(),
        )
        .await
    }

    /// `subscribe`: looks at an identity as of the processed height and, if it lists the
    /// pool's address and the pool did not know it, follows it from the next height (a `track`
    /// action, which no reorganisation undoes).
    pub async fn subscribe(&mut self, identity: &str) -> Result<IdentityCheck, ActorError> {
        let h = self.next_height().await?;
        let at = h - 1;
        let reply = self
            .rpc
            .get_identity(identity, Some(at))
            .await
            .map_err(|e| match e {
                RpcError::NotFound { .. } => {
                    ActorError::NotFound(format!("identity {identity} not found at height {at}"))
                }
                other => ActorError::Rpc(other),
            })?;
        let address = reply.identity.identityaddress.clone();
        if address != self.chain.pool_identity.as_str()
            && self.lists_pool(&facts_of(&reply))
            && !self.tracked.contains_key(&address)
        {
            self.track_many(std::slice::from_ref(&reply), h).await?;
        }
        self.check(&address, &reply, at).await
    }

    /// Bans or unbans a subscriber from the first height the pool has not processed (an
    /// action: applied now, and again if a reorganisation takes that height away), with the
    /// audit entry in the same transaction.
    pub async fn set_banned(
        &mut self,
        identity: &str,
        banned: bool,
        audit_entry: &AuditEntry,
    ) -> Result<Subscriber, ActorError> {
        let h = self.next_height().await?;
        let current = subscribers::get(&self.db, self.name(), identity)
            .await?
            .ok_or_else(|| {
                ActorError::NotFound(format!("{identity} is not a subscriber of {}", self.name()))
            })?;
        let txn = self.begin().await?;
        audit::record(&txn, audit_entry).await?;
        if banned != (current.status == SubscriberStatus::Banned) {
            let kind = if banned {
                ActionKind::Ban
            } else {
                ActionKind::Unban
            };
            let action = actions::record(&txn, self.name(), h, identity, kind).await?;
            let mut out = Vec::new();
            self.apply_action(&txn, &action, &mut out).await?;
            events::append(&txn, &out).await?;
        }
        txn.commit().await?;
        subscribers::get(&self.db, self.name(), identity)
            .await?
            .ok_or_else(|| ActorError::NotFound(identity.to_owned()))
    }

    /// Changes the pool's conditions from the next block (everyone is evaluated again then),
    /// with the audit entry in the same transaction.
    pub async fn update_conditions(
        &mut self,
        conditions: Conditions,
        audit_entry: &AuditEntry,
    ) -> Result<Conditions, ActorError> {
        let h = self.next_height().await?;
        let current = match settings::latest(&self.db, self.name()).await? {
            Some(v) => v.settings,
            None => self.chain.settings(),
        };
        let txn = self.begin().await?;
        audit::record(&txn, audit_entry).await?;
        settings::record(
            &txn,
            self.name(),
            h,
            &PoolSettings {
                conditions: conditions.clone(),
                ..current
            },
            SettingsSource::Admin,
        )
        .await?;
        txn.commit().await?;
        log::info!(
            "chain {}: pool conditions changed from height {}: {conditions:?}",
            self.name(),
            h
        );
        Ok(conditions)
    }
}

impl RegistryCore {
    /// Changes the pool's fee from the next block, with the audit entry in the same transaction.
    pub async fn set_pool_fee(
        &mut self,
        fee: crate::domain::FeeRate,
        audit_entry: &AuditEntry,
    ) -> Result<PoolSettings, ActorError> {
        let h = self.next_height().await?;
        let current = match settings::latest(&self.db, self.name()).await? {
            Some(v) => v.settings,
            None => self.chain.settings(),
        };
        let next = PoolSettings { fee, ..current };
        let txn = self.begin().await?;
        audit::record(&txn, audit_entry).await?;
        settings::record(&txn, self.name(), h, &next, SettingsSource::Admin).await?;
        txn.commit().await?;
        if fee.ppm() == 0 {
            log::warn!(
                "chain {}: the pool fee is 0 from height {}: network fees of payments come out of nothing",
                self.name(),
                h
            );
        }
        log::info!(
            "chain {}: pool fee {} % from height {}",
            self.name(),
            fee,
            h
        );
        Ok(next)
    }

    /// Sets (or with `None` clears) a subscriber's own fee from the next block.
    pub async fn set_subscriber_fee(
        &mut self,
        identity: &str,
        fee: Option<crate::domain::FeeRate>,
        audit_entry: &AuditEntry,
    ) -> Result<Subscriber, ActorError> {
        let h = self.next_height().await?;
        let row = subscribers::get(&self.db, self.name(), identity)
            .await?
            .ok_or_else(|| {
                ActorError::NotFound(format!("{identity} is not a subscriber of {}", self.name()))
            })?;
        let txn = self.begin().await?;
        audit::record(&txn, audit_entry).await?;
        settings::set_subscriber_fee(&txn, self.name(), identity, h, fee).await?;
        txn.commit().await?;
        Ok(row)
    }
}

impl RegistryCore {
    /// Sets a subscriber's own minimum payout, authorised by its signature over
    /// `coinstaker:setMinPayout:<chain id>:<identity>:<amount, 8 decimals>:<height>` with the
    /// height within 10 blocks of the tip. The message names the chain (a signature for
    /// another chain does not verify here), and each height is used once: a signature is
    /// accepted only with a height above the last one accepted, so it cannot be replayed.
    pub async fn set_min_payout(
        &mut self,
        identity: &str,
        amount: Sats,
        height: Height,
        signature: &str,
    ) -> Result<Subscriber, ActorError> {
        let tip = i64::try_from(self.rpc.get_block_count().await?).unwrap_or(i64::MAX);
        if (height - tip).abs() > 10 {
            return Err(ActorError::Invalid(format!(
                "height {height} is more than 10 blocks from the tip {tip}: sign again with a current height"
            )));
        }
        let row = subscribers::get(&self.db, self.name(), identity)
            .await?
            .ok_or_else(|| {
                ActorError::NotFound(format!("{identity} is not a subscriber of {}", self.name()))
            })?;
        let chain_id = chain_store::get_chain(&self.db, self.name())
            .await?
            .and_then(|c| c.chain_id)
            .ok_or_else(|| {
                ActorError::Unavailable(format!(
                    "the pool does not know the chain id of {} yet (its daemon has not answered); try again shortly",
                    self.name()
                ))
            })?;
        let message = format!("coinstaker:setMinPayout:{chain_id}:{identity}:{amount}:{height}");
        if !self
            .rpc
            .verify_message(identity, signature, &message)
            .await?
        {
            return Err(ActorError::Invalid(format!(
                "the signature does not verify: sign exactly \"{message}\" with the identity"
            )));
        }
        if !subscribers::set_min_payout(&self.db, self.name(), identity, amount, height).await? {
            return Err(ActorError::Invalid(format!(
                "a signature with height {height} or a later one was used already: sign again with the current height"
            )));
        }
        log::info!(
            "chain {}: {} set its minimum payout to {amount}",
            self.name(),
            row.name
        );
        subscribers::get(&self.db, self.name(), identity)
            .await?
            .ok_or_else(|| ActorError::NotFound(identity.to_owned()))
    }
}

/// Set a subscriber's minimum payout (signed by the identity).
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<Subscriber, ActorError>")]
pub struct SetMinPayout {
    /// The identity's i-address.
    pub identity: String,
    /// The new minimum.
    pub amount: Sats,
    /// The height in the signed message.
    pub height: Height,
    /// The identity's signature (`signmessage`).
    pub signature: String,
}

impl Handler<SetMinPayout> for SubscriberRegistry {
    type Result = ResponseFuture<Result<Subscriber, ActorError>>;
    fn handle(&mut self, msg: SetMinPayout, _: &mut Self::Context) -> Self::Result {
        let core = Arc::clone(&self.core);
        Box::pin(async move {
            core.lock()
                .await
                .set_min_payout(&msg.identity, msg.amount, msg.height, &msg.signature)
                .await
        })
    }
}

/// Change the pool's fee from the next block (admin).
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<PoolSettings, ActorError>")]
pub struct SetPoolFee {
    /// The new fee.
    pub fee: crate::domain::FeeRate,
    /// The audit entry to write with the change.
    pub audit: AuditEntry,
}

impl Handler<SetPoolFee> for SubscriberRegistry {
    type Result = ResponseFuture<Result<PoolSettings, ActorError>>;
    fn handle(&mut self, msg: SetPoolFee, _: &mut Self::Context) -> Self::Result {
        let core = Arc::clone(&self.core);
        Box::pin(async move { core.lock().await.set_pool_fee(msg.fee, &msg.audit).await })
    }
}

/// Set or clear a subscriber's own fee from the next block (admin).
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<Subscriber, ActorError>")]
pub struct SetSubscriberFee {
    /// The identity's i-address.
    pub identity: String,
    /// The fee; `None`: the pool's again.
    pub fee: Option<crate::domain::FeeRate>,
    /// The audit entry to write with the change.
    pub audit: AuditEntry,
}

impl Handler<SetSubscriberFee> for SubscriberRegistry {
    type Result = ResponseFuture<Result<Subscriber, ActorError>>;
    fn handle(&mut self, msg: SetSubscriberFee, _: &mut Self::Context) -> Self::Result {
        let core = Arc::clone(&self.core);
        Box::pin(async move {
            core.lock()
                .await
                .set_subscriber_fee(&msg.identity, msg.fee, &msg.audit)
                .await
        })
    }
}

/// What changed between two versions of a subscriber's identity that its owner must know.
fn alerts(
    prev: &IdentityFacts,
    new: &IdentityFacts,
    height: Height,
) -> Vec<(IdentityAlertKind, String)> {
    let mut out = Vec::new();
    if prev.flags & FLAG_LOCKED != 0 && new.flags & FLAG_LOCKED == 0 && new.timelock >= height {
        out.push((
            IdentityAlertKind::UnlockRequested,
            format!(
                "an unlock was requested; the identity unlocks at height {}",
                new.timelock
            ),
        ));
    }
    if prev.primary_addresses != new.primary_addresses {
        out.push((
            IdentityAlertKind::PrimaryAddressesChanged,
            "the primary addresses changed".to_owned(),
        ));
    }
    if prev.revocation_authority != new.revocation_authority
        || prev.recovery_authority != new.recovery_authority
    {
        out.push((
            IdentityAlertKind::AuthoritiesChanged,
            "the revocation or recovery authority changed".to_owned(),
        ));
    }
    if !prev.revoked() && new.revoked() {
        out.push((
            IdentityAlertKind::Revoked,
            "the identity was revoked".to_owned(),
        ));
    }
    out
}

/// Checks an identity (from its `getidentity` reply as of `at`) against the conditions in
/// force at `at`, changing nothing. `tracked`: its UTXOs are in the database; otherwise they
/// are counted from the daemon's address index.
pub async fn check_identity(
    db: &DatabaseConnection,
    rpc: &RpcClient,
    chain: &ChainConfig,
    reply: &IdentityReply,
    at: Height,
    tracked: bool,
) -> Result<IdentityCheck, ActorError> {
    let facts = facts_of(reply);
    let settings = settings::at(db, &chain.name, at)
        .await?
        .map(|v| v.settings)
        .unwrap_or_else(|| chain.settings());
    let c = &settings.conditions;
    let counted = if c.max_utxos == 0 {
        0
    } else if tracked {
        utxos::counted(db, &chain.name, &facts.address, at - 1, c.utxo_count_min).await?
    } else {
        let snapshot = rpc
            .get_address_utxos(std::slice::from_ref(&facts.address))
            .await?;
        snapshot
            .utxos
            .iter()
            .filter(|u| u.height < at && u.satoshis >= c.utxo_count_min.0)
            .count() as u64
    };
    let signable: HashSet<String> = identities::latest_all(db, &chain.name)
        .await?
        .into_iter()
        .filter(|v| {
            v.facts
                .primary_addresses
                .iter()
                .any(|a| a == chain.pool_primary_address.as_str())
        })
        .map(|v| v.facts.address)
        .collect();
    let pool_identity = chain.pool_identity.as_str();
    let is_signable = |a: &str| a == pool_identity || signable.contains(a);
    let ctx = conditions::Context {
        pool_address: chain.pool_primary_address.as_str(),
        pool_identity,
        conditions: c,
        pool_signable: &is_signable,
        counted_utxos: counted,
        height: at,
    };
    let unmet: Vec<String> = conditions::evaluate(&facts, &ctx)
        .iter()
        .map(ToString::to_string)
        .collect();
    let status = subscribers::get(db, &chain.name, &facts.address)
        .await?
        .map(|s| s.status);
    Ok(IdentityCheck {
        identity_address: facts.address,
        name: reply.fullyqualifiedname.clone(),
        eligible: unmet.is_empty(),
        status,
        unmet,
    })
}

/// The actor around [`RegistryCore`]: messages are handled one at a time, in order.
pub struct SubscriberRegistry {
    core: Arc<tokio::sync::Mutex<RegistryCore>>,
}

impl SubscriberRegistry {
    /// The actor for a loaded core.
    pub fn new(core: RegistryCore) -> SubscriberRegistry {
        SubscriberRegistry {
            core: Arc::new(tokio::sync::Mutex::new(core)),
        }
    }
}

impl Actor for SubscriberRegistry {
    type Context = actix::Context<Self>;
}

impl Handler<Shutdown> for SubscriberRegistry {
    type Result = ();
    fn handle(&mut self, _: Shutdown, ctx: &mut Self::Context) {
        ctx.stop();
    }
}

impl Handler<BlockConnected> for SubscriberRegistry {
    type Result = ResponseFuture<Result<(), ActorError>>;
    fn handle(&mut self, msg: BlockConnected, _: &mut Self::Context) -> Self::Result {
        let core = Arc::clone(&self.core);
        Box::pin(async move { core.lock().await.connect(&msg.block).await })
    }
}

impl Handler<BlockDisconnected> for SubscriberRegistry {
    type Result = ResponseFuture<Result<(), ActorError>>;
    fn handle(&mut self, msg: BlockDisconnected, _: &mut Self::Context) -> Self::Result {
        let core = Arc::clone(&self.core);
        Box::pin(async move {
            core.lock()
                .await
                .disconnect(msg.height, &msg.hash, &msg.prev_hash)
                .await
        })
    }
}

/// Find identities listing the pool's address (at start).
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<usize, ActorError>")]
pub struct Discover;

impl Handler<Discover> for SubscriberRegistry {
    type Result = ResponseFuture<Result<usize, ActorError>>;
    fn handle(&mut self, _: Discover, _: &mut Self::Context) -> Self::Result {
        let core = Arc::clone(&self.core);
        Box::pin(async move { core.lock().await.discover().await })
    }
}

/// Look at an identity now and track it if it lists the pool's address.
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<IdentityCheck, ActorError>")]
pub struct Subscribe {
    /// Name or i-address.
    pub identity: String,
}

impl Handler<Subscribe> for SubscriberRegistry {
    type Result = ResponseFuture<Result<IdentityCheck, ActorError>>;
    fn handle(&mut self, msg: Subscribe, _: &mut Self::Context) -> Self::Result {
        let core = Arc::clone(&self.core);
        Box::pin(async move { core.lock().await.subscribe(&msg.identity).await })
    }
}

/// Ban or unban a subscriber (admin).
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<Subscriber, ActorError>")]
pub struct SetBanned {
    /// The identity's i-address.
    pub identity: String,
    /// Ban or unban.
    pub banned: bool,
    /// The audit entry to write with the change.
    pub audit: AuditEntry,
}

impl Handler<SetBanned> for SubscriberRegistry {
    type Result = ResponseFuture<Result<Subscriber, ActorError>>;
    fn handle(&mut self, msg: SetBanned, _: &mut Self::Context) -> Self::Result {
        let core = Arc::clone(&self.core);
        Box::pin(async move {
            core.lock()
                .await
                .set_banned(&msg.identity, msg.banned, &msg.audit)
                .await
        })
    }
}

/// Change the pool's conditions from the next block (admin).
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<Conditions, ActorError>")]
pub struct UpdateConditions {
    /// The new conditions.
    pub conditions: Conditions,
    /// The audit entry to write with the change.
    pub audit: AuditEntry,
}

impl Handler<UpdateConditions> for SubscriberRegistry {
    type Result = ResponseFuture<Result<Conditions, ActorError>>;
    fn handle(&mut self, msg: UpdateConditions, _: &mut Self::Context) -> Self::Result {
        let core = Arc::clone(&self.core);
        Box::pin(async move {
            core.lock()
                .await
                .update_conditions(msg.conditions, &msg.audit)
                .await
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn version(address: &str, height: Height) -> IdentityVersion {
        IdentityVersion {
            height,
            txid: format!("tx{height}"),
            name: address.to_owned(),
            facts: IdentityFacts {
                address: address.to_owned(),
                flags: 0,
                timelock: 0,
                primary_addresses: Vec::new(),
                minimum_signatures: 1,
                revocation_authority: String::new(),
                recovery_authority: String::new(),
                revoked_status: false,
            },
        }
    }

    #[test]
    fn undo_puts_the_tracked_map_back_as_it_was() {
        let mut map: HashMap<String, IdentityVersion> = HashMap::new();
        map.insert("a".into(), version("a", 1));
        map.insert("b".into(), version("b", 2));
        let before = map.clone();
        let mut undo = Undo::default();
        undo.set(&mut map, "a", Some(version("a", 10))); // changed
        undo.set(&mut map, "a", None); // then removed in the same block
        undo.set(&mut map, "b", None); // removed
        undo.set(&mut map, "c", Some(version("c", 11))); // added
        undo.set(&mut map, "c", Some(version("c", 12))); // and changed again
        assert_eq!(map.len(), 1);
        assert_eq!(map["c"].height, 12);
        undo.rollback(&mut map);
        assert_eq!(map, before);
    }
}
