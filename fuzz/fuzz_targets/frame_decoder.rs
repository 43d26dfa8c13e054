//! Feeds arbitrary bytes to the frame decoder, in chunks of a size taken from the input, with a
//! frame limit taken from the input. The decoder must never panic or loop (R3).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 3 {
        return;
    }
    let chunk = usize::from(data[0]).max(1);
    let max = usize::from(u16::from_le_bytes([data[1], data[2]])) * 8;
    let _ = casty::remote::fuzz_decode(&data[3..], max, chunk);
});
