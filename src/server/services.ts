import { randomBytes } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { hostname } from 'node:os';
import type { Logger } from 'pino';
import { Gauge, Registry } from 'prom-client';
import { createNotifiers } from '../alerting/notifiers/create-notifiers.ts';
import { AlertService } from '../alerting/service.ts';
import { ConfigError } from '../config/errors.ts';
import { resolveMasterKey } from '../config/master-key.ts';
import { productionProblems } from '../config/production-guards.ts';
import type { BastionConfig } from '../config/schema.ts';
import { type Clock, systemClock } from '../core/clock.ts';
import { FieldCipher } from '../data-protection/field-cipher.ts';
import { Keyring } from '../data-protection/keyring.ts';
import { Pseudonymizer } from '../data-protection/pseudonymizer.ts';
import { ReencryptionJob } from '../data-protection/reencryption.ts';
import { registerSecretsMetrics } from '../data-protection/secrets-metrics.ts';
import { SecretsVault } from '../data-protection/secrets-vault.ts';
import { IdentityService } from '../identity/service.ts';
import { BUILD_INFO } from '../observability/build-info.ts';
import { DatabaseMetrics } from '../observability/database-metrics.ts';
import { HealthService } from '../observability/health.ts';
import {
  databaseCheck,
  diskCheck,
  EventLoopDelayCheck,
  memoryCheck,
  migrationsCheck,
  sharedStateCheck,
} from '../observability/health-checks.ts';
import { HttpMetrics } from '../observability/http-metrics.ts';
import { identityFailureMetrics, MetricHistory } from '../observability/metric-history/index.ts';
import { registerRuntimeMetrics } from '../observability/runtime-metrics.ts';
import { registerSystemMetrics } from '../observability/system-metrics.ts';
import { IpRules } from '../protection/ip-rules.ts';
import { RateLimits } from '../protection/rate-limits.ts';
import { SecurityEvents } from '../protection/security-events.ts';
import { SecurityIncidents } from '../protection/security-incidents.ts';
import { feedIdentityFailures, ThreatScores } from '../protection/threat-scores.ts';
import { OutboundClient } from '../resilience/outbound-client.ts';
import { type Database, openDatabase } from '../storage/database.ts';
import { ensureInstallationId } from '../storage/instance-settings.ts';
import { migrateUp, pendingMigrations } from '../storage/migrator.ts';
import { createSharedState } from '../storage/shared-state.ts';
import type { SharedState } from '../storage/state.ts';
import { publishAlertChange, publishBan, publishSecurityEvents } from './live-events/live-event-feeds.ts';
import { LiveEventHub } from './live-events/live-event-hub.ts';
import { StartupError } from './startup-error.ts';

/** The long-lived parts of a running Bastion, shared by its routes and closed together. */
export interface Services {
  readonly config: BastionConfig;
  readonly logger: Logger;
  readonly clock: Clock;
  readonly database: Database;
  readonly state: SharedState;
  readonly registry: Registry;
  readonly httpMetrics: HttpMetrics;
  readonly health: HealthService;
  readonly installationId: string;
  /** The 32-byte root key every other key is derived from. */
  readonly masterKey: Buffer;
  /** Data keys (wrapped by the master key). */
  readonly keyring: Keyring;
  /** Field encryption with the keyring's active key. */
  readonly cipher: FieldCipher;
  /** Keyed, stable pseudonyms for analytics fields. */
  readonly pseudonymizer: Pseudonymizer;
  /** Named, versioned, encrypted secrets. */
  readonly vault: SecretsVault;
  /** Moves rows to the active field key after each rotation, in the background. */
  readonly reencryption: ReencryptionJob;
  /** Users, sessions, tokens, MFA, API keys, roles and the audit trail. */
  readonly identity: IdentityService;
  /** The one outbound HTTP client (integration tests, later alert channels and the gateway). */
  readonly outbound: OutboundClient;
  /** IP allow and deny rules, followed across instances. */
  readonly ipRules: IpRules;
  /** Durable security events (findings, blocks, bans). */
  readonly securityEvents: SecurityEvents;
  /** Rate limiters on shared state, with a local fallback. */
  readonly rateLimits: RateLimits;
  /** Decaying per-address threat scores and automatic bans. */
  readonly threat: ThreatScores;
  /** Security incidents and the threat level. */
  readonly incidents: SecurityIncidents;
  /** Live events (`GET /ws`): publish alerts, security events, bans and health changes to every instance. */
  readonly liveEvents: LiveEventHub;
  /** Per-minute history of the key series, across instances (alert rules, console charts). */
  readonly metricHistory: MetricHistory;
  /** Alert rules, their evaluation (one instance at a time), silences, channels and delivery. */
  readonly alerts: AlertService;
  /** This process among the instances sharing the database (metric rollups, the alerting lease). */
  readonly instanceId: string;
  readonly startedAt: number;
  /** Closes the database and shared state (idempotent). */
  close(): Promise<void>;
}

