//! Behaviour of the DSAN model on Burn's CPU backend (with autodiff for the
//! gradient tests).

#![allow(
    clippy::unwrap_used,
    reason = "a failed unwrap is a failed test, with its message"
)]

use burn::backend::Autodiff;
use burn::prelude::*;
use burn::tensor::activation::softmax;
use dsan_ct::CpuBackend;
use dsan_ct::model::{AttentionTargets, DsanConfig, DsanLossConfig, synthetic_input};
use dsan_ct::probe::seeded_model;

type B = CpuBackend;
type AD = Autodiff<CpuBackend>;

fn values<const D: usize, K: Backend>(t: Tensor<K, D>) -> Vec<f32> {
    t.into_data().convert::<f32>().into_vec::<f32>().unwrap()
}

fn assert_close(a: &[f32], b: &[f32], tol: f32, what: &str) {
    assert_eq!(a.len(), b.len(), "{what}: lengths");
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!((x - y).abs() <= tol, "{what}[{i}]: {x} vs {y}");
    }
}

#[test]
fn output_shapes_follow_the_config() {
    let device = Default::default();
    let configs = [
        DsanConfig::tiny(),
        DsanConfig::tiny()
            .with_input([12, 40, 24])
            .with_num_classes(3),
        DsanConfig::tiny()
            .with_layers([2, 1, 1, 2])
            .with_stem_pool(false)
            .with_stage_strides([1, 2, 1, 2]),
    ];
    for config in configs {
        let model = seeded_model::<B>(&config, 1, &device).unwrap();
        let x = synthetic_input::<B>(config.input, &device).repeat_dim(0, 2);
        let out = model.forward(x);
        let [d, h, w] = config.feature_grid();
        let c = config.num_classes;
        assert_eq!(out.probabilities.dims(), [2, c], "{config}");
        assert_eq!(out.uniform.logits.dims(), [2, c]);
        assert_eq!(out.balanced.attention.dims(), [2, c, d, h, w]);
        assert_eq!(out.attention.dims(), [2, d, h, w]);
        let attention = values(out.attention);
        assert!(attention.iter().all(|v| (0.0..=1.0).contains(v)));
    }
}

#[test]
fn ensemble_is_the_mean_of_the_branch_softmaxes() {
    let device = Default::default();
    let config = DsanConfig::tiny();
    let model = seeded_model::<B>(&config, 3, &device).unwrap();
    let out = model.forward(synthetic_input::<B>(config.input, &device));
    let u = values(softmax(out.uniform.logits.clone(), 1));
    let b = values(softmax(out.balanced.logits.clone(), 1));
    let mean: Vec<f32> = u.iter().zip(&b).map(|(x, y)| (x + y) / 2.0).collect();
    assert_close(&values(out.probabilities), &mean, 1e-6, "ensemble");
    assert_close(&values(out.uniform_probabilities), &u, 1e-6, "branch U");
    let sum: f32 = mean.iter().sum();
    assert!((sum - 1.0).abs() < 1e-5);
}

/// Min-max normalised `relu(sum_k W[k, c] F[k])`, computed with loops.
fn manual_cam(features: &[f32], weight: &[f32], k: usize, c: usize, cells: usize) -> Vec<f32> {
    let mut out = Vec::new();
    for class in 0..c {
        let raw: Vec<f32> = (0..cells)
            .map(|s| {
                let v: f32 = (0..k)
                    .map(|ch| weight[ch * c + class] * features[ch * cells + s])
                    .sum();
                v.max(0.0)
            })
            .collect();
        let min = raw.iter().copied().fold(f32::INFINITY, f32::min);
        let max = raw.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        out.extend(raw.iter().map(|v| (v - min) / (max - min + 1e-6)));
    }
    out
}

#[test]
fn cam_equals_a_manual_computation_from_features_and_head_weights() {
    let device = Default::default();
    let config = DsanConfig::tiny().with_input([16, 48, 48]);
    let model = seeded_model::<B>(&config, 11, &device).unwrap();
    let x = synthetic_input::<B>(config.input, &device);
    let branch = &model.uniform;
    let features = branch.features(x.clone());
    let [_, k, d, h, w] = features.dims();
    let expected = manual_cam(
        &values(features),
        &values(branch.head_weight()),
        k,
        config.num_classes,
        d * h * w,
    );
    let got = values(branch.forward(x).attention);
    assert_close(&got, &expected, 1e-4, "CAM");
    assert!(got.iter().any(|v| *v > 0.5), "a non-trivial map");
}

fn masks_for(config: &DsanConfig, n: usize, device: &Device<B>) -> Tensor<B, 4> {
    let [d, h, w] = config.feature_grid();
    // Lesion in the first half of the rows of every slice.
    let cells: Vec<f32> = (0..n * d * h * w)
        .map(|i| if (i / w) % h < h / 2 { 1.0 } else { 0.0 })
        .collect();
    Tensor::<B, 1>::from_floats(cells.as_slice(), device).reshape([n, d, h, w])
}

