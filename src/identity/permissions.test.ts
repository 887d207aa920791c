import { describe, expect, it } from 'vitest';
import { PUBLIC, routeAuthProblem } from '../server/route-auth.ts';
import {
  isPermission,
  isRole,
  PERMISSIONS,
  PLATFORM_ADMIN_PERMISSIONS,
  PLATFORM_PERMISSIONS,
  ROLE_PERMISSIONS,
  ROLES,
} from './permissions.ts';

describe('the role → permission table', () => {
  it('names every permission of the contract, once, in resource:action form', () => {
    expect(new Set(PERMISSIONS).size).toBe(PERMISSIONS.length);
    expect(PERMISSIONS).toHaveLength(25);
    for (const permission of PERMISSIONS) {
      expect(routeAuthProblem({ method: 'GET', url: '/x', config: { auth: permission } })).toBeNull();
    }
    expect(isPermission(PUBLIC)).toBe(false);
  });

  it('has the seven roles, each granting only known, organization-scoped permissions', () => {
    expect([...ROLES]).toEqual(['owner', 'admin', 'security', 'operator', 'developer', 'auditor', 'viewer']);
    for (const role of ROLES) {
      expect(isRole(role)).toBe(true);
      for (const permission of ROLE_PERMISSIONS[role]) {
        expect(isPermission(permission), `${role}: ${permission}`).toBe(true);
        expect(PLATFORM_PERMISSIONS, `${role} must not hold ${permission}`).not.toContain(permission);
      }
    }
    expect(isRole('platform_admin')).toBe(false);
    expect(isRole('root')).toBe(false);
  });

  it('orders power sensibly: each role holds no more than the owner, and the viewer only reads', () => {
    const owner = ROLE_PERMISSIONS.owner;
    for (const role of ROLES)
      for (const permission of ROLE_PERMISSIONS[role]) expect(owner.has(permission)).toBe(true);
    expect([...ROLE_PERMISSIONS.viewer].every((permission) => permission.endsWith(':read'))).toBe(true);
    expect([...ROLE_PERMISSIONS.auditor].every((permission) => permission.endsWith(':read'))).toBe(true);
    expect(ROLE_PERMISSIONS.admin.has('org:delete')).toBe(false);
    expect(ROLE_PERMISSIONS.owner.has('org:delete')).toBe(true);
  });

  it('keeps credentials and security controls with the roles that need them', () => {
    const holders = (permission: (typeof PERMISSIONS)[number]) =>
      ROLES.filter((role) => ROLE_PERMISSIONS[role].has(permission));
    expect(holders('secrets:read')).toEqual(['owner', 'admin', 'developer']);
    expect(holders('security:manage')).toEqual(['owner', 'admin', 'security']);
    expect(holders('members:manage')).toEqual(['owner', 'admin']);
    expect(holders('audit:read')).toEqual(['owner', 'admin', 'security', 'auditor']);
  });

  it('gives the platform admin every permission, platform-wide ones included', () => {
    expect([...PLATFORM_ADMIN_PERMISSIONS].sort()).toEqual([...PERMISSIONS].sort());
  });
});
