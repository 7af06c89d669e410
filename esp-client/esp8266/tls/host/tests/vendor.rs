//! The vendored BearSSL subset is exactly what its manifest lists: every file's SHA-256
//! matches, and no file is there that the manifest does not name.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

fn files(dir: &Path, root: &Path, out: &mut BTreeSet<String>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            files(&p, root, out);
        } else {
            out.insert(p.strip_prefix(root).unwrap().to_str().unwrap().to_string());
        }
    }
}

#[test]
fn vendored_bearssl_matches_its_manifest() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../vendor/bearssl");
    let manifest = std::fs::read_to_string(root.join("MANIFEST.sha256")).unwrap();
    assert!(manifest.contains("# commit: 5b7f3d5b6915324b584da0769c2ca72d896344ee"));
    let mut listed = BTreeSet::new();
    for line in manifest.lines().filter(|l| !l.starts_with('#')) {
        let (sum, path) = line.split_once("  ").expect("sha256sum format");
        let data = std::fs::read(root.join(path)).unwrap_or_else(|e| panic!("{path}: {e}"));
        let got: String = Sha256::digest(&data)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(got, sum, "{path} differs from the manifest");
        listed.insert(path.to_string());
    }
    let mut present = BTreeSet::new();
    files(&root, &root, &mut present);
    present.remove("MANIFEST.sha256");
    present.remove("README.md");
    assert_eq!(present, listed, "files not in the manifest (or missing)");
    assert!(listed.contains("LICENSE.txt"));
}
