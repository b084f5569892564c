/**
 * A data set version: its identity (a hash of class names and of every included image's
 * bytes hash, label and split) and the immutable snapshot of its editable state. Used by the
 * importer (the first version) and by curation edits (every later one).
 */
import { createHash } from 'node:crypto';
import { gunzipSync, gzipSync } from 'node:zlib';

import { stmt, type Db } from '../db.js';
import { EmbaugError } from '../errors.js';

/**
 * A data set version's identity: its class names and, for every image it includes, the
 * image's bytes hash, label and split — in no particular order, so an export re-imported in
 * another order is the same version.
 */
export function datasetVersion(rows: { sha256: string; label: number; split: string }[], classes: string[]): string {
  const lines = rows.map((r) => `${r.sha256},${r.label},${r.split}\n`).sort();
  const h = createHash('sha256').update(`${JSON.stringify(classes)}\n`);
  for (const l of lines) h.update(l);
  return h.digest('hex');
}

export interface DatasetVersion {
  id: number;
  hash: string;
  parentHash: string | null;
  note: string;
  classes: string[];
  imageCount: number;
  createdAt: string;
}

interface StateRow {
  idx: number;
  sha256: string;
  label: number;
  split: string;
  excluded: number;
  tags: string;
  note: string;
}

function state(db: Db, datasetId: number): StateRow[] {
  return stmt(db, 'SELECT idx, sha256, label, split, excluded, tags, note FROM images WHERE dataset_id = ? ORDER BY idx').all(datasetId) as StateRow[];
}

function hashOf(rows: StateRow[], classes: string[]): string {
  return datasetVersion(rows.filter((r) => !r.excluded), classes);
}

/** One image's editable state in a snapshot, by image index. */
export type SnapshotRow = Omit<StateRow, 'idx' | 'sha256'>;

/**
 * The stored form of a version's state (gzipped JSON): named columns under a format tag, so
 * a field can be added without misreading older rows. Format 1 was a positional tuple per
 * image, [label, split, excluded, tags, note]; databases written before format 2 hold it.
 */
interface SnapshotV2 {
  format: 'embaug.dataset-state';
  version: 2;
  label: number[];
  split: string[];
  excluded: number[];
  tags: string[];
  note: string[];
}

function encodeSnapshot(rows: SnapshotRow[]): Buffer {
  const s: SnapshotV2 = {
    format: 'embaug.dataset-state',
    version: 2,
    label: rows.map((r) => r.label),
    split: rows.map((r) => r.split),
    excluded: rows.map((r) => r.excluded),
    tags: rows.map((r) => r.tags),
    note: rows.map((r) => r.note),
  };
  return gzipSync(JSON.stringify(s));
}

/** The rows of a stored snapshot, in image-index order, whichever format wrote it. */
export function decodeSnapshot(blob: Buffer): SnapshotRow[] {
  const v: unknown = JSON.parse(gunzipSync(blob).toString('utf8'));
  if (Array.isArray(v)) {
    return (v as [number, string, number, string, string][]).map(([label, split, excluded, tags, note]) => ({ label, split, excluded, tags, note }));
  }
  const s = v as Partial<SnapshotV2>;
  if (s.format !== 'embaug.dataset-state' || s.version !== 2) {
    throw new EmbaugError('E_DB', `A data set version's stored state has an unknown format (${String(s.format)} v${String(s.version)}): it was written by a newer embaug; open the database with that version.`);
  }
  return s.label!.map((label, i) => ({ label, split: s.split![i], excluded: s.excluded![i], tags: s.tags![i], note: s.note![i] }));
}

/** Records the current state as a version and makes it the data set's version. */
export function snapshotVersion(db: Db, datasetId: number, parentHash: string | null, note: string): DatasetVersion {
  const classes = (stmt(db, 'SELECT classes FROM datasets WHERE id = ?').get(datasetId) as { classes: string }).classes;
  const rows = state(db, datasetId);
  const hash = hashOf(rows, JSON.parse(classes));
  const blob = encodeSnapshot(rows);
  const count = rows.filter((r) => !r.excluded).length;
  const info = db
    .prepare('INSERT INTO dataset_versions (dataset_id, hash, parent_hash, note, classes, state, image_count, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)')
    .run(datasetId, hash, parentHash, note, classes, blob, count, new Date().toISOString());
  stmt(db, 'UPDATE datasets SET version = ?, image_count = ? WHERE id = ?').run(hash, count, datasetId);
  return { id: Number(info.lastInsertRowid), hash, parentHash, note, classes: JSON.parse(classes), imageCount: count, createdAt: new Date().toISOString() };
}
