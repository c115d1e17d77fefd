// Opening a CT in the page: files, a folder and a .zip are read in the
// browser with the same code as natively (`dsan inspect` is the reference),
// the default series is assembled and drawn, bad files are listed, and no
// byte leaves the page.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { serveDist, launch, openPage, assertPrivate, tempDir } from './harness.mjs';

const DIST = process.env.DIST_DIR ?? new URL('../../dist/', import.meta.url).pathname;
const DSAN = process.env.DSAN_BIN ?? 'dsan';
const DATA = process.env.DSAN_SHARED_DATA ?? new URL('../../../shared/data/', import.meta.url).pathname;
const CAP001 = join(DATA, 'ct-real/covid-ct-md/subsampled-every-4th/CAP/cap001');
const CONFORMANCE = join(DATA, 'dicom-conformance/pydicom-test_files');
// 20 slices of 512x512, JPEG 2000 lossless (TotalSegmentator's example CT).
const J2K_SERIES = join(DATA, 'ct-real/totalsegmentator-example/dicom');

let server;
let browser;
before(async () => {
  server = await serveDist(DIST);
  browser = await launch({ webgpu: false });
});
after(async () => {
  await browser?.close();
  await server?.close();
});

function inspect(paths) {
  return JSON.parse(execFileSync(DSAN, ['inspect', ...paths], { encoding: 'utf8' }));
}

async function studyReport(page) {
  const json = page.getByTestId('study-json');
  await json.waitFor({ state: 'attached', timeout: 120_000 });
  return JSON.parse(await json.textContent());
}

function assertSameStudy(ours, native) {
  assert.equal(ours.series.length, native.series.length, 'series count');
  native.series.forEach((expected, i) => {
    const got = ours.series[i];
    for (const key of ['default', 'series_uid', 'modality', 'slices', 'image_size', 'plane', 'unusable']) {
      assert.deepEqual(got[key], expected[key], `series ${i} ${key}`);
    }
    for (const key of ['hu_min', 'hu_max', 'hu_mean', 'slice_spacing']) {
      const tol = 1e-6 * Math.max(1, Math.abs(expected[key] ?? 0));
      assert.ok(Math.abs((got[key] ?? 0) - (expected[key] ?? 0)) <= tol, `series ${i} ${key}: ${got[key]} vs ${expected[key]}`);
    }
  });
  assert.equal(ours.skipped.length, native.skipped.length, 'skipped count');
}

async function assertDrawn(page, slices) {
  const info = page.getByTestId('volume-info');
  await info.waitFor({ timeout: 120_000 });
  assert.match(await info.textContent(), new RegExp(`${slices} slices of 512x512`));
  const distinct = await page.getByTestId('axial-canvas').evaluate((canvas) => {
    const { data } = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height);
    const greys = new Set();
    for (let i = 0; i < data.length; i += 4 * 97) greys.add(data[i]);
    return greys.size;
  });
  assert.ok(distinct > 20, `the slice is drawn (${distinct} grey levels)`);
}

test('files of several kinds: same series and HU as natively, bad files listed', async () => {
  const files = [
    ...readdirSync(CAP001).sort().map((f) => join(CAP001, f)), // JPEG lossless CT, 42 slices
    join(CONFORMANCE, 'CT_small.dcm'), // explicit VR little endian
    join(CONFORMANCE, 'MR_small_RLE.dcm'), // RLE
    join(CONFORMANCE, 'MR_truncated.dcm'), // truncated pixel data
    join(DATA, 'ct-real/covid-ct-md/README.md'), // not DICOM
  ];
  const { page, requests, errors } = await openPage(browser, server.url);
  await page.getByTestId('file-input').setInputFiles(files);
  const ours = await studyReport(page);
  assertSameStudy(ours, inspect(files));
  const listed = await page.getByTestId('error-list').textContent();
  for (const bad of ['MR_truncated.dcm', 'README.md']) assert.ok(listed.includes(bad), `${bad} listed`);
  await assertDrawn(page, 42);
  assertPrivate(requests, new URL(server.url).origin);
  assert.deepEqual(errors, []);
});

