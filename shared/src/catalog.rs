//! Catalog products and the catalog CSV: parsing and validation, pure (the
//! hub imports and stores; `shared/fuzz` fuzzes the parser). The format is
//! documented in `docs/inventory.md`. Every problem names its line.

use crate::payload::gs1::check_digit_ok;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;

/// Where a product must be kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Storage {
    /// 15–25 °C.
    Room,
    /// 2–8 °C.
    Fridge,
    /// −25 to −15 °C.
    Frozen,
}

impl Storage {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Storage::Room => "room",
            Storage::Fridge => "fridge",
            Storage::Frozen => "frozen",
        }
    }
    /// Parse a stored or imported name.
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "room" => Some(Storage::Room),
            "fridge" => Some(Storage::Fridge),
            "frozen" => Some(Storage::Frozen),
            _ => None,
        }
    }
    /// Words for screens.
    pub fn label(self) -> &'static str {
        match self {
            Storage::Room => "room temperature",
            Storage::Fridge => "fridge 2–8 °C",
            Storage::Frozen => "frozen",
        }
    }
}

/// One catalog product.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Product {
    /// GTIN-14 (shorter GTINs are left-padded with zeros).
    pub gtin: String,
    /// Trade name.
    pub name: String,
    /// Active ingredients (INN).
    pub ingredients: Vec<String>,
    /// Strength, e.g. `500 mg`.
    pub strength: String,
    /// Dosage form, e.g. `tablet`.
    pub form: String,
    /// Units per pack.
    pub pack_size: i64,
    /// ATC code where known.
    pub atc: Option<String>,
    /// Controlled substance (narcotics law): needs a second confirmation.
    pub controlled: bool,
    /// Storage class.
    pub storage: Storage,
    /// Pack price in minor units (centimes).
    pub price_minor: i64,
    /// VAT class: `standard`, `reduced` or `zero`.
    pub vat_class: String,
    /// GTINs of generic equivalents.
    pub generics: Vec<String>,
    /// Reorder when free stock falls below this many packs.
    pub reorder_point: i64,
    /// Maximum daily dose in mg, where known.
    pub max_daily_mg: Option<i64>,
    /// Insurance plans cover it (a medicine on the list). A product that is
    /// not covered (cosmetics, most over-the-counter goods) is the patient's
    /// alone whatever the plan.
    #[serde(default = "yes")]
    pub covered: bool,
}

fn yes() -> bool {
    true
}

/// The CSV header, in order.
pub const CSV_HEADER: [&str; 14] = [
    "gtin",
    "name",
    "ingredients",
    "strength",
    "form",
    "pack_size",
    "atc",
    "controlled",
    "storage",
    "price",
    "vat_class",
    "generics",
    "reorder_point",
    "max_daily_mg",
];

/// Columns a file may add after [`CSV_HEADER`], in order. Left out, every
/// product is covered.
pub const CSV_OPTIONAL: [&str; 1] = ["covered"];

/// One problem in an import, with the CSV line it is on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RowError {
    /// 1-based line in the file.
    pub line: u64,
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for RowError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

/// Normalise a GTIN-8/12/13/14 to 14 digits, checking its check digit.
pub fn normalize_gtin(s: &str) -> Result<String, String> {
    let t = s.trim();
    if !matches!(t.len(), 8 | 12 | 13 | 14) || !t.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("GTIN {t:?} must be 8, 12, 13 or 14 digits"));
    }
    if !check_digit_ok(t) {
        return Err(format!("GTIN {t} has a wrong check digit"));
    }
    Ok(format!("{t:0>14}"))
}

/// Parse a price like `12.50` or `7` into minor units. Floats never touch money.
pub fn parse_price(s: &str) -> Result<i64, String> {
    let t = s.trim();
    let (whole, frac) = t.split_once('.').unwrap_or((t, ""));
    let digits = |x: &str| !x.is_empty() && x.bytes().all(|b| b.is_ascii_digit());
    if !digits(whole) || !(frac.is_empty() || (digits(frac) && frac.len() <= 2)) {
        return Err(format!(
            "price {t:?} must be a number with at most two decimals, like 12.50"
        ));
    }
    let w: i64 = whole
        .parse()
        .map_err(|_| format!("price {t:?} is too large"))?;
    let f: i64 = format!("{frac:0<2}").parse().unwrap_or(0);
    w.checked_mul(100)
        .and_then(|x| x.checked_add(f))
        .ok_or_else(|| format!("price {t:?} is too large"))
}

