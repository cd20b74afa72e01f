//! Notifications outside the page (`[notify]`), for offices that want them:
//!
//! - a **webhook**: when this organisation's counts change (new incoming referrals, case
//!   files received, referrals to answer within 24 h, overdue ones, offers on its open
//!   referrals), the node POSTs them as JSON to the URL; a failed call is logged and tried
//!   again at the next check, until it lands;
//! - a **daily digest** by e-mail through the office's SMTP server, at `digest_at` (07:00,
//!   Cameroon's time, by default), when something waits: the same counts and the ids of the
//!   referrals to answer. A digest that cannot be sent is tried again every
//!   [`DIGEST_RETRY`] until it is.
//!
//! Both carry referral ids and counts only, never personal data: what a case file holds
//! stays on the node, behind the page's sign-in.

use std::path::Path;
use std::time::Duration;

use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use passerelle_node::config::NotifySection;
use passerelle_node::node::NodeHandle;
use passerelle_node::reference::Lang;
use serde::Serialize;
use tokio::sync::watch;

use crate::pages::events::{Counts, counts};

/// How often the counts are read for the webhook and the digest's time checked.
pub const EVERY: Duration = Duration::from_secs(30);
/// How long after a failed digest it is tried again.
pub const DIGEST_RETRY: Duration = Duration::from_secs(10 * 60);
/// The longest a webhook call or an SMTP exchange may take.
pub const TIMEOUT: Duration = Duration::from_secs(20);
/// Who the node's reads are recorded as in the audit log.
const BY: &str = "notify";

/// Why `[notify]` cannot be used: the key, the value and what is accepted.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    /// A key's value is not accepted.
    #[error("[notify] {key}: {value:?}: {why}")]
    Setting {
        /// The key.
        key: &'static str,
        /// Its value (a password never shown).
        value: String,
        /// What is accepted.
        why: String,
    },
    /// The digest could not be sent.
    #[error("the digest could not be sent: {0}")]
    Send(String),
    /// The node could not be read.
    #[error("the node could not be read: {0}")]
    Node(String),
}

fn setting(key: &'static str, value: &str, why: impl Into<String>) -> NotifyError {
    NotifyError::Setting {
        key,
        value: value.to_owned(),
        why: why.into(),
    }
}

/// The daily digest: where it goes and when.
#[derive(Clone)]
pub struct Digest {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    server: String,
    from: Mailbox,
    to: Vec<Mailbox>,
    /// Minutes after local midnight.
    at: u32,
    /// Minutes east of UTC.
    offset: i32,
}

impl std::fmt::Debug for Digest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Digest")
            .field("server", &self.server)
            .field("from", &self.from.to_string())
            .field("to", &self.to.len())
            .field("at", &self.at)
            .field("offset", &self.offset)
            .finish()
    }
}

impl std::fmt::Display for Digest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let sign = if self.offset < 0 { '-' } else { '+' };
        let offset = self.offset.unsigned_abs();
        write!(
            f,
            "daily digest at {:02}:{:02} (UTC{sign}{:02}:{:02}) to {} recipient(s) through {}",
            self.at / 60,
            self.at % 60,
            offset / 60,
            offset % 60,
            self.to.len(),
            self.server
        )
    }
}

/// What `[notify]` asks for.
#[derive(Debug, Clone)]
pub struct NotifyConfig {
    /// The webhook's URL.
    pub webhook: Option<url::Url>,
    /// The digest.
    pub digest: Option<Digest>,
    /// How often the counts are read.
    pub every: Duration,
    /// The language of the digest.
    pub lang: Lang,
    /// The page's address, given in the digest.
    pub page: Option<String>,
}

/// `HH:MM` as minutes after midnight.
fn clock(text: &str) -> Option<u32> {
    let (h, m) = text.trim().split_once(':')?;
    let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    (h < 24 && m < 60).then_some(h * 60 + m)
}

