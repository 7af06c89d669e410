//! How the registry is kept on disk: a folder of JSON files, so that a change to one device
//! rewrites one small file, not the whole registry.
//!
//! ```text
//! <dir>/registry/registry.json      everything but the devices: format, CA, operators, CRL
//!                                   number, broker, OTA keys, retired broker and operator
//!                                   certificates (always rewritten; it is small)
//! <dir>/registry/devices-XX.json    the devices whose id's SHA-1 starts with byte XX (hex), and
//!                                   their retired certificates; one record per line
//! ```
//!
//! A command loads every file (the registry stays one [`Registry`] in memory, validated as a
//! whole), and writes back `registry.json` plus only the device files whose contents changed, in
//! the command's journaled transaction (so they land together with the certificates and CRL
//! they describe, or not at all). At 100,000 devices a device file holds about 400 devices.
//!
//! A directory made by an older `provision` has one `registry.toml` instead. It is read as it
//! is, and the first command that writes the registry converts it: the new files and the removal
//! of `registry.toml` are steps of that command's transaction.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha1::Digest as _;

use crate::error::{Error, Result};
use crate::fsutil::{self, Transaction, PUBLIC};
use crate::layout::Layout;
use crate::registry::{
    BrokerRecord, CaRecord, CertRecord, DeviceRecord, OtaKeyRecord, Registry, RetiredCert,
    BROKER_SUBJECT, LIMIT,
};

/// Number of device files; a device's is the first byte of the SHA-1 of its id.
pub const SHARDS: usize = 256;

/// Largest single registry file read.
const FILE_LIMIT: u64 = LIMIT;

/// The device file that holds `id` (and the retired certificates whose subject is `id`).
pub fn shard_of(id: &str) -> u8 {
    sha1::Sha1::digest(id.as_bytes())[0]
}

/// Where a retired certificate is kept: in `registry.json` for the broker and the operators,
/// else in its device's file.
fn retired_shard(r: &RetiredCert) -> Option<u8> {
    if r.subject == BROKER_SUBJECT || r.subject.starts_with('_') {
        None
    } else {
        Some(shard_of(&r.subject))
    }
}

/// What a command loaded, so that writing back touches only the device files that changed.
#[derive(Debug)]
pub struct Loaded {
    /// Read from an old `registry.toml`: the first write converts it.
    legacy: bool,
    devices: BTreeMap<String, DeviceRecord>,
    retired: Vec<RetiredCert>,
}

/// `registry.json`: the registry without its devices.
#[derive(Serialize)]
struct HeadOut<'a> {
    format: u32,
    ca: &'a CaRecord,
    operator: &'a CertRecord,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    operators: &'a BTreeMap<String, CertRecord>,
    crl_number: u64,
    broker: &'a Option<BrokerRecord>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    ota_keys: &'a Vec<OtaKeyRecord>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    retired: Vec<&'a RetiredCert>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ShardIn {
    #[serde(default)]
    devices: BTreeMap<String, DeviceRecord>,
    #[serde(default)]
    retired: Vec<RetiredCert>,
}

/// True when `dir` holds a registry in either form.
pub fn exists(layout: &Layout) -> bool {
    std::fs::symlink_metadata(layout.registry()).is_ok()
        || std::fs::symlink_metadata(layout.legacy_registry()).is_ok()
}

/// Loads and validates the registry of `layout`; `Ok(None)` when there is none yet.
pub fn load(layout: &Layout) -> Result<Option<Registry>> {
    Ok(read(layout)?.map(|(r, _)| r))
}

/// [`load`], also returning what [`stage`] needs to write back only what changed.
pub fn load_for_update(layout: &Layout) -> Result<Option<(Registry, Loaded)>> {
    Ok(read(layout)?.map(|(registry, legacy)| {
        let loaded = Loaded {
            legacy,
            devices: if legacy {
                BTreeMap::new()
            } else {
                registry.devices.clone()
            },
            retired: if legacy {
                Vec::new()
            } else {
                registry.retired.clone()
            },
        };
        (registry, loaded)
    }))
}

