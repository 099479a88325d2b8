import type { Database } from '../database/database.ts';
import type { Signer } from '../signing/signer.ts';

/** What use cases need from the world; built once per cold start (see runtime.ts) and passed in. */
export interface Dependencies {
  readonly db: Database;
  readonly signer: Signer;
  readonly now: () => Date;
  readonly newId: () => string;
}
