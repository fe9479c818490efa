# A thin shim over pause-build for people and scripts that type upstream's make targets.
# Each target is one command; everything else lives in pause-build.
#
#   make [all] | all-container   build the image for every arch      pause-build image
#   make container               build the image for ARCH            pause-build image --arch ARCH
#   make bin                     compile bin/pause-linux-ARCH        pause-build bin --arch ARCH
#   make push                    push ARCH's image, untagged          pause-build push --arch ARCH --by-digest --registry REGISTRY/pause
#   make all-push                push every arch, the index, the tag  pause-build push --registry REGISTRY/pause
#   make test                    the test suite                      npm test
#   make clean                   remove bin/ and _output/            pause-build clean
#
# Variables:
#   REGISTRY  where push sends the image, as upstream: the image is REGISTRY/pause
#             (e.g. registry.example/k8s; push stops without it)
#   TAG       the version, e.g. 3.10 (default: the VERSION file, else the nearest git tag)
#   ARCH      the one arch of bin, container and push (default amd64); all-* use every arch

PAUSE_BUILD ?= npx pause-build
NPM ?= npm
ARCH ?= amd64
REGISTRY ?=
TAG ?=

version = $(if $(TAG), --version $(TAG))
image = $(if $(REGISTRY),$(REGISTRY)/pause)

.PHONY: all all-container container bin push all-push test clean

all: all-container

all-container:
	$(PAUSE_BUILD) image$(version)

container:
	$(PAUSE_BUILD) image --arch $(ARCH)$(version)

bin:
	$(PAUSE_BUILD) bin --arch $(ARCH)$(version)

# One arch alone must not move the multi-arch tag: it goes up by digest (see `pause-build index`).
push:
	$(PAUSE_BUILD) push --arch $(ARCH) --by-digest$(version) --registry $(image)

all-push:
	$(PAUSE_BUILD) push$(version) --registry $(image)

test:
	$(NPM) test

clean:
	$(PAUSE_BUILD) clean
