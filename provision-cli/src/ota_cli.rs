//! The clap layer of `provision ota` (part of the binary; the work is in `provision::ota`).

use std::path::{Path, PathBuf};

use clap::Subcommand;
use provision::ota::{self, BuildOptions, PubkeySpec, VerifyOptions};
use provision::Error;
use wire_format::ota::{Target, Version};

#[derive(Subcommand)]
pub enum OtaCommand {
    /// Create an Ed25519 signing key (0600 PKCS#8 PEM) and record its public key
    #[command(after_help = "\
Examples:
  provision ota keygen                 # key id 1, or one above the highest recorded id
  provision ota keygen --key-id 2      # rotate: devices trust keys by id

Writes <dir>/ota/key-<id>.pem (private, 0600) and key-<id>.pub.pem; never overwrites.")]
    Keygen {
        /// Key id written into bundle headers (default: next free id)
        #[arg(long)]
        key_id: Option<u32>,
        /// Machine-readable output
        #[arg(long)]
        json: bool,
    },
    /// Build a signed bundle (format v1) from a firmware image
    #[command(after_help = "\
Examples:
  provision ota build app.bin --version 1.2.0 --target esp8266 -o app-1.2.0.bundle
  provision ota build app.bin --version 1.2.1 --target esp8266 --security-counter 3 -o app.bundle
  provision ota build app.bin --version 1.2.1 --target esp8266 --key-id 7 --unsigned -o app.unsigned
      # offline signing: sign app.unsigned.tosign elsewhere, then `provision ota attach-signature`

The build time is SOURCE_DATE_EPOCH when set (reproducible builds), else now.")]
    Build {
        /// Firmware image (raw bytes)
        image: PathBuf,
        /// Firmware version X.Y.Z
        #[arg(long)]
        version: Version,
        /// Chip the image is for: esp8266 or atmega168
        #[arg(long, value_parser = parse_target)]
        target: Target,
        /// Anti-rollback counter: devices refuse bundles below their persisted floor
        #[arg(long, default_value_t = 0)]
        security_counter: u32,
        /// Signing key id (default: the newest key in the registry)
        #[arg(long)]
        key_id: Option<u32>,
        /// Write the bundle with an empty signature plus the 32 bytes to sign (<OUT>.tosign)
        #[arg(long)]
        unsigned: bool,
        /// With --unsigned: where to write the bytes to sign
        #[arg(long, requires = "unsigned")]
        to_sign: Option<PathBuf>,
        /// Build time, seconds since the epoch
        #[arg(long)]
        build_time: Option<u64>,
        /// Output bundle
        #[arg(short, long)]
        out: PathBuf,
        /// Machine-readable output
        #[arg(long)]
        json: bool,
    },
    /// Check a bundle exactly as a device does; exit 0 only when it is valid
    #[command(after_help = "\
Examples:
  provision ota verify app.bundle                      # trust the registry's keys
  provision ota verify app.bundle --pubkey key.pub.pem --min-counter 3
  provision ota verify app.bundle --pubkey 1=old.pub.pem --pubkey 2=new.pub.pem

Exit codes: 0 valid, 9 rejected (the message names the failed check), others as for every command.")]
    Verify {
        bundle: PathBuf,
        /// Trusted public key, PEM: FILE (for the key id the bundle names) or ID=FILE; repeatable
        // One value per flag: with several, `verify --pubkey k.pem app.bundle` ate the bundle.
        #[arg(long = "pubkey")]
        pubkeys: Vec<PubkeySpec>,
        /// The device's anti-rollback floor
        #[arg(long, default_value_t = 0)]
        min_counter: u32,
        /// The device's chip (default: the target the bundle names)
        #[arg(long, value_parser = parse_target)]
        target: Option<Target>,
        /// Machine-readable output (on success; a rejection is exit 9 with the reason on stderr)
        #[arg(long)]
        json: bool,
    },
    /// Show every header field (does not verify)
    #[command(
        after_help = "Examples:\n  provision ota inspect app.bundle\n  provision ota inspect app.bundle --json"
    )]
    Inspect {
        bundle: PathBuf,
        /// Machine-readable output
        #[arg(long)]
        json: bool,
    },
    /// Add a signature made elsewhere (openssl, an HSM) to an unsigned bundle
    #[command(after_help = "\
Examples:
  openssl pkeyutl -sign -rawin -inkey key.pem -in app.unsigned.tosign -out app.sig
  provision ota attach-signature app.unsigned --signature app.sig -o app.bundle
  provision ota attach-signature app.unsigned --signature app.sig --pubkey 7=hsm.pub.pem -o app.bundle

The signature is 64 raw bytes. The output is written only if the bundle then verifies.")]
    AttachSignature {
        bundle: PathBuf,
        /// Raw 64-byte Ed25519 signature over the .tosign bytes
        #[arg(long)]
        signature: PathBuf,
        /// Public key to check it with (default: the registry's key for the header's key id)
        #[arg(long = "pubkey")]
        pubkeys: Vec<PubkeySpec>,
        /// Output bundle
        #[arg(short, long)]
        out: PathBuf,
        /// Machine-readable output
        #[arg(long)]
        json: bool,
    },
    /// Send a signed bundle to devices over MQTT and wait until each confirms, rolls back or
    /// refuses it
    #[command(after_help = "\
