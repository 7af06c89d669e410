//! Records the build time: the lowest time floor the device ever validates certificates at
//! (docs/esp-client.md, "Time"). SOURCE_DATE_EPOCH wins for reproducible builds.
use std::time::{SystemTime, UNIX_EPOCH};

fn main() {
    let t = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0)
        });
    println!("cargo:rustc-env=ESP_BUILD_TIME_UNIX={t}");
    println!("cargo:rerun-if-env-changed=SOURCE_DATE_EPOCH");
    println!("cargo:rerun-if-changed=build.rs");
}
