import Type from 'typebox';

const Port = Type.Integer({ minimum: 0, maximum: 65535 });
/** One of a fixed set of strings, with its default (one JSON Schema `enum`, so one error when wrong). */
const oneOf = <const T extends string[]>(values: [...T], fallback: T[number]) =>
  Type.Enum(values, { default: fallback });
/** A string that may be unset (null by default). */
const nullableString = () => Type.Union([Type.String({ minLength: 1 }), Type.Null()], { default: null });

const Server = Type.Object(
  {
    host: Type.String({ minLength: 1, default: '127.0.0.1', description: 'Listener address' }),
    port: Type.Integer({ minimum: 0, maximum: 65535, default: 8080, description: 'Listener port' }),
    bodyLimit: Type.Integer({ minimum: 1, default: 1_048_576, description: 'Largest accepted body, bytes' }),
    trustedProxies: Type.Array(Type.String({ minLength: 1 }), {
      default: [],
      description: 'CIDRs or addresses whose X-Forwarded-For is believed',
    }),
    shutdownTimeoutMs: Type.Integer({
      minimum: 0,
      default: 10_000,
      description: 'How long in-flight requests may run after SIGTERM',
    }),
    requestTimeoutMs: Type.Integer({ minimum: 0, default: 30_000, description: 'Whole-request timeout' }),
    keepAliveTimeoutMs: Type.Integer({ minimum: 0, default: 72_000, description: 'Idle keep-alive timeout' }),
  },
  { additionalProperties: false, default: {} },
);

const Database = Type.Object(
  {
    url: Type.String({
      minLength: 1,
      default: 'sqlite:./data/bastion.db',
      description: 'sqlite:PATH or postgres://…',
    }),
    poolMax: Type.Integer({ minimum: 1, default: 10, description: 'PostgreSQL pool size' }),
    slowQueryMs: Type.Integer({
      minimum: 0,
      default: 1000,
      description: 'Queries slower than this are logged and counted',
    }),
    busyTimeoutMs: Type.Integer({ minimum: 0, default: 5000, description: 'SQLite busy timeout' }),
  },
  { additionalProperties: false, default: {} },
);

const Redis = Type.Object(
  {
    url: Type.Union([Type.String({ pattern: '^rediss?://' }), Type.Null()], { default: null }),
    keyPrefix: Type.String({ default: 'bastion:' }),
  },
  { additionalProperties: false, default: {} },
);

const SharedStatePolicy = Type.Object(
  {
    rateLimit: oneOf(['fail-open', 'fail-closed'], 'fail-open'),
    revocation: oneOf(['fail-open', 'fail-closed'], 'fail-closed'),
  },
  { additionalProperties: false, default: {} },
);

const Security = Type.Object(
  {
    masterKey: Type.Union([Type.String(), Type.Null()], { default: null }),
    corsOrigins: Type.Array(Type.String({ minLength: 1 }), { default: [] }),
  },
  { additionalProperties: false, default: {} },
);

const Logging = Type.Object(
  {
    level: oneOf(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], 'info'),
    format: oneOf(['json', 'pretty', 'auto'], 'auto'),
  },
  { additionalProperties: false, default: {} },
);

const Privacy = Type.Object(
  {
    maskFields: Type.Array(Type.String({ minLength: 1 }), {
      default: [],
      description: 'Field names whose values are masked in logs, audit events and error reports',
    }),
    maskEmails: Type.Boolean({ default: true, description: 'Mask e-mail addresses (j***@example.com)' }),
  },
  { additionalProperties: false, default: {} },
);

const Metrics = Type.Object(
  {
    enabled: Type.Boolean({ default: true }),
    token: Type.Union([Type.String(), Type.Null()], { default: null }),
    listen: Type.Union(
      [
        Type.Object(
          { host: Type.String({ minLength: 1, default: '127.0.0.1' }), port: Port },
          { additionalProperties: false },
        ),
        Type.Null(),
      ],
      { default: null },
    ),
  },
  { additionalProperties: false, default: {} },
);

