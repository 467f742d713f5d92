//! Inventory against a real database: SQLite, or PostgreSQL when
//! `RXEDGE_TEST_BACKEND=postgres` (scripts/test runs both).
//!
//! - Concurrent FEFO reservations never over-allocate a lot and always take the
//!   first-expiring usable lot, across holds, recalls and expiry.
//! - Random movement sequences never make stock negative nor let the kept
//!   balance drift from the ledger; the constraints and triggers stand behind that.
//! - Recall trace, hold refusals and the catalog import's all-or-nothing rule.

use anyhow::{anyhow, Result};
use chrono::NaiveDate;
use rand::{Rng as _, SeedableRng as _};
use rxedge_hub::inventory::{self, At, Count, InvError, MoveCtx, NewLot, Receipt};
use rxedge_hub::store::Db;
use rxedge_shared::inventory::{HoldReason, MoveKind};
use sqlx::Row as _;

const CATALOG: &str = "gtin,name,ingredients,strength,form,pack_size,atc,controlled,storage,price,vat_class,generics,reorder_point,max_daily_mg
09520000000011,Insulin Glargine 100 U/ml pen 3 ml,insulin glargine,100 U/ml,pen 3 ml,5,A10AE04,no,fridge,59.68,reduced,09520000000028,5,
09520000000028,Lantus 100 U/ml,insulin glargine,100 U/ml,pen 3 ml,5,A10AE04,no,fridge,74.60,reduced,09520000000011,5,
09520000002992,Lamotrigine 100 mg tablets,lamotrigine,100 mg,tablet,56,N03AX09,no,room,35.36,reduced,,3,500
";
const GLARGINE: &str = "09520000000011";
const LAMOTRIGINE: &str = "09520000002992";

struct TestDb {
    db: Db,
    _dir: tempfile::TempDir,
}

async fn fresh_db(hint: &str) -> Result<TestDb> {
    let dir = tempfile::tempdir()?;
    let url = if std::env::var("RXEDGE_TEST_BACKEND").as_deref() == Ok("postgres") {
        rxedge_tests::fresh_pg_database(hint)
            .await?
            .ok_or_else(|| anyhow!("RXEDGE_TEST_BACKEND=postgres needs RXEDGE_TEST_PG_URL"))?
    } else {
        Db::sqlite_url(dir.path())
    };
    let db = Db::connect(&url, 8).await?;
    rxedge_hub::catalog::import_csv(&db, CATALOG, 0).await?;
    inventory::ensure_fridge_locations(&db, &["fridge-1".into(), "fridge-2".into()], 0).await?;
    Ok(TestDb { db, _dir: dir })
}

fn d(s: &str) -> NaiveDate {
    rxedge_shared::inventory::parse_expiry(s).unwrap_or(NaiveDate::MIN)
}

fn at(day: &str) -> At {
    At {
        today: d(day),
        now_ms: 1_790_000_000_000,
    }
}

fn who(name: &str) -> MoveCtx {
    MoveCtx {
        actor: name.into(),
        ..MoveCtx::default()
    }
}

async fn receive(db: &Db, gtin: &str, lot: &str, expiry: &str, qty: i64, loc: &str) -> Result<i64> {
    let l = inventory::receive(
        db,
        &Receipt {
            gtin: gtin.into(),
            lot: lot.into(),
            expiry: expiry.into(),
            quantity: qty,
            location: loc.into(),
        },
        &who("Tom Technician"),
        at("2026-11-25"),
    )
    .await?;
    Ok(l.id)
}

async fn drift(db: &Db) -> Result<()> {
    let d = inventory::ledger_drift(db).await?;
    if d.is_empty() {
        Ok(())
    } else {
        Err(anyhow!("kept balances drifted from the ledger: {d:?}"))
    }
}

