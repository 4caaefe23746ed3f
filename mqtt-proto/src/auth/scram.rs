//! SCRAM-SHA-256 (RFC 5802, RFC 7677), client side, without allocation.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use super::{AuthError, Authenticator};

type HmacSha256 = Hmac<Sha256>;

/// Room for `n=<user>,r=<nonce>`: user names up to about 200 bytes.
const MAX_BARE: usize = 256;
/// Base64 of 18 random bytes.
const NONCE_LEN: usize = 24;
/// Longest salt accepted from the broker, decoded.
const MAX_SALT: usize = 128;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Idle,
    Started,
    Responded,
}

/// SCRAM-SHA-256 with a user name and password: the client proves it knows the password
/// without sending it, and checks that the broker knows it too.
///
/// `U` and `P` hold the user name and password: borrowed (`&str`, `&[u8]`) on a
/// microcontroller, owned (`String`, `Vec<u8>`) where the mechanism must outlive them. The
/// password is used as given (no SASLprep): keep it to ASCII, or prepare it yourself.
/// Each exchange (connection or re-authentication) uses a fresh nonce derived from the
/// `seed`, so the seed must come from a real random source and stay secret.
///
/// ```
/// use mqtt_sansio::auth::{Authenticator, ScramSha256};
///
/// let seed = [7u8; 32]; // from the platform's random number generator
/// let mut scram = ScramSha256::new("user", b"pencil", seed);
/// let mut out = [0u8; 256];
/// let n = scram.start(&mut out)?;
/// assert!(out[..n].starts_with(b"n,,n=user,r="));
/// # Ok::<(), mqtt_sansio::auth::AuthError>(())
/// ```
#[derive(Clone)]
pub struct ScramSha256<U, P> {
    username: U,
    password: P,
    seed: [u8; 32],
    exchanges: u64,
    max_iterations: u32,
    bare: [u8; MAX_BARE],
    bare_len: usize,
    nonce: [u8; NONCE_LEN],
    nonce_len: usize,
    server_signature: [u8; 32],
    step: Step,
}

impl<U: AsRef<str>, P: AsRef<[u8]>> ScramSha256<U, P> {
    /// The mechanism for `username` and `password`, nonces derived from `seed`. At most
    /// 100,000 PBKDF2 iterations are accepted from the broker (see
    /// [`ScramSha256::max_iterations`]).
    pub fn new(username: U, password: P, seed: [u8; 32]) -> Self {
        Self {
            username,
            password,
            seed,
            exchanges: 0,
            max_iterations: 100_000,
            bare: [0; MAX_BARE],
            bare_len: 0,
            nonce: [0; NONCE_LEN],
            nonce_len: NONCE_LEN,
            server_signature: [0; 32],
            step: Step::Idle,
        }
    }

    /// The most PBKDF2 iterations accepted from the broker: each costs a few microseconds on
    /// a PC and far more on a microcontroller, and a hostile broker could ask for millions.
    #[must_use]
    pub fn max_iterations(mut self, max: u32) -> Self {
        self.max_iterations = max;
        self
    }

    /// Uses `nonce` (printable, no comma, at most 24 bytes) for every exchange instead of
    /// derived ones: for test vectors only, since a repeated nonce allows replays.
    #[doc(hidden)]
    pub fn fixed_nonce(&mut self, nonce: &[u8]) {
        let len = nonce.len().min(NONCE_LEN);
        self.nonce[..len].copy_from_slice(&nonce[..len]);
        self.nonce_len = len;
        self.exchanges = u64::MAX;
    }

    fn nonce(&self) -> &[u8] {
        &self.nonce[..self.nonce_len]
    }

    /// A fresh nonce: base64 of the first 18 bytes of SHA-256(seed, exchange number).
    fn next_nonce(&mut self) {
        if self.exchanges == u64::MAX {
            return;
        }
        self.exchanges += 1;
        let digest = Sha256::new()
            .chain_update(self.seed)
            .chain_update(self.exchanges.to_le_bytes())
            .finalize();
        // 18 bytes encode to exactly NONCE_LEN characters.
        let _ = STANDARD.encode_slice(&digest[..18], &mut self.nonce);
    }
}

impl<U: AsRef<str>, P> core::fmt::Debug for ScramSha256<U, P> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ScramSha256")
            .field("username", &self.username.as_ref())
            .field("step", &self.step)
            .finish_non_exhaustive()
    }
}

/// Appends bytes to a buffer, failing when it is full.
struct Out<'b> {
    buf: &'b mut [u8],
    len: usize,
}

