//! The simulator's replies have the keys, nesting and value types of every verusd fixture
//! (`tests/fixtures/verusd/`, copied from the project's research). A scenario equivalent to
//! the fixtures' is scripted, each fixture's call is made over HTTP with the scenario's
//! addresses and hashes, and the two envelopes are compared shape for shape.

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::{Value, json};

use crate::support::{RPC_PASSWORD, RPC_USER, sim_with};

/// Shape differences between a fixture (`expected`) and a reply (`actual`).
fn shape_diff(path: &str, expected: &Value, actual: &Value, out: &mut Vec<String>) {
    match (expected, actual) {
        (Value::Object(e), _) if e.contains_key("(shape not verified)") => {}
        (Value::Object(e), Value::Object(a)) => {
            let ek: BTreeSet<&String> = e.keys().collect();
            let ak: BTreeSet<&String> = a.keys().collect();
            for k in ek.difference(&ak) {
                out.push(format!("{path}.{k}: missing"));
            }
            for k in ak.difference(&ek) {
                out.push(format!("{path}.{k}: not in the fixture"));
            }
            for k in ek.intersection(&ak) {
                shape_diff(&format!("{path}.{k}"), &e[*k], &a[*k], out);
            }
        }
        (Value::Array(e), Value::Array(a)) => {
            if e.is_empty() {
                return;
            }
            if a.is_empty() {
                out.push(format!("{path}: empty, the fixture has elements"));
            }
            // Elements may differ in kind (coinbase and spend inputs, script types): each
            // element of the reply must have the shape of some element of the fixture.
            for (i, item) in a.iter().enumerate() {
                let fits = e.iter().any(|candidate| {
                    let mut d = Vec::new();
                    shape_diff("", candidate, item, &mut d);
                    d.is_empty()
                });
                if !fits {
                    let mut d = Vec::new();
                    shape_diff(
                        &format!("{path}[{i}]"),
                        &e[i.min(e.len() - 1)],
                        item,
                        &mut d,
                    );
                    out.extend(d);
                }
            }
        }
        (Value::Number(_), Value::Number(_))
        | (Value::String(_), Value::String(_))
        | (Value::Bool(_), Value::Bool(_))
        | (Value::Null, Value::Null) => {}
        _ => out.push(format!(
            "{path}: fixture has {}, reply has {}",
            kind(expected),
            kind(actual)
        )),
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn fixture(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/verusd")
        .join(name);
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

async fn post(url: &str, method: &str, params: Value) -> (u16, Value) {
    let resp = coinstaker::net::client_builder()
        .build()
        .unwrap()
        .post(url)
        .basic_auth(RPC_USER, Some(RPC_PASSWORD))
        .json(&json!({"jsonrpc": "1.0", "id": "coinstaker", "method": method, "params": params}))
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap())
}

#[actix_web::test]
async fn every_fixture_has_the_shape_of_the_simulators_reply() {
    // The fixtures are of VRSC mainnet: so is this chain.
    let sim = sim_with(verusd_sim::Params {
        name: "VRSC".into(),
        chain_id: "i5w5MuNik5NtLcYmNzcvaoixooEebB6MGV".into(),
        ..verusd_sim::Params::default()
    })
    .await;
    let call = |m: &str, p: Value| sim.call(m, p).unwrap();
    let state = call("sim_state", json!([]));
    let pool_r = state["poolprimaryaddress"].as_str().unwrap().to_owned();
    let pool_id = state["poolidentity"].as_str().unwrap().to_owned();

    // The fixtures' cast: alice (locked, separate authorities), bob (about to request an unlock).
    let revoker =
        call("sim_registeridentity", json!([{"name": "alice-revoke"}]))["identityaddress"].clone();
    let recoverer =
        call("sim_registeridentity", json!([{"name": "alice-recover"}]))["identityaddress"].clone();
    let alice = call("sim_registeridentity", json!([{"name": "alice", "primaryaddresses": ["RK9mYm318W51AzLUASEJhcEfS3vWjvMR3P", pool_r], "locked": true, "timelock": 1440, "revocationauthority": revoker, "recoveryauthority": recoverer}]))["identityaddress"].as_str().unwrap().to_owned();
    call(
        "sim_registeridentity",
        json!([{"name": "bob", "primaryaddresses": ["RSgzZ8uKYLR9ugQgiFBP7b3JxjLikwShzF", pool_r], "locked": true, "timelock": 1440}]),
    );
    call("sim_fund", json!([alice, "15234.56789012"]));
    call("sim_fund", json!([alice, "12.84211007"]));
    call("sim_fund", json!([pool_id, "25.0051"]));
    call("sim_generate", json!([151]));
    // Bob requests an unlock in the same block alice stakes (as in getblock_stake.json).
    let tip = call("getblockcount", json!([])).as_i64().unwrap();
    call(
        "sim_updateidentity",
        json!([{"identity": "bob@", "locked": false, "timelock": tip + 1440 + 20}]),
    );
    let stake = call("sim_stake", json!([alice]))
        .as_str()
        .unwrap()
        .to_owned();
    // A second stake that is then orphaned.
    let orphan = call("sim_stake", json!([alice]))
        .as_str()
        .unwrap()
        .to_owned();
    call("sim_reorg", json!([1]));
    let work_height = call("getblockcount", json!([])).as_i64().unwrap();
    // A payment.
    let opid = call(
        "sendcurrency",
        json!([pool_id, [{"address": alice, "amount": 12.84211007}], 1, 0.0001]),
    )
    .as_str()
    .unwrap()
    .to_owned();
    let txid = crate::support::eventually(5, || async {
        let ops = sim.call("z_getoperationstatus", json!([[opid]])).unwrap();
        ops[0]["result"]["txid"].as_str().map(str::to_owned)
    })
    .await
    .unwrap();
    call("sim_generate", json!([3]));
    let (_, op_status) = post(&sim.rpc_url, "z_getoperationstatus", json!([[opid]])).await;

    let cases: Vec<(&str, &str, &str, Value)> = vec![
        (
            "rpc_envelope.json",
            "response_ok",
            "getblockcount",
            json!([]),
        ),
        (
            "rpc_envelope.json",
            "response_error_http_500",
            "getblockhash",
            json!([99_999_999]),
        ),
        (
            "rpc_envelope.json",
            "response_method_not_found_http_404",
            "nosuchmethod",
            json!([]),
        ),
        ("getblockcount.json", "response", "getblockcount", json!([])),
        (
            "getblockhash.json",
            "response",
            "getblockhash",
            json!([work_height]),
        ),
        (
            "getblock_stake.json",
            "response",
            "getblock",
            json!([stake, 2]),
        ),
        (
            "getblock_orphaned.json",
            "response",
            "getblock",
            json!([orphan, 1]),
        ),
        (
            "getblock_work.json",
            "response",
            "getblock",
            json!([(work_height - 1).to_string(), 1]),
        ),
        ("getinfo.json", "response", "getinfo", json!([])),
        (
            "getblockchaininfo.json",
            "response",
            "getblockchaininfo",
            json!([]),
        ),
        ("getmininginfo.json", "response", "getmininginfo", json!([])),
        ("getwalletinfo.json", "response", "getwalletinfo", json!([])),
        (
            "getidentity.json",
            "response",
            "getidentity",
            json!([alice]),
        ),
        (
            "getidentity_unlocking.json",
            "response",
            "getidentity",
            json!(["bob@"]),
        ),
        (
            "getidentity_notfound_error.json",
            "response",
            "getidentity",
            json!(["nobody@"]),
        ),
        (
            "getidentitieswithaddress.json",
            "response",
            "getidentitieswithaddress",
            json!([{"address": pool_r, "fromheight": 0, "toheight": 0, "unspent": true}]),
        ),
        (
            "getaddressutxos.json",
            "response",
            "getaddressutxos",
            json!([{"addresses": [alice]}]),
        ),
        (
            "getaddressbalance.json",
            "response",
            "getaddressbalance",
            json!([{"addresses": [alice]}]),
        ),
        (
            "listunspent.json",
            "response",
            "listunspent",
            json!([150, 9_999_999, [alice]]),
        ),
        (
            "getrawtransaction_verbose.json",
            "response",
            "getrawtransaction",
            json!([txid, 1]),
        ),
        (
            "sendcurrency.json",
            "response",
            "sendcurrency",
            json!([pool_id, [{"address": alice, "amount": 0.5}], 1, 0.0001]),
        ),
        (
            "z_getoperationresult.json",
            "response",
            "z_getoperationresult",
            json!([[opid]]),
        ),
        (
            "z_getoperationstatus.json",
            "response_unknown_opid",
            "z_getoperationstatus",
            json!([["opid-unknown"]]),
        ),
    ];
    let mut failures = Vec::new();
    let mut checked = BTreeSet::new();
    for (file, key, method, params) in cases {
        let fx = fixture(file);
        let expected = &fx[key];
        assert!(!expected.is_null(), "{file} has no {key}");
        let (status, reply) = post(&sim.rpc_url, method, params).await;
        let want_status = match key {
            "response_error_http_500" => 500,
            "response_method_not_found_http_404" => 404,
            _ => fx.get("http_status").and_then(Value::as_u64).unwrap_or(200) as u16,
        };
        if status != want_status {
            failures.push(format!(
                "{file} {key}: HTTP {status}, verusd answers {want_status}"
            ));
        }
        let mut diff = Vec::new();
        shape_diff(&format!("{file}:{key}"), expected, &reply, &mut diff);
        failures.extend(diff);
        checked.insert(file);
    }
    // z_getoperationstatus for a finished operation (fetched before z_getoperationresult removed it).
    let mut diff = Vec::new();
    shape_diff(
        "z_getoperationstatus.json:response",
        &fixture("z_getoperationstatus.json")["response"],
        &op_status,
        &mut diff,
    );
    failures.extend(diff);

    // Every JSON fixture is covered.
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/verusd");
    for entry in std::fs::read_dir(dir).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if name.ends_with(".json")
            && !checked.contains(name.as_str())
            && name != "z_getoperationstatus.json"
        {
            failures.push(format!("{name}: no conformance case"));
        }
    }
    assert!(
        failures.is_empty(),
        "the simulator differs from verusd's fixtures:\n{}",
        failures.join("\n")
    );
    sim.stop().await;
}
