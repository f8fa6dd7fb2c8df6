//! Batch loading for the fields of list items (async-graphql's `DataLoader`): a page of 500
//! subscribers asking each for its balance, credits and payments costs a few statements, not
//! a few per subscriber. The loaders are shared by every request and cache nothing: requests
//! that run at the same moment share a batch, and every answer is as fresh as a single read.

use std::collections::HashMap;
use std::hash::Hash;

use async_graphql::dataloader::{DataLoader, Loader};
use async_graphql::{Context, Error, Result};
use sea_orm::DatabaseConnection;

use crate::domain::split::{OutputSpan, work_over};
use crate::domain::{FeeRate, Sats, Work};
use crate::graphql::error::store_error;
use crate::store::{self, ledger::Balance, payments::Payment, stakes::Credit};

/// Keys that name one identity of one chain.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Of {
    /// Chain name.
    pub chain: String,
    /// The identity's i-address.
    pub identity: String,
}

/// An identity's eligible balance at a height.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EligibleAt {
    /// Whose.
    pub of: Of,
    /// The processed height.
    pub height: i64,
}

/// One page of an identity's credits or payments, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PageOf {
    /// Whose.
    pub of: Of,
    /// Ids below this one (the previous page's cursor).
    pub before: Option<i64>,
    /// Page size (with the one that tells whether there is a next page).
    pub limit: u64,
}

/// The loaders, in the schema's data.
pub struct Loaders {
    /// A chain's processed height.
    pub tips: DataLoader<Tips>,
    /// Balances.
    pub balances: DataLoader<Balances>,
    /// Eligible balances.
    pub eligible: DataLoader<Eligible>,
    /// An identity's credits, with their stakes' block hashes.
    pub credits: DataLoader<IdentityCredits>,
    /// An identity's payments.
    pub payments: DataLoader<IdentityPayments>,
    /// A stake's credits.
    pub stake_credits: DataLoader<StakeCredits>,
    /// Work over the open round.
    pub round_work: DataLoader<RoundWork>,
    /// A chain's settings in force.
    pub settings: DataLoader<Settings>,
    /// The fees an admin set for single subscribers, in force at a height.
    pub subscriber_fees: DataLoader<SubscriberFees>,
}

impl Loaders {
    /// Loaders reading through `db` (the API's connection pool).
    pub fn new(db: &DatabaseConnection) -> Loaders {
        fn loader<T>(t: T) -> DataLoader<T> {
            DataLoader::new(t, tokio::spawn).max_batch_size(store::IN_SLICE)
        }
        Loaders {
            tips: loader(Tips(db.clone())),
            balances: loader(Balances(db.clone())),
            eligible: loader(Eligible(db.clone())),
            credits: loader(IdentityCredits(db.clone())),
            payments: loader(IdentityPayments(db.clone())),
            stake_credits: loader(StakeCredits(db.clone())),
            round_work: loader(RoundWork(db.clone())),
            settings: loader(Settings(db.clone())),
            subscriber_fees: loader(SubscriberFees(db.clone())),
        }
    }

    /// The loaders of the request's schema.
    pub fn of<'a>(ctx: &Context<'a>) -> Result<&'a Loaders> {
        ctx.data::<Loaders>()
    }
}

/// `keys` grouped by what one statement can answer together.
fn grouped<K: Clone, G: Hash + Eq>(keys: &[K], group: impl Fn(&K) -> G) -> HashMap<G, Vec<K>> {
    let mut out: HashMap<G, Vec<K>> = HashMap::new();
    for k in keys {
        out.entry(group(k)).or_default().push(k.clone());
    }
    out
}

fn identities<'a>(keys: impl IntoIterator<Item = &'a Of>) -> Vec<String> {
    let mut v: Vec<String> = keys.into_iter().map(|k| k.identity.clone()).collect();
    v.sort_unstable();
    v.dedup();
    v
}

/// A chain's processed height (0 before its first block).
pub struct Tips(DatabaseConnection);

impl Loader<String> for Tips {
    type Value = i64;
    type Error = Error;

