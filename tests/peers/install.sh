#!/usr/bin/env bash
# Installs the third-party test peers (oidc-provider, the MCP conformance suite 0.1.x and
# 0.2 alpha, the Node 22 the suite needs, the MCP TypeScript SDK, server-everything,
# mcp-remote, and the client applications Claude Code, Codex, Gemini CLI, opencode, Copilot
# CLI and Qwen Code) from package-lock.json, exactly as pinned, into tests/peers/node_modules
# only (never globally). To change a pin, edit package.json and run relock.sh.
# Idempotent and fast when nothing changed: a copy of the lockfile in node_modules records
# what was installed.
set -euo pipefail
cd "$(dirname "$0")"

stamp=node_modules/.tether-installed-lock
if [ -f "$stamp" ] && cmp -s package-lock.json "$stamp" && [ -x node_modules/.bin/node ]; then
  exit 0
fi
if ! command -v npm >/dev/null; then
  echo "tests/peers/install.sh: npm is not installed; install Node.js and npm (Debian: apt-get install nodejs npm)" >&2
  exit 1
fi
npm ci --no-audit --no-fund --loglevel=error
cp package-lock.json "$stamp"
echo "tests/peers: installed $(node_modules/.bin/node --version) and the pinned peers"
