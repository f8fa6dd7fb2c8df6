//! The simulated node: the chain plus what lives only in daemon memory (async operations,
//! the ZMQ sequence), scripted failures, and the JSON-RPC method table.

use std::collections::{HashMap, HashSet};

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Value, json};

use crate::amount::{coins, parse_coin_text, parse_coins};
use crate::chain::{
    BlockKind, Chain, DEFAULT_FEE, FLAG_LOCKED, IdentityDef, OutPoint, Script, SimError,
};
use crate::{ids, render};

/// An asynchronous operation (`sendcurrency`), held in daemon memory only.
#[derive(Debug, Clone)]
pub struct Operation {
    /// `opid-…`.
    pub id: String,
    /// queued, executing, success, failed.
    pub status: &'static str,
    /// Unix time of creation.
    pub creation_time: i64,
    /// The source address.
    pub from: String,
    /// The outputs in satoshis.
    pub outputs: Vec<(String, i64)>,
    /// The fee in satoshis.
    pub fee: i64,
    /// On success.
    pub txid: Option<String>,
    /// On failure.
    pub error: Option<SimError>,
}

/// A scripted failure for the next calls of a method.
#[derive(Debug, Clone)]
pub struct FailRule {
    /// How many calls still fail.
    pub count: u32,
    /// HTTP status of the failing reply.
    pub http_status: u16,
    /// Error code.
    pub code: i64,
    /// Error message.
    pub message: String,
    /// Answer a body that is not JSON-RPC at all.
    pub malformed: bool,
}

/// How the next `sendcurrency` operation ends (scripted): the wallet records its
/// transaction, the mempool refuses it, and the operation reports `status` (`failed`, or
/// `success` with the txid, as verusd's `CommitTransaction` does); the wallet offers it again
/// `rebroadcast_after` blocks later (or at the next restart), if it has not expired.
#[derive(Debug, Clone)]
pub struct OpFault {
    /// `failed` or `success`.
    pub status: &'static str,
    /// Blocks until the wallet offers the transaction to the mempool again; `None`: only at a
    /// restart.
    pub rebroadcast_after: Option<i64>,
}

/// A reply before it is put in the envelope.
#[derive(Debug, Clone)]
pub enum Reply {
    /// A result.
    Ok(Value),
    /// An error with the HTTP status verusd uses.
    Err(u16, SimError),
    /// A body that does not parse (scripted).
    Malformed(String),
}

/// The node.
#[derive(Debug)]
pub struct Node {
    /// The chain.
    pub chain: Chain,
    /// Async operations.
    pub ops: Vec<Operation>,
    /// Keep operations queued (to script a crash between submit and broadcast).
    pub pause_ops: bool,
    fail: HashMap<String, FailRule>,
    warmup: u32,
    zmq_seq: u32,
    drop_notifications: u32,
    /// Milliseconds each listed method takes to answer over RPC (`sim_slow`).
    slow: HashMap<String, u64>,
    op_counter: u64,
    /// While reindexing (or a fail-over node still syncing): the tip the node shows, below
    /// the chain's; it climbs back by `view_step` a block. `None`: in sync.
    view: Option<i64>,
    view_step: i64,
    /// Announce the tip once the node has caught up (nothing is announced before: IBD).
    announce_tip: bool,
    op_faults: Vec<OpFault>,
    /// The height from which held wallet transactions are offered to the mempool again.
    rebroadcast_at: Option<i64>,
}

fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

fn err(code: i64, message: impl Into<String>) -> SimError {
    SimError::new(code, message)
}

fn param(params: &[Value], i: usize) -> Option<&Value> {
    params.get(i).filter(|v| !v.is_null())
}

fn str_param(params: &[Value], i: usize, name: &str) -> Result<String, SimError> {
    match param(params, i) {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(err(-1, "JSON value is not a string as expected")),
        None => Err(err(-1, format!("missing parameter {name}"))),
    }
}

fn int_param(params: &[Value], i: usize) -> Result<Option<i64>, SimError> {
    match param(params, i) {
        None => Ok(None),
        Some(Value::Number(n)) => n
            .as_i64()
            .map(Some)
            .ok_or_else(|| err(-1, "JSON integer out of range")),
        Some(_) => Err(err(-1, "JSON value is not an integer as expected")),
    }
}

fn addresses_param(params: &[Value]) -> Result<(Vec<String>, &Value), SimError> {
    let obj = param(params, 0).ok_or_else(|| err(-1, "missing parameter"))?;
    let list = match obj {
        Value::Object(o) => o
            .get("addresses")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default(),
        Value::String(s) => vec![Value::String(s.clone())],
        _ => return Err(err(-8, "Invalid address")),
    };
    let addresses = list
        .iter()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect();
    Ok((addresses, obj))
}

#[derive(Deserialize)]
struct OutputReq {
    address: String,
    amount: Box<RawValue>,
    #[serde(default)]
    currency: Option<String>,
}

impl Node {
    /// A node around `chain`.
    pub fn new(chain: Chain) -> Node {
        Node {
            chain,
            ops: Vec::new(),
            pause_ops: false,
            fail: HashMap::new(),
            warmup: 0,
            zmq_seq: 0,
            drop_notifications: 0,
            slow: HashMap::new(),
            op_counter: 0,
            view: None,
            view_step: 1,
            announce_tip: false,
            op_faults: Vec::new(),
            rebroadcast_at: None,
        }
    }

    /// The tip the node shows: below the chain's while it reindexes.
    pub fn visible_tip(&self) -> i64 {
        self.view.unwrap_or_else(|| self.chain.tip_height())
    }

    /// A reindex (or a fail-over to a node still syncing): the node shows `height` as its tip
    /// and climbs back on the same blocks by `step` a block (see [`Node::climb`]); nothing is
    /// announced meanwhile (verusd publishes no ZMQ during initial block download).
    pub fn reindex(&mut self, height: i64, step: i64) {
        self.view = Some(height.clamp(0, self.chain.tip_height()));
        self.view_step = step.max(1);
    }

