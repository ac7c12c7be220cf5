//! The cluster model: trimmed objects and the indexes DNS needs, fed by
//! `apply` / `delete` / `reset` events from any source. Knows no DNS wire
//! and no HTTP.

mod cluster;
mod endpoints;
mod objects;
mod selector;

pub use cluster::{Cluster, DNS_SERVICE, Event, Owner, key_hash};
pub use endpoints::Source;
pub use objects::*;
pub use selector::Selector;
