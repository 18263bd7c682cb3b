//! What the sandbox denies, tried from inside: WASI 0.2 is linked, but a
//! handler gets no preopened directory, no environment, no network and no
//! stdin. Each test gives the host process the thing (a readable file, an
//! environment variable, listening sockets, data on stdin) and has the
//! `chaos` handler try to reach it. A chaos probe succeeds only when it was
//! refused, so a reload that applies is the proof; when the handler got
//! through, the event's message says what it obtained.

use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail, ensure};
use hotreload::{LimitOverrides, Outcome, Runtime};
use serde_json::json;

use crate::{message, reload, with_chaos};

/// Has chaos's `validate` run the probe `action`; an error unless the
/// attempt was refused.
async fn refused(rt: &Runtime, action: &str) -> Result<()> {
    let e = reload(rt, "chaos", json!({"validate": action})).await;
    ensure!(
        e.outcome == Outcome::Applied,
        "{action}: the handler was not refused ({:?}, {:?}): {}",
        e.outcome,
        e.cause,
        message(&e)
    );
    Ok(())
}

#[tokio::test]
async fn a_handler_reads_no_file_and_lists_no_directory() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let secret = dir.path().join("secret.txt");
    std::fs::write(&secret, "only the host may read this")?;
    // The host itself can read and list all of them.
    std::fs::read(&secret)?;
    std::fs::read_dir(dir.path())?;
    std::fs::read_dir(".")?;

    let rt = with_chaos(LimitOverrides::default()).await;
    refused(&rt, &format!("read_file:{}", secret.display())).await?;
    refused(&rt, "read_file:/etc/passwd").await?;
    // Relative to whatever the handler might take for its working directory.
    refused(&rt, "read_file:Cargo.toml").await?;
    refused(&rt, &format!("list_dir:{}", dir.path().display())).await?;
    refused(&rt, "list_dir:.").await?;
    refused(&rt, "list_dir:/").await?;
    Ok(())
}

#[tokio::test]
async fn a_handler_opens_no_socket_and_resolves_no_name() -> Result<()> {
    let tcp = TcpListener::bind("127.0.0.1:0")?;
    tcp.set_nonblocking(true)?;
    let udp = UdpSocket::bind("127.0.0.1:0")?;
    udp.set_nonblocking(true)?;
    // Both are reachable from the host: the host's own connection and
    // datagram arrive (and are taken, so only the handler's could be left).
    let _host = TcpStream::connect(tcp.local_addr()?)?;
    tcp.accept().context("the host's own connection")?;
    UdpSocket::bind("127.0.0.1:0")?.send_to(b"host", udp.local_addr()?)?;
    udp.recv_from(&mut [0; 16])
        .context("the host's own datagram")?;

    let rt = with_chaos(LimitOverrides::default()).await;
    refused(&rt, &format!("tcp_connect:{}", tcp.local_addr()?)).await?;
    refused(&rt, &format!("udp_send:{}", udp.local_addr()?)).await?;
    refused(&rt, "resolve:localhost").await?;

    // Loopback delivers at once: a connection or a datagram from the
    // handler would be waiting by now.
    match tcp.accept() {
        Err(e) if e.kind() == ErrorKind::WouldBlock => {}
        Ok((_, peer)) => bail!("the listener accepted a connection from {peer}"),
        Err(e) => return Err(e.into()),
    }
    match udp.recv_from(&mut [0; 16]) {
        Err(e) if e.kind() == ErrorKind::WouldBlock => {}
        Ok((_, peer)) => bail!("the UDP socket received a datagram from {peer}"),
        Err(e) => return Err(e.into()),
    }
    Ok(())
}

/// Set only in the child process of the test below, to a value the handler
/// must not see.
const SECRET_VAR: &str = "HOTRELOAD_SANDBOX_TEST_SECRET";
/// What the test below writes to its child's stdin.
const STDIN_DATA: &[u8] = "stdin of the host, not the handler's: 秘密\n".as_bytes();

/// The environment and stdin belong to the whole process, so the test runs
/// in a child process of its own that has both: a unique environment
/// variable and data on stdin.
#[tokio::test]
async fn a_handler_sees_neither_the_environment_nor_stdin_of_the_host() -> Result<()> {
    if let Some(secret) = std::env::var_os(SECRET_VAR) {
        return in_the_child(&secret.to_string_lossy()).await;
    }
    let this = "sandbox::a_handler_sees_neither_the_environment_nor_stdin_of_the_host";
    let mut child = Command::new(std::env::current_exe()?)
        .args([this, "--exact", "--nocapture", "--test-threads=1"])
        .env(SECRET_VAR, format!("secret-{}", std::process::id()))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    // Closing stdin after the data lets a handler that could read it finish.
    child
        .stdin
        .take()
        .context("the child's stdin")?
        .write_all(STDIN_DATA)?;
    let out = child.wait_with_output()?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    ensure!(
        out.status.success() && stdout.contains("test result: ok. 1 passed"),
        "the child process ({}):\n{stdout}\n{stderr}",
        out.status
    );
    Ok(())
}

async fn in_the_child(secret: &str) -> Result<()> {
    ensure!(secret.starts_with("secret-"), "{SECRET_VAR} is {secret:?}");
    let rt = with_chaos(LimitOverrides::default()).await;
    refused(&rt, &format!("read_env:{SECRET_VAR}")).await?;
    refused(&rt, "read_env:PATH").await?;
    refused(&rt, "list_env").await?;
    refused(&rt, "read_stdin").await?;
    // The data was there all along, and the handler took none of it.
    let mut stdin = Vec::new();
    std::io::stdin().read_to_end(&mut stdin)?;
    ensure!(
        stdin == STDIN_DATA,
        "the host's stdin: {}",
        String::from_utf8_lossy(&stdin)
    );
    Ok(())
}
