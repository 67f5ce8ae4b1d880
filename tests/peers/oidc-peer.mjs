// A real, third-party OAuth server in front of a real MCP server, for tether's tests.
//
// - Authorization server: oidc-provider (npm) on its own 127.0.0.1 port, with open dynamic
//   client registration, PKCE S256 required, rotating refresh tokens (a reused one revokes
//   the whole grant, oidc-provider's own reuse detection), RFC 8707 resource indicators for
//   the MCP resource, short access tokens, and consent scripted here (no UI): every
//   interaction is approved for one test account.
// - Resource server: the official MCP TypeScript SDK's McpServer with its Streamable HTTP
//   transport (stateless, JSON answers) on another 127.0.0.1 port, with an `echo` tool.
//   Bearer tokens are checked first with the provider's own token lookup (expiry,
//   revocation, audience = this resource, scope), and it publishes RFC 9728 protected
//   resource metadata naming the provider.
//
// Prints one JSON line on stdout: {"mcp_url", "issuer", "admin"}; runs until SIGTERM/SIGINT.
// Admin (on the MCP port): GET /__peer/stats, POST /__peer/drop-next-token-response
// (the next token response is processed and then cut off: a "lost refresh response").
//
// Environment: PEER_ACCESS_TTL (seconds, default 3), PEER_DEBUG=1 logs provider errors.

import http from 'node:http';
import Provider, { errors } from 'oidc-provider';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { z } from 'zod';

const ACCESS_TTL = Number(process.env.PEER_ACCESS_TTL || 3);
const SCOPE = 'mcp:tools';
const ACCOUNT = 'tether-test-user';

const stats = {
  registrations: 0,
  authorizations: 0,
  grants: { authorization_code: 0, refresh_token: 0 },
  grant_errors: [],
  reuse_detected: 0,
  grants_revoked: 0,
  dropped_token_responses: 0,
  mcp: { ok: 0, unauthorized: 0, forbidden: 0 },
};
let dropNextTokenResponse = false;

function listen(server) {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server.address().port)));
}

const asServer = http.createServer();
const rsServer = http.createServer();
const asPort = await listen(asServer);
const rsPort = await listen(rsServer);
const issuer = `http://127.0.0.1:${asPort}`;
const rsBase = `http://127.0.0.1:${rsPort}`;
const resource = `${rsBase}/mcp`;
const prmUrl = `${rsBase}/.well-known/oauth-protected-resource/mcp`;

const provider = new Provider(issuer, {
  clients: [],
  cookies: { keys: ['tether-peer-cookie-key'] },
  // OpenID scopes only: mcp:tools belongs to the MCP resource (see getResourceServerInfo).
  scopes: ['openid', 'offline_access'],
  features: {
    devInteractions: { enabled: false },
    registration: { enabled: true },
    revocation: { enabled: true },
    introspection: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => resource,
      useGrantedResource: () => true,
      getResourceServerInfo(_ctx, indicator) {
        if (indicator !== resource) {
          throw new errors.InvalidTarget(`unknown resource ${indicator}`);
        }
        return {
          scope: SCOPE,
          audience: resource,
          accessTokenTTL: ACCESS_TTL,
          accessTokenFormat: 'opaque',
        };
      },
    },
  },
  pkce: { required: () => true },
  rotateRefreshToken: true,
  // Refresh tokens for every client allowed the grant, whether or not it asked for
  // offline_access (MCP clients differ there; the rotation is what is under test).
  issueRefreshToken: async (_ctx, client) => client.grantTypeAllowed('refresh_token'),
  ttl: {
    AccessToken: ACCESS_TTL,
    AuthorizationCode: 60,
    Grant: 3600,
    Interaction: 300,
    RefreshToken: 3600,
    Session: 3600,
  },
  interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
  async findAccount(_ctx, sub) {
    return { accountId: sub, claims: async () => ({ sub }) };
  },
});
provider.proxy = false;

provider.on('registration_create.success', () => { stats.registrations += 1; });
provider.on('authorization.success', () => { stats.authorizations += 1; });
provider.on('grant.success', (ctx) => {
  const type = ctx.oidc.params?.grant_type;
  stats.grants[type] = (stats.grants[type] || 0) + 1;
});
provider.on('grant.error', (ctx, err) => {
  // error_detail is what oidc-provider knows but does not tell the client.
  stats.grant_errors.push({
    grant_type: ctx.oidc.params?.grant_type,
    error: err.error,
    error_description: err.error_description,
    error_detail: err.error_detail,
  });
  if (err.error_detail === 'refresh token already used') stats.reuse_detected += 1;
});
provider.on('grant.revoked', () => { stats.grants_revoked += 1; });
if (process.env.PEER_DEBUG) {
  provider.on('server_error', (_ctx, err) => console.error('server_error', err));
  provider.on('authorization.error', (_ctx, err) => console.error('authorization.error', err));
  provider.on('registration_create.error', (_ctx, err) => console.error('registration.error', err));
}

