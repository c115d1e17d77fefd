// The page as a reading workspace. Before a CT is open, one screen offers
// every way in (drop zone, pickers, samples), the model in use and the
// privacy promise; once one is open, its views fill the window and its
// diagnosis, which starts by itself, is read beside them: at 1280 x 720 and
// 1920 x 1080 the probability, its key image and the Diagnose button lie in
// the viewport with the views, without scrolling either way. The layout
// switch (buttons, keys, the pointer) changes which views are shown and how
// large; canvases are drawn at the screen's pixel density; the shortcuts are
// listed; the developers' diagnostics are in a dialog, the backend badge in
// the header; the overlay stays inside the lungs unless the whole map is
// asked for. Screenshots of the empty, opened and diagnosed states at both
// sizes go to tests/e2e/artifacts/.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { sharedBrowser, openPage, diagnoseOnPage, assertPrivate } from './harness.mjs';

const DIST = process.env.DIST_DIR ?? new URL('../../dist/', import.meta.url).pathname;
const ARTIFACTS = process.env.E2E_ARTIFACTS ?? new URL('./artifacts/', import.meta.url).pathname;
const SAMPLE = 'covid-19-like-2.zip';
const LAPTOP = { width: 1280, height: 720 };
const SIZES = [LAPTOP, { width: 1920, height: 1080 }];

const shared = sharedBrowser(DIST, { webgpu: false });
before(() => mkdirSync(ARTIFACTS, { recursive: true }));

/** The page's scroll extent and the viewport rectangles of elements (by CSS selector). */
function measure(page, selectors) {
  return page.evaluate((selectors) => {
    const root = document.documentElement;
    return {
      width: window.innerWidth,
      height: window.innerHeight,
      scroll: [window.scrollX, window.scrollY],
      scrollWidth: root.scrollWidth,
      rects: Object.fromEntries(
        selectors.map((s) => {
          const r = document.querySelector(s)?.getBoundingClientRect();
          return [s, r && { left: r.left, top: r.top, right: r.right, bottom: r.bottom, width: r.width, height: r.height }];
        }),
      ),
    };
  }, selectors);
}

const byTestId = (id) => `[data-testid="${id}"]`;

/** Every element lies whole inside the viewport, unscrolled, and nothing is wider than it. */
async function assertInView(page, selectors, state) {
  const m = await measure(page, selectors);
  assert.deepEqual(m.scroll, [0, 0], `${state}: not scrolled`);
  assert.ok(m.scrollWidth <= m.width, `${state}: no horizontal scrollbar (${m.scrollWidth} > ${m.width})`);
  for (const s of selectors) {
    const r = m.rects[s];
    assert.ok(r && r.width > 0 && r.height > 0, `${state}: ${s} is shown`);
    assert.ok(
      r.left >= 0 && r.top >= 0 && r.right <= m.width + 0.5 && r.bottom <= m.height + 0.5,
      `${state}: ${s} inside the ${m.width} x ${m.height} viewport: ${JSON.stringify(r)}`,
    );
  }
}

/** Pixels of a viewer canvas that are coloured (not grey). */
function coloured(page, plane) {
  return page.getByTestId(`${plane}-canvas`).evaluate((c) => {
    const { data } = c.getContext('2d').getImageData(0, 0, c.width, c.height);
    let n = 0;
    for (let i = 0; i < data.length; i += 4) {
      if (Math.max(data[i], data[i + 1], data[i + 2]) - Math.min(data[i], data[i + 1], data[i + 2]) > 20) n += 1;
    }
    return n;
  });
}

async function openSample(page) {
  await page.getByTestId('sample-menu').selectOption(SAMPLE);
  await page.getByTestId('volume-info').waitFor({ timeout: 120_000 });
}

