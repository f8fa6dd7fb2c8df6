//! The simulated chain: blocks (PoW and PoS), transactions, the UTXO set with the spent and
//! address indexes, identities with their full history, a mempool and the pool's wallet.
//!
//! Every index is derived from the main chain: connecting a block applies it, and a
//! reorganisation rebuilds the indexes by replaying the new main chain. Blocks that fall off
//! the main chain stay retrievable by hash (`confirmations: -1`), as in verusd.

use std::collections::{HashMap, HashSet};

use crate::ids::{self, Rng};

/// `FLAG_LOCKED`: delay-locked; `timelock` is the unlock delay in blocks.
pub const FLAG_LOCKED: u32 = 0x2;
/// `FLAG_REVOKED`.
pub const FLAG_REVOKED: u32 = 0x8000;
/// The StakeGuard contract's address (the other destination of every stake reward).
pub const STAKEGUARD_ADDRESS: &str = "RCG8KwJNDVwpUBcdoa6AoHqHVJsA1uMYMR";
/// The fee pool's crypto-condition address.
pub const FEEPOOL_ADDRESS: &str = "RQ55dLQ7uGnLx8scXfkaFV6QS6qVBGyxAG";
/// Blocks a wallet transaction stays valid on VRSC (verusd's default `-txexpirydelta`; PBaaS
/// chains with faster blocks use up to 60).
pub const TX_EXPIRY_DELTA: i64 = 20;
/// The network fee of a wallet transaction.
pub const DEFAULT_FEE: i64 = 10_000;

/// Chain parameters.
#[derive(Debug, Clone)]
pub struct Params {
    /// Currency name (`VRSCTEST`).
    pub name: String,
    /// Currency i-address.
    pub chain_id: String,
    /// The pool's identity, which receives stake rewards (`-defaultid`).
    pub pool_identity: String,
    /// The pool's R-address (its key is in the wallet).
    pub pool_r_address: String,
    /// Block subsidy in satoshis.
    pub subsidy: i64,
    /// Coinbase maturity in blocks.
    pub coinbase_maturity: i64,
    /// Seconds between blocks; printed by `getcurrency` as `blocktime` when not 60 (verusd
    /// derives the coinbase maturity from it: keep the two consistent).
    pub block_time: i64,
    /// Blocks a wallet transaction may be mined in after it is made (`-txexpirydelta`).
    pub tx_expiry_delta: i64,
    /// Minimum stake age (`VERUS_MIN_STAKEAGE`).
    pub stake_age: i64,
    /// `getcurrency` options bit 0x4.
    pub id_staking: bool,
    /// Time of the genesis block; blocks follow every 60 s of simulated time.
    pub genesis_time: i64,
    /// Seed for hashes and random choices.
    pub seed: u64,
}

impl Default for Params {
    fn default() -> Self {
        let chain_id = "iJhCezBExJHvtyH3fGhNnt2NhU4Ztkf2yq".to_owned();
        Params {
            name: "VRSCTEST".to_owned(),
            pool_identity: ids::identity_address("pool", &chain_id),
            pool_r_address: ids::r_address("pool-primary-key"),
            chain_id,
            subsidy: 300_000_000,
            coinbase_maturity: 100,
            block_time: 60,
            tx_expiry_delta: TX_EXPIRY_DELTA,
            stake_age: 150,
            id_staking: false,
            genesis_time: 1_761_000_000,
            seed: 42,
        }
    }
}

/// A transaction output reference.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OutPoint {
    /// The transaction.
    pub txid: String,
    /// Its output index.
    pub vout: u32,
}

/// An identity definition (`identityprimary`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityDef {
    /// 3 = PBaaS.
    pub version: u32,
    /// Flag bits (`FLAG_LOCKED`, `FLAG_REVOKED`, …).
    pub flags: u32,
    /// Primary addresses (R-addresses).
    pub primary_addresses: Vec<String>,
    /// Signatures required.
    pub minimum_signatures: u32,
    /// Name without parent.
    pub name: String,
    /// i-address.
    pub identity_address: String,
    /// Parent currency i-address.
    pub parent: String,
    /// System i-address.
    pub system_id: String,
    /// Revocation authority (an i-address).
    pub revocation_authority: String,
    /// Recovery authority (an i-address).
    pub recovery_authority: String,
    /// Unlock delay (locked) or unlock height (unlocking), in blocks.
    pub timelock: i64,
}

impl IdentityDef {
    /// Whether the identity is revoked.
    pub fn revoked(&self) -> bool {
        self.flags & FLAG_REVOKED != 0
    }
}

/// What an output pays to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Script {
    /// A plain key address.
    PubKeyHash(String),
    /// Coins held by an identity (a crypto-condition output).
    Identity(String),
    /// An identity's definition (its primary output).
    IdentityDefinition(Box<IdentityDef>),
    /// A stake reward: spendable by the destination after maturity, or by a StakeGuard proof.
    StakeGuard(String),
    /// The coinbase's fee-pool output.
    FeePool,
    /// `OP_RETURN` data (the stake parameters).
    NullData,
}

impl Script {
    /// Every destination, as verusd lists them in `scriptPubKey.addresses`.
    pub fn addresses(&self) -> Vec<String> {
        match self {
            Script::PubKeyHash(a) | Script::Identity(a) => vec![a.clone()],
            Script::IdentityDefinition(def) => vec![def.identity_address.clone()],
            Script::StakeGuard(dest) => vec![dest.clone(), STAKEGUARD_ADDRESS.to_owned()],
            Script::FeePool => vec![FEEPOOL_ADDRESS.to_owned()],
            Script::NullData => Vec::new(),
        }
    }

    /// The first destination: the address the address index files the output under.
    pub fn first_destination(&self) -> Option<String> {
        self.addresses().into_iter().next()
    }

    /// Whether the output can ever be spent.
    pub fn spendable(&self) -> bool {
        !matches!(self, Script::FeePool | Script::NullData)
    }
}

/// An output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxOut {
    /// Satoshis.
    pub value: i64,
    /// Destination.
    pub script: Script,
}

