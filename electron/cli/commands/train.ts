/** `embaug omega` and `embaug head`: train Ω and Ψ from the terminal, with the UI's options. */
import { parseAug } from '../../engine/augment/index.js';
import { getBackbone } from '../../engine/backbones/index.js';
import { getDataset, selectImages } from '../../engine/datasets/index.js';
import { OMEGA_FORMS, OMEGA_SAMPLINGS, FINE_TUNE_MODES, NEEDS_SHIFT_MODELS, checkOmegaRun, latestOmega, loadOmega, trainHead, trainOmega, usesAugs, type FineTuneMode, type OmegaForm, type OmegaSampling } from '../../engine/training/index.js';
import { distinct } from '../../engine/validate.js';
import { UsageError, classesOpt, intOpt, numOpt, parse } from '../args.js';
import type { Ctx } from '../context.js';

export const OMEGA_HELP = `embaug omega --dataset D --backbone B --aug SPEC [--aug SPEC ...] [--classes 0-4] [--limit N]
             [--epochs 20] [--form ${OMEGA_FORMS.join('|')}] [--lr 0.01] [--stochastic]
  Train Ω for each augmentation on the training split of D (the base task's classes: a head
  tested on images Ω saw is refused). Prints the held-out fidelity against the identity.
  --stochastic also fits what the stochastic forms draw from (the Gaussian of Ω's residual, the
  Gaussian of the shift, the base pairs for nearest neighbours, the generative Ω, the mixture
  density network), keeps them with the run, and prints each form's held-out MSE and energy
  score: what \`embaug head --sampling\` draws from. With few target images per class, Ω +
  Gaussian residual recovered most of the flip's gain where Ω's mean recovered none (README).`;

export const HEAD_HELP = `embaug head --dataset D --backbone B [--classes 5-9] [--limit N] [--mode ${FINE_TUNE_MODES.join('|')}]
            [--aug SPEC ...] [--omega AUG=RUN ...] [--epochs 20] [--lr 0.01] [--optimizer sgd|adam]
            [--batch 128] [--seed 0] [--sampling ${OMEGA_SAMPLINGS.join('|')}]
  Fine-tune a head Ψ on the train split of D's classes, tested on their test split every epoch.
  Embed mode uses, per augmentation, the Ω of --omega, else the newest Ω of this backbone that
  saw none of the head's test images (said on stderr). --sampling: how embed mode applies Ω, its
  mean (the paper; default) or a draw afresh for every sample in every epoch from a stochastic
  form (residual-gauss: Ω plus a Gaussian of its residual), from an Ω trained with --stochastic.`;

/** Options left out take the engine's defaults: an undefined value would override them. */
const given = <T extends object>(o: T) => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;

const dataset = (v: unknown) => (/^\d+$/.test(String(v)) ? Number(v) : String(v));

export async function omegaCmd(ctx: Ctx, argv: string[]): Promise<void> {
  const { values } = parse(argv, {
    dataset: { type: 'string' }, backbone: { type: 'string' }, aug: { type: 'string', multiple: true }, classes: { type: 'string' }, limit: { type: 'string' },
    epochs: { type: 'string' }, form: { type: 'string' }, lr: { type: 'string' }, stochastic: { type: 'boolean' },
  });
  const augs = (values.aug as string[] | undefined) ?? [];
  if (!values.dataset || !values.backbone || !augs.length) throw new UsageError(`omega needs --dataset, --backbone and at least one --aug\n${OMEGA_HELP}`);
  // Each spec parsed (a bad one named now), and each once.
  distinct('--aug', augs.map((a) => parseAug(a).key));
  const form = (values.form as string | undefined) ?? 'auto';
  if (!(OMEGA_FORMS as readonly string[]).includes(form)) throw new UsageError(`--form: "${form}" is not one of ${OMEGA_FORMS.join(', ')}`);
  const limit = intOpt(values.limit, 'limit');
  const out: Omit<Awaited<ReturnType<typeof trainOmega>>, 'params' | 'stochastic'>[] = [];
  for (const aug of augs) {
    const r = await trainOmega(ctx.db(), {
      backbone: String(values.backbone), dataset: dataset(values.dataset), selection: { split: 'train', classes: classesOpt(values.classes), limit, balanced: limit !== undefined },
      aug, config: given({ epochs: intOpt(values.epochs, 'epochs'), form: form as OmegaForm | 'auto', lr: numOpt(values.lr, 'lr'), stochastic: values.stochastic as boolean | undefined }),
      threads: ctx.threads, signal: ctx.signal, onProgress: ctx.progress,
    });
    const { params: _p, stochastic: _s, ...summary } = r;
    out.push(summary);
  }
  const forms = (r: (typeof out)[number]) =>
    r.sampling ? `\n  held-out MSE of the mean / energy score of the draws: ${Object.entries(r.sampling).map(([k, f]) => `${k} ${f.mse.toPrecision(3)} / ${f.energyScore.toPrecision(3)}`).join(', ')}` : '';
  ctx.out(out, () => out.map((r) => `Ω ${r.aug} (run ${r.runId}): ${r.chosen}, held-out MSE ${r.fidelity.heldOutMse.toPrecision(4)} vs identity ${r.fidelity.identityMse.toPrecision(4)}, cosine ${r.fidelity.cosine.toFixed(4)}${r.flagged ? ' — no better than the identity' : ''}${forms(r)}`).join('\n'));
}

