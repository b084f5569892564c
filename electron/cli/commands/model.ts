import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';

import { addBackbone, addClassifierBackbone, embeddingCandidates, listBackbones } from '../../engine/backbones/index.js';
import { parseAug } from '../../engine/augment/index.js';
import { type ExtractRequest, cacheStats, exportCacheParquet, extract, importCacheParquet } from '../../engine/embeddings/index.js';
import { extractShard, parseShard } from '../../engine/cluster/index.js';
import { outputFile } from '../../engine/paths.js';
import { distinct } from '../../engine/validate.js';
import { UsageError, classesOpt, intOpt, listOpt, parse } from '../args.js';
import { type Ctx, table } from '../context.js';

export const BACKBONE_HELP = `embaug backbone <command>
  add <model.onnx> [--manifest FILE] [--name NAME]
      Register an ONNX backbone with its JSON description (default: <model>.json beside it),
      or describe its input contract with flags instead of a manifest:
        --input NAME --size HxW [--layout NCHW|NHWC] [--range 0,1] [--mean r,g,b] [--std r,g,b]
        [--bgr] [--normalised-in-graph] --embedding OUTPUT [--logits OUTPUT]
      The model is opened in ONNX Runtime and checked with a real batch before it is recorded.
  add <classifier.onnx> --from-classifier [--tensor T] [--size HxW] [--range --mean --std --bgr]
      Use any ONNX image classifier: cut its graph at T (default: the input of its last
      Gemm/MatMul; a rank-4 map is pooled) to give it an embedding output.
  candidates <model.onnx>    Tensors that could serve as the embedding, the default first.
  list                       Registered backbones (name, sha256, D, architecture, base accuracy).`;

export const EXTRACT_HELP = `embaug extract --dataset D --backbone B [--aug SPEC ...] [--split S] [--classes 0-4]
               [--limit N] [--seed S] [--dtype float32|float16] [--batch N]
  Compute and cache embeddings Φ(g(x)), for each --aug given (identity if none). Resumable:
  images already cached are skipped. One ONNX Runtime session per --threads core, each on
  --batch images at a time (default: the backbone's, from its largest layer: 16 to 64 for
  the bundled ones); the vectors do not depend on either.
  SPEC: identity, hflip, vflip, rot90:k=1..3, rotate:min=-15,max=15, crop:pad=4,
        translate:dx=2,dy=0, brightness:s=0.2, contrast:s=0.2, saturation:s=0.2, cutout:size=8;
        join with + (e.g. crop:pad=4+hflip:p=0.5); p=<probability> on any op.
  --shard K/N --out DIR: only the images whose hash falls in part K of N (a cluster array's
  task; see embaug cluster), into DIR/extract-K-of-N.parquet; the database is only read.
  embaug merge DIR puts the parts into the cache.`;

export const CACHE_HELP = `embaug cache <command>
  stats                      Embedding sets, vector counts and sizes.
  export --format parquet --out FILE [--set ID ...]
                             Embedding sets (all by default; of one length and type) as one
                             Parquet file: image_sha256, aug_key, seed, backbone_sha256,
                             preprocess_key, vector (fixed-size list of float32 or float16).
  import FILE                A Parquet file of that layout into the cache (its backbone must be
                             registered); vectors already cached are left as they are.`;

function manifestFromFlags(v: Record<string, unknown>): unknown {
  const size = String(v.size ?? '');
  const m = /^(\d+)x(\d+)$/.exec(size);
  if (!m) throw new UsageError('--size takes HxW, e.g. --size 224x224');
  return {
    architecture: 'custom',
    input: {
      name: v.input,
      layout: v.layout ?? 'NCHW',
      height: Number(m[1]),
      width: Number(m[2]),
      channels: v.bgr ? 'BGR' : 'RGB',
      range: listOpt(v.range, 'range') ?? [0, 1],
      mean: listOpt(v.mean, 'mean') ?? [0, 0, 0],
      std: listOpt(v.std, 'std') ?? [1, 1, 1],
      normalisation: v['normalised-in-graph'] ? 'inside the graph' : 'by embaug',
    },
    embedding: { output: v.embedding },
    ...(v.logits ? { logits: { output: v.logits } } : {}),
  };
}

