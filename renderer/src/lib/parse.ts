/** Form fields to request values; empty means "not set". */
export function parseClasses(s: string): number[] | undefined {
  const t = s.trim();
  if (!t || t === 'all') return undefined;
  const m = /^(\d+)\s*-\s*(\d+)$/.exec(t);
  if (m) return Array.from({ length: Number(m[2]) - Number(m[1]) + 1 }, (_, i) => Number(m[1]) + i);
  const xs = t.split(',').map((x) => Number(x.trim()));
  if (xs.some((x) => !Number.isInteger(x) || x < 0)) throw new Error(`classes: write a range like 0-4 or a list like 5,6,7 (got "${s}")`);
  return xs;
}

export function parseLimit(s: string): number | undefined {
  const t = s.trim();
  if (!t || t === 'all') return undefined;
  const n = Number(t);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`images per split: a positive whole number (got "${s}")`);
  return n;
}

export function parseAugs(s: string): string[] {
  return s.split(/[\s;]+/).map((x) => x.trim()).filter(Boolean);
}
