//! Outputs held by identities that list the pool's R-address, with the height each was
//! mined at and the height it was spent at. Work and `max_utxos` are derived from them.

use std::collections::HashSet;

use entity::subscriber_utxo::{self, text_key};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DbBackend, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect, Statement, Value,
};

use super::StoreResult;
use crate::domain::{Height, Sats};

/// Outputs still unspent after block `height` (never spent, or spent above it).
fn unspent_after(height: Height) -> Condition {
    Condition::any()
        .add(subscriber_utxo::Column::SpentHeight.is_null())
        .add(subscriber_utxo::Column::SpentHeight.gt(height))
}

/// One output.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Utxo {
    /// Holder.
    pub identity_address: String,
    /// Transaction.
    pub txid: String,
    /// Output index.
    pub vout: u32,
    /// Value.
    pub amount: Sats,
    /// Height mined at.
    pub height: Height,
    /// Height spent at, if spent.
    pub spent_height: Option<Height>,
    /// Paid by the pool identity (not counted against `max_utxos`).
    pub from_pool: bool,
}

fn from_row(m: subscriber_utxo::Model) -> Utxo {
    Utxo {
        identity_address: m.identity_address,
        txid: m.txid,
        vout: u32::try_from(m.vout).unwrap_or(0),
        amount: Sats(m.amount),
        height: m.height,
        spent_height: m.spent_height,
        from_pool: m.from_pool,
    }
}

/// Rows of `identity`: its key finds them through `ix_utxo_identity_key`, its text decides
/// (two identities may share a key).
fn of_identity(identity: &str) -> Condition {
    Condition::all()
        .add(subscriber_utxo::Column::IdentityKey.eq(text_key(identity)))
        .add(subscriber_utxo::Column::IdentityAddress.eq(identity))
}

/// Rows of any of `identities` (see [`of_identity`]).
pub(crate) fn of_identities<'a>(identities: impl IntoIterator<Item = &'a str>) -> Condition {
    let texts: Vec<&str> = identities.into_iter().collect();
    Condition::all()
        .add(subscriber_utxo::Column::IdentityKey.is_in(texts.iter().map(|t| text_key(t))))
        .add(subscriber_utxo::Column::IdentityAddress.is_in(texts))
}

/// Stored rows of `chain` among the outputs of transactions `txids`, by (txid, vout): the
/// keys find candidates through `ix_utxo_txid_key`, the text decides.
async fn stored_of(
    db: &impl ConnectionTrait,
    chain: &str,
    txids: &[&str],
) -> StoreResult<Vec<subscriber_utxo::Model>> {
    Ok(subscriber_utxo::Entity::find()
        .filter(subscriber_utxo::Column::Chain.eq(chain))
        .filter(subscriber_utxo::Column::TxidKey.is_in(txids.iter().map(|t| text_key(t))))
        .filter(subscriber_utxo::Column::Txid.is_in(txids.iter().copied()))
        .all(db)
        .await?)
}

/// Stores outputs. An output already stored keeps its row, with the holder, amount, height
/// and origin given here (re-processing is idempotent); the last of outputs given twice wins.
///
/// The table has no unique index to lean on (its keys may collide: [`text_key`]), so the
/// stored outputs among these are read first, by their transactions' keys. The registry is
/// the table's one writer, inside its block's transaction. Call it in a transaction: it may
/// take several statements, and only the transaction makes them all or nothing.
pub async fn insert(db: &impl ConnectionTrait, chain: &str, utxos: &[Utxo]) -> StoreResult<()> {
    use std::collections::HashMap;
    use subscriber_utxo::Column as C;
    // The position of each output's last mention.
    let last: HashMap<(&str, u32), usize> = utxos
        .iter()
        .enumerate()
        .map(|(i, u)| ((u.txid.as_str(), u.vout), i))
        .collect();
    let mut offset = 0;
    for chunk in utxos.chunks(500) {
        let txids: Vec<&str> = chunk
            .iter()
            .map(|u| u.txid.as_str())
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        let stored: HashMap<(String, i64), subscriber_utxo::Model> = stored_of(db, chain, &txids)
            .await?
            .into_iter()
            .map(|r| ((r.txid.clone(), i64::from(r.vout)), r))
            .collect();
        let mut rows = Vec::new();
        for (i, u) in chunk.iter().enumerate() {
            if last.get(&(u.txid.as_str(), u.vout)) != Some(&(offset + i)) {
                continue;
            }
            match stored.get(&(u.txid.clone(), i64::from(u.vout))) {
                Some(row) => {
                    if row.identity_address != u.identity_address
                        || row.amount != u.amount.0
                        || row.height != u.height
                        || row.from_pool != u.from_pool
                    {
                        subscriber_utxo::Entity::update_many()
                            .col_expr(C::IdentityAddress, u.identity_address.clone().into())
                            .col_expr(C::IdentityKey, text_key(&u.identity_address).into())
                            .col_expr(C::Amount, u.amount.0.into())
                            .col_expr(C::Height, u.height.into())
                            .col_expr(C::FromPool, u.from_pool.into())
                            .filter(C::Id.eq(row.id))
                            .exec(db)
                            .await?;
                    }
                }
                None => rows.push(u),
            }
        }
        offset += chunk.len();
        insert_new(db, chain, &rows).await?;
    }
    Ok(())
}

