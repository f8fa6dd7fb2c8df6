//! Subscribers and their status history.

use entity::{eligibility_interval, subscriber, subscriber_status};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait,
    QueryFilter, QueryOrder, QuerySelect,
};

use super::{StoreError, StoreResult, now, parse_stored};
use crate::domain::{Height, Sats, SubscriberStatus};

/// A subscriber as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscriber {
    /// Row id (the API's cursor for lists).
    pub id: i64,
    /// Chain name.
    pub chain: String,
    /// The identity's i-address.
    pub identity_address: String,
    /// Its fully qualified name.
    pub name: String,
    /// Its status now.
    pub status: SubscriberStatus,
    /// When it last joined (met every condition).
    pub joined_height: Option<Height>,
    /// When it last left.
    pub left_height: Option<Height>,
    /// Its own minimum payout, if it set one.
    pub min_payout: Option<Sats>,
    /// Conditions it does not meet, in words (when LEFT for that reason).
    pub unmet: Vec<String>,
}

fn from_row(m: subscriber::Model) -> StoreResult<Subscriber> {
    let unmet = match m.unmet.as_deref() {
        None | Some("") => Vec::new(),
        Some(text) => serde_json::from_str(text)
            .map_err(|e| StoreError::Corrupt(format!("subscriber {} unmet: {e}", m.id)))?,
    };
    Ok(Subscriber {
        id: m.id,
        status: parse_stored(&m.status, SubscriberStatus::parse, "subscriber status")?,
        chain: m.chain,
        identity_address: m.identity_address,
        name: m.name,
        joined_height: m.joined_height,
        left_height: m.left_height,
        min_payout: m.min_payout.map(Sats),
        unmet,
    })
}

/// The subscriber with this identity.
pub async fn get(
    db: &impl ConnectionTrait,
    chain: &str,
    identity: &str,
) -> StoreResult<Option<Subscriber>> {
    subscriber::Entity::find()
        .filter(subscriber::Column::Chain.eq(chain))
        .filter(subscriber::Column::IdentityAddress.eq(identity))
        .one(db)
        .await?
        .map(from_row)
        .transpose()
}

/// How many subscribers of `chain` have one of `statuses`.
pub async fn count_by_status(
    db: &impl ConnectionTrait,
    chain: &str,
    statuses: &[SubscriberStatus],
) -> StoreResult<u64> {
    Ok(subscriber::Entity::find()
        .filter(subscriber::Column::Chain.eq(chain))
        .filter(subscriber::Column::Status.is_in(statuses.iter().map(|s| s.as_str())))
        .count(db)
        .await?)
}

/// Up to `limit` subscribers with ids above `after`, in id order.
pub async fn list(
    db: &impl ConnectionTrait,
    chain: &str,
    status: Option<SubscriberStatus>,
    after: Option<i64>,
    limit: u64,
) -> StoreResult<Vec<Subscriber>> {
    let mut q = subscriber::Entity::find().filter(subscriber::Column::Chain.eq(chain));
    if let Some(s) = status {
        q = q.filter(subscriber::Column::Status.eq(s.as_str()));
    }
    if let Some(after) = after {
        q = q.filter(subscriber::Column::Id.gt(after));
    }
    q.order_by_asc(subscriber::Column::Id)
        .limit(limit)
        .all(db)
        .await?
        .into_iter()
        .map(from_row)
        .collect()
}

/// A status change to record.
#[derive(Debug, Clone)]
pub struct StatusChange<'a> {
    /// Chain name.
    pub chain: &'a str,
    /// The identity.
    pub identity_address: &'a str,
    /// Its name as of this change.
    pub name: &'a str,
    /// The new status.
    pub status: SubscriberStatus,
    /// The height it applies from.
    pub height: Height,
    /// Why, in words.
    pub reason: Option<&'a str>,
    /// Conditions not met, in words.
    pub unmet: &'a [String],
    /// The registry action this change comes from (`None`: the chain).
    pub action: Option<i64>,
}

/// In the pool: COOLING_DOWN or ACTIVE.
fn in_pool(status: SubscriberStatus) -> bool {
    matches!(
        status,
        SubscriberStatus::CoolingDown | SubscriberStatus::Active
    )
}