/// The registry, and whether it came from an old `registry.toml`.
fn read(layout: &Layout) -> Result<Option<(Registry, bool)>> {
    let head_path = layout.registry();
    let legacy_path = layout.legacy_registry();
    let head = match fsutil::read_bounded(&head_path, FILE_LIMIT, "registry") {
        Ok(b) => Some(b),
        Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(e),
    };
    let Some(head) = head else {
        return Ok(read_legacy(&legacy_path)?.map(|r| (r, true)));
    };
    if std::fs::symlink_metadata(&legacy_path).is_ok() {
        return Err(corrupt(
            &legacy_path,
            format!(
                "is an old registry, but {} is the current one: one of them was copied in by \
                 hand. Move the one that does not belong elsewhere",
                head_path.display()
            ),
        ));
    }
    let mut registry: Registry =
        serde_json::from_slice(&head).map_err(|e| corrupt(&head_path, e.to_string()))?;
    drop(head);
    if !registry.devices.is_empty() {
        return Err(corrupt(
            &head_path,
            "lists devices: they belong in the devices-XX.json files next to it".into(),
        ));
    }
    if let Some(r) = registry.retired.iter().find(|r| retired_shard(r).is_some()) {
        return Err(corrupt(
            &head_path,
            format!(
                "lists a retired certificate of device {:?}: it belongs in its device file",
                r.subject
            ),
        ));
    }
    let mut devices = Vec::new();
    for (shard, path, mut s) in read_shards(layout)? {
        if let Some(id) = s.devices.keys().find(|id| shard_of(id) != shard) {
            return Err(corrupt(
                &path,
                format!(
                    "lists device {id:?}, which belongs in {}",
                    layout.registry_shard(shard_of(id)).display()
                ),
            ));
        }
        if let Some(r) = s.retired.iter().find(|r| retired_shard(r) != Some(shard)) {
            return Err(corrupt(
                &path,
                format!(
                    "lists a retired certificate of {:?}, which does not belong in it",
                    r.subject
                ),
            ));
        }
        devices.push(std::mem::take(&mut s.devices));
        registry.retired.append(&mut s.retired);
    }
    // Each file is sorted; the files are not in id order, so merge through one sorted vector.
    let mut all: Vec<(String, DeviceRecord)> =
        Vec::with_capacity(devices.iter().map(BTreeMap::len).sum());
    for d in devices {
        all.extend(d);
    }
    all.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    registry.devices = BTreeMap::from_iter(all);
    registry
        .validate()
        .map_err(|reason| corrupt(&head_path, reason))?;
    Ok(Some((registry, false)))
}

/// Reads every `devices-XX.json` in the registry folder. Any other name there is refused: a
/// device file renamed by hand would otherwise be skipped, and its devices forgotten.
fn read_shards(layout: &Layout) -> Result<Vec<(u8, PathBuf, ShardIn)>> {
    let dir = layout.registry_dir();
    let entries = std::fs::read_dir(&dir).map_err(|e| Error::Io {
        context: format!("reading {}", dir.display()),
        source: e,
    })?;
    let mut found = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| Error::Io {
            context: format!("reading {}", dir.display()),
            source: e,
        })?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name == crate::layout::REGISTRY_HEAD {
            continue;
        }
        let shard = name
            .strip_prefix("devices-")
            .and_then(|n| n.strip_suffix(".json"))
            .filter(|hex| {
                hex.len() == 2 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
            })
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        let path = entry.path();
        let Some(shard) = shard else {
            return Err(corrupt(
                &path,
                "is not a registry file (registry.json or devices-XX.json): move it out of the \
                 registry folder"
                    .into(),
            ));
        };
        found.push((shard, path));
    }
    found.sort();
    found
        .into_iter()
        .map(|(shard, path)| {
            let bytes = fsutil::read_bounded(&path, FILE_LIMIT, "registry")?;
            let s: ShardIn =
                serde_json::from_slice(&bytes).map_err(|e| corrupt(&path, e.to_string()))?;
            Ok((shard, path, s))
        })
        .collect()
}