    /// The reindexing node gets `blocks` further; at the chain's tip it is in sync again and
    /// announces its tip.
    pub fn climb(&mut self, blocks: i64) {
        if let Some(v) = self.view {
            let next = v + blocks;
            if next >= self.chain.tip_height() {
                self.view = None;
                self.announce_tip = true;
            } else {
                self.view = Some(next);
            }
        }
    }

    /// New tips to publish, each with its ZMQ sequence number. Dropped notifications still
    /// consume a sequence number, so a subscriber sees the gap.
    pub fn take_notifications(&mut self) -> Vec<(String, u32)> {
        let mut out = Vec::new();
        let mut hashes = self.chain.take_announcements();
        if self.view.is_some() {
            return out;
        }
        if std::mem::take(&mut self.announce_tip) {
            hashes = vec![self.chain.tip_hash().to_owned()];
        }
        if !hashes.is_empty() {
            // Before anyone hears of the tip: `getmininginfo` then answers without a recount.
            self.chain.count_staking_supply();
        }
        for hash in hashes {
            let seq = self.zmq_seq;
            self.zmq_seq = self.zmq_seq.wrapping_add(1);
            if self.drop_notifications > 0 {
                self.drop_notifications -= 1;
                continue;
            }
            out.push((hash, seq));
        }
        out
    }

    /// Executes queued operations (the daemon's async worker), and offers held wallet
    /// transactions to the mempool again when their time has come.
    pub fn run_ops(&mut self) {
        if self
            .rebroadcast_at
            .is_some_and(|h| self.chain.tip_height() >= h)
        {
            self.rebroadcast_at = None;
            self.chain.rebroadcast();
        }
        if self.pause_ops {
            return;
        }
        for i in 0..self.ops.len() {
            if self.ops[i].status != "queued" {
                continue;
            }
            let op = self.ops[i].clone();
            let fault = (!self.op_faults.is_empty()).then(|| self.op_faults.remove(0));
            let result = match &fault {
                Some(_) => self.chain.send_currency_held(&op.from, &op.outputs, op.fee),
                None => self.chain.send_currency(&op.from, &op.outputs, op.fee),
            };
            match (result, fault) {
                (Ok(txid), None) => {
                    self.ops[i].status = "success";
                    self.ops[i].txid = Some(txid);
                }
                (Ok(txid), Some(f)) => {
                    if let Some(after) = f.rebroadcast_after {
                        let at = self.chain.tip_height() + after.max(1);
                        self.rebroadcast_at = Some(self.rebroadcast_at.map_or(at, |h| h.min(at)));
                    }
                    self.ops[i].status = f.status;
                    if f.status == "success" {
                        self.ops[i].txid = Some(txid);
                    } else {
                        self.ops[i].error = Some(err(-26, "Transaction rejected by the mempool"));
                    }
                }
                (Err(e), _) => {
                    self.ops[i].status = "failed";
                    self.ops[i].error = Some(e);
                }
            }
        }
    }

    /// Mines the next block of the block timer: about half proof of stake, the staker drawn by
    /// eligible balance among the wallet's identities and the stakers outside the pool.
    pub fn auto_block(&mut self) {
        let step = self.view_step;
        self.climb(step);
        let chain = &mut self.chain;
        if chain.rng.below(2) == 0 {
            let _ = chain.mine(BlockKind::Work);
            return;
        }
        let next = chain.tip_height() + 1;
        let mut candidates: Vec<(String, i64)> = Vec::new();
        let ids: Vec<String> = chain
            .identities()
            .map(|v| v.def.identity_address.clone())
            .collect();
        for id in ids {
            if !chain.wallet_can_spend(&id) || id == chain.params.pool_identity {
                continue;
            }
            let weight: i64 = chain
                .utxos_of(&id)
                .iter()
                .filter(|(op, _)| chain.stake_eligible(op, next).is_ok())
                .map(|(_, u)| u.value)
                .sum();
            if weight > 0 {
                candidates.push((id, weight));
            }
        }
        let total: i64 =
            candidates.iter().map(|(_, w)| w).sum::<i64>() + chain.external_supply.max(0);
        if total <= 0 {
            let _ = chain.mine(BlockKind::Work);
            return;
        }
        let mut pick = chain.rng.below(total as u64) as i64;
        for (id, w) in candidates {
            if pick < w {
                if chain
                    .mine(BlockKind::Stake {
                        staker: id,
                        source: None,
                    })
                    .is_err()
                {
                    let _ = chain.mine(BlockKind::Work);
                }
                return;
            }
            pick -= w;
        }
        // A staker outside the pool won the block: to the pool it looks like work.
        let _ = chain.mine(BlockKind::Work);
    }

    /// Handles one call. `raw` holds the params' exact text (amounts are read from it).
    pub fn handle(&mut self, method: &str, raw: &[Box<RawValue>]) -> Reply {
        if let Some(rule) = self.fail.get_mut(method) {
            rule.count -= 1;
            let rule = rule.clone();
            if rule.count == 0 {
                self.fail.remove(method);
            }
            return if rule.malformed {
                Reply::Malformed("<html><body>502 Bad Gateway</body></html>".into())
            } else {
                Reply::Err(rule.http_status, err(rule.code, rule.message))
            };
        }
        if self.warmup > 0 && !method.starts_with("sim_") {
            self.warmup -= 1;
            return Reply::Err(500, err(-28, "Loading block index..."));
        }
        let params: Vec<Value> = raw
            .iter()
            .map(|r| serde_json::from_str(r.get()).unwrap_or(Value::Null))
            .collect();
        let result = if method == "sendcurrency" {
            self.send_currency(&params, raw)
        } else {
            self.call(method, &params)
        };
        match result {
            Ok(v) => Reply::Ok(v),
            Err(e) => {
                let status = match e.code {
                    -32601 => 404,
                    -32600 => 400,
                    _ => 500,
                };
                Reply::Err(status, e)
            }
        }
    }

