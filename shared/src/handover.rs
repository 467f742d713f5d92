//! Hand-over at the desk: every pack scanned (its GS1 code) must be of a lot
//! the order reserved, and no more packs of a lot than reserved. A wrong
//! product, a wrong lot, a mismatched expiry, a pack scanned twice or one
//! pack too many is refused with a sentence the pharmacist can act on.
//!
//! Pure: the hub passes what is reserved and what was already scanned.

use crate::payload::gs1::Gs1;
use serde::{Deserialize, Serialize};

/// Packs of one lot reserved for the order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reserved {
    /// Reservation id.
    pub reservation: i64,
    /// Product name, for messages.
    pub product: String,
    /// GTIN-14.
    pub gtin: String,
    /// Batch/lot.
    pub lot: String,
    /// Expiry, `YYYY-MM-DD`.
    pub expiry: String,
    /// Packs reserved.
    pub qty: i64,
}

/// A pack already accepted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scanned {
    /// The reservation it counted for.
    pub reservation: i64,
    /// Its serial (AI 21), if the code carried one.
    pub serial: Option<String>,
}

/// What to do with a scanned pack.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum Verdict {
    /// Count it for this reservation.
    Accept {
        /// Reservation.
        reservation: i64,
        /// What was accepted, in words.
        message: String,
    },
    /// Refuse it.
    Refuse {
        /// Why, in words.
        message: String,
    },
}

fn count(done: &[Scanned], reservation: i64) -> i64 {
    i64::try_from(done.iter().filter(|s| s.reservation == reservation).count()).unwrap_or(i64::MAX)
}

/// GS1 writes day `00` for "end of the month"; a lot's expiry is stored as
/// the last day. Both name the same month then.
fn same_expiry(pack: &str, lot: &str) -> bool {
    if pack == lot {
        return true;
    }
    match (pack.strip_suffix("-00"), lot.get(..7)) {
        (Some(month), Some(lot_month)) => month == lot_month,
        _ => false,
    }
}

/// Read a code scanned at the desk. Scanners in keyboard mode often drop
/// the symbology prefix (`]d2`) and send a bare element string; at the desk
/// a scan is always a pack, so one that starts with AI 01 is read as GS1.
pub fn desk_code(code: &str) -> Result<Gs1, crate::payload::gs1::Gs1Error> {
    let code = code.trim();
    match crate::payload::gs1::parse(code) {
        Ok(g) => Ok(g),
        Err(e) => {
            let bare = code.len() >= 16
                && code.starts_with("01")
                && code.bytes().take(16).all(|b| b.is_ascii_digit());
            if bare {
                crate::payload::gs1::parse(&format!("^{code}"))
            } else {
                Err(e)
            }
        }
    }
}

/// Check one scanned pack against what the order reserved.
pub fn verify(reserved: &[Reserved], done: &[Scanned], pack: &Gs1) -> Verdict {
    let refuse = |m: String| Verdict::Refuse { message: m };
    let Some(gtin) = pack.gtin.as_deref() else {
        return refuse("This code has no GTIN (01): scan the pack's 2D code.".into());
    };
    let same_product: Vec<&Reserved> = reserved.iter().filter(|r| r.gtin == gtin).collect();
    if same_product.is_empty() {
        let wanted: Vec<String> = reserved.iter().map(|r| r.product.clone()).collect();
        return refuse(format!(
            "Wrong product: GTIN {gtin} is not in this order (it holds {}).",
            wanted.join(", ")
        ));
    }
    if let Some(serial) = pack.serial.as_deref() {
        if done.iter().any(|s| s.serial.as_deref() == Some(serial)) {
            return refuse(format!("This pack (serial {serial}) was already scanned."));
        }
    }
    let Some(lot) = pack.batch.as_deref() else {
        return refuse(format!(
            "This code has no batch (10), so the lot cannot be checked: scan the 2D code of the {}.",
            same_product[0].product
        ));
    };
    let Some(r) = same_product.iter().find(|r| r.lot == lot) else {
        let lots: Vec<String> = same_product
            .iter()
            .map(|r| format!("{} (expires {})", r.lot, r.expiry))
            .collect();
        return refuse(format!(
            "Wrong lot: this pack of {} is lot {lot}; the order reserved lot {}.",
            same_product[0].product,
            lots.join(" and ")
        ));
    };
    if let Some(exp) = pack.expiry.as_deref() {
        if !same_expiry(exp, &r.expiry) {
            return refuse(format!(
                "The pack's expiry {exp} is not the expiry of lot {} ({}): check the pack.",
                r.lot, r.expiry
            ));
        }
    }
    let n = count(done, r.reservation);
    if n >= r.qty {
        return refuse(format!(
            "All {} pack(s) of {} lot {} are already scanned: this one stays.",
            r.qty, r.product, r.lot
        ));
    }
    Verdict::Accept {
        reservation: r.reservation,
        message: format!("{} lot {}: pack {} of {}.", r.product, r.lot, n + 1, r.qty),
    }
}

