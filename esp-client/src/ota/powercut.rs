//! The update end to end over the simulated NOR flash: a device (loader step + [`Updater`]) and
//! an in-memory operator that answers requests, with the power cut at every flash operation.

use std::boxed::Box;
use std::vec::Vec;

use ed25519_dalek::{Signer, SigningKey};
use wire_format::ota::{
    sha256, signing_message, Header, Target, TrustedKey, Verifier, Version, HEADER_LEN,
    IMAGE_OFFSET,
};
use wire_format::ota_proto::{self, Chunk, Offer, Phase, Reason, MAX_CHUNK_MSG};

use super::boot::{self, BootKind};
use super::layout::{Layout, Slot, SECTOR};
use super::sim::{Cut, SimFlash};
use super::state;
use super::trailer;
use super::update::{Action, OtaSettings, Out, Updater};

pub const KEY_ID: u32 = 1;

fn signing_key() -> SigningKey {
    SigningKey::from_bytes(&[7; 32])
}

pub fn keys() -> [TrustedKey; 1] {
    [TrustedKey {
        key_id: KEY_ID,
        public_key: signing_key().verifying_key().to_bytes(),
    }]
}

pub fn image(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_le_bytes()[3] ^ seed)
        .collect()
}

pub fn bundle_for(img: &[u8], version: (u16, u16, u32), counter: u32, target: Target) -> Vec<u8> {
    bundle_signed(img, version, counter, target, KEY_ID, &signing_key())
}

pub fn bundle_signed(
    img: &[u8],
    version: (u16, u16, u32),
    counter: u32,
    target: Target,
    key_id: u32,
    key: &SigningKey,
) -> Vec<u8> {
    let h = Header {
        target,
        key_id,
        security_counter: counter,
        image_len: img.len() as u32,
        version: Version {
            major: version.0,
            minor: version.1,
            patch: version.2,
        },
        build_time: 1_764_000_000,
        image_sha256: sha256(img),
    };
    let hb = h.to_bytes();
    let sig = key.sign(&signing_message(&hb)).to_bytes();
    let mut out = Vec::new();
    out.extend_from_slice(&hb);
    out.extend_from_slice(&sig);
    out.extend_from_slice(img);
    out
}

/// Writes `bundle` into `slot` as a factory install would (image, trailer with all marks).
pub fn install(flash: &mut SimFlash, layout: &Layout, slot: Slot, bundle: &[u8]) {
    let region = layout.slot(slot);
    let img = &bundle[IMAGE_OFFSET..];
    let start = region.image as usize;
    flash.mem[start..start + region.image_max as usize].fill(0xFF);
    flash.mem[start..start + img.len()].copy_from_slice(img);
    let prefix: [u8; IMAGE_OFFSET] = bundle[..IMAGE_OFFSET].try_into().unwrap();
    trailer::begin(flash, region, &prefix).unwrap();
    for i in 0..(img.len() as u32).div_ceil(SECTOR) {
        trailer::mark_sector(flash, region, i).unwrap();
    }
}

/// Verifies the image in `slot` against its stored offer: `Some(counter)` if it is a whole,
/// validly signed image.
pub fn slot_verifies(flash: &mut SimFlash, layout: &Layout, slot: Slot) -> Option<(u32, Version)> {
    let region = layout.slot(slot);
    let prefix = trailer::read_prefix(flash, region)?;
    let keys = keys();
    let mut v = Verifier::new(&keys, Target::Esp8266, 0);
    v.update(&prefix).ok()?;
    let len = Header::parse(&prefix[..HEADER_LEN]).ok()?.image_len as usize;
    let start = region.image as usize;
    v.update(&flash.mem[start..start + len]).ok()?;
    let verified = v.finish().ok()?;
    Some((
        verified.header().security_counter,
        verified.header().version,
    ))
}