    /// How long `method` takes to answer over RPC (`sim_slow`).
    pub fn delay(&self, method: &str) -> std::time::Duration {
        std::time::Duration::from_millis(self.slow.get(method).copied().unwrap_or(0))
    }

    fn call(&mut self, method: &str, params: &[Value]) -> Result<Value, SimError> {
        let tip = self.visible_tip();
        let chain = &mut self.chain;
        // While reindexing, blocks above the tip it shows are not known yet.
        let known = |height: i64| height <= tip;
        match method {
            "getblockcount" => Ok(json!(tip)),
            "getbestblockhash" => Ok(json!(chain.block_at(tip).map_or("", |b| b.hash.as_str()))),
            "getblockhash" => {
                let h = int_param(params, 0)?.ok_or_else(|| err(-1, "missing height"))?;
                chain
                    .block_at(h)
                    .filter(|b| known(b.height))
                    .map(|b| json!(b.hash))
                    .ok_or_else(|| err(-8, "Block height out of range"))
            }
            "getblock" => {
                let id = str_param(params, 0, "hash|height")?;
                let verbosity = match param(params, 1) {
                    None => 1,
                    Some(Value::Bool(b)) => u8::from(*b),
                    Some(Value::Number(n)) => n.as_u64().unwrap_or(1).min(2) as u8,
                    Some(_) => return Err(err(-1, "JSON value is not an integer as expected")),
                };
                let block = if id.len() == 64 {
                    chain
                        .block(&id)
                        .filter(|b| known(b.height) || !chain.on_main_chain(b))
                } else {
                    let h: i64 = id.parse().map_err(|_| err(-5, "Block not found"))?;
                    if h < 0 || h > tip {
                        return Err(err(-8, "Block height out of range"));
                    }
                    chain.block_at(h)
                }
                .ok_or_else(|| err(-5, "Block not found"))?;
                Ok(if verbosity == 0 {
                    json!(format!("(serialized block {})", block.hash))
                } else {
                    render::block(chain, block, verbosity)
                })
            }
            "getinfo" => Ok(json!({
                "VRSCversion": "1.2.16-1-sim", "version": 2_000_753, "protocolversion": 170_010,
                "chainid": chain.params.chain_id, "name": chain.params.name, "walletversion": 60_000,
                "blocks": tip, "longestchain": tip, "timeoffset": 0,
                "tiptime": chain.block_at(tip).map_or(0, |b| b.time),
                "nextblocktime": chain.block_at(tip).map_or(0, |b| b.time + 60),
                "connections": 8, "proxy": "", "difficulty": 68_140_049.320_218_94, "testnet": chain.params.name != "VRSC",
                "keypoololdest": 1_745_000_000, "keypoolsize": 101, "paytxfee": coins(DEFAULT_FEE), "relayfee": coins(100),
                "tls_established": 8, "tls_verified": 0, "errors": "", "CCid": 1, "p2pport": 18842, "rpcport": 18843,
                "magic": -1_234_567_890, "premine": 0, "eras": 1, "reward": chain.params.subsidy.to_string(),
                "halving": "1051920", "decay": "0", "endsubsidy": "0", "veruspos": 50,
            })),
            "getblockchaininfo" => Ok(json!({
                "chain": if chain.params.name == "VRSC" { "main" } else { "test" },
                "name": chain.params.name, "chainid": chain.params.chain_id, "blocks": tip, "headers": tip,
                "bestblockhash": chain.tip_hash(), "difficulty": 68_140_049.320_218_94, "verificationprogress": 1.0,
                "chainwork": format!("{:064x}", 0x1000_0000_u128 * (tip as u128 + 1)),
                "chainstake": format!("{:064x}", 0x2000_0000_u128 * (tip as u128 + 1)),
                "pruned": false, "size_on_disk": 1_000_000 + tip * 2000, "commitments": 0,
                "valuePools": [
                    {"id": "sprout", "monitored": true, "chainValue": coins(0), "chainValueZat": 0},
                    {"id": "sapling", "monitored": true, "chainValue": coins(0), "chainValueZat": 0},
                ],
                "softforks": [], "upgrades": {}, "consensus": {"chaintip": "76b809bb", "nextblock": "76b809bb"},
            })),
            "getmininginfo" => Ok(json!({
                "blocks": tip, "currentblocksize": 0, "currentblocktx": 0, "averageblockfees": coins(0),
                "difficulty": 68_140_049.320_218_94, "stakingsupply": coins(chain.staking_supply()), "errors": "",
                "genproclimit": 0, "localhashps": 0.0, "networkhashps": 42_931_577_911u64,
                "pooledtx": chain.mempool().len(), "testnet": chain.params.name != "VRSC",
                "chain": if chain.params.name == "VRSC" { "main" } else { "test" },
                "generate": false, "staking": chain.staking, "numthreads": 0, "mergemining": 0,
            })),
            "getwalletinfo" => Ok(self.wallet_info()),
            "getidentity" => {
                let name = str_param(params, 0, "identity")?;
                let height = int_param(params, 1)?.filter(|h| *h >= 0).unwrap_or(tip);
                let address = chain
                    .resolve_identity(&name)
                    .ok_or_else(|| err(-5, "Identity not found"))?;
                let v = chain
                    .identity_at(&address, height)
                    .ok_or_else(|| err(-5, "Identity not found"))?;
                Ok(render::identity_reply(chain, v))
            }
            "getidentitieswithaddress" => {
                let q = param(params, 0).ok_or_else(|| err(-1, "missing parameter"))?;
                let address = q
                    .get("address")
                    .and_then(Value::as_str)
                    .ok_or_else(|| err(-8, "address required"))?;
                if !ids::is_address(address, ids::R_VERSION) {
                    return Err(err(
                        -8,
                        "Invalid address: only R-addresses (PKH) are supported",
                    ));
                }
                let from = q.get("fromheight").and_then(Value::as_i64).unwrap_or(0);
                let to = q
                    .get("toheight")
                    .and_then(Value::as_i64)
                    .filter(|t| *t > 0)
                    .unwrap_or(tip);
                let unspent = q.get("unspent").and_then(Value::as_bool).unwrap_or(false);
                let mut out = Vec::new();
                let mut all: Vec<_> = chain
                    .identities()
                    .map(|v| v.def.identity_address.clone())
                    .collect();
                all.sort();
                for id in all {
                    let history = chain.identity_history(&id);
                    let found = if unspent {
                        history
                            .last()
                            .filter(|v| v.def.primary_addresses.iter().any(|a| a == address))
                    } else {
                        history.iter().rev().find(|v| {
                            v.height >= from
                                && v.height <= to
                                && v.def.primary_addresses.iter().any(|a| a == address)
                        })
                    };
                    if let Some(v) = found {
                        let mut obj = render::identity(&v.def);
                        if let Value::Object(m) = &mut obj {
                            m.insert("txout".into(), json!({"txid": v.txid, "voutnum": v.vout}));
                        }
                        out.push(obj);
                    }
                }
                Ok(Value::Array(out))
            }
            "getaddressutxos" => {
                let (addresses, obj) = addresses_param(params)?;
                let mut entries = Vec::new();
                for a in &addresses {
                    for (op, u) in chain.utxos_of(a) {
                        entries.push((
                            u.height,
                            render::address_utxo(chain, a, &op, u.value, &u.script, u.height),
                        ));
                    }
                }
                entries.sort_by_key(|(h, _)| *h);
                let utxos: Vec<Value> = entries.into_iter().map(|(_, v)| v).collect();
                if obj.get("chaininfo").and_then(Value::as_bool) == Some(true) {
                    Ok(json!({"utxos": utxos, "hash": chain.tip_hash(), "height": tip}))
                } else {
                    Ok(Value::Array(utxos))
                }
            }
            "getaddressbalance" => {
                let (addresses, _) = addresses_param(params)?;
                let (mut balance, mut received) = (0i64, 0i64);
                for a in &addresses {
                    for d in chain.deltas_of(a) {
                        balance += d.satoshis;
                        if d.satoshis > 0 {
                            received += d.satoshis;
                        }
                    }
                }
                let id = chain.params.chain_id.clone();
                Ok(
                    json!({"balance": balance, "received": received, "currencybalance": {id.clone(): coins(balance)}, "currencyreceived": {id: coins(received)}}),
                )
            }
            "getaddressdeltas" => {
                let (addresses, obj) = addresses_param(params)?;
                let start = obj
                    .get("start")
                    .and_then(Value::as_i64)
                    .filter(|s| *s > 0)
                    .unwrap_or(0);
                let end = obj
                    .get("end")
                    .and_then(Value::as_i64)
                    .filter(|e| *e > 0)
                    .unwrap_or(tip)
                    .min(tip);
                let mut deltas: Vec<(i64, u32, Value)> = Vec::new();
                for a in &addresses {
                    for d in chain
                        .deltas_of(a)
                        .iter()
                        .filter(|d| d.height >= start && d.height <= end)
                    {
                        deltas.push((
                            d.height,
                            d.blockindex,
                            json!({"satoshis": d.satoshis, "txid": d.txid, "index": d.index, "blockindex": d.blockindex, "height": d.height, "address": a}),
                        ));
                    }
                }
                deltas.sort_by_key(|(h, b, _)| (*h, *b));
                let list: Vec<Value> = deltas.into_iter().map(|(_, _, v)| v).collect();
                if obj.get("chaininfo").and_then(Value::as_bool) == Some(true) {
                    let s = chain
                        .block_at(start)
                        .map(|b| b.hash.clone())
                        .unwrap_or_default();
                    let e = chain
                        .block_at(end)
                        .map(|b| b.hash.clone())
                        .unwrap_or_default();
                    Ok(
                        json!({"deltas": list, "start": {"hash": s, "height": start}, "end": {"hash": e, "height": end}}),
                    )
                } else {
                    Ok(Value::Array(list))
                }
            }
            "getaddresstxids" => {
                let (addresses, obj) = addresses_param(params)?;
                let start = obj
                    .get("start")
                    .and_then(Value::as_i64)
                    .filter(|s| *s > 0)
                    .unwrap_or(0);
                let end = obj
                    .get("end")
                    .and_then(Value::as_i64)
                    .filter(|e| *e > 0)
                    .unwrap_or(tip)
                    .min(tip);
                let mut seen = HashSet::new();
                let mut list: Vec<(i64, u32, String)> = Vec::new();
                for a in &addresses {
                    for d in chain
                        .deltas_of(a)
                        .iter()
                        .filter(|d| d.height >= start && d.height <= end)
                    {
                        if seen.insert(d.txid.clone()) {
                            list.push((d.height, d.blockindex, d.txid.clone()));
                        }
                    }
                }
                list.sort();
                Ok(json!(
                    list.into_iter().map(|(_, _, t)| t).collect::<Vec<_>>()
                ))
            }
            "getaddressmempool" => {
                let (addresses, _) = addresses_param(params)?;
                let wanted: HashSet<&String> = addresses.iter().collect();
                let mut out = Vec::new();
                for txid in chain.mempool() {
                    let Some(tx) = chain.tx(txid) else { continue };
                    for (i, op) in tx.inputs.iter().enumerate() {
                        if let Some(prev) = chain.prevout(op)
                            && let Some(a) = prev.script.first_destination()
                            && wanted.contains(&a)
                        {
                            out.push(json!({"address": a, "txid": txid, "index": i, "satoshis": -prev.value, "timestamp": tx.time, "prevtxid": op.txid, "prevout": op.vout}));
                        }
                    }
                    for (n, o) in tx.outputs.iter().enumerate() {
                        if let Some(a) = o.script.first_destination()
                            && wanted.contains(&a)
                        {
                            out.push(json!({"address": a, "txid": txid, "index": n, "satoshis": o.value, "timestamp": tx.time}));
                        }
                    }
                }
                Ok(Value::Array(out))
            }
            "getrawmempool" => Ok(json!(chain.mempool())),
            "getrawtransaction" => {
                let txid = str_param(params, 0, "txid")?;
                let verbose = match param(params, 1) {
                    Some(Value::Number(n)) => n.as_i64().unwrap_or(0) != 0,
                    Some(Value::Bool(b)) => *b,
                    _ => false,
                };
                let tx = chain
                    .tx(&txid)
                    .ok_or_else(|| err(-5, "No information available about transaction"))?;
                let mined = chain.tx_location(&txid).map(|(_, h, _)| *h);
                if mined.is_some_and(|h| !known(h))
                    || (mined.is_none() && !chain.mempool().contains(&txid))
                {
                    return Err(err(-5, "No information available about transaction"));
                }
                Ok(if verbose {
                    render::raw_tx(chain, tx)
                } else {
                    json!("(raw tx hex)")
                })
            }
            "listunspent" => {
                let minconf = int_param(params, 0)?.unwrap_or(1);
                let maxconf = int_param(params, 1)?.unwrap_or(9_999_999);
                let filter: Option<HashSet<String>> =
                    param(params, 2).and_then(Value::as_array).map(|a| {
                        a.iter()
                            .filter_map(|v| v.as_str().map(str::to_owned))
                            .collect()
                    });
                let mut candidates: Vec<String> = chain
                    .identities()
                    .map(|v| v.def.identity_address.clone())
                    .collect();
                candidates.push(chain.params.pool_r_address.clone());
                candidates.push(chain.params.pool_identity.clone());
                candidates.sort();
                candidates.dedup();
                let mut out = Vec::new();
                for a in candidates.iter().filter(|a| chain.wallet_can_spend(a)) {
                    if filter.as_ref().is_some_and(|f| !f.contains(a)) {
                        continue;
                    }
                    for (op, u) in chain.utxos_of(a) {
                        let conf = tip - u.height + 1;
                        if conf < minconf
                            || conf > maxconf
                            || matches!(u.script, Script::IdentityDefinition(_))
                        {
                            continue;
                        }
                        let mut m = serde_json::Map::new();
                        m.insert("txid".into(), op.txid.clone().into());
                        m.insert("vout".into(), op.vout.into());
                        m.insert("generated".into(), u.coinbase.into());
                        m.insert("address".into(), a.clone().into());
                        m.insert("amount".into(), coins(u.value));
                        if !matches!(u.script, Script::PubKeyHash(_)) {
                            m.insert(
                                "currencyvalues".into(),
                                json!({chain.params.chain_id.clone(): coins(u.value)}),
                            );
                        }
                        m.insert("scriptPubKey".into(), "(illustrative CC script hex)".into());
                        m.insert("confirmations".into(), conf.into());
                        m.insert("spendable".into(), true.into());
                        out.push(Value::Object(m));
                    }
                }
                Ok(Value::Array(out))
            }
            "getcurrency" => {
                let name = param(params, 0)
                    .and_then(Value::as_str)
                    .unwrap_or(&chain.params.name)
                    .to_owned();
                if !(name.eq_ignore_ascii_case(&chain.params.name) || name == chain.params.chain_id)
                {
                    return Err(err(-5, "Currency not found"));
                }
                let options = if chain.params.id_staking { 0x24 } else { 0x20 };
                let mut currency = json!({
                    "version": 1, "options": options, "name": chain.params.name, "currencyid": chain.params.chain_id,
                    "parent": "", "systemid": chain.params.chain_id, "notarizationprotocol": 1, "proofprotocol": 1,
                    "launchsystemid": chain.params.chain_id, "startblock": 0, "endblock": 0,
                    "fullyqualifiedname": chain.params.name, "magicnumber": 0,
                });
                // PBaaS chain definitions print their block time (verusd derives the coinbase
                // maturity from it); the simulated VRSC-like chain prints it when not 60.
                if chain.params.block_time != 60 {
                    currency["blocktime"] = json!(chain.params.block_time);
                }
                Ok(currency)
            }
            "createrawtransaction" => {
                let inputs = param(params, 0)
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                let outputs = param(params, 1)
                    .and_then(Value::as_object)
                    .cloned()
                    .unwrap_or_default();
                if !inputs.is_empty() || !outputs.is_empty() {
                    return Err(err(-8, "the simulator builds only empty raw transactions"));
                }
                // As verusd's: expiry at the next height plus the expiry delta, unless given.
                let expiry =
                    int_param(params, 3)?.unwrap_or(tip + 1 + chain.params.tx_expiry_delta);
                Ok(json!(ids::hex(format!("simrawtx:{expiry}").as_bytes())))
            }
            "decoderawtransaction" => {
                let hex = str_param(params, 0, "hexstring")?;
                let expiry = ids::unhex(&hex)
                    .and_then(|b| String::from_utf8(b).ok())
                    .and_then(|t| {
                        t.strip_prefix("simrawtx:")
                            .and_then(|e| e.parse::<i64>().ok())
                    })
                    .ok_or_else(|| err(-22, "TX decode failed"))?;
                Ok(json!({
                    "txid": ids::hash_hex(&hex, 0), "overwintered": true, "version": 4,
                    "versiongroupid": "892f2085", "locktime": 0, "expiryheight": expiry,
                    "vin": [], "vout": [], "vjoinsplit": [],
                }))
            }
            "z_getoperationstatus" | "z_getoperationresult" => {
                let wanted: Option<HashSet<String>> =
                    param(params, 0).and_then(Value::as_array).map(|a| {
                        a.iter()
                            .filter_map(|v| v.as_str().map(str::to_owned))
                            .collect()
                    });
                let only_finished = method == "z_getoperationresult";
                let mut out = Vec::new();
                let mut remove = Vec::new();
                for op in &self.ops {
                    if wanted.as_ref().is_some_and(|w| !w.contains(&op.id)) {
                        continue;
                    }
                    let finished = matches!(op.status, "success" | "failed" | "cancelled");
                    if only_finished && !finished {
                        continue;
                    }
                    out.push(operation_json(op));
                    if only_finished {
                        remove.push(op.id.clone());
                    }
                }
                self.ops.retain(|o| !remove.contains(&o.id));
                Ok(Value::Array(out))
            }
            "signmessage" => {
                let address = str_param(params, 0, "address")?;
                let message = str_param(params, 1, "message")?;
                let who = chain.resolve_identity(&address).unwrap_or(address);
                Ok(
                    json!({"hash": ids::hex(&ids::sha256(message.as_bytes())), "signature": sim_signature(&who, &message)}),
                )
            }
            "verifymessage" => {
                let address = str_param(params, 0, "address")?;
                let signature = str_param(params, 1, "signature")?;
                let message = str_param(params, 2, "message")?;
                let who = chain.resolve_identity(&address).unwrap_or(address);
                Ok(json!(signature == sim_signature(&who, &message)))
            }
            "generate" | "sim_generate" => {
                let n = int_param(params, 0)?.unwrap_or(1).clamp(0, 100_000) as u32;
                Ok(json!(chain.generate(n)))
            }
            "setgenerate" | "sim_setstaking" => {
                chain.staking = param(params, 0).and_then(Value::as_bool).unwrap_or(true);
                Ok(Value::Null)
            }
            _ => self.control(method, params),
        }
    }

