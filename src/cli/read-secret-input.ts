/** Options for `readSecretInput`. */
export interface SecretInputOptions {
  /** Shown on stderr when stdin is a terminal, e.g. `Value for db/password: `. */
  prompt: string;
  /** Largest value accepted, in bytes of UTF-8; more input is refused without being read. */
  maxBytes: number;
  /** Default `process.stdin`. */
  input?: NodeJS.ReadStream;
  /** Where the prompt goes; default `process.stderr`, so stdout stays clean for scripts. */
  output?: NodeJS.WritableStream;
}

/** Reading stopped: the input is larger than `maxBytes`. */
export class InputTooLargeError extends Error {
  constructor(maxBytes: number) {
    super(`The value is larger than ${maxBytes} bytes`);
    this.name = 'InputTooLargeError';
  }
}

const CTRL_C = '\u0003';
const CTRL_D = '\u0004';
const BACKSPACE = new Set(['\u007f', '\b']);

/**
 * Reads a secret value for a CLI command, never from argv: from a terminal, one line typed
 * without echo after a prompt on stderr; otherwise the whole of stdin with one trailing newline
 * (`\n` or `\r\n`) removed. Throws on invalid UTF-8 or input over `maxBytes`; may return ''.
 */
export function readSecretInput(options: SecretInputOptions): Promise<string> {
  const input = options.input ?? process.stdin;
  if (input.isTTY) return readHiddenLine(input, options.output ?? process.stderr, options);
  return readAll(input, options.maxBytes);
}

async function readAll(input: NodeJS.ReadStream, maxBytes: number): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  // Room for the trailing newline that is stripped below.
  const limit = maxBytes + 2;
  for await (const chunk of input) {
    const bytes = typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : (chunk as Buffer);
    size += bytes.length;
    if (size > limit) {
      input.destroy();
      throw new InputTooLargeError(maxBytes);
    }
    chunks.push(bytes);
  }
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(Buffer.concat(chunks));
  } catch {
    throw new Error('The value on stdin is not valid UTF-8');
  }
  const value = text.endsWith('\r\n') ? text.slice(0, -2) : text.endsWith('\n') ? text.slice(0, -1) : text;
  if (Buffer.byteLength(value, 'utf8') > maxBytes) throw new InputTooLargeError(maxBytes);
  return value;
}

function readHiddenLine(
  input: NodeJS.ReadStream,
  output: NodeJS.WritableStream,
  options: SecretInputOptions,
): Promise<string> {
  return new Promise((resolve, reject) => {
    let value = '';
    output.write(options.prompt);
    input.setRawMode(true);
    input.setEncoding('utf8');
    const finish = (error: Error | null) => {
      input.off('data', onData);
      input.setRawMode(false);
      input.pause();
      output.write('\n');
      if (error) reject(error);
      else resolve(value);
    };
    const onData = (chunk: string) => {
      // A paste arrives as one chunk: handle it character by character.
      for (const char of chunk) {
        if (char === '\r' || char === '\n' || char === CTRL_D) return finish(null);
        if (char === CTRL_C) return finish(new Error('Cancelled'));
        if (BACKSPACE.has(char)) value = [...value].slice(0, -1).join('');
        else if (char >= ' ') value += char;
        if (Buffer.byteLength(value, 'utf8') > options.maxBytes) {
          return finish(new InputTooLargeError(options.maxBytes));
        }
      }
    };
    input.on('data', onData);
    input.resume();
  });
}