Examples:
  provision ota push app-1.2.0.bundle --device kitchen-sensor-1
  provision ota push app.bundle --device porch-1 --device porch-2 --parallel 2 --json

Each device checks the offered header and signature before it erases anything, then asks for
the image chunk by chunk, installs it, reboots into it on trial and confirms once it is back
online. Pushing the same bundle again continues a download; a device busy with another bundle
refuses. Exit codes: 0 every device confirmed, 16 some did not (the output says why), 9 the
bundle is invalid here, others as for every command.")]
    Push(crate::ota_push_cli::PushArgs),
    /// Ask devices where they stand on updates: running version and slot, state, floor
    #[command(after_help = "\
Examples:
  provision ota status
  provision ota status kitchen-sensor-1 --json --timeout 10

Each device is sent a status query and answers live from whichever broker node it is connected
to. A device that does not answer within --timeout is shown with what the broker retained from
it (FROM retained), if anything: on a clustered broker only the node the device used has that.")]
    Status(crate::ota_push_cli::StatusArgs),
}

/// What `build`, `verify` and `attach-signature --json` print about a bundle.
fn header_json(bundle: &Path, h: &wire_format::ota::Header) -> serde_json::Value {
    serde_json::json!({
        "bundle": bundle,
        "version": h.version.to_string(),
        "target": h.target.to_string(),
        "security_counter": h.security_counter,
        "image_len": h.image_len,
        "key_id": h.key_id,
    })
}

fn parse_target(s: &str) -> Result<Target, String> {
    Target::from_name(s).ok_or_else(|| {
        let names: Vec<_> = Target::ALL.iter().map(|t| t.name()).collect();
        format!(
            "unknown target {s:?}; expected one of: {}",
            names.join(", ")
        )
    })
}

pub fn run(dir: &Path, cmd: OtaCommand) -> Result<(), Error> {
    match cmd {
        OtaCommand::Push(args) => crate::ota_push_cli::run_push(dir, args)?,
        OtaCommand::Status(args) => crate::ota_push_cli::run_status(dir, args)?,
        OtaCommand::Keygen { key_id, json } => {
            let k = ota::keygen(dir, key_id)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&k).expect("serializes"));
                return Ok(());
            }
            println!("OTA signing key {} created", k.key_id);
            println!(
                "private key: {} (0600; keep it offline)",
                k.private_key.display()
            );
            println!("public key:  {}", k.public_key.display());
            println!("public key (hex): {}", k.public_key_hex);
        }
        OtaCommand::Build {
            image,
            version,
            target,
            security_counter,
            key_id,
            unsigned,
            to_sign,
            build_time,
            out,
            json,
        } => {
            let r = ota::build(
                dir,
                &BuildOptions {
                    image,
                    out,
                    version,
                    target,
                    security_counter,
                    key_id,
                    unsigned,
                    to_sign,
                    build_time,
                },
            )?;
            let h = &r.header;
            if json {
                let mut v = header_json(&r.bundle, h);
                v["signed"] = (!unsigned).into();
                v["bundle_len"] = r.bundle_len.into();
                v["to_sign"] = serde_json::json!(r.to_sign);
                println!("{}", serde_json::to_string_pretty(&v).expect("serializes"));
                return Ok(());
            }
            println!(
                "{} {} ({} bytes): version {} for {}, security counter {}, key id {}",
                if unsigned {
                    "unsigned bundle"
                } else {
                    "signed bundle"
                },
                r.bundle.display(),
                r.bundle_len,
                h.version,
                h.target,
                h.security_counter,
                h.key_id
            );
            if let Some(path) = &r.to_sign {
                println!("bytes to sign (32): {}", path.display());
                println!(
                    "sign them, e.g.: openssl pkeyutl -sign -rawin -inkey KEY.pem -in {} -out SIG",
                    path.display()
                );
                println!(
                    "then: provision ota attach-signature {} --signature SIG -o BUNDLE",
                    r.bundle.display()
                );
            }
        }
        OtaCommand::Verify {
            bundle,
            pubkeys,
            min_counter,
            target,
            json,
        } => {
            let h = ota::verify(
                dir,
                &bundle,
                &VerifyOptions {
                    pubkeys,
                    min_counter,
                    target,
                },
            )?;
            if json {
                let mut v = header_json(&bundle, &h);
                v["valid"] = true.into();
                println!("{}", serde_json::to_string_pretty(&v).expect("serializes"));
                return Ok(());
            }
            println!(
                "{}: valid: version {} for {}, security counter {}, {} image bytes, key id {}",
                bundle.display(),
                h.version,
                h.target,
                h.security_counter,
                h.image_len,
                h.key_id
            );
        }
        OtaCommand::Inspect { bundle, json } => {
            let i = ota::inspect(&bundle)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&i).expect("serializes"));
            } else {
                println!("{i}");
            }
        }
        OtaCommand::AttachSignature {
            bundle,
            signature,
            pubkeys,
            out,
            json,
        } => {
            let h = ota::attach_signature(dir, &bundle, &signature, &out, &pubkeys)?;
            if json {
                let mut v = header_json(&out, &h);
                v["signed"] = true.into();
                v["verified"] = true.into();
                println!("{}", serde_json::to_string_pretty(&v).expect("serializes"));
                return Ok(());
            }
            println!(
                "signed bundle {}: version {} for {}, key id {} (verified)",
                out.display(),
                h.version,
                h.target,
                h.key_id
            );
        }
    }
    Ok(())
}
