//! Stock as a ledger: movement rules, lot usability and FEFO allocation.
//!
//! Pure: the hub's inventory context reads lots inside a write transaction,
//! asks these functions what may happen, and writes the result together with
//! its ledger line. Quantities are whole packs. Dates are calendar days.

use chrono::{Days, NaiveDate};
use serde::{Deserialize, Serialize};

/// What a ledger line records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MoveKind {
    /// Goods in.
    Receipt,
    /// Set aside for an order; on hand is unchanged.
    Reservation,
    /// A reservation given back.
    Release,
    /// Handed to a patient, from a reservation.
    Dispense,
    /// Handed over without a reservation (the desk's direct sale).
    DispenseUnreserved,
    /// Correction with a reason (stocktake, found, miscount); signed.
    Adjustment,
    /// Moved out of this lot's location.
    TransferOut,
    /// Moved into this lot's location.
    TransferIn,
    /// Destroyed or discarded, with a reason.
    WriteOff,
}

impl MoveKind {
    /// Every kind, for tests and CHECK constraints.
    pub const ALL: [MoveKind; 9] = [
        MoveKind::Receipt,
        MoveKind::Reservation,
        MoveKind::Release,
        MoveKind::Dispense,
        MoveKind::DispenseUnreserved,
        MoveKind::Adjustment,
        MoveKind::TransferOut,
        MoveKind::TransferIn,
        MoveKind::WriteOff,
    ];

    /// The name stored in the ledger.
    pub fn as_str(self) -> &'static str {
        match self {
            MoveKind::Receipt => "receipt",
            MoveKind::Reservation => "reservation",
            MoveKind::Release => "release",
            MoveKind::Dispense => "dispense",
            MoveKind::DispenseUnreserved => "dispense_unreserved",
            MoveKind::Adjustment => "adjustment",
            MoveKind::TransferOut => "transfer_out",
            MoveKind::TransferIn => "transfer_in",
            MoveKind::WriteOff => "write_off",
        }
    }

    /// Parse a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// Whether the ledger line must carry a reason.
    pub fn needs_reason(self) -> bool {
        matches!(self, MoveKind::Adjustment | MoveKind::WriteOff)
    }

    /// Whether this movement takes stock away for a patient (refused on unusable lots).
    pub fn is_outgoing_to_patient(self) -> bool {
        matches!(
            self,
            MoveKind::Reservation | MoveKind::Dispense | MoveKind::DispenseUnreserved
        )
    }
}

/// A lot's kept balance: packs on hand, and how many of them are reserved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Balance {
    /// Packs physically present.
    pub on_hand: i64,
    /// Packs promised to orders (never more than on hand).
    pub reserved: i64,
}

impl Balance {
    /// Packs that can still be reserved or taken.
    pub fn free(self) -> i64 {
        self.on_hand - self.reserved
    }
}

/// The change one ledger line makes to a balance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delta {
    /// Change of packs on hand.
    pub on_hand: i64,
    /// Change of packs reserved.
    pub reserved: i64,
}

/// Why a movement is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StockError {
    /// Quantity must be positive (adjustments: non-zero).
    #[error("the quantity must be a positive number of packs")]
    BadQuantity,
    /// Not enough free stock.
    #[error("only {free} pack(s) free in this lot ({on_hand} on hand, {reserved} reserved); {wanted} asked")]
    Insufficient {
        /// Free packs.
        free: i64,
        /// On hand.
        on_hand: i64,
        /// Reserved.
        reserved: i64,
        /// Asked for.
        wanted: i64,
    },
    /// Releasing or dispensing more than is reserved.
    #[error("only {reserved} pack(s) are reserved; {wanted} asked")]
    NotReserved {
        /// Reserved packs.
        reserved: i64,
        /// Asked for.
        wanted: i64,
    },
    /// Adjustments and write-offs need a reason.
    #[error("a reason is required for this movement")]
    ReasonRequired,
    /// Arithmetic overflow (absurd quantity).
    #[error("the quantity is too large")]
    Overflow,
}

