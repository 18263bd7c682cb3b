// Loads a handler component under Node: `jco transpile` turns it into an ES
// module (into .out/<name>/ beside this file, so that the transpiled code
// finds @bytecodealliance/preview2-shim in ./node_modules), and the host
// import `hotreload:handler/host.log` is served by a recorder.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));

// componentize-py's output uses extended constant expressions, which Node 20
// (V8 11.3) only compiles behind a flag: run the script again with it.
const flag = '--experimental-wasm-extended-const';
if (Number(process.versions.node.split('.')[0]) < 21 && !process.execArgv.includes(flag)) {
  const r = spawnSync(process.execPath, [flag, ...process.execArgv, ...process.argv.slice(1)], { stdio: 'inherit' });
  process.exit(r.status ?? 1);
}

/** Every line the handlers logged through the host, as [level, message]. */
export const logs = [];
globalThis.__hotreloadCaseLogs = logs;

export async function loadHandler(wasmPath, name) {
  const out = join(here, '.out', name);
  rmSync(out, { recursive: true, force: true });
  mkdirSync(out, { recursive: true });
  writeFileSync(
    join(out, 'host.js'),
    'export function log(level, message) { globalThis.__hotreloadCaseLogs.push([level, message]); }\n',
  );
  const jco = join(here, 'node_modules', '.bin', 'jco');
  execFileSync(
    jco,
    ['transpile', resolve(wasmPath), '-o', out, '--name', 'handler', '--map', 'hotreload:handler/host=./host.js', '-q'],
    { stdio: ['ignore', 'ignore', 'inherit'] },
  );
  return import(pathToFileURL(join(out, 'handler.js')).href);
}

/** Calls `f`; returns {ok: value} or {err: failure record}. */
export function call(f, ...args) {
  try {
    return { ok: f(...args) };
  } catch (e) {
    if (e && typeof e === 'object' && 'payload' in e) return { err: e.payload };
    return { trap: String(e && e.stack ? e.stack : e) };
  }
}
