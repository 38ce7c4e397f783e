//! Text that came from outside (an alert's labels, an upstream's answer, a reason quoting
//! either) made inert in Slack's mrkdwn, where it sits beside our own formatting.
//!
//! Slack's formatting reference (https://api.slack.com/reference/surfaces/formatting) names
//! `&`, `<` and `>` as its control characters, escaped as `&amp;`, `&lt;`, `&gt;`; that stops
//! links, mentions and `<!date…>`. It gives no escape for the other markers (`*bold*`,
//! `_italic_`, `~strike~`, `` `code` ``, `:emoji:`) nor for a newline, so those are replaced:
//! a line break or other control character by a space (a label cannot add a line), and each
//! marker by a character that looks like it but means nothing to Slack (the replacements
//! jsx-slack makes for the same reason: U+2217 for `*`, U+02CD for `_`, U+02CB for a backtick,
//! U+223C for `~`). So a label cannot close our code span (`` `api_user` ``), end our bold
//! (`*application*`) or start formatting of its own. An underscore inside a word
//! (`short_url`) is kept: Slack formats `_` only at a word's edge. Bare URLs, `#channel` and
//! `@here` are not auto-linked because the Slack adapter marks every mrkdwn text object
//! `verbatim` (see `adapters::slack::verbatim`).

/// `text` for a mrkdwn string: nothing in it formats, links, mentions or breaks a line.
pub fn escape(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    for (i, &c) in chars.iter().enumerate() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '*' => out.push('\u{2217}'),
            '`' => out.push('\u{02CB}'),
            '~' => out.push('\u{223C}'),
            '_' if !inside_word(&chars, i) => out.push('\u{02CD}'),
            ':' if opens_emoji(&chars, i) => out.push('\u{2236}'),
            c if breaks_lines(c) => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// `text` for a `plain_text` object, which Slack does not format: only its line breaks and
/// control characters go (as spaces), so it cannot add a line to a dialog.
pub fn plain(text: &str) -> String {
    text.chars()
        .map(|c| if breaks_lines(c) { ' ' } else { c })
        .collect()
}

/// `<url>` for one of our own links (from the config or built by us), which stays a link
/// though text is `verbatim`; anything that is not a plain http(s) URL is escaped text.
pub fn link(url: &str) -> String {
    let plain = (url.starts_with("https://") || url.starts_with("http://"))
        && !url
            .chars()
            .any(|c| c.is_whitespace() || breaks_lines(c) || matches!(c, '<' | '>' | '|'));
    if plain {
        format!("<{}>", url.replace('&', "&amp;"))
    } else {
        escape(url)
    }
}

fn inside_word(chars: &[char], i: usize) -> bool {
    i > 0 && chars[i - 1].is_alphanumeric() && chars.get(i + 1).is_some_and(|c| c.is_alphanumeric())
}

/// `:name:` is an emoji shortcode: a colon, a letter, then letters, digits, `_`, `+` or `-` up
/// to the next colon. A time (`10:04:07`) or a URL (`https://`) is not one.
fn opens_emoji(chars: &[char], i: usize) -> bool {
    let rest = &chars[i + 1..];
    if !rest.first().is_some_and(|c| c.is_ascii_lowercase()) {
        return false;
    }
    match rest.iter().position(|c| *c == ':') {
        Some(end) => rest[..end]
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '+' | '-')),
        None => false,
    }
}

/// Control characters (newline, tab, NUL, escape…), Unicode's line and paragraph separators,
/// and the bidirectional overrides that make text read otherwise than it is.
fn breaks_lines(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{2028}' | '\u{2029}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hostile_label_has_no_formatting_left() {
        let label = "`*bold*` <https://evil|x> \n fake line _it_ ~s~ :fire: <!here>\u{202E}";
        let out = escape(label);
        assert_eq!(
            out,
            "\u{02CB}\u{2217}bold\u{2217}\u{02CB} &lt;https://evil|x&gt;   fake line \u{02CD}it\u{02CD} \u{223C}s\u{223C} \u{2236}fire: &lt;!here&gt; "
        );
        for marker in ['`', '*', '~', '<', '>', '\n'] {
            assert!(!out.contains(marker), "{marker:?} in {out:?}");
        }
    }

    #[test]
    fn ordinary_text_reads_the_same() {
        for text in [
            "short_url_manager@alphagov.co.uk",
            "Publishing API",
            "HTTP 503 (will retry) at 10:04:07; see https://example.com/x",
            "max_alerts_per_delivery",
        ] {
            assert_eq!(escape(text), text);
        }
        assert_eq!(escape("a & b"), "a &amp; b");
    }

    #[test]
    fn our_links_stay_links_and_others_are_text() {
        assert_eq!(
            link("https://docs.example/runbook?a=1&b=2"),
            "<https://docs.example/runbook?a=1&amp;b=2>"
        );
        assert_eq!(link("https://x|evil"), "https://x|evil");
        assert_eq!(link("ask *ops*"), "ask \u{2217}ops\u{2217}");
    }
}
