// The "try a sample" menu: a bundled sample case (public/samples/, synthetic
// phantoms) is fetched from the site itself, opened like dropped files and
// diagnosed with the result `dsan predict` gives for the same .zip natively.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { serveDist, launch, openPage, diagnoseOnPage, assertPrivate, defaultModelArgs } from './harness.mjs';

const DIST = process.env.DIST_DIR ?? new URL('../../dist/', import.meta.url).pathname;
const DSAN = process.env.DSAN_BIN ?? 'dsan';
const SAMPLES = new URL('../../public/samples/', import.meta.url).pathname;
const ARTIFACTS = process.env.E2E_ARTIFACTS ?? new URL('./artifacts/', import.meta.url).pathname;
const SAMPLE = 'covid-19-like-1.zip';

let server;
let native;
before(async () => {
  server = await serveDist(DIST);
  mkdirSync(ARTIFACTS, { recursive: true });
  native = JSON.parse(
    execFileSync(DSAN, ['predict', join(SAMPLES, SAMPLE), ...defaultModelArgs()], {
      encoding: 'utf8',
      maxBuffer: 64 << 20,
    }),
  ).diagnosis;
});
after(async () => {
  await server?.close();
});

test('a bundled sample opens from the menu and is diagnosed like natively', async () => {
  const browser = await launch({ webgpu: false });
  try {
    const { page, requests, errors } = await openPage(browser, server.url);
    await page.locator('[data-testid="backend-badge"][data-backend]').waitFor({ timeout: 60_000 });
    const menu = page.getByTestId('sample-menu');
    const offered = await menu.locator('option').evaluateAll((o) => o.map((x) => x.value).filter(Boolean));
    assert.equal(offered.length, 4);
    await menu.selectOption(SAMPLE);
    const info = page.getByTestId('volume-info');
    await info.waitFor({ timeout: 60_000 });
    assert.match(await info.textContent(), /synthetic chest phantom: 48 slices of 160x160/);
    const report = await diagnoseOnPage(page, 300_000);
    const ours = report.diagnosis;
    ours.probabilities.forEach((p, i) =>
      assert.ok(Math.abs(p - native.probabilities[i]) <= 1e-3, `probability ${i}: ${p} vs ${native.probabilities[i]}`),
    );
    assert.ok(Math.abs(ours.lung_volume_ml - native.lung_volume_ml) < 1e-6, 'same lung mask');
    await page.screenshot({ path: join(ARTIFACTS, 'sample.png'), fullPage: true });
    await checkViewerOverlay(page);

    // The PNG report is drawn in the page and downloaded from a blob of this origin.
    const [download] = await Promise.all([
      page.waitForEvent('download'),
      page.getByTestId('export-png').click(),
    ]);
    assert.equal(download.suggestedFilename(), 'dsan-ct-report.png');
    const png = readFileSync(await download.path());
    assert.deepEqual([...png.subarray(0, 8)], [137, 80, 78, 71, 13, 10, 26, 10], 'PNG signature');
    const [width, height] = [png.readUInt32BE(16), png.readUInt32BE(20)];
    assert.equal(width, 1024);
    assert.ok(height >= 512, `height ${height}`);
    assert.ok(png.length > 50_000, `a CT image and text, ${png.length} bytes`);
    await download.saveAs(join(ARTIFACTS, 'report.png'));

    // The sample came from the site itself, as a plain GET (the service
    // worker's own copy, fetched when it installs, is not the page's).
    const fetched = requests.filter((r) => !r.worker && r.url.endsWith(`/samples/${SAMPLE}`));
    assert.equal(fetched.length, 1, 'the sample was fetched once');
    assertPrivate(requests, server.url);
    assert.deepEqual(errors, []);
  } finally {
    await browser.close();
  }
});

