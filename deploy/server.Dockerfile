# The episode server's image (episode-runtime/server:latest), for docker-compose.yml.
#
# Built offline by deploy/build-server-image.sh (`make server-image`), never by compose: the
# script builds wheels of the project and its runtime dependencies on the host (where pip and its
# index work) into the build context, so nothing here touches a network. The context holds:
#   wheels/deps/     wheels of the runtime dependencies, plus a pip wheel to install them with
#   wheels/project/  the episode-runtime wheel
#   healthcheck.py   the grpc.health.v1 probe (deploy/healthcheck.py)
#
# BASE defaults to the local mmdebstrap image `make images` builds (Debian's python3 3.11, no pip,
# no ensurepip). A registry image only by build argument: BASE_IMAGE=python:3.11-slim-bookworm
# make server-image. Its Python must be the one the wheels were built for (3.11; the build script
# checks).
ARG BASE=runtime/base:bookworm

FROM ${BASE} AS install
# The base has no pip: a pip wheel runs as a program (python pip-X.whl/pip), installing into the
# interpreter that runs it, here a venv made without pip. --no-index: the wheels or nothing.
# Dependencies first, in their own layer: it stays cached while only runtime/ changes.
COPY wheels/deps/ /tmp/deps/
RUN set -eu; \
    python3 -m venv --without-pip /opt/venv; \
    pip_wheel="$(ls /tmp/deps/pip-*.whl | head -n 1)"; \
    /opt/venv/bin/python "$pip_wheel/pip" install --no-index --find-links /tmp/deps \
        --no-cache-dir --disable-pip-version-check --no-warn-script-location /tmp/deps/*.whl
COPY wheels/project/ /tmp/project/
RUN set -eu; \
    /opt/venv/bin/python -m pip install --no-index --find-links /tmp/deps --no-cache-dir \
        --disable-pip-version-check --no-warn-script-location /tmp/project/*.whl; \
    /opt/venv/bin/python -m pip check; \
    /opt/venv/bin/python -c "import runtime.server.app, grpc_health.v1.health"

FROM ${BASE}
COPY --from=install /opt/venv /opt/venv
COPY healthcheck.py /app/healthcheck.py
ENV PATH=/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    LANG=C.UTF-8 \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /app
# Runs as root, deliberately: the server drives the host's Docker daemon through the mounted
# socket, and access to that socket is root on the host whatever the user in here is. (A non-root
# user in the socket's group is no safer, and that group's id differs from host to host.) The
# sandboxes themselves never run as root (SandboxSpec refuses it).
EXPOSE 50051
ENTRYPOINT ["python", "-m", "runtime"]
CMD ["serve", "--host", "0.0.0.0"]
