//! External tools a test needs (npm, python3 and what they install): is
//! one present, where its installs live, and running it with its output
//! shown on failure. A test that cannot find one skips that part on a
//! developer's machine and fails in CI, which runs everything.

use std::path::PathBuf;
use std::process::Command;

/// Whether `command --version` runs here.
pub fn present(command: &str) -> bool {
    Command::new(command)
        .arg("--version")
        .output()
        .is_ok_and(|out| out.status.success())
}

/// Report that `what` is missing: a failure in CI, a skip elsewhere.
pub fn skip_without(what: &str) {
    assert!(
        std::env::var_os("CI").is_none(),
        "CI runs every test: {what} is needed"
    );
    eprintln!("skipped: {what} is missing");
}

/// Where `package` (a pinned requirement) installed by `installer` lives:
/// under the target directory, so it is installed once per build tree.
pub(crate) fn install_dir(installer: &str, package: &str) -> PathBuf {
    let name: String = package
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    crate::target_dir().join(installer).join(name)
}

/// Run `command`; panic with its output, naming `what`, if it fails.
pub fn run(command: &mut Command, what: &str) {
    let out = command.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed: {}\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
