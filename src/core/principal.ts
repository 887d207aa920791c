/** Who is making a request, once authenticated. */
export interface Principal {
  /** 'user' for people (token or console session), 'api_key' for machine callers. */
  readonly kind: 'user' | 'api_key';
  /** The user id, or the API key's id. */
  readonly id: string;
  /** The organization the request acts in, when one applies. */
  readonly orgId: string | null;
  /** Permissions granted (e.g. `workflows:write`). */
  readonly permissions: ReadonlySet<string>;
}

/**
 * Finds the principal behind a request (bearer token, API key, console session), or null when
 * the request carries no valid credentials. Identity supplies the real one.
 */
export type Authenticator<Request = unknown> = (request: Request) => Promise<Principal | null>;