pub fn settings() -> OtaSettings {
    OtaSettings {
        request_timeout_ms: 100,
        max_rounds: 3,
        busy_ms: 1_000,
        trial_timeout_ms: 5_000,
        reboot_grace_ms: 10,
    }
}

/// One simulated device: the loader's step at every boot, then the application's updater.
pub struct Dev {
    pub flash: SimFlash,
    pub layout: Layout,
    pub updater: Updater,
    pub now: u64,
    pub booted: Slot,
    pub boot_kind: BootKind,
    pub reports: Vec<ota_proto::Status>,
    /// Answers to queries (published live, not retained).
    pub answers: Vec<ota_proto::Status>,
    pub requested_bytes: u64,
    /// Host-only simulation aid: images starting with this byte never get online.
    pub never_online_marker: Option<u8>,
}

impl Dev {
    pub fn new(flash: SimFlash, layout: Layout) -> Dev {
        let mut flash = flash;
        let b = boot::boot(&mut flash, &layout);
        let layout: &'static Layout = Box::leak(Box::new(layout));
        let updater = Updater::new(&mut flash, layout, Target::Esp8266, settings(), 0);
        Dev {
            flash,
            layout: *layout,
            updater,
            now: 0,
            booted: b.slot,
            boot_kind: b.kind,
            reports: Vec::new(),
            answers: Vec::new(),
            requested_bytes: 0,
            never_online_marker: None,
        }
    }

    /// Power cycle or reset: loader step, fresh updater.
    pub fn reboot(&mut self) {
        self.flash.power_on();
        let b = boot::boot(&mut self.flash, &self.layout);
        self.booted = b.slot;
        self.boot_kind = b.kind;
        self.now += 1_000;
        let layout: &'static Layout = Box::leak(Box::new(self.layout));
        self.updater = Updater::new(
            &mut self.flash,
            layout,
            Target::Esp8266,
            settings(),
            self.now,
        );
    }

    fn image_never_gets_online(&self) -> bool {
        let Some(m) = self.never_online_marker else {
            return false;
        };
        let start = self.layout.slot(self.booted).image as usize;
        self.flash.mem.get(start) == Some(&m)
    }

    /// Connects (unless the image is marked as never getting online).
    pub fn online(&mut self) -> bool {
        if self.image_never_gets_online() {
            return false;
        }
        let _ = self.updater.online(&mut self.flash, &keys(), self.now);
        true
    }

    /// Drains the updater's outbox; requests go to `serve`, chunks come back.
    pub fn exchange(&mut self, bundle: &[u8], mut corrupt: impl FnMut(u32, &mut [u8])) -> bool {
        let mut did = false;
        let mut queue: Vec<Vec<u8>> = Vec::new();
        loop {
            match self.updater.next_message(&mut self.flash, self.now) {
                Ok(Some(Out::Status(s))) => {
                    self.reports.push(s);
                    did = true;
                }
                Ok(Some(Out::Answer(s))) => {
                    self.answers.push(s);
                    did = true;
                }
                Ok(Some(Out::Request(r))) => {
                    did = true;
                    let ours = ota_proto::bundle_id(&signing_message(
                        bundle[..HEADER_LEN].try_into().unwrap(),
                    ));
                    if r.bundle_id != ours {
                        continue;
                    }
                    self.requested_bytes += u64::from(r.len);
                    let start = IMAGE_OFFSET + r.offset as usize;
                    let mut data = bundle[start..start + usize::from(r.len)].to_vec();
                    corrupt(r.offset, &mut data);
                    let mut msg = [0u8; MAX_CHUNK_MSG];
                    let n = Chunk {
                        bundle_id: r.bundle_id,
                        offset: r.offset,
                        data: &data,
                    }
                    .emit(&mut msg)
                    .unwrap();
                    queue.push(msg[..n].to_vec());
                }
                Ok(None) => break,
                Err(_) => return did,
            }
        }
        for m in queue {
            self.now += 1;
            if self
                .updater
                .on_chunk(&mut self.flash, &m, self.now)
                .is_err()
            {
                return true;
            }
        }
        did
    }

