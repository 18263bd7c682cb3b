// The `logging` handler in C (wit-bindgen's C generator, wasi-libc).
//
// A port of the Rust reference handler (handlers/logging/src/lib.rs); its
// crate doc is the specification, and handlers/cases/logging.json is the
// shared behaviour table this port is checked against.
//
// The JSON parser below is our own (no dependencies). It accepts exactly what
// serde_json accepts: RFC 8259 JSON, no lone surrogates in \u escapes,
// numbers that fit an f64 (1e400 is refused), and nesting at most 127 deep
// (serde_json's recursion limit; deeper input is refused before recursing,
// so no input can exhaust the stack). Objects keep the last of duplicate keys
// and are sorted by key bytes, which for UTF-8 is Unicode code point order.
// Strings are (pointer, length) pairs throughout: a "\u0000" in a key or a
// value is kept, never taken for the end of the string.
//
// Memory: every call frees what it allocated, except the strings handed back
// to the host, which the generated cabi_post_* functions free. Running out of
// memory aborts (a trap, which the host reports as a failed call).

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "handler.h"

#define MAX_DEPTH 127

// ---------------------------------------------------------------- utilities

static void *xmalloc(size_t n) {
  void *p = malloc(n ? n : 1);
  if (!p) abort();
  return p;
}

static void *xrealloc(void *p, size_t n) {
  p = realloc(p, n ? n : 1);
  if (!p) abort();
  return p;
}

/// A growable byte buffer.
typedef struct {
  char *p;
  size_t len, cap;
} buf_t;

static void buf_add(buf_t *b, const char *s, size_t n) {
  if (n == 0) return;
  if (b->len + n > b->cap) {
    size_t cap = b->cap ? b->cap : 64;
    while (cap < b->len + n) cap *= 2;
    b->p = xrealloc(b->p, cap);
    b->cap = cap;
  }
  memcpy(b->p + b->len, s, n);
  b->len += n;
}

static void buf_str(buf_t *b, const char *s) { buf_add(b, s, strlen(s)); }

static void buf_byte(buf_t *b, char c) { buf_add(b, &c, 1); }

static void buf_size(buf_t *b, size_t n) {
  char tmp[32];
  int k = snprintf(tmp, sizeof tmp, "%zu", n);
  buf_add(b, tmp, (size_t)k);
}

/// Hands the buffer over as a WIT string (the host frees it after the call).
static handler_string_t buf_take(buf_t *b) {
  handler_string_t s;
  if (b->len == 0) {
    free(b->p);
    s.ptr = NULL;
    s.len = 0;
  } else {
    s.ptr = (uint8_t *)b->p;
    s.len = b->len;
  }
  b->p = NULL;
  b->len = b->cap = 0;
  return s;
}

// ---------------------------------------------------------------- JSON values

typedef enum { J_NULL, J_BOOL, J_NUMBER, J_STRING, J_ARRAY, J_OBJECT } jtype_t;

typedef struct jvalue jvalue_t;

typedef struct {
  char *p;  // UTF-8, not NUL-terminated
  size_t len;
} jstr_t;

typedef struct {
  jstr_t key;
  jvalue_t *value;
  size_t order;  // position in the text, to keep the last of duplicates
} jmember_t;

struct jvalue {
  jtype_t type;
  jstr_t str;           // J_STRING
  jvalue_t **items;     // J_ARRAY
  jmember_t *members;   // J_OBJECT, sorted by key, no duplicates
  size_t len;           // number of items or members
};

static void jfree(jvalue_t *v) {
  if (!v) return;
  if (v->type == J_STRING) free(v->str.p);
  if (v->type == J_ARRAY) {
    for (size_t i = 0; i < v->len; i++) jfree(v->items[i]);
    free(v->items);
  }
  if (v->type == J_OBJECT) {
    for (size_t i = 0; i < v->len; i++) {
      free(v->members[i].key.p);
      jfree(v->members[i].value);
    }
    free(v->members);
  }
  free(v);
}

