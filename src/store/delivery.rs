//! A webhook delivery as the journal receives it: each alert already routed, with its decision.
//! Intake makes these from Alertmanager's payload; the store writes them before anyone answers.

use jiff::Timestamp;

use crate::domain::{AlertStatus, Labels, Target};
use crate::policy::Decision;

/// One webhook delivery, ready for the journal.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub receiver: String,
    pub group_key: String,
    pub status: Option<AlertStatus>,
    pub external_url: String,
    pub truncated_alerts: u64,
    pub alerts: Vec<IncomingAlert>,
}

/// One alert of a delivery. Its dedupe key is `(fingerprint, status, starts_at)`: the same alert
/// re-sent by a retry, a repeat or another HA replica has the same key.
#[derive(Debug, Clone)]
pub struct IncomingAlert {
    pub fingerprint: String,
    pub status: AlertStatus,
    pub starts_at: Timestamp,
    pub ends_at: Option<Timestamp>,
    pub labels: Labels,
    pub annotations: Labels,
    pub routing: Routing,
}

#[derive(Debug, Clone)]
pub enum Routing {
    Routed {
        target: Target,
        /// Boxed: a decision is large and most alerts of a burst share the enum's size.
        decision: Box<Decision>,
    },
    /// The alert lacks what a rotation needs; journaled and counted, never retried by Alertmanager.
    Unroutable { reason: String },
}
