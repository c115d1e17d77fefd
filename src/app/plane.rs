//! One view of the viewer: a plane of the CT on a canvas that fills its cell
//! at the plane's physical aspect ratio and is drawn at the screen's pixel
//! density (`devicePixelRatio`, times the zoom), so it stays sharp on a
//! high-DPI screen. The image (CT in its window, attention overlay) is made
//! at the volume's resolution and scaled onto the canvas: voxels magnified
//! stay crisp squares, shrunk ones are smoothed; the crosshair is drawn at
//! screen resolution. Pointer gestures: click (move the crosshairs), drag
//! (window), shift-drag (pan), wheel (slices), ctrl-wheel (zoom),
//! double-click (this view alone).

use leptos::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::Closure;
use web_sys::{CanvasRenderingContext2d, HtmlCanvasElement, ResizeObserver};

use super::put_rgba;
use super::scene::{Overlay, Scene, ZOOM_STEP, ZoomPan, axis, plane_name};
use crate::pipeline::Diagnosis;
use crate::render::{
    Plane, Window, blend_attention, mask_outline, masked, plane_bytes, plane_rgba,
};
use crate::volume::Volume;

/// HU of window width and level per CSS pixel of a drag.
const DRAG_HU_PER_PIXEL: [f32; 2] = [4.0, 2.0];

/// The crosshair's colour.
const CROSSHAIR: &str = "rgba(255, 196, 0, 0.75)";

/// The largest side of a canvas's backing store, pixels (a zoomed 4K view).
const MAX_BACKING: f64 = 4096.0;

/// A mouse drag on a view: from where, panning or windowing, and the window
/// and pan it started from.
#[derive(Debug, Clone, Copy)]
struct Drag {
    from: [i32; 2],
    pan: bool,
    window: Window,
    offset: [f64; 2],
}

/// `image` (`[width, height]` in mm) fitted into `cell` (CSS pixels).
fn fit(image: [f64; 2], cell: [f64; 2]) -> [f64; 2] {
    let scale = (cell[0] / image[0]).min(cell[1] / image[1]).max(0.0);
    [image[0] * scale, image[1] * scale]
}

fn device_pixel_ratio() -> f64 {
    web_sys::window()
        .map(|w| w.device_pixel_ratio())
        .filter(|r| *r > 0.0)
        .unwrap_or(1.0)
}

fn context_2d(canvas: &HtmlCanvasElement) -> Option<CanvasRenderingContext2d> {
    canvas.get_context("2d").ok().flatten()?.dyn_into().ok()
}

/// A canvas outside the page, holding a view's image at the volume's resolution.
fn offscreen_canvas(width: usize, height: usize) -> Option<HtmlCanvasElement> {
    let document = web_sys::window()?.document()?;
    let canvas: HtmlCanvasElement = document.create_element("canvas").ok()?.dyn_into().ok()?;
    canvas.set_width(width as u32);
    canvas.set_height(height as u32);
    Some(canvas)
}

/// Keeps `size` at `cell`'s inner size in CSS pixels while the view lives.
fn observe_size(cell: NodeRef<leptos::html::Div>, size: RwSignal<[f64; 2]>) {
    let observer = StoredValue::new_local(None::<(ResizeObserver, Closure<dyn FnMut()>)>);
    cell.on_load(move |element| {
        let target = element.clone();
        let callback = Closure::<dyn FnMut()>::new(move || {
            size.set([
                f64::from(target.client_width()),
                f64::from(target.client_height()),
            ]);
        });
        if let Ok(resize) = ResizeObserver::new(callback.as_ref().unchecked_ref()) {
            resize.observe(&element);
            observer.set_value(Some((resize, callback)));
        }
    });
    on_cleanup(move || {
        observer.with_value(|o| {
            if let Some((resize, _)) = o {
                resize.disconnect();
            }
        })
    });
}

