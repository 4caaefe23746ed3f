//! The kill loop for the nb client, against a real mosquitto: a device whose session lives in
//! a `FlashJournal` on a RAM NOR flash dies at 10 random points and boots again from the
//! flash, as a board does after a reset or a power cut.
//!
//! - **Publisher**: 2,000 QoS 1 and 2,000 QoS 2 messages, each counted as accepted once
//!   `persist` returned; a subscriber connected throughout must see every accepted one, QoS 2
//!   exactly once, and nothing that was never published.
//! - **Subscriber**: the device subscribes once and is fed 2,000 QoS 1 and 2,000 QoS 2
//!   messages while it dies and comes back; what its application handled (recorded as `poll`
//!   returns each message, the way firmware acts on a command) must hold every message, and
//!   QoS 2 ones once, but for the handoff no journal closes (the message a life handled last
//!   before it died, whose receipt may not have reached the flash, may be handled again) and
//!   for mosquitto's replays of messages it had released (`Broker::released_replays`).
//!
//! A death is the device's future dropped at a random moment (mid-read, mid-write, mid-flash
//! operation), and every other life also cuts the flash's power at a random operation ahead,
//! with nothing, half or all of that write kept. Both protocol versions; every wait is
//! bounded.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::ops::Range;
use std::time::Duration;

use mqtt_client_nb::flash::FlashJournal;
use mqtt_client_nb::mqtt_sansio::{ProtocolVersion, QoS};
use mqtt_client_nb::{Client, Options};
use mqtt_test_support::reliability::{parse_payload, payload, RefClient, RefConfig};
use mqtt_test_support::Broker;
use support::flash::{Keep, MockFlash, Ram};
use support::{copy, poll_for, poll_until, tcp, Ev, Tcp, TokioClock};

const BOTH: [ProtocolVersion; 2] = [ProtocolVersion::V3_1_1, ProtocolVersion::V5];
/// Messages of each QoS.
const MESSAGES: u32 = 2_000;
const KILLS: usize = 10;
/// Eight 4 KiB pages.
const RANGE: Range<u32> = 0..8 * 4096;
const WAIT: Duration = Duration::from_secs(60);
/// Session store bytes.
const STORE: usize = 16 * 1024;

/// What survives a death: the flash.
struct Device {
    flash: MockFlash,
    version: ProtocolVersion,
    id: String,
}

type FlashClient<'b> = Client<'b, Tcp, FlashJournal<'b, &'b mut MockFlash>>;

impl Device {
    fn new(version: ProtocolVersion, role: &str) -> Self {
        Self {
            flash: MockFlash::new(8),
            version,
            id: format!("kill-{role}-{version:?}"),
        }
    }

    /// Boots from the flash and connects, with the flash's power to go at an operation ahead
    /// (perhaps during the boot itself); `None` when the device died booting.
    async fn boot<'b>(
        &'b mut self,
        ram: &'b mut Ram,
        clock: &TokioClock,
        addr: SocketAddr,
        cut: Option<(usize, Keep)>,
    ) -> Option<FlashClient<'b>> {
        self.flash.reboot();
        if let Some((op, keep)) = cut {
            self.flash.cut_at(op, keep);
        }
        let journal = FlashJournal::new(&mut self.flash, RANGE, &mut ram.journal).ok()?;
        let mut options = Options::new(self.version);
        options.client_id = Some(&self.id);
        let mut client =
            Client::with_journal(options, &mut ram.rx, &mut ram.tx, &mut ram.store, journal)
                .await
                .ok()?;
        client.connect(tcp(addr).await).unwrap();
        let seen = poll_until(&mut client, clock, 5, |e| {
            matches!(e, Ev::Connected { .. } | Ev::Error(_))
        })
        .await;
        matches!(seen.last(), Some(Ev::Connected { .. })).then_some(client)
    }
}

/// A deterministic pseudo-random number below `n`.
fn random(state: &mut u64, n: u64) -> u64 {
    *state = state
        .wrapping_mul(6_364_136_223_846_793_005)
        .wrapping_add(1_442_695_040_888_963_407);
    (*state >> 33) % n
}

/// How a life ends: after this long, and perhaps with the flash's power cut at an operation
/// ahead first.
fn death(rng: &mut u64, life: usize) -> (Duration, Option<(usize, Keep)>) {
    let after = Duration::from_millis(30 + random(rng, 400));
    let keep = match random(rng, 3) {
        0 => Keep::Nothing,
        1 => Keep::Part,
        _ => Keep::All,
    };
    let cut = (life % 2 == 1).then(|| (random(rng, 120) as usize, keep));
    (after, cut)
}

