//! After `provision device revoke`: clearing the revoked device's retained `status`.
//!
//! A device's `status` is retained (`online`, and its Last Will `offline`). Once revoked, its
//! Last Will is denied by the ACL, so an `online` it retained would stay on the broker forever
//! and every operator would see the device online. The ACL lets operators write the `status` of
//! revoked devices only; after the broker reloaded that ACL, an operator publishes an empty
//! retained message there, which deletes it. A clustered broker keeps retained messages per
//! node, so this is done at every endpoint the registry lists.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::client::{BrokerAddr, Client, ConnectOptions, Event};
use crate::error::Result;
use crate::layout::Layout;
use crate::registry::Registry;

/// `devices/<id>/status`.
pub fn status_topic(id: &str) -> String {
    format!("devices/{id}/status")
}

/// Where the clearing has to happen: `--broker` (one endpoint), else every endpoint of the
/// registry's broker. A clustered broker (RabbitMQ) keeps retained messages per node, and the
/// device's `online` is on whichever node it was connected to: each node is cleared.
pub fn endpoints(opts: &ConnectOptions, registry: &Registry) -> Result<Vec<BrokerAddr>> {
    BrokerAddr::resolve(opts, registry)
}

/// [`clear_status_on`] at every endpoint ([`endpoints`]); one result per endpoint, in order.
pub fn clear_status(
    opts: &ConnectOptions,
    id: &str,
    within: Duration,
) -> Result<Vec<(BrokerAddr, Result<bool>)>> {
    let registry = crate::store::Store::open_read(&opts.dir)?.registry()?;
    clear_status_in(opts, &registry, id, within)
}

/// [`clear_status`] with the registry the command loaded already.
pub fn clear_status_in(
    opts: &ConnectOptions,
    registry: &Registry,
    id: &str,
    within: Duration,
) -> Result<Vec<(BrokerAddr, Result<bool>)>> {
    Ok(endpoints(opts, registry)?
        .into_iter()
        .map(|addr| {
            let one = ConnectOptions {
                broker: Some(addr.to_string()),
                ..opts.clone()
            };
            let result = clear_status_on(&one, registry, id, within);
            (addr, result)
        })
        .collect())
}

/// Deletes `id`'s retained status through the operator client at the one endpoint `opts` names
/// and checks, with a fresh subscription there, that nothing is retained there any more. The
/// broker applies a reload a moment after the signal, so it tries again until `within` has
/// passed. `Ok(false)`: still retained (the broker has not loaded the new ACL).
pub fn clear_status_on(
    opts: &ConnectOptions,
    registry: &Registry,
    id: &str,
    within: Duration,
) -> Result<bool> {
    let topic = status_topic(id);
    let deadline = Instant::now() + within;
    loop {
        // One identity is one connection: each step connects, then disconnects.
        let client = Client::connect_to(opts, registry, &[])?;
        client.clear_retained(&topic)?;
        client.disconnect();

        let check = Client::connect_to(opts, registry, std::slice::from_ref(&topic))?;
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

/// The command that clears it with mosquitto_pub at one endpoint: `broker`, else the first of
/// the registry's broker ([`clear_status_commands`] gives one per endpoint).
pub fn clear_status_command(dir: &Path, id: &str, operator: &str, broker: Option<&str>) -> String {
    clear_status_commands(dir, id, operator, broker)
        .into_iter()
        .next()
        .unwrap_or_default()
}

/// The commands that do the same with mosquitto_pub (run them once the broker applied the new
/// ACL), as operator `operator`: one per endpoint of the broker `provision broker` recorded (or
/// just `broker`), in order.
pub fn clear_status_commands(
    dir: &Path,
    id: &str,
    operator: &str,
    broker: Option<&str>,
) -> Vec<String> {
    let registry = match broker {
        Some(_) => None,
        None => crate::store::Store::open_read(dir)
            .and_then(|store| store.registry())
            .ok(),
    };
    clear_status_commands_in(registry.as_ref(), dir, id, operator, broker)
}

/// [`clear_status_commands`] with the registry the command loaded already (`None`: unreadable).
pub fn clear_status_commands_in(
    registry: Option<&Registry>,
    dir: &Path,
    id: &str,
    operator: &str,
    broker: Option<&str>,
) -> Vec<String> {
    let layout = Layout::new(dir);
    let addrs: Vec<BrokerAddr> = match broker.and_then(|b| BrokerAddr::parse(b).ok()) {
        Some(a) => vec![a],
        None => registry
            .and_then(|r| BrokerAddr::from_registry(r, dir).ok())
            .unwrap_or_default(),
    };
    let (cert, key) = layout
        .operator_identity(operator)
        .unwrap_or_else(|_| (layout.operator_cert(), layout.operator_key()));
    let abs = |p: std::path::PathBuf| {
        crate::shell_word(&std::path::absolute(&p).unwrap_or(p).display().to_string())
    };
    let command = |host: &str, port: &str| {
        format!(
            "mosquitto_pub -h {host} -p {port} --cafile {ca} --cert {cert} --key {key} -q 1 -r -n -t {topic}",
            host = crate::shell_word(host),
            ca = abs(layout.ca_cert()),
            cert = abs(cert.clone()),
            key = abs(key.clone()),
            topic = status_topic(id),
        )
    };
    if addrs.is_empty() {
        return vec![command("BROKER", "8883")];
    }
    addrs
        .iter()
        .map(|a| command(&a.host, &a.port.to_string()))
        .collect()
}
