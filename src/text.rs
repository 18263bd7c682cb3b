//! Shortening text to a byte budget without splitting a character.

/// The longest prefix of `s` that is at most `max_bytes` long and ends on a
/// character boundary: every bounded text the host keeps (a handler's
/// failure, a log line, captured output, a conformance verdict) is cut here,
/// so text in any language stays valid and whole up to the cut.
pub(crate) fn cut_at_char_boundary(s: &str, max_bytes: usize) -> &str {
    &s[..s.floor_char_boundary(max_bytes)]
}

#[cfg(test)]
mod tests {
    use super::cut_at_char_boundary;

    #[test]
    fn cuts_before_a_character_the_budget_would_split() {
        // "é" is 2 bytes, "中" 3, "🦀" 4.
        let s = "aé中🦀";
        let cuts: Vec<&str> = (0..=s.len() + 1)
            .map(|n| cut_at_char_boundary(s, n))
            .collect();
        assert_eq!(
            cuts,
            [
                "",
                "a",
                "a",
                "aé",
                "aé",
                "aé",
                "aé中",
                "aé中",
                "aé中",
                "aé中",
                "aé中🦀",
                "aé中🦀"
            ]
        );
    }

    #[test]
    fn text_within_the_budget_is_kept_whole() {
        assert_eq!(cut_at_char_boundary("", 0), "");
        assert_eq!(cut_at_char_boundary("配置", 6), "配置");
        assert_eq!(cut_at_char_boundary("配置", 100), "配置");
    }
}
