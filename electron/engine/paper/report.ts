/** The files `reproduce` writes: table2.md/.json, eq8.json, curve CSVs and report.html. */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { BASES, rowKey, scenarios, table2Rows } from './scenarios.js';
import { gainOver, paperNumbers, paperShape } from './shape.js';
import { accOf, type Acc, type ReproduceResult } from './types.js';
import { makeDirs } from '../paths.js';
import { esc, htmlPage, lineChart, markdownHtml } from '../report/html.js';

const pct = (a: Acc | undefined) => (a ? `${(100 * a.mean).toFixed(2)} ± ${(100 * a.std).toFixed(2)}` : '–');

/** The run's wall time and where it went; the setup and the report take the rest. */
function wallTime(r: ReproduceResult): string {
  const p = r.phases;
  const min = (s: number) => `${(s / 60).toFixed(1)} min`;
  const parts = [`extracting views ${min(p.extracting)}`, `training ${min(p.training)}`, ...(p.eq8 ? [`Eq. 8's timings ${min(p.eq8)}`] : []), ...(p.compute ? [`compute timing ${min(p.compute)}`] : [])];
  return `Wall time: ${min(r.seconds)} (${parts.join(', ')}). Runs are in the database under group \`reproduce-${r.runId}\`.`;
}

function fewShotMarkdown(r: ReproduceResult): string {
  const archs = Object.keys(r.architectures);
  const lines = [
    `# Few-shot Table II — ${r.perClass} target training images per class (%, mean ± std over ${r.seeds} seeds)`,
    '',
    `Protocol: **${r.protocol}** (${r.protocolDescription}). Each seed draws its own ${r.perClass} images per class, so the spread includes the choice of images; tested on the whole target test split${r.subset ? ` (subset of ${r.subset})` : ''}. Ψ fine-tuned ${r.epochs} epochs with the defaults fixed in advance (SGD, lr 0.01, momentum 0.9, weight decay 5e-4, batch 128); nothing is chosen on the test split. Fine-tuning augmentation: ${r.augSets.join(', ')}.`,
    '',
  ];
  for (const set of r.augSets) {
    const plan = scenarios([set], true);
    // The rows without an augmentation ([None] and the Ω-free baselines) are shared by every set.
    const cell = (a: string, sc: { augSet: string }, k: string) => accOf(r.architectures[a], k, sc.augSet === 'none' ? 'hflip' : set);
    for (const base of BASES) {
      const key = (k: string) => rowKey(base, { key: k });
      // Rows of arms this run did not train (a report of an older run) are left out, and so is
      // a base it did not use.
      const ran = plan.filter((sc) => archs.some((a) => cell(a, sc, key(sc.key))));
      if (ran.length === 0) continue;
      lines.push(`## Base trained with ${base.label}${r.augSets.length > 1 ? `; fine-tuning augmentation ${set}` : ''}`, '', `| scenario | ${archs.join(' | ')} |`, `|---|${archs.map(() => '---:').join('|')}|`);
      for (const sc of ran) lines.push(`| ${sc.label} | ${archs.map((a) => pct(cell(a, sc, key(sc.key)))).join(' | ')} |`);
      lines.push('', 'Gain over [None] (points, mean ± std of the per-seed difference; **bold** when beyond 2 std) and, where the pixel gain is real, the fraction of it each mode recovers, (mode − none) / (pixel − none):', '',
        `| mode | ${archs.join(' | ')} |`, `|---|${archs.map(() => '---:').join('|')}|`);
      for (const sc of ran.filter((x) => x !== plan[0]))
        lines.push(`| ${sc.label} | ${archs.map((a) => {
          const none = cell(a, plan[0], key('none')), mode = cell(a, sc, key(sc.key)), pixel = cell(a, plan[1], key('pixel'));
          if (!none || !mode) return '–';
          const g = gainOver(none, mode), pg = pixel ? gainOver(none, pixel) : null;
          const txt = `${(100 * g.mean).toFixed(2)} ± ${(100 * g.std).toFixed(2)}`;
          const frac = pg?.real && sc.key !== 'pixel' ? ` (${(100 * (g.mean / pg.mean)).toFixed(0)}%)` : '';
          return `${g.real ? `**${txt}**` : txt}${frac}`;
        }).join(' | ')} |`);
      lines.push('');
    }
  }
  lines.push('## How close each form of Ω comes (held-out base pairs)', '', 'MSE of the form\'s mean and energy score of its samples (8 per pair; for a point prediction the mean distance), both lower-is-better, on held-out base pairs not used to fit them.', '',
    '| architecture | base | aug | identity MSE / ES | Ω mean | Ω + Gaussian residual | identity + Gaussian shift | nearest-neighbour shift | generative Ω | mixture density network |', '|---|---|---|---:|---:|---:|---:|---:|---:|---:|');
  for (const [a, bases] of Object.entries(r.omega))
    for (const [b, augs] of Object.entries(bases))
      for (const [g, o] of Object.entries(augs)) {
        if (!o.sampling) continue;
        const sampling = o.sampling;
        const f = (k: keyof typeof sampling) => `${sampling[k].mse.toPrecision(3)} / ${sampling[k].energyScore.toPrecision(3)}`;
        lines.push(`| ${a} | ${b} | ${g} | ${f('identity')} | ${f('mean')} | ${f('residual-gauss')} | ${f('shift-gauss')} | ${f('knn-shift')} | ${sampling.generator ? f('generator') : '–'} | ${sampling.mdn ? f('mdn') : '–'} |`);
      }
  const curves = Object.entries(r.omega).flatMap(([a, bases]) => Object.entries(bases).flatMap(([b, augs]) => Object.entries(augs).filter(([, o]) => o.thetaCurve).map(([g, o]) => ({ a, b, g, o }))));
  if (curves.length) {
    lines.push('', '## Ω of random augmentations: held-out MSE against the size of the draw |θ|', '',
      `Each base image drawn ${curves[0].o.draws} times; every draw of a held-out image is held out. |θ| is the largest drawn parameter scaled to [0, 1] (the angle over the range's largest, the shift over the padding, a colour factor's offset over its strength). Unconditional: the best plain or residual Ω on the same pairs (it learns the mean view); conditional: the best Ω(z, θ).`, '',
      '| architecture | base | aug | Ω used (held-out MSE of each form) | |θ| | pairs | identity | unconditional | conditional |', '|---|---|---|---|---|---:|---:|---:|---:|');
    const f = (x: number | null) => (x === null ? '–' : x.toPrecision(3));
    for (const { a, b, g, o } of curves)
      o.thetaCurve!.forEach((bin, i) =>
        lines.push(`| ${i ? '' : a} | ${i ? '' : b} | ${i ? '' : g} | ${i ? '' : `${o.chosen} (${o.candidates.map((c) => `${c.form} ${c.heldOutMse.toPrecision(3)}`).join(', ')}; identity ${o.fidelity.identityMse.toPrecision(3)})`} | ${bin.lo}–${bin.hi} | ${bin.pairs} | ${f(bin.identity)} | ${f(bin.unconditional)} | ${f(bin.conditional)} |`));
  }
  const composites = Object.entries(r.composites ?? {}).flatMap(([a, bases]) => Object.entries(bases).flatMap(([b, augs]) => Object.values(augs).map((c) => ({ a, b, c }))));
  if (composites.length) {
    lines.push('', '## Composite augmentations: their own Ω against the chain of their ops\' Ωs', '',
      'Held-out MSE on the same held-out composite pairs; the chain applies each op\'s own Ω (conditional where the op is random) where the draw fired it, at that op\'s part of θ.', '',
      '| architecture | base | composite | pairs | identity | own Ω | chain of | chain |', '|---|---|---|---:|---:|---:|---|---:|');
    for (const { a, b, c } of composites)
      lines.push(`| ${a} | ${b} | ${c.aug} | ${c.pairs} | ${c.identityMse.toPrecision(3)} | ${c.direct.heldOutMse.toPrecision(3)} (${c.direct.chosen}) | ${c.chain.parts.map((p) => `${p.aug} (${p.chosen})`).join(' then ')} | ${c.chain.heldOutMse.toPrecision(3)} |`);
  }
  if (r.compute) {
    const c = r.compute;
    const fmt = (s: number) => (s < 60 ? `${s.toFixed(1)} s` : s < 3600 ? `${(s / 60).toFixed(1)} min` : `${(s / 3600).toFixed(1)} h`);
    lines.push('', '## Compute: Φ passes per head, and what they cost', '',
      `${c.trainImages} training images, ${c.epochs} epochs. Φ per image: ${c.ours ? `${(c.ours.secondsPerImage * 1e3).toFixed(2)} ms for ${c.ours.backbone} (measured, decoding included)` : 'not measured'}; ${(c.heavy.secondsPerImage * 1e3).toFixed(0)} ms for a ${c.heavy.what} (${(c.heavy.params / 1e6).toFixed(1)} M parameters, ${c.heavy.gflopsPerImage.toFixed(1)} GFLOP per image, ${c.heavy.threads} threads). The test split's passes are the same for every mode and left out.`, '',
      '| mode | Φ passes | ours | ResNet-50-sized |', '|---|---:|---:|---:|');
    const rows: [keyof typeof c.phiPasses, string][] = [['none', '[None]'], ['pixel-cached', '[Pixel] deterministic g (views cached: N+1 passes)'], ['pixel-random', '[Pixel] random g (a fresh draw through Φ every epoch)'], ['embed', '[Embed], any form of Ω'], ['noise', '[Noise]']];
    for (const [k, label] of rows)
      lines.push(`| ${label} | ${c.phiPasses[k]} | ${c.ours ? fmt(c.phiPasses[k] * c.ours.secondsPerImage) : '–'} | ${fmt(c.phiPasses[k] * c.heavy.secondsPerImage)} |`);
    lines.push('', `Ω itself is trained once per backbone and augmentation on the base task's pairs (${c.omegaPhiPasses} Φ passes: ${c.ours ? fmt(c.omegaPhiPasses * c.ours.secondsPerImage) : '–'} with ours, ${fmt(c.omegaPhiPasses * c.heavy.secondsPerImage)} with a ResNet-50-sized Φ), then serves every target task; for one few-shot task with a deterministic g, pixel space is the cheaper way.`);
  }
  lines.push('', wallTime(r));
  return `${lines.join('\n')}\n`;
}

