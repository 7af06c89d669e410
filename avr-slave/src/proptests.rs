//! Link and engine together, fed arbitrary bytes: every answer is a well-formed frame, and the
//! documented resync always brings the next request home.

use crate::engine::{Board, Engine};
use crate::link::Link;
use proptest::prelude::*;
use wire_format::spi_link::{
    AdcChannel, Command, Mcu, Pin, PinMode, Request, Response, ResponseFrame, IDLE, MAX_REQ_FRAME,
    MAX_RESP_FRAME, POLL, RESP_SOF, RESYNC_POLLS,
};

struct Nothing;

impl Board for Nothing {
    fn set_mode(&mut self, _: Pin, _: PinMode) {}
    fn write(&mut self, _: Pin, _: bool) {}
    fn read(&mut self, _: Pin) -> bool {
        true
    }
    fn read_ports(&mut self) -> [u8; 3] {
        [0xFF; 3]
    }
    fn read_adc(&mut self, _: AdcChannel) -> u16 {
        0x3FF
    }
    fn set_pwm(&mut self, _: Pin, _: u8) {}
}

/// The slave: the interrupt's byte handler plus the main loop, run after every byte.
struct Slave {
    link: Link,
    engine: Engine,
}

impl Slave {
    fn byte(&mut self, b: u8) -> u8 {
        let out = self.link.on_byte(b);
        if let Some(frame) = self.link.request() {
            let mut resp = [0; MAX_RESP_FRAME];
            let n = self.engine.handle(&frame, &mut Nothing, &mut resp);
            // Every answer, to anything, is a valid frame.
            assert!(
                ResponseFrame::new_checked(&resp[..n]).is_ok(),
                "{resp:02x?}"
            );
            self.link.respond(&resp, n);
        }
        out
    }
}

proptest! {
    #[test]
    fn resync_recovers_from_any_garbage(garbage in proptest::collection::vec(any::<u8>(), 0..40)) {
        let mut slave = Slave { link: Link::new(), engine: Engine::new(Mcu::Atmega168, 1) };
        let mut buf = [0; MAX_REQ_FRAME];
        let n = Request::Hello { version: 1 }.emit(&mut buf);
        for &b in &buf[..n] {
            slave.byte(b);
        }
        for b in garbage {
            slave.byte(b);
        }
        for _ in 0..RESYNC_POLLS {
            slave.byte(POLL);
        }
        // (The pause lets the main loop finish; here it runs after every byte anyway.)
        let n = Request::ReadAdc { channel: 3 }.emit(&mut buf);
        for &b in &buf[..n] {
            slave.byte(b);
        }
        // The answer starts after nothing but IDLE bytes and is the ADC reading: unless the
        // garbage ended the link with a foreign Hello (then it is NotReady, also an answer).
        let mut first = IDLE;
        for _ in 0..4 {
            first = slave.byte(POLL);
            if first != IDLE {
                break;
            }
        }
        prop_assert_eq!(first, RESP_SOF);
        let mut resp = [RESP_SOF; 8];
        for r in resp.iter_mut().skip(1) {
            *r = slave.byte(POLL);
        }
        let frame = ResponseFrame::new_checked(&resp[..]).unwrap();
        let answer = Response::parse(&frame, Command::ReadAdc).unwrap();
        prop_assert!(
            answer == Ok(Response::Adc { value: 0x3FF })
                || answer == Err(wire_format::spi_link::ErrorCode::NotReady),
            "{:?}", answer
        );
    }
}
