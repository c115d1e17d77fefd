//! The three-plane viewer: axial, coronal and sagittal images of the open CT
//! with linked crosshairs (a click in one view moves the other two), slice
//! sliders (keyboard arrows), mouse-wheel paging, window presets, the HU under
//! the cursor, and each view's physical aspect ratio from the voxel spacing.
//! Once a diagnosis is made, its attention is drawn over all three planes
//! (ensemble or either branch, colormap, opacity, threshold, lung outline).

use std::rc::Rc;

use leptos::prelude::*;
use web_sys::HtmlCanvasElement;

use super::put_rgba;
use crate::pipeline::Diagnosis;
use crate::render::{
    Colormap, OverlayStyle, Plane, Window, blend_attention, mask_outline, plane_bytes, plane_rgba,
};
use crate::volume::Volume;

/// Which attention map is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Map {
    Ensemble,
    Uniform,
    Balanced,
}

/// The overlay as the viewer's controls set it.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Overlay {
    shown: bool,
    map: Map,
    style: OverlayStyle,
    outline: bool,
}

impl Default for Overlay {
    fn default() -> Self {
        Self {
            shown: true,
            map: Map::Ensemble,
            style: OverlayStyle::default(),
            outline: false,
        }
    }
}

/// What a plane draws: the CT in a window, and the diagnosis' overlay if any.
#[derive(Clone, Copy)]
struct Layers {
    window: ReadSignal<Window>,
    diagnosis: ReadSignal<Option<Rc<Diagnosis>>, LocalStorage>,
    overlay: ReadSignal<Overlay>,
}

/// Window presets offered, by name.
const PRESETS: [(&str, &str, Window); 3] = [
    ("lung", "lung (1500 / -600)", Window::LUNG),
    ("mediastinum", "mediastinum (400 / 40)", Window::MEDIASTINUM),
    ("bone", "bone (2500 / 480)", Window::BONE),
];

/// HU of window width and level per CSS pixel of a drag.
const DRAG_HU_PER_PIXEL: [f32; 2] = [4.0, 2.0];
/// Zoom factor of one wheel step or key press, and the largest zoom.
const ZOOM_STEP: f64 = 1.25;
const MAX_ZOOM: f64 = 8.0;

/// Colour of the crosshair lines.
const CROSSHAIR: [u8; 3] = [255, 196, 0];

/// Which component of the cursor `[k, j, i]` a plane pages through.
fn axis(plane: Plane) -> usize {
    match plane {
        Plane::Axial => 0,
        Plane::Coronal => 1,
        Plane::Sagittal => 2,
    }
}

fn name(plane: Plane) -> &'static str {
    match plane {
        Plane::Axial => "axial",
        Plane::Coronal => "coronal",
        Plane::Sagittal => "sagittal",
    }
}

/// The viewer of `volume`.
#[component]
pub fn Viewer(
    /// The CT on screen.
    volume: Volume,
    /// The diagnosis of this CT, once made: its attention is overlaid.
    diagnosis: ReadSignal<Option<Rc<Diagnosis>>, LocalStorage>,
) -> impl IntoView {
    let dims = volume.dims();
    let volume = StoredValue::new(volume);
    let (cursor, set_cursor) = signal(dims.map(|n| n / 2));
    let (window, set_window) = signal(Window::LUNG);
    let (overlay, set_overlay) = signal(Overlay::default());
    let layers = Layers {
        window,
        diagnosis,
        overlay,
    };
    let (readout, set_readout) = signal(None::<String>);
    let on_preset = move |ev: leptos::ev::Event| {
        let chosen = event_target_value(&ev);
        if let Some((_, _, w)) = PRESETS.iter().find(|(key, _, _)| *key == chosen) {
            set_window.set(*w);
        }
    };
    let views = [Plane::Axial, Plane::Coronal, Plane::Sagittal].map(|plane| {
        view! { <PlaneView plane volume cursor set_cursor layers set_window set_readout /> }
    });
    view! {
        <div class="viewer" data-testid="viewer">
            <p>
                <label>"Window "
                    <select data-testid="window-preset" on:change=on_preset>
                        {PRESETS.iter().map(|(key, label, _)| view! { <option value=*key>{*label}</option> }).collect_view()}
                    </select>
                </label>
                " "
                <span data-testid="window-values">{move || {
                    let w = window.get();
                    format!("W {:.0} / L {:.0}", w.width, w.center)
                }}</span>
                " "
                <span data-testid="hu-readout" role="status">{move || readout.get().unwrap_or_default()}</span>
            </p>
            <Show when=move || diagnosis.with(Option::is_some)>
                <OverlayControls overlay set_overlay />
            </Show>
            <div class="planes">{views}</div>
            <p class="hint">
                "Click to move the other views there; drag to set the window; shift-drag to pan; "
                "ctrl-wheel or + / - to zoom, 0 to reset; the wheel or the arrow keys page through slices."
            </p>
        </div>
    }
}

