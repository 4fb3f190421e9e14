//! For the services' integration tests that run their real binary: start-up observed from
//! the outside, as an operator sees it.

use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

/// How long start-up, readiness and shutdown may each take.
const PATIENCE: Duration = Duration::from_secs(60);

/// Runs `cmd` (a `<service> serve` command) until its admin `/readyz` answers 200, which
/// means start-up work such as seeding is over, then stops it with SIGTERM as an operator
/// would. Returns every line it printed on stdout and its stderr; fails when it exits
/// before announcing its listeners (`<service> listening … admin=ADDR`), is not ready in
/// time, or does not exit with status 0 after SIGTERM.
pub async fn serve_until_ready(
    service: &str,
    mut cmd: tokio::process::Command,
) -> Result<(Vec<String>, String), String> {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = cmd.spawn().map_err(|e| format!("spawn {service}: {e}"))?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let mut out = Vec::new();
    let mut admin = None;
    let prefix = format!("{service} listening ");
    while let Some(line) = tokio::time::timeout(PATIENCE, lines.next_line())
        .await
        .map_err(|_| format!("{service} printed no listening line: {out:?}"))?
        .map_err(|e| e.to_string())?
    {
        out.push(line.clone());
        if let Some(rest) = line.strip_prefix(&prefix) {
            admin = rest
                .split_whitespace()
                .find_map(|p| p.strip_prefix("admin="))
                .map(str::to_owned);
            break;
        }
    }
    let Some(admin) = admin else {
        let output = child.wait_with_output().await.map_err(|e| e.to_string())?;
        return Err(format!(
            "{service} exited before listening: {out:?} {}",
            String::from_utf8_lossy(&output.stderr)
        ));
    };
    let deadline = Instant::now() + PATIENCE;
    while !ready(&admin).await {
        if Instant::now() >= deadline {
            return Err(format!("{service} not ready: {out:?}"));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let pid = child.id().ok_or("exited")?.to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .map_err(|e| e.to_string())?;
    if !killed.success() {
        return Err(format!("kill -TERM {pid} failed"));
    }
    while let Some(line) = lines.next_line().await.map_err(|e| e.to_string())? {
        out.push(line);
    }
    let output = tokio::time::timeout(PATIENCE, child.wait_with_output())
        .await
        .map_err(|_| format!("{service} did not stop on SIGTERM"))?
        .map_err(|e| e.to_string())?;
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    if !output.status.success() {
        return Err(format!("{service} exited with {}: {stderr}", output.status));
    }
    Ok((out, stderr))
}

/// Whether `GET http://{admin}/readyz` answers 200.
async fn ready(admin: &str) -> bool {
    let Ok(mut stream) = tokio::net::TcpStream::connect(admin).await else {
        return false;
    };
    let request = format!("GET /readyz HTTP/1.1\r\nhost: {admin}\r\nconnection: close\r\n\r\n");
    if stream.write_all(request.as_bytes()).await.is_err() {
        return false;
    }
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).await.is_ok() && head.ends_with(b" 200")
}

/// A gRPC codec of raw bytes, for tests that send what a client that does not speak
/// protobuf sends (malformed or arbitrary messages) and read answers undecoded.
#[derive(Debug, Clone, Copy, Default)]
pub struct RawCodec;

/// The encoder of [`RawCodec`]: writes the bytes as they are.
#[derive(Debug)]
pub struct RawEncoder;

/// The decoder of [`RawCodec`]: hands back the message bytes as they are.
#[derive(Debug)]
pub struct RawDecoder;

impl tonic::codec::Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawEncoder;
    type Decoder = RawDecoder;

    fn encoder(&mut self) -> RawEncoder {
        RawEncoder
    }

    fn decoder(&mut self) -> RawDecoder {
        RawDecoder
    }
}

impl tonic::codec::Encoder for RawEncoder {
    type Item = Vec<u8>;
    type Error = tonic::Status;

    fn encode(
        &mut self,
        item: Vec<u8>,
        dst: &mut tonic::codec::EncodeBuf<'_>,
    ) -> Result<(), tonic::Status> {
        prost::bytes::BufMut::put_slice(dst, &item);
        Ok(())
    }
}

impl tonic::codec::Decoder for RawDecoder {
    type Item = Vec<u8>;
    type Error = tonic::Status;

    fn decode(
        &mut self,
        src: &mut tonic::codec::DecodeBuf<'_>,
    ) -> Result<Option<Vec<u8>>, tonic::Status> {
        let n = prost::bytes::Buf::remaining(src);
        Ok(Some(prost::bytes::Buf::copy_to_bytes(src, n).to_vec()))
    }
}
