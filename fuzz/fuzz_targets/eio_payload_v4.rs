#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| shaddock::fuzzing::socketio::eio_payload_v4(data));
