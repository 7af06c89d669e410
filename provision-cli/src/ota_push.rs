//! `provision ota push` and `provision ota status`: the operator's side of the OTA transfer
//! protocol (docs/ota-protocol.md).
//!
//! Push offers the bundle (its header and signature) to each device, then serves the chunk
//! requests the devices send: the devices set the pace. It follows each device's status reports
//! until a final one: `confirmed`, `rolled-back` or `refused`. Devices that do not answer are
//! offered the bundle again (an offer of the bundle a device is already downloading continues
//! that download), except once the device has verified the image: from then on it reboots into
//! it on its own, and an offer would only disturb the trial.

use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::Serialize;
use wire_format::ota::{self, Header, IMAGE_OFFSET};
use wire_format::ota_proto::{
    self, Chunk, Offer, Phase, Query, Reason, Request, Status, MAX_CHUNK_LEN, MAX_CHUNK_MSG,
    TOPIC_CHUNK, TOPIC_OFFER, TOPIC_QUERY, TOPIC_REQUEST, TOPIC_STATUS,
};

use crate::client::{Client, ConnectOptions, Event};
use crate::error::{Error, Result};
use crate::ota_status::StatusReport;
use crate::topics::{self, Kind};

/// Largest bundle file `push` reads (the image must fit a 1 MiB slot; this bound only keeps a
/// wrong file, say `/dev/zero`, from filling memory).
pub const MAX_BUNDLE_FILE: u64 = 16 * 1024 * 1024;
/// A device that has not been heard from for this long (before it verified the image) is
/// offered the bundle again.
pub const REOFFER_AFTER: Duration = Duration::from_secs(15);

pub struct PushOptions {
    pub connect: ConnectOptions,
    pub bundle: PathBuf,
    pub devices: Vec<String>,
    /// Devices updated at the same time.
    pub parallel: usize,
    /// Per device, from its first offer to its final status.
    pub timeout: Duration,
    /// Check the bundle here first (signature with the registry's keys, image hash).
    pub verify: bool,
}

/// A bundle read whole and checked for structure and length.
pub struct Bundle {
    pub path: PathBuf,
    pub bytes: Vec<u8>,
    pub header: Header,
    pub id: u32,
}

impl Bundle {
    pub fn image_len(&self) -> u32 {
        self.header.image_len
    }

    /// The image bytes `offset .. offset + len`, if the range is inside the image.
    pub fn range(&self, offset: u32, len: u16) -> Option<&[u8]> {
        let start = IMAGE_OFFSET.checked_add(usize::try_from(offset).ok()?)?;
        let end = start.checked_add(usize::from(len))?;
        self.bytes.get(start..end)
    }
}

/// Reads and checks a bundle: a regular file, at most [`MAX_BUNDLE_FILE`], a well-formed header,
/// exactly as long as the header says. With `verify_in`, also the device's own verification
/// (signature with the registry's keys, image hash) before anything is sent.
pub fn load_bundle(
    path: &Path,
    verify_in: Option<(&Path, &crate::registry::Registry)>,
) -> Result<Bundle> {
    let rejected = |source| Error::BundleRejected {
        path: path.to_path_buf(),
        source,
    };
    let bytes = crate::fsutil::read_bounded(path, MAX_BUNDLE_FILE, "bundle")?;
    if bytes.len() < IMAGE_OFFSET {
        return Err(rejected(ota::OtaError::Truncated {
            expected: IMAGE_OFFSET as u64,
            received: bytes.len() as u64,
        }));
    }
    let header = Header::parse(&bytes).map_err(rejected)?;
    let expected = IMAGE_OFFSET as u64 + u64::from(header.image_len);
    if bytes.len() as u64 != expected {
        return Err(rejected(if (bytes.len() as u64) < expected {
            ota::OtaError::Truncated {
                expected,
                received: bytes.len() as u64,
            }
        } else {
            ota::OtaError::TrailingData { expected }
        }));
    }
    if let Some((dir, registry)) = verify_in {
        let opts = crate::ota::VerifyOptions::default();
        crate::ota::verify_bytes_in(registry, dir, path, &bytes, &opts)?;
    }
    let mut head = [0u8; ota::HEADER_LEN];
    head.copy_from_slice(&bytes[..ota::HEADER_LEN]);
    let id = ota_proto::bundle_id(&ota::signing_message(&head));
    Ok(Bundle {
        path: path.to_path_buf(),
        bytes,
        header,
        id,
    })
}

