import type { ConfigProblem } from './errors.ts';
import { decodeMasterKey } from './master-key.ts';
import { trustsEveryone } from './proxy-ranges.ts';
import type { BastionConfig } from './schema.ts';

/** Shortest accepted machine secret (tokens, signing secrets) in production. */
export const MIN_SECRET_LENGTH = 32;
/** Shortest accepted admin password in production. */
export const MIN_ADMIN_PASSWORD_LENGTH = 12;

// Values that appear in examples, tutorials and default installs: never acceptable as secrets.
const DEFAULT_SECRETS = new Set(
  [
    'changeme',
    'change-me',
    'change_me',
    'secret',
    'password',
    'admin',
    'postgres',
    'root',
    'default',
    'example',
    'test',
    'token',
    'letmein',
    'qwerty',
    '123456',
    '12345678',
    'password123',
    'admin123',
    'changemechangemechangemechangeme',
  ].map((value) => value.toLowerCase()),
);

const WILDCARD_HOSTS = new Set(['0.0.0.0', '::', '[::]', '*']);

function isDefaultSecret(value: string): boolean {
  const lowered = value.toLowerCase();
  return DEFAULT_SECRETS.has(lowered) || /^(.)\1*$/.test(value) || /^(x+|your[-_].*|<.*>)$/i.test(value);
}

/**
 * Everything that makes `config` unfit for production, all at once. Empty when the config is
 * not for production (`env` other than 'production').
 */
export function productionProblems(config: BastionConfig): ConfigProblem[] {
  if (config.env !== 'production') return [];
  const problems: ConfigProblem[] = [];
  const add = (key: string, source: string, message: string) => problems.push({ key, source, message });

  const masterKey = config.security.masterKey;
  if (!masterKey) {
    add('security.masterKey', 'BASTION_MASTER_KEY', 'is required in production (32 random bytes, base64)');
  } else {
    const decoded = decodeMasterKey(masterKey);
    if (!decoded.ok) add('security.masterKey', 'BASTION_MASTER_KEY', decoded.reason);
  }

  const secrets: Array<[string, string, string | null]> = [
    ['metrics.token', 'BASTION_METRICS_TOKEN', config.metrics.token],
    ['alertChannels.webhookSecret', 'ALERT_WEBHOOK_SECRET', config.alertChannels.webhookSecret],
  ];
  for (const [key, variable, value] of secrets) {
    if (value === null) continue;
    if (isDefaultSecret(value))
      add(key, variable, 'is a default or placeholder value; generate a random one');
    else if (value.length < MIN_SECRET_LENGTH) {
      add(key, variable, `is ${value.length} characters; at least ${MIN_SECRET_LENGTH} are required`);
    }
  }

  const databasePassword = passwordInUrl(config.database.url);
  if (databasePassword !== null && isDefaultSecret(databasePassword)) {
    add('database.url', 'DATABASE_URL', 'uses a default password; set a strong one');
  }

  const adminPassword = config.admin.password;
  if (adminPassword !== null) {
    if (adminPassword.length < MIN_ADMIN_PASSWORD_LENGTH) {
      add(
        'admin.password',
        'BASTION_ADMIN_PASSWORD',
        `must be at least ${MIN_ADMIN_PASSWORD_LENGTH} characters`,
      );
    } else if (isDefaultSecret(adminPassword)) {
      add('admin.password', 'BASTION_ADMIN_PASSWORD', 'is a default or placeholder value');
    }
  }

  for (const entry of config.server.trustedProxies.filter(trustsEveryone)) {
    add(
      'server.trustedProxies',
      'TRUSTED_PROXIES',
      `"${entry}" trusts every address, so any client could spoof its IP`,
    );
  }

  if (config.security.corsOrigins.some((origin) => origin.trim() === '*')) {
    add('security.corsOrigins', 'CORS_ORIGINS', '"*" allows every site; list the allowed origins');
  }

  if (config.metrics.enabled && config.metrics.token === null) {
    const listen = config.metrics.listen;
    if (listen === null) {
      add(
        'metrics',
        'BASTION_METRICS_TOKEN',
        '/metrics would be open to the world; set BASTION_METRICS_TOKEN or BASTION_METRICS_LISTEN (an internal listener)',
      );
    } else if (WILDCARD_HOSTS.has(listen.host)) {
      add(
        'metrics.listen',
        'BASTION_METRICS_LISTEN',
        `listens on every interface (${listen.host}) without a token; bind it to an internal address or set BASTION_METRICS_TOKEN`,
      );
    }
  }
  return problems;
}

function passwordInUrl(url: string): string | null {
  if (!/^postgres(ql)?:\/\//.test(url)) return null;
  try {
    const parsed = new URL(url);
    return parsed.password ? decodeURIComponent(parsed.password) : null;
  } catch {
    return null;
  }
}
