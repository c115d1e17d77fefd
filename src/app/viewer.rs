//! The three-plane viewer: axial, coronal and sagittal images of the open CT
//! with linked crosshairs (a click in one view moves the other two), slice
//! sliders (keyboard arrows), mouse-wheel paging, window presets, the HU under
//! the cursor, and each view's physical aspect ratio from the voxel spacing.

use leptos::prelude::*;
use web_sys::HtmlCanvasElement;

use super::put_rgba;
use crate::render::{Plane, Window, plane_rgba};
use crate::volume::Volume;

/// Window presets offered, by name.
const PRESETS: [(&str, &str, Window); 3] = [
    ("lung", "lung (1500 / -600)", Window::LUNG),
    ("mediastinum", "mediastinum (400 / 40)", Window::MEDIASTINUM),
    ("bone", "bone (2500 / 480)", Window::BONE),
];

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
) -> impl IntoView {
    let dims = volume.dims();
    let volume = StoredValue::new(volume);
    let (cursor, set_cursor) = signal(dims.map(|n| n / 2));
    let (window, set_window) = signal(Window::LUNG);
    let (readout, set_readout) = signal(None::<String>);
    let on_preset = move |ev: leptos::ev::Event| {
        let chosen = event_target_value(&ev);
        if let Some((_, _, w)) = PRESETS.iter().find(|(key, _, _)| *key == chosen) {
            set_window.set(*w);
        }
    };
    let views = [Plane::Axial, Plane::Coronal, Plane::Sagittal].map(|plane| {
        view! { <PlaneView plane volume cursor set_cursor window set_readout /> }
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
                <span data-testid="hu-readout" role="status">{move || readout.get().unwrap_or_default()}</span>
            </p>
            <div class="planes">{views}</div>
        </div>
    }
}

/// One plane: its canvas, slider and handlers.
#[component]
fn PlaneView(
    plane: Plane,
    volume: StoredValue<Volume>,
    cursor: ReadSignal<[usize; 3]>,
    set_cursor: WriteSignal<[usize; 3]>,
    window: ReadSignal<Window>,
    set_readout: WriteSignal<Option<String>>,
) -> impl IntoView {
    let (dims, spacing) = volume.with_value(|v| (v.dims(), v.spacing()));
    let [width, height] = plane.image_size(dims);
    let [px, py] = plane.pixel_mm(spacing);
    let a = axis(plane);
    let last = plane.count(dims) - 1;
    let canvas = NodeRef::<leptos::html::Canvas>::new();
    Effect::new(move |_| {
        let (c, w) = (cursor.get(), window.get());
        if let Some(canvas) = canvas.get() {
            volume.with_value(|v| draw(&canvas, v, plane, c, w));
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
    view! {
        <figure class="plane">
            <canvas node_ref=canvas data-testid=format!("{}-canvas", name(plane)) width=width height=height
                tabindex="0"
                aria-label=format!("{} view; click to move the other views here", name(plane))
                style=format!("aspect-ratio: {} / {}", width as f64 * px, height as f64 * py)
                on:click=move |ev| {
                    if let Some(voxel) = voxel_at(&ev) {
                        set_cursor.set(voxel);
                    }
                }
                on:mousemove=move |ev| {
                    if let Some([k, j, i]) = voxel_at(&ev) {
                        let hu = volume.with_value(|v| v.get(k, j, i));
                        set_readout.set(hu.map(|hu| format!("{hu:.0} HU at slice {}, row {}, column {}", k + 1, j + 1, i + 1)));
                    }
                }
                on:wheel=move |ev: leptos::ev::WheelEvent| {
                    ev.prevent_default();
                    let current = cursor.get_untracked()[a];
                    set_slice(if ev.delta_y() > 0.0 { current + 1 } else { current.saturating_sub(1) });
                }></canvas>
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

/// Draws image `cursor[axis]` of `plane` with the crosshair at the cursor.
fn draw(
    canvas: &HtmlCanvasElement,
    volume: &Volume,
    plane: Plane,
    cursor: [usize; 3],
    window: Window,
) {
    let dims = volume.dims();
    let Some(mut rgba) = plane_rgba(volume, plane, cursor[axis(plane)], window) else {
        return;
    };
    let [width, height] = plane.image_size(dims);
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
