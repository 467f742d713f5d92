//! What a scanned code says: eMediplan prescriptions, GS1 pack codes, RxEdge
//! pickup tickets, or unknown (kept and sent for pharmacist review, never dropped).
//! Pure parsers with size limits; malformed input is an error with a reason.

pub mod chmed;
pub mod gs1;
pub mod posology;

use serde::Serialize;

/// Longest text accepted from one code.
pub const MAX_TEXT: usize = 64 * 1024;

/// A parsed payload.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Payload {
    /// CHMED16A prescription or medication plan.
    Chmed16a(chmed::Chmed16a),
    /// CHMED23A document.
    Chmed23a(chmed::Chmed23a),
    /// One code of a chunked CHMED23A set.
    Chmed23aChunk(chmed::Chunk),
    /// GS1 Digital Link or element string.
    Gs1(gs1::Gs1),
    /// An RxEdge pickup ticket (verified by the caller with the hub's key).
    PickupTicket {
        /// The ticket text.
        ticket: String,
    },
    /// Anything else, or a recognised kind that failed to parse (with why).
    Unknown {
        /// The text as scanned.
        text: String,
        /// Why it is not one of the kinds above, if it looked like one.
        problem: Option<String>,
    },
}

impl Payload {
    /// Stable kind name.
    pub fn kind(&self) -> &'static str {
        match self {
            Payload::Chmed16a(_) => "chmed16a",
            Payload::Chmed23a(_) => "chmed23a",
            Payload::Chmed23aChunk(_) => "chmed23a_chunk",
            Payload::Gs1(_) => "gs1",
            Payload::PickupTicket { .. } => "pickup_ticket",
            Payload::Unknown { .. } => "unknown",
        }
    }

    /// An eMediplan's patient and medicaments, whichever version carried them.
    pub fn plan(&self) -> Option<Plan<'_>> {
        match self {
            Payload::Chmed16a(c) => Some(Plan {
                date: Some(&c.date),
                prescriber_gln: c.prescriber_gln.as_deref(),
                patient: Some(&c.patient),
                insurance_card: None,
                medicaments: &c.medicaments,
            }),
            Payload::Chmed23a(c) => Some(Plan {
                date: c.date.as_deref(),
                prescriber_gln: c.prescriber_gln.as_deref(),
                patient: c.patient.as_ref(),
                insurance_card: c.insurance_card.as_deref(),
                medicaments: &c.medicaments,
            }),
            _ => None,
        }
    }
}

/// What CHMED16A and CHMED23A both say, for code that treats them alike.
#[derive(Debug, Clone, Copy)]
pub struct Plan<'a> {
    /// Created.
    pub date: Option<&'a str>,
    /// The prescriber's GLN.
    pub prescriber_gln: Option<&'a str>,
    /// The patient, when named.
    pub patient: Option<&'a chmed::Patient>,
    /// The insurance card number (CHMED23A only).
    pub insurance_card: Option<&'a str>,
    /// Medicaments.
    pub medicaments: &'a [chmed::Medicament],
}

