//! The JavaScript API (`wasm-bindgen`): `MqttClient`, a promise per publish and subscription,
//! and callbacks for messages and events.

use js_sys::{Array, Function, Object, Promise, Reflect, Uint8Array};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;

use crate::{Client, Error, Event, Options, ProtocolVersion, QoS, ReasonCode};

/// An MQTT client for JavaScript.
///
/// ```js
/// const client = new MqttClient("ws://127.0.0.1:9001", { username: "u", password: "p" });
/// client.onMessage((topic, payload, qos, retain) => console.log(topic, payload.length));
/// client.onEvent((event) => console.log(event.type));
/// client.connect();
/// await client.publish("a/b", "hello", 1, false); // resolves on PUBACK with its reason code
/// ```
#[wasm_bindgen]
#[derive(Debug)]
pub struct MqttClient {
    client: Client,
    on_message: std::rc::Rc<std::cell::RefCell<Option<Function>>>,
    on_event: std::rc::Rc<std::cell::RefCell<Option<Function>>>,
}

#[wasm_bindgen]
impl MqttClient {
    /// A client for the broker at `url` (`ws://` or `wss://`). `options` may hold
    /// `clientId`, `username`, `password`, `keepAlive` (seconds), `cleanStart`, `version`
    /// (4 for 3.1.1, 5 for 5.0; default 5) and `reconnect` (default true).
    #[wasm_bindgen(constructor)]
    pub fn new(url: String, options: JsValue) -> Result<MqttClient, JsError> {
        let options = parse_options(url, &options)?;
        let client = Client::new(options).map_err(|e| JsError::new(&e.to_string()))?;
        let on_message: std::rc::Rc<std::cell::RefCell<Option<Function>>> = Default::default();
        let on_event: std::rc::Rc<std::cell::RefCell<Option<Function>>> = Default::default();
        let (messages, events) = (on_message.clone(), on_event.clone());
        client.on_event(move |event| {
            // Clone the function out: the callback may replace itself.
            if let Event::Message(m) = event {
                let f = messages.borrow().clone();
                if let Some(f) = f {
                    let payload = Uint8Array::from(m.payload.as_slice());
                    let args = Array::of4(
                        &JsValue::from_str(&m.topic),
                        &payload,
                        &JsValue::from(m.qos as u8),
                        &JsValue::from(m.retain),
                    );
                    let _ = f.apply(&JsValue::NULL, &args);
                }
            }
            let f = events.borrow().clone();
            if let Some(f) = f {
                let _ = f.call1(&JsValue::NULL, &event_object(event));
            }
        });
        Ok(Self {
            client,
            on_message,
            on_event,
        })
    }

    /// Starts connecting; the client reconnects as long as the session's policy says.
    pub fn connect(&self) {
        self.client.connect();
    }

    /// Publishes `payload` (a string or a `Uint8Array`) at `qos` (0, 1 or 2). The promise
    /// resolves with the broker's reason code on PUBACK (QoS 1) or PUBCOMP (QoS 2), or once
    /// written (QoS 0), and rejects with an `Error` if the message cannot be delivered.
    pub fn publish(&self, topic: &str, payload: JsValue, qos: u8, retain: bool) -> Promise {
        let bytes = match payload.as_string() {
            Some(text) => text.into_bytes(),
            None => Uint8Array::new(&payload).to_vec(),
        };
        let completion = qos_of(qos).and_then(|qos| {
            self.client
                .publish(topic, &bytes, qos, retain)
                .map_err(js_error)
        });
        future_to_promise(async move {
            let reason: ReasonCode = completion?.await.map_err(js_error)?;
            Ok(JsValue::from(reason.as_u8()))
        })
    }

    /// Subscribes to `filter` at `qos`; the promise resolves with the granted QoS (reason
    /// codes, one per filter).
    pub fn subscribe(&self, filter: &str, qos: u8) -> Promise {
        let completion =
            qos_of(qos).and_then(|qos| self.client.subscribe(filter, qos).map_err(js_error));
        future_to_promise(async move {
            let codes = completion?.await.map_err(js_error)?;
            Ok(codes
                .into_iter()
                .map(|c| JsValue::from(c.as_u8()))
                .collect::<Array>()
                .into())
        })
    }

    /// Unsubscribes from `filter`.
    pub fn unsubscribe(&self, filter: &str) -> Promise {
        let completion = self.client.unsubscribe(filter).map_err(js_error);
        future_to_promise(async move {
            let codes = completion?.await.map_err(js_error)?;
            Ok(codes
                .into_iter()
                .map(|c| JsValue::from(c.as_u8()))
                .collect::<Array>()
                .into())
        })
    }

    /// Disconnects gracefully and stops reconnecting.
    pub fn disconnect(&self) {
        self.client.disconnect();
    }

    /// Sets `f(topic, payload, qos, retain)`, called for every message.
    #[wasm_bindgen(js_name = onMessage)]
    pub fn on_message(&self, f: Function) {
        *self.on_message.borrow_mut() = Some(f);
    }

