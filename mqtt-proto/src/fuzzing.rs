//! Entry points for the fuzz targets in `fuzz/`, and the checks they run. The targets are thin
//! wrappers over [`decode`], [`roundtrip`], [`session()`] and [`journal()`], so
//! `cargo test --features fuzzing` runs the same checks on the committed corpus and on
//! regressions. Not covered by semver.
//!
//! What is checked, for every packet that decodes or is built:
//! - `encode` agrees with `encoded_len`: same error, or exactly that many bytes written; a
//!   buffer one byte short is refused with nothing written, and nothing past the packet is
//!   touched in a larger one (and `encode_buf` writes the same bytes, with the `bytes` feature);
//! - the encoded bytes decode to one packet of that length, equal to the original;
//! - encoding that packet again gives the same bytes;
//! - every cut of the bytes short of the whole is [`Decoded::Incomplete`] with the right hint,
//!   and a maximum packet size one byte short refuses the packet from its header.
//!
//! A decoded packet must always encode again for the version it was decoded as; a built one may
//! be refused with an [`EncodeError`], but once encoded it must decode to itself.

mod input;
pub mod journal;
mod seeds;
pub mod session;

use core::num::NonZeroUsize;
use std::vec;
use std::vec::Vec;

pub use journal::journal;
pub use seeds::{sample_packets, seed_corpus, Seed};
pub use session::session;

use crate::{Decoded, EncodeError, FixedHeader, Packet, ProtocolVersion};

/// Target `decode`: the first byte picks the protocol version and the maximum packet size
/// ([`decode_settings`]), the rest is a stream of packets for [`decode_roundtrip`].
pub fn decode(data: &[u8]) {
    let Some((&selector, stream)) = data.split_first() else {
        return;
    };
    let (version, max_packet_size) = decode_settings(selector);
    decode_roundtrip(stream, version, max_packet_size);
}

/// The version and maximum packet size a [`decode`] input's first byte selects: bits 0-1 pick
/// 3.1, 3.1.1 or 5.0 (3 is 5.0 too); bits 2-7 pick no limit (0) or `n * n` bytes.
pub fn decode_settings(selector: u8) -> (ProtocolVersion, u32) {
    let version = match selector & 3 {
        0 => ProtocolVersion::V3_1,
        1 => ProtocolVersion::V3_1_1,
        _ => ProtocolVersion::V5,
    };
    let max_packet_size = match u32::from(selector >> 2) {
        0 => u32::MAX,
        n => n * n,
    };
    (version, max_packet_size)
}

/// The byte that makes [`decode`] read the rest as `version` without a size limit.
pub fn decode_selector(version: ProtocolVersion) -> u8 {
    match version {
        ProtocolVersion::V3_1 => 0,
        ProtocolVersion::V3_1_1 => 1,
        ProtocolVersion::V5 => 2,
    }
}

/// Decodes the packets at the front of `stream` as `version`, one after the other, until one
/// fails or the stream ends, and checks each one (see the module docs). Panics on a mismatch,
/// which is a bug.
pub fn decode_roundtrip(stream: &[u8], version: ProtocolVersion, max_packet_size: u32) {
    let mut rest = stream;
    loop {
        match Packet::decode(rest, version, max_packet_size) {
            Ok(Decoded::Packet { packet, len }) => {
                assert!(
                    len > 0 && len <= rest.len(),
                    "decode claims {len} of {} bytes",
                    rest.len()
                );
                let (raw, tail) = rest.split_at(len);
                check_decoded(&packet, raw, version, max_packet_size);
                rest = tail;
            }
            Ok(Decoded::Incomplete { needed }) => {
                check_incomplete_hint(rest, needed);
                return;
            }
            // Formatting the error exercises its Display; the reason code must exist.
            Err(e) => {
                let _ = (std::format!("{e}"), e.reason_code());
                return;
            }
        }
    }
}