/// The overlay's controls (shown once there is a diagnosis).
#[component]
fn OverlayControls(
    overlay: ReadSignal<Overlay>,
    set_overlay: WriteSignal<Overlay>,
) -> impl IntoView {
    let percent = |ev: &leptos::ev::Event| {
        event_target_value(ev)
            .parse::<f32>()
            .ok()
            .map(|v| v / 100.0)
    };
    view! {
        <fieldset class="overlay-controls" data-testid="overlay-controls">
            <legend>"Attention overlay"</legend>
            <label>
                <input type="checkbox" data-testid="overlay-toggle" prop:checked=move || overlay.get().shown
                    on:change=move |ev| set_overlay.update(|o| o.shown = event_target_checked(&ev)) />
                " show"
            </label>
            " "
            <label>"map "
                <select data-testid="overlay-map" on:change=move |ev| {
                    let map = match event_target_value(&ev).as_str() {
                        "uniform" => Map::Uniform,
                        "balanced" => Map::Balanced,
                        _ => Map::Ensemble,
                    };
                    set_overlay.update(|o| o.map = map);
                }>
                    <option value="ensemble">"ensemble"</option>
                    <option value="uniform">"branch U (uniform sampling)"</option>
                    <option value="balanced">"branch B (size-balanced sampling)"</option>
                </select>
            </label>
            " "
            <label>"colours "
                <select data-testid="overlay-colormap" on:change=move |ev| {
                    let colormap = if event_target_value(&ev) == "jet" { Colormap::Jet } else { Colormap::Heat };
                    set_overlay.update(|o| o.style.colormap = colormap);
                }>
                    <option value="heat">"heat"</option>
                    <option value="jet">"jet"</option>
                </select>
            </label>
            " "
            <label>"opacity "
                <input type="range" min="0" max="100" data-testid="overlay-opacity"
                    prop:value=move || (overlay.get().style.opacity * 100.0).round().to_string()
                    on:input=move |ev| if let Some(v) = percent(&ev) {
                        set_overlay.update(|o| o.style.opacity = v);
                    } />
            </label>
            " "
            <label>"threshold "
                <input type="range" min="0" max="100" data-testid="overlay-threshold"
                    prop:value=move || (f32::from(overlay.get().style.threshold) / 2.55).round().to_string()
                    on:input=move |ev| if let Some(v) = percent(&ev) {
                        set_overlay.update(|o| o.style.threshold = (v * 255.0).round().clamp(0.0, 255.0) as u8);
                    } />
                {move || format!(" {:.2}", f32::from(overlay.get().style.threshold) / 255.0)}
            </label>
            " "
            <label>
                <input type="checkbox" data-testid="outline-toggle" prop:checked=move || overlay.get().outline
                    on:change=move |ev| set_overlay.update(|o| o.outline = event_target_checked(&ev)) />
                " lung outline"
            </label>
        </fieldset>
    }
}

/// A view's zoom (1 = fit) and pan offset in CSS pixels.
#[derive(Debug, Clone, Copy, PartialEq)]
struct View {
    scale: f64,
    offset: [f64; 2],
}

impl Default for View {
    fn default() -> Self {
        Self {
            scale: 1.0,
            offset: [0.0; 2],
        }
    }
}

