//! Where a click's `response_url` may send us. Slack hands out response URLs on its hooks host
//! (`https://hooks.slack.com/actions/T…/…`, docs.slack.dev/interactivity/handling-user-interaction
//! #message_responses), next to the Web API's `https://slack.com/api`.
//!
//! The URL arrives inside a payload whose signature we checked, so an outsider cannot choose it.
//! It is still a URL that we POST to from inside the cluster: whoever holds the signing secret
//! (a leak, a mistake in Slack's app settings, a bug of ours in the check) could otherwise point
//! it at the Kubernetes API, a cloud metadata address or an internal admin page and have the
//! service call it. So only the configured Slack origin is called: the scheme and port of
//! `[slack] api_url`, on its host or that host's `hooks.` sibling; anything else is not called
//! at all, and redirects are not followed.

use url::Url;

/// Whether `response_url` is on the Slack origin `api_url` names.
pub fn allowed(api_url: &str, response_url: &str) -> bool {
    let (Ok(api), Ok(to)) = (Url::parse(api_url), Url::parse(response_url)) else {
        return false;
    };
    let (Some(api_host), Some(to_host)) = (api.host_str(), to.host_str()) else {
        return false;
    };
    to.scheme() == api.scheme()
        && to.port_or_known_default() == api.port_or_known_default()
        && to.username().is_empty()
        && to.password().is_none()
        && (to_host == api_host || to_host == format!("hooks.{api_host}"))
}

#[cfg(test)]
mod tests {
    use super::allowed;

    #[test]
    fn only_the_configured_slack_origin_is_allowed() {
        let slack = "https://slack.com/api";
        assert!(allowed(slack, "https://hooks.slack.com/actions/T1/2/abc"));
        assert!(allowed(slack, "https://slack.com/actions/T1/2/abc"));
        for refused in [
            "http://hooks.slack.com/actions/T1/2/abc",
            "https://hooks.slack.com:8443/actions/T1/2/abc",
            "https://hooks.slack.com.evil.example/actions",
            "https://evilslack.com/actions",
            "https://user:pw@hooks.slack.com/actions",
            "https://kubernetes.default.svc/api/v1/secrets",
            "http://169.254.169.254/latest/meta-data/",
            "not a url",
            "",
        ] {
            assert!(!allowed(slack, refused), "{refused}");
        }
        let sim = "http://127.0.0.1:4100/api";
        assert!(allowed(sim, "http://127.0.0.1:4100/actions/T0/1/x"));
        assert!(!allowed(sim, "http://127.0.0.1:4101/actions/T0/1/x"));
        assert!(!allowed(sim, "http://localhost:4100/actions/T0/1/x"));
    }
}
