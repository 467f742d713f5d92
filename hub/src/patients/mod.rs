//! Patient records, kept minimal: name, date of birth, allergies, insurance.
//!
//! A record is made or matched when an eMediplan arrives (same name words
//! and date of birth, see [`rxedge_shared::clinical::match_key`]) or entered
//! at the desk for a paper prescription. Two records of one person are
//! merged: the one that goes points at the one that stays, its orders move
//! over and its allergies join the survivor's. Nothing is deleted, and every
//! change is in the record's log.

pub mod web;

use crate::store::Db;
use rxedge_shared::clinical::{match_key, Allergy};
use serde::Serialize;
use sqlx::Row as _;

/// Patient errors.
#[derive(Debug, thiserror::Error)]
pub enum PatientError {
    /// No such patient.
    #[error("no patient {0}")]
    NotFound(String),
    /// Bad input or a refused change.
    #[error("{0}")]
    Invalid(String),
    /// Database.
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

/// A patient record.
#[derive(Debug, Clone, Serialize)]
pub struct Patient {
    /// Id.
    pub id: String,
    /// Full name as written on the prescription.
    pub name: String,
    /// `YYYY-MM-DD`, or empty when unknown.
    pub birth_date: String,
    /// Recorded allergies.
    pub allergies: Vec<Allergy>,
    /// Insurance (insurer and card number, as the desk writes it).
    pub insurance: String,
    /// Set once merged into another record.
    pub merged_into: Option<String>,
    /// Language for messages (`DE`, `FR`, `IT`, `EN`), from the eMediplan or entered.
    pub language: String,
    /// E-mail address.
    pub email: String,
    /// Mobile number.
    pub phone: String,
    /// How the patient asked to be told (`email`, `sms`, `whatsapp`), or empty: not at all.
    pub notify_channel: String,
    /// Created (ms).
    pub created_ms: i64,
    /// Last change (ms).
    pub updated_ms: i64,
}

impl Patient {
    fn from_row(r: &sqlx::any::AnyRow) -> Result<Self, sqlx::Error> {
        let allergies: String = r.try_get("allergies")?;
        Ok(Self {
            id: r.try_get("id")?,
            name: r.try_get("name")?,
            birth_date: r.try_get("birth_date")?,
            // Written only by this module; a hand-edited row shows as none
            // rather than failing the whole page.
            allergies: serde_json::from_str(&allergies).unwrap_or_default(),
            insurance: r.try_get("insurance")?,
            merged_into: r.try_get("merged_into")?,
            language: r.try_get("language")?,
            email: r.try_get("email")?,
            phone: r.try_get("phone")?,
            notify_channel: r.try_get("notify_channel")?,
            created_ms: r.try_get("created_ms")?,
            updated_ms: r.try_get("updated_ms")?,
        })
    }
}

fn check_fields(name: &str, birth_date: &str) -> Result<(), PatientError> {
    if name.trim().is_empty() || name.len() > 200 {
        return Err(PatientError::Invalid(
            "a patient needs a name (up to 200 characters)".into(),
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(PatientError::Invalid(
            "a name cannot contain control characters".into(),
        ));
    }
    let d = birth_date.trim();
    if !d.is_empty() && chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").is_err() {
        return Err(PatientError::Invalid(format!(
            "date of birth {d:?} is not a date (YYYY-MM-DD)"
        )));
    }
    Ok(())
}

/// Parse allergies as typed on the patient page, one per line.
pub fn parse_allergies(text: &str) -> Result<Vec<Allergy>, PatientError> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.len() > 300 {
            return Err(PatientError::Invalid(format!(
                "allergy line {} is longer than 300 characters",
                n + 1
            )));
        }
        if let Some(a) = Allergy::parse_line(line) {
            out.push(a);
        }
    }
    if out.len() > 100 {
        return Err(PatientError::Invalid("more than 100 allergies".into()));
    }
    Ok(out)
}

async fn log(
    conn: &mut sqlx::AnyConnection,
    id: &str,
    at_ms: i64,
    actor: &str,
    action: &str,
    detail: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO patient_log (patient_id, at_ms, actor, action, detail) VALUES ($1, $2, $3, $4, $5)")
        .bind(id)
        .bind(at_ms)
        .bind(actor)
        .bind(action)
        .bind(detail)
        .execute(conn)
        .await?;
    Ok(())
}

