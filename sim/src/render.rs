//! verusd's JSON shapes (`blockToJSON`, `TxToJSON`, `CIdentity::ToUniValue`, …) for the
//! simulated chain. Field names, nesting and types follow `tests/fixtures/verusd/`.

use serde_json::{Map, Value, json};

use crate::amount::coins;
use crate::chain::{Block, Chain, IdVersion, IdentityDef, OutPoint, Script, Tx, TxOut};
use crate::ids;

fn illustrative() -> Value {
    Value::String("(illustrative)".into())
}

/// The identity object (`identity` in getidentity, `identityprimary` in outputs).
pub fn identity(def: &IdentityDef) -> Value {
    json!({
        "version": def.version,
        "flags": def.flags,
        "primaryaddresses": def.primary_addresses,
        "minimumsignatures": def.minimum_signatures,
        "name": def.name,
        "identityaddress": def.identity_address,
        "parent": def.parent,
        "systemid": def.system_id,
        "contentmap": {},
        "contentmultimap": {},
        "revocationauthority": def.revocation_authority,
        "recoveryauthority": def.recovery_authority,
        "timelock": def.timelock,
    })
}

/// `getidentity`'s reply for a version.
pub fn identity_reply(chain: &Chain, v: &IdVersion) -> Value {
    let friendly = format!("{}.{}@", v.def.name, chain.params.name);
    let mine = chain.wallet_can_spend(&v.def.identity_address);
    json!({
        "friendlyname": friendly,
        "fullyqualifiedname": friendly,
        "identity": identity(&v.def),
        "status": if v.def.revoked() { "revoked" } else { "active" },
        "canspendfor": mine,
        "cansignfor": mine,
        "blockheight": v.height,
        "txid": v.txid,
        "vout": v.vout,
    })
}

fn pkh_hex(address: &str) -> String {
    let hash = ids::sha256(address.as_bytes());
    ids::hex(&hash[..20])
}

/// `scriptPubKey` of an output; `full` adds `asm` (getblock's format).
fn script_pub_key(script: &Script, full: bool) -> Value {
    let mut m = Map::new();
    match script {
        Script::PubKeyHash(a) => {
            m.insert("type".into(), "pubkeyhash".into());
            m.insert("spendableoutput".into(), true.into());
            m.insert("reqSigs".into(), 1.into());
            m.insert("addresses".into(), json!([a]));
            if full {
                m.insert(
                    "asm".into(),
                    format!(
                        "OP_DUP OP_HASH160 {} OP_EQUALVERIFY OP_CHECKSIG",
                        pkh_hex(a)
                    )
                    .into(),
                );
            }
            m.insert("hex".into(), format!("76a914{}88ac", pkh_hex(a)).into());
            return Value::Object(m);
        }
        Script::NullData => {
            m.insert("type".into(), "nulldata".into());
            m.insert("spendableoutput".into(), false.into());
            if full {
                m.insert("asm".into(), "OP_RETURN (serialized CStakeParams)".into());
            }
            m.insert("hex".into(), illustrative());
            return Value::Object(m);
        }
        Script::IdentityDefinition(def) => {
            m.insert("type".into(), "cryptocondition".into());
            m.insert("identityprimary".into(), identity(def));
        }
        Script::StakeGuard(_) => {
            m.insert("type".into(), "cryptocondition".into());
            m.insert("stakeguard".into(), "".into());
        }
        Script::FeePool => {
            m.insert("type".into(), "cryptocondition".into());
            m.insert("feepool".into(), json!({}));
        }
        Script::Identity(_) => {
            m.insert("type".into(), "cryptocondition".into());
        }
    }
    m.insert("spendableoutput".into(), script.spendable().into());
    m.insert("reqSigs".into(), 1.into());
    m.insert("addresses".into(), json!(script.addresses()));
    if full {
        m.insert("asm".into(), illustrative());
    }
    m.insert("hex".into(), illustrative());
    Value::Object(m)
}

fn vout_json(chain: &Chain, txid: &str, n: usize, out: &TxOut, full: bool) -> Value {
    let mut m = Map::new();
    if full {
        m.insert("value".into(), coins(out.value));
        m.insert("valueZat".into(), out.value.into());
        m.insert("valueSat".into(), out.value.into());
        m.insert("n".into(), n.into());
    } else {
        m.insert("n".into(), n.into());
        m.insert("value".into(), coins(out.value));
        m.insert("valueSat".into(), out.value.into());
    }
    m.insert("scriptPubKey".into(), script_pub_key(&out.script, full));
    if let Some(spend) = chain.spent(&OutPoint {
        txid: txid.to_owned(),
        vout: n as u32,
    }) {
        m.insert("spentTxId".into(), spend.txid.clone().into());
        m.insert("spentIndex".into(), spend.index.into());
        m.insert("spentHeight".into(), spend.height.into());
    }
    Value::Object(m)
}