    pub fn offer(&mut self, bundle: &[u8]) {
        let o = Offer::from_bundle(bundle).unwrap().to_bytes();
        let _ = self
            .updater
            .on_offer(&mut self.flash, &keys(), &o, self.now);
    }

    pub fn last_phase(&self) -> Option<Phase> {
        self.reports.last().map(|s| s.phase)
    }

    /// Runs the device until the update reaches a final state or the power goes; pushes
    /// `bundle` like `provision ota push` does (offer, serve requests, offer again after a
    /// reconnect). Returns the final phase seen, `None` on a power cut.
    pub fn run_update(&mut self, bundle: &[u8], max_steps: usize) -> Option<Phase> {
        let mut offered = false;
        let mut online = self.online();
        for _ in 0..max_steps {
            if self.flash.dead {
                return None;
            }
            let seen = self.reports.len();
            let did = online && self.exchange(bundle, |_, _| {});
            if self.flash.dead {
                return None;
            }
            // Like the operator: a final report about this bundle, sent after the offer, ends it.
            let id =
                ota_proto::bundle_id(&signing_message(bundle[..HEADER_LEN].try_into().unwrap()));
            if let Some(r) = self.reports[seen..]
                .iter()
                .find(|r| r.bundle_id == id && r.phase.state().is_final())
            {
                if offered || r.phase != Phase::Confirmed {
                    return Some(r.phase);
                }
            }
            if online && !offered {
                self.offer(bundle);
                offered = true;
                continue;
            }
            match self.updater.poll(self.now) {
                Action::Reboot => {
                    self.reboot();
                    online = self.online();
                    offered = false;
                    continue;
                }
                Action::None => {}
            }
            if !did {
                self.now = self.updater.next_deadline(self.now).min(self.now + 1_000);
                self.now += 1;
            }
        }
        self.last_phase()
    }
}

pub fn v1_v2(len: usize) -> (Vec<u8>, Vec<u8>) {
    (
        bundle_for(&image(len, 1), (1, 0, 0), 1, Target::Esp8266),
        bundle_for(&image(len, 2), (2, 0, 0), 2, Target::Esp8266),
    )
}

pub fn factory(layout: &Layout, v1: &[u8]) -> SimFlash {
    let mut flash = SimFlash::new(layout.end() as usize);
    install(&mut flash, layout, Slot::A, v1);
    flash.ops = 0;
    flash
}

/// The MCUboot-style check: the power is cut at every flash operation of a whole update
/// (offer, erase, download, verify, mark pending, reboot, trial, confirm), once before the
/// operation and once torn. After each cut the device boots: the booted slot must hold a whole,
/// validly signed image whose counter is not below the stored floor; then the update is pushed
/// again and must end confirmed on v2.
#[test]
fn power_cut_at_every_flash_operation_of_an_update() {
    // 3 sectors and a bit: several sectors, a short last chunk and an odd length.
    let len = 3 * SECTOR as usize + 1_001;
    let layout = Layout::compact(0, 6 * SECTOR);
    let (v1, v2) = v1_v2(len);

    let mut clean = Dev::new(factory(&layout, &v1), layout);
    assert_eq!(clean.run_update(&v2, 10_000), Some(Phase::Confirmed));
    let total = clean.flash.ops;
    assert!(total > 20, "{total} operations");
    assert_eq!(
        slot_verifies(&mut clean.flash, &layout, Slot::B).unwrap().0,
        2
    );

    let mut tried = 0;
    for k in 0..total {
        for how in [Cut::Before, Cut::Torn] {
            let mut dev = Dev::new(factory(&layout, &v1), layout);
            dev.flash.cut_at(k, how);
            let first = dev.run_update(&v2, 10_000);
            assert_eq!(first, None, "cut {k} {how:?} happened");
            dev.reboot();
            let floor = state::read(&mut dev.flash, &layout).state.floor;
            let (counter, _) =
                slot_verifies(&mut dev.flash, &layout, dev.booted).unwrap_or_else(|| {
                    panic!("cut {k} {how:?}: booted slot {} is not valid", dev.booted)
                });
            assert!(
                counter >= floor,
                "cut {k}: counter {counter} below floor {floor}"
            );
            assert_eq!(
                dev.flash.violations, 0,
                "cut {k}: a write over unerased flash"
            );
            // Retry until confirmed (a cut during the trial may need the pushed again).
            let again = dev.run_update(&v2, 10_000);
            assert_eq!(again, Some(Phase::Confirmed), "cut {k} {how:?}: retry");
            let s = state::read(&mut dev.flash, &layout).state;
            assert_eq!(s.floor, 2);
            assert_eq!(
                slot_verifies(&mut dev.flash, &layout, s.active).unwrap().0,
                2
            );
            assert_eq!(dev.updater.running().version.major, 2);
            tried += 1;
        }
    }
    std::println!("power cut at {tried} points ({total} flash operations, before and torn)");
    assert_eq!(tried, 2 * total);
}

