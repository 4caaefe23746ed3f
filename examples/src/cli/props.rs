//! `-D COMMAND IDENTIFIER VALUE`: MQTT 5.0 properties, in mosquitto's spelling.

use mqtt_client_tokio::{Bytes, Properties};

/// The properties given with `-D`, by the packet they go into.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PropertySet {
    /// CONNECT.
    pub connect: ConnectProperties,
    /// Every PUBLISH of `mqtt pub`.
    pub publish: Properties,
    /// The will message.
    pub will: Properties,
    /// The will's delay interval.
    pub will_delay_interval: Option<u32>,
    /// DISCONNECT: a new session expiry interval.
    pub disconnect_session_expiry: Option<u32>,
    /// DISCONNECT: a reason string.
    pub disconnect_reason_string: Option<String>,
    /// SUBSCRIBE: user properties (parsed; see [`PropertySet::unsent_warning`]).
    pub subscribe_user_properties: Vec<(String, String)>,
    /// SUBSCRIBE: a subscription identifier (parsed; the client assigns its own).
    pub subscription_identifier: Option<u32>,
    /// UNSUBSCRIBE: user properties (parsed; see [`PropertySet::unsent_warning`]).
    pub unsubscribe_user_properties: Vec<(String, String)>,
}

/// The CONNECT properties a client may set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConnectProperties {
    /// Session expiry interval (same as `-x`).
    pub session_expiry_interval: Option<u32>,
    /// Receive maximum.
    pub receive_maximum: Option<u16>,
    /// Maximum packet size.
    pub maximum_packet_size: Option<u32>,
    /// Topic alias maximum.
    pub topic_alias_maximum: Option<u16>,
    /// User properties.
    pub user_properties: Vec<(String, String)>,
}

/// Which request's properties.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    /// SUBSCRIBE.
    Subscribe,
    /// UNSUBSCRIBE.
    Unsubscribe,
}

impl PropertySet {
    /// Parses the `-D` groups (3 or 4 words each).
    ///
    /// # Errors
    /// A message naming the group that is unknown, unsupported or has a bad value.
    pub fn parse(groups: &[Vec<String>]) -> Result<Self, String> {
        let mut set = Self::default();
        for group in groups {
            set.add(group)
                .map_err(|e| format!("-D {}: {e}", group.join(" ")))?;
        }
        Ok(set)
    }

    fn add(&mut self, group: &[String]) -> Result<(), String> {
        let (command, identifier, values) = match group {
            [c, i, rest @ ..] => (c.to_ascii_lowercase(), i.to_ascii_lowercase(), rest),
            _ => return Err("needs COMMAND IDENTIFIER VALUE".into()),
        };
        let value = match (identifier.as_str(), values) {
            ("user-property", [name, value]) => {
                let pair = (name.clone(), value.clone());
                let list = match command.as_str() {
                    "connect" => &mut self.connect.user_properties,
                    "publish" => &mut self.publish.user_properties,
                    "will" => &mut self.will.user_properties,
                    "subscribe" => &mut self.subscribe_user_properties,
                    "unsubscribe" => &mut self.unsubscribe_user_properties,
                    _ => return Err(unsupported(&command)),
                };
                list.push(pair);
                return Ok(());
            }
            ("user-property", _) => return Err("user-property needs NAME VALUE".into()),
            (_, [value]) => value.as_str(),
            _ => return Err(format!("{identifier} takes one value")),
        };
        match command.as_str() {
            "connect" => self.add_connect(&identifier, value),
            "publish" => message_property(&mut self.publish, &identifier, value),
            "will" if identifier == "will-delay-interval" => {
                self.will_delay_interval = Some(number(value)?);
                Ok(())
            }
            "will" => message_property(&mut self.will, &identifier, value),
            "subscribe" if identifier == "subscription-identifier" => {
                match number::<u32>(value)? {
                    1..=268_435_455 => self.subscription_identifier = number(value).ok(),
                    _ => return Err("subscription-identifier is 1 to 268435455".into()),
                }
                Ok(())
            }
            "subscribe" | "unsubscribe" => Err(unknown(&identifier, &command)),
            "disconnect" => match identifier.as_str() {
                "session-expiry-interval" => {
                    self.disconnect_session_expiry = Some(number(value)?);
                    Ok(())
                }
                "reason-string" => {
                    self.disconnect_reason_string = Some(value.to_string());
                    Ok(())
                }
                _ => Err(unknown(&identifier, &command)),
            },
            _ => Err(unsupported(&command)),
        }
    }

    fn add_connect(&mut self, identifier: &str, value: &str) -> Result<(), String> {
        let c = &mut self.connect;
        match identifier {
            "session-expiry-interval" => c.session_expiry_interval = Some(number(value)?),
            "receive-maximum" => c.receive_maximum = Some(number(value)?),
            "maximum-packet-size" => c.maximum_packet_size = Some(number(value)?),
            "topic-alias-maximum" => c.topic_alias_maximum = Some(number(value)?),
            _ => return Err(unknown(identifier, "connect")),
        }
        Ok(())
    }

