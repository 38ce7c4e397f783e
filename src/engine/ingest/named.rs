//! Before an alert's target is keyed on (single flight, cooldown, its rotation's row, file and
//! messages), its issuer names the token the one way it has (`Issuer::canonical_target`), and
//! a token a schedule rotates is left to the schedule: an alert rotating it too would race the
//! schedule and, with an issuer whose rotation revokes the old token, revoke the token the
//! schedule placed for a new one written where nobody reads it.

use std::collections::HashMap;

use crate::adapters::{AdapterError, Issuer};
use crate::domain::parameterize::parameterize;
use crate::domain::{ApiUser, Application, Environment, Target};
use crate::engine::Engine;
use crate::store::rotations::PendingAlert;

/// What an alert's target turned out to be.
pub(super) enum Named {
    /// The alert, its target as its issuer names it.
    Token(Box<PendingAlert>),
    /// It names no token: why, naming the label.
    Refused(String),
    /// The schedule of this name rotates the token.
    Scheduled(String),
    /// The issuer could not be asked now (why): the alert waits for a later pass.
    Wait(String),
}

/// The issuers' answers in one ingest pass, so a burst of alerts asks once per target.
#[derive(Default)]
pub(super) struct Names {
    alerts: HashMap<[String; 3], Result<Target, AdapterError>>,
    schedules: HashMap<String, Result<Target, AdapterError>>,
}

impl Names {
    async fn alert(
        &mut self,
        issuer: &dyn Issuer,
        target: &Target,
    ) -> Result<Target, AdapterError> {
        let key = [
            target.environment.to_string(),
            target.api_user.to_string(),
            target.application.to_string(),
        ];
        if let Some(known) = self.alerts.get(&key) {
            return known.clone();
        }
        let answer = issuer.canonical_target(target).await;
        self.alerts.insert(key, answer.clone());
        answer
    }

    async fn schedule(
        &mut self,
        name: &str,
        issuer: &dyn Issuer,
        target: &Target,
    ) -> Result<Target, AdapterError> {
        if let Some(known) = self.schedules.get(name) {
            return known.clone();
        }
        let answer = issuer.canonical_target(target).await;
        self.schedules.insert(name.to_owned(), answer.clone());
        answer
    }
}

fn target_of(environment: &str, api_user: &str, application: &str) -> Option<Target> {
    Some(Target {
        environment: Environment::parse(environment).ok()?,
        api_user: ApiUser::parse(api_user).ok()?,
        application: Application::parse(application).ok()?,
    })
}

/// One token whatever the environment: a schedule's issuer and an environment's issuer of the
/// same name are one system, whose token is its owner and name.
fn same_token(a: &Target, b: &Target) -> bool {
    a.api_user == b.api_user
        && parameterize(a.application.as_str()) == parameterize(b.application.as_str())
}

impl Engine {
    /// The alert with its target as its environment's issuer names it, or why it has none.
    pub(super) async fn name_token(&self, alert: &PendingAlert, names: &mut Names) -> Named {
        let parts = (
            alert.environment.as_deref().unwrap_or_default(),
            alert.api_user.as_deref().unwrap_or_default(),
            alert.application.as_deref().unwrap_or_default(),
        );
        // No issuer, or labels intake let through unparsed: the rotation says so itself.
        let (Ok(up), Some(target)) = (
            self.adapters.upstreams(parts.0),
            target_of(parts.0, parts.1, parts.2),
        ) else {
            return Named::Token(Box::new(alert.clone()));
        };
        let named = match names.alert(up.issuer.as_ref(), &target).await {
            Ok(named) => named,
            Err(e) if e.is_transient() || e.is_pending() => return Named::Wait(e.to_string()),
            Err(e) => return Named::Refused(e.to_string()),
        };
        for scheduled in self.adapters.schedules.values() {
            let s = &scheduled.schedule;
            let issuer = scheduled.upstreams.issuer.as_ref();
            let Some(theirs) = target_of(&s.environment, &s.api_user, &s.application) else {
                continue;
            };
            // Ask only about a schedule that could be this token: same system, same name.
            if issuer.name() != up.issuer.name()
                || parameterize(theirs.application.as_str())
                    != parameterize(named.application.as_str())
            {
                continue;
            }
            match names.schedule(&s.name, issuer, &theirs).await {
                Ok(theirs) if same_token(&theirs, &named) => {
                    return Named::Scheduled(s.name.clone());
                }
                Ok(_) => {}
                Err(e) if e.is_transient() || e.is_pending() => return Named::Wait(e.to_string()),
                // A schedule whose owner names no token owns none; its own rotation says why.
                Err(_) => {}
            }
        }
        let mut alert = Box::new(alert.clone());
        alert.api_user = Some(named.api_user.to_string());
        alert.application = Some(named.application.to_string());
        Named::Token(alert)
    }
}
