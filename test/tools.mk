# Client programs built next to the extension: the event listener and the
# test helpers. Uses libpq through pg_config.
PG_CONFIG ?= pg_config
CC ?= gcc
LIBPQ_INC := $(shell $(PG_CONFIG) --includedir)
LIBPQ_LIB := $(shell $(PG_CONFIG) --libdir)
CFLAGS_TOOLS = -O2 -g -Wall -Wextra $(PG_CFLAGS) -I$(LIBPQ_INC)

TOOLS = bin/ac_listen

all: $(TOOLS)

bin/%: tools/%.c
	@mkdir -p bin
	$(CC) $(CFLAGS_TOOLS) -o $@ $< -L$(LIBPQ_LIB) -lpq

clean:
	rm -rf bin

.PHONY: all clean
