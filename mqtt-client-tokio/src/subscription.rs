//! Subscriptions: the stream of one `subscribe` call's messages, and request properties.

use std::pin::Pin;
use std::task::{Context, Poll};

use mqtt_sansio::ReasonCode;
use tokio::sync::mpsc;

use crate::Message;

/// The messages of one subscription, in the order they arrived.
///
/// When a subscription's buffer ([`Policy::subscription_buffer`](crate::Policy)) is full, the
/// client keeps reading (so SUBACK, PINGRESP and PUBREL still get through) and holds the
/// messages for it: QoS 1 and 2 messages are acknowledged only once the stream took them, so
/// the broker's window slows it down and nothing is lost; QoS 0 messages beyond 4,096 held
/// are dropped and reported ([`Event::SlowConsumer`](crate::Event::SlowConsumer)). Dropping the stream stops
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
