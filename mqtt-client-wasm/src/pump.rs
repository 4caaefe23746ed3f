//! The driver-independent core: the session pump. It moves bytes, time and commands between a
//! transport and [`Session`], and says what to do with the transport ([`Io`]); it has no
//! clock and no socket of its own, so the browser driver and the host tests run the same
//! code. Every protocol decision (what to send, when to ping, whether and when to reconnect)
//! is the session's.

use std::collections::{HashMap, VecDeque};

use mqtt_sansio::session::{
    self, ConnectionState, Instant, LostReason, Read, Reconnect, Session, SessionConfig,
};
use mqtt_sansio::{
    Connect, Disconnect, EncodeError, PacketId, ProtocolVersion, QoS, ReasonCode,
    SubscribeProperties, Subscription, TopicFilter, TopicName, UnsubscribeProperties,
};

use crate::completion::{pair, Completion, Resolver};
use crate::{Error, Event, Message, Options};

/// What the driver does with the transport, from [`Pump::poll_io`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Io {
    /// Open a new WebSocket to [`Options::url`]; then call [`Pump::handle_open`] or
    /// [`Pump::handle_closed`].
    Open,
    /// Send these bytes (one or more whole packets) as one binary frame.
    Send(Vec<u8>),
    /// Close the transport; [`Pump::handle_closed`] was already done.
    Close,
}

/// Where the transport stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Link {
    /// No transport: open one at this time (milliseconds), or never (`None`).
    Idle(Option<u64>),
    /// [`Io::Open`] was returned; waiting for the driver.
    Opening,
    /// The transport is open.
    Open,
}

/// The session pump: feed it what happens ([`Pump::handle_open`], [`Pump::handle_bytes`],
/// [`Pump::handle_closed`], [`Pump::handle_timeout`]) and the application's commands, then
/// drain [`Pump::poll_io`] and [`Pump::poll_event`], and wake up again at
/// [`Pump::poll_timeout`]. Times are milliseconds from an epoch the driver picks.
pub struct Pump {
    session: Session<Box<[u8]>>,
    options: Options,
    client_id: String,
    link: Link,
    /// The application asked to stop: no reconnect.
    stopping: bool,
    /// The current connection reached CONNACK.
    connected: bool,
    /// Why the current connection ends, first cause first.
    end_error: Option<Error>,
    /// Received bytes not yet processed, and bytes still to drop of a skipped packet.
    rx: Vec<u8>,
    rx_skip: usize,
    /// Packets to send, and where the session encodes each.
    out: Vec<u8>,
    scratch: Vec<u8>,
    events: VecDeque<Event>,
    publishes: HashMap<u16, Resolver<ReasonCode>>,
    requests: HashMap<u16, Resolver<Vec<ReasonCode>>>,
    /// Completions of queued QoS 0 publishes, first in, first out, as the session sends them.
    qos0: VecDeque<Resolver<ReasonCode>>,
}

impl Pump {
    /// A pump for `options`; `seed` feeds the reconnect jitter and, for 3.1.1 without a
    /// client identifier, the identifier made up here (the browser driver passes
    /// `Math.random()` bits).
    ///
    /// # Errors
    /// [`Error::InvalidOptions`] when the CONNECT cannot be encoded; [`Error::Command`] when
    /// the session refuses the configuration.
    pub fn new(options: Options, seed: u64) -> Result<Self, Error> {
        let mut config = SessionConfig::new(options.version);
        config.maximum_packet_size = options.maximum_packet_size.max(64);
        config.receive_maximum = 64;
        config.incoming_slots = 256;
        config.connack_timeout = options.connect_timeout;
        config.subscription_bytes = options.subscription_bytes;
        // Acknowledgements find their packet without walking the offline queue.
        config.index_slots = 64;
        config.reconnect = options.reconnect_policy;
        config.reconnect.seed = seed | 1;
        let client_id = if options.client_id.is_empty() && options.version != ProtocolVersion::V5 {
            format!("mqttwasm-{seed:016x}")
        } else {
            options.client_id.clone()
        };
        let control = SessionConfig::control_len(&connect_packet(&options, &client_id))
            .map_err(|e| Error::InvalidOptions(format!("CONNECT cannot be encoded: {e}")))?;
        config.control_bytes = (control + 64).max(512);
        let store = vec![0u8; config.reserved_bytes() + options.offline_queue_bytes.max(1024)];
        let session = Session::new(config, store.into_boxed_slice())?;
        Ok(Self {
            session,
            options,
            client_id,
            link: Link::Idle(None),
            stopping: false,
            connected: false,
            end_error: None,
            rx: Vec::new(),
            rx_skip: 0,
            out: Vec::new(),
            scratch: vec![0; 512],
            events: VecDeque::new(),
            publishes: HashMap::new(),
            requests: HashMap::new(),
            qos0: VecDeque::new(),
        })
    }

