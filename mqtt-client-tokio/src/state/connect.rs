//! What every CONNECT of a client carries, as the state keeps it for the client's life: the
//! part of [`ProtocolOptions`] read after the session is made. Compact, because every idle
//! client holds it: the public options are 440 bytes, most of them a will and 5.0 extras
//! that most clients leave unset, which here are one boxed, optional part.

use bytes::Bytes;
use mqtt_sansio::{Connect, ProtocolVersion, Seq, TopicName, WillProperties};

use crate::message::user_refs;
use crate::options::ProtocolOptions;
use crate::{Error, SharedAuthenticator, Will};

/// The options every CONNECT is made from.
pub(crate) struct ConnectOptions {
    pub(crate) version: ProtocolVersion,
    /// Empty until one is made up or kept (see `State::ensure_client_id`).
    pub(crate) client_id: String,
    pub(crate) clean_start: bool,
    pub(crate) manual_acks: bool,
    /// In whole seconds, as CONNECT carries it.
    keep_alive: u16,
    session_expiry_interval: Option<u32>,
    username: Option<Box<str>>,
    password: Option<Bytes>,
    pub(crate) authenticator: Option<SharedAuthenticator>,
    /// The will and the 5.0 extras, when any is set.
    extras: Option<Box<Extras>>,
}

/// The parts of CONNECT most clients leave unset.
struct Extras {
    will: Option<Will>,
    user_properties: Vec<(String, String)>,
    authentication_method: Option<String>,
    authentication_data: Option<Bytes>,
}

impl ConnectOptions {
    pub(crate) fn new(p: &ProtocolOptions) -> Self {
        let extras = (p.will.is_some()
            || !p.user_properties.is_empty()
            || p.authentication_method.is_some()
            || p.authentication_data.is_some())
        .then(|| {
            Box::new(Extras {
                will: p.will.clone(),
                user_properties: p.user_properties.clone(),
                authentication_method: p.authentication_method.clone(),
                authentication_data: p.authentication_data.clone(),
            })
        });
        Self {
            version: p.version,
            client_id: p.client_id.clone(),
            clean_start: p.clean_start,
            manual_acks: p.manual_acks,
            keep_alive: u16::try_from(p.keep_alive.as_secs()).unwrap_or(u16::MAX),
            session_expiry_interval: p.session_expiry_interval,
            username: p.username.as_deref().map(Box::from),
            password: p.password.clone(),
            authenticator: p.authenticator.clone(),
            extras,
        }
    }

    /// The 5.0 authentication method named in CONNECT (without an authenticator).
    pub(crate) fn authentication_method(&self) -> Option<&str> {
        self.extras.as_ref()?.authentication_method.as_deref()
    }

    /// Runs `f` with the CONNECT these options make; `clean_start` as the session's rule
    /// says for this connection; `auth`, an authenticator's method and first data, in place
    /// of the options' own.
    ///
    /// # Errors
    /// A will topic or response topic that is not a valid topic name.
    pub(crate) fn with_packet<T>(
        &self,
        clean_start: bool,
        auth: Option<(&str, &[u8])>,
        f: impl FnOnce(&Connect<'_>) -> Result<T, Error>,
    ) -> Result<T, Error> {
        let extras = self.extras.as_deref();
        let users = extras.map(|e| user_refs(&e.user_properties));
        let will = extras.and_then(|e| e.will.as_ref());
        let will_users = will.map(|w| user_refs(&w.properties.user_properties));
        let mut c = Connect::new(self.version, &self.client_id);
        c.clean_start = clean_start;
        c.keep_alive = self.keep_alive;
        c.username = self.username.as_deref();
        c.password = self.password.as_deref();
        // 5.0 only: the session leaves the properties out on 3.1.1.
        c.properties.session_expiry_interval = self.session_expiry_interval;
        if let Some(e) = extras {
            c.properties.user_properties = Seq::from_slice(users.as_deref().unwrap_or_default());
            c.properties.authentication_method = e.authentication_method.as_deref();
            c.properties.authentication_data = e.authentication_data.as_deref();
        }
        if let Some((method, data)) = auth {
            c.properties.authentication_method = Some(method);
            c.properties.authentication_data = Some(data);
        }
        if let Some(w) = will {
            let props = WillProperties {
                will_delay_interval: w.delay_interval,
                payload_format_indicator: w.properties.payload_format_indicator,
                message_expiry_interval: w.properties.message_expiry_interval,
                content_type: w.properties.content_type.as_deref(),
                response_topic: match &w.properties.response_topic {
                    Some(t) => Some(TopicName::new(t)?),
                    None => None,
                },
                correlation_data: w.properties.correlation_data.as_deref(),
                user_properties: Seq::from_slice(will_users.as_deref().unwrap_or_default()),
            };
            c.will = Some(mqtt_sansio::Will {
                topic: TopicName::new(&w.topic)?,
                payload: &w.payload,
                qos: w.qos,
                retain: w.retain,
                properties: props,
            });
        }
        f(&c)
    }
}
