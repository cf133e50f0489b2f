# Entry points; each sets up what is missing on a fresh Debian machine.
.PHONY: run check check-asan build clean

run:
	@scripts/run.sh

check:
	@scripts/test.sh

check-asan:
	@FDN_SANITIZE=1 scripts/test.sh

build:
	@scripts/setup.sh && scripts/build.sh

clean:
	rm -rf build build-asan