/// A `;`-separated list, trimmed, empty items dropped.
pub fn split_list(s: &str) -> Vec<String> {
    s.split(';')
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .map(str::to_owned)
        .collect()
}

fn parse_row(rec: &csv::StringRecord) -> Result<Product, Vec<String>> {
    let mut errs = Vec::new();
    let field = |i: usize| rec.get(i).unwrap_or("").trim();
    let gtin = normalize_gtin(field(0)).unwrap_or_else(|e| {
        errs.push(e);
        String::new()
    });
    let name = field(1).to_owned();
    if name.is_empty() {
        errs.push("name is empty".into());
    }
    let ingredients = split_list(field(2));
    if ingredients.is_empty() {
        errs.push("ingredients is empty (list the active ingredients, separated by ;)".into());
    }
    let pack_size = match field(5).parse::<i64>() {
        Ok(n) if n > 0 => n,
        _ => {
            errs.push(format!(
                "pack_size {:?} must be a positive whole number",
                field(5)
            ));
            0
        }
    };
    let atc = Some(field(6).to_ascii_uppercase()).filter(|a| !a.is_empty());
    if let Some(a) = &atc {
        let b = a.as_bytes();
        let shape = b.len() <= 7
            && b.first().is_some_and(u8::is_ascii_uppercase)
            && b.iter().all(u8::is_ascii_alphanumeric);
        if !shape {
            errs.push(format!("ATC code {a:?} is not an ATC code like N02BE01"));
        }
    }
    let covered = match field(14).to_ascii_lowercase().as_str() {
        "" | "yes" | "y" | "true" | "1" => true,
        "no" | "n" | "false" | "0" => false,
        other => {
            errs.push(format!("covered {other:?} must be yes or no"));
            true
        }
    };
    let controlled = match field(7).to_ascii_lowercase().as_str() {
        "" | "no" | "false" | "0" => false,
        "yes" | "true" | "1" => true,
        other => {
            errs.push(format!("controlled {other:?} must be yes or no"));
            false
        }
    };
    let storage = Storage::parse(field(8)).unwrap_or_else(|| {
        errs.push(format!(
            "unknown storage class {:?} (room, fridge or frozen)",
            field(8)
        ));
        Storage::Room
    });
    let price_minor = parse_price(field(9)).unwrap_or_else(|e| {
        errs.push(e);
        0
    });
    let vat_class = field(10).to_ascii_lowercase();
    if !matches!(vat_class.as_str(), "standard" | "reduced" | "zero") {
        errs.push(format!(
            "unknown VAT class {:?} (standard, reduced or zero)",
            field(10)
        ));
    }
    let mut generics = Vec::new();
    for g in split_list(field(11)) {
        match normalize_gtin(&g) {
            Ok(n) => generics.push(n),
            Err(e) => errs.push(format!("generics: {e}")),
        }
    }
    let reorder_point = match field(12) {
        "" => 0,
        t => t
            .parse::<i64>()
            .ok()
            .filter(|n| *n >= 0)
            .unwrap_or_else(|| {
                errs.push(format!("reorder_point {t:?} must be a whole number ≥ 0"));
                0
            }),
    };
    let max_daily_mg = match field(13) {
        "" => None,
        t => match t.parse::<i64>() {
            Ok(n) if n > 0 => Some(n),
            _ => {
                errs.push(format!(
                    "max_daily_mg {t:?} must be a positive whole number"
                ));
                None
            }
        },
    };
    if !errs.is_empty() {
        return Err(errs);
    }
    Ok(Product {
        gtin,
        name,
        ingredients,
        strength: field(3).to_owned(),
        form: field(4).to_owned(),
        pack_size,
        atc,
        controlled,
        storage,
        price_minor,
        vat_class,
        generics,
        reorder_point,
        max_daily_mg,
        covered,
    })
}