/// What is still to scan: (product, lot, packs missing), for lots not done.
pub fn missing(reserved: &[Reserved], done: &[Scanned]) -> Vec<(String, String, i64)> {
    reserved
        .iter()
        .filter_map(|r| {
            let left = r.qty - count(done, r.reservation);
            (left > 0).then(|| (r.product.clone(), r.lot.clone(), left))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::payload::gs1;
    use proptest::prelude::*;

    fn order() -> Vec<Reserved> {
        vec![
            Reserved {
                reservation: 1,
                product: "Lamotrigine 100 mg".into(),
                gtin: "09520000002992".into(),
                lot: "EARLY".into(),
                expiry: "2028-01-31".into(),
                qty: 2,
            },
            Reserved {
                reservation: 2,
                product: "Lamotrigine 100 mg".into(),
                gtin: "09520000002992".into(),
                lot: "LATE".into(),
                expiry: "2029-12-31".into(),
                qty: 1,
            },
        ]
    }

    fn pack(s: &str) -> Gs1 {
        gs1::parse(s).unwrap()
    }

    #[test]
    fn a_bare_element_string_from_a_desk_scanner_reads() {
        let g = desk_code("01095200000029921728013110EARLY").unwrap();
        assert_eq!(
            (g.gtin.as_deref(), g.batch.as_deref()),
            (Some("09520000002992"), Some("EARLY"))
        );
        assert!(desk_code("hello").is_err());
    }

    fn message(v: &Verdict) -> &str {
        match v {
            Verdict::Accept { message, .. } | Verdict::Refuse { message } => message,
        }
    }

    #[test]
    fn the_reserved_lots_are_accepted_up_to_their_count() {
        let r = order();
        let mut done = Vec::new();
        for (code, want) in [
            ("^01095200000029921728013110EARLY", 1),
            ("^01095200000029921728013110EARLY", 1),
            ("^01095200000029921729123110LATE", 2),
        ] {
            let p = pack(code);
            match verify(&r, &done, &p) {
                Verdict::Accept { reservation, .. } => {
                    assert_eq!(reservation, want);
                    done.push(Scanned {
                        reservation,
                        serial: p.serial.clone(),
                    });
                }
                v => panic!("{code}: {v:?}"),
            }
        }
        assert!(missing(&r, &done).is_empty());
        let v = verify(&r, &done, &pack("^01095200000029921728013110EARLY"));
        assert!(
            matches!(v, Verdict::Refuse { .. }) && message(&v).contains("already scanned"),
            "{v:?}"
        );
    }

    #[test]
    fn wrong_product_lot_expiry_and_repeats_are_refused_in_words() {
        let r = order();
        let v = verify(&r, &[], &pack("^01095200000022681728063010OXY1"));
        assert!(message(&v).starts_with("Wrong product"), "{v:?}");
        let v = verify(&r, &[], &pack("^01095200000029921728013110OTHER"));
        assert!(
            message(&v).starts_with("Wrong lot") && message(&v).contains("EARLY"),
            "{v:?}"
        );
        let v = verify(&r, &[], &pack("^01095200000029921730013110EARLY"));
        assert!(message(&v).contains("expiry"), "{v:?}");
        let v = verify(&r, &[], &pack("^0109520000002992"));
        assert!(message(&v).contains("no batch"), "{v:?}");
        let serial = "^01095200000029922112345\u{1d}1728013110EARLY";
        let p = pack(serial);
        let done = vec![Scanned {
            reservation: 1,
            serial: p.serial.clone(),
        }];
        let v = verify(&r, &done, &p);
        assert!(message(&v).contains("already scanned"), "{v:?}");
        // Day 00 is the end of the month the lot's expiry names.
        let v = verify(&r, &[], &pack("^01095200000029921728010010EARLY"));
        assert!(matches!(v, Verdict::Accept { .. }), "{v:?}");
        assert_eq!(
            missing(&r, &[]),
            vec![
                ("Lamotrigine 100 mg".into(), "EARLY".into(), 2),
                ("Lamotrigine 100 mg".into(), "LATE".into(), 1)
            ]
        );
    }

    proptest! {
        /// Whatever is scanned, no reservation gets more packs than it holds,
        /// and a product not in the order is never accepted.
        #[test]
        fn never_more_than_reserved(scans in prop::collection::vec((0usize..4, 0usize..3), 0..20)) {
            let r = order();
            let codes = [
                "^01095200000029921728013110EARLY",
                "^01095200000029921729123110LATE",
                "^01095200000022681728063010OXY1",
                "^01095200000029921728013110NOPE",
            ];
            let mut done: Vec<Scanned> = Vec::new();
            for (c, _) in scans {
                let p = pack(codes[c]);
                if let Verdict::Accept { reservation, .. } = verify(&r, &done, &p) {
                    prop_assert!(c < 2, "accepted {}", codes[c]);
                    done.push(Scanned { reservation, serial: None });
                }
            }
            for x in &r {
                prop_assert!(count(&done, x.reservation) <= x.qty);
            }
        }
    }
}