/// The columns [`insert_new`] writes, in the order of its values.
const NEW_ROW_COLUMNS: [subscriber_utxo::Column; 11] = {
    use subscriber_utxo::Column as C;
    [
        C::Chain,
        C::IdentityAddress,
        C::Txid,
        C::Vout,
        C::Amount,
        C::Height,
        C::SpentHeight,
        C::SpentTxid,
        C::FromPool,
        C::TxidKey,
        C::IdentityKey,
    ]
};

/// The values of one new row, in the order of [`NEW_ROW_COLUMNS`].
fn new_row_values(chain: &str, u: &Utxo) -> [Value; NEW_ROW_COLUMNS.len()] {
    [
        chain.into(),
        u.identity_address.as_str().into(),
        u.txid.as_str().into(),
        stored_vout(u).into(),
        u.amount.0.into(),
        u.height.into(),
        u.spent_height.into(),
        Option::<String>::None.into(),
        u.from_pool.into(),
        text_key(&u.txid).into(),
        text_key(&u.identity_address).into(),
    ]
}

/// The output index as the table stores it.
fn stored_vout(u: &Utxo) -> i32 {
    i32::try_from(u.vout).unwrap_or(i32::MAX)
}

/// How many one-row statements one SQLite request of [`insert_new`] holds: a few fixed sizes
/// (the last 1, so any number of rows is made of them), which each connection keeps prepared
/// whatever a block's count of new outputs.
const SQLITE_GROUPS: [usize; 4] = [64, 16, 4, 1];

/// For each of [`SQLITE_GROUPS`], that many one-row inserts of [`NEW_ROW_COLUMNS`] in one SQL
/// text: SQLite runs them one after the other, each with the next 11 of the request's values.
fn sqlite_insert_texts() -> &'static [String; SQLITE_GROUPS.len()] {
    static TEXTS: std::sync::OnceLock<[String; SQLITE_GROUPS.len()]> = std::sync::OnceLock::new();
    TEXTS.get_or_init(|| {
        let columns: Vec<String> = NEW_ROW_COLUMNS
            .iter()
            .map(|c| format!("\"{}\"", sea_orm::IdenStatic::as_str(c)))
            .collect();
        let one = format!(
            "INSERT INTO \"subscriber_utxo\" ({}) VALUES ({})",
            columns.join(", "),
            vec!["?"; NEW_ROW_COLUMNS.len()].join(", ")
        );
        SQLITE_GROUPS.map(|n| vec![one.as_str(); n].join(";\n"))
    })
}

/// [`insert_new`] on PostgreSQL: one statement whose text does not depend on the number of
/// rows, its columns bound as arrays (`UNNEST`), so that each connection prepares it once and
/// binds 10 values. A multi-row `VALUES` list binds 11 values a row and is a statement of its
/// own for each count of rows (BENCHMARKS.md, twentieth round). The arrays carry no null
/// (SeaORM binds them as arrays of values): an unspent output's height of spending is sent as
/// −1, which no height is, and stored as NULL.
const POSTGRES_INSERT: &str = "INSERT INTO subscriber_utxo (chain, identity_address, txid, vout, \
     amount, height, spent_height, spent_txid, from_pool, txid_key, identity_key) \
     SELECT $1, a, t, v, m, h, NULLIF(s, -1), NULL, p, tk, ik \
     FROM UNNEST($2::text[], $3::text[], $4::int[], $5::bigint[], $6::bigint[], $7::bigint[], \
     $8::bool[], $9::bigint[], $10::bigint[]) AS n(a, t, v, m, h, s, p, tk, ik)";

