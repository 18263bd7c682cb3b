//! What a handler's store holds: WASI denied by default, the host `log`
//! import, captured output, the memory limiter and the call's deadline.

use std::sync::Arc;
use std::time::Instant;

use wasmtime::ResourceLimiter;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::bindings::{LogLevel, v1, v2};
use super::output::CapturedOutput;
use crate::settings::Limits;
use crate::text::cut_at_char_boundary;

/// Longest host log line kept; the rest of a line is cut.
const LOG_LINE_BYTES: usize = 4096;

pub(crate) struct HostState {
    /// WASI, built on the handler's first WASI call: most calls of most
    /// handlers make none, and building it (clocks, random generators, the
    /// denied network) is a good part of a fresh instance's cost.
    wasi: Option<WasiCtx>,
    /// For a replay: the clock WASI starts at.
    replay_clock: Option<std::time::SystemTime>,
    table: ResourceTable,
    pub(crate) limiter: MemoryLimiter,
    pub(crate) stdout: CapturedOutput,
    pub(crate) stderr: CapturedOutput,
    pub(crate) log: CallLog,
    /// When the current call must end; checked by the epoch callback.
    pub(crate) deadline: Instant,
    /// The current call's deadline as the watchdog knows it.
    pub(crate) armed: Option<super::watchdog::Armed>,
}

/// The WASI a handler sees: no preopens, no environment, no arguments, no
/// stdin, no sockets; stdout and stderr captured; for a replay, clocks and
/// random numbers that are the same every time.
fn wasi(
    stdout: &CapturedOutput,
    stderr: &CapturedOutput,
    replay_clock: Option<std::time::SystemTime>,
) -> WasiCtx {
    let mut builder = WasiCtx::builder();
    builder
        .stdout(stdout.clone())
        .stderr(stderr.clone())
        .allow_tcp(false)
        .allow_udp(false)
        .allow_ip_name_lookup(false)
        .socket_addr_check(|_, _| Box::pin(async { false }));
    if let Some(start) = replay_clock {
        let since_epoch = start
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        builder
            .wall_clock(SteppingWall(std::cell::Cell::new(since_epoch)))
            .monotonic_clock(SteppingMonotonic(std::cell::Cell::new(0)))
            .secure_random(wasmtime_wasi::Deterministic::new((0..=255).collect()))
            .insecure_random(wasmtime_wasi::Deterministic::new((0..=255).rev().collect()))
            .insecure_random_seed(0);
    }
    builder.build()
}

impl HostState {
    pub(crate) fn new(
        component: Arc<str>,
        limits: &Limits,
        replay_clock: Option<std::time::SystemTime>,
    ) -> Self {
        HostState {
            wasi: None,
            replay_clock,
            table: ResourceTable::new(),
            limiter: MemoryLimiter::new(limits.memory_bytes),
            stdout: CapturedOutput::new(limits.captured_output_bytes),
            stderr: CapturedOutput::new(limits.captured_output_bytes),
            log: CallLog {
                component,
                max_lines: limits.log_lines_per_call,
                lines: 0,
                dropped: 0,
            },
            deadline: Instant::now(),
            armed: None,
        }
    }
}

/// A replay's wall clock: starts at the event's time, one microsecond later
/// at every reading.
struct SteppingWall(std::cell::Cell<std::time::Duration>);

impl wasmtime_wasi::HostWallClock for SteppingWall {
    fn resolution(&self) -> std::time::Duration {
        std::time::Duration::from_micros(1)
    }
    fn now(&self) -> std::time::Duration {
        let now = self.0.get() + std::time::Duration::from_micros(1);
        self.0.set(now);
        now
    }
}

/// A replay's monotonic clock: from 0, one microsecond later at every reading.
struct SteppingMonotonic(std::cell::Cell<u64>);

