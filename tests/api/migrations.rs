//! Migrations run up, down and up again on every backend, and the columns hold what the
//! design needs: work beyond 2^100 exactly, timestamps beyond 2038.

use chrono::{TimeZone, Utc};
use coinstaker::domain::Work;
use entity::{counter, stake};
use migration::{Migrator, MigratorTrait};
use sea_orm::{ActiveModelTrait, ActiveValue::Set, EntityTrait};

use crate::support::TestDb;

fn stake_row(work: &str, at: chrono::NaiveDateTime) -> stake::ActiveModel {
    stake::ActiveModel {
        id: Default::default(),
        chain: Set("VRSC".into()),
        block_hash: Set("00000000000013ff64a914fca32bb6167e4381f7e2710d805a215c6dfa812f6a".into()),
        height: Set(3_795_412),
        found_by: Set("i549DVi2YdWJdDo2mWnMFoDvYw8htg6YNe".into()),
        reward: Set(300_031_250),
        status: Set("MATURING".into()),
        solo: Set(false),
        pool_own: Set(false),
        round_start_height: Set(3_795_000),
        total_work: Set(work.to_owned()),
        pool_keep: Set(None),
        source_txid: Set(None),
        source_vout: Set(None),
        source_amount: Set(None),
        status_height: Set(None),
        note: Set(None),
        coinbase_txid: Set(None),
        created_at: Set(at),
        updated_at: Set(at),
    }
}

#[tokio::test]
async fn migrations_go_up_down_and_up_again() {
    let test_db = TestDb::new(false).await;
    let db = test_db.connect().await;
    Migrator::up(&db, None).await.expect("up");
    let counter = counter::Entity::find_by_id("event".to_owned())
        .one(&db)
        .await
        .unwrap();
    assert_eq!(
        counter.map(|c| c.value),
        Some(0),
        "the event counter is seeded"
    );
    assert!(stake::Entity::find().all(&db).await.is_ok());

    Migrator::down(&db, None).await.expect("down");
    assert!(
        stake::Entity::find().all(&db).await.is_err(),
        "down drops the tables"
    );
    assert!(counter::Entity::find().all(&db).await.is_err());

    Migrator::up(&db, None).await.expect("up again");
    assert!(stake::Entity::find().all(&db).await.unwrap().is_empty());
    let status = Migrator::get_pending_migrations(&db).await.unwrap();
    assert!(status.is_empty(), "nothing pending after up");
}

