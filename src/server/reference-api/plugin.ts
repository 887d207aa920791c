import type { FastifyInstance } from 'fastify';
import type { Services } from '../services.ts';
import { registerApiKeyRoutes } from './api-keys.ts';
import { registerAuditEventRoutes } from './audit-events.ts';
import { registerIntegrationTestRoute } from './integration-test-route.ts';
import { registerIntegrationRoutes } from './integrations.ts';
import { registerMemberRoutes } from './members.ts';
import { registerOrganizationRoutes } from './organizations.ts';
import { registerWorkflowRoutes } from './workflows.ts';

/**
 * The multi-tenant reference API under `/api/v1/organizations`: organizations, members,
 * workflows with versions, integrations, API keys and audit events. Every record is looked up
 * with its organization, so another tenant's id answers 404 like a missing one. Answers are
 * `no-store`: they are one tenant's data (and, once, a new key's token).
 */
export function registerReferenceApi(app: FastifyInstance, services: Services): void {
  app.register(async (api) => {
    api.addHook('onRequest', async (_request, reply) => {
      reply.header('cache-control', 'no-store');
    });
    registerOrganizationRoutes(api, services);
    registerMemberRoutes(api, services);
    registerWorkflowRoutes(api, services);
    registerIntegrationRoutes(api, services);
    registerIntegrationTestRoute(api, services);
    registerApiKeyRoutes(api, services);
    registerAuditEventRoutes(api, services);
  });
}
