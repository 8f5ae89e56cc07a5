#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| shaddock::fuzzing::pomelo::protobuf_decode(data));
