//! Compiles ../../proto with protox (pure Rust, no system protoc), generates the tonic
//! clients and servers, and writes the encoded `FileDescriptorSet` (`descriptors.bin` in
//! `OUT_DIR`) that server reflection serves.

use std::path::PathBuf;

use prost::Message;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?).join("../../proto");
    let files = [
        "authz/v1/login_flow.proto",
        "authz/v1/introspection.proto",
        "idp/v1/sessions.proto",
    ];
    for file in &files {
        println!("cargo:rerun-if-changed={}", root.join(file).display());
    }
    let fds = protox::compile(files, [&root])?;
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(out.join("descriptors.bin"), fds.encode_to_vec())?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(fds)?;
    Ok(())
}
