//! Raspberry Pi hardware through rppal: door contacts on GPIO inputs, the
//! buzzer on a GPIO output, SHT3x probes on the I2C bus.

use super::{Buzzer, DoorSwitch, ProbeError};
use rppal::gpio::{Gpio, InputPin, OutputPin};

/// A door reed switch between the pin and ground (closed door = contact closed = low).
pub struct GpioDoor(InputPin);

impl GpioDoor {
    /// Claim BCM pin `pin` with the internal pull-up.
    pub fn new(pin: u8) -> Result<Self, ProbeError> {
        let p = Gpio::new()
            .and_then(|g| g.get(pin))
            .map_err(|e| ProbeError::Missing(format!("gpio {pin}: {e}")))?;
        Ok(Self(p.into_input_pullup()))
    }
}

impl DoorSwitch for GpioDoor {
    fn is_open(&mut self) -> Result<bool, ProbeError> {
        Ok(self.0.is_high())
    }
}

/// A buzzer or LED driven high when sounding.
pub struct GpioBuzzer(OutputPin);

impl GpioBuzzer {
    /// Claim BCM pin `pin`, off.
    pub fn new(pin: u8) -> Result<Self, ProbeError> {
        let p = Gpio::new()
            .and_then(|g| g.get(pin))
            .map_err(|e| ProbeError::Missing(format!("gpio {pin}: {e}")))?;
        Ok(Self(p.into_output_low()))
    }
}

impl Buzzer for GpioBuzzer {
    fn set(&mut self, on: bool) {
        if on {
            self.0.set_high();
        } else {
            self.0.set_low();
        }
    }
}

/// An SHT3x on the Pi's I2C bus `bus` (1 on a Pi 4/5).
pub fn sht3x(
    bus: u8,
    address: u8,
) -> Result<super::sht3x::Sht3x<rppal::i2c::I2c, rppal::hal::Delay>, ProbeError> {
    let i2c = rppal::i2c::I2c::with_bus(bus)
        .map_err(|e| ProbeError::Missing(format!("i2c-{bus}: {e}")))?;
    Ok(super::sht3x::Sht3x::new(
        i2c,
        rppal::hal::Delay::new(),
        address,
    ))
}