/// A transaction.
#[derive(Debug, Clone)]
pub struct Tx {
    /// Its id.
    pub txid: String,
    /// Spent outputs (empty for the coinbase and for simulated faucet payments).
    pub inputs: Vec<OutPoint>,
    /// Whether it is a coinbase.
    pub coinbase: bool,
    /// Outputs.
    pub outputs: Vec<TxOut>,
    /// Last height it may be mined at (0 = never expires).
    pub expiry_height: i64,
    /// A StakeGuard proof may spend an immature stake reward.
    pub stakeguard_proof: bool,
    /// Simulated time it was created.
    pub time: i64,
}

/// A block.
#[derive(Debug, Clone)]
pub struct Block {
    /// Its hash.
    pub hash: String,
    /// Height.
    pub height: i64,
    /// The hash below.
    pub prev_hash: String,
    /// Block time.
    pub time: i64,
    /// Transaction ids in order: coinbase first, the stake transaction last in a PoS block.
    pub txids: Vec<String>,
    /// For a PoS block: the staked output.
    pub stake_source: Option<OutPoint>,
    /// For a PoS block: who staked (the stake transaction's first destination).
    pub staker: Option<String>,
}

impl Block {
    /// Proof of stake?
    pub fn is_stake(&self) -> bool {
        self.stake_source.is_some()
    }
}

/// An unspent output as the index knows it.
#[derive(Debug, Clone)]
pub struct Utxo {
    /// Satoshis.
    pub value: i64,
    /// Destination.
    pub script: Script,
    /// Height mined at.
    pub height: i64,
    /// From a coinbase?
    pub coinbase: bool,
}

/// Where an output was spent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spend {
    /// The spending transaction.
    pub txid: String,
    /// Its input index.
    pub index: u32,
    /// The height it was mined at.
    pub height: i64,
}

/// One entry of the address index (`getaddressdeltas`).
#[derive(Debug, Clone)]
pub struct Delta {
    /// Transaction.
    pub txid: String,
    /// Output index (credit) or input index (debit).
    pub index: u32,
    /// Positive for outputs, negative for spends.
    pub satoshis: i64,
    /// Height.
    pub height: i64,
    /// Position of the transaction in its block.
    pub blockindex: u32,
}

/// One version of an identity.
#[derive(Debug, Clone)]
pub struct IdVersion {
    /// Height of the transaction that holds it.
    pub height: i64,
    /// That transaction.
    pub txid: String,
    /// Its output index.
    pub vout: u32,
    /// The definition.
    pub def: IdentityDef,
}

#[derive(Debug, Default, Clone)]
struct Index {
    utxos: HashMap<OutPoint, Utxo>,
    spent: HashMap<OutPoint, Spend>,
    tx_block: HashMap<String, (String, i64, u32)>,
    deltas: HashMap<String, Vec<Delta>>,
    utxos_by_address: HashMap<String, HashSet<OutPoint>>,
    identities: HashMap<String, Vec<IdVersion>>,
    names: HashMap<String, String>,
}

/// A scripted failure: what a test made the chain refuse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimError {
    /// JSON-RPC error code.
    pub code: i64,
    /// Message.
    pub message: String,
}

impl SimError {
    /// An error with verusd's generic code −1 unless given.
    pub fn new(code: i64, message: impl Into<String>) -> SimError {
        SimError {
            code,
            message: message.into(),
        }
    }
}

/// What kind of block to mine.
#[derive(Debug, Clone)]
pub enum BlockKind {
    /// Proof of work, reward to a miner outside the pool.
    Work,
    /// Proof of stake by `staker` (an identity or R-address), from its largest eligible output
    /// or the given one; the reward goes to the pool identity (`-defaultid`).
    Stake {
        /// Who stakes.
        staker: String,
        /// Which output, if not the largest eligible one.
        source: Option<OutPoint>,
    },
}

/// Why an output may not stake a block (rendered as the message a refused stake gets).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Ineligible {
    NotStakeable,
    ImmatureCoinbase,
    Young { age: i64, needs: i64 },
    UnknownIdentity,
    Revoked,
    IdentityUpdated { since: i64, needs: i64 },
}

impl From<Ineligible> for String {
    fn from(why: Ineligible) -> String {
        match why {
            Ineligible::NotStakeable => "not a stakeable output".into(),
            Ineligible::ImmatureCoinbase => "immature coinbase".into(),
            Ineligible::Young { age, needs } => {
                format!("output is {age} blocks old; staking needs {needs}")
            }
            Ineligible::UnknownIdentity => "unknown identity".into(),
            Ineligible::Revoked => "identity revoked".into(),
            Ineligible::IdentityUpdated { since, needs } => {
                format!("identity updated {since} blocks ago; staking needs {needs}")
            }
        }
    }
}

/// The whole simulated chain.
#[derive(Debug, Clone)]
pub struct Chain {
    /// Parameters.
    pub params: Params,
    blocks: HashMap<String, Block>,
    main: Vec<String>,
    index: Index,
    txs: HashMap<String, Tx>,
    mempool: Vec<String>,
    counter: u64,
    /// Random choices of the timer.
    pub rng: Rng,
    /// When set, blocks leave the mempool alone (payments stay unmined).
    pub hold_mempool: bool,
    /// What `getmininginfo.staking` says.
    pub staking: bool,
    /// Weight of stakers outside the pool, in satoshis (for the block timer and
    /// `stakingsupply`).
    pub external_supply: i64,
    announcements: Vec<String>,
    /// The on-chain staking supply counted for a tip: (its hash, the Σ).
    supply_count: Option<(String, i64)>,
    miner: String,
    /// Transactions the wallet recorded that are not in the mempool (it refused them): their
    /// inputs count as spent for the wallet until they expire.
    held: Vec<String>,
}

