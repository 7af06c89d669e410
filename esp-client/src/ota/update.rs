//! The update state machine (docs/ota-protocol.md): offer → checks → download into the inactive
//! slot with a small window of device-paced range requests → streaming verify of what is in
//! flash → mark pending (only with a [`VerifiedImage`]) → reboot → trial → confirm when online →
//! status reports. Progress is durable (the slot trailer), so a download resumes after a lost
//! connection, a broker restart or a reset from the first sector not yet stored.
//!
//! The updater owns no flash and no transport: the application hands it the flash and the
//! trusted keys when it calls in, publishes what [`Updater::next_message`] returns, and resets the
//! device when [`Updater::poll`] says so.
//!
//! [`VerifiedImage`]: wire_format::ota::VerifiedImage

use embedded_storage::nor_flash::NorFlash;
use wire_format::ota::{
    signing_message, Header, Target, TrustedKey, Verifier, Version, HEADER_LEN, IMAGE_OFFSET,
};
use wire_format::ota_proto::{
    self, bundle_id, Chunk, Offer, Phase, Reason, Request, Status, MAX_CHUNK_LEN, MAX_WINDOW,
};

use super::boot;
use super::layout::{Layout, Slot, SECTOR};
use super::state::{self, Outcome, Stored};
use super::trailer;

const CHUNK: u32 = MAX_CHUNK_LEN as u32;
const CHUNKS_PER_SECTOR: u32 = SECTOR / CHUNK;
const _: () = assert!(MAX_WINDOW <= 8 && SECTOR.is_multiple_of(CHUNK));
/// Bytes read back from flash per step while verifying (stack buffer).
const READBACK: usize = 256;

/// Timing of the update state machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OtaSettings {
    /// Outstanding requests are sent again after this long without any chunk.
    pub request_timeout_ms: u32,
    /// After this many unanswered rounds the device stops asking (progress kept) until the
    /// next offer.
    pub max_rounds: u8,
    /// Another bundle's offer is refused (`busy`) while the current download made progress
    /// within this time.
    pub busy_ms: u32,
    /// A trial image that is not online after this long resets, so the loader counts its next
    /// trial boot (or rolls back).
    pub trial_timeout_ms: u32,
    /// After marking an image pending, wait this long for the status to go out, then reset.
    pub reboot_grace_ms: u32,
}

impl Default for OtaSettings {
    fn default() -> Self {
        OtaSettings {
            request_timeout_ms: 5_000,
            max_rounds: 12,
            busy_ms: 60_000,
            trial_timeout_ms: 300_000,
            reboot_grace_ms: 2_000,
        }
    }
}

/// What the application sends for the updater: publish on `devices/<id>/<topic>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Out {
    /// On [`ota_proto::TOPIC_REQUEST`], QoS 0.
    Request(Request),
    /// On [`ota_proto::TOPIC_STATUS`], QoS 1, retained.
    Status(Status),
    /// The answer to a query: the current report on [`ota_proto::TOPIC_STATUS`], QoS 1, **not**
    /// retained (the retained report stays the last change).
    Answer(Status),
}

/// What the application must do after [`Updater::poll`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    None,
    /// Reset the device (an image is pending, or a trial image failed to get online in time).
    Reboot,
}

/// A flash operation failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlashFailed;

/// The image that runs now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Running {
    pub slot: Slot,
    pub version: Version,
    /// Bundle id of the image (0 if its slot has no stored offer, e.g. a factory image).
    pub bundle_id: u32,
}

/// What a report says about a bundle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Info {
    version: Version,
    image_len: u32,
}

impl From<&Header> for Info {
    fn from(h: &Header) -> Info {
        Info {
            version: h.version,
            image_len: h.image_len,
        }
    }
}

