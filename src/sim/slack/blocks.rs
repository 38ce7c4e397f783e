//! Block Kit's limits, as Slack enforces them on `chat.postMessage` and `chat.update`. Sources:
//!
//! - [BLOCKS] https://docs.slack.dev/reference/block-kit/blocks (≤ 50 blocks; `block_id` ≤ 255)
//! - [SECTION] https://docs.slack.dev/reference/block-kit/blocks/section-block (text ≤ 3 000)
//! - [HEADER] https://docs.slack.dev/reference/block-kit/blocks/header-block (text ≤ 150)
//! - [CONTEXT] https://docs.slack.dev/reference/block-kit/blocks/context-block (≤ 10 elements)
//! - [BUTTON] https://docs.slack.dev/reference/block-kit/block-elements/button-element (text ≤ 75,
//!   `value` ≤ 2 000, `action_id` ≤ 255)
//! - [TOTAL] slackapi/bolt-js#2509 and the `msg_blocks_too_long` error on
//!   https://docs.slack.dev/reference/methods/chat.postMessage: a message's blocks together
//!   are refused past about 12 000 characters of text.
//! - [NO_TEXT] chat.postMessage's `no_text` (slack-api-specs `web-api/slack_web_openapi_v2.json`).
//! - [VERBATIM] https://docs.slack.dev/reference/block-kit/composition-objects/text-object
//!   (`verbatim` "is only usable when `type` is `mrkdwn`").

use serde_json::Value;

/// [TOTAL]: the text of all blocks together.
pub const MAX_TOTAL_TEXT: usize = 12_000;

fn chars(value: &Value) -> usize {
    value.as_str().map_or(0, |s| s.chars().count())
}

/// The error code Slack answers `body` with, if any.
pub(super) fn check_message(body: &Value) -> Result<(), &'static str> {
    if body["text"].as_str().is_none_or(str::is_empty) && body.get("blocks").is_none() {
        return Err("no_text");
    }
    if body["text"].as_str().is_none_or(str::is_empty) {
        // We always send the fallback text, so its absence is a bug worth a loud error.
        return Err("no_text");
    }
    let Some(blocks) = body.get("blocks") else {
        return Ok(());
    };
    let blocks = blocks.as_array().ok_or("invalid_blocks")?;
    if blocks.len() > 50 {
        return Err("invalid_blocks"); // [BLOCKS]
    }
    if verbatim_off_mrkdwn(body) {
        return Err("invalid_blocks"); // [VERBATIM]
    }
    let mut total = 0;
    for block in blocks {
        check_block(block)?;
        total += text_in(block);
    }
    if total > MAX_TOTAL_TEXT {
        return Err("msg_blocks_too_long"); // [TOTAL]
    }
    Ok(())
}

fn check_block(block: &Value) -> Result<(), &'static str> {
    if chars(&block["block_id"]) > 255 {
        return Err("invalid_blocks"); // [BLOCKS]
    }
    let limit = match block["type"].as_str() {
        Some("header") => 150, // [HEADER]
        _ => 3000,             // [SECTION]
    };
    if chars(&block["text"]["text"]) > limit {
        return Err("invalid_blocks");
    }
    if let Some(elements) = block["elements"].as_array() {
        if block["type"] == "context" && elements.len() > 10 {
            return Err("invalid_blocks"); // [CONTEXT]
        }
        for element in elements {
            if element["type"] == "button"
                && (chars(&element["text"]["text"]) > 75
                    || chars(&element["value"]) > 2000
                    || chars(&element["action_id"]) > 255)
            {
                return Err("invalid_blocks"); // [BUTTON]
            }
        }
    }
    Ok(())
}

/// Whether some object that is not a `mrkdwn` text object says `verbatim`.
fn verbatim_off_mrkdwn(value: &Value) -> bool {
    match value {
        Value::Object(map) => {
            (map.contains_key("verbatim")
                && map.get("type").and_then(Value::as_str) != Some("mrkdwn"))
                || map.values().any(verbatim_off_mrkdwn)
        }
        Value::Array(items) => items.iter().any(verbatim_off_mrkdwn),
        _ => false,
    }
}

/// Every `text` string inside `value`, counted in characters.
fn text_in(value: &Value) -> usize {
    match value {
        Value::Object(map) => map
            .iter()
            .map(|(key, v)| match (key.as_str(), v) {
                ("text", Value::String(s)) => s.chars().count(),
                _ => text_in(v),
            })
            .sum(),
        Value::Array(items) => items.iter().map(text_in).sum(),
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn block_kit_limits_are_refused_with_slacks_codes() {
        let with = |blocks: Value| json!({"text": "t", "blocks": blocks});
        let section = |n: usize| json!({"type": "section", "text": {"type": "mrkdwn", "text": "x".repeat(n)}});
        let cases = [
            ("fine", with(json!([section(3000)])), Ok(())),
            (
                "section 3001",
                with(json!([section(3001)])),
                Err("invalid_blocks"),
            ),
            (
                "header 151",
                with(
                    json!([{"type": "header", "text": {"type": "plain_text", "text": "h".repeat(151)}}]),
                ),
                Err("invalid_blocks"),
            ),
            (
                "context 11",
                with(
                    json!([{"type": "context", "elements": vec![json!({"type": "mrkdwn", "text": "c"}); 11]}]),
                ),
                Err("invalid_blocks"),
            ),
            (
                "button 76",
                with(
                    json!([{"type": "actions", "elements": [{"type": "button", "text": {"type": "plain_text", "text": "b".repeat(76)}, "value": "v"}]}]),
                ),
                Err("invalid_blocks"),
            ),
            (
                "value 2001",
                with(
                    json!([{"type": "actions", "elements": [{"type": "button", "text": {"type": "plain_text", "text": "b"}, "value": "v".repeat(2001)}]}]),
                ),
                Err("invalid_blocks"),
            ),
            (
                "block_id 256",
                with(json!([{"type": "divider", "block_id": "i".repeat(256)}])),
                Err("invalid_blocks"),
            ),
            (
                "total 12 001",
                with(json!([
                    section(3000),
                    section(3000),
                    section(3000),
                    section(3000),
                    section(1)
                ])),
                Err("msg_blocks_too_long"),
            ),
            ("no text", json!({"blocks": []}), Err("no_text")),
            (
                "verbatim on plain_text",
                with(
                    json!([{"type": "header", "text": {"type": "plain_text", "text": "h", "verbatim": true}}]),
                ),
                Err("invalid_blocks"),
            ),
            (
                "verbatim on mrkdwn",
                with(
                    json!([{"type": "section", "text": {"type": "mrkdwn", "text": "m", "verbatim": true}}]),
                ),
                Ok(()),
            ),
        ];
        for (what, body, want) in cases {
            assert_eq!(check_message(&body), want, "{what}");
        }
    }
}
