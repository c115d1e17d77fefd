//! Scoring models: per-case predictions, the metrics (AUC, accuracy,
//! sensitivity, specificity, F1) overall and by infection size, their tables
//! and figures, and `dsan eval`.

pub mod bootstrap;
pub mod eval;
pub mod evaluate;
pub mod metrics;
pub mod plots;
pub mod report;
