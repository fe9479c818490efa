#!/usr/bin/env bash
# The release flow of upstream's build/pause Makefile (`make all-push`), step by step, with
# podman instead of docker/buildx/manifest-tool and the same builder image pause-build uses.
# It is the baseline of `npm run bench`; it is written to be as quick as that flow can be
# (containers without a network, no --pull: the base is `scratch`), not to lose.
#
#   For each arch, one after another, as make runs sub-push-<arch> without -j:
#     podman run --rm -v WORK:/build BUILDER: <triple>-gcc -Os -Wall -Werror -static -DVERSION=…
#                                            && <triple>-strip
#     podman build --platform … --build-arg ARCH=<arch> -t NAME/pause-<arch>:TAG WORK
#     podman push NAME/pause-<arch>:TAG  REGISTRY/pause-<arch>:TAG
#   Then the multi-arch list, as push-manifest does:
#     podman manifest create NAME/pause:TAG
#     podman manifest add --arch … [--variant …] NAME/pause:TAG REGISTRY/pause-<arch>:TAG   (per arch)
#     podman manifest push --all --rm NAME/pause:TAG REGISTRY/pause:TAG
#
# WORK is a checkout-like directory holding pause.c and the top-level Dockerfile; the binaries
# go to WORK/bin as upstream's do. Local image names start with NAME (local storage), so
# several runs side by side never share a name; the pushed names are REGISTRY/pause-<arch>.
#
# usage: upstream-flow.sh --work DIR --builder IMAGE --registry HOST[:PORT]/PATH --name NAME
#                         --tag TAG --revision REV [--arch "amd64 arm …"] [--insecure]
#                         [--manifest-only]
# --manifest-only runs push-manifest alone: what `make all-push` does again in a workspace that
# still holds make's stamp files (.container-*), which skip compile, build and push.
# Prints the pushed list's digest on stdout, and the seconds spent per kind of step on stderr
# (`steps: compile=… build=… push=… manifest=…`).
set -euo pipefail

arches="amd64 arm arm64 ppc64le s390x"
insecure=false
manifest_only=false
work="" builder="" registry="" name="" tag="" revision=""
while (($#)); do
  case $1 in
    --work) work=$2; shift 2 ;;
    --builder) builder=$2; shift 2 ;;
    --registry) registry=$2; shift 2 ;;
    --name) name=$2; shift 2 ;;
    --tag) tag=$2; shift 2 ;;
    --revision) revision=$2; shift 2 ;;
    --arch) arches=$2; shift 2 ;;
    --insecure) insecure=true; shift ;;
    --manifest-only) manifest_only=true; shift ;;
    *) echo "upstream-flow.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
for v in work builder registry name tag revision; do
  [[ -n ${!v} ]] || { echo "upstream-flow.sh: --$v is required" >&2; exit 2; }
done

tls=(--tls-verify=true)
$insecure && tls=(--tls-verify=false)

triple() {
  case $1 in
    amd64) echo x86_64-linux-gnu ;;
    arm) echo arm-linux-gnueabihf ;;
    arm64) echo aarch64-linux-gnu ;;
    ppc64le) echo powerpc64le-linux-gnu ;;
    s390x) echo s390x-linux-gnu ;;
    *) echo "upstream-flow.sh: unknown arch $1" >&2; exit 2 ;;
  esac
}

variant() {
  case $1 in
    arm) echo v7 ;;
    arm64) echo v8 ;;
    *) echo "" ;;
  esac
}

# step KIND COMMAND…: runs COMMAND and adds its wall time to KIND.
declare -A spent=([compile]=0 [build]=0 [push]=0 [manifest]=0)
step() {
  local kind=$1 t0=$EPOCHREALTIME
  shift
  "$@"
  spent[$kind]=$(awk -v a="${spent[$kind]}" -v t0="$t0" -v t1="$EPOCHREALTIME" 'BEGIN { printf "%.3f", a + t1 - t0 }')
}

cflags="-Os -Wall -Werror -static -DVERSION=v${tag}-${revision}"
mkdir -p "$work/bin"

for arch in $arches; do
  $manifest_only && break
  t=$(triple "$arch")
  bin=bin/pause-linux-$arch
  step compile podman run --rm --network none -u "$(id -u):$(id -g)" -v "$work:/build" "$builder" \
    /bin/bash -c "cd /build && $t-gcc $cflags -o $bin pause.c && $t-strip $bin"
  v=$(variant "$arch")
  step build podman build -q --platform "linux/$arch${v:+/$v}" -t "$name/pause-$arch:$tag" \
    --build-arg "ARCH=$arch" -f "$work/Dockerfile" "$work" >/dev/null
  step push podman push -q "${tls[@]}" "$name/pause-$arch:$tag" "docker://$registry/pause-$arch:$tag"
done

list=$name/pause:$tag
# As `docker manifest create --amend`: a list left over from an earlier run is replaced.
step manifest podman manifest rm "$list" >/dev/null 2>&1 || true
step manifest podman manifest create "$list" >/dev/null
for arch in $arches; do
  v=$(variant "$arch")
  step manifest podman manifest add "${tls[@]}" --os linux --arch "$arch" ${v:+--variant "$v"} \
    "$list" "docker://$registry/pause-$arch:$tag" >/dev/null
done
digestfile=$(mktemp "${TMPDIR:-/tmp}/upstream-flow-digest.XXXXXX")
trap 'rm -f "$digestfile"' EXIT
step manifest podman manifest push -q --all --rm "${tls[@]}" --digestfile "$digestfile" "$list" "docker://$registry/pause:$tag" >/dev/null
cat "$digestfile"
echo
echo "steps: compile=${spent[compile]} build=${spent[build]} push=${spent[push]} manifest=${spent[manifest]}" >&2
