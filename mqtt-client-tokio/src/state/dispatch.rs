//! What the session's events do: complete the callers' futures, route messages to
//! subscriptions, tell the application.

use bytes::Bytes;
use mqtt_sansio::auth::AuthError;
use mqtt_sansio::session::{CommandError, Event as SessionEvent, LostReason, Notice};
use mqtt_sansio::{PacketId, QoS, ReasonCode, TopicFilter};
use tokio::sync::mpsc;
use tracing::{debug, info, trace, warn};

use super::commands::{map_command, subscribe_route};
use super::{End, Pending, State, Status, Target};
use crate::message::Draft;
use crate::{ConnAckInfo, Error, Event, Message, Subscription};

/// A session event, copied out of the session's borrow.
pub(super) enum Incoming {
    Connected {
        session_present: bool,
        connack: Box<ConnAckInfo>,
        /// The broker's final authentication data, for an authenticator to check.
        auth_data: Option<Bytes>,
    },
    Refused {
        reason_code: ReasonCode,
        reference: Option<String>,
    },
    Message(Draft),
    Published {
        packet_id: PacketId,
        reason_code: ReasonCode,
        reason_string: Option<String>,
        user_properties: Vec<(String, String)>,
    },
    Subscribed {
        packet_id: PacketId,
        reason_codes: Vec<ReasonCode>,
    },
    Resubscribed {
        packet_id: PacketId,
        reason_codes: Vec<ReasonCode>,
    },
    Unsubscribed {
        packet_id: PacketId,
        reason_codes: Vec<ReasonCode>,
    },
    Disconnected {
        reason_code: ReasonCode,
        reason_string: Option<String>,
        reference: Option<String>,
    },
    Lost(LostReason),
    Abandoned {
        packet_id: PacketId,
        message: Option<Message>,
    },
    Dropped {
        packet_id: Option<PacketId>,
        reason_code: ReasonCode,
    },
    RequestDropped {
        packet_id: PacketId,
        reason_code: ReasonCode,
    },
    Notice(Notice),
    Auth {
        reason_code: ReasonCode,
        data: Option<Bytes>,
    },
    Ignored,
}

impl Incoming {
    /// Copies `event`; a message payload lying in `buf` is located, not copied.
    pub(super) fn new(event: &SessionEvent<'_>, buf: &[u8]) -> Self {
        match *event {
            SessionEvent::Connected {
                session_present,
                properties,
            } => Self::Connected {
                session_present,
                connack: Box::new(ConnAckInfo::new(&properties)),
                auth_data: properties.authentication_data.map(Bytes::copy_from_slice),
            },
            SessionEvent::ConnectionRefused {
                reason_code,
                properties,
            } => Self::Refused {
                reason_code,
                reference: properties.server_reference.map(str::to_string),
            },
            SessionEvent::Message(p) => Self::Message(Draft::new(&p, buf)),
            SessionEvent::Published {
                packet_id,
                reason_code,
                properties,
                ..
            } => Self::Published {
                packet_id,
                reason_code,
                reason_string: properties.reason_string.map(str::to_string),
                user_properties: properties
                    .user_properties
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            },
            SessionEvent::Subscribed {
                packet_id,
                reason_codes,
                ..
            } => Self::Subscribed {
                packet_id,
                reason_codes: reason_codes.iter().collect(),
            },
            SessionEvent::Resubscribed {
                packet_id,
                reason_codes,
                ..
            } => Self::Resubscribed {
                packet_id,
                reason_codes: reason_codes.iter().collect(),
            },
            SessionEvent::Unsubscribed {
                packet_id,
                reason_codes,
                ..
            } => Self::Unsubscribed {
                packet_id,
                reason_codes: reason_codes.iter().collect(),
            },
            SessionEvent::Pong { round_trip } => {
                trace!(?round_trip, "PINGRESP");
                Self::Ignored
            }
            SessionEvent::Disconnected {
                reason_code,
                properties,
            } => Self::Disconnected {
                reason_code,
                reason_string: properties.reason_string.map(str::to_string),
                reference: properties.server_reference.map(str::to_string),
            },
            SessionEvent::ConnectionLost(reason) => Self::Lost(reason),
            // `drain_events` fills in the message from `Session::abandoned_message`.
            SessionEvent::PublishAbandoned { packet_id, .. } => Self::Abandoned {
                packet_id,
                message: None,
            },
            SessionEvent::PublishDropped {
                packet_id,
                reason_code,
            } => Self::Dropped {
                packet_id,
                reason_code,
            },
            SessionEvent::Auth(a) => Self::Auth {
                reason_code: a.reason_code,
                data: a.properties.authentication_data.map(Bytes::copy_from_slice),
            },
            SessionEvent::RequestDropped {
                packet_id,
                reason_code,
            } => Self::RequestDropped {
                packet_id,
                reason_code,
            },
            SessionEvent::Notice(notice) => Self::Notice(notice),
            _ => {
                debug!("session event not handled by this client");
                Self::Ignored
            }
        }
    }
}

