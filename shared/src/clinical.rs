//! Clinical checks shown to the pharmacist before approval: drug–drug
//! interactions from a curated table, duplicate therapy, the patient's
//! recorded allergies, and the maximum daily dose.
//!
//! Pure: the hub gathers the drugs (this order's lines, the rest of the
//! patient's eMediplan, recent dispensings) and the patient's allergies,
//! and [`check`] says what a pharmacist must see. Findings of
//! [`Severity::Severe`] gate approval: approving over them needs a written
//! reason (see [`crate::orders::ApprovalGates`]).

use serde::{Deserialize, Serialize};
use std::fmt;

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Worth knowing; no action needed.
    Minor,
    /// Check and act if needed (monitor, adjust, counsel).
    Moderate,
    /// Contraindicated or dangerous: approval needs a written reason.
    Severe,
}

impl Severity {
    /// Name as written in the table and shown on screen.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Minor => "minor",
            Self::Moderate => "moderate",
            Self::Severe => "severe",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "minor" => Some(Self::Minor),
            "moderate" => Some(Self::Moderate),
            "severe" | "contraindicated" => Some(Self::Severe),
            _ => None,
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a table entry or an allergy names: one ingredient (INN, any case),
/// or every drug whose ATC code starts with a prefix (`atc:M01A`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "by", content = "value")]
pub enum Matcher {
    /// An active ingredient, lower case.
    Ingredient(String),
    /// An ATC prefix, upper case.
    Atc(String),
}

impl Matcher {
    /// `atc:C10AA`, or an ingredient name. Empty text names nothing.
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim();
        if let Some(p) = s.strip_prefix("atc:").or_else(|| s.strip_prefix("ATC:")) {
            let p = p.trim().to_ascii_uppercase();
            let ok = !p.is_empty() && p.len() <= 7 && p.chars().all(|c| c.is_ascii_alphanumeric());
            return ok.then_some(Self::Atc(p));
        }
        (!s.is_empty()).then(|| Self::Ingredient(s.to_lowercase()))
    }

    /// Does `drug` fall under this?
    pub fn matches(&self, drug: &Drug) -> bool {
        match self {
            Self::Ingredient(i) => drug.ingredients.iter().any(|x| x.eq_ignore_ascii_case(i)),
            Self::Atc(p) => drug
                .atc
                .as_deref()
                .is_some_and(|a| a.to_ascii_uppercase().starts_with(p.as_str())),
        }
    }
}

impl fmt::Display for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Ingredient(i) => f.write_str(i),
            Self::Atc(p) => write!(f, "ATC {p}"),
        }
    }
}

/// One row of the interaction table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Interaction {
    /// One side.
    pub a: Matcher,
    /// The other side.
    pub b: Matcher,
    /// Severity.
    pub severity: Severity,
    /// What happens, for the pharmacist.
    pub effect: String,
    /// Where this row comes from.
    pub source: String,
}

/// A table line that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("interaction table line {line}: {message}")]
pub struct TableError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

/// The interaction table: tab-separated `a`, `b`, `severity`, `effect`,
/// `source`, with a header line; `#` starts a comment line.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InteractionTable {
    /// Rows.
    pub rows: Vec<Interaction>,
}

/// The columns, in order.
pub const TABLE_HEADER: [&str; 5] = ["a", "b", "severity", "effect", "source"];

impl InteractionTable {
    /// Read the table; the first bad line is named.
    pub fn parse(text: &str) -> Result<Self, TableError> {
        let mut rows = Vec::new();
        let mut header = false;
        for (n, raw) in text.lines().enumerate() {
            let line = n + 1;
            let bad = |message: String| TableError { line, message };
            let t = raw.trim_end_matches('\r');
            if t.trim().is_empty() || t.trim_start().starts_with('#') {
                continue;
            }
            let cols: Vec<&str> = t.split('\t').map(str::trim).collect();
            if !header {
                if cols != TABLE_HEADER {
                    return Err(bad(format!(
                        "the header must be {} (tab-separated), found {:?}",
                        TABLE_HEADER.join(" "),
                        cols
                    )));
                }
                header = true;
                continue;
            }
            if cols.len() != TABLE_HEADER.len() {
                return Err(bad(format!(
                    "{} columns, expected {} separated by tabs",
                    cols.len(),
                    TABLE_HEADER.len()
                )));
            }
            let side = |s: &str| {
                Matcher::parse(s)
                    .ok_or_else(|| bad(format!("{s:?} names no ingredient or ATC prefix")))
            };
            let severity = Severity::parse(cols[2]).ok_or_else(|| {
                bad(format!(
                    "severity {:?} is not one of severe, moderate, minor",
                    cols[2]
                ))
            })?;
            if cols[3].is_empty() || cols[4].is_empty() {
                return Err(bad("effect and source may not be empty".into()));
            }
            rows.push(Interaction {
                a: side(cols[0])?,
                b: side(cols[1])?,
                severity,
                effect: cols[3].to_owned(),
                source: cols[4].to_owned(),
            });
        }
        if !header {
            return Err(TableError {
                line: 1,
                message: "empty table (no header)".into(),
            });
        }
        Ok(Self { rows })
    }
}

