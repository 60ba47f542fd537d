# Docker engine and mfc runtime images. Included by the top-level Makefile; also runs alone:
#
#   make -f .ci/image.mk image          # from the repository root
#
# Targets
#   docker-up    start a Docker engine if none answers (.ci/docker-up.sh; root on a bare machine)
#   base-os      build the local OS base image, only when BASE_IMAGE is $(LOCAL_BASE_IMAGE)
#   wheels       fill $(IMAGE_CONTEXT)/ on the host: dependency wheels (re-downloaded only when
#                pyproject.toml changes), the mfc wheel (rebuilt when mfc/ changes), install script
#   image        mfc-base:$(VERSION) from Dockerfile.base
#   image-gpu    mfc-gpu:$(VERSION) from Dockerfile.gpu on GPU_BASE_IMAGE (a CUDA runtime image)
#   image-service  mfc-service:$(VERSION) from Dockerfile.service on mfc-base: the metadata
#                service, with the wheels of pyproject.toml's `service` extra
#   image-clean  remove $(IMAGE_CONTEXT)/
#
# Variables (override on the command line: make image BASE_IMAGE=...)
#   BASE_IMAGE          defaults to $(UPSTREAM_BASE_IMAGE) when the engine already has it,
#                       else to $(LOCAL_BASE_IMAGE), built here with debootstrap (no registry
#                       needed). With registry access, `docker pull $(UPSTREAM_BASE_IMAGE)` once
#                       or pass BASE_IMAGE=$(UPSTREAM_BASE_IMAGE) and `docker build` pulls it.
#   GPU_BASE_IMAGE      CUDA runtime image for image-gpu; GPU_PYTHON_VERSION is the Python its
#                       apt-get installs (3.10 on Ubuntu 22.04)
#   IMAGE_PYTHON_VERSION  Python of BASE_IMAGE (3.11)
#   EXTRA_CA_BUNDLE     a CA file to trust inside the image (networks with a TLS proxy)
#   PYTHON              host Python that downloads wheels (.venv/bin/python)
#   PYTHON_DEP          a target that makes PYTHON (the top-level Makefile: the virtualenv)
#   DOCKER              docker CLI (docker)

PYTHON ?= .venv/bin/python
PYTHON_DEP ?=
DOCKER ?= docker
IMAGE_CONTEXT ?= build/image
IMAGE_ARCH ?= $(shell uname -m)
UPSTREAM_BASE_IMAGE := python:3.11-slim-bookworm
LOCAL_BASE_IMAGE := mfc-os:bookworm
IMAGE_PYTHON_VERSION ?= 3.11
GPU_BASE_IMAGE ?= nvidia/cuda:12.4.1-cudnn-runtime-ubuntu22.04
GPU_PYTHON_VERSION ?= 3.10
EXTRA_CA_BUNDLE ?=

ifndef VERSION
VERSION := $(shell sed -n 's/^__version__ *= *"\([^"]*\)".*/\1/p' mfc/version.py | head -n 1)
endif
IMAGE_TAG ?= mfc-base:$(VERSION)
GPU_IMAGE_TAG ?= mfc-gpu:$(VERSION)
SERVICE_IMAGE_TAG ?= mfc-service:$(VERSION)

# Decided once, on first use (after docker-up has run), not when make reads this file.
BASE_IMAGE ?= $(eval BASE_IMAGE := $(shell $(DOCKER) image inspect $(UPSTREAM_BASE_IMAGE) >/dev/null 2>&1 \
	&& echo $(UPSTREAM_BASE_IMAGE) || echo $(LOCAL_BASE_IMAGE)))$(BASE_IMAGE)

# Directories too: deleting a module changes its directory's mtime.
MFC_SOURCES := $(shell find mfc -name __pycache__ -prune -o ! -name '*.pyc' -print 2>/dev/null)
# Fixed zip timestamps make the mfc wheel a function of the sources' contents, so a touched
# but unchanged file leaves the image's mfc layer cached.
WHEEL_EPOCH := 315532800

.PHONY: docker-up base-os wheels image image-gpu gpu-base image-clean image-ca image-service

docker-up:
	@bash .ci/docker-up.sh

base-os: docker-up
	@if [ "$(BASE_IMAGE)" = "$(LOCAL_BASE_IMAGE)" ]; then bash .ci/base-os-image.sh "$(LOCAL_BASE_IMAGE)"; fi

wheels: $(IMAGE_CONTEXT)/deps/py$(IMAGE_PYTHON_VERSION)/requirements.txt $(IMAGE_CONTEXT)/mfc.stamp \
	$(IMAGE_CONTEXT)/image-install.sh image-ca

$(IMAGE_CONTEXT)/deps/py%/requirements.txt: pyproject.toml .ci/image-wheels.py | $(PYTHON_DEP)
	$(PYTHON) .ci/image-wheels.py --python-version $* --arch $(IMAGE_ARCH) --out $(@D)

