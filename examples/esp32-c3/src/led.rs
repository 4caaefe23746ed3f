//! The LED pin.

use esp_hal::gpio::{Level, Output, OutputConfig, OutputPin};

/// A plain LED on a GPIO, lit at the high or (with `active_low`) the low level.
pub struct Led {
    pin: Output<'static>,
    active_low: bool,
}

impl Led {
    /// Configures `pin` as a push-pull output with the LED in state `on`.
    pub fn new(pin: impl OutputPin + 'static, active_low: bool, on: bool) -> Self {
        let pin = Output::new(pin, level(on, active_low), OutputConfig::default());
        Self { pin, active_low }
    }

    /// Lights (`true`) or darkens the LED.
    pub fn set(&mut self, on: bool) {
        self.pin.set_level(level(on, self.active_low));
    }
}

fn level(on: bool, active_low: bool) -> Level {
    if on != active_low {
        Level::High
    } else {
        Level::Low
    }
}
