//! Following the chain and managing subscribers, against the simulated daemon over real
//! sockets: conditions, statuses and the cooldown, reorganisations, catch-up after downtime,
//! admin mutations, and a real crash in the middle of a block.

use std::process::Command;

use coinstaker::domain::SubscriberStatus;
use coinstaker::store;
use serde_json::json;

use crate::support::{
    ADMIN_TOKEN, TestDb, business_rows, mine, pool_for, register, sim, spawn_app_with,
};

fn dave_address(sim: &verusd_sim::Simulator) -> String {
    sim.call("getidentity", json!(["dave@"])).unwrap()["identity"]["identityaddress"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn status(app: &crate::support::TestApp, identity: &str) -> Option<SubscriberStatus> {
    store::subscribers::get(&app.app_state.db, "VRSC", identity)
        .await
        .unwrap()
        .map(|s| s.status)
}

async fn event_kinds(app: &crate::support::TestApp, identity: &str) -> Vec<String> {
    let filter = store::events::EventFilter {
        identity_address: Some(identity.to_owned()),
        ..Default::default()
    };
    store::events::list(&app.app_state.db, &filter, 1000)
        .await
        .unwrap()
        .into_iter()
        .map(|e| match e.event.alert {
            Some(a) => format!("{}:{}", e.event.kind, a),
            None => e.event.kind.to_string(),
        })
        .collect()
}

#[actix_web::test]
async fn conditions_statuses_cooldown_and_an_update_reorganised_away() {
    let sim = sim().await;
    let alice = register(&sim, "alice", json!({}));
    let dave = register(&sim, "dave", json!({"locked": false, "timelock": 0}));
    let erin = register(&sim, "erin", json!({}));
    register(&sim, "frank", json!({"minimumsignatures": 2}));
    for who in [&alice, &dave, &erin] {
        sim.call("sim_fund", json!([who, "1000"])).unwrap();
    }
    assert_eq!(mine(&sim, 1), 1, "identities mined at height 1");
    // erin's self-authorities come in a second version.
    sim.call(
        "sim_updateidentity",
        json!([{"identity": "erin@", "revocationauthority": erin, "recoveryauthority": erin}]),
    )
    .unwrap();
    mine(&sim, 1);
    sim.call("sim_fund", json!(["alice@", "250"])).unwrap();
    mine(&sim, 1);

    let mut app = spawn_app_with(TestDb::new(true).await, pool_for(&sim, 1), &sim.rpc_url).await;
    app.wait_processed(3).await;
    assert_eq!(
        status(&app, &alice).await,
        Some(SubscriberStatus::CoolingDown)
    );
    // erin met the conditions at 1 and made herself her own authorities at 2.
    let erin_row = store::subscribers::get(&app.app_state.db, "VRSC", &erin)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (
            erin_row.status,
            erin_row.joined_height,
            erin_row.left_height
        ),
        (SubscriberStatus::Left, Some(1), Some(2))
    );
    assert_eq!(erin_row.unmet.len(), 2, "{:?}", erin_row.unmet);
    assert_eq!(
        status(&app, &dave_address(&sim)).await,
        None,
        "dave never met the conditions"
    );

    let check = |who: &str| {
        format!(
            "{{ checkIdentity(identity: \"{who}\") {{ identityAddress eligible status unmet }} }}"
        )
    };
    let reply = app.graphql(&check("alice@")).await;
    assert_eq!(reply["data"]["checkIdentity"]["eligible"], true, "{reply}");
    assert_eq!(reply["data"]["checkIdentity"]["status"], "COOLING_DOWN");
    let reply = app.graphql(&check("dave@")).await;
    assert_eq!(
        reply["data"]["checkIdentity"]["unmet"],
        json!(["the identity must be delay-locked for at least 1440 blocks; it is not locked"])
    );
    let reply = app.graphql(&check("erin@")).await;
    let unmet = reply["data"]["checkIdentity"]["unmet"].to_string();
    assert!(
        unmet.contains("revocation authority must be another identity")
            && unmet.contains("recovery authority"),
        "{unmet}"
    );
    let reply = app.graphql(&check("frank@")).await;
    assert_eq!(
        reply["data"]["checkIdentity"]["unmet"],
        json!(["the identity must need exactly 1 signature; it needs 2"])
    );
    let reply = app.graphql(&check("nobody@")).await;
    assert_eq!(
        reply["errors"][0]["extensions"]["code"], "NOT_FOUND",
        "{reply}"
    );
    let reply = app.graphql(&check("not an identity")).await;
    assert_eq!(
        reply["errors"][0]["extensions"]["code"], "INVALID_INPUT",
        "{reply}"
    );

    // The cooldown: alice's identity was mined at height 1; ACTIVE when P − 1 ≥ 150.
    mine(&sim, 150 - 3);
    app.wait_processed(150).await;
    assert_eq!(
        status(&app, &alice).await,
        Some(SubscriberStatus::CoolingDown),
        "at 150: 149 blocks since the update"
    );
    mine(&sim, 1);
    app.wait_processed(151).await;
    assert_eq!(
        status(&app, &alice).await,
        Some(SubscriberStatus::Active),
        "at 151: 150 blocks since the update"
    );
    let intervals = store::subscribers::intervals(&app.app_state.db, "VRSC", &alice)
        .await
        .unwrap();
    assert_eq!(intervals, vec![(151, None)]);
    let reply = app.graphql("{ subscriber(identity: \"alice@\") { status joinedHeight eligibleBalance } pool { subscriberCount } }").await;
    // Only outputs at least 150 blocks old count: the 1000 from height 1, not the 250 from 3.
    assert_eq!(
        reply["data"]["subscriber"],
        json!({"status": "ACTIVE", "joinedHeight": 1, "eligibleBalance": "1000.00000000"}),
        "{reply}"
    );
    assert_eq!(reply["data"]["pool"]["subscriberCount"], 1);

    // An unlock request: alice leaves at once, with an alert.
    sim.call(
        "sim_updateidentity",
        json!([{"identity": "alice@", "locked": false, "timelock": 152 + 1440}]),
    )
    .unwrap();
    mine(&sim, 1);
    app.wait_processed(152).await;
    assert_eq!(status(&app, &alice).await, Some(SubscriberStatus::Left));
    assert_eq!(
        store::subscribers::intervals(&app.app_state.db, "VRSC", &alice)
            .await
            .unwrap(),
        vec![(151, Some(152))]
    );
    assert_eq!(
        event_kinds(&app, &alice).await,
        vec![
            "SUBSCRIBER_JOINED",
            "IDENTITY_ALERT:UNLOCK_REQUESTED",
            "SUBSCRIBER_LEFT"
        ]
    );

    // That block is reorganised away (and the update stays out of the new branch).
    sim.call("sim_holdmempool", json!([true])).unwrap();
    sim.call("sim_reorg", json!([1])).unwrap();
    app.wait_processed(153).await;
    assert_eq!(
        status(&app, &alice).await,
        Some(SubscriberStatus::Active),
        "the unlock is undone"
    );
    assert_eq!(
        store::subscribers::intervals(&app.app_state.db, "VRSC", &alice)
            .await
            .unwrap(),
        vec![(151, None)]
    );
    let version = store::identities::at(&app.app_state.db, "VRSC", &alice, 1000)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        version.height, 1,
        "the version of the orphaned block is gone"
    );
    assert_eq!(
        event_kinds(&app, &alice).await.last().map(String::as_str),
        Some("SUBSCRIBER_JOINED"),
        "the undo is reported"
    );
    app.stop().await;
    sim.stop().await;
}

