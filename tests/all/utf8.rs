//! Handler text in any language reaches the operator whole up to where the
//! host cuts it: the cut falls on a character boundary, nothing panics and
//! no character is mangled into U+FFFD.

use anyhow::{Context, Result, ensure};
use hotreload::{Cause, ComponentSpec, LimitOverrides, Outcome, Runtime, Settings};
use serde_json::json;

use crate::{field, fixture, message, reload, with_chaos};

/// The longest failure message the host keeps.
const FAILURE_TEXT_BYTES: usize = 4096;

#[tokio::test]
async fn a_long_failure_message_is_cut_at_a_character_boundary() -> Result<()> {
    // 18 bytes a unit; 4096 falls inside the 3-byte "误" of the 228th unit.
    let text = "配置错误 🦀 ".repeat(300);
    ensure!(!text.is_char_boundary(FAILURE_TEXT_BYTES));
    let rt = with_chaos(LimitOverrides::default()).await;
    let e = reload(
        &rt,
        "chaos",
        json!({"validate": format!("fail_text:{text}")}),
    )
    .await;
    assert_eq!(e.outcome, Outcome::Rejected);
    assert_eq!(e.cause, Some(Cause::Invalid));
    assert_eq!(field(&e), Some("/validate"));
    let kept = &text[..text.floor_char_boundary(FAILURE_TEXT_BYTES)];
    assert_eq!(kept.len(), FAILURE_TEXT_BYTES - 1);
    assert_eq!(
        message(&e),
        format!("{kept}… ({} bytes in all)", text.len())
    );
    // A message within the bound is kept whole.
    let short = "配置错误 🦀".repeat(10);
    let e = reload(
        &rt,
        "chaos",
        json!({"validate": format!("fail_text:{short}")}),
    )
    .await;
    assert_eq!(message(&e), short);
    Ok(())
}

/// Has chaos panic with `message` and returns the event's copy of the
/// captured stderr, up to the note of what was dropped, and the count the
/// note gives.
async fn panic_capture(rt: &Runtime, message: &str) -> Result<(String, usize)> {
    let e = reload(
        rt,
        "chaos",
        json!({"validate": format!("panic_text:{message}")}),
    )
    .await;
    assert_eq!(e.outcome, Outcome::Rejected);
    assert_eq!(e.cause, Some(Cause::Trap));
    let m = crate::message(&e);
    let stderr = m
        .split_once("; handler stderr: ")
        .with_context(|| format!("no stderr in: {m}"))?
        .1;
    let (kept, dropped) = stderr
        .rsplit_once("… (")
        .with_context(|| format!("the capture was not cut: {stderr}"))?;
    let dropped = dropped
        .strip_suffix(" more bytes dropped)")
        .with_context(|| format!("no count of what was dropped: {stderr}"))?
        .parse()?;
    ensure!(
        !kept.contains(char::REPLACEMENT_CHARACTER),
        "a mangled character: {kept}"
    );
    Ok((kept.to_owned(), dropped))
}

#[tokio::test]
async fn a_panic_in_any_language_comes_through_stderr_whole_up_to_the_cut() -> Result<()> {
    const CAPTURED: usize = 1000;
    let rt = Runtime::new(Settings {
        captured_output_bytes: CAPTURED as u64,
        ..crate::settings()
    })?;
    rt.add_component(ComponentSpec::new("chaos", hotreload_handlers::CHAOS, "{}"))
        .await?;
    // An ASCII message is cut at exactly the capacity, which tells how many
    // bytes of the capture come before the message (the panic's location;
    // the event shows the capture trimmed).
    let ascii = "=".repeat(2000);
    let (kept, _) = panic_capture(&rt, &ascii).await?;
    let start = kept.find('=').context("no message in the capture")?;
    let budget = kept.len() - start;
    ensure!(budget > 0 && budget < CAPTURED, "{kept}");

    // 10 bytes a unit, 2000 in all. Padded by 0 to 3 bytes, the cut falls
    // inside a character at least twice (a unit's characters start at 0, 3
    // and 6).
    let text = "恐慌🦀".repeat(200);
    let mut cut_inside = 0;
    let mut written = Vec::new();
    for pad in 0..4 {
        let padded = format!("{}{text}", "x".repeat(pad));
        let (kept, dropped) = panic_capture(&rt, &padded).await?;
        let start = kept
            .find(&padded[..pad + 6])
            .with_context(|| format!("the message is not in the capture: {kept}"))?;
        let expected = &padded[..padded.floor_char_boundary(budget)];
        ensure!(
            kept[start..] == *expected,
            "pad {pad}: kept {} bytes of the message, not {}: {kept}",
            kept.len() - start,
            expected.len()
        );
        if !padded.is_char_boundary(budget) {
            cut_inside += 1;
        }
        written.push(kept.len() + dropped - pad);
    }
    ensure!(
        cut_inside >= 2,
        "the cut fell inside a character only {cut_inside} times"
    );
    ensure!(
        written.windows(2).all(|w| w[0] == w[1]),
        "kept and dropped do not add up to what was written: {written:?}"
    );
    Ok(())
}

#[test]
fn conform_cuts_a_verdict_at_a_character_boundary() -> Result<()> {
    // The fixture's validate always fails with this message (320 bytes).
    let message = "🦀配置无效".repeat(20);
    let verdict = format!("failure: {message}");
    // conform keeps 300 bytes of a verdict; 300 falls inside a "🦀".
    ensure!(!verdict.is_char_boundary(300));
    let expected = &verdict[..verdict.floor_char_boundary(300)];
    let report = hotreload::conform::conform(&fixture("utf8_failure"), &[])?;
    let answers: Vec<_> = report
        .checks
        .iter()
        .filter(|c| c.name.starts_with("validate answers"))
        .collect();
    ensure!(answers.len() >= 10, "{:#?}", report.checks);
    for c in answers {
        ensure!(c.detail == expected, "{}: {}", c.name, c.detail);
    }
    Ok(())
}