/// The delta a movement of `qty` packs makes. `qty` is signed only for adjustments.
pub fn delta(kind: MoveKind, qty: i64) -> Result<Delta, StockError> {
    if qty == 0 || (qty < 0 && kind != MoveKind::Adjustment) {
        return Err(StockError::BadQuantity);
    }
    let q = qty;
    Ok(match kind {
        MoveKind::Receipt | MoveKind::TransferIn => Delta {
            on_hand: q,
            reserved: 0,
        },
        MoveKind::Reservation => Delta {
            on_hand: 0,
            reserved: q,
        },
        MoveKind::Release => Delta {
            on_hand: 0,
            reserved: -q,
        },
        MoveKind::Dispense => Delta {
            on_hand: -q,
            reserved: -q,
        },
        MoveKind::DispenseUnreserved | MoveKind::TransferOut | MoveKind::WriteOff => Delta {
            on_hand: -q,
            reserved: 0,
        },
        MoveKind::Adjustment => Delta {
            on_hand: q,
            reserved: 0,
        },
    })
}

/// Apply a movement to a balance, or say why it cannot happen. The result
/// always has `0 <= reserved <= on_hand`.
pub fn apply(b: Balance, kind: MoveKind, qty: i64, reason: &str) -> Result<Balance, StockError> {
    if kind.needs_reason() && reason.trim().is_empty() {
        return Err(StockError::ReasonRequired);
    }
    let d = delta(kind, qty)?;
    let on_hand = b
        .on_hand
        .checked_add(d.on_hand)
        .ok_or(StockError::Overflow)?;
    let reserved = b
        .reserved
        .checked_add(d.reserved)
        .ok_or(StockError::Overflow)?;
    if reserved < 0 {
        return Err(StockError::NotReserved {
            reserved: b.reserved,
            wanted: qty,
        });
    }
    if on_hand < 0 || reserved > on_hand {
        return Err(StockError::Insufficient {
            free: b.free(),
            on_hand: b.on_hand,
            reserved: b.reserved,
            wanted: qty.abs(),
        });
    }
    Ok(Balance { on_hand, reserved })
}

/// A lot's status as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LotStatus {
    /// Can be reserved and dispensed.
    Available,
    /// Held (excursion, damage, investigation) until a pharmacist decides.
    OnHold,
    /// Recalled by the manufacturer or authority.
    Recalled,
    /// Past its expiry date.
    Expired,
    /// Discarded after a hold decision.
    Discarded,
}

impl LotStatus {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            LotStatus::Available => "available",
            LotStatus::OnHold => "on_hold",
            LotStatus::Recalled => "recalled",
            LotStatus::Expired => "expired",
            LotStatus::Discarded => "discarded",
        }
    }
    /// Parse a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        [
            LotStatus::Available,
            LotStatus::OnHold,
            LotStatus::Recalled,
            LotStatus::Expired,
            LotStatus::Discarded,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

/// Why a hold was placed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HoldReason {
    /// Fridge temperature excursion (set by the cold chain).
    ColdChainExcursion,
    /// Damaged packs.
    Damage,
    /// Under investigation (complaint, suspected falsification).
    Investigation,
}

impl HoldReason {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            HoldReason::ColdChainExcursion => "cold_chain_excursion",
            HoldReason::Damage => "damage",
            HoldReason::Investigation => "investigation",
        }
    }
    /// Parse a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        [
            HoldReason::ColdChainExcursion,
            HoldReason::Damage,
            HoldReason::Investigation,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
    /// Words for screens.
    pub fn label(self) -> &'static str {
        match self {
            HoldReason::ColdChainExcursion => "cold-chain excursion",
            HoldReason::Damage => "damage",
            HoldReason::Investigation => "investigation",
        }
    }
}

