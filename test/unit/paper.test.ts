import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';

import { paperNumbers, paperShape, type PaperNumbers } from '../../electron/engine/paper/index.js';
import { meanStd } from '../../electron/engine/training/index.js';
import { SHARED } from '../helpers/shared.js';

const acc = (runs: number[]) => ({ ...meanStd(runs), runs });

describe("the paper's Table II beside ours", () => {
  it('carries the figures of the paper as printed (../shared/paper/table2.json), for every architecture and scenario', () => {
    const printed = JSON.parse(readFileSync(join(SHARED, 'paper', 'table2.json'), 'utf8')) as { architectures: Record<string, Record<string, number>> };
    const ours = paperNumbers();
    assert.deepEqual(ours.architectures, printed.architectures);
    assert.match(ours.note, /compare the shape/);
    assert.match(ours.protocol, /CIFAR-100/);
  });

  it('compares by shape: paired gains over [None]-[None], the order of every pair beyond the seed noise, and [Embed]\'s share of the pixel gain', () => {
    const paper: PaperNumbers = { source: 's', protocol: 'p', note: 'n', architectures: { net: { none_none: 0.6, pixel_none: 0.7, pixel_pixel: 0.8, pixel_embed: 0.55 } } };
    const [s] = paperShape({
      net: {
        none_none: acc([0.8, 0.81, 0.79]),
        pixel_none: acc([0.85, 0.86, 0.84]),
        // Above [Pixel]-[None] by 0.02, -0.01, 0.02: within the noise of three seeds.
        pixel_pixel: acc([0.87, 0.85, 0.86]),
        // Above [None]-[None] by 0.03 on every seed, where the paper's is below its [None]-[None].
        pixel_embed: acc([0.83, 0.84, 0.82]),
      },
      other: { none_none: acc([0.5]) },
    }, paper);
    assert.equal(s.arch, 'net');
    assert.deepEqual(s.rows.map((r) => r.key), ['pixel_none', 'pixel_pixel', 'pixel_embed']);
    assert.ok(Math.abs(s.rows[0].ours!.mean - 0.05) < 1e-9 && s.rows[0].ours!.real);
    assert.ok(Math.abs(s.rows[0].paper! - 0.1) < 1e-9);
    const verdict = Object.fromEntries(s.order.map((o) => [`${o.a}/${o.b}`, o.verdict]));
    assert.deepEqual(verdict, {
      'none_none/pixel_none': 'agree', 'none_none/pixel_pixel': 'agree', 'none_none/pixel_embed': 'disagree',
      'pixel_none/pixel_pixel': 'within noise', 'pixel_none/pixel_embed': 'agree', 'pixel_pixel/pixel_embed': 'within noise',
    });
    // Our pixel gain over [Pixel]-[None] is within the noise: no share of it is reported.
    assert.equal(s.recovered.ours, null);
    assert.ok(Math.abs(s.recovered.paper! + 1.5) < 1e-9);
    // Where it is real, the share comes from the means.
    const [t] = paperShape({ net: { none_none: acc([0.8, 0.81, 0.79]), pixel_none: acc([0.85, 0.86, 0.84]), pixel_pixel: acc([0.89, 0.9, 0.88]), pixel_embed: acc([0.87, 0.87, 0.87]) } }, paper);
    assert.ok(Math.abs(t.recovered.ours! - 0.5) < 1e-9, String(t.recovered.ours));
  });
});
