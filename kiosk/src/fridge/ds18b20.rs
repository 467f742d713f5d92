//! DS18B20 probes on the Linux 1-Wire bus (`w1-gpio` + `w1-therm`):
//! `/sys/bus/w1/devices/28-*/w1_slave`.

use super::{ProbeError, TempProbe};
use std::path::{Path, PathBuf};

/// The value a DS18B20 reports before its first conversion (power-on reset).
const POWER_ON_MILLI_C: i64 = 85_000;

/// Parse the two-line `w1_slave` text:
/// `72 01 4b 46 7f ff 0e 10 57 : crc=57 YES` then `72 01 4b 46 7f ff 0e 10 57 t=23125`.
pub fn parse_w1_slave(text: &str) -> Result<f64, ProbeError> {
    let mut lines = text.lines();
    let crc = lines
        .next()
        .ok_or(ProbeError::Bad("empty w1_slave".into()))?;
    if !crc.trim_end().ends_with("YES") {
        return Err(ProbeError::Bad("CRC check failed".into()));
    }
    let data = lines
        .next()
        .ok_or(ProbeError::Bad("no temperature line".into()))?;
    let milli: i64 = data
        .rsplit_once("t=")
        .and_then(|(_, t)| t.trim().parse().ok())
        .ok_or_else(|| ProbeError::Bad(format!("no t= in {data:?}")))?;
    if milli == POWER_ON_MILLI_C {
        return Err(ProbeError::Bad(
            "85 °C power-on value (the probe lost power)".into(),
        ));
    }
    // The sensor's range is −55…+125 °C; anything else is a corrupt read.
    if !(-55_000..=125_000).contains(&milli) {
        return Err(ProbeError::Bad(format!(
            "{milli} m°C is out of the sensor's range"
        )));
    }
    Ok(milli as f64 / 1000.0)
}

/// A DS18B20 by its 1-Wire id (`28-0316a2794fff`).
pub struct Ds18b20 {
    path: PathBuf,
}

impl Ds18b20 {
    /// The probe with this id under `root` (normally `/sys/bus/w1/devices`).
    pub fn new(root: &Path, id: &str) -> Self {
        Self {
            path: root.join(id).join("w1_slave"),
        }
    }
}

impl TempProbe for Ds18b20 {
    fn read(&mut self) -> Result<f64, ProbeError> {
        // Reading triggers a conversion (~750 ms); callers run this off the async threads.
        let text = std::fs::read_to_string(&self.path)
            .map_err(|e| ProbeError::Missing(format!("{}: {e}", self.path.display())))?;
        parse_w1_slave(&text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_good_conversion() {
        let t = "72 01 4b 46 7f ff 0e 10 57 : crc=57 YES\n72 01 4b 46 7f ff 0e 10 57 t=23125\n";
        assert_eq!(parse_w1_slave(t).ok(), Some(23.125));
        let neg = "5e ff 4b 46 7f ff 02 10 8f : crc=8f YES\n5e ff 4b 46 7f ff 02 10 8f t=-10125\n";
        assert_eq!(parse_w1_slave(neg).ok(), Some(-10.125));
    }

    #[test]
    fn refuses_crc_failures_power_on_and_garbage() {
        let crc = "72 01 4b 46 7f ff 0e 10 57 : crc=00 NO\n72 01 4b 46 7f ff 0e 10 57 t=23125\n";
        assert!(matches!(parse_w1_slave(crc), Err(ProbeError::Bad(m)) if m.contains("CRC")));
        let pwr = "50 05 4b 46 7f ff 0c 10 1c : crc=1c YES\n50 05 4b 46 7f ff 0c 10 1c t=85000\n";
        assert!(matches!(parse_w1_slave(pwr), Err(ProbeError::Bad(m)) if m.contains("power-on")));
        assert!(parse_w1_slave("").is_err());
        assert!(parse_w1_slave("xx YES\nno temperature\n").is_err());
    }

    #[test]
    fn a_missing_device_file_is_missing_not_bad() -> Result<(), std::io::Error> {
        let d = tempfile::tempdir()?;
        let mut p = Ds18b20::new(d.path(), "28-000000000000");
        assert!(matches!(p.read(), Err(ProbeError::Missing(_))));
        std::fs::create_dir_all(d.path().join("28-000000000000"))?;
        std::fs::write(
            d.path().join("28-000000000000/w1_slave"),
            "aa 00 4b 46 7f ff 06 10 d8 : crc=d8 YES\naa 00 4b 46 7f ff 06 10 d8 t=4625\n",
        )?;
        assert_eq!(p.read().ok(), Some(4.625));
        Ok(())
    }
}