/// Creates or updates the subscriber and appends the change to its history.
/// `joined_height` is set on entering the pool (COOLING_DOWN, or ACTIVE at once for an
/// identity found already past its cooldown) from outside it, `left_height` on leaving (LEFT
/// or BANNED). Returns the subscriber, and `Some(in the pool)` when its membership now differs
/// from what clients were last told (the caller writes the `SUBSCRIBER_JOINED` or
/// `SUBSCRIBER_LEFT` event; what clients were told is updated here).
pub async fn set_status(
    db: &impl ConnectionTrait,
    change: &StatusChange<'_>,
) -> StoreResult<(Subscriber, Option<bool>)> {
    let announce = set_status_many(db, std::slice::from_ref(change)).await?;
    let subscriber = get(db, change.chain, change.identity_address)
        .await?
        .ok_or_else(|| {
            StoreError::Corrupt(format!(
                "subscriber {} not found after its status was set",
                change.identity_address
            ))
        })?;
    Ok((subscriber, announce.into_iter().next().flatten()))
}

/// [`set_status`] of each of `changes` (distinct identities of one chain), in a few statements
/// for all of them: the subscribers are read 500 to a statement, written 200 to an upsert,
/// and their history entries appended together. Returns what `set_status` returns of each
/// (whether clients must be told), in order. Those of a block (a wave of joins, or the end of
/// their cooldown) cost five statements each one at a time: 10,000 joining subscribers were
/// most of a catch-up's statements (BENCHMARKS.md, seventeenth round).
pub async fn set_status_many(
    db: &impl ConnectionTrait,
    changes: &[StatusChange<'_>],
) -> StoreResult<Vec<Option<bool>>> {
    // Rows per statement: 13 columns each stays far below every backend's parameter limit.
    const ROWS: usize = 200;
    let Some(first) = changes.first() else {
        return Ok(Vec::new());
    };
    let at = now();
    let addresses: Vec<String> = changes
        .iter()
        .map(|c| c.identity_address.to_owned())
        .collect();
    let mut existing = std::collections::HashMap::new();
    for slice in addresses.chunks(super::IN_SLICE) {
        for m in subscriber::Entity::find()
            .filter(subscriber::Column::Chain.eq(first.chain))
            .filter(subscriber::Column::IdentityAddress.is_in(slice.iter().cloned()))
            .all(db)
            .await?
        {
            existing.insert(m.identity_address.clone(), m);
        }
    }
    let mut rows = Vec::with_capacity(changes.len());
    let mut history = Vec::with_capacity(changes.len());
    let mut announce = Vec::with_capacity(changes.len());
    for change in changes {
        let unmet = if change.unmet.is_empty() {
            None
        } else {
            Some(
                serde_json::to_string(change.unmet)
                    .map_err(|e| StoreError::Corrupt(e.to_string()))?,
            )
        };
        let leaving = matches!(
            change.status,
            SubscriberStatus::Left | SubscriberStatus::Banned
        );
        let entering = in_pool(change.status);
        let old = existing.get(change.identity_address);
        let was_in = match old {
            Some(m) => in_pool(parse_stored(
                &m.status,
                SubscriberStatus::parse,
                "subscriber status",
            )?),
            None => false,
        };
        let joined = if !was_in && entering {
            Some(change.height)
        } else {
            old.and_then(|m| m.joined_height)
        };
        let left = if leaving && (was_in || old.is_none()) {
            Some(change.height)
        } else {
            old.and_then(|m| m.left_height)
        };
        rows.push(subscriber::ActiveModel {
            id: Default::default(),
            chain: Set(change.chain.to_owned()),
            identity_address: Set(change.identity_address.to_owned()),
            name: Set(change.name.to_owned()),
            status: Set(change.status.as_str().to_owned()),
            joined_height: Set(joined),
            left_height: Set(left),
            // Not updated on conflict: what the row holds stays.
            min_payout: Set(old.and_then(|m| m.min_payout)),
            unmet: Set(unmet),
            created_at: Set(old.map_or(at, |m| m.created_at)),
            updated_at: Set(at),
            min_payout_height: Set(old.and_then(|m| m.min_payout_height)),
            announced: Set(entering),
        });
        history.push(subscriber_status::ActiveModel {
            id: Default::default(),
            chain: Set(change.chain.to_owned()),
            identity_address: Set(change.identity_address.to_owned()),
            height: Set(change.height),
            status: Set(change.status.as_str().to_owned()),
            reason: Set(change.reason.map(str::to_owned)),
            created_at: Set(at),
            action_id: Set(change.action),
        });
        let told = old.is_some_and(|m| m.announced);
        announce.push((told != entering).then_some(entering));
    }
    use subscriber::Column as C;
    let on_conflict = sea_orm::sea_query::OnConflict::columns([C::Chain, C::IdentityAddress])
        .update_columns([
            C::Name,
            C::Status,
            C::JoinedHeight,
            C::LeftHeight,
            C::Unmet,
            C::UpdatedAt,
            C::Announced,
        ])
        .to_owned();
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        subscriber::Entity::insert_many(rows.by_ref().take(ROWS))
            .on_conflict(on_conflict.clone())
            .exec_without_returning(db)
            .await?;
    }
    let mut history = history.into_iter().peekable();
    while history.peek().is_some() {
        subscriber_status::Entity::insert_many(history.by_ref().take(ROWS))
            .exec_without_returning(db)
            .await?;
    }
    Ok(announce)
}

