import { randomBytes } from 'node:crypto';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { BastionConfig } from './schema.ts';

/** Length of the master key in bytes. */
export const MASTER_KEY_BYTES = 32;
/** Fewest distinct byte values a random 32-byte key is expected to have (a real one has ~28). */
const MIN_DISTINCT_BYTES = 16;

export type DecodedKey = { ok: true; key: Buffer } | { ok: false; reason: string };

/** Decodes and checks a base64 master key: exactly 32 bytes, and not an obviously weak pattern. */
export function decodeMasterKey(text: string): DecodedKey {
  const trimmed = text.trim();
  if (!/^[A-Za-z0-9+/_-]+={0,2}$/.test(trimmed)) return { ok: false, reason: 'is not base64' };
  const key = Buffer.from(trimmed.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
  if (key.length !== MASTER_KEY_BYTES) {
    return { ok: false, reason: `decodes to ${key.length} bytes; exactly ${MASTER_KEY_BYTES} are required` };
  }
  if (new Set(key).size < MIN_DISTINCT_BYTES) {
    return {
      ok: false,
      reason: 'is weak (too few distinct bytes); generate it with `openssl rand -base64 32`',
    };
  }
  return { ok: true, key };
}

/** Where the development master key is kept. */
export function devMasterKeyPath(config: BastionConfig): string {
  return path.join(config.dataDir, 'master.key');
}

/**
 * The master key: from the config when set; in development, read from (or first generated
 * into) `DATA_DIR/master.key` with mode 0600. `warn` is told when a key is generated.
 */
export async function resolveMasterKey(
  config: BastionConfig,
  warn: (message: string) => void,
): Promise<Buffer> {
  if (config.security.masterKey) {
    const decoded = decodeMasterKey(config.security.masterKey);
    if (!decoded.ok) throw new Error(`BASTION_MASTER_KEY ${decoded.reason}`);
    return decoded.key;
  }
  if (config.env === 'production') throw new Error('BASTION_MASTER_KEY is required in production');
  const file = devMasterKeyPath(config);
  try {
    const decoded = decodeMasterKey(await readFile(file, 'utf8'));
    if (!decoded.ok) throw new Error(`${file} ${decoded.reason}`);
    return decoded.key;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  const key = randomBytes(MASTER_KEY_BYTES);
  await mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
  // 'wx' refuses to overwrite a key another process wrote in the meantime.
  await writeFile(file, `${key.toString('base64')}\n`, { mode: 0o600, flag: 'wx' });
  await chmod(file, 0o600);
  warn(`Generated a development master key in ${file}; set BASTION_MASTER_KEY in production`);
  return key;
}
