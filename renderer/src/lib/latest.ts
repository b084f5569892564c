/**
 * For an `$effect` that fetches: runs `load`, and applies its result only if the effect has
 * not run again (or the view gone) in the meantime, so a slow, stale response never
 * overwrites a newer one. Return its value from the effect: it is the effect's cleanup.
 */
export function latest<T>(load: () => Promise<T>, apply: (value: T) => void): () => void {
  let stale = false;
  load().then(
    (v) => !stale && apply(v),
    (err: unknown) => !stale && console.error(err),
  );
  return () => {
    stale = true;
  };
}
