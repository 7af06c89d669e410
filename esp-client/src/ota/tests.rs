//! The boot decision over every boot state and every pair of stored copies, the record format,
//! the trailer, and docs/flash-layout.md against the code.

use std::string::String;
use std::vec::Vec;

use super::boot::{self, decide, BootKind};
use super::layout::{Layout, Slot, SECTOR};
use super::sim::SimFlash;
use super::state::{self, field, BootState, Outcome, Stored, MAX_TRIAL_BOOTS, RECORD_LEN};
use super::trailer;

const SLOTS: [Slot; 2] = [Slot::A, Slot::B];
const OUTCOMES: [Outcome; 3] = [Outcome::None, Outcome::Confirmed, Outcome::RolledBack];

/// Every boot state the record can express (counters and sequence at a few values).
fn all_states() -> Vec<BootState> {
    let mut out = Vec::new();
    for active in SLOTS {
        for pending in [None, Some(active.other())] {
            for trial_boots in 0..=MAX_TRIAL_BOOTS {
                if pending.is_none() && trial_boots != 0 {
                    continue;
                }
                for outcome in OUTCOMES {
                    for (floor, pending_counter) in [(0, 0), (3, 3), (3, 9), (u32::MAX, u32::MAX)] {
                        for seq in [0, 1, 7, u32::MAX - 1] {
                            out.push(BootState {
                                seq,
                                active,
                                pending,
                                trial_boots,
                                floor,
                                pending_counter,
                                outcome,
                                outcome_bundle: 0xB0B0_u32.wrapping_add(seq),
                            });
                        }
                    }
                }
            }
        }
    }
    out
}

#[test]
fn every_boot_state_round_trips_and_every_bit_flip_is_refused() {
    let states = all_states();
    assert_eq!(states.len(), 480);
    for s in &states {
        let b = s.to_bytes();
        assert_eq!(BootState::parse(&b), Some(*s));
        for bit in 0..RECORD_LEN * 8 {
            let mut f = b;
            f[bit / 8] ^= 1 << (bit % 8);
            assert_eq!(BootState::parse(&f), None, "{s:?} bit {bit}");
        }
        // Every torn write (a prefix programmed over erased flash) is refused too.
        for n in 0..RECORD_LEN {
            let mut t = [0xFF; RECORD_LEN];
            t[..n].copy_from_slice(&b[..n]);
            // (Unless the missing bytes happen to be FF anyway: then it is the whole record.)
            let expect = if t == b { Some(*s) } else { None };
            assert_eq!(BootState::parse(&t), expect, "torn at {n}");
        }
    }
    assert_eq!(BootState::parse(&[0xFF; RECORD_LEN]), None);
    assert_eq!(BootState::parse(&[0; RECORD_LEN]), None);
}

#[test]
fn records_that_pass_the_crc_but_make_no_sense_are_refused() {
    let good = BootState {
        pending: Some(Slot::B),
        trial_boots: 1,
        ..BootState::FACTORY
    };
    let reseal = |mut b: [u8; RECORD_LEN]| {
        let crc = state::crc32(&b[..field::CRC.start]);
        b[field::CRC].copy_from_slice(&crc.to_le_bytes());
        b
    };
    for (at, v) in [
        (field::ACTIVE.start, 2),                        // no slot C
        (field::PENDING.start, 0),                       // pending = active
        (field::PENDING.start, 5),                       // no such slot
        (field::TRIAL_BOOTS.start, MAX_TRIAL_BOOTS + 1), // beyond the bound
        (field::OUTCOME.start, 3),                       // unknown outcome
        (field::FORMAT.start, 2),                        // other format
    ] {
        let mut b = good.to_bytes();
        b[at] = v;
        assert_eq!(BootState::parse(&reseal(b)), None, "byte {at} = {v}");
    }
    let idle_with_trials = BootState {
        pending: None,
        ..good
    };
    let mut b = idle_with_trials.to_bytes();
    b[field::TRIAL_BOOTS.start] = 1;
    assert_eq!(BootState::parse(&reseal(b)), None);
}

