//! The Alertmanager 0.25 captures in `fixtures/alertmanager/`, embedded so `demo` needs no files.
//!
//! Each capture is the recorder's JSON (`{note, headers, body, …}`); eleven also have the exact
//! bytes Alertmanager sent (`.raw`), which are what we replay when we have them.

/// One recorded webhook request.
pub struct Capture {
    pub name: &'static str,
    pub json: &'static str,
    pub raw: Option<&'static [u8]>,
}

impl Capture {
    /// The request body: the raw bytes when recorded, else the recorded body re-serialized.
    pub fn body(&self) -> Vec<u8> {
        if let Some(raw) = self.raw {
            return raw.to_vec();
        }
        let recorded: serde_json::Value =
            serde_json::from_str(self.json).expect("captures are valid JSON (tested)");
        serde_json::to_vec(&recorded["body"]).expect("a JSON value serializes")
    }
}

/// Every numbered capture, in the order they were recorded.
pub const CAPTURES: &[Capture] = &[
    Capture {
        name: "01-firing-single-bearer-auth",
        json: include_str!("../fixtures/alertmanager/01-firing-single-bearer-auth.json"),
        raw: Some(include_bytes!(
            "../fixtures/alertmanager/01-firing-single-bearer-auth.raw"
        )),
    },
    Capture {
        name: "02-firing-single-alert-posted-without-endsAt",
        json: include_str!(
            "../fixtures/alertmanager/02-firing-single-alert-posted-without-endsAt.json"
        ),
        raw: None,
    },
    Capture {
        name: "03-repeat-notification-after-repeat_interval",
        json: include_str!(
            "../fixtures/alertmanager/03-repeat-notification-after-repeat_interval.json"
        ),
        raw: Some(include_bytes!(
            "../fixtures/alertmanager/03-repeat-notification-after-repeat_interval.raw"
        )),
    },
    Capture {
        name: "04-group-first-flush-only-first-alert",
        json: include_str!("../fixtures/alertmanager/04-group-first-flush-only-first-alert.json"),
        raw: None,
    },
    Capture {
        name: "05-grouped-three-alerts-firing",
        json: include_str!("../fixtures/alertmanager/05-grouped-three-alerts-firing.json"),
        raw: Some(include_bytes!(
            "../fixtures/alertmanager/05-grouped-three-alerts-firing.raw"
        )),
    },
    Capture {
        name: "06-grouped-mixed-firing-and-resolved",
        json: include_str!("../fixtures/alertmanager/06-grouped-mixed-firing-and-resolved.json"),
        raw: Some(include_bytes!(
            "../fixtures/alertmanager/06-grouped-mixed-firing-and-resolved.raw"
        )),
    },
    Capture {
        name: "07-resolved-group-all-resolved",
        json: include_str!("../fixtures/alertmanager/07-resolved-group-all-resolved.json"),
        raw: Some(include_bytes!(
            "../fixtures/alertmanager/07-resolved-group-all-resolved.raw"
        )),
    },
    Capture {
        name: "08-resolved-single",
        json: include_str!("../fixtures/alertmanager/08-resolved-single.json"),
        raw: Some(include_bytes!(
            "../fixtures/alertmanager/08-resolved-single.raw"
        )),
    },
    Capture {
        name: "09-basic-auth-max_alerts-2-truncated-firing",
        json: include_str!(
            "../fixtures/alertmanager/09-basic-auth-max_alerts-2-truncated-firing.json"
        ),
        raw: Some(include_bytes!(
            "../fixtures/alertmanager/09-basic-auth-max_alerts-2-truncated-firing.raw"
        )),
    },
    Capture {
        name: "10-basic-auth-max_alerts-2-truncated-resolved",
        json: include_str!(
            "../fixtures/alertmanager/10-basic-auth-max_alerts-2-truncated-resolved.json"
        ),
        raw: Some(include_bytes!(
            "../fixtures/alertmanager/10-basic-auth-max_alerts-2-truncated-resolved.raw"
        )),
    },
    Capture {
        name: "11-silence-partial-only-production-delivered",
        json: include_str!(
            "../fixtures/alertmanager/11-silence-partial-only-production-delivered.json"
        ),
        raw: Some(include_bytes!(
            "../fixtures/alertmanager/11-silence-partial-only-production-delivered.raw"
        )),
    },
    Capture {
        name: "12-after-silence-expired-staging-now-delivered",
        json: include_str!(
            "../fixtures/alertmanager/12-after-silence-expired-staging-now-delivered.json"
        ),
        raw: None,
    },
    Capture {
        name: "13-after-silence-expired-previously-fully-silenced-group",
        json: include_str!(
            "../fixtures/alertmanager/13-after-silence-expired-previously-fully-silenced-group.json"
        ),
        raw: None,
    },
    Capture {
        name: "14-ha-duplicate-from-replica-a",
        json: include_str!("../fixtures/alertmanager/14-ha-duplicate-from-replica-a.json"),
        raw: None,
    },
    Capture {
        name: "15-ha-duplicate-from-replica-b",
        json: include_str!("../fixtures/alertmanager/15-ha-duplicate-from-replica-b.json"),
        raw: None,
    },
    Capture {
        name: "16-ha-fast-receiver-single-delivery",
        json: include_str!("../fixtures/alertmanager/16-ha-fast-receiver-single-delivery.json"),
        raw: None,
    },
    Capture {
        name: "17-escaping-html-chars-and-utf8",
        json: include_str!("../fixtures/alertmanager/17-escaping-html-chars-and-utf8.json"),
        raw: Some(include_bytes!(
            "../fixtures/alertmanager/17-escaping-html-chars-and-utf8.raw"
        )),
    },
    Capture {
        name: "18-no-auth-config-headers-and-500-retry-body",
        json: include_str!(
            "../fixtures/alertmanager/18-no-auth-config-headers-and-500-retry-body.json"
        ),
        raw: None,
    },
];

/// Hand-made bodies for what no capture covers (see `fixtures/synthetic/README.md`).
pub const SYNTHETIC: &[(&str, &[u8])] = &[(
    "synthetic/special-cases",
    include_bytes!("../fixtures/synthetic/special-cases.json"),
)];

/// Every webhook body the demo replays, captures first, with its name.
pub fn replay_bodies() -> Vec<(&'static str, Vec<u8>)> {
    CAPTURES
        .iter()
        .map(|c| (c.name, c.body()))
        .chain(SYNTHETIC.iter().map(|(name, body)| (*name, body.to_vec())))
        .collect()
}
