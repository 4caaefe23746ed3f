//! `mqtt rr`: mosquitto_rr's request/response. Subscribe to the response topic, publish the
//! request (5.0: with the Response Topic property and any `-D publish` properties, such as
//! correlation-data), print the first message that arrives on the response topic, leave.

use mqtt_client_tokio::{Message, Properties, ProtocolVersion};
use tokio::time::{Duration, Instant};

use super::args::RrArgs;
use super::connect::{Kind, Plan};
use super::exit::{reason_text, Exit, Failure};
use super::props::{PropertySet, Request};
use super::publish::{source, Source};
use super::subscribe::{output, subscribe_all, wait, warn_unsent, while_connecting, Printer};
use super::trace::stdout_closed;

/// Runs `mqtt rr`.
///
/// # Errors
/// A failure with its exit code.
pub async fn run(args: RrArgs) -> Result<(), Failure> {
    let props = PropertySet::parse(&args.conn.properties).map_err(Failure::usage)?;
    let output = output(&args.output)?;
    let plan = Plan::new(&args.conn, &props, Kind::Rr)?;
    let topic = args.topic.clone().or_else(|| plan.url_topic.clone());
    let given = [
        args.source.message.is_some(),
        args.source.file.is_some(),
        args.source.stdin_line,
        args.source.stdin_file,
        args.source.null_message,
    ];
    let (Some(topic), Some(response_topic), true) =
        (topic, args.response_topic.clone(), given.contains(&true))
    else {
        return Err(Failure::usage(
            "Error: All of topic, message, and response topic must be supplied.",
        ));
    };
    mqtt_sansio::TopicName::new(&topic).map_err(|_| {
        Failure::usage(format!(
            "Error: Invalid publish topic '{topic}', does it contain '+' or '#'?"
        ))
    })?;
    mqtt_sansio::TopicName::new(&response_topic).map_err(|_| {
        Failure::usage(format!(
            "Error: Invalid response topic '{response_topic}', does it contain '+' or '#'?"
        ))
    })?;
    let payload = match source(&args.source)? {
        Source::One(payload) => payload,
        Source::Lines => {
            return Err(Failure::usage(
                "Error: -l is not supported by rr (mosquitto_rr ignores it too)",
            ))
        }
    };
    let properties = request_properties(&props, &response_topic, plan.version)?;
    warn_unsent(&props, args.conn.quiet);
    let version = plan.version;
    let trace = plan.trace.clone();
    let (session, connected) = plan.start()?;
    let deadline = args
        .timeout
        .map(|secs| Instant::now() + Duration::from_secs(secs));
    let client = &session.client;
    let request = Message::new(topic, payload, args.qos).properties(properties);
    let work = async {
        let subscription = subscribe_all(
            client,
            std::slice::from_ref(&response_topic),
            args.qos,
            props.request(Request::Subscribe),
        )
        .await?;
        if let Some(code) = subscription.reason_codes().first().filter(|c| c.is_error()) {
            return Err(Failure::new(
                Exit::Error,
                super::exit::reason_string(*code).to_string(),
            ));
        }
        // Fire and forget, as mosquitto_rr: the response tells that the request arrived.
        let _delivery = client
            .publish_queued(request)
            .await
            .map_err(|e| Failure::operation("Error publishing", &e))?;
        Ok(subscription)
    };
    let outcome = tokio::select! {
        subscribed = while_connecting(work, connected, version) => match subscribed {
            Ok(mut subscription) => {
                let mut printer = Printer::new(output, &args.output, None, trace);
                tokio::select! {
                    message = response(&mut subscription, args.output.no_retained) => match message {
                        Some(message) => {
                            printer.print(message).await;
                            Ok(())
                        }
                        None => Err(Failure::new(Exit::Error, "Error: The connection was lost.")),
                    },
                    () = wait(deadline) => Err(Failure::new(Exit::Timeout, "Timed out")),
                }
            }
            Err(e) => Err(e),
        },
        () = wait(deadline) => Err(Failure::new(Exit::Timeout, "Timed out")),
        _ = tokio::signal::ctrl_c() => Ok(()),
        () = stdout_closed() => Ok(()),
    };
    session.close().await;
    outcome.map_err(|f| rr_words(f, version))
}

/// mosquitto_rr words a refused 3.1.1 connection with the 5.0 reason string of the 3.1.1
/// return code ("Unknown reason" for 5): the same failure, in its words.
fn rr_words(mut failure: Failure, version: ProtocolVersion) -> Failure {
    if let (Exit::ConnectionRefused(code), false) = (failure.exit, version == ProtocolVersion::V5) {
        failure.message = format!("Connection error: {}", reason_text(code));
    }
    failure
}

/// The first message on the response topic (skipping retained ones with `-R`).
async fn response(
    subscription: &mut mqtt_client_tokio::Subscription,
    no_retained: bool,
) -> Option<Message> {
    loop {
        let message = subscription.recv().await?;
        if !(no_retained && message.retain) {
            return Some(message);
        }
    }
}

/// The request's properties: the `-D publish` ones and, on 5.0, the response topic.
fn request_properties(
    props: &PropertySet,
    response_topic: &str,
    version: ProtocolVersion,
) -> Result<Properties, Failure> {
    if version != ProtocolVersion::V5 {
        return Ok(Properties::default());
    }
    if props.publish.response_topic.is_some() {
        return Err(Failure::usage(
            "Error in PUBLISH properties: Duplicate response topic.",
        ));
    }
    let mut properties = props.publish.clone();
    properties.response_topic = Some(response_topic.to_string());
    Ok(properties)
}
