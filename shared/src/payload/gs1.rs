//! GS1 data on medicine packs: Digital Link URIs and element strings
//! (bracketed `(01)…(17)…`, caret `^01…`, or raw with GS separators).
//!
//! The output carries the element string in GS1's caret notation: `^` for FNC1
//! at the start and after every variable-length field that is followed by another.

use serde::Serialize;

/// Why GS1 data was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Gs1Error {
    /// The text is not in any GS1 syntax we read.
    #[error("not GS1 data: {0}")]
    Syntax(String),
    /// An application identifier is unknown.
    #[error("unknown application identifier {0}")]
    UnknownAi(String),
    /// A value breaks its AI's format.
    #[error("AI ({ai}): {problem}")]
    Value {
        /// The AI.
        ai: String,
        /// What is wrong.
        problem: String,
    },
    /// The Digital Link structure is wrong (path, qualifiers, duplicates).
    #[error("digital link: {0}")]
    Link(String),
}

/// One AI and its value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Element {
    /// Application identifier.
    pub ai: String,
    /// Value.
    pub value: String,
}

/// Parsed GS1 data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Gs1 {
    /// Elements in GS1's order.
    pub elements: Vec<Element>,
    /// Caret notation.
    pub element_string: String,
    /// GTIN (01), 14 digits.
    pub gtin: Option<String>,
    /// Batch/lot (10).
    pub batch: Option<String>,
    /// Expiry (17) as `YYYY-MM-DD` (day 00 means end of month).
    pub expiry: Option<String>,
    /// Serial (21).
    pub serial: Option<String>,
}

#[derive(Clone, Copy, PartialEq)]
enum Part {
    /// Exactly n digits.
    N(usize),
    /// Up to n digits.
    Nv(usize),
    /// Up to n characters of GS1 set 82.
    Xv(usize),
    /// Exactly n digits, the last a GS1 check digit.
    Nc(usize),
    /// YYMMDD.
    Date,
    /// YYMMDD, day 00 not allowed.
    DateStrict,
}

/// The AI table (the part of it medicine and logistics use).
fn spec(ai: &str) -> Option<&'static [Part]> {
    use Part::*;
    Some(match ai {
        "00" => &[Nc(18)],
        "01" | "02" => &[Nc(14)],
        "10" | "21" | "22" => &[Xv(20)],
        "11" | "12" | "13" | "15" | "16" | "17" => &[Date],
        "20" => &[N(2)],
        "235" => &[Xv(28)],
        "240" | "241" => &[Xv(30)],
        "253" => &[Nc(13), Xv(17)],
        "254" => &[Xv(20)],
        "255" => &[Nc(13), Nv(12)],
        "30" | "37" => &[Nv(8)],
        "400" | "401" | "403" => &[Xv(30)],
        "402" => &[Nc(17)],
        "410" | "411" | "412" | "413" | "414" | "415" | "416" | "417" => &[Nc(13)],
        "420" => &[Xv(20)],
        "7003" => &[N(10)],
        "7040" => &[Xv(4)],
        "8003" => &[Nc(14), Xv(16)],
        "8004" => &[Xv(30)],
        "8006" => &[Nc(14), N(4)],
        "8010" => &[Xv(30)],
        "8011" => &[Nv(12)],
        "8013" => &[Xv(25)],
        "8017" | "8018" => &[Nc(18)],
        "8019" => &[Nv(10)],
        "8020" => &[Xv(25)],
        "90" => &[Xv(30)],
        "91" | "92" | "93" | "94" | "95" | "96" | "97" | "98" | "99" => &[Xv(90)],
        "7006" => &[DateStrict],
        _ if ai.len() == 4 && ai.bytes().all(|b| b.is_ascii_digit()) => {
            let p = &ai[..2];
            let d = ai.as_bytes()[3];
            // 31nn–36nn measures (N6, decimal point in the 4th digit) and 390n–395n amounts.
            if ("31"..="36").contains(&p) && d <= b'9' {
                &[N(6)]
            } else if ["390", "392"].contains(&&ai[..3]) {
                &[Nv(15)]
            } else if ["391", "393"].contains(&&ai[..3]) {
                &[N(3), Nv(15)]
            } else {
                return None;
            }
        }
        _ => return None,
    })
}

