//! How the pipeline runs the network's two branches on its input: both in
//! turn on one device ([`BothBranches`]), or one here and the other
//! elsewhere (the page's CPU path runs branch B in a second worker, on a
//! second core) through [`Inference`]. Either way each branch's outputs are
//! read back as a [`BranchResult`], and the same results give the same
//! diagnosis.

use std::future::Future;

use burn::prelude::*;
use burn::tensor::activation::softmax;

use super::DiagnosisError;
use crate::model::{Dsan, DsanBranch, read_floats};

/// Which of the two branches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Branch {
    /// Branch U (uniform sampling).
    Uniform,
    /// Branch B (size-balanced sampling).
    Balanced,
}

impl Branch {
    /// This branch of `model`.
    pub fn of<B: Backend>(self, model: &Dsan<B>) -> &DsanBranch<B> {
        match self {
            Self::Uniform => &model.uniform,
            Self::Balanced => &model.balanced,
        }
    }
}

/// One branch's outputs, read back to the host.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct BranchResult {
    /// Softmax of the branch's logits, by class.
    pub probabilities: Vec<f32>,
    /// Every class's normalised map, `[C, d, h, w]` row-major.
    pub maps: Vec<f32>,
    /// The feature grid `[d, h, w]` of `maps`.
    pub grid: [usize; 3],
}

impl BranchResult {
    /// Whether this is a result of a model with `classes` outputs: a
    /// probability per class and a map per class on a non-empty grid. A
    /// result that travelled between threads is checked so before use.
    pub fn fits(&self, classes: usize) -> bool {
        let cells: usize = self.grid.iter().product();
        self.probabilities.len() == classes && cells > 0 && self.maps.len() == classes * cells
    }
}

/// Runs `branch` on `input` (window-normalised values on the model grid
/// `grid`, `[D, H, W]` row-major) as a batch of one.
pub async fn run_branch<B: Backend>(
    branch: &DsanBranch<B>,
    input: &[f32],
    grid: [usize; 3],
    device: &B::Device,
) -> Result<BranchResult, DiagnosisError> {
    let [d, h, w] = grid;
    let x = Tensor::<B, 1>::from_floats(input, device).reshape([1, 1, d, h, w]);
    let output = branch.forward(x);
    let [_, _, fd, fh, fw] = output.attention.dims();
    Ok(BranchResult {
        probabilities: read(softmax(output.logits, 1), "probabilities").await?,
        maps: read(output.attention, "attention").await?,
        grid: [fd, fh, fw],
    })
}

async fn read<B: Backend, const D: usize>(
    tensor: Tensor<B, D>,
    what: &'static str,
) -> Result<Vec<f32>, DiagnosisError> {
    read_floats(tensor)
        .await
        .map_err(|reason| DiagnosisError::Backend { what, reason })
}

/// Runs both branches on the network input.
pub trait Inference {
    /// Branch U's and branch B's results on `input` (on the model grid
    /// `grid`).
    fn infer(
        &mut self,
        input: &[f32],
        grid: [usize; 3],
    ) -> impl Future<Output = Result<[BranchResult; 2], DiagnosisError>>;
}

/// Both branches of a model, one after the other, on one device.
#[derive(Debug)]
pub struct BothBranches<'a, B: Backend> {
    /// The model.
    pub model: &'a Dsan<B>,
    /// Where it runs.
    pub device: &'a B::Device,
}

impl<B: Backend> Inference for BothBranches<'_, B> {
    async fn infer(
        &mut self,
        input: &[f32],
        grid: [usize; 3],
    ) -> Result<[BranchResult; 2], DiagnosisError> {
        let uniform = run_branch(&self.model.uniform, input, grid, self.device).await?;
        let balanced = run_branch(&self.model.balanced, input, grid, self.device).await?;
        Ok([uniform, balanced])
    }
}