#[actix_web::test]
async fn dropping_the_pool_address_and_its_reorg_keep_the_utxo_history() {
    let sim = sim().await;
    let alice = register(&sim, "alice", json!({}));
    sim.call("sim_fund", json!([alice, "80", 2])).unwrap();
    mine(&sim, 3);
    let mut app = spawn_app_with(TestDb::new(true).await, pool_for(&sim, 1), &sim.rpc_url).await;
    app.wait_processed(3).await;
    let before = store::utxos::history(&app.app_state.db, "VRSC", &alice)
        .await
        .unwrap();
    assert_eq!(before.len(), 2);
    // Alice removes the pool's address: she leaves; her rows stay.
    sim.call(
        "sim_updateidentity",
        json!([{"identity": "alice@", "primaryaddresses": [verusd_sim::ids::r_address("alone")]}]),
    )
    .unwrap();
    mine(&sim, 1);
    app.wait_processed(4).await;
    let row = store::subscribers::get(&app.app_state.db, "VRSC", &alice)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.status, SubscriberStatus::Left);
    assert!(
        row.unmet[0].contains("must be one of the identity's primary addresses"),
        "{:?}",
        row.unmet
    );
    // The update is reorganised away: she is back, with the same outputs.
    sim.call("sim_holdmempool", json!([true])).unwrap();
    sim.call("sim_reorg", json!([1])).unwrap();
    app.wait_processed(5).await;
    assert_eq!(
        status(&app, &alice).await,
        Some(SubscriberStatus::CoolingDown)
    );
    assert_eq!(
        store::utxos::history(&app.app_state.db, "VRSC", &alice)
            .await
            .unwrap(),
        before
    );
    app.stop().await;
    sim.stop().await;
}

