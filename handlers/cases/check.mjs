// Runs one handler component against every case of logging.json.
//
//   node check.mjs HANDLER.wasm [--name NAME] [--core-only] [--expect-fail CASE]... [--cases FILE] [--verbose]
//
// For every case it calls validate(config), reload(none, config) and
// rollback(config) and checks:
// - accept/reject agrees with the table, on all three calls;
// - on rejection: `field` equals the table's, `transient` is false, and
//   `message` equals the table's; a message that starts with "invalid JSON: "
//   is compared on that prefix only (the parser's own words differ by language);
// - on acceptance: reload returns the effective configuration, equal to the
//   table's as a JSON value, and logs the table's line at `info`.
// Whether the effective configuration is also byte-identical to the
// reference's text is reported beside (a "text differs" note), not failed.
// It also checks support-level = full and can-reload = true.
//
// --core-only skips the cases with core=false (the WAT subset handler).
// --expect-fail CASE: a known failure of this port (reported as XFAIL, not
// counted as failed; if it passes after all, that is reported too).
// Exit status: 0 when no case failed. Last line: "N passed, N failed, N skipped".
import { readFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isDeepStrictEqual } from 'node:util';
import { call, loadHandler, logs } from './load.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
let wasm;
let name;
let coreOnly = false;
let verbose = false;
const expectFail = new Set();
let casesFile = join(here, 'logging.json');
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--name') name = args[++i];
  else if (args[i] === '--core-only') coreOnly = true;
  else if (args[i] === '--verbose') verbose = true;
  else if (args[i] === '--expect-fail') expectFail.add(args[++i]);
  else if (args[i] === '--cases') casesFile = args[++i];
  else wasm = args[i];
}
if (!wasm) {
  console.error('usage: node check.mjs HANDLER.wasm [--name NAME] [--core-only] [--expect-fail CASE]... [--cases FILE] [--verbose]');
  process.exit(2);
}
name ??= basename(wasm, '.wasm');

const cases = JSON.parse(readFileSync(casesFile, 'utf8'));
for (const name of expectFail) {
  if (!cases.some((c) => c.name === name)) {
    console.error(`--expect-fail: no case named ${JSON.stringify(name)}`);
    process.exit(2);
  }
}
const H = await loadHandler(wasm, name);
const short = (s) => {
  const j = JSON.stringify(s);
  return j && j.length > 160 ? j.slice(0, 150) + `...(${j.length} chars)` : j;
};

function checkFailure(c, what, r, problems) {
  if ('trap' in r) return problems.push(`${what} trapped: ${r.trap.split('\n')[0]}`);
  if ('ok' in r) return problems.push(`${what} accepted (returned ${short(r.ok)}), expected a failure`);
  const f = r.err;
  const field = f.field ?? null;
  if (field !== c.field) problems.push(`${what} field ${short(field)}, expected ${short(c.field)}`);
  if (f.transient !== false) problems.push(`${what} transient ${f.transient}`);
  const prefix = 'invalid JSON: ';
  if (c.message.startsWith(prefix)) {
    if (typeof f.message !== 'string' || !f.message.startsWith(prefix) || f.message.length === prefix.length)
      problems.push(`${what} message ${short(f.message)}, expected one starting with ${short(prefix)}`);
  } else if (f.message !== c.message) {
    problems.push(`${what} message ${short(f.message)}, expected ${short(c.message)}`);
  }
}

let passed = 0;
let failed = 0;
let skipped = 0;
let xfailed = 0;
let textDiffers = 0;
const started = Date.now();
for (const c of cases) {
  if (coreOnly && !c.core) {
    skipped++;
    if (verbose) console.log(`SKIP ${c.name}`);
    continue;
  }
  const problems = [];
  const v = call(H.validate, c.config);
  const before = logs.length;
  const r = call(H.reload, undefined, c.config);
  const logged = logs.slice(before);
  const b = call(H.rollback, c.config);
  if (c.accept) {
    if (!('ok' in v)) problems.push(`validate failed: ${short(v.err ?? v.trap)}`);
    if (!('ok' in b)) problems.push(`rollback failed: ${short(b.err ?? b.trap)}`);
    if (!('ok' in r)) {
      problems.push(`reload failed: ${short(r.err ?? r.trap)}`);
    } else if (typeof r.ok !== 'string') {
      problems.push(`reload returned ${short(r.ok)}, expected the effective configuration`);
    } else {
      let value;
      try {
        value = JSON.parse(r.ok);
      } catch (e) {
        problems.push(`reload returned invalid JSON ${short(r.ok)}: ${e.message}`);
      }
      if (value !== undefined && !isDeepStrictEqual(value, c.effective))
        problems.push(`effective ${short(r.ok)}, expected ${short(c.effective_text)}`);
      if (value !== undefined && isDeepStrictEqual(value, c.effective) && r.ok !== c.effective_text) {
        textDiffers++;
        console.log(`note: ${c.name}: effective configuration equal as JSON, text differs: ${short(r.ok)}`);
      }
      const want = [['info', c.log]];
      if (!isDeepStrictEqual(logged, want)) problems.push(`logged ${short(logged)}, expected ${short(want)}`);
    }
  } else {
    checkFailure(c, 'validate', v, problems);
    checkFailure(c, 'reload', r, problems);
    checkFailure(c, 'rollback', b, problems);
    if (logged.length) problems.push(`a rejected reload logged ${short(logged)}`);
  }
  const report = `${c.name}${c.core ? ' [core]' : ''}\n  config: ${short(c.config)}\n  - ${problems.join('\n  - ')}`;
  if (problems.length && expectFail.has(c.name)) {
    xfailed++;
    console.log(`XFAIL (known) ${report}`);
  } else if (problems.length) {
    failed++;
    console.log(`FAIL ${report}`);
  } else {
    passed++;
    if (expectFail.has(c.name)) console.log(`XPASS ${c.name}: expected to fail, but passed`);
    else if (verbose) console.log(`PASS ${c.name}`);
  }
}

const extra = [];
const sl = call(H.supportLevel);
if (sl.ok !== 'full') extra.push(`support-level ${short(sl.ok ?? sl.trap)}, expected "full"`);
const cr = call(H.canReload, '{}', '{"level":"debug"}');
if (cr.ok !== true) extra.push(`can-reload ${short(cr.ok ?? cr.trap)}, expected true`);
if (extra.length) {
  failed++;
  console.log(`FAIL exports\n  - ${extra.join('\n  - ')}`);
} else {
  passed++;
}
console.log(
  `${name}: ${cases.length} cases + exports check, ${((Date.now() - started) / 1000).toFixed(1)} s` +
    (textDiffers ? `, ${textDiffers} effective texts differ from the reference's bytes` : ''),
);
if (xfailed) console.log(`${xfailed} known failure(s), counted as skipped`);
console.log(`${passed} passed, ${failed} failed, ${skipped + xfailed} skipped`);
process.exit(failed ? 1 : 0);
