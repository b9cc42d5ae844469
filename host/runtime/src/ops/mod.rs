//! Operations the commands and the validator service share: each composes the pure core with
//! the runtime's I/O (cargo's `ops`).

pub mod round;
