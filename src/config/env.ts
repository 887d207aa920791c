/** How an environment variable's text becomes a config value. */
export type EnvKind = 'string' | 'integer' | 'boolean' | 'list' | 'listen';

/** One environment variable: where it lands in the config, and what `.env.example` says. */
export interface EnvVariable {
  readonly name: string;
  /** Dotted config path, e.g. `server.port`. */
  readonly path: string;
  readonly kind: EnvKind;
  /** The default as shown in `.env.example` (empty: unset). */
  readonly example: string;
  readonly description: string;
  /** True for values that must never be printed. */
  readonly secret?: boolean;
}

/** Every variable Bastion reads (besides `BASTION_CONFIG`, which names the file). */
export const ENV_VARIABLES: readonly EnvVariable[] = [
  {
    name: 'NODE_ENV',
    path: 'env',
    kind: 'string',
    example: 'development',
    description: '`production` turns on the production guards',
  },
  { name: 'PORT', path: 'server.port', kind: 'integer', example: '8080', description: 'Listener port' },
  {
    name: 'HOST',
    path: 'server.host',
    kind: 'string',
    example: '127.0.0.1',
    description: 'Listener address',
  },
  {
    name: 'DATABASE_URL',
    path: 'database.url',
    kind: 'string',
    example: 'sqlite:./data/bastion.db',
    description: 'sqlite:PATH or postgres://user:pass@host:5432/db',
    secret: true,
  },
  {
    name: 'REDIS_URL',
    path: 'redis.url',
    kind: 'string',
    example: '',
    description: 'Shared fast state and pub/sub (redis://…); unset: in-process memory',
    secret: true,
  },
  {
    name: 'BASTION_MASTER_KEY',
    path: 'security.masterKey',
    kind: 'string',
    example: '',
    description:
      '32 random bytes, base64; root of all derived keys (development: generated into DATA_DIR/master.key)',
    secret: true,
  },
  {
    name: 'BASTION_ADMIN_EMAIL',
    path: 'admin.email',
    kind: 'string',
    example: '',
    description: 'Platform admin created at first start when no user exists',
  },
  {
    name: 'BASTION_ADMIN_PASSWORD',
    path: 'admin.password',
    kind: 'string',
    example: '',
    description: 'Password of that admin (at least 12 characters in production)',
    secret: true,
  },
  {
    name: 'CORS_ORIGINS',
    path: 'security.corsOrigins',
    kind: 'list',
    example: '',
    description: 'Comma-separated allowed origins',
  },
  {
    name: 'TRUSTED_PROXIES',
    path: 'server.trustedProxies',
    kind: 'list',
    example: '',
    description: 'Comma-separated CIDRs whose X-Forwarded-For is believed',
  },
  {
    name: 'BASTION_METRICS_TOKEN',
    path: 'metrics.token',
    kind: 'string',
    example: '',
    description: 'Bearer token required on /metrics (at least 32 characters in production)',
    secret: true,
  },
  {
    name: 'BASTION_METRICS_LISTEN',
    path: 'metrics.listen',
    kind: 'listen',
    example: '',
    description: 'Serve /metrics only on this separate internal listener, HOST:PORT',
  },
  {
    name: 'LOG_LEVEL',
    path: 'logging.level',
    kind: 'string',
    example: 'info',
    description: 'fatal, error, warn, info, debug, trace or silent',
  },
  {
    name: 'BASTION_LOG_FORMAT',
    path: 'logging.format',
    kind: 'string',
    example: 'auto',
    description: 'json, pretty, or auto (pretty in development, JSON otherwise)',
  },
  {
    name: 'BASTION_MASK_FIELDS',
    path: 'privacy.maskFields',
    kind: 'list',
    example: '',
    description:
      'Comma-separated field names masked in logs, audit events and error reports (e.g. phone,ssn)',
  },
  {
    name: 'BASTION_DATA_DIR',
    path: 'dataDir',
    kind: 'string',
    example: './data',
    description: 'Directory for the SQLite file and the development master key',
  },
  {
    name: 'BASTION_RATE_LIMIT_IP',
    path: 'protection.rateLimit.ip.points',
    kind: 'integer',
    example: '1000',
    description: 'Requests per client address per minute (IPv6: per /64)',
  },
  {
    name: 'BASTION_RATE_LIMIT_PRINCIPAL',
    path: 'protection.rateLimit.principal.points',
    kind: 'integer',
    example: '2000',
    description: 'Requests per signed-in user or API key per minute',
  },
  {
    name: 'BASTION_BODY_LIMIT',
    path: 'server.bodyLimit',
    kind: 'integer',
    example: '1048576',
    description: 'Largest accepted request body, bytes',
  },
  {
    name: 'BASTION_SHUTDOWN_TIMEOUT_MS',
    path: 'server.shutdownTimeoutMs',
    kind: 'integer',
    example: '10000',
    description: 'How long in-flight requests may finish after SIGTERM',
  },
  {
    name: 'BASTION_SLOW_QUERY_MS',
    path: 'database.slowQueryMs',
    kind: 'integer',
    example: '1000',
    description: 'Queries slower than this are logged and counted',
  },
  {
    name: 'BASTION_MAX_EVENT_LOOP_DELAY_MS',
    path: 'loadShedding.maxEventLoopDelayMs',
    kind: 'integer',
    example: '1000',
    description: 'Shed load (503) when event-loop delay passes this',
  },
  {
    name: 'BASTION_ACCESS_TOKEN_TTL_SECONDS',
    path: 'identity.accessTokenTtlSeconds',
    kind: 'integer',
    example: '900',
    description: 'Lifetime of an access token',
  },
  {
    name: 'BASTION_LOCKOUT_MAX_FAILURES',
    path: 'identity.lockout.maxFailures',
    kind: 'integer',
    example: '5',
    description: 'Consecutive failed logins that lock an account (temporarily, progressively)',
  },
  {
    name: 'BASTION_OUTBOUND_ALLOW_PRIVATE',
    path: 'outbound.allowPrivateNetworks',
    kind: 'boolean',
    example: 'false',
    description: 'Let outbound calls (integration tests) reach loopback and private addresses',
  },
  {
    name: 'OTEL_EXPORTER_OTLP_ENDPOINT',
    path: 'tracing.otlpEndpoint',
    kind: 'string',
    example: '',
    description: 'OTLP endpoint for traces; unset: tracing off',
  },
  {
    name: 'SMTP_URL',
    path: 'alertChannels.smtpUrl',
    kind: 'string',
    example: '',
    description: 'smtp(s)://user:pass@host:port for e-mail alerts',
    secret: true,
  },
  {
    name: 'ALERT_EMAIL_TO',
    path: 'alertChannels.emailTo',
    kind: 'string',
    example: '',
    description: 'Recipients of e-mail alerts, comma-separated',
  },
  {
    name: 'SLACK_WEBHOOK_URL',
    path: 'alertChannels.slackWebhookUrl',
    kind: 'string',
    example: '',
    description: 'Slack incoming-webhook URL',
    secret: true,
  },
  {
    name: 'ALERT_WEBHOOK_URL',
    path: 'alertChannels.webhookUrl',
    kind: 'string',
    example: '',
    description: 'Generic webhook receiving alerts as JSON',
  },
  {
    name: 'ALERT_WEBHOOK_SECRET',
    path: 'alertChannels.webhookSecret',
    kind: 'string',
    example: '',
    description: 'HMAC secret signing webhook alerts (at least 32 characters in production)',
    secret: true,
  },
  {
    name: 'PUSHOVER_TOKEN',
    path: 'alertChannels.pushoverToken',
    kind: 'string',
    example: '',
    description: 'Pushover application token',
    secret: true,
  },
  {
    name: 'PUSHOVER_USER',
    path: 'alertChannels.pushoverUser',
    kind: 'string',
    example: '',
    description: 'Pushover user or group key',
    secret: true,
  },
  {
    name: 'PUSHOVER_API_URL',
    path: 'alertChannels.pushoverApiUrl',
    kind: 'string',
    example: '',
    description: 'Pushover API base URL (default: the public service)',
  },
];

/** The variable that names the YAML or JSON config file. */
export const CONFIG_FILE_VARIABLE = 'BASTION_CONFIG';
