/**
 * A re-encryption job in a process of its own, run slowly so that a test can kill it mid-way
 * (test/reencryption-kill.test.ts). Prints one JSON line per batch on stdout.
 *
 * Environment: BASTION_TEST_DATABASE_URL, BASTION_TEST_SCHEMA (PostgreSQL only),
 * BASTION_TEST_MASTER_KEY (base64).
 */
import pino from 'pino';
import { systemClock } from '../../src/core/clock.ts';
import { FieldCipher } from '../../src/data-protection/field-cipher.ts';
import { Keyring } from '../../src/data-protection/keyring.ts';
import { ReencryptionJob } from '../../src/data-protection/reencryption.ts';
import { openDatabase } from '../../src/storage/database.ts';

const url = process.env.BASTION_TEST_DATABASE_URL;
const masterKey = process.env.BASTION_TEST_MASTER_KEY;
if (!url || !masterKey) throw new Error('BASTION_TEST_DATABASE_URL and BASTION_TEST_MASTER_KEY are required');

const database = openDatabase({ url, schema: process.env.BASTION_TEST_SCHEMA || undefined, poolMax: 2 });
const keyring = await Keyring.open({
  db: database.db,
  masterKey: Buffer.from(masterKey, 'base64'),
  clock: systemClock,
});
const job = new ReencryptionJob({
  db: database.db,
  cipher: new FieldCipher(keyring),
  keyring,
  logger: pino(pino.destination(2)),
  batchSize: 3,
  maxRowsPerSecond: 6,
  onProgress: (progress) => process.stdout.write(`${JSON.stringify({ progress })}\n`),
});
const result = await job.runOnce();
process.stdout.write(`${JSON.stringify({ result })}\n`);
await database.close();
