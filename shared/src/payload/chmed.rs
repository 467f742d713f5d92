//! Swiss eMediplan: CHMED16A (`CHMED16A1` + base64(gzip(JSON)), `CHMED16A0` +
//! JSON) and CHMED23A (`CHMED23A.` + base64(gzip(JSON)), or split over several
//! codes as `CHMED23A.i/n.` chunks).

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use std::io::Read as _;

/// Largest encoded payload read (a QR code holds under 3 KB; chunked sets a few times that).
pub const MAX_ENCODED: usize = 64 * 1024;
/// Largest decompressed JSON (a gzip bomb stops here).
pub const MAX_JSON: usize = 1024 * 1024;

/// Why an eMediplan payload was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChmedError {
    /// Too big before or after decompression.
    #[error("too large: {0}")]
    TooLarge(String),
    /// Not valid base64.
    #[error("not valid base64: {0}")]
    Base64(String),
    /// Not valid gzip.
    #[error("not valid gzip: {0}")]
    Gzip(String),
    /// Not the JSON the format defines.
    #[error("not a valid eMediplan document: {0}")]
    Json(String),
    /// A chunk header is wrong.
    #[error("bad chunk: {0}")]
    Chunk(String),
}

fn gunzip_b64(b64: &str) -> Result<String, ChmedError> {
    if b64.len() > MAX_ENCODED {
        return Err(ChmedError::TooLarge(format!("{} encoded bytes", b64.len())));
    }
    let gz = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .map_err(|e| ChmedError::Base64(e.to_string()))?;
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(&gz[..])
        .take(MAX_JSON as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| ChmedError::Gzip(e.to_string()))?;
    if out.len() > MAX_JSON {
        return Err(ChmedError::TooLarge(format!(
            "more than {MAX_JSON} bytes once decompressed"
        )));
    }
    String::from_utf8(out).map_err(|e| ChmedError::Json(e.to_string()))
}

/// A dose schedule line (CHMED16A `Pos`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Posology {
    /// Morning, midday, evening, night.
    #[serde(rename = "D", default, skip_serializing_if = "Option::is_none")]
    pub daily: Option<Vec<f64>>,
    /// From.
    #[serde(rename = "DtFrom", default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// To.
    #[serde(rename = "DtTo", default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// As needed.
    #[serde(rename = "InRes", default, skip_serializing_if = "Option::is_none")]
    pub as_needed: Option<serde_json::Value>,
    /// A schedule that is not four daily doses, in words (CHMED23A free
    /// text, cycles); CHMED16A has no such field.
    #[serde(rename = "text", default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

/// A medicament (CHMED16A `Medicaments`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Medicament {
    /// Identifier.
    #[serde(rename = "Id")]
    pub id: String,
    /// Identifier type: 1 none (free text), 2 GTIN, 3 Pharmacode, 4 product number.
    #[serde(rename = "IdType")]
    pub id_type: u8,
    /// Dose schedule.
    #[serde(rename = "Pos", default)]
    pub posology: Vec<Posology>,
    /// Unit.
    #[serde(rename = "Unit", default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    /// Route of administration.
    #[serde(rename = "Roa", default, skip_serializing_if = "Option::is_none")]
    pub route: Option<String>,
    /// Reason for taking.
    #[serde(rename = "TkgRsn", default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Application instructions.
    #[serde(rename = "AppInstr", default, skip_serializing_if = "Option::is_none")]
    pub instructions: Option<String>,
    /// Number of packs to dispense.
    #[serde(rename = "NbPack", default, skip_serializing_if = "Option::is_none")]
    pub packs: Option<f64>,
    /// Substitution not allowed.
    #[serde(rename = "Subs", default, skip_serializing_if = "Option::is_none")]
    pub substitution: Option<u8>,
}

impl Medicament {
    /// Human label of the id type.
    pub fn id_type_label(&self) -> &'static str {
        match self.id_type {
            1 => "none",
            2 => "GTIN",
            3 => "Pharmacode",
            4 => "product number",
            _ => "unknown",
        }
    }
}

/// The patient (CHMED16A `Patient`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Patient {
    /// First name.
    #[serde(rename = "FName")]
    pub first_name: String,
    /// Last name.
    #[serde(rename = "LName")]
    pub last_name: String,
    /// Birth date.
    #[serde(rename = "BDt")]
    pub birth_date: String,
    /// 1 male, 2 female.
    #[serde(rename = "Gender", default, skip_serializing_if = "Option::is_none")]
    pub gender: Option<u8>,
    /// Language.
    #[serde(rename = "Lng", default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    /// Health data (measures, risks), kept as given.
    #[serde(rename = "Med", default, skip_serializing_if = "Option::is_none")]
    pub medical: Option<serde_json::Value>,
}