/// One plane: its cell, canvas, slider and gestures.
#[component]
pub fn PlaneView(
    /// The plane this view shows.
    plane: Plane,
    /// The views' shared state.
    scene: Scene,
) -> impl IntoView {
    let (dims, spacing) = scene.volume.with_value(|v| (v.dims(), v.spacing()));
    let [width, height] = plane.image_size(dims);
    let [px, py] = plane.pixel_mm(spacing);
    let physical = [width as f64 * px, height as f64 * py];
    let a = axis(plane);
    let last = plane.count(dims) - 1;
    let name = plane_name(plane);
    let zoom = scene.zoom[a];
    let canvas = NodeRef::<leptos::html::Canvas>::new();
    let cell = NodeRef::<leptos::html::Div>::new();
    let cell_size = RwSignal::new([0.0; 2]);
    observe_size(cell, cell_size);
    // The canvas's size in CSS pixels (before the zoom's transform).
    let css = Memo::new(move |_| fit(physical, cell_size.get()));
    let index = Memo::new(move |_| scene.cursor.get()[a]);

    // The image at the volume's resolution, redrawn when its slice, the
    // window or the overlay change; `drawn` counts the redraws.
    let image = StoredValue::new_local(offscreen_canvas(width, height));
    let drawn = RwSignal::new(0u32);
    Effect::new(move |_| {
        let (index, window, overlay) = (index.get(), scene.window.get(), scene.overlay.get());
        let diagnosis = scene.diagnosis.get().filter(|_| overlay.shown);
        let rgba = scene.volume.with_value(|v| {
            plane_image(
                v,
                plane,
                index,
                window,
                diagnosis.as_deref().map(|d| (d, overlay)),
            )
        });
        image.with_value(|image| {
            if let (Some(image), Some(rgba)) = (image, rgba) {
                put_rgba(image, &rgba, width, height);
                drawn.update(|n| *n = n.wrapping_add(1));
            }
        });
    });
    // The canvas: the image scaled to the screen's pixels, and the crosshair.
    Effect::new(move |_| {
        drawn.track();
        let (size, scale, cursor) = (css.get(), zoom.get().scale, scene.cursor.get());
        if let Some(target) = canvas.get() {
            image.with_value(|image| {
                if let Some(image) = image {
                    present(
                        &target,
                        image,
                        [width, height],
                        size,
                        scale,
                        crosshair(plane, dims, cursor),
                    );
                }
            });
        }
    });

    // The voxel under a mouse event on the canvas.
    let voxel_at = move |ev: &leptos::ev::MouseEvent| -> Option<[usize; 3]> {
        let [cw, ch] = css.get_untracked();
        if cw < 1.0 || ch < 1.0 {
            return None;
        }
        let x = (f64::from(ev.offset_x()) * width as f64 / cw).floor();
        let y = (f64::from(ev.offset_y()) * height as f64 / ch).floor();
        let (x, y) = (
            x.clamp(0.0, (width - 1) as f64),
            y.clamp(0.0, (height - 1) as f64),
        );
        Some(plane.voxel(
            dims,
            scene.cursor.get_untracked()[a],
            x as usize,
            y as usize,
        ))
    };
    let drag = StoredValue::new(None::<Drag>);
    let moved = StoredValue::new(false);
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
            zoom.update(|z| z.offset = [d.offset[0] + dx, d.offset[1] + dy]);
        } else {
            scene.window.set(Window {
                width: (d.window.width + dx as f32 * DRAG_HU_PER_PIXEL[0]).max(1.0),
                center: d.window.center + dy as f32 * DRAG_HU_PER_PIXEL[1],
            });
        }
    };
    view! {
        <figure class="plane" data-testid=format!("view-{name}")
            class:main=move || scene.main.get() == plane
            class:off=move || !scene.shown(plane)
            on:mouseenter=move |_| scene.pointer.set(Some(plane))
            on:mouseleave=move |_| scene.pointer.update(|p| if *p == Some(plane) { *p = None })>
            <div class="view-box" node_ref=cell>
                <canvas node_ref=canvas data-testid=format!("{name}-canvas") data-plane=name
                    data-image-width=width data-image-height=height
                    tabindex="0"
                    aria-label=format!("{name} view; click to move the other views here, drag to set the window, double-click to show it alone")
                    style:width=move || format!("{}px", css.get()[0])
                    style:height=move || format!("{}px", css.get()[1])
                    style:transform=move || {
                        let ZoomPan { scale, offset } = zoom.get();
                        format!("translate({}px, {}px) scale({scale})", offset[0], offset[1])
                    }
                    on:mousedown=move |ev| {
                        moved.set_value(false);
                        drag.set_value(Some(Drag {
                            from: [ev.client_x(), ev.client_y()],
                            pan: ev.shift_key() || ev.button() == 1,
                            window: scene.window.get_untracked(),
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
                            scene.cursor.set(voxel);
                        }
                    }
                    on:dblclick=move |_| scene.toggle_single(plane)
                    on:mousemove=move |ev| {
                        on_drag(&ev);
                        if let Some([k, j, i]) = voxel_at(&ev) {
                            let hu = scene.volume.with_value(|v| v.get(k, j, i));
                            scene.readout.set(hu.map(|hu| {
                                format!("{hu:.0} HU at slice {}, row {}, column {}", k + 1, j + 1, i + 1)
                            }));
                        }
                    }
                    on:wheel=move |ev: leptos::ev::WheelEvent| {
                        ev.prevent_default();
                        if ev.ctrl_key() {
                            scene.zoom_by(plane, if ev.delta_y() < 0.0 { ZOOM_STEP } else { 1.0 / ZOOM_STEP });
                        } else {
                            scene.step_slice(plane, if ev.delta_y() > 0.0 { 1 } else { -1 });
                        }
                    }></canvas>
            </div>
            <figcaption>
                <label>{format!("{name} ")}
                    <input type="range" min="0" max=last data-testid=format!("slice-{name}")
                        prop:value=move || index.get().to_string()
                        on:input=move |ev| {
                            if let Ok(i) = event_target_value(&ev).parse::<usize>() {
                                scene.set_slice(plane, i);
                            }
                        } />
                </label>
                <span class="slice-count">{move || format!("{} / {}", index.get() + 1, last + 1)}</span>
            </figcaption>
        </figure>
    }
}

/// Image `index` of `plane` in `window` as RGBA at the volume's resolution,
/// with the overlay when given: the chosen map inside the lung region (or
/// the whole map), and the lung outline.
fn plane_image(
    volume: &Volume,
    plane: Plane,
    index: usize,
    window: Window,
    overlay: Option<(&Diagnosis, Overlay)>,
) -> Option<Vec<u8>> {
    let dims = volume.dims();
    let mut rgba = plane_rgba(volume, plane, index, window)?;
    let Some((diagnosis, overlay)) = overlay else {
        return Some(rgba);
    };
    let [width, height] = plane.image_size(dims);
    let bytes = |data: &[u8]| plane_bytes(data, dims, plane, index);
    let map = overlay.map.of(&diagnosis.summary.feature_attention);
    let map = diagnosis.attention_plane(map, plane, index);
    let attention = if overlay.whole_map {
        map
    } else {
        map.zip(bytes(diagnosis.lung_region.data()))
            .map(|(attention, region)| masked(&attention, &region))
    };
    let outline = overlay
        .outline
        .then(|| bytes(diagnosis.lung_mask.data()))
        .flatten()
        .map(|mask| mask_outline(&mask, height, width));
    if let Some(attention) = attention {
        blend_attention(&mut rgba, &attention, overlay.style, outline.as_deref());
    }
    Some(rgba)
}

/// Where the other two planes cross this one: `(x, y)` in image pixels.
fn crosshair(plane: Plane, dims: [usize; 3], [k, j, i]: [usize; 3]) -> (usize, usize) {
    let top = dims[0] - 1;
    match plane {
        Plane::Axial => (i, j),
        Plane::Coronal => (i, top - k),
        Plane::Sagittal => (j, top - k),
    }
}

/// Draws `image` (`[width, height]` pixels) on `canvas`, shown at `size` CSS
/// pixels magnified `zoom` times, with one backing pixel per device pixel,
/// and the crosshair through image pixel `(cx, cy)`.
fn present(
    canvas: &HtmlCanvasElement,
    image: &HtmlCanvasElement,
    [width, height]: [usize; 2],
    size: [f64; 2],
    zoom: f64,
    (cx, cy): (usize, usize),
) {
    if size[0] < 1.0 || size[1] < 1.0 {
        // A hidden view (another layout): nothing to draw.
        return;
    }
    let dpr = device_pixel_ratio();
    let density = dpr * zoom;
    let cap = (MAX_BACKING / (size[0].max(size[1]) * density)).min(1.0);
    let [bw, bh] = size.map(|s| (s * density * cap).round().max(1.0));
    if canvas.width() != bw as u32 {
        canvas.set_width(bw as u32);
    }
    if canvas.height() != bh as u32 {
        canvas.set_height(bh as u32);
    }
    let Some(context) = context_2d(canvas) else {
        return;
    };
    // Magnified voxels stay crisp squares; shrunk images are smoothed so no
    // voxel is dropped.
    context.set_image_smoothing_enabled(bw < width as f64 || bh < height as f64);
    // Drawing can only fail for a detached canvas; nothing to report then.
    let _ = context.draw_image_with_html_canvas_element_and_dw_and_dh(image, 0.0, 0.0, bw, bh);
    let x = ((cx as f64 + 0.5) * bw / width as f64).floor() + 0.5;
    let y = ((cy as f64 + 0.5) * bh / height as f64).floor() + 0.5;
    context.set_stroke_style_str(CROSSHAIR);
    context.set_line_width((dpr * cap).max(1.0));
    context.begin_path();
    context.move_to(x, 0.0);
    context.line_to(x, bh);
    context.move_to(0.0, y);
    context.line_to(bw, y);
    context.stroke();
}
