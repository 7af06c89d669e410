//! The clap layer of `provision device config` and `provision device export`: `Args` types
//! that parse and turn into library options; printing in the report functions here.

use std::path::{Path, PathBuf};

use clap::Args;
use provision::device_config::{self, ConfigOptions, ConfigReport};
use provision::export::{self, ExportOptions, Format, Output};
use provision::{device, Error};

use crate::lifecycle_cli::print_json;

#[derive(Args)]
pub struct ConfigArgs {
    /// Device id (or --from-file for many)
    #[arg(required_unless_present = "from_file", conflicts_with = "from_file")]
    id: Option<String>,
    /// Write one blob per id listed in this file (one per line, # comments) into --out-dir
    #[arg(long, requires = "out_dir")]
    from_file: Option<PathBuf>,
    /// With --from-file: the directory for the blobs, named <id>.bin
    #[arg(long, requires = "from_file")]
    out_dir: Option<PathBuf>,
    /// WiFi network name
    #[arg(long)]
    wifi_ssid: String,
    /// File whose first line is the WiFi password (omit for an open network)
    #[arg(long)]
    wifi_password_file: Option<PathBuf>,
    /// Broker name the device connects to (default: the first --host of `provision broker`);
    /// must be a name or address in the broker certificate
    #[arg(long)]
    broker_host: Option<String>,
    /// Broker TLS port (default: the port of `provision broker`)
    #[arg(long)]
    broker_port: Option<u16>,
    /// Seconds between telemetry samples
    #[arg(long, default_value_t = device_config::DEFAULT_PERIOD_S)]
    telemetry_period: u32,
    /// Also pin the broker's public key (from <dir>/broker/server.crt)
    #[arg(long)]
    pin_broker: bool,
    /// Output file
    #[arg(
        short,
        long,
        required_unless_present = "from_file",
        conflicts_with = "from_file"
    )]
    output: Option<PathBuf>,
    /// Machine-readable output
    #[arg(long)]
    json: bool,
}

impl ConfigArgs {
    /// One [`ConfigOptions`] per device.
    pub fn into_options(self) -> Result<Vec<ConfigOptions>, Error> {
        let one = |id: String, output: PathBuf| ConfigOptions {
            id,
            wifi_ssid: self.wifi_ssid.clone(),
            wifi_password_file: self.wifi_password_file.clone(),
            broker_host: self.broker_host.clone(),
            broker_port: self.broker_port,
            telemetry_period_s: self.telemetry_period,
            pin_broker: self.pin_broker,
            output,
        };
        match (&self.id, &self.output, &self.from_file, &self.out_dir) {
            (Some(id), Some(out), None, None) => Ok(vec![one(id.clone(), out.clone())]),
            (None, None, Some(file), Some(dir)) => Ok(device::read_id_file(file)?
                .into_iter()
                .map(|id| {
                    let out = dir.join(format!("{id}.bin"));
                    one(id, out)
                })
                .collect()),
            _ => Err(Error::InvalidInput(
                "give ID -o FILE, or --from-file IDS --out-dir DIR".into(),
            )),
        }
    }

    pub fn run(self, dir: &Path) -> Result<(), Error> {
        let json = self.json;
        if let Some(d) = &self.out_dir {
            if !d.is_dir() {
                return Err(Error::InvalidInput(format!(
                    "--out-dir {} is not a directory",
                    d.display()
                )));
            }
        }
        let reports = device_config::write_configs(dir, &self.into_options()?)?;
        for w in reports.iter().flat_map(|r| &r.warnings) {
            eprintln!("warning: {w}");
        }
        if json {
            print_json(&reports);
        } else {
            for r in &reports {
                print_config(r);
            }
            if reports.len() > 1 {
                println!("{} blobs written", reports.len());
            }
        }
        Ok(())
    }
}

fn print_config(r: &ConfigReport) {
    println!(
        "wrote {} ({} bytes, mode 0600: it holds the device key): device {}, broker {}:{}, {} OTA key(s){}",
        r.output.display(),
        r.bytes,
        r.id,
        r.broker_host,
        r.broker_port,
        r.ota_keys,
        if r.pinned { ", broker key pinned" } else { "" }
    );
    println!(
        "flash it: esptool --chip esp8266 write-flash 0x3F9000 {}   (4 MiB flash; see docs/device-config.md)",
        provision::shell_word(&r.output.display().to_string())
    );
}

#[derive(Args)]
pub struct ExportArgs {
    /// Device id
    id: String,
    /// pem | der | arduino | fingerprint
    #[arg(long, value_parser = parse_format)]
    format: Format,
    /// Directory (pem, der) or header file (arduino); `-` prints pem or arduino to stdout,
    /// which needs --key-to-stdout
    #[arg(short, long)]
    output: Option<PathBuf>,
    /// Allow `-o -` to print the private key
    #[arg(long)]
    key_to_stdout: bool,
    /// Machine-readable output
    #[arg(long)]
    json: bool,
}

fn parse_format(s: &str) -> Result<Format, String> {
    Format::from_name(s).ok_or_else(|| format!("expected one of: {}", Format::NAMES.join(", ")))
}

impl ExportArgs {
    pub fn into_options(self) -> Result<ExportOptions, Error> {
        let output = match (&self.output, self.format) {
            (_, Format::Fingerprint) => {
                if self.output.is_some() {
                    return Err(Error::InvalidInput(
                        "--format fingerprint prints to stdout; drop -o".into(),
                    ));
                }
                None
            }
            (None, _) => {
                return Err(Error::InvalidInput(
                    "-o is required: a directory for pem and der, a file for arduino".into(),
                ))
            }
            (Some(p), _) if p.as_os_str() == "-" => {
                if !self.key_to_stdout {
                    return Err(Error::InvalidInput(
                        "the export holds the device's private key: pass --key-to-stdout to \
                         print it, or -o a file"
                            .into(),
                    ));
                }
                Some(Output::Stdout)
            }
            (Some(p), _) => Some(Output::Path(p.clone())),
        };
        Ok(ExportOptions {
            id: self.id,
            format: self.format,
            output,
        })
    }

    pub fn run(self, dir: &Path) -> Result<(), Error> {
        let json = self.json;
        let r = export::export(dir, &self.into_options()?)?;
        if let Some(text) = &r.stdout {
            print!("{text}");
            return Ok(());
        }
        if json {
            print_json(&r);
            return Ok(());
        }
        if let Some(f) = &r.fingerprints {
            println!("broker certificate {}", f.certificate.display());
            println!("SHA-1 fingerprint:   {}", f.sha1);
            println!("SHA-256 fingerprint: {}", f.sha256);
            println!("SPKI SHA-256:        {}", f.spki_sha256);
            println!(
                "(certificate fingerprints change with every `provision broker renew`; the SPKI \
                 one only with a new key)"
            );
        }
        for (i, f) in r.files.iter().enumerate() {
            let secret = i + 1 == r.files.len();
            println!(
                "wrote {}{}",
                f.display(),
                if secret {
                    " (0600: it holds the private key)"
                } else {
                    ""
                }
            );
        }
        Ok(())
    }
}