#[tokio::test]
async fn concurrent_fefo_reservations_never_over_allocate() -> Result<()> {
    let t = fresh_db("fefo").await?;
    let db = &t.db;
    // Lots, in expiry order: held, recalled, expired, too short for 30 days,
    // then the two usable ones FEFO must drain in order.
    let held = receive(db, GLARGINE, "HELD1", "2026-12-05", 10, "fridge-1").await?;
    inventory::hold(
        db,
        held,
        HoldReason::Damage,
        &MoveCtx {
            reason: "crushed box".into(),
            ..who("Pia")
        },
        0,
    )
    .await?;
    receive(db, GLARGINE, "RECALL1", "2026-12-10", 10, "fridge-1").await?;
    inventory::recall(
        db,
        GLARGINE,
        "RECALL1",
        &MoveCtx {
            reason: "Swissmedic recall 2026-11".into(),
            ..who("Pia")
        },
        at("2026-11-25"),
    )
    .await?;
    let expired = inventory::open_lot(
        db,
        &NewLot {
            location: "fridge-1".into(),
            product: String::new(),
            gtin: Some(GLARGINE.into()),
            lot: "OLD1".into(),
            expiry: "2026-11-20".into(),
            quantity: 10,
        },
        &who("Tom"),
        at("2026-11-25"),
    )
    .await?;
    receive(db, GLARGINE, "SHORT1", "2026-12-15", 10, "fridge-2").await?;
    let first = receive(db, GLARGINE, "GOOD1", "2027-03-31", 7, "fridge-1").await?;
    let second = receive(db, GLARGINE, "GOOD2", "2027-09-30", 9, "fridge-2").await?;
    // The other product's stock must stay untouched.
    let other = receive(db, LAMOTRIGINE, "LT1", "2027-01-31", 5, "shelf").await?;

    // 24 reservations of 1–2 packs race from many tasks; 16 packs are usable.
    let mut tasks = Vec::new();
    for i in 0..24 {
        let db = db.clone();
        tasks.push(tokio::spawn(async move {
            let ctx = MoveCtx {
                order_ref: Some(format!("ORD-{i}")),
                ..who(if i % 2 == 0 { "Pia" } else { "Max" })
            };
            inventory::reserve_fefo(&db, GLARGINE, 1 + (i % 2), 30, &ctx, at("2026-11-25")).await
        }));
    }
    let mut granted = 0;
    let mut refused = 0;
    for t in tasks {
        match t.await? {
            Ok(r) => {
                granted += r.iter().map(|x| x.qty).sum::<i64>();
                for x in &r {
                    assert!(
                        x.lot_id == first || x.lot_id == second,
                        "FEFO took an unusable lot: {x:?}"
                    );
                }
            }
            Err(InvError::Shortfall { .. }) => refused += 1,
            Err(e) => return Err(anyhow!("unexpected error under concurrency: {e}")),
        }
    }
    assert!(granted <= 16, "over-allocated: {granted} of 16 packs");
    assert!(
        refused > 0,
        "demand (36 packs) exceeded supply, someone must be refused"
    );
    assert!(
        granted >= 15,
        "usable stock left unreserved: granted {granted}"
    );
    let lots = inventory::lots(db, None).await?;
    for l in &lots {
        assert!(l.reserved <= l.quantity, "{l:?}");
        let want_reserved = l.id == first || l.id == second;
        assert_eq!(l.reserved > 0, want_reserved, "{l:?}");
    }
    let by_id = |id: i64| lots.iter().find(|l| l.id == id).cloned();
    // The first-expiring usable lot is drained before the next one is touched.
    let f = by_id(first).ok_or_else(|| anyhow!("lot gone"))?;
    assert_eq!(f.reserved, 7, "GOOD1 must be used up first: {f:?}");
    assert_eq!(by_id(other).map(|l| l.reserved), Some(0));
    assert_eq!(by_id(expired).map(|l| l.reserved), Some(0));
    drift(db).await?;

    // Dispensing a reservation takes the packs; a held lot refuses with its reason.
    let r = sqlx::query(
        "SELECT id FROM reservations WHERE lot_id = $1 AND state = 'active' ORDER BY id LIMIT 1",
    )
    .bind(first)
    .fetch_one(&db.pool)
    .await?;
    let rid: i64 = r.try_get(0)?;
    let after = inventory::close_reservation(
        db,
        rid,
        true,
        &MoveCtx {
            patient: Some("Anna Muster".into()),
            ..who("Pia")
        },
        at("2026-11-26"),
    )
    .await?;
    assert!(after.quantity < 7);
    let e = inventory::move_stock(
        db,
        held,
        MoveKind::DispenseUnreserved,
        1,
        &who("Pia"),
        at("2026-11-26"),
    )
    .await
    .err()
    .ok_or_else(|| anyhow!("a held lot was dispensed"))?;
    assert!(e.to_string().contains("on hold (damage)"), "{e}");
    let e = inventory::move_stock(
        db,
        expired,
        MoveKind::DispenseUnreserved,
        1,
        &who("Pia"),
        at("2026-11-26"),
    )
    .await
    .err()
    .ok_or_else(|| anyhow!("an expired lot was dispensed"))?;
    assert!(e.to_string().contains("expired"), "{e}");
    drift(db).await
}

