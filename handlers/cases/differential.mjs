// Differential fuzzing: random configurations (half of them mutations of the
// table's, half built from the schema with random strings, spelling and
// defects), run through the Rust reference handler and the ports; prints
// every input on which a port disagrees (accept/reject, field, message,
// effective configuration's exact text).
//
//   node differential.mjs N SEED REFERENCE.wasm NAME=PORT.wasm...
//
// e.g. node differential.mjs 20000 1 ../target/wasm32-wasip2/release/logging.wasm \
//        c=../target/lang/logging-c.wasm python=../target/lang/logging-python.wasm
//
// Messages starting with "invalid JSON: " are compared on that prefix only.
// The WAT subset handler (name "wat") is compared only where it does not
// answer "unsupported configuration", and never on numbers out of f64 range
// or escaped level values (both outside its subset; see handlers/wat/README.md).
// Exit status 1 when some port disagreed.
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isDeepStrictEqual } from 'node:util';
import { call, loadHandler } from './load.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const [n, seed, reference, ...ports] = process.argv.slice(2);
if (!reference || !ports.length) {
  console.error('usage: node differential.mjs N SEED REFERENCE.wasm NAME=PORT.wasm...');
  process.exit(2);
}

let state = BigInt(seed) || 1n;
const rand = (k) => {
  // xorshift64*
  state ^= state >> 12n;
  state ^= (state << 25n) & 0xffffffffffffffffn;
  state ^= state >> 27n;
  return Number(((state * 0x2545f4914f6cdd1dn) & 0xffffffffffffffffn) >> 33n) % k;
};

const seeds = JSON.parse(readFileSync(join(here, 'logging.json'), 'utf8'))
  .map((c) => c.config)
  .filter((c) => c.length < 2000);
const pieces = [
  '{', '}', '[', ']', ',', ':', '"', '\\', ' ', '\n', '0', '1', '-', '.', 'e', '+', 'E',
  'true', 'false', 'null', '"level"', '"format"', '"outputs"', '"fields"', '"type"', '"path"',
  '"trace"', '"debug"', '"info"', '"warn"', '"error"', '"text"', '"json"', '"stdout"', '"stderr"',
  '"file"', '\\u0000', '\\ud83d', '\\ude00', '\\u0041', '\\n', '\\"', '\u00e9', '\u{1F600}', '\uff61',
  '~', '/', '\u0001', '\u007f', '1e400', '01', '"a~/b"', '""',
];
function mutate(s) {
  const k = 1 + rand(4);
  for (let j = 0; j < k; j++) {
    const at = rand(s.length + 1);
    switch (rand(4)) {
      case 0: // insert a piece
        s = s.slice(0, at) + pieces[rand(pieces.length)] + s.slice(at);
        break;
      case 1: // delete a few code units
        s = s.slice(0, at) + s.slice(at + 1 + rand(3));
        break;
      case 2: // replace with a piece
        s = s.slice(0, at) + pieces[rand(pieces.length)] + s.slice(at + 1 + rand(3));
        break;
      default: // splice in part of another seed
        {
          const o = seeds[rand(seeds.length)];
          const from = rand(o.length + 1);
          s = s.slice(0, at) + o.slice(from, from + 1 + rand(20)) + s.slice(at);
        }
    }
  }
  // Only well-formed strings can cross the component boundary.
  return s.toWellFormed ? s.toWellFormed() : s.replace(/[\ud800-\udfff]/g, '\ufffd');
}

