//! The browser driver: a `WebSocket`, `setTimeout` and `performance.now()` around a [`Pump`].
//! It only moves bytes, time and events; the pump and its session decide everything else.

use std::cell::RefCell;
use std::rc::{Rc, Weak};

use js_sys::{ArrayBuffer, Uint8Array};
use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsValue};
use web_sys::{BinaryType, CloseEvent, MessageEvent, WebSocket};

use crate::{Completion, Error, Event, Io, Options, Pump, QoS, ReasonCode};

/// The WebSocket subprotocol of MQTT ([MQTT-6.0.0-3] and 3.1.1 section 6).
const SUBPROTOCOL: &str = "mqtt";

/// A callback for every [`Event`].
type Listener = Rc<dyn Fn(&Event)>;

/// An MQTT client in the browser. Cheap to clone: clones share the connection.
///
/// Commands queue into the session at once and return a [`Completion`] (or an error); the
/// connection is driven by the browser's event loop (WebSocket callbacks and `setTimeout`),
/// so nothing needs polling. [`Client::on_event`] sees every [`Event`], messages included.
#[derive(Clone)]
pub struct Client {
    inner: Rc<Inner>,
}

struct Inner {
    state: RefCell<State>,
    listener: RefCell<Option<Listener>>,
}

struct State {
    pump: Pump,
    socket: Option<Socket>,
    /// Sockets that ended, dropped by the next timeout: their callbacks may be running when
    /// they end, so they are not dropped from inside them.
    ended: Vec<Socket>,
    /// The pending `setTimeout` (its handle and when it fires), and the one callback every
    /// timeout runs.
    timer: Option<(i32, u64)>,
    on_timer: Option<Closure<dyn FnMut()>>,
    /// Commands wait for one microtask, so that those issued together (e.g. by many promises
    /// resolved by one frame of PUBACKs) go out together, in one WebSocket frame.
    flush_queued: bool,
    on_flush: Option<Closure<dyn FnMut()>>,
}

/// A WebSocket and the callbacks it holds.
struct Socket {
    ws: WebSocket,
    _on_open: Closure<dyn FnMut()>,
    _on_message: Closure<dyn FnMut(MessageEvent)>,
    _on_close: Closure<dyn FnMut(CloseEvent)>,
}

impl Socket {
    /// Stops its callbacks from reaching the client, and closes it.
    fn detach(&self) {
        self.ws.set_onopen(None);
        self.ws.set_onmessage(None);
        self.ws.set_onclose(None);
        let _ = self.ws.close();
    }
}

impl Client {
    /// A client for `options`; call [`Client::connect`] to start.
    ///
    /// # Errors
    /// As [`Pump::new`].
    pub fn new(options: Options) -> Result<Self, Error> {
        let seed = (js_sys::Math::random() * (u64::MAX as f64)) as u64;
        let pump = Pump::new(options, seed)?;
        let inner = Rc::new(Inner {
            state: RefCell::new(State {
                pump,
                socket: None,
                ended: Vec::new(),
                timer: None,
                on_timer: None,
                flush_queued: false,
                on_flush: None,
            }),
            listener: RefCell::new(None),
        });
        let weak = Rc::downgrade(&inner);
        let on_timer = Closure::<dyn FnMut()>::new(move || {
            if let Some(inner) = weak.upgrade() {
                let mut state = inner.state.borrow_mut();
                state.timer = None;
                state.ended.clear();
                drop(state);
                drive(&inner);
            }
        });
        let weak = Rc::downgrade(&inner);
        let on_flush = Closure::<dyn FnMut()>::new(move || {
            if let Some(inner) = weak.upgrade() {
                inner.state.borrow_mut().flush_queued = false;
                drive(&inner);
            }
        });
        let mut state = inner.state.borrow_mut();
        state.on_timer = Some(on_timer);
        state.on_flush = Some(on_flush);
        drop(state);
        Ok(Self { inner })
    }

