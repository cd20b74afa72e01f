//! A real browser for the web page's tests: Debian's Chromium, headless, driven through
//! WebDriver (its ChromeDriver) with fantoccini. `.ci/run` installs the packages `chromium`
//! and `chromium-driver`; `tests/build.rs` sets `cfg(passerelle_browser)` when both run.
//!
//! Chromium is started as the machine's probe found it must be here (as root, no network):
//! headless, no sandbox, no GPU, no QUIC, no first-run page, no background networking or
//! component updates or sync (without those it tries Google's hosts at every start), a new
//! empty profile folder each time.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};

/// The browser, its driver, and where the test writes its screenshots.
#[derive(Debug)]
pub struct Browser {
    /// The WebDriver session.
    pub client: Client,
    driver: Child,
    _profile: tempfile::TempDir,
    shots: PathBuf,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

impl Browser {
    /// Starts ChromeDriver and a headless Chromium session; screenshots go to `shots`.
    pub async fn start(shots: &Path) -> Self {
        std::fs::create_dir_all(shots).expect("screenshots folder");
        let port = free_port();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver (apt install chromium-driver)");
        let profile = tempfile::tempdir().expect("profile folder");
        let mut capabilities = serde_json::Map::new();
        capabilities.insert(
            "goog:chromeOptions".into(),
            serde_json::json!({
                "binary": "/usr/bin/chromium",
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync",
                    "--disable-dev-shm-usage", "--window-size=1280,900",
                    format!("--user-data-dir={}", profile.path().display()),
                ],
            }),
        );
        let url = format!("http://127.0.0.1:{port}");
        let mut client = None;
        for _ in 0..100 {
            let connector = hyper_util::client::legacy::connect::HttpConnector::new();
            match ClientBuilder::new(connector)
                .capabilities(capabilities.clone())
                .connect(&url)
                .await
            {
                Ok(c) => {
                    client = Some(c);
                    break;
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
        Self {
            client: client.expect("a WebDriver session with Chromium"),
            driver,
            _profile: profile,
            shots: shots.to_owned(),
        }
    }

    /// Opens `url`.
    pub async fn open(&self, url: &str) {
        self.client.goto(url).await.expect("open the page");
    }

    /// The text of the first element matching `css`.
    pub async fn text(&self, css: &str) -> String {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{css}: {e}"))
            .text()
            .await
            .expect("text")
    }

    /// The whole page's visible text.
    pub async fn body(&self) -> String {
        self.text("body").await
    }

    /// The current value of the field `css` (what is typed in it).
    pub async fn value(&self, css: &str) -> String {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{css}: {e}"))
            .prop("value")
            .await
            .unwrap_or_else(|e| panic!("{css} value: {e}"))
            .unwrap_or_default()
    }

    /// The WCAG 2 A and AA rules the page breaks, as axe-core (`tests/a11y`, installed by
    /// `npm ci --prefix tests/a11y`) finds them in this browser: one line per rule, with
    /// the elements at fault; empty when none.
    pub async fn accessibility_problems(&self) -> Vec<String> {
        let axe =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("a11y/node_modules/axe-core/axe.min.js");
        let source = std::fs::read_to_string(&axe).unwrap_or_else(|e| {
            panic!(
                "{}: {e} (npm ci --prefix tests/a11y installs axe-core)",
                axe.display()
            )
        });
        self.client
            .execute(&format!("{source}\nreturn true;"), vec![])
            .await
            .expect("load axe-core");
        let found = self
            .client
            .execute_async(
                "var done = arguments[arguments.length - 1];
                 axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] } })
                   .then(function (r) {
                     done(r.violations.map(function (v) {
                       return v.id + ' (' + v.impact + '): ' + v.help + ' — ' +
                         v.nodes.map(function (n) { return n.target.join(' '); }).join(', ');
                     }));
                   })
                   .catch(function (e) { done(['axe failed: ' + e]); });",
                vec![],
            )
            .await
            .expect("run axe-core");
        serde_json::from_value(found).expect("axe's findings")
    }

    /// Answers yes to the questions this page asks before a form is sent (`data-confirm`).
    pub async fn accept_confirmations(&self) {
        self.client
            .execute("window.confirm = function () { return true; };", vec![])
            .await
            .expect("answer the page's confirmations");
    }

    /// Types `value` into the field `css` (cleared first).
    pub async fn fill(&self, css: &str, value: &str) {
        let field = self
            .client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{css}: {e}"));
        field.clear().await.expect("clear");
        field.send_keys(value).await.expect("type");
    }

    /// Chooses the option `value` of the select `css`.
    pub async fn choose(&self, css: &str, value: &str) {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{css}: {e}"))
            .select_by_value(value)
            .await
            .unwrap_or_else(|e| panic!("{css} = {value}: {e}"));
    }

    /// Clicks the first element matching `css`.
    pub async fn click(&self, css: &str) {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{css}: {e}"))
            .click()
            .await
            .unwrap_or_else(|e| panic!("click {css}: {e}"));
    }

    /// Clicks the first element matching `css` — a link or a form's button — and waits
    /// until the next page has loaded (a click returns before the browser has left the
    /// page it was on).
    pub async fn follow(&self, css: &str) {
        self.client
            .execute("window.passerellePageBefore = true;", vec![])
            .await
            .expect("mark the page");
        self.click(css).await;
        for _ in 0..200 {
            let left = self
                .client
                .execute(
                    "return window.passerellePageBefore !== true && document.readyState === 'complete';",
                    vec![],
                )
                .await
                .ok()
                .and_then(|v| v.as_bool())
                .unwrap_or(false);
            if left {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("clicking {css} did not load another page");
    }

    /// The current address.
    pub async fn url(&self) -> String {
        self.client.current_url().await.expect("url").to_string()
    }

    /// Writes a screenshot of the page as `name.png` in the screenshots folder.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let png = self.client.screenshot().await.expect("screenshot");
        let path = self.shots.join(format!("{name}.png"));
        std::fs::write(&path, png).expect("write the screenshot");
        path
    }

    /// Ends the session and the driver.
    pub async fn close(mut self) {
        let _ = self.client.clone().close().await;
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
