# The API and the worker share this image; docker-compose.yml picks the command.
# BASE: another Python 3.11 image with pip, e.g. a local one where Docker Hub is unreachable.
ARG BASE=python:3.11-slim
FROM ${BASE}

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
WORKDIR /app

# torch first and pinned. Pass --build-arg TORCH_INDEX=<PyTorch's CPU wheel index> to get the
# small CPU build; without it pip takes the default build, which is much larger.
ARG TORCH_INDEX=""
RUN pip install --no-cache-dir ${TORCH_INDEX:+--index-url "$TORCH_INDEX"} torch==2.13.0

COPY pyproject.toml README.md ./
COPY triage ./triage
COPY api ./api
COPY models ./models
COPY fixtures ./fixtures
RUN pip install --no-cache-dir -e . \
    && useradd --create-home triage
USER triage
# Owned by triage, so the named volume docker-compose.yml mounts here starts writable by it.
RUN mkdir -p /home/triage/.cache/triage/onnx
# The census names' table the redactor reads (triage.preprocess.pii_fullnames), derived once here
# instead of at every container start.
RUN python -c "from triage.preprocess.pii_fullnames import derived_table; derived_table()"

EXPOSE 8000
CMD ["triage", "serve", "--host", "0.0.0.0", "--port", "8000", "--no-worker"]