/** The paper's column compared by shape: gains over [None]-[None], the scenarios' order, [Embed]'s share. */
function shapeMarkdown(r: ReproduceResult): string[] {
  const paper = paperNumbers();
  const pts = (x: number) => `${x >= 0 ? '+' : ''}${(100 * x).toFixed(2)}`;
  const lines = ['', "## The paper's Table II beside ours: the shape", '', `The paper's column: ${paper.source}. Its protocol: ${paper.protocol}. ${paper.note}`, '',
    '| architecture | scenario | ours: gain over [None]-[None] (points, mean ± std of the per-seed difference) | paper (points, one run) |', '|---|---|---:|---:|'];
  const shapes = paperShape(r.architectures, paper);
  for (const s of shapes)
    s.rows.forEach((row, i) => lines.push(`| ${i ? '' : s.arch} | ${row.label} | ${row.ours ? `${pts(row.ours.mean)} ± ${(100 * row.ours.std).toFixed(2)}` : '–'} | ${row.paper === null ? '–' : pts(row.paper)} |`));
  lines.push('');
  for (const s of shapes) {
    const count = (v: string) => s.order.filter((o) => o.verdict === v).length;
    const off = s.order.filter((o) => o.verdict === 'disagree').map((o) => `${o.a} vs ${o.b}`);
    const frac = (x: number | null) => (x === null ? 'not measurable (that gain is within our seed noise)' : `${(100 * x).toFixed(0)}%`);
    lines.push(`- **${s.arch}**: of the ${s.order.length} pairs of scenarios, our order agrees with the paper's in ${count('agree')}, disagrees in ${count('disagree')}${off.length ? ` (${off.join(', ')})` : ''}, and is within our seed noise in ${count('within noise')}. The share of [Pixel]-[Pixel]'s gain over [Pixel]-[None] that [Pixel]-[Embed] recovers: ${frac(s.recovered.ours)}; the paper's: ${frac(s.recovered.paper)}.`);
  }
  return lines;
}

