//! Bounded capture of a handler's stdout and stderr.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

use crate::text::cut_at_char_boundary;

/// A WASI output stream that keeps at most `capacity` bytes of text per call
/// and silently counts the rest, so a chatty handler is never killed for
/// writing and never grows the host's memory.
///
/// What is kept is decoded as it arrives and cut at a character boundary, so
/// output in any language comes through whole up to the cut, even when a
/// character is split across writes (a handler's libc writes in chunks).
#[derive(Clone)]
pub(crate) struct CapturedOutput {
    inner: Arc<Mutex<Captured>>,
}

struct Captured {
    /// What was written, decoded; at most `capacity` bytes.
    text: String,
    /// The first bytes of a character whose last bytes are not written yet.
    partial: Vec<u8>,
    capacity: usize,
    /// Bytes left out. Once one is, every later write is too, so `text` is
    /// always the beginning of what was written.
    dropped: usize,
}

/// The longest UTF-8 encoding of one character.
const MAX_CHAR_BYTES: usize = 4;

impl Captured {
    /// Cuts `text` to the capacity at a character boundary, counting what
    /// was cut off, and `more` bytes besides, as dropped.
    fn bound(&mut self, more: usize) {
        let kept = cut_at_char_boundary(&self.text, self.capacity).len();
        self.dropped += self.text.len() - kept + more;
        self.text.truncate(kept);
    }
}

impl CapturedOutput {
    pub(crate) fn new(capacity: usize) -> Self {
        CapturedOutput {
            inner: Arc::new(Mutex::new(Captured {
                text: String::new(),
                partial: Vec::new(),
                capacity,
                dropped: 0,
            })),
        }
    }

    /// Text written since the last `take`, with a note of what was dropped.
    /// Bytes that are not UTF-8 show as U+FFFD.
    pub(crate) fn take(&self) -> String {
        let mut c = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if !c.partial.is_empty() {
            // The handler stopped writing in the middle of a character.
            c.partial.clear();
            c.text.push(char::REPLACEMENT_CHARACTER);
            c.bound(0);
        }
        let mut text = std::mem::take(&mut c.text);
        if c.dropped > 0 {
            text.push_str(&format!("… ({} more bytes dropped)", c.dropped));
        }
        c.dropped = 0;
        text
    }

    fn append(&self, bytes: &[u8]) {
        let mut c = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if c.dropped > 0 {
            c.dropped += bytes.len();
            return;
        }
        // Decoding more than can be kept is wasted work; a character that
        // begins in the room left ends within `MAX_CHAR_BYTES` of it.
        let room = c.capacity.saturating_sub(c.text.len());
        let (head, tail) = bytes.split_at(bytes.len().min(room + MAX_CHAR_BYTES));
        let mut pending = std::mem::take(&mut c.partial);
        pending.extend_from_slice(head);
        let mut chunks = pending.utf8_chunks().peekable();
        while let Some(chunk) = chunks.next() {
            c.text.push_str(chunk.valid());
            let invalid = chunk.invalid();
            if invalid.is_empty() {
                continue;
            }
            let unfinished = chunks.peek().is_none()
                && std::str::from_utf8(invalid).is_err_and(|e| e.error_len().is_none());
            if unfinished {
                c.partial = invalid.to_vec();
            } else {
                c.text.push(char::REPLACEMENT_CHARACTER);
            }
        }
        if c.text.len() > c.capacity || !tail.is_empty() {
            let more = c.partial.len() + tail.len();
            c.partial.clear();
            c.bound(more);
        }
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for CapturedOutput {
    async fn ready(&mut self) {}
}

impl OutputStream for CapturedOutput {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.append(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(64 * 1024)
    }
}

impl tokio::io::AsyncWrite for CapturedOutput {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.append(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

impl IsTerminal for CapturedOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for CapturedOutput {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::CapturedOutput;

    fn captured(capacity: usize, writes: &[&[u8]]) -> String {
        let out = CapturedOutput::new(capacity);
        for w in writes {
            out.append(w);
        }
        out.take()
    }

    #[test]
    fn a_character_split_across_writes_is_kept_whole() {
        let crab = "🦀".as_bytes();
        assert_eq!(
            captured(64, &[b"a", &crab[..1], &crab[1..3], &crab[3..], b"b"]),
            "a🦀b"
        );
    }

    #[test]
    fn the_cut_falls_before_a_character_it_would_split() {
        // 8 bytes: a capacity of 7 ends inside the second "中".
        let text = "ab中中";
        for split in 0..=text.len() {
            let (a, b) = text.as_bytes().split_at(split);
            assert_eq!(
                captured(7, &[a, b]),
                "ab中… (3 more bytes dropped)",
                "split at {split}"
            );
        }
        // Once something was dropped, later writes are too, even ones that fit.
        assert_eq!(
            captured(7, &["ab中中".as_bytes(), b"x"]),
            "ab中… (4 more bytes dropped)"
        );
    }

    #[test]
    fn whatever_the_writes_the_text_is_cut_where_the_capacity_allows() {
        let text = format!("header\n{}", "恐慌🦀".repeat(20));
        for capacity in 0..=text.len() + 1 {
            let kept = crate::text::cut_at_char_boundary(&text, capacity);
            let expected = if kept.len() == text.len() {
                text.clone()
            } else {
                format!("{kept}… ({} more bytes dropped)", text.len() - kept.len())
            };
            for chunk in [1, 2, 3, 5, 7, 64, 4096] {
                let writes: Vec<&[u8]> = text.as_bytes().chunks(chunk).collect();
                assert_eq!(
                    captured(capacity, &writes),
                    expected,
                    "capacity {capacity}, writes of {chunk} bytes"
                );
            }
        }
    }

    #[test]
    fn bytes_that_are_not_utf8_show_as_replacement_characters() {
        assert_eq!(captured(64, &[b"a\xffb"]), "a\u{fffd}b");
        // A character the handler never finished.
        assert_eq!(captured(64, &[b"a\xe4\xb8"]), "a\u{fffd}");
    }

    #[test]
    fn take_starts_over() {
        let out = CapturedOutput::new(4);
        out.append("配置".as_bytes());
        assert_eq!(out.take(), "配… (3 more bytes dropped)");
        out.append(b"ok");
        assert_eq!(out.take(), "ok");
    }
}
