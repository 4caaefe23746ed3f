//! `mqtt sub`, and the printing that `mqtt rr` shares with it.

use std::sync::Arc;

use mqtt_client_tokio::{
    Client, Message, QoS, RequestProperties, Subscription, SubscriptionOptions,
};
use tokio::time::{sleep_until, Duration, Instant};

use super::args::{OutputArgs, SubArgs};
use super::connect::{FirstConnection, Kind, Plan};
use super::exit::{Exit, Failure};
use super::format::{Format, Output};
use super::props::{PropertySet, Request};
use super::trace::{print_stderr, print_stdout, stdout_closed, Trace, STDOUT_CLOSED};

/// Runs `mqtt sub`.
///
/// # Errors
/// A failure with its exit code.
pub async fn run(args: SubArgs) -> Result<(), Failure> {
    let props = PropertySet::parse(&args.conn.properties).map_err(Failure::usage)?;
    if !props.publish.eq(&Default::default()) {
        return Err(Failure::usage("-D publish properties belong to `mqtt pub`"));
    }
    let output = output(&args.output)?;
    let plan = Plan::new(&args.conn, &props, Kind::Sub)?;
    let mut topics = args.topics.clone();
    if topics.is_empty() {
        topics.extend(plan.url_topic.clone());
    }
    if topics.is_empty() && !args.exit_after_subscribe {
        return Err(Failure::usage("You must specify a topic to subscribe to."));
    }
    for filter in topics.iter().chain(&args.unsubscribe) {
        mqtt_sansio::TopicFilter::new(filter).map_err(|_| {
            Failure::usage(format!(
                "Invalid subscription topic '{filter}', are all '+' and '#' wildcards correct?"
            ))
        })?;
    }
    warn_unsent(&props, args.conn.quiet);
    let version = plan.version;
    let trace = plan.trace.clone();
    let (session, connected) = plan.start()?;
    let requests = Requests {
        subscribe: props.request(Request::Subscribe),
        unsubscribe: props.request(Request::Unsubscribe),
    };
    let subscribed = subscribe(
        &session.client,
        &args,
        &topics,
        &requests,
        connected,
        version,
    );
    let outcome = match subscribed.await {
        Ok(Some(subscription)) => {
            let deadline = args
                .timeout
                .map(|secs| Instant::now() + Duration::from_secs(secs));
            let printer = Printer::new(output, &args.output, args.random_filter, trace);
            receive(&session.client, subscription, &args, printer, deadline).await
        }
        Ok(None) => Ok(()),
        Err(e) => Err(e),
    };
    session.close().await;
    outcome
}

/// The output style from `-v`, `-j`, `-F` and `--pretty`.
///
/// # Errors
/// mosquitto's usage error for a bad `-F` format.
pub fn output(args: &OutputArgs) -> Result<Output, Failure> {
    Ok(match (&args.format, args.json) {
        (Some(format), _) => {
            Output::Format(Format::parse(format, args.pretty).map_err(Failure::usage)?)
        }
        (None, true) => Output::Json {
            pretty: args.pretty,
        },
        (None, false) => Output::Plain {
            verbose: args.verbose,
        },
    })
}

/// Prints the warning about `-D subscribe` / `-D unsubscribe` properties, if any.
pub fn warn_unsent(props: &PropertySet, quiet: bool) {
    if let (Some(warning), false) = (props.unsent_warning(), quiet) {
        print_stderr(warning);
    }
}

/// Prints messages as mosquitto_sub does.
#[derive(Debug)]
pub struct Printer {
    output: Output,
    no_eol: bool,
    /// `--random-filter`: the chance (0 to 1) that a message is printed.
    chance: Option<f64>,
    rng: u64,
    /// `-d`: messages are printed once their acknowledgement is traced.
    trace: Option<Arc<Trace>>,
}

