import type { Kysely } from 'kysely';
import type { BastionConfig } from '../config/schema.ts';
import type { Clock } from '../core/clock.ts';
import type { DatabaseSchema } from '../storage/schema.ts';
import type { SharedState } from '../storage/state.ts';
import type { AccessTokens } from './access-tokens.ts';
import type { ApiKeyService } from './api-keys.ts';
import type { AuditLog } from './audit-log.ts';
import type { LoginGuard } from './login-guard.ts';
import type { MfaService } from './mfa.ts';
import type { SessionService } from './sessions.ts';
import type { UserStore } from './users.ts';

/** The parts of identity that its flows (login, account changes) work with. */
export interface IdentityParts {
  config: BastionConfig;
  db: Kysely<DatabaseSchema>;
  state: SharedState;
  clock: Clock;
  users: UserStore;
  sessions: SessionService;
  tokens: AccessTokens;
  mfa: MfaService;
  audit: AuditLog;
  guard: LoginGuard;
  apiKeys: ApiKeyService;
  /** The blind-index key of an e-mail address: what lockouts are counted by. */
  accountKey(email: string): string;
  /** Tells every instance to forget what it cached about a user. */
  userChanged(userId: string): void;
}
