//! What the first screen answers before any row is read: is anything failing or waiting for a
//! person, what expires soonest and is it handled. Pure functions of the journal's rows and
//! `now`, so the page and its tests agree on one classification.

use std::collections::BTreeMap;

use maud::{Markup, html};

use crate::report::status::{StatusRow, when};
use crate::store::rotations::RotationRow;

const WEEK_MS: i64 = 7 * 24 * 3600 * 1000;

/// The summary band's outcome classes, in the order an on-call engineer acts on them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Class {
    NeedsPerson,
    Failing,
    InProgress,
    Done,
    Shadow,
    /// Ended some other way (ignored, silenced, cancelled, done long ago): not counted.
    Quiet,
}

impl Class {
    pub(super) const BAND: [Class; 5] = [
        Class::NeedsPerson,
        Class::Failing,
        Class::InProgress,
        Class::Done,
        Class::Shadow,
    ];

    /// The `?class=` value of the band's links.
    pub(super) fn key(self) -> &'static str {
        match self {
            Class::NeedsPerson => "needs_person",
            Class::Failing => "failing",
            Class::InProgress => "in_progress",
            Class::Done => "done",
            Class::Shadow => "shadow",
            Class::Quiet => "quiet",
        }
    }

    fn title(self) -> &'static str {
        match self {
            Class::NeedsPerson => "needs a person",
            Class::Failing => "failing",
            Class::InProgress => "in progress",
            Class::Done => "done in the last 7 days",
            Class::Shadow => "shadow plans",
            Class::Quiet => "other",
        }
    }

    /// A symbol beside the colour, so colour is never the only signal.
    pub(super) fn mark(self) -> &'static str {
        match self {
            Class::NeedsPerson => "⚠",
            Class::Failing => "✖",
            Class::InProgress => "↻",
            Class::Done => "✔",
            Class::Shadow => "◌",
            Class::Quiet => "·",
        }
    }

    pub(super) fn of(r: &RotationRow, now_ms: i64) -> Class {
        match r.phase.as_str() {
            "manual" | "awaiting_approval" | "awaiting_handover" => Class::NeedsPerson,
            "failed" | "rolled_back" | "rolling_back" | "unroutable" => Class::Failing,
            _ if r.mode == "shadow" => Class::Shadow,
            _ if r.next_attempt_at_ms.is_some() => Class::InProgress,
            "done" if r.finished_at_ms.is_some_and(|at| now_ms - at <= WEEK_MS) => Class::Done,
            _ => Class::Quiet,
        }
    }
}

/// The band: one link per class with its count.
pub(super) fn band(rows: &[StatusRow], now_ms: i64) -> Markup {
    let mut counts: BTreeMap<Class, usize> = BTreeMap::new();
    for row in rows {
        *counts.entry(Class::of(&row.rotation, now_ms)).or_default() += 1;
    }
    html! {
        nav.band aria-label="summary" { ul {
            @for class in Class::BAND {
                @let n = counts.get(&class).copied().unwrap_or(0);
                li class={ "c-" (class.key()) @if n == 0 { " zero" } } {
                    a href={ "/?class=" (class.key()) } {
                        span.n { (n) } " " span aria-hidden="true" { (class.mark()) } " " (class.title())
                    }
                }
            }
        } }
    }
}

/// Whether a known token is being replaced, as the timeline colours it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Cover {
    Missing,
    /// Known only from the inventory, and its issuer renews it without token-rotator.
    Renewed,
    Planned,
    Running,
    Done,
}

impl Cover {
    pub(super) const ALL: [Cover; 5] = [
        Cover::Missing,
        Cover::Renewed,
        Cover::Planned,
        Cover::Running,
        Cover::Done,
    ];

    pub(super) fn word(self) -> &'static str {
        match self {
            Cover::Missing => "no rotation",
            Cover::Renewed => "renewed by its issuer",
            Cover::Planned => "planned",
            Cover::Running => "running",
            Cover::Done => "replaced",
        }
    }
}

/// A token the journal knows the expiry of, and the rotation that knows it.
pub(super) struct Expiring<'a> {
    pub at_ms: i64,
    pub cover: Cover,
    pub rotation: &'a RotationRow,
    /// Where the expiry comes from.
    pub source: Source,
}

/// How the journal knows when a token expires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Source {
    /// The issuer's listing (or what the rotation asked for): the time itself.
    Listing,
    /// Only the alert: it fires while the token expires within [`ALERT_WITHIN`], so the token
    /// expires at the latest that long after the alert was received.
    Alert,
}

