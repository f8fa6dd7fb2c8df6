//! Chain events the ChainWatcher sends, one block at a time, to the actors that follow the
//! chain (the SubscriberRegistry first, then the StakeTracker). A handler commits the block's
//! effects and its cursor in one transaction, and handling the same block twice changes
//! nothing.

use std::sync::Arc;

use actix::Message;

use super::ActorError;
use crate::daemon::types::{Block, Tx};

/// Blocks joined the main chain at the processed tip + 1: one at the daemon's tip, several
/// consecutive ones (each following the one before) while catching up, which an actor
/// applies in one transaction.
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<(), ActorError>")]
pub struct BlockConnected {
    /// The blocks with their transactions (`getblock … 2`), lowest first.
    pub blocks: Vec<Arc<Block<Tx>>>,
    /// The network's staking supply, asked when the last block is the daemon's tip (live).
    pub network_staking_supply: Option<crate::domain::Sats>,
}

/// The processed tip left the main chain (a reorganisation); undo what it did.
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<(), ActorError>")]
pub struct BlockDisconnected {
    /// Its height.
    pub height: i64,
    /// Its hash.
    pub hash: String,
    /// The hash below it, which becomes the processed tip.
    pub prev_hash: String,
}

/// Stop: the process is shutting down. Work in flight is abandoned; its transaction rolls
/// back and the block is processed again at the next start.
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "()")]
pub struct Shutdown;

/// Rows were committed to the event log: the Notifier reads and publishes them now (rather
/// than at its next timer tick). Sent by every actor that writes events, after its commit.
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "()")]
pub struct EventsWritten;

/// Every actor that follows the chain committed the blocks up to the daemon's tip, `height`:
/// the PayoutManager follows its payments and looks whether a cycle is due.
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "()")]
pub struct BlockProcessed {
    /// The block's height.
    pub height: crate::domain::Height,
}

/// The StakeTracker split `stakes` matured stakes at `height`: credits are on the books.
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "()")]
pub struct StakesMatured {
    /// The height they matured at.
    pub height: crate::domain::Height,
    /// How many.
    pub stakes: usize,
}
