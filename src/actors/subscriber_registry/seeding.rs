//! Following identities the pool did not know: at start (`getidentitieswithaddress`), on a
//! `subscribe` request, and when a block shows one adding the pool's address — their outputs
//! seeded as of the height before, in chunks of a few requests each.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use actix::prelude::*;

use super::checks::IdentityCheck;
use super::{RegistryCore, SEED_CHUNK, SubscriberRegistry, Undo};
use crate::actors::ActorError;
use crate::daemon::rpc::RpcError;
use crate::daemon::types::{IdentityReply, Tx};
use crate::domain::{ActionKind, Height, Sats};
use crate::store::actions;
use crate::store::events;
use crate::store::identities::{self, IdentityVersion};
use crate::store::utxos::{self, Utxo};

/// What seeding asks the daemon, apart from the registry's state: it runs beside the
/// registry's writes (the next chunk is fetched while one is written).
pub(super) struct Seeder {
    rpc: Arc<crate::daemon::rpc::RpcClient>,
    pool_identity: String,
}

impl Seeder {
    /// The UTXOs of each identity as of `as_of` (inclusive), from the tip snapshot corrected
    /// with the address index: outputs mined later removed, outputs held then and spent later
    /// added. Identities go [`SEED_CHUNK`] at a time into one `getaddressutxos` and, when the
    /// daemon is past `as_of`, one `getaddressdeltas` and one batch of `getrawtransaction`
    /// for the outputs spent since; so seeding thousands of identities takes a few requests
    /// per chunk instead of several per identity.
    ///
    /// Which outputs the pool identity paid (they do not count against `max_utxos`) is read
    /// once from the pool identity's own spends in the address index (one `getaddressdeltas`
    /// up to `as_of`): a transaction spends from the pool exactly when it appears there with
    /// a negative amount. That covers payments this database never saw (an earlier
    /// installation, another pool back-end on the same identity) without asking the daemon
    /// for every funding transaction.
    /// `from_pool` is [`Seeder::pool_spends`] as of `as_of`.
    pub(super) async fn utxos(
        &self,
        identities: &[String],
        as_of: Height,
        from_pool: &HashSet<String>,
    ) -> Result<HashMap<String, Vec<Utxo>>, RpcError> {
        let mut out: HashMap<String, Vec<Utxo>> = HashMap::new();
        if identities.is_empty() {
            return Ok(out);
        }
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

    /// The transactions at or below `as_of` that spend an output of the pool identity: its
    /// negative entries in the address index.
    pub(super) async fn pool_spends(&self, as_of: Height) -> Result<HashSet<String>, RpcError> {
        if as_of < 1 {
            return Ok(HashSet::new());
        }
        let pool = vec![self.pool_identity.clone()];
        let deltas = self.rpc.get_address_deltas(&pool, 1, as_of).await?;
        Ok(deltas
            .into_iter()
            .filter(|d| d.satoshis < 0)
            .map(|d| d.txid)
            .collect())
    }
}

impl RegistryCore {
    /// The daemon side of seeding.
    pub(super) fn seeder(&self) -> Seeder {
        Seeder {
            rpc: Arc::clone(&self.rpc),
            pool_identity: self.chain.pool_identity.as_str().to_owned(),
        }
    }

    /// [`Seeder::utxos`] of `identities` as of `as_of`, with the pool's spends asked first.
    pub(super) async fn seed_utxos_many(
        &self,
        identities: &[String],
        as_of: Height,
    ) -> Result<HashMap<String, Vec<Utxo>>, RpcError> {
        if identities.is_empty() {
            return Ok(HashMap::new());
        }
        let seeder = self.seeder();
        let from_pool = seeder.pool_spends(as_of).await?;
        seeder.utxos(identities, as_of, &from_pool).await
    }