/// A CHMED16A document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Chmed16a {
    /// Document id.
    #[serde(rename = "Id")]
    pub id: String,
    /// Type: 1 medication plan, 2 prescription, 3 polymedication check.
    #[serde(rename = "MedType")]
    pub med_type: u8,
    /// Created.
    #[serde(rename = "Dt")]
    pub date: String,
    /// Author: the prescriber's GLN.
    #[serde(rename = "Auth", default, skip_serializing_if = "Option::is_none")]
    pub prescriber_gln: Option<String>,
    /// Patient.
    #[serde(rename = "Patient")]
    pub patient: Patient,
    /// Medicaments.
    #[serde(rename = "Medicaments", default)]
    pub medicaments: Vec<Medicament>,
    /// Remark.
    #[serde(rename = "Rmk", default, skip_serializing_if = "Option::is_none")]
    pub remark: Option<String>,
}

/// Decode a CHMED16A payload (`CHMED16A0…` or `CHMED16A1…`).
pub fn parse_16a(text: &str) -> Result<Chmed16a, ChmedError> {
    let json = if let Some(b) = text.strip_prefix("CHMED16A1") {
        gunzip_b64(b)?
    } else if let Some(j) = text.strip_prefix("CHMED16A0") {
        if j.len() > MAX_JSON {
            return Err(ChmedError::TooLarge(format!("{} bytes of JSON", j.len())));
        }
        j.to_owned()
    } else {
        return Err(ChmedError::Json("not CHMED16A".into()));
    };
    serde_json::from_str(&json).map_err(|e| ChmedError::Json(e.to_string()))
}

/// A CHMED23A document, read into the same typed parts as CHMED16A (so the
/// hub files, checks and shows both alike), and the whole as given.
///
/// Keys are matched without regard to case: the published specification
/// writes them in camelCase (`patient`, `meds`, `pos`, `po`), while earlier
/// generators wrote them capitalised (`Meds`, `Ps`, `PO`) as in the fixture
/// set. Both are real documents patients carry.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Chmed23a {
    /// Created.
    pub date: Option<String>,
    /// 1 medication plan, 3 prescription.
    pub med_type: Option<u8>,
    /// The prescriber's GLN (`hcPerson.gln`).
    pub prescriber_gln: Option<String>,
    /// The patient, when the document names one (first and last name or birth date).
    pub patient: Option<Patient>,
    /// The insurance card number (`ids` entry of type 1).
    pub insurance_card: Option<String>,
    /// Medicaments.
    pub medicaments: Vec<Medicament>,
    /// Remark.
    pub remark: Option<String>,
    /// The document.
    pub document: serde_json::Value,
}

/// `v[name]` for the first of `names` found, ignoring ASCII case.
pub(crate) fn field<'a>(v: &'a serde_json::Value, names: &[&str]) -> Option<&'a serde_json::Value> {
    let obj = v.as_object()?;
    names.iter().find_map(|n| {
        obj.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(n))
            .map(|(_, x)| x)
    })
}

fn text_of(v: &serde_json::Value, names: &[&str]) -> Option<String> {
    match field(v, names)? {
        serde_json::Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

pub(crate) fn array_of<'a>(v: &'a serde_json::Value, names: &[&str]) -> &'a [serde_json::Value] {
    field(v, names)
        .and_then(|a| a.as_array())
        .map_or(&[], Vec::as_slice)
}

fn small_int(v: &serde_json::Value, names: &[&str]) -> Option<u8> {
    field(v, names)
        .and_then(serde_json::Value::as_u64)
        .and_then(|n| u8::try_from(n).ok())
}

fn posology_23a(p: &serde_json::Value) -> Posology {
    let po = field(p, &["po"]).cloned().unwrap_or_default();
    let daily = (small_int(&po, &["t"]) == Some(1))
        .then(|| {
            let ds: Vec<f64> = array_of(&po, &["ds"])
                .iter()
                .filter_map(serde_json::Value::as_f64)
                .collect();
            (ds.len() == 4).then_some(ds)
        })
        .flatten();
    Posology {
        text: if daily.is_some() {
            None
        } else {
            // Unreadable structure still says so, rather than nothing.
            Some(super::posology::describe(&po).unwrap_or_else(|| "see the plan's schedule".into()))
        },
        daily,
        from: text_of(p, &["dtFrom"]),
        to: text_of(p, &["dtTo"]),
        as_needed: field(p, &["inRes"])
            .filter(|r| r.as_bool() == Some(true))
            .cloned(),
    }
}