export async function headCmd(ctx: Ctx, argv: string[]): Promise<void> {
  const { values } = parse(argv, {
    dataset: { type: 'string' }, backbone: { type: 'string' }, classes: { type: 'string' }, limit: { type: 'string' }, mode: { type: 'string' },
    aug: { type: 'string', multiple: true }, omega: { type: 'string', multiple: true }, epochs: { type: 'string' }, lr: { type: 'string' },
    optimizer: { type: 'string' }, batch: { type: 'string' }, seed: { type: 'string' }, sampling: { type: 'string' },
  });
  if (!values.dataset || !values.backbone) throw new UsageError(`head needs --dataset and --backbone\n${HEAD_HELP}`);
  const mode = ((values.mode as string | undefined) ?? 'none') as FineTuneMode;
  if (!FINE_TUNE_MODES.includes(mode)) throw new UsageError(`--mode: "${mode}" is not one of ${FINE_TUNE_MODES.join(', ')}`);
  const optimizer = (values.optimizer as string | undefined) ?? 'sgd';
  if (optimizer !== 'sgd' && optimizer !== 'adam') throw new UsageError(`--optimizer: "${optimizer}" is not sgd or adam`);
  const sampling = ((values.sampling as string | undefined) ?? 'mean') as OmegaSampling;
  if (!OMEGA_SAMPLINGS.includes(sampling)) throw new UsageError(`--sampling: "${sampling}" is not one of ${OMEGA_SAMPLINGS.join(', ')}`);
  if (values.sampling !== undefined && mode !== 'embed') throw new UsageError(`--sampling applies Ω in embed mode: add --mode embed`);
  if (!usesAugs(mode) && values.aug !== undefined) throw new UsageError(`--mode ${mode} trains without an augmentation, so --aug would be ignored: add --mode pixel or --mode embed, or leave --aug out`);
  if (mode !== 'embed' && values.omega !== undefined) throw new UsageError(`--omega names the Ω that embed mode applies: add --mode embed, or leave --omega out`);
  const augs = distinct('--aug', usesAugs(mode) ? ((values.aug as string[] | undefined) ?? []).map((a) => parseAug(a).key) : []);
  if (usesAugs(mode) && !augs.length) throw new UsageError(`--mode ${mode} needs at least one --aug (e.g. --aug hflip)`);
  const db = ctx.db();
  const bb = getBackbone(db, String(values.backbone));
  const ds = getDataset(db, dataset(values.dataset));
  const limit = intOpt(values.limit, 'limit');
  const sel = { classes: classesOpt(values.classes), limit, balanced: limit !== undefined };
  const test = { split: 'test', ...sel };
  const chosen = Object.fromEntries(((values.omega as string[] | undefined) ?? []).map((o) => {
    const m = /^(.+)=(\d+)$/.exec(o);
    if (!m) throw new UsageError(`--omega takes AUG=RUN (e.g. --omega hflip=12), got "${o}"`);
    return [parseAug(m[1]).key, Number(m[2])];
  }));
  const unasked = Object.keys(chosen).filter((a) => !augs.includes(a));
  if (unasked.length) throw new UsageError(`--omega ${unasked[0]}=… names an augmentation this head does not train with (--aug ${augs.join(' --aug ')}): add --aug ${unasked[0]}, or leave that --omega out`);
  const omegas: Record<string, ReturnType<typeof loadOmega>> = {};
  if (mode === 'embed') {
    const testImages = selectImages(db, ds.id, test);
    for (const a of augs) {
      const id = chosen[a] ?? latestOmega(db, bb.sha256, a, testImages, sampling !== 'mean');
      if (id === null)
        throw new UsageError(sampling === 'mean'
          ? `no Ω for "${a}" on ${bb.name} that saw none of this head's test images: train one (embaug omega --dataset D --backbone ${bb.name} --aug ${a} --classes ...) or pass --omega ${a}=RUN`
          : `no Ω for "${a}" on ${bb.name} with its shift models that saw none of this head's test images: ${NEEDS_SHIFT_MODELS}, or pass --omega ${a}=RUN`);
      checkOmegaRun(db, id, bb.sha256, a, sampling);
      if (chosen[a] === undefined) ctx.log(`embed mode: Ω for ${a} from run ${id}`);
      omegas[a] = loadOmega(db, id);
    }
  }
  const r = await trainHead(db, {
    backbone: bb.sha256, dataset: ds.id, train: { split: 'train', ...sel }, test, mode, augs, omegas, ...(mode === 'embed' ? { sampling } : {}),
    config: { ...given({ epochs: intOpt(values.epochs, 'epochs'), batch: intOpt(values.batch, 'batch'), seed: intOpt(values.seed, 'seed') }), optimizer: { kind: optimizer, lr: numOpt(values.lr, 'lr', 0.01)! } },
    threads: ctx.threads, signal: ctx.signal, onProgress: ctx.progress,
  });
  const last = r.history.at(-1);
  ctx.out({ runId: r.runId, testAccuracy: r.testAccuracy, epochs: r.history.length, classNames: r.classNames, history: r.history }, () =>
    `Ψ ${mode}${augs.length ? ` ${augs.join(',')}` : ''}${mode === 'embed' && sampling !== 'mean' ? ` (${sampling})` : ''} (run ${r.runId}): test accuracy ${(100 * r.testAccuracy).toFixed(2)}% after ${r.history.length} epochs (train loss ${last?.loss.toFixed(4)})`);
}
