/** Progress on stderr: a redrawn bar on a terminal, a line every few percent otherwise. */
import type { Progress } from '../engine/jobs/index.js';

function fmtTime(s: number | null): string {
  if (s === null || !Number.isFinite(s)) return '--';
  if (s < 60) return `${s.toFixed(0)}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(Math.round(s % 60)).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.round((s % 3600) / 60)).padStart(2, '0')}m`;
}

export interface Printer {
  progress: (p: Progress) => void;
  /** A log line above the bar: the bar is cleared, the line written, the bar drawn again. */
  log: (line: string) => void;
}

export function progressPrinter(quiet = false): Printer {
  const tty = process.stderr.isTTY;
  let lastPct = -1;
  let lastStage = '';
  // The bar now on the terminal's last line, if any (a finished one ends its line).
  let bar: string | null = null;
  return {
    progress: (p) => {
      if (quiet) return;
      const pct = p.total ? Math.floor((100 * p.done) / p.total) : 100;
      const line = `${p.stage}: ${p.done}/${p.total} ${p.unit} (${pct}%)  ${p.rate.toFixed(p.rate < 10 ? 2 : 0)} ${p.unit}/s  ETA ${fmtTime(p.etaSeconds)}`;
      if (tty) {
        const width = 24;
        const fill = Math.round((width * pct) / 100);
        bar = `[${'#'.repeat(fill)}${'.'.repeat(width - fill)}] ${line}`;
        process.stderr.write(`\r\x1b[2K${bar}`);
        if (p.done >= p.total) {
          process.stderr.write('\n');
          bar = null;
        }
      } else if (p.stage !== lastStage || pct >= lastPct + 10 || (p.done >= p.total && pct !== lastPct)) {
        process.stderr.write(`${line}\n`);
        lastPct = pct;
      }
      lastStage = p.stage;
    },
    log: (line) => {
      if (tty && bar !== null) process.stderr.write(`\r\x1b[2K${line}\n${bar}`);
      else process.stderr.write(`${line}\n`);
    },
  };
}
