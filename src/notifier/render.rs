//! The thread's messages: the parent (one line of truth per target, edited as they move) and the
//! replies (what happened since the last reply, plus outcomes). Within Slack's limits: 50 blocks,
//! 3 000 characters per section and about 12 000 for a message's blocks together
//! (`msg_blocks_too_long`); events that do not fit go in the next reply, so every line is told.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::engine::Phase;
use crate::engine::message::escape;
use crate::store::outbox::NotificationRow;
use crate::store::rotations::RotationRow;
use crate::store::threads::{ThreadEvent, ThreadRow};

/// Blocks one message may use; Slack allows 50, the rest is headroom.
pub const MAX_BLOCKS: usize = 45;
/// Characters per section text; Slack allows 3 000.
const MAX_SECTION: usize = 2900;
/// Targets the parent lists one by one; the rest are counted.
const MAX_LISTED: usize = 40;
/// Events one reply tells; the rest go in the next.
pub const MAX_EVENTS: usize = 60;
/// Characters of text one message's blocks may hold together: Slack refuses past about 12 000
/// (`msg_blocks_too_long`); the rest is headroom for the inline messages' own text.
pub const MAX_MESSAGE_TEXT: usize = 11_000;

fn phase_emoji(phase: &str) -> &'static str {
    match Phase::parse(phase) {
        Some(Phase::Done) => ":white_check_mark:",
        Some(Phase::Failed) => ":x:",
        Some(Phase::RolledBack | Phase::RollingBack) => ":leftwards_arrow_with_hook:",
        Some(Phase::Cancelled) => ":heavy_minus_sign:",
        Some(Phase::Manual) => ":raising_hand:",
        Some(Phase::AwaitingApproval) => ":raised_hand:",
        Some(Phase::Rejected) => ":no_entry_sign:",
        Some(Phase::Retired | Phase::Retiring) => ":wastebasket:",
        Some(Phase::Ignored) => ":zzz:",
        Some(Phase::Silenced | Phase::Silencing) => ":mute:",
        Some(Phase::Unroutable) => ":warning:",
        Some(Phase::PlannedOnly) => ":ghost:",
        _ => ":hourglass_flowing_sand:",
    }
}

/// "`api_user` / *application* (environment)", leaving out what an alert did not say.
fn who(api_user: &str, application: &str, environment: &str) -> String {
    let mut who = format!("`{}`", escape(api_user));
    if !application.trim().is_empty() {
        who.push_str(&format!(" / *{}*", escape(application)));
    }
    if !environment.trim().is_empty() {
        who.push_str(&format!(" ({})", escape(environment)));
    }
    who
}

/// At most `max` characters, cut at a word boundary with an ellipsis.
pub fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let cut: String = text.chars().take(max.saturating_sub(1)).collect();
    let at_word = cut.rfind(char::is_whitespace).filter(|i| *i > max / 2);
    format!(
        "{}…",
        at_word.map_or(cut.as_str(), |i| &cut[..i]).trim_end()
    )
}

/// Lines packed into section blocks of at most [`MAX_SECTION`] characters, lines kept whole.
fn sections(lines: &[String]) -> Vec<Value> {
    let mut blocks = Vec::new();
    let mut current = String::new();
    for line in lines {
        let line = shorten(line, MAX_SECTION);
        if !current.is_empty() && current.chars().count() + 1 + line.chars().count() > MAX_SECTION {
            blocks.push(json!({"type": "section", "text": {"type": "mrkdwn", "text": current}}));
            current = String::new();
        }
        if !current.is_empty() {
            current.push('\n');
        }
        current.push_str(&line);
    }
    if !current.is_empty() {
        blocks.push(json!({"type": "section", "text": {"type": "mrkdwn", "text": current}}));
    }
    blocks
}

