#!/usr/bin/env node
// The `wharf` command. dist/ is built by `npm ci` (the prepare script).
import { main } from '../dist/cli/main.js';

await main(process.argv.slice(2), process.env);
