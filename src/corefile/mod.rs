//! Placeholder until the parser lands: the typed configuration only.
mod config;
pub use config::*;
