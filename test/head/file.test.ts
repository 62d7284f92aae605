import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { InputError } from '../../src/errors.js';
import { checkHeadFits, headToJson, loadHead, parseHead, saveHead, type HeadMeta } from '../../src/head/file.js';
import { initHead } from '../../src/head/head.js';
import { fingerprint, useTempDir } from '../train/fixtures.js';

const classes = ['apple_pie', 'baby_back_ribs', 'baklava'];

describe('head files', () => {
  const dir = useTempDir('viewprobe-head-');

  const meta: HeadMeta = { fingerprint: fingerprint(5), fingerprintId: 'fp-123', epoch: 7, valAcc: 0.825 };

  it('round-trip exactly (bit for bit) with their metadata', async () => {
    const h = initHead(classes, 5, 1);
    h.weight[0] = 1e-40; // a float32 subnormal survives too
    h.weight[1] = -3.4028234663852886e38;
    const file = join(dir(), 'head.json');
    await saveHead(file, h, meta);
    const back = await loadHead(file, { dim: 5, classes });
    expect(Buffer.from(back.weight.buffer)).toEqual(Buffer.from(h.weight.buffer));
    expect(Buffer.from(back.bias.buffer)).toEqual(Buffer.from(h.bias.buffer));
    expect(back).toMatchObject({ classes, dim: 5, fingerprintId: 'fp-123', epoch: 7, valAcc: 0.825, fingerprint: fingerprint(5) });
    const j = JSON.parse(await readFile(file, 'utf8'));
    expect(j).toMatchObject({ format: 'viewprobe-head', version: 1, dtype: 'float32', encoding: 'base64-le' });
    expect(typeof j.weight).toBe('string');
  });

  it('carry the feature transform, and a head without one stays the plain linear head', async () => {
    const h = { ...initHead(classes, 5, 1), transform: { power: 0.5, l2: true } };
    const file = join(dir(), 'transformed.json');
    await saveHead(file, h, meta);
    expect((await loadHead(file)).transform).toEqual({ power: 0.5, l2: true });
    expect(JSON.parse(await readFile(file, 'utf8')).transform).toEqual({ power: 0.5, l2: true });
    await saveHead(file, initHead(classes, 5, 1), meta);
    expect(JSON.parse(await readFile(file, 'utf8'))).not.toHaveProperty('transform');
    expect((await loadHead(file)).transform).toBeUndefined();
    expect(parseHead(JSON.stringify({ ...good(), transform: { l2: false } }), 'x').transform).toBeUndefined();
  });

  it('also load plain number arrays (a head exported from elsewhere)', () => {
    const j = { ...headToJson(initHead(['x', 'y'], 2, 0), meta), weight: [1, 2, 3, 4], bias: [0.5, -0.5] };
    const h = parseHead(JSON.stringify(j), 'exported.json');
    expect([...h.weight]).toEqual([1, 2, 3, 4]);
    expect([...h.bias]).toEqual([0.5, -0.5]);
  });

  const good = () => headToJson(initHead(['x', 'y'], 2, 0), meta);
  const cases: [string, string, RegExp][] = [
    ['not JSON', 'hello', /h\.json: not a viewprobe head file \(invalid JSON/],
    ['a JSON array', '[1,2]', /not a viewprobe head file/],
    ['another format', JSON.stringify({ ...good(), format: 'keras' }), /not a viewprobe head file \(format is "keras"/],
    ['a newer version', JSON.stringify({ ...good(), version: 2 }), /version 2 is not supported/],
    ['no classes', JSON.stringify({ ...good(), classes: [] }), /classes must be a non-empty array/],
    ['duplicate classes', JSON.stringify({ ...good(), classes: ['x', 'x'] }), /duplicate/],
    ['a bad dim', JSON.stringify({ ...good(), dim: 0 }), /dim must be a positive integer/],
    ['a short weight', JSON.stringify({ ...good(), weight: [1, 2, 3] }), /weight has 3 values, expected 4/],
    ['a weight of the wrong byte length', JSON.stringify({ ...good(), weight: Buffer.alloc(12).toString('base64') }), /weight holds 3 floats, expected 4/],
    ['a non-finite value', JSON.stringify({ ...good(), bias: [0, 'x'] }), /bias\[1\] is not a number/],
    ['a NaN in base64', JSON.stringify({ ...good(), bias: Buffer.from(new Float32Array([0, NaN]).buffer).toString('base64') }), /bias\[1\] is not finite/],
    ['no bias', JSON.stringify({ ...good(), bias: undefined }), /bias is missing/],
    ['an unknown transform', JSON.stringify({ ...good(), transform: { pca: 64 } }), /transform has an unknown field "pca"/],
    ['a bad power', JSON.stringify({ ...good(), transform: { power: -1 } }), /transform.power must be a positive number/],
    ['a transform that is not an object', JSON.stringify({ ...good(), transform: 'l2' }), /transform must be an object/],
    ['an accuracy above 1', JSON.stringify({ ...good(), valAcc: 83 }), /valAcc must be a number in \[0, 1\]/],
  ];
  for (const [what, text, msg] of cases) {
    it(`refuse ${what} with an error naming the file`, () => {
      expect(() => parseHead(text, 'h.json')).toThrow(InputError);
      expect(() => parseHead(text, 'h.json')).toThrow(msg);
    });
  }

  it('refuse a head whose dim or classes do not fit', async () => {
    const file = join(dir(), 'fit.json');
    await saveHead(file, initHead(classes, 5, 1), meta);
    await expect(loadHead(file, { dim: 512, what: 'the cache' })).rejects.toThrow(`${file}: head takes 5-d features but the cache has 512-d features`);
    await expect(loadHead(file, { classes: ['a', 'b'] })).rejects.toThrow('head has 3 classes but the data has 2');
    await expect(loadHead(file, { classes: ['apple_pie', 'baklava', 'baby_back_ribs'] })).rejects.toThrow('class 1 is "baby_back_ribs" in the head but "baklava" in the data');
    expect(() => checkHeadFits(initHead(classes, 5, 1), 'x', { dim: 5, classes })).not.toThrow();
  });

  it('refuse a missing file clearly', async () => {
    await expect(loadHead(join(dir(), 'nope.json'))).rejects.toThrow(/nope\.json: no such head file/);
    await writeFile(join(dir(), 'empty.json'), '');
    await expect(loadHead(join(dir(), 'empty.json'))).rejects.toThrow(/not a viewprobe head file/);
  });
});
