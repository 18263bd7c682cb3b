//! The sandbox: one wasmtime engine per runtime, compiled handlers, and
//! disposable instances whose every call runs under fuel, a wall-time
//! deadline and a memory cap.

mod bindings;
mod cache;
mod host;
mod instance;
mod output;
mod watchdog;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use sha2::{Digest, Sha256};
use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use self::cache::CodeCache;
pub(crate) use self::host::HostState;
pub use self::instance::CallFailure;
pub(crate) use self::instance::{
    CallReport, FAILURE_TEXT_BYTES, HandlerInstance, bound_failure, bound_output,
};
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
    /// Where compiled handlers are kept across restarts, if anywhere.
    cache: Option<CodeCache>,
    /// Deterministic clocks and random numbers, for a replay.
    pub(crate) replay_clock: Option<std::time::SystemTime>,
}

/// How to build a sandbox.
#[derive(Debug, Clone)]
pub(crate) struct SandboxConfig {
    pub(crate) options: SandboxOptions,
    /// Handler instances that can be live at once.
    pub(crate) pool_instances: u32,
    pub(crate) cache_dir: Option<PathBuf>,
    pub(crate) cache_max_bytes: u64,
    /// For a replay: handlers see clocks that start at this time and
    /// advance one microsecond per reading, and fixed random bytes.
    pub(crate) replay_clock: Option<std::time::SystemTime>,
}

/// A handler compiled and linked once, ready to be instantiated many times.
pub(crate) struct CompiledHandler {
    pre: Pre,
    /// SHA-256 of the handler's bytes, hex.
    pub(crate) hash: String,
    /// The handler's bytes, kept so a commit can store them by hash.
    pub(crate) wasm: Arc<[u8]>,
}

/// The pre-linked exports of either contract.
enum Pre {
    V1(bindings::v1::HandlerPre<HostState>),
    V2(bindings::v2::HandlerPre<HostState>),
}

/// A handler compiled but not yet linked.
pub(crate) struct LoadedHandler {
    component: Component,
    /// SHA-256 of the handler's bytes, hex.
    pub(crate) hash: String,
    wasm: Arc<[u8]>,
}

/// The largest linear memory a handler may ever have (wasm32's own limit);
/// the per-store limiter enforces the configured, much smaller, cap.
const MEMORY_CEILING: usize = 4 << 30;

