//! The application's side: a cheap `Clone` handle that sends commands to the driver task,
//! and the streams the driver fills (subscriptions, events).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use mqtt_sansio::session::Notice;
use mqtt_sansio::{PacketId, QoS, ReasonCode, SubscriptionOptions};
use tokio::sync::{mpsc, oneshot, watch};

use crate::driver::Driver;
use crate::{DisconnectOptions, Error, Message, Options};

/// Commands waiting for the driver. Small: back-pressure for callers that outrun it.
pub(crate) const COMMAND_QUEUE: usize = 64;

/// A request from a handle to the driver.
pub(crate) enum Command {
    /// Boxed: the other commands are small, and the command channel allocates its slots
    /// (32 at a time) for the largest.
    Publish(Box<PublishCommand>),
    Subscribe {
        filters: Vec<(String, SubscriptionOptions)>,
        properties: RequestProperties,
        reply: oneshot::Sender<Result<Subscription, Error>>,
    },
    Unsubscribe {
        filters: Vec<String>,
        properties: RequestProperties,
        reply: oneshot::Sender<Result<Vec<ReasonCode>, Error>>,
    },
    Ack {
        packet_id: PacketId,
        reply: oneshot::Sender<Result<(), Error>>,
    },
    Auth {
        reason_code: ReasonCode,
        data: Bytes,
        reply: oneshot::Sender<Result<(), Error>>,
    },
    Disconnect {
        options: DisconnectOptions,
        reply: oneshot::Sender<Result<(), Error>>,
    },
}

/// A publish: `queued` answers once the session holds it, `done` once it is delivered.
pub(crate) struct PublishCommand {
    pub(crate) message: Message,
    pub(crate) queued: oneshot::Sender<Result<(), Error>>,
    pub(crate) done: oneshot::Sender<Result<ReasonCode, Error>>,
}

/// Where the driver stands, for handles.
#[derive(Debug, Clone)]
pub(crate) enum Status {
    Connecting,
    Connected,
    /// The driver has stopped for good, for this reason.
    Stopped(Error),
}

/// A handle to an MQTT client. Cloning is cheap; every clone talks to the same driver task,
/// which owns the connection and the session. When the last handle is dropped the driver
/// sends DISCONNECT (if connected) and stops; subscriptions and events then end. That needs
/// the runtime to keep running: before returning from `main`, await
/// [`Client::disconnect`] instead.
#[derive(Debug, Clone)]
pub struct Client {
    commands: mpsc::Sender<Command>,
    status: watch::Receiver<Status>,
}

impl Client {
    /// Starts the driver task, which connects in the background and keeps reconnecting as
    /// the policy says. Returns at once; [`Event::Connected`] tells when the connection is up,
    /// and publishes and subscriptions made before that are queued.
    ///
    /// # Errors
    /// [`Error::InvalidOptions`] when TLS material cannot be loaded or the options cannot
    /// form a CONNECT.
    ///
    /// # Panics
    /// Outside a tokio runtime.
    pub fn new(options: Options) -> Result<(Self, Events), Error> {
        Self::start(options, false)
    }

    /// Starts the driver and waits for the first connection. Each broker is tried once, in
    /// order (following 5.0 redirections); if none accepts, the driver stops and the last
    /// error is returned. Once connected, lost connections are re-established as the policy
    /// says.
    ///
    /// # Errors
    /// As [`Client::new`]; then [`Error::Io`], [`Error::ConnectTimeout`],
    /// [`Error::ConnectionRefused`] and the like from the last broker tried.
    ///
    /// # Cancel safety
    /// Cancelling drops the handle, which stops the driver: nothing is left running.
    pub async fn connect(options: Options) -> Result<(Self, Events), Error> {
        let (client, events) = Self::start(options, true)?;
        let mut status = client.status.clone();
        let outcome = status
            .wait_for(|s| !matches!(s, Status::Connecting))
            .await
            .map(|s| s.clone());
        match outcome {
            Ok(Status::Connected) => Ok((client, events)),
            Ok(Status::Stopped(e)) => Err(e),
            Ok(Status::Connecting) | Err(_) => Err(Error::Closed),
        }
    }

