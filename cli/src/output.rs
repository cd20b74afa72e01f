//! Printing: human tables or `--json`, on stdout; a closed pipe is not an error.

use std::io::Write;

use comfy_table::{ContentArrangement, Table, presets::UTF8_FULL_CONDENSED};
use serde::Serialize;

/// Writes `text` to stdout for people; a broken pipe (e.g. `| head`) ends quietly. Control,
/// bidirectional-override and invisible characters (refused on input, but a record written
/// by an older version may hold some) are written out as `\u{…}`, so that nothing received
/// from another organisation can act on the terminal.
pub fn out(text: &str) -> anyhow::Result<()> {
    write(&passerelle_node::text::visible(text))
}

/// Whether the log is JSON lines (`--log-format json`): then what `passerelle start` tells
/// the person who started it goes into the log too, as JSON, not as plain lines among them.
pub static JSON_LOG: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Tells the person running `passerelle start` something (on standard error), or logs it
/// when the log is JSON lines.
pub fn say(text: &str) {
    if JSON_LOG.load(std::sync::atomic::Ordering::Relaxed) {
        tracing::info!(target: "passerelle", "{text}");
    } else {
        eprintln!("{text}");
    }
}

/// Prints `bytes` as they are (generated text: completions, a manual page); a reader that
/// stops early (`| head`) is not an error.
pub fn raw(bytes: &[u8]) -> anyhow::Result<()> {
    match std::io::stdout().lock().write_all(bytes) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}

fn write(text: &str) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|_| stdout.write_all(b"\n"))
        .and_then(|_| stdout.flush())
    {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}

/// Prints `value` as pretty JSON; refused characters are written as `\uXXXX` escapes (the
/// same data for a JSON reader, inert on a terminal).
pub fn json<T: Serialize>(value: &T) -> anyhow::Result<()> {
    write(&passerelle_node::text::json_safe(
        &serde_json::to_string_pretty(value)?,
    ))
}

/// A table with a header row.
pub fn table(header: &[&str], rows: Vec<Vec<String>>) -> String {
    let mut table = Table::new();
    table
        .load_preset(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(header.iter().copied());
    for row in rows {
        table.add_row(row);
    }
    table.to_string()
}

/// Two-column "field: value" listing.
pub fn fields(rows: Vec<(&str, String)>) -> String {
    let width = rows
        .iter()
        .map(|(k, _)| k.chars().count())
        .max()
        .unwrap_or(0);
    rows.into_iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| format!("{k:<width$}  {v}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A Unix time as an RFC 3339 UTC timestamp.
pub fn time(seconds: i64) -> String {
    if seconds <= 0 {
        return String::new();
    }
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(seconds as u64);
    humantime::format_rfc3339_seconds(t).to_string()
}

/// This node's reachability from the internet, in words an office's IT person reads.
pub fn reachability_line(network: &passerelle_node::network::NetworkStatus) -> String {
    use crate::messages::t;
    match network.reachability.as_str() {
        "public" => t(
            "public: members can dial this node directly",
            "public : les membres joignent ce nœud directement",
        )
        .into(),
        "private" => t(
            "private: behind NAT or a firewall; members reach it through relays",
            "privé : derrière un NAT ou un pare-feu ; les membres le joignent par des relais",
        )
        .into(),
        _ => t(
            "unknown (not yet asked of a peer on the internet)",
            "inconnue (pas encore demandée à un pair sur internet)",
        )
        .into(),
    }
}

/// The relays this node uses, and whether it relays for others.
pub fn relays_line(network: &passerelle_node::network::NetworkStatus) -> String {
    use crate::messages::{said, t};
    let using = if network.relays.is_empty() {
        t("no slot on a relay", "aucune place sur un relais").to_owned()
    } else {
        format!(
            "{} {}",
            t("slot on", "place sur"),
            network.relays.join(", ")
        )
    };
    if network.relay_serving {
        said(
            format!(
                "{using}; relaying for members: {} slots, {} circuits now ({} since start), {} refused",
                network.relay_reservations,
                network.relay_circuits,
                network.relay_circuits_served,
                network.relay_refused
            ),
            format!(
                "{using} ; relaie pour les membres : {} places, {} circuits maintenant ({} depuis le démarrage), {} refusés",
                network.relay_reservations,
                network.relay_circuits,
                network.relay_circuits_served,
                network.relay_refused
            ),
        )
    } else {
        format!(
            "{using}{}",
            t(
                "; not relaying for others",
                " ; ne relaie pas pour les autres"
            )
        )
    }
}

/// Writes a secret once (mode 0600, never over an existing file), on disk when it
/// returns; errors name the `secret_out` argument.
pub fn write_secret(path: &std::path::Path, text: &str) -> anyhow::Result<()> {
    write_new(path, "secret_out", format!("{text}\n").as_bytes(), 0o600)
}

/// Writes a new file (never over an existing one) with permission bits `mode`, on disk
/// when it returns; errors name the argument `field`.
pub fn write_new(
    path: &std::path::Path,
    field: &str,
    bytes: &[u8],
    mode: u32,
) -> anyhow::Result<()> {
    use anyhow::Context;
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .with_context(|| {
            format!(
                "{field}: creating {} (an existing file is never overwritten)",
                path.display()
            )
        })?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .with_context(|| format!("{field}: writing {}", path.display()))
}