const Health = Type.Object(
  {
    cacheMs: Type.Integer({ minimum: 0, default: 2000 }),
    checkTimeoutMs: Type.Integer({ minimum: 1, default: 1000 }),
    diskWarnFreeRatio: Type.Number({ minimum: 0, maximum: 1, default: 0.1 }),
    diskFailFreeRatio: Type.Number({ minimum: 0, maximum: 1, default: 0.02 }),
    memoryWarnRatio: Type.Number({ minimum: 0, maximum: 1, default: 0.85 }),
    memoryFailRatio: Type.Number({ minimum: 0, maximum: 1, default: 0.95 }),
    eventLoopWarnMs: Type.Number({ minimum: 0, default: 200 }),
    eventLoopFailMs: Type.Number({ minimum: 0, default: 1000 }),
    databaseWarnMs: Type.Number({ minimum: 0, default: 250 }),
  },
  { additionalProperties: false, default: {} },
);

const LoadShedding = Type.Object(
  {
    enabled: Type.Boolean({ default: true }),
    maxEventLoopDelayMs: Type.Integer({ minimum: 1, default: 1000 }),
    sampleIntervalMs: Type.Integer({ minimum: 1, default: 500 }),
    retryAfterSeconds: Type.Integer({ minimum: 1, default: 10 }),
  },
  { additionalProperties: false, default: {} },
);

const Admin = Type.Object(
  {
    email: nullableString(),
    password: nullableString(),
  },
  { additionalProperties: false, default: {} },
);

const Tracing = Type.Object(
  {
    otlpEndpoint: nullableString(),
  },
  { additionalProperties: false, default: {} },
);

const AlertChannels = Type.Object(
  {
    smtpUrl: nullableString(),
    emailTo: nullableString(),
    slackWebhookUrl: nullableString(),
    webhookUrl: nullableString(),
    webhookSecret: nullableString(),
    pushoverToken: nullableString(),
    pushoverUser: nullableString(),
    pushoverApiUrl: nullableString(),
  },
  {
    additionalProperties: false,
    default: {},
  },
);

const seconds = (fallback: number, description: string, minimum = 1) =>
  Type.Integer({ minimum, default: fallback, description });

const Identity = Type.Object(
  {
    issuer: Type.String({ minLength: 1, default: 'bastion', description: "Access tokens' iss claim" }),
    audience: Type.String({ minLength: 1, default: 'bastion-api', description: "Access tokens' aud claim" }),
    accessTokenTtlSeconds: seconds(900, 'Lifetime of an access token', 30),
    sessionIdleTimeoutSeconds: seconds(7 * 86_400, 'A session unused (not refreshed) this long ends', 60),
    sessionAbsoluteTimeoutSeconds: seconds(30 * 86_400, 'A session ends this long after login, whatever', 60),
    signingKeyRotationDays: seconds(30, 'Age at which the access-token signing key is replaced'),
    tokenCacheSize: Type.Integer({ minimum: 0, default: 10_000, description: 'Verified access tokens kept' }),
    revocationRecheckMs: Type.Integer({
      minimum: 0,
      default: 5000,
      description: 'How long a session found live is trusted before shared state is asked again',
    }),
    mfaTokenTtlSeconds: seconds(300, 'Time to enter the MFA code after the password'),
    lockout: Type.Object(
      {
        maxFailures: Type.Integer({ minimum: 1, default: 5, description: 'Consecutive failures that lock' }),
        baseSeconds: seconds(60, 'First lock duration; doubles with each further lock'),
        maxSeconds: seconds(900, 'Longest lock; a lock never lasts longer'),
        failureWindowSeconds: seconds(3600, 'Failures older than this are forgotten'),
        ipFailures: Type.Integer({
          minimum: 1,
          default: 100,
          description: 'Failed logins per IP per window',
        }),
        ipWindowSeconds: seconds(3600, 'Window of the per-IP limit'),
        accountIpFailures: Type.Integer({
          minimum: 1,
          default: 10,
          description: 'Failed logins per account and IP per window',
        }),
        accountIpWindowSeconds: seconds(900, 'Window of the per-account-per-IP limit'),
      },
      { additionalProperties: false, default: {} },
    ),
  },
  { additionalProperties: false, default: {} },
);

