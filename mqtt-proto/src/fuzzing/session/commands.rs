//! The application's commands.

use core::num::{NonZeroU16, NonZeroU32};
use std::vec::Vec;

use super::{filter, qos, text, topic_name, Fuzz, Input, Pending, PAYLOAD, TOPICS};
use crate::session::{CommandError, Message};
use crate::{
    Auth, AuthProperties, Connect, Disconnect, DisconnectProperties, PacketId, PublishProperties,
    QoS, ReasonCode, Seq, SubscribeProperties, Subscription, SubscriptionOptions,
    UnsubscribeProperties, Will, WillProperties,
};

impl Fuzz {
    pub(super) fn connect(&mut self, i: &mut Input<'_>) {
        let flags = i.byte();
        let client_id = i.string(32);
        let mut c = Connect::new(self.version, client_id);
        c.clean_start = flags & 1 != 0;
        c.keep_alive = match (flags >> 1) & 3 {
            0 => 0,
            1 => 1,
            2 => 10,
            _ => i.u16(),
        };
        if flags & 8 != 0 {
            let len = usize::from(i.byte());
            c.will = Some(Will {
                topic: topic_name(TOPICS[0]),
                payload: &PAYLOAD[..len],
                qos: qos(i.byte()),
                retain: flags & 0x80 != 0,
                properties: WillProperties::default(),
            });
        }
        if flags & 16 != 0 {
            c.username = Some("user");
            c.password = Some(b"secret");
        }
        if self.v5() {
            if flags & 32 != 0 {
                c.properties.session_expiry_interval = Some(i.u32());
            }
            if flags & 64 != 0 {
                c.properties.authentication_method = Some("SCRAM-SHA-256");
                c.properties.authentication_data = Some(i.take(16));
            }
        }
        let _ = self.s.connect(&c);
    }

    pub(super) fn publish(&mut self, i: &mut Input<'_>) {
        let flags = i.byte();
        let len = match i.byte() {
            n @ 0..=199 => usize::from(n),
            200..=254 => usize::from(i.u16() % 4096),
            255 => PAYLOAD.len(),
        };
        let topic = self.topic(flags >> 3, i);
        let mut message = Message::new(topic, &PAYLOAD[..len], qos(flags));
        message.retain = flags & 4 != 0;
        let managed = flags & 0x40 != 0;
        if flags & 0x20 != 0 {
            message.properties = PublishProperties {
                message_expiry_interval: Some(60),
                response_topic: Some(topic_name("a/reply")),
                correlation_data: Some(b"id-1"),
                content_type: Some("text/plain"),
                user_properties: Seq::from_slice(&[("k", "v")]),
                ..PublishProperties::default()
            };
        }
        if managed {
            message.properties.topic_alias = NonZeroU16::new(1);
        }
        if flags & 0x80 != 0 {
            self.publish_streamed(&message, managed);
        } else {
            self.publish_message(&message, managed);
        }
    }

    /// `message` queued with its payload streamed: the log keeps the header, and the
    /// driver supplies the bytes as they go out.
    fn publish_streamed(&mut self, message: &Message<'_>, managed: bool) {
        let before = self.s.store_usage().0;
        match self.s.publish_streamed(message, message.payload.len()) {
            Ok(pid) => {
                assert!(!managed, "publish_streamed took a topic alias");
                let header_only = self.s.store_usage().0.saturating_sub(before);
                assert!(
                    header_only < 12 + 5 + 2 + 64 + 2 + 200 || message.payload.is_empty(),
                    "a streamed publish stored {header_only} bytes"
                );
                assert_eq!(pid.is_some(), message.qos != QoS::AtMostOnce);
                if let Some(pid) = pid {
                    self.issued(pid, Pending::Publish);
                    self.streamed.insert(pid.get());
                }
            }
            Err(CommandError::StoreFull { .. }) => {
                let after = self.s.store_usage().0;
                assert!(after <= before, "a refused publish grew the store");
            }
            Err(_) => {}
        }
    }

