//! The driver task: owns the transport, and moves bytes, time and wake-ups between it and the
//! state it shares with the handles. It decides only what the session leaves to a client:
//! which broker to dial. When to dial, and everything a byte means, is the session's.

mod io;

use std::future::Future;
use std::sync::Arc;

use tokio::sync::oneshot;
use tokio_rustls::TlsConnector;
use tracing::{info, warn, Instrument};

use crate::options::{TlsOptions, TransportOptions};
use crate::state::{room, End, Shared, State, Status};
use crate::url::BrokerUrl;
use crate::{transport, Error, Event, Options};

/// `Client::connect`'s answer: the first connection's outcome.
pub(crate) type FirstOutcome = oneshot::Receiver<Result<(), Error>>;

/// What a started driver gives the handles.
pub(crate) struct Started {
    /// The state shared with the driver.
    pub(crate) shared: Arc<Shared>,
    /// With `wait_first`: the first connection's outcome.
    pub(crate) first_outcome: Option<FirstOutcome>,
}

/// Starts the driver task for `options`. `wait_first`: stop once the first round of
/// connection attempts fails (`Client::connect`).
///
/// # Panics
/// Outside a tokio runtime.
pub(crate) fn start(options: Options, wait_first: bool) -> Result<Started, Error> {
    if options.brokers.is_empty() {
        return Err(Error::InvalidOptions("no broker URL".into()));
    }
    let tls = if options.brokers.iter().any(|b| b.scheme.is_tls()) {
        Some(transport::tls_connector(&options.transport.tls)?)
    } else {
        None
    };
    let (first_tx, first_outcome) = if wait_first {
        let (tx, rx) = oneshot::channel();
        (Some(tx), Some(rx))
    } else {
        (None, None)
    };
    let state = State::new(&options, first_tx)?;
    // One span for the task, no span per connection (40 bytes more of every client's task,
    // for good): the broker is named where each connection starts.
    let span = tracing::info_span!("mqtt_client", client_id = %state.protocol.client_id);
    let shared = Arc::new(Shared::new(state));
    let brokers = options.brokers.into_boxed_slice();
    let mut transport = options.transport;
    // The connector holds the certificates and keys; dialling reads only the server name.
    transport.tls = TlsOptions {
        server_name: transport.tls.server_name.take(),
        ..TlsOptions::default()
    };
    let driver = Driver {
        shared: Arc::clone(&shared),
        brokers,
        transport: (!transport.dials_as_default()).then(|| Box::new(transport)),
        tls,
        wait_first,
    };
    tokio::spawn(driver.run(span));
    Ok(Started {
        shared,
        first_outcome,
    })
}

struct Driver {
    shared: Arc<Shared>,
    /// Kept for the life of the client: no spare capacity, and no capacity field.
    brokers: Box<[BrokerUrl]>,
    /// Boxed, and `None` for the defaults: read only when dialling, and the task of every
    /// client keeps it for good.
    transport: Option<Box<TransportOptions>>,
    tls: Option<TlsConnector>,
    wait_first: bool,
}

impl Driver {
    /// Runs until the client stops.
    // Not an `async fn`: one keeps its `self` argument twice in the future (once as the
    // argument, once as the local it is moved to), and every client's task keeps the future
    // for its life. The block takes `self` once, and the span is the wrapper's alone.
    fn run(mut self, span: tracing::Span) -> impl Future<Output = ()> {
        async move {
            let reason = self.lifecycle().await;
            self.shared.lock().finish(reason);
        }
        .instrument(span)
    }

