#!/usr/bin/env bash
# TF Serving's healthcheck (compose) and readiness probe (Kubernetes), run as `bash FILE`: the image has
# bash and nothing to fetch a URL with. Asks for the model's status over /dev/tcp and requires an
# AVAILABLE version (the status call answers 200 regardless). The model's name is the one the trainer
# wrote into the serving config file, i.e. config.json's model_name. A file, not `bash -c SCRIPT`:
# some Docker-API engines (podman's) split a healthcheck's arguments on spaces.
while read -r key value; do [ "$key" = name: ] && name=${value//\"/} && break; done </models/models.config
[ -n "$name" ] || exit 1
exec 3<>/dev/tcp/127.0.0.1/8501 || exit 1
printf 'GET /v1/models/%s HTTP/1.0\r\n\r\n' "$name" >&3
grep -q '"AVAILABLE"' <&3
