//! Store functions on a fresh, migrated database (SQLite, or the server of TEST_DATABASE_URL).

use std::time::Duration;

use coinstaker::domain::{
    Conditions, EventKind, FeeRate, IdentityAlertKind, PoolSettings, Sats, SubscriberStatus,
};
use coinstaker::store::chain::{self, BlockRef};
use coinstaker::store::events::{self, EventFilter, NewEvent};
use coinstaker::store::ledger::{self, LedgerKind, Posting};
use coinstaker::store::settings::{self, SettingsSource};
use coinstaker::store::subscribers::{self, StatusChange};
use coinstaker::store::{audit, stats};
use sea_orm::TransactionTrait;

use crate::support::TestDb;

const ALICE: &str = "i549DVi2YdWJdDo2mWnMFoDvYw8htg6YNe";
const BOB: &str = "iFHFbgQGu8tEttKsR39F4n5jA2rdm2Mwhi";

fn block(height: i64, hash: &str, prev: &str) -> BlockRef {
    BlockRef {
        height,
        hash: hash.into(),
        prev_hash: prev.into(),
    }
}

#[tokio::test]
async fn blocks_cursors_and_start_height() {
    let t = TestDb::new(false).await;
    let db = t.migrated().await;
    chain::ensure_chain(&db, "VRSC").await.unwrap();
    chain::ensure_chain(&db, "VRSC").await.unwrap();
    assert_eq!(chain::tip(&db, "VRSC").await.unwrap(), None);

    chain::insert_block(&db, "VRSC", &block(10, "a10", "a9"))
        .await
        .unwrap();
    chain::insert_block(&db, "VRSC", &block(11, "a11", "a10"))
        .await
        .unwrap();
    // Connecting the same height again (a re-run after a crash) replaces, never duplicates.
    chain::insert_block(&db, "VRSC", &block(11, "b11", "a10"))
        .await
        .unwrap();
    chain::insert_block(&db, "vARRR", &block(99, "x", "w"))
        .await
        .unwrap();
    assert_eq!(
        chain::tip(&db, "VRSC").await.unwrap(),
        Some(block(11, "b11", "a10"))
    );
    assert_eq!(
        chain::block_at(&db, "VRSC", 10).await.unwrap(),
        Some(block(10, "a10", "a9"))
    );
    chain::delete_block(&db, "VRSC", 11).await.unwrap();
    assert_eq!(
        chain::tip(&db, "VRSC").await.unwrap().map(|b| b.height),
        Some(10)
    );

    assert_eq!(chain::cursor(&db, "VRSC", "registry").await.unwrap(), None);
    chain::set_cursor(&db, "VRSC", "registry", 10, "a10")
        .await
        .unwrap();
    chain::set_cursor(&db, "VRSC", "registry", 11, "b11")
        .await
        .unwrap();
    assert_eq!(
        chain::cursor(&db, "VRSC", "registry").await.unwrap(),
        Some((11, "b11".to_owned()))
    );

    // What an actor remembers of its cursor answers like the stored cursor when the blocks
    // follow it, without reading; otherwise the stored cursor decides.
    let mut known = chain::KnownCursor::default();
    let next = [(12, "b12")];
    assert_eq!(
        known
            .to_apply(&db, "VRSC", "registry", &next, Some("b11"))
            .await
            .unwrap(),
        chain::to_apply(&db, "VRSC", "registry", &next)
            .await
            .unwrap(),
        "nothing remembered: the stored cursor"
    );
    // Remembered at b11 while the stored cursor moved on behind its back: the blocks that
    // follow b11 are applied without a read (the stored cursor would skip b12).
    known.committed(11, "b11");
    chain::set_cursor(&db, "VRSC", "registry", 12, "b12")
        .await
        .unwrap();
    assert_eq!(
        chain::to_apply(&db, "VRSC", "registry", &next)
            .await
            .unwrap(),
        (1, Vec::new())
    );
    assert_eq!(
        known
            .to_apply(&db, "VRSC", "registry", &next, Some("b11"))
            .await
            .unwrap(),
        (0, Vec::new()),
        "the remembered cursor was not used"
    );
    // It is used once: asked again (no commit in between), the stored cursor decides.
    assert_eq!(
        known
            .to_apply(&db, "VRSC", "registry", &next, Some("b11"))
            .await
            .unwrap(),
        (1, Vec::new())
    );
    // A block whose parent is not the remembered one, or a forgotten cursor: the stored
    // cursor decides (at b13, which it skips).
    chain::set_cursor(&db, "VRSC", "registry", 13, "b13")
        .await
        .unwrap();
    known.committed(12, "b12");
    assert_eq!(
        known
            .to_apply(&db, "VRSC", "registry", &[(13, "b13")], Some("c12"))
            .await
            .unwrap(),
        (1, Vec::new()),
        "another parent: the stored cursor at b13 skips b13"
    );
    known.committed(12, "b12");
    known.forget();
    assert_eq!(
        known
            .to_apply(&db, "VRSC", "registry", &[(13, "b13")], Some("b12"))
            .await
            .unwrap(),
        (1, Vec::new()),
        "forgotten: the stored cursor at b13 skips b13"
    );

    assert_eq!(
        chain::fix_start_height(&db, "VRSC", 500).await.unwrap(),
        500
    );
    assert_eq!(
        chain::fix_start_height(&db, "VRSC", 900).await.unwrap(),
        500,
        "fixed once, at first start"
    );
    chain::set_chain_id(&db, "VRSC", "i5w5MuNik5NtLcYmNzcvaoixooEebB6MGV")
        .await
        .unwrap();
    let info = chain::get_chain(&db, "VRSC").await.unwrap().unwrap();
    assert_eq!(
        info.chain_id.as_deref(),
        Some("i5w5MuNik5NtLcYmNzcvaoixooEebB6MGV")
    );
    assert_eq!(info.start_height, Some(500));
}

fn pool_settings(fee: &str, min_unlock_delay: u32) -> PoolSettings {
    PoolSettings {
        fee: FeeRate::parse_percent(fee).unwrap(),
        min_payout: Sats::coins(1),
        conditions: Conditions {
            min_unlock_delay,
            ..Conditions::default()
        },
    }
}

#[tokio::test]
async fn settings_are_versioned_by_height_and_admin_changes_survive_restarts() {
    let t = TestDb::new(false).await;
    let db = t.migrated().await;
    let file = pool_settings("5", 1440);

    // First start: the file's settings from height 0.
    let v = settings::sync_with_config(&db, "VRSC", &file, 100)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((v.from_height, v.source), (0, SettingsSource::Config));
    // Restart with the same file: nothing new.
    assert_eq!(
        settings::sync_with_config(&db, "VRSC", &file, 120)
            .await
            .unwrap(),
        None
    );

    // An admin lowers the fee from height 130.
    let admin = pool_settings("2.5", 1440);
    settings::record(&db, "VRSC", 130, &admin, SettingsSource::Admin)
        .await
        .unwrap();
    assert_eq!(
        settings::sync_with_config(&db, "VRSC", &file, 140)
            .await
            .unwrap(),
        None,
        "the admin change stays"
    );
    assert_eq!(
        settings::at(&db, "VRSC", 129)
            .await
            .unwrap()
            .unwrap()
            .settings,
        file
    );
    assert_eq!(
        settings::at(&db, "VRSC", 130)
            .await
            .unwrap()
            .unwrap()
            .settings,
        admin
    );
    assert_eq!(
        settings::latest(&db, "VRSC")
            .await
            .unwrap()
            .unwrap()
            .settings,
        admin
    );

    // The operator edits the file: it applies from the next block.
    let edited = pool_settings("5", 2880);
    let v = settings::sync_with_config(&db, "VRSC", &edited, 150)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(v.from_height, 150);
    assert_eq!(
        settings::at(&db, "VRSC", 149)
            .await
            .unwrap()
            .unwrap()
            .settings,
        admin
    );
    assert_eq!(
        settings::at(&db, "VRSC", 150)
            .await
            .unwrap()
            .unwrap()
            .settings,
        edited
    );
    assert_eq!(settings::at(&db, "vARRR", 150).await.unwrap(), None);
}

