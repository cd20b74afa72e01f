//! Drives the real `passerelle` binary against a real node and store in temporary folders.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use passerelle_node::keys::KeyFiles;
use passerelle_tests::poll_until;
use serde_json::Value;

/// Upper bound for a node to come up or go down (catches hangs, not a performance target).
const TIMEOUT: Duration = Duration::from_secs(30);

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_passerelle")
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", self.stdout))
    }
}

/// The command, in English: these tests read what it says in English (the tests of the
/// French say `--lang fr` or set the locale themselves).
fn passerelle() -> Command {
    let mut command = Command::new(bin());
    command.env("LC_ALL", "en_GB.UTF-8");
    command
}

fn run(data_dir: &Path, args: &[&str]) -> Run {
    let Output {
        status,
        stdout,
        stderr,
    } = passerelle()
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .env_remove("PASSERELLE_HOME")
        .env_remove("RUST_LOG")
        .output()
        .expect("run passerelle");
    Run {
        code: status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    }
}

fn ok(data_dir: &Path, args: &[&str]) -> Run {
    let r = run(data_dir, args);
    assert_eq!(r.code, 0, "{args:?} failed:\n{}\n{}", r.stdout, r.stderr);
    r
}

/// The `case_state` of a referral on the node at `data_dir`, or `None` while its board
/// entry has not reached that node.
fn case_state(data_dir: &Path, id: &str) -> Option<String> {
    let r = run(data_dir, &["referral", "show", id, "--json"]);
    (r.code == 0).then(|| {
        r.json()["case_state"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    })
}

/// A founds a network `name` admitting by one approval, and starts; B joins with A's
/// invitation, starts and asks to be admitted; A approves once the request has reached it.
/// Returns both running nodes, the invitation and B's organisation id.
fn found_and_admit(a: &Path, b: &Path, name: &str) -> (NodeProcess, NodeProcess, String, String) {
    ok(
        a,
        &["network", "create", "--name", name, "--admission", "1"],
    );
    let node_a = NodeProcess::start(a);
    let invitation = ok(a, &["network", "invite"]).stdout.trim().to_owned();
    ok(b, &["network", "join", &invitation]);
    let node_b = NodeProcess::start(b);
    ok(b, &["member", "request"]);
    let b_id = ok(b, &["status", "--json"]).json()["org_id"]
        .as_str()
        .expect("org id")
        .to_owned();
    poll_until("B's request to reach A", TIMEOUT, || {
        ok(a, &["member", "list", "--json"]).json()["requests"]
            .as_array()
            .is_some_and(|r| r.iter().any(|r| r["org"] == b_id.as_str()))
    });
    ok(a, &["member", "approve", &b_id]);
    (node_a, node_b, invitation, b_id)
}

/// `run`, in French (a coordinator's spreadsheet, read as she reads it).
fn run_fr(data_dir: &Path, args: &[&str]) -> Run {
    run(data_dir, &[&["--lang", "fr"], args].concat())
}

/// `ok`, in French.
fn ok_fr(data_dir: &Path, args: &[&str]) -> Run {
    ok(data_dir, &[&["--lang", "fr"], args].concat())
}

/// A `passerelle start` process, killed when dropped.
struct NodeProcess {
    child: Child,
}

impl NodeProcess {
    fn start(data_dir: &Path) -> Self {
        Self::start_with(
            data_dir,
            &["--listen", "/ip4/127.0.0.1/tcp/0", "--no-mdns", "--no-upnp"],
        )
    }

    fn start_with(data_dir: &Path, args: &[&str]) -> Self {
        let child = Command::new(bin())
            .arg("--data-dir")
            .arg(data_dir)
            .arg("start")
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn passerelle start");
        let mut node = Self { child };
        poll_until("the node to answer", TIMEOUT, || {
            if let Ok(Some(status)) = node.child.try_wait() {
                panic!("node exited early with {status}");
            }
            run(data_dir, &["status", "--json"]).code == 0
        });
        node
    }

    fn terminate(mut self) -> i32 {
        let pid = self.child.id().to_string();
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill -TERM");
        let mut code = None;
        poll_until("the node to stop", TIMEOUT, || {
            code = self
                .child
                .try_wait()
                .expect("wait")
                .map(|status| status.code().unwrap_or(-1));
            code.is_some()
        });
        code.unwrap_or(-1)
    }

    fn kill(mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reap");
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn init(name: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("node");
    ok(
        &data,
        &["init", "--org-name", name, "--legal-status", "ngo"],
    );
    (dir, data)
}

/// Initialises a data folder and returns its organisation id too.
fn init_with_id(name: &str) -> (tempfile::TempDir, PathBuf, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("node");
    let created = ok(
        &data,
        &[
            "init",
            "--org-name",
            name,
            "--legal-status",
            "ngo",
            "--json",
        ],
    )
    .json();
    let id = created["org_id"].as_str().expect("org id").to_owned();
    (dir, data, id)
}

fn history_len(data: &Path) -> usize {
    ok(data, &["history", "--json"])
        .json()
        .as_array()
        .expect("history is a list")
        .len()
}

#[test]
fn init_creates_private_keys_and_never_overwrites() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("node");
    let first = ok(&data, &["init", "--org-name", "Centre Espoir", "--json"]).json();
    let org_id = first["org_id"].as_str().unwrap().to_owned();
    assert_eq!(org_id.len(), 52);
    assert_eq!(first["fingerprint"].as_str().unwrap().len(), 19);
    for key in ["organisation.ed25519", "encryption.x25519"] {
        let mode = std::fs::metadata(data.join("keys").join(key))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{key}");
    }
    let mode = std::fs::metadata(&data).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o700);
    assert!(data.join("config.toml").exists());

    let again = run(&data, &["init", "--org-name", "Autre"]);
    assert_eq!(again.code, 2);
    assert!(
        again.stderr.contains("already initialised"),
        "{}",
        again.stderr
    );
    let key_before = std::fs::read(data.join("keys/organisation.ed25519")).unwrap();
    assert_eq!(key_before.len(), 32);

    // The secret never reaches the output.
    let node = NodeProcess::start(&data);
    let status = ok(&data, &["status", "--json"]);
    assert_eq!(status.json()["org_id"], org_id);
    let secret_hex: String = key_before.iter().map(|b| format!("{b:02x}")).collect();
    assert!(!status.stdout.contains(&secret_hex));
    assert_eq!(node.terminate(), 0);
}

#[test]
fn directory_workflow_through_the_real_binary() {
    let (_dir, data) = init("Association Retour et Dignité");
    let node = NodeProcess::start(&data);

    ok(
        &data,
        &[
            "org",
            "set",
            "--acronym",
            "ARD",
            "--languages",
            "fr,en",
            "--contact-email",
            "accueil@ard.example.cm",
            "--website",
            "https://ard.example.cm",
        ],
    );
    let office_id = add_douala_office(&data);
    assert!(office_id.starts_with("off-"));

    let added = ok(
        &data,
        &[
            "service",
            "add",
            "--name",
            "Formation en couture",
            "--dimension",
            "economic",
            "--category",
            "vocational_training",
            "--cost",
            "free",
            "--capacity",
            "available",
            "--places",
            "12",
            "--language",
            "fr",
            "--region",
            "CM005",
            "--office",
            &office_id,
            "--document",
            "Carte d'identité",
            "--json",
        ],
    )
    .json();
    let service_id = added["id"].as_str().unwrap().to_owned();
    assert_eq!(added["durable"], true);
    ok(
        &data,
        &[
            "service",
            "add",
            "--name",
            "Écoute psychosociale",
            "--dimension",
            "psychosocial",
            "--category",
            "counselling",
            "--cost",
            "fee:1500",
            "--capacity",
            "waitlist",
            "--department",
            "CM002007",
        ],
    );

    let list = ok(&data, &["service", "list", "--json"]).json();
    assert_eq!(list.as_array().unwrap().len(), 2);

    let found = ok(
        &data,
        &["directory", "search", "--region", "CM005", "--json"],
    )
    .json();
    let found = found.as_array().unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0]["service_id"], service_id);
    assert_eq!(found[0]["org_name"], "Association Retour et Dignité");

    let text = ok(
        &data,
        &[
            "directory",
            "search",
            "ecoute",
            "--max-fee",
            "2000",
            "--json",
        ],
    )
    .json();
    assert_eq!(text.as_array().unwrap().len(), 1);
    let human = ok(&data, &["directory", "search", "--dimension", "economic"]);
    assert!(
        human.stdout.contains("Formation en couture"),
        "{}",
        human.stdout
    );

    let none = run(&data, &["directory", "search", "--region", "CM001"]);
    assert_eq!(none.code, 1, "nothing found is exit code 1");
    // Regions and departments by name too, in French or English, any case or accents.
    for region in ["Littoral", "littoral", "LITTORAL"] {
        let by_name = ok(
            &data,
            &["directory", "search", "--region", region, "--json"],
        )
        .json();
        assert_eq!(by_name.as_array().unwrap().len(), 1, "{region}");
    }
    assert_eq!(
        run(&data, &["directory", "search", "--region", "Extreme-Nord"]).code,
        1,
        "a region by its name without accents: found, nothing there"
    );
    assert_eq!(
        run(&data, &["directory", "search", "--region", "Far North"]).code,
        1
    );
    let bad = run(&data, &["directory", "search", "--region", "Lagos"]);
    assert_eq!(bad.code, 2);
    assert!(
        bad.stderr.contains("--region") && bad.stderr.contains("Lagos"),
        "{}",
        bad.stderr
    );
    assert!(bad.stderr.contains("CM005 Littoral"), "{}", bad.stderr);
    let bad = run(&data, &["directory", "search", "--department", "Nowhere"]);
    assert_eq!(bad.code, 2);
    assert!(bad.stderr.contains("CM005004 Wouri"), "{}", bad.stderr);

    ok(
        &data,
        &["service", "update", &service_id, "--capacity", "full"],
    );
    let shown = ok(&data, &["service", "show", &service_id, "--json"]).json();
    assert_eq!(shown["service"]["capacity"]["status"], "full");
    assert_eq!(shown["service"]["name"], "Formation en couture");
    assert!(shown["service"]["last_update"].as_i64().unwrap() > 1_700_000_000);

    let missing = run(&data, &["service", "show", "svc-nope"]);
    assert_eq!(missing.code, 1);

    let profile = ok(&data, &["org", "show", "--json"]).json();
    assert_eq!(profile["profile"]["acronym"], "ARD");
    assert_eq!(profile["profile"]["legal_status"], "ngo");
    assert_eq!(profile["offices"][&office_id]["town"], "Douala");

    let history = ok(&data, &["history", "--json"]).json();
    let history = history.as_array().unwrap();
    // init, encryption key, org set, office add, 2 × service add, service update.
    assert_eq!(history.len(), 7);
    assert!(
        history[0]["message"]
            .as_str()
            .unwrap()
            .contains("update service")
    );
    let status = ok(&data, &["status", "--json"]).json();
    assert_eq!(status["documents"][0]["changes"], 7);

    // Removing an office still used by a service is refused.
    let refused = run(&data, &["office", "remove", &office_id]);
    assert_eq!(refused.code, 2);
    assert!(
        refused.stderr.contains("still used by service"),
        "{}",
        refused.stderr
    );
    ok(&data, &["service", "remove", &service_id]);
    ok(&data, &["office", "remove", &office_id]);
    assert_eq!(run(&data, &["office", "list"]).code, 1);

    assert_eq!(node.terminate(), 0);
}