/// Classify and parse a scanned text. Never fails: what cannot be read is
/// `Unknown`, with the reason when the text claimed to be something.
pub fn parse(text: &str) -> Payload {
    let unknown = |problem: Option<String>| Payload::Unknown {
        text: text.chars().take(MAX_TEXT).collect(),
        problem,
    };
    if text.len() > MAX_TEXT {
        return unknown(Some(format!("longer than {MAX_TEXT} bytes")));
    }
    let t = text.trim();
    if t.starts_with("CHMED16A") {
        return chmed::parse_16a(t)
            .map_or_else(|e| unknown(Some(e.to_string())), Payload::Chmed16a);
    }
    if t.starts_with("CHMED23A.") {
        return match chmed::parse_chunk(t) {
            Ok(Some(c)) => Payload::Chmed23aChunk(c),
            Ok(None) => {
                chmed::parse_23a(t).map_or_else(|e| unknown(Some(e.to_string())), Payload::Chmed23a)
            }
            Err(e) => unknown(Some(e.to_string())),
        };
    }
    if let Some(ticket) = t.strip_prefix("RXEDGE-PICKUP:") {
        return Payload::PickupTicket {
            ticket: ticket.to_owned(),
        };
    }
    let gs1_like = t.starts_with('(')
        || t.starts_with("]d2")
        || t.starts_with("]Q3")
        || t.starts_with('\u{1d}')
        || t.starts_with('^')
        || (t.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("http"))
            && (t.contains("/01/")
                || t.contains("/00/")
                || t.contains("/gtin/")
                || t.contains("/414/")
                || t.contains("/8004/")));
    if gs1_like {
        return gs1::parse(t).map_or_else(|e| unknown(Some(e.to_string())), Payload::Gs1);
    }
    unknown(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn garbage_claiming_to_be_chmed_is_unknown_with_a_reason() {
        for t in [
            "CHMED16A1!!!notbase64",
            "CHMED16A1H4sIAAAA",
            "CHMED16A0{not json",
            "CHMED23A.9/4.xx",
        ] {
            match parse(t) {
                Payload::Unknown {
                    problem: Some(p), ..
                } => assert!(!p.is_empty()),
                other => panic!("{t}: {other:?}"),
            }
        }
        assert!(matches!(
            parse("hello world"),
            Payload::Unknown { problem: None, .. }
        ));
    }

    #[test]
    fn a_gzip_bomb_stops_at_the_limit() -> Result<(), std::io::Error> {
        use base64::Engine as _;
        use std::io::Write as _;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        gz.write_all(&vec![b' '; 8 * 1024 * 1024])?;
        let bomb = base64::engine::general_purpose::STANDARD.encode(gz.finish()?);
        assert!(
            bomb.len() < chmed::MAX_ENCODED,
            "the bomb fits the encoded limit ({})",
            bomb.len()
        );
        match parse(&format!("CHMED16A1{bomb}")) {
            Payload::Unknown {
                problem: Some(p), ..
            } => assert!(p.contains("too large"), "{p}"),
            other => panic!("{other:?}"),
        }
        Ok(())
    }

    #[test]
    fn chunks_assemble_in_any_order() -> Result<(), chmed::ChmedError> {
        use base64::Engine as _;
        use std::io::Write as _;
        let doc = r#"{"Dt":"2022-01-11T09:38:45+01:00","Meds":[{"Id":"Med1","Ps":[{}]}]}"#;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(doc.as_bytes())
            .map_err(|e| chmed::ChmedError::Gzip(e.to_string()))?;
        let b64 = base64::engine::general_purpose::STANDARD.encode(
            gz.finish()
                .map_err(|e| chmed::ChmedError::Gzip(e.to_string()))?,
        );
        let n = 3;
        let size = b64.len().div_ceil(n);
        let parts: Vec<String> = (0..n)
            .map(|i| {
                format!(
                    "CHMED23A.{}/{n}.{}",
                    i + 1,
                    &b64[i * size..((i + 1) * size).min(b64.len())]
                )
            })
            .collect();
        let mut a = chmed::Assembler::default();
        let mut last = None;
        for i in [2, 0, 1] {
            let Payload::Chmed23aChunk(c) = parse(&parts[i]) else {
                panic!("not a chunk")
            };
            last = Some(a.add(c)?);
        }
        match last {
            Some(chmed::Progress::Complete { doc: d, .. }) => {
                let ids: Vec<(&str, usize)> = d
                    .medicaments
                    .iter()
                    .map(|m| (m.id.as_str(), m.posology.len()))
                    .collect();
                assert_eq!(ids, vec![("Med1", 1)]);
            }
            other => panic!("{other:?}"),
        }
        Ok(())
    }

    proptest! {
        /// Whatever comes out of a camera, parsing never panics.
        #[test]
        fn never_panics(s in ".{0,400}", prefix in prop::sample::select(vec!["", "CHMED16A1", "CHMED16A0", "CHMED23A.", "CHMED23A.1/2.", "(01)", "https://id.gs1.org/01/", "]d2", "^"])) {
            let _ = parse(&format!("{prefix}{s}"));
        }
    }
}