/// `+01:00`, `-03:30`, `Z` as minutes east of UTC.
fn offset(text: &str) -> Option<i32> {
    let text = text.trim();
    if text.eq_ignore_ascii_case("z") || text == "0" {
        return Some(0);
    }
    let (sign, rest) = match text.as_bytes().first()? {
        b'+' => (1, &text[1..]),
        b'-' => (-1, &text[1..]),
        _ => return None,
    };
    let minutes = clock(rest)? as i32;
    (minutes <= 14 * 60).then_some(sign * minutes)
}

/// The Unix time of the next digest after `now`: at `at` minutes after midnight, `offset`
/// minutes east of UTC.
pub fn next_digest(now: i64, at: u32, offset: i32) -> i64 {
    let shift = i64::from(offset) * 60;
    let local = now + shift;
    let mut next = local.div_euclid(86_400) * 86_400 + i64::from(at) * 60;
    if next <= local {
        next += 86_400;
    }
    next - shift
}

impl NotifyConfig {
    /// Reads `[notify]`; `None` when it asks for nothing. Relative paths are read from
    /// `data_dir`.
    pub fn from_section(
        section: &NotifySection,
        lang: Lang,
        data_dir: &Path,
    ) -> Result<Option<Self>, NotifyError> {
        let webhook = match &section.webhook {
            None => None,
            Some(text) => {
                let url = url::Url::parse(text.trim()).map_err(|e| {
                    setting(
                        "webhook",
                        text,
                        format!("{e}; e.g. https://intranet.ong.cm/passerelle"),
                    )
                })?;
                if !matches!(url.scheme(), "http" | "https") {
                    return Err(setting("webhook", text, "an http:// or https:// URL"));
                }
                Some(url)
            }
        };
        let digest = match &section.smtp {
            None => {
                if section.to.is_some() || section.from.is_some() {
                    return Err(setting(
                        "smtp",
                        "",
                        "from and to are given but not the SMTP server (smtp = \"smtp://user@mail.example.cm:587\")",
                    ));
                }
                None
            }
            Some(text) => Some(digest(section, text, data_dir)?),
        };
        if webhook.is_none() && digest.is_none() {
            return Ok(None);
        }
        Ok(Some(Self {
            webhook,
            digest,
            every: EVERY,
            lang,
            page: None,
        }))
    }
}