#[test]
fn decide_is_right_for_every_state() {
    for s in all_states() {
        let d = decide(&s);
        match s.pending {
            Some(p) if s.trial_boots < MAX_TRIAL_BOOTS => {
                assert_eq!(d.slot, p);
                assert_eq!(
                    d.kind,
                    BootKind::Trial {
                        attempt: s.trial_boots + 1
                    }
                );
                let next = d.persist.expect("a trial boot is counted before it starts");
                assert_eq!(next.trial_boots, s.trial_boots + 1);
                assert_eq!(
                    (next.active, next.pending, next.floor),
                    (s.active, s.pending, s.floor)
                );
                assert_eq!(next.running(), p);
            }
            Some(_) => {
                assert_eq!(d.slot, s.active);
                assert_eq!(d.kind, BootKind::RolledBack);
                let next = d.persist.expect("a rollback is recorded");
                assert_eq!(next.pending, None);
                assert_eq!(next.trial_boots, 0);
                assert_eq!(next.outcome, Outcome::RolledBack);
                assert_eq!(next.floor, s.floor, "a rollback never moves the floor");
                assert_eq!(next.outcome_bundle, s.outcome_bundle);
            }
            None => {
                assert_eq!(d.slot, s.active);
                assert_eq!(d.kind, BootKind::Normal);
                assert_eq!(d.persist, None);
            }
        }
        // Only the confirmed slot or the pending one ever boots.
        assert!(d.slot == s.active || Some(d.slot) == s.pending);
        // What gets persisted is itself a valid record.
        if let Some(n) = d.persist {
            assert_eq!(BootState::parse(&n.to_bytes()), Some(n));
        }
    }
}

#[test]
fn an_unconfirmed_image_gets_exactly_the_bounded_trial_boots_then_rolls_back() {
    let layout = Layout::compact(0, 8 * SECTOR);
    let mut flash = SimFlash::new(layout.end() as usize);
    let current = state::read(&mut flash, &layout);
    assert_eq!(current.copy, None);
    let pending = BootState {
        pending: Some(Slot::B),
        pending_counter: 4,
        outcome_bundle: 77,
        ..BootState::FACTORY
    };
    state::write(&mut flash, &layout, &current, pending).unwrap();
    let mut trials = 0;
    loop {
        let b = boot::boot(&mut flash, &layout);
        match b.kind {
            BootKind::Trial { attempt } => {
                trials += 1;
                assert_eq!(attempt, trials);
                assert_eq!(b.slot, Slot::B);
                assert_eq!(state::read(&mut flash, &layout).state.running(), Slot::B);
            }
            BootKind::RolledBack => {
                assert_eq!(b.slot, Slot::A);
                break;
            }
            BootKind::Normal => panic!("normal boot before the rollback"),
        }
    }
    assert_eq!(trials, MAX_TRIAL_BOOTS);
    let after = state::read(&mut flash, &layout).state;
    assert_eq!(after.outcome, Outcome::RolledBack);
    assert_eq!(after.outcome_bundle, 77);
    assert_eq!(after.floor, 0);
    let b = boot::boot(&mut flash, &layout);
    assert_eq!((b.slot, b.kind), (Slot::A, BootKind::Normal));
}

#[test]
fn confirm_makes_the_trial_image_active_and_raises_the_floor_only_then() {
    let layout = Layout::compact(0, 8 * SECTOR);
    let mut flash = SimFlash::new(layout.end() as usize);
    let start = state::read(&mut flash, &layout);
    let s = state::write(
        &mut flash,
        &layout,
        &start,
        BootState {
            floor: 2,
            pending: Some(Slot::B),
            pending_counter: 5,
            ..BootState::FACTORY
        },
    )
    .unwrap();
    // Not booted yet: nothing to confirm, the floor stays.
    assert_eq!(boot::confirm(&mut flash, &layout, &s).unwrap(), None);
    assert_eq!(state::read(&mut flash, &layout).state.floor, 2);
    boot::boot(&mut flash, &layout);
    let s = state::read(&mut flash, &layout);
    assert_eq!(s.state.floor, 2, "the floor does not rise on a trial boot");
    let c = boot::confirm(&mut flash, &layout, &s).unwrap().unwrap();
    assert_eq!(c.state.active, Slot::B);
    assert_eq!(c.state.pending, None);
    assert_eq!(c.state.floor, 5);
    assert_eq!(c.state.outcome, Outcome::Confirmed);
    assert_eq!(state::read(&mut flash, &layout), c);
    assert_eq!(boot::boot(&mut flash, &layout).slot, Slot::B);
    // A second confirm is a no-op.
    assert_eq!(boot::confirm(&mut flash, &layout, &c).unwrap(), None);
    assert_eq!(flash.violations, 0);
}

