//! `dsan`: the native companion of the DSAN-CT page. It inspects DICOM data,
//! writes synthetic phantoms, trains, cross-validates, evaluates and exports
//! models, reads model cards, diagnoses a CT with the page's pipeline and runs
//! the model self-check, on the compute backend the user picks
//! (`compute`). The binary is [`cli::run`]; [`bench`] times the training step
//! for `cargo bench`.

pub mod bench;
pub mod cli;
mod commands;
mod compute;
mod data;
mod evaluation;
mod export;
mod inspect;
mod predict;
mod training;