/// A mouse drag on a view: from where, panning or windowing, and the window
/// and pan it started from.
#[derive(Debug, Clone, Copy)]
struct Drag {
    from: [i32; 2],
    pan: bool,
    window: Window,
    offset: [f64; 2],
}

/// One plane: its canvas, slider and handlers.
#[component]
fn PlaneView(
    plane: Plane,
    volume: StoredValue<Volume>,
    cursor: ReadSignal<[usize; 3]>,
    set_cursor: WriteSignal<[usize; 3]>,
    layers: Layers,
    set_window: WriteSignal<Window>,
    set_readout: WriteSignal<Option<String>>,
) -> impl IntoView {
    let (dims, spacing) = volume.with_value(|v| (v.dims(), v.spacing()));
    let [width, height] = plane.image_size(dims);
    let [px, py] = plane.pixel_mm(spacing);
    let a = axis(plane);
    let last = plane.count(dims) - 1;
    let canvas = NodeRef::<leptos::html::Canvas>::new();
    Effect::new(move |_| {
        let (c, w, o) = (cursor.get(), layers.window.get(), layers.overlay.get());
        let diagnosis = layers.diagnosis.get().filter(|_| o.shown);
        if let Some(canvas) = canvas.get() {
            volume.with_value(|v| {
                draw(
                    &canvas,
                    v,
                    plane,
                    c,
                    w,
                    diagnosis.as_deref().map(|d| (d, o)),
                )
            });
        }
    });
    // The voxel under a mouse event on the canvas.
    let voxel_at = move |ev: &leptos::ev::MouseEvent| -> Option<[usize; 3]> {
        let canvas = canvas.get_untracked()?;
        let (cw, ch) = (canvas.client_width().max(1), canvas.client_height().max(1));
        let x = (f64::from(ev.offset_x()) * width as f64 / f64::from(cw)).floor();
        let y = (f64::from(ev.offset_y()) * height as f64 / f64::from(ch)).floor();
        let (x, y) = (
            x.clamp(0.0, (width - 1) as f64),
            y.clamp(0.0, (height - 1) as f64),
        );
        Some(plane.voxel(dims, cursor.get_untracked()[a], x as usize, y as usize))
    };
    let set_slice = move |index: usize| {
        set_cursor.update(|c| c[a] = index.min(last));
    };
    // Zoom and pan (CSS pixels) of this view, and the drag in progress.
    let (zoom, set_zoom) = signal(View::default());
    let drag = StoredValue::new(None::<Drag>);
    let moved = StoredValue::new(false);
    let zoom_by = move |factor: f64| {
        set_zoom.update(|z| z.scale = (z.scale * factor).clamp(1.0, MAX_ZOOM));
    };
    let on_drag = move |ev: &leptos::ev::MouseEvent| {
        let Some(d) = drag.get_value() else {
            return;
        };
        let (dx, dy) = (
            f64::from(ev.client_x() - d.from[0]),
            f64::from(ev.client_y() - d.from[1]),
        );
        if dx.abs() + dy.abs() > 3.0 {
            moved.set_value(true);
        }
        if !moved.get_value() {
            return;
        }
        if d.pan {
            set_zoom.update(|z| z.offset = [d.offset[0] + dx, d.offset[1] + dy]);
        } else {
            set_window.set(Window {
                width: (d.window.width + dx as f32 * DRAG_HU_PER_PIXEL[0]).max(1.0),
                center: d.window.center + dy as f32 * DRAG_HU_PER_PIXEL[1],
            });
        }
    };
    view! {
        <figure class="plane">
            <div class="view-box">
            <canvas node_ref=canvas data-testid=format!("{}-canvas", name(plane)) width=width height=height
                tabindex="0"
                aria-label=format!("{} view; click to move the other views here, drag to set the window", name(plane))
                style=move || {
                    let z = zoom.get();
                    format!(
                        "aspect-ratio: {} / {}; transform: translate({}px, {}px) scale({})",
                        width as f64 * px, height as f64 * py, z.offset[0], z.offset[1], z.scale
                    )
                }
                on:mousedown=move |ev| {
                    moved.set_value(false);
                    drag.set_value(Some(Drag {
                        from: [ev.client_x(), ev.client_y()],
                        pan: ev.shift_key() || ev.button() == 1,
                        window: layers.window.get_untracked(),
                        offset: zoom.get_untracked().offset,
                    }));
                }
                on:mouseup=move |_| drag.set_value(None)
                on:mouseleave=move |_| drag.set_value(None)
                on:click=move |ev| {
                    if moved.get_value() {
                        return;
                    }
                    if let Some(voxel) = voxel_at(&ev) {
                        set_cursor.set(voxel);
                    }
                }
                on:keydown=move |ev: leptos::ev::KeyboardEvent| match ev.key().as_str() {
                    "+" | "=" => zoom_by(ZOOM_STEP),
                    "-" => zoom_by(1.0 / ZOOM_STEP),
                    "0" => set_zoom.set(View::default()),
                    _ => {}
                }
                on:mousemove=move |ev| {
                    on_drag(&ev);
                    if let Some([k, j, i]) = voxel_at(&ev) {
                        let hu = volume.with_value(|v| v.get(k, j, i));
                        set_readout.set(hu.map(|hu| format!("{hu:.0} HU at slice {}, row {}, column {}", k + 1, j + 1, i + 1)));
                    }
                }
                on:wheel=move |ev: leptos::ev::WheelEvent| {
                    ev.prevent_default();
                    if ev.ctrl_key() {
                        zoom_by(if ev.delta_y() < 0.0 { ZOOM_STEP } else { 1.0 / ZOOM_STEP });
                        return;
                    }
                    let current = cursor.get_untracked()[a];
                    set_slice(if ev.delta_y() > 0.0 { current + 1 } else { current.saturating_sub(1) });
                }></canvas>
            </div>
            <figcaption>
                <label>{format!("{} ", name(plane))}
                    <input type="range" min="0" max=last data-testid=format!("slice-{}", name(plane))
                        prop:value=move || cursor.get()[a].to_string()
                        on:input=move |ev| {
                            if let Ok(index) = event_target_value(&ev).parse::<usize>() {
                                set_slice(index);
                            }
                        } />
                </label>
                {move || format!(" {} / {}", cursor.get()[a] + 1, last + 1)}
            </figcaption>
        </figure>
    }
}