/// Target `roundtrip`: builds one packet of any type, for any version, from `data` (see
/// [`build_packet`]) and checks that what encodes decodes back to itself.
pub fn roundtrip(data: &[u8]) {
    // A refusal is a valid outcome: the checks are in check_roundtrip.
    let _ = input::with_packet(data, |packet, version| check_roundtrip(&packet, version));
}

/// Builds the packet that [`roundtrip`] builds from `data` and hands it to `f` with the version
/// it is meant for (the packet borrows from `data` and from lists that live during the call).
pub fn build_packet<R>(data: &[u8], f: impl FnOnce(Packet<'_>, ProtocolVersion) -> R) -> R {
    input::with_packet(data, f)
}

/// Encodes `packet` for `version`; when the codec accepts it, checks that the bytes decode to
/// `packet` again (see the module docs). A packet the codec refuses is left alone.
///
/// Returns the encoded bytes, or the codec's refusal.
pub fn check_roundtrip(
    packet: &Packet<'_>,
    version: ProtocolVersion,
) -> Result<Vec<u8>, EncodeError> {
    let bytes = encode_checked(packet, version)?;
    check_decodes_to(&bytes, version, packet);
    check_incomplete_prefixes(&bytes, version, u32::MAX);
    check_size_limit(&bytes, version);
    Ok(bytes)
}

/// Checks a packet decoded from `raw`.
fn check_decoded(packet: &Packet<'_>, raw: &[u8], version: ProtocolVersion, max: u32) {
    check_incomplete_prefixes(raw, version, max);
    check_size_limit(raw, version);
    let bytes = encode_checked(packet, version)
        .unwrap_or_else(|e| panic!("decoded {packet:?} does not encode for {version}: {e:?}"));
    check_decodes_to(&bytes, version, packet);
}

/// Encodes `packet` with the checks on `encode` and `encoded_len` of the module docs.
fn encode_checked(packet: &Packet<'_>, version: ProtocolVersion) -> Result<Vec<u8>, EncodeError> {
    const UNTOUCHED: u8 = 0xA5;
    let n = match packet.encoded_len(version) {
        Ok(n) => n,
        Err(e) => {
            let refused = packet.encode(version, &mut [0u8; 8]);
            assert_eq!(refused, Err(e), "encode and encoded_len disagree");
            return Err(e);
        }
    };
    assert!(n >= 2, "encoded_len {n} is shorter than a fixed header");
    let mut buf = vec![UNTOUCHED; n + 1];
    let short = packet.encode(version, &mut buf[..n - 1]);
    let expected = EncodeError::BufferTooSmall {
        needed: n,
        available: n - 1,
    };
    assert_eq!(short, Err(expected), "a short buffer must be refused");
    // Writing starts at the front: a window there shows whether anything was written (cheaper
    // than scanning packets of megabytes).
    assert!(
        buf[..n.min(64)].iter().all(|&b| b == UNTOUCHED),
        "a refused encode wrote bytes"
    );
    assert_eq!(
        packet.encode(version, &mut buf),
        Ok(n),
        "encode != encoded_len"
    );
    assert_eq!(buf[n], UNTOUCHED, "encode wrote past encoded_len");
    buf.truncate(n);
    #[cfg(feature = "bytes")]
    {
        let mut grown = bytes::BytesMut::with_capacity(n);
        assert_eq!(packet.encode_buf(version, &mut grown), Ok(n));
        assert_eq!(&grown[..], &buf[..], "encode_buf differs from encode");
    }
    Ok(buf)
}

/// Checks that `bytes` decode to exactly `expected`, and encode again to the same bytes.
fn check_decodes_to(bytes: &[u8], version: ProtocolVersion, expected: &Packet<'_>) {
    let again = match Packet::decode(bytes, version, u32::MAX) {
        Ok(Decoded::Packet { packet, len }) if len == bytes.len() => packet,
        other => panic!(
            "encoded {expected:?} as {} bytes {:02x?}... that do not decode as one {version} \
             packet: {other:?}",
            bytes.len(),
            &bytes[..bytes.len().min(64)],
        ),
    };
    assert_eq!(&again, expected, "decode(encode(p)) != p for {version}");
    let bytes_again = encode_checked(&again, version)
        .unwrap_or_else(|e| panic!("decoded {again:?} does not encode for {version}: {e:?}"));
    assert!(bytes_again == bytes, "encoding is not stable for {again:?}");
}

/// Checks that a sample of the cuts of one whole packet's `raw` bytes are incomplete, with the
/// number of missing bytes known once the fixed header is.
fn check_incomplete_prefixes(raw: &[u8], version: ProtocolVersion, max: u32) {
    let header = match FixedHeader::decode(raw) {
        Ok(Some(header)) => header,
        other => panic!("a whole packet has no fixed header: {other:?}"),
    };
    let len = raw.len();
    assert_eq!(
        header.packet_len(),
        len,
        "the fixed header disagrees with decode"
    );
    let header_len = usize::from(header.header_len);
    let cuts = (0..len.min(8)).chain([header_len, len - 1]);
    for cut in cuts.filter(|&cut| cut < len) {
        let needed = if cut < header_len {
            None
        } else {
            NonZeroUsize::new(len - cut)
        };
        assert_eq!(
            Packet::decode(&raw[..cut], version, max),
            Ok(Decoded::Incomplete { needed }),
            "{cut} of {len} bytes"
        );
    }
}

/// Checks that the maximum packet size is inclusive and refuses a packet one byte larger.
fn check_size_limit(raw: &[u8], version: ProtocolVersion) {
    // A whole packet is at most 268,435,460 bytes, which fits.
    let Ok(len) = u32::try_from(raw.len()) else {
        panic!("a packet of {} bytes decoded", raw.len());
    };
    assert!(matches!(
        Packet::decode(raw, version, len),
        Ok(Decoded::Packet { .. })
    ));
    assert_eq!(
        Packet::decode(raw, version, len - 1),
        Err(crate::DecodeError::PacketTooLarge {
            size: len,
            max: len - 1
        })
    );
}

/// Checks the hint of an incomplete decode of `rest` against its fixed header.
fn check_incomplete_hint(rest: &[u8], needed: Option<NonZeroUsize>) {
    match (FixedHeader::decode(rest), needed) {
        (Ok(None), None) => {}
        (Ok(Some(header)), Some(needed)) => {
            assert_eq!(rest.len() + needed.get(), header.packet_len());
        }
        other => panic!("incomplete hint {needed:?} for header {other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::fs;
    use std::path::{Path, PathBuf};

    use super::*;
    use crate::PacketType;

    fn corpus_dir(target: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../fuzz/corpus")
            .join(target)
    }

    fn run_target(target: &str, data: &[u8]) {
        match target {
            "decode" => decode(data),
            "roundtrip" => roundtrip(data),
            "journal" => journal(data),
            other => panic!("no fuzz target {other}"),
        }
    }

    /// `MQTT_PROTO_WRITE_CORPUS=1 cargo test -p mqtt-sansio --features fuzzing seed_corpus`
    /// rewrites the seeds under `fuzz/corpus` (remove stale ones by hand).
    #[test]
    fn seed_corpus_is_committed_and_up_to_date() {
        if !corpus_dir("").exists() {
            return; // not in the repository (e.g. a packaged crate)
        }
        let write = std::env::var_os("MQTT_PROTO_WRITE_CORPUS").is_some();
        for seed in seed_corpus() {
            let path = corpus_dir(seed.target).join(&seed.name);
            if write {
                fs::create_dir_all(corpus_dir(seed.target)).unwrap();
                fs::write(&path, &seed.data).unwrap();
            } else {
                assert!(
                    fs::read(&path).ok() == Some(seed.data),
                    "{} is missing or stale: MQTT_PROTO_WRITE_CORPUS=1 cargo test -p \
                     mqtt-sansio --features fuzzing seed_corpus",
                    path.display()
                );
            }
        }
    }

    /// Found by the `journal` target in CI: a snapshot wrote the packet-id counter before
    /// the queued messages, whose restore moved it back, so restoring a snapshot did not give
    /// the same snapshot again (ids 2 to 8 handed out anew instead of 9 on).
    #[test]
    fn regression_a_restored_snapshot_keeps_the_packet_id_counter() {
        let path = corpus_dir("journal").join("regression-snapshot-pid-counter");
        if let Ok(bytes) = fs::read(path) {
            run_target("journal", &bytes);
        }
    }

    #[test]
    fn every_committed_corpus_file_passes_its_target() {
        for target in ["decode", "roundtrip", "journal"] {
            let Ok(entries) = fs::read_dir(corpus_dir(target)) else {
                continue;
            };
            for entry in entries {
                let path = entry.unwrap().path();
                run_target(target, &fs::read(&path).unwrap());
            }
        }
    }

    #[test]
    fn seed_corpus_stays_small() {
        let seeds = seed_corpus();
        assert!(seeds.len() < 200, "{} seeds", seeds.len());
        let names: BTreeSet<_> = seeds.iter().map(|s| (s.target, &s.name)).collect();
        assert_eq!(names.len(), seeds.len(), "seed names repeat");
    }

    #[test]
    fn decode_seeds_cover_every_packet_type_in_every_version() {
        let mut seen = BTreeSet::new();
        for seed in seed_corpus().iter().filter(|s| s.target == "decode") {
            run_target("decode", &seed.data);
            let (version, _) = decode_settings(seed.data[0]);
            let mut rest = &seed.data[1..];
            while let Ok(Decoded::Packet { packet, len }) = Packet::decode(rest, version, u32::MAX)
            {
                seen.insert((version, packet.packet_type() as u8));
                rest = &rest[len..];
            }
            assert!(rest.is_empty(), "{} does not decode whole", seed.name);
        }
        let versions = [
            ProtocolVersion::V3_1,
            ProtocolVersion::V3_1_1,
            ProtocolVersion::V5,
        ];
        for version in versions {
            for t in 1..=15u8 {
                if t == PacketType::Auth as u8 && !version.is_v5() {
                    continue;
                }
                assert!(
                    seen.contains(&(version, t)),
                    "no {version} seed of type {t}"
                );
            }
        }
    }

    #[test]
    fn roundtrip_seeds_build_every_packet_type_in_every_version_and_encode() {
        let mut seen = BTreeSet::new();
        for seed in seed_corpus().iter().filter(|s| s.target == "roundtrip") {
            build_packet(&seed.data, |packet, version| {
                let encoded = check_roundtrip(&packet, version);
                if version.is_v5() || packet.packet_type() != PacketType::Auth {
                    assert!(encoded.is_ok(), "{}: {encoded:?}", seed.name);
                }
                seen.insert((version, packet.packet_type() as u8));
            });
        }
        assert_eq!(seen.len(), 45);
    }

    /// Builds the packet `data` describes, asserts that it is of `packet_type` and that the
    /// codec now refuses it with `refusal`, and runs the target on it.
    fn assert_refused(data: &[u8], packet_type: PacketType, refusal: EncodeError) {
        build_packet(data, |packet, version| {
            assert_eq!(packet.packet_type(), packet_type, "{packet:?}");
            assert_eq!(
                check_roundtrip(&packet, version),
                Err(refusal),
                "{packet:?}"
            );
        });
        roundtrip(data);
    }

    // Regressions: packets the encoder wrote although the decoder (rightly) rejects them. Each
    // input builds the offending packet, which the encoder must now refuse.

    #[test]
    fn mqtt_3_2_2_6_session_present_with_failure_code_is_not_encoded() {
        // [MQTT-3.2.2-6]: 3.1.1 CONNACK, session present, Unsupported Protocol Version
        let refusal = EncodeError::ValueOutOfRange("session present with a failure reason code");
        assert_refused(&[1, 1, 0, 1, 1], PacketType::ConnAck, refusal);
    }

    #[test]
    fn mqtt_3_3_1_2_dup_on_qos0_is_not_encoded() {
        // [MQTT-3.3.1-2]: 3.1.1 PUBLISH, flags DUP with QoS 0
        let refusal = EncodeError::ValueOutOfRange("DUP on a QoS 0 PUBLISH");
        assert_refused(&[1, 2, 0, 0b0100], PacketType::Publish, refusal);
    }

    #[test]
    fn roundtrip_regressions_on_filters_once_built_from_topic_names() {
        // Found by `roundtrip` when `From<TopicName> for TopicFilter` existed: it could build
        // an empty filter or a malformed `$share/` one. The conversion is gone, so these
        // inputs now build valid filters and must round trip.
        roundtrip(&[1, 7, 0, 0, 15, 0, 0, 1]);
        roundtrip(&[
            0x00, 0x52, 0x28, 0x52, 0x5d, 0x4d, 0x51, 0x54, 0x23, 0x00, 0x01, 0x23, 0x54, 0x24,
            0x73, 0x68, 0x61, 0x72, 0x65, 0x2f, 0x0a, 0x01, 0xf5,
        ]);
    }

    #[test]
    fn mqtt_4_7_3_1_empty_will_topic_is_not_encoded() {
        // 5.0 CONNECT with a will on TopicName::EMPTY
        let data = [2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 15];
        assert_refused(
            &data,
            PacketType::Connect,
            EncodeError::EmptyTopicWithoutAlias,
        );
    }

    #[test]
    fn mqtt_3_3_2_13_empty_response_topic_is_not_encoded() {
        // [MQTT-3.3.2-13]: 5.0 PUBLISH to "a" with Response Topic TopicName::EMPTY
        let refusal = EncodeError::ValueOutOfRange("empty Response Topic");
        assert_refused(
            &[2, 2, 0, 0, 0, 1, 0, 0, 0, 0, 1, 15],
            PacketType::Publish,
            refusal,
        );
    }

    #[test]
    fn mqtt_3_8_3_4_no_local_on_shared_subscription_is_not_encoded() {
        // [MQTT-3.8.3-4]: 5.0 SUBSCRIBE to $share/g/a/# with No Local
        let refusal = EncodeError::ValueOutOfRange("No Local on a shared subscription");
        assert_refused(&[2, 7, 0, 0, 1, 6, 4, 0, 1], PacketType::Subscribe, refusal);
    }

    #[test]
    fn empty_and_short_inputs_are_fine() {
        for len in 0..64 {
            let data: Vec<u8> = (0..len).map(|i| (i * 37 + 11) as u8).collect();
            decode(&data);
            roundtrip(&data);
            for selector in 0..=255u8 {
                let mut with = vec![selector];
                with.extend_from_slice(&data);
                decode(&with);
            }
        }
    }

    #[test]
    fn the_first_byte_selects_version_and_limit() {
        assert_eq!(decode_settings(0), (ProtocolVersion::V3_1, u32::MAX));
        assert_eq!(decode_settings(1), (ProtocolVersion::V3_1_1, u32::MAX));
        assert_eq!(decode_settings(3), (ProtocolVersion::V5, u32::MAX));
        assert_eq!(decode_settings(0b1110), (ProtocolVersion::V5, 9));
        for version in [
            ProtocolVersion::V3_1,
            ProtocolVersion::V3_1_1,
            ProtocolVersion::V5,
        ] {
            assert_eq!(
                decode_settings(decode_selector(version)),
                (version, u32::MAX)
            );
        }
    }
}
