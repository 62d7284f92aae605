import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it, vi } from 'vitest';
import { float32String, runEmbed, type EmbedArgs } from '../../src/cli/embed.js';
import { describeShared, sharedPath } from '../helpers/shared.js';
import { argsWith } from '../helpers/args.js';
import { embedBuilder } from '../../src/cli/commands.js';
import { PHOTOS, reference, relErr, type ModelKey } from '../backbone/reference.js';

async function embed(values: Partial<EmbedArgs>): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
  const err = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
  try {
    const code = await runEmbed(argsWith(embedBuilder, values));
    return {
      code,
      stdout: out.mock.calls.map((c) => String(c[0])).join(''),
      stderr: err.mock.calls.map((c) => String(c[0])).join(''),
    };
  } finally {
    out.mockRestore();
    err.mockRestore();
  }
}

const photos = PHOTOS.map((p) => sharedPath('weights', `ref-${p}.jpg`));
const tmp = mkdtempSync(join(tmpdir(), 'viewprobe-embed-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

it('float32String gives the shortest decimal that reads back as the same float32', () => {
  for (const x of [0.1, 1 / 3, 123456.789, 1e-7, -2.5e30, 0, 16777217]) {
    const f = Math.fround(x);
    const s = float32String(f);
    expect(Math.fround(s)).toBe(f);
    expect(String(s).replace(/^-|e.*$|\./g, '').replace(/^0+/, '').length).toBeLessThanOrEqual(9);
  }
  expect(float32String(Math.fround(0.1))).toBe(0.1);
});

const needs = ['weights/reference.json', 'weights/resnet18-random.safetensors', 'weights/resnet50-keras.safetensors', ...PHOTOS.map((p) => `weights/ref-${p}.jpg`)];
describeShared('viewprobe embed on the reference photos (JPEG path)', needs, () => {
  const cases: [ModelKey, 'onnx' | 'tfjs'][] = [['resnet18', 'onnx'], ['resnet50-keras', 'onnx'], ['resnet18', 'tfjs']];
  for (const [model, engine] of cases) {
    it(`${model} on ${engine}: --preset standard --json within 1e-3 of PyTorch, nothing else on stdout`, async () => {
      const ref = reference()[model];
      const r = await embed({ images: photos, weights: sharedPath('weights', ref.weights_file), preset: 'standard', engine, threads: 2, json: true });
      expect(r.code).toBe(0);
      expect(r.stderr).toMatch(new RegExp(`^backbone: ${model.split('-')[0]} .* on ${engine} `, 'm'));
      expect(r.stdout.endsWith('\n')).toBe(true);
      const parsed = JSON.parse(r.stdout) as { image: string; features: number[] }[];
      expect(parsed.map((p) => p.image)).toEqual(photos);
      PHOTOS.forEach((p, i) => {
        expect(parsed[i]!.features).toHaveLength(ref.images[p]!.features.length);
        expect(relErr(parsed[i]!.features, ref.images[p]!.features), p).toBeLessThan(1e-3);
      });
    });
  }

  it('an unreadable image: one error line naming it, the others still processed, exit code 3', async () => {
    const bad = join(tmp, 'not-a-photo.jpg');
    writeFileSync(bad, 'hello, I am text\n');
    const missing = join(tmp, 'missing.jpg');
    const images = [photos[0]!, bad, photos[1]!, missing];
    const r = await embed({ images, weights: sharedPath('weights/resnet18-random.safetensors'), preset: 'seed', threads: 2, json: true });
    expect(r.code).toBe(3);
    const errs = r.stderr.split('\n').filter((l) => l.startsWith('viewprobe: '));
    expect(errs.some((l) => l.startsWith(`viewprobe: ${bad}: `))).toBe(true);
    expect(errs.some((l) => l.startsWith(`viewprobe: ${missing}: `))).toBe(true);
    const parsed = JSON.parse(r.stdout) as { image: string; features: number[] }[];
    expect(parsed.map((p) => p.image)).toEqual([photos[0], photos[1]]);
    expect(parsed[0]!.features).toHaveLength(512);
  });

  it('without --json: one readable summary line per image', async () => {
    const r = await embed({ images: photos.slice(0, 2), weights: sharedPath('weights/resnet18-random.safetensors'), preset: 'seed', threads: 2 });
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(new RegExp(`^${photos[0]!.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}: 512-d, L2 norm \\d+\\.\\d{4}, mean \\d+\\.\\d{4}, zeros \\d+, first 8: `));
  });
});
