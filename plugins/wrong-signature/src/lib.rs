//! Test fixture: exports `wasmhooks:hook/handler@0.1.0` whose `handle` is
//! `func(event: string) -> string`. The host must refuse it at upload,
//! naming the mismatch, rather than fail every call.

// The generated export glue is `unsafe` ABI code, as in the SDK.
#![allow(unsafe_code)]

wit_bindgen::generate!({ path: "wit", world: "wrong-signature" });

struct Fixture;

impl exports::wasmhooks::hook::handler::Guest for Fixture {
    fn handle(event: String) -> String {
        event
    }
}

export!(Fixture);