/// How one device's update ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    Confirmed,
    RolledBack,
    Refused,
    /// No final status within `--timeout`.
    TimedOut,
}

impl Outcome {
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Confirmed => "confirmed",
            Outcome::RolledBack => "rolled-back",
            Outcome::Refused => "refused",
            Outcome::TimedOut => "timed-out",
        }
    }
}

/// One device's result.
#[derive(Debug, Clone, Serialize)]
pub struct DeviceResult {
    pub device: String,
    pub outcome: Outcome,
    /// The failed check (`refused`, `rolled-back`) or what was last seen (`timed-out`).
    pub reason: Option<String>,
    /// The version the device reported running last.
    pub running_version: Option<String>,
    /// The slot (`A` or `B`) the device reported running from last.
    pub running_slot: Option<String>,
    pub bundle_version: String,
    /// Image bytes this push sent to the device (chunks, repeats included).
    pub bytes_sent: u64,
    /// From the first offer to the device's final status.
    pub seconds: f64,
    /// From the first offer to the device's report that it holds the whole image (`verifying`
    /// or later): the transfer alone, without install and reboot.
    pub transfer_seconds: Option<f64>,
}

/// What push reports while it runs.
#[derive(Debug, Clone)]
pub enum PushEvent {
    /// Connected; `queued` devices will be offered the bundle.
    Connected { broker: String, operator: String },
    /// The bundle was offered to the device (again, if `repeat`).
    Offered { device: String, repeat: bool },
    /// Image bytes the device has (by its status) or was sent (by our chunks).
    Progress {
        device: String,
        received: u32,
        total: u32,
    },
    /// A fresh status report from the device.
    Phase { device: String, status: Status },
    /// Something worth a line: the device is offline, a reconnect.
    Note {
        device: Option<String>,
        text: String,
    },
    /// The device's update is over.
    Done(DeviceResult),
}

#[derive(Debug, PartialEq, Eq)]
enum Stage {
    Queued,
    /// Offered; no sign of verification yet.
    Transfer,
    /// The device verified the image and reboots into it; no more offers.
    Installing,
    Done,
}

struct Dev {
    stage: Stage,
    started: Option<Instant>,
    deadline: Option<Instant>,
    last_heard: Instant,
    running: Option<ota::Version>,
    running_slot: Option<ota_proto::Slot>,
    last_phase: Option<Phase>,
    bytes_sent: u64,
    highest: u32,
    online: Option<bool>,
    transferred: Option<Duration>,
}

