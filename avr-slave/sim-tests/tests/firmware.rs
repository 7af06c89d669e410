//! The real firmware ELF, built for atmega168 and atmega328p, driven in simavr with the test as
//! SPI master: byte-level frames first, then esp-client's driver through the SpiDevice adapter.
//!
//! One test binary, so each MCU's firmware is built once per run (see `firmware::elf`).

use avr_sim_tests::adapter;
use avr_sim_tests::firmware::{self, Mcu};
use avr_sim_tests::sim::{port_index, Sim};
use esp_client::avr_link::{AvrLink, Error};
use wire_format::spi_link::{
    emit_request_raw, response_remaining, AdcChannel, Command, ErrorCode, Pin, PinMode, Port,
    Request, Response, ResponseFrame, BYTE_GAP_US, FREE_PINS, IDLE, MAX_POLLS, MAX_REQ_FRAME,
    MAX_RESP_FRAME, POLL, PWM_PINS, REQ_SOF, RESP_SOF, RESYNC_PAUSE_US, RESYNC_POLLS,
};

/// Flash and static RAM budget on the ATmega168 (docs/avr-slave.md).
const FLASH_BUDGET: u64 = 4096;
const SRAM_BUDGET: u64 = 256;

/// A byte-level SPI master over the simulator.
struct Raw {
    sim: Sim,
    gap_us: u64,
}

/// What the slave answered: echoed command, status, payload.
type Answer = (u8, u8, Vec<u8>);

impl Raw {
    fn boot(mcu: Mcu) -> Raw {
        Raw {
            sim: Sim::boot(mcu),
            gap_us: u64::from(BYTE_GAP_US),
        }
    }

    fn byte(&mut self, b: u8) -> u8 {
        let r = self.sim.transfer(b);
        self.sim.run_us(self.gap_us);
        r
    }

    fn send(&mut self, frame: &[u8]) {
        for &b in frame {
            self.byte(b);
        }
    }

    /// Polls for a response and reads it whole; `None` if no start byte within MAX_POLLS.
    fn read_answer(&mut self) -> Option<Answer> {
        let mut seen = Vec::new();
        loop {
            if seen.len() == MAX_POLLS {
                return None;
            }
            let b = self.byte(POLL);
            if b == RESP_SOF {
                break;
            }
            // Before the answer the slave says nothing but IDLE.
            assert_eq!(
                b, IDLE,
                "unexpected byte while waiting: {seen:02x?} then {b:#04x}"
            );
            seen.push(b);
        }
        let mut resp = vec![RESP_SOF];
        while let Some(more) = response_remaining(&resp) {
            if more == 0 {
                break;
            }
            let b = self.byte(POLL);
            resp.push(b);
        }
        let frame = ResponseFrame::new_checked(&resp[..])
            .unwrap_or_else(|e| panic!("garbled answer {resp:02x?}: {e}"));
        Some((frame.command(), frame.status(), frame.payload().to_vec()))
    }

    fn ask_raw(&mut self, frame: &[u8]) -> Answer {
        self.send(frame);
        self.read_answer().expect("the slave answers every frame")
    }

    fn ask(&mut self, req: Request) -> Result<Response, ErrorCode> {
        let mut buf = [0; MAX_REQ_FRAME];
        let n = req.emit(&mut buf);
        let (cmd, status, payload) = self.ask_raw(&buf[..n]);
        // Re-frame for the typed parser (also checks the echo).
        let mut out = [0; MAX_RESP_FRAME];
        out[..4].copy_from_slice(&[RESP_SOF, cmd, status, payload.len() as u8]);
        out[4..4 + payload.len()].copy_from_slice(&payload);
        let end = 4 + payload.len();
        out[end] = wire_format::spi_link::crc8(&out[1..end]);
        let f = ResponseFrame::new_checked(&out[..=end]).unwrap();
        Response::parse(&f, req.command()).expect("well-formed answer to the command asked")
    }