    fn start(options: Options, wait_first: bool) -> Result<(Self, Events), Error> {
        let (commands, command_rx) = mpsc::channel(COMMAND_QUEUE);
        let (status_tx, status) = watch::channel(Status::Connecting);
        let (event_tx, event_rx) = mpsc::channel(options.policy.event_buffer.max(1));
        let driver = Driver::new(options, command_rx, status_tx, event_tx, wait_first)?;
        tokio::spawn(driver.run());
        let client = Self { commands, status };
        Ok((client, Events { rx: event_rx }))
    }

    /// Whether the client is connected to a broker right now.
    pub fn is_connected(&self) -> bool {
        matches!(*self.status.borrow(), Status::Connected)
    }

    /// Publishes and waits until the broker has it: PUBACK for QoS 1, PUBCOMP for QoS 2,
    /// written to the connection for QoS 0. Returns the broker's reason code (5.0; Success on
    /// 3.1.1 and for QoS 0), e.g. [`ReasonCode::NoMatchingSubscribers`].
    ///
    /// # Errors
    /// [`Error::InvalidTopic`], [`Error::QueueFull`] (or waits, per
    /// [`Policy::queue_full`](crate::Policy::queue_full)), [`Error::Rejected`] with the
    /// broker's failure code, [`Error::Dropped`], [`Error::Abandoned`], [`Error::NotSent`],
    /// [`Error::Command`], and the stop reason once the client has stopped.
    ///
    /// # Cancel safety
    /// Not cancel safe: once the message is queued, cancelling does not withdraw it; it is
    /// still delivered, but its outcome is no longer reported.
    pub async fn publish(
        &self,
        topic: impl Into<String>,
        qos: QoS,
        retain: bool,
        payload: impl Into<Bytes>,
    ) -> Result<ReasonCode, Error> {
        let message = Message::new(topic, payload, qos).retain(retain);
        self.publish_message(message).await
    }

    /// [`Client::publish`] for a message with properties.
    ///
    /// # Errors
    /// As [`Client::publish`].
    ///
    /// # Cancel safety
    /// As [`Client::publish`].
    pub async fn publish_message(&self, message: Message) -> Result<ReasonCode, Error> {
        self.publish_queued(message).await?.await
    }

    /// Queues a message and returns as soon as the session holds it (while disconnected too:
    /// it is sent once connected). The returned [`Delivery`] resolves like
    /// [`Client::publish`]; drop it to fire and forget.
    ///
    /// # Errors
    /// [`Error::InvalidTopic`], [`Error::QueueFull`] (unless the policy waits),
    /// [`Error::Command`], and the stop reason once the client has stopped.
    ///
    /// # Cancel safety
    /// Cancelling while the command channel is full queues nothing; cancelling later may
    /// leave the message queued (it is then delivered, unreported).
    pub async fn publish_queued(&self, message: Message) -> Result<Delivery, Error> {
        let (queued, queued_rx) = oneshot::channel();
        let (done, done_rx) = oneshot::channel();
        let command = PublishCommand {
            message,
            queued,
            done,
        };
        self.send(Command::Publish(Box::new(command))).await?;
        queued_rx.await.map_err(|_| self.stop_reason())??;
        Ok(Delivery {
            rx: done_rx,
            status: self.status.clone(),
        })
    }

    /// Subscribes to one filter and returns the stream of matching messages. Wildcards and
    /// `$share/{group}/{filter}` are allowed.
    ///
    /// # Errors
    /// [`Error::InvalidTopic`], [`Error::Rejected`] when the broker refused it,
    /// [`Error::QueueFull`], and the stop reason once the client has stopped.
    ///
    /// # Cancel safety
    /// Not cancel safe: the SUBSCRIBE may be sent anyway; messages for it then go to
    /// [`Event::Message`] only.
    pub async fn subscribe(
        &self,
        filter: impl Into<String>,
        qos: QoS,
    ) -> Result<Subscription, Error> {
        let subscription = self
            .subscribe_many([(filter.into(), SubscriptionOptions::new(qos))])
            .await?;
        match subscription.reason_codes.first() {
            Some(code) if code.is_error() => Err(Error::Rejected(*code)),
            _ => Ok(subscription),
        }
    }

