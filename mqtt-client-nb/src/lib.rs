#![doc = include_str!("../README.md")]
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![warn(unreachable_pub)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod fmt;

mod client;
mod clock;
mod error;
mod event;
#[cfg(feature = "flash")]
#[cfg_attr(docsrs, doc(cfg(feature = "flash")))]
pub mod flash;
pub mod journal;
mod options;
mod payload;
mod poll;
mod reconnect;
mod select;
mod sleep;

pub use client::Client;
pub use clock::Clock;
#[cfg(feature = "embassy-time")]
pub use clock::EmbassyClock;
pub use error::Error;
pub use event::{DeleteReason, Event};
pub use journal::{Journal, NoJournal, StorageError};
pub use options::{Options, Will};
pub use payload::PayloadSource;
pub use reconnect::Redirect;

/// The protocol crate this client drives, re-exported so applications name its types
/// (`QoS`, `TopicName`, `Publish`, `session::Message`, ...) without a separate dependency.
pub use mqtt_sansio;
