//! 5.0 enhanced authentication: the hook a mechanism implements, and SCRAM-SHA-256 (feature
//! `scram`) as a ready one.
//!
//! The clients drive an [`Authenticator`]: its method and first data go into CONNECT, each
//! AUTH with Continue Authentication from the broker is answered with its response, and the
//! broker's last data (in CONNACK, or in AUTH Success after a re-authentication) is checked, so
//! that a client also knows it talks to a broker that holds the credentials. Everything runs on
//! caller buffers: no allocation.

#[cfg(feature = "scram")]
mod scram;

#[cfg(feature = "scram")]
pub use scram::ScramSha256;

/// Why an authentication step failed. The connection should end: the broker or the
/// credentials cannot be trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum AuthError {
    /// The output buffer is too small for the step's data.
    #[error("authentication data does not fit the buffer")]
    BufferTooSmall,
    /// The broker's data does not follow the mechanism.
    #[error("malformed authentication data from the broker")]
    Malformed,
    /// The broker's nonce does not extend ours (a replay or a man in the middle).
    #[error("the broker's nonce does not extend ours")]
    NonceMismatch,
    /// The broker asks for more key-stretching work than allowed.
    #[error("the broker asks for too many iterations")]
    TooManyIterations,
    /// The broker's final proof is wrong: it does not know the credentials.
    #[error("the broker could not prove it knows the credentials")]
    ServerNotVerified,
    /// The broker refused the credentials (its error message in the exchange).
    #[error("the broker refused the credentials")]
    Refused,
    /// A step came out of order.
    #[error("authentication step out of order")]
    OutOfOrder,
}

/// An enhanced-authentication mechanism, driven by a client across one exchange: a new
/// connection or a re-authentication.
pub trait Authenticator {
    /// The Authentication Method named in CONNECT and every AUTH, e.g. `SCRAM-SHA-256`.
    fn method(&self) -> &str;

    /// Starts an exchange: writes the data sent with CONNECT (or with a re-authentication's
    /// first AUTH) into `out` and returns its length.
    ///
    /// # Errors
    /// [`AuthError::BufferTooSmall`].
    fn start(&mut self, out: &mut [u8]) -> Result<usize, AuthError>;

    /// Answers the broker's challenge (AUTH with Continue Authentication): writes the response
    /// into `out` and returns its length.
    ///
    /// # Errors
    /// The challenge is malformed, out of order, or its demands are refused.
    fn respond(&mut self, challenge: &[u8], out: &mut [u8]) -> Result<usize, AuthError>;

    /// Checks the broker's final data: the Authentication Data of a successful CONNACK, or of
    /// AUTH Success after a re-authentication (`None` when it sent none).
    ///
    /// # Errors
    /// The broker's proof is missing or wrong.
    fn finish(&mut self, outcome: Option<&[u8]>) -> Result<(), AuthError>;
}
