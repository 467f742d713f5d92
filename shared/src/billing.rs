//! Billing maths: integer minor units (Rappen) only, never floats.
//!
//! Catalog prices are pack prices including VAT, as Swiss shelf prices are.
//! A line is `packs × price + packs × dispensing fee`; the VAT it contains is
//! worked out per line from its class rate, rounded half-up to the Rappen,
//! and totals are sums of lines, so an invoice always adds up. The patient's
//! and the insurer's shares are split per line under the patient's plan.

use serde::{Deserialize, Serialize};

/// Money in minor units (1/100 CHF).
pub type Minor = i64;

/// VAT classes and their rates in basis points (1/100 %).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct VatRates {
    /// Standard rate (Switzerland from 2024: 8.1 % = 810).
    pub standard_bp: u32,
    /// Reduced rate, medicines (2.6 % = 260).
    pub reduced_bp: u32,
}

impl Default for VatRates {
    fn default() -> Self {
        Self {
            standard_bp: 810,
            reduced_bp: 260,
        }
    }
}

impl VatRates {
    /// The rate of a stored class (`standard`, `reduced`, `zero`).
    pub fn rate_bp(&self, class: &str) -> Option<u32> {
        match class {
            "standard" => Some(self.standard_bp),
            "reduced" => Some(self.reduced_bp),
            "zero" => Some(0),
            _ => None,
        }
    }
}

/// An insurance plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Plan {
    /// The patient pays everything.
    NotCovered,
    /// The patient pays a fixed amount per line (at most the line).
    Copay {
        /// Per line.
        per_line: Minor,
    },
    /// The patient pays a share of each line until the annual cap is reached.
    Coinsurance {
        /// Patient's share in basis points (10 % = 1000).
        share_bp: u32,
        /// Most the patient pays in a calendar year.
        annual_cap: Minor,
    },
}

/// One line to price.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineIn {
    /// What (for the invoice).
    pub label: String,
    /// Packs.
    pub packs: i64,
    /// Pack price including VAT.
    pub unit_price: Minor,
    /// Dispensing fee per pack including VAT.
    pub fee: Minor,
    /// VAT rate in basis points.
    pub vat_bp: u32,
    /// The plan covers this product.
    pub covered: bool,
}

/// A priced line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Line {
    /// Label.
    pub label: String,
    /// Packs.
    pub packs: i64,
    /// Gross total (VAT included).
    pub total: Minor,
    /// VAT contained in `total`.
    pub vat: Minor,
    /// VAT rate in basis points.
    pub vat_bp: u32,
    /// The patient pays.
    pub patient: Minor,
    /// The insurer pays.
    pub insurer: Minor,
    /// Whether insurance covers the product at all (a line that is not
    /// covered is the patient's alone under every plan).
    #[serde(default = "covered_by_default")]
    pub covered: bool,
}

fn covered_by_default() -> bool {
    true
}

/// A priced invoice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Priced {
    /// Lines.
    pub lines: Vec<Line>,
    /// Sum of line totals.
    pub total: Minor,
    /// Sum of line VAT.
    pub vat: Minor,
    /// Patient's share.
    pub patient: Minor,
    /// Insurer's share.
    pub insurer: Minor,
    /// The patient's coinsurance paid this year after this invoice.
    pub year_paid_after: Minor,
}

/// Why a line cannot be priced.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BillingError {
    /// Negative packs or prices.
    #[error("line {0}: packs, prices and fees must not be negative")]
    Negative(usize),
    /// Too large to represent.
    #[error("line {0}: the amount is too large")]
    Overflow(usize),
}

/// `amount × num / den`, rounded half-up (amounts are never negative here).
pub fn mul_div_round(amount: Minor, num: i64, den: i64) -> Option<Minor> {
    let p = i128::from(amount).checked_mul(i128::from(num))?;
    let d = i128::from(den);
    let q = (p * 2 + d) / (2 * d);
    Minor::try_from(q).ok()
}

/// The VAT contained in a VAT-inclusive amount.
pub fn vat_included(gross: Minor, rate_bp: u32) -> Option<Minor> {
    mul_div_round(gross, i64::from(rate_bp), 10_000 + i64::from(rate_bp))
}