/// The values of [`POSTGRES_INSERT`] for `rows`.
fn postgres_insert_values(chain: &str, rows: &[&Utxo]) -> Vec<Value> {
    use sea_orm::sea_query::ArrayType;
    let column = |ty: ArrayType, each: &dyn Fn(&Utxo) -> Value| {
        Value::Array(ty, Some(Box::new(rows.iter().map(|u| each(u)).collect())))
    };
    vec![
        chain.into(),
        column(ArrayType::String, &|u| u.identity_address.as_str().into()),
        column(ArrayType::String, &|u| u.txid.as_str().into()),
        column(ArrayType::Int, &|u| stored_vout(u).into()),
        column(ArrayType::BigInt, &|u| u.amount.0.into()),
        column(ArrayType::BigInt, &|u| u.height.into()),
        column(ArrayType::BigInt, &|u| u.spent_height.unwrap_or(-1).into()),
        column(ArrayType::Bool, &|u| u.from_pool.into()),
        column(ArrayType::BigInt, &|u| text_key(&u.txid).into()),
        column(ArrayType::BigInt, &|u| text_key(&u.identity_address).into()),
    ]
}

/// Inserts outputs known not to be stored yet.
///
/// On SQLite, as groups of one-row statements of the sizes in [`SQLITE_GROUPS`], each group one
/// request to the connection's thread. One statement of 200 rows took SQLite ~30 % longer to
/// run than 200 one-row statements prepared once (BENCHMARKS.md, nineteenth round), and a
/// multi-row statement is a statement to prepare and cache for every count of rows. On
/// PostgreSQL, one statement of arrays ([`POSTGRES_INSERT`]). On MySQL, one multi-row
/// statement of the same values: it takes neither arrays nor several statements with
/// parameters in one request.
async fn insert_new(db: &impl ConnectionTrait, chain: &str, rows: &[&Utxo]) -> StoreResult<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let backend = db.get_database_backend();
    if backend == DbBackend::Postgres {
        db.execute_raw(Statement::from_sql_and_values(
            backend,
            POSTGRES_INSERT,
            postgres_insert_values(chain, rows),
        ))
        .await?;
        return Ok(());
    }
    if backend != DbBackend::Sqlite {
        let mut insert = sea_orm::sea_query::Query::insert();
        insert
            .into_table(subscriber_utxo::Entity)
            .columns(NEW_ROW_COLUMNS);
        for u in rows {
            insert
                .values(new_row_values(chain, u).map(Into::into))
                .map_err(|e| sea_orm::DbErr::Custom(format!("outputs to insert: {e}")))?;
        }
        db.execute_raw(backend.build(&insert)).await?;
        return Ok(());
    }
    let mut rest = rows;
    for (&size, sql) in SQLITE_GROUPS.iter().zip(sqlite_insert_texts()) {
        while rest.len() >= size {
            let (group, after) = rest.split_at(size);
            rest = after;
            let mut values: Vec<Value> = Vec::with_capacity(size * NEW_ROW_COLUMNS.len());
            for u in group {
                values.extend(new_row_values(chain, u));
            }
            db.execute_raw(Statement::from_sql_and_values(backend, sql, values))
                .await?;
        }
    }
    Ok(())
}

/// Marks the stored outputs among `spent` as spent at `height` by `txid`s; returns the
/// identities whose outputs were spent.
pub async fn mark_spent(
    db: &impl ConnectionTrait,
    chain: &str,
    spent: &[(String, u32, String)],
    height: Height,
) -> StoreResult<HashSet<String>> {
    let mut touched = HashSet::new();
    let txids: HashSet<&str> = spent.iter().map(|(t, _, _)| t.as_str()).collect();
    if txids.is_empty() {
        return Ok(touched);
    }
    // In slices: a block can spend more outputs than one statement may bind on SQLite.
    let txids: Vec<&str> = txids.into_iter().collect();
    let mut candidates = Vec::new();
    for chunk in txids.chunks(500) {
        candidates.extend(stored_of(db, chain, chunk).await?);
    }
    let spender: std::collections::HashMap<(&str, i64), &String> = spent
        .iter()
        .map(|(t, v, by)| ((t.as_str(), i64::from(*v)), by))
        .collect();
    for row in candidates {
        let Some(by) = spender.get(&(row.txid.as_str(), i64::from(row.vout))) else {
            continue;
        };
        subscriber_utxo::Entity::update_many()
            .col_expr(subscriber_utxo::Column::SpentHeight, height.into())
            .col_expr(subscriber_utxo::Column::SpentTxid, (*by).clone().into())
            .filter(subscriber_utxo::Column::Id.eq(row.id))
            .exec(db)
            .await?;
        touched.insert(row.identity_address);
    }
    Ok(touched)
}

