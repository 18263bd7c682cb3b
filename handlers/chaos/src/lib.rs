//! The `chaos` handler: a deliberately misbehaving handler for testing the
//! host's sandbox, support level `partial` (so the host asks `can-reload`
//! on every change, and `"can_reload": "fail"` makes a change restart-required).
//!
//! # Configuration
//!
//! A JSON object whose keys `validate`, `can_reload`, `reload` and `rollback`
//! name the action of the matching export (a missing key means `"ok"`). Any
//! other key is allowed and ignored, so a test can vary the configuration
//! (`{"n": 3}`) without changing behaviour.
//!
//! Text that is not a JSON object makes `validate` fail (message
//! `chaos: invalid JSON: ...` or `chaos: configuration must be a JSON object`,
//! no field); every other export treats it as `{}`.
//!
//! # Actions
//!
//! `<export>` below is the configuration key of the export (`can_reload`, not
//! `can-reload`).
//!
//! | action          | behaviour |
//! |-----------------|-----------|
//! | `ok`            | succeed: `validate` and `rollback` return Ok, `can-reload` true, `reload` `Ok(None)` |
//! | `fail`          | failure `chaos: <export> refused`, field `/<export>`, not transient |
//! | `transient:N`   | the first N calls of this export on this instance fail with `chaos: transient failure K of N` (K counts from 1), no field, transient; later calls succeed |
//! | `spin`          | loop forever without returning |
//! | `slow:MS`       | busy-wait MS milliseconds of monotonic time, then succeed |
//! | `oom`           | allocate and fill 1 MiB chunks forever, keeping them all, until growth is refused and the allocation failure aborts |
//! | `recurse`       | recurse without bound (1 KiB frames) until the stack overflows |
//! | `panic`         | `panic!("chaos handler panicked on purpose in <export>")`; std prints the message to stderr, then traps |
//! | `trap`          | execute the `unreachable` instruction |
//! | `non_json`      | `reload` only: return `Ok(Some("this is not json {"))`; elsewhere `ok` |
//! | `huge_output`   | `reload` only: return `Ok(Some(s))`, `s` a JSON string literal of exactly 2 MiB (`"xxx…x"`); elsewhere `ok` |
//! | `big_failure`   | failure whose message is exactly 1 MiB long, field `/<export>`, not transient |
//! | `print`         | print 1 KiB (1023 `x` and a newline) to stdout and the line `chaos: printing from <export>` to stderr, then succeed |
//! | `fail_after:T`  | succeed while the wall clock is before T (milliseconds since the Unix epoch), then fail like `fail`; lets a test make the configuration in force impossible to restore |
//! | `log_flood`     | call the host's `log` 100000 times at `info` (`chaos: log flood K of 100000`), then succeed |
//! | `fail_text:TEXT` | failure whose message is exactly TEXT (any text after the first colon, colons and non-ASCII included), field `/<export>`, not transient |
//! | `panic_text:TEXT` | `panic!("{TEXT}")`; std prints the message to stderr, then traps |
//!
//! ## Probes of the sandbox's denials
//!
//! Each tries one thing the host denies. It succeeds when the attempt was
//! refused (and logs `chaos: <what> refused: <error>` at `info`), and fails
//! like `fail`, but with a message saying what the handler obtained, when
//! the attempt worked. So a reload that applies is the proof of the denial.
//!
//! | action          | tries | fails with, when it worked |
//! |-----------------|-------|-------------|
//! | `read_file:PATH` | to read the file PATH | `chaos: read N bytes of PATH: <the first 64 bytes, lossy>` |
//! | `list_dir:PATH`  | to list the directory PATH | `chaos: listed PATH: <up to 8 names, comma-separated>` |
//! | `read_env:NAME`  | to read the environment variable NAME | `chaos: environment variable NAME is <value>` |
//! | `list_env`       | to list the environment variables and the arguments | `chaos: N environment variables (<names>) and M arguments` |
//! | `tcp_connect:ADDR` | to open a TCP connection to ADDR (`IP:PORT`) | `chaos: connected to ADDR over TCP` |
//! | `udp_send:ADDR`  | to bind a UDP socket to `0.0.0.0:0` and send `chaos` to ADDR | `chaos: bound a UDP socket at <local address> and sent a datagram to ADDR`, or `chaos: bound a UDP socket at <local address> (sending to ADDR: <error>)` when only the send was refused |
//! | `resolve:NAME`   | to resolve the host name NAME | `chaos: resolved NAME to [<addresses>]` |
//! | `read_stdin`     | to read stdin to its end | `chaos: read N bytes from stdin: <the first 64 bytes, lossy>` (reading nothing, or an error, counts as refused) |
//!
//! `can-reload` returns false for every action that would fail (`fail`,
//! `big_failure`, `fail_text:TEXT`, `transient:N` while it lasts, a probe
//! whose attempt worked).
//!
//! An unknown action (including one that is not a string, or a malformed
//! `transient:N`, `slow:MS`, `fail_after:T`, `tcp_connect:ADDR` or
//! `udp_send:ADDR`) makes `validate` fail with field `/<export>`
//! (message `chaos: unknown action <JSON value> for <export>`), whichever
//! export it belongs to; `validate` checks all four keys before running its
//! own action. The other exports treat an unknown action as `ok`.
//!
//! # Which configuration picks the action
//!
//! - `validate(config)`: `config`.
//! - `can-reload(old, new)`: `new`.
//! - `reload(old, new)`: `new`.
//! - `rollback(config)`: the most recent configuration passed to `validate`
//!   or `reload` on this instance (the candidate that failed), or `config`
//!   itself when neither has been called on this instance yet. So reloading
//!   `{"reload":"fail","rollback":"spin"}` makes the rollback that follows
//!   hang, while on a fresh instance the last good configuration decides.