#[tokio::test]
async fn random_movements_keep_the_books_straight() -> Result<()> {
    let t = fresh_db("ledger").await?;
    let db = &t.db;
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x5eed_1ed9e7);
    let mut lots = vec![
        receive(db, GLARGINE, "A1", "2027-06-30", 5, "fridge-1").await?,
        receive(db, LAMOTRIGINE, "B1", "2027-08-31", 8, "shelf").await?,
    ];
    let mut reservations: Vec<i64> = Vec::new();
    let (mut ok, mut refused) = (0, 0);
    for step in 0..400 {
        let lot = lots[rng.gen_range(0..lots.len())];
        let q = rng.gen_range(-3i64..8);
        let now = at("2026-11-25");
        let ctx = MoveCtx {
            reason: if rng.gen_bool(0.8) {
                "counted".into()
            } else {
                String::new()
            },
            order_ref: Some(format!("O{step}")),
            ..who("Robo")
        };
        let res: Result<(), InvError> = match rng.gen_range(0..9) {
            0 => inventory::receive(
                db,
                &Receipt {
                    gtin: if rng.gen_bool(0.5) {
                        GLARGINE.into()
                    } else {
                        LAMOTRIGINE.into()
                    },
                    lot: format!("R{}", rng.gen_range(0..3)),
                    expiry: "2027-12-31".into(),
                    quantity: q,
                    location: if rng.gen_bool(0.5) {
                        "fridge-2".into()
                    } else {
                        "shelf".into()
                    },
                },
                &ctx,
                now,
            )
            .await
            .map(|l| {
                if !lots.contains(&l.id) {
                    lots.push(l.id);
                }
            }),
            1 => inventory::reserve_fefo(
                db,
                if rng.gen_bool(0.5) {
                    GLARGINE
                } else {
                    LAMOTRIGINE
                },
                q,
                0,
                &ctx,
                now,
            )
            .await
            .map(|r| reservations.extend(r.iter().map(|x| x.id))),
            2 if !reservations.is_empty() => {
                let r = reservations.swap_remove(rng.gen_range(0..reservations.len()));
                inventory::close_reservation(db, r, rng.gen_bool(0.5), &ctx, now)
                    .await
                    .map(|_| ())
            }
            3 => inventory::move_stock(db, lot, MoveKind::Adjustment, q, &ctx, now)
                .await
                .map(|_| ()),
            4 => inventory::move_stock(db, lot, MoveKind::WriteOff, q, &ctx, now)
                .await
                .map(|_| ()),
            5 => inventory::move_stock(db, lot, MoveKind::DispenseUnreserved, q, &ctx, now)
                .await
                .map(|_| ()),
            6 => inventory::transfer(
                db,
                lot,
                if rng.gen_bool(0.5) {
                    "fridge-1"
                } else {
                    "fridge-2"
                },
                q,
                &ctx,
                now,
            )
            .await
            .map(|id| {
                if !lots.contains(&id) {
                    lots.push(id);
                }
            }),
            7 => inventory::stocktake(
                db,
                &[Count {
                    lot_id: lot,
                    counted: q.max(0),
                }],
                "cycle count",
                &ctx,
                now,
            )
            .await
            .map(|_| ()),
            _ => inventory::move_stock(db, lot, MoveKind::Reservation, q, &ctx, now)
                .await
                .map(|_| ()),
        };
        match res {
            Ok(()) => ok += 1,
            Err(InvError::Db(e)) => return Err(anyhow!("step {step}: database error {e}")),
            Err(_) => refused += 1,
        }
        drift(db).await?;
    }
    assert!(
        ok > 100 && refused > 50,
        "the walk must exercise both paths: ok={ok} refused={refused}"
    );
    for l in inventory::lots(db, None).await? {
        assert!(
            l.quantity >= 0 && l.reserved >= 0 && l.reserved <= l.quantity,
            "{l:?}"
        );
    }
    // The database itself refuses negative stock and edits to the ledger.
    let neg = sqlx::query("UPDATE lots SET quantity = -1 WHERE id = $1")
        .bind(lots[0])
        .execute(&db.pool)
        .await;
    assert!(neg.is_err(), "negative stock must violate a constraint");
    let over = sqlx::query("UPDATE lots SET reserved = quantity + 1 WHERE id = $1")
        .bind(lots[0])
        .execute(&db.pool)
        .await;
    assert!(over.is_err(), "over-reservation must violate a constraint");
    let edit = sqlx::query("UPDATE stock_moves SET qty_delta = 1000")
        .execute(&db.pool)
        .await;
    assert!(edit
        .err()
        .is_some_and(|e| e.to_string().contains("append-only")));
    let del = sqlx::query("DELETE FROM stock_moves")
        .execute(&db.pool)
        .await;
    assert!(del
        .err()
        .is_some_and(|e| e.to_string().contains("append-only")));
    drift(db).await
}