#[test]
fn a_device_reset_mid_download_resumes_from_the_last_stored_sector() {
    let len = 6 * SECTOR as usize - 10;
    let layout = Layout::compact(0, 8 * SECTOR);
    let (v1, v2) = v1_v2(len);
    let mut dev = Dev::new(factory(&layout, &v1), layout);
    dev.online();
    dev.offer(&v2);
    // Serve until about half is stored.
    while dev.updater.report().received < (len / 2) as u32 {
        dev.exchange(&v2, |_, _| {});
    }
    let before = dev.requested_bytes;
    let stored = dev.updater.report().received;
    dev.reboot();
    // Resumes on its own when online, without a new offer.
    assert_eq!(dev.run_update(&v2, 10_000), Some(Phase::Confirmed));
    let resent = dev.requested_bytes - before - (len as u64 - u64::from(stored));
    let bound = (ota_proto::MAX_WINDOW * ota_proto::MAX_CHUNK_LEN) as u64 + u64::from(SECTOR);
    assert!(resent <= bound, "sent again {resent} > {bound}");
}

#[test]
fn refusals_touch_no_flash() {
    let len = 2 * SECTOR as usize;
    let layout = Layout::compact(0, 4 * SECTOR);
    let (v1, v2) = v1_v2(len);
    let img = image(len, 3);
    let other_key = SigningKey::from_bytes(&[9; 32]);
    let mut unsigned = bundle_for(&img, (3, 0, 0), 3, Target::Esp8266);
    unsigned[HEADER_LEN..IMAGE_OFFSET].fill(0);
    let too_big = bundle_for(
        &image(5 * SECTOR as usize, 1),
        (3, 0, 0),
        3,
        Target::Esp8266,
    );
    let cases: Vec<(&str, Vec<u8>, Reason)> = std::vec![
        (
            "unknown key",
            bundle_signed(&img, (3, 0, 0), 3, Target::Esp8266, 99, &other_key),
            Reason::KeyId
        ),
        (
            "wrong key for the id",
            bundle_signed(&img, (3, 0, 0), 3, Target::Esp8266, KEY_ID, &other_key),
            Reason::Signature
        ),
        (
            "wrong target",
            bundle_for(&img, (3, 0, 0), 3, Target::Atmega168),
            Reason::Target
        ),
        ("unsigned", unsigned, Reason::Signature),
        ("too big", too_big, Reason::ImageLength),
    ];
    // The device runs v2 (floor 2) for the lower-counter case.
    let mut flash = factory(&layout, &v1);
    let mut dev = Dev::new(flash, layout);
    assert_eq!(dev.run_update(&v2, 10_000), Some(Phase::Confirmed));
    flash = dev.flash;
    let lower = bundle_for(&img, (1, 5, 0), 1, Target::Esp8266);
    let mut all = cases;
    all.push(("lower counter", lower, Reason::SecurityCounter));
    for (name, bundle, reason) in all {
        let mut copy = SimFlash::new(0);
        copy.mem = flash.mem.clone();
        let mut dev = Dev::new(copy, layout);
        dev.online();
        dev.exchange(&bundle, |_, _| {});
        let ops = dev.flash.ops;
        let mem = dev.flash.mem.clone();
        dev.offer(&bundle);
        dev.exchange(&bundle, |_, _| {});
        assert_eq!(dev.last_phase(), Some(Phase::Refused(reason)), "{name}");
        assert_eq!(dev.flash.ops, ops, "{name}: no erase, no write");
        assert!(dev.flash.mem == mem, "{name}");
        assert_eq!(dev.requested_bytes, 0, "{name}");
        assert_eq!(dev.updater.running().version.major, 2);
    }
}

