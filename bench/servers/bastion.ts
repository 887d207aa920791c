/**
 * Stage (b): the bench route (public) behind Bastion's whole pipeline.
 */
import { runBastionServer } from './bastion-server.ts';
import { failStartup } from './shared.ts';

runBastionServer({ auth: 'public' }).catch(failStartup);