    fn hello(&mut self) {
        let r = self.ask(Request::Hello { version: 1 });
        assert_eq!(
            r,
            Ok(Response::Hello {
                version: 1,
                mcu: self.sim.mcu().wire() as u8
            })
        );
    }

    fn resync(&mut self) {
        for _ in 0..RESYNC_POLLS {
            self.byte(POLL);
        }
        self.sim.run_us(u64::from(RESYNC_PAUSE_US));
    }
}

fn free_pins() -> impl Iterator<Item = Pin> {
    (0..=255u8).filter_map(Pin::new)
}

fn port_char(pin: Pin) -> char {
    match pin.port() {
        Port::B => 'B',
        Port::C => 'C',
        Port::D => 'D',
    }
}

#[test]
fn firmware_fits_the_atmega168_budget_on_both_builds() {
    for mcu in Mcu::ALL {
        let sizes = firmware::sizes(firmware::elf(mcu));
        println!(
            "{}: {} B flash, {} B static SRAM",
            mcu.name(),
            sizes.flash,
            sizes.sram
        );
        assert!(sizes.flash > 0 && sizes.sram > 0, "empty image? {sizes:?}");
        assert!(
            sizes.flash <= FLASH_BUDGET,
            "{}: {} B flash is over the {FLASH_BUDGET} B budget",
            mcu.name(),
            sizes.flash
        );
        // No formatting machinery (core::fmt) in the image: it alone would eat the budget.
        let fmt: Vec<String> = firmware::symbols(firmware::elf(mcu))
            .into_iter()
            .filter(|s| s.contains("4core3fmt") || s.contains("core::fmt"))
            .collect();
        assert!(
            fmt.is_empty(),
            "{}: formatting code linked in: {fmt:?}",
            mcu.name()
        );
        assert!(
            sizes.sram <= SRAM_BUDGET,
            "{}: {} B static SRAM is over the {SRAM_BUDGET} B budget",
            mcu.name(),
            sizes.sram
        );
    }
}

#[test]
fn handshake_first_then_commands() {
    for mcu in Mcu::ALL {
        let mut m = Raw::boot(mcu);
        // Nothing but the status works before Hello.
        assert_eq!(m.ask(Request::ReadAll), Err(ErrorCode::NotReady), "{mcu:?}");
        assert_eq!(
            m.ask(Request::Hello { version: 7 }),
            Err(ErrorCode::VersionMismatch)
        );
        assert_eq!(m.ask(Request::ReadAll), Err(ErrorCode::NotReady));
        m.hello();
        assert!(m.ask(Request::ReadAll).is_ok());
        match m.ask(Request::Status) {
            Ok(Response::Status {
                last_error,
                error_count,
                ..
            }) => {
                assert_eq!(last_error, ErrorCode::NotReady as u8);
                assert_eq!(error_count, 3);
            }
            other => panic!("{other:?}"),
        }
        // A reset of the ATmega closes the link again: that is how the master notices one.
        m.sim.reset();
        assert_eq!(m.ask(Request::ReadAll), Err(ErrorCode::NotReady));
        m.hello();
    }
}

#[test]
fn every_free_pin_drives_its_output() {
    for mcu in Mcu::ALL {
        let mut m = Raw::boot(mcu);
        m.hello();
        for pin in free_pins() {
            let (port, bit) = (port_char(pin), pin.bit());
            m.sim.watch_pin(port, bit);
            let out = Request::PinMode {
                pin: pin.id(),
                mode: PinMode::Output,
            };
            assert_eq!(m.ask(out), Ok(Response::Done));
            for high in [true, false, true] {
                let w = Request::WritePin {
                    pin: pin.id(),
                    high,
                };
                assert_eq!(m.ask(w), Ok(Response::Done));
                let (port_reg, ddr, _) = m.sim.port_state(port);
                assert_eq!(ddr & pin.mask(), pin.mask(), "{pin} DDR");
                assert_eq!(port_reg & pin.mask() != 0, high, "{pin} PORT");
                assert_eq!(
                    m.sim.edges(port, bit).last().map(|e| e.1),
                    Some(high),
                    "{pin}"
                );
            }
            // Back to input: no longer driven.
            let inp = Request::PinMode {
                pin: pin.id(),
                mode: PinMode::Input,
            };
            assert_eq!(m.ask(inp), Ok(Response::Done));
            let (port_reg, ddr, _) = m.sim.port_state(port);
            assert_eq!((port_reg | ddr) & pin.mask(), 0, "{pin} input");
        }
        // The link's own pins were never touched: MISO is the only output on port B.
        let (_, ddr_b, _) = m.sim.port_state('B');
        assert_eq!(ddr_b & !FREE_PINS[0], 1 << 4, "{mcu:?}");
    }
}