wit_bindgen::generate!({ path: "../../wit", world: "handler" });

use core::hint::black_box;
use hotreload::handler::host::{LogLevel, log};
use serde_json::{Map, Value};
use std::io::Read;
use std::net::{SocketAddr, TcpStream, ToSocketAddrs, UdpSocket};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

#[derive(Clone, Copy)]
enum Export {
    Validate,
    CanReload,
    Reload,
    Rollback,
}

impl Export {
    const ALL: [Export; 4] = [
        Export::Validate,
        Export::CanReload,
        Export::Reload,
        Export::Rollback,
    ];

    /// The configuration key naming this export's action.
    fn key(self) -> &'static str {
        match self {
            Export::Validate => "validate",
            Export::CanReload => "can_reload",
            Export::Reload => "reload",
            Export::Rollback => "rollback",
        }
    }
}

#[derive(Clone)]
enum Action {
    Ok,
    Fail,
    Transient(u32),
    Spin,
    Slow(u64),
    FailAfter(u64),
    Oom,
    Recurse,
    Panic,
    Trap,
    NonJson,
    HugeOutput,
    BigFailure,
    Print,
    LogFlood,
    FailText(String),
    PanicText(String),
    ReadFile(String),
    ListDir(String),
    ReadEnv(String),
    ListEnv,
    TcpConnect(SocketAddr),
    UdpSend(SocketAddr),
    Resolve(String),
    ReadStdin,
}

impl Action {
    fn parse(action: &str) -> Option<Action> {
        Some(match action {
            "ok" => Action::Ok,
            "fail" => Action::Fail,
            "spin" => Action::Spin,
            "oom" => Action::Oom,
            "recurse" => Action::Recurse,
            "panic" => Action::Panic,
            "trap" => Action::Trap,
            "non_json" => Action::NonJson,
            "huge_output" => Action::HugeOutput,
            "big_failure" => Action::BigFailure,
            "print" => Action::Print,
            "log_flood" => Action::LogFlood,
            "list_env" => Action::ListEnv,
            "read_stdin" => Action::ReadStdin,
            _ => {
                let (name, argument) = action.split_once(':')?;
                let text = argument.to_owned();
                match name {
                    "transient" => Action::Transient(argument.parse().ok()?),
                    "slow" => Action::Slow(argument.parse().ok()?),
                    "fail_after" => Action::FailAfter(argument.parse().ok()?),
                    "fail_text" => Action::FailText(text),
                    "panic_text" => Action::PanicText(text),
                    "read_file" => Action::ReadFile(text),
                    "list_dir" => Action::ListDir(text),
                    "read_env" => Action::ReadEnv(text),
                    "tcp_connect" => Action::TcpConnect(argument.parse().ok()?),
                    "udp_send" => Action::UdpSend(argument.parse().ok()?),
                    "resolve" => Action::Resolve(text),
                    _ => return None,
                }
            }
        })
    }
}

/// Calls that returned a transient failure so far, per export.
static TRANSIENT_CALLS: [AtomicU32; 4] = [const { AtomicU32::new(0) }; 4];

/// The configuration last passed to `validate` or `reload`.
static CANDIDATE: Mutex<Option<String>> = Mutex::new(None);

fn remember(config: &str) {
    *CANDIDATE.lock().unwrap_or_else(PoisonError::into_inner) = Some(config.to_owned());
}

fn parse(config: &str) -> Result<Map<String, Value>, String> {
    match serde_json::from_str(config) {
        Ok(Value::Object(object)) => Ok(object),
        Ok(_) => Err("chaos: configuration must be a JSON object".into()),
        Err(e) => Err(format!("chaos: invalid JSON: {e}")),
    }
}