fn medicament_23a(m: &serde_json::Value) -> Medicament {
    let pos = array_of(m, &["pos", "ps"]);
    Medicament {
        id: text_of(m, &["id"]).unwrap_or_default(),
        // An id without a type is the plan's own label ("Med1"), not a GTIN.
        id_type: small_int(m, &["idType"]).unwrap_or(1),
        posology: pos.iter().map(posology_23a).collect(),
        unit: text_of(m, &["unit", "u"])
            .or_else(|| pos.iter().find_map(|p| text_of(p, &["unit", "u"]))),
        route: pos.iter().find_map(|p| text_of(p, &["roa"])),
        reason: text_of(m, &["rsn", "tkgRsn"]),
        instructions: text_of(m, &["appInstr"])
            .or_else(|| pos.iter().find_map(|p| text_of(p, &["appInstr"]))),
        packs: field(m, &["nbPack"]).and_then(serde_json::Value::as_f64),
        substitution: (field(m, &["isNotSub"]).and_then(serde_json::Value::as_bool) == Some(true))
            .then_some(1),
    }
}

fn patient_23a(p: &serde_json::Value) -> Option<Patient> {
    let first_name = text_of(p, &["fName"]).unwrap_or_default();
    let last_name = text_of(p, &["lName"]).unwrap_or_default();
    let birth_date = text_of(p, &["bdt", "bDt"]).unwrap_or_default();
    if first_name.is_empty() && last_name.is_empty() && birth_date.is_empty() {
        return None;
    }
    Some(Patient {
        first_name,
        last_name,
        birth_date,
        gender: small_int(p, &["gender"]),
        language: text_of(p, &["lng"]).map(|l| l.to_lowercase()),
        medical: field(p, &["mData", "med"]).cloned(),
    })
}

/// Decode a single-code CHMED23A payload (`CHMED23A.` + base64(gzip(JSON))).
pub fn parse_23a(text: &str) -> Result<Chmed23a, ChmedError> {
    let b64 = text
        .strip_prefix("CHMED23A.")
        .ok_or_else(|| ChmedError::Json("not CHMED23A".into()))?;
    let doc: serde_json::Value =
        serde_json::from_str(&gunzip_b64(b64)?).map_err(|e| ChmedError::Json(e.to_string()))?;
    let meds = field(&doc, &["meds"])
        .and_then(|m| m.as_array())
        .ok_or_else(|| ChmedError::Json("no medicaments (meds)".into()))?;
    let patient = field(&doc, &["patient"]);
    Ok(Chmed23a {
        date: text_of(&doc, &["dt"]),
        med_type: small_int(&doc, &["medType"]),
        prescriber_gln: field(&doc, &["hcPerson"]).and_then(|h| text_of(h, &["gln"])),
        patient: patient.and_then(patient_23a),
        insurance_card: patient.and_then(|p| {
            array_of(p, &["ids"])
                .iter()
                .find(|i| small_int(i, &["type"]) == Some(1))
                .and_then(|i| text_of(i, &["val"]))
        }),
        medicaments: meds.iter().map(medicament_23a).collect(),
        remark: text_of(&doc, &["rmk"]),
        document: doc,
    })
}

/// One code of a chunked CHMED23A set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Chunk {
    /// 1-based index.
    pub index: u32,
    /// How many codes in the set.
    pub total: u32,
    /// The part.
    pub data: String,
}

/// Read a `CHMED23A.i/n.` chunk header.
pub fn parse_chunk(text: &str) -> Result<Option<Chunk>, ChmedError> {
    let Some(rest) = text.strip_prefix("CHMED23A.") else {
        return Ok(None);
    };
    let Some((head, data)) = rest.split_once('.') else {
        return Ok(None);
    };
    let Some((i, n)) = head.split_once('/') else {
        return Ok(None);
    };
    let (Ok(index), Ok(total)) = (i.parse::<u32>(), n.parse::<u32>()) else {
        return Ok(None);
    };
    if total == 0 || total > 64 || index == 0 || index > total {
        return Err(ChmedError::Chunk(format!("code {index} of {total}")));
    }
    Ok(Some(Chunk {
        index,
        total,
        data: data.to_owned(),
    }))
}

/// Collects the codes of a chunked set, scanned in any order.
#[derive(Debug, Clone, Default)]
pub struct Assembler {
    total: Option<u32>,
    parts: std::collections::BTreeMap<u32, String>,
}

/// Where a set stands.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum Progress {
    /// "2 of 4 codes read".
    Partial {
        /// Read.
        have: u32,
        /// Needed.
        total: u32,
    },
    /// All read and decoded.
    Complete {
        /// The set joined into one single-code payload (`CHMED23A.` + base64).
        text: String,
        /// Decoded.
        doc: Box<Chmed23a>,
    },
}

