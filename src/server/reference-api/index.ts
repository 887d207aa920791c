import type { FastifyInstance } from 'fastify';
import type { Services } from '../services.ts';

/**
 * The multi-tenant reference API under `/api/v1/organizations`: organizations, members,
 * workflows with versions, integrations, API keys and audit events.
 */
export function registerReferenceApi(_app: FastifyInstance, _services: Services): void {}