/// Where a drug in the check comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "detail")]
pub enum Origin {
    /// A line of the order under review.
    ThisOrder,
    /// Listed on the patient's eMediplan (current medication).
    Plan,
    /// Dispensed to the patient recently (the order reference).
    Dispensed(String),
}

/// A drug the patient takes or is about to take.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Drug {
    /// What to call it on screen (the product name).
    pub label: String,
    /// Active ingredients (INN).
    pub ingredients: Vec<String>,
    /// ATC code.
    pub atc: Option<String>,
    /// Strength per unit in mg, when it is a plain mass per unit.
    pub strength_mg: Option<f64>,
    /// Units a day, from the dosage instructions.
    pub units_per_day: Option<f64>,
    /// The catalog's maximum daily dose in mg.
    pub max_daily_mg: Option<i64>,
    /// Where it comes from.
    pub origin: Origin,
}

/// A recorded allergy or intolerance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Allergy {
    /// As recorded ("penicillin", "Analgesic allergy (eMediplan 503)").
    pub label: String,
    /// What it covers; empty when not known (shown, never matched silently).
    pub covers: Vec<Matcher>,
}

impl Allergy {
    /// One allergy as staff type it: `penicillins = atc:J01C, amoxicillin`
    /// (a label, then what it covers), or just an ingredient (`amoxicillin`).
    pub fn parse_line(line: &str) -> Option<Self> {
        let line = line.trim();
        if line.is_empty() {
            return None;
        }
        let (label, covers) = match line.split_once('=') {
            Some((l, c)) => (l.trim(), c),
            None => (line, line),
        };
        let covers: Vec<Matcher> = covers.split(',').filter_map(Matcher::parse).collect();
        let label = if label.is_empty() { line } else { label };
        Some(Self {
            label: label.to_owned(),
            covers,
        })
    }

    /// Back to the typed form.
    pub fn to_line(&self) -> String {
        let covers: Vec<String> = self
            .covers
            .iter()
            .map(|m| match m {
                Matcher::Ingredient(i) => i.clone(),
                Matcher::Atc(p) => format!("atc:{p}"),
            })
            .collect();
        let joined = covers.join(", ");
        if joined == self.label {
            joined
        } else {
            format!("{} = {joined}", self.label)
        }
    }
}

/// Allergies an eMediplan records (risk category 6). The code list itself
/// is HCI Solutions' licensed CDSCODE table; only codes whose meaning the
/// published specification states are mapped here (503, "Analgetika-Allergie",
/// from the CHMED23A examples). Every other code comes back with nothing it
/// covers, so the pharmacist is told to check it by hand.
pub fn chmed_allergies(medical: Option<&serde_json::Value>) -> Vec<Allergy> {
    // CHMED16A writes `Rc: [{Id, R}]`, CHMED23A `rcs: [{id, rIds}]`.
    use crate::payload::chmed::field as get;
    let mut out = Vec::new();
    let Some(rcs) = medical
        .and_then(|m| get(m, &["Rc", "rcs"]))
        .and_then(|r| r.as_array())
    else {
        return out;
    };
    for rc in rcs {
        if get(rc, &["Id", "id"]).and_then(serde_json::Value::as_i64) != Some(6) {
            continue;
        }
        let codes = get(rc, &["R", "rIds"]).and_then(|r| r.as_array());
        for code in codes.into_iter().flatten() {
            let Some(code) = code.as_i64() else { continue };
            out.push(match code {
                503 => Allergy {
                    label: "Analgesic allergy (eMediplan risk 503)".into(),
                    covers: vec![Matcher::Atc("N02".into()), Matcher::Atc("M01A".into())],
                },
                other => Allergy {
                    label: format!("eMediplan allergy risk {other}"),
                    covers: Vec::new(),
                },
            });
        }
    }
    out
}

