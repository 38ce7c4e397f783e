//! Block Kit as HTML, close enough to Slack's own look for a picture in the documentation: the
//! block and element types token-rotator sends (section, context, divider, actions with buttons,
//! header), mrkdwn (bold, italic, strike, code, links, mentions, quotes) and plain text. A type
//! it does not know is an error, so a new kind of block cannot slip into the picture unseen.
//!
//! Layout after Slack's: a message is an avatar, the app's name with its APP badge and the time,
//! then its blocks; a thread's replies follow their parent in a pane of their own.

use serde_json::Value;
use token_rotator::sim::slack::Message;

const STYLE: &str = r#"
body{margin:0;font:15px/1.46668 "Lato","Helvetica Neue",Helvetica,Arial,sans-serif;color:#1d1c1d;background:#fff}
.pane{width:760px;padding:8px 0}
.title{font-weight:900;font-size:18px;padding:12px 20px;border-bottom:1px solid #ddd}
.title small{font-weight:400;color:#616061;font-size:13px;margin-left:8px}
.msg{display:flex;gap:8px;padding:8px 20px}
.avatar{flex:none;width:36px;height:36px;border-radius:4px;background:#1d70b8;color:#fff;font-weight:900;font-size:16px;display:flex;align-items:center;justify-content:center}
.who b{font-weight:900}.app{font-size:10px;font-weight:700;color:#616061;background:#e8e8e8;border-radius:2px;padding:1px 3px;margin:0 4px;vertical-align:1px}
.time,.edited{color:#616061;font-size:12px}
.section{margin:2px 0}
.context{color:#616061;font-size:13px;margin:4px 0}
.divider{border-top:1px solid #ddd;margin:8px 0}
.header{font-weight:900;font-size:18px;margin:4px 0}
.actions{display:flex;gap:8px;margin:8px 0}
.button{border:1px solid #bbb;border-radius:4px;padding:3px 12px;font-weight:700;font-size:13px;background:#fff}
.button.primary{background:#007a5a;border-color:#007a5a;color:#fff}.button.danger{background:#e01e5a;border-color:#e01e5a;color:#fff}
code{font:12px Monaco,Menlo,Consolas,monospace;color:#e01e5a;background:#f8f8f8;border:1px solid #ddd;border-radius:3px;padding:1px 3px}
pre{font:12px Monaco,Menlo,Consolas,monospace;background:#f8f8f8;border:1px solid #ddd;border-radius:4px;padding:8px;white-space:pre-wrap;margin:4px 0}
blockquote{margin:2px 0;padding-left:12px;border-left:4px solid #ddd}
a,.mention{color:#1264a3;text-decoration:none}.mention{background:#e8f5fa;border-radius:3px;padding:0 2px}
.thread{margin:0 20px 12px 64px;border-left:2px solid #ddd}
.thread .msg{padding:6px 12px}
.replies{color:#1264a3;font-weight:700;font-size:13px;margin:0 20px 4px 64px}
.broadcast{color:#616061;font-size:12px}
"#;

/// A whole page: `title`, then each parent of `messages` with its thread under it.
pub fn page(title: &str, messages: &[Message]) -> Result<String, String> {
    let mut html = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><style>{STYLE}</style></head>\
         <body><div class=\"pane\"><div class=\"title\">{}<small>token-rotator's messages, \
         as the Slack simulator recorded them</small></div>",
        escape(title)
    );
    // Slack shows each message's time; the simulator's `ts` is a counter, so the picture's
    // clock starts at 10:00 and moves a minute a message.
    let minute = |m: &Message| messages.iter().position(|x| x.ts == m.ts).unwrap_or(0);
    for parent in messages.iter().filter(|m| m.thread_ts.is_none()) {
        html.push_str(&message(parent, minute(parent))?);
        let replies: Vec<&Message> = messages
            .iter()
            .filter(|m| m.thread_ts.as_deref() == Some(parent.ts.as_str()))
            .collect();
        if replies.is_empty() {
            continue;
        }
        html.push_str(&format!(
            "<div class=\"replies\">{} {}</div><div class=\"thread\">",
            replies.len(),
            if replies.len() == 1 {
                "reply"
            } else {
                "replies"
            }
        ));
        for reply in replies {
            html.push_str(&message(reply, minute(reply))?);
        }
        html.push_str("</div>");
    }
    html.push_str("</div></body></html>");
    Ok(html)
}

fn message(m: &Message, minute: usize) -> Result<String, String> {
    let mut out = String::from(
        "<div class=\"msg\"><div class=\"avatar\">TR</div><div class=\"body\"><div class=\"who\">\
         <b>token-rotator</b><span class=\"app\">APP</span>",
    );
    out.push_str(&format!(
        "<span class=\"time\">10:{:02}</span>",
        minute.min(59)
    ));
    if m.edits > 0 {
        out.push_str(" <span class=\"edited\">(edited)</span>");
    }
    if m.broadcast {
        out.push_str(" <span class=\"broadcast\">· also sent to the channel</span>");
    }
    out.push_str("</div>");
    match m.body["blocks"].as_array() {
        Some(blocks) if !blocks.is_empty() => {
            for b in blocks {
                out.push_str(&block(b)?);
            }
        }
        // Without blocks Slack shows `text`, as mrkdwn.
        _ => out.push_str(&format!(
            "<div class=\"section\">{}</div>",
            mrkdwn(m.body["text"].as_str().unwrap_or_default())
        )),
    }
    out.push_str("</div></div>");
    Ok(out)
}

fn block(b: &Value) -> Result<String, String> {
    let kind = b["type"].as_str().unwrap_or_default();
    Ok(match kind {
        "section" => {
            let mut out = String::from("<div class=\"section\">");
            if !b["text"].is_null() {
                out.push_str(&text(&b["text"])?);
            }
            if let Some(fields) = b["fields"].as_array() {
                for field in fields {
                    out.push_str(&format!("<div>{}</div>", text(field)?));
                }
            }
            if !b["accessory"].is_null() {
                out.push_str(&element(&b["accessory"])?);
            }
            out + "</div>"
        }
        "context" => {
            let mut out = String::from("<div class=\"context\">");
            for e in b["elements"].as_array().ok_or("context without elements")? {
                out.push_str(&text(e)?);
                out.push(' ');
            }
            out + "</div>"
        }
        "actions" => {
            let mut out = String::from("<div class=\"actions\">");
            for e in b["elements"].as_array().ok_or("actions without elements")? {
                out.push_str(&element(e)?);
            }
            out + "</div>"
        }
        "divider" => "<div class=\"divider\"></div>".to_owned(),
        "header" => format!("<div class=\"header\">{}</div>", text(&b["text"])?),
        other => return Err(format!("a block of type {other:?} has no rendering: {b}")),
    })
}

fn element(e: &Value) -> Result<String, String> {
    match e["type"].as_str().unwrap_or_default() {
        "button" => {
            let style = e["style"].as_str().unwrap_or("");
            Ok(format!(
                "<span class=\"button {style}\">{}</span>",
                text(&e["text"])?
            ))
        }
        other => Err(format!(
            "an element of type {other:?} has no rendering: {e}"
        )),
    }
}

fn text(t: &Value) -> Result<String, String> {
    let body = t["text"].as_str().unwrap_or_default();
    match t["type"].as_str().unwrap_or_default() {
        "mrkdwn" => Ok(mrkdwn(body)),
        // Plain text: `&`, `<`, `>` are literal, and `:emoji:` is drawn when `emoji` is set.
        "plain_text" => Ok(emoji(&escape(body))),
        other => Err(format!(
            "a text object of type {other:?} has no rendering: {t}"
        )),
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Slack's mrkdwn: the sender escapes `&`, `<` and `>` as entities, so a raw `<` opens a link
/// or mention (`<url|text>`, `<@U…>`, `<!subteam^S…>`, `<#C…>`) and an entity is shown as its
/// character. Then ```pre```, `code`, *bold*, _italic_, ~strike~ and `&gt; ` quotes, per line.
fn mrkdwn(source: &str) -> String {
    // Pre-formatted blocks first: nothing inside them is formatted.
    let mut out = String::new();
    for (i, part) in source.split("```").enumerate() {
        if i % 2 == 1 {
            out.push_str(&format!("<pre>{}</pre>", tokens(part, false)));
        } else {
            let lines: Vec<String> = part
                .split('\n')
                .map(
                    |line| match line.strip_prefix("&gt; ").or(line.strip_prefix("&gt;")) {
                        Some(quoted) => format!("<blockquote>{}</blockquote>", inline(quoted)),
                        None => inline(line),
                    },
                )
                .collect();
            out.push_str(
                &lines
                    .join("<br>")
                    .replace("</blockquote><br>", "</blockquote>"),
            );
        }
    }
    out
}

/// One line: code spans kept apart from the other marks.
fn inline(line: &str) -> String {
    let mut out = String::new();
    for (i, part) in line.split('`').enumerate() {
        if i % 2 == 1 {
            out.push_str(&format!("<code>{}</code>", tokens(part, false)));
        } else {
            out.push_str(&tokens(part, true));
        }
    }
    out
}

/// Links and mentions, then (with `marks`) bold, italic and strike between word boundaries.
fn tokens(text: &str, marks: bool) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(open) = rest.find('<') {
        out.push_str(&format_marks(&rest[..open], marks));
        let Some(close) = rest[open..].find('>') else {
            out.push_str(&format_marks(&rest[open..].replace('<', "&lt;"), marks));
            return out;
        };
        let inner = &rest[open + 1..open + close];
        let (target, label) = inner.split_once('|').unwrap_or((inner, ""));
        out.push_str(&match target.chars().next() {
            Some('@') => format!(
                "<span class=\"mention\">@{}</span>",
                escape(label.if_empty(&target[1..]))
            ),
            Some('#') => format!(
                "<span class=\"mention\">#{}</span>",
                escape(label.if_empty(&target[1..]))
            ),
            Some('!') => {
                let name = target
                    .trim_start_matches('!')
                    .trim_start_matches("subteam^");
                format!(
                    "<span class=\"mention\">@{}</span>",
                    escape(label.if_empty(name))
                )
            }
            _ => format!(
                "<a href=\"{}\">{}</a>",
                escape(target),
                format_marks(label.if_empty(target), marks)
            ),
        });
        rest = &rest[open + close + 1..];
    }
    out.push_str(&format_marks(rest, marks));
    out
}

trait IfEmpty {
    fn if_empty<'a>(&'a self, other: &'a str) -> &'a str;
}

impl IfEmpty for str {
    fn if_empty<'a>(&'a self, other: &'a str) -> &'a str {
        if self.is_empty() { other } else { self }
    }
}

/// `*bold*`, `_italic_`, `~strike~`: a mark opens after a space or the start and closes before
/// a space, punctuation or the end, as Slack reads them. Entities pass through as they are.
fn format_marks(text: &str, marks: bool) -> String {
    let text = emoji(&text.replace('"', "&quot;"));
    if !marks {
        return text;
    }
    let mut out = text;
    for (mark, tag) in [('*', "b"), ('_', "i"), ('~', "s")] {
        let mut result = String::new();
        let mut open = false;
        let chars: Vec<char> = out.chars().collect();
        for (i, &c) in chars.iter().enumerate() {
            if c == mark {
                let before = i.checked_sub(1).map(|j| chars[j]);
                let after = chars.get(i + 1).copied();
                let opens = !open
                    && before.is_none_or(|b| b.is_whitespace() || "([".contains(b))
                    && after.is_some_and(|a| !a.is_whitespace())
                    && chars[i + 1..].contains(&mark);
                let closes = open
                    && before.is_some_and(|b| !b.is_whitespace())
                    && after.is_none_or(|a| !a.is_alphanumeric());
                if opens || closes {
                    result.push_str(&if opens {
                        format!("<{tag}>")
                    } else {
                        format!("</{tag}>")
                    });
                    open = opens;
                    continue;
                }
            }
            result.push(c);
        }
        if open {
            result.push_str(&format!("</{tag}>"));
        }
        out = result;
    }
    out
}

/// The emoji token-rotator's messages use, as Slack draws them.
fn emoji(text: &str) -> String {
    let mut out = text.to_owned();
    for (name, glyph) in [
        (":white_check_mark:", "✅"),
        (":ballot_box_with_check:", "☑️"),
        (":heavy_minus_sign:", "➖"),
        (":hourglass_flowing_sand:", "⏳"),
        (":leftwards_arrow_with_hook:", "↩️"),
        (":no_entry_sign:", "🚫"),
        (":no_entry:", "⛔"),
        (":rotating_light:", "🚨"),
        (":raising_hand:", "🙋"),
        (":raised_hand:", "✋"),
        (":wastebasket:", "🗑️"),
        (":warning:", "⚠️"),
        (":package:", "📦"),
        (":ghost:", "👻"),
        (":fire:", "🔥"),
        (":mute:", "🔇"),
        (":key:", "🔑"),
        (":zzz:", "💤"),
        (":x:", "❌"),
    ] {
        out = out.replace(name, glyph);
    }
    out
}

#[test]
fn mrkdwn_is_drawn_as_slack_draws_it() {
    assert_eq!(mrkdwn("*bold* and _it_"), "<b>bold</b> and <i>it</i>");
    assert_eq!(
        mrkdwn("`a*b*c` &amp; <https://x.example/p|the page>"),
        "<code>a*b*c</code> &amp; <a href=\"https://x.example/p\">the page</a>"
    );
    assert_eq!(
        mrkdwn("<@U0ALICE> and <!subteam^S0PLATFORM>"),
        "<span class=\"mention\">@U0ALICE</span> and <span class=\"mention\">@S0PLATFORM</span>"
    );
    assert_eq!(
        mrkdwn("&gt; quoted\nnext"),
        "<blockquote>quoted</blockquote>next"
    );
    assert!(block(&serde_json::json!({"type": "video"})).is_err());
}
