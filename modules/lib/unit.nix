# Render a systemd unit file from an attribute set, the way NixOS does: one section per
# attribute, keys sorted, a list becomes one line per element (systemd merges repeated keys),
# booleans become true/false and null drops the key.
#
# Pure: builtins only, so CI can evaluate it with `nix-instantiate --eval` and no nixpkgs. The
# module never uses it (NixOS renders its own units); it exists so the agent unit's hardening
# can be scored with `systemd-analyze security --offline` without building a NixOS system.
let
  inherit (builtins)
    attrNames
    concatLists
    concatStringsSep
    filter
    isBool
    isInt
    isList
    isString
    map
    match
    sort
    throw
    toString
    typeOf
    ;

  renderValue =
    key: value:
    if isBool value then
      (if value then "true" else "false")
    else if isInt value then
      toString value
    else if isString value then
      (
        if match ".*\n.*" value != null then
          throw "unit.nix: ${key} must be a single line"
        else
          value
      )
    else
      throw "unit.nix: ${key} has a ${typeOf value}; expected a string, integer, boolean or a list of them";

  renderKey =
    key: value:
    if value == null then
      [ ]
    else if isList value then
      map (v: "${key}=${renderValue key v}") value
    else
      [ "${key}=${renderValue key value}" ];

  renderSection =
    name: attrs:
    concatStringsSep "\n" (
      [ "[${name}]" ] ++ concatLists (map (key: renderKey key attrs.${key}) (sort (a: b: a < b) (attrNames attrs)))
    );

  # systemd reads sections in any order; this one is the conventional one.
  sectionOrder = [
    "Unit"
    "Service"
    "Path"
    "Timer"
    "Install"
  ];
in
{
  renderUnit =
    sections:
    let
      known = filter (s: sections ? ${s}) sectionOrder;
      others = sort (a: b: a < b) (filter (s: !(builtins.elem s sectionOrder)) (attrNames sections));
    in
    concatStringsSep "\n\n" (map (s: renderSection s sections.${s}) (known ++ others)) + "\n";
}
