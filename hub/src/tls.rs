//! TLS for the web screens and the embedded broker (rustls, ring provider).
//!
//! With `tls.mode = "auto"` the hub makes its own small CA on first start
//! (rcgen, in `<state_dir>/tls/`) and issues itself a server certificate for
//! its names; with `"files"` it uses the pharmacy's certificate. Either way
//! kiosks pin one CA certificate, given at enrollment and checked there
//! against the fingerprint `rxedge-hub kiosk add` prints.
//!
//! Handshakes run off the accept path, each with a deadline: rumqttd's own
//! TLS listener does the handshake inside its accept loop, so one client that
//! stalls mid-handshake would hold up every other connection. The broker
//! therefore listens on loopback in plain MQTT and [`mqtt_front`] ends TLS in
//! front of it.

use crate::config::{Config, TlsMode};
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::rustls;
use tokio_rustls::server::TlsStream;

/// How long a client may take over its handshake.
const HANDSHAKE_SECS: u64 = 10;
/// Handshakes in progress at once; more connections wait in the kernel backlog.
const MAX_HANDSHAKES: usize = 256;
/// A server certificate is renewed at start when it expires within this many days.
const RENEW_DAYS: i64 = 30;
/// Validity of a server certificate the hub's CA issues.
const SERVER_DAYS: i64 = 397;
/// Validity of the hub's CA.
const CA_YEARS: i32 = 20;