function table2Markdown(r: ReproduceResult): string {
  if (r.perClass !== null) return fewShotMarkdown(r);
  const archs = Object.keys(r.architectures);
  const paper = paperNumbers();
  const hasPaper = archs.some((a) => paper.architectures[a]);
  const lines = [
    `# Table II — accuracy on the target task (%, mean ± std over ${r.seeds} seed${r.seeds > 1 ? 's' : ''})`,
    '',
    `Protocol: **${r.protocol}** (${r.protocolDescription}). Ψ fine-tuned ${r.epochs} epochs${r.subset ? `, subset of ${r.subset} images per split` : ''}.`,
    'Scenario [base augmentation]-[fine-tuning augmentation]; fine-tuning augmentation here: horizontal flip.',
    '',
    `| scenario | ${archs.map((a) => (hasPaper ? `${a} | ${a} (paper)` : a)).join(' | ')} |`,
    `|---|${archs.map(() => (hasPaper ? '---:|---:' : '---:')).join('|')}|`,
  ];
  for (const [key, label] of table2Rows('hflip')) {
    lines.push(
      `| ${label} | ${archs
        .map((a) => {
          const ours = pct(accOf(r.architectures[a], key));
          const p = paper.architectures[a]?.[key];
          return hasPaper ? `${ours} | ${p === undefined ? '–' : (100 * p).toFixed(2)}` : ours;
        })
        .join(' | ')} |`,
    );
  }
  if (!hasPaper) lines.push('', `_The paper's own numbers are not shown: ${paper.note}_`);
  else lines.push(...shapeMarkdown(r));
  for (const s of r.augSets.filter((x) => x !== 'hflip')) {
    lines.push('', `## Fine-tuning augmentation: ${s === 'both' ? 'both flips (hflip and vflip)' : s}`, '', `| scenario | ${archs.join(' | ')} |`, `|---|${archs.map(() => '---:').join('|')}|`);
    for (const [key, label] of table2Rows(s).filter(([k]) => /_(pixel|embed)$/.test(k)))
      lines.push(`| ${label} | ${archs.map((a) => pct(accOf(r.architectures[a], key, s))).join(' | ')} |`);
  }
  lines.push('', '## Augmentation transformers Ω (held-out pairs of the base task)', '', '| architecture | base | augmentation | Ω used | MSE Ω | MSE identity | cosine Ω | cosine identity |', '|---|---|---|---|---:|---:|---:|---:|');
  for (const [a, bases] of Object.entries(r.omega))
    for (const [b, augs] of Object.entries(bases))
      for (const [g, o] of Object.entries(augs))
        lines.push(`| ${a} | ${b} | ${g} | ${o.chosen}${o.flagged ? ' (flagged)' : ''} | ${o.fidelity.heldOutMse.toPrecision(4)} | ${o.fidelity.identityMse.toPrecision(4)} | ${o.fidelity.cosine.toFixed(4)} | ${o.fidelity.identityCosine.toFixed(4)} |`);
  lines.push('', wallTime(r));
  return `${lines.join('\n')}\n`;
}

