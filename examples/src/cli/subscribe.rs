//! `mqtt sub`.

use std::io::Write;

use mqtt_client_tokio::{Client, Message, Subscription, SubscriptionOptions};
use tokio::time::{sleep_until, Duration, Instant};

use super::args::SubArgs;
use super::connect::{FirstConnection, Plan};
use super::exit::{Exit, Failure};
use super::format::Output;
use super::props::PropertySet;

/// Runs `mqtt sub`.
///
/// # Errors
/// A failure with its exit code.
pub async fn run(args: SubArgs) -> Result<(), Failure> {
    let props = PropertySet::parse(&args.conn.properties).map_err(Failure::usage)?;
    if !props.publish.eq(&Default::default()) {
        return Err(Failure::usage("-D publish properties belong to `mqtt pub`"));
    }
    let plan = Plan::new(&args.conn, &props)?;
    let mut topics = args.topics.clone();
    if topics.is_empty() {
        topics.extend(plan.url_topic.clone());
    }
    if topics.is_empty() && !args.exit_after_subscribe {
        return Err(Failure::usage("no topic: give -t FILTER (repeatable)"));
    }
    for filter in topics.iter().chain(&args.unsubscribe) {
        mqtt_sansio::TopicFilter::new(filter)
            .map_err(|e| Failure::usage(format!("invalid topic filter {filter:?}: {e}")))?;
    }
    let output = match (&args.format, args.json) {
        (Some(format), _) => Output::Format(format.clone()),
        (None, true) => Output::Json,
        (None, false) => Output::Plain {
            verbose: args.verbose,
        },
    };
    let (session, connected) = plan.start(args.conn.debug)?;
    let outcome = match subscribe(&session.client, &args, &topics, connected).await {
        Ok(Some(subscription)) => {
            let deadline = args
                .timeout
                .map(|secs| Instant::now() + Duration::from_secs(secs));
            receive(subscription, &args, &output, deadline).await
        }
        Ok(None) => Ok(()),
        Err(e) => Err(e),
    };
    session.close().await;
    outcome
}

/// Unsubscribes (`-U`) and subscribes while the first connection is made, so the
/// subscription is routed before a resumed session's queued messages arrive. `None` when
/// there is nothing to receive (`-E`, or only `-U`).
async fn subscribe(
    client: &Client,
    args: &SubArgs,
    topics: &[String],
    mut connected: FirstConnection,
) -> Result<Option<Subscription>, Failure> {
    let work = async {
        for filter in &args.unsubscribe {
            client.unsubscribe(filter.clone()).await.map_err(|e| {
                Failure::operation(&format!("Error unsubscribing from {filter}"), &e)
            })?;
        }
        if topics.is_empty() {
            return Ok(None);
        }
        let filters: Vec<_> = topics
            .iter()
            .map(|t| (t.clone(), SubscriptionOptions::new(args.qos)))
            .collect();
        client
            .subscribe_many(filters)
            .await
            .map(Some)
            .map_err(|e| Failure::operation("Error subscribing", &e))
    };
    tokio::pin!(work);
    // `biased`: the work is polled first, which queues its command before the connection is
    // up; a failed first connection ends the wait.
    let subscription = tokio::select! {
        biased;
        result = &mut work => match (result, connected.try_recv()) {
            (Err(_), Ok(Err(e))) => return Err(Failure::connect(&e)),
            (result, _) => result?,
        },
        first = &mut connected => match first {
            Ok(Ok(())) => work.await?,
            Ok(Err(e)) => return Err(Failure::connect(&e)),
            Err(_) => return Err(Failure::new(Exit::Error, "the client stopped")),
        },
    };
    let Some(subscription) = subscription else {
        return Ok(None);
    };
    let codes = subscription.reason_codes().to_vec();
    for (topic, code) in topics.iter().zip(&codes) {
        if code.is_error() && !args.conn.quiet {
            eprintln!("Subscription to {topic} refused: {code:?}");
        }
    }
    if codes.iter().all(|c| c.is_error()) {
        return Err(Failure::new(
            Exit::SubscriptionRefused,
            "All subscription requests were denied.",
        ));
    }
    Ok((!args.exit_after_subscribe).then_some(subscription))
}

/// Prints messages until `-C`, `-W`, `--retained-only`, Ctrl-C or the client stops.
async fn receive(
    mut subscription: Subscription,
    args: &SubArgs,
    output: &Output,
    deadline: Option<Instant>,
) -> Result<(), Failure> {
    let mut printed = 0u64;
    let mut stdout = std::io::stdout().lock();
    let mut line = Vec::new();
    loop {
        if args.count.is_some_and(|c| printed >= c) {
            return Ok(());
        }
        let message = tokio::select! {
            m = subscription.recv() => m,
            () = wait(deadline) => {
                return Err(Failure::new(Exit::Timeout, "Timed out"));
            }
            _ = tokio::signal::ctrl_c() => return Ok(()),
        };
        let Some(message) = message else {
            return Err(Failure::new(Exit::Error, "the client stopped"));
        };
        if args.retained_only && !message.retain {
            return Ok(());
        }
        if !wanted(&message, args) {
            continue;
        }
        line.clear();
        output.render(&message, args.no_eol, &mut line);
        if stdout
            .write_all(&line)
            .and_then(|()| stdout.flush())
            .is_err()
        {
            // Stdout closed (e.g. `| head -1`): nobody wants more.
            return Ok(());
        }
        printed += 1;
    }
}

/// Sleeps until the deadline, or for ever.
async fn wait(deadline: Option<Instant>) {
    match deadline {
        Some(at) => sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// `-R` and `-T` filtering.
fn wanted(message: &Message, args: &SubArgs) -> bool {
    if args.no_retained && message.retain {
        return false;
    }
    !args
        .filter_out
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
    use super::topic_matches;

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
