//! The engine owns connections at run time: their token managers, the refresh scheduler,
//! and the state and events front ends render. It knows no front end.

pub mod api;

pub use api::*;
