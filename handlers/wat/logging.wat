;; The `logging` handler, SUBSET edition, hand-written as a core WebAssembly
;; module that implements the canonical ABI of the `handler` world itself.
;; README.md in this folder says exactly which part of the Rust reference
;; handler's behaviour (handlers/logging/src/lib.rs) this covers.
;;
;; In short: the whole text is checked as JSON (syntax, \u escapes and
;; surrogates, nesting at most 127 deep), the top level must be an object, and
;; of its members only "level" is understood; any other member is refused as
;; unsupported.
;;
;; Canonical ABI, as `wasm-tools component embed/new` expect it:
;; - `cabi_realloc` is a bump allocator; every `cabi_post_*` function (and
;;   `can-reload`, which returns no memory) resets the heap, since nothing
;;   allocated for one call is needed after it. State kept across calls (the
;;   current level) lives in a global, not on the heap.
;; - results go into a static return area (RET_AREA), laid out as
;;     result<_, failure>:             0 tag | 4 message ptr | 8 message len |
;;                                     12 field tag | 16 field ptr | 20 field len | 24 transient
;;     result<option<string>, failure>: 0 tag | 4 option tag | 8 ptr | 12 len (ok),
;;                                     as above (err)
;;
;; Memory map: 0x0100.. level names; 0x0200.. other constants (NUL-terminated,
;; measured by $strlen); 0x1100 the parser's container stack (one byte per
;; level); 0x1200 RET_AREA; 0x2000.. the heap.
(module
  (import "hotreload:handler/host@0.1.0" "log" (func $host_log (param i32 i32 i32)))

  (memory (export "memory") 1)

  (global $HEAP_BASE i32 (i32.const 0x2000))
  (global $STACK i32 (i32.const 0x1100))
  (global $RET i32 (i32.const 0x1200))
  (global $MAX_DEPTH i32 (i32.const 127))

  (global $heap (mut i32) (i32.const 0x2000))
  ;; parser state
  (global $p (mut i32) (i32.const 0))
  (global $end (mut i32) (i32.const 0))
  (global $esc (mut i32) (i32.const 0))     ;; the last string scanned had an escape
  (global $err (mut i32) (i32.const 0))     ;; address of the error message (C string)
  ;; what the parser saw at the top level
  (global $top_obj (mut i32) (i32.const 0))
  (global $lvl_kind (mut i32) (i32.const 0)) ;; 0 absent, 1 string, 2 not a string
  (global $lvl_start (mut i32) (i32.const 0))
  (global $lvl_len (mut i32) (i32.const 0))
  (global $other (mut i32) (i32.const 0))    ;; a member other than "level"
  ;; result of $check
  (global $lvl_idx (mut i32) (i32.const 2))
  (global $f_msg (mut i32) (i32.const 0))
  (global $f_msg_len (mut i32) (i32.const 0))
  (global $f_field (mut i32) (i32.const 0))  ;; 0: no field
  (global $f_field_len (mut i32) (i32.const 0))
  ;; the level applied by the last successful reload or rollback (-1: none)
  (global $current (mut i32) (i32.const -1))

  ;; level names, 8 bytes apart: index k at 0x100 + 8k
  (data (i32.const 0x100) "trace\00\00\00debug\00\00\00info\00\00\00\00warn\00\00\00\00error\00")

  (data (i32.const 0x200) "level\00")
  (data (i32.const 0x210) "true\00")
  (data (i32.const 0x218) "false\00")
  (data (i32.const 0x220) "null\00")
  (data (i32.const 0x230) "/level\00")

  (data (i32.const 0x400) "configuration must be a JSON object\00")
  (data (i32.const 0x480) "level must be a string: expected one of trace, debug, info, warn, error\00")
  (data (i32.const 0x500) "unknown level \"\00")
  (data (i32.const 0x580) "\": expected one of trace, debug, info, warn, error\00")
  (data (i32.const 0x600) "unsupported configuration: this WAT subset handler implements only the \"level\" field\00")

  (data (i32.const 0x700) "{\"level\":\"\00")
  (data (i32.const 0x780) "\",\"format\":\"text\",\"outputs\":[{\"type\":\"stdout\",\"level\":\"\00")
  (data (i32.const 0x800) "\"}],\"fields\":{}}\00")
  (data (i32.const 0x880) "logging reconfigured: level=\00")
  (data (i32.const 0x900) " format=text outputs=1\00")

  (data (i32.const 0xa00) "invalid JSON: EOF while parsing a value\00")
  (data (i32.const 0xa80) "invalid JSON: expected value\00")
  (data (i32.const 0xb00) "invalid JSON: recursion limit exceeded\00")
  (data (i32.const 0xb80) "invalid JSON: key must be a string\00")
  (data (i32.const 0xc00) "invalid JSON: expected `:`\00")
  (data (i32.const 0xc80) "invalid JSON: expected `,` or a closing bracket\00")
  (data (i32.const 0xd00) "invalid JSON: trailing characters\00")
  (data (i32.const 0xd80) "invalid JSON: EOF while parsing a string\00")
  (data (i32.const 0xe00) "invalid JSON: control character (\\u0000-\\u001F) found while parsing a string\00")
  (data (i32.const 0xe80) "invalid JSON: invalid escape\00")
  (data (i32.const 0xf00) "invalid JSON: lone surrogate in hex escape\00")
  (data (i32.const 0xf80) "invalid JSON: invalid number\00")
  (data (i32.const 0x1000) "invalid JSON: expected ident\00")

  ;; ------------------------------------------------------------ memory

  (func $strlen (param $s i32) (result i32)
    (local $i i32)
    (local.set $i (local.get $s))
    (block $done
      (loop $next
        (br_if $done (i32.eqz (i32.load8_u (local.get $i))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (i32.sub (local.get $i) (local.get $s)))

  ;; Bump-allocates `size` bytes aligned to `align`, growing the memory as needed.
  (func $alloc (param $align i32) (param $size i32) (result i32)
    (local $ptr i32) (local $new_end i32) (local $have i32)
    (local.set $ptr
      (i32.and
        (i32.add (global.get $heap) (i32.sub (local.get $align) (i32.const 1)))
        (i32.sub (i32.const 0) (local.get $align))))
    (local.set $new_end (i32.add (local.get $ptr) (local.get $size)))
    (if (i32.lt_u (local.get $new_end) (local.get $ptr)) (then unreachable))
    (local.set $have (i32.shl (memory.size) (i32.const 16)))
    (if (i32.gt_u (local.get $new_end) (local.get $have))
      (then
        (if (i32.eq
              (memory.grow
                (i32.shr_u
                  (i32.add (i32.sub (local.get $new_end) (local.get $have)) (i32.const 0xffff))
                  (i32.const 16)))
              (i32.const -1))
          (then unreachable))))
    (global.set $heap (local.get $new_end))
    (local.get $ptr))

  (func $cabi_realloc (export "cabi_realloc")
    (param $old i32) (param $old_size i32) (param $align i32) (param $new_size i32) (result i32)
    (local $ptr i32)
    (if (i32.eqz (local.get $new_size)) (then (return (local.get $align))))
    (local.set $ptr (call $alloc (local.get $align) (local.get $new_size)))
    (if (local.get $old)
      (then
        (memory.copy (local.get $ptr) (local.get $old)
          (select (local.get $old_size) (local.get $new_size)
            (i32.lt_u (local.get $old_size) (local.get $new_size))))))
    (local.get $ptr))

  ;; Appends `len` bytes from `src` to the heap (consecutive appends are contiguous).
  (func $append (param $src i32) (param $len i32)
    (memory.copy (call $alloc (i32.const 1) (local.get $len)) (local.get $src) (local.get $len)))

  (func $append_cstr (param $s i32)
    (call $append (local.get $s) (call $strlen (local.get $s))))

  (func $memeq (param $a i32) (param $b i32) (param $n i32) (result i32)
    (block $differ
      (loop $next
        (if (i32.eqz (local.get $n)) (then (return (i32.const 1))))
        (br_if $differ (i32.ne (i32.load8_u (local.get $a)) (i32.load8_u (local.get $b))))
        (local.set $a (i32.add (local.get $a) (i32.const 1)))
        (local.set $b (i32.add (local.get $b) (i32.const 1)))
        (local.set $n (i32.sub (local.get $n) (i32.const 1)))
        (br $next)))
    (i32.const 0))

  ;; ------------------------------------------------------------ JSON scanning

  ;; The byte at $p, or -1 at the end.
  (func $peek (result i32)
    (if (result i32) (i32.ge_u (global.get $p) (global.get $end))
      (then (i32.const -1))
      (else (i32.load8_u (global.get $p)))))

  (func $ws
    (local $c i32)
    (block $done
      (loop $next
        (local.set $c (call $peek))
        (br_if $done
          (i32.eqz
            (i32.or
              (i32.or (i32.eq (local.get $c) (i32.const 0x20)) (i32.eq (local.get $c) (i32.const 0x09)))
              (i32.or (i32.eq (local.get $c) (i32.const 0x0a)) (i32.eq (local.get $c) (i32.const 0x0d))))))
        (global.set $p (i32.add (global.get $p) (i32.const 1)))
        (br $next))))

  (func $is_digit (param $c i32) (result i32)
    (i32.lt_u (i32.sub (local.get $c) (i32.const 0x30)) (i32.const 10)))

  (func $hex_digit (param $c i32) (result i32)
    (if (call $is_digit (local.get $c)) (then (return (i32.sub (local.get $c) (i32.const 0x30)))))
    (local.set $c (i32.or (local.get $c) (i32.const 0x20))) ;; lower case
    (if (i32.lt_u (i32.sub (local.get $c) (i32.const 0x61)) (i32.const 6))
      (then (return (i32.sub (local.get $c) (i32.const 0x57)))))
    (i32.const -1))

  ;; Four hex digits at $p as a number (and $p moved past them), or -1.
  (func $hex4 (result i32)
    (local $v i32) (local $k i32) (local $d i32)
    (if (i32.lt_u (i32.sub (global.get $end) (global.get $p)) (i32.const 4))
      (then (return (i32.const -1))))
    (loop $next
      (local.set $d (call $hex_digit (i32.load8_u (i32.add (global.get $p) (local.get $k)))))
      (if (i32.lt_s (local.get $d) (i32.const 0)) (then (return (i32.const -1))))
      (local.set $v (i32.or (i32.shl (local.get $v) (i32.const 4)) (local.get $d)))
      (local.set $k (i32.add (local.get $k) (i32.const 1)))
      (br_if $next (i32.lt_u (local.get $k) (i32.const 4))))
    (global.set $p (i32.add (global.get $p) (i32.const 4)))
    (local.get $v))

  ;; Scans a string; $p is at its opening quote. 1, or 0 with $err set.
  ;; Sets $esc when the string has an escape.
  (func $scan_string (result i32)
    (local $c i32) (local $u i32)
    (global.set $esc (i32.const 0))
    (global.set $p (i32.add (global.get $p) (i32.const 1)))
    (loop $next
      (local.set $c (call $peek))
      (if (i32.eq (local.get $c) (i32.const -1))
        (then (global.set $err (i32.const 0xd80)) (return (i32.const 0))))
      (global.set $p (i32.add (global.get $p) (i32.const 1)))
      (if (i32.eq (local.get $c) (i32.const 0x22)) (then (return (i32.const 1))))
      (if (i32.lt_u (local.get $c) (i32.const 0x20))
        (then (global.set $err (i32.const 0xe00)) (return (i32.const 0))))
      (if (i32.eq (local.get $c) (i32.const 0x5c))
        (then
          (global.set $esc (i32.const 1))
          (local.set $c (call $peek))
          (if (i32.eq (local.get $c) (i32.const -1))
            (then (global.set $err (i32.const 0xd80)) (return (i32.const 0))))
          (global.set $p (i32.add (global.get $p) (i32.const 1)))
          (block $simple
            ;; " \ / b f n r t
            (br_if $simple (i32.eq (local.get $c) (i32.const 0x22)))
            (br_if $simple (i32.eq (local.get $c) (i32.const 0x5c)))
            (br_if $simple (i32.eq (local.get $c) (i32.const 0x2f)))
            (br_if $simple (i32.eq (local.get $c) (i32.const 0x62)))
            (br_if $simple (i32.eq (local.get $c) (i32.const 0x66)))
            (br_if $simple (i32.eq (local.get $c) (i32.const 0x6e)))
            (br_if $simple (i32.eq (local.get $c) (i32.const 0x72)))
            (br_if $simple (i32.eq (local.get $c) (i32.const 0x74)))
            (if (i32.ne (local.get $c) (i32.const 0x75))
              (then (global.set $err (i32.const 0xe80)) (return (i32.const 0))))
            ;; \uXXXX
            (local.set $u (call $hex4))
            (if (i32.lt_s (local.get $u) (i32.const 0))
              (then (global.set $err (i32.const 0xe80)) (return (i32.const 0))))
            (if (i32.eq (i32.and (local.get $u) (i32.const 0xfc00)) (i32.const 0xdc00))
              (then (global.set $err (i32.const 0xf00)) (return (i32.const 0))))
            (if (i32.eq (i32.and (local.get $u) (i32.const 0xfc00)) (i32.const 0xd800))
              (then
                ;; a high surrogate must be followed by \u and a low one
                (if (i32.or
                      (i32.lt_u (i32.sub (global.get $end) (global.get $p)) (i32.const 2))
                      (i32.ne (i32.load16_u (global.get $p)) (i32.const 0x755c))) ;; "\u"
                  (then (global.set $err (i32.const 0xf00)) (return (i32.const 0))))
                (global.set $p (i32.add (global.get $p) (i32.const 2)))
                (local.set $u (call $hex4))
                (if (i32.lt_s (local.get $u) (i32.const 0))
                  (then (global.set $err (i32.const 0xe80)) (return (i32.const 0))))
                (if (i32.ne (i32.and (local.get $u) (i32.const 0xfc00)) (i32.const 0xdc00))
                  (then (global.set $err (i32.const 0xf00)) (return (i32.const 0)))))))))
      (br $next))
    (unreachable))

  (func $skip_digits
    (block $done
      (loop $next
        (br_if $done (i32.eqz (call $is_digit (call $peek))))
        (global.set $p (i32.add (global.get $p) (i32.const 1)))
        (br $next))))

  ;; Scans a number (the grammar only: its magnitude is not checked). 1, or 0 with $err.
  (func $scan_number (result i32)
    (local $c i32)
    (if (i32.eq (call $peek) (i32.const 0x2d))
      (then (global.set $p (i32.add (global.get $p) (i32.const 1)))))
    (local.set $c (call $peek))
    (if (i32.eqz (call $is_digit (local.get $c)))
      (then (global.set $err (i32.const 0xf80)) (return (i32.const 0))))
    (global.set $p (i32.add (global.get $p) (i32.const 1)))
    (if (i32.ne (local.get $c) (i32.const 0x30)) (then (call $skip_digits)))
    (if (i32.eq (call $peek) (i32.const 0x2e))
      (then
        (global.set $p (i32.add (global.get $p) (i32.const 1)))
        (if (i32.eqz (call $is_digit (call $peek)))
          (then (global.set $err (i32.const 0xf80)) (return (i32.const 0))))
        (call $skip_digits)))
    (if (i32.eq (i32.or (call $peek) (i32.const 0x20)) (i32.const 0x65)) ;; e or E
      (then
        (global.set $p (i32.add (global.get $p) (i32.const 1)))
        (local.set $c (call $peek))
        (if (i32.or (i32.eq (local.get $c) (i32.const 0x2b)) (i32.eq (local.get $c) (i32.const 0x2d)))
          (then (global.set $p (i32.add (global.get $p) (i32.const 1)))))
        (if (i32.eqz (call $is_digit (call $peek)))
          (then (global.set $err (i32.const 0xf80)) (return (i32.const 0))))
        (call $skip_digits)))
    (i32.const 1))

  ;; Scans the literal whose C string is at $word. 1, or 0 with $err.
  (func $scan_literal (param $word i32) (result i32)
    (local $n i32)
    (local.set $n (call $strlen (local.get $word)))
    (if (i32.or
          (i32.lt_u (i32.sub (global.get $end) (global.get $p)) (local.get $n))
          (i32.eqz (call $memeq (global.get $p) (local.get $word) (local.get $n))))
      (then (global.set $err (i32.const 0x1000)) (return (i32.const 0))))
    (global.set $p (i32.add (global.get $p) (local.get $n)))
    (i32.const 1))

  ;; Checks that [s, s+n) is one JSON value (with whitespace around), without
  ;; recursion: the open containers are kept on $STACK, one byte each.
  ;; Records $top_obj, $lvl_*, $other. 1, or 0 with $err set.
  (func $parse (param $s i32) (param $n i32) (result i32)
    (local $state i32) ;; 0 expect a value, 1 expect a key, 2 after a value
    (local $depth i32) (local $c i32) (local $top i32)
    (local $start i32) (local $key_level i32) (local $record i32)
    (global.set $p (local.get $s))
    (global.set $end (i32.add (local.get $s) (local.get $n)))
    (global.set $top_obj (i32.const 0))
    (global.set $lvl_kind (i32.const 0))
    (global.set $other (i32.const 0))
    (block $fail
      (block $ok
        (loop $next
          (block $after
            (block $key
              (block $value
                (br_table $value $key $after (local.get $state)))
              ;; ---- a value
              (call $ws)
              (local.set $c (call $peek))
              (if (i32.eq (local.get $c) (i32.const -1))
                (then (global.set $err (i32.const 0xa00)) (br $fail)))
              (if (i32.eqz (local.get $depth))
                (then (global.set $top_obj (i32.eq (local.get $c) (i32.const 0x7b)))))
              ;; the value of a top-level member named "level"?
              (local.set $record
                (i32.and
                  (i32.and (i32.eq (local.get $depth) (i32.const 1)) (local.get $key_level))
                  (i32.eq (i32.load8_u (i32.add (global.get $STACK) (i32.const 1))) (i32.const 0x7b))))
              (if (local.get $record) (then (global.set $lvl_kind (i32.const 2))))
              (if (i32.or (i32.eq (local.get $c) (i32.const 0x7b)) (i32.eq (local.get $c) (i32.const 0x5b)))
                (then
                  (if (i32.ge_u (local.get $depth) (global.get $MAX_DEPTH))
                    (then (global.set $err (i32.const 0xb00)) (br $fail)))
                  (local.set $depth (i32.add (local.get $depth) (i32.const 1)))
                  (i32.store8 (i32.add (global.get $STACK) (local.get $depth)) (local.get $c))
                  (global.set $p (i32.add (global.get $p) (i32.const 1)))
                  (call $ws)
                  ;; an empty container closes at once
                  (if (i32.eq (call $peek) (i32.add (local.get $c) (i32.const 2))) ;; { -> }, [ -> ]
                    (then
                      (global.set $p (i32.add (global.get $p) (i32.const 1)))
                      (local.set $depth (i32.sub (local.get $depth) (i32.const 1)))
                      (local.set $state (i32.const 2))
                      (br $next)))
                  (local.set $state (select (i32.const 1) (i32.const 0) (i32.eq (local.get $c) (i32.const 0x7b))))
                  (br $next)))
              (local.set $state (i32.const 2))
              (if (i32.eq (local.get $c) (i32.const 0x22))
                (then
                  (local.set $start (global.get $p))
                  (br_if $fail (i32.eqz (call $scan_string)))
                  (if (local.get $record)
                    (then
                      (global.set $lvl_kind (i32.const 1))
                      (global.set $lvl_start (i32.add (local.get $start) (i32.const 1)))
                      (global.set $lvl_len
                        (i32.sub (i32.sub (global.get $p) (local.get $start)) (i32.const 2)))))
                  (br $next)))
              (if (i32.eq (local.get $c) (i32.const 0x74))
                (then (br_if $fail (i32.eqz (call $scan_literal (i32.const 0x210)))) (br $next)))
              (if (i32.eq (local.get $c) (i32.const 0x66))
                (then (br_if $fail (i32.eqz (call $scan_literal (i32.const 0x218)))) (br $next)))
              (if (i32.eq (local.get $c) (i32.const 0x6e))
                (then (br_if $fail (i32.eqz (call $scan_literal (i32.const 0x220)))) (br $next)))
              (if (i32.or (i32.eq (local.get $c) (i32.const 0x2d)) (call $is_digit (local.get $c)))
                (then (br_if $fail (i32.eqz (call $scan_number))) (br $next)))
              (global.set $err (i32.const 0xa80))
              (br $fail))
            ;; ---- a key (inside an object)
            (call $ws)
            (if (i32.ne (call $peek) (i32.const 0x22))
              (then (global.set $err (i32.const 0xb80)) (br $fail)))
            (local.set $start (global.get $p))
            (br_if $fail (i32.eqz (call $scan_string)))
            (local.set $key_level (i32.const 0))
            (if (i32.eq (local.get $depth) (i32.const 1))
              (then
                ;; exactly "level", written without escapes
                (local.set $key_level
                  (i32.and
                    (i32.and
                      (i32.eqz (global.get $esc))
                      (i32.eq (i32.sub (global.get $p) (local.get $start)) (i32.const 7)))
                    (call $memeq (i32.add (local.get $start) (i32.const 1)) (i32.const 0x200) (i32.const 5))))
                (if (i32.eqz (local.get $key_level)) (then (global.set $other (i32.const 1))))))
            (call $ws)
            (if (i32.ne (call $peek) (i32.const 0x3a))
              (then (global.set $err (i32.const 0xc00)) (br $fail)))
            (global.set $p (i32.add (global.get $p) (i32.const 1)))
            (local.set $state (i32.const 0))
            (br $next))
          ;; ---- after a value
          (call $ws)
          (if (i32.eqz (local.get $depth))
            (then
              (if (i32.ne (global.get $p) (global.get $end))
                (then (global.set $err (i32.const 0xd00)) (br $fail)))
              (br $ok)))
          (local.set $c (call $peek))
          (local.set $top (i32.load8_u (i32.add (global.get $STACK) (local.get $depth))))
          (if (i32.eq (local.get $c) (i32.const 0x2c))
            (then
              (global.set $p (i32.add (global.get $p) (i32.const 1)))
              (local.set $state (select (i32.const 1) (i32.const 0) (i32.eq (local.get $top) (i32.const 0x7b))))
              (br $next)))
          (if (i32.eq (local.get $c) (i32.add (local.get $top) (i32.const 2))) ;; the matching } or ]
            (then
              (global.set $p (i32.add (global.get $p) (i32.const 1)))
              (local.set $depth (i32.sub (local.get $depth) (i32.const 1)))
              (br $next)))
          (global.set $err (i32.const 0xc80))
          (br $fail))
        (unreachable))
      (return (i32.const 1)))
    (i32.const 0))

  ;; ------------------------------------------------------------ the checks

  (func $fail_with (param $msg i32) (param $msg_len i32) (param $field i32)
    (global.set $f_msg (local.get $msg))
    (global.set $f_msg_len (local.get $msg_len))
    (global.set $f_field (local.get $field))
    (global.set $f_field_len
      (if (result i32) (local.get $field)
        (then (call $strlen (local.get $field)))
        (else (i32.const 0)))))

  ;; Checks the configuration [s, s+n). 1 with $lvl_idx set, or 0 with $f_* set.
  (func $check (param $s i32) (param $n i32) (result i32)
    (local $k i32) (local $name i32) (local $start i32)
    (if (i32.eqz (call $parse (local.get $s) (local.get $n)))
      (then
        (call $fail_with (global.get $err) (call $strlen (global.get $err)) (i32.const 0))
        (return (i32.const 0))))
    (if (i32.eqz (global.get $top_obj))
      (then
        (call $fail_with (i32.const 0x400) (call $strlen (i32.const 0x400)) (i32.const 0))
        (return (i32.const 0))))
    (global.set $lvl_idx (i32.const 2)) ;; info
    (if (i32.eq (global.get $lvl_kind) (i32.const 2))
      (then
        (call $fail_with (i32.const 0x480) (call $strlen (i32.const 0x480)) (i32.const 0x230))
        (return (i32.const 0))))
    (if (i32.eq (global.get $lvl_kind) (i32.const 1))
      (then
        (local.set $k (i32.const 0))
        (block $found
          (loop $next
            (local.set $name (i32.add (i32.const 0x100) (i32.shl (local.get $k) (i32.const 3))))
            (br_if $found
              (i32.and
                (i32.eq (global.get $lvl_len) (call $strlen (local.get $name)))
                (call $memeq (global.get $lvl_start) (local.get $name) (global.get $lvl_len))))
            (local.set $k (i32.add (local.get $k) (i32.const 1)))
            (br_if $next (i32.lt_u (local.get $k) (i32.const 5)))
            ;; unknown level "<raw text>": expected one of ...
            (local.set $start (global.get $heap))
            (call $append_cstr (i32.const 0x500))
            (call $append (global.get $lvl_start) (global.get $lvl_len))
            (call $append_cstr (i32.const 0x580))
            (call $fail_with (local.get $start) (i32.sub (global.get $heap) (local.get $start)) (i32.const 0x230))
            (return (i32.const 0))))
        (global.set $lvl_idx (local.get $k))))
    (if (global.get $other)
      (then
        (call $fail_with (i32.const 0x600) (call $strlen (i32.const 0x600)) (i32.const 0))
        (return (i32.const 0))))
    (i32.const 1))

  ;; Writes the failure in $f_* at RET_AREA (the err case of a result).
  (func $write_failure
    (local $r i32)
    (local.set $r (global.get $RET))
    (i32.store8 (local.get $r) (i32.const 1))
    (i32.store offset=4 (local.get $r) (global.get $f_msg))
    (i32.store offset=8 (local.get $r) (global.get $f_msg_len))
    (i32.store8 offset=12 (local.get $r) (i32.ne (global.get $f_field) (i32.const 0)))
    (i32.store offset=16 (local.get $r) (global.get $f_field))
    (i32.store offset=20 (local.get $r) (global.get $f_field_len))
    (i32.store8 offset=24 (local.get $r) (i32.const 0)))

  (func $reset_heap (param $ret i32)
    (global.set $heap (global.get $HEAP_BASE)))

  ;; ------------------------------------------------------------ exports

  (func (export "support-level") (result i32)
    (i32.const 0)) ;; full

  (func (export "validate") (param $s i32) (param $n i32) (result i32)
    (if (call $check (local.get $s) (local.get $n))
      (then (i32.store8 (global.get $RET) (i32.const 0)))
      (else (call $write_failure)))
    (global.get $RET))

  (func (export "can-reload") (param i32 i32 i32 i32) (result i32)
    (global.set $heap (global.get $HEAP_BASE)) ;; nothing to keep
    (i32.const 1))

  (func (export "reload")
    (param $old_tag i32) (param $old i32) (param $old_len i32) (param $s i32) (param $n i32)
    (result i32)
    (local $name i32) (local $name_len i32) (local $start i32) (local $r i32)
    (local.set $r (global.get $RET))
    (if (i32.eqz (call $check (local.get $s) (local.get $n)))
      (then (call $write_failure) (return (local.get $r))))
    (local.set $name (i32.add (i32.const 0x100) (i32.shl (global.get $lvl_idx) (i32.const 3))))
    (local.set $name_len (call $strlen (local.get $name)))
    ;; log the change
    (local.set $start (global.get $heap))
    (call $append_cstr (i32.const 0x880))
    (call $append (local.get $name) (local.get $name_len))
    (call $append_cstr (i32.const 0x900))
    (call $host_log (i32.const 2) (local.get $start) (i32.sub (global.get $heap) (local.get $start)))
    ;; the effective configuration
    (local.set $start (global.get $heap))
    (call $append_cstr (i32.const 0x700))
    (call $append (local.get $name) (local.get $name_len))
    (call $append_cstr (i32.const 0x780))
    (call $append (local.get $name) (local.get $name_len))
    (call $append_cstr (i32.const 0x800))
    (global.set $current (global.get $lvl_idx))
    (i32.store8 (local.get $r) (i32.const 0))
    (i32.store8 offset=4 (local.get $r) (i32.const 1))
    (i32.store offset=8 (local.get $r) (local.get $start))
    (i32.store offset=12 (local.get $r) (i32.sub (global.get $heap) (local.get $start)))
    (local.get $r))

  (func (export "rollback") (param $s i32) (param $n i32) (result i32)
    (if (call $check (local.get $s) (local.get $n))
      (then
        (global.set $current (global.get $lvl_idx))
        (i32.store8 (global.get $RET) (i32.const 0)))
      (else (call $write_failure)))
    (global.get $RET))

  ;; After each call the host has copied the results out: free everything.
  (func (export "cabi_post_validate") (param i32) (call $reset_heap (local.get 0)))
  (func (export "cabi_post_reload") (param i32) (call $reset_heap (local.get 0)))
  (func (export "cabi_post_rollback") (param i32) (call $reset_heap (local.get 0)))
)
