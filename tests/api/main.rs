//! One integration-test binary: the service over real HTTP on loopback.

mod alertmanager;
mod auth;
mod browser;
mod cli;
mod cluster;
mod crash;
mod failures;
mod handover;
mod helpers;
mod hostile;
mod journal;
mod kill;
mod load;
mod metrics;
mod props;
mod rbac;
mod real_alertmanager;
mod rotation;
mod rules;
mod scheduled;
mod secrets_scan;
mod shadow;
mod slack;
mod status_page;
mod webhook;
mod world;