struct Download {
    slot: Slot,
    bundle_id: u32,
    info: Info,
    verifier: Verifier<'static>,
    sectors: u32,
    chunks: u32,
    /// Image sectors stored, read back into the verifier and marked.
    done_sectors: u32,
    /// First chunk not yet stored; every chunk below it is stored.
    base: u32,
    /// Chunk `base + i` stored (bit i); bit 0 is always clear.
    got: u8,
    /// Chunk `base + i` must be (re)sent (bit i).
    to_send: u8,
    /// Requests go out for chunks below this (`base <= next <= base + MAX_WINDOW`).
    next: u32,
    /// Sectors below this were erased during this download.
    erased: u32,
    last_progress_ms: u64,
    last_sent_ms: u64,
    rounds: u8,
    stalled: bool,
    /// Last percent reported.
    reported_percent: u8,
}

impl Download {
    fn chunk_len(&self, index: u32) -> u32 {
        let start = index * CHUNK;
        (self.info.image_len - start).min(CHUNK)
    }

    fn stored_bytes(&self) -> u32 {
        (self.done_sectors * SECTOR).min(self.info.image_len)
    }
}

/// The device side of OTA.
pub struct Updater {
    layout: &'static Layout,
    target: Target,
    settings: OtaSettings,
    boot: Stored,
    running: Running,
    dl: Option<Download>,
    report: Status,
    report_dirty: bool,
    /// A query came in and has not been answered yet.
    answer_due: bool,
    trial_deadline: Option<u64>,
    reboot_at: Option<u64>,
    /// Look for an unfinished download to resume when online.
    resume_check: bool,
}

fn zero_version() -> Version {
    Version {
        major: 0,
        minor: 0,
        patch: 0,
    }
}

fn id_of_header(header: &[u8]) -> u32 {
    match <&[u8; HEADER_LEN]>::try_from(header) {
        Ok(h) => bundle_id(&signing_message(h)),
        Err(_) => 0,
    }
}

impl Updater {
    /// Reads the boot state and the running image's stored header; decides what to report.
    pub fn new<F: NorFlash>(
        flash: &mut F,
        layout: &'static Layout,
        target: Target,
        settings: OtaSettings,
        now: u64,
    ) -> Updater {
        let boot = state::read(flash, layout);
        let mut u = Updater {
            layout,
            target,
            settings,
            boot,
            running: Running {
                slot: Slot::A,
                version: zero_version(),
                bundle_id: 0,
            },
            dl: None,
            report: Status {
                phase: Phase::Idle,
                bundle_id: 0,
                running: zero_version(),
                running_slot: ota_proto::Slot::A,
                bundle_version: zero_version(),
                received: 0,
                image_len: 0,
                floor: 0,
            },
            report_dirty: true,
            answer_due: false,
            trial_deadline: None,
            reboot_at: None,
            resume_check: true,
        };
        u.refresh_running(flash);
        let s = u.boot.state;
        let pending_header = s
            .pending
            .and_then(|p| trailer::read_header(flash, layout.slot(p)));
        match s.pending {
            Some(_) if s.trial_boots > 0 => {
                u.trial_deadline = Some(now + u64::from(u.settings.trial_timeout_ms));
                u.set_report(
                    Phase::Trial,
                    s.outcome_bundle,
                    pending_header.as_ref().map(Info::from),
                );
            }
            Some(_) => {
                // Marked, not booted yet (a reset came before the loader ran it): go there.
                u.reboot_at = Some(now);
                u.set_report(
                    Phase::PendingReboot,
                    s.outcome_bundle,
                    pending_header.as_ref().map(Info::from),
                );
            }
            None => match s.outcome {
                Outcome::RolledBack => {
                    let h = trailer::read_header(flash, layout.slot(s.active.other()));
                    u.set_report(
                        Phase::RolledBack(Reason::NotConfirmed),
                        s.outcome_bundle,
                        h.as_ref().map(Info::from),
                    );
                }
                Outcome::Confirmed => {
                    let h = trailer::read_header(flash, layout.slot(s.active));
                    u.set_report(
                        Phase::Confirmed,
                        s.outcome_bundle,
                        h.as_ref().map(Info::from),
                    );
                }
                Outcome::None => u.set_report(Phase::Idle, 0, None),
            },
        }
        u
    }

