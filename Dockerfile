# One image for every service; the command picks the service, e.g.
#   docker run IMAGE python -m services.workers --provider anthropic
# requirements.lock is resolved for x86_64 manylinux, hence the pinned platform. The base is
# pinned by digest (of the multi-architecture index), so a re-pushed tag cannot change it.
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm@sha256:65a93d69fa75478d554f4ad27c85c1e69fa184956261b4301ebaf6dbb0a3543d

FROM --platform=linux/amd64 ${PYTHON_IMAGE} AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
RUN python -m venv /opt/venv
COPY requirements.lock /tmp/requirements.lock
# Wheels only: nothing is compiled, so neither stage needs a compiler.
RUN /opt/venv/bin/pip install --require-hashes --no-deps --only-binary=:all: \
        -r /tmp/requirements.lock
COPY services /app/services
COPY shared /app/shared
# Bytecode compiled now, since the root filesystem is read-only at run time.
RUN /opt/venv/bin/python -m compileall -q --invalidation-mode unchecked-hash /opt/venv /app

FROM --platform=linux/amd64 ${PYTHON_IMAGE} AS runtime
RUN groupadd --system --gid 10001 gateway \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --shell /usr/sbin/nologin gateway
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    NODE_ENV=production \
    HOST=0.0.0.0 \
    DATA_DIR=/tmp/gateway \
    METRICS_PORT=9100
COPY --from=builder /opt/venv /opt/venv
COPY --from=builder /app /app
WORKDIR /app
USER 10001:10001
EXPOSE 3001
# Whichever service the container runs: healthy while it answers /health/live on its port
# (a worker pool on METRICS_PORT). Compose and Kubernetes probe with their own settings.
HEALTHCHECK --interval=30s --timeout=10s --start-period=30s --retries=3 \
    CMD ["python", "-m", "shared.healthcheck"]
CMD ["python", "-m", "services.edge"]
