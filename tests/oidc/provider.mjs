// OpenID Connect provider for the test suite (oidc-provider with its development interactions).
//
// Usage: node provider.mjs CONFIG.json
//
// CONFIG.json keys:
//   port      listen port on 127.0.0.1; 0 picks a free one
//   issuer    optional; defaults to http://127.0.0.1:<port>. May differ from the listen URL:
//             endpoint URLs in discovery are built from the request Host, only `iss` uses this
//   clients   array of oidc-provider client metadata
//   accounts  { accountId: claims }; `sub` defaults to the account id
//   jwks      private JWKS ({ keys: [...] }) that ID tokens are signed with
//   ttl       optional oidc-provider ttl overrides (seconds), e.g. { "IdToken": 60 }
//   claims    optional { scope: [claim, ...] } added to the standard OIDC scope → claims map
//   scopes    optional extra scope values to accept (besides openid, offline_access and
//             every key of `claims`)
//   exit_with_stdin  optional; when true the process also exits once its stdin closes, so a
//             parent that dies without stopping it leaves no orphan behind
//
// When it listens it prints one JSON line: {"ready": true, "issuer": ..., "url": ...}.
// Logging in as an account that is not in `accounts` ends the interaction with
// error=access_denied instead of failing later inside the provider.

import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';

import Provider from 'oidc-provider';

const STANDARD_CLAIMS = {
  profile: [
    'name', 'family_name', 'given_name', 'middle_name', 'nickname', 'preferred_username',
    'profile', 'picture', 'website', 'gender', 'birthdate', 'zoneinfo', 'locale', 'updated_at',
  ],
  email: ['email', 'email_verified'],
  phone: ['phone_number', 'phone_number_verified'],
  address: ['address'],
};

function fail(message) {
  process.stderr.write(`provider.mjs: ${message}\n`);
  process.exit(2);
}

if (process.argv.length < 3) {
  fail('usage: node provider.mjs CONFIG.json');
}

let config;
try {
  config = JSON.parse(readFileSync(process.argv[2], 'utf8'));
} catch (err) {
  fail(`cannot read config ${process.argv[2]}: ${err.message}`);
}

const accounts = config.accounts ?? {};
const claims = { ...STANDARD_CLAIMS, ...(config.claims ?? {}) };
const scopes = [
  ...new Set(['openid', 'offline_access', ...Object.keys(claims), ...(config.scopes ?? [])]),
];

function hasAccount(accountId) {
  return typeof accountId === 'string' && Object.hasOwn(accounts, accountId);
}

// The provider needs its issuer up front, and with port 0 the default issuer is only known
// once the socket is bound: listen first, install the provider's handler afterwards.
let handler = (_req, res) => {
  res.statusCode = 503;
  res.end();
};
const server = createServer((req, res) => handler(req, res));

await new Promise((resolve, reject) => {
  server.once('error', reject);
  server.listen(config.port ?? 0, '127.0.0.1', resolve);
});

const url = `http://127.0.0.1:${server.address().port}`;
const issuer = config.issuer ?? url;

const provider = new Provider(issuer, {
  clients: config.clients ?? [],
  jwks: config.jwks,
  ttl: config.ttl ?? {},
  claims,
  scopes,
  // Put the scope-granted claims (profile, email, citizen_id, ...) into the ID token too, so a
  // relying party can match users without calling userinfo.
  conformIdTokenClaims: false,
  pkce: { required: () => true },
  features: { devInteractions: { enabled: true } },
  // Cookies are only marked Secure when the request is https, so plain http on loopback works;
  // they are signed with a per-process key.
  cookies: { keys: [randomBytes(32).toString('base64url')] },
  async findAccount(_ctx, accountId) {
    if (!hasAccount(accountId)) {
      return undefined;
    }
    return {
      accountId,
      async claims() {
        return { sub: accountId, ...accounts[accountId] };
      },
    };
  },
});

// The dev login form accepts any login; turn an unknown one into a clean access_denied
// instead of a session whose account cannot be found.
const interactionFinished = provider.interactionFinished.bind(provider);
provider.interactionFinished = (req, res, result, options) => {
  if (result?.login && !hasAccount(result.login.accountId)) {
    return interactionFinished(req, res, {
      error: 'access_denied',
      error_description: 'unknown account',
    }, { ...options, mergeWithLastSubmission: false });
  }
  return interactionFinished(req, res, result, options);
};

handler = provider.callback();

let stopping = false;
function shutdown() {
  if (stopping) return;
  stopping = true;
  server.close(() => process.exit(0));
  server.closeAllConnections();
}
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
if (config.exit_with_stdin) {
  process.stdin.on('end', shutdown);
  process.stdin.on('error', shutdown);
  process.stdin.resume();
}

process.stdout.write(`${JSON.stringify({ ready: true, issuer, url })}\n`);
