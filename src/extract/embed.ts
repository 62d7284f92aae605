import { UserError } from '../errors.js';

// Placeholder until this command lands.
export async function runEmbed(_opts: unknown): Promise<number> {
  throw new UserError('runEmbed is not implemented yet');
}