// A random configuration built from the schema: mostly valid, sometimes with
// a wrong type, value or key, with random strings and random JSON spelling.
const chars = ['a', 'z', 'A', '0', ' ', '~', '/', '"', '\\', '\n', '\t', '\u0001', '\u001f', '\u007f', '\u00e9', '\u2028', '\uff61', '\u{1F600}', '\ufeff'];
function randomString() {
  let s = '';
  for (let k = rand(6); k > 0; k--) s += chars[rand(chars.length)];
  return s;
}
function jsonString(s) {
  // JSON.stringify, sometimes with non-ASCII written as \u escapes
  const j = JSON.stringify(s);
  return rand(3) === 0 ? j.replace(/[\u0080-\uffff]/g, (c) => '\\u' + c.charCodeAt(0).toString(16).padStart(4, '0')) : j;
}
function randomValue(depth = 0) {
  switch (rand(depth > 2 ? 4 : 6)) {
    case 0: return 'null';
    case 1: return rand(2) ? 'true' : 'false';
    case 2: return String(rand(1000) - 500);
    case 3: return jsonString(randomString());
    case 4: return '[' + Array.from({ length: rand(3) }, () => randomValue(depth + 1)).join(',') + ']';
    default: return '{' + Array.from({ length: rand(3) }, () => jsonString(randomString()) + ':' + randomValue(depth + 1)).join(',') + '}';
  }
}
const pick = (xs) => xs[rand(xs.length)];
const LEVEL_NAMES = ['trace', 'debug', 'info', 'warn', 'error'];
function maybeBad(good) {
  return rand(12) === 0 ? (rand(2) ? randomValue() : jsonString(randomString())) : good;
}
function generate() {
  const members = [];
  if (rand(2)) members.push(['level', maybeBad(jsonString(pick(LEVEL_NAMES)))]);
  if (rand(3) === 0) members.push(['format', maybeBad(jsonString(pick(['text', 'json'])))]);
  if (rand(2)) {
    const outputs = Array.from({ length: rand(4) }, () => {
      const type = pick(['stdout', 'stderr', 'file', 'file']);
      const o = [['type', maybeBad(jsonString(type))]];
      if (type === 'file' ? rand(12) !== 0 : rand(12) === 0) o.push(['path', maybeBad(jsonString(randomString() || 'p'))]);
      if (rand(2)) o.push(['level', maybeBad(jsonString(pick(LEVEL_NAMES)))]);
      if (rand(15) === 0) o.push([randomString(), randomValue()]);
      return rand(20) === 0 ? randomValue() : '{' + o.sort(() => rand(3) - 1).map(([k, v]) => jsonString(k) + ':' + v).join(',') + '}';
    });
    members.push(['outputs', maybeBad('[' + outputs.join(',') + ']')]);
  }
  if (rand(2)) {
    const fields = Array.from({ length: rand(5) }, () => jsonString(randomString()) + ':' + maybeBad(jsonString(randomString())));
    members.push(['fields', maybeBad('{' + fields.join(',') + '}')]);
  }
  if (rand(10) === 0) members.push([randomString(), randomValue()]);
  const ws = () => pick(['', '', ' ', '\n ', '\t']);
  return ws() + '{' + members.sort(() => rand(3) - 1).map(([k, v]) => ws() + jsonString(k) + ws() + ':' + ws() + v + ws()).join(',') + '}' + ws();
}

function outcome(h, config) {
  const r = call(h.reload, undefined, config);
  if ('trap' in r) return { trap: r.trap.split('\n')[0] };
  if ('ok' in r) return { effective: r.ok }; // the exact text
  const m = r.err.message;
  return { field: r.err.field ?? null, message: m.startsWith('invalid JSON: ') ? 'invalid JSON: ' : m };
}

const ref = await loadHandler(reference, 'differential-reference');
const loaded = [];
for (const p of ports) {
  const [name, path] = p.split('=');
  loaded.push([name, await loadHandler(path, `differential-${name}`)]);
}

const disagreements = {};
const counts = { accepted: 0, rejected: 0 };
for (let k = 0; k < Number(n); k++) {
  const config = k % 2 ? generate() : mutate(seeds[rand(seeds.length)]);
  const want = outcome(ref, config);
  counts['effective' in want ? 'accepted' : 'rejected']++;
  for (const [name, h] of loaded) {
    const got = outcome(h, config);
    if (isDeepStrictEqual(got, want)) continue;
    if (name === 'wat') {
      if (typeof got.message === 'string' && got.message.startsWith('unsupported configuration')) continue;
      const raw = ref.validate && call(ref.validate, config);
      if (raw.err && /number out of range/.test(raw.err.message)) continue;
      if (/"level"\s*:\s*"[^"]*\\/.test(config)) continue;
    }
    (disagreements[name] ??= []).push({ config, want, got });
  }
}
console.log(`${n} inputs: ${counts.accepted} accepted, ${counts.rejected} rejected by the reference`);
let bad = false;
for (const [name] of loaded) {
  const d = disagreements[name] ?? [];
  console.log(`${name}: ${d.length} disagreements`);
  for (const x of d.slice(0, 10)) console.log('  ', JSON.stringify(x).slice(0, 400));
  bad ||= d.length > 0;
}
process.exit(bad ? 1 : 0);
