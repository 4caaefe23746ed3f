//! The client: caller-owned buffers, one session, one transport at a time, and the commands.

use embedded_io_async::{Read, Write};
use mqtt_sansio::auth::Authenticator;
use mqtt_sansio::session::{ConnectionState, Instant, Message, Reconnect, Session, SessionConfig};
use mqtt_sansio::{
    Auth, Disconnect, PacketId, QoS, SubscribeProperties, Subscription, TopicFilter, TopicName,
    UnsubscribeProperties,
};

use crate::event::Event;
use crate::journal::{Journal, NoJournal};
use crate::options::{DerivedId, Options};
use crate::payload::PayloadSource;
use crate::reconnect::Reference;
use crate::Error;

/// How the current connection ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ending {
    /// Drop the transport now; unwritten bytes are discarded.
    Now,
    /// Write and flush what the transmit buffer holds (our DISCONNECT), then drop it.
    AfterWrite,
}

/// Connection bookkeeping that lives beside the session (and can be changed while an event
/// borrows the session).
#[derive(Debug, Default)]
pub(crate) struct Link {
    /// The transport in `Client::transport` is the current connection.
    pub(crate) live: bool,
    pub(crate) ending: Option<Ending>,
    /// Events to report, in this order, before anything else.
    pub(crate) before_connect: bool,
    pub(crate) disconnected: bool,
    /// Something was processed without an event to report: look again before waiting.
    pub(crate) progress: bool,
}

impl Link {
    /// Ends the live connection; `Now` overrides `AfterWrite`.
    // One copy for its six callers.
    #[inline(never)]
    pub(crate) fn end(&mut self, how: Ending) {
        if self.live && self.ending != Some(Ending::Now) {
            self.ending = Some(how);
        }
    }

    pub(crate) fn take_notice(&mut self) -> Option<Event<'static>> {
        if core::mem::take(&mut self.before_connect) {
            return Some(Event::BeforeConnect);
        }
        if core::mem::take(&mut self.disconnected) {
            return Some(Event::Disconnected);
        }
        None
    }
}

/// An MQTT client over a transport `S` (any [`embedded_io_async`] `Read + Write`, e.g.
/// `embassy_net::tcp::TcpSocket`, or a TLS stream over one), with every byte of memory
/// provided by the caller.
///
/// The client is a thin driver of [`mqtt_sansio::session::Session`], which does all the
/// protocol work: QoS flows, packet identifiers, keep alive, resending after a reconnect,
/// flow control and topic aliases. Commands ([`Client::publish`], [`Client::subscribe`], ...)
/// only queue into the session; [`Client::poll`] writes, reads, keeps time and returns the
/// next [`Event`].
///
/// The transport is handed in per connection with [`Client::connect`]; the session (queued
/// and unacknowledged messages, subscriptions in flight) outlives it. With a [`Journal`]
/// (`J`, see [`Client::with_journal`]) it also outlives a reset of the device.
pub struct Client<'b, S, J = NoJournal> {
    pub(crate) session: Session<&'b mut [u8]>,
    pub(crate) options: Options<'b>,
    pub(crate) derived_id: DerivedId,
    /// Received bytes: `rx[rx_start..rx_end]` is unprocessed input.
    pub(crate) rx: &'b mut [u8],
    pub(crate) rx_start: usize,
    pub(crate) rx_end: usize,
    /// Bytes at `rx_start` that the last returned event borrows; dropped by the next `poll`.
    pub(crate) rx_lent: usize,
    /// `rx[rx_start..rx_end]` may hold a whole packet (cleared when the session says it is
    /// incomplete, set when bytes arrive).
    pub(crate) rx_ready: bool,
    /// Bytes still to arrive of a packet the session skipped (too large for `rx`): dropped
    /// as they are read.
    pub(crate) rx_skip: usize,
    /// Length of the header of a PUBLISH being streamed (larger than `rx`), kept at
    /// `rx[rx_start..]` while its payload passes behind it; 0 when none is.
    pub(crate) rx_header: usize,
    /// Payload bytes of the streamed PUBLISH not handed over yet.
    pub(crate) rx_stream_left: usize,
    /// The chunk the last returned event borrows (its length, and whether it ended the
    /// message): dropped from behind the header by the next `poll`.
    pub(crate) rx_chunk: Option<(usize, bool)>,
    /// Bytes to write: `tx[tx_start..tx_end]`.
    pub(crate) tx: &'b mut [u8],
    pub(crate) tx_start: usize,
    pub(crate) tx_end: usize,
    /// Bytes were written since the last flush.
    pub(crate) unflushed: bool,
    pub(crate) transport: Option<S>,
    pub(crate) link: Link,
    /// The clock as `poll` last read it, for what happens between polls.
    pub(crate) last_now: Instant,
    /// What the session said to do after the last connection ended.
    pub(crate) next_connect: Option<Reconnect>,
    /// `Error::Stopped` was reported for `next_connect`.
    pub(crate) stop_reported: bool,
    /// The broker's last Server Reference.
    pub(crate) reference: Reference,
    /// Runs 5.0 enhanced authentication on every connection.
    pub(crate) authenticator: Option<&'b mut (dyn Authenticator + Send)>,
    /// Supplies the payloads of streamed messages.
    pub(crate) payload_source: Option<&'b mut (dyn PayloadSource + Send)>,
    /// Where the session's journal goes before anything is transmitted.
    pub(crate) journal: J,
}

