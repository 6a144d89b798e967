#!/bin/sh
# Apply patches/better-sqlite3-12.11.1.patch to an installed better-sqlite3 (why: see the
# patch's header). Idempotent. Build better-sqlite3 from source afterwards, e.g.
#   npm_config_build_from_source=better-sqlite3 npm rebuild better-sqlite3
# Usage: scripts/patch-better-sqlite3.sh [node_modules directory, default ./node_modules]
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
version=12.11.1
patch_file="$root/patches/better-sqlite3-$version.patch"
pkg="${1:-$root/node_modules}/better-sqlite3"

if [ ! -f "$pkg/package.json" ]; then
  echo "patch-better-sqlite3: $pkg is not an installed package (run npm ci first)" >&2
  exit 1
fi
installed=$(sed -n 's/^  "version": "\([^"]*\)",*$/\1/p' "$pkg/package.json")
if [ "$installed" != "$version" ]; then
  echo "patch-better-sqlite3: $pkg is version '$installed', the patch is for $version; refresh $patch_file" >&2
  exit 1
fi

if patch -p1 -R --dry-run --force --silent -d "$pkg" < "$patch_file" > /dev/null 2>&1; then
  echo "patch-better-sqlite3: already applied to $pkg"
  exit 0
fi
patch -p1 --forward --no-backup-if-mismatch --silent -d "$pkg" < "$patch_file"
echo "patch-better-sqlite3: applied to $pkg"