function csv(rows: (string | number | null)[][]): string {
  return `${rows.map((r) => r.map((x) => (x === null ? '' : String(x))).join(',')).join('\n')}\n`;
}

function mean(xs: number[]): number {
  return xs.reduce((a, b) => a + b, 0) / xs.length;
}

function reportHtml(r: ReproduceResult, table: string): string {
  const figs: string[] = [];
  // Fig. 3: Ω train and held-out MSE per epoch.
  for (const [arch, base] of [...new Set(r.curves.omega.map((c) => `${c.arch}|${c.base}`))].map((k) => k.split('|')))
    figs.push(lineChart(r.curves.omega.filter((c) => c.arch === arch && c.base === base).flatMap((c) => [
      { name: `Ω ${c.aug} (${c.form}), train`, points: c.history.map((h): [number, number] => [h.epoch, h.loss]) },
      { name: `Ω ${c.aug} (${c.form}), held-out`, points: c.history.filter((h) => h.valLoss !== null).map((h): [number, number] => [h.epoch, h.valLoss!]) },
    ]), { title: `Fig. 3 — Ω training, ${arch}, base ${base}`, xLabel: 'epoch', yLabel: 'MSE' }));
  // Fig. 4: test accuracy per epoch, mean over seeds, per scenario, under the table's labels.
  const labels = new Map(table2Rows('hflip'));
  for (const arch of new Set(r.curves.heads.map((c) => c.arch))) {
    const byScenario = new Map<string, typeof r.curves.heads>();
    for (const c of r.curves.heads.filter((h) => h.arch === arch && (h.augSet === 'hflip' || h.augSet === 'none')))
      byScenario.set(c.scenario, [...(byScenario.get(c.scenario) ?? []), c]);
    figs.push(lineChart([...byScenario].map(([key, cs]) => ({
      name: labels.get(key) ?? key,
      points: cs[0].history.flatMap((h, e) => (h.valAccuracy === null ? [] : [[e + 1, mean(cs.map((c) => c.history[e]?.valAccuracy ?? 0))] as [number, number]])),
    })), { title: `Fig. 4 — fine-tuning Ψ, ${arch} (hflip)`, xLabel: 'epoch', yLabel: 'test accuracy (%)', yFormat: (y) => (100 * y).toFixed(1) }));
  }
  const us = (s: number) => `${(s * 1e6).toFixed(2)} µs`;
  const eq8 = r.eq8
    ? `<h2>Eq. 8 — compute</h2><p>${esc(r.eq8.formulas.pixel)}; ${esc(r.eq8.formulas.embed)}. Measured per sample on ${esc(r.eq8.backbone)} (${r.eq8.images} images):</p>
<table><tr><th>cost per sample</th><th>measured</th><th>FLOPs (from the layer shapes)</th></tr>
<tr><td>C<sub>Φ</sub> (backbone)</td><td>${us(r.eq8.perSampleSeconds.phi)}</td><td>${((r.eq8.flopsPerSample.phi ?? 0) / 1e6).toFixed(1)} M</td></tr>
<tr><td>C<sub>Ω</sub> (augmentation transformer)</td><td>${us(r.eq8.perSampleSeconds.omega)}</td><td>${(r.eq8.flopsPerSample.omega / 1e6).toFixed(2)} M</td></tr>
<tr><td>C<sub>Ψ</sub> (head, forward)</td><td>${us(r.eq8.perSampleSeconds.psiForward)}</td><td>${(r.eq8.flopsPerSample.psiForward / 1e6).toFixed(2)} M</td></tr>
<tr><td>C<sub>Ψbp</sub> (head, backward)</td><td>${us(r.eq8.perSampleSeconds.psiBackprop)}</td><td>${(r.eq8.flopsPerSample.psiBackprop / 1e6).toFixed(2)} M</td></tr></table>
<table><tr><th>augmentations N</th><th>epochs E</th><th>predicted C<sub>P</sub>/C<sub>E</sub></th><th>as E → ∞</th></tr>${r.eq8.predicted.map((p) => `<tr><td>${p.N}</td><td>${p.E}</td><td>${p.ratio.toFixed(1)}</td><td>${p.ratioAsymptotic.toFixed(1)}</td></tr>`).join('')}</table>
<p>Measured wall clock, ${r.eq8.measured.epochs} epochs: pixel ${r.eq8.measured.pixelSeconds.toFixed(1)} s, embedding ${r.eq8.measured.embedSeconds.toFixed(1)} s, ratio ${r.eq8.measured.ratio.toFixed(2)}; extrapolated to ${r.eq8.measured.extrapolatedTo} epochs: ${r.eq8.measured.extrapolatedRatio.toFixed(1)}. That pixel side draws a new flip through Φ every epoch, as a random augmentation must.</p>
${r.eq8.cachedPixel ? `<p>Against a pixel pipeline that caches the views of the deterministic ${r.eq8.backbone.includes('hflip') ? 'flip' : 'augmentation'} (N+1 Φ passes in total): measured ${r.eq8.cachedPixel.measured.seconds.toFixed(1)} s, ratio ${r.eq8.cachedPixel.measured.ratio.toFixed(2)}, extrapolated to ${r.eq8.measured.extrapolatedTo} epochs ${r.eq8.cachedPixel.measured.extrapolatedRatio.toFixed(2)}; predicted ${r.eq8.cachedPixel.predicted.map((p) => `N=${p.N}, E=${p.E}: ${p.ratio.toFixed(2)}`).join('; ')}. For a deterministic augmentation the saving is at most (N+1)×, and shrinks as training epochs dominate.</p>` : ''}`
    : '';
  // The Markdown's own title becomes the page's; its tables become HTML tables.
  return htmlPage(`embaug — reproduction (${r.protocol})`, `${markdownHtml(table)}<h2>Curves</h2>${figs.join('\n')}${eq8}`);
}

