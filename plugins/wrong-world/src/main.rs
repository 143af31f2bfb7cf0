//! Test fixture: an ordinary WASI command. The host must refuse it as a
//! plugin because it does not export `wasmhooks:hook/handler`.

fn main() {
    println!("I am a command, not a hook");
}