#[tokio::test]
async fn subscriber_fee_overrides_by_height() {
    let t = TestDb::new(false).await;
    let db = t.migrated().await;
    let two = FeeRate::parse_percent("2").unwrap();
    assert_eq!(
        settings::subscriber_fee_at(&db, "VRSC", ALICE, 50)
            .await
            .unwrap(),
        None
    );
    settings::set_subscriber_fee(&db, "VRSC", ALICE, 100, Some(two))
        .await
        .unwrap();
    settings::set_subscriber_fee(&db, "VRSC", ALICE, 200, None)
        .await
        .unwrap();
    assert_eq!(
        settings::subscriber_fee_at(&db, "VRSC", ALICE, 99)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        settings::subscriber_fee_at(&db, "VRSC", ALICE, 150)
            .await
            .unwrap(),
        Some(two)
    );
    assert_eq!(
        settings::subscriber_fee_at(&db, "VRSC", ALICE, 200)
            .await
            .unwrap(),
        None,
        "back to the pool's fee"
    );
    assert_eq!(
        settings::subscriber_fee_at(&db, "VRSC", BOB, 150)
            .await
            .unwrap(),
        None
    );
    // All of them at once (what a stake's split reads) agrees with one at a time.
    let three = FeeRate::parse_percent("3").unwrap();
    settings::set_subscriber_fee(&db, "VRSC", BOB, 120, Some(three))
        .await
        .unwrap();
    settings::set_subscriber_fee(&db, "vARRR", ALICE, 10, Some(three))
        .await
        .unwrap();
    for height in [99, 100, 119, 120, 150, 199, 200, 500] {
        let all = settings::subscriber_fees_at(&db, "VRSC", height)
            .await
            .unwrap();
        for who in [ALICE, BOB] {
            assert_eq!(
                all.get(who).copied(),
                settings::subscriber_fee_at(&db, "VRSC", who, height)
                    .await
                    .unwrap(),
                "{who} at {height}"
            );
        }
        assert!(all.keys().all(|k| k == ALICE || k == BOB), "{all:?}");
    }
    let at_150 = settings::subscriber_fees_at(&db, "VRSC", 150)
        .await
        .unwrap();
    assert_eq!(
        (at_150.get(ALICE), at_150.get(BOB)),
        (Some(&two), Some(&three))
    );
}

#[tokio::test]
async fn payouts_pause_and_resume() {
    let t = TestDb::new(false).await;
    let db = t.migrated().await;
    assert!(!settings::payout_state(&db, "VRSC").await.unwrap().paused);
    settings::set_payouts_paused(&db, "VRSC", true, Some("wallet maintenance"))
        .await
        .unwrap();
    let s = settings::payout_state(&db, "VRSC").await.unwrap();
    assert_eq!(
        (s.paused, s.reason.as_deref()),
        (true, Some("wallet maintenance"))
    );
    settings::set_payouts_paused(&db, "VRSC", false, Some("ignored"))
        .await
        .unwrap();
    let s = settings::payout_state(&db, "VRSC").await.unwrap();
    assert_eq!((s.paused, s.reason), (false, None));
}

#[tokio::test]
async fn event_ids_are_contiguous_and_filters_apply() {
    let t = TestDb::new(false).await;
    let db = t.migrated().await;
    let txn = db.begin().await.unwrap();
    let ids = events::append(
        &txn,
        &[
            NewEvent {
                identity_address: Some(ALICE.into()),
                height: Some(10),
                ..NewEvent::new("VRSC", EventKind::SubscriberJoined, "alice joined")
            },
            NewEvent {
                block_hash: Some("h".into()),
                ..NewEvent::new("VRSC", EventKind::StakeFound, "stake")
            },
        ],
    )
    .await
    .unwrap();
    txn.commit().await.unwrap();
    assert_eq!(ids, vec![1, 2]);

    // A rolled-back transaction leaves no event and gives its ids back.
    let txn = db.begin().await.unwrap();
    events::append(
        &txn,
        &[NewEvent::new("VRSC", EventKind::PaymentSent, "never")],
    )
    .await
    .unwrap();
    txn.rollback().await.unwrap();

    let alert = NewEvent {
        alert: Some(IdentityAlertKind::UnlockRequested),
        identity_address: Some(BOB.into()),
        data: Some(serde_json::json!({"timelock": 3_800_000})),
        ..NewEvent::new("vARRR", EventKind::IdentityAlert, "bob requested an unlock")
    };
    assert_eq!(
        events::append(&db, std::slice::from_ref(&alert))
            .await
            .unwrap(),
        vec![3]
    );
    assert_eq!(events::last_id(&db).await.unwrap(), 3);

    let all = events::list(&db, &EventFilter::default(), 100)
        .await
        .unwrap();
    assert_eq!(all.iter().map(|e| e.id).collect::<Vec<_>>(), vec![1, 2, 3]);
    assert_eq!(all[2].event, alert, "stored and read back unchanged");
    let after_one = events::list(
        &db,
        &EventFilter {
            after: Some(1),
            ..Default::default()
        },
        100,
    )
    .await
    .unwrap();
    assert_eq!(
        after_one.iter().map(|e| e.id).collect::<Vec<_>>(),
        vec![2, 3]
    );
    let stakes = events::list(
        &db,
        &EventFilter {
            kinds: vec![EventKind::StakeFound],
            ..Default::default()
        },
        100,
    )
    .await
    .unwrap();
    assert_eq!(stakes.len(), 1);
    let vrsc = events::list(
        &db,
        &EventFilter {
            chain: Some("VRSC".into()),
            ..Default::default()
        },
        100,
    )
    .await
    .unwrap();
    assert_eq!(vrsc.len(), 2);
    let bob = events::list(
        &db,
        &EventFilter {
            identity_address: Some(BOB.into()),
            ..Default::default()
        },
        100,
    )
    .await
    .unwrap();
    assert_eq!(bob.iter().map(|e| e.id).collect::<Vec<_>>(), vec![3]);
    assert_eq!(
        events::list(&db, &EventFilter::default(), 2)
            .await
            .unwrap()
            .len(),
        2,
        "limit applies"
    );
}

#[tokio::test]
async fn concurrent_event_writers_get_distinct_gapless_ids() {
    let t = TestDb::new(true).await;
    let db = t.migrated().await;
    let mut tasks = Vec::new();
    for i in 0..8 {
        let db = db.clone();
        tasks.push(tokio::spawn(async move {
            let txn = db.begin().await.unwrap();
            let batch =
                vec![NewEvent::new("VRSC", EventKind::StakeFound, format!("writer {i}")); 3];
            let ids = events::append(&txn, &batch).await.unwrap();
            txn.commit().await.unwrap();
            ids
        }));
    }
    let mut ids = Vec::new();
    for t in tasks {
        let batch = t.await.unwrap();
        assert_eq!(
            batch[2] - batch[0],
            2,
            "one transaction's ids are consecutive"
        );
        ids.extend(batch);
    }
    ids.sort_unstable();
    assert_eq!(ids, (1..=24).collect::<Vec<i64>>());
}

#[tokio::test]
async fn ledger_postings_move_balances_and_totals() {
    let t = TestDb::new(false).await;
    let db = t.migrated().await;
    let post = |identity: Option<&'static str>, kind, sats| Posting {
        chain: "VRSC",
        identity_address: identity,
        kind,
        amount: Sats(sats),
        stake_id: None,
        payment_id: None,
        height: Some(100),
    };
    for p in [
        post(Some(ALICE), LedgerKind::Credit, 700),
        post(Some(BOB), LedgerKind::Credit, 250),
        post(None, LedgerKind::PoolKeep, 50),
        post(Some(ALICE), LedgerKind::PaymentPlanned, 600),
        post(Some(ALICE), LedgerKind::PaymentConfirmed, 600),
        post(Some(BOB), LedgerKind::PaymentPlanned, 250),
        post(Some(BOB), LedgerKind::PaymentFailed, 250),
    ] {
        ledger::post(&db, &p).await.unwrap();
    }
    let alice = ledger::balance(&db, "VRSC", ALICE).await.unwrap();
    assert_eq!(
        (alice.pending, alice.in_flight, alice.paid, alice.credited),
        (Sats(100), Sats(0), Sats(600), Sats(700))
    );
    let bob = ledger::balance(&db, "VRSC", BOB).await.unwrap();
    assert_eq!(
        (bob.pending, bob.in_flight, bob.paid),
        (Sats(250), Sats(0), Sats(0))
    );
    let totals = ledger::pool_totals(&db, "VRSC").await.unwrap();
    assert_eq!(totals.fees_earned, Sats(50));
    assert_eq!(totals.total_paid, Sats(600));
    assert_eq!(totals.pending_total, Sats(350));
    assert_eq!(
        totals.credited_total,
        totals
            .pending_total
            .checked_add(totals.in_flight_total)
            .and_then(|s| s.checked_add(totals.total_paid))
            .unwrap()
    );
    assert_eq!(
        ledger::pool_totals(&db, "vARRR").await.unwrap(),
        ledger::PoolTotals::default()
    );
    assert!(
        ledger::post(&db, &post(Some(ALICE), LedgerKind::Credit, -1))
            .await
            .is_err(),
        "negative amounts are refused"
    );
}

