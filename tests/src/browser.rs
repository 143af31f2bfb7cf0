//! A real headless Chromium, driven over WebDriver by Debian's
//! `chromedriver`, for the console's browser tests.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub use fantoccini;
use fantoccini::{Client, ClientBuilder};

/// Where Debian's packages put the browser and its driver.
const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "chromedriver";

/// A browser session; the driver (and with it the browser) ends on drop.
pub struct Browser {
    /// The WebDriver client.
    pub client: Client,
    driver: Child,
    _profile: tempfile::TempDir,
}

/// Start Chromium headless at `width`×`height`, or `None` (a skip outside
/// CI, a failure in CI) when Chromium or its driver is not installed.
pub async fn start(width: u32, height: u32) -> Option<Browser> {
    if !crate::tools::present(CHROMEDRIVER) || !std::path::Path::new(CHROMIUM).exists() {
        crate::tools::skip_without(
            "Chromium and chromedriver (Debian's chromium, chromium-driver)",
        );
        return None;
    }
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let driver = Command::new(CHROMEDRIVER)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromedriver");
    let url = format!("http://127.0.0.1:{port}");
    let profile = tempfile::tempdir().expect("a browser profile directory");
    let capabilities = serde_json::json!({
        "goog:chromeOptions": {
            "binary": CHROMIUM,
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-quic", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--hide-scrollbars",
                format!("--window-size={width},{height}"),
                format!("--user-data-dir={}", profile.path().display()),
            ]
        }
    });
    let capabilities = match capabilities {
        serde_json::Value::Object(map) => map,
        _ => unreachable!("an object"),
    };
    let mut last_error = None;
    for _ in 0..100 {
        match ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(capabilities.clone())
            .connect(&url)
            .await
        {
            Ok(client) => {
                return Some(Browser {
                    client,
                    driver,
                    _profile: profile,
                })
            }
            // The driver is still starting.
            Err(e) => last_error = Some(e),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("chromedriver did not start a session: {last_error:?}");
}

impl Browser {
    /// End the session, which closes the browser, then the driver.
    pub async fn close(self) {
        let _ = self.client.clone().close().await;
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