/// Outputs mined at `mined_at` or spent at `spent_at`, each once.
///
/// Two queries, one per index (`ix_utxo_height`, `ix_utxo_spent`): SQLite plans
/// `chain = ? AND (height = ? OR spent_height = ?)` as a scan of every output of the chain
/// (measured: 7 ms a block at 10,000 subscribers, growing with the table).
///
/// Only the columns a change of supply or of holders needs are read: a block's maturing
/// outputs are hundreds of rows, and their transaction ids and keys were most of the reading.
pub async fn mined_or_spent(
    db: &impl ConnectionTrait,
    chain: &str,
    mined_at: Height,
    spent_at: Height,
) -> StoreResult<Vec<OutputChange>> {
    use subscriber_utxo::Column as C;
    let read = |condition: Condition| {
        subscriber_utxo::Entity::find()
            .select_only()
            .columns([C::IdentityAddress, C::Amount, C::Height, C::SpentHeight])
            .filter(C::Chain.eq(chain))
            .filter(condition)
            .into_tuple::<(String, i64, Height, Option<Height>)>()
            .all(db)
    };
    let mut rows = read(Condition::all().add(C::Height.eq(mined_at))).await?;
    // Those mined at `mined_at` were read by the first query.
    rows.extend(
        read(
            Condition::all()
                .add(C::SpentHeight.eq(spent_at))
                .add(C::Height.ne(mined_at)),
        )
        .await?,
    );
    Ok(rows
        .into_iter()
        .map(
            |(identity_address, amount, height, spent_height)| OutputChange {
                identity_address,
                amount: Sats(amount),
                height,
                spent_height,
            },
        )
        .collect())
}

/// An output read by [`mined_or_spent`]: its holder, value, and the heights it was mined and
/// spent at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputChange {
    /// Holder.
    pub identity_address: String,
    /// Value.
    pub amount: Sats,
    /// Height mined at.
    pub height: Height,
    /// Height spent at, if spent.
    pub spent_height: Option<Height>,
}

/// Undoes a disconnected block: forgets outputs mined at `height` and un-spends outputs
/// spent at it. Returns the identities touched.
pub async fn undo_height(
    db: &impl ConnectionTrait,
    chain: &str,
    height: Height,
) -> StoreResult<HashSet<String>> {
    let touched: HashSet<String> = mined_or_spent(db, chain, height, height)
        .await?
        .into_iter()
        .map(|r| r.identity_address)
        .collect();
    subscriber_utxo::Entity::delete_many()
        .filter(subscriber_utxo::Column::Chain.eq(chain))
        .filter(subscriber_utxo::Column::Height.eq(height))
        .exec(db)
        .await?;
    subscriber_utxo::Entity::update_many()
        .col_expr(
            subscriber_utxo::Column::SpentHeight,
            Expr::value(Option::<i64>::None),
        )
        .col_expr(
            subscriber_utxo::Column::SpentTxid,
            Expr::value(Option::<String>::None),
        )
        .filter(subscriber_utxo::Column::Chain.eq(chain))
        .filter(subscriber_utxo::Column::SpentHeight.eq(height))
        .exec(db)
        .await?;
    Ok(touched)
}

/// Forgets every output of an identity (it no longer lists the pool's address).
pub async fn delete_identity(
    db: &impl ConnectionTrait,
    chain: &str,
    identity: &str,
) -> StoreResult<()> {
    subscriber_utxo::Entity::delete_many()
        .filter(subscriber_utxo::Column::Chain.eq(chain))
        .filter(of_identity(identity))
        .exec(db)
        .await?;
    Ok(())
}

/// Outputs of an identity unspent at `height` (mined at or below it, not spent at or below it).
pub async fn unspent_at(
    db: &impl ConnectionTrait,
    chain: &str,
    identity: &str,
    height: Height,
) -> StoreResult<Vec<Utxo>> {
    Ok(subscriber_utxo::Entity::find()
        .filter(subscriber_utxo::Column::Chain.eq(chain))
        .filter(of_identity(identity))
        .filter(subscriber_utxo::Column::Height.lte(height))
        .filter(unspent_after(height))
        .order_by_asc(subscriber_utxo::Column::Height)
        .order_by_asc(subscriber_utxo::Column::Txid)
        .all(db)
        .await?
        .into_iter()
        .map(from_row)
        .collect())
}