#[test]
fn attention_loss_is_zero_for_a_perfect_mask_and_positive_otherwise() {
    let device = Default::default();
    let config = DsanConfig::tiny();
    let model = seeded_model::<B>(&config, 5, &device).unwrap();
    let out = model
        .uniform
        .forward(synthetic_input::<B>(config.input, &device));
    let labels = Tensor::<B, 1, Int>::from_ints([1], &device);
    let present = Tensor::<B, 1>::from_floats([1.0], &device);
    let loss = DsanLossConfig::new();

    // The soft mask of the true class is, by definition, a perfect target.
    let [d, h, w] = config.feature_grid();
    let perfect = out
        .soft_masks(&config)
        .slice([0..1, 1..2, 0..d, 0..h, 0..w])
        .reshape([1, d, h, w]);
    let perfect = AttentionTargets {
        masks: perfect,
        present: present.clone(),
    };
    let terms = loss.loss(&config, &out, labels.clone(), &perfect);
    assert!(values(terms.attention)[0].abs() < 1e-12);

    let wrong = AttentionTargets {
        masks: masks_for(&config, 1, &device),
        present,
    };
    let terms = loss.loss(&config, &out, labels.clone(), &wrong);
    let attention = values(terms.attention)[0];
    let ce = values(terms.cross_entropy)[0];
    assert!(attention > 1e-3, "attention loss {attention}");
    assert!((values(terms.total)[0] - (ce + attention)).abs() < 1e-5);

    // Without a mask only the cross-entropy counts.
    let absent = AttentionTargets {
        masks: masks_for(&config, 1, &device),
        present: Tensor::<B, 1>::from_floats([0.0], &device),
    };
    let terms = loss.loss(&config, &out, labels, &absent);
    assert_eq!(values(terms.attention)[0], 0.0);
    assert_eq!(values(terms.total)[0], ce);
}

#[test]
fn attention_loss_alone_sends_gradients_to_the_backbone() {
    let device = Default::default();
    let config = DsanConfig::tiny();
    let model = seeded_model::<AD>(&config, 9, &device).unwrap();
    // A gentle soft mask so the sigmoid is not saturated everywhere.
    let config = config.with_attention_omega(5.0);
    let x = synthetic_input::<AD>(config.input, &device).repeat_dim(0, 2);
    let out = model.uniform.forward(x);
    let targets = AttentionTargets {
        masks: Tensor::<AD, 4>::from_inner(masks_for(&config, 2, &device)),
        present: Tensor::<AD, 1>::from_floats([1.0, 1.0], &device),
    };
    let labels = Tensor::<AD, 1, Int>::from_ints([0, 1], &device);
    let terms = DsanLossConfig::new().loss(&config, &out, labels, &targets);
    let grads = terms.attention.backward();

    let mut norms = Vec::new();
    struct GradNorms<'a> {
        grads: &'a <AD as burn::tensor::backend::AutodiffBackend>::Gradients,
        norms: &'a mut Vec<(String, f32)>,
        path: Vec<String>,
    }
    impl burn::module::ModuleVisitor<AD> for GradNorms<'_> {
        fn enter_module(&mut self, name: &str, _: &str) {
            self.path.push(name.to_owned());
        }
        fn exit_module(&mut self, _: &str, _: &str) {
            self.path.pop();
        }
        fn visit_float<const D: usize>(&mut self, param: &burn::module::Param<Tensor<AD, D>>) {
            if let Some(g) = param.grad(self.grads) {
                let norm = values(g.abs().sum())[0];
                self.norms.push((self.path.join("."), norm));
            }
        }
    }
    model.uniform.visit(&mut GradNorms {
        grads: &grads,
        norms: &mut norms,
        path: vec![],
    });
    let stem = norms
        .iter()
        .find(|(p, _)| p.starts_with("backbone.stem.conv"))
        .unwrap();
    assert!(stem.1.is_finite() && stem.1 > 0.0, "stem gradient {stem:?}");
    let balanced_untouched = model.balanced.head_weight().grad(&grads).is_none();
    assert!(
        balanced_untouched,
        "branch B took no part in branch U's loss"
    );
}

#[test]
fn the_same_seed_gives_the_same_output_and_another_seed_does_not() {
    let device = Default::default();
    let config = DsanConfig::tiny();
    let run = |seed| {
        let model = seeded_model::<B>(&config, seed, &device).unwrap();
        values(
            model
                .forward(synthetic_input::<B>(config.input, &device))
                .uniform
                .logits,
        )
    };
    let a = run(21);
    assert_eq!(a, run(21));
    assert_ne!(a, run(22));
}

/// Flattened values of every float parameter of a module, in visiting order,
/// with their paths.
struct ParamValues {
    path: Vec<String>,
    params: Vec<(String, Vec<f32>)>,
}