/** A flag that the chosen way of describing the model does not read is refused, not silently ignored. */
function strayBackboneFlags(v: Record<string, unknown>): void {
  const given = (names: string[]) => names.filter((n) => v[n] !== undefined).map((n) => `--${n}`);
  const flags = (xs: string[]) => `${xs.join(', ')} ${xs.length === 1 ? 'is' : 'are'}`;
  if (v['from-classifier']) {
    const stray = given(['manifest', 'input', 'embedding', 'logits']);
    if (stray.length) throw new UsageError(`${flags(stray)} not read with --from-classifier: the embedding is the tensor where the classifier is cut (--tensor T); leave ${stray.length === 1 ? 'it' : 'them'} out`);
    return;
  }
  const tensor = given(['tensor']);
  if (tensor.length) throw new UsageError('--tensor names where a classifier is cut: it goes with --from-classifier');
  if (v.input !== undefined && v.manifest !== undefined) throw new UsageError('--manifest and --input both describe the input: give the manifest file or the flags, not both');
  const stray = given(['size', 'layout', 'range', 'mean', 'std', 'bgr', 'normalised-in-graph', 'embedding', 'logits']);
  if (v.input === undefined && stray.length)
    throw new UsageError(`${flags(stray)} read only with --input NAME (with --size HxW and --embedding OUTPUT): without --input the model's manifest is used as it stands. Give --input too, or leave ${stray.length === 1 ? 'it' : 'them'} out`);
}

export async function backbone(ctx: Ctx, argv: string[]): Promise<void> {
  const [sub, ...rest] = argv;
  if (sub === 'add') {
    const { values, positionals } = parse(rest, {
      manifest: { type: 'string' }, name: { type: 'string' }, input: { type: 'string' }, size: { type: 'string' },
      layout: { type: 'string' }, range: { type: 'string' }, mean: { type: 'string' }, std: { type: 'string' },
      bgr: { type: 'boolean' }, 'normalised-in-graph': { type: 'boolean' }, embedding: { type: 'string' }, logits: { type: 'string' },
      'from-classifier': { type: 'boolean' }, tensor: { type: 'string' },
    }, 1);
    if (positionals.length !== 1) throw new UsageError('backbone add takes one ONNX file');
    strayBackboneFlags(values);
    if (values['from-classifier']) {
      const src = resolve(positionals[0]);
      const size = values.size ? /^(\d+)x(\d+)$/.exec(String(values.size)) : null;
      if (values.size && !size) throw new UsageError('--size takes HxW, e.g. --size 224x224');
      const b = await addClassifierBackbone(ctx.db(), {
        onnxPath: src, tensor: values.tensor as string | undefined, name: values.name as string | undefined,
        input: {
          ...(size ? { height: Number(size[1]), width: Number(size[2]) } : {}),
          ...(values.layout ? { layout: values.layout as 'NCHW' } : {}),
          channels: values.bgr ? 'BGR' : 'RGB',
          range: (listOpt(values.range, 'range') ?? [0, 1]) as [number, number],
          mean: (listOpt(values.mean, 'mean') ?? [0, 0, 0]) as [number, number, number],
          std: (listOpt(values.std, 'std') ?? [1, 1, 1]) as [number, number, number],
          normalisation: values['normalised-in-graph'] ? 'inside the graph' : 'by embaug',
        },
      });
      ctx.out(b, `backbone "${b.name}" from a classifier: D=${b.dim}, embedding = ${String(b.manifest.embedding.taken_at)}`);
      return;
    }
    const manifest = values.input ? manifestFromFlags(values) : values.manifest ? resolve(values.manifest as string) : undefined;
    const b = await addBackbone(ctx.db(), { onnxPath: resolve(positionals[0]), manifest, name: values.name as string | undefined });
    ctx.out(b, `backbone "${b.name}": D=${b.dim}, sha256 ${b.sha256.slice(0, 16)}…, input ${b.manifest.input.layout} ${b.manifest.input.height}x${b.manifest.input.width}`);
    return;
  }
  if (sub === 'candidates') {
    const [file] = parse(rest, {}, 1).positionals;
    if (!file) throw new UsageError('backbone candidates takes an ONNX file');
    const c = embeddingCandidates(readFileSync(resolve(file)));
    ctx.out(c, () => [`input ${c.input.name} [${c.input.shape.join(',')}]`, `default: ${c.default ?? '(none: name a tensor)'}`, ...c.candidates.map((x) => `  ${x.tensor}   (${x.role})`)].join('\n'));
    return;
  }
  if (sub === 'list') {
    parse(rest, {});
    const list = listBackbones(ctx.db({ readOnly: true }));
    ctx.out(list, () =>
      list.length === 0
        ? 'no backbones yet: embaug backbone add <model.onnx>'
        : table([
            ['name', 'sha256', 'D', 'architecture', 'base aug', 'base top-1'],
            ...list.map((b) => [b.name, b.sha256.slice(0, 12), b.dim, b.manifest.architecture, String(b.manifest.base?.augmentation ?? '-'), String(b.manifest.base?.test_top1 ?? '-')]),
          ]),
    );
    return;
  }
  throw new UsageError(`unknown command "backbone ${sub ?? ''}"\n${BACKBONE_HELP}`);
}

/**
 * An extraction's request from its flags, every augmentation parsed first so a misspelt one
 * stops nothing half-way (shared with cluster slurm, which checks it before submitting).
 */
