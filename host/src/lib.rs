//! The arena runtime: plugin discovery and loading, evaluation jobs in-process or in isolated
//! worker processes, and the pieces the `arena` binary composes.

pub mod cancel;
pub mod checker;
pub mod config;
pub mod datasets;
pub mod diag;
pub mod dryrun;
pub mod inputs;
pub mod isolate;
pub mod job;
pub mod model;
pub mod ops;
pub mod plugins;
pub mod registry;
pub mod round;
pub use arena_plugin_api::pyrandom;
pub mod chain;
pub mod scoring;
pub mod yuma;
