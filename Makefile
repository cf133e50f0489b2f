# Entry points; each sets up what is missing on a fresh Debian machine.
.PHONY: run check check-asan build clean lint

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

lint:
	@scripts/setup.sh && luacheck -q lua spec examples bench && \
	  clang-format --dry-run --Werror core/src/*.c core/include/fdn/*.h \
	    bindings/*.c bindings/*.h bindings/include/fdn/*.h spec/core/*.c spec/embed/*.c \
	    spec/core/*.h examples/*.c && echo "lint: clean"
