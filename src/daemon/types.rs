//! Typed views of verusd's replies: only what the pool reads, with amounts in exact
//! satoshis. Fields verusd gives in satoshis (`valueSat`, `satoshis`, `balance`) are read
//! as integers; coin amounts (`amount`, `stakingsupply`, …) are read from the number's exact
//! text ([`Coins`]), never through `f64`.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;

use crate::domain::Sats;

/// A coin amount read from the exact text of a JSON number (or a string holding one).
///
/// Deserialise replies with `serde_json::from_str` (the client does): the exact text is
/// only available from the original JSON, not from a `serde_json::Value`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Coins(pub Sats);

impl<'de> Deserialize<'de> for Coins {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = Box::<RawValue>::deserialize(d)?;
        Sats::parse_json_number(raw.get())
            .map(Coins)
            .map_err(serde::de::Error::custom)
    }
}

/// Writes an amount as a JSON number with exactly 8 decimals (`12.84211007`), for
/// `sendcurrency`. Serialise it with `serde_json::to_vec`/`to_string` (not into a `Value`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExactCoins(pub Sats);

impl Serialize for ExactCoins {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let raw = RawValue::from_string(self.0.to_string()).map_err(serde::ser::Error::custom)?;
        raw.serialize(s)
    }
}

/// An identity definition (`identity` in `getidentity`, `identityprimary` in outputs).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Identity {
    /// 3 = PBaaS.
    pub version: u32,
    /// Flag bits: `0x2` locked, `0x8000` revoked.
    pub flags: u32,
    /// Primary addresses.
    pub primaryaddresses: Vec<String>,
    /// Signatures required.
    pub minimumsignatures: u32,
    /// Name without its parent.
    pub name: String,
    /// The identity's i-address.
    pub identityaddress: String,
    /// Parent currency.
    #[serde(default)]
    pub parent: String,
    /// System.
    #[serde(default)]
    pub systemid: String,
    /// Revocation authority.
    pub revocationauthority: String,
    /// Recovery authority.
    pub recoveryauthority: String,
    /// Unlock delay (locked) or unlock height (unlocking), in blocks.
    pub timelock: i64,
}

/// `getidentity`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct IdentityReply {
    /// `name.PARENT@`.
    pub friendlyname: String,
    /// Fully qualified name.
    #[serde(default)]
    pub fullyqualifiedname: String,
    /// The definition.
    pub identity: Identity,
    /// `active` or `revoked`.
    pub status: String,
    /// Whether this wallet can spend for it.
    #[serde(default)]
    pub canspendfor: bool,
    /// Whether this wallet can sign for it.
    #[serde(default)]
    pub cansignfor: bool,
    /// Height of the transaction holding this version (its last update).
    pub blockheight: i64,
    /// That transaction.
    pub txid: String,
    /// Its output.
    pub vout: u32,
}

impl Identity {
    /// What the pool's conditions look at in this definition: the one conversion of the
    /// daemon's identity (from `getidentity` and from identity outputs in blocks).
    /// `revoked_status`: the daemon says it is revoked.
    pub fn facts(&self, revoked_status: bool) -> crate::domain::conditions::IdentityFacts {
        crate::domain::conditions::IdentityFacts {
            address: self.identityaddress.clone(),
            flags: self.flags,
            timelock: self.timelock,
            primary_addresses: self.primaryaddresses.clone(),
            minimum_signatures: self.minimumsignatures,
            revocation_authority: self.revocationauthority.clone(),
            recovery_authority: self.recoveryauthority.clone(),
            revoked_status,
        }
    }
}

impl IdentityReply {
    /// What the pool's conditions look at (`status` "revoked" counts as revoked).
    pub fn facts(&self) -> crate::domain::conditions::IdentityFacts {
        self.identity.facts(self.status == "revoked")
    }
}

/// An output reference.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct TxOutRef {
    /// Transaction.
    pub txid: String,
    /// Output index.
    pub voutnum: u32,
}

/// One element of `getidentitieswithaddress`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct IdentityWithTxout {
    /// The definition.
    #[serde(flatten)]
    pub identity: Identity,
    /// Where it is.
    pub txout: TxOutRef,
}