    /// Sets the callback for every event (replacing the previous one).
    pub fn on_event(&self, listener: impl Fn(&Event) + 'static) {
        *self.inner.listener.borrow_mut() = Some(Rc::new(listener));
    }

    /// Connects, and reconnects whenever the session's policy says to.
    pub fn connect(&self) {
        self.inner.state.borrow_mut().pump.start(now());
        drive(&self.inner);
    }

    /// Publishes `payload` to `topic`; see [`Pump::publish`].
    ///
    /// # Errors
    /// As [`Pump::publish`].
    pub fn publish(
        &self,
        topic: &str,
        payload: &[u8],
        qos: QoS,
        retain: bool,
    ) -> Result<Completion<ReasonCode>, Error> {
        let completion = self
            .inner
            .state
            .borrow_mut()
            .pump
            .publish(topic, payload, qos, retain)?;
        self.flush();
        Ok(completion)
    }

    /// Subscribes to `filter`; see [`Pump::subscribe`].
    ///
    /// # Errors
    /// As [`Pump::subscribe`].
    pub fn subscribe(&self, filter: &str, qos: QoS) -> Result<Completion<Vec<ReasonCode>>, Error> {
        let completion = self.inner.state.borrow_mut().pump.subscribe(filter, qos)?;
        self.flush();
        Ok(completion)
    }

    /// Unsubscribes from `filter`; see [`Pump::unsubscribe`].
    ///
    /// # Errors
    /// As [`Pump::unsubscribe`].
    pub fn unsubscribe(&self, filter: &str) -> Result<Completion<Vec<ReasonCode>>, Error> {
        let completion = self.inner.state.borrow_mut().pump.unsubscribe(filter)?;
        self.flush();
        Ok(completion)
    }

    /// Disconnects gracefully and stops reconnecting; see [`Pump::disconnect`].
    pub fn disconnect(&self) {
        self.inner.state.borrow_mut().pump.disconnect();
        drive(&self.inner);
    }

    /// Whether the broker has accepted the current connection.
    pub fn is_connected(&self) -> bool {
        self.inner.state.borrow().pump.is_connected()
    }

    /// Drives the pump in a microtask, once for all commands issued until then.
    fn flush(&self) {
        let mut state = self.inner.state.borrow_mut();
        if state.flush_queued {
            return;
        }
        match (web_sys::window(), &state.on_flush) {
            (Some(window), Some(on_flush)) => {
                window.queue_microtask(on_flush.as_ref().unchecked_ref());
                state.flush_queued = true;
            }
            _ => {
                drop(state);
                drive(&self.inner);
            }
        }
    }
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client").finish_non_exhaustive()
    }
}

/// The browser's monotonic clock, in whole milliseconds since the page loaded.
fn now() -> u64 {
    let ms = web_sys::window()
        .and_then(|w| w.performance())
        .map_or_else(js_sys::Date::now, |p| p.now());
    ms.max(0.0) as u64
}

/// Does what the pump asks, reports its events, and sets the timer for its next deadline.
fn drive(inner: &Rc<Inner>) {
    let mut events = Vec::new();
    {
        let mut guard = inner.state.borrow_mut();
        let state = &mut *guard;
        let now = now();
        state.pump.handle_timeout(now);
        // Bounded: every `Io` changes the pump's state or empties its output.
        while let Some(io) = state.pump.poll_io(now) {
            match io {
                Io::Open => {
                    end_socket(state);
                    let url = state.pump.options().url.clone();
                    match open(inner, &url) {
                        Ok(socket) => state.socket = Some(socket),
                        Err(e) => state.pump.handle_closed(now, Some(e)),
                    }
                }
                Io::Send(bytes) => {
                    let sent = match &state.socket {
                        Some(s) => s.ws.send_with_u8_array(&bytes).map_err(describe),
                        None => Err("no socket".into()),
                    };
                    if let Err(why) = sent {
                        end_socket(state);
                        state.pump.handle_closed(now, Some(Error::Transport(why)));
                    }
                }
                Io::Close => end_socket(state),
            }
        }
        while let Some(event) = state.pump.poll_event() {
            events.push(event);
        }
        schedule(state, now);
    }
    // Outside the borrow: a listener may issue commands.
    let listener = inner.listener.borrow().clone();
    if let Some(listener) = listener {
        for event in &events {
            listener(event);
        }
    }
}

