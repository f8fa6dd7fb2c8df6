//! Chain progress: what the pool knows about each configured chain, the blocks the
//! ChainWatcher connected, and the last (height, hash) each chain actor committed.

use entity::{actor_cursor, block, chain_info};
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter,
    QueryOrder,
};

use super::{StoreResult, now};
use crate::domain::Height;

/// Records a configured chain once; later calls keep what is stored.
pub async fn ensure_chain(
    db: &impl ConnectionTrait,
    chain: &str,
) -> StoreResult<chain_info::Model> {
    if let Some(existing) = get_chain(db, chain).await? {
        return Ok(existing);
    }
    let row = chain_info::ActiveModel {
        chain: Set(chain.to_owned()),
        chain_id: Set(None),
        start_height: Set(None),
        unwind_from: Set(None),
        created_at: Set(now()),
    };
    match row.insert(db).await {
        Ok(model) => Ok(model),
        // Another process inserted it in between: read theirs.
        Err(e) => get_chain(db, chain).await?.ok_or(super::StoreError::Db(e)),
    }
}

/// What is stored about a chain.
pub async fn get_chain(
    db: &impl ConnectionTrait,
    chain: &str,
) -> StoreResult<Option<chain_info::Model>> {
    Ok(chain_info::Entity::find_by_id(chain.to_owned())
        .one(db)
        .await?)
}

/// Stores the chain's currency i-address once the daemon has told it.
pub async fn set_chain_id(
    db: &impl ConnectionTrait,
    chain: &str,
    chain_id: &str,
) -> StoreResult<()> {
    chain_info::Entity::update_many()
        .col_expr(chain_info::Column::ChainId, chain_id.into())
        .filter(chain_info::Column::Chain.eq(chain))
        .exec(db)
        .await?;
    // `Pool.chainId` shows it.
    super::lease::touch(db, chain).await?;
    Ok(())
}

/// Fixes the first height the pool processes, if not fixed yet. Returns the height in force.
pub async fn fix_start_height(
    db: &impl ConnectionTrait,
    chain: &str,
    height: Height,
) -> StoreResult<Height> {
    chain_info::Entity::update_many()
        .col_expr(chain_info::Column::StartHeight, height.into())
        .filter(chain_info::Column::Chain.eq(chain))
        .filter(chain_info::Column::StartHeight.is_null())
        .exec(db)
        .await?;
    // Outside a fenced transaction: API read caches must see it.
    super::lease::touch(db, chain).await?;
    let stored = get_chain(db, chain).await?.and_then(|c| c.start_height);
    Ok(stored.unwrap_or(height))
}

/// A connected block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockRef {
    /// Its height.
    pub height: Height,
    /// Its hash.
    pub hash: String,
    /// The hash of the block below.
    pub prev_hash: String,
}

impl From<block::Model> for BlockRef {
    fn from(m: block::Model) -> Self {
        BlockRef {
            height: m.height,
            hash: m.hash,
            prev_hash: m.prev_hash,
        }
    }
}

/// Records connected blocks (one statement); connecting the same blocks again changes
/// nothing.
pub async fn insert_blocks(
    db: &impl ConnectionTrait,
    chain: &str,
    blocks: &[BlockRef],
) -> StoreResult<()> {
    if blocks.is_empty() {
        return Ok(());
    }
    let at = now();
    let rows = blocks.iter().map(|b| block::ActiveModel {
        chain: Set(chain.to_owned()),
        height: Set(b.height),
        hash: Set(b.hash.clone()),
        prev_hash: Set(b.prev_hash.clone()),
        processed_at: Set(at),
    });
    block::Entity::insert_many(rows)
        .on_conflict(
            OnConflict::columns([block::Column::Chain, block::Column::Height])
                .update_columns([
                    block::Column::Hash,
                    block::Column::PrevHash,
                    block::Column::ProcessedAt,
                ])
                .to_owned(),
        )
        .exec_without_returning(db)
        .await?;
    // Outside a fenced transaction: API read caches must see it.
    super::lease::touch(db, chain).await?;
    Ok(())
}

