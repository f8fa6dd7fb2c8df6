//! The daemon boundary against the simulated verusd over real sockets: the JSON-RPC 1.0
//! client, exact amounts, batches, retries, and ZMQ notifications.

use std::time::Duration;

use coinstaker::daemon::rpc::{RpcClient, RpcError};
use coinstaker::daemon::types::SendOutput;
use coinstaker::daemon::zmq::{Anomaly, BlockNotification, ZmqListener};
use coinstaker::daemon::{Backoff, retry};
use coinstaker::domain::Sats;
use serde_json::json;

use crate::support::{RPC_PASSWORD, RPC_USER, client, closed_port_url, sim};

#[actix_web::test]
async fn envelope_errors_and_auth() {
    let sim = sim().await;
    sim.with_node(|n| n.chain.generate(3));
    let rpc = client(&sim);
    // A JSON-RPC 1.0 reply: `result` beside `"error": null`, no `jsonrpc` member.
    assert_eq!(rpc.get_block_count().await, Ok(3));
    let hash = rpc.get_block_hash(2).await.unwrap();
    let block = rpc.get_block("2").await.unwrap();
    assert_eq!(
        (block.hash.as_str(), block.height, block.confirmations),
        (hash.as_str(), 2, 2)
    );

    // Errors come with HTTP 500 and the error object in the body.
    let err = rpc.get_block_hash(99).await.unwrap_err();
    assert_eq!(
        err,
        RpcError::Rpc {
            method: "getblockhash".into(),
            code: -8,
            message: "Block height out of range".into()
        }
    );
    let err = rpc.get_identity("nobody@", None).await.unwrap_err();
    assert_eq!(
        err,
        RpcError::NotFound {
            method: "getidentity".into(),
            message: "Identity not found".into()
        }
    );
    // HTTP 404 with -32601 for an unknown method.
    let err = rpc
        .call::<serde_json::Value, _>("nosuchmethod", ())
        .await
        .unwrap_err();
    assert!(matches!(err, RpcError::Rpc { code: -32601, .. }), "{err:?}");

    // A reply that does not parse is a typed error naming the method, not a panic.
    sim.call(
        "sim_failnext",
        json!([{"method": "getblockcount", "malformed": true}]),
    )
    .unwrap();
    let err = rpc.get_block_count().await.unwrap_err();
    assert!(
        matches!(&err, RpcError::Decode { method, .. } if method == "getblockcount"),
        "{err:?}"
    );
    assert!(err.is_retryable());
    // A result of the wrong type, likewise.
    let err = rpc
        .call::<u64, _>("getbestblockhash", ())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, RpcError::Decode { method, .. } if method == "getbestblockhash"),
        "{err:?}"
    );
    sim.call("sim_failnext", json!([{"method": "getblockcount", "http_status": 502, "code": -1, "message": "bad gateway"}])).unwrap();
    assert!(matches!(
        rpc.get_block_count().await,
        Err(RpcError::Rpc { code: -1, .. })
    ));

    // Wrong credentials: 401 with an empty body, reported with the fix.
    let wrong = RpcClient::with_password(&sim.rpc_url, RPC_USER, "wrong").unwrap();
    let err = wrong.get_block_count().await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "RPC authentication failed: check rpc_user/rpc_password or conf_file"
    );
    assert!(!err.is_retryable());
    let down = RpcClient::with_password(&closed_port_url(), RPC_USER, RPC_PASSWORD).unwrap();
    assert!(matches!(
        down.get_block_count().await,
        Err(RpcError::Unreachable { .. })
    ));
    sim.stop().await;
}

#[actix_web::test]
async fn warming_up_is_retried_with_backoff() {
    let sim = sim().await;
    sim.with_node(|n| n.chain.generate(4));
    sim.call("sim_restart", json!([2])).unwrap();
    let rpc = client(&sim);
    let mut backoff = Backoff::new(Duration::from_millis(5), Duration::from_millis(20));
    let mut tries = 0;
    let tip = retry(&mut backoff, 5, || {
        tries += 1;
        rpc.get_block_count()
    })
    .await;
    assert_eq!(tip, Ok(4));
    assert_eq!(tries, 3, "two warming-up replies, then the answer");

    // Errors that waiting cannot fix are returned at once.
    let mut tries = 0;
    let wrong = RpcClient::with_password(&sim.rpc_url, RPC_USER, "wrong").unwrap();
    let result = retry(&mut backoff, 5, || {
        tries += 1;
        wrong.get_block_count()
    })
    .await;
    assert_eq!((result, tries), (Err(RpcError::Auth), 1));
    sim.stop().await;
}