/// The status of each of `identities` that is a subscriber (absent: never was), one statement
/// per 500.
pub async fn statuses_of(
    db: &impl ConnectionTrait,
    chain: &str,
    identities: &[String],
) -> StoreResult<std::collections::HashMap<String, SubscriberStatus>> {
    let mut out = std::collections::HashMap::new();
    for slice in identities.chunks(super::IN_SLICE) {
        let rows: Vec<(String, String)> = subscriber::Entity::find()
            .select_only()
            .column(subscriber::Column::IdentityAddress)
            .column(subscriber::Column::Status)
            .filter(subscriber::Column::Chain.eq(chain))
            .filter(subscriber::Column::IdentityAddress.is_in(slice.iter().cloned()))
            .into_tuple()
            .all(db)
            .await?;
        for (address, status) in rows {
            let status = parse_stored(&status, SubscriberStatus::parse, "subscriber status")?;
            out.insert(address, status);
        }
    }
    Ok(out)
}

/// The status and own minimum payout of each of `identities` that is a subscriber (absent:
/// never was), one statement per 500: what a payout cycle needs of every pending balance.
pub async fn payout_terms_of(
    db: &impl ConnectionTrait,
    chain: &str,
    identities: &[String],
) -> StoreResult<std::collections::HashMap<String, (SubscriberStatus, Option<Sats>)>> {
    let mut out = std::collections::HashMap::new();
    for slice in identities.chunks(super::IN_SLICE) {
        let rows: Vec<(String, String, Option<i64>)> = subscriber::Entity::find()
            .select_only()
            .column(subscriber::Column::IdentityAddress)
            .column(subscriber::Column::Status)
            .column(subscriber::Column::MinPayout)
            .filter(subscriber::Column::Chain.eq(chain))
            .filter(subscriber::Column::IdentityAddress.is_in(slice.iter().cloned()))
            .into_tuple()
            .all(db)
            .await?;
        for (address, status, min_payout) in rows {
            let status = parse_stored(&status, SubscriberStatus::parse, "subscriber status")?;
            out.insert(address, (status, min_payout.map(Sats)));
        }
    }
    Ok(out)
}

/// The status history of one identity, oldest first: (height, status, reason).
pub async fn history(
    db: &impl ConnectionTrait,
    chain: &str,
    identity: &str,
) -> StoreResult<Vec<(Height, SubscriberStatus, Option<String>)>> {
    subscriber_status::Entity::find()
        .filter(subscriber_status::Column::Chain.eq(chain))
        .filter(subscriber_status::Column::IdentityAddress.eq(identity))
        .order_by_asc(subscriber_status::Column::Id)
        .all(db)
        .await?
        .into_iter()
        .map(|m| {
            Ok((
                m.height,
                parse_stored(&m.status, SubscriberStatus::parse, "status")?,
                m.reason,
            ))
        })
        .collect()
}

/// Sets a subscriber's own minimum payout, authorised by a signature over `signed_height`:
/// only when that height is above the last one used (in one statement, so two requests with
/// the same signature cannot both pass). Returns whether it was set.
pub async fn set_min_payout(
    db: &impl ConnectionTrait,
    chain: &str,
    identity: &str,
    amount: Sats,
    signed_height: Height,
) -> StoreResult<bool> {
    use sea_orm::Condition;
    let res = subscriber::Entity::update_many()
        .col_expr(subscriber::Column::MinPayout, amount.0.into())
        .col_expr(subscriber::Column::MinPayoutHeight, signed_height.into())
        .col_expr(subscriber::Column::UpdatedAt, now().into())
        .filter(subscriber::Column::Chain.eq(chain))
        .filter(subscriber::Column::IdentityAddress.eq(identity))
        .filter(
            Condition::any()
                .add(subscriber::Column::MinPayoutHeight.is_null())
                .add(subscriber::Column::MinPayoutHeight.lt(signed_height)),
        )
        .exec(db)
        .await?;
    Ok(res.rows_affected == 1)
}

