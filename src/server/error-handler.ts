import { randomUUID } from 'node:crypto';
import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import type {
  ConnectionError,
  FastifyError,
  FastifyInstance,
  FastifyReply,
  FastifyRequest,
  preValidationHookHandler,
} from 'fastify';
import { BastionError, type ErrorDefinition, HttpErrors } from '../core/errors.ts';
import { urlPath } from '../core/url-path.ts';

/** The JSON body of every error response. */
export interface ErrorBody {
  error: string;
  message: string;
  request_id: string;
  [extra: string]: unknown;
}

// Fastify's own client errors, mapped to Bastion's public codes.
const FASTIFY_ERRORS: Record<string, ErrorDefinition> = {
  FST_ERR_CTP_INVALID_JSON_BODY: HttpErrors.malformedJson,
  FST_ERR_CTP_EMPTY_JSON_BODY: HttpErrors.malformedJson,
  FST_ERR_CTP_BODY_TOO_LARGE: HttpErrors.payloadTooLarge,
  FST_ERR_CTP_INVALID_MEDIA_TYPE: HttpErrors.unsupportedMediaType,
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: HttpErrors.badRequest,
  FST_ERR_VALIDATION: HttpErrors.validation,
};

const BY_STATUS: Record<number, ErrorDefinition> = {
  400: HttpErrors.badRequest,
  401: HttpErrors.unauthorized,
  403: HttpErrors.forbidden,
  404: HttpErrors.notFound,
  405: HttpErrors.methodNotAllowed,
  409: HttpErrors.conflict,
  413: HttpErrors.payloadTooLarge,
  415: HttpErrors.unsupportedMediaType,
  422: HttpErrors.unprocessable,
  429: HttpErrors.tooManyRequests,
  503: HttpErrors.unavailable,
};

/** Builds the error body for a definition. */
export function errorBody(definition: ErrorDefinition, requestId: string, message?: string): ErrorBody {
  return { error: definition.error, message: message ?? definition.message, request_id: requestId };
}

function validationDetails(error: FastifyError): Array<{ path: string; message: string }> {
  return (error.validation ?? []).map((issue) => ({
    path: `${error.validationContext ?? 'body'}${issue.instancePath || ''}`,
    message: issue.message ?? 'is invalid',
  }));
}

/**
 * Every error becomes `{ error, message, request_id }` with the right status. Client errors
 * say what was wrong; server errors say nothing internal and are logged with the request id.
 */
export function installErrorHandling(
  app: FastifyInstance,
  options: { notFoundPreValidation?: preValidationHookHandler } = {},
): void {
  app.setErrorHandler((error: FastifyError | BastionError, request: FastifyRequest, reply: FastifyReply) => {
    if (error instanceof BastionError) {
      if (error.headers) reply.headers(error.headers);
      const body = { ...errorBody(error.definition, request.id, error.message), ...error.details };
      return reply.code(error.statusCode).send(body);
    }
    if (error.validation) {
      return reply
        .code(400)
        .send({ ...errorBody(HttpErrors.validation, request.id), details: validationDetails(error) });
    }
    const status = typeof error.statusCode === 'number' ? error.statusCode : 500;
    const known =
      (error.code && FASTIFY_ERRORS[error.code]) || (status < 500 ? BY_STATUS[status] : undefined);
    if (known && status < 500) {
      return reply.code(known.status).send(errorBody(known, request.id));
    }
    if (status === 503) return reply.code(503).send(errorBody(HttpErrors.unavailable, request.id));
    request.log.error({ err: error }, 'request failed');
    return reply.code(500).send(errorBody(HttpErrors.internal, request.id));
  });

  const notFoundOptions = options.notFoundPreValidation
    ? { preValidation: options.notFoundPreValidation }
    : {};
  app.setNotFoundHandler(notFoundOptions, (request: FastifyRequest, reply: FastifyReply) =>
    reply
      .code(404)
      .send(
        errorBody(HttpErrors.notFound, request.id, `No route for ${request.method} ${routePath(request)}`),
      ),
  );
}

/**
 * Fastify's router answers a malformed URL (`/%`), an over-long path parameter or a failing
 * constraint before any hook runs; without this handler that reply is Fastify's own JSON,
 * echoing the path, with no `X-Request-ID`. Pass it as the `frameworkErrors` server option.
 */
export function frameworkErrorHandler(
  error: FastifyError,
  request: FastifyRequest,
  reply: FastifyReply,
): void {
  const definition = (error.statusCode ?? 500) < 500 ? HttpErrors.badRequest : HttpErrors.internal;
  // No onResponse hook runs for these requests, so the access line is written here.
  request.log.info(
    {
      method: request.method,
      route: null,
      status: definition.status,
      client_ip: request.ip,
      code: error.code,
    },
    'request completed',
  );
  reply.code(definition.status).header('x-request-id', request.id).send(errorBody(definition, request.id));
}

// Node's HTTP parser errors, by code.
const CLIENT_ERRORS: Record<string, ErrorDefinition> = {
  HPE_HEADER_OVERFLOW: HttpErrors.headersTooLarge,
  ERR_HTTP_REQUEST_TIMEOUT: HttpErrors.requestTimeout,
};

/**
 * Node's HTTP parser refuses a malformed request (a bare CR in a header, a broken request
 * line, oversized headers, a request that never finishes arriving) before Fastify sees it;
 * Fastify's default answer has neither Bastion's error shape nor an `X-Request-ID`. Pass it
 * as the `clientErrorHandler` server option (Fastify binds `this` to the instance).
 */
export function clientErrorHandler(this: FastifyInstance, error: ConnectionError, socket: Socket): void {
  // A reset socket is already gone: there is no one to answer.
  if (error.code === 'ECONNRESET' || socket.destroyed) return;
  if (socket.writable) {
    const definition = CLIENT_ERRORS[error.code] ?? HttpErrors.badRequest;
    const id = randomUUID();
    const body = JSON.stringify(errorBody(definition, id));
    this.log.debug({ request_id: id, code: error.code, status: definition.status }, 'client error');
    socket.write(
      `HTTP/1.1 ${definition.status} ${STATUS_CODES[definition.status]}\r\n` +
        'Content-Type: application/json; charset=utf-8\r\n' +
        `Content-Length: ${Buffer.byteLength(body)}\r\n` +
        `X-Request-ID: ${id}\r\nConnection: close\r\n\r\n${body}`,
    );
  }
  socket.destroy(error);
}

/** The path echoed in a 404 message: bounded, printable, without the query. */
function routePath(request: FastifyRequest): string {
  return urlPath(request.url, 200).replace(/[^\x20-\x7e…]/g, '?');
}
