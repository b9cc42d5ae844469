//! arena's pure core: the files users write (competitions, validator configurations) with their
//! diagnostics, the scoring rules, rounds as data (plan and collect), the on-chain commitment
//! formats, and the outcome of an evaluation. Plain data in, plain data out: no I/O, no async,
//! no terminal (the CLI renders).

pub mod commitment;
pub mod config;
pub mod diag;
pub mod dryrun;
pub mod evalset;
pub mod failure;
pub mod json;
pub mod round;
pub mod scoring;
pub mod units;
