import { UserError } from '../errors.js';

// Placeholder until this command lands.
export async function runExtract(_opts: unknown): Promise<number> {
  throw new UserError('runExtract is not implemented yet');
}