#[test]
fn every_free_pin_reads_the_driven_level_and_snapshot_matches() {
    for mcu in Mcu::ALL {
        let mut m = Raw::boot(mcu);
        m.hello();
        for pin in free_pins() {
            let inp = Request::PinMode {
                pin: pin.id(),
                mode: PinMode::Input,
            };
            assert_eq!(m.ask(inp), Ok(Response::Done));
        }
        // A walking pattern: each pin high alone, then all high but it.
        for pin in free_pins() {
            for alone in [true, false] {
                for other in free_pins() {
                    let level = (other == pin) == alone;
                    m.sim.drive_pin(port_char(other), other.bit(), level);
                }
                let r = m.ask(Request::ReadPin { pin: pin.id() });
                assert_eq!(r, Ok(Response::Level { high: alone }), "{mcu:?} {pin}");
                let mut expect = if alone { [0u8; 3] } else { FREE_PINS };
                expect[port_index(port_char(pin))] ^= pin.mask();
                assert_eq!(
                    m.ask(Request::ReadAll),
                    Ok(Response::Ports { levels: expect }),
                    "{mcu:?} {pin} alone={alone}"
                );
            }
        }
    }
}

#[test]
fn pull_up_mode_sets_the_pull_up() {
    for mcu in Mcu::ALL {
        let mut m = Raw::boot(mcu);
        m.hello();
        for pin in free_pins() {
            let port = port_char(pin);
            let pu = Request::PinMode {
                pin: pin.id(),
                mode: PinMode::InputPullUp,
            };
            assert_eq!(m.ask(pu), Ok(Response::Done));
            let (port_reg, ddr, _) = m.sim.port_state(port);
            assert_eq!((port_reg & pin.mask(), ddr & pin.mask()), (pin.mask(), 0));
            // Nothing drives the pin: the pull-up makes it read high.
            let r = m.ask(Request::ReadPin { pin: pin.id() });
            assert_eq!(r, Ok(Response::Level { high: true }), "{mcu:?} {pin}");
        }
    }
}

#[test]
fn adc_reads_the_driven_voltages() {
    for mcu in Mcu::ALL {
        let mut m = Raw::boot(mcu);
        m.hello();
        for channel in 0..8u8 {
            for mv in [0u32, 1_000, 2_500, 3_300, 4_999] {
                m.sim.set_adc_mv(channel, mv);
                let expect = (mv * 1023 / 5000) as i32;
                match m.ask(Request::ReadAdc { channel }) {
                    Ok(Response::Adc { value }) => assert!(
                        (i32::from(value) - expect).abs() <= 2,
                        "{mcu:?} ADC{channel} at {mv} mV read {value}, expected ~{expect}"
                    ),
                    other => panic!("{mcu:?} ADC{channel}: {other:?}"),
                }
            }
        }
        assert_eq!(
            m.ask(Request::ReadAdc { channel: 8 }),
            Err(ErrorCode::BadChannel)
        );
    }
}

/// Cycles of one PWM period: 8 MHz / 64 / 256.
const PWM_PERIOD: u64 = 64 * 256;