/// "3 done, 1 failed" over `rows`, in phase order.
fn tally(rows: &[RotationRow]) -> String {
    let mut counts: BTreeMap<Phase, usize> = BTreeMap::new();
    for row in rows {
        if let Some(phase) = Phase::parse(&row.phase) {
            *counts.entry(phase).or_default() += 1;
        }
    }
    counts
        .iter()
        .map(|(phase, n)| format!("{n} {phase}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The parent: what this delivery asked for and where each target is now.
pub fn parent(thread: &ThreadRow, rows: &[RotationRow]) -> Value {
    let source = if thread.delivery_id.is_some() {
        "from one Alertmanager delivery"
    } else {
        "requested on the command line"
    };
    let header = format!(
        ":key: *token-rotator* · {} target(s) {source} · {}",
        rows.len(),
        tally(rows)
    );
    let mut lines: Vec<String> = rows
        .iter()
        .take(MAX_LISTED)
        .map(|r| {
            format!(
                "{} {} — {}: *{}*",
                phase_emoji(&r.phase),
                who(&r.api_user, &r.application, &r.environment),
                r.action,
                r.phase
            )
        })
        .collect();
    if rows.len() > MAX_LISTED {
        lines.push(format!(
            "…and {} more ({}); `token-rotator status` or the status page lists them all.",
            rows.len() - MAX_LISTED,
            tally(&rows[MAX_LISTED..])
        ));
    }
    let mut blocks = vec![json!({"type": "section", "text": {"type": "mrkdwn", "text": header}})];
    blocks.extend(sections(&lines));
    blocks.push(json!({"type": "context", "elements": [{"type": "mrkdwn",
        "text": "Progress is in the thread; failures are also posted in the channel."}]}));
    json!({ "text": shorten(&header, 3000), "blocks": blocks })
}

/// A reply: the events (oldest first) and the inline messages (outcomes, notes) that fit in one
/// message. Returns it with the last event id told and the ids of the messages it carries.
pub fn reply(events: &[ThreadEvent], inline: &[NotificationRow]) -> (Value, i64, Vec<i64>) {
    let mut lines: Vec<String> = Vec::new();
    let mut budget = MAX_MESSAGE_TEXT;
    let mut cursor = 0;
    for e in events.iter().take(MAX_EVENTS) {
        let line = event_line(e);
        // Each line costs its characters and a newline; the first always goes, so a reply
        // always tells something.
        let cost = line.chars().count() + 1;
        if !lines.is_empty() && cost > budget {
            break;
        }
        budget = budget.saturating_sub(cost);
        lines.push(line);
        cursor = e.id;
    }
    let told = lines.len();
    let mut blocks = sections(&lines);
    let mut texts: Vec<String> = Vec::new();
    if told > 0 {
        texts.push(format!("{told} update(s)"));
    }
    let mut carried = Vec::new();
    for n in inline {
        let body: Value = serde_json::from_str(&n.body).unwrap_or_default();
        let more: Vec<Value> = body["blocks"].as_array().cloned().unwrap_or_default();
        let cost: usize = more.iter().map(|b| b.to_string().len()).sum();
        if (told > 0 || !carried.is_empty())
            && (blocks.len() + more.len() > MAX_BLOCKS || cost > budget)
        {
            break;
        }
        budget = budget.saturating_sub(cost);
        blocks.extend(more);
        texts.push(body["text"].as_str().unwrap_or_default().to_owned());
        carried.push(n.id);
    }
    let text = shorten(&texts.join(" · "), 3000);
    (json!({ "text": text, "blocks": blocks }), cursor, carried)
}

/// One event as a reply line.
fn event_line(e: &ThreadEvent) -> String {
    let at = jiff::Timestamp::from_millisecond(e.audit.at_ms)
        .map_or_else(|_| "?".into(), |t| t.strftime("%H:%M:%S").to_string());
    let step = match e.audit.from_phase.as_deref() {
        Some(from) if from != e.audit.to_phase => format!("{from} → {}", e.audit.to_phase),
        _ => e.audit.to_phase.clone(),
    };
    format!(
        "`{at}` {}: {step} — {}",
        who(&e.api_user, &e.application, &e.environment),
        escape(&shorten(&e.audit.reason, 200))
    )
}

/// The message without blocks: what Slack is sent when it refuses the blocks.
pub fn text_only(message: &Value) -> Value {
    json!({ "text": shorten(message["text"].as_str().unwrap_or("token-rotator"), 3000) })
}

/// Whether the parent changed since it was last posted or edited.
pub fn digest(message: &Value) -> String {
    hex::encode(Sha256::digest(message.to_string().as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_text_is_cut_at_a_word_not_inside_one() {
        let text = "alpha beta gamma delta epsilon";
        let short = shorten(text, 14);
        assert_eq!(short, "alpha beta…");
        assert_eq!(shorten(text, 100), text);
    }

    #[test]
    fn sections_stay_under_slacks_limit_and_keep_every_line() {
        let lines: Vec<String> = (0..200)
            .map(|i| format!("line {i} {}", "x".repeat(40)))
            .collect();
        let blocks = sections(&lines);
        assert!(blocks.len() > 1);
        let mut joined = Vec::new();
        for b in &blocks {
            let text = b["text"]["text"].as_str().unwrap();
            assert!(text.chars().count() <= 3000);
            joined.extend(text.lines().map(str::to_owned));
        }
        assert_eq!(joined, lines);
    }
}
