#![no_main]
//! Arbitrary bytes as `target NUL patch`: JSON, merge and strategic merge patches.
use std::sync::OnceLock;

use skiff::api::openapi::OpenApi;

static OPENAPI: OnceLock<OpenApi> = OnceLock::new();

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let openapi = OPENAPI.get_or_init(|| OpenApi::build(&skiff::server::served_resources()));
    skiff::api::fuzzing::patch_object(data, openapi.schemas());
});