$(IMAGE_CONTEXT)/mfc.stamp: pyproject.toml $(MFC_SOURCES) | $(PYTHON_DEP)
	@rm -rf $(IMAGE_CONTEXT)/mfc build/image-src && mkdir -p $(IMAGE_CONTEXT)/mfc build/image-src
	@tar -c --exclude=__pycache__ --exclude='*.pyc' -f - pyproject.toml mfc $(wildcard README* LICENSE*) \
		| tar -x -C build/image-src
	SOURCE_DATE_EPOCH=$(WHEEL_EPOCH) $(PYTHON) -m pip wheel --quiet --no-deps -w $(IMAGE_CONTEXT)/mfc build/image-src
	@rm -rf build/image-src
	@touch $@

$(IMAGE_CONTEXT)/image-install.sh: .ci/image-install.sh
	@mkdir -p $(@D) && cp $< $@

# Rewritten on every build (cheap); Docker's cache sees the same content when nothing changed.
image-ca:
	@rm -rf $(IMAGE_CONTEXT)/ca && mkdir -p $(IMAGE_CONTEXT)/ca
	@echo "Extra CA certificates (*.crt, *.pem) to trust in the image; see Dockerfile.base." \
		>$(IMAGE_CONTEXT)/ca/README
	@if [ -n "$(EXTRA_CA_BUNDLE)" ]; then \
		[ -f "$(EXTRA_CA_BUNDLE)" ] || { echo "EXTRA_CA_BUNDLE=$(EXTRA_CA_BUNDLE): no such file" >&2; exit 1; }; \
		cp "$(EXTRA_CA_BUNDLE)" $(IMAGE_CONTEXT)/ca/extra-ca.crt; fi

# $(1): Dockerfile, $(2): tag, $(3): base image, $(4): Python version of the base
define docker_build
	$(DOCKER) build -f $(1) -t $(2) \
		--build-arg BASE_IMAGE=$(3) \
		--build-arg MFC_PYTHON_VERSION=$(4) \
		--build-arg MFC_VERSION=$(VERSION) \
		--build-arg VCS_REF=$$(git rev-parse --short HEAD 2>/dev/null || echo unknown) \
		$(IMAGE_CONTEXT)
endef

image: docker-up base-os wheels
	$(call docker_build,Dockerfile.base,$(IMAGE_TAG),$(BASE_IMAGE),$(IMAGE_PYTHON_VERSION))

# Checked before the wheels are fetched, so a missing CUDA image fails in a second.
gpu-base: docker-up
	@$(DOCKER) image inspect "$(GPU_BASE_IMAGE)" >/dev/null 2>&1 \
		|| timeout 600 $(DOCKER) pull "$(GPU_BASE_IMAGE)" >/dev/null 2>&1 \
		|| { echo "image-gpu: CUDA base image $(GPU_BASE_IMAGE) is not here and cannot be pulled;" \
			"load one with 'docker load -i cuda.tar' and/or name it: make image-gpu GPU_BASE_IMAGE=<image>" >&2; exit 1; }

image-gpu: gpu-base image-ca $(IMAGE_CONTEXT)/deps/py$(GPU_PYTHON_VERSION)/requirements.txt \
		$(IMAGE_CONTEXT)/mfc.stamp $(IMAGE_CONTEXT)/image-install.sh
	$(call docker_build,Dockerfile.gpu,$(GPU_IMAGE_TAG),$(GPU_BASE_IMAGE),$(GPU_PYTHON_VERSION))

# The `service` extra's wheels: image-wheels.py reads [project] dependencies, so it is given a
# pyproject.toml whose dependencies are that extra's.
$(IMAGE_CONTEXT)/deps-service/py%/requirements.txt: pyproject.toml .ci/image-wheels.py | $(PYTHON_DEP)
	@mkdir -p build/image-service
	@$(PYTHON) -c 'import json, sys, tomllib; extra = tomllib.load(open("pyproject.toml", "rb"))["project"].get("optional-dependencies", {}).get("service"); extra or sys.exit("image-service: pyproject.toml has no [project.optional-dependencies] service"); open("build/image-service/pyproject.toml", "w").write("[project]\nname = \"mfc-service-deps\"\nversion = \"0\"\ndependencies = " + json.dumps(extra) + "\n")'
	$(PYTHON) .ci/image-wheels.py --python-version $* --arch $(IMAGE_ARCH) --pyproject build/image-service/pyproject.toml --out $(@D)

image-service: image $(IMAGE_CONTEXT)/deps-service/py$(IMAGE_PYTHON_VERSION)/requirements.txt
	$(call docker_build,Dockerfile.service,$(SERVICE_IMAGE_TAG),$(IMAGE_TAG),$(IMAGE_PYTHON_VERSION))

image-clean:
	rm -rf $(IMAGE_CONTEXT) build/image-src build/image-service
