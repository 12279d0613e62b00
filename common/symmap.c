/* symmap.c - the symbol map file (see symmap.h). Loaded once at start-up,
 * looked up once per file: a sorted array and a binary search suffice. */
#include "symmap.h"
#include "record.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SYMMAP_NAME_MAX 128 /* source name, NUL included */
#define SYMMAP_FILE_MAX (16u << 20)

struct symmap_ent {
	char name[SYMMAP_NAME_MAX];
	char sym[MDB_SYM_MAX];
	int line; /* where it was mapped */
};

struct mdb_symmap {
	struct symmap_ent *e; /* sorted by name */
	int n, cap;
};

static int ent_cmp(const void *a, const void *b)
{
	return strcmp(((const struct symmap_ent *)a)->name, ((const struct symmap_ent *)b)->name);
}

/* ent_cmp, then the line: a name mapped twice sorts its first mapping first */
static int ent_line_cmp(const void *a, const void *b)
{
	const struct symmap_ent *x = a, *y = b;
	int c = ent_cmp(a, b);
	return c ? c : (x->line > y->line) - (x->line < y->line);
}

static int is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r';
}

/* Parse one line (without its newline) into m. Returns 0 or -EINVAL/-ENOMEM. */
static int parse_line(mdb_symmap *m, const char *p, const char *end, const char **why)
{
	while (p < end && is_blank(*p))
		p++;
	if (p == end || *p == '#')
		return 0;
	const char *name = p;
	while (p < end && !is_blank(*p))
		p++;
	size_t nlen = (size_t)(p - name);
	while (p < end && is_blank(*p))
		p++;
	const char *sym = p;
	while (p < end && !is_blank(*p))
		p++;
	size_t slen = (size_t)(p - sym);
	while (p < end && is_blank(*p))
		p++;
	if (slen == 0)
		return *why = "expected NAME SYMBOL", -EINVAL;
	if (p != end)
		return *why = "more than two fields", -EINVAL;
	if (nlen >= SYMMAP_NAME_MAX)
		return *why = "name too long", -EINVAL;
	if (slen >= MDB_SYM_MAX)
		return *why = "symbol too long", -EINVAL;
	if (memchr(name, '\0', nlen) || memchr(sym, '\0', slen))
		return *why = "NUL byte", -EINVAL;
	if (m->n == m->cap) {
		int cap = m->cap ? 2 * m->cap : 16;
		struct symmap_ent *e = realloc(m->e, (size_t)cap * sizeof *e);
		if (!e)
			return -ENOMEM;
		m->e = e;
		m->cap = cap;
	}
	struct symmap_ent *e = &m->e[m->n++];
	memcpy(e->name, name, nlen);
	e->name[nlen] = '\0';
	memcpy(e->sym, sym, slen);
	e->sym[slen] = '\0';
	return 0;
}

mdb_symmap *symmap_parse(const char *text, size_t len, int *err, int *line, const char **why)
{
	mdb_symmap *m = calloc(1, sizeof *m);
	*line = 0;
	*why = NULL;
	if (!m)
		return *err = -ENOMEM, NULL;
	const char *p = text, *end = text + len;
	int lineno = 0;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *eol = nl ? nl : end;
		lineno++;
		int n0 = m->n, rc = parse_line(m, p, eol, why);
		if (rc == 0 && m->n > n0)
			m->e[n0].line = lineno;
		if (rc < 0) {
			if (rc == -EINVAL)
				*line = lineno;
			symmap_free(&m);
			return *err = rc, NULL;
		}
		p = nl ? nl + 1 : end;
	}
	if (m->n)
		qsort(m->e, (size_t)m->n, sizeof *m->e, ent_line_cmp);
	for (int i = 1; i < m->n; i++) {
		if (strcmp(m->e[i - 1].name, m->e[i].name) == 0) {
			*why = "a name is mapped twice";
			*line = m->e[i].line; /* the second mapping */
			symmap_free(&m);
			return *err = -EINVAL, NULL;
		}
	}
	return m;
}

mdb_symmap *symmap_load(const char *path, int *err, int *line, const char **why)
{
	*line = 0;
	*why = NULL;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return *err = -errno, NULL;
	struct stat st;
	if (fstat(fd, &st) < 0 || st.st_size > (off_t)SYMMAP_FILE_MAX) {
		*err = st.st_size > (off_t)SYMMAP_FILE_MAX ? -EFBIG : -errno;
		close(fd);
		return NULL;
	}
	char *buf = malloc((size_t)st.st_size + 1);
	size_t got = 0;
	while (buf && got < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	int e = errno;
	close(fd);
	if (!buf)
		return *err = -ENOMEM, NULL;
	if (got < (size_t)st.st_size) {
		free(buf);
		return *err = e ? -e : -EIO, NULL;
	}
	mdb_symmap *m = symmap_parse(buf, got, err, line, why);
	free(buf);
	return m;
}

const char *symmap_lookup(const mdb_symmap *m, const char *name)
{
	if (!m || !m->n)
		return NULL;
	struct symmap_ent key;
	size_t n = strlen(name);
	if (n >= sizeof key.name)
		return NULL;
	memcpy(key.name, name, n + 1);
	const struct symmap_ent *e = bsearch(&key, m->e, (size_t)m->n, sizeof *m->e, ent_cmp);
	return e ? e->sym : NULL;
}

int symmap_count(const mdb_symmap *m)
{
	return m ? m->n : 0;
}

void symmap_free(mdb_symmap **mp)
{
	if (!mp || !*mp)
		return;
	free((*mp)->e);
	free(*mp);
	*mp = NULL;
}
