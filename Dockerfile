# One image for the api, worker and sandbox services of docker-compose.yml (the command picks which).
FROM node:20-bookworm-slim
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund
COPY . .
ENV NODE_ENV=production
# The sandbox provider's ledger volume: a named volume takes this directory's owner on first use.
RUN mkdir -p /var/lib/sandbox && chown node:node /var/lib/sandbox
USER node
# Node itself is the main process (as npm run cluster starts them), so SIGTERM reaches its handlers.
CMD ["node", "--import", "tsx", "app/main.ts"]