fn vin_json(chain: &Chain, tx: &Tx, raw_format: bool) -> Vec<Value> {
    if tx.coinbase {
        return vec![json!({"coinbase": "03d4e93900", "sequence": 4_294_967_295u32})];
    }
    tx.inputs
        .iter()
        .map(|op| {
            let prev = chain.prevout(op);
            let value = prev.map_or(0, |p| p.value);
            let mut m = Map::new();
            m.insert("txid".into(), op.txid.clone().into());
            m.insert("vout".into(), op.vout.into());
            if raw_format {
                m.insert(
                    "addresses".into(),
                    json!(prev.map(|p| p.script.addresses()).unwrap_or_default()),
                );
                m.insert("minrequired".into(), 1.into());
            }
            m.insert(
                "scriptSig".into(),
                json!({"asm": "(illustrative)", "hex": "(illustrative)"}),
            );
            m.insert("value".into(), coins(value));
            m.insert("valueSat".into(), value.into());
            if !raw_format
                && let Some(p) = prev
                && !matches!(p.script, Script::IdentityDefinition(_))
                && let Some(a) = p.script.first_destination()
            {
                m.insert("address".into(), a.into());
            }
            m.insert("sequence".into(), 4_294_967_295u32.into());
            Value::Object(m)
        })
        .collect()
}

/// A transaction as `getblock … 2` lists it.
pub fn block_tx(chain: &Chain, tx: &Tx) -> Value {
    json!({
        "txid": tx.txid,
        "overwintered": true,
        "version": 4,
        "versiongroupid": "892f2085",
        "locktime": 0,
        "expiryheight": tx.expiry_height,
        "vin": vin_json(chain, tx, false),
        "vout": tx.outputs.iter().enumerate().map(|(n, o)| vout_json(chain, &tx.txid, n, o, true)).collect::<Vec<_>>(),
        "vjoinsplit": [],
        "valueBalance": coins(0),
        "valueBalanceZat": 0,
        "vShieldedSpend": [],
        "vShieldedOutput": [],
    })
}

/// `getrawtransaction <txid> 1`.
pub fn raw_tx(chain: &Chain, tx: &Tx) -> Value {
    let mut m = Map::new();
    m.insert("hex".into(), "(raw tx hex)".into());
    m.insert("txid".into(), tx.txid.clone().into());
    m.insert("overwintered".into(), true.into());
    m.insert("version".into(), 4.into());
    m.insert("versiongroupid".into(), "892f2085".into());
    m.insert("locktime".into(), 0.into());
    m.insert("expiryheight".into(), tx.expiry_height.into());
    m.insert("vin".into(), Value::Array(vin_json(chain, tx, true)));
    m.insert(
        "vout".into(),
        Value::Array(
            tx.outputs
                .iter()
                .enumerate()
                .map(|(n, o)| vout_json(chain, &tx.txid, n, o, false))
                .collect(),
        ),
    );
    m.insert("vjoinsplit".into(), json!([]));
    if let Some((hash, height, _)) = chain.tx_location(&tx.txid) {
        let time = chain.block(hash).map_or(0, |b| b.time);
        m.insert("blockhash".into(), hash.clone().into());
        m.insert("height".into(), (*height).into());
        m.insert(
            "confirmations".into(),
            (chain.tip_height() - height + 1).into(),
        );
        m.insert("time".into(), time.into());
        m.insert("blocktime".into(), time.into());
    }
    Value::Object(m)
}

fn hex_of(seed: &str) -> String {
    ids::hash_hex(seed, 0)
}