#[test]
fn bad_input_names_the_field_and_writes_nothing() {
    let (_dir, data) = init("Centre Espoir");
    let node = NodeProcess::start(&data);
    let before = history_len(&data);

    let base = [
        "service",
        "add",
        "--name",
        "Formation",
        "--dimension",
        "economic",
        "--cost",
        "free",
        "--capacity",
        "available",
    ];
    let with = |extra: &[&str]| {
        let mut args: Vec<&str> = base.to_vec();
        args.extend_from_slice(extra);
        run(&data, &args)
    };

    let r = run(
        &data,
        &["service", "add", "--name", "X", "--dimension", "cultural"],
    );
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("economic, social, psychosocial"),
        "{}",
        r.stderr
    );

    let r = with(&["--region", "CM099"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("service_area.regions[0]"), "{}", r.stderr);
    assert!(r.stderr.contains("CM005 Littoral"), "{}", r.stderr);

    let r = with(&["--department", "CM005999"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("CM005004 Wouri"), "{}", r.stderr);

    let r = run(
        &data,
        &[
            "service",
            "add",
            "--name",
            "X",
            "--dimension",
            "social",
            "--cost",
            "fee:-500",
        ],
    );
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("positive whole number of XAF"),
        "{}",
        r.stderr
    );

    let r = run(
        &data,
        &[
            "service",
            "add",
            "--name",
            "  ",
            "--dimension",
            "social",
            "--cost",
            "free",
            "--capacity",
            "full",
        ],
    );
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("name: must not be empty"), "{}", r.stderr);

    let r = with(&["--category", "astrology"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("vocational_training"), "{}", r.stderr);

    let r = run(&data, &["org", "set", "--patch", "{bad json"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("--patch: not valid JSON"), "{}", r.stderr);

    let r = run(&data, &["org", "set", "--patch", r#"{"colour": "red"}"#]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("colour"), "{}", r.stderr);

    let r = run(&data, &["org", "set", "--website", "ard.cm"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("website"), "{}", r.stderr);

    let r = run(
        &data,
        &[
            "office",
            "add",
            "--name",
            "A",
            "--region",
            "CM005",
            "--town",
            "Douala",
            "--latitude",
            "95",
            "--longitude",
            "9",
        ],
    );
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("latitude"), "{}", r.stderr);

    let r = run(
        &data,
        &["service", "add", "--from-file", "/nonexistent/service.json"],
    );
    assert_eq!(r.code, 2);

    assert_eq!(history_len(&data), before, "no refused input was written");
    assert_eq!(node.terminate(), 0);
}

#[test]
fn commands_without_a_running_node_say_so() {
    let (_dir, data) = init("Centre Espoir");
    let r = run(&data, &["--lang", "en", "status"]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.starts_with("error: no node is running"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("passerelle start"), "{}", r.stderr);
    // In French: asked for, or by the locale, or by default; `[node] lang` over the locale.
    let french = "erreur : aucun nœud ne tourne pour le dossier";
    assert!(
        run(&data, &["--lang", "fr", "status"])
            .stderr
            .starts_with(french)
    );
    let with_locale = |locale: &str| {
        let out = Command::new(bin())
            .arg("--data-dir")
            .arg(&data)
            .arg("status")
            .env_remove("LC_ALL")
            .env_remove("LC_MESSAGES")
            .env("LANG", locale)
            .output()
            .expect("run");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    assert!(with_locale("fr_CM.UTF-8").starts_with(french));
    assert!(with_locale("C.UTF-8").starts_with(french));
    assert!(with_locale("en_GB.UTF-8").starts_with("error: no node is running"));
    let config = data.join("config.toml");
    let text = std::fs::read_to_string(&config).expect("config");
    std::fs::write(&config, text.replace("# lang = \"fr\"", "lang = \"fr\"")).expect("config");
    assert!(with_locale("en_GB.UTF-8").starts_with(french));

    let empty = tempfile::tempdir().unwrap();
    let r = run(&empty.path().join("none"), &["start"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("passerelle init"), "{}", r.stderr);
}

/// The main errors, as a French-speaking officer and an English-speaking one read them:
/// the node's refusals (a field, not found), clap's (a value, a command), the help.
#[test]
fn errors_and_help_are_said_in_french_and_in_english() {
    let (_dir, data) = init("Centre Espoir");
    let node = NodeProcess::start(&data);
    let both = |args: &[&str], code: i32, french: &str, english: &str| {
        for (lang, expected, word) in [("fr", french, "erreur : "), ("en", english, "error: ")] {
            let mut with_lang = vec!["--lang", lang];
            with_lang.extend_from_slice(args);
            let r = run(&data, &with_lang);
            assert_eq!(r.code, code, "{args:?} in {lang}: {}", r.stderr);
            assert!(
                r.stderr.starts_with(word),
                "{args:?} in {lang}: {}",
                r.stderr
            );
            assert!(
                r.stderr.contains(expected),
                "{args:?} in {lang}: expected {expected:?} in {}",
                r.stderr
            );
        }
    };
    // Refused by the node: the field, the value, what is accepted.
    both(
        &[
            "office", "add", "--name", "Antenne", "--region", "CM099", "--town", "Douala",
        ],
        2,
        "region : code de région \"CM099\" inconnu ; codes valides : CM001",
        "region: unknown region code \"CM099\"; valid codes: CM001",
    );
    both(
        &[
            "service",
            "add",
            "--name",
            "  ",
            "--dimension",
            "social",
            "--cost",
            "free",
            "--capacity",
            "full",
        ],
        2,
        "name : ne doit pas être vide",
        "name: must not be empty",
    );
    both(
        &[
            "service",
            "add",
            "--name",
            "Couture",
            "--dimension",
            "social",
            "--cost",
            "free",
            "--capacity",
            "full",
            "--category",
            "vocational_training",
        ],
        2,
        "la catégorie \"vocational_training\" relève de la dimension economic, pas social",
        "category \"vocational_training\" belongs to the economic dimension, not social",
    );
    // Refused by the membership rules' own parser.
    both(
        &[
            "network",
            "create",
            "--name",
            "Réseau",
            "--admission",
            "3/x",
        ],
        2,
        "\"3/x\" n'est pas un quorum",
        "\"3/x\" is not a quorum",
    );
    // Not found: exit code 1, like an empty result.
    both(
        &["service", "remove", "svc-none"],
        1,
        "aucun service d'identifiant \"svc-none\"",
        "no service with id \"svc-none\"",
    );
    both(
        &["referral", "show", "ref-000000000000000000000000"],
        1,
        "aucune référence ref-000000000000000000000000 au tableau de ce nœud",
        "no referral ref-000000000000000000000000 on this node's board",
    );
    // Refused before anything is asked: a value, a command.
    both(
        &["service", "add", "--name", "Couture", "--cost", "cher"],
        2,
        "valeur « cher » refusée pour « --cost <COST> » : valeurs acceptées : free, cost-shared",
        "invalid value 'cher' for '--cost <COST>'",
    );
    both(
        &["service", "add", "--name", "Couture", "--places", "-3"],
        2,
        "n'est pas un nombre entier de 0 ou plus",
        "is not a whole number of 0 or more",
    );
    both(
        &["referral", "sned"],
        2,
        "sous-commande « sned » inconnue ; vouliez-vous dire « send » ?",
        "unrecognized subcommand 'sned'",
    );
    // The help: the commands, the flags, clap's own words.
    let help = ok(&data, &["--lang", "fr", "referral", "send", "--help"]).stdout;
    assert!(
        help.contains("Utilisation : passerelle referral send"),
        "{help}"
    );
    assert!(help.contains("Le nom complet de la personne"), "{help}");
    assert!(help.contains("Afficher l'aide"), "{help}");
    let help = ok(&data, &["--lang", "en", "referral", "send", "--help"]).stdout;
    assert!(help.contains("Usage: passerelle referral send"), "{help}");
    assert!(help.contains("The person's full name"), "{help}");
    // What the commands print, too.
    let status = ok(&data, &["--lang", "fr", "status"]).stdout;
    assert!(
        status.contains("empreinte") && status.contains("dossier de données"),
        "{status}"
    );
    let status = ok(&data, &["--lang", "en", "status"]).stdout;
    assert!(
        status.contains("fingerprint") && status.contains("data folder"),
        "{status}"
    );
    let retention = ok(&data, &["--lang", "fr", "retention"]).stdout;
    assert!(
        retention.contains("les dossiers sont gardés 90 jours"),
        "{retention}"
    );
    // The manual page in French too.
    let page = ok(&data, &["--lang", "fr", "man"]).stdout;
    assert!(page.contains("Afficher les pairs connect"), "{page}");
    assert_eq!(node.terminate(), 0);
}

/// The backup key: made once (its secret 0600, never overwritten), its public half for the
/// config; a backup without it is refused naming what to do; with it, written and restored.
#[test]
fn a_backup_key_is_made_once_and_backups_are_sealed_to_it() {
    let (dir, data) = init("Centre Espoir");
    let secret = dir.path().join("backup-secret.txt");
    let made = ok(
        &data,
        &[
            "backup",
            "key",
            "--secret-out",
            secret.to_str().unwrap(),
            "--json",
        ],
    )
    .json();
    let public = made["public_key"].as_str().expect("public key").to_owned();
    let mode = std::fs::metadata(&secret).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let again = run(
        &data,
        &["backup", "key", "--secret-out", secret.to_str().unwrap()],
    );
    assert_eq!(again.code, 2);
    assert!(
        again.stderr.contains("never overwritten"),
        "{}",
        again.stderr
    );

    let node = NodeProcess::start(&data);
    let refused = run(&data, &["backup", "write"]);
    assert_eq!(refused.code, 2);
    assert!(
        refused.stderr.contains("passerelle backup key"),
        "{}",
        refused.stderr
    );
    assert_eq!(node.terminate(), 0);

    let backups = dir.path().join("backups");
    let config = data.join("config.toml");
    let mut text = std::fs::read_to_string(&config).expect("config");
    text = text.replace(
        "# dir = \"/var/backups/passerelle\"",
        &format!("dir = \"{}\"", backups.display()),
    );
    text = text.replace(
        "# public_key = \"…\"",
        &format!("public_key = \"{public}\""),
    );
    std::fs::write(&config, text).expect("config");
    let node = NodeProcess::start(&data);
    let written = ok(&data, &["backup", "write", "--json"]).json();
    let file = written["file"].as_str().expect("file").to_owned();
    assert!(file.starts_with(backups.to_str().unwrap()), "{file}");
    assert_eq!(written["case_files"], 0);
    let restored = ok(
        &data,
        &[
            "backup",
            "restore",
            &file,
            "--secret-file",
            secret.to_str().unwrap(),
            "--json",
        ],
    )
    .json();
    assert_eq!(restored["restored"].as_array().map(Vec::len), Some(0));
    let wrong = dir.path().join("wrong.txt");
    std::fs::write(&wrong, "passerelle-backup-secret-nope").expect("wrong");
    let refused = run(
        &data,
        &[
            "backup",
            "restore",
            &file,
            "--secret-file",
            wrong.to_str().unwrap(),
        ],
    );
    assert_eq!(refused.code, 2);
    assert!(
        refused.stderr.contains("not a backup secret"),
        "{}",
        refused.stderr
    );
    assert_eq!(node.terminate(), 0);
}

/// Keys protected by a passphrase: sealed on disk, a start without it refused naming what
/// to do, a wrong one refused, the right one (the service's credential) runs the node.
#[test]
fn keys_protected_by_a_passphrase_open_only_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let credentials = dir.path().join("credentials");
    std::fs::create_dir_all(&credentials).unwrap();
    std::fs::write(
        credentials.join("passphrase"),
        "la clé du bureau de Douala\n",
    )
    .unwrap();
    let with_credential = |args: &[&str]| {
        let out = passerelle()
            .arg("--data-dir")
            .arg(&data)
            .args(args)
            .env("CREDENTIALS_DIRECTORY", &credentials)
            .stdin(Stdio::null())
            .output()
            .expect("run");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, stderr) = with_credential(&["init", "--org-name", "Centre Espoir", "--passphrase"]);
    assert_eq!(code, 0, "{stderr}");
    for key in ["organisation.ed25519", "encryption.x25519"] {
        let bytes = std::fs::read(data.join("keys").join(key)).unwrap();
        assert!(bytes.starts_with(b"PASSERELLE-SEALED-KEY-1\n"), "{key}");
    }
    // Without it (no credential, no terminal): refused, saying how to give it.
    let out = passerelle()
        .arg("--data-dir")
        .arg(&data)
        .args(["start", "--no-network", "--no-web"])
        .env_remove("CREDENTIALS_DIRECTORY")
        .stdin(Stdio::null())
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("protected by a passphrase"), "{stderr}");
    // A wrong one.
    std::fs::write(
        credentials.join("passphrase"),
        "une autre phrase bien longue",
    )
    .unwrap();
    let (code, stderr) = with_credential(&["start", "--no-network", "--no-web"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("passphrase does not open"), "{stderr}");
    // The right one: the node runs and answers.
    std::fs::write(
        credentials.join("passphrase"),
        "la clé du bureau de Douala\n",
    )
    .unwrap();
    let mut child = passerelle()
        .arg("--data-dir")
        .arg(&data)
        .args(["start", "--no-network", "--no-web"])
        .env("CREDENTIALS_DIRECTORY", &credentials)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start");
    let mut status = None;
    for _ in 0..100 {
        let r = run(&data, &["status", "--json"]);
        if r.code == 0 {
            status = Some(r.json());
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
    let status = status.expect("the node never answered");
    assert!(status["org_id"].as_str().is_some(), "{status}");
}

#[test]
fn a_killed_node_loses_nothing_it_acknowledged() {
    let (_dir, data) = init("Centre Espoir");
    let node = NodeProcess::start(&data);
    let mut ids = Vec::new();
    for i in 0..5 {
        let name = format!("Service {i}");
        let added = ok(
            &data,
            &[
                "service",
                "add",
                "--name",
                &name,
                "--dimension",
                "social",
                "--category",
                "housing",
                "--cost",
                "free",
                "--capacity",
                "available",
                "--json",
            ],
        )
        .json();
        ids.push(added["id"].as_str().unwrap().to_owned());
    }
    // SIGKILL: no shutdown, no snapshot; the acknowledged changes must be on disk.
    node.kill();

    let node = NodeProcess::start(&data);
    let list = ok(&data, &["service", "list", "--json"]).json();
    let listed: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["service_id"].as_str().unwrap())
        .collect();
    for id in &ids {
        assert!(listed.contains(&id.as_str()), "{id} lost after kill");
    }
    // Genesis, the published encryption key, and the five services.
    assert_eq!(history_len(&data), 7);

    // A second node on the same folder is refused while the first runs.
    let second = run(
        &data,
        &[
            "start",
            "--no-mdns",
            "--no-upnp",
            "--listen",
            "/ip4/127.0.0.1/tcp/0",
        ],
    );
    assert_eq!(second.code, 2);
    assert!(
        second.stderr.contains("already running"),
        "{}",
        second.stderr
    );
    assert_eq!(node.terminate(), 0);
}

#[test]
fn tampered_store_is_reported_not_reset() {
    let (_dir, data) = init("Centre Espoir");
    let node = NodeProcess::start(&data);
    ok(
        &data,
        &[
            "service",
            "add",
            "--name",
            "Logement",
            "--dimension",
            "social",
            "--cost",
            "free",
            "--capacity",
            "available",
        ],
    );
    assert_eq!(node.terminate(), 0);

    // Damage the database file.
    let db = data.join("store").join("db");
    let len = std::fs::metadata(&db).unwrap().len() as usize;
    std::fs::write(&db, vec![0x5Au8; len]).unwrap();
    let r = run(&data, &["start"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("store"), "{}", r.stderr);
    // The damaged file is left for the operator to inspect, not replaced.
    assert_eq!(std::fs::read(&db).unwrap().len(), len);
}

#[test]
fn two_nodes_started_from_the_command_line_share_their_directories() {
    let (_a_dir, a) = init("Délégation régionale Littoral");
    let (_b_dir, b) = init("ONG Avenir");
    // A creates a network it alone founds (admission by one member), and invites B.
    ok(
        &a,
        &[
            "network",
            "create",
            "--name",
            "Réseau Littoral",
            "--admission",
            "1",
        ],
    );
    let node_a = NodeProcess::start(&a);
    // What the membership rules refuse is said in the officer's language.
    let twice = run_fr(&a, &["network", "ratify"]);
    assert_eq!(twice.code, 2, "{}", twice.stderr);
    assert!(
        twice.stderr.starts_with("erreur : ") && twice.stderr.contains("déjà ratifiée"),
        "{}",
        twice.stderr
    );
    let invitation = ok(&a, &["network", "invite"]).stdout.trim().to_owned();
    assert!(invitation.starts_with("passerelle-invite:"), "{invitation}");
    ok(&b, &["network", "join", &invitation]);
    let node_b = NodeProcess::start_with(
        &b,
        &["--listen", "/ip4/127.0.0.1/tcp/0", "--no-mdns", "--no-upnp"],
    );
    // B asks to join; its request reaches A; A approves.
    ok(&b, &["member", "request", "--message", "ONG de Douala"]);
    let b_id = ok(&b, &["status", "--json"]).json()["org_id"]
        .as_str()
        .expect("org id")
        .to_owned();
    poll_until("B's request to reach A", TIMEOUT, || {
        let list = ok(&a, &["member", "list", "--json"]).json();
        let requests = list["requests"].as_array().cloned().unwrap_or_default();
        requests.iter().any(|r| r["org"] == b_id.as_str())
    });
    let human = ok(&a, &["member", "list"]);
    assert!(human.stdout.contains("ONG Avenir"), "{}", human.stdout);
    ok(&a, &["member", "approve", &b_id]);
    poll_until("B to learn it was admitted", TIMEOUT, || {
        ok(&b, &["status", "--json"]).json()["membership"]["role"] == "member"
    });
    // Approving again is refused with the reason.
    let again = run(&a, &["member", "approve", &b_id]);
    assert_eq!(again.code, 1, "{}", again.stderr);
    ok(
        &a,
        &[
            "service",
            "add",
            "--name",
            "Formation agricole",
            "--dimension",
            "economic",
            "--cost",
            "free",
            "--capacity",
            "available",
            "--region",
            "CM005",
            "--category",
            "vocational_training",
        ],
    );
    poll_until("the service to reach node B", TIMEOUT, || {
        run(&b, &["directory", "search", "agricole", "--json"]).code == 0
    });
    let found = ok(&b, &["directory", "search", "agricole", "--json"]);
    assert_eq!(found.json()[0]["org_name"], "Délégation régionale Littoral");
    let peers = ok(&b, &["peers", "--json"]).json();
    assert_eq!(peers["peers"].as_array().unwrap().len(), 1);
    let human = ok(&b, &["peers"]);
    assert!(human.stdout.contains("listening on"), "{}", human.stdout);
    // Two nodes on loopback: a direct connection; no peer on the internet was asked.
    assert!(human.stdout.contains("direct"), "{}", human.stdout);
    assert!(
        human.stdout.contains("reachability") && human.stdout.contains("unknown"),
        "{}",
        human.stdout
    );
    assert_eq!(peers["peers"][0]["relayed"], false);
    assert_eq!(peers["reachability"], "unknown");

    drafts_workflow(&a, &b);
    referral_workflow(&a, &b);

    assert_eq!(node_b.terminate(), 0);
    assert_eq!(node_a.terminate(), 0);
}

#[test]
fn a_malformed_peer_address_is_named() {
    let (_dir, data) = init("Centre Espoir");
    let r = run(&data, &["start", "--peer", "192.168.1.10:4690"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("--peer"), "{}", r.stderr);
    std::fs::write(
        data.join("config.toml"),
        "[network]\npeers = [\"not-an-address\"]\n",
    )
    .unwrap();
    let r = run(&data, &["start"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("network.peers"), "{}", r.stderr);
}

/// Two network namespaces joined by a veth pair: a local network of two hosts that exists
/// only on this machine. Removed when dropped.
struct LocalNetwork {
    namespaces: [String; 2],
}

impl LocalNetwork {
    fn ip(args: &[&str]) -> bool {
        Command::new("ip")
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    fn create() -> Self {
        let tag = std::process::id();
        let namespaces = [format!("psl{tag}a"), format!("psl{tag}b")];
        let network = Self { namespaces };
        let [a, b] = &network.namespaces;
        let (va, vb) = (format!("pv{tag}a"), format!("pv{tag}b"));
        let steps: Vec<Vec<&str>> = vec![
            vec!["netns", "add", a],
            vec!["netns", "add", b],
            vec!["link", "add", &va, "type", "veth", "peer", "name", &vb],
            vec!["link", "set", &va, "netns", a],
            vec!["link", "set", &vb, "netns", b],
            vec!["-n", a, "addr", "add", "10.231.0.1/24", "dev", &va],
            vec!["-n", b, "addr", "add", "10.231.0.2/24", "dev", &vb],
            vec!["-n", a, "link", "set", &va, "up"],
            vec!["-n", b, "link", "set", &vb, "up"],
            vec!["-n", a, "link", "set", "lo", "up"],
            vec!["-n", b, "link", "set", "lo", "up"],
        ];
        for step in steps {
            assert!(
                Self::ip(&step),
                "ip {step:?} failed (needs root and iproute2)"
            );
        }
        network
    }
}

impl Drop for LocalNetwork {
    fn drop(&mut self) {
        for ns in &self.namespaces {
            Self::ip(&["netns", "del", ns]);
        }
    }
}

#[test]
#[cfg_attr(not(passerelle_root), ignore = "needs root: network namespaces")]
fn nodes_on_one_local_network_find_each_other_by_mdns() {
    let network = LocalNetwork::create();
    let (_a_dir, a) = init("Délégation départementale du Wouri");
    let (_b_dir, b, b_id) = init_with_id("ONG Avenir");
    let spawn = |ns: &str, data: &Path, ip: &str| -> Child {
        Command::new("ip")
            .args(["netns", "exec", ns, bin()])
            .arg("--data-dir")
            .arg(data)
            .args(["start", "--listen", &format!("/ip4/{ip}/tcp/4690")])
            .env("RUST_LOG", "info,libp2p_mdns=debug")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(data.with_extension("log")).expect("log file"))
            .spawn()
            .expect("spawn in namespace")
    };
    // Both found a network; B learns only its id (no address).
    let created = ok(
        &a,
        &[
            "network",
            "create",
            "--name",
            "Réseau local",
            "--founder",
            &b_id,
            "--json",
        ],
    )
    .json();
    let network_id = created["network_id"]
        .as_str()
        .expect("network id")
        .to_owned();
    ok(&b, &["network", "join", &network_id]);
    // No --peer: they can only find each other by mDNS.
    let mut node_a = NodeProcess {
        child: spawn(&network.namespaces[0], &a, "10.231.0.1"),
    };
    let mut node_b = NodeProcess {
        child: spawn(&network.namespaces[1], &b, "10.231.0.2"),
    };
    let found = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        poll_until("the nodes to find each other", TIMEOUT, || {
            for node in [&mut node_a, &mut node_b] {
                if let Ok(Some(status)) = node.child.try_wait() {
                    panic!("a node exited early with {status}");
                }
            }
            run(&a, &["peers", "--json"]).code == 0
        })
    }));
    if found.is_err() {
        let log =
            |data: &Path| std::fs::read_to_string(data.with_extension("log")).unwrap_or_default();
        panic!(
            "the nodes never found each other\n--- node A\n{}\n--- node B\n{}",
            log(&a),
            log(&b)
        );
    }
    // B signs the charter once the network document has reached it.
    poll_until("B to ratify", TIMEOUT, || {
        run(&b, &["network", "ratify"]).code == 0
    });
    ok(
        &a,
        &[
            "service",
            "add",
            "--name",
            "Conseil juridique",
            "--dimension",
            "social",
            "--category",
            "legal",
            "--cost",
            "free",
            "--capacity",
            "available",
        ],
    );
    poll_until("the service to cross the local network", TIMEOUT, || {
        run(&b, &["directory", "search", "juridique"]).code == 0
    });
    assert_eq!(node_a.terminate(), 0);
    assert_eq!(node_b.terminate(), 0);
    drop(network);
}

#[test]
fn membership_arguments_name_the_field_and_the_accepted_values() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("node");
    let r = run(&data, &["init", "--device-of", "not-an-id"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("--device-of"), "{}", r.stderr);
    let r = run(&data, &["init"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("--org-name"), "{}", r.stderr);

    let (_dir, data) = init("Centre Espoir");
    let r = run(
        &data,
        &["network", "create", "--name", "R", "--admission", "0"],
    );
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("--admission") && r.stderr.contains("2/3"),
        "{}",
        r.stderr
    );
    let r = run(&data, &["network", "join", "hello"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("invitation"), "{}", r.stderr);
    // A founder list naming an unknown quorum is refused and nothing is written: the node
    // can still create a valid network afterwards, once.
    let r = run(
        &data,
        &["network", "create", "--name", "R", "--admission", "3"],
    );
    assert_eq!(r.code, 2, "{}", r.stdout);
    assert!(r.stderr.contains("admission"), "{}", r.stderr);
    ok(
        &data,
        &["network", "create", "--name", "R", "--admission", "1"],
    );
    let r = run(
        &data,
        &["network", "create", "--name", "R2", "--admission", "1"],
    );
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("one network"), "{}", r.stderr);
    // A device node of an organisation initialises with its own key.
    let (_org_dir, _org_data, org_id) = init_with_id("Siège");
    let device_dir = tempfile::tempdir().unwrap();
    let device = device_dir.path().join("device");
    let created = ok(&device, &["init", "--device-of", &org_id, "--json"]).json();
    assert_eq!(created["device_of"], org_id.as_str());
    let key = created["device_key"].as_str().unwrap();
    assert_eq!(key.len(), 52);
    assert_ne!(key, org_id);
}

#[test]
fn the_demo_runs_to_the_end() {
    let dir = tempfile::tempdir().unwrap();
    let r = run(&dir.path().join("unused"), &["demo"]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    for expected in [
        "found network",
        "converge",
        "proposed the admission",
        "Admitted: all four nodes",
        "4 nodes stopped",
    ] {
        assert!(
            r.stdout.contains(expected),
            "{expected:?} missing:\n{}",
            r.stdout
        );
    }
}

/// Polls a command until its JSON output satisfies `done`.
fn wait_json(data: &Path, args: &[&str], what: &str, done: impl Fn(&serde_json::Value) -> bool) {
    poll_until(what, TIMEOUT, || {
        let found = run(data, args);
        found.code == 0 && done(&found.json())
    });
}

/// B refers a returnee to A's service through the real binary; A answers and completes.
/// A (the coordinator) publishes a historical mapping as drafts; B, a member that has not
/// described itself yet, claims its own; the claimed draft disappears on both nodes.
fn drafts_workflow(a: &Path, b: &Path) {
    let mapping = a.parent().expect("parent").join("historique.csv");
    std::fs::write(
        &mapping,
        "organisation,sigle,type,service,dimension,categorie,region,ville,cout,capacite,langues\n\
         ONG Avenir,ONGA,ong,Écoute et soutien psychologique,psychosociale,counselling,CM010,Buea,gratuit,disponible,fr en\n\
         ONG Avenir,ONGA,ong,Groupes de parole,psychosociale,counselling,CM010,Limbe,gratuit,liste d'attente,fr\n\
         Centre Espoir Bamenda,CEB,ong,Accompagnement psychosocial,psychosociale,counselling,CM004,Bamenda,gratuit,disponible,en\n",
    )
    .expect("write mapping");
    let file = mapping.to_str().expect("path");
    let planned = ok(
        a,
        &["import", "csv", file, "--drafts", "--dry-run", "--json"],
    )
    .json();
    assert_eq!(
        planned["drafts"].as_array().map(Vec::len),
        Some(2),
        "{planned}"
    );
    assert_eq!(planned["written"], false);
    ok(a, &["import", "csv", file, "--drafts"]);
    let again = ok(a, &["import", "csv", file, "--drafts", "--json"]).json();
    assert_eq!(again["drafts"].as_array().map(Vec::len), Some(0), "{again}");
    assert_eq!(again["drafts_unchanged"], 2, "{again}");

    wait_json(
        b,
        &["directory", "drafts", "--json"],
        "the drafts to reach B",
        |v| v.as_array().is_some_and(|d| d.len() == 2),
    );
    let drafts = ok(b, &["directory", "drafts", "--json"]).json();
    let id_of = |name: &str| {
        drafts
            .as_array()
            .and_then(|d| d.iter().find(|d| d["record"]["profile"]["name"] == name))
            .and_then(|d| d["id"].as_str())
            .expect("draft id")
            .to_owned()
    };
    let hits = ok(b, &["directory", "search", "--drafts", "--json"]).json();
    assert_eq!(hits.as_array().map(Vec::len), Some(3), "{hits}");
    assert_eq!(hits[0]["draft_by"], "Délégation régionale Littoral");
    // Drafts are kept apart from the members' own entries.
    assert_eq!(
        run(b, &["directory", "search", "Groupes de parole"]).code,
        1
    );
    let human = ok(b, &["directory", "search", "--drafts"]);
    assert!(human.stdout.contains("unverified"), "{}", human.stdout);

    let refused = run(b, &["directory", "claim", &id_of("Centre Espoir Bamenda")]);
    assert_eq!(refused.code, 2);
    assert!(refused.stderr.contains("--anyway"), "{}", refused.stderr);
    ok(b, &["directory", "claim", &id_of("ONG Avenir")]);
    let services = ok(b, &["service", "list", "--json"]).json();
    assert_eq!(services.as_array().map(Vec::len), Some(2), "{services}");
    assert_eq!(
        ok(b, &["directory", "drafts", "--json"])
            .json()
            .as_array()
            .map(Vec::len),
        Some(1)
    );
    wait_json(
        a,
        &["directory", "drafts", "--json"],
        "the claim to reach A",
        |v| v.as_array().is_some_and(|d| d.len() == 1),
    );
    wait_json(
        a,
        &["directory", "search", "Groupes de parole", "--json"],
        "B's claimed service to reach A",
        |v| v[0]["org_name"] == "ONG Avenir",
    );
}

fn referral_workflow(a: &Path, b: &Path) {
    let matches = ok(
        b,
        &[
            "referral",
            "match",
            "--need",
            "vocational_training",
            "--region",
            "CM005",
            "--json",
        ],
    )
    .json();
    let service = matches[0]["service_id"]
        .as_str()
        .expect("a match")
        .to_owned();
    let case_file = b.parent().expect("parent").join("case.toml");
    std::fs::write(
        &case_file,
        "name = \"Boris Tchoumi\"\nphone = \"+237 655 44 33 22\"\nneeds = [\"vocational_training\"]\nnotes = \"Interested in agriculture.\"\n",
    )
    .expect("write case file");
    let case_path = case_file.to_str().expect("utf-8 path");

    let send = |extra: &[&str]| {
        let mut args = vec![
            "referral",
            "send",
            "--to",
            "Délégation",
            "--service",
            &service,
            "--region",
            "CM005",
            "--case-file",
            case_path,
        ];
        args.extend_from_slice(extra);
        run(b, &args)
    };
    // Without consent, or with a bad flag, nothing is sent and the field is named.
    for (extra, expected) in [
        (&[][..], "consent"),
        (
            &["--consent", "nodded"][..],
            "verbal, written, digital, guardian",
        ),
        (
            &["--consent", "verbal", "--consent-data", "name,shoe_size"][..],
            "consent_data",
        ),
        (
            &["--consent", "verbal", "--priority", "soon"][..],
            "routine, urgent",
        ),
    ] {
        let refused = send(extra);
        assert_eq!(refused.code, 2, "{extra:?}");
        assert!(
            refused.stderr.contains(expected),
            "{extra:?}: {}",
            refused.stderr
        );
    }
    let sent = send(&[
        "--priority",
        "urgent",
        "--respond-within",
        "3d",
        "--consent",
        "written",
        "--consent-data",
        "name,phone,needs",
        "--json",
    ]);
    assert_eq!(sent.code, 0, "{}", sent.stderr);
    let sent = sent.json();
    let id = sent["id"].as_str().expect("referral id").to_owned();

    // A sees it incoming, with the case file, minimised to what was consented to.
    wait_json(
        a,
        &["referral", "show", &id, "--json"],
        "the case file to reach A",
        |v| v["case_state"] == "held",
    );
    let shown = ok(a, &["referral", "show", &id]);
    assert!(shown.stdout.contains("Boris Tchoumi"), "{}", shown.stdout);
    assert!(
        shown.stdout.contains("matches the board's commitment"),
        "{}",
        shown.stdout
    );
    assert!(
        !shown.stdout.contains("agriculture"),
        "notes were not consented to: {}",
        shown.stdout
    );
    let incoming = ok(a, &["referral", "list", "--incoming", "--json"]).json();
    assert_eq!(incoming["entries"].as_array().map(Vec::len), Some(1));

    // Moves with missing or wrong values name them; the right ones go through.
    let missing = run(a, &["referral", "decline", &id]);
    assert_eq!(missing.code, 2);
    assert!(missing.stderr.contains("--reason"), "{}", missing.stderr);
    let wrong = run(a, &["referral", "decline", &id, "--reason", "tired"]);
    assert_eq!(wrong.code, 2);
    assert!(wrong.stderr.contains("no_capacity"), "{}", wrong.stderr);
    let illegal = run(a, &["referral", "complete", &id, "--outcome", "achieved"]);
    assert_eq!(illegal.code, 2);
    assert!(
        illegal.stderr.contains("pending cannot become completed"),
        "{}",
        illegal.stderr
    );
    ok(a, &["referral", "accept", &id]);
    ok(a, &["referral", "start", &id]);
    ok(a, &["referral", "complete", &id, "--outcome", "achieved"]);
    wait_json(
        b,
        &["referral", "show", &id, "--json"],
        "B to see it completed",
        |v| v["entry"]["status"] == "completed",
    );
    let list = ok(b, &["referral", "list", "--outgoing"]);
    assert!(list.stdout.contains("completed"), "{}", list.stdout);
    let report = ok(b, &["report", "--json"]).json();
    // One referral: too few to show (docs/security.md, small-cell suppression).
    assert_eq!(report["total"], "<5");
    assert_eq!(report["min_count"], 5);
    assert!(
        report["by_status"]
            .as_object()
            .is_some_and(|m| m.is_empty())
    );
    let human = ok(b, &["report"]);
    assert!(
        human.stdout.contains("counts below 5 are written <5"),
        "{}",
        human.stdout
    );
    let today = passerelle_node::unix_now() / 86_400 * 86_400;
    let day = |seconds: i64| {
        humantime::format_rfc3339(
            std::time::UNIX_EPOCH + std::time::Duration::from_secs(seconds as u64),
        )
        .to_string()[..10]
            .to_owned()
    };
    let csv = ok(
        b,
        &[
            "report",
            "--csv",
            "--from",
            &day(today),
            "--to",
            &day(today),
        ],
    )
    .stdout;
    assert!(csv.starts_with("table,key,count\ntotal,,<5\n"), "{csv}");
    let before = ok(b, &["report", "--json", "--to", &day(today - 86_400)]).json();
    assert_eq!(before["total"], 0, "nothing was sent before today");

    // A's read is in its audit log; erasing on B reaches A.
    let audit = ok(a, &["referral", "audit", &id, "--json"]).json();
    assert!(
        audit
            .as_array()
            .expect("log")
            .iter()
            .any(|e| e["action"] == "read")
    );
    ok(b, &["referral", "erase", &id]);
    wait_json(
        a,
        &["referral", "show", &id, "--json"],
        "A to erase its copy",
        |v| v["case_state"] == "erased",
    );
    audit_chain(a, &id);
}

/// A's audit log after the referral: a chain that holds, exported for an inspector with
/// the read and the erasure (erasing a case file never erases its audit entries), and
/// every tampering found at its line.
fn audit_chain(a: &Path, id: &str) {
    let holds = ok(a, &["audit", "verify"]);
    assert!(
        holds.stdout.contains("the audit log holds"),
        "{}",
        holds.stdout
    );
    let today = passerelle_node::unix_now() / 86_400 * 86_400;
    let day = humantime::format_rfc3339(
        std::time::UNIX_EPOCH + std::time::Duration::from_secs(today as u64),
    )
    .to_string()[..10]
        .to_owned();
    let export = ok(a, &["audit", "export", "--from", &day, "--to", &day]).json();
    let entries = export["entries"].as_array().expect("entries");
    let actions: Vec<&str> = entries
        .iter()
        .filter(|e| e["referral"] == id)
        .filter_map(|e| e["action"].as_str())
        .collect();
    assert!(
        actions.contains(&"read") && actions.contains(&"erased"),
        "{actions:?}"
    );
    assert!(export["sealed_by"].as_str().is_some_and(|k| !k.is_empty()));
    let csv = ok(a, &["audit", "export", "--format", "csv"]).stdout;
    assert!(
        csv.starts_with("seq,at,time_utc,referral,action,by,detail,prev,hash"),
        "{csv}"
    );
    assert!(
        !csv.contains("Boris"),
        "no case-file content in the audit log"
    );
    // Nothing before the first day, nothing after the last.
    let none = run(a, &["audit", "export", "--to", "2020-01-01"]);
    assert_eq!(none.code, 1, "{}", none.stderr);

    // An officer's read made someone else's: found at its line, exit code 2.
    let file = a.join("audit").join("000001.jsonl");
    let text = std::fs::read_to_string(&file).expect("audit file");
    let (number, line) = text
        .lines()
        .enumerate()
        .find(|(_, l)| l.contains("\"action\":\"read\""))
        .expect("a read");
    let by: serde_json::Value = serde_json::from_str(line).expect("entry");
    let by = by["by"].as_str().expect("by").to_owned();
    std::fs::write(
        &file,
        text.replacen(line, &line.replace(&by, "someone-else"), 1),
    )
    .expect("edit");
    let broken = run(a, &["audit", "verify"]);
    assert_eq!(broken.code, 2, "{}", broken.stdout);
    assert!(
        broken
            .stderr
            .contains(&format!("000001.jsonl:{}", number + 1))
            && broken.stderr.contains("changed after it was written"),
        "{}",
        broken.stderr
    );
    // A line deleted.
    let without: Vec<&str> = text.lines().filter(|l| *l != line).collect();
    std::fs::write(&file, without.join("\n") + "\n").expect("delete");
    let broken = run(a, &["audit", "verify"]);
    assert_eq!(broken.code, 2);
    assert!(broken.stderr.contains("missing"), "{}", broken.stderr);
    std::fs::write(&file, &text).expect("restore");
    ok(a, &["audit", "verify"]);
}

#[test]
fn the_mapping_exports_as_a_3w_table_geojson_and_a_report_by_domain() {
    let (dir, data) = init("Association Retour et Dignité");
    let _node = NodeProcess::start(&data);
    let office = add_douala_office(&data);
    ok(
        &data,
        &[
            "service",
            "add",
            "--name",
            "Formation en couture",
            "--dimension",
            "economic",
            "--category",
            "vocational_training",
            "--cost",
            "free",
            "--capacity",
            "available",
            "--region",
            "CM005",
            "--office",
            &office,
        ],
    );
    let table = dir.path().join("3w.csv");
    ok(
        &data,
        &[
            "export",
            "csv",
            "--hxl",
            "--lang",
            "en",
            "--output",
            table.to_str().expect("path"),
        ],
    );
    let text = std::fs::read_to_string(&table).expect("3w table");
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[1].starts_with("#org+name,"), "{text}");
    assert!(
        lines[2].contains("Vocational training") && lines[2].contains("CM005,Littoral"),
        "{text}"
    );

    let geojson = ok(&data, &["export", "geojson"]).json();
    assert_eq!(geojson["type"], "FeatureCollection");
    assert_eq!(geojson["features"][0]["geometry"]["coordinates"][1], 4.05);

    let report = ok(&data, &["report", "actors", "--json"]).json();
    assert_eq!(report["services"], 1);
    assert_eq!(report["gaps"].as_array().map(Vec::len), Some(10 * 22 - 1));
    let human = ok(&data, &["report", "actors", "--lang", "en"]);
    assert!(
        human.stdout.contains("categories with no provider"),
        "{}",
        human.stdout
    );
    let csv = ok(&data, &["report", "actors", "--csv"]);
    assert!(
        csv.stdout.starts_with("section,key,organisations,services"),
        "{}",
        csv.stdout
    );

    let hsds_dir = dir.path().join("hsds");
    ok(&data, &["export", "hsds", hsds_dir.to_str().expect("path")]);
    let hsds: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(hsds_dir.join("organizations.json")).expect("hsds file"),
    )
    .expect("hsds json");
    assert_eq!(hsds[0]["name"], "Association Retour et Dignité");
    assert_eq!(hsds[0]["services"][0]["name"], "Formation en couture");
    assert_eq!(
        hsds[0]["services"][0]["service_at_locations"][0]["location_id"],
        hsds[0]["locations"][0]["id"]
    );
    let services_csv =
        std::fs::read_to_string(hsds_dir.join("services.csv")).expect("services.csv");
    assert!(
        services_csv.contains("Formation en couture"),
        "{services_csv}"
    );
    let package: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(hsds_dir.join("datapackage.json")).expect("datapackage"),
    )
    .expect("datapackage json");
    assert_eq!(package["profile"], "tabular-data-package");

    // Every export says what it did in JSON with --json.
    let written = ok(
        &data,
        &["export", "hsds", hsds_dir.to_str().expect("path"), "--json"],
    )
    .json();
    assert_eq!(written["organisations"], 1);
    assert!(
        written["files"]
            .as_array()
            .expect("files")
            .iter()
            .any(|f| f == "organizations.csv"),
        "{written}"
    );
    let rows = ok(&data, &["export", "csv", "--json"]).json();
    assert_eq!(rows[0]["service"], "Formation en couture", "{rows}");
    assert_eq!(rows[0]["region_code"], "CM005", "{rows}");
    let table = dir.path().join("3w.csv");
    let written = ok(
        &data,
        &[
            "export",
            "csv",
            "--hxl",
            "--output",
            table.to_str().expect("path"),
            "--json",
        ],
    )
    .json();
    assert_eq!(written["rows"], rows.as_array().expect("rows").len());
    let map = dir.path().join("map.geojson");
    let written = ok(
        &data,
        &[
            "export",
            "geojson",
            "--output",
            map.to_str().expect("path"),
            "--json",
        ],
    )
    .json();
    assert!(written["features"].as_u64() >= Some(1), "{written}");

    let bad = run(&data, &["export", "csv", "--lang", "de"]);
    assert_eq!(bad.code, 2);
    assert!(bad.stderr.contains("fr, en"), "{}", bad.stderr);
}

#[test]
fn an_organisation_imports_its_rows_of_the_mapping_once() {
    let sample = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/examples/mapping.csv");
    let with_errors = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../docs/examples/mapping-with-errors.csv"
    );
    let (dir, data) = init("Association Retour et Dignité");
    let _node = NodeProcess::start(&data);

    let planned = ok(&data, &["import", "csv", sample, "--dry-run", "--json"]).json();
    assert_eq!(planned["written"], false);
    assert_eq!(planned["errors"].as_array().map(Vec::len), Some(0));
    let changes = planned["changes"].as_array().expect("changes").len();
    assert!(changes >= 2, "{planned}");
    assert_eq!(
        planned["other_organisations"].as_object().map(|o| o.len()),
        Some(32)
    );
    let nothing = run(&data, &["service", "list", "--json"]);
    assert_eq!(nothing.code, 1, "a dry run wrote something");

    let done = ok(&data, &["import", "csv", sample, "--lang", "en"]);
    assert!(done.stdout.contains("imported"), "{}", done.stdout);
    let services = ok(&data, &["service", "list", "--json"]).json();
    let own_rows = planned["own_rows"].as_u64().expect("own rows") as usize;
    assert!(
        !services.as_array().expect("list").is_empty()
            && services.as_array().map(Vec::len) <= Some(own_rows)
    );
    let profile = ok(&data, &["org", "show", "--json"]).json();
    assert_eq!(profile["profile"]["acronym"], "ARD");

    // Again: nothing to change.
    let again = ok(&data, &["import", "csv", sample, "--json"]).json();
    assert_eq!(
        again["changes"].as_array().map(Vec::len),
        Some(0),
        "{again}"
    );
    let history = history_len(&data);
    ok(&data, &["import", "csv", sample]);
    assert_eq!(history_len(&data), history, "a second import wrote changes");

    // Bad rows are listed with row, column and why; nothing is imported.
    let refused = run(&data, &["import", "csv", with_errors, "--lang", "en"]);
    assert_eq!(refused.code, 2);
    assert!(
        refused.stderr.contains("nothing was imported"),
        "{}",
        refused.stderr
    );
    for expected in ["CM011", "pas cher", "organisation"] {
        assert!(
            refused.stdout.contains(expected),
            "{expected}: {}",
            refused.stdout
        );
    }
    assert_eq!(history_len(&data), history);

    // With --skip-errors the others are read, and what was skipped is told by cause.
    let skipped = ok(
        &data,
        &[
            "import",
            "csv",
            with_errors,
            "--skip-errors",
            "--dry-run",
            "--lang",
            "en",
        ],
    );
    assert!(
        skipped.stdout.contains("skipped (") && skipped.stdout.contains("by cause:"),
        "{}",
        skipped.stdout
    );
    let as_json = ok(
        &data,
        &[
            "import",
            "csv",
            with_errors,
            "--skip-errors",
            "--dry-run",
            "--json",
        ],
    )
    .json();
    let causes = as_json["skipped_by_cause"].as_array().expect("causes");
    assert!(causes.iter().any(|c| c["field"] == "cout"), "{as_json}");
    assert_eq!(
        causes
            .iter()
            .map(|c| c["count"].as_u64().unwrap_or(0))
            .sum::<u64>() as usize,
        as_json["errors"].as_array().expect("errors").len()
    );
    // A sheet whose every row is refused wrote nothing: not a success, even skipping.
    let all_bad = dir.path().join("all-bad.csv");
    std::fs::write(
        &all_bad,
        "organisation,service,dimension,region,ville,cout\n\
         ONG A,Écoute,culturelle,CM099,Douala,pas cher\n\
         ONG B,Conseil,sociale,Lagos,Douala,gratuit\n",
    )
    .expect("write");
    let refused = run(
        &data,
        &[
            "import",
            "csv",
            all_bad.to_str().expect("path"),
            "--skip-errors",
            "--lang",
            "en",
        ],
    );
    assert_eq!(refused.code, 2, "{}", refused.stdout);
    assert!(
        refused.stderr.contains("every row was refused"),
        "{}",
        refused.stderr
    );
    assert_eq!(history_len(&data), history);

    // The same mapping as a workbook: nothing to change either.
    let workbook = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/examples/mapping.xlsx");
    let from_xlsx = ok(&data, &["import", "csv", workbook, "--json"]).json();
    assert_eq!(
        from_xlsx["changes"].as_array().map(Vec::len),
        Some(0),
        "{from_xlsx}"
    );
    assert_eq!(from_xlsx["own_rows"], planned["own_rows"]);
    let sheet = run(&data, &["import", "csv", sample, "--sheet", "Feuil1"]);
    assert_eq!(sheet.code, 2);
    assert!(sheet.stderr.contains("--sheet"), "{}", sheet.stderr);

    // Round trip: export HSDS, import it into a fresh node of the same organisation: the
    // same offices and services, ids included.
    let hsds_dir = dir.path().join("hsds");
    ok(&data, &["export", "hsds", hsds_dir.to_str().expect("path")]);
    let (_fresh_dir, fresh) = init("Association Retour et Dignité");
    let _fresh_node = NodeProcess::start(&fresh);
    let from_package = ok(
        &fresh,
        &["import", "hsds", hsds_dir.to_str().expect("path"), "--json"],
    )
    .json();
    assert_eq!(
        from_package["errors"].as_array().map(Vec::len),
        Some(0),
        "{from_package}"
    );
    assert_eq!(
        from_package["unmodelled"].as_array().map(Vec::len),
        Some(0),
        "{from_package}"
    );
    let original = ok(&data, &["org", "show", "--json"]).json();
    let restored = ok(&fresh, &["org", "show", "--json"]).json();
    let content = |v: &serde_json::Value| {
        let mut record = v.clone();
        for service in record["services"]
            .as_object_mut()
            .expect("services")
            .values_mut()
        {
            service["last_update"] = serde_json::Value::Null;
        }
        (
            record["offices"].clone(),
            record["services"].clone(),
            record["profile"]["acronym"].clone(),
        )
    };
    assert_eq!(content(&restored), content(&original));
    let json_file = hsds_dir.join("organizations.json");
    let from_json = ok(
        &fresh,
        &[
            "import",
            "hsds",
            json_file.to_str().expect("path"),
            "--json",
        ],
    )
    .json();
    assert_eq!(
        from_json["changes"].as_array().map(Vec::len),
        Some(0),
        "{from_json}"
    );

    // The whole node as a verifiable Automerge backup; merging it back changes nothing.
    let backup = dir.path().join("backup");
    let backup_arg = backup.to_str().expect("path");
    ok(&data, &["export", "automerge", backup_arg]);
    let files: Vec<String> = std::fs::read_dir(&backup)
        .expect("backup folder")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    for suffix in [".automerge", ".changes", ".heads.json"] {
        assert!(files.iter().any(|f| f.ends_with(suffix)), "{files:?}");
    }
    let checked = ok(&data, &["import", "automerge", backup_arg, "--dry-run"]);
    assert!(checked.stdout.contains("verified"), "{}", checked.stdout);
    let merged = ok(&data, &["import", "automerge", backup_arg, "--json"]).json();
    assert_eq!(merged["applied"], 0, "{merged}");
    assert!(merged["duplicates"].as_u64() > Some(0), "{merged}");
    assert_eq!(history_len(&data), history);
    let heads = files
        .iter()
        .find(|f| f.ends_with(".heads.json"))
        .expect("heads file");
    let path = backup.join(heads);
    let text = std::fs::read_to_string(&path).expect("heads");
    std::fs::write(&path, text.replace("\"changes\": ", "\"changes\": 1")).expect("write");
    let tampered = run(&data, &["import", "automerge", backup_arg]);
    assert_eq!(tampered.code, 2);
    assert!(
        tampered.stderr.contains("nothing merged") && tampered.stderr.contains("signature"),
        "{}",
        tampered.stderr
    );
}

#[test]
fn two_hundred_concurrent_calls_are_all_answered_while_idle_connections_are_held() {
    let (dir, data) = init("Centre Espoir");
    // 3,000 services of this organisation, brought in as a coordinator would.
    let mut csv = String::from(
        "organisation,service,dimension,categorie,region,ville,cout,capacite,places,langues\n",
    );
    for i in 0..3000 {
        csv.push_str(&format!(
            "Centre Espoir,Accompagnement {i},économique,job_placement,CM00{},Douala,gratuit,disponible,{},fr\n",
            1 + i % 9,
            i % 30
        ));
    }
    let file = dir.path().join("services.csv");
    std::fs::write(&file, csv).expect("write csv");
    let node = NodeProcess::start(&data);
    ok(&data, &["import", "csv", file.to_str().expect("path")]);

    // 100 local connections opened and left idle: they hold no turn.
    let socket = data.join("control.sock");
    let idle: Vec<std::os::unix::net::UnixStream> = (0..100)
        .map(|_| std::os::unix::net::UnixStream::connect(&socket).expect("connect"))
        .collect();
    // 200 calls at once, each returning a tenth of the directory.
    let calls: Vec<Child> = (0..200)
        .map(|i| {
            let args: Vec<String> = if i % 2 == 0 {
                vec![
                    "directory".into(),
                    "search".into(),
                    "--region".into(),
                    format!("CM00{}", 1 + i % 9),
                    "--json".into(),
                ]
            } else {
                vec!["status".into(), "--json".into()]
            };
            passerelle()
                .arg("--data-dir")
                .arg(&data)
                .args(&args)
                .env_remove("RUST_LOG")
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn a call")
        })
        .collect();
    let mut failed = Vec::new();
    for call in calls {
        let output = call.wait_with_output().expect("wait for a call");
        if !output.status.success() {
            failed.push(String::from_utf8_lossy(&output.stderr).into_owned());
        }
    }
    assert!(
        failed.is_empty(),
        "{} of 200 calls failed: {:?}",
        failed.len(),
        failed.first()
    );
    drop(idle);
    assert_eq!(node.terminate(), 0);
}

#[test]
fn every_kind_of_bad_input_is_refused_naming_the_field() {
    let (_dir, data) = init("Centre Espoir");
    let node = NodeProcess::start(&data);
    let service = |extra: &[&str]| {
        let mut args = vec![
            "service",
            "add",
            "--dimension",
            "economic",
            "--cost",
            "free",
            "--capacity",
            "available",
            "--region",
            "CM005",
        ];
        if !extra.contains(&"--name") {
            args.extend_from_slice(&["--name", "Formation"]);
        }
        args.extend_from_slice(extra);
        run(&data, &args)
    };
    let cases: Vec<(Run, &[&str])> = vec![
        (
            service(&["--category", "housing"]),
            &["categories[0]", "social", "vocational_training"],
        ),
        (
            service(&["--category", "job_placement", "--places", "-1"]),
            &["--places", "-1", "whole number"],
        ),
        (
            run(&data, &["referral", "list", "--limit", "-1"]),
            &["--limit", "-1", "1 or more"],
        ),
        (
            run(&data, &["history", "--limit", "-5"]),
            &["--limit", "-5"],
        ),
        (
            run(
                &data,
                &[
                    "office",
                    "add",
                    "--name",
                    "Siège",
                    "--region",
                    "CM005",
                    "--town",
                    "Douala",
                    "--latitude",
                    "4",
                    "--longitude",
                    "NaN",
                ],
            ),
            &["--longitude", "NaN", "degrees"],
        ),
        (
            run(&data, &["org", "set", "--patch", "{\"name\":5}"]),
            &["name", "expected a string"],
        ),
        (
            service(&[
                "--category",
                "job_placement",
                "--name",
                "Formation\u{1b}[2J\u{7}",
            ]),
            &["name", "U+001B"],
        ),
    ];
    for (r, expected) in cases {
        assert_eq!(r.code, 2, "{}", r.stderr);
        for word in expected {
            assert!(r.stderr.contains(word), "{word:?} not in: {}", r.stderr);
        }
        assert!(
            !r.stderr.contains('\u{1b}') && !r.stderr.contains('\u{7}'),
            "no control character reaches the terminal: {:?}",
            r.stderr
        );
    }
    // Nothing was written ("nothing found" is exit code 1).
    let list = run(&data, &["service", "list", "--json"]);
    assert_eq!(list.code, 1, "{}", list.stdout);
    assert_eq!(list.json().as_array().map(Vec::len), Some(0));
    assert_eq!(node.terminate(), 0);
}

#[test]
fn a_node_that_dies_before_answering_a_write_is_reported_as_maybe_done() {
    let (_dir, data) = init("Centre Espoir");
    // A node that reads the request and dies before answering.
    let listener = std::os::unix::net::UnixListener::bind(data.join("control.sock")).expect("bind");
    let dies = std::thread::spawn(move || {
        for _ in 0..2 {
            let (stream, _) = listener.accept().expect("accept");
            let mut line = String::new();
            let _ = std::io::BufRead::read_line(&mut std::io::BufReader::new(&stream), &mut line);
            drop(stream);
        }
    });
    let write = add_service(&data, "Formation");
    assert_eq!(write.code, 2);
    assert!(
        write.stderr.contains("may or may not have been made"),
        "{}",
        write.stderr
    );
    let read = run(&data, &["status"]);
    assert_eq!(read.code, 2);
    assert!(!read.stderr.contains("may or may not"), "{}", read.stderr);
    dies.join().expect("the dying node");
}

#[test]
fn repair_says_a_sound_store_needs_nothing_and_refuses_while_the_node_runs() {
    let (_dir, data) = init("Centre Espoir");
    let sound = ok(&data, &["repair"]);
    assert!(
        sound.stdout.contains("nothing to repair"),
        "{}",
        sound.stdout
    );
    let report = ok(&data, &["repair", "--json"]).json();
    assert_eq!(report["sound"], true);
    let node = NodeProcess::start(&data);
    let busy = run(&data, &["repair"]);
    assert_eq!(busy.code, 2);
    assert!(busy.stderr.contains("in use"), "{}", busy.stderr);
    assert_eq!(node.terminate(), 0);
}

/// Adds this organisation's head office in Douala (with coordinates) through the CLI; its id.
fn add_douala_office(data: &Path) -> String {
    let office = ok(
        data,
        &[
            "office",
            "add",
            "--name",
            "Siège",
            "--region",
            "CM005",
            "--department",
            "CM005004",
            "--town",
            "Douala",
            "--latitude",
            "4.05",
            "--longitude",
            "9.70",
            "--json",
        ],
    )
    .json();
    office["id"].as_str().expect("office id").to_owned()
}

/// Adds a free job-placement service named `name` in CM005 through the CLI.
fn add_service(data: &Path, name: &str) -> Run {
    run(
        data,
        &[
            "service",
            "add",
            "--name",
            name,
            "--dimension",
            "economic",
            "--category",
            "job_placement",
            "--cost",
            "free",
            "--capacity",
            "available",
            "--region",
            "CM005",
        ],
    )
}

/// Names of this organisation's services, as `service list` prints them.
fn service_names(data: &Path) -> std::collections::BTreeSet<String> {
    let r = run(data, &["service", "list", "--json"]);
    assert!(
        r.code == 0 || r.code == 1,
        "service list failed: {}",
        r.stderr
    );
    r.json()
        .as_array()
        .map(|list| {
            list.iter()
                .filter_map(|s| {
                    s["service"]["name"]
                        .as_str()
                        .or(s["name"].as_str())
                        .map(str::to_owned)
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Cuts the power under a node `cuts` times while two writers add services, and checks after
/// each restart that every acknowledged service is there (the disk forgets whatever was not
/// synced: `passerelle_tests::powercut`).
fn power_cut_trials(cuts: usize, seed: u64) -> (usize, passerelle_tests::powercut::DiskStats) {
    use rand::{Rng, SeedableRng};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut disk = passerelle_tests::powercut::Disk::mount().expect("mount the disk");
    let data = disk.path().join("node");
    ok(
        &data,
        &[
            "init",
            "--org-name",
            "Centre Espoir",
            "--legal-status",
            "ngo",
        ],
    );
    // `init` said it was done: its keys, store and configuration must survive a cut now.
    disk.power_cut().expect("cut");
    let acked: Arc<Mutex<Vec<String>>> = Arc::default();
    for cut in 0..=cuts {
        let node = NodeProcess::start(&data);
        let held = service_names(&data);
        let expected = acked.lock().expect("lock").clone();
        let lost: Vec<&String> = expected.iter().filter(|n| !held.contains(*n)).collect();
        assert!(
            lost.is_empty(),
            "after cut {cut}: {} acknowledged services lost: {lost:?}",
            lost.len()
        );
        if cut == cuts {
            assert_eq!(node.terminate(), 0);
            break;
        }
        let stop = Arc::new(AtomicBool::new(false));
        let writers: Vec<_> = (0..2)
            .map(|w| {
                let (stop, acked, data) = (stop.clone(), acked.clone(), data.clone());
                std::thread::spawn(move || {
                    let mut i = 0;
                    while !stop.load(Ordering::Relaxed) {
                        let name = format!("Service {cut}-{w}-{i}");
                        let r = add_service(&data, &name);
                        if r.code == 0 {
                            acked.lock().expect("lock").push(name);
                        }
                        i += 1;
                    }
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(rng.random_range(100..900)));
        disk.freeze();
        node.kill();
        stop.store(true, Ordering::Relaxed);
        for writer in writers {
            writer.join().expect("writer");
        }
        disk.power_cut().expect("cut");
    }
    let total = acked.lock().expect("lock").len();
    (total, disk.stats())
}

#[test]
#[cfg_attr(
    not(passerelle_root),
    ignore = "needs root: mounting a FUSE file system"
)]
fn a_power_cut_loses_no_acknowledged_write() {
    let (acked, stats) = power_cut_trials(5, 7);
    eprintln!("acknowledged {acked}; disk: {stats:?}");
    assert!(acked > 5, "the writers were acknowledged {acked} times");
    assert_eq!(stats.cuts, 6);
}

#[test]
#[ignore = "soak: 100 power cuts, a few minutes; as root: cargo test -p passerelle --test cli soak_power -- --ignored --nocapture"]
fn soak_power_cuts_lose_no_acknowledged_write() {
    let seed = std::env::var("PASSERELLE_SOAK_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    let cuts = std::env::var("PASSERELLE_SOAK_CUTS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(100);
    let (acked, stats) = power_cut_trials(cuts, seed);
    eprintln!("{cuts} power cuts, {acked} acknowledged edits, none lost; disk: {stats:?}");
}

#[test]
#[cfg_attr(
    not(passerelle_root),
    ignore = "needs root: mounting a FUSE file system"
)]
fn a_full_disk_gives_a_clear_error_and_loses_nothing_acknowledged() {
    let disk = passerelle_tests::powercut::Disk::mount().expect("mount the disk");
    let data = disk.path().join("node");
    ok(
        &data,
        &[
            "init",
            "--org-name",
            "Centre Espoir",
            "--legal-status",
            "ngo",
        ],
    );
    let mut node = NodeProcess::start(&data);
    let add = |name: &str| add_service(&data, name);
    let mut acked = Vec::new();
    for i in 0..5 {
        let name = format!("Avant {i}");
        assert_eq!(add(&name).code, 0);
        acked.push(name);
    }
    // Room for a little more, then none: batches of 300 services brought in until the disk
    // is full (sled grows its log by whole segments of 512 KiB).
    disk.set_capacity(Some(disk.used() + 64 * 1024));
    let outside = tempfile::tempdir().expect("a folder off the disk");
    let mut refused = None;
    for batch in 0..30 {
        let mut csv =
            String::from("organisation,service,dimension,categorie,region,ville,cout,capacite\n");
        let names: Vec<String> = (0..300)
            .map(|i| format!("Lot {batch} service {i}"))
            .collect();
        for name in &names {
            csv.push_str(&format!(
                "Centre Espoir,{name},économique,job_placement,CM005,Douala,gratuit,disponible\n"
            ));
        }
        let file = outside.path().join(format!("lot-{batch}.csv"));
        std::fs::write(&file, csv).expect("write csv");
        let r = run(&data, &["import", "csv", file.to_str().expect("path")]);
        if r.code == 0 {
            acked.extend(names);
        } else {
            refused = Some(r);
            break;
        }
    }
    let refused = refused.expect("the disk filled up");
    eprintln!("{}", refused.stderr);
    assert_eq!(refused.code, 2);
    assert!(
        refused.stderr.contains("disk") && refused.stderr.contains("full"),
        "{}",
        refused.stderr
    );
    assert!(disk.stats().refused_full > 0);
    // Space is freed; the node is restarted: everything acknowledged is there, and it writes
    // again.
    disk.set_capacity(None);
    node.kill();
    node = NodeProcess::start(&data);
    let held = service_names(&data);
    for name in &acked {
        assert!(held.contains(name), "{name} was acknowledged and is lost");
    }
    assert_eq!(add("Après").code, 0);
    assert_eq!(node.terminate(), 0);
}

/// Resident and peak resident memory of a process, in KiB (`/proc/<pid>/status`).
fn memory_of(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

#[test]
fn a_flood_is_bounded_and_honest_members_keep_syncing() {
    use passerelle_tests::foreign::{ForeignOptions, ForeignPeer};
    use passerelle_tests::{TestNode, flood, found_network};
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let a = TestNode::init("Délégation Littoral", |_| {});
    let b = TestNode::init("ONG Avenir", |_| {});
    let rogue = TestNode::init("Membre malveillant", |_| {});
    let network = found_network(&[&a, &b, &rogue], "1/2").to_string();
    let (a_dir, b_dir) = (a.data_dir(), b.data_dir());
    let node_a = NodeProcess::start(&a_dir);
    let status = ok(&a_dir, &["status", "--json"]).json();
    let a_addr = status["network"]["listen_addrs"][0]
        .as_str()
        .expect("address")
        .to_owned();
    let a_peer = status["network"]["peer_id"]
        .as_str()
        .expect("peer id")
        .to_owned();
    let node_b = NodeProcess::start_with(
        &b_dir,
        &[
            "--listen",
            "/ip4/127.0.0.1/tcp/0",
            "--no-mdns",
            "--no-upnp",
            "--peer",
            &a_addr,
        ],
    );
    let wait_until = |what: &str, check: &dyn Fn() -> bool| poll_until(what, TIMEOUT, check);
    wait_until("B to be connected to A with gossip", &|| {
        ok(&a_dir, &["peers", "--json"]).json()["peers"]
            .as_array()
            .is_some_and(|p| p.iter().any(|p| p["gossip"] == true))
    });
    let (rss_before, _) = memory_of(node_a.child.id());

    // The abusers: 500 slow sockets from ten addresses, a member gone rogue publishing
    // garbage as fast as it can, and a foreign (js-libp2p) non-member asking for catch-up in
    // a loop.
    let _inside = runtime.enter();
    let target: libp2p::Multiaddr = a_addr.parse().expect("multiaddr");
    let sources: Vec<std::net::IpAddr> = (2..12)
        .map(|i| std::net::IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, i)))
        .collect();
    let mut slow = flood::slowloris(&sources, flood::socket_of(&target), 500);
    let rogue_key = passerelle_node::identity::Identity::load(&rogue.data_dir()).expect("keys");
    let topic = libp2p::gossipsub::IdentTopic::new(passerelle_node::protocol::changes_topic(Some(
        &network,
    )));
    let (publisher, published) =
        flood::garbage_publisher(rogue_key.signing(), target.clone(), topic.clone());
    let looping_since = Instant::now();
    let looper = ForeignPeer::spawn(&ForeignOptions {
        dial: format!("{a_addr}/p2p/{a_peer}"),
        topic: topic.to_string(),
        network: network.clone(),
        // It floods until the test stops it: on a loaded machine it may need longer than
        // the honest member's writes to pass its budget.
        seconds: 600,
        flood_sync: Some(1_000_000),
        // It hangs up and dials again every 100 requests: its budget is its own, not its
        // connection's.
        redial_every: Some(100),
        ..Default::default()
    });

    // Meanwhile, the honest member keeps writing: how long until A holds each change.
    let mut delays = Vec::new();
    let mut peak_rss = 0;
    for i in 0..12 {
        let name = format!("Pendant la crue {i}");
        assert_eq!(add_service(&b_dir, &name).code, 0);
        let written = Instant::now();
        wait_until("A to receive the honest member's change", &|| {
            run(&a_dir, &["directory", "search", &name, "--json"]).code == 0
        });
        delays.push(written.elapsed());
        peak_rss = peak_rss.max(memory_of(node_a.child.id()).0);
        std::thread::sleep(Duration::from_millis(1500));
    }
    // On a loaded machine the abusers are slower to pass their budgets (the looper asks
    // ~85 times a second on an idle machine, and needs 1,300 requests): give them time,
    // both still abusing meanwhile.
    poll_until(
        "both abusers to be cut off",
        Duration::from_secs(120),
        &|| {
            ok(&a_dir, &["status", "--json"]).json()["network"]["peers_cut_off"]
                .as_u64()
                .unwrap_or(0)
                >= 2
        },
    );
    let status = ok(&a_dir, &["status", "--json"]).json();
    let looped = runtime.block_on(looper.stop());
    let looped_for = looping_since.elapsed();
    publisher.abort();
    slow.abort_all();
    let (_, hwm) = memory_of(node_a.child.id());
    delays.sort();
    let flood_report = looped.iter().find(|e| e["event"] == "flood").cloned();
    let looper_connections = looped.iter().filter(|e| e["event"] == "connected").count();
    eprintln!(
        "flood: honest changes reached A in {:?} (median) / {:?} (max); A's memory {} MB before, {} MB at most during (peak {} MB); {} connections refused at the gate, {} peers cut off; the rogue published {} garbage messages; the sync looper ({} connections in {:?}): {:?}",
        delays[delays.len() / 2],
        delays[delays.len() - 1],
        rss_before / 1024,
        peak_rss / 1024,
        hwm / 1024,
        status["network"]["connections_refused"],
        status["network"]["peers_cut_off"],
        published.load(std::sync::atomic::Ordering::Relaxed),
        looper_connections,
        looped_for,
        flood_report
    );
    assert!(
        delays[delays.len() - 1] < Duration::from_secs(10),
        "honest changes kept flowing: {delays:?}"
    );
    assert!(
        status["network"]["peers_cut_off"].as_u64().unwrap_or(0) >= 2,
        "{status}"
    );
    assert!(
        status["network"]["connections_refused"]
            .as_u64()
            .unwrap_or(0)
            > 0
    );
    let answered = flood_report
        .as_ref()
        .and_then(|f| f["answered"].as_u64())
        .unwrap_or(0);
    // Its budget: a burst of a minute's worth, then refilled over the time it ran.
    // (plus the few requests already in flight when a refill came).
    let budget = passerelle_node::network::SYNC_REQUESTS_PER_MINUTE
        * (1.0 + looped_for.as_secs_f64() / 60.0)
        + 8.0;
    assert!(
        (answered as f64) <= budget,
        "the sync looper was served within its budget only: {flood_report:?}"
    );
    assert!(flood_report.is_some(), "the sync looper reported its flood");
    assert!(
        flood_report
            .as_ref()
            .and_then(|f| f["redials"].as_u64())
            .unwrap_or(0)
            > 0,
        "the sync looper hung up and dialled again while flooding: {flood_report:?}"
    );
    assert!(
        peak_rss < rss_before + 150 * 1024,
        "memory stays bounded: {rss_before} KiB before, {peak_rss} KiB during"
    );
    assert_eq!(node_b.terminate(), 0);
    assert_eq!(node_a.terminate(), 0);
}

/// Every command that reads the whole directory or board, through the real binary and
/// socket, on a node holding a tenth of the national dataset (the benchmarks' generator:
/// 100 organisations, 1,000 services, 10,000 referrals): none is capped by the size of
/// its answer.
#[test]
fn a_tenth_of_the_national_dataset_reads_and_exports_through_the_socket() {
    use passerelle_tests::dataset::{DatasetSize, generate};
    let size = DatasetSize {
        organisations: 100,
        services: 1_000,
        referrals: 10_000,
    };
    let dataset = generate(size, 2026);
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let node = runtime.block_on(dataset.node_holding_it("Réseau national"));
    let data = node.data_dir();
    let out = tempfile::tempdir().expect("temporary folder");
    let _process = NodeProcess::start(&data);

    let hsds = out.path().join("hsds");
    ok(&data, &["export", "hsds", hsds.to_str().expect("path")]);
    let organisations: Value = serde_json::from_str(
        &std::fs::read_to_string(hsds.join("organizations.json")).expect("organizations.json"),
    )
    .expect("hsds json");
    let organisations = organisations.as_array().expect("a list");
    assert_eq!(organisations.len(), size.organisations + 1);
    let services: usize = organisations
        .iter()
        .map(|o| o["services"].as_array().map_or(0, Vec::len))
        .sum();
    assert_eq!(services, size.services);

    let table = out.path().join("3w.csv");
    ok(
        &data,
        &[
            "export",
            "csv",
            "--hxl",
            "--output",
            table.to_str().expect("path"),
        ],
    );
    let rows = std::fs::read_to_string(&table).expect("3w table");
    // A header row and a row of HXL hashtags, then one row per service.
    assert_eq!(rows.lines().count(), size.services + 2);

    let geojson = ok(&data, &["export", "geojson"]).json();
    assert_eq!(geojson["type"], "FeatureCollection");

    let report = ok(&data, &["report", "actors", "--json"]).json();
    assert_eq!(report["services"], size.services);

    let board = ok(&data, &["referral", "list", "--all", "--json"]).json();
    let entries = board["entries"].as_array().expect("entries");
    assert_eq!(entries.len(), size.referrals, "every referral on the board");

    // The referral report over the whole board, suppressed as published, in JSON and CSV,
    // for a period that holds every referral.
    let report = ok(&data, &["report", "referrals", "--json"]).json();
    let counted = report["total"].as_u64().expect("total") as usize
        + report["entered_in_error"]
            .as_u64()
            .expect("entered in error") as usize;
    assert_eq!(counted, size.referrals, "{report}");
    // The generated histories are consistent in time: nothing flagged, the timings given.
    assert_eq!(report["clock_flagged"], 0, "{report}");
    assert!(report["completion_rate"].is_number(), "{report}");
    let csv = ok(
        &data,
        &[
            "report",
            "referrals",
            "--csv",
            "--from",
            "2000-01-01",
            "--to",
            "2099-12-31",
        ],
    );
    assert!(csv.stdout.lines().count() > 20, "{}", csv.stdout);
    assert!(
        csv.stdout
            .lines()
            .any(|l| l == format!("total,,{}", report["total"])),
        "the CSV says what the JSON says: {}",
        csv.stdout
    );
    // What this node holds and when it goes (it is party to none of these referrals), and
    // its audit chain, exported and verified.
    let retention = ok(&data, &["retention", "--json"]).json();
    assert_eq!(
        retention["held"].as_array().map(Vec::len),
        Some(0),
        "{retention}"
    );
    let audit = out.path().join("audit.csv");
    let exported = run(
        &data,
        &[
            "audit",
            "export",
            "--format",
            "csv",
            "--output",
            audit.to_str().expect("path"),
        ],
    );
    // This node read no case file: the chain holds its seals only, and it says so.
    assert_eq!(exported.code, 1, "{}", exported.stderr);
    assert!(
        exported.stderr.contains("no audit entry"),
        "{}",
        exported.stderr
    );
    assert!(audit.exists());
    ok(&data, &["audit", "verify"]);
}

/// An office's IT person behind NAT asks the real binary where the node stands: the office
/// nodes run on a small internet of network namespaces (an ADSL router's NAT, a carrier
/// NAT), the binary talks to their control sockets as it would on the office's server.
#[test]
#[cfg_attr(
    not(passerelle_root),
    ignore = "needs root: network namespaces and nftables"
)]
fn peers_and_status_say_how_an_office_behind_nat_is_reached() {
    use passerelle_tests::nat::{public_and_offices, wait_relayed};
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let offices = public_and_offices(false, true).await;
        let relay = wait_relayed(&offices.nodes).await;
        let public = offices.nodes[0].data_dir();
        for office in &offices.nodes[1..] {
            let data = office.data_dir();
            // AutoNAT's answer comes from the public member's dial-backs, a few seconds
            // after the slot on the relay is taken.
            poll_until(
                "the office to find itself behind NAT",
                passerelle_tests::nat::NAT_TIMEOUT,
                || ok(&data, &["peers", "--json"]).json()["reachability"] == "private",
            );
            let peers = ok(&data, &["peers", "--json"]).json();
            assert_eq!(peers["reachability"], "private", "{peers}");
            assert_eq!(peers["relays"][0], relay.as_str(), "{peers}");
            assert!(
                peers["listen_addrs"]
                    .as_array()
                    .expect("addresses")
                    .iter()
                    .any(|a| a.as_str().is_some_and(|a| a.contains("/p2p-circuit"))),
                "{peers}"
            );
            // The office dialled the public member: a direct connection, through its NAT.
            let text = ok(&data, &["peers"]).stdout;
            assert!(text.contains("private: behind NAT"), "{text}");
            assert!(text.contains(&format!("slot on {relay}")), "{text}");
            assert!(text.contains("direct"), "{text}");
            let status = ok(&data, &["status"]).stdout;
            assert!(status.contains("private: behind NAT"), "{status}");
            assert!(status.contains("not relaying for others"), "{status}");
        }
        // The public member relays for both offices, and says so.
        let status = ok(&public, &["status"]).stdout;
        assert!(
            status.contains("public: members can dial this node directly"),
            "{status}"
        );
        assert!(status.contains("relaying for members: 2 slots"), "{status}");
        let json = ok(&public, &["status", "--json"]).json();
        assert_eq!(json["network"]["relay_reservations"], 2, "{json}");
        for mut node in offices.nodes {
            node.stop().await;
        }
    });
}

/// The exports of a tenth of the national dataset, through the real binary, judged by the
/// standards' own validators: every HSDS organization against Open Referral's compiled JSON
/// Schema (additional properties refused, as Open Referral's CI does), the tabular package
/// by `frictionless validate`, the 3W table by libhxl's `hxlvalidate`.
#[test]
#[cfg_attr(
    not(passerelle_standards),
    ignore = "needs the standards' validators: pip install check-jsonschema compiletojsonschema frictionless libhxl"
)]
fn the_exports_pass_the_standards_own_validators() {
    use passerelle_tests::dataset::{DatasetSize, generate};
    use passerelle_tests::standards::{
        check_hsds, frictionless_validate, hxl_validate, openreferral,
    };
    // The harness, on Open Referral's own example and on a broken copy of it.
    let example: Value = serde_json::from_str(
        &std::fs::read_to_string(openreferral().join("examples/organization_full.json"))
            .expect("example"),
    )
    .expect("json");
    check_hsds("organization", std::slice::from_ref(&example))
        .expect("Open Referral's own example passes");
    let mut broken = example.clone();
    broken["alternate_name"] = Value::Null;
    assert!(check_hsds("organization", &[broken]).is_err());

    let size = DatasetSize {
        organisations: 100,
        services: 1_000,
        referrals: 100,
    };
    let dataset = generate(size, 2026);
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let node = runtime.block_on(dataset.node_holding_it("Réseau national"));
    let data = node.data_dir();
    let out = tempfile::tempdir().expect("temporary folder");
    let _process = NodeProcess::start(&data);
    // This node's own organisation has an office (the dataset's have service areas only):
    // locations and addresses are judged too.
    add_douala_office(&data);
    let hsds = out.path().join("hsds");
    ok(&data, &["export", "hsds", hsds.to_str().expect("path")]);
    let organisations: Value = serde_json::from_str(
        &std::fs::read_to_string(hsds.join("organizations.json")).expect("organizations.json"),
    )
    .expect("hsds json");
    let organisations = organisations.as_array().expect("a list");
    assert_eq!(organisations.len(), size.organisations + 1);
    assert!(
        organisations
            .iter()
            .any(|o| o["locations"][0]["addresses"][0]["city"] == "Douala")
    );
    if let Err(report) = check_hsds("organization", organisations) {
        panic!("the HSDS export fails Open Referral's schema:\n{report}");
    }
    if let Err(report) = frictionless_validate(&hsds.join("datapackage.json")) {
        panic!("the tabular package fails frictionless:\n{report}");
    }
    // Open Referral's file names; and the validator does look: the same package with a
    // service that names no organization fails.
    for file in [
        "organizations.csv",
        "services.csv",
        "locations.csv",
        "addresses.csv",
        "datapackage.json",
    ] {
        assert!(hsds.join(file).exists(), "{file}");
    }
    let services = std::fs::read_to_string(hsds.join("services.csv")).expect("services.csv");
    let first_row = services.lines().nth(1).expect("a service");
    let broken = services.replacen(first_row.split(',').nth(1).expect("organization_id"), "", 1);
    std::fs::write(hsds.join("services.csv"), broken).expect("write");
    assert!(frictionless_validate(&hsds.join("datapackage.json")).is_err());

    // The 3W table with its HXL hashtags, in both languages.
    for lang in ["fr", "en"] {
        let table = out.path().join(format!("3w-{lang}.csv"));
        ok(
            &data,
            &[
                "export",
                "csv",
                "--hxl",
                "--lang",
                lang,
                "--output",
                table.to_str().expect("path"),
            ],
        );
        if let Err(report) = hxl_validate(&table) {
            panic!("the 3W table ({lang}) fails hxlvalidate:\n{report}");
        }
    }
    // The validator does look: a word under #value fails it.
    let table = out.path().join("3w-fr.csv");
    let text = std::fs::read_to_string(&table).expect("3w");
    let row = text.lines().nth(2).expect("a row").to_owned();
    let mut cells: Vec<&str> = row.split(',').collect();
    let value = text
        .lines()
        .nth(1)
        .expect("hashtags")
        .split(',')
        .position(|t| t == "#value+cost")
        .expect("#value+cost");
    cells[value] = "Gratuit";
    std::fs::write(&table, text.replacen(&row, &cells.join(","), 1)).expect("write");
    assert!(hxl_validate(&table).is_err());
}

/// The cells of the messy mapping of docs/examples (semicolons, no quoted cells), header
/// first.
fn messy_mapping() -> (String, Vec<Vec<String>>) {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../docs/examples/cartographie-terrain.csv"
    );
    let text = std::fs::read_to_string(path).expect("messy mapping");
    assert!(
        !text.contains('"'),
        "the test reads the file by splitting at semicolons"
    );
    let lines = text
        .trim_start_matches('\u{feff}')
        .lines()
        .map(|l| l.split(';').map(str::to_owned).collect())
        .collect();
    (path.to_owned(), lines)
}

