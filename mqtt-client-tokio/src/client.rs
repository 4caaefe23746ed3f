//! The application's side: a cheap `Clone` handle whose commands run against the state it
//! shares with the driver task (quinn's shape): each returns its packet identifier or its
//! error at once, and only the broker's answer is awaited.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use mqtt_sansio::{PacketId, QoS, ReasonCode, SubscriptionOptions};
use tokio::sync::oneshot;

use crate::state::{Done, Queued, Shared, State, Status, Stored};
use crate::{DisconnectOptions, Error, Events, Message, Options, RequestProperties, Subscription};

/// A handle to an MQTT client. Cloning is cheap; every clone shares the session with the same
/// driver task, which owns the connection. A command reaches the session at once, from the
/// calling task. When the last handle is dropped the driver sends DISCONNECT (if connected)
/// and stops; subscriptions and events then end. That needs the runtime to keep running:
/// before returning from `main`, await [`Client::disconnect`] instead.
#[derive(Debug, Clone)]
pub struct Client {
    inner: Arc<Handle>,
}

/// What the clones of one [`Client`] share; dropping it (the last clone) stops the driver.
struct Handle {
    shared: Arc<Shared>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.shared.lock().handles_gone();
        self.shared.wake.notify_one();
    }
}

impl std::fmt::Debug for Handle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handle")
            .field("status", &self.shared.lock().status)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// Starts the driver task, which connects in the background and keeps reconnecting as
    /// the policy says. Returns at once; [`Event::Connected`](crate::Event::Connected) tells when the connection is up,
    /// and publishes and subscriptions made before that are queued.
    ///
    /// # Errors
    /// [`Error::InvalidOptions`] when TLS material cannot be loaded or the options cannot
    /// form a CONNECT.
    ///
    /// # Panics
    /// Outside a tokio runtime.
    pub fn new(options: Options) -> Result<(Self, Events), Error> {
        Self::start(options, false).map(|(client, events, _)| (client, events))
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
        let (client, events, first) = Self::start(options, true)?;
        match first {
            Some(first) => match first.await {
                Ok(Ok(())) => Ok((client, events)),
                Ok(Err(e)) => Err(e),
                Err(_) => Err(Error::Closed),
            },
            None => Err(Error::Closed),
        }
    }

    fn start(
        options: Options,
        wait_first: bool,
    ) -> Result<(Self, Events, Option<crate::driver::FirstOutcome>), Error> {
        let started = crate::driver::start(options, wait_first)?;
        let events = Events {
            shared: Arc::clone(&started.shared),
        };
        let inner = Arc::new(Handle {
            shared: started.shared,
        });
        Ok((Self { inner }, events, started.first_outcome))
    }

    /// Runs a command against the shared state, then wakes the driver to act on it.
    fn command<T>(&self, command: impl FnOnce(&mut State) -> T) -> T {
        let out = command(&mut self.inner.shared.lock());
        self.inner.shared.wake.notify_one();
        out
    }

    /// Whether the client is connected to a broker right now.
    pub fn is_connected(&self) -> bool {
        matches!(self.inner.shared.lock().status, Status::Connected)
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
    /// The message is queued before the first await, unless the store is full and the policy
    /// waits for room: cancelling then queues nothing.
    pub async fn publish_queued(&self, message: Message) -> Result<Delivery, Error> {
        let (queued, stored, rx) = self.command(|state| state.publish(message))?;
        let packet_id = match queued {
            Queued::Now(packet_id) => packet_id,
            Queued::Later(id) => id.await.map_err(|_| self.stop_reason())??,
        };
        Ok(Delivery {
            packet_id,
            stored: Some(stored),
            rx,
            shared: Arc::clone(&self.inner.shared),
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
    /// [`Event::Message`](crate::Event::Message) only.
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

    /// [`Client::subscribe_many`] with 5.0 properties (user properties). If the broker loses
    /// the session, the session renews the filters with their options and subscription
    /// identifier, without the user properties.
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
        let rx = self.command(|state| state.subscribe(filters, properties))?;
        self.answer(rx).await
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
        let rx = self.command(|state| state.unsubscribe(filters, &properties))?;
        self.answer(rx).await
    }

    /// Acknowledges a received message in manual-ack mode
    /// ([`ProtocolOptions::manual_acks`](crate::ProtocolOptions::manual_acks)): PUBACK for
    /// QoS 1, PUBREC for QoS 2. QoS 0 messages need none (returns at once).
    ///
    /// Acknowledge in the order messages arrived (MQTT-4.6.0-2). An acknowledgement given
    /// while disconnected is sent on the next connection if the broker resumes the session.
    ///
    /// With [`Options::persistence`](crate::Options::persistence), returns once the
    /// acknowledgement is as durable as the [`SyncPolicy`](crate::SyncPolicy) promises: a
    /// client created on the same directory after a crash then neither delivers the message
    /// again nor, for QoS 2, accepts it again from the broker. A crash between handling the
    /// message and this return delivers it once more; keep that window to the handling itself.
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
        let stored = self.command(|state| state.ack(packet_id))?;
        stored.await.map_err(|_| self.stop_reason())
    }

    /// Answers a 5.0 enhanced-authentication challenge ([`Event::Auth`](crate::Event::Auth) with Continue
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
    /// with [`Event::Auth`](crate::Event::Auth) steps, then Success).
    ///
    /// # Errors
    /// As [`Client::auth`].
    pub async fn reauthenticate(&self, data: impl Into<Bytes>) -> Result<(), Error> {
        self.auth_step(ReasonCode::ReAuthenticate, data.into())
            .await
    }

    async fn auth_step(&self, reason_code: ReasonCode, data: Bytes) -> Result<(), Error> {
        self.command(|state| state.auth(reason_code, &data))
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
        match self.command(|state| state.disconnect(options)) {
            Some(rx) => rx.await.unwrap_or(Ok(())),
            None => Ok(()),
        }
    }

    /// The broker's answer to a request, or why the client stopped before it came.
    async fn answer<T>(&self, rx: oneshot::Receiver<Result<T, Error>>) -> Result<T, Error> {
        rx.await.map_err(|_| self.stop_reason())?
    }

    fn stop_reason(&self) -> Error {
        self.inner.shared.lock().stop_reason()
    }
}

/// The outcome of a queued publish: resolves like [`Client::publish`]. Dropping it does not
/// cancel the publish.
#[derive(Debug)]
#[must_use = "a Delivery does nothing unless awaited; drop it to fire and forget"]
pub struct Delivery {
    packet_id: Option<PacketId>,
    stored: Option<Stored>,
    rx: Done,
    /// For the stop reason, should the client stop first.
    shared: Arc<Shared>,
}

impl Delivery {
    /// The packet identifier the session gave the message (`None` for QoS 0). If the broker
    /// loses the session before acknowledging a QoS 1 message, it is published again under
    /// a new identifier, which [`Event::Published`](crate::Event::Published) then reports.
    pub fn packet_id(&self) -> Option<PacketId> {
        self.packet_id
    }

    /// Resolves once the message is stored: with
    /// [`Options::persistence`](crate::Options::persistence), once the record holding it is
    /// as durable as the [`SyncPolicy`](crate::SyncPolicy) promises, so that a client
    /// created on the same directory after a crash still delivers it; without, at once (the
    /// session holds it in memory). QoS 0 messages are never kept, and resolve at once.
    ///
    /// # Errors
    /// The stop reason when the client stopped before the message was stored (for
    /// [`Error::Persistence`], a write failed).
    ///
    /// # Cancel safety
    /// Cancel safe; awaiting again after a cancel waits on.
    pub async fn stored(&mut self) -> Result<(), Error> {
        let Some(stored) = &mut self.stored else {
            return Ok(());
        };
        let result = stored.await;
        self.stored = None;
        result.map_err(|_| self.shared.lock().stop_reason())
    }
}

impl Future for Delivery {
    type Output = Result<ReasonCode, Error>;

    /// Cancel safe: dropping the future only stops waiting.
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match Pin::new(&mut self.rx).poll(cx) {
            Poll::Ready(Ok(result)) => Poll::Ready(result),
            Poll::Ready(Err(_)) => Poll::Ready(Err(self.shared.lock().stop_reason())),
            Poll::Pending => Poll::Pending,
        }
    }
}
