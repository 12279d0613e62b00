/* fuzz_cli.c - the command-line value parsers (common/cli.h, endpoint.h).
 *
 * The input is one option value: a size (--ring-size), a duration, an
 * endpoint (-i/-o) and the shared options that take a value. Each must be
 * accepted or refused with a reason; never crash or overflow. */
#include "cli.h"
#include "endpoint.h"
#include "fuzzutil.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = fuzz_strdup(data, size);
	unsigned long long bytes = 0;
	long long ns = -1;
	const char *why = NULL;

	if (cli_parse_size(s, &bytes) == 0 && strpbrk(s, "kKmMgG") == NULL)
		FUZZ_CHECK(bytes == strtoull(s, NULL, 10));
	if (cli_parse_duration(s, &ns) == 0)
		FUZZ_CHECK(ns >= 0);
	if (ep_parse_check(s, &why) < 0)
		FUZZ_CHECK(why != NULL);

	struct mdb_cli c = CLI_INIT;
	static const int opts[] = {'i', 'o', CLI_OPT_NAME, CLI_OPT_FROM, CLI_OPT_RING_SIZE};
	for (size_t i = 0; i < sizeof opts / sizeof opts[0]; i++) {
		int rc = cli_option(&c, opts[i], s);
		FUZZ_CHECK(rc == 1 || ((rc == -EINVAL || rc == -E2BIG) && c.err[0]));
	}
	if (cli_check_endpoints(&c, s) < 0)
		FUZZ_CHECK(c.err[0] != '\0');
	free(s);
	return 0;
}
