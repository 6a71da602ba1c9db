//! Compiles `src/bpf/vigil.bpf.c` into a BPF object (CO-RE, against the
//! committed `include/<arch>/vmlinux.h`) that the crate embeds.

use std::env;
use std::path::PathBuf;

use libbpf_cargo::SkeletonBuilder;

const SRC: &str = "src/bpf/vigil.bpf.c";

fn main() {
    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let out = PathBuf::from(env::var("OUT_DIR").expect("OUT_DIR")).join("vigil.bpf.o");
    let arch = env::var("CARGO_CFG_TARGET_ARCH").expect("CARGO_CFG_TARGET_ARCH");
    let (inc_arch, target_arch) = match arch.as_str() {
        "x86_64" => ("x86_64", "x86"),
        other => {
            panic!("vigil-bpf: no vmlinux.h for target arch {other} (only x86_64 is committed)")
        }
    };
    let include = manifest.join("include").join(inc_arch);
    SkeletonBuilder::new()
        .source(manifest.join(SRC))
        .obj(&out)
        .clang_args([
            "-I".into(),
            include.into_os_string(),
            format!("-D__TARGET_ARCH_{target_arch}").into(),
            "-Wall".into(),
            "-Wno-unused-function".into(),
        ])
        .build()
        .expect("vigil-bpf: compiling the BPF programs failed (needs clang)");
    println!("cargo:rerun-if-changed={SRC}");
    println!("cargo:rerun-if-changed=src/bpf/vigil.h");
    println!("cargo:rerun-if-changed=include");
}