impl Chain {
    /// A chain with only its genesis block.
    pub fn new(params: Params) -> Chain {
        let mut chain = Chain {
            rng: Rng::new(params.seed),
            miner: ids::r_address(&format!("miner:{}", params.seed)),
            params,
            blocks: HashMap::new(),
            main: Vec::new(),
            index: Index::default(),
            txs: HashMap::new(),
            mempool: Vec::new(),
            counter: 0,
            hold_mempool: false,
            staking: true,
            external_supply: 0,
            announcements: Vec::new(),
            supply_count: None,
            held: Vec::new(),
        };
        let coinbase = chain.coinbase_tx(
            0,
            chain.params.subsidy,
            Script::PubKeyHash(chain.miner.clone()),
        );
        let genesis = Block {
            hash: ids::hash_hex(&format!("genesis:{}", chain.params.seed), 12),
            height: 0,
            prev_hash: "0".repeat(64),
            time: chain.params.genesis_time,
            txids: vec![coinbase.txid.clone()],
            stake_source: None,
            staker: None,
        };
        chain.txs.insert(coinbase.txid.clone(), coinbase);
        chain.connect(genesis);
        chain.announcements.clear();
        chain
    }

    fn next_id(&mut self, kind: &str) -> String {
        self.counter += 1;
        ids::hash_hex(&format!("{kind}:{}:{}", self.params.seed, self.counter), 0)
    }

    fn coinbase_tx(&mut self, height: i64, value: i64, script: Script) -> Tx {
        let mut outputs = vec![TxOut { value, script }];
        if matches!(outputs[0].script, Script::StakeGuard(_)) {
            outputs.push(TxOut {
                value: 0,
                script: Script::FeePool,
            });
        }
        Tx {
            txid: self.next_id("coinbase"),
            inputs: Vec::new(),
            coinbase: true,
            outputs,
            expiry_height: 0,
            stakeguard_proof: false,
            time: self.params.genesis_time + 60 * height,
        }
    }

    // ----- reading -------------------------------------------------------------------------

    /// Tip height.
    pub fn tip_height(&self) -> i64 {
        self.main.len() as i64 - 1
    }

    /// Tip hash.
    pub fn tip_hash(&self) -> &str {
        self.main.last().map_or("", String::as_str)
    }

    /// A block by hash (main chain or stale).
    pub fn block(&self, hash: &str) -> Option<&Block> {
        self.blocks.get(hash)
    }

    /// The main-chain block at `height`.
    pub fn block_at(&self, height: i64) -> Option<&Block> {
        usize::try_from(height)
            .ok()
            .and_then(|h| self.main.get(h))
            .and_then(|hash| self.blocks.get(hash))
    }

    /// Whether the block is on the main chain.
    pub fn on_main_chain(&self, block: &Block) -> bool {
        self.block_at(block.height)
            .is_some_and(|b| b.hash == block.hash)
    }

    /// verusd's confirmations: `tip − height + 1` on the main chain, −1 off it.
    pub fn confirmations(&self, block: &Block) -> i64 {
        if self.on_main_chain(block) {
            self.tip_height() - block.height + 1
        } else {
            -1
        }
    }

    /// The next main-chain block's hash.
    pub fn next_hash(&self, block: &Block) -> Option<&str> {
        if !self.on_main_chain(block) {
            return None;
        }
        self.block_at(block.height + 1).map(|b| b.hash.as_str())
    }

    /// A transaction by id (mined, stale or in the mempool).
    pub fn tx(&self, txid: &str) -> Option<&Tx> {
        self.txs.get(txid)
    }

    /// Where a transaction is mined on the main chain: (block hash, height, position).
    pub fn tx_location(&self, txid: &str) -> Option<&(String, i64, u32)> {
        self.index.tx_block.get(txid)
    }

    /// The output an input spends.
    pub fn prevout(&self, op: &OutPoint) -> Option<&TxOut> {
        self.txs
            .get(&op.txid)
            .and_then(|t| t.outputs.get(op.vout as usize))
    }

    /// Where an output was spent on the main chain.
    pub fn spent(&self, op: &OutPoint) -> Option<&Spend> {
        self.index.spent.get(op)
    }

    /// An unspent output.
    pub fn utxo(&self, op: &OutPoint) -> Option<&Utxo> {
        self.index.utxos.get(op)
    }

    /// Unspent outputs of an address, sorted by height.
    pub fn utxos_of(&self, address: &str) -> Vec<(OutPoint, Utxo)> {
        let mut out: Vec<(OutPoint, Utxo)> = self
            .index
            .utxos_by_address
            .get(address)
            .into_iter()
            .flatten()
            .filter_map(|op| self.index.utxos.get(op).map(|u| (op.clone(), u.clone())))
            .collect();
        out.sort_by(|a, b| (a.1.height, &a.0).cmp(&(b.1.height, &b.0)));
        out
    }

    /// Address index entries of an address, in chain order.
    pub fn deltas_of(&self, address: &str) -> &[Delta] {
        self.index.deltas.get(address).map_or(&[], Vec::as_slice)
    }

    /// Transaction ids in the mempool, oldest first.
    pub fn mempool(&self) -> &[String] {
        &self.mempool
    }

    /// The i-address of an identity given by i-address or name (`alice@`, `alice.VRSCTEST@`).
    pub fn resolve_identity(&self, text: &str) -> Option<String> {
        if self.index.identities.contains_key(text) {
            return Some(text.to_owned());
        }
        let name = text.strip_suffix('@')?;
        let suffix = format!(".{}", self.params.name.to_lowercase());
        let lower = name.to_lowercase();
        let base = lower.strip_suffix(&suffix).unwrap_or(&lower);
        self.index.names.get(base).cloned()
    }

    /// The identity version in effect at `height` (the latest mined at or below it).
    pub fn identity_at(&self, address: &str, height: i64) -> Option<&IdVersion> {
        self.index
            .identities
            .get(address)?
            .iter()
            .rev()
            .find(|v| v.height <= height)
    }

    /// Every identity's current version.
    pub fn identities(&self) -> impl Iterator<Item = &IdVersion> {
        self.index.identities.values().filter_map(|v| v.last())
    }

    /// Every version of an identity, oldest first.
    pub fn identity_history(&self, address: &str) -> &[IdVersion] {
        self.index
            .identities
            .get(address)
            .map_or(&[], Vec::as_slice)
    }