#[tokio::test]
async fn work_beyond_two_to_the_hundred_round_trips() {
    let test_db = TestDb::new(false).await;
    let db = test_db.migrated().await;
    let work = Work((1u128 << 100) + 12_345);
    let inserted = stake_row(&work.to_string(), Utc::now().naive_utc())
        .insert(&db)
        .await
        .unwrap();
    let read = stake::Entity::find_by_id(inserted.id)
        .one(&db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(read.total_work.parse::<Work>(), Ok(work));
}

#[tokio::test]
async fn timestamps_go_beyond_2038() {
    let test_db = TestDb::new(false).await;
    let db = test_db.migrated().await;
    let far = Utc
        .with_ymd_and_hms(2100, 1, 2, 3, 4, 5)
        .unwrap()
        .naive_utc();
    let inserted = stake_row("0", far).insert(&db).await.unwrap();
    let read = stake::Entity::find_by_id(inserted.id)
        .one(&db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(read.created_at, far);
}

/// MySQL commits each DDL statement by itself: a process killed after a migration's changes
/// but before its version was recorded runs it again at the next start. Every migration is
/// safe to repeat (the fault-injection run found the first one was not).
#[tokio::test]
async fn a_migration_whose_version_was_not_recorded_runs_again() {
    let test_db = TestDb::new(false).await;
    let db = test_db.connect().await;
    Migrator::up(&db, None).await.unwrap();
    let applied = Migrator::get_applied_migrations(&db).await.unwrap().len();
    assert!(applied >= 4);
    // Forget every version, as if each migration had been cut off just before recording it.
    sea_orm::ConnectionTrait::execute_unprepared(&db, "DELETE FROM seaql_migrations")
        .await
        .unwrap();
    assert_eq!(
        Migrator::get_pending_migrations(&db).await.unwrap().len(),
        applied
    );
    Migrator::up(&db, None).await.unwrap();
    assert_eq!(
        Migrator::get_pending_migrations(&db).await.unwrap().len(),
        0
    );
    // The event counter row exists once, still at 0.
    let counters = counter::Entity::find().all(&db).await.unwrap();
    assert_eq!(
        counters
            .iter()
            .map(|c| (c.name.as_str(), c.value))
            .collect::<Vec<_>>(),
        vec![("event", 0)]
    );
}

/// Migration 6 replaces the boundary indexes of `eligibility_interval` with covering ones, and
/// its `down` puts the old ones back.
#[tokio::test]
async fn the_boundary_indexes_cover_the_identity() {
    let test_db = TestDb::new(false).await;
    let db = test_db.connect().await;
    Migrator::up(&db, None).await.unwrap();
    let manager = migration::SchemaManager::new(&db);
    let has = |name: &'static str| {
        let manager = &manager;
        async move {
            manager
                .has_index("eligibility_interval", name)
                .await
                .unwrap()
        }
    };
    for (name, present) in [
        ("ix_eligibility_from_identity", true),
        ("ix_eligibility_to_identity", true),
        ("ix_eligibility_from", false),
        ("ix_eligibility_to", false),
        ("ix_eligibility_identity", true),
    ] {
        assert_eq!(has(name).await, present, "{name} after up");
    }
    // Down through migration 6 (7 is the last).
    Migrator::down(&db, Some(2)).await.unwrap();
    for (name, present) in [
        ("ix_eligibility_from_identity", false),
        ("ix_eligibility_to_identity", false),
        ("ix_eligibility_from", true),
        ("ix_eligibility_to", true),
    ] {
        assert_eq!(has(name).await, present, "{name} after going below 6");
    }
    Migrator::up(&db, None).await.unwrap();
    assert!(has("ix_eligibility_from_identity").await);
    assert!(!has("ix_eligibility_from").await);
}

/// Migration 7 keys `subscriber_utxo` by 64-bit keys of its texts: it fills them for the rows
/// already stored, indexes them in place of the two text indexes, and `down` puts those back.
#[tokio::test]
async fn the_utxo_keys_are_filled_for_stored_rows_and_indexed() {
    use entity::subscriber_utxo::{self, text_key};
    use migration::Query;
    use sea_orm::ConnectionTrait;

    let test_db = TestDb::new(false).await;
    let db = test_db.connect().await;
    Migrator::up(&db, Some(6)).await.unwrap();
    // 1,203 outputs as migration 6 stored them (no keys): more than one slice of the fill.
    let outputs: Vec<(String, String)> = (0..1203)
        .map(|i| {
            (
                format!("i{:033}", i % 17),
                format!("{:064x}", 0x9e37_79b9_7f4a_7c15_u64.wrapping_mul(i + 1)),
            )
        })
        .collect();
    for slice in outputs.chunks(300) {
        let mut insert = Query::insert();
        insert.into_table("subscriber_utxo").columns([
            "chain",
            "identity_address",
            "txid",
            "vout",
            "amount",
            "height",
            "from_pool",
        ]);
        for (identity, txid) in slice {
            insert.values_panic([
                "VRSC".into(),
                identity.as_str().into(),
                txid.as_str().into(),
                1.into(),
                5_000.into(),
                7.into(),
                false.into(),
            ]);
        }
        db.execute(&insert).await.unwrap();
    }
    let manager = migration::SchemaManager::new(&db);
    let has = |name: &'static str| {
        let manager = &manager;
        async move { manager.has_index("subscriber_utxo", name).await.unwrap() }
    };
    assert!(has("ux_subscriber_utxo").await);

    Migrator::up(&db, None).await.unwrap();
    let rows = subscriber_utxo::Entity::find().all(&db).await.unwrap();
    assert_eq!(rows.len(), outputs.len());
    for r in &rows {
        assert_eq!(r.txid_key, text_key(&r.txid), "row {}", r.id);
        assert_eq!(
            r.identity_key,
            text_key(&r.identity_address),
            "row {}",
            r.id
        );
    }
    // 17 identities, 1,203 transactions: as many distinct keys.
    let distinct = |f: fn(&subscriber_utxo::Model) -> i64| {
        rows.iter()
            .map(f)
            .collect::<std::collections::HashSet<_>>()
            .len()
    };
    assert_eq!(distinct(|r| r.identity_key), 17);
    assert_eq!(distinct(|r| r.txid_key), 1203);
    for (name, present) in [
        ("ix_utxo_txid_key", true),
        ("ix_utxo_identity_key", true),
        ("ux_subscriber_utxo", false),
        ("ix_utxo_identity", false),
        ("ix_utxo_height", true),
        ("ix_utxo_spent", true),
    ] {
        assert_eq!(has(name).await, present, "{name} after up");
    }

    // Down one step: the text indexes are back and the keys gone; up again fills them again.
    Migrator::down(&db, Some(1)).await.unwrap();
    assert!(has("ux_subscriber_utxo").await);
    assert!(has("ix_utxo_identity").await);
    assert!(!has("ix_utxo_txid_key").await);
    assert!(
        !manager
            .has_column("subscriber_utxo", "txid_key")
            .await
            .unwrap()
    );
    Migrator::up(&db, None).await.unwrap();
    let again = subscriber_utxo::Entity::find().all(&db).await.unwrap();
    assert!(again.iter().all(
        |r| r.txid_key == text_key(&r.txid) && r.identity_key == text_key(&r.identity_address)
    ));
    // Unchanged otherwise.
    assert_eq!(
        again
            .iter()
            .map(|r| (&r.txid, r.amount))
            .collect::<Vec<_>>(),
        rows.iter().map(|r| (&r.txid, r.amount)).collect::<Vec<_>>()
    );
}