    /// Starts following identities the pool did not know, at `h` (the first height it has not
    /// processed): their versions, their outputs as of `h − 1`, and a `track` action at `h`
    /// that evaluates them (applied now, and again whenever `h` is connected again).
    /// [`SEED_CHUNK`] at a time: one round of seeding requests and one transaction per chunk.
    pub(super) async fn track_many(
        &mut self,
        replies: &[IdentityReply],
        h: Height,
    ) -> Result<(), ActorError> {
        let addresses = |chunk: &[IdentityReply]| -> Vec<String> {
            chunk
                .iter()
                .map(|r| r.identity.identityaddress.clone())
                .collect()
        };
        let chunks: Vec<&[IdentityReply]> = replies.chunks(SEED_CHUNK).collect();
        let Some(first) = chunks.first() else {
            return Ok(());
        };
        // The pool's spends once for all chunks; each chunk's outputs are fetched while the
        // chunk before is written.
        let seeder = self.seeder();
        let from_pool = seeder.pool_spends(h - 1).await?;
        let mut seeded = seeder.utxos(&addresses(first), h - 1, &from_pool).await?;
        for (i, chunk) in chunks.iter().enumerate() {
            let following = chunks.get(i + 1).map(|c| addresses(c));
            let mut undo = Undo::default();
            let (result, fetched) = tokio::join!(
                self.track_chunk(chunk, std::mem::take(&mut seeded), h, &mut undo),
                async {
                    match &following {
                        Some(a) => seeder.utxos(a, h - 1, &from_pool).await,
                        None => Ok(HashMap::new()),
                    }
                }
            );
            if result.is_err() {
                undo.rollback(&mut self.tracked);
            }
            result?;
            seeded = fetched?;
        }
        // Many outputs at once: PostgreSQL plans the next blocks' statements from statistics.
        if chunks.len() > 1 || first.len() >= 100 {
            crate::store::refresh_statistics(&self.db, crate::store::KEYED_TABLES).await;
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
        let txn = self.fence.begin(&self.db).await?;
        let mut out = Vec::new();
        let mut versions = Vec::with_capacity(chunk.len());
        let mut outputs = Vec::new();
        for reply in chunk {
            let version = IdentityVersion {
                height: reply.blockheight,
                txid: reply.txid.clone(),
                name: reply.identity.name.clone(),
                facts: reply.facts(),
            };
            let address = version.facts.address.clone();
            undo.set(&mut self.tracked, &address, Some(version.clone()));
            outputs.extend(seeded.remove(&address).unwrap_or_default());
            versions.push(version);
        }
        // A name asked twice in one chunk is one identity: its version once.
        versions.sort_by(|a, b| a.facts.address.cmp(&b.facts.address));
        versions.dedup_by(|a, b| a.facts.address == b.facts.address);
        identities::record_many(&txn, self.name(), &versions).await?;
        // Merged with what is stored (see `connect_write`).
        utxos::insert(&txn, self.name(), &outputs).await?;
        // A name asked twice in one chunk is one identity: one action.
        let mut seen = HashSet::new();
        let addresses: Vec<&str> = chunk
            .iter()
            .map(|r| r.identity.identityaddress.as_str())
            .filter(|a| seen.insert(*a))
            .collect();
        let tracking =
            actions::record_many(&txn, self.name(), h, &addresses, ActionKind::Track).await?;
        // Evaluated once all of the chunk is followed: each may be another's authority.
        let (settings, _) = self.settings_at(&txn, h).await?;
        self.evaluate_tracked(
            &txn,
            &tracking,
            super::blocks::At {
                height: h,
                settings: &settings,
            },
            &mut out,
        )
        .await?;
        let ids: Vec<i64> = tracking.iter().map(|a| a.id).collect();
        actions::mark_applied_many(&txn, &ids).await?;
        events::append(&txn, &out).await?;
        txn.commit().await?;
        if !out.is_empty() {
            self.events_written();
        }
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
            if self.lists_pool(&reply.facts()) {
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
            && self.lists_pool(&reply.facts())
            && !self.tracked.contains_key(&address)
        {
            self.track_many(std::slice::from_ref(&reply), h).await?;
        }
        self.check(&address, &reply, at).await
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