    /// Whether the pool's wallet can spend for `address` (its keys alone satisfy it).
    pub fn wallet_can_spend(&self, address: &str) -> bool {
        if address == self.params.pool_r_address || address == self.params.pool_identity {
            return true;
        }
        self.identity_at(address, self.tip_height())
            .is_some_and(|v| {
                !v.def.revoked()
                    && v.def.minimum_signatures == 1
                    && v.def
                        .primary_addresses
                        .contains(&self.params.pool_r_address)
            })
    }

    /// Whether `op` may stake the block at `height`: old enough, unspent, and its identity
    /// not updated within the stake age.
    pub fn stake_eligible(&self, op: &OutPoint, height: i64) -> Result<&Utxo, String> {
        let utxo = self
            .index
            .utxos
            .get(op)
            .ok_or_else(|| format!("{}:{} is not unspent", op.txid, op.vout))?;
        self.output_may_stake(utxo, height)?;
        if let Script::Identity(id) = &utxo.script {
            self.identity_may_stake(id, height)?;
        }
        Ok(utxo)
    }

    /// What `utxo` itself needs to stake the block at `height`: a stakeable script, a mature
    /// coinbase, the stake age (its identity is [`Chain::identity_may_stake`]'s part).
    fn output_may_stake(&self, utxo: &Utxo, height: i64) -> Result<(), Ineligible> {
        if !utxo.script.spendable()
            || matches!(utxo.script, Script::IdentityDefinition(_))
            || utxo.value <= 0
        {
            return Err(Ineligible::NotStakeable);
        }
        if utxo.coinbase && height - utxo.height < self.params.coinbase_maturity {
            return Err(Ineligible::ImmatureCoinbase);
        }
        let age = height - utxo.height;
        if age < self.params.stake_age {
            return Err(Ineligible::Young {
                age,
                needs: self.params.stake_age,
            });
        }
        Ok(())
    }

    /// Whether the outputs of identity `id` may stake the block at `height`: it exists, is
    /// not revoked, and was not updated within the stake age.
    fn identity_may_stake(&self, id: &str, height: i64) -> Result<(), Ineligible> {
        let version = self
            .identity_at(id, height - 1)
            .ok_or(Ineligible::UnknownIdentity)?;
        if version.def.revoked() {
            return Err(Ineligible::Revoked);
        }
        let since = height - version.height;
        if since < self.params.stake_age {
            return Err(Ineligible::IdentityUpdated {
                since,
                needs: self.params.stake_age,
            });
        }
        Ok(())
    }

    /// Σ of outputs that may stake the next block (the network's staking supply), plus the
    /// configured supply of stakers outside the simulation.
    ///
    /// verusd estimates this figure from the last 100 blocks' proof-of-stake targets, so
    /// `getmininginfo` costs it the same at any number of outputs. The simulator's figure is
    /// exact; it is counted once per tip ([`Chain::count_staking_supply`], when the tip is
    /// announced) so that answering stays as cheap as verusd's. Counted here when the tip has
    /// no count yet.
    pub fn staking_supply(&self) -> i64 {
        let on_chain = match &self.supply_count {
            Some((tip, n)) if tip == self.tip_hash() => *n,
            _ => self.eligible_on_chain(),
        };
        on_chain + self.external_supply
    }

    /// Counts the on-chain staking supply of the current tip, for [`Chain::staking_supply`].
    pub fn count_staking_supply(&mut self) {
        if !matches!(&self.supply_count, Some((tip, _)) if tip == self.tip_hash()) {
            self.supply_count = Some((self.tip_hash().to_owned(), self.eligible_on_chain()));
        }
    }

    /// Σ of the outputs that may stake the next block: every output's own conditions, and
    /// each identity's once.
    fn eligible_on_chain(&self) -> i64 {
        let next = self.tip_height() + 1;
        let mut identities: HashMap<&str, bool> = HashMap::new();
        self.index
            .utxos
            .values()
            .filter(|u| self.output_may_stake(u, next).is_ok())
            .filter(|u| match &u.script {
                Script::Identity(id) => *identities
                    .entry(id.as_str())
                    .or_insert_with(|| self.identity_may_stake(id, next).is_ok()),
                _ => true,
            })
            .map(|u| u.value)
            .sum()
    }

    /// Hashes announced since the last call (each new tip; only the final tip of a reorg).
    pub fn take_announcements(&mut self) -> Vec<String> {
        std::mem::take(&mut self.announcements)
    }

    // ----- writing -------------------------------------------------------------------------

    fn connect(&mut self, block: Block) {
        Self::apply(&mut self.index, &block, &self.txs);
        self.main.push(block.hash.clone());
        self.announcements.push(block.hash.clone());
        self.blocks.insert(block.hash.clone(), block);
    }

    fn apply(index: &mut Index, block: &Block, txs: &HashMap<String, Tx>) {
        for (pos, txid) in block.txids.iter().enumerate() {
            let Some(tx) = txs.get(txid) else { continue };
            index
                .tx_block
                .insert(txid.clone(), (block.hash.clone(), block.height, pos as u32));
            for (i, op) in tx.inputs.iter().enumerate() {
                if let Some(prev) = index.utxos.remove(op)
                    && let Some(addr) = prev.script.first_destination()
                {
                    if let Some(set) = index.utxos_by_address.get_mut(&addr) {
                        set.remove(op);
                    }
                    index.deltas.entry(addr).or_default().push(Delta {
                        txid: txid.clone(),
                        index: i as u32,
                        satoshis: -prev.value,
                        height: block.height,
                        blockindex: pos as u32,
                    });
                }
                index.spent.insert(
                    op.clone(),
                    Spend {
                        txid: txid.clone(),
                        index: i as u32,
                        height: block.height,
                    },
                );
            }
            for (n, out) in tx.outputs.iter().enumerate() {
                let op = OutPoint {
                    txid: txid.clone(),
                    vout: n as u32,
                };
                if let Script::IdentityDefinition(def) = &out.script {
                    index
                        .names
                        .insert(def.name.to_lowercase(), def.identity_address.clone());
                    index
                        .identities
                        .entry(def.identity_address.clone())
                        .or_default()
                        .push(IdVersion {
                            height: block.height,
                            txid: txid.clone(),
                            vout: n as u32,
                            def: (**def).clone(),
                        });
                }
                if !out.script.spendable() {
                    continue;
                }
                if let Some(addr) = out.script.first_destination() {
                    index
                        .utxos_by_address
                        .entry(addr.clone())
                        .or_default()
                        .insert(op.clone());
                    index.deltas.entry(addr).or_default().push(Delta {
                        txid: txid.clone(),
                        index: n as u32,
                        satoshis: out.value,
                        height: block.height,
                        blockindex: pos as u32,
                    });
                }
                index.utxos.insert(
                    op,
                    Utxo {
                        value: out.value,
                        script: out.script.clone(),
                        height: block.height,
                        coinbase: tx.coinbase,
                    },
                );
            }
        }
    }

