//! Hardware-independent logic of the LED example device.
#![no_std]