/// Closes the current socket without hearing from it again.
fn end_socket(state: &mut State) {
    if let Some(socket) = state.socket.take() {
        socket.detach();
        state.ended.push(socket);
    }
}

/// Sets `setTimeout` for the pump's next deadline, replacing the pending one unless it fires
/// then already.
fn schedule(state: &mut State, now: u64) {
    let Some(window) = web_sys::window() else {
        return;
    };
    let next = state.pump.poll_timeout();
    if let Some((id, at)) = state.timer {
        if Some(at) == next {
            return;
        }
        window.clear_timeout_with_handle(id);
        state.timer = None;
    }
    let (Some(at), Some(callback)) = (next, &state.on_timer) else {
        return;
    };
    let delay = i32::try_from(at.saturating_sub(now)).unwrap_or(i32::MAX);
    if let Ok(id) = window.set_timeout_with_callback_and_timeout_and_arguments_0(
        callback.as_ref().unchecked_ref(),
        delay,
    ) {
        state.timer = Some((id, at));
    }
}

/// Opens a WebSocket to `url` whose callbacks feed the pump.
fn open(inner: &Rc<Inner>, url: &str) -> Result<Socket, Error> {
    let ws =
        WebSocket::new_with_str(url, SUBPROTOCOL).map_err(|e| Error::Transport(describe(e)))?;
    ws.set_binary_type(BinaryType::Arraybuffer);
    let weak = Rc::downgrade(inner);
    let mut on_open = callback(&weak, |state, now, ()| state.pump.handle_open(now));
    let on_message = callback(&weak, |state, now, event: MessageEvent| {
        if let Ok(buffer) = event.data().dyn_into::<ArrayBuffer>() {
            state
                .pump
                .handle_bytes(now, &Uint8Array::new(&buffer).to_vec());
        }
    });
    let on_close = callback(&weak, |state, now, event: CloseEvent| {
        end_socket(state);
        let why = format!("closed (code {})", event.code());
        state.pump.handle_closed(now, Some(Error::Transport(why)));
    });
    let on_open = Closure::<dyn FnMut()>::new(move || on_open(()));
    let on_message = Closure::<dyn FnMut(MessageEvent)>::new(on_message);
    let on_close = Closure::<dyn FnMut(CloseEvent)>::new(on_close);
    ws.set_onopen(Some(on_open.as_ref().unchecked_ref()));
    ws.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    ws.set_onclose(Some(on_close.as_ref().unchecked_ref()));
    Ok(Socket {
        ws,
        _on_open: on_open,
        _on_message: on_message,
        _on_close: on_close,
    })
}

/// A socket callback: runs `f` on the client's state, then drives the pump.
fn callback<A>(
    weak: &Weak<Inner>,
    f: impl Fn(&mut State, u64, A) + 'static,
) -> impl FnMut(A) + 'static {
    let weak = weak.clone();
    move |arg| {
        let Some(inner) = weak.upgrade() else {
            return;
        };
        f(&mut inner.state.borrow_mut(), now(), arg);
        drive(&inner);
    }
}

/// A JavaScript exception as text.
fn describe(value: JsValue) -> String {
    value
        .dyn_ref::<js_sys::Error>()
        .map(|e| String::from(e.message()))
        .or_else(|| value.as_string())
        .unwrap_or_else(|| format!("{value:?}"))
}