/// AIs whose first two digits give a predefined length: no FNC1 after them.
fn predefined_length(ai: &str) -> bool {
    matches!(
        &ai[..2.min(ai.len())],
        "00" | "01"
            | "02"
            | "03"
            | "04"
            | "11"
            | "12"
            | "13"
            | "14"
            | "15"
            | "16"
            | "17"
            | "18"
            | "19"
            | "20"
            | "31"
            | "32"
            | "33"
            | "34"
            | "35"
            | "36"
            | "41"
    )
}

/// The known AIs, longest first, to split raw element strings.
fn ai_at(s: &str) -> Option<&str> {
    (2..=4)
        .filter_map(|n| s.get(..n))
        .find(|a| spec(a).is_some())
}

/// GS1 check digit of `digits` (the last one is the check digit).
pub fn check_digit_ok(digits: &str) -> bool {
    let b = digits.as_bytes();
    if b.len() < 2 || !b.iter().all(u8::is_ascii_digit) {
        return false;
    }
    let body = &b[..b.len() - 1];
    let sum: u32 = body
        .iter()
        .rev()
        .enumerate()
        .map(|(i, c)| u32::from(c - b'0') * if i % 2 == 0 { 3 } else { 1 })
        .sum();
    (10 - sum % 10) % 10 == u32::from(b[b.len() - 1] - b'0')
}

/// GS1 character set 82.
fn cset82(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!\"%&'()*+,-./:;<=>?_".contains(c)
}

fn check_value(ai: &str, v: &str) -> Result<(), Gs1Error> {
    let bad = |p: String| Gs1Error::Value {
        ai: ai.to_owned(),
        problem: p,
    };
    let parts = spec(ai).ok_or_else(|| Gs1Error::UnknownAi(ai.to_owned()))?;
    let mut rest = v;
    for (i, p) in parts.iter().enumerate() {
        let last = i + 1 == parts.len();
        let digits = |n: usize, exact: bool, rest: &str| -> Result<usize, Gs1Error> {
            let take = rest.bytes().take(n).take_while(u8::is_ascii_digit).count();
            if (exact && take != n) || take == 0 {
                return Err(bad(format!(
                    "expected {}{n} digits",
                    if exact { "" } else { "up to " }
                )));
            }
            Ok(take)
        };
        let used = match *p {
            Part::N(n) => digits(n, true, rest)?,
            Part::Nv(n) => digits(n, false, rest)?,
            Part::Nc(n) => {
                let k = digits(n, true, rest)?;
                if !check_digit_ok(&rest[..k]) {
                    return Err(bad(format!("check digit of {} is wrong", &rest[..k])));
                }
                k
            }
            Part::Date | Part::DateStrict => {
                digits(6, true, rest)?;
                let mm: u32 = rest[2..4].parse().unwrap_or(0);
                let dd: u32 = rest[4..6].parse().unwrap_or(99);
                if !(1..=12).contains(&mm) || dd > 31 || (dd == 0 && *p == Part::DateStrict) {
                    return Err(bad(format!("{} is not a date (YYMMDD)", &rest[..6])));
                }
                6
            }
            Part::Xv(n) => {
                let k = rest.chars().count();
                if k == 0 || k > n {
                    return Err(bad(format!("expected 1 to {n} characters")));
                }
                if let Some(c) = rest.chars().find(|c| !cset82(*c)) {
                    return Err(bad(format!("character {c:?} is not allowed")));
                }
                rest.len()
            }
        };
        rest = &rest[used..];
        if last && !rest.is_empty() {
            return Err(bad(format!("{} extra character(s)", rest.chars().count())));
        }
    }
    Ok(())
}

