#!/bin/sh
# build-static.sh [OUT]: the shim as a static, non-PIE, size-optimised binary (default OUT:
# target/release/berth-shim-static). RSS of an idle shim drops from ~0.87 MiB (dynamic glibc)
# to ~0.6 MiB, see docs/shim.md "Memory design". Target features cannot be set per package
# from Cargo.toml or build.rs, hence this wrapper with its own target dir.
set -eu
cd "$(dirname "$0")/.."
OUT=${1:-target/release/berth-shim-static}
TRIPLE=$(rustc -vV | sed -n 's/^host: //p')
CARGO_PROFILE_RELEASE_OPT_LEVEL=s \
RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static -C relocation-model=static" \
  cargo build --release -p berth-shim --target "$TRIPLE" --target-dir target/shim-static
mkdir -p "$(dirname "$OUT")"
cp "target/shim-static/$TRIPLE/release/berth-shim" "$OUT"
echo "$OUT"
