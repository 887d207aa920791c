#!/usr/bin/env node
import { runCli } from './program.ts';

// `bastion roles | head` closes the pipe early: that is the reader's choice, not an error.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code === 'EPIPE') process.exit(0);
  throw error;
});

const code = await runCli(process.argv.slice(2));
// `serve` keeps running until a signal; every other command ends here.
if (code !== 0) process.exit(code);
