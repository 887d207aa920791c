import type { FastifyInstance } from 'fastify';
import Type from 'typebox';
import { BastionError, HttpErrors } from '../../core/errors.ts';
import type { Services } from '../services.ts';
import type { IntegrationCredentials } from './integration-credentials.ts';
import { pingIntegration } from './integration-ping.ts';
import { recordChange } from './record-change.ts';
import {
  Nullable,
  ORGANIZATIONS_PATH,
  OrgRecordParams,
  type OrgRecordParamsValue,
  TENANT_ERRORS,
} from './schemas.ts';

const TestResult = Type.Object({
  ok: Type.Boolean(),
  status: Nullable(Type.Integer()),
  duration_ms: Type.Integer(),
  error: Type.Optional(Type.String()),
  response_snippet: Type.Optional(Type.String()),
});

/**
 * `POST …/integrations/:id/test`: pings the integration's URL through the outbound client (SSRF
 * guard, configured timeout) with its credentials, and answers how it went, always 200: an
 * unreachable, slow or refused destination is a result, not a server error. The outcome is stored
 * in `last_test_at`/`last_test_status` and audited.
 */
export function registerIntegrationTestRoute(app: FastifyInstance, services: Services): void {
  const { db } = services.database;

  app.post<{ Params: OrgRecordParamsValue }>(
    `${ORGANIZATIONS_PATH}/:org/integrations/:id/test`,
    {
      config: { auth: 'integrations:test' },
      schema: {
        tags: ['integrations'],
        summary: "Call the integration's URL with a ping and its credentials",
        params: OrgRecordParams,
        response: { 200: TestResult, ...TENANT_ERRORS },
      },
    },
    async (request) => {
      const { org, id } = request.params;
      const row = await db
        .selectFrom('integrations')
        .select(['id', 'url', 'secret_name'])
        .where('org_id', '=', org)
        .where('id', '=', id)
        .executeTakeFirst();
      if (!row) throw new BastionError(HttpErrors.notFound);
      const secret = await services.vault.get(row.secret_name);
      const credentials = JSON.parse(secret.value) as IntegrationCredentials;
      const at = new Date(services.clock.now()).toISOString();
      const result = await pingIntegration(
        services.outbound,
        row,
        credentials,
        at,
        services.config.outbound.timeoutMs,
      );
      const status = result.error ?? String(result.status);
      await db
        .updateTable('integrations')
        .set({ last_test_at: at, last_test_status: status })
        .where('org_id', '=', org)
        .where('id', '=', id)
        .execute();
      await recordChange(services, request, {
        action: 'integration.test',
        orgId: org,
        target: { type: 'integration', id },
        outcome: result.ok ? 'success' : 'failure',
        details: { status },
      });
      return result;
    },
  );
}
