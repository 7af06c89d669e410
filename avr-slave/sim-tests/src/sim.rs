//! simavr running the firmware; the test is the SPI master and the outside world of every pin.
//!
//! simavr quirks this works around (docs/avr-slave.md): in slave mode its `SPI_IRQ_OUTPUT` echoes
//! the master's byte, so the slave's reply is read from SPDR in the data space when a transfer
//! starts; /SS is not modelled; the default `sleep` callback sleeps in real time.

use crate::firmware::{self, Mcu};
use simavr_ffi as ffi;
use std::ffi::{c_void, CString};

/// The firmware's clock: the ATmega's internal RC oscillator.
pub const FREQUENCY_HZ: u32 = 8_000_000;
/// Supply and ADC reference (AVCC) in millivolts: the ATmega runs from 5 V.
pub const VCC_MV: u32 = 5_000;
/// SPDR's data-space address on ATmega48/88/168/328.
const SPDR: usize = 0x4E;

/// simavr's `AVR_IOCTL_DEF` (a C macro, so not in the bindings).
const fn ioctl(a: u8, b: u8, c: u8, d: u8) -> u32 {
    u32::from_be_bytes([a, b, c, d])
}

/// A port letter of the ATmega.
pub fn port_index(port: char) -> usize {
    match port {
        'B' => 0,
        'C' => 1,
        'D' => 2,
        _ => panic!("no port {port}"),
    }
}

/// Level changes on one pin: (cycle, level), recorded by simavr's IRQ notify.
struct Watch {
    avr: *mut ffi::avr_t,
    edges: Vec<(u64, bool)>,
}

unsafe extern "C" fn on_pin(_irq: *mut ffi::avr_irq_t, value: u32, param: *mut c_void) {
    // SAFETY: `param` is the Box<Watch> owned by the Sim that registered this callback, and the
    // simulator only calls back from inside `Sim::run_*`, while the Sim is alive.
    let watch = unsafe { &mut *(param as *mut Watch) };
    let cycle = unsafe { (*watch.avr).cycle };
    // Timer outputs arrive with simavr's AVR_IOPORT_OUTPUT flag (0x100) set; the level is bit 0..7.
    let level = value & 0xFF != 0;
    if watch.edges.last().map(|e| e.1) != Some(level) {
        watch.edges.push((cycle, level));
    }
}

/// simavr's logger without the chatter ("Loaded N bytes of Flash data" on every boot): errors and
/// warnings pass, unformatted (formatting a C va_list from Rust is not worth it here).
unsafe extern "C" fn quiet_log(
    _avr: *mut ffi::avr_t,
    level: std::os::raw::c_int,
    format: *const std::os::raw::c_char,
    _ap: *mut ffi::__va_list_tag,
) {
    if level <= ffi::LOG_WARNING as i32 && !format.is_null() {
        // SAFETY: simavr passes a NUL-terminated format string.
        let text = unsafe { std::ffi::CStr::from_ptr(format) };
        eprint!("simavr: {}", text.to_string_lossy());
    }
}

unsafe extern "C" fn no_sleep(_avr: *mut ffi::avr_t, _how_long: ffi::avr_cycle_count_t) {}

/// One simulated ATmega running the firmware.
pub struct Sim {
    avr: *mut ffi::avr_t,
    spi_in: *mut ffi::avr_irq_t,
    watches: Vec<(char, u8, Box<Watch>)>,
    /// CPU cycles one byte takes on the wire (8 SCK periods); default 1 MHz SCK = 64 cycles.
    pub byte_cycles: u64,
    /// Bytes transferred since start.
    pub bytes: u64,
    mcu: Mcu,
}

