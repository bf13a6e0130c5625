#![no_main]
//! Arbitrary bytes as a manifest stream: decode, normalise, default, validate.
libfuzzer_sys::fuzz_target!(|data: &[u8]| skiff::api::fuzzing::decode_manifest(data));