/// Records a connected block; connecting the same block again changes nothing.
pub async fn insert_block(db: &impl ConnectionTrait, chain: &str, b: &BlockRef) -> StoreResult<()> {
    insert_blocks(db, chain, std::slice::from_ref(b)).await
}

/// The connected block at `height`.
pub async fn block_at(
    db: &impl ConnectionTrait,
    chain: &str,
    height: Height,
) -> StoreResult<Option<BlockRef>> {
    Ok(block::Entity::find_by_id((chain.to_owned(), height))
        .one(db)
        .await?
        .map(Into::into))
}

/// The connected blocks from `low` to `high` (inclusive), highest first.
pub async fn blocks_between(
    db: &impl ConnectionTrait,
    chain: &str,
    low: Height,
    high: Height,
) -> StoreResult<Vec<BlockRef>> {
    Ok(block::Entity::find()
        .filter(block::Column::Chain.eq(chain))
        .filter(block::Column::Height.between(low, high))
        .order_by_desc(block::Column::Height)
        .all(db)
        .await?
        .into_iter()
        .map(Into::into)
        .collect())
}

/// Records (or, with `None`, clears) the highest block the pool held when the reorganisation
/// under way started: its depth is counted from there across retries and restarts.
pub async fn set_unwind_from(
    db: &impl ConnectionTrait,
    chain: &str,
    height: Option<Height>,
) -> StoreResult<()> {
    chain_info::Entity::update_many()
        .col_expr(chain_info::Column::UnwindFrom, height.into())
        .filter(chain_info::Column::Chain.eq(chain))
        .exec(db)
        .await?;
    Ok(())
}

/// The highest connected block.
pub async fn tip(db: &impl ConnectionTrait, chain: &str) -> StoreResult<Option<BlockRef>> {
    Ok(block::Entity::find()
        .filter(block::Column::Chain.eq(chain))
        .order_by_desc(block::Column::Height)
        .one(db)
        .await?
        .map(Into::into))
}

/// Forgets a disconnected block.
pub async fn delete_block(
    db: &impl ConnectionTrait,
    chain: &str,
    height: Height,
) -> StoreResult<()> {
    block::Entity::delete_by_id((chain.to_owned(), height))
        .exec(db)
        .await?;
    // Outside a fenced transaction: API read caches must see it.
    super::lease::touch(db, chain).await?;
    Ok(())
}

/// The highest height any chain actor committed on `chain` (its cursor), if any.
pub async fn highest_cursor(db: &impl ConnectionTrait, chain: &str) -> StoreResult<Option<Height>> {
    use sea_orm::QuerySelect;
    let heights: Vec<Height> = actor_cursor::Entity::find()
        .select_only()
        .column(actor_cursor::Column::Height)
        .filter(actor_cursor::Column::Chain.eq(chain))
        .into_tuple()
        .all(db)
        .await?;
    Ok(heights.into_iter().max())
}

/// The last (height, hash) `actor` committed on `chain`.
pub async fn cursor(
    db: &impl ConnectionTrait,
    chain: &str,
    actor: &str,
) -> StoreResult<Option<(Height, String)>> {
    Ok(
        actor_cursor::Entity::find_by_id((chain.to_owned(), actor.to_owned()))
            .one(db)
            .await?
            .map(|m| (m.height, m.hash)),
    )
}

