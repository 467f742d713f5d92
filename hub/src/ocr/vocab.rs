//! The drug vocabulary an OCR'd name is matched against: the store's catalog
//! (product names and ingredients) and, when configured, a brand → generic
//! list in the `drug_names.tsv` format (`variant\tcanonical\t…`).
//!
//! Matching tolerates OCR errors: an exact key first, then candidates that
//! share trigrams, ranked by normalised Levenshtein similarity.

use serde::Serialize;
use std::collections::HashMap;

/// Where a vocabulary entry came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// A catalog product or ingredient.
    Catalog,
    /// The brand/generic name list.
    DrugNames,
}

/// One name the vocabulary knows.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Entry {
    /// The name as the source spells it.
    pub name: String,
    /// The generic (ingredients, lowercase).
    pub generic: String,
    /// The catalog product, for catalog product names.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gtin: Option<String>,
    /// The catalog product's strength.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub strength: Option<String>,
    /// Catalog or name list.
    pub source: Source,
}

/// A match of an OCR'd name.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Match {
    /// The best entry (for a catalog name, the product whose strength fits).
    #[serde(flatten)]
    pub entry: Entry,
    /// Similarity of the OCR'd text and the entry's name, 0–1.
    pub similarity: f32,
}

/// The vocabulary, indexed.
#[derive(Debug, Default, Clone)]
pub struct Vocab {
    entries: Vec<Entry>,
    keys: Vec<String>,
    by_key: HashMap<String, Vec<u32>>,
    trigrams: HashMap<[char; 3], Vec<u32>>,
}

/// The key names are compared by: letters and digits, upper case.
pub fn key(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_uppercase)
        .collect()
}

/// The key with OCR's usual confusions folded together (`0`→`O`,
/// `1`/`L`→`I`, `RN`→`M`, `VV`→`W`, `5`→`S`, `8`→`B`), so `METF0RRNIN`
/// and `METFORMIN` meet.
pub fn fold(k: &str) -> String {
    let s = k.replace("RN", "M").replace("VV", "W").replace("CL", "D");
    s.chars()
        .map(|c| match c {
            '0' => 'O',
            '1' | 'L' | '|' => 'I',
            '5' => 'S',
            '8' => 'B',
            c => c,
        })
        .collect()
}

fn trigrams(k: &str) -> Vec<[char; 3]> {
    let c: Vec<char> = std::iter::once('^')
        .chain(k.chars())
        .chain(std::iter::once('$'))
        .collect();
    let mut t: Vec<[char; 3]> = c.windows(3).map(|w| [w[0], w[1], w[2]]).collect();
    t.sort_unstable();
    t.dedup();
    t
}

impl Vocab {
    /// Adds one entry.
    pub fn add(&mut self, e: Entry) {
        let k = fold(&key(&e.name));
        if k.chars().count() < 3 {
            return;
        }
        let id = self.entries.len() as u32;
        if !self.by_key.contains_key(&k) {
            for t in trigrams(&k) {
                self.trigrams.entry(t).or_default().push(id);
            }
        }
        self.by_key.entry(k.clone()).or_default().push(id);
        self.keys.push(k);
        self.entries.push(e);
    }

    /// How many names it holds.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Reads a `drug_names.tsv`-style list: a header, then
    /// `variant\tcanonical\t…`. Lines with markup or odd characters are
    /// skipped: the list is scraped and carries some.
    pub fn add_drug_names(&mut self, tsv: &str) -> usize {
        let mut n = 0;
        for line in tsv.lines().skip(1) {
            let mut f = line.split('\t');
            let (Some(variant), Some(canonical)) = (f.next(), f.next()) else {
                continue;
            };
            let clean = |s: &str| {
                (4..=40).contains(&s.chars().count())
                    && s.chars().all(|c| c.is_alphanumeric() || " -".contains(c))
                    && s.chars().next().is_some_and(char::is_alphabetic)
            };
            if !clean(variant) || !clean(canonical) {
                continue;
            }
            self.add(Entry {
                name: variant.to_string(),
                generic: canonical.to_lowercase(),
                gtin: None,
                strength: None,
                source: Source::DrugNames,
            });
            n += 1;
        }
        n
    }

    /// The best entry for an OCR'd name, if one is similar enough.
    /// `strength` picks among catalog products of the same name.
    pub fn lookup(&self, text: &str, strength: Option<&str>) -> Option<Match> {
        let k = fold(&key(text));
        let n = k.chars().count();
        if n < 4 {
            return None;
        }
        if let Some(ids) = self.by_key.get(&k) {
            return Some(self.pick(text, ids, strength, 1.0));
        }
        // Candidates sharing at least a third of the trigrams.
        let tg = trigrams(&k);
        let mut counts: HashMap<u32, u32> = HashMap::new();
        for t in &tg {
            if let Some(ids) = self.trigrams.get(t) {
                for id in ids {
                    *counts.entry(*id).or_default() += 1;
                }
            }
        }
        let need = (tg.len() as u32).div_ceil(3).max(2);
        let mut best: Option<(f64, u32)> = None;
        for (id, c) in counts {
            if c < need {
                continue;
            }
            let cand = &self.keys[id as usize];
            let m = cand.chars().count();
            if m.abs_diff(n) > 3 {
                continue;
            }
            let sim = strsim::normalized_levenshtein(&k, cand);
            if best.is_none_or(|(b, bid)| sim > b || (sim == b && id < bid)) {
                best = Some((sim, id));
            }
        }
        let (sim, id) = best?;
        // Short names need to be closer: one error in five letters is a
        // different drug as often as not.
        let min = if n <= 6 { 0.83 } else { 0.78 };
        if sim < min {
            return None;
        }
        let ids = self.by_key.get(&self.keys[id as usize])?;
        Some(self.pick(text, ids, strength, sim as f32))
    }

