import type { FastifyInstance } from 'fastify';
import type { HealthReport, HealthService } from './health.ts';
import '../server/fastify-types.ts';

const HEALTH_JSON = 'application/health+json';

/** Extra facts shown by `/health/detailed` (breakers, shared-state policy, migrations…). */
export type DetailedFacts = () => Promise<Record<string, unknown>>;

function statusCode(report: HealthReport): number {
  return report.status === 'fail' ? 503 : 200;
}

/** Strips observed values: readiness is public, so it tells only what passed. */
function summary(report: HealthReport): HealthReport {
  const checks: HealthReport['checks'] = {};
  for (const [key, entries] of Object.entries(report.checks)) {
    checks[key] = entries.map(({ componentType, status, time }) => ({ componentType, status, time }));
  }
  return { status: report.status, checks };
}

/** What `/health/detailed` answers: every check with its observed values, and the extra facts. */
export async function detailedHealth(
  health: HealthService,
  facts: DetailedFacts,
  release: { version: string },
): Promise<{ code: number; body: Record<string, unknown> }> {
  const [report, extra] = await Promise.all([health.report(), facts()]);
  return {
    code: statusCode(report),
    body: { status: report.status, version: release.version, ...extra, checks: report.checks },
  };
}

/** `/health/live`, `/health/ready` and `/health/detailed` (monitoring:read). */
export function registerHealthRoutes(
  app: FastifyInstance,
  health: HealthService,
  facts: DetailedFacts,
  release: { version: string },
): void {
  // Liveness never touches a dependency: it only proves the event loop answers.
  const live = JSON.stringify({ status: 'pass' });
  app.get('/health/live', { config: { auth: 'public', loadShedding: false } }, async (_request, reply) =>
    reply.type(HEALTH_JSON).header('cache-control', 'no-store').send(live),
  );

  app.get('/health/ready', { config: { auth: 'public' } }, async (_request, reply) => {
    const report = await health.report();
    return reply
      .code(statusCode(report))
      .type(HEALTH_JSON)
      .header('cache-control', 'no-store')
      .send(JSON.stringify(summary(report)));
  });

  app.get('/health/detailed', { config: { auth: 'monitoring:read' } }, async (_request, reply) => {
    const { code, body } = await detailedHealth(health, facts, release);
    return reply.code(code).type(HEALTH_JSON).header('cache-control', 'no-store').send(JSON.stringify(body));
  });
}