/// The key two records of one patient share: name words in any order and
/// any case, plus the date of birth (`YYYY-MM-DD`).
pub fn match_key(name: &str, birth_date: &str) -> String {
    let mut words: Vec<String> = name
        .split(|c: char| c.is_whitespace() || c == ',')
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect();
    words.sort();
    let dob: String = birth_date.trim().chars().take(10).collect();
    format!("{}|{dob}", words.join(" "))
}

/// What a finding is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// Drug–drug interaction.
    Interaction,
    /// The same ingredient or therapeutic class twice.
    Duplicate,
    /// A recorded allergy.
    Allergy,
    /// Above the maximum daily dose.
    Dose,
}

/// One thing the pharmacist must see.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// Kind.
    pub kind: Kind,
    /// Severity.
    pub severity: Severity,
    /// One line.
    pub title: String,
    /// What it means or what to do.
    pub detail: String,
    /// Where the rule comes from.
    pub source: String,
    /// The drugs involved (labels), sorted.
    pub drugs: Vec<String>,
}

/// ATC level 4 (chemical subgroup, 5 characters): two different
/// ingredients in one subgroup are duplicate therapy.
fn atc_subgroup(atc: &str) -> Option<&str> {
    atc.get(..5)
}

fn pair_labels(a: &Drug, b: &Drug) -> Vec<String> {
    let mut v = vec![a.label.clone(), b.label.clone()];
    v.sort();
    v
}

fn involves_order(a: &Drug, b: &Drug) -> bool {
    a.origin == Origin::ThisOrder || b.origin == Origin::ThisOrder
}

fn fmt_mg(x: f64) -> String {
    if (x - x.round()).abs() < 1e-9 {
        format!("{x:.0} mg")
    } else {
        format!("{x:.1} mg")
    }
}

/// Run every check. Only pairs that involve at least one line of this
/// order are reported: what the patient already took together is not news.
/// The result is sorted (severe first) and free of repeats.
pub fn check(drugs: &[Drug], allergies: &[Allergy], table: &InteractionTable) -> Vec<Finding> {
    let mut out = Vec::new();
    for (i, a) in drugs.iter().enumerate() {
        for b in &drugs[i + 1..] {
            if !involves_order(a, b) {
                continue;
            }
            // Named in a fixed order, so the same pair reads the same whatever
            // order the drugs came in (and repeats collapse).
            let pair = pair_labels(a, b);
            for row in &table.rows {
                let hit = (row.a.matches(a) && row.b.matches(b))
                    || (row.a.matches(b) && row.b.matches(a));
                if hit {
                    out.push(Finding {
                        kind: Kind::Interaction,
                        severity: row.severity,
                        title: format!("{} with {}", pair[0], pair[1]),
                        detail: row.effect.clone(),
                        source: row.source.clone(),
                        drugs: pair_labels(a, b),
                    });
                }
            }
            let shared: Vec<&String> = a
                .ingredients
                .iter()
                .filter(|x| b.ingredients.iter().any(|y| y.eq_ignore_ascii_case(x)))
                .collect();
            let both_new = a.origin == Origin::ThisOrder && b.origin == Origin::ThisOrder;
            if !shared.is_empty() && !both_new {
                // A line with an ingredient the patient already takes is the
                // same therapy continued (a refill, or the generic for the
                // product on the plan), not a duplicate.
            } else if let Some(ing) = shared.first() {
                out.push(Finding {
                    kind: Kind::Duplicate,
                    severity: Severity::Severe,
                    title: format!("{ing} twice: {} and {}", pair[0], pair[1]),
                    detail: "The same active ingredient in two products: the doses add up. Is one meant to replace the other?".into(),
                    source: "same ingredient".into(),
                    drugs: pair_labels(a, b),
                });
            } else if let (Some(x), Some(y)) = (
                a.atc.as_deref().and_then(atc_subgroup),
                b.atc.as_deref().and_then(atc_subgroup),
            ) {
                if x.eq_ignore_ascii_case(y) {
                    out.push(Finding {
                        kind: Kind::Duplicate,
                        severity: Severity::Moderate,
                        title: format!(
                            "Same class ({}): {} and {}",
                            x.to_ascii_uppercase(),
                            pair[0],
                            pair[1]
                        ),
                        detail:
                            "Two drugs of one therapeutic subgroup: check that both are intended."
                                .into(),
                        source: "same ATC level 4".into(),
                        drugs: pair_labels(a, b),
                    });
                }
            }
        }
    }
    for al in allergies {
        if al.covers.is_empty() {
            // An allergy nobody could map: never assume it is harmless.
            if drugs.iter().any(|d| d.origin == Origin::ThisOrder) {
                out.push(Finding {
                    kind: Kind::Allergy,
                    severity: Severity::Moderate,
                    title: format!("Recorded allergy not known to this hub: {}", al.label),
                    detail: "Check it against every line by hand, and record what it covers on the patient's page.".into(),
                    source: "patient record".into(),
                    drugs: Vec::new(),
                });
            }
            continue;
        }
        for d in drugs.iter().filter(|d| d.origin == Origin::ThisOrder) {
            if let Some(m) = al.covers.iter().find(|m| m.matches(d)) {
                out.push(Finding {
                    kind: Kind::Allergy,
                    severity: Severity::Severe,
                    title: format!("{}: patient allergy ({})", d.label, al.label),
                    detail: format!("The patient's record lists an allergy that covers {m}."),
                    source: "patient record".into(),
                    drugs: vec![d.label.clone()],
                });
            }
        }
    }
    out.extend(dose_findings(drugs));
    out.sort_by(|x, y| {
        y.severity
            .cmp(&x.severity)
            .then(x.kind.cmp(&y.kind))
            .then(x.drugs.cmp(&y.drugs))
            .then(x.title.cmp(&y.title))
            .then(x.detail.cmp(&y.detail))
    });
    out.dedup();
    out
}

