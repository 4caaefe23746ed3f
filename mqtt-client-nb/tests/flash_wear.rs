//! What the flash journal costs the flash: bytes written per message, erases per 1,000
//! messages, and from that the lifetime of a 100,000-cycle NOR flash with 4 KiB pages at one
//! message a second. It prints figures (run with `--nocapture`); it asserts only that the
//! journal keeps working for the whole run and that the figures stay in a sane range.
//!
//! The device publishes a 64-byte payload to `devices/esp32/telemetry`; the broker answers
//! each message before the next is published (one a second), or a burst of ten at once.

mod support;

use embassy_futures::block_on;
use mqtt_client_nb::flash::FlashJournal;
use mqtt_client_nb::mqtt_sansio::session::{Instant, Message, Read, Session, SessionConfig};
use mqtt_client_nb::mqtt_sansio::{
    ConnAck, Connect, Decoded, Packet, PacketId, ProtocolVersion, PubResponse, QoS, ReasonCode,
    TopicName,
};
use mqtt_client_nb::Journal;
use support::flash::{MockFlash, Stats};

const PAGE: usize = 4096;
const CYCLES: f64 = 100_000.0;
const MESSAGES: usize = 3_000;

struct Figures {
    stats: Stats,
    page_erases: Vec<u64>,
    compactions: u32,
}

fn feed(s: &mut Session<Vec<u8>>, version: ProtocolVersion, packet: Packet<'_>) {
    let mut bytes = vec![0u8; packet.encoded_len(version).unwrap()];
    packet.encode(version, &mut bytes).unwrap();
    match s.handle_read(Instant::from_millis(1), &bytes).unwrap() {
        Read::Packet { len, .. } => assert_eq!(len, bytes.len()),
        other => panic!("{other:?}"),
    }
}

/// Transmits what the session lets go; the packet ids of the PUBLISHes and PUBRELs.
fn transmit(s: &mut Session<Vec<u8>>, version: ProtocolVersion) -> Vec<(bool, PacketId)> {
    let mut buf = vec![0u8; 1024];
    let mut out = Vec::new();
    while let Some(t) = s.poll_transmit(Instant::from_millis(1), &mut buf).unwrap() {
        match Packet::decode(&buf[..t.len], version, u32::MAX).unwrap() {
            Decoded::Packet {
                packet: Packet::Publish(p),
                ..
            } => out.extend(p.qos_pid.packet_id().map(|id| (true, id))),
            Decoded::Packet {
                packet: Packet::PubRel(r),
                ..
            } => out.push((false, r.packet_id)),
            _ => {}
        }
    }
    while s.poll_event().is_some() {}
    out
}

/// Runs `MESSAGES` messages of `qos`, `burst` at a time, through a journal of `pages`
/// pages.
fn run(version: ProtocolVersion, pages: usize, qos: QoS, burst: usize, pack: bool) -> Figures {
    block_on(async {
        let mut flash = MockFlash::<PAGE>::new(pages);
        let mut buf = vec![0u8; 512];
        let mut config = SessionConfig::new(version);
        config.journal = true;
        let mut s = Session::new(config, vec![0u8; 8192]).unwrap();
        let mut j = FlashJournal::new(&mut flash, 0..(pages * PAGE) as u32, &mut buf).unwrap();
        j.set_packing(pack);
        j.recover(&mut s).await.unwrap();
        let mut c = Connect::new(version, "mqtt3c71bf4a2b10");
        c.clean_start = false;
        s.connect(&c).unwrap();
        j.persist(&mut s).await.unwrap();
        transmit(&mut s, version);
        let mut ack = ConnAck::new(ReasonCode::Success);
        ack.session_present = true;
        feed(&mut s, version, Packet::ConnAck(ack));
        j.persist(&mut s).await.unwrap();
        transmit(&mut s, version);
        j.flash().stats = Stats::default();
        j.flash().page_erases.fill(0);
        let compactions = j.compactions();
        let topic = TopicName::new("devices/esp32/telemetry").unwrap();
        let payload = [0x5a; 64];
        for _ in 0..MESSAGES / burst {
            for _ in 0..burst {
                s.publish(&Message::new(topic, &payload, qos)).unwrap();
            }
            j.persist(&mut s).await.unwrap();
            let mut open = transmit(&mut s, version);
            // The broker answers everything at once; the client reads it all before it
            // polls the journal again (a burst's acks in one TCP read).
            while !open.is_empty() {
                for (publish, id) in open.drain(..) {
                    let r = PubResponse::new(id);
                    let packet = match (qos, publish) {
                        (QoS::AtLeastOnce, _) => Packet::PubAck(r),
                        (_, true) => Packet::PubRec(r),
                        _ => Packet::PubComp(r),
                    };
                    feed(&mut s, version, packet);
                }
                j.persist(&mut s).await.unwrap();
                open = transmit(&mut s, version);
            }
        }
        Figures {
            stats: j.flash().stats,
            page_erases: j.flash().page_erases.clone(),
            compactions: j.compactions() - compactions,
        }
    })
}

#[test]
fn bytes_and_erases_per_message_and_the_flash_lifetime() {
    println!(
        "{MESSAGES} messages, 64-byte payload to devices/esp32/telemetry, 4 KiB pages, {CYCLES} cycles"
    );
    let cases = [
        (ProtocolVersion::V3_1_1, QoS::AtLeastOnce, 1, true),
        (ProtocolVersion::V5, QoS::AtLeastOnce, 1, true),
        (ProtocolVersion::V3_1_1, QoS::ExactlyOnce, 1, true),
        (ProtocolVersion::V3_1_1, QoS::AtLeastOnce, 10, true),
        (ProtocolVersion::V3_1_1, QoS::AtLeastOnce, 10, false),
    ];
    for (version, qos, burst, pack) in cases {
        for pages in [4, 8] {
            let f = run(version, pages, qos, burst, pack);
            let per_message = f.stats.bytes_written as f64 / MESSAGES as f64;
            let erases_per_1000 = f.stats.erases as f64 * 1000.0 / MESSAGES as f64;
            // Pages are erased in turn: each page takes 1/pages of the erases.
            let seconds = CYCLES * pages as f64 / (f.stats.erases as f64 / MESSAGES as f64);
            let years = seconds / (365.25 * 24.0 * 3600.0);
            // Pages that last ten years at this rate.
            let ten_years = (10.0 * pages as f64 / years).ceil();
            println!(
                "{version:?} {qos:?} burst {burst:>2} {}: {pages} pages: {per_message:.1} B and \
                 {:.1} writes per message, {erases_per_1000:.2} erases per 1,000 messages, \
                 {} compactions; at 1 msg/s the journal lasts {years:.2} years \
                 ({ten_years} pages for ten)",
                if pack { "packed  " } else { "unpacked" },
                f.stats.writes as f64 / MESSAGES as f64,
                f.compactions,
            );
            assert!(per_message > 50.0 && per_message < 400.0, "{per_message}");
            assert!(f.stats.erases > 0, "the journal should go round");
            // Wear levelling: the pages are erased in turn.
            let (least, most) = (
                f.page_erases.iter().min().unwrap(),
                f.page_erases.iter().max().unwrap(),
            );
            assert!(most - least <= 1, "uneven wear {:?}", f.page_erases);
        }
    }
}
