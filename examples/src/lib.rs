//! Shared code of the PC examples.

pub mod cli;
pub mod demo;
pub mod device_sim;
