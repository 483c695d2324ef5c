//! sluice: a batch ETL job with data-quality gates.
//!
//! A run executes the pipeline of `sluice.yaml` ([`config`]; the default one
//! is built in). Data flows one way through [`pipeline::run`]: [`ingest`] lands raw text,
//! [`stage`] parses, quarantines and deduplicates it with DuckDB SQL,
//! [`engine::handoff`] passes the staged rows to Polars through the Arrow C
//! Data Interface, [`marts`] aggregates them, [`audit`] runs the [`checks`] over
//! every layer and decides the gate, and
//! [`publish`] writes SQLite and CSV only when the gate passed.

pub(crate) mod audit;
pub(crate) mod checks;
pub mod cli;
pub mod commands;
pub(crate) mod config;
pub(crate) mod engine;
pub mod error;
pub(crate) mod fault;
pub mod format;
pub(crate) mod generate;
pub(crate) mod ingest;
pub(crate) mod lake;
pub(crate) mod marts;
pub(crate) mod metrics;
pub(crate) mod object;
pub(crate) mod pipeline;
pub(crate) mod progress;
pub(crate) mod publish;
pub(crate) mod recheck;
pub(crate) mod settings;
pub(crate) mod sql;
pub(crate) mod stage;
pub(crate) mod state;
pub mod telemetry;
pub(crate) mod yaml;
