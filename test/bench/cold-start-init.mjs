/**
 * One cold start of `npm run bench:cold-start`: imports the bundle named by argv[2] (its top-level code
 * and awaits included, as Lambda's init phase does) and writes how long that took, in ms, as the last
 * line of stdout. Run in a fresh Node process per measurement, with the function's environment.
 */
import { pathToFileURL } from 'node:url';

const started = performance.now();
const module = await import(pathToFileURL(process.argv[2]).href);
const initMs = performance.now() - started;
if (typeof module.handler !== 'function') throw new Error(`${process.argv[2]} exports no handler`);
process.stdout.write(`\n${JSON.stringify({ initMs })}\n`);