/// A block (`getblock` verbosity 1: `T = String`; verbosity 2: `T = Tx`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Block<T> {
    /// Hash.
    pub hash: String,
    /// `stake` or `work`.
    pub validationtype: String,
    /// −1 when not on the main chain.
    pub confirmations: i64,
    /// Height.
    pub height: i64,
    /// Transactions.
    pub tx: Vec<T>,
    /// Block time.
    pub time: i64,
    /// `minted` (PoS) or `mined` (PoW).
    #[serde(default)]
    pub blocktype: String,
    /// The block below (absent on genesis).
    #[serde(default)]
    pub previousblockhash: Option<String>,
    /// The next main-chain block.
    #[serde(default)]
    pub nextblockhash: Option<String>,
    /// PoS: the staked output's transaction.
    #[serde(default)]
    pub possourcetxid: Option<String>,
    /// PoS: the staked output's index.
    #[serde(default)]
    pub possourcevoutnum: Option<u32>,
    /// PoS: where the reward goes.
    #[serde(default)]
    pub posrewarddest: Option<String>,
    /// PoS: who staked (first destination of the stake transaction's first output).
    #[serde(default)]
    pub postxddest: Option<String>,
}

impl<T> Block<T> {
    /// Proof of stake?
    pub fn is_stake(&self) -> bool {
        self.validationtype == "stake"
    }
}

/// A transaction input as `getblock … 2` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Vin {
    /// Set on the coinbase input.
    #[serde(default)]
    pub coinbase: Option<String>,
    /// The spent output's transaction.
    #[serde(default)]
    pub txid: Option<String>,
    /// The spent output's index.
    #[serde(default)]
    pub vout: Option<u32>,
    /// The spent value.
    #[serde(default, rename = "valueSat")]
    pub value_sat: Option<i64>,
    /// The spent output's address (spent index).
    #[serde(default)]
    pub address: Option<String>,
    /// `getrawtransaction`'s form of the addresses.
    #[serde(default)]
    pub addresses: Option<Vec<String>>,
}

/// `scriptPubKey`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ScriptPubKey {
    /// `pubkeyhash`, `cryptocondition`, `nulldata`, …
    #[serde(rename = "type")]
    pub kind: String,
    /// Destinations.
    #[serde(default)]
    pub addresses: Vec<String>,
    /// An identity definition carried by this output.
    #[serde(default)]
    pub identityprimary: Option<Identity>,
}

/// A transaction output.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Vout {
    /// Value in satoshis.
    #[serde(rename = "valueSat")]
    pub value_sat: i64,
    /// Index.
    pub n: u32,
    /// Destination.
    #[serde(rename = "scriptPubKey")]
    pub script_pub_key: ScriptPubKey,
    /// The spending transaction, once spent (spent index).
    #[serde(default, rename = "spentTxId")]
    pub spent_tx_id: Option<String>,
    /// The spending input.
    #[serde(default, rename = "spentIndex")]
    pub spent_index: Option<u32>,
    /// The spending height.
    #[serde(default, rename = "spentHeight")]
    pub spent_height: Option<i64>,
}

/// A transaction (`getblock … 2`, `getrawtransaction … 1`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Tx {
    /// Its id.
    pub txid: String,
    /// Inputs.
    pub vin: Vec<Vin>,
    /// Outputs.
    pub vout: Vec<Vout>,
    /// Last height it may be mined at (0: none).
    #[serde(default)]
    pub expiryheight: i64,
    /// `getrawtransaction`: the block it is in.
    #[serde(default)]
    pub blockhash: Option<String>,
    /// `getrawtransaction`: the height it is at.
    #[serde(default)]
    pub height: Option<i64>,
    /// `getrawtransaction`: confirmations.
    #[serde(default)]
    pub confirmations: Option<i64>,
}

/// One `getaddressutxos` entry.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct AddressUtxo {
    /// The address asked about.
    pub address: String,
    /// Transaction.
    pub txid: String,
    /// Output index.
    #[serde(rename = "outputIndex")]
    pub output_index: u32,
    /// Value.
    pub satoshis: i64,
    /// Height mined at.
    pub height: i64,
}

/// `getaddressutxos` with `chaininfo: true`: one consistent snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct AddressUtxosAt {
    /// The outputs.
    pub utxos: Vec<AddressUtxo>,
    /// Tip hash of the snapshot.
    pub hash: String,
    /// Tip height of the snapshot.
    pub height: i64,
}

/// One `getaddressdeltas` entry.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct AddressDelta {
    /// Positive for an output, negative for a spend.
    pub satoshis: i64,
    /// Transaction.
    pub txid: String,
    /// Output or input index.
    pub index: u32,
    /// Position in the block.
    pub blockindex: u32,
    /// Height.
    pub height: i64,
    /// Address.
    pub address: String,
}