#[actix_web::test]
async fn amounts_are_exact_both_ways() {
    let sim = sim().await;
    let state = sim.call("sim_state", json!([])).unwrap();
    let pool_identity = state["poolidentity"].as_str().unwrap().to_owned();
    let alice = sim
        .call(
            "sim_registeridentity",
            json!([{"name": "alice", "primaryaddresses": [state["poolprimaryaddress"]]}]),
        )
        .unwrap();
    let alice = alice["identityaddress"].as_str().unwrap().to_owned();
    // Awkward decimals, written by the simulator exactly as verusd writes them (8 decimals).
    for amount in ["0.00000001", "21000000.00000000", "83540184.12345678"] {
        sim.call("sim_fund", json!([alice, amount])).unwrap();
    }
    sim.call("sim_fund", json!([pool_identity, "100"])).unwrap();
    sim.with_node(|n| n.chain.generate(2));
    let rpc = client(&sim);
    let mut amounts: Vec<Sats> = rpc
        .list_unspent(1, 9_999_999, std::slice::from_ref(&alice))
        .await
        .unwrap()
        .iter()
        .map(|u| u.amount.0)
        .collect();
    amounts.sort();
    assert_eq!(
        amounts,
        vec![
            Sats(1),
            Sats(2_100_000_000_000_000),
            Sats(8_354_018_412_345_678)
        ]
    );
    let utxos = rpc
        .get_address_utxos(std::slice::from_ref(&alice))
        .await
        .unwrap();
    assert_eq!(
        utxos.utxos.iter().map(|u| u.satoshis).sum::<i64>(),
        1 + 2_100_000_000_000_000 + 8_354_018_412_345_678
    );
    assert_eq!(utxos.height, 2);
    let info = rpc.get_mining_info().await.unwrap();
    assert_eq!(info.staking, Some(true));

    // sendcurrency writes amounts with exactly 8 decimals; the daemon reads them exactly.
    let outputs = vec![
        SendOutput {
            address: alice.clone(),
            amount: coinstaker::daemon::types::ExactCoins(Sats(1_284_211_007)),
        },
        SendOutput {
            address: alice.clone(),
            amount: coinstaker::daemon::types::ExactCoins(Sats(1)),
        },
    ];
    let opid = rpc
        .send_currency(&pool_identity, &outputs, 1, Some(Sats(10_000)))
        .await
        .unwrap();
    assert!(opid.starts_with("opid-"), "{opid}");
    let recorded = sim.with_node(|n| {
        n.ops
            .iter()
            .find(|o| o.id == opid)
            .map(|o| o.outputs.clone())
    });
    assert_eq!(
        recorded,
        Some(vec![(alice.clone(), 1_284_211_007), (alice.clone(), 1)])
    );
    let done = crate::support::eventually(5, || async {
        let ops = rpc
            .z_get_operation_status(std::slice::from_ref(&opid))
            .await
            .unwrap();
        ops.into_iter().find(|o| o.status == "success")
    })
    .await
    .expect("the operation succeeds");
    assert_eq!(
        done.params.iter().map(|p| p.amount.0).collect::<Vec<_>>(),
        vec![Sats(1_284_211_007), Sats(1)]
    );
    let txid = done.result.unwrap().txid;
    assert_eq!(rpc.get_raw_mempool().await.unwrap(), vec![txid.clone()]);
    sim.with_node(|n| n.chain.generate(1));
    let tx = rpc.get_raw_transaction(&txid).await.unwrap();
    assert_eq!(tx.confirmations, Some(1));
    assert_eq!(tx.vout[0].value_sat, 1_284_211_007);
    // A restarted daemon forgets operations: an unknown opid is an empty list, not an error.
    sim.call("sim_restart", json!([])).unwrap();
    assert_eq!(
        rpc.z_get_operation_status(std::slice::from_ref(&opid))
            .await,
        Ok(Vec::new())
    );
    sim.stop().await;
}