/// What went wrong setting up TLS.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// A certificate or key file is not usable.
    #[error("{path}: {msg}")]
    Bad {
        /// The file.
        path: String,
        /// What is wrong with it.
        msg: String,
    },
    /// Certificate generation failed.
    #[error("cannot make a certificate: {0}")]
    Generate(#[from] rcgen::Error),
    /// rustls refused the certificate and key.
    #[error("TLS setup: {0}")]
    Rustls(#[from] rustls::Error),
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> TlsError + '_ {
    move |source| TlsError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// The certificate the hub serves and the CA kiosks pin.
pub struct Material {
    /// Server certificate chain (server first).
    chain: Vec<CertificateDer<'static>>,
    /// Its private key.
    key: PrivateKeyDer<'static>,
    /// The CA certificate kiosks pin, PEM.
    pub ca_pem: String,
    /// Its SHA-256 fingerprint (hex), printed with every enrollment code.
    pub ca_fingerprint: String,
    /// The files, for an external broker to be pointed at (docs/security.md).
    pub files: Files,
}

/// Where the PEM files are.
#[derive(Debug, Clone)]
pub struct Files {
    /// Server certificate chain.
    pub cert: PathBuf,
    /// Server key.
    pub key: PathBuf,
    /// The CA kiosks pin.
    pub ca: PathBuf,
}

impl Material {
    /// A rustls server config offering `alpn` (empty: no ALPN).
    pub fn server_config(&self, alpn: &[&[u8]]) -> Result<Arc<rustls::ServerConfig>, TlsError> {
        let mut c = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(self.chain.clone(), self.key.clone_key())?;
        c.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Ok(Arc::new(c))
    }

    /// A TLS acceptor for HTTP/1.1.
    pub fn http_acceptor(&self) -> Result<tokio_rustls::TlsAcceptor, TlsError> {
        Ok(self.server_config(&[b"http/1.1"])?.into())
    }

    /// A TLS acceptor for MQTT.
    pub fn mqtt_acceptor(&self) -> Result<tokio_rustls::TlsAcceptor, TlsError> {
        Ok(self.server_config(&[])?.into())
    }
}

/// Load (or on first start make) what `tls.mode` asks for; None when off.
pub fn load(cfg: &Config) -> Result<Option<Material>, TlsError> {
    let (files, chain_pem, key_pem, ca_pem) = match cfg.tls.mode {
        TlsMode::Off => return Ok(None),
        TlsMode::Auto => {
            let dir = cfg.paths.state_dir.join("tls");
            let names = server_names(cfg);
            let files = auto::ensure(&dir, cfg.store.id.as_str(), &names, chrono::Utc::now())?;
            let chain = read(&files.cert)?;
            let key = read(&files.key)?;
            let ca = read(&files.ca)?;
            (files, chain, key, ca)
        }
        TlsMode::Files => {
            let cert = PathBuf::from(&cfg.tls.cert_file);
            let key = PathBuf::from(&cfg.tls.key_file);
            let chain = read(&cert)?;
            let key_pem = read(&key)?;
            let (ca_path, ca) = if cfg.tls.ca_file.is_empty() {
                (cert.clone(), last_pem_cert(&chain, &cert)?)
            } else {
                let p = PathBuf::from(&cfg.tls.ca_file);
                let text = read(&p)?;
                (p, text)
            };
            (
                Files {
                    cert,
                    key,
                    ca: ca_path,
                },
                chain,
                key_pem,
                ca,
            )
        }
    };
    let bad = |path: &Path, msg: String| TlsError::Bad {
        path: path.display().to_string(),
        msg,
    };
    let chain = CertificateDer::pem_slice_iter(chain_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(&files.cert, format!("not a PEM certificate chain: {e}")))?;
    if chain.is_empty() {
        return Err(bad(&files.cert, "no certificate in the file".into()));
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
        .map_err(|e| bad(&files.key, format!("not a PEM private key: {e}")))?;
    let ca = CertificateDer::from_pem_slice(ca_pem.as_bytes())
        .map_err(|e| bad(&files.ca, format!("not a PEM certificate: {e}")))?;
    let material = Material {
        chain,
        key,
        ca_fingerprint: rxedge_shared::tls::fingerprint(&ca),
        ca_pem,
        files,
    };
    // Refuse a mismatched key now, not at the first handshake.
    material.server_config(&[])?;
    Ok(Some(material))
}

/// The CA kiosks pin and its fingerprint, read without making anything (for
/// the command line, which may run as another user than the service). None
/// when TLS is off; an error when it is on and the hub has not made its CA yet.
pub fn ca_on_disk(cfg: &Config) -> Result<Option<(String, String)>, TlsError> {
    let (path, pem) = match cfg.tls.mode {
        TlsMode::Off => return Ok(None),
        TlsMode::Auto => {
            let p = cfg.paths.state_dir.join("tls").join("ca.pem");
            let pem = std::fs::read_to_string(&p).map_err(|e| TlsError::Bad {
                path: p.display().to_string(),
                msg: format!("{e}: the hub makes its CA when it first starts; start it once, then add kiosks"),
            })?;
            (p, pem)
        }
        TlsMode::Files if cfg.tls.ca_file.is_empty() => {
            let p = PathBuf::from(&cfg.tls.cert_file);
            let chain = read(&p)?;
            let pem = last_pem_cert(&chain, &p)?;
            (p, pem)
        }
        TlsMode::Files => {
            let p = PathBuf::from(&cfg.tls.ca_file);
            let pem = read(&p)?;
            (p, pem)
        }
    };
    let der = CertificateDer::from_pem_slice(pem.as_bytes()).map_err(|e| TlsError::Bad {
        path: path.display().to_string(),
        msg: format!("not a PEM certificate: {e}"),
    })?;
    Ok(Some((pem, rxedge_shared::tls::fingerprint(&der))))
}

fn read(path: &Path) -> Result<String, TlsError> {
    std::fs::read_to_string(path).map_err(io_err(path))
}

/// The last certificate of a PEM chain, as PEM: the CA when no `ca_file` is given.
fn last_pem_cert(chain: &str, path: &Path) -> Result<String, TlsError> {
    const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
    chain
        .rfind(BEGIN)
        .map(|i| {
            let rest = &chain[i..];
            let end = rest
                .find("-----END CERTIFICATE-----")
                .map_or(rest.len(), |e| e + "-----END CERTIFICATE-----".len());
            format!("{}\n", &rest[..end])
        })
        .ok_or_else(|| TlsError::Bad {
            path: path.display().to_string(),
            msg: "no certificate in the file".into(),
        })
}

/// The names the `auto` server certificate covers: loopback, this machine's
/// name, the hosts of the public URLs, and `tls.names`.
pub fn server_names(cfg: &Config) -> Vec<String> {
    let mut names: Vec<String> = vec!["localhost".into(), "127.0.0.1".into(), "::1".into()];
    if let Ok(h) = std::fs::read_to_string("/proc/sys/kernel/hostname") {
        names.push(h.trim().to_owned());
    }
    names.extend(url_host(&cfg.http.public_url));
    names.extend(url_host(&cfg.broker.public_url));
    names.extend(cfg.tls.names.iter().map(|n| n.trim().to_owned()));
    names.retain(|n| !n.is_empty());
    names.sort();
    names.dedup();
    names
}

/// The host of `scheme://host[:port][/path]`, without IPv6 brackets.
pub fn url_host(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split('/').next()?;
    let authority = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = if let Some(v6) = authority.strip_prefix('[') {
        v6.split(']').next()?
    } else {
        authority.split(':').next()?
    };
    (!host.is_empty()).then(|| host.to_owned())
}

/// The hub's own CA and the server certificates it issues.
pub mod auto {
    use super::*;
    use rcgen::{
        BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose,
        IsCa, KeyPair, KeyUsagePurpose,
    };
    use serde::{Deserialize, Serialize};

    /// What the hub remembers about its certificates beside the PEM files.
    #[derive(Debug, Serialize, Deserialize, PartialEq)]
    struct State {
        /// The CA's common name: an issued certificate names its issuer by it.
        ca_name: String,
        /// The names the current server certificate covers.
        server_names: Vec<String>,
        /// When the server certificate expires (Unix seconds).
        server_not_after: i64,
    }

    /// rcgen takes calendar days; chrono months and days always fit in a u8.
    macro_rules! day {
        ($t:expr) => {{
            use chrono::Datelike as _;
            let t = $t;
            rcgen::date_time_ymd(t.year(), t.month() as u8, t.day() as u8)
        }};
    }

    fn ca_params(name: &str, now: chrono::DateTime<chrono::Utc>) -> CertificateParams {
        let mut p = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::OrganizationName, "RxEdge");
        dn.push(DnType::CommonName, name);
        p.distinguished_name = dn;
        p.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        p.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let start = now - chrono::Duration::days(1);
        p.not_before = day!(start);
        p.not_after = day!(start + chrono::Duration::days(365 * i64::from(CA_YEARS)));
        p
    }

    /// Make the CA if there is none, and a server certificate for `names` if
    /// there is none, its names changed, or it expires within 30 days.
    pub fn ensure(
        dir: &Path,
        store: &str,
        names: &[String],
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<Files, TlsError> {
        std::fs::create_dir_all(dir).map_err(io_err(dir))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
        }
        let files = Files {
            cert: dir.join("server.pem"),
            key: dir.join("server.key"),
            ca: dir.join("ca.pem"),
        };
        let ca_key_path = dir.join("ca.key");
        let state_path = dir.join("state.json");
        let write = |path: &Path, text: &str| {
            rxedge_kiosk::keyfile::write_private(path, text.as_bytes()).map_err(io_err(path))
        };
        let state: Option<State> = match std::fs::read_to_string(&state_path) {
            Ok(t) => Some(serde_json::from_str(&t).map_err(|e| TlsError::Bad {
                path: state_path.display().to_string(),
                msg: e.to_string(),
            })?),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(io_err(&state_path)(e)),
        };
        let (ca_name, ca_key) = match &state {
            Some(s) if files.ca.exists() => {
                let pem = read(&ca_key_path)?;
                let key = KeyPair::from_pem(&pem).map_err(|e| TlsError::Bad {
                    path: ca_key_path.display().to_string(),
                    msg: e.to_string(),
                })?;
                (s.ca_name.clone(), key)
            }
            _ => {
                // First start: a CA named after the store, with a random
                // suffix so two hubs of one chain are told apart.
                let name = format!(
                    "RxEdge hub CA {store} {}",
                    &crate::auth::session::new_token()[..8]
                );
                let key = KeyPair::generate()?;
                let cert = ca_params(&name, now).self_signed(&key)?;
                write(&ca_key_path, &key.serialize_pem())?;
                write(&files.ca, &cert.pem())?;
                tracing::info!(ca = %name, dir = %dir.display(), "made the hub's TLS certificate authority");
                (name, key)
            }
        };
        let fresh = state.as_ref().is_some_and(|s| {
            s.ca_name == ca_name
                && s.server_names == names
                && s.server_not_after - now.timestamp() > RENEW_DAYS * 86_400
        }) && files.cert.exists()
            && files.key.exists();
        if fresh {
            return Ok(files);
        }
        // The issuer is rebuilt from its name and key: an issued certificate
        // carries only those (and the key's identifier), so it chains to
        // ca.pem on disk.
        let issuer = ca_params(&ca_name, now).self_signed(&ca_key)?;
        let mut p = CertificateParams::new(names.to_vec())?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::OrganizationName, "RxEdge");
        dn.push(DnType::CommonName, format!("RxEdge hub {store}"));
        p.distinguished_name = dn;
        p.is_ca = IsCa::ExplicitNoCa;
        p.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        p.use_authority_key_identifier_extension = true;
        let start = now - chrono::Duration::days(1);
        let not_after = start + chrono::Duration::days(SERVER_DAYS);
        p.not_before = day!(start);
        p.not_after = day!(not_after);
        let key = KeyPair::generate()?;
        let cert = p.signed_by(&key, &issuer, &ca_key)?;
        let ca_pem = read(&files.ca)?;
        write(&files.key, &key.serialize_pem())?;
        write(&files.cert, &format!("{}{}", cert.pem(), ca_pem))?;
        let st = State {
            ca_name,
            server_names: names.to_vec(),
            server_not_after: not_after.timestamp(),
        };
        let json = serde_json::to_string_pretty(&st).map_err(|e| TlsError::Bad {
            path: state_path.display().to_string(),
            msg: e.to_string(),
        })?;
        write(&state_path, &json)?;
        tracing::info!(names = ?names, "issued the hub's TLS server certificate");
        Ok(files)
    }
}

/// Accept TCP connections on `listener` and hand over those whose TLS
/// handshake completes in time. Ends when the receiver is dropped.
pub fn accept_loop(
    listener: TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
) -> tokio::sync::mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)> {
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    let limit = Arc::new(tokio::sync::Semaphore::new(MAX_HANDSHAKES));
    tokio::spawn(async move {
        loop {
            let permit = tokio::select! {
                _ = tx.closed() => break,
                p = limit.clone().acquire_owned() => match p {
                    Ok(p) => p,
                    Err(_) => break,
                },
            };
            let (tcp, addr) = tokio::select! {
                _ = tx.closed() => break,
                r = listener.accept() => match r {
                    Ok(c) => c,
                    Err(e) => {
                        // EMFILE and friends: back off instead of spinning.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                },
            };
            let acceptor = acceptor.clone();
            let tx = tx.clone();
            tokio::spawn(async move {
                let _permit = permit;
                match tokio::time::timeout(
                    Duration::from_secs(HANDSHAKE_SECS),
                    acceptor.accept(tcp),
                )
                .await
                {
                    Ok(Ok(s)) => {
                        let _ = tx.send((s, addr)).await;
                    }
                    Ok(Err(e)) => tracing::debug!(%addr, error = %e, "TLS handshake failed"),
                    Err(_) => tracing::debug!(%addr, "TLS handshake timed out"),
                }
            });
        }
    });
    rx
}

/// An HTTPS listener for `axum::serve`.
pub struct HttpsListener {
    rx: tokio::sync::mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
}

impl HttpsListener {
    /// Serve TLS on `listener`.
    pub fn new(
        listener: TcpListener,
        acceptor: tokio_rustls::TlsAcceptor,
    ) -> std::io::Result<Self> {
        let local = listener.local_addr()?;
        Ok(Self {
            rx: accept_loop(listener, acceptor),
            local,
        })
    }
}

impl axum::serve::Listener for HttpsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.rx.recv().await {
            Some(c) => c,
            // The accept loop only ends once this listener is gone.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}

/// End MQTT over TLS on `listener` and relay each connection to the embedded
/// broker's loopback port `broker`, until `shutdown`.
pub async fn mqtt_front(
    listener: TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
    broker: SocketAddr,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let mut conns = accept_loop(listener, acceptor);
    loop {
        let (mut tls, addr) = tokio::select! {
            _ = shutdown.wait_for(|s| *s) => break,
            c = conns.recv() => match c {
                Some(c) => c,
                None => break,
            },
        };
        tokio::spawn(async move {
            match TcpStream::connect(broker).await {
                Ok(mut plain) => {
                    let _ = plain.set_nodelay(true);
                    if let Err(e) = tokio::io::copy_bidirectional(&mut tls, &mut plain).await {
                        tracing::debug!(%addr, error = %e, "MQTTS connection ended");
                    }
                }
                Err(e) => tracing::warn!(%addr, error = %e, "embedded broker unreachable"),
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_hosts() {
        assert_eq!(
            url_host("https://hub.local:8443/x"),
            Some("hub.local".into())
        );
        assert_eq!(url_host("mqtts://10.0.0.5:8883"), Some("10.0.0.5".into()));
        assert_eq!(url_host("https://[fd00::1]:8443"), Some("fd00::1".into()));
        assert_eq!(url_host("https://u:p@hub"), Some("hub".into()));
        assert_eq!(url_host("hub.local"), None);
    }

    #[test]
    fn the_ca_is_made_once_and_the_server_certificate_renewed_when_names_change(
    ) -> Result<(), Box<dyn std::error::Error>> {
        let d = tempfile::tempdir()?;
        let now = chrono::Utc::now();
        let names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
        let f = auto::ensure(d.path(), "s1", &names, now)?;
        let ca1 = std::fs::read_to_string(&f.ca)?;
        let cert1 = std::fs::read_to_string(&f.cert)?;
        // Same names: nothing is reissued.
        auto::ensure(d.path(), "s1", &names, now)?;
        assert_eq!(std::fs::read_to_string(&f.cert)?, cert1);
        // A new name: a new server certificate from the same CA.
        let more = vec!["hub.local".to_owned(), "localhost".to_owned()];
        auto::ensure(d.path(), "s1", &more, now)?;
        assert_eq!(std::fs::read_to_string(&f.ca)?, ca1);
        let cert2 = std::fs::read_to_string(&f.cert)?;
        assert_ne!(cert2, cert1);
        // Near expiry (a year on): renewed again.
        auto::ensure(d.path(), "s1", &more, now + chrono::Duration::days(380))?;
        assert_ne!(std::fs::read_to_string(&f.cert)?, cert2);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            for k in ["ca.key", "server.key"] {
                let mode = std::fs::metadata(d.path().join(k))?.permissions().mode();
                assert_eq!(mode & 0o777, 0o600, "{k}");
            }
        }
        Ok(())
    }

    /// The issued chain verifies under the CA on disk, for each of its names,
    /// with the same verifier kiosks use (rustls/webpki).
    #[test]
    fn the_server_certificate_verifies_under_the_ca_on_disk(
    ) -> Result<(), Box<dyn std::error::Error>> {
        use rustls::client::danger::ServerCertVerifier as _;
        let d = tempfile::tempdir()?;
        let names = vec!["hub.local".to_owned(), "10.1.2.3".to_owned()];
        let f = auto::ensure(d.path(), "s1", &names, chrono::Utc::now())?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        roots.add(CertificateDer::from_pem_file(&f.ca)?)?;
        let verifier =
            rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()?;
        let chain = CertificateDer::pem_file_iter(&f.cert)?.collect::<Result<Vec<_>, _>>()?;
        let now = rustls_pki_types::UnixTime::now();
        for name in ["hub.local", "10.1.2.3"] {
            let sn = rustls_pki_types::ServerName::try_from(name)?.to_owned();
            verifier.verify_server_cert(&chain[0], &chain[1..], &sn, &[], now)?;
        }
        let other = rustls_pki_types::ServerName::try_from("evil.example")?.to_owned();
        assert!(verifier
            .verify_server_cert(&chain[0], &chain[1..], &other, &[], now)
            .is_err());
        // A second hub's CA does not vouch for this one.
        let d2 = tempfile::tempdir()?;
        let f2 = auto::ensure(d2.path(), "s2", &names, chrono::Utc::now())?;
        let mut roots2 = rustls::RootCertStore::empty();
        roots2.add(CertificateDer::from_pem_file(&f2.ca)?)?;
        let v2 = rustls::client::WebPkiServerVerifier::builder_with_provider(
            Arc::new(roots2),
            Arc::new(rustls::crypto::ring::default_provider()),
        )
        .build()?;
        let sn = rustls_pki_types::ServerName::try_from("hub.local")?.to_owned();
        assert!(v2
            .verify_server_cert(&chain[0], &chain[1..], &sn, &[], now)
            .is_err());
        Ok(())
    }

    /// `mode = "files"`: a pharmacy's own chain and key. Kiosks pin the last
    /// certificate of the chain unless `ca_file` names one; a key that does
    /// not belong to the certificate, or a file that is not PEM, is refused
    /// at start with the file named.
    #[test]
    fn provided_files_are_served_and_their_ca_pinned() -> Result<(), Box<dyn std::error::Error>> {
        let d = tempfile::tempdir()?;
        // Stand-ins for the pharmacy's files, from another CA.
        let theirs = auto::ensure(
            &d.path().join("theirs"),
            "s9",
            &["hub.example".to_owned()],
            chrono::Utc::now(),
        )?;
        let mut cfg = Config::default();
        cfg.paths.state_dir = d.path().join("state");
        cfg.tls.mode = TlsMode::Files;
        cfg.tls.cert_file = theirs.cert.display().to_string();
        cfg.tls.key_file = theirs.key.display().to_string();
        let m = load(&cfg)?.ok_or("files mode loaded nothing")?;
        let ca_der = CertificateDer::from_pem_file(&theirs.ca)?;
        assert_eq!(m.ca_fingerprint, rxedge_shared::tls::fingerprint(&ca_der));
        assert_eq!(
            ca_on_disk(&cfg)?.map(|(_, fp)| fp),
            Some(m.ca_fingerprint.clone())
        );
        assert!(
            !cfg.paths.state_dir.join("tls").exists(),
            "files mode makes no CA of its own"
        );
        m.http_acceptor()?;
        // An explicit ca_file wins.
        cfg.tls.ca_file = theirs.cert.display().to_string();
        let leaf = CertificateDer::from_pem_file(&theirs.cert)?;
        assert_eq!(
            load(&cfg)?.map(|m| m.ca_fingerprint),
            Some(rxedge_shared::tls::fingerprint(&leaf))
        );
        cfg.tls.ca_file.clear();
        // Someone else's key.
        let other = auto::ensure(
            &d.path().join("other"),
            "s8",
            &["x".to_owned()],
            chrono::Utc::now(),
        )?;
        cfg.tls.key_file = other.key.display().to_string();
        let e = load(&cfg).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(!e.is_empty(), "a mismatched key was accepted");
        // Not PEM.
        let junk = d.path().join("junk.pem");
        std::fs::write(&junk, "not a certificate")?;
        cfg.tls.key_file = theirs.key.display().to_string();
        cfg.tls.cert_file = junk.display().to_string();
        let e = load(&cfg).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(e.contains("junk.pem"), "{e}");
        Ok(())
    }
}
