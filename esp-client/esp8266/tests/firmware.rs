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
use std::time::Duration;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Runs build.sh once per test process; returns its output directory.
fn build() -> &'static Path {
    let what = "all";
    static OUT: OnceLock<PathBuf> = OnceLock::new();
    OUT.get_or_init(|| {
        let out = root().join("target/esp8266");
        let st = Command::new("bash")
            .arg(root().join("esp-client/esp8266/build.sh"))
            .arg(what)
            .env("ESP8266_OUT", &out)
            .status()
            .expect("cannot run bash");
        assert!(
            st.success(),
            "esp-client/esp8266/build.sh {what} failed ({st})"
        );
        out
    })
}

/// Runs an ELF on the LX106 core with semihosting; (exit code, stdout).
fn qemu(elf: &Path) -> (i32, String) {
    let child = Command::new("qemu-system-xtensa")
        .args([
            "-M",
            "sim",
            "-cpu",
            "lx106",
            "-nographic",
            "-monitor",
            "none",
        ])
        .args(["-semihosting", "-device"])
        .arg(format!("loader,file={},cpu-num=0", elf.display()))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("qemu-system-xtensa not found: apt-get install qemu-system-misc");
    // A hung core must not hang the test: stop QEMU (by its PID) after 60 s.
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let killer = std::thread::spawn(move || {
        if rx.recv_timeout(Duration::from_secs(60)).is_err() {
            let _ = Command::new("kill").arg(pid.to_string()).status();
        }
    });
    let out = child.wait_with_output().expect("qemu did not run");
    let _ = tx.send(());
    let _ = killer.join();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn the_core_runs_its_scenarios_on_the_lx106_with_the_host_transcript() {
    let out = build();
    let (code, stdout) = qemu(&out.join("lx106-sim.elf"));
    let (first, body) = stdout.split_once('\n').unwrap_or((&stdout, ""));
    assert_eq!(
        first, "== esp-client core on LX106: boot, command round trip, dropped connection",
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
    assert_eq!(img.len() as usize, bin.len(), "image length");
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
