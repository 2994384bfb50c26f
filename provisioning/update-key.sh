#!/usr/bin/env bash
# The ICB's update-signing key (Ed25519) for appliance update bundles (docs/updates.md).
#
#   provisioning/update-key.sh init DIR        create DIR/update-key.pem (private, 0600) + DIR/update-key.pub.pem
#   provisioning/update-key.sh id   PEM        print the keyId (first 16 hex of SHA-256 over the SPKI DER) of a public or private key
#
# Keep DIR on the ICB's offline signing machine: only the public key goes into images
# (image/build.sh copies it to /usr/share/surgery-edge/update-keys/ on the read-only root).
set -euo pipefail
cmd=${1:-}; arg=${2:-}
[ -n "$cmd" ] && [ -n "$arg" ] || { sed -n '2,7p' "$0" >&2; exit 2; }

keyid() {
  # Accept a private or a public PEM; the id is always over the public key's SPKI DER.
  if grep -q 'PRIVATE KEY' "$1"; then openssl pkey -in "$1" -pubout -outform DER; else openssl pkey -pubin -in "$1" -outform DER; fi \
    | sha256sum | cut -c1-16
}

case "$cmd" in
  init)
    mkdir -p "$arg"
    if [ -e "$arg/update-key.pem" ]; then echo "update-key.sh: $arg/update-key.pem exists; not overwriting a signing key" >&2; exit 1; fi
    (umask 077; openssl genpkey -algorithm ed25519 -out "$arg/update-key.pem")
    openssl pkey -in "$arg/update-key.pem" -pubout -out "$arg/update-key.pub.pem"
    chmod 644 "$arg/update-key.pub.pem"
    echo "keyId $(keyid "$arg/update-key.pem")" ;;
  id) keyid "$arg" ;;
  *) sed -n '2,7p' "$0" >&2; exit 2 ;;
esac