/// `getblock <hash> <verbosity>` for verbosity 1 and 2.
pub fn block(chain: &Chain, b: &Block, verbosity: u8) -> Value {
    let mut m = Map::new();
    m.insert("hash".into(), b.hash.clone().into());
    m.insert(
        "validationtype".into(),
        if b.is_stake() { "stake" } else { "work" }.into(),
    );
    if let (Some(source), Some(staker)) = (&b.stake_source, &b.staker) {
        m.insert("postarget".into(), format!("{:0>64}", "2f3a9c1e0a").into());
        m.insert(
            "poshashbh".into(),
            hex_of(&format!("poshashbh:{}", b.hash)).into(),
        );
        m.insert(
            "poshashtx".into(),
            hex_of(&format!("poshashtx:{}", b.hash)).into(),
        );
        m.insert("possourcetxid".into(), source.txid.clone().into());
        m.insert("possourcevoutnum".into(), source.vout.into());
        m.insert(
            "posrewarddest".into(),
            chain.params.pool_identity.clone().into(),
        );
        m.insert("postxddest".into(), staker.clone().into());
    }
    m.insert("confirmations".into(), chain.confirmations(b).into());
    m.insert("size".into(), (1000 + 400 * b.txids.len()).into());
    m.insert("height".into(), b.height.into());
    m.insert("version".into(), 65540.into());
    m.insert(
        "merkleroot".into(),
        hex_of(&format!("merkle:{}", b.hash)).into(),
    );
    m.insert("segid".into(), (-1).into());
    m.insert(
        "finalsaplingroot".into(),
        hex_of(&format!("sapling:{}", b.hash)).into(),
    );
    let txs: Vec<Value> = if verbosity >= 2 {
        b.txids
            .iter()
            .filter_map(|t| chain.tx(t))
            .map(|t| block_tx(chain, t))
            .collect()
    } else {
        b.txids.iter().map(|t| Value::String(t.clone())).collect()
    };
    m.insert("tx".into(), Value::Array(txs));
    m.insert("time".into(), b.time.into());
    m.insert("nonce".into(), hex_of(&format!("nonce:{}", b.hash)).into());
    m.insert("solution".into(), "(long hex, elided)".into());
    m.insert("bits".into(), "1b05c1f4".into());
    m.insert("difficulty".into(), json!(68_140_049.320_218_94));
    m.insert(
        "chainwork".into(),
        format!("{:064x}", 0x1000_0000_u128 * (b.height as u128 + 1)).into(),
    );
    m.insert(
        "chainstake".into(),
        format!("{:064x}", 0x2000_0000_u128 * (b.height as u128 + 1)).into(),
    );
    m.insert("anchor".into(), hex_of("anchor").into());
    m.insert(
        "blocktype".into(),
        if b.is_stake() { "minted" } else { "mined" }.into(),
    );
    m.insert(
        "valuePools".into(),
        json!([
            {"id": "sprout", "monitored": true, "chainValue": coins(0), "chainValueZat": 0, "valueDelta": coins(0), "valueDeltaZat": 0},
            {"id": "sapling", "monitored": true, "chainValue": coins(0), "chainValueZat": 0, "valueDelta": coins(0), "valueDeltaZat": 0},
        ]),
    );
    if b.height > 0 {
        m.insert("previousblockhash".into(), b.prev_hash.clone().into());
    }
    if let Some(next) = chain.next_hash(b) {
        m.insert("nextblockhash".into(), next.into());
    }
    m.insert(
        "proofroot".into(),
        json!({
            "version": 1,
            "type": 1,
            "systemid": chain.params.chain_id,
            "height": b.height,
            "stateroot": hex_of(&format!("state:{}", b.hash)),
            "blockhash": b.hash,
            "power": hex_of(&format!("power:{}", b.hash)),
        }),
    );
    m.insert(
        "prevmmrroot".into(),
        hex_of(&format!("mmr:{}", b.prev_hash)).into(),
    );
    Value::Object(m)
}

/// One `getaddressutxos` entry.
pub fn address_utxo(
    chain: &Chain,
    address: &str,
    op: &OutPoint,
    value: i64,
    script: &Script,
    height: i64,
) -> Value {
    let mut m = Map::new();
    m.insert("address".into(), address.into());
    m.insert("txid".into(), op.txid.clone().into());
    m.insert("outputIndex".into(), op.vout.into());
    m.insert("isspendable".into(), 1.into());
    let hex = match script {
        Script::PubKeyHash(a) => format!("76a914{}88ac", pkh_hex(a)),
        _ => "(illustrative CC script hex)".to_owned(),
    };
    m.insert("script".into(), hex.into());
    if !matches!(script, Script::PubKeyHash(_)) {
        m.insert(
            "currencyvalues".into(),
            json!({ chain.params.chain_id.clone(): coins(value) }),
        );
    }
    m.insert("satoshis".into(), value.into());
    m.insert("height".into(), height.into());
    m.insert(
        "blocktime".into(),
        chain.block_at(height).map_or(0, |b| b.time).into(),
    );
    Value::Object(m)
}