/// What a chain actor must do before it applies `blocks` (consecutive heights, each
/// following the one before): skip the first `.0` of them, which it applied already (its
/// cursor is at one of them, with the same hash: the blocks below it are the same too, as
/// hashes chain), and first undo its own blocks `.1` from its cursor down to the first height
/// it applies (newest first, each as (height, hash, the hash below)) — its cursor is at or past
/// that height on another branch when the process stopped between its commit and the
/// watcher's record of a disconnection.
pub async fn to_apply(
    db: &impl ConnectionTrait,
    chain: &str,
    actor: &str,
    blocks: &[(Height, &str)],
) -> StoreResult<(usize, Vec<(Height, String, String)>)> {
    let (Some(&(first, _)), Some((mut at, mut at_hash))) =
        (blocks.first(), cursor(db, chain, actor).await?)
    else {
        return Ok((0, Vec::new()));
    };
    if let Some(i) = blocks
        .iter()
        .position(|&(h, hash)| h == at && hash == at_hash)
    {
        return Ok((i + 1, Vec::new()));
    }
    let mut undo = Vec::new();
    while at >= first {
        let prev = block_at(db, chain, at - 1)
            .await?
            .map(|b| b.hash)
            .unwrap_or_default();
        undo.push((at, at_hash, prev.clone()));
        at -= 1;
        at_hash = prev;
    }
    Ok((0, undo))
}

/// The cursor an actor committed last, as the actor remembers it: blocks that follow it need
/// no read of `actor_cursor` ([`KnownCursor::to_apply`]). It is forgotten whenever the actor
/// cannot be sure of it (any error, a disconnection), and each leadership term starts its
/// actors, and so this, empty.
#[derive(Debug, Default)]
pub struct KnownCursor(Option<(Height, String)>);

impl KnownCursor {
    /// [`to_apply`], without a read when the first of `blocks` follows the remembered cursor
    /// (`first_prev` is its `previousblockhash`): then nothing is skipped or undone. Forgets
    /// the cursor: call [`KnownCursor::committed`] after the commit.
    pub async fn to_apply(
        &mut self,
        db: &impl ConnectionTrait,
        chain: &str,
        actor: &str,
        blocks: &[(Height, &str)],
        first_prev: Option<&str>,
    ) -> StoreResult<(usize, Vec<(Height, String, String)>)> {
        let follows = match (self.0.take(), blocks.first()) {
            (Some((at, at_hash)), Some(&(first, _))) => {
                first == at + 1 && first_prev == Some(at_hash.as_str())
            }
            _ => false,
        };
        if follows {
            return Ok((0, Vec::new()));
        }
        to_apply(db, chain, actor, blocks).await
    }

    /// The actor committed its cursor at (height, hash).
    pub fn committed(&mut self, height: Height, hash: &str) {
        self.0 = Some((height, hash.to_owned()));
    }

    /// The actor's cursor may have moved without this knowing where to.
    pub fn forget(&mut self) {
        self.0 = None;
    }
}

/// Records that `actor` committed (height, hash); call it in the transaction of that work.
pub async fn set_cursor(
    db: &impl ConnectionTrait,
    chain: &str,
    actor: &str,
    height: Height,
    hash: &str,
) -> StoreResult<()> {
    let row = actor_cursor::ActiveModel {
        chain: Set(chain.to_owned()),
        actor: Set(actor.to_owned()),
        height: Set(height),
        hash: Set(hash.to_owned()),
        updated_at: Set(now()),
    };
    actor_cursor::Entity::insert(row)
        .on_conflict(
            OnConflict::columns([actor_cursor::Column::Chain, actor_cursor::Column::Actor])
                .update_columns([
                    actor_cursor::Column::Height,
                    actor_cursor::Column::Hash,
                    actor_cursor::Column::UpdatedAt,
                ])
                .to_owned(),
        )
        .exec_without_returning(db)
        .await?;
    Ok(())
}

/// The processed height: the highest connected block, else the height before the start
/// height (0 when neither is known yet).
pub async fn processed_height(db: &impl ConnectionTrait, chain: &str) -> StoreResult<Height> {
    if let Some(t) = tip(db, chain).await? {
        return Ok(t.height);
    }
    let start = get_chain(db, chain).await?.and_then(|c| c.start_height);
    Ok(start.map_or(0, |s| (s - 1).max(0)))
}
