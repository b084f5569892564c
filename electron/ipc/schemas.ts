/** Payload validation for every channel: the UI is trusted no more than any other input. */
import { z } from 'zod';

import { IMPORT_KINDS } from '../engine/datasets/index.js';
import { RUN_STATUSES } from '../engine/runs/index.js';
import { FINE_TUNE_MODES, OMEGA_FORMS, OMEGA_SAMPLINGS } from '../engine/training/index.js';
import type { Api, Channel } from './contract.js';

const id = z.number().int().nonnegative();
const aug = z.string().min(1).max(500);
const classes = z.array(z.number().int().min(0).max(1000)).max(1000).optional();

const job = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('import'), args: z.object({ kind: z.enum(IMPORT_KINDS), path: z.string().min(1), name: z.string().min(1).max(200), testFraction: z.number().min(0).max(0.99).optional() }) }),
  z.object({ kind: z.literal('extract'), args: z.object({ dataset: id, backbone: z.string().min(1), augs: z.array(aug).min(1).max(16), split: z.string().optional(), limit: z.number().int().positive().optional() }) }),
  z.object({
    kind: z.literal('omega'),
    args: z.object({ backbone: z.string().min(1), dataset: id, classes, augs: z.array(aug).min(1).max(16), epochs: z.number().int().min(1).max(1000), form: z.enum(OMEGA_FORMS), lr: z.number().positive().max(10), limit: z.number().int().positive().optional(), stochastic: z.boolean().optional() }),
  }),
  z.object({
    kind: z.literal('head'),
    args: z.object({
      backbone: z.string().min(1), dataset: id, classes, mode: z.enum(FINE_TUNE_MODES), augs: z.array(aug).max(16),
      omegaRuns: z.record(z.string(), id).optional(), sampling: z.enum(OMEGA_SAMPLINGS).optional(), epochs: z.number().int().min(1).max(100000), lr: z.number().positive().max(10),
      optimizer: z.enum(['sgd', 'adam']), batch: z.number().int().min(1).max(65536), seed: z.number().int().min(0).max(2 ** 31), limit: z.number().int().positive().optional(),
    }),
  }),
  z.object({
    kind: z.literal('curate'),
    args: z.object({ what: z.enum(['duplicates', 'labels', 'outliers', 'map']), dataset: id, backbone: z.string().min(1), threshold: z.number().min(-1).max(1).optional(), method: z.enum(['pca', 'umap']).optional(), split: z.string().optional(), limit: z.number().int().positive().optional() }),
  }),
  z.object({ kind: z.literal('advise'), args: z.object({ dataset: id, backbone: z.string().min(1), augs: z.array(aug).max(16), folds: z.number().int().min(3).max(20).optional(), valSplit: z.string().min(1).max(100).optional() }) }),
  z.object({ kind: z.literal('export'), args: z.object({ runId: id, outDir: z.string().min(1).max(4096), name: z.string().max(200).optional(), merged: z.boolean().optional(), force: z.boolean().optional() }) }),
  z.object({ kind: z.literal('reproduce'), args: z.object({ epochs: z.number().int().min(1).max(1000), seeds: z.number().int().min(1).max(20), subset: z.number().int().positive().optional(), perClass: z.number().int().positive().max(100000).optional(), augSets: z.array(z.enum(['hflip', 'vflip', 'both'])).optional(), archs: z.array(z.string()).optional(), bases: z.array(z.enum(['none', 'hflip'])).min(1).optional() }) }),
]);

// A curation edit, as editDataset takes it: images by index or by filter.
const target = z.union([z.array(z.number().int().min(0)).max(1_000_000), z.object({ split: z.string().optional(), label: z.number().int().min(0).optional(), tag: z.string().optional(), excluded: z.boolean().optional() }).strict()]);
const edit = z.discriminatedUnion('op', [
  z.object({ op: z.literal('relabel'), images: target, label: z.number().int().min(0) }),
  z.object({ op: z.enum(['exclude', 'include']), images: target }),
  z.object({ op: z.literal('move'), images: target, split: z.string().min(1).max(100) }),
  z.object({ op: z.enum(['tag', 'untag']), images: target, tags: z.array(z.string().min(1).max(100)).max(100) }),
  z.object({ op: z.literal('note'), images: target, note: z.string().max(10_000) }),
  z.object({ op: z.literal('renameClass'), label: z.number().int().min(0), name: z.string().min(1).max(255) }),
  z.object({ op: z.literal('mergeClasses'), from: z.number().int().min(0), into: z.number().int().min(0) }),
]);

