import * as z from './zod.ts';

/**
 * The one schema of free text a person writes or reads (titles, terms, reasons, names). What it refuses,
 * with a 400 naming the field and the offending character:
 * - **lone surrogates** (not well-formed UTF-16): they have no UTF-8 form, so RFC 8785 canonical JSON (the
 *   signed digest) cannot encode them and a database would store U+FFFD instead of what was sent;
 * - **control characters** (C0, DEL, C1), NUL among them (PostgreSQL refuses it in text and jsonb), and the
 *   Unicode line/paragraph separators U+2028/U+2029; multi-line text keeps tab and line feed (`\n`), the
 *   only line break, so one text has one spelling and one digest;
 * - in text a signer reads (the default), **every format character** (Unicode category Cf): the bidi
 *   embeddings, overrides and isolates U+202A–U+202E and U+2066–U+2069, the marks U+200E/U+200F/U+061C, the
 *   zero-width characters U+200B–U+200D and U+2060–U+2064, U+180E, the BOM U+FEFF, the soft hyphen, the tag
 *   characters U+E0000–U+E007F …, and **private-use characters** (Co). They make the text a person sees
 *   differ from the text that is signed (CVE-2021-42574, "Trojan Source"; hidden text in tag characters).
 *
 * The characters are checked as sent; then surrounding spaces are trimmed and the length is checked.
 */
export interface TextOptions {
  readonly min?: number;
  readonly max: number;
  /** `multi` keeps tab and line feed (descriptions, statements, reasons); `single` refuses every control. */
  readonly lines?: 'single' | 'multi';
  /**
   * `refused` (the default) for anything a signer or an operator reads as the truth; `allowed` only where
   * the text is never shown as the content of an agreement.
   */
  readonly formatCharacters?: 'refused' | 'allowed';
}

// biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is the point
const SINGLE_LINE_CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/;
// biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is the point
const MULTI_LINE_CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u2028\u2029]/;
/** Unicode's format characters (Cf): the bidi controls, zero-width characters, BOM, tags, soft hyphen … */
const FORMAT_CHARACTER = /\p{Cf}/u;
/** Private-use characters (Co): no two readers are sure to show them alike. */
const PRIVATE_USE = /\p{Co}/u;

function codePoint(char: string): string {
  return `U+${char.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}`;
}

/** Why `value` is not acceptable text under `options`, or null when it is. */
export function textProblem(
  value: string,
  options: Pick<TextOptions, 'lines' | 'formatCharacters'>,
): string | null {
  if (!value.isWellFormed()) {
    const at = [...value].findIndex((c) => c.length === 1 && c >= '\ud800' && c <= '\udfff');
    return `contains a lone surrogate (not well-formed Unicode) at character ${at}`;
  }
  const control = (options.lines === 'multi' ? MULTI_LINE_CONTROL : SINGLE_LINE_CONTROL).exec(value);
  if (control) {
    return `contains the control character ${codePoint(control[0])} at character ${control.index}${
      options.lines === 'multi' ? ' (only tab and line feed are allowed)' : ''
    }`;
  }
  if (options.formatCharacters !== 'allowed') {
    const format = FORMAT_CHARACTER.exec(value);
    if (format) {
      return `contains ${codePoint(format[0])}, a bidirectional or invisible formatting character, at character ${format.index}`;
    }
    const privateUse = PRIVATE_USE.exec(value);
    if (privateUse) {
      return `contains ${codePoint(privateUse[0])}, a private-use character, at character ${privateUse.index}`;
    }
  }
  return null;
}

/**
 * A text field: trimmed, bounded, and refused when {@link textProblem} finds anything.
 * @example
 * const Title = text({ min: 1, max: 200 });                    // single line, no format characters
 * const Statement = text({ min: 1, max: 2000, lines: 'multi' });
 */
export function text(options: TextOptions) {
  return z.string().check(
    // Checked before trimming: a BOM or a line separator at either end is refused, not silently dropped.
    z.superRefine((value, ctx) => {
      const problem = textProblem(value, options);
      if (problem) ctx.addIssue({ code: 'custom', message: problem, input: value });
    }),
    z.trim(),
    z.minLength(options.min ?? 0),
    z.maxLength(options.max),
  );
}
