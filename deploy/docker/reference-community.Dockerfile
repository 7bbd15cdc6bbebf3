# syntax=docker/dockerfile:1
# xcai reference-community: a reference XDS Document Registry (ITI-18), Document Repository (ITI-43) and
# Imaging Document Source (RAD-69) over generated seed data, plus the seed generator; it also carries
# @xcai/shared, so it runs the product's Audit Record Repository (shared/dist/audit/repository-main.js). For
# the demo and compose deployments (deploy/docker/compose.yaml) and for tests; not a production registry
# or PACS.
#
# Build from the repository root (the build context must be the root; see /.dockerignore):
#   docker build -f deploy/docker/reference-community.Dockerfile -t <registry>/xcai/reference-community:<version> .
# Pin the base images by digest for reproducible, reviewable builds (R26), e.g.
#   --build-arg NODE_IMAGE=node:20-bookworm-slim@sha256:<digest>
# Runs as uid 10001 with a read-only root filesystem; writable: /tmp and /var/lib/xcai-seed (seed data), and
# /var/lib/xcai-arr when the image runs the Audit Record Repository (XCAI_ARR_DIR).
#
# Seed data: generate it once into a volume, then serve one community's part of it:
#   docker run --read-only --tmpfs /tmp -v xcai-seed:/var/lib/xcai-seed IMAGE \
#     node services/reference-community/dist/seed/cli.js --demo --out /var/lib/xcai-seed
#   docker run --read-only --tmpfs /tmp -v xcai-seed:/var/lib/xcai-seed:ro IMAGE \
#     node services/reference-community/dist/main.js --host 0.0.0.0 --port 8080 --seed /var/lib/xcai-seed/A

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
# No install scripts: nothing the services use needs one (supply-chain hardening).
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
 && npm ci --omit=dev --ignore-scripts --workspace services/reference-community \
 && rm -rf services/initiating-gateway services/responding-gateway services/imaging-source \
 && cp -a /src/shared/dist shared/dist \
 && cp -a /src/services/reference-community/dist services/reference-community/dist \
 && test -f services/reference-community/dist/main.js \
 && test -f services/reference-community/dist/seed/cli.js \
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
    mkdir -p /var/lib/xcai-seed /var/lib/xcai-arr; \
    chown 10001:10001 /var/lib/xcai-seed /var/lib/xcai-arr; \
    chmod 0700 /var/lib/xcai-seed /var/lib/xcai-arr
WORKDIR /app
# Owned by root and read-only for the service user: the application cannot modify itself.
COPY --from=build --chown=root:root /prod/ /app/
ENV NODE_ENV=production \
    NODE_OPTIONS=--enable-source-maps
USER 10001:10001
# Plain HTTP (registry /registry, repository /repository, Imaging Document Source /ids): the local,
# in-community side, reached only by the gateways of the same community.
EXPOSE 8080
STOPSIGNAL SIGTERM
LABEL org.opencontainers.image.title="xcai-reference-community" \
      org.opencontainers.image.description="Reference XDS registry/repository and Imaging Document Source over generated seed data (demo and tests)" \
      org.opencontainers.image.licenses="Apache-2.0"
CMD ["node", "services/reference-community/dist/main.js", "--host", "0.0.0.0", "--port", "8080", "--seed", "/var/lib/xcai-seed"]
