// exit_with.js CODE MESSAGE: writes MESSAGE to stderr and exits with CODE.
'use strict';
process.stderr.write((process.argv[3] || 'failing') + '\n');
process.exit(Number(process.argv[2] || 1));