fn build(elements: Vec<Element>) -> Result<Gs1, Gs1Error> {
    let mut s = String::from("^");
    for (i, e) in elements.iter().enumerate() {
        check_value(&e.ai, &e.value)?;
        s.push_str(&e.ai);
        s.push_str(&e.value);
        if i + 1 < elements.len() && !predefined_length(&e.ai) {
            s.push('^');
        }
    }
    let get = |ai: &str| {
        elements
            .iter()
            .find(|e| e.ai == ai)
            .map(|e| e.value.clone())
    };
    let expiry = get("17").map(|v| format!("20{}-{}-{}", &v[0..2], &v[2..4], &v[4..6]));
    Ok(Gs1 {
        gtin: get("01"),
        batch: get("10"),
        serial: get("21"),
        expiry,
        element_string: s,
        elements,
    })
}

/// Parse a bracketed (`(01)…`), caret (`^01…`) or raw (`]d2` / GS-separated) element string.
pub fn parse_element_string(text: &str) -> Result<Gs1, Gs1Error> {
    let t = text.trim();
    let mut elements = Vec::new();
    if t.starts_with('(') {
        let mut rest = t;
        while let Some(r) = rest.strip_prefix('(') {
            let (ai, after) = r
                .split_once(')')
                .ok_or_else(|| Gs1Error::Syntax("unclosed '('".into()))?;
            let end = after.find('(').unwrap_or(after.len());
            elements.push(Element {
                ai: ai.to_owned(),
                value: after[..end].to_owned(),
            });
            rest = &after[end..];
        }
        if !rest.is_empty() {
            return Err(Gs1Error::Syntax(format!("trailing {rest:?}")));
        }
    } else {
        let body = t
            .strip_prefix(']')
            .map(|r| r.get(2..).unwrap_or(""))
            .or_else(|| t.strip_prefix('^'))
            .or_else(|| t.strip_prefix('\u{1d}'))
            .ok_or_else(|| Gs1Error::Syntax("no GS1 prefix ((, ^, ]d2 or GS)".into()))?;
        // GS1 element strings use an ASCII character set; anything else would
        // also make the fixed-length slicing below cut inside a character.
        if !body.is_ascii() {
            return Err(Gs1Error::Syntax(
                "a GS1 element string holds only ASCII characters".into(),
            ));
        }
        let mut rest = body.replace('\u{1d}', "^");
        while !rest.is_empty() {
            let ai = ai_at(&rest)
                .ok_or_else(|| Gs1Error::UnknownAi(rest.chars().take(4).collect()))?
                .to_owned();
            let after = &rest[ai.len()..];
            let len = fixed_len(&ai).unwrap_or_else(|| after.find('^').unwrap_or(after.len()));
            let len = len.min(after.len());
            elements.push(Element {
                ai: ai.clone(),
                value: after[..len].to_owned(),
            });
            rest = after[len..].trim_start_matches('^').to_owned();
        }
    }
    if elements.is_empty() {
        return Err(Gs1Error::Syntax("no elements".into()));
    }
    build(elements)
}

fn fixed_len(ai: &str) -> Option<usize> {
    if !predefined_length(ai) {
        return None;
    }
    let parts = spec(ai)?;
    let mut n = 0;
    for p in parts {
        n += match p {
            Part::N(k) | Part::Nc(k) => *k,
            Part::Date | Part::DateStrict => 6,
            _ => return None,
        };
    }
    Some(n)
}

/// Digital Link primary keys and the qualifier sequences allowed after each.
fn qualifier_paths(key: &str) -> Option<&'static [&'static [&'static str]]> {
    Some(match key {
        "01" => &[&["22", "10", "21"], &["235"]],
        "8006" => &[&["22", "10", "21"]],
        "414" => &[&["254"], &["7040"]],
        "8010" => &[&["8011"]],
        "8017" | "8018" => &[&["8019"]],
        "00" | "253" | "255" | "401" | "402" | "417" | "8003" | "8004" | "8013" => &[&[]],
        _ => return None,
    })
}