test('a folder and a .zip of the same series give the same volume', async () => {
  const native = inspect([CAP001]);
  const { page, errors } = await openPage(browser, server.url);
  await page.getByTestId('folder-input').setInputFiles(CAP001);
  assertSameStudy(await studyReport(page), native);
  await assertDrawn(page, 42);

  const dir = tempDir('dsan-zip-');
  const zip = join(dir, 'cap001.zip');
  execFileSync('python3', ['-c', `
import sys, zipfile, pathlib
with zipfile.ZipFile(sys.argv[1], 'w', zipfile.ZIP_DEFLATED) as z:
    for p in sorted(pathlib.Path(sys.argv[2]).iterdir()):
        z.write(p, 'export/' + p.name)
`, zip, CAP001]);
  await page.reload();
  await page.getByTestId('file-input').setInputFiles(zip);
  assertSameStudy(await studyReport(page), native);
  await assertDrawn(page, 42);
  assert.deepEqual(errors, []);
  assert.equal(basename(zip), 'cap001.zip');
});

test('a JPEG 2000 series is decoded in the browser as natively', async () => {
  const native = inspect([J2K_SERIES]);
  assert.equal(native.skipped.length, 0, 'natively every file is read');
  const { page, requests, errors } = await openPage(browser, server.url);
  await page.getByTestId('folder-input').setInputFiles(J2K_SERIES);
  const ours = await studyReport(page);
  assertSameStudy(ours, native);
  assert.deepEqual(ours.skipped, []);
  await assertDrawn(page, 20);
  assertPrivate(requests, new URL(server.url).origin);
  assert.deepEqual(errors, []);
});

/** Drops the files or folders at `paths` on the drop zone, as the OS would (CDP drag events). */
async function dropPaths(page, paths) {
  // Once the page is ready (its backend chosen, the bundled model loaded, so
  // the layout no longer moves), where a user would drop.
  await page.locator('[data-testid="backend-badge"][data-backend]').waitFor({ timeout: 60_000 });
  await page.getByText('Loading the bundled model…').waitFor({ state: 'detached', timeout: 60_000 });
  const zone = await page.getByTestId('drop-zone').boundingBox();
  const [x, y] = [zone.x + zone.width / 2, zone.y + zone.height / 2];
  const cdp = await page.context().newCDPSession(page);
  const data = { items: [], files: paths, dragOperationsMask: 1 };
  for (const type of ['dragEnter', 'dragOver', 'drop']) {
    await cdp.send('Input.dispatchDragEvent', { type, x, y, data });
  }
}

test('a folder dropped on the page (nested, with a stray file) gives the same study', async () => {
  const root = tempDir('dsan-drop-');
  const series = join(root, 'export', 'CT', 'series-1');
  mkdirSync(series, { recursive: true });
  cpSync(CAP001, series, { recursive: true });
  writeFileSync(join(root, 'export', 'notes.txt'), 'not a DICOM file\n');
  const native = inspect([root]);
  const { page, requests, errors } = await openPage(browser, server.url);
  await dropPaths(page, [join(root, 'export')]);
  const ours = await studyReport(page);
  assertSameStudy(ours, native);
  assert.match(ours.skipped[0], /export\/notes\.txt/, 'the stray file is listed with its path in the drop');
  await assertDrawn(page, 42);
  assertPrivate(requests, new URL(server.url).origin);
  assert.deepEqual(errors, []);
});

