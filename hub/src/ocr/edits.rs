//! Corrections of an OCR draft by the pharmacist or technician reviewing it.
//!
//! A field is named by a dotted path (`patient.name`, `items.0.dose`). Which
//! fields may be corrected, what a value must look like, and how a value is
//! read and written are pure functions here; `correct` stores the new draft
//! and the old → new trail row in one transaction.

use crate::store::Db;
use serde::Serialize;
use serde_json::Value;
use sqlx::Row as _;

/// Top-level fields a person may correct (label for screens).
pub const TOP: [(&str, &str); 5] = [
    ("patient.name", "Patient"),
    ("patient.birth_date", "Date of birth"),
    ("prescriber.name", "Prescriber"),
    ("date", "Date"),
    ("notes", "Notes"),
];

/// Per-item fields a person may correct (label for screens).
pub const ITEM: [(&str, &str); 4] = [
    ("name", "drug"),
    ("strength", "strength"),
    ("dose", "dose"),
    ("quantity", "quantity"),
];

/// Why a correction is refused.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum EditError {
    /// Not a field that may be corrected.
    #[error("{0} is not a field of this draft that can be corrected")]
    Field(String),
    /// The value does not fit the field.
    #[error("{0}")]
    Value(String),
}

enum Slot<'a> {
    /// A read field: `{value, confidence, bbox}`.
    Read(&'a str, &'a str),
    /// An item's plain value.
    Item(usize, &'a str),
}

fn slot(field: &str) -> Option<Slot<'_>> {
    if let Some(rest) = field.strip_prefix("items.") {
        let (i, k) = rest.split_once('.')?;
        let i: usize = i.parse().ok().filter(|i| *i < 100)?;
        return ITEM
            .iter()
            .any(|(n, _)| *n == k)
            .then_some(Slot::Item(i, k));
    }
    TOP.iter().find(|(f, _)| *f == field)?;
    Some(match field.split_once('.') {
        Some((a, b)) => Slot::Read(a, b),
        None => Slot::Read(field, ""),
    })
}

fn read_field<'a>(d: &'a Value, a: &str, b: &str) -> &'a Value {
    if b.is_empty() {
        &d[a]
    } else {
        &d[a][b]
    }
}

/// The current value of `field` in `draft` ("" when not read).
pub fn current(draft: &Value, field: &str) -> Result<String, EditError> {
    let bad = || EditError::Field(field.to_owned());
    Ok(match slot(field).ok_or_else(bad)? {
        Slot::Read(a, b) => read_field(draft, a, b)["value"]
            .as_str()
            .unwrap_or("")
            .to_owned(),
        Slot::Item(i, k) => {
            let item = draft["items"].get(i).ok_or_else(bad)?;
            match &item[k] {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                _ => String::new(),
            }
        }
    })
}

/// Check a new value for `field`.
pub fn validate(field: &str, value: &str) -> Result<(), EditError> {
    let v = value.trim();
    let bad = |m: &str| Err(EditError::Value(m.into()));
    if v.chars().count() > 200 || v.chars().any(char::is_control) {
        return bad("a value is at most 200 characters, without control characters");
    }
    if v.is_empty() {
        return Ok(()); // "not on the page"
    }
    let is_date = |s: &str| chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").is_ok();
    match field.rsplit('.').next().unwrap_or("") {
        "birth_date" | "date" if !is_date(v) => bad("a date is written YYYY-MM-DD"),
        "dose"
            if !v.split('-').count().eq(&4)
                || !v.split('-').all(|p| {
                    !p.is_empty() && p.parse::<f32>().is_ok_and(|x| (0.0..=20.0).contains(&x))
                }) =>
        {
            bad("a dose is morning-noon-evening-night, e.g. 1-0-1-0 or 0.5-0-0-0")
        }
        "quantity" if !v.parse::<u32>().is_ok_and(|q| (1..=999).contains(&q)) => {
            bad("a quantity is a whole number of packs from 1 to 999")
        }
        _ => Ok(()),
    }
}

/// Write `value` into `field` of `draft`; a corrected read field is marked
/// sure (confidence 1) and keeps its box. The path is recorded in
/// `draft.corrected`.
pub fn apply(draft: &mut Value, field: &str, value: &str) -> Result<(), EditError> {
    let bad = || EditError::Field(field.to_owned());
    let v = value.trim();
    match slot(field).ok_or_else(bad)? {
        Slot::Read(a, b) => {
            if !draft[a].is_object() {
                draft[a] = serde_json::json!({});
            }
            let target = if b.is_empty() {
                &mut draft[a]
            } else {
                &mut draft[a][b]
            };
            if target.is_object() {
                target["value"] = Value::from(v);
                target["confidence"] = Value::from(1.0);
            } else {
                *target = serde_json::json!({ "value": v, "confidence": 1.0 });
            }
        }
        Slot::Item(i, k) => {
            let item = draft["items"].get_mut(i).ok_or_else(bad)?;
            item[k] = match (k, v.parse::<u64>()) {
                ("quantity", Ok(q)) => Value::from(q),
                _ if v.is_empty() => Value::Null,
                _ => Value::from(v),
            };
        }
    }
    let list = &mut draft["corrected"];
    if !list.is_array() {
        *list = Value::Array(Vec::new());
    }
    if let Some(a) = list.as_array_mut() {
        if !a.iter().any(|x| x == field) {
            a.push(Value::from(field));
        }
    }
    Ok(())
}

