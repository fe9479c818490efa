#!/usr/bin/env bash
# Writes the registry credentials where the attest actions' registry client reads them
# ($HOME/.docker/config.json), without a docker CLI and without echoing them: the
# password comes from the environment and the file is private to the job's user.
set -euo pipefail
: "${REGISTRY:?REGISTRY is not set}" "${REGISTRY_USERNAME:?REGISTRY_USERNAME is not set}" "${REGISTRY_PASSWORD:?REGISTRY_PASSWORD is not set}"
host=${REGISTRY%%/*}
mkdir -p "$HOME/.docker"
umask 077
auth=$(printf '%s:%s' "$REGISTRY_USERNAME" "$REGISTRY_PASSWORD" | base64 -w0)
printf '{"auths":{"%s":{"auth":"%s"}}}\n' "$host" "$auth" > "$HOME/.docker/config.json"
