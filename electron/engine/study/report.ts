/**
 * The study's files: study.json (everything), study.md (findings first, then the tables) and
 * report.html (the same with a chart of accuracy against budget per arm, with error bars).
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { gainOver, type PairedGain } from '../paper/index.js';
import type { Budget, StudyCell, StudyResult } from './types.js';
import { makeDirs } from '../paths.js';
import { htmlPage, inlineHtml, lineChart, markdownHtml } from '../report/html.js';

/** One setting's verdict: the pixel gain over none, and what every other arm gets of it. */
export interface Setting {
  arch: string;
  base: string;
  budget: Budget;
  aug: string;
  pixel: PairedGain;
  /** Per arm other than none and pixel: its gain, the share of the pixel gain, and pixel's compute over its. */
  arms: { arm: string; gain: PairedGain; recovered: number | null; cheaper: number }[];
}

/** The goal the study states: a real pixel gain recovered ≥ 70% in embedding space at ≥ 10× less compute. */
export const GOAL = { recovered: 0.7, cheaper: 10 };

export function settings(r: StudyResult): Setting[] {
  const find = (c: Pick<StudyCell, 'arch' | 'base' | 'budget'>, arm: string, aug: string | null) =>
    r.cells.find((x) => x.arch === c.arch && x.base === c.base && x.budget === c.budget && x.arm === arm && x.aug === aug);
  return r.cells
    .filter((c) => c.arm === 'pixel' && c.aug)
    .flatMap((px) => {
      const none = find(px, 'none', null);
      if (!none) return [];
      const pixel = gainOver(none.accuracy, px.accuracy);
      const arms = r.cells
        .filter((c) => c.arch === px.arch && c.base === px.base && c.budget === px.budget && c.arm !== 'none' && c.arm !== 'pixel' && (c.aug === px.aug || c.aug === null))
        .map((c) => {
          const gain = gainOver(none.accuracy, c.accuracy);
          return { arm: c.arm, gain, recovered: pixel.real ? gain.mean / pixel.mean : null, cheaper: px.computeSeconds / c.computeSeconds };
        });
      return [{ arch: px.arch, base: px.base, budget: px.budget, aug: px.aug!, pixel, arms }];
    });
}

const pts = (g: PairedGain) => `${g.mean >= 0 ? '+' : ''}${(100 * g.mean).toFixed(2)} ± ${(100 * g.std).toFixed(2)}`;
const pct = (x: number) => `${(100 * x).toFixed(0)}%`;
const budgetText = (b: Budget) => (b === 'full' ? 'all images' : `${b}/class`);

/** The few sentences a reader needs: where augmentation pays, where not, and why. */
export function findings(r: StudyResult): string[] {
  const s = settings(r);
  const real = s.filter((x) => x.pixel.real);
  const out: string[] = [];
  out.push(real.length
    ? `Pixel augmentation during fine-tuning gains beyond the noise (mean > 2 std of the per-seed difference) in ${real.length} of ${s.length} settings: ${real.map((x) => `${x.arch}/${x.base} base, ${x.aug}, ${budgetText(x.budget)} (${pts(x.pixel)} points)`).join('; ')}.`
    : `Pixel augmentation during fine-tuning gains nothing beyond the noise in any of the ${s.length} settings (architecture × base × budget × augmentation).`);
  const flat = s.filter((x) => !x.pixel.real);
  if (real.length && flat.length) out.push(`It does not pay (gain within the noise) for ${flat.map((x) => `${x.arch}/${x.base}, ${x.aug}, ${budgetText(x.budget)}`).join('; ')}.`);
  // How large the noise is where nothing pays: the spread over seeds of the unaugmented head.
  const spread = r.budgets.map((b) => {
    const nones = r.cells.filter((c) => c.budget === b && c.arm === 'none');
    return { b, std: nones.reduce((a, c) => a + c.accuracy.std, 0) / Math.max(1, nones.length), real: real.filter((x) => x.budget === b).length };
  });
  out.push(`The noise: the spread over seeds (each its own draw of images) of the unaugmented head is ${spread.map((x) => `±${(100 * x.std).toFixed(1)} points at ${budgetText(x.b)}`).join(', ')}; a gain smaller than that cannot be told from the choice of images.`);
  for (const x of real) {
    const best = [...x.arms].sort((a, b) => (b.recovered ?? -Infinity) - (a.recovered ?? -Infinity));
    out.push(`${x.arch}/${x.base}, ${x.aug}, ${budgetText(x.budget)}: ${best.map((a) => `${a.arm} recovers ${pct(a.recovered!)} (${a.cheaper.toFixed(1)}× less compute)`).join(', ')}.`);
  }
  const met = real.flatMap((x) => x.arms.filter((a) => a.arm.startsWith('embed') && a.recovered! >= GOAL.recovered && a.cheaper >= GOAL.cheaper).map((a) => ({ x, a })));
  out.push(met.length
    ? `Goal met: embedding-space augmentation recovers ≥ ${pct(GOAL.recovered)} of a real pixel gain at ≥ ${GOAL.cheaper}× less compute in ${met.map(({ x, a }) => `${x.arch}/${x.base}, ${x.aug}, ${budgetText(x.budget)} (${a.arm}: ${pct(a.recovered!)}, ${a.cheaper.toFixed(0)}×)`).join('; ')}.`
    : `Goal not met: no setting has a real pixel gain that an embedding-space arm recovers ≥ ${pct(GOAL.recovered)} of at ≥ ${GOAL.cheaper}× less compute${real.length ? ` (best embed recovery: ${bestEmbed(real)})` : ''}.`);
  const withMixup = real.filter((x) => x.arms.some((a) => a.arm === 'mixup') && x.arms.some((a) => a.arm.startsWith('embed')));
  if (withMixup.length) {
    const beats = withMixup.filter((x) => x.arms.find((a) => a.arm === 'mixup')!.gain.mean >= Math.max(...x.arms.filter((a) => a.arm.startsWith('embed')).map((a) => a.gain.mean)));
    out.push(`Feature mixup, which needs no Ω and no base pairs, gains as much as the best embedding-space arm or more in ${beats.length} of the ${withMixup.length} settings where pixel augmentation pays.`);
  }
  if (r.omega.length) {
    const byAug = new Map<string, number[]>();
    for (const o of r.omega) byAug.set(o.aug, [...(byAug.get(o.aug) ?? []), o.invariance]);
    out.push(`How much Φ sees each augmentation: cos(Φ(x), Φ(g(x))) on held-out base images is ${[...byAug].map(([a, v]) => `${Math.min(...v).toFixed(3)}–${Math.max(...v).toFixed(3)} for ${a}`).join(', ')} (1 would mean Φ is blind to it); the closer to 1, the less a view adds that the head has not seen.`);
  }
  return out;
}