    fn wallet_info(&self) -> Value {
        let chain = &self.chain;
        let next = chain.tip_height() + 1;
        let (mut balance, mut immature, mut outputs, mut eligible) = (0i64, 0i64, 0u64, 0i64);
        let mut addresses: Vec<String> = chain
            .identities()
            .map(|v| v.def.identity_address.clone())
            .collect();
        addresses.push(chain.params.pool_identity.clone());
        addresses.push(chain.params.pool_r_address.clone());
        addresses.sort();
        addresses.dedup();
        for a in addresses.iter().filter(|a| chain.wallet_can_spend(a)) {
            let own = *a == chain.params.pool_identity || *a == chain.params.pool_r_address;
            for (op, u) in chain.utxos_of(a) {
                if own {
                    if u.coinbase && next - u.height < chain.params.coinbase_maturity {
                        immature += u.value;
                    } else {
                        balance += u.value;
                    }
                }
                if chain.stake_eligible(&op, next).is_ok() {
                    outputs += 1;
                    eligible += u.value;
                }
            }
        }
        json!({
            "walletversion": 60_000, "balance": coins(balance), "unconfirmed_balance": coins(0),
            "immature_balance": coins(immature), "eligible_staking_outputs": outputs,
            "eligible_staking_balance": coins(eligible), "txcount": chain.tip_height(),
            "keypoololdest": 1_745_000_000, "keypoolsize": 101, "paytxfee": coins(0),
            "seedfp": ids::hash_hex("seedfp", 0),
        })
    }