    /// Sets `f(event)`, called for every event: `{type: "connected", sessionPresent}`,
    /// `{type: "disconnected", error}`, `{type: "reconnecting", attempt, delayMs}`,
    /// `{type: "published", packetId, reasonCode}`, `{type: "subscribed", ...}`,
    /// `{type: "resubscribed", packetId, reasonCodes}` (the session renewed subscriptions a
    /// broker had lost), `{type: "unsubscribed", ...}`,
    /// `{type: "message", topic}`, `{type: "notice", detail}`, `{type: "error", error}`.
    #[wasm_bindgen(js_name = onEvent)]
    pub fn on_event(&self, f: Function) {
        *self.on_event.borrow_mut() = Some(f);
    }

    /// Whether the broker has accepted the current connection.
    #[wasm_bindgen(getter)]
    pub fn connected(&self) -> bool {
        self.client.is_connected()
    }
}

/// Options from a JavaScript object.
fn parse_options(url: String, js: &JsValue) -> Result<Options, JsError> {
    let mut options = Options::new(url);
    if !js.is_object() {
        return Ok(options);
    }
    let get = |key: &str| {
        Reflect::get(js, &JsValue::from_str(key))
            .ok()
            .filter(|v| !v.is_undefined() && !v.is_null())
    };
    if let Some(id) = get("clientId").and_then(|v| v.as_string()) {
        options.client_id = id;
    }
    options.username = get("username").and_then(|v| v.as_string());
    options.password = get("password").and_then(|v| v.as_string());
    if let Some(secs) = get("keepAlive").and_then(|v| v.as_f64()) {
        options.keep_alive = std::time::Duration::from_secs(secs.clamp(0.0, 65535.0) as u64);
    }
    if let Some(clean) = get("cleanStart").and_then(|v| v.as_bool()) {
        options.clean_start = clean;
    }
    if let Some(reconnect) = get("reconnect").and_then(|v| v.as_bool()) {
        options.reconnect = reconnect;
    }
    match get("version").and_then(|v| v.as_f64()) {
        None => {}
        Some(5.0) => options.version = ProtocolVersion::V5,
        Some(4.0) => options.version = ProtocolVersion::V3_1_1,
        Some(v) => return Err(JsError::new(&format!("version {v}: use 4 (3.1.1) or 5"))),
    }
    Ok(options)
}

fn qos_of(qos: u8) -> Result<QoS, JsValue> {
    match qos {
        0 => Ok(QoS::AtMostOnce),
        1 => Ok(QoS::AtLeastOnce),
        2 => Ok(QoS::ExactlyOnce),
        _ => Err(js_error(Error::InvalidOptions(format!(
            "QoS {qos}: use 0, 1 or 2"
        )))),
    }
}

fn js_error(error: Error) -> JsValue {
    js_sys::Error::new(&error.to_string()).into()
}

/// An event as a plain object with a `type`.
fn event_object(event: &Event) -> JsValue {
    let o = Object::new();
    let set = |key: &str, value: JsValue| {
        let _ = Reflect::set(&o, &JsValue::from_str(key), &value);
    };
    let codes = |codes: &[ReasonCode]| -> JsValue {
        codes
            .iter()
            .map(|&c| JsValue::from(c.as_u8()))
            .collect::<Array>()
            .into()
    };
    let kind = match event {
        Event::Connected { session_present } => {
            set("sessionPresent", JsValue::from(*session_present));
            "connected"
        }
        Event::Disconnected { error } => {
            set("error", JsValue::from_str(&error.to_string()));
            "disconnected"
        }
        Event::Reconnecting { attempt, delay } => {
            set("attempt", JsValue::from(*attempt));
            set("delayMs", JsValue::from(delay.as_millis() as f64));
            "reconnecting"
        }
        Event::Subscribed {
            packet_id,
            reason_codes,
        }
        | Event::Resubscribed {
            packet_id,
            reason_codes,
        }
        | Event::Unsubscribed {
            packet_id,
            reason_codes,
        } => {
            set("packetId", JsValue::from(packet_id.get()));
            set("reasonCodes", codes(reason_codes));
            match event {
                Event::Subscribed { .. } => "subscribed",
                Event::Resubscribed { .. } => "resubscribed",
                _ => "unsubscribed",
            }
        }
        Event::Published {
            packet_id,
            reason_code,
        } => {
            set("packetId", JsValue::from(packet_id.get()));
            set("reasonCode", JsValue::from(reason_code.as_u8()));
            "published"
        }
        Event::Notice(notice) => {
            set("detail", JsValue::from_str(&format!("{notice:?}")));
            "notice"
        }
        Event::Message(m) => {
            set("topic", JsValue::from_str(&m.topic));
            "message"
        }
        Event::Error(error) => {
            set("error", JsValue::from_str(&error.to_string()));
            "error"
        }
    };
    set("type", JsValue::from_str(kind));
    o.into()
}