fn digest(section: &NotifySection, text: &str, data_dir: &Path) -> Result<Digest, NotifyError> {
    let mut url = url::Url::parse(text.trim()).map_err(|e| {
        setting(
            "smtp",
            text,
            format!("{e}; e.g. smtp://user@mail.example.cm:587 or smtps://user@mail.example.cm"),
        )
    })?;
    let shown = {
        let mut shown = url.clone();
        let _ = shown.set_password(None);
        shown.to_string()
    };
    if !matches!(url.scheme(), "smtp" | "smtps") {
        return Err(setting("smtp", &shown, "an smtp:// or smtps:// URL"));
    }
    let password = match &section.smtp_password_file {
        Some(file) => {
            let path = data_dir.join(file);
            let text = std::fs::read_to_string(&path).map_err(|e| {
                setting(
                    "smtp_password_file",
                    &path.display().to_string(),
                    format!("cannot be read: {e}"),
                )
            })?;
            Some(text.trim_end_matches(['\n', '\r']).to_owned())
        }
        None => url.password().map(percent_decode),
    };
    let user = percent_decode(url.username());
    let _ = url.set_password(None);
    let _ = url.set_username("");
    // STARTTLS is required on smtp:// to any host but this computer.
    let local = url.host_str().is_some_and(|h| {
        h == "localhost"
            || h.parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    });
    if url.scheme() == "smtp" && !local && url.query().is_none() {
        url.set_query(Some("tls=required"));
    }
    let mut builder = AsyncSmtpTransport::<Tokio1Executor>::from_url(url.as_str())
        .map_err(|e| setting("smtp", &shown, e.to_string()))?
        .timeout(Some(TIMEOUT));
    if !user.is_empty() {
        builder = builder.credentials(Credentials::new(user, password.unwrap_or_default()));
    }
    let from = section.from.as_deref().ok_or_else(|| {
        setting(
            "from",
            "",
            "the digest's sender address, e.g. passerelle@ong.cm",
        )
    })?;
    let from: Mailbox = from
        .parse()
        .map_err(|e| setting("from", from, format!("{e}: an e-mail address")))?;
    let to = section
        .to
        .as_deref()
        .filter(|to| !to.is_empty())
        .ok_or_else(|| {
            setting(
                "to",
                "",
                "the digest's recipients, e.g. [\"coordination@ong.cm\"]",
            )
        })?
        .iter()
        .map(|address| {
            address
                .parse::<Mailbox>()
                .map_err(|e| setting("to", address, format!("{e}: an e-mail address")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let at_text = section.digest_at.as_deref().unwrap_or("07:00");
    let at = clock(at_text).ok_or_else(|| setting("digest_at", at_text, "a time of day, HH:MM"))?;
    let offset_text = section.utc_offset.as_deref().unwrap_or("+01:00");
    let offset = offset(offset_text)
        .ok_or_else(|| setting("utc_offset", offset_text, "an offset from UTC, e.g. +01:00"))?;
    Ok(Digest {
        transport: builder.build(),
        server: shown,
        from,
        to,
        at,
        offset,
    })
}

fn percent_decode(text: &str) -> String {
    url::form_urlencoded::parse(format!("x={}", text.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// What the webhook receives.
#[derive(Debug, Serialize)]
pub struct WebhookCall<'a> {
    /// This organisation.
    pub organisation: String,
    /// When (Unix time).
    pub at: i64,
    /// The counts and the ids of the referrals waiting for an answer.
    pub counts: &'a Counts,
}

/// The notifier, running.
#[derive(Debug)]
pub struct RunningNotifier {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl RunningNotifier {
    /// Stops it.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

/// Starts the webhook and the digest for the node of `handle`.
pub fn start(handle: NodeHandle, config: NotifyConfig) -> RunningNotifier {
    let (stop, mut stopped) = watch::channel(false);
    let task = tokio::spawn(async move {
        let client = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .user_agent(concat!("passerelle/", env!("CARGO_PKG_VERSION")))
            .build();
        let client = match client {
            Ok(client) => client,
            Err(e) => {
                tracing::warn!(error = %e, "notifications: no HTTP client; the webhook is off");
                return;
            }
        };
        let mut delivered: Option<Counts> = None;
        let mut next = config
            .digest
            .as_ref()
            .map(|d| next_digest(passerelle_node::unix_now(), d.at, d.offset));
        if let (Some(digest), Some(next)) = (&config.digest, next) {
            tracing::info!(server = %digest.server, next, "daily digest by e-mail");
        }
        loop {
            if let Some(url) = &config.webhook {
                match counts(&handle, BY).await {
                    Ok(now) if delivered.as_ref() != Some(&now) => {
                        match call_webhook(&client, url, &handle, &now).await {
                            Ok(()) => delivered = Some(now),
                            Err(why) => tracing::warn!(
                                host = url.host_str().unwrap_or(""),
                                %why,
                                "the webhook was not reached; tried again at the next check"
                            ),
                        }
                    }
                    Ok(_) => {}
                    Err(e) => {
                        tracing::warn!(error = %e.message, "notifications: the board could not be read")
                    }
                }
            }
            if let (Some(digest), Some(when)) = (&config.digest, next)
                && passerelle_node::unix_now() >= when
            {
                next = Some(match send_digest(&handle, digest, &config).await {
                    Ok(_) => next_digest(passerelle_node::unix_now(), digest.at, digest.offset),
                    Err(e) => {
                        tracing::warn!(error = %e, "the daily digest was not sent; tried again later");
                        passerelle_node::unix_now() + DIGEST_RETRY.as_secs() as i64
                    }
                });
            }
            tokio::select! {
                _ = tokio::time::sleep(config.every) => {}
                _ = stopped.wait_for(|s| *s) => return,
            }
        }
    });
    RunningNotifier { stop, task }
}

async fn call_webhook(
    client: &reqwest::Client,
    url: &url::Url,
    handle: &NodeHandle,
    counts: &Counts,
) -> Result<(), String> {
    let call = WebhookCall {
        organisation: handle.org_id().to_string(),
        at: passerelle_node::unix_now(),
        counts,
    };
    let answer = client
        .post(url.clone())
        .json(&call)
        .send()
        .await
        .map_err(|e| e.without_url().to_string())?;
    if answer.status().is_success() {
        Ok(())
    } else {
        Err(format!("answered {}", answer.status()))
    }
}

/// The digest's subject and text, in `lang`: counts and ids only.
pub fn digest_text(
    org_name: &str,
    counts: &Counts,
    lang: Lang,
    page: Option<&str>,
) -> (String, String) {
    let t = |fr: &'static str, en: &'static str| lang.pick(en, fr);
    let subject = format!(
        "Passerelle — {org_name} : {} {}, {} {}",
        counts.incoming,
        t("orientation(s) à traiter", "referral(s) to answer"),
        counts.overdue,
        t("en retard", "overdue")
    );
    let mut text = format!(
        "Passerelle — {org_name}\n\n{} : {}\n",
        t(
            "Orientations reçues en attente de réponse",
            "Incoming referrals waiting for an answer"
        ),
        counts.incoming
    );
    for id in &counts.incoming_ids {
        text.push_str(&format!("  {id}\n"));
    }
    for (label, n) in [
        (
            t("Dossiers reçus", "Case files received"),
            counts.case_files,
        ),
        (
            t("À traiter sous 24 h", "To answer within 24 h"),
            counts.due_soon,
        ),
        (t("En retard", "Overdue"), counts.overdue),
        (
            t(
                "Propositions sur vos orientations ouvertes",
                "Offers on your open referrals",
            ),
            counts.proposals,
        ),
    ] {
        text.push_str(&format!("{label} : {n}\n"));
    }
    text.push('\n');
    if let Some(page) = page {
        text.push_str(&format!(
            "{} {page}\n",
            t("Ouvrez la page :", "Open the page:")
        ));
    }
    text.push_str(t(
        "Ce message ne contient aucune donnée personnelle : les dossiers se lisent sur la page de Passerelle, après connexion.\n",
        "This message holds no personal data: case files are read on Passerelle's page, after signing in.\n",
    ));
    (subject, text)
}

/// Sends the digest now, when something waits; `Ok(false)` when nothing does (no mail).
pub async fn send_digest(
    handle: &NodeHandle,
    digest: &Digest,
    config: &NotifyConfig,
) -> Result<bool, NotifyError> {
    let counts = counts(handle, BY)
        .await
        .map_err(|e| NotifyError::Node(e.message))?;
    if counts.incoming == 0 && counts.overdue == 0 && counts.proposals == 0 {
        return Ok(false);
    }
    let name = handle
        .organisation(None)
        .await
        .map(|view| view.record.profile.name)
        .map_err(|e| NotifyError::Node(e.to_string()))?;
    let (subject, text) = digest_text(&name, &counts, config.lang, config.page.as_deref());
    let mut message = Message::builder()
        .from(digest.from.clone())
        .subject(subject);
    for to in &digest.to {
        message = message.to(to.clone());
    }
    let message = message
        .body(text)
        .map_err(|e| NotifyError::Send(e.to_string()))?;
    digest
        .transport
        .send(message)
        .await
        .map_err(|e| NotifyError::Send(e.to_string()))?;
    tracing::info!(server = %digest.server, incoming = counts.incoming, "daily digest sent");
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_digest_leaves_at_its_hour_in_cameroons_time() {
        // 2026-12-07 05:30 UTC is 06:30 in Douala: the digest leaves at 06:00 UTC, today.
        let now = 1_796_601_600 + 5 * 3600 + 30 * 60;
        assert_eq!(next_digest(now, 7 * 60, 60), 1_796_601_600 + 6 * 3600);
        // At 07:00 in Douala, the next one is tomorrow's.
        let seven = 1_796_601_600 + 6 * 3600;
        assert_eq!(next_digest(seven, 7 * 60, 60), seven + 86_400);
        // Late evening UTC, already the next day in a time zone east of it.
        assert_eq!(
            next_digest(1_796_601_600 + 23 * 3600, 7 * 60, 120),
            1_796_601_600 + 86_400 + 5 * 3600
        );
        assert_eq!(clock("7:05"), Some(425));
        assert_eq!(clock("24:00"), None);
        assert_eq!(offset("+01:00"), Some(60));
        assert_eq!(offset("-03:30"), Some(-210));
        assert_eq!(offset("Z"), Some(0));
        assert_eq!(offset("01:00"), None);
    }

    #[test]
    fn settings_are_read_or_refused_with_the_key_and_what_is_accepted() {
        let dir = std::path::Path::new("/nonexistent");
        let read = |section: NotifySection| NotifyConfig::from_section(&section, Lang::Fr, dir);
        assert!(read(NotifySection::default()).expect("nothing").is_none());
        let webhook = read(NotifySection {
            webhook: Some("https://intranet.ong.cm/hook".into()),
            ..Default::default()
        })
        .expect("webhook")
        .expect("on");
        assert!(webhook.webhook.is_some() && webhook.digest.is_none());
        let e = read(NotifySection {
            webhook: Some("ftp://x".into()),
            ..Default::default()
        })
        .expect_err("ftp");
        assert!(e.to_string().contains("[notify] webhook"), "{e}");
        let e = read(NotifySection {
            smtp: Some("smtp://amina:secret@mail.ong.cm:587".into()),
            from: Some("passerelle@ong.cm".into()),
            to: Some(vec!["pas une adresse".into()]),
            ..Default::default()
        })
        .expect_err("bad recipient");
        assert!(
            e.to_string().contains("[notify] to: \"pas une adresse\""),
            "{e}"
        );
        let digest = read(NotifySection {
            smtp: Some("smtp://amina:secret@mail.ong.cm:587".into()),
            from: Some("passerelle@ong.cm".into()),
            to: Some(vec!["coordination@ong.cm".into()]),
            digest_at: Some("06:30".into()),
            ..Default::default()
        })
        .expect("digest")
        .expect("on");
        let shown = format!("{:?}", digest.digest.expect("digest"));
        assert!(!shown.contains("secret"), "{shown}");
        let e = read(NotifySection {
            smtp: Some("smtp://mail.ong.cm".into()),
            from: Some("passerelle@ong.cm".into()),
            to: Some(vec!["coordination@ong.cm".into()]),
            digest_at: Some("7h".into()),
            ..Default::default()
        })
        .expect_err("7h");
        assert!(
            e.to_string().contains("digest_at: \"7h\": a time of day"),
            "{e}"
        );
    }

    #[test]
    fn the_digest_holds_counts_and_ids_in_the_officers_language() {
        let counts = Counts {
            incoming: 2,
            incoming_ids: vec![],
            case_files: 1,
            due_soon: 1,
            overdue: 1,
            proposals: 0,
        };
        let (subject, text) = digest_text("ONG Avenir", &counts, Lang::Fr, None);
        assert_eq!(
            subject,
            "Passerelle — ONG Avenir : 2 orientation(s) à traiter, 1 en retard"
        );
        assert!(text.contains("En retard : 1"), "{text}");
        let (subject, _) = digest_text("ONG Avenir", &counts, Lang::En, None);
        assert!(subject.contains("2 referral(s) to answer"), "{subject}");
    }
}
