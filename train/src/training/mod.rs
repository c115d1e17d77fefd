//! Training: the run's configuration, one branch's optimiser step, the loop
//! over epochs with checkpoints and early stopping, and the `dsan train` and
//! `dsan cv` commands.

pub mod branch;
pub mod command;
pub mod config;
pub mod cv;
pub mod run;
pub mod schedule;