impl State {
    /// Handles the events the session queued on its own; whether there were any.
    pub(crate) fn drain_events(&mut self) -> bool {
        let mut any = false;
        while let Some(event) = self.session.poll_event() {
            let mut incoming = Incoming::new(&event, &[]);
            if let Incoming::Abandoned { message, .. } = &mut incoming {
                *message = self
                    .session
                    .abandoned_message()
                    .map(|p| Draft::new(&p, &[]).finish(&Bytes::new()));
            }
            any = true;
            self.on_event(incoming, &Bytes::new());
        }
        any
    }

    /// Handles one event; `packet` holds the bytes of the packet it came from.
    pub(super) fn on_event(&mut self, incoming: Incoming, packet: &Bytes) {
        match incoming {
            Incoming::Connected {
                session_present,
                connack,
                auth_data,
            } => {
                if self.authenticate(ReasonCode::Success, auth_data.as_deref()) {
                    self.on_connected(session_present, connack);
                }
            }
            Incoming::Refused {
                reason_code,
                reference,
            } => {
                warn!(?reason_code, "connection refused");
                self.end(End::Failed {
                    error: Error::ConnectionRefused(reason_code),
                    reference,
                });
            }
            Incoming::Message(draft) => self.route(draft.finish(packet)),
            Incoming::Published {
                packet_id,
                reason_code,
                reason_string,
                user_properties,
            } => {
                self.store_freed = true;
                if let Some(Pending::Publish(done)) = self.pending.remove(&packet_id.get()) {
                    let result = if reason_code.is_error() {
                        Err(Error::Rejected(reason_code))
                    } else {
                        Ok(reason_code)
                    };
                    let _ = done.send(result);
                }
                self.events.emit(Event::Published {
                    packet_id,
                    reason_code,
                    reason_string,
                    user_properties,
                });
            }
            Incoming::Subscribed {
                packet_id,
                reason_codes,
            } => self.on_subscribed(packet_id, reason_codes),
            Incoming::Resubscribed {
                packet_id,
                reason_codes,
            } => {
                self.store_freed = true;
                for code in reason_codes.iter().filter(|c| c.is_error()) {
                    warn!(?code, "broker refused a renewed subscription");
                    self.events.emit(Event::Error(Error::Rejected(*code)));
                }
                info!(
                    count = reason_codes.len(),
                    "subscriptions renewed after the broker lost the session"
                );
                self.events.emit(Event::Resubscribed {
                    packet_id,
                    reason_codes,
                });
            }
            Incoming::Unsubscribed {
                packet_id,
                reason_codes,
            } => self.on_unsubscribed(packet_id, reason_codes),
            Incoming::Disconnected {
                reason_code,
                reason_string,
                reference,
            } => {
                warn!(
                    ?reason_code,
                    reason = reason_string.as_deref(),
                    "broker sent DISCONNECT"
                );
                self.end(End::Failed {
                    error: Error::ServerDisconnected {
                        reason_code,
                        reason_string,
                    },
                    reference,
                });
            }
            Incoming::Lost(reason) => {
                let end = match reason {
                    LostReason::DisconnectSent | LostReason::ClosedForWill => End::Closed,
                    LostReason::AuthenticationFailed => {
                        End::failed(Error::Authentication(AuthError::ServerNotVerified))
                    }
                    LostReason::ConnAckTimeout => End::failed(Error::ConnectTimeout),
                    LostReason::KeepAliveTimeout => End::failed(Error::KeepAliveTimeout),
                    LostReason::ProtocolError(code) => End::failed(Error::Protocol(code)),
                    _ => End::failed(Error::ConnectionClosed),
                };
                self.end(end);
            }
            Incoming::Abandoned { packet_id, message } => self.on_abandoned(packet_id, message),
            Incoming::Dropped {
                packet_id,
                reason_code,
            } => {
                self.store_freed = true;
                let done = match packet_id {
                    Some(id) => match self.pending.remove(&id.get()) {
                        Some(Pending::Publish(done)) => Some(done),
                        _ => None,
                    },
                    None => self.qos0.pop_front(),
                };
                warn!(
                    ?packet_id,
                    ?reason_code,
                    "message cannot be sent to this broker"
                );
                if let Some(done) = done {
                    let _ = done.send(Err(Error::Dropped(reason_code)));
                }
                self.events.emit(Event::Error(Error::Dropped(reason_code)));
            }
            Incoming::RequestDropped {
                packet_id,
                reason_code,
            } => {
                self.store_freed = true;
                warn!(?reason_code, "request the broker cannot serve dropped");
                match self.pending.remove(&packet_id.get()) {
                    // The identifier is ours, for routing: without it the filters route.
                    Some(Pending::Subscribe {
                        route,
                        rx,
                        filters,
                        reply,
                    }) if reason_code == ReasonCode::SubscriptionIdentifiersNotSupported => {
                        let limit = self.log_limit();
                        let again = match self.routes.iter_mut().find(|r| r.id == route) {
                            Some(r) => {
                                r.sub_id = None;
                                super::with_queue_room(&mut self.session, limit, |s| {
                                    subscribe_route(s, r)
                                })
                            }
                            None => Err(CommandError::InvalidState),
                        };
                        match again {
                            Ok(id) => {
                                let pending = Pending::Subscribe {
                                    route,
                                    rx,
                                    filters,
                                    reply,
                                };
                                self.pending.insert(id.get(), pending);
                            }
                            Err(e) => {
                                self.routes.retain(|r| r.id != route);
                                let _ = reply.send(Err(map_command(e)));
                            }
                        }
                    }
                    Some(Pending::Subscribe { route, reply, .. }) => {
                        self.routes.retain(|r| r.id != route);
                        let _ = reply.send(Err(Error::Rejected(reason_code)));
                    }
                    Some(Pending::Unsubscribe { reply, .. }) => {
                        let _ = reply.send(Err(Error::Rejected(reason_code)));
                    }
                    Some(other) => {
                        self.pending.insert(packet_id.get(), other);
                    }
                    None => {}
                }
            }
            Incoming::Auth { reason_code, data } => {
                if self.protocol.authenticator.is_some() {
                    self.authenticate(reason_code, data.as_deref());
                } else {
                    self.events.emit(Event::Auth { reason_code, data });
                }
            }
            Incoming::Notice(notice) => {
                info!(?notice, "session notice");
                self.events.emit(Event::Notice(notice));
            }
            Incoming::Ignored => {}
        }
    }

