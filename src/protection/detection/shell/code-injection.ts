/**
 * Injection of code rather than of a command line: calls of the functions that run commands in
 * PHP, Python, Node, Java; server-side includes; Shellshock; server-side template expressions.
 * Each returns a score and leaves the blamed span in `codeSpan`.
 */
export const codeSpan = { start: 0, end: 0 };

function blame(index: number, length: number, score: number): number {
  codeSpan.start = index;
  codeSpan.end = index + length;
  return score;
}

interface Rule {
  readonly pattern: RegExp;
  readonly score: number;
}

const RULES: readonly Rule[] = [
  // Shellshock: a function definition in an environment variable runs what follows it.
  { pattern: /\(\s*\)\s*\{\s*:?\s*;?\s*\}\s*;/, score: 95 },
  // Server-side includes.
  { pattern: /<!--\s*#\s*(?:exec|include|echo|config|printenv|fsize|flastmod)\b/, score: 90 },
  // PHP code.
  { pattern: /<\?(?:php\b|=)/, score: 85 },
  // Functions that run commands or code, called with a string, a variable or a call.
  {
    pattern:
      /\b(?:system|exec|shell_exec|passthru|popen|proc_open|pcntl_exec|eval|assert|create_function|call_user_func|preg_replace|execsync|spawnsync|execfile)\s*\(\s*["'`$@a-z_]/,
    score: 80,
  },
  { pattern: /\b(?:phpinfo|phpversion|php_uname|getcwd|get_current_user)\s*\(\s*\)/, score: 75 },
  {
    pattern:
      /\b(?:runtime\s*\.\s*getruntime\s*\(\s*\)\s*\.\s*exec|processbuilder\s*\(|child_process|os\s*\.\s*(?:system|popen|exec[lv]p?e?)\s*\(|subprocess\s*\.\s*(?:call|run|popen|check_output)\s*\(|__import__\s*\(|process\s*\.\s*start\s*\(|\/dev\/tcp\/)/,
    score: 80,
  },
  // PHP request superglobals: code that runs what the request carries.
  { pattern: /\$_(?:get|post|request|cookie|server|files|env)\s*\[/, score: 70 },
  // PHP "complex" interpolation `{${phpinfo()}}` and `${@print(…)}`.
  { pattern: /\$\{\s*@?[a-z_][\w]*\s*\(/, score: 75 },
];

// All rules at once: one regex pass decides whether any rule needs a closer look.
const ANY_RULE = new RegExp(RULES.map((rule) => rule.pattern.source).join('|'));

/** Calls of command-running functions, SSI, Shellshock, PHP tags. */
export function codeCallScore(lower: string): number {
  if (!ANY_RULE.test(lower)) return 0;
  for (const rule of RULES) {
    const match = rule.pattern.exec(lower);
    if (match !== null) return blame(match.index, match[0].length + 20, rule.score);
  }
  return 0;
}

// Inside template delimiters: arithmetic on literals, calls, dunder attributes, config objects.
const TEMPLATE_CODE =
  /\d\s*[-+*/%]\s*['"]?\d|[\w\]]\s*\(|__\w+__|\bconfig\b|\bself\b|\brequest\s*\.|\bcycler\b|\bjoiner\b|\blipsum\b|\bclass\b|\bgetclass\b|\bt\s*\(|\bruntime\b/;
const STATEMENT_TAG =
  /\{%-?\s*(?:for|if|set|import|include|macro|extends|block|raw|call|from|with|print|debug)\b/;
const EXPRESSION_OPENERS = ['{{', '${', '#{', '*{', '@{', '<%=', '<%'];
const MAX_TEMPLATE = 200;
const TEMPLATE_CODE_SCORE = 75;
const WHOLE_VALUE_TEMPLATE_SCORE = 55;
const WHOLE_VALUE_TEMPLATE = /^\s*\{\{\s*[\w.]+\s*\}\}\s*$/;

/**
 * Server-side template injection: `{{7*7}}`, `${7*7}`, `{% for … %}`, `{{ get_file(…) }}`,
 * `{{''.__class__}}`. A variable in prose (`Use {{ user.name }} in the template`) is not.
 */
export function templateInjectionScore(lower: string): number {
  const statement = STATEMENT_TAG.exec(lower);
  if (statement !== null) return blame(statement.index, statement[0].length + 20, TEMPLATE_CODE_SCORE);
  for (const opener of EXPRESSION_OPENERS) {
    let close = -1;
    for (let open = lower.indexOf(opener); open >= 0; open = lower.indexOf(opener, open + opener.length)) {
      const bodyStart = open + opener.length;
      if (close < bodyStart) close = lower.indexOf(opener.startsWith('<') ? '%>' : '}', bodyStart);
      if (close < 0) break;
      const body = lower.slice(bodyStart, Math.min(close, bodyStart + MAX_TEMPLATE));
      if (TEMPLATE_CODE.test(body)) return blame(open, body.length + opener.length + 2, TEMPLATE_CODE_SCORE);
    }
  }
  return WHOLE_VALUE_TEMPLATE.test(lower) ? blame(0, lower.length, WHOLE_VALUE_TEMPLATE_SCORE) : 0;
}
