/**
 * Registering an ONNX backbone: its file is hashed, copied beside the database, opened in
 * ONNX Runtime and checked against its description before anything is recorded.
 */
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, readFileSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import * as ort from 'onnxruntime-node';

import { stmt, type Db, dataDir } from '../db.js';
import { EmbaugError } from '../errors.js';
import { type Manifest, parseManifest } from './manifest.js';
import { makeDirs } from '../paths.js';

export interface BackboneInfo {
  sha256: string;
  name: string;
  path: string;
  manifest: Manifest;
  dim: number;
  addedAt: string;
}

export function sha256File(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

const sessions = new Map<string, Promise<ort.InferenceSession>>();

/**
 * The output of a backbone a cache set holds and its vector length: the manifest's embedding
 * output (the default) or its logits output, whose length is the number of classes.
 */
export function backboneOutput(bb: BackboneInfo, output?: string | null): { output: string; dim: number } {
  const { embedding, logits } = bb.manifest;
  const name = output ?? embedding.output;
  if (name !== embedding.output && name !== logits?.output)
    throw new EmbaugError('E_ARG', `Backbone ${bb.name} has no output "${name}" in its description: its outputs are ${[embedding.output, logits?.output].filter(Boolean).map((o) => `"${o}"`).join(' and ')}.`);
  const dim = name === embedding.output ? bb.dim : logits?.classes ?? logits?.class_names?.length;
  if (dim === undefined)
    throw new EmbaugError('E_MODEL', `Backbone ${bb.name}'s description does not say how many classes its logits "${name}" have: add logits.classes to it and add the backbone again.`);
  return { output: name, dim };
}

/** One session per (file, threads), reused: creating one costs tens of milliseconds. */
export function session(path: string, threads: number): Promise<ort.InferenceSession> {
  const key = `${path}#${threads}`;
  let s = sessions.get(key);
  if (!s) {
    s = ort.InferenceSession.create(path, {
      executionProviders: ['cpu'],
      intraOpNumThreads: threads,
      interOpNumThreads: 1,
      graphOptimizationLevel: 'all',
    });
    sessions.set(key, s);
    s.catch(() => sessions.delete(key));
  }
  return s;
}

/** Checks a model against its description with a real forward pass; returns the embedding size and the logits' classes. */
export async function checkModel(path: string, m: Manifest): Promise<{ dim: number; classes: number | null }> {
  let s: ort.InferenceSession;
  try {
    s = await session(path, 1);
  } catch (err) {
    throw new EmbaugError('E_MODEL', `${basename(path)} is not a loadable ONNX model: ${(err as Error).message}`);
  }
  const bad = (msg: string) => new EmbaugError('E_MODEL', `${basename(path)} does not fit its description: ${msg}`);
  if (!s.inputNames.includes(m.input.name))
    throw bad(`it has no input "${m.input.name}" (inputs: ${s.inputNames.join(', ')}); set input.name to one of them.`);
  const meta = s.inputMetadata.find((i) => i.name === m.input.name);
  if (meta && meta.isTensor) {
    if (meta.type !== 'float32') throw bad(`input "${m.input.name}" is ${meta.type}, but only float32 image inputs are supported.`);
    if (meta.shape.length !== 4) throw bad(`input "${m.input.name}" has rank ${meta.shape.length}, expected 4 (${m.input.layout}).`);
    const want = m.input.layout === 'NCHW' ? [3, m.input.height, m.input.width] : [m.input.height, m.input.width, 3];
    meta.shape.slice(1).forEach((d, i) => {
      if (typeof d === 'number' && d !== want[i])
        throw bad(`input "${m.input.name}" is [${meta.shape.join(',')}] but the description says ${m.input.layout} [N,${want.join(',')}]; fix input.height/width/layout.`);
    });
  }
  for (const o of [m.embedding.output, ...(m.logits ? [m.logits.output] : [])])
    if (!s.outputNames.includes(o)) throw bad(`it has no output "${o}" (outputs: ${s.outputNames.join(', ')}).`);
  const shape = m.input.layout === 'NCHW' ? [2, 3, m.input.height, m.input.width] : [2, m.input.height, m.input.width, 3];
  let out: ort.InferenceSession.OnnxValueMapType;
  try {
    out = await s.run({ [m.input.name]: new ort.Tensor('float32', new Float32Array(shape.reduce((a, b) => a * b)), shape) });
  } catch (err) {
    throw bad(`a test batch of shape [${shape.join(',')}] failed: ${(err as Error).message}`);
  }
  const emb = out[m.embedding.output] as ort.Tensor;
  if (emb.dims.length !== 2 || emb.dims[0] !== 2)
    throw bad(`output "${m.embedding.output}" is [${emb.dims.join(',')}] for 2 images; an embedding must be [N, D].`);
  const dim = emb.dims[1];
  if (m.embedding.dim !== undefined && m.embedding.dim !== dim) throw bad(`embedding.dim says ${m.embedding.dim} but the output has ${dim}.`);
  if (!m.logits) return { dim, classes: null };
  const lg = out[m.logits.output] as ort.Tensor;
  if (lg.dims.length !== 2 || lg.dims[0] !== 2) throw bad(`output "${m.logits.output}" is [${lg.dims.join(',')}] for 2 images; logits must be [N, classes].`);
  if (m.logits.classes !== undefined && lg.dims[1] !== m.logits.classes) throw bad(`logits.classes says ${m.logits.classes} but "${m.logits.output}" has ${lg.dims[1]}.`);
  return { dim, classes: lg.dims[1] };
}

export interface AddBackbone {
  onnxPath: string;
  /** A manifest object or the path of its JSON file; defaults to <onnx without .onnx>.json. */
  manifest?: unknown;
  name?: string;
}

export async function addBackbone(db: Db, req: AddBackbone): Promise<BackboneInfo> {
  if (!existsSync(req.onnxPath)) throw new EmbaugError('E_NOT_FOUND', `No ONNX file at ${req.onnxPath}.`);
  if (!statSync(req.onnxPath).isFile()) throw new EmbaugError('E_ARG', `${req.onnxPath} is a folder: give the .onnx file of the backbone.`);
  let raw = req.manifest;
  let where = 'given';
  if (raw === undefined || typeof raw === 'string') {
    const file = (raw as string | undefined) ?? `${req.onnxPath.replace(/\.onnx$/i, '')}.json`;
    if (!existsSync(file))
      throw new EmbaugError('E_NOT_FOUND', `No description for ${basename(req.onnxPath)}: expected ${file}, or give the input contract (see \`embaug backbone add --help\`).`);
    where = file;
    try {
      raw = JSON.parse(readFileSync(file, 'utf8'));
    } catch (err) {
      throw new TypeError(`${file} is not valid JSON: ${(err as Error).message}`);
    }
  }
  const manifest = parseManifest(raw, where);
  const sha256 = sha256File(req.onnxPath);
  if (manifest.sha256 && manifest.sha256 !== sha256)
    throw new EmbaugError('E_MODEL', `${basename(req.onnxPath)} has sha256 ${sha256.slice(0, 12)}…, but its description names ${manifest.sha256.slice(0, 12)}…: the file and the description do not belong together.`);
  const existing = stmt(db, 'SELECT sha256 FROM backbones WHERE sha256 = ?').get(sha256);
  if (existing) return getBackbone(db, sha256);
  const { dim, classes } = await checkModel(req.onnxPath, manifest);
  // The logits' length is kept with the description: the cache keeps logits sets by it.
  if (manifest.logits && classes !== null) manifest.logits.classes = classes;
  const dir = join(dataDir(db), 'backbones');
  makeDirs(dir);
  const path = join(dir, `${sha256}.onnx`);
  copyFileSync(req.onnxPath, path);
  const name = req.name ?? manifest.name ?? basename(req.onnxPath).replace(/\.onnx$/i, '');
  stmt(db, 'INSERT INTO backbones (sha256, name, path, manifest, dim, added_at) VALUES (?, ?, ?, ?, ?, ?)').run(
    sha256, name, path, JSON.stringify({ ...manifest, sha256 }), dim, new Date().toISOString(),
  );
  return getBackbone(db, sha256);
}

interface Row {
  sha256: string;
  name: string;
  path: string;
  manifest: string;
  dim: number;
  added_at: string;
}

const toInfo = (r: Row): BackboneInfo => ({
  sha256: r.sha256, name: r.name, path: r.path, manifest: JSON.parse(r.manifest), dim: r.dim, addedAt: r.added_at,
});

/** By sha256 (or a unique prefix of at least 8 characters) or by name. */
export function getBackbone(db: Db, ref: string): BackboneInfo {
  const rows = db
    .prepare('SELECT * FROM backbones WHERE sha256 = ? OR name = ? OR (length(?) >= 8 AND sha256 LIKE ? || \'%\')')
    .all(ref, ref, ref, ref) as Row[];
  if (rows.length === 0) throw new EmbaugError('E_NOT_FOUND', `There is no backbone "${ref}": add one with \`embaug backbone add\`, list them with \`embaug backbone list\`.`);
  if (rows.length > 1) throw new EmbaugError('E_ARG', `"${ref}" names ${rows.length} backbones: use the sha256.`);
  const b = toInfo(rows[0]);
  if (!existsSync(b.path)) throw new EmbaugError('E_NOT_FOUND', `The copy of backbone ${b.name} at ${b.path} is gone: add the ONNX file again.`);
  return b;
}

/** By exact sha256, whether or not its ONNX file is still there (vectors need only its description). */
export function findBackbone(db: Db, sha256: string): BackboneInfo | null {
  const r = stmt(db, 'SELECT * FROM backbones WHERE sha256 = ?').get(sha256) as Row | undefined;
  return r ? toInfo(r) : null;
}

export function listBackbones(db: Db): BackboneInfo[] {
  return (stmt(db, 'SELECT * FROM backbones ORDER BY added_at').all() as Row[]).map(toInfo);
}