#[test]
fn a_messy_mapping_reports_every_bad_row_and_lands_every_good_one() {
    let (path, lines) = messy_mapping();
    let path = path.as_str();
    let rows = lines.len() - 1;
    assert!(rows >= 40, "{rows} rows");
    let header = |name: &str| lines[0].iter().position(|h| h == name).expect(name);
    let (org, service) = (header("Nom de la structure"), header("Prestation proposée"));
    // Every bad value, as the coordinator is told it: row, column, value, why.
    let bad: [(usize, &str, &str, &str); 13] = [
        (
            26,
            "Type de service",
            "Développement des compétences",
            "n'appartient pas à la dimension Économique",
        ),
        (
            35,
            "Type de service",
            "Astronautique",
            "n'est pas une catégorie ; acceptées",
        ),
        (
            36,
            "Type de service",
            "Formation profesionelle",
            "vouliez-vous dire « Formation professionnelle »",
        ),
        (37, "Coût (FCFA)", "Sur devis", "payant sans montant"),
        (38, "Coût (FCFA)", "-5000", "un montant négatif"),
        (
            39,
            "Capacité d'accueil",
            "plusieurs",
            "« plusieurs » ne dit pas de nombre",
        ),
        (
            40,
            "Nombre de places",
            "illimité",
            "« illimité » ne dit pas de nombre",
        ),
        (
            41,
            "Région",
            "Lagos",
            "ni un nom de région ; régions : CM001 Adamaoua",
        ),
        (
            42,
            "Langue(s) parlée(s)",
            "Français, klingon",
            "« klingon » : ni un code de langue ISO 639",
        ),
        (43, "Prestation proposée", "", "obligatoire, et vide"),
        (
            44,
            "Département",
            "Wouri",
            "n'est pas un département de la région CM002",
        ),
        (45, "Coût (FCFA)", "150 000 000 FCFA", "vérifiez le montant"),
        (
            45,
            "Type de service",
            "Développement des compétences",
            "n'appartient pas à la dimension",
        ),
    ];
    let bad_rows: std::collections::BTreeSet<usize> = bad.iter().map(|b| b.0).collect();

    let (_dir, data) = init("Association Retour et Dignité");
    let _node = NodeProcess::start(&data);
    ok_fr(&data, &["org", "set", "--acronym", "ARD"]);
    let history = history_len(&data);

    // In French (the coordinator's): every bad value reported, nothing written.
    let planned = run_fr(&data, &["import", "csv", path, "--dry-run", "--json"]);
    assert_eq!(planned.code, 2, "{}", planned.stderr);
    let planned = planned.json();
    let errors = planned["errors"].as_array().expect("errors");
    for (row, column, value, why) in bad {
        assert!(
            errors.iter().any(|e| e["at"] == format!("row {row}")
                && e["field"] == column
                && e["value"] == value
                && e["why"].as_str().is_some_and(|w| w.contains(why))),
            "row {row} {column} {value:?} {why:?} not reported: {errors:#?}"
        );
    }
    assert_eq!(errors.len(), bad.len(), "{errors:#?}");
    // Every column of the file, and how it was read.
    let columns = planned["columns"].as_array().expect("columns");
    assert_eq!(columns.len(), lines[0].len());
    for (header, column, rule) in [
        ("Nom de la structure", Some("organisation"), "words"),
        ("Prestation proposée", Some("service"), "words"),
        ("Type d'organisation", Some("type"), "words"),
        ("Nombre de places", Some("places"), "words"),
        ("Capacité d'accueil", Some("capacity"), "words"),
        ("Langue(s) parlée(s)", Some("languages"), "words"),
        ("Région", Some("region"), "header"),
        ("Point focal", None, "unknown"),
        ("Observations", None, "unknown"),
    ] {
        let reading = columns
            .iter()
            .find(|c| c["header"] == header)
            .expect(header);
        assert_eq!(reading["column"].as_str(), column, "{reading}");
        assert_eq!(reading["rule"], rule, "{reading}");
    }
    // This organisation's rows, each name with the rule that matched.
    let own_names = planned["own_names"].as_array().expect("own names");
    assert!(
        own_names
            .iter()
            .any(|n| n["name"] == "ARD – Bureau de Douala"
                && n["matched"]["suffix"]["suffix"] == "Bureau de Douala"
                && n["rows"] == 2),
        "{own_names:?}"
    );
    assert!(
        own_names
            .iter()
            .any(|n| n["name"] == "ARD" && n["matched"] == "acronym"),
        "{own_names:?}"
    );
    let own_rows: Vec<&Vec<String>> = lines[1..]
        .iter()
        .enumerate()
        .filter(|(i, _)| !bad_rows.contains(&(i + 2)))
        .map(|(_, l)| l)
        .filter(|l| l[org].starts_with("ARD") || l[org] == "Association Retour et Dignité")
        .collect();
    assert_eq!(planned["own_rows"], own_rows.len());
    let refused = run_fr(&data, &["import", "csv", path]);
    assert_eq!(refused.code, 2);
    assert!(
        refused
            .stderr
            .contains("13 valeur(s) illisibles ; rien n'a été importé"),
        "{}",
        refused.stderr
    );
    assert!(
        refused
            .stdout
            .contains("colonnes du fichier, telles que lues"),
        "{}",
        refused.stdout
    );
    assert_eq!(history_len(&data), history);

    // The same in English.
    let english = ok_fr(
        &data,
        &[
            "import",
            "csv",
            path,
            "--dry-run",
            "--skip-errors",
            "--json",
            "--lang",
            "en",
        ],
    )
    .json();
    assert!(
        english["errors"]
            .as_array()
            .expect("errors")
            .iter()
            .any(|e| e["why"]
                .as_str()
                .is_some_and(|w| w.starts_with("not a category; accepted"))),
        "{english}"
    );

    // Skipping the bad rows, every good row lands: this organisation's as its services,
    // the others' as drafts.
    let done = ok_fr(&data, &["import", "csv", path, "--skip-errors", "--drafts"]);
    assert!(done.stdout.contains("par cause"), "{}", done.stdout);
    let services = service_names(&data);
    let expected: std::collections::BTreeSet<String> =
        own_rows.iter().map(|l| l[service].clone()).collect();
    assert_eq!(services, expected);
    let drafts = ok_fr(&data, &["directory", "drafts", "--json"]).json();
    let drafts = drafts.as_array().expect("drafts");
    let mut landed = 0;
    for (index, line) in lines[1..].iter().enumerate() {
        if bad_rows.contains(&(index + 2)) || own_rows.contains(&line) {
            continue;
        }
        let draft = drafts
            .iter()
            .find(|d| d["record"]["profile"]["name"] == line[org])
            .unwrap_or_else(|| panic!("no draft of {:?}", line[org]));
        assert!(
            draft["record"]["services"]
                .as_object()
                .is_some_and(|s| s.values().any(|s| s["name"] == line[service])),
            "row {}: {:?} not in the draft {draft}",
            index + 2,
            line[service]
        );
        landed += 1;
    }
    assert_eq!(landed + own_rows.len() + bad_rows.len(), rows);

    // A header the import cannot read: the error says how each column was read and how to
    // say which it is; --column and a mapping file say it.
    let renamed = _dir.path().join("intitules.csv");
    let text = std::fs::read_to_string(path).expect("read");
    std::fs::write(
        &renamed,
        text.replacen("Prestation proposée", "Intitulé", 1),
    )
    .expect("write");
    let renamed = renamed.to_str().expect("path");
    let lost = run_fr(
        &data,
        &["import", "csv", renamed, "--dry-run", "--lang", "en"],
    );
    assert_eq!(lost.code, 2);
    for expected in [
        "no column read as service",
        "\"Intitulé\" → not read",
        "--column \"HEADER=service\"",
    ] {
        assert!(
            lost.stderr.contains(expected),
            "{expected}: {}",
            lost.stderr
        );
    }
    let told = ok_fr(
        &data,
        &[
            "import",
            "csv",
            renamed,
            "--dry-run",
            "--skip-errors",
            "--json",
            "--column",
            "Intitulé=service",
            "--column",
            "Observations=ignore",
        ],
    )
    .json();
    assert_eq!(told["errors"].as_array().map(Vec::len), Some(bad.len()));
    let intitule = told["columns"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["header"] == "Intitulé"))
        .expect("Intitulé");
    assert_eq!(intitule["rule"], "given");
    let file = _dir.path().join("colonnes.txt");
    std::fs::write(&file, "# mes colonnes\nIntitulé = prestation\n").expect("write");
    let from_file = ok_fr(
        &data,
        &[
            "import",
            "csv",
            renamed,
            "--dry-run",
            "--skip-errors",
            "--json",
            "--columns-file",
            file.to_str().expect("path"),
        ],
    )
    .json();
    assert_eq!(from_file["own_rows"], planned["own_rows"]);
    let wrong = run_fr(
        &data,
        &["import", "csv", renamed, "--column", "Intitulé=servise"],
    );
    assert_eq!(wrong.code, 2);
    assert!(
        wrong
            .stderr
            .contains("« servise » n'est pas une colonne de l'import"),
        "{}",
        wrong.stderr
    );
    let absent = run_fr(
        &data,
        &["import", "csv", renamed, "--column", "Prestation=service"],
    );
    assert_eq!(absent.code, 2);
    assert!(
        absent
            .stderr
            .contains("le fichier n'a pas de colonne « Prestation »"),
        "{}",
        absent.stderr
    );
}

