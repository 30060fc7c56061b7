//! Boson: a host for serverless WebAssembly components.
//!
//! Data flows one way: [`app`] resolves a manifest into a [`app::ResolvedApp`]; [`runtime`]
//! compiles and pre-instantiates its components; [`http`] routes each request, and [`trigger`]
//! each message or tick, to a fresh instance whose [`host::HostState`] holds only what the
//! manifest grants.
//!
//! ```no_run
//! # async fn run() -> anyhow::Result<()> {
//! use boson::app::{AppLocation, ResolveOptions, resolve};
//! let location = AppLocation::find(Some("examples/hello".as_ref()))?;
//! let options = ResolveOptions {
//!     state_dir: None,
//!     cache_dir: "/tmp/boson-cache".into(),
//!     limits: Default::default(),
//!     runtime_config: None,
//!     variables: Vec::new(),
//! };
//! let app = resolve(&location, &options).await?;
//! println!("{} has {} component(s)", app.name, app.components.len());
//! # Ok(()) }
//! ```

pub mod app;
pub mod build;
pub mod capability;
pub mod cli;
pub mod doctor;
pub mod guest_body;
pub mod guest_threads;
pub mod host;
pub mod http;
pub mod limits;
pub mod log_writer;
pub mod metrics;
pub mod new;
pub mod outbound;
pub mod ready;
pub mod registry;
pub mod runtime;
pub mod runtime_config;
pub mod swap;
pub mod trigger;
pub mod variables;
pub mod watch;
pub mod write_stall;
