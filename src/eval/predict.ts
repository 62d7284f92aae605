import { UserError } from '../errors.js';

// Placeholder until this command lands.
export async function runPredict(_opts: unknown): Promise<number> {
  throw new UserError('runPredict is not implemented yet');
}
