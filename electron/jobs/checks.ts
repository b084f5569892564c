/**
 * Each job's arguments checked against the database before the job is queued, with the
 * engine's own checks: a misspelt augmentation, a class the data set lacks or an Ω of another
 * backbone is refused at once, with what to do, instead of after minutes of extraction. The
 * checks read the database only (the server's thread runs them); anything on the user's file
 * system is checked in the job's worker.
 */
import { parseAug } from '../engine/augment/index.js';
import { getBackbone } from '../engine/backbones/index.js';
import { checkSelection, getDataset, type Selection } from '../engine/datasets/index.js';
import type { Db } from '../engine/db.js';
import { EmbaugError } from '../engine/errors.js';
import { getRun } from '../engine/runs/index.js';
import { checkOmegaRun, usesAugs } from '../engine/training/index.js';
import { distinct } from '../engine/validate.js';
import type { JobArgs, JobKind } from './args.js';

type Checks = { [K in JobKind]: (db: Db, args: JobArgs[K]) => void };

/** The backbone, the data set and its selections: throws the engine's error for the first wrong one. */
function source(db: Db, backbone: string, dataset: number, ...selections: Selection[]): string {
  const bb = getBackbone(db, backbone);
  const ds = getDataset(db, dataset);
  for (const s of selections) checkSelection(db, ds.id, s);
  return bb.sha256;
}

// Each augmentation once: a repeat is extracted or trained twice (and weighs double in a head).
const augs = (list: string[]) => {
  const specs = list.map((a) => parseAug(a));
  distinct('augmentations', specs.map((s) => s.key));
  return specs;
};

export const CHECKS = {
  import: () => {},
  extract: (db, a) => {
    augs(a.augs);
    source(db, a.backbone, a.dataset, { split: a.split, limit: a.limit });
  },
  omega: (db, a) => {
    augs(a.augs);
    source(db, a.backbone, a.dataset, { split: 'train', classes: a.classes, limit: a.limit });
  },
  head: (db, a) => {
    const specs = usesAugs(a.mode) ? augs(a.augs) : [];
    if (usesAugs(a.mode) && specs.length === 0) throw new EmbaugError('E_ARG', `fine-tuning mode "${a.mode}" needs at least one augmentation, e.g. hflip`);
    const sel = { classes: a.classes, limit: a.limit };
    const sha = source(db, a.backbone, a.dataset, { split: 'train', ...sel }, { split: 'test', ...sel });
    if (a.mode === 'embed')
      for (const s of specs) {
        const id = a.omegaRuns?.[s.key];
        if (id === undefined) throw new EmbaugError('E_ARG', `embed mode needs an Ω for "${s.key}": choose one, or train it in Augmentations (Ω) first`);
        checkOmegaRun(db, id, sha, s.key, a.sampling);
      }
  },
  curate: (db, a) => void source(db, a.backbone, a.dataset, { split: a.split, limit: a.limit }),
  advise: (db, a) => {
    augs(a.augs);
    source(db, a.backbone, a.dataset);
  },
  reproduce: () => {},
  export: (db, a) => void getRun(db, a.runId),
} satisfies Checks;
