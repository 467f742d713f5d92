//! Recognised words → a draft prescription. Pure: no engine, no I/O, so
//! every rule here is unit-tested on word lists.
//!
//! The extractor reads what prescriptions in Switzerland look like in four
//! languages: a letterhead with "Rp." lines and a signa under each drug, a
//! hospital form with Medication | Strength | Dose | Qty columns, and the
//! eMediplan table with Morgen/Mittag/Abend/Nacht columns.

use super::layout::{bbox_of, mean_conf, BBox, Layout, Segment, Word};
use super::vocab::{Lookup, Match};
use regex::Regex;
use serde::Serialize;
use std::sync::LazyLock;

/// One extracted value, with how sure the machine is and where it read it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Field {
    /// The value, normalised (dates as `YYYY-MM-DD`).
    pub value: String,
    /// 0–1: the engine's confidence in the words, lowered by fuzzy matching.
    pub confidence: f32,
    /// Where on the image the value was read.
    pub bbox: BBox,
}

/// The patient as printed.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Patient {
    /// Name.
    pub name: Option<Field>,
    /// Date of birth.
    pub birth_date: Option<Field>,
}

/// The prescriber as printed.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Prescriber {
    /// Name with title.
    pub name: Option<Field>,
    /// GLN (13 digits, check digit verified).
    pub gln: Option<Field>,
}

/// One prescribed item.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Item {
    /// The drug name as read.
    pub name: String,
    /// The vocabulary entry it matched, if any.
    pub matched: Option<Match>,
    /// Strength, e.g. `500 mg`.
    pub strength: Option<String>,
    /// Form words as printed (`Filmtabl`, `Tablette`).
    pub form: Option<String>,
    /// Dose as morning-noon-evening-night units, e.g. `1-0-1-0`.
    pub dose: Option<String>,
    /// The dosage text as printed.
    pub sig: Option<String>,
    /// Packs.
    pub quantity: Option<u32>,
    /// Repeats allowed.
    pub repeats: Option<u32>,
    /// The lowest confidence of name, strength and dose.
    pub confidence: f32,
    /// Per field: `name`, `strength`, `dose`, `quantity`.
    pub fields: std::collections::BTreeMap<&'static str, Field>,
}

/// The draft a pharmacist reviews.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Draft {
    /// The page's text, line by line.
    pub text: String,
    /// `de`, `fr`, `it` or `en`: which language's words the page uses most.
    pub language: String,
    /// Patient.
    pub patient: Patient,
    /// Prescriber.
    pub prescriber: Prescriber,
    /// Date of the prescription.
    pub date: Option<Field>,
    /// Items.
    pub items: Vec<Item>,
    /// Free-text notes.
    pub notes: Option<Field>,
}

#[allow(clippy::expect_used)] // Constant patterns, checked by the tests.
fn re(p: &str) -> Regex {
    Regex::new(p).expect("constant regex")
}

static STRENGTH: LazyLock<Regex> = LazyLock::new(|| {
    re(r"(?ix)
        (?P<num>\d+(?:[.,]\d+)?(?:\s*/\s*\d+(?:[.,]\d+)?)*)
        \s*
        (?P<unit>mg|mcg|µg|μg|ug|g|ml|i\.?e\.?|u\.?i\.?|iu|u|mmol|%)
        (?:\s*/\s*(?P<per>\d+(?:[.,]\d+)?\s*(?:ml|g|h|dose|hub|l))|\s*/\s*(?P<per2>ml|g|h|dose|hub|l))?
        (?:\b|$|[^a-z])")
});
static DATE: LazyLock<Regex> = LazyLock::new(|| {
    re(r"(?x)
        \b(?P<d>[0-3]?\d)[./](?P<m>[01]?\d)[./](?P<y>(?:19|20)\d\d)\b
        |\b(?P<y2>(?:19|20)\d\d)-(?P<m2>[01]\d)-(?P<d2>[0-3]\d)\b")
});
static GLN: LazyLock<Regex> = LazyLock::new(|| re(r"\b(7\d(?:\s?\d){11})\b"));
static DASH_SIG: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"(?P<s>(?:\d+(?:[.,]\d+)?|½|¼|¾|1/2|1/4)(?:\s*[-–—]\s*(?:\d+(?:[.,]\d+)?|½|¼|¾|1/2|1/4)){2,3})",
    )
});
static QTY: LazyLock<Regex> = LazyLock::new(|| {
    re(r"(?ix)
        (?:\bOP\b|menge|packungen?|qt[ée]|quantit[àaée]|qty|quantity|conf\.?|confezioni?|boîtes?|emballages?|packs?)
        \s*[:.]?\s*(?P<n>\d{1,3})\b
        |\b(?P<n2>\d{1,3})\s*(?:x\s*)?(?:OP|packungen?|packs?|boîtes?|boite|confezioni|confezione|conf|schachteln?|emb|pkg|pck)\b")
});
static REPEATS: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"(?i)(?:wiederhol\w*|repet\w*|renouvel\w*|ripet\w*|repeats?|rep\.)\s*[:.]?\s*(?P<n>\d{1,2})",
    )
});
static REPEATS_BEFORE: LazyLock<Regex> =
    LazyLock::new(|| re(r"(?i)(?P<n>\d{1,2})\s*(?:x|mal)?\s*wiederhol"));

/// Dosage-form words, in the four languages and the usual abbreviations.
const FORMS: &[&str] = &[
    "tabl",
    "tablette",
    "tabletten",
    "filmtabl",
    "filmtablette",
    "filmtabletten",
    "tbl",
    "tab",
    "tablet",
    "tablets",
    "kaps",
    "kapsel",
    "kapseln",
    "caps",
    "capsule",
    "capsules",
    "gélule",
    "gélules",
    "comprimé",
    "comprimés",
    "cpr",
    "compresse",
    "compressa",
    "compresse",
    "rivestite",
    "pelliculés",
    "pelliculé",
    "filmcoated",
    "film-coated",
    "inj",
    "injektion",
    "lös",
    "lösung",
    "solution",
    "soluzione",
    "sirup",
    "sirop",
    "sciroppo",
    "syrup",
    "tropfen",
    "gouttes",
    "gocce",
    "drops",
    "salbe",
    "crème",
    "creme",
    "cream",
    "pommade",
    "gel",
    "spray",
    "pen",
    "fertigspritze",
    "spritze",
    "supp",
    "suppositorien",
    "zäpfchen",
    "pflaster",
    "patch",
    "inhaler",
    "dosieraerosol",
    "brausetabl",
    "retardtabl",
    "retard",
    "ret",
    "depot",
    "amp",
    "ampulle",
    "ampoule",
    "fiala",
    "stk",
    "st",
    "susp",
    "suspension",
    "granulat",
    "sachet",
    "beutel",
    "bustina",
    "orodispersible",
    "schmelztabl",
    "lutschtabl",
    "mite",
    "forte",
    "bustine",
    "penna",
    "preriempita",
    "fertigpen",
    "stylo",
    "prérempli",
    "riv",
    "pell",
    "comprimes",
    "dosieraerosol",
    "hübe",
    "aerosol",
];

fn is_form(w: &str) -> bool {
    let k: String = w
        .trim_matches(|c: char| !c.is_alphanumeric())
        .to_lowercase();
    if k.is_empty() {
        return false;
    }
    if FORMS.contains(&k.as_str()) {
        return true;
    }
    // OCR reads `Tabl` as `Tabi` or `Tab1`: one confusion in four letters.
    let folded = k.replace(['1', 'i', '|'], "l");
    k.chars().count() >= 4
        && FORMS.iter().any(|f| {
            f.chars().count() >= 4
                && strsim::levenshtein(&folded, &f.replace('i', "l")) <= 1
                && f.len().abs_diff(k.len()) <= 1
        })
}

