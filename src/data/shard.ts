// Sharding one dataset over many machines: each shard takes the images whose content hash falls in
// its residue class. The subset depends only on the bytes, so it is stable across reruns, paths and
// machines, and duplicate images land in the same shard (extracted once). Shards are 0-based.
import { UserError } from '../errors.js';
import { isSha256Hex } from './hash.js';

export interface Shard {
  /** 0-based, < count. */
  index: number;
  count: number;
  /** Where it came from, for the log line: `--shard`, `JOB_COMPLETION_INDEX`, `SLURM_ARRAY_TASK_ID`. */
  source: string;
}

const MAX_SHARDS = 1_000_000;

/** Parses `i/n` (0 <= i < n). */
export function parseShard(spec: string, source = '--shard'): Shard {
  const m = /^\s*(\d+)\s*\/\s*(\d+)\s*$/.exec(spec);
  if (!m) throw new UserError(`${source} "${spec}": expected i/n, the 0-based shard index and the shard count (e.g. 0/4 .. 3/4)`);
  const index = Number(m[1]);
  const count = Number(m[2]);
  if (count < 1 || count > MAX_SHARDS) throw new UserError(`${source} "${spec}": the shard count must be 1..${MAX_SHARDS}`);
  if (index >= count) throw new UserError(`${source} "${spec}": the shard index is 0-based, so it must be 0..${count - 1}`);
  return { index, count, source };
}

function envInt(env: NodeJS.ProcessEnv, name: string): number | undefined {
  const raw = env[name];
  if (raw === undefined || raw.trim() === '') return undefined;
  if (!/^\s*\d+\s*$/.test(raw)) throw new UserError(`${name}="${raw}": expected a non-negative integer`);
  return Number(raw);
}

/**
 * The shard this process should take, or undefined for all images.
 * Precedence: `--shard i/n`; then a Kubernetes Indexed Job (`JOB_COMPLETION_INDEX`, count from `--shards`
 * or `VIEWPROBE_SHARDS`, since Kubernetes does not export the completion count); then a Slurm array
 * (`SLURM_ARRAY_TASK_ID`, count from `--shards`, `VIEWPROBE_SHARDS` or `SLURM_ARRAY_TASK_COUNT`; the
 * index is taken relative to `SLURM_ARRAY_TASK_MIN` and `SLURM_ARRAY_TASK_STEP`, so `--array=1-4` works).
 */
export function resolveShard(opts: { shard?: string; shards?: number }, env: NodeJS.ProcessEnv = process.env): Shard | undefined {
  if (opts.shard !== undefined && opts.shard.trim() !== '') return parseShard(opts.shard);
  let explicitCount: number | undefined = opts.shards;
  let countSource = '--shards';
  if (explicitCount === undefined) {
    explicitCount = envInt(env, 'VIEWPROBE_SHARDS');
    countSource = 'VIEWPROBE_SHARDS';
  }
  const k8s = envInt(env, 'JOB_COMPLETION_INDEX');
  if (k8s !== undefined) {
    if (explicitCount === undefined) {
      throw new UserError(`JOB_COMPLETION_INDEX=${k8s} is set but the shard count is not: set VIEWPROBE_SHARDS to the Job's completions (or pass --shard i/n)`);
    }
    return parseShard(`${k8s}/${explicitCount}`, `JOB_COMPLETION_INDEX with ${countSource}`);
  }
  const slurmId = envInt(env, 'SLURM_ARRAY_TASK_ID');
  if (slurmId !== undefined) {
    const min = envInt(env, 'SLURM_ARRAY_TASK_MIN') ?? 0;
    const step = envInt(env, 'SLURM_ARRAY_TASK_STEP') ?? 1;
    let count = explicitCount;
    let src = countSource;
    if (count === undefined) {
      count = envInt(env, 'SLURM_ARRAY_TASK_COUNT');
      src = 'SLURM_ARRAY_TASK_COUNT';
    }
    if (count === undefined) {
      throw new UserError(`SLURM_ARRAY_TASK_ID=${slurmId} is set but the shard count is not: set VIEWPROBE_SHARDS (or pass --shard i/n)`);
    }
    if (step < 1 || slurmId < min || (slurmId - min) % step !== 0) {
      throw new UserError(`SLURM_ARRAY_TASK_ID=${slurmId} does not fit SLURM_ARRAY_TASK_MIN=${min} and SLURM_ARRAY_TASK_STEP=${step}`);
    }
    return parseShard(`${(slurmId - min) / step}/${count}`, `SLURM_ARRAY_TASK_ID with ${src}`);
  }
  if (explicitCount !== undefined) {
    throw new UserError(`${countSource}=${explicitCount} is set but no shard index is (JOB_COMPLETION_INDEX or SLURM_ARRAY_TASK_ID); pass --shard i/n`);
  }
  return undefined;
}

/** Whether the image with this sha256 belongs to the shard (always true without a shard). */
export function inShard(hashHex: string, shard: Shard | undefined): boolean {
  if (!shard) return true;
  if (!isSha256Hex(hashHex)) throw new Error(`inShard: not a sha256 hex digest: "${hashHex}"`);
  // 48 bits are exact in a double and make the modulo bias negligible for any sane shard count.
  return parseInt(hashHex.slice(0, 12), 16) % shard.count === shard.index;
}

export function describeShard(shard: Shard): string {
  return `shard ${shard.index}/${shard.count} (0-based, from ${shard.source})`;
}
