# Usage: strip-node-modules.sh NODE_MODULES
#
# Removes from an installed node_modules what is only needed to build it: node-gyp's
# intermediates in better-sqlite3's build/ (config.gypi and the makefiles name the nodejs source
# tree, node_gyp_bins/python3 links to python), SQLite's C sources, and npm's hidden lockfile
# (it names every dependency tarball in the store). The addon, build/Release/better_sqlite3.node,
# and the JavaScript stay.
set -eu
modules=$1
sqlite=$modules/better-sqlite3
test -f "$sqlite/build/Release/better_sqlite3.node"
find "$sqlite/build" -mindepth 1 -maxdepth 1 ! -name Release -exec rm -rf {} +
find "$sqlite/build/Release" -mindepth 1 ! -name better_sqlite3.node -exec rm -rf {} +
rm -rf "$sqlite/deps" "$sqlite/src" "$sqlite/binding.gyp" "$modules/.package-lock.json"
