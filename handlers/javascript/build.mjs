// Builds logging.js into a component with ComponentizeJS's componentize()
// (the `jco componentize` CLI is not used: it failed on paths outside its
// working folder here).
//
//   node build.mjs [OUT_DIR]     (default: ../target/lang)
//
// Needs `npm ci` in this folder first (handlers/install-toolchains.sh does it).
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const outDir = resolve(process.argv[2] ?? join(here, '..', 'target', 'lang'));

let componentize;
try {
  ({ componentize } = await import('@bytecodealliance/componentize-js'));
} catch (e) {
  console.error(
    `error: @bytecodealliance/componentize-js is not installed in ${here}/node_modules: ` +
      `run handlers/install-toolchains.sh (or npm ci in handlers/javascript) (${e.message})`,
  );
  process.exit(1);
}

// ComponentizeJS's bindings splicer is itself a component run under
// preview2-shim, whose filesystem has no preopened folder by default since
// 0.26 (before, it had "/"): without one the splicer cannot read the WIT
// ("reading file .../wit: No such file or directory"). Give it the folder
// that holds both the WIT and the source.
const repo = resolve(here, '..', '..');
const { _setPreopens } = await import('@bytecodealliance/preview2-shim/filesystem');
_setPreopens({ [repo]: repo });
const { component } = await componentize({
  sourcePath: join(here, 'logging.js'),
  witPath: join(repo, 'wit'),
  worldName: 'handler',
  // No fetch() or incoming HTTP handler: the handler needs neither.
  disableFeatures: ['http', 'fetch-event'],
});
mkdirSync(outDir, { recursive: true });
const out = join(outDir, 'logging-javascript.wasm');
writeFileSync(out, component);
console.log(`wrote ${out} (${component.length} bytes)`);