    async fn load(&self, chains: &[String]) -> Result<HashMap<String, i64>> {
        let mut out = HashMap::new();
        for chain in chains {
            let tip = store::chain::tip(&self.0, chain)
                .await
                .map_err(store_error)?
                .map_or(0, |b| b.height);
            out.insert(chain.clone(), tip);
        }
        Ok(out)
    }
}

/// Balances (zero for an identity never credited).
pub struct Balances(DatabaseConnection);

impl Loader<Of> for Balances {
    type Value = Balance;
    type Error = Error;

    async fn load(&self, keys: &[Of]) -> Result<HashMap<Of, Balance>> {
        let mut out = HashMap::new();
        for (chain, keys) in grouped(keys, |k| k.chain.clone()) {
            let found = store::ledger::balances(&self.0, &chain, &identities(&keys))
                .await
                .map_err(store_error)?;
            for k in keys {
                let b = found.get(&k.identity).copied().unwrap_or_default();
                out.insert(k, b);
            }
        }
        Ok(out)
    }
}

/// Eligible balances at a height.
pub struct Eligible(DatabaseConnection);

impl Loader<EligibleAt> for Eligible {
    type Value = Sats;
    type Error = Error;

    async fn load(&self, keys: &[EligibleAt]) -> Result<HashMap<EligibleAt, Sats>> {
        let mut out = HashMap::new();
        for ((chain, height), keys) in grouped(keys, |k| (k.of.chain.clone(), k.height)) {
            let found = store::utxos::eligible_balances(
                &self.0,
                &chain,
                &identities(keys.iter().map(|k| &k.of)),
                height,
            )
            .await
            .map_err(store_error)?;
            for k in keys {
                let b = found.get(&k.of.identity).copied().unwrap_or(Sats::ZERO);
                out.insert(k, b);
            }
        }
        Ok(out)
    }
}

/// Pages of identities' credits, each with its stake's block hash.
pub struct IdentityCredits(DatabaseConnection);

impl Loader<PageOf> for IdentityCredits {
    type Value = Vec<(Credit, String)>;
    type Error = Error;

    async fn load(&self, keys: &[PageOf]) -> Result<HashMap<PageOf, Self::Value>> {
        let mut out = HashMap::new();
        let groups = grouped(keys, |k| (k.of.chain.clone(), k.before, k.limit));
        for ((chain, before, limit), keys) in groups {
            let mut found = store::stakes::credits_of_identities(
                &self.0,
                &chain,
                &identities(keys.iter().map(|k| &k.of)),
                before,
                limit,
            )
            .await
            .map_err(store_error)?;
            let mut ids: Vec<i64> = found.values().flatten().map(|c| c.stake_id).collect();
            ids.sort_unstable();
            ids.dedup();
            let hashes = store::stakes::block_hashes(&self.0, &ids)
                .await
                .map_err(store_error)?;
            for k in keys {
                let credits = found.remove(&k.of.identity).unwrap_or_default();
                let with_hashes = credits
                    .into_iter()
                    .map(|c| {
                        let hash = hashes.get(&c.stake_id).cloned().unwrap_or_default();
                        (c, hash)
                    })
                    .collect();
                out.insert(k, with_hashes);
            }
        }
        Ok(out)
    }
}

/// Pages of identities' payments.
pub struct IdentityPayments(DatabaseConnection);

impl Loader<PageOf> for IdentityPayments {
    type Value = Vec<Payment>;
    type Error = Error;

    async fn load(&self, keys: &[PageOf]) -> Result<HashMap<PageOf, Vec<Payment>>> {
        let mut out = HashMap::new();
        let groups = grouped(keys, |k| (k.of.chain.clone(), k.before, k.limit));
        for ((chain, before, limit), keys) in groups {
            let mut found = store::payments::of_identities(
                &self.0,
                &chain,
                &identities(keys.iter().map(|k| &k.of)),
                before,
                limit,
            )
            .await
            .map_err(store_error)?;
            for k in keys {
                let payments = found.remove(&k.of.identity).unwrap_or_default();
                out.insert(k, payments);
            }
        }
        Ok(out)
    }
}