/// Daily mg per ingredient over this order's single-ingredient lines with a
/// known dose and strength, against the lowest catalog maximum among them.
fn dose_findings(drugs: &[Drug]) -> Vec<Finding> {
    use std::collections::BTreeMap;
    let mut by: BTreeMap<String, (f64, i64, Vec<String>)> = BTreeMap::new();
    for d in drugs.iter().filter(|d| d.origin == Origin::ThisOrder) {
        let ([ing], Some(mg), Some(n), Some(max)) = (
            d.ingredients.as_slice(),
            d.strength_mg,
            d.units_per_day,
            d.max_daily_mg,
        ) else {
            continue;
        };
        let e = by
            .entry(ing.to_lowercase())
            .or_insert((0.0, i64::MAX, Vec::new()));
        e.0 += mg * n;
        e.1 = e.1.min(max);
        e.2.push(d.label.clone());
    }
    by.into_iter()
        .filter(|(_, (total, max, _))| *total > *max as f64 + 1e-9)
        .map(|(ing, (total, max, mut labels))| {
            labels.sort();
            Finding {
                kind: Kind::Dose,
                severity: Severity::Severe,
                title: format!(
                    "{ing}: {} a day, above the maximum of {max} mg",
                    fmt_mg(total)
                ),
                detail: "Check the dosage instructions with the prescriber.".into(),
                source: "catalog maximum daily dose".into(),
                drugs: labels,
            }
        })
        .collect()
}

/// How many findings gate approval.
pub fn severe_count(findings: &[Finding]) -> u32 {
    u32::try_from(
        findings
            .iter()
            .filter(|f| f.severity == Severity::Severe)
            .count(),
    )
    .unwrap_or(u32::MAX)
}

/// Strength per unit in mg from a catalog strength such as `500 mg`,
/// `0.5 g` or `20 mcg`. Concentrations, rates and combinations (`5 mg/ml`,
/// `25 mcg/h`, `875/125 mg`) give `None`: their daily dose is not a
/// multiple of a unit count.
pub fn strength_mg(s: &str) -> Option<f64> {
    let s = s.trim().to_lowercase();
    if s.contains('/') {
        return None;
    }
    let split = s.find(|c: char| !(c.is_ascii_digit() || c == '.' || c == ','))?;
    let (num, unit) = s.split_at(split);
    let x: f64 = num.replace(',', ".").parse().ok()?;
    let factor = match unit.trim() {
        "mg" => 1.0,
        "g" => 1000.0,
        "mcg" | "µg" | "ug" | "μg" => 0.001,
        _ => return None,
    };
    (x.is_finite() && x > 0.0).then_some(x * factor)
}