impl Sandbox {
    pub(crate) fn new(cfg: SandboxConfig) -> Result<Sandbox, Error> {
        let options = cfg.options;
        let instances = cfg.pool_instances.max(1);
        let mut pool = PoolingAllocationConfig::new();
        // Every limit scales with the instances that can be live at once.
        // A component instance of a Rust handler holds a handful of core
        // instances (the handler, WASI adapter shims), one or two memories
        // and two tables; Python and JavaScript handlers hold more. Table
        // and instance slots cost only address space; memory slots cost
        // their reservation in address space (about 4 GiB each), never
        // resident memory until used.
        pool.total_component_instances(instances)
            .total_core_instances(instances.saturating_mul(16))
            .total_memories(instances.saturating_mul(2))
            .total_tables(instances.saturating_mul(4))
            // Per component: what the largest handlers in the repository
            // need (componentize-py) with room to spare.
            .max_core_instances_per_component(64)
            .max_memories_per_component(16)
            .max_tables_per_component(16)
            .max_memory_size(MEMORY_CEILING)
            // One execution stack per live instance. wasmtime's default
            // (1,000 stacks, each a mapping and a guard-page mapping) made
            // a runtime cost 2,000 of the kernel's 65,530 mappings per
            // process: 32 runtimes in one process were all it could hold.
            .total_stacks(instances)
            .table_elements(200_000)
            // Reset a reused slot by zeroing its first pages in place rather
            // than handing them back to the kernel: no page faults and no
            // TLB shootdowns on the next instance (measured: fresh instances
            // were dominated by both).
            .linear_memory_keep_resident(4 << 20)
            .table_keep_resident(64 << 10)
            // ...and only the pages the instance dirtied, where the kernel
            // can say which (PAGEMAP_SCAN, Linux 6.7+).
            .pagemap_scan(wasmtime::Enabled::Auto);
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
        bindings::v1::Handler::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |s| s)
            .map_err(|e| Error::Engine(format!("linking the host interface 0.1.0: {e:#}")))?;
        bindings::v2::Handler::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |s| s)
            .map_err(|e| Error::Engine(format!("linking the host interface 0.2.0: {e:#}")))?;

        let watchdog = if options.epoch_interruption {
            Some(Watchdog::start(&engine).map_err(|e| Error::Engine(e.to_string()))?)
        } else {
            None
        };
        let cache = cfg
            .cache_dir
            .map(|dir| CodeCache::new(dir, &engine, cfg.cache_max_bytes));
        Ok(Sandbox {
            inner: Arc::new(SandboxInner {
                engine,
                linker,
                options,
                watchdog,
                cache,
                replay_clock: cfg.replay_clock,
            }),
        })
    }

    /// Compiles and links a handler, checking that it is a component that
    /// exports the handler world and imports nothing the host lacks.
    pub(crate) fn compile(&self, bytes: &[u8]) -> Result<CompiledHandler, String> {
        self.link(self.load(bytes)?)
    }

    /// Compiles a handler (or takes it from the cache) without linking it,
    /// so what it imports can be read before the linker judges it.
    pub(crate) fn load(&self, bytes: &[u8]) -> Result<LoadedHandler, String> {
        check_component_header(bytes)?;
        let hash = hex_sha256(bytes);
        let cache = self.inner.cache.as_ref();
        let component = match cache.and_then(|c| c.get(&self.inner.engine, &hash)) {
            Some(c) => c,
            None => {
                let started = Instant::now();
                let c = Component::from_binary(&self.inner.engine, bytes)
                    .map_err(|e| format!("not a valid WebAssembly component: {e:#}"))?;
                tracing::debug!(handler = %hash, "compiled in {:?}", started.elapsed());
                if let Some(cache) = cache {
                    cache.put(&hash, &c);
                }
                c
            }
        };
        Ok(LoadedHandler {
            component,
            hash,
            wasm: Arc::from(bytes),
        })
    }

    /// Links a loaded handler against the host: WASI 0.2 and the host
    /// interface, and the world's exports, of contract 0.1.0 or 0.2.0
    /// (told from the exports).
    pub(crate) fn link(&self, loaded: LoadedHandler) -> Result<CompiledHandler, String> {
        let LoadedHandler {
            component,
            hash,
            wasm,
        } = loaded;
        let instance_pre = self.inner.linker.instantiate_pre(&component).map_err(|e| {
            format!(
                "it imports something this host does not provide ({e:#}); a handler may import only \
                 hotreload:handler/host (0.1.0 or 0.2.0) and WASI 0.2 interfaces"
            )
        })?;
        let pre = match bindings::v2::HandlerPre::new(instance_pre.clone()) {
            Ok(pre) => Pre::V2(pre),
            Err(e2) => match bindings::v1::HandlerPre::new(instance_pre) {
                Ok(pre) => Pre::V1(pre),
                Err(e1) => {
                    return Err(format!(
                        "it exports neither the world hotreload:handler/handler@0.1.0 ({e1:#}) \
                         nor hotreload:handler/handler@0.2.0 ({e2:#})"
                    ));
                }
            },
        };
        Ok(CompiledHandler { pre, hash, wasm })
    }

    /// The names a loaded handler imports, in its order.
    pub(crate) fn imports(&self, loaded: &LoadedHandler) -> Vec<String> {
        loaded
            .component
            .component_type()
            .imports(&self.inner.engine)
            .map(|(name, _)| name.to_owned())
            .collect()
    }

    fn engine(&self) -> &Engine {
        &self.inner.engine
    }
}

pub(crate) fn hex_sha256(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
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
