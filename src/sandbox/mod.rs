//! The sandbox: one wasmtime engine per runtime, compiled handlers, and
//! disposable instances whose every call runs under fuel, a wall-time
//! deadline and a memory cap.

mod bindings;
mod host;
mod instance;
mod output;
mod watchdog;

use std::hash::{Hash, Hasher};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use sha2::{Digest, Sha256};
use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

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
    cache: Option<PathBuf>,
}

/// A handler compiled and linked once, ready to be instantiated many times.
pub(crate) struct CompiledHandler {
    pre: bindings::HandlerPre<HostState>,
    /// SHA-256 of the handler's bytes, hex.
    pub(crate) hash: String,
}

/// A handler compiled but not yet linked.
pub(crate) struct LoadedHandler {
    component: Component,
    /// SHA-256 of the handler's bytes, hex.
    pub(crate) hash: String,
}

/// The largest linear memory a handler may ever have (wasm32's own limit);
/// the per-store limiter enforces the configured, much smaller, cap.
const MEMORY_CEILING: usize = 4 << 30;

impl Sandbox {
    pub(crate) fn new(options: SandboxOptions, cache: Option<PathBuf>) -> Result<Sandbox, Error> {
        let mut pool = PoolingAllocationConfig::new();
        pool.total_component_instances(512)
            .total_core_instances(4096)
            .total_memories(512)
            .total_tables(512)
            .max_core_instances_per_component(64)
            .max_memories_per_component(16)
            .max_tables_per_component(16)
            .max_memory_size(MEMORY_CEILING)
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
                cache,
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
        let component = match self.cached(&hash) {
            Some(c) => c,
            None => {
                let started = Instant::now();
                let c = Component::from_binary(&self.inner.engine, bytes)
                    .map_err(|e| format!("not a valid WebAssembly component: {e:#}"))?;
                tracing::debug!(handler = %hash, "compiled in {:?}", started.elapsed());
                self.store_cached(&hash, &c);
                c
            }
        };
        Ok(LoadedHandler { component, hash })
    }

    /// Links a loaded handler against the host: WASI 0.2 and the host
    /// interface, and the world's exports.
    pub(crate) fn link(&self, loaded: LoadedHandler) -> Result<CompiledHandler, String> {
        let LoadedHandler { component, hash } = loaded;
        let instance_pre = self.inner.linker.instantiate_pre(&component).map_err(|e| {
            format!(
                "it imports something this host does not provide ({e:#}); a handler may import only \
                 hotreload:handler/host@0.1.0 and WASI 0.2 interfaces"
            )
        })?;
        let pre = bindings::HandlerPre::new(instance_pre).map_err(|e| {
            format!("it does not export the world hotreload:handler/handler@0.1.0 ({e:#})")
        })?;
        Ok(CompiledHandler { pre, hash })
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

    /// The cache file of a handler: its hash and the engine's compatibility
    /// hash (wasmtime version, target, settings) both name it, so a stale
    /// entry is simply never looked up.
    fn cache_path(&self, hash: &str) -> Option<PathBuf> {
        let dir = self.inner.cache.as_ref()?;
        let mut h = std::collections::hash_map::DefaultHasher::new();
        self.inner
            .engine
            .precompile_compatibility_hash()
            .hash(&mut h);
        Some(dir.join(format!("{hash}-{:016x}.cwasm", h.finish())))
    }

    /// A compiled handler from the cache, if a whole and matching one is there.
    fn cached(&self, hash: &str) -> Option<Component> {
        let path = self.cache_path(hash)?;
        let data = std::fs::read(&path).ok()?;
        let (sum, artifact) = data.split_at_checked(32)?;
        if Sha256::digest(artifact).as_slice() != sum {
            tracing::warn!(cache = %path.display(), "corrupt compiled-code cache entry; recompiling");
            let _ = std::fs::remove_file(&path);
            return None;
        }
        match deserialize(&self.inner.engine, artifact) {
            Ok(c) => Some(c),
            Err(e) => {
                tracing::warn!(cache = %path.display(), "unusable compiled-code cache entry ({e}); recompiling");
                let _ = std::fs::remove_file(&path);
                None
            }
        }
    }

    /// Stores a compiled handler, checksummed, written atomically. A cache
    /// that cannot be written only costs the next start a compile.
    fn store_cached(&self, hash: &str, component: &Component) {
        let Some(path) = self.cache_path(hash) else {
            return;
        };
        let result = (|| -> std::io::Result<()> {
            let artifact = component
                .serialize()
                .map_err(|e| std::io::Error::other(e.to_string()))?;
            let mut data = Sha256::digest(&artifact).to_vec();
            data.extend_from_slice(&artifact);
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
            let written = std::fs::write(&tmp, &data).and_then(|()| std::fs::rename(&tmp, &path));
            if written.is_err() {
                // A full disk must not keep a half-written artifact either.
                let _ = std::fs::remove_file(&tmp);
            }
            written
        })();
        if let Err(e) = result {
            tracing::warn!(cache = %path.display(), "cannot write the compiled-code cache: {e}");
        }
    }

    fn engine(&self) -> &Engine {
        &self.inner.engine
    }
}

/// Loads an artifact this engine produced.
#[allow(unsafe_code)]
fn deserialize(engine: &Engine, artifact: &[u8]) -> wasmtime::Result<Component> {
    // SAFETY: `Component::deserialize` trusts its input to be wasmtime's
    // own output. These bytes are: they were written by `store_cached`
    // under a name that includes this engine's compatibility hash, and
    // their SHA-256 was checked just before, so a torn or corrupted file
    // never gets here (and wasmtime checks its version header itself).
    unsafe { Component::deserialize(engine, artifact) }
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