    /// The options.
    pub fn options(&self) -> &Options {
        &self.options
    }

    /// Whether the broker has accepted the current connection.
    pub fn is_connected(&self) -> bool {
        self.link == Link::Open && self.session.state() == ConnectionState::Connected
    }

    /// Starts connecting (at once) and keeps connecting as the session's policy says.
    pub fn start(&mut self, now: u64) {
        self.stopping = false;
        if let Link::Idle(_) = self.link {
            self.link = Link::Idle(Some(now));
        }
    }

    /// The transport asked for by [`Io::Open`] is open: CONNECT is queued.
    pub fn handle_open(&mut self, _now: u64) {
        if self.link != Link::Opening {
            return;
        }
        self.link = Link::Open;
        self.connected = false;
        self.end_error = None;
        let connect = connect_packet(&self.options, &self.client_id);
        if let Err(e) = self.session.connect(&connect) {
            self.end_error = Some(e.into());
        }
    }

    /// Bytes arrived from the broker: every whole packet in them is handed to the session.
    pub fn handle_bytes(&mut self, now: u64, bytes: &[u8]) {
        if self.link != Link::Open {
            return;
        }
        let skipped = self.rx_skip.min(bytes.len());
        self.rx_skip -= skipped;
        self.rx.extend_from_slice(&bytes[skipped..]);
        let now_i = Instant::from_millis(now);
        let mut start = 0;
        // Bounded: each round consumes bytes, or drains acknowledgements once (Blocked).
        let mut blocked = false;
        while start < self.rx.len() {
            match self.session.handle_read(now_i, &self.rx[start..]) {
                Ok(Read::Packet { len, event }) => {
                    blocked = false;
                    // The event of the packet's one decode, copied out of its borrow.
                    let seen = event.map(Seen::from_session);
                    start += len;
                    if let Some(seen) = seen {
                        self.on_event(seen);
                    }
                }
                Ok(Read::Blocked) if !blocked => {
                    blocked = true;
                    self.fill_out(now);
                }
                Ok(Read::Skip { len }) => {
                    let dropped = len.min(self.rx.len() - start);
                    start += dropped;
                    self.rx_skip = len - dropped;
                }
                Ok(_) => break,
                Err(e) => {
                    // The session queued a DISCONNECT (5.0) and is closing.
                    self.end_error.get_or_insert(Error::Protocol(e));
                    start = self.rx.len();
                }
            }
        }
        self.rx.drain(..start);
    }

    /// The transport closed or failed (or could not be opened); `error` says how, if the
    /// driver knows. The session decides whether and when to connect again.
    pub fn handle_closed(&mut self, now: u64, error: Option<Error>) {
        if let Link::Idle(_) = self.link {
            return;
        }
        self.link = Link::Idle(None);
        let next = self
            .session
            .handle_transport_closed(Instant::from_millis(now));
        self.take_session_events();
        self.rx.clear();
        self.rx_skip = 0;
        self.out.clear();
        let error = match (self.end_error.take(), error) {
            (Some(e), _) | (None, Some(e)) => e,
            (None, None) if self.stopping => Error::Closed,
            (None, None) => Error::Transport("closed".into()),
        };
        if std::mem::take(&mut self.connected) {
            self.events.push_back(Event::Disconnected { error });
        } else if !self.stopping {
            self.events.push_back(Event::Error(error));
        }
        let at = match next {
            _ if self.stopping => None,
            Reconnect::At { at, attempt, .. } if self.options.reconnect => {
                let delay = at.saturating_duration_since(Instant::from_millis(now));
                self.events
                    .push_back(Event::Reconnecting { attempt, delay });
                Some(at.as_millis())
            }
            // This client has no second broker: a redirection retries the same one.
            Reconnect::Redirect { at, .. } if self.options.reconnect => {
                let delay = at.saturating_duration_since(Instant::from_millis(now));
                self.events
                    .push_back(Event::Reconnecting { attempt: 1, delay });
                Some(at.as_millis())
            }
            Reconnect::Stop(cause) => {
                self.events.push_back(Event::Error(Error::Stopped(cause)));
                None
            }
            _ => None,
        };
        self.link = Link::Idle(at);
        if at.is_none() {
            let error = if self.stopping {
                Error::Closed
            } else {
                Error::Stopped(mqtt_sansio::session::EndCause::Transport)
            };
            self.fail_all(&error);
        }
    }