/// Pushes `opts.bundle` to every device; returns one result per device, in the given order.
/// `on_event` sees the progress.
pub fn push(opts: &PushOptions, mut on_event: impl FnMut(PushEvent)) -> Result<Vec<DeviceResult>> {
    if opts.devices.is_empty() {
        return Err(Error::InvalidInput("name at least one --device".into()));
    }
    let mut seen = std::collections::BTreeSet::new();
    for id in &opts.devices {
        topics::check_id(id)?;
        if !seen.insert(id) {
            return Err(Error::InvalidInput(format!("--device {id} is named twice")));
        }
    }
    if opts.parallel == 0 {
        return Err(Error::InvalidInput("--parallel must be at least 1".into()));
    }
    let registry = crate::store::Store::open_read(&opts.connect.dir)?.registry()?;
    crate::client::check_devices(&registry, &opts.devices, false)?;
    let bundle = load_bundle(
        &opts.bundle,
        opts.verify
            .then_some((opts.connect.dir.as_path(), &registry)),
    )?;
    let filters = topics::filters(&opts.devices, &[TOPIC_REQUEST, TOPIC_STATUS, "status"]);
    let client = Client::connect_to(&opts.connect, &registry, &filters)?;
    drop(registry);
    on_event(PushEvent::Connected {
        broker: client.addr().to_string(),
        operator: client.operator().to_string(),
    });
    let mut run = Push {
        client: &client,
        bundle: &bundle,
        opts,
        devs: BTreeMap::new(),
        queue: opts.devices.iter().cloned().collect(),
        results: BTreeMap::new(),
    };
    let now = Instant::now();
    for id in &opts.devices {
        run.devs.insert(
            id.clone(),
            Dev {
                stage: Stage::Queued,
                started: None,
                deadline: None,
                last_heard: now,
                running: None,
                running_slot: None,
                last_phase: None,
                bytes_sent: 0,
                highest: 0,
                online: None,
                transferred: None,
            },
        );
    }
    run.run(&mut on_event)?;
    let mut results = std::mem::take(&mut run.results);
    drop(run);
    client.disconnect();
    Ok(opts
        .devices
        .iter()
        .filter_map(|id| results.remove(id))
        .collect())
}

struct Push<'a> {
    client: &'a Client,
    bundle: &'a Bundle,
    opts: &'a PushOptions,
    devs: BTreeMap<String, Dev>,
    queue: VecDeque<String>,
    results: BTreeMap<String, DeviceResult>,
}