fn allergies_json(a: &[Allergy]) -> String {
    serde_json::to_string(a).unwrap_or_else(|_| "[]".into())
}

/// One record as stored (merged or not).
pub async fn get(db: &Db, id: &str) -> Result<Option<Patient>, sqlx::Error> {
    sqlx::query("SELECT * FROM patients WHERE id = $1")
        .bind(id)
        .fetch_optional(&db.pool)
        .await?
        .as_ref()
        .map(Patient::from_row)
        .transpose()
}

/// The record that stands for `id` now: merges followed.
pub async fn resolve(db: &Db, id: &str) -> Result<Option<Patient>, sqlx::Error> {
    // The connection goes back to the pool before `get` takes one: holding
    // two at once deadlocks a small pool under concurrent requests.
    let found = {
        let mut conn = db.pool.acquire().await?;
        survivor(&mut conn, id).await?
    };
    match found {
        Some(s) => get(db, &s).await,
        None => Ok(None),
    }
}

/// The id of the record that stands for `id` now (merges followed), in the
/// caller's connection or transaction; `None` if a record is missing.
pub async fn survivor(
    conn: &mut sqlx::AnyConnection,
    id: &str,
) -> Result<Option<String>, sqlx::Error> {
    let mut cur = id.to_owned();
    // Merges only point at unmerged records, so chains are short; the bound
    // guards against a hand-edited loop.
    for _ in 0..16 {
        let Some(r) = sqlx::query("SELECT merged_into FROM patients WHERE id = $1")
            .bind(&cur)
            .fetch_optional(&mut *conn)
            .await?
        else {
            return Ok(None);
        };
        match r.try_get::<Option<String>, _>(0)? {
            Some(next) => cur = next,
            None => return Ok(Some(cur)),
        }
    }
    Ok(None)
}

/// Records not merged away, by name (any part, any case), newest first.
pub async fn list(db: &Db, q: &str, limit: i64) -> Result<Vec<Patient>, sqlx::Error> {
    let like = crate::store::contains_pattern(&q.trim().to_lowercase());
    let rows = sqlx::query(
        "SELECT * FROM patients WHERE merged_into IS NULL AND (lower(name) LIKE $1 ESCAPE '\\' OR birth_date LIKE $1 ESCAPE '\\') \
         ORDER BY updated_ms DESC LIMIT $2",
    )
    .bind(like)
    .bind(limit)
    .fetch_all(&db.pool)
    .await?;
    rows.iter().map(Patient::from_row).collect()
}

/// The patient an eMediplan (CHMED16A or CHMED23A) names.
#[derive(Debug, Clone, Default)]
pub struct Named {
    /// Full name.
    pub name: String,
    /// Date of birth, `YYYY-MM-DD`.
    pub birth_date: String,
    /// Allergies the plan records.
    pub allergies: Vec<Allergy>,
    /// Language for messages.
    pub language: String,
    /// Insurance as the plan gives it (CHMED23A's card number), or empty.
    pub insurance: String,
}

