/** Who is making a request, once authenticated. */
export interface Principal {
  /** 'user' for people (access token), 'api_key' for machine callers. */
  readonly kind: 'user' | 'api_key';
  /** The user id, or the API key's id. */
  readonly id: string;
  /** The organization an API key belongs to; null for users (they act in any organization they belong to). */
  readonly orgId: string | null;
  /** Permissions outside any organization (platform routes such as `/api/v1/admin/…`). */
  readonly permissions: ReadonlySet<string>;
  /** The login session behind an access token; null for API keys. */
  readonly sessionId?: string | null;
  /** The user behind the request: the user, or the API key's creator. */
  readonly userId?: string | null;
  /** True for the platform admin. */
  readonly platformAdmin?: boolean;
  /**
   * Permissions in organization `orgId`, or null when the principal has no access to it (the route
   * then answers 404, exactly as for an organization that does not exist).
   */
  permissionsIn?(orgId: string): Promise<ReadonlySet<string> | null>;
}

/**
 * Finds the principal behind a request (bearer token, API key, console session), or null when
 * the request carries no valid credentials. Identity supplies the real one. It may answer at
 * once (a cached token) or with a promise.
 */
export type Authenticator<Request = unknown> = (
  request: Request,
) => Principal | null | PromiseLike<Principal | null>;

/** True for a promise or any other thenable. */
export function isPromiseLike<T>(value: T | PromiseLike<T>): value is PromiseLike<T> {
  return typeof (value as { then?: unknown } | null)?.then === 'function';
}
