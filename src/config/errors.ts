/** One problem with the configuration, naming the key (and its source) and what is expected. */
export interface ConfigProblem {
  /** Dotted config path, e.g. `server.port`. */
  readonly key: string;
  /** Where the value came from: an environment variable, the file, a flag, or the defaults. */
  readonly source: string;
  readonly message: string;
}

/** Thrown when the configuration cannot be used; lists every problem at once. */
export class ConfigError extends Error {
  readonly problems: readonly ConfigProblem[];

  constructor(problems: readonly ConfigProblem[], heading = 'Invalid configuration') {
    super(`${heading}:\n${problems.map((problem) => `  - ${formatProblem(problem)}`).join('\n')}`);
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

/** `key (source): message` */
export function formatProblem(problem: ConfigProblem): string {
  return `${problem.key} (${problem.source}): ${problem.message}`;
}

/** Exit code for configuration errors (EX_CONFIG from sysexits.h). */
export const EXIT_CONFIG = 78;
