//! Sensirion SHT3x temperature/humidity sensor over I2C (embedded-hal 1.0),
//! single-shot, high repeatability, no clock stretching.

use super::{ProbeError, TempProbe};
use embedded_hal::delay::DelayNs;
use embedded_hal::i2c::I2c;

/// Default address (ADDR pin low).
pub const ADDRESS: u8 = 0x44;
const MEASURE: [u8; 2] = [0x24, 0x00];
/// Datasheet: at most 15.5 ms for a high-repeatability measurement.
const MEASURE_MS: u32 = 16;

/// CRC-8, polynomial 0x31, init 0xFF (datasheet 4.12).
pub fn crc8(data: &[u8]) -> u8 {
    let mut crc = 0xFFu8;
    for b in data {
        crc ^= b;
        for _ in 0..8 {
            crc = if crc & 0x80 != 0 {
                (crc << 1) ^ 0x31
            } else {
                crc << 1
            };
        }
    }
    crc
}

/// The driver.
pub struct Sht3x<I, D> {
    i2c: I,
    delay: D,
    address: u8,
}

impl<I: I2c, D: DelayNs> Sht3x<I, D> {
    /// A sensor at `address` on `i2c`.
    pub fn new(i2c: I, delay: D, address: u8) -> Self {
        Self {
            i2c,
            delay,
            address,
        }
    }

    /// Give the bus back (tests check the recorded transactions).
    pub fn release(self) -> I {
        self.i2c
    }

    /// One measurement: (°C, % relative humidity).
    pub fn measure(&mut self) -> Result<(f64, f64), ProbeError> {
        self.i2c
            .write(self.address, &MEASURE)
            .map_err(|e| ProbeError::Missing(format!("i2c write: {e:?}")))?;
        self.delay.delay_ms(MEASURE_MS);
        let mut buf = [0u8; 6];
        self.i2c
            .read(self.address, &mut buf)
            .map_err(|e| ProbeError::Missing(format!("i2c read: {e:?}")))?;
        if crc8(&buf[0..2]) != buf[2] || crc8(&buf[3..5]) != buf[5] {
            return Err(ProbeError::Bad("SHT3x CRC mismatch".into()));
        }
        let t = u16::from_be_bytes([buf[0], buf[1]]);
        let h = u16::from_be_bytes([buf[3], buf[4]]);
        Ok((
            -45.0 + 175.0 * f64::from(t) / 65535.0,
            100.0 * f64::from(h) / 65535.0,
        ))
    }
}

impl<I: I2c + Send, D: DelayNs + Send> TempProbe for Sht3x<I, D> {
    fn read(&mut self) -> Result<f64, ProbeError> {
        self.measure().map(|(t, _)| t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use embedded_hal_mock::eh1::delay::NoopDelay;
    use embedded_hal_mock::eh1::i2c::{Mock, Transaction};

    #[test]
    fn crc_matches_the_datasheet_example() {
        // Datasheet: CRC of 0xBEEF is 0x92.
        assert_eq!(crc8(&[0xBE, 0xEF]), 0x92);
    }

    #[test]
    fn measures_from_recorded_bus_transactions() -> Result<(), ProbeError> {
        // 0x6666 → -45 + 175 * 26214 / 65535 = 25.0 °C; 0x8000 → 50.0 %RH.
        let t = [0x66, 0x66];
        let h = [0x80, 0x00];
        let reply = vec![t[0], t[1], crc8(&t), h[0], h[1], crc8(&h)];
        let bus = Mock::new(&[
            Transaction::write(ADDRESS, vec![0x24, 0x00]),
            Transaction::read(ADDRESS, reply),
        ]);
        let mut s = Sht3x::new(bus, NoopDelay::new(), ADDRESS);
        let (c, rh) = s.measure()?;
        assert!((c - 25.0).abs() < 0.01, "{c}");
        assert!((rh - 50.0).abs() < 0.01, "{rh}");
        s.release().done();
        Ok(())
    }

    #[test]
    fn a_corrupt_reply_is_a_bad_read() {
        let bus = Mock::new(&[
            Transaction::write(ADDRESS, vec![0x24, 0x00]),
            Transaction::read(ADDRESS, vec![0x66, 0x66, 0x00, 0x80, 0x00, 0x00]),
        ]);
        let mut s = Sht3x::new(bus, NoopDelay::new(), ADDRESS);
        assert!(matches!(s.measure(), Err(ProbeError::Bad(_))));
        s.release().done();
    }

    #[test]
    fn a_silent_bus_is_a_missing_probe() {
        let bus = Mock::new(&[Transaction::write(ADDRESS, vec![0x24, 0x00]).with_error(
            embedded_hal::i2c::ErrorKind::NoAcknowledge(
                embedded_hal::i2c::NoAcknowledgeSource::Address,
            ),
        )]);
        let mut s = Sht3x::new(bus, NoopDelay::new(), ADDRESS);
        assert!(matches!(s.measure(), Err(ProbeError::Missing(_))));
        s.release().done();
    }
}