impl Printer {
    /// A printer for these output flags.
    pub fn new(
        output: Output,
        args: &OutputArgs,
        random_filter: Option<f64>,
        trace: Option<Arc<Trace>>,
    ) -> Self {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64)
            | 1;
        Self {
            output,
            no_eol: args.no_eol,
            chance: random_filter.map(|p| p / 100.0),
            rng: seed ^ u64::from(std::process::id()),
            trace,
        }
    }

    /// Prints one message (unless `--random-filter` skips it); `false` once stdout is
    /// closed. Subscription identifiers are not shown: the client numbers its
    /// subscriptions itself (`-D subscribe subscription-identifier` is not sent), so they
    /// are not the user's.
    pub async fn print(&mut self, mut message: Message) -> bool {
        message.properties.subscription_identifiers.clear();
        if let (Some(trace), Some(id)) = (&self.trace, message.packet_id()) {
            trace.settled(id.get()).await;
        }
        if let Some(chance) = self.chance {
            if self.next_random() >= chance {
                return !STDOUT_CLOSED.load(std::sync::atomic::Ordering::Relaxed);
            }
        }
        let mut line = Vec::new();
        let warning = self.output.render(&message, self.no_eol, &mut line);
        if let Some(warning) = warning {
            print_stderr(&warning);
        }
        if line.is_empty() {
            !STDOUT_CLOSED.load(std::sync::atomic::Ordering::Relaxed)
        } else {
            print_stdout(&line)
        }
    }

    /// xorshift64*: a uniform number in [0, 1).
    fn next_random(&mut self) -> f64 {
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        let x = self.rng.wrapping_mul(0x2545_F491_4F6C_DD1D);
        (x >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Subscribes and unsubscribes (`-U`) while the first connection is made, so the
/// subscription is routed before a resumed session's queued messages arrive. `None` when
/// there is nothing to receive (`-E`, or only `-U`).
async fn subscribe(
    client: &Client,
    args: &SubArgs,
    topics: &[String],
    requests: &Requests,
    connected: FirstConnection,
    version: mqtt_client_tokio::ProtocolVersion,
) -> Result<Option<Subscription>, Failure> {
    // As mosquitto_sub: one SUBSCRIBE, then one UNSUBSCRIBE per -U filter, all sent before
    // any is acknowledged.
    let work = async {
        let subscribing = async {
            if topics.is_empty() {
                return Ok(None);
            }
            subscribe_all(client, topics, args.qos, requests.subscribe.clone())
                .await
                .map(Some)
        };
        let unsubscribing = in_order(args.unsubscribe.iter().map(|filter| async move {
            client
                .unsubscribe_with([filter.clone()], requests.unsubscribe.clone())
                .await
                .map_err(|e| Failure::operation(&format!("Error unsubscribing from {filter}"), &e))
        }));
        let (subscribed, unsubscribed) = tokio::join!(subscribing, unsubscribing);
        unsubscribed?;
        subscribed
    };
    let Some(subscription) = while_connecting(work, connected, version).await? else {
        return Ok(None);
    };
    let codes = subscription.reason_codes().to_vec();
    if codes.iter().all(|c| c.is_error()) {
        // mosquitto_sub 2.0 says so and exits with 0 (measured).
        return Err(Failure::new(
            Exit::Success,
            "All subscription requests were denied.",
        ));
    }
    Ok((!args.exit_after_subscribe).then_some(subscription))
}

/// Runs the futures together, polling them in order (so commands are queued in order);
/// the first error, once all are done.
async fn in_order<T, F>(futures: impl IntoIterator<Item = F>) -> Result<(), Failure>
where
    F: std::future::Future<Output = Result<T, Failure>>,
{
    let mut futures: Vec<_> = futures.into_iter().map(|f| Some(Box::pin(f))).collect();
    let mut first_error = None;
    std::future::poll_fn(|cx| {
        let mut done = true;
        for slot in &mut futures {
            if let Some(future) = slot {
                match future.as_mut().poll(cx) {
                    std::task::Poll::Ready(result) => {
                        if let (Err(e), None) = (result, &first_error) {
                            first_error = Some(e);
                        }
                        *slot = None;
                    }
                    std::task::Poll::Pending => done = false,
                }
            }
        }
        if done {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
    first_error.map_or(Ok(()), Err)
}

/// The `-D subscribe` and `-D unsubscribe` properties.
#[derive(Debug, Default)]
struct Requests {
    subscribe: RequestProperties,
    unsubscribe: RequestProperties,
}

/// Subscribes to every filter at `qos` in one SUBSCRIBE with `properties`.
///
/// # Errors
/// The failure of the subscription.
pub async fn subscribe_all(
    client: &Client,
    topics: &[String],
    qos: QoS,
    properties: RequestProperties,
) -> Result<Subscription, Failure> {
    let filters: Vec<_> = topics
        .iter()
        .map(|t| (t.clone(), SubscriptionOptions::new(qos)))
        .collect();
    client
        .subscribe_with(filters, properties)
        .await
        .map_err(|e| Failure::operation("Error subscribing", &e))
}

/// Runs `work` (commands queued before the connection is up) while the first connection is
/// made; a failed first connection ends the wait with its failure.
///
/// # Errors
/// The connect failure, or the work's.
pub async fn while_connecting<T>(
    work: impl std::future::Future<Output = Result<T, Failure>>,
    mut connected: FirstConnection,
    version: mqtt_client_tokio::ProtocolVersion,
) -> Result<T, Failure> {
    tokio::pin!(work);
    // `biased`: the work is polled first, which queues its command before the connection is
    // up; a failed first connection ends the wait.
    tokio::select! {
        biased;
        result = &mut work => match (result, connected.try_recv()) {
            (Err(_), Ok(Err(e))) => Err(Failure::connect(&e, version)),
            (result, _) => result,
        },
        first = &mut connected => match first {
            Ok(Ok(())) => work.await,
            Ok(Err(e)) => Err(Failure::connect(&e, version)),
            Err(_) => Err(Failure::new(Exit::Error, "Error: the client stopped")),
        },
    }
}

/// Prints messages until `-C`, `-W`, `--retained-only`, Ctrl-C, a closed stdout or the
/// client stops.
async fn receive(
    client: &Client,
    mut subscription: Subscription,
    args: &SubArgs,
    mut printer: Printer,
    deadline: Option<Instant>,
) -> Result<(), Failure> {
    let mut counted = 0u64;
    loop {
        if args.count.is_some_and(|c| counted >= c) {
            return Ok(());
        }
        let message = tokio::select! {
            m = subscription.recv() => m,
            () = wait(deadline) => {
                return Err(Failure::new(Exit::Timeout, "Timed out"));
            }
            _ = tokio::signal::ctrl_c() => return Ok(()),
            // `-d` and stdout closed (e.g. `| head -1`): nobody wants more.
            () = stdout_closed() => return Ok(()),
        };
        let Some(message) = message else {
            return Err(Failure::new(Exit::Error, "Error: The connection was lost."));
        };
        // --session-dir: acknowledged once handled, whichever way (manual acks).
        let ack = args.conn.session_dir.is_some().then(|| message.clone());
        let flow = handle(client, message, args, &mut printer).await;
        if let Some(m) = ack {
            if let Err(e) = client.ack(&m).await {
                print_stderr(&format!("Error acknowledging a message: {e}"));
            }
        }
        match flow {
            Flow::Skipped => continue,
            Flow::Printed => {}
            Flow::Stop => return Ok(()),
        }
        counted += 1;
    }
}

/// What became of a received message.
enum Flow {
    Printed,
    Skipped,
    /// Nothing more to print: `--retained-only` past the retained messages, or stdout
    /// closed.
    Stop,
}

async fn handle(client: &Client, message: Message, args: &SubArgs, printer: &mut Printer) -> Flow {
    if filtered_out(&message, args) {
        return Flow::Skipped;
    }
    if args.remove_retained && message.retain {
        let clear = Message::new(message.topic.clone(), Vec::new(), QoS::AtLeastOnce).retain(true);
        let _ = client.publish_queued(clear).await;
    }
    if args.retained_only && !message.retain {
        return Flow::Stop;
    }
    if args.output.no_retained && message.retain {
        return Flow::Skipped;
    }
    if !printer.print(message).await {
        // Stdout closed (e.g. `| head -1`): nobody wants more.
        return Flow::Stop;
    }
    Flow::Printed
}

/// Sleeps until the deadline, or for ever.
pub async fn wait(deadline: Option<Instant>) {
    match deadline {
        Some(at) => sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// `-T` filtering.
fn filtered_out(message: &Message, args: &SubArgs) -> bool {
    args.filter_out
        .iter()
        .any(|filter| topic_matches(filter, &message.topic))
}

/// Whether `topic` matches the filter `filter` (`+` one level, `#` the rest).
pub fn topic_matches(filter: &str, topic: &str) -> bool {
    let mut levels = topic.split('/');
    for f in filter.split('/') {
        match (f, levels.next()) {
            ("#", _) => return true,
            ("+", Some(_)) => {}
            (f, Some(t)) if f == t => {}
            _ => return false,
        }
    }
    levels.next().is_none()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_filter_keeps_about_the_share_asked_for() {
        let args = OutputArgs {
            verbose: false,
            no_eol: false,
            no_retained: false,
            json: false,
            pretty: false,
            format: None,
        };
        let mut printer = Printer::new(Output::Plain { verbose: false }, &args, Some(25.0), None);
        let chance = printer.chance.unwrap();
        let kept = (0..10_000)
            .filter(|_| printer.next_random() < chance)
            .count();
        assert!((2_000..3_000).contains(&kept), "{kept}");
    }

    #[test]
    fn filters_match_like_a_broker() {
        assert!(topic_matches("a/#", "a/b/c"));
        assert!(topic_matches("a/#", "a"));
        assert!(topic_matches("a/+/c", "a/b/c"));
        assert!(!topic_matches("a/+", "a/b/c"));
        assert!(!topic_matches("a/b", "a"));
        assert!(topic_matches("#", "x"));
    }
}