/// Bytes a journal record adds to the PUBLISH it holds: length (up to 4), tag, flags and
/// packet identifier (3), CRC (4).
const RECORD_OVERHEAD: usize = 12;

impl<'b, S: Read + Write> Client<'b, S> {
    /// Creates a client that is not connected yet.
    ///
    /// - `rx` receives packets from the broker; it must hold the largest packet you expect
    ///   (topic + payload + a few bytes of header, plus properties on 5.0). Larger packets
    ///   are refused: on 5.0 the broker is told the limit (Maximum Packet Size) and does not
    ///   send them; a larger PUBLISH is skipped ([`Notice::MessageSkipped`](mqtt_sansio::session::Notice));
    ///   any other larger packet ends the connection with [`Error::Protocol`]. Raise
    ///   [`Options::maximum_packet_size`] above `rx` to receive larger messages in chunks
    ///   ([`Event::MessageChunk`]); `rx` must then hold a PUBLISH's header (5 bytes, the
    ///   topic, 2 for the packet id, 5.0 properties) plus one payload byte.
    /// - `tx` holds packets on their way out; it must hold the largest packet you send
    ///   (checked by every command) and the CONNECT (checked here).
    /// - `store` is the session's: queued and unacknowledged outgoing messages and
    ///   subscriptions, incoming QoS 2 ids, topic alias tables and the CONNECT. See the
    ///   crate docs for sizing.
    ///
    /// # Errors
    /// [`Error::TxBufferTooSmall`] when the CONNECT does not fit `tx`;
    /// [`Error::Command`] with `StoreFull` when `store` is too small for the configuration;
    /// [`Error::Command`] with `Encode` when the options cannot be encoded (e.g. a password
    /// without user name on 3.1.1, a client id longer than 65,535 bytes, or 5.0 in a build
    /// without the `v5` feature: `FeatureDisabled("v5")`).
    pub fn new(
        options: Options<'b>,
        rx: &'b mut [u8],
        tx: &'b mut [u8],
        store: &'b mut [u8],
    ) -> Result<Self, Error> {
        Self::build(options, rx, tx, store, NoJournal)
    }
}