/// Every stored output of an identity, spent or not, in chain order.
pub async fn history(
    db: &impl ConnectionTrait,
    chain: &str,
    identity: &str,
) -> StoreResult<Vec<Utxo>> {
    Ok(subscriber_utxo::Entity::find()
        .filter(subscriber_utxo::Column::Chain.eq(chain))
        .filter(of_identity(identity))
        .order_by_asc(subscriber_utxo::Column::Height)
        .order_by_asc(subscriber_utxo::Column::Txid)
        .order_by_asc(subscriber_utxo::Column::Vout)
        .all(db)
        .await?
        .into_iter()
        .map(from_row)
        .collect())
}

/// How many outputs count against `max_utxos` at `height`: at least `min_amount`, not paid
/// by the pool identity, mined at or below `height` and unspent then.
pub async fn counted(
    db: &impl ConnectionTrait,
    chain: &str,
    identity: &str,
    height: Height,
    min_amount: Sats,
) -> StoreResult<u64> {
    Ok(subscriber_utxo::Entity::find()
        .filter(subscriber_utxo::Column::Chain.eq(chain))
        .filter(of_identity(identity))
        .filter(subscriber_utxo::Column::Height.lte(height))
        .filter(unspent_after(height))
        .filter(subscriber_utxo::Column::Amount.gte(min_amount.0))
        .filter(subscriber_utxo::Column::FromPool.eq(false))
        .count(db)
        .await?)
}

/// [`counted`] of each of `identities` (absent: none), one statement per 500.
pub async fn counted_many(
    db: &impl ConnectionTrait,
    chain: &str,
    identities: &[String],
    height: Height,
    min_amount: Sats,
) -> StoreResult<std::collections::HashMap<String, u64>> {
    let mut out = std::collections::HashMap::new();
    for slice in identities.chunks(super::IN_SLICE) {
        let rows: Vec<(String, i64)> = subscriber_utxo::Entity::find()
            .select_only()
            .column(subscriber_utxo::Column::IdentityAddress)
            .column_as(subscriber_utxo::Column::Id.count(), "n")
            .filter(subscriber_utxo::Column::Chain.eq(chain))
            .filter(of_identities(slice.iter().map(String::as_str)))
            .filter(subscriber_utxo::Column::Height.lte(height))
            .filter(unspent_after(height))
            .filter(subscriber_utxo::Column::Amount.gte(min_amount.0))
            .filter(subscriber_utxo::Column::FromPool.eq(false))
            .group_by(subscriber_utxo::Column::IdentityAddress)
            .into_tuple()
            .all(db)
            .await?;
        out.extend(
            rows.into_iter()
                .map(|(a, n)| (a, u64::try_from(n).unwrap_or_default())),
        );
    }
    Ok(out)
}

/// Identities whose outputs were mined or spent at `height`.
pub async fn changed_at(
    db: &impl ConnectionTrait,
    chain: &str,
    height: Height,
) -> StoreResult<HashSet<String>> {
    Ok(mined_or_spent(db, chain, height, height)
        .await?
        .into_iter()
        .map(|r| r.identity_address)
        .collect())
}

/// The eligible balance of an identity at `height` (§3): outputs mined at or below
/// `height − 150` and not spent before `height`. Eligibility of the subscriber itself is
/// the caller's to check.
pub async fn eligible_balance(
    db: &impl ConnectionTrait,
    chain: &str,
    identity: &str,
    height: Height,
) -> StoreResult<Sats> {
    Ok(eligible_balances(db, chain, &[identity.to_owned()], height)
        .await?
        .remove(identity)
        .unwrap_or(Sats::ZERO))
}