    /// The image running now.
    pub fn running(&self) -> Running {
        self.running
    }

    /// The last report (what `next_message` publishes when it changes).
    pub fn report(&self) -> &Status {
        &self.report
    }

    /// Whether an update is under way (downloading, pending or on trial).
    pub fn busy(&self) -> bool {
        self.dl.is_some() || self.boot.state.pending.is_some()
    }

    fn refresh_running<F: NorFlash>(&mut self, flash: &mut F) {
        let slot = self.boot.state.running();
        let region = self.layout.slot(slot);
        let prefix = trailer::read_prefix(flash, region);
        self.running = Running {
            slot,
            version: prefix
                .and_then(|p| Header::parse(&p[..HEADER_LEN]).ok())
                .map_or(zero_version(), |h| h.version),
            bundle_id: prefix.map_or(0, |p| id_of_header(&p[..HEADER_LEN])),
        };
    }

    fn set_report(&mut self, phase: Phase, bundle_id: u32, header: Option<Info>) {
        self.report = Status {
            phase,
            bundle_id,
            running: self.running.version,
            running_slot: self.running.slot.into(),
            bundle_version: header.map_or(zero_version(), |h| h.version),
            received: match phase {
                Phase::Idle | Phase::Refused(_) => 0,
                _ => header.map_or(0, |h| h.image_len),
            },
            image_len: header.map_or(0, |h| h.image_len),
            floor: self.boot.state.floor,
        };
        self.report_dirty = true;
    }

    fn set_download_report(&mut self) {
        if let Some(report) = self.download_report() {
            self.report = report;
            self.report_dirty = true;
        }
    }

    /// Where the download stands now (`None` without one).
    fn download_report(&self) -> Option<Status> {
        let d = self.dl.as_ref()?;
        let received = d.stored_bytes();
        Some(Status {
            phase: Phase::Downloading {
                percent: ota_proto::percent(received, d.info.image_len),
            },
            bundle_id: d.bundle_id,
            running: self.running.version,
            running_slot: self.running.slot.into(),
            bundle_version: d.info.version,
            received,
            image_len: d.info.image_len,
            floor: self.boot.state.floor,
        })
    }

    /// The report as of now: the last one, except that a download's progress is counted up to
    /// the last stored sector (reports go out only every tenth).
    pub fn current_report(&self) -> Status {
        match (self.report.phase, self.download_report()) {
            (Phase::Downloading { .. }, Some(now)) => now,
            _ => self.report,
        }
    }

    /// A query arrived on `ota/down/query` (not retained): the next [`Self::next_message`]
    /// answers it with [`Self::current_report`]. Queries before that get the same one answer.
    pub fn on_query(&mut self) {
        self.answer_due = true;
    }

    /// Whether a query waits for its answer.
    pub fn answer_due(&self) -> bool {
        self.answer_due
    }

