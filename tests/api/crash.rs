//! Crash safety: the engine stopped between any two phases resumes from the journal.

use std::time::Duration;

use token_rotator::adapters::{Issuer, Permit};
use token_rotator::engine::Phase;
use token_rotator::policy::Mode;

use crate::rotation::{APP, USER, alert, target};
use crate::world::spawn_world;

/// Crash between every pair of adjacent phases: a new engine on the same journal finishes
/// the rotation with exactly one mint and no revoke but the old token's.
#[tokio::test]
async fn a_crash_between_any_two_phases_resumes_without_repeating_a_side_effect() {
    let stops = [
        Phase::Planned,
        Phase::Issued,
        Phase::Distributed,
        Phase::RolledOut,
        Phase::Verified,
        Phase::Grace,
        Phase::Revoked,
    ];
    for stop in stops {
        let world = spawn_world().await;
        let old = world.seed(USER, APP);
        alert(&world).await;
        let at = world.run_until(stop).await;
        let (sims, dir) = world.crash().await;

        // What a crash inside the next step could have done before journaling it.
        let signon = sims.signon_client();
        match stop {
            // Minted, then died: the resumed mint must find this token, not make another.
            Phase::Planned => {
                signon
                    .mint(
                        &active(),
                        &target(),
                        Duration::from_secs(86400),
                        &at.id,
                        None,
                    )
                    .await
                    .unwrap();
                assert_eq!(sims.production().signon.minted().len(), 1, "{stop}");
            }
            // Revoked the old token, then died: revoking again must succeed.
            Phase::Grace => {
                signon
                    .revoke(
                        &active(),
                        &target(),
                        at.old_token_id.as_deref().unwrap(),
                        "test",
                    )
                    .await
                    .unwrap();
            }
            _ => {}
        }

        let world = sims.world(Some(dir)).await;
        world.run_to_the_end().await;
        let rows = world.rotations().await;
        assert_eq!(rows.len(), 1, "{stop}");
        assert_eq!(rows[0].phase, "done", "{stop}: {:#?}", rows[0]);
        assert_eq!(world.signon.minted().len(), 1, "{stop}: exactly one mint");
        let revoked = world.signon.revoked();
        assert_eq!(revoked.len(), 1, "{stop}: one revoke");
        assert_eq!(
            revoked[0].value, old,
            "{stop}: only the old token is revoked"
        );
        assert!(
            world.signon.is_live(&world.secret(USER, APP).unwrap()),
            "{stop}"
        );
    }
}

/// What the engine holds for an active rotation.
fn active() -> Permit {
    Permit::for_mode(Mode::Active).unwrap()
}