/// Price the lines under `plan`, given what the patient has already paid
/// under a coinsurance cap this year.
pub fn price(lines: &[LineIn], plan: &Plan, year_paid: Minor) -> Result<Priced, BillingError> {
    let mut out = Vec::with_capacity(lines.len());
    let mut paid = year_paid.max(0);
    for (i, l) in lines.iter().enumerate() {
        let n = i + 1;
        if l.packs < 0 || l.unit_price < 0 || l.fee < 0 {
            return Err(BillingError::Negative(n));
        }
        let total = l
            .unit_price
            .checked_add(l.fee)
            .and_then(|u| u.checked_mul(l.packs))
            .ok_or(BillingError::Overflow(n))?;
        let vat = vat_included(total, l.vat_bp).ok_or(BillingError::Overflow(n))?;
        let patient = if !l.covered {
            total
        } else {
            match plan {
                Plan::NotCovered => total,
                Plan::Copay { per_line } => (*per_line).clamp(0, total),
                Plan::Coinsurance {
                    share_bp,
                    annual_cap,
                } => {
                    let raw = mul_div_round(total, i64::from(*share_bp), 10_000)
                        .ok_or(BillingError::Overflow(n))?
                        .min(total);
                    let room = (annual_cap - paid).max(0);
                    let p = raw.min(room);
                    paid += p;
                    p
                }
            }
        };
        out.push(Line {
            label: l.label.clone(),
            packs: l.packs,
            total,
            vat,
            vat_bp: l.vat_bp,
            patient,
            insurer: total - patient,
            covered: l.covered,
        });
    }
    let sum = |f: fn(&Line) -> Minor| out.iter().map(f).sum::<Minor>();
    Ok(Priced {
        total: sum(|l| l.total),
        vat: sum(|l| l.vat),
        patient: sum(|l| l.patient),
        insurer: sum(|l| l.insurer),
        year_paid_after: paid,
        lines: out,
    })
}

/// Cash is paid to the nearest 5 Rappen in Switzerland (Swiss rounding).
pub fn cash_rounded(amount: Minor) -> Minor {
    let r = amount.rem_euclid(5);
    if r >= 3 {
        amount + (5 - r)
    } else {
        amount - r
    }
}

/// The invoice number shown and printed: gapless per store and year; the
/// sequence itself is assigned by the hub at finalisation.
pub fn invoice_number(store: &str, year: i32, seq: u64) -> String {
    format!("{}-{year}-{seq:06}", store.to_uppercase())
}

/// Format minor units as `12.50`.
pub fn fmt(minor: Minor) -> String {
    let sign = if minor < 0 { "-" } else { "" };
    let m = minor.unsigned_abs();
    format!("{sign}{}.{:02}", m / 100, m % 100)
}

/// One payment, for the daily Z report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payment {
    /// `cash`, `card` or `insurer`.
    pub method: String,
    /// Amount (negative for a refund through a credit note).
    pub amount: Minor,
}

/// A day's totals.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ZReport {
    /// Sum per payment method.
    pub by_method: std::collections::BTreeMap<String, Minor>,
    /// VAT per rate (basis points).
    pub vat_by_rate: std::collections::BTreeMap<u32, Minor>,
    /// Gross sales per rate (basis points).
    pub sales_by_rate: std::collections::BTreeMap<u32, Minor>,
    /// All payments.
    pub payments_total: Minor,
    /// All invoiced (credit notes negative).
    pub invoiced_total: Minor,
}

/// Build a Z report from the day's invoice lines (credit notes carry
/// negative totals) and payments.
pub fn z_report(lines: &[Line], payments: &[Payment]) -> ZReport {
    let mut z = ZReport::default();
    for l in lines {
        *z.vat_by_rate.entry(l.vat_bp).or_default() += l.vat;
        *z.sales_by_rate.entry(l.vat_bp).or_default() += l.total;
        z.invoiced_total += l.total;
    }
    for p in payments {
        *z.by_method.entry(p.method.clone()).or_default() += p.amount;
        z.payments_total += p.amount;
    }
    z
}

