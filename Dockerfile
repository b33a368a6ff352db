# One image for both roles (engine and gateway); docker-compose.yml picks the command.
FROM node:20-bookworm-slim
RUN apt-get update -qq && apt-get install -y -qq --no-install-recommends libssl-dev zlib1g-dev pkg-config build-essential python3 ca-certificates \
  && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json ./
# The Kafka client's prebuilt binary comes from GitHub; the dynamic build works everywhere.
# npm install, not npm ci: see scripts/setup.sh.
RUN CKJS_LINKING=dynamic npm install --no-audit --no-fund
COPY . .
RUN npm run build
ENV GATEWAY_HOST=0.0.0.0
ENTRYPOINT ["node", "bin/instock.js"]
