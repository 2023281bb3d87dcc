# One image for the api, worker and sandbox services of docker-compose.yml (the command picks which).
# Built in a stage of its own (`npm run build`: JavaScript and the pre-bundled workflow code), so the
# image runs JavaScript with production dependencies only: no tsx, no webpack run at start.
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY . .
RUN npm run build

FROM node:20-bookworm-slim
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund
COPY --from=build /app/dist ./dist
ENV NODE_ENV=production
# PRODUCTION_ENV (scripts/build/production-build.ts): two malloc arenas, not eight per core.
ENV MALLOC_ARENA_MAX=2
# The sandbox provider's ledger volume: a named volume takes this directory's owner on first use.
RUN mkdir -p /var/lib/sandbox && chown node:node /var/lib/sandbox
USER node
# Node itself is the main process (as npm run cluster starts them), so SIGTERM reaches its handlers.
CMD ["node", "dist/app/main.js"]
