import { BastionError } from '../core/errors.ts';
import type { Principal } from '../core/principal.ts';
import type { UsersTable } from '../storage/schema.ts';
import type { RequestContext } from './audit-log.ts';
import { IdentityErrors } from './errors.ts';
import type { IdentityParts } from './identity-parts.ts';
import type { LoginFlow } from './login-flow.ts';
import { hashPassword, verifyPassword } from './passwords.ts';
import { checkNewPassword, type UserView } from './users.ts';

/**
 * Changes to an account: password, e-mail address, MFA enrolment and removal, backup codes, and
 * (for admins) disabling. Each sensitive change needs the password, and the MFA code when MFA is
 * on, checked under the same brute-force limits as login; MFA and password changes end the
 * other sessions.
 */
export class AccountFlow {
  readonly #d: IdentityParts & { login: LoginFlow };

  constructor(parts: IdentityParts & { login: LoginFlow }) {
    this.#d = parts;
  }

  /**
   * Changes a password: the current password, and the MFA code when MFA is on, are required; the
   * other sessions end.
   */
  async changePassword(
    principal: Principal,
    input: { current_password: string; new_password: string; code?: string },
    context: RequestContext,
  ): Promise<void> {
    const user = await this.#reauthenticate(principal, input.current_password, input.code, context);
    const email = await this.#d.users.email(user);
    await checkNewPassword(input.new_password, [email, user.name ?? '']);
    await this.#d.users.setPasswordHash(user.id, await hashPassword(input.new_password), true);
    const ended = await this.#d.sessions.revokeAllForUser(
      user.id,
      'password_change',
      principal.sessionId ?? null,
    );
    await this.#d.audit.record({
      category: 'authentication',
      action: 'auth.password_changed',
      actor: { type: 'user', id: user.id },
      details: { other_sessions_revoked: ended },
      context,
    });
  }

  /**
   * Starts TOTP enrolment; needs the password, however fresh the login (a stolen access token must
   * not be able to put the thief's authenticator on the account).
   */
  async setupTotp(
    principal: Principal,
    input: { password?: string },
    context: RequestContext,
  ): Promise<{ secret: string; otpauth_url: string }> {
    const user = await this.#reauthenticate(principal, input.password, undefined, context);
    const email = await this.#d.users.email(user);
    const { secret, otpauthUrl } = await this.#d.mfa.setup(user.id, email);
    await this.#d.audit.record({
      category: 'authentication',
      action: 'auth.mfa_setup_started',
      actor: { type: 'user', id: user.id },
      context,
    });
    return { secret, otpauth_url: otpauthUrl };
  }

  /** Confirms TOTP with a first code; returns the backup codes once; other sessions end. */
  async enableTotp(
    principal: Principal,
    code: string,
    context: RequestContext,
  ): Promise<{ backup_codes: string[] }> {
    // Enrolment was started after a re-authentication (setupTotp); the code proves the user holds
    // the authenticator.
    const user = await this.#ownUser(principal);
    const { backupCodes } = await this.#d.mfa.enable(user.id, code).catch(async (error: unknown) => {
      await this.#d.audit.record({
        category: 'authentication',
        action: 'auth.mfa_enable_failed',
        outcome: 'failure',
        actor: { type: 'user', id: user.id },
        context,
      });
      throw error;
    });
    const ended = await this.#d.sessions.revokeAllForUser(user.id, 'mfa_change', principal.sessionId ?? null);
    this.#d.userChanged(user.id);
    await this.#d.audit.record({
      category: 'authentication',
      action: 'auth.mfa_enabled',
      actor: { type: 'user', id: user.id },
      details: { other_sessions_revoked: ended },
      context,
    });
    return { backup_codes: backupCodes };
  }

  /** Turns MFA off: password and a current code required; other sessions end. */
  async disableMfa(
    principal: Principal,
    input: { password: string; code: string },
    context: RequestContext,
  ): Promise<void> {
    const user = await this.#reauthenticate(principal, input.password, input.code, context);
    if (user.mfa_enabled !== 1) throw new BastionError(IdentityErrors.mfaNotEnabled);
    await this.#d.mfa.disable(user.id);
    const ended = await this.#d.sessions.revokeAllForUser(user.id, 'mfa_change', principal.sessionId ?? null);
    await this.#d.audit.record({
      category: 'authentication',
      action: 'auth.mfa_disabled',
      actor: { type: 'user', id: user.id },
      details: { other_sessions_revoked: ended },
      context,
    });
  }

  /** Replaces the backup codes: password and a current code required. */
  async regenerateBackupCodes(
    principal: Principal,
    input: { password: string; code: string },
    context: RequestContext,
  ): Promise<{ backup_codes: string[] }> {
    const user = await this.#reauthenticate(principal, input.password, input.code, context);
    if (user.mfa_enabled !== 1) throw new BastionError(IdentityErrors.mfaNotEnabled);
    const codes = await this.#d.mfa.regenerateBackupCodes(user.id);
    // An MFA change: whoever else is signed in must prove the factors again.
    const ended = await this.#d.sessions.revokeAllForUser(user.id, 'mfa_change', principal.sessionId ?? null);
    await this.#d.audit.record({
      category: 'authentication',
      action: 'auth.mfa_backup_codes_regenerated',
      actor: { type: 'user', id: user.id },
      details: { other_sessions_revoked: ended },
      context,
    });
    return { backup_codes: codes };
  }

  /** Changes the e-mail address: password (and MFA code when on) required. */
  async changeEmail(
    principal: Principal,
    input: { new_email: string; password: string; code?: string },
    context: RequestContext,
  ): Promise<UserView> {
    const user = await this.#reauthenticate(principal, input.password, input.code, context);
    const view = await this.#d.users.changeEmail(user.id, input.new_email);
    await this.#d.audit.record({
      category: 'authentication',
      action: 'auth.email_changed',
      actor: { type: 'user', id: user.id },
      context,
    });
    return view;
  }

  /** Disables or re-enables an account; disabling ends every session at once. */
  async setUserStatus(userId: string, status: 'active' | 'disabled'): Promise<void> {
    await this.#d.users.update(userId, { status });
    this.#d.userChanged(userId);
    if (status === 'disabled') {
      await this.#d.sessions.revokeAllForUser(userId, 'account_disabled');
      await this.#d.apiKeys.revokeCreatedBy(userId);
    }
  }

  /** The caller's user row after checking the password (and MFA code when MFA is on). */
  async #reauthenticate(
    principal: Principal,
    password: unknown,
    code: unknown,
    context: RequestContext,
  ): Promise<UsersTable> {
    const user = await this.#ownUser(principal);
    // The same brute-force limits as login: a stolen access token must not become a way to guess
    // the password (or code) without limit.
    const email = await this.#d.users.email(user);
    const accountKey = this.#d.accountKey(email);
    const ip = context.ip ?? 'unknown';
    const attempt = await this.#d.login.beginAttempt(
      accountKey,
      ip,
      user.id,
      email,
      'auth.reauthentication_throttled',
      context,
    );
    const passwordOk =
      !attempt.refused &&
      typeof password === 'string' &&
      (await verifyPassword(user.password_hash, password));
    // The code is checked (and a valid one used up) only after the right password.
    const codeOk =
      passwordOk &&
      (user.mfa_enabled !== 1 ||
        (typeof code === 'string' && (await this.#d.mfa.verify(user.id, code)) !== null));
    if (!passwordOk || !codeOk) {
      const outcome = await this.#d.guard.failed(attempt);
      await this.#d.audit.record({
        category: 'authentication',
        action: 'auth.reauthentication_failed',
        outcome: 'failure',
        actor: { type: 'user', id: user.id },
        context,
      });
      await this.#d.login.auditLock(outcome.lockedForSeconds, user.id, email, context);
      throw new BastionError(IdentityErrors.reauthenticationRequired);
    }
    await this.#d.guard.succeeded(attempt);
    return user;
  }

  async #ownUser(principal: Principal): Promise<UsersTable> {
    if (principal.kind !== 'user') throw new BastionError(IdentityErrors.invalidToken);
    const user = await this.#d.users.get(principal.id);
    if (!user) throw new BastionError(IdentityErrors.invalidToken);
    return user;
  }
}