/// Draws image `cursor[axis]` of `plane`, with the attention overlay when
/// given, and the crosshair at the cursor.
fn draw(
    canvas: &HtmlCanvasElement,
    volume: &Volume,
    plane: Plane,
    cursor: [usize; 3],
    window: Window,
    overlay: Option<(&Diagnosis, Overlay)>,
) {
    let dims = volume.dims();
    let index = cursor[axis(plane)];
    let Some(mut rgba) = plane_rgba(volume, plane, index, window) else {
        return;
    };
    let [width, height] = plane.image_size(dims);
    if let Some((diagnosis, overlay)) = overlay {
        let maps = &diagnosis.attention;
        let map = match overlay.map {
            Map::Ensemble => &maps.ensemble,
            Map::Uniform => &maps.uniform,
            Map::Balanced => &maps.balanced,
        };
        let outline = overlay
            .outline
            .then(|| plane_bytes(diagnosis.lung_mask.data(), dims, plane, index))
            .flatten()
            .map(|mask| mask_outline(&mask, height, width));
        if let Some(attention) = plane_bytes(map, dims, plane, index) {
            blend_attention(&mut rgba, &attention, overlay.style, outline.as_deref());
        }
    }
    let top = dims[0] - 1;
    let [k, j, i] = cursor;
    // The crosshair: the other two planes' positions in this image.
    let (cx, cy) = match plane {
        Plane::Axial => (i, j),
        Plane::Coronal => (i, top - k),
        Plane::Sagittal => (j, top - k),
    };
    let mut mark = |x: usize, y: usize| {
        let p = (y * width + x) * 4;
        for c in 0..3 {
            rgba[p + c] = ((u16::from(rgba[p + c]) + u16::from(CROSSHAIR[c])) / 2) as u8;
        }
    };
    for x in 0..width {
        mark(x, cy);
    }
    for y in 0..height {
        mark(cx, y);
    }
    put_rgba(canvas, &rgba, width, height);
}
