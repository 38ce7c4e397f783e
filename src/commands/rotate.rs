//! `token-rotator rotate`: asks for a rotation by hand. It is journaled like an alert's and the
//! running service's engine carries it out, with the same steps and safety.

use jiff::Timestamp;

use crate::domain::Target;
use crate::policy::Mode;
use crate::store::Journal;
use crate::store::rotations::{self, NewRotation};
use crate::store::threads::ThreadKey;

/// What `rotate` did.
pub enum Requested {
    Started(String),
    /// One is already under way for the target; no second one.
    AlreadyActive {
        id: String,
        phase: String,
    },
}

/// `mode` is the target environment's mode now: a shadow environment gets a plan, not a rotation.
pub async fn request(
    journal: &Journal,
    target: &Target,
    mode: Mode,
    slack_channel: String,
    now: Timestamp,
) -> anyhow::Result<Requested> {
    let pool = journal.pool();
    let (environment, api_user, application) = (
        target.environment.as_str(),
        target.api_user.as_str(),
        target.application.as_str(),
    );
    if let Some(active) =
        rotations::active_rotation(pool, environment, api_user, application).await?
    {
        return Ok(Requested::AlreadyActive {
            id: active.id,
            phase: active.phase,
        });
    }
    let new = NewRotation {
        id: uuid::Uuid::now_v7().to_string(),
        environment: environment.to_owned(),
        api_user: api_user.to_owned(),
        application: application.to_owned(),
        action: "rotate".into(),
        rule_name: None,
        action_detail: None,
        phase: "planned",
        trigger: "cli".into(),
        alertname: None,
        mode: mode.as_str(),
        next_attempt_at: Some(now),
        outcome: None,
        reason: "requested on the command line".into(),
        thread: Some(ThreadKey {
            delivery_id: None,
            channel: slack_channel,
        }),
    };
    rotations::start(pool, &new, None, now, &[]).await?;
    Ok(Requested::Started(new.id))
}