    /// Subscribes to several filters in one SUBSCRIBE, with full options (no local, retain
    /// as published, retain handling on 5.0). The returned [`Subscription`] carries one reason
    /// code per filter (granted QoS or failure) and receives the messages of all of them.
    ///
    /// # Errors
    /// As [`Client::subscribe`], except that refused filters are reported in
    /// [`Subscription::reason_codes`] instead.
    ///
    /// # Cancel safety
    /// As [`Client::subscribe`].
    pub async fn subscribe_many<S: Into<String>>(
        &self,
        filters: impl IntoIterator<Item = (S, SubscriptionOptions)>,
    ) -> Result<Subscription, Error> {
        self.subscribe_with(filters, RequestProperties::default())
            .await
    }

    /// [`Client::subscribe_many`] with 5.0 properties (user properties). The subscription is
    /// renewed with the same properties if the broker loses the session.
    ///
    /// # Errors
    /// As [`Client::subscribe_many`]; [`Error::Command`] with `Encode` for properties on
    /// 3.1.1, which has none.
    ///
    /// # Cancel safety
    /// As [`Client::subscribe`].
    pub async fn subscribe_with<S: Into<String>>(
        &self,
        filters: impl IntoIterator<Item = (S, SubscriptionOptions)>,
        properties: RequestProperties,
    ) -> Result<Subscription, Error> {
        let filters = filters.into_iter().map(|(f, o)| (f.into(), o)).collect();
        let (reply, rx) = oneshot::channel();
        self.send(Command::Subscribe {
            filters,
            properties,
            reply,
        })
        .await?;
        rx.await.map_err(|_| self.stop_reason())?
    }

    /// Unsubscribes from a filter. Streams of subscriptions left without filters end.
    ///
    /// # Errors
    /// [`Error::InvalidTopic`], [`Error::Rejected`] (5.0 failure code),
    /// [`Error::QueueFull`], and the stop reason once the client has stopped.
    ///
    /// # Cancel safety
    /// Not cancel safe: the UNSUBSCRIBE may be sent anyway.
    pub async fn unsubscribe(&self, filter: impl Into<String>) -> Result<ReasonCode, Error> {
        let codes = self.unsubscribe_many([filter]).await?;
        match codes.first().copied().unwrap_or(ReasonCode::Success) {
            code if code.is_error() => Err(Error::Rejected(code)),
            code => Ok(code),
        }
    }

    /// Unsubscribes from several filters in one UNSUBSCRIBE; one reason code per filter
    /// (Success for each on 3.1.1, which has none).
    ///
    /// # Errors
    /// As [`Client::unsubscribe`], except that refusals are returned as codes.
    ///
    /// # Cancel safety
    /// As [`Client::unsubscribe`].
    pub async fn unsubscribe_many<S: Into<String>>(
        &self,
        filters: impl IntoIterator<Item = S>,
    ) -> Result<Vec<ReasonCode>, Error> {
        self.unsubscribe_with(filters, RequestProperties::default())
            .await
    }

    /// [`Client::unsubscribe_many`] with 5.0 properties (user properties).
    ///
    /// # Errors
    /// As [`Client::unsubscribe_many`]; [`Error::Command`] with `Encode` for properties on
    /// 3.1.1.
    ///
    /// # Cancel safety
    /// As [`Client::unsubscribe`].
    pub async fn unsubscribe_with<S: Into<String>>(
        &self,
        filters: impl IntoIterator<Item = S>,
        properties: RequestProperties,
    ) -> Result<Vec<ReasonCode>, Error> {
        let filters = filters.into_iter().map(Into::into).collect();
        let (reply, rx) = oneshot::channel();
        self.send(Command::Unsubscribe {
            filters,
            properties,
            reply,
        })
        .await?;
        rx.await.map_err(|_| self.stop_reason())?
    }

    /// Acknowledges a received message in manual-ack mode
    /// ([`ProtocolOptions::manual_acks`](crate::ProtocolOptions::manual_acks)): PUBACK for
    /// QoS 1, PUBREC for QoS 2. QoS 0 messages need none (returns at once).
    ///
    /// Acknowledge in the order messages arrived (MQTT-4.6.0-2). An acknowledgement given
    /// while disconnected is sent on the next connection if the broker resumes the session.
    ///
    /// # Errors
    /// [`Error::Command`] when the session refuses it (e.g. `UnknownPacketId` for a QoS 2
    /// message already acknowledged); the stop reason once the client has stopped.
    ///
    /// # Cancel safety
    /// Not cancel safe: the acknowledgement may be sent anyway.
    pub async fn ack(&self, message: &Message) -> Result<(), Error> {
        let Some(packet_id) = message.packet_id else {
            return Ok(());
        };
        let (reply, rx) = oneshot::channel();
        self.send(Command::Ack { packet_id, reply }).await?;
        rx.await.map_err(|_| self.stop_reason())?
    }

