//! Compiled components cached on disk, keyed by the content hash of the
//! component and the engine's compatibility hash, so a restart (or a second
//! host on the same machine) never compiles the same plugin twice.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::component::Component;
use wasmtime::Engine;

use super::error::PluginError;

/// Where a loaded plugin's machine code came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// Compiled now (and written to the cache when there is one).
    Compiled,
    /// Read back from the on-disk cache: no compilation.
    Cache,
}

/// The hex SHA-256 of a component's bytes: its identity.
pub fn content_hash(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Compile `bytes`, or load the result of an earlier compilation from `dir`.
pub(crate) fn load(
    engine: &Engine,
    dir: Option<&Path>,
    bytes: &[u8],
    hash: &str,
) -> Result<(Component, Origin), PluginError> {
    let Some(dir) = dir else {
        return Ok((compile(engine, bytes)?, Origin::Compiled));
    };
    let path = entry_path(engine, dir, hash);
    if path.exists() {
        match deserialize(engine, &path) {
            Ok(component) => return Ok((component, Origin::Cache)),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "unusable cache entry; recompiling")
            }
        }
    }
    let component = compile(engine, bytes)?;
    if let Err(e) = store(&component, dir, &path) {
        tracing::warn!(path = %path.display(), error = %e, "could not write the compiled-plugin cache");
    }
    Ok((component, Origin::Compiled))
}

fn compile(engine: &Engine, bytes: &[u8]) -> Result<Component, PluginError> {
    if wasmtime::wasmparser::Parser::is_core_wasm(bytes) {
        return Err(PluginError::InvalidComponent(
            "this is a core WebAssembly module; plugins must be components (build for wasm32-wasip2, \
             or wrap the module with `wasm-tools component new`)"
                .into(),
        ));
    }
    if !wasmtime::wasmparser::Parser::is_component(bytes) {
        return Err(PluginError::InvalidComponent(
            "the bytes do not start with the WebAssembly component header".into(),
        ));
    }
    Component::new(engine, bytes).map_err(|e| PluginError::InvalidComponent(format!("{e:#}")))
}

fn entry_path(engine: &Engine, dir: &Path, hash: &str) -> PathBuf {
    let mut hasher = DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut hasher);
    dir.join(format!("{hash}-{:016x}.cwasm", hasher.finish()))
}

#[allow(unsafe_code)]
fn deserialize(engine: &Engine, path: &Path) -> wasmtime::Result<Component> {
    // SAFETY: the cache directory belongs to this host; entries are written
    // only by `store` below from components this engine compiled, and the
    // file name carries the engine's compatibility hash, so a file is only
    // read back by an engine that can run it.
    unsafe { Component::deserialize_file(engine, path) }
}

fn store(component: &Component, dir: &Path, path: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let bytes = component.serialize().map_err(std::io::Error::other)?;
    // Write then rename, so a crash never leaves a half-written entry.
    let tmp = tempfile::NamedTempFile::new_in(dir)?;
    std::fs::write(tmp.path(), bytes)?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}