#[actix_web::test]
async fn identities_by_batch_and_at_a_height() {
    let sim = sim().await;
    let state = sim.call("sim_state", json!([])).unwrap();
    let pool_r = state["poolprimaryaddress"].clone();
    for name in ["alice", "bob", "carol"] {
        sim.call(
            "sim_registeridentity",
            json!([{"name": name, "primaryaddresses": [pool_r], "locked": true, "timelock": 1440}]),
        )
        .unwrap();
    }
    sim.with_node(|n| n.chain.generate(2));
    sim.call(
        "sim_updateidentity",
        json!([{"identity": "bob@", "locked": false, "timelock": 3000}]),
    )
    .unwrap();
    sim.with_node(|n| n.chain.generate(1));
    let rpc = client(&sim);
    let requests = vec![
        ("alice@".to_owned(), None),
        ("bob@".to_owned(), Some(2)),
        ("bob@".to_owned(), None),
        ("nobody@".to_owned(), None),
    ];
    let replies = rpc.get_identities(&requests).await.unwrap();
    assert_eq!(replies.len(), 4);
    assert_eq!(replies[0].as_ref().unwrap().identity.name, "alice");
    assert_eq!(
        replies[1].as_ref().unwrap().identity.flags & 2,
        2,
        "locked at height 2"
    );
    assert_eq!(
        (
            replies[2].as_ref().unwrap().identity.flags & 2,
            replies[2].as_ref().unwrap().blockheight
        ),
        (0, 3)
    );
    assert!(matches!(replies[3], Err(RpcError::NotFound { .. })));
    let found = rpc
        .get_identities_with_address(pool_r.as_str().unwrap(), 0, 0, true)
        .await
        .unwrap();
    let mut names: Vec<_> = found.iter().map(|i| i.identity.name.clone()).collect();
    names.sort();
    assert_eq!(names, vec!["alice", "bob", "carol"]);
    sim.stop().await;
}

async fn next(rx: &mut tokio::sync::mpsc::Receiver<BlockNotification>) -> BlockNotification {
    tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect("a notification in time")
        .expect("channel open")
}

#[actix_web::test]
async fn zmq_notifications_gaps_and_restarts() {
    let sim = sim().await;
    let url = sim.zmq_url.clone().unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::channel(64);
    let listener = ZmqListener::spawn("VRSC", &url, tx).unwrap();
    // ZMQ drops what is published before the subscription is in place: publish until one arrives.
    let first = loop {
        sim.with_node(|n| n.chain.generate(1));
        if let Ok(Some(n)) = tokio::time::timeout(Duration::from_millis(200), rx.recv()).await {
            break n;
        }
    };
    let rpc = client(&sim);
    assert_eq!(
        first.hash,
        rpc.get_best_block_hash().await.unwrap(),
        "the hash is in RPC display order"
    );
    sim.with_node(|n| n.chain.generate(1));
    let n = next(&mut rx).await;
    assert_eq!((n.sequence, n.anomaly), (first.sequence + 1, None));

    sim.call("sim_dropnotifications", json!([2])).unwrap();
    sim.with_node(|n| n.chain.generate(3));
    let n = next(&mut rx).await;
    assert_eq!(
        n.anomaly,
        Some(Anomaly::Gap {
            expected: first.sequence + 2,
            received: first.sequence + 4
        })
    );
    assert_eq!(n.hash, rpc.get_best_block_hash().await.unwrap());

    // A reorganisation announces only the new tip.
    sim.call("sim_reorg", json!([2])).unwrap();
    let n = next(&mut rx).await;
    assert_eq!(
        (n.hash.clone(), n.anomaly),
        (rpc.get_best_block_hash().await.unwrap(), None)
    );
    assert!(
        tokio::time::timeout(Duration::from_millis(300), rx.recv())
            .await
            .is_err(),
        "one notification for the whole reorg"
    );

    sim.call("sim_restart", json!([])).unwrap();
    sim.with_node(|n| n.chain.generate(1));
    let n = next(&mut rx).await;
    assert_eq!((n.sequence, n.anomaly), (0, Some(Anomaly::Restarted)));
    listener.stop();
    sim.stop().await;
}

