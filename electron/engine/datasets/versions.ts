/**
 * Curation edits and data set versions. The `images` rows hold a data set's current state;
 * every set of edits is applied in one transaction and snapshotted as a new immutable version
 * (its hash: class names, and the hash, label and split of every included image). Any version
 * can be restored, two can be diffed, and nothing is deleted from disk by an edit: excluded
 * images keep their bytes and rows.
 */

import { stmt, type Db } from '../db.js';
import { EmbaugError } from '../errors.js';
import { classNameProblem } from './names.js';
import { decodeSnapshot, snapshotVersion, type DatasetVersion } from './snapshot.js';
import { getDataset, type DatasetInfo } from './store.js';

export type { DatasetVersion } from './snapshot.js';

/** Images by index, or every image matching a filter (all conditions must hold). */
export type Target = number[] | { split?: string; label?: number; tag?: string; excluded?: boolean };

export type Edit =
  | { op: 'relabel'; images: Target; label: number }
  | { op: 'exclude' | 'include'; images: Target }
  | { op: 'move'; images: Target; split: string }
  | { op: 'tag'; images: Target; tags: string[] }
  | { op: 'untag'; images: Target; tags: string[] }
  | { op: 'note'; images: Target; note: string }
  | { op: 'renameClass'; label: number; name: string }
  | { op: 'mergeClasses'; from: number; into: number };

function resolveTarget(db: Db, ds: DatasetInfo, t: Target): number[] {
  if (Array.isArray(t)) {
    const bad = t.find((i) => !Number.isInteger(i) || i < 0);
    if (bad !== undefined) throw new RangeError(`image index ${bad} is not a non-negative integer`);
    const n = (stmt(db, 'SELECT count(*) AS n FROM images WHERE dataset_id = ?').get(ds.id) as { n: number }).n;
    const out = t.find((i) => i >= n);
    if (out !== undefined) throw new RangeError(`image ${out} does not exist: ${ds.name} has images 0..${n - 1}`);
    return t;
  }
  const where = ['dataset_id = ?'];
  const args: unknown[] = [ds.id];
  if (t.split !== undefined) (where.push('split = ?'), args.push(t.split));
  if (t.label !== undefined) (where.push('label = ?'), args.push(t.label));
  if (t.excluded !== undefined) (where.push('excluded = ?'), args.push(t.excluded ? 1 : 0));
  if (t.tag !== undefined) (where.push("(',' || tags || ',') LIKE ?"), args.push(`%,${t.tag},%`));
  const found = db.prepare(`SELECT idx FROM images WHERE ${where.join(' AND ')}`).pluck().all(...args) as number[];
  // A filter that matches nothing is a typo far more often than an intent: say what there is.
  if (found.length === 0) {
    const splits = db.prepare('SELECT DISTINCT split FROM images WHERE dataset_id = ? ORDER BY split').pluck().all(ds.id) as string[];
    throw new RangeError(`no image of ${ds.name} matches ${JSON.stringify(t)}: its splits are ${splits.map((s) => `"${s}"`).join(', ')} and its labels 0..${ds.classes.length - 1}`);
  }
  return found;
}

const splitTags = (s: string) => (s ? s.split(',') : []);

/** Applies edits in one transaction and returns the new version. */
export function editDataset(db: Db, ref: number | string, edits: Edit[], note = ''): DatasetVersion {
  const ds = getDataset(db, ref);
  if (!Array.isArray(edits) || edits.length === 0) throw new TypeError('edits must be a non-empty list');
  return db.transaction(() => {
    let classes = [...ds.classes];
    const checkLabel = (l: number, what: string) => {
      if (!Number.isInteger(l) || l < 0 || l >= classes.length) throw new RangeError(`${what} ${l} is not a class of ${ds.name} (0..${classes.length - 1})`);
    };
    const setField = db.prepare<[number | string, number, number]>('UPDATE images SET label = ? WHERE dataset_id = ? AND idx = ?');
    const setSplit = stmt(db, 'UPDATE images SET split = ? WHERE dataset_id = ? AND idx = ?');
    const setExcluded = stmt(db, 'UPDATE images SET excluded = ? WHERE dataset_id = ? AND idx = ?');
    const getTags = db.prepare('SELECT tags FROM images WHERE dataset_id = ? AND idx = ?').pluck();
    const setTags = stmt(db, 'UPDATE images SET tags = ? WHERE dataset_id = ? AND idx = ?');
    const setNote = stmt(db, 'UPDATE images SET note = ? WHERE dataset_id = ? AND idx = ?');
    for (const e of edits) {
      switch (e.op) {
        case 'relabel':
          checkLabel(e.label, 'label');
          for (const i of resolveTarget(db, ds, e.images)) setField.run(e.label, ds.id, i);
          break;
        case 'exclude':
        case 'include':
          for (const i of resolveTarget(db, ds, e.images)) setExcluded.run(e.op === 'exclude' ? 1 : 0, ds.id, i);
          break;
        case 'move':
          if (!/^[a-z][a-z0-9_-]*$/i.test(e.split)) throw new RangeError(`split "${e.split}" must be a simple name such as train, val or test`);
          for (const i of resolveTarget(db, ds, e.images)) setSplit.run(e.split, ds.id, i);
          break;
        case 'tag':
        case 'untag':
          if (e.tags.length === 0) throw new RangeError(`${e.op} needs at least one tag`);
          for (const t of e.tags) if (!/^[^,]+$/.test(t)) throw new RangeError(`tag "${t}" may not be empty or hold commas`);
          for (const i of resolveTarget(db, ds, e.images)) {
            const have = new Set(splitTags(getTags.get(ds.id, i) as string));
            for (const t of e.tags) e.op === 'tag' ? have.add(t) : have.delete(t);
            setTags.run([...have].sort().join(','), ds.id, i);
          }
          break;
        case 'note':
          for (const i of resolveTarget(db, ds, e.images)) setNote.run(e.note, ds.id, i);
          break;
        case 'renameClass':
          checkLabel(e.label, 'class');
          {
            const problem = classNameProblem(e.name.trim());
            if (problem) throw new RangeError(`the class name ${JSON.stringify(e.name)} cannot be used: ${problem}. Choose a name without /, \\, NUL or control characters.`);
          }
          if (classes.some((c, i) => c === e.name && i !== e.label)) throw new RangeError(`class "${e.name}" exists already: merge the classes instead`);
          classes[e.label] = e.name.trim();
          break;
        case 'mergeClasses': {
          checkLabel(e.from, 'class');
          checkLabel(e.into, 'class');
          if (e.from === e.into) throw new RangeError('a class cannot be merged into itself');
          stmt(db, 'UPDATE images SET label = ? WHERE dataset_id = ? AND label = ?').run(e.into, ds.id, e.from);
          // The merged class disappears; labels above it move down by one.
          stmt(db, 'UPDATE images SET label = label - 1 WHERE dataset_id = ? AND label > ?').run(ds.id, e.from);
          classes = classes.filter((_, i) => i !== e.from);
          break;
        }
        default:
          throw new TypeError(`unknown edit ${JSON.stringify((e as { op: unknown }).op)}: use relabel, exclude, include, move, tag, untag, note, renameClass or mergeClasses`);
      }
    }
    stmt(db, 'UPDATE datasets SET classes = ? WHERE id = ?').run(JSON.stringify(classes), ds.id);
    return snapshotVersion(db, ds.id, ds.version, note || edits.map((e) => e.op).join(', '));
  })();
}

