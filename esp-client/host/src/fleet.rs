//! Many device cores in one process: each its own config blob and flash file, its own rustls
//! session and AVR, all polled from one thread. The transport never blocks, so one superloop can
//! serve a thousand devices the way the chip's timer serves one.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use esp_client::machine::Device;
use esp_client::settings::Settings;

use crate::board::HostBoard;
use crate::flash::FileFlash;
use crate::tls::TlsTransport;

/// One device of the fleet.
pub struct Member {
    pub device: Box<Device>,
    pub board: HostBoard,
    next: u64,
}

/// What the fleet did, at one moment.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Report {
    pub devices: usize,
    pub online: usize,
    pub connects: u64,
    pub telemetry_sent: u64,
    pub telemetry_acked: u64,
    pub telemetry_dropped: u64,
    pub retransmits: u64,
    /// Connection latency (first attempt to `Online`), milliseconds: p50, p90, p99, max.
    pub connect_ms: [u64; 4],
    /// Most TLS handshakes completed within one second.
    pub peak_handshakes_per_s: usize,
    /// TLS handshakes completed in each second since start.
    pub handshakes_per_s: Vec<usize>,
    /// Seconds since start when every device was online for the last time (None: not yet).
    pub all_online_at_s: Option<f64>,
    /// Devices online per broker endpoint (`host:port`, sorted): how a fleet whose configs name
    /// a cluster's nodes spreads over them, and where it went after a node died.
    pub online_by_endpoint: Vec<(String, usize)>,
}

impl Report {
    /// One JSON object (no serde in the host port).
    pub fn json(&self) -> String {
        let [p50, p90, p99, max] = self.connect_ms;
        format!(
            "{{\"devices\":{},\"online\":{},\"connects\":{},\"telemetry_sent\":{},\
             \"telemetry_acked\":{},\"telemetry_dropped\":{},\"retransmits\":{},\
             \"connect_ms\":{{\"p50\":{p50},\"p90\":{p90},\"p99\":{p99},\"max\":{max}}},\
             \"peak_handshakes_per_s\":{},\"all_online_at_s\":{},\"handshakes_per_s\":{:?},\
             \"online_by_endpoint\":{{{}}}}}",
            self.devices,
            self.online,
            self.connects,
            self.telemetry_sent,
            self.telemetry_acked,
            self.telemetry_dropped,
            self.retransmits,
            self.peak_handshakes_per_s,
            self.all_online_at_s
                .map_or("null".to_string(), |t| format!("{t:.1}")),
            self.handshakes_per_s,
            self.online_by_endpoint
                .iter()
                .map(|(e, n)| format!("\"{e}\":{n}"))
                .collect::<Vec<_>>()
                .join(","),
        )
    }

    /// One line for a terminal.
    pub fn line(&self, t: f64) -> String {
        let [p50, p90, p99, max] = self.connect_ms;
        let spread = match self.online_by_endpoint.len() {
            0 | 1 => String::new(),
            _ => {
                let each: Vec<String> = self
                    .online_by_endpoint
                    .iter()
                    .map(|(e, n)| format!("{e} {n}"))
                    .collect();
                format!("  online by endpoint: {}", each.join(", "))
            }
        };
        format!(
            "[{t:7.1} s] online {}/{}  connects {}  telemetry sent {} acked {} dropped {}  \
             retransmits {}  connect ms p50 {p50} p90 {p90} p99 {p99} max {max}  \
             peak handshakes/s {}{spread}",
            self.online,
            self.devices,
            self.connects,
            self.telemetry_sent,
            self.telemetry_acked,
            self.telemetry_dropped,
            self.retransmits,
            self.peak_handshakes_per_s
        )
    }
}

/// Nearest-rank percentile of a sorted list (0 for none).
fn percentile(sorted: &[u64], p: usize) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (p * sorted.len()).div_ceil(100).max(1);
    sorted[rank - 1]
}

/// The fleet: every `*.flash` or `*.bin` file in a directory is one device.
pub struct Fleet {
    pub members: Vec<Member>,
    start: Instant,
    all_online_at: Option<Duration>,
}