/// Prescription-line decorations that are not part of a drug name.
fn is_noise(w: &str) -> bool {
    let k = w
        .trim_matches(|c: char| !c.is_alphanumeric())
        .to_lowercase();
    k.is_empty()
        || matches!(
            k.as_str(),
            "rp" | "rx" | "r" | "prescr" | "ordonnance" | "ricetta"
        )
        || k.chars().all(|c| c.is_ascii_digit())
}

/// Finds a strength in a text: `(start, end, normalised)`, e.g. `500 mg`,
/// `800/160 mg`, `10 mg/2 ml`.
pub fn find_strength(text: &str) -> Option<(usize, usize, String)> {
    // "Pen 3 ml 6 mg/ml": the pack's volume comes first, the strength after.
    let all: Vec<regex::Captures> = STRENGTH.captures_iter(text).collect();
    let c = all
        .iter()
        .find(|c| {
            let unit = c.name("unit").map_or("", |u| u.as_str()).to_lowercase();
            unit != "ml" || c.name("per").is_some() || c.name("per2").is_some()
        })
        .or(all.first())?;
    let all = c.get(0)?;
    let num = c.name("num")?.as_str();
    let unit = c.name("unit")?.as_str().to_lowercase();
    let num: String = num
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .replace(',', ".");
    let unit = match unit.replace('.', "").as_str() {
        "ie" | "ui" | "iu" => "IE".to_string(),
        "u" => "U".to_string(),
        "µg" | "μg" | "ug" => "mcg".to_string(),
        u => u.to_string(),
    };
    let per = c.name("per").or_else(|| c.name("per2")).map(|p| {
        p.as_str()
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect::<String>()
            .to_lowercase()
    });
    let end = c
        .name("per")
        .or_else(|| c.name("per2"))
        .map_or(c.name("unit")?.end(), |p| p.end());
    let s = match per {
        Some(p) => format!("{num} {unit}/{p}"),
        None => format!("{num} {unit}"),
    };
    Some((all.start(), end, s))
}

/// A date in any printed form as `YYYY-MM-DD`, with its byte range.
pub fn find_date(text: &str) -> Option<(usize, usize, String)> {
    for c in DATE.captures_iter(text) {
        let (d, m, y) = match (c.name("d"), c.name("m"), c.name("y")) {
            (Some(d), Some(m), Some(y)) => (d.as_str(), m.as_str(), y.as_str()),
            _ => match (c.name("d2"), c.name("m2"), c.name("y2")) {
                (Some(d), Some(m), Some(y)) => (d.as_str(), m.as_str(), y.as_str()),
                _ => continue,
            },
        };
        let (Ok(d), Ok(m), Ok(y)) = (d.parse::<u32>(), m.parse::<u32>(), y.parse::<i32>()) else {
            continue;
        };
        if chrono::NaiveDate::from_ymd_opt(y, m, d).is_some() {
            let g = c.get(0)?;
            return Some((g.start(), g.end(), format!("{y:04}-{m:02}-{d:02}")));
        }
    }
    None
}

fn amount(p: &str) -> Option<f64> {
    match p.trim() {
        "½" | "1/2" => Some(0.5),
        "¼" | "1/4" => Some(0.25),
        "¾" => Some(0.75),
        "-" | "–" | "—" | "0" => Some(0.0),
        p => {
            let x: f64 = p.replace(',', ".").parse().ok()?;
            (x.is_finite() && (0.0..=20.0).contains(&x)).then_some(x)
        }
    }
}

/// A dose-column cell's amount. In a dose column a lone `%` is the `½`
/// glyph as Tesseract's models read it; a percentage cannot stand there.
fn cell_amount(t: &str) -> Option<f64> {
    let t = t.trim_matches(|c: char| c == '|' || c == '\'' || c == '‘' || c == '.');
    match t {
        // The ½ glyph as Tesseract's models read it.
        "%" | "Y2" | "y2" | "1⁄2" | "Vo" | "Va" | "V2" | "Ya" => Some(0.5),
        t => amount(t),
    }
}

/// A dose as morning-noon-evening-night, `1-0-0.5-0`.
pub fn format_dose(d: [f64; 4]) -> String {
    d.iter()
        .map(|x| {
            let s = format!("{x:.2}");
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        })
        .collect::<Vec<_>>()
        .join("-")
}

const MORNING: &[&str] = &[
    "morgens",
    "morgen",
    "früh",
    "matin",
    "mattino",
    "mattina",
    "morning",
    "breakfast",
];
const NOON: &[&str] = &[
    "mittags",
    "mittag",
    "midi",
    "mezzogiorno",
    "pranzo",
    "noon",
    "midday",
    "lunch",
];
const EVENING: &[&str] = &[
    "abends", "abend", "soir", "sera", "evening", "supper", "dinner",
];
const NIGHT: &[&str] = &[
    "nachts", "nacht", "nuit", "coucher", "notte", "dormire", "night", "bedtime",
];

/// Dosage text → units at morning, noon, evening and night. Reads the
/// dash form (`1-0-1-0`, `½-0-½`), and "n times a day m units" in German,
/// French, Italian and English, with the time-of-day words.
pub fn parse_sig(sig: &str) -> Option<[f64; 4]> {
    // Tesseract reads the ½ glyph as "%": in a dosage, a percentage
    // cannot stand, so it is the half it was printed as.
    let s = sig.to_lowercase().replace('%', "½");
    if let Some(c) = DASH_SIG.captures(&s) {
        let parts: Vec<f64> = c
            .name("s")?
            .as_str()
            .split(['-', '–', '—'])
            .map(amount)
            .collect::<Option<Vec<_>>>()?;
        let mut d = [0.0; 4];
        for (i, p) in parts.iter().take(4).enumerate() {
            d[i] = *p;
        }
        return (d.iter().sum::<f64>() > 0.0).then_some(d);
    }
    // As needed, or "up to n a day": a maximum, not a schedule.
    const PRN: &[&str] = &[
        "bei bedarf",
        "max",
        "bis zu",
        "si besoin",
        "au besoin",
        "al bisogno",
        "se necessario",
        "as needed",
        "prn",
        "jusqu'à",
        "fino a",
    ];
    if PRN.iter().any(|p| s.contains(p)) {
        return None;
    }
    let words: Vec<String> = s
        .split(|c: char| c.is_whitespace() || c == ',' || c == ';' || c == ':')
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect();
    let has = |list: &[&str]| words.iter().any(|w| list.contains(&w.trim_matches('.')));
    let times_words = ["x", "×", "mal", "fois", "volte", "volta", "times", "time"];
    let daily = s.contains("täglich")
        || s.contains("tgl")
        || s.contains("par jour")
        || s.contains("al giorno")
        || s.contains("daily")
        || s.contains("a day")
        || s.contains("per day")
        || s.contains("pro tag")
        || s.contains("/j")
        || s.contains("/die");
    let mut freq: Option<f64> = None;
    let mut per: Option<f64> = None;
    for (i, w) in words.iter().enumerate() {
        let next = words.get(i + 1).map(String::as_str).unwrap_or("");
        let word_freq = match w.as_str() {
            "once" | "einmal" => Some(1.0),
            "twice" | "zweimal" | "deux" | "due" => Some(2.0),
            "dreimal" | "trois" | "tre" | "thrice" => Some(3.0),
            "viermal" | "quatre" | "quattro" => Some(4.0),
            _ => None,
        };
        let bare = w
            .strip_suffix("x")
            .or_else(|| w.strip_suffix('×'))
            .or_else(|| w.strip_suffix("-mal"))
            .or_else(|| w.strip_suffix("mal"));
        if let Some(n) = bare.and_then(amount).filter(|n| *n > 0.0) {
            freq.get_or_insert(n);
            continue;
        }
        if let Some(n) = word_freq {
            if matches!(next, "daily" | "a" | "täglich" | "par" | "al" | "per")
                || times_words.contains(&next)
                || w == "once"
                || w == "twice"
                || w == "einmal"
                || w == "zweimal"
            {
                freq.get_or_insert(n);
                continue;
            }
        }
        if let Some(n) = amount(w).filter(|n| *n > 0.0) {
            if times_words.contains(&next) {
                freq.get_or_insert(n);
            } else {
                per.get_or_insert(n);
            }
        }
    }
    let slots = [has(MORNING), has(NOON), has(EVENING), has(NIGHT)];
    let named = slots.iter().filter(|b| **b).count();
    let per = per.unwrap_or(1.0);
    if named > 0 && freq.is_none_or(|f| f as usize == named) {
        let mut d = [0.0; 4];
        for (i, on) in slots.iter().enumerate() {
            if *on {
                d[i] = per;
            }
        }
        return Some(d);
    }
    if !daily && freq.is_none() {
        return None;
    }
    let pattern: [f64; 4] = match freq.unwrap_or(1.0) as u32 {
        1 => [1.0, 0.0, 0.0, 0.0],
        2 => [1.0, 0.0, 1.0, 0.0],
        3 => [1.0, 1.0, 1.0, 0.0],
        4 => [1.0, 1.0, 1.0, 1.0],
        _ => return None,
    };
    Some(pattern.map(|x| x * per))
}

