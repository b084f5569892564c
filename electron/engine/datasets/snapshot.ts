/**
 * A data set version: its identity (a hash of class names and of every included image's
 * bytes hash, label and split) and the immutable snapshot of its editable state. Used by the
 * importer (the first version) and by curation edits (every later one).
 */
import { createHash } from 'node:crypto';
import { gzipSync } from 'node:zlib';

import { stmt, type Db } from '../db.js';

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

/** Records the current state as a version and makes it the data set's version. */
export function snapshotVersion(db: Db, datasetId: number, parentHash: string | null, note: string): DatasetVersion {
  const classes = (stmt(db, 'SELECT classes FROM datasets WHERE id = ?').get(datasetId) as { classes: string }).classes;
  const rows = state(db, datasetId);
  const hash = hashOf(rows, JSON.parse(classes));
  const blob = gzipSync(JSON.stringify(rows.map((r) => [r.label, r.split, r.excluded, r.tags, r.note])));
  const count = rows.filter((r) => !r.excluded).length;
  const info = db
    .prepare('INSERT INTO dataset_versions (dataset_id, hash, parent_hash, note, classes, state, image_count, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)')
    .run(datasetId, hash, parentHash, note, classes, blob, count, new Date().toISOString());
  stmt(db, 'UPDATE datasets SET version = ?, image_count = ? WHERE id = ?').run(hash, count, datasetId);
  return { id: Number(info.lastInsertRowid), hash, parentHash, note, classes: JSON.parse(classes), imageCount: count, createdAt: new Date().toISOString() };
}
