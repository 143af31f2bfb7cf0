//! What the `wasmhooks:hook` world asks of a component, checked from its
//! types alone, before anything is compiled or stored: it validates, it
//! exports the handler interface with exactly the functions and types the
//! host calls, and it imports only what the world provides, with matching
//! types where the host's own interfaces are concerned (WASI's types are
//! checked by the linker when the component is compiled).
//!
//! The reference is the built-in JavaScript engine, which is built from the
//! same WIT package as every plugin and embedded in the binary.

use std::collections::BTreeSet;

use wasmtime::wasmparser::component_types::SubtypeCx;
use wasmtime::wasmparser::{Parser, Payload, Validator, WasmFeatures};

use super::error::PluginError;

/// The export the host calls.
pub const HANDLER: &str = "wasmhooks:hook/handler@0.1.0";

/// Import namespaces a plugin may use besides the host's own interfaces:
/// WASI (its clocks, random, I/O, CLI streams, and `wasi:http` for outbound
/// requests, which its grants police).
const WASI: &str = "wasi:";

/// The host's interfaces a plugin may import.
const HOST_INTERFACES: [&str; 4] = [
    "wasmhooks:hook/types@0.1.0",
    "wasmhooks:hook/config@0.1.0",
    "wasmhooks:hook/secrets@0.1.0",
    "wasmhooks:hook/log@0.1.0",
];

/// Validate `bytes` and check them against the hook world; `reference` is a
/// component known to implement it.
pub(crate) fn check(bytes: &[u8], reference: &[u8]) -> Result<(), PluginError> {
    if !Parser::is_component(bytes) {
        return Err(PluginError::InvalidComponent(
            "the bytes are not a WebAssembly component (a core module, or not wasm at all)".into(),
        ));
    }
    // Types can only be compared within one validator's context: the
    // reference goes first, then the upload.
    let mut validator = Validator::new_with_features(WasmFeatures::all());
    let reference = validator
        .validate_all(reference)
        .map_err(|e| PluginError::Host(format!("the reference component is invalid: {e}")))?;
    validator.reset();
    let types = validator
        .validate_all(bytes)
        .map_err(|e| PluginError::InvalidComponent(e.to_string()))?;
    let (found, expected) = (types.as_ref(), reference.as_ref());

    let Some(export) = found.component_item_for_export(HANDLER) else {
        return Err(PluginError::WrongWorld(format!(
            "it does not export `{HANDLER}`"
        )));
    };
    let wanted = expected
        .component_item_for_export(HANDLER)
        .ok_or_else(|| PluginError::Host(format!("the reference does not export `{HANDLER}`")))?;
    SubtypeCx::new_with_refs(found, expected)
        .component_entity_type(&export.ty, &wanted.ty, 0)
        .map_err(|e| {
            PluginError::WrongWorld(format!(
                "its export `{HANDLER}` does not match the world: {}",
                e.message()
            ))
        })?;

    for name in top_level_imports(bytes).map_err(PluginError::InvalidComponent)? {
        let is_host = HOST_INTERFACES.contains(&name.as_str());
        if !is_host && !name.starts_with(WASI) {
            return Err(PluginError::WrongWorld(format!(
                "it imports `{name}`, which the hook world does not provide (it provides {} and WASI)",
                HOST_INTERFACES.join(", ")
            )));
        }
        // WASI's interfaces share resources across instances, which cannot be
        // compared one import at a time; the linker checks them when the
        // component is compiled. The host's own interfaces are checked here.
        let (true, Some(import), Some(provided)) = (
            is_host,
            found.component_item_for_import(&name),
            expected.component_item_for_import(&name),
        ) else {
            continue;
        };
        // What the host provides must fit what the plugin expects.
        SubtypeCx::new_with_refs(expected, found)
            .component_entity_type(&provided.ty, &import.ty, 0)
            .map_err(|e| {
                PluginError::WrongWorld(format!(
                    "its import `{name}` does not match the world: {}",
                    e.message()
                ))
            })?;
    }
    Ok(())
}

/// The names the component itself imports (not its nested components').
fn top_level_imports(bytes: &[u8]) -> Result<BTreeSet<String>, String> {
    let mut names = BTreeSet::new();
    let mut depth = 0usize;
    for payload in Parser::new(0).parse_all(bytes) {
        match payload.map_err(|e| e.to_string())? {
            Payload::ModuleSection { .. } | Payload::ComponentSection { .. } => depth += 1,
            Payload::End(_) => depth = depth.saturating_sub(1),
            Payload::ComponentImportSection(reader) if depth == 0 => {
                for import in reader {
                    names.insert(import.map_err(|e| e.to_string())?.name.name.to_string());
                }
            }
            _ => {}
        }
    }
    Ok(names)
}
