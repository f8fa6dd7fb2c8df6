//! Pool settings versioned by height (fee, default minimum payout, conditions), per-subscriber
//! fee overrides, and the payout switch.
//!
//! A version applies from its `from_height` on, so a stake is always split with the fee in
//! force at its height, and a change made by an admin applies from the next block.

use std::collections::HashMap;

use entity::{payout_state, pool_settings, subscriber_fee};
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
};

use super::{StoreError, StoreResult, now};
use crate::domain::{Conditions, FeeRate, Height, PoolSettings, Sats};

/// Who made a settings version.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SettingsSource {
    /// Taken from the configuration file at start-up.
    Config,
    /// Changed by an admin mutation.
    Admin,
}

impl SettingsSource {
    fn as_str(self) -> &'static str {
        match self {
            SettingsSource::Config => "config",
            SettingsSource::Admin => "admin",
        }
    }
}

/// A stored settings version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingsVersion {
    /// First height it applies to.
    pub from_height: Height,
    /// The settings.
    pub settings: PoolSettings,
    /// Who made it.
    pub source: SettingsSource,
}

fn from_row(m: pool_settings::Model) -> StoreResult<SettingsVersion> {
    let corrupt = |what: &str| StoreError::Corrupt(format!("pool_settings {} {what}", m.id));
    let fee = u32::try_from(m.fee_ppm)
        .ok()
        .and_then(FeeRate::from_ppm)
        .ok_or_else(|| corrupt("fee_ppm"))?;
    let source = match m.source.as_str() {
        "config" => SettingsSource::Config,
        "admin" => SettingsSource::Admin,
        _ => return Err(corrupt("source")),
    };
    let u32_of = |v: i64, what: &str| u32::try_from(v).map_err(|_| corrupt(what));
    Ok(SettingsVersion {
        from_height: m.from_height,
        source,
        settings: PoolSettings {
            fee,
            min_payout: Sats(m.min_payout),
            conditions: Conditions {
                min_unlock_delay: u32_of(m.min_unlock_delay, "min_unlock_delay")?,
                require_separate_revoke_recover: m.require_separate_revoke_recover,
                max_primary_addresses: u32_of(
                    i64::from(m.max_primary_addresses),
                    "max_primary_addresses",
                )?,
                max_utxos: u32_of(i64::from(m.max_utxos), "max_utxos")?,
                utxo_count_min: Sats(m.utxo_count_min),
            },
        },
    })
}

/// The settings in force at `height`.
pub async fn at(
    db: &impl ConnectionTrait,
    chain: &str,
    height: Height,
) -> StoreResult<Option<SettingsVersion>> {
    pool_settings::Entity::find()
        .filter(pool_settings::Column::Chain.eq(chain))
        .filter(pool_settings::Column::FromHeight.lte(height))
        .order_by_desc(pool_settings::Column::FromHeight)
        .one(db)
        .await?
        .map(from_row)
        .transpose()
}

/// The newest version, whatever height it starts at.
pub async fn latest(
    db: &impl ConnectionTrait,
    chain: &str,
) -> StoreResult<Option<SettingsVersion>> {
    pool_settings::Entity::find()
        .filter(pool_settings::Column::Chain.eq(chain))
        .order_by_desc(pool_settings::Column::FromHeight)
        .one(db)
        .await?
        .map(from_row)
        .transpose()
}

/// Stores `settings` from `from_height` on, replacing a version that starts at the same height.
pub async fn record(
    db: &impl ConnectionTrait,
    chain: &str,
    from_height: Height,
    settings: &PoolSettings,
    source: SettingsSource,
) -> StoreResult<()> {
    let c = &settings.conditions;
    let row = pool_settings::ActiveModel {
        id: Default::default(),
        chain: Set(chain.to_owned()),
        from_height: Set(from_height),
        fee_ppm: Set(i64::from(settings.fee.ppm())),
        min_payout: Set(settings.min_payout.0),
        min_unlock_delay: Set(i64::from(c.min_unlock_delay)),
        require_separate_revoke_recover: Set(c.require_separate_revoke_recover),
        max_primary_addresses: Set(i32::try_from(c.max_primary_addresses).unwrap_or(i32::MAX)),
        max_utxos: Set(i32::try_from(c.max_utxos).unwrap_or(i32::MAX)),
        utxo_count_min: Set(c.utxo_count_min.0),
        source: Set(source.as_str().to_owned()),
        created_at: Set(now()),
    };
    use pool_settings::Column as C;
    pool_settings::Entity::insert(row)
        .on_conflict(
            OnConflict::columns([C::Chain, C::FromHeight])
                .update_columns([
                    C::FeePpm,
                    C::MinPayout,
                    C::MinUnlockDelay,
                    C::RequireSeparateRevokeRecover,
                    C::MaxPrimaryAddresses,
                    C::MaxUtxos,
                    C::UtxoCountMin,
                    C::Source,
                    C::CreatedAt,
                ])
                .to_owned(),
        )
        .exec_without_returning(db)
        .await?;
    Ok(())
}