    fn send_currency(
        &mut self,
        params: &[Value],
        raw: &[Box<RawValue>],
    ) -> Result<Value, SimError> {
        let from = str_param(params, 0, "fromaddress")?;
        let outputs_raw = raw.get(1).ok_or_else(|| err(-8, "outputs required"))?;
        let reqs: Vec<OutputReq> = serde_json::from_str(outputs_raw.get())
            .map_err(|e| err(-8, format!("invalid outputs: {e}")))?;
        if reqs.is_empty() {
            return Err(err(-8, "at least one output is required"));
        }
        let mut outputs = Vec::new();
        for r in reqs {
            if let Some(c) = &r.currency
                && !(c.eq_ignore_ascii_case(&self.chain.params.name)
                    || *c == self.chain.params.chain_id)
            {
                return Err(err(-8, format!("unsupported currency {c}")));
            }
            // Read the amount from its exact text: never through floating point.
            let sats = parse_coin_text(r.amount.get())
                .filter(|s| *s > 0)
                .ok_or_else(|| err(-8, format!("invalid amount {}", r.amount.get())))?;
            if !(ids::is_address(&r.address, ids::I_VERSION)
                || ids::is_address(&r.address, ids::R_VERSION))
            {
                return Err(err(-5, format!("Invalid destination {}", r.address)));
            }
            outputs.push((r.address, sats));
        }
        let fee = match raw.get(3).map(|r| r.get()) {
            None | Some("null") => DEFAULT_FEE,
            Some(text) => {
                parse_coin_text(text).ok_or_else(|| err(-8, format!("invalid fee {text}")))?
            }
        };
        self.op_counter += 1;
        let h = ids::hash_hex(
            &format!("op:{}:{}", self.chain.params.seed, self.op_counter),
            0,
        );
        let id = format!(
            "opid-{}-{}-{}-{}-{}",
            &h[0..8],
            &h[8..12],
            &h[12..16],
            &h[16..20],
            &h[20..32]
        );
        self.ops.push(Operation {
            id: id.clone(),
            status: "queued",
            creation_time: now_unix(),
            from,
            outputs,
            fee,
            txid: None,
            error: None,
        });
        Ok(json!(id))
    }