/** A channel without a request takes nothing (undefined or null). */
type Req<C extends Channel> = Api[C]['req'] extends void ? undefined | null : Api[C]['req'];

/** One schema per channel, checked by the compiler against the contract's request type. */
export const SCHEMAS = {
  'system:info': z.undefined().or(z.null()),
  'datasets:list': z.undefined().or(z.null()),
  'datasets:histogram': z.object({ id }),
  'datasets:images': z.object({ id, split: z.string().optional(), label: z.number().int().min(0).optional(), offset: z.number().int().min(0), limit: z.number().int().min(1).max(2000) }),
  'datasets:thumbs': z.object({ shas: z.array(z.string().regex(/^[0-9a-f]{64}$/)).max(2000) }),
  'backbones:list': z.undefined().or(z.null()),
  'backbones:add': z.object({ onnxPath: z.string().min(1), manifestPath: z.string().optional(), manifest: z.unknown().optional(), name: z.string().max(200).optional() }),
  'backbones:candidates': z.object({ onnxPath: z.string().min(1) }),
  'backbones:addClassifier': z.object({
    onnxPath: z.string().min(1), tensor: z.string().optional(), height: z.number().int().positive().optional(), width: z.number().int().positive().optional(),
    mean: z.array(z.number()).length(3).optional(), std: z.array(z.number().positive()).length(3).optional(), normalisedInGraph: z.boolean().optional(), name: z.string().max(200).optional(),
  }),
  'embeddings:stats': z.undefined().or(z.null()),
  'datasets:versions': z.object({ id }),
  'datasets:edit': z.object({ id, edits: z.array(edit).min(1).max(10000), note: z.string().max(500).optional() }),
  'datasets:restore': z.object({ id, hash: z.string().regex(/^[0-9a-f]{6,64}$/) }),
  'runs:list': z.object({ kind: z.string().optional(), status: z.enum(RUN_STATUSES).optional(), group: z.string().optional(), parentId: id.optional(), search: z.string().max(200).optional(), limit: z.number().int().min(1).max(10000).optional() }),
  'runs:get': z.object({ id }),
  'runs:compare': z.object({ ids: z.array(id).min(2).max(20) }),
  'curation:latest': z.object({ dataset: id, backbone: z.string().min(1).max(200) }),
  'curation:neighbours': z.object({ dataset: id, backbone: z.string().min(1).max(200), idx: z.number().int().min(0), labels: z.array(z.number().int().min(0)).min(1).max(10), k: z.number().int().min(1).max(50).optional() }),
  'runs:update': z.object({ id, tags: z.array(z.string().max(100)).max(50).optional(), note: z.string().max(10_000).nullable().optional() }),
  'runs:delete': z.object({ ids: z.array(id).min(1).max(100_000).optional(), group: z.string().min(1).max(200).optional() }).refine((r) => !!r.ids !== !!r.group, 'give either ids or a group'),
  'paper:latest': z.undefined().or(z.null()),
  'fs:list': z.object({ path: z.string().min(1).max(4096).optional(), ext: z.array(z.string().regex(/^\.[a-z0-9]{1,10}$/)).max(8).optional() }),
  'dialog:file': z.object({ extensions: z.array(z.string().regex(/^[a-z0-9]{1,10}$/)).min(1).max(8) }),
  'dialog:folder': z.undefined().or(z.null()),
  'fs:preview': z.object({ path: z.string().min(1).max(4096) }),
  'backbones:bundled': z.undefined().or(z.null()),
  'backbones:addBundled': z.object({ file: z.string().regex(/^[\w.-]+\.json$/, 'the name of a description file in the models folder, e.g. resnet18-w16-none.json') }),
  // An image of at most 6 MB, base64: the web server takes 8 MB requests.
  'heads:classify': z.object({ runId: id, image: z.string().min(1).max(8_000_000).regex(/^[A-Za-z0-9+/]+=*$/, 'base64') }),
  'jobs:start': job,
  'jobs:cancel': z.object({ id: z.string().min(1).max(100) }),
  'jobs:list': z.undefined().or(z.null()),
} satisfies { [C in Channel]: z.ZodType<Req<C>> };
