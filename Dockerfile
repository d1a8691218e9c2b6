# Builds the switchboard binary and runs it on a slim Debian image.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p switchboard-server --bin switchboard

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates curl && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/switchboard /usr/local/bin/switchboard
ENV SWITCHBOARD_DATA_DIR=/var/lib/switchboard
VOLUME /var/lib/switchboard
EXPOSE 8080
ENTRYPOINT ["switchboard"]
CMD ["serve"]