impl Fleet {
    /// Opens every `*.flash` / `*.bin` in `dir` (sorted by name), each as one device.
    pub fn open(dir: &Path, settings: Settings, verbose: bool) -> std::io::Result<Fleet> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "flash" || e == "bin"))
            .collect();
        files.sort();
        if files.is_empty() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("no *.flash or *.bin files in {}", dir.display()),
            ));
        }
        let start = Instant::now();
        let mut members = Vec::with_capacity(files.len());
        for (i, f) in files.iter().enumerate() {
            let flash = FileFlash::open(f).map_err(|e| {
                std::io::Error::new(e.kind(), format!("opening {}: {e}", f.display()))
            })?;
            let name = f
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            members.push(Member {
                device: Box::new(Device::new(settings)),
                board: HostBoard::fleet_member(
                    name,
                    start,
                    flash,
                    TlsTransport::new(false),
                    0x9E37_79B9_7F4A_7C15 ^ (i as u64 + 1).wrapping_mul(0xBF58_476D_1CE4_E5B9),
                    verbose,
                ),
                next: 0,
            });
        }
        Ok(Fleet {
            members,
            start,
            all_online_at: None,
        })
    }

    pub fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }

    /// Polls every device whose deadline passed; returns the earliest next deadline (ms).
    pub fn poll(&mut self) -> u64 {
        let now = self.start.elapsed().as_millis() as u64;
        let mut next = u64::MAX;
        let mut online = 0;
        for m in &mut self.members {
            if m.next <= now {
                m.next = m.device.poll(now, &mut m.board);
            }
            next = next.min(m.next);
            online += usize::from(m.board.connections.online);
        }
        if online == self.members.len() {
            self.all_online_at.get_or_insert(self.start.elapsed());
        } else {
            self.all_online_at = None;
        }
        next
    }

    /// Runs until `stop` is set or `until` passed, calling `each` with a report every `every`.
    pub fn run(
        &mut self,
        stop: &AtomicBool,
        until: Option<Duration>,
        every: Duration,
        mut each: impl FnMut(&Report, f64),
    ) {
        let mut last = Instant::now();
        loop {
            let next = self.poll();
            if stop.load(Ordering::Relaxed) || until.is_some_and(|u| self.elapsed() >= u) {
                break;
            }
            if last.elapsed() >= every {
                last = Instant::now();
                each(&self.report(), self.elapsed().as_secs_f64());
            }
            let now = self.start.elapsed().as_millis() as u64;
            if next > now {
                std::thread::sleep(Duration::from_millis((next - now).min(20)));
            }
        }
    }

    /// Orderly stop of every device (`offline`, DISCONNECT), then what the fleet did.
    pub fn shutdown(&mut self) -> Report {
        let report = self.report();
        let now = self.start.elapsed().as_millis() as u64;
        for m in &mut self.members {
            m.device.shutdown(&mut m.board, now);
        }
        report
    }

    pub fn report(&self) -> Report {
        let mut r = Report {
            devices: self.members.len(),
            all_online_at_s: self.all_online_at.map(|d| d.as_secs_f64()),
            ..Report::default()
        };
        let mut lat = Vec::new();
        let mut per_second = std::collections::HashMap::<u64, usize>::new();
        let mut by_endpoint = std::collections::BTreeMap::<String, usize>::new();
        for m in &self.members {
            if let Some(e) = m.device.endpoint().filter(|_| m.board.connections.online) {
                let name = match e.host.contains(':') {
                    true => format!("[{}]:{}", e.host, e.port),
                    false => format!("{}:{}", e.host, e.port),
                };
                *by_endpoint.entry(name).or_default() += 1;
            }
            let s = m.device.stats();
            r.online += usize::from(m.board.connections.online);
            r.connects += u64::from(s.connects);
            r.telemetry_sent += u64::from(s.telemetry_sent);
            r.telemetry_acked += u64::from(s.telemetry_acked);
            r.telemetry_dropped += u64::from(s.telemetry_dropped);
            r.retransmits += u64::from(s.retransmits);
            let c = &m.board.connections;
            lat.extend_from_slice(&c.latencies);
            for t in &c.handshakes {
                *per_second.entry(t / 1000).or_default() += 1;
            }
        }
        lat.sort_unstable();
        r.connect_ms = [
            percentile(&lat, 50),
            percentile(&lat, 90),
            percentile(&lat, 99),
            lat.last().copied().unwrap_or(0),
        ];
        r.online_by_endpoint = by_endpoint.into_iter().collect();
        r.peak_handshakes_per_s = per_second.values().copied().max().unwrap_or(0);
        let seconds = per_second.keys().max().map_or(0, |s| s + 1);
        r.handshakes_per_s = (0..seconds)
            .map(|s| per_second.get(&s).copied().unwrap_or(0))
            .collect();
        r
    }
}

#[cfg(test)]
mod tests {
    use super::percentile;

    #[test]
    fn percentiles_of_a_small_set() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(
            [
                percentile(&v, 50),
                percentile(&v, 90),
                percentile(&v, 99),
                percentile(&v, 100)
            ],
            [50, 90, 99, 100]
        );
        assert_eq!(percentile(&[], 50), 0);
        assert_eq!(percentile(&[7], 99), 7);
    }
}