#[tokio::test]
async fn a_batch_of_postings_moves_every_balance_like_one_at_a_time() {
    let t = TestDb::new(false).await;
    let db = t.migrated().await;
    // 1,201 identities: more than two statements' worth (500 rows each); every third one
    // already has a balance, and the first one is credited twice in the batch.
    let ids: Vec<String> = (0..1201).map(|i| format!("iBatch{i:05}")).collect();
    fn posting(who: &str, kind: LedgerKind, sats: i64, stake: Option<i64>) -> Posting<'_> {
        Posting {
            chain: "VRSC",
            identity_address: Some(who),
            kind,
            amount: Sats(sats),
            stake_id: stake,
            payment_id: None,
            height: Some(7),
        }
    }
    for (i, who) in ids.iter().enumerate().step_by(3) {
        let who = who.as_str();
        ledger::post(
            &db,
            &posting(who, LedgerKind::Credit, 1_000 + i as i64, None),
        )
        .await
        .unwrap();
        ledger::post(&db, &posting(who, LedgerKind::PaymentPlanned, 400, None))
            .await
            .unwrap();
    }
    let before: Vec<_> = {
        let mut v = Vec::new();
        for who in &ids {
            v.push(ledger::balance(&db, "VRSC", who).await.unwrap());
        }
        v
    };
    let mut batch: Vec<Posting<'_>> = ids
        .iter()
        .enumerate()
        .map(|(i, who)| posting(who, LedgerKind::Credit, 10 + i as i64, Some(42)))
        .collect();
    batch.push(posting(&ids[0], LedgerKind::Credit, 5, Some(42)));
    batch.push(Posting {
        identity_address: None,
        kind: LedgerKind::PoolKeep,
        amount: Sats(99),
        ..posting(&ids[0], LedgerKind::PoolKeep, 0, Some(42))
    });
    let txn = db.begin().await.unwrap();
    ledger::post_many(&txn, &batch).await.unwrap();
    txn.commit().await.unwrap();

    for (i, who) in ids.iter().enumerate() {
        let extra = 10 + i as i64 + if i == 0 { 5 } else { 0 };
        let b = ledger::balance(&db, "VRSC", who).await.unwrap();
        let was = before[i];
        assert_eq!(b.pending, Sats(was.pending.0 + extra), "{who}");
        assert_eq!(b.credited, Sats(was.credited.0 + extra), "{who}");
        assert_eq!((b.in_flight, b.paid), (was.in_flight, was.paid), "{who}");
    }
    // The pool's keep is an entry only (no balance).
    assert_eq!(
        ledger::pool_totals(&db, "VRSC").await.unwrap().fees_earned,
        Sats(99)
    );

    // Taking the stake back restores every balance as it was, and its entries go.
    ledger::reverse_stake(&db, "VRSC", 42).await.unwrap();
    for (i, who) in ids.iter().enumerate() {
        assert_eq!(
            ledger::balance(&db, "VRSC", who).await.unwrap(),
            before[i],
            "{who}"
        );
    }
    assert_eq!(
        ledger::pool_totals(&db, "VRSC").await.unwrap().fees_earned,
        Sats(0)
    );
    // A negative amount anywhere in a batch writes nothing.
    batch[600].amount = Sats(-1);
    assert!(ledger::post_many(&db, &batch).await.is_err());
    for (i, who) in ids.iter().enumerate().take(3) {
        assert_eq!(
            ledger::balance(&db, "VRSC", who).await.unwrap(),
            before[i],
            "{who}"
        );
    }
}

#[tokio::test]
async fn large_sums_stay_exact() {
    let t = TestDb::new(false).await;
    let db = t.migrated().await;
    // Three balances near 2^61 sum beyond what a 64-bit float holds exactly.
    let big = (1i64 << 61) + 1;
    for (i, who) in [ALICE, BOB, "iR1y3gPVjYTgr2oDWdM36V9VjoscQqekTY"]
        .iter()
        .enumerate()
    {
        let p = Posting {
            chain: "VRSC",
            identity_address: Some(who),
            kind: LedgerKind::Credit,
            amount: Sats(big + i as i64),
            stake_id: None,
            payment_id: None,
            height: None,
        };
        ledger::post(&db, &p).await.unwrap();
    }
    assert_eq!(
        ledger::pool_totals(&db, "VRSC")
            .await
            .unwrap()
            .pending_total,
        Sats(3 * big + 3)
    );
}

#[tokio::test]
async fn subscriber_status_changes_keep_history_and_heights() {
    let t = TestDb::new(false).await;
    let db = t.migrated().await;
    let change = |status, height, reason: Option<&'static str>| StatusChange {
        chain: "VRSC",
        identity_address: ALICE,
        name: "alice.VRSC@",
        status,
        height,
        reason,
        unmet: &[],
        action: None,
    };
    // What clients must be told: each change of membership, once.
    let (s, told) = subscribers::set_status(
        &db,
        &change(
            SubscriberStatus::CoolingDown,
            100,
            Some("met every condition"),
        ),
    )
    .await
    .unwrap();
    assert_eq!(
        (s.status, s.joined_height, s.left_height, told),
        (SubscriberStatus::CoolingDown, Some(100), None, Some(true))
    );
    let (s, told) = subscribers::set_status(&db, &change(SubscriberStatus::Active, 250, None))
        .await
        .unwrap();
    assert_eq!(
        (s.status, s.joined_height, told),
        (SubscriberStatus::Active, Some(100), None)
    );
    let unmet = vec!["the identity is no longer delay-locked".to_owned()];
    let (s, told) = subscribers::set_status(
        &db,
        &StatusChange {
            unmet: &unmet,
            ..change(SubscriberStatus::Left, 300, Some("unlock requested"))
        },
    )
    .await
    .unwrap();
    assert_eq!(
        (s.status, s.left_height, s.unmet.clone(), told),
        (SubscriberStatus::Left, Some(300), unmet, Some(false))
    );
    let (s, told) = subscribers::set_status(&db, &change(SubscriberStatus::CoolingDown, 400, None))
        .await
        .unwrap();
    assert_eq!(
        (s.joined_height, s.left_height, s.unmet.len(), told),
        (Some(400), Some(300), 0, Some(true)),
        "rejoining moves the join height"
    );

    let history = subscribers::history(&db, "VRSC", ALICE).await.unwrap();
    let statuses: Vec<_> = history.iter().map(|(h, s, _)| (*h, *s)).collect();
    assert_eq!(
        statuses,
        vec![
            (100, SubscriberStatus::CoolingDown),
            (250, SubscriberStatus::Active),
            (300, SubscriberStatus::Left),
            (400, SubscriberStatus::CoolingDown)
        ]
    );
    assert_eq!(history[2].2.as_deref(), Some("unlock requested"));

    subscribers::set_status(
        &db,
        &StatusChange {
            identity_address: BOB,
            name: "bob.VRSC@",
            ..change(SubscriberStatus::Banned, 120, Some("admin"))
        },
    )
    .await
    .unwrap();
    let in_pool = [SubscriberStatus::Active, SubscriberStatus::CoolingDown];
    assert_eq!(
        subscribers::count_by_status(&db, "VRSC", &in_pool)
            .await
            .unwrap(),
        1
    );
    let banned = subscribers::list(&db, "VRSC", Some(SubscriberStatus::Banned), None, 10)
        .await
        .unwrap();
    assert_eq!(
        banned
            .iter()
            .map(|s| s.identity_address.as_str())
            .collect::<Vec<_>>(),
        vec![BOB]
    );
    let page = subscribers::list(&db, "VRSC", None, Some(s.id), 10)
        .await
        .unwrap();
    assert_eq!(page.len(), 1, "paging after alice's id gives bob only");

    assert!(
        subscribers::set_min_payout(&db, "VRSC", ALICE, Sats::coins(3), 100)
            .await
            .unwrap()
    );
    // A signature over a height used already (or an older one) is refused: used once.
    for height in [100, 99] {
        assert!(
            !subscribers::set_min_payout(&db, "VRSC", ALICE, Sats::coins(9), height)
                .await
                .unwrap(),
            "height {height} again"
        );
    }
    assert!(
        !subscribers::set_min_payout(
            &db,
            "VRSC",
            "iR1y3gPVjYTgr2oDWdM36V9VjoscQqekTY",
            Sats::coins(3),
            100
        )
        .await
        .unwrap()
    );
    assert_eq!(
        subscribers::get(&db, "VRSC", ALICE)
            .await
            .unwrap()
            .unwrap()
            .min_payout,
        Some(Sats::coins(3))
    );
}

#[tokio::test]
async fn stats_and_audit() {
    let t = TestDb::new(false).await;
    let db = t.migrated().await;
    for h in 1..=5 {
        let s = stats::PoolStats {
            height: h,
            staking_supply: Sats::coins(h * 10),
            active_subscribers: h as i32,
            network_staking_supply: (h % 2 == 0).then_some(Sats::coins(1000)),
            proof_of_stake: h % 3 == 0,
        };
        stats::record(&db, "VRSC", &s).await.unwrap();
    }
    assert_eq!(
        stats::latest(&db, "VRSC")
            .await
            .unwrap()
            .map(|s| s.staking_supply),
        Some(Sats::coins(50))
    );
    let range = stats::range(&db, "VRSC", 2, 4, 10).await.unwrap();
    assert_eq!(
        range.iter().map(|s| s.height).collect::<Vec<_>>(),
        vec![2, 3, 4]
    );
    assert_eq!(range[0].network_staking_supply, Some(Sats::coins(1000)));
    assert_eq!(
        range.iter().map(|s| s.proof_of_stake).collect::<Vec<_>>(),
        vec![false, true, false]
    );
    stats::delete_from(&db, "VRSC", 4).await.unwrap();
    assert_eq!(
        stats::latest(&db, "VRSC").await.unwrap().map(|s| s.height),
        Some(3)
    );

    let entry = audit::AuditEntry {
        chain: Some("VRSC".into()),
        token_prefix: "ba7816bf".into(),
        mutation: "setPoolFee".into(),
        arguments: r#"{"feePercent":"4"}"#.into(),
        remote_addr: Some("127.0.0.1".into()),
    };
    audit::record(&db, &entry).await.unwrap();
    let recent = audit::recent(&db, 10).await.unwrap();
    assert_eq!(recent.len(), 1);
    assert_eq!(recent[0].0, entry);
}