fn read_legacy(path: &Path) -> Result<Option<Registry>> {
    let bytes = match fsutil::read_bounded(path, FILE_LIMIT, "registry") {
        Ok(b) => b,
        Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            return Ok(None)
        }
        Err(e) => return Err(e),
    };
    let text = String::from_utf8(bytes).map_err(|_| corrupt(path, "not UTF-8 text".into()))?;
    let registry: Registry =
        toml::from_str(&text).map_err(|e| corrupt(path, e.message().to_string()))?;
    drop(text);
    registry
        .validate()
        .map_err(|reason| corrupt(path, reason))?;
    Ok(Some(registry))
}

/// The devices and retired certificates of one device file.
type ShardMembers<'a> = (Vec<(&'a String, &'a DeviceRecord)>, Vec<&'a RetiredCert>);

/// Stages the registry in `tx`: `registry.json` and the device files that differ from what was
/// `loaded` (all of them when nothing was, or when an old `registry.toml` is being converted,
/// which is then removed). Stage it last: it must not land before the files it describes.
pub fn stage(
    tx: &mut Transaction,
    layout: &Layout,
    registry: &Registry,
    loaded: Option<&Loaded>,
) -> Result<()> {
    // Exhaustive on purpose: a new registry field must be given a place here.
    let Registry {
        format,
        ca,
        operator,
        operators,
        crl_number,
        broker,
        devices,
        ota_keys,
        retired,
    } = registry;
    let dirty: BTreeSet<u8> = match loaded {
        Some(before) if !before.legacy => changed_shards(before, devices, retired),
        _ => {
            // Every file with content, and every device file already there (a stray one would
            // otherwise be read back), unless this transaction moves the folder away.
            let mut all: BTreeSet<u8> = devices.keys().map(|id| shard_of(id)).collect();
            all.extend(retired.iter().filter_map(retired_shard));
            if !tx.moves_away(&layout.registry_dir()) {
                all.extend(existing_shards(layout)?);
            }
            all
        }
    };
    if !dirty.is_empty() {
        let mut members: BTreeMap<u8, ShardMembers> =
            dirty.iter().map(|s| (*s, Default::default())).collect();
        for (id, d) in devices {
            if let Some(m) = members.get_mut(&shard_of(id)) {
                m.0.push((id, d));
            }
        }
        for r in retired {
            if let Some(m) = retired_shard(r).and_then(|s| members.get_mut(&s)) {
                m.1.push(r);
            }
        }
        for (shard, (devs, ret)) in members {
            tx.stage(
                &layout.registry_shard(shard),
                &render_shard(&devs, &ret),
                PUBLIC,
            )?;
        }
    }
    let head = HeadOut {
        format: *format,
        ca,
        operator,
        operators,
        crl_number: *crl_number,
        broker,
        ota_keys,
        retired: retired
            .iter()
            .filter(|r| retired_shard(r).is_none())
            .collect(),
    };
    let mut text = serde_json::to_vec_pretty(&head).expect("registry serializes");
    text.push(b'\n');
    tx.stage(&layout.registry(), &text, PUBLIC)?;
    let legacy = layout.legacy_registry();
    if std::fs::symlink_metadata(&legacy).is_ok() && !tx.moves_away(&legacy) {
        // Converted: the old file goes into the staging area, which the commit then removes.
        let gone = layout
            .root()
            .join(fsutil::STAGING)
            .join("registry.toml.converted");
        tx.move_path(&legacy, &gone)?;
    }
    Ok(())
}

/// The device files whose contents differ between `before` and now.
fn changed_shards(
    before: &Loaded,
    devices: &BTreeMap<String, DeviceRecord>,
    retired: &[RetiredCert],
) -> BTreeSet<u8> {
    let mut dirty = BTreeSet::new();
    // Both maps are sorted: one merge pass.
    let mut old = before.devices.iter().peekable();
    let mut new = devices.iter().peekable();
    loop {
        match (old.peek(), new.peek()) {
            (None, None) => break,
            (Some((k, _)), None) => {
                dirty.insert(shard_of(k));
                old.next();
            }
            (None, Some((k, _))) => {
                dirty.insert(shard_of(k));
                new.next();
            }
            (Some((ok, ov)), Some((nk, nv))) => match ok.cmp(nk) {
                std::cmp::Ordering::Less => {
                    dirty.insert(shard_of(ok));
                    old.next();
                }
                std::cmp::Ordering::Greater => {
                    dirty.insert(shard_of(nk));
                    new.next();
                }
                std::cmp::Ordering::Equal => {
                    if ov != nv {
                        dirty.insert(shard_of(ok));
                    }
                    old.next();
                    new.next();
                }
            },
        }
    }
    // Retired certificates: any position that differs marks the files of both entries there.
    // (A file's list is its entries in order, so it changed only if one of its entries moved,
    // changed, appeared or went.)
    let len = before.retired.len().max(retired.len());
    for i in 0..len {
        let (a, b) = (before.retired.get(i), retired.get(i));
        if a != b {
            dirty.extend(a.and_then(retired_shard));
            dirty.extend(b.and_then(retired_shard));
        }
    }
    dirty
}

