#!/usr/bin/env bash
# MinIO for the S3 bench (bench/s3-vs-file.mjs), on 127.0.0.1:${WHARF_MINIO_PORT:-19020}: MinIO's script
# (scripts/minio.sh) run as a second, separate server with its own data folder, so the
# bench never shares a server with the tests.
# Usage: bench/minio.sh start|stop|status|restart   (idempotent; quick when already running)
set -euo pipefail
cd "$(dirname "$0")/.."
export WHARF_MINIO_PORT="${WHARF_MINIO_PORT:-19020}"
export WHARF_MINIO_DATA_DIR="${WHARF_MINIO_DATA_DIR:-$PWD/.cache/minio-bench-data}"
exec bash scripts/minio.sh "$@"
