// Regenerates logging.json: the inputs below, with the expected results taken
// from the Rust reference handler (handlers/logging).
//
//   node generate.mjs [path/to/logging.wasm]
//
// default: ../target/wasm32-wasip2/release/logging.wasm (build it first with
// `cargo build --release --target wasm32-wasip2` in handlers/).
//
// `core: true` marks the cases that every port, including the WAT subset
// handler, must pass; see README.md.
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { call, loadHandler, logs } from './load.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const wasm = process.argv[2] ?? join(here, '..', 'target', 'wasm32-wasip2', 'release', 'logging.wasm');

const nestArrays = (n) => '['.repeat(n) + ']'.repeat(n);
const big = 'x'.repeat(100 * 1024);

// [name, config, core]
const inputs = [
  // --- accepted
  ['empty object: every default', '{}', true],
  ['level trace', '{"level":"trace"}', true],
  ['level debug', '{"level":"debug"}', true],
  ['level info', '{"level":"info"}', true],
  ['level warn', '{"level":"warn"}', true],
  ['level error', '{"level":"error"}', true],
  ['whitespace everywhere', ' \t\r\n{ \n"level" :\t"warn" \r\n}\n ', true],
  ['duplicate key: the last one wins', '{"level":"bogus","level":"debug"}', true],
  ['format json', '{"format":"json"}', false],
  ['format text', '{"format":"text","level":"error"}', false],
  ['output stderr inherits the top-level level', '{"level":"warn","outputs":[{"type":"stderr"}]}', false],
  ['output file', '{"outputs":[{"type":"file","path":"/var/log/app.log"}]}', false],
  ['documented example', '{"outputs":[{"type":"file","path":"/var/log/app.log"}],"fields":{"app":"demo"}}', false],
  [
    'several outputs with own levels',
    '{"level":"debug","format":"json","outputs":[{"type":"stdout"},{"level":"error","type":"stderr"},{"path":"a.log","type":"file","level":"trace"}]}',
    false,
  ],
  ['fields sorted by key', '{"fields":{"zeta":"1","alpha":"2","Beta":"3","":"empty key"}}', false],
  [
    'fields sorted by code point, not UTF-16 unit',
    '{"fields":{"\uff61":"halfwidth stop","\u{1F600}":"grin","a":"\u00e9"}}',
    false,
  ],
  [
    'effective JSON escaping',
    '{"outputs":[{"type":"file","path":"C:\\\\logs\\\\\\"q\\"\\n\\t\\b\\f\\r\\u0001\\u001f\\u007f\\u00e9\\u2028/\\/"}],"fields":{"k\\u0000":"v\\u0000"}}',
    false,
  ],
  ['escaped key names a known field', '{"lev\\u0065l":"debug","\\u0066ormat":"json"}', false],
  ['escaped level value', '{"level":"\\u0069nfo"}', false],
  ['surrogate pair escape', '{"fields":{"emoji":"\\ud83d\\ude00"}}', false],
  ['numbers that parse (unknown field rejects them afterwards)', '{"level":"info","zz":[0,-0,1e-400,0e99999,123456789012345678901234567890,1.5E+3]}', false],
  ['many outputs', '{"outputs":[' + Array.from({ length: 300 }, (_, i) => `{"type":"file","path":"/l/${i}"}`).join(',') + ']}', false],
  ['20 KB field value', `{"fields":{"big":"${'y'.repeat(20 * 1024)}"}}`, false],
  ['127 nested arrays (the parser depth limit) under level', '{"level":' + nestArrays(126) + '}', true],

  // --- invalid JSON
  ['empty string', '', true],
  ['only whitespace', ' \n\t ', true],
  ['not JSON', 'nope', true],
  ['unterminated object', '{"level":"info"', true],
  ['trailing comma', '{"level":"info",}', true],
  ['missing colon', '{"level" "info"}', true],
  ['trailing characters', '{} x', true],
  ['two values', '{}{}', true],
  ['single quotes', "{'level':'info'}", true],
  ['byte order mark', '\ufeff{}', true],
  ['NaN', '{"level":NaN}', true],
  ['leading zero', '{"level":01}', true],
  ['bare fraction', '{"level":.5}', true],
  ['dangling exponent', '{"level":1e}', true],
  ['non-ASCII digit', '{"level":1\u0661}', true],
  ['invalid escape', '{"level":"\\x"}', true],
  ['short unicode escape', '{"level":"\\u12"}', true],
  ['lone high surrogate', '{"level":"\\ud800"}', true],
  ['high surrogate without low', '{"level":"\\ud800\\u0041"}', true],
  ['lone low surrogate', '{"level":"\\udc00"}', true],
  ['raw control character in string', '{"level":"in\u0001fo"}', true],
  ['raw newline in string', '{"level":"in\nfo"}', true],
  ['vertical tab is not whitespace', '{}\u000b', true],
  ['number out of range', '{"level":1e400}', false],
  ['negative number out of range', '{"level":-1e400}', false],
  ['integer too big for f64', '{"level":' + '9'.repeat(400) + '}', false],
  ['128 nested arrays: over the depth limit', '{"level":' + nestArrays(127) + '}', true],
  ['200 nested arrays under fields', '{"fields":' + nestArrays(200) + '}', true],
  ['10000 nested arrays', nestArrays(10000), true],
  ['10000 unclosed brackets', '['.repeat(10000), true],
  ['128 nested objects under fields', '{"fields":' + '{"a":'.repeat(127) + '1' + '}'.repeat(127) + '}', true],

  // --- not an object
  ['array', '[1,2]', true],
  ['string', '"{}"', true],
  ['number', '42', true],
  ['null', 'null', true],
  ['true', 'true', true],
  ['127 nested arrays at the top', nestArrays(127), true],

  // --- level
  ['level number', '{"level":3}', true],
  ['level null', '{"level":null}', true],
  ['level object', '{"level":{"name":"info"}}', true],
  ['level unknown', '{"level":"verbose"}', true],
  ['level is case-sensitive', '{"level":"INFO"}', true],
  ['level with surrounding space', '{"level":" info"}', true],
  ['level of 100 KB', `{"level":"${big}"}`, true],
  ['level checked before unknown keys', '{"zzz":1,"level":"bogus"}', true],
  ['level checked before outputs', '{"outputs":[{"type":"bogus"}],"level":"x"}', true],
  ['level message shows the decoded value verbatim', '{"level":"a\\"b\\\\c\\n\\u00e9"}', false],
  ['level with NUL', '{"level":"\\u0000"}', false],

  // --- format
  ['format number', '{"format":1}', false],
  ['format unknown', '{"format":"xml"}', false],
  ['format checked before outputs', '{"outputs":3,"format":"yaml"}', false],

  // --- outputs
  ['outputs not an array', '{"outputs":{"type":"stdout"}}', false],
  ['outputs null', '{"outputs":null}', false],
  ['outputs empty', '{"outputs":[]}', false],
  ['output not an object', '{"outputs":["stdout"]}', false],
  ['output type missing', '{"outputs":[{"path":"x"}]}', false],
  ['output type not a string', '{"outputs":[{"type":1}]}', false],
  ['output type unknown', '{"outputs":[{"type":"tty"}]}', false],
  ['file output without path', '{"outputs":[{"type":"file"}]}', false],
  ['file output with empty path', '{"outputs":[{"type":"file","path":""}]}', false],
  ['file output with non-string path', '{"outputs":[{"type":"file","path":["a"]}]}', false],
  ['stdout output with path', '{"outputs":[{"type":"stdout","path":"x"}]}', false],
  ['stderr output with null path', '{"outputs":[{"type":"stderr","path":null}]}', false],
  ['output level not a string', '{"outputs":[{"type":"stdout","level":5}]}', false],
  ['output level unknown', '{"outputs":[{"type":"stdout","level":"loud"}]}', false],
  ['output unknown keys, smallest first, pointer escaped', '{"outputs":[{"type":"stdout","z":1,"a/b":2,"b~":3}]}', false],
  ['failure in the second output', '{"outputs":[{"type":"stdout"},{"type":"stderr","level":"loud"}]}', false],
  ['output path checked before level', '{"outputs":[{"type":"file","level":"x"}]}', false],
  ['output level checked before unknown keys', '{"outputs":[{"type":"stdout","level":"x","a":1}]}', false],
  ['outputs checked before fields', '{"fields":{"b":1},"outputs":[3]}', false],

  // --- fields
  ['fields not an object', '{"fields":["a"]}', false],
  ['fields null', '{"fields":null}', false],
  ['field value not a string, smallest key first', '{"fields":{"z":1,"b":true,"a":"ok"}}', false],
  ['field key escaped in the pointer', '{"fields":{"a~/b":null}}', false],
  ['field keys ordered by code point', '{"fields":{"\uff61":1,"\u{1F600}":2}}', false],
  ['fields checked before unknown keys', '{"aaa":1,"fields":{"x":2}}', false],

  // --- unknown top-level keys
  ['unknown key', '{"level":"debug","levle":"info"}', false],
  ['unknown keys, smallest first', '{"zzz":1,"a~/b":2,"m":3}', false],
  ['unknown key that is empty', '{"":1}', false],
  ['unknown keys ordered by code point', '{"\uff61":1,"\u{1F600}":2}', false],
  ['unknown key that is a prefix of a known one', '{"lev":"info"}', false],
];

const L = await loadHandler(wasm, 'reference');
const cases = [];
for (const [name, config, core] of inputs) {
  const before = logs.length;
  const r = call(L.reload, undefined, config);
  if ('trap' in r) throw new Error(`${name}: the reference handler trapped: ${r.trap}`);
  const v = call(L.validate, config);
  if ('ok' in r !== 'ok' in v) throw new Error(`${name}: validate and reload disagree`);
  const c = { name, core, config, accept: 'ok' in r };
  if (c.accept) {
    c.field = null;
    c.message = null;
    c.effective = JSON.parse(r.ok);
    c.effective_text = r.ok;
    c.log = logs[before][1];
  } else {
    c.field = r.err.field ?? null;
    c.message = r.err.message;
    c.effective = null;
  }
  cases.push(c);
}
if (new Set(cases.map((c) => c.name)).size !== cases.length) throw new Error('duplicate case names');
writeFileSync(join(here, 'logging.json'), JSON.stringify(cases, null, 1) + '\n');
console.log(`wrote ${cases.length} cases (${cases.filter((c) => c.core).length} core, ${cases.filter((c) => c.accept).length} accepted)`);