fn existing_shards(layout: &Layout) -> Result<Vec<u8>> {
    let dir = layout.registry_dir();
    if !std::fs::symlink_metadata(&dir).is_ok_and(|m| m.is_dir()) {
        return Ok(Vec::new());
    }
    Ok((0..=u8::MAX)
        .filter(|s| std::fs::symlink_metadata(layout.registry_shard(*s)).is_ok())
        .collect())
}

/// A device file: JSON, one device (and one retired certificate) per line, so that `grep` and
/// `diff` work on it.
fn render_shard(devices: &[(&String, &DeviceRecord)], retired: &[&RetiredCert]) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + devices.len() * 200 + retired.len() * 200);
    out.extend_from_slice(b"{\"devices\": {");
    for (i, (id, d)) in devices.iter().enumerate() {
        out.extend_from_slice(if i == 0 { b"\n" } else { b",\n" });
        serde_json::to_writer(&mut out, id).expect("serializes");
        out.extend_from_slice(b": ");
        serde_json::to_writer(&mut out, d).expect("serializes");
    }
    out.extend_from_slice(b"\n},\n\"retired\": [");
    for (i, r) in retired.iter().enumerate() {
        out.extend_from_slice(if i == 0 { b"\n" } else { b",\n" });
        serde_json::to_writer(&mut out, r).expect("serializes");
    }
    out.extend_from_slice(b"\n]}\n");
    out
}

