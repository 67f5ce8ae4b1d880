//! The engine's commands and its races across processes, through the binary.

#[path = "../support/mod.rs"]
mod support;

mod engine_commands;
mod engine_races;