/// Why a lot may not go to a patient.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unusable {
    /// On hold.
    #[error("lot {lot} is on hold ({reason}); a pharmacist must release it first")]
    OnHold {
        /// Batch.
        lot: String,
        /// Why.
        reason: String,
    },
    /// Recalled.
    #[error("lot {lot} is recalled and must not be dispensed")]
    Recalled {
        /// Batch.
        lot: String,
    },
    /// Expired, or discarded.
    #[error("lot {lot} expired on {expiry}")]
    Expired {
        /// Batch.
        lot: String,
        /// Expiry date.
        expiry: NaiveDate,
    },
    /// Discarded.
    #[error("lot {lot} was discarded")]
    Discarded {
        /// Batch.
        lot: String,
    },
}

/// A lot as allocation sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LotView {
    /// Lot row id.
    pub id: i64,
    /// Batch number.
    pub lot: String,
    /// Last day of use.
    pub expiry: NaiveDate,
    /// Stored status.
    pub status: LotStatus,
    /// Why it is held, when it is.
    pub hold_reason: Option<HoldReason>,
    /// Kept balance.
    pub balance: Balance,
}

/// Whether a lot may go to a patient on `today`. A lot is usable up to and
/// including its expiry day.
pub fn usable(l: &LotView, today: NaiveDate) -> Result<(), Unusable> {
    match l.status {
        LotStatus::OnHold => Err(Unusable::OnHold {
            lot: l.lot.clone(),
            reason: l
                .hold_reason
                .map(|r| r.label().to_owned())
                .unwrap_or_else(|| "reason not recorded".into()),
        }),
        LotStatus::Recalled => Err(Unusable::Recalled { lot: l.lot.clone() }),
        LotStatus::Discarded => Err(Unusable::Discarded { lot: l.lot.clone() }),
        LotStatus::Expired => Err(Unusable::Expired {
            lot: l.lot.clone(),
            expiry: l.expiry,
        }),
        LotStatus::Available if l.expiry < today => Err(Unusable::Expired {
            lot: l.lot.clone(),
            expiry: l.expiry,
        }),
        LotStatus::Available => Ok(()),
    }
}

/// One part of an allocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Pick {
    /// Lot row id.
    pub lot_id: i64,
    /// Packs taken from it.
    pub qty: i64,
}

/// Why FEFO could not allocate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Shortfall {
    /// Quantity must be positive.
    #[error("the quantity must be a positive number of packs")]
    BadQuantity,
    /// Not enough usable stock.
    #[error("only {usable} pack(s) usable until at least {use_until}; {wanted} needed")]
    NotEnough {
        /// Usable free packs.
        usable: i64,
        /// Packs needed.
        wanted: i64,
        /// The date lots must still be good on.
        use_until: NaiveDate,
    },
}

/// First-expiry-first-out: take `qty` packs from the usable lots that expire
/// first, skipping lots that would expire before `today + min_remaining_days`
/// (the course of therapy must finish before the pack expires). Ties go to
/// the older lot row. Takes the whole quantity or nothing.
pub fn allocate(
    lots: &[LotView],
    qty: i64,
    today: NaiveDate,
    min_remaining_days: u32,
) -> Result<Vec<Pick>, Shortfall> {
    if qty <= 0 {
        return Err(Shortfall::BadQuantity);
    }
    let use_until = today
        .checked_add_days(Days::new(u64::from(min_remaining_days)))
        .unwrap_or(NaiveDate::MAX);
    let mut candidates: Vec<&LotView> = lots
        .iter()
        .filter(|l| usable(l, today).is_ok() && l.expiry >= use_until && l.balance.free() > 0)
        .collect();
    candidates.sort_by(|a, b| a.expiry.cmp(&b.expiry).then(a.id.cmp(&b.id)));
    let mut left = qty;
    let mut picks = Vec::new();
    for l in candidates {
        if left == 0 {
            break;
        }
        let take = l.balance.free().min(left);
        picks.push(Pick {
            lot_id: l.id,
            qty: take,
        });
        left -= take;
    }
    if left > 0 {
        return Err(Shortfall::NotEnough {
            usable: qty - left,
            wanted: qty,
            use_until,
        });
    }
    Ok(picks)
}

