# syntax=docker/dockerfile:1
# The one image every component runs (`model-health aggregator|relay|injector|node|sidecar`),
# and the image the Helm chart deploys. Build: docker build -t model-health-exporter .

# --- build: wheels for the package and its runtime dependencies (no test extras) -------------
FROM python:3.11-slim-bookworm AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY exporter ./exporter
COPY detectors ./detectors
COPY dashboards ./dashboards
COPY alerts ./alerts
# `confluent` is a runtime option (the faster Kafka client); test, broker and evidently are not.
RUN pip wheel --wheel-dir /wheels ".[confluent]"

# --- runtime ---------------------------------------------------------------------------------
FROM python:3.11-slim-bookworm
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
# A numeric non-root user: Kubernetes' runAsNonRoot can only verify a numeric UID.
RUN groupadd --system --gid 10001 model-health \
 && useradd --system --uid 10001 --gid 10001 --home-dir /nonexistent --no-create-home \
      --shell /usr/sbin/nologin model-health
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install --no-index --find-links /wheels "model-health-exporter[confluent]" \
 && python -m compileall -q /usr/local/lib/python3.11/site-packages \
 && model-health --version
USER 10001:10001
# aggregator, sidecar, node agent, relay, injector (HTTPS)
EXPOSE 9877 9878 9879 9880 8443
ENTRYPOINT ["model-health"]
CMD ["--help"]
