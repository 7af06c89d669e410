//! The esp-client core's scenarios (esp8266-board `sim`) on the LX106 core in
//! `qemu-system-xtensa -M sim -cpu lx106`: the transcript goes to semihosting stdout, the exit
//! code says whether every scenario held. c/qemu_rt.c sets up the stack and semihosting.
#![no_std]
#![no_main]

use core::fmt::Write;

extern "C" {
    fn sim_write(buf: *const u8, len: usize);
    fn sim_exit(code: i32) -> !;
}

struct Semihosting;

impl Write for Semihosting {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        // SAFETY: the pointer and length describe `s`, which outlives the call.
        unsafe { sim_write(s.as_ptr(), s.len()) };
        Ok(())
    }
}

/// Called by `qemu_start` (c/qemu_rt.c) once .bss is zeroed.
#[no_mangle]
pub extern "C" fn qemu_main() -> i32 {
    // The device's 4 MiB flash chip: RAM that QEMU's `sim` machine has at 0x50000000.
    // SAFETY: nothing else uses that RAM; it lives as long as the program.
    let flash = unsafe { core::slice::from_raw_parts_mut(0x5000_0000 as *mut u8, 4 << 20) };
    match esp8266_board::sim::run_all(&mut Semihosting, flash) {
        Ok(()) => 0,
        Err(e) => {
            let _ = writeln!(Semihosting, "FAILED: {e}");
            1
        }
    }
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    let _ = writeln!(Semihosting, "panic: {info}");
    // SAFETY: ends the emulation.
    unsafe { sim_exit(101) }
}