#[test]
fn a_chunk_corrupted_in_transit_is_refused_after_download_and_a_retry_works() {
    let len = 3 * SECTOR as usize;
    let layout = Layout::compact(0, 4 * SECTOR);
    let (v1, v2) = v1_v2(len);
    let mut dev = Dev::new(factory(&layout, &v1), layout);
    dev.online();
    dev.offer(&v2);
    for _ in 0..100 {
        dev.exchange(&v2, |off, data| {
            if off == 5 * 1024 {
                data[7] ^= 0x40;
            }
        });
        if dev.last_phase().is_some_and(|p| p.state().is_final()) {
            break;
        }
        dev.now += 200;
        dev.updater.poll(dev.now);
    }
    assert_eq!(dev.last_phase(), Some(Phase::Refused(Reason::ImageHash)));
    assert_eq!(state::read(&mut dev.flash, &layout).state.pending, None);
    assert_eq!(dev.updater.running().version.major, 1);
    assert_eq!(dev.updater.poll(dev.now + 10_000), Action::None);
    // The same bundle again, uncorrupted: from zero, and confirmed.
    assert_eq!(dev.run_update(&v2, 10_000), Some(Phase::Confirmed));
}

#[test]
fn an_image_that_never_gets_online_is_rolled_back_and_reported() {
    let len = SECTOR as usize + 8;
    let layout = Layout::compact(0, 4 * SECTOR);
    let v1 = bundle_for(&image(len, 1), (1, 0, 0), 1, Target::Esp8266);
    let mut bad = image(len, 2);
    bad[0] = 0xBD;
    let v2 = bundle_for(&bad, (2, 0, 0), 2, Target::Esp8266);
    let mut dev = Dev::new(factory(&layout, &v1), layout);
    dev.never_online_marker = Some(0xBD);
    let end = dev.run_update(&v2, 100_000);
    assert_eq!(end, Some(Phase::RolledBack(Reason::NotConfirmed)));
    assert_eq!(dev.booted, Slot::A);
    assert_eq!(dev.updater.running().version.major, 1);
    let s = state::read(&mut dev.flash, &layout).state;
    assert_eq!((s.floor, s.active, s.pending), (0, Slot::A, None));
    // The report names the rolled-back bundle and the running version.
    let r = dev.updater.report();
    assert_eq!(r.bundle_version.major, 2);
    assert_eq!(r.running.major, 1);
    assert_eq!(r.running_slot, wire_format::ota_proto::Slot::A);
}

