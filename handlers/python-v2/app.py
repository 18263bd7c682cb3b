"""The `logging` handler in Python for contract 0.2 (componentize-py).

The same handler as the contract 0.1 port (../python/app.py): the same
checks, failure messages and field pointers, the same effective
configuration and the same log line, against the same table
(../cases/logging.json). Only the exports differ (../../wit/v0.2/handler.wit):

- `support-level` is `full`, so every plan is in-place (from a
  configuration to itself too).
- `prepare` checks and normalises the candidate once and keeps (text,
  normalised configuration) for `apply`; it changes nothing else, the
  configuration in force stays as it was.
- `apply` makes the prepared configuration the one in force without parsing
  again when its text is the one just prepared (the contract guarantees it;
  any other text is checked in full, so a host that breaks the contract
  still gets a correct answer), and logs "logging reconfigured: ..." at info.
- `rollback` parses its configuration and puts it back in force.

Everything from LEVELS down to to_json() is a verbatim copy of the 0.1
port's: the 0.1 port is a single `app` module, checks and 0.1 exports
together, so sharing the checks would mean moving them out of it first.
test_app.py fails when the two copies differ. The JSON parser is our own
rather than the `json` module, so that exactly the texts serde_json accepts
are accepted (see the 0.1 port's docstring).
"""

import re
from typing import Optional

import wit_world
from componentize_py_types import Err
from wit_world.imports import host
from wit_world.imports.types import Failure, Plan_InPlace, Prepared, SupportLevel

LEVELS = ("trace", "debug", "info", "warn", "error")
FORMATS = ("text", "json")
OUTPUT_TYPES = ("stdout", "stderr", "file")

MAX_DEPTH = 127  # serde_json refuses a 128th nested array/object


class JsonError(Exception):
    pass


class _Object:
    """A parsed JSON object: a dict (the last duplicate key wins)."""

    __slots__ = ("items",)

    def __init__(self, items: dict):
        self.items = items


_WS = re.compile(r"[ \t\n\r]*")
_PLAIN = re.compile(r'[^"\\\x00-\x1f]*')
_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")
_HEX4 = re.compile(r"[0-9a-fA-F]{4}")
_ESCAPES = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}


class _Parser:
    def __init__(self, text: str):
        self.s = text
        self.i = 0

    def fail(self, what: str):
        raise JsonError(f"{what} at offset {self.i}")

    def ws(self):
        self.i = _WS.match(self.s, self.i).end()

    def document(self):
        value = self.value(0)
        self.ws()
        if self.i != len(self.s):
            self.fail("trailing characters")
        return value

    def value(self, depth: int):
        self.ws()
        s, i = self.s, self.i
        if i >= len(s):
            self.fail("EOF while parsing a value")
        c = s[i]
        if c == "{":
            if depth >= MAX_DEPTH:
                self.fail("recursion limit exceeded")
            return self.obj(depth + 1)
        if c == "[":
            if depth >= MAX_DEPTH:
                self.fail("recursion limit exceeded")
            return self.arr(depth + 1)
        if c == '"':
            return self.string()
        for word, val in (("true", True), ("false", False), ("null", None)):
            if s.startswith(word, i):
                self.i = i + len(word)
                return val
        m = _NUMBER.match(s, i)
        if m and m.end() > i:
            self.i = m.end()
            number = float(m.group())
            if number in (float("inf"), float("-inf")):
                self.fail("number out of range")
            return number
        self.fail("expected value")

    def obj(self, depth: int):
        self.i += 1
        items = {}
        self.ws()
        if self.s.startswith("}", self.i):
            self.i += 1
            return _Object(items)
        while True:
            self.ws()
            if not self.s.startswith('"', self.i):
                self.fail("key must be a string")
            key = self.string()
            self.ws()
            if not self.s.startswith(":", self.i):
                self.fail("expected `:`")
            self.i += 1
            items[key] = self.value(depth)
            self.ws()
            if self.s.startswith(",", self.i):
                self.i += 1
            elif self.s.startswith("}", self.i):
                self.i += 1
                return _Object(items)
            else:
                self.fail("expected `,` or `}`")

    def arr(self, depth: int):
        self.i += 1
        items = []
        self.ws()
        if self.s.startswith("]", self.i):
            self.i += 1
            return items
        while True:
            items.append(self.value(depth))
            self.ws()
            if self.s.startswith(",", self.i):
                self.i += 1
            elif self.s.startswith("]", self.i):
                self.i += 1
                return items
            else:
                self.fail("expected `,` or `]`")

    def hex4(self) -> int:
        m = _HEX4.match(self.s, self.i)
        if not m:
            self.fail("invalid escape")
        self.i = m.end()
        return int(m.group(), 16)

    def string(self) -> str:
        s = self.s
        self.i += 1  # the opening quote
        parts = []
        while True:
            m = _PLAIN.match(s, self.i)
            parts.append(m.group())
            self.i = m.end()
            if self.i >= len(s):
                self.fail("EOF while parsing a string")
            c = s[self.i]
            if c == '"':
                self.i += 1
                return "".join(parts)
            if c != "\\":
                self.fail("control character (\\u0000-\\u001F) found while parsing a string")
            self.i += 1
            if self.i >= len(s):
                self.fail("EOF while parsing a string")
            e = s[self.i]
            self.i += 1
            if e in _ESCAPES:
                parts.append(_ESCAPES[e])
            elif e == "u":
                unit = self.hex4()
                if 0xDC00 <= unit <= 0xDFFF:
                    self.fail("lone trailing surrogate in hex escape")
                if 0xD800 <= unit <= 0xDBFF:
                    if not s.startswith("\\u", self.i):
                        self.fail("unexpected end of hex escape")
                    self.i += 2
                    low = self.hex4()
                    if not 0xDC00 <= low <= 0xDFFF:
                        self.fail("lone leading surrogate in hex escape")
                    unit = 0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00)
                parts.append(chr(unit))
            else:
                self.fail("invalid escape")