    /// Advances the session's timers and the reconnect wait to `now`.
    pub fn handle_timeout(&mut self, now: u64) {
        self.session.handle_timeout(Instant::from_millis(now));
    }

    /// The next thing to do with the transport, if any. Call until `None` after every input
    /// and command.
    pub fn poll_io(&mut self, now: u64) -> Option<Io> {
        match self.link {
            Link::Idle(Some(at)) if now >= at => {
                self.link = Link::Opening;
                Some(Io::Open)
            }
            Link::Idle(_) | Link::Opening => None,
            Link::Open => {
                self.fill_out(now);
                self.take_session_events();
                if !self.out.is_empty() {
                    return Some(Io::Send(std::mem::take(&mut self.out)));
                }
                let closing = self.session.state() == ConnectionState::Closing
                    || self.end_error.is_some()
                    || (self.stopping && self.session.state() != ConnectionState::Connected);
                if closing {
                    self.handle_closed(now, None);
                    return Some(Io::Close);
                }
                None
            }
        }
    }

    /// The next event for the application.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.take_session_events();
        self.events.pop_front()
    }

    /// When to call [`Pump::handle_timeout`] and [`Pump::poll_io`] next, if nothing else
    /// happens first.
    pub fn poll_timeout(&self) -> Option<u64> {
        let session = match self.link {
            Link::Open => self.session.poll_timeout().map(Instant::as_millis),
            _ => None,
        };
        let reconnect = match self.link {
            Link::Idle(at) => at,
            _ => None,
        };
        session.into_iter().chain(reconnect).min()
    }

    /// Queues a message; the completion resolves with the broker's reason code on PUBACK
    /// (QoS 1) or PUBCOMP (QoS 2), or once written (QoS 0). Queued while offline, sent on the
    /// next connection.
    ///
    /// # Errors
    /// [`Error::Topic`], [`Error::Command`] (store full, broker limits), [`Error::Closed`]
    /// after [`Pump::disconnect`]. Nothing is queued on error.
    pub fn publish(
        &mut self,
        topic: &str,
        payload: &[u8],
        qos: QoS,
        retain: bool,
    ) -> Result<Completion<ReasonCode>, Error> {
        self.check_running()?;
        let mut message = session::Message::new(TopicName::new(topic)?, payload, qos);
        message.retain = retain;
        let id = self.session.publish(&message)?;
        let (resolver, completion) = pair();
        match id {
            Some(id) => {
                self.publishes.insert(id.get(), resolver);
            }
            None => self.qos0.push_back(resolver),
        }
        Ok(completion)
    }

    /// Queues a SUBSCRIBE for `filter` at `qos`; the completion resolves with the granted QoS
    /// (or failure) reason code.
    ///
    /// # Errors
    /// As [`Pump::publish`].
    pub fn subscribe(
        &mut self,
        filter: &str,
        qos: QoS,
    ) -> Result<Completion<Vec<ReasonCode>>, Error> {
        self.check_running()?;
        let subscription = Subscription::new(TopicFilter::new(filter)?, qos);
        let id = self
            .session
            .subscribe(&[subscription], SubscribeProperties::default())?;
        Ok(self.request(id))
    }

    /// Queues an UNSUBSCRIBE for `filter`.
    ///
    /// # Errors
    /// As [`Pump::publish`].
    pub fn unsubscribe(&mut self, filter: &str) -> Result<Completion<Vec<ReasonCode>>, Error> {
        self.check_running()?;
        let filter = TopicFilter::new(filter)?;
        let id = self
            .session
            .unsubscribe(&[filter], UnsubscribeProperties::default())?;
        Ok(self.request(id))
    }

    /// Ends the connection gracefully (DISCONNECT once what is queued before it is out, so the
    /// broker drops the will) and stops reconnecting. Unfinished commands fail with
    /// [`Error::Closed`].
    pub fn disconnect(&mut self) {
        self.stopping = true;
        match self.link {
            Link::Open if self.session.state() == ConnectionState::Connected => {
                if let Err(e) = self.session.disconnect(&Disconnect::default()) {
                    self.end_error.get_or_insert(e.into());
                }
            }
            // Opening or connecting: `poll_io` closes (a late `handle_open` is ignored).
            Link::Open => {}
            Link::Opening => self.link = Link::Open,
            Link::Idle(_) => {
                self.link = Link::Idle(None);
                self.fail_all(&Error::Closed);
            }
        }
    }

    fn check_running(&self) -> Result<(), Error> {
        if self.stopping {
            return Err(Error::Closed);
        }
        Ok(())
    }

    fn request(&mut self, id: PacketId) -> Completion<Vec<ReasonCode>> {
        let (resolver, completion) = pair();
        self.requests.insert(id.get(), resolver);
        completion
    }

    /// Moves packets from the session into `out`.
    fn fill_out(&mut self, now: u64) {
        let now = Instant::from_millis(now);
        // Bounded: each round sends a packet, grows the buffer once, or stops.
        loop {
            match self.session.poll_transmit(now, &mut self.scratch) {
                Ok(Some(t)) => {
                    self.out.extend_from_slice(&self.scratch[..t.len]);
                    if t.completes_qos0 {
                        if let Some(done) = self.qos0.pop_front() {
                            done.resolve(Ok(ReasonCode::Success));
                        }
                    }
                }
                Ok(None) => return,
                Err(EncodeError::BufferTooSmall { needed, .. }) if needed > self.scratch.len() => {
                    self.scratch.resize(needed, 0);
                }
                Err(e) => {
                    self.end_error
                        .get_or_insert(Error::InvalidOptions(format!("encoding failed: {e}")));
                    return;
                }
            }
        }
    }

    /// Takes the events the session raised itself (lost connection, dropped messages).
    fn take_session_events(&mut self) {
        while let Some(event) = self.session.poll_event() {
            self.on_event(Seen::from_session(event));
        }
    }

    /// Completes commands and queues the application's event for one session event.
    fn on_event(&mut self, seen: Seen) {
        match seen {
            Seen::Event(Event::Published {
                packet_id,
                reason_code,
            }) => {
                if let Some(done) = self.publishes.remove(&packet_id.get()) {
                    let result = if reason_code.is_error() {
                        Err(Error::NotDelivered(reason_code))
                    } else {
                        Ok(reason_code)
                    };
                    done.resolve(result);
                }
                self.events.push_back(Event::Published {
                    packet_id,
                    reason_code,
                });
            }
            Seen::Event(event @ (Event::Subscribed { .. } | Event::Unsubscribed { .. })) => {
                if let Event::Subscribed {
                    packet_id,
                    reason_codes,
                }
                | Event::Unsubscribed {
                    packet_id,
                    reason_codes,
                } = &event
                {
                    if let Some(done) = self.requests.remove(&packet_id.get()) {
                        done.resolve(Ok(reason_codes.clone()));
                    }
                }
                self.events.push_back(event);
            }
            Seen::Event(event @ Event::Connected { .. }) => {
                self.connected = true;
                self.events.push_back(event);
            }
            Seen::Event(event) => self.events.push_back(event),
            Seen::Ended(error) => {
                self.end_error.get_or_insert(error);
            }
            Seen::Failed { packet_id, error } => {
                let done = match packet_id {
                    Some(id) => self.publishes.remove(&id),
                    None => self.qos0.pop_front(),
                };
                if let Some(done) = done {
                    done.resolve(Err(error.clone()));
                }
                self.events.push_back(Event::Error(error));
            }
            Seen::RequestFailed { packet_id, error } => {
                if let Some(done) = self.requests.remove(&packet_id) {
                    done.resolve(Err(error.clone()));
                }
                self.events.push_back(Event::Error(error));
            }
            Seen::Nothing => {}
        }
    }

    /// Fails every unfinished command with `error`; the session's queue stays as it is.
    fn fail_all(&mut self, error: &Error) {
        for (_, done) in self.publishes.drain() {
            done.resolve(Err(error.clone()));
        }
        for (_, done) in self.requests.drain() {
            done.resolve(Err(error.clone()));
        }
        for done in self.qos0.drain(..) {
            done.resolve(Err(error.clone()));
        }
    }
}

