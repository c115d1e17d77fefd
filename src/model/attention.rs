//! Online attention: class activation maps (CAM) computed from the last
//! feature map and the head's weights in the same forward pass, their per-map
//! min-max normalisation and the soft mask `T(A) = sigmoid(omega * (A - sigma))`.
//!
//! Everything here is built from differentiable tensor operations, so the
//! attention loss reaches the backbone.

use burn::prelude::*;
use burn::tensor::activation::{relu, sigmoid};

/// Added to the range of a map before dividing, so a flat map normalises to 0.
const RANGE_EPSILON: f64 = 1e-6;

/// `A_c = ReLU(sum_k W[k, c] * F_k)` for every class `c`.
///
/// `features`: `[N, K, d, h, w]`; `head_weight`: `[K, C]` (Burn's `Linear`
/// layout, input by output). Returns `[N, C, d, h, w]`. The head's bias is not
/// part of a CAM.
pub fn class_activation_maps<B: Backend>(
    features: Tensor<B, 5>,
    head_weight: Tensor<B, 2>,
) -> Tensor<B, 5> {
    let [n, k, d, h, w] = features.dims();
    let [_, classes] = head_weight.dims();
    let cells = features.reshape([n, k, d * h * w]).swap_dims(1, 2); // [N, S, K]
    let maps = cells.matmul(head_weight.unsqueeze::<3>()); // [N, S, C]
    relu(maps.swap_dims(1, 2).reshape([n, classes, d, h, w]))
}

/// Min-max normalises each map of `[N, C, d, h, w]` to `[0, 1]` over its cells.
pub fn normalize_maps<B: Backend>(maps: Tensor<B, 5>) -> Tensor<B, 5> {
    let [n, c, d, h, w] = maps.dims();
    let flat = maps.reshape([n, c, d * h * w]);
    let min = flat.clone().min_dim(2); // [N, C, 1]
    let range = flat.clone().max_dim(2) - min.clone() + RANGE_EPSILON;
    ((flat - min) / range).reshape([n, c, d, h, w])
}

/// The soft mask `sigmoid(omega * (A - sigma))` of normalised maps.
pub fn soft_mask<B: Backend>(normalized: Tensor<B, 5>, omega: f64, sigma: f64) -> Tensor<B, 5> {
    sigmoid((normalized - sigma) * omega)
}

/// One-hot rows `[N, C]` of class indices `[N]`, built from a comparison so it
/// never reads the tensor back (Burn's `one_hot` validates its input with a
/// synchronous read, which WebGPU in a browser cannot do).
pub fn class_one_hot<B: Backend>(indices: Tensor<B, 1, Int>, classes: usize) -> Tensor<B, 2> {
    let [n] = indices.dims();
    let device = indices.device();
    let all = Tensor::<B, 1, Int>::arange(0..classes as i64, &device)
        .reshape([1, classes])
        .expand([n, classes]);
    indices
        .reshape([n, 1])
        .expand([n, classes])
        .equal(all)
        .float()
}

/// Picks, for each sample, the map of one class: `maps` `[N, C, d, h, w]`,
/// `one_hot` `[N, C]` -> `[N, d, h, w]`.
pub fn select_class<B: Backend>(maps: Tensor<B, 5>, one_hot: Tensor<B, 2>) -> Tensor<B, 4> {
    let [n, c, d, h, w] = maps.dims();
    (maps * one_hot.reshape([n, c, 1, 1, 1]))
        .sum_dim(1)
        .reshape([n, d, h, w])
}