    fn rebuild_index(&mut self) {
        let mut index = Index::default();
        for hash in &self.main {
            if let Some(block) = self.blocks.get(hash) {
                Self::apply(&mut index, block, &self.txs);
            }
        }
        self.index = index;
    }

    /// Whether a mempool transaction may be mined at `height` given outputs already taken.
    fn minable(&self, tx: &Tx, height: i64, taken: &HashSet<OutPoint>) -> bool {
        if tx.expiry_height != 0 && height > tx.expiry_height {
            return false;
        }
        tx.inputs.iter().all(|op| {
            !taken.contains(op)
                && self.index.utxos.get(op).is_some_and(|u| {
                    !u.coinbase
                        || tx.stakeguard_proof
                        || height - u.height >= self.params.coinbase_maturity
                })
        })
    }

    /// Mines one block on the tip and announces it.
    pub fn mine(&mut self, kind: BlockKind) -> Result<String, SimError> {
        let height = self.tip_height() + 1;
        let stake = match &kind {
            BlockKind::Work => None,
            BlockKind::Stake { staker, source } => {
                let op = match source {
                    Some(op) => op.clone(),
                    None => self
                        .utxos_of(staker)
                        .into_iter()
                        .filter(|(op, _)| self.stake_eligible(op, height).is_ok())
                        .max_by_key(|(_, u)| u.value)
                        .map(|(op, _)| op)
                        .ok_or_else(|| {
                            SimError::new(
                                -1,
                                format!("{staker} has no output eligible to stake block {height}"),
                            )
                        })?,
                };
                let utxo = self
                    .stake_eligible(&op, height)
                    .map_err(|why| SimError::new(-1, format!("stake refused: {why}")))?
                    .clone();
                Some((op, utxo))
            }
        };
        let mut taken: HashSet<OutPoint> = stake.iter().map(|(op, _)| op.clone()).collect();
        let mut included = Vec::new();
        let mut fees = 0;
        if !self.hold_mempool {
            let pending = std::mem::take(&mut self.mempool);
            for txid in pending {
                let Some(tx) = self.txs.get(&txid) else {
                    continue;
                };
                if self.minable(tx, height, &taken) {
                    let inputs: i64 = tx
                        .inputs
                        .iter()
                        .filter_map(|op| self.prevout(op))
                        .map(|o| o.value)
                        .sum();
                    let outputs: i64 = tx.outputs.iter().map(|o| o.value).sum();
                    if !tx.inputs.is_empty() {
                        fees += (inputs - outputs).max(0);
                    }
                    taken.extend(tx.inputs.iter().cloned());
                    included.push(txid);
                } else if tx.expiry_height == 0 || height <= tx.expiry_height {
                    // Inputs not available yet (or taken by the stake): wait for a later block.
                    self.mempool.push(txid);
                }
                // Expired transactions are dropped, as verusd's mempool does.
            }
        }
        let reward_script = match &stake {
            Some(_) => Script::StakeGuard(self.params.pool_identity.clone()),
            None => Script::PubKeyHash(self.miner.clone()),
        };
        let coinbase = self.coinbase_tx(height, self.params.subsidy + fees, reward_script);
        let mut txids = vec![coinbase.txid.clone()];
        self.txs.insert(coinbase.txid.clone(), coinbase);
        txids.extend(included);
        let (stake_source, staker) = match stake {
            Some((op, utxo)) => {
                let staker = utxo.script.first_destination();
                let stake_tx = Tx {
                    txid: self.next_id("stake"),
                    inputs: vec![op.clone()],
                    coinbase: false,
                    outputs: vec![
                        TxOut {
                            value: utxo.value,
                            script: utxo.script.clone(),
                        },
                        TxOut {
                            value: 0,
                            script: Script::NullData,
                        },
                    ],
                    expiry_height: height + 100,
                    stakeguard_proof: false,
                    time: self.params.genesis_time + 60 * height,
                };
                txids.push(stake_tx.txid.clone());
                self.txs.insert(stake_tx.txid.clone(), stake_tx);
                (Some(op), staker)
            }
            None => (None, None),
        };
        let prev_hash = self.tip_hash().to_owned();
        let hash = {
            self.counter += 1;
            ids::hash_hex(&format!("block:{prev_hash}:{height}:{}", self.counter), 12)
        };
        let block = Block {
            hash: hash.clone(),
            height,
            prev_hash,
            time: self.params.genesis_time + 60 * height,
            txids,
            stake_source,
            staker,
        };
        self.connect(block);
        Ok(hash)
    }

    /// Mines `n` proof-of-work blocks.
    pub fn generate(&mut self, n: u32) -> Vec<String> {
        (0..n)
            .filter_map(|_| self.mine(BlockKind::Work).ok())
            .collect()
    }