impl<'b, S: Read + Write, J: Journal> Client<'b, S, J> {
    /// Creates a client whose session is kept in `journal` (e.g. a
    /// [`FlashJournal`](crate::flash::FlashJournal)), and first restores the session the
    /// journal holds: messages accepted before a reset are sent again once connected,
    /// QoS 2 handshakes go on where they stopped, incoming QoS 2 messages that were
    /// received are not delivered again.
    ///
    /// A kept session must be kept by the broker too, and the session asks for it: on 3.1.1
    /// it connects with Clean Session 0 (whatever [`Options::clean_start`] says); on 5.0 the
    /// first connection of a new journal starts as [`Options::clean_start`] says and every
    /// later one, across resets too, resumes, with [`Options::session_expiry`] (0 becomes
    /// `u32::MAX`, the session never expires, as Clean Session 0 on 3.1.1).
    ///
    /// Every [`Client::poll`] hands the session's journal records to `journal` before it
    /// transmits; [`Client::persist`] does so at once. A QoS 1 or 2 message is
    /// accepted (survives a reset) once that happened after its publish. Messages are
    /// limited to what one journal record holds ([`Journal::max_record_len`]): larger ones
    /// are refused with [`Error::TxBufferTooSmall`]. Streamed messages
    /// ([`Client::publish_streamed`]) are not journaled: their payload lives elsewhere.
    ///
    /// # Errors
    /// As [`Client::new`], and [`Error::Storage`] when the journal cannot be read or its
    /// records do not fit `store` (recover with at least the store the journal was written
    /// with).
    pub async fn with_journal(
        options: Options<'b>,
        rx: &'b mut [u8],
        tx: &'b mut [u8],
        store: &'b mut [u8],
        journal: J,
    ) -> Result<Self, Error> {
        let mut client = Self::build(options, rx, tx, store, journal)?;
        client.journal.recover(&mut client.session).await?;
        Ok(client)
    }

    // Out of line: a constructor inlined into the caller's async state machine copies its
    // structures field by field (several hundred bytes of flash on a microcontroller).
    #[inline(never)]
    fn build(
        options: Options<'b>,
        rx: &'b mut [u8],
        tx: &'b mut [u8],
        store: &'b mut [u8],
        journal: J,
    ) -> Result<Self, Error> {
        let derived_id = DerivedId::new(options.device_id);
        let client_id = options.client_id.unwrap_or(derived_id.as_str());
        let connect = options.connect(client_id);
        let control = SessionConfig::control_len(&connect).map_err(|e| Error::Command(e.into()))?;
        let mut config = options.session_config(rx.len(), tx.len(), control);
        config.journal = J::ENABLED;
        if let Some(max) = journal.max_record_len() {
            // A message is only accepted if its record fits the journal.
            let fits = max.saturating_sub(RECORD_OVERHEAD);
            config.transmit_capacity = config.transmit_capacity.min(fits);
        }
        // Checked first and created last, straight into the client: the session (760 bytes
        // on a microcontroller) does not pass through a `Result`.
        config.check(store.len())?;
        let session = Session::from_checked(config, store);
        let needed = session
            .connect_len(&connect)
            .map_err(|e| Error::Command(e.into()))?;
        if needed > tx.len() {
            return Err(Error::TxBufferTooSmall {
                needed,
                capacity: tx.len(),
            });
        }
        Ok(Self {
            session,
            options,
            derived_id,
            rx,
            rx_start: 0,
            rx_end: 0,
            rx_lent: 0,
            rx_ready: false,
            rx_skip: 0,
            rx_header: 0,
            rx_stream_left: 0,
            rx_chunk: None,
            tx,
            tx_start: 0,
            tx_end: 0,
            unflushed: false,
            transport: None,
            link: Link::default(),
            last_now: Instant::ZERO,
            next_connect: None,
            stop_reported: false,
            reference: Reference::new(),
            authenticator: None,
            payload_source: None,
            journal,
        })
    }