impl burn::module::ModuleVisitor<AD> for ParamValues {
    fn enter_module(&mut self, name: &str, _: &str) {
        self.path.push(name.to_owned());
    }
    fn exit_module(&mut self, _: &str, _: &str) {
        self.path.pop();
    }
    fn visit_float<const D: usize>(&mut self, param: &burn::module::Param<Tensor<AD, D>>) {
        self.params
            .push((self.path.join("."), values(param.val().inner())));
    }
}

/// Adds `step` to element `element` of the `target`-th float parameter.
struct Nudge {
    target: usize,
    element: usize,
    step: f32,
    seen: usize,
}

impl burn::module::ModuleMapper<AD> for Nudge {
    fn map_float<const D: usize>(
        &mut self,
        param: burn::module::Param<Tensor<AD, D>>,
    ) -> burn::module::Param<Tensor<AD, D>> {
        let this = self.seen;
        self.seen += 1;
        if this != self.target {
            return param;
        }
        let (element, step) = (self.element, self.step);
        param.map(|tensor| {
            let device = tensor.device();
            let shape = tensor.shape();
            let mut flat = values(tensor.clone().inner());
            flat[element] += step;
            Tensor::<AD, D>::from_data(TensorData::new(flat, shape), &device).require_grad()
        })
    }
}

/// The gradient Burn's autodiff gives every parameter of a branch (training
/// mode: BatchNorm on the batch's statistics; the web default's strided 7^3
/// stem, max-pool, residual blocks and head) is the loss's slope measured by
/// central differences, for a few elements of each parameter: training
/// steps along the true gradient.
#[test]
fn branch_gradients_match_finite_differences() {
    let device = Default::default();
    let config = DsanConfig::tiny();
    let model = seeded_model::<AD>(&config, 3, &device).unwrap();
    let branch = model.uniform;
    let [d, h, w] = config.input;
    let x = Tensor::<AD, 5>::from_data(
        TensorData::new(
            (0..2 * d * h * w)
                .map(|i| ((i * 7919 % 1009) as f32 / 1009.0).powi(2))
                .collect::<Vec<_>>(),
            [2, 1, d, h, w],
        ),
        &device,
    );
    let labels = Tensor::<AD, 1, Int>::from_ints([0, 1], &device);
    let loss = |branch: &dsan_ct::model::DsanBranch<AD>| {
        burn::nn::loss::CrossEntropyLossConfig::new()
            .init(&device)
            .forward(branch.forward(x.clone()).logits, labels.clone())
    };
    let grads = loss(&branch).backward();
    let mut analytic = Vec::new();
    struct Grads<'a> {
        grads: &'a <AD as burn::tensor::backend::AutodiffBackend>::Gradients,
        out: &'a mut Vec<Vec<f32>>,
    }
    impl burn::module::ModuleVisitor<AD> for Grads<'_> {
        fn visit_float<const D: usize>(&mut self, param: &burn::module::Param<Tensor<AD, D>>) {
            self.out
                .push(param.grad(self.grads).map(values).unwrap_or_default());
        }
    }
    branch.visit(&mut Grads {
        grads: &grads,
        out: &mut analytic,
    });
    let mut params = ParamValues {
        path: vec![],
        params: vec![],
    };
    branch.visit(&mut params);
    assert_eq!(params.params.len(), analytic.len());
    // Small enough for a piecewise-linear network (ReLU, max-pool) to bend
    // little across it, large enough for f32 losses.
    let step = 1e-3f32;
    let mut pairs = Vec::new();
    for (target, ((path, value), gradient)) in params.params.iter().zip(&analytic).enumerate() {
        if path.ends_with("running_mean") || path.ends_with("running_var") {
            continue;
        }
        assert_eq!(
            gradient.len(),
            value.len(),
            "{path}: a gradient for every element"
        );
        for element in [0, value.len() / 2, value.len() - 1] {
            let at = |step| {
                let nudged = branch.clone().map(&mut Nudge {
                    target,
                    element,
                    step,
                    seen: 0,
                });
                f64::from(values(loss(&nudged))[0])
            };
            let numeric = (at(step) - at(-step)) / (2.0 * f64::from(step));
            let exact = f64::from(gradient[element]);
            pairs.push((format!("{path}[{element}]"), exact, numeric));
        }
    }
    let agreeing = pairs
        .iter()
        .filter(|(_, exact, numeric)| {
            (numeric - exact).abs() <= 0.1 * numeric.abs().max(exact.abs()) + 5e-4
        })
        .count();
    let dot: f64 = pairs.iter().map(|(_, e, n)| e * n).sum();
    let norm =
        |f: fn(&(String, f64, f64)) -> f64| pairs.iter().map(|p| f(p).powi(2)).sum::<f64>().sqrt();
    let cosine = dot / (norm(|p| p.1) * norm(|p| p.2));
    assert!(pairs.len() >= 100, "{} elements checked", pairs.len());
    assert!(
        agreeing * 10 >= pairs.len() * 9 && cosine > 0.99,
        "{agreeing} of {} elements agree, cosine {cosine}: {pairs:?}",
        pairs.len()
    );
}
