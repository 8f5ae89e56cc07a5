#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| shaddock::fuzzing::socketio::v09_frames(data));
