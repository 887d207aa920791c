/**
 * Every permission a route can require (`config.auth`) or an API key can be scoped to.
 * `users:manage` and `settings:manage` are platform-wide; the rest apply within an organization.
 */
export const PERMISSIONS = [
  'org:read',
  'org:update',
  'org:delete',
  'members:read',
  'members:manage',
  'workflows:read',
  'workflows:write',
  'workflows:delete',
  'workflows:execute',
  'integrations:read',
  'integrations:write',
  'integrations:delete',
  'integrations:test',
  'secrets:read',
  'secrets:write',
  'apikeys:manage',
  'audit:read',
  'monitoring:read',
  'alerts:read',
  'alerts:manage',
  'security:read',
  'security:manage',
  'sessions:manage',
  'users:manage',
  'settings:manage',
] as const;

/** One permission. */
export type Permission = (typeof PERMISSIONS)[number];

/** Permissions only the platform admin holds (they are not about one organization). */
export const PLATFORM_PERMISSIONS: readonly Permission[] = ['users:manage', 'settings:manage'];

/** The seven organization roles, most powerful first. */
export const ROLES = ['owner', 'admin', 'security', 'operator', 'developer', 'auditor', 'viewer'] as const;

/** One organization role. */
export type Role = (typeof ROLES)[number];

const READ_ONLY: readonly Permission[] = [
  'org:read',
  'members:read',
  'workflows:read',
  'integrations:read',
  'monitoring:read',
  'alerts:read',
];

const ORGANIZATION_PERMISSIONS = PERMISSIONS.filter(
  (permission) => !PLATFORM_PERMISSIONS.includes(permission),
);

/**
 * The role → permission table: the one place it is defined (`bastion roles` prints it).
 * Secrets are readable only by roles that build integrations (owner, admin, developer); the
 * security role watches and responds but does not read credentials.
 */
export const ROLE_PERMISSIONS: Readonly<Record<Role, ReadonlySet<Permission>>> = {
  owner: new Set(ORGANIZATION_PERMISSIONS),
  admin: new Set(ORGANIZATION_PERMISSIONS.filter((permission) => permission !== 'org:delete')),
  security: new Set([
    ...READ_ONLY,
    'audit:read',
    'alerts:manage',
    'security:read',
    'security:manage',
    'sessions:manage',
  ]),
  operator: new Set([
    ...READ_ONLY,
    'workflows:execute',
    'integrations:test',
    'alerts:manage',
    'security:read',
  ]),
  developer: new Set([
    ...READ_ONLY,
    'workflows:write',
    'workflows:delete',
    'workflows:execute',
    'integrations:write',
    'integrations:delete',
    'integrations:test',
    'secrets:read',
    'secrets:write',
    'apikeys:manage',
  ]),
  auditor: new Set([...READ_ONLY, 'audit:read', 'security:read']),
  viewer: new Set(READ_ONLY),
};

/** Every permission, held by the platform admin in every organization. */
export const PLATFORM_ADMIN_PERMISSIONS: ReadonlySet<Permission> = new Set(PERMISSIONS);

/** True for a known permission name. */
export function isPermission(value: string): value is Permission {
  return (PERMISSIONS as readonly string[]).includes(value);
}

/** True for a known role name. */
export function isRole(value: string): value is Role {
  return (ROLES as readonly string[]).includes(value);
}
