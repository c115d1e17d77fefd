//! Binary classification metrics with the definitions scikit-learn uses:
//! ROC AUC (ties count one half), the ROC curve, and accuracy, sensitivity,
//! specificity and F1 at a probability threshold; mean and sample standard
//! deviation over folds; and reliability bins for a calibration plot.

use serde::{Deserialize, Serialize};

/// Area under the ROC curve of `scores` for `positives` (true = positive
/// class), as the Mann-Whitney statistic with tied scores counted one half;
/// `None` when one class is absent.
pub fn roc_auc(scores: &[f64], positives: &[bool]) -> Option<f64> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    // Mid-ranks (1-based) of tied runs.
    let mut ranks = vec![0.0; scores.len()];
    let mut start = 0;
    while start < order.len() {
        let mut end = start + 1;
        while end < order.len() && scores[order[end]] == scores[order[start]] {
            end += 1;
        }
        let mid = (start + end + 1) as f64 / 2.0;
        for &i in &order[start..end] {
            ranks[i] = mid;
        }
        start = end;
    }
    let n_pos = positives.iter().filter(|&&p| p).count() as f64;
    let n_neg = positives.len() as f64 - n_pos;
    if n_pos == 0.0 || n_neg == 0.0 {
        return None;
    }
    let rank_sum: f64 = ranks
        .iter()
        .zip(positives)
        .filter(|(_, p)| **p)
        .map(|(r, _)| r)
        .sum();
    Some((rank_sum - n_pos * (n_pos + 1.0) / 2.0) / (n_pos * n_neg))
}

/// One point of the ROC curve.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RocPoint {
    /// False positive rate.
    pub fpr: f64,
    /// True positive rate.
    pub tpr: f64,
    /// Cases with a score >= this are called positive; `None` for the first
    /// point, where no case is.
    pub threshold: Option<f64>,
}

/// The ROC curve at every distinct score, from (0, 0) (no threshold) to (1, 1).
pub fn roc_curve(scores: &[f64], positives: &[bool]) -> Vec<RocPoint> {
    let n_pos = positives.iter().filter(|&&p| p).count().max(1) as f64;
    let n_neg = (positives.len() - positives.iter().filter(|&&p| p).count()).max(1) as f64;
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let mut points = vec![RocPoint {
        fpr: 0.0,
        tpr: 0.0,
        threshold: None,
    }];
    let (mut tp, mut fp) = (0.0, 0.0);
    for (n, &i) in order.iter().enumerate() {
        if positives[i] {
            tp += 1.0;
        } else {
            fp += 1.0;
        }
        let last_of_tie = order
            .get(n + 1)
            .is_none_or(|&next| scores[next] != scores[i]);
        if last_of_tie {
            points.push(RocPoint {
                fpr: fp / n_neg,
                tpr: tp / n_pos,
                threshold: Some(scores[i]),
            });
        }
    }
    points
}

/// Threshold metrics of one set of predictions.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BinaryMetrics {
    /// Number of cases.
    pub n: usize,
    /// ROC AUC (`None` when one class is absent).
    pub auc: Option<f64>,
    /// Share of correct calls.
    pub accuracy: f64,
    /// True positive rate (recall); 0 without positives.
    pub sensitivity: f64,
    /// True negative rate; 0 without negatives.
    pub specificity: f64,
    /// Harmonic mean of precision and recall; 0 when both are 0.
    pub f1: f64,
}

/// Metrics of `scores` (probability of the positive class) at `threshold`
/// (a score >= threshold is called positive).
pub fn binary_metrics(scores: &[f64], positives: &[bool], threshold: f64) -> BinaryMetrics {
    let (mut tp, mut fp, mut tn, mut fn_) = (0.0, 0.0, 0.0, 0.0);
    for (&s, &p) in scores.iter().zip(positives) {
        match (s >= threshold, p) {
            (true, true) => tp += 1.0,
            (true, false) => fp += 1.0,
            (false, false) => tn += 1.0,
            (false, true) => fn_ += 1.0,
        }
    }
    let ratio = |a: f64, b: f64| if b > 0.0 { a / b } else { 0.0 };
    BinaryMetrics {
        n: scores.len(),
        auc: roc_auc(scores, positives),
        accuracy: ratio(tp + tn, tp + tn + fp + fn_),
        sensitivity: ratio(tp, tp + fn_),
        specificity: ratio(tn, tn + fp),
        f1: ratio(2.0 * tp, 2.0 * tp + fp + fn_),
    }
}

