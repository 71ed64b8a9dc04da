#![no_main]
use libfuzzer_sys::fuzz_target;
fuzz_target!(|data: &[u8]| roomcast_core::fuzzing::stomp_decode(data));
