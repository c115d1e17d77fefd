//! The trained models the page has, and the network a diagnosis runs. The
//! default one ships in `model-weights/`
//! (its `models.json` names the card) and is fetched from this site
//! with its size and SHA-256 checked. "Load your own model": a model card and
//! its weights file picked together are checked (card format, architecture,
//! size, SHA-256, tensor layout) in the browser, in the compute worker, before
//! the diagnosis may use them. A model that fails is refused with the reason
//! and the page goes on with the model it had.

use std::rc::Rc;

use leptos::prelude::*;
use leptos::task::spawn_local;
use web_sys::File;

use super::job::ModelChoice;
use super::self_check::Preset;
use super::worker_client::check_model;
use super::{fetch_bytes, file_bytes, input_files};
use crate::weights::{
    MODEL_INDEX_FILE, Metric, ModelCard, ModelIndex, check_bytes, check_card_size, check_size,
    parse_card,
};

/// A trained model, checked: its card and its weights' bytes.
#[derive(Debug, Clone)]
pub struct LoadedModel {
    /// The model card.
    pub card: ModelCard,
    /// The weights file, as the card describes it.
    pub bytes: Rc<Vec<u8>>,
}

/// The trained models the page has.
#[derive(Clone, Copy)]
pub struct Models {
    /// The default model bundled with the page: `None` while it is fetched,
    /// `Ok(None)` when none ships, `Err` when it could not be used.
    pub bundled: LocalResource<Result<Option<LoadedModel>, String>>,
    /// The site's own model, once loaded.
    pub own: ReadSignal<Option<LoadedModel>, LocalStorage>,
}

impl Models {
    /// The bundled model, if one ships and was fetched intact (tracked).
    pub fn bundled_model(&self) -> Option<LoadedModel> {
        self.bundled.get().and_then(Result::ok).flatten()
    }

    /// Whether the page has looked for its bundled model (found or not; tracked).
    pub fn bundled_known(&self) -> bool {
        self.bundled.get().is_some()
    }

    /// Whether the page has no usable default model, so that the untrained
    /// networks are offered (tracked).
    pub fn untrained_offered(&self) -> bool {
        !matches!(self.bundled.get(), None | Some(Ok(Some(_))))
    }

    /// The network a diagnosis runs (the diagnosis menu's value): the one
    /// `picked`, else the bundled model when one ships, else the untrained
    /// web default (tracked).
    pub fn choice(&self, picked: Option<String>) -> String {
        picked.unwrap_or_else(|| {
            let default = if self.bundled_model().is_some() {
                "bundled"
            } else {
                "web-default"
            };
            default.to_owned()
        })
    }

    /// What a worker runs for `choice`: the model and its weights (empty for
    /// an untrained network); `None` for a trained model the page does not
    /// have (tracked).
    pub fn job_model(&self, choice: &str) -> Option<(ModelChoice, Rc<Vec<u8>>)> {
        match choice {
            "bundled" | "own" => self
                .trained(choice)
                .map(|model| (ModelChoice::Trained(Box::new(model.card)), model.bytes)),
            untrained => Some((
                ModelChoice::Seeded(Preset::from_name(untrained).config()),
                Rc::default(),
            )),
        }
    }

    /// The trained model a choice names, if it is one (tracked).
    pub fn trained(&self, choice: &str) -> Option<LoadedModel> {
        match choice {
            "bundled" => self.bundled_model(),
            "own" => self.own.get(),
            _ => None,
        }
    }
}

/// Folder of the bundled models, beside the page.
const BUNDLED: &str = "model-weights";