    /// The device is online (CONNACK and SUBACK): the one place a trial image is confirmed.
    /// Also resumes an unfinished download (the retained status on the broker is still the
    /// last one, so nothing is re-sent). `Ok(true)`: a trial image was confirmed just now.
    pub fn online<F: NorFlash>(
        &mut self,
        flash: &mut F,
        keys: &[TrustedKey],
        now: u64,
    ) -> Result<bool, FlashFailed> {
        let s = self.boot.state;
        let mut confirmed_now = false;
        if s.pending.is_some() && s.trial_boots > 0 {
            let confirmed =
                boot::confirm(flash, self.layout, &self.boot).map_err(|_| FlashFailed)?;
            if let Some(c) = confirmed {
                self.boot = c;
                self.trial_deadline = None;
                self.refresh_running(flash);
                let h = trailer::read_header(flash, self.layout.slot(self.running.slot));
                self.set_report(
                    Phase::Confirmed,
                    c.state.outcome_bundle,
                    h.as_ref().map(Info::from),
                );
                confirmed_now = true;
            }
        }
        if self.resume_check && self.dl.is_none() && self.boot.state.pending.is_none() {
            self.resume_check = false;
            if let Some(slot) = self.boot.state.download_slot() {
                if let Some(prefix) = trailer::read_prefix(flash, self.layout.slot(slot)) {
                    // Only an unfinished download resumes on its own: a complete one in the
                    // inactive slot is the previous image or one that was rolled back.
                    let sectors = Header::parse(&prefix[..HEADER_LEN])
                        .map_or(0, |h| h.image_len.div_ceil(SECTOR));
                    let done = trailer::completed_sectors(flash, self.layout.slot(slot), sectors)
                        .map_err(|_| FlashFailed)?;
                    if sectors > 0 && done < sectors {
                        self.start(flash, keys, &prefix, now)?;
                    }
                }
            }
        }
        if let Some(d) = &mut self.dl {
            // Everything outstanding may have been lost with the connection.
            d.to_send = outstanding_mask(d);
            d.rounds = 0;
            d.stalled = false;
        }
        Ok(confirmed_now)
    }

    /// An offer arrived on `ota/down/offer` (not retained).
    pub fn on_offer<F: NorFlash>(
        &mut self,
        flash: &mut F,
        keys: &[TrustedKey],
        payload: &[u8],
        now: u64,
    ) -> Result<(), FlashFailed> {
        let Ok(offer) = Offer::parse(payload) else {
            return Ok(());
        };
        let id = id_of_header(&offer.bundle_prefix[..HEADER_LEN]);
        let header = offer.header().ok();
        let s = self.boot.state;
        if id == self.running.bundle_id && s.pending.is_none() {
            self.set_report(Phase::Confirmed, id, header.as_ref().map(Info::from));
            return Ok(());
        }
        if let Some(p) = s.pending {
            let ph = trailer::read_header(flash, self.layout.slot(p));
            if id == s.outcome_bundle {
                let phase = if s.trial_boots > 0 {
                    Phase::Trial
                } else {
                    Phase::PendingReboot
                };
                self.set_report(phase, id, ph.as_ref().map(Info::from));
            } else {
                self.set_report(
                    Phase::Refused(Reason::Busy),
                    s.outcome_bundle,
                    ph.as_ref().map(Info::from),
                );
            }
            return Ok(());
        }
        if let Some(d) = &mut self.dl {
            if d.bundle_id == id {
                d.to_send = outstanding_mask(d);
                d.rounds = 0;
                d.stalled = false;
                d.last_progress_ms = now;
                self.set_download_report();
                return Ok(());
            }
            if !d.stalled
                && now.saturating_sub(d.last_progress_ms) < u64::from(self.settings.busy_ms)
            {
                let (bid, info) = (d.bundle_id, d.info);
                self.set_report(Phase::Refused(Reason::Busy), bid, Some(info));
                return Ok(());
            }
            self.dl = None;
        }
        self.start(flash, keys, &offer.bundle_prefix, now)
    }