#[actix_web::test]
async fn a_five_block_reorg_across_a_join_is_undone_and_redone() {
    let sim = sim().await;
    mine(&sim, 10);
    let mut app = spawn_app_with(TestDb::new(true).await, pool_for(&sim, 1), &sim.rpc_url).await;
    app.wait_processed(10).await;
    let bob = register(&sim, "bob", json!({}));
    sim.call("sim_fund", json!([bob, "40"])).unwrap();
    mine(&sim, 1); // bob joins at 11
    mine(&sim, 3);
    app.wait_processed(14).await;
    assert_eq!(
        status(&app, &bob).await,
        Some(SubscriberStatus::CoolingDown)
    );
    assert_eq!(
        store::utxos::history(&app.app_state.db, "VRSC", &bob)
            .await
            .unwrap()
            .len(),
        1
    );

    sim.call("sim_holdmempool", json!([true])).unwrap();
    sim.call("sim_reorg", json!([5])).unwrap(); // heights 10..=14 replaced, new tip 15
    app.wait_processed(15).await;
    assert_eq!(status(&app, &bob).await, None, "the join is undone");
    assert!(
        store::utxos::history(&app.app_state.db, "VRSC", &bob)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store::identities::at(&app.app_state.db, "VRSC", &bob, 100)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        event_kinds(&app, &bob).await,
        vec!["SUBSCRIBER_JOINED", "SUBSCRIBER_LEFT"]
    );

    sim.call("sim_holdmempool", json!([false])).unwrap();
    mine(&sim, 1); // bob's registration mined again, at 16
    app.wait_processed(16).await;
    let row = store::subscribers::get(&app.app_state.db, "VRSC", &bob)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (row.status, row.joined_height),
        (SubscriberStatus::CoolingDown, Some(16))
    );
    let utxos = store::utxos::history(&app.app_state.db, "VRSC", &bob)
        .await
        .unwrap();
    assert_eq!(
        utxos
            .iter()
            .map(|u| (u.height, u.amount.0))
            .collect::<Vec<_>>(),
        vec![(16, 4_000_000_000)]
    );
    // Every stored block links to the one below: the branch switch left no trace.
    let blocks: Vec<_> = business_rows(&app.app_state.db)
        .await
        .into_iter()
        .filter(|r| r.starts_with("block"))
        .collect();
    assert_eq!(blocks.len(), 16);
    app.stop().await;
    sim.stop().await;
}

