//! A scheduled target rotated with Synoptic: its upstreams, built from `[[schedules]]` and
//! `[synoptic]`.

/// A scheduled target's upstreams from its config: Synoptic as issuer and verifier, its file as
/// distributor (no Deployments to await).
pub fn build(
    distribution: &crate::adapters::settings::ScheduleDistribution,
    synoptic: &super::SynopticSettings,
    api_key: secrecy::SecretString,
    keys: &crate::secrets::Keys,
    observer: crate::adapters::Observer,
    clock: std::sync::Arc<dyn crate::clock::Clock>,
) -> crate::adapters::Upstreams {
    use std::sync::Arc;

    use super::SynopticClient;
    use crate::adapters::file::FileDistributor;
    use crate::adapters::settings::ScheduleDistribution;

    let names = crate::secrets::TokenNamer::new(keys, super::NAMES);
    let client = SynopticClient::new(synoptic, api_key, names, clock).observed(observer);
    let distributor: Arc<dyn crate::adapters::Distributor> = match distribution {
        ScheduleDistribution::File { path, mode, owner } => {
            Arc::new(FileDistributor::new(path, *mode, *owner))
        }
        ScheduleDistribution::Handover => Arc::new(crate::adapters::handover::Handed),
    };
    crate::adapters::Upstreams {
        issuer: Arc::new(client.clone()),
        distributor,
        verifier: Arc::new(client),
        deployments: None,
    }
}