    /// Answers a 5.0 enhanced-authentication challenge ([`Event::Auth`] with Continue
    /// Authentication) with `data`, under the method of
    /// [`ProtocolOptions::authentication_method`](crate::ProtocolOptions).
    ///
    /// # Errors
    /// [`Error::Command`] when the session refuses it (no method configured, 3.1.1, another
    /// AUTH still waiting); the stop reason once the client has stopped.
    pub async fn auth(&self, data: impl Into<Bytes>) -> Result<(), Error> {
        self.auth_step(ReasonCode::ContinueAuthentication, data.into())
            .await
    }

    /// Starts a 5.0 re-authentication on the live connection with `data` (the broker answers
    /// with [`Event::Auth`] steps, then Success).
    ///
    /// # Errors
    /// As [`Client::auth`].
    pub async fn reauthenticate(&self, data: impl Into<Bytes>) -> Result<(), Error> {
        self.auth_step(ReasonCode::ReAuthenticate, data.into())
            .await
    }

    async fn auth_step(&self, reason_code: ReasonCode, data: Bytes) -> Result<(), Error> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::Auth {
            reason_code,
            data,
            reply,
        })
        .await?;
        rx.await.map_err(|_| self.stop_reason())?
    }

    /// Disconnects gracefully (DISCONNECT with reason Normal, so the broker discards the will)
    /// and stops the driver for every handle. It drains first: messages queued before are
    /// sent, and the DISCONNECT waits until what was sent is acknowledged and the broker's
    /// QoS 2 handshakes are complete, for at most
    /// [`Policy::drain_timeout`](crate::Policy::drain_timeout); publishes still
    /// unacknowledged then fail with [`Error::Closed`].
    ///
    /// # Errors
    /// None in practice; a client that has already stopped returns `Ok`.
    ///
    /// # Cancel safety
    /// Cancel safe in effect: once sent, the request completes without the caller.
    pub async fn disconnect(&self) -> Result<(), Error> {
        self.disconnect_with(DisconnectOptions::default()).await
    }

    /// [`Client::disconnect`] with options: publish the will anyway, a new session expiry,
    /// a reason string.
    ///
    /// # Errors
    /// As [`Client::disconnect`].
    ///
    /// # Cancel safety
    /// As [`Client::disconnect`].
    pub async fn disconnect_with(&self, options: DisconnectOptions) -> Result<(), Error> {
        let (reply, rx) = oneshot::channel();
        if self
            .commands
            .send(Command::Disconnect { options, reply })
            .await
            .is_err()
        {
            return Ok(());
        }
        rx.await.unwrap_or(Ok(()))
    }

    async fn send(&self, command: Command) -> Result<(), Error> {
        self.commands
            .send(command)
            .await
            .map_err(|_| self.stop_reason())
    }

    fn stop_reason(&self) -> Error {
        stop_reason(&self.status)
    }
}

fn stop_reason(status: &watch::Receiver<Status>) -> Error {
    match &*status.borrow() {
        Status::Stopped(e) => e.clone(),
        _ => Error::Closed,
    }
}

/// The outcome of a queued publish: resolves like [`Client::publish`]. Dropping it does not
/// cancel the publish.
#[derive(Debug)]
#[must_use = "a Delivery does nothing unless awaited; drop it to fire and forget"]
pub struct Delivery {
    rx: oneshot::Receiver<Result<ReasonCode, Error>>,
    status: watch::Receiver<Status>,
}

impl Future for Delivery {
    type Output = Result<ReasonCode, Error>;

    /// Cancel safe: dropping the future only stops waiting.
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match Pin::new(&mut self.rx).poll(cx) {
            Poll::Ready(Ok(result)) => Poll::Ready(result),
            Poll::Ready(Err(_)) => Poll::Ready(Err(stop_reason(&self.status))),
            Poll::Pending => Poll::Pending,
        }
    }
}