#[actix_web::test]
async fn catching_up_after_downtime_and_silent_zmq_equals_following_live() {
    let sim = sim().await;
    let alice = register(&sim, "alice", json!({}));
    sim.call("sim_fund", json!([alice, "100"])).unwrap();
    mine(&sim, 5);
    let mut live = spawn_app_with(TestDb::new(true).await, pool_for(&sim, 1), &sim.rpc_url).await;
    let mut downed = spawn_app_with(TestDb::new(true).await, pool_for(&sim, 1), &sim.rpc_url).await;
    live.wait_processed(5).await;
    downed.wait_processed(5).await;

    // ZMQ silent for 30 blocks: the poll catches up.
    sim.call("sim_dropnotifications", json!([30])).unwrap();
    for _ in 0..30 {
        mine(&sim, 1);
    }
    live.wait_processed(35).await;
    downed.wait_processed(35).await;

    // One pool stops for 200 blocks, during which carol joins and spends.
    let db = std::mem::replace(&mut downed.db, TestDb::new(true).await);
    downed.stop().await;
    let carol = register(&sim, "carol", json!({}));
    sim.call("sim_fund", json!([carol, "30", 2])).unwrap();
    mine(&sim, 1); // 36
    let utxos = sim
        .call("getaddressutxos", json!([{"addresses": [carol]}]))
        .unwrap();
    let spend = utxos
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["satoshis"].as_i64() > Some(0))
        .unwrap()
        .clone();
    sim.call("sim_spend", json!([spend["txid"], spend["outputIndex"]]))
        .unwrap();
    mine(&sim, 1); // 37: carol spends one output
    sim.call("sim_updateidentity", json!([{"identity": "alice@", "primaryaddresses": [verusd_sim::ids::r_address("new-key"), sim.call("sim_state", json!([])).unwrap()["poolprimaryaddress"]]}])).unwrap();
    for _ in 0..198 {
        mine(&sim, 1);
    }
    live.wait_processed(235).await;

    let mut restarted = spawn_app_with(db, pool_for(&sim, 1), &sim.rpc_url).await;
    restarted.wait_processed(235).await;
    let carol_history = store::utxos::history(&restarted.app_state.db, "VRSC", &carol)
        .await
        .unwrap();
    assert_eq!(carol_history.len(), 2);
    assert_eq!(
        carol_history
            .iter()
            .filter(|u| u.spent_height == Some(37))
            .count(),
        1,
        "the spend while down is recorded"
    );
    let live_rows = business_rows(&live.app_state.db).await;
    let restarted_rows = business_rows(&restarted.app_state.db).await;
    assert_eq!(
        live_rows, restarted_rows,
        "catch-up after downtime gives the same rows as following live"
    );

    // A pool started later discovers carol and seeds her UTXOs as of its start, from the
    // daemon's snapshot and address index: the same history.
    let mut late = spawn_app_with(TestDb::new(true).await, pool_for(&sim, 37), &sim.rpc_url).await;
    late.wait_processed(235).await;
    let seeded = store::utxos::history(&late.app_state.db, "VRSC", &carol)
        .await
        .unwrap();
    assert_eq!(
        seeded, carol_history,
        "seeded as of height 36, then followed"
    );
    for app in [&mut live, &mut restarted, &mut late] {
        app.stop().await;
    }
    sim.stop().await;
}

#[actix_web::test]
async fn admin_mutations_need_a_token_and_are_audited() {
    let sim = sim().await;
    let alice = register(&sim, "alice", json!({}));
    mine(&sim, 2);
    let mut app = spawn_app_with(TestDb::new(true).await, pool_for(&sim, 1), &sim.rpc_url).await;
    app.wait_processed(2).await;
    let update = "mutation { updatePoolConditions(input: { maxPrimaryAddresses: 1 }) { maxPrimaryAddresses minUnlockDelay } }";
    let reply = app.graphql(update).await;
    assert_eq!(
        reply["errors"][0]["extensions"]["code"], "UNAUTHENTICATED",
        "{reply}"
    );
    let reply = app.graphql_as("wrong", update).await;
    assert_eq!(
        reply["errors"][0]["extensions"]["code"], "FORBIDDEN",
        "{reply}"
    );
    assert!(
        store::audit::recent(&app.app_state.db, 10)
            .await
            .unwrap()
            .is_empty(),
        "refused calls change nothing"
    );

    let reply = app.graphql_as(ADMIN_TOKEN, update).await;
    assert_eq!(
        reply["data"]["updatePoolConditions"],
        json!({"maxPrimaryAddresses": 1, "minUnlockDelay": 1440}),
        "{reply}"
    );
    let audit = store::audit::recent(&app.app_state.db, 10).await.unwrap();
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0].0.mutation, "updatePoolConditions");
    assert!(!audit[0].0.arguments.contains(ADMIN_TOKEN) && audit[0].0.token_prefix.len() == 12);
    // From the next block alice (two primary addresses) no longer meets the conditions.
    mine(&sim, 1);
    app.wait_processed(3).await;
    let row = store::subscribers::get(&app.app_state.db, "VRSC", &alice)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.status, SubscriberStatus::Left);
    assert_eq!(
        row.unmet,
        vec!["the identity may have at most 1 primary addresses; it has 2".to_owned()]
    );
    let reply = app.graphql_as(ADMIN_TOKEN, "mutation { updatePoolConditions(input: { maxPrimaryAddresses: 26 }) { maxPrimaryAddresses } }").await;
    assert_eq!(
        reply["errors"][0]["extensions"]["code"], "INVALID_INPUT",
        "{reply}"
    );
    app.graphql_as(ADMIN_TOKEN, "mutation { updatePoolConditions(input: { maxPrimaryAddresses: 25 }) { maxPrimaryAddresses } }").await;
    mine(&sim, 1);
    app.wait_processed(4).await;
    assert_eq!(
        status(&app, &alice).await,
        Some(SubscriberStatus::CoolingDown),
        "back in when the conditions allow"
    );

    let reply = app
        .graphql_as(
            ADMIN_TOKEN,
            "mutation { banSubscriber(identity: \"alice@\", banned: true) { status } }",
        )
        .await;
    assert_eq!(
        reply["data"]["banSubscriber"]["status"], "BANNED",
        "{reply}"
    );
    mine(&sim, 1);
    app.wait_processed(5).await;
    assert_eq!(
        status(&app, &alice).await,
        Some(SubscriberStatus::Banned),
        "a ban survives re-evaluation"
    );
    let reply = app
        .graphql_as(
            ADMIN_TOKEN,
            "mutation { banSubscriber(identity: \"alice@\", banned: false) { status } }",
        )
        .await;
    assert_eq!(
        reply["data"]["banSubscriber"]["status"], "COOLING_DOWN",
        "{reply}"
    );
    let reply = app
        .graphql_as(
            ADMIN_TOKEN,
            "mutation { banSubscriber(identity: \"nobody@\", banned: true) { status } }",
        )
        .await;
    assert_eq!(
        reply["errors"][0]["extensions"]["code"], "NOT_FOUND",
        "{reply}"
    );
    let reply = app
        .graphql("{ subscribers(first: 501) { edges { node { name } } } }")
        .await;
    assert_eq!(
        reply["errors"][0]["extensions"]["code"], "INVALID_INPUT",
        "{reply}"
    );
    let reply = app.graphql("{ subscribers(first: 10) { edges { cursor node { name status } } pageInfo { hasNextPage } } }").await;
    assert_eq!(
        reply["data"]["subscribers"]["edges"][0]["node"]["name"], "alice.VRSC@",
        "{reply}"
    );
    assert_eq!(
        store::audit::recent(&app.app_state.db, 10)
            .await
            .unwrap()
            .len(),
        4,
        "refused calls are not audited"
    );
    app.stop().await;
    sim.stop().await;
}