static int jstr_cmp(const jstr_t *a, const jstr_t *b) {
  size_t n = a->len < b->len ? a->len : b->len;
  int c = n ? memcmp(a->p, b->p, n) : 0;
  if (c) return c;
  return a->len < b->len ? -1 : a->len > b->len ? 1 : 0;
}

static bool jstr_is(const jstr_t *a, const char *s) {
  size_t n = strlen(s);
  return a->len == n && memcmp(a->p, s, n) == 0;
}

static int member_cmp(const void *x, const void *y) {
  const jmember_t *a = x, *b = y;
  int c = jstr_cmp(&a->key, &b->key);
  if (c) return c;
  return a->order < b->order ? -1 : a->order > b->order ? 1 : 0;
}

/// The member of `obj` named `key`, or NULL (binary search: members are sorted).
static jvalue_t *jget(const jvalue_t *obj, const char *key) {
  jstr_t k = {(char *)key, strlen(key)};
  size_t lo = 0, hi = obj->len;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    int c = jstr_cmp(&obj->members[mid].key, &k);
    if (c == 0) return obj->members[mid].value;
    if (c < 0) lo = mid + 1;
    else hi = mid;
  }
  return NULL;
}

// ---------------------------------------------------------------- JSON parser

typedef struct {
  const char *s;
  size_t len, i;
  const char *error;  // set on the first error
} parser_t;

static jvalue_t *parse_value(parser_t *p, int depth);

static jvalue_t *new_value(jtype_t t) {
  jvalue_t *v = xmalloc(sizeof *v);
  memset(v, 0, sizeof *v);
  v->type = t;
  return v;
}

static void *fail(parser_t *p, const char *what) {
  if (!p->error) p->error = what;
  return NULL;
}