/// Which language a page is in, by its form words.
fn language(text: &str) -> &'static str {
    let t = text.to_lowercase();
    let score = |ws: &[&str]| ws.iter().filter(|w| t.contains(*w)).count();
    let scores = [
        (
            "de",
            score(&[
                "geburtsdatum",
                "täglich",
                "morgen",
                "abend",
                "packung",
                "bemerkung",
                "datum",
                "tablette",
                "arzt",
                "menge",
                "unterschrift",
            ]),
        ),
        (
            "fr",
            score(&[
                "né",
                "par jour",
                "matin",
                "soir",
                "comprimé",
                "remarque",
                "médecin",
                "qté",
                "ordonnance",
                "signature",
            ]),
        ),
        (
            "it",
            score(&[
                "nato",
                "nata",
                "al giorno",
                "mattino",
                "sera",
                "compress",
                "osservazion",
                "medico",
                "ricetta",
                "firma",
                "quantità",
            ]),
        ),
        (
            "en",
            score(&[
                "date of birth",
                "daily",
                "morning",
                "evening",
                "tablet",
                "notes",
                "prescriber",
                "qty",
                "signature",
                "patient name",
            ]),
        ),
    ];
    scores
        .iter()
        .max_by_key(|(_, s)| *s)
        .map_or("de", |(l, _)| l)
}

fn field_of(words: &[Word], value: String) -> Field {
    Field {
        value,
        confidence: mean_conf(words),
        bbox: bbox_of(words),
    }
}

/// The words of a segment whose text lies in byte range `[a, b)` of
/// `seg.text()`.
fn words_in_range(seg: &Segment, a: usize, b: usize) -> Vec<Word> {
    let mut pos = 0;
    let mut out = Vec::new();
    for w in &seg.words {
        let end = pos + w.text.len();
        if end > a && pos < b {
            out.push(w.clone());
        }
        pos = end + 1;
    }
    out
}

fn norm_kw(w: &str) -> String {
    w.trim_matches(|c: char| !c.is_alphanumeric())
        .to_lowercase()
}

/// The value after a keyword: the rest of its segment after the keyword
/// (and a colon), or else the next segment on the line, or else the line
/// below in the same column.
fn value_after(layout: &Layout, keys: &[&str]) -> Option<(Vec<Word>, String)> {
    value_after_where(layout, keys, false)
}

/// As [`value_after`]; with `labelled`, the keyword must be a label: at the
/// start of its segment or followed by a colon ("Patient: …", not "the
/// patient is …").
fn value_after_where(
    layout: &Layout,
    keys: &[&str],
    labelled: bool,
) -> Option<(Vec<Word>, String)> {
    for (li, line) in layout.lines.iter().enumerate() {
        for (si, seg) in line.iter().enumerate() {
            let t = seg.text().to_lowercase();
            for k in keys {
                let Some(pos) = t.find(k) else { continue };
                // The keyword must start a word.
                if pos > 0 && t[..pos].chars().last().is_some_and(char::is_alphanumeric) {
                    continue;
                }
                let after = pos + k.len();
                if labelled && pos > 0 && !t[after..].trim_start().starts_with(':') {
                    continue;
                }
                let rest: Vec<Word> = words_in_range(seg, after, t.len())
                    .into_iter()
                    .filter(|w| {
                        let n = norm_kw(w.text.as_str());
                        !n.is_empty()
                            && !k.contains(&n)
                            && !matches!(n.as_str(), "in" | "e" | "le" | "il" | "la")
                    })
                    .collect();
                if !rest.is_empty() {
                    let s = super::layout::join(&rest);
                    return Some((rest, s));
                }
                if let Some(next) = line.get(si + 1) {
                    return Some((next.words.clone(), next.text()));
                }
                // The line below, starting under the keyword.
                if let Some(below) = layout.lines.get(li + 1) {
                    if let Some(s) = below.iter().find(|s| {
                        s.bbox.x + layout.unit as u32 * 2 >= seg.bbox.x
                            && s.bbox.x <= seg.bbox.x + seg.bbox.w
                    }) {
                        return Some((s.words.clone(), s.text()));
                    }
                }
            }
        }
    }
    None
}

fn find_patient(layout: &Layout) -> Patient {
    let mut p = Patient::default();
    const DOB: &[&str] = &[
        "geburtsdatum",
        "geb.",
        "geboren",
        "né(e) le",
        "née le",
        "né le",
        "date de naissance",
        "nato il",
        "nata il",
        "nato/a il",
        "data di nascita",
        "date of birth",
        "dob",
        "birth date",
    ];
    if let Some((ws, text)) = value_after(layout, DOB) {
        if let Some((a, b, iso)) = find_date(&text) {
            let sub = text_words(&ws, a, b);
            p.birth_date = Some(field_of(&sub, iso));
        }
    }
    const NAME: &[&str] = &[
        "patient(in)",
        "patientin",
        "patient name",
        "patient",
        "patiente",
        "paziente",
        "name",
        "nom",
        "nome",
        "cognome",
    ];
    if let Some((ws, text)) = value_after_where(layout, NAME, true) {
        // Stop at a birth-date keyword or a date on the same line.
        let cut = DOB
            .iter()
            .filter_map(|k| text.to_lowercase().find(k))
            .chain(find_date(&text).map(|d| d.0))
            .min()
            .unwrap_or(text.len());
        let sub = text_words(&ws, 0, cut);
        let name = super::layout::join(&sub)
            .trim_matches(|c: char| c == ',' || c == ':' || c.is_whitespace())
            .to_string();
        if name.chars().filter(|c| c.is_alphabetic()).count() >= 3 {
            p.name = Some(field_of(&sub, name));
        }
    }
    // The eMediplan prints "01.11.1943 (M)" under the patient's name.
    if p.birth_date.is_none() || p.name.is_none() {
        for (li, line) in layout.lines.iter().enumerate() {
            for seg in line {
                let t = seg.text();
                let sexed = ["(m)", "(f)", "(w)"]
                    .iter()
                    .any(|s| t.to_lowercase().contains(s));
                let Some((a, b, iso)) = find_date(&t).filter(|_| sexed) else {
                    continue;
                };
                if p.birth_date.is_none() {
                    p.birth_date = Some(field_of(&words_in_range(seg, a, b), iso));
                }
                if p.name.is_none() {
                    // The nearest line above with a segment starting where
                    // the date starts (a logo's fragments may sit between).
                    let above = (1..=3)
                        .filter_map(|k| li.checked_sub(k))
                        .filter_map(|l| {
                            layout.lines[l].iter().find(|s| {
                                (f64::from(s.bbox.x) - f64::from(seg.bbox.x)).abs() < layout.unit
                            })
                        })
                        .next();
                    if let Some(s) = above {
                        p.name = Some(field_of(&s.words, s.text()));
                    }
                }
            }
        }
    }
    p
}

