//! Whose token it is, as an alert or a schedule writes it (`user:<id>`, `project:<id or path>`,
//! `group:<id or path>`), checked before any of it reaches a URL, and the one spelling GitLab's
//! own id gives it.
//!
//! GitLab finds a project or group by numeric id or by its full path, URL-encoded as one path
//! segment (docs.gitlab.com/api/rest/#namespaced-paths; gitlabhq `lib/api/helpers.rb`
//! `find_project`/`find_group`: `INTEGER_ID_REGEX = /^-?\d+$/` is an id, anything else a path,
//! and a project's path needs its namespace: `id.include?("/")`). A path segment "can contain
//! only letters, digits, '_', '-' and '.'" and cannot start with '-' (gitlabhq
//! `lib/gitlab/path_regex.rb`, `namespace_format_message`/`project_path_format_message`), so
//! anything else in a label (`..`, `?`, `#`, `%`, whitespace, control characters) names no GitLab
//! owner: it is refused here, before it could reach another of GitLab's resources.

use super::UPSTREAM;
use crate::adapters::AdapterError;

/// Whose token it is: a user by id, a project or group by id or full path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Owner {
    User(String),
    Project(String),
    Group(String),
}

impl Owner {
    /// Parses and checks `api_user`; every error names the label as written.
    pub(super) fn parse(api_user: &str) -> Result<Self, AdapterError> {
        let refuse = |why: String| Err(bad_owner(api_user, &why));
        let Some((kind, id)) = api_user.split_once(':') else {
            return refuse("it has no kind".into());
        };
        // Whitespace around the id is not part of it (`project: 42` is `project:42`).
        let id = id.trim();
        if id.is_empty() {
            return refuse("its id is empty".into());
        }
        match kind.trim() {
            "user" => match id.parse::<u64>() {
                Ok(n) if n > 0 && id.bytes().all(|b| b.is_ascii_digit()) => {
                    Ok(Owner::User(n.to_string()))
                }
                _ => refuse(format!(
                    "{id:?} is not a user id: user:<id> takes GitLab's numeric user id"
                )),
            },
            kind @ ("project" | "group") => {
                if let Err(why) = check_id_or_path(id, kind == "project") {
                    return refuse(why);
                }
                Ok(if kind == "project" {
                    Owner::Project(id.to_owned())
                } else {
                    Owner::Group(id.to_owned())
                })
            }
            other => refuse(format!(
                "{other:?} is not a kind of token owner (user, project or group)"
            )),
        }
    }

    /// `project` or `group`, as GitLab's URLs say it (`None` for a user).
    pub(super) fn resource(&self) -> Option<&'static str> {
        match self {
            Owner::User(_) => None,
            Owner::Project(_) => Some("projects"),
            Owner::Group(_) => Some("groups"),
        }
    }

    pub(super) fn id(&self) -> &str {
        match self {
            Owner::User(id) | Owner::Project(id) | Owner::Group(id) => id,
        }
    }

    /// The id as one URL path segment: a path's `/` percent-encoded, as GitLab asks for
    /// namespaced paths. `parse` let nothing else through that would need encoding.
    pub(super) fn segment(&self) -> String {
        self.id().replace('/', "%2F")
    }

    /// `/api/v4/projects/<segment>` or `/api/v4/groups/<segment>`.
    pub(super) fn resource_path(&self) -> Option<String> {
        self.resource()
            .map(|r| format!("/api/v4/{r}/{}", self.segment()))
    }

    /// The collection of its tokens: `…/personal_access_tokens` is shared by all users (an
    /// administrator filters by `user_id`), the others are the resource's own.
    pub(super) fn tokens_path(&self) -> String {
        match self.resource_path() {
            None => "/api/v4/personal_access_tokens".to_owned(),
            Some(resource) => format!("{resource}/access_tokens"),
        }
    }

    /// One token of its collection: `…/personal_access_tokens/:id` or `…/access_tokens/:id`.
    pub(super) fn token_path(&self, token_id: &str) -> String {
        format!("{}/{token_id}", self.tokens_path())
    }

    /// The owner as targets name it once resolved: `project:42`.
    pub(super) fn label(&self) -> String {
        let kind = match self {
            Owner::User(_) => "user",
            Owner::Project(_) => "project",
            Owner::Group(_) => "group",
        };
        format!("{kind}:{}", self.id())
    }

    /// The same owner under GitLab's numeric `id`.
    pub(super) fn with_id(&self, id: u64) -> Owner {
        match self {
            Owner::User(_) => Owner::User(id.to_string()),
            Owner::Project(_) => Owner::Project(id.to_string()),
            Owner::Group(_) => Owner::Group(id.to_string()),
        }
    }
}