/// Opens an eligibility interval `[from, …)` (no-op if one is open).
pub async fn open_interval(
    db: &impl ConnectionTrait,
    chain: &str,
    identity: &str,
    from: Height,
) -> StoreResult<()> {
    set_intervals_many(db, chain, &[(identity, true)], from).await
}

/// Closes the open eligibility interval at `to` (exclusive); an interval that would be empty
/// is removed.
pub async fn close_interval(
    db: &impl ConnectionTrait,
    chain: &str,
    identity: &str,
    to: Height,
) -> StoreResult<()> {
    set_intervals_many(db, chain, &[(identity, false)], to).await
}

/// [`open_interval`] (`true`) or [`close_interval`] (`false`) at `height` of each of
/// `identities` (distinct), in a few statements for all of them: their intervals read 500
/// identities to a statement, the new ones inserted together, the ended ones closed (or, when
/// empty, removed) by id.
pub async fn set_intervals_many(
    db: &impl ConnectionTrait,
    chain: &str,
    identities: &[(&str, bool)],
    height: Height,
) -> StoreResult<()> {
    const ROWS: usize = 200;
    if identities.is_empty() {
        return Ok(());
    }
    let addresses: Vec<String> = identities.iter().map(|(a, _)| (*a).to_owned()).collect();
    let mut open = std::collections::HashMap::new();
    for slice in addresses.chunks(super::IN_SLICE) {
        // The identities' few intervals, filtered here: with `to_height IS NULL` in the query,
        // SQLite chose `ix_eligibility_to` (chain, to_height) and walked every open interval
        // of the chain (370 µs a call at 10,000 subscribers, 4.8 s of a 10,000-subscriber
        // start).
        for row in eligibility_interval::Entity::find()
            .filter(eligibility_interval::Column::Chain.eq(chain))
            .filter(eligibility_interval::Column::IdentityAddress.is_in(slice.iter().cloned()))
            .all(db)
            .await?
        {
            if row.to_height.is_none() {
                open.entry(row.identity_address.clone()).or_insert(row);
            }
        }
    }
    let mut opened = Vec::new();
    let mut ended = Vec::new();
    let mut empty = Vec::new();
    for (identity, opening) in identities {
        match (opening, open.get(*identity)) {
            (true, None) => opened.push(eligibility_interval::ActiveModel {
                id: Default::default(),
                chain: Set(chain.to_owned()),
                identity_address: Set((*identity).to_owned()),
                from_height: Set(height),
                to_height: Set(None),
            }),
            (false, Some(row)) if row.from_height >= height => empty.push(row.id),
            (false, Some(row)) => ended.push(row.id),
            (true, Some(_)) | (false, None) => {}
        }
    }
    let mut opened = opened.into_iter().peekable();
    while opened.peek().is_some() {
        eligibility_interval::Entity::insert_many(opened.by_ref().take(ROWS))
            .exec_without_returning(db)
            .await?;
    }
    for ids in ended.chunks(super::IN_SLICE) {
        eligibility_interval::Entity::update_many()
            .col_expr(
                eligibility_interval::Column::ToHeight,
                sea_orm::sea_query::Expr::value(height),
            )
            .filter(eligibility_interval::Column::Id.is_in(ids.iter().copied()))
            .exec(db)
            .await?;
    }
    for ids in empty.chunks(super::IN_SLICE) {
        eligibility_interval::Entity::delete_many()
            .filter(eligibility_interval::Column::Id.is_in(ids.iter().copied()))
            .exec(db)
            .await?;
    }
    Ok(())
}

/// Eligibility intervals of an identity, oldest first: `[from, to)`, `to` `None` while open.
pub async fn intervals(
    db: &impl ConnectionTrait,
    chain: &str,
    identity: &str,
) -> StoreResult<Vec<(Height, Option<Height>)>> {
    Ok(eligibility_interval::Entity::find()
        .filter(eligibility_interval::Column::Chain.eq(chain))
        .filter(eligibility_interval::Column::IdentityAddress.eq(identity))
        .order_by_asc(eligibility_interval::Column::FromHeight)
        .all(db)
        .await?
        .into_iter()
        .map(|r| (r.from_height, r.to_height))
        .collect())
}