    /// Replaces the last `depth` blocks with a new branch of `branch` blocks (at least
    /// `depth + 1`, so it is longer), announcing only the new tip. The transactions of the
    /// disconnected blocks go back to the mempool, as verusd does.
    pub fn reorg(&mut self, depth: usize, branch: Vec<BlockKind>) -> Result<Vec<String>, SimError> {
        if depth == 0 || depth >= self.main.len() {
            return Err(SimError::new(
                -8,
                format!(
                    "cannot reorganise {depth} blocks of a chain of {}",
                    self.main.len()
                ),
            ));
        }
        if depth > 99 {
            return Err(SimError::new(
                -8,
                "reorganisations deeper than 99 blocks are refused (MAX_REORG_LENGTH)",
            ));
        }
        let mut branch = branch;
        while branch.len() <= depth {
            branch.push(BlockKind::Work);
        }
        let removed: Vec<String> = self.main.split_off(self.main.len() - depth);
        let mut returned = Vec::new();
        for hash in &removed {
            if let Some(block) = self.blocks.get(hash) {
                let last = block.txids.len().saturating_sub(1);
                for (pos, txid) in block.txids.iter().enumerate() {
                    let is_stake_tx = block.is_stake() && pos == last;
                    if pos != 0 && !is_stake_tx {
                        returned.push(txid.clone());
                    }
                }
            }
        }
        returned.append(&mut self.mempool);
        self.mempool = returned;
        self.rebuild_index();
        let before = self.announcements.len();
        let mut new = Vec::new();
        for kind in branch {
            match self.mine(kind) {
                Ok(h) => new.push(h),
                Err(e) => {
                    // A branch block that cannot be mined: finish the branch with work blocks
                    // so the chain is still longer, and report the refusal.
                    while new.len() <= depth {
                        new.extend(self.generate(1));
                    }
                    self.announcements.truncate(before);
                    self.announcements.push(self.tip_hash().to_owned());
                    return Err(e);
                }
            }
        }
        // verusd announces only the new tip after a reorganisation.
        self.announcements.truncate(before);
        self.announcements.push(self.tip_hash().to_owned());
        Ok(new)
    }

    fn add_to_mempool(&mut self, tx: Tx) -> Result<String, SimError> {
        if tx.inputs.is_empty() {
            // Nothing to conflict with (faucet payments, registrations): no mempool scan, so
            // queueing thousands of them stays linear.
            let txid = tx.txid.clone();
            self.txs.insert(txid.clone(), tx);
            self.mempool.push(txid.clone());
            return Ok(txid);
        }
        let in_mempool: HashSet<&OutPoint> = self
            .mempool
            .iter()
            .filter_map(|t| self.txs.get(t))
            .flat_map(|t| t.inputs.iter())
            .collect();
        for op in &tx.inputs {
            if !self.index.utxos.contains_key(op) {
                return Err(SimError::new(
                    -25,
                    format!("missing inputs: {}:{}", op.txid, op.vout),
                ));
            }
            if in_mempool.contains(op) {
                return Err(SimError::new(
                    -26,
                    format!("txn-mempool-conflict: {}:{}", op.txid, op.vout),
                ));
            }
        }
        let txid = tx.txid.clone();
        self.txs.insert(txid.clone(), tx);
        self.mempool.push(txid.clone());
        Ok(txid)
    }

    fn new_tx(&mut self, inputs: Vec<OutPoint>, outputs: Vec<TxOut>) -> Tx {
        Tx {
            txid: self.next_id("tx"),
            inputs,
            coinbase: false,
            outputs,
            expiry_height: self.tip_height() + 1 + self.params.tx_expiry_delta,
            stakeguard_proof: false,
            time: self.params.genesis_time + 60 * (self.tip_height() + 1),
        }
    }

    /// Pays `amount` to `address` from outside the simulation (a faucet): the transaction
    /// waits in the mempool for the next block.
    pub fn fund(&mut self, address: &str, amount: i64) -> Result<String, SimError> {
        if amount <= 0 {
            return Err(SimError::new(-8, "amount must be positive"));
        }
        let script = if ids::is_address(address, ids::I_VERSION) {
            Script::Identity(address.to_owned())
        } else if ids::is_address(address, ids::R_VERSION) {
            Script::PubKeyHash(address.to_owned())
        } else {
            return Err(SimError::new(-5, format!("Invalid address {address}")));
        };
        let mut tx = self.new_tx(
            Vec::new(),
            vec![TxOut {
                value: amount,
                script,
            }],
        );
        tx.expiry_height = 0;
        self.add_to_mempool(tx)
    }

    /// Spends an output entirely to `to` (a subscriber moving its coins).
    pub fn spend(&mut self, op: &OutPoint, to: &str) -> Result<String, SimError> {
        let utxo = self
            .index
            .utxos
            .get(op)
            .ok_or_else(|| SimError::new(-25, "missing inputs"))?
            .clone();
        let script = if ids::is_address(to, ids::I_VERSION) {
            Script::Identity(to.into())
        } else {
            Script::PubKeyHash(to.into())
        };
        let tx = self.new_tx(
            vec![op.clone()],
            vec![TxOut {
                value: utxo.value,
                script,
            }],
        );
        self.add_to_mempool(tx)
    }

    /// Registers an identity (mined with the next block).
    pub fn register_identity(&mut self, def: IdentityDef) -> Result<String, SimError> {
        if self.index.identities.contains_key(&def.identity_address)
            || self.index.names.contains_key(&def.name.to_lowercase())
        {
            return Err(SimError::new(
                -8,
                format!("identity {} already exists", def.name),
            ));
        }
        let tx = self.new_tx(
            Vec::new(),
            vec![TxOut {
                value: 0,
                script: Script::IdentityDefinition(Box::new(def)),
            }],
        );
        self.add_to_mempool(tx)
    }

    /// Updates an identity: the new definition spends the current one (mined with the next block).
    pub fn update_identity(&mut self, def: IdentityDef) -> Result<String, SimError> {
        let current = self
            .index
            .identities
            .get(&def.identity_address)
            .and_then(|v| v.last())
            .ok_or_else(|| SimError::new(-5, "Identity not found"))?;
        let op = OutPoint {
            txid: current.txid.clone(),
            vout: current.vout,
        };
        let tx = self.new_tx(
            vec![op],
            vec![TxOut {
                value: 0,
                script: Script::IdentityDefinition(Box::new(def)),
            }],
        );
        self.add_to_mempool(tx)
    }