#[test]
fn another_bundle_is_refused_while_one_downloads_and_taken_once_it_stalls() {
    let len = 4 * SECTOR as usize;
    let layout = Layout::compact(0, 6 * SECTOR);
    let (v1, v2) = v1_v2(len);
    let v3 = bundle_for(&image(len, 3), (3, 0, 0), 3, Target::Esp8266);
    let mut dev = Dev::new(factory(&layout, &v1), layout);
    dev.online();
    dev.offer(&v2);
    dev.exchange(&v2, |_, _| {});
    dev.offer(&v3);
    let r = *dev.updater.report();
    assert_eq!(r.phase, Phase::Refused(Reason::Busy));
    assert_eq!(r.bundle_version.major, 2, "names the bundle in the way");
    // The same bundle again continues.
    dev.offer(&v2);
    assert!(matches!(
        dev.updater.report().phase,
        Phase::Downloading { .. }
    ));
    // Silence beyond the busy window: the other bundle may take over.
    dev.now += 10_000;
    for _ in 0..10 {
        dev.updater.poll(dev.now);
        dev.now += 200;
    }
    assert_eq!(dev.run_update(&v3, 10_000), Some(Phase::Confirmed));
    assert_eq!(dev.updater.running().version.major, 3);
    // The report says which slot the new image runs from: the one the loader booted.
    assert_eq!(dev.booted, Slot::B);
    assert_eq!(
        dev.updater.report().running_slot,
        wire_format::ota_proto::Slot::B
    );
}

#[test]
fn offering_the_running_bundle_reports_confirmed_without_flash_work() {
    let layout = Layout::compact(0, 4 * SECTOR);
    let (v1, _) = v1_v2(100);
    let mut dev = Dev::new(factory(&layout, &v1), layout);
    dev.online();
    let ops = dev.flash.ops;
    dev.offer(&v1);
    dev.exchange(&v1, |_, _| {});
    assert_eq!(dev.last_phase(), Some(Phase::Confirmed));
    assert_eq!(dev.flash.ops, ops);
}

#[test]
fn stray_and_hostile_chunks_are_ignored() {
    let len = 2 * SECTOR as usize;
    let layout = Layout::compact(0, 4 * SECTOR);
    let (v1, v2) = v1_v2(len);
    let mut dev = Dev::new(factory(&layout, &v1), layout);
    dev.online();
    // Before any offer.
    let junk = [0xAAu8; 64];
    let mut msg = [0u8; MAX_CHUNK_MSG];
    let n = Chunk {
        bundle_id: 1,
        offset: 0,
        data: &junk,
    }
    .emit(&mut msg)
    .unwrap();
    let ops = dev.flash.ops;
    dev.updater.on_chunk(&mut dev.flash, &msg[..n], 0).unwrap();
    dev.updater.on_chunk(&mut dev.flash, &junk, 0).unwrap();
    assert_eq!(dev.flash.ops, ops);
    dev.offer(&v2);
    // Wrong id, unaligned offset, beyond the window, wrong length: all ignored; then the real
    // bytes complete the update.
    let _ = dev.updater.next_message(&mut dev.flash, 0);
    let id = dev.updater.report().bundle_id;
    for (bid, off, len) in [
        (id ^ 1, 0, 1024),
        (id, 3, 1024),
        (id, 7 * 1024, 1024),
        (id, 0, 1000),
    ] {
        let data = std::vec![0u8; len];
        let n = Chunk {
            bundle_id: bid,
            offset: off,
            data: &data,
        }
        .emit(&mut msg)
        .unwrap();
        let ops = dev.flash.ops;
        dev.updater.on_chunk(&mut dev.flash, &msg[..n], 0).unwrap();
        assert_eq!(dev.flash.ops, ops, "{bid:x} {off} {len}");
    }
    assert_eq!(dev.run_update(&v2, 10_000), Some(Phase::Confirmed));
}