/// Runs `passerelle ARGS` with `input` on its standard input.
fn run_with_input(data_dir: &Path, args: &[&str], input: &str) -> Run {
    use std::io::Write;
    let mut child = passerelle()
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .env_remove("PASSERELLE_HOME")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn passerelle");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("write stdin");
    let output = child.wait_with_output().expect("wait");
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// One HTTP/1.1 GET on loopback: the status line and headers, then the body.
fn http_get(address: &str, path: &str) -> String {
    use std::io::{Read, Write};
    let host = address.trim_start_matches("http://").trim_end();
    let mut stream = std::net::TcpStream::connect(host).expect("connect to the web page");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .expect("request");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("answer");
    answer
}

#[test]
fn accounts_are_managed_from_the_command_line_and_the_node_serves_its_page() {
    let (_dir, data) = init("Association Retour et Dignité");
    let _node = NodeProcess::start_with(
        &data,
        &[
            "--listen",
            "/ip4/127.0.0.1/tcp/0",
            "--no-mdns",
            "--no-upnp",
            "--web-listen",
            "127.0.0.1:0",
        ],
    );
    // The page is served where the address file says, with its security headers.
    let address = std::fs::read_to_string(data.join("web.address")).expect("web.address");
    let login = http_get(&address, "/login");
    assert!(login.starts_with("HTTP/1.1 200"), "{login}");
    for header in [
        "content-security-policy: default-src 'none'; script-src 'self'",
        "x-frame-options: DENY",
        "cache-control: no-store",
        "HttpOnly; SameSite=Strict",
    ] {
        assert!(login.contains(header), "{header}: {login}");
    }
    assert!(login.contains("<h1>Connexion</h1>"), "{login}");
    let board = http_get(&address, "/board");
    assert!(
        board.starts_with("HTTP/1.1 303") && board.contains("location: /login"),
        "{board}"
    );

    // Accounts: made with a password on standard input, listed without it, refused when
    // the password is short or the role unknown, removed.
    let made = run_with_input(
        &data,
        &[
            "user",
            "add",
            "amina",
            "--role",
            "officer",
            "--password-stdin",
            "--json",
        ],
        "une phrase de passe\n",
    );
    assert_eq!(made.code, 0, "{}", made.stderr);
    assert_eq!(made.json()["role"], "officer");
    let short = run_with_input(
        &data,
        &[
            "user",
            "add",
            "paul",
            "--role",
            "viewer",
            "--password-stdin",
        ],
        "court\n",
    );
    assert_eq!(short.code, 2);
    assert!(
        short.stderr.contains("password: at least 10 characters"),
        "{}",
        short.stderr
    );
    let role = run(&data, &["user", "add", "paul", "--role", "chef"]);
    assert_eq!(role.code, 2);
    assert!(
        role.stderr.contains("admin, officer, viewer"),
        "{}",
        role.stderr
    );
    let no_terminal = run_with_input(&data, &["user", "add", "paul", "--role", "viewer"], "");
    assert_eq!(no_terminal.code, 2);
    assert!(
        no_terminal.stderr.contains("--password-stdin"),
        "{}",
        no_terminal.stderr
    );
    let listed = ok(&data, &["user", "list", "--json"]).json();
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "{listed}");
    assert!(!listed.to_string().contains("phrase"), "{listed}");
    let changed = run_with_input(
        &data,
        &["user", "passwd", "amina", "--password-stdin"],
        "une autre phrase de passe\n",
    );
    assert_eq!(changed.code, 0, "{}", changed.stderr);
    ok(&data, &["user", "remove", "amina"]);
    let gone = run(&data, &["user", "remove", "amina"]);
    assert_eq!(gone.code, 1, "{}", gone.stderr);
    assert!(gone.stderr.contains("no account named"), "{}", gone.stderr);
    assert_eq!(run(&data, &["user", "list"]).code, 1);
}