const Outbound = Type.Object(
  {
    timeoutMs: Type.Integer({ minimum: 1, default: 5000, description: 'Timeout of outbound calls' }),
    allowPrivateNetworks: Type.Boolean({
      default: false,
      description: 'Let outbound calls (integration tests) reach loopback and private addresses',
    }),
  },
  { additionalProperties: false, default: {} },
);

/** A rate limit: `points` requests per `durationSeconds`. */
const rateRule = (points: number, durationSeconds: number, description: string) =>
  Type.Object(
    {
      points: Type.Integer({ minimum: 1, default: points }),
      durationSeconds: Type.Integer({ minimum: 1, default: durationSeconds }),
    },
    { additionalProperties: false, default: {}, description },
  );

/** Header name → value, or null to leave the header out. */
const headerOverrides = (description: string) =>
  Type.Record(Type.String(), Type.Union([Type.String(), Type.Null()]), { default: {}, description });

const IpRuleEntry = Type.Object(
  {
    cidr: Type.String({ minLength: 1, description: 'An address or CIDR, IPv4 or IPv6' }),
    reason: Type.String({ default: 'configuration' }),
  },
  { additionalProperties: false },
);

const Protection = Type.Object(
  {
    https: oneOf(['auto', 'redirect', 'refuse', 'off'], 'auto'),
    hsts: Type.Boolean({ default: true, description: 'Send Strict-Transport-Security in production' }),
    headers: Type.Object(
      {
        api: headerOverrides('Changes to the security headers of API responses'),
        console: headerOverrides("Changes to the security headers of the console's pages"),
      },
      { additionalProperties: false, default: {} },
    ),
    cors: Type.Object(
      {
        credentials: Type.Boolean({ default: true, description: 'Allow credentials for listed origins' }),
        maxAgeSeconds: seconds(600, 'How long browsers may cache a preflight answer', 0),
      },
      { additionalProperties: false, default: {} },
    ),
    limits: Type.Object(
      {
        maxHeaderBytes: Type.Integer({
          minimum: 1024,
          default: 16_384,
          description: 'Request line and headers, bytes',
        }),
        maxHeaderCount: Type.Integer({ minimum: 1, default: 100, description: 'Request headers' }),
        maxUrlLength: Type.Integer({ minimum: 64, default: 4096, description: 'Characters of the URL' }),
        maxJsonDepth: Type.Integer({
          minimum: 1,
          maximum: 1000,
          default: 100,
          description: 'Nesting of a JSON body',
        }),
        maxJsonKeys: Type.Integer({
          minimum: 1,
          default: 1000,
          description: 'Keys and items of a JSON body',
        }),
        maxParameters: Type.Integer({ minimum: 1, default: 100, description: 'Query-string parameters' }),
        headersTimeoutMs: Type.Integer({
          minimum: 1,
          default: 10_000,
          description: 'Time to receive the headers',
        }),
      },
      { additionalProperties: false, default: {} },
    ),
    rateLimit: Type.Object(
      {
        enabled: Type.Boolean({ default: true }),
        ip: rateRule(1000, 60, 'Requests per client address (IPv6: per /64)'),
        principal: rateRule(2000, 60, 'Requests per signed-in user or API key'),
        identity: rateRule(
          30,
          60,
          'Requests per client address to each identity endpoint (login, MFA, refresh…)',
        ),
      },
      { additionalProperties: false, default: {} },
    ),
    detection: Type.Object(
      {
        mode: oneOf(['block', 'monitor', 'off'], 'block'),
        classes: Type.Record(Type.String(), Type.Enum(['block', 'monitor', 'off']), {
          default: {},
          description:
            'Mode per attack class (sqli, xss, cmdi, path_traversal, ssrf, nosqli, prototype_pollution, crlf, scanner)',
        }),
      },
      { additionalProperties: false, default: {} },
    ),
    threat: Type.Object(
      {
        enabled: Type.Boolean({ default: true, description: 'Score addresses and ban automatically' }),
        halfLifeSeconds: seconds(600, 'A threat score halves in this time'),
        banThreshold: Type.Integer({
          minimum: 1,
          default: 100,
          description: 'Score at which an address is banned',
        }),
        banDurationsSeconds: Type.Array(Type.Integer({ minimum: 1 }), {
          minItems: 1,
          default: [900, 3600, 86_400],
          description: 'Length of the 1st, 2nd, … ban of an address within a week (the last repeats)',
        }),
        points: Type.Object(
          {
            attack: Type.Integer({
              minimum: 0,
              default: 25,
              description: 'Per request with an attack finding',
            }),
            identity_failure: Type.Integer({ minimum: 0, default: 5, description: 'Per failed sign-in' }),
            not_found: Type.Integer({ minimum: 0, default: 2, description: 'Per 404' }),
            rate_limited: Type.Integer({ minimum: 0, default: 10, description: 'Per rate-limited request' }),
          },
          { additionalProperties: false, default: {} },
        ),
        stuffingAccounts: Type.Integer({
          minimum: 2,
          default: 10,
          description: 'Distinct accounts failing from one address in 10 minutes: credential stuffing',
        }),
        guessingAddresses: Type.Integer({
          minimum: 2,
          default: 10,
          description: 'Distinct addresses failing on one account in 10 minutes: distributed guessing',
        }),
      },
      { additionalProperties: false, default: {} },
    ),
    ipRules: Type.Object(
      {
        allow: Type.Array(IpRuleEntry, { default: [] }),
        deny: Type.Array(IpRuleEntry, { default: [] }),
      },
      { additionalProperties: false, default: {} },
    ),
  },
  { additionalProperties: false, default: {} },
);

