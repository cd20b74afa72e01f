//! The Debian package, installed as an administrator would: built with cargo-deb from this
//! build's binary (`packaging/build-deb.sh --profile dev --no-build`), installed with
//! `dpkg -i` in a clean Debian root made by debootstrap (cached in `target/deb-root/`).
//!
//! systemd cannot run here (this machine's PID 1 is not systemd, and `systemd-nspawn -b`
//! finds no system bus), so the root is a **chroot**: the test reads the unit the package
//! installed and starts the node the way it says (its user, its environment, its
//! command), in a network namespace of its own; `systemd-analyze` checks the unit offline
//! (`verify`, and `security`'s exposure score).

#![cfg(unix)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn sh(program: &str, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"))
}

fn ok(program: &str, args: &[&str]) -> String {
    let out = sh(program, args);
    assert!(
        out.status.success(),
        "{program} {args:?}: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `command` run inside the root `root` (chroot), as `user` (runuser) with `env`.
fn inside(root: &Path, user: &str, env: &[&str], command: &[&str]) -> Output {
    let root = root.to_str().expect("path");
    let mut args = vec![root, "runuser", "-u", user, "--", "env"];
    args.extend(env);
    args.extend(command);
    sh("chroot", &args)
}

/// The clean Debian root, made once by debootstrap (minbase) and copied for each run.
fn clean_root(into: &Path) {
    let cache = workspace().join("target/deb-root/bookworm");
    if !cache.join("etc/debian_version").exists() {
        let _ = std::fs::remove_dir_all(&cache);
        std::fs::create_dir_all(cache.parent().expect("parent")).expect("cache folder");
        ok(
            "debootstrap",
            &[
                "--variant=minbase",
                "bookworm",
                cache.to_str().expect("path"),
                "http://deb.debian.org/debian",
            ],
        );
    }
    ok(
        "cp",
        &[
            "-a",
            cache.to_str().expect("path"),
            into.to_str().expect("path"),
        ],
    );
}

/// The lines `Key=value` of a unit file's `key`.
fn unit_values<'a>(unit: &'a str, key: &str) -> Vec<&'a str> {
    unit.lines()
        .filter_map(|l| l.strip_prefix(key)?.strip_prefix('='))
        .collect()
}