/// `getaddressbalance`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct AddressBalance {
    /// Satoshis now.
    pub balance: i64,
    /// Satoshis ever received.
    pub received: i64,
}

/// One `getaddressmempool` entry.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct MempoolDelta {
    /// Address.
    pub address: String,
    /// Transaction.
    pub txid: String,
    /// Output or input index.
    pub index: u32,
    /// Positive for an output, negative for a spend.
    pub satoshis: i64,
    /// For spends: the spent output's transaction.
    #[serde(default)]
    pub prevtxid: Option<String>,
    /// For spends: the spent output's index.
    #[serde(default)]
    pub prevout: Option<u32>,
}

/// `getinfo` (what the pool reads).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Info {
    /// The chain's currency i-address.
    pub chainid: String,
    /// Its name.
    pub name: String,
    /// Tip height.
    pub blocks: i64,
    /// Daemon version.
    #[serde(default, rename = "VRSCversion")]
    pub vrsc_version: String,
}

/// `getblockchaininfo` (what the pool reads).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct BlockchainInfo {
    /// `main` or `test`.
    pub chain: String,
    /// Currency name.
    pub name: String,
    /// Currency i-address.
    pub chainid: String,
    /// Tip height.
    pub blocks: i64,
    /// Best known header (above `blocks` while syncing).
    pub headers: i64,
    /// Tip hash.
    pub bestblockhash: String,
}

/// `getmininginfo` (what the pool reads).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct MiningInfo {
    /// Tip height.
    pub blocks: i64,
    /// The network's estimated staking supply.
    pub stakingsupply: Coins,
    /// Whether the daemon stakes (absent on builds without mining).
    #[serde(default)]
    pub staking: Option<bool>,
}

/// `getwalletinfo` (what the pool reads).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct WalletInfo {
    /// Spendable balance.
    pub balance: Coins,
    /// Immature (coinbase) balance.
    #[serde(default)]
    pub immature_balance: Coins,
    /// Outputs that can stake now.
    #[serde(default)]
    pub eligible_staking_outputs: u64,
    /// Their value.
    #[serde(default)]
    pub eligible_staking_balance: Coins,
}

/// One `listunspent` entry.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Unspent {
    /// Transaction.
    pub txid: String,
    /// Output index.
    pub vout: u32,
    /// From a coinbase.
    #[serde(default)]
    pub generated: bool,
    /// First destination.
    pub address: String,
    /// Value.
    pub amount: Coins,
    /// Confirmations.
    pub confirmations: i64,
    /// Spendable by this wallet.
    #[serde(default)]
    pub spendable: bool,
}

/// An async operation's error.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct OperationError {
    /// Code.
    pub code: i64,
    /// Message.
    pub message: String,
}

/// An async operation's result.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct OperationResult {
    /// The transaction it made.
    pub txid: String,
}

/// One output echoed in an operation's `params`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct OperationOutput {
    /// Destination.
    pub address: String,
    /// Amount.
    pub amount: Coins,
}

/// `z_getoperationstatus` / `z_getoperationresult` entry.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Operation {
    /// `opid-…`.
    pub id: String,
    /// queued, executing, success, failed, cancelled.
    pub status: String,
    /// Unix time.
    #[serde(default)]
    pub creation_time: i64,
    /// On success.
    #[serde(default)]
    pub result: Option<OperationResult>,
    /// On failure.
    #[serde(default)]
    pub error: Option<OperationError>,
    /// The outputs it pays.
    #[serde(default)]
    pub params: Vec<OperationOutput>,
}

/// `getcurrency` (what the pool reads).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Currency {
    /// i-address.
    pub currencyid: String,
    /// Name.
    pub name: String,
    /// Option bits (`0x4`: ID staking).
    pub options: u32,
    /// Seconds between blocks (printed for PBaaS chain definitions): the coinbase maturity
    /// follows from it (see [`crate::domain::chain::coinbase_maturity`]).
    #[serde(default)]
    pub blocktime: Option<u64>,
}

/// `getcurrency` option bit: all identities stake equally (value-weighted work is wrong).
pub const OPTION_ID_STAKING: u32 = 0x4;

/// One output of a `sendcurrency` call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SendOutput {
    /// Destination.
    pub address: String,
    /// Amount, written exactly.
    pub amount: ExactCoins,
}