static void skip_ws(parser_t *p) {
  while (p->i < p->len) {
    char c = p->s[p->i];
    if (c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
    p->i++;
  }
}

static bool peek(parser_t *p, char c) { return p->i < p->len && p->s[p->i] == c; }

static int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/// Reads 4 hex digits at p->i; -1 if there are not 4.
static long hex4(parser_t *p) {
  if (p->len - p->i < 4) return -1;
  long v = 0;
  for (int k = 0; k < 4; k++) {
    int d = hex_digit(p->s[p->i + k]);
    if (d < 0) return -1;
    v = v * 16 + d;
  }
  p->i += 4;
  return v;
}

static void put_utf8(buf_t *b, unsigned long cp) {
  char u[4];
  if (cp < 0x80) {
    u[0] = (char)cp;
    buf_add(b, u, 1);
  } else if (cp < 0x800) {
    u[0] = (char)(0xC0 | (cp >> 6));
    u[1] = (char)(0x80 | (cp & 0x3F));
    buf_add(b, u, 2);
  } else if (cp < 0x10000) {
    u[0] = (char)(0xE0 | (cp >> 12));
    u[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
    u[2] = (char)(0x80 | (cp & 0x3F));
    buf_add(b, u, 3);
  } else {
    u[0] = (char)(0xF0 | (cp >> 18));
    u[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    u[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    u[3] = (char)(0x80 | (cp & 0x3F));
    buf_add(b, u, 4);
  }
}

/// Parses a string at p->i (which is at the opening quote) into `out`.
static bool parse_string(parser_t *p, jstr_t *out) {
  buf_t b = {0};
  p->i++;  // the opening quote
  for (;;) {
    size_t start = p->i;
    while (p->i < p->len) {
      unsigned char c = (unsigned char)p->s[p->i];
      if (c == '"' || c == '\\' || c < 0x20) break;
      p->i++;
    }
    buf_add(&b, p->s + start, p->i - start);
    if (p->i >= p->len) {
      fail(p, "EOF while parsing a string");
      goto error;
    }
    char c = p->s[p->i];
    if (c == '"') {
      p->i++;
      out->p = b.p ? b.p : xmalloc(1);
      out->len = b.len;
      return true;
    }
    if (c != '\\') {
      fail(p, "control character (\\u0000-\\u001F) found while parsing a string");
      goto error;
    }
    p->i++;
    if (p->i >= p->len) {
      fail(p, "EOF while parsing a string");
      goto error;
    }
    char e = p->s[p->i++];
    switch (e) {
      case '"': buf_byte(&b, '"'); break;
      case '\\': buf_byte(&b, '\\'); break;
      case '/': buf_byte(&b, '/'); break;
      case 'b': buf_byte(&b, '\b'); break;
      case 'f': buf_byte(&b, '\f'); break;
      case 'n': buf_byte(&b, '\n'); break;
      case 'r': buf_byte(&b, '\r'); break;
      case 't': buf_byte(&b, '\t'); break;
      case 'u': {
        long unit = hex4(p);
        if (unit < 0) {
          fail(p, "invalid escape");
          goto error;
        }
        if (unit >= 0xDC00 && unit <= 0xDFFF) {
          fail(p, "lone trailing surrogate in hex escape");
          goto error;
        }
        if (unit >= 0xD800 && unit <= 0xDBFF) {
          if (p->len - p->i < 2 || p->s[p->i] != '\\' || p->s[p->i + 1] != 'u') {
            fail(p, "unexpected end of hex escape");
            goto error;
          }
          p->i += 2;
          long low = hex4(p);
          if (low < 0) {
            fail(p, "invalid escape");
            goto error;
          }
          if (low < 0xDC00 || low > 0xDFFF) {
            fail(p, "lone leading surrogate in hex escape");
            goto error;
          }
          unit = 0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00);
        }
        put_utf8(&b, (unsigned long)unit);
        break;
      }
      default:
        fail(p, "invalid escape");
        goto error;
    }
  }
error:
  free(b.p);
  return false;
}

static bool is_digit(char c) { return c >= '0' && c <= '9'; }

static jvalue_t *parse_number(parser_t *p) {
  size_t start = p->i;
  if (peek(p, '-')) p->i++;
  if (p->i >= p->len || !is_digit(p->s[p->i])) return fail(p, "invalid number");
  if (p->s[p->i] == '0') {
    p->i++;
  } else {
    while (p->i < p->len && is_digit(p->s[p->i])) p->i++;
  }
  if (peek(p, '.')) {
    p->i++;
    if (p->i >= p->len || !is_digit(p->s[p->i])) return fail(p, "invalid number");
    while (p->i < p->len && is_digit(p->s[p->i])) p->i++;
  }
  if (peek(p, 'e') || peek(p, 'E')) {
    p->i++;
    if (peek(p, '+') || peek(p, '-')) p->i++;
    if (p->i >= p->len || !is_digit(p->s[p->i])) return fail(p, "invalid number");
    while (p->i < p->len && is_digit(p->s[p->i])) p->i++;
  }
  size_t n = p->i - start;
  char *text = xmalloc(n + 1);
  memcpy(text, p->s + start, n);
  text[n] = 0;
  double d = strtod(text, NULL);
  free(text);
  if (isinf(d)) return fail(p, "number out of range");
  return new_value(J_NUMBER);
}

static jvalue_t *parse_array(parser_t *p, int depth) {
  jvalue_t *v = new_value(J_ARRAY);
  size_t cap = 0;
  p->i++;
  skip_ws(p);
  if (peek(p, ']')) {
    p->i++;
    return v;
  }
  for (;;) {
    jvalue_t *item = parse_value(p, depth);
    if (!item) break;
    if (v->len == cap) {
      cap = cap ? cap * 2 : 4;
      v->items = xrealloc(v->items, cap * sizeof *v->items);
    }
    v->items[v->len++] = item;
    skip_ws(p);
    if (peek(p, ',')) {
      p->i++;
    } else if (peek(p, ']')) {
      p->i++;
      return v;
    } else {
      fail(p, p->i >= p->len ? "EOF while parsing a list" : "expected `,` or `]`");
      break;
    }
  }
  jfree(v);
  return NULL;
}

static jvalue_t *parse_object(parser_t *p, int depth) {
  jvalue_t *v = new_value(J_OBJECT);
  size_t cap = 0;
  p->i++;
  skip_ws(p);
  if (peek(p, '}')) {
    p->i++;
    return v;
  }
  for (;;) {
    skip_ws(p);
    if (!peek(p, '"')) {
      fail(p, p->i >= p->len ? "EOF while parsing an object" : "key must be a string");
      break;
    }
    jstr_t key;
    if (!parse_string(p, &key)) break;
    skip_ws(p);
    if (!peek(p, ':')) {
      free(key.p);
      fail(p, p->i >= p->len ? "EOF while parsing an object" : "expected `:`");
      break;
    }
    p->i++;
    jvalue_t *item = parse_value(p, depth);
    if (!item) {
      free(key.p);
      break;
    }
    if (v->len == cap) {
      cap = cap ? cap * 2 : 4;
      v->members = xrealloc(v->members, cap * sizeof *v->members);
    }
    v->members[v->len].key = key;
    v->members[v->len].value = item;
    v->members[v->len].order = v->len;
    v->len++;
    skip_ws(p);
    if (peek(p, ',')) {
      p->i++;
    } else if (peek(p, '}')) {
      p->i++;
      // Sort by key, then by position; of equal keys keep the last.
      if (v->len > 1) qsort(v->members, v->len, sizeof *v->members, member_cmp);
      size_t kept = 0;
      for (size_t k = 0; k < v->len; k++) {
        if (k + 1 < v->len && jstr_cmp(&v->members[k].key, &v->members[k + 1].key) == 0) {
          free(v->members[k].key.p);
          jfree(v->members[k].value);
          continue;
        }
        v->members[kept++] = v->members[k];
      }
      v->len = kept;
      return v;
    } else {
      fail(p, p->i >= p->len ? "EOF while parsing an object" : "expected `,` or `}`");
      break;
    }
  }
  jfree(v);
  return NULL;
}

static jvalue_t *parse_value(parser_t *p, int depth) {
  skip_ws(p);
  if (p->i >= p->len) return fail(p, "EOF while parsing a value");
  char c = p->s[p->i];
  switch (c) {
    case '{':
    case '[':
      if (depth >= MAX_DEPTH) return fail(p, "recursion limit exceeded");
      return c == '{' ? parse_object(p, depth + 1) : parse_array(p, depth + 1);
    case '"': {
      jvalue_t *v = new_value(J_STRING);
      if (!parse_string(p, &v->str)) {
        free(v);
        return NULL;
      }
      return v;
    }
    case 't':
    case 'f':
    case 'n': {
      const char *word = c == 't' ? "true" : c == 'f' ? "false" : "null";
      size_t n = strlen(word);
      if (p->len - p->i < n || memcmp(p->s + p->i, word, n) != 0) return fail(p, "expected ident");
      p->i += n;
      return new_value(c == 'n' ? J_NULL : J_BOOL);
    }
    default:
      if (c == '-' || is_digit(c)) return parse_number(p);
      return fail(p, "expected value");
  }
}

/// Parses a whole document; NULL with `*error` set on invalid JSON.
static jvalue_t *parse_json(const char *s, size_t len, const char **error, size_t *offset) {
  parser_t p = {s, len, 0, NULL};
  jvalue_t *v = parse_value(&p, 0);
  if (v) {
    skip_ws(&p);
    if (p.i != p.len) {
      jfree(v);
      v = NULL;
      fail(&p, "trailing characters");
    }
  }
  *error = p.error;
  *offset = p.i;
  return v;
}

// ---------------------------------------------------------------- validation

static const char *const LEVELS[] = {"trace", "debug", "info", "warn", "error", NULL};
static const char *const FORMATS[] = {"text", "json", NULL};
static const char *const OUTPUT_TYPES[] = {"stdout", "stderr", "file", NULL};

typedef struct {
  const char *kind;
  const char *level;
  const jstr_t *path;  // borrowed from the parsed document; NULL if none
} output_t;

typedef struct {
  jvalue_t *doc;  // owns every string below
  const char *level;
  const char *format;
  output_t *outputs;
  size_t n_outputs;
  const jmember_t *fields;  // members of the `fields` object (sorted), or NULL
  size_t n_fields;
} config_t;

static void config_free(config_t *c) {
  jfree(c->doc);
  free(c->outputs);
  memset(c, 0, sizeof *c);
}

/// A failure under construction: `message`, and `field` if has_field.
typedef struct {
  buf_t message;
  buf_t field;
  bool has_field;
} failure_t;

static void failure_free(failure_t *f) {
  free(f->message.p);
  free(f->field.p);
}

/// Appends one JSON pointer reference token, `~` as `~0` and `/` as `~1`.
static void pointer_token(buf_t *b, const jstr_t *t) {
  for (size_t k = 0; k < t->len; k++) {
    if (t->p[k] == '~') buf_add(b, "~0", 2);
    else if (t->p[k] == '/') buf_add(b, "~1", 2);
    else buf_byte(b, t->p[k]);
  }
}

static bool set_failure(failure_t *f, const char *message, const char *field) {
  buf_str(&f->message, message);
  if (field) {
    f->has_field = true;
    buf_str(&f->field, field);
  }
  return false;
}

static void join(buf_t *b, const char *const *allowed) {
  for (size_t k = 0; allowed[k]; k++) {
    if (k) buf_add(b, ", ", 2);
    buf_str(b, allowed[k]);
  }
}

/// Checks that `v` is one of `allowed`; on failure fills `f` (field = `field`).
static bool one_of(const jvalue_t *v, const char *name, const char *const *allowed,
                   const char *field, const char **out, failure_t *f) {
  if (v->type == J_STRING) {
    for (size_t k = 0; allowed[k]; k++) {
      if (jstr_is(&v->str, allowed[k])) {
        *out = allowed[k];
        return true;
      }
    }
    buf_str(&f->message, "unknown ");
    buf_str(&f->message, name);
    buf_str(&f->message, " \"");
    buf_add(&f->message, v->str.p, v->str.len);
    buf_str(&f->message, "\": expected one of ");
  } else {
    buf_str(&f->message, name);
    buf_str(&f->message, " must be a string: expected one of ");
  }
  join(&f->message, allowed);
  f->has_field = true;
  buf_str(&f->field, field);
  return false;
}

/// Fails with the smallest key of `obj` that is not in `known`.
static bool unknown_key(const jvalue_t *obj, const char *const *known, const char *prefix,
                        failure_t *f) {
  for (size_t k = 0; k < obj->len; k++) {  // members are sorted: the first is the smallest
    const jstr_t *key = &obj->members[k].key;
    bool found = false;
    for (size_t j = 0; known[j]; j++) found = found || jstr_is(key, known[j]);
    if (found) continue;
    buf_str(&f->message, "unknown field \"");
    buf_add(&f->message, key->p, key->len);
    buf_byte(&f->message, '"');
    f->has_field = true;
    buf_str(&f->field, prefix);
    buf_byte(&f->field, '/');
    pointer_token(&f->field, key);
    return false;
  }
  return true;
}

static bool parse_output(size_t index, const jvalue_t *item, const char *default_level,
                         output_t *out, failure_t *f) {
  char at[64], field[80];
  snprintf(at, sizeof at, "/outputs/%zu", index);
  if (item->type != J_OBJECT) return set_failure(f, "output must be an object", at);
  const jvalue_t *type = jget(item, "type");
  snprintf(field, sizeof field, "%s/type", at);
  if (!type)
    return set_failure(f, "output type is required: expected one of stdout, stderr, file", field);
  if (!one_of(type, "output type", OUTPUT_TYPES, field, &out->kind, f)) return false;
  const jvalue_t *path = jget(item, "path");
  snprintf(field, sizeof field, "%s/path", at);
  out->path = NULL;
  if (strcmp(out->kind, "file") == 0) {
    if (!path) return set_failure(f, "file output requires a path", field);
    if (path->type != J_STRING || path->str.len == 0)
      return set_failure(f, "path must be a non-empty string", field);
    out->path = &path->str;
  } else if (path) {
    return set_failure(f, "path is only allowed for file outputs", field);
  }
  const jvalue_t *level = jget(item, "level");
  out->level = default_level;
  snprintf(field, sizeof field, "%s/level", at);
  if (level && !one_of(level, "level", LEVELS, field, &out->level, f)) return false;
  static const char *const known[] = {"type", "path", "level", NULL};
  return unknown_key(item, known, at, f);
}

/// Parses and checks `text`; on success fills `c` (free it with config_free).
static bool parse_config(const handler_string_t *text, config_t *c, failure_t *f) {
  memset(c, 0, sizeof *c);
  const char *error;
  size_t offset;
  jvalue_t *doc = parse_json((const char *)text->ptr, text->len, &error, &offset);
  if (!doc) {
    buf_str(&f->message, "invalid JSON: ");
    buf_str(&f->message, error);
    buf_str(&f->message, " at offset ");
    buf_size(&f->message, offset);
    return false;
  }
  c->doc = doc;
  if (doc->type != J_OBJECT) {
    set_failure(f, "configuration must be a JSON object", NULL);
    goto error;
  }
  const jvalue_t *v;
  c->level = "info";
  if ((v = jget(doc, "level")) && !one_of(v, "level", LEVELS, "/level", &c->level, f)) goto error;
  c->format = "text";
  if ((v = jget(doc, "format")) && !one_of(v, "format", FORMATS, "/format", &c->format, f))
    goto error;
  if (!(v = jget(doc, "outputs"))) {
    c->outputs = xmalloc(sizeof *c->outputs);
    c->outputs[0] = (output_t){"stdout", c->level, NULL};
    c->n_outputs = 1;
  } else if (v->type != J_ARRAY) {
    set_failure(f, "outputs must be an array", "/outputs");
    goto error;
  } else if (v->len == 0) {
    set_failure(f, "at least one output is required", "/outputs");
    goto error;
  } else {
    c->outputs = xmalloc(v->len * sizeof *c->outputs);
    for (size_t k = 0; k < v->len; k++) {
      if (!parse_output(k, v->items[k], c->level, &c->outputs[k], f)) goto error;
      c->n_outputs++;
    }
  }
  if ((v = jget(doc, "fields"))) {
    if (v->type != J_OBJECT) {
      set_failure(f, "fields must be an object", "/fields");
      goto error;
    }
    for (size_t k = 0; k < v->len; k++) {  // sorted: the smallest key first
      const jmember_t *m = &v->members[k];
      if (m->value->type == J_STRING) continue;
      buf_str(&f->message, "field \"");
      buf_add(&f->message, m->key.p, m->key.len);
      buf_str(&f->message, "\" must be a string");
      f->has_field = true;
      buf_str(&f->field, "/fields/");
      pointer_token(&f->field, &m->key);
      goto error;
    }
    c->fields = v->members;
    c->n_fields = v->len;
  }
  static const char *const known[] = {"level", "format", "outputs", "fields", NULL};
  if (!unknown_key(doc, known, "", f)) goto error;
  return true;
error:
  config_free(c);
  return false;
}

// ---------------------------------------------------------------- effective configuration

/// Appends `s` as a JSON string, escaped as serde_json does.
static void quote(buf_t *b, const char *s, size_t len) {
  static const char hex[] = "0123456789abcdef";
  buf_byte(b, '"');
  size_t start = 0;
  for (size_t k = 0; k < len; k++) {
    unsigned char c = (unsigned char)s[k];
    const char *esc = NULL;
    char u[6];
    switch (c) {
      case '"': esc = "\\\""; break;
      case '\\': esc = "\\\\"; break;
      case '\b': esc = "\\b"; break;
      case '\f': esc = "\\f"; break;
      case '\n': esc = "\\n"; break;
      case '\r': esc = "\\r"; break;
      case '\t': esc = "\\t"; break;
      default:
        if (c >= 0x20) continue;
        break;
    }
    buf_add(b, s + start, k - start);
    start = k + 1;
    if (esc) {
      buf_str(b, esc);
    } else {
      memcpy(u, "\\u00", 4);
      u[4] = hex[c >> 4];
      u[5] = hex[c & 15];
      buf_add(b, u, 6);
    }
  }
  buf_add(b, s + start, len - start);
  buf_byte(b, '"');
}

static void quote_c(buf_t *b, const char *s) { quote(b, s, strlen(s)); }

static void to_json(const config_t *c, buf_t *b) {
  buf_str(b, "{\"level\":");
  quote_c(b, c->level);
  buf_str(b, ",\"format\":");
  quote_c(b, c->format);
  buf_str(b, ",\"outputs\":[");
  for (size_t k = 0; k < c->n_outputs; k++) {
    const output_t *o = &c->outputs[k];
    if (k) buf_byte(b, ',');
    buf_str(b, "{\"type\":");
    quote_c(b, o->kind);
    buf_str(b, ",\"level\":");
    quote_c(b, o->level);
    if (o->path) {
      buf_str(b, ",\"path\":");
      quote(b, o->path->p, o->path->len);
    }
    buf_byte(b, '}');
  }
  buf_str(b, "],\"fields\":{");
  for (size_t k = 0; k < c->n_fields; k++) {
    const jmember_t *m = &c->fields[k];
    if (k) buf_byte(b, ',');
    quote(b, m->key.p, m->key.len);
    buf_byte(b, ':');
    quote(b, m->value->str.p, m->value->str.len);
  }
  buf_str(b, "}}");
}

// ---------------------------------------------------------------- exports

/// The configuration applied by the last successful reload or rollback.
static config_t current;
static bool have_current;

static void make_current(config_t *c) {
  if (have_current) config_free(&current);
  current = *c;
  have_current = true;
}

static void to_wit_failure(failure_t *f, handler_failure_t *err) {
  err->message = buf_take(&f->message);
  err->field.is_some = f->has_field;
  if (f->has_field) err->field.val = buf_take(&f->field);
  else free(f->field.p);
  err->transient = false;
}

/// Checks `text`; on failure fills `err`, on success fills `out` if not NULL.
static bool check(const handler_string_t *text, config_t *out, handler_failure_t *err) {
  config_t c;
  failure_t f = {0};
  if (!parse_config(text, &c, &f)) {
    to_wit_failure(&f, err);
    return false;
  }
  failure_free(&f);
  if (out) *out = c;
  else config_free(&c);
  return true;
}

handler_support_level_t exports_handler_support_level(void) {
  return HOTRELOAD_HANDLER_TYPES_SUPPORT_LEVEL_FULL;
}

bool exports_handler_validate(handler_string_t *config, handler_failure_t *err) {
  bool ok = check(config, NULL, err);
  handler_string_free(config);
  return ok;
}

bool exports_handler_can_reload(handler_string_t *old_config, handler_string_t *new_config) {
  handler_string_free(old_config);
  handler_string_free(new_config);
  return true;
}

bool exports_handler_reload(handler_string_t *maybe_old_config, handler_string_t *new_config,
                            handler_option_string_t *ret, handler_failure_t *err) {
  if (maybe_old_config) handler_string_free(maybe_old_config);
  config_t c;
  bool ok = check(new_config, &c, err);
  if (ok) {
    buf_t json = {0};
    to_json(&c, &json);
    buf_t line = {0};
    buf_str(&line, "logging reconfigured: level=");
    buf_str(&line, c.level);
    buf_str(&line, " format=");
    buf_str(&line, c.format);
    buf_str(&line, " outputs=");
    buf_size(&line, c.n_outputs);
    handler_string_t message = {(uint8_t *)line.p, line.len};
    hotreload_handler_host_log(HOTRELOAD_HANDLER_HOST_LOG_LEVEL_INFO, &message);
    free(line.p);
    make_current(&c);  // the parsed document lives on with it
    ret->is_some = true;
    ret->val = buf_take(&json);
  }
  handler_string_free(new_config);
  return ok;
}

bool exports_handler_rollback(handler_string_t *config, handler_failure_t *err) {
  config_t c;
  bool ok = check(config, &c, err);
  if (ok) make_current(&c);
  handler_string_free(config);
  return ok;
}