/// Find the patient an eMediplan names, or make the record, in the caller's
/// transaction. Allergies the plan records that the record lacks are added,
/// and its language (for messages) and insurance card fill ones the desk
/// has not set.
pub async fn find_or_create(
    conn: &mut sqlx::AnyConnection,
    named: &Named,
    now_ms: i64,
    actor: &str,
) -> Result<String, sqlx::Error> {
    let Named {
        name,
        birth_date,
        allergies,
        language,
        insurance,
    } = named;
    let key = match_key(name, birth_date);
    let language = Some(language.trim()).filter(|l| l.len() <= 8).unwrap_or("");
    let insurance = insurance.trim();
    let found = sqlx::query(
        "SELECT id, allergies FROM patients WHERE match_key = $1 AND merged_into IS NULL ORDER BY created_ms LIMIT 1",
    )
    .bind(&key)
    .fetch_optional(&mut *conn)
    .await?;
    if let Some(r) = found {
        let id: String = r.try_get("id")?;
        let mut have: Vec<Allergy> =
            serde_json::from_str(&r.try_get::<String, _>("allergies")?).unwrap_or_default();
        let new: Vec<&Allergy> = allergies
            .iter()
            .filter(|a| !have.iter().any(|h| h.label == a.label))
            .collect();
        if !new.is_empty() {
            let labels: Vec<&str> = new.iter().map(|a| a.label.as_str()).collect();
            have.extend(new.iter().map(|a| (*a).clone()));
            sqlx::query("UPDATE patients SET allergies = $1, updated_ms = $2 WHERE id = $3")
                .bind(allergies_json(&have))
                .bind(now_ms)
                .bind(&id)
                .execute(&mut *conn)
                .await?;
            log(
                conn,
                &id,
                now_ms,
                actor,
                "allergies",
                &format!("from the eMediplan: {}", labels.join("; ")),
            )
            .await?;
        }
        if !language.is_empty() {
            sqlx::query("UPDATE patients SET language = $1 WHERE id = $2 AND language = ''")
                .bind(language)
                .bind(&id)
                .execute(&mut *conn)
                .await?;
        }
        if !insurance.is_empty() {
            let filled =
                sqlx::query("UPDATE patients SET insurance = $1 WHERE id = $2 AND insurance = ''")
                    .bind(insurance)
                    .bind(&id)
                    .execute(&mut *conn)
                    .await?
                    .rows_affected();
            if filled == 1 {
                log(
                    conn,
                    &id,
                    now_ms,
                    actor,
                    "insurance",
                    &format!("from the eMediplan: {insurance}"),
                )
                .await?;
            }
        }
        return Ok(id);
    }
    let id = uuid::Uuid::now_v7().simple().to_string();
    sqlx::query(
        "INSERT INTO patients (id, name, birth_date, match_key, allergies, insurance, created_ms, updated_ms, language) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(&id)
    .bind(name.trim())
    .bind(birth_date.trim().chars().take(10).collect::<String>())
    .bind(&key)
    .bind(allergies_json(allergies))
    .bind(insurance)
    .bind(now_ms)
    .bind(now_ms)
    .bind(language)
    .execute(&mut *conn)
    .await?;
    log(conn, &id, now_ms, actor, "created", "from an eMediplan").await?;
    Ok(id)
}

/// What the desk enters or changes.
#[derive(Debug, Clone, Default)]
pub struct Fields {
    /// Name.
    pub name: String,
    /// Date of birth.
    pub birth_date: String,
    /// Insurance.
    pub insurance: String,
    /// Allergies.
    pub allergies: Vec<Allergy>,
    /// Language for messages.
    pub language: String,
    /// E-mail address.
    pub email: String,
    /// Mobile number.
    pub phone: String,
    /// `email`, `sms`, `whatsapp`, or empty (no messages).
    pub notify_channel: String,
}

fn check_contact(f: &Fields) -> Result<(), PatientError> {
    let bad = |m: String| Err(PatientError::Invalid(m));
    let (email, phone) = (f.email.trim(), f.phone.trim());
    let looks_like_address = email.contains('@') && !email.contains(char::is_whitespace);
    if email.len() > 200 || (!email.is_empty() && !looks_like_address) {
        return bad(format!("e-mail {email:?} is not an address"));
    }
    let digits = phone.chars().filter(char::is_ascii_digit).count();
    if !phone.is_empty()
        && (phone.len() > 30
            || digits < 6
            || !phone
                .chars()
                .all(|c| c.is_ascii_digit() || " +-()/".contains(c)))
    {
        return bad(format!(
            "phone {phone:?} is not a number (digits, spaces, + - ( ) /)"
        ));
    }
    if f.language.trim().len() > 8 {
        return bad("language is a short code such as DE, FR, IT or EN".into());
    }
    match f.notify_channel.trim() {
        "" => Ok(()),
        "email" if !email.is_empty() => Ok(()),
        "sms" | "whatsapp" if !phone.is_empty() => Ok(()),
        "email" => bad("notifications by e-mail need an e-mail address".into()),
        "sms" | "whatsapp" => bad("notifications by SMS or WhatsApp need a phone number".into()),
        other => bad(format!(
            "notify by {other:?}: choose email, sms, whatsapp or none"
        )),
    }
}

/// Create a record at the desk.
pub async fn create(
    db: &Db,
    f: &Fields,
    actor: &str,
    now_ms: i64,
) -> Result<Patient, PatientError> {
    check_fields(&f.name, &f.birth_date)?;
    check_contact(f)?;
    let id = uuid::Uuid::now_v7().simple().to_string();
    let mut tx = db.begin_write().await?;
    sqlx::query(
        "INSERT INTO patients (id, name, birth_date, match_key, allergies, insurance, created_ms, updated_ms, language, email, phone, notify_channel) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
    )
    .bind(&id)
    .bind(f.name.trim())
    .bind(f.birth_date.trim())
    .bind(match_key(&f.name, &f.birth_date))
    .bind(allergies_json(&f.allergies))
    .bind(f.insurance.trim())
    .bind(now_ms)
    .bind(now_ms)
    .bind(f.language.trim())
    .bind(f.email.trim())
    .bind(f.phone.trim())
    .bind(f.notify_channel.trim())
    .execute(&mut *tx)
    .await?;
    log(&mut tx, &id, now_ms, actor, "created", "at the desk").await?;
    tx.commit().await?;
    get(db, &id).await?.ok_or(PatientError::NotFound(id))
}

/// Change a record (not a merged one: change the survivor).
pub async fn update(
    db: &Db,
    id: &str,
    f: &Fields,
    actor: &str,
    now_ms: i64,
) -> Result<Patient, PatientError> {
    check_fields(&f.name, &f.birth_date)?;
    check_contact(f)?;
    let before = get(db, id)
        .await?
        .ok_or_else(|| PatientError::NotFound(id.into()))?;
    if let Some(m) = &before.merged_into {
        return Err(PatientError::Invalid(format!(
            "this record was merged into {m}; change that one"
        )));
    }
    let mut changes = Vec::new();
    if before.name != f.name.trim() {
        changes.push(format!("name {:?} → {:?}", before.name, f.name.trim()));
    }
    if before.birth_date != f.birth_date.trim() {
        changes.push(format!(
            "born {:?} → {:?}",
            before.birth_date,
            f.birth_date.trim()
        ));
    }
    if before.insurance != f.insurance.trim() {
        changes.push(format!(
            "insurance {:?} → {:?}",
            before.insurance,
            f.insurance.trim()
        ));
    }
    for (what, was, now) in [
        ("language", &before.language, &f.language),
        ("e-mail", &before.email, &f.email),
        ("phone", &before.phone, &f.phone),
        ("notify by", &before.notify_channel, &f.notify_channel),
    ] {
        if was.as_str() != now.trim() {
            changes.push(format!("{what} {was:?} → {:?}", now.trim()));
        }
    }
    if before.allergies != f.allergies {
        let show = |a: &[Allergy]| {
            a.iter()
                .map(Allergy::to_line)
                .collect::<Vec<_>>()
                .join("; ")
        };
        changes.push(format!(
            "allergies [{}] → [{}]",
            show(&before.allergies),
            show(&f.allergies)
        ));
    }
    if changes.is_empty() {
        return Ok(before);
    }
    let mut tx = db.begin_write().await?;
    sqlx::query(
        "UPDATE patients SET name = $1, birth_date = $2, match_key = $3, insurance = $4, allergies = $5, updated_ms = $6, \
         language = $8, email = $9, phone = $10, notify_channel = $11 WHERE id = $7 AND merged_into IS NULL",
    )
    .bind(f.name.trim())
    .bind(f.birth_date.trim())
    .bind(match_key(&f.name, &f.birth_date))
    .bind(f.insurance.trim())
    .bind(allergies_json(&f.allergies))
    .bind(now_ms)
    .bind(id)
    .bind(f.language.trim())
    .bind(f.email.trim())
    .bind(f.phone.trim())
    .bind(f.notify_channel.trim())
    .execute(&mut *tx)
    .await?;
    log(&mut tx, id, now_ms, actor, "changed", &changes.join("; ")).await?;
    tx.commit().await?;
    get(db, id)
        .await?
        .ok_or_else(|| PatientError::NotFound(id.into()))
}

/// Merge `from` into `into`: orders move, allergies join, `from` points at
/// `into` from now on.
pub async fn merge(
    db: &Db,
    from: &str,
    into: &str,
    actor: &str,
    now_ms: i64,
) -> Result<Patient, PatientError> {
    if from == into {
        return Err(PatientError::Invalid(
            "a record cannot be merged into itself".into(),
        ));
    }
    let mut tx = db.begin_write().await?;
    let lock = db.for_update();
    let mut rows = Vec::new();
    for id in [from, into] {
        let r = sqlx::query(&format!("SELECT * FROM patients WHERE id = $1{lock}"))
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| PatientError::NotFound(id.into()))?;
        let p = Patient::from_row(&r)?;
        if let Some(m) = &p.merged_into {
            return Err(PatientError::Invalid(format!(
                "{} ({}) was already merged into {m}",
                p.name, p.id
            )));
        }
        rows.push(p);
    }
    let (a, b) = (&rows[0], &rows[1]);
    let mut allergies = b.allergies.clone();
    for x in &a.allergies {
        if !allergies.iter().any(|y| y.label == x.label) {
            allergies.push(x.clone());
        }
    }
    let insurance = if b.insurance.is_empty() {
        a.insurance.clone()
    } else {
        b.insurance.clone()
    };
    let birth = if b.birth_date.is_empty() {
        a.birth_date.clone()
    } else {
        b.birth_date.clone()
    };
    sqlx::query("UPDATE patients SET allergies = $1, insurance = $2, birth_date = $3, match_key = $4, updated_ms = $5 WHERE id = $6")
        .bind(allergies_json(&allergies))
        .bind(&insurance)
        .bind(&birth)
        .bind(match_key(&b.name, &birth))
        .bind(now_ms)
        .bind(into)
        .execute(&mut *tx)
        .await?;
    sqlx::query("UPDATE patients SET merged_into = $1, updated_ms = $2 WHERE id = $3")
        .bind(into)
        .bind(now_ms)
        .bind(from)
        .execute(&mut *tx)
        .await?;
    let moved = sqlx::query("UPDATE orders SET patient_id = $1 WHERE patient_id = $2")
        .bind(into)
        .bind(from)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    log(
        &mut tx,
        from,
        now_ms,
        actor,
        "merged",
        &format!("into {} ({into})", b.name),
    )
    .await?;
    log(
        &mut tx,
        into,
        now_ms,
        actor,
        "merged",
        &format!("{} ({from}) merged in; {moved} order(s) moved", a.name),
    )
    .await?;
    tx.commit().await?;
    get(db, into)
        .await?
        .ok_or_else(|| PatientError::NotFound(into.into()))
}

