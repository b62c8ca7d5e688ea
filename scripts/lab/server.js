// Starts one unleash-server for flagfleet's lab. Configured entirely by environment
// variables set in scripts/lab.sh; nothing here phones home (there is no network).
'use strict';
const unleash = require('unleash-server');

const env = (name) => {
  const v = process.env[name];
  if (v === undefined) throw new Error(`${name} is not set`);
  return v;
};

const token = process.env.LAB_TOKEN;
unleash
  .start({
    db: {
      host: '127.0.0.1',
      port: Number(env('LAB_PG_PORT')),
      user: 'postgres',
      password: 'postgres',
      database: env('LAB_DB'),
      ssl: false,
    },
    server: { port: Number(env('LAB_PORT')), host: '127.0.0.1' },
    authentication: {
      initApiTokens: token
        ? [{ tokenName: 'flagfleet-lab', secret: token, type: 'admin', environment: '*', projects: ['*'] }]
        : [],
    },
    versionCheck: { enable: false },
    telemetry: false,
    logLevel: 'warn',
  })
  .then((instance) => {
    const stop = () => instance.stop().then(() => process.exit(0), () => process.exit(1));
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
    if (process.env.LAB_MIGRATE_ONLY) stop();
  })
  .catch((err) => {
    console.error(err);
    process.exit(1);
  });