/// The action `object` names for `export`: `Some(Ok)` when missing, `None`
/// when unknown.
fn action_in(object: &Map<String, Value>, export: Export) -> Option<Action> {
    match object.get(export.key()) {
        None => Some(Action::Ok),
        Some(Value::String(action)) => Action::parse(action),
        Some(_) => None,
    }
}

/// The action `config` names for `export`, leniently: anything unreadable is `ok`.
fn action_for(config: &str, export: Export) -> Action {
    parse(config)
        .ok()
        .and_then(|object| action_in(&object, export))
        .unwrap_or(Action::Ok)
}

fn failure(message: String, field: Option<String>, transient: bool) -> Failure {
    Failure {
        message,
        field,
        transient,
    }
}

fn spin() -> ! {
    let mut n = 0u64;
    loop {
        n = black_box(n.wrapping_add(1));
    }
}

fn oom() -> ! {
    let mut chunks: Vec<Vec<u8>> = Vec::new();
    loop {
        let chunk = vec![0xa5u8; 1 << 20];
        chunks.push(black_box(chunk));
        black_box(&mut chunks);
    }
}

#[inline(never)]
fn recurse(depth: u64) -> u64 {
    let mut frame = [0u8; 1024];
    frame[0] = depth as u8;
    black_box(&mut frame);
    if black_box(depth) == u64::MAX {
        return 0;
    }
    let below = recurse(depth + 1);
    below.wrapping_add(u64::from(frame[black_box(0)]))
}

/// Performs `action` for `export`; reload-only actions are plain success here.
fn run(export: Export, action: Action) -> Result<(), Failure> {
    let key = export.key();
    match action {
        Action::Ok | Action::NonJson | Action::HugeOutput => Ok(()),
        Action::Fail => Err(failure(
            format!("chaos: {key} refused"),
            Some(format!("/{key}")),
            false,
        )),
        Action::Transient(n) => {
            let calls = &TRANSIENT_CALLS[export as usize];
            let k = calls.load(Ordering::Relaxed);
            if k < n {
                calls.store(k + 1, Ordering::Relaxed);
                Err(failure(
                    format!("chaos: transient failure {} of {n}", k + 1),
                    None,
                    true,
                ))
            } else {
                Ok(())
            }
        }
        Action::Spin => spin(),
        Action::Slow(ms) => {
            let start = Instant::now();
            let wait = Duration::from_millis(ms);
            while start.elapsed() < wait {
                std::hint::spin_loop();
            }
            Ok(())
        }
        Action::FailAfter(t) => {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis());
            if now < u128::from(t) {
                Ok(())
            } else {
                Err(failure(
                    format!("chaos: {key} refused after {t}"),
                    Some(format!("/{key}")),
                    false,
                ))
            }
        }
        Action::Oom => oom(),
        Action::Recurse => {
            black_box(recurse(0));
            Ok(())
        }
        Action::Panic => panic!("chaos handler panicked on purpose in {key}"),
        Action::Trap => core::arch::wasm32::unreachable(),
        Action::BigFailure => {
            let mut message = format!("chaos: big failure in {key} ");
            message.extend(std::iter::repeat_n('x', (1 << 20) - message.len()));
            Err(failure(message, Some(format!("/{key}")), false))
        }
        Action::Print => {
            println!("{}", "x".repeat(1023));
            eprintln!("chaos: printing from {key}");
            Ok(())
        }
        Action::LogFlood => {
            for k in 1..=100_000 {
                log(LogLevel::Info, &format!("chaos: log flood {k} of 100000"));
            }
            Ok(())
        }
        Action::FailText(text) => Err(failure(text, Some(format!("/{key}")), false)),
        Action::PanicText(text) => panic!("{text}"),
        Action::ReadFile(path) => denied(export, &format!("reading {path}"), read_file(&path)),
        Action::ListDir(path) => denied(export, &format!("listing {path}"), list_dir(&path)),
        Action::ReadEnv(name) => denied(
            export,
            &format!("reading the environment variable {name}"),
            match std::env::var_os(&name) {
                Some(value) => Ok(format!("environment variable {name} is {value:?}")),
                None => Err("it is not set"),
            },
        ),
        Action::ListEnv => denied(export, "listing the environment", list_env()),
        Action::TcpConnect(addr) => denied(
            export,
            &format!("connecting to {addr} over TCP"),
            TcpStream::connect(addr).map(|_| format!("connected to {addr} over TCP")),
        ),
        Action::UdpSend(addr) => denied(export, "binding a UDP socket", udp_send(addr)),
        Action::Resolve(name) => denied(
            export,
            &format!("resolving {name}"),
            (name.as_str(), 80).to_socket_addrs().map(|found| {
                let found: Vec<String> = found.map(|a| a.ip().to_string()).collect();
                format!("resolved {name} to [{}]", found.join(", "))
            }),
        ),
        Action::ReadStdin => denied(export, "reading stdin", read_stdin()),
    }
}

