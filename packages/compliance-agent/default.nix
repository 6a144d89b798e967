{
  lib,
  buildNpmPackage,
  importNpmLock,
  srcOnly,
  nodejs,
  openssl,
  jq,
}:
let
  root = ../..;
  packageJson = lib.importJSON (root + "/package.json");

  # Only what the build and the check phase read: a change to the Nix files or the examples does
  # not rebuild the agent.
  src = lib.fileset.toSource {
    inherit root;
    fileset = lib.fileset.unions [
      (root + "/package.json")
      (root + "/package-lock.json")
      # The launcher and its node flags (installed), scripts/bundle.mjs builds dist/bundle.
      (root + "/bin")
      # test/evidence/openssl-recipe.test.ts runs the README's openssl recipe as written.
      (root + "/README.md")
      (root + "/tsconfig.json")
      (root + "/tsconfig.build.json")
      (root + "/vitest.config.ts")
      (root + "/src")
      (root + "/test")
      # The test doubles the tests run against: in the source only, never in dist/ or the install.
      (root + "/testing")
      (root + "/demo")
      (root + "/bench")
      (root + "/patches")
      (root + "/scripts")
    ];
  };

  # importNpmLock's hook sets npm_config_nodedir to the source of the nodejs it was built with:
  # build it with this package's nodejs, so an override of `nodejs` also changes the headers
  # better-sqlite3 is compiled against.
  npmConfigHook = importNpmLock.npmConfigHook.override { inherit nodejs; };

  stripNodeModules = ./strip-node-modules.sh;
in
buildNpmPackage {
  pname = "compliance-agent";
  inherit (packageJson) version;

  inherit src;

  # Every dependency is fetched from package-lock.json's resolved URLs and integrity hashes: no
  # hand-maintained npmDepsHash.
  npmDeps = importNpmLock { npmRoot = src; };
  inherit npmConfigHook nodejs;

  # better-sqlite3 is compiled from source against this nodejs's headers by node-gyp
  # (buildNpmPackage puts nodejs.python on PATH); without this its install script first tries to
  # download a prebuilt binary, which the sandbox refuses anyway. It must be compiled from the
  # patched source (patches/better-sqlite3-12.11.1.patch: 12.x aborts on Node >= 24.19 otherwise),
  # so the config hook's rebuild runs no install scripts and preBuild patches, then compiles once.
  env.npm_config_build_from_source = "true";
  npmRebuildFlags = [ "--ignore-scripts" ];
  preBuild = ''
    sh scripts/patch-better-sqlite3.sh
    npm rebuild
  '';

  # A regression of the stripping (postInstall) fails the build. Python as a direct reference only: nodejs itself
  # may reach it through npm's bundled node-gyp, which is nodejs's business, not this package's.
  disallowedRequisites = [ (srcOnly nodejs) ];
  disallowedReferences = [ nodejs.python ];

  # The unit tests that need neither root nor host tools. test/nix, test/egress and
  # test/checks/ruleset (nft in network namespaces, systemd-analyze, nix-instantiate),
  # test/outputs (rsyslogd), test/faults and test/queue/disk-full (mounts, kill -9 loops) run in
  # CI (.ci/run) and the NixOS VM test.
  doCheck = true;
  # openssl and jq: the README's evidence-verification recipe (test/evidence) runs with both.
  nativeCheckInputs = [
    openssl
    jq
  ];
  checkPhase = ''
    runHook preCheck
    npx tsc -p tsconfig.json --noEmit
    node scripts/check-better-sqlite3-gc.mjs
    npx vitest run \
      test/native test/config test/orders test/evidence test/checks test/heal test/host \
      test/queue/outbox.test.ts test/queue/flush.test.ts \
      --exclude test/checks/ruleset.test.ts
    runHook postCheck
  '';

  # The shipped agent is dist/bundle (`npm run build`), started by bin/compliance-agent, which
  # gives node the V8 flags in bin/node-flags. npmInstallHook wraps each package.json bin in
  # `node FILE`; the launcher is a shell script, so it takes that wrapper's place, with the package
  # directory and this nodejs pinned (--replace-fail: the build breaks if the launcher changes).
  postInstall = ''
    pkgDir=$out/lib/node_modules/${packageJson.name}
    substituteInPlace $pkgDir/bin/compliance-agent \
      --replace-fail 'pkg=$(cd "$(dirname "$(readlink -f "$0")")/.." && pwd)' "pkg=$pkgDir" \
      --replace-fail 'node=node' 'node=${lib.getExe nodejs}'
    ln -sf $pkgDir/bin/compliance-agent $out/bin/compliance-agent
    # node-gyp's intermediates name the nodejs source tree and python (see the script).
    sh ${stripNodeModules} $pkgDir/node_modules
  '';

  meta = {
    description = "Declarative, self-healing compliance agent for NixOS appliances: signed orders, drift checks, signed chained evidence";
    license = lib.licenses.mit;
    mainProgram = "compliance-agent";
    platforms = lib.platforms.linux;
  };
}
