//! A message as the simulated workspace holds it, and what a person reads in it.

use serde_json::Value;

/// A message as the simulated workspace holds it.
#[derive(Debug, Clone)]
pub struct Message {
    pub channel: String,
    pub ts: String,
    /// The parent's `ts` for a thread reply.
    pub thread_ts: Option<String>,
    /// A thread reply also shown in the channel.
    pub broadcast: bool,
    /// As last posted or edited.
    pub body: Value,
    pub edits: usize,
}

impl Message {
    pub fn text(&self) -> &str {
        self.body["text"].as_str().unwrap_or_default()
    }

    /// What a person sees: the blocks' texts, or the fallback text when there are no blocks.
    pub fn all_text(&self) -> String {
        let mut out = String::new();
        collect_text(&self.body["blocks"], &mut out);
        if out.is_empty() {
            out = self.text().to_owned();
        }
        out
    }
}

fn collect_text(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            for (key, v) in map {
                match (key.as_str(), v) {
                    ("text", Value::String(s)) => {
                        out.push('\n');
                        out.push_str(s);
                    }
                    _ => collect_text(v, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_text(v, out)),
        _ => {}
    }
}
