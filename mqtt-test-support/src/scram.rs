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
