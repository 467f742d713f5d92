//! `rxedge-hub backup FILE` and `rxedge-hub restore FILE`.
//!
//! A backup is one `.tar.gz` holding everything a store needs to come back:
//! - the database: on SQLite a `VACUUM INTO` copy, which SQLite documents as a
//!   consistent snapshot taken inside one read transaction, so the hub keeps
//!   running (and writing) while it is made; on PostgreSQL a `pg_dump
//!   --format=custom` archive, equally consistent (one snapshot);
//! - `hub.key`, the signing key kiosks trust (without it every kiosk must be
//!   enrolled again);
//! - `blobs/`, the paper prescription images;
//! - `manifest.json`: format, RxEdge version, schema version, and the sha256 and
//!   size of every file, checked before anything is restored.
//!
//! Restore refuses to run while the hub answers on its address, refuses a
//! backup from a newer schema, and never deletes what it replaces: the old
//! database, key and images are moved aside with a `.before-restore-<ms>` name.
//! Migrations then run forward at the next start.

use crate::config::Config;
use crate::store::{Backend, Db};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};

/// Backup archive format version.
pub const FORMAT: u32 = 1;

/// What went wrong, in words for the person at the console.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// File system.
    #[error("{0}")]
    Io(String),
    /// Database.
    #[error("database: {0}")]
    Db(String),
    /// The archive is not a usable backup.
    #[error("not a usable backup: {0}")]
    Invalid(String),
    /// Restore would be unsafe now.
    #[error("{0}")]
    Refused(String),
}

fn io(what: impl std::fmt::Display, e: std::io::Error) -> BackupError {
    BackupError::Io(format!("{what}: {e}"))
}

/// One file in the archive.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Entry {
    /// Path inside the archive.
    pub path: String,
    /// Size in bytes.
    pub bytes: u64,
    /// Lowercase hex sha256.
    pub sha256: String,
}

/// `manifest.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    /// [`FORMAT`].
    pub format: u32,
    /// RxEdge version that wrote it.
    pub rxedge_version: String,
    /// When, ms since the epoch.
    pub created_ms: i64,
    /// `sqlite` or `postgres`.
    pub backend: String,
    /// Highest migration applied.
    pub schema_version: i64,
    /// Store id.
    pub store_id: String,
    /// Every other file.
    pub files: Vec<Entry>,
}

const DB_SQLITE: &str = "hub.db";
const DB_PG: &str = "database.pgdump";

fn sha256_file(p: &Path) -> Result<(u64, String), BackupError> {
    let mut f = std::fs::File::open(p).map_err(|e| io(p.display(), e))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut n = 0u64;
    loop {
        let k = f.read(&mut buf).map_err(|e| io(p.display(), e))?;
        if k == 0 {
            break;
        }
        h.update(&buf[..k]);
        n += k as u64;
    }
    Ok((n, format!("{:x}", h.finalize())))
}

async fn schema_version(db: &Db) -> Result<i64, BackupError> {
    let v: Option<i64> = sqlx::query_scalar(
        "SELECT CAST(MAX(version) AS BIGINT) FROM _sqlx_migrations WHERE success",
    )
    .fetch_one(&db.pool)
    .await
    .map_err(|e| BackupError::Db(e.to_string()))?;
    Ok(v.unwrap_or(0))
}

/// A PostgreSQL URL without its password, and the password (decoded). The
/// password goes to the tools through `PGPASSWORD`: on the command line every
/// local user could read it in `ps`.
fn without_password(url: &str) -> (String, Option<String>) {
    match reqwest::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let pw = u.password().map(|p| {
                percent_encoding::percent_decode_str(p)
                    .decode_utf8_lossy()
                    .into_owned()
            });
            let _ = u.set_password(None);
            (u.to_string(), pw)
        }
        _ => (url.to_owned(), None),
    }
}