    /// Starts a connection over `transport`, a freshly opened stream to the broker (TCP, or
    /// TLS over TCP): queues CONNECT, which the next [`Client::poll`] sends after reporting
    /// [`Event::BeforeConnect`]. Messages queued or unacknowledged from earlier connections
    /// are sent once the broker accepts; whether the broker still has them depends on
    /// [`Options::clean_start`](crate::Options::clean_start).
    ///
    /// A current transport is dropped first, as by [`Client::close`], and events of the
    /// previous connection not yet returned by `poll` ([`Event::Disconnected`]) are dropped.
    ///
    /// # Errors
    /// [`Error::Command`] when the session cannot queue the CONNECT (it fits the buffers,
    /// which [`Client::new`] checked, so this does not happen in practice); `transport` is
    /// dropped.
    pub fn connect(&mut self, transport: S) -> Result<(), Error> {
        drop(self.close());
        let client_id = match self.options.client_id {
            Some(id) => id,
            None => self.derived_id.as_str(),
        };
        let mut connect = self.options.connect(client_id);
        if let Some(auth) = self.authenticator.as_deref_mut() {
            // A new exchange per connection; the transmit buffer is free until CONNECT is
            // encoded into the session's store.
            let n = auth.start(self.tx).map_err(Error::Authentication)?;
            connect.properties.authentication_method = Some(auth.method());
            connect.properties.authentication_data = self.tx.get(..n);
        }
        self.session.connect(&connect)?;
        crate::fmt::debug!("mqtt: connecting as {}", client_id);
        self.transport = Some(transport);
        self.stop_reported = false;
        self.reset_buffers();
        self.link = Link {
            live: true,
            before_connect: true,
            ..Link::default()
        };
        Ok(())
    }

    /// Takes the transport out of the client. A live connection ends abruptly: no
    /// DISCONNECT is sent, so the broker publishes the will, and no event is reported. Also
    /// hands back a transport whose connection already ended (after
    /// [`Event::Disconnected`]), so that it can be closed properly or reused (an
    /// `embassy-net` `TcpSocket` can `abort()` and `connect()` again).
    ///
    /// Unacknowledged messages stay in the session and are resent on the next connection.
    ///
    /// After a graceful [`Client::disconnect`], close the transport gently: shut its write side
    /// (e.g. `TcpSocket::close()`) and read until the broker closes, with a timeout. Dropping
    /// a TCP socket with unread bytes in it sends a reset, and a broker that sees the reset
    /// before reading the DISCONNECT publishes the will anyway.
    pub fn close(&mut self) -> Option<S> {
        if self.link.live {
            crate::fmt::debug!("mqtt: transport closed by the application");
            self.next_connect = Some(self.session.handle_transport_closed(self.last_now));
            self.reset_buffers();
        }
        self.link = Link::default();
        self.transport.take()
    }