#[tokio::test]
async fn a_payment_moves_only_from_the_status_its_writer_read() {
    use coinstaker::domain::PaymentStatus;
    use coinstaker::store::payments;
    let t = TestDb::new(false).await;
    let db = t.migrated().await;
    let id = payments::insert_planned(&db, "VRSC", 10, &[("iAlice".into(), Sats::coins(2))])
        .await
        .unwrap();
    let planned = payments::get(&db, id).await.unwrap().unwrap();
    // A new leader marks it SENT.
    let mut sent = planned.clone();
    sent.status = PaymentStatus::Sent;
    sent.txid = Some("ab".repeat(32));
    payments::update(&db, &sent, PaymentStatus::Planned)
        .await
        .unwrap();
    // The old leader's stale write (it read PLANNED) changes nothing.
    let mut stale = planned.clone();
    stale.status = PaymentStatus::Submitted;
    stale.opid = Some("opid-1".into());
    let err = payments::update(&db, &stale, PaymentStatus::Planned)
        .await
        .unwrap_err();
    assert!(
        matches!(err, coinstaker::store::StoreError::Conflict(_)),
        "{err:?}"
    );
    let now = payments::get(&db, id).await.unwrap().unwrap();
    assert_eq!(
        (now.status, now.txid, now.opid),
        (PaymentStatus::Sent, sent.txid, None)
    );
}

/// A query abandoned mid-flight (an HTTP client that went away, an actor stopped at shutdown,
/// a timed-out lease renewal) never costs the pool its connection: after hundreds of them,
/// cancelled at every point of their life, a two-connection pool still answers and closes.
/// (On MySQL, sqlx tested a returned connection with an unbounded ping that could wait forever
/// after a cancelled query: the pool lost the connection for good and `close()` hung.)
#[tokio::test]
async fn abandoned_queries_never_cost_the_pool_a_connection() {
    use sea_orm::{ConnectionTrait, DbBackend, Statement};
    let t = TestDb::new(true).await;
    t.migrated().await.close().await.unwrap();
    let db = coinstaker::store::connect_url(&t.url, 2).await.unwrap();
    chain::ensure_chain(&db, "VRSC").await.unwrap();
    let backend = db.get_database_backend();
    let mut cut = 0;
    for i in 0..400i64 {
        // Cut after 0–3 ms: at every point of the operation's life. How many finish within
        // that depends on the machine's load (on a busy CI machine none did on PostgreSQL),
        // so only the cuts are counted.
        let at = Duration::from_micros(25 * (i % 120) as u64);
        let hash = format!("h{i}");
        // A statement never seen before is prepared first: one more round trip to cut.
        let fresh = Statement::from_sql_and_values(
            backend,
            format!(
                "SELECT {i} + {}",
                if backend == DbBackend::Postgres {
                    "$1"
                } else {
                    "?"
                }
            ),
            [i.into()],
        );
        let done = match i % 3 {
            0 => tokio::time::timeout(at, chain::insert_block(&db, "VRSC", &block(i, &hash, "p")))
                .await
                .is_ok(),
            1 => tokio::time::timeout(at, chain::tip(&db, "VRSC"))
                .await
                .is_ok(),
            // In a transaction: the rollback of a dropped transaction is queued behind what
            // was cut off.
            _ => tokio::time::timeout(at, async {
                let txn = db.begin().await?;
                txn.query_one_raw(fresh).await?;
                txn.commit().await
            })
            .await
            .is_ok(),
        };
        cut += usize::from(!done);
    }
    // Some were cut off, or the test proves nothing.
    assert!(cut > 0, "no operation was cut off");
    // Every connection comes back: twenty queries in a row get answers on time...
    for _ in 0..20 {
        let answer = tokio::time::timeout(Duration::from_secs(10), chain::tip(&db, "VRSC")).await;
        assert!(
            matches!(answer, Ok(Ok(_))),
            "the pool answers after abandoned queries: {answer:?}"
        );
    }
    // ...and closing, which waits for all of them, finishes.
    assert!(
        tokio::time::timeout(Duration::from_secs(20), db.close())
            .await
            .is_ok(),
        "the pool closes"
    );
}

/// The GraphQL loaders read a page of subscribers' credits, payments and balances with a few
/// statements; each answer must be what the one-identity reads give.
#[tokio::test]
async fn the_batched_reads_answer_like_one_identity_at_a_time() {
    use coinstaker::domain::{FeeRate, StakeStatus, Work};
    use coinstaker::store::{payments, stakes, stakes::Credit, stakes::StakePage};
    let t = TestDb::new(false).await;
    let db = t.migrated().await;
    let who: Vec<String> = (0..7).map(|i| format!("iLoad{i}")).collect();
    // Four stakes; identity i is credited by the stakes j with (i + j) % 3 != 0.
    let mut stake_ids = Vec::new();
    for j in 0..4i64 {
        let stake = stakes::Stake {
            id: 0,
            chain: "VRSC".into(),
            block_hash: format!("{j:064x}"),
            height: 100 + j,
            found_by: who[0].clone(),
            reward: Sats::coins(6),
            status: StakeStatus::Matured,
            solo: false,
            pool_own: false,
            round_start_height: 1,
            total_work: Work(1),
            pool_keep: None,
            coinbase_txid: None,
            status_height: None,
            note: None,
        };
        let id = stakes::insert(&db, &stake).await.unwrap();
        let credits: Vec<Credit> = who
            .iter()
            .enumerate()
            .filter(|(i, _)| (*i as i64 + j) % 3 != 0)
            .map(|(i, w)| Credit {
                id: 0,
                stake_id: id,
                identity_address: w.clone(),
                height: 100 + j,
                work: Work(10 + i as u128),
                amount: Sats(1_000 * (j + 1) + i as i64),
                fee: Sats(1),
                fee_rate: FeeRate::default(),
            })
            .collect();
        stakes::insert_credits(&db, "VRSC", &credits).await.unwrap();
        stake_ids.push(id);
    }
    // Payments: identity i is in payment k when (i + k) is even.
    for k in 0..5i64 {
        let outputs: Vec<(String, Sats)> = who
            .iter()
            .enumerate()
            .filter(|(i, _)| (*i as i64 + k) % 2 == 0)
            .map(|(i, w)| (w.clone(), Sats(500 + i as i64)))
            .collect();
        payments::insert_planned(&db, "VRSC", 200 + k, &outputs)
            .await
            .unwrap();
    }
    // Another chain's payment to the same identities must not show.
    payments::insert_planned(&db, "vARRR", 300, &[(who[1].clone(), Sats(9))])
        .await
        .unwrap();

    let mut asked = who.clone();
    asked.push("iNobody".into());
    for (before, limit) in [(None, 1u64), (None, 3), (None, 50), (Some(i64::MAX), 2)] {
        let credits = stakes::credits_of_identities(&db, "VRSC", &asked, before, limit)
            .await
            .unwrap();
        let paid = payments::of_identities(&db, "VRSC", &asked, before, limit)
            .await
            .unwrap();
        for w in &asked {
            let one = stakes::credits_of_identity(&db, "VRSC", w, before, limit)
                .await
                .unwrap();
            assert_eq!(
                credits.get(w).cloned().unwrap_or_default(),
                one,
                "{w} {limit}"
            );
            let one = payments::list(&db, "VRSC", None, Some(w), before, limit)
                .await
                .unwrap();
            let batch: Vec<i64> = paid
                .get(w)
                .map(|p| p.iter().map(|p| p.id).collect())
                .unwrap_or_default();
            assert_eq!(
                batch,
                one.iter().map(|p| p.id).collect::<Vec<_>>(),
                "{w} {limit}"
            );
            if let Some(first) = paid.get(w).and_then(|p| p.first()) {
                assert_eq!(first, &one[0], "{w}: the payment with its outputs");
            }
        }
    }
    // Cursors: the page after a credit/payment of the middle.
    let all = stakes::credits_of_identity(&db, "VRSC", &who[1], None, 50)
        .await
        .unwrap();
    assert!(all.len() >= 2, "the fixture credits iLoad1 more than once");
    let cursor = Some(all[0].id);
    let after = stakes::credits_of_identities(&db, "VRSC", &who, cursor, 50)
        .await
        .unwrap();
    assert_eq!(after[&who[1]], all[1..].to_vec());

    // Balances: zero for unknown identities.
    ledger::post(
        &db,
        &Posting {
            chain: "VRSC",
            identity_address: Some(&who[3]),
            kind: LedgerKind::Credit,
            amount: Sats(12_345),
            stake_id: None,
            payment_id: None,
            height: Some(9),
        },
    )
    .await
    .unwrap();
    let balances = ledger::balances(&db, "VRSC", &asked).await.unwrap();
    for w in &asked {
        assert_eq!(
            balances[w],
            ledger::balance(&db, "VRSC", w).await.unwrap(),
            "{w}"
        );
    }
    assert_eq!(balances[&who[3]].pending, Sats(12_345));

    // A stake's credits, several stakes at once, with and without `after`, and one stake
    // asked twice in one batch.
    let mut pages = Vec::new();
    for &id in &stake_ids {
        let whole = stakes::credits_of_stake_page(&db, id, None, None)
            .await
            .unwrap();
        pages.push(StakePage {
            stake_id: id,
            after_identity: None,
            limit: 2,
        });
        pages.push(StakePage {
            stake_id: id,
            after_identity: Some(whole[0].identity_address.clone()),
            limit: 2,
        });
        pages.push(StakePage {
            stake_id: id,
            after_identity: Some("iNobody".into()),
            limit: 2,
        });
    }
    let found = stakes::credits_of_stake_pages(&db, &pages, 2)
        .await
        .unwrap();
    assert_eq!(found.len(), pages.len());
    for p in &pages {
        let one =
            stakes::credits_of_stake_page(&db, p.stake_id, p.after_identity.as_deref(), Some(2))
                .await
                .unwrap();
        assert_eq!(found[p], one, "{p:?}");
    }
    assert!(found.values().any(|v| v.len() == 2), "some page is full");
}