#[actix_web::test]
async fn subscribe_tracks_an_identity_found_by_request() {
    let sim = sim().await;
    mine(&sim, 3);
    let mut app = spawn_app_with(TestDb::new(true).await, pool_for(&sim, 3), &sim.rpc_url).await;
    app.wait_processed(3).await;
    // Registered while the pool watches is found from the block; this one we ask about by name
    // before its block: not found yet.
    let reply = app
        .graphql("mutation { subscribe(identity: \"zed@\") { eligible unmet } }")
        .await;
    assert_eq!(
        reply["errors"][0]["extensions"]["code"], "NOT_FOUND",
        "{reply}"
    );
    let zed = register(&sim, "zed", json!({}));
    mine(&sim, 1);
    app.wait_processed(4).await;
    let reply = app
        .graphql(
            "mutation { subscribe(identity: \"zed@\") { identityAddress eligible status unmet } }",
        )
        .await;
    assert_eq!(
        reply["data"]["subscribe"],
        json!({"identityAddress": zed, "eligible": true, "status": "COOLING_DOWN", "unmet": []}),
        "{reply}"
    );
    app.stop().await;
    sim.stop().await;
}

#[actix_web::test]
async fn killed_in_the_middle_of_a_block_and_restarted_ends_as_if_uninterrupted() {
    let sim = sim().await;
    let alice = register(&sim, "alice", json!({}));
    sim.call("sim_fund", json!([alice, "10", 3])).unwrap();
    mine(&sim, 2);
    let bob = register(&sim, "bob", json!({}));
    sim.call("sim_fund", json!([bob, "5"])).unwrap();
    mine(&sim, 3); // bob joins at 3

    // The reference: an uninterrupted pool.
    let mut reference =
        spawn_app_with(TestDb::new(true).await, pool_for(&sim, 1), &sim.rpc_url).await;
    reference.wait_processed(5).await;

    // The same chain, with the process killed inside block 3's transaction, then restarted.
    let db = TestDb::new(true).await;
    let dir = tempfile::tempdir().unwrap();
    let (mut child, _log) = crate::support::serve(
        dir.path(),
        &sim,
        &db.url,
        "",
        Some("registry-before-commit:3"),
    );
    let status = child.wait().unwrap();
    assert!(
        !status.success(),
        "the process was killed by the fault ({status:?})"
    );
    let conn = db.connect().await;
    assert_eq!(
        store::chain::tip(&conn, "VRSC")
            .await
            .unwrap()
            .map(|b| b.height),
        Some(2),
        "block 3 was not committed"
    );
    assert_eq!(
        store::subscribers::get(&conn, "VRSC", &bob).await.unwrap(),
        None
    );

    // Killed right after the registry committed block 3 but before the watcher recorded it.
    let db2 = TestDb::new(true).await;
    let (mut child2, _log2) = crate::support::serve(
        dir.path(),
        &sim,
        &db2.url,
        "",
        Some("registry-after-commit:3"),
    );
    assert!(!child2.wait().unwrap().success());

    for (db, conn) in [(&db, conn), (&db2, db2.connect().await)] {
        let (mut child, log) = crate::support::serve(dir.path(), &sim, &db.url, "", None);
        let done = crate::support::eventually(60, || async {
            let tip = store::chain::tip(&conn, "VRSC")
                .await
                .ok()
                .flatten()
                .map_or(-1, |b| b.height);
            (tip >= 5).then_some(())
        })
        .await;
        let _ = Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status();
        let _ = child.wait();
        assert!(
            done.is_some(),
            "the restarted pool catches up; log:\n{}",
            log.try_iter().collect::<Vec<_>>().join("\n")
        );
        assert_eq!(
            business_rows(&conn).await,
            business_rows(&reference.app_state.db).await,
            "same rows as an uninterrupted run"
        );
    }
    reference.stop().await;
    sim.stop().await;
}