    fn control(&mut self, method: &str, params: &[Value]) -> Result<Value, SimError> {
        let chain = &mut self.chain;
        match method {
            "sim_stake" => {
                let staker = str_param(params, 0, "staker")?;
                let staker = chain.resolve_identity(&staker).unwrap_or(staker);
                let source = match (
                    param(params, 1).and_then(Value::as_str),
                    int_param(params, 2)?,
                ) {
                    (Some(txid), Some(vout)) => Some(OutPoint {
                        txid: txid.to_owned(),
                        vout: vout as u32,
                    }),
                    _ => None,
                };
                chain
                    .mine(BlockKind::Stake { staker, source })
                    .map(|h| json!(h))
            }
            "sim_mine" => {
                let kinds = block_kinds(chain, param(params, 0))?;
                let mut hashes = Vec::new();
                for k in kinds {
                    hashes.push(chain.mine(k)?);
                }
                Ok(json!(hashes))
            }
            "sim_fund" => {
                let address = str_param(params, 0, "address")?;
                let address = chain.resolve_identity(&address).unwrap_or(address);
                let amount = param(params, 1)
                    .and_then(parse_coins)
                    .ok_or_else(|| err(-8, "invalid amount"))?;
                let count = int_param(params, 2)?.unwrap_or(1).clamp(1, 100_000);
                let mut txids = Vec::new();
                for _ in 0..count {
                    txids.push(chain.fund(&address, amount)?);
                }
                Ok(json!(txids))
            }
            "sim_spend" => {
                let txid = str_param(params, 0, "txid")?;
                let vout = int_param(params, 1)?.ok_or_else(|| err(-1, "missing vout"))?;
                let to = param(params, 2)
                    .and_then(Value::as_str)
                    .map_or_else(|| ids::r_address("sim-elsewhere"), str::to_owned);
                chain
                    .spend(
                        &OutPoint {
                            txid,
                            vout: vout as u32,
                        },
                        &to,
                    )
                    .map(|t| json!(t))
            }
            "sim_registeridentity" => {
                let spec =
                    param(params, 0).ok_or_else(|| err(-1, "identity definition required"))?;
                let name = spec
                    .get("name")
                    .and_then(Value::as_str)
                    .ok_or_else(|| err(-8, "name required"))?
                    .to_owned();
                let address = ids::identity_address(&name, &chain.params.chain_id);
                let mut def = IdentityDef {
                    version: 3,
                    flags: 0,
                    primary_addresses: vec![ids::r_address(&format!("key:{name}"))],
                    minimum_signatures: 1,
                    name: name.clone(),
                    identity_address: address.clone(),
                    parent: chain.params.chain_id.clone(),
                    system_id: chain.params.chain_id.clone(),
                    revocation_authority: address.clone(),
                    recovery_authority: address.clone(),
                    timelock: 0,
                };
                apply_identity_spec(&mut def, spec)?;
                let txid = chain.register_identity(def)?;
                Ok(json!({"identityaddress": address, "txid": txid}))
            }
            "sim_updateidentity" => {
                let spec = param(params, 0).ok_or_else(|| err(-1, "identity changes required"))?;
                let who = spec
                    .get("identity")
                    .and_then(Value::as_str)
                    .ok_or_else(|| err(-8, "identity required"))?;
                let address = chain
                    .resolve_identity(who)
                    .ok_or_else(|| err(-5, "Identity not found"))?;
                let mut def = chain
                    .identity_at(&address, i64::MAX)
                    .map(|v| v.def.clone())
                    .ok_or_else(|| err(-5, "Identity not found"))?;
                apply_identity_spec(&mut def, spec)?;
                chain.update_identity(def).map(|t| json!(t))
            }
            "sim_reorg" => {
                let depth = int_param(params, 0)?.unwrap_or(1).max(0) as usize;
                let kinds = block_kinds(chain, param(params, 1))?;
                chain.reorg(depth, kinds).map(|h| json!(h))
            }
            "sim_stakeguard" => {
                let hash = str_param(params, 0, "blockhash")?;
                chain.stakeguard(&hash).map(|t| json!(t))
            }
            "sim_holdmempool" => {
                chain.hold_mempool = param(params, 0).and_then(Value::as_bool).unwrap_or(true);
                Ok(Value::Null)
            }
            "sim_setexternalsupply" => {
                chain.external_supply = param(params, 0)
                    .and_then(parse_coins)
                    .ok_or_else(|| err(-8, "invalid amount"))?;
                Ok(Value::Null)
            }
            "sim_slow" => {
                // ["getmininginfo", 90]: that method answers 90 ms late over RPC (0: on time).
                let m = param(params, 0)
                    .and_then(Value::as_str)
                    .ok_or_else(|| err(-8, "method required"))?
                    .to_owned();
                match int_param(params, 1)?.unwrap_or(0) {
                    ms if ms > 0 => self.slow.insert(m, ms as u64),
                    _ => self.slow.remove(&m),
                };
                Ok(Value::Null)
            }
            "sim_pauseops" => {
                self.pause_ops = param(params, 0).and_then(Value::as_bool).unwrap_or(true);
                Ok(Value::Null)
            }
            "sim_restart" => {
                // verusd restarted: async operations and the ZMQ sequence live in memory only;
                // at start the wallet offers its unmined transactions to the mempool again.
                self.ops.clear();
                self.zmq_seq = 0;
                self.warmup = int_param(params, 0)?.unwrap_or(0).max(0) as u32;
                let entered = self.chain.rebroadcast();
                Ok(json!(entered))
            }
            "sim_reindex" => {
                // verusd -reindex: the tip drops and climbs back on the same hashes.
                let height = int_param(params, 0)?.unwrap_or(0);
                let step = int_param(params, 1)?.unwrap_or(1);
                self.reindex(height, step);
                Ok(json!(self.visible_tip()))
            }
            "sim_failover" => {
                // The pool now talks to another node with the same wallet, `lag` blocks behind
                // and still syncing: none of this node's operations, a new ZMQ sequence.
                let lag = int_param(params, 0)?.unwrap_or(10).max(0);
                let step = int_param(params, 1)?.unwrap_or(1);
                self.ops.clear();
                self.zmq_seq = 0;
                let tip = self.chain.tip_height();
                self.reindex(tip - lag, step);
                Ok(json!(self.visible_tip()))
            }
            "sim_climb" => {
                let blocks = int_param(params, 0)?.unwrap_or(1).max(1);
                self.climb(blocks);
                Ok(json!(self.visible_tip()))
            }
            "sim_failnextop" => {
                let spec = param(params, 0).cloned().unwrap_or_else(|| json!({}));
                let status = match spec.get("status").and_then(Value::as_str) {
                    None | Some("failed") => "failed",
                    Some("success") => "success",
                    Some(other) => {
                        return Err(err(-8, format!("status {other}: failed or success")));
                    }
                };
                self.op_faults.push(OpFault {
                    status,
                    rebroadcast_after: spec.get("rebroadcast_after").and_then(Value::as_i64),
                });
                Ok(Value::Null)
            }
            "sim_failnext" => {
                let spec = param(params, 0).ok_or_else(|| err(-1, "failure rule required"))?;
                let m = spec
                    .get("method")
                    .and_then(Value::as_str)
                    .ok_or_else(|| err(-8, "method required"))?
                    .to_owned();
                let rule = FailRule {
                    count: spec
                        .get("count")
                        .and_then(Value::as_u64)
                        .unwrap_or(1)
                        .max(1) as u32,
                    http_status: spec
                        .get("http_status")
                        .and_then(Value::as_u64)
                        .unwrap_or(500) as u16,
                    code: spec.get("code").and_then(Value::as_i64).unwrap_or(-1),
                    message: spec
                        .get("message")
                        .and_then(Value::as_str)
                        .unwrap_or("scripted failure")
                        .to_owned(),
                    malformed: spec
                        .get("malformed")
                        .and_then(Value::as_bool)
                        .unwrap_or(false),
                };
                self.fail.insert(m, rule);
                Ok(Value::Null)
            }
            "sim_dropnotifications" => {
                self.drop_notifications = int_param(params, 0)?.unwrap_or(1).max(0) as u32;
                Ok(Value::Null)
            }
            "sim_state" => Ok(json!({
                "name": chain.params.name, "chainid": chain.params.chain_id, "tip": chain.tip_height(),
                "tiphash": chain.tip_hash(), "poolidentity": chain.params.pool_identity,
                "poolprimaryaddress": chain.params.pool_r_address, "mempool": chain.mempool(),
                "zmqsequence": self.zmq_seq, "visibletip": self.view, "held": chain.held(),
            })),
            _ => Err(err(-32601, "Method not found")),
        }
    }
}