impl Sim {
    /// Builds (once per process) and boots the firmware for `mcu`.
    pub fn boot(mcu: Mcu) -> Sim {
        let elf = firmware::elf(mcu);
        let name = CString::new(mcu.name()).unwrap();
        let path = CString::new(elf.canonicalize().unwrap().to_str().unwrap()).unwrap();
        // SAFETY: plain simavr setup calls with valid, NUL-terminated strings; every pointer is
        // checked before use.
        unsafe {
            ffi::avr_global_logger_set(Some(quiet_log));
            let avr = ffi::avr_make_mcu_by_name(name.as_ptr());
            assert!(
                !avr.is_null(),
                "simavr has no core {}: it was built before avr-libc was installed \
                 (cargo clean -p simavr-ffi, then rebuild)",
                mcu.name()
            );
            assert_eq!(ffi::avr_init(avr), 0, "avr_init failed");
            let mut fw: Box<ffi::elf_firmware_t> = Box::new(std::mem::zeroed());
            assert_eq!(
                ffi::elf_read_firmware(path.as_ptr(), &mut *fw),
                0,
                "simavr cannot read {}",
                elf.display()
            );
            ffi::avr_load_firmware(avr, &mut *fw);
            (*avr).frequency = FREQUENCY_HZ;
            (*avr).vcc = VCC_MV;
            (*avr).avcc = VCC_MV;
            (*avr).aref = VCC_MV;
            (*avr).sleep = Some(no_sleep);
            let spi_in = ffi::avr_io_getirq(avr, ioctl(b's', b'p', b'i', 0), 0);
            assert!(!spi_in.is_null(), "no SPI IRQ");
            let mut sim = Sim {
                avr,
                spi_in,
                watches: Vec::new(),
                byte_cycles: 64,
                bytes: 0,
                mcu,
            };
            // Let the firmware reach its main loop (init takes well under 100 µs).
            sim.run_us(200);
            sim
        }
    }

    /// A hardware reset (like the ESP8266 pulsing /RESET): registers and RAM start over.
    pub fn reset(&mut self) {
        // SAFETY: `avr` is valid; simavr keeps IRQ notifies across a reset.
        unsafe { ffi::avr_reset(self.avr) };
        self.run_us(200);
    }

    /// The MCU simulated.
    pub fn mcu(&self) -> Mcu {
        self.mcu
    }

    /// Current CPU cycle.
    pub fn cycle(&self) -> u64 {
        // SAFETY: `avr` is valid for the Sim's lifetime.
        unsafe { (*self.avr).cycle }
    }

    /// Runs the CPU for `cycles`; a crashed firmware fails the test.
    pub fn run_cycles(&mut self, cycles: u64) {
        let end = self.cycle() + cycles;
        while self.cycle() < end {
            // SAFETY: `avr` is valid; avr_run executes one instruction or one sleep step.
            let state = unsafe { ffi::avr_run(self.avr) } as u32;
            assert!(
                state != ffi::cpu_Crashed && state != ffi::cpu_Done,
                "the firmware stopped (simavr state {state}) at cycle {}",
                self.cycle()
            );
        }
    }

    /// SPDR as the CPU sees it.
    pub fn spdr(&self) -> u8 {
        // SAFETY: inside the data space.
        unsafe { *(*self.avr).data.add(SPDR) }
    }

    /// Runs the CPU for `us` microseconds.
    pub fn run_us(&mut self, us: u64) {
        self.run_cycles(us * u64::from(FREQUENCY_HZ) / 1_000_000);
    }

    /// One full-duplex SPI byte: returns what the slave had loaded when the byte started, runs
    /// the CPU while the byte is on the wire, then delivers the master's byte. No gap after it:
    /// the master's delay (or [`Sim::run_us`]) provides that.
    pub fn transfer(&mut self, byte: u8) -> u8 {
        // SAFETY: SPDR is inside the data space of both cores.
        let reply = unsafe { *(*self.avr).data.add(SPDR) };
        self.run_cycles(self.byte_cycles);
        // SAFETY: `spi_in` came from avr_io_getirq for this avr.
        unsafe { ffi::avr_raise_irq(self.spi_in, u32::from(byte)) };
        self.bytes += 1;
        reply
    }