/// The API's pool-wide snapshot is shared while the books' version stays, and replaced by
/// every write: a fenced transaction, and each write made outside one (the processed block,
/// the ledger check's hold). Before any lease there is nothing to share.
#[tokio::test]
async fn pool_snapshots_follow_every_write_of_the_books() {
    use coinstaker::graphql::snapshot::PoolSnapshots;
    use coinstaker::store::lease::{self, Fence};
    use std::sync::Arc;

    let t = TestDb::new(false).await;
    let db = t.migrated().await;
    chain::ensure_chain(&db, "VRSC").await.unwrap();
    let snapshots = PoolSnapshots::default();
    let a = snapshots.get(&db, "VRSC").await.unwrap();
    let b = snapshots.get(&db, "VRSC").await.unwrap();
    assert!(!Arc::ptr_eq(&a, &b), "no lease: no version, nothing shared");

    let epoch = lease::try_take(&db, "VRSC", "me", "http://me", None)
        .await
        .unwrap()
        .expect("the first instance takes the lease");
    let first = snapshots.get(&db, "VRSC").await.unwrap();
    first.processed.set(7).unwrap();
    let again = snapshots.get(&db, "VRSC").await.unwrap();
    assert!(Arc::ptr_eq(&first, &again), "same version: same snapshot");
    assert_eq!(again.processed.get(), Some(&7));

    // Writes made outside a fenced transaction touch the version.
    chain::insert_block(&db, "VRSC", &block(10, "a10", "a9"))
        .await
        .unwrap();
    let after_block = snapshots.get(&db, "VRSC").await.unwrap();
    assert!(!Arc::ptr_eq(&first, &after_block), "a processed block");
    assert_eq!(after_block.processed.get(), None, "read afresh");
    settings::set_check_failure(&db, "VRSC", Some("books off by 1"))
        .await
        .unwrap();
    let after_hold = snapshots.get(&db, "VRSC").await.unwrap();
    assert!(!Arc::ptr_eq(&after_block, &after_hold), "the ledger check");

    // A fenced transaction changes it when it commits, not before, and not when rolled back.
    let fence = Fence {
        chain: "VRSC".into(),
        holder: "me".into(),
        epoch,
    };
    let txn = fence.begin(&db).await.unwrap();
    txn.rollback().await.unwrap();
    let after_rollback = snapshots.get(&db, "VRSC").await.unwrap();
    assert!(
        Arc::ptr_eq(&after_hold, &after_rollback),
        "nothing committed"
    );
    let txn = fence.begin(&db).await.unwrap();
    settings::set_payouts_paused(&txn, "VRSC", true, Some("maintenance"))
        .await
        .unwrap();
    txn.commit().await.unwrap();
    let after_pause = snapshots.get(&db, "VRSC").await.unwrap();
    assert!(!Arc::ptr_eq(&after_hold, &after_pause), "a fenced write");
}

