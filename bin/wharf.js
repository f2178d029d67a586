#!/usr/bin/env node
// The `wharf` command. dist/ is built by `npm ci` (the prepare script); the command runs dist/cli-bundle/, the
// same code as dist/cli/ bundled into a few files, which starts faster (docs/architecture.md, "Start cost").
import { main } from '../dist/cli-bundle/main.js';

await main(process.argv.slice(2), process.env);
