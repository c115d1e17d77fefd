// A site's own model is input from outside like a CT: model cards that
// describe more than this software runs (an absurd grid or depth, another
// architecture than their weights) are refused in the page with the reason,
// before anything is allocated for them, and the page keeps working (the
// genuine pair loads afterwards), and so is a record holding a parameter id
// Burn cannot read. The same files, and a record whose header declares
// tensors its bytes do not hold, are refused natively in tests/weights.rs.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { serveDist, launch, openPage, assertPrivate, tempDir } from './harness.mjs';
import { trainTinyModel } from './tiny-model.mjs';

const DIST = process.env.DIST_DIR ?? new URL('../../dist/', import.meta.url).pathname;

let server;
let card;
let weights;
before(async () => {
  server = await serveDist(DIST);
  ({ card, weights } = trainTinyModel('hostile test model', 78));
});
after(async () => {
  await server?.close();
});

/** A folder with `card` (an object) as card.json beside `bytes` under the card's weights name. */
function pair(name, cardJson, bytes) {
  const dir = tempDir(`dsan-${name}-`);
  writeFileSync(join(dir, 'card.json'), JSON.stringify(cardJson));
  writeFileSync(join(dir, cardJson.weights.file), bytes);
  return [join(dir, 'card.json'), join(dir, cardJson.weights.file)];
}

test('model files past what the page runs are refused with the reason; the page keeps working', async () => {
  const genuine = JSON.parse(readFileSync(card, 'utf8'));
  const bytes = readFileSync(weights);
  const edited = (edit) => {
    const copy = structuredClone(genuine);
    edit(copy);
    return copy;
  };
  const cases = [
    ['absurd-grid', edited((c) => { c.architecture.input = [64, 100000, 100000]; }), bytes, /input is 100000, more than the 1024/],
    ['absurd-layers', edited((c) => { c.architecture.layers = [3, 4, 1000000000, 3]; }), bytes, /layers is 1000000000/],
    ['other-architecture', edited((c) => { c.architecture.layers = [3, 4, 6, 3]; c.architecture.base_width = 8; }), bytes,
      /half-precision record of its architecture/],
    // What the load_model fuzz target found: a parameter id Burn panics on
    // (here the first id's last base32 digit made 31, setting a bit past its 8 bytes).
    ...(() => {
      const unreadable = Buffer.from(bytes);
      const at = unreadable.indexOf(Buffer.from([0xa2, 0x69, 0x64, 0xad])) + 4;
      unreadable[at + 12] = 'v'.charCodeAt(0);
      const declared = edited((c) => {
        c.weights.sha256 = createHash('sha256').update(unreadable).digest('hex');
      });
      return [['unreadable-parameter-id', declared, unreadable, /a parameter id Burn cannot read/]];
    })(),
  ];
  const browser = await launch({ webgpu: false });
  try {
    const { page, requests, errors } = await openPage(browser, server.url);
    await page.locator('[data-testid="backend-badge"][data-backend]').waitFor({ timeout: 60_000 });
    const refusal = page.getByTestId('model-error');
    for (const [name, hostile, data, reason] of cases) {
      await page.getByTestId('model-input').setInputFiles(pair(name, hostile, data));
      // The refusal of the previous case may still be shown: wait for this one's.
      await refusal.filter({ hasText: reason }).waitFor({ timeout: 60_000 });
      const text = await refusal.textContent();
      assert.match(text, reason, `${name}: ${text}`);
      assert.match(text, /card\.json|\.mpk/, `${name}: the message names the file: ${text}`);
      assert.equal(await page.getByTestId('model-loaded').count(), 0, `${name}: nothing loaded`);
    }
    await page.getByTestId('model-input').setInputFiles([card, weights]);
    await page.getByTestId('model-loaded').waitFor({ timeout: 60_000 });
    assert.equal(await refusal.count(), 0, 'the refusals are cleared');
    assertPrivate(requests, server.url);
    assert.deepEqual(errors, []);
  } finally {
    await browser.close();
  }
});
