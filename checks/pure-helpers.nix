# CI entry: `nix-instantiate --eval --strict --json checks/pure-helpers.nix` evaluates every
# pure helper with sample inputs, runs their self-checks and prints the results as JSON.
import ./render.nix { }
