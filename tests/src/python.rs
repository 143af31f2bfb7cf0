//! Python tools from PyPI, each installed once into its own virtual
//! environment under the cargo target directory, so a test that needs one
//! installs it itself.

use std::path::PathBuf;
use std::process::Command;

use crate::tools::{install_dir, present, run};

/// The path of `command` from `requirement` (a pinned pip requirement such
/// as `schemathesis==4.32.5`), installing it on first use. `None` when the
/// machine has no `python3`.
pub fn tool(requirement: &str, command: &str) -> Option<PathBuf> {
    if !present("python3") {
        return None;
    }
    let venv = install_dir("python", requirement);
    let bin = venv.join("bin").join(command);
    let installed = venv.join("installed");
    if std::fs::read_to_string(&installed).is_ok_and(|r| r == requirement) && bin.exists() {
        return Some(bin);
    }
    run(
        Command::new("python3").args(["-m", "venv"]).arg(&venv),
        "creating a virtual environment",
    );
    run(
        Command::new(venv.join("bin").join("pip")).args([
            "install",
            "--quiet",
            "--disable-pip-version-check",
            requirement,
        ]),
        &format!("pip install {requirement}"),
    );
    std::fs::write(&installed, requirement).expect("mark the environment installed");
    Some(bin)
}