/** Pixels of a viewer canvas that are coloured (not grey), and the cyan ones. */
function colours(page, plane) {
  return page.getByTestId(`${plane}-canvas`).evaluate((c) => {
    const { data } = c.getContext('2d').getImageData(0, 0, c.width, c.height);
    let coloured = 0;
    let cyan = 0;
    let sum = 0;
    for (let i = 0; i < data.length; i += 4) {
      const [r, g, b] = [data[i], data[i + 1], data[i + 2]];
      if (Math.max(r, g, b) - Math.min(r, g, b) > 20) coloured += 1;
      if (r === 0 && g === 220 && b === 255) cyan += 1;
      sum += r + 3 * g + 7 * b;
    }
    return { coloured, cyan, sum };
  });
}

/**
 * After a diagnosis the crosshairs can jump to the attention's peak, and the
 * viewer overlays attention on all three planes through it, as its controls say.
 */
async function checkViewerOverlay(page) {
  await page.getByTestId('overlay-controls').waitFor();
  const planes = ['axial', 'coronal', 'sagittal'];
  const slices = () => Promise.all(planes.map((p) => page.getByTestId(`view-${p}`).locator('.slice-count').textContent()));
  // The crosshairs go to the attention's peak, by the button and by the key
  // (the views start through the volume's centre).
  const centre = await slices();
  await page.getByTestId('overlay-peak').click();
  const peak = await slices();
  assert.notDeepEqual(peak, centre, 'the peak is not the centre voxel');
  const box = await page.getByTestId('axial-canvas').boundingBox();
  await page.getByTestId('axial-canvas').click({ position: { x: box.width * 0.1, y: box.height * 0.1 } });
  assert.notDeepEqual(await slices(), peak, 'a click moves the crosshairs away');
  await page.keyboard.press('p');
  assert.deepEqual(await slices(), peak, 'P goes back to the peak');
  const all = () => Promise.all(planes.map((p) => colours(page, p)));
  const shown = await all();
  await page.getByTestId('overlay-toggle').uncheck();
  const hidden = await all();
  planes.forEach((p, n) =>
    assert.ok(shown[n].coloured > hidden[n].coloured + 50, `${p}: ${shown[n].coloured} coloured pixels vs ${hidden[n].coloured} without the overlay`),
  );
  await page.getByTestId('overlay-toggle').check();
  assert.deepEqual(await all(), shown, 'the overlay comes back as it was');

  // A higher threshold draws fewer pixels; zero opacity draws none.
  await page.getByTestId('overlay-threshold').fill('90');
  const high = await all();
  planes.forEach((p, n) => assert.ok(high[n].coloured < shown[n].coloured, `${p}: threshold 0.9 draws less`));
  await page.getByTestId('overlay-opacity').fill('0');
  assert.deepEqual((await all()).map((c) => c.coloured), hidden.map((c) => c.coloured), 'opacity 0');
  await page.getByTestId('overlay-opacity').fill('45');
  await page.getByTestId('overlay-threshold').fill('30');
  assert.deepEqual(await all(), shown, 'back to the defaults');

  // Each branch's map, another colormap and the lung outline change the picture.
  await page.getByTestId('overlay-map').selectOption('uniform');
  const uniform = await all();
  await page.getByTestId('overlay-map').selectOption('balanced');
  const balanced = await all();
  assert.notDeepEqual(uniform.map((c) => c.sum), balanced.map((c) => c.sum), 'the two branches differ');
  await page.getByTestId('overlay-map').selectOption('ensemble');
  await page.getByTestId('overlay-colormap').selectOption('jet');
  const jet = await all();
  planes.forEach((p, n) => assert.notEqual(jet[n].sum, shown[n].sum, `${p}: jet colours`));
  await page.getByTestId('overlay-colormap').selectOption('heat');
  assert.ok(shown.every((c) => c.cyan === 0), 'no outline by default');
  await page.getByTestId('outline-toggle').check();
  const outlined = await all();
  planes.forEach((p, n) => assert.ok(outlined[n].cyan > 20, `${p}: lung outline drawn (${outlined[n].cyan} px)`));
  await page.getByTestId('outline-toggle').uncheck();
}