const MetricHistory = Type.Object(
  {
    sampleIntervalMs: Type.Integer({
      minimum: 100,
      maximum: 60_000,
      default: 1000,
      description: 'How often each instance samples its series (live values for alert rules)',
    }),
    retentionDays: Type.Integer({
      minimum: 1,
      default: 7,
      description: 'How long per-minute rollups are kept',
    }),
    hourlyRetentionDays: Type.Integer({
      minimum: 1,
      default: 90,
      description: 'How long the hourly rollups that replace older per-minute ones are kept',
    }),
  },
  { additionalProperties: false, default: {} },
);

/** A named alert channel of the config file (the environment configures one of each kind). */
const AlertChannel = Type.Object(
  {
    name: Type.String({ minLength: 1, pattern: '^[a-z][a-z0-9_-]{0,62}$' }),
    kind: Type.Enum(['webhook', 'slack', 'email', 'pushover', 'log']),
    /** webhook, slack: the URL; pushover: the API URL (default: the public service). */
    url: Type.Optional(Type.String({ minLength: 1 })),
    /** webhook: HMAC secret (default ALERT_WEBHOOK_SECRET). */
    secret: Type.Optional(Type.String({ minLength: 1 })),
    /** email: recipients; smtpUrl default SMTP_URL. */
    to: Type.Optional(Type.Array(Type.String({ minLength: 3 }))),
    smtpUrl: Type.Optional(Type.String({ minLength: 1 })),
    from: Type.Optional(Type.String({ minLength: 3 })),
    /** pushover: application token and user key (defaults PUSHOVER_TOKEN, PUSHOVER_USER). */
    token: Type.Optional(Type.String({ minLength: 1 })),
    user: Type.Optional(Type.String({ minLength: 1 })),
  },
  { additionalProperties: false },
);

const WebSocketOptions = Type.Object(
  {
    maxConnectionsPerUser: Type.Integer({
      minimum: 1,
      default: 5,
      description: 'Open /ws connections per user',
    }),
    maxMessagesPerSecond: Type.Integer({
      minimum: 1,
      default: 10,
      description: 'Messages a client may send per second before it is disconnected',
    }),
    heartbeatMs: Type.Integer({
      minimum: 1000,
      default: 30_000,
      description: 'Ping interval; no pong by the next ping closes',
    }),
    authTimeoutMs: Type.Integer({
      minimum: 100,
      default: 5000,
      description: 'How long a connection may stay unauthenticated (token in the first message)',
    }),
    maxBufferedBytes: Type.Integer({
      minimum: 1024,
      default: 1_048_576,
      description: 'Unsent bytes to a slow client before it is disconnected (backpressure)',
    }),
  },
  { additionalProperties: false, default: {} },
);