/// The identity addresses of a chain's subscribers in one of `statuses`, in id order: the
/// registry asks every block for the cooling ones, so only the address is read (whole rows,
/// with their timestamps parsed, made most of a block's time while 10,000 subscribers cooled).
pub async fn addresses_with_status(
    db: &impl ConnectionTrait,
    chain: &str,
    statuses: &[SubscriberStatus],
) -> StoreResult<Vec<String>> {
    Ok(subscriber::Entity::find()
        .select_only()
        .column(subscriber::Column::IdentityAddress)
        .filter(subscriber::Column::Chain.eq(chain))
        .filter(subscriber::Column::Status.is_in(statuses.iter().map(|s| s.as_str())))
        .order_by_asc(subscriber::Column::Id)
        .into_tuple()
        .all(db)
        .await?)
}

/// A membership change undone by [`undo_from`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Undone {
    /// The identity.
    pub identity_address: String,
    /// Its name.
    pub name: String,
    /// Status before the undo.
    pub before: SubscriberStatus,
    /// Status after (`None`: it was never a subscriber before that block).
    pub after: Option<SubscriberStatus>,
    /// `Some(in the pool)` when its membership now differs from what clients were last told
    /// (the caller writes the event). `None` also when every change undone came from a
    /// registry action, which applies again when its height is connected again: what clients
    /// were told stands.
    pub announce: Option<bool>,
}

/// Undoes the status changes and eligibility intervals of a disconnected block at `height`,
/// and those of actions already applied above it (at the height the pool had not processed,
/// which is now further away): the history rows from `height` up go, each subscriber returns
/// to its last remaining status (or is removed when none remains), intervals opened from
/// `height` up go and intervals closed from it up reopen.
pub async fn undo_from(
    db: &impl ConnectionTrait,
    chain: &str,
    height: Height,
) -> StoreResult<Vec<Undone>> {
    let changed = subscriber_status::Entity::find()
        .filter(subscriber_status::Column::Chain.eq(chain))
        .filter(subscriber_status::Column::Height.gte(height))
        .all(db)
        .await?;
    if changed.is_empty() {
        // Nothing changed at or above the height, and so no interval did either: every
        // interval row opens or closes with a status row at the same height.
        return Ok(Vec::new());
    }
    subscriber_status::Entity::delete_many()
        .filter(subscriber_status::Column::Chain.eq(chain))
        .filter(subscriber_status::Column::Height.gte(height))
        .exec(db)
        .await?;
    eligibility_interval::Entity::delete_many()
        .filter(eligibility_interval::Column::Chain.eq(chain))
        .filter(eligibility_interval::Column::FromHeight.gte(height))
        .exec(db)
        .await?;
    eligibility_interval::Entity::update_many()
        .col_expr(
            eligibility_interval::Column::ToHeight,
            sea_orm::sea_query::Expr::value(Option::<i64>::None),
        )
        .filter(eligibility_interval::Column::Chain.eq(chain))
        .filter(eligibility_interval::Column::ToHeight.gte(height))
        .exec(db)
        .await?;
    let mut by_identity: std::collections::BTreeMap<String, bool> =
        std::collections::BTreeMap::new();
    for r in changed {
        let all_actions = by_identity.entry(r.identity_address).or_insert(true);
        *all_actions &= r.action_id.is_some();
    }
    let mut out = Vec::new();
    for (identity, by_action) in by_identity {
        let Some(row) = subscriber::Entity::find()
            .filter(subscriber::Column::Chain.eq(chain))
            .filter(subscriber::Column::IdentityAddress.eq(&identity))
            .one(db)
            .await?
        else {
            continue;
        };
        let before = parse_stored(&row.status, SubscriberStatus::parse, "subscriber status")?;
        let row_told = row.announced;
        let history = history(db, chain, &identity).await?;
        let name = row.name.clone();
        match history.last() {
            None => {
                subscriber::Entity::delete_by_id(row.id).exec(db).await?;
                out.push(Undone {
                    identity_address: identity,
                    name,
                    before,
                    after: None,
                    announce: (!by_action && row_told).then_some(false),
                });
            }
            Some((_, status, _)) => {
                // The last entry into the pool, and the last exit after it.
                let mut joined = None;
                let mut left = None;
                let mut previous_in = false;
                for (h, s, _) in &history {
                    if in_pool(*s) && !previous_in {
                        joined = Some(*h);
                    }
                    if !in_pool(*s) && previous_in {
                        left = Some(*h);
                    }
                    previous_in = in_pool(*s);
                }
                let after = *status;
                let now_in = in_pool(after);
                let announce = (!by_action && now_in != row_told).then_some(now_in);
                let mut am: subscriber::ActiveModel = row.into();
                if announce.is_some() {
                    am.announced = Set(now_in);
                }
                am.status = Set(after.as_str().to_owned());
                am.joined_height = Set(joined);
                am.left_height = Set(left);
                am.unmet = Set(None);
                am.updated_at = Set(now());
                am.update(db).await?;
                out.push(Undone {
                    identity_address: identity,
                    name,
                    before,
                    after: Some(after),
                    announce,
                });
            }
        }
    }
    Ok(out)
}