/// [`eligible_balance`] of each of `identities` (missing ones are zero), one statement per 500.
pub async fn eligible_balances(
    db: &impl ConnectionTrait,
    chain: &str,
    identities: &[String],
    height: Height,
) -> StoreResult<std::collections::HashMap<String, Sats>> {
    let mut out: std::collections::HashMap<String, Sats> =
        identities.iter().map(|i| (i.clone(), Sats::ZERO)).collect();
    for slice in identities.chunks(super::IN_SLICE) {
        // The identities' outputs through `ix_utxo_identity`, the heights checked here: with
        // the height range in the query, SQLite chose `ix_utxo_height` and read every output
        // of the chain below the height (900 µs a call at 1,000 subscribers: a third of the
        // dashboard query's database time).
        let rows = subscriber_utxo::Entity::find()
            .filter(subscriber_utxo::Column::Chain.eq(chain))
            .filter(of_identities(slice.iter().map(String::as_str)))
            .all(db)
            .await?;
        for r in rows {
            if r.height <= height - crate::domain::conditions::COOLDOWN_BLOCKS
                && r.spent_height.is_none_or(|s| s >= height)
                && let Some(total) = out.get_mut(&r.identity_address)
            {
                total.0 += r.amount;
            }
        }
    }
    Ok(out)
}

/// Outputs that may earn work in heights `first..=last`, by identity, merged where they earn
/// it over the same heights: each span is the summed amount of an identity's outputs that
/// first count at `mined + COOLDOWN_BLOCKS` (clamped to `first`) and last count at `spent`
/// (clamped to `last`). Work is linear in the amount, so the merged spans give every
/// identity exactly the work of its outputs one by one; at 100,000 subscribers with five old
/// outputs each the database returns 100,000 rows instead of 500,000 (BENCHMARKS.md, eighth
/// round).
pub async fn spans_for(
    db: &impl ConnectionTrait,
    chain: &str,
    first: Height,
    last: Height,
) -> StoreResult<std::collections::HashMap<String, Vec<crate::domain::split::OutputSpan>>> {
    use crate::domain::conditions::COOLDOWN_BLOCKS;
    // CASE rather than MAX/GREATEST: the same SQL on the three backends. The bounds are
    // heights the pool computed, never client input.
    let lo = format!(
        "CASE WHEN height + {COOLDOWN_BLOCKS} > {first} THEN height + {COOLDOWN_BLOCKS} ELSE {first} END"
    );
    let hi = format!(
        "CASE WHEN spent_height IS NULL OR spent_height > {last} THEN {last} ELSE spent_height END"
    );
    let rows: Vec<(String, i64, i64, i64)> = subscriber_utxo::Entity::find()
        .select_only()
        .column(subscriber_utxo::Column::IdentityAddress)
        .column_as(Expr::cust(lo), "lo")
        .column_as(Expr::cust(hi), "hi")
        .column_as(
            super::sum_i64(db.get_database_backend(), "amount"),
            "amount",
        )
        .filter(subscriber_utxo::Column::Chain.eq(chain))
        .filter(subscriber_utxo::Column::Height.lte(last - COOLDOWN_BLOCKS))
        .filter(
            Condition::any()
                .add(subscriber_utxo::Column::SpentHeight.is_null())
                .add(subscriber_utxo::Column::SpentHeight.gte(first)),
        )
        .filter(subscriber_utxo::Column::Amount.gt(0))
        .group_by(subscriber_utxo::Column::IdentityAddress)
        .group_by(Expr::cust("lo"))
        .group_by(Expr::cust("hi"))
        .into_tuple()
        .all(db)
        .await?;
    let mut out: std::collections::HashMap<String, Vec<crate::domain::split::OutputSpan>> =
        std::collections::HashMap::new();
    for (identity, lo, hi, amount) in rows {
        out.entry(identity)
            .or_default()
            .push(crate::domain::split::OutputSpan {
                amount: Sats(amount),
                mined: lo - COOLDOWN_BLOCKS,
                spent: Some(hi),
            });
    }
    Ok(out)
}

/// [`history`] of each of `identities`, one statement per 500.
pub async fn history_of(
    db: &impl ConnectionTrait,
    chain: &str,
    identities: &[String],
) -> StoreResult<std::collections::HashMap<String, Vec<Utxo>>> {
    let mut out: std::collections::HashMap<String, Vec<Utxo>> = std::collections::HashMap::new();
    for slice in identities.chunks(super::IN_SLICE) {
        let rows = subscriber_utxo::Entity::find()
            .filter(subscriber_utxo::Column::Chain.eq(chain))
            .filter(of_identities(slice.iter().map(String::as_str)))
            .order_by_asc(subscriber_utxo::Column::Height)
            .order_by_asc(subscriber_utxo::Column::Txid)
            .order_by_asc(subscriber_utxo::Column::Vout)
            .all(db)
            .await?;
        for r in rows {
            let u = from_row(r);
            out.entry(u.identity_address.clone()).or_default().push(u);
        }
    }
    Ok(out)
}
