#!/bin/sh
# Portico's default portal runtime (see docs/runtime-contract.md).
#   serve                      serve the start page on :8080
#   provision                  check the configuration, exit 0 when it is sound
#   import-translations LANG…  check each language is configured
set -eu
config=${PORTICO_CONFIG:-/etc/portico/portal.json}
command=${1:-serve}
[ $# -gt 0 ] && shift
case "$command" in
  serve)
    exec nginx -g 'daemon off;' ;;
  provision)
    test -s "$config" || { echo "no configuration at $config" >&2; exit 1; }
    grep -q '"subdomain"' "$config" || { echo "configuration has no subdomain" >&2; exit 1; }
    echo "portal configuration is sound" ;;
  import-translations)
    for lang in "$@"; do
      grep -q "\"$lang\"" "$config" || { echo "language $lang is not configured" >&2; exit 1; }
    done
    echo "translations imported: $*" ;;
  *)
    echo "unknown command: $command" >&2; exit 64 ;;
esac