/// The messages of one subscription, in the order they arrived.
///
/// When a subscription's buffer ([`Policy::subscription_buffer`](crate::Policy)) is full, the
/// client keeps reading (so SUBACK, PINGRESP and PUBREL still get through) and holds the
/// messages for it: QoS 1 and 2 messages are acknowledged only once the stream took them, so
/// the broker's window slows it down and nothing is lost; QoS 0 messages beyond 4,096 held
/// are dropped and reported ([`Event::SlowConsumer`]). Dropping the stream stops
/// the routing but does not unsubscribe. The stream ends when the filters are unsubscribed or
/// the client stops.
#[derive(Debug)]
pub struct Subscription {
    pub(crate) rx: mpsc::Receiver<Message>,
    pub(crate) reason_codes: Vec<ReasonCode>,
    pub(crate) filters: Vec<String>,
}

impl Subscription {
    /// One reason code per filter: the granted QoS (`Success` is QoS 0,
    /// [`ReasonCode::GrantedQoS1`], [`ReasonCode::GrantedQoS2`]) or a failure.
    pub fn reason_codes(&self) -> &[ReasonCode] {
        &self.reason_codes
    }

    /// The filters, as subscribed.
    pub fn filters(&self) -> &[String] {
        &self.filters
    }

    /// The next message; `None` once the subscription has ended.
    ///
    /// # Cancel safety
    /// Cancel safe: a message is never lost by cancelling.
    pub async fn recv(&mut self) -> Option<Message> {
        self.rx.recv().await
    }
}

impl futures_core::Stream for Subscription {
    type Item = Message;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Message>> {
        self.rx.poll_recv(cx)
    }
}

/// Something that happened to the client (as esp-mqtt reports it).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Event {
    /// The broker accepted the connection.
    Connected {
        /// Whether the broker resumed the session. When it did not, the client subscribed
        /// again to the filters of its open subscriptions, and resent (QoS 1) or failed
        /// (QoS 2) messages the broker had not acknowledged.
        session_present: bool,
        /// The broker, without credentials.
        broker: String,
        /// What the broker said in CONNACK (5.0): assigned client identifier, limits,
        /// response information, reason string, user properties.
        connack: Box<ConnAckInfo>,
    },
    /// An established connection ended.
    Disconnected {
        /// Why ([`Error::Closed`] after [`Client::disconnect`]).
        error: Error,
    },
    /// The client waits `delay` before connection attempt `attempt` (1-based, counted since
    /// the last successful connection).
    Reconnecting {
        /// Attempt number.
        attempt: u32,
        /// Delay before it.
        delay: Duration,
    },
    /// A SUBSCRIBE was answered.
    Subscribed {
        /// Its packet identifier.
        packet_id: PacketId,
        /// One per filter.
        reason_codes: Vec<ReasonCode>,
    },
    /// An UNSUBSCRIBE was answered.
    Unsubscribed {
        /// Its packet identifier.
        packet_id: PacketId,
        /// One per filter (empty on 3.1.1).
        reason_codes: Vec<ReasonCode>,
    },
    /// A QoS 1 or 2 message was acknowledged (PUBACK, PUBCOMP, or a failure PUBREC).
    Published {
        /// Its packet identifier.
        packet_id: PacketId,
        /// The broker's reason code.
        reason_code: ReasonCode,
        /// The broker's reason string (5.0), if any.
        reason_string: Option<String>,
        /// The acknowledgement's user properties (5.0).
        user_properties: Vec<(String, String)>,
    },
    /// A 5.0 enhanced-authentication step from the broker: answer a Continue Authentication
    /// with [`Client::auth`]; Success ends a re-authentication.
    Auth {
        /// Continue Authentication, or Success.
        reason_code: ReasonCode,
        /// The broker's authentication data (the challenge).
        data: Option<Bytes>,
    },
    /// Something the session coped with on its own, worth a log line: a message the broker
    /// refused for now and that goes again, a broker exceeding our Receive Maximum, a
    /// message over the maximum packet size that was skipped. Nothing was lost.
    Notice(Notice),
    /// Subscription streams were full and QoS 0 messages were dropped (QoS 1 and 2 messages
    /// wait, unacknowledged, which holds the broker back instead).
    SlowConsumer {
        /// QoS 0 messages dropped since the last report.
        dropped_qos0: u64,
    },
    /// A message arrived (also delivered to the streams of the subscriptions it matches).
    Message(Message),
    /// Something failed: a connection attempt, a message that could not be delivered, a
    /// re-subscription the broker refused.
    Error(Error),
    /// The event buffer was full and `missed` events were dropped before this one. Messages
    /// are never lost this way from subscription streams.
    Lagged {
        /// How many.
        missed: u64,
    },
}