/// Units a day from dosage instructions as prescriptions write them:
/// `1-0-1-0`, `1-1-1`, `½-0-½`, `1/2-0-1/2`, `0.5-0-1`, `2x daily 1`,
/// `3 x täglich 2`, `1 tablet twice daily`. `None` when the text says
/// something else (as needed, weekly, a taper): the dose check then says
/// nothing rather than guess.
pub fn units_per_day(sig: &str) -> Option<f64> {
    let s = sig.trim().to_lowercase();
    if s.is_empty() {
        return None;
    }
    if s.contains('-') {
        let parts: Vec<&str> = s.split('-').map(str::trim).collect();
        if (2..=6).contains(&parts.len()) {
            let mut sum = 0.0;
            for p in parts {
                sum += amount(p)?;
            }
            return Some(sum);
        }
        return None;
    }
    let words: Vec<&str> = s
        .split(|c: char| c.is_whitespace() || c == ',')
        .filter(|w| !w.is_empty())
        .collect();
    let times = |w: &str| -> Option<f64> {
        match w {
            "once" | "einmal" => Some(1.0),
            "twice" | "zweimal" => Some(2.0),
            _ => {
                let n = w
                    .strip_suffix('x')
                    .or_else(|| w.strip_suffix('×'))
                    .unwrap_or(w);
                amount(n)
            }
        }
    };
    let daily = ["daily", "täglich", "tgl", "tgl.", "day"];
    let is_daily = words.iter().any(|w| daily.contains(w))
        || s.contains("a day")
        || s.contains("par jour")
        || s.contains("al giorno");
    if !is_daily {
        return None;
    }
    // "<n>x daily <m>" or "<m> tablet(s) <n> times daily" / "twice daily".
    let mut freq = None;
    let mut per = None;
    for (i, w) in words.iter().enumerate() {
        let next = words.get(i + 1).copied().unwrap_or("");
        let is_freq_word = w.ends_with('x')
            || w.ends_with('×')
            || *w == "once"
            || *w == "twice"
            || *w == "einmal"
            || *w == "zweimal"
            || (matches!(next, "x" | "×" | "times" | "mal" | "fois" | "volte"));
        if let Some(n) = times(w) {
            if is_freq_word && freq.is_none() {
                freq = Some(n);
            } else if per.is_none() && amount(w).is_some() {
                per = Some(n);
            }
        }
    }
    if freq.is_none() && per.is_none() {
        return None;
    }
    Some(freq.unwrap_or(1.0) * per.unwrap_or(1.0))
}

fn amount(p: &str) -> Option<f64> {
    let p = p.trim();
    match p {
        "½" => return Some(0.5),
        "¼" => return Some(0.25),
        "¾" => return Some(0.75),
        "1½" => return Some(1.5),
        _ => {}
    }
    if let Some((a, b)) = p.split_once('/') {
        let (a, b): (f64, f64) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
        return (b > 0.0 && a >= 0.0).then(|| a / b);
    }
    let x: f64 = p.replace(',', ".").parse().ok()?;
    (x.is_finite() && (0.0..=100.0).contains(&x)).then_some(x)
}