impl Push<'_> {
    fn run(&mut self, on_event: &mut impl FnMut(PushEvent)) -> Result<()> {
        let offer = Offer::from_bundle(&self.bundle.bytes)
            .expect("load_bundle checked the length")
            .to_bytes();
        loop {
            // Start devices up to --parallel.
            let active = self
                .devs
                .values()
                .filter(|d| matches!(d.stage, Stage::Transfer | Stage::Installing))
                .count();
            for _ in active..self.opts.parallel {
                let Some(id) = self.queue.pop_front() else {
                    break;
                };
                let now = Instant::now();
                let d = self.devs.get_mut(&id).expect("known device");
                d.stage = Stage::Transfer;
                d.started = Some(now);
                d.deadline = Some(now + self.opts.timeout);
                d.last_heard = now;
                if d.online == Some(false) {
                    on_event(PushEvent::Note {
                        device: Some(id.clone()),
                        text: "offline now; the bundle is offered when it connects".into(),
                    });
                }
                self.client
                    .publish(&topics::topic(Some(&id), TOPIC_OFFER), offer.to_vec())?;
                on_event(PushEvent::Offered {
                    device: id,
                    repeat: false,
                });
            }
            if self.devs.values().all(|d| d.stage == Stage::Done) {
                return Ok(());
            }

            if let Some(event) = self.client.recv_timeout(Duration::from_millis(200))? {
                self.handle(event, &offer, on_event)?;
            }

            // Timers: deadlines, and offers again to devices gone quiet mid-transfer.
            let now = Instant::now();
            let ids: Vec<String> = self.devs.keys().cloned().collect();
            for id in ids {
                let d = &self.devs[&id];
                let active = matches!(d.stage, Stage::Transfer | Stage::Installing);
                if active && d.deadline.is_some_and(|t| now >= t) {
                    let seen = match d.last_phase {
                        Some(p) => format!("no final status; last report: {p}"),
                        None => "no answer from the device".into(),
                    };
                    self.finish(&id, Outcome::TimedOut, Some(seen), on_event);
                } else if d.stage == Stage::Transfer && now - d.last_heard >= REOFFER_AFTER {
                    self.reoffer(&id, &offer, on_event)?;
                }
            }
        }
    }

    fn reoffer(
        &mut self,
        id: &str,
        offer: &[u8],
        on_event: &mut impl FnMut(PushEvent),
    ) -> Result<()> {
        let d = self.devs.get_mut(id).expect("known device");
        d.last_heard = Instant::now();
        self.client
            .publish(&topics::topic(Some(id), TOPIC_OFFER), offer.to_vec())?;
        on_event(PushEvent::Offered {
            device: id.to_string(),
            repeat: true,
        });
        Ok(())
    }

    fn handle(
        &mut self,
        event: Event,
        offer: &[u8],
        on_event: &mut impl FnMut(PushEvent),
    ) -> Result<()> {
        let m = match event {
            Event::Message(m) => m,
            Event::Disconnected(why) => {
                on_event(PushEvent::Note {
                    device: None,
                    text: format!("connection to the broker lost ({why}); reconnecting"),
                });
                return Ok(());
            }
            Event::Reconnected => {
                on_event(PushEvent::Note {
                    device: None,
                    text: format!(
                        "reconnected to {}; offering again to the devices still downloading",
                        self.client.addr()
                    ),
                });
                let ids: Vec<String> = self
                    .devs
                    .iter()
                    .filter(|(_, d)| d.stage == Stage::Transfer)
                    .map(|(id, _)| id.clone())
                    .collect();
                for id in ids {
                    self.reoffer(&id, offer, on_event)?;
                }
                return Ok(());
            }
        };
        let Some((id, kind)) = topics::parse(&m.topic) else {
            return Ok(());
        };
        let id = id.to_string();
        let Some(d) = self.devs.get_mut(&id) else {
            return Ok(());
        };
        match kind {
            Kind::OtaUp(t) if t == "request" && !m.retained => {
                let Ok(req) = Request::parse(&m.payload) else {
                    return Ok(());
                };
                if req.bundle_id != self.bundle.id || d.stage == Stage::Done {
                    return Ok(());
                }
                let Some(data) = self.bundle.range(req.offset, req.len) else {
                    on_event(PushEvent::Note {
                        device: Some(id),
                        text: format!(
                            "asked for bytes {}..+{} outside the image; ignored",
                            req.offset, req.len
                        ),
                    });
                    return Ok(());
                };
                d.last_heard = Instant::now();
                let mut msg = [0u8; MAX_CHUNK_MSG];
                let n = Chunk {
                    bundle_id: req.bundle_id,
                    offset: req.offset,
                    data,
                }
                .emit(&mut msg)
                .expect("a request's len is at most MAX_CHUNK_LEN");
                debug_assert!(data.len() <= MAX_CHUNK_LEN);
                self.client
                    .publish_qos0(&topics::topic(Some(&id), TOPIC_CHUNK), msg[..n].to_vec())?;
                d.bytes_sent += data.len() as u64;
                let end = req.offset + u32::from(req.len);
                if end > d.highest {
                    d.highest = end;
                    on_event(PushEvent::Progress {
                        device: id,
                        received: end,
                        total: self.bundle.image_len(),
                    });
                }
            }
            Kind::OtaUp(t) if t == "status" => {
                let Ok(status) = Status::parse(&m.payload) else {
                    return Ok(());
                };
                d.running = Some(status.running);
                d.running_slot = Some(status.running_slot);
                // A retained report predates this push: what the device said last, not an
                // answer to our offer.
                if m.retained || d.stage == Stage::Done || d.stage == Stage::Queued {
                    return Ok(());
                }
                d.last_heard = Instant::now();
                let ours = status.bundle_id == self.bundle.id;
                let phase = status.phase;
                if ours || matches!(phase, Phase::Refused(Reason::Busy)) {
                    d.last_phase = Some(phase);
                    on_event(PushEvent::Phase {
                        device: id.clone(),
                        status,
                    });
                }
                match phase {
                    Phase::Downloading { .. } if ours => on_event(PushEvent::Progress {
                        device: id,
                        received: status.received,
                        total: self.bundle.image_len(),
                    }),
                    Phase::Verifying | Phase::PendingReboot | Phase::Trial if ours => {
                        d.stage = Stage::Installing;
                        if d.transferred.is_none() {
                            d.transferred = d.started.map(|s| s.elapsed());
                        }
                    }
                    Phase::Confirmed if ours => {
                        self.finish(&id, Outcome::Confirmed, None, on_event)
                    }
                    // The previous image reports the rollback (its own bundle id may be the one
                    // in the report): it counts once this device got as far as installing.
                    Phase::RolledBack(r) if ours || d.stage == Stage::Installing => {
                        self.finish(&id, Outcome::RolledBack, Some(r.name().into()), on_event)
                    }
                    // This very bundle is being installed: wait for its outcome.
                    Phase::Refused(Reason::Busy) if ours => d.stage = Stage::Installing,
                    Phase::Refused(Reason::Busy) => {
                        let reason = if status.image_len > 0 && status.received < status.image_len {
                            format!(
                                "busy: the device is downloading another bundle ({}, id {:08x}, \
                                 {} of {} bytes); push that one again to finish it, or wait \
                                 until the device gives it up",
                                status.bundle_version,
                                status.bundle_id,
                                status.received,
                                status.image_len
                            )
                        } else {
                            format!(
                                "busy: the device is installing another bundle ({}, id {:08x}: \
                                 pending reboot or on trial); wait for it to confirm or roll back",
                                status.bundle_version, status.bundle_id
                            )
                        };
                        self.finish(&id, Outcome::Refused, Some(reason), on_event)
                    }
                    Phase::Refused(r) if ours => {
                        self.finish(&id, Outcome::Refused, Some(r.name().into()), on_event)
                    }
                    _ => {}
                }
            }
            Kind::Status => {
                let text = String::from_utf8_lossy(&m.payload);
                let online = text.contains("online");
                d.online = Some(online);
                if m.retained {
                    return Ok(());
                }
                if !online {
                    if d.stage == Stage::Transfer {
                        on_event(PushEvent::Note {
                            device: Some(id),
                            text: "went offline; waiting for it".into(),
                        });
                    }
                } else if d.stage == Stage::Transfer {
                    // Back after a reset or a lost connection: make sure it knows the offer.
                    self.reoffer(&id, offer, on_event)?;
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn finish(
        &mut self,
        id: &str,
        outcome: Outcome,
        reason: Option<String>,
        on_event: &mut impl FnMut(PushEvent),
    ) {
        let d = self.devs.get_mut(id).expect("known device");
        d.stage = Stage::Done;
        let r = DeviceResult {
            device: id.to_string(),
            outcome,
            reason,
            running_version: d.running.map(|v| v.to_string()),
            running_slot: d.running_slot.map(|s| s.name().to_string()),
            bundle_version: self.bundle.header.version.to_string(),
            bytes_sent: d.bytes_sent,
            seconds: d.started.map(|s| s.elapsed().as_secs_f64()).unwrap_or(0.0),
            transfer_seconds: d.transferred.map(|t| t.as_secs_f64()),
        };
        self.results.insert(id.to_string(), r.clone());
        on_event(PushEvent::Done(r));
    }
}

// ---- ota status ----

/// Where a piece of [`DeviceOtaStatus`] came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// The device said it after we asked: it is connected now.
    Live,
    /// The broker's retained store: what the device said last, on the node we are connected to
    /// (a clustered broker keeps retained messages per node), possibly long ago.
    Retained,
}

/// What a device says about itself, asked live, with what the broker retained as a fallback.
#[derive(Debug, Clone, Serialize)]
pub struct DeviceOtaStatus {
    pub device: String,
    /// The device answered the status query within the timeout (it is connected now).
    pub answered: bool,
    /// `online` when it answered; otherwise `online` / `offline` as the device (or its Last
    /// Will) last said, if the broker retained it; `None`: nothing known.
    pub connection: Option<String>,
    pub connection_from: Option<Source>,
    /// The OTA status report: the device's answer, else the last one retained.
    pub ota: Option<StatusReport>,
    pub ota_from: Option<Source>,
}

impl DeviceOtaStatus {
    fn new(id: &str) -> Self {
        DeviceOtaStatus {
            device: id.to_string(),
            answered: false,
            connection: None,
            connection_from: None,
            ota: None,
            ota_from: None,
        }
    }
}

/// Default time `ota status` waits for the devices' answers.
pub const STATUS_TIMEOUT: Duration = Duration::from_secs(3);

/// Asks `ids` (every device in service when empty) for their status: subscribes to their
/// `ota/up/status` and `status`, publishes a query (docs/ota-protocol.md, "Status on demand") to
/// each, and waits until every one answered or `timeout` passed. A live answer wins over what the
/// broker retained; a device that did not answer is shown with its retained messages, marked as
/// such (on a clustered broker they may be missing: retained messages are kept per node).
pub fn status(
    connect: &ConnectOptions,
    ids: &[String],
    timeout: Duration,
) -> Result<Vec<DeviceOtaStatus>> {
    for id in ids {
        topics::check_id(id)?;
    }
    // Whom to ask: the named devices (a revoked one cannot connect: not asked), else every
    // device in service.
    let registry = crate::store::Store::open_read(&connect.dir)?.registry()?;
    if let Some(id) = ids.iter().find(|id| !registry.devices.contains_key(*id)) {
        return Err(Error::UnknownDevice(id.clone()));
    }
    let in_service = |id: &str| {
        registry
            .devices
            .get(id)
            .is_some_and(|d| d.status != crate::registry::DeviceStatus::Revoked)
    };
    let asked: Vec<String> = if ids.is_empty() {
        registry
            .devices
            .keys()
            .filter(|id| in_service(id))
            .cloned()
            .collect()
    } else {
        ids.iter().filter(|id| in_service(id)).cloned().collect()
    };
    let filters = topics::filters(ids, &[TOPIC_STATUS, "status"]);
    let client = Client::connect_to(connect, &registry, &filters)?;
    drop(registry);
    let mut found: BTreeMap<String, DeviceOtaStatus> = ids
        .iter()
        .chain(&asked)
        .map(|id| (id.clone(), DeviceOtaStatus::new(id)))
        .collect();
    let query = Query.to_bytes();
    for id in &asked {
        client.publish(&topics::topic(Some(id), TOPIC_QUERY), query.to_vec())?;
    }
    let mut waiting = asked.len();
    let deadline = Instant::now() + timeout;
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        if waiting == 0 {
            break;
        }
        let Some(event) = client.recv_timeout(left)? else {
            break;
        };
        let Event::Message(m) = event else { continue };
        let Some((id, kind)) = topics::parse(&m.topic) else {
            continue;
        };
        if m.payload.is_empty() || (!ids.is_empty() && !ids.iter().any(|i| i == id)) {
            continue;
        }
        let from = if m.retained {
            Source::Retained
        } else {
            Source::Live
        };
        let entry = found
            .entry(id.to_string())
            .or_insert_with(|| DeviceOtaStatus::new(id));
        match kind {
            Kind::Status => {
                // A live `online`/`offline` beats a retained one; an answer beats both.
                if entry.answered || (from == Source::Retained && entry.connection_from.is_some()) {
                    continue;
                }
                entry.connection = Some(crate::watch::printable(&String::from_utf8_lossy(
                    &m.payload,
                )));
                entry.connection_from = Some(from);
            }
            Kind::OtaUp(t) if t == "status" => {
                let Ok(s) = Status::parse(&m.payload) else {
                    continue;
                };
                if from == Source::Retained && entry.ota_from == Some(Source::Live) {
                    continue;
                }
                entry.ota = Some(StatusReport::from(&s));
                entry.ota_from = Some(from);
                if from == Source::Live && !entry.answered {
                    entry.answered = true;
                    entry.connection = Some("online".into());
                    entry.connection_from = Some(Source::Live);
                    if asked.iter().any(|a| a == id) {
                        waiting -= 1;
                    }
                }
            }
            _ => {}
        }
    }
    client.disconnect();
    Ok(found.into_values().collect())
}