    /// Checks the offer and starts (or resumes) its download. A refusal touches no flash.
    fn start<F: NorFlash>(
        &mut self,
        flash: &mut F,
        keys: &[TrustedKey],
        prefix: &[u8; IMAGE_OFFSET],
        now: u64,
    ) -> Result<(), FlashFailed> {
        let id = id_of_header(&prefix[..HEADER_LEN]);
        let Some(slot) = self.boot.state.download_slot() else {
            return Ok(());
        };
        let region = *self.layout.slot(slot);
        let mut v = Verifier::new(keys, self.target, self.boot.state.floor)
            .with_max_image_len(region.image_max);
        let checked = v.update(prefix);
        let header = v.authenticated_header().copied();
        let (Ok(()), Some(header), Some(mut verifier)) = (checked, header, v.detached()) else {
            let reason = checked.err().map_or(Reason::Length, Reason::from);
            let h = Header::parse(&prefix[..HEADER_LEN]).ok();
            self.set_report(Phase::Refused(reason), id, h.as_ref().map(Info::from));
            return Ok(());
        };
        let sectors = header.image_len.div_ceil(SECTOR);
        let resume = trailer::read_prefix(flash, &region).is_some_and(|p| p == *prefix);
        let done = if resume {
            trailer::completed_sectors(flash, &region, sectors).map_err(|_| FlashFailed)?
        } else {
            trailer::begin(flash, &region, prefix)
                .map_err(|_| self.flash_failed(id, Info::from(&header)))?;
            0
        };
        // Re-hash what is already stored: the verifier sees exactly what is in flash.
        let mut buf = [0u8; READBACK];
        let stored = (done * SECTOR).min(header.image_len);
        let mut at = 0;
        while at < stored {
            let n = ((stored - at) as usize).min(READBACK);
            flash
                .read(region.image + at, &mut buf[..n])
                .map_err(|_| self.flash_failed(id, Info::from(&header)))?;
            if let Err(e) = verifier.update(&buf[..n]) {
                self.set_report(
                    Phase::Refused(Reason::from(e)),
                    id,
                    Some(Info::from(&header)),
                );
                return Ok(());
            }
            at += n as u32;
        }
        let base = done * CHUNKS_PER_SECTOR;
        self.dl = Some(Download {
            slot,
            bundle_id: id,
            info: Info::from(&header),
            verifier,
            sectors,
            chunks: header.image_len.div_ceil(CHUNK),
            done_sectors: done,
            base,
            got: 0,
            to_send: 0,
            next: base,
            erased: done,
            last_progress_ms: now,
            last_sent_ms: now,
            rounds: 0,
            stalled: false,
            reported_percent: 0,
        });
        self.set_download_report();
        if let Some(d) = &mut self.dl {
            d.reported_percent = ota_proto::percent(d.stored_bytes(), header.image_len);
        }
        // A download whose sectors are all stored already goes straight to the hash check.
        self.advance(flash, now)
    }

    fn flash_failed(&mut self, id: u32, info: Info) -> FlashFailed {
        self.dl = None;
        self.set_report(Phase::Refused(Reason::Flash), id, Some(info));
        FlashFailed
    }

    /// A chunk arrived on `ota/down/chunk`. Chunks for another bundle, outside the window or
    /// already stored are ignored.
    pub fn on_chunk<F: NorFlash>(
        &mut self,
        flash: &mut F,
        payload: &[u8],
        now: u64,
    ) -> Result<(), FlashFailed> {
        let Ok(chunk) = Chunk::parse(payload) else {
            return Ok(());
        };
        let Some(d) = &mut self.dl else {
            return Ok(());
        };
        if chunk.bundle_id != d.bundle_id || chunk.offset % CHUNK != 0 {
            return Ok(());
        }
        let index = chunk.offset / CHUNK;
        if index < d.base || index >= d.next {
            return Ok(());
        }
        let bit = 1u8 << (index - d.base);
        if d.got & bit != 0 || chunk.data.len() as u32 != d.chunk_len(index) {
            return Ok(());
        }
        let addr = self.layout.slot(d.slot).image + chunk.offset;
        let (id, info) = (d.bundle_id, d.info);
        if write_padded(flash, addr, chunk.data).is_err() {
            return Err(self.flash_failed(id, info));
        }
        let Some(d) = &mut self.dl else {
            return Ok(());
        };
        d.got |= bit;
        d.to_send &= !bit;
        d.last_progress_ms = now;
        d.rounds = 0;
        d.stalled = false;
        while d.got & 1 != 0 {
            d.got >>= 1;
            d.to_send >>= 1;
            d.base += 1;
        }
        self.advance(flash, now)
    }