/// A query is answered once, with the report as of now, and costs no flash operation: idle, in
/// the middle of a download (counting the sectors stored since the last tenth was reported),
/// and while a changed report is waiting to go out (which answers it).
#[test]
fn a_query_is_answered_once_with_the_current_report_and_touches_no_flash() {
    let len = 12 * SECTOR as usize;
    let layout = Layout::compact(0, 16 * SECTOR);
    let (v1, v2) = v1_v2(len);
    let mut dev = Dev::new(factory(&layout, &v1), layout);
    dev.online();
    dev.exchange(&v1, |_, _| {});
    let booted = *dev.reports.last().expect("the boot report");
    assert_eq!(
        dev.updater.next_message(&mut dev.flash, dev.now),
        Ok(None),
        "idle: nothing to say until asked"
    );

    let ops = dev.flash.ops;
    dev.updater.on_query();
    dev.updater.on_query();
    assert!(dev.updater.answer_due());
    let answer = dev.updater.next_message(&mut dev.flash, dev.now);
    assert_eq!(answer, Ok(Some(Out::Answer(booted))));
    assert_eq!(
        dev.updater.next_message(&mut dev.flash, dev.now),
        Ok(None),
        "two queries before the answer: one answer"
    );
    // An answer the session could not take goes out with the next call.
    dev.updater.on_query();
    let out = dev.updater.next_message(&mut dev.flash, dev.now).unwrap();
    dev.updater.unsent(&out.unwrap());
    assert_eq!(dev.updater.next_message(&mut dev.flash, dev.now), Ok(out));
    assert_eq!(dev.flash.ops, ops, "a query costs no flash operation");

    // A changed report waiting to go out answers the query itself (it goes out live too).
    dev.offer(&v2);
    dev.updater.on_query();
    let first = dev.updater.next_message(&mut dev.flash, dev.now).unwrap();
    assert!(
        matches!(first, Some(Out::Status(s)) if s.phase == Phase::Downloading { percent: 0 }),
        "{first:?}"
    );
    assert!(!dev.updater.answer_due());
    dev.reports.push(match first {
        Some(Out::Status(s)) => s,
        _ => unreachable!(),
    });
    // One window (one sector, 8 % of the image): no new tenth, so no new report; but the
    // answer counts the stored sector.
    dev.exchange(&v2, |_, _| {});
    let reported = *dev.reports.last().unwrap();
    assert_eq!(reported.received, 0);
    dev.updater.on_query();
    let Ok(Some(Out::Answer(now))) = dev.updater.next_message(&mut dev.flash, dev.now) else {
        panic!("the query is answered before the next requests");
    };
    assert_eq!(now.phase, Phase::Downloading { percent: 8 });
    assert_eq!(now.received, SECTOR);
    assert_eq!(
        (now.bundle_id, now.image_len),
        (reported.bundle_id, len as u32)
    );
    assert_eq!(
        *dev.updater.report(),
        reported,
        "the retained report is left as it was"
    );
    // The update still completes.
    assert_eq!(dev.run_update(&v2, 10_000), Some(Phase::Confirmed));
}

/// What OTA adds to `Device` (the updater and the trusted keys) stays within its allowance.
#[test]
fn ota_state_fits_its_ram_allowance() {
    let updater = core::mem::size_of::<Updater>();
    let ota = core::mem::size_of::<super::app::Ota>();
    std::println!("Updater: {updater} bytes, Ota: {ota} bytes");
    assert!(ota <= crate::settings::OTA_RAM_BUDGET, "{ota}");
}