impl std::fmt::Debug for Pump {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pump")
            .field("state", &self.session.state())
            .field("link", &self.link)
            .finish_non_exhaustive()
    }
}

/// A session event, owned, sorted by what the pump does with it.
enum Seen {
    /// Reported as it is.
    Event(Event),
    /// The connection is ending for this reason (reported when the transport is closed).
    Ended(Error),
    /// A publish will not complete.
    Failed {
        packet_id: Option<u16>,
        error: Error,
    },
    /// A SUBSCRIBE or UNSUBSCRIBE was dropped.
    RequestFailed { packet_id: u16, error: Error },
    /// Nothing for the application (PINGRESP, our own DISCONNECT going out).
    Nothing,
}

impl Seen {
    fn from_session(event: session::Event<'_>) -> Self {
        use session::Event as S;
        match event {
            S::Connected {
                session_present, ..
            } => Self::Event(Event::Connected { session_present }),
            S::ConnectionRefused { reason_code, .. } => Self::Ended(Error::Refused(reason_code)),
            S::Message(p) => Self::Event(Event::Message(Message {
                topic: p.topic.as_str().to_owned(),
                payload: p.payload.to_vec(),
                qos: p.qos_pid.qos(),
                retain: p.retain,
            })),
            S::Published {
                packet_id,
                reason_code,
                ..
            } => Self::Event(Event::Published {
                packet_id,
                reason_code,
            }),
            S::Subscribed {
                packet_id,
                reason_codes,
                ..
            } => Self::Event(Event::Subscribed {
                packet_id,
                reason_codes: reason_codes.iter().collect(),
            }),
            S::Resubscribed {
                packet_id,
                reason_codes,
                ..
            } => Self::Event(Event::Resubscribed {
                packet_id,
                reason_codes: reason_codes.iter().collect(),
            }),
            S::Unsubscribed {
                packet_id,
                reason_codes,
                ..
            } => Self::Event(Event::Unsubscribed {
                packet_id,
                reason_codes: reason_codes.iter().collect(),
            }),
            S::Disconnected { reason_code, .. } => {
                Self::Ended(Error::ServerDisconnect(reason_code))
            }
            S::ConnectionLost(reason) => match reason {
                LostReason::ConnAckTimeout => Self::Ended(Error::ConnAckTimeout),
                LostReason::KeepAliveTimeout => Self::Ended(Error::KeepAliveTimeout),
                LostReason::DisconnectSent => Self::Nothing,
                _ => Self::Ended(Error::Transport(format!("{reason:?}"))),
            },
            S::PublishAbandoned { packet_id, .. } => Self::Failed {
                packet_id: Some(packet_id.get()),
                error: Error::SessionLost,
            },
            S::PublishDropped {
                packet_id,
                reason_code,
            } => Self::Failed {
                packet_id: packet_id.map(PacketId::get),
                error: Error::NotDelivered(reason_code),
            },
            S::RequestDropped {
                packet_id,
                reason_code,
            } => Self::RequestFailed {
                packet_id: packet_id.get(),
                error: Error::NotDelivered(reason_code),
            },
            S::Notice(notice) => Self::Event(Event::Notice(notice)),
            // PINGRESP; AUTH (this client names no authentication method, so the session
            // refuses AUTH as a protocol error before it gets here).
            _ => Self::Nothing,
        }
    }
}

/// CONNECT from the options.
fn connect_packet<'a>(options: &'a Options, client_id: &'a str) -> Connect<'a> {
    let mut c = Connect::new(options.version, client_id);
    c.clean_start = options.clean_start;
    c.keep_alive = u16::try_from(options.keep_alive.as_secs()).unwrap_or(u16::MAX);
    c.username = options.username.as_deref();
    c.password = options.password.as_deref().map(str::as_bytes);
    c
}
