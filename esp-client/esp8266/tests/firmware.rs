//! The ESP8266 build (`build.sh`, what `just firmware` runs), checked from the outside:
//!
//! - the esp-client core on the LX106: the core's scenarios (src/sim.rs), compiled for the
//!   ESP8266's CPU the way the firmware is (nightly rustc → assembly → GNU as → lx106 gcc), run
//!   in `qemu-system-xtensa -M sim -cpu lx106`; the transcript must equal the committed one,
//!   which the host run of the same code prints too (src/sim.rs tests);
//! - the images: the application image esptool wrote must pass the same checks the loader
//!   makes before it jumps (src/image.rs), and both images must pass `esptool image-info`;
//! - the size gates, which `build.sh` enforces (it fails, so this test fails).
//!
//! Needs the nightly toolchain with rust-src, Debian's gcc-xtensa-lx106,
//! picolibc-xtensa-lx106-elf and qemu-system-misc, and esptool (pip); a missing one fails the
//! test, naming it.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Runs build.sh once per test process; returns its output directory.
fn build() -> &'static Path {
    let what = "all";
    static OUT: OnceLock<PathBuf> = OnceLock::new();
    OUT.get_or_init(|| {
        let out = root().join("target/esp8266");
        let run = Command::new("bash")
            .arg(root().join("esp-client/esp8266/build.sh"))
            .arg(what)
            .env("ESP8266_OUT", &out)
            .output()
            .expect("cannot run bash");
        assert!(
            run.status.success(),
            "esp-client/esp8266/build.sh {what} failed ({}):\n{}\n{}",
            run.status,
            String::from_utf8_lossy(&run.stdout),
            String::from_utf8_lossy(&run.stderr)
        );
        print!("{}", String::from_utf8_lossy(&run.stdout));
        out
    })
}

/// Runs an ELF on the LX106 core with semihosting (qemu/run.sh, as the TLS replay does);
/// (exit code, stdout).
fn qemu(elf: &Path) -> (i32, String) {
    qemu_with(elf, None)
}