impl Out<'_> {
    fn put(&mut self, bytes: &[u8]) -> Result<(), AuthError> {
        let end = self.len + bytes.len();
        let dst = self
            .buf
            .get_mut(self.len..end)
            .ok_or(AuthError::BufferTooSmall)?;
        dst.copy_from_slice(bytes);
        self.len = end;
        Ok(())
    }

    fn put_base64(&mut self, bytes: &[u8]) -> Result<(), AuthError> {
        let rest = self
            .buf
            .get_mut(self.len..)
            .ok_or(AuthError::BufferTooSmall)?;
        let n = STANDARD
            .encode_slice(bytes, rest)
            .map_err(|_| AuthError::BufferTooSmall)?;
        self.len += n;
        Ok(())
    }
}

fn hmac(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    // HMAC takes keys of any length, so this never fails; if it did, the zero result would
    // fail the exchange (a wrong proof), never pass it.
    let Ok(mut mac) = HmacSha256::new_from_slice(key) else {
        return [0; 32];
    };
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

/// The value of attribute `name` (`name=value`) at the front of `fields`, and the rest.
fn attribute(fields: &[u8], name: u8) -> Result<(&[u8], &[u8]), AuthError> {
    let (field, rest) = match fields.iter().position(|&b| b == b',') {
        Some(i) => (&fields[..i], &fields[i + 1..]),
        None => (fields, &[][..]),
    };
    match field {
        [n, b'=', value @ ..] if *n == name => Ok((value, rest)),
        _ => Err(AuthError::Malformed),
    }
}

impl<U: AsRef<str>, P: AsRef<[u8]>> Authenticator for ScramSha256<U, P> {
    fn method(&self) -> &str {
        "SCRAM-SHA-256"
    }

    fn start(&mut self, out: &mut [u8]) -> Result<usize, AuthError> {
        self.next_nonce();
        // client-first-message-bare: n=<saslname>,r=<nonce>
        let mut bare = Out {
            buf: &mut self.bare,
            len: 0,
        };
        bare.put(b"n=")?;
        for &b in self.username.as_ref().as_bytes() {
            match b {
                b'=' => bare.put(b"=3D")?,
                b',' => bare.put(b"=2C")?,
                _ => bare.put(&[b])?,
            }
        }
        bare.put(b",r=")?;
        bare.put(&self.nonce[..self.nonce_len])?;
        self.bare_len = bare.len;
        let mut first = Out { buf: out, len: 0 };
        // GS2 header: no channel binding, no authorization identity.
        first.put(b"n,,")?;
        first.put(&self.bare[..self.bare_len])?;
        self.step = Step::Started;
        Ok(first.len)
    }

    fn respond(&mut self, challenge: &[u8], out: &mut [u8]) -> Result<usize, AuthError> {
        if self.step != Step::Started {
            return Err(AuthError::OutOfOrder);
        }
        if challenge.starts_with(b"e=") {
            return Err(AuthError::Refused);
        }
        // server-first-message: r=<nonce>,s=<salt>,i=<iterations>[,extensions]
        let (nonce, rest) = attribute(challenge, b'r')?;
        let (salt_b64, rest) = attribute(rest, b's')?;
        let (iterations, _) = attribute(rest, b'i')?;
        if nonce.len() <= self.nonce_len || !nonce.starts_with(self.nonce()) {
            return Err(AuthError::NonceMismatch);
        }
        let mut salt = [0u8; MAX_SALT];
        let salt_len = STANDARD
            .decode_slice(salt_b64, &mut salt)
            .map_err(|_| AuthError::Malformed)?;
        let iterations: u32 = core::str::from_utf8(iterations)
            .ok()
            .and_then(|s| s.parse().ok())
            .filter(|&i| i > 0)
            .ok_or(AuthError::Malformed)?;
        if iterations > self.max_iterations {
            return Err(AuthError::TooManyIterations);
        }
        let mut salted = [0u8; 32];
        let password = self.password.as_ref();
        pbkdf2::pbkdf2_hmac::<Sha256>(password, &salt[..salt_len], iterations, &mut salted);
        let client_key = hmac(&salted, &[b"Client Key"]);
        let stored_key: [u8; 32] = Sha256::digest(client_key).into();
        let server_key = hmac(&salted, &[b"Server Key"]);

        // client-final-message-without-proof: c=biws,r=<nonce> (biws: "n,," in base64)
        let mut fin = Out { buf: out, len: 0 };
        fin.put(b"c=biws,r=")?;
        fin.put(nonce)?;
        let without_proof_len = fin.len;
        let auth_message: [&[u8]; 5] = [
            &self.bare[..self.bare_len],
            b",",
            challenge,
            b",",
            &fin.buf[..without_proof_len],
        ];
        let client_signature = hmac(&stored_key, &auth_message);
        self.server_signature = hmac(&server_key, &auth_message);
        let mut proof = client_key;
        for (p, s) in proof.iter_mut().zip(client_signature) {
            *p ^= s;
        }
        fin.put(b",p=")?;
        fin.put_base64(&proof)?;
        self.step = Step::Responded;
        Ok(fin.len)
    }

    fn finish(&mut self, outcome: Option<&[u8]>) -> Result<(), AuthError> {
        if self.step != Step::Responded {
            return Err(AuthError::OutOfOrder);
        }
        self.step = Step::Idle;
        let outcome = outcome.ok_or(AuthError::ServerNotVerified)?;
        if outcome.starts_with(b"e=") {
            return Err(AuthError::Refused);
        }
        let (verifier, _) = attribute(outcome, b'v')?;
        let mut signature = [0u8; 32];
        let n = STANDARD
            .decode_slice(verifier, &mut signature)
            .map_err(|_| AuthError::Malformed)?;
        // Compare every byte, whatever the first difference, so timing tells nothing.
        let differs = signature
            .iter()
            .zip(self.server_signature)
            .fold(u8::from(n != 32), |acc, (a, b)| acc | (a ^ b));
        if differs == 0 {
            Ok(())
        } else {
            Err(AuthError::ServerNotVerified)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7677, section 3.
    const SERVER_FIRST: &[u8] =
        b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
    const CLIENT_FINAL: &[u8] = b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
        p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
    const SERVER_FINAL: &[u8] = b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";

    #[test]
    fn rfc_7677_exchange() {
        let mut scram = ScramSha256::new("user", b"pencil", [0; 32]);
        scram.fixed_nonce(b"rOprNGfwEbeRWgbNEkqO");
        let mut out = [0u8; 256];
        let n = scram.start(&mut out).unwrap();
        assert_eq!(&out[..n], b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
        let n = scram.respond(SERVER_FIRST, &mut out).unwrap();
        assert_eq!(&out[..n], CLIENT_FINAL);
        scram.finish(Some(SERVER_FINAL)).unwrap();
    }

    #[test]
    fn first_message_escapes_the_user_name_and_nonces_change() {
        let mut scram = ScramSha256::new("a=b,c", b"p", [1; 32]);
        let mut out = [0u8; 256];
        let n = scram.start(&mut out).unwrap();
        let first = core::str::from_utf8(&out[..n]).unwrap();
        assert!(first.starts_with("n,,n=a=3Db=2Cc,r="), "{first}");
        let nonce1: std::string::String = first.rsplit("r=").next().unwrap().into();
        let n = scram.start(&mut out).unwrap();
        let second = core::str::from_utf8(&out[..n]).unwrap();
        assert_ne!(second.rsplit("r=").next().unwrap(), nonce1);
    }

    #[test]
    fn a_wrong_server_proof_and_hostile_challenges_are_refused() {
        let mut scram = ScramSha256::new("user", b"pencil", [2; 32]);
        let mut out = [0u8; 256];
        scram.start(&mut out).unwrap();
        let nonce = scram.nonce;
        let mut challenge = std::vec::Vec::new();
        challenge.extend_from_slice(b"r=");
        challenge.extend_from_slice(&nonce);
        challenge.extend_from_slice(b"xyz,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096");
        scram.respond(&challenge, &mut out).unwrap();
        assert_eq!(
            scram.finish(Some(SERVER_FINAL)),
            Err(AuthError::ServerNotVerified)
        );
        // Out of order, a foreign nonce, too much work, a refusal.
        assert_eq!(
            scram.respond(&challenge, &mut out),
            Err(AuthError::OutOfOrder)
        );
        scram.start(&mut out).unwrap();
        assert_eq!(
            scram.respond(&challenge, &mut out),
            Err(AuthError::NonceMismatch)
        );
        scram.start(&mut out).unwrap();
        let mut greedy = std::vec::Vec::new();
        greedy.extend_from_slice(b"r=");
        greedy.extend_from_slice(&scram.nonce);
        greedy.extend_from_slice(b"x,s=AAAA,i=100000000");
        assert_eq!(
            scram.respond(&greedy, &mut out),
            Err(AuthError::TooManyIterations)
        );
        scram.start(&mut out).unwrap();
        assert_eq!(
            scram.respond(b"e=unknown-user", &mut out),
            Err(AuthError::Refused)
        );
        assert_eq!(
            scram.respond(b"garbage", &mut out),
            Err(AuthError::Malformed)
        );
    }
}