/// One correction, as the trail shows it.
#[derive(Debug, Clone, Serialize)]
pub struct Edit {
    /// Field path.
    pub field: String,
    /// Before.
    pub old_value: String,
    /// After.
    pub new_value: String,
    /// Who.
    pub actor: String,
    /// When (ms).
    pub at_ms: i64,
}

/// Why a correction could not be stored.
#[derive(Debug, thiserror::Error)]
pub enum CorrectError {
    /// Refused in words.
    #[error(transparent)]
    Edit(#[from] EditError),
    /// No such job, or it has no draft yet.
    #[error("{0}")]
    NotFound(String),
    /// Store.
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

/// Correct one field of a job's draft: the draft and its trail row in one
/// transaction. Returns the edit (unchanged values are not recorded).
pub async fn correct(
    db: &Db,
    job: &str,
    field: &str,
    value: &str,
    actor: &str,
    now_ms: i64,
) -> Result<Option<Edit>, CorrectError> {
    validate(field, value)?;
    let mut tx = db.pool.begin().await?;
    let text: Option<String> = sqlx::query_scalar("SELECT draft FROM ocr_jobs WHERE id = $1")
        .bind(job)
        .fetch_optional(&mut *tx)
        .await?
        .flatten();
    let mut draft: Value = text
        .and_then(|t| serde_json::from_str(&t).ok())
        .ok_or_else(|| CorrectError::NotFound(format!("OCR job {job} has no draft yet")))?;
    let old = current(&draft, field)?;
    let new = value.trim().to_owned();
    if old == new {
        return Ok(None);
    }
    apply(&mut draft, field, &new)?;
    sqlx::query("UPDATE ocr_jobs SET draft = $1 WHERE id = $2")
        .bind(draft.to_string())
        .bind(job)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "INSERT INTO ocr_edits (job_id, field, old_value, new_value, actor, at_ms) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(job)
    .bind(field)
    .bind(&old)
    .bind(&new)
    .bind(actor)
    .bind(now_ms)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Some(Edit {
        field: field.to_owned(),
        old_value: old,
        new_value: new,
        actor: actor.to_owned(),
        at_ms: now_ms,
    }))
}

/// A job's corrections, oldest first.
pub async fn trail(db: &Db, job: &str) -> Result<Vec<Edit>, sqlx::Error> {
    sqlx::query(
        "SELECT field, old_value, new_value, actor, at_ms FROM ocr_edits WHERE job_id = $1 ORDER BY id",
    )
    .bind(job)
    .fetch_all(&db.pool)
    .await?
    .iter()
    .map(|r| {
        Ok(Edit {
            field: r.try_get("field")?,
            old_value: r.try_get("old_value")?,
            new_value: r.try_get("new_value")?,
            actor: r.try_get("actor")?,
            at_ms: r.try_get("at_ms")?,
        })
    })
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn draft() -> Value {
        json!({
            "patient": { "name": { "value": "Anna Muser", "confidence": 0.6, "bbox": [1, 2, 3, 4] }, "birth_date": null },
            "date": null,
            "items": [ { "name": "Metformln", "strength": "500 mg", "dose": "1-0-1", "quantity": null } ],
        })
    }

    #[test]
    fn fields_are_read_and_corrected_in_place() {
        let mut d = draft();
        assert_eq!(current(&d, "patient.name").unwrap(), "Anna Muser");
        apply(&mut d, "patient.name", " Anna Muster ").unwrap();
        assert_eq!(d["patient"]["name"]["value"], "Anna Muster");
        assert_eq!(d["patient"]["name"]["confidence"], 1.0);
        assert_eq!(
            d["patient"]["name"]["bbox"],
            json!([1, 2, 3, 4]),
            "keeps its box"
        );
        apply(&mut d, "patient.birth_date", "1950-03-04").unwrap();
        assert_eq!(current(&d, "patient.birth_date").unwrap(), "1950-03-04");
        apply(&mut d, "items.0.dose", "1-0-1-0").unwrap();
        apply(&mut d, "items.0.quantity", "2").unwrap();
        assert_eq!(d["items"][0]["quantity"], 2);
        assert_eq!(current(&d, "items.0.quantity").unwrap(), "2");
        apply(&mut d, "date", "2026-11-25").unwrap();
        assert_eq!(
            d["corrected"],
            json!([
                "patient.name",
                "patient.birth_date",
                "items.0.dose",
                "items.0.quantity",
                "date"
            ])
        );
    }

    #[test]
    fn only_known_fields_and_sensible_values_are_accepted() {
        let d = draft();
        for f in [
            "items.1.dose",
            "items.0.price",
            "patient",
            "text",
            "items.x.dose",
            "../etc",
        ] {
            assert!(matches!(current(&d, f), Err(EditError::Field(_))), "{f}");
        }
        for (f, v) in [
            ("patient.birth_date", "04.03.1950"),
            ("items.0.dose", "1-0-1"),
            ("items.0.dose", "1-0-x-0"),
            ("items.0.quantity", "0"),
            ("items.0.quantity", "many"),
            ("patient.name", "a\u{0}b"),
        ] {
            assert!(validate(f, v).is_err(), "{f}={v}");
        }
        assert!(validate("items.0.dose", "0.5-0-0-1").is_ok());
        assert!(
            validate("items.0.strength", "").is_ok(),
            "clearing is allowed"
        );
    }
}