    /// The `-D subscribe` or `-D unsubscribe` properties, for the client.
    pub fn request(&self, which: Request) -> mqtt_client_tokio::RequestProperties {
        let mut properties = mqtt_client_tokio::RequestProperties::new();
        properties.user_properties = match which {
            Request::Subscribe => self.subscribe_user_properties.clone(),
            Request::Unsubscribe => self.unsubscribe_user_properties.clone(),
        };
        properties
    }

    /// The warning to print when a subscription identifier was given: mqtt-client-tokio
    /// numbers subscriptions itself, to route messages to their streams.
    pub fn unsent_warning(&self) -> Option<&'static str> {
        self.subscription_identifier.is_some().then_some(
            "Warning: -D subscribe subscription-identifier is accepted but not sent \
             (the client library numbers subscriptions itself).",
        )
    }

    /// Whether any property was given (they need MQTT 5.0).
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// A property of PUBLISH or of the will.
fn message_property(p: &mut Properties, identifier: &str, value: &str) -> Result<(), String> {
    match identifier {
        "payload-format-indicator" => {
            p.payload_format_indicator = Some(match value {
                "0" => false,
                "1" => true,
                _ => return Err("payload-format-indicator is 0 or 1".into()),
            });
        }
        "message-expiry-interval" => p.message_expiry_interval = Some(number(value)?),
        "content-type" => p.content_type = Some(value.to_string()),
        "response-topic" => p.response_topic = Some(value.to_string()),
        "correlation-data" => p.correlation_data = Some(Bytes::from(value.to_string())),
        "topic-alias" => {
            return Err("topic aliases are assigned by the client itself".into());
        }
        _ => return Err(unknown(identifier, "publish")),
    }
    Ok(())
}

fn number<T: std::str::FromStr>(value: &str) -> Result<T, String> {
    value
        .parse()
        .map_err(|_| format!("{value:?} is not a valid number here"))
}

fn unknown(identifier: &str, command: &str) -> String {
    format!("property {identifier:?} is unknown or not supported for {command}")
}

fn unsupported(command: &str) -> String {
    format!(
        "properties of {command:?} are not supported (connect, publish, subscribe, \
         unsubscribe, will, disconnect)"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn groups(words: &[&[&str]]) -> Vec<Vec<String>> {
        words
            .iter()
            .map(|g| g.iter().map(|s| s.to_string()).collect())
            .collect()
    }

    #[test]
    fn parses_publish_will_connect_and_disconnect_properties() {
        let set = PropertySet::parse(&groups(&[
            &["publish", "user-property", "k", "v"],
            &["publish", "message-expiry-interval", "60"],
            &["PUBLISH", "content-type", "text/plain"],
            &["publish", "response-topic", "r/t"],
            &["publish", "correlation-data", "abc"],
            &["publish", "payload-format-indicator", "1"],
            &["will", "will-delay-interval", "5"],
            &["will", "content-type", "x"],
            &["connect", "receive-maximum", "10"],
            &["connect", "user-property", "a", "b"],
            &["disconnect", "reason-string", "bye"],
        ]))
        .unwrap();
        assert_eq!(set.publish.user_properties, [("k".into(), "v".into())]);
        assert_eq!(set.publish.message_expiry_interval, Some(60));
        assert_eq!(set.publish.content_type.as_deref(), Some("text/plain"));
        assert_eq!(set.publish.response_topic.as_deref(), Some("r/t"));
        assert_eq!(set.publish.correlation_data.as_deref(), Some(&b"abc"[..]));
        assert_eq!(set.publish.payload_format_indicator, Some(true));
        assert_eq!(set.will_delay_interval, Some(5));
        assert_eq!(set.will.content_type.as_deref(), Some("x"));
        assert_eq!(set.connect.receive_maximum, Some(10));
        assert_eq!(set.connect.user_properties.len(), 1);
        assert_eq!(set.disconnect_reason_string.as_deref(), Some("bye"));
        assert!(!set.is_empty());
    }

    #[test]
    fn refuses_unknown_and_malformed_properties() {
        for bad in [
            &["publish", "no-such-thing", "1"][..],
            &["publish", "message-expiry-interval", "soon"],
            &["publish", "user-property", "k"],
            &["publish", "content-type", "a", "b"],
            &["publish", "topic-alias", "3"],
            &["auth", "user-property", "k", "v"],
            &["subscribe", "content-type", "x"],
            &["connect", "receive-maximum", "70000"],
        ] {
            assert!(PropertySet::parse(&groups(&[bad])).is_err(), "{bad:?}");
        }
        assert!(PropertySet::parse(&[]).unwrap().is_empty());
        let set = PropertySet::parse(&groups(&[
            &["subscribe", "user-property", "k", "v"],
            &["subscribe", "subscription-identifier", "7"],
            &["unsubscribe", "user-property", "a", "b"],
        ]))
        .unwrap();
        assert_eq!(set.subscription_identifier, Some(7));
        assert!(set.unsent_warning().is_some());
    }
}