/// Reconciles the stored settings with the configuration file at start-up.
///
/// The first start stores the file's settings from height 0. Later, the file wins only when
/// the file itself changed (its settings differ from the last version taken from it); then
/// they apply from `next_height`. Otherwise what admins changed since stays in force.
/// Returns the version that was recorded, if any.
pub async fn sync_with_config(
    db: &impl ConnectionTrait,
    chain: &str,
    from_config: &PoolSettings,
    next_height: Height,
) -> StoreResult<Option<SettingsVersion>> {
    let last_from_config = pool_settings::Entity::find()
        .filter(pool_settings::Column::Chain.eq(chain))
        .filter(pool_settings::Column::Source.eq(SettingsSource::Config.as_str()))
        .order_by_desc(pool_settings::Column::FromHeight)
        .one(db)
        .await?
        .map(from_row)
        .transpose()?;
    let from_height = match (&last_from_config, latest(db, chain).await?) {
        (_, None) => 0,
        (Some(last), Some(_)) if last.settings == *from_config => return Ok(None),
        (_, Some(newest)) => next_height.max(newest.from_height),
    };
    record(db, chain, from_height, from_config, SettingsSource::Config).await?;
    // Outside a fenced transaction: API read caches must see it.
    super::lease::touch(db, chain).await?;
    Ok(Some(SettingsVersion {
        from_height,
        settings: from_config.clone(),
        source: SettingsSource::Config,
    }))
}

/// The subscriber's own fee in force at `height`, if an admin set one.
pub async fn subscriber_fee_at(
    db: &impl ConnectionTrait,
    chain: &str,
    identity: &str,
    height: Height,
) -> StoreResult<Option<FeeRate>> {
    let row = subscriber_fee::Entity::find()
        .filter(subscriber_fee::Column::Chain.eq(chain))
        .filter(subscriber_fee::Column::IdentityAddress.eq(identity))
        .filter(subscriber_fee::Column::FromHeight.lte(height))
        .order_by_desc(subscriber_fee::Column::FromHeight)
        .one(db)
        .await?;
    row.and_then(|r| r.fee_ppm).map(stored_fee).transpose()
}

/// A stored `subscriber_fee.fee_ppm` as a fee rate.
fn stored_fee(ppm: i64) -> StoreResult<FeeRate> {
    u32::try_from(ppm)
        .ok()
        .and_then(FeeRate::from_ppm)
        .ok_or_else(|| StoreError::Corrupt(format!("subscriber_fee {ppm} ppm")))
}

/// Every subscriber's own fee in force at `height` (those an admin set and did not clear), read
/// with one query: the split of a stake asks it once, not once per subscriber.
pub async fn subscriber_fees_at(
    db: &impl ConnectionTrait,
    chain: &str,
    height: Height,
) -> StoreResult<HashMap<String, FeeRate>> {
    let rows = subscriber_fee::Entity::find()
        .filter(subscriber_fee::Column::Chain.eq(chain))
        .filter(subscriber_fee::Column::FromHeight.lte(height))
        .order_by_asc(subscriber_fee::Column::FromHeight)
        .all(db)
        .await?;
    // Later rows override earlier ones: the last one of each identity is in force.
    let mut latest: HashMap<String, Option<i64>> = HashMap::new();
    for r in rows {
        latest.insert(r.identity_address, r.fee_ppm);
    }
    latest
        .into_iter()
        .filter_map(|(identity, ppm)| ppm.map(|ppm| Ok((identity, stored_fee(ppm)?))))
        .collect()
}

/// Sets (or with `None` clears) a subscriber's own fee from `from_height` on.
pub async fn set_subscriber_fee(
    db: &impl ConnectionTrait,
    chain: &str,
    identity: &str,
    from_height: Height,
    fee: Option<FeeRate>,
) -> StoreResult<()> {
    let row = subscriber_fee::ActiveModel {
        id: Default::default(),
        chain: Set(chain.to_owned()),
        identity_address: Set(identity.to_owned()),
        from_height: Set(from_height),
        fee_ppm: Set(fee.map(|f| i64::from(f.ppm()))),
        created_at: Set(now()),
    };
    use subscriber_fee::Column as C;
    subscriber_fee::Entity::insert(row)
        .on_conflict(
            OnConflict::columns([C::Chain, C::IdentityAddress, C::FromHeight])
                .update_columns([C::FeePpm, C::CreatedAt])
                .to_owned(),
        )
        .exec_without_returning(db)
        .await?;
    Ok(())
}