/// The subscriber with this fully qualified name (case-insensitive).
pub async fn get_by_name(
    db: &impl ConnectionTrait,
    chain: &str,
    name: &str,
) -> StoreResult<Option<Subscriber>> {
    use sea_orm::sea_query::{Expr, ExprTrait, Func};
    let lower_name = Expr::expr(Func::lower(Expr::col(subscriber::Column::Name)));
    subscriber::Entity::find()
        .filter(subscriber::Column::Chain.eq(chain))
        .filter(ExprTrait::eq(lower_name, name.to_lowercase()))
        .one(db)
        .await?
        .map(from_row)
        .transpose()
}

/// Eligibility intervals that overlap heights `first..=last`, by identity.
pub async fn intervals_overlapping(
    db: &impl ConnectionTrait,
    chain: &str,
    first: Height,
    last: Height,
) -> StoreResult<std::collections::HashMap<String, Vec<(Height, Option<Height>)>>> {
    use sea_orm::Condition;
    // Only the three columns the work needs (100,000 rows at 100,000 subscribers), and no
    // ORDER BY: the work does not depend on the order; each identity's intervals are sorted
    // below so that the result does not depend on the backend.
    let rows: Vec<(String, Height, Option<Height>)> = eligibility_interval::Entity::find()
        .select_only()
        .column(eligibility_interval::Column::IdentityAddress)
        .column(eligibility_interval::Column::FromHeight)
        .column(eligibility_interval::Column::ToHeight)
        .filter(eligibility_interval::Column::Chain.eq(chain))
        .filter(eligibility_interval::Column::FromHeight.lte(last))
        .filter(
            Condition::any()
                .add(eligibility_interval::Column::ToHeight.is_null())
                .add(eligibility_interval::Column::ToHeight.gt(first)),
        )
        .into_tuple()
        .all(db)
        .await?;
    let mut out: std::collections::HashMap<String, Vec<(Height, Option<Height>)>> =
        std::collections::HashMap::new();
    for (identity, from, to) in rows {
        out.entry(identity).or_default().push((from, to));
    }
    for spans in out.values_mut() {
        spans.sort_unstable();
    }
    Ok(out)
}

/// [`intervals`] of each of `identities`, one statement per 500.
pub async fn intervals_of(
    db: &impl ConnectionTrait,
    chain: &str,
    identities: &[String],
) -> StoreResult<std::collections::HashMap<String, Vec<(Height, Option<Height>)>>> {
    let mut out: std::collections::HashMap<String, Vec<(Height, Option<Height>)>> =
        std::collections::HashMap::new();
    for slice in identities.chunks(super::IN_SLICE) {
        // Sorted here: with `ORDER BY from_height`, SQLite walked the whole chain through
        // `ix_eligibility_from_identity` (in order) instead of the identities' own ranges of
        // `ix_eligibility_identity` (12 ms a call at 100,000 subscribers).
        let rows = eligibility_interval::Entity::find()
            .filter(eligibility_interval::Column::Chain.eq(chain))
            .filter(eligibility_interval::Column::IdentityAddress.is_in(slice.iter().cloned()))
            .all(db)
            .await?;
        for r in rows {
            out.entry(r.identity_address)
                .or_default()
                .push((r.from_height, r.to_height));
        }
    }
    for spans in out.values_mut() {
        spans.sort_unstable();
    }
    Ok(out)
}
