# One image for the api, worker and sandbox services of docker-compose.yml (the command picks which).
FROM node:20-bookworm-slim
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund
COPY . .
ENV NODE_ENV=production
USER node
CMD ["npx", "tsx", "api/main.ts"]