/// The words of a list whose joined text overlaps `[a, b)`.
fn text_words(ws: &[Word], a: usize, b: usize) -> Vec<Word> {
    let seg = Segment {
        words: ws.to_vec(),
        bbox: bbox_of(ws),
        line: 0,
    };
    words_in_range(&seg, a, b)
}

fn find_prescriber(layout: &Layout) -> Prescriber {
    let mut pr = Prescriber::default();
    let mut gln_line = None;
    'gln: for (li, line) in layout.lines.iter().enumerate() {
        for seg in line {
            let t = seg.text();
            for c in GLN.captures_iter(&t) {
                let Some(m) = c.get(1) else { continue };
                let digits: String = m.as_str().chars().filter(char::is_ascii_digit).collect();
                if digits.len() == 13 && rxedge_shared::payload::gs1::check_digit_ok(&digits) {
                    pr.gln = Some(field_of(&words_in_range(seg, m.start(), m.end()), digits));
                    gln_line = Some(li);
                    break 'gln;
                }
            }
        }
    }
    const TITLES: &[&str] = &[
        "dr. med.",
        "dr.med.",
        "dr med",
        "dr.",
        "dre",
        "dott.ssa",
        "dott.",
        "prof.",
        "med. pract.",
    ];
    let mut best: Option<(usize, Field)> = None;
    for (li, line) in layout.lines.iter().enumerate() {
        for seg in line {
            let t = seg.text();
            let lt = t.to_lowercase();
            let Some(pos) = TITLES.iter().filter_map(|k| lt.find(k)).min() else {
                continue;
            };
            if pos > 0 && lt[..pos].chars().last().is_some_and(char::is_alphanumeric) {
                continue;
            }
            // Up to a comma (a place follows in tables) or a GLN.
            let end = t[pos..].find([',', ';', '|']).map_or(t.len(), |e| pos + e);
            let end = t[pos..end].find("GLN").map_or(end, |e| pos + e);
            let ws = words_in_range(seg, pos, end);
            let name = super::layout::join(&ws)
                .trim_end_matches([',', ' '])
                .to_string();
            if name.chars().filter(|c| c.is_alphabetic()).count() < 5 {
                continue;
            }
            // Nearest to the GLN when there is one, else the first.
            let dist = gln_line.map_or(li, |g| g.abs_diff(li));
            if best.as_ref().is_none_or(|(d, _)| dist < *d) {
                best = Some((dist, field_of(&ws, name)));
            }
        }
    }
    pr.name = best.map(|(_, f)| f);
    pr
}

fn find_date_field(layout: &Layout, dob: Option<&str>) -> Option<Field> {
    const KEYS: &[&str] = &["ausstellungsdatum", "datum", "date", "data", "le ", "den "];
    for (ws, text) in KEYS.iter().filter_map(|k| value_after(layout, &[k])) {
        if let Some((a, b, iso)) = find_date(&text) {
            if Some(iso.as_str()) != dob {
                return Some(field_of(&text_words(&ws, a, b), iso));
            }
        }
    }
    for seg in layout.segments() {
        let t = seg.text();
        if let Some((a, b, iso)) = find_date(&t) {
            if Some(iso.as_str()) != dob {
                return Some(field_of(&words_in_range(seg, a, b), iso));
            }
        }
    }
    None
}

fn find_notes(layout: &Layout) -> Option<Field> {
    const KEYS: &[&str] = &[
        "bemerkungen",
        "bemerkung",
        "hinweis",
        "remarques",
        "remarque",
        "osservazioni",
        "osservazione",
        "nota",
        "notes",
        "note",
        "comment",
    ];
    let (ws, text) = value_after(layout, KEYS)?;
    let text = text.trim().trim_start_matches(':').trim().to_string();
    (!text.is_empty()).then(|| field_of(&ws, text))
}

/// A prescription table's other columns (hospital forms): where the
/// strength, the dosage text and the quantity stand, as x ranges, and where
/// the name column ends.
#[derive(Debug, Clone, Copy)]
struct TableCols {
    name_right: f64,
    strength: Option<(f64, f64)>,
    sig: Option<(f64, f64)>,
    qty: Option<(f64, f64)>,
    bottom: f64,
}

fn table_columns(layout: &Layout) -> Option<TableCols> {
    // Italian "dosaggio" and French "dosage" are the strength; the dosage
    // text is "Dosierung", "posologie", "posologia", "dose".
    const NAME: &[&str] = &[
        "medikament",
        "medikamente",
        "arzneimittel",
        "präparat",
        "médicament",
        "medicament",
        "farmaco",
        "medicamento",
        "medication",
        "drug",
    ];
    const STRENGTH: &[&str] = &["stärke", "starke", "dosaggio", "dosage", "strength"];
    const SIG: &[&str] = &["dosierung", "posologie", "posologia", "dose", "anwendung"];
    const QTY: &[&str] = &[
        "menge",
        "quantité",
        "quantite",
        "quantità",
        "quantita",
        "qty",
        "quantity",
        "anzahl",
        "packungen",
    ];
    let fits = |w: &str, keys: &[&str]| {
        let k = norm_kw(w);
        k.chars().count() >= 3
            && keys
                .iter()
                .any(|h| strsim::normalized_levenshtein(&k, h) >= 0.8)
    };
    for line in &layout.lines {
        let words: Vec<&Word> = line.iter().flat_map(|s| s.words.iter()).collect();
        let Some(name) = words.iter().find(|w| fits(&w.text, NAME)) else {
            continue;
        };
        let heads: Vec<(usize, &Word)> = words
            .iter()
            .filter_map(|w| {
                [STRENGTH, SIG, QTY]
                    .iter()
                    .position(|keys| fits(&w.text, keys))
                    .map(|k| (k, *w))
            })
            .collect();
        if heads.len() < 2 {
            continue;
        }
        let mut xs: Vec<(usize, f64)> = heads
            .iter()
            .map(|(k, w)| (*k, f64::from(w.bbox.x)))
            .collect();
        xs.sort_by(|a, b| a.1.total_cmp(&b.1));
        let margin = layout.unit * 0.6;
        let range = |k: usize| -> Option<(f64, f64)> {
            let i = xs.iter().position(|(kk, _)| *kk == k)?;
            let left = xs[i].1 - margin;
            let right = xs.get(i + 1).map_or(f64::MAX, |n| n.1 - margin);
            Some((left, right))
        };
        let bottom = words
            .iter()
            .map(|w| f64::from(w.bbox.y + w.bbox.h))
            .fold(0.0, f64::max);
        return Some(TableCols {
            name_right: xs
                .first()
                .map_or(f64::MAX, |x| x.1 - margin)
                .max(f64::from(name.bbox.x + name.bbox.w)),
            strength: range(0),
            sig: range(1),
            qty: range(2),
            bottom,
        });
    }
    None
}

