import { UserError } from '../errors.js';

// Placeholder until this command lands.
export async function runEval(_opts: unknown): Promise<number> {
  throw new UserError('runEval is not implemented yet');
}
