// A model trained and exported by `dsan` for the browser tests: a tiny
// network, one epoch on four small phantoms.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { tempDir } from './harness.mjs';

const DSAN = process.env.DSAN_BIN ?? 'dsan';

/** Runs `dsan` with `args` and returns its standard output. */
export const runDsan = (args) =>
  execFileSync(DSAN, args, { encoding: 'utf8', maxBuffer: 64 << 20, stdio: ['ignore', 'pipe', 'ignore'] });

/**
 * Trains and exports a tiny model named `name` on phantoms of `seed`, in a new
 * folder removed when the tests end: `{ work, card, weights }` (the run is
 * `work/run`).
 */
export function trainTinyModel(name, seed) {
  const work = tempDir('dsan-tiny-model-');
  runDsan(['phantoms', '--out', join(work, 'data'), '--n', '4', '--seed', String(seed), '--slices', '40', '--size', '96']);
  runDsan(['train', '--data', join(work, 'data'), '--preset', 'tiny', '--epochs', '1', '--batch-size', '2', '--out', join(work, 'run')]);
  const card = runDsan(['export', '--run', join(work, 'run'), '--out', join(work, 'model'), '--name', name, '--synthetic']).trim();
  return { work, card, weights: join(dirname(card), JSON.parse(readFileSync(card, 'utf8')).weights.file) };
}
