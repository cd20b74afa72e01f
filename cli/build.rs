//! Sets `cfg(passerelle_root)` when the tests are built as root, so that the tests that need
//! root (network namespaces, nftables) run there and are ignored, with their reason,
//! elsewhere.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(passerelle_root)");
    println!("cargo::rerun-if-env-changed=USER");
    let root = std::process::Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    if root {
        println!("cargo::rustc-cfg=passerelle_root");
    }
}