impl wasmtime_wasi::HostMonotonicClock for SteppingMonotonic {
    fn resolution(&self) -> u64 {
        1_000
    }
    fn now(&self) -> u64 {
        let now = self.0.get() + 1_000;
        self.0.set(now);
        now
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        let ctx = self
            .wasi
            .get_or_insert_with(|| wasi(&self.stdout, &self.stderr, self.replay_clock));
        WasiCtxView {
            ctx,
            table: &mut self.table,
        }
    }
}

impl v1::hotreload::handler::types::Host for HostState {}

impl v1::hotreload::handler::host::Host for HostState {
    fn log(&mut self, level: LogLevel, message: String) {
        self.log.write(level, message);
    }
}

impl v2::hotreload::handler::types::Host for HostState {}

impl v2::hotreload::handler::host::Host for HostState {
    fn log(&mut self, level: v2::hotreload::handler::host::LogLevel, message: String) {
        use v2::hotreload::handler::host::LogLevel as L;
        let level = match level {
            L::Trace => LogLevel::Trace,
            L::Debug => LogLevel::Debug,
            L::Info => LogLevel::Info,
            L::Warn => LogLevel::Warn,
            L::Error => LogLevel::Error,
        };
        self.log.write(level, message);
    }
}

/// The host `log` import's per-call budget.
pub(crate) struct CallLog {
    component: Arc<str>,
    max_lines: u32,
    pub(crate) lines: u32,
    pub(crate) dropped: u32,
}

impl CallLog {
    pub(crate) fn component(&self) -> &str {
        &self.component
    }

    pub(crate) fn reset(&mut self) {
        self.lines = 0;
        self.dropped = 0;
    }

    fn write(&mut self, level: LogLevel, mut message: String) {
        if self.lines >= self.max_lines {
            self.dropped += 1;
            return;
        }
        self.lines += 1;
        if message.len() > LOG_LINE_BYTES {
            let kept = cut_at_char_boundary(&message, LOG_LINE_BYTES).len();
            message.truncate(kept);
            message.push('…');
        }
        let component = &*self.component;
        match level {
            LogLevel::Trace => tracing::trace!(target: "handler", component, "{message}"),
            LogLevel::Debug => tracing::debug!(target: "handler", component, "{message}"),
            LogLevel::Info => tracing::info!(target: "handler", component, "{message}"),
            LogLevel::Warn => tracing::warn!(target: "handler", component, "{message}"),
            LogLevel::Error => tracing::error!(target: "handler", component, "{message}"),
        }
    }
}

/// Caps linear memory and tables of a whole store (wasmtime's `StoreLimits`
/// caps each memory on its own) and remembers a refusal, so a handler whose
/// language turns the refusal into its own abort is still reported as
/// `memory_limit`.
pub(crate) struct MemoryLimiter {
    limit: u64,
    used: u64,
    pub(crate) refused: bool,
}

/// Each table element is counted as this many bytes against the budget.
const TABLE_ELEMENT_BYTES: u64 = 8;

impl MemoryLimiter {
    fn new(limit: u64) -> Self {
        MemoryLimiter {
            limit,
            used: 0,
            refused: false,
        }
    }

    fn grow(&mut self, extra: u64) -> bool {
        match self.used.checked_add(extra) {
            Some(total) if total <= self.limit => {
                self.used = total;
                true
            }
            _ => {
                self.refused = true;
                false
            }
        }
    }
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(self.grow(desired.saturating_sub(current) as u64))
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(self.grow(desired.saturating_sub(current) as u64 * TABLE_ELEMENT_BYTES))
    }

    // A growth the limiter allowed can still fail further down (the pooling
    // allocator's slot sizes): that is the memory limit too.
    fn memory_grow_failed(&mut self, _error: wasmtime::Error) -> wasmtime::Result<()> {
        self.refused = true;
        Ok(())
    }

    fn table_grow_failed(&mut self, _error: wasmtime::Error) -> wasmtime::Result<()> {
        self.refused = true;
        Ok(())
    }
}
