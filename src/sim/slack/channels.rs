//! The simulated workspace's public channels, for `conversations.list` (cursor pagination),
//! `conversations.join` (by id only) and archived channels. Every id is a channel the bot may
//! post in, as before, unless a test archives it; names are resolved only through this list.

use std::collections::BTreeMap;
use std::sync::Mutex;

use serde_json::{Value, json};

/// Enough channels that a client reading 200 a page needs more than one page.
const FILLERS: usize = 230;

pub(super) struct Channels(Mutex<BTreeMap<String, Channel>>);

struct Channel {
    name: String,
    archived: bool,
}

/// The id the simulator gives the channel `name`: `#rotations` is `C0ROTATIONS`.
pub(super) fn id_for(name: &str) -> String {
    format!(
        "C0{}",
        name.trim_start_matches('#')
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .collect::<String>()
            .to_ascii_uppercase()
    )
}

/// A conversation id: upper-case letters and digits after `C` (channels), `G` (private) or `D`
/// (direct messages) (docs.slack.dev/reference/objects/conversation-object: ids, not names,
/// identify conversations).
pub(super) fn is_id(channel: &str) -> bool {
    matches!(channel.chars().next(), Some('C' | 'G' | 'D'))
        && channel.len() > 1
        && channel
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
}

impl Default for Channels {
    fn default() -> Self {
        let mut all = BTreeMap::new();
        // Listed in id order, so the named ones come after the first page of fillers.
        for i in 0..FILLERS {
            let name = format!("team-{i:03}");
            all.insert(
                format!("C0A{i:03}"),
                Channel {
                    name,
                    archived: false,
                },
            );
        }
        let this = Self(Mutex::new(all));
        for name in ["rotations", "platform", "general"] {
            this.add(name);
        }
        this
    }
}

impl Channels {
    pub(super) fn add(&self, name: &str) -> String {
        let id = id_for(name);
        self.0.lock().expect("lock never poisoned").insert(
            id.clone(),
            Channel {
                name: name.trim_start_matches('#').to_owned(),
                archived: false,
            },
        );
        id
    }

    pub(super) fn archive(&self, id: &str) {
        if let Some(c) = self.0.lock().expect("lock never poisoned").get_mut(id) {
            c.archived = true;
        }
    }

    pub(super) fn archived(&self, id: &str) -> bool {
        self.0
            .lock()
            .expect("lock never poisoned")
            .get(id)
            .is_some_and(|c| c.archived)
    }

    /// The id of a channel given by name (`#name` or `name`), if there is one.
    pub(super) fn named(&self, name: &str) -> Option<String> {
        let name = name.trim_start_matches('#');
        self.0
            .lock()
            .expect("lock never poisoned")
            .iter()
            .find(|(_, c)| c.name == name)
            .map(|(id, _)| id.clone())
    }

    /// One page of `conversations.list`, or the error code Slack answers. Source:
    /// https://docs.slack.dev/reference/methods/conversations.list (`limit` defaults to 100
    /// and "must be an integer under 1000", `invalid_limit`; `cursor` from
    /// `response_metadata.next_cursor`, which is empty on the last page, `invalid_cursor`;
    /// `exclude_archived` defaults to false; `types` defaults to `public_channel`).
    pub(super) fn page(&self, query: &BTreeMap<String, String>) -> Result<Value, &'static str> {
        let limit = match query.get("limit") {
            None => 100,
            Some(l) => l.parse::<usize>().map_err(|_| "invalid_limit")?,
        };
        if limit == 0 || limit >= 1000 {
            return Err("invalid_limit");
        }
        let start = match query.get("cursor").filter(|c| !c.is_empty()) {
            None => 0,
            Some(c) => c
                .strip_prefix("dGVhbTpD")
                .and_then(|n| n.parse::<usize>().ok())
                .ok_or("invalid_cursor")?,
        };
        let public = query
            .get("types")
            .is_none_or(|t| t.split(',').any(|t| t.trim() == "public_channel"));
        let exclude_archived = query.get("exclude_archived").is_some_and(|v| v == "true");
        let all = self.0.lock().expect("lock never poisoned");
        let listed: Vec<Value> = all
            .iter()
            .filter(|_| public)
            .filter(|(_, c)| !(exclude_archived && c.archived))
            .skip(start)
            .take(limit)
            .map(|(id, c)| {
                json!({"id": id, "name": c.name, "is_channel": true, "is_archived": c.archived})
            })
            .collect();
        let total = all
            .values()
            .filter(|_| public)
            .filter(|c| !(exclude_archived && c.archived))
            .count();
        let next = if start + listed.len() < total {
            format!("dGVhbTpD{}", start + listed.len())
        } else {
            String::new()
        };
        Ok(json!({"ok": true, "channels": listed, "response_metadata": {"next_cursor": next}}))
    }
}