    /// Completes every sector below `base`: read back into the verifier, mark; at the end,
    /// verify and mark the slot pending.
    fn advance<F: NorFlash>(&mut self, flash: &mut F, now: u64) -> Result<(), FlashFailed> {
        let Some(d) = &mut self.dl else {
            return Ok(());
        };
        let region = *self.layout.slot(d.slot);
        let (id, info) = (d.bundle_id, d.info);
        let mut buf = [0u8; READBACK];
        while d.done_sectors < d.sectors
            && d.base >= ((d.done_sectors + 1) * CHUNKS_PER_SECTOR).min(d.chunks)
        {
            let start = d.done_sectors * SECTOR;
            let end = (start + SECTOR).min(d.info.image_len);
            let mut at = start;
            let mut failed = false;
            while at < end {
                let n = ((end - at) as usize).min(READBACK);
                if flash.read(region.image + at, &mut buf[..n]).is_err() {
                    failed = true;
                    break;
                }
                // A failure here is sticky and reported by `finish`.
                let _ = d.verifier.update(&buf[..n]);
                at += n as u32;
            }
            if failed || trailer::mark_sector(flash, &region, d.done_sectors).is_err() {
                return Err(self.flash_failed(id, info));
            }
            d.done_sectors += 1;
        }
        let percent = ota_proto::percent(d.stored_bytes(), d.info.image_len);
        if d.done_sectors < d.sectors {
            if percent / 10 != d.reported_percent / 10 {
                d.reported_percent = percent;
                self.set_download_report();
            }
            return Ok(());
        }
        // All stored: the hash decides.
        let Some(d) = self.dl.take() else {
            return Ok(());
        };
        self.set_report(Phase::Verifying, id, Some(info));
        match d.verifier.finish() {
            Ok(verified) => {
                match boot::mark_pending(flash, self.layout, &self.boot, d.slot, verified, id) {
                    Ok(stored) => {
                        self.boot = stored;
                        self.set_report(Phase::PendingReboot, id, Some(info));
                        self.reboot_at = Some(now + u64::from(self.settings.reboot_grace_ms));
                        Ok(())
                    }
                    Err(boot::MarkError::Flash(_)) => Err(self.flash_failed(id, info)),
                    Err(_) => {
                        self.set_report(Phase::Refused(Reason::Busy), id, Some(info));
                        Ok(())
                    }
                }
            }
            Err(e) => {
                // Wrong bytes are in the slot: forget them, so a retry starts from zero.
                let _ = trailer::discard(flash, &region);
                self.set_report(Phase::Refused(Reason::from(e)), id, Some(info));
                Ok(())
            }
        }
    }

    /// Timers: request time-outs, the trial deadline, the reset after marking pending.
    pub fn poll(&mut self, now: u64) -> Action {
        if let Some(t) = self.reboot_at {
            if now >= t && !self.report_dirty {
                self.reboot_at = None;
                return Action::Reboot;
            }
            // Do not wait forever for a status that cannot go out.
            if now >= t + 10 * u64::from(self.settings.reboot_grace_ms.max(1)) {
                self.reboot_at = None;
                return Action::Reboot;
            }
        }
        if let Some(t) = self.trial_deadline {
            if now >= t {
                self.trial_deadline = None;
                return Action::Reboot;
            }
        }
        if let Some(d) = &mut self.dl {
            if !d.stalled
                && d.next > d.base
                && now.saturating_sub(d.last_sent_ms) >= u64::from(self.settings.request_timeout_ms)
                && now.saturating_sub(d.last_progress_ms)
                    >= u64::from(self.settings.request_timeout_ms)
            {
                d.rounds += 1;
                if d.rounds > self.settings.max_rounds {
                    d.stalled = true;
                } else {
                    d.to_send = outstanding_mask(d);
                    d.last_sent_ms = now;
                }
            }
        }
        Action::None
    }

