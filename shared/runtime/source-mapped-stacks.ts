import { readFileSync } from 'node:fs';
import { SourceMap } from 'node:module';
import { fileURLToPath } from 'node:url';

/** `true` in a function's bundle (see `bundleDefines`); undefined in unbundled code (tests, local stack). */
declare const __BUNDLED__: boolean | undefined;

/**
 * In a bundle, installs {@link installSourceMappedStacks} for it (`import.meta.url` of a module inside it is
 * the bundle's); unbundled code keeps Node's own stacks, which already name the sources.
 */
export function mapStacksWhenBundled(moduleUrl: string): void {
  if (typeof __BUNDLED__ !== 'undefined' && __BUNDLED__) installSourceMappedStacks(moduleUrl);
}

/**
 * Stack traces of a bundled function that point at the TypeScript sources, with the source map read only
 * when a stack is first rendered (an error's `stack` is read: logged, or reported to Lambda).
 *
 * Node's `--enable-source-maps` reads and parses the bundle's map while the module loads, on every cold
 * start, for the rare request that fails; `npm run bench:cold-start` measured it (see the README). Instead,
 * the functions run without it and install this formatter: V8 calls `Error.prepareStackTrace` lazily, the
 * first call loads `<bundle>.map`, and frames in the bundle are rewritten to their original file, line and
 * column (node:module's `SourceMap`). Frames elsewhere (node: internals) and a missing or unreadable map
 * keep V8's own text: a stack is never lost to its formatting.
 */
export function installSourceMappedStacks(bundleUrl: string): void {
  const bundle = bundleUrl.startsWith('file:') ? fileURLToPath(bundleUrl) : bundleUrl;
  let map: SourceMap | null | undefined;
  const sourceMap = (): SourceMap | null => {
    if (map === undefined) {
      try {
        map = new SourceMap(JSON.parse(readFileSync(`${bundle}.map`, 'utf8')));
      } catch {
        map = null;
      }
    }
    return map;
  };
  Error.prepareStackTrace = (error: Error, frames: NodeJS.CallSite[]): string => {
    const header = headerOf(error);
    return frames.length === 0
      ? header
      : `${header}\n${frames.map((frame) => `    at ${mappedFrame(frame, bundle, sourceMap)}`).join('\n')}`;
  };
}

/** The first line V8 writes: `Name: message` (or what the error's own toString gives). */
function headerOf(error: Error): string {
  try {
    return String(error);
  } catch {
    return '<error>';
  }
}

/** A frame as V8 writes it, with its bundle location replaced by the original one when the map knows it. */
function mappedFrame(frame: NodeJS.CallSite, bundle: string, sourceMap: () => SourceMap | null): string {
  const text = frame.toString();
  const file = frame.getFileName();
  const line = frame.getLineNumber();
  const column = frame.getColumnNumber();
  if (!file || line === null || column === null) return text;
  if (file !== bundle && !(file.startsWith('file:') && fileURLToPath(file) === bundle)) return text;
  const origin = sourceMap()?.findOrigin(line, column);
  if (!origin || !('fileName' in origin)) return text;
  // The map's sources are relative to the bundle's build directory: keep the project-relative part.
  const original = `${origin.fileName.replace(/^(\.\.\/)+/, '')}:${origin.lineNumber}:${origin.columnNumber}`;
  const position = `${file}:${line}:${column}`;
  return text.includes(position) ? text.replace(position, original) : text;
}