/// The words of a column within a row band, in reading order.
fn column_words(
    layout: &Layout,
    (left, right): (f64, f64),
    (top, bottom): (f64, f64),
) -> Vec<Word> {
    let mut ws: Vec<Word> = layout
        .words_in(top, bottom, left, right)
        .into_iter()
        .cloned()
        .collect();
    let unit = layout.unit;
    ws.sort_by(|a, b| {
        let (ay, by) = (
            f64::from(a.bbox.y) / (unit * 0.8),
            f64::from(b.bbox.y) / (unit * 0.8),
        );
        (ay.round())
            .total_cmp(&by.round())
            .then(a.bbox.x.cmp(&b.bbox.x))
    });
    ws
}

/// The dose columns of an eMediplan-like table: x centres of morning,
/// noon, evening and night, and the header's bottom.
fn dose_columns(layout: &Layout) -> Option<([f64; 4], f64)> {
    let heads: [&[&str]; 4] = [
        &["morgen", "matin", "mattino", "mattina", "morning"],
        &["mittag", "midi", "mezzogiorno", "noon", "midday"],
        &["abend", "soir", "sera", "evening"],
        &["nacht", "nuit", "notte", "night", "bedtime"],
    ];
    for line in &layout.lines {
        let words: Vec<&Word> = line.iter().flat_map(|s| s.words.iter()).collect();
        let mut xs = [f64::NAN; 4];
        let mut bottom: f64 = 0.0;
        for (i, hs) in heads.iter().enumerate() {
            let hit = words.iter().find(|w| {
                let k = norm_kw(&w.text);
                hs.iter()
                    .any(|h| strsim::normalized_levenshtein(&k, h) >= 0.75)
            });
            if let Some(w) = hit {
                // Tesseract now and then reports a header word's box far
                // too wide; a word is not wider than its letters.
                let letters = w.text.chars().count() as f64 * f64::from(w.bbox.h) * 0.8;
                xs[i] = f64::from(w.bbox.x) + f64::from(w.bbox.w).min(letters) / 2.0;
                bottom = bottom.max(f64::from(w.bbox.y + w.bbox.h));
            }
        }
        let found = xs.iter().filter(|x| !x.is_nan()).count();
        if found >= 3 {
            // Fill a missed header from its neighbours' spacing.
            for i in 0..4 {
                if xs[i].is_nan() {
                    xs[i] = match i {
                        0 => 2.0 * xs[1] - xs[2],
                        3 => 2.0 * xs[2] - xs[1],
                        _ => (xs[i - 1] + xs[i + 1]) / 2.0,
                    };
                }
            }
            return Some((xs, bottom));
        }
    }
    None
}

fn table_dose(
    layout: &Layout,
    cols: &[f64; 4],
    top: f64,
    bottom: f64,
) -> Option<([f64; 4], Vec<Word>)> {
    let spacing = ((cols[3] - cols[0]) / 3.0).abs().max(layout.unit);
    let mut d = [0.0; 4];
    let mut used = Vec::new();
    let mut seen = 0;
    for (i, x) in cols.iter().enumerate() {
        let ws = layout.words_in(top, bottom, x - spacing * 0.45, x + spacing * 0.45);
        // The closer, cell-by-cell read is usually the surer one.
        if let Some((w, a)) = ws
            .iter()
            .filter_map(|w| cell_amount(&w.text).map(|a| (w, a)))
            .max_by(|a, b| a.0.conf.total_cmp(&b.0.conf))
        {
            d[i] = a;
            used.push((*w).clone());
            seen += 1;
        }
    }
    (seen >= 2 && d.iter().sum::<f64>() > 0.0).then_some((d, used))
}

/// A head line of an item: its name words, strength and form.
struct Head {
    name_words: Vec<Word>,
    strength: Option<(String, Vec<Word>)>,
    form: Option<String>,
    matched: Option<Match>,
}

fn head_of(seg: &Segment, vocab: &dyn Lookup) -> Option<Head> {
    let text = seg.text();
    let strength = find_strength(&text);
    let name_end = strength.as_ref().map_or(text.len(), |s| s.0);
    let before = words_in_range(seg, 0, name_end);
    // Drop a leading "Rp." or numbering, and the form words after the name.
    let mut name_words: Vec<Word> = before
        .into_iter()
        .skip_while(|w| is_noise(&w.text))
        .collect();
    let mut form = Vec::new();
    while name_words.last().is_some_and(|w| is_form(&w.text)) {
        if let Some(w) = name_words.pop() {
            form.insert(0, w.text);
        }
    }
    if let Some((_, e, _)) = &strength {
        for w in words_in_range(seg, *e, text.len()) {
            if is_form(&w.text) {
                form.push(w.text.clone());
            } else {
                break;
            }
        }
    }
    let name_words: Vec<Word> = name_words
        .into_iter()
        .take_while(|w| !is_form(&w.text))
        .take(4)
        .collect();
    let letters = name_words
        .iter()
        .map(|w| w.text.chars().filter(|c| c.is_alphabetic()).count())
        .sum::<usize>();
    let strength_s = strength.as_ref().map(|s| s.2.as_str());
    // The longest prefix of the name words that the vocabulary knows.
    let matched = (1..=name_words.len())
        .rev()
        .filter_map(|n| vocab.lookup(&super::layout::join(&name_words[..n]), strength_s))
        .max_by(|a, b| a.similarity.total_cmp(&b.similarity));
    let strength = strength.map(|(a, b, s)| (s, words_in_range(seg, a, b)));
    // A name the vocabulary does not know must at least be read clearly.
    let clear = matched.is_some() || mean_conf(&name_words) >= 0.6;
    let is_head = letters >= 3
        && clear
        && (strength.is_some() || matched.as_ref().is_some_and(|m| m.similarity >= 0.9));
    is_head.then(|| Head {
        name_words,
        strength,
        form: (!form.is_empty()).then(|| form.join(" ")),
        matched,
    })
}

/// A name line with no strength of its own whose next line in the cell
/// starts with a form word or a strength: the eMediplan's
/// `ANTIBIOTIKUM` over `Tabl 800/160mg`.
fn stacked_head(seg: &Segment, next: Option<&Segment>, vocab: &dyn Lookup) -> Option<Head> {
    let next = next?;
    let nt = next.text();
    let first_is_form = next.words.first().is_some_and(|w| is_form(&w.text));
    let strength_first =
        find_strength(&nt).is_some_and(|(a, _, _)| nt[..a].split_whitespace().all(is_form));
    if !(first_is_form || strength_first) {
        return None;
    }
    let text = seg.text();
    if find_strength(&text).is_some() {
        return None;
    }
    let mut name_words: Vec<Word> = seg
        .words
        .iter()
        .skip_while(|w| is_noise(&w.text))
        .cloned()
        .collect();
    let mut form = Vec::new();
    while name_words.last().is_some_and(|w| is_form(&w.text)) {
        if let Some(w) = name_words.pop() {
            form.insert(0, w.text);
        }
    }
    let letters: usize = name_words
        .iter()
        .map(|w| w.text.chars().filter(|c| c.is_alphabetic()).count())
        .sum();
    let upper = name_words
        .iter()
        .flat_map(|w| w.text.chars())
        .filter(|c| c.is_uppercase())
        .count();
    let matched = vocab.lookup(&super::layout::join(&name_words), None);
    // A bare capitalised name, not a sentence.
    if letters < 4 || name_words.len() > 3 || (upper * 2 < letters && matched.is_none()) {
        return None;
    }
    Some(Head {
        name_words,
        strength: None,
        form: (!form.is_empty()).then(|| form.join(" ")),
        matched,
    })
}

