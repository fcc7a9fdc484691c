# The coverage-engine process as a container.
#
#   docker build -f docker/engine.Dockerfile -t coverage-engine .    (from the repo root)
#
# It reads its YAML at /var/lib/coverage-engine/etc/coverage.yaml (so that the
# YAML's relative records.path lands in the data volume, next to it) and the ARI
# password from the file named by COVERAGE_ARI_PASSWORD_FILE (never argv).
# Untested here: the machines this project is built on have no Docker engine.
FROM python:3.11-slim

WORKDIR /src
COPY pyproject.toml README.md ./
COPY coverage_engine ./coverage_engine
RUN pip install --no-cache-dir . && rm -rf /src

# A fixed uid: docker/make-secrets gives the password file to it.
RUN useradd --system --uid 10001 --home-dir /var/lib/coverage-engine --create-home coverage
USER coverage
WORKDIR /var/lib/coverage-engine

ENV COVERAGE_ARI_URL=http://127.0.0.1:8088/ari \
    COVERAGE_ARI_USER=coverage-engine \
    COVERAGE_ARI_PASSWORD_FILE=/run/secrets/ari_password
ENTRYPOINT ["coverage-engine", "run", "--config", "/var/lib/coverage-engine/etc/coverage.yaml"]
