//! The one Slack message a sweep of one environment posts: what was revoked (or, in shadow mode,
//! would have been), what was kept and why. Within Slack's limits for one message (50 blocks,
//! 3 000 characters a section, about 12 000 for the blocks together, as the notifier's own
//! messages are); pairs past them are counted, not listed. Token ids and last characters only.

use jiff::civil::Date;
use serde_json::{Value, json};

use super::super::message::escape;
use super::judge::shown;
use super::{SweepReport, Verdict};

/// Characters one section's text may hold; Slack allows 3 000.
const MAX_SECTION: usize = 2900;
/// Sections of pairs one digest may hold; Slack allows 50 blocks, the rest is headroom.
const MAX_SECTIONS: usize = 40;
/// Characters the sections may hold together; Slack refuses past about 12 000.
const MAX_TEXT: usize = 10_000;

fn pair(api_user: &str, application: &str) -> String {
    format!("`{}` / *{}*", escape(api_user), escape(application))
}

fn line(api_user: &str, application: &str, verdict: &Verdict) -> String {
    let who = pair(api_user, application);
    let text = match verdict {
        Verdict::Revoked {
            tokens,
            newest,
            rotation_id,
        } => format!(
            ":wastebasket: {who}: revoked {}; the newest, {}, stays live (rotation `{rotation_id}`)",
            shown(tokens),
            shown(std::slice::from_ref(newest))
        ),
        Verdict::WouldRevoke { tokens, newest } => format!(
            ":ghost: {who}: would revoke {}; the newest, {}, would stay live",
            shown(tokens),
            shown(std::slice::from_ref(newest))
        ),
        Verdict::Pending {
            tokens,
            rotation_id,
            error,
        } => format!(
            ":hourglass: {who}: revoking {} is journaled and will be retried (rotation `{rotation_id}`): {}",
            shown(tokens),
            escape(error)
        ),
        Verdict::Failed {
            tokens,
            rotation_id,
            why,
        } => format!(
            ":x: {who}: revoking {} failed (rotation `{rotation_id}`): {}",
            shown(tokens),
            escape(why)
        ),
        Verdict::Kept(why) | Verdict::NotSwept(why) => {
            format!(":lock: {who}: kept: {}", escape(why))
        }
    };
    // One line never fills a section by itself.
    text.chars().take(MAX_SECTION).collect()
}

/// How many pairs (and tokens) a sweep's verdicts come to.
struct Tally {
    revoked: usize,
    revoked_pairs: usize,
    would: usize,
    would_pairs: usize,
    kept: usize,
    troubled: usize,
}

fn tally(report: &SweepReport) -> Tally {
    let count = |f: fn(&Verdict) -> Option<usize>| -> (usize, usize) {
        report
            .pairs
            .iter()
            .filter_map(|p| f(&p.verdict))
            .fold((0, 0), |(pairs, tokens), n| (pairs + 1, tokens + n))
    };
    let (revoked_pairs, revoked) = count(|v| match v {
        Verdict::Revoked { tokens, .. } => Some(tokens.len()),
        _ => None,
    });
    let (would_pairs, would) = count(|v| match v {
        Verdict::WouldRevoke { tokens, .. } => Some(tokens.len()),
        _ => None,
    });
    let (kept, _) = count(|v| matches!(v, Verdict::Kept(_) | Verdict::NotSwept(_)).then_some(0));
    let (troubled, _) =
        count(|v| matches!(v, Verdict::Pending { .. } | Verdict::Failed { .. }).then_some(0));
    Tally {
        revoked,
        revoked_pairs,
        would,
        would_pairs,
        kept,
        troubled,
    }
}

/// What a sweep did, in one plain sentence: the journal's record of it, for the status page,
/// `token-rotator tokens` and the logs.
pub(super) fn outcome(report: &SweepReport) -> String {
    let t = tally(report);
    if report.shadow {
        return format!(
            "shadow: would have revoked {} token(s) of {} pair(s); kept {} pair(s)",
            t.would, t.would_pairs, t.kept
        );
    }
    let mut text = format!(
        "revoked {} token(s) of {} pair(s); kept {} pair(s)",
        t.revoked, t.revoked_pairs, t.kept
    );
    if t.troubled > 0 {
        text.push_str(&format!("; {} revoke(s) did not finish", t.troubled));
    }
    text
}