    fn pin_irq(&self, port: char, bit: u8) -> *mut ffi::avr_irq_t {
        // SAFETY: ioctl lookup; null is checked.
        let irq = unsafe {
            ffi::avr_io_getirq(
                self.avr,
                ioctl(b'i', b'o', b'g', port as u8),
                i32::from(bit),
            )
        };
        assert!(!irq.is_null(), "no GPIO IRQ for P{port}{bit}");
        irq
    }

    /// Drives an input pin from outside (like a switch or a sensor output).
    pub fn drive_pin(&mut self, port: char, bit: u8, high: bool) {
        // SAFETY: valid IRQ of this avr.
        unsafe { ffi::avr_raise_irq(self.pin_irq(port, bit), u32::from(high)) };
    }

    /// Puts `mv` millivolts on ADC channel `channel`.
    pub fn set_adc_mv(&mut self, channel: u8, mv: u32) {
        // SAFETY: ADC IRQs 0..=7 exist on both cores; null is checked.
        unsafe {
            let irq = ffi::avr_io_getirq(
                self.avr,
                ioctl(b'a', b'd', b'c', b'0'),
                ffi::ADC_IRQ_ADC0 as i32 + i32::from(channel),
            );
            assert!(!irq.is_null(), "no ADC IRQ {channel}");
            ffi::avr_raise_irq(irq, mv);
        }
    }

    /// (PORTx, DDRx, PINx) of a port, as the firmware set them.
    pub fn port_state(&self, port: char) -> (u8, u8, u8) {
        // SAFETY: the ioctl fills the state struct; zeroed is a valid starting value.
        unsafe {
            let mut state: ffi::avr_ioport_state_t = std::mem::zeroed();
            let r = ffi::avr_ioctl(
                self.avr,
                ioctl(b'i', b'o', b's', port as u8),
                &mut state as *mut _ as *mut c_void,
            );
            assert_eq!(r, 0, "no port {port}");
            (state.port() as u8, state.ddr() as u8, state.pin() as u8)
        }
    }

    /// Starts recording level changes of a pin.
    pub fn watch_pin(&mut self, port: char, bit: u8) {
        let mut watch = Box::new(Watch {
            avr: self.avr,
            edges: Vec::new(),
        });
        let param = &mut *watch as *mut Watch as *mut c_void;
        // SAFETY: the Box outlives the registration (kept in `watches` until the Sim drops, and
        // the simulator never runs after that).
        unsafe { ffi::avr_irq_register_notify(self.pin_irq(port, bit), Some(on_pin), param) };
        self.watches.push((port, bit, watch));
    }

    /// Level changes recorded on a watched pin.
    pub fn edges(&self, port: char, bit: u8) -> &[(u64, bool)] {
        self.watches
            .iter()
            .find(|w| w.0 == port && w.1 == bit)
            .map(|w| &w.2.edges[..])
            .unwrap_or_else(|| panic!("P{port}{bit} is not watched"))
    }

    /// Fraction of `[from, to)` cycles a watched pin spent high.
    pub fn high_fraction(&self, port: char, bit: u8, from: u64, to: u64) -> f64 {
        let edges = self.edges(port, bit);
        let mut level = edges
            .iter()
            .take_while(|e| e.0 <= from)
            .last()
            .map(|e| e.1)
            .unwrap_or(false);
        let mut t = from;
        let mut high = 0;
        for &(cycle, l) in edges.iter().filter(|e| e.0 > from && e.0 < to) {
            if level {
                high += cycle - t;
            }
            t = cycle;
            level = l;
        }
        if level {
            high += to - t;
        }
        high as f64 / (to - from) as f64
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        // Unhook our callbacks before the watches are freed, then let simavr free its memory.
        for (port, bit, mut watch) in std::mem::take(&mut self.watches) {
            let param = &mut *watch as *mut Watch as *mut c_void;
            let irq = self.pin_irq(port, bit);
            // SAFETY: same IRQ and param as registered.
            unsafe { ffi::avr_irq_unregister_notify(irq, Some(on_pin), param) };
        }
        // SAFETY: the simulator is not used after this.
        unsafe { ffi::avr_terminate(self.avr) };
    }
}
