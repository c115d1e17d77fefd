//! The figures as PNG: ROC curves of both branches and the ensemble, the
//! ensemble's reliability (calibration) diagram, and a run's learning
//! curves. Text is
//! drawn with a font embedded in the binary (DejaVu Sans Mono, see
//! `assets/DejaVu-LICENSE.txt`), so no system font is needed.

use std::path::Path;
use std::sync::Once;

use anyhow::anyhow;
use plotters::coord::Shift;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::{FontStyle, register_font};

use crate::evaluation::evaluate::CasePrediction;
use crate::evaluation::metrics::{reliability, roc_auc, roc_curve};
use crate::training::config::EpochLog;

const FONT: &[u8] = include_bytes!("../../assets/DejaVuSansMono.ttf");
const SIZE: (u32, u32) = (640, 600);

/// Which probabilities of a prediction a curve shows.
type Pick = fn(&CasePrediction) -> &Vec<f64>;

/// A learning curve: its name, its value in an epoch's log line, its colour.
type Curve = (&'static str, fn(&EpochLog) -> Option<f64>, RGBColor);

fn register() -> anyhow::Result<()> {
    static REGISTER: Once = Once::new();
    let mut result = Ok(());
    REGISTER.call_once(|| {
        result = register_font("sans-serif", FontStyle::Normal, FONT)
            .map_err(|_| anyhow!("the embedded plot font could not be read"));
    });
    result
}

fn plot_error<E: std::fmt::Debug>(path: &Path) -> impl FnOnce(E) -> anyhow::Error + '_ {
    move |e| anyhow!("{}: {e:?}", path.display())
}

type Square<'a, 'b> =
    ChartContext<'a, BitMapBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// The chart's series labels at `position`, framed on a pale background.
fn draw_legend<'a, 'b: 'a>(
    chart: &mut Square<'a, 'b>,
    position: SeriesLabelPosition,
    path: &Path,
) -> anyhow::Result<()> {
    chart
        .configure_series_labels()
        .position(position)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(plot_error(path))
}

/// A white chart of [0, 1] x [0, 1] with a caption, labelled axes and the diagonal.
fn unit_square<'a, 'b>(
    root: &'a DrawingArea<BitMapBackend<'b>, Shift>,
    path: &Path,
    caption: &str,
    [x_desc, y_desc]: [&str; 2],
) -> anyhow::Result<Square<'a, 'b>> {
    root.fill(&WHITE).map_err(plot_error(path))?;
    let mut chart = ChartBuilder::on(root)
        .caption(caption, ("sans-serif", 22))
        .margin(16)
        .x_label_area_size(44)
        .y_label_area_size(54)
        .build_cartesian_2d(0.0..1.0, 0.0..1.0)
        .map_err(plot_error(path))?;
    chart
        .configure_mesh()
        .x_desc(x_desc)
        .y_desc(y_desc)
        .draw()
        .map_err(plot_error(path))?;
    chart
        .draw_series(LineSeries::new([(0.0, 0.0), (1.0, 1.0)], BLACK.mix(0.3)))
        .map_err(plot_error(path))?;
    Ok(chart)
}

/// ROC curves of branch U, branch B and the ensemble for the class `positive`.
pub fn write_roc(
    path: &Path,
    predictions: &[CasePrediction],
    positive: usize,
) -> anyhow::Result<()> {
    register()?;
    let truth: Vec<bool> = predictions.iter().map(|p| p.label == positive).collect();
    let root = BitMapBackend::new(path, SIZE).into_drawing_area();
    let mut chart = unit_square(
        &root,
        path,
        &format!("ROC ({} cases)", predictions.len()),
        [
            "false positive rate (1 - specificity)",
            "true positive rate (sensitivity)",
        ],
    )?;
    let models: [(&str, Pick, RGBColor); 3] = [
        ("ensemble", |p| &p.ensemble, BLACK),
        ("branch U", |p| &p.uniform, BLUE),
        ("branch B", |p| &p.balanced, RED),
    ];
    for (name, pick, color) in models {
        let scores: Vec<f64> = predictions.iter().map(|p| pick(p)[positive]).collect();
        let auc = roc_auc(&scores, &truth).map_or("n/a".to_owned(), |a| format!("{a:.3}"));
        let points: Vec<(f64, f64)> = roc_curve(&scores, &truth)
            .iter()
            .map(|p| (p.fpr, p.tpr))
            .collect();
        chart
            .draw_series(LineSeries::new(points, color.stroke_width(2)))
            .map_err(plot_error(path))?
            .label(format!("{name} (AUC {auc})"))
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], color.stroke_width(2)));
    }
    draw_legend(&mut chart, SeriesLabelPosition::LowerRight, path)?;
    root.present().map_err(plot_error(path))?;
    Ok(())
}

