/**
 * Stage (e): the bench route behind Bastion's whole pipeline and its authentication: every
 * request carries an EdDSA access token (from a real login at start-up) that is verified (cached
 * after the first time), checked against session revocation and the route's permission.
 */
import { runBastionServer } from './bastion-server.ts';
import { failStartup } from './shared.ts';

const ADMIN = { email: 'bench-admin@bastion.test', password: 'Pelican-Summit-Lantern-906' };

runBastionServer({
  auth: 'monitoring:read',
  env: { BASTION_ADMIN_EMAIL: ADMIN.email, BASTION_ADMIN_PASSWORD: ADMIN.password },
  beforeReady: async (app) => {
    const login = await app.inject({ method: 'POST', url: '/auth/login', payload: ADMIN });
    if (login.statusCode !== 200) throw new Error(`bench login failed: ${login.statusCode} ${login.body}`);
    const { access_token: token } = login.json() as { access_token: string };
    // The runner sends this instead of its HS256 token to this stage only.
    process.stdout.write(`HEADER authorization Bearer ${token}\n`);
  },
}).catch(failStartup);
