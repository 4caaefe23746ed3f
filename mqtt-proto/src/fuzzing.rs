//! Entry points for the fuzz targets in `fuzz/`. Not covered by semver.

use crate::{Decoded, Packet, ProtocolVersion};

/// Decodes every packet in `data` as `version`, re-encoding each one and checking that the
/// re-encoded bytes decode to the same packet. Panics on a mismatch, which is a bug.
pub fn decode_roundtrip(data: &[u8], version: ProtocolVersion) {
    let mut rest = data;
    let mut buf = [0u8; 4096];
    while let Ok(Decoded::Packet { packet, len }) = Packet::decode(rest, version, u32::MAX) {
        rest = &rest[len..];
        let v = match packet {
            Packet::Connect(c) => c.protocol,
            _ => version,
        };
        if let Ok(n) = packet.encode(v, &mut buf) {
            match Packet::decode(&buf[..n], v, u32::MAX) {
                Ok(Decoded::Packet { packet: again, len }) => {
                    assert_eq!(len, n);
                    assert_eq!(again, packet);
                }
                other => panic!("re-encoded {packet:?} does not decode: {other:?}"),
            }
        }
    }
}