#[test]
fn the_page_is_served_over_tls_on_a_network_address_with_a_certificate_made_at_first_start() {
    let (_dir, data) = init("Association Retour et Dignité");
    let log = data.parent().expect("parent").join("node.log");
    let _node = NodeProcess {
        child: start_logged(&data, &[], "0.0.0.0:0", &log),
    };
    poll_until("the page to be served", TIMEOUT, || {
        data.join("web.address").exists()
    });
    let address = std::fs::read_to_string(data.join("web.address")).expect("address");
    assert!(address.starts_with("https://0.0.0.0:"), "{address}");
    let port = address.trim().rsplit(':').next().expect("port").to_owned();
    // The certificate was made in web-tls/, its key readable by the node's user only, and
    // its fingerprint printed as openssl computes it.
    let made = data.join("web-tls");
    let mode = std::fs::metadata(made.join("key.pem"))
        .expect("key")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let openssl = Command::new("openssl")
        .args(["x509", "-noout", "-fingerprint", "-sha256", "-in"])
        .arg(made.join("cert.pem"))
        .output()
        .expect("openssl");
    let fingerprint = String::from_utf8_lossy(&openssl.stdout)
        .trim()
        .rsplit('=')
        .next()
        .expect("fingerprint")
        .to_owned();
    let printed = std::fs::read_to_string(&log).expect("log");
    assert!(
        printed.contains(&fingerprint) && printed.contains("made now"),
        "{fingerprint}: {printed}"
    );
    // A browser that trusts the certificate gets the page, with HSTS; plain HTTP gets
    // nothing.
    let https = Command::new("curl")
        .args(["-s", "-i", "--max-time", "10", "--cacert"])
        .arg(made.join("cert.pem"))
        .arg(format!("https://localhost:{port}/login"))
        .output()
        .expect("curl");
    let page = String::from_utf8_lossy(&https.stdout);
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    assert!(
        page.contains("strict-transport-security: max-age="),
        "{page}"
    );
    assert!(page.contains("<h1>Connexion</h1>"), "{page}");
    // Over a slow link the page and its assets travel gzipped when the browser accepts it.
    for path in ["/login", "/static/app.css", "/static/app.js"] {
        let gzipped = Command::new("curl")
            .args(["-s", "-i", "--compressed", "--max-time", "10", "--cacert"])
            .arg(made.join("cert.pem"))
            .arg(format!("https://localhost:{port}{path}"))
            .output()
            .expect("curl");
        let answer = String::from_utf8_lossy(&gzipped.stdout);
        assert!(
            answer.contains("content-encoding: gzip"),
            "{path} was not compressed: {answer}"
        );
        // Pages are never kept; the assets, versioned by their contents, are kept a year.
        let kept = if path == "/login" {
            "cache-control: no-store"
        } else {
            "cache-control: public, max-age=31536000, immutable"
        };
        assert!(answer.contains(kept), "{path}: {answer}");
    }
    assert!(page.contains("href=\"/static/app.css?v="), "{page}");
    let plain = Command::new("curl")
        .args(["-s", "-i", "--max-time", "10"])
        .arg(format!("http://127.0.0.1:{port}/login"))
        .output()
        .expect("curl");
    assert!(
        !String::from_utf8_lossy(&plain.stdout).contains("Connexion"),
        "the page was served without TLS"
    );
}