/// [`allocate`], then count the picks as reserved in `lots`, so that the
/// next line of the same product takes what this one left, as approval
/// reserves an order line by line. On a shortfall `lots` is unchanged.
pub fn allocate_and_hold(
    lots: &mut [LotView],
    qty: i64,
    today: NaiveDate,
    min_remaining_days: u32,
) -> Result<Vec<Pick>, Shortfall> {
    let picks = allocate(lots, qty, today, min_remaining_days)?;
    for p in &picks {
        if let Some(l) = lots.iter_mut().find(|l| l.id == p.lot_id) {
            l.balance.reserved += p.qty;
        }
    }
    Ok(picks)
}

/// Parse an expiry as stored or scanned: `YYYY-MM-DD`, where GS1's day `00`
/// means the last day of the month.
pub fn parse_expiry(s: &str) -> Option<NaiveDate> {
    let s = s.trim();
    if let Some(month) = s.strip_suffix("-00") {
        let first = NaiveDate::parse_from_str(&format!("{month}-01"), "%Y-%m-%d").ok()?;
        let next = first.checked_add_months(chrono::Months::new(1))?;
        return next.pred_opt();
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()
}

/// The calendar day of a millisecond timestamp (UTC).
pub fn day_of_ms(ms: i64) -> NaiveDate {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|d| d.date_naive())
        .unwrap_or(NaiveDate::MIN)
}

/// Days of stock left at the current dispensing rate, or `None` when nothing
/// was dispensed in the window (no rate to extrapolate).
pub fn days_of_stock(on_hand: i64, dispensed_in_window: i64, window_days: u32) -> Option<f64> {
    if dispensed_in_window <= 0 || window_days == 0 {
        return None;
    }
    let per_day = dispensed_in_window as f64 / f64::from(window_days);
    Some(on_hand.max(0) as f64 / per_day)
}