/// Units a day from an eMediplan dosage row (`D`: morning, midday, evening,
/// night).
pub fn units_per_day_of(daily: &[f64]) -> Option<f64> {
    let ok = !daily.is_empty() && daily.iter().all(|x| x.is_finite() && *x >= 0.0);
    ok.then(|| daily.iter().sum())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const TABLE: &str = "# test table\n\
a\tb\tseverity\teffect\tsource\n\
simvastatin\tclarithromycin\tsevere\tMyopathy and rhabdomyolysis.\tZocor label\n\
warfarin\tatc:M01A\tmoderate\tBleeding.\tHL7 PDDI-CDS\n";

    fn drug(label: &str, ing: &str, atc: &str, origin: Origin) -> Drug {
        Drug {
            label: label.into(),
            ingredients: vec![ing.into()],
            atc: Some(atc.into()),
            strength_mg: None,
            units_per_day: None,
            max_daily_mg: None,
            origin,
        }
    }

    fn table() -> InteractionTable {
        InteractionTable::parse(TABLE).unwrap()
    }

    #[test]
    fn an_interaction_is_found_in_either_order_and_by_atc_class() {
        let s = drug("Zocor 20 mg", "simvastatin", "C10AA01", Origin::ThisOrder);
        let c = drug("Biaxin 500 mg", "clarithromycin", "J01FA09", Origin::Plan);
        for pair in [vec![s.clone(), c.clone()], vec![c.clone(), s.clone()]] {
            let f = check(&pair, &[], &table());
            assert_eq!(f.len(), 1, "{f:?}");
            assert_eq!(f[0].kind, Kind::Interaction);
            assert_eq!(f[0].severity, Severity::Severe);
            assert_eq!(f[0].source, "Zocor label");
            assert_eq!(f[0].drugs, vec!["Biaxin 500 mg", "Zocor 20 mg"]);
        }
        let w = drug(
            "Coumadin 5 mg",
            "warfarin",
            "B01AA03",
            Origin::Dispensed("A1B2C3".into()),
        );
        let i = drug("Brufen 400 mg", "ibuprofen", "M01AE01", Origin::ThisOrder);
        let f = check(&[w, i], &[], &table());
        assert_eq!(f.len(), 1);
        assert_eq!(
            (f[0].kind, f[0].severity),
            (Kind::Interaction, Severity::Moderate)
        );
        assert_eq!(severe_count(&f), 0);
    }

    #[test]
    fn pairs_outside_this_order_are_not_reported() {
        let s = drug("Zocor 20 mg", "simvastatin", "C10AA01", Origin::Plan);
        let c = drug(
            "Biaxin 500 mg",
            "clarithromycin",
            "J01FA09",
            Origin::Dispensed("X".into()),
        );
        assert!(check(&[s, c], &[], &table()).is_empty());
    }

    #[test]
    fn duplicates_by_ingredient_are_severe_and_by_class_moderate() {
        let a = drug(
            "Panadol 500 mg",
            "acetaminophen",
            "N02BE01",
            Origin::ThisOrder,
        );
        let b = drug(
            "Acetaminophen 500 mg tablets",
            "acetaminophen",
            "N02BE01",
            Origin::ThisOrder,
        );
        let f = check(&[a.clone(), b.clone()], &[], &table());
        assert_eq!(f.len(), 1);
        assert_eq!(
            (f[0].kind, f[0].severity),
            (Kind::Duplicate, Severity::Severe)
        );
        // The generic of a product on the plan, or a refill: the same therapy.
        for origin in [Origin::Plan, Origin::Dispensed("R".into())] {
            let b = Drug {
                origin,
                ..b.clone()
            };
            assert!(check(&[a.clone(), b], &[], &table()).is_empty());
        }
        let c = drug("Zoloft 50 mg", "sertraline", "N06AB06", Origin::ThisOrder);
        let d = drug(
            "Cipralex 10 mg",
            "escitalopram",
            "N06AB10",
            Origin::ThisOrder,
        );
        let f = check(&[c, d], &[], &table());
        assert_eq!(f.len(), 1);
        assert_eq!(
            (f[0].kind, f[0].severity),
            (Kind::Duplicate, Severity::Moderate)
        );
        assert!(f[0].title.contains("N06AB"), "{}", f[0].title);
    }

    #[test]
    fn allergies_match_ingredients_and_classes_and_unknown_ones_are_shown() {
        let amox = drug(
            "Amoxil 1000 mg",
            "amoxicillin",
            "J01CA04",
            Origin::ThisOrder,
        );
        let pen = Allergy {
            label: "penicillins".into(),
            covers: vec![Matcher::parse("atc:J01C").unwrap()],
        };
        let f = check(std::slice::from_ref(&amox), &[pen], &table());
        assert_eq!(f.len(), 1);
        assert_eq!(
            (f[0].kind, f[0].severity),
            (Kind::Allergy, Severity::Severe)
        );
        let unknown = Allergy {
            label: "eMediplan allergy code 555".into(),
            covers: vec![],
        };
        let f = check(&[amox], &[unknown], &table());
        assert_eq!(f.len(), 1);
        assert_eq!(
            (f[0].kind, f[0].severity),
            (Kind::Allergy, Severity::Moderate)
        );
        assert!(f[0].title.contains("555"));
    }

    #[test]
    fn the_daily_dose_adds_up_over_lines_of_one_ingredient() {
        let mut a = drug(
            "Panadol 500 mg",
            "acetaminophen",
            "N02BE01",
            Origin::ThisOrder,
        );
        a.strength_mg = strength_mg("500 mg");
        a.max_daily_mg = Some(4000);
        a.units_per_day = units_per_day("2-2-2-1");
        // 3500 mg: under the maximum alone.
        let f = check(std::slice::from_ref(&a), &[], &InteractionTable::default());
        assert!(f.is_empty(), "{f:?}");
        let mut b = a.clone();
        b.label = "Acetaminophen 500 mg tablets".into();
        b.units_per_day = units_per_day("1-0-1-0");
        let f = check(&[a, b], &[], &InteractionTable::default());
        let dose: Vec<_> = f.iter().filter(|x| x.kind == Kind::Dose).collect();
        assert_eq!(dose.len(), 1, "{f:?}");
        assert!(dose[0].title.contains("4500 mg a day"), "{}", dose[0].title);
        assert_eq!(dose[0].severity, Severity::Severe);
    }

    #[test]
    fn strengths_and_dosage_instructions_are_read_or_refused() {
        assert_eq!(strength_mg("500 mg"), Some(500.0));
        assert_eq!(strength_mg("0.5 g"), Some(500.0));
        assert_eq!(strength_mg("2,5 mg"), Some(2.5));
        assert_eq!(strength_mg("20 mcg"), Some(0.02));
        for s in [
            "5 mg/ml",
            "25 mcg/h",
            "875/125 mg",
            "100 U/ml",
            "1 %",
            "",
            "mg",
        ] {
            assert_eq!(strength_mg(s), None, "{s}");
        }
        for (sig, n) in [
            ("1-0-1-0", 2.0),
            ("1-1-1", 3.0),
            ("½-0-½", 1.0),
            ("1/2-0-1/2-0", 1.0),
            ("0.5-0-1", 1.5),
            ("2x daily 1", 2.0),
            ("3 x täglich 2", 6.0),
            ("1 tablet twice daily", 2.0),
            ("2 tablets 3 times a day", 6.0),
            ("once daily", 1.0),
            ("1 tablet a day", 1.0),
            ("1 cp par jour", 1.0),
        ] {
            assert_eq!(units_per_day(sig), Some(n), "{sig}");
        }
        for sig in ["as needed", "1 weekly", "", "1-x-1", "take with food"] {
            assert_eq!(units_per_day(sig), None, "{sig}");
        }
        assert_eq!(units_per_day_of(&[1.0, 0.0, 1.0, 0.0]), Some(2.0));
        assert_eq!(units_per_day_of(&[]), None);
    }

    #[test]
    fn a_bad_table_line_is_named() {
        let e = InteractionTable::parse("a\tb\tseverity\teffect\tsource\nx\ty\tawful\te\ts\n")
            .unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.to_string().contains("awful"), "{e}");
        let e = InteractionTable::parse("a,b,severity\n").unwrap_err();
        assert_eq!(e.line, 1);
        let e = InteractionTable::parse("a\tb\tseverity\teffect\tsource\n\n# c\nx\ty\tsevere\n")
            .unwrap_err();
        assert_eq!(e.line, 4);
        let e = InteractionTable::parse("a\tb\tseverity\teffect\tsource\natc:\ty\tsevere\te\ts\n")
            .unwrap_err();
        assert_eq!(e.line, 2);
    }

    #[test]
    fn allergies_read_as_typed_and_from_the_emediplan() {
        let a = Allergy::parse_line("penicillins = atc:J01C, amoxicillin").unwrap();
        assert_eq!(a.label, "penicillins");
        assert_eq!(
            a.covers,
            vec![
                Matcher::Atc("J01C".into()),
                Matcher::Ingredient("amoxicillin".into())
            ]
        );
        assert_eq!(Allergy::parse_line(&a.to_line()), Some(a));
        let b = Allergy::parse_line("Ibuprofen").unwrap();
        assert_eq!(b.covers, vec![Matcher::Ingredient("ibuprofen".into())]);
        assert_eq!(Allergy::parse_line("  "), None);
        // The specification's CHMED16A example: allergies 555 and 571, plus
        // other risk categories that are not allergies.
        let med: serde_json::Value =
            serde_json::json!({"Rc":[{"Id":1,"R":[577]},{"Id":2},{"Id":6,"R":[555,503]}]});
        let al = chmed_allergies(Some(&med));
        assert_eq!(al.len(), 2);
        assert!(al[0].covers.is_empty() && al[0].label.contains("555"));
        assert_eq!(
            al[1].covers,
            vec![Matcher::Atc("N02".into()), Matcher::Atc("M01A".into())]
        );
        assert!(chmed_allergies(None).is_empty());
        // CHMED23A's camelCase form, as in its first example.
        let med23 = serde_json::json!({"rcs":[{"id":1,"rIds":[577]},{"id":3},{"id":6,"rIds":[503]}],"w":70.0});
        let al = chmed_allergies(Some(&med23));
        assert_eq!(al.len(), 1);
        assert_eq!(
            al[0].covers,
            vec![Matcher::Atc("N02".into()), Matcher::Atc("M01A".into())]
        );
    }

    #[test]
    fn one_patient_matches_whatever_the_name_order_and_case() {
        assert_eq!(
            match_key("Maxima Matter", "1981-01-12"),
            match_key("MATTER,  maxima", "1981-01-12T00:00:00")
        );
        assert_ne!(
            match_key("Maxima Matter", "1981-01-12"),
            match_key("Maxima Matter", "1981-01-13")
        );
    }

    fn any_drug() -> impl Strategy<Value = Drug> {
        let ings = prop::sample::select(vec![
            "simvastatin",
            "clarithromycin",
            "warfarin",
            "ibuprofen",
            "acetaminophen",
            "sertraline",
        ]);
        let atcs = prop::sample::select(vec![
            "C10AA01", "J01FA09", "B01AA03", "M01AE01", "N02BE01", "N06AB06", "M01AE02",
        ]);
        let origin = prop_oneof![
            Just(Origin::ThisOrder),
            Just(Origin::Plan),
            Just(Origin::Dispensed("R".into()))
        ];
        (ings, atcs, origin, 0u8..4, prop::option::of(0.0f64..10.0)).prop_map(|(i, a, o, n, u)| {
            Drug {
                label: format!("{i} {n}"),
                ingredients: vec![i.into()],
                atc: Some(a.into()),
                strength_mg: Some(500.0),
                units_per_day: u,
                max_daily_mg: Some(4000),
                origin: o,
            }
        })
    }

    proptest! {
        /// The findings do not depend on the order the drugs come in.
        #[test]
        fn findings_do_not_depend_on_order(drugs in prop::collection::vec(any_drug(), 0..7), seed in any::<u64>()) {
            let t = table();
            let a = check(&drugs, &[], &t);
            let mut shuffled = drugs.clone();
            let n = shuffled.len();
            if n > 1 {
                for i in 0..n {
                    let j = usize::try_from(seed.rotate_left(u32::try_from(i).unwrap_or(0)) % n as u64).unwrap_or(0);
                    shuffled.swap(i, j);
                }
            }
            let b = check(&shuffled, &[], &t);
            // Titles name the pair in list order; compare what matters.
            let key = |f: &Finding| (f.kind, f.severity, f.drugs.clone(), f.source.clone());
            let mut ka: Vec<_> = a.iter().map(key).collect();
            let mut kb: Vec<_> = b.iter().map(key).collect();
            ka.sort();
            kb.sort();
            prop_assert_eq!(ka, kb);
        }

        /// Every finding involves a line of this order, and nothing is
        /// found for an order without lines.
        #[test]
        fn findings_always_involve_this_order(drugs in prop::collection::vec(any_drug(), 0..7)) {
            let f = check(&drugs, &[], &table());
            let ours: Vec<&str> = drugs.iter().filter(|d| d.origin == Origin::ThisOrder).map(|d| d.label.as_str()).collect();
            if ours.is_empty() {
                prop_assert!(f.is_empty());
            }
            for x in &f {
                prop_assert!(x.drugs.iter().any(|l| ours.contains(&l.as_str())), "{:?}", x);
            }
            prop_assert_eq!(severe_count(&f) as usize, f.iter().filter(|x| x.severity == Severity::Severe).count());
        }
    }
}