    /// Runs the authenticator, if any, on a step from the broker: answers a challenge, checks
    /// the final data of a success. Whether the connection goes on; a failure ends it, and
    /// the client, with [`Error::Authentication`].
    fn authenticate(&mut self, reason_code: ReasonCode, data: Option<&[u8]>) -> bool {
        let Some(auth) = self.protocol.authenticator.clone() else {
            return true;
        };
        let result = match super::lock_authenticator(&auth) {
            Ok(mut auth) => match reason_code {
                ReasonCode::ContinueAuthentication => {
                    let mut out = [0u8; super::AUTH_BUF];
                    match auth.respond(data.unwrap_or_default(), &mut out) {
                        Ok(n) => {
                            let step =
                                mqtt_sansio::Auth::new(reason_code, auth.method(), &out[..n]);
                            super::with_control_room(&mut self.session, |s| s.auth(&step))
                                .map_err(Error::Command)
                        }
                        Err(e) => Err(Error::Authentication(e)),
                    }
                }
                _ => auth.finish(data).map_err(Error::Authentication),
            },
            Err(e) => Err(e),
        };
        match result {
            Ok(()) => true,
            Err(error) => {
                warn!(%error, "enhanced authentication failed; closing");
                // The session sends DISCONNECT Not Authorized and decides not to reconnect.
                self.session.authentication_failed();
                self.events.emit(Event::Error(error.clone()));
                self.end(End::failed(error));
                false
            }
        }
    }

    /// Records why the connection ends (the first reason wins).
    fn end(&mut self, end: End) {
        if self.conn_end.is_none() {
            self.conn_end = Some(Box::new(end));
        }
    }

    fn on_connected(&mut self, session_present: bool, connack: Box<ConnAckInfo>) {
        info!(session_present, "connected");
        self.connected = true;
        self.connected_once = true;
        self.store_freed = true;
        self.set_status(Status::Connected);
        self.events.emit(Event::Connected {
            session_present,
            broker: self.broker.clone(),
            connack,
        });
    }

