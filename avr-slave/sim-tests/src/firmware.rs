//! Builds `avr-slave/firmware` for one MCU with its own nightly toolchain, once per test process.
//!
//! A missing piece (avr-gcc, the nightly toolchain, its rust-src) is a test failure with a message
//! saying what to install, never a skip.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The chips the firmware is built for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mcu {
    /// The default build.
    Atmega168,
    /// Same pinout, twice the memory.
    Atmega328p,
}

impl Mcu {
    /// Both chips.
    pub const ALL: [Mcu; 2] = [Mcu::Atmega168, Mcu::Atmega328p];

    /// The name simavr, rustc and avr-gcc use.
    pub fn name(self) -> &'static str {
        match self {
            Mcu::Atmega168 => "atmega168",
            Mcu::Atmega328p => "atmega328p",
        }
    }

    /// What the firmware reports in its `Hello` answer.
    pub fn wire(self) -> wire_format::spi_link::Mcu {
        match self {
            Mcu::Atmega168 => wire_format::spi_link::Mcu::Atmega168,
            Mcu::Atmega328p => wire_format::spi_link::Mcu::Atmega328p,
        }
    }
}

/// The firmware's source folder.
pub fn firmware_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../firmware")
}

/// Path of the release ELF for `mcu`, building it on first use in this process.
pub fn elf(mcu: Mcu) -> &'static Path {
    static BUILT: [OnceLock<PathBuf>; 2] = [OnceLock::new(), OnceLock::new()];
    BUILT[mcu as usize].get_or_init(|| build(mcu))
}

fn build(mcu: Mcu) -> PathBuf {
    preflight();
    // The path is baked in at compile time; a test binary reused from another checkout (a
    // shared CARGO_TARGET_DIR) would otherwise report a missing source folder as missing cargo.
    let src = firmware_dir();
    assert!(
        src.join("Cargo.toml").is_file(),
        "the firmware sources are not at {} (this test binary was built from another checkout \
         sharing the target dir: cargo clean -p avr-sim-tests)",
        src.display()
    );
    // Inside the test's own target dir (next to its `deps/`), one folder per MCU so that the two
    // builds never invalidate each other.
    let exe = std::env::current_exe().expect("test binary path");
    let profile_dir = exe
        .ancestors()
        .find(|p| p.file_name().is_some_and(|n| n == "deps"))
        .and_then(Path::parent)
        .unwrap_or_else(|| panic!("{} is not under a cargo target dir", exe.display()));
    let target_dir = profile_dir.join("avr-firmware").join(mcu.name());
    let mut cmd = Command::new("cargo");
    cmd.current_dir(firmware_dir());
    // The outer `cargo test` exports its toolchain and settings; the firmware needs its own
    // (rust-toolchain.toml picks nightly, .cargo/config.toml the target). Keep CARGO_HOME.
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy().into_owned();
        if (key.starts_with("CARGO") && key != "CARGO_HOME")
            || key.starts_with("RUSTC")
            || key == "RUSTUP_TOOLCHAIN"
            || key == "RUSTFLAGS"
            || key == "RUSTDOCFLAGS"
        {
            cmd.env_remove(key);
        }
    }
    cmd.env("RUSTFLAGS", format!("-C target-cpu={}", mcu.name()));
    cmd.args(["build", "--release", "--target-dir"])
        .arg(&target_dir);
    if mcu != Mcu::Atmega168 {
        cmd.args(["--no-default-features", "--features", mcu.name()]);
    }
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run cargo to build the AVR firmware: {e}"));
    assert!(
        out.status.success(),
        "building the AVR firmware for {} failed ({}):\n{}",
        mcu.name(),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let elf = target_dir.join("avr-none/release/avr-slave-firmware.elf");
    assert!(
        elf.is_file(),
        "the firmware build left no ELF at {}",
        elf.display()
    );
    elf
}

/// Fails loudly, naming the missing piece, before a long build would fail obscurely.
fn preflight() {
    let gcc = Command::new("avr-gcc").arg("--version").output();
    assert!(
        gcc.map(|o| o.status.success()).unwrap_or(false),
        "avr-gcc not found: the AVR firmware links with it. Install Debian's gcc-avr and avr-libc \
         (apt-get install gcc-avr avr-libc)"
    );
    let sysroot = Command::new("rustup")
        .args(["run", "nightly", "rustc", "--print", "sysroot"])
        .env_remove("RUSTUP_TOOLCHAIN")
        .output();
    let sysroot = match sysroot {
        Ok(o) if o.status.success() => PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()),
        _ => panic!(
            "the nightly Rust toolchain is missing: the AVR target needs it \
             (rustup toolchain install nightly --component rust-src)"
        ),
    };
    let core = sysroot.join("lib/rustlib/src/rust/library/core");
    assert!(
        core.is_dir(),
        "nightly has no rust-src (looked for {}): build-std needs it \
         (rustup component add rust-src --toolchain nightly)",
        core.display()
    );
}

/// Flash and static RAM of a firmware image, read from its ELF sections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sizes {
    /// `.text` + `.data` (the initial values of `.data` live in flash too).
    pub flash: u64,
    /// `.data` + `.bss` + `.noinit`: RAM taken before the stack gets any.
    pub sram: u64,
}

/// Reads the section sizes of an AVR ELF (what `avr-size -C` reports as Program and Data).
pub fn sizes(elf: &Path) -> Sizes {
    use object::{Object, ObjectSection};
    let bytes = std::fs::read(elf).unwrap_or_else(|e| panic!("read {}: {e}", elf.display()));
    let file = object::File::parse(&*bytes)
        .unwrap_or_else(|e| panic!("{} is not an ELF: {e}", elf.display()));
    assert_eq!(
        file.architecture(),
        object::Architecture::Avr,
        "not an AVR image"
    );
    let size = |name: &str| file.section_by_name(name).map_or(0, |s| s.size());
    Sizes {
        flash: size(".text") + size(".data"),
        sram: size(".data") + size(".bss") + size(".noinit"),
    }
}

/// Names of the functions and objects in an ELF (mangled), e.g. to check that no formatting code
/// made it into the image.
pub fn symbols(elf: &Path) -> Vec<String> {
    use object::{Object, ObjectSymbol};
    let bytes = std::fs::read(elf).unwrap_or_else(|e| panic!("read {}: {e}", elf.display()));
    let file = object::File::parse(&*bytes)
        .unwrap_or_else(|e| panic!("{} is not an ELF: {e}", elf.display()));
    file.symbols()
        .filter_map(|s| s.name().ok().map(str::to_owned))
        .collect()
}
