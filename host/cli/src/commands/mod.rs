//! One file per command (cargo style): each has its clap arguments and its `exec`.

pub mod chain;
pub mod check;
pub mod commit;
pub mod eval;
pub mod model;
pub mod plugin_new;
pub mod plugin_test;
pub mod plugins;
pub mod report;
pub mod round;
pub mod schema;
pub mod score;
pub mod validator;
pub mod wallet;
pub mod yuma;