    fn on_subscribed(&mut self, packet_id: PacketId, reason_codes: Vec<ReasonCode>) {
        self.store_freed = true;
        match self.pending.remove(&packet_id.get()) {
            Some(Pending::Subscribe {
                route,
                rx,
                filters,
                reply,
            }) => {
                if reason_codes.iter().all(|c| c.is_error()) {
                    self.routes.retain(|r| r.id != route);
                }
                let subscription = Subscription {
                    rx,
                    reason_codes: reason_codes.clone(),
                    filters,
                };
                if reply.send(Ok(subscription)).is_err() {
                    debug!("subscriber gone before SUBACK");
                }
            }
            Some(other) => {
                self.pending.insert(packet_id.get(), other);
            }
            None => {}
        }
        self.events.emit(Event::Subscribed {
            packet_id,
            reason_codes,
        });
    }

    fn on_unsubscribed(&mut self, packet_id: PacketId, reason_codes: Vec<ReasonCode>) {
        self.store_freed = true;
        if let Some(Pending::Unsubscribe { filters, reply }) = self.pending.remove(&packet_id.get())
        {
            for route in &mut self.routes {
                route.filters.retain(|(f, _)| !filters.contains(f));
            }
            self.routes.retain(|r| !r.filters.is_empty());
            let codes = if reason_codes.is_empty() {
                vec![ReasonCode::Success; filters.len()]
            } else {
                reason_codes.clone()
            };
            let _ = reply.send(Ok(codes));
        }
        self.events.emit(Event::Unsubscribed {
            packet_id,
            reason_codes,
        });
    }

    /// The broker lost the session before acknowledging a message: QoS 1 goes again (if the
    /// policy says so); QoS 2 fails, to rule out a duplicate.
    fn on_abandoned(&mut self, packet_id: PacketId, message: Option<Message>) {
        self.store_freed = true;
        let done = match self.pending.remove(&packet_id.get()) {
            Some(Pending::Publish(done)) => Some(done),
            Some(other) => {
                self.pending.insert(packet_id.get(), other);
                None
            }
            None => None,
        };
        let republish = self.policy.republish_abandoned_qos1;
        match message {
            Some(m) if m.qos == QoS::AtLeastOnce && republish => match self.queue(&m) {
                Ok(Some(new_id)) => {
                    debug!(
                        old = packet_id.get(),
                        new = new_id.get(),
                        "QoS 1 message published again"
                    );
                    if let Some(done) = done {
                        self.pending.insert(new_id.get(), Pending::Publish(done));
                    }
                }
                Ok(None) => {}
                Err(error) => {
                    warn!(%error, "cannot publish an abandoned QoS 1 message again");
                    if let Some(done) = done {
                        let _ = done.send(Err(error.clone()));
                    }
                    self.events.emit(Event::Error(error));
                }
            },
            _ => {
                warn!(
                    packet_id = packet_id.get(),
                    "message abandoned: the broker lost the session"
                );
                if let Some(done) = done {
                    let _ = done.send(Err(Error::Abandoned));
                }
                self.events.emit(Event::Error(Error::Abandoned));
            }
        }
    }

    /// Delivers a message to the subscriptions it belongs to: by 5.0 subscription identifier
    /// when it carries ours, by filter otherwise; a message no subscription matches (a resumed
    /// session's backlog arriving before `subscribe`) goes to the events stream, held until it
    /// has room. A QoS 1 or 2 message is acknowledged once it was handed over (by the
    /// application instead in manual-ack mode); acknowledgements stay in arrival order because
    /// held messages are handed over in order.
    fn route(&mut self, message: Message) {
        let ids = &message.properties.subscription_identifiers;
        // Reused from message to message: no allocation once it has grown.
        let mut targets = std::mem::take(&mut self.route_targets);
        targets.clear();
        targets.extend(
            self.routes
                .iter()
                .filter(|r| r.sub_id.is_some_and(|id| ids.contains(&id)))
                .map(|r| r.tx.clone()),
        );
        if targets.is_empty() {
            targets.extend(
                self.routes
                    .iter()
                    .filter(|r| {
                        r.filters.iter().any(|(f, _)| {
                            TopicFilter::new(f).is_ok_and(|f| f.matches(&message.topic))
                        })
                    })
                    .map(|r| r.tx.clone()),
            );
        }
        let ack = if self.protocol.manual_acks {
            None
        } else {
            message.packet_id
        };
        let Some(last) = targets.pop() else {
            self.route_targets = targets;
            debug!(topic = %message.topic, "message matches no subscription: to the events");
            if self.events.is_closed() {
                // Nobody can see it, nor acknowledge it: do it here rather than stall the
                // broker's window.
                self.ack_delivered(message.packet_id);
                return;
            }
            self.deliver(Target::Events, message, ack);
            return;
        };
        // A copy for the event stream only when it has room; the subscriptions get theirs.
        if self.events.has_room() {
            self.events.emit(Event::Message(message.clone()));
        }
        for tx in targets.drain(..) {
            self.deliver(Target::Stream(tx), message.clone(), None);
        }
        self.route_targets = targets;
        // The last (usually only) subscription takes the message itself: no copy.
        self.deliver(Target::Stream(last), message, ack);
    }