    /// The pool wallet's `sendcurrency` from the pool identity: selects mature outputs,
    /// pays `outputs`, returns change to the identity, and puts the transaction in the mempool.
    pub fn send_currency(
        &mut self,
        from: &str,
        outputs: &[(String, i64)],
        fee: i64,
    ) -> Result<String, SimError> {
        let tx = self.build_send(from, outputs, fee)?;
        self.add_to_mempool(tx)
    }

    /// As [`Chain::send_currency`], but the mempool refuses the transaction after the wallet
    /// recorded it (verusd's `CommitTransaction` adds it to the wallet first and ignores the
    /// mempool's refusal): it is held, its inputs taken for the wallet, until
    /// [`Chain::rebroadcast`] or its expiry.
    pub fn send_currency_held(
        &mut self,
        from: &str,
        outputs: &[(String, i64)],
        fee: i64,
    ) -> Result<String, SimError> {
        let tx = self.build_send(from, outputs, fee)?;
        let txid = tx.txid.clone();
        self.txs.insert(txid.clone(), tx);
        self.held.push(txid.clone());
        Ok(txid)
    }

    /// Transactions the wallet holds outside the mempool.
    pub fn held(&self) -> &[String] {
        &self.held
    }

    /// The wallet offers its held transactions to the mempool again (verusd does at start,
    /// `ReacceptWalletTransactions`): those not expired whose inputs are still unspent enter
    /// it; expired ones are dropped (their inputs are the wallet's again). Returns the txids
    /// that entered the mempool.
    pub fn rebroadcast(&mut self) -> Vec<String> {
        let next = self.tip_height() + 1;
        let mut entered = Vec::new();
        for txid in std::mem::take(&mut self.held) {
            let Some(tx) = self.txs.get(&txid).cloned() else {
                continue;
            };
            if tx.expiry_height != 0 && next > tx.expiry_height {
                continue;
            }
            if self.add_to_mempool(tx).is_ok() {
                entered.push(txid);
            }
        }
        entered
    }

    /// Builds the wallet's transaction for `sendcurrency` without offering it anywhere.
    fn build_send(
        &mut self,
        from: &str,
        outputs: &[(String, i64)],
        fee: i64,
    ) -> Result<Tx, SimError> {
        let source = if from == "*" || from == "i*" {
            self.params.pool_identity.clone()
        } else {
            from.to_owned()
        };
        if !self.wallet_can_spend(&source) {
            return Err(SimError::new(
                -5,
                format!("this wallet cannot spend from {from}"),
            ));
        }
        let total: i64 = outputs.iter().map(|(_, a)| *a).sum::<i64>() + fee;
        let next = self.tip_height() + 1;
        // The wallet's own unmined transactions spend their inputs in its eyes, whether the
        // mempool took them or not (until they expire).
        self.held.retain(|t| {
            self.txs
                .get(t)
                .is_some_and(|tx| tx.expiry_height == 0 || next <= tx.expiry_height)
        });
        let in_mempool: HashSet<OutPoint> = self
            .mempool
            .iter()
            .chain(self.held.iter())
            .filter_map(|t| self.txs.get(t))
            .flat_map(|t| t.inputs.iter().cloned())
            .collect();
        let mut candidates: Vec<(OutPoint, Utxo)> = self
            .utxos_of(&source)
            .into_iter()
            .filter(|(op, u)| {
                !in_mempool.contains(op)
                    && u.value > 0
                    && !matches!(u.script, Script::IdentityDefinition(_))
                    && (!u.coinbase || next - u.height >= self.params.coinbase_maturity)
            })
            .collect();
        candidates.sort_by_key(|(_, u)| std::cmp::Reverse(u.value));
        let mut inputs = Vec::new();
        let mut gathered = 0;
        for (op, u) in candidates {
            if gathered >= total {
                break;
            }
            gathered += u.value;
            inputs.push(op);
        }
        if gathered < total {
            return Err(SimError::new(
                -6,
                format!("Insufficient funds: have {gathered}, need {total} satoshis"),
            ));
        }
        let mut outs: Vec<TxOut> = Vec::new();
        for (address, amount) in outputs {
            let script = if ids::is_address(address, ids::I_VERSION) {
                Script::Identity(address.clone())
            } else if ids::is_address(address, ids::R_VERSION) {
                Script::PubKeyHash(address.clone())
            } else {
                return Err(SimError::new(-5, format!("Invalid destination {address}")));
            };
            outs.push(TxOut {
                value: *amount,
                script,
            });
        }
        if gathered > total {
            outs.push(TxOut {
                value: gathered - total,
                script: Script::Identity(source.clone()),
            });
        }
        Ok(self.new_tx(inputs, outs))
    }