function bestEmbed(real: Setting[]): string {
  const all = real.flatMap((x) => x.arms.filter((a) => a.arm.startsWith('embed')).map((a) => ({ x, a })));
  if (!all.length) return 'no embed arm was run';
  const { x, a } = all.reduce((p, q) => ((q.a.recovered ?? -Infinity) > (p.a.recovered ?? -Infinity) ? q : p));
  return `${a.arm} ${pct(a.recovered!)} at ${a.cheaper.toFixed(1)}× less compute, ${x.arch}/${x.base}, ${x.aug}, ${budgetText(x.budget)}`;
}

export function studyMarkdown(r: StudyResult): string {
  const groups = [...new Set(r.cells.map((c) => `${c.arch}|${c.base}`))].map((k) => k.split('|') as [string, string]);
  const rowsOf = (arch: string, base: string) => [...new Map(r.cells.filter((c) => c.arch === arch && c.base === base).map((c) => [`${c.arm}|${c.aug}`, c])).values()];
  const cell = (arch: string, base: string, budget: Budget, arm: string, aug: string | null) =>
    r.cells.find((c) => c.arch === arch && c.base === base && c.budget === budget && c.arm === arm && c.aug === aug);
  const label = (c: StudyCell) => `${c.arm}${c.aug ? ` ${c.aug}` : ''}`;
  const lines = [
    '# Where does augmentation pay? — study',
    '',
    `Protocol: **${r.protocol}** (${r.protocolDescription}). Budgets: ${r.budgets.map(budgetText).join(', ')}; each seed draws its own balanced subset (seeds: ${Object.entries(r.seeds).map(([b, n]) => `${n} at ${b}`).join(', ')}); tested on the whole target test split. ` +
      `Learning rate (of ${r.lrs.join(', ')}) and epochs are chosen per cell on validation splits carved from the training images (20% per class, at least 2; the mean curve of the first 3 draws up to 50 per class, of the first draw above), never on the test split; every seed then trains on all its training images with the chosen values. Ω is trained on ${r.omegaImages} base images per backbone and augmentation.`,
    '',
    '## Findings',
    '',
    ...findings(r).map((f) => `- ${f}`),
    '',
    '## Accuracy on the target test split (%, mean ± std over seeds)',
  ];
  for (const [arch, base] of groups) {
    lines.push('', `### ${arch}, base trained with ${base === 'none' ? 'no augmentation' : base}`, '', `| arm | ${r.budgets.map(budgetText).join(' | ')} |`, `|---|${r.budgets.map(() => '---:').join('|')}|`);
    for (const c of rowsOf(arch, base))
      lines.push(`| ${label(c)} | ${r.budgets.map((b) => {
        const x = cell(arch, base, b, c.arm, c.aug);
        return x ? `${(100 * x.accuracy.mean).toFixed(2)} ± ${(100 * x.accuracy.std).toFixed(2)}` : '–';
      }).join(' | ')} |`);
  }
  lines.push('', '## Gains over none, and the share of the pixel gain each arm recovers', '',
    'Points, mean ± std of the per-seed difference (the seeds pair: the same images, the same initial weights); **bold** when beyond 2 std. Where the pixel gain is real: (arm − none) / (pixel − none), and how many times less compute the arm takes than pixel (wall time per head, cached views at their measured Φ cost; Ω\'s one-off cost apart, below).', '',
    '| architecture | base | augmentation | budget | pixel | other arms |', '|---|---|---|---|---:|---|');
  for (const s of settings(r))
    lines.push(`| ${s.arch} | ${s.base} | ${s.aug} | ${budgetText(s.budget)} | ${s.pixel.real ? `**${pts(s.pixel)}**` : pts(s.pixel)} | ${s.arms.map((a) => `${a.arm} ${a.gain.real ? `**${pts(a.gain)}**` : pts(a.gain)}${a.recovered !== null ? ` (${pct(a.recovered)}, ${a.cheaper.toFixed(1)}×)` : ''}`).join('; ')} |`);
  lines.push('', '## Compute per head', '', 'Φ passes of one head and its compute (seconds: wall time with the other heads running beside it, one per core, plus the cached views it used at the measured cost of one Φ pass on one core).', '',
    '| architecture | base | budget | arm | images | Φ passes | seconds |', '|---|---|---|---|---:|---:|---:|');
  for (const c of r.cells) lines.push(`| ${c.arch} | ${c.base} | ${budgetText(c.budget)} | ${label(c)} | ${c.trainImages} | ${c.phiPasses} | ${c.computeSeconds.toFixed(2)} |`);
  lines.push('', `Seconds per Φ pass on one core: ${Object.entries(r.phiSecondsPerImage).map(([k, v]) => `${k} ${(v * 1e3).toFixed(2)} ms`).join(', ')}.`);
  if (r.omega.length) {
    lines.push('', '## Ω and the invariance of Φ (held-out base pairs)', '', '| architecture | base | augmentation | Ω used | cos(Φ(x), Φ(g(x))) | cos(Ω(Φ(x)), Φ(g(x))) | MSE identity | MSE Ω | Φ passes | seconds |', '|---|---|---|---|---:|---:|---:|---:|---:|---:|');
    for (const o of r.omega) lines.push(`| ${o.arch} | ${o.base} | ${o.aug} | ${o.chosen} | ${o.invariance.toFixed(4)} | ${o.cosine.toFixed(4)} | ${o.identityMse.toPrecision(3)} | ${o.heldOutMse.toPrecision(3)} | ${o.phiPasses} | ${o.seconds.toFixed(1)} |`);
  }
  lines.push('', '## Chosen hyperparameters (validation split)', '', '| architecture | base | budget | arm | lr | epochs | validation accuracy |', '|---|---|---|---|---:|---:|---:|');
  for (const c of r.cells) lines.push(`| ${c.arch} | ${c.base} | ${budgetText(c.budget)} | ${label(c)} | ${c.chosen.lr} | ${c.chosen.epochs} | ${(100 * c.chosen.valAccuracy).toFixed(1)} |`);
  lines.push('', `Wall time: ${(r.seconds / 60).toFixed(1)} min. Runs are in the database under group \`study-${r.runId}\`.`);
  return `${lines.join('\n')}\n`;
}

