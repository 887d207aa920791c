import type { FastifyBaseLogger } from 'fastify';

type Bindings = Parameters<FastifyBaseLogger['child']>[0];
type ChildOptions = Parameters<FastifyBaseLogger['child']>[1];

type Level = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';

// pino's log methods take several overloads; each call is passed on unchanged.
function call(logger: FastifyBaseLogger, level: Level, args: unknown[]): void {
  (logger[level] as (...values: unknown[]) => void).apply(logger, args);
}

/**
 * A request's logger (`request.log`) made only when something logs through it. Fastify builds
 * one pino child per request, which serializes its bindings at once; Bastion writes the access
 * line through its own path, so on almost every request nobody calls `request.log` and the child
 * would be built for nothing.
 */
export class LazyChildLogger implements FastifyBaseLogger {
  readonly #parent: FastifyBaseLogger;
  readonly #bindings: Bindings;
  readonly #options: ChildOptions;
  #child: FastifyBaseLogger | null = null;

  constructor(parent: FastifyBaseLogger, bindings: Bindings, options: ChildOptions) {
    this.#parent = parent;
    this.#bindings = bindings;
    this.#options = options;
  }

  get #real(): FastifyBaseLogger {
    this.#child ??= this.#parent.child(this.#bindings, this.#options);
    return this.#child;
  }

  get level(): string {
    return this.#child?.level ?? this.#parent.level;
  }

  set level(level: string) {
    this.#real.level = level;
  }

  // Prototype methods, not per-instance closures: one of these is made for every request.
  fatal(...args: unknown[]): void {
    call(this.#real, 'fatal', args);
  }
  error(...args: unknown[]): void {
    call(this.#real, 'error', args);
  }
  warn(...args: unknown[]): void {
    call(this.#real, 'warn', args);
  }
  info(...args: unknown[]): void {
    call(this.#real, 'info', args);
  }
  debug(...args: unknown[]): void {
    call(this.#real, 'debug', args);
  }
  trace(...args: unknown[]): void {
    call(this.#real, 'trace', args);
  }
  silent(...args: unknown[]): void {
    call(this.#real, 'silent', args);
  }

  child(bindings: Bindings, options?: ChildOptions): FastifyBaseLogger {
    return this.#real.child(bindings, options);
  }
}