test('the three-plane viewer: linked crosshairs, sliders, wheel and window presets', async () => {
  const { page, errors } = await openPage(browser, server.url);
  await page.getByTestId('folder-input').setInputFiles(CAP001);
  await assertDrawn(page, 42);
  // The images' own size (the canvas is drawn at the screen's pixel density).
  const size = (id) => page.getByTestId(id).evaluate((c) => [Number(c.dataset.imageWidth), Number(c.dataset.imageHeight)]);
  assert.deepEqual(await size('coronal-canvas'), [512, 42]);
  assert.deepEqual(await size('sagittal-canvas'), [512, 42]);
  // Physical aspect: 42 slices of 8 mm against 512 x 0.59 mm.
  const ratio = await page.getByTestId('coronal-canvas').evaluate((c) => c.clientWidth / c.clientHeight);
  assert.ok(Math.abs(ratio - (512 * 0.5898) / (42 * 8)) < 0.05, `coronal aspect ${ratio}`);
  const value = (id) => page.getByTestId(id).inputValue().then(Number);
  assert.equal(await value('slice-axial'), 21);

  // A click in the axial view moves the coronal and sagittal views there.
  const box = await page.getByTestId('axial-canvas').boundingBox();
  await page.getByTestId('axial-canvas').click({ position: { x: box.width * 0.25, y: box.height * 0.75 } });
  assert.ok(Math.abs((await value('slice-sagittal')) - 128) <= 1, 'column under the click');
  assert.ok(Math.abs((await value('slice-coronal')) - 384) <= 1, `row under the click: ${await value('slice-coronal')} ${JSON.stringify(box)}`);
  assert.equal(await value('slice-axial'), 21, 'the clicked view keeps its slice');
  await page.getByTestId('axial-canvas').hover({ position: { x: box.width * 0.5, y: box.height * 0.5 } });
  assert.match(await page.getByTestId('hu-readout').textContent(), /^-?\d+ HU at slice 22, row 25\d, column 25\d$/);

  // Wheel and keyboard page through the slices.
  await page.mouse.wheel(0, 100);
  await page.waitForFunction(() => document.querySelector('[data-testid="slice-axial"]').value === '22');
  await page.getByTestId('slice-axial').focus();
  await page.keyboard.press('ArrowLeft');
  await page.keyboard.press('ArrowLeft');
  assert.equal(await value('slice-axial'), 20);

  // A window preset redraws the image.
  const checksum = () => page.getByTestId('axial-canvas').evaluate((c) => {
    const { data } = c.getContext('2d').getImageData(0, 0, c.width, c.height);
    let sum = 0;
    for (let i = 0; i < data.length; i += 4) sum += data[i];
    return sum;
  });
  const lung = await checksum();
  await page.getByTestId('window-preset').selectOption('mediastinum');
  assert.notEqual(await checksum(), lung);
  assert.equal(await page.getByTestId('window-values').textContent(), 'W 400 / L 40');

  // Dragging on an image sets the window (4 HU of width per pixel across,
  // 2 HU of level per pixel down) and does not move the crosshair.
  const axial = page.getByTestId('axial-canvas');
  const at = await axial.boundingBox();
  const before = [await value('slice-sagittal'), await value('slice-coronal')];
  const drawnBefore = await checksum();
  await page.mouse.move(at.x + at.width / 2, at.y + at.height / 2);
  await page.mouse.down();
  await page.mouse.move(at.x + at.width / 2 + 50, at.y + at.height / 2 + 20, { steps: 5 });
  await page.mouse.up();
  assert.equal(await page.getByTestId('window-values').textContent(), 'W 600 / L 80');
  assert.notEqual(await checksum(), drawnBefore);
  assert.deepEqual([await value('slice-sagittal'), await value('slice-coronal')], before, 'a drag is not a click');

  // Ctrl-wheel zooms the view about its centre, shift-drag pans it, 0 resets.
  await page.keyboard.down('Control');
  await page.mouse.wheel(0, -100);
  await page.keyboard.up('Control');
  const zoomed = await axial.boundingBox();
  assert.ok(Math.abs(zoomed.width / at.width - 1.25) < 0.01, `zoomed ${zoomed.width} vs ${at.width}`);
  assert.equal(await value('slice-axial'), 20, 'ctrl-wheel does not page');
  await page.keyboard.down('Shift');
  await page.mouse.move(at.x + at.width / 2, at.y + at.height / 2);
  await page.mouse.down();
  await page.mouse.move(at.x + at.width / 2 - 40, at.y + at.height / 2, { steps: 4 });
  await page.mouse.up();
  await page.keyboard.up('Shift');
  const panned = await axial.boundingBox();
  assert.ok(Math.abs(panned.x - zoomed.x + 40) < 1, `panned ${panned.x} vs ${zoomed.x}`);
  assert.equal(await page.getByTestId('window-values').textContent(), 'W 600 / L 80', 'panning keeps the window');
  await axial.focus();
  await page.keyboard.press('0');
  const reset = await axial.boundingBox();
  assert.ok(Math.abs(reset.x - at.x) < 1 && Math.abs(reset.width - at.width) < 1, 'reset');
  assert.deepEqual(errors, []);
});

test('a NIfTI volume is read and shown like natively', async () => {
  const file = new URL('../fixtures/nifti/sform_scaled.nii.gz', import.meta.url).pathname;
  const { page, errors } = await openPage(browser, server.url);
  await page.getByTestId('file-input').setInputFiles(file);
  const ours = await studyReport(page);
  const native = inspect([file]);
  assert.deepEqual(ours.volumes.map((v) => v.dims), native.volumes.map((v) => v.dims));
  assert.equal(ours.volumes[0].hu_mean, native.volumes[0].hu_mean);
  const info = page.getByTestId('volume-info');
  await info.waitFor();
  assert.match(await info.textContent(), /3 slices of 4x5/);
  assert.deepEqual(errors, []);
});
