//! The sandbox: one wasmtime engine per runtime, compiled handlers, and
//! disposable instances whose every call runs under fuel, a wall-time
//! deadline and a memory cap.

mod bindings;
mod host;
mod instance;
mod output;
mod watchdog;

use std::sync::Arc;

use sha2::{Digest, Sha256};
use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

pub(crate) use self::host::HostState;
pub(crate) use self::instance::{CallError, HandlerInstance};
use self::watchdog::Watchdog;
use crate::error::Error;

/// How the engine instruments handler code. Both are on in production;
/// turning one off is for measuring what it costs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SandboxOptions {
    /// Count fuel, so `fuel` limits are enforced.
    pub consume_fuel: bool,
    /// Check the epoch, so wall-time deadlines are enforced.
    pub epoch_interruption: bool,
}

impl Default for SandboxOptions {
    fn default() -> Self {
        SandboxOptions {
            consume_fuel: true,
            epoch_interruption: true,
        }
    }
}

/// The engine, the linker every handler is linked against, and the epoch
/// watchdog. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Sandbox {
    inner: Arc<SandboxInner>,
}

struct SandboxInner {
    engine: Engine,
    linker: Linker<HostState>,
    options: SandboxOptions,
    watchdog: Option<Watchdog>,
}

/// A handler compiled and linked once, ready to be instantiated many times.
pub(crate) struct CompiledHandler {
    pre: bindings::HandlerPre<HostState>,
    /// SHA-256 of the handler's bytes, hex.
    pub(crate) hash: String,
}

/// The largest linear memory a handler may ever have (wasm32's own limit);
/// the per-store limiter enforces the configured, much smaller, cap.
const MEMORY_CEILING: usize = 4 << 30;

impl Sandbox {
    pub(crate) fn new(options: SandboxOptions) -> Result<Sandbox, Error> {
        let mut pool = PoolingAllocationConfig::new();
        pool.total_component_instances(512)
            .total_core_instances(4096)
            .total_memories(512)
            .total_tables(512)
            .max_core_instances_per_component(64)
            .max_memories_per_component(16)
            .max_tables_per_component(16)
            .max_memory_size(MEMORY_CEILING)
            .table_elements(200_000);
        let mut config = Config::new();
        config
            .wasm_component_model(true)
            .consume_fuel(options.consume_fuel)
            .epoch_interruption(options.epoch_interruption)
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        let engine = Engine::new(&config).map_err(|e| Error::Engine(format!("{e:#}")))?;

        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)
            .map_err(|e| Error::Engine(format!("linking WASI: {e:#}")))?;
        bindings::Handler::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |s| s)
            .map_err(|e| Error::Engine(format!("linking the host interface: {e:#}")))?;

        let watchdog = if options.epoch_interruption {
            Some(Watchdog::start(&engine).map_err(|e| Error::Engine(e.to_string()))?)
        } else {
            None
        };
        Ok(Sandbox {
            inner: Arc::new(SandboxInner {
                engine,
                linker,
                options,
                watchdog,
            }),
        })
    }

    /// Compiles and links a handler, checking that it is a component that
    /// exports the handler world and imports nothing the host lacks.
    pub(crate) fn compile(&self, bytes: &[u8]) -> Result<CompiledHandler, String> {
        check_component_header(bytes)?;
        let component = Component::from_binary(&self.inner.engine, bytes)
            .map_err(|e| format!("not a valid WebAssembly component: {e:#}"))?;
        let instance_pre = self.inner.linker.instantiate_pre(&component).map_err(|e| {
            format!(
                "it imports something this host does not provide ({e:#}); a handler may import only \
                 hotreload:handler/host@0.1.0 and WASI 0.2 interfaces"
            )
        })?;
        let pre = bindings::HandlerPre::new(instance_pre).map_err(|e| {
            format!("it does not export the world hotreload:handler/handler@0.1.0 ({e:#})")
        })?;
        Ok(CompiledHandler {
            pre,
            hash: hex_sha256(bytes),
        })
    }

    fn engine(&self) -> &Engine {
        &self.inner.engine
    }
}

pub(crate) fn hex_sha256(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    let mut out = String::with_capacity(64);
    for b in digest {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// `Component::new` would try the text format on non-wasm bytes and report a
/// UTF-8 error; say plainly what the file is instead.
fn check_component_header(bytes: &[u8]) -> Result<(), String> {
    const MAGIC: &[u8] = b"\0asm";
    const CORE_MODULE: [u8; 4] = [1, 0, 0, 0];
    if bytes.len() < 8 || &bytes[..4] != MAGIC {
        return Err(format!(
            "not a WebAssembly binary: it does not start with the \\0asm magic number ({} bytes)",
            bytes.len()
        ));
    }
    if bytes[4..8] == CORE_MODULE {
        return Err(
            "a core WebAssembly module, not a component: make it a component with \
             `wasm-tools component new`"
                .into(),
        );
    }
    if bytes[6..8] != [1, 0] {
        return Err(format!(
            "not a WebAssembly component: unknown binary layer {:?}",
            &bytes[4..8]
        ));
    }
    Ok(())
}
