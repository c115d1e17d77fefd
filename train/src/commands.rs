//! The subcommands of `dsan`.

use std::path::Path;

use anyhow::Context;
use dsan_ct::CpuBackend;
use dsan_ct::model::DsanConfig;
use dsan_ct::probe::{forward_summary, seeded_model};
use dsan_ct::weights::{ModelCard, load_model_files};

type Cpu = CpuBackend;

/// Network presets of the library.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Preset {
    /// The tiny self-check network.
    Tiny,
    /// The web default network.
    WebDefault,
}

impl Preset {
    /// The preset's architecture.
    pub fn config(self) -> DsanConfig {
        match self {
            Preset::Tiny => DsanConfig::tiny(),
            Preset::WebDefault => DsanConfig::web_default(),
        }
    }
}

/// `dsan model-info CARD`: loads the card and its weights (checking both) and
/// prints a summary.
pub fn model_info(card_path: &Path) -> anyhow::Result<()> {
    let device = Default::default();
    let (card, model) = load_model_files::<Cpu>(card_path, &device)?;
    print!("{}", describe(&card));
    println!(
        "weights: {} ({} bytes, SHA-256 {}) verified; {} parameters loaded",
        card.weights.file,
        card.weights.bytes,
        card.weights.sha256,
        burn::module::Module::num_params(&model)
    );
    Ok(())
}

fn describe(card: &ModelCard) -> String {
    let a = &card.architecture;
    let p = &card.preprocessing;
    let mut text = format!(
        "{} {}\n\
         architecture: 3D ResNet {:?} blocks, width {}, input {:?} -> attention grid {:?}, {} classes\n\
         classes: {}\n\
         preprocessing: HU window {:?}, lung crop margin {} mm, mask outside lungs: {}\n\
         training data: {}{}\n",
        card.name,
        card.version,
        a.layers,
        a.base_width,
        a.input,
        a.feature_grid(),
        a.num_classes,
        card.classes.join(", "),
        p.hu_window,
        p.lung_crop_margin_mm,
        p.mask_outside_lungs,
        card.training_data.description,
        if card.training_data.synthetic {
            " (synthetic)"
        } else {
            ""
        },
    );
    for (class, n) in &card.training_data.cases_per_class {
        text += &format!("  {class}: {n} cases\n");
    }
    if card.metrics.is_empty() {
        text += "metrics: none recorded\n";
    }
    for m in &card.metrics {
        let sd = m.sd.map(|sd| format!(" ± {sd:.3}")).unwrap_or_default();
        text += &format!(
            "metric: {} = {:.3}{sd} ({})\n",
            m.name, m.value, m.measured_on
        );
    }
    text += &format!(
        "intended use: {}\nlimitations: {}\n",
        card.intended_use, card.limitations
    );
    text
}

/// `dsan self-check`: the seeded model's outputs on the synthetic phantom.
pub fn self_check(preset: Preset, seed: u64) -> anyhow::Result<()> {
    let device = Default::default();
    let config = preset.config();
    let model = seeded_model::<Cpu>(&config, seed, &device)?;
    let summary = pollster::block_on(forward_summary(&model, &config, &device))?;
    println!(
        "{}",
        serde_json::to_string(&summary).context("encoding the summary")?
    );
    Ok(())
}