export function extractArgs(ctx: Ctx, argv: string[]) {
  const { values } = parse(argv, {
    dataset: { type: 'string' }, backbone: { type: 'string' }, aug: { type: 'string', multiple: true }, split: { type: 'string' },
    classes: { type: 'string' }, limit: { type: 'string' }, seed: { type: 'string' }, dtype: { type: 'string' }, batch: { type: 'string' },
    shard: { type: 'string' }, out: { type: 'string' },
  });
  if (!values.dataset || !values.backbone) throw new UsageError(`extract needs --dataset and --backbone\n${EXTRACT_HELP}`);
  const ds = values.dataset as string;
  const augs = (values.aug as string[] | undefined) ?? ['identity'];
  distinct('--aug', augs.map((a) => parseAug(a).key));
  augs.forEach((a) => parseAug(a));
  const req: Omit<ExtractRequest, 'aug'> = {
    dataset: /^\d+$/.test(ds) ? Number(ds) : ds, backbone: values.backbone as string, split: values.split as string | undefined,
    classes: classesOpt(values.classes), limit: intOpt(values.limit, 'limit'), seed: intOpt(values.seed, 'seed'),
    dtype: (values.dtype as 'float32' | 'float16' | undefined) ?? 'float32', batch: intOpt(values.batch, 'batch'), threads: ctx.threads,
    signal: ctx.signal, onProgress: ctx.progress,
  };
  return { values, augs, req };
}

export async function extractCmd(ctx: Ctx, argv: string[]): Promise<void> {
  const { values, augs, req } = extractArgs(ctx, argv);
  if (values.shard || values.out) {
    if (!values.shard || !values.out) throw new UsageError('extract --shard K/N and --out DIR go together: the part to compute and the folder its file goes to');
    const r = await extractShard(ctx.readDb(), { ...req, augs, shard: parseShard(String(values.shard)), out: resolve(String(values.out)) });
    ctx.out(r, r.skipped ? `${r.path} is there already: this part is done` : `wrote ${r.path}: ${r.extracted} vectors of ${r.images} images in ${r.seconds.toFixed(1)} s`);
    return;
  }
  const out: ({ aug: string; images: number } & Omit<Awaited<ReturnType<typeof extract>>, 'images'>)[] = [];
  for (const aug of augs) {
    const { images, ...summary } = await extract(ctx.db(), { ...req, aug });
    out.push({ aug, ...summary, images: images.length });
  }
  ctx.out(out.length === 1 ? out[0] : out, () => out.map((r) => `${out.length > 1 ? `${r.aug}: ` : ''}embedding set ${r.setId}: ${r.extracted} extracted, ${r.cached} already cached` +
    (r.extracted ? `, ${r.imagesPerSecond.toFixed(0)} images/s (the main thread busy ${(100 * (1 - r.onnxSeconds / r.seconds)).toFixed(1)}% of the time, waiting on ONNX Runtime the rest)` : '')).join('\n'));
}
export async function cache(ctx: Ctx, argv: string[]): Promise<void> {
  const [sub, ...rest] = argv;
  if (sub === 'export') {
    const { values } = parse(rest, { format: { type: 'string' }, out: { type: 'string' }, set: { type: 'string', multiple: true } });
    if (values.format !== 'parquet') throw new UsageError('cache export takes --format parquet (the one format it writes)');
    if (!values.out) throw new UsageError('cache export needs --out FILE.parquet');
    const out = outputFile(String(values.out));
    const ids = (values.set as string[] | undefined)?.map((x) => intOpt(x, 'set')!);
    const r = exportCacheParquet(ctx.db({ readOnly: true }), out, ids);
    ctx.out(r, `wrote ${r.path}: ${r.sets} set${r.sets === 1 ? '' : 's'}, ${r.rows} vectors, ${(r.bytes / 1048576).toFixed(1)} MiB`);
    return;
  }
  if (sub === 'import') {
    const { positionals } = parse(rest, {}, 1);
    if (positionals.length !== 1) throw new UsageError('usage: embaug cache import FILE.parquet');
    const r = importCacheParquet(ctx.db(), resolve(positionals[0]));
    ctx.out(r, () => table([['set', 'backbone', 'augmentation', 'seed', 'vectors', 'added'], ...r.map((x) => [x.setId, x.backbone, x.augKey, x.seed, x.rows, x.added])]));
    return;
  }
  if (sub !== 'stats') throw new UsageError(`unknown command "cache ${sub ?? ''}"\n${CACHE_HELP}`);
  parse(rest, {});
  const s = cacheStats(ctx.db({ readOnly: true }));
  ctx.out(s, () =>
    s.sets.length === 0
      ? 'the embedding cache is empty'
      : `${table([['set', 'backbone', 'output', 'augmentation', 'seed', 'dtype', 'D', 'vectors', 'MiB'], ...s.sets.map((x) => [x.id, x.backbone, x.output, x.augKey, x.seed, x.dtype, x.dim, x.count, (x.bytes / 1048576).toFixed(1)])])}\n` +
        `total: ${s.totalVectors} vectors, ${(s.totalBytes / 1048576).toFixed(1)} MiB`,
  );
}
