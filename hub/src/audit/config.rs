//! Config changes in the audit trail. The config is a file, edited outside
//! the hub, so the hub compares what it starts with against what it last
//! ran with and records the difference, key by key, secrets masked.

use crate::config::Config;
use crate::store::Db;
use sha2::{Digest as _, Sha256};
use std::collections::BTreeMap;

/// Where the last effective config (masked) is kept.
const SETTING: &str = "config.effective";

/// The effective config as `section.key` → value, secrets masked.
pub fn flatten(cfg: &Config) -> BTreeMap<String, String> {
    fn walk(prefix: &str, v: &serde_json::Value, out: &mut BTreeMap<String, String>) {
        match v {
            serde_json::Value::Object(m) => {
                for (k, v) in m {
                    let key = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    walk(&key, v, out);
                }
            }
            serde_json::Value::String(s) => {
                out.insert(prefix.to_owned(), mask(prefix, s));
            }
            other => {
                out.insert(prefix.to_owned(), mask(prefix, &other.to_string()));
            }
        }
    }
    let mut out = BTreeMap::new();
    if let Ok(v) = serde_json::to_value(cfg) {
        walk("", &v, &mut out);
    }
    out
}

/// A secret shows only that it is set and whether it changed (a short hash);
/// a URL keeps its host but not its user name and password.
fn mask(key: &str, value: &str) -> String {
    let name = key.rsplit('.').next().unwrap_or(key).to_ascii_lowercase();
    let secret = name.contains("password")
        || name.contains("secret")
        || name.contains("token")
        || name.ends_with("_key");
    if secret {
        if value.is_empty() {
            return String::new();
        }
        let h = format!("{:x}", Sha256::digest(value.as_bytes()));
        return format!("(secret, sha256 {})", &h[..8]);
    }
    match (value.find("://"), value.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let h = format!("{:x}", Sha256::digest(value.as_bytes()));
            format!(
                "{}://…@{} (credentials sha256 {})",
                &value[..s],
                &value[at + 1..],
                &h[..8]
            )
        }
        _ => value.to_owned(),
    }
}

/// What changed between two flattened configs: key → (before, after);
/// a key only on one side has an empty other side.
pub fn diff(
    before: &BTreeMap<String, String>,
    after: &BTreeMap<String, String>,
) -> BTreeMap<String, (String, String)> {
    let mut out = BTreeMap::new();
    for (k, v) in after {
        match before.get(k) {
            Some(old) if old == v => {}
            old => {
                out.insert(k.clone(), (old.cloned().unwrap_or_default(), v.clone()));
            }
        }
    }
    for (k, old) in before {
        if !after.contains_key(k) {
            out.insert(k.clone(), (old.clone(), String::new()));
        }
    }
    out
}

/// At start: record `config.changed` with what differs from the config the
/// hub last ran with (`config.initial` the first time), and remember this one.
/// Returns how many keys changed.
pub async fn record_start(db: &Db, cfg: &Config, now_ms: i64) -> Result<usize, sqlx::Error> {
    let now = flatten(cfg);
    let before: Option<BTreeMap<String, String>> = crate::auth::setting(db, SETTING)
        .await?
        .and_then(|t| serde_json::from_str(&t).ok());
    let (action, detail, n) = match &before {
        None => (
            "config.initial",
            serde_json::to_string(&now).unwrap_or_default(),
            now.len(),
        ),
        Some(b) => {
            let d = diff(b, &now);
            if d.is_empty() {
                return Ok(0);
            }
            let detail: BTreeMap<&str, serde_json::Value> = d
                .iter()
                .map(|(k, (old, new))| {
                    (
                        k.as_str(),
                        serde_json::json!({ "before": old, "after": new }),
                    )
                })
                .collect();
            (
                "config.changed",
                serde_json::to_string(&detail).unwrap_or_default(),
                d.len(),
            )
        }
    };
    super::append(
        db,
        &super::NewEntry {
            actor: "hub start",
            action,
            subject: "hub.toml",
            detail: &detail,
            ip: "",
            at_ms: now_ms,
        },
    )
    .await?;
    let text = serde_json::to_string(&now).unwrap_or_default();
    crate::auth::set_setting(db, SETTING, &text, "hub start", now_ms).await?;
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_masked_and_changes_named_key_by_key() {
        let mut a = Config::default();
        a.broker.password = "hunter2 hunter2".into();
        a.notify.smtp_url = "smtp://anna:pw123@mail.example:587".into();
        let fa = flatten(&a);
        let all = format!("{fa:?}");
        assert!(!all.contains("hunter2") && !all.contains("pw123"), "{all}");
        assert!(fa["notify.smtp_url"].contains("mail.example:587"));
        assert_eq!(
            fa["coldchain.escalate_after_secs"],
            a.coldchain.escalate_after_secs.to_string()
        );
        let mut b = a.clone();
        b.coldchain.escalate_after_secs += 60;
        b.broker.password = "another one".into();
        let d = diff(&fa, &flatten(&b));
        assert_eq!(d.len(), 2, "{d:?}");
        assert!(d.contains_key("coldchain.escalate_after_secs"));
        let (old, new) = &d["broker.password"];
        assert!(old != new && !new.contains("another"), "{old} {new}");
        assert!(diff(&fa, &fa).is_empty());
    }
}