/// A numeric id, or a full path of segments GitLab allows.
fn check_id_or_path(id: &str, project: bool) -> Result<(), String> {
    if id.bytes().all(|b| b.is_ascii_digit()) {
        return match id.trim_start_matches('0') {
            "" => Err(format!("{id:?} is not an id (GitLab's ids start at 1)")),
            _ => Ok(()),
        };
    }
    if let Some(c) = id
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '/')))
    {
        let what = match c {
            c if c.is_control() => format!("the control character {:?}", c.escape_debug()),
            c if c.is_whitespace() => "whitespace".to_owned(),
            c => format!("{c:?}"),
        };
        return Err(format!(
            "{what} is not allowed in a GitLab path (letters, digits, '_', '-' and '.' only)"
        ));
    }
    for segment in id.split('/') {
        match segment {
            "" => return Err(format!("{id:?} has an empty path segment")),
            "." | ".." => return Err(format!("{segment:?} is not a path segment GitLab allows")),
            s if s.starts_with('-') => {
                return Err(format!(
                    "{s:?}: a GitLab path segment cannot start with '-'"
                ));
            }
            _ => {}
        }
    }
    if project && !id.contains('/') {
        return Err(format!(
            "{id:?} is neither an id nor a project's full path (a project's path starts with its group: group/project)"
        ));
    }
    Ok(())
}

fn bad_owner(api_user: &str, why: &str) -> AdapterError {
    AdapterError::permanent(
        UPSTREAM,
        format!(
            "api_user {api_user:?} does not name a GitLab token owner: {why}; write user:<id>, project:<id or group/project path> or group:<id or path>"
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(api_user: &str) -> String {
        Owner::parse(api_user).unwrap_err().to_string()
    }

    #[test]
    fn owners_are_written_kind_colon_id_or_path() {
        assert_eq!(
            Owner::parse("project:42").unwrap(),
            Owner::Project("42".into())
        );
        assert_eq!(
            Owner::parse("project: 42").unwrap(),
            Owner::Project("42".into())
        );
        assert_eq!(Owner::parse("user:007").unwrap(), Owner::User("7".into()));
        assert_eq!(
            Owner::parse("group:platform/ops").unwrap().tokens_path(),
            "/api/v4/groups/platform%2Fops/access_tokens"
        );
        assert_eq!(
            Owner::parse("project:platform/ci.bot_2-x")
                .unwrap()
                .token_path("9"),
            "/api/v4/projects/platform%2Fci.bot_2-x/access_tokens/9"
        );
        assert_eq!(
            Owner::parse("user:5").unwrap().token_path("9"),
            "/api/v4/personal_access_tokens/9"
        );
    }

    #[test]
    fn anything_that_could_reach_another_resource_is_refused_naming_the_label() {
        for (label, says) in [
            ("project:a/../users", "\"..\" is not a path segment"),
            ("group:..", "\"..\" is not a path segment"),
            ("project:a/./b", "\".\" is not a path segment"),
            ("project:a/b?private_token=x", "'?' is not allowed"),
            ("project:a/b#frag", "'#' is not allowed"),
            ("project:a%2F..%2Fb", "'%' is not allowed"),
            ("project:a/b c", "whitespace is not allowed"),
            ("group:ops\nx", "the control character"),
            ("project:a//b", "empty path segment"),
            ("project:/a", "empty path segment"),
            ("project:a/-b", "cannot start with '-'"),
            ("project:ci", "neither an id nor a project's full path"),
            ("project:0", "GitLab's ids start at 1"),
            ("user:alice", "takes GitLab's numeric user id"),
            ("user:-1", "takes GitLab's numeric user id"),
            ("team:7", "not a kind of token owner"),
            ("42", "it has no kind"),
            ("project:", "its id is empty"),
        ] {
            let error = refused(label);
            assert!(error.contains(says), "{label:?}: {error}");
            assert!(
                error.contains(&format!("api_user {label:?}")),
                "the error names the label: {error}"
            );
        }
    }
}