/// What the registry reads and writes for a chunk of identities it starts following answers
/// exactly like the one-identity-at-a-time functions it replaces: versions in effect,
/// outputs counted against `max_utxos`, statuses, the subscribers created, and the actions.
#[tokio::test]
async fn the_registrys_batched_reads_and_writes_answer_like_one_at_a_time() {
    use coinstaker::domain::ActionKind;
    use coinstaker::domain::conditions::IdentityFacts;
    use coinstaker::store::actions;
    use coinstaker::store::identities::{self, IdentityVersion};
    use coinstaker::store::utxos::{self, Utxo};

    let t = TestDb::new(false).await;
    let db = t.migrated().await;
    let who: Vec<String> = (0..6).map(|i| format!("iBatch{i}")).collect();
    let version = |i: usize, height: i64| IdentityVersion {
        height,
        txid: format!("{i}-{height}"),
        name: format!("batch{i}"),
        facts: IdentityFacts {
            address: who[i].clone(),
            flags: (height % 3) as u32,
            timelock: height,
            primary_addresses: vec![format!("R{i}")],
            minimum_signatures: 1,
            revocation_authority: who[i].clone(),
            recovery_authority: who[(i + 1) % 6].clone(),
            revoked_status: false,
        },
    };
    // Identity i has versions at 10·k for k ≤ i, and outputs of 1..=i coins at heights 5·k,
    // the one at 5 paid by the pool, those at 10 spent at 20.
    let mut versions = Vec::new();
    let mut outputs = Vec::new();
    for (i, holder) in who.iter().enumerate() {
        for k in 1..=i as i64 {
            versions.push(version(i, 10 * k));
            outputs.push(Utxo {
                identity_address: holder.clone(),
                txid: format!("t{i}-{k}"),
                vout: 0,
                amount: Sats::coins(k),
                height: 5 * k,
                from_pool: k == 1,
                spent_height: None,
            });
        }
    }
    identities::record_many(&db, "VRSC", &versions)
        .await
        .unwrap();
    utxos::insert(&db, "VRSC", &outputs).await.unwrap();
    let spent: Vec<(String, u32, String)> = (2..6)
        .map(|i| (format!("t{i}-2"), 0, "spender".to_owned()))
        .collect();
    utxos::mark_spent(&db, "VRSC", &spent, 20).await.unwrap();

    let mut asked = who.clone();
    asked.push("iNobody".into());
    for height in [0, 9, 10, 19, 20, 35, 100] {
        let many = identities::at_many(&db, "VRSC", &asked, height)
            .await
            .unwrap();
        for w in &asked {
            let one = identities::at(&db, "VRSC", w, height).await.unwrap();
            assert_eq!(many.get(w).cloned(), one, "{w} at {height}");
        }
        for min in [Sats(0), Sats::coins(2), Sats::coins(9)] {
            let many = utxos::counted_many(&db, "VRSC", &asked, height, min)
                .await
                .unwrap();
            for w in &asked {
                let one = utxos::counted(&db, "VRSC", w, height, min).await.unwrap();
                assert_eq!(many.get(w).copied().unwrap_or(0), one, "{w} at {height}");
            }
        }
    }

    // Subscribers made together equal those made one at a time (on other identities).
    let unmet = vec!["too many outputs".to_owned()];
    let plan: [(SubscriberStatus, &str, &[String]); 3] = [
        (SubscriberStatus::Active, "meets every condition", &[]),
        (SubscriberStatus::CoolingDown, "cooling down", &[]),
        (SubscriberStatus::Left, "does not", &unmet),
    ];
    let changes = |names: [&'static str; 3]| -> Vec<StatusChange<'_>> {
        names
            .into_iter()
            .zip(plan)
            .map(|(w, (status, reason, unmet))| StatusChange {
                chain: "VRSC",
                identity_address: w,
                name: "batch.VRSC@",
                status,
                height: 40,
                reason: Some(reason),
                unmet,
                action: Some(7),
            })
            .collect()
    };
    // Then each changes twice more, beside a new one: out of the pool at the height its
    // interval opened (the empty interval goes), into it and between its states, and banned.
    use SubscriberStatus::{Active, Banned, CoolingDown, Left};
    let steps: [(i64, [SubscriberStatus; 4]); 2] = [
        (40, [Left, Active, CoolingDown, Active]),
        (55, [CoolingDown, Left, Active, Banned]),
    ];
    let later = |names: [&'static str; 4], (height, statuses): (i64, [SubscriberStatus; 4])| {
        names
            .into_iter()
            .zip(statuses)
            .map(|(w, status)| StatusChange {
                chain: "VRSC",
                identity_address: w,
                name: "batch.VRSC@",
                status,
                height,
                reason: None,
                unmet: if status == Left { &unmet[..] } else { &[] },
                action: None,
            })
            .collect::<Vec<_>>()
    };
    let mut told_together = Vec::new();
    for (step, (height, statuses)) in [(40, [Active; 4])].into_iter().chain(steps).enumerate() {
        let (together, one) = if step == 0 {
            (
                changes(["iNewA", "iNewB", "iNewC"]),
                changes(["iOneA", "iOneB", "iOneC"]),
            )
        } else {
            (
                later(["iNewA", "iNewB", "iNewC", "iNewD"], (height, statuses)),
                later(["iOneA", "iOneB", "iOneC", "iOneD"], (height, statuses)),
            )
        };
        told_together.push(subscribers::set_status_many(&db, &together).await.unwrap());
        let intervals: Vec<(&str, bool)> = together
            .iter()
            .map(|c| (c.identity_address, c.status == Active))
            .collect();
        subscribers::set_intervals_many(&db, "VRSC", &intervals, height)
            .await
            .unwrap();
        let mut told_one = Vec::new();
        for c in one {
            told_one.push(subscribers::set_status(&db, &c).await.unwrap().1);
            if c.status == Active {
                subscribers::open_interval(&db, "VRSC", c.identity_address, height)
                    .await
                    .unwrap();
            } else {
                subscribers::close_interval(&db, "VRSC", c.identity_address, height)
                    .await
                    .unwrap();
            }
        }
        assert_eq!(told_together.last(), Some(&told_one), "step {step}");
    }
    // Told: entering the pool from outside it, leaving it from inside.
    assert_eq!(
        told_together,
        vec![
            vec![Some(true), Some(true), None],
            vec![Some(false), None, Some(true), Some(true)],
            vec![Some(true), Some(false), None, Some(false)],
        ],
    );
    let statuses = subscribers::statuses_of(
        &db,
        "VRSC",
        &["iNewA", "iNewB", "iNewC", "iNewD", "iOneB", "iNobody"].map(String::from),
    )
    .await
    .unwrap();
    assert_eq!(statuses.len(), 5, "iNobody is no subscriber");
    assert_eq!(statuses["iNewC"], SubscriberStatus::Active);
    for (new, one) in [
        ("iNewA", "iOneA"),
        ("iNewB", "iOneB"),
        ("iNewC", "iOneC"),
        ("iNewD", "iOneD"),
    ] {
        let a = subscribers::get(&db, "VRSC", new).await.unwrap().unwrap();
        let b = subscribers::get(&db, "VRSC", one).await.unwrap().unwrap();
        assert_eq!(
            (a.status, a.joined_height, a.left_height, &a.unmet, &a.name),
            (b.status, b.joined_height, b.left_height, &b.unmet, &b.name),
            "{new}"
        );
        assert_eq!(statuses.get(new), Some(&a.status));
        assert_eq!(
            subscribers::history(&db, "VRSC", new).await.unwrap(),
            subscribers::history(&db, "VRSC", one).await.unwrap()
        );
        assert_eq!(
            subscribers::intervals(&db, "VRSC", new).await.unwrap(),
            subscribers::intervals(&db, "VRSC", one).await.unwrap()
        );
    }
    // A's interval opened and closed at 40 is gone; B's and D's ran from 40 to 55; C's is
    // open from 55.
    for (who, spans) in [
        ("iNewA", vec![]),
        ("iNewB", vec![(40, Some(55))]),
        ("iNewC", vec![(55, None)]),
        ("iNewD", vec![(40, Some(55))]),
    ] {
        assert_eq!(
            subscribers::intervals(&db, "VRSC", who).await.unwrap(),
            spans,
            "{who}"
        );
    }
    let a = subscribers::get(&db, "VRSC", "iNewA")
        .await
        .unwrap()
        .unwrap();
    assert_eq!((a.joined_height, a.left_height), (Some(55), Some(40)));

    // Actions: the new ones, in the order asked, apart from an older one at the same height.
    let older = actions::record(&db, "VRSC", 40, "iNewB", ActionKind::Track)
        .await
        .unwrap();
    actions::record(&db, "vARRR", 40, "iNewA", ActionKind::Track)
        .await
        .unwrap();
    let recorded = actions::record_many(
        &db,
        "VRSC",
        40,
        &["iNewB", "iNewA", "iNewC"],
        ActionKind::Track,
    )
    .await
    .unwrap();
    assert_eq!(
        recorded
            .iter()
            .map(|a| (a.identity_address.as_str(), a.height, a.kind, a.applied))
            .collect::<Vec<_>>(),
        vec![
            ("iNewB", 40, ActionKind::Track, false),
            ("iNewA", 40, ActionKind::Track, false),
            ("iNewC", 40, ActionKind::Track, false)
        ]
    );
    assert!(recorded.iter().all(|a| a.id > older.id));
    let ids: Vec<i64> = recorded.iter().map(|a| a.id).collect();
    actions::mark_applied_many(&db, &ids).await.unwrap();
    let unapplied: Vec<i64> = actions::unapplied_at(&db, "VRSC", 40)
        .await
        .unwrap()
        .iter()
        .map(|a| a.id)
        .collect();
    assert_eq!(unapplied, vec![older.id], "only the older one is left");
}

#[tokio::test]
async fn merged_spans_give_every_identity_the_work_of_its_outputs_one_by_one() {
    use coinstaker::domain::conditions::COOLDOWN_BLOCKS;
    use coinstaker::domain::split::{OutputSpan, work_over};
    use coinstaker::store::utxos::{self, Utxo};

    let t = TestDb::new(false).await;
    let db = t.migrated().await;
    // Outputs mined before, inside and after a round's cooldown window, spent before, inside
    // and after it or not at all, several of them sharing their counted heights.
    let who: Vec<String> = (0..8).map(|i| format!("iSpan{i}")).collect();
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    let mut outputs = Vec::new();
    let mut spent = Vec::new();
    for (i, holder) in who.iter().enumerate() {
        for k in 0..12 {
            let height = 1 + next(400) as i64;
            let txid = format!("s{i}-{k}");
            outputs.push(Utxo {
                identity_address: holder.clone(),
                txid: txid.clone(),
                vout: 0,
                amount: Sats(next(5) as i64 * 100_000_000 + next(1000) as i64),
                height,
                from_pool: false,
                spent_height: None,
            });
            if next(3) == 0 {
                spent.push((height + 1 + next(300) as i64, txid));
            }
        }
        // Three old outputs that earn over the same heights.
        for k in 0..3 {
            outputs.push(Utxo {
                identity_address: holder.clone(),
                txid: format!("old{i}-{k}"),
                vout: 1,
                amount: Sats::coins(k + 1),
                height: 1,
                from_pool: false,
                spent_height: None,
            });
        }
    }
    utxos::insert(&db, "VRSC", &outputs).await.unwrap();
    for (at, txid) in &spent {
        utxos::mark_spent(&db, "VRSC", &[(txid.clone(), 0, "spender".to_owned())], *at)
            .await
            .unwrap();
    }
    let history = utxos::history_of(&db, "VRSC", &who).await.unwrap();
    let intervals: [&[(i64, Option<i64>)]; 3] = [
        &[(0, None)],
        &[(180, Some(260)), (300, None)],
        &[(250, Some(251))],
    ];
    for (first, last) in [(1, 500), (200, 350), (300, 300), (151, 160), (420, 700)] {
        let merged = utxos::spans_for(&db, "VRSC", first, last).await.unwrap();
        for (i, w) in who.iter().enumerate() {
            let one_by_one: Vec<OutputSpan> = history[w]
                .iter()
                .map(|u| OutputSpan {
                    amount: u.amount,
                    mined: u.height,
                    spent: u.spent_height,
                })
                .collect();
            let spans = merged.get(w).map_or(&[][..], Vec::as_slice);
            let iv = intervals[i % intervals.len()];
            assert_eq!(
                work_over(spans, iv, first, last),
                work_over(&one_by_one, iv, first, last),
                "{w} over {first}..={last}"
            );
            if first > 1 + COOLDOWN_BLOCKS {
                assert!(
                    spans.len() + 2 <= one_by_one.len(),
                    "{w}: the three old outputs make one span over {first}..={last}"
                );
            }
        }
    }
}

/// `PRAGMA synchronous` of one connection of `db` (0 off, 1 normal, 2 full).
async fn synchronous_of(db: &sea_orm::DatabaseConnection) -> i64 {
    use sea_orm::ConnectionTrait;
    let row = db
        .query_one_raw(sea_orm::Statement::from_string(
            db.get_database_backend(),
            "PRAGMA synchronous",
        ))
        .await
        .unwrap()
        .unwrap();
    row.try_get_by_index::<i64>(0).unwrap()
}

#[tokio::test]
async fn block_transactions_skip_the_flush_that_the_durable_connections_keep() {
    let (_t, config, durable) = durable_pool(2).await;
    let blocks = coinstaker::store::connect_blocks(&config, &durable)
        .await
        .unwrap();
    if durable.get_database_backend() == sea_orm::DbBackend::Sqlite {
        // Payments, subscribers' and admins' changes: flushed at every commit (FULL).
        assert_eq!(synchronous_of(&durable).await, 2);
        // What the chain gives again after a power cut: flushed by the next durable commit
        // or checkpoint (NORMAL).
        assert_eq!(synchronous_of(&blocks).await, 1);
    }
    // Either way, both pools are the same database.
    chain::ensure_chain(&durable, "VRSC").await.unwrap();
    chain::insert_block(&blocks, "VRSC", &block(7, "h7", "h6"))
        .await
        .unwrap();
    assert_eq!(
        chain::tip(&durable, "VRSC").await.unwrap(),
        Some(block(7, "h7", "h6"))
    );
    blocks.close().await.unwrap();
    durable.close().await.unwrap();
}

/// `subscriber_utxo`'s 64-bit keys only find candidates: two outputs or two identities whose
/// keys collide stay apart, because every statement compares the text. Storing an output
/// again updates its row instead of adding one, and the last of an output given twice wins.
#[tokio::test]
async fn utxo_keys_find_candidates_and_the_text_decides() {
    use coinstaker::store::utxos::{self, Utxo};
    use entity::subscriber_utxo::{self, text_key};
    use sea_orm::{ActiveModelTrait, ActiveValue::Set, EntityTrait};

    let t = TestDb::new(false).await;
    let db = t.migrated().await;
    let output = |who: &str, txid: &str, coins: i64| Utxo {
        identity_address: who.to_owned(),
        txid: txid.to_owned(),
        vout: 0,
        amount: Sats::coins(coins),
        height: 10,
        spent_height: None,
        from_pool: false,
    };
    // A row of another identity and transaction stored under the keys of "iAlice" and "tx-a",
    // as a collision would: every lookup of Alice or of tx-a finds it as a candidate.
    subscriber_utxo::ActiveModel {
        id: Default::default(),
        chain: Set("VRSC".into()),
        identity_address: Set("iMallory".into()),
        txid: Set("tx-m".into()),
        vout: Set(0),
        amount: Set(Sats::coins(1000).0),
        height: Set(10),
        spent_height: Set(None),
        spent_txid: Set(None),
        from_pool: Set(false),
        txid_key: Set(text_key("tx-a")),
        identity_key: Set(text_key("iAlice")),
    }
    .insert(&db)
    .await
    .unwrap();

    // tx-a is given twice: the last (7 coins) wins; tx-b once.
    utxos::insert(
        &db,
        "VRSC",
        &[
            output("iAlice", "tx-a", 5),
            output("iAlice", "tx-b", 2),
            output("iAlice", "tx-a", 7),
        ],
    )
    .await
    .unwrap();
    let alice = |at| utxos::unspent_at(&db, "VRSC", "iAlice", at);
    let amounts = |rows: Vec<Utxo>| {
        let mut a: Vec<(String, i64)> = rows.into_iter().map(|u| (u.txid, u.amount.0)).collect();
        a.sort();
        a
    };
    assert_eq!(
        amounts(alice(10).await.unwrap()),
        vec![
            ("tx-a".to_owned(), Sats::coins(7).0),
            ("tx-b".to_owned(), Sats::coins(2).0)
        ],
        "Mallory's row shares Alice's key and is not hers"
    );
    assert_eq!(
        utxos::eligible_balances(&db, "VRSC", &["iAlice".to_owned()], 10 + 150)
            .await
            .unwrap()["iAlice"],
        Sats::coins(9)
    );

    // Stored again (re-processing a block): the rows are updated, not added.
    utxos::insert(&db, "VRSC", &[output("iAlice", "tx-b", 3)])
        .await
        .unwrap();
    assert_eq!(
        subscriber_utxo::Entity::find()
            .all(&db)
            .await
            .unwrap()
            .len(),
        3
    );
    assert_eq!(
        amounts(alice(10).await.unwrap())[1],
        ("tx-b".to_owned(), Sats::coins(3).0)
    );

    // Spending tx-a:0 spends Alice's output, not Mallory's that shares its key.
    let touched = utxos::mark_spent(&db, "VRSC", &[("tx-a".into(), 0, "spender".into())], 20)
        .await
        .unwrap();
    assert_eq!(
        touched.into_iter().collect::<Vec<_>>(),
        vec!["iAlice".to_owned()]
    );
    assert_eq!(
        amounts(alice(20).await.unwrap()),
        vec![("tx-b".to_owned(), Sats::coins(3).0)]
    );
    let mallory = subscriber_utxo::Entity::find()
        .all(&db)
        .await
        .unwrap()
        .into_iter()
        .find(|r| r.txid == "tx-m")
        .unwrap();
    assert_eq!((mallory.spent_height, mallory.spent_txid), (None, None));
    // Forgetting Alice leaves Mallory.
    utxos::delete_identity(&db, "VRSC", "iAlice").await.unwrap();
    let left = subscriber_utxo::Entity::find().all(&db).await.unwrap();
    assert_eq!(
        left.iter()
            .map(|r| r.identity_address.as_str())
            .collect::<Vec<_>>(),
        vec!["iMallory"]
    );
}

/// The nice value of every thread of this process named `sqlx-sqlite-worker…` (Linux).
fn sqlite_worker_nices() -> Vec<i32> {
    let mut out = Vec::new();
    for task in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
        let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else {
            continue; // the thread ended meanwhile
        };
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        if !stat[open + 1..close].starts_with("sqlx-sqlite-wor") {
            continue;
        }
        // Fields after the name start at field 3 (state); nice is field 19.
        let nice = stat[close + 1..].split_whitespace().nth(19 - 3).unwrap();
        out.push(nice.parse().unwrap());
    }
    out
}