/// Whether payouts are paused and why, and when the last payout cycle completed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PayoutState {
    /// Paused by an admin (stays until an admin resumes).
    pub paused: bool,
    /// The admin's reason.
    pub reason: Option<String>,
    /// The ledger check that failed: payouts wait until a check passes again.
    pub check_failure: Option<String>,
    /// When the last payout cycle completed.
    pub last_cycle_at: Option<chrono::DateTime<chrono::Utc>>,
}

impl PayoutState {
    /// Whether payouts wait, for either reason.
    pub fn held(&self) -> bool {
        self.paused || self.check_failure.is_some()
    }

    /// Why payouts wait, in words: who paused them (and why), or which check failed.
    pub fn held_reason(&self) -> Option<String> {
        let admin = self.paused.then(|| match &self.reason {
            Some(r) => format!("paused by an admin: {r}"),
            None => "paused by an admin".to_owned(),
        });
        let check = self
            .check_failure
            .as_ref()
            .map(|c| format!("held by the ledger check until it passes again: {c}"));
        match (admin, check) {
            (Some(a), Some(c)) => Some(format!("{a}; {c}")),
            (a, c) => a.or(c),
        }
    }
}

/// The payout state of a chain (not paused, never run, if nothing is stored).
pub async fn payout_state(db: &impl ConnectionTrait, chain: &str) -> StoreResult<PayoutState> {
    Ok(payout_state::Entity::find_by_id(chain.to_owned())
        .one(db)
        .await?
        .map(|m| PayoutState {
            paused: m.paused,
            reason: m.paused_reason,
            check_failure: m.check_failure,
            last_cycle_at: m.last_cycle_at.map(|t| t.and_utc()),
        })
        .unwrap_or_default())
}

/// Writes the payout state of a chain after `change`; only `columns` are updated when the row
/// exists (so a change of one part never overwrites another part written meanwhile).
async fn change_payout_state(
    db: &impl ConnectionTrait,
    chain: &str,
    columns: &[payout_state::Column],
    change: impl FnOnce(&mut PayoutState),
) -> StoreResult<()> {
    let mut state = payout_state(db, chain).await?;
    change(&mut state);
    let row = payout_state::ActiveModel {
        chain: Set(chain.to_owned()),
        paused: Set(state.paused),
        paused_reason: Set(state.reason),
        last_cycle_at: Set(state.last_cycle_at.map(|t| t.naive_utc())),
        updated_at: Set(now()),
        check_failure: Set(state.check_failure),
    };
    use payout_state::Column as C;
    let mut update = columns.to_vec();
    update.push(C::UpdatedAt);
    payout_state::Entity::insert(row)
        .on_conflict(
            OnConflict::column(C::Chain)
                .update_columns(update)
                .to_owned(),
        )
        .exec_without_returning(db)
        .await?;
    Ok(())
}

/// Pauses or resumes payouts (an admin's decision; a failed ledger check is apart).
pub async fn set_payouts_paused(
    db: &impl ConnectionTrait,
    chain: &str,
    paused: bool,
    reason: Option<&str>,
) -> StoreResult<()> {
    use payout_state::Column as C;
    change_payout_state(db, chain, &[C::Paused, C::PausedReason], |s| {
        s.paused = paused;
        s.reason = if paused {
            reason.map(str::to_owned)
        } else {
            None
        };
    })
    .await
}

/// Records the outcome of a ledger check: `Some(what failed)` holds payouts, `None` lifts that
/// hold (an admin's pause stays).
pub async fn set_check_failure(
    db: &impl ConnectionTrait,
    chain: &str,
    failure: Option<&str>,
) -> StoreResult<()> {
    change_payout_state(db, chain, &[payout_state::Column::CheckFailure], |s| {
        s.check_failure = failure.map(str::to_owned);
    })
    .await?;
    // Outside a fenced transaction: API read caches must see it.
    super::lease::touch(db, chain).await?;
    Ok(())
}

/// Records that a payout cycle completed now.
pub async fn mark_cycle(db: &impl ConnectionTrait, chain: &str) -> StoreResult<()> {
    change_payout_state(db, chain, &[payout_state::Column::LastCycleAt], |s| {
        s.last_cycle_at = Some(chrono::Utc::now());
    })
    .await
}