/// A hostile or broken operator: random sequences of offers (good, damaged, other bundles),
/// chunks (right, wrong, out of window, garbage bytes), polls and resets, from a fixed seed so
/// CI runs the same cases every time. Whatever arrives, the updater never panics, never programs
/// a bit that is not erased, never touches the active slot or the boot state unless a verified
/// image is marked, and the device always boots a whole, validly signed image.
#[test]
fn random_message_sequences_never_break_the_invariants() {
    use proptest::prelude::*;
    use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

    let len = 2 * SECTOR as usize + 100;
    let layout = Layout::compact(0, 4 * SECTOR);
    let (v1, v2) = v1_v2(len);
    let v3 = bundle_for(&image(len, 3), (3, 0, 0), 3, Target::Esp8266);
    let mut damaged = v2.clone();
    damaged[IMAGE_OFFSET + 5] ^= 1;
    let bundles = [v2.clone(), v3, damaged];
    let start = factory(&layout, &v1);
    let active_a =
        layout.slot(Slot::A).image as usize..layout.slot(Slot::A).trailer as usize + 4096;

    let op = prop_oneof![
        (0usize..3).prop_map(Op::Offer),
        (0usize..3, 0u32..4, any::<bool>()).prop_map(|(b, c, bad)| Op::Chunk(b, c, bad)),
        proptest::collection::vec(any::<u8>(), 0..40).prop_map(Op::Garbage),
        (1u64..20_000).prop_map(Op::Wait),
        Just(Op::Exchange),
        Just(Op::Reset),
        Just(Op::Query),
    ];
    let mut runner = TestRunner::new_with_rng(
        Config {
            cases: 32,
            failure_persistence: None,
            ..Config::default()
        },
        TestRng::from_seed(RngAlgorithm::ChaCha, &[0x07; 32]),
    );
    runner
        .run(&proptest::collection::vec(op, 1..40), |ops| {
            let mut copy = SimFlash::new(0);
            copy.mem = start.mem.clone();
            let mut dev = Dev::new(copy, layout);
            dev.online();
            let a_before = dev.flash.mem[active_a.clone()].to_vec();
            for op in ops {
                match op {
                    Op::Offer(b) => dev.offer(&bundles[b]),
                    Op::Chunk(b, c, bad) => {
                        let bundle = &bundles[b];
                        let id = ota_proto::bundle_id(&signing_message(
                            bundle[..HEADER_LEN].try_into().unwrap(),
                        ));
                        let off = c as usize * 1024;
                        let end = (off + 1024).min(len);
                        let mut data = bundle[IMAGE_OFFSET + off..IMAGE_OFFSET + end].to_vec();
                        if bad {
                            data[0] ^= 0xFF;
                        }
                        let mut msg = [0u8; MAX_CHUNK_MSG];
                        let n = Chunk {
                            bundle_id: id,
                            offset: off as u32,
                            data: &data,
                        }
                        .emit(&mut msg)
                        .unwrap();
                        let _ = dev.updater.on_chunk(&mut dev.flash, &msg[..n], dev.now);
                    }
                    Op::Garbage(g) => {
                        let _ = dev.updater.on_chunk(&mut dev.flash, &g, dev.now);
                        let _ = dev.updater.on_offer(&mut dev.flash, &keys(), &g, dev.now);
                    }
                    Op::Wait(ms) => {
                        dev.now += ms;
                        if dev.updater.poll(dev.now) == Action::Reboot {
                            dev.reboot();
                            dev.online();
                        }
                    }
                    Op::Exchange => {
                        dev.exchange(&bundles[0], |_, _| {});
                    }
                    Op::Reset => {
                        dev.reboot();
                        dev.online();
                    }
                    Op::Query => dev.updater.on_query(),
                }
                prop_assert_eq!(dev.flash.violations, 0);
                let s = state::read(&mut dev.flash, &layout).state;
                // Slot A stays untouched while it is the active image.
                if s.active == Slot::A {
                    prop_assert!(dev.flash.mem[active_a.clone()] == a_before[..]);
                }
            }
            // Whatever is active or pending is a whole, validly signed image.
            let s = state::read(&mut dev.flash, &layout).state;
            prop_assert!(slot_verifies(&mut dev.flash, &layout, s.active).is_some());
            if let Some(p) = s.pending {
                prop_assert!(slot_verifies(&mut dev.flash, &layout, p).is_some());
            }
            Ok(())
        })
        .unwrap();
}

#[derive(Debug, Clone)]
enum Op {
    Offer(usize),
    Chunk(usize, u32, bool),
    Garbage(std::vec::Vec<u8>),
    Wait(u64),
    Exchange,
    Reset,
    Query,
}
