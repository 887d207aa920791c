import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import { type Algorithm, hash, parseOptions, verify } from '@node-rs/argon2';

/** OWASP's argon2id parameters: 19 MiB of memory, 2 passes, 1 lane. */
export const ARGON2_PARAMETERS = {
  // Algorithm is a const enum in the package's typings; 2 is Argon2id.
  algorithm: 2 as Algorithm,
  memoryCost: 19_456,
  timeCost: 2,
  parallelism: 1,
} as const;

/** Shortest accepted password (NIST SP 800-63B). */
export const MIN_PASSWORD_LENGTH = 8;
/** Longest accepted password: far above the 64 NIST asks to allow, low enough to bound hashing work. */
export const MAX_PASSWORD_LENGTH = 1024;
/** Lowest zxcvbn score (0–4) accepted: 3 is "safely unguessable: moderate protection from offline attacks". */
export const MIN_PASSWORD_SCORE = 3;

/**
 * Hashes a password with argon2id on the thread pool (never on the event loop). The password is
 * used exactly as typed: no trimming, no case or Unicode folding.
 */
export function hashPassword(password: string): Promise<string> {
  return hash(password, ARGON2_PARAMETERS);
}

/** True when `password` matches `encoded`; false for a wrong password or a malformed hash. */
export async function verifyPassword(encoded: string, password: string): Promise<boolean> {
  try {
    return await verify(encoded, password);
  } catch {
    return false;
  }
}

/** True when a stored hash was made with other parameters than today's (rehash it at the next login). */
export function needsRehash(encoded: string): boolean {
  try {
    const options = parseOptions(encoded);
    return (
      options.algorithm !== ARGON2_PARAMETERS.algorithm ||
      options.memoryCost !== ARGON2_PARAMETERS.memoryCost ||
      options.timeCost !== ARGON2_PARAMETERS.timeCost ||
      options.parallelism !== ARGON2_PARAMETERS.parallelism
    );
  } catch {
    return true;
  }
}

// A real hash of a random password, made once: verifying against it when an account does not
// exist costs the same time as a real check, so the answer's timing reveals nothing.
let dummy: Promise<string> | null = null;

/** Spends the time of one password check without any account (login of an unknown e-mail). */
export async function verifyDummy(password: string): Promise<false> {
  dummy ??= hashPassword(randomBytes(32).toString('base64'));
  await verifyPassword(await dummy, password);
  return false;
}

/** Why a new password is refused. */
export type PasswordProblem =
  | { code: 'too_short'; message: string }
  | { code: 'too_long'; message: string }
  | { code: 'too_weak'; message: string; suggestions: string[] };

/** What zxcvbn says of a password. */
interface Strength {
  score: number;
  warning: string;
  suggestions: string[];
}

// zxcvbn with the common-password and English dictionaries runs in a worker thread of its own,
// started on first use and stopped after a minute without work. Its dictionaries are tens of
// megabytes of live heap: kept in the server's own heap they would make every garbage collection
// dearer for the life of the process (measured: +28 µs CPU per request in the bench), and a check
// of a long password would block the event loop.
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const core = require(workerData.core);
const common = require(workerData.common);
const english = require(workerData.english);
const checker = new core.ZxcvbnFactory({
  dictionary: { ...common.dictionary, ...english.dictionary },
  graphs: common.adjacencyGraphs,
  translations: english.translations,
});
parentPort.on('message', ({ id, password, inputs }) => {
  try {
    const result = checker.check(password, inputs);
    parentPort.postMessage({ id, score: result.score, warning: result.feedback.warning || '', suggestions: result.feedback.suggestions });
  } catch (error) {
    parentPort.postMessage({ id, error: String(error && error.message || error) });
  }
});
`;
const STRENGTH_IDLE_MS = 60_000;

class StrengthWorker {
  #worker: Worker | null = null;
  #nextId = 0;
  readonly #pending = new Map<
    number,
    { resolve: (strength: Strength) => void; reject: (error: Error) => void }
  >();
  #idle: NodeJS.Timeout | null = null;

  check(password: string, inputs: string[]): Promise<Strength> {
    const worker = this.#start();
    if (this.#idle) clearTimeout(this.#idle);
    // Kept alive while a check is pending; otherwise never what keeps the process running.
    worker.ref();
    const id = this.#nextId++;
    return new Promise<Strength>((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      worker.postMessage({ id, password, inputs });
    });
  }

  #start(): Worker {
    if (this.#worker) return this.#worker;
    const resolve = createRequire(import.meta.url).resolve;
    const worker = new Worker(WORKER_SOURCE, {
      eval: true,
      workerData: {
        core: resolve('@zxcvbn-ts/core'),
        common: resolve('@zxcvbn-ts/language-common'),
        english: resolve('@zxcvbn-ts/language-en'),
      },
    });
    worker.on('message', (message: Strength & { id: number; error?: string }) => {
      const pending = this.#pending.get(message.id);
      this.#pending.delete(message.id);
      if (message.error !== undefined)
        pending?.reject(new Error(`password strength check failed: ${message.error}`));
      else pending?.resolve(message);
      if (this.#pending.size === 0) {
        worker.unref();
        this.#scheduleStop();
      }
    });
    const fail = (error: Error) => {
      for (const pending of this.#pending.values()) pending.reject(error);
      this.#pending.clear();
      this.#worker = null;
    };
    worker.on('error', fail);
    worker.on('exit', () => {
      if (this.#worker === worker) fail(new Error('password strength worker stopped'));
    });
    this.#worker = worker;
    return worker;
  }

  #scheduleStop(): void {
    this.#idle = setTimeout(() => {
      const worker = this.#worker;
      this.#worker = null;
      void worker?.terminate();
    }, STRENGTH_IDLE_MS);
    this.#idle.unref();
  }
}

const strength = new StrengthWorker();

/**
 * Checks a new password: 8–1024 characters, and not common or guessable (zxcvbn score ≥ 3, with
 * the user's own e-mail and name counted as known words). No composition rules. Null when fine.
 */
export async function passwordProblem(
  password: string,
  userInputs: string[] = [],
): Promise<PasswordProblem | null> {
  const length = [...password].length;
  if (length < MIN_PASSWORD_LENGTH) {
    return { code: 'too_short', message: `Use at least ${MIN_PASSWORD_LENGTH} characters` };
  }
  if (length > MAX_PASSWORD_LENGTH) {
    return { code: 'too_long', message: `Use at most ${MAX_PASSWORD_LENGTH} characters` };
  }
  const inputs = userInputs
    .flatMap((input) => [input, ...input.split(/[@.\s_+-]+/)])
    .map((part) => part.toLowerCase())
    .filter((part) => part.length >= 4);
  const lowered = password.toLowerCase();
  const own = inputs.find((part) => lowered.includes(part));
  if (own !== undefined) {
    return {
      code: 'too_weak',
      message: 'Do not build the password from your own e-mail address or name',
      suggestions: ['Use a few unrelated words'],
    };
  }
  const result = await strength.check(password, inputs);
  if (result.score >= MIN_PASSWORD_SCORE) return null;
  return {
    code: 'too_weak',
    message: result.warning || 'This password is too easy to guess',
    suggestions: result.suggestions,
  };
}