def _failure(message: str, field: Optional[str]) -> Err:
    return Err(Failure(message=message, field=field, transient=False))


def _escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def _one_of(value, name: str, allowed, field: str) -> str:
    expected = ", ".join(allowed)
    if not isinstance(value, str):
        raise _failure(f"{name} must be a string: expected one of {expected}", field)
    if value not in allowed:
        raise _failure(f'unknown {name} "{value}": expected one of {expected}', field)
    return value


def _unknown_key(items: dict, known, prefix: str):
    # Python compares str by code point, as serde_json's sorted map does.
    for key in sorted(items):
        if key not in known:
            raise _failure(f'unknown field "{key}"', f"{prefix}/{_escape(key)}")


class _Output:
    __slots__ = ("kind", "level", "path")

    def __init__(self, kind, level, path):
        self.kind, self.level, self.path = kind, level, path


def _parse_output(index: int, item, default_level: str) -> _Output:
    at = f"/outputs/{index}"
    if not isinstance(item, _Object):
        raise _failure("output must be an object", at)
    o = item.items
    if "type" not in o:
        raise _failure("output type is required: expected one of stdout, stderr, file", f"{at}/type")
    kind = _one_of(o["type"], "output type", OUTPUT_TYPES, f"{at}/type")
    path = None
    if kind == "file":
        if "path" not in o:
            raise _failure("file output requires a path", f"{at}/path")
        path = o["path"]
        if not isinstance(path, str) or path == "":
            raise _failure("path must be a non-empty string", f"{at}/path")
    elif "path" in o:
        raise _failure("path is only allowed for file outputs", f"{at}/path")
    level = default_level
    if "level" in o:
        level = _one_of(o["level"], "level", LEVELS, f"{at}/level")
    _unknown_key(o, ("type", "path", "level"), at)
    return _Output(kind, level, path)


class _Config:
    def __init__(self, level, format, outputs, fields):
        self.level, self.format, self.outputs, self.fields = level, format, outputs, fields


def parse(text: str) -> _Config:
    try:
        value = _Parser(text).document()
    except JsonError as e:
        raise _failure(f"invalid JSON: {e}", None)
    if not isinstance(value, _Object):
        raise _failure("configuration must be a JSON object", None)
    top = value.items
    level = _one_of(top["level"], "level", LEVELS, "/level") if "level" in top else "info"
    format = _one_of(top["format"], "format", FORMATS, "/format") if "format" in top else "text"
    if "outputs" not in top:
        outputs = [_Output("stdout", level, None)]
    else:
        items = top["outputs"]
        if not isinstance(items, list):
            raise _failure("outputs must be an array", "/outputs")
        if not items:
            raise _failure("at least one output is required", "/outputs")
        outputs = [_parse_output(i, item, level) for i, item in enumerate(items)]
    fields = []
    if "fields" in top:
        f = top["fields"]
        if not isinstance(f, _Object):
            raise _failure("fields must be an object", "/fields")
        for key in sorted(f.items):
            v = f.items[key]
            if not isinstance(v, str):
                raise _failure(f'field "{key}" must be a string', f"/fields/{_escape(key)}")
            fields.append((key, v))
    _unknown_key(top, ("level", "format", "outputs", "fields"), "")
    return _Config(level, format, outputs, fields)


_NAMED = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t"}
_TO_ESCAPE = re.compile(r'["\\\x00-\x1f]')


def quote(s: str) -> str:
    """A JSON string as serde_json writes it: only `"`, `\\` and controls escaped."""
    return '"' + _TO_ESCAPE.sub(lambda m: _NAMED.get(m.group()) or "\\u%04x" % ord(m.group()), s) + '"'


def to_json(c: _Config) -> str:
    outputs = []
    for o in c.outputs:
        path = f',"path":{quote(o.path)}' if o.path is not None else ""
        outputs.append(f'{{"type":{quote(o.kind)},"level":{quote(o.level)}{path}}}')
    fields = ",".join(f"{quote(k)}:{quote(v)}" for k, v in c.fields)
    return (
        f'{{"level":{quote(c.level)},"format":{quote(c.format)},'
        f'"outputs":[{",".join(outputs)}],"fields":{{{fields}}}}}'
    )


# The configuration in force (what the last apply or rollback made so).
_current: Optional[_Config] = None
# What the last successful prepare computed: (text, normalised _Config).
# Not in force: only apply of the same text makes it so.
_prepared: Optional[tuple] = None


class WitWorld(wit_world.WitWorld):
    def support_level(self) -> SupportLevel:
        return SupportLevel.FULL

    def prepare(self, old_config: Optional[str], new_config: str) -> Prepared:
        global _prepared
        _prepared = None  # a refused candidate leaves nothing to apply
        config = parse(new_config)
        effective = to_json(config)
        _prepared = (new_config, config)
        # Full support: every change, and no change, takes effect in place.
        return Prepared(plan=Plan_InPlace(), effective=effective)

    def apply(self, old_config: Optional[str], new_config: str) -> None:
        global _current, _prepared
        prepared, _prepared = _prepared, None
        if prepared is not None and prepared[0] == new_config:
            config = prepared[1]
        else:
            config = parse(new_config)
        _current = config
        host.log(
            host.LogLevel.INFO,
            f"logging reconfigured: level={config.level} format={config.format} outputs={len(config.outputs)}",
        )

    def rollback(self, config: str) -> None:
        global _current, _prepared
        _prepared = None
        _current = parse(config)