/// What a state sector can hold after any history: erased, garbage, a torn record, or a whole
/// record with some sequence number.
fn copy_contents() -> Vec<(String, Vec<u8>, Option<BootState>)> {
    let mut out = Vec::new();
    out.push(("erased".into(), std::vec![0xFF; RECORD_LEN], None));
    out.push(("zeros".into(), std::vec![0; RECORD_LEN], None));
    for seq in [0u32, 1, 2, 9] {
        for s in [
            BootState {
                seq,
                ..BootState::FACTORY
            },
            BootState {
                seq,
                active: Slot::B,
                pending: Some(Slot::A),
                trial_boots: 2,
                floor: 4,
                pending_counter: 6,
                outcome: Outcome::None,
                outcome_bundle: 3,
            },
        ] {
            let b = s.to_bytes();
            out.push((std::format!("{s:?}"), b.to_vec(), Some(s)));
            let mut torn = std::vec![0xFF; RECORD_LEN];
            torn[..RECORD_LEN / 2].copy_from_slice(&b[..RECORD_LEN / 2]);
            out.push((std::format!("torn {seq}"), torn, None));
        }
    }
    out
}

#[test]
fn choose_slot_picks_the_newest_valid_copy_for_every_pair() {
    let layout = Layout::compact(0, 4 * SECTOR);
    let contents = copy_contents();
    let mut pairs = 0;
    for (n0, b0, s0) in &contents {
        for (n1, b1, s1) in &contents {
            let mut flash = SimFlash::new(layout.end() as usize);
            flash.mem[layout.state[0] as usize..][..RECORD_LEN].copy_from_slice(b0);
            flash.mem[layout.state[1] as usize..][..RECORD_LEN].copy_from_slice(b1);
            let expect = match (s0, s1) {
                (Some(a), Some(b)) if b.seq > a.seq => (*b, Some(1)),
                (Some(a), _) => (*a, Some(0)),
                (None, Some(b)) => (*b, Some(1)),
                (None, None) => (BootState::FACTORY, None),
            };
            let got = state::read(&mut flash, &layout);
            assert_eq!(
                got,
                Stored {
                    state: expect.0,
                    copy: expect.1
                },
                "{n0} / {n1}"
            );
            assert_eq!(boot::choose_slot(&mut flash, &layout), decide(&expect.0));
            // The next write goes to the other copy and wins.
            let next = state::write(&mut flash, &layout, &got, expect.0).unwrap();
            assert_ne!(next.copy, got.copy);
            assert_eq!(state::read(&mut flash, &layout), next);
            pairs += 1;
        }
    }
    assert_eq!(pairs, contents.len() * contents.len());
}

