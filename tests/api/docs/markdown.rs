//! Just enough Markdown for the checks: fenced blocks, tables, links and GitHub's heading anchors.

/// A fenced code block: its info string, its text and the line its body starts on.
pub struct Fence {
    pub lang: String,
    pub body: String,
    pub line: usize,
}

pub fn fences(text: &str) -> Vec<Fence> {
    let mut out = Vec::new();
    let mut open: Option<Fence> = None;
    for (i, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        match open.as_mut() {
            None if trimmed.starts_with("```") => {
                open = Some(Fence {
                    lang: trimmed.trim_start_matches('`').trim().to_owned(),
                    body: String::new(),
                    line: i + 2,
                });
            }
            None => {}
            Some(_) if trimmed.starts_with("```") => out.extend(open.take()),
            Some(fence) => {
                fence.body.push_str(line);
                fence.body.push('\n');
            }
        }
    }
    out
}

/// The lines outside fenced blocks, with their numbers (from 1).
pub fn prose(text: &str) -> Vec<(usize, &str)> {
    let mut inside = false;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim_start().starts_with("```") {
            inside = !inside;
        } else if !inside {
            out.push((i + 1, line));
        }
    }
    out
}

/// `line` without its inline code spans, so `[a](b)` written as code is not a link.
pub fn without_code(line: &str) -> String {
    let mut out = String::new();
    for (i, part) in line.split('`').enumerate() {
        if i % 2 == 0 {
            out.push_str(part);
        }
    }
    out
}

/// Tables as their header's cells and their rows' cells.
pub struct Table {
    pub header: Vec<String>,
    pub rows: Vec<(usize, Vec<String>)>,
}

pub fn tables(text: &str) -> Vec<Table> {
    let mut out: Vec<Table> = Vec::new();
    let mut current: Option<Table> = None;
    let lines = prose(text);
    for (n, (number, line)) in lines.iter().enumerate() {
        let is_row = line.trim_start().starts_with('|');
        match current.as_mut() {
            Some(table) if is_row => table.rows.push((*number, cells(line))),
            Some(_) => out.extend(current.take()),
            None if is_row
                && lines.get(n + 1).is_some_and(|(_, next)| {
                    next.trim_start().starts_with("|--")
                        || next.trim_start().starts_with("| --")
                        || next.trim_start().starts_with("|:-")
                }) =>
            {
                current = Some(Table {
                    header: cells(line),
                    rows: Vec::new(),
                });
            }
            None => {}
        }
    }
    out.extend(current);
    for table in &mut out {
        // The delimiter row.
        table.rows.retain(|(_, cells)| {
            !cells
                .iter()
                .all(|c| !c.is_empty() && c.chars().all(|ch| matches!(ch, '-' | ':')))
        });
    }
    out
}

/// A table row's cells, trimmed; a `|` inside a code span stays in its cell.
fn cells(line: &str) -> Vec<String> {
    let inner = line.trim().trim_start_matches('|').trim_end_matches('|');
    let mut out = vec![String::new()];
    let mut code = false;
    let mut escaped = false;
    for ch in inner.chars() {
        match ch {
            '`' => code = !code,
            '|' if !code && !escaped => {
                out.push(String::new());
                escaped = false;
                continue;
            }
            _ => {}
        }
        escaped = ch == '\\';
        out.last_mut().unwrap().push(ch);
    }
    out.into_iter().map(|c| c.trim().to_owned()).collect()
}

/// The text of a cell that is one code span, such as `` `signon.url` ``.
pub fn code_span(cell: &str) -> Option<&str> {
    let inner = cell.strip_prefix('`')?.strip_suffix('`')?;
    (!inner.contains('`')).then_some(inner)
}

/// Every inline link target `[text](target)` outside code, with its line; images included.
pub fn links(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    for (number, line) in prose(text) {
        let line = without_code(line);
        let mut rest = line.as_str();
        while let Some(at) = rest.find("](") {
            let after = &rest[at + 2..];
            let Some(end) = after.find(')') else { break };
            let target = after[..end].split_whitespace().next().unwrap_or("");
            out.push((number, target.to_owned()));
            rest = &after[end..];
        }
    }
    out
}

/// The anchors GitHub gives a document's headings: lower case, punctuation dropped, spaces as
/// hyphens, a repeat numbered `-1`, `-2`… (github.com/gjtorikian/html-pipeline,
/// `lib/html/pipeline/toc_filter.rb`: `PUNCTUATION_REGEXP = /[^\p{Word}\- ]/u`).
pub fn anchors(text: &str) -> Vec<String> {
    let mut seen: Vec<String> = Vec::new();
    let mut out = Vec::new();
    for (_, line) in prose(text) {
        let Some(title) = line.strip_prefix('#') else {
            continue;
        };
        let title = title.trim_start_matches('#');
        if !title.starts_with(' ') {
            continue;
        }
        let slug: String = title
            .trim()
            .to_lowercase()
            .chars()
            .filter(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | ' '))
            .map(|c| if c == ' ' { '-' } else { c })
            .collect();
        let repeats = seen.iter().filter(|s| **s == slug).count();
        seen.push(slug.clone());
        out.push(if repeats == 0 {
            slug
        } else {
            format!("{slug}-{repeats}")
        });
    }
    out
}

#[test]
fn anchors_are_githubs() {
    let text = "# Two replicas (PostgreSQL)\n## `[signon.job]` keys\n# Two replicas (PostgreSQL)\n```\n# not a heading\n```\n";
    assert_eq!(
        anchors(text),
        [
            "two-replicas-postgresql",
            "signonjob-keys",
            "two-replicas-postgresql-1"
        ]
    );
}