/// The digest of one sweep.
pub(super) fn digest(report: &SweepReport, issuer: &str) -> Value {
    let environment = escape(&report.environment);
    let Tally {
        revoked,
        revoked_pairs,
        would,
        would_pairs,
        kept,
        troubled,
    } = tally(report);
    let header = if report.shadow {
        format!(
            ":ghost: *shadow — nothing was revoked.* Sweep of superseded {issuer} tokens in \
             {environment} ({}): would have revoked {would} token(s) of {would_pairs} pair(s); \
             kept {kept} pair(s).",
            report.day
        )
    } else {
        let mut header = format!(
            ":broom: *Sweep of superseded {issuer} tokens in {environment}* ({}): revoked \
             {revoked} token(s) of {revoked_pairs} pair(s); kept {kept} pair(s).",
            report.day
        );
        if troubled > 0 {
            header.push_str(&format!(" {troubled} revoke(s) did not finish: see below."));
        }
        header
    };
    if report.pairs.is_empty() {
        let text = format!("{header} No pair had a superseded token.");
        return json!({"text": text, "blocks": [section(&text)]});
    }
    // Acted on first (revoked, would, trouble), then kept with a reason to look at, then
    // those no rule opts in, counted by reason.
    let mut not_swept: std::collections::BTreeMap<&str, usize> = Default::default();
    for p in &report.pairs {
        if let Verdict::NotSwept(why) = &p.verdict {
            *not_swept.entry(why.as_str()).or_default() += 1;
        }
    }
    let mut lines: Vec<String> = report
        .pairs
        .iter()
        .filter(|p| !matches!(p.verdict, Verdict::Kept(_) | Verdict::NotSwept(_)))
        .chain(
            report
                .pairs
                .iter()
                .filter(|p| matches!(p.verdict, Verdict::Kept(_))),
        )
        .map(|p| line(&p.api_user, &p.application, &p.verdict))
        .chain(
            not_swept
                .iter()
                .map(|(why, n)| format!(":zzz: {n} pair(s) kept: {}", escape(why))),
        )
        .collect();
    let entries = lines.len();
    let mut blocks = vec![section(&header)];
    let mut used = header.chars().count();
    let mut current = String::new();
    let mut listed = 0;
    for text in lines.drain(..) {
        let len = text.chars().count() + 1;
        if current.chars().count() + len > MAX_SECTION {
            blocks.push(section(&current));
            current.clear();
        }
        if blocks.len() > MAX_SECTIONS || used + len > MAX_TEXT {
            break;
        }
        if !current.is_empty() {
            current.push('\n');
        }
        current.push_str(&text);
        used += len;
        listed += 1;
    }
    if !current.is_empty() {
        blocks.push(section(&current));
    }
    if listed < entries {
        let more = format!(
            "…and {} more line(s): see the journal's audit (trigger `sweep:{}`) and `token-rotator tokens`.",
            entries - listed,
            report.day
        );
        blocks.push(json!({"type": "context", "elements": [{"type": "mrkdwn", "text": more}]}));
    }
    json!({"text": header, "blocks": blocks})
}

/// The digest of a sweep that could not start: the inventory could not be taken.
pub(super) fn not_taken(environment: &str, day: Date, issuer: &str, error: &str) -> Value {
    let text = format!(
        ":warning: *Sweep of superseded {issuer} tokens in {}* ({day}) did not run: the \
         inventory could not be taken ({}). Nothing was revoked; tomorrow's sweep tries again.",
        escape(environment),
        escape(error)
    );
    json!({"text": text, "blocks": [section(&text)]})
}

fn section(text: &str) -> Value {
    json!({"type": "section", "text": {"type": "mrkdwn", "text": text}})
}

#[cfg(test)]
mod tests {
    use super::super::PairOutcome;
    use super::*;

    #[test]
    fn a_digest_of_thousands_of_pairs_stays_within_slacks_limits() {
        let pairs = (0..5000)
            .map(|n| PairOutcome {
                api_user: format!("app-{n}@example.org"),
                application: format!("Application {n}"),
                verdict: if n % 2 == 0 {
                    Verdict::Revoked {
                        tokens: vec![(n.to_string(), "abcd1234".into())],
                        newest: ((n + 1).to_string(), "efgh5678".into()),
                        rotation_id: "0190-rotation".into(),
                    }
                } else {
                    Verdict::Kept("Secret `x` still holds 7 (…abcd1234)".into())
                },
            })
            .collect();
        let report = SweepReport {
            environment: "production".into(),
            day: jiff::civil::date(2026, 12, 6),
            shadow: false,
            pairs,
        };
        let body = digest(&report, "Issuer");
        let blocks = body["blocks"].as_array().unwrap();
        assert!(blocks.len() <= 45, "{} blocks", blocks.len());
        let total: usize = blocks
            .iter()
            .map(|b| {
                b["text"]["text"]
                    .as_str()
                    .or(b["elements"][0]["text"].as_str())
                    .unwrap()
                    .chars()
                    .count()
            })
            .inspect(|n| assert!(*n <= 3000))
            .sum();
        assert!(total <= 12_000, "{total} characters");
        let last = blocks.last().unwrap()["elements"][0]["text"]
            .as_str()
            .unwrap();
        assert!(last.contains("more line(s)"), "{last}");
        let header = body["text"].as_str().unwrap();
        assert!(
            header.contains("revoked 2500 token(s) of 2500 pair(s); kept 2500 pair(s)"),
            "{header}"
        );
    }

    #[test]
    fn pairs_no_rule_opts_in_are_one_line_per_reason() {
        let pairs = (0..300)
            .map(|n| PairOutcome {
                api_user: format!("app-{n}@example.org"),
                application: "Application".into(),
                verdict: Verdict::NotSwept("rule `staging` does not sweep (sweep = false)".into()),
            })
            .collect();
        let report = SweepReport {
            environment: "staging".into(),
            day: jiff::civil::date(2026, 12, 6),
            shadow: false,
            pairs,
        };
        let body = digest(&report, "Issuer").to_string();
        assert!(
            // A reason is escaped whole (it may quote an upstream's answer), its backticks too.
            body.contains("300 pair(s) kept: rule \u{02CB}staging\u{02CB} does not sweep"),
            "{body}"
        );
        assert!(!body.contains("app-1@"), "not listed one by one: {body}");
    }
}