/** The whole configuration; every option has a default, so `{}` is a valid file. */
export const ConfigSchema = Type.Object(
  {
    env: oneOf(['development', 'production', 'test'], 'development'),
    dataDir: Type.String({ minLength: 1, default: './data' }),
    server: Server,
    database: Database,
    redis: Redis,
    sharedStatePolicy: SharedStatePolicy,
    security: Security,
    logging: Logging,
    privacy: Privacy,
    metrics: Metrics,
    health: Health,
    loadShedding: LoadShedding,
    admin: Admin,
    identity: Identity,
    outbound: Outbound,
    protection: Protection,
    tracing: Tracing,
    alertChannels: AlertChannels,
    alerts: Type.Object(
      {
        channels: Type.Array(AlertChannel, { default: [], description: 'Named alert channels' }),
        enabled: Type.Boolean({
          default: true,
          description: 'Evaluate alert rules and deliver notifications',
        }),
        evaluationIntervalMs: Type.Integer({
          minimum: 100,
          default: 1000,
          description: 'How often rules are evaluated (right after a metric sample, at most this often)',
        }),
        defaultRules: Type.Boolean({ default: true, description: "Include Bastion's default rules" }),
        defaultChannels: Type.Array(Type.String({ minLength: 1 }), {
          default: [],
          description: 'Channels of the default and SLO rules (default: every configured channel)',
        }),
        /** Rules of the config file; see `AlertRuleSchema` in src/alerting/rules.ts (checked at start-up). */
        rules: Type.Array(Type.Unknown(), { default: [] }),
        groupWait: Type.String({ default: '0s', description: 'A new group waits this long for more alerts' }),
        groupInterval: Type.String({
          default: '1m',
          description: 'Wait between notifications of a changed group',
        }),
        repeatInterval: Type.String({
          default: '4h',
          description: 'A group still firing is notified again after this',
        }),
        escalation: Type.Union(
          [
            Type.Object(
              {
                after: Type.String({ default: '15m' }),
                channels: Type.Array(Type.String({ minLength: 1 }), { minItems: 1 }),
              },
              { additionalProperties: false },
            ),
            Type.Null(),
          ],
          { default: null, description: 'Channels told when a critical alert is not acknowledged in time' },
        ),
        slo: Type.Object(
          {
            availability: Type.Union(
              [Type.Number({ exclusiveMinimum: 0, exclusiveMaximum: 1 }), Type.Null()],
              {
                default: 0.999,
                description: 'Fraction of requests that must not fail (5xx); null: no availability SLO',
              },
            ),
            latency: Type.Union([Type.Number({ exclusiveMinimum: 0, exclusiveMaximum: 1 }), Type.Null()], {
              default: 0.99,
              description: 'Fraction of requests that must be faster than latencyThresholdMs; null: none',
            }),
            latencyThresholdMs: Type.Integer({ minimum: 1, default: 500 }),
          },
          { additionalProperties: false, default: {} },
        ),
        delivery: Type.Object(
          {
            maxAttempts: Type.Integer({ minimum: 1, default: 10 }),
            baseDelayMs: Type.Integer({ minimum: 10, default: 1000 }),
            maxDelayMs: Type.Integer({ minimum: 10, default: 300_000 }),
            breakerThreshold: Type.Integer({ minimum: 1, default: 5 }),
            breakerHalfOpenMs: Type.Integer({ minimum: 100, default: 30_000 }),
          },
          { additionalProperties: false, default: {} },
        ),
        leaseTtlMs: Type.Integer({
          minimum: 1000,
          default: 15_000,
          description: 'An evaluating instance that stops renewing is replaced after this',
        }),
        consoleUrl: nullableString(),
      },
      { additionalProperties: false, default: {} },
    ),
    metricHistory: MetricHistory,
    websocket: WebSocketOptions,
  },
  { additionalProperties: false },
);

/** A validated configuration. */
export type BastionConfig = Type.Static<typeof ConfigSchema>;
