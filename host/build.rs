//! Builds the built-in JavaScript engine (`plugins/js`) to wasm32-wasip2 so
//! the host can embed it: a snippet then needs nothing but the binary.

use std::path::Path;

fn main() {
    let manifest = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let root = Path::new(&manifest)
        .parent()
        .expect("host/ sits in the workspace root");
    let out = std::env::var("OUT_DIR").expect("cargo sets OUT_DIR");
    // OUT_DIR is <target>/<profile>/build/<crate>-<hash>/out.
    let target = Path::new(&out)
        .ancestors()
        .nth(4)
        .expect("OUT_DIR lies inside the target directory");
    for watched in [
        "plugins/js",
        "plugin-sdk/src",
        "plugin-sdk/wit",
        "Cargo.lock",
    ] {
        println!("cargo:rerun-if-changed={}", root.join(watched).display());
    }
    let built = wasmhooks_build::build(root, &wasmhooks_build::wasm_dir(target), &["js"])
        .unwrap_or_else(|e| panic!("building the JavaScript engine: {e}"));
    println!(
        "cargo:rustc-env=WASMHOOKS_JS_ENGINE={}",
        built.join("js.wasm").display()
    );
}