#[test]
fn trailer_marks_count_in_order_and_a_torn_mark_is_not_done() {
    let layout = Layout::compact(0, 8 * SECTOR);
    let region = layout.slot(Slot::B);
    let mut flash = SimFlash::new(layout.end() as usize);
    assert_eq!(trailer::read_prefix(&mut flash, region), None);
    let prefix = [0x42u8; wire_format::ota::IMAGE_OFFSET];
    trailer::begin(&mut flash, region, &prefix).unwrap();
    assert_eq!(trailer::read_prefix(&mut flash, region), Some(prefix));
    assert_eq!(
        trailer::completed_sectors(&mut flash, region, 8).unwrap(),
        0
    );
    for i in 0..3 {
        trailer::mark_sector(&mut flash, region, i).unwrap();
    }
    assert_eq!(
        trailer::completed_sectors(&mut flash, region, 8).unwrap(),
        3
    );
    assert_eq!(
        trailer::completed_sectors(&mut flash, region, 2).unwrap(),
        2
    );
    // A half-programmed mark word.
    let at = (region.trailer + trailer::field::MARKS as u32 + 12) as usize;
    flash.mem[at..at + 2].fill(0);
    assert_eq!(
        trailer::completed_sectors(&mut flash, region, 8).unwrap(),
        3
    );
    // A mark beyond a gap does not count.
    trailer::mark_sector(&mut flash, region, 5).unwrap();
    assert_eq!(
        trailer::completed_sectors(&mut flash, region, 8).unwrap(),
        3
    );
    // Any damage to the stored offer makes it absent.
    for i in 0..(trailer::field::PREFIX.end) {
        let mut f = SimFlash::new(layout.end() as usize);
        trailer::begin(&mut f, region, &prefix).unwrap();
        f.mem[region.trailer as usize + i] ^= 0x10;
        assert_eq!(trailer::read_prefix(&mut f, region), None, "byte {i}");
    }
    assert!(trailer::MAX_SECTORS >= Layout::ESP8266_4M.slots[0].image_max / SECTOR);
}

#[test]
fn layouts_are_aligned_and_disjoint() {
    assert!(Layout::ESP8266_4M.is_valid());
    for max in [SECTOR, 5 * SECTOR, 0xFD000] {
        assert!(Layout::compact(8192, max).is_valid());
    }
    let l = Layout::ESP8266_4M;
    // One build runs from either slot: the same offset inside each 1 MiB window.
    assert_eq!(l.slots[0].image % 0x10_0000, l.slots[1].image % 0x10_0000);
    assert_ne!(l.slots[0].image / 0x10_0000, l.slots[1].image / 0x10_0000);
    // Each slot, trailer included, inside its own window.
    for s in l.slots {
        assert_eq!(s.image / 0x10_0000, (s.trailer + SECTOR - 1) / 0x10_0000);
    }
    assert!(Layout::ESP8266_LOADER + Layout::ESP8266_LOADER_MAX <= l.slots[0].image);
    // Below the device config sector (docs/device-config.md) and the SDK's sectors.
    assert!(l.end() <= 0x3F_9000);
}

const DOC: &str = include_str!("../../../docs/flash-layout.md");

/// docs/flash-layout.md's address map and record table are the code's.
#[test]
fn doc_tables_match_the_code() {
    let rows = |marker: &str| -> Vec<Vec<String>> {
        let rest = DOC
            .split(marker)
            .nth(1)
            .unwrap_or_else(|| panic!("docs/flash-layout.md has {marker}"));
        rest.lines()
            .skip_while(|l| !l.starts_with('|'))
            .take_while(|l| l.starts_with('|'))
            .skip(2)
            .map(|l| {
                l.split('|')
                    .map(|c| String::from(c.trim().trim_matches('`')))
                    .filter(|c| !c.is_empty())
                    .collect()
            })
            .collect()
    };
    let hex = |s: &str| u32::from_str_radix(s.trim_start_matches("0x"), 16).unwrap();
    let map: Vec<(u32, u32, String)> = rows("<!-- table: map -->")
        .iter()
        .map(|r| (hex(&r[0]), hex(&r[1]), r[2].clone()))
        .collect();
    let l = Layout::ESP8266_4M;
    let code = [
        (Layout::ESP8266_LOADER, Layout::ESP8266_LOADER_MAX, "loader"),
        (l.slots[0].image, l.slots[0].image_max, "slot A image"),
        (l.slots[0].trailer, SECTOR, "slot A trailer"),
        (l.state[0], SECTOR, "boot state, copy 0"),
        (l.state[1], SECTOR, "boot state, copy 1"),
        (l.slots[1].image, l.slots[1].image_max, "slot B image"),
        (l.slots[1].trailer, SECTOR, "slot B trailer"),
        (0x20_0000, 0x1F_9000, "free"),
        (0x3F_9000, SECTOR, "device config"),
        (0x3F_A000, SECTOR, "device state"),
        (0x3F_B000, SECTOR, "RF calibration (SDK)"),
        (0x3F_C000, 4 * SECTOR, "SDK parameters"),
    ];
    let code: Vec<(u32, u32, String)> = code
        .iter()
        .map(|(a, n, s)| (*a, *n, String::from(*s)))
        .collect();
    assert_eq!(map, code);
    // Contiguous from 0 to 4 MiB.
    let mut at = 0;
    for (a, n, _) in &map {
        assert_eq!(*a, at);
        at += n;
    }
    assert_eq!(at, 0x40_0000);

    let record: Vec<(usize, usize, String)> = rows("<!-- table: boot-state -->")
        .iter()
        .map(|r| (r[0].parse().unwrap(), r[1].parse().unwrap(), r[3].clone()))
        .collect();
    let code = [
        ("magic", field::MAGIC),
        ("format", field::FORMAT),
        ("active", field::ACTIVE),
        ("pending", field::PENDING),
        ("trial_boots", field::TRIAL_BOOTS),
        ("seq", field::SEQ),
        ("floor", field::FLOOR),
        ("pending_counter", field::PENDING_COUNTER),
        ("outcome", field::OUTCOME),
        ("reserved", field::RESERVED),
        ("bundle_id", field::OUTCOME_BUNDLE),
        ("crc", field::CRC),
    ];
    let code: Vec<(usize, usize, String)> = code
        .iter()
        .map(|(n, r)| (r.start, r.end - r.start, String::from(*n)))
        .collect();
    assert_eq!(record, code);
    assert!(DOC.contains(&std::format!("`MAX_TRIAL_BOOTS` = {MAX_TRIAL_BOOTS}")));
}

