//! GitLab's lists come a page at a time (20 by default, at most 100: gitlabhq
//! `config/initializers/kaminari_config.rb:4-5`), oldest first, revoked tokens included; the
//! answer says where the next page is in `X-Next-Page` (empty on the last) and in `Link`'s
//! `rel="next"` (gitlabhq `lib/gitlab/pagination/offset_header_builder.rb`, `execute` and
//! `pagination_links`; docs.gitlab.com/api/rest/#pagination-link-header). Every page is read:
//! the live token may be on the last.

use reqwest::Url;
use reqwest::header::HeaderMap;

use super::UPSTREAM;
use crate::adapters::AdapterError;

/// The most tokens GitLab sends a page.
pub(super) const PER_PAGE: u32 = 100;
/// More pages than this is not an owner's token list (100 000 tokens): stop, saying so.
const MOST_PAGES: u32 = 1000;

/// Where the page after `current` (page number `page`) is, if there is one.
///
/// `X-Next-Page` is used when present: the URL is ours, so the token we send goes nowhere
/// else. `Link` is only a fallback, and followed only to the origin we asked (GitLab builds it
/// from its configured external host, which a proxy may not be).
pub(super) fn next(
    current: &Url,
    page: u32,
    headers: &HeaderMap,
) -> Result<Option<(Url, u32)>, AdapterError> {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    let next = match header("x-next-page") {
        Some("") => return Ok(None),
        Some(n) => {
            let n: u32 = n.parse().map_err(|_| {
                AdapterError::permanent(UPSTREAM, format!("X-Next-Page {n:?} is not a page"))
            })?;
            (with_page(current, n), n)
        }
        None => match header("link").and_then(link_next) {
            None => return Ok(None),
            Some(url) => {
                let url = Url::parse(&url).map_err(|_| {
                    AdapterError::permanent(UPSTREAM, "the Link header's next page is not a URL")
                })?;
                if url.origin() != current.origin() {
                    return Err(AdapterError::permanent(
                        UPSTREAM,
                        "the Link header points the next page at another host; not sending the token there",
                    ));
                }
                let n = page_of(&url).unwrap_or(page + 1);
                (url, n)
            }
        },
    };
    if next.1 <= page || next.1 > MOST_PAGES {
        return Err(AdapterError::permanent(
            UPSTREAM,
            format!(
                "GitLab's next page {} after page {page} would not end the list",
                next.1
            ),
        ));
    }
    Ok(Some(next))
}

/// `current` with its `page` parameter set to `n`, every other parameter kept.
pub(super) fn with_page(current: &Url, n: u32) -> Url {
    let kept: Vec<(String, String)> = current
        .query_pairs()
        .filter(|(k, _)| k != "page")
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let mut url = current.clone();
    url.query_pairs_mut()
        .clear()
        .extend_pairs(kept)
        .append_pair("page", &n.to_string());
    url
}

fn page_of(url: &Url) -> Option<u32> {
    url.query_pairs()
        .find(|(k, _)| k == "page")
        .and_then(|(_, v)| v.parse().ok())
}

/// The URL of `rel="next"` in a `Link` header (RFC 8288): `<url>; rel="next", <url>; …`.
fn link_next(link: &str) -> Option<String> {
    link.split(',').find_map(|part| {
        let (url, params) = part.trim().split_once(';')?;
        let url = url.trim().strip_prefix('<')?.strip_suffix('>')?;
        params
            .split(';')
            .any(|p| {
                p.trim()
                    .strip_prefix("rel=")
                    .map(|r| r.trim_matches('"'))
                    .is_some_and(|r| r.split_whitespace().any(|r| r == "next"))
            })
            .then(|| url.to_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.insert(*k, v.parse().unwrap());
        }
        map
    }

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn x_next_page_is_followed_on_our_own_url() {
        let current = url(
            "https://gitlab.example.com/api/v4/projects/42/access_tokens?state=active&per_page=100",
        );
        let (next, n) = next(&current, 1, &headers(&[("x-next-page", "2")]))
            .unwrap()
            .unwrap();
        assert_eq!(n, 2);
        assert_eq!(
            next.as_str(),
            "https://gitlab.example.com/api/v4/projects/42/access_tokens?state=active&per_page=100&page=2"
        );
        assert!(
            super::next(&next, 2, &headers(&[("x-next-page", "")]))
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn link_is_a_fallback_to_the_same_origin_only() {
        let current = url("https://gitlab.example.com/api/v4/personal_access_tokens?page=1");
        let link = r#"<https://gitlab.example.com/api/v4/personal_access_tokens?page=2&per_page=100>; rel="next", <https://gitlab.example.com/api/v4/personal_access_tokens?page=1&per_page=100>; rel="first""#;
        let (_, n) = next(&current, 1, &headers(&[("link", link)]))
            .unwrap()
            .unwrap();
        assert_eq!(n, 2);
        let elsewhere =
            r#"<https://evil.example.net/api/v4/personal_access_tokens?page=2>; rel="next""#;
        assert!(
            next(&current, 1, &headers(&[("link", elsewhere)]))
                .unwrap_err()
                .to_string()
                .contains("another host")
        );
        let last = r#"<https://gitlab.example.com/x?page=1>; rel="first""#;
        assert!(
            next(&current, 1, &headers(&[("link", last)]))
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn a_next_page_that_goes_back_is_refused() {
        let current = url("https://gitlab.example.com/x?page=3");
        assert!(next(&current, 3, &headers(&[("x-next-page", "3")])).is_err());
        assert!(next(&current, 3, &headers(&[("x-next-page", "x")])).is_err());
    }
}