/// Reliability diagram of the ensemble: observed share of the class
/// `positive` against the mean predicted probability, in 10 bins.
pub fn write_reliability(
    path: &Path,
    predictions: &[CasePrediction],
    positive: usize,
) -> anyhow::Result<()> {
    register()?;
    let truth: Vec<bool> = predictions.iter().map(|p| p.label == positive).collect();
    let scores: Vec<f64> = predictions.iter().map(|p| p.ensemble[positive]).collect();
    let bins = reliability(&scores, &truth, 10);
    let root = BitMapBackend::new(path, SIZE).into_drawing_area();
    let mut chart = unit_square(
        &root,
        path,
        &format!("Calibration of the ensemble ({} cases)", predictions.len()),
        ["mean predicted probability", "observed share positive"],
    )?;
    let points: Vec<(f64, f64)> = bins
        .iter()
        .map(|b| (b.mean_predicted, b.observed))
        .collect();
    chart
        .draw_series(LineSeries::new(points.clone(), BLUE.stroke_width(2)))
        .map_err(plot_error(path))?;
    chart
        .draw_series(bins.iter().map(|b| {
            Circle::new(
                (b.mean_predicted, b.observed),
                3 + (b.count as i32).min(12),
                BLUE.filled(),
            )
        }))
        .map_err(plot_error(path))?;
    root.present().map_err(plot_error(path))?;
    Ok(())
}

/// A run's learning curves: the training loss of both branches (top) and the
/// validation AUC of both branches and the ensemble (bottom), per epoch.
pub fn write_learning_curves(path: &Path, log: &[EpochLog]) -> anyhow::Result<()> {
    register()?;
    let root = BitMapBackend::new(path, (SIZE.0, SIZE.1 + 200)).into_drawing_area();
    root.fill(&WHITE).map_err(plot_error(path))?;
    let (top, bottom) = root.split_vertically(SIZE.1 / 2 + 100);
    let epochs = log.len().max(2) as f64;
    let x_range = 1.0..epochs;
    let top_loss = log
        .iter()
        .flat_map(|e| [e.loss_uniform, e.loss_balanced])
        .filter(|v| v.is_finite())
        .fold(0.0f64, f64::max)
        .max(1e-3)
        * 1.05;
    let series = |pick: fn(&EpochLog) -> Option<f64>| -> Vec<(f64, f64)> {
        log.iter()
            .filter_map(|e| pick(e).map(|v| (e.epoch as f64, v)))
            .collect()
    };
    let mut losses = ChartBuilder::on(&top)
        .caption(
            "Training loss (CE + lambda * attention)",
            ("sans-serif", 20),
        )
        .margin(14)
        .x_label_area_size(36)
        .y_label_area_size(54)
        .build_cartesian_2d(x_range.clone(), 0.0..top_loss)
        .map_err(plot_error(path))?;
    losses
        .configure_mesh()
        .x_desc("epoch")
        .y_desc("mean loss")
        .draw()
        .map_err(plot_error(path))?;
    let loss_series: [Curve; 2] = [
        ("branch U", |e| Some(e.loss_uniform), BLUE),
        ("branch B", |e| Some(e.loss_balanced), RED),
    ];
    for (name, pick, color) in loss_series {
        losses
            .draw_series(LineSeries::new(series(pick), color.stroke_width(2)))
            .map_err(plot_error(path))?
            .label(name)
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], color.stroke_width(2)));
    }
    draw_legend(&mut losses, SeriesLabelPosition::UpperRight, path)?;
    let mut aucs = ChartBuilder::on(&bottom)
        .caption("Validation AUC", ("sans-serif", 20))
        .margin(14)
        .x_label_area_size(36)
        .y_label_area_size(54)
        .build_cartesian_2d(x_range, 0.0..1.0)
        .map_err(plot_error(path))?;
    aucs.configure_mesh()
        .x_desc("epoch")
        .y_desc("AUC")
        .draw()
        .map_err(plot_error(path))?;
    let auc_series: [Curve; 3] = [
        ("ensemble", |e| e.val_auc, BLACK),
        ("branch U", |e| e.val_auc_uniform, BLUE),
        ("branch B", |e| e.val_auc_balanced, RED),
    ];
    for (name, pick, color) in auc_series {
        aucs.draw_series(LineSeries::new(series(pick), color.stroke_width(2)))
            .map_err(plot_error(path))?
            .label(name)
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], color.stroke_width(2)));
    }
    draw_legend(&mut aucs, SeriesLabelPosition::LowerRight, path)?;
    root.present().map_err(plot_error(path))?;
    Ok(())
}
