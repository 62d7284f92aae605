import { UserError } from '../errors.js';

// Placeholder until this command lands.
export async function runCacheInfo(_opts: unknown): Promise<number> {
  throw new UserError('cache info is not implemented yet');
}
export async function runCacheMerge(_opts: unknown): Promise<number> {
  throw new UserError('cache merge is not implemented yet');
}