    /// Hands a message over, or holds it when its stream is full (or earlier messages are
    /// held: order is kept).
    fn deliver(&mut self, target: Target, message: Message, ack: Option<PacketId>) {
        if !self.outbox.is_empty() {
            self.park(target, message, ack);
            return;
        }
        match self.hand_over(&target, message) {
            None => self.ack_delivered(ack),
            Some(message) => {
                trace!("stream full: holding messages, acknowledging later");
                self.park(target, message, ack);
            }
        }
    }

    /// Sends without waiting; gives the message back when the stream is full. A stream that
    /// is gone takes the message away (it is discarded, and the route with it).
    fn hand_over(&mut self, target: &Target, message: Message) -> Option<Message> {
        match target {
            Target::Stream(tx) => match tx.try_send(message) {
                Ok(()) => None,
                Err(mpsc::error::TrySendError::Full(message)) => Some(message),
                Err(mpsc::error::TrySendError::Closed(_)) => {
                    debug!("subscription stream dropped; its messages are discarded");
                    self.routes.retain(|r| !r.tx.same_channel(tx));
                    None
                }
            },
            Target::Events if self.events.is_closed() => None,
            // Room for a pending lag report too.
            Target::Events if self.events.fits() => {
                self.events.emit(Event::Message(message));
                None
            }
            Target::Events => Some(message),
        }
    }

    /// Holds a message for a full stream; a QoS 0 message over the bound is dropped instead.
    fn park(&mut self, target: Target, message: Message, ack: Option<PacketId>) {
        let qos0 = message.packet_id.is_none();
        if qos0 && self.outbox.len() >= super::wire::OUTBOX_QOS0_LIMIT {
            self.dropped_qos0 += 1;
            return;
        }
        self.outbox.push_back(super::Parked {
            target,
            message,
            ack,
        });
    }

    /// Acknowledges a message the streams took (in order of arrival, see `route`).
    fn ack_delivered(&mut self, ack: Option<PacketId>) {
        let Some(id) = ack else {
            return;
        };
        let mut result = self.session.ack(id);
        if result == Err(CommandError::WouldBlock) {
            self.pump(true);
            result = self.session.ack(id);
        }
        if let Err(error) = result {
            debug!(%error, packet_id = id.get(), "acknowledgement not queued");
        }
    }

    /// What the first held message waits on.
    pub(crate) fn room_waiter(&self) -> Option<super::Waiter> {
        Some(match &self.outbox.front()?.target {
            Target::Stream(tx) => super::Waiter::Stream(tx.clone()),
            Target::Events => super::Waiter::Events,
        })
    }

    /// The first held message's stream has room, or is gone (`open` false): hand over what
    /// fits, in order.
    pub(crate) fn on_room(&mut self, open: bool) {
        if !open {
            if let Some(Target::Stream(tx)) = self.outbox.front().map(|p| &p.target) {
                let tx = tx.clone();
                debug!("subscription stream dropped; its messages are discarded");
                self.routes.retain(|r| !r.tx.same_channel(&tx));
                let (gone, kept): (Vec<_>, Vec<_>) = std::mem::take(&mut self.outbox)
                    .into_iter()
                    .partition(|p| p.target.is_stream(&tx));
                self.outbox = kept.into();
                for p in gone {
                    self.ack_delivered(p.ack);
                }
            }
        }
        while let Some(p) = self.outbox.pop_front() {
            match self.hand_over(&p.target, p.message) {
                None => self.ack_delivered(p.ack),
                Some(message) => {
                    self.outbox.push_front(super::Parked { message, ..p });
                    break;
                }
            }
        }
        self.report_dropped();
    }

    /// Tells the application about QoS 0 messages dropped for a full stream.
    pub(super) fn report_dropped(&mut self) {
        if self.dropped_qos0 > 0 && self.outbox.is_empty() {
            let count = std::mem::take(&mut self.dropped_qos0);
            warn!(count, "QoS 0 messages dropped: subscription streams full");
            self.events.emit(Event::SlowConsumer {
                dropped_qos0: count,
            });
        }
    }
}
