/**
 * What each job kind does, in engine calls. Runs inside a job worker thread, with its own
 * database connection, so the UI's event loop never waits on training or extraction.
 */
import { join } from 'node:path';

import type { JobArgs, JobKind } from './args.js';
import { embeddingMap, findDuplicates, findLabelErrors, findOutliers } from '../engine/curation/index.js';
import { getDataset, importDataset, type ImageRow } from '../engine/datasets/index.js';
import { getBackbone } from '../engine/backbones/index.js';
import { startRun } from '../engine/runs/index.js';
import type { Db } from '../engine/db.js';
import { extract } from '../engine/embeddings/index.js';
import { exportRun } from '../engine/export/index.js';
import type { OnProgress } from '../engine/jobs/index.js';
import type { EpochStats } from '../engine/native/index.js';
import { reproduce } from '../engine/paper/index.js';
import { advise } from '../engine/study/index.js';
import { loadOmega, trainHead, trainOmega } from '../engine/training/index.js';

export interface TaskContext {
  db: Db;
  threads: number;
  signal: AbortSignal;
  onProgress: OnProgress;
  onEpoch: (series: string, s: EpochStats) => void;
  log: (line: string) => void;
  settings: { modelsDir: string; dataDir: string; outDir: string };
}

type Tasks = { [K in JobKind]: (ctx: TaskContext, args: JobArgs[K]) => Promise<unknown> };

/** An Ω trained earlier, rebuilt from its run's summary and weights. */
export const TASKS = {
  import: (c, a) =>
    importDataset(c.db, { kind: a.kind, path: a.path, name: a.name, splitRule: { test: a.testFraction ?? 0.2, seed: 0 }, signal: c.signal, onProgress: c.onProgress, threads: c.threads }),
  extract: async (c, a) => {
    const out = [];
    for (const aug of a.augs) {
      const r = await extract(c.db, { dataset: a.dataset, backbone: a.backbone, aug, split: a.split, limit: a.limit, threads: c.threads, signal: c.signal, onProgress: c.onProgress });
      const { images, ...rest } = r;
      out.push({ aug, images: images.length, ...rest });
    }
    return out;
  },
  omega: async (c, a) => {
    const out = [];
    for (const aug of a.augs) {
      const r = await trainOmega(c.db, {
        backbone: a.backbone, dataset: a.dataset, selection: { split: 'train', classes: a.classes, limit: a.limit, balanced: a.limit !== undefined },
        aug, config: { epochs: a.epochs, form: a.form, lr: a.lr, stochastic: a.stochastic ?? false }, threads: c.threads, signal: c.signal, onProgress: c.onProgress,
        onEpoch: (form, s) => c.onEpoch(`${aug} ${form}`, s),
      });
      // The shift models stay in the database (loadOmega): the job's result says only that they are kept.
      const { params: _p, stochastic, ...rest } = r;
      out.push({ ...rest, stochastic: stochastic !== null });
    }
    return out;
  },
  head: async (c, a) => {
    const omegas = Object.fromEntries(Object.entries(a.omegaRuns ?? {}).map(([aug, id]) => [aug, loadOmega(c.db, id)]));
    const sel = { classes: a.classes, limit: a.limit, balanced: a.limit !== undefined };
    const r = await trainHead(c.db, {
      backbone: a.backbone, dataset: a.dataset, train: { split: 'train', ...sel }, test: { split: 'test', ...sel }, mode: a.mode, augs: a.augs, omegas, sampling: a.sampling,
      config: { epochs: a.epochs, batch: a.batch, seed: a.seed, optimizer: { kind: a.optimizer, lr: a.lr } },
      threads: c.threads, signal: c.signal, onProgress: c.onProgress, onEpoch: (s) => c.onEpoch('head', s),
    });
    return { runId: r.runId, testAccuracy: r.testAccuracy, epochs: r.history.length };
  },
  curate: async (c, a) => {
    // Kept as a run, keyed by the data set's version and the backbone, so the Curation view
    // shows the result again after a reload (curation:latest), with its age.
    const ds = getDataset(c.db, a.dataset), bb = getBackbone(c.db, a.backbone);
    const run = startRun(c.db, { kind: 'curate', name: `${a.what} of ${ds.name} on ${bb.name}`, datasetId: ds.id, datasetVersion: ds.version, backboneSha: bb.sha256, config: { ...a } });
    return run.wrap(async () => {
      const result = await curateResult(c, a);
      run.artifact('result', 'result.json', Buffer.from(JSON.stringify(result)));
      return result;
    }, (r) => ({ what: r.what }));
  },
  // A job, not a request: the server's thread never waits on the user's file system.
  export: (c, a) => exportRun(c.db, a),
  advise: (c, a) => advise(c.db, { dataset: a.dataset, backbone: a.backbone, augs: a.augs, folds: a.folds, valSplit: a.valSplit, threads: c.threads, signal: c.signal, onProgress: c.onProgress }),
  reproduce: async (c, a) => {
    const out = join(c.settings.outDir, `reproduction-${new Date().toISOString().replace(/[:.]/g, '-')}`);
    const r = await reproduce(c.db, {
      out, modelsDir: c.settings.modelsDir, dataDir: c.settings.dataDir, epochs: a.epochs, seeds: a.seeds, subset: a.subset, perClass: a.perClass, augSets: a.augSets, archs: a.archs, bases: a.bases,
      threads: c.threads, signal: c.signal, onProgress: c.onProgress, log: c.log,
    });
    return { runId: r.runId, out, seconds: r.seconds };
  },
} satisfies Tasks;

async function curateResult(c: TaskContext, a: JobArgs['curate']) {
  const common = { dataset: a.dataset, backbone: a.backbone, threads: c.threads, signal: c.signal, onProgress: c.onProgress };
  const slim = (i: ImageRow) => ({ idx: i.idx, sha256: i.sha256, label: i.label, split: i.split });
  const selection = a.split || a.limit ? { split: a.split, limit: a.limit, balanced: a.limit !== undefined } : undefined;
  if (a.what === 'duplicates') {
    const r = await findDuplicates(c.db, { ...common, threshold: a.threshold });
    const g = (x: typeof r.exact) => x.map((grp) => ({ ...grp, images: grp.images.map(slim) }));
    return { what: 'duplicates' as const, exact: g(r.exact), near: g(r.near), leaks: r.leaks, threshold: r.threshold };
  }
  if (a.what === 'labels') {
    const r = await findLabelErrors(c.db, { ...common, selection });
    return { what: 'labels' as const, outOfFoldAccuracy: r.outOfFoldAccuracy, ranked: r.ranked.slice(0, 1000).map((x) => ({ ...x, image: slim(x.image) })) };
  }
  if (a.what === 'outliers') return { what: 'outliers' as const, items: (await findOutliers(c.db, { ...common, selection })).slice(0, 1000).map((o) => ({ ...o, image: slim(o.image) })) };
  const m = await embeddingMap(c.db, { ...common, selection, method: a.method });
  return { what: 'map' as const, method: m.method, explained: m.explained, points: m.points.map((p) => ({ ...slim(p.image), x: p.x, y: p.y })) };
}

/** What each kind of job returns (sent to the UI as JSON). */
export type JobResults = { [K in JobKind]: Awaited<ReturnType<(typeof TASKS)[K]>> };
