import { UserError } from '../errors.js';

// Placeholder until this command lands.
export async function runTrain(_opts: unknown): Promise<number> {
  throw new UserError('runTrain is not implemented yet');
}
