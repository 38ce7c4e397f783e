//! Channel names to ids. `conversations.join` (and `chat.update`, and org-wide tokens on
//! `chat.postMessage`) take a channel id, while operators configure `#rotations`; names are
//! looked up once with `conversations.list` (scope `channels:read`), page by page, and kept.
//! Source: https://docs.slack.dev/reference/methods/conversations.list (`types`,
//! `exclude_archived`, `limit` "under 1000", cursor pagination through
//! `response_metadata.next_cursor`, empty on the last page) and
//! https://docs.slack.dev/apis/web-api/pagination.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::api::Args;
use super::{SlackApi, SlackError};

/// Slack's advice for a page: "no more than 200 results at a time" (pagination page).
const PAGE: &str = "200";
/// A workspace with more pages than this is not read to its end for one name.
const MAX_PAGES: usize = 100;

/// Names already resolved, shared by every clone of the client.
#[derive(Clone, Default)]
pub(crate) struct Known(Arc<Mutex<HashMap<String, String>>>);

/// A channel, DM or group id as Slack writes them (`C0123ABCD`, `G…`, `D…`): upper-case letters
/// and digits. Channel names are lower-case, so `#rotations` and `rotations` are names.
pub fn is_channel_id(channel: &str) -> bool {
    let mut chars = channel.chars();
    matches!(chars.next(), Some('C' | 'G' | 'D'))
        && channel.len() >= 3
        && chars.all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
}

impl SlackApi {
    /// The id of `channel`: itself when it is one, else the public, unarchived channel of that
    /// name (with or without `#`), looked up once.
    pub async fn channel_id(&self, channel: &str) -> Result<String, SlackError> {
        if is_channel_id(channel) {
            return Ok(channel.to_owned());
        }
        let name = channel.trim_start_matches('#');
        if let Some(id) = self.known(name) {
            return Ok(id);
        }
        let mut cursor = String::new();
        for _ in 0..MAX_PAGES {
            let mut query = vec![
                ("types", "public_channel"),
                ("exclude_archived", "true"),
                ("limit", PAGE),
            ];
            if !cursor.is_empty() {
                query.push(("cursor", cursor.as_str()));
            }
            let page = self.call("conversations.list", Args::Query(&query)).await?;
            let mut known = self.channel_ids.0.lock().expect("lock never poisoned");
            for c in page["channels"].as_array().into_iter().flatten() {
                if let (Some(id), Some(n)) = (c["id"].as_str(), c["name"].as_str()) {
                    known.insert(n.to_owned(), id.to_owned());
                }
            }
            drop(known);
            if let Some(id) = self.known(name) {
                return Ok(id);
            }
            cursor = page["response_metadata"]["next_cursor"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            if cursor.is_empty() {
                break;
            }
        }
        Err(SlackError::NoSuchChannel(name.to_owned()))
    }

    fn known(&self, name: &str) -> Option<String> {
        self.channel_ids
            .0
            .lock()
            .expect("lock never poisoned")
            .get(name)
            .cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::is_channel_id;

    #[test]
    fn ids_are_told_from_names() {
        for id in ["C0ROTATIONS", "C012AB3CD", "G0PRIVATE", "D0DIRECT"] {
            assert!(is_channel_id(id), "{id}");
        }
        for name in [
            "#rotations",
            "rotations",
            "Cats",
            "c0lower",
            "#C0ROTATIONS",
            "my channel",
        ] {
            assert!(!is_channel_id(name), "{name}");
        }
    }
}
