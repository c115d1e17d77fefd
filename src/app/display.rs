//! The side panel's display controls: the window (presets, and the values a
//! drag on a view sets), and once there is a diagnosis the attention
//! overlay's: shown or not, inside the lungs or the whole map, which map,
//! colours, opacity, threshold, lung outline.

use leptos::prelude::*;

use super::scene::{Map, PRESETS, Scene};
use crate::pipeline::LUNG_REGION_MARGIN_MM;
use crate::render::{Colormap, Window};

/// The preset a window is, if it is one.
fn preset_of(window: Window) -> &'static str {
    PRESETS
        .iter()
        .find(|(_, _, w)| *w == window)
        .map_or("custom", |(key, _, _)| key)
}

/// The display panel of `scene`.
#[component]
pub fn DisplayPanel(
    /// The views' shared state.
    scene: Scene,
) -> impl IntoView {
    let on_preset = move |ev: leptos::ev::Event| {
        let chosen = event_target_value(&ev);
        if let Some((_, _, w)) = PRESETS.iter().find(|(key, _, _)| *key == chosen) {
            scene.window.set(*w);
        }
    };
    view! {
        <section class="panel display" aria-labelledby="display-title">
            <h2 id="display-title">"Display"</h2>
            <div class="row">
                <label>"Window "
                    <select data-testid="window-preset" on:change=on_preset>
                        {PRESETS.iter().map(|(key, label, _)| view! {
                            <option value=*key prop:selected=move || preset_of(scene.window.get()) == *key>{*label}</option>
                        }).collect_view()}
                        <option value="custom" disabled hidden
                            prop:selected=move || preset_of(scene.window.get()) == "custom">
                            "set by dragging"
                        </option>
                    </select>
                </label>
                <span data-testid="window-values">{move || {
                    let w = scene.window.get();
                    format!("W {:.0} / L {:.0}", w.width, w.center)
                }}</span>
            </div>
            <Show when=move || scene.diagnosis.with(Option::is_some)>
                <OverlayControls scene />
            </Show>
        </section>
    }
}

/// The overlay's controls (shown once there is a diagnosis).
#[component]
fn OverlayControls(
    /// The views' shared state.
    scene: Scene,
) -> impl IntoView {
    let overlay = scene.overlay;
    let percent = |ev: &leptos::ev::Event| {
        event_target_value(ev)
            .parse::<f32>()
            .ok()
            .map(|v| v / 100.0)
    };
    view! {
        <fieldset class="overlay-controls" data-testid="overlay-controls">
            <legend>"Attention overlay"</legend>
            <div class="row">
                <label>
                    <input type="checkbox" data-testid="overlay-toggle" prop:checked=move || overlay.get().shown
                        on:change=move |ev| overlay.update(|o| o.shown = event_target_checked(&ev)) />
                    " show (O)"
                </label>
                <label title=format!("By default the attention is drawn inside the lungs grown by {LUNG_REGION_MARGIN_MM:.0} mm; \
                                      outside them the map also covers the chest wall and the crop's edges")>
                    <input type="checkbox" data-testid="overlay-whole-map" prop:checked=move || overlay.get().whole_map
                        on:change=move |ev| overlay.update(|o| o.whole_map = event_target_checked(&ev)) />
                    " whole map (not only the lungs)"
                </label>
                <label>
                    <input type="checkbox" data-testid="outline-toggle" prop:checked=move || overlay.get().outline
                        on:change=move |ev| overlay.update(|o| o.outline = event_target_checked(&ev)) />
                    " lung outline"
                </label>
                <button data-testid="overlay-peak" aria-keyshortcuts="P"
                    title="Move the crosshairs to where the map shown is strongest"
                    on:click=move |_| scene.go_to_peak()>
                    "Go to peak (P)"
                </button>
            </div>
            <div class="row">
                <label>"map "
                    <select data-testid="overlay-map" on:change=move |ev| {
                        let map = match event_target_value(&ev).as_str() {
                            "uniform" => Map::Uniform,
                            "balanced" => Map::Balanced,
                            _ => Map::Ensemble,
                        };
                        overlay.update(|o| o.map = map);
                    }>
                        <option value="ensemble">"ensemble"</option>
                        <option value="uniform">"branch U (uniform sampling)"</option>
                        <option value="balanced">"branch B (size-balanced sampling)"</option>
                    </select>
                </label>
                <label>"colours "
                    <select data-testid="overlay-colormap" on:change=move |ev| {
                        let colormap = if event_target_value(&ev) == "jet" { Colormap::Jet } else { Colormap::Heat };
                        overlay.update(|o| o.style.colormap = colormap);
                    }>
                        <option value="heat">"heat"</option>
                        <option value="jet">"jet"</option>
                    </select>
                </label>
            </div>
            <div class="row">
                <label>"opacity "
                    <input type="range" min="0" max="100" data-testid="overlay-opacity"
                        prop:value=move || (overlay.get().style.opacity * 100.0).round().to_string()
                        on:input=move |ev| if let Some(v) = percent(&ev) {
                            overlay.update(|o| o.style.opacity = v);
                        } />
                </label>
                <label>"threshold "
                    <input type="range" min="0" max="100" data-testid="overlay-threshold"
                        prop:value=move || (f32::from(overlay.get().style.threshold) / 2.55).round().to_string()
                        on:input=move |ev| if let Some(v) = percent(&ev) {
                            overlay.update(|o| o.style.threshold = (v * 255.0).round().clamp(0.0, 255.0) as u8);
                        } />
                    <span class="value">{move || format!(" {:.2}", f32::from(overlay.get().style.threshold) / 255.0)}</span>
                </label>
            </div>
        </fieldset>
    }
}
