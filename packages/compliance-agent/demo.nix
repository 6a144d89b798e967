# `nix run .#demo`: the agent's demo (npm run demo) and the reference MCP, run from TypeScript
# with tsx, so this keeps the development dependencies the agent package prunes.
{
  lib,
  buildNpmPackage,
  importNpmLock,
  makeWrapper,
  srcOnly,
  nodejs,
  openssl,
  compliance-agent,
}:
let
  root = ../..;
in
buildNpmPackage {
  pname = "compliance-agent-demo";
  inherit (compliance-agent) version src npmDeps;
  # Headers of this nodejs, as in the agent package.
  npmConfigHook = importNpmLock.npmConfigHook.override { inherit nodejs; };
  inherit nodejs;
  # better-sqlite3 from the patched source, exactly as the agent package builds it (see there):
  # the demo runs the agent, and an unpatched 12.x aborts on Node >= 24.19.
  env.npm_config_build_from_source = "true";
  npmRebuildFlags = [ "--ignore-scripts" ];
  preBuild = ''
    sh scripts/patch-better-sqlite3.sh
    npm rebuild
  '';

  nativeBuildInputs = [ makeWrapper ];
  dontNpmBuild = true;

  installPhase = ''
    runHook preInstall
    share=$out/share/compliance-agent-demo
    mkdir -p $share $out/bin
    cp -r tsconfig.json node_modules src testing demo $share/
    # The package.json as written: the config hook's patched one names every dependency tarball.
    cp .package.json.orig $share/package.json
    sh ${./strip-node-modules.sh} $share/node_modules
    # The VM test's MCP: the reference MCP plus a record of every bundle it accepted.
    mkdir $share/nixosTests
    cp ${root + "/nixosTests/fake-mcp.ts"} $share/nixosTests/fake-mcp.ts
    for tool in demo:demo/run-demo reference-mcp:testing/reference-mcp/server fake-mcp:nixosTests/fake-mcp; do
      makeWrapper ${lib.getExe nodejs} $out/bin/compliance-agent-''${tool%%:*} \
        --add-flags "$share/node_modules/tsx/dist/cli.mjs $share/''${tool#*:}.ts" \
        --prefix PATH : ${lib.makeBinPath [ openssl ]}
    done
    runHook postInstall
  '';

  # A regression of the above fails the build. Python as a direct reference only: nodejs itself
  # may reach it through npm's bundled node-gyp, which is nodejs's business, not this package's.
  disallowedRequisites = [ (srcOnly nodejs) ];
  disallowedReferences = [ nodejs.python ];

  meta = compliance-agent.meta // {
    description = "Demo of compliance-agent: a simulated appliance against the reference MCP over mTLS";
    mainProgram = "compliance-agent-demo";
  };
}