#[tokio::test]
async fn recall_trace_names_the_orders_and_blocks_the_batch() -> Result<()> {
    let t = fresh_db("recall").await?;
    let db = &t.db;
    let lot = receive(db, LAMOTRIGINE, "LT-77", "2027-05-31", 10, "shelf").await?;
    let now = at("2026-11-25");
    // One pack to a patient through an order, one over the counter, one still reserved.
    let r = inventory::reserve_fefo(
        db,
        LAMOTRIGINE,
        2,
        30,
        &MoveCtx {
            order_ref: Some("ORD-1001".into()),
            ..who("Pia")
        },
        now,
    )
    .await?;
    inventory::close_reservation(
        db,
        r[0].id,
        true,
        &MoveCtx {
            patient: Some("Anna Muster".into()),
            ..who("Pia")
        },
        now,
    )
    .await?;
    inventory::move_stock(
        db,
        lot,
        MoveKind::DispenseUnreserved,
        1,
        &MoveCtx {
            order_ref: Some("ORD-1002".into()),
            patient: Some("Beat Beispiel".into()),
            ..who("Max")
        },
        now,
    )
    .await?;
    inventory::reserve_fefo(
        db,
        LAMOTRIGINE,
        1,
        30,
        &MoveCtx {
            order_ref: Some("ORD-1003".into()),
            ..who("Pia")
        },
        now,
    )
    .await?;
    let rep = inventory::recall(
        db,
        LAMOTRIGINE,
        "LT-77",
        &MoveCtx {
            reason: "Manufacturer recall R-2026-19".into(),
            ..who("Pia")
        },
        now,
    )
    .await?;
    assert_eq!(rep.lots, 1);
    assert_eq!(rep.orders_released, vec!["ORD-1003".to_owned()]);
    let trace = inventory::trace(db, LAMOTRIGINE, "LT-77").await?;
    let orders: Vec<_> = trace
        .iter()
        .map(|l| {
            (
                l.order_ref.clone().unwrap_or_default(),
                l.patient.clone().unwrap_or_default(),
                l.qty,
            )
        })
        .collect();
    assert_eq!(
        orders,
        vec![
            ("ORD-1001".into(), "Anna Muster".into(), 2),
            ("ORD-1002".into(), "Beat Beispiel".into(), 1)
        ]
    );
    // The recalled lot is out of FEFO, out of dispensing, and the batch cannot come back in.
    assert!(matches!(
        inventory::reserve_fefo(
            db,
            LAMOTRIGINE,
            1,
            0,
            &MoveCtx {
                order_ref: Some("ORD-1004".into()),
                ..who("Pia")
            },
            now
        )
        .await,
        Err(InvError::Shortfall { .. })
    ));
    let e = inventory::move_stock(db, lot, MoveKind::DispenseUnreserved, 1, &who("Max"), now)
        .await
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(e.contains("recalled"), "{e}");
    let e = receive(db, LAMOTRIGINE, "LT-77", "2027-05-31", 3, "shelf")
        .await
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(e.contains("recalled"), "{e}");
    drift(db).await
}

