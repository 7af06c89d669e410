//! After `provision device revoke`: clearing the revoked device's retained `status`.
//!
//! A device's `status` is retained (`online`, and its Last Will `offline`). Once revoked, its
//! Last Will is denied by the ACL, so an `online` it retained would stay on the broker forever
//! and every operator would see the device online. The ACL lets operators write the `status` of
//! revoked devices only; after the broker reloaded that ACL, an operator publishes an empty
//! retained message there, which deletes it.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::client::{BrokerAddr, Client, ConnectOptions, Event};
use crate::error::Result;
use crate::layout::Layout;

/// `devices/<id>/status`.
pub fn status_topic(id: &str) -> String {
    format!("devices/{id}/status")
}

/// Deletes `id`'s retained status through the operator client and checks, with a fresh
/// subscription, that nothing is retained there any more. The broker applies a reload a moment
/// after the signal, so it tries again until `within` has passed. `Ok(false)`: still retained
/// (the broker has not loaded the new ACL).
pub fn clear_status(opts: &ConnectOptions, id: &str, within: Duration) -> Result<bool> {
    let topic = status_topic(id);
    let deadline = Instant::now() + within;
    loop {
        // One identity is one connection: each step connects, then disconnects.
        let client = Client::connect(opts, &[])?;
        client.clear_retained(&topic)?;
        client.disconnect();

        let check = Client::connect(opts, std::slice::from_ref(&topic))?;
        let mut retained = false;
        let until = Instant::now() + Duration::from_millis(300);
        while let Some(left) = until.checked_duration_since(Instant::now()) {
            match check.recv_timeout(left)? {
                Some(Event::Message(m)) if m.topic == topic && !m.payload.is_empty() => {
                    retained = true;
                    break;
                }
                Some(_) => {}
                None => break,
            }
        }
        check.disconnect();
        if !retained {
            return Ok(true);
        }
        if Instant::now() >= deadline {
            return Ok(false);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The command that does the same with mosquitto_pub (run it once the broker reloaded its
/// ACL), as operator `operator`, for the broker `provision broker` recorded (or `broker`).
pub fn clear_status_command(dir: &Path, id: &str, operator: &str, broker: Option<&str>) -> String {
    let layout = Layout::new(dir);
    let abs = |p: std::path::PathBuf| {
        crate::shell_word(&std::path::absolute(&p).unwrap_or(p).display().to_string())
    };
    let addr = broker.and_then(|b| BrokerAddr::parse(b).ok()).or_else(|| {
        crate::store::read_registry(dir)
            .ok()
            .flatten()
            .and_then(|r| BrokerAddr::from_registry(&r, dir).ok())
    });
    let (host, port) = match addr {
        Some(a) => (a.host, a.port.to_string()),
        None => ("BROKER".to_string(), "8883".to_string()),
    };
    let (cert, key) = layout
        .operator_identity(operator)
        .unwrap_or_else(|_| (layout.operator_cert(), layout.operator_key()));
    format!(
        "mosquitto_pub -h {host} -p {port} --cafile {ca} --cert {cert} --key {key} -q 1 -r -n -t {topic}",
        ca = abs(layout.ca_cert()),
        cert = abs(cert),
        key = abs(key),
        topic = status_topic(id),
    )
}
