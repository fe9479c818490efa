# The pause image, as upstream's build/pause/Dockerfile: pause-build assembles it without
# running anything (see src/oci/dockerfile.ts for the subset it accepts), and
# `docker build --build-arg ARCH=amd64 .` or podman builds the same image from it.
FROM scratch
ARG ARCH
ADD bin/pause-linux-${ARCH} /pause
USER 65535:65535
ENTRYPOINT ["/pause"]