/// The API's SQLite connections run at the priority of the HTTP workers (`http.worker_nice`)
/// even though the start-up thread, at the actors' priority, opens the pool: each SQLite
/// connection is a thread that takes the priority of the thread opening it.
#[tokio::test]
async fn the_apis_sqlite_connections_run_at_the_http_workers_priority() {
    let (_t, config, durable) = durable_pool(3).await;
    let own = coinstaker::priority::current_nice().unwrap();
    // 7: no other test's threads have it (the apps' workers lower theirs by 10).
    let lowered = (own + 7).min(19);
    let placement = coinstaker::priority::ApiPlacement {
        nice: 7,
        cpus: None,
    };
    // As the pool opens it: statements yielding to blocks.
    let yielding = coinstaker::store::BlockYield {
        gate: coinstaker::gate::BlockGate::default(),
        limit: Duration::from_millis(250),
    };
    let api = coinstaker::store::connect_api(&config, placement, yielding)
        .await
        .unwrap();
    assert_eq!(
        coinstaker::priority::current_nice().unwrap(),
        own,
        "the calling thread keeps its priority"
    );
    if api.get_database_backend() == sea_orm::DbBackend::Sqlite {
        assert!(lowered > own);
        assert_eq!(
            sqlite_worker_nices()
                .into_iter()
                .filter(|n| *n == lowered)
                .count(),
            3,
            "every connection of the API's pool, opened at once"
        );
        // Opened at the lowered priority, they never expire (a connection opened again later
        // would take the priority of whatever thread needs it).
        let pool = api.get_sqlite_connection_pool().options();
        assert_eq!(pool.get_idle_timeout(), None);
        assert_eq!(pool.get_max_lifetime(), None);
    }
    // The pool reads what the actors' pool wrote.
    chain::ensure_chain(&durable, "VRSC").await.unwrap();
    chain::insert_block(&durable, "VRSC", &block(3, "h3", "h2"))
        .await
        .unwrap();
    assert_eq!(
        chain::tip(&api, "VRSC").await.unwrap(),
        Some(block(3, "h3", "h2"))
    );
    api.close().await.unwrap();
    durable.close().await.unwrap();
}

/// Counts to `n` in one statement (a recursive query: many steps of SQLite's machine).
async fn count_to(db: &sea_orm::DatabaseConnection, n: i64) -> i64 {
    use sea_orm::{ConnectionTrait, Statement};
    let row = db
        .query_one_raw(Statement::from_string(
            db.get_database_backend(),
            format!(
                "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < {n}) \
                 SELECT COUNT(*) AS n FROM c"
            ),
        ))
        .await
        .unwrap()
        .unwrap();
    row.try_get::<i64>("", "n").unwrap()
}

