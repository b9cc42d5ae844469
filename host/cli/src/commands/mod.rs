//! One file per command (cargo style): each has its clap `Args` and an `exec`.

pub mod round;