/// Table cells worth a second, closer look: the dose columns of each item's
/// row, where a lone `1` or `½` is too small for page-level segmentation
/// to keep. Boxes are in the words' pixels.
pub fn dose_cells(words: &[Word], vocab: &dyn Lookup) -> Vec<BBox> {
    let layout = Layout::build(words);
    let Some((cols, _)) = dose_columns(&layout) else {
        return Vec::new();
    };
    let spacing = ((cols[3] - cols[0]) / 3.0).abs().max(layout.unit);
    let heads = item_heads(&layout, vocab, Some((cols, 0.0)), table_columns(&layout));
    let mut out = Vec::new();
    for (top, bottom) in item_bands(&layout, &heads) {
        for x in cols {
            let left = (x - spacing * 0.45).max(0.0);
            out.push(BBox {
                x: left as u32,
                y: top.max(0.0) as u32,
                w: (spacing * 0.9) as u32,
                h: (bottom - top).max(1.0) as u32,
            });
        }
    }
    out
}

/// Each item's row band `[top, bottom)`. A table row's cells are centred
/// on the row: a name cell of three lines and a dose of one share a centre,
/// as do a one-line name and a sig wrapped over three lines. So each item
/// gets the words nearest its own cell's centre: halfway to its
/// neighbours' centres, and no more than four lines either way.
fn item_bands(layout: &Layout, heads: &[Found]) -> Vec<(f64, f64)> {
    let centres: Vec<f64> = heads
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let cell = &layout.cells[f.cell];
            let next_pos = heads
                .iter()
                .skip(i + 1)
                .filter(|g| g.cell == f.cell)
                .map(|g| g.pos)
                .min()
                .unwrap_or(cell.len());
            let segs: Vec<&Segment> = cell[f.pos..next_pos]
                .iter()
                .filter_map(|at| layout.seg(*at))
                .collect();
            let top = segs.iter().map(|s| s.bbox.y).min().unwrap_or(0);
            let bottom = segs.iter().map(|s| s.bbox.y + s.bbox.h).max().unwrap_or(0);
            (f64::from(top) + f64::from(bottom)) / 2.0
        })
        .collect();
    let reach = layout.unit * 4.0;
    (0..heads.len())
        .map(|i| {
            let c = centres[i];
            let top = if i > 0 {
                (centres[i - 1] + c) / 2.0
            } else {
                f64::MIN
            };
            let bottom = centres.get(i + 1).map_or(f64::MAX, |n| (c + n) / 2.0);
            (top.max(c - reach), bottom.min(c + reach))
        })
        .collect()
}

/// Extracts the draft from recognised words.
pub fn extract(words: &[Word], vocab: &dyn Lookup) -> Draft {
    let layout = Layout::build(words);
    let text = layout.text();
    let patient = find_patient(&layout);
    let prescriber = find_prescriber(&layout);
    let dob = patient.birth_date.as_ref().map(|f| f.value.clone());
    let date = find_date_field(&layout, dob.as_deref());
    let notes = find_notes(&layout);
    let cols = dose_columns(&layout);
    let items = find_items(&layout, vocab, cols);
    Draft {
        language: language(&text).to_string(),
        text,
        patient,
        prescriber,
        date,
        items,
        notes,
    }
}

/// Whether one of the two lines after `pos` in the cell carries a strength.
fn cell_has_strength_below(layout: &Layout, cell: &[(usize, usize)], pos: usize) -> bool {
    (1..=2).any(|k| {
        cell.get(pos + k)
            .and_then(|at| layout.seg(*at))
            .is_some_and(|s| find_strength(&s.text()).is_some())
    })
}

/// An item's head found on the page.
struct Found {
    at: (usize, usize),
    cell: usize,
    pos: usize,
    head: Head,
}

fn item_heads(
    layout: &Layout,
    vocab: &dyn Lookup,
    cols: Option<([f64; 4], f64)>,
    table: Option<TableCols>,
) -> Vec<Found> {
    // In a table, items start in the name column: a reason for treatment
    // further right is not a drug even when it sounds like one.
    let name_right = match (cols, table) {
        (Some((c, _)), _) => c[0] - ((c[3] - c[0]) / 3.0).abs() * 0.5,
        (None, Some(t)) => t.name_right,
        (None, None) => f64::MAX,
    };
    let header_bottom = cols.map(|c| c.1).or(table.map(|t| t.bottom));
    let mut found: Vec<Found> = Vec::new();
    for (ci, cell) in layout.cells.iter().enumerate() {
        let mut pos = 0;
        while pos < cell.len() {
            let Some(seg) = layout.seg(cell[pos]) else {
                break;
            };
            // Skip everything above the dose table's header row.
            // In a dose table, items are rows of the table: nothing above
            // its header (a logo's noise, the address block) is one.
            let below_header =
                header_bottom.is_none_or(|b| f64::from(seg.bbox.y) + 1.0 >= b - layout.unit);
            if !below_header || f64::from(seg.bbox.x) >= name_right {
                pos += 1;
                continue;
            }
            let next = cell.get(pos + 1).and_then(|at| layout.seg(*at));
            let head = head_of(seg, vocab).or_else(|| stacked_head(seg, next, vocab));
            match head {
                // A name without a strength mid-cell is the ingredient line
                // under a product name, not a new item.
                Some(h)
                    if h.strength.is_none()
                        && pos > 0
                        && !cell_has_strength_below(layout, cell, pos) =>
                {
                    pos += 1
                }
                Some(mut h) => {
                    let mut consumed = 1;
                    if h.strength.is_none() {
                        // The strength on the next one or two lines of the cell.
                        let mut ws: Vec<Word> = Vec::new();
                        for k in 1..=2 {
                            if let Some(s) = cell.get(pos + k).and_then(|at| layout.seg(*at)) {
                                ws.extend(s.words.iter().cloned());
                                let t = super::layout::join(&ws);
                                if let Some((a, b, st)) = find_strength(&t) {
                                    let sw = text_words(&ws, a, b);
                                    if h.form.is_none() {
                                        let f: Vec<String> = ws
                                            .iter()
                                            .filter(|w| is_form(&w.text))
                                            .map(|w| w.text.clone())
                                            .collect();
                                        h.form = (!f.is_empty()).then(|| f.join(" "));
                                    }
                                    if h.matched.is_some() {
                                        let name = super::layout::join(&h.name_words);
                                        h.matched = vocab.lookup(&name, Some(&st)).or(h.matched);
                                    }
                                    h.strength = Some((st, sw));
                                    consumed = k + 1;
                                    break;
                                }
                            }
                        }
                    }
                    found.push(Found {
                        at: cell[pos],
                        cell: ci,
                        pos,
                        head: h,
                    });
                    pos += consumed;
                }
                None => pos += 1,
            }
        }
    }
    found.sort_by_key(|f| f.at);
    found
}

