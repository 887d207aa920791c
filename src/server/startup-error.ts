import { EXIT_CONFIG } from '../config/errors.ts';

/** A refusal to start that the operator must fix; carries the process exit code. */
export class StartupError extends Error {
  readonly exitCode: number;

  constructor(message: string, exitCode = EXIT_CONFIG) {
    super(message);
    this.name = 'StartupError';
    this.exitCode = exitCode;
  }
}
