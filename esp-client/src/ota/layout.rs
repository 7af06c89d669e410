//! Where the loader, the two slots, their trailers and the boot state live in flash
//! (docs/flash-layout.md has the map and the reasons; a test checks its table against
//! [`Layout::ESP8266_4M`]).

/// One slot: the image area and its trailer sector (the stored offer and the download's
/// per-sector progress marks).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlotRegion {
    /// Flash address of the first image byte (the loader reads the app image from here).
    pub image: u32,
    /// Largest image the slot holds, a multiple of [`SECTOR`].
    pub image_max: u32,
    /// Flash address of the trailer sector.
    pub trailer: u32,
}

impl SlotRegion {
    /// Image sectors needed for an image of `len` bytes.
    pub const fn sectors_for(len: u32) -> u32 {
        len.div_ceil(SECTOR)
    }
}

/// Flash erase unit of the ESP8266's SPI NOR flash (and of every layout here).
pub const SECTOR: u32 = 4096;

/// Which slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Slot {
    A = 0,
    B = 1,
}

impl Slot {
    pub const fn index(self) -> usize {
        self as usize
    }

    pub const fn other(self) -> Slot {
        match self {
            Slot::A => Slot::B,
            Slot::B => Slot::A,
        }
    }

    pub const fn from_u8(b: u8) -> Option<Slot> {
        match b {
            0 => Some(Slot::A),
            1 => Some(Slot::B),
            _ => None,
        }
    }

    pub const fn name(self) -> &'static str {
        match self {
            Slot::A => "A",
            Slot::B => "B",
        }
    }
}

impl From<Slot> for wire_format::ota_proto::Slot {
    /// The slot as the status report carries it (`running_slot`).
    fn from(s: Slot) -> Self {
        match s {
            Slot::A => wire_format::ota_proto::Slot::A,
            Slot::B => wire_format::ota_proto::Slot::B,
        }
    }
}

impl core::fmt::Display for Slot {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.name())
    }
}

/// The OTA part of a flash map: two slots and the two boot-state copies. Addresses are absolute
/// in the flash the board hands to the OTA code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    pub slots: [SlotRegion; 2],
    /// The two copies of the boot state, one sector each.
    pub state: [u32; 2],
}

impl Layout {
    /// A 4 MiB ESP8266 (ESP-12E/F): the loader at 0x0, slot A at 0x002000 in the first 1 MiB
    /// window, the boot state copies at 0x100000/0x101000, slot B at 0x102000 in the second
    /// window, so one build (irom0 at the same window offset) runs from either slot. The device
    /// config (0x3F9000) and the SDK's sectors (0x3FB000..) are untouched.
    pub const ESP8266_4M: Layout = Layout {
        slots: [
            SlotRegion {
                image: 0x0000_2000,
                image_max: 0x000F_D000,
                trailer: 0x000F_F000,
            },
            SlotRegion {
                image: 0x0010_2000,
                image_max: 0x000F_D000,
                trailer: 0x001F_F000,
            },
        ],
        state: [0x0010_0000, 0x0010_1000],
    };

    /// Where the loader lives on the ESP8266 (the ROM boots from 0x0); it must end before
    /// slot A.
    pub const ESP8266_LOADER: u32 = 0;
    /// Largest loader.
    pub const ESP8266_LOADER_MAX: u32 = 0x2000;

    /// A compact layout starting at `base` (host port, tests): state copies, then slot A
    /// (image, trailer), then slot B, each slot `image_max` bytes plus one trailer sector.
    pub const fn compact(base: u32, image_max: u32) -> Layout {
        let image_max = image_max.div_ceil(SECTOR) * SECTOR;
        let a = base + 2 * SECTOR;
        let b = a + image_max + SECTOR;
        Layout {
            slots: [
                SlotRegion {
                    image: a,
                    image_max,
                    trailer: a + image_max,
                },
                SlotRegion {
                    image: b,
                    image_max,
                    trailer: b + image_max,
                },
            ],
            state: [base, base + SECTOR],
        }
    }

    /// First address after everything this layout uses.
    pub const fn end(&self) -> u32 {
        let mut end = 0;
        let mut i = 0;
        while i < 2 {
            let t = self.slots[i].trailer + SECTOR;
            if t > end {
                end = t;
            }
            if self.state[i] + SECTOR > end {
                end = self.state[i] + SECTOR;
            }
            i += 1;
        }
        end
    }

    pub const fn slot(&self, slot: Slot) -> &SlotRegion {
        &self.slots[slot.index()]
    }

    /// Whether all regions are sector-aligned and none overlaps another (checked by tests for
    /// every layout the code uses).
    pub fn is_valid(&self) -> bool {
        let mut regions = [(0u32, 0u32); 6];
        for (i, s) in self.slots.iter().enumerate() {
            regions[2 * i] = (s.image, s.image + s.image_max);
            regions[2 * i + 1] = (s.trailer, s.trailer + SECTOR);
        }
        regions[4] = (self.state[0], self.state[0] + SECTOR);
        regions[5] = (self.state[1], self.state[1] + SECTOR);
        let aligned = regions
            .iter()
            .all(|(a, b)| a % SECTOR == 0 && b % SECTOR == 0 && a < b);
        let disjoint = regions
            .iter()
            .enumerate()
            .all(|(i, x)| regions.iter().skip(i + 1).all(|y| x.1 <= y.0 || y.1 <= x.0));
        aligned && disjoint
    }
}
