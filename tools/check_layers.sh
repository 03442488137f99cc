#!/usr/bin/env bash
# Checks every module's imports against the layer lines of Package.swift's header comment
# ("//   layer Module: Allowed Allowed ...") and that the two C layers do not include each other.
# Exit status 1 names each forbidden import.
set -euo pipefail
cd "$(dirname "$0")/.."
os_modules="Foundation Glibc Darwin"
status=0
rules=$(grep -E '^//   layer [A-Za-z_-]+:' Package.swift | sed 's|^//   layer ||')
for dir in Sources/*/; do
  module=$(basename "$dir")
  [[ $module == C* ]] && continue # C targets: checked below
  allowed=$(printf '%s\n' "$rules" | awk -F': ' -v m="$module" '$1 == m { print $2 }')
  if [[ -z $allowed ]] && ! printf '%s\n' "$rules" | grep -q "^$module:"; then
    echo "check_layers: $module has no layer line in Package.swift"; status=1; continue
  fi
  while IFS=: read -r file _ line; do
    imported=$(sed -E 's/^[[:space:]]*(@_exported |public |package |internal |@preconcurrency )*import[[:space:]]+([A-Za-z_]+).*/\2/' <<<"$line")
    case " $allowed $os_modules " in
      *" $imported "*) ;;
      *) echo "check_layers: $file imports $imported; $module may import only: $allowed"; status=1 ;;
    esac
  done < <(grep -rnE '^[[:space:]]*(@_exported |public |package |internal |@preconcurrency )*import[[:space:]]' "$dir" --include='*.swift' || true)
done
# the kernels are pure math; the OS shims know no kernels
if grep -rnE '#include.*tessera_system.h' Sources/CTesseraKernels; then echo "check_layers: CTesseraKernels includes the OS shims"; status=1; fi
if grep -rnE '#include.*tessera_kernels.h' Sources/CTesseraSystem; then echo "check_layers: CTesseraSystem includes the kernels"; status=1; fi
[[ $status == 0 ]] && echo "check_layers: every import is allowed by Package.swift's layers"
exit $status