/// Pages of stakes' credits.
pub struct StakeCredits(DatabaseConnection);

impl Loader<store::stakes::StakePage> for StakeCredits {
    type Value = Vec<Credit>;
    type Error = Error;

    async fn load(
        &self,
        keys: &[store::stakes::StakePage],
    ) -> Result<HashMap<store::stakes::StakePage, Vec<Credit>>> {
        let mut out = HashMap::new();
        for (limit, pages) in grouped(keys, |k| k.limit) {
            out.extend(
                store::stakes::credits_of_stake_pages(&self.0, &pages, limit)
                    .await
                    .map_err(store_error)?,
            );
        }
        Ok(out)
    }
}

/// Work over the open round (after the last pool stake that is not stale, up to `height`).
pub struct RoundWork(DatabaseConnection);

impl Loader<EligibleAt> for RoundWork {
    type Value = Work;
    type Error = Error;

    async fn load(&self, keys: &[EligibleAt]) -> Result<HashMap<EligibleAt, Work>> {
        let mut out = HashMap::new();
        for ((chain, at), keys) in grouped(keys, |k| (k.of.chain.clone(), k.height)) {
            let db = &self.0;
            let first = match store::stakes::last_round_end(db, &chain, at + 1)
                .await
                .map_err(store_error)?
            {
                Some(end) => end + 1,
                None => store::chain::get_chain(db, &chain)
                    .await
                    .map_err(store_error)?
                    .and_then(|c| c.start_height)
                    .unwrap_or(0),
            };
            let who = identities(keys.iter().map(|k| &k.of));
            let intervals = store::subscribers::intervals_of(db, &chain, &who)
                .await
                .map_err(store_error)?;
            let history = store::utxos::history_of(db, &chain, &who)
                .await
                .map_err(store_error)?;
            for k in keys {
                let outputs: Vec<OutputSpan> = history
                    .get(&k.of.identity)
                    .into_iter()
                    .flatten()
                    .map(|u| OutputSpan {
                        amount: u.amount,
                        mined: u.height,
                        spent: u.spent_height,
                    })
                    .collect();
                let spans = intervals.get(&k.of.identity).map_or(&[][..], Vec::as_slice);
                out.insert(k, work_over(&outputs, spans, first, at));
            }
        }
        Ok(out)
    }
}

/// A chain's pool settings in force (none before an admin or the start stored a version).
pub struct Settings(DatabaseConnection);

impl Loader<String> for Settings {
    type Value = Option<store::settings::SettingsVersion>;
    type Error = Error;

    async fn load(&self, chains: &[String]) -> Result<HashMap<String, Self::Value>> {
        let mut out = HashMap::new();
        for chain in chains {
            let version = store::settings::latest(&self.0, chain)
                .await
                .map_err(store_error)?;
            out.insert(chain.clone(), version);
        }
        Ok(out)
    }
}

/// Every subscriber's own fee in force at a height, by chain (a short list: only those an
/// admin gave one).
pub struct SubscriberFees(DatabaseConnection);

impl Loader<(String, i64)> for SubscriberFees {
    type Value = std::sync::Arc<HashMap<String, FeeRate>>;
    type Error = Error;

    async fn load(&self, keys: &[(String, i64)]) -> Result<HashMap<(String, i64), Self::Value>> {
        let mut out = HashMap::new();
        for (chain, at) in keys {
            let fees = store::settings::subscriber_fees_at(&self.0, chain, *at)
                .await
                .map_err(store_error)?;
            out.insert((chain.clone(), *at), std::sync::Arc::new(fees));
        }
        Ok(out)
    }
}

/// What a loader found for `key`; every loader answers every key it is asked.
pub async fn one<K, T>(loader: &DataLoader<T>, key: K) -> Result<T::Value>
where
    K: Send + Sync + Hash + Eq + Clone + 'static,
    T: Loader<K, Error = Error>,
{
    loader
        .load_one(key)
        .await?
        .ok_or_else(|| Error::new("a batch load lost a key"))
}
