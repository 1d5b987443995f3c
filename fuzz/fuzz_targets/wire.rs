//! Framing, parsing and serialising: see `chatter_fuzz::wire`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| chatter_fuzz::wire(data));