    /// Connects, reconnects, fails over and follows redirections until a stop; returns why.
    /// When and whether to try again is the session's decision
    /// ([`Session::handle_transport_closed`](mqtt_sansio::session::Session)); the driver
    /// only picks the broker to dial.
    async fn lifecycle(&mut self) -> Error {
        let mut index = 0;
        let mut tried_first_round = 0u32;
        // Boxed: it lives across the connection, in every idle client's task. A broker of
        // the list is dialled from the list, not from a copy.
        let mut redirect: Option<Box<BrokerUrl>> = None;
        loop {
            if self.shared.lock().shutdown.is_some() {
                return Error::Closed;
            }
            let current = redirect.take();
            let url = current.as_deref().unwrap_or(&self.brokers[index]);
            // In this block, the connection's end and its error: dropped before the wait
            // below, so that the task keeps no room for them while it waits.
            let delay = {
                let end = self.connection(url).await;
                let (error, reference) = match end {
                    End::Closed => return Error::Closed,
                    End::Failed { error, reference } => (error, reference),
                };
                let mut state = self.shared.lock();
                let reached = std::mem::take(&mut state.connected);
                let now = state.now();
                let spoken = state.session.version();
                let next = state.session.handle_transport_closed(now);
                // The session fell back to 3.1.1: the same broker, at once, and not a
                // spent attempt of `Client::connect`'s round.
                let fell_back = state.session.version() != spoken;
                if matches!(
                    error,
                    Error::InvalidOptions(_) | Error::Command(_) | Error::Persistence(_)
                ) {
                    return error;
                }
                let (at, attempt) = match next {
                    mqtt_sansio::session::Reconnect::Stop(cause) => {
                        warn!(%error, ?cause, "not reconnecting: retrying cannot help");
                        return error;
                    }
                    mqtt_sansio::session::Reconnect::Redirect { at, moved } => {
                        match reference.as_deref().and_then(|r| url.redirect(r)) {
                            Some(target) => {
                                info!(to = %target, moved, "broker redirects the client");
                                if moved {
                                    self.brokers[index] = target.clone();
                                }
                                redirect = Some(Box::new(target));
                            }
                            None => warn!(?reference, "unusable Server Reference"),
                        }
                        (at, 1)
                    }
                    mqtt_sansio::session::Reconnect::At { at, attempt, .. } => {
                        if !reached && !fell_back {
                            // Fail over: the next attempt goes to the next broker of the list.
                            index = (index + 1) % self.brokers.len();
                        }
                        (at, attempt)
                    }
                    _ => (now, 1),
                };
                // The session's notices about this decision (a fallback) go out now.
                state.drain_events();
                if fell_back {
                    // The same broker: the same redirection, or the same broker of the list.
                    info!("the broker speaks only 3.1.1: falling back");
                    redirect = current;
                    continue;
                }
                if !state.policy.reconnect {
                    return error;
                }
                if self.wait_first && !state.connected_once {
                    // `Client::connect` tries each broker once, without waiting.
                    tried_first_round += 1;
                    if redirect.is_none() && tried_first_round as usize >= self.brokers.len() {
                        return error;
                    }
                    continue;
                }
                let delay = at.saturating_duration_since(now);
                info!(attempt, ?delay, "reconnecting");
                state.emit(Event::Reconnecting { attempt, delay });
                delay
            };
            // Boxed, as the opening below: an idle connected client's task would otherwise
            // keep room for this wait's timer and select.
            if Box::pin(self.serve_until(tokio::time::sleep(delay)))
                .await
                .is_none()
            {
                return self
                    .shared
                    .lock()
                    .fatal
                    .take()
                    .map_or(Error::Closed, |e| *e);
            }
        }
    }

    /// One connection: transport, CONNECT, then the connected loop until it ends.
    // Not an `async fn`: one keeps its arguments twice (as arguments and as the locals they
    // move to), and every idle client's task keeps this future for its life (16 bytes).
    #[allow(clippy::manual_async_fn)]
    fn connection<'a>(&'a self, url: &'a BrokerUrl) -> impl Future<Output = End> + 'a {
        async move {
            let timeout = {
                let mut state = self.shared.lock();
                state.set_status(Status::Connecting);
                state.broker = url.to_string();
                state.policy.connect_timeout
            };
            info!(broker = %url, "connecting");
            // Boxed: opening TCP, TLS and WebSocket is the largest state of this task; inline it
            // would stay in every idle connection's task for good.
            let open = Box::pin(transport::connect_owned(
                url.clone(),
                self.transport.as_deref().cloned().unwrap_or_default(),
                self.tls.clone(),
            ));
            let opening = Box::pin(self.serve_until(tokio::time::timeout(timeout, open)));
            let mut stream = match opening.await {
                None => match self.shared.lock().fatal.take() {
                    Some(error) => return End::failed(*error),
                    None => return End::Closed,
                },
                Some(Err(_elapsed)) => {
                    return self.shared.lock().attempt_failed(Error::ConnectTimeout)
                }
                Some(Ok(Err(e))) => return self.shared.lock().attempt_failed(e),
                Some(Ok(Ok(stream))) => stream,
            };
            {
                let mut state = self.shared.lock();
                if let Err(e) = state.send_connect() {
                    return End::failed(e);
                }
                state.connection_opened();
            }
            let end = self.drive(&mut stream).await;
            self.shared.lock().connection_closed(&end);
            end
        }
    }

    /// Runs `fut` while there is no connection, handing held messages over as their streams
    /// make room and queuing publishes that wait for it. `None` when a stop was requested
    /// first.
    async fn serve_until<T>(&self, fut: impl Future<Output = T>) -> Option<T> {
        tokio::pin!(fut);
        loop {
            // Publishes made while disconnected are stored meanwhile.
            let journaled = self.shared.lock().journal.is_some();
            if self.persist(journaled).await.is_err() {
                return None;
            }
            let (waiter, sync_at) = {
                let mut state = self.shared.lock();
                if state.shutdown.is_some() {
                    return None;
                }
                state.retry_waiting();
                (state.room_waiter(), state.journal_sync_at())
            };
            let has_outbox = waiter.is_some();
            tokio::select! {
                out = &mut fut => return Some(out),
                () = io::sleep_until(sync_at), if sync_at.is_some() => {}
                () = self.shared.wake.notified() => {}
                open = room(&self.shared, waiter), if has_outbox => self.shared.lock().on_room(open),
            }
        }
    }
}

impl std::fmt::Debug for Driver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Driver")
            .field("brokers", &self.brokers.len())
            .finish_non_exhaustive()
    }
}
