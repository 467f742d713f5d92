//! Ed25519 key files: base64 text, mode 0600, created on first use.

use rxedge_shared::sign::{self, SigningKey};
use std::io::Write as _;
use std::path::Path;

/// Key file errors.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// Read or write failed.
    #[error("key file {path}: {source}")]
    Io {
        /// Path.
        path: String,
        /// Cause.
        source: std::io::Error,
    },
    /// The file does not hold a key.
    #[error("key file {path}: {msg}")]
    Bad {
        /// Path.
        path: String,
        /// What is wrong.
        msg: String,
    },
}

/// Load a key, or create one (0600) if the file does not exist.
pub fn load_or_create(path: &Path) -> Result<SigningKey, KeyError> {
    let p = path.display().to_string();
    match std::fs::read_to_string(path) {
        Ok(text) => sign::decode_secret(&text).map_err(|e| KeyError::Bad {
            path: p,
            msg: e.to_string(),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = SigningKey::generate(&mut rand::rngs::OsRng);
            write_private(path, sign::encode_secret(&key).as_bytes())
                .map_err(|source| KeyError::Io { path: p, source })?;
            Ok(key)
        }
        Err(source) => Err(KeyError::Io { path: p, source }),
    }
}

/// Load an existing key.
pub fn load(path: &Path) -> Result<SigningKey, KeyError> {
    let p = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| KeyError::Io {
        path: p.clone(),
        source,
    })?;
    sign::decode_secret(&text).map_err(|e| KeyError::Bad {
        path: p,
        msg: e.to_string(),
    })
}

/// Write a file readable by its owner only, atomically (temp file + rename).
pub fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    {
        let mut o = std::fs::OpenOptions::new();
        o.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt as _;
            o.mode(0o600);
        }
        let mut f = o.open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_once_with_0600() -> Result<(), Box<dyn std::error::Error>> {
        let d = tempfile::tempdir()?;
        let p = d.path().join("k.key");
        let a = load_or_create(&p)?;
        let b = load_or_create(&p)?;
        assert_eq!(a.to_bytes(), b.to_bytes());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            assert_eq!(std::fs::metadata(&p)?.permissions().mode() & 0o777, 0o600);
        }
        std::fs::write(&p, "junk")?;
        assert!(load(&p).is_err());
        Ok(())
    }
}
