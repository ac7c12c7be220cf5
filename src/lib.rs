//! clusterdns: a Kubernetes cluster DNS server.
//!
//! Data flows one way; each stage imports only the one before it:
//!
//! ```text
//! source   (kube watchers | manifest files)  -> apply / delete / reset events
//!   -> model   (trimmed objects and indexes; no DNS, no HTTP)
//!   -> records (pure answers per SPEC.md, prepared in wire form per name)
//!   -> server  (UDP/TCP listeners: parse, look up, copy out)
//!   -> admin   (/health, /ready, /metrics)
//! ```
//!
//! `config` holds the command line; `metrics` the counters every stage bumps
//! (rendered by `admin`); `demo` a bundled cluster to try; `explain` reads
//! the model and the records to say why a name answers what it does.

pub mod admin;
pub mod app;
pub mod config;
pub mod corefile;
pub mod demo;
pub mod explain;
pub mod metrics;
pub mod model;
pub mod plugins;
pub mod records;
pub mod server;
pub mod source;