impl Assembler {
    /// Add a chunk. A chunk of a different-size set starts a new set.
    pub fn add(&mut self, c: Chunk) -> Result<Progress, ChmedError> {
        if self.total != Some(c.total) {
            self.total = Some(c.total);
            self.parts.clear();
        }
        self.parts.insert(c.index, c.data);
        let have = self.parts.len() as u32;
        if have < c.total {
            return Ok(Progress::Partial {
                have,
                total: c.total,
            });
        }
        let joined: String = self.parts.values().map(String::as_str).collect();
        self.parts.clear();
        self.total = None;
        let text = format!("CHMED23A.{joined}");
        parse_23a(&text).map(|doc| Progress::Complete {
            text,
            doc: Box::new(doc),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write as _;

    fn encode(json: &serde_json::Value) -> String {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(json.to_string().as_bytes()).unwrap();
        format!(
            "CHMED23A.{}",
            base64::engine::general_purpose::STANDARD.encode(gz.finish().unwrap())
        )
    }

    #[test]
    fn chmed23a_in_the_specifications_camel_case_names_its_patient_and_items() {
        let doc = serde_json::json!({
            "patient": {"fName": "Alice", "lName": "Louloui", "bdt": "1945-01-19", "gender": 2,
                "lng": "DE", "ids": [{"type": 2, "sId": "urn:x", "val": "P1"}, {"type": 1, "val": "80756000000000001"}],
                "mData": {"rcs": [{"id": 6, "rIds": [503]}]}},
            "hcPerson": {"fName": "Hans", "lName": "Muster", "gln": "7601000000000"},
            "meds": [
                {"id": "7680334810013", "idType": 2, "nbPack": 2.0, "rsn": "Pain", "isNotSub": true,
                 "pos": [{"dtFrom": "2023-09-20", "po": {"t": 1, "ds": [1, 0, 0.5, 0]}, "unit": "Stk"}]},
                {"id": "Voltaren Emulgel", "idType": 1,
                 "pos": [{"po": {"t": 2, "text": "three times a day on the knee"}, "inRes": true}]},
                {"id": "1246564", "idType": 4,
                 "pos": [{"po": {"t": 4, "cyDu": 1, "cyDuU": 5, "tdo": {"t": 1, "do": {"t": 1, "a": 1}}, "tdpc": 1}}]}
            ],
            "medType": 3, "auth": 1, "dt": "2024-01-09T09:14:36+01:00"
        });
        let c = parse_23a(&encode(&doc)).unwrap();
        let p = c.patient.as_ref().unwrap();
        assert_eq!(
            (
                p.first_name.as_str(),
                p.last_name.as_str(),
                p.birth_date.as_str()
            ),
            ("Alice", "Louloui", "1945-01-19")
        );
        assert_eq!(p.language.as_deref(), Some("de"));
        assert!(p.medical.is_some());
        assert_eq!(c.insurance_card.as_deref(), Some("80756000000000001"));
        assert_eq!(c.prescriber_gln.as_deref(), Some("7601000000000"));
        assert_eq!(c.med_type, Some(3));
        let [gtin, free, cyclic] = &c.medicaments[..] else {
            panic!("{:?}", c.medicaments)
        };
        assert_eq!(
            (gtin.id_type, gtin.packs, gtin.substitution),
            (2, Some(2.0), Some(1))
        );
        assert_eq!(gtin.posology[0].daily, Some(vec![1.0, 0.0, 0.5, 0.0]));
        assert_eq!(gtin.unit.as_deref(), Some("Stk"));
        assert_eq!(gtin.reason.as_deref(), Some("Pain"));
        assert_eq!(
            free.posology[0].text.as_deref(),
            Some("three times a day on the knee")
        );
        assert!(free.posology[0].as_needed.is_some());
        assert_eq!(cyclic.posology[0].text.as_deref(), Some("1 every week"));
        assert_eq!(cyclic.substitution, None);
    }

    #[test]
    fn chmed23a_without_a_patient_or_medicaments() {
        let c = parse_23a(&encode(
            &serde_json::json!({"Meds": [{"Id": "Med1", "Ps": []}], "Dt": "2022"}),
        ))
        .unwrap();
        assert_eq!(c.patient, None);
        assert_eq!(
            c.medicaments[0].id_type, 1,
            "an untyped id is the plan's own label"
        );
        assert_eq!(c.date.as_deref(), Some("2022"));
        let e = parse_23a(&encode(&serde_json::json!({"patient": {"fName": "A"}}))).unwrap_err();
        assert!(e.to_string().contains("no medicaments"), "{e}");
        // A patient object with nothing that names anyone is no patient.
        let c = parse_23a(&encode(
            &serde_json::json!({"patient": {"gender": 1}, "meds": []}),
        ))
        .unwrap();
        assert_eq!(c.patient, None);
    }
}