#[tokio::test]
async fn receiving_checks_storage_and_catalog_imports_all_or_nothing() -> Result<()> {
    let t = fresh_db("receiving").await?;
    let db = &t.db;
    let e = receive(db, GLARGINE, "X1", "2027-01-31", 1, "shelf")
        .await
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(e.contains("fridge 2–8 °C"), "{e}");
    let e = receive(db, "09520000000042", "X1", "2027-01-31", 1, "shelf")
        .await
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(e.contains("not in the catalog"), "{e}");
    let e = receive(db, LAMOTRIGINE, "X1", "2020-01-31", 1, "shelf")
        .await
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(e.contains("expired"), "{e}");
    // GS1 day 00 is the end of the month.
    let id = receive(db, LAMOTRIGINE, "X2", "2028-02-00", 1, "shelf").await?;
    assert_eq!(
        inventory::lot(db, id).await?.map(|l| l.expiry),
        Some("2028-02-29".into())
    );
    // A bad row anywhere imports nothing, and says where.
    let bad = format!("{CATALOG}09520000000035,Bad Storage,x,1 mg,tablet,10,,no,warm,1.00,reduced,,0,\n09520000000043,Bad GTIN,x,1 mg,tablet,10,,no,room,1.00,reduced,,0,\n");
    let before: i64 = sqlx::query("SELECT COUNT(*) FROM products")
        .fetch_one(&db.pool)
        .await?
        .try_get(0)?;
    match rxedge_hub::catalog::import_csv(db, &bad, 1).await {
        Err(rxedge_hub::catalog::CatalogError::Invalid(errs)) => {
            assert!(
                errs.iter()
                    .any(|e| e.line == 5 && e.message.contains("storage class")),
                "{errs:?}"
            );
            assert!(
                errs.iter()
                    .any(|e| e.line == 6 && e.message.contains("check digit")),
                "{errs:?}"
            );
        }
        other => return Err(anyhow!("bad file accepted: {other:?}")),
    }
    let after: i64 = sqlx::query("SELECT COUNT(*) FROM products")
        .fetch_one(&db.pool)
        .await?
        .try_get(0)?;
    assert_eq!(before, after);
    // The shipped demo catalog is valid: about 300 products, GS1 demo prefix 952 only.
    let demo = include_str!("../../hub/data/demo-catalog.csv");
    let rep = rxedge_hub::catalog::import_csv(db, demo, 2).await?;
    assert!((280..=320).contains(&(rep.added + rep.updated)), "{rep:?}");
    let prefixes: i64 = sqlx::query("SELECT COUNT(*) FROM products WHERE gtin NOT LIKE '0952%'")
        .fetch_one(&db.pool)
        .await?
        .try_get(0)?;
    assert_eq!(
        prefixes, 0,
        "demo GTINs must use GS1's demonstration prefix 952"
    );
    Ok(())
}
