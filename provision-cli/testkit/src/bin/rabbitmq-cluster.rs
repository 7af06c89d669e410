//! `rabbitmq-cluster --dir DIR`: runs the RabbitMQ cluster `provision broker --engine rabbitmq`
//! configured in the provisioning directory DIR on this machine, the way the tests do (every
//! node on loopback, its own epmd and free distribution ports, data in a temp folder), for
//! benchmarks and demos.
//!
//! Prints `ready` once every node runs and the cluster is joined, then reads commands on stdin,
//! one per line, answering each with `ok ...` or `error ...`:
//! `kill N` (SIGKILL to node N's processes, N from 1), `restart N` (start it again and wait until
//! it has rejoined), `ctl N ARGS...` (rabbitmqctl against node N). End of input, SIGINT or SIGTERM
//! stop every node and the epmd.

use std::io::BufRead;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use broker_testkit::rabbitmq::{Cluster, NodeFiles};
use clap::Parser;

#[derive(Parser)]
#[command(name = "rabbitmq-cluster")]
struct Args {
    /// Provisioning directory where `provision broker --engine rabbitmq` wrote the nodes' files.
    #[arg(long, value_name = "DIR")]
    dir: PathBuf,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let nodes = match NodeFiles::generated(&args.dir) {
        Ok(n) => n,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    };
    let t = Instant::now();
    let cluster = match Cluster::start(&nodes) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    };
    eprintln!(
        "rabbitmq-cluster: {} nodes running and joined in {:.1} s",
        cluster.len(),
        t.elapsed().as_secs_f64()
    );
    println!("ready");
    let node = |word: Option<&str>| -> Result<usize, String> {
        word.and_then(|w| w.parse::<usize>().ok())
            .filter(|n| (1..=cluster.len()).contains(n))
            .map(|n| n - 1)
            .ok_or_else(|| format!("expected a node number 1..={}", cluster.len()))
    };
    for line in std::io::stdin().lock().lines().map_while(Result::ok) {
        let mut words = line.split_whitespace();
        let answer = match words.next() {
            Some("kill") => node(words.next()).map(|i| {
                cluster.kill(i);
                format!("killed {}", cluster.node_name(i))
            }),
            Some("restart") => node(words.next()).and_then(|i| {
                let t = Instant::now();
                cluster.restart(i).map(|()| {
                    format!(
                        "{} rejoined in {:.1} s",
                        cluster.node_name(i),
                        t.elapsed().as_secs_f64()
                    )
                })
            }),
            Some("ctl") => node(words.next()).and_then(|i| {
                let rest: Vec<&str> = words.collect();
                cluster.ctl_ok(i, &rest).map(|out| out.replace('\n', " "))
            }),
            Some(other) => Err(format!(
                "unknown command {other:?} (kill N, restart N, ctl N ARGS)"
            )),
            None => continue,
        };
        match answer {
            Ok(text) => println!("ok {text}"),
            Err(e) => println!("error {}", e.replace('\n', " ")),
        }
    }
    drop(cluster);
    ExitCode::SUCCESS
}
