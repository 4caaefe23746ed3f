//! The application's commands, run by the handles against the shared state under its lock:
//! each one reaches the session at once and returns its packet identifier or its error;
//! only the broker's answer is awaited, through a oneshot completed by `dispatch`.

use mqtt_sansio::session::{CommandError, Session};
use mqtt_sansio::{
    PacketId, ReasonCode, Seq, SubscribeProperties, Subscription as Filter, SubscriptionOptions,
    TopicFilter, UnsubscribeProperties,
};
use tokio::sync::{mpsc, oneshot};

use super::{Pending, Route, Shutdown, State, WaitingPublish};
use crate::message::{to_session, user_refs};
use crate::options::{DisconnectOptions, QueueFull};
use crate::{Error, Message, RequestProperties, Subscription};

/// The broker's answer to a publish: its reason code, or why it failed.
pub(crate) type Done = oneshot::Receiver<Result<ReasonCode, Error>>;
/// Completed once the publish is as durable as the persistence policy promises.
pub(crate) type Stored = oneshot::Receiver<()>;

/// Where a publish stands once the command returned.
pub(crate) enum Queued {
    /// The session holds it, under this packet identifier (`None` for QoS 0).
    Now(Option<PacketId>),
    /// It waits for room in the store (policy [`QueueFull::Wait`]); the identifier comes
    /// once the session took it.
    Later(oneshot::Receiver<Result<Option<PacketId>, Error>>),
}

impl State {
    /// Refuses commands once the driver has stopped; counts the others.
    fn running(&mut self) -> Result<(), Error> {
        match self.stopped() {
            Some(reason) => Err(reason.clone()),
            None => {
                self.commands_seen += 1;
                Ok(())
            }
        }
    }

    /// Queues a publish with the session, or behind the publishes that wait for room.
    pub(crate) fn publish(&mut self, message: Message) -> Result<(Queued, Stored, Done), Error> {
        self.running()?;
        let (done, done_rx) = oneshot::channel();
        let (stored, stored_rx) = oneshot::channel();
        if self.waiting.is_empty() {
            match self.queue(&message) {
                Ok(packet_id) => {
                    self.notify_stored(stored);
                    self.await_publish(packet_id, done);
                    return Ok((Queued::Now(packet_id), stored_rx, done_rx));
                }
                Err(Error::QueueFull) if self.policy.queue_full == QueueFull::Wait => {}
                Err(e) => return Err(e),
            }
        }
        let (queued, queued_rx) = oneshot::channel();
        self.waiting.push_back(WaitingPublish {
            message,
            queued,
            stored,
            done,
        });
        Ok((Queued::Later(queued_rx), stored_rx, done_rx))
    }

    /// Remembers who waits for a queued publish's outcome.
    fn await_publish(
        &mut self,
        packet_id: Option<PacketId>,
        done: oneshot::Sender<Result<ReasonCode, Error>>,
    ) {
        match packet_id {
            Some(id) => {
                self.pending.insert(id.get(), Pending::Publish(done));
            }
            None => self.qos0.push_back(done),
        }
    }

    /// Retries publishes waiting for room, in order, once something may have freed some.
    pub(crate) fn retry_waiting(&mut self) {
        if !std::mem::take(&mut self.store_freed) {
            return;
        }
        if self.waiting.is_empty() {
            self.shrink_store();
        }
        while let Some(p) = self.waiting.pop_front() {
            if p.queued.is_closed() {
                // The caller stopped waiting before the message was queued: it never was.
                continue;
            }
            match self.queue(&p.message) {
                Ok(packet_id) => {
                    let _ = p.queued.send(Ok(packet_id));
                    self.notify_stored(p.stored);
                    self.await_publish(packet_id, p.done);
                }
                Err(Error::QueueFull) => {
                    self.waiting.push_front(p);
                    break;
                }
                Err(e) => {
                    let _ = p.queued.send(Err(e));
                }
            }
        }
    }

    /// Hands a message to the session, growing its store (up to
    /// [`Policy::offline_queue_bytes`](crate::Policy::offline_queue_bytes)) when it is full.
    pub(super) fn queue(&mut self, message: &Message) -> Result<Option<PacketId>, Error> {
        let users = user_refs(&message.properties.user_properties);
        let m = to_session(message, &users)?;
        let limit = self.log_limit();
        self.with_queue_room(|s| s.publish(&m))
            .map_err(|e| match e {
                CommandError::StoreFull { needed, .. } if needed > limit => Error::TooLarge {
                    size: needed,
                    capacity: limit,
                },
                other => map_command(other),
            })
    }