#[test]
fn pwm_duty_is_seen_on_every_pwm_pin() {
    for mcu in Mcu::ALL {
        let mut m = Raw::boot(mcu);
        m.hello();
        let pwm_pins: Vec<Pin> = free_pins().filter(|p| p.has_pwm()).collect();
        assert_eq!(
            pwm_pins.len(),
            PWM_PINS.iter().map(|p| p.count_ones()).sum::<u32>() as usize
        );
        for &pin in &pwm_pins {
            m.sim.watch_pin(port_char(pin), pin.bit());
        }
        for duty in [1u8, 64, 128, 200] {
            for &pin in &pwm_pins {
                let r = m.ask(Request::SetPwm {
                    pin: pin.id(),
                    duty,
                });
                assert_eq!(r, Ok(Response::Done));
            }
            m.sim.run_cycles(2 * PWM_PERIOD);
            let from = m.sim.cycle();
            m.sim.run_cycles(8 * PWM_PERIOD);
            let to = m.sim.cycle();
            let expect = (f64::from(duty) + 1.0) / 256.0;
            for &pin in &pwm_pins {
                let (port, bit) = (port_char(pin), pin.bit());
                let got = m.sim.high_fraction(port, bit, from, to);
                assert!(
                    (got - expect).abs() < 0.01,
                    "{mcu:?} {pin} duty {duty}: high {got:.4} of the time, expected {expect:.4}"
                );
                let (_, ddr, _) = m.sim.port_state(port);
                assert_eq!(ddr & pin.mask(), pin.mask(), "{pin} is an output");
            }
        }
        // 0 and 255 are steady levels; a digital write takes the pin off its timer.
        for (duty, level) in [(0u8, 0.0), (255, 1.0)] {
            for &pin in &pwm_pins {
                let r = m.ask(Request::SetPwm {
                    pin: pin.id(),
                    duty,
                });
                assert_eq!(r, Ok(Response::Done));
            }
            let from = m.sim.cycle();
            m.sim.run_cycles(4 * PWM_PERIOD);
            let to = m.sim.cycle();
            for &pin in &pwm_pins {
                let got = m.sim.high_fraction(port_char(pin), pin.bit(), from, to);
                assert_eq!(got, level, "{mcu:?} {pin} duty {duty}");
            }
        }
        let pin = pwm_pins[0];
        assert_eq!(
            m.ask(Request::SetPwm {
                pin: pin.id(),
                duty: 100
            }),
            Ok(Response::Done)
        );
        let w = Request::WritePin {
            pin: pin.id(),
            high: false,
        };
        assert_eq!(m.ask(w), Ok(Response::Done));
        let from = m.sim.cycle();
        m.sim.run_cycles(4 * PWM_PERIOD);
        let to = m.sim.cycle();
        assert_eq!(
            m.sim.high_fraction(port_char(pin), pin.bit(), from, to),
            0.0
        );
        // PD7 has no timer output; PB3 (OC2A) is the link's MOSI.
        for id in [23, 11] {
            let r = m.ask(Request::SetPwm { pin: id, duty: 10 });
            assert_eq!(r, Err(ErrorCode::BadPin));
        }
    }
}

