//! sluice: a batch ETL job with data-quality gates.
//!
//! A run executes the pipeline of `sluice.yaml` ([`config`]; the default one
//! is built in). Data flows one way through [`pipeline::run`]: [`ingest`] lands raw text,
//! [`stage`] parses, quarantines and deduplicates it with DuckDB SQL,
//! [`engine::handoff`] passes the staged rows to Polars through the Arrow C
//! Data Interface, [`marts`] aggregates them, [`audit`] runs the [`checks`] over
//! every layer and decides the gate, and
//! [`publish`] writes SQLite and CSV only when the gate passed.

pub mod audit;
pub mod checks;
pub mod cli;
pub mod commands;
pub mod config;
pub mod engine;
pub mod error;
pub mod format;
pub mod generate;
pub mod ingest;
pub mod marts;
pub mod metrics;
pub mod pipeline;
pub mod progress;
pub mod publish;
pub mod recheck;
pub mod settings;
pub mod sql;
pub mod stage;
pub mod state;
pub mod telemetry;
pub mod yaml;
