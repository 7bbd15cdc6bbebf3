# syntax=docker/dockerfile:1
# xcai responding-gateway: Responding Gateway + Responding Imaging Gateway (ITI-38/39, RAD-75 in; ITI-18/43, RAD-69 out).
#
# Build from the repository root (the build context must be the root; see /.dockerignore):
#   docker build -f deploy/docker/responding-gateway.Dockerfile -t <registry>/xcai/responding-gateway:<version> .
# Pin the base images by digest for reproducible, reviewable builds (R26), e.g.
#   --build-arg NODE_IMAGE=node:20-bookworm-slim@sha256:<digest>
# Runs as uid 10001 with a read-only root filesystem; writable: /tmp and /var/spool/xcai-audit
# (mount both as volumes, e.g. docker run --read-only --tmpfs /tmp -v xcai-audit:/var/spool/xcai-audit ...).

ARG NODE_IMAGE=node:20-bookworm-slim

# ---- build: all dependencies, compile TypeScript -------------------------------------------------
FROM ${NODE_IMAGE} AS build
ENV npm_config_update_notifier=false npm_config_fund=false npm_config_audit=false
WORKDIR /src
# Manifests first, so the dependency layer is cached until package*.json change. Every workspace's
# package.json is needed for `npm ci` to accept the lockfile.
COPY package.json package-lock.json ./
COPY shared/package.json shared/
COPY services/initiating-gateway/package.json services/initiating-gateway/
COPY services/responding-gateway/package.json services/responding-gateway/
COPY services/reference-community/package.json services/reference-community/
COPY services/imaging-source/package.json services/imaging-source/
# No install scripts: nothing the gateways use needs one (supply-chain hardening).
RUN npm ci --ignore-scripts
COPY tsconfig.base.json tsconfig.build.json ./
COPY shared/ shared/
COPY services/ services/
RUN npm run build

# Production dependencies of this service only (its workspace and @xcai/shared), in a clean tree.
WORKDIR /prod
RUN cp /src/package.json /src/package-lock.json ./ \
 && for ws in shared services/initiating-gateway services/responding-gateway services/reference-community services/imaging-source; do \
      mkdir -p "$ws" && cp "/src/$ws/package.json" "$ws/"; \
    done \
 && npm ci --omit=dev --ignore-scripts --workspace services/responding-gateway \
 && rm -rf services/initiating-gateway services/reference-community services/imaging-source \
 && cp -a /src/shared/dist shared/dist \
 && cp -a /src/services/responding-gateway/dist services/responding-gateway/dist \
 && test -f services/responding-gateway/dist/main.js \
 && find . -name '*.tsbuildinfo' -delete

# ---- runtime: node, production dependencies and compiled output only ----------------------------
FROM ${NODE_IMAGE}
# OS_UPGRADE=true applies pending Debian security updates at build time (needs network access).
# The runtime needs neither a package manager nor the base image's default user (R59).
ARG OS_UPGRADE=false
RUN set -eu; \
    if [ "$OS_UPGRADE" = true ]; then \
      apt-get update && apt-get -y upgrade && apt-get clean && rm -rf /var/lib/apt/lists/*; \
    fi; \
    rm -rf /usr/local/lib/node_modules/npm /usr/local/lib/node_modules/corepack \
      /usr/local/bin/npm /usr/local/bin/npx /usr/local/bin/corepack \
      /usr/local/bin/yarn /usr/local/bin/yarnpkg /opt/yarn-*; \
    userdel --remove node 2>/dev/null || true; \
    groupadd --system --gid 10001 xcai; \
    useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin xcai; \
    mkdir -p /var/spool/xcai-audit /etc/xcai; \
    chown 10001:10001 /var/spool/xcai-audit; \
    chmod 0700 /var/spool/xcai-audit
WORKDIR /app
# Owned by root and read-only for the service user: the application cannot modify itself.
COPY --from=build --chown=root:root /prod/ /app/
ENV NODE_ENV=production \
    NODE_OPTIONS=--enable-source-maps \
    XCAI_HOST=0.0.0.0 \
    XCAI_AUDIT_SPOOL_DIR=/var/spool/xcai-audit
USER 10001:10001
# SOAP (TLS) and the plain-HTTP management port (/healthz, /readyz, /metrics). Nothing else listens.
EXPOSE 8443 9090
STOPSIGNAL SIGTERM
LABEL org.opencontainers.image.title="xcai-responding-gateway" \
      org.opencontainers.image.description="Responding Gateway + Responding Imaging Gateway (ITI-38/39, RAD-75 in; ITI-18/43, RAD-69 out)" \
      org.opencontainers.image.licenses="Apache-2.0"
CMD ["node", "services/responding-gateway/dist/main.js"]