/// `passerelle [global] start` on loopback, its page on `web`, its standard error in `log`.
fn start_logged(data: &Path, global: &[&str], web: &str, log: &Path) -> Child {
    passerelle()
        .arg("--data-dir")
        .arg(data)
        .args(global)
        .args([
            "start",
            "--listen",
            "/ip4/127.0.0.1/tcp/0",
            "--no-mdns",
            "--no-upnp",
            "--web-listen",
            web,
        ])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).expect("log"))
        .spawn()
        .expect("start")
}

/// What `bash` completes after `words` (the last one being typed), with the script
/// `passerelle completions bash` printed, sourced in a real bash.
fn bash_completes(script: &Path, words: &[&str]) -> Vec<String> {
    let cword = words.len() - 1;
    let line = format!(
        "source {}; COMP_WORDS=({}); COMP_CWORD={cword}; _passerelle passerelle {} {}; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        script.display(),
        words.join(" "),
        words[cword],
        words[cword - 1],
    );
    let out = Command::new("bash")
        .args(["-c", &line])
        .output()
        .expect("bash");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn completions_manual_pages_and_json_logs_come_from_the_command_itself() {
    let (dir, data) = init("Association Retour et Dignité");
    // Completions for bash, run in a real bash: commands, subcommands, flags.
    let script = dir.path().join("passerelle.bash");
    std::fs::write(&script, ok(&data, &["completions", "bash"]).stdout).expect("script");
    assert_eq!(
        bash_completes(&script, &["passerelle", "refer"]),
        ["referral"]
    );
    assert_eq!(
        bash_completes(&script, &["passerelle", "referral", "se"]),
        ["send"]
    );
    assert!(
        bash_completes(&script, &["passerelle", "referral", "send", "--cons"])
            .contains(&"--consent".to_owned())
    );
    for shell in ["zsh", "fish"] {
        let text = ok(&data, &["completions", shell]).stdout;
        assert!(
            text.contains("referral") && text.contains("consent"),
            "{shell}"
        );
    }
    let wrong = run(&data, &["completions", "cmd.exe"]);
    assert_eq!(wrong.code, 2);
    assert!(wrong.stderr.contains("possible values"), "{}", wrong.stderr);

    // Manual pages: passerelle(1) printed, and one per command written into a folder.
    let page = ok(&data, &["man"]).stdout;
    assert!(page.contains(".TH passerelle 1"), "{page}");
    let pages = dir.path().join("man");
    ok(&data, &["man", "--dir", pages.to_str().expect("path")]);
    let send = std::fs::read_to_string(pages.join("passerelle-referral-send.1"))
        .expect("the page of referral send");
    assert!(
        send.contains(".TH passerelle-referral-send 1") && send.contains("consent"),
        "{send}"
    );
    assert!(pages.join("passerelle-user-add.1").exists());

    // JSON logs: every line the node writes on standard error is one JSON object, what it
    // tells its operator included.
    let log = dir.path().join("node.log");
    let mut child = start_logged(&data, &["--log-format", "json"], "127.0.0.1:0", &log);
    poll_until("the node to answer", TIMEOUT, || {
        run(&data, &["status", "--json"]).code == 0
    });
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill -TERM");
    let status = child.wait().expect("wait");
    assert!(status.success(), "{status}");
    let text = std::fs::read_to_string(&log).expect("log");
    let lines: Vec<Value> = text
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}")))
        .collect();
    assert!(
        lines.iter().any(|l| l["fields"]["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("Passerelle node running for"))),
        "{text}"
    );
    assert!(
        lines
            .iter()
            .all(|l| l["level"].is_string() && l["timestamp"].is_string())
    );
}

/// Through the binary: an organisation made with a recovery key joins; its machine is
/// lost; its new node, with the recovery secret kept offline, signs the rotation, a member
/// brings it, and the new node writes for the organisation under the same id.
#[test]
fn a_lost_node_is_replaced_with_the_recovery_key_made_at_init() {
    let (_a_dir, a) = init("Délégation régionale Littoral");
    let b_dir = tempfile::tempdir().expect("tempdir");
    let b = b_dir.path().join("node");
    let secret = b_dir.path().join("secours.txt");
    let made = ok(
        &b,
        &[
            "init",
            "--org-name",
            "ONG Avenir",
            "--legal-status",
            "ngo",
            "--recovery-key",
            secret.to_str().expect("path"),
        ],
    );
    assert!(made.stdout.contains("Recovery key made"), "{}", made.stdout);
    let mode = std::fs::metadata(&secret)
        .expect("secret")
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
    // Never written over.
    let again = run(
        &b_dir.path().join("other"),
        &[
            "init",
            "--org-name",
            "X",
            "--recovery-key",
            secret.to_str().expect("path"),
        ],
    );
    assert_ne!(again.code, 0);
    assert!(again.stderr.contains("secret_out"), "{}", again.stderr);
    let (node_a, node_b, invitation, b_id) = found_and_admit(&a, &b, "Réseau Littoral");
    // Once a member, B's node registers the recovery key made at init.
    poll_until("B's recovery key to reach A", TIMEOUT, || {
        ok(&a, &["member", "list", "--json"]).json()["recovery_keys"][&b_id].is_string()
    });
    // B's machine is lost. Its new node joins with the same invitation.
    drop(node_b);
    let b2_dir = tempfile::tempdir().expect("tempdir");
    let b2 = b2_dir.path().join("node");
    ok(&b2, &["init", "--device-of", &b_id]);
    ok(&b2, &["network", "join", &invitation]);
    let node_b2 = NodeProcess::start(&b2);
    poll_until("B's new node to read the network document", TIMEOUT, || {
        ok(&b2, &["status", "--json"]).json()["membership"]["network_id"].is_string() && {
            let list = run(&b2, &["member", "list", "--json"]);
            list.code == 0
                && list.json()["members"]
                    .as_array()
                    .is_some_and(|m| m.len() == 2)
        }
    });
    let statement = b2_dir.path().join("rotation.json");
    let signed = ok(
        &b2,
        &[
            "member",
            "recovery-statement",
            "--secret-file",
            secret.to_str().expect("path"),
            "--out",
            statement.to_str().expect("path"),
        ],
    );
    assert!(
        signed.stdout.contains("member recover"),
        "{}",
        signed.stdout
    );
    // A statement signed by another key is refused, naming why; then the real one.
    let forged = b2_dir.path().join("forged.json");
    let mut text: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&statement).expect("statement")).expect("json");
    text["signature"] = serde_json::Value::String("00".repeat(64));
    std::fs::write(&forged, text.to_string()).expect("write");
    let refused = run(&a, &["member", "recover", forged.to_str().expect("path")]);
    assert_eq!(refused.code, 2, "{}", refused.stderr);
    assert!(
        refused.stderr.contains("recovery key"),
        "{}",
        refused.stderr
    );
    ok(
        &a,
        &["member", "recover", statement.to_str().expect("path")],
    );
    poll_until(
        "B's new node to be the organisation's own node",
        TIMEOUT,
        || ok(&b2, &["status", "--json"]).json()["membership"]["role"] == "member",
    );
    poll_until("B's new node to write for B", TIMEOUT, || {
        add_service(&b2, "Après la reprise").code == 0
    });
    poll_until("the new node's service to reach A", TIMEOUT, || {
        run(&a, &["directory", "search", "reprise", "--json"]).code == 0
    });
    let found = ok(&a, &["directory", "search", "reprise", "--json"]).json();
    assert_eq!(found[0]["org_name"], "ONG Avenir");
    let human = ok(&a, &["member", "list"]);
    assert!(
        human.stdout.contains("replaced organisation keys")
            && human.stdout.contains("by its recovery key"),
        "{}",
        human.stdout
    );
    assert_eq!(node_b2.terminate(), 0);
    assert_eq!(node_a.terminate(), 0);
}