interface VersionRow {
  id: number;
  hash: string;
  parent_hash: string | null;
  note: string;
  classes: string;
  image_count: number;
  created_at: string;
  state: Buffer;
}

const toVersion = (r: VersionRow): DatasetVersion => ({
  id: r.id, hash: r.hash, parentHash: r.parent_hash, note: r.note, classes: JSON.parse(r.classes), imageCount: r.image_count, createdAt: r.created_at,
});

export function listVersions(db: Db, ref: number | string): DatasetVersion[] {
  const ds = getDataset(db, ref);
  return (stmt(db, 'SELECT * FROM dataset_versions WHERE dataset_id = ? ORDER BY id').all(ds.id) as VersionRow[]).map(toVersion);
}

function versionRow(db: Db, ds: DatasetInfo, hash: string): VersionRow {
  const rows = db.prepare("SELECT * FROM dataset_versions WHERE dataset_id = ? AND hash LIKE ? || '%' ORDER BY id DESC").all(ds.id, hash) as VersionRow[];
  if (rows.length === 0) throw new EmbaugError('E_NOT_FOUND', `${ds.name} has no version ${hash}: list them with \`embaug data versions ${ds.name}\`.`);
  if (new Set(rows.map((r) => r.hash)).size > 1) throw new EmbaugError('E_ARG', `"${hash}" names several versions of ${ds.name}: give more of the hash.`);
  return rows[0];
}

/** Makes an earlier version current again (a new version row with the same hash). */
export function restoreVersion(db: Db, ref: number | string, hash: string): DatasetVersion {
  const ds = getDataset(db, ref);
  const v = versionRow(db, ds, hash);
  const snap = decodeSnapshot(v.state);
  return db.transaction(() => {
    const set = stmt(db, 'UPDATE images SET label = ?, split = ?, excluded = ?, tags = ?, note = ? WHERE dataset_id = ? AND idx = ?');
    snap.forEach((r, idx) => set.run(r.label, r.split, r.excluded, r.tags, r.note, ds.id, idx));
    stmt(db, 'UPDATE datasets SET classes = ? WHERE id = ?').run(v.classes, ds.id);
    return snapshotVersion(db, ds.id, ds.version, `restored ${v.hash.slice(0, 12)}`);
  })();
}

export interface VersionDiff {
  from: string;
  to: string;
  added: number[];
  removed: number[];
  relabelled: { idx: number; from: number; to: number }[];
  moved: { idx: number; from: string; to: string }[];
  classes: { from: string[]; to: string[] } | null;
}

export function diffVersions(db: Db, ref: number | string, a: string, b: string): VersionDiff {
  const ds = getDataset(db, ref);
  const va = versionRow(db, ds, a), vb = versionRow(db, ds, b);
  const sa = decodeSnapshot(va.state), sb = decodeSnapshot(vb.state);
  const d: VersionDiff = { from: va.hash, to: vb.hash, added: [], removed: [], relabelled: [], moved: [], classes: va.classes === vb.classes ? null : { from: JSON.parse(va.classes), to: JSON.parse(vb.classes) } };
  sa.forEach((ra, idx) => {
    const rb = sb[idx];
    if (ra.excluded && !rb.excluded) d.added.push(idx);
    else if (!ra.excluded && rb.excluded) d.removed.push(idx);
    else if (!ra.excluded && !rb.excluded) {
      if (ra.label !== rb.label) d.relabelled.push({ idx, from: ra.label, to: rb.label });
      if (ra.split !== rb.split) d.moved.push({ idx, from: ra.split, to: rb.split });
    }
  });
  return d;
}
