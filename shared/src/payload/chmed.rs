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

/// A CHMED23A document: the typed parts the kiosk shows, and the whole as given.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Chmed23a {
    /// Created.
    pub date: Option<String>,
    /// Medicaments: id and the number of posology entries.
    pub medicaments: Vec<(String, usize)>,
    /// The document.
    pub document: serde_json::Value,
}

/// Decode a single-code CHMED23A payload (`CHMED23A.` + base64(gzip(JSON))).
pub fn parse_23a(text: &str) -> Result<Chmed23a, ChmedError> {
    let b64 = text
        .strip_prefix("CHMED23A.")
        .ok_or_else(|| ChmedError::Json("not CHMED23A".into()))?;
    let doc: serde_json::Value =
        serde_json::from_str(&gunzip_b64(b64)?).map_err(|e| ChmedError::Json(e.to_string()))?;
    let meds = doc
        .get("Meds")
        .and_then(|m| m.as_array())
        .ok_or_else(|| ChmedError::Json("no Meds".into()))?;
    Ok(Chmed23a {
        date: doc.get("Dt").and_then(|d| d.as_str()).map(str::to_owned),
        medicaments: meds
            .iter()
            .map(|m| {
                (
                    m.get("Id")
                        .and_then(|i| i.as_str())
                        .unwrap_or("")
                        .to_owned(),
                    m.get("Ps").and_then(|p| p.as_array()).map_or(0, Vec::len),
                )
            })
            .collect(),
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
        doc: Chmed23a,
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
        parse_23a(&text).map(|doc| Progress::Complete { text, doc })
    }
}
