// The score of a module's mutation report (Stryker's JSON, mutation-testing-report-schema), as
// `npm run test:mutation` prints it: detected / (detected + undetected) over the mutants that compile,
// leaving out message-text mutants.

import ts from 'typescript';

const SQL = /^\s*(select|insert|update|delete|with|create|alter|drop)\b/i;
/** Object members that only carry text for people. */
const MESSAGE_PROPERTIES = new Set(['message', 'detail', 'title', 'description']);

/**
 * Whether a mutant only changes what a message says: it mutates a string literal of prose (it holds a space;
 * no SQL), or lies inside a template literal of prose (`${describe(i - 1)}` in an error's text), that is an
 * argument of a call or `new` (an error's or a refusal's text), the value of a `message`, `detail`, `title`
 * or `description` member, or what is thrown; through parentheses, `+` and the branches of a conditional.
 * A prose string that is returned or assigned elsewhere (a guard's reason, which callers test for truth) is
 * behaviour: its mutant to "" turns a refusal into a pass, and it counts.
 */
export function isMessageText(mutant, source) {
  const file = parsed(source);
  const start = offsetOf(source, mutant.location.start);
  const end = offsetOf(source, mutant.location.end);
  let node =
    mutant.mutatorName === 'StringLiteral' ? literalAt(file, start) : templateAround(file, start, end);
  if (!node) return false;
  const inner = node.getText(file).replace(/^[`'"]|[`'"]$/g, '');
  if (!/\s/.test(inner) || SQL.test(inner)) return false;
  for (;;) {
    const parent = node.parent;
    if (!parent) return false;
    const through =
      ts.isParenthesizedExpression(parent) ||
      (ts.isBinaryExpression(parent) && parent.operatorToken.kind === ts.SyntaxKind.PlusToken) ||
      (ts.isConditionalExpression(parent) && parent.condition !== node);
    if (through) {
      node = parent;
      continue;
    }
    if ((ts.isCallExpression(parent) || ts.isNewExpression(parent)) && parent.arguments?.includes(node))
      return true;
    if (ts.isPropertyAssignment(parent) && parent.initializer === node)
      return MESSAGE_PROPERTIES.has(parent.name.getText(file));
    return ts.isThrowStatement(parent);
  }
}

/** The innermost template literal with substitutions that holds [start, end), if any. */
function templateAround(file, start, end) {
  let found;
  const visit = (node) => {
    if (node.getStart(file) > start || node.end < end) return;
    if (ts.isTemplateExpression(node)) found = node;
    ts.forEachChild(node, visit);
  };
  ts.forEachChild(file, visit);
  return found;
}

const files = new Map();
function parsed(source) {
  if (!files.has(source))
    files.set(source, ts.createSourceFile('m.ts', source, ts.ScriptTarget.Latest, true));
  return files.get(source);
}

function literalAt(file, offset) {
  const visit = (node) => {
    if (
      node.getStart(file) === offset &&
      (ts.isStringLiteral(node) || ts.isNoSubstitutionTemplateLiteral(node) || ts.isTemplateExpression(node))
    )
      return node;
    return node.pos <= offset && offset < node.end ? ts.forEachChild(node, visit) : undefined;
  };
  return ts.forEachChild(file, visit);
}

function offsetOf(source, { line, column }) {
  const lines = source.split('\n');
  return lines.slice(0, line - 1).reduce((sum, text) => sum + text.length + 1, 0) + column - 1;
}

export function textAt(source, { start, end }) {
  return source.slice(offsetOf(source, start), offsetOf(source, end));
}

/** Counts of a module's report: the score without message-text mutants, and the survivors. */
export function score(report, file) {
  const entry = report.files[file];
  const counts = { killed: 0, timeout: 0, survived: 0, noCoverage: 0, invalid: 0, messageText: 0 };
  const survivors = [];
  for (const mutant of entry.mutants) {
    if (mutant.status === 'CompileError' || mutant.status === 'RuntimeError' || mutant.status === 'Ignored') {
      counts.invalid++;
      continue;
    }
    if (isMessageText(mutant, entry.source)) {
      counts.messageText++;
      continue;
    }
    if (mutant.status === 'Killed') counts.killed++;
    else if (mutant.status === 'Timeout') counts.timeout++;
    else {
      if (mutant.status === 'Survived') counts.survived++;
      else counts.noCoverage++;
      survivors.push(mutant);
    }
  }
  const detected = counts.killed + counts.timeout;
  const valid = detected + counts.survived + counts.noCoverage;
  return { ...counts, score: valid === 0 ? 100 : (100 * detected) / valid, survivors };
}