#[actix_web::test]
async fn an_id_staking_chain_is_refused_and_other_chains_go_on() {
    let staking_by_id = crate::support::sim_with(verusd_sim::Params {
        id_staking: true,
        ..verusd_sim::Params::default()
    })
    .await;
    mine(&staking_by_id, 3);
    let normal = sim().await;
    mine(&normal, 4);
    // Two chains side by side: VRSC (refused: ID staking) and a second whose daemon is fine,
    // then a third whose daemon is down.
    let first = pool_for(&staking_by_id, 1);
    let second = pool_for(&normal, 1);
    let rpc_normal = normal.rpc_url.clone();
    let mut app = spawn_app_with(
        TestDb::new(true).await,
        move |c| {
            let mut other = second(c.clone()).chains.remove(0);
            other.name = "vARRR".into();
            other.rpc_url = Some(rpc_normal);
            let mut down = other.clone();
            down.name = "vDEX".into();
            down.rpc_url = Some(crate::support::closed_port_url());
            down.zmq_block_url = None;
            let mut c = first(c);
            c.chains.push(other);
            c.chains.push(down);
            c
        },
        &staking_by_id.rpc_url,
    )
    .await;
    let done = crate::support::eventually(30, || async {
        let tip = store::chain::tip(&app.app_state.db, "vARRR")
            .await
            .ok()
            .flatten()
            .map_or(-1, |b| b.height);
        (tip >= 4).then_some(())
    })
    .await;
    assert!(
        done.is_some(),
        "the healthy chain is processed while the others are refused or down"
    );
    let (status, body) = app.get("/healthz").await;
    assert_eq!(status, 503, "{body}");
    let report: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(
        report["chains"][0]["daemon"]["refused"]
            .as_str()
            .unwrap_or_default()
            .contains("ID-staking"),
        "{report}"
    );
    assert_eq!(report["chains"][1]["daemon"]["up"], true);
    assert!(
        report["chains"][2]["daemon"]["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("daemon unreachable"),
        "{report}"
    );
    assert_eq!(
        store::chain::tip(&app.app_state.db, "VRSC").await.unwrap(),
        None,
        "nothing processed on the refused chain"
    );
    app.stop().await;
}

#[actix_web::test]
async fn an_identity_found_past_its_cooldown_has_the_height_it_joined_at() {
    let sim = sim().await;
    let carol = register(&sim, "carol", json!({}));
    sim.call("sim_fund", json!([carol, "500"])).unwrap();
    let tip = mine(&sim, 170);
    // The pool starts long after carol listed its address: she is ACTIVE at once.
    let mut app = spawn_app_with(
        TestDb::new(true).await,
        pool_for(&sim, tip as u32),
        &sim.rpc_url,
    )
    .await;
    app.wait_processed(tip).await;
    let reply = app
        .graphql(&format!(
            "{{ subscriber(identity: \"{carol}\") {{ status joinedHeight }} events(first: 50) {{ nodes {{ kind height identityAddress }} }} }}"
        ))
        .await;
    let joined_event = reply["data"]["events"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "SUBSCRIBER_JOINED" && e["identityAddress"] == carol.as_str())
        .map(|e| e["height"].clone());
    assert!(joined_event.is_some(), "{reply}");
    assert_eq!(reply["data"]["subscriber"]["status"], "ACTIVE", "{reply}");
    assert_eq!(
        Some(reply["data"]["subscriber"]["joinedHeight"].clone()),
        joined_event,
        "joinedHeight is the height of its SUBSCRIBER_JOINED event: {reply}"
    );
    app.stop().await;
    sim.stop().await;
}

/// A cooldown ends at one height, 150 blocks after the identity's version: again when that
/// height is reorganised away and applied anew, and at its height when the pool was down
/// then (the registry picks the candidates at each height, it does not read every cooling
/// subscriber at every block).
#[actix_web::test]
async fn a_cooldown_ends_at_its_height_across_a_reorganisation_and_a_restart() {
    let sim = sim().await;
    let bob = register(&sim, "bob", json!({}));
    sim.call("sim_fund", json!([bob, "100"])).unwrap();
    assert_eq!(mine(&sim, 1), 1, "bob's identity mined at height 1");
    let mut live = spawn_app_with(TestDb::new(true).await, pool_for(&sim, 1), &sim.rpc_url).await;
    let mut downed = spawn_app_with(TestDb::new(true).await, pool_for(&sim, 1), &sim.rpc_url).await;
    mine(&sim, 150);
    for app in [&live, &downed] {
        app.wait_processed(151).await;
        assert_eq!(status(app, &bob).await, Some(SubscriberStatus::Active));
    }

    // Heights 149..=151 replaced: bob cools down again until 151 is applied anew.
    sim.call("sim_holdmempool", json!([true])).unwrap();
    sim.call("sim_reorg", json!([3])).unwrap();
    for app in [&live, &downed] {
        app.wait_processed(152).await;
        assert_eq!(status(app, &bob).await, Some(SubscriberStatus::Active));
        assert_eq!(
            store::subscribers::intervals(&app.app_state.db, "VRSC", &bob)
                .await
                .unwrap(),
            vec![(151, None)],
            "eligible again from the height its cooldown ends"
        );
    }
    sim.call("sim_holdmempool", json!([false])).unwrap();

    // carol joins at 153; one pool is down from 160 until after her cooldown ended (303).
    let carol = register(&sim, "carol", json!({}));
    sim.call("sim_fund", json!([carol, "50"])).unwrap();
    assert_eq!(mine(&sim, 1), 153);
    mine(&sim, 7);
    live.wait_processed(160).await;
    downed.wait_processed(160).await;
    assert_eq!(
        status(&downed, &carol).await,
        Some(SubscriberStatus::CoolingDown)
    );
    let db = std::mem::replace(&mut downed.db, TestDb::new(true).await);
    downed.stop().await;
    mine(&sim, 150);
    live.wait_processed(310).await;
    let mut restarted = spawn_app_with(db, pool_for(&sim, 1), &sim.rpc_url).await;
    restarted.wait_processed(310).await;
    for app in [&live, &restarted] {
        assert_eq!(status(app, &carol).await, Some(SubscriberStatus::Active));
        assert_eq!(
            store::subscribers::intervals(&app.app_state.db, "VRSC", &carol)
                .await
                .unwrap(),
            vec![(303, None)],
            "150 blocks after her identity's version"
        );
    }
    assert_eq!(
        business_rows(&live.app_state.db).await,
        business_rows(&restarted.app_state.db).await,
        "down across the end of a cooldown: the same rows as following live"
    );
    for app in [&mut live, &mut restarted] {
        app.stop().await;
    }
    sim.stop().await;
}

/// A change of the conditions applies at one height and evaluates every subscriber there, in
/// one block (what the decisions read is read for all of them at once): each ends as the rules
/// say for it alone — one leaves, one stays, one updated in that same block stays cooling with
/// an alert, a banned one stays banned — and a pool that follows the same blocks from a
/// restart ends with the same rows.
#[actix_web::test]
async fn a_change_of_conditions_evaluates_every_subscriber_at_its_height() {
    let sim = sim().await;
    let [alice, bob, carol, dave] =
        ["alice", "bob", "carol", "dave"].map(|n| register(&sim, n, json!({})));
    for who in [&alice, &bob, &carol, &dave] {
        sim.call("sim_fund", json!([who, "1000"])).unwrap();
    }
    mine(&sim, 1);
    // alice holds three outputs, the others one each.
    for _ in 0..2 {
        sim.call("sim_fund", json!([&alice, "10"])).unwrap();
    }
    mine(&sim, 1);
    // Two pools told the same; one of them is down from height 4 to 154.
    let mut live = spawn_app_with(TestDb::new(true).await, pool_for(&sim, 1), &sim.rpc_url).await;
    let mut downed = spawn_app_with(TestDb::new(true).await, pool_for(&sim, 1), &sim.rpc_url).await;
    for app in [&live, &downed] {
        app.wait_processed(2).await;
        let reply = app
            .graphql_as(
                ADMIN_TOKEN,
                "mutation { banSubscriber(identity: \"dave@\", banned: true) { status } }",
            )
            .await;
        assert_eq!(
            reply["data"]["banSubscriber"]["status"], "BANNED",
            "{reply}"
        );
    }
    mine(&sim, 1);
    // From height 4: at most two outputs.
    for app in [&live, &downed] {
        app.wait_processed(3).await;
        for who in [&alice, &bob, &carol] {
            assert_eq!(status(app, who).await, Some(SubscriberStatus::CoolingDown));
        }
        let reply = app
            .graphql_as(
                ADMIN_TOKEN,
                "mutation { updatePoolConditions(input: { maxUtxos: 2 }) { maxUtxos } }",
            )
            .await;
        assert_eq!(
            reply["data"]["updatePoolConditions"]["maxUtxos"], 2,
            "{reply}"
        );
    }
    let db = std::mem::replace(&mut downed.db, TestDb::new(true).await);
    downed.stop().await;
    // carol changes her authorities in block 4.
    let other = |n: &str| verusd_sim::ids::identity_address(n, "x");
    sim.call(
        "sim_updateidentity",
        json!([{"identity": "carol@", "revocationauthority": other("carol-revoke-2"), "recoveryauthority": other("carol-recover-2")}]),
    )
    .unwrap();
    mine(&sim, 1);
    live.wait_processed(4).await;

    let row = |who: &String| {
        let db = live.app_state.db.clone();
        let who = who.clone();
        async move {
            store::subscribers::get(&db, "VRSC", &who)
                .await
                .unwrap()
                .unwrap()
        }
    };
    let a = row(&alice).await;
    assert_eq!((a.status, a.left_height), (SubscriberStatus::Left, Some(4)));
    assert_eq!(
        a.unmet,
        vec![
            "the identity may hold at most 2 outputs of at least 1.00000000 coins; it holds 3: consolidate them"
                .to_owned()
        ]
    );
    assert_eq!(
        event_kinds(&live, &alice).await,
        ["SUBSCRIBER_JOINED", "SUBSCRIBER_LEFT"]
    );
    let b = row(&bob).await;
    assert_eq!(
        (b.status, b.joined_height),
        (SubscriberStatus::CoolingDown, Some(1))
    );
    assert_eq!(event_kinds(&live, &bob).await, ["SUBSCRIBER_JOINED"]);
    let c = row(&carol).await;
    assert_eq!(
        (c.status, c.joined_height),
        (SubscriberStatus::CoolingDown, Some(1))
    );
    assert_eq!(
        event_kinds(&live, &carol).await,
        ["SUBSCRIBER_JOINED", "IDENTITY_ALERT:AUTHORITIES_CHANGED"]
    );
    assert_eq!(status(&live, &dave).await, Some(SubscriberStatus::Banned));
    // carol's cooldown now counts from her update: active at 154, not 151.
    mine(&sim, 150);
    live.wait_processed(154).await;
    assert_eq!(status(&live, &bob).await, Some(SubscriberStatus::Active));
    let c = store::subscribers::history(&live.app_state.db, "VRSC", &carol)
        .await
        .unwrap();
    assert_eq!(
        c.iter().map(|(h, s, _)| (*h, *s)).collect::<Vec<_>>(),
        [
            (1, SubscriberStatus::CoolingDown),
            (154, SubscriberStatus::Active)
        ]
    );

    // The pool that was down catches up over the same blocks: the same rows.
    let mut restarted = spawn_app_with(db, pool_for(&sim, 1), &sim.rpc_url).await;
    restarted.wait_processed(154).await;
    assert_eq!(
        business_rows(&restarted.app_state.db).await,
        business_rows(&live.app_state.db).await
    );
    for app in [&mut live, &mut restarted] {
        app.stop().await;
    }
    sim.stop().await;
}