/** Accuracy against budget (log scale) per arm, with ± 1 std bars, as inline SVG: the report opens offline. */
function studyHtml(r: StudyResult, md: string): string {
  const x = (c: StudyCell) => (c.budget === 'full' ? c.trainImages / r.classes : c.budget);
  const figs: string[] = [];
  for (const key of new Set(r.cells.filter((c) => c.aug).map((c) => `${c.arch}|${c.base}|${c.aug}`))) {
    const [arch, base, aug] = key.split('|');
    const cells = r.cells.filter((c) => c.arch === arch && c.base === base && (c.aug === aug || c.aug === null));
    const series = [...new Set(cells.map((c) => c.arm))].map((arm) => ({
      name: arm,
      points: cells.filter((c) => c.arm === arm).map((c): [number, number, number] => [x(c), c.accuracy.mean, c.accuracy.std]).sort((a, b) => a[0] - b[0]),
    }));
    figs.push(lineChart(series, {
      title: `${arch}, base ${base}, ${aug}`, xLabel: 'training images per class (log scale)', yLabel: 'test accuracy (%), ±1 std', logX: true,
      xTicks: new Map(cells.map((c) => [x(c), budgetText(c.budget)])), yFormat: (y) => (100 * y).toFixed(1),
    }));
  }
  return htmlPage('embaug — where does augmentation pay?', `<ul>${findings(r).map((f) => `<li>${inlineHtml(f)}</li>`).join('')}</ul>${figs.join('\n')}${markdownHtml(md)}`);
}

export async function writeStudyReport(out: string, r: StudyResult): Promise<void> {
  makeDirs(out);
  const md = studyMarkdown(r);
  writeFileSync(join(out, 'study.md'), md);
  writeFileSync(join(out, 'study.json'), `${JSON.stringify({ ...r, settings: settings(r), findings: findings(r) }, null, 2)}\n`);
  writeFileSync(join(out, 'report.html'), studyHtml(r, md));
}