#[actix_web::test]
async fn zmq_ignores_other_topics_and_malformed_messages() {
    let context = zmq::Context::new();
    let publisher = context.socket(zmq::PUB).unwrap();
    publisher.bind("tcp://127.0.0.1:*").unwrap();
    let url = publisher.get_last_endpoint().unwrap().unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::channel(64);
    let listener = ZmqListener::spawn("VRSC", &url, tx).unwrap();
    let hash = [0x11u8; 32];
    let good = |seq: u32| -> Vec<Vec<u8>> {
        vec![
            b"hashblock".to_vec(),
            hash.to_vec(),
            seq.to_le_bytes().to_vec(),
        ]
    };
    // Wait until the subscription is in place.
    let mut seq = 0;
    loop {
        publisher.send_multipart(good(seq), 0).unwrap();
        seq += 1;
        if let Ok(Some(_)) = tokio::time::timeout(Duration::from_millis(200), rx.recv()).await {
            break;
        }
    }
    while rx.try_recv().is_ok() {}
    publisher
        .send_multipart(
            vec![
                b"hashblockx".to_vec(),
                hash.to_vec(),
                0u32.to_le_bytes().to_vec(),
            ],
            0,
        )
        .unwrap();
    publisher
        .send_multipart(vec![b"hashblock".to_vec(), vec![1, 2, 3]], 0)
        .unwrap();
    publisher
        .send_multipart(
            vec![
                b"hashblock".to_vec(),
                vec![7; 31],
                0u32.to_le_bytes().to_vec(),
            ],
            0,
        )
        .unwrap();
    publisher.send_multipart(good(seq), 0).unwrap();
    let n = next(&mut rx).await;
    assert_eq!(
        (n.hash, n.sequence),
        ("11".repeat(32), seq),
        "only the well-formed hashblock message arrives"
    );
    listener.stop();
}

#[actix_web::test]
async fn credentials_from_conf_file_and_cookie() {
    let sim = sim().await;
    sim.with_node(|n| n.chain.generate(7));
    let dir = tempfile::tempdir().unwrap();
    let port = sim.rpc_url.rsplit(':').next().unwrap();
    let conf = dir.path().join("VRSC.conf");
    std::fs::write(
        &conf,
        format!(
            "# verusd\nrpcuser={RPC_USER}\nrpcpassword={RPC_PASSWORD}\nrpcport={port}\nserver=1\n"
        ),
    )
    .unwrap();
    let mut config = crate::support::test_config("sqlite::memory:", &sim.rpc_url);
    let chain = &mut config.chains[0];
    chain.rpc_url = None;
    chain.rpc_user = None;
    chain.rpc_password = None;
    chain.conf_file = Some(conf.clone());
    let rpc = RpcClient::from_config(chain).unwrap();
    assert_eq!(rpc.url(), sim.rpc_url, "rpcport comes from the conf file");
    assert_eq!(rpc.get_block_count().await, Ok(7));

    // No password in the conf file: the daemon's .cookie beside it is used.
    std::fs::write(&conf, format!("rpcport={port}\n")).unwrap();
    std::fs::write(
        dir.path().join(".cookie"),
        format!("{RPC_USER}:{RPC_PASSWORD}"),
    )
    .unwrap();
    let rpc = RpcClient::from_config(chain).unwrap();
    assert_eq!(rpc.get_block_count().await, Ok(7));
    // A new cookie (the daemon restarted) is read on the next call.
    std::fs::write(dir.path().join(".cookie"), format!("{RPC_USER}:stale")).unwrap();
    assert_eq!(rpc.get_block_count().await, Err(RpcError::Auth));

    chain.conf_file = None;
    let err = RpcClient::from_config(chain).unwrap_err();
    assert!(matches!(err, RpcError::Credentials(_)), "{err:?}");
    sim.stop().await;
}
