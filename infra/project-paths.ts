import { fileURLToPath } from 'node:url';

/**
 * The repository root, resolved from this file rather than from `process.cwd()`, so that `cdk synth`, the
 * infra tests and any other runner bundle the same files whatever directory they start in.
 */
export const PROJECT_ROOT = fileURLToPath(new URL('../', import.meta.url));

/** An absolute path for a path relative to the repository root (as the route table writes them). */
export function projectPath(relative: string): string {
  return fileURLToPath(new URL(relative, new URL('../', import.meta.url)));
}
