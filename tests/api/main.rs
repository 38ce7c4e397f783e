//! One integration-test binary: the service over real HTTP on loopback.

mod auth;
mod cli;
mod crash;
mod helpers;
mod journal;
mod rotation;
mod rules;
mod secrets_scan;
mod webhook;
mod world;