/// Mean and sample standard deviation (n - 1; 0 for a single value).
pub fn mean_sd(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    if values.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    let mean = values.iter().sum::<f64>() / n;
    let var = if values.len() > 1 {
        values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0)
    } else {
        0.0
    };
    (mean, var.sqrt())
}

/// One bin of a reliability diagram.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ReliabilityBin {
    /// Lower edge of the predicted-probability bin.
    pub lo: f64,
    /// Upper edge.
    pub hi: f64,
    /// Cases in the bin.
    pub count: usize,
    /// Mean predicted probability in the bin.
    pub mean_predicted: f64,
    /// Share of positives in the bin.
    pub observed: f64,
}

/// `bins` equal-width bins over [0, 1] (the last one closed), empty ones left out.
pub fn reliability(scores: &[f64], positives: &[bool], bins: usize) -> Vec<ReliabilityBin> {
    (0..bins)
        .filter_map(|b| {
            let lo = b as f64 / bins as f64;
            let hi = (b + 1) as f64 / bins as f64;
            let inside: Vec<(f64, bool)> = scores
                .iter()
                .zip(positives)
                .filter(|(s, _)| **s >= lo && (**s < hi || (b + 1 == bins && **s <= hi)))
                .map(|(s, p)| (*s, *p))
                .collect();
            (!inside.is_empty()).then(|| {
                let n = inside.len() as f64;
                ReliabilityBin {
                    lo,
                    hi,
                    count: inside.len(),
                    mean_predicted: inside.iter().map(|(s, _)| s).sum::<f64>() / n,
                    observed: inside.iter().filter(|(_, p)| *p).count() as f64 / n,
                }
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct OracleCase {
        scores: Vec<f64>,
        labels: Vec<bool>,
        threshold: f64,
        auc: f64,
        accuracy: f64,
        sensitivity: f64,
        specificity: f64,
        f1: f64,
    }

    #[derive(Deserialize)]
    struct Oracle {
        cases: Vec<OracleCase>,
    }

    /// scikit-learn's values for fixed vectors (tests/fixtures/metrics_oracle.py).
    #[test]
    fn metrics_match_scikit_learn() {
        let oracle: Oracle =
            serde_json::from_str(include_str!("../../tests/fixtures/metrics-oracle.json")).unwrap();
        assert_eq!(oracle.cases.len(), 4);
        for case in oracle.cases {
            let m = binary_metrics(&case.scores, &case.labels, case.threshold);
            let auc = m.auc.unwrap();
            assert!((auc - case.auc).abs() <= 1e-15, "AUC {auc} vs {}", case.auc);
            assert_eq!(m.accuracy, case.accuracy);
            assert_eq!(m.sensitivity, case.sensitivity);
            assert!((m.specificity - case.specificity).abs() <= 1e-15);
            assert!((m.f1 - case.f1).abs() <= 1e-15, "{} vs {}", m.f1, case.f1);
            // The curve's area by the trapezoid rule is the same AUC.
            let curve = roc_curve(&case.scores, &case.labels);
            let area: f64 = curve
                .windows(2)
                .map(|w| (w[1].fpr - w[0].fpr) * (w[1].tpr + w[0].tpr) / 2.0)
                .sum();
            assert!((area - auc).abs() < 1e-12, "{area} vs {auc}");
            assert_eq!(curve.last().map(|p| (p.fpr, p.tpr)), Some((1.0, 1.0)));
        }
    }

    #[test]
    fn degenerate_inputs_give_no_auc_and_no_nan() {
        let m = binary_metrics(&[0.2, 0.9], &[true, true], 0.5);
        assert_eq!(m.auc, None);
        assert_eq!(m.specificity, 0.0);
        assert_eq!(m.sensitivity, 0.5);
        assert_eq!(mean_sd(&[1.0, 3.0]), (2.0, 2f64.sqrt()));
        assert_eq!(mean_sd(&[4.0]), (4.0, 0.0));
    }

    #[test]
    fn reliability_bins_hold_every_case_once() {
        let scores = [0.0, 0.05, 0.15, 0.5, 0.95, 1.0];
        let labels = [false, false, true, true, true, true];
        let bins = reliability(&scores, &labels, 10);
        assert_eq!(bins.iter().map(|b| b.count).sum::<usize>(), 6);
        assert_eq!(bins.first().map(|b| (b.count, b.observed)), Some((2, 0.0)));
        assert_eq!(bins.last().map(|b| (b.count, b.observed)), Some((2, 1.0)));
    }
}