#[test]
fn bad_frames_get_their_documented_errors() {
    for mcu in Mcu::ALL {
        let mut m = Raw::boot(mcu);
        m.hello();
        let mut buf = [0; MAX_REQ_FRAME];
        // Bad CRC: every single-bit error of the CRC byte.
        let n = Request::ReadPin { pin: 0 }.emit(&mut buf);
        for bit in 0..8 {
            let mut bad = buf;
            bad[n - 1] ^= 1 << bit;
            let answer = m.ask_raw(&bad[..n]);
            assert_eq!(
                answer,
                (Command::ReadPin as u8, ErrorCode::BadCrc as u8, vec![])
            );
        }
        // Unknown commands, including 0.
        for cmd in [0x00, 0x09, 0x42, 0xFF] {
            let n = emit_request_raw(cmd, &[], &mut buf);
            let answer = m.ask_raw(&buf[..n]);
            assert_eq!(
                answer,
                (cmd, ErrorCode::UnknownCommand as u8, vec![]),
                "{cmd:#x}"
            );
        }
        // Every pin id that is not free, for each pin command.
        for id in (0..=255u8)
            .filter(|&id| Pin::new(id).is_none())
            .step_by(7)
            .chain([2, 3, 4, 5, 14])
        {
            for req in [
                Request::PinMode {
                    pin: id,
                    mode: PinMode::Output,
                },
                Request::WritePin {
                    pin: id,
                    high: true,
                },
                Request::ReadPin { pin: id },
                Request::SetPwm { pin: id, duty: 1 },
            ] {
                assert_eq!(m.ask(req), Err(ErrorCode::BadPin), "{mcu:?} {req:?}");
            }
        }
        // Length byte too large (frame ends at once), and wrong for the command.
        let answer = m.ask_raw(&[REQ_SOF, Command::ReadPin as u8, 0x40]);
        assert_eq!(answer.1, ErrorCode::BadLength as u8);
        let n = emit_request_raw(Command::Status as u8, &[1], &mut buf);
        assert_eq!(m.ask_raw(&buf[..n]).1, ErrorCode::BadLength as u8);
        // Values out of range.
        let n = emit_request_raw(Command::PinMode as u8, &[0, 3], &mut buf);
        assert_eq!(m.ask_raw(&buf[..n]).1, ErrorCode::BadValue as u8);
        // The link pins were not touched by any of this.
        let (port_b, ddr_b, _) = m.sim.port_state('B');
        assert_eq!((port_b & 0x3C, ddr_b & 0x3C), (0, 1 << 4));
        match m.ask(Request::Status) {
            Ok(Response::Status {
                last_error,
                error_count,
                ..
            }) => {
                assert_eq!(last_error, ErrorCode::BadValue as u8);
                assert!(error_count > 20, "{error_count}");
            }
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn resync_recovers_from_garbage() {
    let garbage: [&[u8]; 6] = [
        &[REQ_SOF],
        &[REQ_SOF, Command::WritePin as u8],
        &[REQ_SOF, Command::WritePin as u8, 2, 16],
        &[0x13, REQ_SOF, 0xFF, REQ_SOF, 0x37, 0x00, REQ_SOF],
        &[REQ_SOF, 0x01, 0x01, 0x01, 0x00, 0xA5, 0x5A, 0xFF],
        &[0xFF; 40],
    ];
    for mcu in Mcu::ALL {
        let mut m = Raw::boot(mcu);
        m.hello();
        for g in garbage {
            m.send(g);
            m.resync();
            // The next exchange is clean: a request is answered after nothing but IDLE bytes.
            assert!(
                matches!(m.ask(Request::Status), Ok(Response::Status { .. })),
                "{g:02x?}"
            );
            let pin = Request::ReadPin { pin: 16 };
            assert!(matches!(m.ask(pin), Ok(Response::Level { .. })), "{g:02x?}");
        }
        // Also in the middle of an unread answer.
        let mut buf = [0; MAX_REQ_FRAME];
        let n = Request::Status.emit(&mut buf);
        m.send(&buf[..n]);
        m.byte(POLL);
        m.byte(POLL);
        m.resync();
        assert!(matches!(
            m.ask(Request::ReadAll),
            Ok(Response::Ports { .. })
        ));
    }
}

#[test]
fn documented_byte_gap_has_a_twofold_margin() {
    // Everything still works at half the documented gap (simulated cycles, not wall time).
    for mcu in Mcu::ALL {
        let mut m = Raw::boot(mcu);
        m.gap_us = u64::from(BYTE_GAP_US) / 2;
        m.hello();
        for i in 0..30u8 {
            let pin = Pin::new(16 + (i % 8)).unwrap();
            let out = Request::PinMode {
                pin: pin.id(),
                mode: PinMode::Output,
            };
            assert_eq!(m.ask(out), Ok(Response::Done));
            assert!(matches!(
                m.ask(Request::ReadAdc { channel: i % 8 }),
                Ok(Response::Adc { .. })
            ));
        }
    }
}

// ---- esp-client's driver against the real firmware ----

#[test]
fn driver_speaks_to_the_real_firmware() {
    for mcu in Mcu::ALL {
        let (spi, delay, sim) = adapter::attach(Sim::boot(mcu));
        let mut link = AvrLink::new(spi, delay);
        let pd7 = Pin::at(Port::D, 7).unwrap();
        let pc0 = Pin::at(Port::C, 0).unwrap();
        let pd6 = Pin::at(Port::D, 6).unwrap();
        assert_eq!(link.read_pin(pc0), Err(Error::Slave(ErrorCode::NotReady)));
        // A master from the future is refused, and the link stays closed.
        let future = Request::Hello { version: 2 };
        assert_eq!(
            link.request(future),
            Err(Error::Slave(ErrorCode::VersionMismatch))
        );
        assert_eq!(link.read_pin(pc0), Err(Error::Slave(ErrorCode::NotReady)));
        assert_eq!(link.hello(), Ok(mcu.wire()));

        sim.borrow_mut().watch_pin('D', 7);
        link.set_pin_mode(pd7, PinMode::Output).unwrap();
        link.write_pin(pd7, true).unwrap();
        assert_eq!(sim.borrow().edges('D', 7).last().map(|e| e.1), Some(true));
        link.write_pin(pd7, false).unwrap();
        assert_eq!(sim.borrow().edges('D', 7).last().map(|e| e.1), Some(false));

        link.set_pin_mode(pc0, PinMode::Input).unwrap();
        sim.borrow_mut().drive_pin('C', 0, true);
        assert_eq!(link.read_pin(pc0), Ok(true));
        sim.borrow_mut().drive_pin('C', 0, false);
        assert_eq!(link.read_pin(pc0), Ok(false));
        let ports = link.read_all().unwrap();
        assert_eq!(ports[1] & 1, 0);
        assert_eq!(ports[0] & !FREE_PINS[0], 0, "link pins are masked");

        sim.borrow_mut().set_adc_mv(5, 2_500);
        let v = link.read_adc(AdcChannel::new(5).unwrap()).unwrap();
        assert!((510..=513).contains(&v), "{v}");

        sim.borrow_mut().watch_pin('D', 6);
        link.set_pwm(pd6, 191).unwrap();
        let from = sim.borrow().cycle();
        sim.borrow_mut().run_cycles(8 * PWM_PERIOD);
        let to = sim.borrow().cycle();
        let duty = sim.borrow().high_fraction('D', 6, from, to);
        assert!((duty - 0.75).abs() < 0.01, "{duty}");

        // A pin the typed API cannot name, through the raw request.
        let bad = Request::WritePin { pin: 4, high: true };
        assert_eq!(link.request(bad), Err(Error::Slave(ErrorCode::BadPin)));
        let st = link.status().unwrap();
        assert_eq!(st.last_error, Some(ErrorCode::BadPin));

        // Garbage on the bus, then the driver's own resync.
        {
            let mut s = sim.borrow_mut();
            for b in [REQ_SOF, Command::WritePin as u8, 2] {
                s.transfer(b);
                s.run_us(u64::from(BYTE_GAP_US));
            }
        }
        link.resync().unwrap();
        assert_eq!(link.read_pin(pc0), Ok(false));

        // Garbage without an explicit resync: the first exchange fails, the driver resyncs and
        // retries on its own.
        {
            let mut s = sim.borrow_mut();
            for b in [REQ_SOF, Command::SetPwm as u8] {
                s.transfer(b);
                s.run_us(u64::from(BYTE_GAP_US));
            }
        }
        assert_eq!(link.read_pin(pc0), Ok(false));

        // An ATmega reset shows up as NotReady; a new hello reopens the link.
        sim.borrow_mut().reset();
        assert_eq!(link.read_pin(pc0), Err(Error::Slave(ErrorCode::NotReady)));
        assert_eq!(link.hello(), Ok(mcu.wire()));
        assert_eq!(link.read_pin(pc0), Ok(false));
    }
}
