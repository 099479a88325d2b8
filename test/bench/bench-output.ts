/**
 * Where a benchmark writes: its summary, and nothing else, on stdout (so `npm run bench:api > result.txt`
 * keeps only the figures and a script can read the last line); one progress line per phase on stderr; and
 * every other line, above all the Powertools JSON lines the handlers and the local stand-ins log to stdout,
 * on stderr with the progress, kept but out of the summary.
 *
 * Importing this module moves everything else written through `process.stdout` to stderr (the Powertools
 * logger writes through a Console bound to the `process.stdout` object, so the move holds for a logger
 * created before this module ran); the summary is written to file descriptor 1 directly.
 */
import { writeSync } from 'node:fs';

const toStandardError = process.stderr.write.bind(process.stderr) as typeof process.stdout.write;
process.stdout.write = toStandardError;

/** One line of the summary (stdout). */
export function summary(...parts: unknown[]): void {
  writeSync(1, `${parts.join(' ')}\n`);
}

/** One line saying what the benchmark does now (stderr), before a phase that takes a while. */
export function progress(name: string, line: string): void {
  process.stderr.write(`[${name}] ${line}\n`);
}
