//! End-to-end tests: the real `boson` binary on port 0, real sockets, real guest components
//! built from source by `tests/guests/build.sh`.

mod harness;

mod capabilities;
mod guests;
mod hardening;
mod postgres;
mod registry;
mod routing;
mod sandbox;
mod server;
mod templates;
mod triggers;
mod watch;
mod workflow;