fn find_items(layout: &Layout, vocab: &dyn Lookup, cols: Option<([f64; 4], f64)>) -> Vec<Item> {
    let table = table_columns(layout);
    let found = item_heads(layout, vocab, cols, table);
    let bands = item_bands(layout, &found);
    let mut items = Vec::new();
    for (i, f) in found.iter().enumerate() {
        if layout.seg(f.at).is_none() {
            continue;
        }
        let cell = &layout.cells[f.cell];
        // The item's detail lines: the rest of its cell up to the next head.
        let next_head_pos = found
            .iter()
            .filter(|g| g.cell == f.cell && g.pos > f.pos)
            .map(|g| g.pos)
            .min()
            .unwrap_or(cell.len());
        let mut detail: Vec<&Segment> = cell[f.pos + 1..next_head_pos]
            .iter()
            .filter_map(|at| layout.seg(*at))
            .collect();
        // Outside a table the signa and quantity follow the head on the next
        // lines, indented or not; a photo's perspective moves their left
        // edge, so they need not share the head's cell.
        if cols.is_none() && table.is_none() {
            let head = layout.seg(f.at).map_or(BBox::default(), |s| s.bbox);
            let next_line = found.get(i + 1).map_or(usize::MAX, |g| g.at.0);
            for li in (f.at.0 + 1)..layout.lines.len().min(next_line).min(f.at.0 + 5) {
                for sgm in &layout.lines[li] {
                    let near = f64::from(sgm.bbox.x) + layout.unit * 2.0 >= f64::from(head.x)
                        && f64::from(sgm.bbox.y) < f64::from(head.y) + layout.unit * 7.0;
                    if near && !detail.iter().any(|d| std::ptr::eq(*d, sgm)) {
                        detail.push(sgm);
                    }
                }
            }
        }
        // Segments to the right on the head's line (table columns).
        let right: Vec<&Segment> = layout.lines[f.at.0].iter().skip(f.at.1 + 1).collect();
        let mut strength = f.head.strength.clone();
        let mut sig: Option<(String, Vec<Word>)> = None;
        let mut quantity: Option<(u32, Vec<Word>)> = None;
        let mut repeats = None;
        for s in right.iter().chain(detail.iter()) {
            let t = s.text();
            if strength.is_none() {
                if let Some((a, b, st)) = find_strength(&t) {
                    strength = Some((st, words_in_range(s, a, b)));
                    continue;
                }
            }
            if sig.is_none() && parse_sig(&t).is_some() && find_strength(&t).is_none() {
                sig = Some((t.clone(), s.words.clone()));
                continue;
            }
            if quantity.is_none() {
                if let Some(c) = QTY.captures(&t) {
                    if let Some(n) = c.name("n").or_else(|| c.name("n2")) {
                        if let Ok(q) = n.as_str().parse() {
                            quantity = Some((q, words_in_range(s, n.start(), n.end())));
                        }
                    }
                }
            }
            if repeats.is_none() {
                repeats = REPEATS
                    .captures(&t)
                    .or_else(|| REPEATS_BEFORE.captures(&t))
                    .and_then(|c| c.name("n"))
                    .and_then(|n| n.as_str().parse().ok());
            }
        }
        if let Some(t) = &table {
            let band = bands[i];
            if strength.is_none() {
                if let Some(r) = t.strength {
                    let ws = column_words(layout, r, band);
                    let txt = super::layout::join(&ws);
                    if let Some((a, b, st)) = find_strength(&txt) {
                        strength = Some((st, text_words(&ws, a, b)));
                    }
                }
            }
            if let Some(r) = t.sig {
                let ws = column_words(layout, r, band);
                let txt = super::layout::join(&ws);
                if !ws.is_empty() && parse_sig(&txt).is_some() {
                    sig = Some((txt, ws));
                }
            }
            if quantity.is_none() {
                if let Some(r) = t.qty {
                    let ws = column_words(layout, r, band);
                    let num = |w: &Word| {
                        w.text
                            .trim_matches(|c: char| !c.is_ascii_digit())
                            .parse::<u32>()
                            .ok()
                    };
                    if let Some((w, q)) = ws.iter().find_map(|w| num(w).map(|q| (w, q))) {
                        if (1..=99).contains(&q) {
                            quantity = Some((q, vec![w.clone()]));
                        }
                    }
                }
            }
        }
        // A bare number in the last column of a table row is the quantity.
        if quantity.is_none() {
            if let Some(last) = right.last() {
                let t = last.text();
                if let Ok(q) = t.trim().parse::<u32>() {
                    if (1..=99).contains(&q) && right.len() >= 2 {
                        quantity = Some((q, last.words.clone()));
                    }
                }
            }
        }
        let mut dose = sig
            .as_ref()
            .and_then(|(t, w)| parse_sig(t).map(|d| (d, w.clone())));
        if let Some((c, _)) = &cols {
            let (top, bottom) = bands[i];
            if let Some((d, ws)) = table_dose(layout, c, top, bottom) {
                let cells: Vec<String> = ws.iter().map(|w| w.text.clone()).collect();
                if sig.is_none() {
                    sig = Some((cells.join(" "), ws.clone()));
                }
                dose = Some((d, ws));
            }
        }
        let name = super::layout::join(&f.head.name_words);
        let mut fields = std::collections::BTreeMap::new();
        let sim = f.head.matched.as_ref().map_or(1.0, |m| m.similarity);
        let mut name_field = field_of(&f.head.name_words, name.clone());
        name_field.confidence *= sim;
        fields.insert("name", name_field);
        if let Some((st, ws)) = &strength {
            fields.insert("strength", field_of(ws, st.clone()));
        }
        if let Some((d, ws)) = &dose {
            fields.insert("dose", field_of(ws, format_dose(*d)));
        }
        if let Some((q, ws)) = &quantity {
            fields.insert("quantity", field_of(ws, q.to_string()));
        }
        let confidence = ["name", "strength", "dose"]
            .iter()
            .map(|k| fields.get(k).map_or(0.0, |f| f.confidence))
            .fold(f32::MAX, f32::min);
        items.push(Item {
            name,
            matched: f.head.matched.clone(),
            strength: strength.map(|s| s.0),
            form: f.head.form.clone(),
            dose: dose.map(|d| format_dose(d.0)),
            sig: sig.map(|s| s.0),
            quantity: quantity.map(|q| q.0),
            repeats,
            confidence,
            fields,
        });
    }
    items
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ocr::vocab::{Entry, Source, Vocab};

    fn line(y: u32, cells: &[(u32, &str)]) -> Vec<Word> {
        let mut out = Vec::new();
        for (x, text) in cells {
            let mut x = *x;
            for t in text.split_whitespace() {
                let w = 12 * t.chars().count() as u32;
                out.push(Word {
                    text: t.into(),
                    conf: 90.0,
                    bbox: BBox { x, y, w, h: 20 },
                });
                x += w + 8;
            }
        }
        out
    }

    fn vocab() -> Vocab {
        let mut v = Vocab::default();
        v.add(Entry {
            name: "Metformin".into(),
            generic: "metformin".into(),
            gtin: Some("09520000000035".into()),
            strength: Some("500 mg".into()),
            source: Source::Catalog,
        });
        v.add_drug_names("variant\tcanonical\nGlucophage\tmetformin\nLipitor\tatorvastatin\n");
        v
    }

    #[test]
    fn strengths() {
        let s = |t: &str| find_strength(t).map(|x| x.2);
        assert_eq!(s("Metformin 500 mg Tabl").as_deref(), Some("500 mg"));
        assert_eq!(s("Tabl 800/160mg").as_deref(), Some("800/160 mg"));
        assert_eq!(s("160/12.5 mg").as_deref(), Some("160/12.5 mg"));
        assert_eq!(s("Lös 10 mg/2ml i.m.").as_deref(), Some("10 mg/2ml"));
        assert_eq!(s("Lantus 100 U/ml").as_deref(), Some("100 U/ml"));
        assert_eq!(s("Vitamin D3 1000 IE").as_deref(), Some("1000 IE"));
        assert_eq!(s("0,5 mg"), Some("0.5 mg".into()));
        assert_eq!(s("180 cm / 81 kg"), None);
        assert_eq!(s("Seite 1 von 1"), None);
    }

    #[test]
    fn dates() {
        assert_eq!(
            find_date("geb. 07.03.1951").map(|d| d.2).as_deref(),
            Some("1951-03-07")
        );
        assert_eq!(
            find_date("2026-10-02").map(|d| d.2).as_deref(),
            Some("2026-10-02")
        );
        assert_eq!(
            find_date("31/12/1999").map(|d| d.2).as_deref(),
            Some("1999-12-31")
        );
        assert_eq!(find_date("31.02.1999"), None);
    }

    #[test]
    fn sigs() {
        let d = |t: &str| parse_sig(t).map(format_dose);
        assert_eq!(d("S: 1-0-1-0").as_deref(), Some("1-0-1-0"));
        assert_eq!(d("½-0-½").as_deref(), Some("0.5-0-0.5-0"));
        assert_eq!(d("2x täglich 1 Tablette").as_deref(), Some("1-0-1-0"));
        assert_eq!(d("3 x täglich 2").as_deref(), Some("2-2-2-0"));
        assert_eq!(d("1x täglich 1 abends").as_deref(), Some("0-0-1-0"));
        assert_eq!(d("1 morgens").as_deref(), Some("1-0-0-0"));
        assert_eq!(d("1 comprimé 2 fois par jour").as_deref(), Some("1-0-1-0"));
        assert_eq!(
            d("1 compressa 3 volte al giorno").as_deref(),
            Some("1-1-1-0")
        );
        assert_eq!(d("1 tablet twice daily").as_deref(), Some("1-0-1-0"));
        assert_eq!(d("1 le soir").as_deref(), Some("0-0-1-0"));
        assert_eq!(d("1 la sera").as_deref(), Some("0-0-1-0"));
        assert_eq!(d("bei Bedarf"), None);
        assert_eq!(d("bis zu max. 4 mal täglich 1 Tablette"), None);
        assert_eq!(d("Bluthochdruck"), None);
    }

    #[test]
    fn letterhead_prescription() {
        let mut words = Vec::new();
        words.extend(line(
            40,
            &[(100, "Dr. med. Peter Frei"), (900, "GLN 7601000000009")],
        ));
        words.extend(line(
            100,
            &[(100, "Patient: Anna Keller"), (700, "geb. 07.03.1951")],
        ));
        words.extend(line(140, &[(100, "Datum: 02.10.2026")]));
        words.extend(line(220, &[(100, "Rp. Metf0rmin 500 mg Tabl")]));
        words.extend(line(250, &[(100, "S: 1-0-1-0")]));
        words.extend(line(280, &[(100, "OP 2")]));
        words.extend(line(340, &[(100, "Glucophage 850 mg Filmtabl")]));
        words.extend(line(370, &[(100, "2x täglich 1")]));
        words.extend(line(400, &[(100, "Menge: 3 Wiederholung: 1x")]));
        words.extend(line(480, &[(100, "Bemerkung: nach dem Essen")]));
        let d = extract(&words, &vocab());
        assert_eq!(d.language, "de");
        assert_eq!(
            d.patient.name.as_ref().map(|f| f.value.as_str()),
            Some("Anna Keller")
        );
        assert_eq!(
            d.patient.birth_date.as_ref().map(|f| f.value.as_str()),
            Some("1951-03-07")
        );
        assert_eq!(
            d.date.as_ref().map(|f| f.value.as_str()),
            Some("2026-10-02")
        );
        assert_eq!(
            d.prescriber.name.as_ref().map(|f| f.value.as_str()),
            Some("Dr. med. Peter Frei")
        );
        // 7601000000009 is not a valid GLN (check digit), so none is read.
        assert!(d.prescriber.gln.is_none());
        assert_eq!(d.items.len(), 2, "{:#?}", d.items);
        let a = &d.items[0];
        assert_eq!(a.name, "Metf0rmin");
        assert_eq!(
            a.matched.as_ref().map(|m| m.entry.generic.as_str()),
            Some("metformin")
        );
        assert_eq!(
            a.matched.as_ref().and_then(|m| m.entry.gtin.as_deref()),
            Some("09520000000035")
        );
        assert_eq!(a.strength.as_deref(), Some("500 mg"));
        assert_eq!(a.form.as_deref(), Some("Tabl"));
        assert_eq!(a.dose.as_deref(), Some("1-0-1-0"));
        assert_eq!(a.quantity, Some(2));
        assert!(a.confidence < 0.9, "a fuzzy match lowers the confidence");
        let b = &d.items[1];
        assert_eq!(
            b.matched.as_ref().map(|m| m.entry.generic.as_str()),
            Some("metformin")
        );
        assert_eq!(b.dose.as_deref(), Some("1-0-1-0"));
        assert_eq!(b.quantity, Some(3));
        assert_eq!(b.repeats, Some(1));
        assert_eq!(
            d.notes.as_ref().map(|f| f.value.as_str()),
            Some("nach dem Essen")
        );
        assert!(a.fields["strength"].bbox.x > a.fields["name"].bbox.x);
    }

    #[test]
    fn emediplan_table() {
        let mut words = Vec::new();
        words.extend(line(20, &[(300, "Peter Muster")]));
        words.extend(line(50, &[(300, "01.11.1943 (M)")]));
        words.extend(line(80, &[(700, "Dr. med. F. Weise")]));
        words.extend(line(120, &[(20, "Ausstellungsdatum: 09.02.2023 09:42")]));
        words.extend(line(
            160,
            &[
                (20, "Medikament"),
                (300, "Morgen"),
                (400, "Mittag"),
                (500, "Abend"),
                (600, "Nacht"),
                (700, "Einheit"),
            ],
        ));
        words.extend(line(200, &[(20, "ANTIBIOTIKUM")]));
        words.extend(line(
            226,
            &[
                (20, "Tabl 800/160mg"),
                (320, "1"),
                (420, "-"),
                (520, "1"),
                (620, "-"),
                (700, "Stk"),
            ],
        ));
        words.extend(line(252, &[(20, "Disulfontetraprim,")]));
        words.extend(line(
            300,
            &[
                (20, "CHOLES Filmtabl 20 mg"),
                (320, "½"),
                (420, "-"),
                (520, "1"),
                (620, "-"),
            ],
        ));
        words.extend(line(326, &[(20, "Otamustitan")]));
        let d = extract(&words, &vocab());
        assert_eq!(
            d.patient.name.as_ref().map(|f| f.value.as_str()),
            Some("Peter Muster")
        );
        assert_eq!(
            d.patient.birth_date.as_ref().map(|f| f.value.as_str()),
            Some("1943-11-01")
        );
        assert_eq!(
            d.date.as_ref().map(|f| f.value.as_str()),
            Some("2023-02-09")
        );
        let got: Vec<(&str, Option<&str>, Option<&str>)> = d
            .items
            .iter()
            .map(|i| (i.name.as_str(), i.strength.as_deref(), i.dose.as_deref()))
            .collect();
        assert_eq!(
            got,
            [
                ("ANTIBIOTIKUM", Some("800/160 mg"), Some("1-0-1-0")),
                ("CHOLES", Some("20 mg"), Some("0.5-0-1-0")),
            ]
        );
        assert!(d.items[0].matched.is_none());
    }

    #[test]
    fn hospital_row() {
        let mut words = Vec::new();
        words.extend(line(
            100,
            &[
                (20, "Medication"),
                (300, "Strength"),
                (500, "Dose"),
                (800, "Qty"),
            ],
        ));
        words.extend(line(
            140,
            &[
                (20, "Lipitor"),
                (300, "20 mg"),
                (500, "0-0-1-0"),
                (800, "2"),
            ],
        ));
        let d = extract(&words, &vocab());
        assert_eq!(d.items.len(), 1, "{:#?}", d.items);
        let i = &d.items[0];
        assert_eq!(
            i.matched.as_ref().map(|m| m.entry.generic.as_str()),
            Some("atorvastatin")
        );
        assert_eq!(i.strength.as_deref(), Some("20 mg"));
        assert_eq!(i.dose.as_deref(), Some("0-0-1-0"));
        assert_eq!(i.quantity, Some(2));
        assert_eq!(d.language, "en");
    }
}