    /// Runs a command that queues a record (PUBLISH, SUBSCRIBE, UNSUBSCRIBE), and once more
    /// after growing the queue when it had no room: the queue starts small
    /// ([`INITIAL_LOG`](super::INITIAL_LOG)) and grows up to the policy's bytes.
    pub(super) fn with_queue_room<T>(
        &mut self,
        command: impl FnMut(&mut Session<Vec<u8>>) -> Result<T, CommandError>,
    ) -> Result<T, CommandError> {
        let limit = self.log_limit();
        super::with_queue_room(&mut self.session, limit, command)
    }

    /// The most the store's queue may grow to.
    pub(super) fn log_limit(&self) -> usize {
        self.policy.offline_queue_bytes.max(super::INITIAL_LOG)
    }

    /// Resizes the session's tables as it asks (`Session::wants_room`): the incoming table
    /// when a flood fills it and once it has emptied, the subscription table before a SUBACK
    /// it would not fit, the queue for a renewal SUBSCRIBE it would not fit. After every
    /// packet read and before every transmit. `true` when it resized anything.
    pub(crate) fn fit_room(&mut self) -> bool {
        let mut resized_any = false;
        while let Some((region, len)) = self.session.wants_room() {
            let resized = self.session.resize_region(region, len, |store, len| {
                if len < store.len() {
                    store.truncate(len);
                    store.shrink_to_fit();
                } else {
                    store.resize(len, 0);
                }
            });
            if let Err(error) = resized {
                tracing::debug!(%error, ?region, len, "session table not resized");
                return resized_any;
            }
            resized_any = true;
        }
        resized_any
    }

    /// Gives memory back once the queue has drained to a quarter of its room: down to twice
    /// what is in use, never below where a new client starts.
    pub(super) fn shrink_store(&mut self) {
        let (used, capacity) = self.session.store_usage();
        if capacity <= super::INITIAL_LOG || used > capacity / 4 {
            return;
        }
        let target = (used * 2).max(super::INITIAL_LOG);
        let reserved = self.session.reserved_len();
        let shrunk = self.session.resize_store(reserved + target, |store, len| {
            store.truncate(len);
            store.shrink_to_fit();
        });
        if shrunk.is_err() {
            tracing::debug!("store not shrunk: what is queued does not fit");
        }
    }

    /// Sends SUBSCRIBE; the receiver answers with the subscription once SUBACK came.
    pub(crate) fn subscribe(
        &mut self,
        filters: Vec<(String, SubscriptionOptions)>,
        properties: RequestProperties,
    ) -> Result<oneshot::Receiver<Result<Subscription, Error>>, Error> {
        self.running()?;
        if filters.is_empty() {
            return Err(Error::InvalidOptions("no topic filter".into()));
        }
        if let Some(e) = filters.iter().find_map(|(f, _)| TopicFilter::new(f).err()) {
            return Err(e.into());
        }
        let (tx, rx) = mpsc::channel(self.policy.subscription_buffer.max(1));
        let route = Route {
            id: self.next_route,
            sub_id: self.next_subscription_id(),
            filters,
            properties,
            tx,
        };
        let packet_id = self
            .with_queue_room(|s| subscribe_route(s, &route))
            .map_err(map_command)?;
        self.next_route += 1;
        let (reply, reply_rx) = oneshot::channel();
        let names = route.filters.iter().map(|(f, _)| f.clone()).collect();
        let pending = Pending::Subscribe {
            route: route.id,
            rx,
            filters: names,
            reply,
        };
        self.routes.push(route);
        self.pending.insert(packet_id.get(), pending);
        Ok(reply_rx)
    }

    /// A fresh 5.0 subscription identifier, when the broker supports them.
    fn next_subscription_id(&mut self) -> Option<std::num::NonZeroU32> {
        // Never on 3.1.1, which has none (the session's limits say so).
        let supported = self.session.limits().subscription_identifier_available;
        if !supported {
            return None;
        }
        // Identifiers go up to 268,435,455; wrapping after that many subscribe calls is fine.
        self.next_sub_id = self.next_sub_id % 268_435_455 + 1;
        std::num::NonZeroU32::new(self.next_sub_id)
    }