for (const viewport of SIZES) {
  const size = `${viewport.width}x${viewport.height}`;
  test(`at ${size}: one welcome screen, then the views and the diagnosis on one screen`, async () => {
    const { page, requests, errors } = await openPage(shared.browser, shared.server.url, { viewport });
    try {
      // Before a CT is open: what this is, every way in, the model, the privacy line.
      await page.locator('[data-testid="backend-badge"][data-backend]').waitFor({ timeout: 60_000 });
      await page.getByText('Loading the bundled model…').waitFor({ state: 'detached', timeout: 60_000 });
      await assertInView(
        page,
        [
          '#intro-title',
          byTestId('drop-zone'),
          `label:has(> ${byTestId('file-input')})`,
          `label:has(> ${byTestId('folder-input')})`,
          byTestId('sample-menu'),
          '#model-title',
          byTestId('privacy-statement'),
          byTestId('backend-badge'),
        ],
        'empty',
      );
      await page.screenshot({ path: join(ARTIFACTS, `workspace-empty-${size}.png`) });

      // Opened: the views fill the window and the diagnosis has started by itself.
      await openSample(page);
      await page.getByTestId('stage-progress').waitFor({ timeout: 60_000 });
      await page.screenshot({ path: join(ARTIFACTS, `workspace-opened-${size}.png`) });
      const views = ['axial-canvas', 'coronal-canvas', 'sagittal-canvas'].map(byTestId);
      await assertInView(page, [...views, byTestId('diagnose'), byTestId('backend-badge')], 'opened');
      const viewer = (await measure(page, [byTestId('viewer')])).rects[byTestId('viewer')];
      assert.ok(
        viewer.width * viewer.height > 0.5 * viewport.width * viewport.height,
        `the views take most of the window: ${viewer.width} x ${viewer.height}`,
      );

      // Diagnosed: the result is read with the views in sight.
      const report = await diagnoseOnPage(page, 300_000);
      await page.screenshot({ path: join(ARTIFACTS, `workspace-diagnosed-${size}.png`) });
      await assertInView(
        page,
        [byTestId('result-probability'), byTestId('overlay-canvas'), byTestId('diagnose'), byTestId('result-caveat'), ...views],
        'diagnosed',
      );
      const shown = Number(await page.getByTestId('result-probability').textContent());
      assert.ok(Math.abs(shown - report.diagnosis.positive_probability) <= 1e-4, `shown ${shown}`);

      // The overlay is drawn inside the lungs; the whole map also paints the
      // chest wall and the crop's edges.
      await page.getByTestId('overlay-controls').waitFor();
      const lungs = await coloured(page, 'axial');
      await page.getByTestId('overlay-whole-map').check();
      const whole = await coloured(page, 'axial');
      assert.ok(whole > lungs, `whole map ${whole} coloured pixels, inside the lungs ${lungs}`);
      await page.getByTestId('overlay-whole-map').uncheck();
      assert.equal(await coloured(page, 'axial'), lungs, 'back to the lungs');

      assertPrivate(requests, shared.server.url);
      assert.deepEqual(errors, []);
    } finally {
      await page.context().close();
    }
  });
}

/** The cells (figures) of the three views. */
async function cells(page) {
  const ids = ['view-axial', 'view-coronal', 'view-sagittal'].map(byTestId);
  const m = await measure(page, ids);
  return { ...m, cells: ids.map((id) => m.rects[id]) };
}
const area = (r) => (r ? r.width * r.height : 0);

test('the layout switch, the keys and the pointer change which views are shown and how large', async () => {
  const { page, errors } = await openPage(shared.browser, shared.server.url, { viewport: LAPTOP });
  try {
    await openSample(page);
    const planes = page.getByTestId('planes');
    // One large view (axial) and two small ones.
    assert.equal(await planes.getAttribute('data-layout'), 'large');
    let { cells: [axial, coronal, sagittal] } = await cells(page);
    assert.ok(area(axial) > 2 * area(coronal), `large axial ${area(axial)} vs coronal ${area(coronal)}`);
    assert.ok(Math.abs(area(coronal) - area(sagittal)) < 0.05 * area(coronal), 'the small ones are alike');
    const largeCanvas = await page.getByTestId('axial-canvas').boundingBox();

    // Three equal views.
    await page.getByTestId('layout-equal').click();
    assert.equal(await planes.getAttribute('data-layout'), 'equal');
    ({ cells: [axial, coronal, sagittal] } = await cells(page));
    for (const r of [coronal, sagittal]) assert.ok(Math.abs(area(r) - area(axial)) < 0.05 * area(axial), 'equal cells');
    const equalCanvas = await page.getByTestId('axial-canvas').boundingBox();
    assert.ok(equalCanvas.width < 0.8 * largeCanvas.width, `the axial view shrinks: ${equalCanvas.width} vs ${largeCanvas.width}`);

    // A single view fills most of the window, and its canvas its cell.
    await page.getByTestId('layout-single').click();
    let m = await cells(page);
    assert.equal(area(m.cells[1]) + area(m.cells[2]), 0, 'coronal and sagittal are hidden');
    assert.ok(area(m.cells[0]) > 0.55 * m.width * m.height, `single view ${area(m.cells[0])} of ${m.width * m.height}`);
    const single = await page.getByTestId('axial-canvas').boundingBox();
    assert.ok(
      single.width >= 0.97 * m.cells[0].width || single.height >= 0.85 * m.cells[0].height,
      `the canvas fills its cell: ${JSON.stringify(single)} in ${JSON.stringify(m.cells[0])}`,
    );
    assert.ok(single.width > 1.05 * largeCanvas.width, 'larger than the large view');

    // L: the next layout (back to one large and two small).
    await page.keyboard.press('l');
    assert.equal(await planes.getAttribute('data-layout'), 'large');
    // F picks the view under the pointer to show alone; F again goes back
    // with that view large; A makes the axial view large again.
    await page.getByTestId('coronal-canvas').hover();
    await page.keyboard.press('f');
    assert.equal(await planes.getAttribute('data-layout'), 'single');
    m = await cells(page);
    assert.ok(area(m.cells[1]) > 0.55 * m.width * m.height && area(m.cells[0]) === 0, 'the coronal view alone');
    await page.keyboard.press('f');
    m = await cells(page);
    assert.equal(await planes.getAttribute('data-layout'), 'large');
    assert.ok(area(m.cells[1]) > 2 * area(m.cells[0]), 'coronal large, axial small');
    await page.keyboard.press('a');
    m = await cells(page);
    assert.ok(area(m.cells[0]) > 2 * area(m.cells[1]), 'axial large again');
    // A double-click shows that view alone; the buttons pick the view too.
    await page.getByTestId('sagittal-canvas').dblclick();
    m = await cells(page);
    assert.ok(area(m.cells[2]) > 0.55 * m.width * m.height && area(m.cells[0]) === 0, 'the sagittal view alone');
    await page.getByTestId('main-axial').click();
    m = await cells(page);
    assert.ok(area(m.cells[0]) > 0.55 * m.width * m.height && area(m.cells[2]) === 0, 'the axial view alone');
    await page.getByTestId('layout-large').click();
    assert.equal(await page.getByTestId('layout-large').getAttribute('aria-pressed'), 'true');

    // Keys on the focused view: slices, window presets, zoom.
    const slice = () => page.getByTestId('slice-axial').inputValue().then(Number);
    const start = await slice();
    await page.getByTestId('axial-canvas').focus();
    await page.keyboard.press('ArrowDown');
    assert.equal(await slice(), start + 1);
    await page.keyboard.press('PageUp');
    assert.equal(await slice(), start + 1 - 10);
    await page.keyboard.press('Home');
    assert.equal(await slice(), 0);
    await page.keyboard.press('2');
    assert.equal(await page.getByTestId('window-values').textContent(), 'W 400 / L 40');
    assert.equal(await page.getByTestId('window-preset').inputValue(), 'mediastinum');
    await page.keyboard.press('1');
    assert.equal(await page.getByTestId('window-values').textContent(), 'W 1500 / L -600');
    const before = await page.getByTestId('axial-canvas').boundingBox();
    await page.keyboard.press('+');
    const zoomed = await page.getByTestId('axial-canvas').boundingBox();
    assert.ok(Math.abs(zoomed.width / before.width - 1.25) < 0.01, 'zoomed in');
    await page.keyboard.press('0');

    // The list of shortcuts: a button and "?" open it, Escape closes it.
    await page.keyboard.press('?');
    const list = page.getByTestId('shortcuts');
    await list.waitFor();
    const text = await list.textContent();
    for (const key of ['Page Up', 'double-click', 'A · C · S', 'zoom in']) assert.ok(text.includes(key), `lists ${key}`);
    await page.keyboard.press('Escape');
    await list.waitFor({ state: 'hidden' });
    await page.getByTestId('shortcuts-button').click();
    await list.waitFor();
    await page.getByTestId('shortcuts-close').click();
    await list.waitFor({ state: 'hidden' });
    assert.deepEqual(errors, []);
  } finally {
    await page.context().close();
  }
});

