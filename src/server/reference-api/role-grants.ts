import { isRole, ROLE_PERMISSIONS } from '../../identity/permissions.ts';

/** What a person changing memberships holds in the organization, read when the change is made. */
export interface GrantAuthority {
  /** Their permissions in the organization. */
  permissions: ReadonlySet<string>;
  /** True for an owner of the organization or the platform admin. */
  owner: boolean;
}

/** The permissions of a role; none for a name that is not a role (it grants nothing either). */
export function permissionsOfRole(role: string): ReadonlySet<string> {
  return isRole(role) ? ROLE_PERMISSIONS[role] : new Set();
}

/**
 * Why `authority` may not hand out, take away or remove `role`, or null when it may. Only an owner
 * (or the platform admin) touches the owner role, and nobody deals in a role that holds a
 * permission they do not hold themselves: adding a member, changing a role (checked for the old
 * and the new one) or removing a member never reaches beyond the caller's own permissions.
 */
export function roleGrantProblem(authority: GrantAuthority, role: string): string | null {
  if (role === 'owner' && !authority.owner) {
    return 'Only an owner can grant, change or remove the owner role';
  }
  const beyond = [...permissionsOfRole(role)].filter((permission) => !authority.permissions.has(permission));
  if (beyond.length > 0) {
    return `The role ${role} holds permissions you do not hold: ${beyond.join(', ')}`;
  }
  return null;
}
