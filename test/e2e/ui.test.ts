/**
 * The workbench in Debian's Chromium against web mode: import, add a backbone, extract,
 * train Ω and Ψ with live charts, compare runs, cancel a job; screenshots at 1280×800 go to
 * test-artifacts/ and every page is checked for horizontal overflow.
 */
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, before, describe, it } from 'node:test';
import * as ort from 'onnxruntime-node';
import { chromium, type Browser, type Page } from 'playwright-core';
import sharp from 'sharp';

import { openDb, type Db } from '../../electron/engine/db.js';
import { decodeModel, encodeModel } from '../../electron/engine/export/index.js';
import { listRuns, startRun } from '../../electron/engine/runs/index.js';
import { classifyImage, type HeadReport } from '../../electron/engine/training/index.js';
import { JobRunner } from '../../electron/jobs/runner.js';
import { startWebServer } from '../../electron/web/server.js';
import { CIFAR10_CLASSES, samples } from '../helpers/fixtures.js';
import { MODELS, REPO, tempDir } from '../helpers/shared.js';

const CHROMIUM = process.env.EMBAUG_CHROMIUM ?? '/usr/bin/chromium';
const ARTIFACTS = join(REPO, 'test-artifacts');

describe('the workbench UI in Chromium (web mode)', { skip: !existsSync(CHROMIUM) && `no Chromium at ${CHROMIUM}: install Debian's chromium (.ci/run does)` }, () => {
  const tmp = tempDir();
  let db: Db, jobs: JobRunner, web: Awaited<ReturnType<typeof startWebServer>>, browser: Browser, page: Page;
  const errors: string[] = [];

  before(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    // An image folder of CIFAR-10 images, train and test, one folder per class.
    const root = join(tmp.dir, 'images');
    for (const [split, shard, n] of [['train', 'train-000000.tar', 500], ['test', 'test-000000.tar', 200]] as const)
      for (const s of await samples(shard, n)) {
        const dir = join(root, split, CIFAR10_CLASSES[s.label]);
        mkdirSync(dir, { recursive: true });
        writeFileSync(join(dir, `${s.key}.jpg`), s.jpeg);
      }
    writeFileSync(join(root, 'train', 'cat', 'broken.jpg'), 'not a jpeg');
    const dbPath = join(tmp.dir, 'ui.db');
    db = openDb(dbPath);
    jobs = new JobRunner({ db, dbPath, threads: 2, settings: { modelsDir: MODELS, dataDir: tmp.dir, outDir: tmp.dir } });
    web = await startWebServer({ db, dbPath, jobs, staticDir: join(REPO, 'dist', 'renderer'), version: 'test' });
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-background-networking', '--disable-component-update', '--disable-gpu'] });
    page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    page.on('pageerror', (e) => errors.push(String(e)));
    page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
    await page.goto(web.url);
  });

  after(async () => {
    await browser?.close();
    await jobs?.close();
    await web?.close();
    db?.close();
    tmp.cleanup();
  });

  const shot = (name: string) => page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });
  const view = (name: string) => page.getByRole('navigation').getByRole('button', { name, exact: true }).click();
  const finished = (title: RegExp) => page.getByTestId('job').filter({ hasText: title }).first().locator('.badge.completed').waitFor({ timeout: 120_000 });
  // Clicks and waits for the job that this click started: an earlier job of the same title may already show as done.
  async function startAndFinish(button: string, title: RegExp) {
    const known = await page.getByTestId('job').evaluateAll((cards) => cards.map((c) => c.getAttribute('data-job-id')));
    await page.getByRole('button', { name: button }).click();
    const fresh = page.locator(`[data-testid="job"]${known.map((id) => `:not([data-job-id="${id}"])`).join('')}`).filter({ hasText: title });
    await fresh.first().locator('.badge.completed').waitFor({ timeout: 120_000 });
  }

  async function noOverflow(where: string) {
    const over = await page.evaluate(() => {
      const out: string[] = [];
      if (document.documentElement.scrollWidth > window.innerWidth) out.push(`page ${document.documentElement.scrollWidth}px`);
      for (const el of document.querySelectorAll('.panel, nav, aside'))
        if (el.scrollWidth > el.clientWidth + 1) out.push(`${el.className} ${el.scrollWidth}>${el.clientWidth}`);
      return out;
    });
    assert.deepEqual(over, [], `${where}: content overflows`);
  }

  it('imports an image folder, showing progress, the skipped file, the histogram and the thumbnails', async () => {
    await view('Datasets');
    await page.getByLabel('Source').selectOption('folder');
    await page.getByLabel('Path').fill(join(tmp.dir, 'images'));
    await page.getByLabel('Path').press('Tab');
    // How it will be split, before anything is imported: here the folder's own train/ and test/.
    await page.getByTestId('import-preview').getByText(/701 image files in 10 classes\. Its own split is used: test 200, train 501\./).waitFor();
    await page.getByLabel('Name').fill('target');
    await startAndFinish('Import', /Import target/);
    await page.getByTestId('skipped').getByText('broken.jpg').waitFor();
    await page.getByRole('cell', { name: 'target' }).click();
    const grid = page.getByTestId('thumb-grid');
    await grid.locator('img').first().waitFor();
    // 500 train and 200 test images; broken.jpg is skipped.
    assert.equal(await grid.getAttribute('data-total'), '700');
    await page.getByLabel('Split').selectOption('test');
    await page.waitForFunction(() => document.querySelector('[data-testid="thumb-grid"]')?.getAttribute('data-total') === '200');
    await grid.locator('button.cell').first().click();
    await page.getByTestId('image-details').getByText('test', { exact: true }).waitFor();
    await noOverflow('datasets');
    await shot('01-datasets');
    // A new filter: the details of an image no longer in the grid go away.
    await page.getByLabel('Split').selectOption('train');
    await page.waitForFunction(() => document.querySelector('[data-testid="thumb-grid"]')?.getAttribute('data-total') === '500');
    assert.equal(await page.getByTestId('image-details').count(), 0);
    await grid.locator('button.cell').first().click();
    await page.getByTestId('image-details').getByText('train', { exact: true }).waitFor();
  });

  it('adds the tiny backbone and shows its details; a wrong path is explained', async () => {
    await view('Backbones');
    await page.getByLabel('ONNX file', { exact: true }).fill(join(tmp.dir, 'missing.onnx'));
    await page.getByRole('button', { name: 'Add backbone' }).click();
    await page.getByRole('alert').getByText(/No ONNX file at/).waitFor();
    // Picked, not typed: the browser lists the models folder's .onnx files only.
    await page.getByRole('button', { name: 'Browse for the ONNX file' }).click();
    await page.getByLabel('Start from').selectOption(MODELS);
    const files = page.getByTestId('picker-files');
    await files.getByRole('button', { name: 'tiny-resnet18-w4.onnx' }).waitFor();
    assert.ok((await files.getByRole('button').allInnerTexts()).every((n) => n.endsWith('.onnx')));
    await files.getByRole('button', { name: 'tiny-resnet18-w4.onnx' }).click();
    assert.match(await page.getByLabel('ONNX file', { exact: true }).inputValue(), /\/tiny-resnet18-w4\.onnx$/);
    await page.getByRole('button', { name: 'Add backbone' }).click();
    await page.getByRole('cell', { name: 'tiny-resnet18-w4' }).click();
    await page.getByTestId('backbone-details').getByText('"architecture": "resnet18"').waitFor();
    // A classifier without an embedding output, cut at the suggested tensor.
    const m = decodeModel(readFileSync(join(MODELS, 'tiny-resnet18-w4.onnx')));
    m.graph!.output = m.graph!.output!.filter((o) => o.name === 'logits');
    writeFileSync(join(tmp.dir, 'classifier.onnx'), encodeModel(m));
    const form = page.getByTestId('classifier-form');
    await form.getByLabel('Classifier ONNX').fill(join(tmp.dir, 'classifier.onnx'));
    await form.getByRole('button', { name: 'Find embedding candidates' }).click();
    assert.equal(await form.locator('select[name="tensor"]').inputValue(), 'embedding');
    await form.getByRole('button', { name: 'Cut and add' }).click();
    await page.getByRole('cell', { name: 'classifier', exact: true }).waitFor();
    await noOverflow('backbones');
    await shot('02-backbones');
  });

  it('extracts embeddings with progress and shows the cache', async () => {
    await view('Embeddings');
    await page.getByLabel('Augmentations').fill('identity hflip');
    await startAndFinish('Extract', /Extract identity, hflip/);
    await page.getByTestId('cache-stats').getByRole('cell', { name: 'hflip', exact: true }).waitFor();
    await noOverflow('embeddings');
    await shot('03-embeddings');
  });

  it('trains Ω with a live MSE chart and fidelity figures', async () => {
    await view('Augmentations (Ω)');
    await page.getByLabel('Augmentations').fill('hflip');
    await page.getByLabel('Epochs').fill('6');
    await page.getByRole('button', { name: 'Train Ω' }).click();
    const chart = page.getByTestId('chart').first();
    await chart.waitFor();
    await finished(/Train Ω hflip/);
    assert.equal(await chart.getAttribute('data-points'), '6');
    await page.getByTestId('omega-runs').getByRole('cell', { name: 'hflip' }).first().waitFor();
    // A random augmentation with the conditional form: its row shows MSE against |θ|.
    await page.getByLabel('Augmentations').fill('rotate');
    await page.getByLabel('Epochs').fill('2');
    await page.getByLabel('Form').selectOption('conditional-fourier');
    await startAndFinish('Train Ω', /Train Ω rotate/);
    const row = page.getByTestId('omega-runs').getByRole('row').filter({ hasText: 'rotate:max=15,min=-15' }).first();
    await row.getByRole('cell', { name: 'conditional-fourier' }).waitFor();
    const bins = page.getByTestId('omega-runs').getByRole('cell', { name: /held-out MSE against \|θ\|/ }).first();
    assert.match(await bins.innerText(), /0\.75–1: [\d.]+ \/ – \/ [\d.]+/);
    await page.getByLabel('Form').selectOption('auto');
    // With its sampling forms: their held-out figures in its row, the models kept for Heads (Ψ).
    await page.getByLabel('Augmentations').fill('hflip');
    await page.getByLabel('fit stochastic Ω too').check();
    await startAndFinish('Train Ω', /Train Ω hflip/);
    const forms = page.getByTestId('sampling-forms').first();
    await forms.waitFor();
    assert.match(await forms.innerText(), /identity [\d.e-]+ \/ [\d.e-]+ · mean [\d.e-]+ \/ [\d.e-]+ · residual-gauss [\d.e-]+ \/ [\d.e-]+ · shift-gauss .* · mdn [\d.e-]+ \/ [\d.e-]+/);
    await page.getByLabel('fit stochastic Ω too').uncheck();
    // An Ω that failed says why in its row (recorded through the runs' own lifecycle).
    const omegaOf = listRuns(db, { kind: 'omega' })[0];
    await startRun(db, { kind: 'omega', name: 'Ω hflip (planted failure)', backboneSha: omegaOf.backboneSha, config: { aug: 'hflip' } })
      .wrap(async () => { throw new Error('planted: the base pairs could not be read'); }, () => ({}))
      .catch(() => undefined);
    await view('Heads (Ψ)');
    await view('Augmentations (Ω)');
    assert.equal((await page.getByTestId('omega-error').first().innerText()).trim(), 'planted: the base pairs could not be read');
    await noOverflow('omega');
    await shot('04-omega');
  });

  it('trains heads with live loss and accuracy curves, in pixel and embed modes', async () => {
    await view('Heads (Ψ)');
    await page.getByLabel('Epochs').fill('5');
    await page.getByRole('button', { name: 'Train Ψ' }).click();
    await page.getByTestId('head-result').waitFor({ timeout: 120_000 });
    assert.match(await page.getByTestId('head-result').innerText(), /Test accuracy: \d+\.\d\d%/);
    assert.equal(await page.getByTestId('chart').first().getAttribute('data-points'), '5');
    // A misspelt augmentation is refused before anything runs: no extraction, the reason in the job list.
    const extracts = () => listRuns(db, { kind: 'extract' }).length;
    const before0 = extracts();
    await page.getByLabel('Augmentations').fill('flipx');
    await page.getByRole('button', { name: 'Train Ψ' }).click();
    await page.getByTestId('job').filter({ hasText: /Train Ψ \(pixel\)/ }).first().getByText(/unknown augmentation "flipx".*use one of identity, hflip/).waitFor();
    await page.getByLabel('Classes').fill('0-40');
    await page.getByLabel('Augmentations').fill('hflip');
    await page.getByRole('button', { name: 'Train Ψ' }).click();
    await page.getByTestId('job').filter({ hasText: /Train Ψ \(pixel\)/ }).first().getByText(/classes 10, 11, 12, 13, 14, …: data set "target" has 10 classes, numbered 0 to 9/).waitFor();
    assert.equal(extracts(), before0);
    await page.getByLabel('Classes').fill('');
    // Embed mode: the user picks each augmentation's Ω, seeing what it was trained on.
    await page.locator('select[name="mode"]').selectOption('embed');
    const choice = page.getByTestId('omega-choice');
    const omegaSelect = choice.locator('select[name="omega-hflip"]');
    await omegaSelect.waitFor();
    assert.match(await omegaSelect.locator('option:checked').innerText(), /^run \d+, (plain|residual|identity)( with sampling forms)?: target train, classes all; held-out MSE [\d.e-]+ \(identity [\d.e-]+\) — trained on this head's classes$/);
    await choice.getByRole('alert').getByText(/training is refused \(the test set would leak through the augmentation\)/).waitFor();
    await startAndFinish('Train Ψ', /Train Ψ \(embed\)/);
    // Drawn as Ω + Gaussian residual: only an Ω that keeps its shift models is offered.
    await page.locator('select[name="sampling"]').selectOption('residual-gauss');
    assert.match(await omegaSelect.locator('option:checked').innerText(), /^run \d+, \w+ with sampling forms: /);
    assert.equal(await omegaSelect.locator('option').filter({ hasNotText: 'with sampling forms' }).count(), 0);
    await startAndFinish('Train Ψ', /Train Ψ \(embed\)/);
    const drawnHead = listRuns(db, { kind: 'head' })[0];
    assert.deepEqual([drawnHead.status, drawnHead.config.mode, drawnHead.config.sampling], ['completed', 'embed', 'residual-gauss']);
    await page.locator('select[name="sampling"]').selectOption('mean');
    await page.locator('select[name="mode"]').selectOption('isda');
    assert.equal(await page.getByLabel('Augmentations').count(), 0, 'an Ω-free baseline takes no augmentation');
    await startAndFinish('Train Ψ', /Train Ψ \(isda\)/);
    // The advisor on the same data set: every arm cross-validated, a recommendation, and a button that trains it.
    await startAndFinish('Advise', /Advise: augment or not\?/);
    const advice = page.getByTestId('advice');
    for (const arm of ['none', 'noise', 'mixup', 'isda', 'pixel hflip']) await advice.getByRole('cell', { name: arm, exact: true }).waitFor();
    // The only Ω was trained on the images the advice scores on: it is left out, and why.
    assert.equal(await advice.getByRole('cell', { name: 'embed hflip', exact: true }).count(), 0);
    await page.getByText(/embed hflip left out: every Ω for hflip on tiny-resnet18-w4 was trained on images the advice scores on/).waitFor();
    const sentence = await page.getByTestId('recommendation').innerText();
    assert.match(sentence, /^(Augment with (none|noise|mixup|isda|pixel hflip): \+|Do not augment: no mode gains beyond the noise over 5-fold cross-validation on split "train")/);
    const before = await page.getByTestId('head-result').innerText();
    await page.getByRole('button', { name: 'Train the recommended head' }).click();
    // The result of the new head: shown once it completes, with its own run id.
    await page.waitForFunction((old) => {
      const t = document.querySelector('[data-testid="head-result"]')?.textContent;
      return !!t && t !== old;
    }, before, { timeout: 120_000 });
    const expected = /^Do not/.test(sentence) ? 'none' : /^Augment with (\w+)/.exec(sentence)![1];
    assert.equal(await page.locator('select[name="mode"]').inputValue(), expected);
    await noOverflow('heads');
    await shot('05-heads');
  });

  it('cancels a running job', async () => {
    await page.getByLabel('Epochs').fill('5000');
    await page.getByRole('button', { name: 'Train Ψ' }).click();
    const job = page.getByTestId('job').filter({ hasText: /Train Ψ/ }).first();
    await job.locator('.badge.running').waitFor();
    await job.getByRole('button', { name: 'Cancel' }).click();
    await job.locator('.badge.cancelled').waitFor({ timeout: 60_000 });
  });

  it('lists runs with their status, nested, sorted by accuracy, compared with a metrics table, tagged, noted and deleted', async () => {
    await view('Runs');
    // The view is in the URL: a reload comes back to it.
    assert.ok(page.url().endsWith('#runs'), page.url());
    await page.reload();
    const table = page.getByTestId('runs-table');
    await table.locator('tr[data-status="cancelled"]').first().waitFor();
    // The advisor's heads nest under its run, collapsed until opened.
    const advice = listRuns(db, { kind: 'advise' })[0];
    const kids = listRuns(db, { parentId: advice.id }).length;
    assert.ok(kids >= 10);
    assert.equal(await table.locator('tr[data-depth="1"]').count(), 0);
    await table.getByRole('button', { name: `expand run ${advice.id}` }).click();
    assert.equal(await table.locator('tr[data-depth="1"]').count(), kids);
    await table.getByRole('button', { name: `collapse run ${advice.id}` }).click();
    await page.getByLabel('Kind').selectOption('head');
    // Sorted by the final test accuracy, best first; runs without one last.
    await table.getByRole('button', { name: 'test accuracy' }).click();
    const accs = await table.locator('tbody tr[data-depth="0"]').evaluateAll((rows) => rows.map((r) => r.querySelectorAll('td.num')[0]?.textContent ?? ''));
    const shown = accs.filter(Boolean).map((t) => Number(t.replace('%', '')));
    assert.ok(shown.length >= 3);
    assert.deepEqual(shown, [...shown].sort((a, b) => b - a));
    // Scrolled sideways to its last column, each row still shows its run's id and name.
    const pinned = await table.evaluate(async (t) => {
      const box = t.parentElement!;
      const wide = box.scrollWidth > box.clientWidth;
      box.scrollLeft = box.scrollWidth;
      await new Promise((r) => requestAnimationFrame(r));
      // (No named function in here: tsx would wrap it in a helper the page does not have.)
      const b = box.getBoundingClientRect();
      const cells = [...t.querySelector('tbody tr')!.querySelectorAll('td')];
      const [id, name, last] = [cells[1], cells[2], cells[cells.length - 1]].map((c) => c.getBoundingClientRect()).map((a) => a.left >= b.left - 1 && a.right <= b.right + 1);
      return { wide, id, name, last };
    });
    assert.deepEqual(pinned, { wide: true, id: true, name: true, last: true });
    await table.evaluate((t) => void (t.parentElement!.scrollLeft = 0));
    const boxes = table.locator('tbody tr[data-status="completed"] input[type="checkbox"]');
    await boxes.nth(0).check();
    await boxes.nth(1).check();
    await page.getByRole('button', { name: /Compare 2/ }).click();
    const cmp = page.getByTestId('comparison');
    await cmp.getByRole('cell', { name: 'mode' }).waitFor();
    // Final metrics side by side, from the runs themselves; the accuracy chart first, legends by run name.
    const metricsRow = await cmp.getByTestId('compare-metrics').locator('tr', { hasText: 'testAccuracy' }).locator('td.num').allInnerTexts();
    const picked = await table.locator('tbody tr:has(input:checked)').evaluateAll((rows) => rows.map((r) => Number(r.getAttribute('data-run'))));
    assert.deepEqual(metricsRow, picked.map((id) => `${(100 * (listRuns(db, { kind: 'head', limit: 10000 }).find((r) => r.id === id)!.summary as { testAccuracy: number }).testAccuracy).toFixed(2)}%`));
    assert.match((await cmp.getByTestId('chart').first().innerText()), /acc/);
    assert.ok((await cmp.getByTestId('chart').count()) >= 3);
    await noOverflow('runs');
    await shot('06-runs');
    // Export the first completed head, verified, from the Runs view.
    await page.getByRole('button', { name: /Compare 2/ }).waitFor();
    await boxes.nth(1).uncheck();
    const form = page.getByTestId('export-form');
    // A folder of the kernel's /proc: a clear error at once, and the server goes on answering.
    await form.getByLabel('Destination folder').fill('/proc/embaug-ui/exports');
    await form.getByRole('button', { name: 'Export' }).click();
    await page.getByRole('alert').getByText(/Could not create the folder \/proc\/embaug-ui\/exports: ENOENT.*choose another folder/).waitFor({ timeout: 60_000 });
    await form.getByLabel('Destination folder').fill(join(tmp.dir, 'exports'));
    await form.getByRole('button', { name: 'Export' }).click();
    await page.getByTestId('export-result').getByText(/verified .*merged\.onnx/).waitFor({ timeout: 60_000 });
    await shot('07-export');
    // Tags and a note on one run, kept in the database; then a run deleted with what is under it.
    const details = page.getByTestId('run-details');
    await details.getByLabel('Tags').fill('keep, baseline');
    await details.getByLabel('Note').fill('the first pixel head');
    await details.getByRole('button', { name: 'Save' }).click();
    const one = Number(await table.locator('tbody tr:has(input:checked)').first().getAttribute('data-run'));
    await table.locator(`tr[data-run="${one}"]`).getByText('keep, baseline ✎').waitFor();
    assert.deepEqual(listRuns(db, { search: 'first pixel head' }).map((r) => [r.id, r.tags]), [[one, ['keep', 'baseline']]]);
    const cancelled = listRuns(db, { status: 'cancelled', kind: 'head' })[0];
    await table.locator(`tr[data-run="${one}"] input[type="checkbox"]`).uncheck();
    await table.locator(`tr[data-run="${cancelled.id}"] input[type="checkbox"]`).check();
    page.once('dialog', (d) => void d.accept());
    await page.getByTestId('run-details').getByRole('button', { name: 'Delete', exact: true }).click();
    await table.locator(`tr[data-run="${cancelled.id}"]`).waitFor({ state: 'detached' });
    assert.equal(listRuns(db, { limit: 100000 }).some((r) => r.id === cancelled.id || r.parentId === cancelled.id), false);
    await view('Paper');
    await page.getByText('No reproduction yet').waitFor();
    // A field left empty or out of range is named before anything starts, as a form's submit would.
    const jobsBefore = await page.getByTestId('job').count();
    await page.getByLabel('Epochs').fill('');
    await page.getByRole('button', { name: 'Run', exact: true }).click();
    await page.getByRole('alert').getByText(/^Epochs: .+/).waitFor();
    // The message goes once the field it names holds a valid value again.
    await page.getByLabel('Epochs').fill('20');
    await page.getByRole('alert').getByText(/^Epochs: /).waitFor({ state: 'detached' });
    await page.getByLabel('Seeds').fill('0');
    await page.getByRole('button', { name: 'Run', exact: true }).click();
    await page.getByRole('alert').getByText(/^Seeds: .+1/).waitFor();
    assert.equal(await page.getByTestId('job').count(), jobsBefore);
    await page.getByLabel('Seeds').fill('3');
    await page.getByRole('alert').getByText(/^Seeds: /).waitFor({ state: 'detached' });
    await shot('09-paper');
    assert.deepEqual(errors, []);
  });

  it('curates: duplicates, label errors decided by key into a new version, a map with lasso selection, versions restored', async () => {
    await view('Curation');
    await page.locator('select[name="dataset"]').selectOption({ label: 'target' });
    await page.getByRole('button', { name: 'Find duplicates' }).click();
    await page.getByTestId('duplicates').waitFor({ timeout: 120_000 });
    await page.getByRole('button', { name: 'Find label errors' }).click();
    const table = page.getByTestId('label-errors');
    await table.waitFor({ timeout: 120_000 });
    // The image under the cursor, enlarged, beside its nearest images of the given and of the suggested class.
    const preview = page.getByTestId('label-preview');
    await preview.getByTestId('neighbours-given').locator('img').first().waitFor();
    assert.equal(await preview.getByTestId('neighbours-suggested').locator('img').count(), 6);
    assert.equal(await preview.getByTestId('neighbours-given').locator('img').count(), 6);
    // The data set and backbone are in the URL beside the view.
    assert.match(page.url(), /#curation\?dataset=\d+&backbone=tiny/);
    const firstTwo = await table.locator('tbody tr').evaluateAll((rows) => rows.slice(0, 2).map((r) => r.children[1].textContent));
    await page.keyboard.press('x');
    await page.keyboard.press('a');
    await page.keyboard.press('k');
    // Decisions survive a reload until applied; K leaves a mark and makes no edit. The reload
    // opens the data set the URL names.
    await page.reload();
    assert.equal(await page.locator('select[name="dataset"] option:checked').innerText(), 'target');
    await table.waitFor();
    assert.deepEqual((await table.locator('td.decision').allInnerTexts()).slice(0, 3), ['exclude', 'accept', 'keep']);
    await page.getByRole('button', { name: 'Apply 2 decisions' }).click();
    await table.getByText(/new version [0-9a-f]{10}/).waitFor();
    // Decided images leave the list at once (one excluded, one relabelled under its new label).
    const after = await table.locator('tbody tr').evaluateAll((rows) => rows.map((r) => r.children[1].textContent));
    for (const t of firstTwo) assert.ok(!after.includes(t), `${t} is still listed after Apply`);
    await page.getByRole('button', { name: 'Find outliers' }).click();
    await page.getByTestId('outliers').waitFor({ timeout: 120_000 });
    await page.getByRole('button', { name: 'Draw the map' }).click();
    const map = page.getByTestId('map');
    await map.waitFor({ timeout: 120_000 });
    // A lasso drawn from the top left corner through the given corners (fractions of the map); returns how many it selected.
    let box = (await map.boundingBox())!;
    const lassoThrough = async (corners: number[][]) => {
      await map.scrollIntoViewIfNeeded();
      box = (await map.boundingBox())!;
      await page.mouse.move(box.x + 5, box.y + 5);
      await page.mouse.down();
      for (const [fx, fy] of corners) await page.mouse.move(box.x + fx * box.width, box.y + fy * box.height, { steps: 4 });
      await page.mouse.up();
      return Number(/^(\d+) selected$/.exec(await page.getByTestId('map-selection').innerText())![1]);
    };
    const WHOLE = [[0.95, 0.05], [0.95, 0.95], [0.05, 0.95], [0.05, 0.06]];
    assert.ok((await lassoThrough(WHOLE)) > 0);
    // Drawn again with fewer images after a lasso: the page goes on, and the job ends completed.
    await page.getByLabel('Images per split').fill('50');
    await startAndFinish('Draw the map', /Find a map/);
    await page.waitForFunction(() => !document.querySelector('[data-testid="map-selection"]'));
    const n = await lassoThrough(WHOLE);
    assert.ok(n > 0 && n <= 50, `${n} selected of 50`);
    assert.equal(await page.getByTestId('view-failed').count(), 0);
    assert.deepEqual(errors, []);

    // The legend names the classes with their counts; hovering a point shows its image.
    const legend = await page.getByTestId('map-legend').innerText();
    assert.match(legend, /airplane\s+\d+\s+automobile\s+\d+/);
    let hovered = '';
    for (let gx = 0.05; gx < 1 && !hovered; gx += 0.05)
      for (let gy = 0.05; gy < 1 && !hovered; gy += 0.05) {
        await page.mouse.move(box.x + gx * box.width, box.y + gy * box.height);
        if (await page.getByTestId('map-hover').count()) hovered = await page.getByTestId('map-hover').innerText();
      }
    assert.match(hovered, new RegExp(`^#\\d+ · (${CIFAR10_CLASSES.join('|')}) · (train|test)$`));
    await page.getByTestId('map-hover').locator('img').waitFor();
    // Zoomed in, the same lasso around the whole canvas takes only the points still in view.
    await page.getByRole('button', { name: 'Zoom in' }).click();
    await page.getByRole('button', { name: 'Zoom in' }).click();
    const zoomed = await lassoThrough(WHOLE);
    assert.ok(zoomed > 0 && zoomed < n, `${zoomed} selected zoomed in, ${n} on the whole map`);
    await page.getByRole('button', { name: 'Whole map' }).click();
    await page.getByLabel('Images per split').fill('');
    await page.getByLabel('Colour by').selectOption('outlier score');
    assert.match(await page.getByTestId('map-colourbar').innerText(), /outlier score\s+0\s+1/);
    await noOverflow('curation');
    await shot('08-curation');
    // A reload keeps the view (in the URL) and the results of this data set version: the
    // outliers and the map computed after the decisions; not the label errors of the version before.
    await page.reload();
    await page.locator('select[name="dataset"]').selectOption({ label: 'target' });
    await page.getByTestId('outliers').getByText(/computed (just now|\d+ min ago) \(run \d+\)/).waitFor();
    await page.getByTestId('map').waitFor();
    assert.equal(await page.getByTestId('label-errors').count(), 0);
    // Actions on a lasso selection become one version: exclude them, and tag them.
    const picked = await lassoThrough([[0.5, 0.05], [0.5, 0.95], [0.05, 0.95], [0.05, 0.06]]);
    const actions = page.getByTestId('map-actions');
    await actions.getByRole('button', { name: 'Exclude' }).click();
    await actions.getByLabel('Tags').fill('from-map');
    await actions.getByRole('button', { name: 'Tag' }).click();
    assert.deepEqual(await page.getByTestId('map-edits').locator('li').allInnerTexts(), [`exclude ${picked} undo`, `tag ${picked} with from-map undo`]);
    const target = db.prepare("SELECT id FROM datasets WHERE name = 'target'").pluck().get() as number;
    const excludedBefore = db.prepare('SELECT count(*) FROM images WHERE dataset_id = ? AND excluded = 1').pluck().get(target) as number;
    await page.getByRole('button', { name: 'Apply 2 edits as one version' }).click();
    await page.getByText(/new version [0-9a-f]{10}/).last().waitFor();
    assert.equal(db.prepare('SELECT count(*) FROM images WHERE dataset_id = ? AND excluded = 1').pluck().get(target), excludedBefore + picked);
    assert.equal(db.prepare("SELECT count(*) FROM images WHERE dataset_id = ? AND tags LIKE '%from-map%'").pluck().get(target), picked);
    await view('Datasets');
    await page.getByRole('cell', { name: 'target', exact: true }).click();
    const versions = page.getByTestId('versions');
    await versions.locator('summary').click();
    assert.match(await versions.locator('summary').innerText(), /^3 versions/);
    await versions.getByRole('button', { name: 'Restore' }).first().click();
    await versions.locator('summary').getByText(/^4 versions/).waitFor();
    // Image details: a large view and the same actions as curation, each a new version.
    await page.getByTestId('thumb-grid').locator('button.cell').first().click();
    const details = page.getByTestId('image-details');
    await details.locator('img').waitFor();
    assert.ok((await details.locator('img').first().boundingBox())!.width >= 200, 'a large view');
    const [, shownIdx, shownClass] = /#(\d+)\s+label\s+\d+ · (\w+)/.exec(await details.innerText())!;
    const to = shownClass === 'ship' ? 'truck' : 'ship';
    const imageActions = page.getByTestId('image-actions');
    await imageActions.getByLabel('Relabel').selectOption(to);
    await imageActions.getByRole('button', { name: 'Relabel' }).click();
    await details.getByText(/new version [0-9a-f]{10}/).waitFor();
    assert.equal(db.prepare('SELECT label FROM images WHERE dataset_id = ? AND idx = ?').pluck().get(target, Number(shownIdx)), CIFAR10_CLASSES.indexOf(to));
    await imageActions.getByLabel('Note').fill('looks like a ship');
    await imageActions.getByRole('button', { name: 'Save note' }).click();
    await details.locator('dd', { hasText: 'looks like a ship' }).waitFor();
    assert.equal(db.prepare('SELECT note FROM images WHERE dataset_id = ? AND idx = ?').pluck().get(target, Number(shownIdx)), 'looks like a ship');
    await versions.locator('summary').getByText(/^6 versions/).waitFor();
  });

  it('quick start: from an image folder to an exported classifier by clicks and picks, checked against the engine', async () => {
    await view('Quick start');
    const qs = page.getByTestId('quick-start');
    // The folder, picked in the workbench's own browser: nothing typed.
    const pick = async (within: ReturnType<Page['getByTestId']>, ...path: string[]) => {
      await within.getByRole('button', { name: 'Browse…' }).click();
      await within.getByLabel('Start from').selectOption(tmp.dir);
      for (const dir of path) await within.getByRole('button', { name: `${dir}/` }).click();
      await within.getByRole('button', { name: 'Choose this folder' }).click();
    };
    // A folder of one class is refused before anything is imported: a classifier needs two.
    const one = join(tmp.dir, 'one-class', 'cat');
    mkdirSync(one, { recursive: true });
    for (const f of readdirSync(join(tmp.dir, 'images', 'train', 'cat')).filter((x) => x.endsWith('.jpg') && x !== 'broken.jpg').slice(0, 3)) copyFileSync(join(tmp.dir, 'images', 'train', 'cat', f), join(one, f));
    await pick(qs, 'one-class');
    await page.getByTestId('folder-preview').getByText(/3 image files in 1 classes: cat/).waitFor();
    const datasets = () => db.prepare('SELECT count(*) FROM datasets').pluck().get();
    const datasetsBefore = datasets();
    await qs.getByRole('button', { name: 'Train a classifier' }).click();
    await qs.getByRole('alert').getByText(/^a classifier tells classes apart, and this folder holds one class folder/).first().waitFor();
    assert.equal(datasets(), datasetsBefore);
    await pick(qs, 'images');
    const preview = page.getByTestId('folder-preview');
    await preview.getByText(/701 image files in 10 classes: airplane, automobile, bird, cat, deer, dog, frog, horse, ship, truck/).waitFor();
    await preview.getByText(/Its own split is used: test 200, train 501 images/).waitFor();
    await qs.locator('input[name="dataset-name"]').fill('quick');
    assert.match(await qs.locator('select[name="bundled"] option:checked').innerText(), /^resnet18-w16-none · resnet18, D=128, base top-1 84\.3%/);
    await shot('10-quick-start');
    await qs.getByRole('button', { name: 'Train a classifier' }).click();
    const results = page.getByTestId('head-results');
    await results.getByTestId('confusion').waitFor({ timeout: 240_000 });
    // The head's numbers as the engine has them: accuracy, per class, the confusion matrix.
    const head = listRuns(db, { kind: 'head', limit: 1 })[0];
    const report = (head.summary as { report: HeadReport; testAccuracy: number }).report;
    assert.equal(head.config.mode, 'pixel');
    assert.ok(Math.abs(report.accuracy - (head.summary as { testAccuracy: number }).testAccuracy) <= 1 / report.n, 'the report and the run agree');
    assert.equal(await results.getByTestId('head-accuracy').innerText(), `${(100 * report.accuracy).toFixed(2)}%`);
    const cells = await results.getByTestId('confusion').locator('tbody tr').evaluateAll((rows) => rows.map((r) => [...r.querySelectorAll('td')].map((td) => Number(td.textContent))));
    assert.deepEqual(cells, report.confusion);
    assert.equal(report.confusion.flat().reduce((a, b) => a + b, 0), 200);
    assert.equal(await results.getByTestId('misclassified').locator('.item').count(), Math.min(48, report.confusion.flat().reduce((a, b) => a + b, 0) - report.confusion.reduce((a, r, i) => a + r[i], 0)));
    // Try an image: a test picture through Φ and Ψ, the same probabilities as the engine's.
    const picture = join(tmp.dir, 'images', 'test', 'ship', readdirSync(join(tmp.dir, 'images', 'test', 'ship'))[0]);
    await results.getByTestId('try-image').setInputFiles(picture);
    const tried = await results.getByTestId('tried').innerText();
    const engine = await classifyImage(db, head.id, readFileSync(picture));
    assert.ok(tried.includes(`${engine.classNames[engine.predicted]} (${(100 * engine.probabilities[engine.predicted]).toFixed(1)}%)`), tried);
    await noOverflow('quick start');
    await shot('11-head-results');
    // Export, into a folder picked the same way; the merged model gives the same answer in ONNX Runtime.
    const ex = page.getByTestId('quick-export');
    await pick(ex);
    await ex.getByRole('button', { name: 'Export' }).click();
    await page.getByTestId('quick-exported').getByText(/merged\.onnx/).waitFor({ timeout: 120_000 });
    const merged = join(tmp.dir, readdirSync(tmp.dir).find((f) => f.endsWith('.merged.onnx'))!);
    const sess = await ort.InferenceSession.create(merged);
    const { data } = await sharp(picture).removeAlpha().raw().toBuffer({ resolveWithObject: true });
    const x = new Float32Array(3 * 32 * 32);
    for (let i = 0; i < 32 * 32; i++) for (let c = 0; c < 3; c++) x[c * 1024 + i] = data[i * 3 + c] / 255;
    const out = await sess.run({ [sess.inputNames[0]]: new ort.Tensor('float32', x, [1, 3, 32, 32]) });
    const logits = Array.from(out[sess.outputNames.find((n) => /logit/.test(n)) ?? sess.outputNames[0]].data as Float32Array);
    assert.equal(logits.indexOf(Math.max(...logits)), engine.predicted);
    // report.html opened from the file system looks finished.
    const report2 = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    await report2.goto(pathToFileURL(join(REPO, 'docs', 'reproduction', 'report.html')).href);
    await report2.locator('table').first().waitFor();
    await report2.screenshot({ path: join(ARTIFACTS, '12-report.png'), fullPage: false });
    await report2.close();
    assert.deepEqual(errors, []);
  });

  it('refuses API calls without the token and from other origins', async () => {
    const call = (headers: Record<string, string>) =>
      fetch(new URL('/api/call', web.url), { method: 'POST', headers: { 'Content-Type': 'application/json', ...headers }, body: JSON.stringify({ channel: 'datasets:list' }) });
    assert.equal((await call({})).status, 401);
    assert.equal((await call({ 'X-Embaug-Token': web.token, Origin: 'http://evil.example' })).status, 403);
    const ok = await call({ 'X-Embaug-Token': web.token });
    assert.equal(ok.status, 200);
    assert.equal((await ok.json()).ok, true);
    const bad = await fetch(new URL('/api/call', web.url), { method: 'POST', headers: { 'X-Embaug-Token': web.token }, body: JSON.stringify({ channel: 'jobs:start', payload: { kind: 'head', args: { epochs: -1 } } }) });
    assert.match((await bad.json()).error.message, /jobs:start: /);
  });
});
