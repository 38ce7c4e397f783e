//! Signon's `/user.json` as the verifier reads it: Signon answers 200 for a live token whatever
//! its user may do (`app/controllers/oauth_users_controller.rb`), and says in the body what the
//! consuming app's gds-sso then refuses: `disabled: true` for a suspended user, and no `signin`
//! among `permissions` for a user without it on the token's application
//! (`app/presenters/user_o_auth_presenter.rb`). The verifier must refuse both.

use std::time::Duration;

use serde_json::Value;

use crate::world::Sims;

const USER: &str = "content-publisher@alphagov.co.uk";
const APP: &str = "Publishing API";
const UID: &str = "uid-publishing-api";

async fn user_json(sims: &Sims, token: &str) -> (u16, Value) {
    let response = reqwest::Client::new()
        .get(format!("{}/user.json", sims.production().signon_url()))
        .query(&[("client_id", UID)])
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_live_token_with_signin_is_verified() {
    let sims = Sims::start().await;
    let token = sims
        .production()
        .signon
        .add_token(USER, APP, Duration::from_secs(86_400));
    let (status, body) = user_json(&sims, &token).await;
    assert_eq!(status, 200);
    assert_eq!(body["user"]["permissions"], serde_json::json!(["signin"]));
    assert_eq!(body["user"]["disabled"], false);
    sims.signon_client()
        .verify(UID, USER, &token.into())
        .await
        .unwrap();
}

/// Defect: the simulator said `disabled: false` for a suspended user, and the verifier never
/// read `disabled`, so a token no consuming app would accept passed verification.
#[tokio::test]
async fn a_suspended_users_token_is_disabled_and_fails_verification() {
    let sims = Sims::start().await;
    let signon = &sims.production().signon;
    let token = signon.add_token(USER, APP, Duration::from_secs(86_400));
    signon.suspend(USER, true);
    let (status, body) = user_json(&sims, &token).await;
    assert_eq!(status, 200, "Signon answers, and says disabled");
    assert_eq!(body["user"]["disabled"], true);
    assert_eq!(body["user"]["permissions"], serde_json::json!([]));
    let err = sims
        .signon_client()
        .verify(UID, USER, &token.into())
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("disabled"), "{err}");
}

/// Defect: the simulator listed `signin` for any live token, and the verifier never read
/// `permissions`, so a token gds-sso answers 403 passed verification.
#[tokio::test]
async fn a_token_whose_user_lacks_signin_fails_verification() {
    let sims = Sims::start().await;
    let signon = &sims.production().signon;
    let token = signon.add_token(USER, APP, Duration::from_secs(86_400));
    signon.remove_signin(USER, APP);
    let (status, body) = user_json(&sims, &token).await;
    assert_eq!(status, 200);
    assert_eq!(body["user"]["permissions"], serde_json::json!([]));
    let err = sims
        .signon_client()
        .verify(UID, USER, &token.into())
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("signin permission"), "{err}");
}