export async function writeReport(out: string, r: ReproduceResult): Promise<void> {
  makeDirs(join(out, 'curves'));
  const table = table2Markdown(r);
  writeFileSync(join(out, 'table2.md'), table);
  const { curves: _c, eq8: _e, ...json } = r;
  if (r.compute) writeFileSync(join(out, 'compute.json'), `${JSON.stringify(r.compute, null, 2)}\n`);
  writeFileSync(join(out, 'table2.json'), `${JSON.stringify({ ...json, paper: paperNumbers() }, null, 2)}\n`);
  writeFileSync(join(out, 'eq8.json'), `${JSON.stringify(r.eq8, null, 2)}\n`);
  writeFileSync(
    join(out, 'curves', 'heads.csv'),
    csv([['architecture', 'base', 'aug_set', 'scenario', 'seed', 'epoch', 'train_loss', 'train_acc', 'test_acc'],
      ...r.curves.heads.flatMap((c) => c.history.map((h) => [c.arch, c.base, c.augSet, c.scenario, c.seed, h.epoch, h.loss, h.accuracy, h.valAccuracy]))]),
  );
  writeFileSync(
    join(out, 'curves', 'omega.csv'),
    csv([['architecture', 'base', 'augmentation', 'form', 'epoch', 'train_mse', 'heldout_mse'],
      ...r.curves.omega.flatMap((c) => c.history.map((h) => [c.arch, c.base, c.aug, c.form, h.epoch, h.loss, h.valLoss]))]),
  );
  writeFileSync(join(out, 'report.html'), reportHtml(r, table));
}