/// Fetches the default model named in `model-weights/models.json`, its
/// weights' size and SHA-256 checked against its card (the compute worker
/// checks the rest when it loads them).
pub async fn fetch_bundled() -> Result<Option<LoadedModel>, String> {
    let index_path = format!("{BUNDLED}/{MODEL_INDEX_FILE}");
    let index: ModelIndex = serde_json::from_slice(&fetch_bytes(&index_path).await?)
        .map_err(|e| format!("{index_path}: {e}"))?;
    let Some(card_file) = index.default else {
        return Ok(None);
    };
    let card_path = format!("{BUNDLED}/{card_file}");
    let card =
        parse_card(&card_path, &fetch_bytes(&card_path).await?).map_err(|e| e.to_string())?;
    let bytes = fetch_bytes(&format!("{BUNDLED}/{}", card.weights.file)).await?;
    check_bytes(&card.weights, &bytes).map_err(|e| e.to_string())?;
    Ok(Some(LoadedModel {
        card,
        bytes: Rc::new(bytes),
    }))
}

/// Checks the picked files: exactly one card (.json), and the weights file it names.
async fn check(files: Vec<File>) -> Result<LoadedModel, String> {
    let cards: Vec<&File> = files
        .iter()
        .filter(|f| f.name().ends_with(".json"))
        .collect();
    let [card_file] = cards.as_slice() else {
        return Err(format!(
            "pick one model card (.json) and its weights file; {} card(s) were picked",
            cards.len()
        ));
    };
    // Sizes first: a file that cannot be what it claims is refused unread.
    check_card_size(&card_file.name(), card_file.size() as u64).map_err(|e| e.to_string())?;
    let card =
        parse_card(&card_file.name(), &file_bytes(card_file).await?).map_err(|e| e.to_string())?;
    let weights = files
        .iter()
        .find(|f| f.name() == card.weights.file)
        .ok_or_else(|| {
            format!(
                "model card {}: its weights file {} was not picked with it",
                card_file.name(),
                card.weights.file
            )
        })?;
    check_size(&card.weights, weights.size() as u64).map_err(|e| e.to_string())?;
    let bytes = file_bytes(weights).await?;
    // A full load on the CPU backend: size, SHA-256, layout and every tensor.
    check_model(&card, &bytes)
        .await
        .map_err(|e| e.to_string())?;
    Ok(LoadedModel {
        card,
        bytes: Rc::new(bytes),
    })
}

/// The model panel: what the page runs, and the input for a site's own model.
#[component]
pub fn ModelPanel(
    /// The trained models the page has.
    models: Models,
    /// Sets the site's own model.
    set_own: WriteSignal<Option<LoadedModel>, LocalStorage>,
) -> impl IntoView {
    let (error, set_error) = signal(None::<String>);
    let on_files = move |ev: leptos::ev::Event| {
        let files = input_files(&ev);
        set_error.set(None);
        spawn_local(async move {
            match check(files).await {
                Ok(model) => set_own.set(Some(model)),
                Err(message) => set_error.set(Some(message)),
            }
        });
    };
    view! {
        <section class="panel" aria-labelledby="model-title">
            <h2 id="model-title">"Model in use"</h2>
            {move || match models.bundled.get() {
                None => view! { <p role="status">"Loading the bundled model…"</p> }.into_any(),
                Some(Ok(Some(m))) => view! {
                    <ModelCardView model=m testid="model-default" title="Default model" />
                }.into_any(),
                Some(Ok(None)) => view! {
                    <p>"No trained weights ship with this page yet: without your own model, the "
                       "diagnosis runs an untrained network with random weights, which shows the "
                       "pipeline working and nothing more."</p>
                }.into_any(),
                Some(Err(e)) => view! {
                    <p class="error" role="alert" data-testid="bundled-error">
                        {format!("The model bundled with this page cannot be used ({e}); \
                                  load your own, or diagnose with the untrained network.")}
                    </p>
                }.into_any(),
            }}
            <label>"Load your own model (model card .json and its weights file) "
                <input type="file" multiple accept=".json,.mpk" data-testid="model-input" on:change=on_files />
            </label>
            {move || models.own.get().map(|m| view! {
                <ModelCardView model=m testid="model-loaded" title="Loaded" />
            })}
            {move || error.get().map(|e| view! {
                <p class="error" role="alert" data-testid="model-error">{e}</p>
            })}
        </section>
    }
}