/// A statement of the API's SQLite pool that is running when a live block starts pauses
/// until the block is done; the actors' own statements never wait at the gate.
#[tokio::test]
async fn the_apis_sqlite_statements_pause_while_a_block_is_processed() {
    let (_t, config, durable) = durable_pool(2).await;
    if durable.get_database_backend() != sea_orm::DbBackend::Sqlite {
        // The statements of PostgreSQL and MySQL run in the server: nothing pauses them.
        return;
    }
    let gate = coinstaker::gate::BlockGate::default();
    let api = coinstaker::store::connect_api(
        &config,
        coinstaker::priority::ApiPlacement::default(),
        coinstaker::store::BlockYield {
            gate: gate.clone(),
            limit: Duration::from_secs(3600),
        },
    )
    .await
    .unwrap();
    // With the gate open, statements run through.
    assert_eq!(count_to(&api, 1_000).await, 1_000);
    let block = gate.close();
    let reading = tokio::spawn({
        let api = api.clone();
        async move { count_to(&api, 20_000).await }
    });
    // The actors' pool is not held by its own block.
    assert_eq!(count_to(&durable, 20_000).await, 20_000);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !reading.is_finished(),
        "an API statement ran to its end while the block was processed"
    );
    drop(block);
    let counted = tokio::time::timeout(Duration::from_secs(60), reading)
        .await
        .expect("the API statement did not go on when the block was done")
        .unwrap();
    assert_eq!(counted, 20_000);
    api.close().await.unwrap();
    durable.close().await.unwrap();
}

/// A fresh database, its configuration with `max_connections`, and the actors' pool on it,
/// migrated (keep the first: the database goes with it).
async fn durable_pool(
    max_connections: u32,
) -> (
    TestDb,
    coinstaker::config::DatabaseConfig,
    sea_orm::DatabaseConnection,
) {
    let t = TestDb::new(true).await;
    let config = coinstaker::config::DatabaseConfig {
        url: coinstaker::config::DatabaseUrl::new(t.url.clone()),
        max_connections,
        log_statements: false,
    };
    let durable = coinstaker::store::connect(&config).await.unwrap();
    coinstaker::store::migrate(&durable).await.unwrap();
    (t, config, durable)
}

/// Outputs are stored whole whatever their number: SQLite writes them in groups of 64, 16, 4
/// and 1 one-row statements, the other backends in one statement per 500. Every field of
/// every row is read back, so a value bound to the wrong row or column shows.
#[tokio::test]
async fn outputs_in_any_number_are_stored_field_by_field() {
    use coinstaker::store::utxos::{self, Utxo};
    use entity::subscriber_utxo::{self, text_key};
    use sea_orm::EntityTrait;

    let t = TestDb::new(false).await;
    let db = t.migrated().await;
    let mut expected = Vec::new();
    for (round, count) in [1usize, 3, 4, 5, 21, 64, 85, 200, 611]
        .into_iter()
        .enumerate()
    {
        let outputs: Vec<Utxo> = (0..count)
            .map(|i| Utxo {
                identity_address: format!("i{round}-holder{}", i % 7),
                txid: format!("tx{round}-{i}"),
                vout: u32::try_from(i % 5).unwrap(),
                amount: Sats(1_000 + i64::try_from(i).unwrap()),
                height: i64::try_from(round * 1_000 + i).unwrap(),
                spent_height: (i % 3 == 0).then(|| i64::try_from(round * 1_000 + i + 7).unwrap()),
                from_pool: i % 2 == 1,
            })
            .collect();
        utxos::insert(&db, "VRSC", &outputs).await.unwrap();
        expected.extend(outputs);
        let mut stored: Vec<_> = subscriber_utxo::Entity::find()
            .all(&db)
            .await
            .unwrap()
            .into_iter()
            .map(|r| {
                assert_eq!(r.chain, "VRSC");
                assert_eq!(r.spent_txid, None);
                assert_eq!(r.txid_key, text_key(&r.txid), "{}", r.txid);
                assert_eq!(r.identity_key, text_key(&r.identity_address), "{}", r.txid);
                Utxo {
                    identity_address: r.identity_address,
                    txid: r.txid,
                    vout: u32::try_from(r.vout).unwrap(),
                    amount: Sats(r.amount),
                    height: r.height,
                    spent_height: r.spent_height,
                    from_pool: r.from_pool,
                }
            })
            .collect();
        stored.sort_by(|a, b| a.txid.cmp(&b.txid));
        let mut want = expected.clone();
        want.sort_by(|a, b| a.txid.cmp(&b.txid));
        assert_eq!(stored, want, "after {count} outputs");
    }
}

/// The supply step carries the set of eligible identities from one height to the next
/// (`stats::EligibleIds`): stepped through starts, ends, one-block intervals, maturing and
/// spent outputs, it equals a fresh read and the supply equals a full recount at every height.
/// A set of another height, or one that no longer matches the recorded count (an interval
/// written behind the tracker's back), is read again rather than trusted.
#[tokio::test]
async fn the_supply_step_carries_the_eligible_set_and_reads_again_one_it_cannot_trust() {
    use coinstaker::store::stats::EligibleIds;
    use coinstaker::store::utxos::{self, Utxo};

    let t = TestDb::new(false).await;
    let db = t.migrated().await;
    // (identity, opens at, closes at).
    let intervals: [(&str, i64, Option<i64>); 6] = [
        ("iA", 100, None),
        ("iB", 100, Some(170)),
        ("iC", 160, None),
        ("iD", 120, Some(180)),
        ("iE", 175, Some(176)),
        ("iF", 185, None),
    ];
    let mut outputs = Vec::new();
    for (n, (id, _, _)) in intervals.iter().enumerate() {
        for k in 0..6i64 {
            let n = i64::try_from(n).unwrap();
            outputs.push(Utxo {
                identity_address: (*id).to_owned(),
                txid: format!("{id}-{k}"),
                vout: 0,
                amount: Sats(1_000 * (n + 1) + k),
                // Maturing between 150 and 200, some spent on the way.
                height: 5 + n * 7 + k * 6,
                spent_height: (k % 3 == 1).then_some(160 + n * 5 + k),
                from_pool: false,
            });
        }
    }
    utxos::insert(&db, "VRSC", &outputs).await.unwrap();
    // Each interval opened and closed at its height, as the registry does.
    let mut at: Vec<(i64, &str, bool)> = Vec::new();
    for (id, from, to) in intervals {
        at.push((from, id, true));
        if let Some(to) = to {
            at.push((to, id, false));
        }
    }
    at.sort();
    for (h, id, open) in at {
        if open {
            subscribers::open_interval(&db, "VRSC", id, h)
                .await
                .unwrap();
        } else {
            subscribers::close_interval(&db, "VRSC", id, h)
                .await
                .unwrap();
        }
    }

    let mut previous = stats::supply_at(&db, "VRSC", 149).await.unwrap();
    let mut known = Some(EligibleIds::read(&db, "VRSC", 149).await.unwrap());
    let mut counts = std::collections::BTreeSet::new();
    for h in 150..=200 {
        let (stepped, ids) = stats::supply_step(&db, "VRSC", h, previous, known.take())
            .await
            .unwrap();
        let full = stats::supply_at(&db, "VRSC", h).await.unwrap();
        assert_eq!(stepped, full, "height {h}");
        assert_eq!(
            ids,
            EligibleIds::read(&db, "VRSC", h).await.unwrap(),
            "height {h}"
        );
        assert_eq!(ids.height(), h);
        assert_eq!(ids.len(), usize::try_from(full.1).unwrap(), "height {h}");
        counts.insert(full.1);
        previous = full;
        known = Some(ids);
    }
    // 150: A, B, D; C joins at 160, B leaves at 170, E is in for 175 only, D leaves at 180,
    // F joins at 185.
    assert_eq!(counts, [2, 3, 4].into(), "the eligible count moved");
    assert!(
        known
            .as_ref()
            .is_some_and(|k| k.contains("iF") && !k.contains("iB"))
    );

    // A set of another height is read again.
    let stale = EligibleIds::read(&db, "VRSC", 150).await.unwrap();
    let (stepped, ids) = stats::supply_step(
        &db,
        "VRSC",
        190,
        stats::supply_at(&db, "VRSC", 189).await.unwrap(),
        Some(stale),
    )
    .await
    .unwrap();
    assert_eq!(stepped, stats::supply_at(&db, "VRSC", 190).await.unwrap());
    assert_eq!(ids, EligibleIds::read(&db, "VRSC", 190).await.unwrap());

    // An identity made eligible from 50 on behind the set's back: the set of 189 lacks it and
    // the count recorded at 189 (a recount) has it, so the set is read again.
    let behind = EligibleIds::read(&db, "VRSC", 189).await.unwrap();
    assert!(!behind.contains("iG"));
    subscribers::open_interval(&db, "VRSC", "iG", 50)
        .await
        .unwrap();
    utxos::insert(
        &db,
        "VRSC",
        &[Utxo {
            identity_address: "iG".into(),
            txid: "iG-0".into(),
            vout: 0,
            amount: Sats(777),
            height: 39,
            spent_height: None,
            from_pool: false,
        }],
    )
    .await
    .unwrap();
    let recounted = stats::supply_at(&db, "VRSC", 189).await.unwrap();
    assert_eq!(usize::try_from(recounted.1).unwrap(), behind.len() + 1);
    let (stepped, ids) = stats::supply_step(&db, "VRSC", 190, recounted, Some(behind))
        .await
        .unwrap();
    assert!(ids.contains("iG"));
    assert_eq!(stepped, stats::supply_at(&db, "VRSC", 190).await.unwrap());
}