/// The same, with a raw `flash` image at 0x50000000 (RAM in QEMU's `sim` machine).
fn qemu_with(elf: &Path, flash: Option<&Path>) -> (i32, String) {
    let out = Command::new("bash")
        .arg(root().join("esp-client/esp8266/qemu/run.sh"))
        .arg(elf)
        .args(flash)
        .output()
        .expect("cannot run bash");
    let code = out.status.code().unwrap_or(-1);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_ne!(code, 127, "{stderr}");
    // A hung program is stopped by the runner's time limit.
    assert_ne!(
        code,
        124,
        "{} did not finish in time: {stderr}",
        elf.display()
    );
    (code, String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn the_core_runs_its_scenarios_on_the_lx106_with_the_host_transcript() {
    let out = build();
    let (code, stdout) = qemu(&out.join("lx106-sim.elf"));
    let (first, body) = stdout.split_once('\n').unwrap_or((&stdout, ""));
    assert_eq!(
        first,
        "== esp-client core on LX106: boot, command round trip, dropped connection, OTA, failover",
        "not the LX106 build, or no output:\n{stdout}"
    );
    let want = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/lx106-transcript.txt"),
    )
    .unwrap();
    assert_eq!(
        body, want,
        "the LX106 transcript differs from tests/lx106-transcript.txt"
    );
    assert_eq!(code, 0, "the scenarios reported a failure:\n{stdout}");
}

fn elf_entry(elf: &[u8]) -> u32 {
    assert_eq!(&elf[..4], b"\x7fELF");
    u32::from_le_bytes(elf[24..28].try_into().unwrap())
}

#[test]
fn the_application_image_passes_the_loaders_checks() {
    use esp8266_board::{image, layout};
    let out = build();
    let bin = std::fs::read(out.join("app.bin")).unwrap();
    let read = |o: u32, buf: &mut [u8]| -> Result<(), ()> {
        let s = bin.get(o as usize..o as usize + buf.len()).ok_or(())?;
        buf.copy_from_slice(s);
        Ok(())
    };
    let ram = [layout::APP_IRAM, layout::APP_DRAM];
    let img = image::parse(read, layout::SLOT_SIZE, &ram).expect("the loader would refuse it");
    image::check_crc(read, &img, &mut [0u8; 256]).expect("CRC-32");
    assert_eq!(img.size() as usize, bin.len(), "image length");
    let elf = std::fs::read(out.join("app.elf")).unwrap();
    assert_eq!(img.entry, elf_entry(&elf), "entry point");
    // The XOR checksum the loader computes over what it loaded.
    let mut sum = image::CHECKSUM_SEED;
    for s in img.segments() {
        let data = &bin[s.offset as usize..(s.offset + s.len) as usize];
        let words: Vec<u32> = data
            .chunks(4)
            .map(|c| u32::from_le_bytes(c.try_into().unwrap()))
            .collect();
        sum = image::xor_words(sum, &words);
    }
    assert_eq!(sum, bin[img.checksum_at as usize], "checksum");
    // irom0 is linked where the cache maps it from either slot.
    assert_eq!(img.irom_len as usize % 16, 0);
    let mut flipped = bin.clone();
    flipped[100] ^= 1;
    let read_bad = |o: u32, buf: &mut [u8]| -> Result<(), ()> {
        buf.copy_from_slice(&flipped[o as usize..o as usize + buf.len()]);
        Ok(())
    };
    assert!(matches!(
        image::check_crc(read_bad, &img, &mut [0u8; 256]),
        Err(image::ImageError::Crc { .. })
    ));
}

#[test]
fn the_images_pass_esptool_and_the_size_gates_printed_their_figures() {
    let out = build();
    for img in ["loader.bin", "app.bin"] {
        let o = Command::new("esptool")
            .args(["--chip", "esp8266", "image-info"])
            .arg(out.join(img))
            .output()
            .expect("esptool not found: pip install esptool");
        let text = String::from_utf8_lossy(&o.stdout);
        assert!(
            o.status.success() && text.contains("(valid)"),
            "{img}: {text}"
        );
    }
    let sizes = std::fs::read_to_string(out.join("sizes.txt")).unwrap();
    for key in [
        "iram_bytes",
        "irom0_bytes",
        "app_image_bytes",
        "dram_static_bytes",
        "heap_free_at_boot_bytes",
        "loader_image_bytes",
    ] {
        assert!(
            sizes.contains(key),
            "{key} missing from sizes.txt:\n{sizes}"
        );
    }
    let heap: u32 = sizes
        .lines()
        .find_map(|l| l.strip_prefix("heap_free_at_boot_bytes "))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap();
    assert!(heap >= 28 * 1024, "heap free at boot {heap} < 28 KiB");
    assert_eq!(
        std::fs::read(out.join("esp_init_data_default_v08.bin"))
            .unwrap()
            .len(),
        128
    );
}

/// The loader (the same object as loader.bin) on the LX106 in QEMU, over a 2 MiB flash image
/// holding real application images: every boot decision, every refusal, what it writes.
mod loader {
    use super::*;
    use esp8266_board::{image, layout};
    use esp_client::ota::{BootState, Outcome, Slot};

    struct Run {
        code: i32,
        out: String,
    }

    impl Run {
        fn value(&self, key: &str) -> String {
            self.out
                .lines()
                .find_map(|l| l.strip_prefix(key).and_then(|r| r.strip_prefix(' ')))
                .unwrap_or_else(|| panic!("no `{key}` line in:\n{}", self.out))
                .to_string()
        }
        fn word(&self, key: &str) -> u32 {
            u32::from_str_radix(&self.value(key), 16).unwrap()
        }
        fn state(&self, copy: usize) -> Option<BootState> {
            let hex = self.value(&format!("state{copy}"));
            let bytes: Vec<u8> = (0..hex.len() / 2)
                .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap())
                .collect();
            BootState::parse(&bytes)
        }
        fn has(&self, line: &str) -> bool {
            self.out.lines().any(|l| l.trim_end() == line)
        }
    }

    fn app() -> Vec<u8> {
        std::fs::read(build().join("app.bin")).unwrap()
    }

    /// Boots a flash image with `a`/`b` in the slots and `state` in boot state copy 0.
    fn boot(name: &str, a: Option<&[u8]>, b: Option<&[u8]>, state: Option<BootState>) -> Run {
        let out = build();
        let mut flash = vec![0xFFu8; 2 << 20];
        for (img, at) in [(a, layout::SLOT_A), (b, layout::SLOT_B)] {
            if let Some(img) = img {
                flash[at as usize..at as usize + img.len()].copy_from_slice(img);
            }
        }
        if let Some(s) = state {
            let at = layout::BOOT_STATE[0] as usize;
            flash[at..at + 32].copy_from_slice(&s.to_bytes());
        }
        let dir = out.join("loader-sim");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{name}.flash"));
        std::fs::write(&path, &flash).unwrap();
        let (code, out) = qemu_with(&out.join("loader-sim.elf"), Some(&path));
        Run { code, out }
    }

    /// zlib's CRC-32 (the `crc` crate), independent of the loader's nibble table.
    fn crc32(data: &[u8]) -> u32 {
        crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC).checksum(data)
    }

    /// What application IRAM and DRAM must hold once `app` is loaded into zeroed RAM.
    fn expected_ram(app: &[u8]) -> (u32, u32, u32) {
        let read = |o: u32, buf: &mut [u8]| -> Result<(), ()> {
            buf.copy_from_slice(app.get(o as usize..o as usize + buf.len()).ok_or(())?);
            Ok(())
        };
        let img = image::parse(
            read,
            layout::SLOT_SIZE,
            &[layout::APP_IRAM, layout::APP_DRAM],
        )
        .unwrap();
        let (mut iram, mut dram) = (vec![0u8; 0x8000], vec![0u8; 0x10000]);
        for s in img.segments() {
            let data = &app[s.offset as usize..(s.offset + s.len) as usize];
            let (mem, base) = if layout::APP_IRAM.contains(&s.addr) {
                (&mut iram, layout::APP_IRAM.start)
            } else {
                (&mut dram, layout::APP_DRAM.start)
            };
            let o = (s.addr - base) as usize;
            mem[o..o + data.len()].copy_from_slice(data);
        }
        (img.entry, crc32(&iram), crc32(&dram))
    }

    fn assert_booted(r: &Run, slot: u32) {
        assert_eq!(r.code, 0, "{}", r.out);
        let (entry, iram, dram) = expected_ram(&app());
        assert_eq!(r.word("jump"), entry, "{}", r.out);
        assert_eq!(r.word("rtc_magic"), layout::BOOT_INFO_MAGIC);
        assert_eq!(r.word("rtc_slot"), slot);
        assert_eq!(
            r.word("rtc_window"),
            slot,
            "slot A is in window 0, B in window 1"
        );
        assert_eq!(r.word("iram_crc"), iram, "IRAM as loaded\n{}", r.out);
        assert_eq!(r.word("dram_crc"), dram, "DRAM as loaded\n{}", r.out);
    }

    #[test]
    fn factory_flash_boots_slot_a_and_writes_nothing() {
        let app = app();
        let r = boot("factory", Some(&app), None, None);
        assert!(r.has("loader: boot state: slot A (confirmed)"), "{}", r.out);
        assert!(
            r.out.contains("loader: slot A at 0x00002000: ok, entry 0x"),
            "{}",
            r.out
        );
        assert_booted(&r, 0);
        assert_eq!((r.state(0), r.state(1)), (None, None), "nothing to persist");
    }

    #[test]
    fn a_pending_update_gets_a_counted_trial_boot_in_slot_b() {
        let app = app();
        let pending = BootState {
            seq: 7,
            pending: Some(Slot::B),
            pending_counter: 3,
            ..BootState::FACTORY
        };
        let r = boot("trial", Some(&app), Some(&app), Some(pending));
        assert!(
            r.has("loader: boot state: slot B on trial, boot 1 of 3"),
            "{}",
            r.out
        );
        assert_booted(&r, 1);
        // The count went to the other copy before the jump; the old record is untouched.
        assert_eq!(r.state(0), Some(pending));
        assert_eq!(
            r.state(1),
            Some(BootState {
                seq: 8,
                trial_boots: 1,
                ..pending
            })
        );
    }

    #[test]
    fn used_up_trials_roll_back_to_the_confirmed_slot() {
        let app = app();
        let spent = BootState {
            seq: 9,
            pending: Some(Slot::B),
            trial_boots: 3,
            pending_counter: 3,
            outcome_bundle: 42,
            ..BootState::FACTORY
        };
        let r = boot("rollback", Some(&app), Some(&app), Some(spent));
        assert!(
            r.has("loader: boot state: slot A (update rolled back)"),
            "{}",
            r.out
        );
        assert_booted(&r, 0);
        let after = r.state(1).expect("the rollback was persisted");
        assert_eq!(
            (after.seq, after.pending, after.trial_boots, after.outcome),
            (10, None, 0, Outcome::RolledBack)
        );
    }

    #[test]
    fn a_corrupt_image_is_refused_and_the_other_slot_boots() {
        let app = app();
        let mut bad = app.clone();
        bad[app.len() / 2] ^= 0x40;
        let r = boot("corrupt", Some(&bad), Some(&app), None);
        assert!(
            r.has("loader: slot A at 0x00002000: CRC-32 mismatch"),
            "{}",
            r.out
        );
        assert_booted(&r, 1);
    }

    #[test]
    fn an_image_aimed_at_the_loaders_own_ram_is_refused() {
        // Move the first RAM segment onto the loader's IRAM (0x4010C000); fix the CRC so only
        // the bounds check can catch it.
        let mut app = app();
        let read = |o: u32, buf: &mut [u8]| -> Result<(), ()> {
            buf.copy_from_slice(&app[o as usize..o as usize + buf.len()]);
            Ok(())
        };
        let img = image::parse(
            read,
            layout::SLOT_SIZE,
            &[layout::APP_IRAM, layout::APP_DRAM],
        )
        .unwrap();
        let hdr = (img.segments()[0].offset - 8) as usize;
        app[hdr..hdr + 4].copy_from_slice(&0x4010_C000u32.to_le_bytes());
        let mut crc = image::Crc::new();
        crc.update(&app[..img.crc_at as usize]);
        let at = img.crc_at as usize;
        app[at..at + 4].copy_from_slice(&crc.finish().to_le_bytes());
        let r = boot("overlap", Some(&app), None, None);
        assert!(
            r.has("loader: slot A at 0x00002000: segment outside application RAM"),
            "{}",
            r.out
        );
        assert!(r.has("loader: no bootable image; flash one (docs/esp8266.md)"));
        assert_eq!(r.code, 2, "halts");
    }

    #[test]
    fn an_erased_flash_halts_with_a_message() {
        let r = boot("erased", None, None, None);
        assert!(
            r.has("loader: slot A at 0x00002000: no image (erased or foreign)"),
            "{}",
            r.out
        );
        assert!(r.has("loader: slot B at 0x00102000: no image (erased or foreign)"));
        assert_eq!(r.code, 2);
    }
}
