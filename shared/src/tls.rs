//! Transport security helpers shared by hub and kiosk: broker URLs with or
//! without TLS, and the fingerprint a kiosk pins the hub's CA by.

use sha2::{Digest as _, Sha256};

/// A broker address parsed from `mqtt://host:port` or `mqtts://host:port`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MqttUrl {
    /// Host name or IP address, without IPv6 brackets.
    pub host: String,
    /// Port: 1883 by default, 8883 with TLS.
    pub port: u16,
    /// `mqtts://` (or `ssl://`): TLS to the broker.
    pub tls: bool,
}

/// Parse a broker URL. `tcp://` and `ssl://` are accepted as the synonyms
/// Mosquitto and Paho use.
pub fn parse_mqtt_url(url: &str) -> Result<MqttUrl, String> {
    let (rest, tls) = if let Some(r) = url
        .strip_prefix("mqtts://")
        .or_else(|| url.strip_prefix("ssl://"))
    {
        (r, true)
    } else if let Some(r) = url
        .strip_prefix("mqtt://")
        .or_else(|| url.strip_prefix("tcp://"))
    {
        (r, false)
    } else {
        return Err(format!("{url:?} must start with mqtt:// or mqtts://"));
    };
    let rest = rest.trim_end_matches('/');
    let default_port = if tls { 8883 } else { 1883 };
    // A bare IPv6 address has colons but no port: "[::1]" or "[::1]:1883".
    let (host, port) = match rest.rsplit_once(':') {
        Some((h, p)) if !rest.ends_with(']') => (
            h,
            p.parse::<u16>()
                .map_err(|_| format!("{url:?}: bad port {p:?}"))?,
        ),
        _ => (rest, default_port),
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return Err(format!("{url:?}: no host"));
    }
    Ok(MqttUrl {
        host: host.to_owned(),
        port,
        tls,
    })
}

/// The SHA-256 fingerprint of a DER certificate, as 64 lowercase hex digits.
pub fn fingerprint(der: &[u8]) -> String {
    format!("{:x}", Sha256::digest(der))
}

/// Read a fingerprint as people copy it: upper or lower case, with or
/// without colons or spaces (`AB:CD:…` as browsers and OpenSSL show it).
pub fn parse_fingerprint(text: &str) -> Result<String, String> {
    let hex: String = text
        .chars()
        .filter(|c| !matches!(c, ':' | ' ' | '-'))
        .map(|c| c.to_ascii_lowercase())
        .collect();
    if hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(hex)
    } else {
        Err(format!(
            "{text:?} is not a SHA-256 fingerprint (64 hex digits, colons allowed)"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broker_urls() {
        let u = |host: &str, port, tls| MqttUrl {
            host: host.into(),
            port,
            tls,
        };
        assert_eq!(parse_mqtt_url("mqtt://h:1884"), Ok(u("h", 1884, false)));
        assert_eq!(parse_mqtt_url("mqtt://h"), Ok(u("h", 1883, false)));
        assert_eq!(parse_mqtt_url("tcp://h/"), Ok(u("h", 1883, false)));
        assert_eq!(parse_mqtt_url("mqtts://h"), Ok(u("h", 8883, true)));
        assert_eq!(
            parse_mqtt_url("ssl://10.0.0.2:9000"),
            Ok(u("10.0.0.2", 9000, true))
        );
        assert_eq!(
            parse_mqtt_url("mqtts://[::1]:8884"),
            Ok(u("::1", 8884, true))
        );
        assert_eq!(parse_mqtt_url("mqtt://[::1]"), Ok(u("::1", 1883, false)));
        assert!(parse_mqtt_url("http://h").is_err());
        assert!(parse_mqtt_url("mqtt://h:x").is_err());
        assert!(parse_mqtt_url("mqtt://:1883").is_err());
        assert!(parse_mqtt_url("mqtts://").is_err());
    }

    #[test]
    fn fingerprints_are_read_as_people_copy_them() {
        let fp = fingerprint(b"not really a certificate");
        assert_eq!(fp.len(), 64);
        let shouted: String = fp
            .to_uppercase()
            .as_bytes()
            .chunks(2)
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .collect::<Vec<_>>()
            .join(":");
        assert_eq!(parse_fingerprint(&shouted), Ok(fp.clone()));
        assert!(parse_fingerprint(&fp[..62]).is_err());
        assert!(parse_fingerprint(&format!("{}zz", &fp[..62])).is_err());
    }
}