    /// The next deadline `poll` cares about.
    pub fn next_deadline(&self, now: u64) -> u64 {
        let mut t = u64::MAX;
        if let Some(r) = self.reboot_at {
            t = t.min(r);
        }
        if let Some(d) = self.trial_deadline {
            t = t.min(d);
        }
        if let Some(d) = &self.dl {
            if !d.stalled && d.next > d.base {
                t = t.min(
                    d.last_sent_ms.max(d.last_progress_ms)
                        + u64::from(self.settings.request_timeout_ms),
                );
            }
        }
        t.max(now)
    }

    /// The next message to publish, if any. A request for a chunk in a sector not yet erased
    /// in this download erases that sector first. Counts the message as sent; call
    /// [`Self::unsent`] if publishing fails.
    pub fn next_message<F: NorFlash>(
        &mut self,
        flash: &mut F,
        now: u64,
    ) -> Result<Option<Out>, FlashFailed> {
        if self.report_dirty {
            self.report_dirty = false;
            // The change goes out live too: it answers a waiting query as well.
            self.answer_due = false;
            return Ok(Some(Out::Status(self.report)));
        }
        if self.answer_due {
            self.answer_due = false;
            return Ok(Some(Out::Answer(self.current_report())));
        }
        let Some(d) = &mut self.dl else {
            return Ok(None);
        };
        if d.stalled {
            return Ok(None);
        }
        // Resend first.
        if d.to_send != 0 {
            let i = d.to_send.trailing_zeros();
            d.to_send &= !(1 << i);
            d.last_sent_ms = now;
            let index = d.base + i;
            return Ok(Some(Out::Request(Request {
                bundle_id: d.bundle_id,
                offset: index * CHUNK,
                len: d.chunk_len(index) as u16,
            })));
        }
        if d.next < d.chunks && d.next < d.base + MAX_WINDOW as u32 {
            let index = d.next;
            let sector = index / CHUNKS_PER_SECTOR;
            if sector >= d.erased {
                let region = *self.layout.slot(d.slot);
                let addr = region.image + sector * SECTOR;
                let (id, info) = (d.bundle_id, d.info);
                if flash.erase(addr, addr + SECTOR).is_err() {
                    return Err(self.flash_failed(id, info));
                }
                let Some(d2) = &mut self.dl else {
                    return Ok(None);
                };
                d2.erased = sector + 1;
                return Ok(self.request_next(now));
            }
            return Ok(self.request_next(now));
        }
        Ok(None)
    }

    fn request_next(&mut self, now: u64) -> Option<Out> {
        let d = self.dl.as_mut()?;
        let index = d.next;
        d.next += 1;
        d.last_sent_ms = now;
        Some(Out::Request(Request {
            bundle_id: d.bundle_id,
            offset: index * CHUNK,
            len: d.chunk_len(index) as u16,
        }))
    }

    /// Publishing `out` failed: a status or an answer goes out again with the next call; a
    /// request is sent again when its time-out expires.
    pub fn unsent(&mut self, out: &Out) {
        match out {
            Out::Status(_) => self.report_dirty = true,
            Out::Answer(_) => self.answer_due = true,
            Out::Request(_) => {}
        }
    }
}

/// The window's requested-but-not-stored chunks.
fn outstanding_mask(d: &Download) -> u8 {
    let n = d.next - d.base;
    let all = if n >= 8 { 0xFF } else { (1u8 << n) - 1 };
    all & !d.got
}

/// Writes `data` at `addr`, the tail padded with FF to the flash's write unit.
fn write_padded<F: NorFlash>(flash: &mut F, addr: u32, data: &[u8]) -> Result<(), F::Error> {
    let unit = F::WRITE_SIZE.max(1);
    let aligned = data.len() - data.len() % unit;
    if aligned > 0 {
        flash.write(addr, &data[..aligned])?;
    }
    let rest = &data[aligned..];
    if !rest.is_empty() {
        let mut tail = [0xFFu8; 16];
        let n = unit.min(tail.len());
        tail[..rest.len()].copy_from_slice(rest);
        flash.write(addr + aligned as u32, &tail[..n])?;
    }
    Ok(())
}
