//! 95 % bootstrap intervals of the threshold metrics and the AUC: the cases
//! are resampled with replacement (seeded, so a rerun gives the same
//! interval) and each metric's 2.5th and 97.5th percentiles are taken over
//! the resamples (the percentile bootstrap).

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use super::metrics::{BinaryMetrics, binary_metrics};

/// Resamples per interval.
pub const RESAMPLES: usize = 2000;
/// Seed of the resampling.
pub const SEED: u64 = 2020;

/// A 95 % interval `[low, high]`.
pub type Interval = [f64; 2];

/// The 95 % intervals of one model's metrics (`None` where no resample
/// defines the metric, e.g. an AUC on one class).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MetricIntervals {
    /// ROC AUC.
    pub auc: Option<Interval>,
    /// Accuracy.
    pub accuracy: Option<Interval>,
    /// Sensitivity.
    pub sensitivity: Option<Interval>,
    /// Specificity.
    pub specificity: Option<Interval>,
    /// F1.
    pub f1: Option<Interval>,
}

/// Intervals of the metrics of `scores` (positive-class probabilities)
/// against `positives` at `threshold`, over [`RESAMPLES`] resamples of the
/// cases drawn from `seed`. Resamples lacking a class count for the threshold
/// metrics they define and not for the AUC; sensitivity (specificity) only
/// uses resamples with positives (negatives).
pub fn intervals(scores: &[f64], positives: &[bool], threshold: f64, seed: u64) -> MetricIntervals {
    let n = scores.len();
    let mut rng = StdRng::seed_from_u64(seed);
    let mut draws: [Vec<f64>; 5] = Default::default();
    let (mut s, mut p) = (vec![0.0; n], vec![false; n]);
    for _ in 0..if n == 0 { 0 } else { RESAMPLES } {
        for k in 0..n {
            let i = rng.random_range(0..n);
            s[k] = scores[i];
            p[k] = positives[i];
        }
        let m: BinaryMetrics = binary_metrics(&s, &p, threshold);
        let has_pos = p.iter().any(|&x| x);
        let has_neg = p.iter().any(|&x| !x);
        let values = [
            m.auc,
            Some(m.accuracy),
            has_pos.then_some(m.sensitivity),
            has_neg.then_some(m.specificity),
            Some(m.f1),
        ];
        for (list, value) in draws.iter_mut().zip(values) {
            list.extend(value);
        }
    }
    let [auc, accuracy, sensitivity, specificity, f1] = draws.map(percentile_interval);
    MetricIntervals {
        auc,
        accuracy,
        sensitivity,
        specificity,
        f1,
    }
}

/// The 2.5th and 97.5th percentiles (linear interpolation between order
/// statistics, numpy's default).
fn percentile_interval(mut values: Vec<f64>) -> Option<Interval> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let at = |q: f64| {
        let x = q * (values.len() - 1) as f64;
        let (lo, hi) = (x.floor() as usize, x.ceil() as usize);
        values[lo] + (values[hi] - values[lo]) * (x - lo as f64)
    };
    Some([at(0.025), at(0.975)])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_interpolate_like_numpy() {
        // numpy.percentile(range(11), [2.5, 97.5]) == [0.25, 9.75]
        let interval = percentile_interval((0..11).map(f64::from).collect()).unwrap();
        assert!((interval[0] - 0.25).abs() < 1e-12 && (interval[1] - 9.75).abs() < 1e-12);
    }

    #[test]
    fn intervals_hold_the_estimate_and_narrow_with_more_cases() {
        // A noisy but informative score: AUC near 0.8.
        let make = |n: usize| -> (Vec<f64>, Vec<bool>) {
            let mut rng = StdRng::seed_from_u64(1);
            (0..n)
                .map(|i| {
                    let positive = i % 2 == 0;
                    let score: f64 = rng.random::<f64>() * 0.7 + if positive { 0.3 } else { 0.0 };
                    (score, positive)
                })
                .unzip()
        };
        let width = |n: usize| {
            let (scores, truth) = make(n);
            let estimate = binary_metrics(&scores, &truth, 0.5).auc.unwrap();
            let [lo, hi] = intervals(&scores, &truth, 0.5, SEED).auc.unwrap();
            assert!(lo <= estimate && estimate <= hi, "{lo} {estimate} {hi}");
            hi - lo
        };
        let (small, large) = (width(40), width(400));
        assert!(large < 0.6 * small, "{small} vs {large}");
        // Seeded: the same interval twice.
        let (scores, truth) = make(40);
        assert_eq!(
            intervals(&scores, &truth, 0.5, SEED),
            intervals(&scores, &truth, 0.5, SEED)
        );
    }

    #[test]
    fn one_class_has_no_auc_interval() {
        let got = intervals(&[0.2, 0.7, 0.9], &[true; 3], 0.5, SEED);
        assert_eq!(got.auc, None);
        assert_eq!(got.specificity, None);
        assert!(got.sensitivity.is_some());
    }
}