/// A record's log: (time, actor, action, detail).
pub async fn history(db: &Db, id: &str) -> Result<Vec<(i64, String, String, String)>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT at_ms, actor, action, detail FROM patient_log WHERE patient_id = $1 ORDER BY id",
    )
    .bind(id)
    .fetch_all(&db.pool)
    .await?;
    rows.iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?, r.try_get(3)?)))
        .collect()
}

/// Attach an order to a record (a paper prescription, or a correction).
pub async fn attach_order(
    db: &Db,
    order: &str,
    patient: &str,
    actor: &str,
    now_ms: i64,
) -> Result<Patient, PatientError> {
    let p = resolve(db, patient)
        .await?
        .ok_or_else(|| PatientError::NotFound(patient.into()))?;
    let label = if p.birth_date.is_empty() {
        p.name.clone()
    } else {
        format!("{} ({})", p.name, p.birth_date)
    };
    let mut tx = db.begin_write().await?;
    let n = sqlx::query(
        "UPDATE orders SET patient_id = $1, patient = $2, updated_ms = $3 WHERE id = $4",
    )
    .bind(&p.id)
    .bind(&label)
    .bind(now_ms)
    .bind(order)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if n != 1 {
        return Err(PatientError::NotFound(format!("order {order}")));
    }
    log(
        &mut tx,
        &p.id,
        now_ms,
        actor,
        "order",
        &format!("order {order} attached"),
    )
    .await?;
    tx.commit().await?;
    Ok(p)
}