/// The credit note that cancels an invoice (corrections are never edits).
pub fn credit_note(p: &Priced) -> Priced {
    let neg = |l: &Line| Line {
        label: format!("credit: {}", l.label),
        packs: -l.packs,
        total: -l.total,
        vat: -l.vat,
        vat_bp: l.vat_bp,
        patient: -l.patient,
        insurer: -l.insurer,
        covered: l.covered,
    };
    Priced {
        lines: p.lines.iter().map(neg).collect(),
        total: -p.total,
        vat: -p.vat,
        patient: -p.patient,
        insurer: -p.insurer,
        year_paid_after: p.year_paid_after,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn line(packs: i64, price: Minor, fee: Minor, vat_bp: u32, covered: bool) -> LineIn {
        LineIn {
            label: "x".into(),
            packs,
            unit_price: price,
            fee,
            vat_bp,
            covered,
        }
    }

    #[test]
    fn worked_example() {
        // 2 packs at 35.36 + 4.30 fee, VAT 2.6 %, 10 % coinsurance capped at 700.00
        // with 695.00 already paid this year; plus an uncovered 8.1 % item.
        let p = price(
            &[line(2, 3536, 430, 260, true), line(1, 1290, 0, 810, false)],
            &Plan::Coinsurance {
                share_bp: 1000,
                annual_cap: 70_000,
            },
            69_500,
        )
        .unwrap();
        assert_eq!(p.lines[0].total, 7932);
        assert_eq!(p.lines[0].vat, 201); // 7932 × 260 / 10260 = 201.0…
        assert_eq!(p.lines[0].patient, 500); // 10 % would be 793, the cap leaves 500
        assert_eq!(p.lines[0].insurer, 7432);
        assert_eq!(p.lines[1].vat, 97); // 1290 × 810 / 10810 = 96.66 → 97
        assert_eq!(p.lines[1].patient, 1290);
        assert_eq!(
            (p.total, p.patient, p.insurer, p.year_paid_after),
            (9222, 1790, 7432, 70_000)
        );
        assert_eq!(fmt(p.total), "92.22");
        assert_eq!(cash_rounded(1792), 1790);
        assert_eq!(cash_rounded(1793), 1795);
        assert_eq!(invoice_number("zh-1", 2026, 42), "ZH-1-2026-000042");
        let c = price(
            &[line(1, 1000, 0, 260, true)],
            &Plan::Copay { per_line: 1500 },
            0,
        )
        .unwrap();
        assert_eq!(
            (c.patient, c.insurer),
            (1000, 0),
            "a copay never exceeds the line"
        );
        assert_eq!(
            price(&[line(-1, 1, 0, 0, true)], &Plan::NotCovered, 0),
            Err(BillingError::Negative(1))
        );
        assert_eq!(
            price(&[line(i64::MAX, 2, 0, 0, true)], &Plan::NotCovered, 0),
            Err(BillingError::Overflow(1))
        );
    }

    fn arb_plan() -> impl Strategy<Value = Plan> {
        prop_oneof![
            Just(Plan::NotCovered),
            (0i64..5_000).prop_map(|per_line| Plan::Copay { per_line }),
            (0u32..=10_000, 0i64..200_000).prop_map(|(share_bp, annual_cap)| Plan::Coinsurance {
                share_bp,
                annual_cap
            }),
        ]
    }

    proptest! {
        /// Shares always add up to the line, totals to the lines, VAT stays
        /// within the gross, the cap is never exceeded, and a credit note
        /// cancels its invoice to the Rappen.
        #[test]
        fn shares_and_totals_always_add_up(
            lines in proptest::collection::vec((0i64..20, 0i64..200_000, 0i64..2_000, prop_oneof![Just(0u32), Just(260u32), Just(810u32)], any::<bool>()), 0..12),
            plan in arb_plan(),
            paid in 0i64..300_000,
        ) {
            let ins: Vec<LineIn> = lines.iter().map(|&(n, p, f, v, c)| line(n, p, f, v, c)).collect();
            let p = price(&ins, &plan, paid).unwrap();
            for l in &p.lines {
                prop_assert_eq!(l.patient + l.insurer, l.total);
                prop_assert!(l.patient >= 0 && l.insurer >= 0);
                prop_assert!(l.vat >= 0 && l.vat <= l.total);
            }
            prop_assert_eq!(p.total, p.lines.iter().map(|l| l.total).sum::<i64>());
            prop_assert_eq!(p.patient + p.insurer, p.total);
            if let Plan::Coinsurance { annual_cap, .. } = plan {
                let covered_paid: i64 = p.lines.iter().zip(&ins).filter(|(_, i)| i.covered).map(|(l, _)| l.patient).sum();
                prop_assert!(paid + covered_paid <= annual_cap.max(paid));
                prop_assert_eq!(p.year_paid_after, paid + covered_paid);
            }
            let c = credit_note(&p);
            let mut all = p.lines.clone();
            all.extend(c.lines.clone());
            let z = z_report(&all, &[]);
            prop_assert_eq!(z.invoiced_total, 0);
            prop_assert!(z.vat_by_rate.values().all(|v| *v == 0));
        }

        /// VAT rounding is half-up and exact for the inclusive formula.
        #[test]
        fn vat_matches_exact_arithmetic(gross in 0i64..10_000_000, rate in prop_oneof![Just(260u32), Just(810u32), Just(0u32)]) {
            let v = vat_included(gross, rate).unwrap();
            let exact_num = i128::from(gross) * i128::from(rate) * 2;
            let den = 10_000i128 + i128::from(rate);
            // |2·den·v − 2·gross·rate| ≤ den  ⇔  v is the nearest integer (ties up).
            prop_assert!((2 * den * i128::from(v) - exact_num).abs() <= den);
        }

        #[test]
        fn cash_rounding_is_to_the_nearest_five(a in 0i64..1_000_000) {
            let r = cash_rounded(a);
            prop_assert_eq!(r % 5, 0);
            prop_assert!((r - a).abs() <= 2);
        }
    }
}
