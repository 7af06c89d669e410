//! Builds the vendored BearSSL subset and esptls.c for the host with the chip's configuration
//! (the defines in ../bearssl.flags, shared with the LX106 build in ../build-lx106.sh).

use std::path::{Path, PathBuf};

fn c_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        if path.is_dir() {
            c_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "c") {
            out.push(path);
        }
    }
}

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let tls = manifest.parent().unwrap().to_path_buf();
    let vendor = tls.parent().unwrap().join("vendor/bearssl");
    let flags_file = tls.join("bearssl.flags");
    let flags = std::fs::read_to_string(&flags_file).expect("bearssl.flags");
    let defines: Vec<&str> = flags
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();

    let mut sources = Vec::new();
    c_files(&vendor.join("src"), &mut sources);
    sources.sort();

    let mut bearssl = cc::Build::new();
    bearssl
        .include(vendor.join("inc"))
        .include(vendor.join("src"))
        .files(&sources)
        .opt_level(2)
        .warnings(false);
    for d in &defines {
        bearssl.flag(d);
    }
    bearssl.compile("bearssl_esp8266");

    let mut ours = cc::Build::new();
    ours.include(vendor.join("inc"))
        .include(&tls)
        .file(tls.join("esptls.c"))
        .file(manifest.join("csrc/stack.c"))
        .opt_level(2)
        .flag("-Wall")
        .flag("-Wextra")
        .flag("-Werror");
    for d in &defines {
        ours.flag(d);
    }
    ours.compile("esptls");

    // The chip's transport (espconn_tls.c, unchanged) over a simulation of the SDK's espconn
    // on real sockets (sdk-sim/), for the espconn test. The sim's headers stand in for the
    // SDK's, which do not compile for x86-64.
    let mut glue = cc::Build::new();
    glue.include(manifest.join("sdk-sim"))
        .include(vendor.join("inc"))
        .include(&tls)
        .file(tls.join("espconn_tls.c"))
        .file(manifest.join("sdk-sim/espconn_sim.c"))
        .opt_level(2)
        .flag("-Wall")
        .flag("-Wextra")
        .flag("-Werror");
    for d in &defines {
        glue.flag(d);
    }
    glue.compile("espconn_sim");

    println!("cargo:rerun-if-changed={}", flags_file.display());
    println!("cargo:rerun-if-changed={}", tls.join("esptls.c").display());
    println!("cargo:rerun-if-changed={}", tls.join("esptls.h").display());
    println!("cargo:rerun-if-changed={}", manifest.join("csrc").display());
    println!(
        "cargo:rerun-if-changed={}",
        manifest.join("sdk-sim").display()
    );
    println!(
        "cargo:rerun-if-changed={}",
        tls.join("espconn_tls.c").display()
    );
    println!(
        "cargo:rerun-if-changed={}",
        tls.join("espconn_tls.h").display()
    );
    println!("cargo:rerun-if-changed={}", vendor.display());
}
