/**
 * Argument checks shared by the engine's public functions. Each throws TypeError or
 * RangeError with a sentence naming the argument, what was expected and what came.
 */
function describe(v: unknown): string {
  if (v === null) return 'null';
  if (ArrayBuffer.isView(v)) return `${v.constructor.name} of length ${(v as unknown as { length: number }).length}`;
  if (Array.isArray(v)) return `an array of length ${v.length}`;
  return typeof v === 'string' ? `"${v}"` : `${typeof v} ${String(v)}`;
}

export function int(name: string, v: unknown, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof v !== 'number' || !Number.isInteger(v)) throw new TypeError(`${name} must be an integer, got ${describe(v)}`);
  if (v < min || v > max) throw new RangeError(`${name} must be ${max === Number.MAX_SAFE_INTEGER ? `at least ${min}` : `in [${min}, ${max}]`}, got ${v}`);
  return v;
}

/** Whole-number options of a long job (epochs, seeds, …), each at least its minimum where given: checked before any work. */
export function counts<T extends object>(o: T, mins: { [K in keyof T]?: number }): void {
  for (const [name, min] of Object.entries(mins) as [string, number][]) {
    const value = (o as Record<string, unknown>)[name];
    if (value !== undefined) int(name, value, min);
  }
}

/** A list whose entries each count once (budgets, bases, architectures): a repeat would be trained and reported twice. */
export function distinct<T>(name: string, xs: T[]): T[] {
  const seen = new Set<string>();
  for (const x of xs) {
    if (seen.has(String(x))) throw new RangeError(`${name} gives ${String(x)} twice: give each once`);
    seen.add(String(x));
  }
  return xs;
}

export function num(name: string, v: unknown, min = -Infinity, max = Infinity): number {
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new TypeError(`${name} must be a finite number, got ${describe(v)}`);
  if (v < min || v > max) throw new RangeError(`${name} must be in [${min}, ${max}], got ${v}`);
  return v;
}

export function oneOf<T extends string>(name: string, v: unknown, allowed: readonly T[]): T {
  if (typeof v !== 'string' || !allowed.includes(v as T))
    throw new RangeError(`${name} must be one of ${allowed.map((a) => `"${a}"`).join(', ')}, got ${describe(v)}`);
  return v as T;
}

type TypedCtor<T> = { new (n: number): T; name: string };

export function typed<T extends ArrayBufferView & { length: number }>(
  name: string,
  v: unknown,
  ctor: TypedCtor<T>,
  length?: number,
): T {
  if (!(v instanceof (ctor as unknown as abstract new (...a: never[]) => unknown)))
    throw new TypeError(`${name} must be a ${ctor.name}, got ${describe(v)}`);
  const arr = v as T;
  if (length !== undefined && arr.length !== length)
    throw new RangeError(`${name} must have ${length} elements, got ${arr.length}`);
  return arr;
}

/** NaN or infinite features would train silently into garbage; refuse them up front. */
export function finite(name: string, a: Float32Array, rowLength = 1): Float32Array {
  for (let i = 0; i < a.length; i++) {
    if (!Number.isFinite(a[i]))
      throw new RangeError(
        `${name} holds ${a[i]} at index ${i} (row ${Math.floor(i / rowLength)}): ` +
          'inputs must be finite; check the embedding extraction or the file it came from',
      );
  }
  return a;
}

export function labelsInRange(name: string, a: Int32Array, classes: number): Int32Array {
  for (let i = 0; i < a.length; i++) {
    if (a[i] < 0 || a[i] >= classes)
      throw new RangeError(`${name}[${i}] is ${a[i]}, but the model has ${classes} classes (labels 0..${classes - 1})`);
  }
  return a;
}
