/**
 * Class names become folder names on export and labels in every report, so the few that
 * could name another place on disk, or hide in a listing, are refused where they enter:
 * at import and at rename.
 */
import { EmbaugError } from '../errors.js';

/** Why a class name cannot be used, or null when it can. */
export function classNameProblem(name: string): string | null {
  if (typeof name !== 'string') return 'it is not text';
  if (name.trim() === '') return 'it is empty';
  if (name === '.' || name === '..') return `"${name}" names a folder, not a class`;
  if (/[/\\]/.test(name)) return 'it contains a path separator (/ or \\)';
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(name)) return 'it contains a NUL or control character';
  if (Buffer.byteLength(name) > 255) return 'it is longer than 255 bytes';
  return null;
}

/** Refuses a list of class names with one message that names each bad one and why. */
export function checkClassNames(names: string[], where: string): void {
  const bad = names.flatMap((n, i) => {
    const p = classNameProblem(n);
    return p ? [`class ${i} ${JSON.stringify(n)}: ${p}`] : [];
  });
  if (bad.length)
    throw new EmbaugError(
      'E_IMPORT',
      `${where} has class names that cannot be used (${bad.slice(0, 5).join('; ')}${bad.length > 5 ? `; and ${bad.length - 5} more` : ''}): ` +
        'class names may not contain /, \\, NUL or control characters, nor be "." or "..". Fix the names and import again; nothing was imported.',
    );
}

/**
 * A folder name for a class on every file system: characters Windows refuses become "_",
 * trailing dots and spaces go, reserved device names get a suffix, and names that collide
 * after that (or differ only in case) are numbered. The mapping is kept in the export's
 * manifest so a re-import restores the original names.
 */
export function folderNames(classes: string[]): string[] {
  const used = new Set<string>();
  return classes.map((c) => {
    // eslint-disable-next-line no-control-regex
    let f = c.replace(/[<>:"/\\|?*\u0000-\u001f\u007f]/g, '_').replace(/[. ]+$/, '');
    if (f === '' || f === '.' || f === '..') f = '_';
    if (/^(con|prn|aux|nul|com\d|lpt\d)(\..*)?$/i.test(f)) f = `${f}_`;
    let out = f;
    for (let k = 2; used.has(out.toLowerCase()); k++) out = `${f}_${k}`;
    used.add(out.toLowerCase());
    return out;
  });
}
