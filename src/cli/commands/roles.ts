import type { Command } from 'commander';
import { PERMISSIONS, PLATFORM_PERMISSIONS, ROLE_PERMISSIONS, ROLES } from '../../identity/permissions.ts';

/** `bastion roles`: the role → permission table, as enforced. */
export function registerRoles(program: Command, print: (line: string) => void): void {
  program
    .command('roles')
    .description('Print the role → permission table (organization roles, and the platform admin)')
    .option('--json', 'print JSON instead of a table')
    .action((options: { json?: boolean }) => {
      if (options.json) {
        const table = Object.fromEntries(ROLES.map((role) => [role, [...ROLE_PERMISSIONS[role]]]));
        print(JSON.stringify({ roles: table, platform_admin: [...PERMISSIONS] }, null, 2));
        return;
      }
      const columns = [...ROLES, 'platform_admin'];
      const width = Math.max(...PERMISSIONS.map((permission) => permission.length));
      print(`${'permission'.padEnd(width)}  ${columns.join('  ')}`);
      for (const permission of PERMISSIONS) {
        const cells = columns.map((role) => {
          const held =
            role === 'platform_admin' || ROLE_PERMISSIONS[role as (typeof ROLES)[number]].has(permission);
          return (held ? 'x' : '-').padEnd(role.length);
        });
        print(`${permission.padEnd(width)}  ${cells.join('  ')}`.trimEnd());
      }
      print('');
      print(`Platform-wide (platform admin only): ${PLATFORM_PERMISSIONS.join(', ')}`);
    });
}