    /// Spends the reward of the stake block `hash` with a StakeGuard proof (someone proved a
    /// double stake) and mines it at once.
    pub fn stakeguard(&mut self, hash: &str) -> Result<String, SimError> {
        let block = self
            .blocks
            .get(hash)
            .ok_or_else(|| SimError::new(-5, "Block not found"))?;
        if !block.is_stake() {
            return Err(SimError::new(-8, "not a stake block"));
        }
        let coinbase = block
            .txids
            .first()
            .cloned()
            .ok_or_else(|| SimError::new(-8, "block without coinbase"))?;
        let op = OutPoint {
            txid: coinbase,
            vout: 0,
        };
        let value = self
            .index
            .utxos
            .get(&op)
            .map(|u| u.value)
            .ok_or_else(|| SimError::new(-25, "reward already spent"))?;
        let mut tx = self.new_tx(
            vec![op],
            vec![TxOut {
                value,
                script: Script::PubKeyHash(STAKEGUARD_ADDRESS.into()),
            }],
        );
        tx.stakeguard_proof = true;
        let txid = self.add_to_mempool(tx)?;
        self.mine(BlockKind::Work)?;
        Ok(txid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity(chain: &Chain, name: &str) -> IdentityDef {
        let address = ids::identity_address(name, &chain.params.chain_id);
        IdentityDef {
            version: 3,
            flags: FLAG_LOCKED,
            primary_addresses: vec![ids::r_address(name), chain.params.pool_r_address.clone()],
            minimum_signatures: 1,
            name: name.into(),
            identity_address: address,
            parent: chain.params.chain_id.clone(),
            system_id: chain.params.chain_id.clone(),
            revocation_authority: ids::identity_address("revoker", "x"),
            recovery_authority: ids::identity_address("recoverer", "x"),
            timelock: 1440,
        }
    }

    #[test]
    fn stake_age_and_identity_cooldown_are_enforced() {
        let mut chain = Chain::new(Params::default());
        let alice = identity(&chain, "alice");
        let id = alice.identity_address.clone();
        chain.register_identity(alice).unwrap();
        chain.fund(&id, 1_000 * 100_000_000).unwrap();
        chain.generate(1);
        let staker = BlockKind::Stake {
            staker: id.clone(),
            source: None,
        };
        assert!(chain.mine(staker.clone()).is_err(), "too young");
        chain.generate(148);
        assert!(chain.mine(staker.clone()).is_err(), "149 blocks old");
        chain.generate(1);
        let hash = chain.mine(staker.clone()).unwrap();
        let block = chain.block(&hash).unwrap().clone();
        assert_eq!(block.staker.as_deref(), Some(id.as_str()));
        // The staked output came back to alice, 0 blocks old: she cannot stake again at once.
        assert!(chain.mine(staker).is_err());
        // The reward is the pool's.
        let reward = chain
            .utxo(&OutPoint {
                txid: block.txids[0].clone(),
                vout: 0,
            })
            .unwrap();
        assert_eq!(
            reward.script,
            Script::StakeGuard(chain.params.pool_identity.clone())
        );
    }

    /// The staking supply by its definition: every unspent output that may stake the next
    /// block, one by one.
    fn supply_by_definition(chain: &Chain) -> i64 {
        let next = chain.tip_height() + 1;
        let ops: Vec<OutPoint> = chain.index.utxos.keys().cloned().collect();
        ops.iter()
            .filter_map(|op| chain.stake_eligible(op, next).ok().map(|u| u.value))
            .sum::<i64>()
            + chain.external_supply
    }

    #[test]
    fn staking_supply_counted_once_per_tip_equals_its_definition() {
        let mut chain = Chain::new(Params::default());
        chain.external_supply = 7;
        let alice = identity(&chain, "alice");
        let bob = identity(&chain, "bob");
        let (a, b) = (alice.identity_address.clone(), bob.identity_address.clone());
        chain.register_identity(alice.clone()).unwrap();
        chain.register_identity(bob).unwrap();
        chain.fund(&a, 1_000 * 100_000_000).unwrap();
        chain.fund(&b, 300 * 100_000_000).unwrap();
        chain
            .fund(&ids::r_address("plain"), 50 * 100_000_000)
            .unwrap();
        let mut seen = Vec::new();
        for step in 0..320 {
            chain.generate(1);
            match step {
                // Alice's update restarts her outputs' stake age; her revocation ends it.
                200 => {
                    chain.update_identity(alice.clone()).unwrap();
                }
                260 => {
                    let mut revoked = alice.clone();
                    revoked.flags |= FLAG_REVOKED;
                    chain.update_identity(revoked).unwrap();
                }
                _ => {}
            }
            let expected = supply_by_definition(&chain);
            assert_eq!(
                chain.staking_supply(),
                expected,
                "uncounted tip, step {step}"
            );
            chain.count_staking_supply();
            assert_eq!(chain.staking_supply(), expected, "counted tip, step {step}");
            seen.push(expected);
        }
        // The steps above went through every case: nothing eligible, the coinbases and each
        // identity's outputs maturing, the update's cool-down and the revocation.
        seen.dedup();
        assert!(seen.len() >= 5, "distinct figures: {seen:?}");
        // A count is for its tip only: a reorganisation to another tip counts again.
        chain.count_staking_supply();
        chain.fund(&b, 5 * 100_000_000).unwrap();
        chain.reorg(2, Vec::new()).unwrap();
        chain.generate(150);
        assert_eq!(chain.staking_supply(), supply_by_definition(&chain));
    }

    #[test]
    fn reorg_makes_blocks_stale_and_returns_transactions() {
        let mut chain = Chain::new(Params::default());
        chain.generate(5);
        chain.take_announcements();
        let addr = ids::r_address("someone");
        let txid = chain.fund(&addr, 5).unwrap();
        let old = chain.generate(1)[0].clone();
        assert!(chain.tx_location(&txid).is_some());
        chain.take_announcements();
        chain.hold_mempool = true;
        let new = chain.reorg(1, Vec::new()).unwrap();
        assert_eq!(new.len(), 2);
        assert_eq!(
            chain.take_announcements(),
            vec![chain.tip_hash().to_owned()],
            "only the new tip is announced"
        );
        let old_block = chain.block(&old).unwrap().clone();
        assert_eq!(chain.confirmations(&old_block), -1);
        assert!(chain.tx_location(&txid).is_none());
        assert_eq!(
            chain.mempool(),
            std::slice::from_ref(&txid),
            "back in the mempool"
        );
        chain.hold_mempool = false;
        chain.generate(1);
        assert!(chain.tx_location(&txid).is_some());
    }

    #[test]
    fn wallet_pays_from_mature_rewards_only() {
        let mut chain = Chain::new(Params::default());
        let pool = chain.params.pool_identity.clone();
        let payee = ids::identity_address("payee", "x");
        assert_eq!(
            chain
                .send_currency(&pool, &[(payee.clone(), 100)], DEFAULT_FEE)
                .unwrap_err()
                .code,
            -6
        );
        chain.fund(&pool, 10 * 100_000_000).unwrap();
        chain.generate(1);
        let txid = chain
            .send_currency(&pool, &[(payee.clone(), 100)], DEFAULT_FEE)
            .unwrap();
        chain.generate(1);
        assert!(chain.tx_location(&txid).is_some());
        let paid: i64 = chain.utxos_of(&payee).iter().map(|(_, u)| u.value).sum();
        assert_eq!(paid, 100);
        let change: i64 = chain.utxos_of(&pool).iter().map(|(_, u)| u.value).sum();
        assert_eq!(change, 10 * 100_000_000 - 100 - DEFAULT_FEE);
    }
}
