//! Gathers what the clinical checks read, and runs them: this order's
//! lines, the rest of the patient's eMediplan, what the patient was given in
//! the last 100 days, and the patient's allergies. The rules themselves are
//! pure, in [`rxedge_shared::clinical`].

use super::Order;
use crate::catalog::{self, Product};
use crate::patients::{self, Patient};
use crate::store::Db;
use rxedge_shared::clinical::{
    self as rules, Allergy, Drug, Finding, InteractionTable, Matcher, Origin,
};
use rxedge_shared::payload;
use serde::Serialize;
use sqlx::Row as _;

/// Dispensings this recent count as what the patient takes now (the HL7
/// PDDI-CDS artifacts look back 100 days too).
const LOOKBACK_MS: i64 = 100 * 86_400_000;

/// What the pharmacist sees before approving.
#[derive(Debug, Clone, Serialize)]
pub struct Checks {
    /// Findings, severe first.
    pub findings: Vec<Finding>,
    /// How many are severe (approval over them needs a written reason).
    pub severe: u32,
    /// The drugs that were checked.
    pub drugs: Vec<Drug>,
    /// What could not be checked, in words (plan items not in the catalog, …).
    pub unchecked: Vec<String>,
    /// The patient the order is filed under.
    pub patient: Option<Patient>,
}

fn drug_of(p: &Product, units_per_day: Option<f64>, origin: Origin) -> Drug {
    Drug {
        label: p.name.clone(),
        ingredients: p.ingredients.iter().map(|i| i.to_lowercase()).collect(),
        atc: p.atc.clone(),
        strength_mg: rules::strength_mg(&p.strength),
        units_per_day,
        max_daily_mg: p.max_daily_mg,
        origin,
    }
}

/// An allergy whose every named ingredient is unknown to the catalog (and
/// that names no ATC class) would match nothing: it is shown as "not known"
/// instead, so a typo never hides an allergy.
async fn usable(db: &Db, a: &Allergy) -> Result<Allergy, sqlx::Error> {
    let mut covers = Vec::new();
    for m in &a.covers {
        match m {
            Matcher::Atc(_) => covers.push(m.clone()),
            Matcher::Ingredient(i) => {
                let like = crate::store::contains_pattern(&i.to_lowercase());
                let known = sqlx::query(
                    "SELECT 1 FROM products WHERE LOWER(ingredients) LIKE $1 ESCAPE '\\' LIMIT 1",
                )
                .bind(like)
                .fetch_optional(&db.pool)
                .await?
                .is_some();
                if known {
                    covers.push(m.clone());
                }
            }
        }
    }
    Ok(Allergy {
        label: a.label.clone(),
        covers,
    })
}

/// Does a line of this order carry exactly `p`'s ingredients?
fn dispensed_here(drugs: &[Drug], p: &Product) -> bool {
    let mut want: Vec<String> = p.ingredients.iter().map(|i| i.to_lowercase()).collect();
    want.sort();
    drugs.iter().any(|d| {
        let mut have = d.ingredients.clone();
        have.sort();
        d.origin == Origin::ThisOrder && have == want
    })
}

/// Run the checks for one order.
pub async fn run(
    db: &Db,
    table: &InteractionTable,
    o: &Order,
    now_ms: i64,
) -> Result<Checks, sqlx::Error> {
    let mut drugs = Vec::new();
    let mut unchecked = Vec::new();
    // Lines and their products in one query (the review page runs this on
    // every view).
    let rows = sqlx::query(
        "SELECT l.sig, p.* FROM order_lines l JOIN products p ON p.gtin = l.gtin WHERE l.order_id = $1 ORDER BY l.id",
    )
    .bind(&o.id)
    .fetch_all(&db.pool)
    .await?;
    for r in &rows {
        let sig: String = r.try_get("sig")?;
        let p = catalog::from_row(r)?;
        let units = rules::units_per_day(&sig);
        if units.is_none() && p.max_daily_mg.is_some() {
            unchecked.push(format!(
                "{}: daily dose not checked ({})",
                p.name,
                if sig.trim().is_empty() {
                    "no dosage instructions on the line".to_owned()
                } else {
                    format!("cannot read {:?}", sig.trim())
                }
            ));
        }
        drugs.push(drug_of(&p, units, Origin::ThisOrder));
    }
    let parsed = payload::parse(&o.payload);
    if let Some(plan) = parsed.plan() {
        for m in plan.medicaments {
            let found = if m.id_type == 2 {
                catalog::get(db, &m.id).await?
            } else {
                None
            };
            match found {
                // Dispensed in this order, as itself or as a generic (same
                // ingredients): its line stands for it, so a risk it carries
                // is reported once, under the product handed over.
                Some(p) if dispensed_here(&drugs, &p) => {}
                Some(p) => {
                    let units = m
                        .posology
                        .first()
                        .and_then(|x| x.daily.as_deref())
                        .and_then(rules::units_per_day_of);
                    drugs.push(drug_of(&p, units, Origin::Plan));
                }
                None => unchecked.push(format!(
                    "eMediplan item {} ({} {}) is not in the catalog: check it by hand",
                    m.id,
                    m.id_type_label(),
                    m.id
                )),
            }
        }
    }
    let patient = match &o.patient_id {
        Some(id) => patients::resolve(db, id).await?,
        None => None,
    };
    let mut allergies = Vec::new();
    if let Some(p) = &patient {
        let rows = sqlx::query(
            "SELECT o.reference, l.sig, p.* FROM orders o JOIN order_lines l ON l.order_id = o.id \
             JOIN products p ON p.gtin = l.gtin \
             WHERE o.patient_id = $1 AND o.id <> $2 AND o.updated_ms >= $3 \
             AND o.state IN ('approved', 'filling', 'ready', 'picked_up') ORDER BY o.created_ms, l.id",
        )
        .bind(&p.id)
        .bind(&o.id)
        .bind(now_ms - LOOKBACK_MS)
        .fetch_all(&db.pool)
        .await?;
        for r in &rows {
            let prod = catalog::from_row(r)?;
            let sig: String = r.try_get("sig")?;
            drugs.push(drug_of(
                &prod,
                rules::units_per_day(&sig),
                Origin::Dispensed(r.try_get("reference")?),
            ));
        }
        for a in &p.allergies {
            allergies.push(usable(db, a).await?);
        }
    } else {
        unchecked.push("no patient record: allergies and earlier dispensings not checked".into());
    }
    let findings = rules::check(&drugs, &allergies, table);
    Ok(Checks {
        severe: rules::severe_count(&findings),
        findings,
        drugs,
        unchecked,
        patient,
    })
}