/// The end of a probe of a denial: success when the attempt was refused
/// (`Err`, logged), a failure naming what the handler obtained when it
/// worked (`Ok`).
fn denied(
    export: Export,
    what: &str,
    attempt: Result<String, impl std::fmt::Display>,
) -> Result<(), Failure> {
    match attempt {
        Err(refusal) => {
            log(LogLevel::Info, &format!("chaos: {what} refused: {refusal}"));
            Ok(())
        }
        Ok(obtained) => {
            let key = export.key();
            Err(failure(
                format!("chaos: {obtained}"),
                Some(format!("/{key}")),
                false,
            ))
        }
    }
}

/// The first bytes of what a probe obtained, for its failure message.
fn sample(bytes: &[u8]) -> String {
    String::from_utf8_lossy(&bytes[..bytes.len().min(64)]).into_owned()
}

fn read_file(path: &str) -> std::io::Result<String> {
    let bytes = std::fs::read(path)?;
    Ok(format!(
        "read {} bytes of {path}: {}",
        bytes.len(),
        sample(&bytes)
    ))
}

fn list_dir(path: &str) -> std::io::Result<String> {
    let names: Vec<String> = std::fs::read_dir(path)?
        .take(8)
        .map(|entry| match entry {
            Ok(entry) => entry.file_name().to_string_lossy().into_owned(),
            Err(e) => format!("<{e}>"),
        })
        .collect();
    Ok(format!("listed {path}: {}", names.join(", ")))
}

fn list_env() -> Result<String, &'static str> {
    let names: Vec<String> = std::env::vars_os()
        .map(|(name, _)| name.to_string_lossy().into_owned())
        .collect();
    let arguments = std::env::args_os().count();
    if names.is_empty() && arguments == 0 {
        return Err("there are no environment variables and no arguments");
    }
    Ok(format!(
        "{} environment variables ({}) and {arguments} arguments",
        names.len(),
        names.join(", ")
    ))
}

/// Binding alone is already more than a handler may do.
fn udp_send(addr: SocketAddr) -> std::io::Result<String> {
    let socket = UdpSocket::bind("0.0.0.0:0")?;
    let local = socket.local_addr()?;
    Ok(match socket.send_to(b"chaos", addr) {
        Ok(_) => format!("bound a UDP socket at {local} and sent a datagram to {addr}"),
        Err(e) => format!("bound a UDP socket at {local} (sending to {addr}: {e})"),
    })
}

fn read_stdin() -> Result<String, String> {
    let mut bytes = Vec::new();
    match std::io::stdin().read_to_end(&mut bytes) {
        Ok(0) => Err("stdin is empty".into()),
        Ok(n) => Ok(format!("read {n} bytes from stdin: {}", sample(&bytes))),
        Err(e) => Err(e.to_string()),
    }
}

struct Chaos;

impl Guest for Chaos {
    fn support_level() -> SupportLevel {
        SupportLevel::Partial
    }

    fn validate(config: String) -> Result<(), Failure> {
        remember(&config);
        let object = parse(&config).map_err(|message| failure(message, None, false))?;
        for export in Export::ALL {
            if action_in(&object, export).is_none() {
                let key = export.key();
                return Err(failure(
                    format!("chaos: unknown action {} for {key}", object[key]),
                    Some(format!("/{key}")),
                    false,
                ));
            }
        }
        run(
            Export::Validate,
            action_in(&object, Export::Validate).unwrap_or(Action::Ok),
        )
    }

    fn can_reload(_old_config: String, new_config: String) -> bool {
        run(
            Export::CanReload,
            action_for(&new_config, Export::CanReload),
        )
        .is_ok()
    }

    fn reload(_old_config: Option<String>, new_config: String) -> Result<Option<String>, Failure> {
        remember(&new_config);
        match action_for(&new_config, Export::Reload) {
            Action::NonJson => Ok(Some("this is not json {".into())),
            Action::HugeOutput => {
                let mut s = String::with_capacity(2 << 20);
                s.push('"');
                s.extend(std::iter::repeat_n('x', (2 << 20) - 2));
                s.push('"');
                Ok(Some(s))
            }
            action => run(Export::Reload, action).map(|()| None),
        }
    }

    fn rollback(config: String) -> Result<(), Failure> {
        let candidate = CANDIDATE
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let source = candidate.unwrap_or(config);
        run(Export::Rollback, action_for(&source, Export::Rollback))
    }
}

export!(Chaos);
