//! BatchNorm's training-mode forward on `[N, C, D, H, W]`, computed on an
//! `[N, C, D*H*W]` view whose every broadcast operand is `[N, C, 1]`.
//!
//! It is the function Burn's `BatchNorm::forward` computes under autodiff
//! (batch statistics, biased variance, running averages updated with the
//! module's momentum), in a layout CPU backends handle at memory speed.
//! Burn's own version swaps the batch and channel dimensions to take the
//! statistics and broadcasts `[1, C, 1, 1, 1]` operands against the 5-D
//! input. At batch > 1 both are strided walks on burn-flex 0.21 (its SIMD
//! broadcast covers a per-row scalar only when the scalars follow the rows
//! in order, as `[N, C, 1]` does), and its backward repeats them. The
//! inference forward (running statistics) stays Burn's.

use burn::nn::BatchNorm;
use burn::prelude::*;

/// BatchNorm of `x` `[N, C, D, H, W]` with the statistics of this batch,
/// updating `norm`'s running mean and variance as Burn's training forward
/// does. Differentiable with respect to `x` and to `norm`'s scale and shift.
pub(super) fn batch_norm_train<B: Backend>(norm: &BatchNorm<B>, x: Tensor<B, 5>) -> Tensor<B, 5> {
    let [n, c, d, h, w] = x.dims();
    let count = (n * d * h * w) as f64;
    let x = x.reshape([n, c, d * h * w]);
    // Per-channel statistics `[1, C, 1]`, repeated over the batch so that
    // every broadcast below is a per-row scalar.
    let channel_mean = |t: Tensor<B, 3>| t.sum_dim(2).sum_dim(0).div_scalar(count);
    let per_case = |t: Tensor<B, 3>| t.repeat_dim(0, n);

    let mean = channel_mean(x.clone());
    let centered = x - per_case(mean.clone());
    let var = channel_mean(centered.clone().square());

    let momentum = norm.momentum;
    let running = |state: Tensor<B, 1>, batch: &Tensor<B, 3>| {
        state
            .mul_scalar(1.0 - momentum)
            .add(batch.clone().detach().reshape([c]).mul_scalar(momentum))
            .detach()
    };
    let device = centered.device();
    norm.running_mean.update(running(
        norm.running_mean.value_sync().to_device(&device),
        &mean,
    ));
    norm.running_var.update(running(
        norm.running_var.value_sync().to_device(&device),
        &var,
    ));

    let scale = norm.gamma.val().reshape([1, c, 1]) / var.add_scalar(norm.epsilon).sqrt();
    let shift = norm.beta.val().reshape([1, c, 1]);
    (centered * per_case(scale) + per_case(shift)).reshape([n, c, d, h, w])
}

#[cfg(test)]
mod tests {
    use burn::backend::Autodiff;
    use burn::nn::BatchNormConfig;
    use burn::tensor::Distribution;

    use super::*;
    use crate::CpuBackend;

    type Train = Autodiff<CpuBackend>;

    /// A BatchNorm with the given scale, shift and running statistics (not
    /// the initial ones, so that every term of the function is exercised).
    /// Each call makes a module of its own: clones share running statistics.
    fn norm(values: &[Tensor<Train, 1>; 4]) -> BatchNorm<Train> {
        let [gamma, beta, mean, var] = values.clone();
        let mut norm = BatchNormConfig::new(gamma.dims()[0])
            .with_momentum(0.3)
            .init::<Train>(&gamma.device());
        norm.gamma = norm.gamma.map(|_| gamma.require_grad());
        norm.beta = norm.beta.map(|_| beta.require_grad());
        norm.running_mean.update(mean);
        norm.running_var.update(var);
        norm
    }

    /// Output, the gradients of input, scale and shift, and the running
    /// statistics after one training forward of `forward`.
    fn run(
        forward: impl Fn(&BatchNorm<Train>, Tensor<Train, 5>) -> Tensor<Train, 5>,
        norm: BatchNorm<Train>,
        x: Tensor<Train, 5>,
        upstream: Tensor<Train, 5>,
    ) -> [Vec<f32>; 6] {
        let x = x.require_grad();
        let y = forward(&norm, x.clone());
        let grads = (y.clone() * upstream).sum().backward();
        let values = |t: Tensor<CpuBackend, 1>| t.into_data().to_vec::<f32>().expect("f32");
        [
            values(y.inner().flatten(0, 4)),
            values(x.grad(&grads).expect("input gradient").flatten(0, 4)),
            values(norm.gamma.grad(&grads).expect("scale gradient")),
            values(norm.beta.grad(&grads).expect("shift gradient")),
            values(norm.running_mean.value_sync().inner()),
            values(norm.running_var.value_sync().inner()),
        ]
    }

    #[test]
    fn equals_burns_batch_norm_in_training_with_its_gradients_and_running_statistics() {
        let device = Default::default();
        Train::seed(&device, 17);
        // A spread of 0.01 makes epsilon (1e-5) a visible part of the variance.
        for (shape, spread) in [
            ([1, 3, 4, 5, 6], 2.0),
            ([2, 4, 3, 3, 5], 1.0),
            ([3, 2, 1, 2, 7], 0.01),
        ] {
            let random = |low: f64| {
                Tensor::<Train, 1>::random(
                    [shape[1]],
                    Distribution::Uniform(low, low + 1.0),
                    &device,
                )
            };
            let values = [random(0.5), random(-1.0), random(-0.5), random(0.5)];
            let x = Tensor::<Train, 5>::random(
                shape,
                Distribution::Normal(0.7 * spread, spread),
                &device,
            );
            let upstream =
                Tensor::<Train, 5>::random(shape, Distribution::Normal(0.0, 1.0), &device);
            let ours = run(batch_norm_train, norm(&values), x.clone(), upstream.clone());
            let burns = run(|n, x| n.forward(x), norm(&values), x, upstream);
            let names = [
                "output",
                "input gradient",
                "scale gradient",
                "shift gradient",
                "running mean",
                "running variance",
            ];
            for ((ours, burns), name) in ours.iter().zip(&burns).zip(names) {
                assert_eq!(ours.len(), burns.len(), "{name}, {shape:?}");
                for (i, (a, b)) in ours.iter().zip(burns).enumerate() {
                    assert!(
                        (a - b).abs() <= 1e-5 + 1e-4 * b.abs(),
                        "{name}[{i}] for {shape:?}: ours {a}, Burn's {b}"
                    );
                }
            }
        }
    }
}
