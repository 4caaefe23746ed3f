//! An MQTT 3.1.1 and 5.0 client for the browser: the [`mqtt_sansio`] session over a
//! WebSocket (subprotocol `mqtt`, binary frames), on the browser's clock
//! (`performance.now()`) and timers (`setTimeout`).
//!
//! It is the third thin driver of the workspace's sans-IO session, beside `mqtt-client-tokio`
//! and `mqtt-client-nb`, and makes no protocol decision of its own: QoS 0/1/2 flows, packet
//! identifiers, keep alive, resending after a reconnect and the reconnect policy (when to try
//! again, and whether retrying can help) are the session's. The pieces:
//!
//! - [`Pump`] (every target): the driver-independent core. It feeds the session received
//!   bytes and the time, takes its packets and events, and says what to do with the transport
//!   ([`Io`]: open, send a frame, close). The host tests drive it with a scripted broker.
//! - `Client` (wasm32 only): the Rust API over a browser `WebSocket`. Commands return a
//!   [`Completion`] to await (PUBACK/PUBCOMP for a publish) and one callback sees every
//!   [`Event`].
//! - `MqttClient` (wasm32 only): the JavaScript API, through `wasm-bindgen`: a promise per
//!   publish and subscription, `onMessage` and `onEvent` callbacks.
//!
//! ```js
//! import init, { MqttClient } from "./pkg/mqtt_client_wasm.js";
//! await init();
//! const client = new MqttClient("ws://127.0.0.1:9001", { username: "demo", password: "pw" });
//! client.onEvent((e) => console.log(e.type, e));
//! client.onMessage((topic, payload) => console.log(topic, new TextDecoder().decode(payload)));
//! client.connect();
//! await client.subscribe("devices/+/status", 1);
//! const reasonCode = await client.publish("devices/lamp/led/set", "on", 1, false);
//! ```
//!
//! Build the browser bundle with
//! `cargo build --release --target wasm32-unknown-unknown -p mqtt-client-wasm` and
//! `wasm-bindgen --target web --out-dir pkg target/wasm32-unknown-unknown/release/mqtt_client_wasm.wasm`.
#![cfg_attr(docsrs, feature(doc_cfg))]
#![warn(missing_docs)]
#![warn(unreachable_pub)]

mod completion;
mod event;
mod options;
mod pump;

#[cfg(target_arch = "wasm32")]
mod browser;
#[cfg(target_arch = "wasm32")]
mod js;

pub use completion::Completion;
pub use event::{Error, Event, Message};
pub use mqtt_sansio::session::{EndCause, Notice, ReconnectPolicy};
pub use mqtt_sansio::{PacketId, ProtocolVersion, QoS, ReasonCode};
pub use options::Options;
pub use pump::{Io, Pump};

#[cfg(target_arch = "wasm32")]
#[cfg_attr(docsrs, doc(cfg(target_arch = "wasm32")))]
pub use browser::Client;
#[cfg(target_arch = "wasm32")]
#[cfg_attr(docsrs, doc(cfg(target_arch = "wasm32")))]
pub use js::MqttClient;