/// Parse and validate a whole CSV file. `known` holds GTINs already in the
/// catalog, which generic equivalents may refer to. Returns every problem.
pub fn parse_csv(text: &str, known: &HashSet<String>) -> Result<Vec<Product>, Vec<RowError>> {
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .from_reader(text.as_bytes());
    let mut errors = Vec::new();
    let columns = match rdr.headers() {
        Ok(h) => {
            let got: Vec<String> = h.iter().map(|x| x.trim().to_ascii_lowercase()).collect();
            let known = got.len() >= CSV_HEADER.len()
                && got.len() <= CSV_HEADER.len() + CSV_OPTIONAL.len()
                && got
                    .iter()
                    .zip(CSV_HEADER.iter().chain(CSV_OPTIONAL.iter()))
                    .all(|(a, b)| a == b);
            if !known {
                return Err(vec![RowError {
                    line: 1,
                    message: format!(
                        "the header must be exactly: {}, optionally followed by {} (found: {})",
                        CSV_HEADER.join(","),
                        CSV_OPTIONAL.join(","),
                        got.join(",")
                    ),
                }]);
            }
            got.len()
        }
        Err(e) => {
            return Err(vec![RowError {
                line: 1,
                message: format!("cannot read the header: {e}"),
            }])
        }
    };
    let mut products: Vec<(u64, Product)> = Vec::new();
    let mut seen = HashSet::new();
    for rec in rdr.records() {
        let rec = match rec {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map(|p| p.line()).unwrap_or(0);
                errors.push(RowError {
                    line,
                    message: format!("unreadable row: {e}"),
                });
                continue;
            }
        };
        let line = rec.position().map(|p| p.line()).unwrap_or(0);
        if rec.len() != columns {
            errors.push(RowError {
                line,
                message: format!("{} fields, expected {columns}", rec.len()),
            });
            continue;
        }
        match parse_row(&rec) {
            Ok(p) => {
                if !seen.insert(p.gtin.clone()) {
                    errors.push(RowError {
                        line,
                        message: format!("GTIN {} appears twice in the file", p.gtin),
                    });
                }
                products.push((line, p));
            }
            Err(es) => errors.extend(es.into_iter().map(|message| RowError { line, message })),
        }
    }
    for (line, p) in &products {
        for g in &p.generics {
            if g == &p.gtin {
                errors.push(RowError {
                    line: *line,
                    message: "a product cannot be its own generic equivalent".into(),
                });
            } else if !seen.contains(g) && !known.contains(g) {
                errors.push(RowError {
                    line: *line,
                    message: format!("generic equivalent {g} is not in the catalog or this file"),
                });
            }
        }
    }
    if products.is_empty() && errors.is_empty() {
        errors.push(RowError {
            line: 1,
            message: "the file has no products".into(),
        });
    }
    if !errors.is_empty() {
        errors.sort_by_key(|e| e.line);
        return Err(errors);
    }
    Ok(products.into_iter().map(|(_, p)| p).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "gtin,name,ingredients,strength,form,pack_size,atc,controlled,storage,price,vat_class,generics,reorder_point,max_daily_mg\n";

    #[test]
    fn gtins_and_prices() {
        assert_eq!(normalize_gtin("4006381333931").unwrap(), "04006381333931");
        assert!(normalize_gtin("4006381333932")
            .unwrap_err()
            .contains("check digit"));
        assert!(normalize_gtin("12ab").is_err());
        assert_eq!(parse_price("12.5"), Ok(1250));
        assert_eq!(parse_price("12.05"), Ok(1205));
        assert_eq!(parse_price("7"), Ok(700));
        assert!(parse_price("1.234").is_err());
        assert!(parse_price("-1").is_err());
        assert!(parse_price("1e3").is_err());
        assert!(parse_price("99999999999999999999").is_err());
        assert_eq!(crate::billing::fmt(1205), "12.05");
        assert_eq!(crate::billing::fmt(-5), "-0.05");
    }

    #[test]
    fn a_good_file_imports_every_row() {
        let text = format!(
            "{HEADER}09520000000011,Dafalgan 500,paracetamol,500 mg,tablet,20,N02BE01,no,room,3.90,reduced,09520000000028,10,4000\n\
             09520000000028,Paracetamol Sandoz,paracetamol,500 mg,tablet,20,N02BE01,,room,2.95,reduced,,5,\n"
        );
        let p = parse_csv(&text, &HashSet::new()).unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].price_minor, 390);
        assert_eq!(p[0].generics, vec!["09520000000028".to_owned()]);
        assert_eq!(p[0].max_daily_mg, Some(4000));
        assert_eq!(p[1].max_daily_mg, None);
        assert!(p[0].covered && p[1].covered, "without the column, covered");
    }

    #[test]
    fn the_covered_column_is_optional_and_checked() {
        let head = HEADER.trim_end().to_owned() + ",covered\n";
        let text = format!(
            "{head}09520000000011,Dafalgan 500,paracetamol,500 mg,tablet,20,N02BE01,no,room,3.90,reduced,,10,4000,yes\n\
             09520000000028,Eye gel,carbomer,2 mg,gel,1,,no,room,9.90,standard,,0,,no\n\
             09520000000035,Lotion,urea,5 %,lotion,1,,no,room,9.90,standard,,0,,\n"
        );
        let p = parse_csv(&text, &HashSet::new()).unwrap();
        assert_eq!(
            p.iter().map(|x| x.covered).collect::<Vec<_>>(),
            vec![true, false, true]
        );
        let bad = text.replace(",0,,no", ",0,,perhaps");
        let e = parse_csv(&bad, &HashSet::new()).unwrap_err();
        assert_eq!(e[0].line, 3);
        assert!(e[0].message.contains("covered \"perhaps\""), "{e:?}");
        // A row must have the header's width, and unknown extra columns are refused.
        let short = text.replace(",0,,no", ",0,");
        assert!(parse_csv(&short, &HashSet::new()).unwrap_err()[0]
            .message
            .contains("14 fields, expected 15"));
        let extra = format!("{}x\n", head.trim_end().to_owned() + ",");
        assert!(parse_csv(&extra, &HashSet::new()).unwrap_err()[0]
            .message
            .contains("optionally followed by covered"));
    }

    /// The shipped demo catalog imports whole, and a combination product lists
    /// each active ingredient: an allergy to amoxicillin must find co-amoxiclav.
    #[test]
    fn the_demo_catalog_lists_each_ingredient_of_a_combination() {
        let text = include_str!("../../hub/data/demo-catalog.csv");
        let products = parse_csv(text, &HashSet::new()).unwrap_or_default();
        assert!(products.len() > 100, "{} products", products.len());
        for p in &products {
            assert!(
                p.ingredients.iter().all(|i| !i.contains(" and ")),
                "{}: {:?}",
                p.name,
                p.ingredients
            );
        }
        let coamox = products
            .iter()
            .find(|p| p.atc.as_deref() == Some("J01CR02"))
            .map(|p| p.ingredients.clone());
        assert_eq!(
            coamox,
            Some(vec!["amoxicillin".to_owned(), "clavulanic acid".to_owned()])
        );
    }

    #[test]
    fn every_bad_row_is_named_by_its_line() {
        let text = format!(
            "{HEADER}09520000000011,Dafalgan 500,paracetamol,500 mg,tablet,20,N02BE01,no,room,3.90,reduced,,10,\n\
             09520000000016,Bad Check,paracetamol,500 mg,tablet,20,,no,room,3.90,reduced,,10,\n\
             09520000000028,Warm Insulin,insulin,100 U/ml,pen,5,A10AE04,no,warm,45.00,reduced,,2,\n\
             09520000000035,Short,x\n\
             09520000000011,Twice,paracetamol,500 mg,tablet,20,,no,room,3.90,reduced,09520000000042,10,\n"
        );
        let errs = parse_csv(&text, &HashSet::new()).unwrap_err();
        let lines: Vec<(u64, &str)> = errs.iter().map(|e| (e.line, e.message.as_str())).collect();
        assert!(
            lines
                .iter()
                .any(|(l, m)| *l == 3 && m.contains("check digit")),
            "{lines:?}"
        );
        assert!(
            lines
                .iter()
                .any(|(l, m)| *l == 4 && m.contains("storage class \"warm\"")),
            "{lines:?}"
        );
        assert!(
            lines.iter().any(|(l, m)| *l == 5 && m.contains("fields")),
            "{lines:?}"
        );
        assert!(
            lines.iter().any(|(l, m)| *l == 6 && m.contains("twice")),
            "{lines:?}"
        );
        assert!(
            lines
                .iter()
                .any(|(l, m)| *l == 6 && m.contains("not in the catalog")),
            "{lines:?}"
        );
        let wrong_header = parse_csv("gtin,name\n1,2\n", &HashSet::new()).unwrap_err();
        assert_eq!(wrong_header[0].line, 1);
    }
}