/// Properties of a SUBSCRIBE or UNSUBSCRIBE (5.0; 3.1.1 has none). The client sets the
/// subscription identifier itself, to route messages to their streams.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RequestProperties {
    /// User properties, in order.
    pub user_properties: Vec<(String, String)>,
}

impl RequestProperties {
    /// No properties.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a user property.
    #[must_use]
    pub fn user_property(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.user_properties.push((name.into(), value.into()));
        self
    }
}

/// What a broker said in CONNACK (5.0; empty on 3.1.1), owned.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConnAckInfo {
    /// The client identifier the broker assigned, when we sent none. The client reuses it
    /// on reconnects.
    pub assigned_client_identifier: Option<String>,
    /// Keep alive the broker imposes, in seconds.
    pub server_keep_alive: Option<u16>,
    /// Session expiry the broker grants, in seconds.
    pub session_expiry_interval: Option<u32>,
    /// Receive Maximum of the broker.
    pub receive_maximum: Option<u16>,
    /// Largest packet the broker accepts.
    pub maximum_packet_size: Option<u32>,
    /// Highest QoS the broker supports.
    pub maximum_qos: Option<QoS>,
    /// Whether retained messages are supported.
    pub retain_available: Option<bool>,
    /// Whether wildcard subscriptions are supported.
    pub wildcard_subscription_available: Option<bool>,
    /// Whether subscription identifiers are supported.
    pub subscription_identifier_available: Option<bool>,
    /// Whether shared subscriptions are supported.
    pub shared_subscription_available: Option<bool>,
    /// Topic Alias Maximum of the broker.
    pub topic_alias_maximum: Option<u16>,
    /// Response Information (for request/response topics), if requested and given.
    pub response_information: Option<String>,
    /// Another server to use.
    pub server_reference: Option<String>,
    /// A human-readable reason.
    pub reason_string: Option<String>,
    /// User properties.
    pub user_properties: Vec<(String, String)>,
}

impl ConnAckInfo {
    pub(crate) fn new(p: &mqtt_sansio::ConnAckProperties<'_>) -> Self {
        Self {
            assigned_client_identifier: p.assigned_client_identifier.map(str::to_string),
            server_keep_alive: p.server_keep_alive,
            session_expiry_interval: p.session_expiry_interval,
            receive_maximum: p.receive_maximum.map(|v| v.get()),
            maximum_packet_size: p.maximum_packet_size.map(|v| v.get()),
            maximum_qos: p.maximum_qos,
            retain_available: p.retain_available,
            wildcard_subscription_available: p.wildcard_subscription_available,
            subscription_identifier_available: p.subscription_identifier_available,
            shared_subscription_available: p.shared_subscription_available,
            topic_alias_maximum: p.topic_alias_maximum,
            response_information: p.response_information.map(str::to_string),
            server_reference: p.server_reference.map(str::to_string),
            reason_string: p.reason_string.map(str::to_string),
            user_properties: p
                .user_properties
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }
}

/// The client's events. Buffered up to [`Policy::event_buffer`](crate::Policy); when the
/// buffer is full, events are counted and reported as [`Event::Lagged`] instead of slowing
/// the connection down. Drop it if you do not need it. Ends when the client stops.
#[derive(Debug)]
pub struct Events {
    rx: mpsc::Receiver<Event>,
}

impl Events {
    /// The next event; `None` once the client has stopped.
    ///
    /// # Cancel safety
    /// Cancel safe.
    pub async fn recv(&mut self) -> Option<Event> {
        self.rx.recv().await
    }
}

impl futures_core::Stream for Events {
    type Item = Event;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Event>> {
        self.rx.poll_recv(cx)
    }
}
