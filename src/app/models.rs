//! "Load your own model": a model card and its weights file picked together
//! are checked (card format, architecture, size, SHA-256, tensor layout) in
//! the browser, in the compute worker, before the diagnosis may use them; a
//! file that fails is refused with the reason and the page goes on with the
//! model it had.

use std::rc::Rc;

use leptos::prelude::*;
use leptos::task::spawn_local;
use web_sys::File;

use super::worker_client::check_model;
use super::{file_bytes, input_files};
use crate::weights::{ModelCard, parse_card};

/// A site's own model, checked: its card and its weights' bytes.
#[derive(Debug, Clone)]
pub struct OwnModel {
    /// The model card.
    pub card: ModelCard,
    /// The weights file, as the card describes it.
    pub bytes: Rc<Vec<u8>>,
}

/// Checks the picked files: exactly one card (.json), and the weights file it names.
async fn check(files: Vec<File>) -> Result<OwnModel, String> {
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
    let bytes = file_bytes(weights).await?;
    // A full load on the CPU backend: size, SHA-256, layout and every tensor.
    check_model(&card, &bytes)
        .await
        .map_err(|e| e.to_string())?;
    Ok(OwnModel {
        card,
        bytes: Rc::new(bytes),
    })
}

/// The model panel: what the page runs, and the input for a site's own model.
#[component]
pub fn ModelPanel(
    /// The loaded model, if any.
    own: ReadSignal<Option<OwnModel>, LocalStorage>,
    /// Sets it.
    set_own: WriteSignal<Option<OwnModel>, LocalStorage>,
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
            <h2 id="model-title">"Model"</h2>
            <p>"No trained weights ship with this page yet: without your own model, the diagnosis "
               "runs an untrained network with random weights, which shows the pipeline working "
               "and nothing more."</p>
            <label>"Load your own model (model card .json and its weights file) "
                <input type="file" multiple accept=".json,.mpk" data-testid="model-input" on:change=on_files />
            </label>
            {move || own.get().map(|m| {
                let c = m.card;
                view! {
                    <dl data-testid="model-loaded">
                        <dt>"Loaded"</dt><dd>{format!("{} {}", c.name, c.version)}</dd>
                        <dt>"Classes"</dt><dd>{c.classes.join(", ")}</dd>
                        <dt>"Training data"</dt>
                        <dd>{format!("{}{}", c.training_data.description,
                            if c.training_data.synthetic { " (synthetic)" } else { "" })}</dd>
                        <dt>"Limitations"</dt><dd>{c.limitations}</dd>
                        <dt>"Weights"</dt><dd>{format!("{} ({} bytes, SHA-256 verified)", c.weights.file, c.weights.bytes)}</dd>
                    </dl>
                }
            })}
            {move || error.get().map(|e| view! {
                <p class="error" role="alert" data-testid="model-error">{e}</p>
            })}
        </section>
    }
}
