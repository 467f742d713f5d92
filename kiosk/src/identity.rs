//! The kiosk's identity: who it is, which hub it trusts. Written once by
//! `rxedge-kiosk enroll` (0600), read at every start.

use rxedge_shared::sign::{self, SigningKey, VerifyingKey};
use rxedge_shared::{KioskId, StoreId};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Stored identity (`identity.toml` in the state directory).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentityFile {
    /// Store.
    pub store_id: String,
    /// This kiosk.
    pub kiosk_id: String,
    /// Broker the hub named at enrollment.
    pub broker_url: String,
    /// Hub public key (base64).
    pub hub_public_key: String,
    /// Hub web address used at enrollment (paper images are uploaded there).
    #[serde(default)]
    pub hub_url: String,
    /// The hub's CA certificate (PEM), pinned at enrollment: the only CA
    /// this kiosk trusts for `https://` and `mqtts://`. Empty without TLS.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub hub_ca_pem: String,
}

/// A loaded identity.
#[derive(Debug, Clone)]
pub struct Identity {
    /// Store.
    pub store: StoreId,
    /// This kiosk.
    pub kiosk: KioskId,
    /// Broker URL from enrollment.
    pub broker_url: String,
    /// Hub web address from enrollment (empty for key-first enrollments).
    pub hub_url: String,
    /// The hub's CA (PEM) pinned at enrollment, if the hub uses TLS.
    pub hub_ca_pem: Option<String>,
    /// The hub's key.
    pub hub_key: VerifyingKey,
    /// Our signing key.
    pub key: SigningKey,
}

/// Identity errors.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// Not enrolled yet.
    #[error("this kiosk is not enrolled yet ({0} missing): run `rxedge-kiosk enroll --hub URL --id KIOSK_ID --code CODE`")]
    NotEnrolled(String),
    /// Unreadable or invalid.
    #[error("{0}")]
    Bad(String),
}

/// Path of the identity file.
pub fn identity_path(state_dir: &Path) -> PathBuf {
    state_dir.join("identity.toml")
}

/// Path of the kiosk's key file.
pub fn key_path(state_dir: &Path) -> PathBuf {
    state_dir.join("kiosk.key")
}

/// Load the identity and key from the state directory.
pub fn load(state_dir: &Path) -> Result<Identity, IdentityError> {
    let p = identity_path(state_dir);
    let text = match std::fs::read_to_string(&p) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(IdentityError::NotEnrolled(p.display().to_string()))
        }
        Err(e) => return Err(IdentityError::Bad(format!("{}: {e}", p.display()))),
    };
    let f: IdentityFile =
        toml::from_str(&text).map_err(|e| IdentityError::Bad(format!("{}: {e}", p.display())))?;
    let key = crate::keyfile::load(&key_path(state_dir))
        .map_err(|e| IdentityError::Bad(e.to_string()))?;
    Ok(Identity {
        store: StoreId::new(f.store_id)
            .map_err(|e| IdentityError::Bad(format!("store_id: {e}")))?,
        kiosk: KioskId::new(f.kiosk_id)
            .map_err(|e| IdentityError::Bad(format!("kiosk_id: {e}")))?,
        broker_url: f.broker_url,
        hub_url: f.hub_url,
        hub_ca_pem: (!f.hub_ca_pem.trim().is_empty()).then_some(f.hub_ca_pem),
        hub_key: sign::decode_public(&f.hub_public_key)
            .map_err(|e| IdentityError::Bad(format!("hub_public_key: {e}")))?,
        key,
    })
}

impl Identity {
    /// An HTTP client for the hub: with TLS, it trusts the pinned CA and
    /// nothing else.
    pub fn hub_client(&self) -> Result<reqwest::Client, IdentityError> {
        pinned_client(self.hub_ca_pem.as_deref())
    }
}

/// An HTTP client that trusts only `ca_pem` (None: the default client, for
/// a hub without TLS).
pub fn pinned_client(ca_pem: Option<&str>) -> Result<reqwest::Client, IdentityError> {
    let Some(pem) = ca_pem else {
        return Ok(reqwest::Client::new());
    };
    let ca = reqwest::Certificate::from_pem(pem.as_bytes())
        .map_err(|e| IdentityError::Bad(format!("hub_ca_pem: {e}")))?;
    reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(ca)
        .build()
        .map_err(|e| IdentityError::Bad(format!("TLS client: {e}")))
}

/// Save an identity file (0600).
pub fn save(state_dir: &Path, f: &IdentityFile) -> Result<(), IdentityError> {
    let text = toml::to_string(f).map_err(|e| IdentityError::Bad(e.to_string()))?;
    crate::keyfile::write_private(&identity_path(state_dir), text.as_bytes())
        .map_err(|e| IdentityError::Bad(e.to_string()))
}
