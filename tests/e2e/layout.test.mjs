// The page at the sizes clinicians use — a laptop (1280 x 720), a 4K screen
// (3840 x 2160, and 1920 x 1080 at 2x), a tablet upright and sideways (touch)
// — with a CT open: nothing is wider than the screen, the three views are
// whole and large enough to read, the text is readable; every control has a
// name for assistive technology; and the page works from the keyboard alone
// (open a sample, pick the network, which diagnoses it, and diagnose again).
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { sharedBrowser, openPage, assertPrivate, defaultModelArgs, diagnoseOnPage } from './harness.mjs';

const DIST = process.env.DIST_DIR ?? new URL('../../dist/', import.meta.url).pathname;
const ARTIFACTS = process.env.E2E_ARTIFACTS ?? new URL('./artifacts/', import.meta.url).pathname;
const SAMPLE = 'covid-19-like-1.zip';

const LAPTOP = { viewport: { width: 1280, height: 720 } };
const SCREENS = [
  { name: 'laptop-1280x720', ...LAPTOP },
  { name: '4k-3840x2160', viewport: { width: 3840, height: 2160 } },
  { name: 'hidpi-1920x1080@2x', viewport: { width: 1920, height: 1080 }, deviceScaleFactor: 2 },
  { name: 'tablet-portrait', viewport: { width: 768, height: 1024 }, deviceScaleFactor: 2, hasTouch: true, isMobile: true },
  { name: 'tablet-landscape', viewport: { width: 1024, height: 768 }, deviceScaleFactor: 2, hasTouch: true, isMobile: true },
];

const shared = sharedBrowser(DIST, { webgpu: false });
before(() => mkdirSync(ARTIFACTS, { recursive: true }));

async function openSample(page) {
  await page.getByTestId('sample-menu').selectOption(SAMPLE);
  await page.getByTestId('volume-info').waitFor({ timeout: 120_000 });
}

for (const { name, ...options } of SCREENS) {
  test(`readable and whole on a ${name} screen`, async () => {
    const { page, errors } = await openPage(shared.browser, shared.server.url, options);
    try {
      await openSample(page);
      const layout = await page.evaluate(() => {
        const rect = (id) => document.querySelector(`[data-testid="${id}"]`).getBoundingClientRect();
        const body = getComputedStyle(document.body);
        return {
          width: window.innerWidth,
          scrollWidth: document.documentElement.scrollWidth,
          views: ['axial-canvas', 'coronal-canvas', 'sagittal-canvas'].map((id) => {
            const r = rect(id);
            return { id, left: r.left, right: r.right, width: r.width };
          }),
          fontSize: parseFloat(body.fontSize),
          spilling: [...document.querySelectorAll('.panel')]
            .filter((panel) => panel.scrollWidth > panel.clientWidth)
            .map((panel) => panel.querySelector('h2')?.textContent),
          button: rect('diagnose').height,
        };
      });
      assert.ok(layout.scrollWidth <= layout.width, `no sideways scrolling: ${layout.scrollWidth} > ${layout.width}`);
      assert.deepEqual(layout.spilling, [], 'nothing spills out of its panel');
      for (const view of layout.views) {
        assert.ok(view.left >= 0 && view.right <= layout.width + 0.5, `${view.id} inside the screen: ${JSON.stringify(view)}`);
        assert.ok(view.width >= 240, `${view.id} large enough to read: ${view.width} px`);
      }
      assert.ok(layout.fontSize >= 15, `text size ${layout.fontSize} px`);
      // Touch targets: at least 24 CSS px high (WCAG 2.2 target size).
      assert.ok(layout.button >= 24, `the Diagnose button is ${layout.button} px high`);
      await page.screenshot({ path: join(ARTIFACTS, `layout-${name}.png`), fullPage: true });
      assert.deepEqual(errors, []);
    } finally {
      await page.context().close();
    }
  });
}

test('every control has a name for assistive technology', async () => {
  const { page } = await openPage(shared.browser, shared.server.url, LAPTOP);
  try {
    await openSample(page);
    const unnamed = await page.evaluate(() => {
      const name = (el) => {
        const by = el.getAttribute('aria-labelledby');
        const parts = [
          el.getAttribute('aria-label'),
          by && by.split(/\s+/).map((id) => document.getElementById(id)?.textContent).join(' '),
          el.labels && [...el.labels].map((l) => l.textContent).join(' '),
          el.tagName === 'BUTTON' && el.textContent,
          el.getAttribute('title'),
        ];
        return parts.filter(Boolean).join(' ').trim();
      };
      const controls = [...document.querySelectorAll('input, select, button, textarea, canvas')];
      return {
        count: controls.length,
        unnamed: controls.filter((el) => !name(el)).map((el) => el.outerHTML.slice(0, 120)),
      };
    });
    assert.ok(unnamed.count >= 15, `controls found: ${unnamed.count}`);
    assert.deepEqual(unnamed.unnamed, []);
  } finally {
    await page.context().close();
  }
});

test('the page works from the keyboard alone', async () => {
  const { page, requests, errors } = await openPage(shared.browser, shared.server.url, LAPTOP);
  try {
    await page.locator('[data-testid="backend-badge"][data-backend]').waitFor({ timeout: 60_000 });
    /** Presses Tab until the control `id` has the focus. */
    const tabTo = async (id) => {
      for (let n = 0; n < 80; n++) {
        await page.keyboard.press('Tab');
        if (await page.evaluate((id) => document.activeElement?.dataset?.testid === id, id)) return;
      }
      assert.fail(`Tab never reached ${id}`);
    };
    await tabTo('sample-menu');
    await page.keyboard.press('ArrowDown');
    await page.getByTestId('volume-info').waitFor({ timeout: 120_000 });
    await tabTo('diagnose-preset');
    // The default model when one ships (preselected); else the arrow key
    // picks the quick untrained network.
    const shipped = defaultModelArgs()[0] === '--weights';
    if (!shipped) await page.keyboard.press('ArrowDown');
    assert.equal(await page.getByTestId('diagnose-preset').inputValue(), shipped ? 'bundled' : 'tiny');
    // Opening the CT diagnosed it, and picking the network again with that one.
    const first = await diagnoseOnPage(page, 300_000);
    const run = Number(await page.getByTestId('diagnosis-json').getAttribute('data-run'));
    await tabTo('diagnose');
    // Focus is visible where it is.
    const outline = await page.evaluate(() => getComputedStyle(document.activeElement).outlineStyle);
    assert.notEqual(outline, 'none', 'the focused button shows a focus ring');
    // Enter on Diagnose runs it again.
    await page.keyboard.press('Enter');
    const again = page.locator(`[data-testid="diagnosis-json"][data-run="${run + 1}"]`);
    await again.waitFor({ state: 'attached', timeout: 300_000 });
    assert.deepEqual(JSON.parse(await again.textContent()).diagnosis.probabilities, first.diagnosis.probabilities);
    const probability = Number(await page.getByTestId('result-probability').textContent());
    assert.ok(probability >= 0 && probability <= 1, `probability ${probability}`);
    assertPrivate(requests, shared.server.url);
    assert.deepEqual(errors, []);
  } finally {
    await page.context().close();
  }
});