/// Whole days from `today` to `expiry` (negative once expired).
pub fn days_until(expiry: NaiveDate, today: NaiveDate) -> i64 {
    (expiry - today).num_days()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn d(s: &str) -> NaiveDate {
        parse_expiry(s).unwrap()
    }

    fn lot(id: i64, expiry: &str, status: LotStatus, on_hand: i64, reserved: i64) -> LotView {
        LotView {
            id,
            lot: format!("L{id}"),
            expiry: d(expiry),
            status,
            hold_reason: None,
            balance: Balance { on_hand, reserved },
        }
    }

    #[test]
    fn lines_of_one_product_take_lots_in_turn() {
        let today = d("2026-11-26");
        let mut lots = vec![
            lot(2, "2028-06-30", LotStatus::Available, 10, 0),
            lot(1, "2027-01-31", LotStatus::Available, 3, 1),
            lot(3, "2027-03-31", LotStatus::OnHold, 9, 0),
        ];
        let first = allocate_and_hold(&mut lots, 3, today, 30).unwrap();
        assert_eq!(
            first,
            vec![Pick { lot_id: 1, qty: 2 }, Pick { lot_id: 2, qty: 1 }]
        );
        let second = allocate_and_hold(&mut lots, 4, today, 30).unwrap();
        assert_eq!(second, vec![Pick { lot_id: 2, qty: 4 }]);
        // Too much for what is left: nothing is counted.
        let before = lots.clone();
        assert!(matches!(
            allocate_and_hold(&mut lots, 6, today, 30),
            Err(Shortfall::NotEnough {
                usable: 5,
                wanted: 6,
                ..
            })
        ));
        assert_eq!(lots, before);
    }

    #[test]
    fn movement_rules() {
        let b = Balance::default();
        let b = apply(b, MoveKind::Receipt, 10, "").unwrap();
        let b = apply(b, MoveKind::Reservation, 4, "").unwrap();
        assert_eq!(
            b,
            Balance {
                on_hand: 10,
                reserved: 4
            }
        );
        assert!(matches!(
            apply(b, MoveKind::DispenseUnreserved, 7, ""),
            Err(StockError::Insufficient { free: 6, .. })
        ));
        assert!(matches!(
            apply(b, MoveKind::Release, 5, ""),
            Err(StockError::NotReserved { reserved: 4, .. })
        ));
        let b = apply(b, MoveKind::Dispense, 4, "").unwrap();
        assert_eq!(
            b,
            Balance {
                on_hand: 6,
                reserved: 0
            }
        );
        assert_eq!(
            apply(b, MoveKind::Adjustment, -1, " "),
            Err(StockError::ReasonRequired)
        );
        let b = apply(b, MoveKind::Adjustment, -1, "broken pack").unwrap();
        assert_eq!(b.on_hand, 5);
        assert_eq!(
            apply(b, MoveKind::Receipt, -3, ""),
            Err(StockError::BadQuantity)
        );
        assert_eq!(
            apply(b, MoveKind::Receipt, 0, ""),
            Err(StockError::BadQuantity)
        );
        assert!(apply(b, MoveKind::Receipt, i64::MAX, "").is_err());
        for k in MoveKind::ALL {
            assert_eq!(MoveKind::parse(k.as_str()), Some(k));
        }
    }

    #[test]
    fn gs1_day_zero_is_end_of_month() {
        assert_eq!(
            d("2028-02-00"),
            NaiveDate::from_ymd_opt(2028, 2, 29).unwrap()
        );
        assert_eq!(
            d("2027-12-00"),
            NaiveDate::from_ymd_opt(2027, 12, 31).unwrap()
        );
        assert_eq!(parse_expiry("2027-13-01"), None);
        assert_eq!(parse_expiry("soon"), None);
    }

    #[test]
    fn fefo_skips_unusable_and_short_dated_lots() {
        let today = d("2026-11-25");
        let mut held = lot(1, "2026-12-10", LotStatus::OnHold, 10, 0);
        held.hold_reason = Some(HoldReason::ColdChainExcursion);
        let lots = vec![
            held,
            lot(2, "2026-12-01", LotStatus::Recalled, 10, 0),
            lot(3, "2026-11-24", LotStatus::Available, 10, 0), // expired yesterday
            lot(4, "2026-11-30", LotStatus::Available, 10, 0), // too short for 30 days
            lot(5, "2027-06-30", LotStatus::Available, 3, 1),
            lot(6, "2027-03-31", LotStatus::Available, 2, 0),
            lot(7, "2027-03-31", LotStatus::Available, 5, 0),
            lot(8, "2026-12-20", LotStatus::Expired, 5, 0),
        ];
        let picks = allocate(&lots, 6, today, 30).unwrap();
        assert_eq!(
            picks,
            vec![Pick { lot_id: 6, qty: 2 }, Pick { lot_id: 7, qty: 4 }]
        );
        // With no minimum shelf life the short-dated lot goes first; expired never.
        let picks = allocate(&lots, 1, today, 0).unwrap();
        assert_eq!(picks, vec![Pick { lot_id: 4, qty: 1 }]);
        // Expiry day itself is still usable.
        assert!(usable(&lots[3], d("2026-11-30")).is_ok());
        assert!(usable(&lots[3], d("2026-12-01")).is_err());
        let e = allocate(&lots, 100, today, 30).unwrap_err();
        assert!(
            matches!(
                e,
                Shortfall::NotEnough {
                    usable: 9,
                    wanted: 100,
                    ..
                }
            ),
            "{e:?}"
        );
        assert!(usable(&lots[0], today)
            .unwrap_err()
            .to_string()
            .contains("cold-chain excursion"));
    }

    #[test]
    fn days_of_stock_from_the_dispensing_rate() {
        assert_eq!(days_of_stock(30, 60, 30), Some(15.0));
        assert_eq!(days_of_stock(30, 0, 30), None);
        assert_eq!(days_of_stock(-2, 30, 30), Some(0.0));
    }

    fn arb_kind() -> impl Strategy<Value = MoveKind> {
        proptest::sample::select(MoveKind::ALL.to_vec())
    }

    proptest! {
        /// No sequence of movements makes stock negative, over-reserves, or lets
        /// the kept balance drift from the sum of the accepted ledger lines.
        #[test]
        fn ledger_never_negative_and_always_sums(
            moves in proptest::collection::vec((arb_kind(), -20i64..40, any::<bool>()), 0..200)
        ) {
            let mut b = Balance::default();
            let mut ledger: Vec<Delta> = Vec::new();
            for (kind, qty, reason) in moves {
                let reason = if reason { "counted" } else { "" };
                if let Ok(next) = apply(b, kind, qty, reason) {
                    ledger.push(delta(kind, qty).unwrap());
                    b = next;
                }
                prop_assert!(b.on_hand >= 0);
                prop_assert!(b.reserved >= 0 && b.reserved <= b.on_hand);
                prop_assert_eq!(b.on_hand, ledger.iter().map(|d| d.on_hand).sum::<i64>());
                prop_assert_eq!(b.reserved, ledger.iter().map(|d| d.reserved).sum::<i64>());
            }
        }

        /// FEFO never picks an unusable lot, never takes more than a lot has free,
        /// takes exactly what was asked, and never skips an earlier usable lot.
        #[test]
        fn fefo_picks_are_sound(
            spec in proptest::collection::vec((0i64..400, 0u8..5, 0i64..10, 0i64..10), 1..12),
            qty in 1i64..40,
            min_days in 0u32..90,
        ) {
            let today = d("2026-11-25");
            let statuses = [LotStatus::Available, LotStatus::Available, LotStatus::OnHold, LotStatus::Recalled, LotStatus::Expired];
            let lots: Vec<LotView> = spec.iter().enumerate().map(|(i, (days, st, oh, res))| LotView {
                id: i as i64,
                lot: format!("L{i}"),
                expiry: today + Days::new(*days as u64) - Days::new(30),
                status: statuses[*st as usize],
                hold_reason: None,
                balance: Balance { on_hand: *oh, reserved: (*res).min(*oh) },
            }).collect();
            let ok = |l: &LotView| usable(l, today).is_ok() && (l.expiry - today).num_days() >= i64::from(min_days);
            let total: i64 = lots.iter().filter(|l| ok(l)).map(|l| l.balance.free()).sum();
            match allocate(&lots, qty, today, min_days) {
                Ok(picks) => {
                    prop_assert_eq!(picks.iter().map(|p| p.qty).sum::<i64>(), qty);
                    for p in &picks {
                        let l = &lots[p.lot_id as usize];
                        prop_assert!(ok(l));
                        prop_assert!(p.qty > 0 && p.qty <= l.balance.free());
                    }
                    // Any usable lot expiring strictly before the last pick was used up.
                    let last = picks.iter().map(|p| lots[p.lot_id as usize].expiry).max().unwrap();
                    for l in lots.iter().filter(|l| ok(l) && l.expiry < last && l.balance.free() > 0) {
                        let taken = picks.iter().find(|p| p.lot_id == l.id).map(|p| p.qty);
                        prop_assert_eq!(taken, Some(l.balance.free()));
                    }
                }
                Err(Shortfall::NotEnough { usable, .. }) => {
                    prop_assert!(total < qty);
                    prop_assert_eq!(usable, total);
                }
                Err(e) => prop_assert!(false, "{e:?}"),
            }
        }
    }
}
