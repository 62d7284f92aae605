// The head file's optional feature transform (TEAM convention, written by the sweep):
// `"transform": { "power"?: number, "l2"?: boolean }`, applied to the features before the linear layer:
// x -> sign(x)*|x|^power (if power) -> x/||x||_2 (if l2). A head without it is the plain linear head.
// parseHead (train/head.ts) does not keep the field yet, so export reads it from the file itself.
import { readFile } from 'node:fs/promises';
import { InputError } from '../errors.js';

export interface FeatureTransform {
  power?: number;
  l2?: boolean;
}

/** The transform of a parsed head-file object; undefined when absent or a no-op. */
export function parseFeatureTransform(j: Record<string, unknown>, source: string): FeatureTransform | undefined {
  const t = j.transform;
  if (t === undefined || t === null) return undefined;
  const fail = (d: string): never => { throw new InputError(source, undefined, `transform: ${d}`); };
  if (typeof t !== 'object' || Array.isArray(t)) return fail('expected an object {power?, l2?}');
  const o = t as Record<string, unknown>;
  for (const k of Object.keys(o)) if (k !== 'power' && k !== 'l2') fail(`unknown field "${k}" (this viewprobe knows power and l2)`);
  const out: FeatureTransform = {};
  if (o.power !== undefined && o.power !== null) {
    if (typeof o.power !== 'number' || !Number.isFinite(o.power) || o.power <= 0) fail(`power must be a positive number, got ${JSON.stringify(o.power)}`);
    if (o.power !== 1) out.power = o.power as number;
  }
  if (o.l2 !== undefined && o.l2 !== null) {
    if (typeof o.l2 !== 'boolean') fail(`l2 must be true or false, got ${JSON.stringify(o.l2)}`);
    if (o.l2) out.l2 = true;
  }
  return out.power === undefined && !out.l2 ? undefined : out;
}

export async function readFeatureTransform(headFile: string): Promise<FeatureTransform | undefined> {
  // loadRun has read and validated this file already; only the transform is new here.
  return parseFeatureTransform(JSON.parse(await readFile(headFile, 'utf8')) as Record<string, unknown>, headFile);
}