/** Options for `createServices`. */
export interface ServicesOptions {
  config: BastionConfig;
  logger: Logger;
  clock?: Clock;
  /** Apply pending migrations even in production (`serve --migrate`). Default false. */
  migrate?: boolean;
  /** PostgreSQL schema (search_path) to use; tests isolate themselves with it. */
  databaseSchema?: string;
}

/**
 * Checks the production guards, opens storage, applies migrations per policy and builds
 * metrics and health. Throws `ConfigError` or `StartupError` (exit code 78) on refusal.
 */
export async function createServices(options: ServicesOptions): Promise<Services> {
  const { config, logger } = options;
  const clock = options.clock ?? systemClock;
  const problems = productionProblems(config);
  if (problems.length > 0) throw new ConfigError(problems, 'Refusing to start in production');

  await mkdir(config.dataDir, { recursive: true, mode: 0o700 });
  const masterKey = await resolveMasterKey(config, (message) => logger.warn(message));
  const registry = new Registry();
  registerRuntimeMetrics(registry);
  registerSystemMetrics(registry, { diskPath: config.dataDir });
  new Gauge({
    name: 'bastion_build_info',
    help: 'Bastion build; always 1.',
    labelNames: ['version', 'node_version'],
    registers: [registry],
  }).set({ version: BUILD_INFO.version, node_version: BUILD_INFO.nodeVersion }, 1);
  const httpMetrics = new HttpMetrics(registry);
  const databaseMetrics = new DatabaseMetrics(registry, { slowQueryMs: config.database.slowQueryMs, logger });

  const database = openDatabase({
    url: config.database.url,
    poolMax: config.database.poolMax,
    busyTimeoutMs: config.database.busyTimeoutMs,
    schema: options.databaseSchema,
    onQuery: databaseMetrics.onQuery,
  });
  databaseMetrics.attach(registry, database);
  const state = createSharedState({ redisUrl: config.redis.url, keyPrefix: config.redis.keyPrefix, clock });
  const eventLoop = new EventLoopDelayCheck(config.health);
  let keyring: Keyring | null = null;
  let reencryption: ReencryptionJob | null = null;
  let identity: IdentityService | null = null;
  let ipRules: IpRules | null = null;
  let threat: ThreatScores | null = null;
  const liveEvents = new LiveEventHub({
    state,
    logger,
    registry,
    maxConnectionsPerUser: config.websocket.maxConnectionsPerUser,
  });
  const securityEvents = new SecurityEvents({ db: database.db, logger, clock, registry });
  const outbound = new OutboundClient({
    timeoutMs: config.outbound.timeoutMs,
    allowPrivateNetworks: config.outbound.allowPrivateNetworks,
  });
  // Alert channels are the operator's own configuration (an internal relay, a local receiver), so
  // unlike integration URLs they may point at private addresses.
  const channelClient = new OutboundClient({
    timeoutMs: config.outbound.timeoutMs,
    allowPrivateNetworks: true,
  });
  const instanceId = `${hostname().slice(0, 40)}-${process.pid}-${randomBytes(4).toString('hex')}`;
  let metricHistory: MetricHistory | null = null;
  let healthService: HealthService | null = null;
  let alerts: AlertService | null = null;
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    eventLoop.stop();
    healthService?.stop();
    await alerts?.close().catch(() => {});
    await metricHistory?.close().catch(() => {});
    await liveEvents.close().catch(() => {});
    await reencryption?.stop().catch(() => {});
    await identity?.close().catch(() => {});
    await threat?.close().catch(() => {});
    await ipRules?.close().catch(() => {});
    await securityEvents.close().catch(() => {});
    await outbound.close().catch(() => {});
    await channelClient.close().catch(() => {});
    await keyring?.close().catch(() => {});
    await Promise.allSettled([database.close(), state.close()]);
  };

  try {
    await applyMigrations(database, config, logger, options.migrate ?? false);
    const installationId = await ensureInstallationId(database.db, clock);
    keyring = await Keyring.open({ db: database.db, masterKey, clock, state });
    const cipher = new FieldCipher(keyring);
    const vault = new SecretsVault({ db: database.db, cipher, clock });
    registerSecretsMetrics(registry, vault);
    const health = new HealthService({
      timeoutMs: config.health.checkTimeoutMs,
      cacheMs: config.health.cacheMs,
      clock,
    });
    healthService = health;
    health.add(databaseCheck(database, config.health));
    health.add(sharedStateCheck(state));
    health.add(diskCheck(config.dataDir, config.health));
    health.add(memoryCheck(config.health));
    health.add(eventLoop);
    health.add(migrationsCheck(database));
    reencryption = new ReencryptionJob({ db: database.db, cipher, keyring, logger, registry, state, clock });
    await reencryption.start();
    identity = await IdentityService.open({
      config,
      db: database.db,
      state,
      keyring,
      cipher,
      masterKey,
      clock,
      logger,
    });
    await identity.bootstrapAdmin();
    ipRules = new IpRules({ config, db: database.db, state, clock, logger });
    await ipRules.start();
    threat = new ThreatScores({ config, state, ipRules, events: securityEvents, clock, logger });
    identity.audit.onRecorded(feedIdentityFailures(threat));
    identity.audit.onRecorded(identityFailureMetrics(registry));
    const incidents = new SecurityIncidents({ db: database.db, clock, ipRules });
    securityEvents.afterStore((batch) => {
      publishSecurityEvents(liveEvents, batch);
      return incidents.absorb(batch);
    });
    ipRules.onAdded((rule) => publishBan(liveEvents, rule));
    liveEvents.start();
    const history = new MetricHistory({
      db: database.db,
      registry,
      clock,
      logger,
      instanceId,
      config,
      httpDuration: httpMetrics.duration,
    });
    alerts = alertServiceOrConfigError(
      () =>
        new AlertService({
          config,
          db: database.db,
          clock,
          logger,
          registry,
          series: history,
          notifiers: createNotifiers(config, { logger, transport: channelClient, clock }),
          onChange: (change) => publishAlertChange(liveEvents, change, clock.now()),
          holder: instanceId,
          // Rules are evaluated right after each sample: a breach is seen within one sample interval.
          evaluationTrigger: (evaluate) => history.onSample(evaluate),
        }),
    );
    metricHistory = history;
    health.onChange(
      (change) =>
        void liveEvents.publish({ type: 'health', at: new Date(clock.now()).toISOString(), data: change }),
    );
    health.watch(Math.max(config.health.cacheMs, 5000));
    await metricHistory.start();
    await alerts.start();
    return {
      config,
      logger,
      clock,
      database,
      state,
      registry,
      httpMetrics,
      health,
      installationId,
      masterKey,
      keyring,
      cipher,
      pseudonymizer: new Pseudonymizer(keyring),
      vault,
      reencryption,
      identity,
      outbound,
      ipRules,
      securityEvents,
      rateLimits: new RateLimits({ state, clock, registry }),
      threat,
      incidents,
      liveEvents,
      metricHistory,
      alerts,
      instanceId,
      startedAt: clock.now(),
      close,
    };
  } catch (error) {
    await close();
    throw error;
  }
}

/**
 * Builds alerting; a rule or channel the configuration gets wrong (checked when it is built) stops
 * start-up as a configuration error (exit 78) naming it, not as a crash.
 */
function alertServiceOrConfigError(build: () => AlertService): AlertService {
  try {
    return build();
  } catch (error) {
    if (!(error instanceof TypeError)) throw error;
    throw new ConfigError(
      [{ key: 'alerts', source: 'the configuration', message: error.message }],
      'Refusing to start',
    );
  }
}

async function applyMigrations(database: Database, config: BastionConfig, logger: Logger, migrate: boolean) {
  let pending: string[];
  try {
    pending = await pendingMigrations(database);
  } catch (error) {
    throw new StartupError(`Cannot reach the database: ${(error as Error).message}`, 1);
  }
  if (pending.length === 0) return;
  if (config.env === 'production' && !migrate) {
    throw new StartupError(
      `Refusing to start: ${pending.length} pending migration(s) (${pending.join(', ')}). ` +
        'Run `bastion migrate up`, or start with `bastion serve --migrate`.',
    );
  }
  const applied = await migrateUp(database);
  logger.info({ migrations: applied }, `applied ${applied.length} migration(s)`);
}