/// A power cut at every flash operation of the boot-state part of an update (mark pending,
/// three trial boots, rollback; or trial boot and confirm), before the operation and torn: the
/// record read back afterwards is always one the uncut history passes through, and the device
/// boots a slot it may boot.
#[test]
fn every_cut_in_a_boot_state_change_leaves_the_old_or_the_new_record() {
    use super::sim::Cut;
    let layout = Layout::compact(0, 4 * SECTOR);
    let pending = BootState {
        pending: Some(Slot::B),
        pending_counter: 9,
        outcome_bundle: 5,
        floor: 2,
        ..BootState::FACTORY
    };
    let mut cuts = 0;
    for confirm in [false, true] {
        let run = |flash: &mut SimFlash| {
            let s = state::read(flash, &layout);
            if state::write(flash, &layout, &s, pending).is_err() {
                return;
            }
            if confirm {
                boot::boot(flash, &layout);
                let s = state::read(flash, &layout);
                let _ = boot::confirm(flash, &layout, &s);
            } else {
                for _ in 0..=MAX_TRIAL_BOOTS {
                    boot::boot(flash, &layout);
                }
            }
        };
        let mut clean = SimFlash::new(layout.end() as usize);
        run(&mut clean);
        let total = clean.ops;
        // Every record the uncut history passes through (cut cleanly between operations).
        let mut seen = std::vec![BootState::FACTORY];
        for j in 0..=total {
            let mut f = SimFlash::new(layout.end() as usize);
            f.cut_at(j, Cut::Before);
            run(&mut f);
            f.power_on();
            seen.push(state::read(&mut f, &layout).state);
        }
        for k in 0..total {
            for how in [Cut::Before, Cut::Torn] {
                let mut flash = SimFlash::new(layout.end() as usize);
                flash.cut_at(k, how);
                run(&mut flash);
                assert!(flash.dead, "cut {k} happened");
                flash.power_on();
                let after = state::read(&mut flash, &layout).state;
                assert!(seen.contains(&after), "cut at {k} ({how:?}) left {after:?}");
                let b = boot::boot(&mut flash, &layout);
                assert!(b.slot == after.active || Some(b.slot) == after.pending);
                assert!(after.floor <= 2 || (confirm && after.floor == 9));
                assert_eq!(flash.violations, 0);
                cuts += 1;
            }
        }
    }
    std::println!("boot state: {cuts} power cuts tried");
    assert!(cuts >= 16);
}
