/** A mutant of Stryker's JSON report (mutation-testing-report-schema), the fields the score reads. */
export interface Mutant {
  readonly mutatorName: string;
  readonly status: string;
  readonly replacement?: string;
  readonly location: {
    readonly start: { readonly line: number; readonly column: number };
    readonly end: { readonly line: number; readonly column: number };
  };
}
export interface ModuleScore {
  readonly killed: number;
  readonly timeout: number;
  readonly survived: number;
  readonly noCoverage: number;
  readonly invalid: number;
  readonly messageText: number;
  readonly score: number;
  readonly survivors: Mutant[];
}
export function isMessageText(mutant: Mutant, source: string): boolean;
export function textAt(source: string, location: Mutant['location']): string;
export function score(
  report: {
    readonly files: Record<string, { readonly source: string; readonly mutants: readonly Mutant[] }>;
  },
  file: string,
): ModuleScore;
