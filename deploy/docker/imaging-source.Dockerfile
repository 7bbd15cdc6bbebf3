# syntax=docker/dockerfile:1
# xcai imaging-source: XDS-I.b Imaging Document Source in front of a DICOMweb archive (RAD-69 in; WADO-RS, QIDO-RS and RAD-68 out).
#
# Build from the repository root (the build context must be the root; see /.dockerignore):
#   docker build -f deploy/docker/imaging-source.Dockerfile -t <registry>/xcai/imaging-source:<version> .
# Pin the base images by digest for reproducible, reviewable builds (R26), e.g.
#   --build-arg NODE_IMAGE=node:20-bookworm-slim@sha256:<digest>
# Runs as uid 10001 with a read-only root filesystem; writable: /tmp, /var/spool/xcai-audit and
# /var/lib/xcai (the publisher's watermark, local.publish.stateFile; mount it as a volume).

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
 && npm ci --omit=dev --ignore-scripts --workspace services/imaging-source \
 && rm -rf services/initiating-gateway services/responding-gateway services/reference-community \
 && cp -a /src/shared/dist shared/dist \
 && cp -a /src/services/imaging-source/dist services/imaging-source/dist \
 && test -f services/imaging-source/dist/main.js \
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
    mkdir -p /var/spool/xcai-audit /etc/xcai /var/lib/xcai; \
    chown 10001:10001 /var/spool/xcai-audit /var/lib/xcai; \
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
LABEL org.opencontainers.image.title="xcai-imaging-source" \
      org.opencontainers.image.description="XDS-I.b Imaging Document Source bridge for DICOMweb archives (RAD-69 in; WADO-RS, QIDO-RS, RAD-68 out)" \
      org.opencontainers.image.licenses="Apache-2.0"
CMD ["node", "services/imaging-source/dist/main.js"]