/// The simulated signature of `who` over `message` (hex of SHA-256; not cryptography).
pub fn sim_signature(who: &str, message: &str) -> String {
    ids::hex(&ids::sha256(
        format!("sim-signature:{who}:{message}").as_bytes(),
    ))
}

fn operation_json(op: &Operation) -> Value {
    let mut m = serde_json::Map::new();
    m.insert("id".into(), op.id.clone().into());
    m.insert("status".into(), op.status.into());
    m.insert("creation_time".into(), op.creation_time.into());
    if let Some(e) = &op.error {
        m.insert(
            "error".into(),
            json!({"code": e.code, "message": e.message}),
        );
    }
    if let Some(t) = &op.txid {
        m.insert("result".into(), json!({"txid": t}));
        m.insert("execution_secs".into(), json!(0.05));
    }
    m.insert("method".into(), "sendcurrency".into());
    m.insert(
        "params".into(),
        Value::Array(
            op.outputs
                .iter()
                .map(|(a, s)| json!({"address": a, "amount": coins(*s)}))
                .collect(),
        ),
    );
    Value::Object(m)
}

fn block_kinds(chain: &Chain, spec: Option<&Value>) -> Result<Vec<BlockKind>, SimError> {
    let Some(list) = spec.and_then(Value::as_array) else {
        return Ok(Vec::new());
    };
    list.iter()
        .map(|item| match item.get("staker").and_then(Value::as_str) {
            Some(s) => Ok(BlockKind::Stake {
                staker: chain.resolve_identity(s).unwrap_or_else(|| s.to_owned()),
                source: None,
            }),
            None => Ok(BlockKind::Work),
        })
        .collect()
}

