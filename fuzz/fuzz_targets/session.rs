//! Several connections through framing, sessions and replicas of the
//! directory: see `chatter_fuzz::sessions`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| chatter_fuzz::sessions(data));
