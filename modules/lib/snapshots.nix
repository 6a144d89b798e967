# Scripts of the root-side snapshot units that give the unprivileged agent facts it cannot
# gather itself, as files in a runtime directory only its group may read.
#
# Pure: builtins only; the tools are passed in (store paths in the module, names on PATH in CI,
# which runs the script for real).
{
  # The encryption check's facts. Under the agent's PrivateDevices=true, lsblk sees no
  # /dev/mapper devices, and `cryptsetup status` needs CAP_SYS_ADMIN. Written as
  #   { "version": 1, "lsblk": <lsblk --json>, "cryptsetup": { NAME: { "exitCode": N, "output": TEXT } } }
  # with one cryptsetup entry per device of TYPE crypt, renamed into place so the agent never
  # reads a half-written file.
  diskScript =
    {
      lsblk,
      cryptsetup,
      jq,
      mv,
    }:
    ''
      set -eu
      dir=''${RUNTIME_DIRECTORY:?}
      devices=$(${lsblk} --json -o NAME,TYPE,FSTYPE,MOUNTPOINTS)
      ${jq} -n --argjson lsblk "$devices" '{ version: 1, lsblk: $lsblk, cryptsetup: {} }' > "$dir/.disks.json"
      for name in $(printf '%s' "$devices" | ${jq} -r '[.. | objects | select(.type? == "crypt") | .name] | unique | .[]'); do
        code=0
        # --disable-locks: the unit's /run is read-only and status reads no on-disk metadata.
        output=$(${cryptsetup} --disable-locks status "$name" 2>&1) || code=$?
        ${jq} --arg name "$name" --arg output "$output" --argjson code "$code" \
          '.cryptsetup[$name] = { exitCode: $code, output: $output }' "$dir/.disks.json" > "$dir/.disks.json.next"
        ${mv} "$dir/.disks.json.next" "$dir/.disks.json"
      done
      ${mv} "$dir/.disks.json" "$dir/disks.json"
    '';
}