    /// The same client for transports of another type `T`: the session, the buffers, the
    /// options and the reconnect policy's state all carry over. A current transport is
    /// closed first, as by [`Client::close`], and dropped.
    ///
    /// This is for transports whose type borrows something per connection. `embedded-tls`'s
    /// `TlsConnection<'a, ..>` borrows its record buffers for `'a`, so a client kept as
    /// `Client<'b, TlsConnection<'a, ..>>` would keep them borrowed as long as it lives, and
    /// they could not be lent to the next connection's `TlsConnection`. Keep the client over
    /// a plain type between connections and turn it into the TLS-typed one for each:
    ///
    /// ```rust,ignore
    /// let mut idle: Client<'_, TcpSocket<'_>> = Client::new(options, &mut rx, &mut tx, &mut store)?;
    /// loop {
    ///     socket.connect(broker).await?;
    ///     let mut tls = TlsConnection::new(&mut socket, &mut record_rx, &mut record_tx);
    ///     tls.open(context).await?;
    ///     let mut client = idle.for_transport();
    ///     client.connect(tls)?;
    ///     while !matches!(client.poll(&clock).await, Event::Disconnected) {}
    ///     idle = client.for_transport(); // drops the TLS connection: the buffers are free
    ///     socket.abort();
    /// }
    /// ```
    pub fn for_transport<T: Read + Write>(mut self) -> Client<'b, T, J> {
        drop(self.close());
        let Self {
            session,
            options,
            derived_id,
            rx,
            rx_start,
            rx_end,
            rx_lent,
            rx_ready,
            rx_skip,
            rx_header,
            rx_stream_left,
            rx_chunk,
            tx,
            tx_start,
            tx_end,
            unflushed,
            transport: _,
            link,
            last_now,
            next_connect,
            stop_reported,
            reference,
            authenticator,
            payload_source,
            journal,
        } = self;
        Client {
            session,
            options,
            derived_id,
            rx,
            rx_start,
            rx_end,
            rx_lent,
            rx_ready,
            rx_skip,
            rx_header,
            rx_stream_left,
            rx_chunk,
            tx,
            tx_start,
            tx_end,
            unflushed,
            transport: None,
            link,
            last_now,
            next_connect,
            stop_reported,
            reference,
            authenticator,
            payload_source,
            journal,
        }
    }

    /// Queues a message: `topic`, `qos`, `retain`, `payload`, in the order of
    /// `mqtt-client-tokio`'s `Client::publish` (esp-mqtt's `esp_mqtt_client_publish` takes
    /// the same, with the payload before the QoS). It is sent by [`Client::poll`], also when called while
    /// disconnected (it then waits for the next connection).
    ///
    /// Returns the packet identifier of a QoS 1 or 2 message, which [`Event::Published`]
    /// carries when the broker has acknowledged it (or [`Event::Deleted`] if it never
    /// will); QoS 0 messages return `None` and have no completion event.
    ///
    /// # Errors
    /// [`Error::Topic`] for an invalid topic name; [`Error::TxBufferTooSmall`] when the
    /// packet cannot fit the transmit buffer; [`Error::Command`] when the session refuses it:
    /// `StoreFull` (retry after acknowledgements free room), `PacketIdsExhausted`, or the
    /// broker's limits (`QoSNotSupported`, `RetainNotSupported`, `PacketTooLarge`). Nothing is
    /// queued on error.
    pub fn publish(
        &mut self,
        topic: &str,
        qos: QoS,
        retain: bool,
        payload: &[u8],
    ) -> Result<Option<PacketId>, Error> {
        let mut message = Message::new(TopicName::new(topic)?, payload, qos);
        message.retain = retain;
        self.publish_message(&message)
    }

    /// Queues a message with 5.0 properties (content type, response topic, user
    /// properties, message expiry, ...). As [`Client::publish`].
    ///
    /// # Errors
    /// As [`Client::publish`], and [`Error::Command`] with `ManagedProperty` when the
    /// properties name a topic alias or subscription identifiers.
    pub fn publish_message(&mut self, message: &Message<'_>) -> Result<Option<PacketId>, Error> {
        Ok(self.session.publish(message)?)
    }

    /// Queues a message whose `payload_len`-byte payload is read from the payload source
    /// ([`Client::set_payload_source`]) as it is sent, a transmit buffer at a time: a 1 MiB
    /// firmware image goes out through a 1 KiB transmit buffer, and the session's store
    /// keeps only its header. Otherwise as [`Client::publish`]: QoS 1 and 2 messages are
    /// resent after a reconnect until acknowledged, whole and with DUP, reading the
    /// payload again from offset 0 (see [`PayloadSource`]). Nothing else is sent while its
    /// payload goes out.
    ///
    /// # Errors
    /// As [`Client::publish`], with only the header (topic and a few bytes; properties on
    /// 5.0) checked against the transmit buffer; [`Error::Command`] with `Encode` beyond
    /// MQTT's largest packet (256 MiB). Without a payload source the message fails when it
    /// is sent ([`Error::PayloadSource`]).
    pub fn publish_streamed(
        &mut self,
        topic: &str,
        qos: QoS,
        retain: bool,
        payload_len: usize,
    ) -> Result<Option<PacketId>, Error> {
        let mut message = Message::new(TopicName::new(topic)?, &[], qos);
        message.retain = retain;
        self.publish_streamed_message(&message, payload_len)
    }

    /// [`Client::publish_streamed`] with 5.0 properties; `message.payload` is left out.
    ///
    /// # Errors
    /// As [`Client::publish_streamed`] and [`Client::publish_message`].
    pub fn publish_streamed_message(
        &mut self,
        message: &Message<'_>,
        payload_len: usize,
    ) -> Result<Option<PacketId>, Error> {
        Ok(self.session.publish_streamed(message, payload_len)?)
    }

    /// Sets where the payloads of streamed messages ([`Client::publish_streamed`]) come
    /// from, for the life of the client. It is asked by packet identifier and offset, and
    /// must give the same bytes again when a message is resent.
    pub fn set_payload_source(&mut self, source: &'b mut (dyn PayloadSource + Send)) {
        self.payload_source = Some(source);
    }

    /// Queues a SUBSCRIBE for one filter at `qos` (esp-mqtt's
    /// `esp_mqtt_client_subscribe`). [`Event::Subscribed`] reports the granted QoS.
    ///
    /// # Errors
    /// [`Error::Topic`] for an invalid filter; [`Error::TxBufferTooSmall`];
    /// [`Error::Command`] (`StoreFull`, `PacketIdsExhausted`).
    pub fn subscribe(&mut self, filter: &str, qos: QoS) -> Result<PacketId, Error> {
        let subscription = Subscription::new(TopicFilter::new(filter)?, qos);
        self.subscribe_many(&[subscription], SubscribeProperties::default())
    }

    /// Queues a SUBSCRIBE for several filters, with options (no local, retain handling,
    /// ...) and 5.0 properties.
    ///
    /// # Errors
    /// As [`Client::subscribe`], and [`Error::Command`] with `Encode` for an empty list or
    /// options 3.1.1 cannot express.
    pub fn subscribe_many(
        &mut self,
        subscriptions: &[Subscription<'_>],
        properties: SubscribeProperties<'_>,
    ) -> Result<PacketId, Error> {
        Ok(self.session.subscribe(subscriptions, properties)?)
    }

    /// Queues an UNSUBSCRIBE for one filter. [`Event::Unsubscribed`] reports the outcome.
    ///
    /// # Errors
    /// As [`Client::subscribe`].
    pub fn unsubscribe(&mut self, filter: &str) -> Result<PacketId, Error> {
        let filter = TopicFilter::new(filter)?;
        self.unsubscribe_many(&[filter], UnsubscribeProperties::default())
    }

    /// Queues an UNSUBSCRIBE for several filters, with 5.0 properties.
    ///
    /// # Errors
    /// As [`Client::subscribe_many`].
    pub fn unsubscribe_many(
        &mut self,
        filters: &[TopicFilter<'_>],
        properties: UnsubscribeProperties<'_>,
    ) -> Result<PacketId, Error> {
        Ok(self.session.unsubscribe(filters, properties)?)
    }

    /// Queues a graceful DISCONNECT, sent after everything queued before it that may go
    /// now. [`Client::poll`] then flushes the transport, drops it and reports
    /// [`Event::Disconnected`]. The broker discards the will.
    ///
    /// # Errors
    /// [`Error::NotConnected`] without a transport; [`Error::Command`] with `InvalidState`
    /// before the broker accepted the connection.
    pub fn disconnect(&mut self) -> Result<(), Error> {
        self.disconnect_with(&Disconnect::default())
    }

    /// [`Client::disconnect`] with a 5.0 reason code and properties, e.g.
    /// `ReasonCode::DisconnectWithWillMessage` to have the broker publish the will anyway,
    /// or a new session expiry interval.
    ///
    /// # Errors
    /// As [`Client::disconnect`].
    pub fn disconnect_with(&mut self, disconnect: &Disconnect<'_>) -> Result<(), Error> {
        if !self.link.live {
            return Err(Error::NotConnected);
        }
        Ok(self.session.disconnect(disconnect)?)
    }

    /// Acknowledges a message delivered in manual-ack mode
    /// ([`Options::manual_acks`](crate::Options::manual_acks)): PUBACK for QoS 1, PUBREC for
    /// QoS 2. Take the id from the [`Event::Message`] message's `qos_pid`.
    ///
    /// # Errors
    /// [`Error::Command`] with `UnknownPacketId` for a QoS 2 message already acknowledged
    /// (any id the session holds no QoS 2 message for is acknowledged as QoS 1), or
    /// `WouldBlock` when 16 acknowledgements already wait to be sent (poll, then retry).
    pub fn ack(&mut self, packet_id: PacketId) -> Result<(), Error> {
        Ok(self.session.ack(packet_id)?)
    }

    /// Queues a 5.0 AUTH packet (enhanced authentication step or re-authentication).
    ///
    /// # Errors
    /// [`Error::TxBufferTooSmall`]; [`Error::Command`] with `InvalidState` before CONNECT is
    /// sent or while another AUTH waits, `Encode` on 3.1.1 or when it exceeds the session's
    /// control region.
    pub fn auth(&mut self, auth: &Auth<'_>) -> Result<(), Error> {
        Ok(self.session.auth(auth)?)
    }

    /// Runs 5.0 enhanced authentication with `authenticator` from the next
    /// [`Client::connect`] on: its method and first data go into CONNECT, the broker's
    /// challenges are answered (in the transmit buffer, so it must hold the mechanism's
    /// responses; about 120 bytes for SCRAM-SHA-256, and the session's store room for them,
    /// [`Options::authentication_room`](crate::Options::authentication_room)), and the
    /// broker's final proof is checked. A broker that fails it ends the connection with
    /// [`Error::Authentication`], and [`Client::poll_reconnecting`] stops. It replaces
    /// [`Options::authentication_method`](crate::Options::authentication_method) and
    /// [`Options::authentication_data`](crate::Options::authentication_data).
    pub fn set_authenticator(&mut self, authenticator: &'b mut (dyn Authenticator + Send)) {
        self.authenticator = Some(authenticator);
    }

    /// When and whether to connect again, as the session decided when the last connection
    /// (or attempt to open one) ended: from the reason it ended and
    /// [`Options::reconnect`](crate::Options::reconnect). `None` before any connection ended.
    /// [`Client::poll_reconnecting`] follows it; an application with its own connect loop
    /// waits for [`Reconnect::At`] and reports [`Reconnect::Stop`].
    pub fn reconnect(&self) -> Option<Reconnect> {
        self.next_connect
    }

    /// An attempt to open a transport failed (TCP refused, DNS, TLS handshake): counts it
    /// for the backoff, so that [`Client::reconnect`] says when to try again.
    pub fn open_failed(&mut self, now_ms: u64) {
        let now = Instant::from_millis(now_ms);
        self.next_connect = Some(self.session.handle_transport_closed(now));
    }

    /// Whether the broker has accepted the current connection.
    pub fn is_connected(&self) -> bool {
        self.link.live && self.session.state() == ConnectionState::Connected
    }

    /// Whether a transport is in place (connecting, connected, or ending).
    pub fn has_transport(&self) -> bool {
        self.link.live
    }

    /// The session, read-only: connection state, the broker's limits
    /// ([`Session::limits`]), messages in flight ([`Session::inflight`]) and store usage
    /// ([`Session::store_usage`]).
    pub fn session(&self) -> &Session<&'b mut [u8]> {
        &self.session
    }

    /// The options the client connects with.
    pub fn options(&self) -> &Options<'b> {
        &self.options
    }

    // One copy for its three callers.
    #[inline(never)]
    pub(crate) fn reset_buffers(&mut self) {
        self.rx_start = 0;
        self.rx_end = 0;
        self.rx_lent = 0;
        self.rx_ready = false;
        self.rx_skip = 0;
        self.rx_header = 0;
        self.rx_stream_left = 0;
        self.rx_chunk = None;
        self.tx_start = 0;
        self.tx_end = 0;
        self.unflushed = false;
    }
}

impl<S, J> core::fmt::Debug for Client<'_, S, J> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Client")
            .field("state", &self.session.state())
            .field("live", &self.link.live)
            .field("rx", &(self.rx_end - self.rx_start))
            .field("tx", &(self.tx_end - self.tx_start))
            .finish_non_exhaustive()
    }
}