/// Through the binary: an organisation grants its regional office's node case files and
/// hands it one; the office reads it; once the grant ends the office has destroyed it and
/// nothing more is handed to it.
#[test]
fn a_regional_office_reads_a_case_file_handed_to_it_until_its_grant_ends() {
    let (_a_dir, a, a_id) = init_with_id("Délégation régionale Littoral");
    let (b_dir, b, b_id) = init_with_id("ONG Avenir");
    let (node_a, node_b, invitation, admitted) = found_and_admit(&a, &b, "Réseau Ouest");
    assert_eq!(admitted, b_id);
    // The office's node: a device of A.
    let d_dir = tempfile::tempdir().expect("tempdir");
    let d = d_dir.path().join("node");
    ok(&d, &["init", "--device-of", &a_id]);
    ok(&d, &["network", "join", &invitation]);
    let node_d = NodeProcess::start(&d);
    let status = ok(&d, &["status", "--json"]).json();
    let key = status["node_key"].as_str().expect("key").to_owned();
    let case_key = status["encryption_key"].as_str().expect("key").to_owned();
    // Not a device yet: refused, naming what to do.
    let refused = run(&a, &["device", "grant", &key, &case_key]);
    assert_eq!(refused.code, 2, "{}", refused.stderr);
    assert!(refused.stderr.contains("device add"), "{}", refused.stderr);
    ok(&a, &["device", "add", &key, "--label", "Bafoussam"]);
    ok(&a, &["device", "grant", &key, &case_key]);
    assert!(
        ok(&a, &["member", "list"])
            .stdout
            .contains("receives case files")
    );
    assert_eq!(add_service(&a, "Placement Bafoussam").code, 0);
    let matching = [
        "referral",
        "match",
        "--need",
        "job_placement",
        "--region",
        "CM005",
        "--json",
    ];
    poll_until("A's service to reach B", TIMEOUT, || {
        run(&b, &matching).code == 0
    });
    let service = ok(&b, &matching).json()[0]["service_id"]
        .as_str()
        .expect("service")
        .to_owned();
    let case_file = b_dir.path().join("case.toml");
    std::fs::write(
        &case_file,
        "name = \"Boris Tchoumi\"\nphone = \"+237 655 44 33 22\"\nneeds = [\"job_placement\"]\n",
    )
    .expect("case file");
    let sent = ok(
        &b,
        &[
            "referral",
            "send",
            "--to",
            &a_id,
            "--service",
            &service,
            "--region",
            "CM005",
            "--case-file",
            case_file.to_str().expect("path"),
            "--consent",
            "verbal",
            "--json",
        ],
    )
    .json();
    let id = sent["id"].as_str().expect("id").to_owned();
    poll_until("the case file to reach A", TIMEOUT, || {
        case_state(&a, &id).as_deref() == Some("held")
    });
    let handed = ok(&a, &["referral", "to-office", &id, &key]);
    assert!(handed.stdout.contains("that office"), "{}", handed.stdout);
    poll_until("the office to read the case file", TIMEOUT, || {
        case_state(&d, &id).as_deref() == Some("held")
    });
    let shown = ok(&d, &["referral", "show", &id]);
    assert!(shown.stdout.contains("Boris Tchoumi"), "{}", shown.stdout);
    ok(&a, &["device", "ungrant", &key]);
    poll_until("the office to destroy it", TIMEOUT, || {
        case_state(&d, &id).as_deref() == Some("erased")
    });
    let again = run(&a, &["referral", "to-office", &id, &key]);
    assert_eq!(again.code, 2, "{}", again.stderr);
    assert!(again.stderr.contains("device grant"), "{}", again.stderr);
    let audit = ok(&a, &["referral", "audit", &id]).stdout;
    for action in ["to_office", "handed_to_office", "office_access_ended"] {
        assert!(audit.contains(action), "{action}: {audit}");
    }
    assert_eq!(node_d.terminate(), 0);
    assert_eq!(node_b.terminate(), 0);
    assert_eq!(node_a.terminate(), 0);
}