fn corrupt(path: &Path, reason: String) -> Error {
    Error::Corrupt {
        path: path.to_path_buf(),
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::{DeviceStatus, Engine, NodeRecord, Platform, FORMAT};
    use time::macros::datetime;

    fn cert(serial: &str) -> CertRecord {
        CertRecord {
            serial: serial.into(),
            not_before: datetime!(2026-01-01 0:00 UTC),
            not_after: datetime!(2031-01-01 0:00 UTC),
        }
    }

    fn device(serial: &str, revoked: bool) -> DeviceRecord {
        DeviceRecord {
            status: if revoked {
                DeviceStatus::Revoked
            } else {
                DeviceStatus::Active
            },
            cert: cert(serial),
            revoked_at: revoked.then_some(datetime!(2026-06-01 0:00 UTC)),
        }
    }

    /// A registry with every field in use.
    fn full(devices: usize) -> Registry {
        Registry {
            format: FORMAT,
            ca: CaRecord {
                name: "test CA".into(),
                cert: cert("A0"),
            },
            operator: cert("A1"),
            operators: [("_ops-1".to_string(), cert("A2"))].into(),
            crl_number: 7,
            broker: Some(BrokerRecord {
                hosts: vec!["mqtt.example".into()],
                ips: vec!["127.0.0.1".parse().unwrap()],
                port: 8883,
                bind: None,
                install_dir: "/etc/mosquitto/provision".into(),
                platform: Platform::Debian,
                max_packet_size: 4096,
                engine: Engine::Rabbitmq,
                cert: cert("A3"),
                nodes: vec![NodeRecord {
                    name: "rabbit-1".into(),
                    host: "127.0.0.1".into(),
                    port: 41001,
                }],
            }),
            devices: (0..devices)
                .map(|i| {
                    (
                        format!("dev-{i}"),
                        device(&format!("{:X}", 0x1000 + i), i % 5 == 0),
                    )
                })
                .collect(),
            ota_keys: vec![OtaKeyRecord {
                key_id: 1,
                public_key: "11".repeat(32),
                created: datetime!(2026-01-02 0:00 UTC),
            }],
            retired: vec![
                RetiredCert {
                    subject: "dev-1".into(),
                    cert: cert("B1"),
                    revoked_at: None,
                },
                RetiredCert {
                    subject: BROKER_SUBJECT.into(),
                    cert: cert("B2"),
                    revoked_at: Some(datetime!(2026-03-01 0:00 UTC)),
                },
                RetiredCert {
                    subject: "_operator".into(),
                    cert: cert("B3"),
                    revoked_at: Some(datetime!(2026-03-01 0:00 UTC)),
                },
                RetiredCert {
                    subject: "dev-2".into(),
                    cert: cert("B4"),
                    revoked_at: Some(datetime!(2026-03-02 0:00 UTC)),
                },
            ],
        }
    }

    /// Commits `registry` into `dir` and returns the registry files written (by name).
    fn write(dir: &Path, registry: &Registry, loaded: Option<&Loaded>) -> Vec<String> {
        let layout = Layout::new(dir);
        let before = files(dir);
        let mut tx = Transaction::in_store(dir);
        stage(&mut tx, &layout, registry, loaded).unwrap();
        tx.commit().unwrap();
        let after = files(dir);
        after
            .into_iter()
            .filter(|f| !before.contains(f))
            .map(|(name, _)| name)
            .collect()
    }

    /// (name, inode) of every registry file: a rewritten file is a new inode.
    fn files(dir: &Path) -> Vec<(String, u64)> {
        use std::os::unix::fs::MetadataExt;
        let Ok(entries) = std::fs::read_dir(dir.join("registry")) else {
            return Vec::new();
        };
        let mut v: Vec<_> = entries
            .map(|e| {
                let e = e.unwrap();
                (
                    e.file_name().to_string_lossy().into_owned(),
                    e.metadata().unwrap().ino(),
                )
            })
            .collect();
        v.sort();
        v
    }

    #[test]
    fn every_field_survives_a_round_trip() {
        let tmp = tempfile::tempdir().unwrap();
        let reg = full(50);
        write(tmp.path(), &reg, None);
        let mut back = load(&Layout::new(tmp.path())).unwrap().unwrap();
        // Retired certificates come back grouped by file; their order carries no meaning.
        let key = |r: &RetiredCert| r.cert.serial.clone();
        back.retired.sort_by_key(key);
        let mut want = reg.clone();
        want.retired.sort_by_key(key);
        assert_eq!(back, want);
        // The broker's and operators' retired certificates are in registry.json, the devices' in
        // their files.
        let head = std::fs::read_to_string(Layout::new(tmp.path()).registry()).unwrap();
        assert!(head.contains("\"B2\"") && head.contains("\"B3\"") && !head.contains("\"B1\""));
        let dev1 = Layout::new(tmp.path()).registry_shard(shard_of("dev-1"));
        assert!(std::fs::read_to_string(dev1).unwrap().contains("\"B1\""));
    }

    #[test]
    fn a_change_to_one_device_rewrites_its_file_and_registry_json_only() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        write(d, &full(300), None);
        let layout = Layout::new(d);
        let shard_name = |id: &str| format!("devices-{:02x}.json", shard_of(id));

        let (mut reg, loaded) = load_for_update(&layout).unwrap().unwrap();
        reg.devices.get_mut("dev-7").unwrap().status = DeviceStatus::Revoked;
        reg.devices.get_mut("dev-7").unwrap().revoked_at = Some(datetime!(2026-07-01 0:00 UTC));
        reg.crl_number += 1;
        let written = write(d, &reg, Some(&loaded));
        assert_eq!(
            written,
            sorted(["registry.json".into(), shard_name("dev-7")])
        );

        // A new device, and a retired certificate of another one.
        let (mut reg, loaded) = load_for_update(&layout).unwrap().unwrap();
        reg.devices.insert("new-1".into(), device("C1", false));
        let r = reg
            .retired
            .iter_mut()
            .find(|r| r.revoked_at.is_none())
            .unwrap();
        r.revoked_at = Some(datetime!(2026-07-02 0:00 UTC));
        let changed_retired = r.subject.clone();
        assert_eq!(changed_retired, "dev-1");
        let written = write(d, &reg, Some(&loaded));
        assert_eq!(
            written,
            sorted([
                "registry.json".into(),
                shard_name("new-1"),
                shard_name(&changed_retired)
            ])
        );
        let back = load(&layout).unwrap().unwrap();
        assert_eq!(back.devices, reg.devices);
        // Nothing changed: registry.json alone.
        let (reg, loaded) = load_for_update(&layout).unwrap().unwrap();
        assert_eq!(
            write(d, &reg, Some(&loaded)),
            vec!["registry.json".to_string()]
        );
    }

    fn sorted(v: impl IntoIterator<Item = String>) -> Vec<String> {
        v.into_iter().collect::<BTreeSet<_>>().into_iter().collect()
    }

    #[test]
    fn a_misplaced_or_unknown_file_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        write(d, &full(20), None);
        let layout = Layout::new(d);
        // A device in a file it does not belong to would be written twice once changed.
        let from = layout.registry_shard(shard_of("dev-3"));
        let to = layout.registry_shard(shard_of("dev-3").wrapping_add(1));
        let text = std::fs::read_to_string(&from).unwrap();
        std::fs::remove_file(&from).unwrap();
        let _ = std::fs::remove_file(&to);
        std::fs::write(&to, &text).unwrap();
        let err = load(&layout).unwrap_err().to_string();
        assert!(err.contains("belongs in"), "{err}");
        std::fs::rename(&to, &from).unwrap();
        load(&layout).unwrap().unwrap();
        // A renamed device file would be skipped: refused instead.
        std::fs::rename(&from, d.join("registry/devices-3.json.bak")).unwrap();
        let err = load(&layout).unwrap_err().to_string();
        assert!(err.contains("not a registry file"), "{err}");
        std::fs::rename(d.join("registry/devices-3.json.bak"), &from).unwrap();
        // An old registry.toml next to the new files: which one is meant is not guessed.
        std::fs::write(layout.legacy_registry(), "format = 1\n").unwrap();
        let err = load(&layout).unwrap_err().to_string();
        assert!(
            err.contains("registry.toml is corrupt") && err.contains("old registry"),
            "{err}"
        );
    }

    #[test]
    fn an_old_registry_toml_is_read_and_converted_by_the_first_write() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        let layout = Layout::new(d);
        let reg = full(40);
        let toml = format!(
            "# provision registry: every certificate this CA issued. Edit with `provision`, not by hand.\n{}",
            toml::to_string_pretty(&reg).unwrap()
        );
        std::fs::write(layout.legacy_registry(), toml).unwrap();
        let (back, loaded) = load_for_update(&layout).unwrap().unwrap();
        assert_eq!(back, reg);
        assert!(loaded.legacy);
        let written = write(d, &back, Some(&loaded));
        // Every file with content, and the old file is gone.
        let mut want: BTreeSet<String> = reg
            .devices
            .keys()
            .map(|id| format!("devices-{:02x}.json", shard_of(id)))
            .collect();
        want.insert("registry.json".into());
        assert_eq!(written, want.into_iter().collect::<Vec<_>>());
        assert!(!layout.legacy_registry().exists());
        assert!(!d.join(fsutil::STAGING).exists());
        let mut again = load(&layout).unwrap().unwrap();
        again.retired.sort_by_key(|r| r.cert.serial.clone());
        let mut want = reg;
        want.retired.sort_by_key(|r| r.cert.serial.clone());
        assert_eq!(again, want);
    }

    #[test]
    fn a_serial_listed_twice_is_refused_whatever_its_case() {
        let tmp = tempfile::tempdir().unwrap();
        let mut reg = full(20);
        reg.devices.get_mut("dev-3").unwrap().cert.serial = "abc123".into();
        reg.devices.get_mut("dev-4").unwrap().cert.serial = "ABC123".into();
        write(tmp.path(), &reg, None);
        let err = load(&Layout::new(tmp.path())).unwrap_err().to_string();
        assert!(err.contains("serial ABC123 appears twice"), "{err}");
        reg.devices.get_mut("dev-4").unwrap().cert.serial = "ABC1230".into();
        write(tmp.path(), &reg, None);
        load(&Layout::new(tmp.path())).unwrap().unwrap();
    }
}
