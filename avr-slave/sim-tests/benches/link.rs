//! Link figures for docs/benchmarks.md, measured on the real firmware in simavr (simulated time,
//! so the numbers do not depend on the host): firmware sizes, the smallest inter-byte gap that
//! still works, and bytes and master-side time per command at the documented gap.
//!
//! Run: `cargo bench -p avr-sim-tests --bench link`

use avr_sim_tests::firmware::{self, Mcu};
use avr_sim_tests::sim::{Sim, FREQUENCY_HZ};
use wire_format::spi_link::{
    response_remaining, PinMode, Request, Response, ResponseFrame, BYTE_GAP_US, MAX_POLLS,
    MAX_REQ_FRAME, POLL, RESP_SOF,
};

/// 1 MHz SCK: 8 µs per byte.
const BYTE_US: u64 = 8;

/// One request; the answer if it came back well-formed, and the bytes it took.
fn exchange(sim: &mut Sim, gap_cycles: u64, req: Request) -> (Option<Response>, u64) {
    let start = sim.bytes;
    let byte = |sim: &mut Sim, b: u8| {
        let r = sim.transfer(b);
        sim.run_cycles(gap_cycles);
        r
    };
    let mut buf = [0; MAX_REQ_FRAME];
    let n = req.emit(&mut buf);
    for &b in &buf[..n] {
        byte(sim, b);
    }
    let mut found = false;
    for _ in 0..MAX_POLLS {
        if byte(sim, POLL) == RESP_SOF {
            found = true;
            break;
        }
    }
    if !found {
        return (None, sim.bytes - start);
    }
    let mut resp = vec![RESP_SOF];
    while let Some(more) = response_remaining(&resp) {
        if more == 0 {
            break;
        }
        let b = byte(sim, POLL);
        resp.push(b);
    }
    let answer = ResponseFrame::new_checked(&resp[..])
        .ok()
        .and_then(|f| Response::parse(&f, req.command()).ok())
        .and_then(|r| r.ok());
    (answer, sim.bytes - start)
}

fn workload() -> Vec<Request> {
    let mut w = vec![Request::Hello { version: 1 }];
    for i in 0..40u8 {
        let pin = 16 + i % 8;
        w.push(Request::PinMode {
            pin,
            mode: PinMode::Output,
        });
        w.push(Request::WritePin {
            pin,
            high: i % 2 == 0,
        });
        w.push(Request::ReadPin { pin });
        w.push(Request::ReadAll);
        w.push(Request::ReadAdc { channel: i % 8 });
        w.push(Request::SetPwm { pin: 22, duty: i });
        w.push(Request::Status);
    }
    w
}

fn works_at(mcu: Mcu, gap_cycles: u64) -> bool {
    let mut sim = Sim::boot(mcu);
    workload()
        .into_iter()
        .all(|req| exchange(&mut sim, gap_cycles, req).0.is_some())
}

fn main() {
    // `cargo test --all-targets` runs this too, without `--bench`: then only a smoke run.
    let full = std::env::args().any(|a| a == "--bench");
    let cycles_per_us = u64::from(FREQUENCY_HZ) / 1_000_000;
    for mcu in Mcu::ALL {
        let s = firmware::sizes(firmware::elf(mcu));
        println!(
            "{}: flash {} B, static SRAM {} B",
            mcu.name(),
            s.flash,
            s.sram
        );
        if full {
            let min_gap = (1..=60u64)
                .find(|&us| works_at(mcu, us * cycles_per_us))
                .expect("works at some gap up to 60 µs");
            println!(
                "{}: smallest working inter-byte gap {min_gap} µs (documented: {BYTE_GAP_US} µs)",
                mcu.name()
            );
        }
        let gap = u64::from(BYTE_GAP_US) * cycles_per_us;
        let mut sim = Sim::boot(mcu);
        for req in [
            Request::Hello { version: 1 },
            Request::WritePin {
                pin: 23,
                high: true,
            },
            Request::ReadPin { pin: 23 },
            Request::ReadAll,
            Request::ReadAdc { channel: 0 },
            Request::SetPwm { pin: 22, duty: 9 },
            Request::Status,
        ] {
            let (answer, bytes) = exchange(&mut sim, gap, req);
            assert!(answer.is_some(), "{req:?} failed at the documented gap");
            println!(
                "{}: {:?}: {bytes} bytes, {} µs at 1 MHz SCK + {BYTE_GAP_US} µs gap",
                mcu.name(),
                req.command(),
                bytes * (BYTE_US + u64::from(BYTE_GAP_US))
            );
        }
    }
}
