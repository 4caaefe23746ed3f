//! RFC 7677's SCRAM-SHA-256 exchange (section 3), for the clients' authentication tests: user
//! `user`, password `pencil`, and the client nonce below fixed in the mechanism.

/// The client's nonce.
pub const CLIENT_NONCE: &[u8] = b"rOprNGfwEbeRWgbNEkqO";
/// The client's first message (CONNECT's Authentication Data).
pub const CLIENT_FIRST: &[u8] = b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO";
/// The server's first message (the challenge in AUTH).
pub const SERVER_FIRST: &[u8] =
    b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
/// The client's final message (the answer in AUTH).
pub const CLIENT_FINAL: &[u8] = b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
    p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
/// The server's final message (CONNACK's Authentication Data).
pub const SERVER_FINAL: &[u8] = b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";

/// The broker's side of the exchange, for scripted brokers: each `check_*` decodes what the
/// client sent and panics unless it is the RFC's message; each `server_*` is the packet the
/// broker answers with.
pub mod broker {
    use mqtt_sansio::{Auth, ConnAck, Decoded, Packet, ProtocolVersion, ReasonCode};

    const METHOD: &str = "SCRAM-SHA-256";

    fn decode(bytes: &[u8]) -> Packet<'_> {
        match Packet::decode(bytes, ProtocolVersion::V5, u32::MAX) {
            Ok(Decoded::Packet { packet, .. }) => packet,
            other => panic!("not one whole packet: {other:?}"),
        }
    }

    /// Checks that `bytes` is a CONNECT carrying SCRAM-SHA-256 and the client's first message.
    pub fn check_client_first(bytes: &[u8]) {
        let Packet::Connect(connect) = decode(bytes) else {
            panic!("expected CONNECT")
        };
        assert_eq!(connect.properties.authentication_method, Some(METHOD));
        assert_eq!(
            connect.properties.authentication_data,
            Some(super::CLIENT_FIRST)
        );
    }

    /// The AUTH (Continue Authentication) that carries the server's first message.
    pub fn server_first() -> Packet<'static> {
        Packet::Auth(Auth::new(
            ReasonCode::ContinueAuthentication,
            METHOD,
            super::SERVER_FIRST,
        ))
    }

    /// Checks that `bytes` is an AUTH carrying the client's final message.
    pub fn check_client_final(bytes: &[u8]) {
        let Packet::Auth(answer) = decode(bytes) else {
            panic!("expected AUTH")
        };
        assert_eq!(
            answer.properties.authentication_data,
            Some(super::CLIENT_FINAL)
        );
    }

    /// The CONNACK that ends the exchange: with the server's true proof when `honest`, with
    /// a wrong one otherwise (which the client must refuse).
    pub fn server_final(honest: bool) -> Packet<'static> {
        let mut ack = ConnAck::new(ReasonCode::Success);
        ack.properties.authentication_method = Some(METHOD);
        ack.properties.authentication_data = Some(if honest {
            super::SERVER_FINAL
        } else {
            b"v=AAAA"
        });
        Packet::ConnAck(ack)
    }
}