test('on a devicePixelRatio 2 screen the views are drawn at twice their CSS size', async () => {
  const { page, errors } = await openPage(shared.browser, shared.server.url, { viewport: LAPTOP, deviceScaleFactor: 2 });
  try {
    await openSample(page);
    const backing = () =>
      page.getByTestId('axial-canvas').evaluate((c) => ({
        width: c.width,
        height: c.height,
        css: [c.clientWidth, c.clientHeight],
        dpr: window.devicePixelRatio,
      }));
    const b = await backing();
    assert.equal(b.dpr, 2);
    assert.ok(b.width >= 2 * b.css[0] - 1 && b.height >= 2 * b.css[1] - 1, `backing ${b.width} x ${b.height} for ${b.css}`);
    // Zoomed in, the backing store grows with the zoom, so the image stays sharp.
    await page.getByTestId('axial-canvas').focus();
    await page.keyboard.press('+');
    const z = await backing();
    assert.ok(z.width >= 2 * 1.25 * b.css[0] - 2, `zoomed backing ${z.width} for ${b.css[0]} CSS px`);
    assert.deepEqual(errors, []);
  } finally {
    await page.context().close();
  }
});

test('the diagnostics are in a dialog; the backend badge stays in the header', async () => {
  const { page, errors } = await openPage(shared.browser, shared.server.url, { viewport: LAPTOP });
  try {
    await openSample(page);
    const badge = page.locator('header [data-testid="backend-badge"][data-backend]');
    await badge.waitFor({ timeout: 60_000 });
    assert.equal(await page.getByTestId('run-model').isVisible(), false, 'no self-check on the page itself');
    await page.getByTestId('about-button').click();
    const about = page.getByTestId('about');
    await about.waitFor();
    assert.match(await page.getByTestId('backend-details').textContent(), /CPU: .*running on the CPU/);
    assert.ok(await page.getByTestId('run-model').isVisible(), 'the self-check is in the dialog');
    assert.ok(await page.getByTestId('model-input').isVisible(), 'and the site model input');
    await page.keyboard.press('Escape');
    await about.waitFor({ state: 'hidden' });
    assert.ok(await badge.isVisible());
    assert.deepEqual(errors, []);
  } finally {
    await page.context().close();
  }
});
