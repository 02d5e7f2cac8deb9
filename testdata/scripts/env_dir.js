// env_dir.js: prints its environment and working directory as one JSON line.
'use strict';
process.stdout.write(JSON.stringify({ env: process.env, cwd: process.cwd(), argv: process.execArgv }) + '\n');
