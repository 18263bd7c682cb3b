// The `logging` handler in JavaScript (ComponentizeJS).
//
// A port of the Rust reference handler (handlers/logging/src/lib.rs); its
// crate doc is the specification, and handlers/cases/logging.json is the
// shared behaviour table this port is checked against.
//
// JSON.parse is not used: it takes lone surrogates, numbers beyond the f64
// range (as Infinity) and nesting of any depth, all of which serde_json
// refuses. The parser below accepts exactly what serde_json accepts (nesting
// at most 127 deep), keeps objects in Maps (the last duplicate key wins) and
// sorts keys by Unicode code point, as serde_json's sorted map does, rather
// than by UTF-16 code unit as Array.prototype.sort would.
//
// A failure is thrown as the WIT `failure` record {message, field, transient};
// ComponentizeJS turns it into the `err` case of the result.
import { log } from 'hotreload:handler/host@0.1.0';

const LEVELS = ['trace', 'debug', 'info', 'warn', 'error'];
const FORMATS = ['text', 'json'];
const OUTPUT_TYPES = ['stdout', 'stderr', 'file'];
const MAX_DEPTH = 127; // serde_json refuses a 128th nested array/object

class JsonError extends Error {}

const WS = /[ \t\n\r]*/y;
const PLAIN = /[^"\\\u0000-\u001f]*/y;
const NUMBER = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y;
const HEX4 = /[0-9a-fA-F]{4}/y;
const ESCAPES = { '"': '"', '\\': '\\', '/': '/', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t' };

function parseJson(s) {
  let i = 0;
  const fail = (what) => {
    throw new JsonError(`${what} at offset ${i}`);
  };
  const ws = () => {
    WS.lastIndex = i;
    WS.exec(s);
    i = WS.lastIndex;
  };
  const hex4 = () => {
    HEX4.lastIndex = i;
    const m = HEX4.exec(s);
    if (!m) fail('invalid escape');
    i = HEX4.lastIndex;
    return parseInt(m[0], 16);
  };
  const string = () => {
    i++; // the opening quote
    let out = '';
    for (;;) {
      PLAIN.lastIndex = i;
      out += PLAIN.exec(s)[0];
      i = PLAIN.lastIndex;
      if (i >= s.length) fail('EOF while parsing a string');
      const c = s[i];
      if (c === '"') {
        i++;
        return out;
      }
      if (c !== '\\') fail('control character (\\u0000-\\u001F) found while parsing a string');
      i++;
      if (i >= s.length) fail('EOF while parsing a string');
      const e = s[i++];
      if (Object.hasOwn(ESCAPES, e)) {
        out += ESCAPES[e];
      } else if (e === 'u') {
        const unit = hex4();
        if (unit >= 0xdc00 && unit <= 0xdfff) fail('lone trailing surrogate in hex escape');
        if (unit >= 0xd800 && unit <= 0xdbff) {
          if (!s.startsWith('\\u', i)) fail('unexpected end of hex escape');
          i += 2;
          const low = hex4();
          if (low < 0xdc00 || low > 0xdfff) fail('lone leading surrogate in hex escape');
          out += String.fromCharCode(unit, low);
        } else {
          out += String.fromCharCode(unit);
        }
      } else {
        fail('invalid escape');
      }
    }
  };
  const value = (depth) => {
    ws();
    if (i >= s.length) fail('EOF while parsing a value');
    const c = s[i];
    if (c === '{' || c === '[') {
      if (depth >= MAX_DEPTH) fail('recursion limit exceeded');
      return c === '{' ? object(depth + 1) : array(depth + 1);
    }
    if (c === '"') return string();
    for (const [word, v] of [['true', true], ['false', false], ['null', null]]) {
      if (s.startsWith(word, i)) {
        i += word.length;
        return v;
      }
    }
    NUMBER.lastIndex = i;
    const m = NUMBER.exec(s);
    if (m) {
      i = NUMBER.lastIndex;
      const n = Number(m[0]);
      if (!Number.isFinite(n)) fail('number out of range');
      return n;
    }
    return fail('expected value');
  };
  const object = (depth) => {
    i++;
    const map = new Map();
    ws();
    if (s[i] === '}') {
      i++;
      return map;
    }
    for (;;) {
      ws();
      if (s[i] !== '"') fail('key must be a string');
      const key = string();
      ws();
      if (s[i] !== ':') fail('expected `:`');
      i++;
      const v = value(depth);
      map.delete(key); // the last duplicate wins
      map.set(key, v);
      ws();
      if (s[i] === ',') i++;
      else if (s[i] === '}') {
        i++;
        return map;
      } else fail('expected `,` or `}`');
    }
  };
  const array = (depth) => {
    i++;
    const items = [];
    ws();
    if (s[i] === ']') {
      i++;
      return items;
    }
    for (;;) {
      items.push(value(depth));
      ws();
      if (s[i] === ',') i++;
      else if (s[i] === ']') {
        i++;
        return items;
      } else fail('expected `,` or `]`');
    }
  };
  const v = value(0);
  ws();
  if (i !== s.length) fail('trailing characters');
  return v;
}

/** Compares two well-formed strings by Unicode code point. */
function byCodePoint(a, b) {
  const n = Math.min(a.length, b.length);
  for (let k = 0; k < n; k++) {
    let x = a.charCodeAt(k);
    let y = b.charCodeAt(k);
    if (x !== y) {
      // Surrogates (astral code points) sort above U+E000..U+FFFF.
      x = x >= 0xd800 && x <= 0xdfff ? x + 0x2000 : x >= 0xe000 ? x - 0x800 : x;
      y = y >= 0xd800 && y <= 0xdfff ? y + 0x2000 : y >= 0xe000 ? y - 0x800 : y;
      return x - y;
    }
  }
  return a.length - b.length;
}

const sortedKeys = (map) => [...map.keys()].sort(byCodePoint);
const isObject = (v) => v instanceof Map;

function failure(message, field) {
  return { message, field, transient: false };
}

/** Escapes one JSON pointer reference token (RFC 6901). */
const escapeToken = (t) => t.replaceAll('~', '~0').replaceAll('/', '~1');

function oneOf(value, name, allowed, field) {
  const expected = allowed.join(', ');
  if (typeof value !== 'string') throw failure(`${name} must be a string: expected one of ${expected}`, field);
  if (!allowed.includes(value)) throw failure(`unknown ${name} "${value}": expected one of ${expected}`, field);
  return value;
}

function unknownKey(map, known, prefix) {
  for (const key of sortedKeys(map)) {
    if (!known.includes(key)) throw failure(`unknown field "${key}"`, `${prefix}/${escapeToken(key)}`);
  }
}

function parseOutput(index, item, defaultLevel) {
  const at = `/outputs/${index}`;
  if (!isObject(item)) throw failure('output must be an object', at);
  if (!item.has('type'))
    throw failure('output type is required: expected one of stdout, stderr, file', `${at}/type`);
  const kind = oneOf(item.get('type'), 'output type', OUTPUT_TYPES, `${at}/type`);
  let path;
  if (kind === 'file') {
    if (!item.has('path')) throw failure('file output requires a path', `${at}/path`);
    path = item.get('path');
    if (typeof path !== 'string' || path === '') throw failure('path must be a non-empty string', `${at}/path`);
  } else if (item.has('path')) {
    throw failure('path is only allowed for file outputs', `${at}/path`);
  }
  const level = item.has('level') ? oneOf(item.get('level'), 'level', LEVELS, `${at}/level`) : defaultLevel;
  unknownKey(item, ['type', 'path', 'level'], at);
  return { kind, level, path };
}

function parse(text) {
  let top;
  try {
    top = parseJson(text);
  } catch (e) {
    if (e instanceof JsonError) throw failure(`invalid JSON: ${e.message}`, undefined);
    // A RangeError (stack) cannot happen with the depth limit; anything else is a bug.
    throw failure(`invalid JSON: ${e}`, undefined);
  }
  if (!isObject(top)) throw failure('configuration must be a JSON object', undefined);
  const level = top.has('level') ? oneOf(top.get('level'), 'level', LEVELS, '/level') : 'info';
  const format = top.has('format') ? oneOf(top.get('format'), 'format', FORMATS, '/format') : 'text';
  let outputs;
  if (!top.has('outputs')) {
    outputs = [{ kind: 'stdout', level, path: undefined }];
  } else {
    const items = top.get('outputs');
    if (!Array.isArray(items)) throw failure('outputs must be an array', '/outputs');
    if (items.length === 0) throw failure('at least one output is required', '/outputs');
    outputs = items.map((item, index) => parseOutput(index, item, level));
  }
  const fields = [];
  if (top.has('fields')) {
    const f = top.get('fields');
    if (!isObject(f)) throw failure('fields must be an object', '/fields');
    for (const key of sortedKeys(f)) {
      const v = f.get(key);
      if (typeof v !== 'string') throw failure(`field "${key}" must be a string`, `/fields/${escapeToken(key)}`);
      fields.push([key, v]);
    }
  }
  unknownKey(top, ['level', 'format', 'outputs', 'fields'], '');
  return { level, format, outputs, fields };
}

const NAMED = { '"': '\\"', '\\': '\\\\', '\b': '\\b', '\f': '\\f', '\n': '\\n', '\r': '\\r', '\t': '\\t' };

/** A JSON string as serde_json writes it: only `"`, `\` and control characters escaped. */
function quote(s) {
  return (
    '"' +
    s.replace(/["\\\u0000-\u001f]/g, (c) => NAMED[c] ?? '\\u' + c.charCodeAt(0).toString(16).padStart(4, '0')) +
    '"'
  );
}

function toJson(c) {
  const outputs = c.outputs.map(
    (o) =>
      `{"type":${quote(o.kind)},"level":${quote(o.level)}${o.path === undefined ? '' : `,"path":${quote(o.path)}`}}`,
  );
  const fields = c.fields.map(([k, v]) => `${quote(k)}:${quote(v)}`);
  return `{"level":${quote(c.level)},"format":${quote(c.format)},"outputs":[${outputs.join(',')}],"fields":{${fields.join(',')}}}`;
}

let current;

export function supportLevel() {
  return 'full';
}

export function validate(config) {
  parse(config);
}

export function canReload(_oldConfig, _newConfig) {
  return true;
}

export function reload(_oldConfig, newConfig) {
  const config = parse(newConfig);
  const effective = toJson(config);
  log('info', `logging reconfigured: level=${config.level} format=${config.format} outputs=${config.outputs.length}`);
  current = config;
  return effective;
}

export function rollback(config) {
  current = parse(config);
}
