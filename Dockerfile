# Petrel node agent image.
#   docker build -t ghcr.io/petrel-project/petrel:v0.1.0 .
# The image name above is the one deploy/ references (keep them in step; test/deploy checks it).
#
# Stage 1 builds the TypeScript and prunes dev dependencies; stage 2 is the runtime with the
# tools the agent drives (iproute2, iptables, ipset) and nothing else. The agent runs as root:
# the DaemonSet makes it privileged with hostNetwork, as calico/node is.

ARG NODE_IMAGE=node:20-bookworm-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /src
# node-gyp toolchain: npm ci builds the BGP socket-option addon (bgp/native) with it.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json ./
# npm ci runs the package's install script, which builds the BGP socket-option addon.
COPY bgp/native ./bgp/native
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY agent ./agent
COPY datastore ./datastore
COPY bgp ./bgp
COPY routes ./routes
COPY acl ./acl
COPY cni ./cni
COPY bench ./bench
COPY test ./test
# Source maps, type declarations and docs are not needed at run time: they are half of the
# production node_modules (104 MB -> 52 MB, mostly @kubernetes/client-node's).
RUN npm run build && npm prune --omit=dev \
 && find node_modules \( -name '*.map' -o -name '*.d.ts' -o -name '*.d.mts' -o -name '*.d.cts' -o -name '*.md' \) -type f -delete

FROM ${NODE_IMAGE} AS runtime
LABEL org.opencontainers.image.title="petrel" \
      org.opencontainers.image.description="Per-node routing agent for Kubernetes: routes, policy and BGP in one daemon (Calico-compatible)" \
      org.opencontainers.image.licenses="Apache-2.0"
RUN apt-get update \
 && apt-get install -y --no-install-recommends iproute2 iptables ipset ca-certificates \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /opt/petrel
COPY --from=build /src/package.json ./package.json
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY --from=build /src/bgp/native/build/Release/petrel_sockopt.node ./bgp/native/build/Release/petrel_sockopt.node
COPY examples ./examples
RUN ln -s /opt/petrel/dist/agent/cli.js /usr/local/bin/petrel \
 && ln -s /opt/petrel/dist/cni/main.js /usr/local/bin/petrel-cni \
 && chmod +x dist/agent/cli.js dist/cni/main.js
ENV NODE_ENV=production \
    DATASTORE_TYPE=kubernetes \
    PETREL_HEALTH_PORT=9099
# Root on purpose: programming routes, iptables and ipsets needs CAP_NET_ADMIN in the host's
# network namespace (the DaemonSet sets privileged + hostNetwork).
USER root
EXPOSE 9099
HEALTHCHECK NONE
# Small young-generation semi-spaces: the BGP RIB keeps ~90 B/route instead of ~370 B/route
# (bench bgp-feed); V8 only reads this flag at start-up.
ENTRYPOINT ["node", "--max-semi-space-size=2", "/opt/petrel/dist/agent/cli.js"]
CMD ["agent"]