    /// `folded_sim` decided the match; the similarity reported also counts
    /// the raw letters, so a name read through OCR confusions is shown as
    /// less certain than a clean read.
    fn pick(&self, text: &str, ids: &[u32], strength: Option<&str>, folded_sim: f32) -> Match {
        let norm = |s: &str| {
            s.to_lowercase()
                .replace([' ', ','], "")
                .replace("µg", "mcg")
        };
        let wanted = strength.map(norm);
        let chosen = ids
            .iter()
            .map(|i| &self.entries[*i as usize])
            .max_by_key(|e| {
                let fits = match (&wanted, &e.strength) {
                    (Some(w), Some(s)) => norm(s) == *w,
                    _ => false,
                };
                // A strength fit first, then a catalog product, then the
                // first entry (stable).
                (fits, e.source == Source::Catalog, e.gtin.is_some())
            });
        let entry = match chosen {
            Some(e) => e.clone(),
            None => self.entries[ids[0] as usize].clone(),
        };
        let raw = strsim::normalized_levenshtein(&key(text), &key(&entry.name)) as f32;
        Match {
            entry,
            similarity: (folded_sim + raw) / 2.0,
        }
    }
}

/// Anything names can be looked up in.
pub trait Lookup {
    /// The best entry for an OCR'd name, if one is similar enough.
    fn lookup(&self, text: &str, strength: Option<&str>) -> Option<Match>;
}

impl Lookup for Vocab {
    fn lookup(&self, text: &str, strength: Option<&str>) -> Option<Match> {
        Vocab::lookup(self, text, strength)
    }
}

/// Several vocabularies asked together (the catalog, rebuilt per job, and
/// the large name list, loaded once): the most similar wins, a catalog
/// entry on a tie.
pub struct Layered<'a>(pub Vec<&'a Vocab>);

impl Lookup for Layered<'_> {
    fn lookup(&self, text: &str, strength: Option<&str>) -> Option<Match> {
        self.0
            .iter()
            .filter_map(|v| v.lookup(text, strength))
            .max_by(|a, b| {
                a.similarity.total_cmp(&b.similarity).then(
                    (a.entry.source == Source::Catalog).cmp(&(b.entry.source == Source::Catalog)),
                )
            })
    }
}

/// Catalog names: each product's name up to its strength (`Lantus` from
/// `Lantus 100 U/ml`), and each ingredient.
pub fn catalog_vocab<'a>(
    products: impl IntoIterator<Item = (&'a str, &'a str, &'a str, &'a [String])>,
) -> Vocab {
    let mut v = Vocab::default();
    let mut seen = std::collections::HashSet::new();
    for (gtin, name, strength, ingredients) in products {
        let generic = ingredients.join(" + ").to_lowercase();
        let cut = super::extract::find_strength(name).map_or(name.len(), |s| s.0);
        let short = name[..cut].trim();
        v.add(Entry {
            name: short.to_string(),
            generic: generic.clone(),
            gtin: Some(gtin.to_string()),
            strength: Some(strength.to_string()),
            source: Source::Catalog,
        });
        for i in ingredients {
            if seen.insert(i.to_lowercase()) {
                v.add(Entry {
                    name: i.clone(),
                    generic: i.to_lowercase(),
                    gtin: None,
                    strength: None,
                    source: Source::Catalog,
                });
            }
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vocab() -> Vocab {
        let mut v = Vocab::default();
        for (name, strength, gtin) in [
            ("Metformin", "500 mg", "1"),
            ("Metformin", "1000 mg", "2"),
            ("Glucophage", "500 mg", "3"),
        ] {
            v.add(Entry {
                name: name.into(),
                generic: "metformin".into(),
                gtin: Some(gtin.into()),
                strength: Some(strength.into()),
                source: Source::Catalog,
            });
        }
        v.add_drug_names(
            "variant\tcanonical\tis_brand\n&lt;ref\tx\t\nfortamet\tmetformin\t\nlipitor\tatorvastatin\t\n",
        );
        v
    }

    #[test]
    fn exact_fuzzy_and_strength() {
        let v = vocab();
        let m = v.lookup("METFORMIN", Some("1000 mg")).expect("match");
        assert_eq!(m.entry.gtin.as_deref(), Some("2"));
        assert_eq!(m.similarity, 1.0);
        // Two OCR errors in ten letters.
        let m = v.lookup("Metf0rrnin", Some("500mg")).expect("fuzzy");
        assert_eq!(m.entry.gtin.as_deref(), Some("1"));
        assert!(m.similarity < 1.0);
        let m = v.lookup("Lipitor", None).expect("name list");
        assert_eq!(m.entry.generic, "atorvastatin");
        assert_eq!(m.entry.source, Source::DrugNames);
        assert!(v.lookup("Bluthochdruck", None).is_none());
        assert!(v.lookup("ref", None).is_none());
        assert_eq!(v.len(), 5);
    }
}
