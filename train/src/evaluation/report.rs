//! Metrics as tables: mean and sd over folds (or the value and its 95 %
//! bootstrap interval for one evaluation) of every (group, model, metric),
//! and their Markdown report.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use super::bootstrap::{Interval, MetricIntervals};
use super::evaluate::{Evaluation, ModelMetrics};
use super::metrics::{BinaryMetrics, mean_sd};

/// One metric as mean and sd over folds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct SummaryRow {
    group: String,
    model: String,
    metric: String,
    mean: f64,
    sd: f64,
    folds: usize,
    /// The 95 % bootstrap interval, for a single evaluation.
    #[serde(default)]
    ci95: Option<Interval>,
}

/// One metric of one model.
pub(crate) struct MetricRow {
    /// "ensemble", "branch U" or "branch B".
    pub(crate) model: &'static str,
    /// e.g. "AUC".
    pub(crate) metric: &'static str,
    /// Its value, where defined.
    pub(crate) value: Option<f64>,
    /// Its 95 % bootstrap interval, where computed.
    pub(crate) ci95: Option<Interval>,
}

fn metric_values(
    m: &BinaryMetrics,
    ci: Option<&MetricIntervals>,
) -> [(&'static str, Option<f64>, Option<Interval>); 5] {
    [
        ("AUC", m.auc, ci.and_then(|c| c.auc)),
        ("accuracy", Some(m.accuracy), ci.and_then(|c| c.accuracy)),
        (
            "sensitivity",
            Some(m.sensitivity),
            ci.and_then(|c| c.sensitivity),
        ),
        (
            "specificity",
            Some(m.specificity),
            ci.and_then(|c| c.specificity),
        ),
        ("F1", Some(m.f1), ci.and_then(|c| c.f1)),
    ]
}

/// Every metric of the ensemble and both branches, and the attention share.
pub(crate) fn model_rows(metrics: &ModelMetrics) -> Vec<MetricRow> {
    let ci = metrics.ci95.as_ref();
    let mut rows = Vec::new();
    for (model, m, ci) in [
        ("ensemble", &metrics.ensemble, ci.map(|c| &c.ensemble)),
        ("branch U", &metrics.uniform, ci.map(|c| &c.uniform)),
        ("branch B", &metrics.balanced, ci.map(|c| &c.balanced)),
    ] {
        rows.extend(
            metric_values(m, ci)
                .into_iter()
                .map(|(metric, value, ci95)| MetricRow {
                    model,
                    metric,
                    value,
                    ci95,
                }),
        );
    }
    rows.push(MetricRow {
        model: "ensemble",
        metric: "attention in mask",
        value: metrics.attention_in_mask,
        ci95: None,
    });
    rows
}

/// The values of one (group, model, metric) over evaluations.
struct Collected {
    group: String,
    row: MetricRow,
    values: Vec<f64>,
}

/// Mean and sd over evaluations of every (group, model, metric); with one
/// evaluation, its bootstrap intervals too.
pub(crate) fn summarize(evaluations: &[Evaluation]) -> Vec<SummaryRow> {
    let mut collected: Vec<Collected> = Vec::new();
    let mut add = |group: &str, row: MetricRow| {
        let Some(value) = row.value else { return };
        match collected
            .iter_mut()
            .find(|c| c.group == group && c.row.model == row.model && c.row.metric == row.metric)
        {
            Some(c) => {
                c.values.push(value);
                c.row.ci95 = None;
            }
            None => collected.push(Collected {
                group: group.into(),
                row,
                values: vec![value],
            }),
        }
    };
    for e in evaluations {
        for row in model_rows(&e.overall) {
            add("all", row);
        }
        for (band, metrics) in &e.by_size {
            for row in model_rows(metrics) {
                add(&format!("{} infection", band.name()), row);
            }
        }
        add(
            "small infection, positive class",
            MetricRow {
                model: "ensemble",
                metric: "sensitivity",
                value: e.small_positive_sensitivity,
                // The same figure, with its interval, is the small band's
                // ensemble sensitivity.
                ci95: None,
            },
        );
    }
    collected
        .into_iter()
        .map(|Collected { group, row, values }| {
            let (mean, sd) = mean_sd(&values);
            SummaryRow {
                group,
                model: row.model.into(),
                metric: row.metric.into(),
                mean,
                sd,
                folds: values.len(),
                ci95: row.ci95,
            }
        })
        .collect()
}

/// The rows as a Markdown table under `title`.
pub(crate) fn markdown_report(rows: &[SummaryRow], title: &str) -> String {
    let mut md = format!(
        "# {title}\n\nMean +- sd over folds (n = folds where the metric is defined); \
         for a single evaluation, the 95 % bootstrap interval (cases resampled, \
         seeded). ROC curves: `roc.png`; calibration of the ensemble: \
         `calibration.png` (all cases scored).\n\n\
         | group | model | metric | mean | sd | 95 % CI | n |\n|---|---|---|---|---|---|---|\n"
    );
    for r in rows {
        let ci = r
            .ci95
            .map_or(String::new(), |[lo, hi]| format!("{lo:.4} - {hi:.4}"));
        let _ = writeln!(
            md,
            "| {} | {} | {} | {:.4} | {:.4} | {ci} | {} |",
            r.group, r.model, r.metric, r.mean, r.sd, r.folds
        );
    }
    md
}