    /// Sends UNSUBSCRIBE; the receiver answers with one reason code per filter.
    pub(crate) fn unsubscribe(
        &mut self,
        filters: Vec<String>,
        properties: &RequestProperties,
    ) -> Result<oneshot::Receiver<Result<Vec<ReasonCode>, Error>>, Error> {
        self.running()?;
        if filters.is_empty() {
            return Err(Error::InvalidOptions("no topic filter".into()));
        }
        let mut list = Vec::with_capacity(filters.len());
        for f in &filters {
            list.push(TopicFilter::new(f)?);
        }
        let users = user_refs(&properties.user_properties);
        let props = UnsubscribeProperties {
            user_properties: Seq::from_slice(&users),
        };
        let packet_id = self
            .with_queue_room(|s| s.unsubscribe(&list, props))
            .map_err(map_command)?;
        let (reply, reply_rx) = oneshot::channel();
        self.pending
            .insert(packet_id.get(), Pending::Unsubscribe { filters, reply });
        Ok(reply_rx)
    }

    /// Acknowledges a message in manual-ack mode.
    pub(crate) fn ack(&mut self, packet_id: PacketId) -> Result<oneshot::Receiver<()>, Error> {
        self.running()?;
        let mut result = self.session.ack(packet_id);
        if result == Err(CommandError::WouldBlock) {
            // Earlier acknowledgements wait to be written: move them to the output first.
            self.pump(true);
            result = self.session.ack(packet_id);
        }
        result.map_err(Error::Command)?;
        // With persistence, a QoS 2 message is marked received right away, so that a crash
        // just after the application handled it does not deliver it again.
        if let Some(journal) = &mut self.journal {
            if let Err(e) = journal.write_through(&mut self.session) {
                let error = crate::persist::persist_error(e);
                self.fatal = Some(Box::new(error.clone()));
                return Err(error);
            }
        }
        let (stored, stored_rx) = oneshot::channel();
        self.notify_stored(stored);
        Ok(stored_rx)
    }

    /// Sends one 5.0 authentication step under the configured method.
    pub(crate) fn auth(&mut self, reason_code: ReasonCode, data: &[u8]) -> Result<(), Error> {
        self.running()?;
        let Some(method) = self.protocol.authentication_method() else {
            return Err(Error::InvalidOptions(
                "no authentication method configured".into(),
            ));
        };
        let step = mqtt_sansio::Auth::new(reason_code, method, data);
        super::with_control_room(&mut self.session, |s| s.auth(&step)).map_err(Error::Command)
    }

    /// Asks the driver to stop; `None` when it already has.
    pub(crate) fn disconnect(
        &mut self,
        options: DisconnectOptions,
    ) -> Option<oneshot::Receiver<Result<(), Error>>> {
        if self.stopped().is_some() {
            return None;
        }
        let (reply, rx) = oneshot::channel();
        self.request_shutdown(options, Some(reply));
        Some(rx)
    }

    /// Every handle is gone: disconnect gracefully and stop.
    pub(crate) fn handles_gone(&mut self) {
        self.request_shutdown(DisconnectOptions::default(), None);
    }

    fn request_shutdown(
        &mut self,
        options: DisconnectOptions,
        reply: Option<oneshot::Sender<Result<(), Error>>>,
    ) {
        self.commands_seen += 1;
        let shutdown = self.shutdown.get_or_insert_with(|| {
            Box::new(Shutdown {
                options,
                replies: Vec::new(),
                started: false,
            })
        });
        shutdown.replies.extend(reply);
    }
}

/// A refused command as the application sees it.
pub(super) fn map_command(e: CommandError) -> Error {
    match e {
        CommandError::StoreFull { .. } => Error::QueueFull,
        other => Error::Command(other),
    }
}

/// Sends SUBSCRIBE for a route's filters, subscription identifier and properties.
pub(super) fn subscribe_route(
    session: &mut mqtt_sansio::session::Session<Vec<u8>>,
    route: &Route,
) -> Result<PacketId, CommandError> {
    let filters: Vec<Filter<'_>> = route
        .filters
        .iter()
        .filter_map(|(f, options)| {
            let filter = TopicFilter::new(f).ok()?;
            Some(Filter {
                filter,
                options: *options,
            })
        })
        .collect();
    let users = user_refs(&route.properties.user_properties);
    let props = SubscribeProperties {
        subscription_identifier: route.sub_id,
        user_properties: Seq::from_slice(&users),
    };
    session.subscribe(&filters, props)
}