/// What a model card says, for the user.
#[component]
fn ModelCardView(
    /// The model.
    model: LoadedModel,
    /// The list's `data-testid`.
    testid: &'static str,
    /// The first row's label.
    title: &'static str,
) -> impl IntoView {
    let c = model.card;
    let all: Vec<String> = c.metrics.iter().map(describe_metric).collect();
    let (measured, on) = match headline(&c.metrics) {
        Some((figures, on)) => (figures, on.to_owned()),
        None => ("–".to_owned(), "–".to_owned()),
    };
    let trained_on = if c.training_data.synthetic {
        "synthetic chest-CT phantoms, not patients"
    } else {
        "the site's own data"
    };
    let limits = first_sentence(&c.limitations).to_owned();
    view! {
        <dl data-testid=testid>
            <dt>{title}</dt><dd>{format!("{} {}", c.name, c.version)}</dd>
            <dt>"Classes"</dt><dd>{c.classes.join(", ")}</dd>
            <dt>"Trained on"</dt><dd>{trained_on}</dd>
            <dt>"Measured"</dt><dd data-testid=format!("{testid}-headline")>{measured}</dd>
            <dt>"Limitations"</dt><dd>{limits}</dd>
        </dl>
        <details class="model-card-details">
            <summary>"The whole model card"</summary>
            <dl>
                <dt>"Training data"</dt>
                <dd>{format!("{}{}", c.training_data.description,
                    if c.training_data.synthetic { " (synthetic)" } else { "" })}</dd>
                <dt>"Measured on"</dt><dd>{on}</dd>
                <dt>"All figures"</dt>
                <dd><ul>{all.into_iter().map(|m| view! { <li>{m}</li> }).collect_view()}</ul></dd>
                <dt>"Limitations"</dt><dd>{c.limitations}</dd>
                <dt>"Weights"</dt><dd>{format!("{} ({} bytes, SHA-256 verified)", c.weights.file, c.weights.bytes)}</dd>
            </dl>
        </details>
    }
}

/// One figure of a card, with its interval and what it was measured on.
fn describe_metric(m: &Metric) -> String {
    let ci = m
        .ci95
        .map(|[lo, hi]| format!(", 95 % CI {lo:.3}-{hi:.3}"))
        .unwrap_or_default();
    format!("{} {:.3}{ci} ({})", m.name, m.value, m.measured_on)
}

/// The figures a reader looks at first: the ensemble's AUC (with its
/// interval), sensitivity and specificity on the first held-out set the card
/// names (else on the first set it names), and that set; `None` for a card
/// without figures.
fn headline(metrics: &[Metric]) -> Option<(String, &str)> {
    let on = metrics
        .iter()
        .find(|m| m.measured_on.contains("held-out"))
        .or_else(|| metrics.first())?
        .measured_on
        .as_str();
    let measured: Vec<&Metric> = metrics.iter().filter(|m| m.measured_on == on).collect();
    let named: Vec<String> = ["AUC", "sensitivity", "specificity"]
        .into_iter()
        .filter_map(|name| {
            let m = measured
                .iter()
                .find(|m| m.name == format!("{name} (ensemble)"))?;
            let ci = m
                .ci95
                .filter(|_| name == "AUC")
                .map(|[lo, hi]| format!(" (95 % CI {lo:.2}-{hi:.2})"))
                .unwrap_or_default();
            Some(format!("{name} {:.2}{ci}", m.value))
        })
        .collect();
    let figures = if named.is_empty() {
        measured
            .iter()
            .take(3)
            .map(|m| format!("{} {:.2}", m.name, m.value))
            .collect()
    } else {
        named
    };
    Some((figures.join(", "), on))
}

/// `text` up to and including its first full stop followed by a space (all of it without one).
fn first_sentence(text: &str) -> &str {
    text.find(". ").map_or(text, |end| &text[..=end])
}
