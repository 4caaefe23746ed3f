//! Shared code of the PC examples.

pub mod device_sim;