#[test]
#[cfg_attr(
    not(passerelle_package),
    ignore = "needs root, cargo-deb (cargo install cargo-deb) and debootstrap (apt install debootstrap); .ci/run installs them"
)]
fn the_debian_package_installs_runs_as_its_unit_says_upgrades_and_purges_keeping_the_data() {
    // The package, from this build's binary (or, to measure the one shipped, the dist
    // build's: PASSERELLE_PACKAGE_PROFILE=dist after `cargo build --profile dist`).
    let profile = std::env::var("PASSERELLE_PACKAGE_PROFILE").unwrap_or_else(|_| "dev".into());
    let _ = std::fs::remove_dir_all(workspace().join("target/debian"));
    ok(
        workspace()
            .join("packaging/build-deb.sh")
            .to_str()
            .expect("path"),
        &["--profile", &profile, "--no-build"],
    );
    let deb = std::fs::read_dir(workspace().join("target/debian"))
        .expect("target/debian")
        .map(|e| e.expect("entry").path())
        .find(|p| p.extension().is_some_and(|e| e == "deb"))
        .expect("a .deb");
    let package_bytes = std::fs::metadata(&deb).expect("deb").len();
    let installed_kib: u64 = ok(
        "dpkg-deb",
        &["-f", deb.to_str().expect("path"), "Installed-Size"],
    )
    .trim()
    .parse()
    .expect("Installed-Size");
    let control = ok("dpkg-deb", &["-f", deb.to_str().expect("path")]);
    assert!(control.contains("Depends: libc6"), "{control}");

    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("root");
    clean_root(&root);
    std::fs::copy(&deb, root.join("tmp/passerelle.deb")).expect("copy the package");
    let r = root.to_str().expect("path");

    // Installed.
    let installing = Instant::now();
    let install = sh("chroot", &[r, "dpkg", "-i", "/tmp/passerelle.deb"]);
    assert!(
        install.status.success(),
        "dpkg -i: {}\n{}",
        String::from_utf8_lossy(&install.stdout),
        String::from_utf8_lossy(&install.stderr)
    );
    assert!(
        String::from_utf8_lossy(&install.stdout).contains("sudo -u passerelle passerelle init"),
        "the next step is not said: {}",
        String::from_utf8_lossy(&install.stdout)
    );
    for path in [
        "usr/bin/passerelle",
        "usr/lib/systemd/system/passerelle.service",
        "usr/share/man/man1/passerelle.1.gz",
        "usr/share/man/man1/passerelle-referral-send.1.gz",
        "usr/share/man/fr/man1/passerelle-referral-send.1.gz",
        "usr/share/bash-completion/completions/passerelle",
        "usr/share/zsh/vendor-completions/_passerelle",
        "usr/share/fish/vendor_completions.d/passerelle.fish",
        "etc/passerelle/config.toml",
    ] {
        assert!(root.join(path).exists(), "{path} is not installed");
    }
    let user = ok("chroot", &[r, "getent", "passwd", "passerelle"]);
    assert!(
        user.contains(":/var/lib/passerelle:/usr/sbin/nologin"),
        "{user}"
    );
    let data = ok(
        "chroot",
        &[r, "stat", "-c", "%a %U %G", "/var/lib/passerelle"],
    );
    assert_eq!(data.trim(), "750 passerelle passerelle");
    let config = ok(
        "chroot",
        &[r, "stat", "-c", "%a %U %G", "/etc/passerelle/config.toml"],
    );
    assert_eq!(config.trim(), "640 root passerelle");
    assert_eq!(
        std::fs::read_link(root.join("var/lib/passerelle/config.toml")).expect("link"),
        Path::new("/etc/passerelle/config.toml")
    );

    // The unit, checked offline by systemd itself.
    let unit_path = root.join("usr/lib/systemd/system/passerelle.service");
    // (`verify` looks for systemd's own units beside it: the host's; the command checked
    // is the package's binary, in the root.)
    let verifiable = dir.path().join("passerelle.service");
    std::fs::write(
        &verifiable,
        std::fs::read_to_string(&unit_path)
            .expect("unit")
            .replace("ExecStart=/usr/bin/", &format!("ExecStart={r}/usr/bin/")),
    )
    .expect("unit copy");
    let verify = sh(
        "systemd-analyze",
        &["verify", verifiable.to_str().expect("path")],
    );
    assert!(
        verify.status.success() && verify.stderr.is_empty(),
        "systemd-analyze verify: {}",
        String::from_utf8_lossy(&verify.stderr)
    );
    let security = sh(
        "systemd-analyze",
        &[
            "security",
            "--offline=yes",
            unit_path.to_str().expect("path"),
        ],
    );
    let security = String::from_utf8_lossy(&security.stdout).into_owned();
    let exposure: f64 = security
        .lines()
        .find_map(|l| {
            l.split("Overall exposure level for passerelle.service: ")
                .nth(1)
        })
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no exposure level: {security}"));
    assert!(exposure <= 2.0, "exposure {exposure}: {security}");

    // The unit's user, environment and command.
    let unit = std::fs::read_to_string(&unit_path).expect("unit");
    let service_user = unit_values(&unit, "User")[0];
    let environment = unit_values(&unit, "Environment");
    let exec = unit_values(&unit, "ExecStart")[0];
    assert_eq!(service_user, "passerelle");
    assert_eq!(environment, ["PASSERELLE_HOME=/var/lib/passerelle"]);
    assert!(
        unit_values(&unit, "TimeoutStopSec")[0]
            .parse::<u64>()
            .expect("seconds")
            >= 60
    );
    for hardening in [
        "ProtectSystem=strict",
        "NoNewPrivileges=yes",
        "PrivateTmp=yes",
    ] {
        assert!(unit.lines().any(|l| l == hardening), "{hardening}");
    }

    // The administrator makes the identity, as the package says.
    let init = inside(
        &root,
        service_user,
        &environment,
        &[
            "passerelle",
            "init",
            "--org-name",
            "Délégation régionale du Littoral",
            "--legal-status",
            "government",
        ],
    );
    assert!(
        init.status.success(),
        "{}",
        String::from_utf8_lossy(&init.stderr)
    );
    let condition = unit_values(&unit, "ConditionPathExists")[0];
    assert!(
        root.join(condition.trim_start_matches('/')).exists(),
        "{condition}"
    );
    let identity = root.join(condition.trim_start_matches('/'));
    let key_before = std::fs::read(&identity).expect("the identity");

    // Started as the unit says, in a network namespace of its own: systemd makes the state
    // folder the unit names with its mode and owner, sets the umask, then runs the command
    // as the unit's user with its environment.
    let state = format!("/var/lib/{}", unit_values(&unit, "StateDirectory")[0]);
    let mode = unit_values(&unit, "StateDirectoryMode")[0];
    let umask = unit_values(&unit, "UMask")[0];
    let group = unit_values(&unit, "Group")[0];
    ok(
        "chroot",
        &[r, "chown", &format!("{service_user}:{group}"), &state],
    );
    ok("chroot", &[r, "chmod", mode, &state]);
    let start_line = format!(
        "ip link set lo up && mount -t proc proc {r}/proc && umask {umask} && exec chroot {r} runuser -u {service_user} -- env {} {exec}",
        environment.join(" ")
    );
    let mut node: Child = {
        use std::os::unix::process::CommandExt;
        Command::new("unshare")
            .args(["--net", "--mount", "--fork", "sh", "-c", &start_line])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()
            .expect("start the node")
    };

    // An administrator in the group passerelle runs commands without naming the folder.
    ok(
        "chroot",
        &[
            r,
            "useradd",
            "--create-home",
            "--groups",
            "passerelle",
            "amina",
        ],
    );
    ok("chroot", &[r, "useradd", "--create-home", "paul"]);
    let mut status = None;
    let mut last = String::new();
    while installing.elapsed() < Duration::from_secs(60) {
        let out = inside(
            &root,
            "amina",
            &["HOME=/home/amina"],
            &["passerelle", "status", "--json"],
        );
        if out.status.success() {
            status = Some(String::from_utf8_lossy(&out.stdout).into_owned());
            break;
        }
        last = String::from_utf8_lossy(&out.stderr).into_owned();
        std::thread::sleep(Duration::from_millis(100));
    }
    let running_after = installing.elapsed();
    let Some(status) = status else {
        let _ = nix_kill(&node);
        let mut log = String::new();
        if let Some(mut err) = node.stderr.take() {
            use std::io::Read;
            let _ = err.read_to_string(&mut log);
        }
        panic!("the node never answered its administrator: {last}\nthe node said: {log}");
    };
    assert!(
        status.contains("\"data_dir\": \"/var/lib/passerelle\""),
        "{status}"
    );
    assert!(
        status.contains("Délégation régionale du Littoral"),
        "{status}"
    );
    // Another user is refused, and told why, in the language of their locale.
    for (locale, why) in [
        ("LANG=en_GB.UTF-8", "join its group"),
        ("LANG=fr_CM.UTF-8", "rejoignez son groupe"),
    ] {
        let refused = inside(
            &root,
            "paul",
            &["HOME=/home/paul", "LC_ALL=", locale],
            &["passerelle", "status"],
        );
        assert_eq!(refused.status.code(), Some(2));
        assert!(
            String::from_utf8_lossy(&refused.stderr).contains(why),
            "{}",
            String::from_utf8_lossy(&refused.stderr)
        );
    }
    let socket = ok(
        "chroot",
        &[
            r,
            "stat",
            "-c",
            "%a %U %G",
            "/var/lib/passerelle/control.sock",
        ],
    );
    assert_eq!(socket.trim(), "660 passerelle passerelle");

    // An upgrade (the same package again) keeps the identity and the running node's data.
    ok("chroot", &[r, "dpkg", "-i", "/tmp/passerelle.deb"]);
    let out = inside(
        &root,
        "amina",
        &["HOME=/home/amina"],
        &["passerelle", "status", "--json"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Stopped as systemd stops it (SIGTERM to its main process): cleanly.
    let pid = node_pid(&root).expect("the node's process");
    ok("kill", &["-TERM", &pid.to_string()]);
    let stopped = node.wait().expect("wait");
    assert!(stopped.success(), "the node stopped with {stopped}");

    // Purged: the package's files go, the node's data stays.
    ok("chroot", &[r, "dpkg", "--purge", "passerelle"]);
    assert!(!root.join("usr/bin/passerelle").exists());
    assert!(!root.join("etc/passerelle").exists());
    let key_after = std::fs::read(&identity).expect("the identity survives a purge");
    assert_eq!(key_before, key_after);

    eprintln!(
        "package: {:.1} MB; installed: {:.1} MB; from dpkg -i to a node answering its administrator: {:.2} s",
        package_bytes as f64 / 1e6,
        installed_kib as f64 * 1024.0 / 1e6,
        running_after.as_secs_f64()
    );
}

/// The process of `/usr/bin/passerelle start` whose root is `root`.
fn node_pid(root: &Path) -> Option<u32> {
    std::fs::read_dir("/proc").ok()?.find_map(|entry| {
        let entry = entry.ok()?;
        let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
        let command = std::fs::read(entry.path().join("cmdline")).ok()?;
        let ours = command.starts_with(b"/usr/bin/passerelle\0start")
            && std::fs::read_link(entry.path().join("root")).ok()? == root;
        ours.then_some(pid)
    })
}

/// SIGTERM to the node's whole process group (unshare, chroot, runuser, the node).
fn nix_kill(node: &Child) -> std::io::Result<()> {
    let status = Command::new("kill")
        .args(["-TERM", "--", &format!("-{}", node.id())])
        .status()?;
    if status.success() {
        Ok(())
    } else {
        Err(std::io::Error::other("kill failed"))
    }
}