// Scripted consent: sign the test account in and grant what was asked for, then let the
// provider redirect back to the client. The stand-in browser follows every redirect.
async function interaction(req, res) {
  try {
    const details = await provider.interactionDetails(req, res);
    const { params, prompt, grantId } = details;
    if (process.env.PEER_DEBUG) console.error('interaction', prompt.name, prompt.reasons, JSON.stringify(prompt.details));
    const grant = grantId
      ? await provider.Grant.find(grantId)
      : new provider.Grant({ accountId: ACCOUNT, clientId: params.client_id });
    const missing = prompt.details || {};
    if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
    if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
    for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes || {})) {
      grant.addResourceScope(indicator, scopes.join(' '));
    }
    // The login prompt comes first and lists nothing yet: grant what was asked for.
    const asked = String(params.scope || '').split(' ').filter(Boolean);
    const oidc = asked.filter((s) => s === 'openid' || s === 'offline_access');
    if (oidc.length) grant.addOIDCScope(oidc.join(' '));
    if (asked.includes(SCOPE) || !params.scope) grant.addResourceScope(resource, SCOPE);
    const result = {
      login: { accountId: ACCOUNT },
      consent: { grantId: await grant.save() },
    };
    await provider.interactionFinished(req, res, result, { mergeWithLastSubmission: true });
  } catch (err) {
    res.writeHead(400, { 'content-type': 'text/plain' });
    res.end(`interaction failed: ${err.message}\n`);
  }
}

const callback = provider.callback();
asServer.on('request', (req, res) => {
  if (req.url.startsWith('/interaction/')) {
    interaction(req, res);
    return;
  }
  if (req.method === 'POST' && req.url.startsWith('/token') && dropNextTokenResponse) {
    // Let the provider act on the request, then cut the connection instead of answering.
    dropNextTokenResponse = false;
    stats.dropped_token_responses += 1;
    const end = res.end.bind(res);
    res.end = (...args) => {
      req.socket.destroy();
      res.end = end;
      return res;
    };
  }
  callback(req, res);
});

// --- The MCP resource server -------------------------------------------------------------

function send(res, status, body, headers = {}) {
  const text = body === undefined ? '' : JSON.stringify(body);
  res.writeHead(status, {
    ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    ...headers,
  });
  res.end(text);
}

async function readJson(req) {
  const chunks = [];
  for await (const c of req) chunks.push(c);
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8') || 'null');
  } catch {
    return undefined;
  }
}

/** The provider's own view of a bearer token: valid, for this resource, with the scope. */
async function checkBearer(req) {
  const header = req.headers.authorization || '';
  const match = /^Bearer (.+)$/i.exec(header);
  if (!match) return { ok: false, error: null };
  const token = await provider.AccessToken.find(match[1]);
  if (!token) return { ok: false, error: 'invalid_token' };
  if (token.aud !== resource) return { ok: false, error: 'invalid_token' };
  if (!String(token.scope || '').split(' ').includes(SCOPE)) {
    return { ok: false, error: 'insufficient_scope' };
  }
  return { ok: true };
}

function challenge(error) {
  const parts = [`resource_metadata="${prmUrl}"`, `scope="${SCOPE}"`];
  if (error) parts.unshift(`error="${error}"`);
  return `Bearer ${parts.join(', ')}`;
}

/** The MCP server itself: the official TypeScript SDK's, one tool. */
function mcpServer() {
  const server = new McpServer({ name: 'tether-oidc-peer', version: '1.0.0' });
  server.registerTool(
    'echo',
    {
      description: 'Returns its message.',
      inputSchema: { message: z.string() },
    },
    async ({ message }) => ({ content: [{ type: 'text', text: message }] }),
  );
  return server;
}

rsServer.on('request', async (req, res) => {
  const path = req.url.split('?')[0];
  if (req.method === 'GET' && path === '/.well-known/oauth-protected-resource/mcp') {
    send(res, 200, {
      resource,
      authorization_servers: [issuer],
      scopes_supported: [SCOPE],
      bearer_methods_supported: ['header'],
      resource_name: 'tether oidc-provider peer',
    });
    return;
  }
  if (req.method === 'GET' && path === '/__peer/stats') {
    send(res, 200, stats);
    return;
  }
  if (req.method === 'POST' && path === '/__peer/drop-next-token-response') {
    dropNextTokenResponse = true;
    send(res, 200, { armed: true });
    return;
  }
  if (path !== '/mcp') {
    send(res, 404, { error: 'not_found' });
    return;
  }
  if (req.method !== 'POST') {
    send(res, 405, undefined, { allow: 'POST' });
    return;
  }
  const auth = await checkBearer(req);
  if (!auth.ok) {
    const status = auth.error === 'insufficient_scope' ? 403 : 401;
    stats.mcp[status === 403 ? 'forbidden' : 'unauthorized'] += 1;
    send(res, status, { error: auth.error || 'unauthorized' }, { 'www-authenticate': challenge(auth.error) });
    return;
  }
  const message = await readJson(req);
  stats.mcp.ok += 1;
  // Stateless Streamable HTTP: a fresh server and transport for each request, JSON answers.
  const server = mcpServer();
  const transport = new StreamableHTTPServerTransport({
    sessionIdGenerator: undefined,
    enableJsonResponse: true,
  });
  res.on('close', () => {
    transport.close();
    server.close();
  });
  await server.connect(transport);
  await transport.handleRequest(req, res, message);
});

process.stdout.write(`${JSON.stringify({ mcp_url: resource, issuer, admin: `${rsBase}/__peer` })}\n`);

const stop = () => {
  asServer.close();
  rsServer.close();
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
