# syntax=docker/dockerfile:1
# xcai certs: runs deploy/certs/make-certs.sh (a throwaway CA and one key + certificate per node) for the
# compose deployment (deploy/docker/compose.yaml, service `certs`). Demo and test use only: production
# certificates come from your PKI (e.g. cert-manager), never from this image.
#
# The build context is deploy/certs (not the repository root), so only the script enters it:
#   docker build -f deploy/docker/certs.Dockerfile -t xcai/certs deploy/certs
# Pin the base image by digest (R26): --build-arg DEBIAN_IMAGE=debian:bookworm-slim@sha256:<digest>
# Runs as uid 10001 (the uid of the services, so they can read the keys it writes) with a read-only root
# filesystem; writable: /tmp (mktemp) and the output volume.
#   docker run --read-only --tmpfs /tmp -v xcai-certs:/certs xcai/certs make-certs.sh /certs gw-a gw-b

ARG DEBIAN_IMAGE=debian:bookworm-slim

FROM ${DEBIAN_IMAGE}
# OS_UPGRADE=true applies pending Debian security updates at build time (needs network access either way:
# openssl is installed from the Debian archive).
ARG OS_UPGRADE=false
RUN set -eu; \
    apt-get update; \
    if [ "$OS_UPGRADE" = true ]; then apt-get -y upgrade; fi; \
    apt-get install -y --no-install-recommends openssl; \
    apt-get clean; \
    rm -rf /var/lib/apt/lists/*; \
    groupadd --system --gid 10001 xcai; \
    useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin xcai; \
    mkdir -p /certs /ca; \
    chown 10001:10001 /certs /ca; \
    chmod 0700 /ca
COPY --chown=root:root --chmod=0755 make-certs.sh /usr/local/bin/make-certs.sh
USER 10001:10001
WORKDIR /certs
LABEL org.opencontainers.image.title="xcai-certs" \
      org.opencontainers.image.description="Throwaway demo CA and node certificates (deploy/certs/make-certs.sh); demo and tests only" \
      org.opencontainers.image.licenses="Apache-2.0"
CMD ["make-certs.sh", "/certs"]
