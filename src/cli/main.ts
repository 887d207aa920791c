#!/usr/bin/env node
import { runCli } from './program.ts';

const code = await runCli(process.argv.slice(2));
// `serve` keeps running until a signal; every other command ends here.
if (code !== 0) process.exit(code);