/// `SignonApiUserTokenExpirySoon` fires while `global:signon_api_user_token_expires_in_seconds
/// < 1209600` (govuk-helm-charts' PrometheusRule for Signon): 14 days before expiry. An alert
/// carries no expiry of its own, so this bound is what it tells.
pub(super) const ALERT_WITHIN: i64 = 1_209_600_000;

/// Each target's known tokens from its latest rotation: the old token (replaced once that
/// rotation is done) and, after a done rotation, the new one (nothing replaces it yet).
pub(super) fn expiring(rows: &[StatusRow]) -> Vec<Expiring<'_>> {
    let mut latest: BTreeMap<(&str, &str, &str), &StatusRow> = BTreeMap::new();
    for row in rows {
        let r = &row.rotation;
        if r.mode == "shadow" {
            continue; // a plan replaces nothing
        }
        let key = (
            r.environment.as_str(),
            r.api_user.as_str(),
            r.application.as_str(),
        );
        if latest
            .get(&key)
            .is_none_or(|l| l.rotation.created_at_ms <= r.created_at_ms)
        {
            latest.insert(key, row);
        }
    }
    let mut out = Vec::new();
    for row in latest.into_values() {
        let r = &row.rotation;
        let cover = match r.phase.as_str() {
            "done" => Cover::Done,
            "planned" | "awaiting_approval" => Cover::Planned,
            _ if r.next_attempt_at_ms.is_some() => Cover::Running,
            _ => Cover::Missing,
        };
        if let Some(at_ms) = r.old_token_expires_at_ms {
            out.push(Expiring {
                at_ms,
                cover,
                rotation: r,
                source: Source::Listing,
            });
        } else if cover != Cover::Done
            // Silenced and ignored targets are handled by their rule (noise, or rotating itself).
            && !matches!(r.phase.as_str(), "silenced" | "ignored")
            && let Some((status, received_ms)) = &row.last_alert
            && status == "firing"
        {
            // Not listed yet (planned, or decided without rotating: manual, ignored): the
            // firing alert still bounds the expiry.
            out.push(Expiring {
                at_ms: received_ms + ALERT_WITHIN,
                cover,
                rotation: r,
                source: Source::Alert,
            });
        }
        if cover == Cover::Done
            && let Some(at_ms) = r.new_token_expires_at_ms
        {
            out.push(Expiring {
                at_ms,
                cover: Cover::Missing,
                rotation: r,
                source: Source::Listing,
            });
        }
    }
    out.sort_by_key(|e| e.at_ms);
    out
}

/// The soonest ten, with what is being done about each.
pub(super) fn next_to_expire(expiring: &[Expiring<'_>], now_ms: i64) -> Markup {
    html! {
        section.panel aria-labelledby="next-h" {
            h2 #next-h { "Next to expire" }
            @if expiring.is_empty() {
                p { "No token expiry known yet (from issuer listings or alerts)." }
            } @else {
                ol.next { @for e in expiring.iter().filter(|e| e.cover != Cover::Done).take(10) {
                    @let r = e.rotation;
                    li class={ "v-" (e.cover.word().replace(' ', "-")) } {
                        a href={ "/rotations/" (r.id) } title={ (r.api_user) " · " (r.application) } {
                            span.trunc { (r.api_user) } " " span.trunc.app { (r.application) }
                        }
                        " " span.env { (r.environment) } " "
                        @if e.source == Source::Alert {
                            time datetime=(when(Some(e.at_ms))) title="at the latest: the alert fires 14 days before expiry" { (relative(e.at_ms, now_ms).replacen("in ", "within ", 1)) }
                            " (alert)"
                        } @else {
                            time datetime=(when(Some(e.at_ms))) { (relative(e.at_ms, now_ms)) }
                        }
                        " — " strong { (e.cover.word()) } " (" (r.phase) ")"
                    }
                } }
            }
        }
    }
}

/// "in 3 d" / "2 h ago": what a glance needs; the exact time is in `datetime`.
pub(super) fn relative(at_ms: i64, now_ms: i64) -> String {
    let d = (at_ms - now_ms) / 1000;
    let span = crate::report::tokens::span(d.unsigned_abs());
    if d >= 0 {
        format!("in {span}")
    } else {
        format!("expired {span} ago")
    }
}
