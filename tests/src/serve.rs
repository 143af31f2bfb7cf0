//! The real `wasmhooks serve` binary as a child process, for end-to-end
//! tests and benchmarks.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};

/// `bin serve` on a free loopback port with `config` (TOML, written into
/// `dir`), its data under `dir/data`, and the given admin and ingest tokens.
pub fn command(bin: &str, dir: &Path, config: &str, admin: &str, ingest: &str) -> Command {
    let file = dir.join("wasmhooks.toml");
    std::fs::write(&file, config).expect("write the configuration");
    let mut command = Command::new(bin);
    command
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(&file)
        .arg("--data-dir")
        .arg(dir.join("data"))
        .env("WASMHOOKS_ADMIN_TOKENS", format!("[\"{admin}\"]"))
        .env("WASMHOOKS_INGEST_TOKENS", format!("[\"{ingest}\"]"));
    command
}

/// A running `wasmhooks serve`, killed and reaped when dropped.
pub struct Running {
    child: Option<Child>,
    /// Its base URL, `http://127.0.0.1:PORT`.
    pub url: String,
}

impl Running {
    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// SIGTERM, then wait for the process to exit.
    pub fn terminate(mut self) -> ExitStatus {
        let mut child = self.child.take().expect("running");
        let sent = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(sent.success(), "kill -TERM {}", child.id());
        child.wait().expect("wait for the server")
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Start `command` (a `wasmhooks serve` listening on a free port) and wait
/// for the address it prints. Its standard output keeps being drained, so
/// the server never blocks on a full pipe.
pub fn spawn(mut command: Command) -> Running {
    let mut child = command
        .stdout(Stdio::piped())
        .spawn()
        .expect("start wasmhooks serve");
    let mut lines = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
    let url = loop {
        let line = lines
            .next()
            .expect("the server printed its address before exiting")
            .expect("read the server's output");
        if let Some(url) = line.strip_prefix("wasmhooks listening on ") {
            break url.to_string();
        }
    };
    std::thread::spawn(move || lines.for_each(drop));
    Running {
        child: Some(child),
        url,
    }
}
