//! Ring-buffer record decoder (`vigil_bpf::decode::decode`): any bytes as a
//! record from the kernel -> RawEvent or DecodeError, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = vigil_bpf::decode::decode(data);
});
