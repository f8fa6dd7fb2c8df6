//! SubscriberRegistry — who is in the pool.
//!
//! **State it owns:** the tables `identity_version`, `subscriber`, `subscriber_status`,
//! `eligibility_interval`, `subscriber_utxo`, `registry_action`, the admins' `pool_settings`
//! and `subscriber_fee` versions, and in memory the latest version of every identity that
//! lists the pool's R-address ("tracked").
//!
//! **Messages:** `BlockConnected` / `BlockDisconnected` from the ChainWatcher; `Discover` at
//! start; `Subscribe`, `SetBanned`, `UpdateConditions`, `SetPoolFee`, `SetSubscriberFee` and
//! `SetMinPayout` from the API.
//!
//! **Events it writes** (in the transaction of the change): `SUBSCRIBER_JOINED`,
//! `SUBSCRIBER_LEFT`, `IDENTITY_ALERT`.
//!
//! **Failures:** anything that fails rolls the whole transaction back and is returned to the
//! ChainWatcher, which retries the blocks; daemon calls (seeding a new identity's outputs) are
//! made outside any transaction (the blocks applied before commit first). Blocks' work and
//! the cursor commit together — one block at the tip, several while catching up — so a crash
//! at any point leaves either all or nothing of each block.
//!
//! **Rooms:** `blocks` (applying and undoing blocks, the evaluation of an identity), `seeding`
//! (following identities the pool did not know), `checks` (the conditions, read-only checks
//! for the API, alerts), `settings` (the admins' and subscribers' decisions).

mod blocks;
mod checks;
mod seeding;
mod settings;
mod tracked;

use std::sync::Arc;

use actix::prelude::*;
use sea_orm::DatabaseConnection;

use super::events::{BlockConnected, BlockDisconnected, Shutdown};
use super::{ActorError, ChainContext};
use crate::config::ChainConfig;
use crate::daemon::rpc::RpcClient;
use crate::daemon::types::Vin;
use crate::domain::conditions::IdentityFacts;
use crate::domain::{Height, PoolSettings, SubscriberStatus};
use crate::store::chain as chain_store;
use crate::store::identities::{self, IdentityVersion};
use crate::store::settings as store_settings;
use tracked::Tracked;

pub use checks::{IdentityCheck, check_identity, unmet_conditions};
pub use seeding::{Discover, Subscribe};
pub use settings::{SetBanned, SetMinPayout, SetPoolFee, SetSubscriberFee, UpdateConditions};

/// The registry's name in `actor_cursor`.
pub const ACTOR: &str = "registry";
/// Identities seeded per round of `getaddressutxos` / `getaddressdeltas` requests.
pub const SEED_CHUNK: usize = 1000;

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
    fn set(&mut self, map: &mut Tracked, key: &str, value: Option<IdentityVersion>) {
        let old = match value {
            Some(v) => map.insert(key.to_owned(), v),
            None => map.remove(key),
        };
        self.0.push((key.to_owned(), old));
    }

    /// Puts the map back as it was before the first `set`.
    fn rollback(self, map: &mut Tracked) {
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
    /// For block transactions (`store::connect_blocks`).
    blocks_db: DatabaseConnection,
    rpc: Arc<RpcClient>,
    fence: crate::store::lease::Fence,
    events: Recipient<crate::actors::events::EventsWritten>,
    tracked: Tracked,
    /// Whether a block applied since the registry started read every subscriber cooling down
    /// (see `connect_write`); cleared when that block's transaction fails.
    cooling_swept: std::sync::atomic::AtomicBool,
    /// Subscribers' status changes and identity versions written since PostgreSQL's
    /// statistics were last refreshed by the registry (see `connect`).
    unanalyzed: std::sync::atomic::AtomicUsize,
    /// Whether such a refresh is running.
    analysing: Arc<std::sync::atomic::AtomicBool>,
    /// The registry's cursor, as it committed it last.
    known: crate::store::chain::KnownCursor,
}

impl RegistryCore {
    /// A registry for `chain`; call [`RegistryCore::load`] before use.
    pub fn new(cx: &ChainContext) -> RegistryCore {
        RegistryCore {
            chain: Arc::clone(&cx.chain),
            db: cx.db.clone(),
            blocks_db: cx.blocks_db.clone(),
            rpc: Arc::clone(&cx.rpc),
            fence: cx.fence.clone(),
            events: cx.events.clone(),
            tracked: Tracked::default(),
            cooling_swept: std::sync::atomic::AtomicBool::new(false),
            unanalyzed: std::sync::atomic::AtomicUsize::new(0),
            analysing: Arc::default(),
            known: crate::store::chain::KnownCursor::default(),
        }
    }

    /// Tells the Notifier that a commit wrote events.
    pub(super) fn events_written(&self) {
        self.events.do_send(crate::actors::events::EventsWritten);
    }

    pub(super) fn name(&self) -> &str {
        &self.chain.name
    }

    pub(super) fn lists_pool(&self, facts: &IdentityFacts) -> bool {
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
            .collect();
        Ok(())
    }

    pub(super) async fn settings_at(
        &self,
        db: &impl sea_orm::ConnectionTrait,
        height: Height,
    ) -> Result<(PoolSettings, Height), ActorError> {
        Ok(match store_settings::at(db, self.name(), height).await? {
            Some(v) => (v.settings, v.from_height),
            None => (self.chain.settings(), 0),
        })
    }

    /// The first height the pool has not processed: where admin and subscriber actions take
    /// effect (architecture §6). Read from the registry's own cursor, which moves first (the
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
        Box::pin(async move { core.lock().await.connect(&msg.blocks).await })
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    pub(super) fn version(address: &str, height: Height) -> IdentityVersion {
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
        let mut map: Tracked = [version("a", 1), version("b", 2)].into_iter().collect();
        let before = map.clone();
        let mut undo = Undo::default();
        undo.set(&mut map, "a", Some(version("a", 10))); // changed
        undo.set(&mut map, "a", None); // then removed in the same block
        undo.set(&mut map, "b", None); // removed
        undo.set(&mut map, "c", Some(version("c", 11))); // added
        undo.set(&mut map, "c", Some(version("c", 12))); // and changed again
        assert_eq!(map.len(), 1);
        assert_eq!(map.get("c").unwrap().height, 12);
        undo.rollback(&mut map);
        assert_eq!(map, before);
    }
}
