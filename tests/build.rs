//! Sets `cfg(passerelle_root)` when the tests are built as root, so that the tests that need
//! root (network namespaces, nftables) run there and are ignored, with their reason,
//! elsewhere; and `cfg(passerelle_standards)` when the standards' own validators are
//! installed (PyPI: `check-jsonschema`, `compiletojsonschema`, `frictionless`, `libhxl`'s
//! `hxlvalidate`; `.ci/run` installs them), for the tests that run them; and
//! `cfg(passerelle_package)` when cargo-deb, debootstrap and systemd-analyze are installed
//! and the build is root's, for the Debian package's install test; `cfg(passerelle_browser)` when Debian's Chromium and ChromeDriver run, for the web page's
//! tests in a real browser; and `cfg(passerelle_smtp)` when Debian's `python3-aiosmtpd` (a
//! real SMTP server) is installed, for the daily digest's test, with the interpreter that
//! has it in `PASSERELLE_SMTP_PYTHON`; and `cfg(passerelle_openmetrics)` when Debian's
//! `python3-prometheus-client` (Prometheus's own OpenMetrics parser) is, for the metrics'
//! test, its interpreter in `PASSERELLE_OPENMETRICS_PYTHON`.

fn runs(program: &str, arg: &str) -> bool {
    runs_with(program, &[arg])
}

fn runs_with(program: &str, args: &[&str]) -> bool {
    std::process::Command::new(program)
        .args(args)
        .output()
        .is_ok_and(|o| o.status.success())
}

fn main() {
    println!("cargo::rustc-check-cfg=cfg(passerelle_root)");
    println!("cargo::rustc-check-cfg=cfg(passerelle_standards)");
    println!("cargo::rustc-check-cfg=cfg(passerelle_browser)");
    println!("cargo::rustc-check-cfg=cfg(passerelle_smtp)");
    println!("cargo::rustc-check-cfg=cfg(passerelle_openmetrics)");
    println!("cargo::rustc-check-cfg=cfg(passerelle_package)");
    println!("cargo::rerun-if-env-changed=USER");
    println!("cargo::rerun-if-env-changed=PATH");
    let root = std::process::Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    if root {
        println!("cargo::rustc-cfg=passerelle_root");
    }
    if runs("check-jsonschema", "--version")
        && runs("compiletojsonschema", "--help")
        && runs("frictionless", "--version")
        && runs("hxlvalidate", "--help")
    {
        println!("cargo::rustc-cfg=passerelle_standards");
    }
    // The Debian package's install test: cargo-deb builds it, debootstrap makes the clean
    // root it is installed in (as root).
    if root
        && runs("cargo-deb", "--version")
        && runs("debootstrap", "--version")
        && runs("systemd-analyze", "--version")
    {
        println!("cargo::rustc-cfg=passerelle_package");
    }
    if runs("chromium", "--version") && runs("chromedriver", "--version") {
        println!("cargo::rustc-cfg=passerelle_browser");
    }
    // Debian's Python packages go to Debian's interpreter, which may not be the first on
    // PATH: a real SMTP server (python3-aiosmtpd) and Prometheus's OpenMetrics parser
    // (python3-prometheus-client).
    for (module, cfg, env) in [
        ("aiosmtpd", "passerelle_smtp", "PASSERELLE_SMTP_PYTHON"),
        (
            "prometheus_client.openmetrics.parser",
            "passerelle_openmetrics",
            "PASSERELLE_OPENMETRICS_PYTHON",
        ),
    ] {
        if let Some(python) = ["python3", "/usr/bin/python3"]
            .into_iter()
            .find(|python| runs_with(python, &["-c", &format!("import {module}")]))
        {
            println!("cargo::rustc-cfg={cfg}");
            println!("cargo::rustc-env={env}={python}");
        }
    }
}