fn qos_of(i: u32) -> QoS {
    if i.is_multiple_of(2) {
        QoS::AtLeastOnce
    } else {
        QoS::ExactlyOnce
    }
}

fn seq_of(i: u32) -> u32 {
    i / 2
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_device_delivers_every_message_it_accepted() {
    let broker = Broker::builder()
        .max_queued_messages(100_000)
        .start()
        .expect("mosquitto");
    let mut rng = 5;
    for version in BOTH {
        let topic = format!("kill/device/{version:?}");
        let sub = RefClient::start(RefConfig::new(
            broker.addr(),
            version,
            format!("kill-collector-{version:?}"),
        ));
        sub.subscribe(topic.clone(), QoS::ExactlyOnce);
        sub.wait_for(WAIT, |s| s.subscribed > 0).await.unwrap();
        let clock = TokioClock::new();
        let mut device = Device::new(version, "pub");
        // Accepted: persisted. Unsure: published, then the power went during its persist.
        let (mut accepted, mut unsure) = (BTreeSet::new(), BTreeSet::new());
        let mut next = 0u32;
        for life in 0..=KILLS {
            let (after, cut) = death(&mut rng, life);
            let cut = cut.filter(|_| life < KILLS);
            let mut ram = Ram::new(STORE);
            let Some(mut client) = device.boot(&mut ram, &clock, broker.addr(), cut).await else {
                continue; // died booting
            };
            let run = async {
                while next < 2 * MESSAGES {
                    let (qos, seq) = (qos_of(next), seq_of(next));
                    let p = payload(1, qos, seq, 48);
                    if client.publish(&topic, qos, false, &p).is_ok() {
                        unsure.insert(next);
                        next += 1;
                        if client.persist().await.is_err() {
                            return; // the power went
                        }
                        accepted.insert(next - 1);
                    }
                    // Room comes back as the broker acknowledges.
                    if poll_for(&mut client, &clock, 1)
                        .await
                        .iter()
                        .any(|e| matches!(e, Ev::Error(_)))
                    {
                        return;
                    }
                }
                // The last life: until everything is acknowledged.
                let _ = tokio::time::timeout(WAIT, client.flush_for_sleep(&clock)).await;
            };
            if life < KILLS {
                let _ = tokio::time::timeout(after, run).await;
            } else {
                run.await;
            }
            // Dead: no DISCONNECT, the socket goes with the client.
        }
        unsure.retain(|i| !accepted.contains(i));
        let stats = sub
            .wait_for(WAIT, |s| {
                [QoS::AtLeastOnce, QoS::ExactlyOnce]
                    .iter()
                    .all(|&qos| s.tally.distinct(1, qos) as u32 >= count(&accepted, qos))
            })
            .await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let stats = stats.map(|_| sub.stats()).unwrap_or_else(|s| s);
        let _ = sub.stop().await;
        for qos in [QoS::AtLeastOnce, QoS::ExactlyOnce] {
            let distinct = stats.tally.distinct(1, qos) as u32;
            let want = count(&accepted, qos);
            assert!(
                distinct >= want,
                "{version:?} QoS {}: {distinct} of {want} accepted arrived",
                qos as u8
            );
            assert!(
                distinct <= want + count(&unsure, qos),
                "{version:?} QoS {}: {distinct} arrived, more than published",
                qos as u8
            );
        }
        let deliveries = stats.tally.deliveries(1, QoS::ExactlyOnce);
        assert_eq!(
            deliveries,
            u64::from(stats.tally.distinct(1, QoS::ExactlyOnce) as u32),
            "{version:?}: a QoS 2 message arrived twice"
        );
        println!(
            "{version:?}: {} accepted ({} unsure) over {KILLS} deaths, {} QoS 1 deliveries",
            accepted.len(),
            unsure.len(),
            stats.tally.deliveries(1, QoS::AtLeastOnce)
        );
    }
}

fn count(set: &BTreeSet<u32>, qos: QoS) -> u32 {
    set.iter().filter(|&&i| qos_of(i) == qos).count() as u32
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_device_handles_every_message_and_no_qos2_message_twice() {
    let broker = Broker::builder()
        .max_queued_messages(100_000)
        .start()
        .expect("mosquitto");
    let mut rng = 9;
    for version in BOTH {
        let topic = format!("kill/commands/{version:?}");
        let clock = TokioClock::new();
        let mut device = Device::new(version, "sub");
        let replays_before = broker.released_replays();
        // What the device's application acted on, across its lives.
        let mut handled: BTreeMap<(QoS, u32), usize> = BTreeMap::new();
        // The last QoS 2 message each dead life handled.
        let mut handoffs = BTreeSet::new();
        let mut resyncs = 0;
        let mut publisher = None;
        for life in 0..=KILLS {
            let (after, cut) = death(&mut rng, life);
            // The subscription is made in a life that does not die booting.
            let cut = cut.filter(|_| life > 0 && life < KILLS);
            let mut ram = Ram::new(STORE);
            let Some(mut client) = device.boot(&mut ram, &clock, broker.addr(), cut).await else {
                continue; // died booting
            };
            if life == 0 {
                client.subscribe(&topic, QoS::ExactlyOnce).unwrap();
                poll_until(&mut client, &clock, 5, |e| {
                    matches!(e, Ev::Subscribed { .. })
                })
                .await;
                // The feed starts once the subscription stands, and goes on while the device
                // dies and comes back.
                let feed = RefClient::start(RefConfig::new(
                    broker.addr(),
                    version,
                    format!("kill-feed-{version:?}"),
                ));
                for seq in 0..MESSAGES {
                    for qos in [QoS::AtLeastOnce, QoS::ExactlyOnce] {
                        feed.publish(topic.clone(), payload(2, qos, seq, 32), qos);
                    }
                }
                publisher = Some(feed);
            }
            let mut last = None;
            let run = async {
                while (handled.len() as u32) < 2 * MESSAGES {
                    match copy(&client.poll(&clock).await) {
                        Ev::Message { payload, qos, .. } => {
                            let (_, _, seq) = parse_payload(&payload).expect("a feed payload");
                            *handled.entry((qos, seq)).or_default() += 1;
                            if qos == QoS::ExactlyOnce {
                                last = Some(seq);
                            }
                        }
                        // The session ended the connection to have the broker send again
                        // what it had no room for: connect again, as a firmware loop does.
                        Ev::Disconnected => {
                            resyncs += 1;
                            client.connect(tcp(broker.addr()).await).unwrap();
                        }
                        Ev::Error(_) => return, // the power went
                        _ => {}
                    }
                }
            };
            if life < KILLS {
                let _ = tokio::time::timeout(after, run).await;
                // A message handled just before the death may not have had its receipt
                // written: the handoff from the client to the application, which no journal
                // closes (the application acted; the record of it did not land).
                handoffs.extend(last);
            } else {
                let _ = tokio::time::timeout(WAIT, run).await;
            }
        }
        if let Some(feed) = publisher {
            let _ = feed.stop().await;
        }
        for qos in [QoS::AtLeastOnce, QoS::ExactlyOnce] {
            let missing: Vec<u32> = (0..MESSAGES)
                .filter(|seq| !handled.contains_key(&(qos, *seq)))
                .collect();
            assert!(
                missing.is_empty(),
                "{version:?} QoS {}: {} never handled (e.g. {:?})",
                qos as u8,
                missing.len(),
                missing.first()
            );
        }
        // Every extra handling of a QoS 2 message is a death's handoff or a replay by the
        // broker of a message it had released (`Broker::released_replays`); nothing else.
        let extra: usize = handled
            .iter()
            .filter(|((qos, _), _)| *qos == QoS::ExactlyOnce)
            .map(|((_, seq), &n)| n - 1 - usize::from(n > 1 && handoffs.contains(seq)))
            .sum();
        let replays = broker.released_replays() - replays_before;
        let twice: Vec<_> = handled
            .iter()
            .filter(|((qos, _), &n)| *qos == QoS::ExactlyOnce && n > 1)
            .collect();
        assert!(
            extra <= replays,
            "{version:?}: QoS 2 handled again beyond the handoffs and the broker's {replays} \
             replays: {twice:?}"
        );
        println!(
            "{version:?}: {} messages handled over {KILLS} deaths, {resyncs} resyncs, {} QoS 2 \
             handled again ({replays} broker replays)",
            handled.len(),
            twice.len()
        );
    }
}
