//! Sessions (a random token in a cookie, each with its CSRF token) and the sign-in limiter.
//!
//! Kept in memory: a restart of the node signs everyone out, which is what a shared office
//! computer wants anyway.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::HeaderMap;
use passerelle_node::accounts::Role;

/// A session ends after this long without a request.
pub const IDLE: Duration = Duration::from_secs(30 * 60);
/// A session ends this long after sign-in, whatever happens.
pub const LONGEST: Duration = Duration::from_secs(12 * 3600);
/// Failed sign-ins (per account name, or per address) before sign-in is refused for
/// [`LOCKOUT`].
pub const MAX_FAILURES: u32 = 5;
/// How long sign-in stays refused after [`MAX_FAILURES`] failures in a row.
pub const LOCKOUT: Duration = Duration::from_secs(15 * 60);
/// The session cookie.
pub const COOKIE: &str = "passerelle_session";
/// The cookie carrying the sign-in form's CSRF token (before there is a session).
pub const LOGIN_COOKIE: &str = "passerelle_login";
/// The cookie carrying the language the visitor chose.
pub const LANG_COOKIE: &str = "passerelle_lang";

/// A random token: 32 bytes, base64url.
pub fn token() -> String {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the operating system's random source");
    data_encoding::BASE64URL_NOPAD.encode(&bytes)
}

/// One signed-in visitor.
#[derive(Debug, Clone)]
pub struct Session {
    /// The account's name.
    pub account: String,
    /// Its role when it signed in (checked again against the accounts at every request).
    pub role: Role,
    /// The token every form of this session carries.
    pub csrf: String,
    started: Instant,
    last_seen: Instant,
}

/// The open sessions.
#[derive(Debug, Default)]
pub struct Sessions {
    open: Mutex<HashMap<String, Session>>,
}

impl Sessions {
    /// Opens a session for `account`; its cookie token.
    pub fn open(&self, account: &str, role: Role) -> String {
        let now = Instant::now();
        let key = token();
        let mut open = self.open.lock().expect("sessions");
        open.retain(|_, s| alive(s, now));
        open.insert(
            key.clone(),
            Session {
                account: account.to_owned(),
                role,
                csrf: token(),
                started: now,
                last_seen: now,
            },
        );
        key
    }

    /// The session of `key`, if it is open (and now seen).
    pub fn get(&self, key: &str) -> Option<Session> {
        let now = Instant::now();
        let mut open = self.open.lock().expect("sessions");
        match open.get_mut(key) {
            Some(session) if alive(session, now) => {
                session.last_seen = now;
                Some(session.clone())
            }
            Some(_) => {
                open.remove(key);
                None
            }
            None => None,
        }
    }

    /// Ends the session of `key`.
    pub fn close(&self, key: &str) {
        self.open.lock().expect("sessions").remove(key);
    }
}

fn alive(session: &Session, now: Instant) -> bool {
    now.duration_since(session.last_seen) < IDLE && now.duration_since(session.started) < LONGEST
}

/// Failed sign-ins, by account name and by address.
#[derive(Debug, Default)]
pub struct Limiter {
    failures: Mutex<HashMap<String, (u32, Option<Instant>)>>,
}

impl Limiter {
    /// How long until sign-in is accepted again for these keys, if it is refused now.
    pub fn locked(&self, keys: &[String]) -> Option<Duration> {
        let now = Instant::now();
        let failures = self.failures.lock().expect("limiter");
        keys.iter()
            .filter_map(|k| failures.get(k))
            .filter_map(|(_, until)| until.and_then(|u| u.checked_duration_since(now)))
            .max()
    }

    /// Counts a failure for each key; locks those that reach [`MAX_FAILURES`].
    pub fn failed(&self, keys: &[String]) {
        let now = Instant::now();
        let mut failures = self.failures.lock().expect("limiter");
        for key in keys {
            let entry = failures.entry(key.clone()).or_insert((0, None));
            if entry.1.is_some_and(|until| until <= now) {
                *entry = (0, None);
            }
            entry.0 += 1;
            if entry.0 >= MAX_FAILURES {
                entry.1 = Some(now + LOCKOUT);
            }
        }
    }

    /// Forgets the failures of these keys (a sign-in succeeded).
    pub fn succeeded(&self, keys: &[String]) {
        let mut failures = self.failures.lock().expect("limiter");
        for key in keys {
            failures.remove(key);
        }
    }
}

/// The value of cookie `name` in the request's headers.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

/// A `Set-Cookie` value: `HttpOnly`, `SameSite=Strict`, `Secure`, for `path`; `max_age`
/// 0 removes it.
pub fn set_cookie(name: &str, value: &str, path: &str, max_age: Duration) -> String {
    format!(
        "{name}={value}; Path={path}; Max-Age={}; HttpOnly; SameSite=Strict; Secure",
        max_age.as_secs()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn five_failures_lock_sign_in_and_a_success_forgets_them() {
        let limiter = Limiter::default();
        let keys = vec!["name:amina".to_owned(), "ip:127.0.0.1".to_owned()];
        for _ in 0..MAX_FAILURES - 1 {
            limiter.failed(&keys);
            assert_eq!(limiter.locked(&keys), None);
        }
        limiter.failed(&keys);
        assert!(limiter.locked(&keys).is_some_and(|d| d > LOCKOUT / 2));
        assert!(limiter.locked(&["ip:127.0.0.1".to_owned()]).is_some());
        limiter.succeeded(&keys);
        assert_eq!(limiter.locked(&keys), None);
    }

    #[test]
    fn sessions_open_close_and_carry_their_own_csrf_token() {
        let sessions = Sessions::default();
        let key = sessions.open("amina", Role::Officer);
        let session = sessions.get(&key).expect("open");
        assert_eq!(session.account, "amina");
        let other = sessions.open("amina", Role::Officer);
        assert_ne!(sessions.get(&other).expect("open").csrf, session.csrf);
        sessions.close(&key);
        assert!(sessions.get(&key).is_none());
        assert!(sessions.get("forged").is_none());
    }
}
