//! The arena runtime: plugin discovery and loading, evaluation jobs in-process or in isolated
//! worker processes, samples and submissions on disk, and the operations (`ops`) that the
//! commands and the validator service share. The only crate that loads plugins or spawns workers.

pub mod cancel;
pub mod checker;
pub mod conformance;
#[cfg(feature = "hub")]
pub mod datasets;
#[cfg(feature = "hub")]
pub mod fetch;
pub mod files;
#[cfg(feature = "hub")]
pub mod inputs;
pub mod isolate;
pub mod job;
pub mod model;
#[cfg(feature = "hub")]
pub mod ops;
pub mod plugins;
pub mod registry;
pub use arena_plugin_api::pyrandom;