fn apply_identity_spec(def: &mut IdentityDef, spec: &Value) -> Result<(), SimError> {
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    if let Some(v) = spec.get("primaryaddresses") {
        def.primary_addresses = strings(v);
    }
    if let Some(v) = spec.get("minimumsignatures").and_then(Value::as_u64) {
        def.minimum_signatures = v as u32;
    }
    if let Some(v) = spec.get("flags").and_then(Value::as_u64) {
        def.flags = v as u32;
    }
    if let Some(v) = spec.get("timelock").and_then(Value::as_i64) {
        def.timelock = v;
    }
    if let Some(v) = spec.get("locked").and_then(Value::as_bool) {
        def.flags = if v {
            def.flags | FLAG_LOCKED
        } else {
            def.flags & !FLAG_LOCKED
        };
    }
    if let Some(v) = spec.get("revoked").and_then(Value::as_bool) {
        def.flags = if v {
            def.flags | crate::chain::FLAG_REVOKED
        } else {
            def.flags & !crate::chain::FLAG_REVOKED
        };
    }
    if let Some(v) = spec.get("revocationauthority").and_then(Value::as_str) {
        def.revocation_authority = v.to_owned();
    }
    if let Some(v) = spec.get("recoveryauthority").and_then(Value::as_str) {
        def.recovery_authority = v.to_owned();
    }
    if def.primary_addresses.is_empty() || def.primary_addresses.len() > 25 {
        return Err(err(-8, "an identity needs 1 to 25 primary addresses"));
    }
    if def.minimum_signatures == 0 || def.minimum_signatures > 13 {
        return Err(err(-8, "minimumsignatures must be 1 to 13"));
    }
    Ok(())
}