fn alias(seg: &str) -> &str {
    match seg {
        "gtin" => "01",
        "cpv" => "22",
        "lot" => "10",
        "ser" => "21",
        "sscc" => "00",
        "gln" => "414",
        "giai" => "8004",
        "gsrn" => "8018",
        other => other,
    }
}

fn pct_decode(s: &str, plus_is_space: bool) -> Result<String, Gs1Error> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let h = s
                    .get(i + 1..i + 3)
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| Gs1Error::Link(format!("bad percent escape in {s:?}")))?;
                out.push(h);
                i += 3;
            }
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| Gs1Error::Link("escape is not UTF-8".into()))
}

/// Options for Digital Link parsing.
#[derive(Debug, Clone, Copy, Default)]
pub struct LinkOptions {
    /// Accept GTIN-8/12/13 in the URI and pad them to 14 digits (many real
    /// packs do this; the standard asks for 14).
    pub permit_zero_suppressed_gtin: bool,
}

/// Parse a GS1 Digital Link URI.
pub fn parse_digital_link(uri: &str, opt: LinkOptions) -> Result<Gs1, Gs1Error> {
    let lower = uri.get(..8).unwrap_or("").to_ascii_lowercase();
    let rest = if lower.starts_with("https://") {
        &uri[8..]
    } else if lower.starts_with("http://") {
        &uri[7..]
    } else {
        return Err(Gs1Error::Syntax("not an http(s) URI".into()));
    };
    if let Some(c) = uri
        .chars()
        .find(|c| "<>{}\\^`\" ".contains(*c) || c.is_control())
    {
        return Err(Gs1Error::Link(format!(
            "character {c:?} is not allowed in a URI"
        )));
    }
    let rest = rest.split('#').next().unwrap_or("");
    let (hostpath, query) = rest.split_once('?').unwrap_or((rest, ""));
    let (host, path) = hostpath.split_once('/').unwrap_or((hostpath, ""));
    let host_ok = !host.is_empty()
        && (host.starts_with('[') && host.ends_with(']')
            || host
                .rsplit_once(':')
                .map_or(host, |(h, p)| {
                    if p.bytes().all(|b| b.is_ascii_digit()) {
                        h
                    } else {
                        host
                    }
                })
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.'));
    if !host_ok {
        return Err(Gs1Error::Link(format!("bad host {host:?}")));
    }
    let segs: Vec<&str> = path.split('/').collect();
    if segs.iter().any(|s| s.is_empty()) {
        return Err(Gs1Error::Link("empty path segment".into()));
    }
    // From the right: (AI, value) pairs back to the primary key; what is left is the stem.
    let mut pairs: Vec<(String, String)> = Vec::new();
    let mut i = segs.len();
    let mut key_at = None;
    while i >= 2 {
        let ai = alias(segs[i - 2]);
        if spec(ai).is_none() || !ai.bytes().all(|b| b.is_ascii_digit()) {
            break;
        }
        pairs.insert(0, (ai.to_owned(), pct_decode(segs[i - 1], false)?));
        if qualifier_paths(ai).is_some() {
            key_at = Some(pairs.len());
        }
        i -= 2;
    }
    // The primary key is the leftmost key AI; anything left of it is stem.
    let Some(_) = key_at else {
        return Err(Gs1Error::Link("no primary key in the path".into()));
    };
    let first_key = pairs
        .iter()
        .position(|(ai, _)| qualifier_paths(ai).is_some())
        .ok_or_else(|| Gs1Error::Link("no primary key in the path".into()))?;
    let pairs = pairs.split_off(first_key);
    let key = pairs[0].0.clone();
    let paths = qualifier_paths(&key).unwrap_or(&[]);
    let quals: Vec<&str> = pairs[1..].iter().map(|(a, _)| a.as_str()).collect();
    // Qualifiers must follow one allowed sequence, in order.
    let fits = |seq: &[&str]| {
        let mut it = seq.iter();
        quals.iter().all(|q| it.any(|s| s == q))
    };
    let consistent: Vec<&[&str]> = paths.iter().copied().filter(|s| fits(s)).collect();
    if consistent.is_empty() {
        return Err(Gs1Error::Link(format!(
            "{} cannot qualify ({key}) here",
            quals.join(", ")
        )));
    }
    let mut elements: Vec<Element> = pairs
        .into_iter()
        .map(|(ai, value)| Element { ai, value })
        .collect();
    for kv in query.split('&') {
        let Some((k, v)) = kv.split_once('=') else {
            continue;
        };
        if k.is_empty() || !k.bytes().all(|b| b.is_ascii_digit()) || spec(k).is_none() {
            continue; // Not an AI: other query parameters are allowed and ignored.
        }
        if consistent.iter().any(|s| s.contains(&k)) || k == key {
            return Err(Gs1Error::Link(format!(
                "({k}) belongs in the path, not the query"
            )));
        }
        if elements.iter().any(|e| e.ai == k) {
            return Err(Gs1Error::Link(format!("({k}) appears twice")));
        }
        elements.push(Element {
            ai: k.to_owned(),
            value: pct_decode(v, true)?,
        });
    }
    for e in elements.iter_mut() {
        if (e.ai == "01" || e.ai == "02") && e.value.len() != 14 {
            if opt.permit_zero_suppressed_gtin && [8, 12, 13].contains(&e.value.len()) {
                e.value = format!("{:0>14}", e.value);
            } else {
                return Err(Gs1Error::Value {
                    ai: e.ai.clone(),
                    problem: format!(
                        "a GTIN in a Digital Link has 14 digits, not {}",
                        e.value.len()
                    ),
                });
            }
        }
    }
    build(elements)
}

/// Either form.
pub fn parse(text: &str) -> Result<Gs1, Gs1Error> {
    let t = text.trim();
    if t.len() > 2048 {
        return Err(Gs1Error::Syntax("longer than 2048 characters".into()));
    }
    if t.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("http")) {
        parse_digital_link(
            t,
            LinkOptions {
                permit_zero_suppressed_gtin: true,
            },
        )
    } else {
        parse_element_string(t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn element_strings_in_three_notations() -> Result<(), Gs1Error> {
        // 01 and 17 have predefined lengths: FNC1 only at the start.
        let want = "^01095060001343521727123110ABC123";
        for t in [
            "(01)09506000134352(17)271231(10)ABC123",
            "^010950600013435217271231^10ABC123",
            "]d2010950600013435217271231\u{1d}10ABC123",
        ] {
            let g = parse(t)?;
            assert_eq!(g.element_string, want, "{t}");
            assert_eq!(g.gtin.as_deref(), Some("09506000134352"));
            assert_eq!(g.expiry.as_deref(), Some("2027-12-31"));
            assert_eq!(g.batch.as_deref(), Some("ABC123"));
        }
        Ok(())
    }

    /// Found by cargo-fuzz (scripts/fuzz/all): a multi-byte character
    /// where a fixed-length value ends used to panic on a char boundary.
    #[test]
    fn non_ascii_inside_a_fixed_length_value_is_refused_not_a_panic() {
        let e = parse("\u{1d}20(\u{514}").unwrap_err();
        assert!(e.to_string().contains("ASCII"), "{e}");
        assert!(parse("(01)0950600013435\u{e9}").is_err());
    }

    #[test]
    fn bad_check_digits_and_dates_are_refused_with_a_reason() {
        let e = parse("(01)09506000134353")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("check digit"), "{e}");
        let e = parse("(01)09506000134352(17)271331")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("not a date"), "{e}");
        assert!(matches!(parse("(99)"), Err(Gs1Error::Value { .. })));
        assert!(matches!(parse("hello"), Err(Gs1Error::Syntax(_))));
    }
}
