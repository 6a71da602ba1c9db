//! Compiles `src/bpf/vigil.bpf.c` (which includes the other `src/bpf/*.bpf.{h,c}`
//! parts) into a BPF object (CO-RE, against the
//! committed `include/<arch>/vmlinux.h`) that the crate embeds, and generates
//! the Rust view of the record layouts and constants in `src/bpf/vigil.h`
//! (`$OUT_DIR/records.rs`, bindgen) so the decoder cannot read a field at a
//! stale offset.

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
    records(&manifest);
    // vigil.bpf.c includes the other parts of the object from src/bpf
    println!("cargo:rerun-if-changed=src/bpf");
    println!("cargo:rerun-if-changed=include");
}

/// bindgen over vigil.h: the `ev_*` record structs and the `VG_*`/`VF_*`/`VO_*`/`VX_*`
/// constants, for the host's layout (the BPF target has the same sizes and
/// alignments for these plain integer structs; `decode.rs` asserts the sizes).
fn records(manifest: &std::path::Path) {
    let out = PathBuf::from(env::var("OUT_DIR").expect("OUT_DIR")).join("records.rs");
    let header = manifest.join("src/bpf/vigil.h");
    let prelude = format!(
        "typedef unsigned char __u8; typedef unsigned short __u16; typedef unsigned int __u32;\n\
         typedef unsigned long long __u64; typedef signed int __s32; typedef signed long long __s64;\n\
         #include \"{}\"\n",
        header.display()
    );
    bindgen::Builder::default()
        .header_contents("vigil_records.h", &prelude)
        .allowlist_type("ev_.*")
        .allowlist_var("V[GFOX]_.*")
        .derive_default(true)
        .layout_tests(false)
        .use_core()
        .generate()
        .expect("vigil-bpf: bindgen over src/bpf/vigil.h failed (needs libclang: apt-get install libclang-dev)")
        .write_to_file(&out)
        .expect("vigil-bpf: writing records.rs");
}