    pub(super) fn publish_message(&mut self, message: &Message<'_>, managed: bool) {
        let before = self.s.store_usage().0;
        match self.s.publish(message) {
            Ok(pid) => {
                assert!(!managed, "publish took a topic alias");
                assert_eq!(
                    pid.is_some(),
                    message.qos != QoS::AtMostOnce,
                    "packet id {pid:?} for {:?}",
                    message.qos
                );
                if let Some(pid) = pid {
                    self.issued(pid, Pending::Publish);
                }
            }
            Err(CommandError::StoreFull { .. }) => {
                let after = self.s.store_usage().0;
                assert!(after <= before, "a refused publish grew the store");
            }
            Err(_) => {}
        }
    }

    pub(super) fn subscribe(&mut self, i: &mut Input<'_>) {
        let flags = i.byte();
        let subscriptions: Vec<_> = (0..flags & 3)
            .map(|_| {
                let b = i.byte();
                let mut options = SubscriptionOptions::new(qos(b >> 4));
                if self.v5() || b & 0x80 != 0 {
                    options.no_local = b & 0x40 != 0;
                    options.retain_as_published = b & 0x20 != 0;
                }
                Subscription {
                    filter: filter(b & 15),
                    options,
                }
            })
            .collect();
        let mut properties = SubscribeProperties::default();
        if flags & 4 != 0 {
            properties.subscription_identifier = NonZeroU32::new(u32::from(i.byte()) + 1);
        }
        if let Ok(pid) = self.s.subscribe(&subscriptions, properties) {
            self.issued(pid, Pending::Subscribe);
        }
    }

    pub(super) fn unsubscribe(&mut self, i: &mut Input<'_>) {
        let flags = i.byte();
        let filters: Vec<_> = (0..flags & 3).map(|_| filter(i.byte())).collect();
        if let Ok(pid) = self
            .s
            .unsubscribe(&filters, UnsubscribeProperties::default())
        {
            self.issued(pid, Pending::Unsubscribe);
        }
    }

    pub(super) fn ack(&mut self, i: &mut Input<'_>) {
        let selector = i.byte();
        let pid = match self.delivered.pick(selector) {
            Some(pid) if selector < 224 => pid,
            _ => i.u16(),
        };
        if let Some(pid) = PacketId::new(pid) {
            let _ = self.s.ack(pid);
        }
    }

    pub(super) fn disconnect(&mut self, i: &mut Input<'_>) {
        let flags = i.byte();
        let reason_code = [
            ReasonCode::Success,
            ReasonCode::DisconnectWithWillMessage,
            ReasonCode::UnspecifiedError,
            ReasonCode::GrantedQoS1,
        ][usize::from(flags & 3)];
        let mut d = Disconnect::new(reason_code);
        if flags & 4 != 0 {
            d.properties = DisconnectProperties {
                session_expiry_interval: Some(0),
                reason_string: Some(text(usize::from(i.u16()))),
                ..DisconnectProperties::default()
            };
        }
        let _ = self.s.disconnect(&d);
    }

    pub(super) fn auth(&mut self, i: &mut Input<'_>) {
        let flags = i.byte();
        let reason_code = [
            ReasonCode::ContinueAuthentication,
            ReasonCode::ReAuthenticate,
            ReasonCode::Success,
            ReasonCode::ContinueAuthentication,
        ][usize::from(flags & 3)];
        let len = usize::from(i.byte());
        let a = Auth {
            reason_code,
            properties: AuthProperties {
                authentication_method: Some("SCRAM-SHA-256").filter(|_| flags & 4 == 0),
                authentication_data: Some(i.take(len)),
                ..AuthProperties::default()
            },
        };
        let _ = self.s.auth(&a);
    }

    /// Records a packet id the session handed out: it must not name anything outstanding.
    pub(super) fn issued(&mut self, pid: PacketId, kind: Pending) {
        if let Some(old) = self.outstanding.insert(pid.get(), kind) {
            panic!("packet id {pid:?} issued for a {kind:?} while a {old:?} holds it");
        }
    }

    /// Records the completion of a packet id: it must be outstanding, for `kind`.
    pub(super) fn finished(&mut self, pid: PacketId, kind: Pending) {
        if kind == Pending::Publish {
            self.streamed.remove(&pid.get());
        }
        match self.outstanding.remove(&pid.get()) {
            Some(k) if k == kind => {}
            other => panic!("{kind:?} completed under packet id {pid:?}, which held {other:?}"),
        }
    }
}