/// Run `pg_dump`/`pg_restore` as `cmd ARGS --dbname URL LAST…`.
async fn run_tool(cmd: &str, args: &[&str], url: &str, last: &[&str]) -> Result<(), BackupError> {
    let (url, password) = without_password(url);
    let mut c = tokio::process::Command::new(cmd);
    c.args(args).arg("--dbname").arg(&url).args(last);
    if let Some(p) = password {
        c.env("PGPASSWORD", p);
    }
    let out = c.output().await.map_err(|e| {
        BackupError::Io(format!(
            "cannot run {cmd} ({e}); install postgresql-client to back up or restore PostgreSQL"
        ))
    })?;
    if out.status.success() {
        Ok(())
    } else {
        Err(BackupError::Db(format!(
            "{cmd} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

fn copy_blobs(
    from: &Path,
    to: &Path,
    files: &mut Vec<(PathBuf, String)>,
) -> Result<(), BackupError> {
    let Ok(shards) = std::fs::read_dir(from) else {
        return Ok(());
    };
    for shard in shards {
        let shard = shard.map_err(|e| io(from.display(), e))?.path();
        if !shard.is_dir() {
            continue;
        }
        for f in std::fs::read_dir(&shard).map_err(|e| io(shard.display(), e))? {
            let f = f.map_err(|e| io(shard.display(), e))?.path();
            let name = f.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            // Half-uploaded images are resumed by the kiosk, not backed up.
            if name.is_empty() || name.ends_with(".part") || !f.is_file() {
                continue;
            }
            let shard_name = shard
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default();
            let rel = format!("blobs/{shard_name}/{name}");
            let dst = to.join(&rel);
            if let Some(p) = dst.parent() {
                std::fs::create_dir_all(p).map_err(|e| io(p.display(), e))?;
            }
            std::fs::copy(&f, &dst).map_err(|e| io(f.display(), e))?;
            files.push((dst, rel));
        }
    }
    Ok(())
}

/// Write a backup of the hub named by `cfg` to `out`. Safe while the hub runs.
pub async fn backup(cfg: &Config, out: &Path) -> Result<Manifest, BackupError> {
    let db = crate::open_db(cfg)
        .await
        .map_err(|e| BackupError::Db(e.to_string()))?;
    let parent = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let work = tempfile::Builder::new()
        .prefix(".rxedge-backup-")
        .tempdir_in(parent)
        .map_err(|e| io(parent.display(), e))?;
    let mut files: Vec<(PathBuf, String)> = Vec::new();
    let schema = schema_version(&db).await?;
    match db.backend {
        Backend::Sqlite => {
            let dst = work.path().join(DB_SQLITE);
            sqlx::query("VACUUM INTO $1")
                .bind(dst.to_string_lossy().into_owned())
                .execute(&db.pool)
                .await
                .map_err(|e| BackupError::Db(format!("VACUUM INTO: {e}")))?;
            files.push((dst, DB_SQLITE.into()));
        }
        Backend::Postgres => {
            let dst = work.path().join(DB_PG);
            let dst_s = dst.to_string_lossy().into_owned();
            let url = cfg.database_url();
            run_tool(
                "pg_dump",
                &["--format=custom", "--no-owner", "--file", &dst_s],
                &url,
                &[],
            )
            .await?;
            files.push((dst, DB_PG.into()));
        }
    }
    db.pool.close().await;
    let key = cfg.paths.state_dir.join("hub.key");
    if key.exists() {
        let dst = work.path().join("hub.key");
        std::fs::copy(&key, &dst).map_err(|e| io(key.display(), e))?;
        files.push((dst, "hub.key".into()));
    }
    copy_blobs(&cfg.paths.state_dir.join("blobs"), work.path(), &mut files)?;

    let mut entries = Vec::new();
    for (p, rel) in &files {
        let (bytes, sha256) = sha256_file(p)?;
        entries.push(Entry {
            path: rel.clone(),
            bytes,
            sha256,
        });
    }
    let manifest = Manifest {
        format: FORMAT,
        rxedge_version: env!("CARGO_PKG_VERSION").into(),
        created_ms: rxedge_shared::clock::system_now_ms(),
        backend: match db.backend {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
        .into(),
        schema_version: schema,
        store_id: cfg.store.id.clone(),
        files: entries,
    };
    let json = serde_json::to_vec_pretty(&manifest).map_err(|e| BackupError::Io(e.to_string()))?;

    // Written beside the target and renamed: a half-written backup never has the final name.
    let tmp = out.with_extension("partial");
    {
        let f = std::fs::File::create(&tmp).map_err(|e| io(tmp.display(), e))?;
        let gz = flate2::write::GzEncoder::new(f, flate2::Compression::default());
        let mut t = tar::Builder::new(gz);
        let mut h = tar::Header::new_gnu();
        h.set_size(json.len() as u64);
        h.set_mode(0o600);
        h.set_mtime((manifest.created_ms / 1000).max(0) as u64);
        h.set_cksum();
        t.append_data(&mut h, "manifest.json", &json[..])
            .map_err(|e| io(tmp.display(), e))?;
        for (p, rel) in &files {
            t.append_path_with_name(p, rel)
                .map_err(|e| io(p.display(), e))?;
        }
        let gz = t.into_inner().map_err(|e| io(tmp.display(), e))?;
        let mut f = gz.finish().map_err(|e| io(tmp.display(), e))?;
        f.flush().map_err(|e| io(tmp.display(), e))?;
        f.sync_all().map_err(|e| io(tmp.display(), e))?;
    }
    std::fs::rename(&tmp, out).map_err(|e| io(out.display(), e))?;
    Ok(manifest)
}

/// Unpack and check an archive into `dir`: every file the manifest lists, with
/// its size and sha256, and nothing else.
pub fn unpack(file: &Path, dir: &Path) -> Result<Manifest, BackupError> {
    let f = std::fs::File::open(file).map_err(|e| io(file.display(), e))?;
    let mut a = tar::Archive::new(flate2::read::GzDecoder::new(f));
    for entry in a
        .entries()
        .map_err(|e| BackupError::Invalid(e.to_string()))?
    {
        let mut e = entry.map_err(|e| BackupError::Invalid(e.to_string()))?;
        // unpack_in refuses paths that leave `dir` (../, absolute).
        let inside = e
            .unpack_in(dir)
            .map_err(|err| BackupError::Invalid(err.to_string()))?;
        if !inside {
            return Err(BackupError::Invalid(
                "an entry points outside the backup".into(),
            ));
        }
    }
    let m: Manifest = serde_json::from_slice(
        &std::fs::read(dir.join("manifest.json"))
            .map_err(|_| BackupError::Invalid("no manifest.json".into()))?,
    )
    .map_err(|e| BackupError::Invalid(format!("manifest.json: {e}")))?;
    if m.format != FORMAT {
        return Err(BackupError::Invalid(format!(
            "format {} (this RxEdge reads format {FORMAT})",
            m.format
        )));
    }
    for e in &m.files {
        if e.path.contains("..") || e.path.starts_with('/') {
            return Err(BackupError::Invalid(format!("bad path {}", e.path)));
        }
        let (bytes, sha) = sha256_file(&dir.join(&e.path))
            .map_err(|_| BackupError::Invalid(format!("{} is missing", e.path)))?;
        if bytes != e.bytes || sha != e.sha256 {
            return Err(BackupError::Invalid(format!(
                "{} is damaged (sha256 {sha}, expected {})",
                e.path, e.sha256
            )));
        }
    }
    Ok(m)
}

fn aside(p: &Path, stamp: i64) -> Result<Option<PathBuf>, BackupError> {
    if !p.exists() {
        return Ok(None);
    }
    let mut name = p.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(format!(".before-restore-{stamp}"));
    let to = p.with_file_name(name);
    std::fs::rename(p, &to).map_err(|e| io(p.display(), e))?;
    Ok(Some(to))
}

fn sqlite_path(url: &str) -> Option<PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next()?;
    (!path.is_empty() && path != ":memory:").then(|| PathBuf::from(path))
}

/// What a restore did.
#[derive(Debug, Serialize)]
pub struct Restored {
    /// The backup's manifest.
    pub manifest: Manifest,
    /// Files moved aside, not deleted.
    pub moved_aside: Vec<PathBuf>,
    /// Schema version after migrating forward.
    pub schema_version: i64,
}

/// Restore `file` into the hub named by `cfg`. The hub must be stopped.
/// `force` allows replacing an existing database (which is kept aside).
pub async fn restore(cfg: &Config, file: &Path, force: bool) -> Result<Restored, BackupError> {
    let health = format!("http://{}/healthz", cfg.http.listen);
    if reqwest::Client::new()
        .get(&health)
        .timeout(std::time::Duration::from_secs(2))
        .send()
        .await
        .is_ok()
    {
        return Err(BackupError::Refused(format!(
            "a hub answers at {}: stop it first (systemctl stop rxedge-hub)",
            cfg.http.listen
        )));
    }
    crate::ensure_state_dir(&cfg.paths.state_dir).map_err(|e| BackupError::Io(e.to_string()))?;
    let work = tempfile::Builder::new()
        .prefix(".rxedge-restore-")
        .tempdir_in(&cfg.paths.state_dir)
        .map_err(|e| io(cfg.paths.state_dir.display(), e))?;
    let m = unpack(file, work.path())?;
    let latest = crate::store::latest_migration();
    if m.schema_version > latest {
        return Err(BackupError::Refused(format!(
            "the backup has schema {} but this RxEdge knows only up to {latest}: restore it with RxEdge {} or later",
            m.schema_version, m.rxedge_version
        )));
    }
    let url = cfg.database_url();
    let stamp = rxedge_shared::clock::system_now_ms();
    let mut moved = Vec::new();
    match (m.backend.as_str(), url.starts_with("sqlite:")) {
        ("sqlite", true) => {
            let target = sqlite_path(&url)
                .ok_or_else(|| BackupError::Refused(format!("cannot restore into {url}")))?;
            if target.exists() && !force {
                return Err(BackupError::Refused(format!(
                    "{} already exists: add --force to replace it (the old file is kept aside)",
                    target.display()
                )));
            }
            for suffix in ["", "-wal", "-shm"] {
                let mut p = target.clone().into_os_string();
                p.push(suffix);
                moved.extend(aside(Path::new(&p), stamp)?);
            }
            if let Some(p) = target.parent() {
                std::fs::create_dir_all(p).map_err(|e| io(p.display(), e))?;
            }
            std::fs::rename(work.path().join(DB_SQLITE), &target)
                .map_err(|e| io(target.display(), e))?;
        }
        ("postgres", false) => {
            let db = Db::connect(&url, 2)
                .await
                .map_err(|e| BackupError::Db(e.to_string()))?;
            let has_data: i64 = sqlx::query_scalar("SELECT CAST(COUNT(*) AS BIGINT) FROM kiosks")
                .fetch_one(&db.pool)
                .await
                .map_err(|e| BackupError::Db(e.to_string()))?;
            db.pool.close().await;
            if has_data > 0 && !force {
                return Err(BackupError::Refused(
                    "the database already holds data: add --force to replace it (take a backup of it first)".into(),
                ));
            }
            let dump = work.path().join(DB_PG).to_string_lossy().into_owned();
            run_tool(
                "pg_restore",
                &["--clean", "--if-exists", "--no-owner", "--single-transaction"],
                &url,
                &[&dump],
            )
            .await?;
        }
        (b, _) => {
            return Err(BackupError::Refused(format!(
                "the backup is of a {b} store but this hub is configured for {}; point database.url at the same kind of database",
                without_password(&url).0
            )))
        }
    }
    let key_src = work.path().join("hub.key");
    if key_src.exists() {
        let key = cfg.paths.state_dir.join("hub.key");
        moved.extend(aside(&key, stamp)?);
        std::fs::rename(&key_src, &key).map_err(|e| io(key.display(), e))?;
    }
    let blobs_src = work.path().join("blobs");
    if blobs_src.exists() {
        let blobs = cfg.paths.state_dir.join("blobs");
        moved.extend(aside(&blobs, stamp)?);
        std::fs::rename(&blobs_src, &blobs).map_err(|e| io(blobs.display(), e))?;
    }
    // Opening migrates forward and proves the restored database works.
    let db = Db::connect(&url, 2)
        .await
        .map_err(|e| BackupError::Db(e.to_string()))?;
    if db.backend == Backend::Sqlite {
        let ok: String = sqlx::query_scalar("PRAGMA integrity_check")
            .fetch_one(&db.pool)
            .await
            .map_err(|e| BackupError::Db(e.to_string()))?;
        if ok != "ok" {
            return Err(BackupError::Db(format!("integrity check: {ok}")));
        }
    }
    let schema_version = schema_version(&db).await?;
    db.pool.close().await;
    Ok(Restored {
        manifest: m,
        moved_aside: moved,
        schema_version,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_postgres_password_leaves_the_url_for_the_environment() {
        assert_eq!(
            without_password("postgres://rx:s%40cret@db.local:5432/rxedge"),
            (
                "postgres://rx@db.local:5432/rxedge".to_owned(),
                Some("s@cret".to_owned())
            )
        );
        assert_eq!(
            without_password("postgres://rx@db.local/rxedge"),
            ("postgres://rx@db.local/rxedge".to_owned(), None)
        );
    }

    #[test]
    fn sqlite_paths_come_from_urls() {
        assert_eq!(
            sqlite_path("sqlite:///var/lib/rxedge-hub/hub.db?mode=rwc"),
            Some(PathBuf::from("/var/lib/rxedge-hub/hub.db"))
        );
        assert_eq!(sqlite_path("sqlite::memory:"), None);
        assert_eq!(sqlite_path("postgres://x/y"), None);
    }

    #[test]
    fn a_damaged_or_foreign_archive_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("b.tar.gz");
        // A manifest that lists a file whose bytes differ.
        let m = Manifest {
            format: FORMAT,
            rxedge_version: "0".into(),
            created_ms: 0,
            backend: "sqlite".into(),
            schema_version: 1,
            store_id: "s".into(),
            files: vec![Entry {
                path: "hub.key".into(),
                bytes: 3,
                sha256: "00".into(),
            }],
        };
        let json = serde_json::to_vec(&m).unwrap();
        {
            let gz = flate2::write::GzEncoder::new(
                std::fs::File::create(&file).unwrap(),
                flate2::Compression::fast(),
            );
            let mut t = tar::Builder::new(gz);
            for (name, data) in [("manifest.json", &json[..]), ("hub.key", b"abc")] {
                let mut h = tar::Header::new_gnu();
                h.set_size(data.len() as u64);
                h.set_mode(0o600);
                h.set_cksum();
                t.append_data(&mut h, name, data).unwrap();
            }
            t.into_inner().unwrap().finish().unwrap();
        }
        let out = tempfile::tempdir().unwrap();
        let e = unpack(&file, out.path()).unwrap_err().to_string();
        assert!(e.contains("hub.key is damaged"), "{e}");

        std::fs::write(&file, b"not a tarball").unwrap();
        let e = unpack(&file, out.path()).unwrap_err();
        assert!(matches!(e, BackupError::Invalid(_)), "{e}");
    }
}
